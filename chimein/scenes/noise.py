"""Background noise and the voice-like signal blocks shared with :mod:`chimein.scenes.events`.

Background noise sets the SNR of a scene: :func:`make_noise` returns one of
:data:`NOISE_KINDS` as unit-RMS float32 mono, and :func:`snr_scale` gives the gain that puts it
at a target SNR below a signal.

The module also holds the source-filter voice model used by babble noise and by voice-like
sound events (baby cry, scream, laughter, cough, ...): :func:`glottal_pulses` (a band-limited
pulse train following an f0 contour, with jitter, shimmer and period doubling),
:func:`formant_filter` (a cascade of time-varying Klatt resonators) and :func:`voice` (the two
combined with aspiration noise and an amplitude envelope; :class:`VoiceQuality` sets its
timbre). Babble is built from these, so it needs no speech synthesiser.

Everything random flows from the ``np.random.Generator`` passed in: the same generator state
gives bit-identical output, in any process.

Examples
--------
>>> import numpy as np
>>> from chimein.scenes.noise import make_noise
>>> x = make_noise("pink", 16000, 16000, np.random.default_rng(0))
>>> x.dtype, x.shape, round(float(np.sqrt(np.mean(x.astype(np.float64) ** 2))), 3)
(dtype('float32'), (16000,), 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft
from scipy import signal

from chimein.errors import SpecError

#: The background noise kinds :func:`make_noise` knows.
NOISE_KINDS: tuple[str, ...] = ("white", "pink", "brown", "hvac", "babble")

#: Adult male formant frequencies F1-F3 (Hz) from Peterson & Barney (1952), with a typical F4.
#: Scale by ~1.15 for adult women and ~1.5-1.8 for infants.
VOWELS: dict[str, tuple[float, float, float, float]] = {
    "i": (270.0, 2290.0, 3010.0, 3700.0),
    "ih": (390.0, 1990.0, 2550.0, 3600.0),
    "e": (530.0, 1840.0, 2480.0, 3500.0),
    "ae": (660.0, 1720.0, 2410.0, 3500.0),
    "a": (730.0, 1090.0, 2440.0, 3400.0),
    "o": (570.0, 840.0, 2410.0, 3300.0),
    "uh": (640.0, 1190.0, 2390.0, 3400.0),
    "u": (300.0, 870.0, 2240.0, 3300.0),
    "er": (490.0, 1350.0, 1690.0, 3300.0),
}

#: Default formant bandwidths (Hz) for F1-F4.
FORMANT_BW: tuple[float, float, float, float] = (80.0, 100.0, 150.0, 220.0)

_EPS = 1e-12


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def _unit(x: np.ndarray) -> np.ndarray:
    r = _rms(x)
    return x / r if r > _EPS else x


def _check_n_sr(n_samples: int, sample_rate: int) -> None:
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise SpecError(f"noise: field 'n_samples': need a positive integer, got {n_samples!r}")
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, (int, np.integer))
        or not 4000 <= sample_rate <= 192000
    ):
        raise SpecError(
            f"noise: field 'sample_rate': need an integer in [4000, 192000] Hz, got {sample_rate!r}"
        )


# --------------------------------------------------------------------------------------------
# Coloured noise
# --------------------------------------------------------------------------------------------
def colored_noise(
    n_samples: int,
    sample_rate: int,
    rng: np.random.Generator,
    exponent: float,
    floor_hz: float = 20.0,
) -> np.ndarray:
    """Gaussian noise with power spectral density proportional to ``f ** -exponent``.

    ``exponent`` 0 is white, 1 pink (-3 dB/octave), 2 brown (-6 dB/octave). The spectrum of a
    white Gaussian block is shaped in the FFT domain (exact slope at every frequency, unlike
    IIR approximations); below ``floor_hz`` the shape is flat and DC is removed, so brown noise
    does not drift. Returns float64, unit RMS.
    """
    m = sfft.next_fast_len(int(n_samples), real=True)
    spec = sfft.rfft(rng.standard_normal(m))
    f = sfft.rfftfreq(m, 1.0 / sample_rate)
    shape = np.maximum(f, floor_hz) ** (-exponent / 2.0)
    shape[0] = 0.0
    return _unit(sfft.irfft(spec * shape, m)[:n_samples])


def smooth_random(
    n_samples: int, sample_rate: int, rng: np.random.Generator, rate_hz: float
) -> np.ndarray:
    """A slowly wandering random control signal: zero mean, unit standard deviation.

    Gaussian values drawn every ``1 / rate_hz`` seconds, joined by cosine interpolation. Used
    for gusts, pitch drift and slow level fluctuations.
    """
    step = max(1.0, sample_rate / max(rate_hz, 1e-3))
    k = int(np.ceil(n_samples / step)) + 2
    pts = rng.standard_normal(k)
    pos = np.arange(n_samples) / step
    i = np.floor(pos).astype(np.int64)
    w = 0.5 - 0.5 * np.cos(np.pi * (pos - i))
    return pts[i] * (1.0 - w) + pts[i + 1] * w


def mains_hum(
    n_samples: int,
    sample_rate: int,
    rng: np.random.Generator,
    mains_hz: float | None = None,
    n_harmonics: int = 8,
    buzz: float = 0.3,
) -> np.ndarray:
    """Electrical hum: harmonics of the mains frequency (50 or 60 Hz, drawn when not given).

    Transformers and motors hum mostly at twice the mains frequency (magnetostriction), so the
    2nd harmonic is the strongest; ``buzz`` (0-1) raises the upper harmonics, as in a buzzing
    microwave transformer. Harmonics above 0.45 x the sample rate are left out. Unit RMS.
    """
    if mains_hz is None:
        mains_hz = 50.0 if rng.random() < 0.5 else 60.0
    f = mains_hz * (1.0 + rng.uniform(-0.002, 0.002))  # grid frequency deviation
    t = np.arange(n_samples) / sample_rate
    out = np.zeros(n_samples)
    for k in range(1, n_harmonics + 1):
        if k * f >= 0.45 * sample_rate:
            break
        amp = (
            1.0 if k == 2 else rng.uniform(0.2, 0.6) / k + buzz * rng.uniform(0.2, 1.0) / np.sqrt(k)
        )
        out += amp * np.sin(2 * np.pi * k * f * t + rng.uniform(0, 2 * np.pi))
    return _unit(out)


def _hvac(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Ventilation: low-passed fan broadband + blade-pass tone + mains hum, slowly modulated."""
    fan = colored_noise(n, sr, rng, 1.0)
    sos = signal.butter(2, min(rng.uniform(250.0, 900.0), 0.45 * sr), "low", fs=sr, output="sos")
    fan = _unit(signal.sosfilt(sos, fan))
    t = np.arange(n) / sr
    blade = rng.uniform(30.0, 110.0)  # blade-pass frequency: rotation rate x blade count
    tone = sum(np.sin(2 * np.pi * k * blade * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3))
    hum = mains_hum(n, sr, rng, n_harmonics=6, buzz=0.1)
    mod = 1.0 + rng.uniform(0.05, 0.2) * smooth_random(n, sr, rng, rng.uniform(0.1, 0.5))
    out = (
        fan
        + 10 ** (rng.uniform(-18, -8) / 20) * _unit(tone)
        + 10 ** (rng.uniform(-16, -6) / 20) * hum
    )
    return _unit(out * np.clip(mod, 0.3, None))


