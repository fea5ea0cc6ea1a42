"""The audio tokenizer and the token vocabulary of the timing language model.

Audio becomes tokens in three steps, all causal so that streaming and whole-signal tokenization
give the same tokens:

1. **Log-mel frames** of the reference microphone (channel 0; other channels are ignored --
   the simplest multi-mic rule, the one the env's baselines follow too) from
   :class:`chimein.envs.features.LogMel` (25 ms window, 10 ms hop, ``n_mels`` bands, causal:
   frame ``j`` ends at sample ``(j + 1) * hop``).
2. **Units**: optionally each frame minus its bands' causal running mean
   (``frame_norm="running_mean"``, :class:`RunningBandMean`: a log-domain mean normalisation,
   so a microphone's gain and frequency response, which add a constant per band to log
   energies, cancel), then ``frames_per_unit`` consecutive frames (4 -> 40 ms) concatenated into
   one vector, normalised per dimension with a *fixed* mean and standard deviation measured when
   the codebook was fitted (never per-clip statistics, which would need the future).
3. **Quantisation** against a k-means :class:`Codebook` (256-1024 centroids): the unit's token
   is its nearest centroid (squared Euclidean distance, computed in float64 so that the choice
   does not depend on how many units are tokenized together).

The **token stream** of an episode interleaves, for every decision chunk (80 ms = 2 units by
default), the chunk's unit tokens and then one action token::

    <bos> <u17> <u3> <wait> <u250> <u9> <wait> ... <u4> <u4> <respond> ...

Vocabulary (ids fixed by construction): ``<pad>`` 0, ``<bos>`` 1, ``<eos>`` 2, ``<unk>`` 3,
``<wait>`` 4, ``<respond>`` 5, ``<intervene>`` 6 (in the order of
:class:`~chimein.scenes.spec.Action`), then ``<u0>`` ... ``<u{K-1}>``. :func:`build_hf_tokenizer`
wraps it as a Hugging Face ``PreTrainedTokenizerFast`` (a ``tokenizers`` WordLevel model built
in memory, no download) so TRL and ``transformers`` can use the stream. The action tokens are
deliberately *not* special tokens: TRL decodes completions with ``skip_special_tokens=True``.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> fc = FeatureConfig(n_mels=8)
>>> cb = Codebook(rng.normal(size=(16, fc.unit_dim)).astype(np.float32),
...               np.zeros(fc.unit_dim, np.float32), np.ones(fc.unit_dim, np.float32), fc)
>>> tok = AudioTokenizer(cb)
>>> x = (0.1 * rng.normal(size=16000)).astype(np.float32)
>>> ids = tok.tokenize(x)
>>> ids.shape, ids.dtype
((25,), dtype('int64'))
>>> stream = tok.stream(1)
>>> chunks = [stream.push(x[None, i:i + 1280]) for i in range(0, 16000, 1280)][:-1]
>>> bool(np.array_equal(np.concatenate(chunks, axis=1)[0], ids[:24]))
True
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chimein.config import read_config
from chimein.envs.features import LogMel
from chimein.errors import ChimeinError, ConfigError, SpecError
from chimein.scenes.spec import Action

__all__ = [
    "ACTION_IDS",
    "ACTION_TOKENS",
    "BOS_ID",
    "EOS_ID",
    "N_SPECIAL",
    "PAD_ID",
    "SPECIAL_TOKENS",
    "UNIT_OFFSET",
    "UNK_ID",
    "AudioTokenizer",
    "Codebook",
    "FeatureConfig",
    "RunningBandMean",
    "UnitStream",
    "build_hf_tokenizer",
    "interleave",
    "signal_units",
    "unit_token",
    "vocab_tokens",
]

#: Special tokens (registered as such in the HF tokenizer), ids 0..3.
SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
#: Action tokens, ids 4..6, in the order of :class:`~chimein.scenes.spec.Action`.
ACTION_TOKENS: tuple[str, ...] = ("<wait>", "<respond>", "<intervene>")
ACTION_IDS: tuple[int, ...] = (4, 5, 6)
N_SPECIAL = len(SPECIAL_TOKENS) + len(ACTION_TOKENS)
#: Id of unit token ``<u0>``.
UNIT_OFFSET = N_SPECIAL
CODEBOOK_VERSION = 1
#: Per-band normalisations of log-mel frames (:attr:`FeatureConfig.frame_norm`).
FRAME_NORMS: tuple[str, ...] = ("none", "running_mean")
#: fitting timings (s): printed by `chimein train codebook`, left out of the saved file
TIMING_KEYS = ("collect_s", "fit_s")

assert [int(a) for a in Action] == [i - ACTION_IDS[0] for i in ACTION_IDS]


def unit_token(i: int) -> str:
    """The vocabulary string of unit ``i`` (``"<u17>"``)."""
    return f"<u{int(i)}>"


def vocab_tokens(n_units: int) -> list[str]:
    """Every token string, in id order: specials, actions, units."""
    return [*SPECIAL_TOKENS, *ACTION_TOKENS, *(unit_token(i) for i in range(int(n_units)))]


# ============================================================================================
# Features
# ============================================================================================
@dataclass(frozen=True)
class FeatureConfig:
    """How audio becomes unit vectors (stored in the codebook and the checkpoint); the log-mel
    analysis is :class:`chimein.envs.features.LogMel`'s."""

    sample_rate: int = 16000
    """Audio rate in Hz."""
    n_mels: int = 32
    """Mel bands per frame; a unit vector is ``frames_per_unit`` frames of ``n_mels`` log-mel
    energies (``unit_dim`` values)."""
    win_ms: float = 25.0
    """Analysis window in ms (a whole number of samples)."""
    hop_ms: float = 10.0
    """Frame hop in ms (a whole number of samples)."""
    fmin: float = 60.0
    """Lowest filterbank edge in Hz."""
    fmax: float = 8000.0
    """Highest filterbank edge in Hz (at most Nyquist)."""
    frames_per_unit: int = 4
    """Frames stacked into one unit: 4 frames of 10 ms = 40 ms units."""
    frame_norm: str = "none"
    """Per-band normalisation of each frame before units are formed: ``none`` (absolute log
    energies) or ``running_mean`` (each band minus its causal running mean, see
    :class:`RunningBandMean`: invariant to the microphone's gain and frequency response, so
    the codebook's entries describe spectral change rather than level and device)."""
    frame_norm_s: float = 2.0
    """Time constant in seconds of the running mean (``frame_norm="running_mean"``)."""

    def __post_init__(self) -> None:
        if not 1 <= int(self.frames_per_unit) <= 100:
            raise ConfigError(
                f"features: field 'frames_per_unit': must be in [1, 100], got {self.frames_per_unit}"
            )
        if self.frame_norm not in FRAME_NORMS:
            raise ConfigError(
                f"features: field 'frame_norm': one of {list(FRAME_NORMS)}, got {self.frame_norm!r}"
            )
        if not (isinstance(self.frame_norm_s, (int, float)) and self.frame_norm_s * 1000.0
                >= self.hop_ms):
            raise ConfigError(
                f"features: field 'frame_norm_s': a time constant of at least one hop "
                f"({self.hop_ms / 1000.0:g} s), got {self.frame_norm_s!r}"
            )
        if self.fmax > self.sample_rate / 2:
            raise ConfigError(
                f"features: field 'fmax': {self.fmax} Hz is above Nyquist "
                f"({self.sample_rate / 2} Hz); lower it"
            )
        self.logmel()  # validates the analysis parameters

    def logmel(self) -> LogMel:
        """The log-mel extractor of this configuration."""
        return LogMel(self.sample_rate, self.n_mels, self.win_ms, self.hop_ms, self.fmin, self.fmax)

    @property
    def hop(self) -> int:
        """Frame hop in samples."""
        return int(round(self.hop_ms * self.sample_rate / 1000.0))

    @property
    def unit_samples(self) -> int:
        """Samples per unit (640 at 16 kHz, 10 ms hop, 4 frames)."""
        return self.hop * int(self.frames_per_unit)

    @property
    def unit_s(self) -> float:
        """Unit duration in seconds."""
        return self.unit_samples / self.sample_rate

    @property
    def unit_dim(self) -> int:
        """Dimension of a unit vector (``frames_per_unit * n_mels``)."""
        return int(self.frames_per_unit) * int(self.n_mels)

    @property
    def norm_alpha(self) -> float:
        """Per-frame update weight of the running mean (``hop / frame_norm_s``)."""
        return min(1.0, self.hop_ms / (1000.0 * float(self.frame_norm_s)))

    def to_dict(self) -> dict[str, Any]:
        """The fields as a mapping; the ``frame_norm*`` fields are left out when ``frame_norm``
        is ``none``, so codebooks fitted before the option existed keep their files and
        digests (reading them gives the same configuration)."""
        d = asdict(self)
        if self.frame_norm == "none":
            del d["frame_norm"], d["frame_norm_s"]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, where: str = "features") -> FeatureConfig:
        """Build from a mapping (a codebook file, the ``codebook.features`` config) with
        :func:`chimein.config.read_config`; unknown keys and wrong types are an error."""
        return read_config(cls, d, where)


