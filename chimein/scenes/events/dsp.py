"""Signal helpers shared by the synthesis modules (all float64; ``n`` samples at ``sr`` Hz).

Tone stacks, envelopes, filters, modal resonators and noise bursts: the building blocks the
alarm, household, human, music, nature and traffic synthesisers combine, and the few pieces
more than one of them uses (vowel formants, glass shards).
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from chimein.scenes.noise import VOWELS


def ns(sr: int, dur: float) -> int:
    return max(1, int(round(dur * sr)))


def onset(rng: np.random.Generator) -> float:
    """Start time (s) of an event's first sound: uniform in [0, 20 ms), so that the clips of a
    class do not all start on the same sample (one draw from ``rng``)."""
    return rng.uniform(0.0, 0.02)


def hz(f: float, sr: int, frac: float = 0.45) -> float:
    """Clip a frequency below ``frac`` x the sample rate (so the same design works at 8 kHz)."""
    return float(min(f, frac * sr))


def lp(x: np.ndarray, sr: int, fc: float, order: int = 2) -> np.ndarray:
    return signal.sosfilt(signal.butter(order, hz(fc, sr), "low", fs=sr, output="sos"), x)


def hp(x: np.ndarray, sr: int, fc: float, order: int = 2) -> np.ndarray:
    return signal.sosfilt(signal.butter(order, min(fc, 0.4 * sr), "high", fs=sr, output="sos"), x)


def bp(x: np.ndarray, sr: int, lo: float, hi: float, order: int = 2) -> np.ndarray:
    hi = hz(hi, sr)
    lo = max(10.0, min(lo, 0.7 * hi))
    return signal.sosfilt(signal.butter(order, [lo, hi], "band", fs=sr, output="sos"), x)


def add(out: np.ndarray, x: np.ndarray, i0: int) -> None:
    """Add ``x`` into ``out`` starting at sample ``i0`` (cropped at both ends)."""
    if i0 >= len(out) or i0 + len(x) <= 0:
        return
    s = max(0, -i0)
    m = min(len(x), len(out) - i0)
    out[i0 + s : i0 + m] += x[s:m]


def ramp_env(
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


def segment(n: int, sr: int, t: float, d: float) -> tuple[slice, np.ndarray]:
    """The samples of the span ``[t, t + d)`` s in an ``n``-sample buffer, and where each lies
    in the span (0 at its start to 1 at its end, so a contour keeps its shape when the buffer's
    end cuts the span short). Both are empty when no sample of the span is in the buffer."""
    i0, i1 = int(t * sr), min(n, int((t + d) * sr))
    if i1 <= i0:
        return slice(i0, i0), np.zeros(0)
    return slice(i0, i1), np.linspace(0.0, 1.0, int((t + d) * sr) - i0)[: i1 - i0]


def harmonics(
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


def square_amps(n_harm: int = 15, soft: float = 1.0) -> np.ndarray:
    """Odd-harmonic amplitudes of a square wave (``soft`` > 1 rolls off faster)."""
    k = np.arange(1, n_harm + 1)
    return np.where(k % 2 == 1, 1.0 / k**soft, 0.0)


def saw_amps(n_harm: int = 20, soft: float = 1.0) -> np.ndarray:
    k = np.arange(1, n_harm + 1)
    return 1.0 / k**soft


def _decay_axis(n: int, sr: int, t0: float, span_s: float) -> tuple[int, np.ndarray]:
    """Where a decaying sound that starts at ``t0`` s goes in an ``n``-sample buffer.

    Returns its first sample and its time axis (s): ``span_s`` long plus two samples (long
    enough for the decay to vanish), cut at the end of the buffer; empty when ``t0`` is past it.
    """
    i0 = int(round(t0 * sr))
    if i0 >= n:
        return i0, np.zeros(0)
    m = min(n - i0, int(span_s * sr) + 2)
    return i0, np.arange(m) / sr


def modal(
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
    f = np.asarray(freqs, np.float64)
    d = np.asarray(decays, np.float64)
    a = np.asarray(amps, np.float64)
    keep = f < 0.45 * sr
    if not keep.any():
        return out
    f, d, a = f[keep], d[keep], a[keep]
    i0, t = _decay_axis(n, sr, t0, 7.0 * d.max())
    y = np.zeros(t.size)
    for fk, dk, ak in zip(f, d, a, strict=True):
        y += ak * np.exp(-t / dk) * np.sin(2 * np.pi * fk * t)
    if attack_s > 0:
        y *= 1.0 - np.exp(-t / attack_s)
    out[i0 : i0 + t.size] = y
    return out


def burst(
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
    i0, t = _decay_axis(n, sr, t0, 6.0 * decay_s)
    if t.size == 0:
        return out  # starts past the end: draws nothing from ``rng``
    x = bp(rng.standard_normal(t.size), sr, lo, hi)
    x = x / (np.std(x) + 1e-12)
    out[i0 : i0 + t.size] = amp * x * np.exp(-t / decay_s) * (1.0 - np.exp(-t / attack_s))
    return out


def sparse_impulses(
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


def bell(
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
    return modal(n, sr, t0, f * r, decay / (1.0 + k), amps, attack_s=0.001)


def semitones(base: float, steps: np.ndarray | list[int] | float) -> np.ndarray:
    return base * 2.0 ** (np.asarray(steps, dtype=np.float64) / 12.0)


def contour(n: int, sr: int, times: list[float], values: list[float]) -> np.ndarray:
    return np.interp(np.arange(n) / sr, times, values)


def vowel(name: str, scale: float) -> tuple[float, ...]:
    return tuple(f * scale for f in VOWELS[name])


def unit_or_zero(x: np.ndarray) -> np.ndarray:
    s = float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0
    return x / s if s > 1e-12 else x


def glass_shards(
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
        out += rng.pareto(2.0) * modal(n, sr, ts, f, [d, d / 2, d / 3], [1.0, 0.5, 0.3], 0.0002)
    return out
