"""The assistant's own voice at the microphones: its reply from the loudspeaker, after echo cancellation.

A smart speaker hears itself. When the assistant answers, its reply leaves the scene's
loudspeaker (:mod:`chimein.scenes.loudspeaker`: a few centimetres from the microphones),
reverberates in the room and reaches every microphone far louder than a talker across the room.
Acoustic echo cancellation (AEC) removes most of it; what is left -- the *residual echo* -- is
what a full-duplex policy must learn not to mistake for a user turn.

- :func:`response_audio` is the dry reply: generator speech (a fixed voice speaking the replies
  of :data:`RESPONSES`, the first chosen from the scene seed, back to back until the assistant's
  speaking time is filled) or a recorded clip (looped the same way);
- :func:`assistant_echo` renders it from the loudspeaker to each microphone with the room's RIRs
  (a :class:`~chimein.scenes.rir.RIRCache`, the renderer's convolution) and scales it by the
  echo-cancellation residual ``residual_db`` (the echo left after AEC relative to the raw echo:
  -20 dB is an echo return loss enhancement of 20 dB, 0 dB no AEC at all).

Everything is a function of the spec and the options: the text choice comes from the scene seed,
generator speech is deterministic (:mod:`chimein.scenes.speech`), RIRs and the single-precision
FFT convolution are bit-identical in any process, so the same scene and options give the same
float32 echo anywhere. Results are cached per process (up to :data:`CACHE_BYTES`).

The echo is linear (a loudspeaker without distortion; the raw echo at 10 cm can be near full
scale, and only the residual reaches the observation) and does not pass through the scene's
device model (:mod:`chimein.scenes.device`), which belongs to the rendered scene.

Examples
--------
>>> from chimein.scenes.spec import Annotations, Mics, Room, SceneSpec
>>> spec = SceneSpec(id="s", seed=0, duration_s=3.0, room=Room(dims=(4.0, 3.0, 2.5), rt60=0.3),
...                  mics=Mics(((2.0, 1.5, 1.2), (2.05, 1.5, 1.2))), sources=(),
...                  annotations=Annotations())
>>> e = assistant_echo(spec, 1.0, residual_db=-20.0)
>>> e.dtype, e.shape[1], e.shape[0] > 16000
(dtype('float32'), 2, True)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from chimein.errors import SpecError
from chimein.scenes.loudspeaker import LEVEL_RANGE_DB, STREAM, loudspeaker_of
from chimein.scenes.spec import Mics, SceneSpec
from chimein.scenes.speech.edit import raised_cosine
from chimein.scenes.store import TieredStore

__all__ = [
    "CACHE_BYTES",
    "DEFAULT_VOICE",
    "FADE_S",
    "GAP_S",
    "RESPONSES",
    "assistant_echo",
    "response_audio",
    "split_voice",
]

DEFAULT_VOICE = "espeak-ng/en-us+f2"
"""``generator/voice`` of the assistant's replies (a training voice, :mod:`chimein.scenes.talkers`)."""
GAP_S = 0.3
"""Silence between two replies (or two plays of a clip) when one does not fill the speaking time."""
FADE_S = 0.02
"""Raised-cosine fade at the start and at the cut end of the reply (no click)."""
CACHE_BYTES = 64 * 2**20
"""Bytes of echoes kept per process (least recently used first out; about 300 two-second echoes
of two microphones)."""

RESPONSES: tuple[str, ...] = (
    "Okay, done.",
    "Sure, the timer is set for ten minutes.",
    "Here is what I found.",
    "Heads up, the smoke alarm is going off.",
    "It is seven thirty in the evening.",
    "Alright, I will remind you at six.",
    "The washing machine has finished.",
    "Sorry, I did not catch that.",
)
"""What the assistant says, in order; a scene starts at the reply its seed picks."""


