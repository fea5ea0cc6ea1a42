"""A speaker model applied to any generator's output: pitch, tempo and vocal-tract length.

One synthetic voice becomes many talkers by changing three things independently:

- **pitch** (``pitch_st`` semitones): the fundamental frequency f0 scales by
  ``2 ** (pitch_st / 12)``;
- **vocal-tract length** (``vtl``): formant frequencies scale by ``1 / vtl``, so ``vtl > 1`` is
  a longer tract and lower formants (a larger talker), ``vtl < 1`` a shorter one;
- **tempo** (``tempo``): the speaking rate; the duration scales by ``1 / tempo``.

Algorithm
---------
1. *Warp the spectral envelope* (:func:`warp_envelope`): an STFT (32 ms frames, 75 % overlap)
   whose magnitudes are multiplied by the ratio of the frame's spectral envelope read at
   ``f * r * vtl`` to the envelope at ``f``, so formants move to ``1 / (r * vtl)`` times their
   frequency; phases are kept, so the harmonics (f0) stay put. The envelope follows the
   harmonic peaks (a running maximum over 150 Hz) smoothed by a 4 ms cepstral lifter.
2. *Resample* by the pitch ratio ``r`` (as an exact fraction ``p/q``, :func:`pitch_fraction`):
   every frequency scales by ``r`` -- f0 to ``r`` times, formants to ``1 / vtl`` times the
   original -- and the duration by ``1/r``.
3. *Time-stretch* with WSOLA (:func:`time_stretch`, waveform-similarity overlap-add, 32 ms
   Hann frames, +-10 ms search) to exactly ``round(n / tempo)`` samples; WSOLA copies whole
   stretches of waveform, so pitch and formants are unchanged by it.
4. Scale to the input's RMS, so the level is the talker's ``level_db`` alone.

Word times follow the audio exactly: step 2 scales them by ``q/p``; step 3 maps them through
the frame positions WSOLA actually chose (a piecewise-linear map from the centres of the
copied input frames to the centres of the output frames).

Everything is deterministic: no randomness, and the output length depends only on the input
length and ``tempo``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from fractions import Fraction
from typing import Any

import numpy as np
from scipy.ndimage import maximum_filter1d

from chimein.scenes.audio import resample
from chimein.scenes.spec import Word, _err, _finite, _no_unknown
from chimein.scenes.speech.base import Speech

__all__ = [
    "PITCH_ST_RANGE",
    "TEMPO_RANGE",
    "VTL_RANGE",
    "LEVEL_DB_RANGE",
    "Speaker",
    "apply_speaker",
    "pitch_fraction",
    "time_stretch",
    "warp_envelope",
]

PITCH_ST_RANGE = (-8.0, 8.0)
"""Allowed pitch shift in semitones."""
TEMPO_RANGE = (0.6, 1.6)
"""Allowed speaking-rate factor."""
VTL_RANGE = (0.8, 1.25)
"""Allowed vocal-tract-length factor."""
LEVEL_DB_RANGE = (-12.0, 12.0)
"""Allowed level offset in dB."""

_RANGES: dict[str, tuple[float, float]] = {
    "pitch_st": PITCH_ST_RANGE,
    "tempo": TEMPO_RANGE,
    "vtl": VTL_RANGE,
    "level_db": LEVEL_DB_RANGE,
}

WSOLA_FRAME_S = 0.032
"""WSOLA frame length: two periods of a 62 Hz voice."""
WSOLA_TOLERANCE_S = 0.010
"""WSOLA search range either side of the nominal position: half a period of a 50 Hz voice."""
WSOLA_ENERGY_RATIO = 4.0
"""WSOLA only copies a frame whose halves' energies are within this factor (6 dB) of the nominal
frame's."""
ENVELOPE_FRAME_S = 0.032
"""STFT frame for the envelope warp (rounded up to a power of two in samples)."""
PEAK_SPAN_HZ = 150.0
"""Envelope: the running-maximum span that bridges the valleys between harmonics."""
LIFTER_S = 0.004
"""Envelope: cepstral lifter cut-off (a smoothing over about 250 Hz, fine enough for F1 and
F2, coarse enough to drop the harmonic ripple that the running maximum leaves)."""
MAX_BOOST_DB = 30.0
"""The envelope warp boosts a bin by at most this much: a weak band that must be lifted to a
formant is mostly noise (above 3 kHz espeak-ng's harmonics are weak), and lifting it further
makes the voice hoarse (measured as a loss of YIN-voiced frames)."""
MAX_CUT_DB = 60.0
"""The envelope warp attenuates a bin by at most this much."""


