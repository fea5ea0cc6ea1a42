"""Supervised training of the timing LM on teacher labels, resumable bit for bit.

Loss
----
At each chunk's action position (the chunk's last unit token, whose output predicts the action
token) a cross-entropy over the **whole vocabulary** with the teacher's action token as target
(:mod:`chimein.training.labels`), weighted per class (``(n_WAIT / n_c) ** class_weight_power``,
capped at ``max_class_weight``: actions are rare) and by the teacher's mask; the whole-vocabulary
softmax makes the decide head (restricted to the three action tokens) and the full softmax that
TRL scores with agree (see :mod:`chimein.training.grpo`). An auxiliary next-token loss on the audio
unit tokens (``unit_loss_weight``) teaches the model how sound continues -- whether a turn is
going on -- from every position, not only the rare decisions.

Loop
----
AdamW, linear warmup then cosine decay to ``min_lr_ratio``, gradient clipping, ``threads`` torch
threads, batches from :class:`chimein.training.data.TrainBatches` (``workers`` processes).
TensorBoard (``OUT/tb``): losses, per-action accuracy, learning rate, steps/s, tokens/s,
validation timing metrics from :mod:`chimein.eval` (streaming rollouts of the current model on
held-out scenes through the real env and scoring), and example timelines
(:func:`chimein.scenes.show.plot_scene`). Every ``ckpt_every`` steps a checkpoint
(``OUT/checkpoints/step-NNNNNN``) and the training state (``OUT/state``: model, optimizer,
scheduler, RNG and data position, safetensors + JSON) are written atomically; rerunning the
same command resumes from the state and gives the same result as an uninterrupted run (tested).
At the end the decide head's ``logit_bias`` is calibrated on the validation scenes (a grid over
a shared bias of the two actions, best mean reward) and ``OUT/final`` is written.

Layout
------
:mod:`.config` (settings), :mod:`.setup` (the run's fixed facts, model and optimiser or the
resumed state, episodes, class weights), :mod:`.loop` (:func:`train_supervised`: the loop and
its step, checkpoints, the final phase), :mod:`.loss` (the objective), :mod:`.validate`
(validation rollouts and calibration), :mod:`.state` (the resumable training state) and
:mod:`.episodes` (the episode-cache pool).
"""

from chimein.training.supervised.config import DataConfig, TrainConfig, ValConfig
from chimein.training.supervised.episodes import prepare_cache
from chimein.training.supervised.loop import train_supervised
from chimein.training.supervised.loss import TrainModule, compute_loss
from chimein.training.supervised.state import load_state, save_state
from chimein.training.supervised.validate import (
    calibrate_bias,
    calibrate_checkpoint,
    rollout_metrics,
    validation_scenes,
)

__all__ = [
    "DataConfig",
    "TrainConfig",
    "TrainModule",
    "ValConfig",
    "calibrate_bias",
    "calibrate_checkpoint",
    "compute_loss",
    "load_state",
    "prepare_cache",
    "rollout_metrics",
    "save_state",
    "train_supervised",
    "validation_scenes",
]
