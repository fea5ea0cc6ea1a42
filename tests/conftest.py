"""Shared fixtures of chimein's tests: tiny timing-LM configs, checkpoints, codebooks and suites.

Everything expensive here is built once per session (``scope="session"``) and shared by the
test files that used to build their own copies. chimein is imported lazily inside the
fixtures, so collecting a test file that needs none of them does not load torch.

The environment is set up once, before any test module is imported: ``HF_HUB_OFFLINE`` keeps
``transformers`` from reaching the network for the timing LM's tiny configs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

if TYPE_CHECKING:
    from chimein.agents.lm.model import LMConfig, TimingLM
    from chimein.agents.lm.tokenizer import Codebook
    from chimein.eval.suites import MaterializedSuite, SuiteDef

#: easy, addressed-only scenes on a small room pool: what the training tests learn on
TRAIN_SCENES: dict[str, Any] = {
    "family": "addressed",
    "difficulty": "easy",
    "room_pool": 2,
    "positions_per_room": 4,
    "room_pool_seed": 5,
    "lead_s": [0.5, 1.0],
    "tail_s": [0.5, 1.0],
}
#: the smallest timing LM the training tests train (one layer, 32 wide)
TRAIN_LM: dict[str, Any] = dict(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1,
                                intermediate_size=64, window=300, value_hidden=8)
#: a tiny but two-layer timing LM with a short window, for decoding and serving tests
STREAM_LM: dict[str, Any] = dict(hidden_size=48, num_layers=2, num_heads=4, num_kv_heads=2,
                                 intermediate_size=96, window=24, value_hidden=16)
#: codebook size and mel bands of :data:`STREAM_LM`'s random codebook
STREAM_K, STREAM_MELS = 24, 8


@pytest.fixture(scope="session")
def train_scenes() -> dict[str, Any]:
    """The sampler config of :data:`TRAIN_SCENES` (a fresh copy per session)."""
    return {k: (list(v) if isinstance(v, list) else v) for k, v in TRAIN_SCENES.items()}


@pytest.fixture(scope="session")
def train_lm() -> LMConfig:
    """The :class:`~chimein.agents.lm.model.LMConfig` of :data:`TRAIN_LM`."""
    from chimein.agents.lm.model import LMConfig

    return LMConfig(**TRAIN_LM)


@pytest.fixture(scope="session")
def weak_ckpt(tmp_path_factory: pytest.TempPathFactory, train_scenes: dict[str, Any],
              train_lm: LMConfig) -> str:
    """A random-initialised tiny checkpoint whose decide head is biased towards WAIT.

    RL refinement (PPO and GRPO) must raise its reward on :data:`TRAIN_SCENES`.
    """
    import torch

    from chimein.agents.lm.checkpoint import save_checkpoint
    from chimein.agents.lm.model import TimingLM
    from chimein.agents.lm.tokenizer import FeatureConfig
    from chimein.training.codebook import collect_units, fit_codebook
    from chimein.training.data import SourceSpec

    torch.set_num_threads(1)
    fc = FeatureConfig(n_mels=16)
    units = collect_units(SourceSpec(kind="sampler", config=train_scenes, seed=3), 2, fc,
                          max_units_per_scene=300, seed=0, workers=1)
    cb = fit_codebook(units, fc, size=16, iters=5, seed=0)
    torch.manual_seed(0)
    model = TimingLM(train_lm, cb.size)
    d = tmp_path_factory.mktemp("ck") / "weak"
    save_checkpoint(d, model, cb, chunk_s=0.08, inference={"logit_bias": [0.0, -4.0, -4.0]})
    return str(d)


@pytest.fixture(scope="session")
def stream_lm() -> LMConfig:
    """The :class:`~chimein.agents.lm.model.LMConfig` of :data:`STREAM_LM`."""
    from chimein.agents.lm.model import LMConfig

    return LMConfig(**STREAM_LM)


@pytest.fixture(scope="session")
def make_stream_model(stream_lm: LMConfig) -> Callable[..., TimingLM]:
    """``make(seed=0, cfg=None)``: a :data:`STREAM_LM` model (or ``cfg``'s) in eval mode.

    Its weights are perturbed from the initialisation so that decisions depend on the context.
    The global torch generator is left as it was.
    """
    import torch

    from chimein.agents.lm.model import TimingLM

    def make(seed: int = 0, cfg: LMConfig | None = None) -> TimingLM:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            m = TimingLM(cfg or stream_lm, STREAM_K)
            for p in m.parameters():
                p.data.add_(0.08 * torch.randn_like(p))
        return m.eval()

    return make


@pytest.fixture(scope="session")
def make_stream_codebook() -> Callable[..., Codebook]:
    """``make(seed=0)``: a random :data:`STREAM_K`-unit codebook over :data:`STREAM_MELS` bands."""
    import numpy as np

    from chimein.agents.lm.tokenizer import Codebook, FeatureConfig

    fc = FeatureConfig(n_mels=STREAM_MELS)

    def make(seed: int = 0) -> Codebook:
        rng = np.random.default_rng(seed)
        return Codebook(rng.normal(size=(STREAM_K, fc.unit_dim)).astype(np.float32),
                        np.full(fc.unit_dim, -8.0, np.float32), np.full(fc.unit_dim, 3.0, np.float32), fc)

    return make


@pytest.fixture(scope="session")
def stream_ckpt(tmp_path_factory: pytest.TempPathFactory, make_stream_model: Callable[..., TimingLM],
                make_stream_codebook: Callable[..., Codebook]) -> str:
    """A saved :data:`STREAM_LM` checkpoint (model seed 4, codebook seed 0, no logit bias)."""
    from chimein.agents.lm.checkpoint import save_checkpoint

    d = tmp_path_factory.mktemp("lm") / "ckpt"
    save_checkpoint(d, make_stream_model(4), make_stream_codebook(0), chunk_s=0.08,
                    inference={"logit_bias": [0.0, 0.0, 0.0]})
    return str(d)


@pytest.fixture(scope="session")
def tiny_suite_def() -> SuiteDef:
    """A one-scene suite (one easy addressed scene): the smallest thing ``evaluate`` runs."""
    from chimein.eval.suites import SuiteDef

    return SuiteDef(name="tiny", revision=0, description="", seed=1, families=("addressed",),
                    tiers={"clean": {"difficulty": "easy"}}, scenes={"default": 1})


@pytest.fixture(scope="session")
def tiny_suite_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cache root that :func:`tiny_suite` is materialised under (pass it as ``cache_dir``)."""
    return tmp_path_factory.mktemp("tiny-suite")


@pytest.fixture(scope="session")
def tiny_suite(tiny_suite_def: SuiteDef, tiny_suite_cache: Path) -> MaterializedSuite:
    """:func:`tiny_suite_def`, materialised once per session under :func:`tiny_suite_cache`."""
    from chimein.eval.suites import materialize

    return materialize(tiny_suite_def, cache_dir=tiny_suite_cache, workers=1, progress=False)


@pytest.fixture(scope="session")
def write_pack() -> Callable[..., Path]:
    """A function writing a sound pack: ``write_pack(root, items, sample_rate=16000)`` with
    ``items`` ``(rel path, audio, manifest fields)``; each file is written as audio and gets a
    manifest line ``{"id": <file stem>, "path": "./<rel path>", **fields}``. Returns ``root``."""
    import json

    from chimein.scenes.audio import write_audio

    def write(root: Path, items: Any, sample_rate: int = 16000) -> Path:
        lines = []
        for rel, audio, fields in items:
            write_audio(root / rel, audio, sample_rate)
            lines.append(json.dumps({"id": Path(rel).stem, "path": "./" + rel, **fields}))
        (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
        return root

    return write
