"""Suites as Hugging Face audiofolders and policies scored on annotated recordings
(:mod:`chimein.scenes.hf`, :mod:`chimein.eval.recordings`): the export loads with ``datasets``
(audio and every annotation), evaluating on it gives each scene the suite's episode, and
``chimein eval rescore annotations=DIR`` re-scores to the suite's numbers; hand-written
recordings folders are validated row by row."""

from __future__ import annotations

import os

os.environ["HF_DATASETS_OFFLINE"] = "1"  # loading a local folder must need no network

import doctest
import hashlib
import importlib.util
import json
import shutil
import sys
import types
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from chimein.cli import main as cli_main
from chimein.errors import AudioError, SpecError
from chimein.eval.episodes import read_episodes
from chimein.eval.recordings import evaluate_recordings, export_suite_hf
from chimein.eval.runner import evaluate
from chimein.eval.suites import MaterializedSuite, materialize, tiny_suite
from chimein.scenes.hf import COLUMNS, INFO, METADATA, read_recordings
from chimein.scenes.spec import Annotations

#: tiny_suite's one easy scene per split, over the families whose annotations differ: a request,
#: a safety-critical intervention, mid-turn pauses, sounds to ignore
SUITE = replace(tiny_suite(1), name="tiny-hf", families=("addressed", "proactive", "pauses", "distractors"))
FAST = dict(workers=1, progress=False, report=False, resamples=50)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> MaterializedSuite:
    d = tmp_path_factory.mktemp("cache")
    return materialize(SUITE, cache_dir=d, workers=1, progress=False, rir_cache_dir=str(d))


