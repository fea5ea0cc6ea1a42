"""ResponseTimingEnv: checkers, determinism, reward == score(log), oracle/always-wait, obs, bad input."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

import chimein.envs  # noqa: F401  (registers the ids)
from chimein.envs.env import ResponseTimingEnv
from chimein.envs.features import LogMel, LogMelStream
from chimein.envs.registration import PRESETS
from chimein.envs.scoring import (
    EPS_S,
    ActionLog,
    EpisodeOutcome,
    RewardConfig,
    decision_times,
    score,
)
from chimein.envs.sources import SyntheticSource
from chimein.errors import ChimeinError, ConfigError, SpecError
from chimein.scenes.render import RenderedScene
from chimein.scenes.spec import Annotations, Cue, Mics, Room, SceneSpec, Span

#: SB3's checker recommends 1-D or image observations; (time, mics) audio and (frames, mics,
#: mels) log-mel are neither, by design (MultiInputPolicy flattens them). Every other warning fails.
SB3_SHAPE_ADVICE = r".*(unconventional shape|is an image but|minimal resolution for an image).*"

FAMILIES = ("addressed", "proactive", "monitoring", "pauses", "distractors", "multi_event")


def make_scene(cues=(), spans=(), duration=6.0, n_mics=1, sr=16000, seed=0, sid="s") -> RenderedScene:
    spec = SceneSpec(id=sid, seed=seed, duration_s=duration, room=Room(dims=(4.0, 3.0, 2.5)),
                     mics=Mics(tuple((2.0 + 0.05 * i, 1.5, 1.2) for i in range(n_mics))), sources=(),
                     annotations=Annotations(cues=tuple(cues), spans=tuple(spans)), sample_rate=sr)
    audio = np.random.default_rng(seed).standard_normal((int(round(duration * sr)), n_mics)) * 0.3
    return RenderedScene(audio.astype(np.float32), sr, spec)


SCENES = [
    make_scene([Cue("c0", "RESPOND", (1.5, 4.5), "q"), Cue("c1", "IGNORE", (4.6, 5.5), "tv")],
               [Span(0.3, 1.5, "user", addressed=True)], duration=6.0, seed=1, sid="a"),
    make_scene([Cue("c0", "INTERVENE", (0.9, 4.0), "smoke", safety_critical=True)],
               [Span(0.2, 2.0, "bystander")], duration=4.3, seed=2, sid="b"),
    make_scene([Cue("c0", "RESPOND", (1.0, 2.0), "q"), Cue("c1", "INTERVENE", (3.5, 5.0), "bell")],
               [Span(0.1, 1.0, "user", addressed=True), Span(2.5, 3.0, "user", "pause")], duration=5.25,
               seed=3, sid="c"),
]


def oracle_actions(ann: Annotations, times: np.ndarray, speak_s: float) -> np.ndarray:
    """Act at the first decision in each action window where acting is free (not speaking; for
    RESPOND, not over someone talking) -- the test's stand-in for the oracle policy."""
    actions = np.zeros(len(times), np.int64)
    busy = -math.inf
    for c in sorted(ann.action_cues, key=lambda c: c.window):
        for k, t in enumerate(times):
            if t < c.window[0] - EPS_S or actions[k] or t < busy - EPS_S:
                continue
            if t > c.window[1] + EPS_S:
                break
            if c.expected == "RESPOND" and any(sp.start_s - EPS_S <= t < sp.end_s - EPS_S for sp in ann.spans):
                continue
            actions[k] = 1 if c.expected == "RESPOND" else 2
            busy = t + speak_s
            break
    return actions


def run(env: gym.Env, policy, seed: int | None = None):
    obs, info = env.reset(seed=seed)
    rewards, actions, observations = [], [], [obs]
    k = 0
    while True:
        a = policy(k, obs)
        obs, r, term, trunc, info = env.step(a)
        assert term is False
        rewards.append(r)
        actions.append(a)
        observations.append(obs)
        k += 1
        if trunc:
            return np.array(rewards), np.array(actions), observations, info


