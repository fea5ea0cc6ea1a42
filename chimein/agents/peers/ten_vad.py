"""TEN VAD (the ``ten-vad`` wheel) under the endpointing rule of the Silero baseline.

TEN VAD is a small frame-level voice activity detector from the TEN framework (Agora), shipped
as a native library inside its wheel (no download). :class:`TenVAD` runs one detector per
stream on 16 ms hops (256 samples at 16 kHz) and returns speech probabilities;
:class:`TenVadEndpoint` puts them under :class:`~chimein.agents.baselines.ProbabilityEndpoint`,
the rule ``silero-endpoint`` uses (threshold 0.5 with hysteresis, 700 ms silence timeout,
loud non-speech onset -> INTERVENE), so the two rows differ only by the VAD (and its frame
length: the rule's durations round up to 16 ms frames instead of 32 ms ones).

The wheel's Linux library links against LLVM's ``libc++`` (Debian/Ubuntu package ``libc++1``,
installed by ``make``); without it building the policy raises a ConfigError saying so.

Examples
--------
>>> import numpy as np
>>> from chimein.agents.peers.ten_vad import TenVadEndpoint
>>> policy = TenVadEndpoint(chunk_s=0.08)
>>> policy.reset(2)
>>> silence = {"audio": np.zeros((2, 1280, 1), np.float32)}
>>> [int(policy.act(silence)[0][0]) for _ in range(3)]
[0, 0, 0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chimein.agents.baselines import ProbabilityEndpoint
from chimein.agents.peers._common import require, to_int16
from chimein.errors import ConfigError, SpecError

__all__ = ["TenVAD", "TenVadEndpoint"]

#: Hop (samples at 16 kHz) of the detector: 16 ms, the size TEN VAD's examples use.
HOP = 256


class TenVAD:
    """One TEN VAD detector per stream; speech probabilities of 16 ms hops.

    Parameters
    ----------
    sample_rate : int
        Must be 16000 (the model's rate).
    """

    def __init__(self, sample_rate: int = 16000) -> None:
        if sample_rate != 16000:
            raise SpecError(f"TenVAD: field 'sample_rate': TEN VAD runs at 16000 Hz, got {sample_rate}; "
                            "configure the env with sample_rate=16000")
        self._mod = require("ten_vad", "ten-vad", "ten-vad-endpoint")
        self.sample_rate = sample_rate
        self.window = HOP
        self._vads: list[Any] = []
        self._new()  # fail here, at build time, if the native library cannot load

    def _new(self) -> Any:
        try:
            return self._mod.TenVad(hop_size=HOP, threshold=0.5)
        except OSError as e:
            raise ConfigError(f"policy 'ten-vad-endpoint': the ten-vad native library did not load ({e}); "
                              "it needs LLVM's libc++ (`apt-get install libc++1`; `make test` installs it)") from e

    def reset(self, n_streams: int) -> None:
        """Fresh detectors for ``n_streams`` streams."""
        self._vads = [self._new() for _ in range(n_streams)]

    def reset_stream(self, i: int) -> None:
        """A fresh detector for stream ``i``."""
        self._vads[i] = self._new()

    def process(self, frames: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Speech probabilities float32 ``(n, J)`` of hops ``(n, J, 256)``; NaN where not ``valid``."""
        n, n_j = valid.shape
        probs = np.full((n, n_j), np.nan, np.float32)
        pcm = to_int16(frames)
        for i in range(n):
            vad = self._vads[i]
            for j in range(n_j):
                if valid[i, j]:
                    probs[i, j] = vad.process(np.ascontiguousarray(pcm[i, j]))[0]
        return probs


class TenVadEndpoint(ProbabilityEndpoint):
    """TEN VAD + silence timeout -> RESPOND; onset of loud non-speech -> INTERVENE.

    :class:`~chimein.agents.baselines.ProbabilityEndpoint` (the ``silero-endpoint`` rule and
    defaults: ``threshold`` 0.5, ``neg_threshold`` 0.35, ``silence_timeout_s`` 0.7, ...) with
    the 16 ms frames of :class:`TenVAD`. Needs the ``ten-vad`` extra.
    """

    name = "ten-vad-endpoint"

    def _make_vad(self) -> TenVAD:
        return TenVAD(self.sample_rate)
