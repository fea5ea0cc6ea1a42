"""The execution seam: run independent jobs on a local process pool (or inline).

``chimein scenes generate`` (and later ``eval`` and ``attack``) hand their per-item work to
:func:`imap_unordered`; results come back to the driver, which alone writes files, so a
killed worker never leaves a partial file and the output does not depend on the number of
workers. A Ray backend plugs in here later without touching the callers.

This module imports nothing of chimein, so every layer may use it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

BACKENDS = ("local", "inline")


def default_workers() -> int:
    """Cores available to this process (respects CPU affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


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
) -> Iterator[tuple[T, R]]:
    """Yield ``(item, fn(item))`` as jobs finish.

    ``backend="inline"`` (or ``workers=1``) runs in this process, in order: simplest to debug.
    ``backend="local"`` uses a ``spawn`` process pool (no fork of a process that may hold
    threads or native library state), with at most ``max_pending`` jobs in flight so a huge
    item list is not materialised at once. An exception in a job propagates to the caller
    after the pool is shut down.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is unknown; use one of {BACKENDS}")
    workers = default_workers() if workers is None or workers <= 0 else workers
    if backend == "inline" or workers == 1:
        if initializer is not None:
            initializer(*initargs)
        for it in items:
            yield it, fn(it)
        return
    max_pending = max_pending or workers * 4
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(initializer, initargs)) as pool:
        pending: dict[Future[R], T] = {}
        it = iter(items)
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < max_pending:
                    try:
                        x = next(it)
                    except StopIteration:
                        exhausted = True
                        break
                    pending[pool.submit(fn, x)] = x
                if not pending:
                    return
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    x = pending.pop(f)
                    yield x, f.result()
        finally:
            for f in pending:
                f.cancel()
