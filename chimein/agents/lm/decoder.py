"""Constant-cost incremental decoding of the timing LM: one sliding-window KV cache for a batch
of streams, any subset of which steps at a time.

Every decision step feeds a stream the tokens it has not fed yet -- the previous chunk's action
token and the new chunk's unit tokens (``<bos>`` instead of an action at a stream's start;
:func:`step_tokens` builds them) -- through the model's own layers, and reads the decide head
at the last position. The cost of a step does not grow with the stream.

This is the one decoder of the timing LM: :class:`~chimein.agents.lm.policy.LMPolicy` steps all
its streams in lockstep (``step(tokens)``), the policy server's
:class:`~chimein.agents.lm.slots.LMSlots` steps whichever streams sent a chunk
(``step(tokens, streams)``), and GRPO's rollouts sample with it. Stepping every stream is
stepping the subset that is every stream.

Cache layout
------------
Per layer, keys and values live in a ring buffer of ``S = window + max_step_tokens - 1`` slots
per stream: ``k[layer]`` is ``(n_streams, kv_heads, S, head_dim)``. Each stream writes its own
ring in order; its write pointer is ``filled[b] % S``, where ``filled[b]`` (kept on the host,
so no device sync) counts the tokens it was fed since its ring was last rewound.
``slot_pos[b, s]`` is the position (within stream ``b``) of the token in slot ``s``, or -1 when
the slot holds nothing of the stream's current episode. A query at position ``p`` attends to
slots whose position lies in ``(p - window, p]`` -- exactly transformers' sliding-window causal
mask, so the decoder computes what a full forward pass over the whole stream computes (up to
float rounding; the tests check equal decisions and close probabilities on streams several
windows long). A step reads the first ``min(S, max filled + t)`` slots of the streams it
steps: slots no stepped stream ever wrote are skipped.

When streams share a ring pointer and form a contiguous run of indices (always so in
lockstep), a step writes the cache with one slice per layer and reads it as a view; otherwise
by index.

Resetting one stream (a vector env's autoreset, a server slot handed to a new client) marks its
slots empty and restarts its positions; the other streams are untouched. With
``rewind_on_reset`` the stream's ring also restarts at slot 0 (a fresh server stream then reads
few slots); without, it keeps its pointer, so lockstep streams keep sharing one.

Positions and long streams
--------------------------
Each stream has its own positions, starting at 0 at its ``<bos>``. Keys are stored already
rotated (RoPE) at their position. Rotary attention depends only on position *differences*, so
when a stream's position passes ``rebase_at`` its cached keys are rotated back by ``delta``
(``R(-delta) R(p) k = R(p - delta) k``) and its positions shifted down: positions stay small
(float32 angles stay precise) for streams of any length, at the cost of one rotation of the
cache every ``rebase_at`` tokens.

What the window means for long-range tasks
------------------------------------------
A layer attends to the last ``window`` tokens (1024 tokens = 27.3 s at 80 ms chunks of 2 units
+ 1 action token); stacking ``L`` layers lets information travel up to ``L * window`` tokens,
but only through intermediate hidden states. A monitoring request ("tell me when the washer
finishes") heard more than ~27 s before the event is therefore remembered only indirectly, and
the supervised model (trained on crops of at most ``window`` tokens) has never been taught to
do so: expect more misses on such scenes. Its own action tokens (it acknowledged the request)
stay in the window only as long as the request itself.

Examples
--------
>>> import torch
>>> from chimein.agents.lm.model import LMConfig, TimingLM
>>> model = TimingLM(LMConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1,
...                           intermediate_size=64, window=8), n_units=8).eval()
>>> dec = IncrementalDecoder(model, n_streams=3)
>>> out = dec.step(torch.tensor([[1, 7, 8], [1, 9, 10], [1, 7, 7]]))   # every stream
>>> out.action_logits.shape, out.values.shape
(torch.Size([3, 3]), torch.Size([3]))
>>> dec.step(torch.tensor([[4, 8, 8]]), streams=[2]).action_logits.shape   # stream 2 only
torch.Size([1, 3])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

from chimein.agents.lm.model import TimingLM
from chimein.agents.lm.tokenizer import ACTION_IDS, UNIT_OFFSET

__all__ = ["IncrementalDecoder", "StepOutput", "action_token_ids", "action_tokens",
           "full_action_logits", "step_token_ids", "step_tokens", "unit_token_ids"]


class StepOutput(NamedTuple):
    """The decide head and value of every stepped stream after a step."""

    action_logits: torch.Tensor  # (B, 3) float32
    values: torch.Tensor  # (B,) float32
    log_action_mass: torch.Tensor | None  # (B,) log sum of full-vocab probs of the actions


def unit_token_ids(unit_ids: np.ndarray) -> np.ndarray:
    """Token ids of codebook units ``unit_ids`` (any shape; numpy int64)."""
    return np.asarray(unit_ids) + UNIT_OFFSET


def action_token_ids(actions: np.ndarray) -> np.ndarray:
    """Token ids of ``actions`` (0 WAIT, 1 RESPOND, 2 INTERVENE; any shape; numpy int64)."""
    return np.asarray(ACTION_IDS)[actions]


def step_token_ids(prev: np.ndarray | int, unit_ids: np.ndarray) -> np.ndarray:
    """Numpy form of :func:`step_tokens`: ``[prev, units...]`` along the last axis, for
    ``prev`` ``(...)`` token ids and ``unit_ids`` ``(..., units)`` codebook ids (one stream:
    a scalar and a vector). Used where token contexts live on the host (PPO's observations)."""
    prev_ids = np.asarray(prev)[..., None]
    return np.concatenate([prev_ids, unit_token_ids(unit_ids)], axis=-1)


def step_tokens(prev: torch.Tensor, unit_ids: np.ndarray) -> torch.Tensor:
    """The tokens of one decision step ``(B, 1 + units)``: each stream's previous action token
    ``prev`` ``(B,)`` (``<bos>`` at its start), then the chunk's unit tokens (codebook ids
    ``unit_ids`` ``(B, units)``) -- the streaming form of
    :func:`~chimein.agents.lm.tokenizer.interleave`. On ``prev``'s device (no host round trip
    of ``prev``; :func:`step_token_ids` is the same layout in numpy)."""
    units = torch.from_numpy(unit_token_ids(unit_ids)).to(prev.device)
    return torch.cat([prev[:, None], units], dim=1)


def action_tokens(actions: np.ndarray, device: Any = None) -> torch.Tensor:
    """Token ids ``(B,)`` of ``actions`` (0 WAIT, 1 RESPOND, 2 INTERVENE): what the next step
    feeds back, so the model hears what it did (:func:`action_token_ids` on ``device``)."""
    return torch.as_tensor(action_token_ids(actions), device=device)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class IncrementalDecoder:
    """Incremental decoding of ``n_streams`` streams, any subset per step (see the module
    docstring).

    Parameters
    ----------
    model
        The :class:`~chimein.agents.lm.model.TimingLM` (its weights are used in place; put it on
        the target device and dtype first).
    n_streams
        Number of streams (batch size in lockstep, slot count in a server).
    max_step_tokens
        Most tokens fed to a stream in one step (sizes the ring buffer).
    rebase_at
        Position after which a stream's cache is re-rotated to small positions (>= 2 ring
        sizes).
    rewind_on_reset
        :meth:`reset` of one stream also restarts its ring at slot 0 (servers: a new stream
        then reads few slots); False keeps its ring pointer (lockstep: streams keep sharing
        one pointer, so steps write one slice per layer).

    Raises
    ------
    ValueError
        Here and in :meth:`step`: arguments that break this API (stream count, ring size,
        token shape, stream indices). They are bugs of the calling code, not user input:
        :class:`~chimein.agents.lm.policy.LMPolicy` and
        :class:`~chimein.agents.lm.slots.LMSlots` check what users set before building or
        stepping a decoder.
    """

    def __init__(self, model: TimingLM, n_streams: int, max_step_tokens: int = 3,
                 rebase_at: int = 1 << 14, rewind_on_reset: bool = False) -> None:
        lm = model.lm
        cfg = lm.config
        self.model = model
        self.n = int(n_streams)
        if self.n < 1:
            raise ValueError(f"incremental decoder: n_streams must be >= 1, got {n_streams}")
        self.window = int(cfg.sliding_window)
        self.max_step = int(max_step_tokens)
        self.S = self.window + self.max_step - 1
        if int(rebase_at) < 2 * self.S:
            raise ValueError(
                f"incremental decoder: rebase_at ({rebase_at}) must be at least twice the ring "
                f"size ({self.S})"
            )
        self.rebase_at = int(rebase_at)
        self.rewind_on_reset = bool(rewind_on_reset)
        self.embed = lm.model.embed_tokens
        self.layers = list(lm.model.layers)
        self.norm = lm.model.norm
        att = self.layers[0].self_attn
        self.head_dim = int(att.head_dim)
        self.n_heads = int(cfg.num_attention_heads)
        self.n_kv = int(cfg.num_key_value_heads)
        self.scaling = float(att.scaling)
        rot = lm.model.rotary_emb
        self.rope_scale = float(getattr(rot, "attention_scaling", 1.0))
        w = lm.lm_head.weight
        self.device, self.dtype = w.device, w.dtype
        self.inv_freq = rot.inv_freq.detach().float().to(self.device)
        self.w_act = w[model.action_ids].detach()
        self.w_all = w.detach()
        shape = (len(self.layers), self.n, self.n_kv, self.S, self.head_dim)
        self.k = torch.zeros(shape, device=self.device, dtype=self.dtype)
        self.v = torch.zeros_like(self.k)
        self.slot_pos = torch.full((self.n, self.S), -1, dtype=torch.long, device=self.device)
        self.pos = torch.zeros(self.n, dtype=torch.long, device=self.device)
        # tokens written per stream since its ring was (re)started; its write pointer is this
        # modulo S, and its slots >= this hold nothing yet
        self.filled = np.zeros(self.n, np.int64)

    # ---------------------------------------------------------------- state
    def reset(self, i: int | None = None) -> None:
        """Forget stream ``i`` (every stream when None); its next token is position 0."""
        if i is None:
            self.slot_pos.fill_(-1)
            self.pos.zero_()
            self.filled[:] = 0
        else:
            self.slot_pos[i].fill_(-1)
            self.pos[i] = 0
            if self.rewind_on_reset:
                self.filled[i] = 0

    def memory_bytes(self) -> int:
        """Bytes held by the key/value cache."""
        return int(self.k.numel() * self.k.element_size() * 2)

    def _rope(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin ``(..., head_dim)`` of integer positions (as transformers computes them)."""
        freqs = positions[..., None].float() * self.inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        return (emb.cos() * self.rope_scale).to(self.dtype), (emb.sin() * self.rope_scale).to(
            self.dtype
        )

    def _rebase(self) -> None:
        """Shift positions of streams past ``rebase_at`` down, re-rotating their cached keys."""
        idx = torch.nonzero(self.pos >= self.rebase_at).flatten()
        if idx.numel() == 0:
            return
        delta = self.pos[idx] - self.S  # live positions [pos - S, pos) -> [0, S)
        cos, sin = self._rope(-delta)  # (m, D)
        cos, sin = cos[None, :, None, None, :], sin[None, :, None, None, :]
        k = self.k[:, idx]
        self.k[:, idx] = k * cos + _rotate_half(k) * sin
        sp = self.slot_pos[idx]
        self.slot_pos[idx] = torch.where(sp >= 0, sp - delta[:, None], sp)
        self.pos[idx] = self.pos[idx] - delta

    def _streams(self, streams: Sequence[int] | np.ndarray | torch.Tensor | None,
                 B: int) -> np.ndarray:
        """The stepped streams as a host int64 array (every stream when None), checked."""
        if streams is None:
            ih = np.arange(self.n, dtype=np.int64)
        elif isinstance(streams, torch.Tensor):
            ih = streams.cpu().numpy().astype(np.int64)
        else:
            ih = np.asarray(streams, np.int64)
        if ih.shape != (B,):
            raise ValueError(f"incremental decoder: tokens for {B} streams, got stream indices of "
                            f"shape {ih.shape}")
        if streams is not None and B and (ih.min() < 0 or ih.max() >= self.n
                                          or len(np.unique(ih)) != B):
            raise ValueError(f"incremental decoder: streams must be distinct indices in "
                            f"[0, {self.n}), got {ih.tolist()}")
        return ih

    # ---------------------------------------------------------------- decoding
    @torch.inference_mode()
    def step(self, tokens: torch.Tensor,
             streams: Sequence[int] | np.ndarray | torch.Tensor | None = None,
             full_vocab: bool = False) -> StepOutput:
        """Feed ``tokens`` ``(B, t)`` (``t <= max_step_tokens``) to ``streams`` (``B`` distinct
        indices; None: every stream, ``B = n_streams``) and return the decide head's logits at
        each stepped stream's last token.

        ``full_vocab`` also returns the log of the full-vocabulary probability mass on the
        three action tokens (0 for a model trained as in :mod:`chimein.training.supervised`).
        """
        tokens = tokens.to(self.device)
        B, t = tokens.shape
        if not 1 <= t <= self.max_step or (streams is None and self.n != B):
            raise ValueError(
                f"incremental decoder: expected tokens of shape "
                f"({self.n if streams is None else 'B'}, 1..{self.max_step}), "
                f"got {tuple(tokens.shape)}"
            )
        ih = self._streams(streams, B)
        # a contiguous run a..b-1 is read through a view, not a gathered copy
        run = B > 0 and bool((np.diff(ih) == 1).all())
        sel: Any = slice(int(ih[0]), int(ih[-1]) + 1) if run else torch.as_tensor(
            ih, device=self.device)
        if int(self.pos[sel].max()) + t > self.rebase_at:
            self._rebase()
        ptrs = self.filled[ih] % self.S
        shared = run and bool((ptrs == ptrs[0]).all()) and int(ptrs[0]) + t <= self.S
        qpos = self.pos[sel][:, None] + torch.arange(t, device=self.device)  # (B, t)
        if shared:  # one slice of the ring for every stepped stream
            p0 = int(ptrs[0])
            write: Any = (sel, slice(p0, p0 + t))
            self.slot_pos[sel, p0 : p0 + t] = qpos
        else:
            slots = torch.as_tensor((ptrs[:, None] + np.arange(t)) % self.S, device=self.device)
            rows = (sel if isinstance(sel, torch.Tensor) else torch.as_tensor(
                ih, device=self.device))[:, None].expand(B, t)
            write = (rows, slots)
            self.slot_pos[rows, slots] = qpos
        L = min(self.S, int(self.filled[ih].max()) + t)  # read only slots ever written
        sp = self.slot_pos[sel][:, None, :L]  # (B, 1, L)
        q = qpos[:, :, None]
        mask = (sp >= 0) & (sp <= q) & (sp > q - self.window)  # (B, t, L)
        # grouped-query layout: query head h = kv * g + j reads kv head ``kv`` (as repeat_kv does);
        # rows of a kv head's query block are (j, token), so the mask repeats over j
        g = self.n_heads // self.n_kv
        mask_g = mask[:, None, None].expand(B, 1, g, t, L).reshape(B, 1, g * t, L)
        x = self._layers(self.embed(tokens), qpos, write, sel, L, mask_g)
        self.filled[ih] += t
        self.pos[sel] += t
        h_last = self.norm(x[:, -1])
        logits = (h_last @ self.w_act.T).float()
        values = self.model.value_head(h_last).float()
        mass = None
        if full_vocab:
            full = (h_last @ self.w_all.T).float()
            mass = torch.logsumexp(logits, -1) - torch.logsumexp(full, -1)
        return StepOutput(logits, values, mass)

    def _layers(self, x: torch.Tensor, qpos: torch.Tensor, write: tuple[Any, Any], sel: Any,
                L: int, mask_g: torch.Tensor) -> torch.Tensor:
        """Run the decoder layers on the step's hidden states ``x`` ``(B, t, hidden)``, writing
        each layer's keys/values at ``write`` (a slice pair, or row/slot index tensors) and
        attending over the first ``L`` slots of streams ``sel``."""
        B, t, _ = x.shape
        D = self.head_dim
        cos, sin = self._rope(qpos)
        cos, sin = cos[:, None], sin[:, None]  # (B, 1, t, D)
        by_slice = isinstance(write[1], slice)
        for li, layer in enumerate(self.layers):
            att = layer.self_attn
            h = layer.input_layernorm(x)
            qs = att.q_proj(h).view(B, t, self.n_heads, D).transpose(1, 2)
            ks = att.k_proj(h).view(B, t, self.n_kv, D).transpose(1, 2)
            vs = att.v_proj(h).view(B, t, self.n_kv, D).transpose(1, 2)
            qs = qs * cos + _rotate_half(qs) * sin
            ks = ks * cos + _rotate_half(ks) * sin
            kl, vl = self.k[li], self.v[li]  # (n, n_kv, S, D)
            if by_slice:
                kl[write[0], :, write[1]] = ks
                vl[write[0], :, write[1]] = vs
            else:
                kl[write[0], :, write[1]] = ks.transpose(1, 2)  # index result (B, t, n_kv, D)
                vl[write[0], :, write[1]] = vs.transpose(1, 2)
            o = self._attend(qs, kl[sel, :, :L], vl[sel, :, :L], mask_g)
            x = x + att.o_proj(o.transpose(1, 2).reshape(B, t, self.n_heads * D))
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        return x

    def _attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask_g: torch.Tensor
    ) -> torch.Tensor:
        """Masked attention of ``q`` ``(B, H, t, D)`` over the cache ``k, v`` ``(B, H_kv, L, D)``
        without expanding the key/value heads: two batched matmuls per layer (the decode step is
        memory-bound on reading the cache once)."""
        B, H, t, D = q.shape
        qg = q.reshape(B, self.n_kv, (H // self.n_kv) * t, D)
        scores = torch.matmul(qg, k.transpose(-1, -2)).float() * self.scaling
        scores.masked_fill_(~mask_g, float("-inf"))
        p = torch.softmax(scores, dim=-1).to(v.dtype)
        return torch.matmul(p, v).reshape(B, H, t, D)


@torch.inference_mode()
def full_action_logits(
    model: TimingLM, input_ids: torch.Tensor, positions: Any = None
) -> torch.Tensor:
    """Reference: decide-head logits from a full forward pass over ``input_ids`` ``(B, T)``
    (sliding-window mask), at ``positions`` (indices into T; default all) -> ``(B, P, 3)``."""
    out = model(input_ids)
    lg = out.action_logits.float()
    return lg if positions is None else lg[:, positions]
