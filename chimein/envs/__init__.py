"""Response-timing Gymnasium environments and the one reward function.

Importing this package registers the ids of :mod:`chimein.envs.registration` and imports
nothing heavy; the env classes load on first use.
"""

from __future__ import annotations

from typing import Any

from chimein.envs.registration import PRESETS, register_envs

register_envs()

__all__ = ["PRESETS", "register_envs", "ResponseTimingEnv", "ResponseTimingVectorEnv", "score",
           "ActionLog", "RewardConfig", "EpisodeOutcome", "OnlineScorer"]

_LAZY = {
    "ResponseTimingEnv": "chimein.envs.env",
    "ResponseTimingVectorEnv": "chimein.envs.vector",
    "score": "chimein.envs.scoring",
    "ActionLog": "chimein.envs.scoring",
    "RewardConfig": "chimein.envs.scoring",
    "EpisodeOutcome": "chimein.envs.scoring",
    "OnlineScorer": "chimein.envs.scoring",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'chimein.envs' has no attribute {name!r}")
