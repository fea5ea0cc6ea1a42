"""What the RL trainers (SB3 PPO, TRL GRPO) share: checkpoints, logging, validation, curriculum.

- **Settings** (:class:`RLRunConfig`): the fields both run configs have (scenes, curriculum,
  device, budget, validation, ...), their checks and their reading.
- **Runs** (:class:`RLRun`): the initial checkpoint, logging, validation and time budget of a
  run. Checkpoints are written by :meth:`RLRun.save_checkpoint` with
  :func:`chimein.agents.lm.checkpoint.save_checkpoint`, in the supervised format (``chimein
  eval policy=DIR``, the demo and the server load them); the metadata records the initial
  checkpoint (``rl.init``), the algorithm and the step.
- **Validation** (:class:`Validator`) evaluates a saved checkpoint on a suite with
  :func:`chimein.eval.evaluate` every ``every`` steps and keeps a copy of the best one
  (highest ``metric``, default ``normalized_reward``) under ``OUT/best``.
- **Calibration** (:func:`calibrate_outputs`): the supervised stage's choice of the decide-head
  logit bias (best validation reward under an interruption budget) is re-run on ``OUT/final``
  and ``OUT/best`` after RL, on the same held-out validation scenes, so supervised and refined
  checkpoints are compared at the same operating point (greedy decoding with a bias picked the
  same way), not at a bias tuned for another model.
- **TensorBoard** (:class:`TBLogger`): scalars under ``OUT/tb``.
- **Curriculum** (:func:`scenes_at`): the scene distribution is ``scenes`` (anything
  :func:`chimein.envs.sources.make_source` takes: a difficulty/family name, a sampler config, a
  dataset directory or ``{"mixture": [...]}``), replaced by the ``scenes`` of the last
  ``curriculum`` stage whose ``from_step`` has been reached.

Examples
--------
>>> scenes_at("easy", [{"from_step": 10, "scenes": "hard"}], 3)
'easy'
>>> scenes_at("easy", [{"from_step": 10, "scenes": "hard"}], 10)
'hard'
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch

from chimein.config import read_config, to_plain
from chimein.errors import ConfigError, SpecError

__all__ = [
    "RLRun",
    "RLRunConfig",
    "TBLogger",
    "Validator",
    "action_rates",
    "calibrate_outputs",
    "check_curriculum",
    "scenes_at",
]


def check_curriculum(curriculum: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Validate curriculum stages ``[{"from_step": int, "scenes": ...}, ...]`` (sorted by step)."""
    stages = []
    for i, st in enumerate(to_plain(curriculum) or []):
        if not isinstance(st, Mapping) or set(st) != {"from_step", "scenes"}:
            raise SpecError(
                f"rl: curriculum[{i}]: a mapping with exactly 'from_step' and 'scenes', got {st!r}"
            )
        fs = st["from_step"]
        if isinstance(fs, bool) or not isinstance(fs, int) or fs < 0:
            raise SpecError(f"rl: curriculum[{i}].from_step: a step >= 0, got {fs!r}")
        stages.append({"from_step": int(fs), "scenes": to_plain(st["scenes"])})
    return sorted(stages, key=lambda s: s["from_step"])


def scenes_at(scenes: Any, curriculum: Sequence[Mapping[str, Any]] | None, step: int) -> Any:
    """The scene distribution in force at ``step`` (see the module docstring)."""
    out = to_plain(scenes)
    for st in check_curriculum(curriculum):
        if step >= st["from_step"]:
            out = st["scenes"]
    return out


