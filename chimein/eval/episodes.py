"""``episodes.jsonl``: one self-contained JSON line per evaluated episode.

Each line carries what is needed to re-score the episode without the simulator or its audio:
the suite identity (name, revision, definition hash, fingerprints), the run key (policy + env
options), the split, the scene id, the scene's annotations, the action log
(:meth:`~chimein.envs.scoring.ActionLog.to_dict`), the reward configuration and the outcome
the environment computed (:meth:`~chimein.envs.scoring.EpisodeOutcome.to_dict`).

Lines are appended with one ``write`` each and ``fsync``-ed after every batch, so a killed run
loses at most the batch in flight; a cut-off last line is dropped on the next read, and the
run resumes with the episodes that are missing. Logs of real deployments can be re-scored too:
a line needs only ``scene_id``, ``action_log`` and ``annotations`` (or ``spec``, the path of a
scene spec JSON relative to the file).

Policies that measure their true decision latency (``chimein.agents.remote.RemotePolicy`` with
``realtime=True``: network + queue + model per chunk) add two optional fields to their lines:
``decision_latencies_ms``, the latency of every chunk the episode was live for (ms, rounded to
0.01), and ``decision_latency_ms``, its :func:`latency_summary`. Lines without them load as
before; :func:`merged_latency` pools the raw values of many lines (resumed runs included) into
one summary over all chunks.

The policy's compute time is *not* in this file (its lines stay identical from run to run, the
``wall_s`` share of the shard aside): the runner appends one line per played shard to the side
file :data:`TIMING` (``decision_timing.jsonl``, next to ``episodes.jsonl``), and
:func:`ms_per_decision` pools the lines of a run into ``results.json``'s ``ms_per_decision``.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> from chimein.envs.scoring import ActionLog
>>> p = Path(tempfile.mkdtemp()) / "episodes.jsonl"
>>> log = ActionLog.from_actions([0, 1, 0], chunk_s=0.08)
>>> append_episodes(p, [EpisodeRecord("s0", log, meta={"split": "a"})])
>>> [(e.split, e.scene_id, e.line) for e in read_episodes(p)]
[('a', 's0', 1)]
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from chimein.envs.episode import EpisodeRecord
from chimein.errors import SpecError
from chimein.eval.suites import audio_fingerprint_of, same_audio, same_scenes
from chimein.io import atomic_write_text, read_jsonl

__all__ = ["EPISODES", "TIMING", "append_episodes", "append_timing", "check_identity", "latency_summary",
           "merged_latency", "ms_per_decision", "read_episodes"]

EPISODES = "episodes.jsonl"
#: The side file of per-shard decision timings (see :func:`ms_per_decision`).
TIMING = "decision_timing.jsonl"


def latency_summary(values_ms: Iterable[float]) -> dict[str, Any]:
    """Count, mean and p50/p90/p99/max (ms, 3 decimals; None when empty) of latencies.

    Examples
    --------
    >>> latency_summary([1.0, 2.0, 3.0])["p50"]
    2.0
    >>> latency_summary([])["p99"] is None
    True
    """
    from chimein.agents.remote import latency_summary as summary

    s = summary(list(values_ms))
    out: dict[str, Any] = {"n": s["n"]}
    for k in ("mean", "p50", "p90", "p99", "max"):
        v = s[f"{k}_ms"]
        out[k] = None if v is None else round(float(v), 3)
    return out


def merged_latency(records: Iterable[EpisodeRecord]) -> dict[str, Any] | None:
    """:func:`latency_summary` over every chunk of every episode that recorded its decision
    latencies (``decision_latencies_ms``), plus ``episodes``: how many did; None when none did.
    Percentiles come from the pooled raw values, not from the episodes' own percentiles."""
    pooled: list[float] = []
    k = 0
    for r in records:
        if r.decision_latencies_ms is not None:
            pooled.extend(float(x) for x in r.decision_latencies_ms)
            k += 1
    if not k:
        return None
    return {**latency_summary(pooled), "episodes": k}