# --------------------------------------------------------------------------------------------
# The speaker
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Speaker:
    """A talker: how one generator voice is transformed, recorded in the scene spec.

    Parameters
    ----------
    id : str
        A name for the talker, for instance ``"piper/joe/s3"`` (non-empty).
    pitch_st : float
        Pitch shift in semitones, in [-8, 8]: f0 scales by ``2 ** (pitch_st / 12)``.
    tempo : float
        Speaking-rate factor in [0.6, 1.6] (1.2 is 20 % faster): durations scale by
        ``1 / tempo``.
    vtl : float
        Vocal-tract-length factor in [0.8, 1.25]: formant frequencies scale by ``1 / vtl``;
        above 1 is a longer tract with lower formants (a larger talker).
    level_db : float
        The talker's level offset in dB, in [-12, 12]. :func:`apply_speaker` ignores it (it
        keeps the RMS); the scene sampler adds it to the source level.

    Raises
    ------
    SpecError
        A field is of the wrong type or out of range (the message names the field).

    Examples
    --------
    >>> s = Speaker("espeak/en-us/s1", pitch_st=-3.0, tempo=1.1, vtl=1.1, level_db=-2.0)
    >>> Speaker.from_dict(s.to_dict()) == s
    True
    >>> Speaker("espeak/en-us/s0").is_identity
    True
    """

    id: str
    pitch_st: float = 0.0
    tempo: float = 1.0
    vtl: float = 1.0
    level_db: float = 0.0

    def __post_init__(self) -> None:
        self.validate()
        for name in _RANGES:  # canonical floats, so to_dict() is the same JSON however built
            object.__setattr__(self, name, float(getattr(self, name)))

    def validate(self, where: str = "speaker") -> None:
        """Raise :class:`SpecError` naming the field if a value is of the wrong type or range."""
        _check(where, {f.name: getattr(self, f.name) for f in fields(self)})

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready mapping :meth:`from_dict` reads back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "speaker") -> Speaker:
        """Build a speaker from a mapping, strictly: unknown keys, wrong types and out-of-range
        values raise :class:`SpecError` naming ``where`` and the field."""
        _no_unknown(d, cls, where)
        if "id" not in d:
            raise _err(where, "id", "missing; name the talker, for instance 'piper/joe/s3'")
        kw = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        _check(where, {f.name: kw.get(f.name, f.default) for f in fields(cls)})
        return cls(**kw)

    @property
    def is_identity(self) -> bool:
        """True when :func:`apply_speaker` leaves the audio unchanged (``level_db`` aside)."""
        return self.pitch_st == 0.0 and self.tempo == 1.0 and self.vtl == 1.0


def _check(where: str, values: Mapping[str, Any]) -> None:
    """The speaker fields in ``values`` are of the right type and range, or a SpecError."""
    name = values["id"]
    if not isinstance(name, str) or not name.strip():
        raise _err(where, "id", f"need a non-empty name such as 'piper/joe/s3', got {name!r}")
    for fld, (lo, hi) in _RANGES.items():
        v = _finite(where, fld, values[fld])
        if not lo <= v <= hi:
            raise _err(where, fld, f"{v!r} is outside [{lo:g}, {hi:g}]")


def pitch_fraction(pitch_st: float) -> Fraction:
    """The pitch ratio ``2 ** (pitch_st / 12)`` as the fraction the resampler uses.

    The denominator is at most 600 (so :func:`chimein.scenes.audio.resample` uses it as is,
    and the time mapping of the resampling is exact); over [-8, 8] semitones the ratio is within
    0.08 % (0.014 semitones) of the exact value.

    Examples
    --------
    >>> pitch_fraction(12.0)
    Fraction(2, 1)
    >>> round(float(pitch_fraction(1.0)) / 2 ** (1 / 12), 4)
    1.0
    """
    return Fraction(2.0 ** (pitch_st / 12.0)).limit_denominator(600)


