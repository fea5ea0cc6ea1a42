"""Traffic and vehicle sounds: horns, sirens, car alarms, turn signals, crashes and passing
road traffic. Each function is a :data:`~chimein.scenes.events.registry.Synth`.
"""

from __future__ import annotations

import numpy as np

import chimein.scenes.events.dsp as dsp
from chimein.scenes.noise import colored_noise, formant_filter, smooth_random


def car_horn(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Car horn: two brassy diaphragm horns about a major third apart; 1-3 honks."""
    n = dsp.ns(sr, dur)
    f1 = rng.uniform(350.0, 480.0)
    f2 = f1 * rng.uniform(1.2, 1.3)
    tone = dsp.harmonics(f1, sr, n, dsp.saw_amps(30, 0.7)) + dsp.harmonics(
        f2, sr, n, dsp.saw_amps(30, 0.7)
    )
    tone = formant_filter(
        tone, sr, (rng.uniform(700, 1100), rng.uniform(1800, 2600), 3200.0), (200.0, 300.0, 400.0)
    )
    segs, t = [], dsp.onset(rng)
    for _ in range(int(rng.integers(1, 4))):
        d = rng.uniform(0.2, 1.2)
        segs.append((t, d, 1.0))
        t += d + rng.uniform(0.1, 0.3)
    return dsp.ramp_env(n, sr, segs, 0.015) * tone


def siren(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Emergency siren: wail, yelp or hi-lo, with an approaching or receding level."""
    n = dsp.ns(sr, dur)
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
    tone = dsp.harmonics(f, sr, n, dsp.square_amps(15, rng.uniform(1.0, 1.6)))
    gain = 10 ** (rng.uniform(-8.0, 8.0) * (t / max(dur, 1e-3) - 0.5) / 20)
    return gain * tone * (1 - np.exp(-t / 0.05))


def car_alarm(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Car alarm: cycles through yelp, chirps, hi-lo and wail patterns every 1-2 s."""
    n = dsp.ns(sr, dur)
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
    gate = dsp.lp(gate.astype(np.float64), sr, 300.0)
    return gate * dsp.harmonics(f, sr, n, dsp.square_amps(11, 1.3))


def turn_signal(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Indicator relay: tick-tock clicks, 1.3-1.8 cycles per second."""
    n = dsp.ns(sr, dur)
    out = np.zeros(n)
    rate = rng.uniform(1.3, 1.8)
    fa, fb = rng.uniform(1500.0, 3000.0), rng.uniform(800.0, 1600.0)
    t = dsp.onset(rng)
    while t < dur:
        out += dsp.modal(n, sr, t, [fa, 2.3 * fa], [0.008, 0.004], [1.0, 0.4])
        out += 0.7 * dsp.modal(n, sr, t + 0.5 / rate, [fb, 2.1 * fb], [0.01, 0.005], [1.0, 0.4])
        t += 1.0 / rate
    return out


def car_crash(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Car crash: tyre skid squeal, then a crunching impact with metal and breaking glass."""
    n = dsp.ns(sr, dur)
    t = np.arange(n) / sr
    skid = min(rng.uniform(0.3, 0.8), 0.6 * dur)
    fsq = (
        rng.uniform(700.0, 1800.0)
        * (1 - 0.1 * t / max(skid, 1e-3))
        * (1 + 0.02 * smooth_random(n, sr, rng, 20))
    )
    squeal = dsp.harmonics(fsq, sr, n, [1.0, 0.4, 0.2]) + 0.5 * dsp.bp(
        rng.standard_normal(n), sr, 800.0, 4000.0
    )
    out = squeal * dsp.ramp_env(n, sr, [(0.0, skid, 1.0)], 0.05)
    ti = skid
    out += 4.0 * dsp.burst(rng, n, sr, ti, 0.06, 60.0, 2000.0)
    out += 2.0 * dsp.modal(
        n, sr, ti, rng.uniform(50.0, 90.0) * np.array([1.0, 1.5]), [0.2, 0.1], [1.0, 0.5]
    )
    fm = rng.uniform(300.0, 700.0)
    out += 1.0 * dsp.modal(
        n,
        sr,
        ti,
        fm * np.array([1.0, 2.32, 4.25, 6.6, 9.1]),
        [0.5, 0.3, 0.2, 0.12, 0.08],
        [1.0, 0.8, 0.6, 0.4, 0.3],
    )
    out += 1.5 * dsp.glass_shards(rng, n, sr, ti + 0.01, int(rng.integers(20, 40)), 0.2)
    for _ in range(int(rng.integers(3, 8))):
        out += 0.5 * dsp.burst(rng, n, sr, ti + rng.uniform(0.1, 1.2), 0.02, 200.0, 5000.0)
    return out


def traffic(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Road traffic: distant rumble and cars passing by (engine harmonics with a Doppler drop,
    tyre noise)."""
    n = dsp.ns(sr, dur)
    t = np.arange(n) / sr
    bed = dsp.lp(colored_noise(n, sr, rng, 1.5), sr, 1200.0)
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
        eng = dsp.harmonics(fe, sr, n, dsp.saw_amps(12, 1.0))
        tyre = dsp.bp(rng.standard_normal(n), sr, 400.0, 2500.0)
        out += 1.5 * sw * (0.5 * eng / (np.std(eng) + 1e-12) + tyre / (np.std(tyre) + 1e-12))
    return out