def split_voice(voice: str, where: str = "voice") -> tuple[str, str]:
    """``"generator/voice"`` -> ``(generator, voice)``; a :class:`~chimein.errors.SpecError` when
    the generator or voice is unknown (:func:`chimein.scenes.speech.generators.generator_voices`)."""
    from chimein.scenes.speech.generators import GENERATORS, generator_voices

    g, sep, v = str(voice).partition("/")
    if not sep or g not in GENERATORS:
        raise SpecError(f"{where}: {voice!r} is not 'generator/voice' with a generator of {GENERATORS}; "
                        f"e.g. {DEFAULT_VOICE!r}")
    if v not in generator_voices(g):
        raise SpecError(f"{where}: {g} has no voice {v!r}; use one of {generator_voices(g)}")
    return g, v


def _unit(x: np.ndarray, what: str) -> np.ndarray:
    x64 = np.asarray(x, dtype=np.float64)
    rms = math.sqrt(float(np.mean(np.square(x64)))) if x64.size else 0.0
    if not rms > 0.0:
        raise SpecError(f"{what}: the reply is silent")
    return x64 / rms


def first_response(seed: int) -> int:
    """Index in :data:`RESPONSES` of a scene's first reply (from its seed)."""
    return int(np.random.SeedSequence([int(seed) % 2**64, STREAM]).generate_state(1)[0]) % len(RESPONSES)


