"""Device models in scenes (#19, first step): drawn by the sampler, recorded in the spec,
applied by the renderer after the room; absent, a scene is exactly what it was."""

from __future__ import annotations

import json

import numpy as np
import pytest

from chimein.errors import ConfigError, SpecError
from chimein.scenes.device import DEVICE_MODELS
from chimein.scenes.render import render
from chimein.scenes.sampler import sample_scene
from chimein.scenes.spec import SceneSpec

CFG = {"family": "addressed", "difficulty": "easy", "speech_generators": ["espeak-ng"]}


def test_without_devices_a_scene_has_an_ideal_microphone_and_no_device_key() -> None:
    spec = sample_scene({**CFG, "device_rate": 0.0}, seed=1)
    assert spec.device is None and "device" not in spec.to_dict()


def test_presets_record_through_devices_at_their_rates() -> None:
    """easy / default / hard draw a device for about 30 / 50 / 70 % of scenes."""
    for difficulty, rate in (("easy", 0.3), ("default", 0.5), ("hard", 0.7)):
        n = sum(sample_scene({**CFG, "difficulty": difficulty}, seed=i).device is not None for i in range(40))
        assert abs(n / 40 - rate) < 0.2, (difficulty, n)


@pytest.mark.parametrize("model", sorted(DEVICE_MODELS))
def test_a_device_is_drawn_recorded_and_round_trips(model: str) -> None:
    spec = sample_scene({**CFG, "device_rate": 1.0, "device_models": [model]}, seed=2)
    assert spec.device is not None and spec.device["model"] == model
    again = SceneSpec.from_dict(json.loads(spec.to_json()))
    assert again == spec and again.to_json() == spec.to_json()


def test_the_device_changes_the_audio_and_only_the_audio() -> None:
    with_dev = sample_scene({**CFG, "device_rate": 1.0, "device_models": ["phone"]}, seed=3)
    ideal = SceneSpec.from_dict({k: v for k, v in with_dev.to_dict().items() if k != "device"})
    a, b = render(with_dev).audio, render(ideal).audio
    assert a.shape == b.shape and not np.array_equal(a, b)
    assert np.array_equal(render(with_dev).audio, a)  # deterministic
    assert with_dev.annotations == ideal.annotations


def test_bad_device_options_name_the_field() -> None:
    with pytest.raises(ConfigError, match="device_models"):
        sample_scene({**CFG, "device_models": ["walkie-talkie"]}, seed=0)
    spec = sample_scene({**CFG, "device_rate": 1.0}, seed=4)
    d = spec.to_dict()
    d["device"] = {"model": "phone", "seed": 1, "stages": [{"kind": "teleport"}]}
    with pytest.raises(SpecError, match="device"):
        SceneSpec.from_dict(d)
