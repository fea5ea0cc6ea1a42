"""The one policy interface used by env rollouts, evaluation and (later) the policy server.

A policy drives ``n`` independent streams at once (one per sub-env of a vector env) and sees
one chunk of each at a time:

- :meth:`Policy.configure` tells it the stream format -- chunk duration, sample rate and the
  env's observation mode (``"audio"`` or ``"logmel"``);
- :meth:`Policy.reset` starts ``n`` new streams; :meth:`Policy.reset_stream` restarts one when
  its sub-env auto-resets. Both take the scene specs; only policies that read annotations (the
  oracle) or seed from the scene (random) use them;
- :meth:`Policy.act` takes the batched observation (leading axis = stream) and returns the
  actions (int64 ``(n,)``) and the action probabilities (float32 ``(n, 3)``, order
  WAIT/RESPOND/INTERVENE; deterministic policies return one-hot rows).

The decision after chunk ``k`` (0-based) of a stream is taken at ``(k + 1) * chunk_s`` seconds.

:class:`BasePolicy` implements the bookkeeping and validation and leaves ``_reset``,
``_reset_stream`` and ``_act`` to subclasses; :meth:`BasePolicy.act_one` runs one unbatched
Gymnasium observation, so a plain rollout is a one-line loop body.

Examples
--------
A policy that answers every chunk once the assistant is quiet, written on :class:`BasePolicy`:

>>> import numpy as np
>>> class Eager(BasePolicy):
...     name = "eager"
...     def _reset(self, n_streams, specs): pass
...     def _reset_stream(self, i, spec): pass
...     def _act(self, obs):
...         actions = np.where(self._assistant_speaking(obs), 0, int(Action.RESPOND))
...         return actions, one_hot(actions)
>>> policy = Eager(chunk_s=0.08)
>>> policy.reset(2)
>>> obs = {"audio": np.zeros((2, 1280, 1), np.float32), "assistant_speaking": np.array([0, 1]),
...        "time_since_spoke": np.zeros((2, 1), np.float32)}
>>> actions, probs = policy.act(obs)
>>> actions.tolist(), probs.shape
([1, 0], (2, 3))
>>> isinstance(policy, Policy)
True
"""

from __future__ import annotations

import math
import zlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from chimein.errors import ConfigError, SpecError
from chimein.scenes.spec import Action, SceneSpec

__all__ = ["OBS_MODES", "N_ACTIONS", "BasePolicy", "Policy", "episode_rng", "one_hot"]

#: Observation modes of the env: raw audio chunks or log-mel frames.
OBS_MODES: tuple[str, ...] = ("audio", "logmel")
#: Size of the action space (WAIT, RESPOND, INTERVENE).
N_ACTIONS = len(Action)


