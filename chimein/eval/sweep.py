"""Operating curves: evaluate one policy at several values of one knob, and plot the trade-off.

A timing policy's headline numbers depend on its operating point: a timing LM's decide-head
``logit_bias``, an endpointer's silence timeout. Raising timeliness by acting more often is not
an improvement if false alarms and interruptions rise with it; comparing two policies (e.g. a
supervised checkpoint and its RL refinement) at *matched* false-alarm or interruption rates
says whether one is better or merely more eager, the way detectors are compared on ROC/DET
curves. :func:`sweep` runs :func:`chimein.eval.runner.evaluate` once per value (each in its
own resumable folder, ``OUT/<param>=<value>``) and writes ``OUT/sweep.json``;
:func:`tradeoff` plots several sweeps (timeliness against false alarms per minute and against
interruptions per user turn) and interpolates each curve at given rates.

The field's operating-point figures (LiveKit's end-of-turn benchmark) come from the same curve
(:func:`curve_figures`): response latency (``respond_latency_p50``: the median delay of RESPOND
hits after the turn's end) on one axis, ``false_cutoff_rate`` (addressed user turns spoken into
before they ended) on the other, interpolated linearly between operating points: the false
cut-off rate at 300 ms and at 600 ms of latency, and the latency at a 5 % false cut-off rate.
Each is None when the sweep does not reach it (no extrapolation): sweep the knob wide enough that
the points straddle 300 and 600 ms and 5 %. They are written to ``sweep.json`` (``field``) and
printed by ``chimein eval sweep`` and ``chimein eval tradeoff``.

Examples
--------
>>> import tempfile
>>> from chimein.eval.suites import tiny_suite
>>> d = tempfile.mkdtemp()
>>> s = sweep("random", tiny_suite(2), d, "rate", [0.0, 0.2], cache_dir=d, workers=1, progress=False)
>>> [round(r["metrics"]["actions_per_min"]["value"], 1) > 0 for r in s["rows"]]
[False, True]
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chimein.errors import ChimeinError, SpecError

__all__ = ["CURVE_FIGURES", "SWEEP_METRICS", "curve_figures", "interpolate", "sweep", "tradeoff"]

#: overall metrics kept per operating point (value and bootstrap CI)
SWEEP_METRICS = ("timeliness", "normalized_reward", "false_alarms_per_min", "interruptions_per_turn",
                 "safety_miss_rate", "hit_rate", "miss_rate", "actions_per_min", "latency_p50",
                 "respond_latency_p50", "false_cutoff_rate")
SWEEP_FILE = "sweep.json"
#: The field's figures read off an operating curve: name -> (x metric, y metric, x value,
#: higher y is better, short label). See :func:`curve_figures`.
CURVE_FIGURES: dict[str, tuple[str, str, float, bool, str]] = {
    "false_cutoff_at_300ms": ("respond_latency_p50", "false_cutoff_rate", 0.3, False, "cut-off @300ms"),
    "false_cutoff_at_600ms": ("respond_latency_p50", "false_cutoff_rate", 0.6, False, "cut-off @600ms"),
    "latency_at_5pct_cutoff": ("false_cutoff_rate", "respond_latency_p50", 0.05, False, "latency (s) @5% cut-off"),
}


def _policy_value(param: str, value: Any) -> Any:
    """``logit_bias`` given as one number b means ``[0, b, b]`` (RESPOND and INTERVENE shifted
    together, as ``chimein train calibrate`` sweeps it); anything else is passed unchanged."""
    if param == "logit_bias" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return [0.0, float(value), float(value)]
    return value


def _label(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{float(value):+g}"
    return json.dumps(value, separators=(",", ":"))


def _default_value(policy: str, param: str) -> Any:
    """The value a policy uses by default: a checkpoint's calibrated ``logit_bias``, or a named
    policy's constructor default for ``param`` (``silence_timeout_s`` 0.7 for the endpointers);
    else None."""
    import inspect

    from chimein.agents.lm.checkpoint import META_FILE
    from chimein.agents.registry import POLICY_FACTORIES, looks_like_path, make_policy

    if not looks_like_path(str(policy)) and str(policy).lower().replace("_", "-") in POLICY_FACTORIES:
        try:
            p = inspect.signature(type(make_policy(str(policy))).__init__).parameters.get(param)
        except ChimeinError:
            return None
        return None if p is None or p.default is inspect.Parameter.empty else p.default
    meta = Path(str(policy)) / META_FILE
    if param != "logit_bias" or not meta.is_file():
        return None
    bias = json.loads(meta.read_text()).get("inference", {}).get("logit_bias")
    if isinstance(bias, list) and len(bias) == 3 and bias[0] == 0 and bias[1] == bias[2]:
        return float(bias[1])
    return bias


def sweep(
    policy: str,
    suite: Any,
    out: str | os.PathLike[str],
    param: str,
    values: Sequence[Any],
    *,
    policy_kwargs: Mapping[str, Any] | None = None,
    **eval_kwargs: Any,
) -> dict[str, Any]:
    """Evaluate ``policy`` on ``suite`` once per value of the constructor argument ``param``.

    Parameters
    ----------
    policy
        A registry name or checkpoint path (as ``chimein eval policy=``).
    suite
        A suite name, file or definition.
    out
        Folder: ``OUT/<param>=<value>/`` holds each evaluation (resumable: a rerun plays only
        missing episodes), ``OUT/sweep.json`` the summary.
    param, values
        The knob and its values (``logit_bias``: a number b means ``[0, b, b]``).
    policy_kwargs
        Other constructor arguments, the same at every point.
    eval_kwargs
        :func:`chimein.eval.runner.evaluate` options (``workers``, ``batch_size``, ...).

    Returns
    -------
    dict
        ``{"policy", "param", "default", "suite", "rows": [{"value", "dir", "metrics"}], "field"}``
        where ``metrics`` maps :data:`SWEEP_METRICS` to ``{"value", "ci"}`` and ``field`` holds
        :func:`curve_figures`.
    """
    from chimein.eval.runner import evaluate
    from chimein.io import atomic_write_text

    if not param or not isinstance(param, str):
        raise SpecError("eval sweep: field 'param': the name of a policy constructor argument, e.g. logit_bias")
    vals = list(values)
    if not vals:
        raise SpecError("eval sweep: field 'values': give at least one value, e.g. values=[-0.5,0,0.5]")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, suite_id = [], None
    for v in vals:
        d = out / f"{param}={_label(v)}"
        kw = {**dict(policy_kwargs or {}), param: _policy_value(param, v)}
        res = evaluate(policy, suite, out=d, policy_kwargs=kw, **eval_kwargs)
        o = res["metrics"]["overall"]
        suite_id = res["suite"]
        rows.append({"value": v, "dir": d.name,
                     "metrics": {k: {"value": o.get(k, {}).get("value"), "ci": o.get(k, {}).get("ci")}
                                 for k in SWEEP_METRICS}})
    summary = {"policy": str(policy), "param": param, "default": _default_value(policy, param),
               "policy_kwargs": dict(policy_kwargs or {}), "suite": suite_id, "rows": rows}
    summary["field"] = curve_figures(summary)
    atomic_write_text(out / SWEEP_FILE, json.dumps(summary, indent=1) + "\n")
    return summary


def load_sweep(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``sweep.json`` (a file or the folder holding it)."""
    p = Path(path)
    if p.is_dir():
        p = p / SWEEP_FILE
    if not p.is_file():
        raise SpecError(f"{path}: no {SWEEP_FILE}; run `chimein eval sweep ... out={path}` first")
    d = json.loads(p.read_text())
    if not isinstance(d, dict) or not isinstance(d.get("rows"), list):
        raise SpecError(f"{p}: not a sweep summary (no 'rows')")
    return d


