"""Per-stream policy state that any *subset* of streams can step: what dynamic batching needs.

The in-process :class:`~chimein.agents.policy.Policy` steps all its streams in lockstep. A
server receives chunks from whichever streams sent one, so it steps an arbitrary subset of
*slots* each batch. A :class:`SlotPool` holds ``capacity`` slots, hands one to each open
stream, and steps any subset in one call:

- :class:`LMSlots` (timing-LM checkpoints): :class:`SubsetDecoder`, a
  :class:`~chimein.agents.streaming.StreamingDecoder` with one ring write pointer *per
  stream* (a tensor; writes by index ops), so any subset steps in one forward pass, plus a
  subset-capable audio tokenizer (:class:`SubsetUnitStream`). Greedy decisions equal
  :class:`~chimein.agents.lm_policy.LMPolicy`'s on the same audio.
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
from chimein.errors import SpecError

__all__ = ["LMSlots", "PerStreamSlots", "SlotPool", "SubsetDecoder", "SubsetUnitStream",
           "make_slots"]


class SlotPool(ABC):
    """``capacity`` per-stream states; :meth:`act` steps any subset of allocated slots."""

    def __init__(self, capacity: int) -> None:
        if not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise SpecError(f"slots: field 'max_streams': a positive integer, got {capacity!r}")
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


class SubsetUnitStream:
    """:class:`~chimein.agents.tokenizer.UnitStream` whose :meth:`push` takes a subset of
    streams (their history columns are gathered and scattered by index)."""

    def __init__(self, tokenizer: Any, capacity: int) -> None:
        from chimein.agents.tokenizer import UnitStream

        self._base = UnitStream(tokenizer, capacity)
        self.tok = tokenizer

    def reset(self, i: int) -> None:
        """Stream ``i`` restarts from silence."""
        self._base.reset(i)

    def push(self, idx: np.ndarray, chunk: np.ndarray) -> np.ndarray:
        """``chunk`` float32 ``(len(idx), samples)`` -> unit ids ``(len(idx), units)``."""
        b = self._base
        lm = self.tok.logmel
        c = np.asarray(chunk, np.float32)
        x = np.concatenate([b._hist[:, idx], c.T])
        n_fr = c.shape[1] // lm.hop
        fr = lm.frames(x, b._lead_hops, b._lead_hops + n_fr)
        b._hist[:, idx] = x[x.shape[0] - b._lead :]
        fpu = int(self.tok.features.frames_per_unit)
        n_u = n_fr // fpu
        units = fr.transpose(1, 0, 2).reshape(len(idx) * n_u, fpu * lm.n_mels)
        return self.tok.codebook.assign(units).reshape(len(idx), n_u)


def _subset_decoder_cls() -> type:
    import torch

    from chimein.agents.streaming import StepOutput, StreamingDecoder, _rotate_half

    class _SubsetDecoder(StreamingDecoder):
        """StreamingDecoder with a ring write pointer per stream; :meth:`step_subset` feeds
        any subset of streams in one forward pass (all slots of the ring are read and the
        mask hides those a stream has not written)."""

        def __init__(self, model: Any, n_streams: int, max_step_tokens: int = 3,
                     rebase_at: int = 1 << 14) -> None:
            super().__init__(model, n_streams, max_step_tokens, rebase_at)
            self.ptrs = torch.zeros(self.n, dtype=torch.long, device=self.device)
            # tokens written per stream since its reset, on the host (no device sync): a
            # stream's ring fills slots 0.. in order, so slots >= it hold nothing of it yet
            self.filled = np.zeros(self.n, np.int64)

        def reset(self, i: int | None = None) -> None:
            super().reset(i)
            if i is None:
                self.ptrs.zero_()
                self.filled[:] = 0
            else:
                self.ptrs[i] = 0
                self.filled[i] = 0

        @torch.inference_mode()
        def step_subset(self, idx: torch.Tensor, tokens: torch.Tensor,
                        span: tuple[int, int] | None = None,
                        idx_host: np.ndarray | None = None) -> StepOutput:
            """Feed ``tokens`` ``(B, t)`` to streams ``idx`` ``(B,)`` (distinct). ``span``
            ``(a, b)`` says ``idx`` is ``a..b-1`` in order: the cache is then read through a
            view instead of a gathered copy. ``idx_host``: ``idx`` as a numpy array."""
            ih = idx.cpu().numpy() if idx_host is None else np.asarray(idx_host)
            idx = idx.to(self.device)
            tokens = tokens.to(self.device)
            B, t = tokens.shape
            if idx.shape != (B,) or not 1 <= t <= self.max_step:
                raise SpecError(f"subset decoder: tokens {tuple(tokens.shape)} for {tuple(idx.shape)} "
                                f"streams; expected (B, 1..{self.max_step})")
            if int(self.pos[idx].max()) + t > self.rebase_at:
                self._rebase()
            ar = torch.arange(t, device=self.device)
            qpos = self.pos[idx][:, None] + ar  # (B, t)
            slots = (self.ptrs[idx][:, None] + ar) % self.S  # (B, t)
            rows = idx[:, None].expand(B, t)
            self.slot_pos[rows, slots] = qpos
            sel: Any = slice(*span) if span is not None else idx
            L = min(self.S, int(self.filled[ih].max()) + t)  # read only slots ever written
            sp = self.slot_pos[sel][:, None, :L]  # (B, 1, L)
            q = qpos[:, :, None]
            mask = (sp >= 0) & (sp <= q) & (sp > q - self.window)  # (B, t, S)
            g = self.n_heads // self.n_kv
            mask_g = mask[:, None, None].expand(B, 1, g, t, L).reshape(B, 1, g * t, L)
            cos, sin = self._rope(qpos)
            cos, sin = cos[:, None], sin[:, None]
            x = self.embed(tokens)
            D = self.head_dim
            for li, layer in enumerate(self.layers):
                att = layer.self_attn
                h = layer.input_layernorm(x)
                qs = att.q_proj(h).view(B, t, self.n_heads, D).transpose(1, 2)
                ks = att.k_proj(h).view(B, t, self.n_kv, D).transpose(1, 2)
                vs = att.v_proj(h).view(B, t, self.n_kv, D).transpose(1, 2)
                qs = qs * cos + _rotate_half(qs) * sin
                ks = ks * cos + _rotate_half(ks) * sin
                kl, vl = self.k[li], self.v[li]  # (n, n_kv, S, D)
                kl[rows, :, slots] = ks.transpose(1, 2)  # index result (B, t, n_kv, D)
                vl[rows, :, slots] = vs.transpose(1, 2)
                o = self._attend(qs, kl[sel, :, :L], vl[sel, :, :L], mask_g)
                x = x + att.o_proj(o.transpose(1, 2).reshape(B, t, self.n_heads * D))
                x = x + layer.mlp(layer.post_attention_layernorm(x))
            self.ptrs[idx] = (self.ptrs[idx] + t) % self.S
            self.filled[ih] += t
            self.pos[idx] += t
            h_last = self.norm(x[:, -1])
            logits = (h_last @ self.w_act.T).float()
            values = self.model.value_head(h_last).float()
            return StepOutput(logits, values, None)

    return _SubsetDecoder


def SubsetDecoder(model: Any, n_streams: int, max_step_tokens: int = 3,  # noqa: N802
                  rebase_at: int = 1 << 14) -> Any:
    """A :class:`~chimein.agents.streaming.StreamingDecoder` subclass instance with per-stream
    ring pointers and ``step_subset(idx, tokens)`` (built lazily so that importing this
    module does not import torch)."""
    return _subset_decoder_cls()(model, n_streams, max_step_tokens, rebase_at)


class LMSlots(SlotPool):
    """Timing-LM slots: the model, tokenizer and decision rule of an
    :class:`~chimein.agents.lm_policy.LMPolicy`, with subset-steppable state.

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

        from chimein.agents.tokenizer import BOS_ID

        super().__init__(capacity)
        self.policy = policy
        self.device = policy.device
        upc = policy.checkpoint.units_per_chunk
        self.dec = SubsetDecoder(policy.model, self.capacity, max_step_tokens=upc + 1)
        self.units = SubsetUnitStream(policy.tokenizer, self.capacity)
        self.prev = torch.full((self.capacity,), BOS_ID, dtype=torch.long, device=self.device)
        self.episodes = np.zeros(self.capacity, np.int64)
        self.rngs: dict[int, np.random.Generator] = {}

    def memory_bytes(self) -> int:
        """Bytes of the key/value cache."""
        return int(self.dec.memory_bytes())

    def reset(self, slot: int) -> None:
        from chimein.agents.tokenizer import BOS_ID

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

        from chimein.agents.tokenizer import ACTION_IDS, UNIT_OFFSET

        p = self.policy
        order = np.argsort(np.asarray(slots, np.int64), kind="stable")
        inv = np.empty_like(order)
        inv[order] = np.arange(len(order))
        sl = np.asarray(slots, np.int64)[order]  # sorted: a full batch reads the cache in place
        idx = torch.as_tensor(sl, device=self.device)
        ref = np.asarray(audio, np.float32)
        ref = (ref[:, :, 0] if ref.ndim == 3 else ref)[order]
        logits = None
        contiguous = len(sl) > 0 and bool((np.diff(sl) == 1).all())
        span = (int(sl[0]), int(sl[-1]) + 1) if contiguous else None
        for s in range(p.substeps):
            if s:
                self.prev[idx] = ACTION_IDS[0]
            units = self.units.push(sl, ref[:, s * p.model_chunk : (s + 1) * p.model_chunk])
            toks = torch.from_numpy(units + UNIT_OFFSET).to(self.device)
            tokens = torch.cat([self.prev[idx][:, None], toks], dim=1)
            logits = self.dec.step_subset(idx, tokens, span, sl).action_logits
        assert logits is not None
        probs = torch.softmax((logits + p.logit_bias) / p.temperature, -1).cpu().numpy()
        probs = probs.astype(np.float32)
        if p.sample:
            cdf = np.cumsum(probs.astype(np.float64), axis=1)
            u = np.array([self.rngs[int(s)].random() for s in sl])  # sorted slot order
            actions = np.minimum((u[:, None] >= cdf).sum(1), 2).astype(np.int64)
        elif p.act_threshold is not None:
            act = 1.0 - probs[:, 0] >= p.act_threshold
            actions = np.where(act, 1 + np.argmax(probs[:, 1:], axis=1), 0).astype(np.int64)
        else:
            actions = np.argmax(probs, axis=1).astype(np.int64)
        self.prev[idx] = torch.as_tensor(np.asarray(ACTION_IDS)[actions], device=self.device)
        return actions[inv], probs[inv]


def make_slots(policy: str | Policy, capacity: int, chunk_s: float | None = None,
               sample_rate: int = 16000, **kwargs: Any) -> SlotPool:
    """Slots for a policy name, a checkpoint directory, or a built policy.

    ``chunk_s`` None: the checkpoint's chunk (LM) or 80 ms. ``kwargs`` go to ``make_policy``.
    Non-LM policies are rebuilt per slot, so pass a name (or path) for them.
    """
    from chimein.agents.lm_policy import LMPolicy
    from chimein.agents.registry import make_policy

    built = make_policy(policy, **kwargs) if isinstance(policy, str) else policy
    if chunk_s is not None and not (isinstance(chunk_s, (int, float)) and math.isfinite(chunk_s)):
        raise SpecError(f"slots: field 'chunk_s': a number of seconds, got {chunk_s!r}")
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

