"""Baseline timing policies: the floor, the industry heuristics and the upper bound.

- :class:`AlwaysWait` never acts (the "silent assistant"; scores every miss).
- :class:`RandomPolicy` acts at random with a fixed per-decision rate.
- :class:`EnergyEndpoint`: an energy VAD with a spectral speech heuristic
  (:class:`~chimein.agents.vad.EnergyVAD`) plus a silence timeout after speech -> RESPOND, and
  the onset of a loud non-speech sound -> INTERVENE.
- :class:`SileroEndpoint`: the same endpointing with the Silero VAD deciding what is speech --
  the usual turn-end detector of voice agents (VAD + 500-800 ms silence timeout).
- :class:`Oracle`: reads the scene annotations and acts with the right kind at the earliest
  decision inside every RESPOND/INTERVENE window; the upper bound metrics are normalised by.

All of them are batched (one state per stream) and deterministic given their inputs and seed.

Examples
--------
>>> import numpy as np
>>> from chimein.agents.baselines import EnergyEndpoint
>>> policy = EnergyEndpoint(chunk_s=0.08)
>>> policy.reset(1)
>>> silence = {"audio": np.zeros((1, 1280, 1), np.float32)}
>>> [int(policy.act(silence)[0][0]) for _ in range(5)]
[0, 0, 0, 0, 0]
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np

from chimein.agents.policy import BasePolicy, episode_rng, one_hot
from chimein.agents.vad import EnergyVAD, SileroVAD, StreamFramer
from chimein.errors import SpecError
from chimein.scenes.spec import Action, Cue, SceneSpec

__all__ = ["AlwaysWait", "EndpointPolicy", "Endpointer", "EnergyEndpoint", "Oracle", "ProbabilityEndpoint",
           "RandomPolicy", "SileroEndpoint"]

_EPS = 1e-9


# --------------------------------------------------------------------------------------------
# Trivial policies
# --------------------------------------------------------------------------------------------
class AlwaysWait(BasePolicy):
    """Never acts: WAIT on every chunk of every stream (probabilities ``[1, 0, 0]``)."""

    name = "always-wait"

    def _reset(self, n_streams: int, specs: list[SceneSpec | None]) -> None:
        pass

    def _reset_stream(self, i: int, spec: SceneSpec | None) -> None:
        pass

    def _act(self, obs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        actions = np.zeros(self.n_streams, np.int64)
        return actions, one_hot(actions)


class RandomPolicy(BasePolicy):
    """Acts at random: each decision is RESPOND or INTERVENE with probability ``rate``.

    Parameters
    ----------
    rate : float
        Probability of acting at each decision (per chunk, so the rate per second is
        ``rate / chunk_s``: 0.02 at 80 ms is one action every 4 s on average).
    intervene_fraction : float
        Of the actions, the fraction that are INTERVENE (the rest RESPOND).
    seed : int
        Base seed. Each episode of each stream gets its own ``np.random.Generator``: from
        ``(seed, spec.seed, spec.id)`` when the episode's spec is given -- so the actions on a
        scene do not depend on batching or worker layout -- else from ``(seed, stream index,
        episode number of that stream)``.
    chunk_s, sample_rate, obs_mode
        See :class:`~chimein.agents.policy.BasePolicy`.

    Examples
    --------
    >>> import numpy as np
    >>> p = RandomPolicy(rate=0.5, seed=3)
    >>> p.reset(2)
    >>> obs = {"assistant_speaking": np.zeros(2, np.int64)}
    >>> acts = [p.act(obs)[0].tolist() for _ in range(3)]
    >>> p.reset(2)
    >>> acts == [p.act(obs)[0].tolist() for _ in range(3)]
    True
    """

    name = "random"

    def __init__(self, rate: float = 0.02, intervene_fraction: float = 0.5, seed: int = 0,
                 chunk_s: float = 0.08, sample_rate: int = 16000, obs_mode: str = "audio") -> None:
        if not 0.0 <= rate <= 1.0:
            raise SpecError(f"policy 'random': field 'rate': must be in [0, 1], got {rate}")
        if not 0.0 <= intervene_fraction <= 1.0:
            raise SpecError(f"policy 'random': field 'intervene_fraction': must be in [0, 1], "
                            f"got {intervene_fraction}")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise SpecError(f"policy 'random': field 'seed': must be a non-negative integer, got {seed!r}")
        self.rate = float(rate)
        self.intervene_fraction = float(intervene_fraction)
        self.seed = int(seed)
        super().__init__(chunk_s, sample_rate, obs_mode)
        self._probs = np.array([1.0 - self.rate, self.rate * (1.0 - self.intervene_fraction),
                                self.rate * self.intervene_fraction], np.float32)
        self._rngs: list[np.random.Generator] = []
        self._episodes: list[int] = []

    def _reset(self, n_streams: int, specs: list[SceneSpec | None]) -> None:
        self._episodes = [0] * n_streams
        self._rngs = [episode_rng(self.seed, i, self._episodes[i], s) for i, s in enumerate(specs)]

    def _reset_stream(self, i: int, spec: SceneSpec | None) -> None:
        self._episodes[i] += 1
        self._rngs[i] = episode_rng(self.seed, i, self._episodes[i], spec)

    def _act(self, obs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        u = np.array([rng.random() for rng in self._rngs])
        act_p = self.rate * self.intervene_fraction
        actions = np.where(u < act_p, int(Action.INTERVENE),
                           np.where(u < self.rate, int(Action.RESPOND), int(Action.WAIT)))
        return actions.astype(np.int64), np.tile(self._probs, (self.n_streams, 1))


# --------------------------------------------------------------------------------------------
# Endpointing
# --------------------------------------------------------------------------------------------
class Endpointer:
    """Turn and event logic shared by the endpointing baselines (vectorised over streams).

    Fed per-frame ``speech`` and ``event`` (loud non-speech) flags, it keeps per stream:

    - a **turn** opens after ``min_speech_s`` of consecutive speech frames; when the turn is
      open and no speech frame has been heard for ``silence_timeout_s``, the next decision is
      RESPOND and the turn closes (one RESPOND per turn);
    - an **event** is detected after ``min_event_s`` of consecutive event frames; the next
      decision is INTERVENE (one per event); a new event can only be detected once no event
      frame has been heard for ``event_release_s`` (so an alarm's beep pattern is one event).

    While the assistant is speaking (the env ignores actions then) nothing is emitted: a
    pending RESPOND/INTERVENE is emitted at the first decision after it stops, and a pending
    INTERVENE is dropped if the event is released first. With ``ignore_while_speaking``, speech
    frames heard while the assistant speaks count as silence (half-duplex echo guard: the
    assistant's own voice must not open a turn). INTERVENE takes precedence over RESPOND at the
    same decision; the open turn then stays pending.

    All durations are rounded up to whole frames.

    Parameters
    ----------
    frame_s : float
        Duration of one VAD frame in seconds.
    silence_timeout_s : float
        Silence after speech before RESPOND (default 700 ms, the voice-agent convention).
    min_speech_s : float
        Consecutive speech needed to open a turn (ignores clicks and blips).
    min_event_s : float
        Consecutive loud non-speech needed to detect an event.
    event_release_s : float
        Quiet time that ends an event (a beep pattern with shorter gaps stays one event).
    ignore_while_speaking : bool
        Half-duplex echo guard: speech heard while the assistant speaks counts as silence.
    """

    def __init__(self, frame_s: float, *, silence_timeout_s: float = 0.7, min_speech_s: float = 0.1,
                 min_event_s: float = 0.2, event_release_s: float = 2.0,
                 ignore_while_speaking: bool = True) -> None:
        for fld, v in (("silence_timeout_s", silence_timeout_s), ("min_speech_s", min_speech_s),
                       ("min_event_s", min_event_s), ("event_release_s", event_release_s)):
            if not (math.isfinite(v) and v >= 0):
                raise SpecError(f"endpointer: field '{fld}': must be a duration >= 0 s, got {v!r}")
        self.frame_s = float(frame_s)

        def frames(d: float) -> int:
            return max(1, math.ceil(d / self.frame_s - _EPS))

        self.silence_frames = frames(silence_timeout_s)
        self.speech_frames = frames(min_speech_s)
        self.event_frames = frames(min_event_s)
        self.release_frames = frames(event_release_s)
        self.ignore_while_speaking = bool(ignore_while_speaking)
        self.reset(0)

    def reset(self, n_streams: int) -> None:
        """Start ``n_streams`` streams with no turn and no event."""
        z = np.zeros(n_streams, np.int64)
        self._speech_run, self._silence, self._event_run, self._quiet = z.copy(), z.copy(), z.copy(), z.copy()
        self._in_turn = np.zeros(n_streams, bool)
        self._latched = np.zeros(n_streams, bool)
        self._armed = np.zeros(n_streams, bool)

    def reset_stream(self, i: int) -> None:
        """Forget the turn and event state of stream ``i``."""
        for arr in (self._speech_run, self._silence, self._event_run, self._quiet):
            arr[i] = 0
        self._in_turn[i] = self._latched[i] = self._armed[i] = False

    def step(self, speech: np.ndarray, event: np.ndarray, valid: np.ndarray,
             speaking: np.ndarray) -> np.ndarray:
        """Consume frames ``(n, J)`` of one chunk and return the chunk's actions ``(n,)``."""
        n, n_j = valid.shape
        for j in range(n_j):
            v = valid[:, j]
            sp = speech[:, j] & v
            if self.ignore_while_speaking:
                sp &= ~speaking
            ev = event[:, j] & v
            self._speech_run = np.where(v, np.where(sp, self._speech_run + 1, 0), self._speech_run)
            self._silence = np.where(v, np.where(sp, 0, self._silence + 1), self._silence)
            self._in_turn |= self._speech_run >= self.speech_frames
            self._event_run = np.where(v, np.where(ev, self._event_run + 1, 0), self._event_run)
            self._quiet = np.where(v, np.where(ev, 0, self._quiet + 1), self._quiet)
            new = (self._event_run >= self.event_frames) & ~self._latched
            self._armed |= new
            self._latched |= new
            release = self._latched & (self._quiet >= self.release_frames)
            self._latched &= ~release
            self._armed &= ~release
        intervene = self._armed & ~speaking
        respond = self._in_turn & (self._silence >= self.silence_frames) & ~speaking & ~intervene
        self._armed &= ~intervene
        self._in_turn &= ~respond
        actions = np.full(n, int(Action.WAIT), np.int64)
        actions[respond] = int(Action.RESPOND)
        actions[intervene] = int(Action.INTERVENE)
        return actions


class EndpointPolicy(BasePolicy):
    """Base of the endpointing baselines: frame the reference microphone, let a detector mark
    speech and event frames, and let an :class:`Endpointer` turn them into actions.

    Parameters
    ----------
    chunk_s, sample_rate, obs_mode
        Stream format (see :class:`~chimein.agents.policy.BasePolicy`); needs ``obs_mode="audio"``
        and reads channel 0, the reference microphone.
    endpoint_options
        The turn and event rules, keyword arguments of :class:`Endpointer`
        (``silence_timeout_s``, ``min_speech_s``, ``min_event_s``, ``event_release_s``,
        ``ignore_while_speaking``).

    Subclasses call :meth:`_start_endpointing` from ``_on_configure`` and implement
    ``_detect`` (frames -> speech and event flags) and the resets of their detectors.
    """

    obs_modes = ("audio",)

    def __init__(self, chunk_s: float, sample_rate: int, obs_mode: str,
                 endpoint_options: Mapping[str, Any]) -> None:
        self.endpoint_options: dict[str, Any] = dict(endpoint_options)
        super().__init__(chunk_s, sample_rate, obs_mode)

    def _start_endpointing(self, frame_len: int, frame_s: float) -> None:
        """Build the framer (``frame_len`` samples) and the endpointer (``frame_s`` seconds)."""
        self.framer = StreamFramer(frame_len)
        self.endpointer = Endpointer(frame_s, **self.endpoint_options)

    def _reset(self, n_streams: int, specs: list[SceneSpec | None]) -> None:
        self.framer.reset(n_streams)
        self._reset_detectors(n_streams)
        self.endpointer.reset(n_streams)

    def _reset_stream(self, i: int, spec: SceneSpec | None) -> None:
        self.framer.reset_stream(i)
        self._reset_detector_stream(i)
        self.endpointer.reset_stream(i)

    def _act(self, obs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        x = self._reference_audio(obs)
        speaking = self._assistant_speaking(obs)
        frames, valid = self.framer.push(x)
        speech, event = self._detect(frames, valid)
        actions = self.endpointer.step(speech, event, valid, speaking)
        return actions, one_hot(actions)

    @abstractmethod
    def _reset_detectors(self, n_streams: int) -> None:
        """Start the detectors' state for ``n_streams`` streams."""

    @abstractmethod
    def _reset_detector_stream(self, i: int) -> None:
        """Forget the detectors' state of stream ``i``."""

    @abstractmethod
    def _detect(self, frames: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """bool ``(n, J)`` speech and event flags of the frames ``(n, J, frame_len)``."""


class EnergyEndpoint(EndpointPolicy):
    """Energy VAD + silence timeout -> RESPOND; onset of loud non-speech -> INTERVENE.

    Speech versus non-speech comes from the spectral heuristic of
    :class:`~chimein.agents.vad.EnergyVAD` (energy above 4 kHz, narrow-peak tonality, spectral
    flatness, smoothed with hysteresis); an *event* frame is loud (``event_db`` above the
    adaptive noise floor) and not speech.

    Parameters
    ----------
    chunk_s, sample_rate, obs_mode
        Stream format, see :class:`EndpointPolicy`.
    silence_timeout_s, min_speech_s, min_event_s, event_release_s, ignore_while_speaking
        The turn and event rules, see :class:`Endpointer` (default silence timeout 700 ms, the
        voice-agent convention).
    frame_s : float
        VAD frame length (20 ms default; 10-32 ms sensible).
    **vad_options
        Thresholds of :class:`~chimein.agents.vad.EnergyVAD` (``on_db``, ``off_db``,
        ``event_db``, ``min_dbfs``, ``floor_rise_db_per_s``, ``high_max``, ``tonal_max``,
        ``flat_max``, ``speech_tau_s``, ...).
    """

    name = "energy-endpoint"

    def __init__(self, chunk_s: float = 0.08, sample_rate: int = 16000, obs_mode: str = "audio", *,
                 frame_s: float = 0.02, silence_timeout_s: float = 0.7, min_speech_s: float = 0.1,
                 min_event_s: float = 0.2, event_release_s: float = 2.0,
                 ignore_while_speaking: bool = True, **vad_options: Any) -> None:
        if not 0.002 <= frame_s <= 0.1:
            raise SpecError(f"policy 'energy-endpoint': field 'frame_s': must be in [0.002, 0.1] s, got {frame_s}")
        self.frame_s_requested = float(frame_s)
        self.vad_options = dict(vad_options)
        super().__init__(chunk_s, sample_rate, obs_mode, dict(
            silence_timeout_s=silence_timeout_s, min_speech_s=min_speech_s, min_event_s=min_event_s,
            event_release_s=event_release_s, ignore_while_speaking=ignore_while_speaking))

    def _on_configure(self) -> None:
        frame_len = max(1, round(self.frame_s_requested * self.sample_rate))
        self.frame_s = frame_len / self.sample_rate
        try:
            self.vad = EnergyVAD(self.frame_s, self.sample_rate, classify=True, **self.vad_options)
        except TypeError as e:
            raise SpecError(f"policy 'energy-endpoint': {e}; see EnergyVAD for the valid thresholds") from None
        self._start_endpointing(frame_len, self.frame_s)

    def _reset_detectors(self, n_streams: int) -> None:
        self.vad.reset(n_streams)

    def _reset_detector_stream(self, i: int) -> None:
        self.vad.reset_stream(i)

    def _detect(self, frames: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = self.vad.process(frames, valid)
        return d.speech, d.loud & ~d.speech


class ProbabilityEndpoint(EndpointPolicy):
    """A speech-probability VAD + silence timeout -> RESPOND; onset of loud non-speech -> INTERVENE.

    The endpointing rule shared by the neural-VAD baselines (Silero here, TEN VAD in
    :mod:`chimein.agents.peers`), so that their leaderboard rows differ only by the VAD. A frame
    is speech when its probability is ``>= threshold`` (then staying speech while
    ``>= neg_threshold``: Silero's own hysteresis). An *event* frame is loud (``event_db`` above
    the adaptive noise floor of an energy detector run on the same frames) and clearly not
    speech (probability ``< neg_threshold``).

    Subclasses implement :meth:`_make_vad`, returning a batched VAD with one state per stream
    (:class:`~chimein.agents.vad.SileroVAD`'s interface: ``sample_rate``, ``window``,
    ``reset(n)``, ``reset_stream(i)``, ``process(frames, valid)`` -> probabilities).

    Parameters
    ----------
    chunk_s, sample_rate, obs_mode, silence_timeout_s, ... , ignore_while_speaking
        As for :class:`EnergyEndpoint`.
    threshold : float
        Speech probability that starts speech (Silero's default 0.5).
    neg_threshold : float or None
        Probability below which speech stops (default ``threshold - 0.15``, as Silero).
    **energy_options
        Options of :class:`~chimein.agents.vad.EnergyVAD` for the loudness detector
        (``event_db``, ``on_db``, ``off_db``, ``min_dbfs``, ``floor_rise_db_per_s``, ...).
    """

    def __init__(self, chunk_s: float = 0.08, sample_rate: int = 16000, obs_mode: str = "audio", *,
                 threshold: float = 0.5, neg_threshold: float | None = None,
                 silence_timeout_s: float = 0.7, min_speech_s: float = 0.1, min_event_s: float = 0.2,
                 event_release_s: float = 2.0, ignore_while_speaking: bool = True,
                 **energy_options: Any) -> None:
        neg = threshold - 0.15 if neg_threshold is None else neg_threshold
        if not 0.0 < threshold < 1.0 or not 0.0 <= neg <= threshold:
            raise SpecError(f"policy {self.name!r}: field 'threshold': need 0 <= neg_threshold <= "
                            f"threshold < 1, got threshold={threshold}, neg_threshold={neg}")
        self.threshold, self.neg_threshold = float(threshold), float(neg)
        self.energy_options = dict(energy_options)
        super().__init__(chunk_s, sample_rate, obs_mode, dict(
            silence_timeout_s=silence_timeout_s, min_speech_s=min_speech_s, min_event_s=min_event_s,
            event_release_s=event_release_s, ignore_while_speaking=ignore_while_speaking))

    vad: Any = None

    def _on_configure(self) -> None:
        if self.vad is None or self.vad.sample_rate != self.sample_rate:
            self.vad = self._make_vad()
        frame_len = int(self.vad.window)
        frame_s = frame_len / self.sample_rate
        try:
            self.energy = EnergyVAD(frame_s, self.sample_rate, **{"classify": False, **self.energy_options})
        except TypeError as e:
            raise SpecError(f"policy {self.name!r}: {e}; see EnergyVAD for the valid options") from None
        self._start_endpointing(frame_len, frame_s)
        self._is_speech = np.zeros(0, bool)

    def _reset_detectors(self, n_streams: int) -> None:
        self.vad.reset(n_streams)
        self.energy.reset(n_streams)
        self._is_speech = np.zeros(n_streams, bool)

    def _reset_detector_stream(self, i: int) -> None:
        self.vad.reset_stream(i)
        self.energy.reset_stream(i)
        self._is_speech[i] = False

    def _detect(self, frames: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probs = self.vad.process(frames, valid)
        d = self.energy.process(frames, valid)
        speech = np.zeros(valid.shape, bool)
        for j in range(valid.shape[1]):
            v = valid[:, j]
            p = np.nan_to_num(probs[:, j], nan=0.0)
            now = np.where(self._is_speech, p >= self.neg_threshold, p >= self.threshold)
            self._is_speech = np.where(v, now, self._is_speech)
            speech[:, j] = v & now
        event = d.loud & ~speech & (np.nan_to_num(probs, nan=1.0) < self.neg_threshold)
        return speech, event

    @abstractmethod
    def _make_vad(self) -> Any:
        """A new VAD for ``self.sample_rate`` (raising a clear error for a rate it cannot run at)."""


class SileroEndpoint(ProbabilityEndpoint):
    """Silero VAD + silence timeout -> RESPOND; onset of loud non-speech -> INTERVENE.

    :class:`ProbabilityEndpoint` with the 32 ms windows of the Silero VAD; the model is the JIT
    file shipped inside the ``silero-vad`` wheel (no download); torch is imported when this
    policy is built. Parameters as for :class:`ProbabilityEndpoint`.
    """

    name = "silero-endpoint"

    def _make_vad(self) -> SileroVAD:
        return SileroVAD(self.sample_rate)


# --------------------------------------------------------------------------------------------
# Oracle
# --------------------------------------------------------------------------------------------
class Oracle(BasePolicy):
    """Acts from the annotations: the right kind at the earliest decision in every window.

    The scene specs must be given to :meth:`reset` / :meth:`reset_stream`. At each decision
    time ``t = (k + 1) * chunk_s`` (after chunk ``k``) the oracle considers the RESPOND and
    INTERVENE cues it has not acted on whose window contains ``t`` (``start_s <= t <= end_s``)
    and acts on the one whose window ends first (earliest deadline; safety-critical first on
    ties), provided it last acted at least ``speak_s`` ago and the observation does not say
    the assistant is still speaking (the env ignores actions then). An isolated cue is thus
    answered at the first chunk end ``>= start_s``; close windows are served in deadline order
    so as few as possible are lost. It never acts outside a window, and acts once per cue.

    Parameters
    ----------
    speak_s : float
        How long the assistant talks after an action, i.e. the minimum spacing between two
        actions (default 2.0 s; set it to the env's assistant speaking time).
    chunk_s, sample_rate, obs_mode
        See :class:`~chimein.agents.policy.BasePolicy`; any observation mode works.

    Examples
    --------
    >>> import numpy as np
    >>> from chimein.scenes.spec import Annotations, Cue, Mics, Room, SceneSpec
    >>> cue = Cue(id="c0", expected="RESPOND", window=(0.5, 2.0), label="question")
    >>> spec = SceneSpec(id="s", seed=0, duration_s=3.0, room=Room(dims=(4.0, 3.0, 2.5)),
    ...                  mics=Mics(positions=((2.0, 1.5, 1.2),)), sources=(),
    ...                  annotations=Annotations(cues=(cue,)))
    >>> oracle = Oracle(chunk_s=0.1)
    >>> oracle.reset(1, [spec])
    >>> [int(oracle.act({"assistant_speaking": np.zeros(1)})[0][0]) for _ in range(6)]
    [0, 0, 0, 0, 1, 0]
    """

    name = "oracle"

    def __init__(self, speak_s: float = 2.0, chunk_s: float = 0.08, sample_rate: int = 16000,
                 obs_mode: str = "audio") -> None:
        if not (math.isfinite(speak_s) and speak_s >= 0):
            raise SpecError(f"policy 'oracle': field 'speak_s': must be >= 0 s, got {speak_s!r}")
        self.speak_s = float(speak_s)
        super().__init__(chunk_s, sample_rate, obs_mode)
        self._cues: list[list[Cue]] = []
        self._done: list[np.ndarray] = []
        self._step = np.zeros(0, np.int64)
        self._last = np.zeros(0)

    def _load(self, i: int, spec: SceneSpec | None) -> None:
        if spec is None:
            raise SpecError("policy 'oracle': needs the scene spec of every stream; pass specs to "
                            f"reset(n, specs) / reset_stream(i, spec) (stream {i} got None)")
        if not isinstance(spec, SceneSpec):
            raise SpecError(f"policy 'oracle': stream {i}: expected a SceneSpec, got {type(spec).__name__}")
        self._cues[i] = list(spec.annotations.action_cues)
        self._done[i] = np.zeros(len(self._cues[i]), bool)
        self._step[i] = 0
        self._last[i] = -math.inf

    def _reset(self, n_streams: int, specs: list[SceneSpec | None]) -> None:
        self._cues = [[] for _ in range(n_streams)]
        self._done = [np.zeros(0, bool) for _ in range(n_streams)]
        self._step = np.zeros(n_streams, np.int64)
        self._last = np.full(n_streams, -math.inf)
        for i, spec in enumerate(specs):
            self._load(i, spec)

    def _reset_stream(self, i: int, spec: SceneSpec | None) -> None:
        self._load(i, spec)

    def _act(self, obs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        speaking = self._assistant_speaking(obs)
        actions = np.zeros(self.n_streams, np.int64)
        for i in range(self.n_streams):
            self._step[i] += 1
            t = int(self._step[i]) * self.chunk_samples / self.sample_rate
            if speaking[i] or t < self._last[i] + self.speak_s - _EPS:
                continue
            best: tuple[float, int, int] | None = None
            for c_idx, cue in enumerate(self._cues[i]):
                if self._done[i][c_idx] or not (cue.start_s - _EPS <= t <= cue.end_s + _EPS):
                    continue
                key = (cue.end_s, 0 if cue.safety_critical else 1, c_idx)
                if best is None or key < best:
                    best = key
            if best is None:
                continue
            cue = self._cues[i][best[2]]
            self._done[i][best[2]] = True
            self._last[i] = t
            actions[i] = int(Action.RESPOND if cue.expected == "RESPOND" else Action.INTERVENE)
        return actions, one_hot(actions)

