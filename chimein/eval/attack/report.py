"""What an adversarial search found: datasets, the before/after comparison, failure modes, plots.

:func:`finish` is the last step of :func:`chimein.eval.attack.attack`: it renders and writes the
hardest valid scenes (and the random comparison scenes) as datasets, scores the comparison sets
with the evaluation metrics (:func:`chimein.eval.metrics.aggregate`, bootstrap intervals), relates
the parameters to the regret, and writes ``report.md``, ``results.json`` and the plots.

Definitions used in the report
------------------------------
- **score** of a policy on a scene: its episode reward from the shared scoring function
  (timeliness-weighted credit for hits minus penalties) divided by the number of scored action
  cues (at least 1): on a scene with cues, 1 is every cue hit in time without penalty; on a
  scene without cues the best is 0 (stay quiet). The evaluation metrics (``mean_reward``,
  ``normalized_reward``, ``timeliness``, ...) are reported alongside, from
  :func:`chimein.eval.metrics.aggregate`.
- **drop** of a scene set: mean over its scenes of ``score(oracle) - score(policy)`` (the
  regret the search maximises); on valid scenes the oracle earns the maximum, so the drop is how
  far the policy falls below perfect. Its 95 % interval is a percentile bootstrap over scenes; the
  ratio of two drops is bootstrapped with both sets resampled independently.
- **quality bar**: ``drop(found) >= 2 * drop(random)`` with the oracle at its maximum on the found
  scenes.
- **parameter importance**: Spearman's rank correlation between a float parameter and the regret,
  on the scenes drawn from the prior (generation 0 and the random set: independent draws, so the
  correlation is not confounded by the search's own drift), and on every searched candidate;
  for categoricals the mean regret per choice.
"""

from __future__ import annotations

import json
import math
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chimein.eval.attack.jobs import episode_meta, render_job, row_episode
from chimein.io import atomic_write_text

__all__ = ["SETS", "bootstrap_mean", "finish", "importance", "markdown", "replay_summary", "summary"]


SETS = ("random", "holdout", "found")


_SET_HELP = {
    "random": "scenes drawn uniformly from the declared space (the prior)",
    "holdout": "fresh scenes drawn from the search's final distribution (no selection)",
    "found": "the hardest valid scenes the search evaluated (the output dataset)",
}


_METRIC_COLS = ("mean_reward", "normalized_reward", "timeliness", "hit_rate", "miss_rate", "wrong_kind_rate",
                "ignore_false_alarm_rate", "false_alarms_per_min", "interruptions_per_turn", "pause_takeover_rate",
                "latency_p50")


def bootstrap_mean(x: Sequence[float], resamples: int, seed: int, name: str
                   ) -> tuple[float | None, list[float | None], np.ndarray]:
    """Mean of ``x``, its 95 % percentile-bootstrap interval and the bootstrap means.

    Examples
    --------
    >>> m, ci, _ = bootstrap_mean([1.0, 2.0, 3.0], 200, 0, "x")
    >>> m, ci[0] <= m <= ci[1]
    (2.0, True)
    """
    a = np.asarray(x, float)
    if a.size == 0:
        return None, [None, None], np.zeros(0)
    m = float(a.mean())
    if resamples <= 0:
        return m, [None, None], np.zeros(0)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(name.encode())]))
    boot = a[rng.integers(0, a.size, size=(resamples, a.size))].mean(axis=1)
    return m, [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))], boot


def _spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    from scipy.stats import spearmanr

    if len(x) < 3 or np.ptp(np.asarray(x, float)) == 0 or np.ptp(np.asarray(y, float)) == 0:
        return None
    r = float(spearmanr(x, y).statistic)
    return r if math.isfinite(r) else None


