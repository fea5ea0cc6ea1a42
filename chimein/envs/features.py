"""Log-mel features computed with numpy only, identical in batch and streaming use.

One definition of a frame serves the environment (which computes a whole scene's frames at once,
then slices a rolling window each step) and streaming consumers (which push audio chunk by
chunk): frame ``j`` covers samples ``[(j + 1) * hop - win, (j + 1) * hop)`` of the signal,
zero-padded on the left. A frame is therefore *causal*: it is complete as soon as sample
``(j + 1) * hop - 1`` has been heard, and the frames available after ``n`` samples are exactly
frames ``0 .. n // hop - 1``, whatever the chunking. Feeding a signal through
:class:`LogMelStream` in any chunk sizes gives bit-identical frames to :meth:`LogMel.frames` on
the whole signal: both run the same float32 code on the same samples, and the mel projection is
an explicit sum in a fixed order (a BLAS matmul would change its summation order with the
number of frames).

Each frame: Hann window of ``win`` samples (25 ms), zero-padded FFT of ``n_fft`` points (the
next power of two), power spectrum, ``n_mels`` triangular HTK-mel filters (peak 1) from
``fmin`` to ``fmax``, natural log of ``max(energy, floor)``. For input in ``[-1, 1]`` every value
lies in ``[log(floor), log(n_fft * win)]`` (Parseval: the filters sum to at most 1 per FFT bin),
which gives the observation space exact bounds.

Examples
--------
>>> import numpy as np
>>> lm = LogMel(sample_rate=16000, n_mels=64)
>>> x = np.zeros((16000, 1), np.float32)
>>> lm.frames(x).shape
(100, 1, 64)
>>> s = LogMelStream(lm, n_channels=1)
>>> np.array_equal(np.concatenate([s.push(x[:1000]), s.push(x[1000:])]), lm.frames(x))
True
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from chimein.errors import SpecError


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: ``2595 * log10(1 + f / 700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                   fmax: float | None = None) -> np.ndarray:
    """Triangular mel filters, shape ``(n_fft // 2 + 1, n_mels)``, peak 1.

    Filter ``m`` rises from mel point ``m`` to ``m + 1`` and falls to ``m + 2`` (``n_mels + 2``
    points equally spaced in mel between ``fmin`` and ``fmax``); adjacent filters sum to at most
    1 at every FFT bin.
    """
    fmax = sample_rate / 2 if fmax is None else fmax
    if not 0.0 <= fmin < fmax <= sample_rate / 2:
        raise SpecError(f"log-mel: need 0 <= fmin < fmax <= sample_rate/2, got fmin={fmin}, fmax={fmax}")
    if n_mels < 1:
        raise SpecError(f"log-mel: field 'n_mels': need at least 1, got {n_mels}")
    freqs = np.arange(n_fft // 2 + 1) * (sample_rate / n_fft)
    pts = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    lo, mid, hi = pts[:-2, None], pts[1:-1, None], pts[2:, None]
    up = (freqs[None, :] - lo) / np.maximum(mid - lo, 1e-12)
    down = (hi - freqs[None, :]) / np.maximum(hi - mid, 1e-12)
    fb = np.clip(np.minimum(up, down), 0.0, 1.0)
    return np.ascontiguousarray(fb.T)


class LogMel:
    """A log-mel feature extractor (see the module docstring for the exact definition).

    Parameters
    ----------
    sample_rate
        Audio rate in Hz.
    n_mels
        Number of mel bands (default 64).
    win_ms, hop_ms
        Analysis window and hop (default 25 ms / 10 ms); both must be whole samples.
    fmin, fmax
        Band edges of the filterbank in Hz (default 0 .. Nyquist).
    floor
        Energies are clipped to at least this before the log (default 1e-10, so digital
        silence maps to ``log(1e-10)``, about -23).
    """

    def __init__(self, sample_rate: int = 16000, n_mels: int = 64, win_ms: float = 25.0,
                 hop_ms: float = 10.0, fmin: float = 0.0, fmax: float | None = None,
                 floor: float = 1e-10) -> None:
        win = win_ms * sample_rate / 1000.0
        hop = hop_ms * sample_rate / 1000.0
        if abs(win - round(win)) > 1e-9 or abs(hop - round(hop)) > 1e-9 or round(hop) < 1:
            raise SpecError(f"log-mel: win_ms={win_ms} and hop_ms={hop_ms} must be whole samples at "
                            f"{sample_rate} Hz")
        if not round(hop) <= round(win):
            raise SpecError(f"log-mel: hop_ms ({hop_ms}) must not exceed win_ms ({win_ms})")
        if not floor > 0:
            raise SpecError(f"log-mel: field 'floor': must be > 0, got {floor}")
        self.sample_rate = int(sample_rate)
        self.n_mels = int(n_mels)
        self.win = int(round(win))
        self.hop = int(round(hop))
        self.n_fft = 1 << (self.win - 1).bit_length()
        self.floor = float(floor)
        self.window = np.hanning(self.win + 1)[:-1]  # periodic Hann
        self.fb = mel_filterbank(self.sample_rate, self.n_fft, self.n_mels, fmin, fmax)
        # Sparse form of the filterbank: for support position s, filter m reads bin
        # idx[s, m] with weight w[s, m] (0 where the filter is narrower). Summing these in a
        # fixed Python-level order keeps every frame's value independent of how many frames are
        # computed together (a BLAS matmul changes its summation order with the matrix shape).
        nz = [np.flatnonzero(self.fb[:, m]) for m in range(self.n_mels)]
        width = max(1, max(len(z) for z in nz))
        self._idx = np.zeros((width, self.n_mels), np.intp)
        w = np.zeros((width, self.n_mels))
        for m, z in enumerate(nz):
            self._idx[: len(z), m] = z
            w[: len(z), m] = self.fb[z, m]
        self._w = w.astype(np.float32)[:, :, None]
        self._window32 = self.window.astype(np.float32)
        self._low32 = np.float32(self.low)
        self._high32 = np.float32(self.high)

    @property
    def low(self) -> float:
        """Smallest possible value (``log(floor)``)."""
        return float(np.log(self.floor))

    @property
    def high(self) -> float:
        """Largest possible value for input in ``[-1, 1]`` (``log(n_fft * win)``)."""
        return float(math.log(self.n_fft * self.win))

    def _compute(self, padded: np.ndarray, n_frames: int) -> np.ndarray:
        """Frames from ``padded`` (its sample 0 is the first sample of frame 0's window)."""
        ch = padded.shape[1]
        if n_frames <= 0:
            return np.zeros((0, ch, self.n_mels), np.float32)
        need = (n_frames - 1) * self.hop + self.win
        seg = np.asarray(padded[:need], dtype=np.float32)
        # (n_frames, ch, win) strided view -> windowed copy -> FFT -> power, laid out
        # (bins, frames * ch) so that the filter gathers below copy contiguous rows.
        w = sliding_window_view(seg, self.win, axis=0)[:: self.hop]
        spec = np.fft.rfft(w * self._window32, n=self.n_fft, axis=-1)
        power = (spec.real * spec.real + spec.imag * spec.imag).reshape(-1, spec.shape[-1]).T.copy()
        mel = power[self._idx[0]] * self._w[0]
        for s in range(1, self._idx.shape[0]):
            mel += power[self._idx[s]] * self._w[s]
        np.maximum(mel, self.floor, out=mel)
        out = np.log(mel)
        np.clip(out, self._low32, self._high32, out=out)
        return np.ascontiguousarray(out.T.reshape(n_frames, ch, self.n_mels))

    def frames(self, x: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Frames ``start .. stop - 1`` of signal ``x`` (``(samples,)`` or ``(samples, ch)``).

        ``stop`` defaults to ``len(x) // hop`` (every complete frame). Returns float32 of shape
        ``(stop - start, ch, n_mels)`` (``ch = 1`` for mono input).
        """
        x2 = x[:, None] if x.ndim == 1 else x
        total = x2.shape[0] // self.hop
        stop = total if stop is None else stop
        if not 0 <= start <= stop <= total:
            raise ValueError(f"log-mel: frames [{start}, {stop}) outside the {total} complete frames")
        first = (start + 1) * self.hop - self.win  # first sample needed
        last = stop * self.hop
        if first >= 0:
            padded = x2[first:last]
        else:
            padded = np.concatenate([np.zeros((-first, x2.shape[1]), x2.dtype), x2[:last]])
        return self._compute(padded, stop - start)


class LogMelStream:
    """Push audio chunks of any size; get each newly completed frame exactly once.

    The frames equal :meth:`LogMel.frames` of the concatenated signal (see module docstring).
    """

    def __init__(self, logmel: LogMel, n_channels: int = 1) -> None:
        self.lm = logmel
        self.n_channels = int(n_channels)
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next sample pushed is sample 0 of a new signal."""
        lead = self.lm.win - self.lm.hop
        self._tail = np.zeros((lead, self.n_channels), np.float32)

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Add ``chunk`` (``(n,)`` or ``(n, ch)``); return the completed frames ``(k, ch, n_mels)``."""
        c = chunk[:, None] if chunk.ndim == 1 else chunk
        if c.shape[1] != self.n_channels:
            raise ValueError(f"log-mel stream: expected {self.n_channels} channels, got {c.shape[1]}")
        buf = np.concatenate([self._tail, c.astype(np.float32)])
        lead = self.lm.win - self.lm.hop
        n_new = (buf.shape[0] - lead) // self.lm.hop
        out = self.lm._compute(buf, n_new)
        self._tail = buf[n_new * self.lm.hop:]
        return out
