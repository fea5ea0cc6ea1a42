"""The assistant's loudspeaker and its echo: spec field, sampler draw, rendering, env options."""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing as mp
from pathlib import Path

import numpy as np
import pytest

import chimein.scenes.echo as echomod
from chimein.envs.core import EchoMaker, EnvConfig, add_echo
from chimein.envs.env import ResponseTimingEnv
from chimein.errors import ConfigError, SpecError
from chimein.scenes.echo import RESPONSES, assistant_echo, first_response, response_audio
from chimein.scenes.loudspeaker import (
    DEFAULT_LEVEL_DB,
    default_loudspeaker,
    draw_loudspeaker,
    loudspeaker_of,
)
from chimein.scenes.render import RenderedScene
from chimein.scenes.sampler import sample_scene
from chimein.scenes.spec import Annotations, Mics, Room, SceneSpec

ROOM = Room(dims=(4.0, 3.0, 2.5), rt60=0.3)


def spec_of(loudspeaker=None, n_mics=1, seed=0, mic_z=1.2) -> SceneSpec:
    mics = Mics(tuple((2.0 + 0.05 * i, 1.5, mic_z) for i in range(n_mics)))
    return SceneSpec(id="s", seed=seed, duration_s=4.0, room=ROOM, mics=mics, sources=(),
                     annotations=Annotations(), loudspeaker=loudspeaker)


def energy_db(x: np.ndarray) -> float:
    return 10 * math.log10(float(np.sum(np.square(x.astype(np.float64)))))


def _echo_digest(spec_json: str, rir_dir: str) -> str:
    from chimein.scenes.rir import RIRCache

    spec = SceneSpec.from_dict(json.loads(spec_json))
    e = assistant_echo(spec, 1.0, cache=RIRCache(rir_dir))
    return hashlib.sha256(e.tobytes()).hexdigest() + str(e.shape)


# --------------------------------------------------------------------------------------------
# The spec field
# --------------------------------------------------------------------------------------------
def test_spec_with_a_loudspeaker_round_trips_through_json(tmp_path: Path) -> None:
    spec = spec_of({"position": (2.0, 1.5, 1.1), "level_db": -20})
    assert spec.loudspeaker == {"position": [2.0, 1.5, 1.1], "level_db": -20.0}
    assert SceneSpec.from_dict(json.loads(spec.to_json())) == spec
    spec.save(tmp_path / "s.yaml")
    assert SceneSpec.load(tmp_path / "s.yaml") == spec
    assert loudspeaker_of(spec).level_db == -20.0


def test_spec_without_a_loudspeaker_serialises_as_before() -> None:
    spec = spec_of()
    d = spec.to_dict()
    assert "loudspeaker" not in d and "loudspeaker" not in spec.to_json()
    # the keys are those of a spec written before loudspeakers (device is dropped the same way)
    assert sorted(d) == ["annotations", "augment", "difficulty", "duration_s", "family", "id", "meta", "mics",
                         "room", "sample_rate", "seed", "sources", "version"]
    assert SceneSpec.from_dict(d) == spec and SceneSpec.from_dict(d).loudspeaker is None


@pytest.mark.parametrize("bad, field", [
    ({"position": [2.0, 1.5, 2.6]}, "position"),           # above the ceiling
    ({"position": [2.0, 1.5, 1.205]}, "position"),         # 5 mm from the microphone
    ({"position": [2.0, 1.5]}, "position"),
    ({"level_db": -20.0}, "position"),                     # missing
    ({"position": [2.0, 1.5, 1.0], "level_db": 3.0}, "level_db"),
    ({"position": [2.0, 1.5, 1.0], "gain": 1.0}, "gain"),
])
def test_bad_loudspeakers_raise_spec_errors_naming_the_field(bad, field) -> None:
    with pytest.raises(SpecError, match=rf"loudspeaker: field '{field}'"):
        spec_of(bad)
    d = spec_of().to_dict()
    with pytest.raises(SpecError, match=rf"scene\.loudspeaker: field '{field}'"):
        SceneSpec.from_dict({**d, "loudspeaker": bad})


def test_default_loudspeaker_sits_under_the_mics_or_moves_inside() -> None:
    assert default_loudspeaker(ROOM, spec_of().mics) == (2.0, 1.5, 1.1)
    low = spec_of(mic_z=0.05).mics  # a microphone on the floor: 10 cm toward the room's centre
    p = default_loudspeaker(ROOM, low)
    assert ROOM.contains(p, 0.02) and math.dist(p, low.positions[0]) == pytest.approx(0.1, abs=1e-3)
    corner = Mics(((0.01, 0.01, 0.01),))
    q = default_loudspeaker(ROOM, corner)
    assert ROOM.contains(q, 0.02) and math.dist(q, corner.positions[0]) >= 0.02
    assert loudspeaker_of(spec_of()).level_db == DEFAULT_LEVEL_DB


