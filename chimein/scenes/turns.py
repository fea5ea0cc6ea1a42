"""Natural turns: where people pause, hesitate, correct themselves and backchannel.

A :class:`TurnPlan` is the text of one turn, spoken as ONE utterance by a speech generator,
plus the word boundaries inside it where the talker pauses. Because the turn is synthesised
whole, the words before a pause carry the intonation of a sentence that goes on (no final fall),
which is what a mid-turn pause sounds like; :func:`chimein.scenes.speech.edit.insert_pauses`
then cuts the audio at those boundaries, inserts the silence and lengthens the word before it
(final lengthening). The annotations mark each pause as mid-turn.

What a plan can contain (each drawn by the caller's probabilities, see
:class:`chimein.scenes.sampler.SamplerConfig`):

- **fillers and hesitations**: "um", "uh", "so", "erm" before the body of a request, often
  followed by a pause (``kind="filler"``);
- **mid-clause pauses**: after a word that cannot end the request ("set an alarm for | seven",
  ``kind="mid_clause"``), and **between clauses** ("hey chime, | can you ...",
  ``kind="between_clauses"``);
- **self-corrections**: "set a timer for five, no, ten minutes" (``kind="self_correction"``,
  the pause sits after "no");
- **short complete answers** (:func:`short_answer`: "yes", "okay", "no thanks") that are whole
  turns, and **backchannels** (:func:`backchannel`: "mm hmm", "yeah") that a bystander says
  while someone else holds the floor: not addressed to the assistant, acting on one is an
  interruption.

Examples
--------
>>> import numpy as np
>>> plan = natural_request(np.random.default_rng(2), "hey chime, set an alarm for seven",
...                        p_filler=1.0, p_pause=1.0, p_correction=0.0)
>>> plan.text
'hey chime, um, set an alarm for seven'
>>> [(plan.words[p.after_word], p.kind) for p in plan.pauses]
[('um', 'filler')]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from chimein.errors import SpecError

__all__ = [
    "BACKCHANNELS",
    "FILLERS",
    "SHORT_ANSWERS",
    "PauseKind",
    "PlannedPause",
    "TurnPlan",
    "backchannel",
    "natural_request",
    "paused_turn",
    "short_answer",
]

PauseKind = Literal["filler", "mid_clause", "between_clauses", "self_correction"]

FILLERS: tuple[str, ...] = ("um", "uh", "erm", "so", "um so", "uh well")
"""Hesitations people put before or inside a request."""

SHORT_ANSWERS: tuple[str, ...] = ("yes", "yes please", "okay", "no thanks", "sure", "no",
                                  "yeah go ahead", "that's right", "not now", "okay thanks")
"""Complete one- to three-word turns: an answer to the assistant's follow-up question."""

BACKCHANNELS: tuple[str, ...] = ("mm hmm", "yeah", "uh huh", "right", "okay", "mm", "yeah yeah")
"""What a listener says to show they follow; it does not take the turn."""

# Words after which a request cannot be complete: a pause here is mid-clause.
_OPEN_WORDS = frozenset({
    "a", "an", "the", "to", "for", "at", "in", "on", "of", "me", "my", "and", "is", "what",
    "when", "how", "about", "with", "from", "set", "turn", "play", "remind", "tell", "add",
    "call", "send", "put", "can", "could", "you", "please", "some", "by", "up", "off", "check",
})
# Values a talker may correct ("for five, no, ten minutes"); each maps to its alternatives.
_CORRECTABLE: tuple[tuple[str, ...], ...] = (
    ("two", "three", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
     "fifteen", "twenty", "thirty", "forty", "fifty", "sixty"),
    ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
    ("today", "tomorrow", "tonight"),
    ("kitchen", "bedroom", "hallway", "study", "bathroom", "garden"),
    ("milk", "eggs", "bread", "coffee", "bananas", "rice", "apples", "cheese"),
)


@dataclass(frozen=True)
class PlannedPause:
    """A pause inside a turn: after word ``after_word`` (index into :attr:`TurnPlan.words`)."""

    after_word: int
    kind: PauseKind


@dataclass(frozen=True)
class TurnPlan:
    """One turn: its text (spoken whole) and the mid-turn pauses inside it.

    ``features`` names what the plan contains (``filler``, ``self_correction``, ...) for
    annotations and statistics.
    """

    text: str
    pauses: tuple[PlannedPause, ...] = ()
    features: tuple[str, ...] = ()

    @property
    def words(self) -> list[str]:
        """The whitespace tokens of :attr:`text` without edge punctuation: the speech
        generators' word list, which pause indices refer to."""
        return [w for w in (t.strip("\"'.,;:!?()") for t in self.text.split()) if w]


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _check_p(name: str, p: float) -> float:
    if not 0.0 <= float(p) <= 1.0:
        raise SpecError(f"turns: field '{name}': a probability in [0, 1], got {p!r}")
    return float(p)


