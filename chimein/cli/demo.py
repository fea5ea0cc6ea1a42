"""``chimein demo``: the main job on embedded defaults, on the CPU, in minutes.

1. Generates a small scene dataset: ``scenes_per_family`` scene(s) of each task family.
2. Draws every scene's spectrogram and annotated timeline to ``out/timelines/*.png``.
3. Runs the ``energy-endpoint`` baseline through ``ResponseTimingEnv`` on those scenes (a plain
   Gymnasium loop) and prints each episode's reward and per-cue outcomes.
4. Evaluates every baseline on the ``chimein-bench-v0-mini`` suite and prints the leaderboard
   (``out/eval/leaderboard.md``, one ``report.md`` per policy).
5. Plays the timing LM shipped inside the package (``chimein-lm``: no training, no download;
   :mod:`chimein.agents.lm.reference`) through the same Gymnasium loop on the demo scenes.
6. Refines the shipped supervised checkpoint with a short TRL GRPO run (``chimein train grpo
   init=chimein-lm-sup``) -> ``out/lm/grpo/final``, evaluates it on the mini suite and prints
   ``chimein eval compare`` against ``chimein-lm-sup``. A few GRPO steps on a few dozen episodes
   only show the RL pipeline; ``lm=false`` skips stages 5-6.

Every long stage shows a progress bar; the demo ends with a summary (:func:`summary`): what was
built and where, the key numbers, what they mean for a demo-sized model, and the commands of
the README's recipe.
"""

from __future__ import annotations

import sys
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
    if hasattr(sys.stdout, "reconfigure"):  # stage lines in order with the progress bars (stderr)
        sys.stdout.reconfigure(line_buffering=True)
    print(f"[1/6] scenes: {c['scenes_per_family']} per family x {len(FAMILIES)} families "
          f"(difficulty={c['scenes']['difficulty']}) -> {out / 'scenes'}")
    from tqdm import tqdm

    for k, fam in enumerate(tqdm(FAMILIES, desc="scenes", unit="family", file=sys.stderr)):
        # one seed per family, so each family gets its own rooms
        generate_dataset({**c["scenes"], "family": fam}, n=int(c["scenes_per_family"]), seed=int(c["seed"]) + k,
                         out=out / "scenes" / fam, workers=int(c["workers"]) or None, progress=False)
    print(f"      done in {time.perf_counter() - t0:.1f} s")
    print(f"[2/6] timelines -> {out / 'timelines'}")
    for fam in FAMILIES:
        ds = SceneDataset(out / "scenes" / fam)
        for i in range(len(ds)):
            scene = ds.load(i)
            spec = scene.spec
            png = plot_scene(spec, scene.audio, out / "timelines" / f"{fam}-{spec.id}.png")
            cues = ", ".join(f"{cu.expected}@{cu.window[0]:.1f}s" for cu in spec.annotations.cues) or "-"
            print(f"  {fam:<12} {spec.duration_s:6.1f} s  rt60={spec.room.rt60:.2f}  cues: {cues}  -> {png.name}")
    _through_env(out, FAMILIES, "energy-endpoint", "[3/6]")
    _leaderboard(out, int(c["workers"]) or 1)
    lm = bool(c.get("lm", {}).get("enabled", True))
    if lm:
        _through_env(out, FAMILIES, "chimein-lm", "[5/6]")
        _refine(out, c["lm"], run)
    print()
    print(summary(out, lm, time.perf_counter() - t0))
    return 0


def _through_env(out: Path, families: tuple[str, ...], name: str, stage: str) -> None:
    """Policy ``name`` in a plain Gymnasium loop over the demo scenes."""
    import gymnasium as gym

    import chimein.envs  # noqa: F401  (registers the chimein/* ids)
    from chimein.agents import make_policy
    from chimein.scenes.dataset import SceneDataset

    what = " (shipped in the package: no training)" if name.startswith("chimein-lm") else ""
    print(f"{stage} {name}{what} through chimein/Mixed-v0 (80 ms chunks)")
    policy = make_policy(name, chunk_s=0.08)
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
    from chimein.agents.registry import POLICY_NAMES, missing_extra
    from chimein.eval import evaluate_many

    print(f"[4/6] baselines, the field's detectors and the shipped timing LMs on chimein-bench-v0-mini "
          f"-> {out / 'eval'}")
    missing = {n: missing_extra(n) for n in POLICY_NAMES}
    names = [n for n, extra in missing.items() if extra is None]
    for n, extra in missing.items():
        if extra:
            print(f"  (skipping {n}: install the '{extra}' extra to include it)")
    table, _ = evaluate_many(names, "chimein-bench-v0-mini", out=out / "eval", workers=1,
                             terminal=True)
    print(table)  # its last line names the full leaderboard file


def _chimein(run: Callable[[list[str]], int], *argv: str) -> None:
    """Run one ``chimein`` command line in this process (printed first, so it can be copied)."""
    print("  $ chimein " + " ".join(argv), flush=True)
    t0 = time.perf_counter()
    rc = run(list(argv))
    if rc:
        raise SystemExit(f"demo: `chimein {' '.join(argv)}` failed with exit status {rc}")
    print(f"    ({time.perf_counter() - t0:.0f} s)", flush=True)


