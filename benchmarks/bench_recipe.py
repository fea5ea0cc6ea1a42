"""Benchmark: wall time of the shipped supervised recipe, phase by phase, as a user runs it.

**Question** (issue 21's budget). How long does the README's supervised recipe take on this
machine from a fresh clone, and where does the time go? Goal: at most 60 minutes on the 2-core
CI machine (the RL refinements: at most 40 each, measured by their own commands).

Each phase is the user's command in a fresh process, timed from outside, with
``CHIMEIN_CACHE_DIR`` on a new empty folder (``--cache-dir`` reuses one: a warm run):

1. *codebook*: ``chimein train codebook ... codebook.workers=2
   codebook.features.frame_norm=running_mean``;
2. *supervised*: first what ``chimein train supervised`` does before its first step, alone
   (rendering and tokenizing the training episodes with 2 processes: the command's own code),
   then the command itself (``train.val.calibrate=false``; the episodes are then cached), split
   into its optimiser steps (``train_seconds_this_session`` in the checkpoint's
   ``chimein.json``) and the rest (setup, rendering the held-out validation scenes, one
   validation pass);
3. *calibrate*: ``chimein train calibrate`` on copies of that checkpoint with
   ``train.val.workers=1`` (the biases played one after another) and ``=2`` (two processes),
   in the same run; both must choose the same logit bias (``--calibrate-workers 2``: only the
   recipe's two processes).

The shipped recipe is the default (``--episodes 4000 --steps 1800``, 72 validation scenes, 240
codebook scenes: 52 minutes cold with ``--calibrate-workers 2`` on the idle 2-core machine,
2026-12-05). ``--quick`` scales every phase down (48 episodes, 20 steps, 12 validation scenes,
16 codebook scenes: a few minutes) and the table then adds a projection to the shipped scale:
each phase's per-item cost times the shipped count. A projection from a few dozen cold scenes overstates episode preparation (caches of
rooms and speech warm up over thousands of scenes) and is no substitute for a full run.

Usage::

    .venv/bin/python benchmarks/bench_recipe.py --quick          # a few minutes
    .venv/bin/python benchmarks/bench_recipe.py --calibrate-workers 2   # the recipe (~52 min cold)
    .venv/bin/python benchmarks/bench_recipe.py --phases calibrate --checkpoint chimein-lm-sup
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: The shipped recipe's scale (chimein/configs/training/{codebook,supervised}.yaml).
SHIPPED = {"episodes": 4000, "steps": 1800, "val_per_family": 6, "codebook_scenes": 240}
#: Validation scenes per ``val_per_family`` (6 families x 2 difficulties).
VAL_SCENES_PER = 12
#: Biases the two-stage calibration plays (9 shared, then 8 more for INTERVENE).
BIASES_PLAYED = 17


#: The first thing ``chimein train supervised`` does, alone: fill the episode cache (the
#: command's own code: compose its config, set up the run, open the episodes).
PREPARE = """
import sys
from chimein.agents.lm.model import LMConfig
from chimein.cli.common import container, say
from chimein.cli.main import compose
from chimein.training.supervised import TrainConfig
from chimein.training.supervised.setup import open_episodes, setup_run
c = container(compose("train_supervised", sys.argv[1:]))
run = setup_run(c["codebook"], c["out"], LMConfig.from_mapping(c["lm"], where="lm"),
                TrainConfig.from_mapping(c["train"]), c["scenes"], say)
