"""Sound packs in generated scenes: recorded requests with pauses, clip-length-safe INTERVENE
windows, recorded bystander talk, pack targets for monitoring; and the pause detector itself."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from chimein.errors import ConfigError
from chimein.scenes.pack_speech import MIN_PAUSE_S, pauses_between, speech_pieces
from chimein.scenes.packs import SoundPack
from chimein.scenes.sampler import SamplerConfig, sample_scene
from chimein.scenes.spec import SceneSpec, Source, Span
from chimein.scenes.speech.espeak import synthesize

SR = 16000


def speech(text: str, rate: int = 175) -> np.ndarray:
    """espeak speech, trimmed to start and end with speech (as :func:`synthesize` returns it)."""
    return np.asarray(synthesize(text, voice="en-us", rate=rate, sample_rate=SR).audio, np.float32)


def with_gaps(parts: Sequence[np.ndarray], gaps_s: Sequence[float], lead_s: float = 0.3,
              tail_s: float = 0.4, noise_db: float | None = None, seed: int = 0) -> np.ndarray:
    """``parts`` joined by silences of ``gaps_s``, with silent lead and tail; ``noise_db``: add
    white noise this many dB below the speech's RMS."""
    out = [np.zeros(int(lead_s * SR), np.float32)]
    for i, p in enumerate(parts):
        out.append(p)
        if i < len(gaps_s):
            out.append(np.zeros(int(round(gaps_s[i] * SR)), np.float32))
    out.append(np.zeros(int(tail_s * SR), np.float32))
    x = np.concatenate(out)
    if noise_db is not None:
        rms = float(np.sqrt(np.mean(np.concatenate(parts) ** 2)))
        x = x + rms * 10 ** (noise_db / 20) * np.random.default_rng(seed).standard_normal(x.size)
    return x.astype(np.float32)


def tone(dur_s: float, freq: float = 1500.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(round(dur_s * SR))) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def first_gap(parts: Sequence[np.ndarray], lead_s: float = 0.3) -> float:
    """Where the silence after the first part starts (seconds from the recording's start)."""
    return lead_s + len(parts[0]) / SR


def file_sources(spec: SceneSpec) -> list[Source]:
    return [s for s in spec.sources if s.kind == "file"]


def spans_in(spec: SceneSpec, src: Source, speaker: str) -> list[Span]:
    end = src.onset_s + float(src.duration_s or 0)
    return [sp for sp in spec.annotations.spans
            if sp.speaker == speaker and src.onset_s - 1e-6 <= sp.start_s and sp.end_s <= end + 1e-6]


@pytest.fixture(scope="module")
def request_parts() -> list[np.ndarray]:
    return [speech("hey chime, can you remind me to"), speech("call mum at six tonight")]


# ---------------------------------------------------------------------------------------------
# The pause detector
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("noise_db", [None, -35.0, -25.0])
def test_a_silent_gap_inside_speech_is_a_pause(request_parts: list[np.ndarray],
                                               noise_db: float | None) -> None:
    x = with_gaps(request_parts, [0.7], noise_db=noise_db)
    pieces = speech_pieces(x, SR)
    assert len(pieces) == 2, pieces
    (pause,) = pauses_between(pieces)
    gap = first_gap(request_parts)
    # the detected pause covers the inserted silence (10 ms frames; the quiet edges of the
    # neighbouring words may join it)
    assert gap - 0.02 <= pause[0] <= gap + 0.06, (pause, gap)
    assert gap + 0.7 - 0.08 <= pause[1] <= gap + 0.7 + 0.02, (pause, gap)
    # the outer bounds are the speech's, not the file's
    assert pieces[0][0] == pytest.approx(0.3, abs=0.05)
    assert pieces[-1][1] == pytest.approx(len(x) / SR - 0.4, abs=0.05)


def test_short_gaps_are_not_pauses(request_parts: list[np.ndarray]) -> None:
    assert MIN_PAUSE_S == 0.25
    short = speech_pieces(with_gaps(request_parts, [0.15]), SR)
    assert len(short) == 1
    # espeak's comma pause at an ordinary rate (~0.15 s) stays inside the speech piece
    assert len(speech_pieces(with_gaps([speech("hey chime, what time is it")], []), SR)) == 1
    three = speech_pieces(with_gaps([request_parts[0], speech("um"), request_parts[1]], [0.4, 1.0]), SR)
    assert len(three) == 3 and len(pauses_between(three)) == 2


def test_a_click_inside_a_pause_does_not_split_it(request_parts: list[np.ndarray]) -> None:
    x = with_gaps(request_parts, [0.8])
    mid = int((first_gap(request_parts) + 0.4) * SR)
    x[mid: mid + 40] = 0.5  # a 2.5 ms click
    (pause,) = pauses_between(speech_pieces(x, SR))
    assert pause[1] - pause[0] > 0.7


