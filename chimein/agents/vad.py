"""Streaming, batched frame classifiers for the endpointing baselines.

Three pieces, each keeping one state per stream so a batch of independent audio streams is
processed in one vectorised call:

- :class:`StreamFramer` cuts chunks of any length into fixed frames, carrying the remainder
  samples of each stream to its next chunk (an 80 ms chunk is 4 frames of 20 ms, or 2.5 Silero
  windows of 32 ms);
- :class:`EnergyVAD` decides per frame whether the reference microphone is *active* (energy
  above an adaptive noise floor, with hysteresis), *loud* (far above the floor) and, from a
  documented spectral heuristic, whether the active sound looks like *speech*;
- :class:`SileroVAD` gives the speech probability of the Silero VAD model shipped inside the
  ``silero-vad`` wheel (no download), run batched over streams with one recurrent state each.

The speech heuristic of :class:`EnergyVAD` is deliberately simple -- it is what an
energy-based baseline can do, not an oracle. A frame is *speech-like* when

1. it is not hiss: less than ``high_max`` of its energy lies above 4 kHz;
2. it has no strong narrow spectral peak at or above ``tonal_min_hz`` (400 Hz): the three
   FFT bins around the largest peak hold less than ``tonal_max`` of the energy above 80 Hz.
   Beeps, alarms, whistles, sirens and doorbells are near-pure tones at 0.5-4 kHz and score
   0.7-0.95; voiced speech spreads its energy over harmonics and formants, and where one
   harmonic does dominate it is a low one (F0, below 400 Hz);
3. it is not noise-like (``flatness < flat_max``): spectral flatness (geometric over arithmetic
   mean of the power spectrum, 300-7000 Hz) is about 0.56 for white noise, impacts and
   crashes, and below 0.35 for 75-90% of speech frames (espeak voices, measured).

Per-frame votes are smoothed by an exponential average over the active frames of a sound
segment (time constant ``speech_tau_s``, restarting from ``speech_prior`` after a gap of
``segment_gap_s``) with hysteresis, so a fricative or a steady vowel inside a sentence does not
flip a speech segment to "non-speech", while a tonal alarm turns it within about 100 ms.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from chimein.errors import SpecError

__all__ = [
    "EnergyDecisions",
    "EnergyVAD",
    "SileroVAD",
    "StreamFramer",
    "frame_features",
]


# --------------------------------------------------------------------------------------------
# Framing
# --------------------------------------------------------------------------------------------
class StreamFramer:
    """Cut per-stream chunks into fixed-length frames, buffering the remainder of each stream.

    Parameters
    ----------
    frame_len : int
        Samples per frame (e.g. 320 for 20 ms at 16 kHz, 512 for a Silero window).

    Examples
    --------
    >>> import numpy as np
    >>> fr = StreamFramer(512)
    >>> fr.reset(2)
    >>> frames, valid = fr.push(np.zeros((2, 1280), np.float32))
    >>> frames.shape, valid.tolist()
    ((2, 2, 512), [[True, True], [True, True]])
    >>> frames, valid = fr.push(np.zeros((2, 1280), np.float32))  # 256 + 1280 = 3 windows
    >>> valid.sum(axis=1).tolist()
    [3, 3]
    """

    def __init__(self, frame_len: int) -> None:
        if frame_len < 1:
            raise SpecError(f"StreamFramer: field 'frame_len': must be >= 1, got {frame_len}")
        self.frame_len = int(frame_len)
        self._buf = np.zeros((0, self.frame_len), np.float32)
        self._fill = np.zeros(0, np.int64)

    def reset(self, n_streams: int) -> None:
        """Start ``n_streams`` empty streams."""
        self._buf = np.zeros((n_streams, self.frame_len), np.float32)
        self._fill = np.zeros(n_streams, np.int64)

    def reset_stream(self, i: int) -> None:
        """Drop the buffered samples of stream ``i`` (it starts a new episode)."""
        self._fill[i] = 0

    def push(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Append one chunk per stream and return the frames it completes.

        Parameters
        ----------
        x : np.ndarray
            float32 ``(n_streams, chunk_samples)``.

        Returns
        -------
        frames : np.ndarray
            float32 ``(n_streams, J, frame_len)``; ``J`` is the largest number of frames any
            stream completed (streams differ by at most one after a ``reset_stream``).
        valid : np.ndarray
            bool ``(n_streams, J)``: which frames exist; the others are padding.
        """
        n, c = x.shape
        if n != len(self._fill):
            raise SpecError(f"StreamFramer: got {n} streams, expected {len(self._fill)}; call reset(n)")
        length = self.frame_len
        total = self._fill + c
        n_frames = total // length
        j_max = int(n_frames.max()) if n else 0
        comb = np.zeros((n, length + c), np.float32)
        comb[:, :length] = self._buf
        rows = np.arange(n)[:, None]
        comb[rows, self._fill[:, None] + np.arange(c)[None, :]] = x
        frames = comb[:, : j_max * length].reshape(n, j_max, length)
        valid = np.arange(j_max)[None, :] < n_frames[:, None]
        start = (n_frames * length)[:, None] + np.arange(length)[None, :]
        self._buf = np.take_along_axis(comb, np.minimum(start, length + c - 1), axis=1)
        self._fill = total - n_frames * length
        return frames, valid