# --------------------------------------------------------------------------------------------
# The sampler
# --------------------------------------------------------------------------------------------
CFG = {"family": "addressed", "difficulty": "easy", "mic_shape": "circular", "n_mics": 4}


def test_sampling_a_loudspeaker_moves_no_other_draw() -> None:
    off = sample_scene({**CFG, "loudspeaker_rate": 0.0}, seed=11)
    assert off.loudspeaker is None
    on = sample_scene({**CFG, "loudspeaker_rate": 1.0}, seed=11)
    ls = on.loudspeaker
    assert ls is not None and -32.0 <= ls["level_db"] <= -20.0
    c = on.mics.center
    assert 0.05 - 1e-3 <= math.dist(ls["position"], c) <= 0.15 + 1e-3
    assert ls["position"][2] < c[2] and on.room.contains(tuple(ls["position"]), 0.02)
    d_on, d_off = on.to_dict(), off.to_dict()
    d_on.pop("loudspeaker")
    assert d_on == d_off  # every other draw of the scene is unchanged
    assert SceneSpec.from_dict(json.loads(on.to_json())) == on
    assert sample_scene({**CFG, "loudspeaker_rate": 1.0}, seed=11) == on


def test_a_pooled_room_keeps_its_loudspeaker_where_it_stands() -> None:
    cfg = {**CFG, "loudspeaker_rate": 1.0, "room_pool": 1}
    a, b = (sample_scene(cfg, seed=s) for s in (1, 2))
    assert a.room == b.room and a.loudspeaker["position"] == b.loudspeaker["position"]
    assert a.loudspeaker["level_db"] != b.loudspeaker["level_db"]  # the volume is per scene
    rates = [sample_scene({**CFG, "loudspeaker_rate": 0.5}, seed=s).loudspeaker is not None for s in range(12)]
    assert 0 < sum(rates) < 12


def test_sampler_rejects_bad_loudspeaker_knobs() -> None:
    with pytest.raises(ConfigError, match="loudspeaker_rate"):
        sample_scene({**CFG, "loudspeaker_rate": 1.5}, seed=0)
    with pytest.raises(ConfigError, match="loudspeaker_distance_m"):
        sample_scene({**CFG, "loudspeaker_distance_m": [0.2, 0.1]}, seed=0)


def test_draw_falls_back_to_the_default_when_nothing_fits() -> None:
    room = Room(dims=(4.0, 3.0, 2.5))
    mics = Mics(((2.0, 1.5, 0.03),))  # no room under the microphone
    ls = draw_loudspeaker(0, room, mics, (0.1, 0.15), (-26.0, -26.0))
    assert tuple(ls["position"]) == default_loudspeaker(room, mics) and ls["level_db"] == -26.0


# --------------------------------------------------------------------------------------------
# The echo
# --------------------------------------------------------------------------------------------
def test_reply_fills_the_speaking_time_from_the_seeded_text() -> None:
    x = response_audio(2.5, 16000, seed=3)
    assert x.shape == (40000,) and abs(x[0]) < 1e-3
    assert np.abs(x[-1]) < 1e-3 and np.abs(x[16000:24000]).max() > 0.1
    assert np.array_equal(x, response_audio(2.5, 16000, seed=3))
    assert len({first_response(s) for s in range(20)}) > 2  # scenes start at different replies
    assert 0 <= first_response(3) < len(RESPONSES)
    with pytest.raises(SpecError, match="speaking time"):
        response_audio(0.0)


def test_echo_is_deterministic_here_and_in_a_spawned_process(tmp_path: Path) -> None:
    spec = spec_of({"position": [2.1, 1.45, 1.1]}, n_mics=2, seed=4)
    rir_dir = str(tmp_path / "rir")
    a = assistant_echo(spec, 1.0)
    echomod._ECHOES.clear_memory()
    b = assistant_echo(spec, 1.0)
    assert a is not b and np.array_equal(a, b) and a.dtype == np.float32 and a.shape[1] == 2
    assert not a.flags.writeable and assistant_echo(spec, 1.0) is b  # cached per process
    assert not np.array_equal(a[:, 0], a[:, 1])  # each microphone hears its own signal
    with mp.get_context("spawn").Pool(1) as pool:
        there = pool.apply(_echo_digest, (spec.to_json(), rir_dir))
    assert there == _echo_digest(spec.to_json(), rir_dir)
    assert there.startswith(hashlib.sha256(a.tobytes()).hexdigest())


