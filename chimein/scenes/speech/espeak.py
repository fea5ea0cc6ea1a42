"""The espeak-ng generator: offline formant synthesis with word-level timings.

The PyPI wheel ``espeakng-loader`` ships ``libespeak-ng`` 1.52 and its data, so speech needs no
system package and no download (see REFERENCE.md, "Speech without a system package"). The
library is driven through ctypes: ``espeak_Initialize`` with ``AUDIO_OUTPUT_SYNCHRONOUS``, a
synth callback that collects 16-bit samples (22050 Hz native) and ``espeakEVENT_WORD`` events,
``espeak_SetVoiceByName``, ``espeak_SetParameter`` (rate, pitch, pitch range), ``espeak_Synth``.

Why a helper process
--------------------
espeak-ng keeps synthesiser state in C statics that no API call resets (for instance the pitch
"flutter" phase in ``wavegen.c``): synthesising the same text twice in one process gives
different samples and even different lengths, and ``espeak_Terminate`` + ``espeak_Initialize``
does not help. To make every call bit-identical whatever ran before, in any process, each
process starts one small helper interpreter (``python -I -S``: ctypes only, about 20 ms, once)
that initialises espeak-ng and then **never synthesises itself**: for each request it forks, the
child synthesises from the pristine post-initialisation state and sends the result back, and
exits. A fork of the small single-threaded helper costs about a millisecond, and the calling
process (which may run torch threads) never forks. Results are cached per process
(:func:`functools.lru_cache`), so repeated utterances cost nothing.

Timing
------
Word starts come from espeak's word events (the ``sample`` field: the output sample at which
the word's first phoneme starts); each whitespace token of the text is one :class:`Word` (see
:func:`_word_times` for words espeak joins or splits). Leading and trailing silence is trimmed
on 10 ms frames (a frame is speech when its RMS is within :data:`SILENCE_DB` dB of the loudest
frame) and word times are shifted accordingly, so the audio starts and ends with speech. A word
*ends* at the end of the last speech frame before the next word starts (so a comma pause
belongs to no word), or at the next word's start when speech runs on; the last word ends where
speech energy ends, which is the end of the trimmed audio.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

from chimein.errors import SpecError
from chimein.scenes.audio import resample
from chimein.scenes.spec import Word
from chimein.scenes.speech.base import Speech

__all__ = [
    "NATIVE_SAMPLE_RATE",
    "SILENCE_DB",
    "VOICES",
    "Speech",
    "available_voice",
    "synthesize",
]

NATIVE_SAMPLE_RATE = 22050
"""espeak-ng's output rate; :func:`synthesize` resamples from it."""

SILENCE_DB = -45.0
"""A 10 ms frame quieter than this (dB relative to the loudest frame) counts as silence."""

FRAME_S = 0.010
"""Frame length used for trimming and for word ends."""

VOICES: tuple[str, ...] = (
    "en-us",
    "en-us+f3",
    "en-us+m3",
    "en-us+f2",
    "en-us-nyc+m5",
    "en-gb+m2",
    "en-gb+f4",
    "en-gb-x-rp+m7",
    "en-gb-x-rp+f2",
    "en-gb-scotland+m1",
    "en-gb-scotland+f1",
    "en-029+m4",
    "en-gb-x-gbclan+m6",
    "en-gb-x-gbcwmd+f5",
    "en-us+Annie",
    "en-us+Andy",
)
"""English voice/variant names that exist in the shipped data and sound distinct (accent from
the base voice, formants/pitch from the ``+variant``). Any shipped ``base[+variant]`` works in
:func:`synthesize`; ``en-gb`` is accepted as an alias of espeak's British voice ``en``."""

_ALIASES = {"en-gb": "en", "en-uk": "en"}
_MAX_TEXT_CHARS = 2000
_EDGE_PUNCT = "\"'.,;:!?()[]{}<>-*&~`"

# espeak-ng constants (speak_lib.h)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_EVENT_WORD = 1
_RATE, _PITCH, _RANGE = 1, 3, 4
_CHARS_UTF8 = 1
_POS_CHARACTER = 1