# --------------------------------------------------------------------------------------------
# Source-filter voice model
# --------------------------------------------------------------------------------------------
def glottal_pulses(
    f0: np.ndarray,
    sample_rate: int,
    rng: np.random.Generator,
    *,
    jitter: float = 0.005,
    shimmer: float = 0.04,
    subharmonic: float = 0.0,
) -> np.ndarray:
    """A band-limited pulse train following the per-sample f0 contour ``f0`` (Hz; 0 = no pulse).

    Each glottal closure is a windowed-sinc impulse at its exact fractional time (no
    sample-grid jitter), so high voices stay clean at 8 kHz. ``jitter`` is the standard deviation
    of the period perturbation (fraction of a period), ``shimmer`` that of the pulse amplitude,
    ``subharmonic`` the depth of alternating pulse amplitudes (period doubling, heard as vocal
    roughness in screams and cries). Returns float64 of ``len(f0)`` samples.
    """
    n = len(f0)
    phase = np.cumsum(np.maximum(f0, 0.0)) / sample_rate
    cyc = np.floor(phase)
    idx = np.flatnonzero(cyc[1:] > cyc[:-1]) + 1
    if idx.size == 0:
        return np.zeros(n)
    prev, cur = phase[idx - 1], phase[idx]
    pos = idx - 1 + (cyc[idx] - prev) / np.maximum(cur - prev, _EPS)
    period = sample_rate / np.maximum(f0[idx], 1.0)
    pos = pos + jitter * period * rng.standard_normal(idx.size)
    amp = np.clip(1.0 + shimmer * rng.standard_normal(idx.size), 0.1, None)
    if subharmonic:
        amp = amp * (1.0 + subharmonic * (1.0 - 2.0 * (np.arange(idx.size) % 2)))
    taps = np.arange(-5, 6)
    k = np.floor(pos).astype(np.int64)[:, None] + taps
    d = k - pos[:, None]
    h = 0.9 * np.sinc(0.9 * d) * (0.5 + 0.5 * np.cos(np.pi * np.clip(d / 6.0, -1, 1)))
    w = amp[:, None] * h
    ok = (k >= 0) & (k < n)
    return np.bincount(k[ok], weights=w[ok], minlength=n)[:n]


