"""Configuration of supervised training: the optimisation, data and validation settings."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from chimein.config import read_config
from chimein.errors import ConfigError
from chimein.training.labels import LabelConfig

__all__ = ["DataConfig", "TrainConfig", "ValConfig"]


@dataclass(frozen=True)
class DataConfig:
    """Where training episodes come from (see :mod:`chimein.training.data`)."""

    source: str = "sampler"
    """``sampler`` (the ``scenes`` config, ``difficulties`` cycled per episode) or ``dataset``
    (the ``dataset`` directory)."""
    dataset: str | None = None
    """Generated dataset directory (``source="dataset"``)."""
    difficulties: Sequence[str] = ("easy", "default", "hard")
    """Difficulty presets cycled over the sampler's episodes."""
    seed: int = 1
    """Seed of the training scenes."""
    pool: int | None = 4000
    """Distinct episodes cycled over in epochs (None: a fresh scene for every item)."""
    cache_dir: str | None = None
    """Tokenized-episode cache (None: ``OUT/episodes``)."""
    rir_cache_dir: str | None = None
    """Room impulse response cache of the scene engine (None: its default)."""
    workers: int = 1
    """Dataloader processes."""
    prepare_workers: int = 2
    """Processes that fill the episode cache before training (0: none; episodes are then made
    by the dataloader on first use)."""


