"""The field's metrics: false cut-offs and takeover rates per condition on hand-made scenes, the
operating-curve figures of a sweep (LiveKit's end-of-turn benchmark), ms per decision, and where
they are shown (results.json, report.md, eval compare, eval sweep, the README)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chimein.cli import main as cli_main
from chimein.envs.episode import EpisodeRecord
from chimein.envs.scoring import ActionLog
from chimein.errors import SpecError
from chimein.eval.episodes import TIMING, append_timing, ms_per_decision
from chimein.eval.field import BENCHMARKS, FIELD_COUNTS
from chimein.eval.metrics import COUNTS, METRICS, aggregate, episode_counts, make_episode
from chimein.eval.report import compare, paired_differences
from chimein.eval.runner import _act_timing, _TimedPolicy, evaluate
from chimein.eval.suites import MaterializedSuite, SuiteDef, materialize
from chimein.eval.sweep import curve_figures, interpolate, tradeoff
from chimein.eval.tables import FIELD_COLUMNS
from chimein.scenes.spec import Annotations, Cue, Span

C = 0.1  # chunk: decision k at (k + 1) * 0.1 s
FIELD = ("false_cutoff_rate", "smooth_takeover_rate", "side_talk_takeover_rate", "background_takeover_rate")

# an addressed turn with a mid-turn pause and its RESPOND cue; bob (never addresses the
# assistant: a bystander) talks; the user talks to someone else; a TV line; a door slam
ANN = Annotations(
    cues=(
        Cue("r0", "RESPOND", (2.0, 5.0), "question"),
        Cue("tv", "IGNORE", (10.0, 11.0), "tv speech with wake phrase"),
        Cue("door", "IGNORE", (12.0, 12.5), "door slam"),
    ),
    spans=(
        Span(0.5, 1.0, "user", "speech", True),
        Span(1.0, 1.5, "user", "pause", True),
        Span(1.5, 2.0, "user", "speech", True),
        Span(6.0, 7.0, "bob", "speech", False),
        Span(8.0, 9.0, "user", "speech", False),
    ),
)


def log_at(times: dict[float, int], n: int = 150, speak_s: float = 0.5) -> ActionLog:
    acts = [0] * n
    for t, a in times.items():
        acts[int(round(t / C)) - 1] = a
    return ActionLog.from_actions(acts, chunk_s=C, speak_s=speak_s)


def field(ann: Annotations, times: dict[float, int], n: int = 150) -> tuple[dict, dict]:
    ep = make_episode(ann, log_at(times, n), speak_s=0.5)
    c, _ = episode_counts(ep)
    return c, aggregate([ep], resamples=0)["overall"]


def val(m: dict, k: str) -> float | None:
    return m[k]["value"]


# ---------------------------------------------------------------- conditions
def test_every_condition_taken_over_and_false_cutoff_is_turn_interruption_on_addressed_turns() -> None:
    # 1.2 in the mid-turn pause (a cut-off); 2.5 answers r0; 6.5 over bob; 9.5 half a second
    # after the user's side talk (a false alarm: a reply to it); 10.5 in the TV line; 12.2 the door
    c, m = field(ANN, {1.2: 1, 2.5: 1, 6.5: 1, 9.5: 1, 10.5: 1, 12.2: 1})
    assert {k: c[k] for k in FIELD_COUNTS} == {"addr_turns": 1, "addr_turns_cut": 1, "smooth_cues": 1,
                                               "smooth_taken": 1, "side_turns": 1, "side_taken": 1,
                                               "bg_events": 2, "bg_taken": 2}
    assert val(m, "false_cutoff_rate") == 1.0 and val(m, "pause_takeover_rate") == 1.0
    # turn_interruption_rate also counts bob's turn and the side talk: 2 of 3 turns
    assert val(m, "turn_interruption_rate") == pytest.approx(2 / 3)
    assert val(m, "smooth_takeover_rate") == 1.0 and val(m, "side_talk_takeover_rate") == 1.0
    assert val(m, "background_takeover_rate") == 1.0


def test_a_clean_answer_takes_over_only_the_smooth_turn() -> None:
    c, m = field(ANN, {2.5: 1})
    assert {k: val(m, k) for k in FIELD} == {"false_cutoff_rate": 0.0, "smooth_takeover_rate": 1.0,
                                             "side_talk_takeover_rate": 0.0, "background_takeover_rate": 0.0}
    _, never = field(ANN, {})
    assert val(never, "smooth_takeover_rate") == 0.0 and val(never, "false_cutoff_rate") == 0.0
    assert val(never, "safety_miss_rate") is None


def test_takeover_tail_and_who_is_the_user() -> None:
    # 10.1: past the side talk's 1 s tail (9.0 + 1.0) but inside the TV line
    c, _ = field(ANN, {10.1: 1})
    assert (c["side_taken"], c["bg_taken"]) == (0, 1)
    # 9.9: inside the tail
    assert field(ANN, {9.9: 1})[0]["side_taken"] == 1
    # a speaker who addresses the assistant anywhere is a user: alice's other turn is side talk
    ann = Annotations(spans=(Span(0.5, 1.0, "alice", addressed=True), Span(3.0, 4.0, "alice"), Span(6.0, 7.0, "bob")))
    c, m = field(ann, {3.5: 1, 6.5: 1}, n=100)
    assert (c["addr_turns"], c["side_turns"], c["side_taken"], c["bg_events"], c["bg_taken"]) == (1, 1, 1, 1, 1)
    # no addressed turn in front of it: a RESPOND cue is no smooth turn-taking opportunity
    ann = Annotations(cues=(Cue("r", "RESPOND", (3.0, 5.0), "q"),), spans=(Span(0.5, 1.0, "user"),))
    c, m = field(ann, {3.5: 1}, n=100)
    assert c["smooth_cues"] == 0 and val(m, "smooth_takeover_rate") is None and c["side_turns"] == 1


def test_only_what_the_episode_reached_counts() -> None:
    c, _ = field(ANN, {}, n=55)  # ends at 5.5 s: bob, the side talk and both IGNORE cues never came
    assert (c["addr_turns"], c["smooth_cues"], c["side_turns"], c["bg_events"]) == (1, 1, 0, 0)


def test_field_metrics_have_intervals_and_pair_like_every_count_metric() -> None:
    eps = [make_episode(ANN, log_at(t), split=s, scene_id=f"s{i}")
           for i, (s, t) in enumerate([("a", {1.2: 1, 2.5: 1}), ("a", {2.5: 1}), ("b", {6.5: 1}), ("b", {9.5: 1})])]
    m = aggregate(eps, resamples=200, seed=3)["overall"]
    for k in FIELD:
        lo, hi = m[k]["ci"]
        assert lo is not None and lo <= m[k]["value"] <= hi, k
    assert m["false_cutoff_rate"]["value"] == 0.25 and m["side_talk_takeover_rate"]["value"] == 0.25
    rows = {(e.split, e.scene_id): np.array([episode_counts(e)[0][k] for k in COUNTS]) for e in eps}
    quiet = {k: np.array([episode_counts(make_episode(ANN, log_at({})))[0][n] for n in COUNTS]) for k in rows}
    d = paired_differences(quiet, rows, ("false_cutoff_rate", "background_takeover_rate"), resamples=100)
    assert d["false_cutoff_rate"]["value"] == 0.25 and d["background_takeover_rate"]["value"] == 0.125
    assert all(k in METRICS and not METRICS[k][1] for k in FIELD if k != "smooth_takeover_rate")
    assert METRICS["smooth_takeover_rate"][1] is True


# ---------------------------------------------------------------- the operating curve
def _sweep(points: Sequence[tuple[float, float | None, float | None]]) -> dict:
    return {"param": "silence_timeout_s", "default": None, "rows": [
        {"value": v, "metrics": {"respond_latency_p50": {"value": lat}, "false_cutoff_rate": {"value": cut},
                                 "timeliness": {"value": 0.5}, "false_alarms_per_min": {"value": 1.0},
                                 "interruptions_per_turn": {"value": 0.1}}} for v, lat, cut in points]}


def test_curve_figures_interpolate_and_never_extrapolate() -> None:
    s = _sweep([(0.2, 0.24, 0.2), (0.5, 0.56, 0.04), (0.8, 0.88, 0.0)])
    f = curve_figures(s)
    assert f["false_cutoff_at_300ms"] == pytest.approx(0.2 - 0.16 * 0.06 / 0.32)
    assert f["false_cutoff_at_600ms"] == pytest.approx(0.04 - 0.04 * 0.04 / 0.32)
    assert f["latency_at_5pct_cutoff"] == pytest.approx(0.56 - 0.32 * 0.01 / 0.16)
    narrow = curve_figures(_sweep([(0.5, 0.56, 0.04), (0.8, 0.88, 0.0)]))
    assert narrow == {"false_cutoff_at_300ms": None, "false_cutoff_at_600ms": pytest.approx(0.035),
                      "latency_at_5pct_cutoff": None}  # 300 ms and 5 % lie outside the swept range
    old = {"rows": [{"value": 0, "metrics": {"timeliness": {"value": 0.5}}}]}  # a sweep.json of before
    assert set(curve_figures(old).values()) == {None}
    # two points at one latency: the lower cut-off rate is kept when lower is better
    tie = _sweep([(0.1, 0.3, 0.3), (0.2, 0.3, 0.1), (0.3, 0.6, 0.0)])
    assert interpolate(tie, "respond_latency_p50", "false_cutoff_rate", 0.3, higher_better=False) == 0.1
    assert interpolate(tie, "respond_latency_p50", "false_cutoff_rate", 0.3) == 0.3


def test_tradeoff_table_shows_the_three_figures(tmp_path: Path) -> None:
    for name, pts in (("a", [(0.2, 0.24, 0.2), (0.5, 0.56, 0.04)]), ("b", [(0.5, 0.56, 0.04)])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "sweep.json").write_text(json.dumps(_sweep(pts)))
    text, data = tradeoff([tmp_path / "a", tmp_path / "b"])
    head, _, row_a, row_b = text.splitlines()[:4]
    assert "cut-off @300ms" in head and "cut-off @600ms" in head and "latency (s) @5% cut-off" in head
    assert row_a == "| a | 0.170 | - | 0.540 |" and row_b == "| b | - | - | - |"
    assert data["sweeps"]["a"]["field"]["latency_at_5pct_cutoff"] == pytest.approx(0.54)


def test_cli_sweep_prints_and_writes_the_figures(tiny_suite_def: SuiteDef, tiny_suite: MaterializedSuite,
                                                 tiny_suite_cache: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    suite = tmp_path / "tiny.yaml"
    suite.write_text(yaml.safe_dump(tiny_suite_def.to_dict()))
    out = tmp_path / "sw"
    assert cli_main(["eval", "sweep", "policy=random", f"suite={suite}", f"out={out}", "param=rate", "values=[0.0,0.2]",
                     "workers=1", f"eval.cache_dir={tiny_suite_cache}", "eval.progress=false", "eval.report=false",
                     "eval.resamples=0"]) == 0
    text = capsys.readouterr().out
    assert "false_cutoff_rate" in text and "LiveKit end-of-turn figures" in text and "cut-off @300ms" in text
    s = json.loads((out / "sweep.json").read_text())
    assert set(s["field"]) == {"false_cutoff_at_300ms", "false_cutoff_at_600ms", "latency_at_5pct_cutoff"}
    assert all("false_cutoff_rate" in r["metrics"] and "respond_latency_p50" in r["metrics"] for r in s["rows"])


# ---------------------------------------------------------------- ms per decision
def test_ms_per_decision_pools_shards_weighted_by_decisions(tmp_path: Path) -> None:
    p = tmp_path / TIMING
    assert ms_per_decision(p, "r") is None
    append_timing(p, "r", {"batch": 4, "threads": 1, "ms": [1.0, 2.0, 100.0], "live": [4, 4, 1]})
    append_timing(p, "r", {"batch": 2, "threads": 1, "ms": [3.0], "live": [2]})
    append_timing(p, "other", {"batch": 8, "threads": 4, "ms": [1e6], "live": [8]})
    got = ms_per_decision(p, "r")
    assert got == {"mean": round((4 + 8 + 100 + 6) / 11, 4), "p99": 100.0, "threads": 1, "batch": 4,
                   "decisions": 11, "calls": 4}
    append_timing(p, "r", {"batch": 1, "threads": None, "ms": [2.0] * 200, "live": [1] * 200})
    again = ms_per_decision(p, "r")
    assert again is not None and again["p99"] == 3.0  # 211 decisions: the 99th percentile is not the one 100 ms call
    p.write_text('{"run": "r", "ms": [1.0]}\n')
    with pytest.raises(SpecError, match="malformed decision timing"):
        ms_per_decision(p, "r")


def test_act_timing_divides_each_call_by_its_streams_and_counts_live_ones() -> None:
    recs = [EpisodeRecord(f"s{i}", ActionLog.from_actions([0] * n, chunk_s=C)) for i, n in enumerate((3, 5))]
    t = _act_timing([0.004, 0.002, 0.002, 0.001, 0.001], recs)
    assert t["batch"] == 2 and t["ms"] == [2.0, 1.0, 1.0, 0.5, 0.5] and t["live"] == [2, 2, 2, 1, 1]


def test_timed_policy_times_act_and_forwards_everything_else() -> None:
    class P:
        speak_s = 2.0

        def act(self, obs: object) -> tuple[np.ndarray, dict]:
            return np.zeros(2, np.int64), {}

    inner = P()
    timed = _TimedPolicy(inner)
    timed.speak_s = 0.5  # what prepare_policy does to the oracle: it must reach the policy
    assert inner.speak_s == 0.5 and timed.speak_s == 0.5
    timed.act({})
    timed.act({})
    assert len(timed.act_s) == 2 and all(t >= 0 for t in timed.act_s) and not hasattr(inner, "act_s")


SMALL = SuiteDef(name="field-eval", revision=0, description="field metrics", seed=5,
                 families=("addressed", "distractors"), tiers={"clean": {"difficulty": "easy"}}, scenes={"default": 2})


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> MaterializedSuite:
    d = tmp_path_factory.mktemp("field-cache")
    return materialize(SMALL, cache_dir=d, workers=1, progress=False, rir_cache_dir=str(d))


def _lines(p: Path) -> list[dict]:
    out = []
    for line in (p / "episodes.jsonl").read_text().splitlines():
        d = json.loads(line)
        d.pop("wall_s")  # the shard's wall time: the one field that may differ between runs
        out.append(d)
    return sorted(out, key=lambda d: (d["split"], d["scene_id"]))


def test_eval_records_ms_per_decision_outside_the_episodes_and_shows_the_field(
        small: MaterializedSuite, tmp_path: Path) -> None:
    kw: dict[str, Any] = dict(policy_kwargs={"rate": 0.05}, workers=1, batch_size=2, progress=False, resamples=50,
                              examples=0)
    a = evaluate("random", small, out=tmp_path / "a", **kw)
    b = evaluate("random", small, out=tmp_path / "b", report=False, **kw)
    assert _lines(tmp_path / "a") == _lines(tmp_path / "b")  # timings never enter the episodes
    assert "_act_timing" not in (tmp_path / "a" / "episodes.jsonl").read_text()
    c = a["ms_per_decision"]
    assert set(c) == {"mean", "p99", "threads", "batch", "decisions", "calls"} and c["batch"] == 2
    assert 0 < c["mean"] <= c["p99"] and c["decisions"] == sum(e["action_log"]["n_steps"] for e in _lines(tmp_path / "a"))
    assert len((tmp_path / "a" / TIMING).read_text().splitlines()) == 2  # 4 scenes, 2 per shard
    assert json.loads((tmp_path / "a" / "results.json").read_text())["ms_per_decision"] == c
    # resuming plays nothing and keeps the measured figure; a fresh log starts a fresh side file
    assert evaluate("random", small, out=tmp_path / "a", **kw)["ms_per_decision"] == c
    (tmp_path / "b" / "episodes.jsonl").unlink()
    evaluate("random", small, out=tmp_path / "b", report=False, **kw)
    assert len((tmp_path / "b" / TIMING).read_text().splitlines()) == 2
    md = (tmp_path / "a" / "report.md").read_text()
    assert "## The field's metrics" in md and "**Compute**: " in md and " ms per decision (mean)" in md
    assert re.search(r"^\*\*Safety-critical false-negative rate\*\* .*$", md, re.M)
    for k in FIELD_COLUMNS:
        assert f"| {k} (" in md, k
    # eval compare: the field's table, ms per decision, the safety line
    text, _ = compare([tmp_path / "a", tmp_path / "b"], resamples=0)
    assert "| policy | false cut-off | smooth TOR | pause TOR | side-talk TOR | background TOR |" in text
    assert "ms/decision (mean / p99)" in text and "\nSafety-critical false-negative rate (" in text
    term, _ = compare([tmp_path / "a", tmp_path / "b"], resamples=0, terminal=True)
    assert "Safety-critical false-negative rate" in term and "cut-off" in term and "ms/dec" in term
    assert max(len(x) for x in term.splitlines()) <= 120
    assert b["metrics"]["overall"]["false_cutoff_rate"]["value"] is not None


def test_readme_lists_the_benchmark_of_every_field_metric() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    sec = readme.split("### Metrics and the benchmarks they mirror", 1)[1].split("\n### ", 1)[0]
    for k in (*BENCHMARKS, *FIELD_COLUMNS):
        assert f"`{k}`" in sec, k
    for bench in ("LiveKit eot-bench", "Full-Duplex-Bench", "Proactive-Sound-Bench", "ProactiveBench"):
        assert bench in sec
