"""Benchmark: throughput of the execution seam against worker count, local process pool vs Ray.

Two workloads, each run through the code path of its command:

- ``scenes``: :func:`chimein.scenes.dataset.generate_dataset` of ``--scenes`` scenes (sample,
  render, encode FLAC, write, append the manifest) into a fresh folder; the RIR cache is warmed
  first by an untimed run (RIR computation is the scene engine's cost, not the seam's);
- ``episodes``: :func:`chimein.eval.runner.run_shards` over the first ``--per-split`` scenes of
  every split of ``--suite`` (materialised first, untimed), ``--batch`` streams per shard,
  policy ``--policy``, exactly as ``chimein eval`` plays them (without writing episodes).

For each worker count (``--workers``, default 1 2) and backend:

- ``local``: the process pool of :func:`chimein.exec.imap_unordered` (``workers=1`` runs
  inline, in this process, as the commands do); a new pool per call, so its start-up (spawn +
  imports, about 1-2 s here) is included, as it is in every command;
- ``ray``: Ray Core tasks on a local Ray instance with ``num_cpus=max(workers)``, started once
  before timing (as a running cluster would be) and its workers warmed by a trivial call; with
  ``workers=1`` one task runs at a time.

Each configuration runs twice: the first call pays for cold workers (the pool's spawn, Ray
workers' first imports, in-memory RIR and policy caches), the second shows the steady state --
which Ray keeps across calls (its workers live as long as the driver: an attack's generations,
several evaluations), while the process pool starts afresh at every call.

Reported: scenes/s and episodes/s of both calls, and the Ray/local ratio at equal workers
(> 1: Ray faster).
Every run's output is checked against the first (same bytes for scenes, same episodes), so the
benchmark also proves that neither backend nor worker count changes results. The machine's load
average is printed: the CI machine has 2 cores shared with other jobs.

Usage::

    .venv/bin/python benchmarks/bench_parallel.py                  # about 3 min on 2 cores
    .venv/bin/python benchmarks/bench_parallel.py --quick          # smoke run
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy / torch are imported
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from chimein.eval.runner import PolicySpec, make_shards, resolve_env, run_shards  # noqa: E402
from chimein.eval.suites import materialize  # noqa: E402
from chimein.exec import imap_unordered  # noqa: E402
from chimein.scenes.dataset import generate_dataset  # noqa: E402

BACKENDS = ("local", "ray")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _warm_worker(_: int) -> int:
    """Import what the jobs import, so Ray's worker processes start warm (as on a running cluster)."""
    import chimein.envs.vector  # noqa: F401
    import chimein.scenes.render  # noqa: F401

    return os.getpid()


def bench_scenes(config: dict[str, Any], n: int, seed: int, workers: list[int], tmp: Path, rir: str,
                 ray_opts: dict[str, Any]) -> list[dict[str, Any]]:
    generate_dataset(config, n=n, seed=seed, out=tmp / "warm", workers=max(workers), progress=False,
                     cache_dir=rir)  # untimed: fills the RIR cache
    ref = _files(tmp / "warm")
    rows = []
    for w in workers:
        for backend in BACKENDS:
            for call in (1, 2):
                out = tmp / f"scenes-{backend}-{w}"
                t = time.perf_counter()
                generate_dataset(config, n=n, seed=seed, out=out, workers=w, progress=False, cache_dir=rir,
                                 backend=backend, ray_options=ray_opts)
                wall = time.perf_counter() - t
                assert _files(out) == ref, f"{backend} x{w}: bytes differ"
                shutil.rmtree(out)
                rows.append({"task": "scenes", "workers": w, "backend": backend, "call": call, "n": n,
                             "wall_s": wall, "per_s": n / wall})
                print(f"  scenes   {backend:<5} x{w} call {call}: {n / wall:7.2f} scenes/s ({wall:.1f} s)", flush=True)
    return rows


