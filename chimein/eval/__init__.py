"""Offline evaluation of timing policies: versioned suites, batched runner, metrics, reports.

- :mod:`chimein.eval.suites` -- named, versioned suites (``chimein-bench-v0``, ``chimein-bench-v1``
  and their ``-mini``), materialised once to a cache and identified by a scene fingerprint and an
  audio fingerprint;
- :mod:`chimein.eval.heldout` -- what a suite's ``heldout`` tier shares with the training configs
  (voices, speakers, room and device seeds, pack files);
- :mod:`chimein.eval.runner` -- plays a policy over a suite through the batched vector env, in
  parallel processes, appending resumable ``episodes.jsonl`` logs;
- :mod:`chimein.eval.metrics` -- every timing metric (recall, F1, false alarms per minute,
  interruption and pause-takeover rates, safety-critical misses, latency percentiles,
  timeliness, normalised reward, PSB-style clip accuracy) with bootstrap intervals, all from
  the shared scoring function's outcomes;
- :mod:`chimein.eval.metrics` also gives the generalisation gap (held-out minus clean+hard);
- :mod:`chimein.eval.report` -- ``results.json``, ``report.md`` with plots, leaderboards (paired
  differences overall and per tier); :mod:`chimein.eval.tables` formats their cells;
- :mod:`chimein.eval.field` -- the field's metrics: false cut-offs (LiveKit) and takeover rates per
  Full-Duplex-Bench condition, from the same outcomes;
- :mod:`chimein.eval.external` -- playing external audio (clips, recordings) as scenes;
  :mod:`chimein.eval.psb` -- Proactive-Sound-Bench interop (evaluate on PSB clips, export
  scenes as PSB clips); :mod:`chimein.eval.recordings` -- a policy on a folder of annotated
  recordings (a Hugging Face audiofolder, ``chimein scenes export-hf``'s or a lab's own).

Importing this package is cheap; submodules load on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SUITES", "aggregate", "compare", "evaluate", "evaluate_many", "evaluate_psb", "export_psb",
           "get_suite", "materialize"]

_LAZY = {
    "SUITES": "chimein.eval.suites", "get_suite": "chimein.eval.suites", "materialize": "chimein.eval.suites",
    "evaluate": "chimein.eval.runner", "evaluate_many": "chimein.eval.runner",
    "aggregate": "chimein.eval.metrics", "compare": "chimein.eval.report",
    "evaluate_psb": "chimein.eval.psb", "export_psb": "chimein.eval.psb",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'chimein.eval' has no attribute {name!r}")
