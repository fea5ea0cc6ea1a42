"""Training data for the timing LM: tokenized episodes and deterministic, resumable batches.

Episodes
--------
An :class:`Episode` is a scene reduced to what training needs: the codebook ids of its
reference-microphone audio, exactly as the env plays it (clipped to [-1, 1], the last chunk
zero-padded; see :class:`chimein.envs.core.EpisodeAudio`), and its annotations. An
:class:`EpisodeSource` makes episode ``i`` from

- the scene **sampler** (``sample_scene(config, scene_seed(seed, i))``, rendered with a shared
  RIR cache; ``difficulties`` are cycled over ``i`` so one source mixes presets), or
- a generated **dataset** directory (scene ``i`` of ``SceneDataset``).

With ``cache_dir`` set, tokenized episodes are stored as small ``.npz`` files (ids + spec JSON)
named by a hash of the source, the codebook and the chunk, so later epochs, later runs and
resumed runs do not render again.

Batches
-------
Batch ``b`` is a pure function of ``(seed, b)``: item ``j`` of it is global item
``g = b * batch_size + j``; with a finite ``pool`` of episodes, ``g`` walks epoch-wise through
a seeded permutation of the pool (infinite data otherwise: episode ``g``). The item's own
generator (``SeedSequence([seed, b, j])``) picks the crop (at most ``max_chunks`` chunks, so a
training sequence never exceeds the attention window) and the teacher's jitter. So the stream
of batches does not depend on the number of dataloader workers, and resuming at batch ``b``
reproduces the uninterrupted run. :class:`TrainBatches` is the ``IterableDataset``: worker
``w`` of ``W`` makes batches ``start + w, start + w + W, ...``; the DataLoader's in-order
round robin hands them out as ``start, start + 1, ...``.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from chimein.agents.lm.tokenizer import (
    PAD_ID,
    AudioTokenizer,
    interleave,
)
from chimein.errors import SpecError
from chimein.scenes.spec import Annotations, SceneSpec
from chimein.training.labels import LabelConfig, dense_targets, teacher_targets

__all__ = [
    "BatchMaker",
    "Episode",
    "EpisodeSource",
    "SceneLoader",
    "SourceSpec",
    "TrainBatches",
    "class_weights",
    "label_stats",
    "make_batch",
    "make_loader",
    "read_episode",
    "tokenize_scene",
]


@dataclass(frozen=True, eq=False)
class Episode:
    """A tokenized scene: ``units`` int64 ``(n_chunks * units_per_chunk,)`` and its spec."""

    spec: SceneSpec
    units: np.ndarray
    n_chunks: int

    @property
    def annotations(self) -> Annotations:
        return self.spec.annotations


def tokenize_scene(scene: Any, tokenizer: AudioTokenizer, chunk_s: float) -> Episode:
    """Tokenize a rendered scene the way the env streams it (see the module docstring)."""
    from chimein.envs.core import EnvConfig, EpisodeAudio

    fc = tokenizer.features
    cfg = EnvConfig(chunk_ms=chunk_s * 1000.0, sample_rate=fc.sample_rate)
    ep = EpisodeAudio(scene, cfg)
    n, C = ep.n, cfg.chunk_samples
    audio = ep.samples()[: n * C, 0]
    units = tokenizer.tokenize(audio)
    upc = C // fc.unit_samples
    if C % fc.unit_samples or len(units) != n * upc:
        raise SpecError(
            f"tokenize: chunk_s={chunk_s} is not a whole number of {fc.unit_s * 1000:g} ms units"
        )
    return Episode(scene.spec, units, n)


# ============================================================================================
# Sources
# ============================================================================================
@dataclass(frozen=True)
class SourceSpec:
    """Where episodes come from (picklable, hashable into cache names).

    Parameters
    ----------
    kind
        ``"sampler"`` or ``"dataset"``.
    config
        Sampler config mapping (``kind="sampler"``).
    difficulties
        Presets cycled over the episode index (empty: the config's own ``difficulty``).
    seed
        Base seed of scene seeds (``kind="sampler"``).
    dataset
        Dataset directory (``kind="dataset"``).
    rir_cache_dir
        RIR cache root (None: the scene engine's default).
    """

    kind: str = "sampler"
    config: Mapping[str, Any] = field(default_factory=dict)
    difficulties: tuple[str, ...] = ()
    seed: int = 0
    dataset: str | None = None
    rir_cache_dir: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("sampler", "dataset"):
            raise SpecError(f"data: field 'source': {self.kind!r}; use 'sampler' or 'dataset'")
        if self.kind == "dataset" and not self.dataset:
            raise SpecError(
                "data: field 'dataset': give the dataset directory (chimein scenes generate out=DIR)"
            )
        object.__setattr__(self, "difficulties", tuple(self.difficulties))
        if self.kind == "sampler":
            from chimein.scenes.sampler import SamplerConfig

            # canonical form (every field, unset knobs None): equal configs give equal cache keys
            cfg = json.loads(
                json.dumps(asdict(SamplerConfig.from_mapping(dict(self.config))), default=list)
            )
            object.__setattr__(self, "config", cfg)
            for d in self.difficulties or (None,):
                SamplerConfig.from_mapping({**cfg, **({"difficulty": d} if d else {})})
        else:
            object.__setattr__(self, "config", {})

    def identity(self) -> dict[str, Any]:
        """What decides the episodes (cache key; the RIR cache location does not)."""
        d = asdict(self)
        d.pop("rir_cache_dir")
        # unset knobs are left out, so a sampler that gains a field keeps its keys
        d["config"] = {k: v for k, v in d["config"].items() if v is not None}
        if self.kind == "dataset":
            d["dataset"] = str(Path(str(self.dataset)).resolve())
        return json.loads(json.dumps(d, sort_keys=True))


def read_episode(path: str | Path) -> Episode:
    """An episode from its cache file (``<cache_dir>/episodes-<key>/<i:08d>.npz``: unit ids,
    chunk count and the scene spec). Raises ``OSError``, ``ValueError``, ``KeyError`` or
    :class:`~chimein.errors.SpecError` on a damaged file."""
    with np.load(path, allow_pickle=False) as z:
        spec = SceneSpec.from_dict(json.loads(bytes(z["spec"]).decode("utf-8")))
        return Episode(spec, z["units"].astype(np.int64), int(z["n_chunks"]))


class SceneLoader:
    """Rendered scene ``i`` of a :class:`SourceSpec` (the RIR cache or dataset opens lazily, so
    the loader pickles cheaply into worker processes)."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self._dataset: Any = None
        self._rir: Any = None

    def __len__(self) -> int:
        """Number of scenes (datasets); sampler sources are unbounded (``2**31``)."""
        if self.spec.kind == "dataset":
            return len(self._ds())
        return 2**31

    def _ds(self) -> Any:
        if self._dataset is None:
            from chimein.scenes.dataset import SceneDataset

            self._dataset = SceneDataset(str(self.spec.dataset))
        return self._dataset

    def scene(self, i: int) -> Any:
        """The rendered scene of episode ``i``."""
        if self.spec.kind == "dataset":
            ds = self._ds()
            if not 0 <= i < len(ds):
                raise SpecError(
                    f"data: episode {i} out of range for the {len(ds)}-scene dataset {self.spec.dataset}"
                )
            return ds.load(i)
        from chimein.scenes.render import render
        from chimein.scenes.rir import RIRCache
        from chimein.scenes.sampler import sample_scene, scene_seed

        if self._rir is None:
            self._rir = RIRCache(cache_dir=self.spec.rir_cache_dir)
        cfg = dict(self.spec.config)
        if self.spec.difficulties:
            cfg["difficulty"] = self.spec.difficulties[i % len(self.spec.difficulties)]
        spec = sample_scene(cfg, scene_seed(self.spec.seed, i), scene_id=f"train-{i:07d}")
        return render(spec, cache=self._rir)


class EpisodeSource:
    """Episode ``i`` of a :class:`SourceSpec`, tokenized with a codebook (optionally cached).

    Parameters
    ----------
    spec
        The source.
    tokenizer
        Audio tokenizer (its codebook is part of the cache key).
    chunk_s
        Decision chunk in seconds.
    cache_dir
        Folder of cached episodes (None: no cache).
    """

    def __init__(
        self,
        spec: SourceSpec,
        tokenizer: AudioTokenizer,
        chunk_s: float,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.spec = spec
        self.tok = tokenizer
        self.chunk_s = float(chunk_s)
        self.loader = SceneLoader(spec)
        key = json.dumps(
            {
                "source": spec.identity(),
                "codebook": tokenizer.codebook.digest,
                "chunk_s": self.chunk_s,
                "v": 1,
            },
            sort_keys=True,
        )
        self.key = hashlib.sha256(key.encode()).hexdigest()[:16]
        self.cache = None if cache_dir is None else Path(cache_dir) / f"episodes-{self.key}"

    def __len__(self) -> int:
        return len(self.loader)

    def scene(self, i: int) -> Any:
        """The rendered scene of episode ``i``."""
        return self.loader.scene(i)

    def get(self, i: int) -> Episode:
        """Episode ``i`` (from the cache when present; written to it otherwise)."""
        path = None if self.cache is None else self.cache / f"{int(i):08d}.npz"
        if path is not None and path.is_file():
            try:
                return read_episode(path)
            except (OSError, ValueError, KeyError, SpecError):
                path.unlink(missing_ok=True)  # a damaged cache file: make it again
        ep = tokenize_scene(self.scene(i), self.tok, self.chunk_s)
        if path is not None:
            from chimein.io import atomic_write_bytes

            buf = io.BytesIO()
            np.savez(
                buf,
                units=ep.units.astype(np.uint16),
                n_chunks=np.int64(ep.n_chunks),
                spec=np.frombuffer(ep.spec.to_json().encode("utf-8"), np.uint8),
            )
            atomic_write_bytes(path, buf.getvalue())
        return ep


# ============================================================================================
# Batches
# ============================================================================================
def item_rng(seed: int, b: int, j: int) -> np.random.Generator:
    """The generator of item ``j`` of batch ``b`` (crop and jitter)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), 0xBA7C, int(b), int(j)]))


def episode_index(seed: int, g: int, pool: int | None) -> int:
    """The episode of global item ``g``: epoch-wise permutation of a finite pool, or ``g``."""
    if not pool:
        return int(g)
    epoch, i = divmod(int(g), int(pool))
    perm = np.random.default_rng(np.random.SeedSequence([int(seed), 0xE90C, epoch])).permutation(
        int(pool)
    )
    return int(perm[i])


def make_batch(
    episodes: Sequence[Episode],
    rngs: Sequence[np.random.Generator],
    units_per_chunk: int,
    chunk_s: float,
    max_chunks: int,
    labels: LabelConfig,
) -> dict[str, np.ndarray]:
    """Crop, label and pad episodes into one batch.

    Returns
    -------
    dict
        ``input_ids`` int64 ``(B, T)`` (right-padded with ``<pad>``), ``attention_mask``
        ``(B, T)``, and per chunk ``act_index`` (position whose output predicts the chunk's
        action token), ``act_label`` (0/1/2: the target of
        :func:`~chimein.training.labels.teacher_targets`) and ``act_weight`` (0 for padding and,
        without ``labels.catch_up``, jitter-skipped chunks), each ``(B, C)``; ``dense``
        ``(B, C, len(labels.dense_targets))`` targets of
        :func:`~chimein.training.labels.dense_targets` and ``chunk_mask`` ``(B, C)`` (1 for real
        chunks).
    """
    upc = int(units_per_chunk)
    seqs, idx, lab, wts, dense = [], [], [], [], []
    for ep, rng in zip(episodes, rngs, strict=True):
        acts, target, w = teacher_targets(ep.annotations, ep.n_chunks, chunk_s, labels, rng)
        n = ep.n_chunks
        c0 = 0 if n <= max_chunks else int(rng.integers(0, n - max_chunks + 1))
        c1 = min(n, c0 + max_chunks)
        toks = interleave(ep.units[c0 * upc : c1 * upc], acts[c0:c1], upc, bos=c0 == 0)
        off = 1 if c0 == 0 else 0
        # the action of chunk k sits at off + k*(upc+1) + upc; its predictor one position earlier
        pos = off + np.arange(c1 - c0) * (upc + 1) + upc - 1
        seqs.append(toks)
        idx.append(pos)
        lab.append(target[c0:c1])
        wts.append(w[c0:c1])
        dense.append(dense_targets(ep.annotations, n, chunk_s, labels.dense_targets)[c0:c1])
    T = max(len(s) for s in seqs)
    C = max(len(p) for p in idx)
    B = len(seqs)
    out: dict[str, np.ndarray] = {
        "input_ids": np.full((B, T), PAD_ID, np.int64),
        "attention_mask": np.zeros((B, T), np.int64),
        "act_index": np.zeros((B, C), np.int64),
        "act_label": np.zeros((B, C), np.int64),
        "act_weight": np.zeros((B, C), np.float32),
        "dense": np.zeros((B, C, len(labels.dense_targets)), np.float32),
        "chunk_mask": np.zeros((B, C), np.float32),
    }
    for b in range(B):
        out["input_ids"][b, : len(seqs[b])] = seqs[b]
        out["attention_mask"][b, : len(seqs[b])] = 1
        out["act_index"][b, : len(idx[b])] = idx[b]
        out["act_label"][b, : len(lab[b])] = lab[b]
        out["act_weight"][b, : len(wts[b])] = wts[b]
        out["dense"][b, : len(dense[b])] = dense[b]
        out["chunk_mask"][b, : len(dense[b])] = 1.0
    return out


class BatchMaker:
    """Batch ``b`` as a pure function of the configuration (see the module docstring)."""

    def __init__(
        self,
        source: EpisodeSource,
        batch_size: int,
        max_chunks: int,
        labels: LabelConfig,
        seed: int,
        pool: int | None,
    ) -> None:
        if batch_size < 1 or max_chunks < 1:
            raise SpecError(
                f"data: batch_size ({batch_size}) and max_chunks ({max_chunks}) must be >= 1"
            )
        if pool is not None and pool > len(source):
            raise SpecError(
                f"data: field 'pool': {pool} episodes requested but the source has {len(source)}"
            )
        self.source = source
        self.batch_size = int(batch_size)
        self.max_chunks = int(max_chunks)
        self.labels = labels
        self.seed = int(seed)
        self.pool = None if not pool else int(pool)
        fc = source.tok.features
        self.upc = int(round(source.chunk_s / fc.unit_s))

    def __call__(self, b: int) -> dict[str, np.ndarray]:
        eps, rngs = [], []
        for j in range(self.batch_size):
            g = b * self.batch_size + j
            eps.append(self.source.get(episode_index(self.seed, g, self.pool)))
            rngs.append(item_rng(self.seed, b, j))
        return make_batch(eps, rngs, self.upc, self.source.chunk_s, self.max_chunks, self.labels)


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


class TrainBatches(IterableDataset):  # type: ignore[type-arg]
    """Batches ``start, start + 1, ..., stop - 1`` (forever when ``stop`` is None) of a
    :class:`BatchMaker`, sharded round-robin over dataloader workers."""

    def __init__(self, maker: BatchMaker, start: int = 0, stop: int | None = None) -> None:
        super().__init__()
        self.maker, self.start, self.stop = maker, int(start), stop

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        w, nw = (0, 1) if info is None else (info.id, info.num_workers)
        b = self.start + w
        while self.stop is None or b < self.stop:
            yield {k: torch.from_numpy(v) for k, v in self.maker(b).items()}
            b += nw


def make_loader(maker: BatchMaker, start: int, stop: int | None, workers: int) -> DataLoader:  # type: ignore[type-arg]
    """A DataLoader over :class:`TrainBatches` (``workers`` processes, 0: in this process)."""
    ds = TrainBatches(maker, start, stop)
    kw: dict[str, Any] = {}
    if workers > 0:
        kw = {
            "num_workers": workers,
            "worker_init_fn": _worker_init,
            "prefetch_factor": 2,
            "persistent_workers": False,
            "multiprocessing_context": "fork",
        }
    return DataLoader(ds, batch_size=None, **kw)


def label_stats(
    source: EpisodeSource, indices: Sequence[int], labels: LabelConfig, seed: int
) -> np.ndarray:
    """Counts of WAIT/RESPOND/INTERVENE targets (weight > 0) over episodes ``indices``."""
    counts = np.zeros(3, np.int64)
    for i in indices:
        ep = source.get(int(i))
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x57A7, int(i)]))
        _, a, w = teacher_targets(ep.annotations, ep.n_chunks, source.chunk_s, labels, rng)
        for c in range(3):
            counts[c] += int(((a == c) & (w > 0)).sum())
    return counts


def class_weights(counts: np.ndarray, power: float, max_weight: float) -> np.ndarray:
    """Per-class loss weights ``(n_wait / n_c) ** power`` (capped), WAIT = 1."""
    c = np.maximum(np.asarray(counts, np.float64), 1.0)
    w = np.minimum((c[0] / c) ** float(power), float(max_weight))
    w[0] = 1.0
    return w.astype(np.float32)
