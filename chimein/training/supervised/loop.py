"""The supervised training loop: :func:`train_supervised` reads as its phases -- set up, train
step by step (logging, validating and checkpointing on schedule), finish with validation,
calibration and the final checkpoint."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from chimein.agents.lm.checkpoint import save_checkpoint
from chimein.agents.lm.model import LMConfig
from chimein.training.data import BatchMaker, make_loader
from chimein.training.supervised.config import TrainConfig
from chimein.training.supervised.loss import compute_loss
from chimein.training.supervised.setup import (
    Learner,
    Run,
    build_learner,
    open_episodes,
    setup_run,
    weigh_classes,
)
from chimein.training.supervised.state import STATE_DIR, save_state
from chimein.training.supervised.validate import (
    VAL_KEYS,
    Validator,
    calibrate_bias,
    metric_value,
)

__all__ = ["train_supervised"]

_LOGGED = ("loss", "loss_act", "loss_unit", "loss_dense", "grad_norm", "log_action_mass")
_ACTIONS = ("wait", "respond", "intervene")


def train_supervised(
    codebook_path: str | Path,
    out: str | Path,
    lm_cfg: LMConfig,
    train: TrainConfig,
    scenes_cfg: Mapping[str, Any],
    resume: bool = True,
    log: Any = None,
    on_step: Callable[[int, Mapping[str, float]], None] | None = None,
) -> Path:
    """Train (or resume) the timing LM; returns the final checkpoint directory ``OUT/final``.

    Parameters
    ----------
    codebook_path
        ``codebook.safetensors`` from ``chimein train codebook``.
    out
        Run directory (``tb/``, ``checkpoints/``, ``state/``, ``final/``, ``train.json``).
    lm_cfg, train
        Model and optimisation settings.
    scenes_cfg
        Sampler config of the training scenes (``train.data.source=sampler``) and the base of
        the validation scenes.
    resume
        Continue from ``OUT/state`` when it exists (its configuration must match).
    log
        ``log(message)`` for progress lines (default: stderr).
    on_step
        Called after every optimiser step with ``(step, {"loss": ..., "loss_act": ...})``.
    """
    from torch.utils.tensorboard import SummaryWriter

    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    # ---- setup: run, episodes, model and optimiser (or the resumed state), class weights
    run = setup_run(codebook_path, out, lm_cfg, train, scenes_cfg, say)
    source, pool = open_episodes(run)
    learner = build_learner(run, resume)
    counts, class_w = weigh_classes(run, learner, source, pool)
    validator = Validator.build(run.codebook, run.tok, scenes_cfg, train, run.max_chunks)
    writer = SummaryWriter(str(run.out / "tb"), purge_step=learner.step if learner.step else None)
    maker = BatchMaker(source, train.batch_size, run.max_chunks, run.labels, train.seed, pool)
    loader = make_loader(maker, learner.step, train.steps, int(run.data.workers))
    info_base = {"identity": run.ident, "label_counts": counts.tolist()}

    # ---- the loop
    bar = _progress_bar(train, learner.step)
    t_start = time.perf_counter()
    meter = _Meter(t_start)
    stopped_early = False
    tmpdir = Path(tempfile.mkdtemp(prefix="chimein-train-"))
    try:
        for batch in loader:
            loss, parts, gnorm, n_tokens = train_step(learner, batch, class_w, run)
            step = learner.step
            meter.add(loss, parts, gnorm, n_tokens)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
            if on_step is not None:
                on_step(
                    step, {"loss": float(loss.detach()), **{k: float(v) for k, v in parts.items()}}
                )
            if step % train.log_every == 0 or step == train.steps:
                meter.write(writer, step, learner.sched.get_last_lr()[0])
            if run.val.every > 0 and step % run.val.every == 0 and step < train.steps:
                validator.run(learner.model, class_w, writer, step, tmpdir, aux=learner.module.aux)
            over = train.max_minutes is not None and (
                time.perf_counter() - t_start
            ) / 60.0 >= float(train.max_minutes)
            if step % train.ckpt_every == 0 or step == train.steps or over:
                write_checkpoint(run, learner, step)
                save_state(
                    run.out / STATE_DIR, learner.module, learner.opt, learner.sched, step, info_base
                )
            if over and step < train.steps:
                say(
                    f"time budget of {train.max_minutes} min reached at step {step}; "
                    "state saved (rerun to resume)"
                )
                stopped_early = True
                break
    finally:
        if bar is not None:
            bar.close()
    train_s = time.perf_counter() - t_start

    # ---- finish: validation, calibration, the final checkpoint
    return finish(run, learner, validator, class_w, writer, tmpdir, train_s, stopped_early)


def train_step(
    learner: Learner, batch: Mapping[str, torch.Tensor], class_w: torch.Tensor, run: Run
) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None, int]:
    """One optimiser step on ``batch``; returns the loss, its parts, the gradient norm before
    clipping (None without clipping) and the number of tokens in the batch."""
    train = run.train
    batch = {k: v.to(run.device) for k, v in batch.items()}
    loss, parts = compute_loss(
        learner.model,
        batch,
        class_w,
        train.unit_loss_weight,
        learner.module.aux,
        train.aux_loss_weight,
    )
    learner.opt.zero_grad(set_to_none=True)
    loss.backward()
    gnorm = (
        torch.nn.utils.clip_grad_norm_(learner.module.parameters(), train.grad_clip)
        if train.grad_clip
        else None
    )
    learner.opt.step()
    learner.sched.step()
    learner.step += 1
    return loss, parts, gnorm, int(batch["attention_mask"].sum())


def write_checkpoint(
    run: Run,
    learner: Learner,
    step: int,
    final: bool = False,
    bias: Sequence[float] = (0.0, 0.0, 0.0),
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Save the model as ``OUT/checkpoints/step-NNNNNN`` (keeping the last ``keep_checkpoints``)
    or, with ``final``, as ``OUT/final``."""
    out = run.out
    dest = out / "final" if final else out / "checkpoints" / f"step-{step:06d}"
    save_checkpoint(
        dest,
        learner.model,
        run.codebook,
        chunk_s=run.train.chunk_s,
        inference={"logit_bias": list(bias)},
        training={**run.run_cfg, "step": step},
        extra=extra,
    )
    if not final:
        ck = sorted((out / "checkpoints").glob("step-*"))
        for old in ck[: max(0, len(ck) - int(run.train.keep_checkpoints))]:
            shutil.rmtree(old, ignore_errors=True)
    return dest


