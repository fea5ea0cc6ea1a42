"""Tests for espeak-ng synthesis (chimein.scenes.speech) and utterance templates."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

from chimein.errors import SpecError
from chimein.scenes import templates
from chimein.scenes.speech import VOICES, Speech, available_voice, espeak, synthesize

TEXT = "hey chime, what's the weather tomorrow"


def _digest(s: Speech) -> str:
    h = hashlib.sha256(s.audio.tobytes())
    h.update(repr((s.sample_rate, s.words)).encode())
    return h.hexdigest()


def _digest_of(args: tuple[str, str, int, int]) -> str:
    """Run in a spawned worker: a fresh interpreter with its own espeak-ng helper."""
    text, voice, rate, pitch = args
    return _digest(synthesize(text, voice=voice, rate=rate, pitch=pitch))


def _f0(x: np.ndarray, sr: int) -> float:
    """Median autocorrelation pitch (Hz) over the louder 40 ms frames."""
    n = int(0.04 * sr)
    overall = np.sqrt(np.mean(x**2))
    vals = []
    for i in range(0, len(x) - n, n):
        f = x[i:i + n] - x[i:i + n].mean()
        if np.sqrt(np.mean(f**2)) < 0.3 * overall:
            continue
        ac = np.correlate(f, f, "full")[n - 1:]
        lo, hi = int(sr / 400), int(sr / 60)
        k = lo + int(np.argmax(ac[lo:hi]))
        if ac[k] > 0.3 * ac[0]:
            vals.append(sr / k)
    return float(np.median(vals))


# ------------------------------------------------------------------------------ synthesis
def test_output_format_and_read_only() -> None:
    s = synthesize(TEXT, voice="en-us+f3")
    assert s.sample_rate == 16000
    assert s.audio.dtype == np.float32 and s.audio.ndim == 1
    assert np.isfinite(s.audio).all() and 0.05 < np.abs(s.audio).max() <= 1.0
    assert 1.5 < s.duration_s < 3.5
    assert s.duration_s == s.audio.shape[0] / 16000
    assert not s.audio.flags.writeable
    with pytest.raises(ValueError):
        s.audio[0] = 1.0
    assert synthesize(TEXT, voice="en-us+f3") is s  # served from the per-process cache


def test_deterministic_regardless_of_history() -> None:
    a = synthesize(TEXT, voice="en-us")
    espeak._synthesize.cache_clear()
    # other utterances and voices in between must not change the next result (espeak-ng
    # keeps C state across calls; the helper's fork-per-call makes each call pristine)
    synthesize("okay let's go, right now", voice="en-us+whisper", rate=300, pitch=90)
    synthesize("the kettle is boiling", voice="en-gb-x-rp+m7")
    b = synthesize(TEXT, voice="en-us")
    assert a is not b
    assert np.array_equal(a.audio, b.audio) and a.words == b.words


def test_identical_in_a_spawned_process() -> None:
    jobs = [(TEXT, "en-us+f3", 175, 50), ("call mum at six", "en-gb+m2", 220, 30)]
    here = [_digest_of(j) for j in jobs]
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as ex:
        there = list(ex.map(_digest_of, jobs[::-1]))[::-1]  # other order: other history
    assert there == here


def test_threads_share_the_engine_safely() -> None:
    texts = [f"number {w} please" for w in ("one", "two", "three", "four", "five", "six")]
    seq = [_digest(synthesize(t, voice="en-us+m3")) for t in texts]
    espeak._synthesize.cache_clear()
    with ThreadPoolExecutor(max_workers=3) as ex:
        par = list(ex.map(lambda t: _digest(synthesize(t, voice="en-us+m3")), texts))
    assert par == seq


def test_voices_exist_and_sound_distinct() -> None:
    assert len(VOICES) >= 12 and len(set(VOICES)) == len(VOICES)
    outs = {v: synthesize("hello there, how are you doing today", voice=v) for v in VOICES}
    assert len({_digest(s) for s in outs.values()}) == len(VOICES)
    f0 = {v: _f0(s.audio, s.sample_rate) for v, s in outs.items()}
    # female variants sit well above male ones (espeak: f* about 170-220 Hz, m* about 90-100)
    for fem, male in [("en-us+f3", "en-us+m3"), ("en-gb-x-rp+f2", "en-gb-x-rp+m7"),
                      ("en-gb-scotland+f1", "en-gb-scotland+m1")]:
        assert f0[fem] > 1.4 * f0[male], (fem, f0[fem], male, f0[male])


def test_pitch_parameter_moves_f0() -> None:
    lo = synthesize("hello there, how are you doing today", pitch=10)
    hi = synthesize("hello there, how are you doing today", pitch=90)
    assert _f0(hi.audio, 16000) > 1.3 * _f0(lo.audio, 16000)


def test_rate_changes_duration() -> None:
    d = [synthesize(TEXT, rate=r).duration_s for r in (100, 175, 300)]
    assert d[0] > 1.3 * d[1] and d[1] > 1.3 * d[2]


def test_word_timings() -> None:
    text = "um, remind me to call mum in the garden at six"
    s = synthesize(text, voice="en-gb-x-rp+m7")
    assert [w.text for w in s.words] == [t.strip(",") for t in text.split()]
    for w in s.words:
        assert 0.0 <= w.start_s <= w.end_s <= s.duration_s + 1e-9
    for a, b in zip(s.words, s.words[1:], strict=False):
        assert a.end_s <= b.start_s + 1e-9 and a.start_s < b.start_s
    assert s.words[0].start_s < 0.01
    assert abs(s.words[-1].end_s - s.duration_s) <= 0.01  # last word ends with speech energy
    # the comma pause after "um" belongs to no word
    assert s.words[1].start_s - s.words[0].end_s > 0.05
    # during a word there is sound; in the pause there is (almost) none
    sr = s.sample_rate
    um, remind = s.words[0], s.words[1]
    pause = s.audio[int((um.end_s + 0.01) * sr): int((remind.start_s - 0.01) * sr)]
    word = s.audio[int(remind.start_s * sr): int(remind.end_s * sr)]
    assert pause.size and np.sqrt(np.mean(pause**2)) < 0.01 * np.sqrt(np.mean(word**2))


def test_contractions_and_joined_words_keep_every_token() -> None:
    text = "what's in the box, our reporter is live at 6:30"
    s = synthesize(text)
    assert [w.text for w in s.words] == [t.strip(",") for t in text.split()]


def test_silence_is_trimmed() -> None:
    s = synthesize(TEXT, voice="en-us+m3")
    hop = s.sample_rate // 100
    frames = s.audio[: len(s.audio) // hop * hop].reshape(-1, hop)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    ref = rms.max()
    assert rms[0] > ref * 10 ** (-55 / 20) and rms[-1] > ref * 10 ** (-55 / 20)


def test_resampling_keeps_timing() -> None:
    out = {sr: synthesize(TEXT, voice="en-us+f2", sample_rate=sr) for sr in (8000, 16000, 22050)}
    for sr, s in out.items():
        assert s.sample_rate == sr and s.audio.dtype == np.float32
        assert s.words == out[22050].words
        assert abs(s.duration_s - out[22050].duration_s) < 2.0 / 8000
    # 16 kHz is the 22.05 kHz signal band-limited: compare on a common grid
    ref = espeak.resample(np.asarray(out[22050].audio), 22050, 16000)
    n = min(len(ref), len(out[16000].audio))
    assert np.allclose(ref[:n], out[16000].audio[:n], atol=1e-6)


def test_voice_names_are_normalised() -> None:
    assert available_voice("en-GB+M3") == "en+m3"
    assert available_voice("en-gb-x-rp") == "en-gb-x-rp"
    assert available_voice("en-us+annie") == "en-us+Annie"
    a = synthesize("good morning", voice="en-gb+m3")
    assert a is synthesize("good morning", voice="EN-GB+m3")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"text": ""}, "text"),
        ({"text": "   "}, "text"),
        ({"text": 42}, "text"),
        ({"text": "x" * 3000}, "text"),
        ({"voice": "xx-nowhere"}, "voice"),
        ({"voice": "en-us+nobody"}, "voice"),
        ({"voice": ""}, "voice"),
        ({"rate": 79}, "rate"),
        ({"rate": 451}, "rate"),
        ({"rate": 175.0}, "rate"),
        ({"pitch": -1}, "pitch"),
        ({"pitch": 100}, "pitch"),
        ({"pitch_range": 120}, "pitch_range"),
        ({"sample_rate": 100}, "sample_rate"),
        ({"rate": True}, "rate"),
    ],
)
def test_bad_arguments_name_the_field(kwargs: dict, field: str) -> None:
    args = {"text": "hello", **kwargs}
    with pytest.raises(SpecError, match=f"'{field}'"):
        synthesize(**args)


def test_unpronounceable_text_is_an_error() -> None:
    with pytest.raises(SpecError, match="'text'"):
        synthesize("... ,,, ...")


# ------------------------------------------------------------------------------ templates
def _draw_all(seed: int) -> list[object]:
    rng = np.random.default_rng(seed)
    return [
        templates.wake_request(rng), templates.command(rng), templates.chitchat(rng),
        templates.tv_line(rng, with_wake=True), templates.tv_line(rng, with_wake=False),
        templates.monitoring_request(rng, "the washing machine finishes"),
        templates.split_turn(rng),
    ] * 1 + [templates.command(rng) for _ in range(20)]


def test_templates_deterministic_per_seed() -> None:
    assert _draw_all(7) == _draw_all(7)
    assert _draw_all(7) != _draw_all(8)


def test_wake_phrase_properties() -> None:
    rng = np.random.default_rng(123)
    for _ in range(400):
        c = templates.chitchat(rng)
        assert not templates.contains_wake_phrase(c.text) and not c.addressed
        assert (c.intent, c.contains_wake) == ("chitchat", False)
        tv = templates.tv_line(rng, with_wake=True)
        assert templates.contains_wake_phrase(tv.text) and tv.contains_wake and not tv.addressed
        assert tv.intent == "media"
        plain = templates.tv_line(rng, with_wake=False)
        assert not templates.contains_wake_phrase(plain.text) and not plain.contains_wake
        for u, intent in [(templates.wake_request(rng), "request"),
                          (templates.command(rng), "command"),
                          (templates.monitoring_request(rng, "kettle_whistle"), "monitoring")]:
            assert u.addressed and u.contains_wake and u.intent == intent
            assert any(u.text.startswith(w) for w in templates.WAKE_PHRASES)
        frags = templates.split_turn(rng)
        assert 2 <= len(frags) <= 3 and all(f.strip() for f in frags)
        assert templates.contains_wake_phrase(frags[0])
        assert not any(templates.contains_wake_phrase(f) for f in frags[1:])
    assert all(templates.WAKE_WORD in w for w in templates.WAKE_PHRASES)
    assert not templates.contains_wake_phrase("the wind chimes are lovely")


def test_monitoring_targets() -> None:
    rng = np.random.default_rng(0)
    u = templates.monitoring_request(rng, "the washing machine finishes")
    assert u.target == "the washing machine finishes" and u.text.endswith(u.target)
    assert templates.monitoring_request(rng, "kettle_whistle").target == "the kettle boils"
    assert templates.monitoring_request(rng, "car_alarm").target == "the car alarm goes off"
    with pytest.raises(SpecError, match="target_event_label"):
        templates.monitoring_request(rng, " ")
    with pytest.raises(SpecError, match="rng"):
        templates.chitchat(0)  # type: ignore[arg-type]


def test_templates_have_variety() -> None:
    rng = np.random.default_rng(5)
    for fn in (templates.wake_request, templates.command):
        assert len({fn(rng).text for _ in range(500)}) > 300
    assert len({templates.chitchat(rng).text for _ in range(500)}) > 200
    assert len({templates.tv_line(rng, with_wake=True).text for _ in range(500)}) > 200
    assert len({" | ".join(templates.split_turn(rng)) for _ in range(500)}) > 400


def test_template_text_is_pronounced_word_by_word() -> None:
    rng = np.random.default_rng(11)
    texts = []
    for _ in range(4):
        texts += [templates.wake_request(rng).text, templates.command(rng).text,
                  templates.chitchat(rng).text, templates.tv_line(rng, with_wake=True).text,
                  templates.tv_line(rng, with_wake=False).text,
                  templates.monitoring_request(rng, "doorbell").text,
                  *templates.split_turn(rng)]
    for i, t in enumerate(texts):
        s = synthesize(t, voice=VOICES[i % len(VOICES)])
        assert len(s.words) == len(t.split()), t
        assert s.duration_s > 0.15 * len(s.words)
