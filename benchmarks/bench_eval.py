"""Benchmark: evaluation throughput of the baselines (episodes/s), batched vs unbatched.

For each suite (``chimein-bench-v0-mini`` and ``chimein-bench-v0``; materialised first, not
timed) and each baseline, the episodes are played through :func:`chimein.eval.runner.run_shards`
exactly as ``chimein eval`` plays them (vector env + batched policy), without writing files:

- ``batched``: ``--batch`` streams per vector env, on ``--workers`` processes (the
  ``chimein eval`` default), over the whole suite;
- ``b=1, 1 proc`` and ``b=B, 1 proc``: on one process, unbatched (one stream per env) and
  batched, over a subset of ``--subset`` scenes per split of the full suite (all scenes of the
  mini suite), to isolate what batching gains.

Reported: episodes/s and seconds of audio judged per second, and the batched/unbatched ratio.
First, the mini suite's materialisation is timed into an empty cache (``--workers`` processes,
a fresh RIR cache: what a first ``chimein eval`` on a new machine pays) and again when reused
(nothing rendered); the tests check only that reuse renders nothing, not how long it takes.
The machine's load average is printed: the project's CI machine has 2 shared cores, so
numbers vary with what else runs. Every process uses one BLAS/torch thread.

Usage::

    .venv/bin/python benchmarks/bench_eval.py                 # both suites (about 10 min on 2 cores)
    .venv/bin/python benchmarks/bench_eval.py --suites chimein-bench-v0-mini --quick
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy / torch are imported

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from chimein.agents.registry import POLICY_NAMES  # noqa: E402
from chimein.eval.runner import PolicySpec, Shard, make_shards, resolve_env, run_shards  # noqa: E402
from chimein.eval.suites import MaterializedSuite, materialize  # noqa: E402


def shards_for(m: MaterializedSuite, policy: str, batch: int, per_split: int | None) -> list[Shard]:
    d = m.definition
    return make_shards(m, PolicySpec(policy), resolve_env(d.env, d.reward), batch, per_split=per_split)


def timed(shards: list[Shard], workers: int) -> dict[str, float]:
    t = time.perf_counter()
    eps = run_shards(shards, workers=workers)
    wall = time.perf_counter() - t
    audio = sum(e.meta["duration_s"] for e in eps)
    return {"episodes": len(eps), "wall_s": wall, "eps_per_s": len(eps) / wall, "audio_x": audio / wall}


def time_materialise(name: str, workers: int) -> dict[str, float]:
    """Seconds to materialise suite ``name`` into an empty cache, then to reuse it."""
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        materialize(name, cache_dir=d, workers=workers, progress=False, rir_cache_dir=d)
        cold = time.perf_counter() - t
        t = time.perf_counter()
        materialize(name, cache_dir=d, workers=workers, progress=False, rir_cache_dir=d)
        return {"cold_s": cold, "reuse_s": time.perf_counter() - t}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suites", nargs="+", default=["chimein-bench-v0-mini", "chimein-bench-v0"])
    ap.add_argument("--policies", nargs="+", default=list(POLICY_NAMES))
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--subset", type=int, default=4, help="scenes per split of the full suite for b=1 vs b=B")
    ap.add_argument("--quick", action="store_true", help="skip the whole-suite parallel run")
    ap.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    a = ap.parse_args()
    print(f"# bench_eval: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}, batch={a.batch}, workers={a.workers}")
    for name in (n for n in a.suites if n.endswith("-mini")):
        mt = time_materialise(name, a.workers)
        print(f"# materialise {name}: {mt['cold_s']:.1f} s into an empty cache ({a.workers} procs), "
              f"{mt['reuse_s']:.2f} s reused (goal: under 60 s cold on the 2-core CI machine)", flush=True)
    rows: list[dict[str, Any]] = []
    for name in a.suites:
        m = materialize(name, progress=False)
        per = None if name.endswith("-mini") else a.subset
        for p in a.policies:
            r: dict[str, Any] = {"suite": name, "policy": p}
            if not a.quick:
                r["batched"] = timed(shards_for(m, p, a.batch, None), a.workers)
            r["b1"] = timed(shards_for(m, p, 1, per), 1)
            r["bB"] = timed(shards_for(m, p, a.batch, per), 1)
            r["ratio"] = r["bB"]["eps_per_s"] / r["b1"]["eps_per_s"]
            rows.append(r)
            print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}), flush=True)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}\n")
    print(f"| suite | policy | episodes | batched, {a.workers} procs: ep/s (audio x) | subset | b=1, 1 proc: ep/s "
          f"| b={a.batch}, 1 proc: ep/s | batched / unbatched |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        b = r.get("batched")
        bt = f"{b['eps_per_s']:.1f} ({b['audio_x']:.0f}x)" if b else "-"
        print(f"| {r['suite']} | {r['policy']} | {b['episodes'] if b else '-'} | {bt} | {r['b1']['episodes']} | "
              f"{r['b1']['eps_per_s']:.1f} | {r['bB']['eps_per_s']:.1f} | {r['ratio']:.2f}x |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
