"""Scene datasets as Hugging Face audiofolders, and annotated recordings read back.

A Hugging Face **audiofolder** is a folder of audio files plus a ``metadata.jsonl`` whose rows
name a file (``file_name``) and carry any other columns; ``datasets.load_dataset("audiofolder",
data_dir=DIR)`` turns it into a dataset with an ``audio`` column and those columns. chimein
writes its scenes that way (:func:`export_audiofolder`, ``chimein scenes export-hf``) with the
annotations as native nested columns, and reads the same format back as *recordings*
(:func:`read_recordings`): a lab's own recordings, annotated by hand in these columns, can be
scored by ``chimein eval recordings=DIR`` without writing a :class:`~chimein.scenes.spec.SceneSpec`.

Layout written by :func:`export_audiofolder`::

    DIR/README.md                        dataset card: how to load, the columns (COLUMNS)
    DIR/chimein.json                     provenance: the suite (or dataset folders), the env and
                                         reward options its scenes are played with
    DIR/<hf_split>/metadata.jsonl        one row per scene, in split order then scene order
    DIR/<hf_split>/<split>/<id>.flac     the scene's audio file, its bytes copied (all microphones)

``hf_split`` (default ``test``: a suite is evaluation data) is the ``datasets`` split, inferred
from the folder name; chimein's own splits (``clean/addressed``, ...) are the ``split`` column.
The folder is written in a temporary sibling and renamed into place (:func:`chimein.io.atomic_write_dir`),
so ``DIR`` is either the previous export or the complete new one.

Columns (:data:`COLUMNS`): ``cues`` and ``spans`` are lists of objects in exactly the JSON shape
of a scene spec's ``annotations`` (:class:`~chimein.scenes.spec.Cue`,
:class:`~chimein.scenes.spec.Span`), which ``datasets`` loads as native columns (``List`` of
structs: ``window`` a list of two float64). Response windows are the cues whose ``expected`` is
``RESPOND`` or ``INTERVENE``; speech, mid-turn pauses and backchannels are the spans of that
``kind``.

Reading recordings (:func:`read_recordings`) validates every row at the boundary: a wrong or
missing field raises :class:`~chimein.errors.SpecError` naming ``metadata file:line``, the field
and the fix; audio paths must stay inside the folder. ``file_name`` and ``cues`` are required
(``[]``: a recording where nothing calls for a decision); the rest default (``scene_id``: the
file name without its suffix; ``split``: the metadata file's folder; ``family``: ``custom``;
``tier``: ``recorded``; ``seed``: 0; ``spans``: none; ``duration_s``: the audio's length). A
``metadata.csv`` is read too, with ``cues`` and ``spans`` as JSON text in their cells.

Examples
--------
>>> import tempfile
>>> from chimein.scenes.dataset import generate_dataset
>>> d = tempfile.mkdtemp()
>>> _ = generate_dataset({"family": "addressed", "difficulty": "easy"}, n=1, seed=0, out=d + "/ds",
...                      workers=1, progress=False)
>>> meta = export_audiofolder([ExportSource("ds", d + "/ds")], d + "/hf", progress=False)
>>> [(r.split, r.scene_id, r.annotations.cues[0].expected) for r in read_recordings(d + "/hf")]
[('ds', 'scene-000000', 'RESPOND')]
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chimein.errors import AudioError, ChimeinError, SpecError
from chimein.io import _umask, atomic_write_dir, read_jsonl, read_utf8, safe_join
from chimein.scenes.spec import Annotations, _int, _not_number

__all__ = ["COLUMNS", "DEFAULT_HF_SPLIT", "DURATION_TOLERANCE_S", "INFO", "METADATA", "ExportSource",
           "Recording", "annotations_by_key", "export_audiofolder", "metadata_files", "read_export_info",
           "read_recordings"]

METADATA = "metadata.jsonl"
METADATA_CSV = "metadata.csv"
#: The provenance file of an export (format, source, env and reward options).
INFO = "chimein.json"
CARD = "README.md"
FORMAT, FORMAT_VERSION = "chimein-audiofolder", 1
DEFAULT_HF_SPLIT = "test"
#: How far a row's ``duration_s`` may differ from its audio's length, and annotations may run past
#: the end of the audio (s): header lengths of compressed files are estimates.
DURATION_TOLERANCE_S = 0.05
_HF_SPLIT = re.compile(r"^\w+(\.\w+)*$")  # the split names `datasets` accepts

#: The columns of ``metadata.jsonl``: (name, ``datasets`` type, meaning). The dataset card lists them.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("file_name", "string", "the audio file, relative to the folder of `metadata.jsonl`; `datasets` "
                            "turns it into the `audio` column. Required"),
    ("scene_id", "string", "the scene's id, unique within its split (default: `file_name` without suffix)"),
    ("split", "string", "chimein's split: `<tier>/<family>` of a suite, the dataset folder's name "
                        "otherwise (default: the metadata file's folder)"),
    ("tier", "string", "difficulty tier: `clean`, `hard`, `heldout` of a suite, the scene's preset "
                       "otherwise (default: `recorded`)"),
    ("family", "string", "task family: addressed, proactive, monitoring, pauses, distractors, "
                         "multi_event, ... (default: `custom`)"),
    ("duration_s", "float64", "length of the scene (s) (default: the audio's)"),
    ("sample_rate", "int64", "sample rate of the audio file (Hz); informative, checked against the file"),
    ("n_channels", "int64", "microphone channels of the file, channel 0 the reference microphone; "
                            "informative, checked against the file"),
    ("seed", "int64", "the scene spec's seed: seeded baselines (`random`) draw from it (default: 0)"),
    ("cues", "list of {id, expected, window, label, safety_critical, source_ids, onset_s}",
     "moments that call for a decision. `expected`: RESPOND, INTERVENE or IGNORE; `window`: "
     "[start_s, end_s], for RESPOND/INTERVENE the response window (first action of that kind inside "
     "it is a hit), for IGNORE the stimulus that needs no action (acting in it is a false alarm); "
     "`safety_critical`: a safety event (misses counted apart); `onset_s`: when the stimulus began "
     "(or null); `source_ids`: the spec's sources behind it. Required (`[]`: none)"),
    ("spans", "list of {start_s, end_s, speaker, kind, addressed}",
     "who is talking when: `kind` speech, pause (a mid-turn pause) or backchannel; acting inside any "
     "span is an interruption; `addressed`: the speech is directed at the assistant (default: `[]`)"),
)


# ============================================================================================
# Export
# ============================================================================================
@dataclass(frozen=True)
class ExportSource:
    """One scene dataset folder (``chimein scenes generate``, or a split of a materialised
    suite) exported as the chimein split ``split``; ``tier`` and ``family`` fill those columns
    (None: the scene spec's ``difficulty`` and ``family``)."""

    split: str
    root: str | os.PathLike[str]
    tier: str | None = None
    family: str | None = None


def _check_out(out: Path) -> None:
    """Refuse a destination that is a file, or a folder with files that is not an export."""
    if out.exists() and not out.is_dir():
        raise SpecError(f"export-hf: field 'out': {out} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / INFO).is_file():
        raise SpecError(f"export-hf: field 'out': {out} holds files that are not a chimein export (no {INFO}); "
                        "choose a new or empty folder, or delete it")


def scene_row(spec: Any, file_name: str, split: str, tier: str, family: str, sample_rate: int,
              n_channels: int) -> dict[str, Any]:
    """The ``metadata.jsonl`` row of one scene (columns in :data:`COLUMNS` order; ``cues`` and
    ``spans`` as the spec's own JSON)."""
    ann = spec.to_dict()["annotations"]
    for c in ann["cues"]:  # floats everywhere, so every row (and every block Arrow reads) infers float64
        c["window"] = [float(v) for v in c["window"]]
        c["onset_s"] = None if c["onset_s"] is None else float(c["onset_s"])
    for sp in ann["spans"]:
        sp["start_s"], sp["end_s"] = float(sp["start_s"]), float(sp["end_s"])
    return {"file_name": file_name, "scene_id": spec.id, "split": split, "tier": tier, "family": family,
            "duration_s": float(spec.duration_s), "sample_rate": int(sample_rate), "n_channels": int(n_channels),
            "seed": int(spec.seed), "cues": ann["cues"], "spans": ann["spans"]}


def export_audiofolder(sources: Sequence[ExportSource], out: str | os.PathLike[str], *,
                       hf_split: str = DEFAULT_HF_SPLIT, info: Mapping[str, Any] | None = None,
                       title: str = "chimein scenes", progress: bool = True) -> Path:
    """Write scene datasets as one Hugging Face audiofolder (see the module docstring).

    Parameters
    ----------
    sources
        The datasets to export, each as one chimein split (split names must differ).
    out
        The folder; replaced as a whole when it holds an earlier export, refused when it holds
        other files.
    hf_split
        The ``datasets`` split (folder) name: letters, digits and ``_`` (``test``, ``train``).
    info
        Extra provenance for ``chimein.json`` (``source``, ``env``, ``reward``: the options the
        scenes are played with; ``chimein eval recordings=DIR`` uses ``env`` and ``reward``).
    title
        The dataset card's title.
    progress
        A progress bar over the scenes on stderr.

    Returns
    -------
    Path
        ``out/<hf_split>/metadata.jsonl``.

    Raises
    ------
    SpecError
        A bad ``hf_split`` or ``out``, a duplicate split, an empty or damaged dataset (checksum), or
        a split name that would leave the folder.
    """
    from chimein._version import __version__
    from chimein.scenes.dataset import SceneDataset

    if not isinstance(hf_split, str) or not _HF_SPLIT.match(hf_split):
        raise SpecError(f"export-hf: field 'hf_split': {hf_split!r} is not a datasets split name; use letters, "
                        "digits and '_' (test, train, validation)")
    names = [s.split for s in sources]
    if len(set(names)) != len(names) or not names:
        raise SpecError(f"export-hf: need one or more sources with different split names, got {names}")
    target = Path(out).resolve()  # "." and ".." have no name to rename
    _check_out(target)
    opened = [(s, SceneDataset(Path(s.root))) for s in sources]  # validated before anything is written
    n = sum(len(ds) for _, ds in opened)
    if n == 0:
        raise SpecError(f"export-hf: no scenes in {[str(s.root) for s in sources]}")

    def write(tmp: Path) -> None:
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=n, desc="export-hf", unit="scene", file=sys.stderr)
        rows: list[dict[str, Any]] = []
        try:
            for src, ds in opened:
                for i, e in enumerate(ds.entries):
                    data, _ = ds.audio_bytes(i)  # checked against the dataset's checksum
                    spec = ds.spec(i)
                    rel = f"{src.split}/{Path(e.audio).name}"
                    dest = safe_join(tmp / hf_split, rel, what=f"export-hf: split {src.split!r}, scene {e.id!r}:")
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(data)  # the whole folder is renamed into place at the end
                    rows.append(scene_row(spec, rel, src.split, src.tier or spec.difficulty, src.family or spec.family,
                                          spec.sample_rate, spec.mics.n))
                    if bar is not None:
                        bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        (tmp / hf_split / METADATA).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        meta = {**dict(info or {}), "format": FORMAT, "format_version": FORMAT_VERSION, "hf_split": hf_split,
                "n_scenes": n, "chimein_version": __version__}
        (tmp / INFO).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        (tmp / CARD).write_text(dataset_card(title, rows, meta), encoding="utf-8")

    atomic_write_dir(target, write, mode=0o777 & ~_umask())
    return Path(out) / hf_split / METADATA


def dataset_card(title: str, rows: Sequence[Mapping[str, Any]], meta: Mapping[str, Any]) -> str:
    """The ``README.md`` of an export: YAML header, how to load it, its splits and columns."""
    hf = meta["hf_split"]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["split"]] = counts.get(r["split"], 0) + 1
    src = meta.get("source") or {}
    where = (f"suite `{src['suite']['name']}` (revision {src['suite'].get('revision')}, fingerprint "
             f"`{str(src['suite'].get('fingerprint'))[:12]}`)" if "suite" in src else "chimein scene datasets")
    lines = [
        "---", f"pretty_name: {json.dumps(title)}", "tags: [audio, turn-taking, chimein]",
        "task_categories: [audio-classification]", "---", "", f"# {title}", "",
        f"{len(rows)} scenes of {where}, written by `chimein scenes export-hf` (chimein "
        f"{meta['chimein_version']}) as a Hugging Face audiofolder: the scene audio (lossless, every "
        "microphone; channel 0 is the reference) and its ground-truth annotations as columns.", "",
        "## Loading", "", "```python", "from datasets import load_dataset, Audio", "",
        f'ds = load_dataset("audiofolder", data_dir="<this folder>")["{hf}"]',
        'row = ds.cast_column("audio", Audio(decode=False))[0]  # {"path": ..., "bytes": None}; open with soundfile',
        "```", "",
        "`datasets` 5.x needs `torchcodec` (with FFmpeg) to build and decode any audio column. Score a "
        "policy on these files with `chimein eval policy=NAME recordings=<this folder> out=RUN`, and "
        "re-score logged episodes against these annotations with `chimein eval rescore RUN "
        "annotations=<this folder>`.", "",
        "## Splits", "",
        f"One `datasets` split, `{hf}` (the folder `{hf}/`); chimein's splits are the `split` column:", "",
        "| split | scenes |", "|---|---|", *[f"| {k} | {v} |" for k, v in counts.items()], "",
        *([f"The scenes are played with env options {json.dumps(meta['env'], sort_keys=True)} and reward "
           f"{json.dumps(meta.get('reward') or {}, sort_keys=True)} (`chimein.json`).", ""] if "env" in meta else []),
        "## Columns", "", "| column | type | meaning |", "|---|---|---|",
        *[f"| `{name}` | {typ} | {text} |" for name, typ, text in COLUMNS], "",
    ]
    return "\n".join(lines)


