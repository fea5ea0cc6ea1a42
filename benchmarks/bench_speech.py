"""Benchmark: scenes per second per speech generator, cold and warm speech cache, vs espeak-ng.

Workload: ``--scenes`` scenes (24; ``--quick``: 6) drawn by
:func:`chimein.scenes.sampler.sample_scene` with ``speech_generators=[g]`` and
``speakers_per_voice=4`` for each generator ``g`` in (espeak-ng, piper, flite), with the same
seeds (:func:`~chimein.scenes.sampler.scene_seed` of ``--seed``) for every generator. By default
the scenes are speech-heavy: scene ``i`` is of family ``addressed``, ``pauses`` and
``distractors`` in turn (``--family mixed`` or one family name instead), difficulty
``default``. A reference row, ``espeak-ng v0``, samples the same seeds with v0's talkers
(``speakers_per_voice=0``: espeak-ng with native rate and pitch, synthesised in every process,
never disk-cached): what scenes cost before the new generators and the speaker model.

Every (generator, cache state) runs in a fresh Python process, so process-level caches, engine
helpers and model loads are counted:

- *cold*: an empty speech cache folder (``CHIMEIN_CACHE_DIR`` of the process points at a fresh
  temporary folder, so every utterance is synthesised, then written there);
- *warm*: the same scenes again in a new process on the folder the cold run filled (every
  utterance is read from disk, then from memory; the speaker model and turn edits are applied
  again, as they are not disk-cached). Warm runs are repeated ``--repeats`` times, generators
  interleaved, and the fastest run of each is reported.

Rooms are not what is measured: every scene of every row is first rendered once in an untimed
pre-warm process, so the RIR cache (one folder shared by all runs, passed to
:func:`chimein.scenes.render.render` as a :class:`~chimein.scenes.rir.RIRCache`) holds all the
RIRs; each timed process reads them from disk, which costs every generator the same.

What a process pays once is timed apart from the scenes and not in the per-scene figures:
imports every generator needs (sampler, renderer, noise and event modules, which load
scipy.signal, scipy.stats and pyroomacoustics: about 1 s) and the generator's *start-up*: the
engine identity that every cache key includes (:func:`~chimein.scenes.speech.generators.
engine_version`: piper hashes its 63 MB voice model, flite runs ``flite --version``) and, cold
only, loading the engine (one synthesis outside any cache, which starts espeak-ng's or piper's
helper process; flite starts a process per utterance anyway). A warm process never loads an
engine. Then per scene: *sample* (``sample_scene``, which synthesises each utterance for its
word timings) and *render* (``render`` with the warm RIR cache; speech comes from the
per-process cache filled by sampling); *speech* is the time inside
:func:`chimein.scenes.speech.realize` (generator or speech cache, speaker model, pauses).

The acceptance figure is the warm sample+render seconds per scene of piper and flite over
espeak-ng's (goal: at most 1.5x); the same ratio with start-up spread over the scenes and the
ratio of speech time alone are shown too. Only the speech differs between generators by
design, but the rest of a scene (noise kind, events) is drawn after the speech from the same
random stream, so it differs too, and a 7-talker babble noise alone costs 0.3-0.8 s to render:
with a few dozen scenes that moves the sample+render ratios by tens of percent, while the
speech ratio compares like with like. ``--noise-kinds pink`` removes most of that spread.

Checks: warm runs synthesise nothing (speech cache misses 0), no timed run computes a RIR, and
each warm run's rendered audio is bit-identical to its cold run's. BLAS/FFT threads are
limited to 1 (``OMP_NUM_THREADS=1`` etc.; piper's helper runs onnxruntime on one thread).

Usage::

    .venv/bin/python benchmarks/bench_speech.py            # full run (about 3 minutes)
    .venv/bin/python benchmarks/bench_speech.py --quick    # smoke run (6 scenes, 1 warm run)
    .venv/bin/python benchmarks/bench_speech.py --out speech.json   # also write the figures
"""

from __future__ import annotations

import os

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "PRA_NUM_THREADS")
for _var in _THREAD_VARS:
    os.environ[_var] = "1"  # before numpy is imported (here and in every worker process)

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

_T_START = time.perf_counter()

V0 = "espeak-ng v0"
"""The reference row: v0's espeak-ng talkers (no speaker model, no disk cache)."""
GENERATORS = ("espeak-ng", "piper", "flite")
SPEECH_FAMILIES = ("addressed", "pauses", "distractors")
GOAL = 1.5
"""Warm sample+render cost per scene of a new generator, at most this times espeak-ng's."""


