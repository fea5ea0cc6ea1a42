"""Adversarial scene search: find the scenes of a declared space that break a timing policy.

The search minimises the target policy's *score* on candidate scenes -- the episode reward of
the shared scoring function (timeliness-weighted credit for hits, minus false alarms,
interruptions, duplicates and misses) per scored action cue (at least 1, so scenes with more
cues do not weigh more) -- by maximising its **regret** ``(R_oracle - R_policy) / n_cues`` on
each scene, under validity constraints that keep every scene solvable (the oracle still earns
its maximum, the target cues stay audible, windows stay well-formed; see
:mod:`chimein.scenes.search_space`).

Search: the cross-entropy method (CEM) over the space's unit-scaled floats (independent
Gaussians, clipped to the bounds and snapped to their grid) and categoricals (independent
categorical distributions). Generation 0 samples the uniform prior -- the very distribution
"random scenes from the same space" come from; each later generation refits the
distributions to the top ``elite_frac`` of the previous generation's valid candidates (which
compete with the elites before them: iCEM's elite retention), with smoothing, a floor on each
standard deviation and on each category's probability, so the search keeps exploring. CEM is population-based (a generation is evaluated in parallel), needs no
gradient and no extra dependency (``cma`` is not installed), copes with mixed
continuous/categorical parameters and with the noise of a fresh scene seed per candidate, and
its final distribution is itself a *scene distribution* of hard scenes (sampled again for the
held-out check below).

Each candidate is evaluated by :func:`evaluate_candidate`, a pure function of its job
(parameters, scene seed, space, policy, env): build the scene, check the scene-only
constraints, render it, play the target policy and the oracle through the evaluation runner's
:func:`~chimein.eval.runner.rollout`. Jobs go through :func:`chimein.parallel.imap_unordered`
(local process pool, inline, later Ray); results are collected by key, so they do not depend
on the number of workers.

Outputs in ``DIR``:

- ``manifest.jsonl``, ``audio/``, ``specs/``, ``dataset.json``: the ``top_k`` hardest valid
  scenes found, worst first, in the normal dataset format (``SceneDataset``, ``DatasetSource``,
  ``chimein eval``, training); ``scenes.jsonl`` lists their parameters and scores;
- ``random/``: the valid random scenes of the comparison, as a dataset too;
- ``report.md`` + ``plots/``: failure modes and the before/after comparison
  (:mod:`chimein.eval.attack_report`); ``results.json``: every number of the report;
- ``episodes.jsonl`` / ``oracle_episodes.jsonl``: the comparison's episodes (re-scorable with
  ``chimein eval rescore``);
- ``attack_state.json`` (identity, the CEM distribution after every generation) and
  ``candidates.jsonl`` (one line per evaluated candidate, appended as results arrive).

Resuming: the state is written atomically after every generation and every candidate's result
is appended as soon as it arrives; rerunning the same command skips what is done. Generation
``g``'s candidates are drawn from a generator seeded by ``(seed, g)`` and the distribution
after generation ``g - 1``, so a run continued with a larger ``budget`` gives exactly the
result of an uninterrupted run with that budget (the budget is rounded up to whole
generations).

Examples
--------
>>> import tempfile
>>> space = {"params": {"snr_db": {"type": "float", "low": 5, "high": 30, "step": 5}},
...          "base": {"family": "addressed", "difficulty": "easy", "room_pool": 1}}
>>> d = tempfile.mkdtemp()
>>> res = attack("always-wait", d, budget=2, space=space, search={"population": 2, "top_k": 1,
...              "n_random": 1, "n_holdout": 1, "resamples": 0, "examples": 0}, workers=1,
...              progress=False, rir_cache_dir=d)
>>> res["search"]["evaluated"], res["sets"]["found"]["n_valid"]
(2, 1)
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from chimein.errors import ChimeinError, SpecError
from chimein.io import atomic_write_text

__all__ = ["SearchConfig", "attack", "command", "draw", "evaluate_candidate", "initial_distribution", "replay",
           "read_candidates", "update_distribution"]

STATE = "attack_state.json"
CANDIDATES = "candidates.jsonl"
STATE_VERSION = 1


# ============================================================================================
# Configuration
# ============================================================================================
@dataclass(frozen=True)
class SearchConfig:
    """Search and comparison settings (the ``attack.search`` config).

    ``population`` candidates per generation; the elites are the best ``elite_frac`` of a
    generation's valid candidates (at least 2), competing with the previous generation's elites
    when ``keep_elites`` (elite retention, as in iCEM: a rare very hard scene keeps pulling the
    distribution until something harder is found); ``smoothing`` is the weight of the elites'
    statistics in each update (the rest stays with the previous distribution); ``min_std``
    floors each float's standard deviation (unit scale) and ``cat_floor`` mixes that much of the
    uniform distribution into each categorical. The comparison uses the ``top_k`` hardest valid
    scenes found, ``n_random`` scenes from the prior and ``n_holdout`` fresh scenes from the final
    distribution, with ``resamples`` bootstrap resamples; ``examples`` worst scenes get a
    timeline plot. ``env`` and ``reward`` are the env options and reward of every episode.
    """

    population: int = 32
    elite_frac: float = 0.25
    keep_elites: bool = True
    smoothing: float = 0.7
    min_std: float = 0.05
    cat_floor: float = 0.05
    top_k: int = 32
    n_random: int = 48
    n_holdout: int = 48
    resamples: int = 1000
    examples: int = 3
    audio_format: str = "flac"
    env: Mapping[str, Any] = field(default_factory=lambda: {"chunk_ms": 80.0, "speak_s": 2.0})
    reward: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        def bad(name: str, rule: str) -> SpecError:
            return SpecError(f"attack search: field '{name}': {rule}, got {getattr(self, name)!r}")

        for name in ("population", "top_k", "n_random", "n_holdout", "resamples", "examples"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise bad(name, "must be an integer >= 0")
        if self.population < 2:
            raise bad("population", "must be >= 2")
        for name, lo, hi in (("elite_frac", 0.0, 1.0), ("smoothing", 0.0, 1.0), ("min_std", 0.0, 1.0),
                             ("cat_floor", 0.0, 1.0)):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not lo <= float(v) <= hi:
                raise bad(name, f"must be in [{lo}, {hi}]")
        if self.elite_frac <= 0:
            raise bad("elite_frac", "must be > 0")
        if not isinstance(self.keep_elites, bool):
            raise bad("keep_elites", "must be true or false")
        from chimein.scenes.dataset import AUDIO_FORMATS

        if self.audio_format not in AUDIO_FORMATS:
            raise bad("audio_format", f"use one of {AUDIO_FORMATS}")
        from chimein.envs.core import EnvConfig

        env = dict(self.env)
        if "reward" in env:
            raise SpecError("attack search: set the reward under 'reward', not 'env.reward'")
        EnvConfig.from_options({**env, "reward": dict(self.reward)})
        object.__setattr__(self, "env", json.loads(json.dumps(env, sort_keys=True)))
        object.__setattr__(self, "reward", json.loads(json.dumps(dict(self.reward), sort_keys=True)))

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | SearchConfig | None) -> SearchConfig:
        if isinstance(d, SearchConfig):
            return d
        if d is None:
            return cls()
        if hasattr(d, "_content"):
            from omegaconf import OmegaConf

            d = OmegaConf.to_container(d, resolve=True)  # type: ignore[assignment]
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise SpecError(f"attack search: unknown field '{unknown[0]}'; known fields are {sorted(known)}")
        return cls(**dict(d))

    @property
    def n_elite(self) -> int:
        return max(2, math.ceil(self.elite_frac * self.population))

    def env_options(self) -> dict[str, Any]:
        """Env options of every rollout (reward included)."""
        return {**dict(self.env), "reward": dict(self.reward)}

    def identity(self) -> dict[str, Any]:
        """What decides the search's candidates and scores (the comparison sizes do not)."""
        d = asdict(self)
        for k in ("top_k", "n_random", "n_holdout", "resamples", "examples", "audio_format"):
            d.pop(k)
        return json.loads(json.dumps(d, sort_keys=True))


