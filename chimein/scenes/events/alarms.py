"""Alarms, beeps and chimes: smoke and CO alarms, appliance end-of-cycle signals, kettles,
doorbells, phones, seat-belt chimes, error beeps and patient-monitor tones.

Additive and square-wave tones gated by the standard temporal patterns (ISO 8201 T3/T4,
IEC 60601-1-8). Each function is a :data:`~chimein.scenes.events.registry.Synth`.
"""

from __future__ import annotations

import numpy as np

import chimein.scenes.events.dsp as dsp
from chimein.scenes.noise import smooth_random


def smoke_alarm(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """ISO 8201 / NFPA 72 T3: three 0.5 s beeps, 0.5 s apart, then 1.5 s pause; piezo ~3.1 kHz."""
    n = dsp.ns(sr, dur)
    f = rng.uniform(2950.0, 3250.0)
    on, off, pause = (0.5 * (1 + rng.uniform(-0.03, 0.03)) for _ in range(3))
    pause *= 3.0
    segs, t = [], dsp.onset(rng)
    while t < dur:
        for i in range(3):
            segs.append((t, on, 1.0))
            t += on + (off if i < 2 else pause)
    env = dsp.ramp_env(n, sr, segs, 0.003)
    tone = dsp.harmonics(
        f * (1 + 0.002 * smooth_random(n, sr, rng, 3.0)),
        sr,
        n,
        [1.0, rng.uniform(0.05, 0.2), rng.uniform(0.1, 0.3)],
    )
    return env * tone


def co_alarm(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """ISO 8201 T4 (CO alarms): four 0.1 s beeps 0.1 s apart, then 5 s pause; ~3.4 kHz."""
    n = dsp.ns(sr, dur)
    f = rng.uniform(3300.0, 3500.0)
    on = 0.1 * (1 + rng.uniform(-0.05, 0.05))
    segs, t = [], dsp.onset(rng)
    while t < dur:
        for _ in range(4):
            segs.append((t, on, 1.0))
            t += 2 * on
        t += 5.0 * (1 + rng.uniform(-0.03, 0.03)) - on
    env = dsp.ramp_env(n, sr, segs, 0.003)
    return env * dsp.harmonics(f, sr, n, [1.0, 0.1, rng.uniform(0.1, 0.3)])


def _beep_pattern(
    rng: np.random.Generator,
    sr: int,
    dur: float,
    f: float,
    segs: list[tuple[float, float, float]],
    amps: list[float] | np.ndarray,
    ramp_s: float = 0.004,
) -> np.ndarray:
    n = dsp.ns(sr, dur)
    return dsp.ramp_env(n, sr, segs, ramp_s) * dsp.harmonics(
        f, sr, n, amps, rng.uniform(0, 2 * np.pi)
    )


def microwave_done(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Three to five piezo beeps (~2 kHz), sometimes a reminder group a few seconds later."""
    f = rng.uniform(1800.0, 2700.0)
    k = int(rng.integers(3, 6))
    on, off = rng.uniform(0.25, 0.6), rng.uniform(0.15, 0.4)
    t0 = dsp.onset(rng)
    segs = [(t0 + i * (on + off), on, 1.0) for i in range(k)]
    if rng.random() < 0.5:
        t1 = t0 + k * (on + off) + rng.uniform(1.5, 3.0)
        segs += [(t1 + i * (on + off), on, 1.0) for i in range(k)]
    return _beep_pattern(rng, sr, dur, f, segs, dsp.square_amps(9, rng.uniform(1.3, 2.0)))


def oven_done(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Oven timer: a group of short beeps repeated every second or two, or slow long beeps."""
    f = rng.uniform(1000.0, 2400.0)
    segs, t = [], dsp.onset(rng)
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


def washer_done(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """End-of-cycle: a short piezo melody (pentatonic), or three long beeps."""
    n = dsp.ns(sr, dur)
    out = np.zeros(n)
    if rng.random() < 0.6:
        base = rng.uniform(900.0, 1500.0)
        scale = np.array([0, 2, 4, 7, 9, 12, 14, 16])
        notes = rng.choice(scale, size=int(rng.integers(5, 10)))
        notes[-1] = scale[int(rng.integers(5, 8))]  # end high: a "finished" flourish
        nd = rng.uniform(0.14, 0.3)
        t = dsp.onset(rng)
        reps = 2 if rng.random() < 0.5 else 1
        for _ in range(reps):
            for s in notes:
                env = dsp.ramp_env(n, sr, [(t, nd * 0.9, 1.0)], 0.005)
                i0, i1 = int(t * sr), min(n, int((t + nd) * sr) + 1)
                if i0 < n:
                    dec = np.ones(n)
                    dec[i0:i1] = np.exp(-np.arange(i1 - i0) / sr / (nd * 0.8))
                    out += (
                        env
                        * dec
                        * dsp.harmonics(dsp.semitones(base, s), sr, n, dsp.square_amps(7, 1.6))
                    )
                t += nd
            t += rng.uniform(0.8, 1.5)
        return out
    f = rng.uniform(1500.0, 2600.0)
    on, off = rng.uniform(0.7, 1.2), rng.uniform(0.5, 1.0)
    t0 = dsp.onset(rng)
    return _beep_pattern(
        rng, sr, dur, f, [(t0 + i * (on + off), on, 1.0) for i in range(3)], dsp.square_amps(7, 1.8)
    )


def dryer_done(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Dryer: an electromechanical buzzer (harsh 120-300 Hz buzz) or a descending chime."""
    n = dsp.ns(sr, dur)
    if rng.random() < 0.6:
        f = rng.uniform(120.0, 300.0)
        on, off = rng.uniform(1.0, 2.5), rng.uniform(0.5, 1.5)
        t0 = dsp.onset(rng)
        segs = [(t0, on, 1.0), (t0 + on + off, on * rng.uniform(0.6, 1.0), 1.0)]
        buzz = dsp.harmonics(f, sr, n, dsp.saw_amps(40, 0.6))
        buzz = np.tanh(2.0 * buzz / (np.std(buzz) + 1e-9))  # rattling armature: clipped
        buzz = dsp.bp(buzz, sr, 200.0, 3500.0)
        return dsp.ramp_env(n, sr, segs, 0.01) * buzz
    out = np.zeros(n)
    base = rng.uniform(700.0, 1200.0)
    t = dsp.onset(rng)
    while t < dur:
        for s in (7, 4, 0):
            out += dsp.bell(n, sr, t, float(dsp.semitones(base, s)), rng.uniform(0.4, 0.8), rng)
            t += rng.uniform(0.3, 0.45)
        t += rng.uniform(1.0, 2.0)
    return out


def kettle_whistle(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Whistling kettle: a breathy whistle rising from ~1.5 to ~2.8 kHz over rolling boil."""
    n = dsp.ns(sr, dur)
    t = np.arange(n) / sr
    fa, fb = rng.uniform(1300.0, 2000.0), rng.uniform(2100.0, 3000.0)
    rise = rng.uniform(0.3, 1.2)
    f = fb - (fb - fa) * np.exp(-t / rise)
    f = f * (1 + 0.006 * smooth_random(n, sr, rng, 7.0))
    amp = (1 - np.exp(-t / (0.5 * rise))) * (1 + 0.15 * smooth_random(n, sr, rng, 12.0))
    whistle = dsp.harmonics(f, sr, n, [1.0, 0.08])
    if rng.random() < 0.4:  # two-chamber whistle: a second tone beating against the first
        whistle += rng.uniform(0.4, 0.8) * dsp.harmonics(f * rng.uniform(1.03, 1.09), sr, n, [1.0])
    hiss = dsp.bp(rng.standard_normal(n), sr, 0.8 * fa, min(1.2 * fb, 0.45 * sr))
    hiss /= np.std(hiss) + 1e-12
    boil = dsp.lp(dsp.sparse_impulses(rng, n, sr, 80.0), sr, 900.0)
    boil /= np.std(boil) + 1e-12
    return amp * (whistle + rng.uniform(0.1, 0.3) * hiss) + 0.08 * boil


def pressure_cooker(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Pressure cooker venting: loud rattling jet hiss with a whistle, in bursts."""
    n = dsp.ns(sr, dur)
    t = np.arange(n) / sr
    hiss = dsp.bp(rng.standard_normal(n), sr, 1500.0, 7000.0, order=3)
    hiss /= np.std(hiss) + 1e-12
    rattle = 1.0 + 0.6 * np.sign(
        np.sin(2 * np.pi * rng.uniform(6.0, 14.0) * t + 2.0 * smooth_random(n, sr, rng, 2.0))
    )
    f = rng.uniform(2200.0, 3500.0)
    whistle = dsp.harmonics(f * (1 + 0.01 * smooth_random(n, sr, rng, 5.0)), sr, n, [1.0])
    segs, s = [], dsp.onset(rng)
    while s < dur:
        d = rng.uniform(1.5, 4.0)
        segs.append((s, d, 1.0))
        s += d + rng.uniform(0.3, 1.0)
    env = dsp.ramp_env(n, sr, segs, 0.08)
    return env * (rattle * hiss + rng.uniform(0.3, 0.8) * whistle)


def toaster_pop(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Toaster: latch click, spring boing, toast rattle, sometimes a bell."""
    n = dsp.ns(sr, dur)
    t0 = dsp.onset(rng)
    out = dsp.burst(rng, n, sr, t0, 0.004, 2000.0, 8000.0, 1.0)
    out += 0.6 * dsp.modal(
        n,
        sr,
        t0 + 0.003,
        rng.uniform(250.0, 600.0) * np.array([1.0, 2.7, 5.1]),
        [0.12, 0.05, 0.03],
        [1.0, 0.5, 0.3],
    )
    out += 0.4 * dsp.burst(rng, n, sr, t0 + rng.uniform(0.05, 0.12), 0.03, 300.0, 3000.0)
    out += 0.3 * dsp.burst(rng, n, sr, t0 + rng.uniform(0.15, 0.3), 0.02, 300.0, 3000.0)
    if rng.random() < 0.5:
        out += 0.5 * dsp.bell(
            n, sr, t0 + rng.uniform(0.05, 0.2), rng.uniform(1800.0, 2600.0), 0.6, rng
        )
    return out


def doorbell(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Ding-dong (major third down), or a four-note Westminster chime; maybe rung twice."""
    n = dsp.ns(sr, dur)
    out = np.zeros(n)
    base = rng.uniform(500.0, 800.0)
    seq = [4, 0] if rng.random() < 0.65 else [4, 0, 2, -5]
    step = rng.uniform(0.45, 0.8)
    decay = rng.uniform(0.6, 1.4)
    ratios = (1.0, 3.98, 9.1) if rng.random() < 0.5 else (1.0, 2.0, 3.0, 4.2)
    t = dsp.onset(rng)
    for _rep in range(2 if rng.random() < 0.5 else 1):
        for s in seq:
            out += dsp.bell(n, sr, t, float(dsp.semitones(base, s)), decay, rng, ratios, 0.35)
            t += step
        t += rng.uniform(1.0, 2.0)
    return out


def phone_ring(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Telephone: mechanical bell (20 Hz strikes), electronic trill, or a marimba ringtone."""
    n = dsp.ns(sr, dur)
    t = np.arange(n) / sr
    kind = int(rng.integers(3))
    t0 = dsp.onset(rng)
    if kind == 2:  # marimba ringtone
        out = np.zeros(n)
        base = rng.uniform(400.0, 700.0)
        riff = rng.choice([0, 4, 7, 9, 12, 16], size=int(rng.integers(4, 8)))
        nd = rng.uniform(0.12, 0.2)
        s = t0
        while s < dur:
            for st in riff:
                f = float(dsp.semitones(base, st))
                out += dsp.modal(
                    n, sr, s, [f, 3.93 * f, 9.2 * f], [0.25, 0.06, 0.02], [1.0, 0.3, 0.1]
                )
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
    gate = dsp.ramp_env(n, sr, segs, 0.01)
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
    return gate * dsp.harmonics(f, sr, n, dsp.square_amps(7, 1.5))


def seatbelt(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Seat-belt reminder: a chime or a short beep repeated about once a second."""
    n = dsp.ns(sr, dur)
    out = np.zeros(n)
    period = rng.uniform(0.6, 1.2)
    f = rng.uniform(700.0, 1500.0)
    chime = rng.random() < 0.6
    t = dsp.onset(rng)
    while t < dur:
        if chime:
            out += dsp.bell(n, sr, t, f, 0.35, rng, (1.0, 2.0, 3.01), 0.3)
        else:
            out += dsp.ramp_env(n, sr, [(t, 0.12, 1.0)]) * dsp.harmonics(f * 1.5, sr, n, [1.0, 0.2])
        t += period
    return out


def error_beep(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Error/incorrect beep: low square 'bah-bah', or a descending two-tone, repeated."""
    n = dsp.ns(sr, dur)
    out = np.zeros(n)
    f = rng.uniform(250.0, 600.0)
    descending = rng.random() < 0.4
    on, gap = rng.uniform(0.12, 0.3), rng.uniform(0.06, 0.12)
    t = dsp.onset(rng)
    while t < dur:
        k = int(rng.integers(2, 4))
        for i in range(k):
            fi = f * (0.75**i if descending else 1.0)
            out += dsp.ramp_env(n, sr, [(t, on, 1.0)]) * dsp.harmonics(
                fi, sr, n, dsp.square_amps(25, 1.0)
            )
            t += on + gap
        t += rng.uniform(0.6, 1.5)
    return out


def heart_rate_warning(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """IEC 60601-1-8 high-priority alarm: 10 pulses (3 + 2, pause, 3 + 2), f0 400-900 Hz with
    at least four harmonics, repeated every few seconds."""
    n = dsp.ns(sr, dur)
    f = rng.uniform(400.0, 900.0)
    pulse, space = rng.uniform(0.1, 0.18), rng.uniform(0.06, 0.1)
    groups = (3, 2, 3, 2)
    gaps = (space * 2.5, rng.uniform(0.35, 0.6), space * 2.5, 0.0)
    segs, t = [], dsp.onset(rng)
    while t < dur:
        for g, gp in zip(groups, gaps, strict=True):
            for _ in range(g):
                segs.append((t, pulse, 1.0))
                t += pulse + space
            t += gp
        t += rng.uniform(1.5, 3.0)
    amps = [1.0, 0.7, 0.5, 0.4, 0.3, 0.2]
    return dsp.ramp_env(n, sr, segs, 0.01) * dsp.harmonics(f, sr, n, amps)


def heart_rate_normal(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Patient monitor at rest: one short blip per heartbeat (55-100 bpm)."""
    n = dsp.ns(sr, dur)
    bpm = rng.uniform(55.0, 100.0)
    f = rng.uniform(800.0, 1300.0)
    segs, t = [], dsp.onset(rng)
    while t < dur:
        segs.append((t, rng.uniform(0.05, 0.08), 1.0))
        t += 60.0 / bpm * (1 + rng.uniform(-0.03, 0.03))
    return dsp.ramp_env(n, sr, segs, 0.005) * dsp.harmonics(f, sr, n, [1.0, 0.15])