def _refine(out: Path, c: dict[str, Any], run: Callable[[list[str]], int]) -> None:
    """Stage 6: a short GRPO refinement of the shipped supervised checkpoint, compared with it."""
    lm = out / "lm"
    print(f"[6/6] RL refinement: TRL GRPO from the shipped chimein-lm-sup -> {lm / 'grpo'}")
    _chimein(run, "train", "grpo", "init=chimein-lm-sup", f"out={lm / 'grpo'}", *c["grpo"])
    _chimein(run, "eval", f"policy={lm / 'grpo' / 'final'}", "suite=chimein-bench-v0-mini",
             f"out={lm / 'eval' / 'grpo'}")
    print(f"  {DEMO_SIZED}", flush=True)
    _chimein(run, "eval", "compare", str(out / "eval" / "chimein-lm-sup"), str(lm / "eval" / "grpo"))


#: What a demo-sized refinement's numbers mean (printed next to them).
DEMO_SIZED = ("note: a few GRPO steps on a few dozen episodes only show that the RL pipeline runs;\n"
              "  the refined checkpoint's numbers below are not a result (the summary says more)")

#: The shipped policies' recipe, from a fresh clone (README "Shipped policies", rows 6-7).
RECIPE = (
    "chimein train codebook out=runs/codebook.safetensors codebook.features.frame_norm=running_mean",
    "chimein train supervised codebook=runs/codebook.safetensors out=runs/sup    # ~50 min",
    "chimein train grpo init=runs/sup/final out=runs/grpo train.steps=122 train.seed=2 \\",
    "    train.calibrate=false",
    "chimein train calibrate runs/grpo/final    # GRPO ~15 min, calibration ~5 min",
    "chimein eval policy=chimein-lm suite=chimein-bench-v1 out=runs/v1/chimein-lm workers=2",
    "chimein eval policy=smart-turn suite=chimein-bench-v1 out=runs/v1/smart-turn workers=2",
    "chimein eval compare runs/v1/chimein-lm runs/v1/smart-turn    # paired differences",
)


def shipped_figures() -> list[str]:
    """The shipped policies' recorded headline figures on the full suites (their cards)."""
    from chimein.agents.lm.reference import REFERENCE_NAMES, reference_card

    lines = []
    for name in REFERENCE_NAMES:
        metrics = reference_card(name).get("metrics", {})
        parts = []
        for suite in ("chimein-bench-v1", "chimein-bench-v0"):
            m = metrics.get(suite)
            if not m:
                continue
            nr = m["overall"]["normalized_reward"]["value"]
            tiers = ", ".join(f"{t} {b['normalized_reward']['value']:.2f}" for t, b in m["by_tier"].items())
            parts.append(f"{suite.replace('chimein-bench-', '')} {nr:.2f} ({tiers})")
        if parts:
            lines.append(f"  {name:<15} " + "; ".join(parts))
    return lines


def _numbers(results: Path) -> tuple[float | None, ...]:
    """normalized_reward, timeliness and intervene_f1 of an eval run (None: missing)."""
    import json

    try:
        o = json.loads((results / "results.json").read_text())["metrics"]["overall"]
    except (OSError, ValueError, KeyError):
        return (None, None, None)

    def value(k: str) -> float | None:
        v = o.get(k)
        v = v.get("value") if isinstance(v, dict) else v
        return None if v is None else float(v)

    return value("normalized_reward"), value("timeliness"), value("intervene_f1")


def summary(out: Path, lm: bool, seconds: float) -> str:
    """The demo's closing summary: what was built and where, the key numbers on the mini suite,
    what they mean for a demo-sized model, and the commands of the real recipe."""
    from chimein.agents.registry import POLICY_NAMES, missing_extra

    rule = "=" * 100
    built = [
        (out / "scenes", "a scene per task family (audio, spec, annotations)"),
        (out / "timelines", "their spectrograms and annotated timelines"),
        (out / "eval" / "leaderboard.md", "the baselines on chimein-bench-v0-mini"),
    ]
    if lm:
        built += [
            (out / "lm" / "grpo" / "final", "chimein-lm-sup after a short GRPO run"),
            (out / "lm" / "eval" / "grpo", "that checkpoint on chimein-bench-v0-mini"),
        ]
    width = max(len(str(p)) for p, _ in built) + 2
    lines = [rule, f"demo finished in {seconds / 60:.1f} min; everything is in {out}/", "", "built:"]
    for p, what in built:  # the description beside the path, or below it when it would not fit
        lines += [f"  {str(p):<{width}}{what}"] if width + len(what) <= 98 else [f"  {p}", f"      {what}"]
    rows = [(name, out / "eval" / name) for name in POLICY_NAMES if missing_extra(name) is None]
    if lm:
        rows += [("chimein-lm-sup +GRPO", out / "lm" / "eval" / "grpo")]

    def cell(v: float | None) -> str:
        return f"{'-' if v is None else f'{v:.2f}':>14}"

    lines += ["", "numbers on chimein-bench-v0-mini (normalized reward: oracle 1, always-wait 0; higher is "
              "better):", f"  {'policy':<22}{'norm. reward':>14}{'timeliness':>14}{'intervene F1':>14}"]
    lines += [f"  {name:<22}" + "".join(cell(v) for v in _numbers(d)) for name, d in rows]
    if lm:
        lines += [
            "",
            "what they mean: chimein-lm and chimein-lm-sup are the timing LMs shipped in the package",
            "(the README's recipe: ~52 min from a fresh clone on a 2-core CPU); the mini",
            "suite has a few scenes per split, so its figures swing by tenths. A few GRPO steps on a",
            "few dozen episodes only show that the RL pipeline runs: that row is not a result.",
            "Their figures on the full suites (normalized reward, per tier; README leaderboards):",
            *shipped_figures(),
            "",
            "the real recipe (README, \"The streaming timing policy\" and \"RL refinement\"):",
        ]
        lines += [f"  {cmd}" for cmd in RECIPE]
    lines.append(rule)
    return "\n".join(lines)
