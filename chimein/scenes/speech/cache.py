"""A content-addressed cache of generator output: an in-memory LRU over a folder of files.

A neural voice costs about 0.1-0.25 s per utterance plus a 1.5 s model load per process, and
a scene set says the same lines many times, so :func:`.generators.generate` keeps what the
generators produce. The pattern is :class:`chimein.scenes.rir.RIRCache`'s:

- the key is the SHA-256 of a canonical JSON of everything that determines the output: the
  generator, a version string of the engine and its voice data (package versions and model
  digests, flite's version, ...; see :func:`.generators.engine_version`), the voice, the text
  (whitespace-normalised), the output sample rate, espeak-ng's native rate and pitch, and a
  format version;
- an entry is ``<cache_dir>/speech/<key[:2]>/<key>.speech``: a length-prefixed JSON header
  (key, sample rate, timing method, words) and the float32 samples, followed by a 32-byte
  SHA-256 of everything before it. Word times are stored as JSON numbers, which round-trip
  float64 exactly, so a cached result is bit-identical to a computed one;
- files are written atomically (:func:`chimein.io.atomic_write_bytes`), so processes can share
  the folder; a file that fails to parse or verify (truncated, corrupt, another key) is counted
  in ``stats.corrupt``, regenerated and replaced, never trusted;
- ``CHIMEIN_SPEECH_CACHE=0`` turns the disk layer off (the memory layer stays).

Examples
--------
>>> import tempfile
>>> from chimein.scenes.speech.espeak import synthesize
>>> c = SpeechCache(tempfile.mkdtemp())
>>> k = c.key({"generator": "espeak-ng", "text": "hello"})
>>> sp, how = c.get_or_make(k, lambda: (synthesize("hello"), "engine word events"))
>>> c2 = SpeechCache(c.root)
>>> sp2, how2 = c2.get_or_make(k, lambda: (synthesize("hello"), "engine word events"))
>>> c2.stats.disk_hits, bool((sp2.audio == sp.audio).all()), how2
(1, True, 'engine word events')
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from chimein.errors import SpecError
from chimein.io import atomic_write_bytes
from chimein.scenes.rir import CacheStats, default_cache_dir
from chimein.scenes.spec import Word
from chimein.scenes.speech.base import Speech

__all__ = ["ENV_DISABLE", "FORMAT_VERSION", "CacheStats", "SpeechCache", "default_speech_cache"]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Bump when the stored bytes or the meaning of a key change; old files are then ignored."""

ENV_DISABLE = "CHIMEIN_SPEECH_CACHE"
"""Set to ``0`` (or ``false``/``no``/``off``) to keep speech out of the disk cache."""

_TRAILER = 32
_MAGIC = b"CHIMEIN-SPEECH\x00\x01"


def _disk_enabled() -> bool:
    return os.environ.get(ENV_DISABLE, "1").strip().lower() not in ("0", "false", "no", "off")


def _encode(key: str, speech: Speech, method: str) -> bytes:
    head = json.dumps({
        "format": FORMAT_VERSION, "key": key, "sample_rate": int(speech.sample_rate),
        "method": method, "n": int(speech.audio.shape[0]),
        "words": [[w.text, w.start_s, w.end_s] for w in speech.words],
    }, sort_keys=True, allow_nan=False).encode("utf-8")
    body = (_MAGIC + struct.pack("<I", len(head)) + head
            + np.ascontiguousarray(speech.audio, dtype="<f4").tobytes())
    return body + hashlib.sha256(body).digest()


def _decode(data: bytes, key: str) -> tuple[Speech, str]:
    """The entry stored in ``data``; ``ValueError`` if anything about it is wrong."""
    if len(data) < len(_MAGIC) + 4 + _TRAILER:
        raise ValueError("file too short")
    body, digest = data[:-_TRAILER], data[-_TRAILER:]
    if hashlib.sha256(body).digest() != digest:
        raise ValueError("checksum mismatch")
    if not body.startswith(_MAGIC):
        raise ValueError("not a speech cache entry")
    n_head = struct.unpack("<I", body[len(_MAGIC): len(_MAGIC) + 4])[0]
    off = len(_MAGIC) + 4
    head = json.loads(body[off: off + n_head])
    if head.get("format") != FORMAT_VERSION or head.get("key") != key:
        raise ValueError("written for another key or format")
    audio = np.frombuffer(body, dtype="<f4", offset=off + n_head).astype(np.float32)
    if audio.shape[0] != int(head["n"]) or audio.shape[0] == 0 or not np.isfinite(audio).all():
        raise ValueError(f"bad audio ({audio.shape[0]} samples, header says {head['n']})")
    audio.flags.writeable = False
    words = tuple(Word(text=str(t), start_s=float(s), end_s=float(e)) for t, s, e in head["words"])
    return Speech(audio=audio, sample_rate=int(head["sample_rate"]), words=words), str(
        head["method"])


