"""Cells and tables of metric entries for ``report.md``, leaderboards and terminals, and the
tables of the generalisation gap.

:mod:`chimein.eval.report` builds its reports from these; the gap tables read the ``gap``
entry of :func:`chimein.eval.metrics.aggregate` (present only for suites with a held-out tier,
see :func:`chimein.eval.metrics.generalisation_gap`):

- :func:`gap_section` -- the "Generalisation gap" section of ``report.md``: the
  :data:`GAP_COLUMNS` metrics on the reference tiers pooled, on the held-out tier, and their
  difference with its two-sample interval; then normalised reward per family;
- :func:`gap_of` -- a run's held-out gap of normalised reward, the extra leaderboard column of
  ``chimein eval compare``;
- :func:`gap_terminal` -- that column as a compact terminal table (at most
  :data:`chimein.eval.terminal.WIDTH` columns).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from chimein.eval.metrics import METRICS

__all__ = ["GAP_COLUMNS", "SHORT", "TABLE_COLUMNS", "diff_cell", "fmt", "gap_of", "gap_section", "gap_terminal",
           "gap_tiers", "table"]

#: Metrics of the "Generalisation gap" table of a report (held-out tier minus the reference tiers).
GAP_COLUMNS: tuple[str, ...] = (
    "normalized_reward", "timeliness", "pause_takeover_rate", "safety_miss_rate", "false_alarms_per_min",
    "respond_latency_p50",
)
#: Metrics in the per-split/family/tier tables of a report.
TABLE_COLUMNS: tuple[str, ...] = (
    "normalized_reward", "hit_rate", "timeliness", "miss_rate", "safety_miss_rate", "false_alarms_per_min",
    "pause_takeover_rate", "latency_p50", "clip_accuracy",
)
#: Short column names of the Markdown tables (the metric's name where absent).
SHORT: dict[str, str] = {
    "normalized_reward": "norm. reward", "timeliness": "timeliness", "respond_recall": "respond R",
    "intervene_f1": "intervene F1", "safety_miss_rate": "safety miss", "false_alarms_per_min": "FA/min",
    "pause_takeover_rate": "pause TOR", "interruptions_per_turn": "interr./turn", "latency_p50": "latency p50 (s)",
    "clip_accuracy": "clip acc.", "hit_rate": "hit rate", "miss_rate": "miss rate",
    "respond_latency_p50": "respond latency p50 (s)",
}


def fmt(m: Mapping[str, Any] | None, ci: bool = True, digits: int = 2) -> str:
    """``value [lo, hi]`` of a metric entry; ``-`` when undefined."""
    if not m or m.get("value") is None:
        return "-"
    s = f"{m['value']:.{digits}f}"
    lo, hi = (m.get("ci") or [None, None])[:2]
    if ci and lo is not None and hi is not None:
        s += f" [{lo:.{digits}f}, {hi:.{digits}f}]"
    return s


def diff_cell(d: Mapping[str, Any]) -> str:
    """``+0.119 [+0.085, +0.153]*`` of a difference entry (``*``: its ``significant`` flag, the
    interval excludes 0); ``-`` when undefined."""
    if d.get("value") is None:
        return "-"
    s = f"{d['value']:+.3f}"
    lo, hi = d.get("ci") or [None, None]
    if lo is not None and hi is not None:
        s += f" [{lo:+.3f}, {hi:+.3f}]"
    return s + ("*" if d.get("significant") else "")


def table(rows: Sequence[tuple[str, Mapping[str, Any]]], cols: Sequence[str], first: str) -> str:
    """A Markdown table of metric groups: ``first`` (the group name), ``n`` and ``cols``."""
    head = f"| {first} | n | " + " | ".join(SHORT.get(c, c) for c in cols) + " |"
    sep = "|" + "---|" * (len(cols) + 2)
    body = [f"| {name} | {g.get('n_episodes', '')} | " + " | ".join(fmt(g.get(c)) for c in cols) + " |"
            for name, g in rows]
    return "\n".join([head, sep, *body])


def gap_section(gap: Mapping[str, Any]) -> list[str]:
    """The "Generalisation gap" section of ``report.md`` (its lines): :data:`GAP_COLUMNS` on the
    reference tiers pooled, on the held-out tier and their difference; normalised reward per
    family."""
    ref = "+".join(gap["reference_tiers"])
    held = gap["heldout_tier"]
    b = gap.get("bootstrap", {})
    lines = ["## Generalisation gap", "",
             f"`{held}` minus `{ref}` pooled (counts summed over each side's episodes). The tiers hold different "
             f"scenes, so the 95 % intervals are two-sample bootstrap intervals ({b.get('resamples')} resamples within "
             "each split), not scene-paired ones; `*`: the gap's interval excludes 0.", "",
             f"| metric | {ref} (n={gap['overall']['n_reference']}) | {held} (n={gap['overall']['n_heldout']}) "
             f"| gap ({held} - {ref}) |", "|---|---|---|---|"]
    for k in GAP_COLUMNS:
        d = gap["overall"][k]
        lines.append(f"| {SHORT.get(k, k)} ({'higher' if METRICS[k][1] else 'lower'} better) | {fmt(d['reference'])} "
                     f"| {fmt(d['heldout'])} | {diff_cell(d)} |")
    if gap.get("by_family"):
        lines += ["", "Normalised reward by family:", "", f"| family | n {ref} / {held} | {ref} | {held} | gap |",
                  "|---|---|---|---|---|"]
        for f, g in gap["by_family"].items():
            d = g["normalized_reward"]
            lines.append(f"| {f} | {g['n_reference']} / {g['n_heldout']} | {fmt(d['reference'])} | "
                         f"{fmt(d['heldout'])} | {diff_cell(d)} |")
    return lines


def gap_of(results: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """A run's (``results.json``) held-out gap of normalised reward; None when its suite has no
    held-out tier (or the run predates the gap)."""
    return ((results.get("metrics") or {}).get("gap") or {}).get("overall", {}).get("normalized_reward")


def gap_tiers(runs: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """``(held-out tier, reference tiers joined by +)`` of the first run with a gap."""
    g = next(r["metrics"]["gap"] for r in runs if gap_of(r))
    return g["heldout_tier"], "+".join(g["reference_tiers"])


def gap_terminal(rows: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """The held-out gap of normalised reward of each ``(name, results)``, as a compact terminal
    table (reference, held-out, gap with ``*`` where significant, interval)."""
    from chimein.eval.terminal import _grid, wrap

    def v(d: Mapping[str, Any] | None) -> str:
        return "n/a" if not d or d.get("value") is None else f"{d['value']:.2f}"

    body = []
    for name, r in rows:
        d = gap_of(r) or {}
        lo, hi = d.get("ci") or [None, None]
        body.append([name, v(d.get("reference")), v(d.get("heldout")),
                     "n/a" if d.get("value") is None else f"{d['value']:+.3f}" + ("*" if d.get("significant") else ""),
                     "-" if lo is None or hi is None else f"[{lo:+.3f}, {hi:+.3f}]"])
    held, ref = gap_tiers([r for _, r in rows])
    heads = [("", "", "policy"), ("", ref, "(+)"), ("", held, "(+)"), ("", "gap", "(+)"), ("", "95 %", "interval")]
    return [*wrap(f"Generalisation gap, normalised reward: {held} minus {ref} pooled (other scenes: a two-sample "
                  "interval, not paired); *: the interval excludes 0"), *_grid(heads, body, left=1)]
