"""Is a held-out tier really held out? What a suite tier shares with the training presets.

``chimein-bench-v1``'s ``heldout`` tier promises scenes whose voices, speakers, rooms, devices
and recorded sounds no training preset draws. :func:`heldout_leaks` checks that promise from
the sampler configs alone (no scene is rendered): for every split of the tier and every
training config it compares

* **voices**: the ``(generator, voice)`` pairs a config's talkers draw from;
* **speakers**: the speaker ids (``generator/voice/<pool seed>.<k>``) of those voices;
* **rooms**: the room-pool seed. A tier must draw its rooms from a pool (``room_pool`` > 0)
  whose seed no training config uses; a training config without a pool draws each room from
  its scene's seed, a stream apart from every pool's;
* **devices**: likewise the device-pool seed, when the tier records through devices;
* **recorded sounds**: the files of the sound packs a config lists (resolved paths).

The training configs are the sampler's difficulty presets (what ``chimein train`` draws from by
default) and the supervised recipe's validation scenes (:class:`~chimein.training.supervised.
ValConfig`'s room seed); pass your own with ``training=`` when you train on something else.

Examples
--------
>>> heldout_leaks("chimein-bench-v1")
[]
>>> leaks = heldout_leaks("chimein-bench-v1", training=[{"difficulty": "default",
...                                                      "speech_voices": {"flite": ["awb"]}}])
>>> leaks[0].split(":")[0]
'heldout/addressed'
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from chimein.errors import SpecError
from chimein.eval.metrics import HELDOUT_TIER  # the tier name that promises held-out material

__all__ = ["HELDOUT_TIER", "TRAINING_CONFIGS", "heldout_leaks", "pools_of"]

#: The sampler configs training draws from by default: each difficulty preset, and the
#: supervised recipe's validation scenes (their own room-pool seed, 11).
TRAINING_CONFIGS: tuple[Mapping[str, Any], ...] = (
    {"difficulty": "easy"}, {"difficulty": "default"}, {"difficulty": "hard"},
    {"difficulty": "easy", "room_pool": 8, "room_pool_seed": 11},
    {"difficulty": "hard", "room_pool": 8, "room_pool_seed": 11},
)


def pools_of(config: Mapping[str, Any]) -> dict[str, set[Any]]:
    """What a sampler config draws from: ``voices``, ``speakers``, ``room_seeds``,
    ``device_seeds`` and ``pack_files`` (sets; a seed set is empty when scenes draw from their
    own seeds rather than a pool)."""
    from chimein.scenes.sampler import SamplerConfig
    from chimein.scenes.talkers import speaker_id, voices_of

    cfg = SamplerConfig.from_mapping(dict(config)).resolved()
    out: dict[str, set[Any]] = {k: set() for k in ("voices", "speakers", "room_seeds", "device_seeds", "pack_files")}
    n = int(cfg.speakers_per_voice or 0)
    for g in cfg.speech_generators or ():
        voices: Iterable[str] = voices_of(cfg, g) if n else _v0_voices()
        for v in voices:
            out["voices"].add(f"{g}/{v}")
            out["speakers"].update(speaker_id(cfg, g, v, k) for k in range(n))
    if cfg.room_pool:
        out["room_seeds"].add(int(cfg.room_pool_seed or 0))
    if float(cfg.device_rate or 0.0) > 0 and cfg.device_pool:
        out["device_seeds"].add(int(cfg.device_pool_seed or 0))
    for pack in cfg.sound_packs or ():
        out["pack_files"].update(_pack_files(str(pack)))
    return out


def _v0_voices() -> tuple[str, ...]:
    from chimein.scenes.speech import VOICES

    return tuple(VOICES)


def _pack_files(pack: str) -> set[str]:
    """The resolved files of a sound pack: its manifest and every recording it lists."""
    from chimein.scenes.packs import SoundPack

    p = SoundPack.load(pack)
    files = {os.path.realpath(p.manifest)}
    for e in p.entries:
        files.add(os.path.realpath(e.path))
    return files


def heldout_leaks(suite: Any, tier: str = HELDOUT_TIER,
                  training: Sequence[Mapping[str, Any]] | None = None) -> list[str]:
    """What the ``tier`` of ``suite`` shares with the training configs (an empty list: nothing).

    Parameters
    ----------
    suite
        A suite name, definition file or :class:`~chimein.eval.suites.SuiteDef`.
    tier
        The tier that should be held out.
    training
        Sampler configs training draws from (default :data:`TRAINING_CONFIGS`).

    Returns
    -------
    list of str
        One line per split and kind of leak: ``"<split>: shares voices [...] with training
        config 2"``; also a line when the tier draws rooms (or devices) from its scenes' seeds
        instead of a pool of its own, which no check could call disjoint.
    """
    from chimein.eval.suites import get_suite
    from chimein.scenes.sampler import SamplerConfig

    definition = get_suite(suite)
    splits = [s for s in definition.splits if s.tier == tier]
    if not splits:
        raise SpecError(f"suite {definition.name!r}: no tier {tier!r}; tiers: {list(definition.tiers)}")
    train = [pools_of(c) for c in (TRAINING_CONFIGS if training is None else training)]
    leaks: list[str] = []
    for s in splits:
        mine = pools_of(s.config)
        if not mine["room_seeds"]:
            leaks.append(f"{s.name}: rooms are drawn from scene seeds; give the tier a room_pool and a room_pool_seed of its own")
        cfg = SamplerConfig.from_mapping(dict(s.config)).resolved()
        if float(cfg.device_rate or 0.0) > 0 and not mine["device_seeds"]:
            leaks.append(f"{s.name}: devices are drawn from scene seeds; give the tier a device_pool and a device_pool_seed of its own")
        for i, t in enumerate(train):
            for kind in ("voices", "speakers", "room_seeds", "device_seeds", "pack_files"):
                shared = mine[kind] & t[kind]
                if shared:
                    leaks.append(f"{s.name}: shares {kind} {sorted(map(str, shared))[:5]} with training config {i}")
    return leaks