def _xy(s: Mapping[str, Any], x: str, y: str) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    pts = [(r["metrics"][x]["value"], r["metrics"][y]["value"], r["value"]) for r in s["rows"]
           if r["metrics"].get(x, {}).get("value") is not None and r["metrics"].get(y, {}).get("value") is not None]
    pts.sort(key=lambda p: (p[0], p[1]))
    return (np.array([p[0] for p in pts], float), np.array([p[1] for p in pts], float), [p[2] for p in pts])


def interpolate(s: Mapping[str, Any], x: str, y: str, at: float, higher_better: bool = True) -> float | None:
    """``y`` of sweep ``s`` at ``x == at`` by linear interpolation between operating points
    (None outside the swept range: no extrapolation). Where several points share an ``x`` the
    best ``y`` is kept: the largest, or with ``higher_better=False`` the smallest."""
    xs, ys, _ = _xy(s, x, y)
    if len(xs) == 0 or not xs[0] - 1e-12 <= at <= xs[-1] + 1e-12:
        return None
    best = np.max if higher_better else np.min
    if len(xs) == 1:
        return float(ys[0])
    # several points can share an x: keep the best y there (the envelope)
    ux = np.unique(xs)
    uy = np.array([best(ys[xs == u]) for u in ux])
    return float(np.interp(at, ux, uy))