# --------------------------------------------------------------------------------------------
# Frame features
# --------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _hann(length: int) -> np.ndarray:
    w = np.hanning(length).astype(np.float32)
    w.flags.writeable = False
    return w


def frame_features(frames: np.ndarray, sample_rate: int, spectral: bool = True) -> dict[str, np.ndarray]:
    """Energy and spectral-shape features of frames (vectorised over leading axes).

    Parameters
    ----------
    frames : np.ndarray
        float32 ``(..., frame_len)``.
    sample_rate : int
        Sampling rate in Hz.
    spectral : bool
        Also compute the spectral features (skip them when only the energy is needed).

    Returns
    -------
    dict
        ``energy_db`` (RMS level in dBFS, floor -120), and when ``spectral``: ``high_ratio``
        (fraction of the energy above 80 Hz lying above 4 kHz), ``tonality`` (fraction in the
        3 bins around the largest peak), ``peak_hz`` (that peak's centre) and ``flatness``
        (spectral flatness, 300-7000 Hz).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(320) / 16000
    >>> f = frame_features(np.sin(2 * np.pi * 3000 * t).astype(np.float32)[None], 16000)
    >>> bool(f["tonality"][0] > 0.8), round(float(f["energy_db"][0]), 1)
    (True, -3.0)
    """
    x = np.asarray(frames, np.float32)
    out = {"energy_db": 10.0 * np.log10(np.mean(x.astype(np.float64) ** 2, axis=-1) + 1e-12)}
    if not spectral:
        return out
    length = x.shape[-1]
    n_fft = 1 << max(0, (length - 1).bit_length())
    spec = np.fft.rfft(x * _hann(length), n_fft, axis=-1)
    power = spec.real.astype(np.float64) ** 2 + spec.imag.astype(np.float64) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    power[..., freqs < 80.0] = 0.0
    total = power.sum(axis=-1) + 1e-20
    out["high_ratio"] = power[..., freqs >= 4000.0].sum(axis=-1) / total
    peak3 = power[..., :-2] + power[..., 1:-1] + power[..., 2:]
    k = peak3.argmax(axis=-1)
    out["tonality"] = np.take_along_axis(peak3, k[..., None], axis=-1)[..., 0] / total
    out["peak_hz"] = freqs[k + 1]
    flat_band = (freqs >= 300.0) & (freqs <= min(7000.0, sample_rate / 2))
    p = power[..., flat_band] + 1e-20
    out["flatness"] = np.exp(np.mean(np.log(p), axis=-1)) / np.mean(p, axis=-1)
    return out


