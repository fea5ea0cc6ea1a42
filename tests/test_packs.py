"""Sound packs: PSB manifests, decision mapping, formats, resampling and boundary validation."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from chimein.errors import AudioError, SpecError
from chimein.scenes.packs import (
    DEFAULT_ONSET_DELAY_S,
    PackEntry,
    SoundPack,
    infer_domain,
    write_manifest,
)
from chimein.scenes.spec import Action

CAN_WRITE_MP3 = "MP3" in sf.available_formats() and "MPEG_LAYER_III" in sf.available_subtypes("MP3")


def tone(freq: float, sr: int, dur: float = 1.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(round(sr * dur))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spec)])


def put(root: Path, rel: str, audio: np.ndarray, sr: int, **kw: Any) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    sf.write(p, audio, sr, **kw)
    return p


def line(id: str, path: str, decision: str = "RESPOND", description: str = "thing",
         **extra: Any) -> str:
    return json.dumps({"id": id, "path": path, "description": description,
                       "decision": decision, **extra})


def write_lines(root: Path, lines: list[str], name: str = "manifest.jsonl") -> Path:
    m = root / name
    m.write_text("\n".join(lines) + "\n")
    return m


@pytest.fixture
def pack_dir(tmp_path: Path) -> Path:
    """WAV 44.1 kHz stereo, FLAC 8 kHz mono, OGG 22.05 kHz mono; all 1 kHz tones of 1 s."""
    stereo = np.stack([tone(1000, 44100), tone(1000, 44100, amp=0.1)], axis=1)
    put(tmp_path, "Daily Living/Daily Affairs/RESPOND/glass.wav", stereo, 44100)
    put(tmp_path, "Nature/RESPOND/thunder.flac", tone(1000, 8000), 8000)
    put(tmp_path, "mine/kettle.ogg", tone(1000, 22050), 22050, format="OGG", subtype="VORBIS")
    write_lines(tmp_path, [
        line("glass", "./Daily Living/Daily Affairs/RESPOND/glass.wav", "RESPOND", "glass break"),
        "",
        line("thunder", "./Nature/RESPOND/thunder.flac", "RESPOND", "thunder",
             action="RESPOND", safety_critical=True),
        "   ",
        line("kettle", "./mine/kettle.ogg", "IGNORE", "kettle", onset_delay_s=0.25,
             domain="Daily Living", subcategory="Housekeeping"),
    ])
    return tmp_path


# ---------------------------------------------------------------------------------------------
# Loading, mapping, inference
# ---------------------------------------------------------------------------------------------
def test_load_pack_fields_and_mapping(pack_dir: Path) -> None:
    pack = SoundPack.load(pack_dir)
    assert len(pack) == 3 and [e.id for e in pack] == ["glass", "thunder", "kettle"]
    assert pack.root == pack_dir.resolve() and pack.lines == (1, 3, 5)
    glass, thunder, kettle = pack.entries
    # PSB RESPOND means chimein INTERVENE; an explicit action overrides the mapping
    assert (glass.decision, glass.action) == ("RESPOND", "INTERVENE")
    assert (thunder.decision, thunder.action) == ("RESPOND", "RESPOND")
    assert (kettle.decision, kettle.action) == ("IGNORE", "IGNORE")
    assert glass.path == (pack_dir / "Daily Living/Daily Affairs/RESPOND/glass.wav").resolve()
    assert glass.path.is_absolute()
    assert glass.rel_path == "./Daily Living/Daily Affairs/RESPOND/glass.wav"
    assert (glass.domain, glass.subcategory) == ("Daily Living", "Daily Affairs")
    assert (thunder.domain, thunder.subcategory) == ("Nature", "unknown")
    assert (kettle.domain, kettle.subcategory) == ("Daily Living", "Housekeeping")
    assert (glass.safety_critical, thunder.safety_critical) == (False, True)
    assert glass.onset_delay_s == DEFAULT_ONSET_DELAY_S and kettle.onset_delay_s == 0.25
    assert pack.by_action("INTERVENE") == (glass,)
    assert pack.by_action(Action.RESPOND) == (thunder,)
    assert pack.by_action("IGNORE") == (kettle,)
    assert pack.get("kettle") is kettle
    with pytest.raises(SpecError, match="no entry with id 'nope'"):
        pack.get("nope")
    with pytest.raises(SpecError, match="unknown action 'WAIT'"):
        pack.by_action(Action.WAIT)
    # the manifest file itself (any name) works as well as the folder
    assert SoundPack.load(pack_dir / "manifest.jsonl").entries == pack.entries


@pytest.mark.parametrize(("rel", "expected"), [
    ("./Daily Living/Daily Affairs/RESPOND/a.wav", ("Daily Living", "Daily Affairs")),
    ("Human_Signals/Physiological/IGNORE/a.wav", ("Human Signals", "Physiological")),
    ("./traffic/RESPOND/a.wav", ("Traffic", "unknown")),
    ("./EQUIPMENT/a.wav", ("Equipment", "unknown")),
    ("./music", ("unknown", "unknown")),  # a file named like a domain is not a folder
    ("./mine/Nature/a.wav", ("unknown", "unknown")),
    ("a.wav", ("unknown", "unknown")),
])
def test_infer_domain(rel: str, expected: tuple[str, str]) -> None:
    assert infer_domain(rel) == expected


def test_formats_resampling_and_duration(pack_dir: Path) -> None:
    pack = SoundPack.load(pack_dir)
    for e in pack:
        x = e.load(16000)
        assert x.dtype == np.float32 and x.ndim == 1
        assert abs(len(x) - 16000) <= 2, (e.id, len(x))  # 1 s stays 1 s from 44.1/8/22.05 kHz
        assert abs(peak_hz(x, 16000) - 1000) < 3, e.id  # a 1 kHz tone stays 1 kHz
        assert e.duration_s == pytest.approx(1.0, abs=1e-3)
    x48 = pack.get("thunder").load(48000)
    assert abs(len(x48) - 48000) <= 2 and abs(peak_hz(x48, 48000) - 1000) < 3


def test_downmix_averages_channels(tmp_path: Path) -> None:
    left, right = tone(440, 16000, amp=0.4), tone(1000, 16000, amp=0.2)
    put(tmp_path, "a.wav", np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    write_lines(tmp_path, [line("a", "./a.wav")])
    x = SoundPack.load(tmp_path).entries[0].load(16000)
    np.testing.assert_allclose(x, (left + right) / 2, atol=1e-7)


@pytest.mark.skipif(not CAN_WRITE_MP3, reason="this libsndfile cannot write MP3")
def test_mp3(tmp_path: Path) -> None:
    put(tmp_path, "Traffic/RESPOND/horn.mp3", tone(1000, 44100, dur=1.0), 44100,
        format="MP3", subtype="MPEG_LAYER_III")
    write_lines(tmp_path, [line("horn", "./Traffic/RESPOND/horn.mp3")])
    pack = SoundPack.load(tmp_path, check_audio=True)
    x = pack.entries[0].load(16000)
    assert abs(len(x) - 16000) < 0.05 * 16000  # MP3 frames may pad a little
    assert abs(peak_hz(x, 16000) - 1000) < 5


# ---------------------------------------------------------------------------------------------
# Bad manifests: exactly one clear SpecError naming manifest:line and the field
# ---------------------------------------------------------------------------------------------
GOOD = line("ok", "./ok.wav")

BAD_LINES: list[tuple[str, str, str]] = [
    # (line 3 of the manifest, field named, words of the message)
    ('{"id": "x", "path": ', "", "not valid JSON"),
    ("# a comment", "", "not valid JSON"),
    ("[1, 2]", "", "expected a JSON object, got list"),
    ('"just a string"', "", "expected a JSON object, got str"),
    (json.dumps({"id": "x", "path": "./ok.wav", "decision": "IGNORE"}), "description", "missing"),
    (line("x", "./ok.wav", description="  "), "description", "is empty"),
    (line("", "./ok.wav"), "id", "is empty"),
    (json.dumps({"id": 7, "path": "./ok.wav", "description": "d", "decision": "IGNORE"}),
     "id", "expected a string"),
    (line("x", "./ok.wav", decision="respond"), "decision", "use 'RESPOND' or 'IGNORE'"),
    (line("x", "./ok.wav", decision="MAYBE"), "decision", "use 'RESPOND' or 'IGNORE'"),
    (line("x", "./ok.wav", action="SHOUT"), "action", "use one of"),
    (line("x", "./ok.wav", decision="IGNORE", action="INTERVENE"), "action", "contradicts"),
    (line("x", "./ok.wav", decision="RESPOND", action="IGNORE"), "action", "contradicts"),
    (line("x", "./ok.wav", safety_critical="yes"), "safety_critical", "expected true or false"),
    (line("x", "./ok.wav", onset_delay_s=-1), "onset_delay_s", ">= 0"),
    (line("x", "./ok.wav", onset_delay_s="0.5"), "onset_delay_s", "finite number"),
    (line("x", "./ok.wav", domain=3), "domain", "non-empty string"),
    (line("x", "./ok.wav", safety_critcal=True), "", "unknown key 'safety_critcal' in this entry; known keys: "),
    (line("x", "./ok.wav", safety_critcal=True), "", "did you mean 'safety_critical'? (or load with allow_unknown_fields=True)"),
    ('{"id": "x", "id": "y", "path": "./ok.wav", "description": "d", "decision": "IGNORE"}',
     "id", "given twice"),
    (line("ok", "./ok.wav"), "id", "duplicate id 'ok' (first on line 1)"),
    (line("x", "../outside.wav"), "path", "leaves its folder"),
    (line("x", "./sub/../../outside.wav"), "path", "leaves its folder"),
    (line("x", "/etc/passwd"), "path", "is absolute"),
    (line("x", "./link_out.wav"), "path", "leaves its folder"),
    (line("x", "./missing.wav"), "path", "not found"),
    (line("x", "./sub"), "path", "not a regular file"),
]


@pytest.mark.parametrize(("bad", "fld", "words"), BAD_LINES,
                         ids=[f"{i}-{b[2][:20]}" for i, b in enumerate(BAD_LINES)])
def test_bad_line_gives_one_clear_error(tmp_path: Path, bad: str, fld: str, words: str) -> None:
    pack = tmp_path / "pack"
    put(pack, "ok.wav", tone(500, 16000), 16000)
    put(tmp_path, "outside.wav", tone(500, 16000), 16000)  # exists, but outside the pack
    (pack / "sub").mkdir()
    os.symlink(tmp_path / "outside.wav", pack / "link_out.wav")
    m = write_lines(pack, [GOOD, "", bad])
    with pytest.raises(SpecError) as info:
        SoundPack.load(pack)
    msg = str(info.value)
    assert not isinstance(info.value, AudioError)
    assert msg.startswith(f"{m}:3: "), msg
    if fld:
        assert f"field '{fld}'" in msg, msg
    assert words in msg, msg
    assert msg.count(f"{m}:") == 1  # one problem, reported once


def test_symlink_inside_the_pack_is_fine(tmp_path: Path) -> None:
    put(tmp_path, "real/a.wav", tone(500, 16000), 16000)
    os.symlink(tmp_path / "real", tmp_path / "alias")
    write_lines(tmp_path, [line("a", "./alias/a.wav")])
    e = SoundPack.load(tmp_path).entries[0]
    assert e.path == (tmp_path / "real/a.wav").resolve() and e.rel_path == "./alias/a.wav"


def test_unknown_fields_can_be_allowed(tmp_path: Path) -> None:
    put(tmp_path, "a.wav", tone(500, 16000), 16000)
    write_lines(tmp_path, [line("a", "./a.wav", source="freesound")])
    assert len(SoundPack.load(tmp_path, allow_unknown_fields=True)) == 1


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_manifest(tmp_path: Path, content: str) -> None:
    (tmp_path / "manifest.jsonl").write_text(content)
    with pytest.raises(SpecError, match="no entries"):
        SoundPack.load(tmp_path)


def test_missing_manifest_and_bad_encoding(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="manifest not found"):
        SoundPack.load(tmp_path)
    (tmp_path / "manifest.jsonl").write_bytes(b'{"id": "\xff"}\n')
    with pytest.raises(SpecError, match="not UTF-8"):
        SoundPack.load(tmp_path)


def test_bom_and_crlf_are_tolerated(tmp_path: Path) -> None:
    put(tmp_path, "a.wav", tone(500, 16000), 16000)
    (tmp_path / "manifest.jsonl").write_bytes(
        b"\xef\xbb\xbf" + line("a", "./a.wav").encode() + b"\r\n\r\n")
    assert [e.id for e in SoundPack.load(tmp_path)] == ["a"]


# ---------------------------------------------------------------------------------------------
# Audio content
# ---------------------------------------------------------------------------------------------
def _bad_audio_pack(root: Path) -> Path:
    put(root, "good.wav", tone(500, 16000), 16000)
    (root / "corrupt.wav").write_bytes(b"RIFF\x00\x01garbage" * 50)
    put(root, "empty.wav", np.zeros(0, np.float32), 16000)
    put(root, "silent.flac", np.zeros(16000, np.float32), 16000)
    nan = tone(500, 16000)
    nan[100:200] = np.nan
    put(root, "nan.wav", nan, 16000, subtype="FLOAT")
    put(root, "short.wav", tone(500, 16000, dur=0.2), 16000)
    return write_lines(root, [
        line("good", "./good.wav"),
        line("corrupt", "./corrupt.wav"),
        line("empty", "./empty.wav"),
        line("silent", "./silent.flac"),
        line("nan", "./nan.wav"),
        line("short", "./short.wav"),  # onset_delay_s 0.5 >= 0.2 s clip
    ])


def test_validate_audio_reports_every_problem(tmp_path: Path) -> None:
    m = _bad_audio_pack(tmp_path)
    pack = SoundPack.load(tmp_path)  # existence only: loads fine
    errors = pack.validate_audio()
    assert all(isinstance(e, AudioError) for e in errors)
    msgs = [str(e) for e in errors]
    expected = [(2, "corrupt.wav", "cannot decode"), (3, "empty.wav", "empty"),
                (4, "silent.flac", "silent"), (5, "nan.wav", "NaN"),
                (6, "short.wav", "onset_delay_s")]
    assert len(msgs) == len(expected), msgs
    for msg, (ln, name, words) in zip(msgs, expected, strict=True):
        assert msg.startswith(f"{m.resolve()}:{ln}: "), msg
        assert name in msg and words in msg, msg


def test_check_audio_on_load(tmp_path: Path) -> None:
    _bad_audio_pack(tmp_path)
    with pytest.raises(AudioError, match="5 audio problems") as info:
        SoundPack.load(tmp_path, check_audio=True)
    assert "nan.wav" in str(info.value)
    # a single bad file raises that one error, naming line and file
    one = tmp_path / "one"
    put(one, "good.wav", tone(500, 16000), 16000)
    put(one, "silent.wav", np.zeros(8000, np.float32), 16000)
    m = write_lines(one, [line("good", "./good.wav"), line("s", "./silent.wav")])
    with pytest.raises(AudioError) as info:
        SoundPack.load(one, check_audio=True)
    msg = str(info.value)
    assert msg.startswith(f"{m.resolve()}:2: pack entry 's': ") and "silent.wav" in msg
    assert "audio is silent" in msg and msg.count("\n") == 0


def test_entry_load_names_entry_and_file(tmp_path: Path) -> None:
    put(tmp_path, "a.wav", tone(500, 16000), 16000)
    write_lines(tmp_path, [line("a", "./a.wav")])
    e = SoundPack.load(tmp_path).entries[0]
    e.path.unlink()
    with pytest.raises(AudioError, match=r"pack entry 'a': .*a\.wav: audio file not found"):
        e.load()
    with pytest.raises(AudioError, match=r"pack entry 'a': .*cannot read the audio header"):
        _ = e.duration_s


# ---------------------------------------------------------------------------------------------
# PackEntry construction and write_manifest
# ---------------------------------------------------------------------------------------------
def test_pack_entry_validates_itself(tmp_path: Path) -> None:
    kw: dict[str, Any] = dict(id="a", path=tmp_path / "a.wav", rel_path="./a.wav",
                              description="d", decision="RESPOND", action="INTERVENE")
    assert PackEntry(**kw).onset_delay_s == DEFAULT_ONSET_DELAY_S
    with pytest.raises(SpecError, match="field 'path'.*must be absolute"):
        PackEntry(**{**kw, "path": Path("a.wav")})
    with pytest.raises(SpecError, match="field 'action'.*contradicts"):
        PackEntry(**{**kw, "action": "IGNORE"})
    with pytest.raises(SpecError, match="field 'onset_delay_s'"):
        PackEntry(**{**kw, "onset_delay_s": float("nan")})
    with pytest.raises(SpecError, match="field 'id'"):
        PackEntry(**{**kw, "id": ""})


def test_write_manifest_round_trip(pack_dir: Path) -> None:
    pack = SoundPack.load(pack_dir)
    out = write_manifest(pack_dir / "copy.jsonl", pack.entries)
    again = SoundPack.load(out)
    assert again.entries == pack.entries
    rows = [json.loads(s) for s in out.read_text().splitlines()]
    # plain PSB rows keep PSB's four fields, in PSB's order; extras only where they say something
    assert list(rows[0]) == ["id", "path", "description", "decision"]
    assert rows[0]["path"] == "./Daily Living/Daily Affairs/RESPOND/glass.wav"
    assert rows[1] == {"id": "thunder", "path": "./Nature/RESPOND/thunder.flac",
                       "description": "thunder", "decision": "RESPOND", "action": "RESPOND",
                       "safety_critical": True}
    assert rows[2]["domain"] == "Daily Living" and rows[2]["onset_delay_s"] == 0.25
    # a folder target gets manifest.jsonl; leaves no temp files behind
    sub = pack_dir / "Nature"
    e = pack.get("thunder")
    assert write_manifest(sub, [e]) == sub / "manifest.jsonl"
    assert SoundPack.load(sub).entries[0].rel_path == "./RESPOND/thunder.flac"
    assert not [p for p in pack_dir.rglob("*") if p.name.endswith(".tmp") or ".tmp." in p.name]


def test_write_manifest_refuses_bad_entries(pack_dir: Path, tmp_path_factory: Any) -> None:
    pack = SoundPack.load(pack_dir)
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    with pytest.raises(SpecError, match="outside the manifest's folder"):
        write_manifest(elsewhere, pack.entries)
    with pytest.raises(SpecError, match="duplicate id 'glass'"):
        write_manifest(pack_dir / "dup.jsonl", [pack.entries[0], pack.entries[0]])
    with pytest.raises(SpecError, match="no entries"):
        write_manifest(pack_dir / "none.jsonl", [])
    assert not (elsewhere / "manifest.jsonl").exists()
    assert not (pack_dir / "dup.jsonl").exists() and not (pack_dir / "none.jsonl").exists()


def test_absurd_sample_rate_is_refused_naming_the_file(tmp_path: Path) -> None:
    # 200,000 samples at 1 Hz would be resampled to 3.2e9 samples (12 GB): refused up front
    put(tmp_path, "mine/slow.wav", tone(0.1, 1, dur=200_000), 1)
    write_lines(tmp_path, [line("slow", "./mine/slow.wav")])
    pack = SoundPack.load(tmp_path)
    with pytest.raises(AudioError) as ei:
        pack.entries[0].load(16000)
    msg = str(ei.value)
    assert "slow.wav" in msg and "1 Hz" in msg and "1000" in msg, msg
    with pytest.raises(AudioError, match="slow.wav"):
        SoundPack.load(tmp_path, check_audio=True)


# ---------------------------------------------------------------------------------------------
# Domains outside Proactive-Sound-Bench's taxonomy, the speech flag, the onset-delay rule
# ---------------------------------------------------------------------------------------------
def test_unknown_domain_warns_naming_the_entry_and_the_closest_domain(tmp_path: Path) -> None:
    from chimein.scenes.packs import PSB_DOMAINS, PackWarning

    put(tmp_path, "a.wav", tone(500, 16000), 16000)
    m = write_lines(tmp_path, [
        line("a", "./a.wav", domain="Daily Livng"),
        line("b", "./a.wav", domain="Nature"),
        line("c", "./a.wav", domain="Daily Livng"),
        line("d", "./a.wav", domain="Vehicles"),
    ])
    with pytest.warns(PackWarning) as rec:
        pack = SoundPack.load(tmp_path)
    msgs = [str(w.message) for w in rec]
    assert len(msgs) == 2, msgs  # one warning per unknown domain, at its first entry
    first, second = msgs
    assert first.startswith(f"{m}:1: pack entry 'a': field 'domain': 'Daily Livng' is not one of "), first
    assert all(d in first for d in PSB_DOMAINS), first
    assert "closest: 'Daily Living'" in first and "also on line 3" in first, first
    assert second.startswith(f"{m}:4: pack entry 'd': field 'domain': 'Vehicles'"), second
    closest = re.search(r"closest: '([^']+)'", second)
    assert closest is not None and closest.group(1) in PSB_DOMAINS, second
    # the entries load as written: a warning, not an error (custom taxonomies are allowed)
    assert [e.domain for e in pack] == ["Daily Livng", "Nature", "Daily Livng", "Vehicles"]


def test_domain_spelling_is_forgiven_like_in_paths_and_chimein_families_are_known(
        tmp_path: Path, recwarn: pytest.WarningsRecorder) -> None:
    from chimein.scenes.packs import CHIMEIN_DOMAINS, PackWarning
    from chimein.scenes.sampler import FAMILIES

    assert set(CHIMEIN_DOMAINS) == set(FAMILIES)  # what export-psb writes as the domain
    put(tmp_path, "a.wav", tone(500, 16000), 16000)
    write_lines(tmp_path, [line("a", "./a.wav", domain="daily_living"),
                           line("b", "./a.wav", domain="HUMAN SIGNALS"),
                           line("c", "./a.wav", domain="pauses"),
                           line("d", "./a.wav", domain="unknown"),
                           line("e", "./a.wav", domain="Unknown")])
    pack = SoundPack.load(tmp_path)
    assert [e.domain for e in pack] == ["Daily Living", "Human Signals", "pauses", "unknown", "unknown"]
    assert not [w for w in recwarn if issubclass(w.category, PackWarning)]


def test_speech_flag_inferred_from_the_subcategory_or_given(tmp_path: Path) -> None:
    put(tmp_path, "a.wav", tone(500, 16000), 16000)
    put(tmp_path, "Human Signals/Conversation/IGNORE/chat.wav", tone(500, 16000), 16000)
    put(tmp_path, "Human_Signals/chit-chat/IGNORE/chat2.wav", tone(500, 16000), 16000)
    put(tmp_path, "Human Signals/Physiological/IGNORE/cough.wav", tone(500, 16000), 16000)
    m = write_lines(tmp_path, [
        line("chat", "./Human Signals/Conversation/IGNORE/chat.wav", "IGNORE"),
        line("chat2", "./Human_Signals/chit-chat/IGNORE/chat2.wav", "IGNORE"),
        line("cough", "./Human Signals/Physiological/IGNORE/cough.wav", "IGNORE"),
        line("mine", "./a.wav", "IGNORE", speech=True),
        line("req", "./a.wav", "RESPOND", action="RESPOND"),
        line("not", "./Human Signals/Conversation/IGNORE/chat.wav", "IGNORE", speech=False),
        line("ev", "./a.wav", "RESPOND"),
    ])
    pack = SoundPack.load(tmp_path)
    assert [e.speech for e in pack] == [True, True, False, True, True, False, False]
    # round trip: written only where it differs from what loading infers
    out = write_manifest(tmp_path / "copy.jsonl", pack.entries)
    assert SoundPack.load(out).entries == pack.entries
    rows = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert rows["mine"]["speech"] is True and rows["not"]["speech"] is False
    assert "speech" not in rows["chat"] and "speech" not in rows["req"]
    # a bad value is refused naming the line and field
    m.write_text(line("x", "./a.wav", "IGNORE", speech="yes") + "\n")
    with pytest.raises(SpecError, match=r":1: field 'speech': expected true or false"):
        SoundPack.load(tmp_path)


def test_onset_delay_rule_is_one_function(tmp_path: Path) -> None:
    from chimein.scenes.packs import onset_delay_problem

    e = PackEntry(id="a", path=tmp_path / "a.wav", rel_path="./a.wav", description="d",
                  decision="RESPOND", action="INTERVENE", onset_delay_s=0.5)
    assert onset_delay_problem(e, 0.51) is None
    msg = onset_delay_problem(e, 0.5)
    assert msg is not None and msg.startswith("field 'onset_delay_s': 0.5 s is not shorter than "
                                              "the clip (0.500 s"), msg
