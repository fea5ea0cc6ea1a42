"""Nature and weather: thunder, explosions, fire, rain, birdsong and crickets, from filtered
noise, sparse impulses and chirps. Each function is a
:data:`~chimein.scenes.events.registry.Synth`.
"""

from __future__ import annotations

import numpy as np

import chimein.scenes.events.dsp as dsp
from chimein.scenes.noise import colored_noise, formant_filter, smooth_random


def thunder(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Thunder: a crack (near strikes) then a long rolling rumble of irregular swells."""
    n = dsp.ns(sr, dur)
    t = np.arange(n) / sr
    rumble = dsp.lp(colored_noise(n, sr, rng, 2.0), sr, rng.uniform(120.0, 300.0), order=3)
    rumble /= np.std(rumble) + 1e-12
    swells = np.zeros(n)
    for _ in range(int(rng.integers(3, 8))):
        c, w = rng.uniform(0.05, 0.7) * dur, rng.uniform(0.2, 0.8)
        swells += rng.uniform(0.4, 1.0) * np.exp(-0.5 * ((t - c) / w) ** 2)
    decay = np.exp(-t / rng.uniform(0.4, 0.8) / max(dur, 0.5))
    env = (swells + 0.3) * decay * (1 - np.exp(-t / 0.05))
    mid = dsp.bp(colored_noise(n, sr, rng, 1.0), sr, 200.0, 1200.0)
    out = env * (rumble + rng.uniform(0.1, 0.3) * mid / (np.std(mid) + 1e-12))
    if rng.random() < 0.6:
        out += rng.uniform(1.0, 3.0) * dsp.burst(rng, n, sr, dsp.onset(rng), 0.08, 300.0, 6000.0)
    return out


def explosion(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Explosion: a broadband blast, a deep decaying boom and falling debris."""
    n = dsp.ns(sr, dur)
    t = np.arange(n) / sr
    t0 = dsp.onset(rng)
    blast = dsp.burst(rng, n, sr, t0, 0.05, 100.0, 8000.0, 3.0)
    boom = dsp.lp(colored_noise(n, sr, rng, 2.0), sr, rng.uniform(100.0, 250.0), order=3)
    boom /= np.std(boom) + 1e-12
    boom *= np.exp(-np.maximum(t - t0, 0) / rng.uniform(0.4, 1.0)) * (t >= t0) * 2.0
    debris = np.zeros(n)
    for _ in range(int(rng.integers(5, 20))):
        debris += (
            rng.pareto(2.0)
            * 0.2
            * dsp.burst(rng, n, sr, t0 + rng.uniform(0.2, 0.9 * dur + 0.2), 0.01, 300.0, 5000.0)
        )
    return blast + boom + debris


def fire_crackling(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Fire: sharp pops and crackles over a low fluctuating roar."""
    n = dsp.ns(sr, dur)
    roar = dsp.lp(colored_noise(n, sr, rng, 1.5), sr, rng.uniform(250.0, 600.0))
    roar /= np.std(roar) + 1e-12
    roar *= 1 + 0.4 * smooth_random(n, sr, rng, 2.0)
    crackle = dsp.bp(
        dsp.sparse_impulses(rng, n, sr, rng.uniform(10.0, 40.0), 1.3), sr, 800.0, 8000.0
    )
    crackle /= np.std(crackle) + 1e-12
    out = 0.5 * roar + crackle
    for _ in range(int(rng.integers(1, 4) * max(1.0, dur / 3))):
        out += 3.0 * dsp.burst(rng, n, sr, rng.uniform(0.0, dur), 0.01, 500.0, 6000.0)
    return out


def rain(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Light rain: hundreds of drops per second (drop clicks through a few resonances) over hiss."""
    n = dsp.ns(sr, dur)
    hiss = dsp.hp(colored_noise(n, sr, rng, 1.0), sr, 500.0)
    hiss /= np.std(hiss) + 1e-12
    drops = np.zeros(n)
    for _ in range(4):
        imp = dsp.sparse_impulses(rng, n, sr, rng.uniform(50.0, 200.0), 2.0)
        f = rng.uniform(1000.0, min(5000.0, 0.4 * sr))
        drops += formant_filter(imp, sr, (f,), (rng.uniform(200.0, 600.0),))
    drops = dsp.hp(drops, sr, 400.0)
    drops /= np.std(drops) + 1e-12
    return hiss * (1 + 0.2 * smooth_random(n, sr, rng, 0.5)) + 0.8 * drops


def birdsong(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Birdsong: phrases of FM chirps and trills (2-7 kHz, clipped below Nyquist)."""
    n = dsp.ns(sr, dur)
    out = np.zeros(n)
    fmax = min(7000.0, 0.42 * sr)
    t = dsp.onset(rng)
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
            ch = np.hanning(m) * dsp.harmonics(fx, sr, m, [1.0, 0.1])
            dsp.add(out, ch, int(t * sr))
            t += d + rng.uniform(0.01, 0.08)
        t += rng.uniform(0.3, 1.5)
    return out


def crickets(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Crickets: a 3.5-5 kHz carrier pulsed at ~30 Hz in chirps of 3-5 pulses, 1-3 chirps/s."""
    n = dsp.ns(sr, dur)
    f = min(rng.uniform(3500.0, 5000.0), 0.42 * sr)
    prate = rng.uniform(25.0, 40.0)
    crate = rng.uniform(1.0, 3.0)
    segs, t = [], dsp.onset(rng)
    while t < dur:
        for i in range(int(rng.integers(3, 6))):
            segs.append((t + i / prate, 0.5 / prate, rng.uniform(0.7, 1.0)))
        t += 1.0 / crate * rng.uniform(0.9, 1.1)
    return dsp.ramp_env(n, sr, segs, 0.002) * dsp.harmonics(f, sr, n, [1.0, 0.05])