@dataclass(frozen=True)
class RLRunConfig:
    """The settings both RL trainers share (:class:`~chimein.training.grpo.GRPORunConfig` and
    :class:`~chimein.training.ppo.PPOConfig` add their algorithm's fields).

    A subclass names its algorithm in ``algo`` (messages, checkpoint metadata) and the fields
    that must be positive integers in ``positive_ints``; its own ``__post_init__`` calls this
    one first.
    """

    algo: ClassVar[str] = "rl"
    positive_ints: ClassVar[tuple[str, ...]] = ("threads", "ckpt_every")

    scenes: Any = None
    """Scene distribution (what :func:`chimein.envs.sources.make_source` takes: a difficulty
    or family name, a sampler config, a dataset directory or ``{"mixture": [...]}``)."""
    curriculum: tuple[Any, ...] = ()
    """Stages ``{"from_step": STEP, "scenes": ...}`` replacing ``scenes`` from that step (PPO:
    update) on (:func:`scenes_at`)."""
    rir_cache_dir: str | None = None
    """Room impulse response cache of the scene engine (None: its default)."""
    temperature: float = 1.0
    """Sampling temperature of the policy's actions (< 1: explore near the greedy policy)."""
    seed: int = 0
    """Seed of the scenes, the action sampling and the trainer."""
    device: str = "cpu"
    """Torch device: ``cpu`` or ``cuda``."""
    threads: int = 1
    """Torch CPU threads."""
    ckpt_every: int = 10
    """Steps (PPO: updates) between resumable training states."""
    val: Mapping[str, Any] = field(default_factory=dict)
    """Validation: ``suite`` (None: none), ``every`` (steps; 0: at the end only), ``metric``
    and ``eval`` (:func:`chimein.eval.evaluate` options); see :class:`Validator`."""
    max_minutes: float | None = None
    """Wall-clock budget in minutes: the run stops, resumable (None: no budget)."""
    calibrate: bool = True
    """Re-pick the decide-head bias of ``final/`` and ``best/`` as the supervised stage does
    (:func:`calibrate_outputs`)."""

    def __post_init__(self) -> None:
        for k in self.positive_ints:
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{self.algo}: field {k!r}: a positive integer, got {v!r}")
        object.__setattr__(self, "curriculum", tuple(check_curriculum(self.curriculum)))
        object.__setattr__(self, "scenes", to_plain(self.scenes))
        object.__setattr__(self, "val", dict(to_plain(self.val) or {}))

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> Self:
        """Read the ``train`` config (:func:`chimein.config.read_config`)."""
        return read_config(cls, d, cls.algo)

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready plain values (tuples become lists)."""
        return json.loads(json.dumps(asdict(self), default=list))


def action_rates(actions: np.ndarray) -> dict[str, float]:
    """Fraction of WAIT/RESPOND/INTERVENE among ``actions`` (any shape)."""
    a = np.asarray(actions).reshape(-1)
    n = max(1, a.size)
    return {f"actions/{k}": float((a == i).sum() / n) for i, k in enumerate(("wait", "respond", "intervene"))}


def calibrate_outputs(
    out: str | Path, init: Any, log: Any = print, val: Mapping[str, Any] | None = None
) -> dict[str, list[float]]:
    """Re-calibrate the decide-head logit bias of ``OUT/final`` and ``OUT/best`` (those that
    exist) with :func:`chimein.training.supervised.calibrate_checkpoint`, using the validation
    settings and scene knobs recorded in the initial checkpoint ``init`` (a
    :class:`~chimein.agents.lm.checkpoint.Checkpoint`; defaults when it has none), updated with
    ``val`` (``ValConfig`` fields); unless ``val`` gives ``biases``, the biases swept include
    at least ``ValConfig``'s default grid. Returns the bias chosen per directory name."""
    from chimein.training.supervised import calibrate_checkpoint

    training = dict(init.meta.get("training") or {})
    scenes = dict(training.get("scenes") or {"room_pool": 32, "positions_per_room": 8})
    scenes = {k: v for k, v in scenes.items() if v is not None}
    recorded = dict((training.get("train") or {}).get("val") or {})
    if "biases" not in dict(val or {}):
        from chimein.training.supervised import ValConfig

        # RL moves the action logits (usually towards WAIT), so an older checkpoint's narrower
        # grid may stop short of the refined policy's best bias: sweep at least the default grid
        recorded["biases"] = sorted({float(b) for b in (*recorded.get("biases", ()),
                                                         *ValConfig().biases)})
    val = {**recorded, **dict(val or {})}
    chosen = {}
    for name in ("final", "best"):
        d = Path(out) / name
        if (d / "chimein.json").is_file():
            t0 = time.perf_counter()
            chosen[name] = calibrate_checkpoint(d, scenes, val, log=log, progress=True)
            log(f"calibrated {d}: logit_bias {chosen[name]} ({time.perf_counter() - t0:.0f} s)")
    return chosen