def importance(space: Any, prior_rows: Sequence[Mapping[str, Any]], all_rows: Sequence[Mapping[str, Any]],
               final: Mapping[str, Any]) -> dict[str, Any]:
    """Per parameter: how it relates to the regret and where the search moved it.

    ``prior_rows``/``all_rows`` are valid candidate results (``point``, ``regret``); ``final``
    is the search's last distribution. Floats: Spearman's rho on both row sets, the prior range
    and the final mean and std in parameter units, the mean's shift as a fraction of the range.
    Categoricals: mean regret and count per choice on the prior rows, final probabilities.
    """
    out: dict[str, Any] = {}
    for p in space.params:
        if p.kind == "categorical":
            per = {}
            for c in p.choices:
                r = [float(row["regret"]) for row in prior_rows if row["point"][p.name] == c]
                per[c] = {"n": len(r), "mean_regret": float(np.mean(r)) if r else None}
            means = [v["mean_regret"] for v in per.values() if v["mean_regret"] is not None]
            out[p.name] = {"kind": "categorical", "per_choice": per,
                           "effect": (max(means) - min(means)) if len(means) > 1 else None,
                           "final_probs": dict(zip(p.choices, final["probs"][p.name], strict=True))}
        else:
            mu, sd = float(final["mean"][p.name]), float(final["std"][p.name])
            out[p.name] = {
                "kind": "float", "low": p.low, "high": p.high,
                "rho_prior": _spearman([r["point"][p.name] for r in prior_rows], [r["regret"] for r in prior_rows]),
                "rho_all": _spearman([r["point"][p.name] for r in all_rows], [r["regret"] for r in all_rows]),
                "final_mean": p.low + mu * (p.high - p.low), "final_std": sd * (p.high - p.low),
                "shift": mu - 0.5,
            }
    return out


