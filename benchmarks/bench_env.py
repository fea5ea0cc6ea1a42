"""Benchmark the response-timing environments: steps/s and seconds of audio per second.

Random policy (uniform over WAIT/RESPOND/INTERVENE, drawn up front), 80 ms chunks,
``obs_mode="audio"``, scenes pre-rendered in memory (30 s scenes of the synthetic task, so no
room simulation is timed): the single env, the native vector env at N=16 and N=64, and
``SyncVectorEnv``/``AsyncVectorEnv`` of the single env at the same N, all in one run so the
ratios are comparable. Then the on-the-fly case: scenes sampled and rendered per episode
(pyroomacoustics/fast image-source RIRs with a warm RIR cache, espeak-ng speech), reporting the
steady-state rate and where the time goes (scene sampling incl. speech synthesis for word
timings, dry-signal synthesis, RIRs, convolution and mixing, stepping).

Run::

    .venv/bin/python benchmarks/bench_env.py            # everything (a few minutes)
    .venv/bin/python benchmarks/bench_env.py --quick    # fewer steps, no AsyncVectorEnv N=64

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import tempfile
import time
from collections import defaultdict
from typing import Any

import numpy as np


def _scenes(n: int, seconds: float) -> list[Any]:
    from chimein.envs.sources import SyntheticSource

    src = SyntheticSource(duration_s=(seconds, seconds))
    return [src.load(k) for k in range(n)]


def bench_single(scenes: list[Any], steps: int, make: bool = False) -> float:
    import gymnasium as gym

    import chimein.envs  # noqa: F401
    from chimein.envs.env import ResponseTimingEnv

    env = gym.make("chimein/Mixed-v0", scenes=scenes) if make else ResponseTimingEnv(scenes)
    actions = np.random.default_rng(0).integers(0, 3, steps + 1000).tolist()
    env.reset(seed=0)
    for a in actions[:1000]:  # warm up: scenes validated, caches filled
        if env.step(a)[3]:
            env.reset()
    gc.collect()
    t = time.perf_counter()
    for a in actions[1000:]:
        if env.step(a)[3]:
            env.reset()
    return steps / (time.perf_counter() - t)


def bench_vector(kind: str, n: int, scenes: list[Any], vsteps: int) -> float:
    from gymnasium.vector import AsyncVectorEnv, SyncVectorEnv

    from chimein.envs.env import ResponseTimingEnv
    from chimein.envs.vector import ResponseTimingVectorEnv

    if kind == "native":
        env: Any = ResponseTimingVectorEnv(n, scenes)
    elif kind == "sync":
        env = SyncVectorEnv([lambda: ResponseTimingEnv(scenes) for _ in range(n)])
    else:
        env = AsyncVectorEnv([lambda: ResponseTimingEnv(scenes) for _ in range(n)])
    warm = max(20, vsteps // 10)
    actions = np.random.default_rng(0).integers(0, 3, (vsteps + warm, n))
    env.reset(seed=0)
    for a in actions[:warm]:
        env.step(a)
    gc.collect()
    t = time.perf_counter()
    for a in actions[warm:]:
        env.step(a)
    rate = vsteps * n / (time.perf_counter() - t)
    env.close()
    return rate


def bench_on_the_fly(episodes: int, family: str, cache_dir: str) -> dict[str, float]:
    """Single env sampling and rendering a fresh scene per episode; time per component."""
    import chimein.scenes.render as render_mod
    from chimein.envs.env import ResponseTimingEnv
    from chimein.envs.sources import SamplerSource
    from chimein.scenes.rir import RIRCache

    timers: dict[str, float] = defaultdict(float)
    src = SamplerSource({"family": family}, cache_size=0, rir_cache_dir=cache_dir)
    cache = RIRCache(cache_dir)
    # the renderer asks the cache for RIRs through lookup() (get/get_many wrap it)
    name = "lookup" if hasattr(cache, "lookup") else "get_many"
    inner = getattr(cache, name)

    def timed_rirs(*a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        out = inner(*a, **k)
        timers["rirs"] += time.perf_counter() - t
        return out

    setattr(cache, name, timed_rirs)
    src._rirs = cache

    def timed_signal(source: Any, spec: Any) -> np.ndarray:
        t = time.perf_counter()
        out = render_mod.source_signal(source, spec)
        timers["dry signals"] += time.perf_counter() - t
        return out

    def load(key: int) -> Any:
        t = time.perf_counter()
        spec = src.spec(key)
        timers["sample spec (incl. TTS word timings)"] += time.perf_counter() - t
        t = time.perf_counter()
        scene = render_mod.render(spec, cache=cache, signals=timed_signal)
        timers["render total"] += time.perf_counter() - t
        return scene

    src._load = load  # type: ignore[method-assign]
    env = ResponseTimingEnv(src)
    rng = np.random.default_rng(0)
    # one untimed episode: imports, espeak-ng and numba/FFT warm-up (every later scene has its
    # own room, so RIRs are computed, not cached)
    env.reset(seed=0)
    audio_s = 0.0
    steps = 0
    t_all = time.perf_counter()
    timers.clear()
    for _ in range(episodes):
        t = time.perf_counter()
        env.reset()
        timers["reset (load + setup)"] += time.perf_counter() - t
        t = time.perf_counter()
        done = False
        while not done:
            done = env.step(int(rng.integers(0, 3)))[3]
            steps += 1
        timers["stepping"] += time.perf_counter() - t
        audio_s += env._n * env.config.chunk_s
    wall = time.perf_counter() - t_all
    timers["convolution + mixing"] = timers["render total"] - timers["rirs"] - timers["dry signals"]
    return {"wall": wall, "steps": steps, "audio_s": audio_s, **timers}


def bench_on_the_fly_vector(n: int, episodes: int, workers: int, backend: str, cache_dir: str,
                            family: str = "mixed") -> dict[str, float]:
    """Native vector env rendering upcoming scenes in a process pool while it steps; timed from
    after the first reset until ``episodes`` episodes have ended."""
    from chimein.envs.vector import ResponseTimingVectorEnv

    env = ResponseTimingVectorEnv(n, {"family": family}, prefetch=2, prefetch_workers=workers,
                                  prefetch_backend=backend, rir_cache_dir=cache_dir, cache_size=0)
    rng = np.random.default_rng(0)
    env.reset(seed=0)  # the first scenes are rendered here, untimed
    ended = steps = 0
    audio_s = 0.0
    t = time.perf_counter()
    while ended < episodes:
        _, _, _, trunc, _ = env.step(rng.integers(0, 3, n))
        steps += n
        for i in np.flatnonzero(trunc).tolist():
            ended += 1
            audio_s += float(env.last_final[i][1]["outcome"]["n_steps"]) * env.config.chunk_s
    wall = time.perf_counter() - t
    env.close()
    return {"steps": steps, "wall": wall, "audio_s": audio_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps; skip AsyncVectorEnv at N=64")
    ap.add_argument("--episodes", type=int, default=16, help="on-the-fly episodes (default 16)")
    args = ap.parse_args()
    q = args.quick
    chunk_s = 0.08
    scenes = _scenes(8, 30.0)
    rows: list[tuple[str, float]] = []
    rows.append(("single env (`ResponseTimingEnv`)", bench_single(scenes, 50_000 if q else 200_000)))
    rows.append(("single env via `gym.make` (checker + order wrappers)", bench_single(scenes, 50_000 if q else 200_000, True)))
    for n in (16, 64):
        v = (1500 if q else 6000) if n == 16 else (500 if q else 2000)
        rows.append((f"native `ResponseTimingVectorEnv` N={n}", bench_vector("native", n, scenes, v)))
        rows.append((f"`SyncVectorEnv` N={n}", bench_vector("sync", n, scenes, v // 5)))
        if not (q and n == 64):
            rows.append((f"`AsyncVectorEnv` N={n}", bench_vector("async", n, scenes, v // 10)))
    base = rows[0][1]
    print(f"\nMachine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, numpy {np.__version__}\n")
    print("| configuration | env steps/s | audio s per wall s | vs single env |")
    print("|---|---:|---:|---:|")
    for name, r in rows:
        print(f"| {name} | {r:,.0f} | {r * chunk_s:,.0f} | {r / base:.2f}x |")
    by = dict(rows)
    for n in (16, 64):
        nat, syn = by[f"native `ResponseTimingVectorEnv` N={n}"], by[f"`SyncVectorEnv` N={n}"]
        line = f"\nN={n}: native / Sync = {nat / syn:.1f}x"
        if f"`AsyncVectorEnv` N={n}" in by:
            line += f", native / Async = {nat / by[f'`AsyncVectorEnv` N={n}']:.1f}x"
        print(line)

    with tempfile.TemporaryDirectory() as d:
        res = bench_on_the_fly(3 if q else args.episodes, "mixed", d)
        vec = None if q else bench_on_the_fly_vector(4, args.episodes, 2, "process", d)
    print(f"\nOn-the-fly scenes (family mixed, one env, fresh scene per episode, {res['steps']} steps, "
          f"{res['audio_s']:.0f} s of audio):\n")
    print(f"steady state: {res['steps'] / res['wall']:,.0f} env steps/s, "
          f"{res['audio_s'] / res['wall']:,.1f} s of audio per wall s\n")
    print("| where the time goes | seconds | share |")
    print("|---|---:|---:|")
    parts = ["sample spec (incl. TTS word timings)", "dry signals", "rirs", "convolution + mixing", "stepping"]
    for p in parts:
        print(f"| {p} | {res[p]:.2f} | {100 * res[p] / res['wall']:.0f}% |")
    other = res["wall"] - sum(res[p] for p in parts)
    print(f"| other (episode setup, scoring at reset) | {other:.2f} | {100 * other / res['wall']:.0f}% |")
    if vec is not None:
        print(f"\nNative vector env N=4, scenes rendered ahead by 2 worker processes, until {args.episodes} "
              f"episodes ended: {vec['steps'] / vec['wall']:,.0f} env steps/s, "
              f"{vec['audio_s'] / vec['wall']:,.1f} s of audio (of ended episodes) per wall s")


if __name__ == "__main__":
    main()
