"""Turn edits: mid-turn pauses at word boundaries inside one synthesised utterance.

A real speaker hesitates mid-turn ("set a timer for ... ten minutes"), and a turn-taking
policy must not barge in at such a pause. :func:`insert_pauses` makes one from any
generator's output: it cuts the audio at the boundary after a word, inserts exact digital
silence (so energy-based detectors see a pause), optionally lengthens the end of the word before
the pause (final lengthening, as talkers do before a pause), and shifts the later word times.

How a cut is made
-----------------
Between word ``i`` (ending at sample ``a``) and word ``i + 1`` (starting at sample ``b >= a``),
the audio from ``a`` to ``b`` (any gap, usually near-silence) becomes digital silence and
``pause_s`` more silence follows it, so the silent span runs exactly from the new end of word
``i`` to the new start of word ``i + 1`` (:func:`pause_spans`) and the later words move by
``pause_s`` plus the lengthening. The last :data:`FADE_S` of word ``i`` fades out and the first
:data:`FADE_S` of word ``i + 1`` fades in (raised cosine), so a cut inside running speech does
not click. Lengthening stretches the tail of word ``i`` (the last 40 %, at least 80 ms, at most
the whole word) by WSOLA (:func:`chimein.scenes.speech.speaker.time_stretch`), which keeps pitch
and formants.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from chimein.scenes.spec import Word, _err, _finite, _int, _no_unknown
from chimein.scenes.speech.base import Speech
from chimein.scenes.speech.speaker import time_stretch

__all__ = [
    "FADE_S",
    "MAX_PAUSE_S",
    "TAIL_FRACTION",
    "TAIL_MIN_S",
    "Pause",
    "insert_pauses",
    "pause_spans",
]

FADE_S = 0.005
"""Raised-cosine fade at each side of a cut (5 ms: no click, and too short to hear)."""
MAX_PAUSE_S = 5.0
"""Longest pause allowed."""
TAIL_FRACTION = 0.4
"""Final lengthening stretches this fraction of the word before the pause ..."""
TAIL_MIN_S = 0.08
"""... but at least this long (about a syllable), and at most the whole word."""
MAX_LENGTHEN = 2.0
"""Largest lengthening factor."""


@dataclass(frozen=True)
class Pause:
    """A silent pause after word ``after_word``, with optional final lengthening.

    Parameters
    ----------
    after_word : int
        Index into ``speech.words``: the pause starts after this word (never the last one: a
        pause after the last word is not mid-turn).
    pause_s : float
        Length of the inserted silence in seconds, in (0, 5].
    lengthen : float
        Stretch factor in [1, 2] of the end of that word (the last 40 %, at least 80 ms):
        talkers slow down before a pause.

    Raises
    ------
    SpecError
        A field is of the wrong type or out of range (the message names the field).

    Examples
    --------
    >>> p = Pause(after_word=2, pause_s=0.6, lengthen=1.3)
    >>> Pause.from_dict(p.to_dict()) == p
    True
    """

    after_word: int
    pause_s: float
    lengthen: float = 1.0

    def __post_init__(self) -> None:
        _check(asdict(self), "pause")
        # Canonical types, so to_dict() is the same JSON however the pause was built.
        object.__setattr__(self, "after_word", int(self.after_word))
        object.__setattr__(self, "pause_s", float(self.pause_s))
        object.__setattr__(self, "lengthen", float(self.lengthen))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready mapping :meth:`from_dict` reads back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "pause") -> Pause:
        """Build a pause from a mapping, strictly: unknown or missing keys, wrong types and
        out-of-range values raise :class:`SpecError` naming ``where`` and the field."""
        _no_unknown(d, cls, where)
        for f in ("after_word", "pause_s"):
            if f not in d:
                raise _err(where, f, "missing; a pause needs after_word and pause_s")
        values = {f.name: d.get(f.name, f.default) for f in fields(cls)}
        _check(values, where)
        return cls(**values)


def _check(values: Mapping[str, Any], where: str) -> None:
    """The pause fields in ``values`` are of the right type and range, or a SpecError."""
    if _int(where, "after_word", values["after_word"]) < 0:
        raise _err(where, "after_word", f"need a word index >= 0, got {values['after_word']!r}")
    pause_s = _finite(where, "pause_s", values["pause_s"])
    if not 0.0 < pause_s <= MAX_PAUSE_S:
        raise _err(where, "pause_s", f"need a pause in (0, {MAX_PAUSE_S:g}] seconds, got {pause_s!r}")
    lengthen = _finite(where, "lengthen", values["lengthen"])
    if not 1.0 <= lengthen <= MAX_LENGTHEN:
        raise _err(where, "lengthen", f"need a factor in [1, {MAX_LENGTHEN:g}], got {lengthen!r}")


def _validate(speech: Speech, pauses: Sequence[Pause]) -> None:
    """Pause indices fit ``speech``: in range, strictly increasing, never after the last word."""
    n_words = len(speech.words)
    prev = -1
    for k, p in enumerate(pauses):
        where = f"pauses[{k}]"
        if not isinstance(p, Pause):
            raise _err(where, "after_word", f"expected a Pause, got {type(p).__name__}")
        if p.after_word >= n_words - 1:
            raise _err(where, "after_word", f"{p.after_word!r} is not a mid-turn word boundary: "
                       f"the utterance has {n_words} words, so use 0 .. {n_words - 2} "
                       "(a pause after the last word is not mid-turn)")
        if p.after_word <= prev:
            raise _err(where, "after_word", f"{p.after_word} does not follow the previous pause's "
                       f"word {prev}; list pauses in strictly increasing word order")
        prev = p.after_word


def raised_cosine(n: int) -> np.ndarray:
    """A raised-cosine fade-in ramp from 0 (exclusive) to 1 (exclusive) over ``n >= 0`` samples
    (reversed: a fade-out); no click at either end of a cut."""
    if n == 0:
        return np.zeros(0)
    return 0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)


def _lengthen_tail(seg: np.ndarray, sr: int, word_start: int, factor: float) -> np.ndarray:
    """``seg`` (ending where the word before the pause ends) with that word's tail stretched.

    The tail is the last :data:`TAIL_FRACTION` of the word (``seg[word_start:]``), at least
    :data:`TAIL_MIN_S`, at most the whole word. WSOLA runs over a little context before the
    tail with a slope-1 map there, so the join is seamless (WSOLA reproduces slope-1 spans)."""
    word_len = seg.shape[0] - word_start
    tail = min(word_len, max(round(TAIL_FRACTION * word_len), round(TAIL_MIN_S * sr)))
    new_tail = round(tail * factor)
    if factor == 1.0 or tail == 0 or new_tail == tail:
        return seg
    t0 = seg.shape[0] - tail
    ctx = min(t0, round(0.05 * sr))  # context before the tail, copied unchanged
    start = t0 - ctx
    out_len = ctx + new_tail
    stretched, _, _ = time_stretch(seg[start:], sr, out_len,
                                   np.array([0.0, ctx, out_len]), np.array([0.0, ctx, ctx + tail]))
    return np.concatenate([seg[:start], stretched])


def insert_pauses(speech: Speech, pauses: Sequence[Pause]) -> Speech:
    """Insert silent mid-turn pauses at word boundaries (see the module docstring).

    Parameters
    ----------
    speech : Speech
        Any generator's (or :func:`~chimein.scenes.speech.speaker.apply_speaker`'s) output.
    pauses : sequence of Pause
        In strictly increasing ``after_word`` order, none after the last word.

    Returns
    -------
    Speech
        Same sample rate; float32, read-only audio; word times shifted. The silence of each
        pause spans exactly ``(words[i].end_s, words[i + 1].start_s)``, see
        :func:`pause_spans`. No pauses: ``speech`` itself.

    Raises
    ------
    SpecError
        A pause's word index is out of range, after the last word, or not increasing.

    Examples
    --------
    >>> from chimein.scenes.speech.espeak import synthesize
    >>> s = synthesize("set a timer for ten minutes")
    >>> t = insert_pauses(s, [Pause(after_word=3, pause_s=0.8, lengthen=1.4)])
    >>> round(t.words[4].start_s - s.words[4].start_s, 2) >= 0.8
    True
    >>> [round(b - a, 2) >= 0.8 for a, b in pause_spans(t, [Pause(3, 0.8, 1.4)])]
    [True]
    """
    _validate(speech, pauses)
    if not pauses:
        return speech
    sr = speech.sample_rate
    x = np.asarray(speech.audio, dtype=np.float64)
    n = x.shape[0]
    words = list(speech.words)
    fade_n = max(1, round(FADE_S * sr))
    pieces: list[np.ndarray] = []
    bounds: dict[int, tuple[int, int]] = {}  # word index -> (new end of i, new start of i + 1)
    shifts: list[tuple[int, int]] = []  # (first word index it applies to, shift in samples)
    pos_in, pos_out = 0, 0
    for p in pauses:
        i = p.after_word
        a = min(n, max(0, round(words[i].end_s * sr)))
        b = min(n, max(0, round(words[i + 1].start_s * sr)))
        if b < a:  # overlapping words: cut half-way
            a = b = (a + b) // 2
        a = max(a, pos_in)
        b = max(a, b)
        seg = x[pos_in:a].copy()
        if pieces:
            seg[:fade_n] *= raised_cosine(min(fade_n, seg.shape[0]))
        word_start = min(seg.shape[0], max(0, round(words[i].start_s * sr) - pos_in))
        seg = _lengthen_tail(seg, sr, word_start, p.lengthen)
        k = min(fade_n, seg.shape[0])
        seg[seg.shape[0] - k:] *= raised_cosine(k)[::-1]
        gap = (b - a) + round(p.pause_s * sr)
        end_i = pos_out + seg.shape[0]
        pieces += [seg, np.zeros(gap)]
        pos_out = end_i + gap
        bounds[i] = (end_i, pos_out)
        shifts.append((i + 1, pos_out - b))
        pos_in = b
    last = x[pos_in:].copy()
    k = min(fade_n, last.shape[0])
    last[:k] *= raised_cosine(k)
    pieces.append(last)
    audio = np.concatenate(pieces).astype(np.float32)
    audio.flags.writeable = False
    return Speech(audio=audio, sample_rate=sr, words=_shift_words(words, bounds, shifts, sr))


def _shift_words(
    words: list[Word], bounds: dict[int, tuple[int, int]], shifts: list[tuple[int, int]], sr: int
) -> tuple[Word, ...]:
    """Word times after the edit: each word moves by the shift of the last cut before it; the
    words at a cut end and start exactly at the silence's edges."""
    out = []
    for j, w in enumerate(words):
        shift = 0
        for first, s in shifts:
            if j >= first:
                shift = s
        start, end = w.start_s + shift / sr, w.end_s + shift / sr
        if j in bounds:
            end = bounds[j][0] / sr
        if j - 1 in bounds:
            start = bounds[j - 1][1] / sr
        out.append(Word(w.text, min(start, end), end))
    return tuple(out)


def pause_spans(speech_with_pauses: Speech, pauses: Sequence[Pause]) -> list[tuple[float, float]]:
    """The silent span of each pause in :func:`insert_pauses`'s output, in seconds.

    Each span runs from the end of word ``after_word`` to the start of the next word; the audio
    in it is exactly zero.

    Examples
    --------
    >>> from chimein.scenes.speech.espeak import synthesize
    >>> pauses = [Pause(after_word=1, pause_s=0.5)]
    >>> t = insert_pauses(synthesize("hey chime what time is it"), pauses)
    >>> (a, b), = pause_spans(t, pauses)
    >>> bool(abs(t.audio[round(a * t.sample_rate):round(b * t.sample_rate)]).max() == 0)
    True
    """
    _validate(speech_with_pauses, pauses)
    w = speech_with_pauses.words
    return [(w[p.after_word].end_s, w[p.after_word + 1].start_s) for p in pauses]