#: Formants: fixed ``(F1, ..., Fk)`` in Hz, or keyframes ``[(time_s, (F1, ..., Fk)), ...]``.
Formants = Sequence[float] | Sequence[tuple[float, Sequence[float]]]


def _resonator_sos(freqs: np.ndarray, bws: np.ndarray, sr: int) -> np.ndarray:
    """Klatt (1980) digital resonators as second-order sections (unity gain at DC)."""
    freqs = np.clip(freqs, 30.0, 0.45 * sr)
    r = np.exp(-np.pi * bws / sr)
    b = 2.0 * r * np.cos(2.0 * np.pi * freqs / sr)
    c = -(r**2)
    a0 = 1.0 - b - c
    z = np.zeros_like(freqs)
    return np.stack([a0, z, z, np.ones_like(freqs), -b, -c], axis=-1)


def _is_keyframes(formants: Formants) -> bool:
    return (
        len(formants) > 0
        and isinstance(formants[0], (tuple, list))
        and len(formants[0]) == 2
        and isinstance(formants[0][1], (tuple, list, np.ndarray))
    )


def formant_filter(
    x: np.ndarray,
    sample_rate: int,
    formants: Formants,
    bandwidths: Sequence[float] | np.ndarray = FORMANT_BW,
    warmup_s: float = 0.03,
) -> np.ndarray:
    """Filter ``x`` through a cascade of formant resonators (Klatt 1980).

    ``formants`` is either fixed ``(F1, ..., Fk)`` (one filter call) or keyframes
    ``[(time_s, (F1, ..., Fk)), ...]`` in time order. Between keyframes the outputs of the two
    keyframes' filters are cross-faded (each filter runs only over its own stretch, started
    ``warmup_s`` early so its ringing has settled): one filter call per keyframe instead of one
    per few milliseconds, which keeps long babble cheap. Frequencies are clipped to 0.45 x the
    sample rate, so the same vowel works at 8 kHz.
    """
    sr = sample_rate
    x = np.asarray(x, dtype=np.float64)
    if not _is_keyframes(formants):
        f = np.asarray(formants, dtype=np.float64)
        return signal.sosfilt(
            _resonator_sos(f, np.asarray(bandwidths, np.float64)[: f.size], sr), x
        )
    n = len(x)
    ts = np.array([float(k[0]) for k in formants])
    fs = np.array([np.asarray(k[1], dtype=np.float64) for k in formants])
    bw = np.asarray(bandwidths, dtype=np.float64)[: fs.shape[1]]
    idx = np.clip(np.round(ts * sr).astype(np.int64), 0, n)
    warm = int(warmup_s * sr)
    y = np.zeros(n)
    kk = len(ts)
    for k in range(kk):
        lo = 0 if k == 0 else int(idx[k - 1])
        hi = n if k == kk - 1 else int(idx[k + 1])
        if hi <= lo:
            continue
        s0 = max(0, lo - warm)
        if not np.any(x[s0:hi]):
            continue
        seg = signal.sosfilt(_resonator_sos(fs[k], bw, sr), x[s0:hi])[lo - s0 :]
        pos = np.arange(lo, hi)
        w = np.ones(hi - lo)
        if k > 0 and idx[k] > lo:
            rise = pos < idx[k]
            w[rise] = (pos[rise] - lo) / (idx[k] - lo)
        if k < kk - 1 and hi > idx[k]:
            fall = pos >= idx[k]
            w[fall] = (hi - pos[fall]) / (hi - idx[k])
        y[lo:hi] += w * seg
    return y


