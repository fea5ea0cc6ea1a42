"""Supervised training of the timing LM on teacher labels, resumable bit for bit.

Loss
----
At each chunk's action position (the chunk's last unit token, whose output predicts the action
token) a cross-entropy over the **whole vocabulary** with the teacher's action token as target
(:mod:`chimein.training.labels`), weighted per class (``(n_WAIT / n_c) ** class_weight_power``,
capped at ``max_class_weight``: actions are rare) and by the teacher's mask; the whole-vocabulary
softmax makes the decide head (restricted to the three action tokens) and the full softmax that
TRL scores with agree (see :mod:`chimein.agents.lm`). An auxiliary next-token loss on the audio
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
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from chimein.agents.checkpoint import Checkpoint, save_checkpoint
from chimein.agents.lm import LMConfig, TimingLM
from chimein.agents.tokenizer import ACTION_IDS, UNIT_OFFSET, AudioTokenizer, Codebook
from chimein.errors import SpecError
from chimein.io import atomic_write_text
from chimein.training.data import (
    BatchMaker,
    EpisodeSource,
    SourceSpec,
    class_weights,
    item_rng,
    label_stats,
    make_batch,
    make_loader,
)
from chimein.training.labels import DENSE_TARGETS, LabelConfig

__all__ = [
    "DataConfig",
    "TrainConfig",
    "ValConfig",
    "calibrate_bias",
    "calibrate_checkpoint",
    "load_state",
    "rollout_metrics",
    "save_state",
    "train_supervised",
    "validation_scenes",
]

STATE_DIR = "state"
STATE_VERSION = 1
_VAL_BATCH = 2**31 - 1  # batch index of the validation items' generators (never a training batch)


# ============================================================================================
# Configuration
# ============================================================================================
def _from_mapping(cls: Any, d: Mapping[str, Any] | None, where: str) -> Any:
    if d is None:
        return cls()
    if hasattr(d, "_content"):
        from omegaconf import OmegaConf

        d = OmegaConf.to_container(d, resolve=True)  # type: ignore[assignment]
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)  # type: ignore[arg-type]
    if unknown:
        raise SpecError(f"{where}: unknown field {unknown[0]!r}; known fields: {sorted(known)}")
    return cls(**dict(d))  # type: ignore[arg-type]


@dataclass(frozen=True)
class DataConfig:
    """Where training episodes come from (see :mod:`chimein.training.data`).

    ``source``: ``sampler`` (the ``scenes`` config; ``difficulties`` cycled per episode) or
    ``dataset`` (``dataset`` directory). ``pool``: number of distinct episodes cycled over in
    epochs (null: a fresh scene for every item). ``cache_dir``: tokenized-episode cache.
    ``workers``: dataloader processes. ``prepare_workers``: processes that fill the cache
    before training (0: none; episodes are then made by the dataloader on first use).
    """

    source: str = "sampler"
    dataset: str | None = None
    difficulties: Sequence[str] = ("easy", "default", "hard")
    seed: int = 1
    pool: int | None = 2000
    cache_dir: str | None = None
    rir_cache_dir: str | None = None
    workers: int = 1
    prepare_workers: int = 2


@dataclass(frozen=True)
class ValConfig:
    """Held-out validation scenes (sampler, their own seed and room pool) and calibration."""

    n_per_family: int = 4
    difficulties: Sequence[str] = ("easy", "hard")
    families: Sequence[str] = (
        "addressed",
        "proactive",
        "monitoring",
        "pauses",
        "distractors",
        "multi_event",
    )
    seed: int = 99
    room_pool_seed: int = 11
    multi_event_duration_s: Sequence[float] = (30.0, 45.0)
    every: int = 0
    examples: int = 2
    calibrate: bool = True
    biases: Sequence[float] = (-1.5, -1.0, -0.75, -0.5, -0.25, 0.0, 0.5, 1.0, 1.5)
    max_interruptions_per_turn: float | None = 0.1
    batch_size: int = 64


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (``train.*`` in the Hydra config)."""

    steps: int = 700
    batch_size: int = 6
    max_chunks: int = 256
    chunk_s: float = 0.08
    lr: float = 2.0e-3
    min_lr_ratio: float = 0.05
    warmup_steps: int = 50
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    class_weight_power: float = 1.0
    max_class_weight: float = 50.0
    unit_loss_weight: float = 0.1
    aux_loss_weight: float = 1.0
    threads: int = 1
    seed: int = 0
    device: str = "cpu"
    log_every: int = 10
    ckpt_every: int = 250
    keep_checkpoints: int = 2
    max_minutes: float | None = None
    progress: bool = True
    labels: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)
    val: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "max_chunks", "threads", "log_every", "ckpt_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise SpecError(f"train: field '{name}': a positive integer, got {v!r}")
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
                raise SpecError(f"train: field '{name}': a non-negative number, got {v!r}")
        if self.max_minutes is not None and not float(self.max_minutes) > 0:
            raise SpecError(f"train: field 'max_minutes': > 0 or null, got {self.max_minutes}")

    @property
    def label_cfg(self) -> LabelConfig:
        return LabelConfig.from_mapping(dict(self.labels))

    @property
    def data_cfg(self) -> DataConfig:
        return _from_mapping(DataConfig, dict(self.data), "train.data")

    @property
    def val_cfg(self) -> ValConfig:
        return _from_mapping(ValConfig, dict(self.val), "train.val")

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> TrainConfig:
        return _from_mapping(cls, d, "train")

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=list))