def test_noise_as_loud_as_the_speech_gives_one_piece(request_parts: list[np.ndarray]) -> None:
    x = with_gaps(request_parts, [0.7], noise_db=-8.0)
    assert len(speech_pieces(x, SR)) == 1  # no pause can be told from noise at 8 dB SNR


def test_pause_detection_is_deterministic(request_parts: list[np.ndarray]) -> None:
    x = with_gaps(request_parts, [0.7], noise_db=-30.0)
    assert speech_pieces(x, SR) == speech_pieces(x.copy(), SR)


# ---------------------------------------------------------------------------------------------
# Defect 1: recorded requests keep their pauses
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def paused_pack(tmp_path_factory: pytest.TempPathFactory, request_parts: list[np.ndarray],
                write_pack: Callable[..., Path]) -> Path:
    root = tmp_path_factory.mktemp("paused")
    return write_pack(root, [
        ("requests/paused.wav", with_gaps(request_parts, [0.7]),
         {"description": "call mum", "decision": "RESPOND", "action": "RESPOND"}),
        ("requests/plain.wav", with_gaps([speech("hey chime, what is the weather like")], []),
         {"description": "weather", "decision": "RESPOND", "action": "RESPOND"}),
    ])


def _check_request(spec: SceneSpec, gap_s: float | None) -> None:
    """The recorded request's spans: speech, pause, speech (or one speech span); the RESPOND
    window opens at the end of the last speech piece."""
    files = {s.id: s for s in file_sources(spec)}
    (cue,) = [c for c in spec.annotations.cues
              if c.expected == "RESPOND" and set(c.source_ids) & set(files)]
    (src,) = [files[i] for i in cue.source_ids]
    spans = sorted(spans_in(spec, src, "user"), key=lambda s: s.start_s)
    if gap_s is None:
        assert [s.kind for s in spans] == ["speech"]
    else:
        assert [s.kind for s in spans] == ["speech", "pause", "speech"], spans
        assert all(s.addressed for s in spans)
        pause = spans[1]
        assert spans[0].end_s == pause.start_s and pause.end_s == spans[2].start_s
        assert src.onset_s + gap_s - 0.02 <= pause.start_s <= src.onset_s + gap_s + 0.06
        assert pause.end_s - pause.start_s == pytest.approx(0.7, abs=0.08)
    assert cue.window[0] == spans[-1].end_s
    assert cue.onset_s == spans[0].start_s


def test_recorded_request_with_a_pause_is_annotated_as_a_paused_turn(
        paused_pack: Path, request_parts: list[np.ndarray]) -> None:
    from chimein.envs.scoring import ActionLog, score

    cfg = {"family": "addressed", "difficulty": "easy", "sound_packs": [str(paused_pack)],
           "pack_fraction": 1.0}
    seen = set()
    for seed in range(12):
        spec = sample_scene(cfg, seed)
        (src,) = file_sources(spec)
        paused = src.audio["path"].endswith("paused.wav")
        seen.add(paused)
        _check_request(spec, first_gap(request_parts) if paused else None)
        if paused:
            # acting in the pause is a pause take-over (an interruption on the pause span)
            pause = next(s for s in spec.annotations.spans if s.kind == "pause")
            chunk = 0.08
            k = int((pause.start_s + pause.end_s) / 2 / chunk)
            acts = np.zeros(int(spec.duration_s / chunk), np.int64)
            acts[k] = 1
            out = score(spec.annotations, ActionLog.from_actions(acts, chunk))
            (pen,) = [p for p in out.interruptions if p.step == k]
            assert spec.annotations.spans[pen.span_index].kind == "pause"  # type: ignore[index]
    assert seen == {True, False}


def test_pauses_family_draws_recorded_requests_that_pause(
        paused_pack: Path, request_parts: list[np.ndarray]) -> None:
    cfg = {"family": "pauses", "sound_packs": [str(paused_pack)], "pack_fraction": 1.0}
    for seed in range(6):
        spec = sample_scene(cfg, seed)
        files = {s.id: s for s in file_sources(spec)}
        (cue,) = [c for c in spec.annotations.action_cues if set(c.source_ids) & set(files)]
        srcs = [files[i] for i in cue.source_ids]
        assert len(srcs) == 1 and srcs[0].audio["path"] == "./requests/paused.wav", spec.sources
        assert srcs[0].role == "user" and cue.label == "call mum"
        _check_request(spec, first_gap(request_parts))
    # pack_fraction 0: the synthetic split turn, as before
    spec = sample_scene({**cfg, "pack_fraction": 0.0}, 0)
    assert not file_sources(spec)
    assert any(s.kind == "pause" for s in spec.annotations.spans)


