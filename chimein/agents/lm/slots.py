"""Per-stream policy state that any *subset* of streams can step: what dynamic batching needs.

The in-process :class:`~chimein.agents.policy.Policy` steps all its streams in lockstep. A
server receives chunks from whichever streams sent one, so it steps an arbitrary subset of
*slots* each batch. A :class:`SlotPool` holds ``capacity`` slots, hands one to each open
stream, and steps any subset in one call:

- :class:`LMSlots` (timing-LM checkpoints): the timing LM's one
  :class:`~chimein.agents.lm.decoder.IncrementalDecoder` (one ring write pointer *per stream*,
  so any subset steps in one forward pass; a slot handed to a new stream rewinds its ring) and
  :class:`~chimein.agents.lm.tokenizer.UnitStream` (which also pushes a subset of streams),
  decided by the one decide rule (:func:`~chimein.agents.lm.decide.decide`). Greedy decisions
  equal :class:`~chimein.agents.lm.policy.LMPolicy`'s on the same audio.
- :class:`PerStreamSlots` (any other policy, e.g. the baselines): one single-stream policy
  instance per slot -- exact, and cheap for the signal-processing baselines.

Examples
--------
>>> import numpy as np
>>> pool = make_slots("energy-endpoint", capacity=4, chunk_s=0.08)
>>> a, b = pool.alloc(), pool.alloc()
>>> actions, probs = pool.act(np.array([b]), np.zeros((1, 1280, 1), np.float32))
>>> actions.tolist(), probs.shape
([0], (1, 3))
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

from chimein.agents.policy import Policy
from chimein.errors import ConfigError, SpecError

__all__ = ["LMSlots", "PerStreamSlots", "SlotPool", "make_slots"]


class SlotPool(ABC):
    """``capacity`` per-stream states; :meth:`act` steps any subset of allocated slots."""

    def __init__(self, capacity: int) -> None:
        if not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ConfigError(f"slots: field 'max_streams': a positive integer, got {capacity!r}")
        self.capacity = int(capacity)
        self._free = list(range(self.capacity - 1, -1, -1))
        self.in_use: set[int] = set()
        self.chunk_s = 0.08  # stream format (set by make_slots)
        self.sample_rate = 16000

    def alloc(self) -> int:
        """A fresh slot (its state reset); raises SpecError when all are taken."""
        if not self._free:
            raise SpecError(f"slots: all {self.capacity} streams are in use; raise max_streams")
        slot = self._free.pop()
        self.in_use.add(slot)
        self.reset(slot)
        return slot

    def free(self, slot: int) -> None:
        """Give ``slot`` back (idempotent)."""
        if slot in self.in_use:
            self.in_use.discard(slot)
            self._free.append(slot)

    @abstractmethod
    def reset(self, slot: int) -> None:
        """Start a new episode in ``slot``."""

    @abstractmethod
    def act(self, slots: np.ndarray, audio: np.ndarray,
            speaking: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Step ``slots`` (distinct) on ``audio`` float32 ``(B, samples, mics)`` ->
        (actions int64 ``(B,)``, probs float32 ``(B, 3)``)."""


