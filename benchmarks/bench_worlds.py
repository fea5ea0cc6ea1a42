"""Benchmark: what chimein-bench-v1's realism costs per scene against chimein-bench-v0's.

Question (issue 19): v1's world (the sampler presets: three speech generators with the speaker
model, natural turns, devices, walking talkers, ...) is more realistic than v0's (espeak-ng
talkers as written, ideal microphones, talkers standing still); how much more does a scene
cost to make? Goal: with warm caches, v1 costs at most 2x v0 per scene.

Workload: the *suite definitions themselves*. For each suite (``--v0``: chimein-bench-v0, tiers
clean/hard; ``--v1``: chimein-bench-v1, tiers clean/hard/heldout; six families each) the first
``--per-split`` scenes (3; ``--quick``: 1) of every split (tier x family), exactly as
materialising the suite makes them: scene ``i`` of a split is
:func:`chimein.scenes.sampler.sample_scene` of the split's ``config`` with seed
:func:`~chimein.scenes.sampler.scene_seed` ``(split.seed, i)`` and id ``scene-<i>``, then
:func:`chimein.scenes.render.render` with a :class:`~chimein.scenes.rir.RIRCache`. Both suites
get the same number of scenes per split; v1 has more splits (its heldout tier).

Every (suite, cache state) runs in a fresh Python process, so process-level caches and engine
loads are counted:

- *cold*: empty caches: ``CHIMEIN_CACHE_DIR`` of the process is a fresh temporary folder, which
  holds both the speech cache (``<dir>/speech``) and the RIR cache (``<dir>/rir``), so every
  RIR is computed and every utterance synthesised, then written there;
- *warm*: the same scenes again in a new process on the folder its cold run filled: RIRs and
  generated speech are read from disk, then from memory. v0's talkers are the exception by
  design: v0 speech sources name no generator and are synthesised by espeak-ng in every
  process (never disk-cached, so v0 scenes stay bit-identical to what v0 made), so v0's warm
  row still runs espeak-ng.

Rounds run v0 cold, v1 cold, v0 warm, v1 warm, ``--repeats`` times (3; ``--quick``: 1), each cold
run on a new empty folder; the fastest run of each row is reported. BLAS/FFT threads are
limited to 1 (``OMP_NUM_THREADS=1`` etc.).

What a process pays once is timed apart and not in the per-scene figures (shown as *start-up*):
imports (the sampler, renderer and their scipy/pyroomacoustics modules, the suite definitions)
and the engines' start-up: the engine identity every speech cache key includes
(:func:`~chimein.scenes.speech.generators.engine_version` of each voice the suite's talkers use;
piper hashes its voice model) and, cold (or v0, which always synthesises), one synthesis per
engine outside any cache, which starts espeak-ng's or piper's helper. Then per scene: *sample*
(``sample_scene``, which synthesises or reads each utterance for its word timings) and *render*.
Figures: seconds per scene of each, scenes per second and audio seconds per wall second
(scene durations summed over sample + render time), overall and per tier, and v1 over v0 per
scene and per audio second (v1's scenes are not the same length as v0's on average).

Checks (the script exits 1 and says which failed): cold runs read nothing from disk; warm runs
compute no RIR and make no speech-cache miss; v1's warm runs run no speech engine at all; all
runs of a suite render bit-identical audio (sha256 per scene) to its first cold run.

Usage::

    .venv/bin/python benchmarks/bench_worlds.py            # full run (3 rounds, 36 + 54 scenes)
    .venv/bin/python benchmarks/bench_worlds.py --quick    # smoke run (1 scene per split, 1 round)
    .venv/bin/python benchmarks/bench_worlds.py --out worlds.json   # also write the figures
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

GOAL = 2.0
"""Warm sample+render cost per scene of v1, at most this times v0's."""
SUITES = ("v0", "v1")
MODES = ("cold", "warm")


