"""``chimein demo``: the main job on embedded defaults, on the CPU, in minutes.

1. Generates a small scene dataset: ``scenes_per_family`` scene(s) of each task family.
2. Draws every scene's spectrogram and annotated timeline to ``out/timelines/*.png``.
3. Runs the ``energy-endpoint`` baseline through ``ResponseTimingEnv`` on those scenes (a plain
   Gymnasium loop) and prints each episode's reward and per-cue outcomes.
4. Evaluates every baseline on the ``chimein-bench-v0-mini`` suite and prints the leaderboard
   (``out/eval/leaderboard.md``, one ``report.md`` per policy).

Later stages (a baseline through the environment, the evaluation leaderboard, training) are
added here as the project grows, so ``make demo`` always shows the whole pipeline.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def main(cfg: Any) -> int:
    from omegaconf import OmegaConf

    from chimein.scenes.dataset import SceneDataset, generate_dataset
    from chimein.scenes.sampler import FAMILIES
    from chimein.scenes.show import plot_scene

    c = OmegaConf.to_container(cfg, resolve=True)
    out = Path(c["out"])
    t0 = time.perf_counter()
    print(f"[1/4] scenes: {c['scenes_per_family']} per family x {len(FAMILIES)} families "
          f"(difficulty={c['scenes']['difficulty']}) -> {out / 'scenes'}")
    for k, fam in enumerate(FAMILIES):  # one seed per family, so each family gets its own rooms
        generate_dataset({**c["scenes"], "family": fam}, n=int(c["scenes_per_family"]), seed=int(c["seed"]) + k,
                         out=out / "scenes" / fam, workers=int(c["workers"]) or None, progress=False)
    print(f"      done in {time.perf_counter() - t0:.1f} s")
    print(f"[2/4] timelines -> {out / 'timelines'}")
    rows = []
    for fam in FAMILIES:
        ds = SceneDataset(out / "scenes" / fam)
        for i in range(len(ds)):
            scene = ds.load(i)
            spec = scene.spec
            png = plot_scene(spec, scene.audio, out / "timelines" / f"{fam}-{spec.id}.png")
            cues = ", ".join(f"{cu.expected}@{cu.window[0]:.1f}s" for cu in spec.annotations.cues) or "-"
            rows.append(f"  {fam:<12} {spec.duration_s:6.1f} s  rt60={spec.room.rt60:.2f}  cues: {cues}  -> {png.name}")
    print("\n".join(rows))
    _baseline_through_env(out, FAMILIES)
    _leaderboard(out, int(c["workers"]) or 1)
    print(f"demo finished in {time.perf_counter() - t0:.1f} s; outputs in {out}/")
    return 0


def _baseline_through_env(out: Path, families: tuple[str, ...]) -> None:
    """A baseline policy in a plain Gymnasium loop over the demo scenes."""
    import gymnasium as gym

    from chimein.agents import make_policy
    from chimein.scenes.dataset import SceneDataset

    print("[3/4] energy-endpoint through chimein/Mixed-v0 (80 ms chunks)")
    policy = make_policy("energy-endpoint", chunk_s=0.08)
    for fam in families:
        ds = SceneDataset(out / "scenes" / fam)
        env = gym.make("chimein/Mixed-v0", scenes=[ds.load(i) for i in range(len(ds))], order="sequential")
        for i in range(len(ds)):
            obs, info = env.reset(seed=i)
            policy.reset(1, [ds.spec(i)])
            done = False
            while not done:
                action, _ = policy.act_one(obs)
                obs, _, terminated, truncated, info = env.step(action)
                done = terminated or truncated
            o = info["outcome"]
            cues = " ".join(f"{c['outcome']}" for c in o["cues"]) or "-"
            print(f"  {fam:<12} reward {o['reward']:+.2f} / max {o['max_reward']:.2f}   cues: {cues}   "
                  f"false alarms {len(o['false_alarms'])}  interruptions {len(o['interruptions'])}")
        env.close()


def _leaderboard(out: Path, workers: int) -> None:
    from chimein.agents import POLICY_NAMES
    from chimein.eval import evaluate_many

    print(f"[4/4] baselines on chimein-bench-v0-mini -> {out / 'eval'}")
    table, path = evaluate_many(list(POLICY_NAMES), "chimein-bench-v0-mini", out=out / "eval", workers=1)
    print(table)
    print(f"  leaderboard: {path}")