def append_timing(path: str | Path, run: str, timing: Mapping[str, Any]) -> None:
    """Append one shard's decision timing (``{"batch", "threads", "ms", "live"}``, see
    :func:`ms_per_decision`) for run key ``run`` to the side file ``path`` (:data:`TIMING`)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("a", encoding="utf-8") as f:
        f.write(json.dumps({"run": run, **timing}, sort_keys=True) + "\n")


def ms_per_decision(path: str | Path, run: str) -> dict[str, Any] | None:
    """Milliseconds per decision of run ``run``, pooled over the shard lines of the side file
    ``path`` (:data:`TIMING`; every shard this run played, resumed invocations included).

    Each line holds, for every ``policy.act`` call of one shard, ``ms``: the call's wall time
    divided by the number of streams in the call (the shard's ``batch``: one stream's share of a
    batched decision), and ``live``: how many of those streams were still playing (the decisions
    the call made). The mean and p99 are over decisions (each call's figure weighted by its
    ``live``); ``threads`` is the most compute threads any shard ran with (torch's intra-op
    threads where torch was loaded, else ``OMP_NUM_THREADS``; None when unknown) and ``batch``
    the largest shard.

    Returns
    -------
    dict or None
        ``{"mean", "p99" (ms, 4 decimals), "threads", "batch", "decisions", "calls"}``; None
        when the file holds no line of this run (a run written before timings were kept).

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / TIMING
    >>> append_timing(p, "r", {"batch": 2, "threads": 1, "ms": [3.0, 1.0], "live": [2, 1]})
    >>> ms_per_decision(p, "r")
    {'mean': 2.3333, 'p99': 3.0, 'threads': 1, 'batch': 2, 'decisions': 3, 'calls': 2}
    >>> ms_per_decision(p, "other") is None
    True
    """
    p = Path(path)
    if not p.is_file():
        return None
    rows = [d for _, d in read_jsonl(p, "each line must be one shard's decision timing")[0]
            if isinstance(d, Mapping) and d.get("run") == run]
    if not rows:
        return None
    try:
        ms = np.concatenate([np.asarray(d["ms"], float) for d in rows])
        live = np.concatenate([np.asarray(d["live"], float) for d in rows])
        threads = [int(d["threads"]) for d in rows if d.get("threads") is not None]
        batch = max(int(d["batch"]) for d in rows)
    except (KeyError, TypeError, ValueError) as e:
        raise SpecError(f"{p}: malformed decision timing line ({e}); delete the file and rerun") from None
    if ms.shape != live.shape or not live.sum() > 0:
        return None
    order = np.argsort(ms, kind="stable")
    cw = np.cumsum(live[order])
    p99 = ms[order][min(int(np.searchsorted(cw, 0.99 * cw[-1] - 1e-9)), len(ms) - 1)]
    return {"mean": round(float(np.dot(ms, live) / live.sum()), 4), "p99": round(float(p99), 4),
            "threads": max(threads) if threads else None, "batch": batch, "decisions": int(live.sum()),
            "calls": int(len(ms))}


def read_episodes(path: str | Path, repair: bool = False) -> list[EpisodeRecord]:
    """The records of an episodes file; errors name the file and line.

    A last line without its newline that is not valid JSON (a write cut off by a kill) is
    dropped with a warning; with ``repair`` the file is rewritten without it so appends start
    on a fresh line.

    Raises
    ------
    SpecError
        The file is missing, or a line is not JSON or not a valid episode
        (:meth:`~chimein.envs.episode.EpisodeRecord.from_dict`).
    """
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"{p}: episodes file not found")
    rows, cut = read_jsonl(p, "each line must be one episode object")
    out = [EpisodeRecord.from_dict(d, where=f"{p}:{n}", line=n) for n, d in rows]
    if cut and repair:
        atomic_write_text(p, "".join(r.to_json() + "\n" for r in out))
    return out


def append_episodes(path: str | Path, records: Iterable[EpisodeRecord]) -> None:
    """Append episode records (one ``os.write`` per :meth:`~EpisodeRecord.to_json` line) and
    ``fsync`` the file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        for r in records:
            os.write(fd, (r.to_json() + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def check_identity(records: Iterable[EpisodeRecord], suite: Mapping[str, Any], run_key: str,
                   path: str | Path, run_desc: str = "") -> None:
    """Refuse episodes that belong to another suite version, materialisation or run.

    Raises
    ------
    SpecError
        Naming the file, the line and what differs, with the fix (another ``out=``).
    """
    for r in records:
        d = r.meta
        where = f"{path}:{'?' if r.line is None else r.line}"
        s = d.get("suite") or {}
        if s.get("name") != suite["name"]:
            raise SpecError(f"{where}: episodes of suite {s.get('name')!r}, but this run evaluates "
                            f"{suite['name']!r}; use another out= directory")
        if s.get("revision") != suite["revision"] or s.get("definition_hash") != suite["definition_hash"]:
            raise SpecError(
                f"{where}: episodes of suite {suite['name']!r} revision {s.get('revision')} (definition "
                f"{str(s.get('definition_hash'))[:12]}), but this chimein's suite is revision "
                f"{suite['revision']} (definition {suite['definition_hash'][:12]}): another suite version; "
                "use another out= directory (or re-score the old file with `chimein eval rescore`)")
        if not (same_scenes(s, suite) and same_audio(s, suite)):
            raise SpecError(f"{where}: episodes of another materialisation of {suite['name']!r} (fingerprint "
                            f"{str(s.get('fingerprint'))[:12]} vs {suite['fingerprint'][:12]}, audio "
                            f"{audio_fingerprint_of(s)[:12]} vs {audio_fingerprint_of(suite)[:12]}: its scenes "
                            "or audio differ); use another out= directory")
        if d.get("run") != run_key:
            raise SpecError(f"{where}: episodes of another run (policy {d.get('policy')!r}, env "
                            f"{d.get('env')}) than this one{f' ({run_desc})' if run_desc else ''}; "
                            "use another out= directory")