# --------------------------------------------------------------------------------------------
# Checkers
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("opts", [dict(), dict(obs_mode="logmel", n_frames=12, n_mels=16, echo=True),
                                  dict(chunk_ms=400, n_mics=2, reward={"dense": False})])
def test_gymnasium_and_sb3_checkers(opts):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    scenes = [make_scene(s.spec.annotations.cues, s.spec.annotations.spans, s.spec.duration_s, n_mics=2,
                         seed=i, sid=s.spec.id) for i, s in enumerate(SCENES)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checkers warn about any non-conformity
        env = gym.make("chimein/Mixed-v0", scenes=scenes, render_mode="rgb_array", **opts).unwrapped
        gym_check_env(env, skip_render_check=False)
        warnings.filterwarnings("ignore", message=SB3_SHAPE_ADVICE)
        sb3_check_env(ResponseTimingEnv(scenes, **opts), warn=True)


@pytest.mark.slow
@pytest.mark.parametrize("env_id", sorted(PRESETS))
def test_registered_ids_pass_both_checkers(env_id, tmp_path):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    kw = dict(scene_overrides={"difficulty": "easy"}, max_duration_s=3.0, rir_cache_dir=str(tmp_path))
    env = gym.make(env_id, **kw)
    assert isinstance(env.unwrapped, ResponseTimingEnv)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(env.unwrapped)
        warnings.filterwarnings("ignore", message=SB3_SHAPE_ADVICE)
        sb3_check_env(gym.make(env_id, **kw).unwrapped, warn=True)


def test_make_with_overrides():
    env = gym.make("chimein/Monitoring-v0", scenes=SCENES, chunk_ms=40, obs_mode="logmel", n_frames=8)
    assert env.unwrapped.config.chunk_samples == 640
    assert env.observation_space["logmel"].shape == (1, 8, 64)
    src = gym.make("chimein/TurnTaking-v0", scene_overrides={"difficulty": "hard"}).unwrapped.source
    assert src.families == ("addressed", "pauses", "distractors") and src.config["difficulty"] == "hard"
    with pytest.raises(gym.error.NameNotFound):
        gym.make("chimein/NoSuchTask-v0")


# --------------------------------------------------------------------------------------------
# Determinism and reward consistency
# --------------------------------------------------------------------------------------------
def random_policy(seed: int, p: float = 0.08):
    rng = np.random.default_rng(seed)
    return lambda k, obs: int(rng.integers(1, 3)) if rng.random() < p else 0


@pytest.mark.parametrize("opts", [dict(), dict(obs_mode="logmel", n_frames=20, echo=True, chunk_ms=20)])
def test_same_seed_same_episode(opts):
    env = ResponseTimingEnv("synthetic", **opts)
    r1, a1, o1, i1 = run(env, random_policy(0), seed=7)
    r2, a2, o2, i2 = run(ResponseTimingEnv("synthetic", **opts), random_policy(0), seed=7)  # a new env too
    assert np.array_equal(r1, r2) and np.array_equal(a1, a2) and i1 == i2
    for x, y in zip(o1, o2, strict=True):
        assert all(np.array_equal(x[k], y[k]) for k in x)
    *_, i3 = run(env, random_policy(0), seed=8)
    assert i3["scene_id"] != i1["scene_id"]


@pytest.mark.parametrize("seed", range(12))
def test_step_rewards_equal_rescoring_the_logged_episode(seed):
    speak = [0.5, 2.0, 3.0][seed % 3]
    dense = seed % 4 != 0
    env = ResponseTimingEnv("synthetic", speak_s=speak, chunk_ms=[20, 80, 400][seed % 3], reward={"dense": dense})
    rewards, actions, _, info = run(env, random_policy(seed, p=0.15), seed=seed)
    log = ActionLog.from_dict(info["action_log"])
    assert log == ActionLog.from_actions(actions, env.config.chunk_s, speak)  # the speaking rule
    out = score(env.scene.spec.annotations, log, RewardConfig(dense=dense))
    assert np.array_equal(rewards, out.step_rewards)
    assert info["outcome"] == out.to_dict()


@pytest.mark.parametrize("seed", range(6))
def test_oracle_scores_the_maximum_and_always_wait_the_misses(seed):
    env = ResponseTimingEnv("synthetic")
    env.reset(seed=seed)
    ann = env.scene.spec.annotations
    times = decision_times(env._n, env.config.chunk_s)
    plan = oracle_actions(ann, times, env.config.speak_s)
    rewards, _, _, info = run(env, lambda k, obs: int(plan[k]), seed=seed)
    assert rewards.sum() == pytest.approx(info["outcome"]["max_reward"]) and info["outcome"]["max_reward"] > 0
    assert EpisodeOutcome.from_dict(info["outcome"]).counts()["hit"] == len(ann.action_cues)
    rewards, _, _, info = run(env, lambda k, obs: 0, seed=seed)
    cfg = RewardConfig()
    expected = sum(cfg.safety_miss if c.safety_critical else cfg.miss for c in ann.action_cues)
    counts = EpisodeOutcome.from_dict(info["outcome"]).counts()
    assert rewards.sum() == pytest.approx(expected) and counts["miss"] == len(ann.action_cues)
    assert np.count_nonzero(rewards) == len(ann.action_cues)  # one term per missed window, nothing else


@pytest.mark.parametrize("family", FAMILIES)
def test_oracle_and_always_wait_on_every_family(family):
    """Sampled scenes of every family: the oracle earns exactly the maximum, always-WAIT exactly
    the miss penalties (scored without rendering: the reward depends on annotations only)."""
    from chimein.scenes.sampler import sample_scene

    cfg = RewardConfig()
    chunk = 0.08
    for seed in range(6 if family != "multi_event" else 2):
        spec = sample_scene({"family": family, "difficulty": "default"}, seed=seed)
        ann = spec.annotations
        times = decision_times(math.ceil(spec.duration_s / chunk - 1e-9), chunk)
        log = ActionLog.from_actions(oracle_actions(ann, times, 2.0), chunk, 2.0)
        out = score(ann, log, cfg)
        assert out.reward == pytest.approx(out.max_reward), (family, seed, out.to_dict())
        assert not out.false_alarms and not out.interruptions and not out.duplicates
        wait = score(ann, ActionLog.from_actions(np.zeros(len(times)), chunk), cfg)
        assert wait.reward == pytest.approx(sum(cfg.safety_miss if c.safety_critical else cfg.miss
                                                for c in ann.action_cues))


# --------------------------------------------------------------------------------------------
# Observations
# --------------------------------------------------------------------------------------------
def test_audio_observation_is_the_scene_chunk_by_chunk():
    scene = SCENES[0]
    env = ResponseTimingEnv([scene])
    _, _, obs, info = run(env, lambda k, o: 0, seed=0)
    C = env.config.chunk_samples
    n = math.ceil(scene.audio.shape[0] / C)
    assert len(obs) == n + 1 and info["outcome"]["n_steps"] == n
    heard = np.concatenate([o["audio"] for o in obs[:-1]])
    np.testing.assert_array_equal(heard[: scene.audio.shape[0]], np.clip(scene.audio, -1, 1))
    assert not heard[scene.audio.shape[0]:].any() and not obs[-1]["audio"].any()  # padding, final obs


def test_assistant_speaking_and_time_since_spoke():
    env = ResponseTimingEnv([SCENES[1]], chunk_ms=100, speak_s=0.5, max_time_since_spoke_s=5.0)
    obs, _ = env.reset(seed=0)
    assert obs["assistant_speaking"].tolist() == [0] and obs["time_since_spoke"].tolist() == [5.0]
    # act at t=0.1 (speaks until 0.6); 0.2 is a no-op; 0.6 is effective again (speaks until 1.1)
    seq = [env.step(a)[0] for a in (2, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0)]
    # the obs returned by step k is for decision time (k + 2) * 0.1
    speaking = [int(o["assistant_speaking"][0]) for o in seq]
    assert speaking == [1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 0]
    since = [float(o["time_since_spoke"][0]) for o in seq]
    np.testing.assert_allclose(since, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.1], atol=1e-6)
    log = env.action_log()
    assert log.effective[:6].tolist() == [True, False, True, True, True, True]
    assert log.actions[1] == 1 and log.actions[5] == 1


