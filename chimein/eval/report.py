"""Results files, Markdown reports, plots and leaderboards.

- :func:`write_results` writes ``DIR/results.json`` and (optionally) ``DIR/report.md`` with
  tables (overall, per tier, per family, per split; every value with its 95 % bootstrap
  interval) and PNG plots in ``DIR/plots/``: the latency CDF of hits, per-family bars and a few
  example timelines (actions over annotations, via :func:`chimein.scenes.show.plot_scene`).
- :func:`compare` reads several result folders and writes a leaderboard (Markdown table sorted
  by normalised reward, plus a latency CDF per policy).

matplotlib is imported only when plots are drawn.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chimein.eval.metrics import METRICS
from chimein.scenes.io import atomic_write, atomic_write_text
from chimein.scenes.spec import SpecError

__all__ = ["LEADERBOARD_COLUMNS", "compare", "fmt", "latency_text", "load_results", "markdown_report",
           "write_results"]

RESULTS = "results.json"
REPORT = "report.md"

#: Metrics in the leaderboard, in order.
LEADERBOARD_COLUMNS: tuple[str, ...] = (
    "normalized_reward", "timeliness", "respond_recall", "intervene_f1", "safety_miss_rate",
    "false_alarms_per_min", "pause_takeover_rate", "interruptions_per_turn", "latency_p50", "clip_accuracy",
)
#: Metrics in the per-split/family/tier tables of a report.
TABLE_COLUMNS: tuple[str, ...] = (
    "normalized_reward", "hit_rate", "timeliness", "miss_rate", "safety_miss_rate", "false_alarms_per_min",
    "pause_takeover_rate", "latency_p50", "clip_accuracy",
)
_SHORT = {
    "normalized_reward": "norm. reward", "timeliness": "timeliness", "respond_recall": "respond R",
    "intervene_f1": "intervene F1", "safety_miss_rate": "safety miss", "false_alarms_per_min": "FA/min",
    "pause_takeover_rate": "pause TOR", "interruptions_per_turn": "interr./turn", "latency_p50": "latency p50 (s)",
    "clip_accuracy": "clip acc.", "hit_rate": "hit rate", "miss_rate": "miss rate",
}


def latency_text(lat: Mapping[str, Any]) -> str:
    """``p50 1.20 / p90 ... / p99 ... / max ... ms`` of a decision-latency summary
    (:func:`chimein.eval.episodes.latency_summary`)."""
    def v(k: str) -> str:
        return "-" if lat.get(k) is None else f"{lat[k]:.2f}"

    return f"p50 {v('p50')} / p90 {v('p90')} / p99 {v('p99')} / max {v('max')} ms"


def fmt(m: Mapping[str, Any] | None, ci: bool = True, digits: int = 2) -> str:
    """``value [lo, hi]`` of a metric entry; ``-`` when undefined."""
    if not m or m.get("value") is None:
        return "-"
    s = f"{m['value']:.{digits}f}"
    lo, hi = (m.get("ci") or [None, None])[:2]
    if ci and lo is not None and hi is not None:
        s += f" [{lo:.{digits}f}, {hi:.{digits}f}]"
    return s


def _table(rows: Sequence[tuple[str, Mapping[str, Any]]], cols: Sequence[str], first: str) -> str:
    head = f"| {first} | n | " + " | ".join(_SHORT.get(c, c) for c in cols) + " |"
    sep = "|" + "---|" * (len(cols) + 2)
    body = [f"| {name} | {g.get('n_episodes', '')} | " + " | ".join(fmt(g.get(c)) for c in cols) + " |"
            for name, g in rows]
    return "\n".join([head, sep, *body])


def markdown_report(results: Mapping[str, Any], plots: Sequence[tuple[str, str]] = ()) -> str:
    """The Markdown text of ``report.md`` (``plots``: ``(caption, relative path)``)."""
    m = results["metrics"]
    s = results["suite"]
    t = results.get("timing", {})
    lines = [f"# {results['policy']} on {s['name']} (revision {s['revision']})", "",
             f"- suite fingerprint: `{s['fingerprint']}`",
             f"- policy: `{results['policy']}` {json.dumps(results.get('policy_kwargs') or {})}",
             f"- env: `{json.dumps(results.get('env', {}), sort_keys=True)}`",
             f"- episodes: {m['overall']['n_episodes']}; chimein {results.get('chimein_version')}"]
    if t.get("episodes_per_s"):
        lines.append(f"- this run: {t['episodes_run']} episodes in {t['wall_s']:.1f} s "
                     f"({t['episodes_per_s']:.2f} episodes/s, {t['audio_s_per_s']:.0f} s of audio per s)")
    lat = results.get("decision_latency_ms")
    if lat and lat.get("n"):
        lines.append(f"- real-time decision latency (network + queue + model) over {lat['n']} chunks of "
                     f"{lat.get('episodes', '?')} episodes: {latency_text(lat)}")
    b = m.get("bootstrap", {})
    lines += ["", f"Values are followed by 95 % bootstrap intervals over scenes ({b.get('resamples')} resamples, "
              "stratified by split).", "", "## Overall", "", "| metric | value | definition |", "|---|---|---|"]
    for k, (desc, hib) in METRICS.items():
        lines.append(f"| {k} {'(higher better)' if hib else '(lower better)'} | {fmt(m['overall'].get(k))} | {desc} |")
    for title, key in (("By tier", "by_tier"), ("By family", "by_family"), ("By split", "by_split")):
        if m.get(key):
            lines += ["", f"## {title}", "", _table(list(m[key].items()), TABLE_COLUMNS, key[3:])]
    if plots:
        lines += ["", "## Plots", ""]
        for cap, rel in plots:
            lines += [f"**{cap}**", "", f"![{cap}]({rel})", ""]
    return "\n".join(lines).rstrip() + "\n"


# ============================================================================================
# Plots
# ============================================================================================
def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    atomic_write(path, lambda t: fig.savefig(t, format="png", dpi=110, bbox_inches="tight"))
    _plt().close(fig)


def hit_latencies(episodes: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    """Hit latencies (s) by expected kind, read from the episodes' stored outcomes."""
    out: dict[str, list[float]] = {"RESPOND": [], "INTERVENE": []}
    for e in episodes:
        for c in (e.get("outcome") or {}).get("cues", []):
            if c.get("outcome") == "hit" and c.get("expected") in out:
                out[c["expected"]].append(float(c["latency_s"]))
    return out


