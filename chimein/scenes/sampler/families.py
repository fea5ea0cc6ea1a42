"""The task families' segments: each places its sources, cues and spans from ``t0`` on and
returns when it is over. Synthetic speech and sound-pack recordings side by side."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chimein.scenes.pack_speech import Pieces
from chimein.scenes.sampler.builder import _Builder
from chimein.scenes.sampler.config import MONITOR_TARGETS, _header_s, _played
from chimein.scenes.spec import Source


# ---------------------------------------------------------------- segments
# Each segment writes sources/cues/spans starting at t0 and returns the time at which the
# segment is over (its last window closed, its last sound ended).
def _seg_addressed(b: _Builder, t0: float) -> float:
    from chimein.scenes import templates

    rec = b.use_pack("RESPOND")
    if rec is not None:  # a recorded request: speech pieces and mid-turn pauses (_pack_request)
        src, s, e = _pack_request(b, t0, rec)
        intent = rec[1].description
    else:
        utt = templates.wake_request(b.rng) if b.rng.random() < 0.6 else templates.command(b.rng)
        src, s, e = _say_request(b, utt.text, t0)
        intent = utt.intent
    b.cue("RESPOND", e, e + float(b.cfg.respond_window_s), intent, False, [src], onset=s)  # type: ignore[arg-type]
    _maybe_overlap_distractor(b, s, e)
    return _maybe_short_answer(b, e + float(b.cfg.respond_window_s))  # type: ignore[arg-type]


def _natural(b: _Builder) -> bool:
    """Whether requests are made natural (any of filler/turn pause/correction rates > 0)."""
    return any(float(getattr(b.cfg, k) or 0.0) > 0.0 for k in ("filler_rate", "turn_pause_rate", "correction_rate"))


def _say_request(b: _Builder, text: str, t0: float) -> tuple[Source, float, float]:
    """The user says an addressed request: as written (v0), or made natural (fillers, a
    mid-turn pause inside the utterance, a self-correction: :func:`turns.natural_request`)."""
    from chimein.scenes import turns

    if not _natural(b):
        return b.say("user", "user", text, t0, addressed=True)
    plan = turns.natural_request(b.rng, text, float(b.cfg.filler_rate), float(b.cfg.turn_pause_rate),  # type: ignore[arg-type]
                                 float(b.cfg.correction_rate))  # type: ignore[arg-type]
    return b.say("user", "user", plan.text, t0, pauses=plan.pauses, addressed=True)


def _maybe_short_answer(b: _Builder, t0: float) -> float:
    """With probability ``short_answer_rate``, after the assistant's turn the user answers its
    follow-up with a short complete turn ("yes", "no thanks"): RESPOND from its end."""
    from chimein.scenes import turns

    rate = float(b.cfg.short_answer_rate or 0.0)
    if rate <= 0.0 or b.rng.random() >= rate:
        return t0
    src, s, e = b.say("user", "user", turns.short_answer(b.rng), t0 + b.u((0.3, 1.2)), addressed=True)
    b.cue("RESPOND", e, e + float(b.cfg.respond_window_s), "short answer", False, [src], onset=s)  # type: ignore[arg-type]
    return e + float(b.cfg.respond_window_s)  # type: ignore[arg-type]


def _seg_pauses(b: _Builder, t0: float) -> float:
    from chimein.scenes import templates

    rec = b.use_pack("RESPOND", keep=lambda p: len(_played(p[1], b.cfg.sample_rate)[0]) > 1)
    if rec is not None:  # a recorded request that pauses (pack_speech found a pause in it)
        return _pack_paused_request(b, t0, rec)
    frags = templates.split_turn(b.rng)
    if b.cfg.pause_mode == "whole":
        return _whole_turn_with_pauses(b, frags, t0)
    t, first, srcs, pause_from = t0, None, [], None
    for frag in frags:
        src, s, e = b.say("user", "user", frag, t)
        srcs.append(src)
        if pause_from is not None:  # the pause lasts until this fragment's first word
            b.span(pause_from, s, "user", kind="pause", addressed=True)
        first = s if first is None else first
        b.span(s, e, "user", addressed=True)
        pause_from = e
        t = e + b.u(b.cfg.pause_s)  # type: ignore[arg-type]
    b.cue("RESPOND", e, e + float(b.cfg.respond_window_s), "request after pauses", False, srcs, onset=first)  # type: ignore[arg-type]
    return e + float(b.cfg.respond_window_s)  # type: ignore[arg-type]


def _whole_turn_with_pauses(b: _Builder, frags: Sequence[str], t0: float) -> float:
    """The ``pauses`` family's turn spoken as ONE utterance with a pause after each fragment
    (word boundaries inside it; continuation prosody, final lengthening); a bystander may
    backchannel in a pause."""
    from chimein.scenes import turns

    plan = turns.paused_turn(b.rng, frags)
    src, s, e = b.say("user", "user", plan.text, t0, pauses=plan.pauses, addressed=True)
    pause_spans = [sp for sp in b.spans if sp.kind == "pause" and s <= sp.start_s < e]
    rate = float(b.cfg.backchannel_rate or 0.0)
    if pause_spans and rate > 0.0 and b.rng.random() < rate:
        p = pause_spans[int(b.rng.integers(len(pause_spans)))]
        _backchannel(b, "bystander", p.start_s + b.u((0.1, 0.3)), p.end_s)
    b.cue("RESPOND", e, e + float(b.cfg.respond_window_s), "request after pauses", False, [src], onset=s)  # type: ignore[arg-type]
    return _maybe_short_answer(b, e + float(b.cfg.respond_window_s))  # type: ignore[arg-type]


def _backchannel(b: _Builder, who: str, t0: float, before: float | None = None) -> float:
    """``who`` says a backchannel at ``t0`` (dropped when it would not end before ``before``):
    a ``backchannel`` span, not addressed; returns its end (``t0`` when dropped)."""
    from chimein.scenes import turns

    text = turns.backchannel(b.rng)
    role = "bystander" if who == "bystander" else "user"
    lvl = b.u(b.cfg.distractor_level_db)  # type: ignore[arg-type]
    n = len(b.sources)
    src, s, e = b.say(who, role, text, t0, level_db=lvl)
    if before is not None and e > before - 0.1:
        del b.sources[n:]  # it would run into the turn: not said
        return t0
    b.span(s, e, who, kind="backchannel", addressed=False)
    return e


def _seg_proactive(b: _Builder, t0: float) -> float:
    rec = b.use_pack("INTERVENE")  # a recorded event from a sound pack, else a built-in class
    src, start, end = _help_event(b, t0, rec, None if rec is not None else b.pick(b.event_names("INTERVENE")))
    over = 0.0
    if b.rng.random() < float(b.cfg.overlap):  # type: ignore[arg-type]
        over = _chitchat(b, max(0.0, src.onset_s - b.u((0.5, 2.0))))
    label = rec[1].description if rec is not None else str(src.audio["cls"])
    return max(end, over, src.onset_s + float(src.duration_s or 0), overlap_event(b, src, start, label))


def _help_event(b: _Builder, t0: float, rec: tuple[str, Any] | None, name: str | None) -> tuple[Source, float, float]:
    """Place a sound that needs help at ``t0`` -- the pack recording ``rec``, else the built-in
    class ``name`` -- and its INTERVENE cue (from ``onset + onset_delay_s``, safety-critical
    flag from the entry or class); return the source and the window."""
    if rec is not None:
        src, _ = b.recording(rec, t0, "event", f"ev{len(b.sources)}", b.u(b.cfg.event_level_db))  # type: ignore[arg-type]
        entry = rec[1]
        start = src.onset_s + float(entry.onset_delay_s)
        label, sc = entry.description, bool(entry.safety_critical)
    else:
        src, ec = b.event(str(name), t0)
        start = src.onset_s + ec.onset_delay_s
        label, sc = ec.name, ec.safety_critical
    end = start + float(b.cfg.intervene_window_s)  # type: ignore[arg-type]
    b.cue("INTERVENE", start, end, label, sc, [src], onset=src.onset_s)
    return src, start, end


def _seg_monitoring(b: _Builder, t0: float) -> float:
    from chimein.scenes import templates

    rec = b.use_pack(("INTERVENE", "IGNORE"), keep=lambda p: _monitorable(p[1]))
    if rec is not None:  # watch for a pack recording, named by its description
        return _pack_monitoring(b, t0, rec)
    allowed = b.cfg.event_classes
    targets = [n for n in MONITOR_TARGETS if n in b.events and (allowed is None or n in allowed)]
    target = b.pick(targets)
    utt = templates.monitoring_request(b.rng, MONITOR_TARGETS[target])
    src, s, e = _say_request(b, utt.text, t0)
    ack_end = e + float(b.cfg.respond_window_s)  # type: ignore[arg-type]
    b.cue("RESPOND", e, ack_end, "acknowledge monitoring request", False, [src], onset=s)
    t = ack_end + b.u((2.0, 10.0))
    others = [n for n in targets if n != target]
    if others and b.rng.random() < 0.6:  # a non-target look-alike: must be ignored
        o_src, o_ec = b.event(b.pick(others), t)
        o_end = o_src.onset_s + float(o_src.duration_s or 1.0)
        b.cue("IGNORE", o_src.onset_s, o_end, f"non-target {o_ec.name}", False, [o_src], onset=o_src.onset_s)
        t = o_end + b.u((2.0, 6.0))
    ev, ec = b.event(target, t)
    start = ev.onset_s + ec.onset_delay_s
    end = start + float(b.cfg.intervene_window_s)  # type: ignore[arg-type]
    b.cue("INTERVENE", start, end, f"monitored {ec.name}", ec.safety_critical, [ev], onset=ev.onset_s)
    return max(end, ev.onset_s + float(ev.duration_s or 0), overlap_event(b, ev, start, ec.name))


def _seg_distractors(b: _Builder, t0: float) -> float:
    kinds = ["tv", "chitchat", "benign"]
    n = 1 + int(b.rng.integers(2))
    t = t0
    for _ in range(n):
        kind = kinds[int(b.rng.integers(len(kinds)))]
        if kind == "tv":
            t = _tv(b, t, with_wake=b.rng.random() < 0.6)
        elif kind == "chitchat":
            t = _chitchat(b, t)
        else:
            t = _benign(b, t)
        t += b.u((0.3, 1.5))
    return t


def _tv(b: _Builder, t0: float, with_wake: bool) -> float:
    from chimein.scenes import templates

    utt = templates.tv_line(b.rng, with_wake=with_wake)
    src, s, e = b.say("tv", "media", utt.text, t0, level_db=b.u(b.cfg.distractor_level_db))  # type: ignore[arg-type]
    b.cue("IGNORE", s, e, "tv speech with wake phrase" if utt.contains_wake else "tv speech", False, [src], onset=s)
    return e


def _chitchat(b: _Builder, t0: float) -> float:
    from chimein.scenes import templates

    rec = b.use_pack("IGNORE", keep=lambda p: bool(p[1].speech))
    if rec is not None:  # recorded people talking: bystander speech with its pauses
        return _pack_chitchat(b, t0, rec)
    t = t0
    for i in range(2 + int(b.rng.integers(3))):
        who = "bystander" if i % 2 == 0 else "user"
        utt = templates.chitchat(b.rng)
        src, s, e = b.say(who, "bystander" if who == "bystander" else "user", utt.text, t,
                          level_db=b.u(b.cfg.distractor_level_db))  # type: ignore[arg-type]
        b.span(s, e, who, addressed=False)
        t = e + b.u((0.2, 0.8))
        rate = float(b.cfg.backchannel_rate or 0.0)
        if rate > 0.0 and b.rng.random() < rate:  # the listener: "mm hmm"
            t = _backchannel(b, "user" if who == "bystander" else "bystander", e + b.u((-0.2, 0.2))) + b.u((0.2, 0.6))
    return t


def _benign(b: _Builder, t0: float) -> float:
    from chimein.scenes.events import get_event_class

    rec = b.use_pack("IGNORE", keep=lambda p: not p[1].speech)  # recorded talk: _chitchat
    if rec is not None:
        src, _ = b.recording(rec, t0, "event", f"ev{len(b.sources)}", b.u(b.cfg.distractor_level_db))  # type: ignore[arg-type]
        end = src.onset_s + float(src.duration_s or 1.0)
        b.cue("IGNORE", src.onset_s, end, rec[1].description, False, [src], onset=src.onset_s)
        return end
    names = b.event_names("IGNORE")
    # prefer look-alikes of help events: they are what makes the task hard
    look = [n for n in names if get_event_class(n).lookalike_of]
    name = b.pick(look if look and b.rng.random() < 0.6 else names)
    src, ec = b.event(name, t0, level_db=b.u(b.cfg.distractor_level_db), role="event")  # type: ignore[arg-type]
    end = src.onset_s + float(src.duration_s or 1.0)
    b.cue("IGNORE", src.onset_s, end, ec.name, False, [src], onset=src.onset_s)
    return end


# ---------------------------------------------------------------- sound-pack segments
# Each draws only when the segment took a pack recording (Builder.use_pack), so scenes without
# packs draw the same random numbers as a sampler without them.
def _pack_spans(b: _Builder, pieces: Pieces, who: str, addressed: bool) -> None:
    """Annotate a recording's speech pieces as ``speech`` spans of ``who`` and the gaps between
    them as ``pause`` spans (:mod:`chimein.scenes.pack_speech`), as the ``pauses`` family does."""
    for i, (s, e) in enumerate(pieces):
        if i:
            b.span(pieces[i - 1][1], s, who, kind="pause", addressed=addressed)
        b.span(s, e, who, addressed=addressed)


def _pack_request(b: _Builder, t0: float, rec: tuple[str, Any]) -> tuple[Source, float, float]:
    """The user's recorded request at ``t0``: its pieces and mid-turn pauses annotated; returns
    the source, where its speech starts and where its last piece ends (the turn's end)."""
    src, pieces = b.recording(rec, t0, "user", "user", b.u(b.cfg.speech_level_db))  # type: ignore[arg-type]
    _pack_spans(b, pieces, "user", addressed=True)
    return src, pieces[0][0], pieces[-1][1]


def _pack_paused_request(b: _Builder, t0: float, rec: tuple[str, Any]) -> float:
    """The ``pauses`` family with a recorded request that pauses: RESPOND after its last piece."""
    src, s, e = _pack_request(b, t0, rec)
    end = e + float(b.cfg.respond_window_s)  # type: ignore[arg-type]
    b.cue("RESPOND", e, end, rec[1].description, False, [src], onset=s)
    return max(end, src.onset_s + float(src.duration_s or 0))


def _pack_chitchat(b: _Builder, t0: float, rec: tuple[str, Any]) -> float:
    """Recorded talk (an IGNORE entry with ``speech``) as the bystander's speech at speech level:
    non-addressed ``speech`` spans split by ``pause`` spans; no cue (as synthetic chit-chat)."""
    src, pieces = b.recording(rec, t0, "bystander", "bystander", b.u(b.cfg.speech_level_db))  # type: ignore[arg-type]
    _pack_spans(b, pieces, "bystander", addressed=False)
    return src.onset_s + float(src.duration_s or 0)


def _monitorable(entry: Any) -> bool:
    """Whether a pack entry can be the target of a monitoring request: a sound (not talk) whose
    description can be said without the wake word, and whose INTERVENE window opens while it
    plays (INTERVENE entries are checked when the config is read; IGNORE ones here)."""
    from chimein.scenes.packs import onset_delay_problem
    from chimein.scenes.templates import contains_wake_phrase

    if entry.speech or contains_wake_phrase(entry.description):
        return False
    return entry.action == "INTERVENE" or onset_delay_problem(entry, _header_s(entry)) is None


def _heard(description: str) -> str:
    """The monitoring request's event phrase for a pack sound: "you hear the smoke alarm"."""
    d = " ".join(description.split())
    first = d.split(" ", 1)[0].lower()
    return f"you hear {d}" if first in ("a", "an", "the", "some", "someone", "somebody", "my", "our") else f"you hear the {d}"


def _pack_monitoring(b: _Builder, t0: float, rec: tuple[str, Any]) -> float:
    """The ``monitoring`` family watching for a pack recording (INTERVENE, or an IGNORE sound the
    user asks about): the request names it by its description, RESPOND acknowledges; maybe a
    look-alike (another IGNORE sound of the packs, IGNORE cue), then the target (INTERVENE from
    ``onset + onset_delay_s``). An INTERVENE recording is never a look-alike: it needs help anyway."""
    from chimein.scenes import templates

    entry = rec[1]
    utt = templates.monitoring_request(b.rng, _heard(entry.description))
    src, s, e = _say_request(b, utt.text, t0)
    ack_end = e + float(b.cfg.respond_window_s)  # type: ignore[arg-type]
    b.cue("RESPOND", e, ack_end, "acknowledge monitoring request", False, [src], onset=s)
    t = ack_end + b.u((2.0, 10.0))
    name = entry.description.strip().lower()
    others = b.pack_entries("IGNORE", keep=lambda p: not p[1].speech and p[1].description.strip().lower() != name)
    if others and b.rng.random() < 0.6:  # a non-target look-alike: must be ignored
        other = others[int(b.rng.integers(len(others)))]
        o_src, _ = b.recording(other, t, "event", f"ev{len(b.sources)}", b.u(b.cfg.event_level_db))  # type: ignore[arg-type]
        o_end = o_src.onset_s + float(o_src.duration_s or 1.0)
        b.cue("IGNORE", o_src.onset_s, o_end, f"non-target {other[1].description}", False, [o_src], onset=o_src.onset_s)
        t = o_end + b.u((2.0, 6.0))
    ev, _ = b.recording(rec, t, "event", f"ev{len(b.sources)}", b.u(b.cfg.event_level_db))  # type: ignore[arg-type]
    start = ev.onset_s + float(entry.onset_delay_s)
    end = start + float(b.cfg.intervene_window_s)  # type: ignore[arg-type]
    b.cue("INTERVENE", start, end, f"monitored {entry.description}", bool(entry.safety_critical), [ev], onset=ev.onset_s)
    return max(end, ev.onset_s + float(ev.duration_s or 0), overlap_event(b, ev, start, entry.description))


def _maybe_overlap_distractor(b: _Builder, s: float, e: float) -> None:
    """With probability ``overlap``, a benign sound or TV line overlaps the user's turn."""
    if b.rng.random() >= float(b.cfg.overlap):  # type: ignore[arg-type]
        return
    t = s + b.u((-0.5, max(0.0, e - s - 0.3)))
    if b.rng.random() < 0.5:
        _benign(b, max(0.0, t))
    else:
        _tv(b, max(0.0, t), with_wake=False)


# ---------------------------------------------------------------- overlapping events
#: A second help event opens its INTERVENE window at least this long (s) after the first's:
#: longer than the environment's default speaking time (``speak_s`` = 2 s), so a policy that
#: intervened for the first, at any moment of its window, has stopped speaking before the
#: second window closes and can intervene again (the scorer matches one cue per action).
OVERLAP_STAGGER_S = 2.5
#: An overlapping sound starts while the first still plays, at least this long (s) before it ends.
MIN_OVERLAP_S = 0.3


def overlap_event(b: _Builder, first: Source, window_start: float, label: str) -> float:
    """With probability ``event_overlap_rate``, a second sound event overlapping ``first`` (the
    event of a proactive or monitoring segment, INTERVENE window from ``window_start``); return
    the time it is over (its sound ended, its window closed), 0.0 when there is none.

    Half the time it is another help event (a pack recording with probability
    ``pack_fraction``, else a built-in INTERVENE class; not ``label``, the first's class or
    description) with an INTERVENE window of its own and its own safety-critical flag; it starts
    while ``first`` plays, late enough that its window opens :data:`OVERLAP_STAGGER_S` after the
    first's (the scoring rule above). When no help event fits that (``first`` too short), and
    the other half of the time, it is a benign sound (:func:`_benign`: IGNORE cue over its sound)
    starting while ``first`` plays. An INTERVENE action inside both windows is a hit of the
    INTERVENE cue (the scorer's rule 1 comes before IGNORE attribution).

    Every draw, including the new sources' positions, comes from the scene's stream
    ``event_overlap`` (:meth:`_Builder.stream`); at rate 0 nothing is drawn, so scenes are those
    of a sampler without the knob, and at any rate the scene's other draws are unchanged.
    """
    rate = float(b.cfg.event_overlap_rate or 0.0)
    if rate <= 0.0:
        return 0.0
    rng = b.stream("event_overlap")
    if rng.random() >= rate:
        return 0.0
    main, b.rng = b.rng, rng
    try:
        end = _overlap_help(b, first, window_start, label) if rng.random() < 0.5 else None
        if end is None:
            d1 = float(first.duration_s or 0.0)
            end = _benign(b, b.u((first.onset_s, first.onset_s + max(0.0, d1 - MIN_OVERLAP_S))))
    finally:
        b.rng = main
    return end


def _overlap_help(b: _Builder, first: Source, window_start: float, label: str) -> float | None:
    """The help event of :func:`overlap_event`, or None when none fits."""
    from chimein.scenes.events import get_event_class

    name = label.strip().lower()
    rec = b.use_pack("INTERVENE", keep=lambda p: p[1].description.strip().lower() != name)
    cls = None
    if rec is not None:
        delay = float(rec[1].onset_delay_s)
    else:
        names = [n for n in b.event_names("INTERVENE") if n != label]
        if not names:
            return None
        cls = b.pick(names)
        delay = get_event_class(cls).onset_delay_s
    lo = max(first.onset_s, window_start + OVERLAP_STAGGER_S - delay)
    hi = first.onset_s + float(first.duration_s or 0.0) - MIN_OVERLAP_S
    if lo > hi:
        return None
    src, _, end = _help_event(b, b.u((lo, hi)), rec, cls)
    return max(end, src.onset_s + float(src.duration_s or 0))


_SEGMENTS = {
    "addressed": _seg_addressed,
    "proactive": _seg_proactive,
    "monitoring": _seg_monitoring,
    "pauses": _seg_pauses,
    "distractors": _seg_distractors,
}