def test_pauses_family_without_paused_recordings_stays_synthetic(tmp_path: Path, write_pack: Callable[..., Path]) -> None:
    pack = write_pack(tmp_path, [("plain.wav", with_gaps([speech("hey chime, lights off")], []),
                                 {"description": "lights", "decision": "RESPOND", "action": "RESPOND"})])
    spec = sample_scene({"family": "pauses", "sound_packs": [str(pack)], "pack_fraction": 1.0}, 3)
    assert not [s for s in file_sources(spec) if s.role == "user"]


# ---------------------------------------------------------------------------------------------
# Defect 2: no INTERVENE window opens after its sound has ended
# ---------------------------------------------------------------------------------------------
def test_onset_delay_past_the_clip_is_refused_at_config_time(tmp_path: Path, write_pack: Callable[..., Path]) -> None:
    pack = write_pack(tmp_path, [
        ("Daily Living/Daily Affairs/RESPOND/long.wav", tone(2.0), {"description": "alarm", "decision": "RESPOND"}),
        ("Daily Living/Daily Affairs/RESPOND/pop.wav", tone(0.3), {"description": "pop", "decision": "RESPOND"}),
        ("Nature/RESPOND/crack.wav", tone(0.4), {"description": "crack", "decision": "RESPOND",
                                                 "onset_delay_s": 0.6}),
        ("Nature/IGNORE/tick.wav", tone(0.2), {"description": "tick", "decision": "IGNORE"}),
    ])
    with pytest.raises(ConfigError) as info:
        SamplerConfig.from_mapping({"sound_packs": [str(pack)], "family": "proactive"})
    msg = str(info.value)
    manifest = (pack / "manifest.jsonl").resolve()
    # every offending INTERVENE entry, by manifest:line; the IGNORE clip opens no such window
    assert f"{manifest}:2: pack entry 'pop'" in msg and f"{manifest}:3: pack entry 'crack'" in msg, msg
    assert "'long'" not in msg and "'tick'" not in msg, msg
    assert "field 'onset_delay_s'" in msg and "0.300 s" in msg and "lower it" in msg, msg
    # the same rule, the same words as SoundPack.validate_audio
    audio_msgs = [str(e) for e in SoundPack.load(pack).validate_audio()]
    assert any("not shorter than the clip (0.300 s" in m for m in audio_msgs), audio_msgs


def test_onset_delay_past_the_played_part_of_a_long_clip_is_refused(tmp_path: Path, write_pack: Callable[..., Path]) -> None:
    pack = write_pack(tmp_path, [("Traffic/RESPOND/siren.wav", tone(22.0, amp=0.1),
                                 {"description": "siren", "decision": "RESPOND", "onset_delay_s": 21.0})])
    assert not SoundPack.load(pack).validate_audio()  # the file itself is fine ...
    with pytest.raises(ConfigError, match=r"'siren'.*20\.000 s"):  # ... but scenes play 20 s of it
        SamplerConfig.from_mapping({"sound_packs": [str(pack)]})


def test_intervene_windows_open_while_the_sound_plays(tmp_path: Path, write_pack: Callable[..., Path]) -> None:
    pack = write_pack(tmp_path, [
        ("Nature/RESPOND/short.wav", tone(0.6), {"description": "short", "decision": "RESPOND",
                                                 "onset_delay_s": 0.4}),
        ("Nature/RESPOND/long.wav", tone(3.0), {"description": "long", "decision": "RESPOND"}),
    ])
    cfg = {"sound_packs": [str(pack)], "pack_fraction": 1.0}
    n = 0
    for family in ("proactive", "monitoring"):
        for seed in range(8):
            spec = sample_scene({**cfg, "family": family}, seed)
            for c in spec.annotations.cues:
                for s in file_sources(spec):
                    if c.expected == "INTERVENE" and s.id in c.source_ids:
                        n += 1
                        assert s.onset_s <= c.window[0] < s.onset_s + float(s.duration_s or 0), (c, s)
    assert n >= 12


# ---------------------------------------------------------------------------------------------
# Defect 3: recorded bystander talk, pack targets for monitoring
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chat_parts() -> list[np.ndarray]:
    return [speech("did you see the match last night", rate=190), speech("yeah it was brilliant", rate=160)]


