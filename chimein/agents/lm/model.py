"""The timing language model: a small sliding-window causal transformer over audio tokens.

The network is a ``transformers`` :class:`~transformers.MistralForCausalLM` built from a config
(no download): a Llama-style decoder (RMSNorm, SwiGLU, rotary position embeddings, grouped-query
attention) whose attention is restricted to a **sliding window** of ``window`` tokens. The
window is part of the model's definition, so the three ways the model is run agree exactly:

- a full forward pass over an episode (supervised training, TRL's GRPO re-scoring) masks
  attention to the last ``window`` tokens (transformers' sliding-window causal mask);
- :class:`~chimein.agents.lm.decoder.IncrementalDecoder` keeps a ring buffer of the last
  ``window`` keys/values per layer and decodes chunk by chunk at constant cost;
- both give the same decisions (tested), for streams of any length.

Heads
-----
- **Decide head**: the LM's output at the position just before an action token, restricted to
  the three action tokens (``<wait>``, ``<respond>``, ``<intervene>``) and renormalised:
  ``p(a) = softmax(logits[ACTION_IDS])``. Supervised training applies the cross-entropy over the
  *whole vocabulary* at these positions, which drives the probability of non-action tokens
  there to ~0; so the restricted distribution and the full-vocabulary distribution that TRL's
  GRPO scores completions with agree (``log p_full(a) = log p_restricted(a) + log sum_a'
  p_full(a')``, the last term ~0; :func:`action_log_probs` returns both). RL code that samples
  actions should sample from the same distribution its trainer scores (see REFERENCE.md).
- **Value head**: :class:`ValueHead`, a small MLP on the final hidden state at the same
  positions, for actor-critic methods (zero-initialised output: a fresh head predicts 0).

Examples
--------
>>> import torch
>>> cfg = LMConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64,
...                window=16)
>>> model = TimingLM(cfg, n_units=8)
>>> ids = torch.tensor([[1, 7, 8, 4, 9, 10]])
>>> out = model(ids)
>>> out.action_logits.shape, out.values.shape
(torch.Size([1, 6, 3]), torch.Size([1, 6]))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from chimein.agents.lm.tokenizer import (
    ACTION_IDS,
    BOS_ID,
    EOS_ID,
    PAD_ID,
    vocab_tokens,
)
from chimein.config import read_config
from chimein.errors import ConfigError, SpecError

__all__ = ["LMConfig", "LMOutput", "TimingLM", "ValueHead", "action_log_probs", "build_causal_lm"]


@dataclass(frozen=True)
class LMConfig:
    """Size and attention window of the timing LM (the defaults give about 1.75M parameters
    with a 512-unit codebook; d=256, MLP 768, window 1024 gives 3.3M)."""

    hidden_size: int = 192
    """Width of the hidden state (a multiple of ``num_heads`` with an even head size)."""
    num_layers: int = 4
    """Decoder layers."""
    num_heads: int = 4
    """Attention (query) heads."""
    num_kv_heads: int = 2
    """Key/value heads (a divisor of ``num_heads``); fewer than ``num_heads`` is grouped-query
    attention, which halves the key/value cache of streaming inference."""
    intermediate_size: int = 512
    """Width of the SwiGLU MLP."""
    window: int = 768
    """Sliding attention window in tokens (768 = 20.5 s at 80 ms chunks of 2 units + 1 action
    = 3 tokens per chunk)."""
    rope_theta: float = 10000.0
    """Base of the rotary position embedding."""
    value_hidden: int = 128
    """Hidden width of the value head's MLP."""
    attention_dropout: float = 0.0
    """Dropout on attention weights during training."""

    def __post_init__(self) -> None:
        for name in (
            "hidden_size",
            "num_layers",
            "num_heads",
            "num_kv_heads",
            "intermediate_size",
            "window",
            "value_hidden",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"lm config: field '{name}': a positive integer, got {v!r}")
        if self.hidden_size % self.num_heads or (self.hidden_size // self.num_heads) % 2:
            raise ConfigError(
                f"lm config: hidden_size ({self.hidden_size}) must be a multiple of num_heads "
                f"({self.num_heads}) with an even head size"
            )
        if self.num_heads % self.num_kv_heads:
            raise ConfigError(
                f"lm config: num_heads ({self.num_heads}) must be a multiple of num_kv_heads "
                f"({self.num_kv_heads})"
            )
        if self.window < 4:
            raise ConfigError(f"lm config: field 'window': at least 4 tokens, got {self.window}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_mapping(
        cls, d: Mapping[str, Any] | LMConfig | None, where: str = "lm config"
    ) -> LMConfig:
        """Build from a mapping (Hydra config, ``chimein.json``) with
        :func:`chimein.config.read_config`; unknown keys are an error."""
        return read_config(cls, d, where)


def build_causal_lm(cfg: LMConfig, n_units: int) -> Any:
    """A freshly initialised ``MistralForCausalLM`` for a codebook of ``n_units`` (no download).

    The embedding and output matrices are tied; ``bos/eos/pad_token_id`` are the tokenizer's.
    """
    from transformers import MistralConfig, MistralForCausalLM

    hf = MistralConfig(
        vocab_size=len(vocab_tokens(n_units)),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        max_position_embeddings=1 << 16,
        sliding_window=cfg.window,
        tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": float(cfg.rope_theta)},
        attention_dropout=float(cfg.attention_dropout),
        pad_token_id=PAD_ID,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        use_cache=False,
    )
    return MistralForCausalLM(hf)


class ValueHead(nn.Module):
    """State value from the LM's final hidden state: ``Linear -> tanh -> Linear(1)``.

    The output layer starts at zero, so a fresh head predicts 0 for every state.
    """

    def __init__(self, hidden_size: int, value_hidden: int = 128) -> None:
        super().__init__()
        self.fc = nn.Linear(hidden_size, value_hidden)
        self.out = nn.Linear(value_hidden, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h`` ``(..., hidden)`` -> values ``(...)``."""
        return self.out(torch.tanh(self.fc(h))).squeeze(-1)


class LMOutput(NamedTuple):
    """What :meth:`TimingLM.forward` returns (all positions; pick the action positions)."""

    action_logits: torch.Tensor  # (B, T, 3): logits of the three action tokens
    values: torch.Tensor  # (B, T)
    hidden: torch.Tensor  # (B, T, hidden): final (normalised) hidden states
    logits: torch.Tensor | None  # (B, T, vocab) when requested


class TimingLM(nn.Module):
    """The causal LM plus its value head, as one module.

    Parameters
    ----------
    cfg
        Model size and window.
    n_units
        Codebook size (the vocabulary is specials + 3 actions + ``n_units`` units).
    lm
        An existing ``MistralForCausalLM`` (loading); a fresh one is built when None.
    value_head
        An existing :class:`ValueHead`; a fresh one when None.
    """

    def __init__(
        self, cfg: LMConfig, n_units: int, lm: Any = None, value_head: ValueHead | None = None
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_units = int(n_units)
        self.lm = lm if lm is not None else build_causal_lm(cfg, n_units)
        self.value_head = (
            value_head if value_head is not None else ValueHead(cfg.hidden_size, cfg.value_hidden)
        )
        self.register_buffer(
            "action_ids", torch.tensor(ACTION_IDS, dtype=torch.long), persistent=False
        )

    @property
    def vocab_size(self) -> int:
        return int(self.lm.config.vocab_size)

    def hidden(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Final (normalised) hidden states ``(B, T, hidden)`` under the sliding-window mask."""
        out = self.lm.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        return out.last_hidden_state

    def action_head(self, h: torch.Tensor) -> torch.Tensor:
        """Logits of the three action tokens from hidden states ``(..., hidden)`` -> ``(..., 3)``."""
        w = self.lm.lm_head.weight[self.action_ids]
        return h @ w.T

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        full_logits: bool = False,
    ) -> LMOutput:
        """Action logits and values at every position (the decision after a chunk is read at
        the position of the chunk's last unit token, i.e. just before its action token)."""
        h = self.hidden(input_ids, attention_mask)
        logits = self.lm.lm_head(h) if full_logits else None
        return LMOutput(self.action_head(h), self.value_head(h), h, logits)

    def num_parameters(self) -> int:
        """Trainable parameters (tied embeddings counted once)."""
        return sum(p.numel() for p in {id(p): p for p in self.parameters()}.values())

    # ---------------------------------------------------------------- value head IO
    def save_value_head(self, path: str | Path) -> None:
        """Write the value head to a safetensors file (atomically)."""
        from safetensors.torch import save

        from chimein.io import atomic_write_bytes, canonical_safetensors

        state = {k: v.detach().cpu().contiguous() for k, v in self.value_head.state_dict().items()}
        meta = {
            "format": "chimein-value-head",
            "hidden_size": str(self.cfg.hidden_size),
            "value_hidden": str(self.cfg.value_hidden),
        }
        atomic_write_bytes(path, canonical_safetensors(save(state, metadata=meta)))

    def load_value_head(self, path: str | Path) -> None:
        """Load weights written by :meth:`save_value_head` (shape-checked)."""
        from safetensors.torch import load_file

        p = Path(path)
        try:
            state = load_file(str(p))
        except Exception as e:
            raise SpecError(f"{p}: cannot read the value head ({e})") from None
        try:
            self.value_head.load_state_dict(state)
        except RuntimeError as e:
            raise SpecError(f"{p}: value head does not match the model config ({e})") from None


def action_log_probs(
    logits: torch.Tensor, action_ids: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities of the three actions from full-vocabulary logits ``(..., vocab)``.

    Returns ``(restricted, full)``: ``restricted`` is the decide head (softmax over the three
    action logits), ``full`` the same tokens' log-probabilities under the softmax over the whole
    vocabulary (what TRL's GRPO re-scores completions with). ``full - restricted`` is the same
    for the three actions: the log of the probability mass on action tokens.

    Examples
    --------
    >>> lg = torch.zeros(10)
    >>> r, f = action_log_probs(lg)
    >>> [round(float(v), 4) for v in r.exp()], round(float(f.exp().sum()), 4)
    ([0.3333, 0.3333, 0.3333], 0.3)
    """
    ids = torch.tensor(ACTION_IDS, device=logits.device) if action_ids is None else action_ids
    sel = logits[..., ids].float()
    restricted = torch.log_softmax(sel, dim=-1)
    full = sel - torch.logsumexp(logits.float(), dim=-1, keepdim=True)
    return restricted, full