def plot_latency_cdf(series: Mapping[str, Sequence[float]], path: Path, title: str) -> Path:
    """Empirical CDFs of hit latency, one line per series."""
    import numpy as np

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, vals in series.items():
        v = np.sort(np.asarray(vals, float))
        if v.size:
            ax.step(np.concatenate([[0.0], v]), np.arange(v.size + 1) / v.size, where="post", label=f"{name} (n={v.size})")
    ax.set_xlabel("latency from window start (s)")
    ax.set_ylabel("fraction of hits")
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)
    return path


def plot_family_bars(metrics: Mapping[str, Any], path: Path, cols: Sequence[str] = (
        "hit_rate", "timeliness", "normalized_reward", "false_alarms_per_min")) -> Path:
    """Per-split bars (families on the x axis, one bar per tier) with CI whiskers."""
    import numpy as np

    plt = _plt()
    splits = metrics["by_split"]
    tiers = list(dict.fromkeys(s.split("/", 1)[0] for s in splits))
    fams = list(dict.fromkeys(s.split("/", 1)[-1] for s in splits))
    fig, axes = plt.subplots(1, len(cols), figsize=(4.2 * len(cols), 3.6))
    width = 0.8 / max(1, len(tiers))
    for ax, col in zip(np.atleast_1d(axes), cols, strict=False):
        for j, tier in enumerate(tiers):
            vals, lo, hi = [], [], []
            for f in fams:
                g = splits.get(f"{tier}/{f}", {}).get(col) or {}
                v = g.get("value")
                ci = g.get("ci") or [None, None]
                vals.append(np.nan if v is None else v)
                lo.append(0 if v is None or ci[0] is None else max(0.0, v - ci[0]))
                hi.append(0 if v is None or ci[1] is None else max(0.0, ci[1] - v))
            x = np.arange(len(fams)) + (j - (len(tiers) - 1) / 2) * width
            ax.bar(x, vals, width, yerr=[lo, hi], capsize=2, label=tier)
        ax.set_xticks(np.arange(len(fams)), fams, rotation=30, ha="right", fontsize=8)
        ax.set_title(col, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=8)
    _save(fig, path)
    return path