def _seed(*parts: int) -> int:
    """A 32-bit seed from integer parts (SeedSequence; no clock, no global RNG)."""
    return int(np.random.SeedSequence([int(p) % 2**64 for p in parts]).generate_state(1, dtype=np.uint32)[0])


_SEARCH, _RANDOM, _HOLDOUT = 0xCE11, 0x52A1, 0x401D


# ============================================================================================
# CEM
# ============================================================================================
def initial_distribution(space: Any) -> dict[str, Any]:
    """The prior as a CEM distribution: mean 0.5 and the uniform's std ``1/sqrt(12)`` on the
    unit scale of every float, uniform probabilities for every categorical."""
    dist: dict[str, Any] = {"mean": {}, "std": {}, "probs": {}}
    for p in space.params:
        if p.kind == "categorical":
            dist["probs"][p.name] = [1.0 / len(p.choices)] * len(p.choices)
        else:
            dist["mean"][p.name] = 0.5
            dist["std"][p.name] = 1.0 / math.sqrt(12.0)
    return dist


def draw(space: Any, dist: Mapping[str, Any] | None, rng: np.random.Generator) -> dict[str, Any]:
    """One point: from the uniform prior when ``dist`` is None, else from the CEM
    distribution (Gaussian on the unit scale, clipped and snapped; categorical); see
    :meth:`~chimein.scenes.search_space.SearchSpace.sample`."""
    return space.sample(rng, dist)


