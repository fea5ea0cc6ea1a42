"""``LMPolicy``: the timing LM checkpoint as a :class:`~chimein.agents.policy.Policy`.

Per decision chunk and stream it (1) turns the raw audio of the reference microphone into
codebook unit tokens with a causal, batched tokenizer
(:class:`~chimein.agents.lm.tokenizer.UnitStream`),
(2) feeds the previous action token and those unit tokens to the
:class:`~chimein.agents.lm.decoder.IncrementalDecoder` (KV cache, sliding window; all streams in
lockstep), and (3) applies the decide rule (:func:`~chimein.agents.lm.decide.decide`) to the
decide head: the LM's logits of ``<wait>``/``<respond>``/``<intervene>``, plus an optional
``logit_bias`` (prior correction: supervised training weighs the rare actions up, which shifts
the model's odds by a constant), softmaxed. Greedy by default; ``sample=True`` draws from the
distribution (at ``temperature``). The chosen action's token is fed back at the next step, so
the model hears what it did.

If the env's chunk is a multiple of the checkpoint's (e.g. 400 ms for an 80 ms model), each env
chunk is fed as several model chunks with ``<wait>`` forced on all but the last; other chunk
sizes are refused.

Examples
--------
>>> from chimein.agents.registry import make_policy          # doctest: +SKIP
>>> policy = make_policy("runs/sup/final", device="cpu")     # doctest: +SKIP
>>> policy.reset(4); actions, probs = policy.act(obs)        # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from chimein.agents.policy import BasePolicy, episode_rng
from chimein.errors import SpecError
from chimein.scenes.spec import SceneSpec

__all__ = ["LMPolicy"]


def _resolve_device(device: str | Any) -> Any:
    import torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SpecError(
            f"policy: field 'device': {device!r} requested but CUDA is not available; use device=cpu"
        )
    return dev


class LMPolicy(BasePolicy):
    """A timing-LM checkpoint driving ``n`` streams (see the module docstring).

    Parameters
    ----------
    checkpoint
        Checkpoint directory (or a loaded :class:`~chimein.agents.lm.checkpoint.Checkpoint`).
    device
        ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"``.
    dtype
        ``"float32"`` (default) or ``"bfloat16"``/``"float16"`` (GPU inference).
    sample
        Sample actions instead of taking the most probable one.
    temperature
        Softmax temperature (sampling and reported probabilities).
    seed
        Base seed of sampling. Every episode of every stream gets its own generator, from
        ``(seed, spec.seed, spec.id)`` when the spec is given (so a scene's actions do not depend
        on batching), else from ``(seed, stream, episode number)``.
    logit_bias
        Added to the three decide-head logits (WAIT, RESPOND, INTERVENE); default: the
        checkpoint's ``inference.logit_bias`` (tuned on validation scenes after training).
    act_threshold
        When set, act (the more probable of RESPOND/INTERVENE) exactly when
        ``1 - p(WAIT) >= act_threshold``, instead of the argmax (greedy mode only).
    chunk_s, sample_rate, obs_mode
        Stream format; ``chunk_s`` defaults to the checkpoint's chunk.
    """

    name = "timing-lm"
    obs_modes = ("audio",)

    def __init__(
        self,
        checkpoint: Any,
        device: str | Any = "cpu",
        dtype: str = "float32",
        sample: bool = False,
        temperature: float = 1.0,
        seed: int = 0,
        logit_bias: Sequence[float] | None = None,
        act_threshold: float | None = None,
        chunk_s: float | None = None,
        sample_rate: int | None = None,
        obs_mode: str = "audio",
    ) -> None:
        import torch

        from chimein.agents.lm.checkpoint import Checkpoint, load_checkpoint
        from chimein.agents.lm.tokenizer import AudioTokenizer

        self.device = _resolve_device(device)
        ck = (
            checkpoint
            if isinstance(checkpoint, Checkpoint)
            else load_checkpoint(checkpoint, device="cpu")
        )
        dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
        if str(dtype) not in dtypes:
            raise SpecError(
                f"policy {str(ck.path)!r}: field 'dtype': use one of {sorted(dtypes)}, got {dtype!r}"
            )
        if not (
            isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0
        ):
            raise SpecError(
                f"policy {str(ck.path)!r}: field 'temperature': must be > 0, got {temperature!r}"
            )
        if act_threshold is not None and not 0.0 < float(act_threshold) <= 1.0:
            raise SpecError(
                f"policy {str(ck.path)!r}: field 'act_threshold': must be in (0, 1], got {act_threshold}"
            )
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise SpecError(
                f"policy {str(ck.path)!r}: field 'seed': a non-negative integer, got {seed!r}"
            )
        bias = (
            ck.meta.get("inference", {}).get("logit_bias", [0.0, 0.0, 0.0])
            if logit_bias is None
            else logit_bias
        )
        bias = [float(b) for b in bias]
        if len(bias) != 3 or not all(math.isfinite(b) for b in bias):
            raise SpecError(
                f"policy {str(ck.path)!r}: field 'logit_bias': three finite numbers "
                f"(WAIT, RESPOND, INTERVENE), got {logit_bias!r}"
            )
        self.checkpoint = ck
        self.model = ck.model.to(device=self.device, dtype=dtypes[str(dtype)]).eval()
        self.tokenizer = AudioTokenizer(ck.codebook)
        self.sample = bool(sample)
        self.temperature = float(temperature)
        self.seed = int(seed)
        self.logit_bias = torch.tensor(bias, dtype=torch.float32, device=self.device)
        self.act_threshold = None if act_threshold is None else float(act_threshold)
        self.name = os.path.basename(os.path.normpath(str(ck.path))) or "timing-lm"
        self._dec: Any = None
        super().__init__(
            ck.chunk_s if chunk_s is None else chunk_s,
            ck.codebook.features.sample_rate if sample_rate is None else sample_rate,
            obs_mode,
        )

    # ---------------------------------------------------------------- format
    def _on_configure(self) -> None:
        fc = self.checkpoint.codebook.features
        where = f"policy {self.name!r}"
        if self.sample_rate != fc.sample_rate:
            raise SpecError(
                f"{where}: field 'sample_rate': the checkpoint was trained at {fc.sample_rate} Hz, "
                f"the stream is {self.sample_rate} Hz; play scenes at {fc.sample_rate} Hz"
            )
        model_chunk = round(self.checkpoint.chunk_s * self.sample_rate)
        sub = self.chunk_samples / model_chunk
        if abs(sub - round(sub)) > 1e-9 or round(sub) < 1:
            raise SpecError(
                f"{where}: field 'chunk_s': {self.chunk_s} s is not a multiple of the checkpoint's "
                f"{self.checkpoint.chunk_s} s decision chunk; use chunk_ms="
                f"{self.checkpoint.chunk_s * 1000:g} (or a multiple)"
            )
        self.substeps = int(round(sub))
        self.model_chunk = int(model_chunk)

    # ---------------------------------------------------------------- streams
    def _reset(self, n_streams: int, specs: list[SceneSpec | None]) -> None:
        import torch

        from chimein.agents.lm.decoder import IncrementalDecoder
        from chimein.agents.lm.tokenizer import BOS_ID

        upc = self.checkpoint.units_per_chunk
        self._units = self.tokenizer.stream(n_streams)
        self._dec = IncrementalDecoder(self.model, n_streams, max_step_tokens=upc + 1)
        self._prev = torch.full((n_streams,), BOS_ID, dtype=torch.long, device=self.device)
        self._episodes = [0] * n_streams
        self._rngs = [episode_rng(self.seed, i, self._episodes[i], s) for i, s in enumerate(specs)] if self.sample else []

    def _reset_stream(self, i: int, spec: SceneSpec | None) -> None:
        from chimein.agents.lm.tokenizer import BOS_ID

        self._units.reset(i)
        self._dec.reset(i)
        self._prev[i] = BOS_ID
        self._episodes[i] += 1
        if self.sample:
            self._rngs[i] = episode_rng(self.seed, i, self._episodes[i], spec)

    # ---------------------------------------------------------------- acting
    def _act(self, obs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        from chimein.agents.lm.decide import decide
        from chimein.agents.lm.decoder import action_tokens, step_tokens
        from chimein.agents.lm.tokenizer import ACTION_IDS

        audio = self._reference_audio(obs)
        n = self.n_streams
        logits = None
        for s in range(self.substeps):
            if s:  # the previous sub-chunk's (forced) action
                self._prev.fill_(ACTION_IDS[0])
            units = self._units.push(audio[:, s * self.model_chunk : (s + 1) * self.model_chunk])
            logits = self._dec.step(step_tokens(self._prev, units)).action_logits
        assert logits is not None
        actions, probs = decide(logits, self.logit_bias, self.temperature, self.sample,
                                self.act_threshold, self._rngs if self.sample else None)
        self._prev = action_tokens(actions, self.device)
        assert actions.shape == (n,)
        return actions, probs

    def __repr__(self) -> str:
        return (
            f"LMPolicy(checkpoint={str(self.checkpoint.path)!r}, device={str(self.device)!r}, "
            f"sample={self.sample}, chunk_s={self.chunk_s})"
        )
