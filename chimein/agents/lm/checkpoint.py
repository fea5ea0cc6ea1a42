"""Checkpoint directories of the timing LM: safetensors only, no hub, no pickles.

A checkpoint is a directory::

    CKPT/
      config.json, generation_config.json, model.safetensors   <- model.save_pretrained
      tokenizer.json, tokenizer_config.json                     <- the HF tokenizer
      codebook.safetensors                                      <- the audio codebook
      value_head.safetensors                                    <- the value head
      chimein.json                                              <- what chimein needs to run it

``chimein.json`` holds the format name and version, the stream format the model was trained
for (``chunk_s``, ``sample_rate``, ``units_per_chunk``), the feature and LM configs, inference
defaults (``logit_bias`` added to the decide head's logits) and the training config.

:func:`save_checkpoint` writes into a temporary sibling directory and renames it into place,
so an interrupted save never leaves a half-written checkpoint under the final name.
:func:`load_checkpoint` refuses anything else with a clear :class:`SpecError` -- in
particular directories holding only ``.bin``/``.pt`` pickles, which are never unpickled.

Examples
--------
>>> import tempfile, numpy as np
>>> from chimein.agents.lm.model import LMConfig, TimingLM
>>> from chimein.agents.lm.tokenizer import Codebook, FeatureConfig
>>> fc = FeatureConfig(n_mels=8)
>>> cb = Codebook(np.eye(8, fc.unit_dim, dtype=np.float32), np.zeros(fc.unit_dim, np.float32),
...               np.ones(fc.unit_dim, np.float32), fc)
>>> model = TimingLM(LMConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1,
...                           intermediate_size=64, window=16), n_units=8)
>>> d = tempfile.mkdtemp() + "/ckpt"
>>> _ = save_checkpoint(d, model, cb, chunk_s=0.08)
>>> ck = load_checkpoint(d)
>>> ck.meta["units_per_chunk"], ck.codebook.size
(2, 8)
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chimein.agents.lm.model import LMConfig, TimingLM
from chimein.agents.lm.tokenizer import Codebook, FeatureConfig, build_hf_tokenizer
from chimein.errors import SpecError
from chimein.io import atomic_write_dir, canonicalize_safetensors_file

__all__ = [
    "CHECKPOINT_FORMAT",
    "META_FILE",
    "Checkpoint",
    "explain_not_checkpoint",
    "is_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "chimein-timing-lm"
CHECKPOINT_VERSION = 1
META_FILE = "chimein.json"
CODEBOOK_FILE = "codebook.safetensors"
VALUE_HEAD_FILE = "value_head.safetensors"
_PICKLES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (eval mode), its codebook and metadata."""

    path: Path
    """The checkpoint directory."""
    model: TimingLM
    """The timing LM with its value head, in eval mode."""
    codebook: Codebook
    """The audio codebook the model's unit tokens index."""
    meta: dict[str, Any]
    """The parsed ``chimein.json``: format, chunk, features, LM config, inference defaults
    (``logit_bias``), training provenance."""

    @property
    def chunk_s(self) -> float:
        return float(self.meta["chunk_s"])

    @property
    def units_per_chunk(self) -> int:
        return int(self.meta["units_per_chunk"])

    def tokenizer(self) -> Any:
        """The Hugging Face tokenizer saved with the checkpoint."""
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast.from_pretrained(str(self.path), local_files_only=True)


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' per-file progress bars while saving/loading (restored afterwards)."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def is_checkpoint(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a directory with a chimein ``chimein.json`` of the right format."""
    p = Path(path) / META_FILE
    if not p.is_file():
        return False
    try:
        return json.loads(p.read_text(encoding="utf-8")).get("format") == CHECKPOINT_FORMAT
    except (OSError, json.JSONDecodeError, AttributeError):
        return False


