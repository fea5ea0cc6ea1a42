"""The search loop and the re-evaluation of saved scenes: :func:`attack` and :func:`replay`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from chimein.errors import SpecError
from chimein.eval.attack.jobs import (
    episode_meta,
    policy_instance,
    replay_job,
    row_episode,
    run_jobs,
)
from chimein.eval.attack.report import bootstrap_mean, finish
from chimein.eval.attack.search import (
    SearchConfig,
    comparison_points,
    fold_generation,
    generation_points,
    select_elites,
)
from chimein.eval.attack.state import CANDIDATES, STATE, load_state, read_candidates
from chimein.io import atomic_write_text

__all__ = ["attack", "make_jobs", "replay"]


def make_jobs(keys_points_seeds: Iterable[tuple[str, dict[str, Any], int]], ctx: Mapping[str, Any]
              ) -> list[dict[str, Any]]:
    """Candidate jobs of :func:`~chimein.eval.attack.jobs.evaluate_candidate`: each
    ``(key, point, scene seed)`` with the shared context (space, policy, env, RIR cache)."""
    return [{"key": k, "point": p, "seed": s, **ctx} for k, p, s in keys_points_seeds]


def attack(
    policy: str | Any,
    out: str | os.PathLike[str],
    budget: int = 256,
    *,
    space: Mapping[str, Any] | Any,
    search: Mapping[str, Any] | SearchConfig | None = None,
    policy_kwargs: Mapping[str, Any] | None = None,
    seed: int = 0,
    workers: int | None = None,
    backend: str = "local",
    rir_cache_dir: str | None = None,
    progress: bool = True,
    report: bool = True,
    ray_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Search ``space`` for scenes that minimise ``policy``'s score; write ``out`` (see the
    module notes) and return the content of ``out/results.json``.

    Parameters
    ----------
    policy
        A policy name, checkpoint directory or ``remote://`` URL (anything
        :func:`~chimein.agents.registry.make_policy` resolves), or a
        :class:`~chimein.eval.runner.PolicySpec`.
    out
        Output folder; rerunning with the same settings resumes, a larger ``budget`` continues.
    budget
        Search candidates to evaluate, rounded up to whole generations of ``population``
        (the comparison's random and held-out scenes come on top).
    space
        The search space config (:meth:`~chimein.scenes.search_space.SearchSpace.from_mapping`).
    search
        :class:`SearchConfig` or its mapping.
    policy_kwargs
        Policy constructor arguments.
    seed
        Seed of every random choice of the search.
    workers
        Processes (None or 0: all cores; 1: inline).
    backend, ray_options
        Backend of :func:`chimein.exec.imap_unordered` (``local``, ``inline``, ``ray``)
        and, for Ray, where to run and what each task reserves (``{"address": "auto",
        "num_gpus": 0.25}``). Candidates are pure functions of their job, so any machine of a
        cluster can evaluate them; this process writes every file.
    rir_cache_dir
        RIR cache root (None: the scene engine's default).
    report
        Also write ``report.md`` and its plots.

    Raises
    ------
    SpecError
        Invalid space, search settings or policy; ``out`` holding another attack.
    """
    from chimein.eval.runner import PolicySpec
    from chimein.exec import resolve_workers
    from chimein.scenes.search_space import SearchSpace

    if isinstance(budget, bool) or int(budget) < 1:
        raise SpecError(f"attack: field 'budget': need at least 1 candidate, got {budget!r}")
    sp = SearchSpace.from_mapping(space)
    cfg = SearchConfig.from_mapping(search)
    pspec = policy if isinstance(policy, PolicySpec) else PolicySpec(str(policy), dict(policy_kwargs or {}))
    policy_instance(pspec.to_dict())  # unknown names and bad arguments fail now, before any work
    w = resolve_workers(workers, backend, ray_options)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    identity = {"policy": pspec.to_dict(), "space": sp.to_dict(), "search": cfg.identity(), "seed": int(seed)}
    state = load_state(root, identity, sp)
    n_gen = -(-int(budget) // cfg.population)
    results = read_candidates(root / CANDIDATES)
    n_before = len(results)
    ctx = {"space": sp.to_dict(), "policy": pspec.to_dict(), "env": cfg.env_options(), "rir_cache_dir": rir_cache_dir}

    total = n_gen * cfg.population + cfg.n_random + cfg.n_holdout
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=f"attack {pspec.name}", unit="scene", file=sys.stderr)
    t0 = time.perf_counter()
    fd = os.open(root / CANDIDATES, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def play(jobs: Sequence[Mapping[str, Any]]) -> None:
        run_jobs(jobs, results, fd, w, backend, bar, ray_options)

    try:
        # ---- the search: generations of candidates, each refitting the distribution
        _run_generations(root, sp, cfg, state, n_gen, int(seed), ctx, results, play, bar)
        # ---- the comparison: random scenes from the prior, held-out ones from the final distribution
        final = state["prior"] if n_gen == 0 else state["history"][n_gen - 1]["dist"]
        rand, hold = comparison_points(sp, final, seed, n_gen, cfg.n_random, cfg.n_holdout)
        if bar is not None:
            bar.set_postfix_str("comparison")
            bar.update(sum(k in results for k, _, _ in rand + hold))
        play(make_jobs(rand + hold, ctx))
    finally:
        os.close(fd)
        if bar is not None:
            bar.close()
    timing = {"wall_s": time.perf_counter() - t0, "evaluated_now": len(results) - n_before, "workers": w}
    # ---- what was found, compared, reported
    search_keys = [k for g in range(n_gen) for k in (f"g{g:03d}-{j:03d}" for j in range(cfg.population))]
    searched = [results[k] for k in search_keys]
    found = select_elites(searched, cfg.top_k)
    sets: dict[str, Sequence[Mapping[str, Any]]] = {
        "found": found, "random": [results[k] for k, _, _ in rand], "holdout": [results[k] for k, _, _ in hold]}

    return finish(root, sp, cfg, pspec, identity, state["history"][:n_gen], searched, sets, int(seed), n_gen,
                  timing, rir_cache_dir, report)


def _run_generations(root: Path, sp: Any, cfg: SearchConfig, state: dict[str, Any], n_gen: int, seed: int,
                     ctx: Mapping[str, Any], results: Mapping[str, Mapping[str, Any]],
                     play: Callable[[Sequence[Mapping[str, Any]]], None], bar: Any) -> None:
    """Generations ``0 .. n_gen - 1``: evaluate each one's candidates (``play`` skips those already
    in ``results``) and fold each generation not yet in ``state`` into the CEM distribution,
    writing the state after each (a resumed run replays the folded ones without refitting)."""
    history = state["history"]
    for g in range(n_gen):
        dist = None if g == 0 else history[g - 1]["dist"]
        jobs = make_jobs(generation_points(sp, dist, seed, g, cfg.population), ctx)
        if bar is not None:
            bar.set_postfix_str(f"generation {g + 1}/{n_gen}")
            bar.update(sum(j["key"] in results for j in jobs))
        play(jobs)
        if g < state["generations"]:  # already folded into the distribution
            continue
        gen = [results[j["key"]] for j in jobs]
        kept = [results[k] for k in history[g - 1]["elites"]] if g and cfg.keep_elites else []
        base = state["prior"] if g == 0 else history[g - 1]["dist"]
        history.append(fold_generation(sp, cfg, g, gen, kept, base))
        state["generations"] = g + 1
        atomic_write_text(root / STATE, json.dumps(state, indent=1, sort_keys=True) + "\n")


def replay(policy: str | Any, dataset: str | os.PathLike[str], *, policy_kwargs: Mapping[str, Any] | None = None,
           search: Mapping[str, Any] | SearchConfig | None = None, workers: int | None = None,
           backend: str = "local", seed: int = 0, progress: bool = True,
           ray_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Re-evaluate a policy on a saved scene set (the found scenes of an earlier attack, its
    ``random/`` set, any dataset): the policy's and the oracle's score per action cue, the drop,
    with bootstrap intervals, and the evaluation metrics -- the "re-evaluate" step of
    attack -> retrain -> re-evaluate.

    Examples
    --------
    >>> import tempfile
    >>> from chimein.scenes.dataset import generate_dataset
    >>> d = tempfile.mkdtemp()
    >>> _ = generate_dataset({"family": "addressed", "difficulty": "easy"}, n=2, seed=0, out=d, workers=1,
    ...                      progress=False)
    >>> r = replay("always-wait", d, workers=1, progress=False, search={"resamples": 0})
    >>> r["n"], r["score"]["oracle"]["value"], r["drop"]["value"]
    (2, 1.0, 1.5)
    """
    from chimein.eval.metrics import aggregate
    from chimein.eval.runner import PolicySpec, pack_scene
    from chimein.exec import imap_unordered, resolve_workers
    from chimein.scenes.dataset import SceneDataset

    cfg = SearchConfig.from_mapping(search)
    pspec = policy if isinstance(policy, PolicySpec) else PolicySpec(str(policy), dict(policy_kwargs or {}))
    policy_instance(pspec.to_dict())
    root = str(Path(dataset).resolve())
    sds = SceneDataset(root)
    n = len(sds)
    w = max(1, min(n, resolve_workers(workers, backend, ray_options)))
    ray = backend == "ray"
    # Ray: each job carries its scene's bytes (read lazily, as jobs are submitted), so workers on
    # other machines need no copy of the dataset
    jobs = ({"dataset": root, "index": i, "policy": pspec.to_dict(), "env": cfg.env_options(),
             **({"packed": pack_scene(sds, i)} if ray else {})} for i in range(n))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, desc=f"replay {pspec.name}", unit="scene", file=sys.stderr)
    rows = []
    for _, r in imap_unordered(replay_job, jobs, workers=w, backend=backend if ray or w > 1 else "inline",
                               max_pending=2 * w, ray_options=ray_options):
        rows.append(r)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    rows.sort(key=lambda r: r["index"])
    env = cfg.env_options()
    episodes = [row_episode(r, "policy", r["key"], episode_meta(env, "replay", r["family"], "replay", r["duration_s"]))
                for r in rows]
    out: dict[str, Any] = {"policy": pspec.name, "dataset": root, "n": n, "score": {}}
    for role in ("policy", "oracle"):
        m, ci, _ = bootstrap_mean([r[role]["reward"] / r["norm"] for r in rows], cfg.resamples, seed, f"replay:{role}")
        out["score"][role] = {"value": m, "ci": ci}
    m, ci, _ = bootstrap_mean([r["regret"] for r in rows], cfg.resamples, seed, "replay:drop")
    out["drop"] = {"value": m, "ci": ci}
    out["oracle_at_max"] = sum(abs(r["oracle"]["reward"] - r["max_reward"]) <= 1e-6 for r in rows)
    out["metrics"] = aggregate(episodes, resamples=cfg.resamples, seed=seed)["overall"] if episodes else {}
    out["per_scene"] = [{"id": r["key"], "regret": r["regret"], "policy_reward": r["policy"]["reward"],
                         "oracle_reward": r["oracle"]["reward"]} for r in rows]
    return out
