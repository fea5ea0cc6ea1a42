"""The Ray backend of the execution seam.

:func:`chimein.exec.imap_unordered` hands its jobs here when ``backend="ray"``: each job
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
without Ray installed; like all of :mod:`chimein.exec` it knows no domain (jobs arrive as
callables) and imports nothing of chimein but layer 0 (:mod:`chimein.errors`,
:mod:`chimein.config`). A policy hosted in a Ray actor lives with the policies:
:mod:`chimein.agents.ray_actor`.

Examples
--------
>>> from chimein.exec.ray import RayOptions
>>> RayOptions.from_mapping({"address": "auto", "num_gpus": 0.25})
RayOptions(address='auto', num_cpus=1.0, num_gpus=0.25, max_retries=3, runtime_env=None, object_store_memory=None, include_dashboard=False)
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from chimein.config import config_fields, read_config, to_plain
from chimein.errors import ConfigError, RemoteError
from chimein.exec.bounded import bounded_unordered

__all__ = ["INSTALL_HINT", "RayOptions", "cluster_cpus", "ensure_ray", "imap_unordered", "require_ray",
           "shutdown"]

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

    def __post_init__(self) -> None:
        where = "ray options"
        if self.address is not None and (not isinstance(self.address, str) or not self.address.strip()):
            raise ConfigError(f"{where}: field 'address': {self.address!r}; use auto, host:port, "
                              "ray://host:port or null")
        for k in ("num_cpus", "num_gpus"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ConfigError(f"{where}: field '{k}': must be a number >= 0, got {v!r}")
        if self.num_cpus == 0 and self.num_gpus == 0:
            raise ConfigError(f"{where}: fields 'num_cpus' and 'num_gpus' are both 0: a task must reserve "
                              "something")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < -1:
            raise ConfigError(f"{where}: field 'max_retries': must be an integer >= 0 (-1: forever), "
                              f"got {self.max_retries!r}")
        if self.runtime_env is not None and not isinstance(self.runtime_env, Mapping):
            raise ConfigError(f"{where}: field 'runtime_env': must be a mapping, got {self.runtime_env!r}")
        osm = self.object_store_memory
        if osm is not None and (isinstance(osm, bool) or not isinstance(osm, int) or osm < 78 * 2**20):
            raise ConfigError(f"{where}: field 'object_store_memory': bytes, at least 78 MiB (Ray's "
                              f"minimum), got {osm!r}")

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any] | RayOptions | None) -> RayOptions:
        """Read the options (:func:`chimein.config.read_config`; a null value keeps the field's
        default); unknown keys and bad values raise :class:`~chimein.errors.ConfigError`
        naming the field."""
        m = to_plain(m)
        if isinstance(m, Mapping):
            known = config_fields(cls)
            m = {k: v for k, v in m.items() if v is not None or k not in known}
        return read_config(cls, m, "ray options")


# ============================================================================================
# Connection
# ============================================================================================
_OWNED = False  # whether this process started the Ray instance it uses


def require_ray() -> Any:
    """Import and return :mod:`ray`, or raise :class:`ConfigError` saying how to install it.

    A ConfigError, not a RemoteError: nothing remote was tried; ``backend=ray`` is a setting this
    installation cannot honour, and the fix is a setting (``backend=local``) or an install.
    """
    try:
        import ray
    except ImportError as e:
        raise ConfigError(f"backend=ray needs Ray, which is not installed ({e}); install it with "
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
    """Yield ``(item, fn(item))`` as Ray tasks finish; see :func:`chimein.exec.imap_unordered`.

    ``workers`` is the number of tasks that run at once (None or <= 0: the whole cluster, see
    :func:`cluster_cpus`). ``max_pending`` bounds the tasks submitted and not yet collected
    (default ``2 * workers``): when the cluster has no more task slots than ``workers`` (the
    local instance started with ``num_cpus=workers``) the surplus waits in Ray's queue, so a
    worker starts its next task without a round trip to the driver; on a larger cluster only
    ``workers`` tasks are submitted at a time. Items are drawn from ``items`` lazily. When the
    caller stops early or a task fails, the tasks still pending are cancelled.

    Examples
    --------
    >>> from chimein.exec.ray import imap_unordered  # doctest: +SKIP
    >>> sorted(r for _, r in imap_unordered(abs, [-1, -2, 3], workers=2))  # doctest: +SKIP
    [1, 2, 3]
    """
    opts = RayOptions.from_mapping(options)
    ray = ensure_ray(opts, workers)
    if opts.num_gpus > float(ray.cluster_resources().get("GPU", 0.0)):
        raise RemoteError(f"ray options: field 'num_gpus': tasks ask for {opts.num_gpus} GPU but the Ray cluster "
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

    def submit(x: T) -> Any:
        return task.remote(payload, x)

    def wait_any(refs: Collection[Any]) -> list[Any]:
        return ray.wait(list(refs), num_returns=1)[0]

    def cancel(ref: Any) -> None:
        with contextlib.suppress(Exception):  # already finished or gone: nothing to cancel
            ray.cancel(ref)

    # ray.get of a failed task raises, with the worker's traceback
    yield from bounded_unordered(items, submit, wait_any, ray.get, cancel, in_flight)
