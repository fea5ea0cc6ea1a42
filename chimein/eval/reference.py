"""Shipping a timing-LM checkpoint inside the package, and checking it still scores what it did.

The shipped checkpoints (:mod:`chimein.agents.lm.reference`) carry a card, ``reference.json``,
with the sha256 of every file and the metrics they scored. This module writes that card and
compares a fresh evaluation with it:

- :func:`ship` copies a checkpoint directory into the package under a reference name, records
  the checksums, the recipe (the commands that made it) and the metrics of evaluation runs
  (``chimein eval`` output folders) -- per suite: the headline metrics and, for the CI suite
  ``chimein-bench-v1-mini``, every episode's reward and a digest of its actions;
- :func:`compare_recorded` lists where an evaluation differs from the card (used by
  ``tests/test_reference_policy.py``, which re-measures ``chimein-bench-v1-mini``).

Maintainers ship a new checkpoint with::

    python -m chimein.eval.reference ship chimein-lm-sup runs/sup/final \\
        --recipe runs/recipe.md --results runs/mini/sup runs/v1/sup runs/v0/sup \\
        --seed-results runs/v1/sup-seed1 runs/v1/sup-seed2 runs/v0/sup-seed1 runs/v0/sup-seed2

Examples
--------
>>> episode_digest({"action_log": {"events": [[3, 1, 1]], "n_steps": 10}})[:12]
'5fd2a714e5a2'
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chimein.agents.lm.reference import CARD_FILE, REFERENCE_NAMES, reference_root
from chimein.errors import SpecError
from chimein.eval.spread import HEADLINE_KEYS, headline_metrics, seed_spread
from chimein.io import atomic_write_dir, atomic_write_text

__all__ = ["HEADLINE_KEYS", "MINI_SUITE", "compare_recorded", "episode_digest", "ship",
           "summarise_results"]

#: The suite whose every episode the card records and CI re-measures.
MINI_SUITE = "chimein-bench-v1-mini"

#: Files of a checkpoint directory that ship (every one is checksummed).
_SHIPPED_SUFFIXES = (".safetensors", ".json")


def episode_digest(episode: Mapping[str, Any]) -> str:
    """sha256 of an episode's actions (``action_log``: step, action, effective), stable across
    processes: two runs that act identically have the same digest."""
    log = episode.get("action_log") or {}
    data = json.dumps({"events": log.get("events", []), "n_steps": log.get("n_steps")},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def summarise_results(results_dir: str | Path, episodes: bool = False) -> dict[str, Any]:
    """The card entry of one ``chimein eval`` output folder: suite identity, headline metrics
    (overall and per tier, with 95 % intervals), and with ``episodes`` every episode's reward
    and action digest."""
    d = Path(results_dir)
    entry = headline_metrics(d)
    if episodes:
        eps = {}
        for line in (d / "episodes.jsonl").read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            e = json.loads(line)
            if "scene_id" not in e:
                continue
            eps[f"{e['split']}/{e['scene_id']}"] = {
                "reward": float(e["outcome"]["reward"]), "actions": episode_digest(e)}
        entry["episodes"] = dict(sorted(eps.items()))
    return entry


def compare_recorded(recorded: Mapping[str, Any], fresh: Mapping[str, Any], tol: float = 1e-9,
                     max_episodes_changed: int = 0) -> list[str]:
    """Where a fresh :func:`summarise_results` of a suite departs from the recorded card entry:
    another suite definition, a headline metric more than ``tol`` away, or more than
    ``max_episodes_changed`` episodes whose actions or reward changed (all of them are listed
    then). An empty list means the checkpoint reproduced its record.

    The defaults demand bit-identical play (what the recording machine gives). On another CPU
    the scenes' audio and the model's float sums may differ in the last bits (SIMD code paths),
    which can flip a decision that sat on a tie; a caller that accepts that passes a small
    ``max_episodes_changed`` and a ``tol`` of the order of one episode's share of a metric."""
    diffs = []
    if recorded["suite"]["definition_hash"] != fresh["suite"]["definition_hash"]:
        return [f"suite definition changed: {recorded['suite']} vs {fresh['suite']}"]
    for k in HEADLINE_KEYS:
        a, b = recorded["overall"][k]["value"], fresh["overall"][k]["value"]
        if (a is None) != (b is None) or (a is not None and b is not None and abs(a - b) > tol):
            diffs.append(f"overall {k}: recorded {a}, measured {b} (tolerance {tol:g})")
    rec_eps, new_eps = recorded.get("episodes", {}), fresh.get("episodes", {})
    changed = []
    for key in sorted(set(rec_eps) | set(new_eps)):
        a, b = rec_eps.get(key), new_eps.get(key)
        if a is None or b is None:
            changed.append(f"episode {key}: recorded {a is not None}, measured {b is not None}")
        elif a["actions"] != b["actions"] or abs(a["reward"] - b["reward"]) > 1e-9:
            changed.append(f"episode {key}: reward recorded {a['reward']:+.4f}, measured "
                           f"{b['reward']:+.4f} (actions "
                           f"{'differ' if a['actions'] != b['actions'] else 'equal'})")
    if len(changed) > max_episodes_changed:
        diffs += changed
    return diffs