def update_distribution(space: Any, dist: Mapping[str, Any], elites: Sequence[Mapping[str, Any]],
                        cfg: SearchConfig) -> dict[str, Any]:
    """The CEM update: blend the elites' mean/std (floats, unit scale) and frequencies
    (categoricals) into ``dist`` with weight ``smoothing``; floor stds at ``min_std`` and mix
    ``cat_floor`` of the uniform into each categorical. Fewer than 2 elites: unchanged."""
    new = json.loads(json.dumps(dist))
    if len(elites) < 2:
        return new
    a = float(cfg.smoothing)
    for p in space.params:
        vals = [e[p.name] for e in elites]
        if p.kind == "categorical":
            freq = np.array([sum(v == c for v in vals) for c in p.choices], float) / len(vals)
            probs = a * freq + (1 - a) * np.asarray(dist["probs"][p.name], float)
            probs = (1 - cfg.cat_floor) * probs + cfg.cat_floor / len(p.choices)
            new["probs"][p.name] = [float(x) for x in probs / probs.sum()]
        else:
            z = np.array([p.to_unit(v) for v in vals], float)
            new["mean"][p.name] = float(a * z.mean() + (1 - a) * float(dist["mean"][p.name]))
            std = a * float(z.std()) + (1 - a) * float(dist["std"][p.name])
            new["std"][p.name] = float(max(std, cfg.min_std))
    return new


def _elites(results: Sequence[Mapping[str, Any]], n: int) -> list[Mapping[str, Any]]:
    valid = [r for r in results if r["valid"]]
    valid.sort(key=lambda r: (-float(r["regret"]), r["key"]))
    return valid[:n]


# ============================================================================================
# Candidate evaluation (pure; runs in worker processes)
# ============================================================================================
_CACHE: dict[str, Any] = {}


def _cached(kind: str, key: Any, make: Any) -> Any:
    k = kind + json.dumps(key, sort_keys=True, default=str)
    if k not in _CACHE:
        _CACHE[k] = make()
    return _CACHE[k]


def _policy(spec: Mapping[str, Any]) -> Any:
    from chimein.eval.runner import PolicySpec

    return _cached("policy", spec, lambda: PolicySpec(spec["name"], dict(spec.get("kwargs") or {})).build())


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(float(x)) else None