def test_echo_energy_falls_by_the_residual_and_rises_with_the_level() -> None:
    spec = spec_of({"position": [2.0, 1.5, 1.1]}, n_mics=2)
    raw = assistant_echo(spec, 1.5, residual_db=0.0)
    aec = assistant_echo(spec, 1.5, residual_db=-20.0)
    deep = assistant_echo(spec, 1.5, residual_db=-35.0)
    assert energy_db(raw) - energy_db(aec) == pytest.approx(20.0, abs=1e-3)
    assert energy_db(raw) - energy_db(deep) == pytest.approx(35.0, abs=1e-3)
    loud = assistant_echo(spec, 1.5, residual_db=0.0, level_db=-16.0)
    assert energy_db(loud) - energy_db(raw) == pytest.approx(10.0, abs=1e-3)  # -16 vs the spec's -26
    far = assistant_echo(spec_of({"position": [1.0, 1.0, 1.2]}, n_mics=2), 1.5, residual_db=0.0)
    assert energy_db(raw) - energy_db(far) > 10.0  # the near loudspeaker is far louder
    # speak_s of reply plus the room's tail
    assert 1.5 * 16000 < raw.shape[0] < 1.5 * 16000 + 16000


def test_a_recorded_clip_replaces_generator_speech(tmp_path: Path) -> None:
    import soundfile as sf

    t = np.arange(8000) / 16000
    sf.write(str(tmp_path / "reply.wav"), 0.3 * np.sin(2 * np.pi * 440 * t), 16000)
    spec = spec_of({"position": [2.0, 1.5, 1.1]})
    x = response_audio(1.0, 16000, clip=tmp_path / "reply.wav")
    assert np.abs(x[8000:12800]).max() == 0.0 and np.abs(x[12800:]).max() > 0.5  # looped after a gap
    clip = assistant_echo(spec, 1.0, clip=str(tmp_path / "reply.wav"))
    assert not np.array_equal(clip[:16000], assistant_echo(spec, 1.0)[:16000])
    env = ResponseTimingEnv([_quiet(spec)], echo=True, echo_clip=str(tmp_path / "reply.wav"), speak_s=1.0,
                            rir_cache_dir=str(tmp_path / "rir"))
    env.reset(seed=0)
    obs = env.step(1)[0]
    assert np.abs(obs["audio"]).max() > 0


# --------------------------------------------------------------------------------------------
# Env options
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("opts, name", [
    (dict(echo_residual_db=5.0), "echo_residual_db"),
    (dict(echo_level_db=-70.0), "echo_level_db"),
    (dict(echo_voice="robot"), "echo_voice"),
    (dict(echo_voice="espeak-ng/no-such-voice"), "echo_voice"),
    (dict(echo_voice=3), "echo_voice"),
    (dict(echo_clip="/no/such/reply.wav"), "echo_clip"),
    (dict(echo_db=-30.0), "echo_db"),  # the synthetic voice's option is gone
])
def test_bad_echo_options_raise_config_errors_naming_the_option(opts, name) -> None:
    with pytest.raises(ConfigError, match=name):
        EnvConfig.from_options(opts)


def _quiet(spec: SceneSpec) -> RenderedScene:
    n = int(round(spec.duration_s * 16000))
    return RenderedScene(np.zeros((n, spec.mics.n), np.float32), 16000, spec)


def test_env_adds_the_scene_echo_once_per_episode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import chimein.envs.core as core

    calls = []
    real = core.assistant_echo
    monkeypatch.setattr(core, "assistant_echo", lambda *a, **k: calls.append(1) or real(*a, **k))
    spec = spec_of(n_mics=2)
    env = ResponseTimingEnv([_quiet(spec)], echo=True, speak_s=0.4, n_mics=2, rir_cache_dir=str(tmp_path))
    env.reset(seed=0)
    heard = [env.step(1 if k in (2, 10, 20) else 0)[0]["audio"] for k in range(30)]
    assert len(calls) == 1
    want = assistant_echo(spec, 0.4, n_mics=2)  # the default loudspeaker, -20 dB residual
    buf = np.zeros((50 * 1280, 2), np.float32)
    for k in (2, 10, 20):
        add_echo(buf, (k + 1) * 1280, want)
    np.testing.assert_array_equal(np.concatenate(heard[:29]), buf[1280: 30 * 1280])
    env.reset(seed=1)
    assert len(calls) == 2
    assert EchoMaker(EnvConfig(echo=False), None)(_quiet(spec)) is None