class TBLogger:
    """TensorBoard scalars under ``logdir`` (a no-op when ``logdir`` is None)."""

    def __init__(self, logdir: str | Path | None) -> None:
        self.w = None
        if logdir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.w = SummaryWriter(str(logdir))

    def scalars(self, values: Mapping[str, Any], step: int) -> None:
        if self.w is None:
            return
        for k, v in values.items():
            if v is not None and np.isfinite(float(v)):
                self.w.add_scalar(k, float(v), int(step))
        self.w.flush()

    def close(self) -> None:
        if self.w is not None:
            self.w.close()


def _metric_value(metrics: Mapping[str, Any], name: str) -> float | None:
    v = metrics.get("overall", {}).get(name)
    if isinstance(v, Mapping):
        v = v.get("value")
    return None if v is None else float(v)


class Validator:
    """Evaluate checkpoints on a suite at intervals and keep the best (``OUT/best``).

    Parameters
    ----------
    out
        Run directory (``OUT/val/step-N`` evaluation folders, ``OUT/best``).
    suite
        Suite name, file, :class:`~chimein.eval.suites.SuiteDef` or its dict; None disables
        validation.
    every
        Validate every ``every`` steps (0: only at the end).
    metric
        Overall metric to maximise (``normalized_reward``, ``timeliness``, ...).
    eval_kwargs
        More arguments of :func:`chimein.eval.evaluate` (``workers``, ``batch_size``,
        ``cache_dir``, ...).
    """

    def __init__(
        self,
        out: str | Path,
        suite: Any = None,
        every: int = 0,
        metric: str = "normalized_reward",
        eval_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.out = Path(out)
        self.suite = to_plain(suite)
        if isinstance(self.suite, Mapping):  # an inline suite definition
            from chimein.eval.suites import SuiteDef

            self.suite = SuiteDef.from_dict(self.suite, where="rl: val.suite")
        self.every = int(every)
        self.metric = str(metric)
        self.kw = {"workers": 1, "progress": False, "report": False, "resamples": 200,
                   **dict(to_plain(eval_kwargs) or {})}
        self.state_file = self.out / "best.json"
        self.best: dict[str, Any] = (
            json.loads(self.state_file.read_text()) if self.state_file.is_file() else {}
        )

    @property
    def enabled(self) -> bool:
        return self.suite is not None

    def due(self, step: int) -> bool:
        return self.enabled and self.every > 0 and step > 0 and step % self.every == 0

    def __call__(self, step: int, ckpt: str | Path) -> dict[str, float]:
        """Evaluate ``ckpt`` (a checkpoint directory saved at ``step``); returns the overall
        metrics as ``val/<name>`` scalars and updates ``OUT/best`` when it improved."""
        from chimein.eval.runner import PolicySpec, evaluate, forget_policy

        t0 = time.perf_counter()
        spec = PolicySpec(str(Path(ckpt).resolve()))
        res = evaluate(spec, self.suite, self.out / "val" / f"step-{step:07d}", **self.kw)
        # one cached policy per path: drop it, this path is not evaluated again
        forget_policy(spec)
        overall = res["metrics"]["overall"]
        scalars = {}
        for k, v in overall.items():
            if isinstance(v, Mapping) and "value" in v and v["value"] is not None:
                scalars[f"val/{k}"] = float(v["value"])
        score = _metric_value(res["metrics"], self.metric)
        if score is None:
            raise SpecError(f"rl: validation metric {self.metric!r} is undefined on this suite")
        if not self.best or score > float(self.best["score"]):
            shutil.copytree(ckpt, self.out / ".best.tmp", dirs_exist_ok=True)
            if (self.out / "best").exists():
                shutil.rmtree(self.out / "best")
            (self.out / ".best.tmp").rename(self.out / "best")
            self.best = {"step": int(step), "score": score, "metric": self.metric}
            from chimein.io import atomic_write_text

            atomic_write_text(self.state_file, json.dumps(self.best))
        scalars["val/seconds"] = time.perf_counter() - t0
        return scalars


class RLRun:
    """What a run of either RL trainer keeps beside its model: the initial checkpoint, the
    TensorBoard log, the validator, the time budget and the checkpoint writer.

    Parameters
    ----------
    init
        The initial checkpoint directory (loaded as ``self.init``, a
        :class:`~chimein.agents.lm.checkpoint.Checkpoint`: codebook, chunk, metadata).
    out
        Run directory (``tb/``, ``best/``, ``val/``, ``final/``, ...).
    cfg
        The run config.
    log
        Progress messages.
    callback
        The caller's ``callback(step, scalars)`` after every step (PPO: update), or None.

    A subclass builds its model and trainer state in :meth:`setup`, called last.
    """

    def __init__(self, init: str, out: Path, cfg: RLRunConfig, log: Callable[[str], None],
                 callback: Callable[[int, dict[str, float]], None] | None) -> None:
        from chimein.agents.lm.checkpoint import load_checkpoint

        self.cfg, self.out, self.log, self.callback = cfg, out, log, callback
        torch.set_num_threads(cfg.threads)
        self.init = load_checkpoint(init)  # train_ppo/train_grpo resolved shipped names
        self.tb = TBLogger(out / "tb")
        self.val = Validator(out, cfg.val.get("suite"), int(cfg.val.get("every", 0)),
                             str(cfg.val.get("metric", "normalized_reward")), cfg.val.get("eval"))
        self.t0 = time.perf_counter()
        self.stopped = False
        self.setup()

    def setup(self) -> None:
        """Build the algorithm's model and trainer state (subclasses)."""

    def out_of_time(self) -> bool:
        """Whether the time budget (``max_minutes``) is spent (then ``stopped`` stays True)."""
        mm = self.cfg.max_minutes
        if mm is not None and time.perf_counter() - self.t0 > 60.0 * mm:
            self.stopped = True
        return self.stopped

    def save_checkpoint(self, dest: Path, model: Any, step: int, logit_bias: Sequence[float],
                        extra: Mapping[str, Any] | None = None) -> Path:
        """Save ``model`` (a :class:`~chimein.agents.lm.model.TimingLM`) at ``step`` in the
        supervised format (:func:`chimein.agents.lm.checkpoint.save_checkpoint`, the directory
        ``dest`` replaced atomically), with decide-head bias ``logit_bias``; ``chimein.json``
        records the algorithm, the step and the initial checkpoint under ``rl``, the run config
        under ``training``, and ``extra``."""
        from chimein.agents.lm.checkpoint import save_checkpoint

        inf = dict(self.init.meta.get("inference", {}))
        inf["logit_bias"] = [float(b) for b in logit_bias]
        rl = {"algo": self.cfg.algo, "step": int(step), "init": str(self.init.path)}
        return save_checkpoint(
            dest,
            model,
            self.init.codebook,
            chunk_s=self.init.chunk_s,
            inference=inf,
            training={self.cfg.algo: self.cfg.to_dict()},
            extra={"rl": rl, "steps": int(step), **dict(extra or {})},
        )

    def finish(self, final: Path) -> Path:
        """Report the final checkpoint and re-calibrate ``final/`` and ``best/`` (when
        ``calibrate``: also after the time budget stopped the run, final/ is what gets used)."""
        self.log(f"{self.cfg.algo}: final checkpoint {final}")
        if self.cfg.calibrate:
            calibrate_outputs(self.out, self.init, self.log)
        return final
