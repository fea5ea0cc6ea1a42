"""``chimein attack``: search the scenes that break a policy, or replay a saved scene set."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from chimein.cli.common import container
from chimein.errors import ConfigError
from chimein.io import atomic_write_text


def attack(cfg: Any) -> int:
    """``chimein attack policy=NAME budget=N out=DIR [workers=N] [seed=S]``; with ``replay=DIR``
    the policy is re-evaluated on a saved scene set instead (``out=`` optional: ``replay.json``)."""
    from chimein.eval.attack import attack as run_attack
    from chimein.eval.attack import replay
    from chimein.exec import ray_options_from_config

    c = container(cfg)
    a = c["attack"]
    if c.get("replay"):
        from chimein.eval.attack import replay_summary

        rep = replay(c["policy"], c["replay"], policy_kwargs=c.get("policy_args") or {}, search=a["search"],
                     workers=int(c.get("workers") or 0) or None, backend=str(c.get("backend", "local")),
                     seed=int(c["seed"]), progress=bool(c.get("progress", True)),
                     ray_options=ray_options_from_config(c))
        print(replay_summary(rep))
        if c.get("out"):
            Path(c["out"]).mkdir(parents=True, exist_ok=True)
            atomic_write_text(Path(c["out"]) / "replay.json", json.dumps(rep, indent=1, sort_keys=True) + "\n")
            print(f"wrote {Path(c['out']) / 'replay.json'}", file=sys.stderr)
        return 0
    if not c.get("out"):
        raise ConfigError("attack: field 'out': give the output directory, out=DIR")
    res = run_attack(c["policy"], c["out"], int(c["budget"]), space=a["space"], search=a["search"],
                 policy_kwargs=c.get("policy_args") or {}, seed=int(c["seed"]),
                 workers=int(c.get("workers") or 0) or None, backend=str(c.get("backend", "local")),
                 rir_cache_dir=c.get("rir_cache_dir"), progress=bool(c.get("progress", True)),
                 report=bool(c.get("report", True)), ray_options=ray_options_from_config(c))
    from chimein.eval.attack import summary

    print(summary(res))
    what = "report.md, results.json" if c.get("report", True) else "results.json"
    print(f"wrote {what} and the scene dataset in {c['out']}", file=sys.stderr)
    return 0
