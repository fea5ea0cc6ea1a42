"""Talkers of a scene: which generator, voice and speaker says each person's lines.

A scene has several people (the user, a bystander, the TV). Each gets a *talker* once per scene:

- with ``speakers_per_voice = 0`` (chimein-bench-v0's speech) an espeak-ng voice not yet used in
  the scene plus a speaking rate and pitch drawn from ``speech_rate`` / ``speech_pitch``;
- otherwise a generator from ``speech_generators``, one of its voices (``speech_voices``, by
  default :data:`TRAINING_VOICES`), and one of ``speakers_per_voice`` speakers of that voice.
  Speaker ``k`` of a voice is the same talker in every scene: its pitch, habitual tempo,
  vocal-tract length and level come from ``(speaker_pool_seed, generator, voice, k)`` alone, so a
  suite can hold speakers out by seed. The talker's tempo in a scene is the speaker's habitual
  tempo times ``rate / 175`` for a ``rate`` drawn from ``speech_rate``.

The held-back voices (:data:`HELDOUT_VOICES`) and speaker seeds (:data:`HELDOUT_SPEAKER_SEED`)
are never used by the training presets; held-out suites and the recorded-speech packs made to
judge generalisation use them.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from chimein.errors import ConfigError

__all__ = [
    "GENERATOR_NAMES",
    "HELDOUT_SPEAKER_SEED",
    "HELDOUT_VOICES",
    "TRAINING_VOICES",
    "Talker",
    "draw_talker",
    "pool_speaker",
]

GENERATOR_NAMES: tuple[str, ...] = ("espeak-ng", "piper", "flite")
"""The speech generators (see :mod:`chimein.scenes.speech`)."""

TRAINING_VOICES: Mapping[str, tuple[str, ...]] = {
    "espeak-ng": ("en-us", "en-us+f3", "en-us+m3", "en-us+f2", "en-us-nyc+m5", "en-gb+m2",
                  "en-gb+f4", "en-gb-x-rp+m7", "en-gb-x-rp+f2", "en-gb-scotland+m1",
                  "en-gb-scotland+f1", "en-029+m4", "en-gb-x-gbclan+m6", "en-gb-x-gbcwmd+f5",
                  "en-us+Annie", "en-us+Andy"),
    "piper": ("joe",),
    "flite": ("slt", "rms", "kal16"),
}
"""Voices the training presets draw from, per generator."""

HELDOUT_VOICES: Mapping[str, tuple[str, ...]] = {"flite": ("awb",)}
"""Voices no training preset uses (flite's Scottish-English ``awb``)."""

HELDOUT_SPEAKER_SEED = 9001
"""``speaker_pool_seed`` of held-out speakers (training presets use seed 0)."""

_BASE_RATE = 175.0


@dataclass(frozen=True)
class Talker:
    """How one person of a scene speaks: the fields of a speech source's ``audio`` mapping
    other than the text and pauses (see :func:`chimein.scenes.speech.realize`)."""

    audio: Mapping[str, Any]
    level_db: float = 0.0
    """The speaker's level offset (dB), added to the drawn speech level."""

    @property
    def legacy(self) -> bool:
        """A v0 talker (espeak-ng with native rate/pitch, no speaker model)."""
        return "generator" not in self.audio


def _u(rng: np.random.Generator, r: Sequence[float]) -> float:
    return float(rng.uniform(float(r[0]), float(r[1])))


def pool_speaker(cfg: Any, generator: str, voice: str, k: int) -> dict[str, Any]:
    """Speaker ``k`` of ``generator``/``voice``: the same parameters in every scene (they depend
    only on ``cfg.speaker_pool_seed``, the names and ``k``).

    Examples
    --------
    >>> from chimein.scenes.sampler import SamplerConfig
    >>> cfg = SamplerConfig().resolved()
    >>> pool_speaker(cfg, "piper", "joe", 2) == pool_speaker(cfg, "piper", "joe", 2)
    True
    >>> pool_speaker(cfg, "piper", "joe", 2)["id"]
    'piper/joe/0.2'
    """
    seed = int(cfg.speaker_pool_seed or 0)
    key = [seed, zlib.crc32(generator.encode()), zlib.crc32(voice.encode()), int(k)]
    rng = np.random.default_rng(np.random.SeedSequence(key))
    return {
        "id": speaker_id(cfg, generator, voice, k),
        "pitch_st": round(_u(rng, cfg.speaker_pitch_st), 2),
        "tempo": round(_u(rng, cfg.speaker_tempo), 3),
        "vtl": round(_u(rng, cfg.speaker_vtl), 3),
        "level_db": round(_u(rng, cfg.speaker_level_db), 2),
    }


def speaker_id(cfg: Any, generator: str, voice: str, k: int) -> str:
    """The id of speaker ``k`` of ``generator``/``voice``: ``"piper/joe/0.2"``."""
    return f"{generator}/{voice}/{int(cfg.speaker_pool_seed or 0)}.{int(k)}"


def voices_of(cfg: Any, generator: str) -> tuple[str, ...]:
    """The voices talkers of ``generator`` draw from (``speech_voices``, else the training ones)."""
    chosen = dict(cfg.speech_voices or {}).get(generator)
    voices = tuple(chosen) if chosen is not None else TRAINING_VOICES[generator]
    if not voices:
        raise ConfigError(f"scenes config: field 'speech_voices.{generator}': list at least one voice")
    return voices


def draw_talker(cfg: Any, rng: np.random.Generator, used: Sequence[Talker]) -> Talker:
    """A new talker for a scene whose other talkers are ``used`` (voices differ when possible).

    With ``cfg.speakers_per_voice == 0`` the draws are exactly v0's (voice, rate, pitch), so v0
    scenes are unchanged.
    """
    from chimein.scenes.speech import VOICES

    if not int(cfg.speakers_per_voice or 0):
        taken = {t.audio.get("voice") for t in used}
        choices = [v for v in VOICES if v not in taken] or list(VOICES)
        voice = choices[int(rng.integers(len(choices)))]
        rate = int(round(_u(rng, cfg.speech_rate)))
        pitch = int(round(_u(rng, cfg.speech_pitch)))
        return Talker({"voice": voice, "rate": rate, "pitch": pitch})
    gens = list(cfg.speech_generators)
    generator = gens[int(rng.integers(len(gens)))]
    talking = {(t.audio.get("generator"), t.audio.get("voice"), (t.audio.get("speaker") or {}).get("id"))
               for t in used}
    voices = voices_of(cfg, generator)
    free = [v for v in voices if (generator, v) not in {(g, w) for g, w, _ in talking}] or list(voices)
    voice = free[int(rng.integers(len(free)))]
    ks = [k for k in range(int(cfg.speakers_per_voice))
          if (generator, voice, speaker_id(cfg, generator, voice, k)) not in talking]
    k = ks[int(rng.integers(len(ks)))] if ks else int(rng.integers(int(cfg.speakers_per_voice)))
    spk = pool_speaker(cfg, generator, voice, k)
    wpm = _u(rng, cfg.speech_rate)
    spk["tempo"] = round(float(np.clip(spk["tempo"] * wpm / _BASE_RATE, 0.6, 1.6)), 3)
    return Talker({"generator": generator, "voice": voice, "speaker": spk}, level_db=float(spk["level_db"]))