def test_echo_is_heard_only_while_speaking(tmp_path):
    quiet = make_scene([], [], duration=3.0, seed=5)
    quiet = RenderedScene(np.zeros_like(quiet.audio), 16000, quiet.spec)
    env = ResponseTimingEnv([quiet], echo=True, echo_residual_db=-20.0, speak_s=1.0, rir_cache_dir=str(tmp_path))
    _, _, obs, _ = run(env, lambda k, o: 1 if k == 4 else 0, seed=0)
    level = np.array([10 * np.log10(np.mean(o["audio"].astype(np.float64) ** 2) + 1e-30) for o in obs])
    # obs[j] is chunk j; acting at the end of chunk 4 (t = 0.4 s) plays 1 s of reply from the
    # loudspeaker into chunks 5 .. 17 (12.5 chunks of 80 ms); the room's tail then dies away
    assert (level[:5] == -300).all()
    assert (level[5:17] > -60).all() and level[5:17].max() > -35
    assert level[17:].max() < level[5:17].max() - 15 and level[21:].max() < level[5:17].max() - 50
    env0 = ResponseTimingEnv([quiet], echo=True, echo_residual_db=-40.0, speak_s=1.0, rir_cache_dir=str(tmp_path))
    _, _, obs0, _ = run(env0, lambda k, o: 1 if k == 4 else 0, seed=0)
    level0 = np.array([10 * np.log10(np.mean(o["audio"].astype(np.float64) ** 2) + 1e-30) for o in obs0])
    np.testing.assert_allclose(level[5:17] - level0[5:17], 20.0, atol=1e-3)  # the residual, chunk by chunk