def evaluate_candidate(job: Mapping[str, Any]) -> dict[str, Any]:
    """Evaluate one candidate: a pure function of ``job``.

    ``job``: ``key`` (its name), ``point`` (parameter values), ``seed`` (scene seed),
    ``space`` (the space config), ``policy`` (``PolicySpec.to_dict()``), ``env`` (env options
    with the reward) and ``rir_cache_dir``.

    Returns
    -------
    dict
        ``key, point, seed, valid, reasons`` (violated constraints), ``snr_db`` (per action
        cue), ``family, duration_s, annotations, attack`` (the realised perturbations) and, for
        scenes that passed the scene checks, ``policy`` and ``oracle`` (``reward``,
        ``action_log``, ``outcome``, ``invalid``), ``max_reward``, ``norm`` (the number of
        scored action cues, at least 1), ``regret_raw`` (``R_oracle - R_policy``) and ``regret``
        (``regret_raw / norm``; None for candidates rejected before the rollouts).
    """
    from chimein.scenes.render import render
    from chimein.scenes.rir import RIRCache
    from chimein.scenes.search_space import SearchSpace, check_scene

    t0 = time.perf_counter()
    space = _cached("space", job["space"], lambda: SearchSpace.from_mapping(job["space"]))
    cache = _cached("rir", job.get("rir_cache_dir"), lambda: RIRCache(job.get("rir_cache_dir")))
    out: dict[str, Any] = {"key": str(job["key"]), "point": dict(job["point"]), "seed": int(job["seed"]),
                           "valid": False, "reasons": [], "regret": None}
    try:
        spec = space.build_scene(job["point"], int(job["seed"]), scene_id=str(job["key"]))
        bad, snr = check_scene(spec, space.constraints, cache)
    except ChimeinError as e:
        out["reasons"] = [f"build: {e}"]
        out["wall_s"] = time.perf_counter() - t0
        return out
    out.update(family=spec.family, duration_s=float(spec.duration_s), snr_db={k: _finite(v) for k, v in snr.items()},
               annotations=spec.to_dict()["annotations"], attack=dict(spec.meta.get("attack", {})))
    if bad:
        out["reasons"] = bad
        out["wall_s"] = time.perf_counter() - t0
        return out
    scene = render(spec, cache=cache)
    played = _play(scene, job["policy"], job["env"])
    max_r = played["max_reward"]
    if played["oracle"]["reward"] < max_r - space.constraints.oracle_tolerance:
        out["reasons"] = [f"oracle: earns {played['oracle']['reward']:.3f} < maximum {max_r:.3f}"]
    out.update(played)  # regret per scored action cue: scenes with more cues do not weigh more
    out["valid"] = not out["reasons"]
    out["wall_s"] = time.perf_counter() - t0
    return out


# ============================================================================================
# State and candidate log
# ============================================================================================
def read_candidates(path: str | Path) -> dict[str, dict[str, Any]]:
    """Results in ``candidates.jsonl`` by key; a cut-off last line (a killed run) is dropped
    and the file rewritten without it, so appends start on a fresh line."""
    p = Path(path)
    if not p.is_file():
        return {}
    text = p.read_text(encoding="utf-8")
    lines = text.split("\n")
    out: dict[str, dict[str, Any]] = {}
    cut = False
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                print(f"warning: {p}:{i + 1}: dropping an incomplete last line (interrupted write)", file=sys.stderr)
                cut = True
                break
            raise SpecError(f"{p}:{i + 1}: not valid JSON; delete the line (it will be re-evaluated)") from None
        out[str(d["key"])] = d
    if cut:
        atomic_write_text(p, "".join(json.dumps(d, sort_keys=True) + "\n" for d in out.values()))
    return out


def _append(fd: int, result: Mapping[str, Any]) -> None:
    os.write(fd, (json.dumps(result, sort_keys=True) + "\n").encode())
    os.fsync(fd)


def _load_state(out: Path, identity: Mapping[str, Any], space: Any) -> dict[str, Any]:
    path = out / STATE
    if path.is_file():
        try:
            state = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise SpecError(f"{path}: corrupt state ({e}); delete {out} or use another out=") from None
        if state.get("identity") != json.loads(json.dumps(identity)):
            old = state.get("identity") or {}
            diff = sorted(k for k in set(old) | set(identity) if old.get(k) != json.loads(json.dumps(identity)).get(k))
            raise SpecError(f"{path}: this directory holds an attack with a different {diff or 'identity'} "
                            "(policy, space, search settings, seed or env); use a new out= directory")
        return state
    state = {"version": STATE_VERSION, "identity": json.loads(json.dumps(identity)), "generations": 0,
             "history": [], "prior": initial_distribution(space)}
    atomic_write_text(path, json.dumps(state, indent=1, sort_keys=True) + "\n")
    return state