@runtime_checkable
class Policy(Protocol):
    """What every policy -- baseline, checkpoint, remote -- provides.

    Attributes
    ----------
    name : str
        Registry name (``"energy-endpoint"``) or a description of the checkpoint.
    chunk_s : float
        Duration of one observation chunk in seconds (set by the constructor or ``configure``).
    """

    name: str
    chunk_s: float

    def configure(self, chunk_s: float, sample_rate: int = 16000, obs_mode: str = "audio") -> None:
        """Set the stream format; call before :meth:`reset` (it drops all streams)."""
        ...

    def reset(self, n_streams: int, specs: Sequence[SceneSpec | None] | None = None) -> None:
        """Start ``n_streams`` new streams, optionally with their scene specs."""
        ...

    def reset_stream(self, i: int, spec: SceneSpec | None = None) -> None:
        """Stream ``i`` starts a new episode (vector-env autoreset)."""
        ...

    def act(self, obs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Batched observation -> (actions int64 ``(n,)``, probabilities float32 ``(n, 3)``)."""
        ...


def one_hot(actions: np.ndarray) -> np.ndarray:
    """float32 ``(n, 3)`` probabilities of a deterministic choice of ``actions`` ``(n,)``."""
    a = np.asarray(actions, np.int64)
    p = np.zeros((len(a), N_ACTIONS), np.float32)
    p[np.arange(len(a)), a] = 1.0
    return p


def episode_rng(seed: int, stream: int, episode: int, spec: SceneSpec | None) -> np.random.Generator:
    """The random generator of one episode of a sampling policy (random baseline, sampling LM).

    Seeded from ``(seed, spec.seed, spec.id)`` when the episode's scene spec is given -- so the
    draws on a scene do not depend on batching or worker layout -- else from ``(seed, stream
    index, episode number of that stream)``.
    """
    if spec is not None:
        key = [seed, 1, int(spec.seed) & 0xFFFFFFFF, zlib.crc32(spec.id.encode("utf-8"))]
    else:
        key = [seed, 0, stream, episode]
    return np.random.default_rng(np.random.SeedSequence(key))


class BasePolicy(ABC):
    """Validation and bookkeeping shared by the built-in policies.

    Parameters
    ----------
    chunk_s : float
        Chunk duration in seconds; ``chunk_s * sample_rate`` must be a whole number of samples.
    sample_rate : int
        Sampling rate of the audio in Hz.
    obs_mode : str
        ``"audio"`` or ``"logmel"``; a policy lists those it supports in ``obs_modes``.

    Subclasses set ``name`` and ``obs_modes`` and implement ``_reset``, ``_reset_stream``
    and ``_act``; ``_on_configure`` is called after the format changes.
    """

    name: str = "policy"
    obs_modes: tuple[str, ...] = OBS_MODES

    def __init__(self, chunk_s: float = 0.08, sample_rate: int = 16000, obs_mode: str = "audio") -> None:
        self.n_streams = 0
        self.configure(chunk_s, sample_rate, obs_mode)

    # ------------------------------------------------------------------ format
    def configure(self, chunk_s: float, sample_rate: int = 16000, obs_mode: str = "audio") -> None:
        """Set chunk duration, sample rate and observation mode; drops all streams.

        Raises
        ------
        ConfigError
            On a non-positive chunk, a chunk that is not a whole number of samples, or an
            observation mode this policy cannot use.
        """
        where = f"policy {self.name!r}"
        if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
            raise ConfigError(f"{where}: field 'sample_rate': must be a positive integer, got {sample_rate!r}")
        if not (isinstance(chunk_s, (int, float)) and math.isfinite(chunk_s) and 0 < chunk_s <= 10):
            raise ConfigError(f"{where}: field 'chunk_s': must be in (0, 10] seconds, got {chunk_s!r}")
        samples = chunk_s * sample_rate
        if abs(samples - round(samples)) > 1e-6 * max(1.0, samples):
            raise ConfigError(f"{where}: field 'chunk_s': {chunk_s} s is not a whole number of samples "
                            f"at {sample_rate} Hz; use e.g. 0.08 (80 ms)")
        if obs_mode not in OBS_MODES:
            raise ConfigError(f"{where}: field 'obs_mode': unknown mode {obs_mode!r}; use one of {OBS_MODES}")
        if obs_mode not in self.obs_modes:
            raise ConfigError(f"{where}: field 'obs_mode': this policy needs obs_mode in {self.obs_modes}, "
                            f"got {obs_mode!r}; create the env with obs_mode='{self.obs_modes[0]}'")
        self.chunk_s = float(chunk_s)
        self.sample_rate = int(sample_rate)
        self.obs_mode = obs_mode
        self.n_streams = 0
        self._on_configure()

    @property
    def chunk_samples(self) -> int:
        """Samples per chunk."""
        return int(round(self.chunk_s * self.sample_rate))

    def _on_configure(self) -> None:  # noqa: B027 - optional hook
        """Rebuild format-dependent parts (frame sizes, models); default: nothing."""

    # ------------------------------------------------------------------ streams
    def reset(self, n_streams: int, specs: Sequence[SceneSpec | None] | None = None) -> None:
        """Start ``n_streams`` new streams; ``specs`` (one per stream, or None) for the oracle."""
        if not isinstance(n_streams, (int, np.integer)) or n_streams < 1:
            raise SpecError(f"policy {self.name!r}: field 'n_streams': must be a positive integer, "
                            f"got {n_streams!r}")
        spec_list: list[SceneSpec | None] = [None] * int(n_streams) if specs is None else list(specs)
        if len(spec_list) != n_streams:
            raise SpecError(f"policy {self.name!r}: field 'specs': got {len(spec_list)} specs for "
                            f"{n_streams} streams; pass one per stream (or None)")
        self.n_streams = int(n_streams)
        self._reset(self.n_streams, spec_list)

    def reset_stream(self, i: int, spec: SceneSpec | None = None) -> None:
        """Stream ``i`` starts a new episode; the other streams keep their state."""
        if not 0 <= i < self.n_streams:
            raise SpecError(f"policy {self.name!r}: stream index {i} out of range for "
                            f"{self.n_streams} streams; call reset(n) first")
        self._reset_stream(int(i), spec)

    # ------------------------------------------------------------------ acting
    def act(self, obs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Decide for one chunk of every stream; see :class:`Policy`."""
        if self.n_streams == 0:
            raise SpecError(f"policy {self.name!r}: no streams; call reset(n_streams) before act()")
        if not isinstance(obs, Mapping) or not obs:
            raise SpecError(f"policy {self.name!r}: observation must be a non-empty dict of arrays, "
                            f"got {type(obs).__name__}")
        for key, value in obs.items():
            n = np.shape(value)[0] if np.ndim(value) else None
            if n != self.n_streams:
                raise SpecError(f"policy {self.name!r}: observation {key!r} has shape {np.shape(value)}; "
                                f"expected a leading stream axis of {self.n_streams} (use act_one "
                                f"for a single unbatched observation)")
        audio = obs.get("audio")
        if audio is not None and np.ndim(audio) >= 2 and np.shape(audio)[1] != self.chunk_samples:
            raise SpecError(f"policy {self.name!r}: observation 'audio' holds {np.shape(audio)[1]} "
                            f"samples per chunk, but the policy is configured for {self.chunk_samples} "
                            f"({self.chunk_s} s at {self.sample_rate} Hz); call configure(chunk_s=...) "
                            f"with the env's chunk duration")
        actions, probs = self._act(obs)
        return np.asarray(actions, np.int64), np.asarray(probs, np.float32)

    def act_one(self, obs: Mapping[str, np.ndarray]) -> tuple[int, np.ndarray]:
        """Decide on one unbatched observation (a plain Gymnasium env): (action, probs ``(3,)``).

        Needs ``reset(1)`` first (``reset(1, [spec])`` for the oracle).
        """
        if self.n_streams != 1:
            raise SpecError(f"policy {self.name!r}: act_one needs exactly one stream; call reset(1) "
                            f"first (now {self.n_streams})")
        batched = {k: np.asarray(v)[None] for k, v in obs.items()}
        actions, probs = self.act(batched)
        return int(actions[0]), probs[0]

    # ------------------------------------------------------------------ helpers
    def _reference_audio(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """float32 ``(n, samples)``: channel 0 (the reference microphone) of ``obs["audio"]``."""
        if "audio" not in obs:
            raise SpecError(f"policy {self.name!r}: needs the 'audio' observation (obs_mode='audio'); "
                            f"got keys {sorted(obs)}")
        x = np.asarray(obs["audio"], np.float32)
        if x.ndim == 3:
            x = x[:, :, 0]
        elif x.ndim != 2:
            raise SpecError(f"policy {self.name!r}: observation 'audio' must be (n, samples, mics) or "
                            f"(n, samples), got shape {x.shape}")
        if not np.isfinite(x).all():
            raise SpecError(f"policy {self.name!r}: observation 'audio' contains NaN or inf")
        return x

    def _assistant_speaking(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """bool ``(n,)`` from ``obs["assistant_speaking"]``; all False when absent."""
        value = obs.get("assistant_speaking")
        if value is None:
            return np.zeros(self.n_streams, bool)
        return np.asarray(value).reshape(self.n_streams, -1)[:, 0] != 0

    @abstractmethod
    def _reset(self, n_streams: int, specs: list[SceneSpec | None]) -> None:
        """Initialise per-stream state for ``n_streams`` streams."""

    @abstractmethod
    def _reset_stream(self, i: int, spec: SceneSpec | None) -> None:
        """Reinitialise the state of stream ``i``."""

    @abstractmethod
    def _act(self, obs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Batched decision (inputs already validated)."""

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, chunk_s={self.chunk_s}, "
                f"sample_rate={self.sample_rate}, obs_mode={self.obs_mode!r})")
