"""Music: a strummed chord progression and a broken (out-of-tune, buzzing) instrument, from
modal string partials. Each function is a :data:`~chimein.scenes.events.registry.Synth`.
"""

from __future__ import annotations

import numpy as np

import chimein.scenes.events.dsp as dsp


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
        out += dsp.modal(n, sr, t0, fk, decay / k**0.6, 1.0 / k**1.2, 0.002)
    return out


_PROGRESSIONS = ([0, 7, 9, 5], [0, 5, 7, 0], [9, 5, 0, 7], [0, 9, 5, 7])
_MAJOR = np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16])


def music(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """Music: synth pad chords (I-V-vi-IV style), a plucked melody and a bass line, in tune."""
    n = dsp.ns(sr, dur)
    root = rng.uniform(110.0, 196.0)
    bpm = rng.uniform(80.0, 130.0)
    beat = 60.0 / bpm
    prog = _PROGRESSIONS[int(rng.integers(len(_PROGRESSIONS)))]
    out = np.zeros(n)
    pad_amps = dsp.saw_amps(8, 1.3)
    t, ci = 0.0, 0
    while t < dur:
        deg = prog[ci % len(prog)]
        minor = deg == 9
        chord = [deg, deg + (3 if minor else 4), deg + 7]
        seg = dsp.ramp_env(n, sr, [(t, 4 * beat, 1.0)], 0.08)
        i0, i1 = int(t * sr), min(n, int((t + 4 * beat) * sr) + 1)
        if i0 < n:
            pad = np.zeros(i1 - i0)
            for s in chord:
                pad += dsp.harmonics(float(dsp.semitones(root * 2, s)), sr, i1 - i0, pad_amps)
            bass = _note_strings(i1 - i0, sr, 0.0, float(dsp.semitones(root / 2, deg)), [0.0], 0.8)
            out[i0:i1] += seg[i0:i1] * 0.25 * pad + 0.6 * bass
        t += 4 * beat
        ci += 1
    t = 0.0
    while t < dur:
        s = float(_MAJOR[int(rng.integers(len(_MAJOR)))])
        out += 0.5 * dsp.modal(
            n,
            sr,
            t,
            dsp.semitones(root * 4, s) * np.array([1.0, 2.0, 3.0]),
            [0.3, 0.15, 0.08],
            [1.0, 0.4, 0.2],
            0.002,
        )
        t += beat * float(rng.choice([0.5, 0.5, 1.0, 1.5]))
    return dsp.lp(out, sr, 5000.0)


def broken_instrument(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    """A detuned / broken piano: strings 20-60 cents apart (sour beating), off-pitch notes,
    a buzzing string and dead (thunking) keys."""
    n = dsp.ns(sr, dur)
    root = rng.uniform(200.0, 350.0)
    beat = 60.0 / rng.uniform(70.0, 120.0)
    out = np.zeros(n)
    t = dsp.onset(rng)
    while t < dur:
        s = float(_MAJOR[int(rng.integers(len(_MAJOR)))])
        off = rng.uniform(-80.0, 80.0) if rng.random() < 0.5 else rng.uniform(-25.0, 25.0)
        f = float(dsp.semitones(root, s)) * 2 ** (off / 1200)
        r = rng.random()
        if r < 0.15:  # dead key: a thunk, no tone
            out += dsp.modal(n, sr, t, [rng.uniform(80, 200), 450.0], [0.03, 0.015], [1.0, 0.4])
            out += 0.3 * dsp.burst(rng, n, sr, t, 0.01, 200.0, 2000.0)
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
