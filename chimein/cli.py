"""The ``chimein`` command: ``chimein <group> <command> [positional] [key=value ...]``.

Each command has a Hydra primary config in ``configs/cmd/`` that pulls the package config
groups it needs (``configs/scenes``, ``configs/envs``, ...). Arguments of the form
``key=value`` (and ``+key=value``, ``~key``) are Hydra overrides; a command may also take
positional arguments (e.g. the spec path of ``scenes show``). ``--cfg`` prints the composed
config and exits. This module only composes configs and dispatches: the work lives in the
packages (``chimein/<package>/commands.py``).

Examples::

    chimein scenes generate n=200 seed=3 out=data/train scenes=hard
    chimein scenes show data/train/specs/scene-000000.json out=scene.png
    chimein demo
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chimein.errors import ChimeinError


@dataclass(frozen=True)
class Command:
    words: tuple[str, ...]
    config: str  # name under configs/cmd/
    target: str  # "module:function", called with the composed DictConfig
    positional: tuple[str, ...] = ()  # config keys filled by positional arguments, in order
    help: str = ""


#: positional slots of the commands that take a list of folders (``eval compare DIR1 DIR2 ...``);
#: :func:`positional_runs` reads them back in order
RUNS = tuple(f"+runs.r{i:03d}" for i in range(256))


def positional_runs(c: Mapping[str, Any]) -> list[str]:
    """The folders given as positional arguments (``runs`` filled through :data:`RUNS`; a
    comma-separated string or a list also work, e.g. ``runs=[a,b]`` from Python)."""
    runs = c.get("runs") or {}
    if isinstance(runs, Mapping):
        return [str(runs[k]) for k in sorted(runs)]
    if isinstance(runs, str):
        return [r for r in runs.split(",") if r]
    return [str(r) for r in runs]


COMMANDS: tuple[Command, ...] = (
    Command(("scenes", "generate"), "scenes_generate", "chimein.scenes.commands:generate",
            help="generate a scene dataset: n=200 seed=3 out=DIR [scenes=easy|default|hard] [scenes.family=...]"),
    Command(("scenes", "show"), "scenes_show", "chimein.scenes.commands:show", positional=("spec",),
            help="draw a scene's spectrogram and annotated timeline: SPEC.json out=PNG"),
    Command(("demo",), "demo", "chimein.demo:main",
            help="the main job on embedded defaults, on the CPU, in minutes"),
    Command(("eval",), "eval", "chimein.eval.commands:run",
            help="evaluate a policy on a suite: policy=NAME suite=chimein-bench-v0 out=DIR [workers=N]"),
    Command(("eval", "materialize"), "eval_materialize", "chimein.eval.commands:materialize",
            help="generate (once) or verify a suite: suite=NAME [verify=true]"),
    Command(("eval", "compare"), "eval_compare", "chimein.eval.commands:compare",
            positional=RUNS,
            help="leaderboard of eval runs: DIR1 DIR2 ... [out=leaderboard.md]"),
    Command(("eval", "sweep"), "eval_sweep", "chimein.eval.commands:sweep",
            help="an operating curve: policy=NAME param=logit_bias values=[-1,-0.5,0,0.5] out=DIR"),
    Command(("eval", "tradeoff"), "eval_tradeoff", "chimein.eval.commands:tradeoff",
            positional=RUNS,
            help="plot operating curves: SWEEP1 SWEEP2 ... [out=tradeoff.png] [+at.false_alarms_per_min=[2.0]]"),
    Command(("eval", "rescore"), "eval_rescore", "chimein.eval.commands:rescore", positional=("episodes",),
            help="metrics from logged episodes alone: DIR/episodes.jsonl [out=DIR]"),
    Command(("eval", "psb"), "eval_psb", "chimein.eval.commands:psb", positional=("manifest",),
            help="Proactive-Sound-Bench accuracy: MANIFEST.jsonl policy=NAME out=DIR"),
    Command(("scenes", "export-psb"), "scenes_export_psb", "chimein.eval.commands:export_psb",
            help="write scenes as PSB clips + manifest: suite=NAME|dataset=DIR out=DIR [unit=cue|scene]"),
    Command(("train", "codebook"), "train_codebook", "chimein.training.commands:codebook",
            help="fit the audio codebook (k-means): out=codebook.safetensors [codebook.size=512] [scenes=...]"),
    Command(("train", "supervised"), "train_supervised", "chimein.training.commands:supervised",
            help="train the timing LM: codebook=PATH out=DIR [train.steps=N] [train.max_minutes=30] (resumes)"),
    Command(("train", "calibrate"), "train_calibrate", "chimein.training.commands:calibrate",
            positional=("checkpoint",),
            help="re-pick a checkpoint's decide-head logit bias on held-out scenes: CKPT [train.val.max_interruptions_per_turn=0.1]"),
    Command(("attack",), "attack", "chimein.eval.attack:command",
            help="search scenes that break a policy: policy=NAME budget=N out=DIR [workers=N] [seed=S] (resumes)"),
    Command(("train", "ppo"), "train_ppo", "chimein.training.rl_commands:ppo",
            help="refine a checkpoint with SB3 PPO: init=CKPT out=DIR [train.total_steps=N] (resumes)"),
    Command(("train", "grpo"), "train_grpo", "chimein.training.rl_commands:grpo",
            help="refine a checkpoint with TRL GRPO: init=CKPT out=DIR [train.steps=N] (resumes)"),
    Command(("train", "curves"), "train_curves", "chimein.training.curves:command",
            positional=RUNS,
            help="reward curves of RL runs from OUT/tb: DIR1 DIR2 ... [out=curves.png] [tags=[...]] [smooth=0.6]"),
    Command(("serve",), "serve", "chimein.agents.server:serve",
            help="serve a policy to many streams: checkpoint=CKPT|NAME [device=cuda] [port=8765]"),
)


def config_dir() -> Path:
    """``configs/`` of this checkout (``CHIMEIN_CONFIG_DIR`` overrides)."""
    env = os.environ.get("CHIMEIN_CONFIG_DIR")
    d = Path(env) if env else Path(__file__).resolve().parents[1] / "configs"
    if not (d / "cmd").is_dir():
        raise SystemExit(f"chimein: config directory {d} not found; set CHIMEIN_CONFIG_DIR to the repo's configs/")
    return d


def compose(config_name: str, overrides: Sequence[str] = ()):  # -> DictConfig
    """Compose ``configs/cmd/<config_name>.yaml`` with Hydra overrides (also used by tests)."""
    from hydra import compose as h_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
        return h_compose(config_name=f"cmd/{config_name}", overrides=list(overrides))


def _usage() -> str:
    lines = ["usage: chimein <command> [args] [key=value ...] [--cfg]", "", "commands:"]
    for c in COMMANDS:
        lines.append(f"  {' '.join(c.words):<20} {c.help}")
    return "\n".join(lines)


def _find(argv: Sequence[str]) -> tuple[Command, list[str]]:
    best: Command | None = None
    for c in COMMANDS:
        if tuple(argv[: len(c.words)]) == c.words and (best is None or len(c.words) > len(best.words)):
            best = c
    if best is None:
        raise SystemExit(f"chimein: unknown command {' '.join(a for a in argv if '=' not in a)!r}\n\n{_usage()}")
    return best, list(argv[len(best.words):])


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    cmd, rest = _find(argv)
    show_cfg = "--cfg" in rest
    rest = [a for a in rest if a != "--cfg"]
    if any(a in ("-h", "--help") for a in rest):
        print(f"chimein {' '.join(cmd.words)}: {cmd.help}\n\nconfig (override with key=value):\n")
        from omegaconf import OmegaConf

        print(OmegaConf.to_yaml(compose(cmd.config)))
        return 0
    positional = [a for a in rest if "=" not in a and not a.startswith("~")]
    overrides = [a for a in rest if a not in positional]
    if len(positional) > len(cmd.positional):
        raise SystemExit(f"chimein {' '.join(cmd.words)}: unexpected argument {positional[len(cmd.positional)]!r} "
                         "(options are key=value)")
    overrides += [f"{k}={v}" for k, v in zip(cmd.positional, positional, strict=False)]
    try:
        cfg = compose(cmd.config, overrides)
    except Exception as e:  # hydra's errors name the bad override; keep them, drop the trace
        raise SystemExit(f"chimein {' '.join(cmd.words)}: {e}") from None
    if show_cfg:
        from omegaconf import OmegaConf

        print(OmegaConf.to_yaml(cfg))
        return 0
    mod, fn = cmd.target.split(":")

    try:
        rc = getattr(importlib.import_module(mod), fn)(cfg)
    except ChimeinError as e:
        print(f"chimein: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("chimein: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
