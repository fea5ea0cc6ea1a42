"""Natural turns (#18): pauses inside one utterance, fillers, corrections, short answers and
backchannels, as the sampler places and annotates them, and how the scorer treats them."""

from __future__ import annotations

import numpy as np
import pytest

from chimein.envs.scoring import ActionLog, score
from chimein.errors import ConfigError, SpecError
from chimein.eval.suites import WORLD_V0
from chimein.scenes import turns
from chimein.scenes.sampler import sample_scene
from chimein.scenes.spec import Annotations, Span
from chimein.scenes.speech import realize

# espeak-ng talkers with the speaker model: fast, and no optional generator needed
ESPEAK = {"speech_generators": ["espeak-ng"], "speakers_per_voice": 3, "difficulty": "easy"}


def test_natural_request_plans_valid_pauses() -> None:
    for seed in range(60):
        plan = turns.natural_request(np.random.default_rng(seed), "hey chime, set a timer for ten minutes",
                                     p_filler=0.5, p_pause=1.0, p_correction=0.3)
        words = plan.words
        assert words[:2] == ["hey", "chime"] and words[-1] == "minutes"
        for p in plan.pauses:
            assert 0 <= p.after_word < len(words) - 1  # never after the last word
        if "self_correction" in plan.features:
            assert "no" in words


def test_natural_request_without_any_feature_keeps_the_text() -> None:
    plan = turns.natural_request(np.random.default_rng(0), "hey chime, set a timer for ten minutes", 0, 0, 0)
    assert plan.text == "hey chime, set a timer for ten minutes" and plan.pauses == ()


def test_bad_probability_names_the_field() -> None:
    with pytest.raises(SpecError, match="p_filler"):
        turns.natural_request(np.random.default_rng(0), "hey chime, stop", p_filler=2.0)


def _pause_inside_one_utterance(spec) -> int:  # type: ignore[no-untyped-def]
    n = 0
    for sp in spec.annotations.spans:
        if sp.kind != "pause":
            continue
        owners = []
        for src in spec.sources:
            if src.kind != "speech":
                continue
            ends = [round(src.onset_s + w.end_s, 4) for w in src.words]
            starts = [round(src.onset_s + w.start_s, 4) for w in src.words]
            for k in range(len(src.words) - 1):
                if abs(ends[k] - sp.start_s) < 2e-4 and abs(starts[k + 1] - sp.end_s) < 2e-4:
                    owners.append((src, k))
        assert len(owners) == 1, f"pause {sp} is not inside exactly one utterance: {owners}"
        src, k = owners[0]
        assert [p["after_word"] for p in src.audio["pauses"]].count(k) == 1
        # the synthesised utterance is silent in the pause (digital silence, after a short fade)
        speech = realize(src.audio, spec.sample_rate)
        a = int(round((speech.words[k].end_s + 0.02) * spec.sample_rate))
        b = int(round((speech.words[k + 1].start_s - 0.02) * spec.sample_rate))
        assert b > a and not np.any(speech.audio[a:b])
        n += 1
    return n


def test_mid_turn_pause_sits_inside_one_synthesised_utterance() -> None:
    total = 0
    for seed in range(4):
        spec = sample_scene({**ESPEAK, "family": "pauses"}, seed=seed)
        user = [s for s in spec.sources if s.kind == "speech" and s.role == "user"]
        assert len(user) == 1 or any(c.label == "short answer" for c in spec.annotations.cues)
        total += _pause_inside_one_utterance(spec)
    assert total >= 4


def test_fragment_mode_is_a_named_option_with_one_source_per_fragment() -> None:
    spec = sample_scene({**ESPEAK, "family": "pauses", "pause_mode": "fragments"}, seed=1)
    user = [s for s in spec.sources if s.kind == "speech" and s.role == "user"]
    assert len(user) >= 2 and all("pauses" not in s.audio for s in user)