def apply_speaker(speech: Speech, speaker: Speaker) -> Speech:
    """Speak ``speech`` as ``speaker``: pitch, formants and tempo changed independently.

    Parameters
    ----------
    speech : Speech
        Any generator's output.
    speaker : Speaker
        The transformation; an identity speaker returns ``speech`` itself.

    Returns
    -------
    Speech
        Same sample rate; float32, read-only audio of ``round(n / tempo)`` samples with the
        input's RMS; word times mapped through the transformation (see the module docstring).

    Examples
    --------
    >>> from chimein.scenes.speech.espeak import synthesize
    >>> s = synthesize("hello there")
    >>> t = apply_speaker(s, Speaker("espeak/en-us/low", pitch_st=-4, tempo=0.8, vtl=1.15))
    >>> t.audio.shape[0] == round(s.audio.shape[0] / 0.8)
    True
    >>> apply_speaker(s, Speaker("espeak/en-us/same")) is s
    True
    """
    if speaker.is_identity:
        return speech
    sr = speech.sample_rate
    x = np.asarray(speech.audio, dtype=np.float64)
    n_in = x.shape[0]
    ratio = pitch_fraction(speaker.pitch_st)
    # 1+2. The envelope warp by 1/(r*vtl), then resampling by r = p/q (every frequency times r,
    # time times q/p), put formants at 1/vtl and f0 at r. The warp runs on the input, at the
    # generator's own f0: on a raised-pitch signal the harmonics are too sparse for the envelope
    # (measured: octave errors at +8 semitones on a female voice when warped after resampling).
    warp = float(ratio) * speaker.vtl
    y = x if warp == 1.0 else warp_envelope(x, sr, warp)
    if ratio != 1:
        y = resample(y, ratio.numerator, ratio.denominator).astype(np.float64)
    # 3. Tempo: WSOLA to the exact target length.
    n_out = max(1, round(n_in / speaker.tempo))
    n_mid = y.shape[0]
    in_c, out_c = np.array([0.0, n_mid]), np.array([0.0, n_out])
    if n_mid != n_out:
        y, in_c, out_c = time_stretch(y, sr, n_out, out_c, in_c)
    # 4. Level: the input's RMS.
    rms_in, rms_out = _rms(x), _rms(y)
    if rms_out > 0.0:
        y = y * (rms_in / rms_out)
    audio = y.astype(np.float32)
    audio.flags.writeable = False

    def t_map(t: float) -> float:
        s_mid = t * sr * ratio.denominator / ratio.numerator  # resampling: time scales by q/p
        return float(np.clip(np.interp(s_mid, in_c, out_c), 0.0, n_out)) / sr

    words = tuple(Word(w.text, t_map(w.start_s), t_map(w.end_s)) for w in speech.words)
    return Speech(audio=audio, sample_rate=sr, words=words)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0


