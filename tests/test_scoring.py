"""The reward function: every rule, table-driven; incremental == batch; a brute-force reference."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from chimein.envs.scoring import (
    EPS_S,
    ActionLog,
    EpisodeOutcome,
    OnlineScorer,
    RewardConfig,
    decision_times,
    effective_mask,
    score,
)
from chimein.errors import ConfigError, SpecError
from chimein.scenes.spec import Annotations, Cue, Span

CHUNK = 0.1
N = 100  # 10 s episodes: decision times 0.1 .. 10.0

R = Cue("r", "RESPOND", (2.0, 5.0), "question")
R2 = Cue("r2", "RESPOND", (3.0, 6.0), "second question")
INT = Cue("i", "INTERVENE", (2.0, 7.0), "smoke_alarm", safety_critical=True)
I2 = Cue("i2", "INTERVENE", (3.0, 8.0), "doorbell")
IGN = Cue("g", "IGNORE", (6.0, 8.0), "tv")
SPEECH = Span(0.5, 2.0, "user", "speech", addressed=True)
PAUSE = Span(2.5, 3.0, "user", "pause", addressed=True)
CHAT = Span(1.5, 3.0, "bystander", "speech")


def play(cues=(), spans=(), acts=None, n=N, speak_s=2.0, cfg=None, duration_s=None) -> EpisodeOutcome:
    """Score ``acts`` ({decision time: action}) on a 10 s episode of 100 ms chunks."""
    actions = np.zeros(n, np.int64)
    for t, a in (acts or {}).items():
        actions[int(round(t / CHUNK)) - 1] = a
    log = ActionLog.from_actions(actions, CHUNK, speak_s)
    return score(Annotations(cues=tuple(cues), spans=tuple(spans)), log, cfg, duration_s)


def step_of(t: float) -> int:
    return int(round(t / CHUNK)) - 1


# name, cues, spans, actions, expected total, expected cue outcomes, expected penalty kinds
CASES = [
    ("hit in grace", [R], [], {2.5: 1}, 1.0, {"r": "hit"}, []),
    ("hit exactly at window start", [R], [], {2.0: 1}, 1.0, {"r": "hit"}, []),
    ("hit at the grace edge", [R], [], {3.0: 1}, 1.0, {"r": "hit"}, []),
    ("late hit decays linearly", [R], [], {3.5: 1}, 1 - 0.75 * 0.25, {"r": "hit"}, []),
    ("hit exactly at window end", [R], [], {5.0: 1}, 0.25, {"r": "hit"}, []),
    ("just after the window: false alarm + miss", [R], [], {5.1: 1}, -1.0, {"r": "miss"}, ["false_alarm"]),
    ("just before the window: false alarm, then hit", [R], [], {1.9: 1, 4.0: 1}, -0.5 + (1 - 0.75 * 0.5),
     {"r": "hit"}, ["false_alarm"]),
    ("intervene hit in its shorter grace", [INT], [], {2.5: 2}, 1.0, {"i": "hit"}, []),
    ("intervene late", [INT], [], {3.4: 2}, 1 - 0.75 * 0.2, {"i": "hit"}, []),
    ("wrong kind", [R], [], {2.5: 2}, 0.25, {"r": "wrong_kind"}, []),
    ("wrong kind decays too", [R], [], {3.5: 2}, 0.25 * (1 - 0.75 * 0.25), {"r": "wrong_kind"}, []),
    ("wrong kind is final: later right kind is a duplicate", [R], [], {2.1: 2, 4.5: 1}, 0.25 - 0.25,
     {"r": "wrong_kind"}, ["duplicate"]),
    ("false alarm, no cues", [], [], {1.0: 1}, -0.5, {}, ["false_alarm"]),
    ("false alarm inside an IGNORE cue", [IGN], [], {7.0: 2}, -0.5, {"g": "false_alarm"}, ["false_alarm"]),
    ("IGNORE cue left alone", [IGN], [], {}, 0.0, {"g": "ignored"}, []),
    ("interruption during speech", [], [SPEECH], {1.0: 1}, -1.0, {}, ["interruption"]),
    ("interruption during a mid-turn pause", [], [PAUSE], {2.7: 1}, -1.0, {}, ["interruption"]),
    ("span start is inside (interruption)", [], [SPEECH], {0.5: 1}, -1.0, {}, ["interruption"]),
    ("span end is outside (no interruption)", [], [SPEECH], {2.0: 1}, -0.5, {}, ["false_alarm"]),
    ("interruption inside IGNORE counts once", [IGN], [Span(6.5, 7.5, "user")], {7.0: 1}, -1.0,
     {"g": "false_alarm"}, ["interruption"]),
    ("RESPOND hit over chit-chat also interrupts", [R], [CHAT], {2.5: 1}, 1.0 - 1.0, {"r": "hit"}, ["interruption"]),
    ("INTERVENE hit over chit-chat does not", [INT], [CHAT], {2.5: 2}, 1.0, {"i": "hit"}, []),
    ("wrong kind on an INTERVENE cue over chit-chat does not", [INT], [CHAT], {2.5: 1}, 0.25,
     {"i": "wrong_kind"}, []),
    ("duplicate", [R], [], {2.2: 1, 4.5: 1}, 1.0 - 0.25, {"r": "hit"}, ["duplicate"]),
    ("miss", [R], [], {}, -0.5, {"r": "miss"}, []),
    ("safety-critical miss", [INT], [], {}, -2.0, {"i": "miss"}, []),
    ("action while the assistant speaks is a no-op", [R], [], {1.0: 1, 2.5: 1}, -0.5 - 0.5,
     {"r": "miss"}, ["false_alarm"]),
    ("action exactly when speech ends is effective", [R], [], {1.0: 1, 3.0: 1}, -0.5 + 1.0,
     {"r": "hit"}, ["false_alarm"]),
    ("overlap: matching kind preferred over earlier start", [R, I2], [], {3.5: 2}, 1.0 - 0.5,
     {"r": "miss", "i2": "hit"}, []),
    ("overlap: earliest start among matching", [R, R2], [], {3.5: 1}, (1 - 0.75 * 0.25) - 0.5,
     {"r": "hit", "r2": "miss"}, []),
    ("overlap: both answered", [R, R2], [], {3.5: 1, 5.5: 1}, (1 - 0.75 * 0.25) + (1 - 0.75 * 0.75),
     {"r": "hit", "r2": "hit"}, []),
    ("overlap: no matching kind -> earliest start gets wrong kind", [R, R2], [], {3.5: 2},
     0.25 * (1 - 0.75 * 0.25) - 0.5, {"r": "wrong_kind", "r2": "miss"}, []),
    ("empty annotations, always wait", [], [], {}, 0.0, {}, []),
    ("window open at episode end: miss at the last step", [Cue("late", "RESPOND", (9.5, 12.0), "q")], [],
     {}, -0.5, {"late": "miss"}, []),
]


@pytest.mark.parametrize("name,cues,spans,acts,total,outcomes,penalties", CASES, ids=[c[0] for c in CASES])
def test_reward_table(name, cues, spans, acts, total, outcomes, penalties):
    out = play(cues, spans, acts)
    assert out.reward == pytest.approx(total, abs=1e-12)
    assert {o.cue_id: o.outcome for o in out.cue_outcomes} == outcomes
    got = sorted(p.kind for p in (*out.false_alarms, *out.interruptions, *out.duplicates))
    assert got == sorted(penalties)
    assert out.step_rewards.sum() == pytest.approx(out.reward, abs=1e-12)


def test_dense_terms_land_on_their_steps():
    out = play([R, INT], [], {2.5: 1})
    sr = out.step_rewards
    assert sr[step_of(2.5)] == 1.0
    assert sr[step_of(7.0)] == -2.0  # the safety-critical window's last chance is t = 7.0
    assert np.count_nonzero(sr) == 2
    hit = out.cue_outcomes[0]
    assert (hit.step, hit.action, hit.latency_s, hit.credit) == (step_of(2.5), 1, pytest.approx(0.5), 1.0)
    miss = out.cue_outcomes[1]
    assert (miss.step, miss.action, miss.time_s) == (step_of(7.0), None, None)


def test_sparse_pays_the_total_at_the_last_step():
    dense = play([R, INT, IGN], [SPEECH], {1.0: 1, 2.5: 2, 7.0: 1})
    sparse = play([R, INT, IGN], [SPEECH], {1.0: 1, 2.5: 2, 7.0: 1}, cfg=RewardConfig(dense=False))
    assert sparse.reward == dense.reward
    assert np.count_nonzero(sparse.step_rewards) == 1 and sparse.step_rewards[-1] == dense.reward


def test_window_before_the_first_decision_is_missed_at_step_zero():
    out = play([Cue("tiny", "RESPOND", (0.0, 0.05), "q")])
    assert out.cue_outcomes[0].outcome == "miss" and out.cue_outcomes[0].step == 0


def test_unreached_cues_and_duration():
    late = Cue("later", "INTERVENE", (11.0, 13.0), "alarm", safety_critical=True)
    out = play([R, late])
    assert out.unreached == ("later",) and [o.cue_id for o in out.cue_outcomes] == ["r"]
    assert out.reward == -0.5 and out.max_reward == 1.0
    charged = play([R, late], duration_s=13.0)
    assert charged.unreached == () and charged.reward == -2.5
    assert charged.step_rewards[-1] == -2.0


def test_empty_log():
    assert score(Annotations(), ActionLog(np.zeros(0), np.zeros(0), np.zeros(0, bool))).reward == 0.0
    with pytest.raises(SpecError, match="empty action log"):
        score(Annotations(cues=(R,)), ActionLog(np.zeros(0), np.zeros(0), np.zeros(0, bool)), duration_s=10.0)


def test_edges_are_robust_to_float_rounding():
    # 35 * 0.08 = 2.8000000000000003 > 2.8: still inside a window ending at 2.8
    ann = Annotations(cues=(Cue("c", "RESPOND", (2.0, 2.8), "q"),))
    log = ActionLog.from_actions([0] * 34 + [1], chunk_s=0.08)
    assert log.times_s[-1] > 2.8 and score(ann, log).cue_outcomes[0].outcome == "hit"


def test_counts_and_max_reward():
    out = play([R, INT, IGN, I2], [SPEECH], {1.0: 1, 3.2: 2, 7.0: 1})
    c = out.counts()
    # 1.0: interruption; 3.2: INTERVENE hits the smoke alarm (earliest matching window);
    # 7.0: RESPOND inside the open doorbell window -> wrong kind (not a false alarm on the TV)
    assert (c["interruptions"], c["hit"], c["wrong_kind"], c["miss"], c["safety_miss"]) == (1, 1, 1, 1, 0)
    assert (c["ignored"], c["false_alarm_cue"], c["action_cues"], c["actions"]) == (1, 0, 3, 3)
    assert out.max_reward == 3.0


# --------------------------------------------------------------------------------------------
# Action log and config
# --------------------------------------------------------------------------------------------
def test_action_log_json_round_trip_is_compact_and_exact():
    log = ActionLog.from_actions([0, 1, 1, 0, 0, 2] + [0] * 500, chunk_s=0.08, speak_s=0.1)
    d = json.loads(json.dumps(log.to_dict()))
    assert set(d) == {"n_steps", "chunk_s", "events"} and len(d["events"]) == 3
    assert d["events"][1] == [2, 1, 0]  # [step, action, effective]
    assert ActionLog.from_dict(d) == log
    irregular = ActionLog(np.array([0.1, 0.25, 0.3]), np.array([0, 1, 0]), np.array([True, True, True]))
    assert ActionLog.from_dict(json.loads(json.dumps(irregular.to_dict()))) == irregular


def test_effective_mask_rule():
    times = decision_times(10, 0.5)  # 0.5, 1.0, ...
    eff = effective_mask(times, np.array([1, 1, 0, 0, 2, 1, 0, 0, 0, 0]), speak_s=2.0)
    # acts at 0.5 (speaks until 2.5), 1.0 no-op, 2.5 exactly at the end -> effective, 3.0 no-op
    assert eff.tolist() == [True, False, True, True, True, False, True, True, True, True]


@pytest.mark.parametrize("bad,match", [
    (dict(times_s=[0.1, 0.1], actions=[0, 1], effective=[1, 1]), "strictly increasing"),
    (dict(times_s=[0.1, 0.2], actions=[0, 3], effective=[1, 1]), "not an action"),
    (dict(times_s=[0.1], actions=[0, 1], effective=[1, 1]), "equal lengths"),
])
def test_action_log_validation(bad, match):
    with pytest.raises(SpecError, match=match):
        ActionLog(**bad)


@pytest.mark.parametrize("field,value,match", [
    ("hit", 0.0, "must be > 0"), ("late_floor", 1.5, r"\[0, 1\]"), ("miss", 0.5, "penalty must be <= 0"),
    ("grace_respond_s", -1.0, ">= 0"), ("interruption", float("nan"), "finite"), ("dense", "yes", "true/false"),
])
def test_reward_config_validation(field, value, match):
    with pytest.raises(ConfigError, match=match):
        RewardConfig(**{field: value})


def test_reward_config_from_mapping():
    assert RewardConfig.from_mapping({"miss": -1}).miss == -1.0
    with pytest.raises(ConfigError, match="unknown key 'mis' in reward; known keys: .*; did you mean 'miss'"):
        RewardConfig.from_mapping({"mis": -1})


def test_outcome_json_round_trip():
    out = play([R, INT, IGN], [SPEECH], {1.0: 1, 2.5: 2, 4.8: 1, 7.0: 1})
    back = EpisodeOutcome.from_dict(json.loads(json.dumps(out.to_dict())))
    assert back == out


def test_scorer_rejects_skipped_events():
    sc = OnlineScorer(Annotations(cues=(R,)), decision_times(N, CHUNK))
    assert sc.next_event == step_of(5.0)
    with pytest.raises(ValueError, match="out of order"):
        sc.step(step_of(5.0) + 1, 0)


# --------------------------------------------------------------------------------------------
# Property tests: batch == incremental (every step) == an independent brute-force reference
# --------------------------------------------------------------------------------------------
def reference(ann: Annotations, log: ActionLog, cfg: RewardConfig) -> np.ndarray:
    """The documented rules, written as plainly as possible (dense per-step rewards)."""
    times = log.times_s
    n = len(times)
    last = times[-1]
    cues = [c for c in ann.cues if c.window[0] <= last + EPS_S]
    acts = sorted([c for c in cues if c.expected != "IGNORE"],
                  key=lambda c: (c.window[0], c.window[1], list(ann.cues).index(c)))
    code = {"RESPOND": 1, "INTERVENE": 2}
    consumed: set[str] = set()
    dense = np.zeros(n)

    def inside(c, t):
        return c.window[0] - EPS_S <= t <= c.window[1] + EPS_S

    def due(c):
        ks = [k for k in range(n) if times[k] <= c.window[1] + EPS_S]
        return ks[-1] if ks else 0

    for k in range(n):
        t, a = times[k], int(log.actions[k])
        if a and log.effective[k]:
            talking = any(sp.start_s - EPS_S <= t < sp.end_s - EPS_S for sp in ann.spans)
            open_ = [c for c in acts if inside(c, t) and c.id not in consumed]
            pick = ([c for c in open_ if code[c.expected] == a] or open_ or [None])[0]
            if pick is not None:
                consumed.add(pick.id)
                tl = cfg.timeliness(max(0.0, t - pick.window[0]), pick.window[1] - pick.window[0], pick.expected)
                dense[k] += cfg.hit * (tl if code[pick.expected] == a else cfg.wrong_kind * tl)
                if pick.expected == "RESPOND" and talking:
                    dense[k] += cfg.interruption
            elif any(inside(c, t) for c in acts if c.id in consumed):
                dense[k] += cfg.duplicate
            elif talking:
                dense[k] += cfg.interruption
            else:
                dense[k] += cfg.false_alarm
        for c in acts:
            if c.id not in consumed and due(c) == k:
                consumed.add(c.id)
                dense[k] += cfg.safety_miss if c.safety_critical else cfg.miss
    return dense


def random_episode(seed: int) -> tuple[Annotations, ActionLog, RewardConfig]:
    rng = np.random.default_rng(seed)
    chunk = float(rng.choice([0.02, 0.08, 0.1, 0.4]))
    n = int(rng.integers(5, 150))
    horizon = n * chunk
    cues = []
    for i in range(int(rng.integers(0, 6))):
        s = float(np.round(rng.uniform(0, horizon * 1.1), 2))
        e = float(np.round(s + rng.uniform(0.05, horizon / 2 + 0.1), 2))
        exp = str(rng.choice(["RESPOND", "INTERVENE", "IGNORE"]))
        cues.append(Cue(f"c{i}", exp, (s, e), "x", bool(rng.random() < 0.3)))
    spans = []
    for _ in range(int(rng.integers(0, 4))):
        s = float(np.round(rng.uniform(0, horizon), 2))
        spans.append(Span(s, float(np.round(s + rng.uniform(0.05, horizon / 3 + 0.1), 2)), "u",
                          str(rng.choice(["speech", "pause"]))))
    p = rng.uniform(0.02, 0.4)
    actions = np.where(rng.random(n) < p, rng.integers(1, 3, n), 0)
    log = ActionLog.from_actions(actions, chunk, speak_s=float(rng.choice([0.0, 0.3, 2.0])))
    cfg = RewardConfig(dense=bool(rng.random() < 0.8), late_floor=float(rng.uniform(0, 1)),
                       grace_respond_s=float(rng.uniform(0, 1.5)))
    return Annotations(cues=tuple(cues), spans=tuple(spans)), log, cfg


@pytest.mark.parametrize("seed", range(400))
def test_score_matches_reference_and_online_scorer(seed):
    ann, log, cfg = random_episode(seed)
    out = score(ann, log, cfg)
    ref = reference(ann, log, cfg)
    assert out.reward == pytest.approx(ref.sum(), abs=1e-9)
    if cfg.dense:
        np.testing.assert_allclose(out.step_rewards, ref, rtol=0, atol=1e-12)
    else:
        assert np.count_nonzero(out.step_rewards[:-1]) == 0
    assert math.isclose(out.step_rewards.sum(), out.reward, abs_tol=1e-9)
    # stepping every step online gives the very same floats
    sc = OnlineScorer(ann, log.times_s, cfg)
    paid = [sc.step(k, int(log.actions[k]), bool(log.effective[k])) for k in range(log.n_steps)]
    assert np.array_equal(np.array(paid), out.step_rewards)
    assert sc.outcome() == out
    again = sc.fresh()  # a new episode sharing the precomputed plan
    paid = [again.step(k, int(log.actions[k]), bool(log.effective[k])) for k in range(log.n_steps)]
    assert np.array_equal(np.array(paid), out.step_rewards) and again.outcome() == out
    # a logged episode re-scores identically after a JSON round trip
    back = ActionLog.from_dict(json.loads(json.dumps(log.to_dict())))
    assert score(ann, back, cfg) == out
