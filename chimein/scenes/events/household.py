"""Household sounds: impacts (breaking glass, falls, knocks), everyday activity (typing,
clocks, chopping, footsteps) and appliances (grinders, printers, blenders, hums,
hissing gas, arcing, frying, running water).

Modal synthesis and filtered noise bursts. Each function is a
:data:`~chimein.scenes.events.registry.Synth`.
"""

from __future__ import annotations

import numpy as np

import chimein.scenes.events.dsp as dsp
from chimein.scenes.noise import VoiceQuality, colored_noise, mains_hum, smooth_random, voice


def glass_break(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Breaking glass: a sharp crack, a dull thump, then dozens of ringing shards."""
    n = dsp.ns(sr, dur)
    t0 = dsp.onset(rng)
    out = 3.0 * dsp.burst(rng, n, sr, t0, 0.008, 1500.0, 10000.0)
    out += 1.0 * dsp.burst(rng, n, sr, t0, 0.03, 100.0, 900.0)
    out += 2.0 * dsp.glass_shards(
        rng, n, sr, t0, int(rng.integers(25, 60)), rng.uniform(0.08, 0.25)
    )
    for _ in range(int(rng.integers(2, 6))):  # pieces hitting the floor
        out += 0.5 * dsp.burst(rng, n, sr, t0 + rng.uniform(0.1, 0.6), 0.01, 1000.0, 8000.0)
    return out


def object_fall(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Something falls: a thud (book, box) or a metal clang, then bounces."""
    n = dsp.ns(sr, dur)
    out = np.zeros(n)
    metal = rng.random() < 0.35
    f0 = rng.uniform(70.0, 220.0)
    t, a, gap = dsp.onset(rng), 1.0, rng.uniform(0.08, 0.25)
    for _ in range(int(rng.integers(1, 5))):
        out += a * dsp.modal(
            n, sr, t, f0 * np.array([1.0, 1.6, 2.4]), [0.06, 0.04, 0.025], [1.0, 0.5, 0.3]
        )
        out += a * 0.6 * dsp.burst(rng, n, sr, t, 0.015, 200.0, 3000.0)
        if metal:
            fm = rng.uniform(600.0, 1500.0)
            out += (
                a
                * 0.4
                * dsp.modal(
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


def knock(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Knocking on a door: groups of 2-5 knuckle raps on a wooden panel."""
    n = dsp.ns(sr, dur)
    out = np.zeros(n)
    fp = rng.uniform(90.0, 220.0)
    rate = rng.uniform(4.0, 7.0)
    t = dsp.onset(rng)
    while t < dur:
        for _ in range(int(rng.integers(2, 6))):
            a = rng.uniform(0.7, 1.0)
            out += a * dsp.modal(
                n,
                sr,
                t,
                fp * np.array([1.0, 1.9, 3.1, 4.4]),
                [0.05, 0.035, 0.02, 0.012],
                [1.0, 0.7, 0.5, 0.3],
            )
            out += a * 0.5 * dsp.burst(rng, n, sr, t, 0.004, 600.0, 4000.0)
            t += 1.0 / rate * rng.uniform(0.9, 1.1)
        t += rng.uniform(0.8, 1.6)
    return out


def keyboard_typing(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Typing: key presses and releases in word-length bursts, 5-9 keys per second."""
    n = dsp.ns(sr, dur)
    out = np.zeros(n)
    rate = rng.uniform(5.0, 9.0)
    fres = rng.uniform(1500.0, 4000.0)
    t = dsp.onset(rng)
    while t < dur:
        space = rng.random() < 0.15
        a = rng.uniform(0.5, 1.0)
        lo = 300.0 if space else 0.6 * fres
        out += a * dsp.burst(rng, n, sr, t, 0.003, lo, 1.6 * fres)
        out += a * 0.4 * dsp.burst(rng, n, sr, t + rng.uniform(0.06, 0.12), 0.002, lo, 1.6 * fres)
        t += rng.exponential(1.0 / rate) + 0.04
        if rng.random() < 0.08:
            t += rng.uniform(0.3, 1.0)  # pause between words/thoughts
    return out


def clock_tick(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Mechanical clock: alternating tick and tock at 1 or 2 per second."""
    n = dsp.ns(sr, dur)
    out = np.zeros(n)
    period = 1.0 if rng.random() < 0.6 else 0.5
    fa = rng.uniform(2000.0, 4500.0)
    t, i = dsp.onset(rng), 0
    while t < dur:
        f = fa * (1.0 if i % 2 == 0 else rng.uniform(0.7, 0.85))
        out += dsp.modal(
            n, sr, t, [f, 1.7 * f, 2.9 * f], [0.006, 0.004, 0.003], [1.0, 0.6, 0.3], 0.0001
        )
        t += period * (1 + rng.uniform(-0.005, 0.005))
        i += 1
    return out


def chopping(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Knife chopping on a board: regular thuds with a crisp cut, 2-5 per second."""
    n = dsp.ns(sr, dur)
    out = np.zeros(n)
    rate = rng.uniform(2.0, 5.0)
    fb = rng.uniform(150.0, 400.0)
    t = dsp.onset(rng)
    while t < dur:
        a = rng.uniform(0.6, 1.0)
        out += a * dsp.modal(
            n, sr, t, fb * np.array([1.0, 2.2, 3.7]), [0.03, 0.02, 0.01], [1.0, 0.6, 0.3]
        )
        out += a * 0.7 * dsp.burst(rng, n, sr, t, 0.005, 2000.0, 8000.0)
        t += 1.0 / rate * rng.uniform(0.85, 1.15)
    return out


def footsteps(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Walking: heel and toe impacts, 1.6-2.2 steps per second, on a hard or carpeted floor."""
    n = dsp.ns(sr, dur)
    out = np.zeros(n)
    rate = rng.uniform(1.6, 2.2)
    hard = rng.random() < 0.5
    fl = rng.uniform(60.0, 150.0)
    t, i = dsp.onset(rng), 0
    while t < dur:
        a = rng.uniform(0.7, 1.0) * (1.0 if i % 2 == 0 else rng.uniform(0.75, 0.95))
        for dt, g in ((0.0, 1.0), (rng.uniform(0.03, 0.07), 0.5)):
            out += a * g * dsp.modal(n, sr, t + dt, [fl, 2.3 * fl], [0.04, 0.02], [1.0, 0.4])
            hi = 6000.0 if hard else 1500.0
            out += a * g * (0.8 if hard else 0.3) * dsp.burst(rng, n, sr, t + dt, 0.006, 300.0, hi)
        t += 1.0 / rate * rng.uniform(0.95, 1.05)
        i += 1
    return out


def fall_down(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """A person falls: clothes rustle, a heavy body thud, a limb, often a groan ('oof')."""
    n = dsp.ns(sr, dur)
    out = 0.2 * dsp.burst(rng, n, sr, 0.0, 0.08, 500.0, 5000.0, attack_s=0.03)
    t = rng.uniform(0.08, 0.25)
    fb = rng.uniform(40.0, 90.0)
    out += 2.0 * dsp.modal(
        n,
        sr,
        t,
        fb * np.array([1.0, 1.7, 2.6, 3.9]),
        [0.15, 0.1, 0.06, 0.04],
        [1.0, 0.8, 0.5, 0.3],
        0.002,
    )
    out += 0.8 * dsp.burst(rng, n, sr, t, 0.03, 100.0, 2000.0)
    t2 = t + rng.uniform(0.08, 0.2)
    out += 0.8 * dsp.modal(n, sr, t2, [2 * fb, 3.3 * fb], [0.06, 0.03], [1.0, 0.5])
    out += 0.3 * dsp.burst(rng, n, sr, t2, 0.01, 300.0, 4000.0)
    if rng.random() < 0.7:
        tv = t + rng.uniform(0.25, 0.5)
        d = rng.uniform(0.3, 0.6)
        f0b = rng.uniform(110.0, 240.0)
        f0 = dsp.contour(n, sr, [tv, tv + d], [f0b * 1.3, f0b * 0.8])
        env = dsp.ramp_env(n, sr, [(tv, d, 1.0)], 0.06)
        f0 = np.where(env > 0, f0, 0.0)
        out += 0.6 * dsp.unit_or_zero(
            voice(rng, sr, f0, env, dsp.vowel("o", rng.uniform(1.0, 1.2)), VoiceQuality(breath=0.3))
        )
    return out


def appliance_grinding(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """A broken appliance: labouring motor, rhythmic grinding knocks and a bearing squeal."""
    n = dsp.ns(sr, dur)
    t = np.arange(n) / sr
    rot = rng.uniform(6.0, 15.0) * (1 + 0.1 * smooth_random(n, sr, rng, 0.7))
    phase = np.cumsum(rot) / sr
    motor = dsp.harmonics(
        rng.uniform(90.0, 200.0) * (1 + 0.05 * smooth_random(n, sr, rng, 1.0)),
        sr,
        n,
        dsp.saw_amps(12, 1.2),
    )
    scrape = dsp.bp(rng.standard_normal(n), sr, 400.0, 4000.0)
    scrape /= np.std(scrape) + 1e-12
    grind = scrape * (0.5 + 0.5 * np.sin(2 * np.pi * phase)) ** 4
    knocks = np.zeros(n)
    cyc = np.flatnonzero(np.diff(np.floor(phase)) > 0)
    for i in cyc:
        if rng.random() < 0.6:
            knocks += rng.uniform(0.5, 1.0) * dsp.modal(
                n, sr, i / sr, [rng.uniform(150, 400), 900.0], [0.03, 0.01], [1.0, 0.5]
            )
    fsq = rng.uniform(1500.0, 3000.0) * (1 + 0.03 * smooth_random(n, sr, rng, 4.0))
    squeal = dsp.harmonics(fsq, sr, n, [1.0, 0.3]) * np.clip(
        smooth_random(n, sr, rng, 1.5), 0, None
    )
    return (0.5 * motor + grind + 1.5 * knocks + 0.4 * squeal) * (1 - np.exp(-t / 0.1))


def printer(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Inkjet printer: carriage passes (stepper whine) separated by paper-feed clunks."""
    n = dsp.ns(sr, dur)
    out = np.zeros(n)
    fs = rng.uniform(300.0, 900.0)
    t = dsp.onset(rng)
    while t < dur:
        d = rng.uniform(0.4, 1.0)
        env = dsp.ramp_env(n, sr, [(t, d, 1.0)], 0.05)
        whine = dsp.harmonics(fs * rng.uniform(0.95, 1.05), sr, n, [1.0, 0.5, 0.3, 0.2])
        noise = dsp.bp(rng.standard_normal(n), sr, 500.0, 3000.0)
        out += env * (whine + 0.5 * noise / (np.std(noise) + 1e-12))
        t += d + rng.uniform(0.05, 0.2)
        out += 0.8 * dsp.burst(rng, n, sr, t, 0.02, 100.0, 1500.0)
        out += 0.4 * dsp.modal(n, sr, t, [rng.uniform(200, 500)], [0.04], [1.0])
        t += rng.uniform(0.1, 0.3)
    return out


def blender(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Blender: a loud universal motor (whine plus harmonics) and churning liquid, speed changes."""
    n = dsp.ns(sr, dur)
    t = np.arange(n) / sr
    speed = 1.0 + 0.15 * np.tanh(2 * smooth_random(n, sr, rng, 0.8))
    f = rng.uniform(250.0, 450.0) * speed
    motor = dsp.harmonics(f, sr, n, dsp.saw_amps(16, 0.9))
    churn = dsp.bp(rng.standard_normal(n), sr, 400.0, 6000.0)
    churn /= np.std(churn) + 1e-12
    churn *= 1 + 0.5 * smooth_random(n, sr, rng, 6.0)
    return (motor / (np.std(motor) + 1e-12) + 0.8 * churn) * (1 - np.exp(-t / 0.15))


def fridge_hum(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Refrigerator: compressor hum (twice the mains frequency) over low broadband rumble."""
    n = dsp.ns(sr, dur)
    hum = mains_hum(n, sr, rng, n_harmonics=10, buzz=rng.uniform(0.05, 0.3))
    rumble = dsp.lp(colored_noise(n, sr, rng, 1.0), sr, rng.uniform(150.0, 400.0))
    rumble /= np.std(rumble) + 1e-12
    fan = dsp.bp(rng.standard_normal(n), sr, 300.0, 1500.0)
    fan /= np.std(fan) + 1e-12
    return hum + 0.6 * rumble + rng.uniform(0.05, 0.2) * fan


def microwave_running(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Microwave cooking: buzzing transformer hum, cooling fan and turntable, no beep."""
    n = dsp.ns(sr, dur)
    t = np.arange(n) / sr
    hum = mains_hum(n, sr, rng, n_harmonics=16, buzz=rng.uniform(0.5, 0.9))
    fan = dsp.lp(colored_noise(n, sr, rng, 1.0), sr, rng.uniform(600.0, 1500.0))
    fan /= np.std(fan) + 1e-12
    blade = dsp.harmonics(rng.uniform(40.0, 90.0), sr, n, [1.0, 0.5, 0.3])
    turn = 1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.08, 0.2) * t + rng.uniform(0, 6.3))
    return turn * (hum + 0.7 * fan + 0.2 * blade)


def gas_leak(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Gas escaping a fitting: a steady high jet hiss with a faint whistle and flutter."""
    n = dsp.ns(sr, dur)
    t = np.arange(n) / sr
    hiss = dsp.bp(rng.standard_normal(n), sr, rng.uniform(1500.0, 3000.0), 9000.0, order=3)
    hiss /= np.std(hiss) + 1e-12
    tone = dsp.harmonics(rng.uniform(3000.0, 6000.0), sr, n, [1.0])
    flutter = 1 + 0.08 * smooth_random(n, sr, rng, 15.0)
    return flutter * (hiss + rng.uniform(0.05, 0.2) * tone) * (1 - np.exp(-t / 0.05))


def electrical_arcing(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Short circuit / arcing: intermittent harsh 100/120 Hz buzz with sharp snaps and crackle."""
    n = dsp.ns(sr, dur)
    buzz = mains_hum(n, sr, rng, n_harmonics=30, buzz=1.0)
    buzz = np.tanh(3 * buzz)
    segs, t = [], dsp.onset(rng)
    while t < dur:
        d = rng.uniform(0.1, 0.8)
        segs.append((t, d, rng.uniform(0.5, 1.0)))
        t += d + rng.uniform(0.05, 0.6)
    env = dsp.ramp_env(n, sr, segs, 0.003)
    crack = dsp.hp(dsp.sparse_impulses(rng, n, sr, 60.0, 1.5), sr, 1500.0) * env
    crack /= np.std(crack[env > 0]) + 1e-12 if (env > 0).any() else 1.0
    out = env * buzz + 0.6 * crack
    for s, _d, _a in segs:
        out += 2.0 * dsp.burst(rng, n, sr, s, 0.006, 1000.0, 9000.0)
    return out


def frying(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Frying: dense sizzle and popping oil."""
    n = dsp.ns(sr, dur)
    pops = dsp.sparse_impulses(rng, n, sr, rng.uniform(40.0, 150.0), 1.8)
    pops = dsp.bp(pops, sr, 1000.0, 8000.0)
    pops /= np.std(pops) + 1e-12
    sizzle = dsp.hp(rng.standard_normal(n), sr, rng.uniform(2000.0, 4000.0))
    sizzle /= np.std(sizzle) + 1e-12
    return 0.6 * pops + sizzle * (1 + 0.3 * smooth_random(n, sr, rng, 3.0))


def water_running(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Running tap: turbulent noise with many small bubbles (rising Minnaert chirps)."""
    n = dsp.ns(sr, dur)
    noise = dsp.bp(colored_noise(n, sr, rng, 0.5), sr, 200.0, 5000.0)
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
        dsp.add(out, b, int(rng.integers(0, n)))
    return out
