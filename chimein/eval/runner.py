"""Run a policy over a suite: batched episodes, parallel shards, resumable logs.

The work is cut into *shards*: up to ``batch_size`` scenes of similar duration (the scenes of
all splits are sorted by length, so that few streams idle while the longest finishes). A shard is
played in lockstep by one :class:`~chimein.envs.vector.ResponseTimingVectorEnv` -- the env's
own observation, speaking and scoring code -- with one batched ``policy.act`` call per step;
shards run in parallel processes through :func:`chimein.parallel.imap_unordered`. Every
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

Examples
--------
>>> import tempfile
>>> from chimein.eval.suites import SuiteDef
>>> tiny = SuiteDef(name="tiny", revision=0, description="", seed=1, families=("addressed",),
...                 tiers={"clean": {"difficulty": "easy"}}, scenes={"default": 2})
>>> d = tempfile.mkdtemp()
>>> res = evaluate("oracle", tiny, out=d, cache_dir=d, workers=1, progress=False, report=False)
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chimein.errors import ChimeinError, SpecError
from chimein.eval.episodes import (
    EPISODES,
    append_episodes,
    check_identity,
    episode_key,
    read_episodes,
)

__all__ = ["PolicySpec", "Shard", "evaluate", "evaluate_many", "make_shards", "rollout", "run_shards"]


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


def _cached_policy(spec: PolicySpec) -> Any:
    """One instance per process and spec (models load once per worker)."""
    key = json.dumps(spec.to_dict(), sort_keys=True)
    if key not in _POLICIES:
        _POLICIES[key] = spec.build()
    return _POLICIES[key]


def _prepare(policy: Any, env_cfg: Any) -> None:
    """Configure ``policy`` for the env's stream format (and the oracle's speaking time)."""
    obs_modes = getattr(policy, "obs_modes", None)
    if obs_modes is not None and env_cfg.obs_mode not in obs_modes:
        raise SpecError(f"policy {getattr(policy, 'name', '?')!r} needs obs_mode in {tuple(obs_modes)}, the "
                        f"env plays {env_cfg.obs_mode!r}; set env.obs_mode={obs_modes[0]}")
    policy.configure(env_cfg.chunk_s, env_cfg.sample_rate, env_cfg.obs_mode)
    if getattr(policy, "name", "") == "oracle" and hasattr(policy, "speak_s"):
        policy.speak_s = float(env_cfg.speak_s)


# ============================================================================================
# Rollouts
# ============================================================================================
def rollout(scenes: Sequence[Any], policy: Any, env_options: Mapping[str, Any] | None = None,
            on_invalid: str = "raise") -> list[dict[str, Any]]:
    """Play every scene once, all in lockstep, with one batched policy call per step.

    Parameters
    ----------
    scenes
        Rendered scenes (``audio``, ``sample_rate``, ``spec``).
    policy
        A :class:`~chimein.agents.policy.Policy`; it is configured for the env's stream
        format and reset with the scenes' specs.
    env_options
        Options of :class:`~chimein.envs.vector.ResponseTimingVectorEnv` (``chunk_ms``,
        ``speak_s``, ``reward``, ...).
    on_invalid
        What to do when the policy returns an action outside {0, 1, 2} for a stream:
        ``"raise"`` a :class:`SpecError`, or ``"flag"`` the episode as unusable
        (``info["invalid"] = True``) and play WAIT for it from then on (PSB's rule: unusable
        output counts as wrong).

    Returns
    -------
    list of dict
        Per scene, in order: the env's final info (``outcome``, ``action_log``, ``scene_id``),
        plus ``n_steps`` and ``invalid``; plus ``decision_latencies_ms`` (one value per step
        the scene was playing) when the policy recorded latencies in its ``latencies_ms`` list
        during the rollout (see :func:`_take_latencies`).

    Examples
    --------
    >>> from chimein.envs.sources import SyntheticSource
    >>> from chimein.agents.baselines import Oracle
    >>> scenes = [SyntheticSource().load(k) for k in (1, 2)]
    >>> infos = rollout(scenes, Oracle())
    >>> [i["outcome"]["reward"] == i["outcome"]["max_reward"] for i in infos]
    [True, True]
    """
    from chimein.envs.vector import ResponseTimingVectorEnv

    if on_invalid not in ("raise", "flag"):
        raise SpecError(f"rollout: on_invalid={on_invalid!r}; use 'raise' or 'flag'")
    n = len(scenes)
    if n == 0:
        return []
    envs = ResponseTimingVectorEnv(n, list(scenes), order="sequential", prefetch=0, **dict(env_options or {}))
    try:
        obs, _ = envs.reset(seed=list(range(n)))
        _prepare(policy, envs.config)
        policy.reset(n, [s.spec for s in envs.scenes])
        done = np.zeros(n, bool)
        invalid = np.zeros(n, bool)
        out: list[dict[str, Any] | None] = [None] * n
        lat: list[list[float]] = [[] for _ in range(n)]
        recorded = False
        while not done.all():
            mark = _latency_mark(policy)
            actions, _ = policy.act(obs)
            if mark is not None:
                recorded |= _take_latencies(policy, mark, ~done, lat)
            a = np.asarray(actions)
            if a.shape != (n,):
                raise SpecError(f"policy {getattr(policy, 'name', '?')!r}: act() returned actions of shape "
                                f"{a.shape}; expected ({n},)")
            bad = ~np.isin(a, (0, 1, 2)) & ~done
            if bad.any():
                if on_invalid == "raise":
                    i = int(np.flatnonzero(bad)[0])
                    raise SpecError(f"policy {getattr(policy, 'name', '?')!r}: action {a[i].item()!r} for scene "
                                    f"{envs.scenes[i].spec.id!r} is not 0 WAIT, 1 RESPOND or 2 INTERVENE")
                invalid |= bad
            a = np.where(done | invalid | ~np.isin(a, (0, 1, 2)), 0, a).astype(np.int64)
            obs, _, _, trunc, _ = envs.step(a)
            for i in np.flatnonzero(trunc & ~done).tolist():
                fin = dict(envs.last_final[i][1])
                fin["n_steps"] = int(fin["outcome"]["n_steps"])
                out[i] = fin
                done[i] = True
        for i in range(n):
            out[i]["invalid"] = bool(invalid[i])  # type: ignore[index]
            if recorded:
                out[i]["decision_latencies_ms"] = lat[i]  # type: ignore[index]
        return out  # type: ignore[return-value]
    finally:
        envs.close()


def _latency_mark(policy: Any) -> int | None:
    """Length of the policy's ``latencies_ms`` list (None: the policy records none)."""
    v = getattr(policy, "latencies_ms", None)
    return len(v) if isinstance(v, list) else None


