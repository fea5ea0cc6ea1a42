"""The scene sampler: each task family's annotations, presets, determinism, bad configs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from chimein.scenes.sampler import FAMILIES, PRESETS, SamplerConfig, sample_scene, scene_seed
from chimein.scenes.spec import SceneSpec, SpecError

SEEDS = range(6)


def _spec(family: str, seed: int, difficulty: str = "default") -> SceneSpec:
    return sample_scene({"family": family, "difficulty": difficulty}, seed)


@pytest.mark.parametrize("seed", SEEDS)
def test_addressed_has_one_respond_after_the_turn(seed: int) -> None:
    s = _spec("addressed", seed)
    act = s.annotations.action_cues
    assert [c.expected for c in act] == ["RESPOND"]
    turn = [sp for sp in s.annotations.spans if sp.addressed and sp.kind == "speech"]
    assert len(turn) == 1
    # the window opens exactly when the turn ends, and nobody addressed speaks inside it
    assert act[0].window[0] == pytest.approx(turn[0].end_s, abs=1e-3)
    assert act[0].window[1] <= s.duration_s
    user = next(src for src in s.sources if src.role == "user")
    assert user.words and "chime" in user.audio["text"].lower()


@pytest.mark.parametrize("seed", SEEDS)
def test_proactive_intervenes_after_onset(seed: int) -> None:
    from chimein.scenes.events import get_event_class

    s = _spec("proactive", seed)
    act = s.annotations.action_cues
    assert [c.expected for c in act] == ["INTERVENE"]
    ev = next(src for src in s.sources if src.id in act[0].source_ids)
    ec = get_event_class(ev.audio["cls"])
    assert ec.decision == "INTERVENE"
    assert act[0].safety_critical == ec.safety_critical
    assert act[0].window[0] == pytest.approx(ev.onset_s + ec.onset_delay_s, abs=1e-3)


@pytest.mark.parametrize("seed", SEEDS)
def test_monitoring_acknowledges_then_intervenes_on_target(seed: int) -> None:
    s = _spec("monitoring", seed)
    act = s.annotations.action_cues
    assert [c.expected for c in act] == ["RESPOND", "INTERVENE"]
    target = next(src for src in s.sources if src.id in act[1].source_ids).audio["cls"]
    request = next(src for src in s.sources if src.id in act[0].source_ids).audio["text"]
    from chimein.scenes.sampler import MONITOR_TARGETS

    assert MONITOR_TARGETS[target] in request
    # a non-target look-alike, when present, is an IGNORE cue before the target
    for c in s.annotations.cues:
        if c.expected == "IGNORE":
            assert c.window[0] < act[1].window[0]
            other = next(src for src in s.sources if src.id in c.source_ids).audio["cls"]
            assert other != target


@pytest.mark.parametrize("seed", SEEDS)
def test_pauses_are_inside_one_turn(seed: int) -> None:
    s = _spec("pauses", seed)
    pauses = [sp for sp in s.annotations.spans if sp.kind == "pause"]
    speech = [sp for sp in s.annotations.spans if sp.kind == "speech" and sp.addressed]
    assert 1 <= len(pauses) == len(speech) - 1
    lo, hi = PRESETS["default"]["pause_s"]
    for p in pauses:
        assert lo - 0.05 <= p.end_s - p.start_s <= hi + 0.05
    (respond,) = s.annotations.action_cues
    assert respond.window[0] == pytest.approx(max(sp.end_s for sp in speech), abs=1e-3)
    assert all(p.end_s <= respond.window[0] for p in pauses)


@pytest.mark.parametrize("seed", SEEDS)
def test_distractors_need_no_action(seed: int) -> None:
    s = _spec("distractors", seed)
    assert s.annotations.action_cues == ()
    assert s.annotations.cues or s.annotations.spans  # something happens


@pytest.mark.parametrize("seed", range(3))
def test_multi_event_is_long_with_several_cues(seed: int) -> None:
    s = _spec("multi_event", seed, "easy")
    lo, hi = PRESETS["easy"]["multi_event_duration_s"]
    assert lo <= s.duration_s <= hi + 40
    assert len(s.annotations.action_cues) >= 2
    starts = [c.window[0] for c in s.annotations.cues]
    assert starts == sorted(starts)


def test_every_family_roundtrips_and_is_deterministic() -> None:
    for fam in (*FAMILIES, "mixed"):
        a = _spec(fam, 11)
        assert SceneSpec.from_dict(a.to_dict()) == a
        assert _spec(fam, 11) == a
        assert _spec(fam, 12) != a


def test_same_seed_same_spec_in_another_process() -> None:
    code = ("from chimein.scenes.sampler import sample_scene;"
            "print(sample_scene({'family': 'mixed'}, 5).to_json())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == sample_scene({"family": "mixed"}, 5).to_json()


def test_presets_change_the_distribution() -> None:
    hard = [_spec("addressed", i, "hard") for i in range(5)]
    easy = [_spec("addressed", i, "easy") for i in range(5)]
    assert min(s.room.rt60 for s in hard) > max(s.room.rt60 for s in easy)  # type: ignore[operator]
    assert max(s.meta["snr_db"] for s in hard) < min(s.meta["snr_db"] for s in easy)


def test_room_pool_reuses_rooms_and_positions() -> None:
    cfg = {"family": "addressed", "room_pool": 3, "positions_per_room": 4}
    specs = [sample_scene(cfg, i) for i in range(12)]
    assert 2 <= len({s.room.dims for s in specs}) <= 3
    positions = {src.position for s in specs for src in s.sources if src.position is not None}
    assert len(positions) <= 3 * 4
    free = [sample_scene({"family": "addressed"}, i) for i in range(6)]
    assert len({s.room.dims for s in free}) == 6


def test_scene_seed_is_stable_and_distinct() -> None:
    assert scene_seed(3, 0) == scene_seed(3, 0)
    assert len({scene_seed(3, i) for i in range(1000)}) == 1000
    assert scene_seed(3, 0) != scene_seed(4, 0)


@pytest.mark.parametrize(
    ("cfg", "field"),
    [
        ({"family": "cooking"}, "family"),
        ({"difficulty": "brutal"}, "difficulty"),
        ({"snr_db": [30, 10]}, "snr_db"),
        ({"rt60": 0.5}, "rt60"),
        ({"overlap": 2.0}, "overlap"),
        ({"noise_kinds": ["purple"]}, "noise_kinds"),
        ({"event_classes": ["smoke_alarn"]}, "smoke_alarn"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_bad_config_names_the_field(cfg: dict, field: str) -> None:
    with pytest.raises(SpecError, match=field):
        SamplerConfig.from_mapping(cfg)
