"""Use the native vector env with stable-baselines3 (imported here, on use only).

SB3 does not accept a ``gymnasium.vector.VectorEnv``; :func:`to_sb3_vecenv` wraps
:class:`~chimein.envs.vector.ResponseTimingVectorEnv` in an SB3 ``VecEnv``. SB3 resets a
finished sub-env within the same step and passes the final observation in
``info["terminal_observation"]``, so the adapter switches the vector env to
``AutoresetMode.SAME_STEP`` (before its first reset). Each ``info`` of a finished episode also
carries ``"TimeLimit.truncated": True`` (episodes end by truncation, so SB3 bootstraps their
value), ``"outcome"`` and ``"action_log"``.

Examples
--------
>>> import gymnasium as gym, chimein.envs
>>> from stable_baselines3 import PPO
>>> venv = to_sb3_vecenv(gym.make_vec("chimein/Mixed-v0", num_envs=4,
...                                   vectorization_mode="vector_entry_point"))  # doctest: +SKIP
>>> PPO("MultiInputPolicy", venv).learn(10_000)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from chimein.envs.vector import ResponseTimingVectorEnv


class SB3VectorAdapter(VecEnv):
    """An SB3 ``VecEnv`` over a :class:`ResponseTimingVectorEnv` (see module docstring)."""

    def __init__(self, venv: ResponseTimingVectorEnv) -> None:
        if isinstance(venv, gym.vector.VectorWrapper):
            raise TypeError("to_sb3_vecenv: pass the unwrapped ResponseTimingVectorEnv and apply SB3 wrappers "
                            "(VecMonitor, VecNormalize, VecFrameStack) to the adapter instead")
        if not isinstance(venv, ResponseTimingVectorEnv):
            raise TypeError(f"to_sb3_vecenv: expected a ResponseTimingVectorEnv, got {type(venv).__name__}; for "
                            "other envs use stable_baselines3's DummyVecEnv/SubprocVecEnv")
        venv.metadata = {**venv.metadata, "autoreset_mode": AutoresetMode.SAME_STEP}
        self.venv = venv
        self._actions: np.ndarray | None = None
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)

    def reset(self) -> VecEnvObs:
        seeds = None if all(s is None for s in self._seeds) else list(self._seeds)
        obs, _ = self.venv.reset(seed=seeds)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.num_envs)

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, terminated, truncated, _ = self.venv.step(self._actions)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i, (final_obs, final_info) in self.venv.last_final.items():
            infos[i] = {**final_info, "terminal_observation": final_obs,
                        "TimeLimit.truncated": bool(truncated[i] and not terminated[i])}
        return obs, rewards.astype(np.float32), terminated | truncated, infos

    def close(self) -> None:
        self.venv.close()

    def _indices(self, indices: VecEnvIndices) -> list[int]:
        return list(self._get_indices(indices))

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self.venv, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        method = getattr(self.venv, method_name)
        return [method(*method_args, **method_kwargs) for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        frames = self.venv.render()
        return list(frames) if frames is not None else [None] * self.num_envs


def to_sb3_vecenv(vector_env: Any) -> SB3VectorAdapter:
    """Wrap a native :class:`ResponseTimingVectorEnv` (e.g. from ``gym.make_vec(...,
    vectorization_mode="vector_entry_point")``) as a stable-baselines3 ``VecEnv``."""
    return SB3VectorAdapter(vector_env)
