"""Named, versioned evaluation suites: regenerated bit-identically from their name.

A suite is a set of *splits*, one per task family x tier, each a scene dataset made by
:func:`~chimein.scenes.dataset.generate_dataset` from a sampler config and a seed that the
definition fixes. The definition (families, tiers, scene counts, seeds, env and reward options)
lives in code (:data:`SUITES`) or in a YAML file of the same fields, and is identified by its
``definition_hash``. Materialising writes every split to a cache folder
(``$CHIMEIN_CACHE_DIR/suites/<name>``, default ``~/.cache/chimein/suites/<name>``) once; later
runs reuse it. The **fingerprint** -- a hash of the definition and of every split's manifest
(scene ids and audio checksums) -- is recorded with every evaluation, so two results are
comparable exactly when their fingerprints are equal.

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

from chimein.errors import ChimeinError, SpecError
from chimein.io import atomic_write_text

__all__ = ["SUITES", "MaterializedSuite", "SplitDef", "SuiteDef", "get_suite", "materialize",
           "suite_cache_dir"]

SUITE_FILE = "suite.json"
_SUITE_FIELDS = ("name", "revision", "description", "seed", "families", "tiers", "scenes",
                 "family_overrides", "env", "reward")


def _canon(x: Any) -> str:
    return json.dumps(x, sort_keys=True, separators=(",", ":"))


def _name_seed(*parts: Any) -> int:
    """A 32-bit seed from a base seed and names (stable across processes and Python versions)."""
    key = [int(parts[0])] + [zlib.crc32(str(p).encode("utf-8")) for p in parts[1:]]
    return int(np.random.SeedSequence(key).generate_state(1, dtype=np.uint32)[0])


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
    """

    name: str
    revision: int
    description: str
    seed: int
    families: tuple[str, ...]
    tiers: Mapping[str, Mapping[str, Any]]
    scenes: Mapping[str, int]
    family_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    env: Mapping[str, Any] = field(default_factory=lambda: {"chunk_ms": 80.0, "speak_s": 2.0})
    reward: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"suite {self.name!r}"
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
                cfg = {**dict(tcfg), **dict(self.family_overrides.get(fam, {})), "family": fam}
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
        }))

    @property
    def definition_hash(self) -> str:
        """sha256 of the canonical JSON of the definition (the description excluded)."""
        d = self.to_dict()
        d.pop("description")
        return hashlib.sha256(_canon(d).encode()).hexdigest()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "suite") -> SuiteDef:
        """Build from a mapping of the same fields (e.g. a YAML file); errors name the field."""
        if not isinstance(d, Mapping):
            raise SpecError(f"{where}: expected a mapping of suite fields, got {type(d).__name__}")
        unknown = sorted(set(d) - set(_SUITE_FIELDS))
        if unknown:
            raise SpecError(f"{where}: unknown field {unknown[0]!r}; known fields: {list(_SUITE_FIELDS)}")
        for req in ("name", "families", "tiers", "scenes"):
            if req not in d:
                raise SpecError(f"{where}: field {req!r} is missing")
        scenes = d["scenes"]
        if isinstance(scenes, int):
            scenes = {"default": scenes}
        try:
            return cls(name=str(d["name"]), revision=int(d.get("revision", 0)),
                       description=str(d.get("description", "")), seed=int(d.get("seed", 0)),
                       families=tuple(d["families"]), tiers={str(k): dict(v) for k, v in d["tiers"].items()},
                       scenes=dict(scenes), family_overrides={str(k): dict(v) for k, v in
                                                              d.get("family_overrides", {}).items()},
                       env=dict(d.get("env", {"chunk_ms": 80.0, "speak_s": 2.0})),
                       reward=dict(d.get("reward", {})))
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
_FAMILIES_V0 = ("addressed", "proactive", "monitoring", "pauses", "distractors", "multi_event")
_ENV_V0 = {"chunk_ms": 80.0, "speak_s": 2.0}

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
        tiers={k: {**v, "room_pool": 2, "positions_per_room": 4, "multi_event_duration_s": [20.0, 25.0]}
               for k, v in _TIERS_V0.items()},
        scenes={"default": 2, "multi_event": 1}, env=_ENV_V0),
}


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
        text = p.read_text(encoding="utf-8")
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
    """A suite on disk: its definition, folder and fingerprint."""

    definition: SuiteDef
    root: Path
    fingerprint: str

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def identity(self) -> dict[str, Any]:
        """What every result and episode line records about the suite."""
        return {"name": self.definition.name, "revision": self.definition.revision,
                "definition_hash": self.definition.definition_hash, "fingerprint": self.fingerprint}

    def split_dir(self, split: str) -> Path:
        return self.root / self.definition.split(split).dirname

    def dataset(self, split: str) -> Any:
        from chimein.scenes.dataset import SceneDataset

        return SceneDataset(self.split_dir(split))


def _fingerprint(definition: SuiteDef, root: Path) -> str:
    from chimein.scenes.dataset import read_manifest

    h = hashlib.sha256()
    h.update(definition.definition_hash.encode())
    for s in definition.splits:
        entries = read_manifest(root / s.dirname)
        h.update(f"\n{s.name}:".encode())
        for e in sorted(entries, key=lambda e: e.index):
            h.update(f"{e.id}={e.sha256};".encode())
    return h.hexdigest()


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


def materialize(suite: str | os.PathLike[str] | SuiteDef, cache_dir: str | os.PathLike[str] | None = None,
                workers: int | None = None, progress: bool = True, verify: bool = False,
                rir_cache_dir: str | None = None, backend: str = "local") -> MaterializedSuite:
    """Generate (or reuse, or finish) the suite's scenes under ``<cache>/suites/<name>``.

    Splits are generated in parallel processes (one split per job, scenes of a split in
    order), resumably: an interrupted run is finished by calling again. ``suite.json`` is
    written last with the fingerprint.

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
    from chimein.parallel import imap_unordered

    definition = get_suite(suite)
    root = suite_cache_dir(cache_dir) / definition.name
    sfile = root / SUITE_FILE
    if sfile.is_file():
        try:
            info = json.loads(sfile.read_text())
        except json.JSONDecodeError:
            info = {}
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
    fp = _fingerprint(definition, root)
    if not sfile.is_file() or json.loads(sfile.read_text()).get("fingerprint") != fp:
        from chimein._version import __version__

        atomic_write_text(sfile, json.dumps({**definition.to_dict(), "definition_hash": definition.definition_hash,
                                             "fingerprint": fp, "chimein_version": __version__},
                                            indent=1, sort_keys=True) + "\n")
    return MaterializedSuite(definition, root, fp)


def split_names(definition: SuiteDef) -> Sequence[str]:
    return [s.name for s in definition.splits]