def reference_channel(audio: np.ndarray, where: str = "audio") -> np.ndarray:
    """float32 mono signal: channel 0 (the reference microphone) of ``(samples, mics)`` audio,
    or the signal itself if it is 1-D."""
    x = np.asarray(audio)
    if x.ndim == 2:
        x = x[:, 0]
    elif x.ndim != 1:
        raise SpecError(
            f"{where}: expected (samples,) or (samples, mics) audio, got shape {x.shape}"
        )
    return np.ascontiguousarray(x, dtype=np.float32)


class RunningBandMean:
    """Causal per-band running mean of log-mel frames, subtracted from each frame, for ``n``
    streams (``FeatureConfig.frame_norm="running_mean"``).

    Frame ``t`` of a stream becomes ``f[t] - m[t-1]``: its deviation from the mean of the frames
    before it (the first frame becomes 0). ``m`` is the cumulative mean while fewer than
    ``1 / alpha`` frames have been seen, then an exponential moving average with weight
    ``alpha = hop / frame_norm_s``: ``m[t] = m[t-1] + max(alpha, 1 / (t + 1)) (f[t] - m[t-1])``.
    Log energies turn a device's gain and frequency response into a constant per band, which
    the subtraction removes; speech onsets, alarms and the silence after a turn stand out as
    departures from the recent past. Computed frame by frame in float64, so feeding a signal
    in chunks gives bit-identical values to feeding it whole.

    Examples
    --------
    >>> rbm = RunningBandMean(1, 2, alpha=0.5)
    >>> f = np.array([[[1.0, 0.0]], [[3.0, 0.0]], [[3.0, 4.0]]])
    >>> rbm.apply(f)[:, 0].tolist()
    [[0.0, 0.0], [2.0, 0.0], [1.0, 4.0]]
    """

    def __init__(self, n_streams: int, n_mels: int, alpha: float) -> None:
        self.alpha = float(alpha)
        self.mean = np.zeros((int(n_streams), int(n_mels)), np.float64)
        self.count = np.zeros(int(n_streams), np.int64)

    def reset(self, i: int | None = None) -> None:
        """Forget stream ``i``'s history (every stream's when None)."""
        if i is None:
            self.count[:] = 0
        else:
            self.count[i] = 0

    def apply(self, frames: np.ndarray, streams: np.ndarray | None = None) -> np.ndarray:
        """Normalise ``frames`` ``(n_frames, B, n_mels)`` of the ``B`` streams ``streams``
        (None: all, in order) and advance their state; returns float32 of the same shape."""
        idx = slice(None) if streams is None else np.asarray(streams)
        m, c = self.mean[idx].copy(), self.count[idx].copy()
        out = np.empty(frames.shape, np.float32)
        for j in range(frames.shape[0]):
            f = frames[j].astype(np.float64)
            first = c == 0
            m[first] = f[first]
            out[j] = f - m
            c += 1
            m += np.maximum(self.alpha, 1.0 / c)[:, None] * (f - m)
        self.mean[idx], self.count[idx] = m, c
        return out


