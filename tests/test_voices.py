"""Voices and speakers in scenes (#18): the training presets draw every generator and several
speakers of each; the spec records them; the same seed gives the same bytes in another process."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor

import pytest

from chimein.scenes.render import render
from chimein.scenes.sampler import sample_scene
from chimein.scenes.show import speech_listing
from chimein.scenes.speech import describe, generator_of, speaker_id_of
from chimein.scenes.speech.generators import generator_available
from chimein.scenes.talkers import HELDOUT_SPEAKER_SEED, HELDOUT_VOICES, TRAINING_VOICES

REQUIRE = os.environ.get("CHIMEIN_REQUIRE_SPEECH") == "1"


def _need(generator: str) -> None:
    if not generator_available(generator):
        if REQUIRE:
            pytest.fail(f"speech generator {generator} is missing (CHIMEIN_REQUIRE_SPEECH=1)")
        pytest.skip(f"speech generator {generator} is not installed")


@pytest.mark.parametrize("difficulty", ["easy", "default", "hard"])
def test_training_presets_draw_every_generator_and_several_speakers(difficulty: str) -> None:
    for g in ("piper", "flite"):
        _need(g)
    speakers: dict[str, set[str]] = defaultdict(set)
    for seed in range(16):
        spec = sample_scene({"family": "distractors", "difficulty": difficulty}, seed=seed)
        for s in spec.sources:
            if s.kind == "speech":
                speakers[generator_of(s.audio)].add(speaker_id_of(s.audio))
                assert s.audio["speaker"]["id"].startswith(f"{s.audio['generator']}/{s.audio['voice']}/0.")
                assert s.audio["voice"] in TRAINING_VOICES[s.audio["generator"]]
    assert set(speakers) == {"espeak-ng", "piper", "flite"}, dict(speakers)
    assert all(len(v) >= 2 for v in speakers.values()), dict(speakers)


def test_held_out_voices_and_speakers_are_disjoint_from_training() -> None:
    for g, voices in HELDOUT_VOICES.items():
        assert not set(voices) & set(TRAINING_VOICES[g])
    _need("flite")
    spec = sample_scene({"family": "addressed", "speech_generators": ["flite"],
                         "speech_voices": {"flite": ["awb"]}, "speaker_pool_seed": HELDOUT_SPEAKER_SEED}, seed=0)
    ids = {speaker_id_of(s.audio) for s in spec.sources if s.kind == "speech"}
    assert ids and all(i.startswith(f"flite/awb/{HELDOUT_SPEAKER_SEED}.") for i in ids)


def test_show_lists_generator_and_speaker_of_every_speech_source() -> None:
    spec = sample_scene({"family": "distractors", "speech_generators": ["espeak-ng"]}, seed=4)
    lines = speech_listing(spec)
    speech = [s for s in spec.sources if s.kind == "speech"]
    assert len(lines) == len(speech) >= 1
    for line, s in zip(lines, speech, strict=True):
        assert describe(s.audio) in line and "espeak-ng" in line and "speaker espeak-ng/" in line


def _no_speech_cache() -> None:
    os.environ["CHIMEIN_SPEECH_CACHE"] = "0"


def _render_digest(args: tuple[str, int]) -> str:
    generator, seed = args
    spec = sample_scene({"family": "pauses", "speech_generators": [generator], "difficulty": "easy"}, seed=seed)
    audio = render(spec).audio
    return hashlib.sha256(spec.to_json().encode() + audio.tobytes()).hexdigest()


@pytest.mark.parametrize("generator", ["espeak-ng", "piper", "flite"])
def test_same_seed_same_scene_bytes_in_another_process(generator: str) -> None:
    _need(generator)
    here = _render_digest((generator, 3))
    # the other process synthesises afresh (no speech cache), this one may read the cache
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), initializer=_no_speech_cache) as ex:
        there = ex.submit(_render_digest, (generator, 3)).result(timeout=300)
    assert here == there