@dataclass(frozen=True)
class ValConfig:
    """Held-out validation scenes (sampler, their own seed and room pool) and calibration."""

    n_per_family: int = 6
    """Validation scenes per family and difficulty."""
    difficulties: Sequence[str] = ("easy", "hard")
    """Difficulty presets of the validation scenes."""
    families: Sequence[str] = (
        "addressed",
        "proactive",
        "monitoring",
        "pauses",
        "distractors",
        "multi_event",
    )
    """Scene families of the validation scenes."""
    seed: int = 99
    """Seed of the validation scenes (disjoint from the training seed)."""
    room_pool_seed: int = 11
    """Seed of the validation room pool (disjoint from the training pool and the benchmark's)."""
    multi_event_duration_s: Sequence[float] = (30.0, 45.0)
    """Duration range in seconds of the ``multi_event`` validation scenes."""
    every: int = 0
    """Steps between validations (0: only at the end; each costs about a minute)."""
    examples: int = 2
    """Example timelines per validation in TensorBoard."""
    calibrate: bool = True
    """Tune the decide head's logit bias on the validation scenes (:attr:`biases`)."""
    biases: Sequence[float] = (-1.5, -1.0, -0.75, -0.5, -0.25, 0.0, 0.5, 1.0, 1.5)
    """Biases ``b`` (logit bias ``[0, b, b]``) tried by the calibration: the best mean reward
    among those within :attr:`max_interruptions_per_turn` wins."""
    calibrate_intervene: bool = True
    """Then tune INTERVENE's bias on its own (``[0, b, c]``, ``c`` from :attr:`biases`, ``b``
    kept): safety-critical cues cost more to miss than turns, and a shared bias left 90 % of
    them missed (issue 21). False: one shared bias ``[0, b, b]``."""
    max_interruptions_per_turn: float | None = 0.1
    """Interruption budget of the calibration (None: any)."""
    max_false_alarms_per_min: float | None = None
    """False-alarm budget of the calibration, per minute of audio (None: any). The way a
    wake-word or event detector is specified ("at most 0.5 false alarms a minute"): the
    calibration then gives up reward to stay within it."""
    max_pause_takeover_rate: float | None = None
    """Budget on the share of mid-turn pauses taken over (None: any), in [0, 1]."""
    smoothing: int = 1
    """Neighbouring biases on each side whose figures the calibration averages in (triangular
    weights) before choosing; 0: each bias on its own figures. Smoothing keeps one noisy
    episode from moving the operating point (issue 21: another machine picked -1.0 where the
    README's checkpoint had -0.25)."""
    batch_size: int = 64
    """Validation episodes decoded together."""
    workers: int = 2
    """Processes that play the calibration's biases (1: one after another in this process).
    Each bias is played whole in one process on one thread, so the choice and its table are
    the same for any number; two halve the calibration's wall time on a 2-core machine."""

    def __post_init__(self) -> None:
        for name, low in (("n_per_family", 0), ("every", 0), ("examples", 0), ("smoothing", 0),
                          ("batch_size", 1), ("workers", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ConfigError(f"train.val: field '{name}': an integer >= {low}, got {v!r}")
        for name, high in (("max_interruptions_per_turn", math.inf),
                           ("max_false_alarms_per_min", math.inf), ("max_pause_takeover_rate", 1.0)):
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= high:
                rng = "a number >= 0" if high == math.inf else f"a number in [0, {high:g}]"
                raise ConfigError(f"train.val: field '{name}': {rng} or null (no budget), got {v!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (``train.*`` in the Hydra config): AdamW, linear warmup then
    cosine decay."""

    steps: int = 1800
    """Optimizer steps."""
    batch_size: int = 6
    """Episode crops per optimizer step."""
    max_chunks: int = 256
    """Longest crop in chunks (lowered to the attention window divided by the tokens per
    chunk, so a whole crop fits the window)."""
    chunk_s: float = 0.08
    """Decision chunk in seconds (a whole number of codebook units: 2 of 40 ms)."""
    lr: float = 2.0e-3
    """Peak learning rate, reached after ``warmup_steps``."""
    min_lr_ratio: float = 0.05
    """The cosine decay ends at ``lr * min_lr_ratio`` at ``steps``."""
    warmup_steps: int = 50
    """Steps of linear warmup from ``lr / warmup_steps``."""
    weight_decay: float = 0.05
    """AdamW weight decay (matrices only; not biases and norms)."""
    grad_clip: float = 1.0
    """Gradient norm clip (0: none)."""
    class_weight_power: float = 1.0
    """Loss weight of the RESPOND and INTERVENE chunks: ``(n_wait / n_class) ** power``, counted
    on the training labels (1: balanced, 0: unweighted)."""
    max_class_weight: float = 50.0
    """Upper bound of a class weight."""
    unit_loss_weight: float = 0.1
    """Weight of the auxiliary next-audio-token loss."""
    aux_loss_weight: float = 1.0
    """Weight of the auxiliary dense head's loss (speech, pause and cue windows at every
    chunk; :func:`chimein.training.labels.dense_targets`)."""
    threads: int = 2
    """Torch CPU threads of the optimiser steps. They run after the episodes are prepared, so
    nothing else competes: 2 threads take 0.61 s a step on the idle 2-core machine against
    1.15 s with 1. The weights' bits depend on the number (float sums are split differently),
    so a run is reproduced bit for bit with the same ``threads`` on the same machine; use 1 on
    a machine busy with other work (small ops slow down with oversubscribed threads)."""
    seed: int = 0
    """Seed of the initial weights, crops and label jitter."""
    device: str = "cpu"
    """Torch device: ``cpu``, ``cuda`` or ``auto``."""
    log_every: int = 10
    """Steps between logged scalars."""
    ckpt_every: int = 250
    """Steps between checkpoints and resumable states."""
    keep_checkpoints: int = 2
    """Intermediate checkpoints kept (the oldest are deleted)."""
    max_minutes: float | None = None
    """Wall-clock budget in minutes: stop (state saved, resumable) and finalise."""
    progress: bool = True
    """Show a progress bar."""
    labels: Mapping[str, Any] = field(default_factory=dict)
    """:class:`~chimein.training.labels.LabelConfig` fields (the teacher)."""
    data: Mapping[str, Any] = field(default_factory=dict)
    """:class:`DataConfig` fields."""
    val: Mapping[str, Any] = field(default_factory=dict)
    """:class:`ValConfig` fields."""

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "max_chunks", "threads", "log_every", "ckpt_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"train: field '{name}': a positive integer, got {v!r}")
        for name in (
            "lr",
            "min_lr_ratio",
            "weight_decay",
            "grad_clip",
            "class_weight_power",
            "max_class_weight",
            "unit_loss_weight",
            "aux_loss_weight",
        ):
            v = getattr(self, name)
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, float))
                or not math.isfinite(v)
                or v < 0
            ):
                raise ConfigError(f"train: field '{name}': a non-negative number, got {v!r}")
        if self.max_minutes is not None and not float(self.max_minutes) > 0:
            raise ConfigError(f"train: field 'max_minutes': > 0 or null, got {self.max_minutes}")

    @property
    def label_cfg(self) -> LabelConfig:
        return LabelConfig.from_mapping(self.labels)

    @property
    def data_cfg(self) -> DataConfig:
        return read_config(DataConfig, self.data, "train.data")

    @property
    def val_cfg(self) -> ValConfig:
        return read_config(ValConfig, self.val, "train.val")

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> TrainConfig:
        """Read the ``train`` config (:func:`chimein.config.read_config`); ``labels``,
        ``data`` and ``val`` stay mappings, read by :attr:`label_cfg`, :attr:`data_cfg` and
        :attr:`val_cfg`."""
        return read_config(cls, d, "train")

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=list))