# ------------------------------------------------------------------------------------------
# The helper program: run as `python -I -S -c _HELPER_SRC LIBPATH DATAPATH`. Stdlib only.
# Protocol (little endian). Handshake from helper: <i status><i native_rate>.
# Request: <I n> + n bytes of JSON {text, voice, rate, pitch, range}.
# Reply: <i status><I n> + n bytes; status 0: <I n_samples><I n_words> int16 samples, then
# n_words x <iiii> (text_position, length, audio_position_ms, sample); else a UTF-8 message.
# ------------------------------------------------------------------------------------------
_HELPER_SRC = r"""
import ctypes, json, os, signal, struct, sys

lib = ctypes.CDLL(sys.argv[1])
inp, out = sys.stdin.buffer, sys.stdout.buffer

class Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]

CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                            ctypes.POINTER(Event))
lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                             ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]

audio, words = [], []

@CALLBACK
def on_synth(wav, n, events):
    if n > 0:
        audio.append(ctypes.string_at(wav, 2 * n))
    i = 0
    while events[i].type != 0:
        e = events[i]
        if e.type == __EVENT_WORD__:
            words.append(struct.pack("<iiii", e.text_position, e.length, e.audio_position,
                                     e.sample))
        i += 1
    return 0

def send(status, payload):
    out.write(struct.pack("<iI", status, len(payload)) + payload)
    out.flush()

rate = lib.espeak_Initialize(__SYNC__, 0, sys.argv[2].encode(), 0)
send(0 if rate > 0 else 1, struct.pack("<i", rate))
if rate <= 0:
    sys.exit(1)
lib.espeak_SetSynthCallback(on_synth)

def synth(req):
    if hasattr(lib, "espeak_ng_SetRandSeed"):
        lib.espeak_ng_SetRandSeed(ctypes.c_long(1))
    ctypes.CDLL(None).srand(1)
    if lib.espeak_SetVoiceByName(req["voice"].encode()) != 0:
        return 3, ("espeak-ng has no voice %r" % req["voice"]).encode()
    for par, key in ((__RATE__, "rate"), (__PITCH__, "pitch"), (__RANGE__, "range")):
        lib.espeak_SetParameter(par, int(req[key]), 0)
    text = req["text"].encode("utf-8")
    err = lib.espeak_Synth(text, len(text) + 1, 0, __POS__, 0, __UTF8__, None, None)
    if err != 0:
        return 4, ("espeak_Synth failed with error %d" % err).encode()
    pcm = b"".join(audio)
    return 0, struct.pack("<II", len(pcm) // 2, len(words)) + pcm + b"".join(words)

while True:
    head = inp.read(4)
    if len(head) < 4:
        break
    req = json.loads(inp.read(struct.unpack("<I", head)[0]))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pristine copy: synthesise once, report, exit
        os.close(r)
        signal.alarm(120)
        try:
            status, payload = synth(req)
        except BaseException as e:
            status, payload = 5, repr(e).encode()
        data = memoryview(struct.pack("<iI", status, len(payload)) + payload)
        while data:
            data = data[os.write(w, data):]
        os._exit(0)
    os.close(w)
    chunks = []
    while True:
        c = os.read(r, 1 << 20)
        if not c:
            break
        chunks.append(c)
    os.close(r)
    _, wstatus = os.waitpid(pid, 0)
    data = b"".join(chunks)
    ok = len(data) >= 8 and len(data) == 8 + struct.unpack("<iI", data[:8])[1]
    if wstatus != 0 or not ok:
        send(6, ("synthesis process died (wait status %d)" % wstatus).encode())
    else:
        out.write(data)
        out.flush()
""".replace("__EVENT_WORD__", str(_EVENT_WORD)).replace(
    "__SYNC__", str(_AUDIO_OUTPUT_SYNCHRONOUS)
).replace("__RATE__", str(_RATE)).replace("__PITCH__", str(_PITCH)).replace(
    "__RANGE__", str(_RANGE)
).replace("__POS__", str(_POS_CHARACTER)).replace("__UTF8__", str(_CHARS_UTF8))