# --------------------------------------------------------------------------------------------
# Energy VAD
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EnergyDecisions:
    """Per-frame decisions of :class:`EnergyVAD`, each bool ``(n_streams, J)``.

    ``active``: above the noise floor (hysteresis); ``loud``: active and at least ``event_db``
    above the floor; ``speech``: active and judged speech-like (only when ``classify``).
    Padding frames (``valid`` False in :meth:`StreamFramer.push`) are all False.
    """

    active: np.ndarray
    loud: np.ndarray
    speech: np.ndarray
    energy_db: np.ndarray


class EnergyVAD:
    """Energy voice/sound activity detector with an adaptive noise floor, per stream.

    Parameters
    ----------
    frame_s : float
        Frame duration (seconds) of the frames it will be fed (20-32 ms usual).
    sample_rate : int
        Sampling rate in Hz.
    on_db, off_db : float
        Hysteresis: a frame turns active when its level exceeds the floor by ``on_db`` and stays
        active while it exceeds it by ``off_db``.
    event_db : float
        An active frame is *loud* when it is at least this far above the floor.
    min_dbfs : float
        Frames quieter than this (dBFS) are never active (digital silence, faint hiss).
    floor_rise_db_per_s : float
        The noise floor rises at most this fast (so a steady new noise is absorbed in seconds);
        it falls towards quieter frames with time constant ``floor_fall_tau_s``. It starts at
        the level of the stream's first frame.
    floor_fall_tau_s : float
        Time constant of the floor's descent.
    classify : bool
        Compute the spectral speech heuristic (see the module docstring); when False the
        ``speech`` output is all False and only the energy is computed (cheaper).
    high_max, tonal_max, tonal_min_hz, flat_max : float
        Thresholds of the per-frame speech-like vote (module docstring).
    speech_tau_s : float
        Time constant of the average of the votes over active frames.
    speech_on, speech_off : float
        Hysteresis on that average: the stream's sound turns speech at ``>= speech_on`` and
        stops being speech below ``speech_off``.
    speech_prior : float
        Value of the average at the start of a sound segment (below ``speech_on``: a new
        sound must earn its speech label, so an alarm after speech is not mistaken for it).
    segment_gap_s : float
        Inactivity that ends a segment (resets the average to the prior and the label to
        non-speech); shorter gaps, e.g. between words, keep the segment's history.
    """

    def __init__(
        self,
        frame_s: float = 0.02,
        sample_rate: int = 16000,
        *,
        on_db: float = 12.0,
        off_db: float = 6.0,
        event_db: float = 15.0,
        min_dbfs: float = -60.0,
        floor_rise_db_per_s: float = 2.0,
        floor_fall_tau_s: float = 0.05,
        classify: bool = True,
        high_max: float = 0.5,
        tonal_max: float = 0.6,
        tonal_min_hz: float = 400.0,
        flat_max: float = 0.35,
        speech_tau_s: float = 0.25,
        speech_on: float = 0.5,
        speech_off: float = 0.3,
        speech_prior: float = 0.4,
        segment_gap_s: float = 0.3,
    ) -> None:
        if not frame_s > 0:
            raise SpecError(f"EnergyVAD: field 'frame_s': must be > 0, got {frame_s}")
        if off_db > on_db:
            raise SpecError(f"EnergyVAD: field 'off_db': must be <= on_db ({on_db}), got {off_db}")
        if not speech_off <= speech_on or not 0.0 <= speech_prior < speech_on:
            raise SpecError(f"EnergyVAD: field 'speech_off': need 0 <= speech_prior < speech_on and "
                            f"speech_off <= speech_on, got speech_off={speech_off}, "
                            f"speech_on={speech_on}, speech_prior={speech_prior}")
        for fld, v in (("floor_fall_tau_s", floor_fall_tau_s), ("speech_tau_s", speech_tau_s)):
            if not v > 0:
                raise SpecError(f"EnergyVAD: field '{fld}': must be > 0, got {v}")
        self.frame_s = float(frame_s)
        self.sample_rate = int(sample_rate)
        self.on_db, self.off_db, self.event_db = float(on_db), float(off_db), float(event_db)
        self.min_dbfs = float(min_dbfs)
        self.rise_db = float(floor_rise_db_per_s) * self.frame_s
        self.fall_a = 1.0 - math.exp(-self.frame_s / floor_fall_tau_s)
        self.classify = bool(classify)
        self.high_max, self.tonal_max, self.flat_max = float(high_max), float(tonal_max), float(flat_max)
        self.tonal_min_hz = float(tonal_min_hz)
        self.speech_a = 1.0 - math.exp(-self.frame_s / speech_tau_s)
        self.speech_on, self.speech_off = float(speech_on), float(speech_off)
        self.speech_prior = float(speech_prior)
        self.gap_frames = max(1, math.ceil(segment_gap_s / self.frame_s - 1e-9))
        self.reset(0)

    def reset(self, n_streams: int) -> None:
        """Start ``n_streams`` fresh streams."""
        self._floor = np.zeros(n_streams)
        self._has_floor = np.zeros(n_streams, bool)
        self._active = np.zeros(n_streams, bool)
        self._score = np.full(n_streams, self.speech_prior)
        self._is_speech = np.zeros(n_streams, bool)
        self._inactive = np.zeros(n_streams, np.int64)

    def reset_stream(self, i: int) -> None:
        """Forget the history of stream ``i``."""
        self._has_floor[i] = False
        self._active[i] = False
        self._score[i] = self.speech_prior
        self._is_speech[i] = False
        self._inactive[i] = 0

    def process(self, frames: np.ndarray, valid: np.ndarray) -> EnergyDecisions:
        """Classify frames ``(n, J, frame_len)`` (``valid`` ``(n, J)``), updating the state."""
        n, n_j = valid.shape
        feats = frame_features(frames, self.sample_rate, spectral=self.classify)
        energy = feats["energy_db"]
        if self.classify:
            tonal = (feats["tonality"] >= self.tonal_max) & (feats["peak_hz"] >= self.tonal_min_hz)
            vote = ((feats["high_ratio"] < self.high_max) & ~tonal
                    & (feats["flatness"] < self.flat_max)).astype(np.float64)
        active = np.zeros((n, n_j), bool)
        loud = np.zeros((n, n_j), bool)
        speech = np.zeros((n, n_j), bool)
        for j in range(n_j):
            v = valid[:, j]
            e = energy[:, j]
            first = v & ~self._has_floor
            self._floor = np.where(first, e, self._floor)
            self._has_floor |= v
            floor = self._floor
            thr = floor + np.where(self._active, self.off_db, self.on_db)
            act = v & (e > thr) & (e > self.min_dbfs)
            self._active = np.where(v, act, self._active)
            active[:, j] = act
            loud[:, j] = act & (e >= floor + self.event_db)
            new_floor = np.where(e < floor, floor + (e - floor) * self.fall_a,
                                 floor + np.minimum(self.rise_db, e - floor))
            self._floor = np.where(v, new_floor, floor)
            if self.classify:
                self._inactive = np.where(v, np.where(act, 0, self._inactive + 1), self._inactive)
                gap = self._inactive >= self.gap_frames
                self._score = np.where(gap, self.speech_prior, self._score)
                self._is_speech &= ~gap
                score = np.where(act, self._score + self.speech_a * (vote[:, j] - self._score), self._score)
                self._score = score
                is_sp = np.where(self._is_speech, score >= self.speech_off, score >= self.speech_on)
                self._is_speech = np.where(act, is_sp, self._is_speech)
                speech[:, j] = act & self._is_speech
        return EnergyDecisions(active=active, loud=loud, speech=speech, energy_db=energy)


