"""Tests of SB3 PPO refinement: step-0 equivalence with LMPolicy, learning, resume, loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chimein.agents.lm.checkpoint import load_checkpoint
from chimein.errors import ConfigError, SpecError
from chimein.training.grpo import sampled_reward
from chimein.training.ppo import LMActorCriticPolicy, PPOConfig, make_ppo_env, train_ppo

# an easy task: false alarms and duplicates are free, so acting more often pays
REWARD = {"false_alarm": 0.0, "duplicate": 0.0}


def _cfg(scenes: dict, **kw) -> dict:
    base = dict(num_envs=8, n_steps=64, batch_size=128, n_epochs=4, lr=5e-2, context_chunks=16,
                scenes=scenes, env={"max_duration_s": 5.12, "reward": REWARD}, ckpt_every=100,
                calibrate=False)
    base.update(kw)
    return base


def test_step0_policy_equals_lm_policy(weak_ckpt, train_scenes) -> None:
    from chimein.agents.registry import make_policy

    ck = load_checkpoint(weak_ckpt)
    env = make_ppo_env(ck, 2, train_scenes, context_chunks=40, env={"max_duration_s": 3.2})
    pol = LMActorCriticPolicy(env.observation_space, env.action_space, lambda _: 1e-3,
                              checkpoint=weak_ckpt)
    lmp = make_policy(weak_ckpt, logit_bias=[0.0, 0.5, 0.5])  # act sometimes: feed back actions
    with torch.no_grad():
        pol.action_bias.copy_(torch.tensor([0.0, 0.5, 0.5]))
    obs = env.reset()
    lmp.reset(2)
    acted = 0
    for _ in range(39):  # the whole 40-chunk episode fits the context
        a, p = lmp.act({"audio": env.last_raw["audio"]})
        q = pol.action_probs(obs)
        np.testing.assert_allclose(q, p, atol=2e-5)
        acted += int((a > 0).sum())
        obs, _, dones, _ = env.step(a)
        assert not dones.any()
    assert acted > 0
    assert obs.shape == (2, 40 * 3) and obs.dtype == np.int64
    env.close()


def test_ppo_raises_the_reward_of_a_weakened_policy_and_saves_loadable_checkpoints(
    weak_ckpt, train_scenes, tiny_suite, tiny_suite_cache, tmp_path
) -> None:
    from chimein.agents.registry import make_policy

    before = sampled_reward(weak_ckpt, train_scenes, max_chunks=64, reward=REWARD)
    seen: list[dict] = []
    final = train_ppo(weak_ckpt, tmp_path / "run",
                      _cfg(train_scenes, total_steps=6 * 8 * 64,
                           val={"suite": tiny_suite.definition.to_dict(), "every": 3,
                                "eval": {"cache_dir": str(tiny_suite_cache)}}),
                      log=lambda m: None, on_update=lambda u, s: seen.append(s))
    after = sampled_reward(final, train_scenes, max_chunks=64, reward=REWARD)
    assert after > before + 0.2, (before, after)
    assert len(seen) == 6 and all(np.isfinite(s["rollout/episode_reward"]) for s in seen)
    assert seen[-1]["policy/kl_to_init"] > 0 and "val/normalized_reward" in seen[2]
    assert (tmp_path / "run" / "best" / "chimein.json").is_file()
    assert list((tmp_path / "run" / "tb").glob("events.out.tfevents.*"))
    ck = load_checkpoint(final)
    assert ck.meta["rl"]["algo"] == "ppo" and ck.meta["inference"]["logit_bias"] != [0.0, -4.0, -4.0]
    policy = make_policy(str(final))
    policy.reset(1)
    a, p = policy.act({"audio": np.zeros((1, 1280, 1), np.float32)})
    assert a.shape == (1,) and p.shape == (1, 3)


def test_resume_after_interruption_gives_the_same_model(weak_ckpt, train_scenes, tmp_path) -> None:
    from safetensors.torch import load_file

    later = {**train_scenes, "lead_s": [1.0, 1.5]}  # a curriculum stage from update 1 on
    cfg = _cfg(train_scenes, total_steps=4 * 2 * 16, num_envs=2, n_steps=16, batch_size=16, n_epochs=2,
               context_chunks=8, ckpt_every=1, curriculum=[{"from_step": 1, "scenes": later}])
    train_ppo(weak_ckpt, tmp_path / "a", cfg, log=lambda m: None)

    def interrupt(u: int, _: dict) -> None:
        if u == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_ppo(weak_ckpt, tmp_path / "b", cfg, log=lambda m: None, on_update=interrupt)
    train_ppo(weak_ckpt, tmp_path / "b", cfg, log=lambda m: None)
    wa = load_file(str(tmp_path / "a" / "final" / "model.safetensors"))
    wb = load_file(str(tmp_path / "b" / "final" / "model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    ba = load_checkpoint(tmp_path / "a" / "final").meta["inference"]["logit_bias"]
    bb = load_checkpoint(tmp_path / "b" / "final").meta["inference"]["logit_bias"]
    assert ba == bb and ba != [0.0, -4.0, -4.0]
    with pytest.raises(SpecError, match="another configuration"):
        train_ppo(weak_ckpt, tmp_path / "b", {**cfg, "lr": 1e-3}, log=lambda m: None)


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown key 'nope' in ppo; known keys: "):
        PPOConfig.from_mapping({"nope": 1})
    with pytest.raises(SpecError, match="curriculum"):
        PPOConfig(curriculum=({"from_step": -1, "scenes": "easy"},))
    with pytest.raises(ConfigError, match="num_envs"):
        PPOConfig(num_envs=0)


def test_hydra_config_matches_the_dataclass() -> None:
    """chimein/configs/training/ppo.yaml mirrors PPOConfig's defaults (but for the settings it spells
    out on purpose), and a command-line override reaches its field."""
    from dataclasses import fields

    from chimein.cli import compose

    c = compose("train_ppo", ["init=a", "out=b", "train.total_steps=10"])
    cfg, default = PPOConfig.from_mapping(c.train), PPOConfig()
    differ = {f.name for f in fields(PPOConfig) if getattr(cfg, f.name) != getattr(default, f.name)}
    # the yaml crops episodes for the env and spells the validation settings out
    assert differ == {"total_steps", "env", "val"}, differ
    assert cfg.env == {"max_duration_s": 12.8} and cfg.val["suite"] is None


def test_calibrate_outputs_repicks_the_bias_of_final_and_best(weak_ckpt, tmp_path) -> None:
    import shutil

    from chimein.training.rl_common import calibrate_outputs

    for name in ("final", "best"):
        shutil.copytree(weak_ckpt, tmp_path / name)
    val = {"n_per_family": 1, "families": ["addressed"], "difficulties": ["easy"],
           "biases": [3.0, 4.0], "max_interruptions_per_turn": None}
    chosen = calibrate_outputs(tmp_path, load_checkpoint(weak_ckpt), log=lambda m: None, val=val)
    assert set(chosen) == {"final", "best"}
    for name, bias in chosen.items():
        assert bias[0] == 0.0 and bias[1] == bias[2] and bias[1] in (3.0, 4.0)
        meta = load_checkpoint(tmp_path / name).meta
        assert meta["inference"]["logit_bias"] == bias
        assert [row["bias"] for row in meta["calibration"]["table"]] == [3.0, 4.0]


def test_train_calibrate_command_rewrites_the_bias(weak_ckpt, tmp_path) -> None:
    import shutil

    from chimein.cli import main

    d = tmp_path / "ck"
    shutil.copytree(weak_ckpt, d)
    rc = main(["train", "calibrate", str(d), "train.val.n_per_family=1",
               "train.val.families=[addressed]", "train.val.difficulties=[easy]",
               "train.val.biases=[5.0]", "train.val.max_interruptions_per_turn=null"])
    assert rc == 0
    assert load_checkpoint(d).meta["inference"]["logit_bias"] == [0.0, 5.0, 5.0]
    assert main(["train", "calibrate", str(tmp_path / "missing")]) == 2


def test_calibrate_outputs_sweeps_at_least_the_default_grid(tmp_path, monkeypatch) -> None:
    """An init checkpoint recorded with a narrow grid still gets the default grid swept (RL
    moves the logits); an explicit grid is used as given."""
    from types import SimpleNamespace

    import chimein.training.supervised as sup
    from chimein.training.rl_common import calibrate_outputs

    seen: list[dict] = []
    monkeypatch.setattr(sup, "calibrate_checkpoint",
                        lambda d, scenes, val, log=None, progress=False: seen.append(dict(val)) or [0.0, 0.0, 0.0])
    (tmp_path / "final").mkdir()
    (tmp_path / "final" / "chimein.json").write_text("{}")
    init = SimpleNamespace(meta={"training": {"train": {"val": {"biases": [-0.25, 2.5], "seed": 9}}}})
    calibrate_outputs(tmp_path, init, log=lambda m: None)
    assert set(seen[0]["biases"]) == {-0.25, 2.5, *sup.ValConfig().biases} and seen[0]["seed"] == 9
    calibrate_outputs(tmp_path, init, log=lambda m: None, val={"biases": [1.0]})
    assert seen[1]["biases"] == [1.0]
