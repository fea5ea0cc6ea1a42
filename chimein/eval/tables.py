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

The field's metrics (:data:`FIELD_COLUMNS`, see :mod:`chimein.eval.field`) get their own
section of ``report.md`` (:func:`field_section`: each metric with the benchmark it mirrors, the
safety-critical false-negative rate on its own line, the compute per decision) and their own
table under the leaderboard (:func:`field_table`, :func:`safety_line`; :func:`field_text` for a
terminal); :func:`ms_cell` is the ``ms/decision`` cell of a run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from chimein.eval.field import BENCHMARKS
from chimein.eval.metrics import METRICS

__all__ = ["FIELD_COLUMNS", "GAP_COLUMNS", "SHORT", "TABLE_COLUMNS", "diff_cell", "field_section", "field_table",
           "field_text", "fmt", "gap_of", "gap_section", "gap_terminal", "gap_tiers", "ms_cell", "safety_line", "table"]

#: The field's metrics, in the order of their report section and leaderboard table: LiveKit's
#: false cut-off rate, Full-Duplex-Bench's takeover rate per condition (each its own column,
#: never averaged), the safety-critical false-negative rate.
FIELD_COLUMNS: tuple[str, ...] = (
    "false_cutoff_rate", "smooth_takeover_rate", "pause_takeover_rate", "side_talk_takeover_rate",
    "background_takeover_rate", "safety_miss_rate",
)

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
    "respond_latency_p50": "respond latency p50 (s)", "false_cutoff_rate": "false cut-off",
    "smooth_takeover_rate": "smooth TOR", "side_talk_takeover_rate": "side-talk TOR",
    "background_takeover_rate": "background TOR",
}
#: How the sweep-derived figures are obtained (shown under the field's tables).
CURVE_NOTE = ("False cut-off rate at 300 ms and 600 ms and the latency at a 5 % cut-off rate (LiveKit's end-of-turn "
              "benchmark) are read off an operating curve: `chimein eval sweep policy=P param=KNOB values=[...] "
              "out=DIR` (e.g. `param=silence_timeout_s` of an endpointer), then `chimein eval tradeoff DIR`.")


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


# ============================================================================================
# The field's metrics
# ============================================================================================
def ms_cell(results: Mapping[str, Any]) -> str:
    """``mean / p99`` milliseconds per decision of a run (``results["ms_per_decision"]``);
    ``-`` when not measured (a run written before it was)."""
    c = results.get("ms_per_decision") or {}
    if c.get("mean") is None:
        return "-"
    return f"{c['mean']:.2f} / {c['p99']:.2f}"


def _compute_text(results: Mapping[str, Any]) -> str:
    c = results.get("ms_per_decision") or {}
    if c.get("mean") is None:
        return "not measured (a run written before compute was recorded)"
    threads = "unknown threads" if c.get("threads") is None else f"{c['threads']} thread(s)"
    return (f"{c['mean']:.3f} ms per decision (mean), p99 {c['p99']:.3f} ms, over {c.get('decisions')} decisions "
            f"on {threads}, {c.get('batch')} streams per act call (one call's wall time / its streams)")


def field_section(results: Mapping[str, Any]) -> list[str]:
    """The "The field's metrics" section of ``report.md`` (its lines): each metric of
    :data:`FIELD_COLUMNS` with its interval and the benchmark it mirrors; the safety-critical
    false-negative rate on its own line; the compute per decision; how to get the
    operating-curve figures."""
    o = results["metrics"]["overall"]
    lines = ["## The field's metrics", "",
             "Each condition is its own metric, never averaged with another (definitions: `chimein.eval.field`).", "",
             "| metric | value | mirrors | where chimein differs |", "|---|---|---|---|"]
    for k in FIELD_COLUMNS:
        bench, diff = BENCHMARKS[k]
        lines.append(f"| {k} ({'higher' if METRICS[k][1] else 'lower'} better) | {fmt(o.get(k))} | {bench} | {diff} |")
    n = (o.get("counts") or {}).get("safety_cues")
    lines += ["", f"**Safety-critical false-negative rate** (`safety_miss_rate`: missed safety-critical cues / "
                  f"safety-critical cues, n = {'-' if n is None else int(n)}): {fmt(o.get('safety_miss_rate'))}",
              "", f"**Compute**: {_compute_text(results)}.", "", CURVE_NOTE]
    return lines


def field_table(rows: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """The field's metrics of several runs (``(name, results)`` in rank order) as a Markdown
    table with intervals, and the ms per decision."""
    head = ["policy", *(SHORT.get(c, c) for c in FIELD_COLUMNS), "ms/decision (mean / p99)"]
    out = ["The field's metrics: LiveKit's false cut-off rate, Full-Duplex-Bench's takeover rate (TOR) per "
           "condition (each its own column, never averaged), the safety-critical false-negative rate; 95 % "
           "bootstrap intervals.", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows:
        o = r["metrics"]["overall"]
        out.append(f"| {name} | " + " | ".join(fmt(o.get(c)) for c in FIELD_COLUMNS) + f" | {ms_cell(r)} |")
    return out


def safety_line(rows: Sequence[tuple[str, Mapping[str, Any]]], ci: bool = True) -> str:
    """One line: the safety-critical false-negative rate of every ``(name, results)`` (``n/a``:
    no safety-critical cue in the run's scenes)."""
    def cell(m: Mapping[str, Any] | None) -> str:
        return "n/a" if not m or m.get("value") is None else fmt(m, ci=ci)

    cells = "; ".join(f"{name} {cell(r['metrics']['overall'].get('safety_miss_rate'))}" for name, r in rows)
    return f"Safety-critical false-negative rate (missed safety-critical cues / safety-critical cues): {cells}"


def field_text(rows: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """The field's metrics of each ``(name, results)`` as a compact terminal table
    (:data:`FIELD_COLUMNS`, no intervals; ms per decision, mean and p99), then the
    safety-critical false-negative rate of every run on its own line."""
    from chimein.eval.terminal import HEADS, _grid, _value, direction, ms_value, wrap

    heads = [("", "", "policy"), *((*HEADS.get(c, (c, "")), direction(c)) for c in FIELD_COLUMNS),
             ("ms/", "decision", "mean"), ("", "", "p99")]
    body = [[name, *(_value(r["metrics"]["overall"].get(c)) for c in FIELD_COLUMNS), ms_value(r), ms_value(r, "p99")]
            for name, r in rows]
    title = ("The field's metrics: LiveKit's false cut-off rate, Full-Duplex-Bench's takeover rate (TOR) per condition "
             "(never averaged), safety-critical misses; ms per decision on one thread")
    return [*wrap(title), *_grid(heads, body, left=1), *wrap(safety_line(rows, ci=False))]
