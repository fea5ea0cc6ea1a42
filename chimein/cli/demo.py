"""``chimein demo``: the main job on embedded defaults, on the CPU, in minutes.

1. Generates a small scene dataset: ``scenes_per_family`` scene(s) of each task family.
2. Draws every scene's spectrogram and annotated timeline to ``out/timelines/*.png``.
3. Runs the ``energy-endpoint`` baseline through ``ResponseTimingEnv`` on those scenes (a plain
   Gymnasium loop) and prints each episode's reward and per-cue outcomes.
4. Evaluates every baseline on the ``chimein-bench-v0-mini`` suite and prints the leaderboard
   (``out/eval/leaderboard.md``, one ``report.md`` per policy).
5. Trains a demo-sized timing LM with the same commands a user types (``chimein train codebook``,
   ``chimein train supervised``; overrides in ``chimein/configs/cmd/demo.yaml``: fewer scenes, steps and
   validation scenes than the README's 25-minute recipe) -> ``out/lm/sup/final``.
6. Refines it with a short TRL GRPO run (``chimein train grpo init=out/lm/sup/final``) ->
   ``out/lm/grpo/final``, evaluates both on the mini suite and prints
   ``chimein eval compare``. A demo-sized model is far weaker than the README's checkpoint: the
   point is the pipeline, which ``lm=false`` skips.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chimein.cli.common import container


def main(cfg: Any, run: Callable[[list[str]], int]) -> int:
    """Run the six stages; ``run`` executes one ``chimein`` command line (the CLI's dispatcher)."""
    from chimein.scenes.dataset import SceneDataset, generate_dataset
    from chimein.scenes.sampler import FAMILIES
    from chimein.scenes.show import plot_scene

    c = container(cfg)
    out = Path(c["out"])
    t0 = time.perf_counter()
    print(f"[1/6] scenes: {c['scenes_per_family']} per family x {len(FAMILIES)} families "
          f"(difficulty={c['scenes']['difficulty']}) -> {out / 'scenes'}")
    for k, fam in enumerate(FAMILIES):  # one seed per family, so each family gets its own rooms
        generate_dataset({**c["scenes"], "family": fam}, n=int(c["scenes_per_family"]), seed=int(c["seed"]) + k,
                         out=out / "scenes" / fam, workers=int(c["workers"]) or None, progress=False)
    print(f"      done in {time.perf_counter() - t0:.1f} s")
    print(f"[2/6] timelines -> {out / 'timelines'}")
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
    if c.get("lm", {}).get("enabled", True):
        _timing_lm(out, c["lm"], run)
    print(f"demo finished in {time.perf_counter() - t0:.1f} s; outputs in {out}/")
    return 0


def _baseline_through_env(out: Path, families: tuple[str, ...]) -> None:
    """A baseline policy in a plain Gymnasium loop over the demo scenes."""
    import gymnasium as gym

    import chimein.envs  # noqa: F401  (registers the chimein/* ids)
    from chimein.agents import make_policy
    from chimein.scenes.dataset import SceneDataset

    print("[3/6] energy-endpoint through chimein/Mixed-v0 (80 ms chunks)")
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

    print(f"[4/6] baselines on chimein-bench-v0-mini -> {out / 'eval'}")
    table, path = evaluate_many(list(POLICY_NAMES), "chimein-bench-v0-mini", out=out / "eval", workers=1)
    print(table)
    print(f"  leaderboard: {path}")


def _chimein(run: Callable[[list[str]], int], *argv: str) -> None:
    """Run one ``chimein`` command line in this process (printed first, so it can be copied)."""
    print("  $ chimein " + " ".join(argv), flush=True)
    t0 = time.perf_counter()
    rc = run(list(argv))
    if rc:
        raise SystemExit(f"demo: `chimein {' '.join(argv)}` failed with exit status {rc}")
    print(f"    ({time.perf_counter() - t0:.0f} s)", flush=True)


def _timing_lm(out: Path, c: dict[str, Any], run: Callable[[list[str]], int]) -> None:
    """Stages 5 and 6: a demo-sized supervised timing LM, then a short GRPO refinement."""
    lm = out / "lm"
    print(f"[5/6] timing LM: audio codebook + supervised checkpoint -> {lm}")
    _chimein(run, "train", "codebook", f"out={lm / 'codebook.safetensors'}", *c["codebook"])
    _chimein(run, "train", "supervised", f"codebook={lm / 'codebook.safetensors'}", f"out={lm / 'sup'}",
             *c["supervised"])
    print(f"[6/6] RL refinement: TRL GRPO from the supervised checkpoint -> {lm / 'grpo'}")
    _chimein(run, "train", "grpo", f"init={lm / 'sup' / 'final'}", f"out={lm / 'grpo'}", *c["grpo"])
    for name in ("sup", "grpo"):
        _chimein(run, "eval", f"policy={lm / name / 'final'}", "suite=chimein-bench-v0-mini",
                 f"out={lm / 'eval' / name}", "eval.progress=false")
    _chimein(run, "eval", "compare", str(lm / "eval" / "sup"), str(lm / "eval" / "grpo"))
