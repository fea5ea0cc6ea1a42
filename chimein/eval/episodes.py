"""``episodes.jsonl``: one self-contained JSON line per evaluated episode.

Each line carries what is needed to re-score the episode without the simulator or its audio:
the suite identity (name, revision, definition hash, fingerprint), the run key (policy + env
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

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> p = Path(tempfile.mkdtemp()) / "episodes.jsonl"
>>> append_episodes(p, [{"split": "a", "scene_id": "s0"}])
>>> [e["scene_id"] for e in read_episodes(p)]
['s0']
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from chimein.errors import SpecError

__all__ = ["EPISODES", "append_episodes", "check_identity", "episode_key", "latency_summary",
           "merged_latency", "read_episodes"]

EPISODES = "episodes.jsonl"


def episode_key(line: Mapping[str, Any]) -> tuple[str, str]:
    """``(split, scene_id)``: what identifies an episode within a run."""
    return str(line.get("split", "")), str(line["scene_id"])


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


def merged_latency(lines: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """:func:`latency_summary` over every chunk of every line that recorded its decision
    latencies (``decision_latencies_ms``), plus ``episodes``: how many lines did; None when none
    did. Percentiles come from the pooled raw values, not from the lines' own percentiles."""
    pooled: list[float] = []
    k = 0
    for d in lines:
        v = d.get("decision_latencies_ms")
        if isinstance(v, list):
            pooled.extend(float(x) for x in v)
            k += 1
    if not k:
        return None
    return {**latency_summary(pooled), "episodes": k}


def read_episodes(path: str | Path, repair: bool = False) -> list[dict[str, Any]]:
    """Parse an episodes file; errors name the line.

    A last line without its newline that is not valid JSON (a write cut off by a kill) is
    dropped with a warning; with ``repair`` the file is rewritten without it so appends start
    on a fresh line.
    """
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"{p}: episodes file not found")
    text = p.read_text(encoding="utf-8")
    lines = text.split("\n")
    out: list[dict[str, Any]] = []
    cut = False
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            d = json.loads(raw)
        except json.JSONDecodeError as e:
            if i == len(lines) - 1:  # no trailing newline: an interrupted append
                print(f"warning: {p}:{i + 1}: dropping an incomplete last line (interrupted write)",
                      file=sys.stderr)
                cut = True
                break
            raise SpecError(f"{p}:{i + 1}: not valid JSON ({e.msg}); each line must be one episode object") from None
        if not isinstance(d, dict):
            raise SpecError(f"{p}:{i + 1}: expected a JSON object, got {type(d).__name__}")
        if "scene_id" not in d:
            raise SpecError(f"{p}:{i + 1}: field 'scene_id' is missing")
        d.setdefault("_line", i + 1)
        out.append(d)
    if cut and repair:
        from chimein.io import atomic_write_text

        atomic_write_text(p, "".join(json.dumps(_public(d), sort_keys=True) + "\n" for d in out))
    return out


def _public(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if not k.startswith("_")}


def append_episodes(path: str | Path, lines: Iterable[Mapping[str, Any]]) -> None:
    """Append episode lines (one ``os.write`` per line) and ``fsync`` the file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        for d in lines:
            os.write(fd, (json.dumps(_public(d), sort_keys=True) + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def check_identity(lines: Iterable[Mapping[str, Any]], suite: Mapping[str, Any], run_key: str,
                   path: str | Path, run_desc: str = "") -> None:
    """Refuse episodes that belong to another suite version, materialisation or run.

    Raises
    ------
    SpecError
        Naming the file, the line and what differs, with the fix (another ``out=``).
    """
    for d in lines:
        where = f"{path}:{d.get('_line', '?')}"
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
        if s.get("fingerprint") != suite["fingerprint"]:
            raise SpecError(f"{where}: episodes of another materialisation of {suite['name']!r} (fingerprint "
                            f"{str(s.get('fingerprint'))[:12]} vs {suite['fingerprint'][:12]}: its scenes "
                            "differ); use another out= directory")
        if d.get("run") != run_key:
            raise SpecError(f"{where}: episodes of another run (policy {d.get('policy')!r}, env "
                            f"{d.get('env')}) than this one{f' ({run_desc})' if run_desc else ''}; "
                            "use another out= directory")