def test_logmel_observation_matches_streaming_features():
    env = ResponseTimingEnv([SCENES[2]], obs_mode="logmel", n_frames=30, n_mels=40, echo=True, chunk_ms=40)
    env_audio = ResponseTimingEnv([SCENES[2]], echo=True, chunk_ms=40)
    pol = lambda k, o: 1 if k in (10, 40) else 0  # noqa: E731
    _, _, obs_lm, _ = run(env, pol, seed=0)
    _, _, obs_au, _ = run(env_audio, pol, seed=0)
    stream = LogMelStream(env.config.logmel, n_channels=1)
    hist = np.full((30, 1, 40), env.config.logmel.low, np.float32)
    for o_lm, o_au in zip(obs_lm, obs_au, strict=True):
        hist = np.concatenate([hist, stream.push(o_au["audio"])])[-30:]
        np.testing.assert_array_equal(o_lm["logmel"], hist.transpose(1, 0, 2))
        assert env.observation_space.contains(o_lm)


def test_logmel_features_batch_equals_streaming_and_respect_bounds():
    lm = LogMel(16000, n_mels=64)
    assert lm.fb.sum(axis=1).max() <= 1.0 + 1e-9  # adjacent triangles share each FFT bin
    rng = np.random.default_rng(0)
    loud = np.sign(rng.standard_normal((16000, 2))).astype(np.float32)  # full-scale +-1 noise
    x = np.concatenate([loud, np.zeros((800, 2), np.float32), 0.01 * loud[:4000]])
    full = lm.frames(x)
    assert full.shape == (x.shape[0] // 160, 2, 64)
    assert full.min() >= lm.low and full.max() <= lm.high and full.max() > 5.0
    stream = LogMelStream(lm, n_channels=2)
    parts, i = [], 0
    for c in rng.integers(1, 3000, 200):
        parts.append(stream.push(x[i:i + c]))
        i += int(c)
    got = np.concatenate(parts)
    np.testing.assert_array_equal(got, full[: len(got)])
    np.testing.assert_array_equal(lm.frames(x, 37, 90), full[37:90])


def test_render_modes():
    env = ResponseTimingEnv(SCENES, render_mode="rgb_array")
    env.reset(seed=0)
    for a in (1, 0, 0, 2, 0):
        env.step(a)
    img = env.render()
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and img.shape[1] == 800
    assert len({tuple(c) for c in img.reshape(-1, 3)}) > 4  # spans, cues, actions, cursor drawn
    text = ResponseTimingEnv(SCENES, render_mode="ansi")
    text.reset(seed=0)
    text.step(1)
    out = text.render()
    assert "acts" in out and "r" in out.splitlines()[2]


def test_max_duration_and_sequential_order(tmp_path):
    env = ResponseTimingEnv(SCENES, order="sequential", max_duration_s=2.0)
    ids = [env.reset(seed=i)[1]["scene_id"] for i in (0, 1, 2, 3)]
    assert ids == ["a", "b", "c", "a"]
    env.reset(seed=1)
    assert env.reset()[1]["scene_id"] == "c"  # the cursor advances
    _, _, obs, info = run(env, lambda k, o: 0, seed=0)
    assert len(obs) - 1 == 25  # 2 s of 80 ms chunks
    assert info["outcome"]["unreached"] == ["c1"]  # the IGNORE cue at 4.6 s is never reached


def test_gymnasium_wrappers_work():
    from gymnasium.wrappers import (
        FlattenObservation,
        FrameStackObservation,
        NormalizeObservation,
        RecordEpisodeStatistics,
    )

    env = RecordEpisodeStatistics(NormalizeObservation(FlattenObservation(
        ResponseTimingEnv(SCENES, obs_mode="logmel", n_frames=4, n_mels=8))))
    _, _, _, info = run(env, lambda k, o: 0, seed=0)
    assert "episode" in info and info["episode"]["r"] == pytest.approx(info["outcome"]["reward"])
    stacked = FrameStackObservation(ResponseTimingEnv(SCENES), stack_size=3)
    obs, _ = stacked.reset(seed=0)
    assert obs["audio"].shape == (3, 1280, 1)


def test_reset_with_a_given_scene():
    env = ResponseTimingEnv(SCENES)
    _, info = env.reset(seed=0, options={"scene": SCENES[2]})
    assert info["scene_id"] == "c"
    with pytest.raises(ConfigError, match="unknown key 'sceen' in reset options; known keys: scene; did you mean 'scene'"):
        env.reset(options={"sceen": SCENES[0]})


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,match", [
    (dict(chunk_ms=10), r"chunk_ms.*\[20.0, 400.0\]"),
    (dict(chunk_ms=500), r"chunk_ms.*\[20.0, 400.0\]"),
    (dict(chunk_ms=80.01), "whole number of samples"),
    (dict(chunk_ms=25, obs_mode="logmel"), "multiple of the 10 ms"),
    (dict(obs_mode="spectrogram"), "obs_mode"),
    (dict(chunk_mss=80), "unknown key 'chunk_mss' in env; known keys: .*; did you mean 'chunk_ms'"),
    (dict(ordr="random"), "unknown key 'ordr' in env; .*did you mean 'order'"),  # a source option
    (dict(n_mics=0), "n_mics"),
    (dict(reward={"hit": -1}), "hit"),
    (dict(render_mode="human"), "render_mode"),
    (dict(order="shuffled"), "order"),
])
def test_bad_options(kwargs, match):
    with pytest.raises(ChimeinError, match=match):  # ConfigError for EnvConfig fields, SpecError for sources
        ResponseTimingEnv(SCENES, **kwargs)