@pytest.fixture(scope="module")
def export(suite: MaterializedSuite, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hf") / "tiny-hf"
    meta = export_suite_hf(suite, out, progress=False)
    assert meta == out / "test" / METADATA
    return out


@pytest.fixture(scope="module")
def suite_run(suite: MaterializedSuite, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("suite_run")
    return out, evaluate("energy-endpoint", suite, out=out, **FAST)


def _originals(suite: MaterializedSuite) -> dict[tuple[str, str], Any]:
    return {(sp.name, s.spec.id): (sp, s) for sp in SUITE.splits
            for ds in [suite.dataset(sp.name)] for s in (ds.load(i) for i in range(len(ds)))}


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------
def test_export_writes_audio_metadata_card_and_provenance(suite: MaterializedSuite, export: Path) -> None:
    rows = [json.loads(line) for line in (export / "test" / METADATA).read_text().splitlines()]
    assert [r["split"] for r in rows] == [s.name for s in SUITE.splits]
    assert list(rows[0]) == [name for name, _, _ in COLUMNS]
    for r in rows:  # the audio bytes are the suite's, checksum and all
        ds = suite.dataset(r["split"])
        e = ds.entries[ds.index_of(r["scene_id"])]
        assert hashlib.sha256((export / "test" / r["file_name"]).read_bytes()).hexdigest() == e.sha256
    card = (export / "README.md").read_text()
    assert card.startswith("---\n") and 'load_dataset("audiofolder"' in card
    assert all(f"| `{name}` |" in card for name, _, _ in COLUMNS)
    info = json.loads((export / INFO).read_text())
    assert info["source"]["suite"]["fingerprint"] == suite.fingerprint
    assert info["env"] == dict(SUITE.env) and info["hf_split"] == "test"


def test_export_is_deterministic_and_replaces_only_an_export(suite: MaterializedSuite, export: Path,
                                                             tmp_path: Path) -> None:
    again = tmp_path / "again"
    export_suite_hf(suite, again, progress=False)
    files = sorted(p.relative_to(export) for p in export.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all((export / f).read_bytes() == (again / f).read_bytes() for f in files)
    export_suite_hf(suite, again, splits=["clean/addressed"], progress=False)  # an export is replaced whole
    assert [r.split for r in read_recordings(again)] == ["clean/addressed"]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(SpecError, match="not a chimein export"):
        export_suite_hf(suite, foreign, progress=False)
    assert (foreign / "notes.txt").read_text() == "mine"
    with pytest.raises(SpecError, match="hf_split"):
        export_suite_hf(suite, tmp_path / "x", hf_split="clean/addressed", progress=False)


@pytest.fixture
def audiofolder(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``datasets`` (offline). Its ``Audio`` feature imports ``torchcodec.encoders`` even to store
    a file *path* (datasets 5.2, ``Audio.encode_example``); where torchcodec is not installed a
    stub module satisfies that import -- no audio goes through it: the test reads the files
    with ``decode=False`` and soundfile."""
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    if importlib.util.find_spec("torchcodec") is None:
        enc = types.ModuleType("torchcodec.encoders")
        enc.AudioEncoder = object  # type: ignore[attr-defined]
        tc = types.ModuleType("torchcodec")
        tc.encoders = enc  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "torchcodec", tc)
        monkeypatch.setitem(sys.modules, "torchcodec.encoders", enc)
    return datasets


def test_datasets_loads_the_audio_and_every_annotation(suite: MaterializedSuite, export: Path, audiofolder: Any,
                                                       tmp_path: Path) -> None:
    dd = audiofolder.load_dataset("audiofolder", data_dir=str(export), cache_dir=str(tmp_path / "hf_cache"))
    assert list(dd) == ["test"]
    ds = dd["test"]
    f = ds.features
    # native nested columns, not JSON strings
    assert isinstance(f["cues"], audiofolder.List) and f["cues"].feature["window"].feature.dtype == "float64"
    assert f["cues"].feature["safety_critical"].dtype == "bool"
    assert f["spans"].feature["kind"].dtype == "string" and f["seed"].dtype == "int64"
    rows = ds.cast_column("audio", audiofolder.Audio(decode=False))
    originals = _originals(suite)
    assert sorted((r["split"], r["scene_id"]) for r in rows) == sorted(originals)
    kinds = set()
    for r in rows:
        sp, scene = originals[(r["split"], r["scene_id"])]
        audio, sr = sf.read(r["audio"]["path"], dtype="float32", always_2d=True)
        assert sr == scene.sample_rate == r["sample_rate"] and np.array_equal(audio, scene.audio)
        ann = Annotations.from_dict({"cues": r["cues"], "spans": r["spans"]})
        assert ann == scene.spec.annotations
        assert (r["tier"], r["family"], r["seed"], r["duration_s"], r["n_channels"]) == (
            sp.tier, sp.family, scene.spec.seed, scene.spec.duration_s, scene.spec.mics.n)
        kinds |= {c.expected + ("!" if c.safety_critical else "") for c in ann.cues} | {s.kind for s in ann.spans}
    assert {"RESPOND", "INTERVENE!", "IGNORE", "speech", "pause"} <= kinds  # every kind went through


def _sourceless(ann: Annotations | None) -> Annotations:
    """Annotations as a recording's episode holds them: a bare spec has no sources, so its cues
    name none (``chimein.eval.metrics.bare_spec``); scoring never reads them."""
    assert ann is not None
    return replace(ann, cues=tuple(replace(c, source_ids=()) for c in ann.cues))


# --------------------------------------------------------------------------------------------
# The inverse: evaluation on the exported folder, re-scoring against it
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("policy", ["energy-endpoint", "random"])
def test_the_export_played_as_recordings_gives_the_suites_episodes(
        suite: MaterializedSuite, export: Path, suite_run: tuple[Path, dict[str, Any]], policy: str,
        tmp_path: Path) -> None:
    base, ref = suite_run if policy == "energy-endpoint" else (tmp_path / "s", evaluate(policy, suite, out=tmp_path / "s", **FAST))
    res = evaluate_recordings(export, policy, out=tmp_path / "r", **FAST)
    a = {e.key: e for e in read_episodes(base / "episodes.jsonl")}
    b = {e.key: e for e in read_episodes(tmp_path / "r" / "episodes.jsonl")}
    assert sorted(a) == sorted(b) and len(a) == SUITE.n_scenes
    for k in a:  # per scene: the same actions at the same steps, the same judgement
        assert a[k].action_log.to_dict() == b[k].action_log.to_dict(), k
        assert a[k].outcome == b[k].outcome and _sourceless(a[k].annotations) == b[k].annotations, k
        assert b[k].meta["scene_seed"] == a[k].meta["scene_seed"]
    assert res["metrics"] == ref["metrics"]
    assert any(e.outcome.n_actions for e in a.values())  # the policy acted: the comparison is not vacuous
    assert res["recordings"]["exported_from"]["fingerprint"] == suite.fingerprint
    assert res["ms_per_decision"]["mean"] > 0  # the compute of each decision, as for a suite


def test_rescore_against_the_export_gives_the_same_numbers(export: Path, suite_run: tuple[Path, dict[str, Any]],
                                                           tmp_path: Path) -> None:
    base, ref = suite_run
    opts = ["eval.resamples=50", "eval.report=false"]
    assert cli_main(["eval", "rescore", str(base), f"annotations={export}", f"out={tmp_path / 'a'}", *opts]) == 0
    got = json.loads((tmp_path / "a" / "results.json").read_text())
    assert got["metrics"] == ref["metrics"] and got["annotations_from"] == str(export)
    # other annotations give other numbers: the option is what is scored against
    moved = tmp_path / "moved"
    shutil.copytree(export, moved)
    meta = moved / "test" / METADATA
    rows = [json.loads(line) for line in meta.read_text().splitlines()]
    for r in rows:
        r["cues"] = [{**c, "expected": "IGNORE"} for c in r["cues"]]
    meta.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert cli_main(["eval", "rescore", str(base), f"annotations={moved}", f"out={tmp_path / 'b'}", *opts]) == 0
    other = json.loads((tmp_path / "b" / "results.json").read_text())
    assert other["metrics"]["overall"] != ref["metrics"]["overall"]
    # an episode without a row is refused, naming it
    rows = [r for r in rows if r["split"] != "clean/pauses"]
    meta.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert cli_main(["eval", "rescore", str(base), f"annotations={moved}", f"out={tmp_path / 'c'}", *opts]) == 2


def test_cli_exports_a_dataset_and_evaluates_on_it(suite: MaterializedSuite, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "hf"
    assert cli_main(["scenes", "export-hf", f"dataset={suite.split_dir('clean/proactive')}", f"out={out}",
                     "progress=false"]) == 0
    assert "1 scenes" in capsys.readouterr().out
    [rec] = read_recordings(out)
    assert (rec.split, rec.tier, rec.family) == ("proactive", "easy", "proactive")  # folder name, spec preset
    assert cli_main(["eval", "policy=oracle", f"recordings={out}", f"out={tmp_path / 'run'}", "workers=1",
                     "eval.progress=false", "eval.report=false", "eval.resamples=0"]) == 0
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["metrics"]["overall"]["safety_miss_rate"]["value"] == 0.0
    assert res["suite"]["name"] == "recordings:hf"
    assert cli_main(["scenes", "export-hf", f"out={tmp_path / 'x'}"]) == 2  # neither suite nor dataset


# --------------------------------------------------------------------------------------------
# A lab's own recordings
# --------------------------------------------------------------------------------------------
def _lab(tmp_path: Path, rows: list[dict[str, Any]] | None = None, sr: int = 44100) -> Path:
    """A hand-written folder: a 4 s stereo 44.1 kHz recording of a noise burst at 1-2 s."""
    root = tmp_path / "lab"
    (root / "clips").mkdir(parents=True, exist_ok=True)
    t = np.arange(4 * sr) / sr
    x = 0.001 * np.sin(2 * np.pi * 220 * t)
    x[sr: 2 * sr] += 0.3 * np.random.default_rng(0).standard_normal(sr)
    sf.write(root / "clips" / "kitchen.wav", np.stack([x, 0.5 * x], 1), sr, subtype="PCM_16")
    rows = rows if rows is not None else [
        {"file_name": "clips/kitchen.wav", "cues": [{"expected": "RESPOND", "window": [2.0, 3.5]}],
         "spans": [{"start_s": 1.0, "end_s": 2.0, "speaker": "user"}]}]
    (root / METADATA).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_a_labs_recordings_are_resampled_and_scored(tmp_path: Path) -> None:
    root = _lab(tmp_path)
    [rec] = read_recordings(root)
    assert (rec.scene_id, rec.split, rec.family, rec.tier, rec.seed) == ("clips/kitchen", "recordings", "custom",
                                                                        "recorded", 0)
    assert (rec.sample_rate, rec.n_channels, rec.duration_s) == (44100, 2, 4.0)
    assert rec.annotations.cues[0].id == "c0"
    res = evaluate_recordings(root, "oracle", out=tmp_path / "run", **FAST)
    assert res["metrics"]["overall"]["respond_recall"]["value"] == 1.0
    [ep] = read_episodes(tmp_path / "run" / "episodes.jsonl")
    assert ep.n_steps == 50 and ep.meta["recording"] == "clips/kitchen.wav"  # 4 s at 16 kHz in 80 ms chunks
    # the same rows as CSV, cues and spans as JSON text
    (root / METADATA).unlink()
    (root / "metadata.csv").write_text(
        'file_name,scene_id,cues,spans\nclips/kitchen.wav,k1,"[{""expected"": ""RESPOND"", ""window"": [2.0, 3.5]}]",\n')
    [csv_rec] = read_recordings(root)
    assert csv_rec.scene_id == "k1" and csv_rec.annotations == rec.annotations.__class__(cues=rec.annotations.cues)


CUE = {"expected": "RESPOND", "window": [2.0, 3.5]}


@pytest.mark.parametrize("row, match", [
    ({"file_name": "clips/kitchen.wav"}, r"metadata.jsonl:1: field 'cues': missing"),
    ({"cues": [CUE]}, r"metadata.jsonl:1: field 'file_name': missing"),
    ({"file_name": "../kitchen.wav", "cues": [CUE]}, r"metadata.jsonl:1: field 'file_name'.*leaves its folder"),
    ({"file_name": "/etc/passwd", "cues": [CUE]}, r"field 'file_name'.*absolute"),
    ({"file_name": "clips/none.wav", "cues": [CUE]}, r"field 'file_name': no audio file"),
    ({"file_name": "clips/kitchen.wav", "cues": [{"expected": "SPEAK", "window": [1, 2]}]},
     r"metadata.jsonl:1.cues\[0\]: field 'expected'.*RESPOND"),
    ({"file_name": "clips/kitchen.wav", "cues": [{"expected": "RESPOND", "window": [2.0, 9.0]}]},
     r"field 'cues\[0\].window': ends at 9.0 s, after the recording \(4.000 s\)"),
    ({"file_name": "clips/kitchen.wav", "cues": [{"expected": "RESPOND", "window": [3.0, 2.0]}]},
     r"cues\[0\]: field 'window'"),
    ({"file_name": "clips/kitchen.wav", "cues": [CUE], "duration_s": 6.0}, r"field 'duration_s': 6.0 s, but"),
    ({"file_name": "clips/kitchen.wav", "cues": [CUE], "duration_s": "4"}, r"field 'duration_s': a string"),
    ({"file_name": "clips/kitchen.wav", "cues": [CUE], "sample_rate": 16000}, r"field 'sample_rate': 16000, but"),
    ({"file_name": "clips/kitchen.wav", "cues": [CUE], "seed": -1}, r"field 'seed': must be >= 0"),
    ({"file_name": "clips/kitchen.wav", "cues": [CUE], "family": 3}, r"field 'family': expected a non-empty"),
    ({"file_name": "clips/kitchen.wav", "cues": [CUE], "spans": [{"start_s": 1, "end_s": 2, "kind": "cough"}]},
     r"spans\[0\]: field 'kind'"),
])
def test_a_bad_row_is_refused_naming_the_row_and_field(tmp_path: Path, row: dict[str, Any], match: str) -> None:
    root = _lab(tmp_path, [row])
    with pytest.raises(SpecError, match=match):
        read_recordings(root)


def test_duplicates_silence_and_an_empty_folder_are_refused(tmp_path: Path) -> None:
    row = {"file_name": "clips/kitchen.wav", "scene_id": "k", "cues": []}
    with pytest.raises(SpecError, match=r"metadata.jsonl:2: split 'recordings', scene_id 'k' is already used"):
        read_recordings(_lab(tmp_path, [row, row]))
    with pytest.raises(SpecError, match="no metadata.jsonl or metadata.csv"):
        read_recordings(tmp_path / "lab" / "clips")
    root = _lab(tmp_path, [row])
    sf.write(root / "clips" / "kitchen.wav", np.zeros((16000, 1)), 16000)  # silent: refused when decoded
    with pytest.raises(AudioError, match=r"metadata.jsonl:1: .*silent"):
        evaluate_recordings(root, "oracle", out=tmp_path / "run", **FAST)
    with pytest.raises(SpecError, match="no recordings of split 'x'"):
        evaluate_recordings(root, "oracle", out=tmp_path / "run", splits=["x"], **FAST)


def test_doctests() -> None:
    import chimein.eval.recordings as recordings
    import chimein.scenes.hf as hf

    for mod in (hf, recordings):
        assert doctest.testmod(mod).failed == 0, mod.__name__