# ------------------------------------------------------------------------- worker process
def _import_common() -> None:
    """Import what every scene needs whatever its world (the sampler, renderer, noise, event,
    device and walking modules load scipy.signal/scipy.stats and pyroomacoustics lazily): a
    one-off cost of any process that makes scenes, timed apart from the first scene."""
    import pyroomacoustics  # noqa: F401
    import scipy.signal  # noqa: F401
    import scipy.stats  # noqa: F401

    import chimein.eval.suites  # noqa: F401
    import chimein.scenes.device  # noqa: F401
    import chimein.scenes.events  # noqa: F401
    import chimein.scenes.moving  # noqa: F401
    import chimein.scenes.noise  # noqa: F401
    import chimein.scenes.render  # noqa: F401
    import chimein.scenes.rir  # noqa: F401
    import chimein.scenes.sampler  # noqa: F401
    import chimein.scenes.speech.edit  # noqa: F401
    import chimein.scenes.speech.generators  # noqa: F401
    import chimein.scenes.speech.speaker  # noqa: F401
    import chimein.scenes.talkers  # noqa: F401
    import chimein.scenes.templates  # noqa: F401
    import chimein.scenes.turns  # noqa: F401


def _engines(splits: Any) -> tuple[bool, dict[str, list[str]]]:
    """What the splits' talkers speak with: v0's legacy espeak-ng talkers (any split with
    ``speakers_per_voice == 0``), and generator -> voices of the others."""
    from chimein.scenes.sampler import SamplerConfig
    from chimein.scenes.talkers import voices_of

    legacy, voices = False, dict[str, list[str]]()
    for s in splits:
        cfg = SamplerConfig.from_mapping(s.config).resolved()
        if not int(cfg.speakers_per_voice or 0):
            legacy = True
            continue
        for g in cfg.speech_generators or ():
            voices.setdefault(g, [])
            voices[g] += [v for v in voices_of(cfg, g) if v not in voices[g]]
    return legacy, voices


def _startup(splits: Any, cold: bool) -> float:
    """Time the process's one-off engine costs: the engine identity of every voice in use (part
    of every speech cache key) and, cold or for v0's uncached talkers, one synthesis per engine
    outside any cache (starts espeak-ng's or piper's helper)."""
    t = time.perf_counter()
    legacy, voices = _engines(splits)
    if legacy:
        from chimein.scenes.speech.espeak import synthesize

        synthesize("hello there")
    from chimein.scenes.speech.generators import engine_version, generate

    for g, vs in voices.items():
        for v in vs:
            engine_version(g, v)
        if cold:
            generate(g, "hello there", vs[0], cache=False)
    return time.perf_counter() - t


def worker(job: dict[str, Any]) -> dict[str, Any]:
    """Sample and render the first ``job["per_split"]`` scenes of every split of
    ``job["suite"]`` in this process; return per-scene timings, digests and cache counters.

    ``CHIMEIN_CACHE_DIR`` (set by the parent) is the root of both caches. Speech engine runs are
    counted by wrapping espeak-ng's raw synthesis and the other generators' synthesis where
    their callers look them up (module globals, read at each call).
    """
    t_import = time.perf_counter()
    _import_common()
    import chimein.scenes.speech.espeak as espeak
    import chimein.scenes.speech.generators as generators
    from chimein.eval.suites import get_suite
    from chimein.scenes.render import render
    from chimein.scenes.rir import RIRCache
    from chimein.scenes.sampler import sample_scene, scene_seed
    from chimein.scenes.speech.cache import default_speech_cache
    from chimein.scenes.store import default_cache_dir

    t_import = time.perf_counter() - t_import
    runs = {"espeak-ng": 0, "other": 0}
    raw_synth, make = espeak._raw_synth, generators._make

    def counted_raw(*a: Any, **k: Any) -> Any:
        runs["espeak-ng"] += 1
        return raw_synth(*a, **k)

    def counted_make(generator: str, *a: Any, **k: Any) -> Any:
        runs["other"] += generator != "espeak-ng"
        return make(generator, *a, **k)

    espeak._raw_synth = counted_raw  # type: ignore[assignment]
    generators._make = counted_make  # type: ignore[assignment]
    splits = get_suite(job["suite"]).splits
    cold = job["mode"] == "cold"
    startup = _startup(splits, cold)
    runs.update({"espeak-ng": 0, "other": 0})
    speech0 = default_speech_cache().stats
    rirs = RIRCache(cache_dir=default_cache_dir())
    scenes = []
    for split in splits:
        for i in range(min(job["per_split"], split.n)):
            t = time.perf_counter()
            spec = sample_scene(split.config, scene_seed(split.seed, i), scene_id=f"scene-{i:06d}")
            t1 = time.perf_counter()
            scene = render(spec, cache=rirs)
            t2 = time.perf_counter()
            scenes.append({"split": split.name, "tier": split.tier, "sample_s": t1 - t,
                           "render_s": t2 - t1, "audio_s": spec.duration_s,
                           "digest": hashlib.sha256(scene.audio.tobytes()).hexdigest()[:16]})
    speech = default_speech_cache().stats
    return {"suite": job["suite"], "mode": job["mode"], "import_s": t_import,
            "startup_s": startup, "scenes": scenes,
            "rir_computed": rirs.stats.computed, "rir_disk_hits": rirs.stats.disk_hits,
            "speech_computed": speech.computed - speech0.computed,
            "speech_disk_hits": speech.disk_hits - speech0.disk_hits,
            "engine_runs": runs["espeak-ng"] + runs["other"], "espeak_runs": runs["espeak-ng"]}


