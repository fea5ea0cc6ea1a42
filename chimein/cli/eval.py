"""``chimein eval ...`` and ``chimein scenes export-psb``: thin wrappers from a composed
config to :mod:`chimein.eval`."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from chimein.cli.common import container, positional_runs
from chimein.errors import ConfigError, SpecError


def _workers(v: Any) -> int | None:
    if v is None:
        return None
    try:
        return int(v) or None
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"field 'workers': expected a number of processes (0: all cores), "
                          f"got {v!r}") from None


def _summary(results: Mapping[str, Any]) -> str:
    from chimein.eval.report import LEADERBOARD_COLUMNS, fmt, latency_text
    from chimein.eval.terminal import LEGEND, direction

    o = results["metrics"]["overall"]
    rows = [(f"{k} {direction(k)}", fmt(o.get(k))) for k in LEADERBOARD_COLUMNS]
    t = results.get("timing") or {}
    if t.get("episodes_per_s"):
        rows.append(("episodes/s", f"{t['episodes_per_s']:.2f} ({t['episodes_run']} run, "
                                   f"{t['episodes_resumed']} resumed)"))
    ms = results.get("ms_per_decision") or {}
    if ms.get("decisions"):
        rows.append(("ms/decision", f"{ms['mean']:.2f} mean, {ms['p99']:.2f} p99 (one stream's share of a "
                                    f"batch of {ms['batch']})"))
    lat = results.get("decision_latency_ms")
    if lat and lat.get("n"):
        rows.append(("decision latency", f"{latency_text(lat)} (network + queue + model, {lat['n']} chunks)"))
    head = (f"{results['policy']} on {results['suite']['name']} ({o['n_episodes']} episodes, "
            f"fingerprint {results['suite']['fingerprint'][:12]}):")
    legend = "  " + LEGEND.replace("n/a", "-") + "; [95 % bootstrap interval]"
    return "\n".join([head] + [f"  {name:<28} {value}" for name, value in rows] + [legend])


def _run_kwargs(c: Mapping[str, Any]) -> dict[str, Any]:
    """The options every policy run takes (:func:`chimein.eval.runner.evaluate`,
    :func:`chimein.eval.psb.evaluate_psb`) from a composed command config: ``workers`` and the
    ``eval`` group's batching, env, bootstrap, progress, report and backend."""
    e = c["eval"]
    return dict(
        workers=_workers(c.get("workers")), batch_size=int(e["batch_size"]), env=e.get("env") or {},
        resamples=int(e["resamples"]), seed=int(e["seed"]), progress=bool(e["progress"]),
        report=bool(e["report"]), backend=str(e["backend"]),
    )


