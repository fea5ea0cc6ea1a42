"""How much a training recipe's figures move with the training seed.

A headline figure of a trained policy is one draw: the same recipe with another seed (another
initialisation and batch order) lands elsewhere, and on another machine the float sums differ
the way a seed does. An RL paper reports the spread over seeds next to the figure; this module
computes it from ``chimein eval`` output folders of the same suite, one per seed:

- :func:`seed_spread`: per headline metric (:data:`HEADLINE_KEYS`),
  overall and per tier, every seed's value, their mean, sample standard deviation, minimum and
  maximum;
- :func:`spread_cell` / :func:`spread_table`: the same as text (``0.22 ± 0.01 [0.21, 0.23]``).

``chimein eval spread DIR1 DIR2 DIR3 [out=spread.md]`` prints and writes the table; the cards of
the shipped policies record it (``python -m chimein.eval.reference ship ... --seed-results``).

The bootstrap intervals of a leaderboard say how much a figure would move with *other scenes*;
the seed spread says how much it moves with *another training run*. Both are needed before a
difference between two recipes means anything.

Examples
--------
>>> s = _stats([0.2, 0.25, 0.21])
>>> round(s["mean"], 4), round(s["sd"], 4), s["min"], s["max"]
(0.22, 0.0265, 0.2, 0.25)
>>> spread_cell(s)
'0.22 ± 0.03 [0.20, 0.25]'
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chimein.errors import SpecError
from chimein.io import atomic_write_text

__all__ = ["HEADLINE_KEYS", "headline_metrics", "seed_spread", "spread_cell", "spread_table", "write_spread"]

#: Metrics recorded per suite (overall and per tier) on the shipped policies' cards and in a spread.
HEADLINE_KEYS: tuple[str, ...] = (
    "normalized_reward", "timeliness", "respond_recall", "intervene_f1", "safety_miss_rate",
    "false_alarms_per_min", "pause_takeover_rate", "false_cutoff_rate", "interruptions_per_turn",
    "respond_latency_p50",
)


def _value(m: Mapping[str, Any], k: str) -> float | None:
    v = m.get(k)
    if isinstance(v, Mapping):
        v = v.get("value")
    return None if v is None else float(v)


def headline_metrics(results_dir: str | Path) -> dict[str, Any]:
    """Suite identity, env, and :data:`HEADLINE_KEYS` (value and 95 % interval), overall and per
    tier, of one ``chimein eval`` output folder."""
    d = Path(results_dir)
    try:
        res = json.loads((d / "results.json").read_text(encoding="utf-8"))
        met = res["metrics"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SpecError(f"{d}: not a `chimein eval` output folder ({e!r}); give the folder "
                        "`chimein eval ... out=DIR` wrote") from None

    def block(m: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k in HEADLINE_KEYS:
            v = m.get(k)
            out[k] = {"value": _value(m, k), "ci": v.get("ci") if isinstance(v, Mapping) else None}
        return out

    return {
        "suite": {k: res["suite"][k] for k in ("name", "revision", "definition_hash", "n_scenes")},
        "env": res.get("env"),
        "overall": block(met["overall"]),
        "by_tier": {t: block(m) for t, m in sorted(met.get("by_tier", {}).items())},
    }


def _stats(values: Sequence[float | None]) -> dict[str, Any]:
    """Mean, sample standard deviation (``ddof=1``; 0 for one value), min and max of the values
    that are defined (a metric with no cases in a run, e.g. no safety cue, is left out)."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    out: dict[str, Any] = {"values": [None if v is None else float(v) for v in values], "n": len(vals)}
    if not vals:
        return {**out, "mean": None, "sd": None, "min": None, "max": None}
    mean = sum(vals) / len(vals)
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return {**out, "mean": mean, "sd": sd, "min": min(vals), "max": max(vals)}


def seed_spread(runs: Sequence[str | Path], keys: Sequence[str] = HEADLINE_KEYS) -> dict[str, Any]:
    """The spread of ``keys`` over ``runs`` (``chimein eval`` folders, one per training seed, all
    on the same suite definition), overall and per tier.

    Raises
    ------
    SpecError
        Fewer than two runs, or runs of different suites (the figures would not be comparable).
    """
    if len(runs) < 2:
        raise SpecError(f"seed spread: give at least two `chimein eval` folders (one per seed), got {len(runs)}")
    entries = [headline_metrics(r) for r in runs]
    suites = {e["suite"]["definition_hash"] for e in entries}
    if len(suites) > 1:
        names = ", ".join(f"{r}: {e['suite']['name']} {e['suite']['definition_hash'][:12]}"
                          for r, e in zip(runs, entries, strict=True))
        raise SpecError(f"seed spread: the runs played different suites ({names}); give runs of one suite")
    tiers = sorted(set().union(*(e["by_tier"] for e in entries)))

    def block(pick: Any) -> dict[str, Any]:
        return {k: _stats([(pick(e).get(k) or {}).get("value") for e in entries]) for k in keys}

    return {
        "suite": entries[0]["suite"],
        "runs": [str(r) for r in runs],
        "n_seeds": len(runs),
        "overall": block(lambda e: e["overall"]),
        "by_tier": {t: block(lambda e, t=t: e["by_tier"].get(t, {})) for t in tiers},
    }


def spread_cell(s: Mapping[str, Any] | None, digits: int = 2) -> str:
    """``mean ± sd [min, max]`` of one :func:`seed_spread` entry (``n/a`` when undefined)."""
    if not s or s.get("mean") is None:
        return "n/a"
    f = f"{{:.{digits}f}}"
    return f"{f.format(s['mean'])} ± {f.format(s['sd'])} [{f.format(s['min'])}, {f.format(s['max'])}]"


def spread_table(spread: Mapping[str, Any], digits: int = 2) -> list[str]:
    """Markdown: one row per metric, columns overall and each tier."""
    tiers = list(spread["by_tier"])
    head = ["metric", "overall", *tiers]
    lines = [
        f"Spread over {spread['n_seeds']} training seeds on `{spread['suite']['name']}` "
        f"({spread['suite']['n_scenes']} scenes): mean ± sample standard deviation [min, max].",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for k in spread["overall"]:
        cells = [spread_cell(spread["overall"][k], digits)]
        cells += [spread_cell(spread["by_tier"][t].get(k), digits) for t in tiers]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines += ["", "Runs: " + ", ".join(f"`{r}`" for r in spread["runs"])]
    return lines


def write_spread(spread: Mapping[str, Any], out: str | Path) -> Path:
    """Write :func:`spread_table` as markdown and the numbers as JSON beside it (atomic)."""
    o = Path(out)
    if o.suffix != ".md":
        o = o / "spread.md"
    atomic_write_text(o, "\n".join(spread_table(spread)) + "\n")
    atomic_write_text(o.with_suffix(".json"), json.dumps(spread, indent=1, sort_keys=True) + "\n")
    return o
