"""Named, versioned evaluation suites: regenerated bit-identically from their name.

A suite is a set of *splits*, one per task family x tier, each a scene dataset made by
:func:`~chimein.scenes.dataset.generate_dataset` from a sampler config and a seed that the
definition fixes. The definition (families, tiers, scene counts, seeds, env and reward options)
lives in code (:data:`SUITES`) or in a YAML file of the same fields, and is identified by its
``definition_hash``. Materialising writes every split to a cache folder
(``$CHIMEIN_CACHE_DIR/suites/<name>``, default ``~/.cache/chimein/suites/<name>``) once; later
runs reuse it.

Fingerprints
------------
Two hashes identify a materialised suite; both are written to ``suite.json`` and recorded with
every result and episode line (:attr:`MaterializedSuite.identity`):

``fingerprint``
    The **scenes**: sha256 of the definition hash and of every scene's spec JSON (split by
    split, in scene order). Specs depend only on the seeds and chimein's code (the sampler,
    and espeak-ng's word timings), not on the CPU: :func:`spec_fingerprint` computes it without
    rendering a sample, and ``tests/test_suite_fingerprints.py`` pins the built-in suites'.
    ``chimein eval compare`` pairs runs whose fingerprints are equal.
``audio_fingerprint``
    The **audio**: sha256 of the definition hash and of every split's manifest (scene ids and
    the sha256 of each FLAC file) -- what the single fingerprint of results written before
    this split was. The rendered samples differ in their last bits between CPUs whose numpy
    takes other vector paths (measured: 1-2 LSB of 24 bits, with numpy's AVX2/FMA3 loops
    disabled), and the FLAC bytes carry the libFLAC version, so it is a property of one
    machine's materialisation: resuming a run requires it equal; ``compare`` only notes a
    difference.

Built-in suites
---------------
``chimein-bench-v0``
    Six families (addressed, proactive, monitoring, pauses, distractors, multi_event) x two
    tiers: ``clean`` (the ``easy`` preset: small dry rooms, high SNR, no distractors or overlap)
    and ``hard`` (the ``hard`` preset: long RT60, 0-12 dB SNR, babble, distractors, 50 %
    overlap, band-limiting augmentation). Each tier draws its rooms from a pool of 8 rooms x 8
    candidate positions, so the RIR cache serves most sources and materialising takes minutes.
``chimein-bench-v0-mini``
    The same splits with 2 scenes each (1 short multi-event stream): for CI and smoke tests.
``chimein-bench-v1``
    The same six families x three tiers, drawn from the sampler's presets as they are
    (``world="presets"``): talkers of three speech generators (espeak-ng, piper, flite) through
    the speaker model with natural turns (fillers, pauses, corrections, backchannels), device
    models (30 / 70 % of clean / hard scenes: microphone response, AGC, clipping, telephone,
    codecs, hum), talkers who walk while they speak, overlapping events, the assistant's
    loudspeaker placed in the room. ``clean`` is the ``easy`` preset, ``hard`` the ``hard`` one,
    each from a room pool of its own seed (111, 212). 30 scenes per split, 10 multi-event
    streams (480).

    ``heldout`` (the ``default`` preset) is drawn from pools no training preset draws from:

    - voices: :data:`~chimein.scenes.talkers.HELDOUT_VOICES` only (flite's ``awb``; the
      training presets draw espeak-ng, piper ``joe`` and flite ``slt``/``rms``/``kal16``);
    - speakers: 8 per voice from :data:`~chimein.scenes.talkers.HELDOUT_SPEAKER_SEED` (9001;
      training speakers come from seed 0, and a speaker id names its seed);
    - rooms: a pool of 8 rooms x 8 positions of seed :data:`HELDOUT_ROOM_SEED` (9101; training
      scenes draw each room from their own seed, validation from pool seed 11, the other tiers
      from 111 and 212);
    - devices: a pool of 16 devices of seed :data:`HELDOUT_DEVICE_SEED` (9201; training scenes
      draw each device from their own seed);
    - recorded sounds: none in any tier or training preset (chimein ships no recordings; sounds
      come from users' packs). A user who adds a pack to a copy of the suite keeps it
      disjoint by listing it in no training config; :func:`chimein.eval.heldout.heldout_leaks`
      checks all five for any suite, and ``tests/test_heldout.py`` checks v1's, on the
      definitions and on sampled scenes.

    Sound events are the built-in synthesised classes in every tier (instances drawn from each
    scene's seed), so ``heldout`` measures new voices, speakers, rooms and devices, not new
    sound classes. The env plays v1 as v0 (80 ms chunks, 2 s assistant speech, no echo).
``chimein-bench-v1-mini``
    The same 18 splits with 2 scenes each (1 short multi-event stream): for CI.

Examples
--------
>>> suite = get_suite("chimein-bench-v0-mini")
>>> suite.name, len(suite.splits), suite.splits[0].name
('chimein-bench-v0-mini', 12, 'clean/addressed')
>>> get_suite("chimein-bench-v0-mini").definition_hash == suite.definition_hash
True
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chimein.config import read_config, to_plain
from chimein.envs.core import DEFAULT_ENV, default_env
from chimein.errors import ChimeinError, ConfigError, SpecError
from chimein.io import atomic_write_text, read_utf8
from chimein.scenes.dataset import SUITE_FILE  # written last, with the fingerprints
from chimein.scenes.talkers import HELDOUT_SPEAKER_SEED, HELDOUT_VOICES

__all__ = ["SUITES", "WORLD_V0", "MaterializedSuite", "SplitDef", "SuiteDef", "audio_fingerprint_of", "get_suite",
           "materialize", "same_audio", "same_scenes", "spec_fingerprint", "suite_cache_dir", "tiny_suite"]



def _canon(x: Any) -> str:
    return json.dumps(x, sort_keys=True, separators=(",", ":"))


def _name_seed(*parts: Any) -> int:
    """A 32-bit seed from a base seed and names (stable across processes and Python versions)."""
    key = [int(parts[0])] + [zlib.crc32(str(p).encode("utf-8")) for p in parts[1:]]
    return int(np.random.SeedSequence(key).generate_state(1, dtype=np.uint32)[0])


#: v0's world: espeak-ng talkers without the speaker model, turns as written, the ``pauses``
#: family's fragments synthesised one by one, ideal microphones, talkers standing still. Later
#: issues made realistic speech (#18) and devices and walking talkers (#19) the sampler's
#: defaults; a suite with ``world="v0"`` (every definition written before, which names no
#: ``world``) lays these keys under its tiers, so its scenes and fingerprints stay what they were.
WORLD_V0: dict[str, Any] = {
    "speech_generators": ["espeak-ng"], "speakers_per_voice": 0, "pause_mode": "fragments",
    "filler_rate": 0.0, "turn_pause_rate": 0.0, "correction_rate": 0.0, "short_answer_rate": 0.0,
    "backchannel_rate": 0.0, "device_rate": 0.0, "walk_rate": 0.0, "loudspeaker_rate": 0.0,
    "pack_levels": "normalised", "event_overlap_rate": 0.0,
}
SUITE_WORLDS: tuple[str, ...] = ("v0", "presets")
"""Values of :attr:`SuiteDef.world`."""


@dataclass(frozen=True)
class SplitDef:
    """One split of a suite: ``n`` scenes of one family in one tier.

    ``config`` is the full sampler config mapping; ``seed`` the dataset seed (scene ``i`` has
    seed ``scene_seed(seed, i)``).
    """

    name: str
    family: str
    tier: str
    n: int
    seed: int
    config: Mapping[str, Any]

    @property
    def dirname(self) -> str:
        """Folder of the split inside the suite folder (``<tier>/<family>``)."""
        return self.name


@dataclass(frozen=True)
class SuiteDef:
    """A suite definition: everything that decides its scenes and how episodes are played.

    Parameters
    ----------
    name
        The suite's name (also its cache folder name).
    revision
        Bumped whenever the definition changes; results record it.
    description
        One line for reports.
    seed
        Base seed; split seeds derive from it and the family and tier *names*, so adding a
        split never changes the others.
    families
        Task families (see :data:`chimein.scenes.sampler.FAMILIES`).
    tiers
        Tier name -> sampler config overrides (``difficulty``, ``room_pool``, ...).
    scenes
        Scenes per split: ``{"default": n, <family>: n}``.
    family_overrides
        Family -> sampler config overrides applied on top of the tier's.
    env
        Options of the environment (``chunk_ms``, ``speak_s``, ...) the suite is played with.
    reward
        :class:`~chimein.envs.scoring.RewardConfig` fields (empty: the defaults).
    world
        What lies under the tiers' overrides: ``v0`` (:data:`WORLD_V0`: espeak-ng talkers, turns
        as written, the ``pauses`` family fragment by fragment, ideal microphones, no walking;
        the default, so a definition written before those existed keeps its scenes and
        fingerprint) or ``presets`` (the sampler's difficulty presets as they are: three
        generators, the speaker model, natural turns, devices, walking talkers). Left out of
        :meth:`to_dict` when ``v0``.
    """

    name: str
    revision: int
    description: str
    seed: int
    families: tuple[str, ...]
    tiers: Mapping[str, Mapping[str, Any]]
    scenes: Mapping[str, int]
    family_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    env: Mapping[str, Any] = field(default_factory=default_env)
    reward: Mapping[str, Any] = field(default_factory=dict)
    world: str = "v0"

    def __post_init__(self) -> None:
        where = f"suite {self.name!r}"
        if self.world not in SUITE_WORLDS:
            raise SpecError(f"{where}: field 'world': use one of {SUITE_WORLDS}, got {self.world!r}")
        if not isinstance(self.name, str) or not self.name or "/" in self.name or self.name.startswith("."):
            raise SpecError(f"{where}: field 'name': a non-empty name without '/', got {self.name!r}")
        if isinstance(self.revision, bool) or not isinstance(self.revision, int) or self.revision < 0:
            raise SpecError(f"{where}: field 'revision': a non-negative integer, got {self.revision!r}")
        object.__setattr__(self, "families", tuple(self.families))
        if not self.families:
            raise SpecError(f"{where}: field 'families': list at least one family")
        from chimein.scenes.sampler import FAMILIES

        for f in self.families:
            if f not in (*FAMILIES, "mixed"):
                raise SpecError(f"{where}: field 'families': unknown family {f!r}; use {FAMILIES}")
        if not self.tiers:
            raise SpecError(f"{where}: field 'tiers': define at least one tier (name -> sampler overrides)")
        if "default" not in self.scenes:
            raise SpecError(f"{where}: field 'scenes': needs a 'default' count (scenes per split)")
        for k, v in self.scenes.items():
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise SpecError(f"{where}: field 'scenes.{k}': a positive integer, got {v!r}")
        for k in self.family_overrides:
            if k not in self.families:
                raise SpecError(f"{where}: field 'family_overrides': {k!r} is not one of the suite's families")
        from chimein.envs.core import EnvConfig
        from chimein.envs.scoring import RewardConfig

        EnvConfig.from_options(dict(self.env))
        RewardConfig.from_mapping(dict(self.reward))
        from chimein.scenes.sampler import SamplerConfig

        for s in self.splits:  # validates every sampler config now
            SamplerConfig.from_mapping(s.config)

    # ---------------------------------------------------------------- derived
    @property
    def splits(self) -> tuple[SplitDef, ...]:
        """Every split, tiers outer and families inner (the report order)."""
        out = []
        for tier, tcfg in self.tiers.items():
            for fam in self.families:
                base = WORLD_V0 if self.world == "v0" else {}
                cfg = {**base, **dict(tcfg), **dict(self.family_overrides.get(fam, {})), "family": fam}
                n = int(self.scenes.get(fam, self.scenes["default"]))
                out.append(SplitDef(f"{tier}/{fam}", fam, tier, n, _name_seed(self.seed, fam, tier), cfg))
        return tuple(out)

    def split(self, name: str) -> SplitDef:
        for s in self.splits:
            if s.name == name:
                return s
        raise SpecError(f"suite {self.name!r}: no split {name!r}; splits: {[s.name for s in self.splits]}")

    @property
    def n_scenes(self) -> int:
        return sum(s.n for s in self.splits)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(_canon({
            "name": self.name, "revision": self.revision, "description": self.description,
            "seed": self.seed, "families": list(self.families),
            "tiers": {k: dict(v) for k, v in self.tiers.items()}, "scenes": dict(self.scenes),
            "family_overrides": {k: dict(v) for k, v in self.family_overrides.items()},
            "env": dict(self.env), "reward": dict(self.reward),
            **({} if self.world == "v0" else {"world": self.world}),
        }))

    @property
    def definition_hash(self) -> str:
        """sha256 of the canonical JSON of the definition (the description excluded)."""
        d = self.to_dict()
        d.pop("description")
        return hashlib.sha256(_canon(d).encode()).hexdigest()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "suite") -> SuiteDef:
        """Build from a mapping of the same fields (e.g. a YAML file) with
        :func:`chimein.config.read_config`; ``revision``, ``description`` and ``seed`` default
        to 0, "" and 0, and ``scenes: N`` means ``{default: N}``. Unknown keys and wrong types
        raise :class:`~chimein.errors.ConfigError`, an invalid definition
        :class:`~chimein.errors.SpecError`; both name ``where`` and the field."""
        d = to_plain(d)
        if isinstance(d, Mapping):
            d = {"revision": 0, "description": "", "seed": 0, **d}
            if isinstance(d.get("scenes"), int) and not isinstance(d["scenes"], bool):
                d["scenes"] = {"default": d["scenes"]}
        try:
            return read_config(cls, d, where)
        except ConfigError:
            raise
        except ChimeinError as e:
            raise SpecError(f"{where}: {e}") from None
        except (TypeError, ValueError, AttributeError) as e:
            raise SpecError(f"{where}: malformed suite definition: {e}") from None


# ============================================================================================
# Built-in suites
# ============================================================================================
_TIERS_V0: dict[str, dict[str, Any]] = {
    # easy preset; the room pool bounds the distinct RIRs (8 rooms x 8 positions)
    "clean": {"difficulty": "easy", "room_pool": 8, "positions_per_room": 8, "room_pool_seed": 101,
              "multi_event_duration_s": [30.0, 45.0]},
    "hard": {"difficulty": "hard", "room_pool": 8, "positions_per_room": 8, "room_pool_seed": 202,
             "multi_event_duration_s": [30.0, 60.0]},
}
#: Seeds of the held-out tier's room and device pools; no training preset or training config
#: uses them (``tests/test_heldout.py`` checks, with :func:`heldout_leaks`).
HELDOUT_ROOM_SEED = 9101
HELDOUT_DEVICE_SEED = 9201
_FAMILIES_V0 = ("addressed", "proactive", "monitoring", "pauses", "distractors", "multi_event")
_ENV_V0 = dict(DEFAULT_ENV)


def _mini(tiers: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The CI variant of a suite's tiers: 2 rooms x 4 positions, short multi-event streams."""
    return {k: {**v, "room_pool": 2, "positions_per_room": 4, "multi_event_duration_s": [20.0, 25.0]}
            for k, v in tiers.items()}


