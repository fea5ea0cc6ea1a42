"""chimein-bench-v1's ``heldout`` tier shares no voice, speaker, room seed, device seed or pack
file with the training presets: checked from the definitions and on sampled scenes."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from chimein.eval.heldout import TRAINING_CONFIGS, heldout_leaks, pools_of
from chimein.eval.suites import HELDOUT_DEVICE_SEED, HELDOUT_ROOM_SEED, get_suite
from chimein.scenes.sampler import sample_scene, scene_seed
from chimein.scenes.talkers import HELDOUT_SPEAKER_SEED


@pytest.mark.parametrize("name", ["chimein-bench-v1", "chimein-bench-v1-mini"])
def test_v1_heldout_tier_shares_nothing_with_training(name: str) -> None:
    assert heldout_leaks(name) == []


def test_a_heldout_tier_with_a_training_voice_or_seed_is_caught() -> None:
    suite = get_suite("chimein-bench-v1-mini")
    leaky_voice = [{"difficulty": "default", "speech_generators": ["flite"], "speech_voices": {"flite": ["awb"]},
                    "speaker_pool_seed": HELDOUT_SPEAKER_SEED}]
    leaks = heldout_leaks(suite, training=leaky_voice)
    assert any("shares voices ['flite/awb']" in m for m in leaks)
    assert any("shares speakers" in m for m in leaks)
    rooms = [{"difficulty": "easy", "room_pool": 4, "room_pool_seed": HELDOUT_ROOM_SEED}]
    assert any("shares room_seeds" in m for m in heldout_leaks(suite, training=rooms))
    devices = [{"difficulty": "easy", "device_pool": 4, "device_pool_seed": HELDOUT_DEVICE_SEED}]
    assert any("shares device_seeds" in m for m in heldout_leaks(suite, training=devices))
    # a tier drawing rooms from scene seeds cannot be called disjoint
    tiers = {**suite.tiers, "heldout": {**suite.tiers["heldout"], "room_pool": 0}}
    assert any("rooms are drawn from scene seeds" in m for m in heldout_leaks(replace(suite, tiers=tiers)))


def test_pack_files_shared_with_training_are_caught(tmp_path: Path, write_pack: Callable[..., Path]) -> None:
    t = np.arange(16000) / 16000
    alarm = (0.3 * np.sin(2 * np.pi * 3100 * t) * (t % 0.5 < 0.25)).astype(np.float32)
    pack = write_pack(tmp_path, [("alarm.wav", alarm, {"description": "an alarm", "decision": "RESPOND",
                                                        "action": "INTERVENE"})])
    suite = get_suite("chimein-bench-v1-mini")
    tiers = {**suite.tiers, "heldout": {**suite.tiers["heldout"], "sound_packs": [str(pack)]}}
    leaky = replace(suite, tiers=tiers)
    assert not any("pack_files" in m for m in heldout_leaks(leaky))
    training = [{"difficulty": "default", "sound_packs": [str(pack)]}]
    assert any("shares pack_files" in m for m in heldout_leaks(leaky, training=training))


def test_sampled_heldout_scenes_use_only_heldout_voices_speakers_and_devices() -> None:
    """On scenes actually drawn: every talker's speaker id and every device come from the
    held-out pools, and none of them occurs in scenes drawn from the training presets."""
    suite = get_suite("chimein-bench-v1-mini")
    train_speakers = set().union(*(pools_of(c)["speakers"] for c in TRAINING_CONFIGS))
    seen_speakers: set[str] = set()
    held_devices: set[int] = set()
    for split in [s for s in suite.splits if s.tier == "heldout"][:3]:
        for i in range(split.n):
            spec = sample_scene(split.config, scene_seed(split.seed, i))
            for src in spec.sources:
                if src.kind == "speech" and isinstance(src.audio, dict) and "speaker" in src.audio:
                    seen_speakers.add(src.audio["speaker"]["id"])
            if spec.device is not None:
                held_devices.add(int(spec.device["seed"]))
    assert seen_speakers and not seen_speakers & train_speakers
    assert all(s.startswith("flite/awb/") for s in seen_speakers)
    train_devices = set()
    for d in ("easy", "default", "hard"):
        for i in range(12):
            spec = sample_scene({"difficulty": d, "family": "addressed"}, seed=1000 + i)
            if spec.device is not None:
                train_devices.add(int(spec.device["seed"]))
    assert held_devices and train_devices and not held_devices & train_devices


def test_materialize_lists_what_a_heldout_tier_shares(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``chimein eval materialize`` of a suite file whose ``heldout`` tier draws training voices
    from scene-seeded rooms: the JSON lists the leaks and stderr warns."""
    from chimein.cli import main

    suite = tmp_path / "leaky.yaml"
    suite.write_text("name: leaky\nworld: presets\nfamilies: [addressed]\nscenes: 1\n"
                     "tiers:\n  heldout: {difficulty: easy, device_rate: 0.0, walk_rate: 0.0}\n")
    assert main(["eval", "materialize", f"suite={suite}", f"eval.cache_dir={tmp_path}", "workers=1",
                 "eval.progress=false"]) == 0
    out, err = capsys.readouterr()
    leaks = json.loads(out[out.index("{"):])["heldout_leaks"]
    assert any("rooms are drawn from scene seeds" in m for m in leaks)
    assert any("shares voices" in m for m in leaks) and "is not held out" in err
