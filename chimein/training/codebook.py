"""Fit the audio codebook: k-means over 40 ms log-mel units of generated scenes, in torch.

Steps: render scenes (sampler with a room pool for speed, or a dataset directory), take the
reference microphone's log-mel units exactly as the env plays the audio (clipped to [-1, 1]),
keep at most ``max_units_per_scene`` per scene (a seeded random subset, so long scenes do not
dominate), normalise with the pooled mean/std (stored with the codebook: the tokenizer's fixed,
causal normalisation), then run k-means:

- **init**: greedy k-means++ on a seeded subsample (each new centre is the best of
  ``2 + log k`` candidates drawn with probability proportional to the squared distance, as in
  scikit-learn), all in batched torch ops with a seeded ``torch.Generator``;
- **Lloyd iterations** over all units (distances in blocks, ``index_add_`` centroid updates)
  until the relative inertia change falls below ``tol``; an emptied cluster is re-seeded with
  the unit farthest from its centre.

Deterministic for a given seed and thread count (torch CPU kernels are).

Examples
--------
>>> import torch
>>> x = torch.cat([torch.randn(200, 2) + 5, torch.randn(200, 2) - 5])
>>> c, inertia, iters = kmeans(x, 2, seed=0)
>>> sorted(round(float(v)) for v in c[:, 0])
[-5, 5]
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from chimein.agents.lm.tokenizer import Codebook, FeatureConfig, signal_units
from chimein.config import read_config
from chimein.errors import ConfigError, SpecError
from chimein.training.data import SceneLoader, SourceSpec

__all__ = ["CodebookConfig", "collect_units", "describe", "fit_codebook", "kmeans", "scene_units"]


@dataclass(frozen=True)
class CodebookConfig:
    """Settings of ``chimein train codebook`` (``chimein/configs/training/codebook.yaml``, the
    ``codebook`` group): which scenes the units come from, how many, and the k-means fit."""

    size: int = 512
    """Centroids (codebook entries; 256-1024 are typical)."""
    n_scenes: int = 240
    """Scenes rendered for fitting (at most the dataset's size with ``dataset``)."""
    scene_seed: int = 1000
    """Base seed of those scenes (scene ``i``: ``scene_seed(scene_seed, i)``)."""
    difficulties: tuple[str, ...] = ("easy", "default", "hard")
    """Difficulty presets cycled over the scenes."""
    dataset: str | None = None
    """A dataset directory (``chimein scenes generate``) to fit on instead of the sampler."""
    max_units_per_scene: int = 1500
    """Units kept per scene: a seeded random subset of them (drawn with ``seed``), so long
    scenes do not dominate the fit."""
    seed: int = 0
    """Seed of the k-means (its init and subsampling) and of the per-scene unit subsets."""
    iters: int = 30
    """Lloyd iterations at most: the fit stops early once the inertia changes by less than
    1e-4 (relative)."""
    init_sample: int = 20000
    """Units the k-means++ init runs on."""
    workers: int = 1
    """Processes rendering the scenes (0: all cores); the units do not depend on it (scene
    order is kept)."""
    threads: int = 1
    """Torch threads of the k-means (the fit is deterministic for a given number)."""
    rir_cache_dir: str | None = None
    """RIR cache root; None: the scene engine's default."""
    features: FeatureConfig = field(default_factory=FeatureConfig)
    """How audio becomes unit vectors (stored in the codebook)."""

    def __post_init__(self) -> None:
        for name, low in (("size", 2), ("n_scenes", 1), ("max_units_per_scene", 1), ("iters", 1),
                          ("init_sample", 1), ("workers", 0), ("threads", 1)):
            if getattr(self, name) < low:
                raise ConfigError(f"codebook: field {name!r}: must be >= {low}, got {getattr(self, name)}")

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | CodebookConfig | None, where: str = "codebook") -> CodebookConfig:
        """Build from the ``codebook`` config group with :func:`chimein.config.read_config`
        (unknown keys and wrong types are a :class:`~chimein.errors.ConfigError`)."""
        return read_config(cls, d, where)


def _sqdist(x: torch.Tensor, c: torch.Tensor, x2: torch.Tensor, c2: torch.Tensor) -> torch.Tensor:
    """Squared distances ``(len(x), len(c))``, clamped at 0."""
    return (x2[:, None] - 2.0 * (x @ c.T) + c2[None, :]).clamp_min_(0.0)