SUITES: dict[str, SuiteDef] = {
    "chimein-bench-v0": SuiteDef(
        name="chimein-bench-v0", revision=1,
        description="6 task families x clean/hard tiers; 50 scenes per split (16 multi-event streams)",
        seed=20260601, families=_FAMILIES_V0, tiers=_TIERS_V0,
        scenes={"default": 50, "multi_event": 16}, env=_ENV_V0),
    "chimein-bench-v0-mini": SuiteDef(
        name="chimein-bench-v0-mini", revision=1,
        description="CI variant of chimein-bench-v0: 2 scenes per split, 1 short multi-event stream",
        seed=20260601, families=_FAMILIES_V0,
        tiers=_mini(_TIERS_V0),
        scenes={"default": 2, "multi_event": 1}, env=_ENV_V0),
}


# chimein-bench-v1: the sampler's presets as they are (devices, walking talkers, three speech
# generators with the speaker model, natural turns), and a tier drawn from pools no training
# preset draws from. Seeds of the clean/hard room pools differ from v0's so v1 has new rooms.
_HELDOUT_V1: dict[str, Any] = {
    "difficulty": "default",
    # voices and speakers: the held-back voices with the held-back speaker seed
    "speech_generators": sorted(HELDOUT_VOICES), "speech_voices": {g: list(v) for g, v in HELDOUT_VOICES.items()},
    "speaker_pool_seed": HELDOUT_SPEAKER_SEED, "speakers_per_voice": 8,
    # rooms and devices: pools of their own seeds
    "room_pool": 8, "positions_per_room": 8, "room_pool_seed": HELDOUT_ROOM_SEED,
    "device_pool": 16, "device_pool_seed": HELDOUT_DEVICE_SEED,
    "multi_event_duration_s": [30.0, 60.0],
}
_TIERS_V1: dict[str, dict[str, Any]] = {
    "clean": {"difficulty": "easy", "room_pool": 8, "positions_per_room": 8, "room_pool_seed": 111,
              "multi_event_duration_s": [30.0, 45.0]},
    "hard": {"difficulty": "hard", "room_pool": 8, "positions_per_room": 8, "room_pool_seed": 212,
             "multi_event_duration_s": [30.0, 60.0]},
    "heldout": _HELDOUT_V1,
}
_ENV_V1 = dict(DEFAULT_ENV)



