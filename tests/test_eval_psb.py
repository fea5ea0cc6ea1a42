"""Proactive-Sound-Bench interop: export scenes as PSB clips, evaluate policies on PSB packs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from chimein.cli import main as cli_main
from chimein.envs.episode import EpisodeRecord
from chimein.envs.scoring import ActionLog, EpisodeOutcome
from chimein.errors import AudioError, SpecError
from chimein.eval.psb import evaluate_psb, export_psb, psb_accuracy
from chimein.eval.suites import MaterializedSuite, SuiteDef, materialize
from chimein.scenes.packs import SoundPack

TINY = SuiteDef(name="tiny-psb", revision=0, description="psb tests", seed=3,
                families=("addressed", "monitoring", "distractors"),
                tiers={"hard": {"difficulty": "hard", "room_pool": 1, "positions_per_room": 4}},
                scenes={"default": 1})


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> MaterializedSuite:
    d = tmp_path_factory.mktemp("cache")
    return materialize(TINY, cache_dir=d, workers=1, progress=False, rir_cache_dir=str(d))


@pytest.fixture(scope="module")
def pack(suite: MaterializedSuite, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_psb(suite, tmp_path_factory.mktemp("psb"))


def test_export_one_clip_per_cue(suite: MaterializedSuite, pack: Path) -> None:
    p = SoundPack.load(pack, check_audio=True)
    cues = [c for s in TINY.splits for c in suite.dataset(s.name).spec(0).annotations.cues]
    n_action = sum(c.expected != "IGNORE" for c in cues)
    assert len(p.by_action("RESPOND")) + len(p.by_action("INTERVENE")) == n_action
    assert 0 < len(p.by_action("IGNORE")) <= len(cues) - n_action
    for e in p.entries:
        assert e.rel_path.startswith(f"./{e.domain}/hard/{e.decision}/")
        info = sf.info(str(e.path))
        assert info.samplerate == 16000 and info.channels == 1 and info.subtype == "PCM_16"
        assert info.duration <= 15.0 + 1e-6
        if e.decision == "RESPOND":
            assert e.onset_delay_s < info.duration
    # PSB's four fields come first on every line
    first = json.loads(pack.read_text().splitlines()[0])
    assert list(first)[:4] == ["id", "path", "description", "decision"]


def test_export_one_clip_per_scene_from_a_dataset(suite: MaterializedSuite, tmp_path: Path) -> None:
    m = export_psb([suite.split_dir(s.name) for s in TINY.splits], tmp_path, unit="scene")
    p = SoundPack.load(m)
    assert len(p) == 3
    assert {e.domain: e.decision for e in p.entries} == {"addressed": "RESPOND", "monitoring": "RESPOND",
                                                         "distractors": "IGNORE"}
    with pytest.raises(SpecError, match="unit"):
        export_psb(suite, tmp_path / "x", unit="clip")


def test_oracle_is_perfect_and_always_wait_gets_the_ignore_share(pack: Path, tmp_path: Path) -> None:
    orc = evaluate_psb(pack, "oracle", out=tmp_path / "o", workers=1, progress=False, report=False, resamples=0)
    p = orc["psb"]
    assert p["accuracy"] == 1.0 and p["unusable"] == 0 and p["n_clips"] == len(SoundPack.load(pack))
    assert orc["metrics"]["overall"]["clip_accuracy"]["value"] == 1.0
    wait = evaluate_psb(pack, "always-wait", out=tmp_path / "w", workers=1, progress=False, report=False,
                        resamples=0)["psb"]
    assert wait["accuracy"] == pytest.approx(wait["n_ignore"] / wait["n_clips"])
    assert wait["respond_accuracy"] == 0.0 and wait["ignore_accuracy"] == 1.0
    assert set(wait["by_domain"]) == {"addressed", "monitoring", "distractors"}
    assert wait["domain_macro_accuracy"] == pytest.approx(np.mean([v["accuracy"] for v in wait["by_domain"].values()]))
    # resumed: nothing recomputed
    again = evaluate_psb(pack, "oracle", out=tmp_path / "o", workers=1, progress=False, report=False, resamples=0)
    assert again["timing"]["episodes_run"] == 0 and again["psb"] == p


def _tiny_pack(d: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for i, (dec, sig) in enumerate((("RESPOND", 0.3 * np.sin(np.arange(16000) * 0.3)),
                                    ("IGNORE", 0.01 * rng.standard_normal(12000)))):
        rel = f"./Nature/Meteorological/{dec}/c{i}.wav"
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(d / rel, sig.astype(np.float32), 22050)
        rows.append({"id": f"c{i}", "path": rel, "description": "thunder" if dec == "RESPOND" else "rain",
                     "decision": dec})
    (d / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d / "manifest.jsonl"


def test_bad_input(tmp_path: Path) -> None:
    m = _tiny_pack(tmp_path / "pack")
    (tmp_path / "pack" / "Nature" / "Meteorological" / "IGNORE" / "c1.wav").unlink()
    with pytest.raises(SpecError, match=r"manifest.jsonl:2: field 'path': file .*c1.wav not found"):
        evaluate_psb(m, "oracle", out=tmp_path / "o", workers=1, progress=False)
    # a corrupt file: a clear error, or counted wrong with skip_bad_audio
    (tmp_path / "pack" / "Nature" / "Meteorological" / "IGNORE" / "c1.wav").write_bytes(b"RIFF nonsense")
    with pytest.raises(AudioError, match="c1"):
        evaluate_psb(m, "oracle", out=tmp_path / "o2", workers=1, progress=False, report=False)
    res = evaluate_psb(m, "oracle", out=tmp_path / "o3", workers=1, progress=False, report=False,
                       skip_bad_audio=True, resamples=0)
    assert res["psb"]["unusable"] == 1 and res["psb"]["accuracy"] == 0.5
    with pytest.raises(SpecError, match="unknown policy"):
        evaluate_psb(m, "nope", out=tmp_path / "o4", workers=1, progress=False)
    with pytest.raises(SpecError, match="tail_s"):
        evaluate_psb(m, "oracle", out=tmp_path / "o5", tail_s=-1, workers=1, progress=False)


def test_psb_accuracy_counts_unusable_as_wrong() -> None:
    def ep(dec: str, acts: int, invalid: bool = False) -> EpisodeRecord:
        out = EpisodeOutcome((), (), (), (), 0.0, 0.0, np.zeros(1), n_actions=acts)
        return EpisodeRecord("c", ActionLog.from_actions([0], 0.08), out, invalid=invalid,
                             meta={"decision": dec, "family": "D", "subcategory": "s"})

    r = psb_accuracy([ep("RESPOND", 1), ep("RESPOND", 0), ep("IGNORE", 0), ep("IGNORE", 0, invalid=True)])
    assert r["accuracy"] == 0.5 and r["respond_accuracy"] == 0.5 and r["ignore_accuracy"] == 0.5
    assert r["unusable"] == 1 and r["by_subcategory"]["D/s"]["n"] == 4


def test_cli_export_and_psb(suite: MaterializedSuite, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = suite.root.parent.parent
    import yaml

    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump({**TINY.to_dict(), "families": list(TINY.families)}))
    assert cli_main(["scenes", "export-psb", f"suite={f}", f"out={tmp_path / 'p'}", f"cache_dir={cache}",
                     "progress=false"]) == 0
    assert cli_main(["scenes", "export-psb", f"out={tmp_path / 'p'}"]) == 2
    assert "exactly one of suite" in capsys.readouterr().err
    m = _tiny_pack(tmp_path / "pack")
    assert cli_main(["eval", "psb", str(m), "policy=energy-endpoint", f"out={tmp_path / 'r'}", "workers=1",
                     "eval.progress=false", "eval.resamples=0"]) == 0
    out = capsys.readouterr().out
    assert "energy-endpoint on 2 PSB clips (1 RESPOND / 1 IGNORE)" in out and "Nature" in out
    assert (tmp_path / "r" / "report.md").is_file()
