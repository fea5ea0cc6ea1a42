"""The execution seam: run independent jobs on a local process pool, inline, or on Ray.

It knows no domain: jobs arrive as picklable callables and items, results come back to the
caller (:func:`imap_unordered`). Layer 0: it imports nothing of chimein but layer 0
(:mod:`chimein.errors`, :mod:`chimein.config` for the Ray options),
so every package may use it. :mod:`chimein.exec.pool` holds the local pool and the dispatch,
:mod:`chimein.exec.ray` the Ray Core backend (``pip install 'chimein[ray]'``), and
:mod:`chimein.exec.bounded` the lazy, in-flight bounded submit loop both use.

Examples
--------
>>> from chimein.exec import imap_unordered
>>> sorted(r for _, r in imap_unordered(abs, [-2, 1, -3], backend="inline"))
[1, 2, 3]
"""

from __future__ import annotations

from chimein.exec.pool import (
    BACKENDS,
    RAY_CONFIG_KEYS,
    default_workers,
    imap_unordered,
    ray_options_from_config,
    resolve_workers,
)

__all__ = ["BACKENDS", "RAY_CONFIG_KEYS", "default_workers", "imap_unordered", "ray_options_from_config",
           "resolve_workers"]
