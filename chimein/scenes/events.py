"""Procedural sound events: a registry of classes with a default decision, and their synthesis.

Every class of :data:`EVENT_CLASSES` belongs to one of the six Proactive-Sound-Bench domains
(Daily Living, Equipment, Human Signals, Music, Nature, Traffic; see /work/shared/REFERENCE.md)
and carries a default decision: ``INTERVENE`` (someone should act: PSB's RESPOND) or ``IGNORE``
(benign). Many benign classes are look-alikes of a help event (``lookalike_of``): a fridge hum
next to a grinding appliance, laughter next to a scream, a turn signal next to a seat-belt
chime. They are what makes the decision hard.

Sounds are synthesised, not recorded, so the library needs no data: additive and FM tones for
alarms and chimes (with the standard temporal patterns: ISO 8201 T3 for smoke alarms, T4 for
CO alarms, IEC 60601-1-8 high priority for patient monitors), modal synthesis (sums of
exponentially decaying partials) for impacts, bells and instruments, filtered noise bursts for
cracks, hiss and crackle, and the source-filter voice model of :mod:`chimein.scenes.noise` with
pitch contours for cries, screams, laughter and coughs. Each instance draws its pitch, timing,
durations and timbre from a generator seeded per instance.

When Debian's ``sound-theme-freedesktop`` is installed, a few recorded classes (``fd_*``) are
registered too; :func:`recorded_classes_available` says whether they are.

Examples
--------
>>> from chimein.scenes.events import EVENT_CLASSES, synthesize_event
>>> x = synthesize_event({"cls": "smoke_alarm", "seed": 7}, 16000, duration_s=2.0)
>>> x.dtype, x.shape, EVENT_CLASSES["smoke_alarm"].decision
(dtype('float32'), (32000,), 'INTERVENE')
"""

from __future__ import annotations

import difflib
import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from scipy import signal

from chimein.errors import SpecError
from chimein.scenes.noise import (
    VOWELS,
    colored_noise,
    formant_filter,
    mains_hum,
    smooth_random,
    voice,
)

#: Synthesiser signature: ``(rng, sample_rate, duration_s) -> float array of
#: round(duration_s * sample_rate) samples`` (any scale; :func:`synthesize_event` normalises).
Synth = Callable[[np.random.Generator, int, float], np.ndarray]

#: PSB domains.
DOMAINS: tuple[str, ...] = (
    "Daily Living",
    "Equipment",
    "Human Signals",
    "Music",
    "Nature",
    "Traffic",
)

#: Shortest and longest event :func:`synthesize_event` makes (seconds).
MIN_DURATION_S = 0.05
MAX_DURATION_S = 600.0

#: Active-part definition used for normalisation: 20 ms frames within 40 dB of the loudest.
ACTIVE_FRAME_S = 0.02
ACTIVE_RANGE_DB = 40.0

#: Peak limit (x active RMS) of the soft limiter applied before normalisation: keeps impulsive
#: classes (crackle, snaps) from clipping when a renderer raises them to a high level.
MAX_CREST = 12.0

#: Where Debian's sound-theme-freedesktop puts its Ogg files.
FREEDESKTOP_DIR = Path("/usr/share/sounds/freedesktop/stereo")


@dataclass(frozen=True)
class EventClass:
    """One sound-event class.

    Attributes
    ----------
    name : registry key (``snake_case``).
    domain, subcategory : PSB taxonomy position (domain is one of :data:`DOMAINS`).
    decision : ``"INTERVENE"`` (act unprompted) or ``"IGNORE"`` (benign).
    safety_critical : a miss may hurt someone (alarms, breaking glass, screams, ...).
    description : what the sound is, in words.
    default_duration_s : ``(low, high)`` range the sampler draws durations from.
    onset_delay_s : seconds after onset by which a listener can recognise the sound, i.e. when
        intervening becomes appropriate (0.3 for breaking glass, 1.5 for a baby's cry).
    synth : ``(rng, sample_rate, duration_s) -> samples``.
    lookalike_of : for a benign class, the help class it can be mistaken for.
    """

    name: str
    domain: str
    subcategory: str
    decision: Literal["INTERVENE", "IGNORE"]
    safety_critical: bool
    description: str
    default_duration_s: tuple[float, float]
    onset_delay_s: float
    synth: Synth
    lookalike_of: str | None = None


# ============================================================================================
# Signal helpers (all float64; ``n`` samples at ``sr`` Hz)
# ============================================================================================
def _ns(sr: int, dur: float) -> int:
    return max(1, int(round(dur * sr)))


def _hz(f: float, sr: int, frac: float = 0.45) -> float:
    """Clip a frequency below ``frac`` x the sample rate (so the same design works at 8 kHz)."""
    return float(min(f, frac * sr))


def _lp(x: np.ndarray, sr: int, fc: float, order: int = 2) -> np.ndarray:
    return signal.sosfilt(signal.butter(order, _hz(fc, sr), "low", fs=sr, output="sos"), x)


def _hp(x: np.ndarray, sr: int, fc: float, order: int = 2) -> np.ndarray:
    return signal.sosfilt(signal.butter(order, min(fc, 0.4 * sr), "high", fs=sr, output="sos"), x)


def _bp(x: np.ndarray, sr: int, lo: float, hi: float, order: int = 2) -> np.ndarray:
    hi = _hz(hi, sr)
    lo = max(10.0, min(lo, 0.7 * hi))
    return signal.sosfilt(signal.butter(order, [lo, hi], "band", fs=sr, output="sos"), x)


def _add(out: np.ndarray, x: np.ndarray, i0: int) -> None:
    """Add ``x`` into ``out`` starting at sample ``i0`` (cropped at both ends)."""
    if i0 >= len(out) or i0 + len(x) <= 0:
        return
    s = max(0, -i0)
    m = min(len(x), len(out) - i0)
    out[i0 + s : i0 + m] += x[s:m]


def _ramp_env(
    n: int, sr: int, segs: list[tuple[float, float, float]], ramp_s: float = 0.005
) -> np.ndarray:
    """Gate envelope: ``(start_s, dur_s, amp)`` segments with raised-cosine ramps."""
    env = np.zeros(n)
    for s, d, a in segs:
        i0, i1 = int(round(s * sr)), min(n, int(round((s + d) * sr)))
        if i0 >= n or i1 <= i0:
            continue
        m = int(round((s + d) * sr)) - i0
        r = min(max(1, int(ramp_s * sr)), m // 2)
        w = np.ones(m)
        if r > 0:
            ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(r) + 0.5) / r)
            w[:r] = ramp
            w[m - r :] = ramp[::-1]
        env[i0:i1] = np.maximum(env[i0:i1], a * w[: i1 - i0])
    return env


def _harmonics(
    f: float | np.ndarray, sr: int, n: int, amps: list[float] | np.ndarray, phase: float = 0.0
) -> np.ndarray:
    """Additive oscillator: ``sum_k amps[k-1] sin(k phi(t))`` with ``phi`` following ``f`` (Hz,
    scalar or per-sample); partials fade out above 0.45 x the sample rate (no aliasing)."""
    fa = np.broadcast_to(np.asarray(f, dtype=np.float64), (n,))
    ph = 2.0 * np.pi * np.cumsum(fa) / sr + phase
    out = np.zeros(n)
    lo, hi = float(fa.min()), float(fa.max())
    for k, a in enumerate(amps, 1):
        if k * lo >= 0.45 * sr:
            break
        if a == 0:
            continue
        s = a * np.sin(k * ph)
        if k * hi > 0.4 * sr:
            s *= np.clip((0.45 * sr - k * fa) / (0.05 * sr), 0.0, 1.0)
        out += s
    return out


def _square_amps(n_harm: int = 15, soft: float = 1.0) -> np.ndarray:
    """Odd-harmonic amplitudes of a square wave (``soft`` > 1 rolls off faster)."""
    k = np.arange(1, n_harm + 1)
    return np.where(k % 2 == 1, 1.0 / k**soft, 0.0)


def _saw_amps(n_harm: int = 20, soft: float = 1.0) -> np.ndarray:
    k = np.arange(1, n_harm + 1)
    return 1.0 / k**soft


def _modal(
    n: int,
    sr: int,
    t0: float,
    freqs: np.ndarray | list[float],
    decays: np.ndarray | list[float],
    amps: np.ndarray | list[float],
    attack_s: float = 0.0005,
) -> np.ndarray:
    """Struck object: sum of exponentially decaying sinusoids from ``t0`` (modal synthesis)."""
    out = np.zeros(n)
    i0 = int(round(t0 * sr))
    if i0 >= n:
        return out
    f = np.asarray(freqs, np.float64)
    d = np.asarray(decays, np.float64)
    a = np.asarray(amps, np.float64)
    keep = f < 0.45 * sr
    if not keep.any():
        return out
    f, d, a = f[keep], d[keep], a[keep]
    m = min(n - i0, int(7.0 * d.max() * sr) + 2)
    t = np.arange(m) / sr
    y = np.zeros(m)
    for fk, dk, ak in zip(f, d, a, strict=True):
        y += ak * np.exp(-t / dk) * np.sin(2 * np.pi * fk * t)
    if attack_s > 0:
        y *= 1.0 - np.exp(-t / attack_s)
    out[i0 : i0 + m] = y
    return out


def _burst(
    rng: np.random.Generator,
    n: int,
    sr: int,
    t0: float,
    decay_s: float,
    lo: float,
    hi: float,
    amp: float = 1.0,
    attack_s: float = 0.0005,
) -> np.ndarray:
    """A band-limited noise burst with exponential decay starting at ``t0``."""
    out = np.zeros(n)
    i0 = int(round(t0 * sr))
    if i0 >= n:
        return out
    m = min(n - i0, int(6.0 * decay_s * sr) + 2)
    t = np.arange(m) / sr
    x = _bp(rng.standard_normal(m), sr, lo, hi)
    x = x / (np.std(x) + 1e-12)
    out[i0 : i0 + m] = amp * x * np.exp(-t / decay_s) * (1.0 - np.exp(-t / attack_s))
    return out


def _sparse_impulses(
    rng: np.random.Generator, n: int, sr: int, rate: float, alpha: float = 2.5, start: int = 0
) -> np.ndarray:
    """Poisson clicks at ``rate`` per second with Pareto (heavy-tailed) amplitudes."""
    x = np.zeros(n)
    k = int(rng.poisson(rate * n / sr)) + 1
    pos = np.sort(rng.integers(start, n, size=k)) if n > start else np.zeros(0, np.int64)
    amps = np.minimum(rng.pareto(alpha, size=pos.size) + 1.0, 6.0) * rng.choice(
        [-1.0, 1.0], size=pos.size
    )
    np.add.at(x, pos, amps)
    return x


def _bell(
    n: int,
    sr: int,
    t0: float,
    f: float,
    decay: float,
    rng: np.random.Generator,
    ratios: tuple[float, ...] = (1.0, 2.0, 3.0, 4.16, 5.43),
    bright: float = 0.5,
) -> np.ndarray:
    """A chime/bell note: inharmonic partials, higher ones decaying faster."""
    r = np.asarray(ratios) * (1.0 + rng.uniform(-0.004, 0.004, len(ratios)))
    k = np.arange(len(ratios))
    amps = bright**k * rng.uniform(0.7, 1.0, len(ratios))
    return _modal(n, sr, t0, f * r, decay / (1.0 + k), amps, attack_s=0.001)


