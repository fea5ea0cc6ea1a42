"""Setting up a supervised run: its fixed facts, the model and optimiser (or a resumed state),
the training episodes and the class weights.

Each phase keeps the order of the random draws and torch operations of the run, so a run
trained from the same seed gives the same bytes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chimein.agents.lm.model import LMConfig, TimingLM
from chimein.agents.lm.tokenizer import AudioTokenizer, Codebook
from chimein.errors import SpecError
from chimein.io import atomic_write_text
from chimein.training.data import EpisodeSource, SourceSpec, class_weights, label_stats
from chimein.training.labels import LabelConfig
from chimein.training.supervised.config import DataConfig, TrainConfig, ValConfig
from chimein.training.supervised.episodes import prepare_cache
from chimein.training.supervised.loss import TrainModule
from chimein.training.supervised.state import STATE_DIR, load_state

__all__ = [
    "Learner",
    "Run",
    "build_learner",
    "lr_lambda",
    "open_episodes",
    "param_groups",
    "setup_run",
    "weigh_classes",
]

# settings that may change on resume without changing the result's meaning
_VOLATILE = {"max_minutes", "progress", "log_every", "threads", "steps", "keep_checkpoints", "device"}
_VOLATILE_DATA = ("workers", "prepare_workers", "cache_dir", "rir_cache_dir")
_VOLATILE_VAL = ("workers",)


@dataclass
class Run:
    """The fixed facts of a run, derived once from its arguments.

    ``run_cfg`` is what ``train.json`` and every checkpoint record; ``ident`` is the part of it
    a resumed run must share with the state it resumes.
    """

    out: Path
    codebook_path: str | Path
    codebook: Codebook
    tok: AudioTokenizer
    lm_cfg: LMConfig
    train: TrainConfig
    labels: LabelConfig
    data: DataConfig
    val: ValConfig
    scenes_cfg: Mapping[str, Any]
    device: torch.device
    max_chunks: int
    run_cfg: dict[str, Any]
    ident: dict[str, Any]
    say: Callable[[str], None]


@dataclass
class Learner:
    """What the loop updates: the model (inside the trained module), optimiser, schedule and the
    step; ``meta`` is the JSON of a resumed state (empty for a fresh run)."""

    model: TimingLM
    module: TrainModule
    opt: torch.optim.Optimizer
    sched: Any
    step: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


def setup_run(
    codebook_path: str | Path,
    out: str | Path,
    lm_cfg: LMConfig,
    train: TrainConfig,
    scenes_cfg: Mapping[str, Any],
    say: Callable[[str], None],
) -> Run:
    """Threads, device, output folder, codebook and the run's recorded configuration; checks that
    a chunk is a whole number of codebook units."""
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
    ident = {**run_cfg, "train": {k: v for k, v in run_cfg["train"].items() if k not in _VOLATILE}}
    ident["train"]["data"] = {
        k: v for k, v in dict(ident["train"]["data"]).items() if k not in _VOLATILE_DATA
    }
    ident["train"]["val"] = {
        k: v for k, v in dict(ident["train"]["val"]).items() if k not in _VOLATILE_VAL
    }
    return Run(
        out=out,
        codebook_path=codebook_path,
        codebook=codebook,
        tok=tok,
        lm_cfg=lm_cfg,
        train=train,
        labels=labels,
        data=data,
        val=val,
        scenes_cfg=scenes_cfg,
        device=device,
        max_chunks=max_chunks,
        run_cfg=run_cfg,
        ident=ident,
        say=say,
    )


def open_episodes(run: Run) -> tuple[EpisodeSource, int | None]:
    """The training episodes and the size of the pool cycled over (None: a fresh scene for every
    item); fills the episode cache first with ``prepare_workers`` processes."""
    train, data = run.train, run.data
    spec = SourceSpec(
        kind=data.source,
        config=dict(run.scenes_cfg),
        difficulties=tuple(data.difficulties or ()),
        seed=int(data.seed),
        dataset=data.dataset,
        rir_cache_dir=data.rir_cache_dir,
    )
    cache_dir = data.cache_dir or str(run.out / "episodes")
    source = EpisodeSource(spec, run.tok, train.chunk_s, cache_dir=cache_dir)
    pool = None if not data.pool else int(data.pool)
    if spec.kind == "dataset" and pool is None:
        pool = len(source)
    if data.prepare_workers and pool:
        prepare_cache(
            run.codebook_path,
            spec,
            train.chunk_s,
            cache_dir,
            range(pool),
            data.prepare_workers,
            progress=train.progress,
        )
    return source, pool


def lr_lambda(warmup: int, total: int, floor: float) -> Callable[[int], float]:
    """The learning-rate factor of a step: linear warmup, then cosine decay to ``floor``."""

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        frac = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * frac))

    return f


def param_groups(model: torch.nn.Module, wd: float) -> list[dict[str, Any]]:
    """AdamW's groups: weight decay on matrices, none on vectors (biases, norms)."""
    seen: set[int] = set()
    decay, no = [], []
    for _, p in model.named_parameters():
        if id(p) in seen or not p.requires_grad:
            continue
        seen.add(id(p))
        (decay if p.ndim >= 2 else no).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no, "weight_decay": 0.0}]


