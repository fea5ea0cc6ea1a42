"""``chimein train ppo`` / ``chimein train grpo``: Hydra config -> :func:`train_ppo` /
:func:`train_grpo` (see docs/rl.md)."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["grpo", "ppo"]


def _container(cfg: Any) -> dict[str, Any]:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def ppo(cfg: Any) -> int:
    """Refine a checkpoint with SB3 PPO: ``init=CKPT out=DIR [train.total_steps=N] ...``."""
    from chimein.training.ppo import PPOConfig, train_ppo

    c = _container(cfg)
    final = train_ppo(str(c["init"]), str(c["out"]), PPOConfig.from_mapping(c.get("train")), log=_say)
    print(final)
    return 0


def grpo(cfg: Any) -> int:
    """Refine a checkpoint with TRL GRPO: ``init=CKPT out=DIR [train.steps=N] ...``."""
    from chimein.training.grpo import GRPORunConfig, train_grpo

    c = _container(cfg)
    final = train_grpo(str(c["init"]), str(c["out"]), GRPORunConfig.from_mapping(c.get("train")),
                       log=_say)
    print(final)
    return 0
