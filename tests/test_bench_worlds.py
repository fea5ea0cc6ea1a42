"""The checks and figures of ``benchmarks/bench_worlds.py`` on made-up runs (the benchmark itself
is run by ``make bench``, not here)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_worlds.py"


@pytest.fixture(scope="module")
def bench() -> Any:
    saved = dict(os.environ)  # the script pins thread counts in os.environ when imported
    try:
        spec = importlib.util.spec_from_file_location("bench_worlds", _PATH)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _run(suite: str, mode: str, digests: list[str], scale: float = 1.0, **counters: int
         ) -> dict[str, Any]:
    tiers = ["clean", "hard"] if suite == "v0" else ["clean", "hard", "heldout"]
    scenes = [{"split": f"{t}/addressed", "tier": t, "sample_s": 0.1 * scale,
               "render_s": 0.3 * scale, "audio_s": 10.0 if suite == "v0" else 20.0, "digest": d}
              for t, d in zip(tiers, digests, strict=False)]
    base = {"suite": suite, "mode": mode, "import_s": 1.0, "startup_s": 0.5, "scenes": scenes,
            "rir_computed": 0, "rir_disk_hits": 0, "speech_computed": 0,
            "speech_disk_hits": 0, "engine_runs": 0, "espeak_runs": 0}
    return {**base, **counters}


def _runs(**over: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    runs = {("v0", "cold"): [_run("v0", "cold", ["a", "b"], rir_computed=3, engine_runs=2)],
            ("v1", "cold"): [_run("v1", "cold", ["c", "d", "e"], 3.0, rir_computed=9)],
            ("v0", "warm"): [_run("v0", "warm", ["a", "b"], rir_disk_hits=3, engine_runs=2)],
            ("v1", "warm"): [_run("v1", "warm", ["c", "d", "e"], 1.5, rir_disk_hits=9)]}
    for key, run in over.items():
        suite, mode = key.split("_")
        runs[(suite, mode)] = [run]
    return runs


def test_consistent_runs_pass_and_v0_may_synthesise_warm(bench: Any) -> None:
    assert bench.check(_runs()) == []  # v0's warm espeak-ng runs are by design


@pytest.mark.parametrize(("key", "run", "expected"), [
    ("v1_warm", _run("v1", "warm", ["c", "d", "e"], rir_computed=1), "computed 1 RIR sets"),
    ("v0_warm", _run("v0", "warm", ["a", "b"], speech_computed=2), "synthesised 2 utterances"),
    ("v1_warm", _run("v1", "warm", ["c", "d", "e"], engine_runs=4), "ran a speech engine 4"),
    ("v1_warm", _run("v1", "warm", ["c", "X", "e"]), "audio differs"),
    ("v0_cold", _run("v0", "cold", ["a", "b"], rir_disk_hits=1), "should be empty"),
])
def test_each_violation_is_reported(bench: Any, key: str, run: dict[str, Any],
                                    expected: str) -> None:
    problems = bench.check(_runs(**{key: run}))
    assert len(problems) == 1 and expected in problems[0], problems


def test_summary_takes_the_fastest_run_and_ratios_per_scene_and_audio_second(bench: Any) -> None:
    runs = _runs()
    runs[("v1", "warm")].append(_run("v1", "warm", ["c", "d", "e"], 1.25))
    s = bench.summarise(runs)
    assert s["v1/warm"]["total_s"] == pytest.approx(0.5)  # 0.4 s x 1.25, not x 1.5
    assert set(s["v1/warm"]["tiers"]) == {"clean", "hard", "heldout"}
    assert s["v0/warm"]["audio_per_s"] == pytest.approx(25.0)
    ratios = bench.print_tables(s)
    assert ratios["warm"]["per_scene"] == pytest.approx(1.25)
    assert ratios["warm"]["per_audio_s"] == pytest.approx(0.625)  # v1 scenes are twice as long
    assert ratios["cold"]["per_scene"] == pytest.approx(3.0)
    assert ratios["tiers"]["heldout/warm"] is None and ratios["goal_met"] is True