def _pick_examples(episodes: Sequence[Mapping[str, Any]], n: int) -> list[Mapping[str, Any]]:
    """Up to ``n`` instructive episodes: a miss, an interruption, a false alarm, a clean hit;
    distinct families where possible; deterministic."""
    def has(e: Mapping[str, Any], what: str) -> bool:
        o = e.get("outcome") or {}
        if what == "miss":
            return any(c.get("outcome") == "miss" for c in o.get("cues", []))
        if what == "hit":
            return any(c.get("outcome") == "hit" for c in o.get("cues", []))
        return bool(o.get(what))

    chosen: list[Mapping[str, Any]] = []
    fams: set[str] = set()
    for what in ("interruptions", "miss", "false_alarms", "hit", "duplicates"):
        if len(chosen) >= n:
            break
        cands = [e for e in episodes if has(e, what) and e not in chosen]
        cands.sort(key=lambda e: (e.get("family") in fams, str(e.get("split")), str(e["scene_id"])))
        if cands:
            chosen.append(cands[0])
            fams.add(str(cands[0].get("family")))
    for e in episodes:
        if len(chosen) >= n:
            break
        if e not in chosen:
            chosen.append(e)
    return chosen[:n]


def plot_examples(episodes: Sequence[Mapping[str, Any]], outdir: Path, n: int, suite: Any = None) -> list[Path]:
    """Timelines of ``n`` example episodes: the scene (spectrogram when the suite's audio is
    at hand) with the policy's effective actions over the annotations."""
    from chimein.envs.scoring import ActionLog
    from chimein.eval.metrics import bare_spec
    from chimein.scenes.show import plot_scene
    from chimein.scenes.spec import Annotations

    paths = []
    for e in _pick_examples(episodes, n):
        log = ActionLog.from_dict(e["action_log"])
        acts = [(float(t), int(a)) for t, a, f in zip(log.times_s, log.actions, log.effective, strict=True) if a and f]
        spec, audio = None, None
        if suite is not None and e.get("split"):
            try:
                ds = suite.dataset(e["split"])
                scene = ds.load(ds.index_of(e["scene_id"]))
                spec, audio = scene.spec, scene.audio
            except SpecError:
                spec = None
        if spec is None:
            dur = max(float(e.get("duration_s") or 0.0), float(log.times_s[-1]) if log.n_steps else 1.0)
            spec = bare_spec(str(e["scene_id"]), Annotations.from_dict(e["annotations"]), dur,
                             str(e.get("family", "custom")))
        o = e.get("outcome") or {}
        summary = ", ".join(f"{c['expected'][0]}:{c['outcome']}" for c in o.get("cues", []))
        title = (f"{e.get('split', '')} {e['scene_id']}  reward={o.get('reward', float('nan')):.2f}  "
                 f"FA={len(o.get('false_alarms', []))} interr.={len(o.get('interruptions', []))}  [{summary}]")
        name = f"{str(e.get('split', 'x')).replace('/', '-')}-{e['scene_id']}.png"
        paths.append(plot_scene(spec, audio, outdir / name, actions=acts, title=title[:160]))
    return paths


# ============================================================================================
# Results
# ============================================================================================
def _json_default(x: Any) -> Any:
    if hasattr(x, "item"):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def write_results(results: Mapping[str, Any], outdir: str | os.PathLike[str], episodes: Sequence[Mapping[str, Any]] = (),
                  suite: Any = None, report: bool = True, examples: int = 3, name: str = RESULTS) -> Path:
    """Write ``outdir/results.json`` (or ``name``) and, with ``report``, ``report.md`` + plots."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    atomic_write_text(path, json.dumps(results, indent=1, sort_keys=True, default=_json_default) + "\n")
    if report:
        plots: list[tuple[str, str]] = []
        pdir = out / "plots"
        lat = hit_latencies(episodes)
        if any(lat.values()):
            plot_latency_cdf(lat, pdir / "latency_cdf.png", f"{results['policy']}: hit latency")
            plots.append(("Latency CDF of hits", "plots/latency_cdf.png"))
        if results["metrics"].get("by_split"):
            plot_family_bars(results["metrics"], pdir / "families.png")
            plots.append(("Per-family metrics by tier (95 % CI)", "plots/families.png"))
        if examples and episodes:
            for p in plot_examples(episodes, pdir, examples, suite):
                plots.append((f"Example timeline {p.stem}", f"plots/{p.name}"))
        atomic_write_text(out / (REPORT if name == RESULTS else Path(name).stem + ".md"),
                          markdown_report(results, plots))
    return path


def load_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``results.json`` of a run folder (or the file itself)."""
    p = Path(path)
    f = p / RESULTS if p.is_dir() else p
    if not f.is_file():
        raise SpecError(f"{p}: no {RESULTS} here; is it an output folder of `chimein eval`?")
    try:
        return json.loads(f.read_text())
    except json.JSONDecodeError as e:
        raise SpecError(f"{f}: not valid JSON ({e.msg})") from None


