"""Constant-cost streaming inference of the timing LM: a batched sliding-window KV cache.

Every decision step feeds each stream the tokens it has not fed yet -- the previous chunk's
action token and the new chunk's unit tokens (``<bos>`` instead of an action at a stream's
start) -- through the model's own layers, and reads the decide head at the last position.
The cost of a step does not grow with the stream.

Cache layout
------------
Per layer, keys and values live in a ring buffer of ``S = window + max_step_tokens - 1``
slots shared by all streams (they step in lockstep, so one write pointer serves them all):
``k[layer]`` is ``(n_streams, kv_heads, S, head_dim)``. ``slot_pos[b, s]`` is the position
(within stream ``b``) of the token in slot ``s``, or -1 when the slot holds nothing of the
stream's current episode. A query at position ``p`` attends to slots whose position lies in
``(p - window, p]`` -- exactly transformers' sliding-window causal mask, so the decoder
computes what a full forward pass over the whole stream computes (up to float rounding; the
tests check equal decisions and close probabilities on streams several windows long).

Positions and long streams
--------------------------
Each stream has its own positions, starting at 0 at its ``<bos>``. Keys are stored already
rotated (RoPE) at their position. Rotary attention depends only on position *differences*, so
when a stream's position passes ``rebase_at`` its cached keys are rotated back by ``delta``
(``R(-delta) R(p) k = R(p - delta) k``) and its positions shifted down: positions stay small
(float32 angles stay precise) for streams of any length, at the cost of one rotation of the
cache every ``rebase_at`` tokens.

Resetting one stream (a vector env's autoreset) marks its slots empty and restarts its
positions; the other streams are untouched.

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
>>> from chimein.agents.lm import LMConfig, TimingLM
>>> model = TimingLM(LMConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1,
...                           intermediate_size=64, window=8), n_units=8).eval()
>>> dec = StreamingDecoder(model, n_streams=2)
>>> out = dec.step(torch.tensor([[1, 7, 8], [1, 9, 10]]))
>>> out.action_logits.shape, out.values.shape
(torch.Size([2, 3]), torch.Size([2]))
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from chimein.agents.lm import TimingLM
from chimein.errors import SpecError

__all__ = ["StepOutput", "StreamingDecoder", "full_action_logits"]


class StepOutput(NamedTuple):
    """The decide head and value of every stream after a step."""

    action_logits: torch.Tensor  # (B, 3) float32
    values: torch.Tensor  # (B,) float32
    log_action_mass: torch.Tensor | None  # (B,) log sum of full-vocab probs of the actions


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class StreamingDecoder:
    """Incremental decoding of ``n_streams`` streams in lockstep (see the module docstring).

    Parameters
    ----------
    model
        The :class:`~chimein.agents.lm.TimingLM` (its weights are used in place; put it on the
        target device and dtype first).
    n_streams
        Batch size.
    max_step_tokens
        Most tokens fed to a stream in one step (sizes the ring buffer).
    rebase_at
        Position after which a stream's cache is re-rotated to small positions (>= 2 ring
        sizes).
    """

    def __init__(
        self, model: TimingLM, n_streams: int, max_step_tokens: int = 3, rebase_at: int = 1 << 14
    ) -> None:
        lm = model.lm
        cfg = lm.config
        self.model = model
        self.n = int(n_streams)
        if self.n < 1:
            raise SpecError(f"streaming decoder: n_streams must be >= 1, got {n_streams}")
        self.window = int(cfg.sliding_window)
        self.max_step = int(max_step_tokens)
        self.S = self.window + self.max_step - 1
        if int(rebase_at) < 2 * self.S:
            raise SpecError(
                f"streaming decoder: rebase_at ({rebase_at}) must be at least twice the ring "
                f"size ({self.S})"
            )
        self.rebase_at = int(rebase_at)
        self.embed = lm.model.embed_tokens
        self.layers = list(lm.model.layers)
        self.norm = lm.model.norm
        att = self.layers[0].self_attn
        self.head_dim = int(att.head_dim)
        self.n_heads = int(cfg.num_attention_heads)
        self.n_kv = int(cfg.num_key_value_heads)
        self.scaling = float(att.scaling)
        rot = lm.model.rotary_emb
        self.inv_freq = rot.inv_freq.detach().float()
        self.rope_scale = float(getattr(rot, "attention_scaling", 1.0))
        w = lm.lm_head.weight
        self.device, self.dtype = w.device, w.dtype
        self.w_act = w[model.action_ids].detach()
        self.w_all = w.detach()
        L = len(self.layers)
        self.k = torch.zeros(
            L, self.n, self.n_kv, self.S, self.head_dim, device=self.device, dtype=self.dtype
        )
        self.v = torch.zeros_like(self.k)
        self.slot_pos = torch.full((self.n, self.S), -1, dtype=torch.long, device=self.device)
        self.pos = torch.zeros(self.n, dtype=torch.long, device=self.device)
        self.ptr = 0
        self.written = 0  # tokens written since the last full reset (slots >= it are still empty)
        self.inv_freq = self.inv_freq.to(self.device)

    # ---------------------------------------------------------------- state
    def reset(self, i: int | None = None) -> None:
        """Forget stream ``i`` (every stream when None); its next token is position 0."""
        if i is None:
            self.slot_pos.fill_(-1)
            self.pos.zero_()
            self.ptr = self.written = 0
        else:
            self.slot_pos[i].fill_(-1)
            self.pos[i] = 0

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

    # ---------------------------------------------------------------- decoding
    @torch.inference_mode()
    def step(self, tokens: torch.Tensor, full_vocab: bool = False) -> StepOutput:
        """Feed ``tokens`` ``(n_streams, t)`` (``t <= max_step_tokens``) and return the decide
        head's logits at each stream's last token.

        ``full_vocab`` also returns the log of the full-vocabulary probability mass on the
        three action tokens (0 for a model trained as in :mod:`chimein.training.supervised`).
        """
        tokens = tokens.to(self.device)
        B, t = tokens.shape
        if tokens.shape[0] != self.n or not 1 <= t <= self.max_step:
            raise SpecError(
                f"streaming decoder: expected tokens of shape ({self.n}, 1..{self.max_step}), "
                f"got {tuple(tokens.shape)}"
            )
        if int(self.pos.max()) + t > self.rebase_at:
            self._rebase()
        qpos = self.pos[:, None] + torch.arange(t, device=self.device)  # (B, t)
        slots = (self.ptr + torch.arange(t, device=self.device)) % self.S
        self.slot_pos[:, slots] = qpos
        kv_len = min(self.S, self.written + t)  # attend only to slots ever written
        sp = self.slot_pos[:, None, :kv_len]
        q = qpos[:, :, None]
        mask = (sp >= 0) & (sp <= q) & (sp > q - self.window)  # (B, t, S)
        # grouped-query layout: query head h = kv * g + j reads kv head ``kv`` (as repeat_kv does);
        # rows of a kv head's query block are (j, token), so the mask repeats over j
        g = self.n_heads // self.n_kv
        mask_g = mask[:, None, None].expand(B, 1, g, t, kv_len).reshape(B, 1, g * t, kv_len)
        cos, sin = self._rope(qpos)
        cos, sin = cos[:, None], sin[:, None]  # (B, 1, t, D)
        x = self.embed(tokens)
        contiguous = self.ptr + t <= self.S
        D = self.head_dim
        for li, layer in enumerate(self.layers):
            att = layer.self_attn
            h = layer.input_layernorm(x)
            qs = att.q_proj(h).view(B, t, self.n_heads, D).transpose(1, 2)
            ks = att.k_proj(h).view(B, t, self.n_kv, D).transpose(1, 2)
            vs = att.v_proj(h).view(B, t, self.n_kv, D).transpose(1, 2)
            qs = qs * cos + _rotate_half(qs) * sin
            ks = ks * cos + _rotate_half(ks) * sin
            if contiguous:
                self.k[li, :, :, self.ptr : self.ptr + t] = ks
                self.v[li, :, :, self.ptr : self.ptr + t] = vs
            else:
                self.k[li].index_copy_(2, slots, ks)
                self.v[li].index_copy_(2, slots, vs)
            o = self._attend(qs, self.k[li, :, :, :kv_len], self.v[li, :, :, :kv_len], mask_g)
            x = x + att.o_proj(o.transpose(1, 2).reshape(B, t, self.n_heads * D))
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        self.ptr = (self.ptr + t) % self.S
        self.written += t
        self.pos += t
        h_last = self.norm(x[:, -1])
        logits = (h_last @ self.w_act.T).float()
        values = self.model.value_head(h_last).float()
        mass = None
        if full_vocab:
            full = (h_last @ self.w_all.T).float()
            mass = torch.logsumexp(logits, -1) - torch.logsumexp(full, -1)
        return StepOutput(logits, values, mass)

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

    def memory_bytes(self) -> int:
        """Bytes held by the key/value cache."""
        return int(self.k.numel() * self.k.element_size() * 2)


@torch.inference_mode()
def full_action_logits(
    model: TimingLM, input_ids: torch.Tensor, positions: Any = None
) -> torch.Tensor:
    """Reference: decide-head logits from a full forward pass over ``input_ids`` ``(B, T)``
    (sliding-window mask), at ``positions`` (indices into T; default all) -> ``(B, P, 3)``."""
    out = model(input_ids)
    lg = out.action_logits.float()
    return lg if positions is None else lg[:, positions]
