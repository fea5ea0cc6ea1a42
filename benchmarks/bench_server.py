"""Benchmark ``chimein serve``: concurrent real-time streams and decision latency vs stream count.

For each stream count ``N`` it runs, in one invocation so the ratios compare:

- **in-process**: the batched policy stepping all ``N`` streams in lockstep, one call per
  80 ms tick (the vector-env path). Latency of a chunk = time from its tick to the decision
  (including any lateness when a call overran the previous tick).
- **served**: the same policy in a ``chimein serve`` subprocess; ``N`` client streams (over
  ``ceil(N / --per-conn)`` WebSocket connections, in ``--client-procs`` processes) each send
  one chunk per tick at wall-clock pace and wait for the action. Latency = network + queue +
  model, measured by the client. Ticks are aligned across streams (``--phase aligned``, the
  worst case for batching) or spread over the chunk (``--phase staggered``).

A configuration is *real-time* when p99 latency < the chunk (80 ms) and no tick was skipped.

``--mode slow-reader`` measures instead what a client that never reads its replies costs the
others: for each ``N``, the served latency of ``N`` well-behaved streams alone, then beside a
*stalled reader* (a connection that sent chunks and STATUS requests until its unread replies
backed up into the server, and keeps sending one chunk per tick without reading). The p99
ratio shows whether the stalled reader delays anyone (the server gives every connection its own
bounded outbox, so it should stay near 1; before, the batcher waited on the stalled socket and
every stream froze until the keepalive dropped it, about 40 s).
The policy is ``energy-endpoint`` (per-stream baseline), or ``lm``: a random-weight timing LM
of the default size (``LMConfig()``, 1.75M parameters, 512 units), or ``--checkpoint DIR``.

Run::

    .venv/bin/python benchmarks/bench_server.py --policy lm --streams 1,16,64 --seconds 3
    .venv/bin/python benchmarks/bench_server.py --policy lm --device cuda --dtype bfloat16 \\
        --streams 64,1024,4096,10000 --client-procs 8 --seconds 5 --max-seconds 420 --json out.json
    .venv/bin/python benchmarks/bench_server.py --mode slow-reader --policy energy-endpoint \\
        --streams 4 --seconds 2

Prints a markdown table (and writes JSON with ``--json``). ``--max-seconds`` bounds the whole
run: points that would not fit are skipped (and listed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing as mp
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

CHUNK_S = 0.08
SR = 16000
CH = int(CHUNK_S * SR)


def make_lm_checkpoint(out: str) -> str:
    """A random-weight timing LM of the default size, saved as a checkpoint."""
    import torch

    from chimein.agents.lm.checkpoint import save_checkpoint
    from chimein.agents.lm.model import LMConfig, TimingLM
    from chimein.agents.lm.tokenizer import Codebook, FeatureConfig

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = TimingLM(LMConfig(), 512).eval()
    fc = FeatureConfig()
    rng = np.random.default_rng(0)
    cb = Codebook(rng.normal(size=(512, fc.unit_dim)).astype(np.float32),
                  np.full(fc.unit_dim, -8.0, np.float32), np.full(fc.unit_dim, 3.0, np.float32), fc)
    save_checkpoint(out, model, cb, chunk_s=CHUNK_S)
    return out


def audio_pool(n: int, seed: int = 0) -> np.ndarray:
    """(n, CH) float32 chunks cycled through by the streams."""
    rng = np.random.default_rng(seed)
    return (0.05 * rng.standard_normal((n, CH))).astype(np.float32)


def pct(lat: list[float] | np.ndarray) -> tuple[float, float]:
    a = np.asarray(lat, np.float64)
    return (float(np.percentile(a, 50)), float(np.percentile(a, 99))) if a.size else (math.nan,) * 2


# ------------------------------------------------------------------------------ in-process
def run_inprocess(target: str, n: int, seconds: float, kw: dict[str, Any]) -> dict[str, Any]:
    from chimein.agents.registry import make_policy

    pol = make_policy(target, **kw)
    pol.configure(CHUNK_S, SR, "audio")
    pol.reset(n)
    pool = audio_pool(64)
    pol.act({"audio": pool[np.arange(n) % 64, :, None]})  # warm-up
    lat: list[float] = []
    skipped = 0
    t0 = time.perf_counter()
    ticks = int(seconds / CHUNK_S)
    for k in range(ticks):
        due = t0 + k * CHUNK_S
        now = time.perf_counter()
        if now < due:
            time.sleep(due - now)
        elif now - due > CHUNK_S:
            skipped += 1
            continue
        x = pool[(np.arange(n) + k) % 64, :, None]
        pol.act({"audio": x})
        lat.extend([(time.perf_counter() - due) * 1000] * n)
    p50, p99 = pct(lat)
    return {"p50_ms": p50, "p99_ms": p99, "skipped_ticks": skipped, "ticks": ticks}


# ------------------------------------------------------------------------------ served
async def _client(url: str, ids: list[int], n_total: int, seconds: float, per_conn: int,
                  phase: str, t_start: float) -> tuple[list[float], int, int]:
    from chimein.agents.remote import AsyncClient, ServerBusy

    pool = audio_pool(64)
    lat: list[float] = []
    late = busy = 0
    clients = []
    for c0 in range(0, len(ids), per_conn):
        c = AsyncClient(url, timeout_s=60)
        await c.__aenter__()
        clients.append((c, ids[c0 : c0 + per_conn]))
    sids: list[tuple[Any, int, int]] = []
    for c, group in clients:
        for i in group:
            sids.append((c, await c.open(CHUNK_S * 1000, SR), i))
    ticks = int(seconds / CHUNK_S)
    now = time.perf_counter()
    if now > t_start:  # opening took longer: start at a later tick (same phase in every process)
        t_start += math.ceil((now - t_start) / CHUNK_S) * CHUNK_S

    async def stream(c: Any, sid: int, i: int) -> None:
        nonlocal late, busy
        off = (i / n_total) * CHUNK_S if phase == "staggered" else 0.0
        for k in range(ticks):
            due = t_start + off + k * CHUNK_S
            now = time.perf_counter()
            if now < due:
                await asyncio.sleep(due - now)
            elif now - due > CHUNK_S:
                late += 1
                continue
            try:
                await c.act(sid, pool[(i + k) % 64])
                lat.append((time.perf_counter() - due) * 1000)
            except ServerBusy:
                busy += 1

    await asyncio.gather(*[stream(c, s, i) for c, s, i in sids])
    for c, _ in clients:
        await c.aclose()
    return lat, late, busy


def _client_proc(args: tuple[Any, ...]) -> tuple[list[float], int, int]:
    return asyncio.run(_client(*args))


def run_served(url: str, n: int, seconds: float, per_conn: int, procs: int,
               phase: str) -> dict[str, Any]:
    procs = max(1, min(procs, n))
    t_start = time.perf_counter() + 1.0 + n / 2000  # time to open the streams
    parts = [list(range(p, n, procs)) for p in range(procs)]
    jobs = [(url, part, n, seconds, per_conn, phase, t_start) for part in parts]
    if procs == 1:
        res = [_client_proc(jobs[0])]
    else:
        # time.perf_counter is CLOCK_MONOTONIC on Linux: shared by the processes of one machine
        with mp.get_context("fork").Pool(procs) as pool:
            res = pool.map(_client_proc, jobs)
    lat = [x for r in res for x in r[0]]
    p50, p99 = pct(lat)
    return {"p50_ms": p50, "p99_ms": p99, "skipped_ticks": sum(r[1] for r in res),
            "busy": sum(r[2] for r in res), "answered": len(lat)}


# ------------------------------------------------------------------------------ stalled reader
async def _stall(url: str, ready: Any, done: Any) -> None:
    """Open a stream, send chunks and STATUS requests (large replies) without reading until the
    server holds at least 256 unread replies for this connection (or stops taking its frames);
    then keep sending one chunk per tick, still reading nothing, until ``done``."""
    from websockets.asyncio.client import connect

    from chimein.agents import protocol as P
    from chimein.agents.remote import AsyncClient, parse_url

    host, port = parse_url(url)[len("ws://"):].rsplit(":", 1)
    so = socket.socket()
    so.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # back up into the server soon
    so.connect((host, int(port)))
    so.setblocking(False)
    bad = await connect(parse_url(url), sock=so, max_queue=1, compression=None,
                        ping_interval=None)  # max_queue=1: it stops reading at once
    x = audio_pool(1)[0]
    j = 0
    try:
        await bad.send(P.encode_open(1, CHUNK_S * 1000, SR, 1))
        async with AsyncClient(url, timeout_s=60) as ctl:
            while (await ctl.status()).get("outbox_max", 0) < 256:
                await asyncio.wait_for(bad.send(P.encode_chunk(1, j, x)), 5)
                for _ in range(64):
                    await asyncio.wait_for(bad.send(P.encode(P.MsgType.STATUS, 0, j)), 5)
                j += 1
    except Exception:  # noqa: BLE001 - the server stopped reading it: stalled as well
        pass
    ready.set()
    while not done.is_set():
        with contextlib.suppress(Exception):
            await asyncio.wait_for(bad.send(P.encode_chunk(1, j, x)), CHUNK_S)
        j += 1
        await asyncio.sleep(CHUNK_S)
    bad.transport.abort()


def _stall_proc(url: str, ready: Any, done: Any) -> None:
    asyncio.run(_stall(url, ready, done))


def run_slow_reader(url: str, n: int, seconds: float, per_conn: int, procs: int,
                    phase: str) -> dict[str, Any]:
    """Served latency of ``n`` streams alone, then beside a stalled reader."""
    from chimein.agents.remote import RemotePolicy

    row: dict[str, Any] = {"streams": n,
                           "alone": run_served(url, n, seconds, per_conn, procs, phase)}
    ctx = mp.get_context("fork")
    ready, done = ctx.Event(), ctx.Event()
    bad = ctx.Process(target=_stall_proc, args=(url, ready, done), daemon=True)
    bad.start()
    try:
        if not ready.wait(300):
            raise SystemExit("the stalled reader did not back up in 300 s")
        before = RemotePolicy(url, timeout_s=30).status()
        row["stalled"] = run_served(url, n, seconds, per_conn, procs, phase)
        after = RemotePolicy(url, timeout_s=30).status()
    finally:
        done.set()
        bad.join(30)
    row["unread"] = [before.get("outbox_max"), after.get("outbox_max")]
    row["dropped"] = after.get("dropped_connections")
    return row


def print_slow_reader(rows: list[dict[str, Any]]) -> None:
    print("| good streams | alone p50 / p99 ms | beside a stalled reader p50 / p99 ms | p99 ratio | "
          "stalled reader's unread replies (start / end) | skipped ticks (alone / beside) | "
          "connections dropped |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        a, s = r["alone"], r["stalled"]
        ratio = f"{s['p99_ms'] / a['p99_ms']:.2f}" if a["p99_ms"] > 0 else "-"
        print(f"| {r['streams']} | {a['p50_ms']:.1f} / {a['p99_ms']:.1f} | {s['p50_ms']:.1f} / "
              f"{s['p99_ms']:.1f} | {ratio} | {r['unread'][0]} / {r['unread'][1]} | "
              f"{a['skipped_ticks']} / {s['skipped_ticks']} | {r['dropped']} |")


def print_scale(rows: list[dict[str, Any]]) -> None:
    print("| streams | in-process p50 / p99 ms | served p50 / p99 ms | p99 ratio | served "
          "skipped ticks | busy | mean batch |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        s = r["served"]
        ip = r.get("inprocess")
        ipt = f"{ip['p50_ms']:.1f} / {ip['p99_ms']:.1f}" if ip else "-"
        ratio = f"{s['p99_ms'] / ip['p99_ms']:.2f}" if ip and ip["p99_ms"] > 0 else "-"
        print(f"| {r['streams']} | {ipt} | {s['p50_ms']:.1f} / {s['p99_ms']:.1f} | {ratio} | "
              f"{s['skipped_ticks']} | {s['busy']} | {r['server_mean_batch']:.1f} |")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(target: str, device: str, dtype: str, max_streams: int, is_lm: bool,
                 max_wait_ms: float, threads: int | None,
                 per_conn: int = 64) -> tuple[subprocess.Popen[str], str]:
    """The server in a subprocess (its own GIL), started without the Hydra CLI."""
    port = _free_port()
    cfg: dict[str, Any] = {"port": port, "max_streams": max_streams, "max_batch": max_streams,
                           "max_queue": 4 * max_streams, "max_wait_ms": max_wait_ms,
                           "threads": threads, "max_conn_streams": max(256, per_conn),
                           "outbox_size": max(4096, 4 * per_conn + 64)}
    if is_lm:
        cfg.update(device=device, policy_args={"dtype": dtype})
    code = ("import asyncio, json, sys; from chimein.agents.server import PolicyServer; "
            "s = PolicyServer(sys.argv[1], **json.loads(sys.argv[2])); "
            "asyncio.run(s.serve_forever())")
    cmd = [sys.executable, "-c", code, target, json.dumps(cfg)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"remote://127.0.0.1:{port}"
    from chimein.agents.remote import RemotePolicy

    for _ in range(2400):
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            RemotePolicy(url, timeout_s=5).status()
            return proc, url
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not start in 120 s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=("scale", "slow-reader"), default="scale",
                    help="scale: in-process vs served per stream count; slow-reader: served "
                         "streams alone vs beside a client that never reads")
    ap.add_argument("--policy", default="lm", help="lm | energy-endpoint | another policy name")
    ap.add_argument("--checkpoint", default=None, help="checkpoint dir (instead of a random LM)")
    ap.add_argument("--streams", default="1,8,32,64")
    ap.add_argument("--seconds", type=float, default=3.0, help="per point and mode")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--per-conn", type=int, default=64, help="streams per WebSocket connection")
    ap.add_argument("--client-procs", type=int, default=1)
    ap.add_argument("--phase", choices=("aligned", "staggered"), default="aligned")
    ap.add_argument("--max-wait-ms", type=float, default=2.0)
    ap.add_argument("--max-seconds", type=float, default=600.0, help="budget of the whole run")
    ap.add_argument("--skip-inprocess", action="store_true")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads of both sides (0: torch's default)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    t_begin = time.perf_counter()
    counts = [int(x) for x in a.streams.split(",") if x]
    tmp = tempfile.mkdtemp(prefix="bench_server_")
    is_lm = a.checkpoint is not None or a.policy == "lm"
    target = a.checkpoint or (make_lm_checkpoint(os.path.join(tmp, "lm")) if a.policy == "lm"
                              else a.policy)
    kw: dict[str, Any] = {"device": a.device, "dtype": a.dtype} if is_lm else {}
    device_name = a.device
    if a.device.startswith("cuda"):
        import torch

        device_name = torch.cuda.get_device_name(0)
    threads = a.threads if a.threads > 0 else None
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    proc, url = start_server(target, a.device, a.dtype, max(counts) + 8, is_lm, a.max_wait_ms,
                             threads, a.per_conn)
    rows: list[dict[str, Any]] = []
    skipped: list[int] = []
    try:
        for n in counts:
            per_point = (1 if a.skip_inprocess else 2) * (a.seconds + 2) + n / 1000
            if time.perf_counter() - t_begin + per_point > a.max_seconds:
                skipped.append(n)
                continue
            if a.mode == "slow-reader":
                rows.append(run_slow_reader(url, n, a.seconds, a.per_conn, a.client_procs,
                                            a.phase))
                print(json.dumps(rows[-1]), flush=True)
                continue
            row: dict[str, Any] = {"streams": n}
            if not a.skip_inprocess:
                row["inprocess"] = run_inprocess(target, n, a.seconds, kw)
            row["served"] = run_served(url, n, a.seconds, a.per_conn, a.client_procs, a.phase)
            from chimein.agents.remote import RemotePolicy

            st = RemotePolicy(url, timeout_s=30).status()
            hist = {int(k): v for k, v in st["batch_hist"].items()}
            row["server_mean_batch"] = (sum(k * v for k, v in hist.items()) / max(1, sum(hist.values())))
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    head = (f"policy={a.policy if not a.checkpoint else a.checkpoint} device={device_name} "
            f"dtype={a.dtype} threads={a.threads} phase={a.phase} max_wait_ms={a.max_wait_ms} cpu={platform.processor() or platform.machine()} "
            f"cores={os.cpu_count()} seconds/point={a.seconds}")
    print(f"\n{head}\n")
    (print_slow_reader if a.mode == "slow-reader" else print_scale)(rows)
    if skipped:
        print(f"\nskipped (over --max-seconds): {skipped}")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump({"config": vars(a), "device": device_name, "rows": rows,
                       "skipped": skipped}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