class SpeechCache:
    """Generator output by content: an in-memory LRU (bounded in bytes) over a folder.

    Parameters
    ----------
    cache_dir : str or Path, optional
        Root folder; entries go to ``<cache_dir>/speech/<key[:2]>/<key>.speech``. Default
        :func:`chimein.scenes.rir.default_cache_dir` (``$CHIMEIN_CACHE_DIR`` or
        ``~/.cache/chimein``).
    memory_bytes : int
        Bound of the in-memory LRU (default 64 MiB; 0 disables it).
    disk : bool, optional
        Whether to read and write the folder; default: unless ``CHIMEIN_SPEECH_CACHE=0``.

    Notes
    -----
    ``stats`` counts memory hits, disk hits, ``computed`` (misses), ``corrupt`` files
    (regenerated and replaced) and failed writes (logged once; the result is still returned).
    Thread-safe; processes may share ``cache_dir``.
    """

    def __init__(self, cache_dir: str | Path | None = None, memory_bytes: int = 64 * 2**20,
                 disk: bool | None = None) -> None:
        if isinstance(memory_bytes, bool) or not isinstance(memory_bytes, int) or memory_bytes < 0:
            raise SpecError(f"SpeechCache: field 'memory_bytes': need an integer >= 0, "
                            f"got {memory_bytes!r}")
        self.root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        use_disk = _disk_enabled() if disk is None else bool(disk)
        self.directory: Path | None = self.root / "speech" if use_disk else None
        self.memory_bytes = memory_bytes
        self._mem: OrderedDict[str, tuple[Speech, str]] = OrderedDict()
        self._mem_used = 0
        self._lock = threading.Lock()
        self._stats = CacheStats()
        self._warned = False

    # ---------------------------------------------------------------- introspection
    @property
    def stats(self) -> CacheStats:
        """A snapshot of the counters."""
        with self._lock:
            return CacheStats(**vars(self._stats))

    def __len__(self) -> int:
        return len(self._mem)

    def clear_memory(self) -> None:
        """Drop the in-memory entries (the disk store stays)."""
        with self._lock:
            self._mem.clear()
            self._mem_used = 0

    @staticmethod
    def key(fields: Mapping[str, Any]) -> str:
        """SHA-256 (hex) of a canonical JSON of ``fields`` plus :data:`FORMAT_VERSION`."""
        doc = {"format": FORMAT_VERSION, **dict(fields)}
        text = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def path_for(self, key: str) -> Path | None:
        """Where ``key`` lives on disk (``None`` without a disk store)."""
        return None if self.directory is None else self.directory / key[:2] / f"{key}.speech"

    # ---------------------------------------------------------------- lookup
    def get(self, key: str) -> tuple[Speech, str] | None:
        """The cached ``(speech, timing method)`` of ``key`` (memory, then disk), or ``None``."""
        with self._lock:
            hit = self._mem.get(key)
            if hit is not None:
                self._mem.move_to_end(key)
                self._stats.memory_hits += 1
                return hit
        hit = self._disk_get(key)
        if hit is not None:
            self._mem_put(key, hit)
        return hit

    def put(self, key: str, speech: Speech, method: str) -> None:
        """Store a computed result in memory and on disk."""
        self._disk_put(key, speech, method)
        self._mem_put(key, (speech, method))

    def get_or_make(self, key: str, make: Callable[[], tuple[Speech, str]]
                    ) -> tuple[Speech, str]:
        """The cached result of ``key``, else ``make()`` (counted as computed, then stored)."""
        hit = self.get(key)
        if hit is not None:
            return hit
        speech, method = make()
        with self._lock:
            self._stats.computed += 1
        self.put(key, speech, method)
        return speech, method

    # ---------------------------------------------------------------- tiers
    def _mem_put(self, key: str, entry: tuple[Speech, str]) -> None:
        size = int(entry[0].audio.nbytes)
        if size > self.memory_bytes:
            return
        with self._lock:
            if key in self._mem:
                return
            self._mem[key] = entry
            self._mem_used += size
            while self._mem_used > self.memory_bytes:
                _, (old, _m) = self._mem.popitem(last=False)
                self._mem_used -= int(old.audio.nbytes)

    def _disk_get(self, key: str) -> tuple[Speech, str] | None:
        path = self.path_for(key)
        if path is None:
            return None
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            log.warning("speech cache: cannot read %s (%s); regenerating", path, e)
            return None
        try:
            entry = _decode(data, key)
        except Exception as e:  # any failure to verify or parse: never trust the file
            log.warning("speech cache: %s is corrupt (%s); regenerating and replacing it",
                        path, e)
            with self._lock:
                self._stats.corrupt += 1
            return None
        with self._lock:
            self._stats.disk_hits += 1
        return entry

    def _disk_put(self, key: str, speech: Speech, method: str) -> None:
        path = self.path_for(key)
        if path is None:
            return
        try:
            atomic_write_bytes(path, _encode(key, speech, method))
        except OSError as e:
            with self._lock:
                self._stats.write_errors += 1
                warn, self._warned = not self._warned, True
            if warn:
                log.warning("speech cache: cannot write under %s (%s); continuing without "
                            "storing", self.directory, e)


_DEFAULTS: dict[tuple[str, bool], SpeechCache] = {}
_DEFAULTS_LOCK = threading.Lock()


def default_speech_cache() -> SpeechCache:
    """The process's shared cache for the current ``CHIMEIN_CACHE_DIR`` and
    ``CHIMEIN_SPEECH_CACHE`` (a new one if either changed since the last call)."""
    root, disk = default_cache_dir(), _disk_enabled()
    with _DEFAULTS_LOCK:
        c = _DEFAULTS.get((str(root), disk))
        if c is None:
            c = _DEFAULTS[(str(root), disk)] = SpeechCache(root, disk=disk)
        return c
