"""Human signals: infant cries, screams, laughter, coughs and snoring, made with the
source-filter voice model of :mod:`chimein.scenes.noise` and pitch contours. Each function
is a :data:`~chimein.scenes.events.registry.Synth`.
"""

from __future__ import annotations

import numpy as np

import chimein.scenes.events.dsp as dsp
from chimein.scenes.noise import VoiceQuality, formant_filter, smooth_random, voice


def baby_cry(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Infant cry: 0.4-1.5 s phonations (f0 350-600 Hz, rise-fall), inhalation gasps between.

    Infant vocal tracts put formants ~1.6-1.8x higher than an adult man's; cries carry
    period doubling and jitter (roughness), stronger as the cry escalates.
    """
    n = dsp.ns(sr, dur)
    f0 = np.zeros(n)
    env = np.zeros(n)
    gasp = np.zeros(n)
    scale = rng.uniform(1.55, 1.8)
    keys: list[tuple[float, tuple[float, ...]]] = []
    base = rng.uniform(350.0, 550.0)
    t = dsp.onset(rng)
    while t < dur:
        d = rng.uniform(0.4, 1.5)
        seg, x = dsp.segment(n, sr, t, d)
        if x.size:
            peak = base * rng.uniform(1.1, 1.4)
            f0[seg] = base + (peak - base) * np.sin(np.pi * x ** rng.uniform(0.6, 1.0)) - 40 * x
            env[seg] = (
                np.minimum(1.0, 12 * x) * np.minimum(1.0, 6 * (1 - x)) * rng.uniform(0.7, 1.0)
            )
        v1, v2 = ("ae", "a") if rng.random() < 0.5 else ("a", "uh")
        keys += [(t, dsp.vowel(v1, scale)), (t + 0.6 * d, dsp.vowel(v2, scale))]
        t += d
        g = rng.uniform(0.15, 0.45)
        dsp.add(gasp, np.hanning(max(2, int(g * sr))) * rng.uniform(0.3, 0.6), int(t * sr))
        t += g
    f0 *= 1 + 0.02 * smooth_random(n, sr, rng, 8.0)
    cry = VoiceQuality(
        breath=rng.uniform(0.1, 0.25),
        tilt_hz=rng.uniform(800, 1500),
        jitter=0.01,
        shimmer=0.08,
        subharmonic=rng.uniform(0.0, 0.3),
        bandwidth_scale=1.5,
    )
    y = dsp.unit_or_zero(voice(rng, sr, f0, env, keys, cry))
    g = dsp.bp(rng.standard_normal(n), sr, 1000.0, 5000.0)
    return y + 0.25 * gasp * g / (np.std(g) + 1e-12)  # inhalations ~20 dB below the cry


def scream(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Scream: high, tense, rough voice (f0 350-1200 Hz) with 30-150 Hz amplitude roughness
    (Arnal et al. 2015) and period doubling; one or two screams."""
    n = dsp.ns(sr, dur)
    female = rng.random() < 0.6
    base = rng.uniform(600.0, 1100.0) if female else rng.uniform(350.0, 650.0)
    fs = rng.uniform(1.1, 1.25) if female else rng.uniform(1.0, 1.1)
    f0 = np.zeros(n)
    env = np.zeros(n)
    t = dsp.onset(rng)
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
    vowel = dsp.vowel("a" if rng.random() < 0.6 else "ae", fs)
    tense_rough = VoiceQuality(
        breath=0.15,
        tilt_hz=rng.uniform(2000, 3500),
        jitter=0.012,
        shimmer=0.1,
        subharmonic=rng.uniform(0.2, 0.5),
        rough_hz=rng.uniform(30, 150),
        rough_depth=rng.uniform(0.3, 0.7),
        bandwidth_scale=1.3,
    )
    return voice(rng, sr, f0, env, vowel, tense_rough)


def laughter(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Laughter: bouts of 'ha' syllables at 4-6 per second, breathy onsets, falling pitch."""
    n = dsp.ns(sr, dur)
    female = rng.random() < 0.5
    base = rng.uniform(220.0, 400.0) if female else rng.uniform(130.0, 250.0)
    fs = rng.uniform(1.1, 1.2) if female else 1.0
    f0 = np.zeros(n)
    env = np.zeros(n)
    asp = np.zeros(n)
    t = dsp.onset(rng)
    while t < dur:
        k = int(rng.integers(4, 10))
        rate = rng.uniform(4.0, 6.0)
        for j in range(k):
            d = 1.0 / rate
            h = rng.uniform(0.02, 0.05)
            i0, i1 = int((t + h) * sr), min(n, int((t + 0.75 * d) * sr))
            dsp.add(asp, np.hanning(max(2, int(h * 1.5 * sr))) * 0.6, int(t * sr))
            if i1 > i0:
                x = np.linspace(0, 1, i1 - i0)
                f0[i0:i1] = base * (1.15 - 0.3 * j / k) * (1.0 - 0.08 * x)
                env[i0:i1] = np.sin(np.pi * x) ** 0.6
            t += d
        t += rng.uniform(0.3, 0.8)
    f0 = np.where(env > 0, f0, 0.0)
    breathy = VoiceQuality(breath=0.3, tilt_hz=rng.uniform(400, 900))
    y = dsp.unit_or_zero(voice(rng, sr, f0, env, dsp.vowel("a", fs), breathy))
    a = formant_filter(rng.standard_normal(n) * asp, sr, dsp.vowel("a", fs))
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
        dsp.add(
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
        rng.standard_normal(n) * noise_env, sr, dsp.vowel("uh", fs), (200.0, 250.0, 300.0, 400.0)
    )
    burst = burst + 0.3 * dsp.hp(rng.standard_normal(n) * noise_env, sr, 2000.0)
    rough = VoiceQuality(breath=0.4, jitter=0.03, subharmonic=0.4)
    v = voice(rng, sr, f0, venv, dsp.vowel("a", fs), rough) if venv.any() else np.zeros(n)
    return dsp.unit_or_zero(burst) + 0.5 * dsp.unit_or_zero(v) * strength


def cough_choke(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Choking: fits of 3-6 violent coughs, then a high-pitched inspiratory stridor (whoop)."""
    n = dsp.ns(sr, dur)
    fs = rng.uniform(1.0, 1.2)
    f0b = rng.uniform(120.0, 260.0)
    starts: list[float] = []
    f0 = np.zeros(n)
    env = np.zeros(n)
    t = dsp.onset(rng)
    while t < dur:
        for _ in range(int(rng.integers(3, 7))):
            starts.append(t)
            t += rng.uniform(0.2, 0.35)
        d = rng.uniform(0.3, 0.7)
        seg, x = dsp.segment(n, sr, t, d)
        if x.size:
            f0[seg] = rng.uniform(700.0, 1300.0) * (1 + 0.2 * x)
            env[seg] = np.sin(np.pi * x) ** 0.5 * 0.6
        t += d + rng.uniform(0.1, 0.4)
    out = _coughs(rng, n, sr, starts, 1.0, fs, f0b)
    if env.any():
        stridor = VoiceQuality(breath=0.7, tilt_hz=2000.0, jitter=0.02)
        w = voice(rng, sr, f0, env, dsp.vowel("i", fs * 1.1), stridor)
        out += 0.5 * dsp.unit_or_zero(w) * np.sqrt(np.mean(env > 0))
    return out


def light_cough(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """A light cough or throat clearing: one or two soft coughs."""
    n = dsp.ns(sr, dur)
    t0 = dsp.onset(rng)
    starts = [t0] + ([t0 + rng.uniform(0.25, 0.4)] if rng.random() < 0.5 else [])
    return _coughs(
        rng, n, sr, starts, rng.uniform(0.3, 0.6), rng.uniform(1.0, 1.2), rng.uniform(110.0, 240.0)
    )


def snore(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Snoring: inhalations with soft-palate flutter (20-60 Hz pulses), quiet exhalations."""
    n = dsp.ns(sr, dur)
    f0 = np.zeros(n)
    env = np.zeros(n)
    breath = np.zeros(n)
    t = dsp.onset(rng)
    flutter = rng.uniform(20.0, 60.0)
    while t < dur:
        d = rng.uniform(0.8, 1.5)
        seg, x = dsp.segment(n, sr, t, d)
        if x.size:
            f0[seg] = flutter * (1 + 0.1 * x)
            env[seg] = np.sin(np.pi * x) ** 0.8
        t += d
        e = rng.uniform(1.2, 2.5)
        dsp.add(breath, 0.15 * np.hanning(max(2, int(e * sr))), int(t * sr))
        t += e + rng.uniform(0.1, 0.5)
    flutter_voice = VoiceQuality(breath=0.5, tilt_hz=200.0, jitter=0.05, shimmer=0.2)
    v = voice(rng, sr, f0, env, dsp.vowel("uh", 0.9), flutter_voice)
    b = dsp.bp(rng.standard_normal(n), sr, 300.0, 2500.0)
    return dsp.unit_or_zero(v) + breath * b / (np.std(b) + 1e-12)  # exhalations ~17 dB down