def save_checkpoint(
    path: str | os.PathLike[str],
    model: TimingLM,
    codebook: Codebook,
    *,
    chunk_s: float = 0.08,
    inference: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint directory atomically (replacing an existing one).

    Parameters
    ----------
    path
        Destination directory.
    model, codebook
        What to save; the model is saved as float32 safetensors.
    chunk_s
        Decision chunk the model was trained on (a whole number of codebook units).
    inference
        Inference defaults, e.g. ``{"logit_bias": [0.0, -0.5, 0.0]}``.
    training
        The training configuration and provenance (stored verbatim).
    extra
        More metadata keys (validation metrics, ...).
    """
    from chimein._version import __version__

    fc = codebook.features
    units = chunk_s / fc.unit_s
    if abs(units - round(units)) > 1e-6 or round(units) < 1:
        raise SpecError(
            f"checkpoint: chunk_s={chunk_s} is not a whole number of {fc.unit_s * 1000:g} ms units"
        )
    if model.n_units != codebook.size:
        raise SpecError(
            f"checkpoint: the model has {model.n_units} unit tokens but the codebook {codebook.size}"
        )
    meta = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "chimein_version": __version__,
        "chunk_s": float(chunk_s),
        "sample_rate": int(fc.sample_rate),
        "units_per_chunk": int(round(units)),
        "n_units": int(codebook.size),
        "reference_mic": 0,
        "features": fc.to_dict(),
        "lm": model.cfg.to_dict(),
        "codebook_digest": codebook.digest,
        "inference": {"logit_bias": [0.0, 0.0, 0.0], **dict(inference or {})},
        "training": json.loads(json.dumps(dict(training or {}), default=str)),
        **json.loads(json.dumps(dict(extra or {}), default=str)),
    }
    def write(tmp: Path) -> None:
        with _quiet_transformers():
            model.lm.save_pretrained(str(tmp), safe_serialization=True)
            canonicalize_safetensors_file(tmp / "model.safetensors")
        build_hf_tokenizer(codebook.size).save_pretrained(str(tmp))
        codebook.save(tmp / CODEBOOK_FILE)
        model.save_value_head(tmp / VALUE_HEAD_FILE)
        (tmp / META_FILE).write_text(
            json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8"
        )

    return atomic_write_dir(path, write, mode=0o755)


def explain_not_checkpoint(p: Path) -> str:
    """Why ``p`` is not a loadable checkpoint, and what to do (the error message)."""
    if not p.exists():
        return f"{p}: no such checkpoint directory"
    if not p.is_dir():
        return (
            f"{p}: a checkpoint is a directory (save_pretrained output + {META_FILE}), got a file"
        )
    files = [f.name for f in p.iterdir()]
    pickles = [f for f in files if f.endswith(_PICKLES)]
    if pickles and not any(f.endswith(".safetensors") for f in files):
        return (
            f"{p}: holds only pickle weights ({', '.join(sorted(pickles)[:3])}); chimein never unpickles "
            "files (they can run code). Re-save the model with save_pretrained(safe_serialization=True) "
            f"and write {META_FILE} with chimein.agents.lm.checkpoint.save_checkpoint"
        )
    if (p / "config.json").is_file():
        return (
            f"{p}: a transformers model directory but not a chimein checkpoint ({META_FILE} is missing); "
            "train one with `chimein train supervised out=DIR`"
        )
    return (
        f"{p}: not a chimein checkpoint ({META_FILE} is missing); train one with "
        "`chimein train supervised out=DIR`"
    )


def load_checkpoint(path: str | os.PathLike[str], device: str | Any = "cpu") -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint` (model in eval mode on ``device``).

    Raises
    ------
    SpecError
        Not a directory, not a chimein checkpoint, pickle-only weights, a newer format version,
        missing files, or a codebook/model mismatch.
    """
    import torch
    from transformers import MistralForCausalLM

    p = Path(path).expanduser()
    if not is_checkpoint(p):
        raise SpecError(explain_not_checkpoint(p))
    meta = json.loads((p / META_FILE).read_text(encoding="utf-8"))
    if int(meta.get("version", 0)) > CHECKPOINT_VERSION:
        raise SpecError(
            f"{p}: checkpoint format version {meta.get('version')} is newer than this chimein "
            f"({CHECKPOINT_VERSION}); upgrade chimein"
        )
    for f in ("model.safetensors", "config.json", CODEBOOK_FILE, VALUE_HEAD_FILE):
        if not (p / f).is_file():
            raise SpecError(f"{p}: checkpoint file {f!r} is missing; the checkpoint is incomplete")
    codebook = Codebook.load(p / CODEBOOK_FILE)
    if FeatureConfig.from_dict(meta["features"]) != codebook.features:
        raise SpecError(f"{p}: {META_FILE} feature config differs from the codebook's")
    cfg = LMConfig.from_mapping(meta["lm"], where=f"{p}/{META_FILE}: lm")
    try:
        with _quiet_transformers():
            lm = MistralForCausalLM.from_pretrained(
                str(p), use_safetensors=True, local_files_only=True, dtype=torch.float32
            )
    except Exception as e:  # transformers raises OSError/ValueError with its own message
        raise SpecError(f"{p}: cannot load the model weights ({e})") from None
    model = TimingLM(cfg, codebook.size, lm=lm)
    if model.vocab_size != len(build_hf_tokenizer(codebook.size)):
        raise SpecError(
            f"{p}: model vocabulary ({model.vocab_size}) does not match the codebook "
            f"({codebook.size} units)"
        )
    model.load_value_head(p / VALUE_HEAD_FILE)
    model.to(device).eval()
    return Checkpoint(p, model, codebook, meta)
