"""Benchmark: scene rendering with the RIR cache vs. naive pyroomacoustics simulation.

Workload: ``--scenes`` scenes over ``--rooms`` rooms. A room fixes its dimensions (length and
width 3-8 m, height 2.5-3.5 m), RT60 (0.2-0.7 s), the listener's microphones and
``--positions`` candidate source positions; each scene places ``--sources`` sources at distinct
candidate positions of one room, each playing a few seconds (1.5-4 s) of a deterministic
signal (noise bursts or a tone complex) at a random onset and level, in a ``--duration`` s
scene. Everything derives from ``--seed``.

Modes (all single-threaded: BLAS, FFT and pyroomacoustics' RIR builder get 1 thread, so the
numbers are per core):

(a) naive: per scene, build a pyroomacoustics ShoeBox with the scene's sources and call
    ``simulate()`` (computes every RIR again);
(b) chimein cold: :func:`chimein.scenes.render.render` with a fresh :class:`RIRCache` on an
    empty temporary folder;
(c) chimein warm: the same scenes again with a *new* ``RIRCache`` object on that folder (RIRs
    come from disk, as in a new process, then from memory).

Dry signals are generated before timing and shared by all modes. The script checks that (a)
and (b) agree (relative error) on a few scenes and prints a markdown table.

Usage::

    .venv/bin/python benchmarks/bench_render.py            # full run (several minutes)
    .venv/bin/python benchmarks/bench_render.py --quick    # smoke run (seconds)
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "PRA_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy / pyroomacoustics are imported

import argparse  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402
import pyroomacoustics as pra  # noqa: E402

from chimein.scenes.render import render  # noqa: E402
from chimein.scenes.rir import RIRCache, room_acoustics  # noqa: E402
from chimein.scenes.spec import Annotations, Mics, Room, SceneSpec, Source  # noqa: E402


@dataclass(frozen=True)
class BenchRoom:
    room: Room
    mics: Mics
    positions: tuple[tuple[float, float, float], ...]


def make_rooms(n_rooms: int, n_positions: int, n_mics: int, seed: int) -> list[BenchRoom]:
    """Deterministic rooms with their microphones and candidate source positions."""
    rooms = []
    for r in range(n_rooms):
        rng = np.random.default_rng(np.random.SeedSequence([seed, 1, r]))
        while True:
            dims = (round(float(rng.uniform(3, 8)), 2), round(float(rng.uniform(3, 8)), 2),
                    round(float(rng.uniform(2.5, 3.5)), 2))
            room = Room(dims=dims, rt60=round(float(rng.uniform(0.2, 0.7)), 3))
            try:
                room_acoustics(room)
                break
            except ValueError:  # SpecError: RT60 unreachable in this room; draw again
                continue
        center = tuple(round(float(rng.uniform(0.8, d - 0.8)), 3) for d in dims[:2]) + (
            round(float(rng.uniform(0.9, 1.5)), 3),)
        mics = (Mics.array(center, "single") if n_mics == 1
                else Mics.array(center, "circular", n_mics, 0.05))  # type: ignore[arg-type]
        positions: list[tuple[float, float, float]] = []
        while len(positions) < n_positions:
            p = tuple(round(float(rng.uniform(0.3, d - 0.3)), 3) for d in dims)
            if np.linalg.norm(np.subtract(p, center)) >= 0.5:
                positions.append(p)  # type: ignore[arg-type]
        rooms.append(BenchRoom(room, mics, tuple(positions)))
    return rooms


def make_signal(rng: np.random.Generator, sr: int) -> np.ndarray:
    """1.5-4 s of noise bursts or a tone complex with an envelope (float32)."""
    n = int(rng.uniform(1.5, 4.0) * sr)
    t = np.arange(n) / sr
    if rng.random() < 0.5:
        x = rng.standard_normal(n)
        gate = (np.sin(2 * np.pi * rng.uniform(1.0, 4.0) * t) > 0).astype(np.float64)
        x *= gate
    else:
        f0 = rng.uniform(200, 1200)
        x = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 5))
        x *= 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 3.0) * t)
    x[0] = x[0] if np.any(x) else 1.0
    return (x / np.sqrt(np.mean(x**2))).astype(np.float32)


def make_scenes(rooms: list[BenchRoom], n_scenes: int, n_sources: int, duration: float, sr: int,
                seed: int) -> tuple[list[SceneSpec], dict[str, np.ndarray]]:
    """Scenes (``file`` sources whose path is a signal key) and their dry signals."""
    specs, signals = [], {}
    for i in range(n_scenes):
        rng = np.random.default_rng(np.random.SeedSequence([seed, 2, i]))
        br = rooms[int(rng.integers(len(rooms)))]
        picks = rng.choice(len(br.positions), size=n_sources, replace=False)
        sources = []
        for j, k in enumerate(picks):
            key = f"scene{i}-src{j}"
            sig = make_signal(rng, sr)
            signals[key] = sig
            latest = max(0.0, duration - sig.size / sr)
            onset = int(rng.uniform(0, latest) * sr) / sr
            sources.append(Source(id=key, kind="file", role="event", audio={"path": key, "key": key},
                                  onset_s=onset, level_db=round(float(rng.uniform(-32, -22)), 2),
                                  position=br.positions[int(k)]))
        specs.append(SceneSpec(id=f"bench-{i}", seed=i, duration_s=duration, room=br.room, mics=br.mics,
                               sources=tuple(sources), annotations=Annotations(), sample_rate=sr))
    return specs, signals


def naive(spec: SceneSpec, signals: dict[str, np.ndarray]) -> np.ndarray:
    """What one would write without chimein: a pyroomacoustics room per scene."""
    sr = spec.sample_rate
    e_abs, order = pra.inverse_sabine(spec.room.rt60, list(spec.room.dims))
    room = pra.ShoeBox(list(spec.room.dims), fs=sr, materials=pra.Material(e_abs), max_order=order)
    for s in spec.sources:
        x = signals[s.audio["key"]] * np.float32(10 ** (s.level_db / 20))
        room.add_source(list(s.position), signal=x, delay=s.onset_s)  # type: ignore[arg-type]
    room.add_microphone_array(np.array(spec.mics.positions).T)
    room.simulate()
    n = int(round(spec.duration_s * sr))
    out = np.zeros((n, spec.mics.n), dtype=np.float32)
    sig = room.mic_array.signals[:, :n].T
    out[: sig.shape[0]] = sig
    return out


def timed(fn, items):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    outs = [fn(x) for x in items]
    return time.perf_counter() - t0, outs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenes", type=int, default=200)
    ap.add_argument("--rooms", type=int, default=20)
    ap.add_argument("--positions", type=int, default=8)
    ap.add_argument("--sources", type=int, default=4)
    ap.add_argument("--mics", type=int, default=1)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--sample-rate", type=int, default=16000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", type=int, default=5, help="scenes on which (a) and (b) are compared")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 12 scenes, 3 rooms, 4 positions, 3 s scenes")
    args = ap.parse_args(argv)
    if args.quick:
        args.scenes, args.rooms, args.positions, args.duration = 12, 3, 4, 3.0
        args.sources = min(args.sources, args.positions)
    if args.sources > args.positions:
        ap.error("--sources must not exceed --positions")

    sr = args.sample_rate
    rooms = make_rooms(args.rooms, args.positions, args.mics, args.seed)
    specs, signals = make_scenes(rooms, args.scenes, args.sources, args.duration, sr, args.seed)
    provider = lambda src, spec: signals[src.audio["key"]]  # noqa: E731
    audio_s = args.scenes * args.duration
    unique = len({(s.room, s.mics, src.position) for s in specs for src in s.sources})
    print(f"# workload: {args.scenes} scenes x {args.duration:g} s over {args.rooms} rooms, "
          f"{args.positions} positions/room, {args.sources} sources/scene, {args.mics} mic(s), "
          f"{sr} Hz; {unique} distinct (room, position) RIR sets; "
          f"python {platform.python_version()}, pyroomacoustics {pra.__version__}", flush=True)

    tmp = tempfile.mkdtemp(prefix="chimein-bench-")
    try:
        t_a, out_a = timed(lambda s: naive(s, signals), specs)
        print(f"(a) naive: {t_a:.2f} s", flush=True)
        cold = RIRCache(tmp)
        t_b, out_b = timed(lambda s: render(s, cold, provider).audio, specs)
        print(f"(b) cold:  {t_b:.2f} s  {cold.stats}", flush=True)
        warm = RIRCache(tmp)
        t_c, out_c = timed(lambda s: render(s, warm, provider).audio, specs)
        print(f"(c) warm:  {t_c:.2f} s  {warm.stats}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    errs = [float(np.linalg.norm(b - a) / np.linalg.norm(a)) for a, b in
            list(zip(out_a, out_b, strict=True))[: args.check]]
    same = all(np.array_equal(b, c) for b, c in zip(out_b, out_c, strict=True))
    print(f"# check: max relative error (b) vs (a) over {len(errs)} scenes = {max(errs):.2e}; "
          f"(c) bit-identical to (b): {same}")

    rows = [("(a) naive pyroomacoustics simulate()", t_a), ("(b) chimein, cold RIR cache", t_b),
            ("(c) chimein, warm RIR cache (disk)", t_c)]
    print("\n| mode | time (s) | scenes/s | audio s per s (x real time, 1 core) | speed-up vs (a) |")
    print("|---|---:|---:|---:|---:|")
    for name, t in rows:
        print(f"| {name} | {t:.2f} | {args.scenes / t:.2f} | {audio_s / t:.0f} | {t_a / t:.1f}x |")
    goals = [("(b) >= 5x (a)", t_a / t_b, 5.0), ("(c) >= 50x (a)", t_a / t_c, 50.0),
             (f"(c) >= 1000x real time per core (set for 4 sources into 1 mic; here "
              f"{args.sources} into {args.mics})", audio_s / t_c, 1000.0)]
    print("\n| goal | measured | met |")
    print("|---|---:|:---:|")
    for name, value, target in goals:
        print(f"| {name} | {value:.1f} | {'yes' if value >= target else 'NO'} |")
    print(f"\ncommand: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
