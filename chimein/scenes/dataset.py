"""Scene datasets on disk: generate (parallel, resumable) and read.

Layout of a dataset directory ``DIR``::

    DIR/dataset.json       how it was generated (config, seed, format, versions)
    DIR/manifest.jsonl     one line per scene: id, index, seed, duration_s, audio, spec, sha256, ...
    DIR/audio/<id>.flac    the rendered scene, (samples, mics), 24-bit FLAC (or float WAV)
    DIR/specs/<id>.json    the SceneSpec (JSON), enough to re-render or re-score it

Every file is written atomically (temporary file + rename) and a scene enters the manifest only
after its audio and spec are complete, so an interrupted ``generate`` loses nothing: rerunning
the same command skips what is in the manifest and makes the rest. Scene ``i`` always has the
seed :func:`~chimein.scenes.sampler.scene_seed` ``(seed, i)``, so the bytes do not depend on
the number of workers or on interruptions. When generation finishes, the manifest is rewritten
in index order.

Examples
--------
>>> import tempfile
>>> from chimein.scenes.dataset import generate_dataset, SceneDataset
>>> d = tempfile.mkdtemp()
>>> _ = generate_dataset({"family": "addressed", "difficulty": "easy"}, n=2, seed=0, out=d,
...                      workers=1, progress=False)
>>> ds = SceneDataset(d)
>>> len(ds), ds.load(0).audio.dtype
(2, dtype('float32'))
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chimein.errors import ChimeinError, SpecError
from chimein.io import atomic_write, atomic_write_text, safe_join
from chimein.scenes.audio import write_audio
from chimein.scenes.spec import SPEC_VERSION, SceneSpec

MANIFEST = "manifest.jsonl"
HEADER = "dataset.json"
AUDIO_FORMATS = ("flac", "wav")
_REQUIRED = ("id", "index", "seed", "duration_s", "audio", "spec", "sha256")
#: The file a materialised suite (``chimein.eval.suites``) keeps above its split datasets.
SUITE_FILE = "suite.json"
#: Audio files whose bytes matched their manifest checksum in this process, by (path, checksum,
#: inode, size, mtime): each file is hashed once however often it is loaded, and a file
#: replaced since is hashed again.
_VERIFIED: set[tuple[str, str, int, int, int, int]] = set()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class ManifestEntry:
    """One line of ``manifest.jsonl``."""

    id: str
    index: int
    seed: int
    duration_s: float
    audio: str
    spec: str
    sha256: str
    family: str = ""
    difficulty: str = ""
    n_mics: int = 1
    sample_rate: int = 16000

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def _parse_line(line: str, where: str) -> ManifestEntry:
    try:
        d = json.loads(line)
    except json.JSONDecodeError as e:
        raise SpecError(f"{where}: not valid JSON ({e.msg}); each line must be one JSON object") from None
    if not isinstance(d, dict):
        raise SpecError(f"{where}: expected a JSON object, got {type(d).__name__}")
    for k in _REQUIRED:
        if k not in d:
            raise SpecError(f"{where}: field '{k}' is missing")
    known = set(ManifestEntry.__dataclass_fields__)
    try:
        return ManifestEntry(**{k: v for k, v in d.items() if k in known})
    except TypeError as e:
        raise SpecError(f"{where}: malformed entry: {e}") from None


def read_manifest(root: str | Path, drop_partial_tail: bool = False) -> list[ManifestEntry]:
    """Parse ``root/manifest.jsonl``; errors name the line.

    ``drop_partial_tail`` tolerates an incomplete last line (a write cut off by a kill), as
    the resuming generator does; readers of a finished dataset get an error instead.
    """
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise SpecError(f"{path}: manifest not found; is {root} a dataset made by `chimein scenes generate`?")
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    entries: list[ManifestEntry] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        last = i == len(lines) - 1  # no trailing newline: possibly cut off
        try:
            entries.append(_parse_line(line, f"{path}:{i + 1}"))
        except ChimeinError:
            if drop_partial_tail and last:
                print(f"warning: {path}:{i + 1}: dropping an incomplete last line (interrupted write)", file=sys.stderr)
                break
            raise
    return entries


# ============================================================================================
# Reading
# ============================================================================================
def _restore_hint(root: Path) -> str:
    """How to restore a damaged file of the dataset at ``root``: regenerate the dataset, or
    the materialised suite it is a split of."""
    for up in root.resolve().parents[:3]:  # a suite's splits are <suite>/<tier>/<family>
        if (up / SUITE_FILE).is_file():
            return f"delete {up} (the materialised suite) and rerun to regenerate it"
    return ("delete it and rerun the `chimein scenes generate` command that made this dataset: "
            "it regenerates the scene")


class SceneDataset:
    """A generated scene dataset (or any directory in the same format).

    Validates the manifest and that every referenced file exists when opened. Each audio file
    is checked against the manifest's sha256 when it is first read in the process (the bytes
    read for decoding are hashed: no second read); ``verify=True`` checks it on every read.
    """

    def __init__(self, root: str | Path, verify: bool = False) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise SpecError(f"{self.root}: dataset directory not found")
        self.verify = verify
        self._register_recorded_sounds()
        self.entries = read_manifest(self.root)
        seen: set[str] = set()
        for e in self.entries:
            if e.id in seen:
                raise SpecError(f"{self.root / MANIFEST}: duplicate scene id {e.id!r}")
            seen.add(e.id)
            for fld in ("audio", "spec"):
                p = safe_join(self.root, getattr(e, fld), what=f"{MANIFEST} entry {e.id!r} field '{fld}'")
                if not p.is_file():
                    raise SpecError(f"{p}: missing file of scene {e.id!r} (field '{fld}'); rerun the "
                                    "`chimein scenes generate` command that made this dataset to restore it")
        self._index = {e.id: i for i, e in enumerate(self.entries)}

    def _register_recorded_sounds(self) -> None:
        """A dataset generated with ``recorded_sounds_dir`` names recorded (``fd_*``) event
        classes in its specs: register them from the folder its header records, so any process
        can load its scenes (recorded classes are never registered by importing chimein)."""
        hpath = self.root / HEADER
        if not hpath.is_file():
            return
        try:
            folder = json.loads(hpath.read_text(encoding="utf-8")).get("config", {}).get("recorded_sounds_dir")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            return  # a foreign or damaged header says nothing about recorded sounds
        if folder:
            from chimein.scenes.events import register_recorded_classes

            register_recorded_classes(folder)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[ManifestEntry]:
        return iter(self.entries)

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.entries]

    def index_of(self, scene_id: str) -> int:
        if scene_id not in self._index:
            raise SpecError(f"{self.root}: no scene {scene_id!r} in the manifest")
        return self._index[scene_id]

    def spec(self, i: int) -> SceneSpec:
        e = self.entries[i]
        return SceneSpec.load(safe_join(self.root, e.spec))

    def audio_bytes(self, i: int) -> tuple[bytes, Path]:
        """The bytes and path of scene ``i``'s audio file, checked against the manifest's sha256
        (the first time the file is read in this process; every time with ``verify=True``).

        Raises
        ------
        SpecError
            The bytes differ from the manifest's checksum (the file was replaced or corrupted),
            naming the file and how to restore it.
        """
        e = self.entries[i]
        path = safe_join(self.root, e.audio)
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            data = f.read()
        key = (str(path), e.sha256, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if self.verify or key not in _VERIFIED:
            if hashlib.sha256(data).hexdigest() != e.sha256:
                raise SpecError(f"{path}: checksum mismatch with {self.root / MANIFEST}: the file was replaced or "
                                f"corrupted; {_restore_hint(self.root)}")
            _VERIFIED.add(key)
        return data, path

    def load(self, i: int) -> Any:
        """The rendered scene ``i`` as :class:`~chimein.scenes.render.RenderedScene` (its audio
        checked as :meth:`audio_bytes` says)."""
        import soundfile as sf

        from chimein.scenes.render import RenderedScene

        data, path = self.audio_bytes(i)
        try:
            audio, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        except Exception as ex:
            raise SpecError(f"{path}: cannot read scene audio ({ex})") from None
        spec = self.spec(i)
        if sr != spec.sample_rate or audio.shape[1] != spec.mics.n:
            raise SpecError(f"{path}: audio is {sr} Hz x {audio.shape[1]} ch but the spec says "
                            f"{spec.sample_rate} Hz x {spec.mics.n} ch")
        return RenderedScene(audio=np.ascontiguousarray(audio), sample_rate=int(sr), spec=spec)


def write_scene_dataset(root: str | Path, scenes: Sequence[tuple[SceneSpec, np.ndarray]], header: Mapping[str, Any],
                        audio_format: str = "flac") -> Path:
    """Write ``(spec, audio)`` pairs (found scenes, a materialised scene mixture) as a dataset
    (``manifest.jsonl``, ``audio/``, ``specs/``, ``dataset.json``) readable by
    :class:`~chimein.scenes.dataset.SceneDataset` and every consumer of datasets; every file is
    written atomically, the manifest last, so readers never see a scene without its files.
    Manifest ``index`` is the position in ``scenes``. Returns the manifest path.

    Raises
    ------
    SpecError
        Duplicate scene ids, or an audio format other than ``flac``/``wav``.

    Examples
    --------
    >>> import tempfile
    >>> from chimein.scenes.sampler import sample_scene
    >>> from chimein.scenes.render import render
    >>> from chimein.scenes.dataset import SceneDataset
    >>> spec = sample_scene({"family": "addressed", "difficulty": "easy"}, seed=1, scene_id="a-0")
    >>> d = tempfile.mkdtemp()
    >>> _ = write_scene_dataset(d, [(spec, render(spec).audio)], {"made_by": "doctest"})
    >>> SceneDataset(d).ids
    ['a-0']
    """
    if audio_format not in AUDIO_FORMATS:
        raise SpecError(f"dataset: field 'audio_format': {audio_format!r} unsupported; use one of {AUDIO_FORMATS}")
    ids = [spec.id for spec, _ in scenes]
    if len(set(ids)) != len(ids):
        raise SpecError(f"dataset: scene ids must be unique, got duplicates in {ids}")
    out = Path(root)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, (spec, audio) in enumerate(scenes):
        a_rel, s_rel = f"audio/{spec.id}.{audio_format}", f"specs/{spec.id}.json"
        write_audio(out / a_rel, audio, spec.sample_rate)
        spec.save(out / s_rel)
        entries.append(ManifestEntry(id=spec.id, index=i, seed=int(spec.seed), duration_s=float(spec.duration_s),
                                     audio=a_rel, spec=s_rel, sha256=sha256_file(out / a_rel), family=spec.family,
                                     difficulty=spec.difficulty, n_mics=spec.mics.n, sample_rate=spec.sample_rate))
    from chimein._version import __version__

    atomic_write_text(out / HEADER, json.dumps({**dict(header), "audio_format": audio_format, "spec_version": SPEC_VERSION,
                                                "chimein_version": __version__}, indent=1, sort_keys=True) + "\n")
    atomic_write_text(out / MANIFEST, "".join(e.to_json() + "\n" for e in entries))
    return out / MANIFEST


# ============================================================================================
# Generation
# ============================================================================================
def _config_dict(config: Mapping[str, Any] | Any) -> dict[str, Any]:
    from chimein.scenes.sampler import SamplerConfig

    cfg = json.loads(json.dumps(asdict(SamplerConfig.from_mapping(config))))
    # an unset recorded-sound folder stays out of the header, so datasets made before the key
    # existed (same scenes, same bytes) still resume
    if cfg.get("recorded_sounds_dir") is None:
        cfg.pop("recorded_sounds_dir", None)
    return cfg


def _render_job(args: tuple[dict[str, Any], int, int, str, str, str | None]) -> tuple[Any, Any, str, str]:
    """Sample and render scene ``index``: ``(spec, rendered scene, audio_rel, spec_rel)``."""
    config, index, base_seed, _out, fmt, cache_dir = args
    from chimein.scenes.render import render
    from chimein.scenes.rir import RIRCache
    from chimein.scenes.sampler import sample_scene, scene_seed

    global _CACHE
    if _CACHE is None:
        _CACHE = RIRCache(cache_dir=cache_dir)
    sid = f"scene-{index:06d}"
    spec = sample_scene(config, scene_seed(base_seed, index), scene_id=sid)
    return spec, render(spec, cache=_CACHE), f"audio/{sid}.{fmt}", f"specs/{sid}.json"


def _entry(spec: Any, index: int, audio_rel: str, spec_rel: str, sha256: str) -> dict[str, Any]:
    return asdict(ManifestEntry(
        id=spec.id, index=index, seed=int(spec.seed), duration_s=spec.duration_s, audio=audio_rel, spec=spec_rel,
        sha256=sha256, family=spec.family, difficulty=spec.difficulty, n_mics=spec.mics.n,
        sample_rate=spec.sample_rate,
    ))


def _job(args: tuple[dict[str, Any], int, int, str, str, str | None]) -> dict[str, Any]:
    """Worker (local backends, same disk as the driver): sample, render and write one scene
    atomically; return its manifest entry (as a dict) for the driver to append."""
    spec, scene, audio_rel, spec_rel = _render_job(args)
    root = Path(args[3])
    write_audio(root / audio_rel, scene.audio, spec.sample_rate)
    spec.save(root / spec_rel)
    return _entry(spec, args[1], audio_rel, spec_rel, sha256_file(root / audio_rel))


def _ray_job(args: tuple[dict[str, Any], int, int, str, str, str | None]) -> dict[str, Any]:
    """Worker (Ray backend, possibly another machine): sample and render one scene, encode it
    with the very writers of :func:`_job` in a private temporary folder, and return the
    manifest entry with the files' bytes (``audio``, ``spec``) for the driver to write: the
    driver is the only writer of ``out``, and the bytes equal the local backend's."""
    import tempfile

    spec, scene, audio_rel, spec_rel = _render_job(args)
    with tempfile.TemporaryDirectory(prefix="chimein-scene-") as tmp:
        write_audio(Path(tmp) / audio_rel, scene.audio, spec.sample_rate)
        spec.save(Path(tmp) / spec_rel)
        audio = (Path(tmp) / audio_rel).read_bytes()
        spec_bytes = (Path(tmp) / spec_rel).read_bytes()
    return {"entry": _entry(spec, args[1], audio_rel, spec_rel, hashlib.sha256(audio).hexdigest()),
            "audio": audio, "spec": spec_bytes}


