"""Level statistics of sound-pack recordings, so a recording can keep its own level in scenes.

Why
---
With ``scenes.pack_levels: normalised`` (chimein-bench-v0's world) the scene sampler treats a
pack recording like a synthesised event: it draws a level from the range of its role (``event_level_db`` for
events, ``distractor_level_db`` for benign sounds, ``speech_level_db`` for recorded talk) and
the renderer scales the clip to it, so every clip of a pack plays, on average, equally loud. A
pack recorded at realistic levels -- a loud smoke alarm, a quiet microwave beep, all through one
microphone at one gain -- loses what its levels say. With ``scenes.pack_levels: recorded`` (the
presets' value) a recording keeps its level relative to the other recordings of its pack.

How
---
Each clip's level is measured once (decoded as the renderer decodes it, at the scene's sample
rate, over the whole file; :func:`clip_level`):

- ``active_db``: its level while it sounds, the RMS over its active part
  (:func:`chimein.scenes.events.synthesis.active_rms`: 20 ms frames within 40 dB of the loudest),
  so silence around or between beeps does not make a clip "quiet";
- ``rms_db``: its RMS over the whole file, what the renderer scales to a source's ``level_db``.

Per pack, clips are grouped into sounds and talk (the entries' ``speech`` flag: the two are
placed against different level ranges), and each group's statistics are its median active level
and its spread, the interquartile range (:class:`LevelStats`, :func:`pack_levels`). A clip's
**offset** is its active level minus its group's median, clipped to +-:data:`MAX_OFFSET_DB`.

The sampler draws the scene level exactly as in ``normalised`` mode (same range, same random
stream: switching the mode changes no draw, no timing and no annotation, only the ``level_db``
of recordings) and places the clip so that it sounds at ``drawn + offset``:

    ``level_db = drawn + offset + (rms_db - active_db)``

(the last term converts "level while it sounds" into the renderer's whole-file RMS), clipped to
:data:`LEVEL_RANGE_DB`. So within a pack the renderer applies one gain to every clip (their
recorded level differences are kept to the sample, up to the clipping), the pack's median clip
sounds at the drawn level, and scenes still vary in loudness through the drawn level. What was
applied is recorded in the spec: the source's ``audio["level_offset_db"]`` is ``level_db`` minus
the drawn level (written only in ``recorded`` mode, so ``normalised`` specs are what they were before).

Cost: the first scene that places a recording of a pack decodes every clip of that pack once per
process (cached by pack and sample rate).

Examples
--------
>>> import tempfile, json, numpy as np
>>> from pathlib import Path
>>> from chimein.scenes.audio import write_audio
>>> from chimein.scenes.packs import SoundPack
>>> d = Path(tempfile.mkdtemp())
>>> t = np.sin(np.arange(16000) * 0.2).astype(np.float32)
>>> write_audio(d / "loud.wav", 0.5 * t, 16000); write_audio(d / "quiet.wav", 0.05 * t, 16000)
>>> rows = [{"id": n, "path": f"./{n}.wav", "description": n, "decision": "RESPOND"}
...         for n in ("loud", "quiet")]
>>> _ = (d / "manifest.jsonl").write_text("\\n".join(json.dumps(r) for r in rows) + "\\n")
>>> pack = SoundPack.load(d)
>>> levels = pack_levels(pack, 16000)
>>> round(levels.offset_db(pack.get("loud")) - levels.offset_db(pack.get("quiet")), 2)
20.0
>>> lvl, applied = levels.place(pack.get("quiet"), -30.0)
>>> round(lvl, 2), round(applied, 2)
(-40.0, -10.0)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from chimein.errors import ConfigError
from chimein.scenes.packs import PackEntry, SoundPack

__all__ = ["LEVEL_MODES", "LEVEL_RANGE_DB", "MAX_OFFSET_DB", "ClipLevel", "LevelStats", "PackLevels",
           "clip_level", "pack_levels"]

#: Values of ``scenes.pack_levels``: ``normalised`` (every clip at the drawn level; v0) or
#: ``recorded`` (each clip keeps its level relative to its pack).
LEVEL_MODES: tuple[str, ...] = ("normalised", "recorded")
#: A clip's offset from its pack's median is clipped to +- this (dB): a mislabelled or broken
#: clip 60 dB off the others would otherwise be inaudible or clip the whole scene.
MAX_OFFSET_DB = 24.0
#: A recording's ``level_db`` in ``recorded`` mode is clipped to this range (dBFS RMS).
LEVEL_RANGE_DB: tuple[float, float] = (-80.0, 0.0)


@dataclass(frozen=True)
class ClipLevel:
    """The measured level of one recording (dBFS, at the scene's sample rate, whole file).

    Attributes
    ----------
    active_db
        Level while it sounds (RMS over its active part).
    rms_db
        RMS over the whole decoded file: what the renderer scales to ``level_db``.
    """

    active_db: float
    rms_db: float


@dataclass(frozen=True)
class LevelStats:
    """Active-level statistics of one group (sounds or talk) of one pack.

    Attributes
    ----------
    median_db
        Median active level (dBFS): the clip that sounds at the drawn level.
    spread_db
        Interquartile range of the active levels (dB): how much the pack's levels vary.
    n
        Number of clips in the group.
    """

    median_db: float
    spread_db: float
    n: int


@dataclass(frozen=True, eq=False)
class PackLevels:
    """Every clip's level in one pack and each group's statistics (see the module docstring).

    Attributes
    ----------
    clips
        :class:`ClipLevel` by entry id.
    groups
        :class:`LevelStats` by group: ``True`` talk (entries with ``speech``), ``False`` sounds.
    """

    clips: Mapping[str, ClipLevel]
    groups: Mapping[bool, LevelStats]

    def offset_db(self, entry: PackEntry) -> float:
        """``entry``'s active level minus its group's median, clipped to +-:data:`MAX_OFFSET_DB`."""
        c = self._clip(entry)
        off = c.active_db - self.groups[bool(entry.speech)].median_db
        return float(np.clip(off, -MAX_OFFSET_DB, MAX_OFFSET_DB))

    def place(self, entry: PackEntry, drawn_db: float) -> tuple[float, float]:
        """``(level_db, applied)``: the source level that makes ``entry`` sound at
        ``drawn_db + offset``, clipped to :data:`LEVEL_RANGE_DB`, and ``level_db - drawn_db``."""
        c = self._clip(entry)
        lo, hi = LEVEL_RANGE_DB
        level = float(np.clip(drawn_db + self.offset_db(entry) + (c.rms_db - c.active_db), lo, hi))
        return level, level - float(drawn_db)

    def _clip(self, entry: PackEntry) -> ClipLevel:
        if entry.id not in self.clips:
            raise ConfigError(f"pack levels: entry {entry.id!r} is not in this pack; measure its own pack")
        return self.clips[entry.id]


def _db(x: float) -> float:
    return 20.0 * math.log10(max(x, 1e-12))


@functools.lru_cache(maxsize=65536)
def clip_level(entry: PackEntry, sample_rate: int) -> ClipLevel:
    """Decode ``entry`` as the renderer does (:meth:`PackEntry.load`) and measure its levels.

    Raises
    ------
    AudioError
        The file is missing, corrupt, empty, silent or not finite (named with the entry).
    """
    from chimein.scenes.events.synthesis import active_rms

    x = entry.load(int(sample_rate)).astype(np.float64)
    rms = math.sqrt(float(np.add.reduce(x * x)) / x.size)
    return ClipLevel(active_db=_db(active_rms(x, int(sample_rate))), rms_db=_db(rms))


@functools.lru_cache(maxsize=64)
def pack_levels(pack: SoundPack, sample_rate: int) -> PackLevels:
    """Measure every clip of ``pack`` (:func:`clip_level`) and each group's median and spread."""
    clips = {e.id: clip_level(e, int(sample_rate)) for e in pack.entries}
    groups: dict[bool, LevelStats] = {}
    for speech in (False, True):
        vals = np.array([clips[e.id].active_db for e in pack.entries if bool(e.speech) == speech])
        if vals.size:
            q1, med, q3 = (float(v) for v in np.percentile(vals, [25.0, 50.0, 75.0]))
            groups[speech] = LevelStats(median_db=med, spread_db=q3 - q1, n=int(vals.size))
    return PackLevels(clips=clips, groups=groups)
