"""Every evaluation metric on hand-made annotations and action logs, including edge cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from chimein.envs.episode import EpisodeRecord
from chimein.envs.scoring import ActionLog, RewardConfig, score
from chimein.errors import SpecError
from chimein.eval.metrics import (
    COUNTS,
    METRICS,
    aggregate,
    bare_spec,
    episode_counts,
    judge,
    make_episode,
    metrics_from_counts,
    oracle_rewards,
    user_turns,
)
from chimein.scenes.spec import Annotations, Cue, Span

C = 0.1  # chunk: decision k at (k + 1) * 0.1 s


def log_at(times: dict[float, int], n: int = 100, speak_s: float = 2.0) -> ActionLog:
    """A log of ``n`` steps of ``C`` seconds acting ``a`` at each time ``t`` (a multiple of C)."""
    acts = [0] * n
    for t, a in times.items():
        acts[int(round(t / C)) - 1] = a
    return ActionLog.from_actions(acts, chunk_s=C, speak_s=speak_s)


def overall(*eps, resamples: int = 0) -> dict:
    return aggregate(list(eps), resamples=resamples)["overall"]


def val(g: dict, k: str) -> float | None:
    return g[k]["value"]


# ---------------------------------------------------------------- a scene exercising everything
ANN = Annotations(
    cues=(
        Cue("r0", "RESPOND", (2.0, 5.0), "question", onset_s=1.0),
        Cue("i0", "INTERVENE", (6.0, 8.0), "smoke_alarm", safety_critical=True, onset_s=5.8),
        Cue("r1", "RESPOND", (8.5, 9.5), "second question"),
        Cue("g0", "IGNORE", (5.2, 5.8), "tv"),
    ),
    spans=(
        Span(0.5, 1.0, "user", "speech", True),
        Span(1.0, 1.5, "user", "pause", True),
        Span(1.5, 2.0, "user", "speech", True),
        Span(9.6, 9.8, "bob", "speech", False),
    ),
)


def test_counts_and_every_metric_on_a_hand_made_episode() -> None:
    # speak_s=0.5. 1.2 s: RESPOND inside the mid-turn pause (interruption); 2.5 s RESPOND hit
    # (latency 0.5, within the grace period); 2.7 s ineffective (still speaking, not scored);
    # 6.0 s INTERVENE exactly at the window start (hit, latency 0); 8.5 s RESPOND hit on r1
    # (latency 0); 9.7 s INTERVENE during bob's speech, outside any window (interruption)
    log = log_at({1.2: 1, 2.5: 1, 2.7: 1, 6.0: 2, 8.5: 1, 9.7: 2}, n=100, speak_s=0.5)
    ep = make_episode(ANN, log, speak_s=0.5)
    c, lat = episode_counts(ep, oracle_reward=3.0)
    assert c["action_cues"] == 3 and c["resp_cues"] == 2 and c["int_cues"] == 1
    assert c["resp_hits"] == 2 and c["int_hits"] == 1 and c["misses"] == 0
    assert c["safety_cues"] == 1 and c["safety_misses"] == 0
    assert c["eff_actions"] == 5 and c["eff_resp"] == 3 and c["eff_int"] == 2  # 2.7 s was ineffective
    assert c["interruptions"] == 2 and c["false_alarms"] == 0 and c["duplicates"] == 0
    assert c["turns"] == 2 and c["pauses"] == 1 and c["pauses_taken"] == 1 and c["turns_interrupted"] == 2
    assert sorted(round(v, 6) for v, _ in lat) == [0.0, 0.0, 0.5]
    m = overall(ep)
    assert val(m, "respond_recall") == 1.0 and val(m, "intervene_recall") == 1.0
    assert val(m, "respond_precision") == pytest.approx(2 / 3)
    assert val(m, "intervene_precision") == 0.5 and val(m, "intervene_f1") == pytest.approx(2 / 3)
    assert val(m, "hit_rate") == 1.0 and val(m, "miss_rate") == 0.0 and val(m, "safety_miss_rate") == 0.0
    assert val(m, "wrong_kind_rate") == 0.0 and val(m, "timeliness") == 1.0
    assert val(m, "interruptions_per_turn") == 1.0 and val(m, "turn_interruption_rate") == 1.0
    assert val(m, "pause_takeover_rate") == 1.0
    assert val(m, "false_alarms_per_min") == 0.0 and val(m, "ignore_false_alarm_rate") == 0.0
    assert val(m, "duplicate_rate") == 0.0
    assert val(m, "actions_per_min") == pytest.approx(5 / (10.0 / 60))
    assert val(m, "latency_p50") == pytest.approx(0.0, abs=1e-9)
    assert val(m, "latency_p90") == pytest.approx(0.5)
    assert val(m, "respond_latency_p50") == pytest.approx(0.0, abs=1e-9)  # r1 at 8.5: latency 0
    assert val(m, "intervene_latency_p50") == pytest.approx(0.0, abs=1e-9)
    assert val(m, "mean_reward") == pytest.approx(3.0 - 2.0)
    # R_wait = -0.5 - 2.0 - 0.5 = -3; R_max = 3
    assert val(m, "normalized_reward") == pytest.approx((1.0 + 3.0) / (3.0 + 3.0))
    assert val(m, "oracle_normalized_reward") == pytest.approx((1.0 + 3.0) / (3.0 + 3.0))
    assert val(m, "clip_accuracy") == 1.0 and val(m, "clip_respond_accuracy") == 1.0
    assert val(m, "clip_ignore_accuracy") is None
    assert set(METRICS) <= set(m)


def test_misses_wrong_kind_false_alarms_duplicates_and_ignore_cues() -> None:
    # 2.2 INTERVENE on the RESPOND cue r0 (wrong kind: no INTERVENE window is open); 3.5 and
    # 4.5 inside r0's consumed window (duplicates); 5.5 in the tv's IGNORE window (false alarm
    # attributed to g0); the smoke alarm i0 is missed; 8.7 hits r1
    log = log_at({2.2: 2, 3.5: 1, 4.5: 1, 5.5: 1, 8.7: 1}, n=100, speak_s=0.5)
    ep = make_episode(ANN, log, speak_s=0.5)
    kinds = {o.cue_id: o.outcome for o in ep.outcome.cue_outcomes}
    assert kinds == {"r0": "wrong_kind", "i0": "miss", "r1": "hit", "g0": "false_alarm"}
    m = overall(ep)
    assert val(m, "wrong_kind_rate") == pytest.approx(1 / 3) and val(m, "hit_rate") == pytest.approx(1 / 3)
    assert val(m, "miss_rate") == pytest.approx(1 / 3) and val(m, "safety_miss_rate") == 1.0
    assert val(m, "ignore_false_alarm_rate") == 1.0
    assert val(m, "false_alarms_per_min") == pytest.approx(1 / (10.0 / 60))
    assert len(ep.outcome.duplicates) == 2 and val(m, "duplicate_rate") == pytest.approx(2 / 5)
    assert val(m, "intervene_recall") == 0.0 and val(m, "intervene_precision") == 0.0
    assert val(m, "intervene_f1") == 0.0
    assert val(m, "timeliness") == pytest.approx((0.25 * 1.0 + 0 + 1.0) / 3)
    assert val(m, "respond_precision") == pytest.approx(1 / 4)
    assert val(m, "respond_recall") == 0.5
    # reward: 0.25 (wrong kind) - 0.25 * 2 (duplicates) - 0.5 (false alarm) - 2 (safety miss) + 1
    assert val(m, "mean_reward") == pytest.approx(0.25 - 0.5 - 0.5 - 2.0 + 1.0)


def test_action_exactly_at_window_edges() -> None:
    ann = Annotations(cues=(Cue("r", "RESPOND", (1.0, 3.0), "q"),))
    at_start = make_episode(ann, log_at({1.0: 1}, n=40))
    at_end = make_episode(ann, log_at({3.0: 1}, n=40))
    after = make_episode(ann, log_at({3.1: 1}, n=40))
    assert at_start.outcome.cue_outcomes[0].outcome == "hit"
    assert at_end.outcome.cue_outcomes[0].outcome == "hit"
    assert after.outcome.cue_outcomes[0].outcome == "miss"
    m = overall(at_end)
    assert val(m, "latency_p50") == pytest.approx(2.0)
    assert val(m, "timeliness") == pytest.approx(RewardConfig().late_floor)  # credit at the end = floor
    m2 = overall(after)
    assert val(m2, "false_alarms_per_min") == pytest.approx(1 / (4.0 / 60))
    assert val(m2, "latency_p50") is None and val(m2, "hit_rate") == 0.0


def test_overlapping_windows() -> None:
    ann = Annotations(cues=(Cue("a", "RESPOND", (1.0, 4.0), "q"), Cue("b", "INTERVENE", (2.0, 5.0), "alarm", True)))
    # one INTERVENE at 2.5 goes to the matching cue b; a is then answered at 3.0? busy until 4.5
    ep = make_episode(ann, log_at({2.5: 2, 3.0: 1}, n=60))
    kinds = {o.cue_id: o.outcome for o in ep.outcome.cue_outcomes}
    assert kinds == {"a": "miss", "b": "hit"}
    m = overall(ep)
    assert val(m, "intervene_recall") == 1.0 and val(m, "respond_recall") == 0.0
    assert val(m, "safety_miss_rate") == 0.0 and val(m, "actions_per_min") == pytest.approx(1 / 0.1)
    # with a short speaking time both are hit
    ep2 = make_episode(ann, log_at({2.5: 2, 3.0: 1}, n=60, speak_s=0.2))
    assert {o.outcome for o in ep2.outcome.cue_outcomes} == {"hit"}
    assert val(overall(ep2), "hit_rate") == 1.0


def test_empty_scene() -> None:
    empty = Annotations()
    quiet = make_episode(empty, log_at({}, n=50))
    noisy = make_episode(empty, log_at({1.0: 1, 4.0: 2}, n=50))
    m = overall(quiet)
    for k in ("respond_recall", "intervene_recall", "hit_rate", "timeliness", "normalized_reward",
              "latency_p50", "pause_takeover_rate", "clip_respond_accuracy", "intervene_f1"):
        assert val(m, k) is None, k
    assert val(m, "clip_accuracy") == 1.0 and val(m, "clip_ignore_accuracy") == 1.0
    assert val(m, "false_alarms_per_min") == 0.0 and val(m, "mean_reward") == 0.0
    n = overall(noisy)
    assert val(n, "false_alarms_per_min") == pytest.approx(2 / (5.0 / 60)) and val(n, "clip_accuracy") == 0.0
    assert val(n, "intervene_precision") == 0.0 and val(n, "intervene_f1") == 0.0
    both = overall(quiet, noisy)
    assert val(both, "clip_accuracy") == 0.5 and val(both, "mean_reward") == pytest.approx(-0.5)


def test_empty_log_and_unreached_cues() -> None:
    ann = Annotations(cues=(Cue("r", "RESPOND", (10.0, 12.0), "late"),))
    ep = make_episode(ann, log_at({}, n=20))  # episode ends at 2 s: cue unreached, not scored
    assert ep.outcome.unreached == ("r",)
    assert val(overall(ep), "hit_rate") is None
    # a log with no steps reaches nothing: aggregating it must not fail
    none = make_episode(Annotations(cues=(Cue("r", "RESPOND", (0.0, 1.0), "q"),)),
                        ActionLog(np.zeros(0), np.zeros(0), np.zeros(0, bool)))
    assert none.outcome.unreached == ("r",)
    m = overall(none, ep)
    assert m["counts"]["minutes"] == pytest.approx(2.0 / 60) and val(m, "false_alarms_per_min") == 0.0


def test_user_turns() -> None:
    spans = (Span(0.0, 1.0, "u"), Span(1.0, 2.0, "u", "pause"), Span(2.0, 3.0, "u"), Span(5.0, 6.0, "u"),
             Span(2.5, 3.5, "b"))
    turn, n = user_turns(spans)
    assert n == 3 and turn[0] == turn[1] == turn[2] and turn[3] != turn[0] and turn[4] not in (turn[0], turn[3])


def test_invalid_episode_counts_wrong_for_clip_accuracy() -> None:
    ann = Annotations(cues=(Cue("r", "RESPOND", (1.0, 3.0), "q"),))
    good = make_episode(ann, log_at({1.5: 1}, n=40))
    bad = make_episode(ann, log_at({1.5: 1}, n=40), invalid=True)
    assert val(overall(good), "clip_accuracy") == 1.0
    assert val(overall(bad), "clip_accuracy") == 0.0


def test_oracle_reference_and_normalisation() -> None:
    ep = make_episode(ANN, log_at({}, n=100))
    orc = oracle_rewards([ep])
    assert orc[0] == pytest.approx(3.0)  # hits every cue in time
    m = overall(ep)
    assert val(m, "normalized_reward") == 0.0 and val(m, "oracle_normalized_reward") == 0.0
    off_grid = make_episode(ANN, ActionLog(np.array([1.0, 2.5, 9.9]), np.zeros(3), np.ones(3, bool)))
    assert math.isnan(oracle_rewards([off_grid])[0])


def test_bootstrap_intervals_are_seeded_stratified_and_contain_the_estimate() -> None:
    eps = []
    for i in range(12):
        t = 2.0 + 0.1 * i if i % 3 else None
        ann = Annotations(cues=(Cue("r", "RESPOND", (2.0, 5.0), "q"),))
        e = make_episode(ann, log_at({round(t, 1): 1} if t else {}, n=60), split=f"s{i % 2}", family=f"f{i % 2}",
                         tier="t", scene_id=f"x{i}")
        eps.append(e)
    a = aggregate(eps, resamples=300, seed=1)
    b = aggregate(eps, resamples=300, seed=1)
    c = aggregate(eps, resamples=300, seed=2)
    assert a == b and a != c
    g = a["overall"]
    lo, hi = g["hit_rate"]["ci"]
    assert lo <= g["hit_rate"]["value"] <= hi and lo < hi
    assert set(a["by_split"]) == {"s0", "s1"} and a["by_tier"]["t"]["n_episodes"] == 12
    assert g["counts"]["episodes"] == 12 and set(g["counts"]) == set(COUNTS)
    lo, hi = g["latency_p50"]["ci"]
    assert lo <= g["latency_p50"]["value"] <= hi


def test_metrics_from_counts_vectorised_matches_scalar() -> None:
    rng = np.random.default_rng(0)
    S = {k: rng.integers(0, 5, size=7).astype(float) for k in COUNTS}
    S["minutes"] += 1.0
    vec = metrics_from_counts(S)
    for j in range(7):
        one = metrics_from_counts({k: v[j] for k, v in S.items()})
        for k, v in one.items():
            assert np.allclose(v, vec[k][j], equal_nan=True), k


def test_judge_uses_stored_outcome_or_rescores() -> None:
    log = log_at({2.5: 1, 6.1: 2}, n=100)
    out = score(ANN, log)
    ann = bare_spec("s", ANN, 10.0).to_dict()["annotations"]
    line = {"scene_id": "s", "split": "a/b", "annotations": ann, "action_log": log.to_dict(),
            "outcome": out.to_dict(), "reward_cfg": RewardConfig().to_dict()}
    line = EpisodeRecord.from_json(json.dumps(line), "episodes.jsonl:1", 1)
    ep = judge(line)
    assert ep.outcome == out and ep.split == "a/b"
    assert [o.outcome for o in out.cue_outcomes] == ["hit", "hit", "miss", "ignored"]
    harsher = judge(line, reward={"miss": -1.5})  # r1 is missed
    assert harsher.outcome.reward == pytest.approx(out.reward - 1.0)
    assert judge(line, rescore=True).outcome == out
    with pytest.raises(SpecError, match="annotations"):
        judge(EpisodeRecord("s", log))
    with pytest.raises(SpecError, match=r"episodes.jsonl:3: field 'action_log' is missing"):
        EpisodeRecord.from_json('{"scene_id": "s"}', "episodes.jsonl:3")
    with pytest.raises(SpecError, match=r"episodes.jsonl:4: .*annotations.cues\[0\]"):
        EpisodeRecord.from_json(json.dumps({"scene_id": "s", "action_log": log.to_dict(),
                                            "annotations": {"cues": [{"expected": "X"}]}}), "episodes.jsonl:4")


def test_aggregate_accepts_episode_dicts() -> None:
    """``aggregate`` takes ``episodes.jsonl`` lines as parsed dicts, as it takes their records."""
    log = log_at({2.5: 1, 6.1: 2}, n=100)
    line = {"scene_id": "s", "split": "a/b", "annotations": bare_spec("s", ANN, 10.0).to_dict()["annotations"],
            "action_log": log.to_dict(), "outcome": score(ANN, log).to_dict()}
    from_dicts = aggregate([line], resamples=20)
    assert from_dicts == aggregate([EpisodeRecord.from_dict(line)], resamples=20)
    assert from_dicts["overall"] == aggregate([make_episode(ANN, log, split="a/b", scene_id="s")],
                                              resamples=20)["overall"]
    with pytest.raises(SpecError, match=r"episodes\[1\]: field 'action_log' is missing"):
        aggregate([line, {"scene_id": "t"}])