@dataclass(frozen=True)
class VoiceQuality:
    """How a :func:`voice` sounds, apart from its pitch, loudness and vowels: breathiness,
    brightness, irregularity and roughness of the source, and the width of the formants.

    The defaults are a relaxed, clean adult voice; screams, cries and coughs are the same
    source-filter model with other values here.
    """

    breath: float = 0.1
    """Share of aspiration noise in the excitation (0 = clean voice, 1 = whisper/breath)."""
    tilt_hz: float = 300.0
    """Corner (Hz) of the source's -6 dB/octave roll-off; higher is brighter, more tense
    (screams ~1-3 kHz, relaxed speech ~200-400 Hz)."""
    jitter: float = 0.005
    """Standard deviation of the glottal period perturbation, as a fraction of a period."""
    shimmer: float = 0.04
    """Standard deviation of the glottal pulse amplitude, as a fraction of it."""
    subharmonic: float = 0.0
    """Depth (0-1) of alternating pulse amplitudes: period doubling, vocal fry in cries."""
    rough_hz: float = 0.0
    """Rate (Hz) of the roughness amplitude modulation (30-150 Hz for screams; 0 = none)."""
    rough_depth: float = 0.0
    """Depth (0-1) of that modulation: the acoustic signature of screams (Arnal et al. 2015,
    Current Biology)."""
    bandwidth_scale: float = 1.0
    """Factor on the formant bandwidths :data:`FORMANT_BW` (> 1: duller, less distinct vowels,
    as in an infant's cry)."""


