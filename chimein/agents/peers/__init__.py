"""The voice-agent industry's own turn detectors, run as chimein policies.

Each is an optional extra (pinned in ``constraints.txt``, installed by ``make test``); building
one without its extra raises a :class:`~chimein.errors.ConfigError` naming the extra. Nothing is
downloaded: the models ship inside the wheels.

- :class:`~chimein.agents.peers.smart_turn.SmartTurnPolicy` (``policy=smart-turn``, extra
  ``smart-turn``): Pipecat's audio end-of-turn stack -- its Silero VAD marks a candidate stop
  after a short silence, Smart Turn v3 (the int8 ONNX inside the ``pipecat-ai`` wheel) scores
  the turn's audio, and a silence timeout is the fallback.
- :class:`~chimein.agents.peers.ten_vad.TenVadEndpoint` (``policy=ten-vad-endpoint``, extra
  ``ten-vad``): the TEN VAD under exactly the endpointing rule of ``silero-endpoint``
  (:class:`~chimein.agents.baselines.ProbabilityEndpoint`), so the leaderboard separates
  "better VAD" from "better turn model".
"""

from __future__ import annotations

__all__ = ["require"]

from chimein.agents.peers._common import require
