"""Suites: definitions, names, files, materialisation, bit-identical regeneration, fingerprints."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from chimein.errors import ConfigError, SpecError
from chimein.eval.suites import SUITES, SuiteDef, get_suite, materialize, suite_cache_dir
from chimein.scenes.dataset import read_manifest
from chimein.scenes.sampler import FAMILIES

TINY = dict(name="tiny", revision=0, description="t", seed=5, families=("addressed", "proactive"),
            tiers={"clean": {"difficulty": "easy", "room_pool": 1, "positions_per_room": 4}},
            scenes={"default": 1, "proactive": 2})


def test_builtin_suites_cover_every_family_and_both_tiers() -> None:
    for name in ("chimein-bench-v0", "chimein-bench-v0-mini"):
        s = get_suite(name)
        assert {sp.family for sp in s.splits} == set(FAMILIES)
        assert {sp.tier for sp in s.splits} == {"clean", "hard"}
        assert {sp.config["difficulty"] for sp in s.splits} == {"easy", "hard"}
        assert len({sp.seed for sp in s.splits}) == len(s.splits)  # independent split seeds
        assert all(sp.config["room_pool"] > 0 for sp in s.splits)  # RIRs reused
    assert get_suite("chimein-bench-v0-mini").n_scenes == 2 * (5 * 2 + 1)
    assert get_suite("chimein-bench-v0").n_scenes >= 300


def test_definition_hash_is_stable_and_sensitive() -> None:
    a, b = SuiteDef(**TINY), SuiteDef(**TINY)
    assert a.definition_hash == b.definition_hash
    assert SuiteDef(**{**TINY, "description": "other"}).definition_hash == a.definition_hash
    assert SuiteDef(**{**TINY, "seed": 6}).definition_hash != a.definition_hash
    assert SuiteDef(**{**TINY, "env": {"chunk_ms": 400}}).definition_hash != a.definition_hash
    # adding a family does not move the seeds of the others
    more = SuiteDef(**{**TINY, "families": ("addressed", "proactive", "pauses")})
    assert more.split("clean/addressed").seed == a.split("clean/addressed").seed


def test_unknown_names_and_bad_definitions(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"unknown suite.*did you mean 'chimein-bench-v1'"):
        get_suite("chimein-bench-v2")
    with pytest.raises(SpecError, match="not found"):
        get_suite(tmp_path / "missing.yaml")
    with pytest.raises(SpecError, match="unknown family"):
        SuiteDef(**{**TINY, "families": ("adressed",)})
    with pytest.raises(SpecError, match="'default'"):
        SuiteDef(**{**TINY, "scenes": {"addressed": 1}})
    with pytest.raises(ConfigError, match="chunk_ms"):
        SuiteDef(**{**TINY, "env": {"chunk_ms": 3}})
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nfamilies: [addressed]\ntiers: {clean: {difficulty: easy}}\nscenes: 1\nseeds: 3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'seeds' in .*bad.yaml; known keys: .*did you mean 'seed'"):
        get_suite(bad)
    with pytest.raises(ConfigError, match="room_pool"):
        SuiteDef(**{**TINY, "tiers": {"clean": {"difficulty": "easy", "room_pool": -1}}})


def test_yaml_suite_file(tmp_path: Path) -> None:
    import yaml

    p = tmp_path / "suite.yaml"
    p.write_text(yaml.safe_dump({k: (list(v) if isinstance(v, tuple) else v) for k, v in TINY.items()}))
    assert get_suite(p).definition_hash == SuiteDef(**TINY).definition_hash


def test_cache_dir_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHIMEIN_CACHE_DIR", str(tmp_path))
    assert suite_cache_dir() == tmp_path / "suites"
    assert suite_cache_dir(tmp_path / "x") == tmp_path / "x" / "suites"


def _files(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root``: its (inode, mtime in ns), which a rewrite would change."""
    return {str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_materialise_regenerates_bit_identically_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import chimein.eval.suites as suites

    d = SuiteDef(**TINY)
    rir = str(tmp_path / "rir")
    a = materialize(d, cache_dir=tmp_path / "a", workers=1, progress=False, rir_cache_dir=rir)
    assert (a.root / "suite.json").is_file() and a.root == tmp_path / "a" / "suites" / "tiny"
    assert [len(a.dataset(s.name)) for s in d.splits] == [1, 2]
    info = json.loads((a.root / "suite.json").read_text())
    assert info["fingerprint"] == a.fingerprint and info["definition_hash"] == d.definition_hash
    # again: reused, same fingerprint; no split is rendered and no file is written
    before = _files(a.root)
    with monkeypatch.context() as mp:
        mp.setattr(suites, "_split_job", lambda *a: pytest.fail(f"a split was rendered again: {a}"))
        assert materialize(d, cache_dir=tmp_path / "a", workers=1, progress=False).fingerprint == a.fingerprint
    assert _files(a.root) == before
    # from scratch elsewhere, with a lost split and an interrupted one: identical bytes
    b = materialize(d, cache_dir=tmp_path / "b", workers=1, progress=False, rir_cache_dir=rir)
    shutil.rmtree(b.split_dir("clean/addressed"))
    m = b.split_dir("clean/proactive") / "manifest.jsonl"
    m.write_text(m.read_text().splitlines()[0] + "\n")
    b2 = materialize(d, cache_dir=tmp_path / "b", workers=1, progress=False, rir_cache_dir=rir, verify=True)
    assert b2.fingerprint == a.fingerprint
    for s in d.splits:
        assert [e.sha256 for e in read_manifest(a.split_dir(s.name))] == \
               [e.sha256 for e in read_manifest(b2.split_dir(s.name))]


def test_materialise_refuses_another_definition_and_detects_corruption(tmp_path: Path) -> None:
    d = SuiteDef(**TINY)
    m = materialize(d, cache_dir=tmp_path, workers=1, progress=False, rir_cache_dir=str(tmp_path / "rir"))
    changed = SuiteDef(**{**TINY, "revision": 1, "seed": 9})
    with pytest.raises(SpecError, match=r"revision 0 .*revision 1.*delete"):
        materialize(changed, cache_dir=tmp_path, workers=1, progress=False)
    ds = m.dataset("clean/addressed")
    audio = m.split_dir("clean/addressed") / ds.entries[0].audio
    audio.write_bytes(audio.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(SpecError, match="checksum"):
        materialize(d, cache_dir=tmp_path, workers=1, progress=False, verify=True)


def test_mini_suite_materialises_every_scene(tmp_path: Path) -> None:
    # how long it takes is printed by benchmarks/bench_eval.py; a test checks what was made
    m = materialize("chimein-bench-v0-mini", cache_dir=tmp_path, workers=2, progress=False,
                    rir_cache_dir=str(tmp_path))
    assert sum(len(m.dataset(s.name)) for s in m.definition.splits) == SUITES["chimein-bench-v0-mini"].n_scenes
    assert {m.dataset(s.name).spec(0).family for s in m.definition.splits} == set(FAMILIES)


def test_replaced_audio_in_a_materialised_suite_is_refused(tmp_path: Path) -> None:
    from chimein.eval.runner import load_dataset_scenes, pack_scene

    d = SuiteDef(**TINY)
    m = materialize(d, cache_dir=tmp_path, workers=1, progress=False, rir_cache_dir=str(tmp_path / "rir"))
    ds = m.dataset("clean/proactive")
    a = m.split_dir("clean/proactive") / ds.entries[0].audio
    a.write_bytes((m.split_dir("clean/proactive") / ds.entries[1].audio).read_bytes())  # a valid FLAC
    again = materialize(d, cache_dir=tmp_path, workers=1, progress=False)
    assert again.fingerprint == m.fingerprint  # the manifest still says the old audio: loading must refuse
    for load in (lambda: ds.load(0), lambda: pack_scene(m.dataset("clean/proactive"), 0),
                 lambda: load_dataset_scenes([(str(m.split_dir("clean/proactive")), 0, "clean/proactive",
                                               "proactive", "clean")])):
        with pytest.raises(SpecError) as ei:
            load()
        msg = str(ei.value)
        assert str(a) in msg and "checksum" in msg and f"delete {m.root}" in msg, msg


def test_suite_file_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from chimein.cli import main as cli_main

    bad = tmp_path / "suite.yaml"
    bad.write_bytes(b"name: caf\xe9\nfamilies: [addressed]\n")
    with pytest.raises(SpecError, match=r"suite\.yaml.*UTF-8"):
        get_suite(bad)
    assert cli_main(["eval", "materialize", f"suite={bad}", f"eval.cache_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "UTF-8" in err and str(bad) in err and "Traceback" not in err, err