_WARNED: set[str] = set()


def _take_latencies(policy: Any, mark: int, live: np.ndarray, out: list[list[float]]) -> bool:
    """Attribute the latencies one ``act`` call appended after index ``mark`` to its streams.

    One value per stream (in stream order) goes to each stream that is still playing (``live``;
    finished streams are padding, their chunks are not decisions of any episode); a single value
    (a policy that times whole calls) goes to every live stream. Any other count cannot be
    attributed: those values are skipped with one warning. Returns whether values were taken.
    """
    new = policy.latencies_ms[mark:]
    n = live.shape[0]
    if not new:
        return False
    if len(new) not in (n, 1):
        name = str(getattr(policy, "name", "?"))
        if name not in _WARNED:
            _WARNED.add(name)
            print(f"warning: policy {name!r} recorded {len(new)} latencies for one act() call of {n} "
                  "streams (expected one per stream, or one per call); they are not attributed to episodes",
                  file=sys.stderr)
        return False
    for i in np.flatnonzero(live).tolist():
        out[i].append(float(new[i] if len(new) == n else new[0]))
    return True


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


def _run_shard(shard: Shard) -> list[dict[str, Any]]:
    from chimein.eval.episodes import latency_summary

    t0 = time.perf_counter()
    metas, scenes = shard.load(*shard.load_args)
    policy = _cached_policy(shard.policy)
    mark = _latency_mark(policy)
    try:
        infos = rollout(scenes, policy, shard.env, on_invalid=shard.on_invalid)
    finally:
        if mark is not None:  # the values travel in the episodes; keep the cached policy's list small
            del policy.latencies_ms[mark:]
    wall = time.perf_counter() - t0
    out = []
    for meta, scene, info in zip(metas, scenes, infos, strict=True):
        ep = {**meta, "duration_s": float(scene.spec.duration_s),
              "annotations": scene.spec.to_dict()["annotations"],
              "action_log": info["action_log"], "outcome": info["outcome"],
              "invalid": bool(info["invalid"] or meta.get("invalid", False)), "wall_s": wall / len(scenes)}
        if "decision_latencies_ms" in info:
            lat = info["decision_latencies_ms"]
            ep["decision_latency_ms"] = latency_summary(lat)
            ep["decision_latencies_ms"] = [round(float(x), 2) for x in lat]
        out.append(ep)
    return out


