"""``chimein train codebook`` and ``chimein train supervised``: Hydra config -> training calls."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chimein.cli.common import container, positional_runs, say
from chimein.errors import ConfigError


def codebook(cfg: Any) -> int:
    """Fit the audio codebook: ``out=codebook.safetensors [codebook.size=512] [scenes=...]``."""
    import torch

    from chimein.training.codebook import (
        CodebookConfig,
        collect_units,
        describe,
        fit_codebook,
        source_from_config,
        usage,
    )

    c = container(cfg)
    cb = CodebookConfig.from_mapping(c["codebook"])
    out = Path(str(c["out"]))
    if out.suffix != ".safetensors":
        raise ConfigError(f"train codebook: field 'out': {out} should end in .safetensors")
    torch.set_num_threads(cb.threads)
    src = source_from_config(c["scenes"], cb.difficulties, cb.scene_seed, cb.dataset, cb.rir_cache_dir)
    n = cb.n_scenes
    if src.kind == "dataset":
        from chimein.scenes.dataset import SceneDataset

        n = min(n, len(SceneDataset(str(src.dataset))))
    t0 = time.perf_counter()
    units = collect_units(src, n, cb.features, cb.max_units_per_scene, seed=cb.seed, workers=cb.workers or None,
                          progress=bool(c.get("progress", True)))
    t1 = time.perf_counter()
    say(
        f"collected {len(units)} units of {cb.features.unit_s * 1000:g} ms from {n} scenes in {t1 - t0:.1f} s; "
        f"fitting {cb.size} centroids"
    )
    book = fit_codebook(
        units,
        cb.features,
        cb.size,
        iters=cb.iters,
        seed=cb.seed,
        init_sample=cb.init_sample,
        meta={"scenes": src.identity(), "n_scenes": n, "collect_s": round(t1 - t0, 1)},
    )
    held = units[:: max(1, len(units) // 20000)]
    book = type(book)(
        book.centroids,
        book.mean,
        book.std,
        book.features,
        {**dict(book.meta or {}), **usage(book, held)},
    )
    book.save(out)
    say(describe(book, out))
    return 0


def supervised(cfg: Any) -> int:
    """Train the timing LM: ``codebook=PATH out=DIR [train.steps=...] [lm.hidden_size=...]``."""
    from chimein.agents.lm.model import LMConfig
    from chimein.training.supervised import TrainConfig, train_supervised

    c = container(cfg)
    lm = LMConfig.from_mapping(c.get("lm") or {}, where="lm")
    train = TrainConfig.from_mapping(c.get("train") or {})
    final = train_supervised(
        str(c["codebook"]),
        str(c["out"]),
        lm,
        train,
        c.get("scenes") or {},
        resume=bool(c.get("resume", True)),
        log=say,
    )
    print(final)
    return 0


def calibrate(cfg: Any) -> int:
    """Re-pick a checkpoint's decide-head logit bias: ``CKPT [train.val.biases=[...]]
    [train.val.max_interruptions_per_turn=0.1]`` (rewrites ``CKPT/chimein.json`` atomically)."""
    from chimein.training.supervised import calibrate_checkpoint

    c = container(cfg)
    bias = calibrate_checkpoint(str(c["checkpoint"]), c.get("scenes") or {}, c["train"]["val"],
                                log=say, progress=True)
    print(f"{c['checkpoint']}: logit_bias {bias}")
    return 0


@contextmanager
def _step_bar(desc: str, total: int, unit: str) -> Iterator[tuple[Callable[[str], None], Callable[..., None]]]:
    """A tqdm bar on stderr over an RL run's optimizer steps (updates): yields the run's ``log``
    (lines printed above the bar) and its per-step callback (``(step, scalars)``: absolute step,
    so a resumed run starts where it stopped)."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr)

    def log(msg: str) -> None:
        bar.write(msg, file=sys.stderr)

    def on_step(step: int, scalars: Any = None) -> None:
        bar.update(max(0, min(int(step), total) - bar.n))
        if bar.n >= total:  # done: what follows (calibration) shows its own bar in its place
            bar.close()

    try:
        yield log, on_step
    finally:
        bar.close()


def ppo(cfg: Any) -> int:
    """Refine a checkpoint with SB3 PPO: ``init=CKPT out=DIR [train.total_steps=N] ...``."""
    import math

    from chimein.training.ppo import PPOConfig, train_ppo

    c = container(cfg)
    pc = PPOConfig.from_mapping(c.get("train"))
    with _step_bar("train ppo", math.ceil(pc.total_steps / (pc.num_envs * pc.n_steps)), "update") as (log, step):
        final = train_ppo(str(c["init"]), str(c["out"]), pc, log=log, on_update=step)
    print(final)
    return 0


def grpo(cfg: Any) -> int:
    """Refine a checkpoint with TRL GRPO: ``init=CKPT out=DIR [train.steps=N] ...``."""
    from chimein.training.grpo import GRPORunConfig, train_grpo

    c = container(cfg)
    gc = GRPORunConfig.from_mapping(c.get("train"))
    say(f"train grpo: {gc.steps} steps of {gc.episodes_per_step} episodes (starting TRL)")
    with _step_bar("train grpo", gc.steps, "step") as (log, step):
        final = train_grpo(str(c["init"]), str(c["out"]), gc, log=log, on_step=step)
    print(final)
    return 0


def curves(cfg: Any) -> int:
    """``chimein train curves RUN_DIR [RUN_DIR ...] [out=curves.png] [tags=[...]] [smooth=0.6]``."""
    from chimein.training.curves import DEFAULT_TAGS, plot_curves

    c = container(cfg)

    runs = positional_runs(c)
    if not runs:
        raise ConfigError("no runs given: `chimein train curves OUT1 [OUT2 ...] out=curves.png`")
    out = c.get("out")
    if out is None:
        out = str(Path(runs[0]).resolve().parent / "curves.png")
    tags = c.get("tags")
    explicit = tags is not None  # named tags must exist; the defaults are skipped when absent
    if tags is None:
        tags = list(DEFAULT_TAGS)
    elif isinstance(tags, str):
        tags = [t for t in tags.split(",") if t]
    res = plot_curves(runs, out, tags=[str(t) for t in tags], smooth=float(c.get("smooth", 0.6)),
                      require_all=explicit)
    for t in res["skipped"]:
        print(f"skipped tag {t}: no run logged it", file=sys.stderr)
    print(f"wrote {res['png']} and {Path(res['json']).name}", file=sys.stderr)
    print(res["png"])
    return 0