def _split_wake(text: str) -> tuple[str, str]:
    """("hey chime,", "set an alarm") at the first comma within the first four words."""
    head, sep, body = text.partition(",")
    if sep and len(head.split()) <= 4 and body.strip():
        return head.strip() + ",", body.strip()
    return "", text.strip()


def _correct(rng: np.random.Generator, words: list[str]) -> list[str] | None:
    """``words`` with the last correctable value said wrong first ("five, no, ten"), or None."""
    for i in range(len(words) - 1, max(-1, len(words) - 5), -1):
        for group in _CORRECTABLE:
            if words[i] in group:
                wrong = _pick(rng, [w for w in group if w != words[i]])
                return words[:i] + [wrong + ",", "no,"] + words[i:]
    return None


def natural_request(rng: np.random.Generator, text: str, p_filler: float = 0.3,
                    p_pause: float = 0.3, p_correction: float = 0.1) -> TurnPlan:
    """Make an addressed request sound like a person said it.

    Parameters
    ----------
    rng
        Every choice is drawn from it.
    text
        The request, e.g. ``"hey chime, set an alarm for seven"`` (a leading wake phrase ending
        in a comma is kept in front).
    p_filler
        Probability of a filler ("um") after the wake phrase or at the start.
    p_pause
        Probability of one mid-turn pause: after the filler when there is one, else at a
        mid-clause point (after a word such as "for", "the", "me") or between the wake phrase
        and the body.
    p_correction
        Probability of a self-correction of the last number, day, room or item, with a pause
        after "no".

    Returns
    -------
    TurnPlan
        ``pauses`` refer to word indices of ``plan.words``; never after the last word.
    """
    p_filler, p_pause = _check_p("p_filler", p_filler), _check_p("p_pause", p_pause)
    p_correction = _check_p("p_correction", p_correction)
    head, body = _split_wake(text)
    head_words = head.split()
    body_words = body.split()
    features: list[str] = []
    filler = None
    if rng.random() < p_filler:
        filler = _pick(rng, FILLERS)
        features.append("filler")
    corrected = _correct(rng, body_words) if rng.random() < p_correction else None
    if corrected is not None:
        body_words = corrected
        features.append("self_correction")
    words = head_words + ([*filler.split()[:-1], filler.split()[-1] + ","] if filler else []) + body_words
    plain = [w.strip("\"'.,;:!?()") for w in words]
    candidates: list[PlannedPause] = []
    if filler:
        candidates.append(PlannedPause(len(head_words) + len(filler.split()) - 1, "filler"))
    elif corrected is not None:
        candidates.append(PlannedPause(plain.index("no", len(head_words)), "self_correction"))
    else:
        opens = [i for i in range(len(head_words), len(plain) - 1) if plain[i] in _OPEN_WORDS]
        if opens and (not head_words or rng.random() < 0.7):
            candidates.append(PlannedPause(opens[int(rng.integers(len(opens)))], "mid_clause"))
        elif head_words:
            candidates.append(PlannedPause(len(head_words) - 1, "between_clauses"))
    pauses: tuple[PlannedPause, ...] = ()
    if candidates and rng.random() < p_pause:
        pauses = (candidates[0],)
        features.append("pause")
    return TurnPlan(text=" ".join(words), pauses=pauses, features=tuple(features))


def paused_turn(rng: np.random.Generator, fragments: Sequence[str]) -> TurnPlan:
    """One turn from the fragments of :func:`chimein.scenes.templates.split_turn`, spoken whole
    with a pause after every fragment but the last (a mid-clause pause when the fragment ends in
    a word such as "to" or "for", else between clauses).

    Examples
    --------
    >>> plan = paused_turn(np.random.default_rng(0), ["hey chime, can you", "um remind me to",
    ...                                               "call mum at six"])
    >>> plan.text, [(p.after_word, p.kind) for p in plan.pauses]
    ('hey chime, can you um remind me to call mum at six', [(3, 'mid_clause'), (7, 'mid_clause')])
    """
    if len(fragments) < 2:
        raise SpecError(f"turns: field 'fragments': need at least two fragments, got {list(fragments)}")
    words: list[str] = []
    pauses = []
    for i, frag in enumerate(fragments):
        toks = frag.split()
        if not toks:
            raise SpecError(f"turns: field 'fragments': fragment {i} is empty")
        words += toks
        if i + 1 < len(fragments):
            last = toks[-1].strip("\"'.,;:!?()")
            kind: PauseKind = "mid_clause" if last in _OPEN_WORDS else "between_clauses"
            pauses.append(PlannedPause(len(words) - 1, kind))
    return TurnPlan(text=" ".join(words), pauses=tuple(pauses), features=("pause",))


def short_answer(rng: np.random.Generator) -> str:
    """A complete short turn ("yes", "no thanks") answering the assistant."""
    return _pick(rng, SHORT_ANSWERS)


def backchannel(rng: np.random.Generator) -> str:
    """A listener's backchannel ("mm hmm", "yeah"): not a turn, not addressed to anyone."""
    return _pick(rng, BACKCHANNELS)