def _frontier(s: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The operating points of sweep ``s`` on its latency / cut-off frontier: (median response
    latency, false cut-off rate) pairs, latency ascending, keeping a point only when its cut-off
    rate is below that of every faster point (a slower point that cuts off more is dominated:
    the knob's noise, not a trade-off anyone would choose)."""
    lat, cut, _ = _xy(s, "respond_latency_p50", "false_cutoff_rate")
    keep: list[tuple[float, float]] = []
    for a, b in zip(lat, cut, strict=True):
        if not keep or b < keep[-1][1] - 1e-12:
            keep.append((float(a), float(b)))
    return np.array([k[0] for k in keep]), np.array([k[1] for k in keep])


def _on(xs: np.ndarray, ys: np.ndarray, at: float) -> float | None:
    """``ys`` at ``xs == at`` (``xs`` ascending), linear, None outside ``[xs[0], xs[-1]]``."""
    if len(xs) == 0 or not xs[0] - 1e-12 <= at <= xs[-1] + 1e-12:
        return None
    return float(ys[0]) if len(xs) == 1 else float(np.interp(at, xs, ys))


def curve_figures(s: Mapping[str, Any]) -> dict[str, float | None]:
    """The field's figures of sweep ``s`` (:data:`CURVE_FIGURES`, LiveKit's end-of-turn benchmark):
    ``false_cutoff_at_300ms`` / ``_600ms``, the false cut-off rate where the median response
    latency after the turn's end is 0.3 / 0.6 s, and ``latency_at_5pct_cutoff``, the median
    response latency (s) where the false cut-off rate is 5 %. Read off the sweep's frontier
    (:func:`_frontier`: dominated points dropped, so the curve falls as latency grows), linearly
    between operating points; None outside the swept range (never extrapolated) or for a sweep
    written before these metrics were kept.

    Examples
    --------
    >>> pts = ((0.2, 0.24, 0.2), (0.5, 0.56, 0.04), (0.8, 0.88, 0.0), (1.1, 1.2, 0.03))  # the last: dominated
    >>> rows = [{"value": v, "metrics": {"respond_latency_p50": {"value": lat}, "false_cutoff_rate": {"value": c}}}
    ...         for v, lat, c in pts]
    >>> {k: None if v is None else round(v, 3) for k, v in curve_figures({"rows": rows}).items()}
    {'false_cutoff_at_300ms': 0.17, 'false_cutoff_at_600ms': 0.035, 'latency_at_5pct_cutoff': 0.54}
    """
    lat, cut = _frontier(s)
    return {"false_cutoff_at_300ms": _on(lat, cut, 0.3), "false_cutoff_at_600ms": _on(lat, cut, 0.6),
            "latency_at_5pct_cutoff": _on(cut[::-1], lat[::-1], 0.05)}


def tradeoff(
    sweeps: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str] | None = None,
    y: str = "timeliness",
    xs: Sequence[str] = ("false_alarms_per_min", "interruptions_per_turn"),
    at: Mapping[str, Sequence[float]] | None = None,
    names: Sequence[str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Plot ``y`` against each of ``xs`` for several sweeps (one line per sweep, points labelled
    with their value, a policy's default operating point ringed) and tabulate ``y`` interpolated
    at the rates in ``at`` (``{x: [rates]}``). Returns ``(markdown table, data)``; writes the PNG
    (and ``.json`` beside it) when ``out`` is given."""
    loaded = [load_sweep(p) for p in sweeps]
    labels = list(names) if names else [Path(str(p)).name or str(p) for p in sweeps]
    if len(labels) != len(loaded):
        raise SpecError(f"eval tradeoff: {len(labels)} names for {len(loaded)} sweeps")
    at = {k: [float(v) for v in vs] for k, vs in (at or {}).items()}
    for k in at:
        if k not in SWEEP_METRICS:
            raise SpecError(f"eval tradeoff: field 'at': unknown metric {k!r}; use one of {SWEEP_METRICS}")
    data: dict[str, Any] = {"y": y, "xs": list(xs), "sweeps": {}}
    head = ["policy", *[f"{y} @ {k}={v:g}" for k, vs in at.items() for v in vs],
            *(f[4] for f in CURVE_FIGURES.values())]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for lab, s in zip(labels, loaded, strict=True):
        interp = {f"{k}={v:g}": interpolate(s, k, y, v) for k, vs in at.items() for v in vs}
        field = curve_figures(s)
        data["sweeps"][lab] = {"param": s["param"], "default": s.get("default"), "interpolated": interp,
                               "field": field,
                               "points": [{"value": r["value"], **{m: r["metrics"].get(m, {}).get("value")
                                                                   for m in (y, *xs)}} for r in s["rows"]]}
        cells = ["-" if v is None else f"{v:.3f}" for v in (*interp.values(), *field.values())]
        lines.append("| " + " | ".join([lab, *cells]) + " |")
    lines += ["", "cut-off @300ms/@600ms: false cut-off rate at a median response latency of 0.3/0.6 s; latency @5% "
              "cut-off: median response latency (s) at a 5 % false cut-off rate (LiveKit's end-of-turn benchmark), "
              "interpolated between operating points; -: outside the swept range (never extrapolated)."]
    text = "\n".join(lines) + "\n"
    if out is not None:
        _plot(loaded, labels, Path(out), y, xs)
        from chimein.io import atomic_write_text

        atomic_write_text(Path(out).with_suffix(".json"), json.dumps(data, indent=1) + "\n")
    return text, data


def _plot(loaded: Sequence[Mapping[str, Any]], labels: Sequence[str], out: Path, y: str,
          xs: Sequence[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(xs), figsize=(5.2 * len(xs), 4.2), squeeze=False)
    for ax, x in zip(axes[0], xs, strict=True):
        for i, (lab, s) in enumerate(zip(labels, loaded, strict=True)):
            px, py, vals = _xy(s, x, y)
            color = f"C{i % 10}"
            mixed = len({str(t["param"]) for t in loaded}) > 1
            ax.plot(px, py, "o-", color=color, label=f"{lab} ({s['param']})" if mixed else lab, ms=4)
            for a, b, v in zip(px, py, vals, strict=True):
                ax.annotate(_label(v), (a, b), fontsize=6, xytext=(3, 3), textcoords="offset points", color=color)
                dflt = s.get("default")
                if dflt is not None and isinstance(v, (int, float)) and isinstance(dflt, (int, float)) \
                        and math.isclose(float(v), float(dflt)):
                    ax.plot([a], [b], "o", ms=11, mfc="none", mec=color, mew=1.5)
        ax.set_xlabel(x.replace("_", " "))
        ax.set_ylabel(y.replace("_", " "))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    params = sorted({str(s["param"]) for s in loaded})
    knob = params[0] if len(params) == 1 else "each policy's knob (in the legend)"
    fig.suptitle(f"{y.replace('_', ' ')} vs cost, sweeping {knob} "
                 f"(ringed: the policy's own operating point)", fontsize=10)
    fig.tight_layout()
    tmp = out.with_name(out.name + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, out)