# ============================================================================================
# The search
# ============================================================================================
def _jobs(keys_points_seeds: Iterable[tuple[str, dict[str, Any], int]], ctx: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "point": p, "seed": s, **ctx} for k, p, s in keys_points_seeds]


def _run(jobs: Sequence[Mapping[str, Any]], results: dict[str, dict[str, Any]], fd: int, workers: int,
         backend: str, bar: Any, ray_options: Mapping[str, Any] | None = None) -> None:
    from chimein.parallel import imap_unordered

    todo = [j for j in jobs if j["key"] not in results]
    if not todo:
        return
    w = max(1, min(workers, len(todo)))
    for _, res in imap_unordered(evaluate_candidate, todo, workers=w,
                                 backend=backend if backend == "ray" or w > 1 else "inline", max_pending=2 * w,
                                 ray_options=ray_options):
        results[res["key"]] = res
        _append(fd, res)
        if bar is not None:
            bar.update(1)


def generation_points(space: Any, dist: Mapping[str, Any] | None, seed: int, g: int, population: int
                      ) -> list[tuple[str, dict[str, Any], int]]:
    """``(key, point, scene seed)`` of generation ``g``'s candidates (prior when ``dist`` is None)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _SEARCH, g]))
    return [(f"g{g:03d}-{j:03d}", draw(space, dist, rng), _seed(seed, _SEARCH, g * population + j))
            for j in range(population)]


def comparison_points(space: Any, dist: Mapping[str, Any], seed: int, n_gen: int, n_random: int,
                      n_holdout: int) -> tuple[list[tuple[str, dict[str, Any], int]], list[tuple[str, dict[str, Any], int]]]:
    """The random scenes (prior) and the held-out scenes (final distribution) of the comparison;
    each is drawn from its own seeded generator, so enlarging either keeps its prefix."""
    rand = [(f"r{j:04d}", space.sample_prior(np.random.default_rng(np.random.SeedSequence([int(seed), _RANDOM, j]))),
             _seed(seed, _RANDOM, j)) for j in range(n_random)]
    hold = [(f"h{n_gen:03d}-{j:04d}", draw(space, dist, np.random.default_rng(
        np.random.SeedSequence([int(seed), _HOLDOUT, n_gen, j]))), _seed(seed, _HOLDOUT, n_gen, j)) for j in range(n_holdout)]
    return rand, hold


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
        Backend of :func:`chimein.parallel.imap_unordered` (``local``, ``inline``, ``ray``)
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
    from chimein.parallel import resolve_workers
    from chimein.scenes.search_space import SearchSpace

    if isinstance(budget, bool) or int(budget) < 1:
        raise SpecError(f"attack: field 'budget': need at least 1 candidate, got {budget!r}")
    sp = SearchSpace.from_mapping(space)
    cfg = SearchConfig.from_mapping(search)
    pspec = policy if isinstance(policy, PolicySpec) else PolicySpec(str(policy), dict(policy_kwargs or {}))
    _policy(pspec.to_dict())  # unknown names and bad arguments fail now, before any work
    w = resolve_workers(workers, backend, ray_options)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    identity = {"policy": pspec.to_dict(), "space": sp.to_dict(), "search": cfg.identity(), "seed": int(seed)}
    state = _load_state(root, identity, sp)
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
    try:
        history = state["history"]
        for g in range(n_gen):
            dist = None if g == 0 else history[g - 1]["dist"]
            jobs = _jobs(generation_points(sp, dist, seed, g, cfg.population), ctx)
            if bar is not None:
                bar.set_postfix_str(f"generation {g + 1}/{n_gen}")
                bar.update(sum(j["key"] in results for j in jobs))
            _run(jobs, results, fd, w, backend, bar, ray_options)
            if g < state["generations"]:  # already folded into the distribution
                continue
            gen = [results[j["key"]] for j in jobs]
            kept = [results[k] for k in history[g - 1]["elites"]] if g and cfg.keep_elites else []
            elites = _elites(gen + kept, cfg.n_elite)
            base = state["prior"] if g == 0 else history[g - 1]["dist"]
            new = update_distribution(sp, base, [e["point"] for e in elites], cfg)
            regrets = [float(r["regret"]) for r in gen if r["valid"]]
            history.append({"generation": g, "dist": new, "n_valid": len(regrets), "n_elite": len(elites),
                            "elites": [e["key"] for e in elites],
                            "mean_regret": float(np.mean(regrets)) if regrets else None,
                            "elite_regret": float(np.mean([e["regret"] for e in elites])) if elites else None,
                            "max_regret": max(regrets) if regrets else None})
            state["generations"] = g + 1
            atomic_write_text(root / STATE, json.dumps(state, indent=1, sort_keys=True) + "\n")
        final = state["prior"] if n_gen == 0 else history[n_gen - 1]["dist"]
        rand, hold = comparison_points(sp, final, seed, n_gen, cfg.n_random, cfg.n_holdout)
        if bar is not None:
            bar.set_postfix_str("comparison")
            bar.update(sum(k in results for k, _, _ in rand + hold))
        _run(_jobs(rand + hold, ctx), results, fd, w, backend, bar, ray_options)
    finally:
        os.close(fd)
        if bar is not None:
            bar.close()
    timing = {"wall_s": time.perf_counter() - t0, "evaluated_now": len(results) - n_before, "workers": w}

    search_keys = [k for g in range(n_gen) for k in (f"g{g:03d}-{j:03d}" for j in range(cfg.population))]
    searched = [results[k] for k in search_keys]
    found = _elites(searched, cfg.top_k)
    sets = {"found": found, "random": [results[k] for k, _, _ in rand], "holdout": [results[k] for k, _, _ in hold]}
    from chimein.eval.attack_report import finish

    return finish(root, sp, cfg, pspec, identity, state["history"][:n_gen], searched, sets, int(seed), n_gen,
                  timing, rir_cache_dir, report)


# ============================================================================================
# Re-evaluation on a saved scene set
# ============================================================================================
def _play(scene: Any, policy: Mapping[str, Any], env: Mapping[str, Any]) -> dict[str, Any]:
    """Play ``policy`` and the oracle on one rendered scene; the fields of
    :func:`evaluate_candidate` that describe the episodes."""
    from chimein.envs.scoring import RewardConfig
    from chimein.eval.runner import rollout

    played: dict[str, Any] = {}
    for role, pspec in (("policy", policy), ("oracle", {"name": "oracle", "kwargs": {}})):
        info = rollout([scene], _policy(pspec), dict(env), on_invalid="flag")[0]
        played[role] = {"reward": float(info["outcome"]["reward"]), "action_log": info["action_log"],
                        "outcome": info["outcome"], "invalid": bool(info["invalid"])}
    max_r = float(played["oracle"]["outcome"]["max_reward"])
    norm = max(1.0, max_r / RewardConfig.from_mapping(env.get("reward")).hit)
    raw = played["oracle"]["reward"] - played["policy"]["reward"]
    return {**played, "max_reward": max_r, "norm": norm, "regret_raw": raw, "regret": raw / norm}


def _replay_job(job: Mapping[str, Any]) -> dict[str, Any]:
    if "packed" in job:  # Ray: the scene's bytes travel with the job
        from chimein.eval.runner import unpack_scene

        scene = unpack_scene(job["packed"])
    else:
        from chimein.scenes.dataset import SceneDataset

        ds = _cached("dataset", job["dataset"], lambda: SceneDataset(job["dataset"]))
        scene = ds.load(int(job["index"]))
    return {"index": int(job["index"]), "key": scene.spec.id, "family": scene.spec.family,
            "duration_s": float(scene.spec.duration_s), "annotations": scene.spec.to_dict()["annotations"],
            **_play(scene, job["policy"], job["env"])}


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
    from chimein.eval.attack_report import bootstrap_mean
    from chimein.eval.metrics import aggregate
    from chimein.eval.runner import PolicySpec, pack_scene
    from chimein.parallel import imap_unordered, resolve_workers
    from chimein.scenes.dataset import SceneDataset

    cfg = SearchConfig.from_mapping(search)
    pspec = policy if isinstance(policy, PolicySpec) else PolicySpec(str(policy), dict(policy_kwargs or {}))
    _policy(pspec.to_dict())
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
    for _, r in imap_unordered(_replay_job, jobs, workers=w, backend=backend if ray or w > 1 else "inline",
                               max_pending=2 * w, ray_options=ray_options):
        rows.append(r)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    rows.sort(key=lambda r: r["index"])
    env = cfg.env_options()
    lines = [{"split": "replay", "family": r["family"], "tier": "replay", "scene_id": r["key"],
              "duration_s": r["duration_s"], "annotations": r["annotations"], "action_log": r["policy"]["action_log"],
              "outcome": r["policy"]["outcome"], "invalid": r["policy"]["invalid"],
              "env": {k: v for k, v in env.items() if k != "reward"}, "reward_cfg": env["reward"]} for r in rows]
    out: dict[str, Any] = {"policy": pspec.name, "dataset": root, "n": n, "score": {}}
    for role in ("policy", "oracle"):
        m, ci, _ = bootstrap_mean([r[role]["reward"] / r["norm"] for r in rows], cfg.resamples, seed, f"replay:{role}")
        out["score"][role] = {"value": m, "ci": ci}
    m, ci, _ = bootstrap_mean([r["regret"] for r in rows], cfg.resamples, seed, "replay:drop")
    out["drop"] = {"value": m, "ci": ci}
    out["oracle_at_max"] = sum(abs(r["oracle"]["reward"] - r["max_reward"]) <= 1e-6 for r in rows)
    out["metrics"] = aggregate(lines, resamples=cfg.resamples, seed=seed)["overall"] if lines else {}
    out["per_scene"] = [{"id": r["key"], "regret": r["regret"], "policy_reward": r["policy"]["reward"],
                         "oracle_reward": r["oracle"]["reward"]} for r in rows]
    return out


# ============================================================================================
# CLI
# ============================================================================================
def command(cfg: Any) -> int:
    """``chimein attack policy=NAME budget=N out=DIR [workers=N] [seed=S]``; with ``replay=DIR``
    the policy is re-evaluated on a saved scene set instead (``out=`` optional: ``replay.json``)."""
    from omegaconf import OmegaConf

    from chimein.parallel import ray_options_from_config

    c = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(c, dict)
    a = c["attack"]
    if c.get("replay"):
        from chimein.eval.attack_report import replay_summary

        rep = replay(c["policy"], c["replay"], policy_kwargs=c.get("policy_args") or {}, search=a["search"],
                     workers=int(c.get("workers") or 0) or None, backend=str(c.get("backend", "local")),
                     seed=int(c["seed"]), progress=bool(c.get("progress", True)),
                     ray_options=ray_options_from_config(c))
        print(replay_summary(rep))
        if c.get("out"):
            Path(c["out"]).mkdir(parents=True, exist_ok=True)
            atomic_write_text(Path(c["out"]) / "replay.json", json.dumps(rep, indent=1, sort_keys=True) + "\n")
            print(f"wrote {Path(c['out']) / 'replay.json'}", file=sys.stderr)
        return 0
    if not c.get("out"):
        raise SpecError("attack: field 'out': give the output directory, out=DIR")
    res = attack(c["policy"], c["out"], int(c["budget"]), space=a["space"], search=a["search"],
                 policy_kwargs=c.get("policy_args") or {}, seed=int(c["seed"]),
                 workers=int(c.get("workers") or 0) or None, backend=str(c.get("backend", "local")),
                 rir_cache_dir=c.get("rir_cache_dir"), progress=bool(c.get("progress", True)),
                 report=bool(c.get("report", True)), ray_options=ray_options_from_config(c))
    from chimein.eval.attack_report import summary

    print(summary(res))
    what = "report.md, results.json" if c.get("report", True) else "results.json"
    print(f"wrote {what} and the scene dataset in {c['out']}", file=sys.stderr)
    return 0