def voice(
    rng: np.random.Generator,
    sample_rate: int,
    f0: np.ndarray,
    env: np.ndarray,
    formants: Formants,
    quality: VoiceQuality | None = None,
) -> np.ndarray:
    """A voice-like sound by source-filter synthesis.

    Parameters
    ----------
    f0 : per-sample fundamental (Hz); 0 where unvoiced.
    env : per-sample amplitude envelope (0 = silence).
    formants : fixed ``(F1..Fk)`` or keyframes ``[(time_s, (F1..Fk)), ...]`` (see
        :func:`formant_filter`).
    quality : breathiness, brightness, jitter, roughness, ... (:class:`VoiceQuality`; None: its
        defaults).

    Returns float64 (not normalised), DC-free.
    """
    q = VoiceQuality() if quality is None else quality
    n = len(f0)
    src = glottal_pulses(
        f0, sample_rate, rng, jitter=q.jitter, shimmer=q.shimmer, subharmonic=q.subharmonic
    )
    a = np.exp(-2 * np.pi * min(q.tilt_hz, 0.45 * sample_rate) / sample_rate)
    src = signal.lfilter([1.0 - a], [1.0, -a], src)
    voiced = f0 > 0
    r = _rms(src[voiced]) if voiced.any() else 0.0
    src = src / r if r > _EPS else np.zeros(n)
    if q.rough_depth > 0 and q.rough_hz > 0:
        t = np.arange(n) / sample_rate
        src *= 1.0 + q.rough_depth * np.sin(
            2 * np.pi * q.rough_hz * t * (1 + 0.05 * smooth_random(n, sample_rate, rng, 8))
        )
    exc = (np.sqrt(max(0.0, 1.0 - q.breath**2)) * src + q.breath * rng.standard_normal(n)) * env
    bw = np.asarray(FORMANT_BW) * q.bandwidth_scale
    y = formant_filter(exc, sample_rate, formants, bw)
    sos = signal.butter(2, 60.0, "high", fs=sample_rate, output="sos")
    return signal.sosfilt(sos, y)


def speech_like(
    n_samples: int, sample_rate: int, rng: np.random.Generator, *, effort: float = 0.0
) -> np.ndarray:
    """One talker's speech-like sound: phrases of syllables (3-6 per second) with vowel formants,
    fricative/stop bursts, declining pitch and pauses. Not intelligible; used for babble and
    crowd sounds. ``effort`` (0-1) raises pitch, brightness and syllable rate (shouting).
    Unit RMS, float64; the talker may start up to 0.3 s into the signal.
    """
    sr = sample_rate
    n = n_samples
    dur = n / sr
    female = rng.random() < 0.5
    f0_mean = (rng.uniform(170, 240) if female else rng.uniform(95, 140)) * (1 + 0.6 * effort)
    fscale = (rng.uniform(1.1, 1.22) if female else rng.uniform(0.95, 1.05)) * (1 + 0.08 * effort)
    rate = rng.uniform(3.0, 6.0) * (1 + 0.2 * effort)
    names = list(VOWELS)
    env = np.zeros(n)
    cons = np.zeros(n)
    keys: list[tuple[float, Sequence[float]]] = [(0.0, VOWELS["uh"])]
    f0_keys: list[tuple[float, float]] = [(0.0, f0_mean)]
    t = rng.uniform(0.0, 0.3)
    while t < dur:
        phrase = rng.uniform(0.8, 2.5)
        end = t + phrase
        while t < end and t < dur:
            d = rng.uniform(0.7, 1.3) / rate
            v = np.array(VOWELS[names[int(rng.integers(len(names)))]]) * fscale
            keys.append((t + d / 2, tuple(v)))
            pos = (t - (end - phrase)) / phrase  # position in phrase: declination
            f0_keys.append(
                (t + d / 2, f0_mean * (1.15 - 0.25 * pos) * (1 + rng.uniform(-0.08, 0.12)))
            )
            c = rng.uniform(0.0, 0.3) * d  # consonant part
            i0, i1 = int((t + c) * sr), min(n, int((t + 0.9 * d) * sr))
            if i1 > i0:
                x = np.linspace(0, 1, i1 - i0)
                env[i0:i1] = rng.uniform(0.4, 1.0) * np.sin(np.pi * x) ** 0.7
            j0, j1 = int(t * sr), min(n, int((t + c) * sr))
            if j1 > j0 and rng.random() < 0.7:
                cons[j0:j1] = rng.uniform(0.1, 0.5) * np.hanning(j1 - j0)
            t += d
        t = end + rng.uniform(0.15, 0.7)
    keys.append((dur + 1.0, keys[-1][1]))
    f0_keys.append((dur + 1.0, f0_keys[-1][1]))
    tt = np.arange(n) / sr
    f0 = np.interp(tt, [k[0] for k in f0_keys], [k[1] for k in f0_keys])
    f0 *= 1.0 + 0.02 * smooth_random(n, sr, rng, 6.0)
    quality = VoiceQuality(
        breath=0.12, tilt_hz=250.0 + 1200.0 * effort, jitter=0.006 + 0.01 * effort
    )
    y = _unit(voice(rng, sr, f0, env, keys, quality))
    if cons.any():
        hi = min(rng.uniform(3500, 6500), 0.45 * sr)
        sos = signal.butter(2, [0.5 * hi, hi], "band", fs=sr, output="sos")
        y = y + 0.8 * _unit(signal.sosfilt(sos, rng.standard_normal(n))) * cons
    return _unit(y)