def frames_to_units(frames: np.ndarray, frames_per_unit: int) -> np.ndarray:
    """Group frames ``(n_frames, n_mels)`` into unit vectors ``(n_frames // fpu, fpu * n_mels)``
    (frames in time order within a unit; a trailing partial unit is dropped)."""
    n = frames.shape[0] // frames_per_unit
    return frames[: n * frames_per_unit].reshape(n, frames_per_unit * frames.shape[-1])


def signal_units(x: np.ndarray, features: FeatureConfig) -> np.ndarray:
    """Raw unit vectors ``(n_units, unit_dim)`` of a mono signal: log-mel frames, the
    configured frame normalisation, grouped into units (the tokenizer's and the codebook
    fit's one definition)."""
    frames = features.logmel().frames(x)
    if features.frame_norm == "running_mean":
        frames = RunningBandMean(1, features.n_mels, features.norm_alpha).apply(frames)
    return frames_to_units(frames[:, 0, :], int(features.frames_per_unit))


# ============================================================================================
# Codebook
# ============================================================================================
@dataclass(frozen=True, eq=False)
class Codebook:
    """K-means centroids over normalised unit vectors, with the normalisation and feature config.

    Attributes
    ----------
    centroids
        float32 ``(K, D)`` in normalised space.
    mean, std
        float32 ``(D,)``: ``(unit - mean) / std`` is the normalised unit (fixed statistics of
        the data the codebook was fitted on; causal by construction).
    features
        The :class:`FeatureConfig` that produced the units.
    meta
        Provenance (scenes, seed, iterations, inertia), stored in the safetensors metadata.
    """

    centroids: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    features: FeatureConfig
    meta: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        c = np.ascontiguousarray(self.centroids, dtype=np.float32)
        d = self.features.unit_dim
        if c.ndim != 2 or c.shape[1] != d or c.shape[0] < 2:
            raise SpecError(
                f"codebook: centroids must be (K >= 2, {d}) for these features, got {c.shape}"
            )
        for name in ("mean", "std"):
            v = np.asarray(getattr(self, name), np.float32)
            if v.shape != (d,) or not np.isfinite(v).all():
                raise SpecError(
                    f"codebook: field '{name}' must be finite of shape ({d},), got {v.shape}"
                )
            object.__setattr__(self, name, np.ascontiguousarray(v))
        if not (self.std > 0).all():
            raise SpecError("codebook: field 'std': every entry must be > 0")
        if not np.isfinite(c).all():
            raise SpecError("codebook: centroids contain NaN or inf")
        object.__setattr__(self, "centroids", c)
        import torch

        c64 = torch.from_numpy(c.astype(np.float64))
        object.__setattr__(self, "_c64t", c64.T.contiguous())
        object.__setattr__(self, "_c2t", (c64 * c64).sum(1))

    @property
    def size(self) -> int:
        """Number of centroids ``K``."""
        return int(self.centroids.shape[0])

    @property
    def digest(self) -> str:
        """sha256 of centroids, statistics and feature config (names cached token files)."""
        h = hashlib.sha256()
        for a in (self.centroids, self.mean, self.std):
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(json.dumps(self.features.to_dict(), sort_keys=True).encode())
        return h.hexdigest()

    def normalize(self, units: np.ndarray) -> np.ndarray:
        """``(units - mean) / std`` as float32."""
        return ((np.asarray(units, np.float32) - self.mean) / self.std).astype(
            np.float32, copy=False
        )

    def assign(self, units: np.ndarray) -> np.ndarray:
        """Nearest-centroid ids (int64 ``(n,)``) of raw (unnormalised) unit vectors ``(n, D)``.

        Distances are computed in float64 (``|c|^2 - 2 x.c``), so the choice is the same
        whether units are tokenized one chunk at a time or a whole episode at once.
        """
        import torch

        x = self.normalize(units).astype(np.float64)
        if x.shape[0] == 0:
            return np.zeros(0, np.int64)
        # torch rather than numpy's BLAS: it honours torch.set_num_threads (multi-threaded BLAS on
        # tiny matrices is slow on a busy machine)
        d = self._c2t[None, :] - 2.0 * (torch.from_numpy(x) @ self._c64t)  # type: ignore[attr-defined]
        return torch.argmin(d, dim=1).numpy().astype(np.int64)

    # ---------------------------------------------------------------- IO (safetensors only)
    def save(self, path: str | Path) -> None:
        """Write ``centroids``/``mean``/``std`` and the feature config to a safetensors file
        (atomically)."""
        from safetensors.numpy import save

        from chimein.io import atomic_write_bytes, canonical_safetensors

        meta = {
            "format": "chimein-codebook",
            "version": str(CODEBOOK_VERSION),
            "features": json.dumps(self.features.to_dict(), sort_keys=True),
            # wall-clock timings are reported when fitting, not stored: the file is a function
            # of the data and the seed
            "meta": json.dumps({k: v for k, v in dict(self.meta or {}).items() if k not in TIMING_KEYS},
                               sort_keys=True, default=str),
        }
        data = save(
            {"centroids": self.centroids, "mean": self.mean, "std": self.std}, metadata=meta
        )
        atomic_write_bytes(path, canonical_safetensors(data))

    @classmethod
    def load(cls, path: str | Path) -> Codebook:
        """Read a codebook written by :meth:`save`; a clear :class:`SpecError` otherwise."""
        from safetensors import safe_open

        p = Path(path)
        if not p.is_file():
            raise SpecError(
                f"{p}: codebook file not found; fit one with `chimein train codebook out=...`"
            )
        try:
            with safe_open(str(p), framework="numpy") as f:
                meta = f.metadata() or {}
                arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open API
        except Exception as e:  # safetensors raises its own error types
            raise SpecError(f"{p}: not a safetensors codebook ({e})") from None
        if meta.get("format") != "chimein-codebook":
            raise SpecError(
                f"{p}: not a chimein codebook (metadata 'format' is {meta.get('format')!r})"
            )
        if int(meta.get("version", 0)) > CODEBOOK_VERSION:
            raise SpecError(
                f"{p}: codebook version {meta.get('version')} is newer than this chimein; upgrade"
            )
        missing = sorted({"centroids", "mean", "std"} - set(arrays))
        if missing:
            raise SpecError(f"{p}: codebook lacks tensor {missing[0]!r}")
        try:
            features = FeatureConfig.from_dict(
                json.loads(meta.get("features", "{}")), where=f"{p}: features"
            )
            extra = json.loads(meta.get("meta", "{}"))
        except json.JSONDecodeError as e:
            raise SpecError(f"{p}: malformed codebook metadata ({e})") from None
        try:
            return cls(arrays["centroids"], arrays["mean"], arrays["std"], features, extra)
        except ChimeinError as e:
            raise SpecError(f"{p}: {e}") from None


