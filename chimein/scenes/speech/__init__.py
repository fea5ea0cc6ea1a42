"""Speech for scenes: generators with word timings, a speaker model, and natural turns.

Generators (one interface, :func:`generate`): ``espeak-ng`` (formant synthesis,
:mod:`.espeak`), ``piper`` (neural, :mod:`.piper`, the optional ``piper`` extra) and ``flite``
(CMU Flite's built-in voices, :mod:`.flite`, Debian's ``flite``).
"""

from __future__ import annotations

from chimein.scenes.speech.espeak import (
    NATIVE_SAMPLE_RATE,
    SILENCE_DB,
    VOICES,
    Speech,
    available_voice,
    synthesize,
)

__all__ = [
    "NATIVE_SAMPLE_RATE",
    "SILENCE_DB",
    "VOICES",
    "Speech",
    "available_voice",
    "synthesize",
]