# ============================================================================================
# Training state (safetensors + JSON; never pickles)
# ============================================================================================
def save_state(
    path: str | Path,
    model: TimingLM,
    opt: torch.optim.Optimizer,
    sched: Any,
    step: int,
    info: Mapping[str, Any],
) -> None:
    """Write the full training state to directory ``path`` atomically."""
    from safetensors.torch import save_file, save_model

    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        save_model(model, str(tmp / "model.safetensors"))
        sd = opt.state_dict()
        tensors = {
            f"state.{pid}.{k}": v.detach().cpu().contiguous()
            for pid, st in sd["state"].items()
            for k, v in st.items()
            if torch.is_tensor(v)
        }
        tensors["torch_rng"] = torch.get_rng_state()
        save_file(tensors, str(tmp / "optim.safetensors"))
        meta = {
            "version": STATE_VERSION,
            "step": int(step),
            "param_groups": sd["param_groups"],
            "scheduler": sched.state_dict(),
            **json.loads(json.dumps(dict(info), default=str)),
        }
        (tmp / "state.json").write_text(
            json.dumps(meta, indent=1, sort_keys=True), encoding="utf-8"
        )
        old = None
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
            os.replace(dest, old)
        os.replace(tmp, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_state(
    path: str | Path, model: TimingLM, opt: torch.optim.Optimizer, sched: Any
) -> dict[str, Any]:
    """Restore what :func:`save_state` wrote; returns its JSON (``step``, ...)."""
    from safetensors.torch import load_file, load_model

    p = Path(path)
    try:
        meta = json.loads((p / "state.json").read_text(encoding="utf-8"))
        load_model(model, str(p / "model.safetensors"))
        tensors = load_file(str(p / "optim.safetensors"))
    except (OSError, json.JSONDecodeError, RuntimeError) as e:
        raise SpecError(
            f"{p}: cannot resume from this training state ({e}); delete it to start over"
        ) from None
    if int(meta.get("version", 0)) != STATE_VERSION:
        raise SpecError(f"{p}: training state version {meta.get('version')} is not {STATE_VERSION}")
    state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("state."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    sched.load_state_dict(meta["scheduler"])
    torch.set_rng_state(tensors["torch_rng"])
    return meta


# ============================================================================================
# Validation
# ============================================================================================
def validation_scenes(
    scenes_cfg: Mapping[str, Any], val: ValConfig, rir_cache_dir: str | None = None
) -> list[Any]:
    """Held-out scenes: ``n_per_family`` per family and difficulty, from the validation seed and
    room pool (disjoint from the training pool and from chimein-bench-v0's)."""
    from chimein.scenes.render import render
    from chimein.scenes.rir import RIRCache
    from chimein.scenes.sampler import sample_scene, scene_seed

    cache = RIRCache(cache_dir=rir_cache_dir)
    out = []
    base = {k: v for k, v in dict(scenes_cfg).items() if k not in ("family", "difficulty")}
    for d in val.difficulties:
        for fam in val.families:
            cfg = {
                **base,
                "family": fam,
                "difficulty": d,
                "room_pool_seed": int(val.room_pool_seed),
                "multi_event_duration_s": list(val.multi_event_duration_s),
            }
            for i in range(int(val.n_per_family)):
                seed = scene_seed(int(val.seed), len(out))
                out.append(
                    render(sample_scene(cfg, seed, scene_id=f"val-{d}-{fam}-{i}"), cache=cache)
                )
    return out


def rollout_metrics(
    model: TimingLM,
    codebook: Codebook,
    scenes: Sequence[Any],
    chunk_s: float,
    logit_bias: Sequence[float] = (0.0, 0.0, 0.0),
    batch_size: int = 64,
    speak_s: float = 2.0,
    threads: int = 1,
    groups: bool = False,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Play ``scenes`` with the model as an :class:`~chimein.agents.lm_policy.LMPolicy` through the
    env; return the overall metrics of :func:`chimein.eval.metrics.aggregate` (all of its groups
    with ``groups=True``) and the infos.

    Runs with ``threads`` torch threads (restored afterwards): streaming steps are many small
    operations, which extra threads slow down on a busy machine."""
    from chimein.agents.lm_policy import LMPolicy
    from chimein.envs.scoring import ActionLog
    from chimein.eval.metrics import aggregate, make_episode
    from chimein.eval.runner import rollout

    was_training = model.training
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    ck = Checkpoint(
        Path("."),
        model,
        codebook,
        {
            "chunk_s": chunk_s,
            "units_per_chunk": int(round(chunk_s / codebook.features.unit_s)),
            "inference": {"logit_bias": list(logit_bias)},
        },
    )
    try:
        policy = LMPolicy(ck, device=next(model.parameters()).device)
        policy.name = "validation"
        episodes, infos = [], []
        order = sorted(range(len(scenes)), key=lambda i: scenes[i].audio.shape[0])
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            res = rollout(
                [scenes[i] for i in idx], policy, {"chunk_ms": chunk_s * 1000.0, "speak_s": speak_s}
            )
            for i, info in zip(idx, res, strict=True):
                spec = scenes[i].spec
                tier = spec.difficulty
                episodes.append(
                    make_episode(
                        spec.annotations,
                        ActionLog.from_dict(info["action_log"]),
                        split=f"{tier}/{spec.family}",
                        family=spec.family,
                        tier=tier,
                        scene_id=spec.id,
                        speak_s=speak_s,
                    )
                )
                infos.append({**info, "index": i})
    finally:
        torch.set_num_threads(prev_threads)
        model.train(was_training)
    agg = aggregate(episodes, resamples=0)
    return (agg if groups else agg["overall"]), infos


_VAL_KEYS = (
    "normalized_reward",
    "mean_reward",
    "timeliness",
    "hit_rate",
    "miss_rate",
    "safety_miss_rate",
    "interruptions_per_turn",
    "turn_interruption_rate",
    "pause_takeover_rate",
    "false_alarms_per_min",
    "ignore_false_alarm_rate",
    "respond_recall",
    "intervene_recall",
    "latency_p50",
    "actions_per_min",
)


def _scalar(m: Mapping[str, Any], k: str) -> float | None:
    v = m.get(k)
    v = v.get("value") if isinstance(v, Mapping) else v
    return None if v is None or not math.isfinite(float(v)) else float(v)


# ============================================================================================
# Training
# ============================================================================================
def _lr_lambda(warmup: int, total: int, floor: float) -> Any:
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        frac = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * frac))

    return f


def _param_groups(model: torch.nn.Module, wd: float) -> list[dict[str, Any]]:
    seen: set[int] = set()
    decay, no = [], []
    for _, p in model.named_parameters():
        if id(p) in seen or not p.requires_grad:
            continue
        seen.add(id(p))
        (decay if p.ndim >= 2 else no).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no, "weight_decay": 0.0}]


class TrainModule(torch.nn.Module):
    """What the optimiser trains: the timing LM and the auxiliary dense head (a linear map of the
    final hidden state at each chunk's action position to the logits of
    :data:`~chimein.training.labels.DENSE_TARGETS`; used only in training, not saved in
    checkpoints)."""

    def __init__(self, model: TimingLM) -> None:
        super().__init__()
        self.model = model
        self.aux = torch.nn.Linear(model.cfg.hidden_size, len(DENSE_TARGETS))


def compute_loss(
    model: TimingLM,
    batch: Mapping[str, torch.Tensor],
    class_w: torch.Tensor,
    unit_loss_weight: float,
    aux: torch.nn.Module | None = None,
    aux_loss_weight: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The training loss of a batch (see the module docstring) and its parts."""
    ids, am = batch["input_ids"], batch["attention_mask"]
    h = model.hidden(ids, am)
    idx = batch["act_index"]
    ha = h.gather(1, idx[..., None].expand(-1, -1, h.shape[-1]))
    logits = model.lm.lm_head(ha)  # (B, C, V)
    label = batch["act_label"]
    target = torch.as_tensor(ACTION_IDS, device=ids.device)[label]
    ce = (
        F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none")
        .view_as(label)
        .float()
    )
    w = batch["act_weight"] * class_w[label]
    loss_act = (ce * w).sum() / w.sum().clamp_min(1e-6)
    parts = {"loss_act": loss_act.detach()}
    loss = loss_act
    if unit_loss_weight > 0:
        tgt = ids[:, 1:]
        m = (tgt >= UNIT_OFFSET) & (am[:, 1:] > 0)
        lg = model.lm.lm_head(h[:, :-1][m])
        loss_unit = F.cross_entropy(lg, tgt[m])
        loss = loss + unit_loss_weight * loss_unit
        parts["loss_unit"] = loss_unit.detach()
    if aux is not None and aux_loss_weight > 0 and "dense" in batch:
        cm = batch["chunk_mask"]
        bce = F.binary_cross_entropy_with_logits(aux(ha).float(), batch["dense"], reduction="none")
        loss_dense = (bce.mean(-1) * cm).sum() / cm.sum().clamp_min(1.0)
        loss = loss + aux_loss_weight * loss_dense
        parts["loss_dense"] = loss_dense.detach()
    with torch.no_grad():
        act_lg = logits[..., torch.as_tensor(ACTION_IDS, device=ids.device)]
        pred = act_lg.argmax(-1)
        valid = batch["act_weight"] > 0
        for c, name in enumerate(("wait", "respond", "intervene")):
            sel = valid & (label == c)
            parts[f"n_{name}"] = sel.sum()
            parts[f"correct_{name}"] = (sel & (pred == c)).sum()
        mass = torch.logsumexp(act_lg.float(), -1) - torch.logsumexp(logits.float(), -1)
        parts["log_action_mass"] = (mass * valid).sum() / valid.sum().clamp_min(1)
    return loss, parts


def _plot_examples(
    writer: Any,
    infos: Sequence[Mapping[str, Any]],
    scenes: Sequence[Any],
    step: int,
    n: int,
    tmpdir: Path,
) -> None:
    if n <= 0:
        return
    import matplotlib.image as mpimg

    from chimein.envs.scoring import ActionLog
    from chimein.scenes.show import plot_scene

    picks = sorted(
        infos, key=lambda i: (-(scenes[i["index"]].spec.family == "multi_event"), i["index"])
    )[:n]
    for j, info in enumerate(picks):
        sc = scenes[info["index"]]
        log = ActionLog.from_dict(info["action_log"])
        acts = [
            (float(t), int(a))
            for t, a, e in zip(log.times_s, log.actions, log.effective, strict=True)
            if a and e
        ]
        png = plot_scene(
            sc.spec,
            sc.audio,
            tmpdir / f"ex{j}.png",
            actions=acts,
            title=f"step {step}: {sc.spec.id} reward {info['outcome']['reward']:.2f}",
            dpi=60,
        )
        writer.add_image(
            f"val/example_{j}", mpimg.imread(str(png))[..., :3], step, dataformats="HWC"
        )


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
    torch.set_num_threads(int(train.threads))
    device = torch.device(
        train.device if train.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    codebook = Codebook.load(codebook_path)
    tok = AudioTokenizer(codebook)
    fc = codebook.features
    upc_f = train.chunk_s / fc.unit_s
    if abs(upc_f - round(upc_f)) > 1e-6 or round(upc_f) < 1:
        raise SpecError(
            f"train: field 'chunk_s': {train.chunk_s} s is not a whole number of "
            f"{fc.unit_s * 1000:g} ms units"
        )
    upc = int(round(upc_f))
    max_chunks = min(int(train.max_chunks), lm_cfg.window // (upc + 1))
    labels, data, val = train.label_cfg, train.data_cfg, train.val_cfg
    run_cfg = {
        "codebook": str(Path(codebook_path).resolve()),
        "codebook_digest": codebook.digest,
        "lm": lm_cfg.to_dict(),
        "train": train.to_dict(),
        "scenes": json.loads(json.dumps(dict(scenes_cfg))),
    }
    # settings that may change on resume without changing the result's meaning
    volatile = {
        "max_minutes",
        "progress",
        "log_every",
        "threads",
        "steps",
        "keep_checkpoints",
        "device",
    }
    ident = {**run_cfg, "train": {k: v for k, v in run_cfg["train"].items() if k not in volatile}}
    ident["train"]["data"] = {
        k: v
        for k, v in dict(ident["train"]["data"]).items()
        if k not in ("workers", "prepare_workers", "cache_dir", "rir_cache_dir")
    }

    spec = SourceSpec(
        kind=data.source,
        config=dict(scenes_cfg),
        difficulties=tuple(data.difficulties or ()),
        seed=int(data.seed),
        dataset=data.dataset,
        rir_cache_dir=data.rir_cache_dir,
    )
    cache_dir = data.cache_dir or str(out / "episodes")
    source = EpisodeSource(spec, tok, train.chunk_s, cache_dir=cache_dir)
    pool = None if not data.pool else int(data.pool)
    if spec.kind == "dataset" and pool is None:
        pool = len(source)
    if data.prepare_workers and pool:
        prepare_cache(
            codebook_path,
            spec,
            train.chunk_s,
            cache_dir,
            range(pool),
            data.prepare_workers,
            progress=train.progress,
        )

    # model, optimiser, schedule (initialised from the seed without touching the global RNG)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(train.seed))
        model = TimingLM(lm_cfg, codebook.size)
        module = TrainModule(model)
    module.to(device).train()
    opt = torch.optim.AdamW(
        _param_groups(module, train.weight_decay), lr=train.lr, betas=(0.9, 0.98), eps=1e-8
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, _lr_lambda(train.warmup_steps, train.steps, train.min_lr_ratio)
    )
    step = 0
    state_dir = out / STATE_DIR
    meta: dict[str, Any] = {}
    if resume and (state_dir / "state.json").is_file():
        prev = json.loads((state_dir / "state.json").read_text(encoding="utf-8")).get("identity")
        if prev != json.loads(json.dumps(ident)):
            raise SpecError(
                f"{state_dir}: the run in {out} was started with another configuration; resume with "
                "the same settings, or use a new out= (or resume=false to start over)"
            )
        meta = load_state(state_dir, module, opt, sched)
        step = int(meta["step"])
        say(f"resuming {out} at step {step}")
    counts = (
        np.asarray(meta["label_counts"])
        if "label_counts" in meta
        else label_stats(source, range(min(64, pool or 64)), labels, train.seed)
    )
    cw = class_weights(counts, train.class_weight_power, train.max_class_weight)
    class_w = torch.as_tensor(cw, device=device)
    n_params = model.num_parameters()
    say(
        f"timing LM: {n_params / 1e6:.2f}M parameters, window {lm_cfg.window} tokens; label counts "
        f"{counts.tolist()} -> class weights {np.round(cw, 2).tolist()}"
    )
    atomic_write_text(
        out / "train.json",
        json.dumps(
            {**run_cfg, "n_params": n_params, "label_counts": counts.tolist()},
            indent=1,
            sort_keys=True,
        ),
    )

    val_scenes = (
        validation_scenes(scenes_cfg, val, data.rir_cache_dir)
        if val.every > 0 or val.calibrate
        else []
    )
    val_eps = [_episode_of(s, tok, train.chunk_s) for s in val_scenes]
    writer = SummaryWriter(str(out / "tb"), purge_step=step if step else None)
    maker = BatchMaker(source, train.batch_size, max_chunks, labels, train.seed, pool)
    loader = make_loader(maker, step, train.steps, int(data.workers))
    info_base = {"identity": ident, "label_counts": counts.tolist()}

    def checkpoint(
        step_: int,
        final: bool = False,
        bias: Sequence[float] = (0.0, 0.0, 0.0),
        extra: Mapping[str, Any] | None = None,
    ) -> Path:
        dest = out / "final" if final else out / "checkpoints" / f"step-{step_:06d}"
        save_checkpoint(
            dest,
            model,
            codebook,
            chunk_s=train.chunk_s,
            inference={"logit_bias": list(bias)},
            training={**run_cfg, "step": step_},
            extra=extra,
        )
        if not final:
            ck = sorted((out / "checkpoints").glob("step-*"))
            for old in ck[: max(0, len(ck) - int(train.keep_checkpoints))]:
                shutil.rmtree(old, ignore_errors=True)
        return dest

    bar = None
    if train.progress:
        from tqdm import tqdm

        bar = tqdm(
            total=train.steps, initial=step, desc="train supervised", unit="step", file=sys.stderr
        )
    t_start = time.perf_counter()
    t_log, tokens_log, steps_log = t_start, 0, 0
    acc: dict[str, float] = {}
    stopped_early = False
    tmpdir = Path(tempfile.mkdtemp(prefix="chimein-train-"))
    try:
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            loss, parts = compute_loss(
                model, batch, class_w, train.unit_loss_weight, module.aux, train.aux_loss_weight
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = (
                torch.nn.utils.clip_grad_norm_(module.parameters(), train.grad_clip)
                if train.grad_clip
                else None
            )
            opt.step()
            sched.step()
            step += 1
            tokens_log += int(batch["attention_mask"].sum())
            steps_log += 1
            for k, v in parts.items():
                acc[k] = acc.get(k, 0.0) + float(v)
            acc["loss"] = acc.get("loss", 0.0) + float(loss.detach())
            if gnorm is not None:
                acc["grad_norm"] = acc.get("grad_norm", 0.0) + float(gnorm)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss):.3f}")
            if on_step is not None:
                on_step(
                    step, {"loss": float(loss.detach()), **{k: float(v) for k, v in parts.items()}}
                )
            if step % train.log_every == 0 or step == train.steps:
                now = time.perf_counter()
                for k in (
                    "loss",
                    "loss_act",
                    "loss_unit",
                    "loss_dense",
                    "grad_norm",
                    "log_action_mass",
                ):
                    if k in acc:
                        writer.add_scalar(f"train/{k}", acc[k] / steps_log, step)
                for name in ("wait", "respond", "intervene"):
                    if acc.get(f"n_{name}"):
                        writer.add_scalar(
                            f"train/acc_{name}", acc[f"correct_{name}"] / acc[f"n_{name}"], step
                        )
                writer.add_scalar("train/lr", sched.get_last_lr()[0], step)
                writer.add_scalar("perf/steps_per_s", steps_log / (now - t_log), step)
                writer.add_scalar("perf/tokens_per_s", tokens_log / (now - t_log), step)
                acc, t_log, tokens_log, steps_log = {}, now, 0, 0
            if val.every > 0 and step % val.every == 0 and step < train.steps:
                _validate(
                    model,
                    codebook,
                    val_scenes,
                    val_eps,
                    train,
                    labels,
                    class_w,
                    writer,
                    step,
                    tmpdir,
                    val,
                    max_chunks,
                    aux=module.aux,
                )
            over = train.max_minutes is not None and (
                time.perf_counter() - t_start
            ) / 60.0 >= float(train.max_minutes)
            if step % train.ckpt_every == 0 or step == train.steps or over:
                checkpoint(step)
                save_state(state_dir, module, opt, sched, step, info_base)
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
    # ---- final: validation, calibration, checkpoint
    bias = [0.0, 0.0, 0.0]
    extra: dict[str, Any] = {
        "train_seconds_this_session": round(train_s, 1),
        "steps": step,
        "stopped_early": stopped_early,
    }
    if val_scenes:
        metrics = _validate(
            model,
            codebook,
            val_scenes,
            val_eps,
            train,
            labels,
            class_w,
            writer,
            step,
            tmpdir,
            val,
            max_chunks,
            aux=module.aux,
        )
        extra["validation"] = {k: _scalar(metrics, k) for k in _VAL_KEYS}
        if val.calibrate:
            bias, cal = calibrate_bias(
                model,
                codebook,
                val_scenes,
                train.chunk_s,
                val.biases,
                val.batch_size,
                say,
                val.max_interruptions_per_turn,
            )
            extra["calibration"] = cal
            writer.add_scalar("val/calibrated_bias", bias[1], step)
    final = checkpoint(step, final=True, bias=bias, extra=extra)
    writer.close()
    shutil.rmtree(tmpdir, ignore_errors=True)
    say(
        f"final checkpoint: {final} (logit_bias {bias}); trained {train_s / 60:.1f} min this session"
    )
    return final


def calibrate_bias(
    model: TimingLM,
    codebook: Codebook,
    scenes: Sequence[Any],
    chunk_s: float,
    biases: Sequence[float],
    batch_size: int = 64,
    log: Any = None,
    max_interruptions_per_turn: float | None = None,
) -> tuple[list[float], dict[str, Any]]:
    """Pick the decide-head logit bias ``[0, b, b]`` on ``scenes`` (streaming rollouts through
    the env for every ``b`` in ``biases``): the best mean reward among the biases whose
    interruption rate is at most ``max_interruptions_per_turn`` (all of them when None; the
    least interrupting one when none qualifies). Returns the bias and a summary table."""
    rows: list[tuple[float, Mapping[str, Any]]] = []
    table = []
    for b in biases:
        m, _ = rollout_metrics(
            model, codebook, scenes, chunk_s, (0.0, float(b), float(b)), batch_size
        )
        rows.append((float(b), m))
        keys = ("mean_reward", "timeliness", "interruptions_per_turn", "false_alarms_per_min")
        table.append({"bias": float(b), **{k: _scalar(m, k) for k in keys}})
        if log is not None:
            log(
                f"calibration: bias {b:+.2f} -> mean reward {_scalar(m, 'mean_reward')}, "
                f"timeliness {_scalar(m, 'timeliness')}, "
                f"interruptions/turn {_scalar(m, 'interruptions_per_turn')}"
            )

    def reward(row: tuple[float, Mapping[str, Any]]) -> float:
        r = _scalar(row[1], "mean_reward")
        return -math.inf if r is None else r

    def interruptions(row: tuple[float, Mapping[str, Any]]) -> float:
        v = _scalar(row[1], "interruptions_per_turn")
        return 0.0 if v is None else v  # no user turns: nothing to interrupt

    ok = rows
    if max_interruptions_per_turn is not None:
        ok = [r for r in rows if interruptions(r) <= float(max_interruptions_per_turn) + 1e-12]
    if not rows:
        return [0.0, 0.0, 0.0], {"logit_bias": [0.0, 0.0, 0.0], "table": table}
    best = max(ok, key=reward) if ok else min(rows, key=lambda r: (interruptions(r), -reward(r)))
    bias = [0.0, best[0], best[0]]
    return bias, {
        "logit_bias": bias,
        "n_scenes": len(scenes),
        "max_interruptions_per_turn": max_interruptions_per_turn,
        "table": table,
        "validation": {k: _scalar(best[1], k) for k in _VAL_KEYS},
    }


def calibrate_checkpoint(
    path: str | Path,
    scenes_cfg: Mapping[str, Any],
    val: ValConfig | Mapping[str, Any] | None = None,
    log: Any = None,
) -> list[float]:
    """Calibrate an existing checkpoint's ``inference.logit_bias`` on the validation scenes of
    ``val`` (e.g. after training elsewhere) and rewrite its ``chimein.json`` atomically."""
    from chimein.agents.checkpoint import META_FILE, load_checkpoint

    v = val if isinstance(val, ValConfig) else _from_mapping(ValConfig, dict(val or {}), "val")
    ck = load_checkpoint(path)
    scenes = validation_scenes(scenes_cfg, v)
    bias, cal = calibrate_bias(
        ck.model,
        ck.codebook,
        scenes,
        ck.chunk_s,
        v.biases,
        v.batch_size,
        log,
        v.max_interruptions_per_turn,
    )
    meta = dict(ck.meta)
    meta["inference"] = {**dict(meta.get("inference", {})), "logit_bias": bias}
    meta["calibration"] = cal
    atomic_write_text(Path(path) / META_FILE, json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return bias


def _episode_of(scene: Any, tok: AudioTokenizer, chunk_s: float) -> Any:
    from chimein.training.data import tokenize_scene

    return tokenize_scene(scene, tok, chunk_s)


@torch.no_grad()
def _validate(
    model: TimingLM,
    codebook: Codebook,
    scenes: Sequence[Any],
    eps: Sequence[Any],
    train: TrainConfig,
    labels: LabelConfig,
    class_w: torch.Tensor,
    writer: Any,
    step: int,
    tmpdir: Path,
    val: ValConfig,
    max_chunks: int,
    aux: torch.nn.Module | None = None,
) -> dict[str, Any]:
    """Teacher-forced validation loss/accuracy and streaming rollout metrics -> TensorBoard."""
    was = model.training
    model.eval()
    upc = int(round(train.chunk_s / codebook.features.unit_s))
    dev = next(model.parameters()).device
    tot: dict[str, float] = {}
    for i in range(0, len(eps), 8):
        group = eps[i : i + 8]
        b = make_batch(
            group,
            [item_rng(train.seed, _VAL_BATCH, i + j) for j in range(len(group))],
            upc,
            train.chunk_s,
            max_chunks,
            labels,
        )
        batch = {k: torch.from_numpy(v).to(dev) for k, v in b.items()}
        _, parts = compute_loss(
            model, batch, class_w, train.unit_loss_weight, aux, train.aux_loss_weight
        )
        n = float(batch["act_weight"].sum())
        tot["loss_act"] = tot.get("loss_act", 0.0) + float(parts["loss_act"]) * n
        tot["n"] = tot.get("n", 0.0) + n
        for k, v in parts.items():
            if k.startswith(("n_", "correct_")):
                tot[k] = tot.get(k, 0.0) + float(v)
    writer.add_scalar("val/loss_act", tot["loss_act"] / max(tot["n"], 1.0), step)
    for name in ("wait", "respond", "intervene"):
        if tot.get(f"n_{name}"):
            writer.add_scalar(f"val/acc_{name}", tot[f"correct_{name}"] / tot[f"n_{name}"], step)
    metrics, infos = rollout_metrics(
        model, codebook, scenes, train.chunk_s, batch_size=val.batch_size
    )
    for k in _VAL_KEYS:
        v = _scalar(metrics, k)
        if v is not None:
            writer.add_scalar(f"val/{k}", v, step)
    _plot_examples(writer, infos, scenes, step, val.examples, tmpdir)
    writer.flush()
    model.train(was)
    return metrics


# ============================================================================================
# Cache preparation
# ============================================================================================
def _prepare_job(args: tuple[str, dict[str, Any], float, str, int]) -> int:
    cb_path, spec_d, chunk_s, cache_dir, i = args
    torch.set_num_threads(1)
    global _PREP
    key = (cb_path, json.dumps(spec_d, sort_keys=True), chunk_s, cache_dir)
    if _PREP is None or _PREP[0] != key:
        spec = SourceSpec(**{**spec_d, "difficulties": tuple(spec_d["difficulties"])})
        _PREP = (
            key,
            EpisodeSource(spec, AudioTokenizer(Codebook.load(cb_path)), chunk_s, cache_dir),
        )
    _PREP[1].get(i)
    return i


_PREP: Any = None


def prepare_cache(
    codebook_path: str | Path,
    spec: SourceSpec,
    chunk_s: float,
    cache_dir: str | Path,
    indices: Sequence[int] | range,
    workers: int,
    progress: bool = True,
) -> None:
    """Tokenize and cache episodes ``indices`` with a process pool (skips cached ones)."""
    from chimein.parallel import imap_unordered

    src = EpisodeSource(spec, AudioTokenizer(Codebook.load(codebook_path)), chunk_s, cache_dir)
    assert src.cache is not None
    todo = [int(i) for i in indices if not (src.cache / f"{int(i):08d}.npz").is_file()]
    if not todo:
        return
    spec_d = {
        "kind": spec.kind,
        "config": dict(spec.config),
        "difficulties": list(spec.difficulties),
        "seed": spec.seed,
        "dataset": spec.dataset,
        "rir_cache_dir": spec.rir_cache_dir,
    }
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="episodes", unit="ep", file=sys.stderr)
    jobs = [(str(codebook_path), spec_d, float(chunk_s), str(cache_dir), i) for i in todo]
    for _ in imap_unordered(_prepare_job, jobs, workers=workers):
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