# ============================================================================================
# Reading recordings
# ============================================================================================
@dataclass(frozen=True)
class Recording:
    """One validated row of a recordings folder: the audio file and its annotations.

    ``duration_s`` is the row's (or the audio's) length; ``sample_rate`` and ``n_channels`` are
    the file's (0 when the audio was not checked); ``where`` names the row in messages
    (``metadata file:line``).
    """

    scene_id: str
    split: str
    family: str
    tier: str
    seed: int
    path: Path
    file_name: str
    annotations: Annotations
    duration_s: float | None
    sample_rate: int
    n_channels: int
    where: str

    @property
    def key(self) -> tuple[str, str]:
        """``(split, scene_id)``: what identifies the recording (and its episode)."""
        return self.split, self.scene_id


def read_export_info(root: str | os.PathLike[str]) -> dict[str, Any] | None:
    """``chimein.json`` of an export (None for a folder a lab wrote itself)."""
    p = Path(root) / INFO
    if not p.is_file():
        return None
    try:
        d = json.loads(read_utf8(p, INFO))
    except json.JSONDecodeError as e:
        raise SpecError(f"{p}: not valid JSON ({e.msg}); delete it or export the folder again") from None
    if not isinstance(d, dict):
        raise SpecError(f"{p}: expected a JSON object; delete it or export the folder again")
    return d


