"""Speech for scenes: generators with word timings, a speaker model, and natural turns.

Three generators sit behind one interface (:func:`generate`): ``espeak-ng`` (formant synthesis,
:mod:`.espeak`), ``piper`` (neural VITS voice ``joe``, :mod:`.piper`, the optional ``piper``
extra) and ``flite`` (CMU Flite's built-in voices, :mod:`.flite`, Debian's ``flite``). A speaker
model (:mod:`.speaker`: pitch, tempo, vocal-tract length, level) turns one voice into many
talkers, and turn edits (:mod:`.edit`) put mid-turn pauses at word boundaries inside one
synthesised utterance.

A speech source of a scene spec describes its signal with a mapping (``Source.audio``) that
:func:`realize` turns into audio and word timings; the sampler and the renderer both call it,
so the annotations and the audio come from one place::

    {"text": "hey chime, um, set an alarm for seven",   # what is said, spoken as one utterance
     "generator": "piper", "voice": "joe",              # absent generator: espeak-ng (v0 specs)
     "speaker": {"id": "piper/joe/0.3", "pitch_st": 1.5, "tempo": 1.1, "vtl": 0.95,
                 "level_db": -2.0},                     # optional: the speaker model
     "pauses": [{"after_word": 3, "pause_s": 0.8, "lengthen": 1.3}],   # optional turn edits
     "rate": 175, "pitch": 50}                          # espeak-ng only: native rate and pitch

Examples
--------
>>> sp = realize({"text": "hey chime, set an alarm for seven", "generator": "espeak-ng",
...               "voice": "en-us+f3", "pauses": [{"after_word": 5, "pause_s": 0.8}]})
>>> [w.text for w in sp.words][5:7], round(sp.words[6].start_s - sp.words[5].end_s, 1) >= 0.8
(['for', 'seven'], True)
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from chimein.errors import SpecError
from chimein.scenes.speech.base import Speech
from chimein.scenes.speech.espeak import (
    NATIVE_SAMPLE_RATE,
    SILENCE_DB,
    VOICES,
    available_voice,
    synthesize,
)

__all__ = [
    "AUDIO_KEYS",
    "NATIVE_SAMPLE_RATE",
    "SILENCE_DB",
    "VOICES",
    "Speech",
    "available_voice",
    "describe",
    "generator_of",
    "realize",
    "speaker_id_of",
    "synthesize",
]

AUDIO_KEYS: tuple[str, ...] = ("text", "generator", "voice", "speaker", "pauses", "rate", "pitch",
                               "pitch_range")
"""Keys of a speech source's ``audio`` mapping."""

LEGACY_GENERATOR = "espeak-ng"
"""The generator of a speech source that names none (every spec written before generators)."""


def generator_of(audio: Mapping[str, Any]) -> str:
    """The generator of a speech source's ``audio`` mapping (``espeak-ng`` when it names none)."""
    return str(audio.get("generator", LEGACY_GENERATOR))


def speaker_id_of(audio: Mapping[str, Any]) -> str:
    """The talker's id: the speaker model's id, else ``generator/voice`` (plus espeak-ng's native
    rate and pitch, which make distinct talkers of one voice in v0 specs)."""
    spk = audio.get("speaker")
    if isinstance(spk, Mapping) and spk.get("id"):
        return str(spk["id"])
    base = f"{generator_of(audio)}/{audio.get('voice', 'en-us')}"
    if "rate" in audio or "pitch" in audio:
        base += f"/r{audio.get('rate', 175)}p{audio.get('pitch', 50)}"
    return base


def describe(audio: Mapping[str, Any]) -> str:
    """One line naming the generator, voice and speaker of a speech source, for pictures and
    listings: ``"piper joe, speaker piper/joe/0.3"``."""
    return f"{generator_of(audio)} {audio.get('voice', 'en-us')}, speaker {speaker_id_of(audio)}"


def _check(audio: Mapping[str, Any]) -> None:
    if not isinstance(audio, Mapping):
        raise SpecError(f"speech: field 'audio': need a mapping with 'text', got {type(audio).__name__}")
    unknown = sorted(set(audio) - set(AUDIO_KEYS))
    if unknown:
        raise SpecError(f"speech: field 'audio': unknown key(s) {unknown}; known keys: {list(AUDIO_KEYS)}")
    if "pauses" in audio and not isinstance(audio["pauses"], (list, tuple)):
        raise SpecError("speech: field 'audio.pauses': need a list of {after_word, pause_s, lengthen}")
    if "speaker" in audio and not isinstance(audio["speaker"], Mapping):
        raise SpecError("speech: field 'audio.speaker': need a mapping {id, pitch_st, tempo, vtl, level_db}")


def realize(audio: Mapping[str, Any], sample_rate: int = 16000) -> Speech:
    """The audio and word timings of a speech source, from its ``audio`` mapping.

    Generator output (cached on disk, :mod:`.cache`), then the speaker model, then the turn's
    pauses. A mapping without ``generator`` is a v0 espeak-ng source and is synthesised exactly
    as v0 did (bit-identical). Results are cached per process.

    Raises
    ------
    SpecError
        An unknown key or generator, a bad speaker or pause (the message names the field).
    ConfigError
        The generator is not installed (the message says how to install it).
    """
    _check(audio)
    return _realize(json.dumps(dict(audio), sort_keys=True, default=list), int(sample_rate))


@functools.lru_cache(maxsize=512)
def _realize(key: str, sample_rate: int) -> Speech:
    a = json.loads(key)
    text = str(a.get("text", ""))
    if "generator" not in a:  # v0: exactly what v0 rendered
        extra = {"pitch_range": a["pitch_range"]} if "pitch_range" in a else {}
        sp = synthesize(text, voice=a.get("voice", "en-us"), rate=a.get("rate", 175),
                        pitch=a.get("pitch", 50), sample_rate=sample_rate, **extra)
        if not a.get("speaker") and not a.get("pauses"):
            return sp
    else:
        from chimein.scenes.speech.generators import generate

        sp = generate(str(a["generator"]), text, str(a.get("voice", "")), sample_rate,
                      rate=a.get("rate"), pitch=a.get("pitch"))
    from chimein.scenes.speech.edit import Pause, insert_pauses
    from chimein.scenes.speech.speaker import Speaker, apply_speaker

    if a.get("speaker") is not None:
        sp = apply_speaker(sp, Speaker.from_dict(a["speaker"], "speech.audio.speaker"))
    if a.get("pauses"):
        pauses = [Pause.from_dict(p, f"speech.audio.pauses[{i}]") for i, p in enumerate(a["pauses"])]
        sp = insert_pauses(sp, pauses)
    return sp