def finish(
    run: Run,
    learner: Learner,
    validator: Validator,
    class_w: torch.Tensor,
    writer: Any,
    tmpdir: Path,
    train_s: float,
    stopped_early: bool,
) -> Path:
    """Validate the trained model, calibrate the decide head's bias (``val.calibrate``), write
    ``OUT/final`` with both, close ``writer`` and remove ``tmpdir``; returns the final path."""
    step, val = learner.step, run.val
    bias = [0.0, 0.0, 0.0]
    extra: dict[str, Any] = {
        "train_seconds_this_session": round(train_s, 1),
        "steps": step,
        "stopped_early": stopped_early,
    }
    if validator.scenes:
        run.say(f"validating on {len(validator.scenes)} held-out scenes")
        metrics = validator.run(learner.model, class_w, writer, step, tmpdir, aux=learner.module.aux)
        extra["validation"] = {k: metric_value(metrics, k) for k in VAL_KEYS}
        if val.calibrate:
            bias, cal = calibrate_bias(
                learner.model,
                run.codebook,
                validator.scenes,
                run.train.chunk_s,
                val.biases,
                val.batch_size,
                run.say,
                val.max_interruptions_per_turn,
                progress=run.train.progress,
                smoothing=val.smoothing,
                intervene=val.calibrate_intervene,
                max_false_alarms_per_min=val.max_false_alarms_per_min,
                max_pause_takeover_rate=val.max_pause_takeover_rate,
                workers=val.workers,
            )
            extra["calibration"] = cal
            writer.add_scalar("val/calibrated_bias", bias[1], step)
            writer.add_scalar("val/calibrated_intervene_bias", bias[2], step)
    final = write_checkpoint(run, learner, step, final=True, bias=bias, extra=extra)
    writer.close()
    shutil.rmtree(tmpdir, ignore_errors=True)
    run.say(
        f"final checkpoint: {final} (logit_bias {bias}); trained {train_s / 60:.1f} min this session"
    )
    return final


def _progress_bar(train: TrainConfig, step: int) -> Any:
    """A tqdm bar on stderr from ``step`` (None without ``train.progress``)."""
    if not train.progress:
        return None
    from tqdm import tqdm

    return tqdm(
        total=train.steps, initial=step, desc="train supervised", unit="step", file=sys.stderr
    )


class _Meter:
    """Training scalars summed between two log lines, then written to TensorBoard as means."""

    def __init__(self, t_start: float) -> None:
        self.acc: dict[str, float] = {}
        self.t_log, self.tokens, self.steps = t_start, 0, 0

    def add(
        self,
        loss: torch.Tensor,
        parts: Mapping[str, torch.Tensor],
        gnorm: torch.Tensor | None,
        n_tokens: int,
    ) -> None:
        """Count one step."""
        acc = self.acc
        self.tokens += n_tokens
        self.steps += 1
        for k, v in parts.items():
            acc[k] = acc.get(k, 0.0) + float(v)
        acc["loss"] = acc.get("loss", 0.0) + float(loss.detach())
        if gnorm is not None:
            acc["grad_norm"] = acc.get("grad_norm", 0.0) + float(gnorm)

    def write(self, writer: Any, step: int, lr: float) -> None:
        """Write the means, accuracies, learning rate and throughput since the last call."""
        now = time.perf_counter()
        acc = self.acc
        for k in _LOGGED:
            if k in acc:
                writer.add_scalar(f"train/{k}", acc[k] / self.steps, step)
        for name in _ACTIONS:
            if acc.get(f"n_{name}"):
                writer.add_scalar(
                    f"train/acc_{name}", acc[f"correct_{name}"] / acc[f"n_{name}"], step
                )
        writer.add_scalar("train/lr", lr, step)
        writer.add_scalar("perf/steps_per_s", self.steps / (now - self.t_log), step)
        writer.add_scalar("perf/tokens_per_s", self.tokens / (now - self.t_log), step)
        self.acc, self.t_log, self.tokens, self.steps = {}, now, 0, 0
