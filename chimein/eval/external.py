"""Evaluate a policy on audio that is not a suite's: PSB clips, a folder of annotated recordings.

Both come as a list of items, each an audio file with its annotations, rather than as
:class:`~chimein.scenes.spec.SceneSpec` files. The shared steps live here, so that
:func:`chimein.eval.psb.evaluate_psb` and :func:`chimein.eval.recordings.evaluate_recordings`
differ only in how they read their items:

- :func:`recorded_scene`: audio + annotations as a scene the env plays (a bare spec:
  :func:`chimein.eval.metrics.bare_spec`);
- :func:`items_identity`: the run's "suite" identity from the item list and the audio bytes, so a
  run resumes only on the very files it started on;
- :func:`evaluate_items`: the episode log (resumed), the shards still to play, the metrics over
  every logged episode of these items, ``results.json`` and the report.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from chimein.envs.episode import EpisodeRecord
from chimein.scenes.spec import Annotations

__all__ = ["evaluate_items", "items_identity", "policy_spec", "recorded_scene"]


def recorded_scene(scene_id: str, audio: np.ndarray, sample_rate: int, annotations: Annotations, *,
                   family: str, tier: str, seed: int = 0, duration_s: float | None = None) -> Any:
    """A :class:`~chimein.scenes.render.RenderedScene` of recorded audio (``(samples,)`` or
    ``(samples, channels)``) at ``sample_rate``, judged by ``annotations``; its spec is a bare one
    (no sources, a default room) of that ``family``, ``tier`` (the spec's ``difficulty``) and
    ``seed``, lasting ``duration_s`` (default: the audio's length)."""
    from chimein.eval.metrics import bare_spec
    from chimein.scenes.render import RenderedScene

    x = np.asarray(audio, dtype=np.float32)
    x = x[:, None] if x.ndim == 1 else x
    dur = x.shape[0] / sample_rate if duration_s is None else float(duration_s)
    spec = replace(bare_spec(scene_id, annotations, dur, family=family), sample_rate=int(sample_rate),
                   difficulty=tier, seed=int(seed))
    return RenderedScene(audio=np.ascontiguousarray(x), sample_rate=int(sample_rate), spec=spec)


def items_identity(name: str, definition: bytes, options: Mapping[str, Any],
                   files: Sequence[tuple[str, str | os.PathLike[str]]]) -> dict[str, Any]:
    """The identity recorded with every episode and result, in the shape of a suite's:
    ``definition_hash`` from ``definition`` (the manifest's bytes) and ``options``; ``fingerprint``
    from it and each item's ``key=<sha256 of its audio file>;``."""
    from chimein.scenes.dataset import sha256_file

    dh = hashlib.sha256(definition + json.dumps(dict(options), sort_keys=True).encode()).hexdigest()
    h = hashlib.sha256(dh.encode())
    for key, path in files:
        h.update(f"{key}={sha256_file(Path(path))};".encode())
    return {"name": name, "revision": 0, "definition_hash": dh, "fingerprint": h.hexdigest()}


def policy_spec(policy: Any, policy_kwargs: Mapping[str, Any] | None) -> Any:
    """``policy`` as a :class:`~chimein.eval.runner.PolicySpec`, built once now so that unknown
    names and bad arguments fail before any work."""
    from chimein.eval.runner import PolicySpec, cached_policy

    pspec = policy if isinstance(policy, PolicySpec) else PolicySpec(str(policy), dict(policy_kwargs or {}))
    cached_policy(pspec)
    return pspec


def evaluate_items(
    identity: Mapping[str, Any],
    keys: Sequence[tuple[str, str]],
    shards: Callable[[Sequence[int]], list[Any]],
    pspec: Any,
    env_opts: Mapping[str, Any],
    out: str | os.PathLike[str],
    *,
    description: str,
    extra: Mapping[str, Any] | None = None,
    summarize: Callable[[Sequence[EpisodeRecord]], Mapping[str, Any]] | None = None,
    desc: str = "eval",
    unit: str = "ep",
    workers: int | None = None,
    backend: str = "local",
    resamples: int = 1000,
    seed: int = 0,
    progress: bool = True,
    report: bool = True,
) -> dict[str, Any]:
    """Play the items not yet in ``out/episodes.jsonl`` and write ``out/results.json`` (and the
    report) over every logged episode of ``keys``.

    Parameters
    ----------
    identity
        :func:`items_identity`; with the policy and env it makes the run key.
    keys
        ``(split, scene_id)`` of each item, in report order.
    shards
        Builds the :class:`~chimein.eval.runner.Shard` list of the items at the given indices
        (those still to play).
    pspec, env_opts
        The policy (:func:`policy_spec`) and the resolved env options
        (:func:`chimein.eval.runner.resolve_env`).
    description, extra, summarize
        The suite description in the results, extra result fields, and a function of the episodes
        giving more (PSB accuracy).
    desc, unit
        The progress bar's label and unit.

    Raises
    ------
    SpecError
        An episode log of other items, another policy or other env options in ``out``.
    """
    from chimein._version import __version__
    from chimein.eval.episodes import (
        EPISODES,
        TIMING,
        merged_latency,
        ms_per_decision,
        read_episodes,
    )
    from chimein.eval.metrics import aggregate
    from chimein.eval.report import write_results
    from chimein.eval.runner import make_run_key, play_logged, resumed_keys

    run_key = make_run_key(identity, pspec, env_opts)
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    epath = outdir / EPISODES
    done = resumed_keys(epath, identity, run_key, pspec)
    todo = [i for i, k in enumerate(keys) if k not in done]
    header = {"suite": dict(identity), "run": run_key, "policy": pspec.name, "policy_kwargs": pspec.to_dict()["kwargs"],
              "env": {k: v for k, v in env_opts.items() if k != "reward"}, "reward_cfg": env_opts["reward"]}
    bar = dict(total=len(keys), initial=len(keys) - len(todo), desc=desc, unit=unit)
    new, wall = play_logged(shards(todo) if todo else [], epath, header, bar if progress and todo else None,
                            workers=workers, backend=backend)
    rank = {k: i for i, k in enumerate(keys)}
    episodes = sorted((e for e in read_episodes(epath) if e.key in rank), key=lambda e: rank[e.key])
    results = {
        "suite": {**identity, "description": description, "n_scenes": len(keys)},
        "policy": pspec.name, "policy_kwargs": pspec.to_dict()["kwargs"], "run": run_key,
        "env": header["env"], "reward_cfg": env_opts["reward"], "chimein_version": __version__,
        **dict(extra or {}),
        "timing": {"wall_s": wall, "episodes_run": len(new), "episodes_resumed": len(keys) - len(todo),
                   "episodes_per_s": (len(new) / wall) if new and wall > 0 else None,
                   "audio_s_per_s": (sum(e.meta["duration_s"] for e in new) / wall) if new and wall > 0 else None},
        **dict(summarize(episodes) if summarize is not None else {}),
        "metrics": aggregate(episodes, resamples=resamples, seed=seed),
    }
    latency = merged_latency(episodes)
    if latency is not None:
        results["decision_latency_ms"] = latency
    compute = ms_per_decision(outdir / TIMING, run_key)  # the compute of each decision, as a suite run's
    if compute is not None:
        results["ms_per_decision"] = compute
    write_results(results, outdir, episodes=episodes, report=report, examples=0)
    return results