# ------------------------------------------------------------------------- worker process
def _config(row: str, family: str, job: dict[str, Any]) -> dict[str, Any]:
    """The sampler config of a row (``V0`` or a generator name) for one scene's family."""
    cfg: dict[str, Any] = {"family": family, "difficulty": job["difficulty"]}
    if job.get("noise_kinds"):
        cfg["noise_kinds"] = list(job["noise_kinds"])
    if row == V0:
        return {**cfg, "speech_generators": ["espeak-ng"], "speakers_per_voice": 0}
    return {**cfg, "speech_generators": [row], "speakers_per_voice": 4}


def _startup(row: str, cold: bool) -> float:
    """Time the row's one-off per-process costs: engine identity (cache keys) and, cold, the
    engine load (one synthesis outside any cache)."""
    t = time.perf_counter()
    if row == V0:
        from chimein.scenes.speech.espeak import synthesize

        synthesize("hello there")  # v0 synthesises in every process: start espeak-ng's helper
        return time.perf_counter() - t
    from chimein.scenes.speech.generators import engine_version, generate
    from chimein.scenes.talkers import TRAINING_VOICES

    for voice in TRAINING_VOICES[row]:
        engine_version(row, voice)
    if cold:
        generate(row, "hello there", TRAINING_VOICES[row][0], cache=False)
    return time.perf_counter() - t


def _import_common() -> None:
    """Import what every scene needs whatever its generator (the sampler, renderer, noise and
    event modules import scipy.signal/scipy.stats and pyroomacoustics lazily): a one-off cost
    of any process that makes scenes, timed apart so it does not land on the first scene."""
    import pyroomacoustics  # noqa: F401
    import scipy.signal  # noqa: F401
    import scipy.stats  # noqa: F401

    import chimein.scenes.events  # noqa: F401
    import chimein.scenes.noise  # noqa: F401
    import chimein.scenes.render  # noqa: F401
    import chimein.scenes.rir  # noqa: F401
    import chimein.scenes.sampler  # noqa: F401
    import chimein.scenes.speech.cache  # noqa: F401
    import chimein.scenes.speech.edit  # noqa: F401
    import chimein.scenes.speech.generators  # noqa: F401
    import chimein.scenes.speech.speaker  # noqa: F401
    import chimein.scenes.talkers  # noqa: F401
    import chimein.scenes.templates  # noqa: F401
    import chimein.scenes.turns  # noqa: F401


