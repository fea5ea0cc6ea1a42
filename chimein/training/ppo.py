"""RL refinement of the timing LM's decide head with stable-baselines3 PPO.

Design
------
- **Observations** (:class:`TokenContextVecEnv`): an SB3 ``VecEnvWrapper`` over the native
  :class:`~chimein.envs.vector.ResponseTimingVectorEnv` (via :func:`chimein.envs.sb3.to_sb3_vecenv`)
  that tokenises each chunk's reference-microphone audio into codebook units (the checkpoint's
  causal tokenizer, one :class:`~chimein.agents.lm.tokenizer.UnitStream` per sub-env) and keeps a
  rolling token context of the last ``context_chunks`` chunks, laid out exactly as
  :class:`~chimein.agents.lm.policy.LMPolicy` feeds its decoder: per chunk ``[previous action
  token (<bos> at the episode start), unit tokens...]``, left-padded with ``<pad>`` (masked
  out). The observation is that int64 vector of ``context_chunks * (units_per_chunk + 1)``
  tokens. Within the first ``context_chunks`` chunks of an episode the context is the whole
  stream, so the policy's action distribution equals ``LMPolicy``'s (tested); later chunks see
  a crop without ``<bos>`` (as in supervised training's crops).
- **Policy** (:class:`LMActorCriticPolicy`): an SB3 ``ActorCriticPolicy`` whose actor logits
  are the LM's decide head (action-token logits at the last position, plus a trainable
  per-action bias initialised from the checkpoint's ``logit_bias``) and whose critic is the
  checkpoint's value head (or a fresh one). Every step runs a full forward over the context:
  cost grows linearly with ``context_chunks`` (see docs/rl.md for measured numbers).
- ``train="head"`` trains the decide head only -- the final RMSNorm gain (a per-dimension
  rescaling of the hidden state read by the action rows of the tied output matrix), the
  action bias and the value head; ``train="all"`` fine-tunes everything. (Training the action
  rows of ``lm_head`` alone is impossible without also changing the tied input embeddings of
  the action tokens, which would make the saved model differ from the trained policy.)
- **KL penalty** towards the initial (supervised) decide head: ``kl_coef * KL(pi || pi_0)``
  per sample. SB3's PPO loss has no KL term; it is added exactly through the one term that is
  linear in what the policy returns, the entropy bonus: ``evaluate_actions`` returns
  ``H - (kl_coef / ent_coef) * KL`` as the entropy, so the loss gains ``+kl_coef * KL``
  (hence ``kl_coef > 0`` requires ``ent_coef > 0``). The true entropy and KL are logged.
- **Episodes**: each PPO update collects ``n_steps`` steps from fresh episodes (the env is
  reset with seed ``seed + update * num_envs`` at every rollout start), so an update is a pure
  function of the weights, the optimizer and the RNG state: resuming after an interruption
  gives the same model as an uninterrupted run (tested). Choose ``n_steps`` near the episode
  length (``scene duration / chunk``). A scene's end is a true end (nothing more can be
  earned), so episodes ending there are not bootstrapped.

Examples
--------
>>> from chimein.training.ppo import PPOConfig, train_ppo                 # doctest: +SKIP
>>> train_ppo("runs/sup/final", "runs/ppo", PPOConfig(total_steps=20_000))  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.distributions import CategoricalDistribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import VecEnvWrapper

from chimein.agents.lm.decide import decide_kl, decide_logits
from chimein.agents.lm.decoder import action_token_ids, step_token_ids
from chimein.agents.lm.reference import checkpoint_path
from chimein.agents.lm.tokenizer import BOS_ID, PAD_ID, AudioTokenizer
from chimein.config import to_plain
from chimein.errors import SpecError
from chimein.training.rl_common import RLRun, RLRunConfig, action_rates, scenes_at

__all__ = ["LMActorCriticPolicy", "PPOConfig", "TokenContextVecEnv", "make_ppo_env", "train_ppo"]


# ============================================================================================
# Observations
# ============================================================================================
class TokenContextVecEnv(VecEnvWrapper):
    """Audio chunks -> rolling token contexts (see the module docstring).

    Parameters
    ----------
    venv
        An SB3 ``VecEnv`` from :func:`chimein.envs.sb3.to_sb3_vecenv`.
    tokenizer
        The checkpoint's :class:`~chimein.agents.lm.tokenizer.AudioTokenizer`.
    context_chunks
        Chunks of context per observation.
    units_per_chunk
        Unit tokens per chunk (the checkpoint's).
    vocab_size
        Vocabulary size (the observation space's upper bound).
    """

    def __init__(
        self,
        venv: Any,
        tokenizer: AudioTokenizer,
        context_chunks: int,
        units_per_chunk: int,
        vocab_size: int,
    ) -> None:
        if int(context_chunks) < 1:
            raise SpecError(f"ppo: field 'context_chunks': at least 1, got {context_chunks}")
        self.tok = tokenizer
        self.upc = int(units_per_chunk)
        self.length = int(context_chunks) * (self.upc + 1)
        space = gym.spaces.Box(0, vocab_size - 1, (self.length,), np.int64)
        super().__init__(venv, observation_space=space)
        n = self.num_envs
        self.streams = [tokenizer.stream(1) for _ in range(n)]
        self.ctx = np.full((n, self.length), PAD_ID, np.int64)
        self._actions = np.zeros(n, np.int64)
        self.env_seconds = 0.0
        self.tok_seconds = 0.0
        #: the raw observation of the last reset/step (audio of every sub-env)
        self.last_raw: dict[str, np.ndarray] = {}

    def _units(self, i: int, audio: np.ndarray) -> np.ndarray:
        """Codebook ids ``(units,)`` of sub-env ``i``'s next chunk of reference audio."""
        return self.streams[i].push(audio[None, :, 0]).reshape(-1)

    def _append(self, ctx: np.ndarray, first: int, units: np.ndarray) -> np.ndarray:
        """``ctx`` shifted left by one chunk, ending with the step's tokens (``first``, then
        ``units``' tokens) as the decoder lays them out."""
        return np.concatenate([ctx[self.upc + 1 :], step_token_ids(first, units)])

    def _start(self, i: int, audio: np.ndarray) -> None:
        self.streams[i].reset()
        self.ctx[i] = PAD_ID
        self.ctx[i] = self._append(self.ctx[i], BOS_ID, self._units(i, audio))

    def reset(self) -> np.ndarray:
        t0 = time.perf_counter()
        obs = self.last_raw = self.venv.reset()
        t1 = time.perf_counter()
        for i in range(self.num_envs):
            self._start(i, obs["audio"][i])
        self.env_seconds += t1 - t0
        self.tok_seconds += time.perf_counter() - t1
        return self.ctx.copy()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, np.int64).reshape(self.num_envs)
        self.venv.step_async(actions)

    def step_wait(self) -> Any:
        t0 = time.perf_counter()
        obs, rewards, dones, infos = self.venv.step_wait()
        self.last_raw = obs
        t1 = time.perf_counter()
        act_tok = action_token_ids(self._actions)
        for i in range(self.num_envs):
            if dones[i]:
                term = infos[i].get("terminal_observation")
                if term is not None:
                    u = self._units(i, term["audio"])
                    infos[i]["terminal_observation"] = self._append(self.ctx[i], act_tok[i], u)
                # the scene is over: nothing more can be earned, so do not bootstrap
                infos[i]["TimeLimit.truncated"] = False
                self._start(i, obs["audio"][i])
            else:
                self.ctx[i] = self._append(self.ctx[i], act_tok[i], self._units(i, obs["audio"][i]))
        self.env_seconds += t1 - t0
        self.tok_seconds += time.perf_counter() - t1
        return self.ctx.copy(), rewards, dones, infos

    def set_scenes(self, scenes: Any, rir_cache_dir: str | None = None) -> None:
        """Replace the scene distribution of the underlying native vector env (curriculum);
        takes effect at the next reset."""
        from chimein.envs.sources import make_source

        self.venv.venv.set_source(make_source(scenes, rir_cache_dir=rir_cache_dir))


def make_ppo_env(
    ck: Any,
    num_envs: int,
    scenes: Any,
    context_chunks: int,
    env: Mapping[str, Any] | None = None,
) -> TokenContextVecEnv:
    """The PPO training env for checkpoint ``ck``: native vector env -> SB3 adapter -> token
    contexts. The env's chunk is the checkpoint's decision chunk."""
    from chimein.envs.sb3 import to_sb3_vecenv
    from chimein.envs.vector import ResponseTimingVectorEnv

    opts = dict(to_plain(env) or {})
    for bad in ("chunk_ms", "obs_mode", "sample_rate", "num_envs"):
        if bad in opts:
            raise SpecError(f"ppo: env option {bad!r} is set by the checkpoint; remove it")
    raw = ResponseTimingVectorEnv(
        int(num_envs),
        to_plain(scenes),
        chunk_ms=ck.chunk_s * 1000.0,
        sample_rate=ck.codebook.features.sample_rate,
        **opts,
    )
    return TokenContextVecEnv(
        to_sb3_vecenv(raw),
        AudioTokenizer(ck.codebook),
        context_chunks,
        ck.units_per_chunk,
        ck.model.vocab_size,
    )


# ============================================================================================
# Policy
# ============================================================================================
class LMActorCriticPolicy(ActorCriticPolicy):
    """SB3 actor-critic over the timing LM (see the module docstring).

    Parameters
    ----------
    observation_space, action_space, lr_schedule
        As SB3 passes them.
    checkpoint
        Initial checkpoint directory.
    train
        ``"head"`` (final norm gain + action bias + value head) or ``"all"``.
    fresh_value_head
        Start from a fresh (zero-output) value head instead of the checkpoint's.
    kl_coef, ent_coef
        KL penalty coefficient and PPO's entropy coefficient (see the module docstring).
    optimizer_class, optimizer_kwargs
        Optimizer of the trainable parameters (Adam by default).
    """

    def __init__(
        self,
        observation_space: gym.spaces.Space,
        action_space: gym.spaces.Space,
        lr_schedule: Callable[[float], float],
        checkpoint: str = "",
        train: str = "head",
        fresh_value_head: bool = False,
        kl_coef: float = 0.0,
        ent_coef: float = 0.0,
        temperature: float = 1.0,
        optimizer_class: type[torch.optim.Optimizer] = torch.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        if train not in ("head", "all"):
            raise SpecError(f"ppo: field 'train': 'head' or 'all', got {train!r}")
        if kl_coef < 0 or (kl_coef > 0 and ent_coef <= 0):
            raise SpecError(
                f"ppo: field 'kl_coef' ({kl_coef}) needs ent_coef > 0 (the KL term is added "
                "through the entropy bonus); set ent_coef, e.g. 0.001"
            )
        self._ckpt_path = str(checkpoint)
        self._train_mode = train
        self._fresh_value = bool(fresh_value_head)
        self._kl_coef = float(kl_coef)
        if isinstance(temperature, bool) or not 0 < float(temperature) <= 2:
            raise SpecError(f"ppo: field 'temperature': a number in (0, 2], got {temperature!r}")
        self._temperature = float(temperature)
        self._ent_coef = float(ent_coef)
        self.stats: dict[str, list[float]] = {"kl": [], "entropy": []}
        self.forward_seconds = 0.0
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=[],
            ortho_init=False,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        d = super()._get_constructor_parameters()
        d.update(checkpoint=self._ckpt_path, train=self._train_mode,
                 fresh_value_head=self._fresh_value, kl_coef=self._kl_coef,
                 ent_coef=self._ent_coef, temperature=self._temperature)
        return d

    def _build(self, lr_schedule: Callable[[float], float]) -> None:
        from chimein.agents.lm.checkpoint import load_checkpoint
        from chimein.agents.lm.model import ValueHead

        ck = load_checkpoint(self._ckpt_path, device="cpu")
        self.init_ckpt = ck
        self.lm = ck.model.train()
        if self._fresh_value:
            self.lm.value_head = ValueHead(ck.model.cfg.hidden_size, ck.model.cfg.value_hidden)
        bias = ck.meta.get("inference", {}).get("logit_bias", [0.0, 0.0, 0.0])
        self.action_bias = torch.nn.Parameter(torch.tensor(bias, dtype=torch.float32))
        self.action_dist = CategoricalDistribution(int(self.action_space.n))
        # the initial decide head, for the KL penalty and its logging
        self.ref_bias = torch.tensor(bias, dtype=torch.float32)
        self.ref_lm: Any = None
        self._norm_in: torch.Tensor | None = None
        if self._train_mode == "head":
            for p in self.lm.lm.parameters():
                p.requires_grad_(False)
            self.lm.lm.model.norm.weight.requires_grad_(True)
            self.ref_norm = copy.deepcopy(self.lm.lm.model.norm).requires_grad_(False)
            self.lm.lm.model.norm.register_forward_pre_hook(self._keep_norm_input)
        else:
            self.ref_lm = [copy.deepcopy(self.lm).eval().requires_grad_(False)]  # not a submodule
        params = [p for p in self.parameters() if p.requires_grad]
        self.optimizer = self.optimizer_class(params, lr=lr_schedule(1), **self.optimizer_kwargs)

    def _keep_norm_input(self, _m: Any, args: tuple[torch.Tensor, ...]) -> None:
        self._norm_in = args[0]

    # ---------------------------------------------------------------- heads
    def _heads(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(logits, values, reference logits)`` at the last position of each context."""
        t0 = time.perf_counter()
        ids = obs.long()
        mask = (ids != PAD_ID).long()
        h = self.lm.hidden(ids, mask)[:, -1]
        # the decide rule's logits at the sampling temperature (< 1: explore near the greedy
        # policy that is deployed; argmax and the saved logit bias do not depend on it)
        t = self._temperature
        logits = decide_logits(self.lm.action_head(h), self.action_bias, t)
        values = self.lm.value_head(h)
        with torch.no_grad():
            if self.ref_lm is None:
                assert self._norm_in is not None
                h0 = self.ref_norm(self._norm_in[:, -1])
                w = self.lm.lm.lm_head.weight[self.lm.action_ids]  # frozen in "head" mode
                ref = decide_logits(h0 @ w.T, self.ref_bias.to(h0.device), t)
            else:
                ref_lm = self.ref_lm[0].to(ids.device)
                ref = decide_logits(ref_lm.action_head(ref_lm.hidden(ids, mask)[:, -1]),
                                    self.ref_bias.to(ids.device), t)
        self._norm_in = None
        self.forward_seconds += time.perf_counter() - t0
        return logits, values, ref

    @staticmethod
    def _kl(logits: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return decide_kl(torch.log_softmax(logits, -1), torch.log_softmax(ref, -1))

    def forward(
        self, obs: torch.Tensor, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, values, ref = self._heads(obs)
        dist = self.action_dist.proba_distribution(action_logits=logits)
        actions = dist.get_actions(deterministic=deterministic)
        self.stats["kl"].append(float(self._kl(logits, ref).mean()))
        return actions, values[:, None], dist.log_prob(actions)

    def evaluate_actions(
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, values, ref = self._heads(obs)
        dist = self.action_dist.proba_distribution(action_logits=logits)
        entropy = dist.entropy()
        self.stats["entropy"].append(float(entropy.detach().mean()))
        if self._kl_coef > 0:
            entropy = entropy - (self._kl_coef / self._ent_coef) * self._kl(logits, ref)
        return values[:, None], dist.log_prob(actions), entropy

    def get_distribution(self, obs: torch.Tensor) -> Any:
        logits, _, _ = self._heads(obs)
        return self.action_dist.proba_distribution(action_logits=logits)

    def predict_values(self, obs: torch.Tensor) -> torch.Tensor:
        return self._heads(obs)[1][:, None]

    def action_probs(self, obs: np.ndarray) -> np.ndarray:
        """Action probabilities ``(n, 3)`` for token contexts ``obs`` ``(n, L)``."""
        with torch.no_grad():
            logits = self._heads(torch.as_tensor(obs, device=self.device))[0]
        return torch.softmax(logits, -1).cpu().numpy()


# ============================================================================================
# Training
# ============================================================================================
@dataclass(frozen=True)
class PPOConfig(RLRunConfig):
    """PPO settings (``chimein/configs/training/ppo.yaml``); the fields shared with GRPO are
    :class:`~chimein.training.rl_common.RLRunConfig`'s. The optimisation fields are SB3
    ``PPO``'s arguments of the same names (``lr`` is its ``learning_rate``)."""

    algo: ClassVar[str] = "ppo"
    positive_ints: ClassVar[tuple[str, ...]] = (
        "total_steps", "num_envs", "n_steps", "batch_size", "n_epochs", "context_chunks",
        "threads", "ckpt_every")

    total_steps: int = 100_000
    """Env steps (decisions) in all sub-envs together."""
    num_envs: int = 8
    """Sub-envs of the native vector env."""
    n_steps: int = 160
    """Steps per sub-env per update; every update starts fresh episodes, so keep it near the
    episode length (duration / chunk: 160 = 12.8 s)."""
    batch_size: int = 320
    """Minibatch of a gradient step: each update's ``n_steps * num_envs`` steps are split into
    minibatches of this size."""
    n_epochs: int = 4
    """Passes over each update's rollout."""
    lr: float = 3e-4
    """Learning rate (constant)."""
    gamma: float = 0.99
    """Discount per decision (80 ms chunks: 0.99 weighs a reward 1 s away by 0.88)."""
    gae_lambda: float = 0.95
    """GAE's lambda: the trade-off between bias (0, one-step TD) and variance (1, Monte Carlo)
    of the advantages."""
    clip_range: float = 0.2
    """Clipping range of the probability ratio in PPO's surrogate loss."""
    ent_coef: float = 0.001
    """Entropy bonus coefficient (the KL penalty goes through the entropy term, so
    ``kl_coef > 0`` needs it > 0)."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 0.5
    """Gradient clipping norm."""
    target_kl: float | None = None
    """Stop an update's epochs early once the approximate KL to the rollout policy exceeds 1.5
    times this (None: never)."""
    kl_coef: float = 0.0
    """``KL(pi || supervised)`` penalty (needs ``ent_coef > 0``; see the module docstring)."""
    train: str = "head"
    """``head``: final norm gain, action bias and value head; ``all``: everything."""
    fresh_value_head: bool = False
    """Start the critic from zero instead of the checkpoint's value head."""
    context_chunks: int = 64
    """Chunks of token context per observation (64 x 80 ms = 5.1 s)."""
    scenes: Any = "easy"
    """Scene distribution (see :class:`~chimein.training.rl_common.RLRunConfig`)."""
    env: Mapping[str, Any] = field(default_factory=dict)
    """Env options (``speak_s``, ``reward``, ``max_duration_s``, ``prefetch``, ...)."""
    ckpt_every: int = 10
    """Updates between resumable states."""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "env", dict(to_plain(self.env) or {}))


class _Driver(BaseCallback):
    """Fresh seeded episodes per rollout, curriculum, logging, checkpoints, validation."""

    def __init__(self, run: _Run) -> None:
        super().__init__()
        self.r = run
        self.t_update = time.perf_counter()
        self.t_rollout = 0.0
        self.rollouts = 0  # rollouts started by this process

    def _on_rollout_start(self) -> None:
        r, m = self.r, self.model
        if self.rollouts:
            r.after_update(r.update + 1, time.perf_counter() - self.t_update)
        self.rollouts += 1
        u = r.update
        scenes = scenes_at(r.cfg.scenes, r.cfg.curriculum, u)
        if scenes != r.scenes:
            r.env.set_scenes(scenes, r.cfg.rir_cache_dir)
            r.scenes = scenes
        r.env.seed(r.cfg.seed + u * r.env.num_envs)
        m._last_obs = r.env.reset()
        m._last_episode_starts = np.ones(r.env.num_envs, bool)
        self.t_rollout = time.perf_counter()

    def _on_step(self) -> bool:
        r = self.r
        for info, a in zip(self.locals["infos"], self.locals["actions"], strict=True):
            r.actions.append(int(a))
            if "outcome" in info:
                r.ep_rewards.append(float(info["outcome"]["reward"]))
        return not r.out_of_time()

    def _on_rollout_end(self) -> None:
        self.r.rollout_seconds = time.perf_counter() - self.t_rollout
        self.t_update = time.perf_counter()


class _Run(RLRun):
    """State of one PPO run (used by :func:`train_ppo` and its callback)."""

    cfg: PPOConfig

    def setup(self) -> None:
        from stable_baselines3 import PPO

        cfg = self.cfg
        self.scenes = scenes_at(cfg.scenes, cfg.curriculum, 0)
        self.env = make_ppo_env(self.init, cfg.num_envs, self.scenes, cfg.context_chunks, cfg.env)
        self.model = PPO(
            LMActorCriticPolicy, self.env, learning_rate=cfg.lr, n_steps=cfg.n_steps,
            batch_size=cfg.batch_size, n_epochs=cfg.n_epochs, gamma=cfg.gamma,
            gae_lambda=cfg.gae_lambda, clip_range=cfg.clip_range, ent_coef=cfg.ent_coef,
            vf_coef=cfg.vf_coef, max_grad_norm=cfg.max_grad_norm, target_kl=cfg.target_kl,
            seed=cfg.seed, device=cfg.device, verbose=0,
            policy_kwargs={"checkpoint": str(self.init.path), "train": cfg.train,
                           "fresh_value_head": cfg.fresh_value_head, "kl_coef": cfg.kl_coef,
                           "temperature": cfg.temperature,
                           "ent_coef": cfg.ent_coef},
        )
        # SB3's default logger makes an empty SB3-<date> folder in the temp dir per run; its
        # values are read from `name_to_value` into our TensorBoard scalars instead
        from stable_baselines3.common.logger import Logger

        self.model.set_logger(Logger(folder=None, output_formats=[]))
        self.policy: LMActorCriticPolicy = self.model.policy  # type: ignore[assignment]
        self.per_update = cfg.n_steps * cfg.num_envs
        self.n_updates = math.ceil(cfg.total_steps / self.per_update)
        self.update = self.start_update = 0
        self.actions: list[int] = []
        self.ep_rewards: list[float] = []
        self.rollout_seconds = 0.0

    # ---------------------------------------------------------------- state
    def save_state(self) -> None:
        from chimein.training.supervised import save_state

        info = {"update": self.update, "config": self.cfg.to_dict(), "init": str(self.init.path),
                "num_timesteps": int(self.model.num_timesteps),
                "np_rng": _np_state(), "scenes": self.scenes}
        save_state(self.out / "state", self.policy, self.policy.optimizer, _NoSched(),
                   self.update, info)

    def try_resume(self) -> None:
        from chimein.training.supervised import load_state

        p = self.out / "state" / "state.json"
        if not p.is_file():
            return
        meta = json.loads(p.read_text())
        if meta.get("config") != self.cfg.to_dict() or meta.get("init") != str(self.init.path):
            raise SpecError(
                f"{self.out}: holds a PPO run with another configuration or initial checkpoint; "
                "use another out= or delete it"
            )
        meta = load_state(self.out / "state", self.policy, self.policy.optimizer, _NoSched())
        _set_np_state(meta["np_rng"])
        self.update = self.start_update = int(meta["update"])
        self.model.num_timesteps = int(meta["num_timesteps"])
        self.model._num_timesteps_at_start = self.model.num_timesteps
        self.log(f"ppo: resumed at update {self.update} ({self.model.num_timesteps} env steps)")

    def save_ckpt(self, dest: Path) -> Path:
        return self.save_checkpoint(dest, self.policy.lm, self.update,
                                    self.policy.action_bias.detach().cpu().tolist(),
                                    extra={"env_steps": int(self.model.num_timesteps)})

    # ---------------------------------------------------------------- per update
    def after_update(self, u_done: int, update_s: float) -> None:
        """Called when update ``u_done`` finished: log, checkpoint, validate."""
        self.update = u_done
        env = self.env
        steps = self.per_update
        pol = self.policy
        scal: dict[str, float] = {
            "rollout/episode_reward": float(np.mean(self.ep_rewards)) if self.ep_rewards else math.nan,
            "rollout/episodes": float(len(self.ep_rewards)),
            "policy/kl_to_init": float(np.mean(pol.stats["kl"])) if pol.stats["kl"] else math.nan,
            "policy/entropy": float(np.mean(pol.stats["entropy"])) if pol.stats["entropy"] else math.nan,
            "time/env_steps_per_s": steps / max(1e-9, self.rollout_seconds),
            "time/rollout_s": self.rollout_seconds,
            "time/update_s": update_s,
            "time/env_s": env.env_seconds,
            "time/tokenize_s": env.tok_seconds,
            "time/model_s": pol.forward_seconds,
            **action_rates(np.asarray(self.actions)),
        }
        for k, v in self.model.logger.name_to_value.items():
            if k.startswith("train/"):
                scal[k] = float(v)
        env.env_seconds = env.tok_seconds = pol.forward_seconds = 0.0
        pol.stats = {"kl": [], "entropy": []}
        self.actions, self.ep_rewards = [], []
        last = u_done >= self.n_updates
        if self.val.due(u_done) or (last and self.val.enabled):
            ck = self.save_ckpt(self.out / "checkpoints" / f"step-{u_done:06d}")
            scal.update(self.val(u_done, ck))
        self.tb.scalars(scal, u_done)
        if u_done % self.cfg.ckpt_every == 0 or last or self.cfg.max_minutes is not None:
            self.save_state()
        self.log(f"ppo update {u_done}/{self.n_updates}: reward {scal['rollout/episode_reward']:.3f} "
                 f"kl {scal['policy/kl_to_init']:.4f} {scal['time/env_steps_per_s']:.0f} steps/s")
        if self.callback is not None:
            self.callback(u_done, scal)


class _NoSched:
    """PPO's learning rate lives in SB3; the supervised state format wants a scheduler."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, _: Mapping[str, Any]) -> None:
        return None


def _np_state() -> list[Any]:
    # SB3 shuffles minibatches with numpy's global generator: saved for exact resume
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def _set_np_state(s: list[Any]) -> None:
    np.random.set_state((s[0], np.asarray(s[1], np.uint32), s[2], s[3], s[4]))


def train_ppo(
    init: str | Path,
    out: str | Path,
    cfg: PPOConfig | Mapping[str, Any] | None = None,
    *,
    log: Callable[[str], None] = print,
    on_update: Callable[[int, dict[str, float]], None] | None = None,
) -> Path:
    """Refine checkpoint ``init`` with PPO; write ``OUT/final`` (and ``OUT/best`` with validation).

    Parameters
    ----------
    init
        Supervised (or any timing-LM) checkpoint directory.
    out
        Run directory: ``final``, ``best``, ``checkpoints/``, ``state/`` (resume), ``tb/``.
        Rerunning with the same ``out`` and config resumes after the last saved update.
    cfg
        :class:`PPOConfig` or a mapping of its fields.
    log
        Progress messages.
    on_update
        Called as ``on_update(update, scalars)`` after every update (tests, interrupts).

    Returns
    -------
    Path
        The final checkpoint directory.

    Examples
    --------
    >>> train_ppo("runs/sup/final", "runs/ppo", {"total_steps": 2000})  # doctest: +SKIP
    """
    cfg = cfg if isinstance(cfg, PPOConfig) else PPOConfig.from_mapping(cfg)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    run = _Run(str(Path(checkpoint_path(init)).resolve()), out, cfg, log, on_update)
    run.try_resume()
    remaining = (run.n_updates - run.update) * run.per_update
    if remaining > 0:
        driver = _Driver(run)
        run.model.learn(remaining, callback=driver, reset_num_timesteps=False)
        if not run.stopped and driver.rollouts:
            run.after_update(run.update + 1, time.perf_counter() - driver.t_update)
        elif run.stopped:
            run.log(f"ppo: time budget reached after update {run.update}; rerun to resume")
    run.tb.close()
    run.env.close()
    return run.finish(run.save_ckpt(out / "final"))
