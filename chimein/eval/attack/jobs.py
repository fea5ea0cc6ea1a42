"""Work that runs in worker processes: evaluating a candidate, replaying a saved scene, rendering
a found scene -- pure functions of their job -- and the per-process cache of what they build
(policies, search spaces, RIR caches, datasets).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from chimein.envs.episode import EpisodeRecord
from chimein.errors import ChimeinError, SpecError
from chimein.eval.attack.state import append_candidate

__all__ = ["cached", "episode_entry", "episode_meta", "evaluate_candidate", "play_scene", "policy_instance", "render_job",
           "replay_job", "row_episode", "run_jobs"]


_CACHE: dict[str, Any] = {}


def cached(kind: str, key: Any, make: Any) -> Any:
    k = kind + json.dumps(key, sort_keys=True, default=str)
    if k not in _CACHE:
        _CACHE[k] = make()
    return _CACHE[k]


def policy_instance(spec: Mapping[str, Any]) -> Any:
    from chimein.eval.runner import PolicySpec

    return cached("policy", spec, lambda: PolicySpec(spec["name"], dict(spec.get("kwargs") or {})).build())


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
    space = cached("space", job["space"], lambda: SearchSpace.from_mapping(job["space"]))
    cache = cached("rir", job.get("rir_cache_dir"), lambda: RIRCache(job.get("rir_cache_dir")))
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
    played = play_scene(scene, job["policy"], job["env"])
    max_r = played["max_reward"]
    if played["oracle"]["reward"] < max_r - space.constraints.oracle_tolerance:
        out["reasons"] = [f"oracle: earns {played['oracle']['reward']:.3f} < maximum {max_r:.3f}"]
    out.update(played)  # regret per scored action cue: scenes with more cues do not weigh more
    out["valid"] = not out["reasons"]
    out["wall_s"] = time.perf_counter() - t0
    return out


def play_scene(scene: Any, policy: Mapping[str, Any], env: Mapping[str, Any]) -> dict[str, Any]:
    """Play ``policy`` and the oracle on one rendered scene; the fields of
    :func:`evaluate_candidate` that describe the episodes (each role's :func:`episode_entry`)."""
    from chimein.envs.rollout import rollout
    from chimein.envs.scoring import RewardConfig

    played: dict[str, Any] = {}
    for role, pspec in (("policy", policy), ("oracle", {"name": "oracle", "kwargs": {}})):
        played[role] = episode_entry(rollout([scene], policy_instance(pspec), dict(env), on_invalid="flag")[0])
    max_r = float(played["oracle"]["outcome"]["max_reward"])
    norm = max(1.0, max_r / RewardConfig.from_mapping(env.get("reward")).hit)
    raw = played["oracle"]["reward"] - played["policy"]["reward"]
    return {**played, "max_reward": max_r, "norm": norm, "regret_raw": raw, "regret": raw / norm}


#: The fields of an :class:`~chimein.envs.episode.EpisodeRecord`'s JSON that a candidate row
#: keeps per role (with the episode's ``reward``).
_ENTRY = ("action_log", "outcome", "invalid")


def episode_entry(record: EpisodeRecord) -> dict[str, Any]:
    """A candidate row's entry for one scored episode: ``reward`` and the record's
    ``action_log``, ``outcome`` and ``invalid`` (JSON: rows are ``candidates.jsonl`` lines).
    :func:`row_episode` reads it back."""
    if record.outcome is None:
        raise SpecError(f"{record.where}: a played episode has no outcome")
    d = record.to_dict()
    return {"reward": float(record.outcome.reward), **{k: d[k] for k in _ENTRY}}


def row_episode(row: Mapping[str, Any], role: str, scene_id: str, meta: Mapping[str, Any]) -> EpisodeRecord:
    """The :class:`~chimein.envs.episode.EpisodeRecord` of ``role``'s episode (``"policy"`` or
    ``"oracle"``) of a candidate or replay row, named ``scene_id``, with the row's annotations and
    ``meta`` (:func:`episode_meta`)."""
    return EpisodeRecord.from_dict({"scene_id": scene_id, "annotations": row["annotations"],
                                    **{k: row[role][k] for k in _ENTRY if k in row[role]}},
                                   f"candidate {row.get('key')!r} ({role})").with_meta(**meta)


def episode_meta(env: Mapping[str, Any], split: str, family: str, tier: str, duration_s: Any) -> dict[str, Any]:
    """The meta fields of an attack's or replay's episode: where it belongs (``split``,
    ``family``, ``tier``), the scene's duration, the env options and the reward configuration."""
    return {"split": split, "family": family, "tier": tier, "duration_s": duration_s,
            "env": {k: v for k, v in env.items() if k != "reward"}, "reward_cfg": env.get("reward") or {}}


def replay_job(job: Mapping[str, Any]) -> dict[str, Any]:
    if "packed" in job:  # Ray: the scene's bytes travel with the job
        from chimein.eval.runner import unpack_scene

        scene = unpack_scene(job["packed"])
    else:
        from chimein.scenes.dataset import SceneDataset

        ds = cached("dataset", job["dataset"], lambda: SceneDataset(job["dataset"]))
        scene = ds.load(int(job["index"]))
    return {"index": int(job["index"]), "key": scene.spec.id, "family": scene.spec.family,
            "duration_s": float(scene.spec.duration_s), "annotations": scene.spec.to_dict()["annotations"],
            **play_scene(scene, job["policy"], job["env"])}


def render_job(args: tuple[dict[str, Any], dict[str, Any], int, str, str | None]) -> tuple[dict[str, Any], np.ndarray]:
    space_d, point, seed, scene_id, rir_dir = args
    from chimein.scenes.render import render
    from chimein.scenes.rir import RIRCache
    from chimein.scenes.search_space import SearchSpace

    space = cached("space", space_d, lambda: SearchSpace.from_mapping(space_d))
    cache = cached("rir", rir_dir, lambda: RIRCache(rir_dir))
    spec = space.build_scene(point, seed, scene_id=scene_id)
    return spec.to_dict(), render(spec, cache=cache).audio


def run_jobs(jobs: Sequence[Mapping[str, Any]], results: dict[str, dict[str, Any]], fd: int, workers: int,
         backend: str, bar: Any, ray_options: Mapping[str, Any] | None = None) -> None:
    from chimein.exec import imap_unordered

    todo = [j for j in jobs if j["key"] not in results]
    if not todo:
        return
    w = max(1, min(workers, len(todo)))
    for _, res in imap_unordered(evaluate_candidate, todo, workers=w,
                                 backend=backend if backend == "ray" or w > 1 else "inline", max_pending=2 * w,
                                 ray_options=ray_options):
        results[res["key"]] = res
        append_candidate(fd, res)
        if bar is not None:
            bar.update(1)
