"""The in-flight bounded submit loop shared by the local pool and the Ray backend.

Both backends draw items lazily, keep at most a given number of jobs submitted and not yet
collected, hand back ``(item, result)`` in completion order, and cancel what is still pending
when the caller stops early or a job fails. Only the four job operations differ (submit, wait
for one to finish, fetch its result, cancel), so :func:`bounded_unordered` takes them as
callables and knows neither backend.

Examples
--------
>>> from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
>>> with ThreadPoolExecutor(2) as pool:
...     out = bounded_unordered([-2, 1, -3], lambda x: pool.submit(abs, x),
...                             lambda fs: wait(fs, return_when=FIRST_COMPLETED)[0],
...                             lambda f: f.result(), lambda f: f.cancel(), in_flight=2)
...     sorted(r for _, r in out)
[1, 2, 3]
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")
H = TypeVar("H", bound=Hashable)

__all__ = ["bounded_unordered"]


def bounded_unordered(
    items: Iterable[T],
    submit: Callable[[T], H],
    wait_any: Callable[[Collection[H]], Iterable[H]],
    result: Callable[[H], R],
    cancel: Callable[[H], Any],
    in_flight: int,
) -> Iterator[tuple[T, R]]:
    """Yield ``(item, result)`` as jobs finish, with at most ``in_flight`` submitted at once.

    Parameters
    ----------
    items
        Drawn lazily, one per free slot, so a huge item list is never materialised.
    submit
        Starts the job of one item and returns its handle (a future, a Ray object ref).
    wait_any
        Blocks until at least one of the pending handles has finished; returns the finished ones.
    result
        The finished job's result; a failed job raises here, and the error propagates.
    cancel
        Called on every handle still pending when the loop ends early (the caller stopped
        iterating, or a job failed).
    in_flight
        The most jobs submitted and not yet collected (>= 1).
    """
    pending: dict[H, T] = {}
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
                pending[submit(x)] = x
            if not pending:
                return
            for h in wait_any(pending.keys()):
                x = pending.pop(h)
                yield x, result(h)
    finally:
        for h in pending:
            cancel(h)