@pytest.fixture(scope="module")
def chat_pack(tmp_path_factory: pytest.TempPathFactory, chat_parts: list[np.ndarray],
              write_pack: Callable[..., Path]) -> Path:
    root = tmp_path_factory.mktemp("chat")
    return write_pack(root, [
        ("Human Signals/Conversation/IGNORE/chat.wav", with_gaps(chat_parts, [0.6]),
         {"description": "two people chatting", "decision": "IGNORE"}),
        ("Daily Living/Housekeeping/IGNORE/hum.wav", tone(2.0, 120.0, 0.2),
         {"description": "fridge hum", "decision": "IGNORE"}),
    ])


def test_ignore_speech_entries_are_known_as_speech(chat_pack: Path) -> None:
    pack = SoundPack.load(chat_pack)
    assert pack.get("chat").speech and not pack.get("hum").speech


def test_recorded_talk_is_bystander_speech_not_a_benign_event(
        chat_pack: Path, chat_parts: list[np.ndarray]) -> None:
    cfg = {"family": "distractors", "difficulty": "easy", "sound_packs": [str(chat_pack)],
           "pack_fraction": 1.0, "pack_levels": "normalised"}  # levels drawn from speech_level_db
    lo, hi = SamplerConfig.from_mapping(cfg).resolved().speech_level_db  # type: ignore[misc]
    talk = 0
    for seed in range(20):
        spec = sample_scene(cfg, seed)
        for src in file_sources(spec):
            if not src.audio["path"].endswith("chat.wav"):
                assert src.role == "event"  # the hum stays a benign event
                continue
            talk += 1
            assert src.role == "bystander" and lo <= src.level_db <= hi, src
            assert not [c for c in spec.annotations.cues if src.id in c.source_ids]
            spans = sorted(spans_in(spec, src, "bystander"), key=lambda s: s.start_s)
            assert [s.kind for s in spans] == ["speech", "pause", "speech"], spans
            assert not any(s.addressed for s in spans)
            gap = src.onset_s + first_gap(chat_parts)
            assert gap - 0.02 <= spans[1].start_s <= gap + 0.06
    assert talk >= 3


def test_monitoring_can_watch_for_a_pack_sound(tmp_path: Path, write_pack: Callable[..., Path]) -> None:
    pack = write_pack(tmp_path, [
        ("Daily Living/Housekeeping/RESPOND/alarm.wav", tone(3.0, 2500.0),
         {"description": "smoke alarm", "decision": "RESPOND", "safety_critical": True, "onset_delay_s": 0.2}),
        ("Daily Living/Housekeeping/IGNORE/hum.wav", tone(2.0, 120.0, 0.2),
         {"description": "fridge hum", "decision": "IGNORE"}),
        ("Human Signals/Conversation/IGNORE/chat.wav", with_gaps([speech("hello there")], []),
         {"description": "people talking", "decision": "IGNORE"}),
    ])
    cfg = {"family": "monitoring", "sound_packs": [str(pack)], "pack_fraction": 1.0}
    targets: set[str] = set()
    lookalikes = 0
    for seed in range(16):
        spec = sample_scene(cfg, seed)
        by_id = {s.id: s for s in spec.sources}
        (ack,) = [c for c in spec.annotations.cues if c.expected == "RESPOND"]
        (request,) = [by_id[i] for i in ack.source_ids]
        (watch,) = [c for c in spec.annotations.cues if c.expected == "INTERVENE"]
        (ev,) = [by_id[i] for i in watch.source_ids]
        assert ev.kind == "file" and ev.role == "event"
        desc = watch.label.removeprefix("monitored ")
        targets.add(desc)
        assert desc in ("smoke alarm", "fridge hum")  # never the recorded talk
        assert desc in request.audio["text"]  # the request names the sound by its description
        assert watch.safety_critical == (desc == "smoke alarm")
        delay = 0.2 if desc == "smoke alarm" else 0.5
        assert watch.window[0] == pytest.approx(ev.onset_s + delay, abs=1e-3)
        assert ev.onset_s > ack.window[1]
        for c in spec.annotations.cues:
            if c.expected == "IGNORE" and c.label.startswith("non-target "):
                lookalikes += 1
                (o,) = [by_id[i] for i in c.source_ids]
                # a look-alike is a pack sound that needs no help, other than the target
                assert o.kind == "file" and c.label == "non-target fridge hum" != f"non-target {desc}"
                assert c.window[1] < watch.window[0]
    assert targets == {"smoke alarm", "fridge hum"} and lookalikes >= 1


def test_packs_leave_no_pack_scenes_alone(chat_pack: Path) -> None:
    """pack_fraction 0 draws nothing from the packs in any family."""
    cfg = {"family": "mixed", "sound_packs": [str(chat_pack)], "pack_fraction": 0.0}
    for seed in range(12):
        assert not file_sources(sample_scene(cfg, seed))
