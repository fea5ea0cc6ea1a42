"""Pipecat's audio end-of-turn stack (Silero VAD + Smart Turn v3), run on chimein's streams.

What voice agents built on Pipecat ship as local, audio-only turn detection, reproduced from
Pipecat's source (``pipecat-ai`` 1.14.0: ``audio/vad/vad_analyzer.py``, ``vad_controller.py``,
``audio/turn/smart_turn/base_smart_turn.py``, ``turns/user_stop/turn_analyzer_user_turn_stop_strategy.py``
with ``wait_for_transcript=False``, the realtime / audio-only mode):

1. **VAD.** Pipecat's own ``SileroVADAnalyzer`` (the ONNX model inside the ``pipecat-ai``
   wheel) scores 32 ms windows; a window is speech when its confidence is ``>= vad_confidence``
   (0.7) and the smoothed loudness is ``>= vad_min_volume`` (0.6 of -110..-10 LUFS). Speech
   *starts* after ``vad_start_s`` (0.2 s) of speech windows and *stops* after ``vad_stop_s``
   (0.2 s) of non-speech windows -- Pipecat's defaults, the values it recommends with Smart Turn.
2. **Candidate stop -> Smart Turn.** When the VAD reports a stop, Smart Turn v3
   (``smart-turn-v3.2-cpu.onnx``, int8, Whisper-tiny encoder, inside the wheel) scores the turn's
   audio: from ``pre_speech_ms`` (500 ms) plus ``vad_start_s`` before the VAD confirmed speech,
   up to now, its last ``max_duration_s`` (8 s), at 16 kHz. Probability ``> threshold`` (0.5)
   means the turn is complete: the policy RESPONDs at this decision.
3. **Incomplete -> wait.** If the user speaks again the turn goes on (the next stop is scored
   again, on the longer turn); if not, the analyzer's fallback ends the turn after
   ``stop_s`` (3 s, Pipecat's ``SmartTurnParams.stop_secs``) of silence counted from the VAD stop.

**Never intervenes.** Smart Turn cannot tell an alarm from speech and Pipecat has no rule for
sounds, so this stack, like Pipecat, only ever RESPONDs (every INTERVENE cue is a miss; a
barking dog the VAD takes for speech can still earn a false RESPOND). No rule was added.

Differences from a live Pipecat pipeline, all forced by simulation and documented here:

- **Clock.** Pipecat timestamps buffered audio with ``time.monotonic()`` on arrival; here the
  stream clock stands in for it, so results do not depend on machine speed.
- **Frames.** Each env chunk (80 ms by default) is fed as ``frame_ms`` (20 ms) transport frames,
  each stamped with its own end time, as a Pipecat transport delivers audio: the VAD then sees at
  most one 32 ms window per call (feeding 80 ms at once would let it skip a start or stop reached
  mid-chunk), and the fallback timer and buffer move in 20 ms steps. Decisions are still one per
  chunk: a turn end found in any of its frames is answered at the chunk's end.
- **Order.** As in Pipecat 1.14.0's ``LLMUserAggregator``, each frame reaches the turn analyzer
  *before* the VAD's start/stop event it caused (the VAD frames are queued behind it): the frame
  that completes a stop is appended as speech and is part of the audio Smart Turn scores; the
  frame that completes a start is appended as silence.
- **No transcript gate, no interruptions.** Audio-only mode (``wait_for_transcript=False``);
  while the assistant speaks the env ignores actions, so a turn end found then is answered at
  the first decision after it stops (as chimein's endpointers do).
- Pipecat's loguru messages are silenced (``logger.disable("pipecat")``; re-enable with
  ``loguru.logger.enable("pipecat")``).

Both models run on onnxruntime with one thread, as Pipecat configures them.

Examples
--------
>>> import numpy as np
>>> policy = SmartTurnPolicy(chunk_s=0.08)
>>> policy.reset(1)
>>> silence = {"audio": np.zeros((1, 1280, 1), np.float32)}
>>> [int(policy.act(silence)[0][0]) for _ in range(3)]
[0, 0, 0]
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chimein.agents.peers._common import require, to_int16
from chimein.agents.policy import BasePolicy, one_hot
from chimein.errors import ConfigError, SpecError
from chimein.scenes.spec import Action, SceneSpec

__all__ = ["PIPECAT_VERSION", "SmartTurnPolicy", "TurnEvent"]

#: The pipecat-ai release whose stack this reproduces (pinned in constraints.txt).
PIPECAT_VERSION = "1.14.0"
_EXTRA = "smart-turn"
_NAME = "smart-turn"
#: pipecat-ai pins soxr~=1.0, audiomentations soxr<1.0: it goes in without its own requirements.
_INSTALL = f"pip install 'chimein[smart-turn]' -c constraints.txt && pip install --no-deps pipecat-ai=={PIPECAT_VERSION}"


@dataclass(frozen=True)
class TurnEvent:
    """One thing the stack concluded on a stream: at ``t`` seconds, ``kind`` is ``"start"``
    (VAD speech start), ``"stop"`` (VAD stop; ``probability`` = Smart Turn's score, ``complete``
    its verdict) or ``"fallback"`` (silence timeout ended the turn)."""

    t: float
    kind: str
    probability: float | None = None
    complete: bool = False


def _pipecat() -> dict[str, Any]:
    """Import Pipecat's VAD and Smart Turn classes (silencing its loguru output and the
    deprecation warnings of its imports, ``audioop`` and ``importlib.resources.path``)."""
    loguru = require("loguru", _EXTRA, _NAME, _INSTALL)
    loguru.logger.disable("pipecat")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        silero = require("pipecat.audio.vad.silero", _EXTRA, _NAME, _INSTALL)
        vad = require("pipecat.audio.vad.vad_analyzer", _EXTRA, _NAME, _INSTALL)
        st = require("pipecat.audio.turn.smart_turn.local_smart_turn_v3", _EXTRA, _NAME, _INSTALL)
    return {"SileroVADAnalyzer": silero.SileroVADAnalyzer, "VADParams": vad.VADParams,
            "VADState": vad.VADState, "SmartTurn": st.LocalSmartTurnAnalyzerV3}


@dataclass
class _Stream:
    """One stream's turn state: Pipecat's VAD controller, Smart Turn analyzer buffer and stop
    strategy, on the stream clock (see the module docstring)."""

    vad: Any
    vad_state: Any
    user_speaking: bool = False
    buffer: list[tuple[float, np.ndarray]] = field(default_factory=list)
    speech_triggered: bool = False
    silence_ms: float = 0.0
    speech_start: float = 0.0
    vad_start_s: float = 0.0
    step: int = 0
    pending: bool = False
    events: list[TurnEvent] = field(default_factory=list)


class SmartTurnPolicy(BasePolicy):
    """Pipecat's Silero VAD + Smart Turn v3 end-of-turn stack as a chimein policy.

    See the module docstring for the stack and how it maps to Pipecat's source. Needs the
    ``smart-turn`` extra (``pipecat-ai``), 16 kHz audio and ``obs_mode="audio"``; reads
    channel 0, the reference microphone. Deterministic given its input (one onnxruntime thread).

    Parameters
    ----------
    chunk_s, sample_rate, obs_mode
        Stream format (see :class:`~chimein.agents.policy.BasePolicy`).
    threshold : float
        Smart Turn probability above which a turn is complete (Pipecat: 0.5).
    vad_confidence, vad_start_s, vad_stop_s, vad_min_volume : float
        Pipecat's ``VADParams`` (0.7, 0.2 s, 0.2 s, 0.6): the candidate stop comes
        ``vad_stop_s`` after the last speech window.
    stop_s : float
        Fallback: silence after the VAD stop that ends the turn anyway (Pipecat's
        ``SmartTurnParams.stop_secs``, 3 s).
    pre_speech_ms : float
        Audio kept before the confirmed speech start (``SmartTurnParams.pre_speech_ms``, 500).
    max_duration_s : float
        Longest audio Smart Turn sees (``SmartTurnParams.max_duration_secs``, 8 s).
    frame_ms : float
        Duration of the transport frames each chunk is fed as (20 ms; the chunk must hold a whole
        number of them).
    """

    name = _NAME
    obs_modes = ("audio",)

    def __init__(self, chunk_s: float = 0.08, sample_rate: int = 16000, obs_mode: str = "audio", *,
                 threshold: float = 0.5, vad_confidence: float = 0.7, vad_start_s: float = 0.2,
                 vad_stop_s: float = 0.2, vad_min_volume: float = 0.6, stop_s: float = 3.0,
                 pre_speech_ms: float = 500.0, max_duration_s: float = 8.0, frame_ms: float = 20.0) -> None:
        for fld, v, lo, hi in (("threshold", threshold, 0.0, 1.0), ("vad_confidence", vad_confidence, 0.0, 1.0),
                               ("vad_min_volume", vad_min_volume, 0.0, 1.0), ("vad_start_s", vad_start_s, 0.0, 10.0),
                               ("vad_stop_s", vad_stop_s, 0.0, 10.0), ("stop_s", stop_s, 0.0, 60.0),
                               ("pre_speech_ms", pre_speech_ms, 0.0, 10000.0),
                               ("max_duration_s", max_duration_s, 0.1, 8.0), ("frame_ms", frame_ms, 10.0, 100.0)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and lo <= v <= hi):
                raise SpecError(f"policy {_NAME!r}: field {fld!r}: must be in [{lo}, {hi}], got {v!r}")
        self.threshold = float(threshold)
        self.vad_options = {"confidence": float(vad_confidence), "start_secs": float(vad_start_s),
                            "stop_secs": float(vad_stop_s), "min_volume": float(vad_min_volume)}
        self.stop_s, self.pre_speech_ms, self.max_duration_s = float(stop_s), float(pre_speech_ms), float(max_duration_s)
        self.frame_ms = float(frame_ms)
        self._pc = _pipecat()
        self._model: Any = None
        self._streams: list[_Stream] = []
        super().__init__(chunk_s, sample_rate, obs_mode)

    # ------------------------------------------------------------------ format and streams
    def _on_configure(self) -> None:
        if self.sample_rate != 16000:
            raise ConfigError(f"policy {_NAME!r}: field 'sample_rate': Pipecat's VAD and Smart Turn run "
                              f"at 16000 Hz here, got {self.sample_rate}; configure the env with sample_rate=16000")
        self.frame_samples = int(round(self.frame_ms * self.sample_rate / 1000.0))
        if self.chunk_samples % self.frame_samples:
            raise ConfigError(f"policy {_NAME!r}: field 'frame_ms': a {self.chunk_s * 1000:g} ms chunk is not a whole "
                              f"number of {self.frame_ms:g} ms frames; pick frame_ms dividing the chunk (e.g. 20 or 40)")
        if self._model is None:
            with warnings.catch_warnings():  # importlib.resources.path, deprecated upstream
                warnings.simplefilter("ignore", DeprecationWarning)
                self._model = self._pc["SmartTurn"](sample_rate=16000, cpu_count=1)
            self._model.set_sample_rate(16000)
        self._streams = []

    def _new_stream(self) -> _Stream:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            vad = self._pc["SileroVADAnalyzer"](sample_rate=16000, params=self._pc["VADParams"](**self.vad_options))
        vad.set_sample_rate(16000)
        return _Stream(vad=vad, vad_state=self._pc["VADState"].QUIET)

    def _reset(self, n_streams: int, specs: list[SceneSpec | None]) -> None:
        self._streams = [self._new_stream() for _ in range(n_streams)]

    def _reset_stream(self, i: int, spec: SceneSpec | None) -> None:
        self._streams[i] = self._new_stream()

    @property
    def events(self) -> list[list[TurnEvent]]:
        """Per stream, what the stack concluded so far this episode (for tests and debugging)."""
        return [list(s.events) for s in self._streams]

    # ------------------------------------------------------------------ acting
    def _act(self, obs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        pcm = to_int16(self._reference_audio(obs))
        speaking = self._assistant_speaking(obs)
        actions = np.full(self.n_streams, int(Action.WAIT), np.int64)
        n_frames = self.chunk_samples // self.frame_samples
        frame_s = self.frame_samples / self.sample_rate
        for i, s in enumerate(self._streams):
            start = s.step * self.chunk_s
            s.step += 1
            frames = pcm[i].reshape(n_frames, self.frame_samples)
            for k in range(n_frames):
                if self._frame(s, frames[k], round(start + (k + 1) * frame_s, 9)):
                    s.pending = True
            if s.pending and not speaking[i]:
                actions[i] = int(Action.RESPOND)
                s.pending = False
        return actions, one_hot(actions)

    def _frame(self, s: _Stream, pcm: np.ndarray, now: float) -> bool:
        """Feed one transport frame through Pipecat's order -- VAD, then the frame to the turn
        analyzer (with the speaking state from before it), then the VAD's start/stop event;
        True when the turn is complete."""
        states = self._pc["VADState"]
        new = s.vad._run_analyzer(pcm.tobytes())  # VADAnalyzer.analyze_audio's synchronous core
        complete = False
        if self._append(s, pcm, now):  # silence fallback
            s.events.append(TurnEvent(now, "fallback", None, True))
            complete = True
        if new != s.vad_state and new not in (states.STARTING, states.STOPPING):
            s.vad_state = new
            if new == states.SPEAKING:  # VADUserStartedSpeakingFrame
                s.vad_start_s = self.vad_options["start_secs"]
                s.user_speaking = True
                s.events.append(TurnEvent(now, "start"))
            elif new == states.QUIET:  # VADUserStoppedSpeakingFrame -> analyze_end_of_turn
                s.user_speaking = False
                prob = self._score(s)
                done = prob is not None and prob > self.threshold
                s.events.append(TurnEvent(now, "stop", prob, done))
                if done:
                    self._clear(s)
                    complete = True
        return complete

    def _append(self, s: _Stream, pcm: np.ndarray, now: float) -> bool:
        """``BaseSmartTurn.append_audio`` on the stream clock; True when the fallback fires."""
        s.buffer.append((now, pcm))
        if s.user_speaking:
            s.silence_ms = 0.0
            s.speech_triggered = True
            if s.speech_start == 0.0:
                s.speech_start = now
        elif s.speech_triggered:
            s.silence_ms += 1000.0 * len(pcm) / self.sample_rate
            if s.silence_ms >= self.stop_s * 1000.0:
                self._clear(s)
                return True
        else:
            keep = self.pre_speech_ms / 1000.0 + self.stop_s + self.max_duration_s
            while s.buffer and s.buffer[0][0] < now - keep:
                s.buffer.pop(0)
        return False

    def _score(self, s: _Stream) -> float | None:
        """``BaseSmartTurn._process_speech_segment``: Smart Turn's probability that the turn is
        complete, on the buffered turn (None when the buffer is empty)."""
        if not s.buffer:
            return None
        start = s.speech_start - (self.pre_speech_ms / 1000.0 + s.vad_start_s)
        first = next((k for k, (t, _) in enumerate(s.buffer) if t >= start), 0)
        audio = np.concatenate([c for _, c in s.buffer[first:]]).astype(np.float32) / 32768.0
        audio = audio[-int(self.max_duration_s * self.sample_rate):]
        if len(audio) == 0:
            return None
        return float(self._model._predict_endpoint(audio)["probability"])

    @staticmethod
    def _clear(s: _Stream) -> None:
        """``BaseSmartTurn._clear(COMPLETE)``: the turn is over."""
        s.speech_triggered = False
        s.buffer = []
        s.speech_start = 0.0
        s.silence_ms = 0.0
