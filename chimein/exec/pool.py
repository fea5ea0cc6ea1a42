"""The execution seam: run independent jobs on a local process pool, inline, or on Ray.

``chimein scenes generate``, ``chimein eval`` and ``chimein attack`` hand their per-item work to
:func:`imap_unordered`; results come back to the driver, which writes the files that record
progress (manifest lines, episodes, candidates), so a killed worker never leaves a partial
record and the output does not depend on the backend or the number of workers.

Backends:

- ``"local"`` (default): a ``spawn`` process pool on this machine;
- ``"inline"``: this process, in order (also what ``workers=1`` means for ``"local"``);
- ``"ray"``: Ray Core tasks (:mod:`chimein.exec.ray`), on a local Ray instance or a cluster
  (``ray_options={"address": "auto"}``); needs the ``ray`` extra (``pip install 'chimein[ray]'``).

This module imports nothing of chimein but :mod:`chimein.errors`, :mod:`chimein.exec.bounded`
(the in-flight bounded submit loop it shares with the Ray backend), and :mod:`chimein.exec.ray`
when (and only when) the Ray backend is used, so every layer may use it and ``import chimein`` never imports Ray.

Examples
--------
>>> from chimein.exec import imap_unordered
>>> sorted(r for _, r in imap_unordered(abs, [-2, 1, -3], backend="inline"))
[1, 2, 3]
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, TypeVar

from chimein.errors import ConfigError
from chimein.exec.bounded import bounded_unordered

T = TypeVar("T")
R = TypeVar("R")

BACKENDS = ("local", "inline", "ray")
#: Config keys (``ray_address=auto``, ``eval.ray_num_gpus=0.25``) read by :func:`ray_options_from_config`.
RAY_CONFIG_KEYS = ("address", "num_cpus", "num_gpus", "max_retries", "runtime_env", "object_store_memory")


def default_workers() -> int:
    """Cores available to this process (respects CPU affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def resolve_workers(workers: int | None, backend: str = "local",
                    ray_options: Mapping[str, Any] | Any | None = None) -> int:
    """The number of jobs that run at once: ``workers`` if positive, else all of this machine's
    cores (``local``) or every task slot of the Ray cluster (``ray``; connects to it)."""
    if workers is not None and int(workers) > 0:
        return int(workers)
    if backend == "ray":
        from chimein.exec.ray import cluster_cpus

        return cluster_cpus(ray_options)
    return default_workers()


def ray_options_from_config(cfg: Mapping[str, Any], prefix: str = "ray_") -> dict[str, Any]:
    """Ray options from a command's config: ``ray_address``, ``ray_num_gpus``, ... -> ``address``,
    ``num_gpus``, ...; unset (None) keys are left out.

    Examples
    --------
    >>> ray_options_from_config({"backend": "ray", "ray_address": "auto", "ray_num_gpus": 0.25, "workers": 4})
    {'address': 'auto', 'num_gpus': 0.25}
    """
    return {k: cfg[prefix + k] for k in RAY_CONFIG_KEYS if cfg.get(prefix + k) is not None}


def _init_worker(initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    # one BLAS/FFT thread per worker: the pool provides the parallelism
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if initializer is not None:
        initializer(*initargs)


def imap_unordered(
    fn: Callable[[T], R],
    items: Iterable[T],
    workers: int | None = None,
    backend: str = "local",
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
    max_pending: int | None = None,
    ray_options: Mapping[str, Any] | Any | None = None,
) -> Iterator[tuple[T, R]]:
    """Yield ``(item, fn(item))`` as jobs finish.

    ``backend="inline"`` (or ``workers=1`` with ``"local"``) runs in this process, in order:
    simplest to debug. ``backend="local"`` uses a ``spawn`` process pool (no fork of a process
    that may hold threads or native library state), with at most ``max_pending`` jobs in flight
    so a huge item list is not materialised at once. An exception in a job propagates to the
    caller after the pool is shut down.

    ``backend="ray"`` runs each job as a Ray task (see :func:`chimein.exec.ray.imap_unordered`):
    ``ray_options`` (a mapping or :class:`chimein.exec.ray.RayOptions`: ``address``,
    ``num_cpus``/``num_gpus`` per task, ``max_retries``, ``runtime_env``) say where and how;
    ``workers`` None or 0 means every task slot of the cluster; ``workers=1`` still uses Ray.
    A job whose worker dies is run again; ``fn`` and the items must be picklable (module-level
    functions), and ``fn`` must not rely on the driver's disk when the cluster has several
    machines -- return data, let the driver write it.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend={backend!r} is unknown; use one of {BACKENDS}")
    if backend == "ray":
        from chimein.exec.ray import imap_unordered as ray_imap

        yield from ray_imap(fn, items, workers=workers, initializer=initializer, initargs=initargs,
                            max_pending=max_pending, options=ray_options)
        return
    workers = default_workers() if workers is None or workers <= 0 else workers
    if backend == "inline" or workers == 1:
        if initializer is not None:
            initializer(*initargs)
        for item in items:
            yield item, fn(item)
        return
    max_pending = max_pending or workers * 4
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(initializer, initargs)) as pool:
        def submit(x: T) -> Future[R]:
            return pool.submit(fn, x)

        def wait_any(fs: Collection[Future[R]]) -> set[Future[R]]:
            return wait(fs, return_when=FIRST_COMPLETED).done

        yield from bounded_unordered(items, submit, wait_any, Future.result, Future.cancel, max_pending)