def _fa_labels(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How often each IGNORE cue label was acted on (false alarms), over ``rows``."""
    c: Counter[str] = Counter()
    for r in rows:
        for o in r["policy"]["outcome"].get("cues", []):
            if o.get("expected") == "IGNORE" and o.get("outcome") == "false_alarm":
                c[str(o.get("label", "?")).split(" (")[0]] += 1
    return dict(c.most_common())


def _cue_outcomes(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    c: Counter[str] = Counter()
    for r in rows:
        o = r["policy"]["outcome"]
        for cue in o.get("cues", []):
            if cue.get("expected") != "IGNORE":
                c[f"{cue['expected']} {cue['outcome']}"] += 1
        c["interruptions"] += len(o.get("interruptions", []))
        c["false alarms"] += len(o.get("false_alarms", []))
        c["duplicates"] += len(o.get("duplicates", []))
    return dict(sorted(c.items()))


def finish(root: Path, space: Any, cfg: Any, pspec: Any, identity: Mapping[str, Any],
           history: Sequence[Mapping[str, Any]], searched: Sequence[Mapping[str, Any]],
           sets: Mapping[str, Sequence[Mapping[str, Any]]], seed: int, n_gen: int, timing: Mapping[str, Any],
           rir_cache_dir: str | None, report: bool) -> dict[str, Any]:
    """Write the datasets, ``results.json``, episode files and (with ``report``) ``report.md``
    and plots; return the results. See :func:`chimein.eval.attack.attack`."""
    env = cfg.env_options()
    valid = {name: [r for r in rows if r["valid"]] for name, rows in sets.items()}
    ids = {"found": [f"attack-{i:04d}" for i in range(len(valid["found"]))],
           "random": [f"random-{i:04d}" for i in range(len(valid["random"]))],
           "holdout": [f"holdout-{i:04d}" for i in range(len(valid["holdout"]))]}
    header = {"made_by": "chimein attack", "identity": dict(identity), "generations": n_gen}
    rendered = _write_datasets(root, space, cfg, header, valid, ids, rir_cache_dir)
    metrics, oracle_metrics = _write_episodes(root, space, cfg, pspec, env, valid, ids, seed)
    comparison, bar = _compare(space, cfg, seed, sets, valid, metrics, oracle_metrics)

    # ------------------------------------------------------------ search statistics
    reasons: Counter[str] = Counter()
    for r in searched:
        for why in r["reasons"]:
            reasons[why.split(":")[0]] += 1
    final = history[-1]["dist"] if history else None
    prior_rows = [r for r in searched if r["key"].startswith("g000-") and r["valid"]] + valid["random"]
    all_valid = [r for r in searched if r["valid"]]
    imp = importance(space, prior_rows, all_valid, final) if final is not None else {}
    n_eval = len(searched) + sum(len(v) for v in sets.values() if v is not sets["found"])
    results = {
        "policy": pspec.name, "policy_kwargs": pspec.to_dict()["kwargs"], "identity": dict(identity),
        "space_fingerprint": space.fingerprint(),
        "search": {"method": "cross-entropy method", "generations": n_gen, "population": cfg.population,
                   "n_elite": cfg.n_elite, "evaluated": len(searched),
                   "valid": sum(r["valid"] for r in searched), "invalid": len(searched) - sum(r["valid"] for r in searched),
                   "invalid_reasons": dict(reasons.most_common()),
                   "keep_elites": cfg.keep_elites,
                   "history": [{k: v for k, v in h.items() if k != "dist"} for h in history],
                   "final_distribution": final},
        "sets": comparison, "quality_bar": bar, "importance": imp,
        "metrics": {"policy": metrics, "oracle": oracle_metrics},
        "timing": _timing(root, timing, n_eval, searched),
        "env": env,
    }
    atomic_write_text(root / "results.json", json.dumps(results, indent=1, sort_keys=True) + "\n")
    if report:
        plots = _plots(root, space, history, searched, prior_rows, comparison, imp, valid["found"], ids["found"],
                       rendered, cfg.examples)
        atomic_write_text(root / "report.md", markdown(results, plots, valid["found"][: cfg.examples],
                                                       ids["found"][: cfg.examples]))
    return results


def _write_datasets(root: Path, space: Any, cfg: Any, header: Mapping[str, Any],
                    valid: Mapping[str, Sequence[Mapping[str, Any]]], ids: Mapping[str, Sequence[str]],
                    rir_cache_dir: str | None) -> dict[str, tuple[Any, np.ndarray]]:
    """Render the valid found and random scenes and write them as datasets (``root`` and
    ``root/random``) with ``scenes.jsonl`` (the found scenes' parameters and scores); returns the
    rendered scenes by id."""
    from chimein.exec import imap_unordered
    from chimein.scenes.dataset import write_scene_dataset
    from chimein.scenes.spec import SceneSpec

    jobs = [(space.to_dict(), r["point"], int(r["seed"]), sid, rir_cache_dir)
            for name in ("found", "random") for r, sid in zip(valid[name], ids[name], strict=True)]
    rendered: dict[str, tuple[Any, np.ndarray]] = {}
    for (_, _, _, sid, _), (spec_d, audio) in imap_unordered(render_job, jobs, workers=1, backend="inline"):
        rendered[sid] = (SceneSpec.from_dict(spec_d), audio)
    write_scene_dataset(root, [rendered[s] for s in ids["found"]], {**header, "set": "found"}, cfg.audio_format)
    write_scene_dataset(root / "random", [rendered[s] for s in ids["random"]], {**header, "set": "random"},
                        cfg.audio_format)
    scene_rows = [{"id": sid, "rank": i, "candidate": r["key"], "seed": r["seed"], "family": r.get("family"),
                   "regret": r["regret"], "policy_score": r["policy"]["reward"], "oracle_score": r["oracle"]["reward"],
                   "snr_db": r.get("snr_db"), "point": r["point"], "attack": r.get("attack")}
                  for i, (r, sid) in enumerate(zip(valid["found"], ids["found"], strict=True))]
    atomic_write_text(root / "scenes.jsonl", "".join(json.dumps(x, sort_keys=True) + "\n" for x in scene_rows))
    return rendered


def _write_episodes(root: Path, space: Any, cfg: Any, pspec: Any, env: Mapping[str, Any],
                    valid: Mapping[str, Sequence[Mapping[str, Any]]], ids: Mapping[str, Sequence[str]],
                    seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write the comparison's episodes (``episodes.jsonl``, ``oracle_episodes.jsonl``: one split
    per set) and return the policy's and the oracle's evaluation metrics on them."""
    from chimein.eval.metrics import aggregate

    pol, orc = [], []
    for name in SETS:
        for r, sid in zip(valid[name], ids[name], strict=True):
            meta = episode_meta(env, name, r.get("family", "custom"), "attack", r.get("duration_s"))
            pol.append(row_episode(r, "policy", sid, meta))
            orc.append(row_episode(r, "oracle", sid, meta))
    run = {"policy": pspec.name, "policy_kwargs": pspec.to_dict()["kwargs"], "suite": {"name": "attack", "revision": 0,
           "definition_hash": "", "fingerprint": space.fingerprint()}, "run": f"attack-{space.fingerprint()}"}
    atomic_write_text(root / "episodes.jsonl", "".join(e.with_meta(**run).to_json() + "\n" for e in pol))
    atomic_write_text(root / "oracle_episodes.jsonl", "".join(
        e.with_meta(**{**run, "policy": "oracle", "policy_kwargs": {}}).to_json() + "\n" for e in orc))
    metrics = aggregate(pol, resamples=cfg.resamples, seed=seed) if pol else {}
    oracle_metrics = aggregate(orc, resamples=cfg.resamples, seed=seed) if orc else {}
    return metrics, oracle_metrics


def _compare(space: Any, cfg: Any, seed: int, sets: Mapping[str, Sequence[Mapping[str, Any]]],
             valid: Mapping[str, Sequence[Mapping[str, Any]]], metrics: Mapping[str, Any],
             oracle_metrics: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per set: drop and scores with bootstrap intervals, evaluation metrics, failure modes; and
    the quality bar (the found/random drop ratio, bootstrapped with both sets resampled)."""
    comparison: dict[str, Any] = {}
    boots: dict[str, np.ndarray] = {}
    for name in SETS:
        rows = valid[name]
        drop, ci, boots[name] = bootstrap_mean([float(r["regret"]) for r in rows], cfg.resamples, seed, f"drop:{name}")
        pol = (metrics.get("by_split") or {}).get(name, {})
        orc = (oracle_metrics.get("by_split") or {}).get(name, {})
        score = {}
        for role in ("policy", "oracle"):
            m, c, _ = bootstrap_mean([r[role]["reward"] / r["norm"] for r in rows], cfg.resamples, seed,
                                     f"score:{role}:{name}")
            score[role] = {"value": m, "ci": c}
        comparison[name] = {
            "description": _SET_HELP[name], "n": len(sets[name]), "n_valid": len(rows),
            "drop": {"value": drop, "ci": ci}, "score": score,
            "policy": {k: pol.get(k) for k in _METRIC_COLS},
            "oracle": {k: orc.get(k) for k in ("mean_reward", "normalized_reward")},
            "oracle_at_max": sum(abs(r["oracle"]["reward"] - r["max_reward"]) <= space.constraints.oracle_tolerance
                                 for r in rows),
            "max_reward_mean": float(np.mean([r["max_reward"] for r in rows])) if rows else None,
            "families": dict(Counter(str(r.get("family")) for r in rows).most_common()),
            "cue_outcomes": _cue_outcomes(rows), "false_alarm_labels": _fa_labels(rows),
        }
    ratio: dict[str, Any] = {"value": None, "ci": [None, None]}
    dr, df = comparison["random"]["drop"]["value"], comparison["found"]["drop"]["value"]
    if dr is not None and df is not None and dr > 0:
        ratio["value"] = df / dr
        if boots["random"].size and boots["found"].size:
            with np.errstate(divide="ignore", invalid="ignore"):
                rb = boots["found"] / boots["random"]
            rb = rb[np.isfinite(rb)]
            if rb.size:
                ratio["ci"] = [float(np.percentile(rb, 2.5)), float(np.percentile(rb, 97.5))]
    found = valid["found"]
    bar = {"drop_random": dr, "drop_found": df, "ratio": ratio, "required_ratio": 2.0,
           "oracle_at_max_found": bool(found) and comparison["found"]["oracle_at_max"] == len(found),
           "passed": bool(ratio["value"] is not None and ratio["value"] >= 2.0 and found
                          and comparison["found"]["oracle_at_max"] == len(found))}
    return comparison, bar


def _timing(root: Path, now: Mapping[str, Any], n_eval: int, searched: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """This invocation's wall time, or -- when it only resumed finished work -- the last run's."""
    t = {**dict(now), "evaluations": n_eval,
         "candidate_s_mean": float(np.mean([r.get("wall_s", 0.0) for r in searched])) if searched else None}
    if not now.get("evaluated_now") and (root / "results.json").is_file():
        try:
            old = json.loads((root / "results.json").read_text()).get("timing") or {}
        except json.JSONDecodeError:
            old = {}
        if old.get("evaluated_now"):
            t = {**old, "from_earlier_run": True}
    return t


def _f(v: Any, d: int = 2) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{d}f}"


def _ci(m: Mapping[str, Any] | None, d: int = 2) -> str:
    if not m or m.get("value") is None:
        return "-"
    lo, hi = (m.get("ci") or [None, None])[:2]
    return _f(m["value"], d) + (f" [{_f(lo, d)}, {_f(hi, d)}]" if lo is not None and hi is not None else "")


def summary(results: Mapping[str, Any]) -> str:
    """A few lines for the terminal: the comparison and the quality bar."""
    s = results["search"]
    lines = [f"attack on {results['policy']}: {s['evaluated']} candidates in {s['generations']} generations "
             f"({s['invalid']} invalid: {s['invalid_reasons']})"]
    for name in SETS:
        c = results["sets"][name]
        lines.append(f"  {name:<8} n={c['n_valid']:<4} policy score {_ci(c['score']['policy'])}  "
                     f"oracle {_ci(c['score']['oracle'])}  drop {_ci(c['drop'])}")
    b = results["quality_bar"]
    lines.append(f"  drop ratio found/random {_ci(b['ratio'])} (need >= 2, oracle at max on found: "
                 f"{b['oracle_at_max_found']}): {'PASS' if b['passed'] else 'FAIL'}")
    return "\n".join(lines)


def replay_summary(rep: Mapping[str, Any]) -> str:
    """Terminal lines of :func:`chimein.eval.attack.replay`."""
    m = rep.get("metrics") or {}
    return "\n".join([
        f"{rep['policy']} on {rep['n']} scenes of {rep['dataset']}:",
        f"  policy score {_ci(rep['score']['policy'])}  oracle {_ci(rep['score']['oracle'])}  drop {_ci(rep['drop'])}"
        f"  (oracle at max on {rep['oracle_at_max']}/{rep['n']})",
        *(f"  {k:<24} {_ci(m.get(k))}" for k in ("mean_reward", "normalized_reward", "timeliness", "hit_rate",
                                                  "false_alarms_per_min", "interruptions_per_turn"))])


def markdown(results: Mapping[str, Any], plots: Mapping[str, Any], worst: Sequence[Mapping[str, Any]],
             worst_ids: Sequence[str]) -> str:
    """The text of ``report.md``."""
    s, b, ident = results["search"], results["quality_bar"], results["identity"]
    t = results["timing"]
    L = [f"# Adversarial scenes for `{results['policy']}`", "",
         f"- policy: `{results['policy']}` {json.dumps(results['policy_kwargs'])}; seed {ident['seed']}; "
         f"space fingerprint `{results['space_fingerprint']}`",
         f"- search: {s['method']}, {s['generations']} generations x {s['population']} candidates "
         f"({s['evaluated']} evaluated, {s['n_elite']} elites per generation"
         f"{', retained across generations' if s['keep_elites'] else ''})",
         f"- invalid candidates (rejected, never elites): {s['invalid']} of {s['evaluated']} "
         f"({', '.join(f'{k}: {v}' for k, v in s['invalid_reasons'].items()) or 'none'})",
         f"- env: `{json.dumps(results['env'], sort_keys=True)}`",
         f"- wall time {t['wall_s']:.0f} s for {t['evaluated_now']} evaluations with {t['workers']} workers "
         f"(mean {_f(t['candidate_s_mean'])} s of worker time per candidate)", "",
         "**score** = episode reward of the shared scoring function (timeliness-weighted hit credit minus "
         "penalties) per scored action cue (at least 1); **drop** = mean over scenes of score(oracle) - "
         "score(policy), the regret the search maximises. `mean_reward`, `normalized_reward` and "
         "`timeliness` are the evaluation metrics (chimein.eval.metrics). 95 % bootstrap intervals over scenes.", "",
         "## Before / after", "",
         "| set | scenes (valid/drawn) | policy score | oracle score | drop | policy mean_reward | oracle mean_reward "
         "| normalized reward | timeliness |",
         "|---|---|---|---|---|---|---|---|---|"]
    for name in SETS:
        c = results["sets"][name]
        L.append(f"| {name}: {c['description']} | {c['n_valid']}/{c['n']} | {_ci(c['score']['policy'])} | "
                 f"{_ci(c['score']['oracle'])} | {_ci(c['drop'])} | {_ci(c['policy'].get('mean_reward'))} | "
                 f"{_ci(c['oracle'].get('mean_reward'))} | {_ci(c['policy'].get('normalized_reward'))} | "
                 f"{_ci(c['policy'].get('timeliness'))} |")
    L += ["", f"**Quality bar** (drop on found scenes >= 2 x drop on random scenes, oracle at its maximum on the "
          f"found scenes): ratio **{_ci(b['ratio'])}**, oracle at maximum on "
          f"{results['sets']['found']['oracle_at_max']}/{results['sets']['found']['n_valid']} found scenes: "
          f"**{'PASS' if b['passed'] else 'FAIL'}**.", ""]
    if "compare" in plots:
        L += [f"![comparison]({plots['compare']})", ""]
    L += ["## Failure modes", "", "Evaluation metrics of the policy on each set (95 % CI):", "",
          "| metric | " + " | ".join(SETS) + " |", "|---|" + "---|" * len(SETS)]
    for k in _METRIC_COLS:
        L.append(f"| {k} | " + " | ".join(_ci(results["sets"][n]["policy"].get(k)) for n in SETS) + " |")
    L += ["", "| set | families | cue outcomes and penalties | IGNORE cues acted on |", "|---|---|---|---|"]
    for name in SETS:
        c = results["sets"][name]
        L.append(f"| {name} | {_kv(c['families'])} | {_kv(c['cue_outcomes'])} | {_kv(c['false_alarm_labels'])} |")
    L += ["", "## Which parameters drive failure", "",
          "Spearman's rho between each parameter and the regret: on the scenes drawn from the prior (generation 0 "
          "and the random set: independent draws) and on every searched candidate; where the search's final "
          "distribution sits (mean +- std) against the declared range; shift = final mean - range centre, "
          "as a fraction of the range. Sorted by |rho| on the prior draws.", "",
          "| parameter | range | rho (prior draws) | rho (all candidates) | final mean +- std | shift |",
          "|---|---|---|---|---|---|"]
    imp = results["importance"]
    floats = sorted((k for k, v in imp.items() if v["kind"] == "float"),
                    key=lambda k: -abs(imp[k]["rho_prior"] or 0.0))
    for k in floats:
        v = imp[k]
        L.append(f"| {k} | [{_f(v['low'], 2)}, {_f(v['high'], 2)}] | {_f(v['rho_prior'])} | {_f(v['rho_all'])} | "
                 f"{_f(v['final_mean'])} +- {_f(v['final_std'])} | {v['shift']:+.2f} |")
    L += ["", "| parameter | mean regret per choice on prior draws (n) | final probabilities |", "|---|---|---|"]
    for k, v in imp.items():
        if v["kind"] != "categorical":
            continue
        per = ", ".join(f"{c}: {_f(x['mean_regret'])} ({x['n']})" for c, x in v["per_choice"].items())
        probs = ", ".join(f"{c}: {p:.2f}" for c, p in sorted(v["final_probs"].items(), key=lambda kv: -kv[1]))
        L.append(f"| {k} | {per} | {probs} |")
    for key, cap in (("params", "Regret against each parameter (every valid candidate; colour: generation)"),
                     ("shift", "Final CEM distribution against the prior"), ("progress", "Search progress")):
        if key in plots:
            L += ["", f"![{cap}]({plots[key]})", f"*{cap}*"]
    L += ["", "## Search progress", "", "| generation | valid | mean regret | elite mean regret | max regret |",
          "|---|---|---|---|---|"]
    for h in s["history"]:
        L.append(f"| {h['generation']} | {h['n_valid']} | {_f(h['mean_regret'])} | {_f(h['elite_regret'])} | "
                 f"{_f(h['max_regret'])} |")
    L += ["", "## Worst scenes", ""]
    for r, sid, png in zip(worst, worst_ids, plots.get("worst", []), strict=False):
        pt = ", ".join(f"{k}={v}" for k, v in r["point"].items())
        L += [f"**{sid}** ({r['key']}, family {r.get('family')}): reward {_f(r['policy']['reward'])} vs the "
              f"oracle's {_f(r['oracle']['reward'])} (regret per cue {_f(r['regret'])}); cue SINR at mic 0 "
              f"{r.get('snr_db')} dB", "", f"`{pt}`", "", f"![{sid}]({png})", ""]
    L += ["## Files", "",
          "- `manifest.jsonl`, `audio/`, `specs/`: the found scenes as a dataset (worst first; `scenes.jsonl` has "
          "their parameters and scores); `random/`: the random comparison scenes",
          "- `episodes.jsonl`, `oracle_episodes.jsonl`: the comparison's episodes (`chimein eval rescore`)",
          "- `candidates.jsonl`, `attack_state.json`: every evaluated candidate and the search state (resume)",
          "- `results.json`: every number above", ""]
    return "\n".join(L)


def _kv(d: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in d.items()) or "-"


def _plots(root: Path, space: Any, history: Sequence[Mapping[str, Any]], searched: Sequence[Mapping[str, Any]],
           prior_rows: Sequence[Mapping[str, Any]], comparison: Mapping[str, Any], imp: Mapping[str, Any],
           found: Sequence[Mapping[str, Any]], found_ids: Sequence[str],
           rendered: Mapping[str, tuple[Any, np.ndarray]], examples: int) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from chimein.envs.scoring import ActionLog
    from chimein.io import atomic_write
    from chimein.scenes.show import plot_scene

    pdir = root / "plots"
    pdir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}

    def save(fig: Any, name: str) -> str:
        atomic_write(pdir / name, lambda tmp: fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight"))
        plt.close(fig)
        return f"plots/{name}"

    valid = [r for r in searched if r["valid"]]
    gen = np.array([int(r["key"][1:4]) for r in valid]) if valid else np.zeros(0)
    n = len(space.params)
    cols = 4
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False,
                             gridspec_kw={"hspace": 0.55, "wspace": 0.3})
    for ax, p in zip(axes.flat, space.params, strict=False):
        y = np.array([float(r["regret"]) for r in valid])
        if p.kind == "float":
            x = np.array([float(r["point"][p.name]) for r in valid])
            sc = ax.scatter(x, y, c=gen, s=10, cmap="viridis", alpha=0.7)
            rho = imp.get(p.name, {}).get("rho_prior")
            ax.set_title(f"{p.name} (rho prior {_f(rho)})", fontsize=9)
        else:
            means = [float(np.mean([r["regret"] for r in valid if r["point"][p.name] == c]) if any(
                r["point"][p.name] == c for r in valid) else 0.0) for c in p.choices]
            counts = [sum(r["point"][p.name] == c for r in valid) for c in p.choices]
            ax.bar(range(len(p.choices)), means, color="#1f77b4")
            ax.set_xticks(range(len(p.choices)), [f"{c} ({k})" for c, k in zip(p.choices, counts, strict=True)],
                          fontsize=7, rotation=30, ha="right")
            ax.set_title(f"{p.name}: mean regret (count)", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_ylabel("regret", fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if valid and any(p.kind == "float" for p in space.params):
        fig.colorbar(sc, ax=axes, shrink=0.6, label="generation")
    out["params"] = save(fig, "params.png")

    if history:
        fig, ax = plt.subplots(figsize=(6, 3.2))
        g = [h["generation"] for h in history]
        for key, lab in (("mean_regret", "mean"), ("elite_regret", "elite mean"), ("max_regret", "max")):
            ax.plot(g, [np.nan if h[key] is None else h[key] for h in history], marker="o", label=lab)
        ax.set_xlabel("generation")
        ax.set_ylabel("regret (oracle - policy score)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        out["progress"] = save(fig, "progress.png")

        final = history[-1]["dist"]
        floats = [p for p in space.params if p.kind == "float"]
        if floats:
            fig, ax = plt.subplots(figsize=(6.5, 0.35 * len(floats) + 1.2))
            for i, p in enumerate(floats):
                mu, sd = final["mean"][p.name], final["std"][p.name]
                ax.plot([0, 1], [i, i], color="#cccccc", lw=6, solid_capstyle="butt")
                ax.errorbar([mu], [i], xerr=[[min(sd, mu)], [min(sd, 1 - mu)]], fmt="o", color="#d62728", capsize=3)
            ax.set_yticks(range(len(floats)), [f"{p.name} [{p.low:g}, {p.high:g}]" for p in floats], fontsize=8)
            ax.set_xlim(-0.02, 1.02)
            ax.set_xlabel("position in the declared range (grey: prior = uniform; red: final CEM mean +- std)")
            out["shift"] = save(fig, "shift.png")

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for j, (role, col) in enumerate((("policy", "#d62728"), ("oracle", "#2ca02c"))):
        xs, ys, lo, hi = [], [], [], []
        for i, name in enumerate(SETS):
            m = comparison[name]["score"][role]
            if m.get("value") is None:
                continue
            ci = m.get("ci") or [None, None]
            xs.append(i + (j - 0.5) * 0.3)
            ys.append(m["value"])
            lo.append(m["value"] - (ci[0] if ci[0] is not None else m["value"]))
            hi.append((ci[1] if ci[1] is not None else m["value"]) - m["value"])
        ax.bar(xs, ys, width=0.3, color=col, label=role, yerr=[lo, hi], capsize=3)
    ax.set_xticks(range(len(SETS)), list(SETS))
    ax.axhline(0, color="k", lw=0.5)
    ax.set_ylabel("mean score (reward per action cue)")
    ax.legend(fontsize=8)
    out["compare"] = save(fig, "compare.png")

    worst = []
    for r, sid in list(zip(found, found_ids, strict=True))[:examples]:
        spec, audio = rendered[sid]
        log = ActionLog.from_dict(r["policy"]["action_log"])
        acts = [(float(t), int(a)) for t, a, e in zip(log.times_s, log.actions, log.effective, strict=True) if a and e]
        o = r["policy"]["outcome"]
        summ = ", ".join(f"{c['expected'][0]}:{c['outcome']}" for c in o.get("cues", []))
        title = (f"{sid} ({spec.family}) score {o['reward']:.2f} vs oracle {r['oracle']['reward']:.2f}  "
                 f"FA={len(o.get('false_alarms', []))} interr.={len(o.get('interruptions', []))} [{summ}]")
        plot_scene(spec, audio, pdir / f"worst-{sid}.png", actions=acts, title=title[:170])
        worst.append(f"plots/worst-{sid}.png")
    out["worst"] = worst
    return out