def _semitones(base: float, steps: np.ndarray | list[int] | float) -> np.ndarray:
    return base * 2.0 ** (np.asarray(steps, dtype=np.float64) / 12.0)


def _contour(n: int, sr: int, times: list[float], values: list[float]) -> np.ndarray:
    return np.interp(np.arange(n) / sr, times, values)


# ============================================================================================
# Alarms, beeps and chimes
# ============================================================================================
def _smoke_alarm(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """ISO 8201 / NFPA 72 T3: three 0.5 s beeps, 0.5 s apart, then 1.5 s pause; piezo ~3.1 kHz."""
    n = _ns(sr, dur)
    f = rng.uniform(2950.0, 3250.0)
    on, off, pause = (0.5 * (1 + rng.uniform(-0.03, 0.03)) for _ in range(3))
    pause *= 3.0
    segs, t = [], rng.uniform(0.0, 0.02)
    while t < dur:
        for i in range(3):
            segs.append((t, on, 1.0))
            t += on + (off if i < 2 else pause)
    env = _ramp_env(n, sr, segs, 0.003)
    tone = _harmonics(
        f * (1 + 0.002 * smooth_random(n, sr, rng, 3.0)),
        sr,
        n,
        [1.0, rng.uniform(0.05, 0.2), rng.uniform(0.1, 0.3)],
    )
    return env * tone


def _co_alarm(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """ISO 8201 T4 (CO alarms): four 0.1 s beeps 0.1 s apart, then 5 s pause; ~3.4 kHz."""
    n = _ns(sr, dur)
    f = rng.uniform(3300.0, 3500.0)
    on = 0.1 * (1 + rng.uniform(-0.05, 0.05))
    segs, t = [], rng.uniform(0.0, 0.02)
    while t < dur:
        for _ in range(4):
            segs.append((t, on, 1.0))
            t += 2 * on
        t += 5.0 * (1 + rng.uniform(-0.03, 0.03)) - on
    env = _ramp_env(n, sr, segs, 0.003)
    return env * _harmonics(f, sr, n, [1.0, 0.1, rng.uniform(0.1, 0.3)])


def _beep_pattern(
    rng: np.random.Generator,
    sr: int,
    dur: float,
    f: float,
    segs: list[tuple[float, float, float]],
    amps: list[float] | np.ndarray,
    ramp_s: float = 0.004,
) -> np.ndarray:
    n = _ns(sr, dur)
    return _ramp_env(n, sr, segs, ramp_s) * _harmonics(f, sr, n, amps, rng.uniform(0, 2 * np.pi))


def _microwave_done(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Three to five piezo beeps (~2 kHz), sometimes a reminder group a few seconds later."""
    f = rng.uniform(1800.0, 2700.0)
    k = int(rng.integers(3, 6))
    on, off = rng.uniform(0.25, 0.6), rng.uniform(0.15, 0.4)
    t0 = rng.uniform(0.0, 0.02)
    segs = [(t0 + i * (on + off), on, 1.0) for i in range(k)]
    if rng.random() < 0.5:
        t1 = t0 + k * (on + off) + rng.uniform(1.5, 3.0)
        segs += [(t1 + i * (on + off), on, 1.0) for i in range(k)]
    return _beep_pattern(rng, sr, dur, f, segs, _square_amps(9, rng.uniform(1.3, 2.0)))


def _oven_done(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Oven timer: a group of short beeps repeated every second or two, or slow long beeps."""
    f = rng.uniform(1000.0, 2400.0)
    segs, t = [], rng.uniform(0.0, 0.02)
    if rng.random() < 0.6:
        k, on, gap = int(rng.integers(2, 5)), rng.uniform(0.08, 0.15), rng.uniform(0.06, 0.12)
        period = k * (on + gap) + rng.uniform(0.6, 1.2)
        while t < dur:
            segs += [(t + i * (on + gap), on, 1.0) for i in range(k)]
            t += period
    else:
        on, off = rng.uniform(0.6, 1.0), rng.uniform(0.5, 1.0)
        while t < dur:
            segs.append((t, on, 1.0))
            t += on + off
    return _beep_pattern(rng, sr, dur, f, segs, [1.0, 0.0, rng.uniform(0.05, 0.2)])


def _washer_done(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """End-of-cycle: a short piezo melody (pentatonic), or three long beeps."""
    n = _ns(sr, dur)
    out = np.zeros(n)
    if rng.random() < 0.6:
        base = rng.uniform(900.0, 1500.0)
        scale = np.array([0, 2, 4, 7, 9, 12, 14, 16])
        notes = rng.choice(scale, size=int(rng.integers(5, 10)))
        notes[-1] = scale[int(rng.integers(5, 8))]  # end high: a "finished" flourish
        nd = rng.uniform(0.14, 0.3)
        t = rng.uniform(0.0, 0.02)
        reps = 2 if rng.random() < 0.5 else 1
        for _ in range(reps):
            for s in notes:
                env = _ramp_env(n, sr, [(t, nd * 0.9, 1.0)], 0.005)
                i0, i1 = int(t * sr), min(n, int((t + nd) * sr) + 1)
                if i0 < n:
                    dec = np.ones(n)
                    dec[i0:i1] = np.exp(-np.arange(i1 - i0) / sr / (nd * 0.8))
                    out += env * dec * _harmonics(_semitones(base, s), sr, n, _square_amps(7, 1.6))
                t += nd
            t += rng.uniform(0.8, 1.5)
        return out
    f = rng.uniform(1500.0, 2600.0)
    on, off = rng.uniform(0.7, 1.2), rng.uniform(0.5, 1.0)
    t0 = rng.uniform(0.0, 0.02)
    return _beep_pattern(
        rng, sr, dur, f, [(t0 + i * (on + off), on, 1.0) for i in range(3)], _square_amps(7, 1.8)
    )


def _dryer_done(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Dryer: an electromechanical buzzer (harsh 120-300 Hz buzz) or a descending chime."""
    n = _ns(sr, dur)
    if rng.random() < 0.6:
        f = rng.uniform(120.0, 300.0)
        on, off = rng.uniform(1.0, 2.5), rng.uniform(0.5, 1.5)
        t0 = rng.uniform(0.0, 0.02)
        segs = [(t0, on, 1.0), (t0 + on + off, on * rng.uniform(0.6, 1.0), 1.0)]
        buzz = _harmonics(f, sr, n, _saw_amps(40, 0.6))
        buzz = np.tanh(2.0 * buzz / (np.std(buzz) + 1e-9))  # rattling armature: clipped
        buzz = _bp(buzz, sr, 200.0, 3500.0)
        return _ramp_env(n, sr, segs, 0.01) * buzz
    out = np.zeros(n)
    base = rng.uniform(700.0, 1200.0)
    t = rng.uniform(0.0, 0.02)
    while t < dur:
        for s in (7, 4, 0):
            out += _bell(n, sr, t, float(_semitones(base, s)), rng.uniform(0.4, 0.8), rng)
            t += rng.uniform(0.3, 0.45)
        t += rng.uniform(1.0, 2.0)
    return out


def _kettle_whistle(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Whistling kettle: a breathy whistle rising from ~1.5 to ~2.8 kHz over rolling boil."""
    n = _ns(sr, dur)
    t = np.arange(n) / sr
    fa, fb = rng.uniform(1300.0, 2000.0), rng.uniform(2100.0, 3000.0)
    rise = rng.uniform(0.3, 1.2)
    f = fb - (fb - fa) * np.exp(-t / rise)
    f = f * (1 + 0.006 * smooth_random(n, sr, rng, 7.0))
    amp = (1 - np.exp(-t / (0.5 * rise))) * (1 + 0.15 * smooth_random(n, sr, rng, 12.0))
    whistle = _harmonics(f, sr, n, [1.0, 0.08])
    if rng.random() < 0.4:  # two-chamber whistle: a second tone beating against the first
        whistle += rng.uniform(0.4, 0.8) * _harmonics(f * rng.uniform(1.03, 1.09), sr, n, [1.0])
    hiss = _bp(rng.standard_normal(n), sr, 0.8 * fa, min(1.2 * fb, 0.45 * sr))
    hiss /= np.std(hiss) + 1e-12
    boil = _lp(_sparse_impulses(rng, n, sr, 80.0), sr, 900.0)
    boil /= np.std(boil) + 1e-12
    return amp * (whistle + rng.uniform(0.1, 0.3) * hiss) + 0.08 * boil


def _pressure_cooker(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Pressure cooker venting: loud rattling jet hiss with a whistle, in bursts."""
    n = _ns(sr, dur)
    t = np.arange(n) / sr
    hiss = _bp(rng.standard_normal(n), sr, 1500.0, 7000.0, order=3)
    hiss /= np.std(hiss) + 1e-12
    rattle = 1.0 + 0.6 * np.sign(
        np.sin(2 * np.pi * rng.uniform(6.0, 14.0) * t + 2.0 * smooth_random(n, sr, rng, 2.0))
    )
    f = rng.uniform(2200.0, 3500.0)
    whistle = _harmonics(f * (1 + 0.01 * smooth_random(n, sr, rng, 5.0)), sr, n, [1.0])
    segs, s = [], rng.uniform(0.0, 0.02)
    while s < dur:
        d = rng.uniform(1.5, 4.0)
        segs.append((s, d, 1.0))
        s += d + rng.uniform(0.3, 1.0)
    env = _ramp_env(n, sr, segs, 0.08)
    return env * (rattle * hiss + rng.uniform(0.3, 0.8) * whistle)


def _toaster_pop(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Toaster: latch click, spring boing, toast rattle, sometimes a bell."""
    n = _ns(sr, dur)
    t0 = rng.uniform(0.0, 0.02)
    out = _burst(rng, n, sr, t0, 0.004, 2000.0, 8000.0, 1.0)
    out += 0.6 * _modal(
        n,
        sr,
        t0 + 0.003,
        rng.uniform(250.0, 600.0) * np.array([1.0, 2.7, 5.1]),
        [0.12, 0.05, 0.03],
        [1.0, 0.5, 0.3],
    )
    out += 0.4 * _burst(rng, n, sr, t0 + rng.uniform(0.05, 0.12), 0.03, 300.0, 3000.0)
    out += 0.3 * _burst(rng, n, sr, t0 + rng.uniform(0.15, 0.3), 0.02, 300.0, 3000.0)
    if rng.random() < 0.5:
        out += 0.5 * _bell(
            n, sr, t0 + rng.uniform(0.05, 0.2), rng.uniform(1800.0, 2600.0), 0.6, rng
        )
    return out


def _doorbell(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Ding-dong (major third down), or a four-note Westminster chime; maybe rung twice."""
    n = _ns(sr, dur)
    out = np.zeros(n)
    base = rng.uniform(500.0, 800.0)
    seq = [4, 0] if rng.random() < 0.65 else [4, 0, 2, -5]
    step = rng.uniform(0.45, 0.8)
    decay = rng.uniform(0.6, 1.4)
    ratios = (1.0, 3.98, 9.1) if rng.random() < 0.5 else (1.0, 2.0, 3.0, 4.2)
    t = rng.uniform(0.0, 0.02)
    for _rep in range(2 if rng.random() < 0.5 else 1):
        for s in seq:
            out += _bell(n, sr, t, float(_semitones(base, s)), decay, rng, ratios, 0.35)
            t += step
        t += rng.uniform(1.0, 2.0)
    return out


def _phone_ring(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Telephone: mechanical bell (20 Hz strikes), electronic trill, or a marimba ringtone."""
    n = _ns(sr, dur)
    t = np.arange(n) / sr
    kind = int(rng.integers(3))
    t0 = rng.uniform(0.0, 0.02)
    if kind == 2:  # marimba ringtone
        out = np.zeros(n)
        base = rng.uniform(400.0, 700.0)
        riff = rng.choice([0, 4, 7, 9, 12, 16], size=int(rng.integers(4, 8)))
        nd = rng.uniform(0.12, 0.2)
        s = t0
        while s < dur:
            for st in riff:
                f = float(_semitones(base, st))
                out += _modal(n, sr, s, [f, 3.93 * f, 9.2 * f], [0.25, 0.06, 0.02], [1.0, 0.3, 0.1])
                s += nd
            s += rng.uniform(0.3, 0.6)
        return out
    if rng.random() < 0.5:  # North American cadence, compressed: 1-2 s on, 1-2 s off
        on = rng.uniform(1.0, 2.0)
        segs, s = [], t0
        while s < dur:
            segs.append((s, on, 1.0))
            s += on + rng.uniform(1.0, 2.0)
    else:  # UK double ring: 0.4 on, 0.2 off, 0.4 on, 2 s off
        segs, s = [], t0
        while s < dur:
            segs += [(s, 0.4, 1.0), (s + 0.6, 0.4, 1.0)]
            s += 3.0
    gate = _ramp_env(n, sr, segs, 0.01)
    if kind == 0:  # clapper striking two bells 20 times a second
        rate = rng.uniform(16.0, 25.0)
        strike = np.exp(-np.mod(t, 1.0 / rate) / rng.uniform(0.015, 0.03))
        f = rng.uniform(900.0, 1500.0)
        bell = sum(
            a * np.sin(2 * np.pi * f * r * t) for r, a in ((1.0, 1.0), (2.76, 0.5), (5.4, 0.25))
        )
        bell2 = np.sin(2 * np.pi * f * rng.uniform(1.05, 1.25) * t)
        return gate * strike * (bell + 0.7 * bell2)
    fa = rng.uniform(900.0, 1300.0)
    fb = fa * rng.uniform(1.15, 1.35)
    rate = rng.uniform(12.0, 25.0)
    f = np.where(np.mod(t * rate, 1.0) < 0.5, fa, fb)
    return gate * _harmonics(f, sr, n, _square_amps(7, 1.5))


def _seatbelt(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Seat-belt reminder: a chime or a short beep repeated about once a second."""
    n = _ns(sr, dur)
    out = np.zeros(n)
    period = rng.uniform(0.6, 1.2)
    f = rng.uniform(700.0, 1500.0)
    chime = rng.random() < 0.6
    t = rng.uniform(0.0, 0.02)
    while t < dur:
        if chime:
            out += _bell(n, sr, t, f, 0.35, rng, (1.0, 2.0, 3.01), 0.3)
        else:
            out += _ramp_env(n, sr, [(t, 0.12, 1.0)]) * _harmonics(f * 1.5, sr, n, [1.0, 0.2])
        t += period
    return out


def _error_beep(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Error/incorrect beep: low square 'bah-bah', or a descending two-tone, repeated."""
    n = _ns(sr, dur)
    out = np.zeros(n)
    f = rng.uniform(250.0, 600.0)
    descending = rng.random() < 0.4
    on, gap = rng.uniform(0.12, 0.3), rng.uniform(0.06, 0.12)
    t = rng.uniform(0.0, 0.02)
    while t < dur:
        k = int(rng.integers(2, 4))
        for i in range(k):
            fi = f * (0.75**i if descending else 1.0)
            out += _ramp_env(n, sr, [(t, on, 1.0)]) * _harmonics(fi, sr, n, _square_amps(25, 1.0))
            t += on + gap
        t += rng.uniform(0.6, 1.5)
    return out


def _heart_rate_warning(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """IEC 60601-1-8 high-priority alarm: 10 pulses (3 + 2, pause, 3 + 2), f0 400-900 Hz with
    at least four harmonics, repeated every few seconds."""
    n = _ns(sr, dur)
    f = rng.uniform(400.0, 900.0)
    pulse, space = rng.uniform(0.1, 0.18), rng.uniform(0.06, 0.1)
    groups = (3, 2, 3, 2)
    gaps = (space * 2.5, rng.uniform(0.35, 0.6), space * 2.5, 0.0)
    segs, t = [], rng.uniform(0.0, 0.02)
    while t < dur:
        for g, gp in zip(groups, gaps, strict=True):
            for _ in range(g):
                segs.append((t, pulse, 1.0))
                t += pulse + space
            t += gp
        t += rng.uniform(1.5, 3.0)
    amps = [1.0, 0.7, 0.5, 0.4, 0.3, 0.2]
    return _ramp_env(n, sr, segs, 0.01) * _harmonics(f, sr, n, amps)


def _heart_rate_normal(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Patient monitor at rest: one short blip per heartbeat (55-100 bpm)."""
    n = _ns(sr, dur)
    bpm = rng.uniform(55.0, 100.0)
    f = rng.uniform(800.0, 1300.0)
    segs, t = [], rng.uniform(0.0, 0.02)
    while t < dur:
        segs.append((t, rng.uniform(0.05, 0.08), 1.0))
        t += 60.0 / bpm * (1 + rng.uniform(-0.03, 0.03))
    return _ramp_env(n, sr, segs, 0.005) * _harmonics(f, sr, n, [1.0, 0.15])


def _car_horn(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Car horn: two brassy diaphragm horns about a major third apart; 1-3 honks."""
    n = _ns(sr, dur)
    f1 = rng.uniform(350.0, 480.0)
    f2 = f1 * rng.uniform(1.2, 1.3)
    tone = _harmonics(f1, sr, n, _saw_amps(30, 0.7)) + _harmonics(f2, sr, n, _saw_amps(30, 0.7))
    tone = formant_filter(
        tone, sr, (rng.uniform(700, 1100), rng.uniform(1800, 2600), 3200.0), (200.0, 300.0, 400.0)
    )
    segs, t = [], rng.uniform(0.0, 0.02)
    for _ in range(int(rng.integers(1, 4))):
        d = rng.uniform(0.2, 1.2)
        segs.append((t, d, 1.0))
        t += d + rng.uniform(0.1, 0.3)
    return _ramp_env(n, sr, segs, 0.015) * tone


def _siren(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Emergency siren: wail, yelp or hi-lo, with an approaching or receding level."""
    n = _ns(sr, dur)
    t = np.arange(n) / sr
    kind = int(rng.integers(3))
    lo, hi = rng.uniform(550.0, 750.0), rng.uniform(1200.0, 1600.0)
    if kind == 0:  # wail
        period = rng.uniform(2.5, 5.0)
        f = lo + (hi - lo) * (0.5 - 0.5 * np.cos(2 * np.pi * t / period + rng.uniform(0, np.pi)))
    elif kind == 1:  # yelp
        rate = rng.uniform(2.5, 4.0)
        f = lo + (hi - lo) * np.mod(t * rate + rng.random(), 1.0) ** 0.7
    else:  # hi-lo two-tone
        half = rng.uniform(0.45, 0.7)
        fa = rng.uniform(400.0, 960.0)
        f = np.where(np.mod(t / half, 2.0) < 1.0, fa * rng.uniform(1.2, 1.35), fa)
    tone = _harmonics(f, sr, n, _square_amps(15, rng.uniform(1.0, 1.6)))
    gain = 10 ** (rng.uniform(-8.0, 8.0) * (t / max(dur, 1e-3) - 0.5) / 20)
    return gain * tone * (1 - np.exp(-t / 0.05))


def _car_alarm(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Car alarm: cycles through yelp, chirps, hi-lo and wail patterns every 1-2 s."""
    n = _ns(sr, dur)
    t = np.arange(n) / sr
    f = np.zeros(n)
    gate = np.ones(n)
    s = 0.0
    order = rng.permutation(4)
    i = 0
    while s < dur:
        d = rng.uniform(1.0, 2.0)
        m = (t >= s) & (t < s + d)
        tl = t[m] - s
        k = order[i % 4]
        if k == 0:
            f[m] = 1000 + 1500 * np.mod(tl * rng.uniform(5.0, 8.0), 1.0)
        elif k == 1:
            f[m] = rng.uniform(1800.0, 2600.0)
            gate[m] = np.mod(tl * rng.uniform(6.0, 10.0), 1.0) < 0.5
        elif k == 2:
            f[m] = np.where(np.mod(tl * 3.0, 1.0) < 0.5, 900.0, 1400.0)
        else:
            f[m] = 800 + 1400 * (0.5 - 0.5 * np.cos(2 * np.pi * tl * 1.2))
        s += d
        i += 1
    gate = _lp(gate.astype(np.float64), sr, 300.0)
    return gate * _harmonics(f, sr, n, _square_amps(11, 1.3))


def _turn_signal(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Indicator relay: tick-tock clicks, 1.3-1.8 cycles per second."""
    n = _ns(sr, dur)
    out = np.zeros(n)
    rate = rng.uniform(1.3, 1.8)
    fa, fb = rng.uniform(1500.0, 3000.0), rng.uniform(800.0, 1600.0)
    t = rng.uniform(0.0, 0.02)
    while t < dur:
        out += _modal(n, sr, t, [fa, 2.3 * fa], [0.008, 0.004], [1.0, 0.4])
        out += 0.7 * _modal(n, sr, t + 0.5 / rate, [fb, 2.1 * fb], [0.01, 0.005], [1.0, 0.4])
        t += 1.0 / rate
    return out


# ============================================================================================
# Impacts and mechanical sounds
# ============================================================================================
def _glass_shards(
    rng: np.random.Generator, n: int, sr: int, t0: float, k: int, spread: float
) -> np.ndarray:
    out = np.zeros(n)
    fmax = min(9000.0, 0.44 * sr)
    for _ in range(k):
        ts = t0 + rng.exponential(spread)
        f = rng.uniform(1500.0, fmax) * np.array(
            [1.0, rng.uniform(1.3, 2.2), rng.uniform(2.3, 3.5)]
        )
        d = rng.uniform(0.02, 0.15)
        out += rng.pareto(2.0) * _modal(n, sr, ts, f, [d, d / 2, d / 3], [1.0, 0.5, 0.3], 0.0002)
    return out


def _glass_break(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Breaking glass: a sharp crack, a dull thump, then dozens of ringing shards."""
    n = _ns(sr, dur)
    t0 = rng.uniform(0.0, 0.02)
    out = 3.0 * _burst(rng, n, sr, t0, 0.008, 1500.0, 10000.0)
    out += 1.0 * _burst(rng, n, sr, t0, 0.03, 100.0, 900.0)
    out += 2.0 * _glass_shards(rng, n, sr, t0, int(rng.integers(25, 60)), rng.uniform(0.08, 0.25))
    for _ in range(int(rng.integers(2, 6))):  # pieces hitting the floor
        out += 0.5 * _burst(rng, n, sr, t0 + rng.uniform(0.1, 0.6), 0.01, 1000.0, 8000.0)
    return out


def _object_fall(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Something falls: a thud (book, box) or a metal clang, then bounces."""
    n = _ns(sr, dur)
    out = np.zeros(n)
    metal = rng.random() < 0.35
    f0 = rng.uniform(70.0, 220.0)
    t, a, gap = rng.uniform(0.0, 0.02), 1.0, rng.uniform(0.08, 0.25)
    for _ in range(int(rng.integers(1, 5))):
        out += a * _modal(
            n, sr, t, f0 * np.array([1.0, 1.6, 2.4]), [0.06, 0.04, 0.025], [1.0, 0.5, 0.3]
        )
        out += a * 0.6 * _burst(rng, n, sr, t, 0.015, 200.0, 3000.0)
        if metal:
            fm = rng.uniform(600.0, 1500.0)
            out += (
                a
                * 0.4
                * _modal(
                    n,
                    sr,
                    t,
                    fm * np.array([1.0, 2.32, 4.25, 6.63]),
                    [0.4, 0.25, 0.15, 0.1],
                    [1.0, 0.6, 0.4, 0.3],
                )
            )
        t += gap
        gap *= rng.uniform(0.5, 0.7)
        a *= rng.uniform(0.3, 0.6)
    return out


def _knock(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Knocking on a door: groups of 2-5 knuckle raps on a wooden panel."""
    n = _ns(sr, dur)
    out = np.zeros(n)
    fp = rng.uniform(90.0, 220.0)
    rate = rng.uniform(4.0, 7.0)
    t = rng.uniform(0.0, 0.02)
    while t < dur:
        for _ in range(int(rng.integers(2, 6))):
            a = rng.uniform(0.7, 1.0)
            out += a * _modal(
                n,
                sr,
                t,
                fp * np.array([1.0, 1.9, 3.1, 4.4]),
                [0.05, 0.035, 0.02, 0.012],
                [1.0, 0.7, 0.5, 0.3],
            )
            out += a * 0.5 * _burst(rng, n, sr, t, 0.004, 600.0, 4000.0)
            t += 1.0 / rate * rng.uniform(0.9, 1.1)
        t += rng.uniform(0.8, 1.6)
    return out


def _keyboard_typing(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Typing: key presses and releases in word-length bursts, 5-9 keys per second."""
    n = _ns(sr, dur)
    out = np.zeros(n)
    rate = rng.uniform(5.0, 9.0)
    fres = rng.uniform(1500.0, 4000.0)
    t = rng.uniform(0.0, 0.02)
    while t < dur:
        space = rng.random() < 0.15
        a = rng.uniform(0.5, 1.0)
        lo = 300.0 if space else 0.6 * fres
        out += a * _burst(rng, n, sr, t, 0.003, lo, 1.6 * fres)
        out += a * 0.4 * _burst(rng, n, sr, t + rng.uniform(0.06, 0.12), 0.002, lo, 1.6 * fres)
        t += rng.exponential(1.0 / rate) + 0.04
        if rng.random() < 0.08:
            t += rng.uniform(0.3, 1.0)  # pause between words/thoughts
    return out


def _clock_tick(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Mechanical clock: alternating tick and tock at 1 or 2 per second."""
    n = _ns(sr, dur)
    out = np.zeros(n)
    period = 1.0 if rng.random() < 0.6 else 0.5
    fa = rng.uniform(2000.0, 4500.0)
    t, i = rng.uniform(0.0, 0.02), 0
    while t < dur:
        f = fa * (1.0 if i % 2 == 0 else rng.uniform(0.7, 0.85))
        out += _modal(
            n, sr, t, [f, 1.7 * f, 2.9 * f], [0.006, 0.004, 0.003], [1.0, 0.6, 0.3], 0.0001
        )
        t += period * (1 + rng.uniform(-0.005, 0.005))
        i += 1
    return out


def _chopping(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Knife chopping on a board: regular thuds with a crisp cut, 2-5 per second."""
    n = _ns(sr, dur)
    out = np.zeros(n)
    rate = rng.uniform(2.0, 5.0)
    fb = rng.uniform(150.0, 400.0)
    t = rng.uniform(0.0, 0.02)
    while t < dur:
        a = rng.uniform(0.6, 1.0)
        out += a * _modal(
            n, sr, t, fb * np.array([1.0, 2.2, 3.7]), [0.03, 0.02, 0.01], [1.0, 0.6, 0.3]
        )
        out += a * 0.7 * _burst(rng, n, sr, t, 0.005, 2000.0, 8000.0)
        t += 1.0 / rate * rng.uniform(0.85, 1.15)
    return out


def _footsteps(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Walking: heel and toe impacts, 1.6-2.2 steps per second, on a hard or carpeted floor."""
    n = _ns(sr, dur)
    out = np.zeros(n)
    rate = rng.uniform(1.6, 2.2)
    hard = rng.random() < 0.5
    fl = rng.uniform(60.0, 150.0)
    t, i = rng.uniform(0.0, 0.02), 0
    while t < dur:
        a = rng.uniform(0.7, 1.0) * (1.0 if i % 2 == 0 else rng.uniform(0.75, 0.95))
        for dt, g in ((0.0, 1.0), (rng.uniform(0.03, 0.07), 0.5)):
            out += a * g * _modal(n, sr, t + dt, [fl, 2.3 * fl], [0.04, 0.02], [1.0, 0.4])
            hi = 6000.0 if hard else 1500.0
            out += a * g * (0.8 if hard else 0.3) * _burst(rng, n, sr, t + dt, 0.006, 300.0, hi)
        t += 1.0 / rate * rng.uniform(0.95, 1.05)
        i += 1
    return out


def _fall_down(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """A person falls: clothes rustle, a heavy body thud, a limb, often a groan ('oof')."""
    n = _ns(sr, dur)
    out = 0.2 * _burst(rng, n, sr, 0.0, 0.08, 500.0, 5000.0, attack_s=0.03)
    t = rng.uniform(0.08, 0.25)
    fb = rng.uniform(40.0, 90.0)
    out += 2.0 * _modal(
        n,
        sr,
        t,
        fb * np.array([1.0, 1.7, 2.6, 3.9]),
        [0.15, 0.1, 0.06, 0.04],
        [1.0, 0.8, 0.5, 0.3],
        0.002,
    )
    out += 0.8 * _burst(rng, n, sr, t, 0.03, 100.0, 2000.0)
    t2 = t + rng.uniform(0.08, 0.2)
    out += 0.8 * _modal(n, sr, t2, [2 * fb, 3.3 * fb], [0.06, 0.03], [1.0, 0.5])
    out += 0.3 * _burst(rng, n, sr, t2, 0.01, 300.0, 4000.0)
    if rng.random() < 0.7:
        tv = t + rng.uniform(0.25, 0.5)
        d = rng.uniform(0.3, 0.6)
        f0b = rng.uniform(110.0, 240.0)
        f0 = _contour(n, sr, [tv, tv + d], [f0b * 1.3, f0b * 0.8])
        env = _ramp_env(n, sr, [(tv, d, 1.0)], 0.06)
        f0 = np.where(env > 0, f0, 0.0)
        out += 0.6 * _unit_or_zero(
            voice(rng, sr, f0, env, _vowel("o", rng.uniform(1.0, 1.2)), breath=0.3)
        )
    return out


def _appliance_grinding(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """A broken appliance: labouring motor, rhythmic grinding knocks and a bearing squeal."""
    n = _ns(sr, dur)
    t = np.arange(n) / sr
    rot = rng.uniform(6.0, 15.0) * (1 + 0.1 * smooth_random(n, sr, rng, 0.7))
    phase = np.cumsum(rot) / sr
    motor = _harmonics(
        rng.uniform(90.0, 200.0) * (1 + 0.05 * smooth_random(n, sr, rng, 1.0)),
        sr,
        n,
        _saw_amps(12, 1.2),
    )
    scrape = _bp(rng.standard_normal(n), sr, 400.0, 4000.0)
    scrape /= np.std(scrape) + 1e-12
    grind = scrape * (0.5 + 0.5 * np.sin(2 * np.pi * phase)) ** 4
    knocks = np.zeros(n)
    cyc = np.flatnonzero(np.diff(np.floor(phase)) > 0)
    for i in cyc:
        if rng.random() < 0.6:
            knocks += rng.uniform(0.5, 1.0) * _modal(
                n, sr, i / sr, [rng.uniform(150, 400), 900.0], [0.03, 0.01], [1.0, 0.5]
            )
    fsq = rng.uniform(1500.0, 3000.0) * (1 + 0.03 * smooth_random(n, sr, rng, 4.0))
    squeal = _harmonics(fsq, sr, n, [1.0, 0.3]) * np.clip(smooth_random(n, sr, rng, 1.5), 0, None)
    return (0.5 * motor + grind + 1.5 * knocks + 0.4 * squeal) * (1 - np.exp(-t / 0.1))


def _printer(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Inkjet printer: carriage passes (stepper whine) separated by paper-feed clunks."""
    n = _ns(sr, dur)
    out = np.zeros(n)
    fs = rng.uniform(300.0, 900.0)
    t = rng.uniform(0.0, 0.02)
    while t < dur:
        d = rng.uniform(0.4, 1.0)
        env = _ramp_env(n, sr, [(t, d, 1.0)], 0.05)
        whine = _harmonics(fs * rng.uniform(0.95, 1.05), sr, n, [1.0, 0.5, 0.3, 0.2])
        noise = _bp(rng.standard_normal(n), sr, 500.0, 3000.0)
        out += env * (whine + 0.5 * noise / (np.std(noise) + 1e-12))
        t += d + rng.uniform(0.05, 0.2)
        out += 0.8 * _burst(rng, n, sr, t, 0.02, 100.0, 1500.0)
        out += 0.4 * _modal(n, sr, t, [rng.uniform(200, 500)], [0.04], [1.0])
        t += rng.uniform(0.1, 0.3)
    return out


def _blender(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Blender: a loud universal motor (whine plus harmonics) and churning liquid, speed changes."""
    n = _ns(sr, dur)
    t = np.arange(n) / sr
    speed = 1.0 + 0.15 * np.tanh(2 * smooth_random(n, sr, rng, 0.8))
    f = rng.uniform(250.0, 450.0) * speed
    motor = _harmonics(f, sr, n, _saw_amps(16, 0.9))
    churn = _bp(rng.standard_normal(n), sr, 400.0, 6000.0)
    churn /= np.std(churn) + 1e-12
    churn *= 1 + 0.5 * smooth_random(n, sr, rng, 6.0)
    return (motor / (np.std(motor) + 1e-12) + 0.8 * churn) * (1 - np.exp(-t / 0.15))


def _fridge_hum(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Refrigerator: compressor hum (twice the mains frequency) over low broadband rumble."""
    n = _ns(sr, dur)
    hum = mains_hum(n, sr, rng, n_harmonics=10, buzz=rng.uniform(0.05, 0.3))
    rumble = _lp(colored_noise(n, sr, rng, 1.0), sr, rng.uniform(150.0, 400.0))
    rumble /= np.std(rumble) + 1e-12
    fan = _bp(rng.standard_normal(n), sr, 300.0, 1500.0)
    fan /= np.std(fan) + 1e-12
    return hum + 0.6 * rumble + rng.uniform(0.05, 0.2) * fan


def _microwave_running(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Microwave cooking: buzzing transformer hum, cooling fan and turntable, no beep."""
    n = _ns(sr, dur)
    t = np.arange(n) / sr
    hum = mains_hum(n, sr, rng, n_harmonics=16, buzz=rng.uniform(0.5, 0.9))
    fan = _lp(colored_noise(n, sr, rng, 1.0), sr, rng.uniform(600.0, 1500.0))
    fan /= np.std(fan) + 1e-12
    blade = _harmonics(rng.uniform(40.0, 90.0), sr, n, [1.0, 0.5, 0.3])
    turn = 1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.08, 0.2) * t + rng.uniform(0, 6.3))
    return turn * (hum + 0.7 * fan + 0.2 * blade)


def _gas_leak(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Gas escaping a fitting: a steady high jet hiss with a faint whistle and flutter."""
    n = _ns(sr, dur)
    t = np.arange(n) / sr
    hiss = _bp(rng.standard_normal(n), sr, rng.uniform(1500.0, 3000.0), 9000.0, order=3)
    hiss /= np.std(hiss) + 1e-12
    tone = _harmonics(rng.uniform(3000.0, 6000.0), sr, n, [1.0])
    flutter = 1 + 0.08 * smooth_random(n, sr, rng, 15.0)
    return flutter * (hiss + rng.uniform(0.05, 0.2) * tone) * (1 - np.exp(-t / 0.05))


def _electrical_arcing(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Short circuit / arcing: intermittent harsh 100/120 Hz buzz with sharp snaps and crackle."""
    n = _ns(sr, dur)
    buzz = mains_hum(n, sr, rng, n_harmonics=30, buzz=1.0)
    buzz = np.tanh(3 * buzz)
    segs, t = [], rng.uniform(0.0, 0.02)
    while t < dur:
        d = rng.uniform(0.1, 0.8)
        segs.append((t, d, rng.uniform(0.5, 1.0)))
        t += d + rng.uniform(0.05, 0.6)
    env = _ramp_env(n, sr, segs, 0.003)
    crack = _hp(_sparse_impulses(rng, n, sr, 60.0, 1.5), sr, 1500.0) * env
    crack /= np.std(crack[env > 0]) + 1e-12 if (env > 0).any() else 1.0
    out = env * buzz + 0.6 * crack
    for s, _d, _a in segs:
        out += 2.0 * _burst(rng, n, sr, s, 0.006, 1000.0, 9000.0)
    return out


def _frying(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Frying: dense sizzle and popping oil."""
    n = _ns(sr, dur)
    pops = _sparse_impulses(rng, n, sr, rng.uniform(40.0, 150.0), 1.8)
    pops = _bp(pops, sr, 1000.0, 8000.0)
    pops /= np.std(pops) + 1e-12
    sizzle = _hp(rng.standard_normal(n), sr, rng.uniform(2000.0, 4000.0))
    sizzle /= np.std(sizzle) + 1e-12
    return 0.6 * pops + sizzle * (1 + 0.3 * smooth_random(n, sr, rng, 3.0))


def _water_running(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Running tap: turbulent noise with many small bubbles (rising Minnaert chirps)."""
    n = _ns(sr, dur)
    noise = _bp(colored_noise(n, sr, rng, 0.5), sr, 200.0, 5000.0)
    noise /= np.std(noise) + 1e-12
    out = 0.6 * noise
    k = int(rng.uniform(60.0, 150.0) * dur) + 1
    fmax = 0.4 * sr
    m = int(0.03 * sr)
    tt = np.arange(m) / sr
    for _ in range(k):
        f = rng.uniform(500.0, min(4000.0, fmax))
        d = rng.uniform(0.005, 0.02)
        b = rng.uniform(0.5, 1.0) * np.exp(-tt / d) * np.sin(2 * np.pi * f * (tt + 60 * tt**2))
        _add(out, b, int(rng.integers(0, n)))
    return out


# ============================================================================================
# Human signals (source-filter voice from chimein.scenes.noise)
# ============================================================================================
def _vowel(name: str, scale: float) -> tuple[float, ...]:
    return tuple(f * scale for f in VOWELS[name])


def _unit_or_zero(x: np.ndarray) -> np.ndarray:
    s = float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0
    return x / s if s > 1e-12 else x


def _baby_cry(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Infant cry: 0.4-1.5 s phonations (f0 350-600 Hz, rise-fall), inhalation gasps between.

    Infant vocal tracts put formants ~1.6-1.8x higher than an adult man's; cries carry
    period doubling and jitter (roughness), stronger as the cry escalates.
    """
    n = _ns(sr, dur)
    f0 = np.zeros(n)
    env = np.zeros(n)
    gasp = np.zeros(n)
    scale = rng.uniform(1.55, 1.8)
    keys: list[tuple[float, tuple[float, ...]]] = []
    base = rng.uniform(350.0, 550.0)
    t = rng.uniform(0.0, 0.02)
    while t < dur:
        d = rng.uniform(0.4, 1.5)
        i0, i1 = int(t * sr), min(n, int((t + d) * sr))
        if i1 > i0:
            x = np.linspace(0.0, 1.0, int((t + d) * sr) - i0)[: i1 - i0]
            peak = base * rng.uniform(1.1, 1.4)
            f0[i0:i1] = base + (peak - base) * np.sin(np.pi * x ** rng.uniform(0.6, 1.0)) - 40 * x
            env[i0:i1] = (
                np.minimum(1.0, 12 * x) * np.minimum(1.0, 6 * (1 - x)) * rng.uniform(0.7, 1.0)
            )
        v1, v2 = ("ae", "a") if rng.random() < 0.5 else ("a", "uh")
        keys += [(t, _vowel(v1, scale)), (t + 0.6 * d, _vowel(v2, scale))]
        t += d
        g = rng.uniform(0.15, 0.45)
        _add(gasp, np.hanning(max(2, int(g * sr))) * rng.uniform(0.3, 0.6), int(t * sr))
        t += g
    f0 *= 1 + 0.02 * smooth_random(n, sr, rng, 8.0)
    y = voice(
        rng,
        sr,
        f0,
        env,
        keys,
        breath=rng.uniform(0.1, 0.25),
        tilt_hz=rng.uniform(800, 1500),
        jitter=0.01,
        shimmer=0.08,
        subharmonic=rng.uniform(0.0, 0.3),
        bandwidth_scale=1.5,
    )
    y = _unit_or_zero(y)
    g = _bp(rng.standard_normal(n), sr, 1000.0, 5000.0)
    return y + 0.25 * gasp * g / (np.std(g) + 1e-12)  # inhalations ~20 dB below the cry


def _scream(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Scream: high, tense, rough voice (f0 350-1200 Hz) with 30-150 Hz amplitude roughness
    (Arnal et al. 2015) and period doubling; one or two screams."""
    n = _ns(sr, dur)
    female = rng.random() < 0.6
    base = rng.uniform(600.0, 1100.0) if female else rng.uniform(350.0, 650.0)
    fs = rng.uniform(1.1, 1.25) if female else rng.uniform(1.0, 1.1)
    f0 = np.zeros(n)
    env = np.zeros(n)
    t = rng.uniform(0.0, 0.02)
    k = 1 if dur < 1.5 or rng.random() < 0.5 else 2
    for _ in range(k):
        d = min(dur - t, rng.uniform(0.8, 2.2) if k == 1 else rng.uniform(0.5, 1.1))
        if d <= 0.02:
            break
        i0, i1 = int(t * sr), min(n, int((t + d) * sr))
        x = np.linspace(0.0, 1.0, i1 - i0)
        f0[i0:i1] = base * (0.8 + 0.3 * np.minimum(1.0, 5 * x) - 0.25 * x**3)
        env[i0:i1] = np.minimum(1.0, 20 * x) * np.minimum(1.0, 4 * (1 - x) + 0.05)
        t += d + rng.uniform(0.2, 0.5)
    f0 *= 1 + 0.015 * smooth_random(n, sr, rng, 6.0)
    return voice(
        rng,
        sr,
        f0,
        env,
        _vowel("a" if rng.random() < 0.6 else "ae", fs),
        breath=0.15,
        tilt_hz=rng.uniform(2000, 3500),
        jitter=0.012,
        shimmer=0.1,
        subharmonic=rng.uniform(0.2, 0.5),
        rough_hz=rng.uniform(30, 150),
        rough_depth=rng.uniform(0.3, 0.7),
        bandwidth_scale=1.3,
    )


def _laughter(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Laughter: bouts of 'ha' syllables at 4-6 per second, breathy onsets, falling pitch."""
    n = _ns(sr, dur)
    female = rng.random() < 0.5
    base = rng.uniform(220.0, 400.0) if female else rng.uniform(130.0, 250.0)
    fs = rng.uniform(1.1, 1.2) if female else 1.0
    f0 = np.zeros(n)
    env = np.zeros(n)
    asp = np.zeros(n)
    t = rng.uniform(0.0, 0.02)
    while t < dur:
        k = int(rng.integers(4, 10))
        rate = rng.uniform(4.0, 6.0)
        for j in range(k):
            d = 1.0 / rate
            h = rng.uniform(0.02, 0.05)
            i0, i1 = int((t + h) * sr), min(n, int((t + 0.75 * d) * sr))
            _add(asp, np.hanning(max(2, int(h * 1.5 * sr))) * 0.6, int(t * sr))
            if i1 > i0:
                x = np.linspace(0, 1, i1 - i0)
                f0[i0:i1] = base * (1.15 - 0.3 * j / k) * (1.0 - 0.08 * x)
                env[i0:i1] = np.sin(np.pi * x) ** 0.6
            t += d
        t += rng.uniform(0.3, 0.8)
    f0 = np.where(env > 0, f0, 0.0)
    y = _unit_or_zero(
        voice(rng, sr, f0, env, _vowel("a", fs), breath=0.3, tilt_hz=rng.uniform(400, 900))
    )
    a = formant_filter(rng.standard_normal(n) * asp, sr, _vowel("a", fs))
    return y + 0.5 * a / (np.std(a) + 1e-12) * np.sqrt(np.mean(asp > 0) + 1e-3)


def _coughs(
    rng: np.random.Generator,
    n: int,
    sr: int,
    starts: list[float],
    strength: float,
    fs: float,
    f0b: float,
) -> np.ndarray:
    """Cough sounds: explosive turbulent burst through the vocal tract plus a short voiced part."""
    noise_env = np.zeros(n)
    f0 = np.zeros(n)
    venv = np.zeros(n)
    for s in starts:
        d = rng.uniform(0.15, 0.3) * (0.6 + 0.4 * strength)
        m = int(d * sr)
        x = np.arange(m) / sr
        _add(
            noise_env,
            rng.uniform(0.7, 1.0) * (1 - np.exp(-x / 0.004)) * np.exp(-x / (0.3 * d)),
            int(s * sr),
        )
        vd = rng.uniform(0.04, 0.1)
        i0, i1 = int((s + 0.01) * sr), min(n, int((s + 0.01 + vd) * sr))
        if i1 > i0:
            f0[i0:i1] = f0b * np.linspace(1.2, 0.9, i1 - i0)
            venv[i0:i1] = np.hanning(i1 - i0) * strength
    burst = formant_filter(
        rng.standard_normal(n) * noise_env, sr, _vowel("uh", fs), (200.0, 250.0, 300.0, 400.0)
    )
    burst = burst + 0.3 * _hp(rng.standard_normal(n) * noise_env, sr, 2000.0)
    v = (
        voice(rng, sr, f0, venv, _vowel("a", fs), breath=0.4, jitter=0.03, subharmonic=0.4)
        if venv.any()
        else np.zeros(n)
    )
    return _unit_or_zero(burst) + 0.5 * _unit_or_zero(v) * strength


def _cough_choke(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Choking: fits of 3-6 violent coughs, then a high-pitched inspiratory stridor (whoop)."""
    n = _ns(sr, dur)
    fs = rng.uniform(1.0, 1.2)
    f0b = rng.uniform(120.0, 260.0)
    starts: list[float] = []
    f0 = np.zeros(n)
    env = np.zeros(n)
    t = rng.uniform(0.0, 0.02)
    while t < dur:
        for _ in range(int(rng.integers(3, 7))):
            starts.append(t)
            t += rng.uniform(0.2, 0.35)
        d = rng.uniform(0.3, 0.7)
        i0, i1 = int(t * sr), min(n, int((t + d) * sr))
        if i1 > i0:
            x = np.linspace(0, 1, int((t + d) * sr) - i0)[: i1 - i0]
            f0[i0:i1] = rng.uniform(700.0, 1300.0) * (1 + 0.2 * x)
            env[i0:i1] = np.sin(np.pi * x) ** 0.5 * 0.6
        t += d + rng.uniform(0.1, 0.4)
    out = _coughs(rng, n, sr, starts, 1.0, fs, f0b)
    if env.any():
        w = voice(rng, sr, f0, env, _vowel("i", fs * 1.1), breath=0.7, tilt_hz=2000.0, jitter=0.02)
        out += 0.5 * _unit_or_zero(w) * np.sqrt(np.mean(env > 0))
    return out


def _light_cough(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """A light cough or throat clearing: one or two soft coughs."""
    n = _ns(sr, dur)
    t0 = rng.uniform(0.0, 0.02)
    starts = [t0] + ([t0 + rng.uniform(0.25, 0.4)] if rng.random() < 0.5 else [])
    return _coughs(
        rng, n, sr, starts, rng.uniform(0.3, 0.6), rng.uniform(1.0, 1.2), rng.uniform(110.0, 240.0)
    )


def _snore(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Snoring: inhalations with soft-palate flutter (20-60 Hz pulses), quiet exhalations."""
    n = _ns(sr, dur)
    f0 = np.zeros(n)
    env = np.zeros(n)
    breath = np.zeros(n)
    t = rng.uniform(0.0, 0.02)
    flutter = rng.uniform(20.0, 60.0)
    while t < dur:
        d = rng.uniform(0.8, 1.5)
        i0, i1 = int(t * sr), min(n, int((t + d) * sr))
        if i1 > i0:
            x = np.linspace(0, 1, int((t + d) * sr) - i0)[: i1 - i0]
            f0[i0:i1] = flutter * (1 + 0.1 * x)
            env[i0:i1] = np.sin(np.pi * x) ** 0.8
        t += d
        e = rng.uniform(1.2, 2.5)
        _add(breath, 0.15 * np.hanning(max(2, int(e * sr))), int(t * sr))
        t += e + rng.uniform(0.1, 0.5)
    v = voice(
        rng, sr, f0, env, _vowel("uh", 0.9), breath=0.5, tilt_hz=200.0, jitter=0.05, shimmer=0.2
    )
    b = _bp(rng.standard_normal(n), sr, 300.0, 2500.0)
    return _unit_or_zero(v) + breath * b / (np.std(b) + 1e-12)  # exhalations ~17 dB down


# ============================================================================================
# Music
# ============================================================================================
def _note_strings(
    n: int,
    sr: int,
    t0: float,
    f: float,
    detune_cents: list[float],
    decay: float,
    inharm: float = 0.0003,
) -> np.ndarray:
    """A piano-like note: ``len(detune_cents)`` strings of 8 stiff-string partials."""
    out = np.zeros(n)
    k = np.arange(1, 9)
    for c in detune_cents:
        fk = f * 2 ** (c / 1200) * k * np.sqrt(1 + inharm * k**2)
        out += _modal(n, sr, t0, fk, decay / k**0.6, 1.0 / k**1.2, 0.002)
    return out


_PROGRESSIONS = ([0, 7, 9, 5], [0, 5, 7, 0], [9, 5, 0, 7], [0, 9, 5, 7])
_MAJOR = np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16])


def _music(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Music: synth pad chords (I-V-vi-IV style), a plucked melody and a bass line, in tune."""
    n = _ns(sr, dur)
    root = rng.uniform(110.0, 196.0)
    bpm = rng.uniform(80.0, 130.0)
    beat = 60.0 / bpm
    prog = _PROGRESSIONS[int(rng.integers(len(_PROGRESSIONS)))]
    out = np.zeros(n)
    pad_amps = _saw_amps(8, 1.3)
    t, ci = 0.0, 0
    while t < dur:
        deg = prog[ci % len(prog)]
        minor = deg == 9
        chord = [deg, deg + (3 if minor else 4), deg + 7]
        seg = _ramp_env(n, sr, [(t, 4 * beat, 1.0)], 0.08)
        i0, i1 = int(t * sr), min(n, int((t + 4 * beat) * sr) + 1)
        if i0 < n:
            pad = np.zeros(i1 - i0)
            for s in chord:
                pad += _harmonics(float(_semitones(root * 2, s)), sr, i1 - i0, pad_amps)
            bass = _note_strings(i1 - i0, sr, 0.0, float(_semitones(root / 2, deg)), [0.0], 0.8)
            out[i0:i1] += seg[i0:i1] * 0.25 * pad + 0.6 * bass
        t += 4 * beat
        ci += 1
    t = 0.0
    while t < dur:
        s = float(_MAJOR[int(rng.integers(len(_MAJOR)))])
        out += 0.5 * _modal(
            n,
            sr,
            t,
            _semitones(root * 4, s) * np.array([1.0, 2.0, 3.0]),
            [0.3, 0.15, 0.08],
            [1.0, 0.4, 0.2],
            0.002,
        )
        t += beat * float(rng.choice([0.5, 0.5, 1.0, 1.5]))
    return _lp(out, sr, 5000.0)


def _broken_instrument(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """A detuned / broken piano: strings 20-60 cents apart (sour beating), off-pitch notes,
    a buzzing string and dead (thunking) keys."""
    n = _ns(sr, dur)
    root = rng.uniform(200.0, 350.0)
    beat = 60.0 / rng.uniform(70.0, 120.0)
    out = np.zeros(n)
    t = rng.uniform(0.0, 0.02)
    while t < dur:
        s = float(_MAJOR[int(rng.integers(len(_MAJOR)))])
        off = rng.uniform(-80.0, 80.0) if rng.random() < 0.5 else rng.uniform(-25.0, 25.0)
        f = float(_semitones(root, s)) * 2 ** (off / 1200)
        r = rng.random()
        if r < 0.15:  # dead key: a thunk, no tone
            out += _modal(n, sr, t, [rng.uniform(80, 200), 450.0], [0.03, 0.015], [1.0, 0.4])
            out += 0.3 * _burst(rng, n, sr, t, 0.01, 200.0, 2000.0)
        else:
            spread = rng.uniform(20.0, 60.0)
            note = _note_strings(
                n,
                sr,
                t,
                f,
                [-spread / 2, spread / 2, rng.uniform(-spread, spread)],
                rng.uniform(0.5, 1.2),
                inharm=rng.uniform(0.0005, 0.003),
            )
            if r < 0.35:  # buzzing string: rattles against something
                note = np.tanh(4 * note / (np.max(np.abs(note)) + 1e-12)) * np.max(np.abs(note))
            out += note
        t += beat * float(rng.choice([0.5, 1.0, 1.0, 1.5]))
    return out


# ============================================================================================
# Nature
# ============================================================================================
def _thunder(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Thunder: a crack (near strikes) then a long rolling rumble of irregular swells."""
    n = _ns(sr, dur)
    t = np.arange(n) / sr
    rumble = _lp(colored_noise(n, sr, rng, 2.0), sr, rng.uniform(120.0, 300.0), order=3)
    rumble /= np.std(rumble) + 1e-12
    swells = np.zeros(n)
    for _ in range(int(rng.integers(3, 8))):
        c, w = rng.uniform(0.05, 0.7) * dur, rng.uniform(0.2, 0.8)
        swells += rng.uniform(0.4, 1.0) * np.exp(-0.5 * ((t - c) / w) ** 2)
    decay = np.exp(-t / rng.uniform(0.4, 0.8) / max(dur, 0.5))
    env = (swells + 0.3) * decay * (1 - np.exp(-t / 0.05))
    mid = _bp(colored_noise(n, sr, rng, 1.0), sr, 200.0, 1200.0)
    out = env * (rumble + rng.uniform(0.1, 0.3) * mid / (np.std(mid) + 1e-12))
    if rng.random() < 0.6:
        out += rng.uniform(1.0, 3.0) * _burst(
            rng, n, sr, rng.uniform(0.0, 0.02), 0.08, 300.0, 6000.0
        )
    return out


def _explosion(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Explosion: a broadband blast, a deep decaying boom and falling debris."""
    n = _ns(sr, dur)
    t = np.arange(n) / sr
    t0 = rng.uniform(0.0, 0.02)
    blast = _burst(rng, n, sr, t0, 0.05, 100.0, 8000.0, 3.0)
    boom = _lp(colored_noise(n, sr, rng, 2.0), sr, rng.uniform(100.0, 250.0), order=3)
    boom /= np.std(boom) + 1e-12
    boom *= np.exp(-np.maximum(t - t0, 0) / rng.uniform(0.4, 1.0)) * (t >= t0) * 2.0
    debris = np.zeros(n)
    for _ in range(int(rng.integers(5, 20))):
        debris += (
            rng.pareto(2.0)
            * 0.2
            * _burst(rng, n, sr, t0 + rng.uniform(0.2, 0.9 * dur + 0.2), 0.01, 300.0, 5000.0)
        )
    return blast + boom + debris


def _fire_crackling(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Fire: sharp pops and crackles over a low fluctuating roar."""
    n = _ns(sr, dur)
    roar = _lp(colored_noise(n, sr, rng, 1.5), sr, rng.uniform(250.0, 600.0))
    roar /= np.std(roar) + 1e-12
    roar *= 1 + 0.4 * smooth_random(n, sr, rng, 2.0)
    crackle = _bp(_sparse_impulses(rng, n, sr, rng.uniform(10.0, 40.0), 1.3), sr, 800.0, 8000.0)
    crackle /= np.std(crackle) + 1e-12
    out = 0.5 * roar + crackle
    for _ in range(int(rng.integers(1, 4) * max(1.0, dur / 3))):
        out += 3.0 * _burst(rng, n, sr, rng.uniform(0.0, dur), 0.01, 500.0, 6000.0)
    return out


def _rain(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Light rain: hundreds of drops per second (drop clicks through a few resonances) over hiss."""
    n = _ns(sr, dur)
    hiss = _hp(colored_noise(n, sr, rng, 1.0), sr, 500.0)
    hiss /= np.std(hiss) + 1e-12
    drops = np.zeros(n)
    for _ in range(4):
        imp = _sparse_impulses(rng, n, sr, rng.uniform(50.0, 200.0), 2.0)
        f = rng.uniform(1000.0, min(5000.0, 0.4 * sr))
        drops += formant_filter(imp, sr, (f,), (rng.uniform(200.0, 600.0),))
    drops = _hp(drops, sr, 400.0)
    drops /= np.std(drops) + 1e-12
    return hiss * (1 + 0.2 * smooth_random(n, sr, rng, 0.5)) + 0.8 * drops


def _birdsong(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Birdsong: phrases of FM chirps and trills (2-7 kHz, clipped below Nyquist)."""
    n = _ns(sr, dur)
    out = np.zeros(n)
    fmax = min(7000.0, 0.42 * sr)
    t = rng.uniform(0.0, 0.02)
    while t < dur:
        lo = rng.uniform(1800.0, 0.7 * fmax)
        hi = rng.uniform(lo * 1.1, fmax)
        for _ in range(int(rng.integers(3, 10))):
            d = rng.uniform(0.03, 0.15)
            m = int(d * sr)
            if m < 4:
                break
            x = np.linspace(0, 1, m)
            shape = int(rng.integers(3))
            fx = lo + (hi - lo) * (x if shape == 0 else 1 - x if shape == 1 else np.sin(np.pi * x))
            ch = np.hanning(m) * _harmonics(fx, sr, m, [1.0, 0.1])
            _add(out, ch, int(t * sr))
            t += d + rng.uniform(0.01, 0.08)
        t += rng.uniform(0.3, 1.5)
    return out


def _crickets(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Crickets: a 3.5-5 kHz carrier pulsed at ~30 Hz in chirps of 3-5 pulses, 1-3 chirps/s."""
    n = _ns(sr, dur)
    f = min(rng.uniform(3500.0, 5000.0), 0.42 * sr)
    prate = rng.uniform(25.0, 40.0)
    crate = rng.uniform(1.0, 3.0)
    segs, t = [], rng.uniform(0.0, 0.02)
    while t < dur:
        for i in range(int(rng.integers(3, 6))):
            segs.append((t + i / prate, 0.5 / prate, rng.uniform(0.7, 1.0)))
        t += 1.0 / crate * rng.uniform(0.9, 1.1)
    return _ramp_env(n, sr, segs, 0.002) * _harmonics(f, sr, n, [1.0, 0.05])


# ============================================================================================
# Traffic (continued)
# ============================================================================================
def _car_crash(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Car crash: tyre skid squeal, then a crunching impact with metal and breaking glass."""
    n = _ns(sr, dur)
    t = np.arange(n) / sr
    skid = min(rng.uniform(0.3, 0.8), 0.6 * dur)
    fsq = (
        rng.uniform(700.0, 1800.0)
        * (1 - 0.1 * t / max(skid, 1e-3))
        * (1 + 0.02 * smooth_random(n, sr, rng, 20))
    )
    squeal = _harmonics(fsq, sr, n, [1.0, 0.4, 0.2]) + 0.5 * _bp(
        rng.standard_normal(n), sr, 800.0, 4000.0
    )
    out = squeal * _ramp_env(n, sr, [(0.0, skid, 1.0)], 0.05)
    ti = skid
    out += 4.0 * _burst(rng, n, sr, ti, 0.06, 60.0, 2000.0)
    out += 2.0 * _modal(
        n, sr, ti, rng.uniform(50.0, 90.0) * np.array([1.0, 1.5]), [0.2, 0.1], [1.0, 0.5]
    )
    fm = rng.uniform(300.0, 700.0)
    out += 1.0 * _modal(
        n,
        sr,
        ti,
        fm * np.array([1.0, 2.32, 4.25, 6.6, 9.1]),
        [0.5, 0.3, 0.2, 0.12, 0.08],
        [1.0, 0.8, 0.6, 0.4, 0.3],
    )
    out += 1.5 * _glass_shards(rng, n, sr, ti + 0.01, int(rng.integers(20, 40)), 0.2)
    for _ in range(int(rng.integers(3, 8))):
        out += 0.5 * _burst(rng, n, sr, ti + rng.uniform(0.1, 1.2), 0.02, 200.0, 5000.0)
    return out


def _traffic(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Road traffic: distant rumble and cars passing by (engine harmonics with a Doppler drop,
    tyre noise)."""
    n = _ns(sr, dur)
    t = np.arange(n) / sr
    bed = _lp(colored_noise(n, sr, rng, 1.5), sr, 1200.0)
    bed /= np.std(bed) + 1e-12
    out = 0.5 * bed
    k = max(1, int(rng.poisson(0.4 * dur)) + 1)
    for _ in range(k):
        c = rng.uniform(-0.5, dur + 0.5)
        w = rng.uniform(0.8, 2.0)
        sw = np.exp(-0.5 * ((t - c) / w) ** 2)
        if sw.max() < 1e-3:
            continue
        v = rng.uniform(10.0, 20.0)  # m/s
        dop = 1 + (v / 343.0) * -np.tanh((t - c) / (0.3 * w))
        fe = rng.uniform(40.0, 120.0) * dop
        eng = _harmonics(fe, sr, n, _saw_amps(12, 1.0))
        tyre = _bp(rng.standard_normal(n), sr, 400.0, 2500.0)
        out += 1.5 * sw * (0.5 * eng / (np.std(eng) + 1e-12) + tyre / (np.std(tyre) + 1e-12))
    return out


# ============================================================================================
# Registry
# ============================================================================================
def _ec(
    name: str,
    domain: str,
    sub: str,
    decision: Literal["INTERVENE", "IGNORE"],
    sc: bool,
    desc: str,
    dur: tuple[float, float],
    delay: float,
    synth: Synth,
    like: str | None = None,
) -> EventClass:
    return EventClass(name, domain, sub, decision, sc, desc, dur, delay, synth, like)


_DL, _EQ, _HS, _MU, _NA, _TR = DOMAINS
_I, _G = "INTERVENE", "IGNORE"

#: Every known event class, by name. Recorded (``fd_*``) classes are added when available.
EVENT_CLASSES: dict[str, EventClass] = {
    ec.name: ec
    for ec in (
        # ---- Daily Living
        _ec(
            "glass_break",
            _DL,
            "Daily Affairs",
            _I,
            True,
            "glass breaking: crack, thump, ringing shards",
            (0.8, 1.5),
            0.3,
            _glass_break,
        ),
        _ec(
            "object_fall",
            _DL,
            "Daily Affairs",
            _I,
            False,
            "an object falls: thud or clang, bounces",
            (0.5, 1.5),
            0.3,
            _object_fall,
        ),
        _ec(
            "knock", _DL, "Daily Affairs", _I, False, "knocking on a door", (1.5, 4.0), 0.6, _knock
        ),
        _ec(
            "phone_ring",
            _DL,
            "Daily Affairs",
            _I,
            False,
            "a telephone ringing (bell, trill or ringtone)",
            (3.0, 8.0),
            1.0,
            _phone_ring,
        ),
        _ec(
            "doorbell",
            _DL,
            "Daily Affairs",
            _I,
            False,
            "a doorbell chime (ding-dong or Westminster)",
            (3.0, 6.0),
            0.8,
            _doorbell,
        ),
        _ec(
            "keyboard_typing",
            _DL,
            "Daily Affairs",
            _G,
            False,
            "typing on a computer keyboard",
            (3.0, 10.0),
            1.0,
            _keyboard_typing,
            "knock",
        ),
        _ec(
            "clock_tick",
            _DL,
            "Daily Affairs",
            _G,
            False,
            "a mechanical clock ticking",
            (3.0, 10.0),
            1.0,
            _clock_tick,
            "knock",
        ),
        _ec(
            "kettle_whistle",
            _DL,
            "Housekeeping",
            _I,
            False,
            "a whistling kettle coming to the boil",
            (3.0, 8.0),
            1.0,
            _kettle_whistle,
        ),
        _ec(
            "microwave_done",
            _DL,
            "Housekeeping",
            _I,
            False,
            "a microwave's end-of-cooking beeps",
            (3.0, 6.0),
            0.8,
            _microwave_done,
        ),
        _ec(
            "oven_done",
            _DL,
            "Housekeeping",
            _I,
            False,
            "an oven timer beeping",
            (3.0, 8.0),
            1.0,
            _oven_done,
        ),
        _ec(
            "washer_done",
            _DL,
            "Housekeeping",
            _I,
            False,
            "a washing machine's end-of-cycle melody or beeps",
            (3.0, 8.0),
            1.5,
            _washer_done,
        ),
        _ec(
            "dryer_done",
            _DL,
            "Housekeeping",
            _I,
            False,
            "a tumble dryer's end buzzer or chime",
            (3.0, 8.0),
            1.0,
            _dryer_done,
        ),
        _ec(
            "toaster_pop",
            _DL,
            "Housekeeping",
            _I,
            False,
            "a toaster popping up",
            (0.8, 2.0),
            0.3,
            _toaster_pop,
        ),
        _ec(
            "pressure_cooker_whistle",
            _DL,
            "Housekeeping",
            _I,
            False,
            "a pressure cooker venting steam",
            (3.0, 8.0),
            1.0,
            _pressure_cooker,
        ),
        _ec(
            "frying",
            _DL,
            "Housekeeping",
            _G,
            False,
            "food frying in a pan",
            (3.0, 10.0),
            1.5,
            _frying,
            "electrical_arcing",
        ),
        _ec(
            "microwave_running",
            _DL,
            "Housekeeping",
            _G,
            False,
            "a microwave running (hum, fan, no beep)",
            (3.0, 10.0),
            1.5,
            _microwave_running,
            "microwave_done",
        ),
        _ec(
            "chopping",
            _DL,
            "Housekeeping",
            _G,
            False,
            "chopping vegetables on a board",
            (3.0, 8.0),
            1.0,
            _chopping,
            "knock",
        ),
        _ec(
            "water_running",
            _DL,
            "Personal Care",
            _G,
            False,
            "water running from a tap",
            (3.0, 10.0),
            1.5,
            _water_running,
            "gas_leak_hiss",
        ),
        # ---- Equipment
        _ec(
            "co_alarm",
            _EQ,
            "House Equipment States",
            _I,
            True,
            "a carbon-monoxide alarm: ISO 8201 T4 pattern (4 short beeps, 5 s pause), ~3.4 kHz",
            (3.0, 8.0),
            0.8,
            _co_alarm,
        ),
        _ec(
            "gas_leak_hiss",
            _EQ,
            "House Equipment States",
            _I,
            True,
            "gas hissing from a leaking fitting",
            (3.0, 10.0),
            1.5,
            _gas_leak,
        ),
        _ec(
            "electrical_arcing",
            _EQ,
            "House Equipment States",
            _I,
            True,
            "a short circuit: arcing buzz and snaps",
            (2.0, 6.0),
            0.8,
            _electrical_arcing,
        ),
        _ec(
            "appliance_grinding",
            _EQ,
            "House Equipment States",
            _I,
            False,
            "a broken appliance: grinding, knocking, squealing",
            (3.0, 8.0),
            1.5,
            _appliance_grinding,
        ),
        _ec(
            "fridge_hum",
            _EQ,
            "House Equipment States",
            _G,
            False,
            "a refrigerator compressor humming",
            (3.0, 10.0),
            1.5,
            _fridge_hum,
            "appliance_grinding",
        ),
        _ec(
            "printer",
            _EQ,
            "House Equipment States",
            _G,
            False,
            "an inkjet printer printing",
            (3.0, 8.0),
            1.5,
            _printer,
            "appliance_grinding",
        ),
        _ec(
            "blender",
            _EQ,
            "House Equipment States",
            _G,
            False,
            "a kitchen blender running",
            (3.0, 8.0),
            1.5,
            _blender,
            "appliance_grinding",
        ),
        _ec(
            "error_beep",
            _EQ,
            "Industrial Tools",
            _I,
            False,
            "an error / incorrect-input beep",
            (1.5, 4.0),
            0.5,
            _error_beep,
        ),
        _ec(
            "heart_rate_warning",
            _EQ,
            "Industrial Tools",
            _I,
            True,
            "a patient monitor's high-priority alarm (IEC 60601-1-8, 10 pulses)",
            (3.0, 8.0),
            1.0,
            _heart_rate_warning,
        ),
        _ec(
            "heart_rate_normal",
            _EQ,
            "Industrial Tools",
            _G,
            False,
            "a patient monitor's heartbeat blips",
            (3.0, 10.0),
            1.5,
            _heart_rate_normal,
            "heart_rate_warning",
        ),
        # ---- Human Signals
        _ec(
            "baby_cry",
            _HS,
            "Emotion Expression",
            _I,
            False,
            "a baby crying",
            (3.0, 8.0),
            1.5,
            _baby_cry,
        ),
        _ec(
            "scream",
            _HS,
            "Emotion Expression",
            _I,
            True,
            "a person screaming",
            (1.0, 3.0),
            0.4,
            _scream,
        ),
        _ec(
            "laughter",
            _HS,
            "Emotion Expression",
            _G,
            False,
            "a person laughing",
            (2.0, 6.0),
            1.0,
            _laughter,
            "scream",
        ),
        _ec(
            "cough_choke",
            _HS,
            "Physiological",
            _I,
            True,
            "someone choking: coughing fits and stridor",
            (2.0, 6.0),
            1.0,
            _cough_choke,
        ),
        _ec(
            "light_cough",
            _HS,
            "Physiological",
            _G,
            False,
            "a light cough",
            (0.5, 1.5),
            0.5,
            _light_cough,
            "cough_choke",
        ),
        _ec(
            "snore",
            _HS,
            "Physiological",
            _G,
            False,
            "someone snoring",
            (3.0, 10.0),
            1.5,
            _snore,
            "cough_choke",
        ),
        _ec(
            "fall_down",
            _HS,
            "Body Movements",
            _I,
            True,
            "a person falling: body thud, often a groan",
            (1.0, 2.5),
            0.5,
            _fall_down,
        ),
        _ec(
            "footsteps",
            _HS,
            "Body Movements",
            _G,
            False,
            "someone walking",
            (3.0, 10.0),
            1.0,
            _footsteps,
            "fall_down",
        ),
        # ---- Music
        _ec(
            "broken_instrument",
            _MU,
            "Artistic",
            _I,
            False,
            "a detuned / broken piano: sour beating strings, off-pitch and dead keys",
            (3.0, 8.0),
            1.5,
            _broken_instrument,
        ),
        _ec(
            "music",
            _MU,
            "Artistic",
            _G,
            False,
            "in-tune music: synth pad chords, melody and bass",
            (3.0, 10.0),
            1.5,
            _music,
            "broken_instrument",
        ),
        # ---- Nature
        _ec(
            "smoke_alarm",
            _NA,
            "Environment Background",
            _I,
            True,
            "a smoke alarm: ISO 8201 T3 pattern (3 x 0.5 s beeps, 1.5 s pause), ~3.1 kHz",
            (3.0, 8.0),
            1.0,
            _smoke_alarm,
        ),
        _ec(
            "thunder",
            _NA,
            "Meteorological",
            _I,
            False,
            "thunder: crack and rolling rumble",
            (3.0, 8.0),
            0.5,
            _thunder,
        ),
        _ec(
            "explosion",
            _NA,
            "Environment Background",
            _I,
            True,
            "an explosion: blast, boom, debris",
            (1.5, 4.0),
            0.3,
            _explosion,
        ),
        _ec(
            "fire_crackling",
            _NA,
            "Ecological",
            _I,
            True,
            "a fire burning: crackle and roar",
            (3.0, 10.0),
            1.5,
            _fire_crackling,
        ),
        _ec(
            "rain",
            _NA,
            "Meteorological",
            _G,
            False,
            "light rain",
            (3.0, 10.0),
            1.5,
            _rain,
            "fire_crackling",
        ),
        _ec(
            "birdsong",
            _NA,
            "Ecological",
            _G,
            False,
            "birds singing",
            (3.0, 10.0),
            1.0,
            _birdsong,
            "smoke_alarm",
        ),
        _ec(
            "crickets",
            _NA,
            "Ecological",
            _G,
            False,
            "crickets chirping",
            (3.0, 10.0),
            1.0,
            _crickets,
            "co_alarm",
        ),
        # ---- Traffic
        _ec(
            "car_horn", _TR, "Traffic", _I, False, "a car horn honking", (1.0, 3.0), 0.3, _car_horn
        ),
        _ec(
            "siren",
            _TR,
            "Traffic",
            _I,
            True,
            "an emergency siren (wail, yelp or hi-lo)",
            (3.0, 8.0),
            1.0,
            _siren,
        ),
        _ec(
            "car_crash",
            _TR,
            "Traffic",
            _I,
            True,
            "a car crash: skid, crunch, breaking glass",
            (1.5, 4.0),
            1.0,
            _car_crash,
        ),
        _ec(
            "traffic",
            _TR,
            "Traffic",
            _G,
            False,
            "road traffic with cars passing by",
            (3.0, 10.0),
            1.5,
            _traffic,
            "siren",
        ),
        _ec(
            "car_alarm",
            _TR,
            "Vehicle",
            _I,
            False,
            "a car alarm cycling through its patterns",
            (3.0, 8.0),
            1.0,
            _car_alarm,
        ),
        _ec(
            "seatbelt_warning",
            _TR,
            "Vehicle",
            _I,
            False,
            "a seat-belt reminder chime",
            (3.0, 8.0),
            1.5,
            _seatbelt,
        ),
        _ec(
            "turn_signal",
            _TR,
            "Vehicle",
            _G,
            False,
            "a car's turn-signal relay ticking",
            (3.0, 10.0),
            1.0,
            _turn_signal,
            "seatbelt_warning",
        ),
    )
}


# ============================================================================================
# Recorded classes (Debian sound-theme-freedesktop)
# ============================================================================================
#: file stem -> (class name, domain, subcategory, decision, description, lookalike_of)
_RECORDED: dict[str, tuple[str, str, str, Literal["INTERVENE", "IGNORE"], str, str | None]] = {
    "alarm-clock-elapsed": (
        "fd_alarm_clock",
        _DL,
        "Daily Affairs",
        _I,
        "an alarm clock going off",
        None,
    ),
    "phone-incoming-call": (
        "fd_phone_incoming_call",
        _DL,
        "Daily Affairs",
        _I,
        "a phone ringing",
        None,
    ),
    "bell": ("fd_bell", _DL, "Daily Affairs", _I, "a bell rung for attention", None),
    "complete": (
        "fd_complete",
        _EQ,
        "House Equipment States",
        _G,
        "a computer's task-complete sound",
        "microwave_done",
    ),
    "message-new-instant": (
        "fd_message_new_instant",
        _EQ,
        "House Equipment States",
        _G,
        "a chat-message notification",
        "phone_ring",
    ),
}


@functools.lru_cache(maxsize=32)
def _load_recording(path: str, sr: int) -> np.ndarray:
    from chimein.scenes.audio import load_audio

    x = load_audio(path, sr)
    x.setflags(write=False)
    return x


def _recorded_synth(path: Path) -> Synth:
    def synth(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
        n = _ns(sr, dur)
        x = _load_recording(str(path), sr).astype(np.float64)
        rate = rng.uniform(0.97, 1.03)  # small playback-speed (pitch) variation
        m = max(2, int(len(x) / rate))
        x = np.interp(np.arange(m) * rate, np.arange(len(x)), x)
        out = np.zeros(n)
        pos = -int(rng.integers(0, max(1, m // 4)))  # start a little way into the first play
        while pos < n:
            _add(out, x * 10 ** (rng.uniform(-2.0, 2.0) / 20), pos)
            pos += m + int(rng.uniform(0.2, 1.0) * sr)
        return out

    synth.__doc__ = f"Recorded sound {path.name}, looped with gaps and cropped."
    return synth


def register_recorded_classes(directory: str | Path = FREEDESKTOP_DIR) -> list[str]:
    """Register ``fd_*`` classes for the sound-theme-freedesktop files found in ``directory``.

    Called at import with Debian's install location; a missing directory or file registers
    nothing. Returns the names registered.

    Examples
    --------
    >>> register_recorded_classes("/nonexistent")
    []
    """
    d = Path(directory)
    added = []
    for stem, (name, dom, sub, dec, desc, like) in _RECORDED.items():
        p = d / f"{stem}.oga"
        if p.is_file():
            dur = (0.8, 3.0) if dec == _G else (3.0, 8.0)
            EVENT_CLASSES[name] = _ec(
                name,
                dom,
                sub,
                dec,
                False,
                f"{desc} (recording: {p.name})",
                dur,
                1.0 if dec == _I else 0.5,
                _recorded_synth(p),
                like,
            )
            added.append(name)
    return added


def recorded_classes_available() -> bool:
    """Whether recorded (``fd_*``) classes are registered (sound-theme-freedesktop installed)."""
    return any(name.startswith("fd_") for name in EVENT_CLASSES)


register_recorded_classes()


# ============================================================================================
# Public API
# ============================================================================================
def get_event_class(name: str) -> EventClass:
    """The registered class ``name``.

    Raises
    ------
    SpecError
        Unknown name; the message lists close matches.

    Examples
    --------
    >>> get_event_class("smoke_alarm").safety_critical
    True
    """
    ec = EVENT_CLASSES.get(name) if isinstance(name, str) else None
    if ec is None:
        close = difflib.get_close_matches(str(name), list(EVENT_CLASSES), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise SpecError(
            f"event: field 'cls': unknown event class {name!r}; {hint}"
            f"known classes: {', '.join(sorted(EVENT_CLASSES))}"
        )
    return ec


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
    "DOMAINS",
    "MAX_CREST",
    "EVENT_CLASSES",
    "EventClass",
    "FREEDESKTOP_DIR",
    "active_mask",
    "active_rms",
    "get_event_class",
    "recorded_classes_available",
    "register_recorded_classes",
    "synthesize_event",
]