def _eval_kwargs(c: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`chimein.eval.runner.evaluate` options from a composed ``eval`` command config."""
    from chimein.exec import ray_options_from_config

    e = c["eval"]
    return dict(
        _run_kwargs(c), cache_dir=e.get("cache_dir"), rir_cache_dir=e.get("rir_cache_dir"),
        examples=int(e["examples"]), splits=e.get("splits"), ray_options=ray_options_from_config(e),
    )


def run(cfg: Any) -> int:
    """``chimein eval policy=NAME suite=chimein-bench-v0 out=DIR [workers=N]``; with
    ``recordings=DIR`` the policy plays a folder of annotated recordings instead of the suite
    (:func:`chimein.eval.recordings.evaluate_recordings`)."""
    from chimein.eval.runner import evaluate

    c = container(cfg)
    if c.get("recordings"):
        from chimein.eval.recordings import evaluate_recordings

        res = evaluate_recordings(c["recordings"], c["policy"], out=c["out"], policy_kwargs=c.get("policy_args") or {},
                                  splits=c["eval"].get("splits"), **_run_kwargs(c))
    else:
        res = evaluate(c["policy"], c["suite"], out=c["out"], policy_kwargs=c.get("policy_args") or {},
                       **_eval_kwargs(c))
    print(_summary(res))
    print(f"wrote {Path(c['out']) / 'results.json'}, episodes.jsonl, report.md", file=sys.stderr)
    return 0


def materialize(cfg: Any) -> int:
    """``chimein eval materialize suite=NAME [verify=true]``: generate (or check) a suite. A suite
    with a ``heldout`` tier is also checked against the training configs
    (:func:`chimein.eval.heldout.heldout_leaks`): what it shares is listed under
    ``heldout_leaks`` and warned about on stderr."""
    import sys

    from chimein.eval.heldout import HELDOUT_TIER, heldout_leaks
    from chimein.eval.suites import get_suite
    from chimein.eval.suites import materialize as mat

    c = container(cfg)
    e = c["eval"]
    definition = get_suite(c["suite"])
    leaks = heldout_leaks(definition) if HELDOUT_TIER in definition.tiers else None
    m = mat(definition, cache_dir=e.get("cache_dir"), workers=_workers(c.get("workers")), progress=bool(e["progress"]),
            verify=bool(c.get("verify", False)), rir_cache_dir=e.get("rir_cache_dir"), backend=str(e["backend"]))
    info = {**m.identity, "root": str(m.root), "n_scenes": m.definition.n_scenes}
    if leaks is not None:
        info["heldout_leaks"] = leaks
    print(json.dumps(info, indent=1))
    for line in leaks or ():
        print(f"warning: the {HELDOUT_TIER!r} tier is not held out: {line}", file=sys.stderr)
    return 0



def compare(cfg: Any) -> int:
    """``chimein eval compare DIR1 DIR2 ... [out=leaderboard.md] [reference=DIR]``: leaderboard and
    paired differences against the reference run (bootstrap: ``eval.resamples``, ``eval.seed``)."""
    from chimein.eval.report import PAIRED_METRICS, PAIRED_SUFFIX
    from chimein.eval.report import compare as cmp

    c = container(cfg)
    runs = positional_runs(c)
    out = c.get("out")
    if out is None and runs:
        out = str(Path(runs[0]).resolve().parent / "leaderboard.md")
    e = c.get("eval") or {}
    if e.get("splits"):
        raise ConfigError("eval compare: field 'eval.splits' is not used by compare (it reads finished runs); "
                          "evaluate on those splits (chimein eval ... eval.splits=[...]) and compare those runs, "
                          "or read the paired table by tier that compare prints")
    metrics = c.get("paired_metrics")
    text, written = cmp(runs, out=out, sort_by=str(c.get("sort_by", "normalized_reward")),
                        reference=c.get("reference"),
                        paired_metrics=PAIRED_METRICS if metrics is None else [str(m) for m in metrics],
                        resamples=int(e.get("resamples", 1000)), seed=int(e.get("seed", 0)), terminal=True)
    print(text, end="")
    if written is not None:
        js = written.with_name(written.stem + PAIRED_SUFFIX)
        print(f"wrote {written}" + (f" and {js.name}" if js.is_file() else ""), file=sys.stderr)
    return 0


def spread(cfg: Any) -> int:
    """``chimein eval spread DIR1 DIR2 DIR3 [out=spread.md]``: how much a recipe's headline
    metrics move with the training seed (:mod:`chimein.eval.spread`)."""
    from chimein.eval.spread import seed_spread, spread_table, write_spread

    c = container(cfg)
    runs = positional_runs(c)
    s = seed_spread(runs)
    out = c.get("out") or str(Path(runs[0]).resolve().parent / "spread.md")
    print("\n".join(spread_table(s)))
    print(f"wrote {write_spread(s, out)}", file=sys.stderr)
    return 0


def rescore(cfg: Any) -> int:
    """``chimein eval rescore DIR/episodes.jsonl [out=DIR] [+reward.miss=-1] [annotations=DIR]``:
    metrics from logs (``annotations``: judged against a recordings folder's rows instead)."""
    from chimein._version import __version__
    from chimein.eval.episodes import read_episodes
    from chimein.eval.metrics import aggregate
    from chimein.eval.report import write_results

    c = container(cfg)
    e = c["eval"]
    path = Path(c["episodes"])
    if path.is_dir():
        path = path / "episodes.jsonl"
    records = read_episodes(path)
    if not records:
        raise SpecError(f"{path}: no episodes to re-score")
    reward = c.get("reward") or None
    if reward:
        base = records[0].meta.get("reward_cfg") or {}
        reward = {**base, **reward}
    from chimein.eval.metrics import judge

    if c.get("annotations"):  # score against a recordings folder's rows (chimein scenes export-hf)
        from chimein.scenes.hf import annotations_by_key

        table = annotations_by_key(c["annotations"])
        for r in records:
            if r.key not in table:
                raise SpecError(f"{path}: {r.where}: no row of split {r.split!r}, scene_id {r.scene_id!r} in "
                                f"{c['annotations']}; give the folder these episodes were played on")
        records = [replace(r, annotations=table[r.key]) for r in records]
    suites = {json.dumps(r.meta.get("suite"), sort_keys=True) for r in records}
    if len(suites) > 1 or len({r.meta.get("run") for r in records}) > 1:
        raise SpecError(f"{path}: episodes of several suites, versions or runs; re-score one run at a time")
    base = Path(c["specs_root"]) if c.get("specs_root") else path.parent
    eps = [judge(r, base_dir=base, rescore=True, reward=reward) for r in records]
    first = records[0].meta
    suite = dict(first.get("suite") or {"name": "custom", "revision": 0, "definition_hash": "", "fingerprint": ""})
    records = [replace(r, outcome=ep.outcome, annotations=ep.annotations) for r, ep in zip(records, eps, strict=True)]
    results = {
        "suite": {**suite, "description": f"re-scored from {path}", "n_scenes": len(records)},
        "policy": str(first.get("policy", "logged")), "policy_kwargs": first.get("policy_kwargs") or {},
        "run": first.get("run"), "env": first.get("env") or {},
        "reward_cfg": eps[0].reward_cfg.to_dict(), "chimein_version": __version__, "rescored_from": str(path),
        **({"annotations_from": str(c["annotations"])} if c.get("annotations") else {}),
        "metrics": aggregate(eps, resamples=int(e["resamples"]), seed=int(e["seed"])),
    }
    from chimein.eval.episodes import merged_latency

    latency = merged_latency(records)  # measured, not simulated: carried over unchanged
    if latency is not None:
        results["decision_latency_ms"] = latency
    out = Path(c["out"]) if c.get("out") else path.parent / "rescore"
    write_results(results, out, episodes=records, report=bool(e["report"]), examples=int(e["examples"]))
    print(_summary(results))
    print(f"wrote {out / 'results.json'}", file=sys.stderr)
    return 0


def psb(cfg: Any) -> int:
    """``chimein eval psb MANIFEST policy=NAME out=DIR``: PSB decision accuracy (+ timing metrics)."""
    from chimein.eval.psb import evaluate_psb

    c = container(cfg)
    res = evaluate_psb(
        c["manifest"], c["policy"], out=c["out"], policy_kwargs=c.get("policy_args") or {},
        lead_s=float(c["lead_s"]), tail_s=float(c["tail_s"]), skip_bad_audio=bool(c["skip_bad_audio"]),
        **_run_kwargs(c),
    )
    p = res["psb"]

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}"

    print(f"{res['policy']} on {p['n_clips']} PSB clips ({p['n_respond']} RESPOND / {p['n_ignore']} IGNORE): "
          f"accuracy {pct(p['accuracy'])}, RESPOND {pct(p['respond_accuracy'])}, IGNORE {pct(p['ignore_accuracy'])}, "
          f"domain macro {pct(p['domain_macro_accuracy'])}, unusable {p['unusable']} (counted wrong)")
    for d, v in p["by_domain"].items():
        print(f"  {d:<20} n={v['n']:<4} accuracy {pct(v['accuracy'])}")
    return 0


def export_psb(cfg: Any) -> int:
    """``chimein scenes export-psb suite=NAME|dataset=DIR out=DIR [unit=cue|scene]``."""
    from chimein.eval.psb import export_psb as export

    c = container(cfg)
    if bool(c.get("suite")) == bool(c.get("dataset")):
        raise SpecError("scenes export-psb: give exactly one of suite=NAME (a suite, materialised if needed) "
                        "or dataset=DIR (a folder written by `chimein scenes generate`)")
    if c.get("suite"):
        from chimein.eval.suites import materialize as mat

        source: Any = mat(c["suite"], cache_dir=c.get("cache_dir"), workers=_workers(c.get("workers")),
                          progress=bool(c.get("progress", True)))
    else:
        source = c["dataset"]
    manifest = export(source, c["out"], unit=str(c["unit"]), lead_s=float(c["lead_s"]), post_s=float(c["post_s"]),
                      max_clip_s=float(c["max_clip_s"]), splits=c.get("splits"))
    n = sum(1 for line in manifest.read_text().splitlines() if line.strip())
    print(f"wrote {manifest} ({n} clips)")
    return 0


def sweep(cfg: Any) -> int:
    """``chimein eval sweep policy=NAME param=logit_bias values=[...] out=DIR``: one evaluation
    per value of a policy knob (an operating curve) and ``OUT/sweep.json``."""
    from chimein.eval.sweep import CURVE_FIGURES
    from chimein.eval.sweep import sweep as run_sweep

    c = container(cfg)
    s = run_sweep(c["policy"], c["suite"], c["out"], str(c["param"]), list(c.get("values") or []),
                  policy_kwargs=c.get("policy_args") or {}, **_eval_kwargs(c))
    for r in s["rows"]:
        m = r["metrics"]
        cells = " ".join(f"{k} {m[k]['value']:.3f}" if m[k]["value"] is not None else f"{k} -"
                         for k in ("timeliness", "false_alarms_per_min", "interruptions_per_turn",
                                   "safety_miss_rate", "normalized_reward", "false_cutoff_rate",
                                   "respond_latency_p50"))
        print(f"{s['param']}={r['value']}: {cells}")
    figs = ", ".join(f"{CURVE_FIGURES[k][4]} {'-' if v is None else f'{v:.3f}'}" for k, v in s["field"].items())
    print(f"LiveKit end-of-turn figures (interpolated; -: outside the swept range): {figs}")
    print(f"wrote {Path(c['out']) / 'sweep.json'}", file=sys.stderr)
    return 0


def tradeoff(cfg: Any) -> int:
    """``chimein eval tradeoff SWEEP1 SWEEP2 ... [out=tradeoff.png] [at.false_alarms_per_min=[2]]``."""
    from chimein.eval.sweep import tradeoff as plot

    c = container(cfg)
    runs = positional_runs(c)
    out = c.get("out")
    if out is None and runs:
        out = str(Path(runs[0]).resolve().parent / "tradeoff.png")
    text, _ = plot(runs, out=out, y=str(c["y"]), xs=[str(x) for x in c["xs"]], at=c.get("at") or {},
                   names=c.get("names") or None)
    print(text, end="")
    if out is not None:
        print(f"wrote {out} and {Path(out).with_suffix('.json').name}", file=sys.stderr)
    return 0
