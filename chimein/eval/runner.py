"""Run a policy over a suite: batched episodes, parallel shards, resumable logs.

The work is cut into *shards*: up to ``batch_size`` scenes of similar duration (the scenes of
all splits are sorted by length, so that few streams idle while the longest finishes). A shard is
played in lockstep by one :class:`~chimein.envs.vector.ResponseTimingVectorEnv` -- the env's
own observation, speaking and scoring code -- with one batched ``policy.act`` call per step;
shards run in parallel processes through :func:`chimein.exec.imap_unordered`. Every
finished shard's episodes are appended to ``DIR/episodes.jsonl`` (see
:mod:`chimein.eval.episodes`), so an interrupted run resumes where it stopped and a finished
episode is never recomputed.

Determinism: scenes are bit-identical, the baselines are deterministic (the random policy seeds
from the scene), and the shard layout depends only on the suite and ``batch_size``; so a run is
reproducible. (A batched neural policy may differ in the last float bits between batch
compositions, e.g. after a resume.)

Real-time decision latency: a policy with a ``latencies_ms`` list (duck-typed; e.g.
``RemotePolicy(realtime=True)``, which appends one round-trip latency per stream and ``act``
call, in stream order) has the values recorded during each step attributed to the streams that
were still playing; every episode line then carries its chunks' latencies
(:mod:`chimein.eval.episodes`) and ``results.json`` a ``decision_latency_ms`` summary pooled
over all chunks of the run (resumed episodes included) next to the simulated metrics.

Compute per decision: every ``policy.act`` call of a shard is timed (wall clock, around the
call only: not the env's rendering or scoring); the call's time divided by the number of
streams in the call is one stream's share of that batched decision, and ``results.json``'s
``ms_per_decision`` gives its mean and p99 over every decision of the run (calls weighted by
the streams still playing), with the compute ``threads`` and the ``batch`` (streams per call)
it was measured at (:func:`chimein.eval.episodes.ms_per_decision`). "On one CPU core": the
shard runs with one compute thread -- inline runs set torch to one intra-op thread, worker
processes start with ``OMP_NUM_THREADS=1`` (so torch, OpenMP and BLAS use one thread) and each
plays one shard at a time -- and ``threads`` records what torch reported. The
timings go to the side file ``decision_timing.jsonl``, never into ``episodes.jsonl``, whose
lines stay identical between runs; they vary with the machine and its load, like episodes/s.

Examples
--------
>>> import tempfile
>>> from chimein.eval.suites import tiny_suite
>>> d = tempfile.mkdtemp()
>>> res = evaluate("oracle", tiny_suite(2), out=d, cache_dir=d, workers=1, progress=False, report=False)
>>> res["metrics"]["overall"]["respond_recall"]["value"]
1.0
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from chimein.envs.episode import EpisodeRecord
from chimein.envs.rollout import latency_mark, rollout
from chimein.errors import ChimeinError, SpecError
from chimein.eval.episodes import (
    EPISODES,
    TIMING,
    append_episodes,
    append_timing,
    check_identity,
    ms_per_decision,
    read_episodes,
)

__all__ = ["PolicySpec", "Shard", "evaluate", "evaluate_many", "forget_policy", "make_shards", "rollout", "run_shards"]


# ============================================================================================
# Policies
# ============================================================================================
@dataclass(frozen=True)
class PolicySpec:
    """A policy by name (or checkpoint path / URL) and constructor arguments: picklable, so
    worker processes build their own copy."""

    name: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kwargs": json.loads(json.dumps(dict(self.kwargs), sort_keys=True, default=str))}

    def build(self) -> Any:
        from chimein.agents.registry import make_policy

        return make_policy(self.name, **dict(self.kwargs))


_POLICIES: dict[str, Any] = {}


def cached_policy(spec: PolicySpec) -> Any:
    """One instance per process and spec (models load once per worker)."""
    key = json.dumps(spec.to_dict(), sort_keys=True)
    if key not in _POLICIES:
        _POLICIES[key] = spec.build()
    return _POLICIES[key]


def forget_policy(spec: PolicySpec) -> None:
    """Drop this process's cached instance of ``spec`` (if any): a caller that evaluates many
    specs once each (a checkpoint per validation step) frees their models this way."""
    _POLICIES.pop(json.dumps(spec.to_dict(), sort_keys=True), None)


# ============================================================================================
# Shards
# ============================================================================================
@dataclass(frozen=True)
class Shard:
    """Scenes played together: ``load(*load_args)`` returns ``(metas, scenes)`` in a worker,
    ``metas`` being one dict of episode fields (split, family, tier, ...) per scene."""

    load: Callable[..., tuple[list[dict[str, Any]], list[Any]]]
    load_args: tuple[Any, ...]
    policy: PolicySpec
    env: Mapping[str, Any]
    on_invalid: str = "raise"
    size: int = 1


def load_dataset_scenes(items: Sequence[tuple[str, int, str, str, str]]
                        ) -> tuple[list[dict[str, Any]], list[Any]]:
    """Shard loader: ``items`` are ``(dataset folder, scene index, split, family, tier)``."""
    from chimein.scenes.dataset import SceneDataset

    opened: dict[str, Any] = {}
    metas, scenes = [], []
    for root, i, split, family, tier in items:
        ds = opened.get(root)
        if ds is None:
            ds = opened[root] = SceneDataset(root)
        s = ds.load(int(i))
        scenes.append(s)
        metas.append({"split": split, "family": family, "tier": tier, "scene_id": s.spec.id,
                      "scene_seed": int(s.spec.seed), "spec": f"{split}/{ds.entries[int(i)].spec}"})
    return metas, scenes


#: Meta key under which :func:`_run_shard` hands its shard's act timings to :func:`run_shards`
#: (on the first record; taken off there, never written: keys starting with ``_`` are not read).
ACT_TIMING = "_act_timing"


class _TimedPolicy:
    """A policy whose ``act`` calls are timed (wall clock, ``time.perf_counter``); everything
    else -- attributes read or set, ``configure``, ``reset`` -- goes to the wrapped policy."""

    def __init__(self, policy: Any) -> None:
        object.__setattr__(self, "_policy", policy)
        object.__setattr__(self, "act_s", [])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._policy, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._policy, name, value)

    def act(self, obs: Any) -> Any:
        t0 = time.perf_counter()
        out = self._policy.act(obs)
        self.act_s.append(time.perf_counter() - t0)
        return out


def _compute_threads() -> int | None:
    """The compute threads of this process: torch's intra-op threads when torch is loaded, else
    ``OMP_NUM_THREADS``; None when neither says."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return int(torch.get_num_threads())
    v = os.environ.get("OMP_NUM_THREADS", "")
    return int(v) if v.isdigit() else None


