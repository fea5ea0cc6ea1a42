"""Results files, Markdown reports, plots and leaderboards.

- :func:`write_results` writes ``DIR/results.json`` and (optionally) ``DIR/report.md`` with
  tables (overall, per tier, per family, per split; every value with its 95 % bootstrap
  interval) and PNG plots in ``DIR/plots/``: the latency CDF of hits, per-family bars and a few
  example timelines (actions over annotations, via :func:`chimein.scenes.show.plot_scene`).
- :func:`compare` reads several result folders and writes a leaderboard (Markdown table sorted
  by normalised reward, plus a latency CDF per policy) followed by a table of paired
  differences against a reference run (:func:`paired_differences`: run - reference on the same
  scenes, with a paired bootstrap interval), also written as ``<leaderboard>.paired.json``.
- When a run has a held-out tier (``results["metrics"]["gap"]``, see
  :func:`chimein.eval.metrics.generalisation_gap`), ``report.md`` has a "Generalisation gap"
  table and the leaderboard a held-out gap column of normalised reward (both drawn by
  :mod:`chimein.eval.tables`, which holds the table cells).

- ``report.md`` has a section "The field's metrics" and the leaderboard a table of them (false
  cut-off rate, takeover rate per condition, the safety-critical false-negative rate on its own
  line, ``ms_per_decision``; drawn by :mod:`chimein.eval.tables`).

matplotlib is imported only when plots are drawn.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chimein.envs.episode import EpisodeRecord
from chimein.errors import ChimeinError, SpecError
from chimein.eval.metrics import (
    CI_PERCENTILES,
    COUNTS,
    METRICS,
    episode_counts,
    judge,
    metrics_from_counts,
)
from chimein.eval.suites import audio_fingerprint_of, same_audio, same_scenes
from chimein.eval.tables import SHORT as _SHORT
from chimein.eval.tables import (
    TABLE_COLUMNS,
    field_section,
    field_table,
    field_text,
    fmt,
    gap_of,
    gap_section,
    gap_terminal,
    gap_tiers,
    ms_cell,
    safety_line,
    table,
)
from chimein.eval.tables import diff_cell as _diff_cell
from chimein.io import atomic_write, atomic_write_text
from chimein.scenes.sampler.config import FAMILIES

__all__ = ["LEADERBOARD_COLUMNS", "PAIRED_METRICS", "check_same_scenes", "compare", "episode_count_rows", "fmt",
           "latency_text", "load_results", "markdown_report", "paired_differences", "write_results"]

RESULTS = "results.json"
REPORT = "report.md"

#: Metrics in the leaderboard, in order.
LEADERBOARD_COLUMNS: tuple[str, ...] = (
    "normalized_reward", "timeliness", "respond_recall", "intervene_f1", "safety_miss_rate",
    "false_alarms_per_min", "pause_takeover_rate", "interruptions_per_turn", "latency_p50", "clip_accuracy",
)
#: Metrics of the paired-difference table of :func:`compare` (any metric computed from counts).
PAIRED_METRICS: tuple[str, ...] = (
    "normalized_reward", "timeliness", "interruptions_per_turn", "safety_miss_rate", "false_alarms_per_min",
)
#: Suffix of the paired-difference JSON written next to a leaderboard (``leaderboard.paired.json``).
PAIRED_SUFFIX = ".paired.json"


def latency_text(lat: Mapping[str, Any]) -> str:
    """``p50 1.20 / p90 ... / p99 ... / max ... ms`` of a decision-latency summary
    (:func:`chimein.eval.episodes.latency_summary`)."""
    def v(k: str) -> str:
        return "-" if lat.get(k) is None else f"{lat[k]:.2f}"

    return f"p50 {v('p50')} / p90 {v('p90')} / p99 {v('p99')} / max {v('max')} ms"


def markdown_report(results: Mapping[str, Any], plots: Sequence[tuple[str, str]] = ()) -> str:
    """The Markdown text of ``report.md`` (``plots``: ``(caption, relative path)``)."""
    m = results["metrics"]
    s = results["suite"]
    t = results.get("timing", {})
    lines = [f"# {results['policy']} on {s['name']} (revision {s['revision']})", "",
             f"- suite fingerprint: `{s['fingerprint']}`"
             + (f" (audio `{s['audio_fingerprint']}`)" if s.get("audio_fingerprint") else ""),
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
    lines += ["", *field_section(results)]
    for title, key in (("By tier", "by_tier"), ("By family", "by_family"), ("By split", "by_split")):
        if m.get(key):
            lines += ["", f"## {title}", "", table(list(m[key].items()), TABLE_COLUMNS, key[3:])]
        if key == "by_tier" and m.get("gap"):
            lines += ["", *gap_section(m["gap"])]
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


def hit_latencies(episodes: Sequence[EpisodeRecord]) -> dict[str, list[float]]:
    """Hit latencies (s) by expected kind, read from the episodes' stored outcomes."""
    out: dict[str, list[float]] = {"RESPOND": [], "INTERVENE": []}
    for e in episodes:
        for c in e.outcome.cue_outcomes if e.outcome is not None else ():
            if c.outcome == "hit" and c.expected in out:
                out[c.expected].append(float(c.latency_s))  # type: ignore[arg-type]
    return out


