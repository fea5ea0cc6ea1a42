"""File IO shared by every layer: atomic writes and paths that stay inside their folder.

Every write goes to a temporary file in the destination folder and is renamed into place, so
an interrupted job never leaves a half-written file under a final name. Every path read from a
manifest goes through :func:`safe_join`, so a manifest cannot point outside its folder.

Examples
--------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> atomic_write_text(d / "a.txt", "hello")
>>> (d / "a.txt").read_text()
'hello'
>>> safe_join(d, "../x")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
chimein.errors.SpecError: path '../x' leaves its folder ...; keep files inside it
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chimein.errors import SpecError

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "safe_join"]


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # portable fallback: read by setting, then restore at once
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> None:
    """Call ``write(tmp_path)`` then rename ``tmp_path`` onto ``path`` (same folder, atomic)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file 0600; give the final file the mode a plain open() would have
    # (or keep the mode of the file being replaced), so datasets stay readable by others.
    try:
        mode = p.stat().st_mode & 0o777
    except OSError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp" + p.suffix, dir=p.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, mode)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    def _w(t: Path) -> None:
        with open(t, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    atomic_write(path, _w)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def safe_join(root: str | Path, rel: str | Path, what: str = "path") -> Path:
    """Resolve ``rel`` inside ``root``; refuse absolute paths and paths that leave ``root``.

    Used for every path read from a manifest, so a manifest cannot point at ``/etc/passwd``
    or ``../../secrets``.
    """
    root_r = Path(root).resolve()
    if "\x00" in str(rel):
        raise SpecError(f"{what} {str(rel)!r} contains a NUL byte; write a plain relative path")
    relp = Path(rel)
    if relp.is_absolute():
        raise SpecError(f"{what} {str(rel)!r} is absolute; manifest paths must be relative to {root_r}")
    try:
        full = (root_r / relp).resolve()
    except (OSError, RuntimeError) as e:  # symlink loop and friends
        raise SpecError(f"{what} {str(rel)!r} cannot be resolved ({e}); fix the link") from None
    if full != root_r and root_r not in full.parents:
        raise SpecError(f"{what} {str(rel)!r} leaves its folder {root_r}; keep files inside it")
    return full
