"""Tests of TRL GRPO refinement: trainer scoring = rollout sampling, learning, resume, loading."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

from chimein.agents.lm.checkpoint import load_checkpoint  # noqa: E402
from chimein.agents.lm.tokenizer import ACTION_IDS  # noqa: E402
from chimein.errors import ConfigError, SpecError  # noqa: E402
from chimein.training.grpo import (  # noqa: E402
    EpisodeRollout,
    GRPORunConfig,
    restrict_to_actions,
    sampled_reward,
    step_advantage_trainer,
    step_advantages,
    train_grpo,
)

# an easy task: false alarms and duplicates are free, so acting more often pays
REWARD = {"false_alarm": 0.0, "duplicate": 0.0}


def _cfg(scenes: dict | None = None, **kw) -> dict:
    base = dict(steps=10, episodes_per_step=16, num_generations=8, micro_batch=8, lr=1e-2,
                scenes=scenes, reward=REWARD, max_duration_s=5.12, ckpt_every=100,
                calibrate=False)
    base.update(kw)
    return base


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_trainer_scores_completions_with_the_sampling_distribution(weak_ckpt, train_scenes,
                                                                   temperature) -> None:
    """TRL's fused LM head (what the loss uses) gives the rollout's action log-probs, also at a
    sampling temperature below 1 (logits / temperature on both sides)."""
    from trl.trainer.utils import add_fused_lm_head

    ck = load_checkpoint(weak_ckpt)
    restrict_to_actions(ck.model.lm, [0.0, -4.0, -4.0])
    ro = EpisodeRollout(ck.model, None, ck, GRPORunConfig(**_cfg(train_scenes, temperature=temperature)))

    class _T:  # what rollout_func reads from the trainer
        class state:  # noqa: N801
            global_step = 0

    out = ro(["0", "0", "1"], _T())
    assert [len(p) for p in out["prompt_ids"]] == [1, 1, 1]
    lm = ck.model.lm.eval()
    add_fused_lm_head(lm, outputs=("log_probs",), temperature=temperature)
    for i in range(3):
        ids = torch.tensor([out["prompt_ids"][i] + out["completion_ids"][i]])
        with torch.no_grad():
            lp = lm(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids,
                    fused_lm_head=True).log_probs[0, :]
        mask = np.asarray(out["env_mask"][i], bool)
        comp = np.asarray(out["completion_ids"][i])
        assert set(comp[mask].tolist()) <= set(ACTION_IDS) and comp[-1] == 2 and not mask[-1]
        got = lp.numpy()[mask]  # position t scores token t+1; the prompt is one token
        np.testing.assert_allclose(got, np.asarray(out["logprobs"][i])[mask], atol=1e-4)
    # a group shares its scene: same injected units
    assert out["completion_ids"][0][:2] == out["completion_ids"][1][:2]


@pytest.mark.parametrize("advantage", ["episode", "reward_to_go"])
def test_grpo_raises_the_reward_of_a_weakened_policy_and_saves_loadable_checkpoints(
    weak_ckpt, train_scenes, tiny_suite, tiny_suite_cache, tmp_path, advantage
) -> None:
    from chimein.agents.registry import make_policy

    before = sampled_reward(weak_ckpt, train_scenes, max_chunks=64, reward=REWARD)
    seen: list[dict] = []
    final = train_grpo(weak_ckpt, tmp_path / "run",
                       _cfg(train_scenes, val={"suite": tiny_suite.definition.to_dict(), "every": 5,
                                               "eval": {"cache_dir": str(tiny_suite_cache)}},
                            advantage=advantage),
                       log=lambda m: None, on_step=lambda s, d: seen.append(d))
    after = sampled_reward(final, train_scenes, max_chunks=64, reward=REWARD)
    assert after > before + 0.2, (before, after)
    assert len(seen) == 10 and seen[-1]["policy/kl_to_init"] > 0
    assert "val/normalized_reward" in seen[4]
    assert (tmp_path / "run" / "best" / "chimein.json").is_file()
    ck = load_checkpoint(final)
    assert ck.meta["rl"]["algo"] == "grpo" and ck.model.lm.lm_head.bias is None
    policy = make_policy(str(final))
    policy.reset(1)
    a, p = policy.act({"audio": np.zeros((1, 1280, 1), np.float32)})
    assert a.shape == (1,) and p.shape == (1, 3)


def test_resume_after_interruption_gives_the_same_model(weak_ckpt, train_scenes, tmp_path) -> None:
    from safetensors.torch import load_file

    later = {**train_scenes, "lead_s": [1.0, 1.5]}  # a curriculum stage from step 2 on
    cfg = _cfg(train_scenes, steps=4, ckpt_every=2, lr=1e-2, curriculum=[{"from_step": 2, "scenes": later}])
    train_grpo(weak_ckpt, tmp_path / "a", cfg, log=lambda m: None)

    def interrupt(step: int, _: dict) -> None:
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_grpo(weak_ckpt, tmp_path / "b", cfg, log=lambda m: None, on_step=interrupt)
    train_grpo(weak_ckpt, tmp_path / "b", cfg, log=lambda m: None)
    wa = load_file(str(tmp_path / "a" / "final" / "model.safetensors"))
    wb = load_file(str(tmp_path / "b" / "final" / "model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    with pytest.raises(SpecError, match="another configuration"):
        train_grpo(weak_ckpt, tmp_path / "b", {**cfg, "lr": 1e-3}, log=lambda m: None)


def test_step_advantages_are_reward_to_go_minus_the_group_mean_at_each_chunk() -> None:
    r = [np.array([0.0, 1.0, 0.0, -0.5]), np.array([-0.5, 0.0, 0.0, 0.0]),
         np.array([0.0, 0.0, 0.0, 0.0]), np.array([0.0, 0.0, 0.0, -2.0])]
    a = step_advantages(r, 2, gamma=1.0, scale="none")
    # group 1: returns-to-go [0.5, 0.5, -0.5, -0.5] and [-0.5, 0, 0, 0]
    np.testing.assert_allclose(a[0], [0.5, 0.25, -0.25, -0.25])
    np.testing.assert_allclose(a[1], [-0.5, -0.25, 0.25, 0.25])
    np.testing.assert_allclose(a[2], [1.0, 1.0, 1.0, 1.0])  # group 2: only the miss differs
    # at the first decision with gamma = 1 it is GRPO's episode advantage, scaled alike
    tot = np.array([x.sum() for x in r])
    g = step_advantages(r, 2, scale="group")
    np.testing.assert_allclose([x[0] for x in g][:2],
                               (tot[:2] - tot[:2].mean()) / (tot[:2].std(ddof=1) + 1e-4))
    # discounting: a reward k decisions later counts gamma^k
    d = step_advantages([np.array([0.0, 0.0, 1.0]), np.zeros(3)], 2, gamma=0.5, scale="none")
    np.testing.assert_allclose(d[0], [0.125, 0.25, 0.5])
    with pytest.raises(ValueError, match="same number"):
        step_advantages([np.zeros(3), np.zeros(4)], 2)


def test_the_trainer_places_step_advantages_on_the_action_tokens() -> None:
    class _Base:
        class accelerator:  # noqa: N801
            num_processes = 1

        def _generate_and_score_completions(self, inputs):
            return {"completion_ids": torch.zeros((2, 3 * 4 + 1), dtype=torch.long),
                    "advantages": torch.tensor([1.0, -1.0])}

    ro = EpisodeRollout.__new__(EpisodeRollout)
    ro.cfg, ro.upc = GRPORunConfig(**_cfg(num_generations=2, episodes_per_step=2, micro_batch=2,
                                          advantage="reward_to_go", scale_rewards="none")), 3
    ro.step_rewards = [np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, -0.5])]
    t = step_advantage_trainer(_Base)()
    t.chimein_rollout = ro
    adv = t._generate_and_score_completions(None)["advantages"]
    assert adv.shape == (2, 13)
    np.testing.assert_allclose(adv[0, [3, 7, 11]].numpy(), [0.75, 0.75, 0.25])
    np.testing.assert_allclose(adv[1, [3, 7, 11]].numpy(), [-0.75, -0.75, -0.25])
    keep = np.ones(13, bool)
    keep[[3, 7, 11]] = False
    assert not adv[:, keep].any()  # env tokens carry no advantage (masked out anyway)
    ro.cfg = GRPORunConfig(**_cfg())  # advantage="episode": TRL's own advantages untouched
    assert t._generate_and_score_completions(None)["advantages"].shape == (2,)


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="multiple of num_generations"):
        GRPORunConfig(episodes_per_step=12, num_generations=8)
    with pytest.raises(ConfigError, match="unknown key 'nope' in grpo; known keys: "):
        GRPORunConfig.from_mapping({"nope": 1})
    with pytest.raises(ConfigError, match="reward"):
        GRPORunConfig(reward={"hit": -1.0})
    with pytest.raises(ConfigError, match="advantage"):
        GRPORunConfig(advantage="td")
    with pytest.raises(ConfigError, match="gamma"):
        GRPORunConfig(gamma=1.5)
    with pytest.raises(ConfigError, match="scale_rewards"):
        GRPORunConfig(scale_rewards="std")


def test_hydra_config_matches_the_dataclass() -> None:
    """chimein/configs/training/grpo.yaml mirrors GRPORunConfig's defaults (but for the validation
    settings it spells out), and a command-line override reaches its field."""
    from dataclasses import fields

    from chimein.cli import compose

    c = compose("train_grpo", ["init=a", "out=b", "train.steps=3"])
    cfg, default = GRPORunConfig.from_mapping(c.train), GRPORunConfig()
    differ = {f.name for f in fields(GRPORunConfig) if getattr(cfg, f.name) != getattr(default, f.name)}
    assert differ == {"steps", "val"}, differ  # the yaml spells the validation settings out
    assert cfg.val["suite"] is None
