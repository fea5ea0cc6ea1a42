"""Native vector env == SyncVectorEnv of the single env; autoreset; prefetch; SB3 and Gymnasium vectorisers."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

import chimein.envs  # noqa: F401  (registers the ids)
from chimein.envs.env import ResponseTimingEnv
from chimein.envs.scoring import ActionLog, score
from chimein.envs.sources import SyntheticSource
from chimein.envs.vector import ResponseTimingVectorEnv
from chimein.errors import ChimeinError, SpecError

SHORT = dict(scenes="synthetic", scene_overrides={"duration_s": (3.0, 6.0)})


def random_actions(rng: np.random.Generator, n: int, p: float = 0.1) -> np.ndarray:
    return np.where(rng.random(n) < p, rng.integers(1, 3, n), 0)


def assert_obs_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("opts", [dict(), dict(obs_mode="logmel", n_frames=10, n_mels=16, echo=True, chunk_ms=40),
                                  dict(echo=True, speak_s=0.7, reward={"dense": False}, chunk_ms=400),
                                  dict(echo=True, echo_residual_db=-6.0, echo_level_db=-20.0, n_mics=2,
                                       scene_overrides={"duration_s": (3.0, 6.0), "n_mics": 2})])
def test_native_equals_sync_vector_env(opts):
    n = 3
    opts = {**SHORT, **opts}
    native = ResponseTimingVectorEnv(n, **opts)
    sync = SyncVectorEnv([lambda: ResponseTimingEnv(**opts) for _ in range(n)])
    o1, _ = native.reset(seed=5)
    o2, _ = sync.reset(seed=5)
    assert_obs_equal(o1, o2)
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(300):
        a = random_actions(rng, n)
        s1, s2 = native.step(a), sync.step(a)
        assert_obs_equal(s1[0], s2[0])
        for x, y in zip(s1[1:4], s2[1:4], strict=True):
            np.testing.assert_array_equal(x, y)
        if s1[3].any():
            ends += int(s1[3].sum())
            assert s1[4]["outcome"].keys() == s2[4]["outcome"].keys()
            np.testing.assert_array_equal(s1[4]["outcome"]["reward"], s2[4]["outcome"]["reward"])
        assert native.observation_space.contains(s1[0])
    assert ends >= 3  # several autoresets happened at different steps
    native.close()
    sync.close()


def test_next_step_autoreset_semantics():
    env = ResponseTimingVectorEnv(2, **SHORT)
    env.reset(seed=0)
    n0 = int(env._n[0])
    for _ in range(n0 - 1):
        _, _, _, trunc, _ = env.step(np.zeros(2, np.int64))
        assert not trunc[0]
    obs, rew, term, trunc, info = env.step(np.zeros(2, np.int64))
    assert trunc[0] and not term.any() and info["_outcome"][0]
    assert not obs["audio"][0].any()  # the final observation is the silent chunk
    # infos follow Gymnasium's batching (nested dicts of arrays, as SyncVectorEnv's); the plain
    # per-episode dicts are in env.last_final
    assert info["outcome"]["reward"][0] == env.last_final[0][1]["outcome"]["reward"]
    log = ActionLog.from_dict(env.last_final[0][1]["action_log"])
    assert log.n_steps == n0 and info["action_log"]["n_steps"][0] == n0
    obs, rew, term, trunc, info = env.step(np.array([2, 0]))  # action of sub-env 0 is ignored
    assert rew[0] == 0.0 and not trunc[0] and env._k[0] == 0 and not env._acts[0].any()
    assert info["_scene_id"][0] and not info["_scene_id"][1]


def test_same_step_autoreset_semantics():
    env = ResponseTimingVectorEnv(2, **SHORT, autoreset_mode="same_step")
    ref = ResponseTimingVectorEnv(2, **SHORT)
    env.reset(seed=3)
    ref.reset(seed=3)
    n0 = int(env._n[0])
    for _ in range(n0):
        obs, rew, _, trunc, info = env.step(np.zeros(2, np.int64))
        r_obs, r_rew, *_ = ref.step(np.zeros(2, np.int64))
    assert trunc[0] and "final_obs" in info and info["_final_obs"][0]
    assert_obs_equal(info["final_obs"][0], {k: v[0] for k, v in r_obs.items()})
    r_next, *_ = ref.step(np.zeros(2, np.int64))  # NEXT_STEP: the reset obs comes one step later
    np.testing.assert_array_equal(obs["audio"][0], r_next["audio"][0])
    assert info["final_info"]["_outcome"][0] and rew[0] == r_rew[0]
    assert env._k[0] == 0 and ref._k[0] == 0  # both are at the start of the next episode


def test_prefetch_does_not_change_episodes():
    """Scenes loaded ahead by a pool (threads or processes) give the same episodes as inline loading."""
    runs = []
    for kw in (dict(prefetch=0), dict(prefetch=3, prefetch_workers=2), dict(prefetch=1, prefetch_backend="process")):
        env = ResponseTimingVectorEnv(4, **SHORT, **kw)
        obs, _ = env.reset(seed=11)
        rng = np.random.default_rng(1)
        trace = [obs["audio"].copy()]
        for _ in range(200):
            obs, rew, _, trunc, _ = env.step(random_actions(rng, 4))
            trace += [obs["audio"].copy(), rew.copy(), trunc.copy()]
        runs.append(trace)
        env.close()
    for other in runs[1:]:
        for x, y in zip(runs[0], other, strict=True):
            np.testing.assert_array_equal(x, y)


def test_rewards_equal_rescoring_each_logged_episode():
    env = ResponseTimingVectorEnv(4, **SHORT, speak_s=1.0)
    env.reset(seed=2)
    rng = np.random.default_rng(2)
    paid = [[] for _ in range(4)]
    checked = 0
    for _ in range(400):
        prev_done = env._autoreset.copy()
        scenes = env.scenes
        obs, rew, _, trunc, info = env.step(random_actions(rng, 4, 0.2))
        for i in range(4):
            if prev_done[i]:
                continue
            paid[i].append(rew[i])
            if trunc[i]:
                final = env.last_final[i][1]
                out = score(scenes[i].spec.annotations, ActionLog.from_dict(final["action_log"]))
                np.testing.assert_array_equal(np.array(paid[i]), out.step_rewards)
                assert final["outcome"] == out.to_dict() and info["outcome"]["reward"][i] == out.reward
                paid[i] = []
                checked += 1
    assert checked >= 4


def test_reset_seeds_and_mask():
    env = ResponseTimingVectorEnv(3, **SHORT)
    _, info = env.reset(seed=[7, None, 9])
    single = ResponseTimingEnv(**SHORT)
    assert info["scene_id"][0] == single.reset(seed=7)[1]["scene_id"]
    assert info["scene_id"][2] == single.reset(seed=9)[1]["scene_id"]
    before = env._scenes[1]
    _, info = env.reset(options={"reset_mask": np.array([False, False, True])})
    assert env._scenes[1] is before and info["_scene_id"].tolist() == [False, False, True]


def test_make_vec_vector_entry_point():
    envs = gym.make_vec("chimein/Monitoring-v0", num_envs=3, vectorization_mode="vector_entry_point", **SHORT)
    assert isinstance(envs.unwrapped, ResponseTimingVectorEnv) and envs.num_envs == 3
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    obs, _ = envs.reset(seed=0)
    assert obs["audio"].shape == (3, 1280, 1)
    envs.close()
    sync = gym.make_vec("chimein/Monitoring-v0", num_envs=2, vectorization_mode="sync", **SHORT)
    assert isinstance(sync, SyncVectorEnv)
    sync.close()


def test_async_vector_env_of_the_single_env():
    envs = AsyncVectorEnv([lambda: ResponseTimingEnv(**SHORT) for _ in range(2)])
    ref = ResponseTimingVectorEnv(2, **SHORT)
    o1, _ = envs.reset(seed=4)
    o2, _ = ref.reset(seed=4)
    assert_obs_equal(o1, o2)
    rng = np.random.default_rng(4)
    for _ in range(60):
        a = random_actions(rng, 2)
        s1, s2 = envs.step(a), ref.step(a)
        assert_obs_equal(s1[0], s2[0])
        np.testing.assert_array_equal(s1[1], s2[1])
    envs.close()


def test_sb3_vecenvs_of_the_single_env():
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    for cls in (DummyVecEnv, SubprocVecEnv):
        venv = cls([lambda: ResponseTimingEnv(**SHORT) for _ in range(2)])
        venv.seed(1)
        obs = venv.reset()
        assert obs["audio"].shape == (2, 1280, 1)
        done_seen = False
        for _ in range(120):
            obs, rew, done, infos = venv.step(np.ones(2, np.int64))
            if done.any():
                i = int(np.flatnonzero(done)[0])
                assert "terminal_observation" in infos[i] and "outcome" in infos[i]
                done_seen = True
        assert done_seen
        venv.close()


def test_sb3_adapter_and_short_ppo_run(tmp_path, monkeypatch):
    from stable_baselines3 import PPO

    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path / "sb3"))  # SB3's default logger folder, not /tmp
    from stable_baselines3.common.vec_env import VecMonitor

    from chimein.envs.sb3 import to_sb3_vecenv

    native = gym.make_vec("chimein/ProactiveHelp-v0", num_envs=4, vectorization_mode="vector_entry_point",
                          obs_mode="logmel", n_frames=8, n_mels=16, **SHORT)
    venv = VecMonitor(to_sb3_vecenv(native))
    venv.seed(0)
    obs = venv.reset()
    assert obs["logmel"].shape == (4, 1, 8, 16)
    finals = 0
    for _ in range(120):
        obs, rew, done, infos = venv.step(np.zeros(4, np.int64))
        for i in np.flatnonzero(done):
            assert infos[i]["TimeLimit.truncated"] is True
            assert infos[i]["terminal_observation"]["logmel"].shape == (1, 8, 16)
            assert infos[i]["episode"]["r"] == pytest.approx(infos[i]["outcome"]["reward"], abs=1e-5)
            finals += 1
    assert finals >= 4
    model = PPO("MultiInputPolicy", venv, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    with pytest.raises(TypeError, match="ResponseTimingVectorEnv"):
        to_sb3_vecenv(SyncVectorEnv([lambda: ResponseTimingEnv(**SHORT)]))
    venv.close()


def test_render_and_bad_input():
    env = ResponseTimingVectorEnv(2, **SHORT, render_mode="rgb_array")
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(np.zeros(2, np.int64))
    env.reset(seed=0)
    frames = env.render()
    assert len(frames) == 2 and frames[0].dtype == np.uint8
    for bad, match in [(np.array([0, 3]), "action 3 of sub-env 1"), (np.zeros(3, np.int64), r"shape \(2,\)"),
                       (np.array([0.5, 0]), "integers"), (np.array([-1, 0]), "action -1 of sub-env 0")]:
        with pytest.raises(ValueError, match=match):
            env.step(bad)
    env.step(np.array([1.0, 0.0]))  # integer-valued floats are accepted
    for kwargs, match in [(dict(num_envs=0), "num_envs"), (dict(prefetch=-1), "prefetch"),
                          (dict(autoreset_mode="disabled"), "not supported"), (dict(chunk_ms=401), "chunk_ms"),
                          (dict(prefetch_backend="ray"), "prefetch_backend"), (dict(num_env=2), "did you mean")]:
        with pytest.raises(ChimeinError, match=match):  # ConfigError for EnvConfig fields
            ResponseTimingVectorEnv(**{"num_envs": 1, **SHORT, **kwargs})
    with pytest.raises(SpecError, match="reset_mask"):
        env.reset(options={"reset_mask": np.zeros(2, bool)})


def test_synthetic_scenes_are_shared_by_both_envs():
    src = SyntheticSource(duration_s=(3.0, 6.0))
    v = ResponseTimingVectorEnv(2, src)
    _, info = v.reset(seed=0)
    assert info["scene_id"].tolist() == [ResponseTimingEnv(src).reset(seed=s)[1]["scene_id"] for s in (0, 1)]