# ============================================================================================
# Tokenizer
# ============================================================================================
class AudioTokenizer:
    """Audio -> unit ids with a :class:`Codebook` (whole signals, or streams via :meth:`stream`).

    Parameters
    ----------
    codebook
        The fitted codebook (it carries the feature configuration).
    """

    def __init__(self, codebook: Codebook) -> None:
        self.codebook = codebook
        self.features = codebook.features
        self.logmel = self.features.logmel()

    @property
    def n_units(self) -> int:
        """Codebook size (number of distinct unit tokens)."""
        return self.codebook.size

    def units(self, audio: np.ndarray) -> np.ndarray:
        """Raw unit vectors ``(n_units, D)`` of a signal (mono, or channel 0 of multi-mic)."""
        return signal_units(reference_channel(audio), self.features)

    def tokenize(self, audio: np.ndarray) -> np.ndarray:
        """Unit ids (int64, ``0..K-1``) of every complete unit of ``audio``."""
        return self.codebook.assign(self.units(audio))

    def stream(self, n_streams: int) -> UnitStream:
        """A batched causal tokenizer for ``n_streams`` streams."""
        return UnitStream(self, n_streams)


class UnitStream:
    """Push audio chunks of ``n`` streams (all at once, or any subset); get each stream's new
    unit ids.

    Chunks must be a whole number of units (640 samples at the defaults). The ids equal
    :meth:`AudioTokenizer.tokenize` of each stream's concatenated signal (frames are
    bit-identical, see :mod:`chimein.envs.features`).
    """

    def __init__(self, tokenizer: AudioTokenizer, n_streams: int) -> None:
        self.tok = tokenizer
        self.n = int(n_streams)
        lm = tokenizer.logmel
        # history kept before each chunk: a whole number of hops covering the window overlap
        self._lead_hops = max(1, math.ceil((lm.win - lm.hop) / lm.hop))
        self._lead = self._lead_hops * lm.hop
        self._hist = np.zeros((self._lead, self.n), np.float32)
        f = tokenizer.features
        self._norm = (
            RunningBandMean(self.n, f.n_mels, f.norm_alpha) if f.frame_norm == "running_mean"
            else None
        )

    def reset(self, i: int | None = None) -> None:
        """Start stream ``i`` (all streams when None) from silence (sample 0 of a new signal)."""
        if i is None:
            self._hist[:] = 0.0
        else:
            self._hist[:, i] = 0.0
        if self._norm is not None:
            self._norm.reset(i)

    def push(self, chunk: np.ndarray, streams: np.ndarray | None = None) -> np.ndarray:
        """``chunk`` float32 ``(B, samples)`` -> unit ids int64 ``(B, units)``.

        ``streams``: the ``B`` distinct streams the rows belong to (a server steps whichever
        streams sent a chunk); None: every stream, in order (``B = n_streams``).
        """
        c = np.asarray(chunk, np.float32)
        B = self.n if streams is None else len(streams)
        if c.ndim != 2 or c.shape[0] != B:
            raise SpecError(
                f"unit stream: expected a chunk of shape ({B}, samples), got {c.shape}"
            )
        us = self.tok.features.unit_samples
        if c.shape[1] % us:
            raise SpecError(
                f"unit stream: chunk of {c.shape[1]} samples is not a whole number of "
                f"{us}-sample units; use chunks that are multiples of "
                f"{self.tok.features.unit_s * 1000:g} ms"
            )
        lm = self.tok.logmel
        hist = self._hist if streams is None else self._hist[:, streams]
        x = np.concatenate([hist, c.T])
        n_fr = c.shape[1] // lm.hop
        fr = lm.frames(x, self._lead_hops, self._lead_hops + n_fr)  # (n_fr, B, mels)
        if self._norm is not None:
            fr = self._norm.apply(fr, streams)
        if streams is None:
            self._hist = np.ascontiguousarray(x[x.shape[0] - self._lead :])
        else:
            self._hist[:, streams] = x[x.shape[0] - self._lead :]
        fpu = int(self.tok.features.frames_per_unit)
        n_u = n_fr // fpu
        units = fr.transpose(1, 0, 2).reshape(B * n_u, fpu * lm.n_mels)
        return self.tok.codebook.assign(units).reshape(B, n_u)