def latency_cdf_figure(series: Mapping[str, Sequence[float]], title: str) -> Any:
    """The figure of :func:`plot_latency_cdf`; a series without hits gets a legend entry
    ``name: no hits`` (and no line) rather than vanishing."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, vals in series.items():
        v = np.sort(np.asarray(vals, float))
        if v.size:
            ax.step(np.concatenate([[0.0], v]), np.arange(v.size + 1) / v.size, where="post", label=f"{name} (n={v.size})")
        else:
            ax.plot([], [], ls="none", marker="", label=f"{name}: no hits (n/a)")
    ax.set_xlabel("latency from window start (s)")
    ax.set_ylabel("fraction of hits")
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_latency_cdf(series: Mapping[str, Sequence[float]], path: Path, title: str) -> Path:
    """Empirical CDFs of hit latency, one line per series."""
    _save(latency_cdf_figure(series, title), path)
    return path


#: Label drawn where a metric is undefined (e.g. hit rate on scenes without action cues).
NA = "n/a"


def family_figure(metrics: Mapping[str, Any], cols: Sequence[str], title: str) -> Any:
    """The figure of :func:`plot_family_bars`: one panel per metric, families on the x axis, one
    bar per tier with its 95 % interval; an undefined value gets no bar but a grey ``n/a``
    (not a 0); one legend for the figure (tiers, direction of each metric in the panel titles)."""
    from matplotlib.patches import Patch

    plt = _plt()
    splits = metrics["by_split"]
    tiers = list(dict.fromkeys(s.split("/", 1)[0] for s in splits))
    fams = list(dict.fromkeys(s.split("/", 1)[-1] for s in splits))
    fig, axes = plt.subplots(1, len(cols), figsize=(4.2 * len(cols), 3.9), squeeze=False)
    width = 0.8 / max(1, len(tiers))
    for ax, col in zip(axes[0], cols, strict=True):
        for j, tier in enumerate(tiers):
            x = np.arange(len(fams)) + (j - (len(tiers) - 1) / 2) * width
            pts = []
            for xi, f in zip(x, fams, strict=True):
                g = splits.get(f"{tier}/{f}", {}).get(col) or {}
                v = g.get("value")
                if v is None:  # undefined here: no bar (a 0-height bar would read as a true 0)
                    ax.axvspan(xi - width / 2, xi + width / 2, facecolor="none", edgecolor="0.75", hatch="///",
                               lw=0, gid=NA)
                    ax.text(xi, 0.5, NA, transform=ax.get_xaxis_transform(), rotation=90, ha="center",
                            va="center", fontsize=7.5, color="0.3", gid=NA)
                    continue
                lo, hi = (g.get("ci") or [None, None])[:2]
                pts.append((xi, v, 0.0 if lo is None else max(0.0, v - lo), 0.0 if hi is None else max(0.0, hi - v)))
            if pts:
                px, pv, plo, phi = (list(t) for t in zip(*pts, strict=True))
                ax.bar(px, pv, width, yerr=[plo, phi], capsize=2, color=f"C{j}", label=tier)
        ax.axhline(0, color="0.3", lw=0.6)
        ax.set_xticks(np.arange(len(fams)), fams, rotation=30, ha="right", fontsize=8)
        hib = METRICS[col][1] if col in METRICS else None
        ax.set_title(col.replace("_", " ") + ("" if hib is None else " (higher better)" if hib else " (lower better)"),
                     fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    handles = [Patch(color=f"C{j}", label=f"tier {t}") for j, t in enumerate(tiers)]
    handles.append(Patch(facecolor="none", edgecolor="0.6", hatch="///",
                         label=f"{NA}: undefined there (e.g. no action cues), not 0"))
    fig.suptitle(title, fontsize=11, y=0.99)
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.94), ncol=len(handles), fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    return fig


def plot_family_bars(metrics: Mapping[str, Any], path: Path, cols: Sequence[str] = (
        "hit_rate", "timeliness", "normalized_reward", "false_alarms_per_min"), title: str = "Per-family metrics") -> Path:
    """Per-split bars (families on the x axis, one bar per tier) with CI whiskers
    (:func:`family_figure`); ``title`` names the policy and suite."""
    _save(family_figure(metrics, cols, title), path)
    return path


def _pick_examples(episodes: Sequence[EpisodeRecord], n: int) -> list[EpisodeRecord]:
    """Up to ``n`` instructive episodes: a miss, an interruption, a false alarm, a clean hit;
    distinct families where possible; deterministic."""
    def has(e: EpisodeRecord, what: str) -> bool:
        o = e.outcome
        if o is None:
            return False
        if what in ("miss", "hit"):
            return any(c.outcome == what for c in o.cue_outcomes)
        return bool(getattr(o, what))

    chosen: list[EpisodeRecord] = []
    fams: set[str] = set()
    for what in ("interruptions", "miss", "false_alarms", "hit", "duplicates"):
        if len(chosen) >= n:
            break
        cands = [e for e in episodes if has(e, what) and all(e is not c for c in chosen)]
        cands.sort(key=lambda e: (e.meta.get("family") in fams, str(e.meta.get("split")), e.scene_id))
        if cands:
            chosen.append(cands[0])
            fams.add(str(cands[0].meta.get("family")))
    for e in episodes:
        if len(chosen) >= n:
            break
        if all(e is not c for c in chosen):
            chosen.append(e)
    return chosen[:n]


def plot_examples(episodes: Sequence[EpisodeRecord], outdir: Path, n: int, suite: Any = None,
                  label: str | None = None) -> list[Path]:
    """Timelines of ``n`` example episodes: the scene (spectrogram when the suite's audio is
    at hand) with the policy's effective actions over the annotations; titled ``label`` (e.g.
    ``POLICY on SUITE``; default: the policy and suite recorded in each episode) and the episode."""
    from chimein.eval.metrics import bare_spec
    from chimein.scenes.show import plot_scene
    from chimein.scenes.spec import Annotations

    paths = []
    for e in _pick_examples(episodes, n):
        log, meta = e.action_log, e.meta
        acts = [(float(t), int(a)) for t, a, f in zip(log.times_s, log.actions, log.effective, strict=True) if a and f]
        spec, audio = None, None
        if suite is not None and meta.get("split"):
            try:
                ds = suite.dataset(meta["split"])
                scene = ds.load(ds.index_of(e.scene_id))
                spec, audio = scene.spec, scene.audio
            except ChimeinError:
                spec = None
        if spec is None:
            dur = max(float(meta.get("duration_s") or 0.0), float(log.times_s[-1]) if log.n_steps else 1.0)
            spec = bare_spec(e.scene_id, e.annotations or Annotations(), dur, str(meta.get("family", "custom")))
        o = e.outcome
        summary = ", ".join(f"{c.expected} {c.outcome}" for c in (o.cue_outcomes if o else ())) or "none"
        title = (f"{label or _episode_label(meta)}: {meta.get('split', '')} {e.scene_id}\n"
                 f"reward {o.reward if o else float('nan'):.2f}, false alarms {len(o.false_alarms) if o else 0}, "
                 f"interruptions {len(o.interruptions) if o else 0}; cues: {summary}")
        name = f"{str(meta.get('split', 'x')).replace('/', '-')}-{e.scene_id}.png"
        paths.append(plot_scene(spec, audio, outdir / name, actions=acts, title=title[:200]))
    return paths


def _episode_label(meta: Mapping[str, Any]) -> str:
    """``POLICY on SUITE`` from an episode's ``meta``."""
    suite = meta.get("suite")
    name = suite.get("name") if isinstance(suite, Mapping) else suite
    return f"{meta.get('policy', 'policy')} on {name or 'scenes'}"


