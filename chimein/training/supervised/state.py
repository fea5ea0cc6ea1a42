"""The training state of a supervised run (safetensors + JSON; never pickles), for resuming."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from chimein.errors import SpecError
from chimein.io import atomic_write_dir, canonicalize_safetensors_file

__all__ = ["STATE_DIR", "STATE_VERSION", "load_state", "save_state"]

STATE_DIR = "state"
STATE_VERSION = 1


def save_state(
    path: str | Path,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    sched: Any,
    step: int,
    info: Mapping[str, Any],
) -> None:
    """Write the full training state to directory ``path`` atomically."""
    from safetensors.torch import save_file, save_model

    def write(tmp: Path) -> None:
        save_model(model, str(tmp / "model.safetensors"))
        canonicalize_safetensors_file(tmp / "model.safetensors")
        sd = opt.state_dict()
        tensors = {
            f"state.{pid}.{k}": v.detach().cpu().contiguous()
            for pid, st in sd["state"].items()
            for k, v in st.items()
            if torch.is_tensor(v)
        }
        tensors["torch_rng"] = torch.get_rng_state()
        save_file(tensors, str(tmp / "optim.safetensors"))
        canonicalize_safetensors_file(tmp / "optim.safetensors")
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

    atomic_write_dir(path, write)


def load_state(
    path: str | Path, model: torch.nn.Module, opt: torch.optim.Optimizer, sched: Any
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