def _act_timing(act_s: Sequence[float], played: Sequence[EpisodeRecord]) -> dict[str, Any]:
    """A shard's timing line: per act call, its ms divided by the streams in the call, and how
    many streams were still live (call ``k`` is a decision of every episode longer than ``k``
    steps)."""
    n = max(1, len(played))
    steps = np.sort(np.array([r.n_steps for r in played], int))
    live = len(steps) - np.searchsorted(steps, np.arange(len(act_s)), side="right")
    return {"batch": n, "threads": _compute_threads(), "ms": [round(1000.0 * t / n, 4) for t in act_s],
            "live": live.astype(int).tolist()}


def _run_shard(shard: Shard) -> list[EpisodeRecord]:
    """Play one shard; its episodes as records carrying the loader's metas (split, family,
    tier, scene seed, spec path), the scene's annotations and duration, and the wall time; the
    first record also carries the shard's act timings under :data:`ACT_TIMING`."""
    from chimein.eval.episodes import latency_summary

    t0 = time.perf_counter()
    metas, scenes = shard.load(*shard.load_args)
    policy = cached_policy(shard.policy)
    mark = latency_mark(policy)
    timed = _TimedPolicy(policy)
    try:
        played = rollout(scenes, timed, shard.env, on_invalid=shard.on_invalid)
    finally:
        if mark is not None:  # the values travel in the episodes; keep the cached policy's list small
            del policy.latencies_ms[mark:]
    wall = time.perf_counter() - t0
    out = []
    for meta, scene, rec in zip(metas, scenes, played, strict=True):
        extra = {k: v for k, v in meta.items() if k not in ("scene_id", "invalid")}
        extra.update(duration_s=float(scene.spec.duration_s), wall_s=wall / len(scenes))
        lat = rec.decision_latencies_ms
        if lat is not None:
            extra["decision_latency_ms"] = latency_summary(lat)
            lat = tuple(round(float(x), 2) for x in lat)
        out.append(replace(rec, annotations=scene.spec.annotations, decision_latencies_ms=lat,
                           invalid=bool(rec.invalid or meta.get("invalid", False))).with_meta(**extra))
    if out:
        out[0] = out[0].with_meta(**{ACT_TIMING: _act_timing(timed.act_s, played)})
    return out


