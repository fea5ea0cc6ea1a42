"""A policy hosted in a Ray actor (its own process, optionally its own GPU), shared by workers.

:func:`start_policy_actor` starts a :class:`RayPolicyActor`; :class:`ActorPolicy` is its client
side and satisfies the :class:`~chimein.agents.policy.Policy` protocol, so
:func:`chimein.envs.rollout.rollout` streams to it unchanged. The Ray runtime itself (options,
start, tasks) is the execution seam's: :mod:`chimein.exec.ray`. Needs the ``ray`` extra
(``pip install 'chimein[ray]'``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

from chimein.errors import RemoteError
from chimein.exec.ray import RayOptions, ensure_ray, require_ray

__all__ = ["ActorPolicy", "RayPolicyActor", "start_policy_actor"]


class RayPolicyActor:
    """A policy hosted in a Ray actor (own process, optionally its own GPU), shared by workers.

    Build it with :func:`start_policy_actor`; talk to it through :class:`ActorPolicy`, which
    satisfies the :class:`~chimein.agents.policy.Policy` protocol, so
    :func:`chimein.envs.rollout.rollout` (or any env loop) streams to it unchanged. Each client
    opens a *session* -- its own policy instance with its own streams -- so several workers can
    stream at once; one ``act`` call is one batched forward over that client's streams. (Merging
    the streams of many clients into one forward pass is what the policy server, ``chimein
    serve``, adds; this actor is the Ray-native way to place a policy on a GPU.)

    Parameters
    ----------
    policy
        A policy name, checkpoint path or anything ``factory`` resolves.
    policy_kwargs
        Constructor arguments (``device="cuda"`` for a checkpoint on the actor's GPU).
    factory
        Builds a policy from ``(policy, **policy_kwargs)``; default
        :func:`chimein.agents.registry.make_policy`.
    """

    def __init__(self, policy: str, policy_kwargs: Mapping[str, Any] | None = None,
                 factory: Callable[..., Any] | None = None) -> None:
        if factory is None:
            from chimein.agents.registry import make_policy

            factory = make_policy
        self._factory: Callable[..., Any] = factory
        self._policy = str(policy)
        self._kwargs = dict(policy_kwargs or {})
        self._sessions: dict[int, Any] = {}
        self._ids = itertools.count()

    def open(self) -> int:
        """A new session (a fresh policy instance); returns its id."""
        sid = next(self._ids)
        self._sessions[sid] = self._factory(self._policy, **self._kwargs)
        return sid

    def close(self, session: int) -> None:
        self._sessions.pop(session, None)

    def _get(self, session: int) -> Any:
        try:
            return self._sessions[session]
        except KeyError:
            raise RemoteError(f"policy actor: session {session} is not open (closed, or the actor restarted); "
                            "open a new one") from None

    def get_attr(self, session: int, name: str) -> Any:
        """An attribute of the session's policy (``name``, ``chunk_s``, ``obs_modes``, ...)."""
        return getattr(self._get(session), name)

    def set_attr(self, session: int, name: str, value: Any) -> None:
        setattr(self._get(session), name, value)

    def configure(self, session: int, chunk_s: float, sample_rate: int = 16000, obs_mode: str = "audio") -> None:
        self._get(session).configure(chunk_s, sample_rate, obs_mode)

    def reset(self, session: int, n_streams: int, specs: Any = None) -> None:
        self._get(session).reset(n_streams, specs)

    def reset_stream(self, session: int, i: int, spec: Any = None) -> None:
        self._get(session).reset_stream(i, spec)

    def act(self, session: int, obs: Mapping[str, Any]) -> tuple[Any, Any]:
        """One batched decision for all the session's streams: ``(actions, probs)``."""
        import numpy as np

        # Ray hands over numpy arrays read-only (zero copy); policies may expect their own
        return self._get(session).act({k: np.array(v) for k, v in obs.items()})  # type: ignore[no-any-return]


def start_policy_actor(policy: str, policy_kwargs: Mapping[str, Any] | None = None, *, num_gpus: float = 0.0,
                       num_cpus: float = 1.0, max_restarts: int = 0, name: str | None = None,
                       ray_options: Mapping[str, Any] | RayOptions | None = None,
                       factory: Callable[..., Any] | None = None) -> Any:
    """Start a :class:`RayPolicyActor` (connecting to Ray first) and return its handle.

    ``num_gpus`` places it on a GPU; ``name`` registers it so other drivers and tasks find it
    with ``ray.get_actor(name)``; ``max_restarts`` restarts it after a crash (sessions are then
    lost: clients get a :class:`~chimein.errors.RemoteError` and open new ones).

    Examples
    --------
    >>> actor = start_policy_actor("energy-endpoint", {"silence_timeout_s": 0.5})  # doctest: +SKIP
    >>> policy = ActorPolicy(actor)                                                 # doctest: +SKIP
    >>> rollout(scenes, policy, {"chunk_ms": 80})                                   # doctest: +SKIP
    """
    ray = ensure_ray(ray_options)
    cls = ray.remote(RayPolicyActor).options(num_gpus=num_gpus, num_cpus=num_cpus, max_restarts=max_restarts,
                                             name=name)
    handle = cls.remote(policy, dict(policy_kwargs or {}), factory)
    try:  # build one now: a bad policy fails here (as SpecError, with the actor's traceback)
        ray.get(handle.close.remote(ray.get(handle.open.remote())))
    except BaseException:
        ray.kill(handle)
        raise
    return handle


class ActorPolicy:
    """Client side of a :class:`RayPolicyActor`: a :class:`~chimein.agents.policy.Policy` whose
    calls run in the actor (one blocking round trip per call).

    Attributes that are not the protocol's (``speak_s`` of the oracle, ``obs_modes``) are read
    from and written to the remote policy.
    """

    _LOCAL = ("_handle", "_ray", "_session", "name", "chunk_s")

    def __init__(self, handle: Any) -> None:
        ray = require_ray()
        object.__setattr__(self, "_ray", ray)
        object.__setattr__(self, "_handle", handle)
        object.__setattr__(self, "_session", ray.get(handle.open.remote()))
        object.__setattr__(self, "name", self._call("get_attr", "name"))
        object.__setattr__(self, "chunk_s", float(self._call("get_attr", "chunk_s")))

    def _call(self, method: str, *args: Any) -> Any:
        return self._ray.get(getattr(self._handle, method).remote(self._session, *args))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._call("get_attr", name)  # a missing attribute raises AttributeError (via Ray)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._LOCAL:
            object.__setattr__(self, name, value)
        else:
            self._call("set_attr", name, value)

    def configure(self, chunk_s: float, sample_rate: int = 16000, obs_mode: str = "audio") -> None:
        self._call("configure", chunk_s, sample_rate, obs_mode)
        object.__setattr__(self, "chunk_s", float(chunk_s))

    def reset(self, n_streams: int, specs: Any = None) -> None:
        self._call("reset", n_streams, None if specs is None else list(specs))

    def reset_stream(self, i: int, spec: Any = None) -> None:
        self._call("reset_stream", i, spec)

    def act(self, obs: Mapping[str, Any]) -> tuple[Any, Any]:
        import numpy as np

        actions, probs = self._call("act", dict(obs))
        return np.array(actions), np.array(probs)  # writable, as a local policy's

    def close(self) -> None:
        """Free the session in the actor."""
        self._call("close")