class PerStreamSlots(SlotPool):
    """One single-stream policy per slot (created on first use), for any policy.

    Parameters
    ----------
    factory
        Builds one configured policy (called once per slot ever used).
    capacity
        Most slots.
    """

    def __init__(self, factory: Callable[[], Policy], capacity: int) -> None:
        super().__init__(capacity)
        self.factory = factory
        self.policies: dict[int, Policy] = {}

    def reset(self, slot: int) -> None:
        p = self.policies.get(slot)
        if p is None:
            p = self.policies[slot] = self.factory()
        p.reset(1)

    def act(self, slots: np.ndarray, audio: np.ndarray,
            speaking: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        B = len(slots)
        actions = np.zeros(B, np.int64)
        probs = np.zeros((B, 3), np.float32)
        sp = np.zeros(B, np.int64) if speaking is None else np.asarray(speaking, np.int64)
        for j, s in enumerate(np.asarray(slots).tolist()):
            a, p = self.policies[s].act({"audio": audio[j : j + 1],
                                         "assistant_speaking": sp[j : j + 1]})
            actions[j], probs[j] = a[0], p[0]
        return actions, probs


class LMSlots(SlotPool):
    """Timing-LM slots: the model, tokenizer and decision rule of an
    :class:`~chimein.agents.lm.policy.LMPolicy`, with subset-steppable state.

    Parameters
    ----------
    policy
        A configured LMPolicy (its model, ``logit_bias``, ``temperature``, ``act_threshold``,
        ``substeps`` are used; sampling draws from a per-slot generator seeded from
        ``(seed, slot, episode)``).
    capacity
        Most slots (sizes the KV cache: see ``memory_bytes``).
    """

    def __init__(self, policy: Any, capacity: int) -> None:
        import torch

        from chimein.agents.lm.decoder import IncrementalDecoder
        from chimein.agents.lm.tokenizer import BOS_ID

        super().__init__(capacity)
        self.policy = policy
        self.device = policy.device
        upc = policy.checkpoint.units_per_chunk
        self.dec = IncrementalDecoder(policy.model, self.capacity, max_step_tokens=upc + 1,
                                      rewind_on_reset=True)
        self.units = policy.tokenizer.stream(self.capacity)
        self.prev = torch.full((self.capacity,), BOS_ID, dtype=torch.long, device=self.device)
        self.episodes = np.zeros(self.capacity, np.int64)
        self.rngs: dict[int, np.random.Generator] = {}

    def memory_bytes(self) -> int:
        """Bytes of the key/value cache."""
        return int(self.dec.memory_bytes())

    def reset(self, slot: int) -> None:
        from chimein.agents.lm.tokenizer import BOS_ID

        self.units.reset(slot)
        self.dec.reset(slot)
        self.prev[slot] = BOS_ID
        self.episodes[slot] += 1
        if self.policy.sample:
            key = [self.policy.seed, 2, slot, int(self.episodes[slot])]
            self.rngs[slot] = np.random.default_rng(np.random.SeedSequence(key))

    def act(self, slots: np.ndarray, audio: np.ndarray,
            speaking: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        import torch

        from chimein.agents.lm.decide import decide
        from chimein.agents.lm.decoder import action_tokens, step_tokens
        from chimein.agents.lm.tokenizer import ACTION_IDS

        p = self.policy
        order = np.argsort(np.asarray(slots, np.int64), kind="stable")
        inv = np.empty_like(order)
        inv[order] = np.arange(len(order))
        sl = np.asarray(slots, np.int64)[order]  # sorted: a full batch reads the cache in place
        idx = torch.as_tensor(sl, device=self.device)
        ref = np.asarray(audio, np.float32)
        ref = (ref[:, :, 0] if ref.ndim == 3 else ref)[order]
        logits = None
        for s in range(p.substeps):
            if s:  # the previous sub-chunk's (forced) action
                self.prev[idx] = ACTION_IDS[0]
            units = self.units.push(ref[:, s * p.model_chunk : (s + 1) * p.model_chunk], sl)
            logits = self.dec.step(step_tokens(self.prev[idx], units), sl).action_logits
        assert logits is not None
        rngs = [self.rngs[int(s)] for s in sl] if p.sample else None  # sorted slot order
        actions, probs = decide(logits, p.logit_bias, p.temperature, p.sample, p.act_threshold,
                                rngs)
        self.prev[idx] = action_tokens(actions, self.device)
        return actions[inv], probs[inv]


def make_slots(policy: str | Policy, capacity: int, chunk_s: float | None = None,
               sample_rate: int = 16000, **kwargs: Any) -> SlotPool:
    """Slots for a policy name, a checkpoint directory, or a built policy.

    ``chunk_s`` None: the checkpoint's chunk (LM) or 80 ms. ``kwargs`` go to ``make_policy``.
    Non-LM policies are rebuilt per slot, so pass a name (or path) for them.
    """
    from chimein.agents.lm.policy import LMPolicy
    from chimein.agents.registry import make_policy

    built = make_policy(policy, **kwargs) if isinstance(policy, str) else policy
    if chunk_s is not None and not (isinstance(chunk_s, (int, float)) and math.isfinite(chunk_s)):
        raise ConfigError(f"slots: field 'chunk_s': a number of seconds, got {chunk_s!r}")
    if isinstance(built, LMPolicy):
        built.configure(built.chunk_s if chunk_s is None else chunk_s, sample_rate, "audio")
        lm = LMSlots(built, capacity)
        lm.chunk_s, lm.sample_rate = built.chunk_s, built.sample_rate
        return lm
    if not isinstance(policy, str):
        raise SpecError("slots: non-LM policies are rebuilt per stream; pass their name, "
                        f"not an instance of {type(policy).__name__}")
    cs = 0.08 if chunk_s is None else float(chunk_s)
    built.configure(cs, sample_rate, "audio")

    def factory() -> Policy:
        p = make_policy(policy, **kwargs)
        p.configure(cs, sample_rate, "audio")
        return p

    pool = PerStreamSlots(factory, capacity)
    pool.chunk_s, pool.sample_rate = cs, int(sample_rate)
    return pool

