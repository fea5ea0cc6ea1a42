"""chimein.io and chimein.scenes.audio: atomic writes, validated audio reading and writing, safe paths."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from chimein.errors import AudioError, SpecError
from chimein.io import atomic_write, atomic_write_bytes, atomic_write_text, safe_join
from chimein.scenes.audio import load_audio, resample, write_audio


def tone(freq: float, sr: int, dur: float = 1.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(round(sr * dur))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


# ---------------------------------------------------------------------------------------------
# Atomic writes
# ---------------------------------------------------------------------------------------------
def test_atomic_write_text_and_bytes(tmp_path: Path) -> None:
    p = tmp_path / "deep" / "er" / "a.txt"  # parents are created
    atomic_write_text(p, "héllo\n")
    assert p.read_bytes() == "héllo\n".encode()
    atomic_write_bytes(p, b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01"
    assert leftovers(p.parent) == []


@pytest.mark.parametrize("exc", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_failed_write_leaves_old_file_and_no_temp(tmp_path: Path, exc: BaseException) -> None:
    p = tmp_path / "data.json"
    p.write_text("old")

    def writer(t: Path) -> None:
        t.write_text("half a new fi")  # partial output, then the writer dies
        raise exc

    with pytest.raises(type(exc)):
        atomic_write(p, writer)
    assert p.read_text() == "old"
    assert leftovers(tmp_path) == [] and sorted(x.name for x in tmp_path.iterdir()) == ["data.json"]


def test_failed_first_write_creates_nothing(tmp_path: Path) -> None:
    def writer(t: Path) -> None:
        raise OSError("no space left")

    with pytest.raises(OSError, match="no space"):
        atomic_write(tmp_path / "new.bin", writer)
    assert list(tmp_path.iterdir()) == []


def test_temp_file_is_in_the_destination_folder(tmp_path: Path) -> None:
    seen: list[Path] = []

    def writer(t: Path) -> None:
        seen.append(t)
        t.write_bytes(b"x")

    atomic_write(tmp_path / "a.flac", writer)
    assert seen[0].parent == tmp_path and seen[0].name.startswith(".a.flac.")
    assert seen[0].suffix == ".flac"  # libraries that pick a format from the suffix still work
    assert not seen[0].exists() and (tmp_path / "a.flac").read_bytes() == b"x"


def test_atomic_write_file_mode(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "new.txt", "x")
    finally:
        os.umask(old)
    # like open(): 0666 minus the umask, not mkstemp's private 0600
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o640
    keep = tmp_path / "keep.txt"
    keep.write_text("x")
    keep.chmod(0o604)
    atomic_write_text(keep, "y")  # replacing a file keeps its mode
    assert stat.S_IMODE(keep.stat().st_mode) == 0o604 and keep.read_text() == "y"


# ---------------------------------------------------------------------------------------------
# write_audio
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("suffix", "atol"), [(".wav", 0.0), (".flac", 2e-7), (".ogg", 0.05)])
def test_write_audio_round_trip(tmp_path: Path, suffix: str, atol: float) -> None:
    x = np.stack([tone(440, 16000), tone(880, 16000, amp=0.1)], axis=1)
    p = tmp_path / f"a{suffix}"
    write_audio(p, x, 16000)
    y = load_audio(p, 16000, mono=False)
    assert y.shape == x.shape and y.dtype == np.float32
    if suffix == ".ogg":  # lossy: compare levels, not samples
        assert np.sqrt(np.mean(y**2, axis=0)) == pytest.approx(np.sqrt(np.mean(x**2, axis=0)),
                                                               rel=0.05)
    else:
        np.testing.assert_allclose(y, x, atol=atol)
    assert leftovers(tmp_path) == []


def test_write_audio_errors_leave_nothing(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=r"unsupported audio suffix; use \.flac, \.wav or \.ogg"):
        write_audio(tmp_path / "a.mp4", tone(440, 16000), 16000)
    with pytest.raises(AudioError, match="shape"):
        write_audio(tmp_path / "b.wav", np.zeros((10, 2, 2), np.float32), 16000)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# load_audio
# ---------------------------------------------------------------------------------------------
def test_load_audio_resamples_and_downmixes(tmp_path: Path) -> None:
    left, right = tone(1000, 44100, amp=0.4), tone(1000, 44100, amp=0.2)
    p = tmp_path / "a.wav"
    sf.write(p, np.stack([left, right], axis=1), 44100, subtype="FLOAT")
    x = load_audio(p, 16000)
    assert x.shape == (16000,) and x.dtype == np.float32 and x.flags.c_contiguous
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    assert abs(np.fft.rfftfreq(len(x), 1 / 16000)[np.argmax(spec)] - 1000) < 2
    mid = slice(2000, 14000)  # away from the filter's edge effects
    assert np.max(np.abs(x[mid])) == pytest.approx(0.3, abs=0.01)  # mean of 0.4 and 0.2
    both = load_audio(p, 16000, mono=False)
    assert both.shape == (16000, 2)
    np.testing.assert_allclose(both.mean(axis=1), x, atol=1e-6)
    same = load_audio(p, 44100)
    np.testing.assert_allclose(same, (left + right) / 2, atol=1e-7)


def test_load_audio_is_deterministic(tmp_path: Path) -> None:
    p = tmp_path / "a.flac"
    sf.write(p, tone(700, 22050), 22050)
    assert load_audio(p, 16000).tobytes() == load_audio(p, 16000).tobytes()


def _bad(tmp_path: Path, kind: str) -> Path:
    p = tmp_path / f"{kind}.wav"
    if kind == "corrupt":
        p.write_bytes(b"RIFF" + bytes(range(256)) * 4)
    elif kind == "text":
        p.write_text("this is not audio\n" * 20)
    elif kind == "zero_bytes":
        p.write_bytes(b"")
    elif kind == "empty":
        sf.write(p, np.zeros(0, np.float32), 16000)
    elif kind == "silent":
        sf.write(p, np.zeros(16000, np.float32), 16000)
    elif kind == "quiet":  # -100 dBFS: below the -80 dBFS floor
        sf.write(p, np.full(16000, 1e-5, np.float32), 16000, subtype="FLOAT")
    elif kind == "nan":
        x = tone(440, 16000)
        x[5] = np.nan
        sf.write(p, x, 16000, subtype="FLOAT")
    elif kind == "inf":
        x = tone(440, 16000)
        x[5] = np.inf
        sf.write(p, x, 16000, subtype="FLOAT")
    elif kind == "antiphase":  # stereo whose channels cancel: silent once downmixed
        x = tone(440, 16000)
        sf.write(p, np.stack([x, -x], axis=1), 16000, subtype="FLOAT")
    return p


@pytest.mark.parametrize(("kind", "words"), [
    ("missing", "audio file not found"),
    ("corrupt", "cannot decode audio"),
    ("text", "cannot decode audio"),
    ("zero_bytes", "empty (0 bytes)"),
    ("empty", "empty (0 samples)"),
    ("silent", "silent"),
    ("quiet", "silent (RMS -100.0 dBFS"),
    ("nan", "NaN or Inf"),
    ("inf", "NaN or Inf"),
    ("antiphase", "silent"),
])
def test_load_audio_errors_name_the_file(tmp_path: Path, kind: str, words: str) -> None:
    p = _bad(tmp_path, kind)
    with pytest.raises(AudioError) as info:
        load_audio(p)
    assert str(info.value).startswith(f"{p}: ") and words in str(info.value), str(info.value)


def test_load_audio_silence_floor_and_channels(tmp_path: Path) -> None:
    quiet = _bad(tmp_path, "quiet")
    assert load_audio(quiet, 16000, silence_dbfs=-120.0).shape == (16000,)
    anti = _bad(tmp_path, "antiphase")
    assert load_audio(anti, 16000, mono=False).shape == (16000, 2)  # channels kept: not silent


@pytest.mark.parametrize("sr", [0, -16000, 16000.0, True, "16000"])
def test_load_audio_rejects_bad_sample_rate(tmp_path: Path, sr: object) -> None:
    p = tmp_path / "a.wav"
    sf.write(p, tone(440, 16000), 16000)
    with pytest.raises(AudioError, match="sample_rate must be a positive integer"):
        load_audio(p, sr)  # type: ignore[arg-type]


def test_resample() -> None:
    x = tone(1000, 48000)
    assert resample(x, 48000, 48000) is x
    y = resample(x, 48000, 16000)
    assert y.dtype == np.float32 and y.shape == (16000,)
    stereo = resample(np.stack([x, x], axis=1), 48000, 22050)
    assert stereo.shape == (22050, 2) and stereo.dtype == np.float32


# ---------------------------------------------------------------------------------------------
# safe_join
# ---------------------------------------------------------------------------------------------
def test_safe_join_inside(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    assert safe_join(tmp_path, "a/b.wav") == (tmp_path / "a/b.wav").resolve()
    assert safe_join(tmp_path, "./a/../c.wav") == (tmp_path / "c.wav").resolve()
    assert safe_join(str(tmp_path), Path("x y/z.flac")) == (tmp_path / "x y/z.flac").resolve()
    os.symlink(tmp_path / "a", tmp_path / "alias")  # a link that stays inside is fine
    assert safe_join(tmp_path, "alias/b.wav") == (tmp_path / "a/b.wav").resolve()


@pytest.mark.parametrize(("rel", "words"), [
    ("../x.wav", "leaves its folder"),
    ("a/../../x.wav", "leaves its folder"),
    ("/etc/passwd", "is absolute"),
    ("out/x.wav", "leaves its folder"),  # symlinked folder pointing outside
    ("outfile.wav", "leaves its folder"),  # symlinked file pointing outside
    pytest.param("loop/x.wav", "cannot be resolved", marks=pytest.mark.skipif(
        sys.version_info >= (3, 13), reason="Path.resolve no longer raises on loops")),
    ("a\x00b.wav", "NUL byte"),
])
def test_safe_join_refuses(tmp_path: Path, rel: str, words: str) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "x.wav").write_bytes(b"")
    os.symlink(outside, root / "out")
    os.symlink(outside / "x.wav", root / "outfile.wav")
    os.symlink(root / "loop", root / "loop")
    with pytest.raises(SpecError) as info:
        safe_join(root, rel, what="audio path")
    msg = str(info.value)
    assert msg.startswith("audio path ") and words in msg, msg


def test_float_wav_bytes_do_not_depend_on_the_clock(tmp_path) -> None:
    import time

    import numpy as np
    import soundfile as sf

    from chimein.scenes.audio import write_audio

    x = (np.random.default_rng(0).standard_normal((1600, 2)) * 0.1).astype(np.float32)
    write_audio(tmp_path / "a.wav", x, 16000)
    time.sleep(1.1)
    write_audio(tmp_path / "b.wav", x, 16000)
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    y, sr = sf.read(tmp_path / "a.wav", dtype="float32")
    assert sr == 16000 and np.array_equal(x, y)


@pytest.mark.parametrize("sr", [1, 999, 384_001])
def test_load_audio_refuses_absurd_file_rates(tmp_path: Path, sr: int) -> None:
    p = tmp_path / "odd.wav"
    sf.write(p, tone(0.1, sr, dur=2000 / sr), sr)
    with pytest.raises(AudioError, match=rf"odd\.wav: sample rate {sr} Hz .*1000.*384000"):
        load_audio(p, 16000)


def test_load_audio_bounds_the_resampled_length(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import chimein.scenes.audio as audio_mod

    p = tmp_path / "long.wav"
    sf.write(p, tone(440, 8000, dur=3.0), 8000)
    monkeypatch.setattr(audio_mod, "MAX_AUDIO_S", 2.0)  # as if the file were hours long
    with pytest.raises(AudioError, match=r"long\.wav: .*too long"):
        load_audio(p, 16000)


def _episodes_file(tmp_path: Path) -> Path:
    from chimein.envs.episode import EpisodeRecord
    from chimein.envs.scoring import ActionLog
    from chimein.eval.episodes import append_episodes
    from chimein.scenes.spec import Annotations, Cue

    ann = Annotations(cues=(Cue(id="c", expected="RESPOND", window=(0.1, 0.3), label="x"),))
    p = tmp_path / "episodes.jsonl"
    append_episodes(p, [EpisodeRecord(f"s{i}", ActionLog.from_actions([0, 1, 0, 0], chunk_s=0.08), annotations=ann)
                        for i in range(3)])
    return p


def test_rescore_warns_about_a_truncated_last_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from chimein.cli import main as cli_main

    p = _episodes_file(tmp_path)
    p.write_bytes(p.read_bytes()[:-30])  # the last append cut off by a kill
    assert cli_main(["eval", "rescore", str(p), f"out={tmp_path / 'r'}"]) == 0
    err = capsys.readouterr().err
    assert f"warning: {p}:3:" in err and "incomplete last line" in err, err


def test_episodes_not_utf8_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from chimein.cli import main as cli_main
    from chimein.eval.episodes import read_episodes

    p = _episodes_file(tmp_path)
    p.write_bytes(p.read_bytes().replace(b'"s1"', b'"s\xe91"'))
    with pytest.raises(SpecError, match=rf"{p}: not UTF-8.*UTF-8"):
        read_episodes(p)
    assert cli_main(["eval", "rescore", str(p), f"out={tmp_path / 'r'}"]) == 2
    err = capsys.readouterr().err
    assert str(p) in err and "UTF-8" in err and "Traceback" not in err, err
