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

import functools
import hashlib
import json
import logging
import os
import struct
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from chimein.errors import SpecError
from chimein.scenes.spec import Word
from chimein.scenes.speech.base import Speech
from chimein.scenes.store import CacheStats, TieredStore, default_cache_dir

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


class SpeechCache(TieredStore[tuple[Speech, str]]):
    """Generator output by content: an in-memory LRU (bounded in bytes) over a folder.

    Parameters
    ----------
    cache_dir : str or Path, optional
        Root folder; entries go to ``<cache_dir>/speech/<key[:2]>/<key>.speech``. Default
        :func:`chimein.scenes.store.default_cache_dir` (``$CHIMEIN_CACHE_DIR`` or
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
        super().__init__(self.root / "speech" if use_disk else None, memory_bytes, ".speech",
                         "speech cache", "regenerating", log)

    @staticmethod
    def key(fields: Mapping[str, Any]) -> str:
        """SHA-256 (hex) of a canonical JSON of ``fields`` plus :data:`FORMAT_VERSION`."""
        doc = {"format": FORMAT_VERSION, **dict(fields)}
        text = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    # ---------------------------------------------------------------- lookup
    def get(self, key: str) -> tuple[Speech, str] | None:
        """The cached ``(speech, timing method)`` of ``key`` (memory, then disk), or ``None``."""
        hit = self._mem_get(key)
        if hit is None:
            hit = self._disk_read(key, functools.partial(_decode, key=key))
            if hit is not None:
                self._mem_put(key, hit, int(hit[0].audio.nbytes))
        return hit

    def put(self, key: str, speech: Speech, method: str) -> None:
        """Store a computed result in memory and on disk."""
        self._disk_write(key, functools.partial(_encode, key, speech, method))
        self._mem_put(key, (speech, method), int(speech.audio.nbytes))

    def get_or_make(self, key: str, make: Callable[[], tuple[Speech, str]]
                    ) -> tuple[Speech, str]:
        """The cached result of ``key``, else ``make()`` (counted as computed, then stored)."""
        hit = self.get(key)
        if hit is not None:
            return hit
        speech, method = make()
        self._count_computed()
        self.put(key, speech, method)
        return speech, method


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
