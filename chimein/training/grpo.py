"""RL refinement of the timing LM with TRL's ``GRPOTrainer``: one completion is one episode.

How an episode becomes a completion
-----------------------------------
TRL (1.16) calls ``rollout_func(prompts, trainer)`` with the batch's prompts, **already
repeated** ``num_generations`` (G) times back to back. Each prompt is the decimal key of an
episode (a row of the training dataset); consecutive runs of G equal prompts form a group that
plays the same scene. :class:`EpisodeRollout` renders and tokenises the scene (the env's scene
source: difficulty preset, sampler config, dataset directory or ``{"mixture": [...]}``;
:func:`~chimein.training.data.tokenize_scene`, the way the env streams it), then runs all
episodes of the batch through the timing LM's
:class:`~chimein.agents.lm.decoder.IncrementalDecoder` chunk by chunk: the chunk's unit tokens
are injected (``env_mask`` 0) and one action token is sampled from the decide head
(:func:`~chimein.agents.lm.decide.decide_logits`, ``env_mask`` 1); the episode ends with
``<eos>`` (``env_mask`` 0, so the episode is not counted as truncated). The prompt is ``<bos>``;
the completion is :func:`~chimein.agents.lm.tokenizer.interleave`'s token layout. The reward is
:func:`chimein.envs.scoring.score` of the sampled actions (the env's own reward function),
returned to TRL as an extra rollout field read by :func:`episode_reward`. The scene audio does
not depend on the actions (``echo`` is not simulated here), so this equals playing the env.

The one workaround (API gap)
----------------------------
Without vLLM, TRL ignores the returned ``logprobs`` and re-scores every completion token with a
softmax over the **whole vocabulary** (its fused LM head: ``lm_head.weight`` and
``lm_head.bias``), while the policy samples from the decide head (softmax over the three
action tokens plus the checkpoint's ``logit_bias``). To make the two agree exactly, training
gives the (bias-free) ``lm_head`` a bias vector: the ``logit_bias`` at the three action ids and
``-30`` everywhere else, so the full-vocabulary softmax *is* the decide head (the other tokens
keep ~1e-11 of the mass; their positions are env tokens, masked out of the loss anyway). The
bias is removed before a checkpoint is written; its three action entries are trainable and
saved as the checkpoint's ``inference.logit_bias``. This is tested (trainer log-probs equal
the rollout log-probs).

Other settings (REFERENCE.md): ``bf16=False`` and gradient checkpointing off (CPU), action
tokens are ordinary (non-special) tokens, rewards are computed from ids (not decoded text).

Examples
--------
>>> from chimein.training.grpo import GRPORunConfig, train_grpo              # doctest: +SKIP
>>> train_grpo("runs/sup/final", "runs/grpo", GRPORunConfig(steps=200))     # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from chimein.agents.lm.reference import checkpoint_path
from chimein.agents.lm.tokenizer import ACTION_IDS, BOS_ID, EOS_ID, AudioTokenizer, interleave
from chimein.config import to_plain
from chimein.errors import ConfigError, SpecError
from chimein.training.rl_common import RLRun, RLRunConfig, action_rates, scenes_at

__all__ = [
    "EpisodeRollout",
    "GRPORunConfig",
    "episode_reward",
    "restrict_to_actions",
    "sampled_reward",
    "step_advantage_trainer",
    "step_advantages",
    "train_grpo",
]

#: Logit offset of non-action tokens during training (see the module docstring).
OTHER_LOGIT = -30.0


@dataclass(frozen=True)
class GRPORunConfig(RLRunConfig):
    """GRPO settings (``chimein/configs/training/grpo.yaml``); the fields shared with PPO are
    :class:`~chimein.training.rl_common.RLRunConfig`'s."""

    algo: ClassVar[str] = "grpo"
    positive_ints: ClassVar[tuple[str, ...]] = (
        "steps", "episodes_per_step", "num_generations", "micro_batch", "threads", "ckpt_every",
        "log_every")

    steps: int = 200
    """Optimizer steps."""
    episodes_per_step: int = 16
    """Episodes (completions) per optimizer step."""
    num_generations: int = 8
    """Episodes per scene: the group whose mean reward is the baseline."""
    micro_batch: int = 4
    """Episodes per forward/backward pass (memory: long episodes are big)."""
    max_duration_s: float | None = 20.0
    """Crop episodes to this many seconds (cues after the crop are not scored); None: whole
    scenes."""
    lr: float = 2e-5
    """Learning rate (constant)."""
    beta: float = 0.0
    """TRL's KL penalty towards the initial model (> 0 loads a reference model)."""
    epsilon: float = 0.2
    """Clipping range of the policy ratio."""
    loss_type: str = "dapo"
    """TRL's aggregation of the token losses (``dapo``, ``grpo``, ``dr_grpo``, ``bnpo``, ...)."""
    scale_rewards: str = "none"
    """Divide advantages by the standard deviation of the episode rewards of the ``group``, the
    ``batch`` or not at all (``none``, Dr. GRPO; docs/rl.md says why)."""
    advantage: str = "episode"
    """``episode``: GRPO's one advantage per episode; ``reward_to_go``: one per decision
    (:func:`step_advantages`)."""
    gamma: float = 1.0
    """Discount per decision of the reward-to-go (``advantage="reward_to_go"``)."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm."""
    train: str = "all"
    """``all`` parameters or the decide ``head`` only (final norm gain and action bias)."""
    reward: Mapping[str, Any] = field(default_factory=dict)
    """:class:`~chimein.envs.scoring.RewardConfig` fields: the env's reward."""
    ckpt_every: int = 20
    """Steps between resumable trainer states."""
    log_every: int = 1
    """Steps between logged scalars."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_generations < 2 or self.episodes_per_step % self.num_generations:
            raise ConfigError(
                f"grpo: episodes_per_step ({self.episodes_per_step}) must be a multiple of "
                f"num_generations ({self.num_generations}, at least 2: the group baseline)"
            )
        if self.episodes_per_step % self.micro_batch:
            raise ConfigError(
                f"grpo: episodes_per_step ({self.episodes_per_step}) must be a multiple of "
                f"micro_batch ({self.micro_batch})"
            )
        if self.max_duration_s is not None and not self.max_duration_s > 0:
            raise ConfigError(f"grpo: field 'max_duration_s': > 0 or null, got {self.max_duration_s}")
        if self.train not in ("head", "all"):
            raise ConfigError(f"grpo: field 'train': 'head' or 'all', got {self.train!r}")
        if self.advantage not in ("episode", "reward_to_go"):
            raise ConfigError(f"grpo: field 'advantage': 'episode' or 'reward_to_go', got {self.advantage!r}")
        if self.scale_rewards not in ("group", "batch", "none"):
            raise ConfigError(
                f"grpo: field 'scale_rewards': 'group', 'batch' or 'none', got {self.scale_rewards!r}")
        if isinstance(self.gamma, bool) or not 0 < float(self.gamma) <= 1:
            raise ConfigError(f"grpo: field 'gamma': a number in (0, 1], got {self.gamma!r}")
        if isinstance(self.temperature, bool) or not 0 < float(self.temperature) <= 2:
            raise ConfigError(f"grpo: field 'temperature': a number in (0, 2], got {self.temperature!r}")
        object.__setattr__(self, "reward", dict(to_plain(self.reward) or {}))
        from chimein.envs.scoring import RewardConfig

        RewardConfig.from_mapping(self.reward)  # fail early on bad fields


# ============================================================================================
# The decide head as the whole vocabulary
# ============================================================================================
def restrict_to_actions(lm: Any, logit_bias: Sequence[float]) -> None:
    """Give ``lm.lm_head`` the bias that makes its full softmax the decide head (in place)."""
    head = lm.lm_head
    w = head.weight
    b = torch.full((w.shape[0],), OTHER_LOGIT, dtype=w.dtype, device=w.device)
    b[list(ACTION_IDS)] = torch.tensor([float(x) for x in logit_bias], dtype=w.dtype)
    head.bias = torch.nn.Parameter(b)


def action_bias(lm: Any) -> list[float]:
    """The current decide-head bias (the action entries of the training-time ``lm_head`` bias)."""
    return lm.lm_head.bias.detach()[list(ACTION_IDS)].cpu().tolist()


@contextlib.contextmanager
def unrestricted(lm: Any) -> Iterator[None]:
    """Temporarily remove the training-time ``lm_head`` bias (to save a plain checkpoint)."""
    bias = lm.lm_head.bias
    lm.lm_head.bias = None
    try:
        yield
    finally:
        lm.lm_head.bias = bias


# ============================================================================================
# Rollouts
# ============================================================================================
class EpisodeRollout:
    """``rollout_func`` for TRL: plays one episode per prompt (see the module docstring).

    Parameters
    ----------
    timing_lm
        The :class:`~chimein.agents.lm.model.TimingLM` whose ``.lm`` the trainer trains.
    ref_lm
        A frozen copy of the initial model (KL-to-initial logging); None to skip.
    init
        The initial checkpoint (codebook, chunk).
    cfg
        The run config (scenes, curriculum, seed).
    """

    def __init__(self, timing_lm: Any, ref_lm: Any, init: Any, cfg: GRPORunConfig) -> None:
        self.model = timing_lm
        self.ref = ref_lm
        self.init = init
        self.cfg = cfg
        self.tok = AudioTokenizer(init.codebook)
        self.upc = init.units_per_chunk
        self._sources: dict[str, Any] = {}
        self.stats: dict[str, Any] = {}
        self.seconds = {"scene": 0.0, "model": 0.0}

    def _source(self, scenes: Any) -> Any:
        from chimein.envs.sources import make_source

        key = json.dumps(scenes, sort_keys=True, default=str)
        if key not in self._sources:
            self._sources[key] = make_source(scenes, rir_cache_dir=self.cfg.rir_cache_dir)
        return self._sources[key]

    def episode(self, key: int, step: int) -> Any:
        """The tokenised scene of episode ``key`` under the scene distribution of ``step``."""
        from chimein.training.data import Episode, tokenize_scene

        src = self._source(scenes_at(self.cfg.scenes, self.cfg.curriculum, step))
        rng = np.random.default_rng(np.random.SeedSequence([self.cfg.seed, 7, int(key)]))
        scene = src.load(src.draw_key(rng, int(key)))
        ep = tokenize_scene(scene, self.tok, self.init.chunk_s)
        if self.cfg.max_duration_s is not None:
            n = min(ep.n_chunks, max(1, int(self.cfg.max_duration_s / self.init.chunk_s + 1e-9)))
            ep = Episode(ep.spec, ep.units[: n * self.upc], n)
        return ep

    @torch.no_grad()
    def play(self, units: Sequence[np.ndarray], seeds: Sequence[int]) -> dict[str, Any]:
        """Sample actions for episodes with unit ids ``units`` (one generator per episode).

        Returns ``actions`` (list of int arrays), ``logprobs`` (same) and ``kl`` (mean
        KL(pi || pi_init) over decisions, nan without a reference model).
        """
        from chimein.agents.lm.decide import decide_kl, decide_logits
        from chimein.agents.lm.decoder import IncrementalDecoder, action_tokens, step_tokens

        n = len(units)
        lengths = [len(u) // self.upc for u in units]
        T = max(lengths)
        U = np.zeros((n, T, self.upc), np.int64)
        for i, u in enumerate(units):
            U[i, : lengths[i]] = u.reshape(-1, self.upc)
        lm = self.model
        was = lm.lm.training  # the trainer switches the HF model, not the TimingLM wrapper
        lm.eval()
        hb = lm.lm.lm_head.bias
        bias = (hb.detach()[list(ACTION_IDS)].float().cpu() if hb is not None else torch.tensor(
            self.init.meta.get("inference", {}).get("logit_bias", [0.0] * 3), dtype=torch.float32))
        dev = next(lm.parameters()).device
        dec = IncrementalDecoder(lm, n, max_step_tokens=self.upc + 1)
        ref = None
        if self.ref is not None:
            ref = IncrementalDecoder(self.ref.to(dev), n, max_step_tokens=self.upc + 1)
            ref_bias = torch.tensor(self.init.meta.get("inference", {}).get("logit_bias", [0.0] * 3))
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
        prev = torch.full((n,), BOS_ID, dtype=torch.long)
        acts = np.zeros((n, T), np.int64)
        lps = np.zeros((n, T), np.float32)
        kls = []
        for k in range(T):
            toks = step_tokens(prev, U[:, k]).to(dev)
            # TRL re-scores completions with (full-vocabulary logits) / temperature: sample the same
            t = float(self.cfg.temperature)
            logp = torch.log_softmax(decide_logits(dec.step(toks).action_logits.float().cpu(),
                                                   bias, t), -1)
            if ref is not None:
                lq = torch.log_softmax(decide_logits(ref.step(toks).action_logits.float().cpu(),
                                                     ref_bias, t), -1)
                kl = decide_kl(logp, lq)
                live = torch.tensor([k < L for L in lengths])
                kls.append(kl[live])
            a = torch.stack([torch.multinomial(logp[i].exp(), 1, generator=gens[i])[0]
                             for i in range(n)])
            acts[:, k] = a.numpy()
            lps[:, k] = logp.gather(1, a[:, None])[:, 0].numpy()
            prev = action_tokens(acts[:, k])
        lm.train(was)
        kl_mean = float(torch.cat(kls).mean()) if kls else float("nan")
        return {"actions": [acts[i, : lengths[i]] for i in range(n)],
                "logprobs": [lps[i, : lengths[i]] for i in range(n)], "kl": kl_mean}

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, Any]:
        from chimein.envs.scoring import ActionLog, RewardConfig, score

        rcfg = RewardConfig.from_mapping(self.cfg.reward)
        step = int(trainer.state.global_step)
        keys = [int(str(p).strip()) for p in prompts]
        t0 = time.perf_counter()
        eps: dict[int, Any] = {}
        for k in keys:
            if k not in eps:
                eps[k] = self.episode(k, step)
        t1 = time.perf_counter()
        seeds = [int(np.random.SeedSequence([self.cfg.seed, 11, step, i]).generate_state(1)[0])
                 for i in range(len(keys))]
        out = self.play([eps[k].units for k in keys], seeds)
        t2 = time.perf_counter()
        prompt_ids, completion_ids, logprobs, env_mask, rewards = [], [], [], [], []
        self.step_rewards: list[np.ndarray] = []  # per decision, for advantage="reward_to_go"
        for i, k in enumerate(keys):
            ep, a, lp = eps[k], out["actions"][i], out["logprobs"][i]
            n = ep.n_chunks
            ids = interleave(ep.units, a, self.upc, bos=False)  # (units of chunk k, action k)*
            mask = np.zeros((n, self.upc + 1), np.int64)
            mask[:, self.upc] = 1
            lpf = np.zeros((n, self.upc + 1), np.float32)
            lpf[:, self.upc] = lp
            prompt_ids.append([BOS_ID])
            completion_ids.append([*ids.tolist(), EOS_ID])
            env_mask.append([*mask.reshape(-1).tolist(), 0])
            logprobs.append([*lpf.reshape(-1).tolist(), 0.0])
            # cues after a cropped episode's end are unreached (not scored), as in the env
            outcome = score(ep.annotations, ActionLog.from_actions(a, chunk_s=self.init.chunk_s),
                            rcfg, duration_s=n * self.init.chunk_s)
            rewards.append(float(outcome.reward))
            self.step_rewards.append(np.asarray(outcome.step_rewards, np.float64)[:n])
        n_dec = sum(len(a) for a in out["actions"])
        self.seconds["scene"] += t1 - t0
        self.seconds["model"] += t2 - t1
        self.stats = {
            "rollout/episode_reward": float(np.mean(rewards)),
            "policy/kl_to_init": out["kl"],
            "time/episodes_per_s": len(keys) / max(1e-9, t2 - t0),
            "time/decisions_per_s": n_dec / max(1e-9, t2 - t0),
            "time/scene_s": t1 - t0,
            "time/rollout_model_s": t2 - t1,
            **action_rates(np.concatenate(out["actions"])),
        }
        return {"prompt_ids": prompt_ids, "completion_ids": completion_ids, "logprobs": logprobs,
                "env_mask": env_mask, "episode_rewards": rewards}


def sampled_reward(
    ckpt: str | Path,
    scenes: Any,
    n_scenes: int = 6,
    samples: int = 8,
    max_chunks: int | None = None,
    reward: Mapping[str, Any] | None = None,
    seed: int = 99,
) -> float:
    """Mean episode reward of a checkpoint's *sampled* policy (what RL maximises) on
    ``n_scenes`` fixed scenes x ``samples`` action samples (deterministic).

    Examples
    --------
    >>> sampled_reward("runs/ppo/final", "easy", n_scenes=20)  # doctest: +SKIP
    """
    from chimein.agents.lm.checkpoint import load_checkpoint
    from chimein.envs.scoring import ActionLog, RewardConfig, score

    ck = load_checkpoint(ckpt)
    ro = EpisodeRollout(ck.model, None, ck, GRPORunConfig(scenes=scenes, seed=seed))
    eps = [ro.episode(k, 0) for k in range(n_scenes)]
    cut = None if max_chunks is None else int(max_chunks) * ck.units_per_chunk
    units = [e.units[:cut] for e in eps for _ in range(samples)]
    out = ro.play(units, list(range(len(units))))
    rcfg = RewardConfig.from_mapping(dict(reward or {}))
    dur = None if max_chunks is None else max_chunks * ck.chunk_s
    r = [score(eps[i // samples].annotations, ActionLog.from_actions(a, chunk_s=ck.chunk_s), rcfg,
               duration_s=dur).reward for i, a in enumerate(out["actions"])]
    return float(np.mean(r))


def episode_reward(prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float]:
    """TRL reward function: the episode reward computed by the rollout with
    :func:`chimein.envs.scoring.score` (passed through as the ``episode_rewards`` field)."""
    return [float(r) for r in kwargs["episode_rewards"]]


def step_advantages(
    step_rewards: Sequence[np.ndarray], num_generations: int, gamma: float = 1.0,
    scale: str = "group",
) -> list[np.ndarray]:
    """Per-decision GRPO advantages: each decision's reward-to-go minus its group's mean
    reward-to-go at the same chunk (``advantage="reward_to_go"``).

    GRPO's episode advantage gives every decision of an episode the same credit, so a
    decision at second 3 is blamed for a false alarm at second 15. The env's reward is dense
    (each term at the step it is determined: a hit or false alarm at the action, a miss at the
    window's last chunk), and all episodes of a group hear the same audio chunk by chunk, so a
    time-indexed group baseline is available: for episode ``i`` of a group,
    ``G_i(t) = sum_{s >= t} gamma^(s-t) r_i(s)`` and ``A_i(t) = G_i(t) - mean_j G_j(t)``
    (the baseline does not depend on ``i``'s own action at ``t``; at ``t = 0`` with
    ``gamma = 1`` this is GRPO's episode advantage). ``scale`` divides by the standard
    deviation of the episode rewards ``G(0)`` within the group (``"group"``, TRL's default),
    over the batch (``"batch"``) or not at all (``"none"``), as TRL's ``scale_rewards``.

    Parameters
    ----------
    step_rewards
        One array of per-decision rewards per episode; consecutive runs of
        ``num_generations`` episodes are groups (same scene, so the same length).
    num_generations, gamma, scale
        Group size, discount per decision, scaling.

    Returns
    -------
    list of numpy.ndarray
        One advantage per decision, episode by episode.

    Examples
    --------
    >>> r = [np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, -0.5])]
    >>> [a.tolist() for a in step_advantages(r, 2, scale="none")]
    [[0.75, 0.75, 0.25], [-0.75, -0.75, -0.25]]
    """
    if len(step_rewards) % num_generations:
        raise ValueError(f"{len(step_rewards)} episodes are not groups of {num_generations}")
    returns = []
    for r in step_rewards:
        g = np.zeros(len(r), np.float64)
        acc = 0.0
        for t in range(len(r) - 1, -1, -1):
            acc = float(r[t]) + gamma * acc
            g[t] = acc
        returns.append(g)
    totals = np.array([g[0] if len(g) else 0.0 for g in returns])
    out: list[np.ndarray] = []
    for s in range(0, len(returns), num_generations):
        grp = returns[s: s + num_generations]
        if len({len(g) for g in grp}) != 1:
            raise ValueError("episodes of a group must have the same number of decisions")
        base = np.mean(np.stack(grp), 0)
        if scale == "group":
            div = float(np.std(totals[s: s + num_generations], ddof=1)) + 1e-4
        elif scale == "batch":
            div = float(np.std(totals, ddof=1)) + 1e-4
        else:
            div = 1.0
        out.extend((g - base) / div for g in grp)
    return out


def step_advantage_trainer(base: type) -> type:
    """A ``GRPOTrainer`` subclass whose advantages are per decision (:func:`step_advantages`).

    TRL's loss accepts advantages of shape (batch, completion length) from subclasses; this
    one replaces the episode advantages computed in ``_generate_and_score_completions`` with
    the rollout's per-decision ones placed at the action-token positions (every other
    completion token is an env token, masked out of the loss).
    """

    class StepAdvantageGRPOTrainer(base):  # type: ignore[misc,valid-type]
        chimein_rollout: EpisodeRollout | None = None

        def _generate_and_score_completions(self, inputs: Any) -> Any:
            out = super()._generate_and_score_completions(inputs)
            ro = self.chimein_rollout
            if ro is None or ro.cfg.advantage != "reward_to_go":
                return out
            if self.accelerator.num_processes != 1:
                raise SpecError("grpo: advantage=reward_to_go runs in a single process")
            adv = step_advantages(ro.step_rewards, ro.cfg.num_generations, ro.cfg.gamma,
                                  ro.cfg.scale_rewards)
            ep = out["advantages"]
            full = torch.zeros(out["completion_ids"].shape, dtype=ep.dtype, device=ep.device)
            if len(adv) != full.shape[0]:
                raise RuntimeError(f"{len(adv)} rollouts for {full.shape[0]} completions")
            for i, a in enumerate(adv):
                pos = np.arange(len(a)) * (ro.upc + 1) + ro.upc
                full[i, torch.from_numpy(pos)] = torch.from_numpy(a).to(ep.dtype).to(ep.device)
            out["advantages"] = full
            return out

    return StepAdvantageGRPOTrainer


# ============================================================================================
# Training
# ============================================================================================
def _trainer_callback(run: _Run) -> Any:
    from transformers import TrainerCallback

    class Cb(TrainerCallback):  # type: ignore[misc]
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            scal = {f"trl/{k}": v for k, v in (logs or {}).items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool)}
            run.tb.scalars(scal, state.global_step)

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            run.on_step(state.global_step)
            if run.out_of_time():
                control.should_training_stop = True
                control.should_save = True

    return Cb()


class _Run(RLRun):
    """State of one GRPO run (used by :func:`train_grpo` and its trainer callback)."""

    cfg: GRPORunConfig

    def setup(self) -> None:
        import copy

        self.model = self.init.model
        self.ref = copy.deepcopy(self.model).eval().requires_grad_(False)
        restrict_to_actions(self.model.lm, self.init.meta.get("inference", {}).get(
            "logit_bias", [0.0, 0.0, 0.0]))
        if self.cfg.train == "head":
            for name, p in self.model.lm.named_parameters():
                p.requires_grad_(name in ("model.norm.weight", "lm_head.bias"))
        self.rollout = EpisodeRollout(self.model, self.ref, self.init, self.cfg)
        self.t_last = time.perf_counter()

    def save_ckpt(self, dest: Path, step: int) -> Path:
        bias = action_bias(self.model.lm)
        with unrestricted(self.model.lm):
            return self.save_checkpoint(dest, self.model, step, bias)

    def on_step(self, step: int) -> None:
        now = time.perf_counter()
        scal = {**self.rollout.stats, "time/step_s": now - self.t_last}
        self.t_last = now
        if self.val.due(step) or (step == self.cfg.steps and self.val.enabled):
            ck = self.save_ckpt(self.out / "checkpoints" / f"step-{step:06d}", step)
            scal.update(self.val(step, ck))
        if step % self.cfg.log_every == 0:
            self.tb.scalars(scal, step)
            self.log(f"grpo step {step}/{self.cfg.steps}: reward "
                     f"{scal.get('rollout/episode_reward', float('nan')):.3f} kl "
                     f"{scal.get('policy/kl_to_init', float('nan')):.4f} "
                     f"{scal.get('time/episodes_per_s', float('nan')):.1f} episodes/s")
        if self.callback is not None:
            self.callback(step, scal)


def train_grpo(
    init: str | Path,
    out: str | Path,
    cfg: GRPORunConfig | Mapping[str, Any] | None = None,
    *,
    log: Callable[[str], None] = print,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> Path:
    """Refine checkpoint ``init`` with TRL GRPO; write ``OUT/final`` (and ``OUT/best``).

    Parameters
    ----------
    init
        Supervised (or any timing-LM) checkpoint directory.
    out
        Run directory: ``final``, ``best``, ``checkpoints/``, ``trainer/`` (TRL's resumable
        state), ``tb/``. Rerunning with the same ``out`` resumes from the last trainer state.
    cfg
        :class:`GRPORunConfig` or a mapping of its fields.
    log, on_step
        Progress messages; ``on_step(step, scalars)`` after every optimizer step.

    Returns
    -------
    Path
        ``OUT/final``, the refined checkpoint (its decide-head bias re-picked when
        ``calibrate``).

    Examples
    --------
    >>> train_grpo("runs/sup/final", "runs/grpo", {"steps": 50})  # doctest: +SKIP
    """
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from datasets import Dataset
    from trl import GRPOTrainer

    cfg = cfg if isinstance(cfg, GRPORunConfig) else GRPORunConfig.from_mapping(cfg)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    init_path = str(Path(checkpoint_path(init)).resolve())  # a directory or a shipped name
    cfg_file = out / "grpo_run.json"
    ident = {"config": cfg.to_dict(), "init": init_path}
    if cfg_file.is_file() and json.loads(cfg_file.read_text()) != ident:
        raise SpecError(f"{out}: holds a GRPO run with another configuration or initial checkpoint; "
                        "use another out= or delete it")
    cfg_file.write_text(json.dumps(ident, indent=1))
    run = _Run(init_path, out, cfg, log, on_step)
    groups = cfg.steps * cfg.episodes_per_step // cfg.num_generations + 1
    data = Dataset.from_dict({"prompt": [str(i) for i in range(groups)]})
    args = _grpo_config(cfg, out)
    trainer = step_advantage_trainer(GRPOTrainer)(
        model=run.model.lm,
        reward_funcs=[episode_reward],
        args=args,
        train_dataset=data,
        processing_class=run.init.tokenizer(),
        rollout_func=run.rollout,
        callbacks=[_trainer_callback(run)],
    )
    trainer.chimein_rollout = run.rollout
    from transformers.trainer_callback import PrinterCallback
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the trainer's per-save "Writing model shards" bars
    import warnings

    # transformers 5 deprecation inside TRL's trainer, once per save: not actionable here
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

    trainer.remove_callback(PrinterCallback)  # metrics go to TensorBoard and `log`
    resume = any((out / "trainer").glob("checkpoint-*"))
    if resume:
        log(f"grpo: resuming from {out / 'trainer'}")
    trainer.train(resume_from_checkpoint=True if resume else None)
    run.tb.close()
    step = int(trainer.state.global_step)
    if run.stopped:
        log(f"grpo: time budget reached at step {step}; state saved (rerun to resume)")
    return run.finish(run.save_ckpt(out / "final", step))


def _grpo_config(cfg: GRPORunConfig, out: Path) -> Any:
    """TRL's ``GRPOConfig`` of a run: one rollout of ``episodes_per_step`` episodes per optimizer
    step, trained in micro-batches; TRL's resumable state in ``OUT/trainer``."""
    from trl import GRPOConfig

    use_cpu = str(cfg.device) == "cpu"
    return GRPOConfig(
        output_dir=str(out / "trainer"),
        # one rollout of episodes_per_step episodes per optimizer step, trained in micro-batches
        per_device_train_batch_size=cfg.micro_batch,
        gradient_accumulation_steps=cfg.episodes_per_step // cfg.micro_batch,
        num_generations=cfg.num_generations,
        max_steps=cfg.steps,
        learning_rate=cfg.lr,
        lr_scheduler_type="constant",
        beta=cfg.beta,
        epsilon=cfg.epsilon,
        loss_type=cfg.loss_type,
        scale_rewards=cfg.scale_rewards,
        max_grad_norm=cfg.max_grad_norm,
        temperature=cfg.temperature,
        bf16=False,
        activation_checkpointing=False,
        use_cpu=use_cpu,
        seed=cfg.seed,
        logging_steps=cfg.log_every,
        save_strategy="steps",
        save_steps=cfg.ckpt_every,
        save_total_limit=1,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        shuffle_dataset=False,
    )
