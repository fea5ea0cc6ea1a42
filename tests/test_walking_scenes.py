"""Walking talkers in scenes (#19): drawn by the sampler, recorded in the spec (path, speed),
rendered by interpolating RIRs along the path; standing talkers are exactly what they were."""

from __future__ import annotations

import json

import numpy as np
import pytest

from chimein.errors import SpecError
from chimein.scenes.render import render
from chimein.scenes.rir import RIRCache
from chimein.scenes.sampler import sample_scene
from chimein.scenes.spec import SceneSpec

CFG = {"family": "addressed", "difficulty": "easy", "speech_generators": ["espeak-ng"]}


def _walking(seed: int = 2) -> SceneSpec:
    return sample_scene({**CFG, "walk_rate": 1.0}, seed=seed)


def test_without_walking_talkers_stand_and_specs_have_no_path() -> None:
    spec = sample_scene({**CFG, "walk_rate": 0.0}, seed=1)
    assert all(s.path is None for s in spec.sources)
    assert '"path"' not in spec.to_json() and '"speed_mps"' not in spec.to_json()


def test_a_walk_is_drawn_inside_the_room_and_round_trips() -> None:
    for seed in range(4):
        spec = _walking(seed)
        user = next(s for s in spec.sources if s.role == "user")
        assert user.path and 0.2 <= float(user.speed_mps or 0) <= 2.5
        assert all(spec.room.contains(p, 0.3) for p in user.path)
        assert SceneSpec.from_dict(json.loads(spec.to_json())) == spec


def test_a_walking_talker_sounds_different_from_a_standing_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = _walking()
    d = spec.to_dict()
    for s in d["sources"]:
        s.pop("path", None)
        s.pop("speed_mps", None)
    standing = SceneSpec.from_dict(d)
    cache = RIRCache(tmp_path)
    a, b = render(spec, cache=cache).audio, render(standing, cache=cache).audio
    assert a.shape == b.shape and not np.allclose(a, b, atol=1e-4)
    assert np.array_equal(render(spec, cache=RIRCache(tmp_path)).audio, a)  # deterministic, cached


def test_bad_paths_name_the_field() -> None:
    d = _walking().to_dict()
    user = next(s for s in d["sources"] if s["role"] == "user")
    user["path"] = [[99.0, 1.0, 1.5]]
    with pytest.raises(SpecError, match=r"path\[0\]"):
        SceneSpec.from_dict(d)
    user["path"], user["speed_mps"] = [[1.0, 1.0, 1.5]], 9.0
    with pytest.raises(SpecError, match="speed_mps"):
        SceneSpec.from_dict(d)
    del user["speed_mps"]
    with pytest.raises(SpecError, match="path"):
        SceneSpec.from_dict(d)
