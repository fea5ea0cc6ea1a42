"""The decide rule of the timing LM: decide-head logits -> probabilities -> one action per stream.

The decide head is the LM's logits of ``<wait>``/``<respond>``/``<intervene>`` at a stream's
last token. The rule, used by in-process inference (:class:`~chimein.agents.lm.policy.LMPolicy`),
the server's batched slots (:class:`~chimein.agents.lm.slots.LMSlots`) and GRPO's rollouts
(:class:`~chimein.training.grpo.EpisodeRollout`):

1. :func:`decide_logits`: add ``logit_bias`` (a prior correction: supervised training weighs the
   rare actions up, which shifts the model's odds by a constant) and divide by ``temperature``;
2. the probabilities are the softmax of those (:func:`action_probs`; GRPO uses their
   log-softmax, the quantity TRL re-scores);
3. :func:`choose_actions`: the argmax (greedy), or "act exactly when ``1 - p(WAIT) >=
   act_threshold``" (then the more probable of RESPOND/INTERVENE), or a draw from the
   distribution by inverting its CDF with one uniform per stream from that stream's own
   generator (so a stream's actions do not depend on which other streams share its batch).

GRPO draws with ``torch.multinomial`` and a ``torch.Generator`` per episode instead of step 3
(its checkpoints are reproducible from those draws); steps 1 and 2 are the same, and so is PPO's
actor (:class:`~chimein.training.ppo.LMActorCriticPolicy`, which samples through SB3).
:func:`decide_kl` is the divergence of two such distributions (the RL trainers' distance to the
initial policy).

Examples
--------
>>> import torch
>>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
>>> actions, probs = decide(logits, torch.zeros(3))
>>> actions.tolist(), probs.shape, probs.dtype
([0, 1], (2, 3), dtype('float32'))
>>> decide(logits, torch.zeros(3), act_threshold=0.2)[0].tolist()
[1, 1]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["action_probs", "choose_actions", "decide", "decide_kl", "decide_logits"]


def decide_logits(logits: torch.Tensor, logit_bias: torch.Tensor,
                  temperature: float = 1.0) -> torch.Tensor:
    """``(logits + logit_bias) / temperature``: the decide head's logits ``(B, 3)`` as the
    policy samples from them."""
    return (logits + logit_bias) / temperature


def decide_kl(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """``KL(p || q)`` per row of two decide distributions given as log-probabilities ``logp``,
    ``logq`` ``(..., 3)`` (log-softmax of :func:`decide_logits`): how far the RL trainers' policy
    has moved from the initial one (PPO's penalty; both log it as ``policy/kl_to_init``)."""
    return (logp.exp() * (logp - logq)).sum(-1)


def action_probs(logits: torch.Tensor, logit_bias: torch.Tensor,
                 temperature: float = 1.0) -> np.ndarray:
    """Softmax of :func:`decide_logits` as float32 numpy ``(B, 3)`` (on the host)."""
    probs = torch.softmax(decide_logits(logits, logit_bias, temperature), dim=-1)
    return probs.cpu().numpy().astype(np.float32)


def choose_actions(probs: np.ndarray, sample: bool = False, act_threshold: float | None = None,
                   rngs: Sequence[np.random.Generator] | None = None) -> np.ndarray:
    """One action per row of ``probs`` ``(B, 3)`` -> int64 ``(B,)`` (see the module docstring).

    Parameters
    ----------
    probs
        Action probabilities (WAIT, RESPOND, INTERVENE).
    sample
        Draw from ``probs``: one ``rngs[b].random()`` per row, inverted through the CDF
        (computed in float64).
    act_threshold
        Greedy only: act when ``1 - p(WAIT) >= act_threshold``; None takes the argmax.
    rngs
        One generator per row (needed when sampling).

    Raises
    ------
    ValueError
        Sampling without one generator per row (a bug of the caller, as the decoder's argument
        errors are).
    """
    if sample:
        if rngs is None or len(rngs) != len(probs):
            raise ValueError(f"decide: sampling needs one generator per stream ({len(probs)})")
        cdf = np.cumsum(probs.astype(np.float64), axis=1)
        u = np.array([r.random() for r in rngs])
        return np.minimum((u[:, None] >= cdf).sum(1), 2).astype(np.int64)
    if act_threshold is not None:
        act = 1.0 - probs[:, 0] >= act_threshold
        return np.where(act, 1 + np.argmax(probs[:, 1:], axis=1), 0).astype(np.int64)
    return np.argmax(probs, axis=1).astype(np.int64)


def decide(logits: torch.Tensor, logit_bias: torch.Tensor, temperature: float = 1.0,
           sample: bool = False, act_threshold: float | None = None,
           rngs: Sequence[np.random.Generator] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The decide rule: (actions int64 ``(B,)``, probabilities float32 ``(B, 3)``) from the
    decide-head ``logits`` ``(B, 3)`` (:func:`action_probs` then :func:`choose_actions`)."""
    probs = action_probs(logits, logit_bias, temperature)
    return choose_actions(probs, sample, act_threshold, rngs), probs