def _babble(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Several talkers (4-8) of :func:`speech_like` at random relative levels."""
    k = int(rng.integers(4, 9))
    out = np.zeros(n)
    for child in rng.spawn(k):
        out += 10 ** (child.uniform(-6.0, 0.0) / 20) * speech_like(n, sr, child)
    return _unit(out)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------
def make_noise(kind: str, n_samples: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Background noise of ``kind`` (one of :data:`NOISE_KINDS`), unit RMS, float32 mono.

    - ``white``: flat spectrum; ``pink``: -3 dB/octave; ``brown``: -6 dB/octave (FFT shaping);
    - ``hvac``: ventilation fan (low-passed broadband, blade-pass tone) with 50/60 Hz hum,
      slowly modulated;
    - ``babble``: 4-8 formant-synthesised talkers (a cafe or a party next door).

    Raises
    ------
    SpecError
        Unknown ``kind``, or a non-positive length / unsupported sample rate.

    Examples
    --------
    >>> import numpy as np
    >>> x = make_noise("babble", 8000, 16000, np.random.default_rng(1))
    >>> x.shape, bool(np.isfinite(x).all())
    ((8000,), True)
    """
    if kind not in NOISE_KINDS:
        raise SpecError(
            f"noise: field 'kind': unknown noise kind {kind!r}; use one of {NOISE_KINDS}"
        )
    _check_n_sr(n_samples, sample_rate)
    n, sr = int(n_samples), int(sample_rate)
    if kind == "white":
        x = _unit(rng.standard_normal(n))
    elif kind == "pink":
        x = colored_noise(n, sr, rng, 1.0)
    elif kind == "brown":
        x = colored_noise(n, sr, rng, 2.0)
    elif kind == "hvac":
        x = _hvac(n, sr, rng)
    else:
        x = _babble(n, sr, rng)
    return _unit(x).astype(np.float32)


def snr_scale(signal_power: float, noise: np.ndarray, snr_db: float) -> float:
    """Gain for ``noise`` so that ``signal_power / power(gain * noise)`` is ``snr_db`` dB.

    ``signal_power`` is a mean square (for example of the speech over its active part).

    Examples
    --------
    >>> import numpy as np
    >>> g = snr_scale(1.0, np.ones(100, np.float32), 20.0)
    >>> round(g, 6)
    0.1
    """
    if not np.isfinite(signal_power) or signal_power < 0:
        raise SpecError(
            f"snr_scale: signal_power must be a finite mean square >= 0, got {signal_power}"
        )
    if not np.isfinite(snr_db):
        raise SpecError(f"snr_scale: snr_db must be finite, got {snr_db}")
    p_noise = float(np.mean(np.square(noise, dtype=np.float64))) if np.size(noise) else 0.0
    if p_noise <= 0.0 or not np.isfinite(p_noise):
        raise SpecError("snr_scale: noise is silent or non-finite; cannot scale it to an SNR")
    return float(np.sqrt(signal_power / (p_noise * 10 ** (snr_db / 10))))
