"""What does a timing LM hear, and how much of it reaches its action head? Linear probes per chunk.

**Question.** When a checkpoint misses an alarm, is the sound missing from its representation,
or does the representation have it and the action head not use it? A linear probe answers that
the way representation learning usually does: fit a logistic regression on frozen features of
training scenes, score it on suite scenes, and compare its AUROC with the checkpoint's own
action logit on the same chunks.

**Chunks and labels** (decision chunks of 80 ms, each labelled from the scene's annotations at
its decision time): ``intervene`` = the first 2 s of an INTERVENE window, ``ignore`` = inside an
IGNORE window (a look-alike, TV speech, a benign sound), ``respond`` = the first 1 s of a
RESPOND window, ``other`` = everything else. Three tasks: intervene vs all other chunks,
intervene vs ignore chunks (the look-alike question), respond vs all other chunks.

**Scores compared on the same chunks** (every 2nd chunk, the first 256 of a scene: the
attention window):

- ``action logit``: the checkpoint's own logit difference (INTERVENE or RESPOND minus WAIT),
  teacher-forced with WAIT actions (the stream of a policy that has not spoken yet);
- ``hidden probe``: logistic regression on the LM's final hidden state at the decision position;
- ``token bag``: logistic regression on the histogram of the last 1 s of codebook tokens (the
  front end alone, no network);
- ``log-mel pool``: logistic regression on the mean and max of the last 1 s of normalised
  log-mel units (the front end's input, before quantisation).

The probes are fitted on ``--train`` scenes of an episode cache of the supervised trainer
(``train.data.cache_dir``: the scenes the checkpoint was trained on, re-rendered from their
specs) and scored on ``--per-split`` scenes of each family of the suite's tiers, plus
``--holdout`` later episodes of the same cache (the training distribution, unseen scenes).

Usage (the README's figures: the shipped ``chimein-lm-sup`` and the episode cache of its recipe)::

    python benchmarks/probe_recognition.py --checkpoint chimein-lm-sup \\
        --episodes runs/sup/episodes/episodes-491ab8ba22657f95 --train 600

About 5 minutes on the 2-core machine with warm caches. Deterministic (the probes are fitted
with full-batch L-BFGS from zero).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHUNK_S = 0.08
CONTEXT_UNITS = 25  # 1 s of 40 ms units
MAX_CHUNKS = 256  # the LM's attention window in chunks
TASKS = (("intervene vs rest", 1, None, 2), ("intervene vs ignore", 1, 2, 2), ("respond vs rest", 3, None, 1))


def chunk_labels(spec: Any, n: int) -> np.ndarray:
    """0 other, 1 intervene (first 2 s of its window), 2 ignore window, 3 respond (first 1 s)."""
    t = (np.arange(n) + 1) * CHUNK_S
    y = np.zeros(n, np.int8)
    for c in spec.annotations.cues:
        s, e = c.window
        if c.expected == "INTERVENE":
            y[(t >= s) & (t < min(e, s + 2.0))] = 1
        elif c.expected == "RESPOND":
            y[(t >= s) & (t < min(e, s + 1.0)) & (y == 0)] = 3
        else:
            y[(t >= s) & (t <= e) & (y == 0)] = 2
    return y


def scene_rows(ck: Any, scene: Any, spec: Any) -> dict[str, np.ndarray]:
    """Every score's features for the scene's chunks (every 2nd of the first 256)."""
    from chimein.agents.lm.tokenizer import interleave, signal_units
    from chimein.envs.core import EnvConfig, EpisodeAudio

    cb = ck.codebook
    cfg = EnvConfig(chunk_ms=CHUNK_S * 1000.0, sample_rate=cb.features.sample_rate)
    ep = EpisodeAudio(scene, cfg)
    audio = ep.samples()[: ep.n * cfg.chunk_samples, 0]
    raw = signal_units(audio, cb.features)
    units, ids = cb.normalize(raw).astype(np.float32), cb.assign(raw)
    upc = ck.units_per_chunk
    n = min(ep.n, MAX_CHUNKS)
    with torch.no_grad():
        out = ck.model(torch.from_numpy(interleave(ids[: upc * n], np.zeros(n, np.int64), upc))[None])
    keep = np.arange(0, n, 2)
    pos = 1 + keep * (upc + 1) + upc - 1  # the position that predicts chunk k's action
    bag = np.zeros((len(keep), cb.size), np.float32)
    pool = np.zeros((len(keep), 2 * units.shape[1]), np.float32)
    for r, k in enumerate(keep):
        hi = (k + 1) * upc
        lo = max(0, hi - CONTEXT_UNITS)
        bag[r] = np.bincount(ids[lo:hi], minlength=cb.size) / (hi - lo)
        pool[r] = np.concatenate([units[lo:hi].mean(0), units[lo:hi].max(0)])
    return {
        "logit": out.action_logits[0, pos].numpy(),
        "hidden": out.hidden[0, pos].numpy(),
        "bag": bag,
        "pool": pool,
        "y": chunk_labels(spec, ep.n)[keep],
    }


def episode_scenes(folder: Path, lo: int, n: int) -> Iterator[tuple[Any, Any]]:
    """Scenes ``lo .. lo + n - 1`` of a supervised episode cache, rendered from their specs."""
    from chimein.scenes.render import render
    from chimein.scenes.rir import RIRCache
    from chimein.training.data import read_episode

    files = [folder / f"{i:08d}.npz" for i in range(lo, lo + n)]
    if not all(f.is_file() for f in files):
        raise SystemExit(f"--episodes {folder}: need episodes {lo}..{lo + n - 1} there")
    cache = RIRCache()
    for f in files:
        spec = read_episode(f).spec
        yield render(spec, cache), spec


def suite_scenes(suite: str, tier: str, per_split: int) -> Iterator[tuple[Any, Any]]:
    """The first ``per_split`` scenes of every family of a suite's tier."""
    from chimein.eval.suites import materialize

    ms = materialize(suite, progress=False)
    for s in ms.definition.splits:
        if s.tier == tier:
            ds = ms.dataset(s.name)
            for i in range(min(per_split, len(ds))):
                yield ds.load(i), ds.spec(i)


