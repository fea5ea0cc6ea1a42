"""Datasets: generation, bit-identical regeneration, resumption, manifest validation, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from chimein.cli import main as cli_main
from chimein.errors import SpecError
from chimein.scenes.dataset import MANIFEST, SceneDataset, generate_dataset, read_manifest

CFG = {"family": "addressed", "difficulty": "easy", "rt60": [0.15, 0.2]}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ds")
    generate_dataset(CFG, n=3, seed=7, out=out, workers=1, progress=False,
                     cache_dir=str(tmp_path_factory.mktemp("cache")))
    return out


def test_layout_and_reading(small: Path) -> None:
    ds = SceneDataset(small, verify=True)
    assert len(ds) == 3 and ds.ids == ["scene-000000", "scene-000001", "scene-000002"]
    for i in range(3):
        sc = ds.load(i)
        assert sc.audio.shape == (round(sc.spec.duration_s * 16000), 1)
        assert np.isfinite(sc.audio).all() and np.abs(sc.audio).max() > 1e-3
    hdr = json.loads((small / "dataset.json").read_text())
    assert hdr["seed"] == 7 and hdr["config"]["family"] == "addressed"


def test_same_seed_same_bytes_with_two_workers_and_resume(small: Path, tmp_path: Path) -> None:
    other = tmp_path / "again"
    generate_dataset(CFG, n=2, seed=7, out=other, workers=2, progress=False, cache_dir=str(tmp_path / "c"))
    # extending the same dataset resumes: the first two are kept, the third is made
    generate_dataset(CFG, n=3, seed=7, out=other, workers=1, progress=False, cache_dir=str(tmp_path / "c"))
    a, b = read_manifest(small), read_manifest(other)
    assert [e.sha256 for e in a] == [e.sha256 for e in b]
    assert (small / MANIFEST).read_bytes() == (other / MANIFEST).read_bytes()


def test_interrupted_manifest_resumes_without_loss(small: Path, tmp_path: Path) -> None:
    import shutil

    d = tmp_path / "cut"
    shutil.copytree(small, d)
    lines = (d / MANIFEST).read_text().splitlines()
    # simulate a kill: last line half-written, and an orphan audio file without a manifest line
    (d / MANIFEST).write_text(lines[0] + "\n" + lines[1][:25])
    before = (d / "audio" / "scene-000000.flac").stat().st_mtime_ns
    generate_dataset(CFG, n=3, seed=7, out=d, workers=1, progress=False, cache_dir=str(tmp_path / "c"))
    assert (d / MANIFEST).read_bytes() == (small / MANIFEST).read_bytes()
    assert (d / "audio" / "scene-000000.flac").stat().st_mtime_ns == before  # not recomputed
    assert not list(d.rglob("*.tmp*"))


def test_other_config_in_same_dir_is_refused(small: Path, tmp_path: Path) -> None:
    import shutil

    d = tmp_path / "x"
    shutil.copytree(small, d)
    with pytest.raises(SpecError, match="different 'seed'"):
        generate_dataset(CFG, n=3, seed=8, out=d, workers=1, progress=False)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: (d / MANIFEST).write_text("{not json\n"), "not valid JSON"),
        (lambda d: (d / MANIFEST).write_text('["a"]\n'), "expected a JSON object"),
        (lambda d: (d / MANIFEST).write_text('{"id": "x"}\n'), "field 'index' is missing"),
        (lambda d: (d / "audio" / "scene-000001.flac").unlink(), "missing file of scene 'scene-000001'"),
        (lambda d: (d / MANIFEST).write_text((d / MANIFEST).read_text().replace(
            "audio/scene-000000.flac", "../../etc/passwd")), "leaves its folder"),
        (lambda d: (d / MANIFEST).unlink(), "manifest not found"),
    ],
)
def test_bad_dataset_directories(small: Path, tmp_path: Path, mutate, match: str) -> None:
    import shutil

    d = tmp_path / "bad"
    shutil.copytree(small, d)
    mutate(d)
    with pytest.raises(SpecError, match=match):
        SceneDataset(d)


def test_checksum_mismatch_is_reported(small: Path, tmp_path: Path) -> None:
    import shutil

    import soundfile as sf

    d = tmp_path / "tampered"
    shutil.copytree(small, d)
    p = d / "audio" / "scene-000000.flac"
    x, sr = sf.read(p)
    sf.write(p, x * 0.5, sr, subtype="PCM_24")
    with pytest.raises(SpecError, match="checksum mismatch"):
        SceneDataset(d, verify=True).load(0)


def test_cli_generate_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    rc = cli_main(["scenes", "generate", "n=1", "seed=1", f"out={out}", "workers=1", "progress=false",
                   "scenes=easy", "scenes.family=pauses", f"cache_dir={tmp_path / 'c'}"])
    assert rc == 0
    ds = SceneDataset(out)
    assert ds.spec(0).family == "pauses"
    png = tmp_path / "t.png"
    assert cli_main(["scenes", "show", str(out / "specs" / "scene-000000.json"), f"out={png}"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_cli_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="unknown command"):
        cli_main(["scenes", "frobnicate"])
    rc = cli_main(["scenes", "generate", "n=1", f"out={tmp_path}", "scenes.family=cooking", "progress=false"])
    assert rc == 2 and "family" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": "x", "duration_s": -1, "room": {"dims": [3, 3, 3]}, "mics": {"positions": [[1, 1, 1]]}}')
    assert cli_main(["scenes", "show", str(bad)]) == 2
    assert "duration_s" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Audio files are checked against the manifest on first read, and generate repairs them
# ---------------------------------------------------------------------------------------------
def _swap_audio(d: Path) -> Path:
    """Replace scene 0's audio with scene 1's: another valid FLAC, same rate and channels."""
    a = d / "audio" / "scene-000000.flac"
    a.write_bytes((d / "audio" / "scene-000001.flac").read_bytes())
    return a


def test_replaced_audio_is_refused_without_verify(small: Path, tmp_path: Path) -> None:
    import shutil

    d = tmp_path / "swapped"
    shutil.copytree(small, d)
    a = _swap_audio(d)
    with pytest.raises(SpecError) as ei:
        SceneDataset(d).load(0)  # verify=False: still checked, on first read in the process
    msg = str(ei.value)
    assert str(a) in msg and "checksum" in msg and "chimein scenes generate" in msg, msg
    assert SceneDataset(d).load(1).audio.shape[0] > 0  # the untouched scene loads


def test_checked_once_per_process(small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import chimein.scenes.dataset as dataset_mod

    d = tmp_path / "once"
    shutil.copytree(small, d)
    first = SceneDataset(d).load(2).audio

    def no_hashing(*a, **k):
        raise AssertionError("re-hashed a file already verified in this process")

    monkeypatch.setattr(dataset_mod.hashlib, "sha256", no_hashing)
    again = SceneDataset(d).load(2).audio  # another SceneDataset, same file: not re-hashed
    assert np.array_equal(first, again)


def test_generate_repairs_a_replaced_scene(small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    d = tmp_path / "repair"
    shutil.copytree(small, d)
    a = _swap_audio(d)
    keep = (d / "audio" / "scene-000002.flac").stat().st_mtime_ns
    generate_dataset(CFG, n=3, seed=7, out=d, workers=1, progress=False, cache_dir=str(tmp_path / "c"))
    assert a.read_bytes() == (small / "audio" / "scene-000000.flac").read_bytes()  # bit-identical again
    assert (d / MANIFEST).read_bytes() == (small / MANIFEST).read_bytes()
    assert (d / "audio" / "scene-000002.flac").stat().st_mtime_ns == keep  # intact scenes are kept
    assert "scene-000000" in capsys.readouterr().err  # it says what it regenerates
    SceneDataset(d).load(0)


@pytest.mark.parametrize("override", ["n=abc", "seed=x", "workers=1.5", "progress=maybe", "n=0", "seed=-1", "workers=-2"])
def test_cli_generate_bad_numbers_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               override: str) -> None:
    rc = cli_main(["scenes", "generate", f"out={tmp_path / 'o'}", "progress=false", override])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err, err
    assert f"'{override.split('=')[0]}'" in err and err.startswith("chimein: error:"), err
