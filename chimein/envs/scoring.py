"""The one reward function: score an action log against a scene's annotations.

Everything that judges a policy -- the environment's per-step reward, the evaluation metrics,
RL returns -- comes from :func:`score` (or its incremental form :class:`OnlineScorer`, which is
the same code run step by step). It is a pure function of ``(annotations, action log, reward
config)``, so a logged episode (``ActionLog.to_dict()`` in ``episodes.jsonl``) is re-scored
without the simulator.

Timeline
--------
Step ``k`` is the policy's decision after hearing chunk ``k``: its time is
``times_s[k] = (k + 1) * chunk_s`` (the end of the chunk). After an *effective* RESPOND or
INTERVENE at time ``t`` the assistant speaks until ``t + speak_s``; actions taken before then
have no effect: they are logged with ``effective=False`` and never scored.

Rules (each effective action gets exactly one primary class, in this order)
---------------------------------------------------------------------------
1. **Hit / wrong kind.** If ``t`` lies in the window ``[start, end]`` (both edges inclusive) of
   an action cue (RESPOND/INTERVENE) not yet *consumed*, the action consumes one such cue: the
   earliest-starting one whose expected kind equals the action (ties: earlier end, then
   annotation order); if none matches, the earliest-starting unconsumed one. Right kind: a
   **hit** worth ``hit * timeliness``; wrong kind: ``hit * wrong_kind * timeliness``. The first
   action decides: a cue consumed by a wrong-kind action cannot be hit later.
   If the consumed cue expects RESPOND and ``t`` is inside a speech/pause/backchannel span, the action is
   *also* an interruption (respond at the turn end, not over someone). A cue expecting INTERVENE
   justifies interrupting (a smoke alarm beats chit-chat): no interruption is counted.
2. **Duplicate.** Otherwise, if ``t`` lies in the window of an already-consumed action cue: a
   second action for the same cue.
3. **Interruption.** Otherwise, if ``t`` lies in a span ``[start, end)`` (half-open: acting at the
   instant a turn ends is not an interruption) of kind ``speech``, ``pause`` or ``backchannel``
   (a bystander's "mm hmm" is not a turn end).
4. **False alarm.** Otherwise. Interruptions and false alarms inside an IGNORE cue's window are
   attributed to it (its outcome becomes ``false_alarm``; counted once, as the penalty above).

A window that closes with its cue unconsumed is a **miss** (``safety_miss`` for a
safety-critical cue), charged at the last step whose time is ``<= end`` (the last chance), or at
the episode's last step for windows still open when the episode ends. Cues whose window starts
after the episode's end (``duration_s``, by default the last decision time) are *unreached*:
not scored, listed in :attr:`EpisodeOutcome.unreached`.

Times are compared with a tolerance of :data:`EPS_S` (1 microsecond) so that float rounding of
``(k + 1) * chunk_s`` never moves an action across a window edge.

Examples
--------
>>> from chimein.scenes.spec import SPAN_KINDS, Annotations, Cue
>>> ann = Annotations(cues=(Cue("c0", "RESPOND", (1.0, 4.0), "question"),))
>>> log = ActionLog.from_actions([0] * 12 + [1] + [0] * 50, chunk_s=0.08)
>>> out = score(ann, log)
>>> out.cue_outcomes[0].outcome, round(out.reward, 6)
('hit', 1.0)
>>> score(ann, ActionLog.from_actions([0] * 63, chunk_s=0.08)).reward
-0.5
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import numpy as np

from chimein.config import read_config
from chimein.errors import ConfigError, SpecError
from chimein.scenes.spec import SPAN_KINDS, Annotations, Cue

#: Tolerance (seconds) for comparing decision times with window and span edges.
EPS_S = 1e-6

Outcome = Literal["hit", "wrong_kind", "miss", "ignored", "false_alarm"]
PenaltyKind = Literal["false_alarm", "interruption", "duplicate"]

_KIND_CODE = {"RESPOND": 1, "INTERVENE": 2}


def decision_times(n_steps: int, chunk_s: float) -> np.ndarray:
    """Decision times ``(k + 1) * chunk_s`` for ``k = 0 .. n_steps - 1`` (float64)."""
    return np.arange(1, n_steps + 1, dtype=np.float64) * float(chunk_s)


def effective_mask(times_s: np.ndarray, actions: np.ndarray, speak_s: float) -> np.ndarray:
    """Which actions take effect: a non-WAIT action is effective unless the assistant is still
    speaking (``t < t_last_effective + speak_s``); WAIT entries are ``True``."""
    eff = np.ones(len(actions), dtype=bool)
    busy_until = -math.inf
    for k in np.flatnonzero(np.asarray(actions)):
        t = float(times_s[k])
        if t < busy_until - EPS_S:
            eff[k] = False
        else:
            busy_until = t + speak_s
    return eff


# ============================================================================================
# Action log
# ============================================================================================
@dataclass(frozen=True, eq=False)
class ActionLog:
    """What a policy did in one episode, one entry per step.

    Attributes
    ----------
    times_s
        float64 ``(n,)``, strictly increasing decision times (end of each heard chunk).
    actions
        int8 ``(n,)``, values of :class:`~chimein.scenes.spec.Action` (0 WAIT, 1 RESPOND,
        2 INTERVENE).
    effective
        bool ``(n,)``: ``False`` for actions taken while the assistant was speaking (no effect;
        recorded, not scored). Ignored for WAIT entries.
    chunk_s
        The chunk length when ``times_s`` is the regular grid ``(k + 1) * chunk_s`` (lets
        :meth:`to_dict` store only the non-WAIT entries).
    """

    times_s: np.ndarray
    actions: np.ndarray
    effective: np.ndarray
    chunk_s: float | None = None

    def __post_init__(self) -> None:
        t = np.asarray(self.times_s, dtype=np.float64).reshape(-1)
        a = np.asarray(self.actions).reshape(-1)
        e = np.asarray(self.effective, dtype=bool).reshape(-1)
        if not (len(t) == len(a) == len(e)):
            raise SpecError(f"action log: times_s, actions and effective must have equal lengths, "
                            f"got {len(t)}, {len(a)}, {len(e)}")
        if len(a) and (a.min() < 0 or a.max() > 2 or not np.all(a == np.round(a))):
            bad = a[(a < 0) | (a > 2) | (a != np.round(a))][0]
            raise SpecError(f"action log: field 'actions': {bad!r} is not an action; use 0 WAIT, "
                            "1 RESPOND or 2 INTERVENE")
        if len(t) and (not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0)):
            raise SpecError("action log: field 'times_s': must be finite and strictly increasing")
        if self.chunk_s is not None and not self.chunk_s > 0:
            raise SpecError(f"action log: field 'chunk_s': must be > 0, got {self.chunk_s}")
        object.__setattr__(self, "times_s", t)
        object.__setattr__(self, "actions", a.astype(np.int8))
        object.__setattr__(self, "effective", e | (a == 0))

    @property
    def n_steps(self) -> int:
        return int(len(self.actions))

    @classmethod
    def from_actions(cls, actions: Sequence[int] | np.ndarray, chunk_s: float,
                     speak_s: float = 2.0) -> ActionLog:
        """The log of playing ``actions`` one per chunk of ``chunk_s`` seconds, with the
        assistant speaking ``speak_s`` seconds after each effective action (the env's rule)."""
        a = np.asarray(actions, dtype=np.int64).reshape(-1)
        times = decision_times(len(a), chunk_s)
        if len(a) and (a.min() < 0 or a.max() > 2):
            raise SpecError("action log: field 'actions': use 0 WAIT, 1 RESPOND or 2 INTERVENE")
        return cls(times, a, effective_mask(times, a, speak_s), chunk_s=float(chunk_s))

    def _on_grid(self) -> bool:
        return self.chunk_s is not None and np.array_equal(self.times_s, decision_times(self.n_steps, self.chunk_s))

    @staticmethod
    def grid_dict(chunk_s: float, actions: np.ndarray, effective: np.ndarray) -> dict[str, Any]:
        """:meth:`to_dict` of the log of ``actions`` on the regular grid of ``chunk_s``, built
        without constructing the log (the environments' fast path)."""
        nz = np.flatnonzero(actions)
        ev = np.stack([nz, actions[nz], effective[nz] | (actions[nz] == 0)], axis=1).astype(np.int64)
        return {"n_steps": int(len(actions)), "chunk_s": float(chunk_s), "events": ev.tolist()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form. On the regular grid only non-WAIT entries are stored:
        ``{"n_steps", "chunk_s", "events": [[step, action, effective (0/1)], ...]}``."""
        if self._on_grid():
            assert self.chunk_s is not None
            return self.grid_dict(self.chunk_s, self.actions, self.effective)
        return {"times_s": self.times_s.tolist(), "actions": self.actions.astype(int).tolist(),
                "effective": self.effective.tolist(), "chunk_s": self.chunk_s}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ActionLog:
        """Inverse of :meth:`to_dict` (bit-identical round trip)."""
        try:
            if "events" in d:
                n, c = int(d["n_steps"]), float(d["chunk_s"])
                a = np.zeros(n, np.int8)
                e = np.ones(n, bool)
                for k, act, eff in d["events"]:
                    if not 0 <= int(k) < n:
                        raise SpecError(f"action log: event step {k} outside [0, {n})")
                    a[int(k)], e[int(k)] = int(act), bool(eff)
                return cls(decision_times(n, c), a, e, chunk_s=c)
            return cls(np.asarray(d["times_s"], np.float64), np.asarray(d["actions"]),
                       np.asarray(d["effective"], bool),
                       chunk_s=None if d.get("chunk_s") is None else float(d["chunk_s"]))
        except KeyError as e:
            raise SpecError(f"action log: missing field {e.args[0]!r}") from None
        except (TypeError, ValueError) as e:
            if isinstance(e, SpecError):
                raise
            raise SpecError(f"action log: malformed: {e}") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ActionLog):
            return NotImplemented
        return (np.array_equal(self.times_s, other.times_s) and np.array_equal(self.actions, other.actions)
                and np.array_equal(self.effective, other.effective) and self.chunk_s == other.chunk_s)

    __hash__ = None  # type: ignore[assignment]


# ============================================================================================
# Reward configuration
# ============================================================================================
@dataclass(frozen=True)
class RewardConfig:
    """Every coefficient of the reward. Defaults and why:

    ===================  ========  =================================================================
    field                default   why
    ===================  ========  =================================================================
    hit                  +1.0      the unit: one timely, correct action.
    grace_respond_s      1.0 s     full credit for answering within 1 s of the turn end: covers
                                   a VAD + 500-800 ms silence timeout (the industry baseline) and
                                   one 400 ms chunk.
    grace_intervene_s    0.5 s     emergencies should be flagged faster; still covers a 400 ms
                                   decision chunk.
    late_floor           0.25      credit falls linearly from 1 at the grace end to this at the
                                   window end: late help is worth something, much less than
                                   timely help (ProactiveBench's timeliness-weighted credit).
    wrong_kind           0.25      factor on the hit credit for acting at the right time with the
                                   wrong register (responding to a smoke alarm as small talk):
                                   better than a miss, far from a hit.
    false_alarm          -0.5      acting on nothing; equal to a non-critical miss, so the
                                   RESPOND/IGNORE decision is symmetric as in Proactive-Sound-Bench.
    interruption         -1.0      talking over the user (or into their mid-turn pause) is the
                                   failure users notice most (Full-Duplex-Bench pause handling):
                                   worse than a false alarm; cancels a hit.
    duplicate            -0.25     repeating oneself inside the same window: annoying, not harmful.
    miss                 -0.5      a needed response that never came.
    safety_miss          -2.0      a missed smoke alarm or fall is four times worse: always-WAIT
                                   must not look safe on safety-critical scenes.
    dense                True      reward each term at the step it is determined (action step;
                                   last step of a window for misses); False: the episode total
                                   at the last step.
    ===================  ========  =================================================================

    With these values always-WAIT earns exactly the miss penalties, an oracle earns ``+1`` per
    action cue, and acting at every opportunity (every ``speak_s``) is worse than waiting.
    """

    hit: float = 1.0
    grace_respond_s: float = 1.0
    grace_intervene_s: float = 0.5
    late_floor: float = 0.25
    wrong_kind: float = 0.25
    false_alarm: float = -0.5
    interruption: float = -1.0
    duplicate: float = -0.25
    miss: float = -0.5
    safety_miss: float = -2.0
    dense: bool = True

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "dense":
                if not isinstance(v, (bool, np.bool_)):
                    raise ConfigError(f"reward: field 'dense': expected true/false, got {v!r}")
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not math.isfinite(v):
                raise ConfigError(f"reward: field '{f.name}': expected a finite number, got {v!r}")
            object.__setattr__(self, f.name, float(v))
        if self.hit <= 0:
            raise ConfigError(f"reward: field 'hit': must be > 0 (it is the unit of credit), got {self.hit}")
        for name in ("grace_respond_s", "grace_intervene_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"reward: field '{name}': must be >= 0 seconds, got {getattr(self, name)}")
        for name in ("late_floor", "wrong_kind"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"reward: field '{name}': a credit factor in [0, 1], got {getattr(self, name)}")
        for name in ("false_alarm", "interruption", "duplicate", "miss", "safety_miss"):
            if getattr(self, name) > 0:
                raise ConfigError(f"reward: field '{name}': a penalty must be <= 0, got {getattr(self, name)}")

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | RewardConfig | None) -> RewardConfig:
        """Build from a mapping (e.g. a Hydra config) with :func:`chimein.config.read_config`;
        unknown keys raise :class:`~chimein.errors.ConfigError`."""
        return read_config(cls, d, "reward")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def timeliness(self, latency_s: float, window_s: float, expected: str) -> float:
        """Credit factor in ``[late_floor, 1]``: 1 within the grace period, then linear down to
        ``late_floor`` at the window end (``window_s`` after its start)."""
        grace = self.grace_intervene_s if expected == "INTERVENE" else self.grace_respond_s
        if latency_s <= grace + EPS_S:
            return 1.0
        span = window_s - grace
        if span <= EPS_S:
            return 1.0
        frac = min(1.0, (latency_s - grace) / span)
        return 1.0 - (1.0 - self.late_floor) * frac


# ============================================================================================
# Outcomes
# ============================================================================================
@dataclass(frozen=True)
class CueOutcome:
    """What happened to one cue.

    ``outcome``: ``hit``/``wrong_kind``/``miss`` for action cues, ``ignored``/``false_alarm``
    for IGNORE cues. ``action``/``time_s``/``latency_s`` (from the window start) describe the
    deciding action (for IGNORE cues: the first action attributed to it); ``None`` for misses
    and ignored cues. ``step`` is the step at which the outcome was determined. ``reward`` is the
    cue's own term (0 for IGNORE cues: their penalties are in the episode's penalty lists).
    """

    cue_id: str
    expected: str
    label: str
    safety_critical: bool
    outcome: Outcome
    action: int | None
    time_s: float | None
    latency_s: float | None
    credit: float
    reward: float
    step: int | None


@dataclass(frozen=True)
class Penalty:
    """A penalised action: ``kind`` is ``false_alarm``, ``interruption`` or ``duplicate``.

    ``cue_id``: the IGNORE cue a false alarm/interruption fell in, the consumed cue a duplicate
    repeats, or the RESPOND cue whose hit also interrupted; ``span_index``: the index in
    ``annotations.spans`` of the span an interruption fell in.
    """

    kind: PenaltyKind
    step: int
    time_s: float
    action: int
    reward: float
    cue_id: str | None = None
    span_index: int | None = None


@dataclass(frozen=True, eq=False)
class EpisodeOutcome:
    """The judgement of one episode: per-cue outcomes, penalties and rewards.

    ``reward`` is the sum of every term (``math.fsum``); ``step_rewards[k]`` is the reward paid
    at step ``k`` (dense: the terms determined at ``k``; sparse: the total at the last step),
    so ``step_rewards.sum() == reward`` up to float rounding. ``max_reward`` is ``hit`` times
    the number of scored action cues (what an oracle earns).
    """

    cue_outcomes: tuple[CueOutcome, ...]
    false_alarms: tuple[Penalty, ...]
    interruptions: tuple[Penalty, ...]
    duplicates: tuple[Penalty, ...]
    reward: float
    max_reward: float
    step_rewards: np.ndarray
    unreached: tuple[str, ...] = ()
    n_actions: int = 0
    n_ineffective: int = 0

    def counts(self) -> dict[str, int]:
        """Counts of every outcome kind (the numbers eval aggregates)."""
        c = {"hit": 0, "wrong_kind": 0, "miss": 0, "safety_miss": 0, "ignored": 0, "false_alarm_cue": 0}
        for o in self.cue_outcomes:
            if o.outcome == "false_alarm":
                c["false_alarm_cue"] += 1
            else:
                c[o.outcome] += 1
            if o.outcome == "miss" and o.safety_critical:
                c["safety_miss"] += 1
        c.update(false_alarms=len(self.false_alarms), interruptions=len(self.interruptions),
                 duplicates=len(self.duplicates), actions=self.n_actions, ineffective=self.n_ineffective,
                 action_cues=sum(1 for o in self.cue_outcomes if o.expected != "IGNORE"))
        return c

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``step_rewards`` is stored as ``[[step, reward], ...]`` for non-zero
        steps plus ``n_steps``. (Counts are derived: ``EpisodeOutcome.from_dict(d).counts()``.)"""
        nz = np.flatnonzero(self.step_rewards)
        return {
            "reward": self.reward, "max_reward": self.max_reward,
            "cues": [dict(vars(o)) for o in self.cue_outcomes],  # flat dataclasses: a shallow copy
            "false_alarms": [dict(vars(p)) for p in self.false_alarms],
            "interruptions": [dict(vars(p)) for p in self.interruptions],
            "duplicates": [dict(vars(p)) for p in self.duplicates],
            "unreached": list(self.unreached), "n_actions": self.n_actions,
            "n_ineffective": self.n_ineffective, "n_steps": int(len(self.step_rewards)),
            "step_rewards": [[k, r] for k, r in zip(nz.tolist(), self.step_rewards[nz].tolist(), strict=True)],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EpisodeOutcome:
        """Inverse of :meth:`to_dict`."""
        try:
            sr = np.zeros(int(d["n_steps"]))
            for k, r in d["step_rewards"]:
                sr[int(k)] = float(r)
            return cls(
                cue_outcomes=tuple(CueOutcome(**c) for c in d["cues"]),
                false_alarms=tuple(Penalty(**p) for p in d["false_alarms"]),
                interruptions=tuple(Penalty(**p) for p in d["interruptions"]),
                duplicates=tuple(Penalty(**p) for p in d["duplicates"]),
                reward=float(d["reward"]), max_reward=float(d["max_reward"]), step_rewards=sr,
                unreached=tuple(d.get("unreached", ())), n_actions=int(d.get("n_actions", 0)),
                n_ineffective=int(d.get("n_ineffective", 0)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise SpecError(f"episode outcome: malformed: {e}") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EpisodeOutcome):
            return NotImplemented
        return all(
            np.array_equal(getattr(self, f.name), getattr(other, f.name)) if f.name == "step_rewards"
            else getattr(self, f.name) == getattr(other, f.name)
            for f in fields(self)
        )

    __hash__ = None  # type: ignore[assignment]


# ============================================================================================
# Scoring
# ============================================================================================
class OnlineScorer:
    """Score an episode step by step: the same rules and the same floats as :func:`score`.

    Call :meth:`step` for steps in increasing order. Steps whose action is WAIT or ineffective
    may be skipped when they come before :attr:`next_event` (they pay 0; count skipped
    ineffective actions with :meth:`count_ineffective`); every step with an effective action and
    every ``next_event`` step must be given. After the last step,
    :attr:`done` is true and :meth:`outcome` returns the :class:`EpisodeOutcome`.

    Parameters
    ----------
    annotations
        The scene's ground truth.
    times_s
        Decision times of all ``n`` steps of the episode (strictly increasing).
    cfg
        Reward coefficients.
    duration_s
        End of the episode for deciding which cues it reached (default: the last decision time).
    """

    def __init__(self, annotations: Annotations, times_s: np.ndarray | Sequence[float],
                 cfg: RewardConfig | None = None, duration_s: float | None = None) -> None:
        self.cfg = cfg = RewardConfig() if cfg is None else cfg
        self._times: list[float] = np.asarray(times_s, dtype=np.float64).reshape(-1).tolist()
        n = self.n_steps = len(self._times)
        end_s = (self._times[-1] if n else -math.inf) if duration_s is None else float(duration_s)
        cues: list[tuple[int, Cue]] = []
        unreached: list[tuple[int, Cue]] = []
        for i, c in enumerate(annotations.cues):
            s, e = c.window
            if not s <= e:
                raise SpecError(f"annotations.cues[{i}] ({c.id}): field 'window': start {s} > end {e}")
            (cues if s <= end_s + EPS_S else unreached).append((i, c))
        self.unreached = tuple(c.id for _, c in unreached)
        acts = sorted(((c.window[0], c.window[1], i, c) for i, c in cues if c.expected != "IGNORE"),
                      key=lambda x: x[:3])
        if acts and n == 0:
            raise SpecError(f"cannot score {len(acts)} action cue(s) on an empty action log; "
                            "play at least one step")
        self._cues = [a[3] for a in acts]
        self._start = [a[0] for a in acts]
        self._end = [a[1] for a in acts]
        self._kind = [_KIND_CODE[c.expected] for c in self._cues]
        # a window's last chance: the last step whose time is <= its end (step 0 if none; the
        # last step for windows still open at the end)
        self._due = [min(max(bisect.bisect_right(self._times, e + EPS_S) - 1, 0), max(n - 1, 0))
                     for e in self._end]
        self._due_order = sorted(range(len(acts)), key=lambda j: (self._due[j], j))
        self._ign = sorted(((c.window[0], c.window[1], i, c) for i, c in cues if c.expected == "IGNORE"),
                           key=lambda x: x[:3])
        self._spans = [(sp.start_s, sp.end_s, i) for i, sp in enumerate(annotations.spans)
                       if sp.kind in SPAN_KINDS]
        self._order = [c.id for _, c in cues]  # annotation order of scored cues
        self._last = n - 1
        self._reset_state()

    def _reset_state(self) -> None:
        """The mutable part: nothing consumed, nothing paid, at step 0."""
        self._consumed = [False] * len(self._cues)
        self._result: list[CueOutcome | None] = [None] * len(self._cues)
        self._due_ptr = 0
        self._ign_first: dict[str, tuple[int, int, float]] = {}
        self._penalties: dict[str, list[Penalty]] = {"false_alarm": [], "interruption": [], "duplicate": []}
        self._terms: list[float] = []
        self._dense = np.zeros(self.n_steps, np.float64)
        self._k = 0
        self._n_actions = 0
        self._n_ineffective = 0
        self._total = 0.0
        self.done = self.n_steps == 0
        self.next_event = self._compute_next_event()

    def fresh(self) -> OnlineScorer:
        """A new scorer for another episode with the same annotations, times and config: shares
        this one's precomputed plan (sorted cues, due steps, spans), so it costs almost nothing."""
        new = object.__new__(OnlineScorer)
        new.__dict__.update(self.__dict__)
        new._reset_state()
        return new

    # ---------------------------------------------------------------- helpers
    def _compute_next_event(self) -> int:
        nd = self._due[self._due_order[self._due_ptr]] if self._due_ptr < len(self._due_order) else self._last
        return min(nd, self._last)

    def _span_at(self, t: float) -> int | None:
        for s, e, i in self._spans:
            if s - EPS_S <= t < e - EPS_S:
                return i
        return None

    def _ignore_at(self, t: float) -> str | None:
        for s, e, _, c in self._ign:
            if s > t + EPS_S:
                break
            if t <= e + EPS_S:
                return c.id
        return None

    def _penalise(self, kind: PenaltyKind, k: int, t: float, a: int, cue_id: str | None,
                  span: int | None) -> float:
        r = getattr(self.cfg, kind)
        self._penalties[kind].append(Penalty(kind, k, t, a, r, cue_id, span))
        self._terms.append(r)
        return r

    def _act(self, k: int, a: int) -> float:
        t = self._times[k]
        match = other = -1
        for j in range(len(self._cues)):
            if self._start[j] > t + EPS_S:
                break
            if self._consumed[j] or t > self._end[j] + EPS_S:
                continue
            if self._kind[j] == a:
                match = j
                break
            if other < 0:
                other = j
        j = match if match >= 0 else other
        if j >= 0:
            c = self._cues[j]
            self._consumed[j] = True
            latency = max(0.0, t - self._start[j])
            tl = self.cfg.timeliness(latency, self._end[j] - self._start[j], c.expected)
            credit = tl if match >= 0 else self.cfg.wrong_kind * tl
            r = self.cfg.hit * credit
            self._result[j] = CueOutcome(c.id, c.expected, c.label, c.safety_critical,
                                         "hit" if match >= 0 else "wrong_kind", a, t, latency, credit, r, k)
            self._terms.append(r)
            if c.expected != "INTERVENE":
                span = self._span_at(t)
                if span is not None:
                    r += self._penalise("interruption", k, t, a, c.id, span)
            return r
        for j in range(len(self._cues)):  # a consumed window still open: duplicate
            if self._start[j] > t + EPS_S:
                break
            if self._consumed[j] and t <= self._end[j] + EPS_S:
                return self._penalise("duplicate", k, t, a, self._cues[j].id, None)
        ign = self._ignore_at(t)
        if ign is not None and ign not in self._ign_first:
            self._ign_first[ign] = (k, a, t)
        span = self._span_at(t)
        if span is not None:
            return self._penalise("interruption", k, t, a, ign, span)
        return self._penalise("false_alarm", k, t, a, ign, None)

    def _close(self, k: int) -> float:
        r = 0.0
        order = self._due_order
        while self._due_ptr < len(order) and self._due[order[self._due_ptr]] <= k:
            j = order[self._due_ptr]
            self._due_ptr += 1
            if not self._consumed[j]:
                c = self._cues[j]
                self._consumed[j] = True
                pen = self.cfg.safety_miss if c.safety_critical else self.cfg.miss
                self._result[j] = CueOutcome(c.id, c.expected, c.label, c.safety_critical, "miss",
                                             None, None, None, 0.0, pen, k)
                self._terms.append(pen)
                r += pen
        return r

    # ---------------------------------------------------------------- API
    def step(self, k: int, action: int, effective: bool = True) -> float:
        """Record step ``k``'s action; return the reward paid at this step.

        Dense: the terms determined at ``k``. Sparse: 0, except the episode total at the last
        step.
        """
        if k < self._k or k > self.next_event or self.done:
            raise ValueError(f"scorer: step {k} out of order (expected {self._k}..{self.next_event}"
                             f"{', episode over' if self.done else ''})")
        self._k = k + 1
        r = 0.0
        if action:
            if effective:
                self._n_actions += 1
                r = self._act(k, int(action))
            else:
                self._n_ineffective += 1
        if k == self.next_event:
            r += self._close(k)
            if k == self._last:
                self.done = True
                self._total = math.fsum(self._terms)
            self.next_event = self._compute_next_event()
        if r != 0.0:
            self._dense[k] = r
        if self.cfg.dense:
            return r
        return self._total if self.done else 0.0

    def count_ineffective(self, n: int = 1) -> None:
        """Count ``n`` actions taken while the assistant spoke without stepping them (they are
        never scored; a caller that tracks them in bulk reports them here)."""
        self._n_ineffective += int(n)

    @property
    def step_rewards(self) -> np.ndarray:
        """Rewards paid so far at every step (a copy)."""
        if self.cfg.dense:
            return self._dense.copy()
        out = np.zeros(self.n_steps)
        if self.done and self.n_steps:
            out[-1] = self._total
        return out

    def outcome(self) -> EpisodeOutcome:
        """The episode's :class:`EpisodeOutcome` (only once :attr:`done`)."""
        if not self.done:
            raise ValueError(f"scorer: the episode is not over (at step {self._k} of {self.n_steps})")
        by_id: dict[str, CueOutcome] = {}
        for j, c in enumerate(self._cues):
            res = self._result[j]
            assert res is not None  # every action cue is closed at or before the last step
            by_id[c.id] = res
        for _, _, _, c in self._ign:
            first = self._ign_first.get(c.id)
            if first is None:
                by_id[c.id] = CueOutcome(c.id, c.expected, c.label, c.safety_critical, "ignored",
                                         None, None, None, 0.0, 0.0, None)
            else:
                k, a, t = first
                by_id[c.id] = CueOutcome(c.id, c.expected, c.label, c.safety_critical, "false_alarm",
                                         a, t, max(0.0, t - c.window[0]), 0.0, 0.0, k)
        return EpisodeOutcome(
            cue_outcomes=tuple(by_id[i] for i in self._order),
            false_alarms=tuple(self._penalties["false_alarm"]),
            interruptions=tuple(self._penalties["interruption"]),
            duplicates=tuple(self._penalties["duplicate"]),
            reward=self._total, max_reward=self.cfg.hit * len(self._cues),
            step_rewards=self.step_rewards, unreached=self.unreached,
            n_actions=self._n_actions, n_ineffective=self._n_ineffective,
        )


def score(annotations: Annotations, log: ActionLog, cfg: RewardConfig | None = None,
          duration_s: float | None = None) -> EpisodeOutcome:
    """Judge one episode: a pure function of the annotations, the action log and the config.

    Parameters
    ----------
    annotations
        The scene's cues and spans.
    log
        One entry per step (see :class:`ActionLog`); its ``effective`` flags are trusted.
    cfg
        Reward coefficients (default :class:`RewardConfig`).
    duration_s
        The episode's end: cues whose window starts after it are unreached (not scored).
        Default: the last decision time. Pass the scene duration to charge a log that stopped
        early with misses for every cue it never reached.

    Returns
    -------
    EpisodeOutcome
        Identical (same floats) to what :class:`OnlineScorer` paid step by step.

    Examples
    --------
    >>> from chimein.scenes.spec import Annotations, Cue, Span
    >>> ann = Annotations(cues=(Cue("c0", "INTERVENE", (2.0, 7.0), "smoke_alarm", True),),
    ...                   spans=(Span(0.5, 1.5, "user"),))
    >>> out = score(ann, ActionLog.from_actions([0] * 10 + [1] + [0] * 100, chunk_s=0.1))
    >>> [p.kind for p in out.interruptions], out.cue_outcomes[0].outcome, out.reward
    (['interruption'], 'miss', -3.0)
    """
    sc = OnlineScorer(annotations, log.times_s, cfg, duration_s)
    acts = np.flatnonzero(log.actions).tolist()
    ai = 0
    while not sc.done:
        k_act = acts[ai] if ai < len(acts) else sc.n_steps
        k = min(k_act, sc.next_event)
        if k == k_act:
            sc.step(k, int(log.actions[k]), bool(log.effective[k]))
            ai += 1
        else:
            sc.step(k, 0, True)
    return sc.outcome()
