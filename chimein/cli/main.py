"""The ``chimein`` command: ``chimein <group> <command> [positional] [key=value ...]``.

Each command has a Hydra primary config in ``chimein/configs/cmd/`` (package data, so an
installed wheel has them) that pulls the package config groups it needs
(``chimein/configs/scenes``, ``chimein/configs/agents``, ``chimein/configs/training``, ...). Arguments of the form
``key=value`` (and ``+key=value``, ``~key``) are Hydra overrides; a command may also take
positional arguments (e.g. the spec path of ``scenes show``). ``--cfg`` prints the composed
config and exits; ``--help`` lists every key with its meaning (:mod:`chimein.cli.usage`).
This module holds the command table and dispatches to the handlers of ``chimein/cli/<group>.py``,
which call the library.

Examples::

    chimein scenes generate n=200 seed=3 out=runs/train scenes=hard
    chimein scenes show runs/train/specs/scene-000000.json out=runs/scene.png
    chimein demo
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chimein.cli.attack as attack
import chimein.cli.demo as demo
import chimein.cli.eval as eval_
import chimein.cli.scenes as scenes
import chimein.cli.serve as serve
import chimein.cli.train as train
from chimein.cli.common import RUNS
from chimein.errors import ChimeinError


@dataclass(frozen=True)
class Command:
    """One row of the command table.

    Attributes
    ----------
    name : str
        The command words, space-separated (``"eval compare"``).
    handler : callable
        Called with the composed ``DictConfig``; returns the exit status (None: 0).
    help : str
        One line for ``chimein --help``: what it does and its main arguments.
    positional : tuple of str
        Config keys filled by positional arguments, in order.
    """

    name: str
    handler: Callable[[Any], int | None]
    help: str
    positional: tuple[str, ...] = ()

    @property
    def words(self) -> tuple[str, ...]:
        """The command words (``("eval", "compare")``)."""
        return tuple(self.name.split())

    @property
    def config(self) -> str:
        """The primary config under ``chimein/configs/cmd/``: the words joined by ``_``
        (``scenes export-psb`` -> ``scenes_export_psb``)."""
        return "_".join(self.words).replace("-", "_")


def _demo(cfg: Any) -> int | None:
    return demo.main(cfg, run=main)


#: Every command: words, handler, help line, and the config keys its positional arguments fill.
COMMANDS: tuple[Command, ...] = (
    Command("scenes generate", scenes.generate, "generate a scene dataset: n=200 seed=3 out=DIR [scenes=easy|default|hard] [scenes.family=...]"),
    Command("scenes speech-pack", scenes.speech_pack, "a sound pack of recorded speech by held-back talkers: out=DIR [n_requests=60] [n_chitchat=30] [generators=[piper,flite]] [voices={flite:[awb]}]"),
    Command("scenes show", scenes.show, "draw a scene's spectrogram and annotated timeline: SPEC.json out=PNG", ("spec",)),
    Command("demo", _demo, "the main job on embedded defaults, on the CPU, in minutes"),
    Command("eval", eval_.run, "evaluate a policy on a suite: policy=NAME suite=chimein-bench-v0 out=DIR [workers=N] (or on annotated recordings: recordings=DIR)"),
    Command("eval materialize", eval_.materialize, "generate (once) or verify a suite: suite=NAME [verify=true]"),
    Command("eval compare", eval_.compare, "leaderboard of eval runs: DIR1 DIR2 ... [out=leaderboard.md]", RUNS),
    Command("eval spread", eval_.spread, "spread of metrics over training seeds: DIR1 DIR2 DIR3 [out=spread.md]", RUNS),
    Command("eval sweep", eval_.sweep, "an operating curve: policy=NAME param=logit_bias values=[-1,-0.5,0,0.5] out=DIR"),
    Command("eval tradeoff", eval_.tradeoff, "plot operating curves: SWEEP1 SWEEP2 ... [out=tradeoff.png] [+at.false_alarms_per_min=[2.0]]", RUNS),
    Command("eval rescore", eval_.rescore, "metrics from logged episodes alone: DIR/episodes.jsonl [out=DIR] [annotations=DIR]", ("episodes",)),
    Command("eval psb", eval_.psb, "Proactive-Sound-Bench accuracy: MANIFEST.jsonl policy=NAME out=DIR", ("manifest",)),
    Command("scenes export-hf", scenes.export_hf, "write scenes as a Hugging Face audiofolder (audio + annotation columns): suite=NAME|dataset=DIR out=DIR"),
    Command("scenes export-psb", eval_.export_psb, "write scenes as PSB clips + manifest: suite=NAME|dataset=DIR out=DIR [unit=cue|scene]"),
    Command("train codebook", train.codebook, "fit the audio codebook (k-means): out=codebook.safetensors [codebook.size=512] [scenes=...]"),
    Command("train supervised", train.supervised, "train the timing LM: codebook=PATH out=DIR [train.steps=N] [train.max_minutes=30] (resumes)"),
    Command("train calibrate", train.calibrate, "re-pick a checkpoint's decide-head logit bias on held-out scenes: CKPT [train.val.max_interruptions_per_turn=0.1]", ("checkpoint",)),
    Command("attack", attack.attack, "search scenes that break a policy: policy=NAME budget=N out=DIR [workers=N] [seed=S] (resumes)"),
    Command("train ppo", train.ppo, "refine a checkpoint with SB3 PPO: init=CKPT out=DIR [train.total_steps=N] (resumes)"),
    Command("train grpo", train.grpo, "refine a checkpoint with TRL GRPO: init=CKPT out=DIR [train.steps=N] (resumes)"),
    Command("train curves", train.curves, "reward curves of RL runs from OUT/tb: DIR1 DIR2 ... [out=curves.png] [tags=[...]] [smooth=0.6]", RUNS),
    Command("serve", serve.serve, "serve a policy to many streams: checkpoint=CKPT|NAME [device=cuda] [port=8765]"),
)


def config_dir() -> Path:
    """The Hydra config folder: ``chimein/configs/`` inside the installed package
    (``CHIMEIN_CONFIG_DIR`` overrides it, e.g. to try edited copies)."""
    env = os.environ.get("CHIMEIN_CONFIG_DIR")
    d = Path(env) if env else Path(__file__).resolve().parents[1] / "configs"
    if not (d / "cmd").is_dir():
        raise SystemExit(f"chimein: config directory {d} not found; reinstall chimein, or set CHIMEIN_CONFIG_DIR to a folder with cmd/*.yaml")
    return d


def compose(config_name: str, overrides: Sequence[str] = ()):  # -> DictConfig
    """Compose ``chimein/configs/cmd/<config_name>.yaml`` with Hydra overrides (also used by tests)."""
    from hydra import compose as h_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
        return h_compose(config_name=f"cmd/{config_name}", overrides=list(overrides))


def _usage(width: int = 100) -> str:
    """The command list, each help wrapped to ``width`` columns (fits a terminal)."""
    import textwrap

    lines = ["usage: chimein <command> [args] [key=value ...] [--cfg]", "", "commands:"]
    for c in COMMANDS:
        lines += textwrap.wrap(c.help, width, initial_indent=f"  {' '.join(c.words):<20} ",
                               subsequent_indent=" " * 23, break_on_hyphens=False)
    return "\n".join(lines)


def _find(argv: Sequence[str]) -> tuple[Command, list[str]]:
    best: Command | None = None
    for c in COMMANDS:
        if tuple(argv[: len(c.words)]) == c.words and (best is None or len(c.words) > len(best.words)):
            best = c
    if best is None:
        raise SystemExit(f"chimein: unknown command {' '.join(a for a in argv if '=' not in a)!r}\n\n{_usage()}")
    return best, list(argv[len(best.words):])


def _error(msg: str) -> int:
    """Bad input: one message on stderr, exit status 2 (as for every ChimeinError)."""
    print(f"chimein: error: {msg}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    cmd, rest = _find(argv)
    show_cfg = "--cfg" in rest
    rest = [a for a in rest if a != "--cfg"]
    if any(a in ("-h", "--help") for a in rest):
        import textwrap

        from chimein.cli.common import container
        from chimein.cli.usage import key_help

        print("\n".join(textwrap.wrap(f"chimein {' '.join(cmd.words)}: {cmd.help}", 100, subsequent_indent="  ",
                                     break_on_hyphens=False)) + "\n")
        print(key_help(config_dir(), cmd.config, container(compose(cmd.config))))
        return 0
    positional = [a for a in rest if "=" not in a and not a.startswith("~")]
    overrides = [a for a in rest if a not in positional]
    if len(positional) > len(cmd.positional):
        return _error(f"{' '.join(cmd.words)}: unexpected argument {positional[len(cmd.positional)]!r} "
                      "(options are key=value)")
    overrides += [f"{k}={v}" for k, v in zip(cmd.positional, positional, strict=False)]
    try:
        cfg = compose(cmd.config, overrides)
    except Exception as e:  # hydra's errors name the bad override; keep them, drop the trace
        return _error(f"{' '.join(cmd.words)}: {e}")
    if show_cfg:
        from omegaconf import OmegaConf

        print(OmegaConf.to_yaml(cfg))
        return 0
    try:
        rc = cmd.handler(cfg)
    except ChimeinError as e:
        print(f"chimein: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("chimein: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return int(rc or 0)