def stack(ck: Any, scenes: Iterator[tuple[Any, Any]]) -> dict[str, np.ndarray]:
    rows = [scene_rows(ck, sc, sp) for sc, sp in scenes]
    return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}


def fit_probe(x: np.ndarray, y: np.ndarray, l2: float = 1e-3) -> Any:
    """L2-regularised logistic regression (standardised features, full-batch L-BFGS from zero);
    returns a scoring function."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    X = torch.from_numpy((x - mu) / sd).double()
    t = torch.from_numpy(y.astype(np.float64))
    w = torch.zeros(X.shape[1] + 1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=300, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        z = X @ w[1:] + w[0]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, t) + l2 * (w[1:] ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    wd = w.detach().numpy()
    return lambda xt: ((xt - mu) / sd) @ wd[1:] + wd[0]


def auroc(score: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney with mid-ranks for ties)."""
    from scipy.stats import rankdata

    r = rankdata(score)
    n1 = int(y.sum())
    n0 = len(y) - n1
    return float((r[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)) if n1 and n0 else float("nan")


def select(d: dict[str, np.ndarray], pos: int, neg: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The chunks of a task (``pos`` against ``neg``, or against everything) and their 0/1 labels."""
    m = np.ones(len(d["y"]), bool) if neg is None else (d["y"] == pos) | (d["y"] == neg)
    return m, (d["y"][m] == pos).astype(np.int64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="chimein-lm-sup", help="checkpoint dir or shipped name")
    ap.add_argument("--episodes", required=True, type=Path, help="an episode cache folder (episodes-<key>)")
    ap.add_argument("--train", type=int, default=600, help="episodes the probes are fitted on")
    ap.add_argument("--holdout", type=int, default=150, help="later episodes scored as 'train-dist'")
    ap.add_argument("--holdout-from", type=int, default=3800, help="index of the first of those")
    ap.add_argument("--suite", default="chimein-bench-v1")
    ap.add_argument("--tiers", default="hard,heldout", help="comma-separated tiers scored")
    ap.add_argument("--per-split", type=int, default=20, help="scenes per family of each tier")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from chimein.agents.lm.checkpoint import load_checkpoint
    from chimein.agents.lm.reference import REFERENCE_NAMES, reference_checkpoint

    path = reference_checkpoint(args.checkpoint) if args.checkpoint in REFERENCE_NAMES else args.checkpoint
    ck = load_checkpoint(path)
    t0 = time.perf_counter()
    train = stack(ck, episode_scenes(args.episodes, 0, args.train))
    tests = {t: stack(ck, suite_scenes(args.suite, t, args.per_split)) for t in args.tiers.split(",")}
    tests["train-dist"] = stack(ck, episode_scenes(args.episodes, args.holdout_from, args.holdout))
    sets = {"train": train, **tests}
    print(f"{args.checkpoint}: probes fitted on {len(train['y'])} chunks of {args.train} training scenes "
          f"({time.perf_counter() - t0:.0f} s of features)")
    sizes = ", ".join(f"{k} {len(v['y'])} chunks" for k, v in tests.items())
    print(f"AUROC per chunk; {sizes}")
    head = f"{'task':20s} {'score':13s}" + "".join(f"{k:>11s}" for k in sets)
    print(head + "\n" + "-" * len(head))
    for task, pos, neg, col in TASKS:
        m, y = select(train, pos, neg)
        probes = {name: fit_probe(train[key][m], y) for name, key in
                  (("hidden probe", "hidden"), ("token bag", "bag"), ("log-mel pool", "pool"))}
        cells: dict[str, list[str]] = {"action logit": [], **{k: [] for k in probes}}
        for d in sets.values():
            m, y = select(d, pos, neg)
            cells["action logit"].append(f"{auroc(d['logit'][m, col] - d['logit'][m, 0], y):11.3f}")
            for name, key in (("hidden probe", "hidden"), ("token bag", "bag"), ("log-mel pool", "pool")):
                cells[name].append(f"{auroc(probes[name](d[key][m]), y):11.3f}")
        for name, row in cells.items():
            print(f"{task:20s} {name:13s}" + "".join(row))
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