SUITES.update({
    "chimein-bench-v1": SuiteDef(
        name="chimein-bench-v1", revision=1,
        description="6 task families x clean/hard/heldout tiers with devices, walking talkers and "
                    "natural speech; 30 scenes per split (10 multi-event streams)",
        seed=20261203, families=_FAMILIES_V0, tiers=_TIERS_V1,
        scenes={"default": 30, "multi_event": 10}, env=_ENV_V1, world="presets"),
    "chimein-bench-v1-mini": SuiteDef(
        name="chimein-bench-v1-mini", revision=1,
        description="CI variant of chimein-bench-v1: 2 scenes per split, 1 short multi-event stream",
        seed=20261203, families=_FAMILIES_V0, tiers=_mini(_TIERS_V1),
        scenes={"default": 2, "multi_event": 1}, env=_ENV_V1, world="presets"),
})


def tiny_suite(scenes: int = 1) -> SuiteDef:
    """A one-split suite of ``scenes`` easy addressed-speech scenes (not registered in
    :data:`SUITES`): seconds to materialise, for examples and smoke tests of a policy.

    Examples
    --------
    >>> tiny_suite(2).scenes
    {'default': 2}
    """
    return SuiteDef(name="tiny", revision=0, description="", seed=1, families=("addressed",),
                    tiers={"clean": {"difficulty": "easy"}}, scenes={"default": scenes})