def worker(job: dict[str, Any]) -> dict[str, Any]:
    """Sample and render ``job["seeds"]`` in this process; return the timings and checks.

    ``CHIMEIN_CACHE_DIR`` (set by the parent) is the speech cache root; ``job["rir_dir"]`` the
    shared RIR cache. Time inside :func:`chimein.scenes.speech.realize` (generator output via
    the speech cache, speaker model, turn edits) is summed per scene as its *speech* time; the
    sampler and the renderer look ``realize`` up on the package at each call, so wrapping it
    there sees every call.
    """
    t_import = time.perf_counter()
    _import_common()
    import chimein.scenes.speech as speech_pkg
    from chimein.scenes.render import render
    from chimein.scenes.rir import RIRCache
    from chimein.scenes.sampler import sample_scene
    from chimein.scenes.speech.cache import default_speech_cache

    t_import = time.perf_counter() - t_import
    inner, spent = speech_pkg.realize, [0.0]

    def timed_realize(*a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        try:
            return inner(*a, **k)
        finally:
            spent[0] += time.perf_counter() - t

    speech_pkg.realize = timed_realize  # type: ignore[assignment]
    row, cold = job["row"], job["mode"] != "warm"
    startup = 0.0 if job["mode"] == "prewarm" else _startup(row, cold)
    rirs = RIRCache(job["rir_dir"])
    sample_s, render_s, speech_s, digests, utterances, audio_s = [], [], [], [], 0, 0.0
    for seed, family in zip(job["seeds"], job["families"], strict=True):
        spent[0] = 0.0
        t = time.perf_counter()
        spec = sample_scene(_config(row, family, job), seed)
        t1 = time.perf_counter()
        scene = render(spec, cache=rirs)
        t2 = time.perf_counter()
        sample_s.append(t1 - t)
        render_s.append(t2 - t1)
        speech_s.append(spent[0])
        digests.append(hashlib.sha256(scene.audio.tobytes()).hexdigest()[:16])
        utterances += sum(s.kind == "speech" for s in spec.sources)
        audio_s += spec.duration_s
    speech = default_speech_cache().stats
    return {"row": row, "mode": job["mode"], "import_s": t_import, "startup_s": startup,
            "sample_s": sample_s, "render_s": render_s, "speech_s": speech_s,
            "digests": digests, "utterances": utterances, "audio_s": audio_s,
            "process_s": time.perf_counter() - _T_START,
            "speech_computed": speech.computed, "speech_disk_hits": speech.disk_hits,
            "speech_memory_hits": speech.memory_hits, "rir_computed": rirs.stats.computed}


# ------------------------------------------------------------------------- parent process
def run_worker(job: dict[str, Any], speech_root: Path) -> dict[str, Any]:
    """Run one job in a fresh interpreter with its own speech cache root."""
    env = {**os.environ, "CHIMEIN_CACHE_DIR": str(speech_root), "CHIMEIN_SPEECH_CACHE": "1",
           **dict.fromkeys(_THREAD_VARS, "1")}
    with tempfile.NamedTemporaryFile("r", suffix=".json") as out:
        subprocess.run([sys.executable, __file__, "--worker", json.dumps(job), "--worker-out",
                        out.name], env=env, check=True)
        return json.loads(Path(out.name).read_text())


def summarise(runs: dict[tuple[str, str], list[dict[str, Any]]]
              ) -> dict[tuple[str, str], dict[str, float]]:
    """Per (row, mode): the figures of the fastest run (least sample+render time), in seconds
    per scene with start-up excluded, plus ``total_with_startup_s`` (start-up spread over the
    scenes)."""
    out = {}
    for key, rs in runs.items():
        best = min(rs, key=lambda r: sum(r["sample_s"]) + sum(r["render_s"]))
        n = len(best["sample_s"])
        total = (sum(best["sample_s"]) + sum(best["render_s"])) / n
        out[key] = {"startup_s": best["startup_s"], "speech_s": sum(best["speech_s"]) / n,
                    "sample_s": sum(best["sample_s"]) / n, "total_s": total,
                    "total_with_startup_s": total + best["startup_s"] / n,
                    "import_s": best["import_s"], "utterances": best["utterances"] / n,
                    "audio_s": best["audio_s"] / n}
    return out


def print_table(summary: dict[tuple[str, str], dict[str, float]], rows: list[str]
                ) -> list[dict[str, Any]]:
    """Print the markdown tables; return the acceptance rows."""
    print("\n| generator | cache | start-up s | speech s | sample s | sample /s | s+r s | s+r /s "
          "| s+r vs espeak |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        for mode in ("cold", "warm"):
            f = summary.get((row, mode))
            if f is None:
                continue
            ref = summary.get(("espeak-ng", mode))
            ratio = f"{f['total_s'] / ref['total_s']:.2f}x" if ref else "-"
            print(f"| {row} | {mode} | {f['startup_s']:.2f} | {f['speech_s']:.3f} | "
                  f"{f['sample_s']:.3f} | {1 / f['sample_s']:.2f} | {f['total_s']:.3f} | "
                  f"{1 / f['total_s']:.2f} | {ratio} |")
    goals: list[dict[str, Any]] = []
    ref, v0 = summary.get(("espeak-ng", "warm")), summary.get((V0, "warm"))
    for row in rows:
        f = summary.get((row, "warm"))
        if ref is None or f is None or row in ("espeak-ng", V0):
            continue
        goals.append({"generator": row, "ratio": f["total_s"] / ref["total_s"],
                      "ratio_with_startup": f["total_with_startup_s"] / ref["total_with_startup_s"],
                      "speech_ratio": f["speech_s"] / ref["speech_s"],
                      "ratio_vs_v0": f["total_s"] / v0["total_s"] if v0 else None,
                      "met": f["total_s"] / ref["total_s"] <= GOAL})
    if goals:
        print(f"\n| warm, vs espeak-ng (goal s+r <= {GOAL}x) | s+r | s+r incl. start-up | speech "
              f"| s+r vs v0 | met |")
        print("|---|---:|---:|---:|---:|:---:|")
        for g in goals:
            vs_v0 = "-" if g["ratio_vs_v0"] is None else f"{g['ratio_vs_v0']:.2f}x"
            print(f"| {g['generator']} | {g['ratio']:.2f}x | {g['ratio_with_startup']:.2f}x | "
                  f"{g['speech_ratio']:.2f}x | {vs_v0} | {'yes' if g['met'] else 'NO'} |")
    return goals


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenes", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0, help="base seed of the scene seeds")
    ap.add_argument("--family", default="speech",
                    help="'speech' (addressed, pauses, distractors in turn), 'mixed' or a family")
    ap.add_argument("--difficulty", default="default")
    ap.add_argument("--noise-kinds", help="comma-separated noise kinds (default: the preset's)")
    ap.add_argument("--generators", default=",".join(GENERATORS),
                    help="comma-separated, from espeak-ng (always run: the peer), piper, flite")
    ap.add_argument("--no-v0", action="store_true", help="skip the espeak-ng v0 reference row")
    ap.add_argument("--repeats", type=int, default=3, help="warm runs per generator (fastest)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 6 scenes, 1 warm run")
    ap.add_argument("--out", help="also write every run's figures to this JSON file")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        Path(args.worker_out).write_text(json.dumps(worker(json.loads(args.worker))))
        return 0
    if args.quick:
        args.scenes, args.repeats = 6, 1
    gens = [g.strip() for g in args.generators.split(",") if g.strip()]
    unknown = sorted(set(gens) - set(GENERATORS))
    if unknown:
        ap.error(f"--generators: unknown {unknown}; use {GENERATORS}")
    rows = ([] if args.no_v0 else [V0]) + ["espeak-ng"] + [g for g in gens if g != "espeak-ng"]

    from chimein.scenes.sampler import scene_seed

    seeds = [scene_seed(args.seed, i) for i in range(args.scenes)]
    fams = (list(SPEECH_FAMILIES) if args.family == "speech" else [args.family])
    families = [fams[i % len(fams)] for i in range(args.scenes)]
    noise = [k.strip() for k in (args.noise_kinds or "").split(",") if k.strip()]
    base = {"seeds": seeds, "families": families, "difficulty": args.difficulty,
            "noise_kinds": noise}
    print(textwrap.fill(f"# workload: {args.scenes} scenes per generator, families {'/'.join(fams)} "
          f"({args.difficulty}), noise {'/'.join(noise) or 'of the preset'}, "
          f"speakers_per_voice=4, same seeds for every generator; "
          f"{os.cpu_count()} CPUs, python {platform.python_version()}; 1 BLAS/FFT thread",
                        100, subsequent_indent="# "), flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="chimein-bench-speech-"))
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    try:
        rir_dir = str(tmp / "rir")
        t = time.perf_counter()
        for row in rows:  # untimed: fill the shared RIR cache with every scene's rooms
            run_worker({**base, "row": row, "mode": "prewarm", "rir_dir": rir_dir},
                       tmp / "prewarm")
            shutil.rmtree(tmp / "prewarm", ignore_errors=True)
        print(f"# RIR cache pre-warmed in {time.perf_counter() - t:.1f} s (untimed)", flush=True)
        roots = {row: tmp / f"speech-{i}" for i, row in enumerate(rows)}
        for row in rows:
            r = run_worker({**base, "row": row, "mode": "cold", "rir_dir": rir_dir}, roots[row])
            runs[(row, "cold")] = [r]
            print(f"# {row} cold: {sum(r['sample_s']) + sum(r['render_s']):.1f} s for "
                  f"{len(seeds)} scenes ({r['utterances']} utterances, {r['audio_s']:.0f} s of "
                  f"scene audio), start-up {r['startup_s']:.2f} s, import {r['import_s']:.2f} s, "
                  f"synthesised {r['speech_computed']}", flush=True)
        for k in range(args.repeats):
            for row in rows:
                r = run_worker({**base, "row": row, "mode": "warm", "rir_dir": rir_dir},
                               roots[row])
                runs.setdefault((row, "warm"), []).append(r)
                print(f"# {row} warm {k + 1}/{args.repeats}: "
                      f"{sum(r['sample_s']) + sum(r['render_s']):.1f} s, start-up "
                      f"{r['startup_s']:.2f} s, synthesised {r['speech_computed']}, disk hits "
                      f"{r['speech_disk_hits']}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    problems = []
    for (row, mode), rs in runs.items():
        for r in rs:
            if r["rir_computed"]:
                problems.append(f"{row} {mode}: {r['rir_computed']} RIRs computed")
            if mode == "warm" and row != V0 and r["speech_computed"]:
                problems.append(f"{row} warm: {r['speech_computed']} utterances synthesised")
            if mode == "warm" and r["digests"] != runs[(row, "cold")][0]["digests"]:
                problems.append(f"{row} warm: rendered audio differs from the cold run")
    print(f"# checks: warm runs synthesise nothing, no RIR computed, warm audio bit-identical to "
          f"cold: {'yes' if not problems else 'NO: ' + '; '.join(problems)}")
    summary = summarise(runs)
    goals = print_table(summary, rows)
    imp = sorted(f["import_s"] for f in summary.values())
    print("\n" + textwrap.fill(f"s = seconds per scene, /s = scenes per second, start-up excluded (one-off per "
          f"process: engine identity for the cache keys; cold: engine load); speech = time in "
          f"realize() (generator or speech cache, speaker model, pauses), inside sample and "
          f"render; s+r = sample + render; warm = fastest of {args.repeats} process(es); v0 has "
          f"no disk cache, so its warm row is just another process. Not in any figure: "
          f"imports common to all generators, {imp[0]:.1f}-{imp[-1]:.1f} s per process. "
          f"Start-up spread over {args.scenes} scenes in 's+r incl. start-up'.", 100))
    print(f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    if args.out:
        doc = {"args": vars(args), "rows": rows, "goals": goals,
               "summary": {f"{row}/{mode}": f for (row, mode), f in summary.items()},
               "runs": {f"{row}/{mode}": rs for (row, mode), rs in runs.items()},
               "problems": problems}
        Path(args.out).write_text(json.dumps(doc, indent=1))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