# ============================================================================================
# Results
# ============================================================================================
def _json_default(x: Any) -> Any:
    if hasattr(x, "item"):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def write_results(results: Mapping[str, Any], outdir: str | os.PathLike[str], episodes: Sequence[EpisodeRecord] = (),
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
        label = f"{results['policy']} on {results['suite']['name']}"
        if any(lat.values()):
            plot_latency_cdf(lat, pdir / "latency_cdf.png", f"{label}: hit latency CDF")
            plots.append(("Latency CDF of hits", "plots/latency_cdf.png"))
        if results["metrics"].get("by_split"):
            plot_family_bars(results["metrics"], pdir / "families.png",
                             title=f"{label}: per-family metrics by tier (95 % CI)")
            plots.append(("Per-family metrics by tier (95 % CI)", "plots/families.png"))
        if examples and episodes:
            for p in plot_examples(episodes, pdir, examples, suite, label):
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


# ============================================================================================
# Paired differences
# ============================================================================================
def _count_metrics() -> tuple[str, ...]:
    """The metrics :func:`~chimein.eval.metrics.metrics_from_counts` computes (all but the
    latency percentiles): those a paired bootstrap can recompute from summed counts."""
    return tuple(metrics_from_counts(dict.fromkeys(COUNTS, 1.0)))


def _check_paired_metrics(metrics: Sequence[str]) -> None:
    allowed = _count_metrics()
    bad = [m for m in metrics if m not in allowed]
    if bad:
        raise SpecError(f"eval compare: field 'paired_metrics': {bad} cannot be recomputed from summed counts "
                        f"(latency percentiles cannot); use metrics of {list(allowed)}")


def episode_count_rows(run: str | os.PathLike[str], results: Mapping[str, Any] | None = None,
                       oracle: bool = False) -> dict[tuple[str, str], np.ndarray] | None:
    """The per-episode counts (:data:`~chimein.eval.metrics.COUNTS`) of a run folder, keyed by
    ``(split, scene_id)``; None when the run's episodes are not at hand.

    The episodes are the folder's ``episodes.jsonl`` (stored outcomes, as in ``results.json``)
    or, for a ``chimein eval rescore`` output, the file it was re-scored from, scored again with
    the recorded reward. Only the splits of ``results.json`` count (a run with ``eval.splits``
    may keep other episodes in its file); a scene logged twice counts once (the last line).

    Parameters
    ----------
    run
        A ``chimein eval`` (or ``eval rescore``) output folder.
    results
        Its ``results.json`` (read when None).
    oracle
        Also fill ``oracle_reward`` (what the oracle earns on each scene; needed only for
        ``oracle_normalized_reward``, and slow).
    """
    from chimein.eval.episodes import EPISODES, read_episodes
    from chimein.eval.metrics import oracle_rewards

    p = Path(run)
    res = load_results(p) if results is None else results
    path, rescore = p / EPISODES, None
    if not path.is_file() and res.get("rescored_from"):
        path, rescore = Path(res["rescored_from"]), res.get("reward_cfg")
    if not path.is_file():
        return None
    splits = set((res.get("metrics") or {}).get("by_split") or ())
    lines = {e.key: e for e in read_episodes(path) if not splits or e.split in splits}
    eps = [judge(e, base_dir=path.parent, rescore=rescore is not None, reward=rescore) for e in lines.values()]
    orc = oracle_rewards(eps) if oracle else np.full(len(eps), np.nan)
    rows = {}
    for k, ep, o in zip(lines, eps, orc, strict=True):
        c, _ = episode_counts(ep, float(o))
        rows[k] = np.array([c[n] for n in COUNTS], float)
    return rows


def _resample_weights(splits: Sequence[str], resamples: int, seed: int) -> np.ndarray:
    """``(resamples, n)`` multiplicities of a bootstrap stratified by split: each row resamples
    the scene indices of every split with replacement (so every split keeps its size)."""
    rng = np.random.default_rng(int(seed))
    st = np.asarray(splits)
    w = np.zeros((int(resamples), st.size))
    rows = np.arange(int(resamples))[:, None]
    for s in sorted(set(st.tolist())):
        cols = np.flatnonzero(st == s)
        sub = np.zeros((int(resamples), cols.size))
        np.add.at(sub, (rows, rng.integers(0, cols.size, size=(int(resamples), cols.size))), 1.0)
        w[:, cols] = sub
    return w


def _clean(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def paired_differences(reference: Mapping[tuple[str, str], np.ndarray], run: Mapping[tuple[str, str], np.ndarray],
                       metrics: Sequence[str] = PAIRED_METRICS, resamples: int = 1000,
                       seed: int = 0) -> dict[str, dict[str, Any]]:
    """``run - reference`` for each metric, with a 95 % paired bootstrap interval.

    Both runs played the same scenes, so their difference is resampled scene by scene: each
    resample draws scene indices with replacement within each split (the same indices for both
    runs), every metric is recomputed from the summed counts of each run
    (:func:`~chimein.eval.metrics.metrics_from_counts`, all resamples at once) and the
    difference is taken; the interval is the 2.5-97.5 percentiles of the differences defined in
    that resample (0/0 left out). Scene-level noise shared by both runs cancels, so the
    interval is much narrower than the two runs' own intervals suggest.

    Parameters
    ----------
    reference, run
        Per-episode counts keyed by ``(split, scene_id)`` (:func:`episode_count_rows`); the
        key sets must be equal.
    metrics
        Metrics computed from counts (not the latency percentiles).
    resamples, seed
        Bootstrap resamples (0: no intervals) and the seed of ``np.random.default_rng``; the
        same seed draws the same resamples for every pair of runs on these scenes.

    Returns
    -------
    dict
        ``{metric: {"value", "ci": [lo, hi], "significant", "reference", "run"}}``: the
        difference, its interval, whether the interval excludes 0 and the two runs' values
        (None where undefined).
    """
    _check_paired_metrics(metrics)
    keys = sorted(reference)
    if set(run) != set(keys):
        raise SpecError("eval compare: paired differences need runs on the same (split, scene_id) set")
    if not keys:
        raise SpecError("eval compare: no episodes to pair")
    a = np.stack([reference[k] for k in keys])
    b = np.stack([run[k] for k in keys])
    weights = np.ones((1, len(keys)))
    if resamples > 0:
        weights = np.vstack([weights, _resample_weights([k[0] for k in keys], resamples, seed)])
    ma = metrics_from_counts(dict(zip(COUNTS, (weights @ a).T, strict=True)))
    mb = metrics_from_counts(dict(zip(COUNTS, (weights @ b).T, strict=True)))
    out: dict[str, dict[str, Any]] = {}
    for m in metrics:
        va, vb = np.asarray(ma[m], float), np.asarray(mb[m], float)
        d = vb - va
        ci: list[float | None] = [None, None]
        boot = d[1:][np.isfinite(d[1:])]
        if boot.size and math.isfinite(d[0]):
            ci = [float(np.percentile(boot, CI_PERCENTILES[0])), float(np.percentile(boot, CI_PERCENTILES[1]))]
        sig = ci[0] is not None and (ci[0] > 0 or ci[1] < 0)  # type: ignore[operator]
        out[m] = {"value": _clean(d[0]), "ci": ci, "significant": bool(sig), "reference": _clean(va[0]),
                  "run": _clean(vb[0])}
    return out


def _paired_table(ref_name: str, rows: Sequence[Mapping[str, Any]], metrics: Sequence[str], n_scenes: int | None,
                  resamples: int, seed: int) -> str:
    up = ", ".join(_SHORT.get(m, m) for m in metrics if METRICS[m][1])
    down = ", ".join(_SHORT.get(m, m) for m in metrics if not METRICS[m][1])
    conv = "; ".join(x for x in (f"higher is better for {up}" if up else "",
                                 f"lower is better for {down}" if down else "") if x)
    scenes = f"the same {n_scenes} scenes" if n_scenes else "the same scenes"
    head = ["policy", "n", *(_SHORT.get(m, m) for m in metrics)]
    lines = [f"Paired differences against the reference `{ref_name}`: run - reference on {scenes}, with 95 % "
             f"paired bootstrap intervals (scene indices resampled within each split, the same for both runs; "
             f"{resamples} resamples, seed {seed}); `*`: the interval excludes 0. Sign convention: {conv}.",
             "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r["paired"]:
            cells = [_diff_cell(r["diffs"][m]) for m in metrics]
        else:
            cells = [f"not paired: {r['reason']}"] + ["-"] * (len(metrics) - 1)
        lines.append(f"| {r['name']} | {r['n_scenes'] if r['paired'] else '-'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _run_name(r: Mapping[str, Any]) -> str:
    return r["policy"] + (f" {json.dumps(r['policy_kwargs'], sort_keys=True)}" if r.get("policy_kwargs") else "")


def compare(runs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str] | None = None,
            sort_by: str = "normalized_reward", reference: str | os.PathLike[str] | None = None,
            paired_metrics: Sequence[str] = PAIRED_METRICS, resamples: int = 1000,
            seed: int = 0, terminal: bool = False) -> tuple[str, Path | None]:
    """A leaderboard of several ``chimein eval`` output folders, and paired differences.

    Rows are sorted by ``sort_by`` (best first); every value carries its 95 % interval. Runs on
    other scenes (another suite ``fingerprint``; for results written before the spec/audio
    fingerprint split, another audio fingerprint) are refused: their numbers are not comparable.
    Runs on the same scenes whose audio fingerprints differ (materialised on other machines) are
    compared and paired, with a note under the table. With ``out`` (a ``.md`` path or a folder) the table is written there together
    with ``leaderboard_latency.png`` (hit-latency CDF per policy).

    Under the leaderboard come the field's metrics of every run (:func:`~chimein.eval.tables.field_table`:
    false cut-off rate, takeover rate per condition, safety-critical false negatives, ms per
    decision) and the safety-critical false-negative rate on its own line. Then a table gives, for every other run, ``run - reference`` of
    each of ``paired_metrics`` with its paired bootstrap interval (:func:`paired_differences`)
    and a ``*`` where that interval excludes 0: the test of "is B significantly better than A
    on these scenes" that the runs' own intervals cannot give. A run whose episodes cover
    another ``(split, scene_id)`` set than the reference's (e.g. ``eval.splits``) is listed as
    not paired. With ``out``, the numbers are also written to ``<leaderboard>.paired.json``.

    Parameters
    ----------
    runs
        Output folders of ``chimein eval``.
    out
        ``.md`` path or folder of the leaderboard (None: nothing written).
    sort_by
        Metric the leaderboard is sorted by.
    reference
        The run the others are paired against (one of ``runs``; default: the first).
    paired_metrics
        Metrics of the paired table (empty: no table).
    resamples, seed
        Paired bootstrap resamples and seed (``eval.resamples``, ``eval.seed`` on the command line).
    terminal
        Return the compact tables for a terminal (:mod:`chimein.eval.terminal`: at most 120
        columns, direction marks, no intervals, where the full table is) instead of the Markdown;
        the file written is the same.

    Returns
    -------
    (str, Path or None)
        The Markdown table (or, with ``terminal``, the compact text) and the file written.
    """
    if not runs:
        raise SpecError("eval compare: give at least one result folder (chimein eval compare DIR1 DIR2 ...)")
    if sort_by not in METRICS:
        raise SpecError(f"eval compare: sort_by={sort_by!r} is not a metric; use one of {list(METRICS)}")
    res = [(Path(r), load_results(r)) for r in runs]
    ref = res[0]
    if reference is not None:
        match = [pr for pr in res if pr[0].resolve() == Path(reference).resolve()]
        if not match:
            raise SpecError(f"eval compare: field 'reference': {str(reference)!r} is not one of the runs "
                            f"({[str(p) for p, _ in res]}); give a run folder that is also listed, or null "
                            "for the first")
        ref = match[0]
    paired_metrics = list(paired_metrics)
    _check_paired_metrics(paired_metrics)
    audio_note = check_same_scenes(res)
    envs = {json.dumps(r.get("env"), sort_keys=True) for _, r in res}
    hib = METRICS[sort_by][1]

    def key(pr: tuple[Path, dict[str, Any]]) -> float:
        v = pr[1]["metrics"]["overall"][sort_by]["value"]
        return -math.inf if v is None else (v if hib else -v)

    res.sort(key=key, reverse=True)
    s = res[0][1]["suite"]
    named = [(_run_name(r), r) for _, r in res]
    lines = [*_leaderboard_table(res), "", *field_table(named), "", safety_line(named)]
    notes = [audio_note] if audio_note else []
    if len(envs) > 1:
        notes.append("Note: the runs used different env options: "
                     + "; ".join(f"{r['policy']}: {json.dumps(r.get('env'), sort_keys=True)}" for _, r in res))
    for n in notes:
        lines += ["", n]
    paired = None
    if paired_metrics and len(res) > 1:
        paired = _paired(ref, [pr for pr in res if pr is not ref], paired_metrics, int(resamples), int(seed))
        lines += ["", _paired_table(paired["reference"]["name"], paired["runs"], paired_metrics,
                                    paired["reference"]["n_scenes"], int(resamples), int(seed))]
        lines += paired_by_tier_table(paired)
        lines += paired_by_part_table(paired, "family", "normalized_reward")
        lines += paired_by_part_table(paired, "family", "false_alarms_per_min")
    text = "\n".join(lines) + "\n"
    md = None if out is None else _write_leaderboard(Path(out), text, res, s["name"], paired)
    if not terminal:
        return (text, None) if md is None else md
    return _terminal_text(res, sort_by, notes, paired, None if md is None else md[1]), None if md is None else md[1]


def _terminal_text(res: Sequence[tuple[Path, Mapping[str, Any]]], sort_by: str, notes: Sequence[str],
                   paired: Mapping[str, Any] | None, md: Path | None) -> str:
    """The compact leaderboard (and paired table) of :func:`compare` for a terminal."""
    from chimein.eval.terminal import leaderboard_text, paired_text, wrap

    s = res[0][1]["suite"]
    title = (f"Leaderboard on {s['name']} revision {s['revision']} (fingerprint {s['fingerprint'][:12]}), "
             f"{res[0][1]['metrics']['overall']['n_episodes']} episodes, best {sort_by} first")
    lines = leaderboard_text([(_run_name(r), r) for _, r in res], LEADERBOARD_COLUMNS, title, notes)
    lines += ["", *field_text([(_run_name(r), r) for _, r in res])]
    if any(gap_of(r) for _, r in res):
        lines += ["", *gap_terminal([(_run_name(r), r) for _, r in res])]
    if paired is not None:
        lines += ["", *paired_text(paired)]
    if md is not None:
        lines += ["", *wrap(f"Full tables, every value with its 95 % interval, and the latency plot: {md}")]
    return "\n".join(lines) + "\n"


def _leaderboard_table(res: Sequence[tuple[Path, Mapping[str, Any]]]) -> list[str]:
    """The leaderboard's heading and Markdown table, one row per run in the order of ``res``."""
    s = res[0][1]["suite"]
    gap = any(gap_of(r) for _, r in res)
    head = ["rank", "policy", *(_SHORT.get(c, c) for c in LEADERBOARD_COLUMNS), "episodes/s", "ms/decision (mean / p99)"]
    head += ["heldout gap (norm. reward)"] if gap else []
    lines = [f"Leaderboard on `{s['name']}` revision {s['revision']} (fingerprint `{s['fingerprint'][:16]}`), "
             f"{res[0][1]['metrics']['overall']['n_episodes']} episodes; values with 95 % bootstrap intervals."
             + (" Heldout gap: normalised reward on `{}` minus `{}` pooled, with a two-sample (not scene-paired) "
                "interval; `*`: it excludes 0.".format(*gap_tiers([r for _, r in res])) if gap else ""),
             "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, (_, r) in enumerate(res, 1):
        o = r["metrics"]["overall"]
        eps = (r.get("timing") or {}).get("episodes_per_s")
        name = _run_name(r)
        lines.append(f"| {i} | {name} | " + " | ".join(fmt(o.get(c)) for c in LEADERBOARD_COLUMNS)
                     + f" | {'-' if not eps else f'{eps:.1f}'} | {ms_cell(r)} |"
                     + (f" {_diff_cell(gap_of(r) or {})} |" if gap else ""))
    return lines


def _write_leaderboard(o: Path, text: str, res: Sequence[tuple[Path, Mapping[str, Any]]], suite_name: str,
                       paired: Mapping[str, Any] | None) -> tuple[str, Path]:
    """Write the leaderboard to ``o`` (a ``.md`` path or a folder) with the hit-latency CDF plot
    of the runs' episodes and the paired numbers (``.paired.json``); returns the text (with the
    plot's link) and the Markdown path."""
    from chimein.eval.episodes import read_episodes

    md = o if o.suffix == ".md" else o / "leaderboard.md"
    md.parent.mkdir(parents=True, exist_ok=True)
    series = {}
    for p, r in res:
        ep = p / "episodes.jsonl"
        if ep.is_file():
            lat = hit_latencies(read_episodes(ep))
            series[r["policy"]] = lat["RESPOND"] + lat["INTERVENE"]
    if any(series.values()):
        png = md.with_name(md.stem + "_latency.png")
        plot_latency_cdf(series, png, f"hit latency CDF per policy on {suite_name}")
        text += f"\n![hit latency CDF per policy]({png.name})\n"
    atomic_write_text(md, text)
    if paired is not None:
        atomic_write_text(md.with_name(md.stem + PAIRED_SUFFIX), json.dumps(paired, indent=1) + "\n")
    return text, md


def check_same_scenes(res: Sequence[tuple[Path, Mapping[str, Any]]]) -> str | None:
    """Refuse runs on other scenes than the first's (:func:`~chimein.eval.suites.same_scenes`:
    equal spec fingerprints); return a note when their audio fingerprints differ (the same
    scenes rendered on machines whose numpy rounds differently, or another libFLAC), else None.
    """
    first = res[0][1]["suite"]
    if not all(same_scenes(first, r["suite"]) for _, r in res[1:]):
        desc = "; ".join(f"{p}: {r['suite']['name']} rev {r['suite']['revision']} {r['suite']['fingerprint'][:12]}"
                         for p, r in res)
        raise SpecError(f"eval compare: the runs are on different suites or materialisations ({desc}); "
                        "compare runs of one suite only")
    if all(same_audio(first, r["suite"]) for _, r in res[1:]):
        return None
    desc = "; ".join(f"{p.name}: {audio_fingerprint_of(r['suite'])[:12]}" for p, r in res)
    return ("Note: same scenes, but the audio was rendered on different machines (audio fingerprints "
            f"{desc}); samples may differ in their last bits, so paired differences include that noise.")


def paired_by_part(reference: Mapping[tuple[str, str], np.ndarray], run: Mapping[tuple[str, str], np.ndarray],
                   part: str = "tier", metrics: Sequence[str] = PAIRED_METRICS, resamples: int = 1000,
                   seed: int = 0) -> dict[str, dict[str, Any]] | None:
    """:func:`paired_differences` on the scenes of each tier alone (``part="tier"``, the split
    name before ``/``: "is B better than A on the ``heldout`` tier") or of each task family
    (``"family"``, after it: "on every family", the tiers pooled), scene-paired. None when the
    scenes span a single tier (family)."""
    if part not in ("tier", "family"):
        raise ValueError(f"paired_by_part: part is 'tier' or 'family', got {part!r}")

    def key(k: tuple[str, str]) -> str:
        return k[0].split("/", 1)[0 if part == "tier" else -1]

    groups = list(dict.fromkeys(key(k) for k in reference))
    if part == "family":  # the sampler's order of families, then any other
        groups.sort(key=lambda g: (FAMILIES.index(g) if g in FAMILIES else len(FAMILIES), g))
    if len(groups) < 2:
        return None
    return {g: paired_differences({k: v for k, v in reference.items() if key(k) == g},
                                  {k: v for k, v in run.items() if key(k) == g}, metrics, resamples, seed)
            for g in groups}


def paired_by_tier(reference: Mapping[tuple[str, str], np.ndarray], run: Mapping[tuple[str, str], np.ndarray],
                   metrics: Sequence[str] = PAIRED_METRICS, resamples: int = 1000,
                   seed: int = 0) -> dict[str, dict[str, Any]] | None:
    """:func:`paired_by_part` by tier."""
    return paired_by_part(reference, run, "tier", metrics, resamples, seed)


def paired_by_tier_table(paired: Mapping[str, Any], metric: str = "normalized_reward") -> list[str]:
    """:func:`paired_by_part_table` by tier."""
    return paired_by_part_table(paired, "tier", metric)


def paired_by_part_table(paired: Mapping[str, Any], part: str = "tier",
                         metric: str = "normalized_reward") -> list[str]:
    """Markdown lines: ``run - reference`` of ``metric`` on each tier's (``part="family"``: each
    family's) scenes alone (scene-paired intervals), when the runs' suite has more than one;
    else nothing. A family without cues (``distractors``) has no normalised reward: ``-``."""
    field = f"by_{part}"
    rows = [r for r in paired["runs"] if r.get(field)]
    if not rows or metric not in paired["metrics"]:
        return []
    groups = list(rows[0][field])
    out = ["", f"Paired differences by {part}, `{metric}`, run - `{paired['reference']['name']}` on the "
               f"same scenes of each {part} (`*`: the 95 % interval excludes 0):", "",
           "| policy | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups)]
    for r in rows:
        out.append(f"| {r['name']} | " + " | ".join(_diff_cell(r[field][g][metric]) for g in groups) + " |")
    return out


def _paired(ref: tuple[Path, Mapping[str, Any]], others: Sequence[tuple[Path, Mapping[str, Any]]],
            metrics: Sequence[str], resamples: int, seed: int) -> dict[str, Any]:
    """The paired differences of ``others`` against ``ref`` (the content of ``.paired.json``)."""
    names = [_run_name(r) for _, r in (ref, *others)]
    dup = {n for n in names if names.count(n) > 1}

    def name(p: Path, r: Mapping[str, Any]) -> str:
        n = _run_name(r)
        return f"{n} ({p.name})" if n in dup else n

    oracle = "oracle_normalized_reward" in metrics
    base = episode_count_rows(ref[0], ref[1], oracle)
    rows = []
    for p, r in others:
        row: dict[str, Any] = {"run": str(p), "name": name(p, r), "policy": r["policy"],
                               "paired": False, "reason": None, "n_scenes": None, "diffs": {}}
        counts = episode_count_rows(p, r, oracle) if base is not None else None
        if base is None:
            row["reason"] = "reference has no episodes.jsonl"
        elif counts is None:
            row["reason"] = "no episodes.jsonl"
        elif not same_scenes(r["suite"], ref[1]["suite"]) or set(counts) != set(base):
            row["reason"] = "different scenes"
        else:
            row.update(paired=True, n_scenes=len(base),
                       diffs=paired_differences(base, counts, metrics, resamples, seed))
            for part in ("tier", "family"):
                by = paired_by_part(base, counts, part, metrics, resamples, seed)
                if by is not None:
                    row[f"by_{part}"] = by
        rows.append(row)
    return {"reference": {"run": str(ref[0]), "name": name(*ref), "policy": ref[1]["policy"],
                          "n_scenes": None if base is None else len(base)},
            "metrics": list(metrics), "higher_is_better": {m: METRICS[m][1] for m in metrics},
            "difference": "run - reference",
            "bootstrap": {"resamples": resamples, "seed": seed, "ci": 0.95, "strata": "split", "paired": True},
            "runs": rows}
