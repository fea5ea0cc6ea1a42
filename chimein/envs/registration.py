"""Registered Gymnasium ids: ``gym.make("chimein/ProactiveHelp-v0", **overrides)``.

Each id is a preset of scene distribution (a sampler config) and env options. Keyword
overrides replace preset options (``gym.make(id, chunk_ms=400)``); to change only part of the
scene config use ``scene_overrides`` (``gym.make(id, scene_overrides={"difficulty": "easy"})``).
``gym.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")`` builds the native
:class:`~chimein.envs.vector.ResponseTimingVectorEnv`; ``"sync"``/``"async"`` wrap the single env.

Registration imports nothing but Gymnasium: the env modules load when an id is made.

| id | scenes | what it trains |
|----|--------|----------------|
| ``chimein/ProactiveHelp-v0`` | family ``proactive`` | intervene on sounds that need help (alarms, falls, glass), fast |
| ``chimein/TurnTaking-v0`` | families ``addressed``, ``pauses``, ``distractors`` | answer at the end of an addressed turn; not in mid-turn pauses, not to TV or chit-chat |
| ``chimein/Monitoring-v0`` | family ``monitoring`` | acknowledge a watch request, ignore look-alikes, notify when the watched event happens |
| ``chimein/Mixed-v0`` | family ``mixed`` (all six, incl. long multi-event streams) | everything |
"""

from __future__ import annotations

from typing import Any

ENTRY_POINT = "chimein.envs.env:ResponseTimingEnv"
VECTOR_ENTRY_POINT = "chimein.envs.vector:ResponseTimingVectorEnv"

#: id -> env kwargs (scene config + options); every id uses 80 ms chunks and raw audio.
PRESETS: dict[str, dict[str, Any]] = {
    "chimein/ProactiveHelp-v0": {"scenes": {"family": "proactive"}},
    "chimein/TurnTaking-v0": {"scenes": {"family": ["addressed", "pauses", "distractors"]}},
    "chimein/Monitoring-v0": {"scenes": {"family": "monitoring"}},
    "chimein/Mixed-v0": {"scenes": {"family": "mixed"}},
}


def register_envs() -> None:
    """Register every id of :data:`PRESETS` (idempotent)."""
    import gymnasium as gym

    for env_id, kwargs in PRESETS.items():
        if env_id in gym.registry:
            continue
        gym.register(id=env_id, entry_point=ENTRY_POINT, vector_entry_point=VECTOR_ENTRY_POINT,
                     kwargs={k: (dict(v) if isinstance(v, dict) else v) for k, v in kwargs.items()})
