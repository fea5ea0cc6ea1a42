"""The Ray backend of the execution seam, and a Ray actor that hosts a policy.

:func:`chimein.parallel.imap_unordered` hands its jobs here when ``backend="ray"``: each job
becomes a Ray Core task; at most ``max_pending`` tasks are in flight, results are yielded as
they finish (to the driver, which alone writes files), an exception in a task is raised in the
driver with the worker's traceback (Ray's ``RayTaskError`` that is also an instance of the
original exception class, e.g. :class:`~chimein.errors.SpecError`), and a task whose
worker process dies (killed, out of memory, a lost node) is run again up to ``max_retries``
times -- jobs are pure functions of their item, so a rerun gives the same bytes.

Why Ray Core tasks, not Ray Data: every caller already has an item stream, a pure job function
and a driver loop that appends results as they arrive (so a killed driver resumes); tasks map
onto that one-to-one, keep the in-flight bound and the resume logic in chimein, and need no
dataset abstraction. Ray Data would add value for columnar preprocessing pipelines, which
chimein does not have.

Where Ray runs (:class:`RayOptions` ``address``):

- ``None`` (default): ``$RAY_ADDRESS`` if set, else a new local Ray instance with
  ``num_cpus=workers`` (started once per driver process, reused by later calls; stopped at exit
  or by :func:`shutdown`);
- ``"auto"``: join the cluster started with ``ray start`` on this machine; ``"host:6379"``: a
  cluster's head node (GCS address); ``"ray://host:10001"``: Ray Client;
- a Ray already initialised by the caller (``ray.init(...)`` before chimein runs) is used as is.

Workers must be able to import chimein: on a local instance they use this Python environment;
on a cluster install chimein on every node (the same version as the driver: scene bytes depend
on it), or pass ``runtime_env={"py_modules": [...]}`` / ``{"working_dir": ...}`` (see
``docs/scale.md``).

This module imports ``ray`` only inside its functions, so importing it costs nothing and works
without Ray installed; it imports nothing of chimein above :mod:`chimein.scenes.spec`, except
:class:`RayPolicyActor`, which builds policies with
:func:`chimein.agents.registry.make_policy` when it runs (inside its actor process).

Examples
--------
>>> from chimein.ray_backend import RayOptions
>>> RayOptions.from_mapping({"address": "auto", "num_gpus": 0.25})
RayOptions(address='auto', num_cpus=1.0, num_gpus=0.25, max_retries=3, runtime_env=None, object_store_memory=None, include_dashboard=False)
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from chimein.errors import SpecError

__all__ = ["INSTALL_HINT", "ActorPolicy", "RayOptions", "RayPolicyActor", "cluster_cpus", "ensure_ray",
           "imap_unordered", "require_ray", "shutdown", "start_policy_actor"]

T = TypeVar("T")
R = TypeVar("R")

#: What to run when Ray is missing.
INSTALL_HINT = "pip install 'chimein[ray]'"


# ============================================================================================
# Options
# ============================================================================================
@dataclass(frozen=True)
class RayOptions:
    """How the Ray backend connects and what each task asks for.

    Parameters
    ----------
    address
        None: ``$RAY_ADDRESS`` or a new local instance; ``"local"``: always a new local
        instance; ``"auto"``, ``"host:port"`` or ``"ray://host:port"``: join that cluster.
    num_cpus
        CPUs each task reserves (1: one job per core, as the process pool).
    num_gpus
        GPUs each task reserves (0.25: four policy-evaluation tasks share a GPU; Ray sets
        ``CUDA_VISIBLE_DEVICES`` in the task).
    max_retries
        Times a task is run again when its worker process dies (not when it raises).
    runtime_env
        Ray runtime environment of the job (``{"working_dir": ".", "env_vars": {...}}``).
    object_store_memory
        Bytes of object store of a new local instance (None: Ray's default, 30 % of RAM).
    include_dashboard
        Start the dashboard with a new local instance.
    """

    address: str | None = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    max_retries: int = 3
    runtime_env: Mapping[str, Any] | None = None
    object_store_memory: int | None = None
    include_dashboard: bool = False

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any] | RayOptions | None) -> RayOptions:
        """Validate a mapping (or pass a :class:`RayOptions` through); unknown keys and bad
        values raise :class:`SpecError` naming the field."""
        if m is None:
            return cls()
        if isinstance(m, RayOptions):
            return m
        if not isinstance(m, Mapping):
            raise SpecError(f"ray options: expected a mapping, got {type(m).__name__}")
        known = {f.name for f in fields(cls)}
        bad = sorted(set(m) - known)
        if bad:
            raise SpecError(f"ray options: unknown field(s) {bad}; known: {sorted(known)}")
        d = {k: v for k, v in m.items() if v is not None}
        out = cls(**d)
        where = "ray options"
        if out.address is not None and (not isinstance(out.address, str) or not out.address.strip()):
            raise SpecError(f"{where}: field 'address': {out.address!r}; use auto, host:port, ray://host:port or null")
        for k in ("num_cpus", "num_gpus"):
            v = getattr(out, k)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise SpecError(f"{where}: field '{k}': must be a number >= 0, got {v!r}")
        if out.num_cpus == 0 and out.num_gpus == 0:
            raise SpecError(f"{where}: fields 'num_cpus' and 'num_gpus' are both 0: a task must reserve something")
        if isinstance(out.max_retries, bool) or not isinstance(out.max_retries, int) or out.max_retries < -1:
            raise SpecError(f"{where}: field 'max_retries': must be an integer >= 0 (-1: forever), "
                            f"got {out.max_retries!r}")
        if out.runtime_env is not None and not isinstance(out.runtime_env, Mapping):
            raise SpecError(f"{where}: field 'runtime_env': must be a mapping, got {out.runtime_env!r}")
        osm = out.object_store_memory
        if osm is not None and (isinstance(osm, bool) or not isinstance(osm, int) or osm < 78 * 2**20):
            raise SpecError(f"{where}: field 'object_store_memory': bytes, at least 78 MiB (Ray's minimum), "
                            f"got {osm!r}")
        return out


# ============================================================================================
# Connection
# ============================================================================================
_OWNED = False  # whether this process started the Ray instance it uses


def require_ray() -> Any:
    """Import and return :mod:`ray`, or raise :class:`SpecError` saying how to install it."""
    try:
        import ray
    except ImportError as e:
        raise SpecError(f"backend=ray needs Ray, which is not installed ({e}); install it with "
                        f"{INSTALL_HINT}, or use backend=local") from None
    return ray


def _default_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def ensure_ray(options: Mapping[str, Any] | RayOptions | None = None, workers: int | None = None) -> Any:
    """Connect to (or start) Ray once per process; returns the :mod:`ray` module.

    A Ray the caller initialised is used as is. Otherwise ``address`` (or ``$RAY_ADDRESS``)
    joins a cluster, and without one a local instance with ``num_cpus=workers`` (default: this
    machine's cores) is started and reused by every later call in this process.
    """
    global _OWNED
    ray = require_ray()
    opts = RayOptions.from_mapping(options)
    if ray.is_initialized():
        return ray
    address = opts.address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {"runtime_env": dict(opts.runtime_env) if opts.runtime_env else None}
    if address and address != "local":
        ray.init(address=address, **kwargs)
        _OWNED = False
    else:
        # a local instance listens on loopback only (its GCS, raylet and workers)
        ray.init(address="local", num_cpus=int(workers) if workers and workers > 0 else _default_cpus(),
                 include_dashboard=bool(opts.include_dashboard), object_store_memory=opts.object_store_memory,
                 _node_ip_address="127.0.0.1", **kwargs)
        _OWNED = True
    return ray


def shutdown() -> None:
    """Stop the Ray instance this process started (no-op for a joined cluster or no Ray)."""
    global _OWNED
    import sys

    ray = sys.modules.get("ray")
    if ray is not None and _OWNED and ray.is_initialized():
        ray.shutdown()
    _OWNED = False


def cluster_cpus(options: Mapping[str, Any] | RayOptions | None = None) -> int:
    """Tasks that fit at once on the Ray cluster (its CPUs / ``num_cpus`` per task, or its
    GPUs / ``num_gpus`` for GPU tasks), connecting first if needed; at least 1."""
    opts = RayOptions.from_mapping(options)
    ray = ensure_ray(opts)
    res = ray.cluster_resources()
    slots = []
    if opts.num_cpus > 0:
        slots.append(float(res.get("CPU", 1.0)) / opts.num_cpus)
    if opts.num_gpus > 0:
        slots.append(float(res.get("GPU", 0.0)) / opts.num_gpus)
    return max(1, int(min(slots)))


# ============================================================================================
# Tasks
# ============================================================================================
_INITIALISED: set[tuple[int, int]] = set()  # (driver pid, call) initializers run in this worker
_CALLS = itertools.count()


def _run_task(payload: tuple[Callable[[Any], Any], Callable[..., None] | None, tuple[Any, ...], tuple[int, int]],
              item: Any) -> Any:
    """Inside a Ray worker: run the call's initializer once per worker process, then the job."""
    fn, initializer, initargs, key = payload
    if initializer is not None and key not in _INITIALISED:
        initializer(*initargs)
        _INITIALISED.add(key)
    return fn(item)


_REMOTE: dict[str, Any] = {}


def _remote_task(ray: Any) -> Any:
    if "task" not in _REMOTE:
        _REMOTE["task"] = ray.remote(_run_task)
    return _REMOTE["task"]


def imap_unordered(
    fn: Callable[[T], R],
    items: Iterable[T],
    workers: int | None = None,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
    max_pending: int | None = None,
    options: Mapping[str, Any] | RayOptions | None = None,
) -> Iterator[tuple[T, R]]:
    """Yield ``(item, fn(item))`` as Ray tasks finish; see :func:`chimein.parallel.imap_unordered`.

    ``workers`` is the number of tasks that run at once (None or <= 0: the whole cluster, see
    :func:`cluster_cpus`). ``max_pending`` bounds the tasks submitted and not yet collected
    (default ``2 * workers``): when the cluster has no more task slots than ``workers`` (the
    local instance started with ``num_cpus=workers``) the surplus waits in Ray's queue, so a
    worker starts its next task without a round trip to the driver; on a larger cluster only
    ``workers`` tasks are submitted at a time. Items are drawn from ``items`` lazily. When the
    caller stops early or a task fails, the tasks still pending are cancelled.

    Examples
    --------
    >>> from chimein.ray_backend import imap_unordered  # doctest: +SKIP
    >>> sorted(r for _, r in imap_unordered(abs, [-1, -2, 3], workers=2))  # doctest: +SKIP
    [1, 2, 3]
    """
    opts = RayOptions.from_mapping(options)
    ray = ensure_ray(opts, workers)
    if opts.num_gpus > float(ray.cluster_resources().get("GPU", 0.0)):
        raise SpecError(f"ray options: field 'num_gpus': tasks ask for {opts.num_gpus} GPU but the Ray cluster "
                        f"has {ray.cluster_resources().get('GPU', 0)}; they would wait forever. Set "
                        "ray_num_gpus=0 or join a cluster with GPUs")
    slots = cluster_cpus(opts)
    w = int(workers) if workers and workers > 0 else slots
    in_flight = max(1, int(max_pending or 2 * w))
    if slots > w:  # the cluster would run more than `workers` at once: submit only that many
        in_flight = min(in_flight, w)
    task = _remote_task(ray).options(num_cpus=opts.num_cpus, num_gpus=opts.num_gpus, max_retries=opts.max_retries,
                                     retry_exceptions=False)
    payload = ray.put((fn, initializer, tuple(initargs), (os.getpid(), next(_CALLS))))  # shipped once
    pending: dict[Any, T] = {}
    it = iter(items)
    exhausted = False
    try:
        while True:
            while not exhausted and len(pending) < in_flight:
                try:
                    x = next(it)
                except StopIteration:
                    exhausted = True
                    break
                pending[task.remote(payload, x)] = x
            if not pending:
                return
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                x = pending.pop(ref)
                yield x, ray.get(ref)  # a failed task raises here, with the worker's traceback
    finally:
        for ref in pending:
            with contextlib.suppress(Exception):  # already finished or gone: nothing to cancel
                ray.cancel(ref)


# ============================================================================================
# Policy actor
# ============================================================================================
class RayPolicyActor:
    """A policy hosted in a Ray actor (own process, optionally its own GPU), shared by workers.

    Build it with :func:`start_policy_actor`; talk to it through :class:`ActorPolicy`, which
    satisfies the :class:`~chimein.agents.policy.Policy` protocol, so
    :func:`chimein.eval.runner.rollout` (or any env loop) streams to it unchanged. Each client
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
            raise SpecError(f"policy actor: session {session} is not open (closed, or the actor restarted); "
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
    lost: clients get a :class:`SpecError` and open new ones).

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
