"""The scene sampler: each task family's annotations, presets, determinism, bad configs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from chimein.errors import ChimeinError, SpecError
from chimein.scenes.sampler import FAMILIES, PRESETS, SamplerConfig, sample_scene, scene_seed
from chimein.scenes.spec import SceneSpec

SEEDS = range(6)


def _spec(family: str, seed: int, difficulty: str = "default") -> SceneSpec:
    return sample_scene({"family": family, "difficulty": difficulty}, seed)


@pytest.mark.parametrize("seed", SEEDS)
def test_addressed_has_one_respond_after_the_turn(seed: int) -> None:
    s = _spec("addressed", seed)
    act = s.annotations.action_cues
    assert [c.expected for c in act][:1] == ["RESPOND"]
    assert all(c.label == "short answer" for c in act[1:])  # a follow-up answer is its own turn
    first = act[1].onset_s if len(act) > 1 else s.duration_s
    turn = sorted((sp for sp in s.annotations.spans if sp.addressed and sp.start_s < first),
                  key=lambda sp: sp.start_s)
    # one turn: speech pieces joined by its mid-turn pauses, ending in speech
    assert [sp.kind for sp in turn][::2] == ["speech"] * ((len(turn) + 1) // 2)
    assert all(sp.kind == "pause" for sp in turn[1::2])
    assert all(abs(a.end_s - b.start_s) < 1e-3 for a, b in zip(turn, turn[1:], strict=False))
    # the window opens exactly when the turn ends, and nobody addressed speaks inside it
    assert act[0].window[0] == pytest.approx(turn[-1].end_s, abs=1e-3)
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
    # pinned: every dataset's and suite's scenes hang on these values (a change moves them all)
    assert [scene_seed(3, i) for i in range(3)] == [1576890651, 457190280, 960329833]
    assert scene_seed(101, 7) == 845142621
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
    with pytest.raises(ChimeinError, match=field):  # ConfigError; SpecError for an unknown event class
        SamplerConfig.from_mapping(cfg)


def _make_pack(root) -> None:
    import json

    import numpy as np
    import soundfile as sf

    from chimein.scenes.speech import synthesize

    (root / "Daily_Living").mkdir(parents=True)
    sp = synthesize("hey chime, what time is it", voice="en-us+m3", sample_rate=44100).audio
    sf.write(root / "request.wav", np.stack([sp, sp * 0.8], axis=1), 44100)
    t = np.arange(int(8000 * 3.0)) / 8000
    beep = 0.3 * np.sin(2 * np.pi * 3000 * t) * ((t % 1.0) < 0.5)
    sf.write(root / "Daily_Living" / "alarm.flac", beep, 8000)
    rng = np.random.default_rng(0)
    sf.write(root / "hum.ogg", 0.1 * rng.standard_normal(22050 * 2), 22050)
    lines = [
        {"id": "r1", "path": "./request.wav", "description": "recorded request", "decision": "RESPOND",
         "action": "RESPOND"},
        {"id": "a1", "path": "./Daily_Living/alarm.flac", "description": "my alarm", "decision": "RESPOND",
         "safety_critical": True, "onset_delay_s": 0.3},
        {"id": "h1", "path": "./hum.ogg", "description": "my hum", "decision": "IGNORE"},
    ]
    (root / "manifest.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


def test_sound_pack_recordings_join_the_scenes(tmp_path) -> None:
    import numpy as np

    from chimein.scenes.render import render

    _make_pack(tmp_path / "pack")
    cfg = {"sound_packs": [str(tmp_path / "pack")], "pack_fraction": 1.0}
    pro = sample_scene({**cfg, "family": "proactive"}, 1)
    (cue,) = pro.annotations.action_cues
    src = next(s for s in pro.sources if s.id in cue.source_ids)
    assert src.kind == "file" and cue.label == "my alarm" and cue.safety_critical
    assert cue.window[0] == pytest.approx(src.onset_s + 0.3, abs=1e-3)
    add = sample_scene({**cfg, "family": "addressed"}, 2)
    (resp,) = add.annotations.action_cues
    user = next(s for s in add.sources if s.id in resp.source_ids)
    assert user.kind == "file" and user.role == "user"
    # the turn ends where the recording's speech ends (not at the file's end)
    assert user.onset_s < resp.window[0] <= user.onset_s + user.duration_s + 1e-6
    dis = sample_scene({**cfg, "family": "distractors"}, 3)
    assert dis.annotations.action_cues == ()
    audio = render(add).audio
    assert np.isfinite(audio).all() and np.abs(audio).max() > 1e-3
    assert sample_scene({**cfg, "family": "addressed"}, 2) == add


def test_bad_sound_pack_is_reported(tmp_path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "manifest.jsonl").write_text('{"id": "x", "path": "../escape.wav", "description": "d", '
                                                   '"decision": "IGNORE"}\n')
    with pytest.raises(SpecError, match="escape"):
        SamplerConfig.from_mapping({"sound_packs": [str(tmp_path / "p")]})