class _Helper:
    """One helper process, owned by the process that started it."""

    def __init__(self) -> None:
        import espeakng_loader

        self.pid_owner = os.getpid()
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _HELPER_SRC,
             espeakng_loader.get_library_path(), espeakng_loader.get_data_path()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        try:
            status, payload = self._read_reply()
        except RuntimeError:
            self.close()
            raise
        rate = struct.unpack("<i", payload)[0] if len(payload) == 4 else -1
        if status != 0 or rate != NATIVE_SAMPLE_RATE:
            self.close()
            raise RuntimeError(
                f"espeak-ng failed to initialise (status {status}, sample rate {rate}); "
                "reinstall the espeakng-loader wheel"
            )

    def _read_exact(self, n: int) -> bytes:
        assert self.proc.stdout is not None
        data = self.proc.stdout.read(n)
        if data is None or len(data) != n:
            raise RuntimeError("the espeak-ng helper process exited unexpectedly")
        return data

    def _read_reply(self) -> tuple[int, bytes]:
        status, n = struct.unpack("<iI", self._read_exact(8))
        return status, self._read_exact(n)

    def request(self, req: dict[str, object]) -> tuple[int, bytes]:
        assert self.proc.stdin is not None
        body = json.dumps(req, sort_keys=True).encode("utf-8")
        self.proc.stdin.write(struct.pack("<I", len(body)) + body)
        self.proc.stdin.flush()
        return self._read_reply()

    def close(self) -> None:
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                f.close()
        self.proc.wait()


_LOCK = threading.Lock()
_HELPER: _Helper | None = None
_INHERITED: list[_Helper] = []  # helpers of a parent, kept (never used) after a fork


def _after_fork_in_child() -> None:
    """A forked child must not talk to its parent's helper: it starts its own on first use."""
    global _HELPER, _LOCK
    if _HELPER is not None:
        _INHERITED.append(_HELPER)  # keep its file objects alive so they are never flushed
    _HELPER = None
    _LOCK = threading.Lock()


def _close_at_exit() -> None:
    """Stop this process's helper (it would also exit on its own when its stdin closes)."""
    global _HELPER
    helper, _HELPER = _HELPER, None
    if helper is not None and helper.pid_owner == os.getpid():
        with contextlib.suppress(OSError):
            helper.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_at_exit)


