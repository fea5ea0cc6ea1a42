"""What a search writes as it goes, for resuming: the state after every generation
(``attack_state.json``) and every evaluated candidate (``candidates.jsonl``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chimein.errors import SpecError
from chimein.eval.attack.search import initial_distribution
from chimein.io import atomic_write_text, read_jsonl

__all__ = ["CANDIDATES", "STATE", "STATE_VERSION", "append_candidate", "load_state", "read_candidates"]


STATE = "attack_state.json"


CANDIDATES = "candidates.jsonl"


STATE_VERSION = 1


def read_candidates(path: str | Path) -> dict[str, dict[str, Any]]:
    """Results in ``candidates.jsonl`` by key; a cut-off last line (a killed run) is dropped
    and the file rewritten without it, so appends start on a fresh line."""
    p = Path(path)
    if not p.is_file():
        return {}
    rows, cut = read_jsonl(p, "delete the line (it will be re-evaluated)")
    out: dict[str, dict[str, Any]] = {str(d["key"]): d for _, d in rows}
    if cut:
        atomic_write_text(p, "".join(json.dumps(d, sort_keys=True) + "\n" for d in out.values()))
    return out


def append_candidate(fd: int, result: Mapping[str, Any]) -> None:
    os.write(fd, (json.dumps(result, sort_keys=True) + "\n").encode())
    os.fsync(fd)


def load_state(out: Path, identity: Mapping[str, Any], space: Any) -> dict[str, Any]:
    path = out / STATE
    if path.is_file():
        try:
            state = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise SpecError(f"{path}: corrupt state ({e}); delete {out} or use another out=") from None
        if state.get("identity") != json.loads(json.dumps(identity)):
            old = state.get("identity") or {}
            diff = sorted(k for k in set(old) | set(identity) if old.get(k) != json.loads(json.dumps(identity)).get(k))
            raise SpecError(f"{path}: this directory holds an attack with a different {diff or 'identity'} "
                            "(policy, space, search settings, seed or env); use a new out= directory")
        return state
    state = {"version": STATE_VERSION, "identity": json.loads(json.dumps(identity)), "generations": 0,
             "history": [], "prior": initial_distribution(space)}
    atomic_write_text(path, json.dumps(state, indent=1, sort_keys=True) + "\n")
    return state