def compare(runs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str] | None = None,
            sort_by: str = "normalized_reward") -> tuple[str, Path | None]:
    """A leaderboard of several ``chimein eval`` output folders.

    Rows are sorted by ``sort_by`` (best first); every value carries its 95 % interval. Runs on
    different suites or materialisations (fingerprints) are refused: their numbers are not
    comparable. With ``out`` (a ``.md`` path or a folder) the table is written there together
    with ``leaderboard_latency.png`` (hit-latency CDF per policy).

    Returns
    -------
    (str, Path or None)
        The Markdown table and the file written.
    """
    if not runs:
        raise SpecError("eval compare: give at least one result folder (chimein eval compare DIR1 DIR2 ...)")
    if sort_by not in METRICS:
        raise SpecError(f"eval compare: sort_by={sort_by!r} is not a metric; use one of {list(METRICS)}")
    res = [(Path(r), load_results(r)) for r in runs]
    fps = {r["suite"]["fingerprint"] for _, r in res}
    if len(fps) > 1:
        desc = "; ".join(f"{p}: {r['suite']['name']} rev {r['suite']['revision']} {r['suite']['fingerprint'][:12]}"
                         for p, r in res)
        raise SpecError(f"eval compare: the runs are on different suites or materialisations ({desc}); "
                        "compare runs of one suite only")
    envs = {json.dumps(r.get("env"), sort_keys=True) for _, r in res}
    hib = METRICS[sort_by][1]

    def key(pr: tuple[Path, dict[str, Any]]) -> float:
        v = pr[1]["metrics"]["overall"][sort_by]["value"]
        return -math.inf if v is None else (v if hib else -v)

    res.sort(key=key, reverse=True)
    s = res[0][1]["suite"]
    head = ["rank", "policy", *(_SHORT.get(c, c) for c in LEADERBOARD_COLUMNS), "episodes/s"]
    lines = [f"Leaderboard on `{s['name']}` revision {s['revision']} (fingerprint `{s['fingerprint'][:16]}`), "
             f"{res[0][1]['metrics']['overall']['n_episodes']} episodes; values with 95 % bootstrap intervals.",
             "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, (_, r) in enumerate(res, 1):
        o = r["metrics"]["overall"]
        eps = (r.get("timing") or {}).get("episodes_per_s")
        name = r["policy"] + (f" {json.dumps(r['policy_kwargs'], sort_keys=True)}" if r.get("policy_kwargs") else "")
        lines.append(f"| {i} | {name} | " + " | ".join(fmt(o.get(c)) for c in LEADERBOARD_COLUMNS)
                     + f" | {'-' if not eps else f'{eps:.1f}'} |")
    if len(envs) > 1:
        lines += ["", "Note: the runs used different env options: "
                  + "; ".join(f"{r['policy']}: {json.dumps(r.get('env'), sort_keys=True)}" for _, r in res)]
    text = "\n".join(lines) + "\n"
    written = None
    if out is not None:
        o = Path(out)
        md = o if o.suffix == ".md" else o / "leaderboard.md"
        md.parent.mkdir(parents=True, exist_ok=True)
        series = {}
        for p, r in res:
            ep = p / "episodes.jsonl"
            if ep.is_file():
                from chimein.eval.episodes import read_episodes

                lat = hit_latencies(read_episodes(ep))
                series[r["policy"]] = lat["RESPOND"] + lat["INTERVENE"]
        if any(series.values()):
            png = md.with_name(md.stem + "_latency.png")
            plot_latency_cdf(series, png, f"hit latency CDF on {s['name']}")
            text += f"\n![hit latency CDF per policy]({png.name})\n"
        atomic_write_text(md, text)
        written = md
    return text, written