def _take_timing(eps: list[EpisodeRecord]) -> dict[str, Any] | None:
    """Remove the :data:`ACT_TIMING` entry from a shard's records (in place); return it."""
    for i, e in enumerate(eps):
        if ACT_TIMING in e.meta:
            eps[i] = replace(e, meta={k: v for k, v in e.meta.items() if k != ACT_TIMING})
            return dict(e.meta[ACT_TIMING])
    return None


def pack_scene(ds: Any, i: int) -> tuple[bytes, str, str]:
    """Scene ``i`` of an open :class:`~chimein.scenes.dataset.SceneDataset` as the bytes of its
    files: ``(audio file bytes, audio file name, spec JSON text)``, read in the driver so that a
    worker on another machine does not need the dataset's disk (see :func:`unpack_scene`)."""
    from chimein.io import safe_join

    data, audio = ds.audio_bytes(int(i))  # checked against the manifest's checksum
    return data, str(audio), safe_join(ds.root, ds.entries[int(i)].spec).read_text(encoding="utf-8")


def unpack_scene(packed: tuple[bytes, str, str]) -> Any:
    """A :class:`~chimein.scenes.render.RenderedScene` from :func:`pack_scene`'s bytes (the same
    float32 samples as ``SceneDataset.load``)."""
    import io

    import soundfile as sf

    from chimein.scenes.render import RenderedScene
    from chimein.scenes.spec import SceneSpec

    data, where, spec_text = packed
    try:
        spec = SceneSpec.from_dict(json.loads(spec_text), where=where)
        audio, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except ChimeinError:
        raise
    except Exception as ex:
        raise SpecError(f"{where}: cannot read scene audio or spec ({ex})") from None
    if sr != spec.sample_rate or audio.shape[1] != spec.mics.n:
        raise SpecError(f"{where}: audio is {sr} Hz x {audio.shape[1]} ch but the spec says "
                        f"{spec.sample_rate} Hz x {spec.mics.n} ch")
    return RenderedScene(audio=np.ascontiguousarray(audio), sample_rate=int(sr), spec=spec)


def load_packed_scenes(items: list[tuple[str, str, str, str]], packed: list[tuple[bytes, str, str]]
                       ) -> tuple[list[dict[str, Any]], list[Any]]:
    """Shard loader of shards shipped to Ray workers (see :func:`ship_shard`): ``items`` are
    ``(split, family, tier, spec path in the dataset)``; the same metas as
    :func:`load_dataset_scenes`."""
    metas, scenes = [], []
    for (split, family, tier, spec_rel), p in zip(items, packed, strict=True):
        s = unpack_scene(p)
        scenes.append(s)
        metas.append({"split": split, "family": family, "tier": tier, "scene_id": s.spec.id,
                      "scene_seed": int(s.spec.seed), "spec": f"{split}/{spec_rel}"})
    return metas, scenes


def ship_shard(shard: Shard, opened: dict[str, Any] | None = None) -> Shard:
    """A shard that carries its scenes' bytes instead of dataset paths (read here, in the
    driver), for workers that do not share the driver's disk; other loaders pass unchanged.
    ``opened`` caches the datasets opened by earlier calls (each is validated once)."""
    if shard.load is not load_dataset_scenes:
        return shard
    from chimein.scenes.dataset import SceneDataset

    opened = {} if opened is None else opened
    items, packed = [], []
    for root, i, split, family, tier in shard.load_args[0]:
        ds = opened.get(root)
        if ds is None:
            ds = opened[root] = SceneDataset(root)
        items.append((split, family, tier, ds.entries[int(i)].spec))
        packed.append(pack_scene(ds, int(i)))
    return Shard(load_packed_scenes, (items, packed), shard.policy, shard.env, shard.on_invalid, shard.size)