def ship(name: str, checkpoint: str | Path, results: Sequence[str | Path] = (),
         recipe: str | None = None, source: str | None = None,
         notes: Mapping[str, Any] | None = None, seed_results: Sequence[str | Path] = ()) -> Path:
    """Copy ``checkpoint`` into the package as reference ``name`` with its card (atomic).

    ``results``: ``chimein eval`` folders of this checkpoint; the one on :data:`MINI_SUITE` is
    required (CI re-measures it) and records every episode. ``recipe``: the commands that made
    the checkpoint; ``source``: which run it is (e.g. "GRPO refinement of chimein-lm-sup").
    ``seed_results``: ``chimein eval`` folders of the same recipe trained with other seeds; per
    suite that they and ``results`` cover, the card records the spread over all of them
    (:func:`chimein.eval.spread.seed_spread`, the shipped run first).
    """
    from chimein.agents.lm.checkpoint import is_checkpoint
    from chimein.scenes.dataset import sha256_file

    if name not in REFERENCE_NAMES:
        raise SpecError(f"ship: name {name!r}: one of {', '.join(REFERENCE_NAMES)}")
    src = Path(checkpoint)
    if not is_checkpoint(src):
        raise SpecError(f"ship: {src} is not a timing-LM checkpoint directory")
    metrics = {}
    for r in results:
        entry = summarise_results(r)
        suite = entry["suite"]["name"]
        if suite == MINI_SUITE:
            entry = summarise_results(r, episodes=True)
        metrics[suite] = entry
    if MINI_SUITE not in metrics:
        raise SpecError(f"ship: pass the `chimein eval` folder of {name} on {MINI_SUITE} in results "
                        "(CI re-measures it)")
    spreads = _spreads(results, seed_results)
    files = sorted(p.name for p in src.iterdir() if p.is_file() and p.suffix in _SHIPPED_SUFFIXES)

    def write(tmp: Path) -> None:
        for f in files:
            shutil.copyfile(src / f, tmp / f)
        card = {
            "name": name, "source": source or str(src), "recipe": recipe or "",
            "files": {f: sha256_file(tmp / f) for f in files},
            "size_bytes": sum((tmp / f).stat().st_size for f in files),
            "metrics": metrics, **({"notes": dict(notes)} if notes else {}),
            **({"seed_spread": spreads} if spreads else {}),
        }
        atomic_write_text(tmp / CARD_FILE, json.dumps(card, indent=1, sort_keys=True) + "\n")

    return atomic_write_dir(reference_root() / name, write, mode=0o755)


def _spreads(results: Sequence[str | Path], seed_results: Sequence[str | Path]) -> dict[str, Any]:
    """Per suite: :func:`seed_spread` over the shipped run and the other seeds' runs of it."""

    def suite(r: str | Path) -> str:
        return str(headline_metrics(r)["suite"]["name"])

    by_suite: dict[str, list[str | Path]] = {suite(r): [r] for r in results}
    for r in seed_results:
        name = suite(r)
        if name not in by_suite:
            raise SpecError(f"ship: --seed-results has runs on {name!r} but --results has none of the "
                            "shipped checkpoint there; pass its run too (the spread starts from it)")
        by_suite[name].append(r)
    # the card names the runs by folder name, not by this machine's paths
    return {name: {**seed_spread(runs), "runs": [Path(r).name for r in runs]}
            for name, runs in by_suite.items() if len(runs) > 1}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m chimein.eval.reference ship NAME CHECKPOINT --results DIR... [--recipe F]``."""
    ap = argparse.ArgumentParser(prog="python -m chimein.eval.reference",
                                 description="Ship a timing-LM checkpoint inside the package.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("ship", help="copy a checkpoint into the package with its card")
    s.add_argument("name", choices=REFERENCE_NAMES)
    s.add_argument("checkpoint")
    s.add_argument("--results", nargs="+", required=True, help="chimein eval output folders")
    s.add_argument("--recipe", help="a text file with the commands that made the checkpoint")
    s.add_argument("--source", help="what the checkpoint is (e.g. 'GRPO refinement of chimein-lm-sup')")
    s.add_argument("--seed-results", nargs="*", default=[],
                   help="chimein eval folders of the same recipe with other training seeds (the card "
                        "records the spread)")
    a = ap.parse_args(argv)
    recipe = Path(a.recipe).read_text(encoding="utf-8") if a.recipe else None
    out = ship(a.name, a.checkpoint, a.results, recipe=recipe, source=a.source,
               seed_results=a.seed_results)
    print(f"shipped {a.name} -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