# ------------------------------------------------------------------------- parent process
def run_worker(job: dict[str, Any], root: Path) -> dict[str, Any]:
    """Run one job in a fresh interpreter whose caches (speech and RIR) live under ``root``."""
    env = {**os.environ, "CHIMEIN_CACHE_DIR": str(root), "CHIMEIN_SPEECH_CACHE": "1",
           **dict.fromkeys(_THREAD_VARS, "1")}
    with tempfile.NamedTemporaryFile("r", suffix=".json") as out:
        subprocess.run([sys.executable, __file__, "--worker", json.dumps(job), "--worker-out",
                        out.name], env=env, check=True)
        return json.loads(Path(out.name).read_text())


def figures(scenes: list[dict[str, Any]]) -> dict[str, float]:
    """Per-scene and throughput figures of some scenes of one run."""
    n = len(scenes)
    sample = sum(s["sample_s"] for s in scenes)
    render = sum(s["render_s"] for s in scenes)
    audio = sum(s["audio_s"] for s in scenes)
    wall = sample + render
    return {"scenes": n, "audio_s": audio / n, "sample_s": sample / n, "render_s": render / n,
            "total_s": wall / n, "scenes_per_s": n / wall, "audio_per_s": audio / wall}


def summarise(runs: dict[tuple[str, str], list[dict[str, Any]]]) -> dict[str, Any]:
    """Per (suite, mode): the fastest run's figures overall and per tier."""
    out: dict[str, Any] = {}
    for (suite, mode), rs in runs.items():
        best = min(rs, key=lambda r: sum(s["sample_s"] + s["render_s"] for s in r["scenes"]))
        tiers = list(dict.fromkeys(s["tier"] for s in best["scenes"]))
        out[f"{suite}/{mode}"] = {
            **figures(best["scenes"]), "startup_s": best["startup_s"], "import_s": best["import_s"],
            "engine_runs": best["engine_runs"],
            "tiers": {t: figures([s for s in best["scenes"] if s["tier"] == t]) for t in tiers}}
    return out


def _ratio(a: dict[str, Any] | None, b: dict[str, Any] | None, key: str) -> float | None:
    return a[key] / b[key] if a and b else None