def get_suite(name_or_path: str | os.PathLike[str] | SuiteDef) -> SuiteDef:
    """A built-in suite by name, or a suite defined in a YAML/JSON file.

    Raises
    ------
    SpecError
        Unknown name (the message lists the built-in suites) or an invalid file.
    """
    if isinstance(name_or_path, SuiteDef):
        return name_or_path
    s = str(name_or_path)
    if s in SUITES:
        return SUITES[s]
    p = Path(s).expanduser()
    if p.suffix.lower() in (".yaml", ".yml", ".json"):
        if not p.is_file():
            raise SpecError(f"{p}: suite definition file not found")
        text = read_utf8(p, "the suite file")
        try:
            if p.suffix.lower() == ".json":
                data = json.loads(text)
            else:
                import yaml

                data = yaml.safe_load(text)
        except Exception as e:  # json/yaml errors
            raise SpecError(f"{p}: not a valid suite file: {e}") from None
        return SuiteDef.from_dict(data, where=str(p))
    import difflib

    close = difflib.get_close_matches(s, list(SUITES), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise SpecError(f"suite {s!r}: unknown suite; {hint}built-in suites: {', '.join(SUITES)} "
                    "(or give the path of a suite .yaml file)")


# ============================================================================================
# Materialisation
# ============================================================================================
def suite_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``<cache_dir>/suites``; default ``$CHIMEIN_CACHE_DIR/suites`` or ``~/.cache/chimein/suites``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser() / "suites"
    env = os.environ.get("CHIMEIN_CACHE_DIR")
    return (Path(env).expanduser() if env else Path.home() / ".cache" / "chimein") / "suites"


@dataclass(frozen=True)
class MaterializedSuite:
    """A suite on disk: its definition, folder and fingerprints.

    ``fingerprint`` identifies the scenes (machine-independent), ``audio_fingerprint`` this
    materialisation's audio files (see the module docstring, *Fingerprints*).
    """

    definition: SuiteDef
    root: Path
    fingerprint: str
    audio_fingerprint: str

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def identity(self) -> dict[str, Any]:
        """What every result and episode line records about the suite."""
        return {"name": self.definition.name, "revision": self.definition.revision,
                "definition_hash": self.definition.definition_hash, "fingerprint": self.fingerprint,
                "audio_fingerprint": self.audio_fingerprint}

    def split_dir(self, split: str) -> Path:
        return self.root / self.definition.split(split).dirname

    def dataset(self, split: str) -> Any:
        from chimein.scenes.dataset import SceneDataset

        return SceneDataset(self.split_dir(split))


#: Prefix of the spec fingerprint's hash input, so it can never equal an audio fingerprint.
_SPEC_TAG = b"chimein-suite-specs-v1\n"


def _digest(definition: SuiteDef, rows: Mapping[str, Sequence[tuple[str, str]]], tag: bytes = b"") -> str:
    """sha256 of ``tag``, the definition hash and, split by split, ``id=<digest>;`` per scene.

    With an empty ``tag`` and the audio checksums this is the single fingerprint of chimein
    before the spec/audio split (results written then stay comparable, see :func:`same_audio`).
    """
    h = hashlib.sha256(tag)
    h.update(definition.definition_hash.encode())
    for s in definition.splits:
        h.update(f"\n{s.name}:".encode())
        for sid, digest in rows[s.name]:
            h.update(f"{sid}={digest};".encode())
    return h.hexdigest()


def _fingerprints(definition: SuiteDef, root: Path) -> tuple[str, str]:
    """``(fingerprint, audio_fingerprint)`` of a materialised suite, from its spec files and
    the audio checksums of its manifests."""
    from chimein.scenes.dataset import read_manifest, sha256_file

    specs: dict[str, list[tuple[str, str]]] = {}
    audio: dict[str, list[tuple[str, str]]] = {}
    for s in definition.splits:
        entries = sorted(read_manifest(root / s.dirname), key=lambda e: e.index)
        specs[s.name] = [(e.id, sha256_file(root / s.dirname / e.spec)) for e in entries]
        audio[s.name] = [(e.id, e.sha256) for e in entries]
    return _digest(definition, specs, _SPEC_TAG), _digest(definition, audio)


def spec_fingerprint(suite: str | os.PathLike[str] | SuiteDef) -> str:
    """The suite's ``fingerprint`` computed from its definition alone: every scene is sampled
    (its spec built, as :func:`~chimein.scenes.dataset.generate_dataset` builds it), none
    rendered. Equals :attr:`MaterializedSuite.fingerprint` of any materialisation by this
    chimein; about 15 s for ``chimein-bench-v0``'s 532 scenes (speech timing dominates).

    Examples
    --------
    >>> d = SuiteDef(name="tiny", revision=0, description="", seed=1, families=("addressed",),
    ...              tiers={"clean": {"difficulty": "easy"}}, scenes={"default": 1})
    >>> len(spec_fingerprint(d))
    64
    """
    from dataclasses import asdict

    from chimein.scenes.sampler import SamplerConfig, sample_scene, scene_seed

    definition = get_suite(suite)
    rows: dict[str, list[tuple[str, str]]] = {}
    for s in definition.splits:
        # the config as generate_dataset hands it to its workers (validated, JSON round trip)
        cfg = json.loads(json.dumps(asdict(SamplerConfig.from_mapping(s.config))))
        rows[s.name] = []
        for i in range(s.n):
            sid = f"scene-{i:06d}"  # generate_dataset's scene ids
            spec = sample_scene(cfg, scene_seed(s.seed, i), scene_id=sid)
            data = (spec.to_json() + "\n").encode("utf-8")  # the bytes SceneSpec.save writes
            rows[s.name].append((sid, hashlib.sha256(data).hexdigest()))
    return _digest(definition, rows, _SPEC_TAG)


def audio_fingerprint_of(identity: Mapping[str, Any]) -> str:
    """The audio fingerprint a suite identity records; in an identity written before the
    spec/audio split (no ``audio_fingerprint`` key) its ``fingerprint`` is the audio one."""
    return str(identity.get("audio_fingerprint") or identity.get("fingerprint") or "")


def same_scenes(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two suite identities (``results["suite"]``) hold the same scenes, so their runs
    may be compared and paired: equal spec ``fingerprint``; when either identity predates the
    split (it records only the audio hash), equal audio fingerprints."""
    if "audio_fingerprint" in a and "audio_fingerprint" in b:
        return a.get("fingerprint") == b.get("fingerprint")
    return same_audio(a, b)


def same_audio(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two suite identities record the same audio files (equal audio fingerprints)."""
    return audio_fingerprint_of(a) == audio_fingerprint_of(b)


def _split_job(args: tuple[dict[str, Any], int, int, str, str | None]) -> str:
    config, n, seed, out, rir_dir = args
    from chimein.scenes.dataset import generate_dataset

    generate_dataset(config, n=n, seed=seed, out=out, workers=1, progress=False, cache_dir=rir_dir)
    return out


def _complete(root: Path, s: SplitDef) -> bool:
    from chimein.scenes.dataset import read_manifest

    d = root / s.dirname
    if not (d / "manifest.jsonl").is_file():
        return False
    try:
        entries = read_manifest(d)
    except ChimeinError:
        return False
    return len(entries) == s.n and all((d / e.audio).is_file() and (d / e.spec).is_file() for e in entries)


def _verify(definition: SuiteDef, root: Path, rir_cache_dir: str | None) -> None:
    """Re-hash every audio file, and re-render the first scene of every split with this
    chimein to check that the cache is what the current scene engine produces."""
    import tempfile

    from chimein.scenes.dataset import SceneDataset, read_manifest, sha256_file

    for s in definition.splits:
        ds = SceneDataset(root / s.dirname)
        for e in ds.entries:
            if sha256_file(root / s.dirname / e.audio) != e.sha256:
                raise SpecError(f"{root / s.dirname / e.audio}: checksum differs from the manifest; "
                                f"delete {root / s.dirname} and rerun to regenerate the split")
        with tempfile.TemporaryDirectory(prefix="chimein-verify-") as tmp:
            _split_job((dict(s.config), 1, s.seed, tmp, rir_cache_dir))
            fresh = read_manifest(tmp)[0]
        if fresh.sha256 != ds.entries[0].sha256:
            raise SpecError(f"{root}: split {s.name!r} is stale: this chimein renders its first scene "
                            "differently (the scene engine changed since it was materialised); delete "
                            f"{root} to regenerate the suite")


def _read_info(sfile: Path) -> dict[str, Any]:
    """The content of ``suite.json`` (empty when missing or unreadable)."""
    try:
        info = json.loads(sfile.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return info if isinstance(info, dict) else {}


def materialize(suite: str | os.PathLike[str] | SuiteDef, cache_dir: str | os.PathLike[str] | None = None,
                workers: int | None = None, progress: bool = True, verify: bool = False,
                rir_cache_dir: str | None = None, backend: str = "local") -> MaterializedSuite:
    """Generate (or reuse, or finish) the suite's scenes under ``<cache>/suites/<name>``.

    Splits are generated in parallel processes (one split per job, scenes of a split in
    order), resumably: an interrupted run is finished by calling again. ``suite.json`` is
    written last with the fingerprints (and rewritten when a cache made before the spec/audio
    split is reused: the spec files are there, nothing is rendered again).

    Parameters
    ----------
    suite
        A name of :data:`SUITES`, a suite file path or a :class:`SuiteDef`.
    cache_dir
        Cache root (suites go to ``<cache_dir>/suites/<name>``); see :func:`suite_cache_dir`.
    workers
        Processes (default: all cores).
    verify
        Re-hash every audio file against its manifest checksum, and re-render each split's
        first scene to check that the cache matches this chimein's scene engine.
    rir_cache_dir
        Root of the RIR cache (default: the scene engine's).

    Raises
    ------
    SpecError
        The folder holds another definition of the same name (delete it or use another
        ``cache_dir``), or a file fails verification.

    Examples
    --------
    >>> import tempfile
    >>> d = SuiteDef(name="tiny", revision=0, description="", seed=1, families=("addressed",),
    ...              tiers={"clean": {"difficulty": "easy"}}, scenes={"default": 1})
    >>> m = materialize(d, cache_dir=tempfile.mkdtemp(), workers=1, progress=False)
    >>> len(m.fingerprint), m.dataset("clean/addressed").ids
    (64, ['scene-000000'])
    """
    from chimein.exec import imap_unordered

    definition = get_suite(suite)
    root = suite_cache_dir(cache_dir) / definition.name
    sfile = root / SUITE_FILE
    if sfile.is_file():
        info = _read_info(sfile)
        if info.get("definition_hash") != definition.definition_hash:
            raise SpecError(
                f"{root}: holds suite {definition.name!r} revision {info.get('revision')} "
                f"(definition {str(info.get('definition_hash'))[:12]}), but this chimein defines revision "
                f"{definition.revision} (definition {definition.definition_hash[:12]}); delete {root} to "
                "regenerate it, or set cache_dir to another folder")
    root.mkdir(parents=True, exist_ok=True)
    todo = [s for s in definition.splits if not _complete(root, s)]
    if todo:
        if sfile.exists():
            sfile.unlink()
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(definition.splits), initial=len(definition.splits) - len(todo),
                       desc=f"materialise {definition.name}", unit="split", file=sys.stderr)
        # longest splits first so the pool's last job is short
        todo.sort(key=lambda s: -s.n * (4 if s.family == "multi_event" else 1))
        jobs = [(dict(s.config), s.n, s.seed, str(root / s.dirname), rir_cache_dir) for s in todo]
        for _ in imap_unordered(_split_job, jobs, workers=workers, backend=backend, max_pending=len(jobs)):
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
    if verify:
        _verify(definition, root, rir_cache_dir)
    fp, afp = _fingerprints(definition, root)
    old = _read_info(sfile)
    if (old.get("fingerprint"), old.get("audio_fingerprint")) != (fp, afp):  # new, or written before the split
        from chimein._version import __version__

        atomic_write_text(sfile, json.dumps({**definition.to_dict(), "definition_hash": definition.definition_hash,
                                             "fingerprint": fp, "audio_fingerprint": afp,
                                             "chimein_version": __version__},
                                            indent=1, sort_keys=True) + "\n")
    return MaterializedSuite(definition, root, fp, afp)