def kmeans(
    x: torch.Tensor,
    k: int,
    iters: int = 30,
    seed: int = 0,
    init_sample: int = 20000,
    tol: float = 1e-4,
    block: int = 32768,
) -> tuple[torch.Tensor, float, int]:
    """k-means (k-means++ init + Lloyd) of ``x`` ``(n, d)`` float32.

    Returns ``(centroids (k, d), inertia, iterations run)``.
    """
    x = x.float().contiguous()
    n = x.shape[0]
    if not 2 <= k <= n:
        raise SpecError(f"codebook: need 2 <= size <= number of units ({n}), got size={k}")
    g = torch.Generator().manual_seed(int(seed))
    # ---- greedy k-means++ on a subsample
    m = min(n, max(int(init_sample), k))
    sub = x[torch.randperm(n, generator=g)[:m]]
    s2 = (sub * sub).sum(1)
    first = int(torch.randint(m, (1,), generator=g))
    centers = torch.empty(k, x.shape[1])
    centers[0] = sub[first]
    d2 = _sqdist(sub, sub[first : first + 1], s2, s2[first : first + 1])[:, 0]
    trials = 2 + int(math.log(k))
    for i in range(1, k):
        tot = float(d2.sum())
        probs = d2 / tot if tot > 0 else torch.full_like(d2, 1.0 / m)
        cand = torch.multinomial(probs, trials, replacement=True, generator=g)
        dc = _sqdist(sub[cand], sub, s2[cand], s2).T  # (m, trials)
        new = torch.minimum(d2[:, None], dc)
        best = int(torch.argmin(new.sum(0)))
        d2 = new[:, best].contiguous()
        centers[i] = sub[cand[best]]
    # ---- Lloyd iterations
    x2 = (x * x).sum(1)
    prev = math.inf
    inertia = math.inf
    ran = 0
    mind = torch.empty(n)
    idx = torch.empty(n, dtype=torch.long)
    for it in range(1, int(iters) + 1):
        ran = it
        c2 = (centers * centers).sum(1)
        for s in range(0, n, block):
            d = _sqdist(x[s : s + block], centers, x2[s : s + block], c2)
            mv, mi = d.min(1)
            mind[s : s + block], idx[s : s + block] = mv, mi
        inertia = float(mind.double().sum())
        sums = torch.zeros_like(centers).index_add_(0, idx, x)
        counts = torch.bincount(idx, minlength=k)
        empty = torch.nonzero(counts == 0).flatten()
        centers = sums / counts.clamp_min(1)[:, None].float()
        if empty.numel():
            far = torch.topk(mind, empty.numel()).indices
            centers[empty] = x[far]
        if prev < math.inf and (prev - inertia) <= tol * prev and not empty.numel():
            break
        prev = inertia
    return centers, inertia, ran


def scene_units(scene: Any, features: FeatureConfig) -> np.ndarray:
    """Raw unit vectors of a rendered scene's reference mic, clipped to [-1, 1] as the env does."""
    return signal_units(np.clip(np.asarray(scene.audio, np.float32)[:, 0], -1.0, 1.0), features)


def _collect_job(args: tuple[dict[str, Any], int, dict[str, Any], int, int]) -> np.ndarray:
    spec_d, i, feat_d, max_units, seed = args
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    spec = SourceSpec(**{**spec_d, "difficulties": tuple(spec_d.get("difficulties", ()))})
    features = FeatureConfig(**feat_d)
    u = scene_units(SceneLoader(spec).scene(i), features)
    if len(u) > max_units:
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xC0DE, int(i)]))
        u = u[np.sort(rng.choice(len(u), max_units, replace=False))]
    return np.ascontiguousarray(u, np.float32)


def collect_units(
    source: SourceSpec,
    n_scenes: int,
    features: FeatureConfig,
    max_units_per_scene: int = 2000,
    seed: int = 0,
    workers: int | None = 1,
    progress: bool = False,
) -> np.ndarray:
    """Unit vectors ``(N, D)`` float32 from scenes ``0 .. n_scenes - 1`` of ``source`` (in scene
    order, whatever the number of workers)."""
    from chimein.exec import imap_unordered

    if n_scenes < 1:
        raise SpecError(f"codebook: field 'n_scenes': need at least 1, got {n_scenes}")
    spec_d = {
        k: getattr(source, k)
        for k in ("kind", "config", "difficulties", "seed", "dataset", "rir_cache_dir")
    }
    spec_d["config"] = dict(spec_d["config"])
    spec_d["difficulties"] = list(spec_d["difficulties"])
    jobs = [
        (spec_d, i, features.to_dict(), int(max_units_per_scene), int(seed))
        for i in range(int(n_scenes))
    ]
    out: dict[int, np.ndarray] = {}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="codebook scenes", unit="scene")
    for job, units in imap_unordered(_collect_job, jobs, workers=workers):
        out[job[1]] = units
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return np.concatenate([out[i] for i in range(len(jobs))])


