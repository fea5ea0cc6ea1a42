"""Supervised decision labels from scene annotations, in the spirit of the seed system.

The seed labels every chunk "keep silent" except the last chunk of a user turn that needs an
answer. Here a *teacher* walks the episode's decision times ``(k + 1) * chunk_s`` and acts once
per action cue (RESPOND/INTERVENE):

- its **decision point** is the first chunk end at or after the cue's window start plus a
  per-kind delay (``respond_delay_s``/``intervene_delay_s``, default 0.3 s / 0.25 s). For addressed speech
  the window starts at the end of the turn (last word); for events the window start already
  includes the class's onset delay (when the sound becomes recognisable);
- ``jitter_chunks`` (default 3): the teacher acts ``j ~ U{0..jitter_chunks}`` chunks late
  (never past the window end); the chunks it skipped carry no loss (weight 0), so the model is
  taught that acting anywhere in that stretch is right -- and, when it has not acted yet at a
  later chunk, that it still should (greedy decoding never has to recover from a missed exact
  chunk);
- ``late_rate`` (default 0): the share of cues on which the teacher hesitates longer, acting
  at a chunk drawn uniformly from its jittered decision point to the window's last chunk (no
  loss on the chunks it skipped), so the model also sees open windows whose cue it has not
  acted on past the jitter (see :attr:`LabelConfig.late_rate`);
- ``catch_up`` (default none): for the cue kinds it names, the chunks the teacher skipped are
  taught as the cue's action instead of carrying no loss, while the stream the model reads keeps
  WAIT there (DAgger-style relabelling: the window is open and nothing has been said, so acting
  now is right); with ``late_rate`` every cue gives many positive chunks instead of one (see
  :func:`catch_up`; :func:`teacher_targets` applies it);
- after acting, the assistant speaks for ``speak_s`` (the env's rule): the teacher waits, and
  a cue whose decision point falls inside that time is taken at the first chunk after it (if
  still inside its window);
- every other chunk is WAIT -- inside user turns, in mid-turn pauses, during TV speech,
  distractor sounds, IGNORE cues and silence.

Dense targets
-------------
:func:`dense_targets` says, at every decision time, whether the user is speaking, pausing inside
a turn, and whether a RESPOND, INTERVENE or IGNORE window is open. An auxiliary head trained on
them (:mod:`chimein.training.supervised`) gives the network a learning signal at every chunk
instead of one decision point per cue.

**Hard negatives.** The rare actions are weighted up in training (class balance), which by
itself teaches the model to act a little early -- at the first sound of an event rather than
when it is recognisable, or as a turn's last word fades. ``hard_wait_weight`` multiplies the
loss weight of the WAIT chunks where acting would be penalised and the model is most tempted:
inside user speech and mid-turn pauses (interruptions), inside IGNORE windows (false alarms on
TV speech and benign sounds), and between a cue's stimulus onset and its window start.

The labels are exactly the actions the teacher took, so the teacher-forced token stream
(``interleave(units, labels)``) is a stream the teacher could have produced, and the oracle
reward of those actions is the best the labels can teach (tested).

Examples
--------
>>> from chimein.scenes.spec import Annotations, Cue
>>> ann = Annotations(cues=(Cue("c0", "RESPOND", (1.0, 4.0), "question"),
...                         Cue("c1", "INTERVENE", (5.0, 10.0), "smoke alarm")))
>>> plain = LabelConfig(respond_delay_s=0.0, intervene_delay_s=0.0, jitter_chunks=0)
>>> acts, w = decision_labels(ann, n_chunks=100, chunk_s=0.08, cfg=plain)
>>> [(int(k), int(acts[k])) for k in acts.nonzero()[0]]
[(12, 1), (62, 2)]
>>> acts, w = decision_labels(ann, 100, 0.08, rng=np.random.default_rng(0))  # the shipped recipe
>>> [(int(k), int(acts[k])) for k in acts.nonzero()[0]]  # 0.3 s / 0.25 s later, jittered
[(19, 1), (67, 2)]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from chimein.config import read_config
from chimein.errors import ConfigError, SpecError
from chimein.scenes.spec import Annotations

__all__ = ["DEFAULT_DENSE_TARGETS", "DENSE_TARGETS", "LabelConfig", "catch_up", "decision_labels",
           "dense_targets", "teacher_targets"]

_EPS = 1e-6
_KIND = {"RESPOND": 1, "INTERVENE": 2}


#: The columns :func:`dense_targets` can give: speech, mid-turn pause, an open RESPOND /
#: INTERVENE / IGNORE window, and ``addressed``: inside the speech or a mid-turn pause of a turn
#: directed at the assistant (the spans' ``addressed`` flag) -- whom the talker addresses,
#: known at every chunk of the turn instead of only at its end.
DENSE_TARGETS: tuple[str, ...] = (
    "speech",
    "pause",
    "respond_window",
    "intervene_window",
    "ignore_window",
    "addressed",
)

#: The columns trained by default (:attr:`LabelConfig.dense_targets`).
DEFAULT_DENSE_TARGETS: tuple[str, ...] = DENSE_TARGETS[:5]


@dataclass(frozen=True)
class LabelConfig:
    """How the teacher acts (see the module docstring)."""

    respond_delay_s: float = 0.3
    """Seconds from a RESPOND window's start (the end of the turn) to the decision point: the
    last word has faded."""
    intervene_delay_s: float = 0.25
    """Seconds from an INTERVENE window's start to the decision point: the event is
    recognisable."""
    jitter_chunks: int = 3
    """The teacher acts up to this many chunks late (no loss on the chunks it skipped)."""
    late_rate: float = 0.0
    """Share of cues the teacher acts on late: at a chunk drawn uniformly from its jittered
    decision point to the last chunk of the cue's window, with no loss on the chunks it skipped.
    Teacher forcing otherwise shows the model every open window with the action already taken
    within ``jitter_chunks``, so after a hesitation it has only ever been taught to wait. Tried
    at 0.3 (README, ablation row 12): the policy still almost never acts late and misses as
    many cues (it does not recognise them), at a quieter operating point; not in the recipe.
    0 draws nothing (the labels of the runs before this option, bit for bit)."""
    catch_up: Sequence[str] = ()
    """Cue kinds (``RESPOND``, ``INTERVENE``) whose chunks the teacher skipped (``jitter_chunks``,
    ``late_rate``) are taught as the cue's action (weight 1) instead of carrying no loss; the
    token stream still shows WAIT there (:func:`catch_up`). Without it a cue has one positive
    chunk; with it every chunk of an open window the teacher has not acted on yet is one.
    Empty: off."""
    speak_s: float = 2.0
    """The env's ``speak_s``: after acting the teacher waits while the assistant speaks."""
    hard_wait_weight: float = 5.0
    """Loss weight of the WAIT chunks where acting would be penalised (speech, pauses, IGNORE
    windows, before a window starts)."""
    dense_targets: Sequence[str] = DEFAULT_DENSE_TARGETS
    """Columns of the auxiliary dense head's targets, from :data:`DENSE_TARGETS`."""

    def __post_init__(self) -> None:
        cols = self.dense_targets
        if (isinstance(cols, str) or not isinstance(cols, Sequence) or not cols
                or len(set(cols)) != len(cols) or any(c not in DENSE_TARGETS for c in cols)):
            raise ConfigError(
                f"labels: field 'dense_targets': distinct names from {list(DENSE_TARGETS)}, got {cols!r}"
            )
        if (
            isinstance(self.hard_wait_weight, bool)
            or not isinstance(self.hard_wait_weight, (int, float))
            or not 0 < self.hard_wait_weight <= 1000
        ):
            raise ConfigError(
                f"labels: field 'hard_wait_weight': a number in (0, 1000], got {self.hard_wait_weight!r}"
            )
        for name in ("respond_delay_s", "intervene_delay_s", "speak_s"):
            v = getattr(self, name)
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, float))
                or not math.isfinite(v)
                or not 0 <= v <= 60
            ):
                raise ConfigError(f"labels: field '{name}': seconds in [0, 60], got {v!r}")
        if (
            isinstance(self.late_rate, bool)
            or not isinstance(self.late_rate, (int, float))
            or not 0 <= self.late_rate <= 1
        ):
            raise ConfigError(f"labels: field 'late_rate': a share in [0, 1], got {self.late_rate!r}")
        kinds = self.catch_up
        if (isinstance(kinds, str) or not isinstance(kinds, Sequence) or len(set(kinds)) != len(kinds)
                or any(k not in _KIND for k in kinds)):
            raise ConfigError(
                f"labels: field 'catch_up': distinct names from {list(_KIND)} (or []), got {kinds!r}"
            )
        if (
            isinstance(self.jitter_chunks, bool)
            or not isinstance(self.jitter_chunks, int)
            or not 0 <= self.jitter_chunks <= 100
        ):
            raise ConfigError(
                f"labels: field 'jitter_chunks': an integer in [0, 100], got {self.jitter_chunks!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | LabelConfig | None) -> LabelConfig:
        """Read the ``train.labels`` config (:func:`chimein.config.read_config`)."""
        return read_config(cls, d, "labels")


def decision_labels(
    annotations: Annotations,
    n_chunks: int,
    chunk_s: float,
    cfg: LabelConfig | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's action per chunk and the loss weight of each chunk.

    Parameters
    ----------
    annotations
        The scene's cues.
    n_chunks
        Decisions in the episode (the env's ``ceil(samples / chunk_samples)``).
    chunk_s
        Chunk duration; decision ``k`` is at ``(k + 1) * chunk_s``.
    cfg
        Teacher settings.
    rng
        Draws the jitter (required when ``cfg.jitter_chunks > 0``).

    Returns
    -------
    actions : np.ndarray
        int64 ``(n_chunks,)``: 0 WAIT, 1 RESPOND, 2 INTERVENE.
    weights : np.ndarray
        float32 ``(n_chunks,)``: 1; 0 for the chunks a jittered teacher skipped;
        ``hard_wait_weight`` for WAIT chunks where acting is penalised (see the module docstring).
    """
    cfg = cfg or LabelConfig()
    if (cfg.jitter_chunks or cfg.late_rate) and rng is None:
        raise SpecError("labels: jitter_chunks > 0 or late_rate > 0 needs a random generator (rng=)")
    n = int(n_chunks)
    actions = np.zeros(n, np.int64)
    weights = np.ones(n, np.float32)
    busy_until = -math.inf
    cues = sorted(annotations.action_cues, key=lambda c: (c.window[0], c.window[1]))
    for cue in cues:
        start, end = cue.window
        delay = cfg.respond_delay_s if cue.expected == "RESPOND" else cfg.intervene_delay_s
        t_first = max(start + delay, busy_until)
        k = max(0, math.ceil((t_first - _EPS) / chunk_s) - 1)
        while k < n and (k + 1) * chunk_s < t_first - _EPS:  # float guard
            k += 1
        if k >= n or (k + 1) * chunk_s > end + _EPS or actions[k]:
            continue
        k_act = k
        if cfg.jitter_chunks:
            j = int(rng.integers(0, cfg.jitter_chunks + 1))  # type: ignore[union-attr]
            while j and (k + j >= n or (k + j + 1) * chunk_s > end + _EPS):
                j -= 1
            k_act = k + j
        if cfg.late_rate and rng.random() < cfg.late_rate:  # type: ignore[union-attr]
            k_last = min(n, math.floor((end + _EPS) / chunk_s)) - 1  # (k + 1) * chunk_s <= end
            while k_last > k_act and (k_last + 1) * chunk_s > end + _EPS:  # float guard
                k_last -= 1
            k_act = int(rng.integers(k_act, max(k_act, k_last) + 1))  # type: ignore[union-attr]
        weights[k:k_act] = 0.0
        actions[k_act] = _KIND[cue.expected]
        busy_until = (k_act + 1) * chunk_s + cfg.speak_s
    if cfg.hard_wait_weight != 1.0:
        t = (np.arange(n) + 1) * chunk_s
        hard = np.zeros(n, bool)
        for sp in annotations.spans:  # acting here interrupts the user
            hard |= (t >= sp.start_s - _EPS) & (t < sp.end_s - _EPS)
        for c in annotations.cues:
            if c.expected == "IGNORE":  # acting here is a false alarm on a distractor
                hard |= (t >= c.window[0] - _EPS) & (t <= c.window[1] + _EPS)
            elif c.onset_s is not None:  # heard, but not yet recognisable / not yet the turn end
                hard |= (t >= c.onset_s - _EPS) & (t < c.window[0] - _EPS)
        sel = hard & (actions == 0) & (weights > 0)
        weights[sel] = np.float32(cfg.hard_wait_weight)
    return actions, weights


def catch_up(
    actions: np.ndarray, weights: np.ndarray, kinds: Sequence[str] = ("RESPOND", "INTERVENE")
) -> tuple[np.ndarray, np.ndarray]:
    """Targets and weights that teach the skipped chunks of :func:`decision_labels` as actions.

    A chunk the teacher skipped (weight 0: it acted later in the same window) gets the action of
    the first acting chunk after it, with weight 1, when that action is one of ``kinds``. The
    teacher-forced stream keeps ``actions`` (WAIT at those chunks), so the model learns: the
    window is open and nothing has been said yet, act now. Every other chunk keeps its action
    and weight.

    Examples
    --------
    >>> acts = np.array([0, 0, 0, 2, 0, 0, 1, 0])
    >>> w = np.array([1, 0, 0, 1, 5, 0, 1, 1], np.float32)
    >>> t, w2 = catch_up(acts, w)
    >>> t.tolist(), w2.tolist()
    ([0, 2, 2, 2, 0, 1, 1, 0], [1.0, 1.0, 1.0, 1.0, 5.0, 1.0, 1.0, 1.0])
    >>> [v.tolist() for v in catch_up(acts, w, ["INTERVENE"])]
    [[0, 2, 2, 2, 0, 0, 1, 0], [1.0, 1.0, 1.0, 1.0, 5.0, 0.0, 1.0, 1.0]]
    """
    targets = np.array(actions, np.int64, copy=True)
    w = np.array(weights, np.float32, copy=True)
    skipped = np.flatnonzero(w == 0)
    if skipped.size:
        acting = np.flatnonzero(targets)
        j = np.searchsorted(acting, skipped)
        if j.max(initial=0) >= len(acting):
            raise SpecError("labels: a skipped chunk with no teacher action after it (not from decision_labels?)")
        taught = targets[acting[j]]
        sel = np.isin(taught, [_KIND[k] for k in kinds])
        targets[skipped[sel]] = taught[sel]
        w[skipped[sel]] = 1.0
    return targets, w


def teacher_targets(
    annotations: Annotations,
    n_chunks: int,
    chunk_s: float,
    cfg: LabelConfig,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What training uses per chunk: the teacher's ``actions`` (the token stream), the
    ``targets`` the loss teaches and their ``weights`` -- :func:`decision_labels`, then
    :func:`catch_up` for the kinds ``cfg.catch_up`` names (targets are the actions when none)."""
    actions, weights = decision_labels(annotations, n_chunks, chunk_s, cfg, rng)
    if not cfg.catch_up:
        return actions, actions, weights
    targets, weights = catch_up(actions, weights, cfg.catch_up)
    return actions, targets, weights


def dense_targets(annotations: Annotations, n_chunks: int, chunk_s: float,
                  columns: Sequence[str] = DEFAULT_DENSE_TARGETS) -> np.ndarray:
    """float32 ``(n_chunks, len(columns))`` 0/1 targets at each decision time ``(k + 1) *
    chunk_s``, one column per name of :data:`DENSE_TARGETS`: inside a speech span, inside a
    pause span (both half-open, as the scorer treats them), inside a RESPOND / INTERVENE / IGNORE
    cue window (closed), inside an addressed turn's speech or pauses (half-open).

    Examples
    --------
    >>> from chimein.scenes.spec import Annotations, Cue, Span
    >>> ann = Annotations(cues=(Cue("c", "RESPOND", (1.0, 2.0), "q"),), spans=(Span(0.2, 1.0, "user"),))
    >>> dense_targets(ann, 30, 0.08)[[2, 11, 12, 24, 25]].astype(int).tolist()
    [[1, 0, 0, 0, 0], [1, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]]
    >>> dense_targets(ann, 30, 0.08, ["speech", "addressed"])[2].tolist()
    [1.0, 0.0]
    """
    t = (np.arange(int(n_chunks)) + 1) * float(chunk_s)
    out = np.zeros((int(n_chunks), len(DENSE_TARGETS)), np.float32)
    col = DENSE_TARGETS.index
    for sp in annotations.spans:
        inside = (t >= sp.start_s - _EPS) & (t < sp.end_s - _EPS)
        out[inside, col("pause" if sp.kind == "pause" else "speech")] = 1.0  # a backchannel is speech
        if sp.addressed and sp.kind != "backchannel":
            out[inside, col("addressed")] = 1.0
    col_of = {"RESPOND": col("respond_window"), "INTERVENE": col("intervene_window"),
              "IGNORE": col("ignore_window")}
    for c in annotations.cues:
        s, e = c.window
        out[(t >= s - _EPS) & (t <= e + _EPS), col_of[c.expected]] = 1.0
    return out[:, [col(c) for c in columns]]