def bench_episodes(suite: str, per_split: int, batch: int, policy: str, workers: list[int],
                   ray_opts: dict[str, Any]) -> list[dict[str, Any]]:
    m = materialize(suite, workers=max(workers), progress=False)
    d = m.definition
    shards = make_shards(m, PolicySpec(policy), resolve_env(d.env, d.reward), batch, per_split=per_split)
    ref = None
    rows = []
    for w in workers:
        for backend in BACKENDS:
            for call in (1, 2):
                t = time.perf_counter()
                eps = run_shards(shards, workers=w, backend=backend, ray_options=ray_opts)
                wall = time.perf_counter() - t
                got = sorted(json.dumps({k: v for k, v in e.to_dict().items() if k != "wall_s"}, sort_keys=True) for e in eps)
                ref = ref or got
                assert got == ref, f"{backend} x{w}: episodes differ"
                audio = sum(e.meta["duration_s"] for e in eps)
                rows.append({"task": "episodes", "workers": w, "backend": backend, "call": call, "n": len(eps),
                             "wall_s": wall, "per_s": len(eps) / wall, "audio_x": audio / wall})
                print(f"  episodes {backend:<5} x{w} call {call}: {len(eps) / wall:7.2f} episodes/s ({wall:.1f} s, "
                      f"{audio / wall:.0f}x real time)", flush=True)
    return rows


def table(rows: list[dict[str, Any]], workers: list[int]) -> str:
    out = ["| workload (/s) | workers | local, call 1 | ray, call 1 | ray / local | local, call 2 | ray, call 2 "
           "| ray / local |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for task in ("scenes", "episodes"):
        for w in workers:
            r = {(x["backend"], x["call"]): x["per_s"] for x in rows if x["task"] == task and x["workers"] == w}
            if len(r) < 4:
                continue
            cells = []
            for call in (1, 2):
                loc, ray = r[("local", call)], r[("ray", call)]
                cells += [f"{loc:.2f}", f"{ray:.2f}", f"{ray / loc:.2f}"]
            out.append(f"| {task} | {w} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--scenes", type=int, default=24, help="scenes generated per run")
    ap.add_argument("--difficulty", default="default")
    ap.add_argument("--suite", default="chimein-bench-v0")
    ap.add_argument("--per-split", type=int, default=2, help="scenes per split of the suite")
    ap.add_argument("--batch", type=int, default=4, help="streams per shard")
    ap.add_argument("--policy", default="energy-endpoint")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="8 scenes, the mini suite, 1 scene per split")
    ap.add_argument("--json", help="also write the rows here")
    a = ap.parse_args()
    if a.quick:
        a.scenes, a.suite, a.per_split = 8, "chimein-bench-v0-mini", 1
    from chimein.exec import ray as ray_backend

    ray_opts: dict[str, Any] = {"object_store_memory": 200 * 2**20}
    t = time.perf_counter()
    ray_backend.ensure_ray(ray_opts, workers=max(a.workers))
    t_init = time.perf_counter() - t
    t = time.perf_counter()
    pids = {p for _, p in imap_unordered(_warm_worker, range(4 * max(a.workers)), workers=max(a.workers),
                                         backend="ray")}
    t_warm = time.perf_counter() - t
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()}; "
          f"ray init {t_init:.1f} s, worker warm-up {t_warm:.1f} s ({len(pids)} workers)", flush=True)
    config = {"family": "mixed", "difficulty": a.difficulty, "room_pool": 8}
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-parallel-") as d:
        tmp = Path(d)
        rows += bench_scenes(config, a.scenes, a.seed, a.workers, tmp, str(tmp / "rir"), ray_opts)
    rows += bench_episodes(a.suite, a.per_split, a.batch, a.policy, a.workers, ray_opts)
    ray_backend.shutdown()
    print(f"load after: {os.getloadavg()}")
    print(table(rows, a.workers))
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
