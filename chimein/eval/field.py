"""The field's metrics: false cut-offs (LiveKit's end-of-turn benchmark) and takeover rates per
condition (Full-Duplex-Bench), counted from a scene's annotations and the scoring function's
judgement of an episode.

Everything here reads the :class:`~chimein.envs.scoring.EpisodeOutcome` that
:func:`~chimein.envs.scoring.score` produced (its penalties and cue outcomes) and the scene's
:class:`~chimein.scenes.spec.Annotations`: no second judge. :func:`condition_counts` returns the
per-episode counts that :func:`chimein.eval.metrics.episode_counts` adds to its
:data:`~chimein.eval.metrics.COUNTS`; the ratios are in
:func:`chimein.eval.metrics.metrics_from_counts`, so they get bootstrap intervals, per-split
tables and scene-paired differences like every other metric.

Conditions
----------
A *turn* is :func:`chimein.eval.metrics.user_turns`'s: one speaker's ``speech`` spans joined by
that speaker's ``pause`` spans; its interval runs from its first span's start to its last
span's end. A turn is *addressed* when one of its speech spans is ``addressed`` (directed at the
assistant). The *user* is the speaker :data:`USER_SPEAKER` and any speaker who addresses the
assistant somewhere in the scene. A *penalised action* is an effective action the scorer charged
as a false alarm, an interruption or a duplicate (an answer to a cue that also talked over
someone is charged as an interruption too). Each condition is reported on its own; they are
never averaged together.

- **false cut-off** (LiveKit EOU): an addressed user turn the policy spoke into before it ended
  -- an interruption charged in one of its speech or pause spans. ``false_cutoff_rate`` is
  :data:`~chimein.eval.metrics.METRICS`'s ``turn_interruption_rate`` restricted to addressed
  turns: ``turn_interruption_rate`` also counts turns of side talk and bystanders, which are
  the talking-to-others and background conditions below, not end-of-turn errors. The two are
  equal when every turn is addressed.
- **pause handling** (FDB): ``pause_takeover_rate``, the existing metric (mid-turn pauses with
  an interruption charged in them / pauses).
- **smooth turn-taking** (FDB): a RESPOND cue whose window opens at the end of an addressed
  turn (within :data:`TURN_END_TOL_S` after it) is taken over when an effective action answered
  it in its window (a hit or the wrong kind). Higher is better; the only condition where it is.
- **talking to others** (FDB): a non-addressed speech turn of the user (the user talking to
  someone else in the room) is taken over when a penalised action falls in it or within
  :data:`TAKEOVER_TAIL_S` after it (answering a remark not meant for the assistant).
- **background speech** (FDB): speech of others -- a non-addressed turn of a speaker who is not
  the user (a bystander), or an IGNORE cue whose label names speech (:data:`SPEECH_CUE`: TV or
  radio speech, which has no spans: nobody in the room holds the floor) -- is taken over when a
  penalised action falls in it or within :data:`TAKEOVER_TAIL_S` after it.

Only what the episode reached counts: spans starting before its last decision, cues the scorer
did not list as unreached.

Examples
--------
>>> from chimein.envs.scoring import ActionLog, score
>>> from chimein.scenes.spec import Annotations, Cue, Span
>>> ann = Annotations(cues=(Cue("r", "RESPOND", (2.0, 5.0), "q"),),
...                   spans=(Span(0.5, 1.0, "user", addressed=True), Span(1.0, 1.5, "user", "pause", True),
...                          Span(1.5, 2.0, "user", addressed=True)))
>>> log = ActionLog.from_actions([0] * 11 + [1] + [0] * 40, chunk_s=0.1, speak_s=0.5)  # acts at 1.2 s
>>> c = condition_counts(ann, score(ann, log), [0, 0, 0], 5.2)
>>> c["addr_turns"], c["addr_turns_cut"], c["smooth_cues"]
(1.0, 1.0, 1.0)
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from chimein.envs.scoring import EPS_S, EpisodeOutcome
from chimein.scenes.spec import Annotations

__all__ = ["BENCHMARKS", "FIELD_COUNTS", "SPEECH_CUE", "TAKEOVER_TAIL_S", "TURN_END_TOL_S", "USER_SPEAKER",
           "condition_counts"]

#: Seconds after a talking-to-others turn or background speech in which a penalised action still
#: takes it over (a reply to it). 1 s: the reward's default RESPOND grace period, the gap within
#: which an answer counts as answering the turn.
TAKEOVER_TAIL_S = 1.0
#: A RESPOND cue whose window opens within this many seconds after an addressed turn's end is
#: that turn's smooth turn-taking opportunity (the scene generator opens it exactly there).
TURN_END_TOL_S = 0.5
#: The speaker name of the scene's user (the generator's); any speaker with an addressed span
#: is a user too.
USER_SPEAKER = "user"
#: An IGNORE cue whose label matches this is background speech (``tv speech``, ``tv speech with
#: wake phrase``, radio); case-insensitive, whole words.
SPEECH_CUE = re.compile(r"\b(tv|radio|speech)\b", re.IGNORECASE)

#: Per-episode counts added to :data:`chimein.eval.metrics.COUNTS` (the inputs of the ratios).
FIELD_COUNTS: tuple[str, ...] = (
    "addr_turns", "addr_turns_cut", "smooth_cues", "smooth_taken", "side_turns", "side_taken",
    "bg_events", "bg_taken",
)

#: metric -> (the published benchmark it mirrors, where chimein's differs). The README's table
#: "Metrics and the benchmarks they mirror" and ``report.md``'s field section show these.
BENCHMARKS: dict[str, tuple[str, str]] = {
    "false_cutoff_rate": (
        "LiveKit eot-bench: false cut-off rate",
        "simulated rooms, not recorded calls; one decision per chunk (80 ms by default); an addressed turn counts once, cut "
        "if the policy spoke in any of its pauses or over its speech"),
    "pause_takeover_rate": (
        "Full-Duplex-Bench v1: pause handling TOR",
        "per annotated mid-turn pause, not per sample; the policy chooses an action, no speech is generated or "
        "transcribed"),
    "smooth_takeover_rate": (
        "Full-Duplex-Bench v1: smooth turn-taking TOR",
        "the answer must land in the RESPOND cue's window after the turn's end; its delay is respond_latency_p50"),
    "side_talk_takeover_rate": (
        "Full-Duplex-Bench v1.5: talking to others",
        "FDB plays it while the model speaks; here a listening assistant must not take the turn (a penalised action "
        "in the user's non-addressed turn or within 1 s after it)"),
    "background_takeover_rate": (
        "Full-Duplex-Bench v1.5: background speech",
        "FDB plays it while the model speaks; here TV/radio speech cues and bystanders' turns, pooled, taken over "
        "by a penalised action in them or within 1 s after"),
    "safety_miss_rate": (
        "Proactive-Sound-Bench: safety-critical false negatives",
        "per safety-critical cue: missed when no action fell in its window, not a wrong clip label"),
}


def _turn_intervals(annotations: Annotations, turn_of: Sequence[int], end_s: float
                    ) -> dict[int, tuple[float, float, str, bool]]:
    """``turn -> (start, end, speaker, addressed)`` of the speech turns the episode reached
    (a turn's spans of every kind make its interval; ``addressed``: one of its speech spans is)."""
    spans = annotations.spans
    reached = {turn_of[i] for i, sp in enumerate(spans) if sp.kind == "speech" and sp.start_s <= end_s + 1e-6}
    out: dict[int, tuple[float, float, str, bool]] = {}
    for i, sp in enumerate(spans):
        t = turn_of[i]
        if t not in reached or sp.kind == "backchannel":
            continue
        s, e, who, addr = out.get(t, (sp.start_s, sp.end_s, sp.speaker, False))
        out[t] = (min(s, sp.start_s), max(e, sp.end_s), who, addr or (sp.kind == "speech" and sp.addressed))
    return out


def condition_counts(annotations: Annotations, outcome: EpisodeOutcome, turn_of: Sequence[int],
                     end_s: float) -> dict[str, float]:
    """The :data:`FIELD_COUNTS` of one episode (see the module's definitions).

    Parameters
    ----------
    annotations, outcome
        The scene's annotations and the scorer's judgement of the episode.
    turn_of
        The turn index of each span (:func:`chimein.eval.metrics.user_turns`).
    end_s
        The episode's last decision time (spans starting after it were not reached).
    """
    c = dict.fromkeys(FIELD_COUNTS, 0.0)
    spans = annotations.spans
    turns = _turn_intervals(annotations, turn_of, end_s)
    users = {USER_SPEAKER} | {sp.speaker for sp in spans if sp.addressed}
    cut = {turn_of[p.span_index] for p in outcome.interruptions
           if p.span_index is not None and 0 <= p.span_index < len(spans) and spans[p.span_index].kind != "backchannel"}
    penalised = sorted(p.time_s for p in (*outcome.false_alarms, *outcome.interruptions, *outcome.duplicates))

    def taken(start: float, end: float) -> bool:
        return any(start - EPS_S <= t < end + TAKEOVER_TAIL_S - EPS_S for t in penalised)

    ends = []
    for t, (s, e, who, addressed) in turns.items():
        if addressed:
            c["addr_turns"] += 1
            c["addr_turns_cut"] += t in cut
            ends.append(e)
        elif who in users:
            c["side_turns"] += 1
            c["side_taken"] += taken(s, e)
        else:
            c["bg_events"] += 1
            c["bg_taken"] += taken(s, e)
    unreached = set(outcome.unreached)
    by_id = {o.cue_id: o for o in outcome.cue_outcomes}
    for cue in annotations.cues:
        o = by_id.get(cue.id)
        if o is None or cue.id in unreached:
            continue
        if cue.expected == "IGNORE" and SPEECH_CUE.search(cue.label):
            c["bg_events"] += 1
            c["bg_taken"] += taken(*cue.window)
        elif cue.expected == "RESPOND" and any(e - 1e-3 <= cue.window[0] <= e + TURN_END_TOL_S for e in ends):
            c["smooth_cues"] += 1
            c["smooth_taken"] += o.outcome in ("hit", "wrong_kind")
    return c
