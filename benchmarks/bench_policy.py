"""Benchmark the timing LM's streaming inference: decisions/s and concurrent real-time streams.

For each batch size (streams decided in lockstep) it times, in one run so the ratios compare:

- **incremental**: :class:`chimein.agents.lm.decoder.IncrementalDecoder` at steady state -- the
  sliding-window KV cache already full (``window`` tokens per stream), each step feeding 3 new
  tokens per stream (previous action + 2 unit tokens of an 80 ms chunk);
- **full recomputation**: the naive alternative -- a forward pass over the last ``window``
  tokens of every stream at every decision (timed on fewer steps, for batches up to
  ``--full-max-batch``);
- **end-to-end** (``--e2e``): :class:`chimein.agents.lm.policy.LMPolicy` on raw 80 ms audio
  chunks (numpy log-mel on the CPU + codebook + decoder), the path env rollouts use.

- **serving** (``--processes P``): ``P`` processes of ``--threads`` torch threads each (default
  1: one thread per process, so ``P`` = the cores never oversubscribes the CPU), every one
  running the end-to-end path at the same batch at the same time (a barrier starts their timed
  steps together); a batch is real-time when the *slowest* process's step fits in 80 ms, and
  the machine then serves ``P * batch`` streams. This is how ``chimein serve`` should be run on
  a small CPU: one server process per core with ``threads=1`` (two threads per process on a
  busy 2-core machine dropped the figure from about 256 to 16-138 streams, issue 21).

Reported: step latency, decisions/s, and concurrent real-time streams -- the batch size itself
when a step fits in the 80 ms chunk (a stream needs one decision per chunk), and the throughput
bound ``decisions/s * 0.08``. The model is the default ``LMConfig`` (4 layers, d=192, 2 KV
heads, window 768, 512 units; 1.75M parameters) with random weights, or ``--checkpoint``.

Run::

    .venv/bin/python benchmarks/bench_policy.py                        # CPU, batch 1..256
    .venv/bin/python benchmarks/bench_policy.py --checkpoint chimein-lm --e2e --processes 2 \
        --batches 16,32,64,96,128                                      # serving on 2 cores
    .venv/bin/python benchmarks/bench_policy.py --device cuda --dtype bfloat16 --full-max-batch 1024 \\
        --batches 1,64,256,1024,4096,10240,16384 --time-limit 240 --json out.json

Prints a markdown table (and writes JSON with ``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

CHUNK_S = 0.08


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def build_model(
    checkpoint: str | None, device: torch.device, dtype: torch.dtype
) -> tuple[Any, Any]:
    from chimein.agents.lm.model import LMConfig, TimingLM
    from chimein.agents.lm.tokenizer import Codebook, FeatureConfig

    if checkpoint:
        from chimein.agents.lm.checkpoint import load_checkpoint

        ck = load_checkpoint(checkpoint)
        model, cb = ck.model, ck.codebook
    else:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = TimingLM(LMConfig(), 512)
        fc = FeatureConfig()
        rng = np.random.default_rng(0)
        cb = Codebook(
            rng.normal(size=(512, fc.unit_dim)).astype(np.float32),
            np.full(fc.unit_dim, -8.0, np.float32),
            np.full(fc.unit_dim, 3.0, np.float32),
            fc,
        )
    return model.to(device=device, dtype=dtype).eval(), cb


def steady_decoder(model: Any, n: int, seed: int = 0) -> Any:
    """A decoder whose cache is full (every stream ``S`` tokens in), as after 27 s of audio."""
    from chimein.agents.lm.decoder import IncrementalDecoder

    dec = IncrementalDecoder(model, n)
    g = torch.Generator(device="cpu").manual_seed(seed)
    dec.k.copy_(torch.randn(dec.k.shape, generator=g).to(dec.k) * 0.5)
    dec.v.copy_(torch.randn(dec.v.shape, generator=g).to(dec.v) * 0.5)
    dec.slot_pos.copy_(torch.arange(dec.S, device=dec.device).expand(n, -1))
    dec.pos.fill_(dec.S)
    dec.filled[:] = dec.S  # every ring full, write pointer at slot 0
    return dec


def time_incremental(model: Any, n: int, steps: int, device: torch.device) -> float:
    dec = steady_decoder(model, n)
    toks = torch.randint(7, model.vocab_size, (n, 3), device=device)
    for _ in range(3):
        dec.step(toks)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        dec.step(toks)
    _sync(device)
    return (time.perf_counter() - t0) / steps


@torch.inference_mode()
def time_full(model: Any, n: int, steps: int, device: torch.device, window: int) -> float:
    ids = torch.randint(7, model.vocab_size, (n, window), device=device)
    model(ids[:1, :16])
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        model(ids)
    _sync(device)
    return (time.perf_counter() - t0) / steps


def time_e2e(model: Any, cb: Any, n: int, steps: int, device: torch.device) -> float:
    from pathlib import Path

    from chimein.agents.lm.checkpoint import Checkpoint
    from chimein.agents.lm.policy import LMPolicy

    ck = Checkpoint(Path("bench"), model, cb, {"chunk_s": CHUNK_S, "units_per_chunk": 2})
    pol = LMPolicy(
        ck, device=device, dtype=str(next(model.parameters()).dtype).replace("torch.", "")
    )
    pol.reset(n)
    pol._dec = steady_decoder(model, n)  # steady state, as above
    rng = np.random.default_rng(0)
    obs = {"audio": (0.05 * rng.standard_normal((n, int(CHUNK_S * 16000), 1))).astype(np.float32)}
    for _ in range(2):
        pol.act(obs)
    t0 = time.perf_counter()
    for _ in range(steps):
        pol.act(obs)
    _sync(device)
    return (time.perf_counter() - t0) / steps


def _serving_worker(a: dict[str, Any], n: int, barrier: Any, q: Any) -> None:
    """One serving process: its own model, ``a['threads']`` threads, timed after the barrier."""
    torch.set_num_threads(int(a["threads"]))
    dev = torch.device(a["device"])
    dtype = getattr(torch, a["dtype"])
    model, cb = build_model(a["checkpoint"], dev, dtype)
    time_e2e(model, cb, n, 2, dev)  # warm up
    barrier.wait()
    q.put({"e2e": time_e2e(model, cb, n, int(a["steps"]), dev)})


def time_serving(a: argparse.Namespace, n: int) -> list[float]:
    """End-to-end step seconds of each of ``a.processes`` processes deciding ``n`` streams each,
    all at the same time."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier, q = ctx.Barrier(a.processes), ctx.Queue()
    args = {"threads": a.threads, "device": a.device, "dtype": a.dtype,
            "checkpoint": a.checkpoint, "steps": max(5, a.steps // 2)}
    procs = [ctx.Process(target=_serving_worker, args=(args, n, barrier, q))
             for _ in range(a.processes)]
    for p in procs:
        p.start()
    out = [float(q.get(timeout=600)["e2e"]) for _ in procs]
    for p in procs:
        p.join()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--batches", default="1,4,16,64,256")
    ap.add_argument("--steps", type=int, default=20, help="timed incremental steps per batch size")
    ap.add_argument("--full-steps", type=int, default=2)
    ap.add_argument(
        "--full-max-batch", type=int, default=16, help="largest batch timed with full recomputation"
    )
    ap.add_argument("--e2e", action="store_true", help="also time LMPolicy on raw audio")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads per process (1: never more threads than cores)")
    ap.add_argument("--processes", type=int, default=0,
                    help="also time P concurrent serving processes end to end (0: skip)")
    ap.add_argument("--checkpoint", default=None,
                    help="a checkpoint directory or a shipped name (chimein-lm)")
    ap.add_argument(
        "--time-limit", type=float, default=600.0, help="stop starting new rows after this many s"
    )
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    if a.checkpoint:
        from chimein.agents.lm.reference import checkpoint_path

        a.checkpoint = checkpoint_path(a.checkpoint)

    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
        a.dtype
    ]
    model, cb = build_model(a.checkpoint, dev, dtype)
    window = int(model.lm.config.sliding_window)
    name = (
        torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else platform.processor() or platform.machine()
    )
    print(
        f"# bench_policy: {name}, {a.dtype}, {model.num_parameters() / 1e6:.2f}M params, window {window} "
        f"tokens, torch {torch.__version__}, threads {a.threads}",
        flush=True,
    )
    t_start = time.perf_counter()
    rows = []
    for n in [int(b) for b in a.batches.split(",")]:
        if time.perf_counter() - t_start > a.time_limit:
            print(f"(time limit reached: skipping batch >= {n})", flush=True)
            break
        try:
            inc = time_incremental(model, n, a.steps, dev)
        except torch.OutOfMemoryError:
            print(f"(out of memory at batch {n})", flush=True)
            break
        row: dict[str, Any] = {
            "batch": n,
            "inc_step_ms": inc * 1e3,
            "inc_decisions_per_s": n / inc,
            "realtime": inc <= CHUNK_S,
        }
        row["streams_throughput"] = n / inc * CHUNK_S
        if n <= a.full_max_batch:
            try:
                full = time_full(model, n, a.full_steps, dev, window)
                row.update(full_step_ms=full * 1e3, full_decisions_per_s=n / full, ratio=full / inc)
            except torch.OutOfMemoryError:
                print(f"(full recomputation out of memory at batch {n})", flush=True)
        if a.e2e:
            e2e = time_e2e(model, cb, n, max(3, a.steps // 2), dev)
            row.update(e2e_step_ms=e2e * 1e3, e2e_decisions_per_s=n / e2e)
        if a.processes:
            per = time_serving(a, n)
            row.update(serve_processes=a.processes, serve_step_ms_max=max(per) * 1e3,
                       serve_realtime=max(per) <= CHUNK_S, serve_streams=a.processes * n)
        rows.append(row)
        print(
            json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}),
            flush=True,
        )
    print()
    print(
        "| streams (batch) | incremental step (ms) | decisions/s | real-time (step <= 80 ms) | "
        "streams by throughput | full recompute step (ms) | full/incremental | end-to-end step (ms) |"
    )
    print("|---:|---:|---:|:---:|---:|---:|---:|---:|")
    for r in rows:
        full = f"{r['full_step_ms']:.1f}" if "full_step_ms" in r else "skipped"
        ratio = f"{r['ratio']:.0f}x" if "ratio" in r else "-"
        e2e = f"{r['e2e_step_ms']:.1f}" if "e2e_step_ms" in r else "-"
        print(
            f"| {r['batch']} | {r['inc_step_ms']:.2f} | {r['inc_decisions_per_s']:.0f} | "
            f"{'yes' if r['realtime'] else 'no'} | {r['streams_throughput']:.0f} | {full} | {ratio} | {e2e} |"
        )
    rt = [r["batch"] for r in rows if r["realtime"]]
    best = max((r["streams_throughput"] for r in rows), default=0.0)
    print(
        f"\nconcurrent real-time streams: {max(rt) if rt else 0} measured "
        "(largest batch with a step <= 80 ms); "
        f"throughput bound {best:.0f}"
    )
    if a.processes:
        print("\n| processes x threads | streams per process | slowest end-to-end step (ms) | real-time | "
              "streams served |\n|---|---:|---:|:---:|---:|")
        for r in rows:
            print(f"| {a.processes} x {a.threads} | {r['batch']} | {r['serve_step_ms_max']:.1f} | "
                  f"{'yes' if r['serve_realtime'] else 'no'} | {r['serve_streams']} |")
        ok = [r["serve_streams"] for r in rows if r["serve_realtime"]]
        print(f"\nserving: {max(ok) if ok else 0} concurrent real-time streams with {a.processes} "
              f"process(es) of {a.threads} thread(s)")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(
                {"device": name, "dtype": a.dtype, "window": window, "rows": rows}, f, indent=1
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
