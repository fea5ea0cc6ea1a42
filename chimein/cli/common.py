"""What every command group of the CLI shares: reading the composed config, the positional
run-folder slots, and printing progress to stderr."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from chimein.config import to_plain
from chimein.errors import ConfigError

__all__ = ["RUNS", "container", "positional_runs", "say"]


def container(cfg: Any) -> dict[str, Any]:
    """A composed Hydra config as a plain ``dict`` (:func:`chimein.config.to_plain`:
    interpolations resolved); a plain mapping, as tests and the demo pass, is copied."""
    c = to_plain(cfg)
    if not isinstance(c, Mapping):
        raise ConfigError(f"expected a mapping of command options, got {type(c).__name__}")
    return dict(c)


def say(msg: str) -> None:
    """A progress line on stderr (stdout keeps the command's result)."""
    print(msg, file=sys.stderr, flush=True)


#: positional slots of the commands that take a list of folders (``eval compare DIR1 DIR2 ...``);
#: :func:`positional_runs` reads them back in order
RUNS = tuple(f"+runs.r{i:03d}" for i in range(256))


def positional_runs(c: Mapping[str, Any]) -> list[str]:
    """The folders given as positional arguments (``runs`` filled through :data:`RUNS`; a
    comma-separated string or a list also work, e.g. ``runs=[a,b]`` from Python)."""
    runs = c.get("runs") or {}
    if isinstance(runs, Mapping):
        return [str(runs[k]) for k in sorted(runs)]
    if isinstance(runs, str):
        return [r for r in runs.split(",") if r]
    return [str(r) for r in runs]
