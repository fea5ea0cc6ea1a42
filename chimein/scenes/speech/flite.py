"""The flite generator: CMU Flite's built-in English voices, timed by their segment durations.

Flite comes from the system package (Debian/Ubuntu ``apt-get install flite``; ``make test``
installs it). Each synthesis runs the ``flite`` program once (about 40 ms), with the text as
one argument (no shell), writing a 16 kHz WAV file and printing the segment stream with end
times (``-psdur``: ``pau:0.164 hh:0.261 ey:0.349 ...``). A fresh process per call means no
state carries over between syntheses, so the output is the same in any process and any order.

Voices: ``slt`` (US female), ``rms`` (US male), ``awb`` (Scottish male) — clustergen
statistical parametric voices — and ``kal16`` (US male diphone voice), all 16 kHz. ``kal``
(8 kHz) and ``awb_time`` (a limited-domain talking clock) are not offered. flite silently
falls back to its default voice for an unknown name, so voices are checked here first.

Timing
------
flite reports segments but not words. Each distinct token of the text is looked up once
(``flite -voice V -ps -t TOKEN``, cached per process) to get its phones, and the token phones
are aligned with the utterance's segment stream (pauses left out) by edit distance
(:func:`.align.map_phones`), which absorbs context effects ("the" -> ``dh iy`` before a vowel,
"Dr." read as "doctor" in context). A word spans its first to its last segment. If the
sequences disagree too much, :mod:`.generators` falls back to forced alignment.

The diphone voice ``kal16`` reports a final pause about 115 ms longer than the audio it
writes; the speech segments are on time (checked against forced alignment), so only the
trailing pause is cut short and the times are used as reported.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from chimein.errors import ConfigError, SpecError
from chimein.scenes.speech.align import TimedAudio, map_phones

__all__ = ["INSTALL_HINT", "NATIVE_SAMPLE_RATE", "VOICES", "available", "check_voice", "render",
           "version"]

NATIVE_SAMPLE_RATE = 16000
"""Rate of the offered voices' output."""

VOICES: tuple[str, ...] = ("slt", "rms", "awb", "kal16")
"""The flite voices offered (all 16 kHz, general domain)."""

INSTALL_HINT = ("install flite: `apt-get install -y flite` (Debian/Ubuntu; `make test` does it "
                "when it runs as root) or your system's flite 2.x package")

_PAUSE = "pau"
_TIMEOUT_S = 60
_MAX_PARALLEL = 8


def _binary() -> str | None:
    return shutil.which("flite")


def available() -> bool:
    """Whether a ``flite`` program is on ``PATH`` and offers the voices of :data:`VOICES`."""
    if _binary() is None:
        return False
    try:
        return set(VOICES) <= set(_listed_voices())
    except ConfigError:
        return False


def _require() -> str:
    exe = _binary()
    if exe is None:
        raise ConfigError(f"speech: generator 'flite' needs the flite program, which is not on "
                          f"PATH; {INSTALL_HINT}, or leave flite out of the scenes: "
                          "scenes.speech_generators=[espeak-ng,piper]")
    return exe


def _run(args: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
    exe = _require()
    try:
        return subprocess.run([exe, *args], capture_output=True, timeout=_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ConfigError(f"speech: generator 'flite': running {exe} failed ({e}); "
                          f"{INSTALL_HINT}") from None


@functools.lru_cache(maxsize=1)
def _listed_voices() -> tuple[str, ...]:
    out = _run(["-lv"]).stdout.decode(errors="replace")
    return tuple(out.partition(":")[2].split()) if ":" in out else tuple(out.split())


@functools.lru_cache(maxsize=1)
def version() -> str:
    """flite's version line and voice list (part of the speech cache key)."""
    out = _run(["--version"]).stdout.decode(errors="replace")
    line = next((ln.strip() for ln in out.splitlines() if "version" in ln), out.strip())
    return f"{line}; voices {' '.join(_listed_voices())}"


def check_voice(voice: str) -> str:
    """``voice`` if flite offers it here, else :class:`SpecError` (or :class:`ConfigError`
    when flite is missing or lacks a voice of :data:`VOICES`)."""
    if voice not in VOICES:
        raise SpecError(f"speech: field 'voice': flite has no voice {voice!r}; use one of {VOICES}")
    if voice not in _listed_voices():
        raise ConfigError(f"speech: generator 'flite': this flite lacks voice {voice!r} "
                          f"(it lists {_listed_voices()}); {INSTALL_HINT}")
    return voice


def _parse_segments(out: str) -> list[tuple[str, float, float]]:
    """``pau:0.164 hh:0.261 ...`` -> ``[(phone, start_s, end_s), ...]`` (pauses included)."""
    segs: list[tuple[str, float, float]] = []
    t = 0.0
    for item in out.split():
        name, sep, end = item.rpartition(":")
        if not sep:
            continue
        try:
            e = float(end)
        except ValueError:
            continue
        segs.append((name, t, e))
        t = e
    return segs


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ConfigError(f"speech: generator 'flite' wrote {w.getnchannels()}-channel "
                              f"{8 * w.getsampwidth()}-bit audio, expected 16-bit mono; "
                              f"{INSTALL_HINT}")
        sr = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / np.float32(32768.0), int(sr)


_TOKEN_PHONES: dict[tuple[str, str], tuple[str, ...]] = {}


def _token_phones(voice: str, tokens: Sequence[str]) -> list[tuple[str, ...]]:
    """Phones of each token spoken on its own (``flite -ps``), run in parallel, cached."""
    todo = sorted({t for t in tokens if (voice, t) not in _TOKEN_PHONES})
    exe = _require()
    for i in range(0, len(todo), _MAX_PARALLEL):
        batch = todo[i: i + _MAX_PARALLEL]
        procs = [subprocess.Popen([exe, "-voice", voice, "-ps", "-t", t, "-o", "none"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                 for t in batch]
        for t, p in zip(batch, procs, strict=True):
            out, _ = p.communicate(timeout=_TIMEOUT_S)
            _TOKEN_PHONES[(voice, t)] = tuple(ph for ph in out.decode(errors="replace").split()
                                              if ph != _PAUSE)
    return [_TOKEN_PHONES[(voice, t)] for t in tokens]


def render(text: str, voice: str, tokens: Sequence[str]) -> TimedAudio:
    """Synthesise ``text`` with flite ``voice``; word spans of ``tokens`` from its segments.

    ``tokens`` are the text's words (edge punctuation stripped); ``spans`` is ``None`` when
    the segment stream cannot be mapped onto them (the caller then aligns the audio).

    Raises
    ------
    ConfigError
        flite is missing or failed.
    SpecError
        Unknown voice.
    """
    check_voice(voice)
    with tempfile.TemporaryDirectory(prefix="chimein-flite-") as tmp:
        wav = Path(tmp) / "out.wav"
        res = _run(["-voice", voice, "-psdur", "-t", text, "-o", os.fspath(wav)])
        if res.returncode != 0 or not wav.exists():
            raise ConfigError(f"speech: generator 'flite' failed (exit status "
                              f"{res.returncode}: {res.stderr.decode(errors='replace')[-300:]}); "
                              f"{INSTALL_HINT}")
        x, sr = _read_wav(wav)
    segs = _parse_segments(res.stdout.decode(errors="replace"))
    phones = [s for s in segs if s[0] != _PAUSE]
    spans = map_phones(_token_phones(voice, tokens), phones) if tokens and phones else None
    return TimedAudio(audio=x, sample_rate=sr, spans=spans)