def _write_shipped(root: Path, res: Mapping[str, Any]) -> dict[str, Any]:
    """Driver side of :func:`_ray_job`: write the scene's files atomically, return its entry."""
    e = res["entry"]
    for rel, data in ((e["audio"], res["audio"]), (e["spec"], res["spec"])):
        atomic_write(safe_join(root, rel), lambda t, data=data: t.write_bytes(data))  # no fsync: as write_audio
    return dict(e)


_CACHE: Any = None


def generate_dataset(
    config: Mapping[str, Any] | Any,
    n: int,
    seed: int,
    out: str | Path,
    workers: int | None = None,
    audio_format: str = "flac",
    cache_dir: str | None = None,
    progress: bool = True,
    backend: str = "local",
    ray_options: Mapping[str, Any] | None = None,
) -> Path:
    """Generate (or resume) ``n`` scenes into ``out``; returns the manifest path.

    ``backend`` is that of :func:`chimein.exec.imap_unordered` (``local``, ``inline`` or
    ``ray`` with ``ray_options``). With the local backends each worker writes its scene's files
    (same disk); with Ray the workers return the encoded files and this process writes them, so
    ``out`` need only exist on the driver's machine. The bytes are the same in every case.

    Raises :class:`SpecError` if ``out`` holds a dataset made with another config, seed or
    format (use another directory), or if ``n``/``audio_format`` are invalid.
    """
    from chimein.exec import imap_unordered

    if int(n) < 1:
        raise SpecError(f"generate: field 'n': need at least 1 scene, got {n}")
    if audio_format not in AUDIO_FORMATS:
        raise SpecError(f"generate: field 'format': {audio_format!r} unsupported; use one of {AUDIO_FORMATS}")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    cfg = _config_dict(config)
    header = {"config": cfg, "seed": int(seed), "audio_format": audio_format, "spec_version": SPEC_VERSION}
    hpath = root / HEADER
    if hpath.exists():
        old = json.loads(hpath.read_text())
        for k in ("config", "seed", "audio_format", "spec_version"):
            if old.get(k) != header[k]:
                raise SpecError(f"{hpath}: this directory holds a dataset made with a different '{k}' "
                                f"({old.get(k)!r} vs {header[k]!r}); use a new out= directory")
    else:
        from chimein._version import __version__

        atomic_write_text(hpath, json.dumps({**header, "chimein_version": __version__}, indent=1, sort_keys=True))

    mpath = root / MANIFEST
    done: dict[int, ManifestEntry] = {}
    if mpath.exists():
        for e in read_manifest(root, drop_partial_tail=True):
            if not ((root / e.audio).is_file() and (root / e.spec).is_file()):
                continue
            if sha256_file(root / e.audio) != e.sha256:  # replaced or corrupted: make it again
                print(f"warning: {root / e.audio}: checksum differs from {mpath}; regenerating scene {e.id}",
                      file=sys.stderr)
                continue
            done[e.index] = e
        # rewrite without a partial tail so appends start on a fresh line
        atomic_write_text(mpath, "".join(e.to_json() + "\n" for e in sorted(done.values(), key=lambda e: e.index)))
    todo = [i for i in range(int(n)) if i not in done]

    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=int(n), initial=int(n) - len(todo), desc="scenes", unit="scene")
    jobs = ((cfg, i, int(seed), str(root), audio_format, cache_dir) for i in todo)
    fd = os.open(mpath, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        ray = backend == "ray"
        for _, res in imap_unordered(_ray_job if ray else _job, jobs, workers=workers, backend=backend,
                                     ray_options=ray_options):
            e = ManifestEntry(**(_write_shipped(root, res) if ray else res))
            os.write(fd, (e.to_json() + "\n").encode())  # one write per line: never interleaved
            os.fsync(fd)
            done[e.index] = e
            if bar is not None:
                bar.update(1)
    finally:
        os.close(fd)
        if bar is not None:
            bar.close()
    entries = sorted(done.values(), key=lambda e: e.index)
    atomic_write_text(mpath, "".join(e.to_json() + "\n" for e in entries))
    return mpath