# --------------------------------------------------------------------------------------------
# DSP: spectral-envelope warp and WSOLA
# --------------------------------------------------------------------------------------------
def _hann(n: int) -> np.ndarray:
    """Periodic Hann window: copies at hop ``n/2`` sum to exactly 1."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def _lifter(n_fft: int, cutoff: int) -> np.ndarray:
    """Cepstral low-pass weights: 1 below ``cutoff / 2``, a cosine taper to 0 at ``cutoff``."""
    q = np.arange(n_fft)
    q = np.minimum(q, n_fft - q)  # quefrency of each cepstral index (the cepstrum is even)
    half = cutoff // 2
    w = np.zeros(n_fft)
    w[q < half] = 1.0
    taper = (q >= half) & (q < cutoff)
    w[taper] = 0.5 + 0.5 * np.cos(np.pi * (q[taper] - half) / (cutoff - half))
    return w


def _log_envelope(power: np.ndarray, sr: int) -> np.ndarray:
    """Natural-log spectral envelope of each row of ``power`` (one-sided power spectra).

    A running maximum over :data:`PEAK_SPAN_HZ` lifts the valleys between harmonics (so the
    envelope follows the harmonic peaks, as a formant does), then a cepstral lifter at
    :data:`LIFTER_S` smooths away what is left of the harmonic ripple."""
    n_fft = 2 * (power.shape[1] - 1)
    log_p = np.log(power + 1e-10 * max(float(power.max()), 1e-30))  # -100 dB floor
    span = max(1, round(PEAK_SPAN_HZ * n_fft / sr)) | 1
    peaks = maximum_filter1d(log_p, size=span, axis=1, mode="nearest")
    cep = np.fft.irfft(peaks, n=n_fft, axis=1) * _lifter(n_fft, max(4, round(LIFTER_S * sr)))
    return np.fft.rfft(cep, axis=1).real


def warp_envelope(x: np.ndarray, sr: int, warp: float) -> np.ndarray:
    """Move the spectral envelope (formants) of ``x`` by ``1 / warp``, keeping its harmonics.

    Each STFT frame's magnitudes are multiplied by ``sqrt(E(f * warp) / E(f))``, where ``E``
    is the frame's smoothed power spectrum (its harmonic peaks, cepstrally smoothed: see
    :func:`_log_envelope`), so a formant at ``F`` moves to ``F / warp`` while the fine
    structure (harmonics, f0) and the phases stay; the gain is clipped to
    [-:data:`MAX_CUT_DB`, +:data:`MAX_BOOST_DB`]. Frames are :data:`ENVELOPE_FRAME_S` long (a
    power of two) with 75 % overlap and square-root Hann windows, so ``warp == 1`` reconstructs
    ``x`` to rounding error.

    Parameters
    ----------
    x : numpy.ndarray
        Mono float64 signal.
    sr : int
        Sample rate in Hz.
    warp : float
        Envelope read-out factor; ``> 1`` lowers formants.

    Returns
    -------
    numpy.ndarray
        Float64 signal of the same length.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).standard_normal(16000)
    >>> bool(np.allclose(warp_envelope(x, 16000, 1.0), x))
    True
    """
    n = x.shape[0]
    n_fft = 1 << max(6, math.ceil(math.log2(ENVELOPE_FRAME_S * sr)))
    hop = n_fft // 4
    win = np.sqrt(_hann(n_fft))
    pad = n_fft
    n_frames = (n + pad) // hop + 1
    xp = np.zeros(pad + n_frames * hop + n_fft)
    xp[pad:pad + n] = x
    frames = np.lib.stride_tricks.sliding_window_view(xp, n_fft)[::hop][:n_frames] * win
    spec = np.fft.rfft(frames, axis=1)
    power = spec.real**2 + spec.imag**2
    env = _log_envelope(power, sr)
    n_bins = env.shape[1]
    pos = np.clip(np.arange(n_bins) * warp, 0.0, n_bins - 1.0)
    i0 = np.minimum(pos.astype(np.int64), n_bins - 2)
    frac = pos - i0
    env_w = env[:, i0] * (1.0 - frac) + env[:, i0 + 1] * frac
    db = 20.0 / math.log(10.0)  # natural-log amplitude to dB
    gain = np.exp(np.clip(0.5 * (env_w - env), -MAX_CUT_DB / db, MAX_BOOST_DB / db))
    out_frames = np.fft.irfft(spec * gain, n=n_fft, axis=1) * win
    y = np.zeros_like(xp)
    for k in range(4):  # overlap-add, vectorised per quarter (frames k, k+4, ... never overlap)
        blk = out_frames[k::4]
        start = k * hop
        y[start:start + blk.shape[0] * n_fft] += blk.reshape(-1)
    return y[pad:pad + n] * 0.5  # sqrt-Hann squared at 75 % overlap sums to 2


def time_stretch(
    x: np.ndarray,
    sr: int,
    out_len: int,
    out_anchor: np.ndarray,
    in_anchor: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Time-stretch ``x`` to ``out_len`` samples by WSOLA along a piecewise-linear time map.

    Output frames (:data:`WSOLA_FRAME_S`, periodic Hann, hop half a frame, so they sum to 1)
    are centred every hop from sample 0. The frame centred at output sample ``c`` copies the
    input frame within :data:`WSOLA_TOLERANCE_S` of the nominal position
    ``np.interp(c, out_anchor, in_anchor)`` that best continues the previous copied frame
    (normalised cross-correlation). Copying waveform keeps pitch and formants; where the map
    has slope 1 the input is reproduced exactly (to rounding).

    Parameters
    ----------
    x : numpy.ndarray
        Mono signal.
    sr : int
        Sample rate in Hz (sets the frame and search lengths).
    out_len : int
        Output length in samples.
    out_anchor, in_anchor : numpy.ndarray
        Increasing sample positions: output ``out_anchor[i]`` should hold input
        ``in_anchor[i]``; linear in between, clamped outside.

    Returns
    -------
    tuple of numpy.ndarray
        The float64 output, then the centres of the copied input frames and the matching
        output centres (samples): the exact time map (monotone; feed it to ``np.interp``).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.sin(2 * np.pi * 200 * np.arange(16000) / 16000)
    >>> y, _, _ = time_stretch(x, 16000, 24000, np.array([0, 24000]), np.array([0, 16000]))
    >>> y.shape
    (24000,)
    """
    x = np.asarray(x, dtype=np.float64)
    hop = max(2, round(WSOLA_FRAME_S * sr / 2))
    frame = 2 * hop
    tol = max(1, round(WSOLA_TOLERANCE_S * sr))
    win = _hann(frame)
    n_frames = out_len // hop + 2  # centres 0, hop, ... past the end
    out_c = np.arange(n_frames, dtype=np.float64) * hop
    nominal = np.rint(_interp_extend(out_c, out_anchor, in_anchor)).astype(np.int64)
    pad = hop + tol + 1
    lo_in, hi_in = int(nominal.min()), int(nominal.max())
    base = pad - min(lo_in, 0)  # padded index of input sample 0
    xp = np.zeros(base + max(hi_in, x.shape[0]) + frame + pad + tol)
    xp[base:base + x.shape[0]] = x
    energy = np.concatenate(([0.0], np.cumsum(xp * xp)))
    starts = np.empty(n_frames, dtype=np.int64)
    starts[0] = nominal[0] + base - hop
    y = np.zeros(n_frames * hop + frame)
    y[0:frame] += win * xp[starts[0]:starts[0] + frame]
    for k in range(1, n_frames):
        starts[k] = _best_start(xp, energy, starts[k - 1] + hop, nominal[k] + base - hop, tol, frame)
        y[k * hop:k * hop + frame] += win * xp[starts[k]:starts[k] + frame]
    in_c = np.maximum.accumulate(starts - base + hop).astype(np.float64)
    return y[hop:hop + out_len], in_c, out_c