def run_shards(shards: Sequence[Shard], workers: int | None = 1, backend: str = "local",
               on_result: Callable[[list[EpisodeRecord]], None] | None = None,
               ray_options: Mapping[str, Any] | None = None,
               on_timing: Callable[[dict[str, Any]], None] | None = None) -> list[EpisodeRecord]:
    """Run shards (in parallel processes when ``workers > 1``); returns every episode record.

    ``on_result`` is called in the driver with each shard's episodes as it finishes (the
    runner appends them to the episodes file there), then ``on_timing`` with the shard's act
    timings (``{"batch", "threads", "ms", "live"}``, see
    :func:`chimein.eval.episodes.ms_per_decision`; they are never part of the records). With ``backend="ray"`` each shard is a Ray
    task (``ray_options``: address, ``num_gpus`` per task, ...) and carries its scenes' bytes,
    read here just before it is submitted (:func:`ship_shard`), so Ray workers on other machines
    need no copy of the suite.
    """
    from chimein.exec import imap_unordered, resolve_workers

    if not shards:
        return []
    ray = backend == "ray"
    w = max(1, min(resolve_workers(workers, backend, ray_options), len(shards)))
    out: list[EpisodeRecord] = []
    # one intra-op thread when running inline (worker processes get OMP_NUM_THREADS=1): torch's
    # OpenMP pool spins badly when its threads compete for busy cores (6x slower measured with
    # the silero baseline on a loaded 2-core machine); parallelism comes from processes
    torch = sys.modules.get("torch") if not ray and (w == 1 or backend == "inline") else None
    prev = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(1)
    try:
        opened: dict[str, Any] = {}
        items = (ship_shard(s, opened) for s in shards) if ray else shards
        for _, eps in imap_unordered(_run_shard, items, workers=w,
                                     backend=backend if ray or w > 1 else "inline", max_pending=2 * w,
                                     ray_options=ray_options):
            timing = _take_timing(eps)
            out.extend(eps)
            if on_result is not None:
                on_result(eps)
            if on_timing is not None and timing is not None:
                on_timing(timing)
    finally:
        if torch is not None and prev is not None:
            torch.set_num_threads(prev)
    return out


def make_shards(m: Any, policy: PolicySpec, env: Mapping[str, Any], batch_size: int,
                done: Collection[tuple[str, str]] = (), splits: Sequence[str] | None = None,
                per_split: int | None = None) -> list[Shard]:
    """Shards of up to ``batch_size`` scenes of a materialised suite, skipping ``done``
    ``(split, scene_id)`` pairs. Scenes of all splits are sorted by duration before they are
    cut, so a shard's streams end at nearly the same step; ``per_split`` keeps only the first
    scenes of each split (benchmarks)."""
    items: list[tuple[float, int, int, tuple[str, int, str, str, str]]] = []
    for rank, sp in enumerate(m.definition.splits):
        if splits is not None and sp.name not in splits:
            continue
        ds = m.dataset(sp.name)
        for i, e in enumerate(ds.entries[: per_split or None]):
            if (sp.name, e.id) not in done:
                items.append((float(e.duration_s), rank, i, (str(m.split_dir(sp.name)), i, sp.name, sp.family, sp.tier)))
    items.sort(key=lambda x: x[:3])
    chunks = [items[j: j + batch_size] for j in range(0, len(items), batch_size)]
    chunks.sort(key=lambda c: -max(x[0] for x in c) * len(c))  # longest work first: balanced workers
    return [Shard(load_dataset_scenes, ([x[3] for x in c],), policy, env, size=len(c)) for c in chunks]


# ============================================================================================
# Evaluation
# ============================================================================================
def _resolved_workers(workers: int | None, backend: str = "local",
                      ray_options: Mapping[str, Any] | None = None) -> int:
    from chimein.exec import resolve_workers

    return resolve_workers(workers, backend, ray_options)