def _raw_synth(text: str, voice: str, rate: int, pitch: int, pitch_range: int
               ) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Int16 samples at the native rate and word events, from a pristine espeak-ng."""
    global _HELPER
    req = {"text": text, "voice": voice, "rate": rate, "pitch": pitch, "range": pitch_range}
    with _LOCK:
        if _HELPER is None or _HELPER.pid_owner != os.getpid():
            _HELPER = _Helper()
        try:
            status, payload = _HELPER.request(req)
        except (OSError, RuntimeError):
            helper, _HELPER = _HELPER, None  # restart on the next call
            with contextlib.suppress(OSError):
                helper.close()
            raise
    if status == 3:
        raise SpecError(f"speech: field 'voice': {payload.decode()}; choose one of {VOICES}")
    if status != 0:
        raise RuntimeError(f"espeak-ng synthesis failed: {payload.decode(errors='replace')}")
    n_samples, n_words = struct.unpack("<II", payload[:8])
    pcm = np.frombuffer(payload, dtype="<i2", count=n_samples, offset=8)
    ev = np.frombuffer(payload, dtype="<i4", count=4 * n_words, offset=8 + 2 * n_samples)
    return pcm, [(int(a), int(b), int(c), int(d)) for a, b, c, d in ev.reshape(n_words, 4)]


# ------------------------------------------------------------------------------------------
# Voices
# ------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _voice_files() -> tuple[dict[str, str], dict[str, str]]:
    """(base voices, variants) shipped with the wheel: lower-case name -> name to pass."""
    import espeakng_loader

    data = Path(espeakng_loader.get_data_path())
    bases: dict[str, str] = {}
    for p in sorted((data / "lang").rglob("*")):
        if p.is_file():
            bases[p.name.lower()] = p.name.lower()
            bases[p.relative_to(data / "lang").as_posix().lower()] = p.name.lower()
    variants = {p.name.lower(): p.name for p in sorted((data / "voices" / "!v").iterdir())
                if p.is_file()}
    return bases, variants


def available_voice(voice: str) -> str:
    """Return the canonical espeak-ng name of ``voice`` or raise :class:`SpecError`.

    ``voice`` is ``base`` or ``base+variant``: a language voice shipped with espeak-ng
    (``en-us``, ``en-gb`` (alias of ``en``), ``en-gb-x-rp``, ``en-029`` ...) and an optional
    variant (``f1``..``f5``, ``m1``..``m8``, ``Annie`` ...), matched case-insensitively.

    Examples
    --------
    >>> available_voice("en-GB+M3")
    'en+m3'
    """
    if not isinstance(voice, str) or not voice.strip():
        raise SpecError(f"speech: field 'voice': need a voice name like 'en-us+f3', got {voice!r}")
    bases, variants = _voice_files()
    base, _, variant = voice.strip().lower().partition("+")
    base = _ALIASES.get(base, base)
    if base not in bases:
        raise SpecError(f"speech: field 'voice': unknown espeak-ng voice {base!r} in {voice!r}; "
                        f"use one of {VOICES} (or another shipped language voice)")
    name = bases[base]
    if variant:
        if variant not in variants:
            raise SpecError(f"speech: field 'voice': unknown variant {variant!r} in {voice!r}; "
                            f"known variants: {sorted(variants.values())}")
        name += "+" + variants[variant]
    return name


# ------------------------------------------------------------------------------------------
# Public API
# ------------------------------------------------------------------------------------------
def _int_field(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise SpecError(f"speech: field '{name}': need an integer in [{lo}, {hi}], got {value!r}")
    if not lo <= int(value) <= hi:
        raise SpecError(f"speech: field '{name}': {int(value)} is outside [{lo}, {hi}]")
    return int(value)


def synthesize(
    text: str,
    voice: str = "en-us",
    rate: int = 175,
    pitch: int = 50,
    sample_rate: int = 16000,
    pitch_range: int = 50,
) -> Speech:
    """Speak ``text`` with espeak-ng; deterministic, cached, silence-trimmed, word-timed.

    Parameters
    ----------
    text : str
        What to say (plain text; punctuation shapes pauses and intonation).
    voice : str
        ``base[+variant]``, e.g. one of :data:`VOICES`; see :func:`available_voice`.
    rate : int
        Speaking rate in words per minute, 80-450.
    pitch : int
        Base pitch, 0-99 (espeak-ng's scale; 50 is the voice's normal pitch).
    sample_rate : int
        Output rate in Hz; espeak-ng's 22050 Hz output is resampled polyphase.
    pitch_range : int
        Intonation range, 0-99 (0 is monotone, 50 normal).

    Returns
    -------
    Speech
        Same arguments give bit-identical output in any process (see the module notes).

    Raises
    ------
    SpecError
        An argument is invalid (the message names the field), or the text makes no sound.

    Examples
    --------
    >>> s = synthesize("hey chime, what's the weather tomorrow", voice="en-us+f3")
    >>> s.sample_rate, s.audio.dtype, [w.text for w in s.words][:2]
    (16000, dtype('float32'), ['hey', 'chime'])
    >>> abs(s.words[-1].end_s - s.duration_s) < 0.01
    True
    """
    if not isinstance(text, str) or not text.strip():
        raise SpecError(f"speech: field 'text': need non-empty text to speak, got {text!r}")
    if len(text) > _MAX_TEXT_CHARS:
        raise SpecError(f"speech: field 'text': {len(text)} characters; split texts longer "
                        f"than {_MAX_TEXT_CHARS} into several utterances")
    name = available_voice(voice)
    rate_i = _int_field("rate", rate, 80, 450)
    pitch_i = _int_field("pitch", pitch, 0, 99)
    range_i = _int_field("pitch_range", pitch_range, 0, 99)
    sr = _int_field("sample_rate", sample_rate, 8000, 192000)
    return _synthesize(" ".join(text.split()), name, rate_i, pitch_i, sr, range_i)


@functools.lru_cache(maxsize=256)
def _synthesize(text: str, voice: str, rate: int, pitch: int, sample_rate: int,
                pitch_range: int) -> Speech:
    pcm, events = _raw_synth(text, voice, rate, pitch, pitch_range)
    x = pcm.astype(np.float32) / np.float32(32768.0)
    active, hop = _active_frames(x, NATIVE_SAMPLE_RATE)
    if not active.any():
        raise SpecError(f"speech: field 'text': {text!r} produces no audible speech; "
                        "use words espeak-ng can pronounce")
    idx = np.flatnonzero(active)
    lo, hi = int(idx[0]) * hop, min(x.shape[0], (int(idx[-1]) + 1) * hop)
    words = _word_times(text, events, active, hop, lo, hi)
    y = np.ascontiguousarray(resample(x[lo:hi], NATIVE_SAMPLE_RATE, sample_rate),
                             dtype=np.float32)
    y.flags.writeable = False
    return Speech(audio=y, sample_rate=sample_rate, words=words)


def _active_frames(x: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
    """Per 10 ms frame: is it speech (RMS within SILENCE_DB of the loudest frame)?"""
    hop = round(FRAME_S * sr)
    n = -(-x.shape[0] // hop)
    frames = np.zeros(n * hop, dtype=np.float64)
    frames[: x.shape[0]] = x
    rms = np.sqrt(np.mean(frames.reshape(n, hop) ** 2, axis=1))
    peak = float(rms.max()) if n else 0.0
    if peak <= 0.0:
        return np.zeros(n, dtype=bool), hop
    return rms > peak * 10.0 ** (SILENCE_DB / 20.0), hop


def _word_times(text: str, events: list[tuple[int, int, int, int]], active: np.ndarray,
                hop: int, lo: int, hi: int) -> tuple[Word, ...]:
    """Words from espeak word events, in seconds from the trimmed start ``lo``.

    espeak reports a word's text position and the output sample where it starts, but joins
    some unstressed words to a neighbour ("in the garden" gives events for "in" and "garden"),
    stops a word at an apostrophe ("what" of "what's") and splits some ("l|ive", "6|:30"). So
    the text is cut at the events that start a whitespace token, every whitespace token of a
    piece is a word, and a piece with several tokens shares its time span in proportion to
    their letters. A piece *ends* at the end of its last speech frame before the next piece
    starts (a comma pause belongs to no word), or at the next start where speech runs into the
    next piece's frame; the last piece ends at the trimmed end ``hi``, where speech energy ends.
    """
    marks = sorted((max(pos - 1, 0), min(max(sample, lo), hi))
                   for pos, length, _ms, sample in events if length > 0)
    # an event inside a whitespace token ("l|ive", "6|:30") continues the previous word
    marks = [m for i, m in enumerate(marks)
             if i == 0 or m[0] == 0 or m[0] > len(text) or text[m[0] - 1].isspace()]
    pieces: list[tuple[int, list[str]]] = []  # (start sample, tokens)
    last = lo
    for i, (p, sample) in enumerate(marks):
        stop = marks[i + 1][0] if i + 1 < len(marks) else len(text)
        seg = text[0 if i == 0 else p: stop]
        tokens = [t for t in (tok.strip(_EDGE_PUNCT) for tok in seg.split()) if t]
        last = max(last, sample)  # keep starts monotonic in text order
        if tokens:
            pieces.append((last, tokens))
    out: list[Word] = []
    for i, (s, tokens) in enumerate(pieces):
        if i + 1 == len(pieces):
            e = hi
        else:
            nxt = pieces[i + 1][0]
            f0, f1 = s // hop, nxt // hop
            seg_active = np.flatnonzero(active[f0:f1])
            contiguous = seg_active.size == 0 or seg_active[-1] == f1 - f0 - 1
            e = nxt if contiguous else (f0 + int(seg_active[-1]) + 1) * hop
        e = min(max(e, s), hi)
        weights = np.cumsum([0] + [len(t) for t in tokens]) / sum(len(t) for t in tokens)
        bounds = s + weights * (e - s)
        for j, tok in enumerate(tokens):
            out.append(Word(text=tok, start_s=float(bounds[j] - lo) / NATIVE_SAMPLE_RATE,
                            end_s=float(bounds[j + 1] - lo) / NATIVE_SAMPLE_RATE))
    return tuple(out)
