"""A cheap, deterministic stand-in for the assistant's own voice, heard back as echo.

When ``echo=True`` the environment adds this signal to every microphone while the assistant
speaks, so a policy must learn that its own voice is not a user turn (the self-interruption
problem of full-duplex systems). It is voice-like where that matters for timing: a harmonic
source with a gliding pitch (f0 around 165 Hz), two formant-like spectral peaks and a
syllabic amplitude envelope (about 4 syllables per second, dips between words), with no randomness at all, so the
same ``(n_samples, sample_rate, level_db)`` always gives the same float32 samples.

Examples
--------
>>> v = assistant_voice(16000, 16000, level_db=-30.0)
>>> v.shape, v.dtype
((16000,), dtype('float32'))
>>> round(float(20 * np.log10(np.sqrt(np.mean(v.astype(np.float64) ** 2)))), 1)
-30.0
"""

from __future__ import annotations

import numpy as np

from chimein.errors import SpecError


def assistant_voice(n_samples: int, sample_rate: int = 16000, level_db: float = -30.0) -> np.ndarray:
    """The assistant's voice for ``n_samples`` samples at RMS ``level_db`` dBFS (float32, mono).

    Parameters
    ----------
    n_samples
        Length in samples (> 0).
    sample_rate
        Rate in Hz.
    level_db
        RMS level in dBFS, in [-100, 0].
    """
    if n_samples <= 0:
        raise SpecError(f"echo: need a positive number of samples, got {n_samples}")
    if not -100.0 <= level_db <= 0.0:
        raise SpecError(f"echo: field 'echo_db': must be in [-100, 0] dBFS, got {level_db}")
    t = np.arange(n_samples, dtype=np.float64) / sample_rate
    # gliding pitch: declination plus a slow intonation wave
    f0 = 165.0 + 25.0 * np.sin(2 * np.pi * 0.7 * t) - 10.0 * (t % 2.0)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    nyq = sample_rate / 2
    sig = np.zeros(n_samples)
    for h in range(1, 30):
        fh = h * 165.0
        if fh > nyq * 0.9:
            break
        # two formant-like peaks (about 600 and 1700 Hz) on a -6 dB/octave source slope
        gain = (1.0 / h) * (1.0 + 3.0 * np.exp(-((fh - 600.0) / 250.0) ** 2)
                            + 2.0 * np.exp(-((fh - 1700.0) / 400.0) ** 2))
        sig += gain * np.sin(h * phase)
    # syllables: ~4 Hz raised-sine envelope; word gaps (-20 dB, the room's reverberant tail
    # keeps them from being silent) about every 0.9 s
    syl = 0.25 + 0.75 * (0.5 + 0.5 * np.sin(2 * np.pi * 4.1 * t))
    words = np.where(np.sin(2 * np.pi * 1.1 * t + 0.4) > -0.85, 1.0, 0.1)
    sig *= syl * words
    # 20 ms fades so the onset and offset do not click
    fade = min(n_samples // 2, int(0.02 * sample_rate))
    if fade > 0:
        ramp = np.linspace(0.0, 1.0, fade)
        sig[:fade] *= ramp
        sig[-fade:] *= ramp[::-1]
    rms = float(np.sqrt(np.mean(sig**2)))
    if rms > 0:
        sig *= 10.0 ** (level_db / 20.0) / rms
    return sig.astype(np.float32)