open_episodes(run)
"""


def chimein(*args: str, env: dict[str, str], log: Path, code: str | None = None) -> float:
    """Run ``chimein ARGS`` (this interpreter's package; ``code``: that Python code with ARGS
    instead), output to ``log``; its wall seconds."""
    cmd = [sys.executable, *(["-c", code] if code else ["-m", "chimein.cli"]), *args]
    t0 = time.perf_counter()
    with log.open("w") as f:
        rc = subprocess.run(cmd, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
    dt = time.perf_counter() - t0
    if rc != 0:
        sys.exit(f"bench_recipe: `chimein {' '.join(args)}` failed ({rc}); see {log}")
    return dt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--episodes", type=int, default=SHIPPED["episodes"])
    ap.add_argument("--steps", type=int, default=SHIPPED["steps"])
    ap.add_argument("--val-per-family", type=int, default=SHIPPED["val_per_family"])
    ap.add_argument("--codebook-scenes", type=int, default=SHIPPED["codebook_scenes"])
    ap.add_argument("--quick", action="store_true", help="48 episodes, 20 steps, 12 val scenes")
    ap.add_argument("--phases", default="codebook,supervised,calibrate")
    ap.add_argument("--checkpoint", help="calibrate this checkpoint (or shipped name) instead")
    ap.add_argument("--cache-dir", help="CHIMEIN_CACHE_DIR to use (default: a new empty one)")
    ap.add_argument("--work", help="folder for the runs (default: a temporary one, removed)")
    ap.add_argument("--calibrate-workers", default="1,2",
                    help="calibrate with each of these process counts (same bias required)")
    args = ap.parse_args(argv)
    if args.quick:
        args.episodes, args.steps, args.val_per_family, args.codebook_scenes = 48, 20, 1, 16
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if "calibrate" in phases and "supervised" not in phases and not args.checkpoint:
        ap.error("--phases calibrate without supervised needs --checkpoint")

    work = Path(args.work or tempfile.mkdtemp(prefix="chimein-recipe-"))
    work.mkdir(parents=True, exist_ok=True)
    cache = Path(args.cache_dir) if args.cache_dir else work / "cache"
    env = {**os.environ, "CHIMEIN_CACHE_DIR": str(cache)}
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python "
          f"{platform.python_version()}; cache {'given' if args.cache_dir else 'new (cold)'}; "
          f"{args.episodes} episodes, {args.steps} steps, "
          f"{args.val_per_family * VAL_SCENES_PER} validation scenes, "
          f"{args.codebook_scenes} codebook scenes", flush=True)
    val = f"train.val.n_per_family={args.val_per_family}"
    rows: list[tuple[str, float, float | None]] = []  # phase, seconds, projected seconds
    scale = {
        "cb": SHIPPED["codebook_scenes"] / args.codebook_scenes,
        "ep": SHIPPED["episodes"] / args.episodes,
        "st": SHIPPED["steps"] / args.steps,
        "val": SHIPPED["val_per_family"] / args.val_per_family,
    }
    try:
        cb = work / "cb.safetensors"
        if "codebook" in phases:
            t = chimein("train", "codebook", f"out={cb}", "codebook.workers=2",
                        "codebook.features.frame_norm=running_mean",
                        f"codebook.n_scenes={args.codebook_scenes}", env=env, log=work / "codebook.log")
            rows.append(("codebook (2 processes)", t, t * scale["cb"]))
            print(f"codebook: {t:.0f} s", flush=True)
        ckpt = args.checkpoint
        if "supervised" in phases:
            sup = [f"codebook={cb}", f"out={work / 'sup'}", f"train.steps={args.steps}",
                   f"train.data.pool={args.episodes}", "train.val.calibrate=false", val,
                   "train.progress=false"]
            t_ep = chimein(*sup, env=env, log=work / "episodes.log", code=PREPARE)
            rows.append(("supervised: training episodes (2 processes)", t_ep, t_ep * scale["ep"]))
            print(f"episodes: {t_ep:.0f} s", flush=True)
            t = chimein("train", "supervised", *sup, env=env, log=work / "supervised.log")
            meta = json.loads((work / "sup" / "final" / "chimein.json").read_text())
            steps_s = float(meta["train_seconds_this_session"])
            threads = meta["training"]["train"]["threads"]
            rows.append((f"supervised: optimiser steps ({threads} torch threads)", steps_s,
                         steps_s * scale["st"]))
            rows.append(("supervised: setup, validation scenes and pass", t - steps_s,
                         (t - steps_s) * scale["val"]))
            print(f"supervised: {t:.0f} s ({steps_s:.0f} s of steps)", flush=True)
            ckpt = str(work / "sup" / "final")
        if "calibrate" in phases:
            from chimein.agents.lm.reference import is_reference, reference_checkpoint

            src = Path(reference_checkpoint(ckpt) if is_reference(str(ckpt)) else str(ckpt))
            chosen: dict[int, list[float]] = {}
            for w in sorted({int(x) for x in args.calibrate_workers.split(",") if x.strip()}):
                d = work / f"cal-w{w}"
                shutil.rmtree(d, ignore_errors=True)
                shutil.copytree(src, d)
                t = chimein("train", "calibrate", str(d), f"train.val.workers={w}", val,
                            env=env, log=work / f"calibrate-w{w}.log")
                chosen[w] = json.loads((d / "chimein.json").read_text())["inference"]["logit_bias"]
                rows.append((f"calibrate, {w} process{'es' if w > 1 else ''}", t, t * scale["val"]))
                print(f"calibrate workers={w}: {t:.0f} s, logit_bias {chosen[w]}", flush=True)
            if len({json.dumps(b) for b in chosen.values()}) > 1:
                sys.exit(f"bench_recipe: the calibration's choice depends on its processes: {chosen}")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)

    scaled = any(v != 1 for v in scale.values())
    print("\n| phase | wall s | min |" + (" projected to the shipped recipe, min |" if scaled else ""))
    print("|---|---:|---:|" + ("---:|" if scaled else ""))
    for name, t, proj in rows:
        print(f"| {name} | {t:.0f} | {t / 60:.1f} |" + (f" {proj / 60:.1f} |" if scaled else ""))
    recipe = [r for r in rows if not r[0].startswith("calibrate, 1")]
    if {"codebook", "supervised", "calibrate"} <= set(phases) and any(
        r[0].startswith("calibrate, 2") for r in rows
    ):
        total = sum(t for _, t, _ in recipe)
        proj = sum(p for _, _, p in recipe if p is not None)
        print(f"| **recipe** (calibration with 2 processes) | {total:.0f} | {total / 60:.1f} |"
              + (f" {proj / 60:.1f} |" if scaled else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