def build_learner(run: Run, resume: bool) -> Learner:
    """Model, optimiser and schedule, initialised from the seed without touching the global RNG;
    restored from ``OUT/state`` when ``resume`` and it exists (its identity must match)."""
    train = run.train
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(train.seed))
        model = TimingLM(run.lm_cfg, run.codebook.size)
        module = TrainModule(model, len(run.labels.dense_targets))
    module.to(run.device).train()
    opt = torch.optim.AdamW(
        param_groups(module, train.weight_decay), lr=train.lr, betas=(0.9, 0.98), eps=1e-8
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lr_lambda(train.warmup_steps, train.steps, train.min_lr_ratio)
    )
    learner = Learner(model, module, opt, sched)
    state_dir = run.out / STATE_DIR
    if resume and (state_dir / "state.json").is_file():
        prev = json.loads((state_dir / "state.json").read_text(encoding="utf-8")).get("identity")
        if prev != json.loads(json.dumps(run.ident)):
            raise SpecError(
                f"{state_dir}: the run in {run.out} was started with another configuration; resume "
                "with the same settings, or use a new out= (or resume=false to start over)"
            )
        learner.meta = load_state(state_dir, module, opt, sched)
        learner.step = int(learner.meta["step"])
        run.say(f"resuming {run.out} at step {learner.step}")
    return learner


def weigh_classes(
    run: Run, learner: Learner, source: EpisodeSource, pool: int | None
) -> tuple[np.ndarray, torch.Tensor]:
    """The label counts (from the resumed state, else from the first episodes) and the class
    weights of the action loss; reports them and writes ``OUT/train.json``."""
    train, meta = run.train, learner.meta
    counts = (
        np.asarray(meta["label_counts"])
        if "label_counts" in meta
        else label_stats(source, range(min(64, pool or 64)), run.labels, train.seed)
    )
    cw = class_weights(counts, train.class_weight_power, train.max_class_weight)
    class_w = torch.as_tensor(cw, device=run.device)
    n_params = learner.model.num_parameters()
    run.say(
        f"timing LM: {n_params / 1e6:.2f}M parameters, window {run.lm_cfg.window} tokens; label "
        f"counts {counts.tolist()} -> class weights {np.round(cw, 2).tolist()}"
    )
    atomic_write_text(
        run.out / "train.json",
        json.dumps(
            {**run.run_cfg, "n_params": n_params, "label_counts": counts.tolist()},
            indent=1,
            sort_keys=True,
        ),
    )
    return counts, class_w
