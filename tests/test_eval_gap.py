"""The generalisation gap of :func:`chimein.eval.metrics.aggregate`: held-out tier minus the
reference tiers pooled, with a two-sample bootstrap interval, and its tables in ``report.md``
and ``chimein eval compare``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chimein.envs.scoring import ActionLog
from chimein.errors import SpecError
from chimein.eval.metrics import (
    HELDOUT_TIER,
    METRICS,
    REFERENCE_TIERS,
    Episode,
    aggregate,
    make_episode,
)
from chimein.eval.report import compare, markdown_report
from chimein.eval.tables import GAP_COLUMNS
from chimein.scenes.spec import Annotations, Cue, Span

C = 0.1  # chunk: decision k at (k + 1) * 0.1 s
ANN = Annotations(cues=(Cue("r", "RESPOND", (2.0, 5.0), "q"),
                        Cue("i", "INTERVENE", (6.0, 8.0), "alarm", safety_critical=True)),
                  spans=(Span(0.5, 1.0, "u", "speech", True), Span(1.0, 1.5, "u", "pause", True),
                         Span(1.5, 2.0, "u", "speech", True)))


def log_at(times: dict[float, int], n: int = 100) -> ActionLog:
    acts = [0] * n
    for t, a in times.items():
        acts[int(round(t / C)) - 1] = a
    return ActionLog.from_actions(acts, chunk_s=C, speak_s=0.5)


def ep(tier: str, family: str, i: int, hit: bool) -> Episode:
    """Both cues hit at their window start (normalised reward 1), or both missed (0)."""
    log = log_at({2.0: 1, 6.0: 2} if hit else {})
    return make_episode(ANN, log, split=f"{tier}/{family}", family=family, tier=tier, scene_id=f"{family}{i}",
                        speak_s=0.5)


def known_gap_episodes() -> list[Episode]:
    """Family ``a``: every clean/hard scene solved, half the held-out ones missed (gap -0.5 in
    normalised reward, hit rate and timeliness, +0.5 in miss rates); family ``b``: all solved."""
    eps = []
    for fam in ("a", "b"):
        for tier in ("clean", "hard", "heldout"):
            for i in range(10):
                eps.append(ep(tier, fam, i, hit=not (fam == "a" and tier == "heldout" and i % 2)))
    return eps


def test_a_known_gap_is_recovered_with_an_interval_that_excludes_zero() -> None:
    a = aggregate(known_gap_episodes(), resamples=400, seed=0)
    g = a["gap"]
    assert g["heldout_tier"] == "heldout" and g["reference_tiers"] == ["clean", "hard"]
    assert g["overall"]["n_heldout"] == 20 and g["overall"]["n_reference"] == 40
    # overall: the held-out tier misses 5 of 20 scenes, the reference tiers none
    for k, want in (("normalized_reward", -0.25), ("hit_rate", -0.25), ("timeliness", -0.25),
                    ("miss_rate", 0.25), ("safety_miss_rate", 0.25)):
        d = g["overall"][k]
        assert d["value"] == pytest.approx(want), k
        lo, hi = d["ci"]
        assert lo <= want <= hi and (hi < 0 or lo > 0) and d["significant"], (k, d)
        assert d["reference"]["value"] == pytest.approx(1.0 if want < 0 else 0.0)
    fa = g["by_family"]["a"]["normalized_reward"]
    assert fa["value"] == pytest.approx(-0.5) and fa["heldout"]["value"] == pytest.approx(0.5)
    assert fa["ci"][0] <= -0.5 <= fa["ci"][1] < 0 and fa["significant"]
    # family b: no difference at all, so every resample's difference is 0
    fb = g["by_family"]["b"]["normalized_reward"]
    assert fb["value"] == 0.0 and fb["ci"] == [0.0, 0.0] and not fb["significant"]
    # the held-out side is the by_tier figure exactly
    assert g["overall"]["normalized_reward"]["heldout"]["value"] == a["by_tier"]["heldout"]["normalized_reward"]["value"]


def mixed_episodes() -> list[Episode]:
    """Varied, deterministic scenes: hits at various latencies, misses, pause take-overs,
    false alarms; the held-out tier a little worse."""
    rng = np.random.default_rng(7)
    eps = []
    for fam in ("a", "b"):
        for tier in ("clean", "hard", "heldout"):
            for i in range(8):
                acts: dict[float, int] = {}
                if rng.random() < (0.55 if tier == "heldout" else 0.8):
                    acts[round(2.0 + 0.1 * int(rng.integers(0, 25)), 1)] = 1
                if rng.random() < 0.7:
                    acts[round(6.0 + 0.1 * int(rng.integers(0, 15)), 1)] = 2
                if rng.random() < 0.3:
                    acts[1.2] = 1  # in the mid-turn pause: a take-over
                if rng.random() < 0.3:
                    acts[9.5] = 1  # outside any window: a false alarm
                eps.append(make_episode(ANN, log_at(acts), split=f"{tier}/{fam}", family=fam, tier=tier,
                                        scene_id=f"{fam}{i}", speak_s=0.5))
    return eps


def test_each_side_is_computed_like_any_other_group() -> None:
    eps = mixed_episodes()
    g = aggregate(eps, resamples=200, seed=1)["gap"]
    held = aggregate([e for e in eps if e.tier == "heldout"], resamples=0)
    ref = aggregate([e for e in eps if e.tier != "heldout"], resamples=0)
    for fam, gg in [(None, g["overall"]), *((f, g["by_family"][f]) for f in ("a", "b"))]:
        h = held["overall"] if fam is None else held["by_family"][fam]
        r = ref["overall"] if fam is None else ref["by_family"][fam]
        for k in METRICS:
            d = gg[k]
            assert d["heldout"]["value"] == h[k]["value"] and d["reference"]["value"] == r[k]["value"], k
            if h[k]["value"] is None or r[k]["value"] is None:
                assert d["value"] is None and d["ci"] == [None, None]
                continue
            assert d["value"] == pytest.approx(h[k]["value"] - r[k]["value"], abs=1e-12), k
            lo, hi = d["ci"]
            assert lo is not None and lo <= hi, k
    # the interval of the difference is wider than either side's own (both sides vary)
    d = g["overall"]["normalized_reward"]
    width = d["ci"][1] - d["ci"][0]
    assert width > d["heldout"]["ci"][1] - d["heldout"]["ci"][0]
    assert width > d["reference"]["ci"][1] - d["reference"]["ci"][0]
    assert g["overall"]["respond_latency_p50"]["value"] is not None


def test_no_heldout_tier_no_gap_and_nothing_else_changes() -> None:
    eps = mixed_episodes()
    with_gap = aggregate(eps, resamples=50, seed=2)
    without = aggregate(eps, resamples=50, seed=2, heldout_tier=None)
    assert "gap" in with_gap and "gap" not in without
    assert {k: v for k, v in with_gap.items() if k != "gap"} == without
    assert "gap" not in aggregate([e for e in eps if e.tier != "heldout"], resamples=20)
    assert "gap" not in aggregate([e for e in eps if e.tier == "heldout"], resamples=20)  # nothing to compare with
    # one reference tier suffices; only those present are pooled
    only_clean = aggregate([e for e in eps if e.tier != "hard"], resamples=20)["gap"]
    assert only_clean["reference_tiers"] == ["clean"] and only_clean["overall"]["n_reference"] == 16


def test_tier_names_are_arguments() -> None:
    assert HELDOUT_TIER == "heldout" and REFERENCE_TIERS == ("clean", "hard")
    eps = [ep("novel" if e.tier == "heldout" else "seen", e.family, int(e.scene_id[1:]), e.outcome.reward > 0)
           for e in known_gap_episodes() if e.tier != "hard"]
    assert "gap" not in aggregate(eps, resamples=0)
    g = aggregate(eps, resamples=0, heldout_tier="novel", reference_tiers=("seen",))["gap"]
    assert g["heldout_tier"] == "novel" and g["overall"]["normalized_reward"]["value"] == pytest.approx(-0.25)
    assert g["overall"]["normalized_reward"]["ci"] == [None, None]  # no resamples, no interval
    with pytest.raises(SpecError, match="heldout_tier"):
        aggregate(eps, heldout_tier="seen", reference_tiers=("seen",))


def test_gap_is_deterministic_for_a_seed() -> None:
    eps = mixed_episodes()
    a = aggregate(eps, resamples=150, seed=4)["gap"]
    assert a == aggregate(list(reversed(eps)), resamples=150, seed=4)["gap"]  # order of the episodes is irrelevant
    b = aggregate(eps, resamples=150, seed=5)["gap"]
    assert a["overall"]["normalized_reward"]["value"] == b["overall"]["normalized_reward"]["value"]
    assert a["overall"]["normalized_reward"]["ci"] != b["overall"]["normalized_reward"]["ci"]
    json.dumps(a)  # JSON-ready


def results_of(eps: list[Episode], policy: str) -> dict[str, Any]:
    return {"policy": policy, "policy_kwargs": {}, "env": {}, "chimein_version": "test",
            "suite": {"name": "gap-suite", "revision": 1, "fingerprint": "f" * 32, "audio_fingerprint": "a" * 32},
            "metrics": aggregate(eps, resamples=100, seed=0)}


def test_report_and_compare_show_the_gap(tmp_path: Path) -> None:
    worse = results_of(known_gap_episodes(), "worse")
    md = markdown_report(worse)
    sec = md[md.index("## Generalisation gap"):]
    assert md.index("## By tier") < md.index("## Generalisation gap") < md.index("## By family")
    rows = [r for r in sec.split("\n\n")[2].splitlines()[2:]]
    assert len(rows) == len(GAP_COLUMNS) and rows[0].startswith("| norm. reward (higher better) | 1.00 [1.00, 1.00]")
    assert "-0.250 [" in rows[0] and rows[0].endswith("]* |")
    assert "| a | 20 / 10 |" in sec and "two-sample" in sec
    no_gap = results_of([e for e in known_gap_episodes() if e.tier != "heldout"], "clean-only")
    assert "Generalisation gap" not in markdown_report(no_gap)
    dirs = []
    for r in (worse, results_of([ep(e.tier, e.family, i, True) for i, e in enumerate(known_gap_episodes())],
                                "solver")):
        d = tmp_path / r["policy"]
        d.mkdir()
        (d / "results.json").write_text(json.dumps(r))
        dirs.append(d)
    text, _ = compare(dirs, paired_metrics=())
    head = next(r for r in text.splitlines() if r.startswith("| rank"))
    assert head.endswith("| heldout gap (norm. reward) |")
    rows = {r.split(" | ")[1]: r for r in text.splitlines() if r.startswith("| 1 ") or r.startswith("| 2 ")}
    assert rows["worse"].endswith("]* |") and "-0.250 [" in rows["worse"]
    assert rows["solver"].endswith("+0.000 [+0.000, +0.000] |")
    term, _ = compare(dirs, paired_metrics=(), terminal=True)
    assert "Generalisation gap, normalised reward" in term and max(len(x) for x in term.splitlines()) <= 120
    assert any(x.startswith("worse") and "-0.250*" in x for x in term.splitlines())
    # runs without a held-out tier: the leaderboard is as before
    d = tmp_path / "plain"
    d.mkdir()
    (d / "results.json").write_text(json.dumps(no_gap))
    text, _ = compare([d], paired_metrics=())
    assert "heldout gap" not in text and "Generalisation gap" not in compare([d], terminal=True)[0]
