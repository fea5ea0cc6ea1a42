"""Speech packs (#18): recorded requests and chit-chat by held-back talkers, in PSB's format.

Most tests use espeak-ng (a core dependency, fast); the default generators (piper, flite) are
tested where installed, and ``CHIMEIN_REQUIRE_SPEECH=1`` (set by ``make test``) makes their
absence a failure.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

from chimein.cli.main import main as cli_main
from chimein.errors import ConfigError
from chimein.scenes.pack_speech import pauses_between, speech_pieces
from chimein.scenes.packs import SoundPack
from chimein.scenes.sampler import SamplerConfig, sample_scene
from chimein.scenes.spec import SceneSpec
from chimein.scenes.speech.generators import generator_available
from chimein.scenes.speech_pack import FORMAT, SPEAKERS_NAME, make_speech_pack, pack_summary
from chimein.scenes.talkers import HELDOUT_SPEAKER_SEED, pool_speaker

#: a small, fast pack: espeak-ng, two speakers, every request pausing where it can
TINY: dict[str, Any] = dict(n_requests=3, n_chitchat=2, generators=["espeak-ng"],
                            voices={"espeak-ng": ["en-us+f3"]}, speakers_per_voice=2,
                            pause_rate=1.0, seed=4)


def _need(generator: str) -> None:
    if generator_available(generator):
        return
    if os.environ.get("CHIMEIN_REQUIRE_SPEECH") == "1":
        pytest.fail(f"speech generator {generator} is missing (CHIMEIN_REQUIRE_SPEECH=1)")
    pytest.skip(f"speech generator {generator} is not installed")


def _digests(root: Path) -> dict[str, str]:
    """SHA-256 of every file of a pack, by path relative to its folder."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _doc(root: Path) -> dict[str, Any]:
    return json.loads((root / SPEAKERS_NAME).read_text())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of a :data:`TINY` pack, made once."""
    root = tmp_path_factory.mktemp("speech") / "pack"
    assert make_speech_pack(root, **TINY) == root / "manifest.jsonl"
    return root


# ---------------------------------------------------------------- what a pack holds
def test_pack_loads_as_a_psb_pack_with_valid_audio(tiny: Path) -> None:
    pack = SoundPack.load(tiny)
    assert pack.validate_audio() == []
    assert [e.id for e in pack] == ["req0000", "req0001", "req0002", "chat0000", "chat0001"]
    for e in pack:
        request = e.id.startswith("req")
        assert (e.decision, e.action) == (("RESPOND", "RESPOND") if request else ("IGNORE", "IGNORE"))
        assert e.speech and e.domain == "Human Signals"
        assert e.subcategory == ("Speech" if request else "Conversation")
        assert e.rel_path.startswith(f"./Human Signals/{e.subcategory}/{e.decision}/")
        info = sf.info(str(e.path))
        assert (info.samplerate, info.channels, info.subtype, info.format) == (16000, 1, "PCM_16", "WAV")
    doc = _doc(tiny)
    assert [e.description for e in pack] == [doc["entries"][e.id]["text"] for e in pack]
    assert "chime" in pack.get("req0000").description and "chime" not in pack.get("chat0000").description


def test_speakers_json_says_who_is_in_the_pack(tiny: Path) -> None:
    doc = _doc(tiny)
    assert doc["format"] == FORMAT and doc["arguments"]["seed"] == TINY["seed"]
    cfg = SamplerConfig.from_mapping({"speaker_pool_seed": HELDOUT_SPEAKER_SEED}).resolved()
    want = [pool_speaker(cfg, "espeak-ng", "en-us+f3", k) for k in range(2)]
    assert list(doc["speakers"]) == [s["id"] for s in want]
    for s in want:
        got = doc["speakers"][s["id"]]
        assert got == {"generator": "espeak-ng", "voice": "en-us+f3", "held_out": ["speaker_pool_seed"],
                       **{k: s[k] for k in ("pitch_st", "tempo", "vtl", "level_db")}}
    used = {spk for e in doc["entries"].values() for spk in e["speakers"]}
    assert used == set(doc["speakers"])  # shuffled rounds: every speaker talks
    assert pack_summary(tiny / "manifest.jsonl").startswith("3 requests (")


def test_planned_pauses_are_in_the_audio(tiny: Path) -> None:
    doc = _doc(tiny)
    planned = {k: e["pauses_s"] for k, e in doc["entries"].items() if e["pauses_s"]}
    assert planned and all(k.startswith("req") for k in planned)
    for eid, pauses in planned.items():
        gaps = pauses_between(speech_pieces(SoundPack.load(tiny).get(eid).load(16000), 16000))
        for a, b in pauses:  # found within the 10 ms frame grid of the detector
            assert any(ga <= a + 0.02 and gb >= b - 0.02 for ga, gb in gaps), (eid, a, b, gaps)
            assert b - a >= 0.5  # at least the shortest planned pause


def test_sampled_scenes_annotate_the_recorded_pauses(tiny: Path) -> None:
    doc = _doc(tiny)
    checked = 0
    for seed in range(12):
        spec = sample_scene({"family": "addressed", "difficulty": "easy", "sound_packs": [str(tiny)],
                             "pack_fraction": 1.0}, seed)
        (rec,) = [s for s in spec.sources if s.kind == "file"]
        pauses = [s for s in spec.annotations.spans if s.kind == "pause"]
        for a, b in doc["entries"][Path(rec.audio["path"]).stem]["pauses_s"]:
            a, b = rec.onset_s + a, rec.onset_s + b
            assert any(p.start_s <= a + 0.02 and p.end_s >= b - 0.02 and p.speaker == "user" and p.addressed
                       for p in pauses), (seed, a, b, pauses)
            checked += 1
        (cue,) = [c for c in spec.annotations.action_cues if rec.id in c.source_ids]
        assert cue.expected == "RESPOND"
        assert cue.window[0] >= max([rec.onset_s] + [p.end_s for p in pauses])  # after the last piece
    assert checked >= 3
    chat = sample_scene({"family": "distractors", "difficulty": "easy", "sound_packs": [str(tiny)],
                         "pack_fraction": 1.0}, 0)
    assert any(s.kind == "file" and "/Conversation/" in s.audio["path"] for s in chat.sources)
    assert not chat.annotations.action_cues or all(c.expected == "IGNORE" for c in chat.annotations.action_cues)


# ---------------------------------------------------------------- determinism
def _make_and_digest(args: tuple[str, dict[str, Any]]) -> dict[str, str]:
    out, kwargs = args
    make_speech_pack(out, **kwargs)
    return _digests(Path(out))


def _no_speech_cache() -> None:
    os.environ["CHIMEIN_SPEECH_CACHE"] = "0"


def test_same_arguments_same_bytes_here_and_in_another_process(tiny: Path, tmp_path: Path) -> None:
    here = _digests(tiny)
    assert _make_and_digest((str(tmp_path / "again"), TINY)) == here
    # a fresh interpreter that synthesises afresh (no speech cache)
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), initializer=_no_speech_cache) as ex:
        there = ex.submit(_make_and_digest, (str(tmp_path / "there"), TINY)).result(timeout=300)
    assert there == here
    other = _make_and_digest((str(tmp_path / "seed5"), {**TINY, "seed": 5}))
    assert other["Human Signals/Speech/RESPOND/req0000.wav"] != here["Human Signals/Speech/RESPOND/req0000.wav"]


def test_a_larger_pack_keeps_the_entries_of_a_smaller_one(tiny: Path, tmp_path: Path) -> None:
    small = _make_and_digest((str(tmp_path / "small"), {**TINY, "n_requests": 2, "n_chitchat": 1}))
    big = _digests(tiny)
    wavs = [k for k in small if k.endswith(".wav")]
    assert len(wavs) == 3 and all(small[k] == big[k] for k in wavs)


# ---------------------------------------------------------------- arguments and the folder
@pytest.mark.parametrize(("change", "field"), [
    ({"n_requests": -1}, "n_requests"),
    ({"n_requests": True}, "n_requests"),
    ({"n_requests": 0, "n_chitchat": 0}, "n_requests"),
    ({"n_chitchat": 2.5}, "n_chitchat"),
    ({"generators": []}, "generators"),
    ({"generators": "espeak-ng"}, "generators"),
    ({"generators": ["festival"]}, "generators"),
    ({"generators": ["espeak-ng", "espeak-ng"]}, "generators"),
    ({"voices": ["awb"]}, "voices"),
    ({"voices": {"flite": ["awb"]}}, "voices"),
    ({"voices": {"espeak-ng": ["xx-no-such-voice"]}}, "voices.espeak-ng"),
    ({"voices": {"espeak-ng": []}}, "voices.espeak-ng"),
    ({"speaker_pool_seed": 1.5}, "speaker_pool_seed"),
    ({"speakers_per_voice": 0}, "speakers_per_voice"),
    ({"natural": "yes"}, "natural"),
    ({"pause_s": [0.1, 1.0]}, "pause_s"),
    ({"pause_s": [1.0, 0.6]}, "pause_s"),
    ({"pause_s": 1.0}, "pause_s"),
    ({"pause_rate": 1.5}, "pause_rate"),
    ({"seed": -1}, "seed"),
    ({"sample_rate": 1000}, "sample_rate"),
    ({"out_dir": ""}, "out_dir"),
])
def test_bad_arguments_name_their_field_and_write_nothing(tmp_path: Path, change: dict[str, Any],
                                                          field: str) -> None:
    kwargs = {**TINY, **change}
    out = kwargs.pop("out_dir", tmp_path / "pack")
    with pytest.raises(ConfigError, match=f"field '{field}'"):
        make_speech_pack(out, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_folder_of_other_files_and_replaces_a_speech_pack(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="field 'out_dir'.*not a speech pack"):
        make_speech_pack(mine, **TINY)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(ConfigError, match="field 'out_dir'.*is a file"):
        make_speech_pack(afile, **TINY)
    pack = tmp_path / "pack"
    pack.mkdir()  # an empty folder is fine
    make_speech_pack(pack, **TINY)
    make_speech_pack(pack, **{**TINY, "n_requests": 1, "n_chitchat": 1})  # replaced whole
    assert sorted(e.id for e in SoundPack.load(pack)) == ["chat0000", "req0000"]
    assert not (pack / "Human Signals" / "Speech" / "RESPOND" / "req0001.wav").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers


# ---------------------------------------------------------------- the held-back generators
def test_flite_pack_uses_the_held_out_voice(tmp_path: Path) -> None:
    _need("flite")
    make_speech_pack(tmp_path / "p", n_requests=2, n_chitchat=1, generators=["flite"],
                     speakers_per_voice=2, pause_rate=1.0)
    doc = _doc(tmp_path / "p")
    assert list(doc["speakers"]) == [f"flite/awb/{HELDOUT_SPEAKER_SEED}.{k}" for k in range(2)]
    assert all(s["held_out"] == ["voice", "speaker_pool_seed"] for s in doc["speakers"].values())
    pack = SoundPack.load(tmp_path / "p")
    assert pack.validate_audio() == []
    for e in pack:
        gaps = pauses_between(speech_pieces(e.load(16000), 16000))
        for a, b in doc["entries"][e.id]["pauses_s"]:
            assert any(ga <= a + 0.02 and gb >= b - 0.02 for ga, gb in gaps)


def test_default_generators_same_bytes_in_another_process(tmp_path: Path) -> None:
    for g in ("piper", "flite"):
        _need(g)
    kwargs = dict(n_requests=1, n_chitchat=1, speakers_per_voice=1, seed=2)
    here = _make_and_digest((str(tmp_path / "here"), kwargs))
    doc = _doc(tmp_path / "here")
    assert {s["voice"] for s in doc["speakers"].values()} == {"joe", "awb"}
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), initializer=_no_speech_cache) as ex:
        there = ex.submit(_make_and_digest, (str(tmp_path / "there"), kwargs)).result(timeout=300)
    assert there == here


# ---------------------------------------------------------------- the command
def test_cli_makes_a_pack_that_scenes_generate_uses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pack, data = tmp_path / "pack", tmp_path / "data"
    rc = cli_main(["scenes", "speech-pack", f"out={pack}", "n_requests=2", "n_chitchat=1",
                   "generators=[espeak-ng]", "voices={espeak-ng:[en-us+f3]}", "speakers_per_voice=2",
                   "seed=4", "progress=false"])
    assert rc == 0
    out = capsys.readouterr().out
    assert f"wrote {pack / 'manifest.jsonl'}: 2 requests (" in out and "2 speakers: espeak-ng en-us+f3 x2" in out
    assert [e.id for e in SoundPack.load(pack)] == ["req0000", "req0001", "chat0000"]
    rc = cli_main(["scenes", "generate", "n=1", "seed=1", f"out={data}", "workers=1", "progress=false",
                   "scenes=easy", "scenes.family=addressed", f"scenes.sound_packs=[{pack}]",
                   "scenes.pack_fraction=1.0"])
    assert rc == 0
    spec = SceneSpec.load(data / "specs" / "scene-000000.json")
    assert [s.audio["path"].split("/")[-1] for s in spec.sources if s.kind == "file"][0].startswith("req")


def test_cli_bad_arguments_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli_main(["scenes", "speech-pack", f"out={tmp_path / 'p'}", "n_requests=-1"]) == 2
    err = capsys.readouterr().err
    assert "field 'n_requests'" in err and "Traceback" not in err
    assert not (tmp_path / "p").exists()
    monkeypatch.chdir(tmp_path)  # where a pack named after the missing value would land
    assert cli_main(["scenes", "speech-pack", "n_requests=1", "n_chitchat=0"]) == 2  # out is required
    assert "field 'out': required" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_missing_generator_is_named_with_how_to_install_it(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import chimein.scenes.speech.generators as generators

    monkeypatch.setattr(generators, "generator_available", lambda g: g != "flite")
    with pytest.raises(ConfigError, match="field 'generators': flite is not installed.*apt-get install flite"):
        make_speech_pack(tmp_path / "p", n_requests=1, n_chitchat=0, generators=["espeak-ng", "flite"])
    assert not (tmp_path / "p").exists()