# --------------------------------------------------------------------------------------------
# Silero VAD
# --------------------------------------------------------------------------------------------
def _load_silero() -> Any:
    """Load the packaged Silero JIT model without touching the network.

    ``silero_vad`` calls ``torch.set_num_threads(1)`` when imported; the previous setting is
    restored so that building this policy does not change the process's torch threading.
    """
    try:
        import torch
    except ImportError as e:  # pragma: no cover - torch is a core dependency
        raise SpecError("silero-endpoint needs torch; install chimein's dependencies") from e
    n_threads = torch.get_num_threads()
    try:
        import silero_vad
    except ImportError as e:  # pragma: no cover - silero-vad is a core dependency
        raise SpecError("silero-endpoint needs the 'silero-vad' package (pip install silero-vad)") from e
    finally:
        torch.set_num_threads(n_threads)
    with warnings.catch_warnings():  # silero-vad uses torch.jit.load and importlib.resources.path,
        warnings.simplefilter("ignore", DeprecationWarning)  # both deprecated upstream
        return silero_vad.load_silero_vad(onnx=False)  # reads silero_vad/data/silero_vad.jit


class SileroVAD:
    """Batched streaming Silero VAD with one recurrent state per stream.

    The packaged JIT wrapper keeps a single batch state and resets it whenever the batch size
    changes, which does not fit streams that complete different numbers of windows per chunk.
    So this class calls the wrapper's inner network directly with explicit per-stream state:
    input = the stream's last ``context`` samples + one window, state = LSTM ``(h, c)``
    ``(2, n, 128)``, exactly what the wrapper does internally (checked against it in the tests).

    Parameters
    ----------
    sample_rate : int
        16000 (512-sample windows) or 8000 (256-sample windows), as the model supports.

    Examples
    --------
    >>> import numpy as np
    >>> vad = SileroVAD(16000)
    >>> vad.reset(2)
    >>> p = vad.process(np.zeros((2, 3, 512), np.float32), np.ones((2, 3), bool))
    >>> p.shape, bool((p < 0.1).all())
    ((2, 3), True)
    """

    def __init__(self, sample_rate: int = 16000) -> None:
        if sample_rate not in (8000, 16000):
            raise SpecError(f"SileroVAD: field 'sample_rate': Silero runs at 16000 or 8000 Hz, got "
                            f"{sample_rate}; configure the env with sample_rate=16000")
        import torch

        self._torch = torch
        self.sample_rate = int(sample_rate)
        self.window = 512 if sample_rate == 16000 else 256
        self.wrapper = _load_silero()
        net = getattr(self.wrapper, "_model" if sample_rate == 16000 else "_model_8k", None)
        ctx = getattr(net, "context_size_samples", None)
        if net is None or not isinstance(ctx, int):
            raise SpecError("SileroVAD: this silero-vad version's JIT model has no inner network "
                            "with 'context_size_samples'; use silero-vad 6.x")
        self._net = net
        self.context = int(ctx)
        self.reset(0)

    @property
    def frame_s(self) -> float:
        """Window duration in seconds (32 ms)."""
        return self.window / self.sample_rate

    def reset(self, n_streams: int) -> None:
        """Start ``n_streams`` fresh streams (zero LSTM state and context)."""
        torch = self._torch
        self._state = torch.zeros(2, n_streams, 128)
        self._ctx = torch.zeros(n_streams, self.context)

    def reset_stream(self, i: int) -> None:
        """Zero the state of stream ``i`` (what ``reset_states()`` does for one stream)."""
        self._state[:, i] = 0.0
        self._ctx[i] = 0.0

    def process(self, frames: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Speech probabilities of windows ``(n, J, window)``; padding windows get NaN.

        Window ``j`` of every stream that has one is run in a single batched call, so a chunk
        costs ``J`` (2-3 for 80 ms) network calls whatever the number of streams.
        """
        torch = self._torch
        n, n_j = valid.shape
        probs = np.full((n, n_j), np.nan, np.float32)
        x_all = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))
        with torch.no_grad():
            for j in range(n_j):
                idx_np = np.flatnonzero(valid[:, j])
                if len(idx_np) == 0:
                    continue
                if len(idx_np) == n:
                    x = torch.cat([self._ctx, x_all[:, j]], dim=1)
                    out, state = self._net(x, self._state)
                    self._state = state
                    self._ctx = x[:, -self.context:].clone()
                else:
                    idx = torch.from_numpy(idx_np)
                    x = torch.cat([self._ctx[idx], x_all[idx, j]], dim=1)
                    out, state = self._net(x, self._state[:, idx])
                    self._state[:, idx] = state
                    self._ctx[idx] = x[:, -self.context:]
                probs[idx_np, j] = out[:, 0].numpy()
        return probs
