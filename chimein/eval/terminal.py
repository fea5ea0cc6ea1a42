"""Compact leaderboard tables for a terminal (at most :data:`WIDTH` columns).

``chimein eval compare``, ``chimein eval`` summaries and ``chimein demo`` print these; the full
Markdown tables, every value with its 95 % interval, stay in ``leaderboard.md``
(:func:`chimein.eval.report.compare`).

Conventions (ASCII, so that any terminal shows them):

- every metric column carries a direction mark under its name: ``(+)`` higher is better,
  ``(-)`` lower is better;
- values have no interval; ``n/a`` marks a metric that is undefined on these scenes (e.g.
  the safety-miss rate of a suite without safety-critical cues), never a 0;
- in the paired table a trailing ``*`` marks a difference whose 95 % paired interval excludes 0.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from chimein.eval.metrics import METRICS

__all__ = ["WIDTH", "direction", "leaderboard_text", "ms_value", "paired_text", "wrap"]

#: Terminal width the tables fit in.
WIDTH = 120
#: Two-line column headings of the metrics (first line, second line).
HEADS: dict[str, tuple[str, str]] = {
    "normalized_reward": ("norm.", "reward"), "timeliness": ("timeli-", "ness"), "respond_recall": ("respond", "recall"),
    "intervene_f1": ("interv.", "F1"), "safety_miss_rate": ("safety", "miss"), "false_alarms_per_min": ("false", "al./min"),
    "pause_takeover_rate": ("pause", "takeover"), "interruptions_per_turn": ("interr.", "/turn"),
    "latency_p50": ("latency", "p50 (s)"), "clip_accuracy": ("clip", "acc."), "hit_rate": ("hit", "rate"),
    "miss_rate": ("miss", "rate"), "false_cutoff_rate": ("false", "cut-off"), "smooth_takeover_rate": ("smooth", "TOR"),
    "side_talk_takeover_rate": ("side-talk", "TOR"), "background_takeover_rate": ("backgr.", "TOR"),
}
LEGEND = "(+) higher is better, (-) lower is better; n/a: undefined on these scenes (not 0)"


def direction(metric: str) -> str:
    """``(+)`` for a metric where higher is better, ``(-)`` where lower is better."""
    return "(+)" if METRICS[metric][1] else "(-)"


def wrap(text: str, width: int = WIDTH) -> list[str]:
    """``text`` wrapped to ``width`` columns (long words, e.g. paths, are not broken)."""
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [""]


def _grid(heads: Sequence[tuple[str, str, str]], rows: Sequence[Sequence[str]], left: int) -> list[str]:
    """Three heading lines and the rows, columns right-aligned except the first ``left``
    (left-aligned), two spaces apart; the widest of the ``left`` columns is cut to fit :data:`WIDTH`."""
    widths = [max(len(x) for x in (*h, *(r[i] for r in rows))) for i, h in enumerate(heads)]
    over = sum(widths) + 2 * (len(widths) - 1) - WIDTH
    if over > 0 and left:
        i = max(range(left), key=lambda j: widths[j])
        widths[i] = max(8, widths[i] - over)
    out = []
    for cells in [*zip(*heads, strict=True), *rows]:
        parts = []
        for i, (c, w) in enumerate(zip(cells, widths, strict=True)):
            c = c if len(c) <= w else c[: w - 1] + "~"
            parts.append(c.ljust(w) if i < left else c.rjust(w))
        out.append("  ".join(parts).rstrip())
    return out


def _value(m: Mapping[str, Any] | None) -> str:
    v = (m or {}).get("value")
    return "n/a" if v is None else f"{v:.2f}"


def leaderboard_text(rows: Sequence[tuple[str, Mapping[str, Any]]], columns: Sequence[str], title: str,
                     notes: Sequence[str] = ()) -> list[str]:
    """The terminal leaderboard: ``title``, one line per ``(name, results)`` in rank order with
    the ``columns`` metrics (no intervals) and episodes/s, the legend and the ``notes``."""
    heads = [("", "", "#"), ("", "", "policy")]
    heads += [(*HEADS.get(c, (c, "")), direction(c)) for c in columns] + [("", "episodes", "/s"), ("", "ms/dec", "mean")]
    body = []
    for i, (name, r) in enumerate(rows, 1):
        o = r["metrics"]["overall"]
        eps = (r.get("timing") or {}).get("episodes_per_s")
        body.append([str(i), name, *(_value(o.get(c)) for c in columns), "-" if not eps else f"{eps:.1f}", ms_value(r)])
    lines = [*wrap(title), *_grid(heads, body, left=2), *wrap(LEGEND)]
    for n in notes:
        lines += wrap(n)
    return lines


def ms_value(r: Mapping[str, Any], key: str = "mean") -> str:
    """A run's ``ms_per_decision[key]`` (2 decimals; ``-`` when not measured)."""
    v = (r.get("ms_per_decision") or {}).get(key)
    return "-" if v is None else f"{v:.2f}"


def _diff(d: Mapping[str, Any]) -> str:
    v = d.get("value")
    return "n/a" if v is None else f"{v:+.3f}" + ("*" if d.get("significant") else "")


def paired_text(paired: Mapping[str, Any]) -> list[str]:
    """The paired differences of :func:`chimein.eval.report.compare` (its ``.paired.json``
    content) as a terminal table: ``run - reference`` per metric, ``*`` where significant."""
    metrics = paired["metrics"]
    ref = paired["reference"]
    b = paired["bootstrap"]
    heads = [("", "", "policy"), ("", "", "scenes")]
    heads += [(*HEADS.get(m, (m, "")), direction(m)) for m in metrics]
    body = []
    for r in paired["runs"]:
        if r["paired"]:
            body.append([r["name"], str(r["n_scenes"]), *(_diff(r["diffs"][m]) for m in metrics)])
        else:
            body.append([r["name"], "-", f"not paired: {r['reason']}", *([""] * (len(metrics) - 1))])
    title = (f"Paired differences vs `{ref['name']}`: run - reference on the same {ref['n_scenes'] or ''} scenes, "
             f"{b['resamples']} paired bootstrap resamples, seed {b['seed']}")
    return [*wrap(" ".join(title.split())), *_grid(heads, body, left=1),
            *wrap("*: the 95 % interval of the difference excludes 0; (+)/(-): the better sign")]