def fit_codebook(
    units: np.ndarray,
    features: FeatureConfig,
    size: int = 512,
    iters: int = 30,
    seed: int = 0,
    init_sample: int = 20000,
    tol: float = 1e-4,
    meta: Mapping[str, Any] | None = None,
) -> Codebook:
    """Normalise ``units`` with their mean/std and fit ``size`` centroids (see :func:`kmeans`)."""
    u = np.asarray(units, np.float32)
    if u.ndim != 2 or u.shape[1] != features.unit_dim:
        raise SpecError(f"codebook: units must be (n, {features.unit_dim}), got {u.shape}")
    mean = u.mean(0, dtype=np.float64).astype(np.float32)
    std = np.maximum(u.std(0, dtype=np.float64), 1e-3).astype(np.float32)
    x = torch.from_numpy((u - mean) / std)
    t0 = time.perf_counter()
    c, inertia, it = kmeans(x, int(size), iters=iters, seed=seed, init_sample=init_sample, tol=tol)
    info = {
        "units": int(len(u)),
        "size": int(size),
        "iterations": int(it),
        "inertia_per_unit": inertia / len(u),
        "seed": int(seed),
        "fit_s": round(time.perf_counter() - t0, 2),
        **dict(meta or {}),
    }
    return Codebook(c.numpy(), mean, std, features, info)


def usage(codebook: Codebook, units: np.ndarray) -> dict[str, float]:
    """How evenly the codebook is used on ``units``: perplexity and the share of unused entries."""
    ids = codebook.assign(units)
    p = np.bincount(ids, minlength=codebook.size) / max(1, len(ids))
    nz = p[p > 0]
    return {"perplexity": float(np.exp(-(nz * np.log(nz)).sum())), "unused": float((p == 0).mean())}


def describe(codebook: Codebook, path: Any = None) -> str:
    """A readable summary of a fitted codebook (its ``meta``: :func:`fit_codebook`'s record,
    :func:`usage`, the caller's ``n_scenes`` and ``collect_s``), for a terminal: what was fitted
    on what, how long it took, and how evenly the entries are used."""
    m = dict(codebook.meta or {})
    k = codebook.size

    def num(key: str, fmt: str) -> str:
        v = m.get(key)
        return "?" if not isinstance(v, (int, float)) else format(v, fmt)

    where = f" -> {path}" if path is not None else ""
    scenes = f" from {m['n_scenes']} scenes" if "n_scenes" in m else ""
    took = [f"{num('iterations', 'd')} k-means iterations"]
    took += [f"{what} {num(key, '.1f')} s" for what, key in (("fit", "fit_s"), ("collect", "collect_s"))
             if key in m]
    lines = [
        f"codebook{where}",
        f"  {k} entries of {codebook.features.unit_s * 1000:g} ms log-mel units, fitted on "
        f"{num('units', 'd')} units{scenes} ({', '.join(took)})",
    ]
    if "perplexity" in m:
        pp, unused = float(m["perplexity"]), float(m.get("unused", 0.0))
        lines.append(f"  usage: perplexity {pp:.1f} of {k} entries ({100 * pp / k:.0f} % of an even use), "
                     f"{round(unused * k)} unused; inertia {num('inertia_per_unit', '.2f')} per unit")
    return "\n".join(lines)


def source_from_config(
    scenes: Mapping[str, Any],
    difficulties: Sequence[str],
    seed: int,
    dataset: str | None,
    rir_cache_dir: str | None,
) -> SourceSpec:
    """The :class:`SourceSpec` of a command's ``scenes`` config / ``dataset`` option."""
    if dataset:
        return SourceSpec(kind="dataset", dataset=str(dataset))
    return SourceSpec(
        kind="sampler",
        config=dict(scenes),
        difficulties=tuple(difficulties or ()),
        seed=int(seed),
        rir_cache_dir=rir_cache_dir,
    )
