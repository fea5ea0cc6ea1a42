"""Recorded events keep their own levels (``scenes.pack_levels: recorded``): per-pack level
statistics, the rendered level difference of a loud and a quiet clip, and the default mode's
scenes unchanged (only ``level_db`` of recordings moves when the mode is switched)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from chimein.errors import ConfigError
from chimein.scenes.events.synthesis import active_rms
from chimein.scenes.pack_levels import MAX_OFFSET_DB, pack_levels
from chimein.scenes.packs import SoundPack
from chimein.scenes.render import render
from chimein.scenes.sampler import SamplerConfig, sample_scene
from chimein.scenes.spec import Annotations, Mics, Room, SceneSpec

SR = 16000


def tone(dur_s: float, amp: float, freq: float = 1000.0, gap_s: float = 0.0) -> np.ndarray:
    """A sine of RMS ``amp / sqrt(2)``, followed by ``gap_s`` of silence."""
    t = np.arange(int(round(dur_s * SR))) / SR
    x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.concatenate([x, np.zeros(int(round(gap_s * SR)), np.float32)])


def db(x: float) -> float:
    return 20.0 * float(np.log10(x))


@pytest.fixture(scope="module")
def loud_quiet(tmp_path_factory: pytest.TempPathFactory, write_pack: Callable[..., Path]) -> Path:
    """Two alarms of one pack recorded 20 dB apart; the quiet one with 1 s of silence after it
    (its active level, not its whole-file RMS, is what is 20 dB lower)."""
    root = tmp_path_factory.mktemp("loud_quiet")
    return write_pack(root, [
        ("Equipment/Alarm/RESPOND/loud.wav", tone(2.0, 0.5), {"description": "smoke alarm", "decision": "RESPOND",
                                                             "safety_critical": True}),
        ("Equipment/Alarm/RESPOND/quiet.wav", tone(2.0, 0.05, gap_s=1.0), {"description": "microwave beep",
                                                                          "decision": "RESPOND"}),
    ])


def test_level_statistics_per_pack_and_group(tmp_path: Path, write_pack: Callable[..., Path]) -> None:
    pack = SoundPack.load(write_pack(tmp_path, [
        ("Nature/Weather/RESPOND/a.wav", tone(1.0, 0.9), {"description": "a", "decision": "RESPOND"}),
        ("Nature/Weather/RESPOND/b.wav", tone(1.0, 0.09), {"description": "b", "decision": "RESPOND"}),
        ("Nature/Weather/IGNORE/c.wav", tone(1.0, 0.009), {"description": "c", "decision": "IGNORE"}),
        ("Nature/Weather/IGNORE/far.wav", tone(1.0, 0.0009), {"description": "far", "decision": "IGNORE"}),
        ("Daily Living/Conversation/IGNORE/talk.wav", tone(1.0, 0.001), {"description": "talk", "decision": "IGNORE"}),
    ]))
    lv = pack_levels(pack, SR)
    sound = lv.groups[False]
    assert sound.n == 4 and lv.groups[True].n == 1
    assert sound.median_db == pytest.approx(db(0.09 / np.sqrt(2)) - 10.0, abs=0.05)  # between b and c
    assert sound.spread_db == pytest.approx(30.0, abs=0.1)  # IQR of 0, -20, -40, -60 dB (re a)
    assert lv.offset_db(pack.get("b")) == pytest.approx(10.0, abs=0.05)
    assert lv.offset_db(pack.get("c")) == pytest.approx(-10.0, abs=0.05)
    assert MAX_OFFSET_DB < 30.0 and lv.offset_db(pack.get("a")) == MAX_OFFSET_DB  # +30 dB: clipped
    assert lv.offset_db(pack.get("far")) == -MAX_OFFSET_DB  # -30 dB: clipped
    assert lv.offset_db(pack.get("talk")) == 0.0  # talk: its own group, its own median


def test_loud_and_quiet_clip_keep_their_difference_in_rendered_scenes(loud_quiet: Path) -> None:
    base = {"family": "proactive", "difficulty": "easy", "sound_packs": [str(loud_quiet)], "pack_fraction": 1.0,
            "event_level_db": [-30.0, -30.0]}
    room, mics = Room(dims=(4.0, 3.0, 2.5), rt60=0.2), Mics(positions=((2.0, 1.5, 1.2),))
    heard: dict[str, dict[str, float]] = {"recorded": {}, "normalised": {}}
    for mode in heard:
        for seed in range(20):
            spec = sample_scene({**base, "pack_levels": mode}, seed)
            (src,) = [s for s in spec.sources if s.kind == "file"]
            name = Path(src.audio["path"]).stem
            if name in heard[mode]:
                continue
            # the same room, place and onset for both clips: only their levels differ
            one = replace(src, onset_s=0.2, position=(3.0, 2.0, 1.4))
            audio = render(SceneSpec(id=name, seed=0, duration_s=3.5, room=room, mics=mics, sources=(one,),
                                     annotations=Annotations())).audio[:, 0]
            heard[mode][name] = db(active_rms(audio, SR))
            assert ("level_offset_db" in src.audio) == (mode == "recorded")
        assert set(heard[mode]) == {"loud", "quiet"}
    diff = heard["recorded"]["loud"] - heard["recorded"]["quiet"]
    assert diff == pytest.approx(20.0, abs=1.0)
    # normalised: every clip's whole-file RMS at the drawn level; the quiet clip's silence makes
    # it *louder* while it sounds
    assert abs(heard["normalised"]["loud"] - heard["normalised"]["quiet"]) < 3.0


def test_recorded_mode_moves_only_recording_levels(loud_quiet: Path, tmp_path: Path,
                                                   write_pack: Callable[..., Path]) -> None:
    """Same draws in both modes: the specs differ only in ``level_db`` of file sources and their
    ``audio.level_offset_db``, which is ``level_db`` minus the normalised mode's level."""
    talk = write_pack(tmp_path, [
        ("Daily Living/Conversation/IGNORE/chat.wav", tone(1.5, 0.2, freq=300.0), {"description": "chat",
                                                                                   "decision": "IGNORE"})])
    moved = 0
    for family in ("mixed", "proactive", "monitoring", "multi_event", "distractors"):
        for seed in range(4):
            cfg = {"family": family, "sound_packs": [str(loud_quiet), str(talk)], "pack_fraction": 0.8}
            a = sample_scene({**cfg, "pack_levels": "normalised"}, seed)
            b = sample_scene({**cfg, "pack_levels": "recorded"}, seed)
            assert sample_scene(cfg, seed) == b  # the presets' mode is ``recorded``
            undone = []
            for sa, sb in zip(a.sources, b.sources, strict=True):
                if sb.kind == "file":
                    off = sb.audio["level_offset_db"]
                    assert sb.level_db - off == pytest.approx(sa.level_db, abs=0.011)
                    moved += abs(off) > 1.0
                    sb = replace(sb, level_db=sa.level_db, audio={k: v for k, v in sb.audio.items()
                                                                  if k != "level_offset_db"})
                undone.append(sb)
            assert replace(b, sources=tuple(undone)) == a
    assert moved >= 5


def test_pack_levels_knob_is_validated() -> None:
    with pytest.raises(ConfigError, match="'pack_levels'.*recorded"):
        SamplerConfig.from_mapping({"pack_levels": "loud"})
    assert SamplerConfig.from_mapping({"pack_levels": "recorded"}).resolved().pack_levels == "recorded"