def _x(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def print_tables(summary: dict[str, Any]) -> dict[str, Any]:
    """Print the tables and the acceptance line; return the ratios."""
    ratios: dict[str, Any] = {}
    print("\n| suite | cache | start-up s | sample s | render s | scenes/s | audio-s/s | synth "
          "| v1/v0 scene | v1/v0 audio-s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for suite in SUITES:
        for mode in MODES:
            f = summary.get(f"{suite}/{mode}")
            if f is None:
                continue
            ref = summary.get(f"v0/{mode}")
            per_scene = _ratio(f, ref, "total_s")
            # seconds per audio second = 1 / audio_per_s
            per_audio = _ratio(ref, f, "audio_per_s")
            if suite == "v1":
                ratios[mode] = {"per_scene": per_scene, "per_audio_s": per_audio}
            print(f"| {suite} | {mode} | {f['startup_s']:.2f} | {f['sample_s']:.3f} | "
                  f"{f['render_s']:.3f} | {f['scenes_per_s']:.2f} | {f['audio_per_s']:.1f} | "
                  f"{f['engine_runs']} | {_x(per_scene) if suite == 'v1' else '1.00x'} | "
                  f"{_x(per_audio) if suite == 'v1' else '1.00x'} |")
    print("\n| suite | tier | cache | scenes | audio s/scene | sample s | render s | scenes/s "
          "| audio-s/s | v1/v0 scene |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for suite in SUITES:
        for mode in MODES:
            f = summary.get(f"{suite}/{mode}")
            if f is None:
                continue
            ref_tiers = (summary.get(f"v0/{mode}") or {}).get("tiers", {})
            for tier, t in f["tiers"].items():
                r = _ratio(t, ref_tiers.get(tier), "total_s") if suite == "v1" else None
                if suite == "v1":
                    ratios.setdefault("tiers", {})[f"{tier}/{mode}"] = r
                print(f"| {suite} | {tier} | {mode} | {t['scenes']} | {t['audio_s']:.1f} | "
                      f"{t['sample_s']:.3f} | {t['render_s']:.3f} | {t['scenes_per_s']:.2f} | "
                      f"{t['audio_per_s']:.1f} | {_x(r) if suite == 'v1' else '-'} |")
    v0w, v1w = summary.get("v0/warm"), summary.get("v1/warm")
    if v0w and v1w:
        ratio = v1w["total_s"] / v0w["total_s"]
        ratios["goal_met"] = ratio <= GOAL
        print(f"\nv1 warm cost per scene = {ratio:.2f}x v0's (goal <= {GOAL:g}x): "
              f"{'met' if ratio <= GOAL else 'NOT met'}")
        longer = "longer" if v1w["audio_s"] >= v0w["audio_s"] else "shorter"
        print(textwrap.fill(
            f"v1 scenes are {longer} on average ({v1w['audio_s']:.1f} s of audio per scene vs "
            f"v0's {v0w['audio_s']:.1f} s), so per audio second v1 costs "
            f"{ratios['warm']['per_audio_s']:.2f}x v0's warm and "
            f"{_x((ratios.get('cold') or {}).get('per_audio_s'))} cold.", 100))
    return ratios


def check(runs: dict[tuple[str, str], list[dict[str, Any]]]) -> list[str]:
    """The benchmark's own checks (see the module docstring); the problems found."""
    problems = []
    for (suite, mode), rs in runs.items():
        ref = [s["digest"] for s in runs[(suite, "cold")][0]["scenes"]]
        for k, r in enumerate(rs, 1):
            what = f"{suite} {mode} run {k}"
            if mode == "cold" and (r["rir_disk_hits"] or r["speech_disk_hits"]):
                problems.append(f"{what}: read {r['rir_disk_hits']} RIR sets and "
                                f"{r['speech_disk_hits']} utterances from a cache that should be empty")
            if mode == "warm" and r["rir_computed"]:
                problems.append(f"{what}: computed {r['rir_computed']} RIR sets")
            if mode == "warm" and r["speech_computed"]:
                problems.append(f"{what}: synthesised {r['speech_computed']} utterances "
                                "(speech cache misses)")
            if mode == "warm" and suite == "v1" and r["engine_runs"]:
                problems.append(f"{what}: ran a speech engine {r['engine_runs']} times")
            if [s["digest"] for s in r["scenes"]] != ref:
                problems.append(f"{what}: rendered audio differs from the first cold run's")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--v0", default="chimein-bench-v0", help="the v0 suite (name or file)")
    ap.add_argument("--v1", default="chimein-bench-v1", help="the v1 suite (name or file)")
    ap.add_argument("--per-split", type=int, default=3,
                    help="scenes taken from the start of every split (tier x family)")
    ap.add_argument("--repeats", type=int, default=3, help="rounds (fastest run per row)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 scene per split, 1 round")
    ap.add_argument("--out", help="also write every run's figures to this JSON file")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        Path(args.worker_out).write_text(json.dumps(worker(json.loads(args.worker))))
        return 0
    if args.quick:
        args.per_split, args.repeats = 1, 1
    if args.per_split < 1 or args.repeats < 1:
        ap.error("--per-split and --repeats: need at least 1")
    from chimein.eval.suites import get_suite

    names = {"v0": args.v0, "v1": args.v1}
    defs = {k: get_suite(v) for k, v in names.items()}
    parts = []
    for k, d in defs.items():
        tiers = list(dict.fromkeys(s.tier for s in d.splits))
        n = sum(min(args.per_split, s.n) for s in d.splits)
        parts.append(f"{k} = {d.name} ({n} scenes: {len(d.splits)} splits, tiers "
                     f"{'/'.join(tiers)})")
    print(textwrap.fill(f"# workload: the first {args.per_split} scene(s) of every split of "
                        f"{'; '.join(parts)}; {args.repeats} round(s); {os.cpu_count()} CPUs, "
                        f"python {platform.python_version()}; 1 BLAS/FFT thread", 100,
                        subsequent_indent="# "), flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="chimein-bench-worlds-"))
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    roots: dict[str, Path] = {}
    try:
        for rnd in range(args.repeats):
            for mode in MODES:
                for suite in SUITES:
                    if mode == "cold":
                        root = tmp / f"{suite}-cold-{rnd}"  # new and empty: nothing cached
                        roots.setdefault(suite, root)
                    else:
                        root = roots[suite]  # filled by the suite's first cold run
                    job = {"suite": names[suite], "mode": mode, "per_split": args.per_split}
                    r = run_worker(job, root)
                    runs.setdefault((suite, mode), []).append(r)
                    wall = sum(s["sample_s"] + s["render_s"] for s in r["scenes"])
                    print(f"# {suite} {mode} {rnd + 1}/{args.repeats}: {wall:.1f} s for "
                          f"{len(r['scenes'])} scenes ({sum(s['audio_s'] for s in r['scenes']):.0f}"
                          f" s of audio); start-up {r['startup_s']:.2f} s, import "
                          f"{r['import_s']:.2f} s; RIR sets computed {r['rir_computed']}, speech "
                          f"cache misses {r['speech_computed']}, engine runs {r['engine_runs']}",
                          flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    problems = check(runs)
    summary = summarise(runs)
    ratios = print_tables(summary)
    v0_runs = summary.get("v0/warm", {}).get("engine_runs", 0)
    imp = sorted(f["import_s"] for f in summary.values())
    print("\n" + textwrap.fill(
        f"s = seconds per scene (sample = sample_scene, render = render), scenes/s and audio-s/s "
        f"over sample + render time; start-up (one-off per process: engine identity, cold: "
        f"engine load) is excluded, and so are imports ({imp[0]:.1f}-{imp[-1]:.1f} s per "
        f"process); synth = speech engine runs while making the scenes; fastest of "
        f"{args.repeats} run(s) per row. v0's talkers are never disk-cached (v0 scenes stay "
        f"bit-identical), so its warm row still synthesises ({v0_runs} espeak-ng runs).", 100))
    print(f"# checks: cold reads nothing from disk; warm computes no RIR and misses no speech; "
          f"v1 warm runs no speech engine; audio bit-identical across runs: "
          f"{'yes' if not problems else 'NO'}")
    for p in problems:
        print(f"CHECK FAILED: {p}", file=sys.stderr)
    print(f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    if args.out:
        doc = {"args": vars(args), "suites": {k: d.name for k, d in defs.items()},
               "summary": summary, "ratios": ratios, "problems": problems,
               "runs": {f"{s}/{m}": rs for (s, m), rs in runs.items()}}
        Path(args.out).write_text(json.dumps(doc, indent=1))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