def metadata_files(root: Path) -> list[Path]:
    """The ``metadata.jsonl`` and ``metadata.csv`` files under ``root`` (not in hidden folders),
    sorted; raises :class:`SpecError` saying what to write when there is none."""
    files = sorted(p for name in (METADATA, METADATA_CSV) for p in root.rglob(name)
                   if not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not files:
        extra = " (metadata.parquet is not read by chimein: write metadata.jsonl)" if any(root.rglob("metadata.parquet")) else ""
        raise SpecError(f"{root}: no {METADATA} or {METADATA_CSV} found{extra}; write one row per recording: "
                        '{"file_name": "a.wav", "cues": [{"expected": "RESPOND", "window": [2.0, 5.0]}]}')
    return files


_CSV_FLOATS, _CSV_INTS, _CSV_JSON = ("duration_s",), ("seed", "sample_rate", "n_channels"), ("cues", "spans")


def _csv_rows(path: Path) -> list[tuple[str, Any]]:
    """Rows of a ``metadata.csv``: numbers parsed, ``cues``/``spans`` decoded from JSON text,
    empty cells left out (as missing keys)."""
    reader = csv.DictReader(io.StringIO(read_utf8(path, "the metadata")))
    out: list[tuple[str, Any]] = []
    for r in reader:
        where = f"{path}:{reader.line_num}"
        if None in r:
            raise SpecError(f"{where}: more cells than columns in the header; quote cells that hold commas "
                            "(JSON in 'cues' and 'spans')")
        row: dict[str, Any] = {}
        for k, v in r.items():
            if v is None or not v.strip():
                continue
            try:
                row[k] = (float(v) if k in _CSV_FLOATS else int(v) if k in _CSV_INTS
                          else json.loads(v) if k in _CSV_JSON else v)
            except json.JSONDecodeError as e:
                raise SpecError(f"{where}: field {k!r}: not valid JSON ({e.msg}); write the list as JSON text, "
                                'e.g. [{"expected": "RESPOND", "window": [2.0, 5.0]}]') from None
            except ValueError:
                raise SpecError(f"{where}: field {k!r}: {v!r} is not a number") from None
        out.append((where, row))
    return out


def _rows(path: Path) -> list[tuple[str, Any]]:
    if path.name == METADATA_CSV:
        return _csv_rows(path)
    rows, cut = read_jsonl(path, "each line must be one JSON object: one recording")
    if cut:
        raise SpecError(f"{path}: the last line is not valid JSON; fix it (one JSON object per line)")
    return [(f"{path}:{line}", row) for line, row in rows]


def _text(row: Mapping[str, Any], key: str, where: str, default: str) -> str:
    v = row.get(key)
    if v is None:
        return default
    if not isinstance(v, str) or not v.strip():
        raise SpecError(f"{where}: field {key!r}: expected a non-empty string, got {v!r}; fix it or drop the column")
    return v


def _number(row: Mapping[str, Any], key: str, where: str) -> float | None:
    v = row.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise SpecError(f"{where}: field {key!r}: {_not_number(v)}")
    if not math.isfinite(v) or v <= 0:
        raise SpecError(f"{where}: field {key!r}: expected a positive number of seconds, got {v!r}")
    return float(v)


def _audio_info(path: Path, where: str) -> tuple[int, int, int]:
    """``(sample rate, frames, channels)`` from the header (no decoding)."""
    import soundfile as sf

    from chimein.scenes.audio import _check_size

    try:
        info = sf.info(str(path))
        _check_size(path, int(info.samplerate), int(info.frames))
    except AudioError as e:
        raise AudioError(f"{where}: {e}") from None
    except Exception as e:  # soundfile.LibsndfileError, OSError
        raise AudioError(f"{where}: {path}: cannot read the audio header ({e}); is it a valid WAV/FLAC/OGG/MP3 "
                         "file?") from None
    return int(info.samplerate), int(info.frames), int(info.channels)


def _recording(row: Any, where: str, root: Path, base: Path, check_audio: bool) -> Recording:
    """One row, validated (see the module docstring for the columns and defaults)."""
    if not isinstance(row, Mapping):
        raise SpecError(f"{where}: expected a JSON object (one recording per line), got {type(row).__name__}")
    fn = row.get("file_name")
    if not isinstance(fn, str) or not fn.strip():
        raise SpecError(f"{where}: field 'file_name': missing or empty; give the audio file's path relative to {base}")
    path = safe_join(root, base.relative_to(root) / fn, what=f"{where}: field 'file_name'")
    if check_audio and not path.is_file():
        raise SpecError(f"{where}: field 'file_name': no audio file at {path}; fix the path (relative to {base}) "
                        "or add the file")
    default_split = base.relative_to(root).as_posix()
    seed = 0 if row.get("seed") is None else _int(where, "seed", row["seed"])
    if seed < 0:
        raise SpecError(f"{where}: field 'seed': must be >= 0, got {seed}")
    if "cues" not in row or row["cues"] is None:
        raise SpecError(f"{where}: field 'cues': missing; list the moments that call for a decision, "
                        '[{"expected": "RESPOND", "window": [start_s, end_s]}], or [] for none')
    cues = row["cues"]
    if isinstance(cues, list):  # a hand-written cue may leave out its id: number it
        cues = [{**c, "id": c.get("id") or f"c{i}"} if isinstance(c, Mapping) else c for i, c in enumerate(cues)]
    try:
        ann = Annotations.from_dict({"cues": cues, "spans": row.get("spans") or []}, where)
    except ChimeinError as e:
        raise SpecError(str(e)) from None
    duration = _number(row, "duration_s", where)
    sr = frames = channels = 0
    if check_audio:
        sr, frames, channels = _audio_info(path, where)
        audio_s = frames / sr
        for key, want, got in (("sample_rate", row.get("sample_rate"), sr), ("n_channels", row.get("n_channels"), channels)):
            if want is not None and (isinstance(want, bool) or want != got):
                raise SpecError(f"{where}: field {key!r}: {want!r}, but {path.name} has {got}; fix the column or drop it")
        if duration is not None and abs(duration - audio_s) > DURATION_TOLERANCE_S:
            raise SpecError(f"{where}: field 'duration_s': {duration} s, but {path.name} lasts {audio_s:.3f} s; fix "
                            "the column or drop it (the audio's length is used)")
        duration = audio_s if duration is None else duration
    ann.validate(math.inf, where)  # windows and spans start >= 0 and end after they start
    if duration is not None:
        ends = [(f"cues[{i}].window", c.end_s) for i, c in enumerate(ann.cues)]
        ends += [(f"spans[{i}].end_s", s.end_s) for i, s in enumerate(ann.spans)]
        for fld, end in ends:
            if end > duration + DURATION_TOLERANCE_S:
                raise SpecError(f"{where}: field {fld!r}: ends at {end} s, after the recording ({duration:.3f} s); "
                                "end it inside the audio, or fix 'duration_s' or 'file_name'")
    return Recording(scene_id=_text(row, "scene_id", where, Path(fn).with_suffix("").as_posix()),
                     split=_text(row, "split", where, default_split if default_split != "." else "recordings"),
                     family=_text(row, "family", where, "custom"), tier=_text(row, "tier", where, "recorded"),
                     seed=seed, path=path, file_name=fn, annotations=ann, duration_s=duration, sample_rate=sr,
                     n_channels=channels, where=where)


def read_recordings(root: str | os.PathLike[str], check_audio: bool = True) -> list[Recording]:
    """Every row of every ``metadata.jsonl``/``metadata.csv`` under ``root``, validated.

    Parameters
    ----------
    root
        The folder (an export of :func:`export_audiofolder`, or a lab's own); a metadata file's
        ``file_name`` paths are relative to its own folder and must stay inside ``root``.
    check_audio
        Also check that every audio file exists and that its header is readable and agrees with
        the row (``sample_rate``, ``n_channels``, ``duration_s``, annotations inside the audio).

    Raises
    ------
    SpecError
        No metadata file, or a bad row: names ``file:line``, the field and the fix; a duplicate
        ``(split, scene_id)``.
    AudioError
        An audio file whose header cannot be read, naming the row.
    """
    r = Path(root).resolve()
    if not r.is_dir():
        raise SpecError(f"{root}: recordings folder not found")
    out: list[Recording] = []
    seen: dict[tuple[str, str], str] = {}
    for mfile in metadata_files(r):
        for where, row in _rows(mfile):
            rec = _recording(row, where, r, mfile.parent, check_audio)
            if rec.key in seen:
                raise SpecError(f"{where}: split {rec.split!r}, scene_id {rec.scene_id!r} is already used at "
                                f"{seen[rec.key]}; give each recording its own scene_id")
            seen[rec.key] = where
            out.append(rec)
    if not out:
        raise SpecError(f"{root}: the metadata files hold no rows; add one row per recording")
    return out


def annotations_by_key(root: str | os.PathLike[str]) -> dict[tuple[str, str], Annotations]:
    """``{(split, scene_id): annotations}`` of a recordings folder (the audio is not needed)."""
    return {rec.key: rec.annotations for rec in read_recordings(root, check_audio=False)}
