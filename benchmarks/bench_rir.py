"""Benchmark: cost of one RIR (source position x microphone) by image-source order, per engine.

**Question.** What does a cold RIR cost with chimein's ``"fast"`` image-source engine against
pyroomacoustics' ``compute_rir()``, and what does binning a whole image ball with one
``np.bincount`` save over ``np.add.at`` block by block (the engine's path above 2**22 images)?
A walking talker needs one RIR set per 0.1 s of its path, so this is most of what a cold
chimein-bench-v1 scene or training episode costs.

Workload: for each room (shoebox sizes and RT60s from the sampler's presets, so image-source
orders from about 35 to 160), ``--positions`` source positions 1 cm apart along a line (a walk)
and one microphone, 16 kHz. Rows, timed in the same process, fastest of ``--repeats``:

- *pra*: ``compute_rirs_many(..., engine="pra")`` (one ShoeBox with every position as a
  source, pyroomacoustics on one thread); skipped above ``--pra-max-order`` (slow);
- *fast, blocks*: the fast engine forced onto its block-by-block ``np.add.at`` path;
- *fast*: the fast engine as shipped.

Checks: both fast paths give bit-identical RIRs; *fast* matches *pra* to 1e-5 relative error.
BLAS/FFT threads are limited to 1.

Usage::

    .venv/bin/python benchmarks/bench_rir.py             # full run (about 1 minute)
    .venv/bin/python benchmarks/bench_rir.py --quick     # two rooms, 4 positions, 1 repeat
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import functools  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
import pyroomacoustics as pra  # noqa: E402

from chimein.scenes import rir  # noqa: E402
from chimein.scenes.spec import Mics, Room  # noqa: E402

#: (dims, RT60): the default preset's small and large rooms, and the hard preset's reverberant ones.
ROOMS: list[tuple[tuple[float, float, float], float]] = [
    ((4.0, 3.0, 2.5), 0.2), ((6.0, 5.0, 3.0), 0.3), ((5.0, 4.0, 2.7), 0.5),
    ((8.0, 6.0, 3.0), 0.7), ((4.0, 3.0, 2.4), 0.9),
]


def best_of(fn: Callable[[], list[np.ndarray]], repeats: int) -> tuple[float, list[np.ndarray]]:
    """Fastest wall time of ``repeats`` calls, and the last call's output."""
    times, out = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--positions", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--pra-max-order", type=int, default=60,
                    help="time pyroomacoustics only up to this order (it is slow)")
    ap.add_argument("--quick", action="store_true", help="two rooms, 4 positions, 1 repeat")
    args = ap.parse_args(argv)
    rooms = ROOMS[:2] if args.quick else ROOMS
    if args.quick:
        args.positions, args.repeats = 4, 1
    mics = Mics(((1.0, 1.5, 1.2),))
    pos = [(1.5 + 0.01 * i, 1.2, 1.4) for i in range(args.positions)]
    print(f"# {args.positions} positions x 1 mic per room, 16 kHz, fastest of {args.repeats}; "
          f"python {platform.python_version()}, numpy {np.__version__}, "
          f"pyroomacoustics {pra.__version__}", flush=True)
    print("| room (m), RT60 | order | images | pra ms | fast, blocks ms | fast ms | "
          "pra / fast | blocks / fast |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    ok = True
    for dims, rt60 in rooms:
        room = Room(dims=dims, rt60=rt60)
        e_abs, order = rir.room_acoustics(room)
        fast = functools.partial(rir._fast_ism, room.dims, e_abs, order, pos, mics.positions, 16000)
        t_fast, h_fast = best_of(fast, args.repeats)
        keep, rir._BALL_MAX = rir._BALL_MAX, 0
        try:
            t_blk, h_blk = best_of(fast, args.repeats)
        finally:
            rir._BALL_MAX = keep
        ok &= all(np.array_equal(a, b) for a, b in zip(h_fast, h_blk, strict=True))
        pra_ms, ratio = "", ""
        if order <= args.pra_max_order:
            t_pra, h_pra = best_of(functools.partial(rir.compute_rirs_many, room, mics, pos,
                                                     16000, engine="pra"), 1)
            err = max(float(np.linalg.norm(a - b) / np.linalg.norm(b))
                      for a, b in zip(h_fast, h_pra, strict=True))
            ok &= err < 1e-5
            pra_ms, ratio = f"{1e3 * t_pra / len(pos):.1f}", f"{t_pra / t_fast:.1f}x"
        n = len(pos)
        print(f"| {'x'.join(f'{d:g}' for d in dims)}, {rt60:g} s | {order} | "
              f"{rir._ball_size(order):,} | {pra_ms} | {1e3 * t_blk / n:.1f} | "
              f"{1e3 * t_fast / n:.1f} | {ratio} | {t_blk / t_fast:.2f}x |", flush=True)
    print(f"# checks: both fast paths bit-identical, fast vs pra within 1e-5: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