def make_run_key(suite_identity: Mapping[str, Any], policy: PolicySpec, env: Mapping[str, Any]) -> str:
    # the audio fingerprint (the suite fingerprint of runs written before the spec/audio split):
    # a run resumes only on the very audio it started on
    from chimein.eval.suites import audio_fingerprint_of

    blob = json.dumps({"suite": audio_fingerprint_of(suite_identity), "policy": policy.to_dict(), "env": env},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def resolve_env(suite_env: Mapping[str, Any], suite_reward: Mapping[str, Any],
                overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The env options a suite is played with: the suite's, then ``overrides``; validated."""
    from chimein.envs.core import EnvConfig
    from chimein.envs.env import SOURCE_OPTIONS

    env = {**dict(suite_env), **dict(overrides or {})}
    if "reward" in (overrides or {}):
        raise SpecError("eval: the reward is part of the suite definition; it cannot be overridden "
                        "(re-score episodes under another reward with `chimein eval rescore reward.<field>=...`)")
    env["reward"] = dict(suite_reward)
    EnvConfig.from_options({k: v for k, v in env.items() if k not in SOURCE_OPTIONS})
    return json.loads(json.dumps(env, sort_keys=True))


def evaluate(
    policy: str | PolicySpec,
    suite: Any = "chimein-bench-v0",
    out: str | os.PathLike[str] = "eval_out",
    *,
    policy_kwargs: Mapping[str, Any] | None = None,
    workers: int | None = None,
    batch_size: int = 16,
    env: Mapping[str, Any] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    rir_cache_dir: str | None = None,
    resamples: int = 1000,
    seed: int = 0,
    progress: bool = True,
    report: bool = True,
    examples: int = 3,
    backend: str = "local",
    splits: Sequence[str] | None = None,
    ray_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate a policy on a suite; write ``out/episodes.jsonl``, ``results.json``, ``report.md``.

    Parameters
    ----------
    policy
        A registry name, checkpoint path or :class:`PolicySpec`.
    suite
        A suite name, suite file, :class:`~chimein.eval.suites.SuiteDef` or
        :class:`~chimein.eval.suites.MaterializedSuite`.
    out
        Output folder; episodes already in ``out/episodes.jsonl`` (same suite and run) are kept
        and only the missing ones are played.
    policy_kwargs
        Constructor arguments of the policy (``rate=0.05``).
    workers
        Processes for shards (default: all cores); 1 runs inline.
    batch_size
        Streams per vector env (1: unbatched).
    env
        Env option overrides (``chunk_ms``, ``speak_s``, ``echo``, ...); recorded in results.
    cache_dir
        Root of the suite cache (see :func:`~chimein.eval.suites.suite_cache_dir`).
    resamples, seed
        Bootstrap resamples and seed of the confidence intervals.
    report
        Also write ``report.md`` and its plots.
    examples
        Example timelines drawn in the report.
    splits
        Only these splits (default: all).
    backend, ray_options
        Backend of :func:`chimein.exec.imap_unordered` for the shards (``local``,
        ``inline`` or ``ray``) and, for Ray, where to run and what each task reserves
        (``{"address": "auto", "num_gpus": 0.25}``); the suite is materialised here with the
        local backend.

    Returns
    -------
    dict
        The content of ``results.json``; with ``decision_latency_ms`` (count, mean, p50/p90/p99/
        max in ms over every chunk of every episode, and ``episodes``) when the policy recorded
        real decision latencies (``policy_kwargs={"realtime": True}`` of a ``remote://`` policy).

    Raises
    ------
    SpecError
        Unknown policy or suite, or an episodes file of another suite version or run.
    """
    from chimein._version import __version__
    from chimein.eval.episodes import merged_latency
    from chimein.eval.metrics import aggregate
    from chimein.eval.report import write_results

    # ---- resolve the policy, suite and env; open the episode log (resume)
    pspec, m, env_opts = _resolve(policy, suite, policy_kwargs, batch_size, env, splits,
                                  cache_dir=cache_dir, workers=workers, progress=progress,
                                  rir_cache_dir=rir_cache_dir)
    d = m.definition
    run_key = make_run_key(m.identity, pspec, env_opts)
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    epath = outdir / EPISODES
    done = resumed_keys(epath, m.identity, run_key, pspec)
    # ---- plan the shards still to play and play them, appending to the log
    shards = make_shards(m, pspec, env_opts, int(batch_size), done, splits)
    header = {"suite": m.identity, "run": run_key, "policy": pspec.name, "policy_kwargs": pspec.to_dict()["kwargs"],
              "env": {k: v for k, v in env_opts.items() if k != "reward"}, "reward_cfg": env_opts["reward"]}
    n_todo = sum(s.size for s in shards)
    bar = dict(total=n_todo + len(done), initial=len(done), desc=f"eval {pspec.name}", unit="ep")
    new, wall = play_logged(shards, epath, header, bar if progress and n_todo else None,
                            workers=workers, backend=backend, ray_options=ray_options)
    # ---- aggregate every logged episode and report
    episodes = _logged_episodes(epath, d, splits)
    results = {
        "suite": {**m.identity, "description": d.description, "n_scenes": d.n_scenes},
        "policy": pspec.name, "policy_kwargs": pspec.to_dict()["kwargs"], "run": run_key,
        "env": header["env"], "reward_cfg": env_opts["reward"], "chimein_version": __version__,
        "batch_size": int(batch_size),
        "workers": _resolved_workers(workers, backend, ray_options),
        "timing": _timing(outdir, run_key, new, len(done), wall),
        "metrics": aggregate(episodes, resamples=resamples, seed=seed),
    }
    latency = merged_latency(episodes)
    if latency is not None:
        results["decision_latency_ms"] = latency
    compute = ms_per_decision(outdir / TIMING, run_key)
    if compute is not None:
        results["ms_per_decision"] = compute
    write_results(results, outdir, episodes=episodes, suite=m, report=report, examples=examples)
    return results


def _resolve(policy: str | PolicySpec, suite: Any, policy_kwargs: Mapping[str, Any] | None, batch_size: int,
             env: Mapping[str, Any] | None, splits: Sequence[str] | None, **materialize_kw: Any
             ) -> tuple[PolicySpec, Any, dict[str, Any]]:
    """The policy spec (built once now, so that unknown names and bad arguments fail before any
    work), the materialised suite (``materialize_kw``: cache_dir, workers, progress,
    rir_cache_dir) and the env options of :func:`evaluate`; checks ``batch_size`` and
    ``splits``."""
    from chimein.eval.suites import MaterializedSuite, materialize

    if isinstance(batch_size, bool) or int(batch_size) < 1:
        raise SpecError(f"eval: field 'batch_size': must be >= 1, got {batch_size!r}")
    pspec = policy if isinstance(policy, PolicySpec) else PolicySpec(str(policy), dict(policy_kwargs or {}))
    cached_policy(pspec)  # unknown names and bad arguments fail now, before any work
    m = suite if isinstance(suite, MaterializedSuite) else materialize(suite, **materialize_kw)
    d = m.definition
    if splits is not None:
        for s in splits:
            d.split(s)
    return pspec, m, resolve_env(d.env, d.reward, env)


def resumed_keys(epath: Path, identity: Mapping[str, Any], run_key: str, pspec: PolicySpec
                 ) -> set[tuple[str, str]]:
    """The ``(split, scene_id)`` keys already in the episode log (repaired after a cut-off
    write); the log must belong to the same suite version and run."""
    existing = read_episodes(epath, repair=True) if epath.exists() else []
    check_identity(existing, identity, run_key, epath, f"policy {pspec.name!r}")
    return {e.key for e in existing}


def play_logged(shards: Sequence[Shard], epath: Path, header: Mapping[str, Any],
                progress: Mapping[str, Any] | None, **run_kw: Any) -> tuple[list[EpisodeRecord], float]:
    """Run ``shards`` (``run_kw``: workers, backend, ray_options of :func:`run_shards`), appending
    each shard's episodes with ``header`` to the episode log ``epath`` as it finishes and its act
    timings to the side file :data:`~chimein.eval.episodes.TIMING` beside it (a fresh log starts
    a fresh side file), with a progress bar (``progress``: its tqdm arguments; None: none);
    returns the new episodes and the wall time."""
    tpath = epath.with_name(TIMING)
    if not epath.exists() and tpath.exists():  # timings of episodes no longer logged
        tpath.unlink()
    bar = None
    if progress is not None:
        from tqdm import tqdm

        bar = tqdm(**progress, file=sys.stderr)

    def on_result(eps: list[EpisodeRecord]) -> None:
        append_episodes(epath, (e.with_meta(**header) for e in eps))
        if bar is not None:
            bar.update(len(eps))

    def on_timing(timing: dict[str, Any]) -> None:
        append_timing(tpath, str(header["run"]), timing)

    t0 = time.perf_counter()
    try:
        new = run_shards(shards, on_result=on_result, on_timing=on_timing, **run_kw)
    finally:
        if bar is not None:
            bar.close()
    return new, time.perf_counter() - t0


def _logged_episodes(epath: Path, d: Any, splits: Sequence[str] | None) -> list[EpisodeRecord]:
    """Every episode of the log (only ``splits`` when given), in the suite's split order, then by
    scene id."""
    episodes = read_episodes(epath)
    if splits is not None:
        episodes = [e for e in episodes if e.split in splits]
    rank = {s.name: i for i, s in enumerate(d.splits)}
    episodes.sort(key=lambda e: (rank.get(e.split, len(rank)), e.scene_id))
    return episodes


def _timing(outdir: Path, run_key: str, new: Sequence[EpisodeRecord], n_done: int, wall: float) -> dict[str, Any]:
    """This invocation's throughput, or -- when it only resumed finished work -- the last run's."""
    audio_s = sum(float(e.meta["duration_s"]) for e in new)
    timing = {"wall_s": wall, "episodes_run": len(new), "episodes_resumed": n_done,
              "episodes_per_s": (len(new) / wall) if new and wall > 0 else None,
              "audio_s_per_s": (audio_s / wall) if new and wall > 0 else None}
    if not new and (outdir / "results.json").is_file():  # nothing played: keep the last throughput
        try:
            old = json.loads((outdir / "results.json").read_text())
        except json.JSONDecodeError:
            old = {}
        if old.get("run") == run_key and (old.get("timing") or {}).get("episodes_per_s"):
            timing = {**old["timing"], "episodes_run": 0, "episodes_resumed": n_done,
                      "throughput_from_earlier_run": True}
    return timing


def evaluate_many(policies: Sequence[str], suite: Any = "chimein-bench-v0-mini", out: str | os.PathLike[str] = "eval_out",
                  terminal: bool = False, **kwargs: Any) -> tuple[str, Path]:
    """Evaluate several policies (``out/<policy>``) and write their leaderboard
    (``out/leaderboard.md``); returns ``(markdown table, path)`` (with ``terminal``: the compact
    text of :func:`chimein.eval.report.compare` instead). ``kwargs`` go to
    :func:`evaluate` (``workers``, ``batch_size``, ``cache_dir``, ...).

    Examples
    --------
    >>> import tempfile
    >>> from chimein.eval.suites import tiny_suite
    >>> d = tempfile.mkdtemp()
    >>> text, path = evaluate_many(["always-wait", "oracle"], tiny_suite(1), out=d, cache_dir=d, workers=1,
    ...                            progress=False, report=False)
    >>> [row.split(" | ")[1] for row in text.splitlines() if row.startswith("| 1 ")]
    ['oracle']
    """
    from chimein.eval.report import compare
    from chimein.eval.suites import MaterializedSuite, materialize

    root = Path(out)
    if not isinstance(suite, MaterializedSuite):
        suite = materialize(suite, cache_dir=kwargs.get("cache_dir"), workers=kwargs.get("workers"),
                            progress=kwargs.get("progress", True), rir_cache_dir=kwargs.get("rir_cache_dir"))
    for p in policies:
        evaluate(p, suite, out=root / p.replace("/", "_"), **kwargs)
    text, path = compare([root / p.replace("/", "_") for p in policies], out=root / "leaderboard.md", terminal=terminal)
    assert path is not None
    return text, path

