"""Synthesis of one event instance, normalised to unit RMS over its active part.

:func:`synthesize_event` is what the renderer calls for an ``event`` source: it looks up the
class, derives the duration and the synthesiser's generator from the instance seed, runs the
class's synthesiser and normalises the result (active-part RMS 1, soft-limited peaks), so a
renderer sets the level with one gain. :func:`active_mask` and :func:`active_rms` define the
active part.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from chimein.errors import SpecError
from chimein.scenes.events.registry import get_event_class

#: Shortest and longest event :func:`synthesize_event` makes (seconds).
MIN_DURATION_S = 0.05
MAX_DURATION_S = 600.0

#: Active-part definition used for normalisation: 20 ms frames within 40 dB of the loudest.
ACTIVE_FRAME_S = 0.02
ACTIVE_RANGE_DB = 40.0

#: Peak limit (x active RMS) of the soft limiter applied before normalisation: keeps impulsive
#: classes (crackle, snaps) from clipping when a renderer raises them to a high level.
MAX_CREST = 12.0


def active_mask(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Boolean per-sample mask of the *active part* of ``x``.

    The signal is cut into 20 ms frames (the last one may be shorter); a frame is active when
    its mean square is within 40 dB of the loudest frame's. Silence between beeps and the tail
    of a decay do not count, so a beep pattern and a continuous hum of the same loudness get
    the same level.
    """
    x = np.asarray(x, dtype=np.float64)
    fl = max(1, int(round(ACTIVE_FRAME_S * sample_rate)))
    nf = math.ceil(len(x) / fl)
    pad = np.zeros(nf * fl)
    pad[: len(x)] = np.square(x)
    counts = np.full(nf, fl, dtype=np.float64)
    counts[-1] = len(x) - (nf - 1) * fl
    e = pad.reshape(nf, fl).sum(axis=1) / counts
    top = float(e.max()) if nf else 0.0
    if top <= 0.0:
        return np.zeros(len(x), dtype=bool)
    act = e >= top * 10 ** (-ACTIVE_RANGE_DB / 10)
    return np.repeat(act, fl)[: len(x)]


def active_rms(x: np.ndarray, sample_rate: int) -> float:
    """RMS of ``x`` over its active part (see :func:`active_mask`); 0 for silence."""
    m = active_mask(x, sample_rate)
    if not m.any():
        return 0.0
    return float(np.sqrt(np.mean(np.square(np.asarray(x, dtype=np.float64)[m]))))


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise SpecError(f"event: field 'seed': need a non-negative integer, got {seed!r}")
    return int(seed)


def _check_duration(d: object, field: str) -> float:
    if (
        isinstance(d, bool)
        or not isinstance(d, (int, float, np.integer, np.floating))
        or not math.isfinite(float(d))
        or not MIN_DURATION_S <= float(d) <= MAX_DURATION_S
    ):
        raise SpecError(
            f"event: field '{field}': need a number of seconds in "
            f"[{MIN_DURATION_S}, {MAX_DURATION_S}], got {d!r}"
        )
    return float(d)


def synthesize_event(
    audio: Mapping, sample_rate: int = 16000, duration_s: float | None = None
) -> np.ndarray:
    """Synthesise one sound event, normalised to unit RMS over its active part.

    Parameters
    ----------
    audio : ``{"cls": name, "seed": int}``, optionally ``"duration_s"``.
    sample_rate : output rate in Hz (4000-192000).
    duration_s : length in seconds; else ``audio["duration_s"]``; else drawn uniformly from the
        class's ``default_duration_s`` with the seed (rounded to 1 ms).

    Returns
    -------
    np.ndarray
        float32 mono of exactly ``round(duration_s * sample_rate)`` samples whose RMS over the
        active part (20 ms frames within 40 dB of the loudest, :func:`active_mask`) is 1, so a
        renderer scales it with ``10 ** (level_db / 20)``. The same ``audio`` gives bit-identical
        samples in any process; different seeds give different instances.

    Raises
    ------
    SpecError
        ``audio`` is not a mapping, the class is unknown, or the seed, duration or sample rate
        is invalid (the message names the field).

    Examples
    --------
    >>> x = synthesize_event({"cls": "doorbell", "seed": 3}, 8000, 2.5)
    >>> x.shape, round(active_rms(x, 8000), 4)
    ((20000,), 1.0)
    """
    if not isinstance(audio, Mapping):
        raise SpecError(
            f"event: field 'audio': need a mapping like {{'cls': 'doorbell', 'seed': 0}}, "
            f"got {type(audio).__name__}"
        )
    if "cls" not in audio:
        raise SpecError(
            "event: field 'cls': missing; name an event class, e.g. {'cls': 'doorbell'}"
        )
    ec = get_event_class(audio["cls"])
    seed = _check_seed(audio.get("seed", 0))
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, (int, np.integer))
        or not 4000 <= int(sample_rate) <= 192000
    ):
        raise SpecError(
            f"event: field 'sample_rate': need an integer in [4000, 192000] Hz, got {sample_rate!r}"
        )
    sr = int(sample_rate)
    dur_ss, syn_ss = np.random.SeedSequence(seed).spawn(2)
    if duration_s is not None:
        dur = _check_duration(duration_s, "duration_s")
    elif audio.get("duration_s") is not None:
        dur = _check_duration(audio["duration_s"], "audio.duration_s")
    else:
        lo, hi = ec.default_duration_s
        dur = round(float(np.random.default_rng(dur_ss).uniform(lo, hi)), 3)
    n = max(1, int(round(dur * sr)))
    x = np.asarray(ec.synth(np.random.default_rng(syn_ss), sr, dur), dtype=np.float64)
    if len(x) < n:
        x = np.concatenate([x, np.zeros(n - len(x))])
    x = x[:n]
    if not np.isfinite(x).all():
        raise FloatingPointError(
            f"event class {ec.name!r} produced non-finite samples (seed {seed})"
        )
    r = active_rms(x, sr)
    if r <= 1e-9:
        raise SpecError(
            f"event: field 'duration_s': {dur} s of {ec.name!r} (seed {seed}) is silent; "
            f"use a longer duration (the class's range is {ec.default_duration_s})"
        )
    x = x / r
    for _ in range(8):  # limiting lowers the RMS; renormalising raises the peak again: iterate
        if np.abs(x).max() <= MAX_CREST:
            break
        x = _soft_limit(x, 0.75 * MAX_CREST, 0.25 * MAX_CREST)
        x = x / active_rms(x, sr)
    return x.astype(np.float32)


def _soft_limit(x: np.ndarray, thr: float, knee: float) -> np.ndarray:
    """Leave ``|x| <= thr`` alone; above it, approach ``thr + knee`` smoothly (tanh knee)."""
    a = np.abs(x)
    over = a > thr
    if not over.any():
        return x
    y = x.copy()
    y[over] = np.sign(x[over]) * (thr + knee * np.tanh((a[over] - thr) / knee))
    return y


__all__ = [
    "ACTIVE_FRAME_S",
    "ACTIVE_RANGE_DB",
    "MAX_CREST",
    "MAX_DURATION_S",
    "MIN_DURATION_S",
    "active_mask",
    "active_rms",
    "synthesize_event",
]