@pytest.mark.parametrize("scenes,match", [
    ("no-such-family", "neither an existing dataset directory nor a scene name"),
    ({"family": "proactive", "difficulty": "impossible"}, "difficulty"),
    ({"famly": "proactive"}, "unknown key 'famly'"),
    ([], "empty"),
    ([object()], "expected a RenderedScene or SceneSpec"),
    (3.5, "cannot use a float"),
])
def test_bad_scene_sources(scenes, match):
    with pytest.raises(ChimeinError, match=match):  # ConfigError for sampler configs, SpecError for sources
        ResponseTimingEnv(scenes)


def test_dataset_directory_source(tmp_path):
    from chimein.scenes.dataset import SceneDataset, generate_dataset

    generate_dataset({"family": "addressed", "difficulty": "easy"}, n=2, seed=0, out=tmp_path / "ds", workers=1,
                     progress=False)
    ds = SceneDataset(tmp_path / "ds")
    env = ResponseTimingEnv(str(tmp_path / "ds"), order="sequential")
    assert [env.reset(seed=i)[1]["scene_id"] for i in (0, 1, 2)] == [ds.ids[0], ds.ids[1], ds.ids[0]]
    rewards, _, obs, info = run(env, lambda k, o: 0, seed=1)
    np.testing.assert_array_equal(obs[0]["audio"], ds.load(1).audio[:1280, :1])
    assert rewards.sum() == -0.5 * len(ds.spec(1).annotations.action_cues)
    (tmp_path / "ds" / ds.entries[0].audio).unlink()
    with pytest.raises(SpecError, match="missing file"):
        ResponseTimingEnv(str(tmp_path / "ds"))


