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

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_dir", "atomic_write_text",
           "canonical_safetensors", "canonicalize_safetensors_file", "read_jsonl", "read_utf8", "safe_join"]


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


def atomic_write_dir(path: str | Path, write: Callable[[Path], Any], mode: int | None = None) -> Path:
    """Call ``write(tmp_dir)`` to fill a fresh temporary folder next to ``path``, then put it in
    place of ``path`` (an existing folder is moved aside first and deleted afterwards), so
    ``path`` is always either the old folder or the complete new one; the temporary folder is
    removed if ``write`` fails. ``mode``: permissions of the new folder (default: private,
    0700, as ``tempfile.mkdtemp`` makes it). Returns ``path``."""
    import shutil

    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        write(tmp)
        if mode is not None:
            os.chmod(tmp, mode)
        old = None
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
            os.replace(dest, old)
        os.replace(tmp, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


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


def read_utf8(path: str | Path, what: str) -> str:
    """The text of a file that must be UTF-8; :class:`SpecError` naming the file and the fix
    (save ``what`` as UTF-8) when it is not, instead of a ``UnicodeDecodeError``."""
    p = Path(path)
    try:
        return p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(f"{p}: not UTF-8 text ({e}); save {what} as UTF-8") from None


def read_jsonl(path: str | Path, hint: str) -> tuple[list[tuple[int, Any]], bool]:
    """The values of a JSON-lines file with their 1-based line numbers, and whether a cut-off
    last line was dropped.

    Blank lines are skipped. A last line without its newline that is not valid JSON (an append
    cut off by a kill) is dropped with a warning on stderr; the caller may rewrite the file
    without it so appends start on a fresh line. Any other invalid line raises.

    Parameters
    ----------
    path
        The file (it must exist).
    hint
        What to do about an invalid line, appended to the error (``"each line must be one
        episode object"``).

    Raises
    ------
    SpecError
        A line that is not valid JSON, naming the file and line; a file that is not UTF-8.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "log.jsonl"
    >>> _ = p.write_text('{"a": 1}\\n\\n[2]\\n{"cut')
    >>> read_jsonl(p, "fix it")
    ([(1, {'a': 1}), (3, [2])], True)
    """
    import json
    import sys

    p = Path(path)
    lines = read_utf8(p, "the file").split("\n")
    rows: list[tuple[int, Any]] = []
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            rows.append((i + 1, json.loads(raw)))
        except json.JSONDecodeError as e:
            if i == len(lines) - 1:  # no trailing newline: an interrupted append
                print(f"warning: {p}:{i + 1}: dropping an incomplete last line (interrupted write)",
                      file=sys.stderr)
                return rows, True
            raise SpecError(f"{p}:{i + 1}: not valid JSON ({e.msg}); {hint}") from None
    return rows, False


def canonical_safetensors(data: bytes) -> bytes:
    """The same safetensors file with its ``__metadata__`` keys in sorted order.

    The safetensors library keeps a file's metadata in a hash map whose order changes from one
    process to the next, so two files holding the same tensors and the same metadata can differ
    in their header bytes. Rewriting the header with sorted metadata (same length, same tensor
    entries, same data) makes a checkpoint's bytes a function of its content, so the same seed
    gives the same SHA-256. Anything that does not parse as a safetensors header is returned
    unchanged.

    Examples
    --------
    >>> import json, struct
    >>> head = json.dumps({"__metadata__": {"b": "2", "a": "1"}}, separators=(",", ":")).encode()
    >>> blob = struct.pack("<Q", len(head)) + head
    >>> canonical_safetensors(blob)[8:]
    b'{"__metadata__":{"a":"1","b":"2"}}'
    """
    import json
    import struct

    if len(data) < 8:
        return data
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        return data
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return data
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict):
        return data
    header["__metadata__"] = dict(sorted(meta.items()))
    new = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(new) > n:  # never expected (same content); keep the library's bytes
        return data
    return data[:8] + new + b" " * (n - len(new)) + data[8 + n:]


def canonicalize_safetensors_file(path: str | Path) -> None:
    """Rewrite a safetensors file written by another library (``save_pretrained``,
    ``save_model``) with :func:`canonical_safetensors` (atomically, only if it changes)."""
    p = Path(path)
    data = p.read_bytes()
    new = canonical_safetensors(data)
    if new != data:
        atomic_write_bytes(p, new)