# ============================================================================================
# Token streams
# ============================================================================================
def interleave(
    unit_ids: np.ndarray, actions: np.ndarray, units_per_chunk: int, bos: bool = True
) -> np.ndarray:
    """The token ids of an episode: ``[<bos>] (units of chunk k, action k)*``.

    Parameters
    ----------
    unit_ids
        int ``(n_chunks * units_per_chunk,)`` codebook ids (``0..K-1``).
    actions
        int ``(n_chunks,)`` actions (0 WAIT, 1 RESPOND, 2 INTERVENE).
    units_per_chunk
        Unit tokens per decision chunk.
    bos
        Start with ``<bos>`` (a stream's true beginning; crops of later parts have none).

    Returns
    -------
    np.ndarray
        int64 ``(bos + n_chunks * (units_per_chunk + 1),)``.
    """
    u = np.asarray(unit_ids, np.int64)
    a = np.asarray(actions, np.int64)
    n = len(a)
    if len(u) != n * units_per_chunk:
        raise SpecError(
            f"token stream: {len(u)} unit ids for {n} chunks of {units_per_chunk} units"
        )
    body = np.empty((n, units_per_chunk + 1), np.int64)
    body[:, :units_per_chunk] = u.reshape(n, units_per_chunk) + UNIT_OFFSET
    body[:, units_per_chunk] = a + ACTION_IDS[0]
    out = body.reshape(-1)
    return np.concatenate([[BOS_ID], out]) if bos else out


def build_hf_tokenizer(n_units: int) -> Any:
    """A ``transformers.PreTrainedTokenizerFast`` over the vocabulary (WordLevel, whitespace
    split, built in memory: nothing is downloaded).

    ``<pad>``, ``<bos>``, ``<eos>``, ``<unk>`` are its special tokens; the action tokens are
    ordinary tokens so that decoding with ``skip_special_tokens=True`` keeps them.

    Examples
    --------
    >>> tok = build_hf_tokenizer(8)
    >>> ids = tok("<bos> <u0> <u7> <respond>")["input_ids"]
    >>> ids
    [1, 7, 14, 5]
    >>> tok.decode(ids, skip_special_tokens=True)
    '<u0> <u7> <respond>'
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(vocab_tokens(n_units))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins tokens with spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=1 << 20,
        clean_up_tokenization_spaces=False,
    )


def ids_to_text(ids: Sequence[int], n_units: int) -> str:
    """Token ids as the whitespace-separated text the HF tokenizer reads."""
    toks = vocab_tokens(n_units)
    return " ".join(toks[int(i)] for i in ids)