def test_dataset_directory_missing_files(tmp_path):
    (tmp_path / "ds").mkdir()
    with pytest.raises(SpecError, match="manifest"):
        ResponseTimingEnv(str(tmp_path / "ds"))


@pytest.mark.parametrize("action", [3, -1, 1.5, np.float32(1.5), "1", None, np.array([1, 0]), True])
def test_actions_outside_the_space(action):
    env = ResponseTimingEnv(SCENES)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="not in the action space Discrete"):
        env.step(action)


def test_numpy_and_float_integer_actions_are_accepted():
    env = ResponseTimingEnv(SCENES)
    env.reset(seed=0)
    for a in (np.int64(1), np.array(0), 2.0, np.int8(0)):
        env.step(a)
    assert env.action_log().actions.tolist() == [1, 0, 2, 0]


def test_step_order_errors():
    env = ResponseTimingEnv(SCENES)
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(0)
    run(env, lambda k, o: 0, seed=0)
    with pytest.raises(RuntimeError, match="episode is over"):
        env.step(0)


def test_scene_mismatches():
    env = ResponseTimingEnv([make_scene(n_mics=1)], n_mics=2)
    with pytest.raises(SpecError, match="lower n_mics"):
        env.reset(seed=0)
    env = ResponseTimingEnv([make_scene(sr=8000)])
    with pytest.raises(SpecError, match="8000 Hz differs"):
        env.reset(seed=0)
    bad = make_scene()
    bad.audio[100, 0] = np.nan
    with pytest.raises(SpecError, match="NaN"):
        ResponseTimingEnv([bad]).reset(seed=0)
    four = make_scene(n_mics=4, seed=9)
    obs, _ = ResponseTimingEnv([four], n_mics=2).reset(seed=0)
    np.testing.assert_array_equal(obs["audio"], np.clip(four.audio[:1280, :2], -1, 1))


def test_synthetic_source_is_deterministic():
    a, b = SyntheticSource(), SyntheticSource()
    assert np.array_equal(a.load(11).audio, b.load(11).audio) and a.spec(11) == b.spec(11)
    assert not np.array_equal(a.load(11).audio[:1000], a.load(12).audio[:1000])