def _interp_extend(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """``np.interp``, but continued past the last anchor along the last segment's slope (the
    frames that straddle the end must keep the map's rate, or the last samples would come from
    the wrong place)."""
    xp = np.asarray(xp, dtype=np.float64)
    fp = np.asarray(fp, dtype=np.float64)
    y = np.interp(x, xp, fp)
    if xp.shape[0] >= 2 and xp[-1] > xp[-2]:
        slope = (fp[-1] - fp[-2]) / (xp[-1] - xp[-2])
        past = x > xp[-1]
        y[past] = fp[-1] + (x[past] - xp[-1]) * slope
    return y


def _best_start(
    xp: np.ndarray, energy: np.ndarray, natural: int, nominal: int, tol: int, frame: int
) -> int:
    """The frame start within ``tol`` of ``nominal`` whose frame best continues the one at
    ``natural`` (normalised cross-correlation), among the frames whose halves each have an
    energy within a factor :data:`WSOLA_ENERGY_RATIO` of the nominal frame's halves (so speech
    is not copied into a pause nor a pause into speech: that would smear onsets and offsets).
    ``nominal`` wins ties, so a slope-1 map reproduces the input."""
    template = xp[natural:natural + frame]
    lo = nominal - tol
    region = xp[lo:nominal + tol + frame]
    corr = np.correlate(region, template, "valid")
    n = corr.shape[0]
    half = frame // 2
    # Energies of each candidate's two halves (cumulative-sum differences can dip below zero
    # by rounding, hence the clip).
    e1 = np.maximum(energy[lo + half:lo + half + n] - energy[lo:lo + n], 0.0)
    e2 = np.maximum(energy[lo + frame:lo + frame + n] - energy[lo + half:lo + half + n], 0.0)
    score = corr / np.sqrt(e1 + e2 + 1e-20)
    r = WSOLA_ENERGY_RATIO
    allowed = ((e1 <= r * e1[tol] + 1e-12) & (e1 >= e1[tol] / r)
               & (e2 <= r * e2[tol] + 1e-12) & (e2 >= e2[tol] / r))
    score[~allowed] = -np.inf
    best = int(np.argmax(score))
    if score[tol] >= score[best] - 1e-12 * abs(score[best]):
        best = tol
    return lo + best