def test_natural_requests_show_fillers_pauses_and_corrections() -> None:
    cfg = {**ESPEAK, "family": "addressed", "filler_rate": 0.5, "turn_pause_rate": 1.0,
           "correction_rate": 0.5, "short_answer_rate": 0.0}
    texts, pauses = [], 0
    for seed in range(12):
        spec = sample_scene(cfg, seed=seed)
        pauses += _pause_inside_one_utterance(spec)
        texts += [s.label for s in spec.sources if s.kind == "speech" and s.role == "user"]
    assert pauses >= 6
    assert any(f" {f}," in t for t in texts for f in ("um", "uh", "erm", "so", "well"))
    assert any(", no, " in t for t in texts)


def test_short_answer_is_a_whole_addressed_turn() -> None:
    spec = sample_scene({**ESPEAK, "family": "addressed", "short_answer_rate": 1.0}, seed=2)
    cues = [c for c in spec.annotations.cues if c.expected == "RESPOND"]
    assert [c.label for c in cues][-1] == "short answer" and len(cues) == 2
    ans = next(s for s in spec.sources if s.label in turns.SHORT_ANSWERS)
    assert cues[-1].window[0] == pytest.approx(ans.onset_s + ans.words[-1].end_s, abs=1e-3)
    assert any(sp.addressed and sp.kind == "speech" and abs(sp.end_s - cues[-1].window[0]) < 1e-3
               for sp in spec.annotations.spans)


def test_backchannels_are_annotated_and_never_addressed() -> None:
    found = 0
    for seed in range(6):
        spec = sample_scene({**ESPEAK, "family": "distractors", "backchannel_rate": 1.0}, seed=seed)
        bc = [sp for sp in spec.annotations.spans if sp.kind == "backchannel"]
        assert not any(sp.addressed for sp in bc)
        for sp in bc:
            src = next(s for s in spec.sources if s.kind == "speech"
                       and abs(s.onset_s + s.words[0].start_s - sp.start_s) < 1e-3)
            assert src.label in turns.BACKCHANNELS
        found += len(bc)
    assert found >= 2


def test_acting_on_a_backchannel_is_an_interruption() -> None:
    ann = Annotations(cues=(), spans=(Span(1.0, 1.4, "bystander", "backchannel", False),))
    out = score(ann, ActionLog.from_actions([0] * 11 + [1] + [0] * 18, chunk_s=0.1))
    assert [p.kind for p in out.interruptions] == ["interruption"]
    assert out.interruptions[0].span_index == 0


def test_v0_speech_keys_reproduce_plain_turns() -> None:
    spec = sample_scene({**WORLD_V0, "family": "pauses", "difficulty": "easy"}, seed=5)
    for s in spec.sources:
        if s.kind == "speech":
            assert set(s.audio) == {"text", "voice", "rate", "pitch"}


@pytest.mark.parametrize(("override", "field"), [
    ({"speech_generators": ["festival"]}, "speech_generators"),
    ({"pause_mode": "split"}, "pause_mode"),
    ({"speakers_per_voice": 0, "speech_generators": ["flite"]}, "speech_generators"),
    ({"speech_voices": {"flite": ["nobody"]}}, "speech_voices"),
    ({"backchannel_rate": 1.5}, "backchannel_rate"),
    ({"speaker_vtl": [0.5, 1.0]}, "speaker_vtl"),
])
def test_bad_speech_options_name_the_field(override: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        sample_scene({"family": "addressed", **override}, seed=0)


def test_a_slow_tv_line_over_a_turn_extends_the_scene_to_its_cue() -> None:
    # found by `chimein train codebook`: a TV line overlapping the request outlasted its segment
    from chimein.scenes.sampler import scene_seed

    spec = sample_scene({"room_pool": 32, "positions_per_room": 8, "room_pool_seed": 7,
                         "difficulty": "hard"}, scene_seed(1000, 59))
    assert max(c.window[1] for c in spec.annotations.cues) <= spec.duration_s
