"""The two-tier content cache that RIRs and generated speech share.

Computed results (room impulse responses, :mod:`chimein.scenes.rir`; speech generator output,
:mod:`chimein.scenes.speech.cache`) are stored by content key: an in-memory LRU bounded in
bytes over a folder of files ``<root>/<kind>/<key[:2]>/<key><suffix>``. Each kind encodes and
checksums its own entries; this module holds what they have in common: the LRU, reading a file
that must verify before it is trusted (a corrupt one is counted and recomputed, never used),
atomic writes that never fail the caller (a failed write is counted and logged once), and the
counters.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from chimein.io import atomic_write_bytes

__all__ = ["CacheStats", "TieredStore", "default_cache_dir"]

T = TypeVar("T")


def default_cache_dir() -> Path:
    """``$CHIMEIN_CACHE_DIR`` if set, else ``~/.cache/chimein``."""
    env = os.environ.get("CHIMEIN_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "chimein"


@dataclass
class CacheStats:
    """Where the results a cache returned came from."""

    memory_hits: int = 0
    disk_hits: int = 0
    computed: int = 0
    corrupt: int = 0  #: disk files that failed verification (recomputed and replaced)
    write_errors: int = 0

    @property
    def hits(self) -> int:
        return self.memory_hits + self.disk_hits

    @property
    def misses(self) -> int:
        return self.computed

    @property
    def requests(self) -> int:
        return self.hits + self.computed


class TieredStore(Generic[T]):
    """An in-memory LRU (bounded in bytes) over a folder of verified files.

    Parameters
    ----------
    directory
        The folder of this kind of entry; ``None``: memory only.
    memory_bytes
        Bound of the LRU (0 disables it).
    suffix
        File name suffix of an entry.
    what, redo
        For log lines: ``"RIR cache"``, ``"recomputing"``.
    log
        The logger of the owning module.

    Thread-safe; processes may share ``directory`` (writes are atomic renames).
    """

    def __init__(self, directory: Path | None, memory_bytes: int, suffix: str, what: str,
                 redo: str, log: logging.Logger) -> None:
        self.directory = directory
        self.memory_bytes = int(memory_bytes)
        self._suffix, self._what, self._redo, self._log = suffix, what, redo, log
        self._mem: OrderedDict[str, tuple[T, int]] = OrderedDict()
        self._mem_used = 0
        self._lock = threading.Lock()
        self._stats = CacheStats()
        self._warned = False

    @property
    def stats(self) -> CacheStats:
        """A snapshot of the counters."""
        with self._lock:
            return CacheStats(**vars(self._stats))

    @property
    def memory_used(self) -> int:
        """Bytes held by the in-memory LRU."""
        return self._mem_used

    def __len__(self) -> int:
        return len(self._mem)

    def clear_memory(self) -> None:
        """Drop the in-memory entries (the disk store stays)."""
        with self._lock:
            self._mem.clear()
            self._mem_used = 0

    def path_for(self, key: str) -> Path | None:
        """Where ``key`` lives on disk (``None`` without a disk store)."""
        return None if self.directory is None else self.directory / key[:2] / f"{key}{self._suffix}"

    def _count_computed(self) -> None:
        with self._lock:
            self._stats.computed += 1

    def _mem_get(self, key: str, count: bool = True) -> T | None:
        """The entry of ``key`` in memory (now the most recent), counted as a memory hit unless
        ``count`` is false (entries derived from another, such as an RIR's spectrum)."""
        with self._lock:
            hit = self._mem.get(key)
            if hit is None:
                return None
            self._mem.move_to_end(key)
            if count:
                self._stats.memory_hits += 1
            return hit[0]

    def _mem_put(self, key: str, entry: T, size: int) -> None:
        if size > self.memory_bytes:
            return
        with self._lock:
            if key in self._mem:
                return
            self._mem[key] = (entry, size)
            self._mem_used += size
            while self._mem_used > self.memory_bytes:
                _, (_old, old_size) = self._mem.popitem(last=False)
                self._mem_used -= old_size

    def _disk_read(self, key: str, decode: Callable[[bytes], T]) -> T | None:
        """The decoded file of ``key``, or None when absent, unreadable or corrupt (``decode``
        must verify the checksum and raise on any doubt)."""
        path = self.path_for(key)
        if path is None:
            return None
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            self._log.warning("%s: cannot read %s (%s); %s", self._what, path, e, self._redo)
            return None
        try:
            entry = decode(data)
        except Exception as e:  # any failure to verify or parse: never trust the file
            self._log.warning("%s: %s is corrupt (%s); %s and replacing it", self._what, path, e,
                              self._redo)
            with self._lock:
                self._stats.corrupt += 1
            return None
        with self._lock:
            self._stats.disk_hits += 1
        return entry

    def _disk_write(self, key: str, encode: Callable[[], bytes]) -> None:
        """Store ``encode()`` atomically (not called without a disk store); a failure is
        counted and logged once, never raised."""
        path = self.path_for(key)
        if path is None:
            return
        try:
            atomic_write_bytes(path, encode())
        except OSError as e:
            with self._lock:
                self._stats.write_errors += 1
                warn, self._warned = not self._warned, True
            if warn:
                self._log.warning("%s: cannot write under %s (%s); continuing without storing",
                                  self._what, self.directory, e)