def response_audio(speak_s: float, sample_rate: int = 16000, seed: int = 0, voice: str = DEFAULT_VOICE,
                   clip: str | Path | None = None) -> np.ndarray:
    """The assistant's dry reply for ``speak_s`` seconds: float64 mono, each utterance at unit RMS.

    Without ``clip``: ``voice`` (``generator/voice``) speaks :data:`RESPONSES`, starting at
    :func:`first_response` of ``seed`` and continuing in order, :data:`GAP_S` apart, until
    ``speak_s`` is filled. With ``clip``: the recording (any format
    :func:`~chimein.scenes.audio.load_audio` reads) is played the same way, looped. The end is
    cut at ``speak_s`` (the assistant stops when its turn ends); both ends fade over
    :data:`FADE_S`.

    Raises
    ------
    SpecError
        ``speak_s`` not positive, an unknown voice, a silent reply; ``AudioError`` (a SpecError)
        for an unreadable clip. ``ConfigError``: the voice's generator is not installed.
    """
    if isinstance(speak_s, bool) or not isinstance(speak_s, (int, float)) or not math.isfinite(speak_s) \
            or speak_s <= 0:
        raise SpecError(f"echo: the assistant's speaking time must be > 0 s, got {speak_s!r}")
    sr = int(sample_rate)
    n = max(1, int(round(speak_s * sr)))
    if clip is not None:
        from chimein.scenes.audio import load_audio

        recording = _unit(load_audio(Path(clip), sr), f"echo clip {str(clip)!r}")
    else:
        from chimein.scenes.speech import realize

        g, v = split_voice(voice)
        start = first_response(seed)
    gap = int(round(GAP_S * sr))
    out = np.zeros(n)
    t, k = 0, 0
    while t < n:
        if clip is None:
            text = RESPONSES[(start + k) % len(RESPONSES)]
            x = _unit(realize({"text": text, "generator": g, "voice": v}, sr).audio, f"echo reply {text!r}")
        else:
            x = recording
        m = min(x.size, n - t)
        out[t: t + m] = x[:m]
        t += x.size + gap
        k += 1
    f = min(n // 2, int(round(FADE_S * sr)))
    if f > 0:
        ramp = raised_cosine(f)
        out[:f] *= ramp
        out[n - f:] *= ramp[::-1]
    return out


#: The per-process echo cache: the memory LRU of the scene engine's caches, no disk (an echo is
#: a convolution of cached speech with cached RIRs, cheaper to redo than to store).
_ECHOES: TieredStore[np.ndarray] = TieredStore(None, CACHE_BYTES, ".npy", "echo cache", "recomputing",
                                               logging.getLogger(__name__))


def assistant_echo(spec: SceneSpec, speak_s: float, *, n_mics: int | None = None, level_db: float | None = None,
                   residual_db: float = -20.0, voice: str = DEFAULT_VOICE, clip: str | Path | None = None,
                   cache: Any = None) -> np.ndarray:
    """The assistant's reply as the microphones hear it after echo cancellation.

    :func:`response_audio` (``speak_s``, the scene's seed, ``voice`` or ``clip``) at the
    loudspeaker's level, convolved with the RIRs from the scene's loudspeaker
    (:func:`~chimein.scenes.loudspeaker.loudspeaker_of`) to each of its first ``n_mics``
    microphones, times ``10 ** (residual_db / 20)``.

    Parameters
    ----------
    spec
        The scene (room, microphones, loudspeaker, seed, sample rate).
    speak_s
        How long the assistant speaks (s).
    n_mics
        Microphones to render (the first ones; None: all).
    level_db
        Dry level of the reply (dBFS RMS); None: the loudspeaker's.
    residual_db
        The echo left after echo cancellation, relative to the raw echo (<= 0 dB; 0: no AEC).
    voice, clip
        Generator voice (``generator/voice``) of the replies, or a recording to play instead.
    cache
        A :class:`~chimein.scenes.rir.RIRCache` (None: a private in-memory one).

    Returns
    -------
    np.ndarray
        Read-only float32 ``(samples, n_mics)``: ``speak_s`` of reply plus the room's
        reverberant tail (the RIR length), not clipped. Cached per process by scene and options
        (a clip is read once per path: edit it under a new name).
    """
    n = spec.mics.n if n_mics is None else int(n_mics)
    if not 1 <= n <= spec.mics.n:
        raise SpecError(f"echo: n_mics={n_mics} but scene {spec.id!r} has {spec.mics.n} microphone(s)")
    if not -100.0 <= float(residual_db) <= 0.0:
        raise SpecError(f"echo: field 'residual_db': must be in [-100, 0] dB, got {residual_db}")
    ls = loudspeaker_of(spec)
    level = ls.level_db if level_db is None else float(level_db)
    if not LEVEL_RANGE_DB[0] <= level <= LEVEL_RANGE_DB[1]:
        raise SpecError(f"echo: field 'level_db': must be in [-60, 0] dBFS, got {level}")
    mics = Mics(tuple(spec.mics.positions[:n]), spec.mics.layout)
    key = json.dumps({"room": dataclasses.asdict(spec.room), "mics": [list(p) for p in mics.positions],
                      "at": list(ls.position), "level": level, "residual": float(residual_db),
                      "voice": None if clip is not None else str(voice), "clip": None if clip is None else str(clip),
                      "speak_s": float(speak_s), "sr": int(spec.sample_rate), "seed": int(spec.seed)},
                     sort_keys=True)
    hit = _ECHOES._mem_get(key)
    if hit is not None:
        return hit
    from chimein.scenes.render import _convolve_sources
    from chimein.scenes.rir import RIRCache

    sr = int(spec.sample_rate)
    dry = response_audio(speak_s, sr, spec.seed, voice, clip)
    dry32 = (dry * 10.0 ** ((level + float(residual_db)) / 20.0)).astype(np.float32)
    rirs = cache if cache is not None else RIRCache(disk=False)
    ((rkey, h),) = rirs.lookup(spec.room, mics, [ls.position], sr, seed=spec.seed)
    wet = np.zeros((n, dry32.size + h.shape[1] - 1), np.float32)
    _convolve_sources(wet, [(0, dry32, h, rkey)], rirs)
    out = np.ascontiguousarray(wet.T)
    out.flags.writeable = False
    _ECHOES._count_computed()
    _ECHOES._mem_put(key, out, out.nbytes)
    return out