def pack_scene(ds: Any, i: int) -> tuple[bytes, str, str]:
    """Scene ``i`` of an open :class:`~chimein.scenes.dataset.SceneDataset` as the bytes of its
    files: ``(audio file bytes, audio file name, spec JSON text)``, read in the driver so that a
    worker on another machine does not need the dataset's disk (see :func:`unpack_scene`)."""
    from chimein.io import safe_join

    e = ds.entries[int(i)]
    audio = safe_join(ds.root, e.audio)
    return audio.read_bytes(), str(audio), safe_join(ds.root, e.spec).read_text(encoding="utf-8")


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
               on_result: Callable[[list[dict[str, Any]]], None] | None = None,
               ray_options: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Run shards (in parallel processes when ``workers > 1``); returns every episode dict.

    ``on_result`` is called in the driver with each shard's episodes as it finishes (the
    runner appends them to the episodes file there). With ``backend="ray"`` each shard is a Ray
    task (``ray_options``: address, ``num_gpus`` per task, ...) and carries its scenes' bytes,
    read here just before it is submitted (:func:`ship_shard`), so Ray workers on other machines
    need no copy of the suite.
    """
    from chimein.parallel import imap_unordered, resolve_workers

    if not shards:
        return []
    ray = backend == "ray"
    w = max(1, min(resolve_workers(workers, backend, ray_options), len(shards)))
    out: list[dict[str, Any]] = []
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
            out.extend(eps)
            if on_result is not None:
                on_result(eps)
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
    from chimein.parallel import resolve_workers

    return resolve_workers(workers, backend, ray_options)


def _run_key(suite_identity: Mapping[str, Any], policy: PolicySpec, env: Mapping[str, Any]) -> str:
    blob = json.dumps({"suite": suite_identity["fingerprint"], "policy": policy.to_dict(), "env": env},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def resolve_env(suite_env: Mapping[str, Any], suite_reward: Mapping[str, Any],
                overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The env options a suite is played with: the suite's, then ``overrides``; validated."""
    from chimein.envs.core import EnvConfig
    from chimein.envs.env import ENV_OPTIONS

    env = {**dict(suite_env), **dict(overrides or {})}
    if "reward" in (overrides or {}):
        raise SpecError("eval: the reward is part of the suite definition; it cannot be overridden "
                        "(re-score episodes under another reward with `chimein eval rescore reward.<field>=...`)")
    env["reward"] = dict(suite_reward)
    EnvConfig.from_options({k: v for k, v in env.items() if k not in ENV_OPTIONS})
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
        Backend of :func:`chimein.parallel.imap_unordered` for the shards (``local``,
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
    from chimein.eval.suites import MaterializedSuite, materialize

    if isinstance(batch_size, bool) or int(batch_size) < 1:
        raise SpecError(f"eval: field 'batch_size': must be >= 1, got {batch_size!r}")
    pspec = policy if isinstance(policy, PolicySpec) else PolicySpec(str(policy), dict(policy_kwargs or {}))
    _cached_policy(pspec)  # unknown names and bad arguments fail now, before any work
    m = suite if isinstance(suite, MaterializedSuite) else materialize(
        suite, cache_dir=cache_dir, workers=workers, progress=progress, rir_cache_dir=rir_cache_dir)
    d = m.definition
    if splits is not None:
        for s in splits:
            d.split(s)
    env_opts = resolve_env(d.env, d.reward, env)
    run_key = _run_key(m.identity, pspec, env_opts)
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    epath = outdir / EPISODES
    existing = read_episodes(epath, repair=True) if epath.exists() else []
    check_identity(existing, m.identity, run_key, epath, f"policy {pspec.name!r}")
    done = {episode_key(e) for e in existing}

    shards = make_shards(m, pspec, env_opts, int(batch_size), done, splits)
    header = {"suite": m.identity, "run": run_key, "policy": pspec.name, "policy_kwargs": pspec.to_dict()["kwargs"],
              "env": {k: v for k, v in env_opts.items() if k != "reward"}, "reward_cfg": env_opts["reward"]}
    n_todo = sum(s.size for s in shards)
    bar = None
    if progress and n_todo:
        from tqdm import tqdm

        bar = tqdm(total=n_todo + len(done), initial=len(done), desc=f"eval {pspec.name}", unit="ep", file=sys.stderr)

    def on_result(eps: list[dict[str, Any]]) -> None:
        append_episodes(epath, ({**header, **e} for e in eps))
        if bar is not None:
            bar.update(len(eps))

    t0 = time.perf_counter()
    try:
        new = run_shards(shards, workers=workers, backend=backend, on_result=on_result, ray_options=ray_options)
    finally:
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - t0
    episodes = read_episodes(epath)
    if splits is not None:
        episodes = [e for e in episodes if e["split"] in splits]
    rank = {s.name: i for i, s in enumerate(d.splits)}
    episodes.sort(key=lambda e: (rank.get(e["split"], len(rank)), e["scene_id"]))
    audio_s = sum(float(e["duration_s"]) for e in new)
    timing = {"wall_s": wall, "episodes_run": len(new), "episodes_resumed": len(done),
              "episodes_per_s": (len(new) / wall) if new and wall > 0 else None,
              "audio_s_per_s": (audio_s / wall) if new and wall > 0 else None}
    if not new and (outdir / "results.json").is_file():  # nothing played: keep the last throughput
        try:
            old = json.loads((outdir / "results.json").read_text())
        except json.JSONDecodeError:
            old = {}
        if old.get("run") == run_key and (old.get("timing") or {}).get("episodes_per_s"):
            timing = {**old["timing"], "episodes_run": 0, "episodes_resumed": len(done),
                      "throughput_from_earlier_run": True}
    results = {
        "suite": {**m.identity, "description": d.description, "n_scenes": d.n_scenes},
        "policy": pspec.name, "policy_kwargs": pspec.to_dict()["kwargs"], "run": run_key,
        "env": header["env"], "reward_cfg": env_opts["reward"], "chimein_version": __version__,
        "batch_size": int(batch_size),
        "workers": _resolved_workers(workers, backend, ray_options),
        "timing": timing,
        "metrics": aggregate(episodes, resamples=resamples, seed=seed),
    }
    latency = merged_latency(episodes)
    if latency is not None:
        results["decision_latency_ms"] = latency
    from chimein.eval.report import write_results

    write_results(results, outdir, episodes=episodes, suite=m, report=report, examples=examples)
    return results


def evaluate_many(policies: Sequence[str], suite: Any = "chimein-bench-v0-mini", out: str | os.PathLike[str] = "eval_out",
                  **kwargs: Any) -> tuple[str, Path]:
    """Evaluate several policies (``out/<policy>``) and write their leaderboard
    (``out/leaderboard.md``); returns ``(markdown table, path)``. ``kwargs`` go to
    :func:`evaluate` (``workers``, ``batch_size``, ``cache_dir``, ...).

    Examples
    --------
    >>> import tempfile
    >>> from chimein.eval.suites import SuiteDef
    >>> tiny = SuiteDef(name="tiny", revision=0, description="", seed=1, families=("addressed",),
    ...                 tiers={"clean": {"difficulty": "easy"}}, scenes={"default": 1})
    >>> d = tempfile.mkdtemp()
    >>> text, path = evaluate_many(["always-wait", "oracle"], tiny, out=d, cache_dir=d, workers=1,
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
    text, path = compare([root / p.replace("/", "_") for p in policies], out=root / "leaderboard.md")
    assert path is not None
    return text, path

