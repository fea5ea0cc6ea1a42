"""Tests for the speech generators (espeak-ng, piper, flite), word alignment and the speech cache.

piper needs the ``piper`` extra and flite the system ``flite`` program; without them their
tests are skipped, unless ``CHIMEIN_REQUIRE_SPEECH=1`` (set by ``make test``) makes that a
failure. Alignment figures are printed (``pytest -s`` shows them).
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from chimein.errors import ConfigError, SpecError
from chimein.scenes.spec import Word
from chimein.scenes.speech import align, espeak
from chimein.scenes.speech.base import Speech
from chimein.scenes.speech.cache import SpeechCache
from chimein.scenes.speech.generators import (
    GENERATORS,
    generate,
    generate_timed,
    generator_available,
    generator_voices,
    timing_method,
)

TEXT = "hey chime, what's the weather in the garden at 6:30? I think we should leave now."
OTHER = "please add milk, eggs and bread to my shopping list"
SENTENCES = (
    "hey chime, what's the weather like tomorrow morning",
    "set a timer for ten minutes and remind me to check the oven",
    "I think we should leave at six thirty, before the traffic gets bad",
    "could you turn the living room lights down a little",
    "no, I said the blue one, not the red one",
    "okay so um the meeting got moved to Thursday afternoon",
)
ENGINES = (("piper", "joe"), ("flite", "slt"), ("flite", "rms"), ("flite", "awb"),
           ("flite", "kal16"))


def _need(generator: str) -> None:
    """Skip without ``generator``, or fail when ``CHIMEIN_REQUIRE_SPEECH=1``."""
    if generator_available(generator):
        return
    msg = (f"speech generator {generator!r} is not installed (piper: pip install "
           "'chimein[piper]'; flite: apt-get install flite)")
    if os.environ.get("CHIMEIN_REQUIRE_SPEECH") == "1":
        pytest.fail(msg + "; CHIMEIN_REQUIRE_SPEECH=1 requires it")
    pytest.skip(msg)


def _digest(s: Speech) -> str:
    h = hashlib.sha256(s.audio.tobytes())
    h.update(repr((s.sample_rate, s.words)).encode())
    return h.hexdigest()


def _digests_of(jobs: list[tuple[str, str, str]]) -> list[str]:
    """Run in a spawned worker: a fresh interpreter with its own helpers and no cache."""
    return [_digest(generate(g, text, v, cache=False)) for g, text, v in jobs]


def _boundary_errors(got: tuple[Word, ...], want: tuple[Word, ...]) -> np.ndarray:
    assert [w.text for w in got] == [w.text for w in want]
    return np.abs(np.array([[a.start_s - b.start_s, a.end_s - b.end_s]
                            for a, b in zip(got, want, strict=True)])).ravel()


def _check_words(sp: Speech, text: str) -> None:
    assert [w.text for w in sp.words] == align.words_of(text)
    starts = np.array([w.start_s for w in sp.words])
    ends = np.array([w.end_s for w in sp.words])
    # the last word ends where speech ends (at the engine's rate: within a sample after resampling)
    assert starts[0] == 0.0 and abs(ends[-1] - sp.duration_s) <= 1.0 / sp.sample_rate
    assert (ends >= starts).all() and (np.diff(starts) > 0).all()
    assert (ends[:-1] <= starts[1:] + 1e-12).all()
    assert ((ends - starts) > 0.02).all(), [(w.text, w.end_s - w.start_s) for w in sp.words]


# ------------------------------------------------------------------------------ interface
def test_interface_lists_generators_voices_and_timing() -> None:
    assert GENERATORS == ("espeak-ng", "piper", "flite")
    assert generator_voices("espeak-ng") == espeak.VOICES
    assert generator_voices("piper") == ("joe",)
    assert generator_voices("flite") == ("slt", "rms", "awb", "kal16")
    assert [timing_method(g) for g in GENERATORS] == [
        "engine word events", "model phoneme alignment", "segment durations"]
    assert generator_available("espeak-ng")


@pytest.mark.parametrize(("args", "kwargs", "field"), [
    (("festival", TEXT, "x"), {}, "generator"),
    (("espeak-ng", "", "en-us"), {}, "text"),
    (("espeak-ng", " ... ", "en-us"), {}, "text"),
    (("espeak-ng", "x" * 2001, "en-us"), {}, "text"),
    (("espeak-ng", TEXT, "klingon"), {}, "voice"),
    (("espeak-ng", TEXT, "en-us", 100), {}, "sample_rate"),
    (("espeak-ng", TEXT, "en-us"), {"rate": 20}, "rate"),
    (("piper", TEXT, "amy"), {}, "voice"),
    (("piper", TEXT, "joe"), {"rate": 150}, "rate"),
    (("flite", TEXT, "kal"), {}, "voice"),
    (("flite", TEXT, "slt"), {"pitch": 60}, "pitch"),
    (("espeak-ng", TEXT, "en-us"), {"cache": "yes"}, "cache"),
])
def test_bad_arguments_name_the_field(args: tuple, kwargs: dict, field: str) -> None:
    with pytest.raises(SpecError, match=f"field '{field}'"):
        generate(*args, **kwargs)


def test_espeak_generator_is_espeak_synthesize_bit_for_bit(tmp_path) -> None:
    want = espeak.synthesize(TEXT, voice="en-us+f3", rate=160, pitch=40, sample_rate=22050)
    cache = SpeechCache(tmp_path)
    for c in (False, cache, SpeechCache(tmp_path)):  # computed, stored, read back from disk
        sp, method = generate_timed("espeak-ng", TEXT, "en-us+f3", 22050, rate=160, pitch=40,
                                    cache=c)
        assert method == "engine word events"
        assert sp.audio.tobytes() == want.audio.tobytes() and sp.words == want.words
    assert generate("espeak-ng", TEXT, "en-us", cache=False).words == espeak.synthesize(TEXT).words


# ------------------------------------------------------------------------------ piper / flite
@pytest.mark.parametrize(("generator", "voice"), ENGINES)
def test_output_format_and_word_timings(generator: str, voice: str) -> None:
    _need(generator)
    sp, method = generate_timed(generator, TEXT, voice, cache=False)
    assert method == timing_method(generator)
    assert sp.sample_rate == 16000 and sp.audio.dtype == np.float32 and sp.audio.ndim == 1
    assert not sp.audio.flags.writeable and np.isfinite(sp.audio).all()
    assert 0.05 < float(np.abs(sp.audio).max()) <= 1.0
    assert 2.5 < sp.duration_s < 7.0
    _check_words(sp, TEXT)
    # trimmed like espeak-ng: the first and last 10 ms carry speech energy
    n = sp.sample_rate // 100
    peak = max(float(np.sqrt(np.mean(sp.audio[i:i + n] ** 2)))
               for i in range(0, sp.audio.shape[0] - n, n))
    for edge in (sp.audio[:n], sp.audio[-n:]):
        assert float(np.sqrt(np.mean(edge ** 2))) > peak * 10 ** (espeak.SILENCE_DB / 20) / 4
    # another output rate: same words at the same times, audio resampled
    sp22 = generate(generator, TEXT, voice, 22050, cache=False)
    assert sp22.words == sp.words and abs(sp22.duration_s - sp.duration_s) < 1e-3


def test_same_bytes_in_any_order_and_in_a_spawned_process() -> None:
    have = [g for g in ("piper", "flite") if generator_available(g)]
    if len(have) < 2 and (os.environ.get("CHIMEIN_REQUIRE_SPEECH") == "1" or not have):
        for g in ("piper", "flite"):
            _need(g)  # fails when required, skips when neither is installed
    jobs = [(g, text, v) for g, v in (("piper", "joe"), ("flite", "slt")) if g in have
            for text in (TEXT, OTHER)]
    first = _digests_of(jobs)
    again = _digests_of(jobs[::-1])[::-1]  # other syntheses ran in between, in another order
    assert first == again
    assert len(set(first)) == len(first)
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        assert pool.submit(_digests_of, jobs).result() == first


def test_piper_helper_is_restarted_and_forked_children_start_their_own() -> None:
    _need("piper")
    from chimein.scenes.speech import piper

    want = _digest(generate("piper", OTHER, "joe", cache=False))
    helper = piper._HELPERS["joe"]
    proc = helper._proc
    assert proc is not None
    starts = helper.starts
    proc.proc.kill()
    proc.proc.wait()
    assert _digest(generate("piper", OTHER, "joe", cache=False)) == want
    assert helper.starts == starts + 1
    if sys.platform.startswith("linux"):
        with ProcessPoolExecutor(1, mp_context=mp.get_context("fork")) as pool:
            assert pool.submit(_digests_of, [("piper", OTHER, "joe")]).result() == [want]
        assert helper._proc is not None and helper._proc.pid_owner == os.getpid()


@pytest.mark.parametrize(("generator", "voice"), ENGINES)
def test_own_timings_agree_with_forced_alignment(generator: str, voice: str) -> None:
    _need(generator)
    errs = []
    for text in SENTENCES:
        sp, method = generate_timed(generator, text, voice, cache=False)
        assert method == timing_method(generator)
        errs.append(_boundary_errors(align.forced_align(sp.audio, sp.sample_rate, text),
                                     sp.words))
    e = np.concatenate(errs)
    med, p90 = np.median(e), np.percentile(e, 90)
    print(f"\n{generator}/{voice}: own timings vs forced alignment: median {med * 1e3:.0f} ms, "
          f"90th percentile {p90 * 1e3:.0f} ms over {e.size} boundaries")
    assert med < 0.060 and p90 < 0.150  # measured 10-28 ms and 36-71 ms


def test_unmappable_timings_fall_back_to_forced_alignment(monkeypatch) -> None:
    _need("flite")
    from chimein.scenes.speech import flite

    monkeypatch.setattr(flite, "map_phones", lambda *a, **k: None)
    sp, method = generate_timed("flite", OTHER, "slt", cache=False)
    assert method == "forced alignment"
    _check_words(sp, OTHER)


# ------------------------------------------------------------------------------ missing engines
def test_missing_piper_extra_names_the_fix(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "piper", None)  # `import piper` fails, find_spec is None
    from chimein.scenes.speech import piper

    piper.version.cache_clear()
    try:
        assert not generator_available("piper")
        with pytest.raises(ConfigError, match=r"pip install 'chimein\[piper\]'"):
            generate("piper", TEXT, "joe", cache=False)
        with pytest.raises(ConfigError, match=r"pip install 'chimein\[piper\]'"):
            generate("piper", TEXT, "joe", cache=True)
    finally:
        piper.version.cache_clear()


def test_missing_flite_names_the_fix(monkeypatch) -> None:
    from chimein.scenes.speech import flite

    monkeypatch.setattr(flite.shutil, "which", lambda name: None)
    flite._listed_voices.cache_clear()
    flite.version.cache_clear()
    try:
        assert not generator_available("flite")
        with pytest.raises(ConfigError, match="apt-get install -y flite"):
            generate("flite", TEXT, "slt", cache=False)
    finally:
        flite._listed_voices.cache_clear()
        flite.version.cache_clear()


# ------------------------------------------------------------------------------ alignment
def test_dtw_path_is_optimal_and_monotonic() -> None:
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(0)
    for _ in range(50):
        n, m = (int(v) for v in rng.integers(1, 12, 2))
        a, b = rng.normal(size=(n, 3)), rng.normal(size=(m, 3))
        pa, pb = align.dtw_path(a, b)
        c = cdist(a, b)
        d = np.full((n + 1, m + 1), np.inf)
        d[0, 0] = 0.0
        for i in range(1, n + 1):
            for j in range(1, m + 1):
                d[i, j] = c[i - 1, j - 1] + min(d[i - 1, j - 1], d[i - 1, j], d[i, j - 1])
        steps = np.stack([np.diff(pa), np.diff(pb)], axis=1)
        assert (pa[0], pb[0], pa[-1], pb[-1]) == (0, 0, n - 1, m - 1)
        assert ((steps >= 0) & (steps <= 1)).all() and (steps.sum(axis=1) >= 1).all()
        assert abs(c[pa, pb].sum() - d[n, m]) < 1e-9


def test_map_phones_absorbs_context_and_rejects_mismatch() -> None:
    stream = [("dh", 0.0, 0.1), ("iy", 0.1, 0.2), ("ae", 0.2, 0.3), ("p", 0.3, 0.4),
              ("ax", 0.4, 0.5), ("l", 0.5, 0.6)]
    assert align.map_phones([["dh", "ax"], ["ae", "p", "ax", "l"]], stream) == [
        (0.0, 0.2), (0.2, 0.6)]
    assert align.map_phones([["k", "ae", "t"], ["d", "ao", "g"]], stream) is None
    # word breaks: a merged pair of words costs one edit, later words keep their phones
    toks = [["ih", "n", "|"], ["dh", "ax", "|"], ["g", "aa", "|"]]
    s2 = [("ih", 0, 1), ("n", 1, 2), ("dh", 2, 3), ("ax", 3, 4), ("|", 4, 4), ("g", 4, 5),
          ("aa", 5, 6), ("|", 6, 6)]
    assert align.map_phones(toks, s2, markers=("|",)) == [(0, 2), (2, 4), (4, 6)]


def test_forced_alignment_and_energy_estimate_accuracy() -> None:
    """Align espeak-ng en-us+f3 at 150 wpm (its own word events are the truth) using an
    en-gb+m3 200 wpm reference, and estimate from energy alone."""
    fa_err, ee_err = [], []
    for text in SENTENCES:
        target = espeak.synthesize(text, voice="en-us+f3", rate=150)
        ref = espeak.synthesize(text, voice="en-gb+m3", rate=200)
        fa = align.forced_align(target.audio, target.sample_rate, text, ref)
        ee = align.energy_estimate(target.audio, target.sample_rate, text)
        for words in (fa, ee):
            assert all(0 <= w.start_s <= w.end_s <= target.duration_s for w in words)
            assert all(a.end_s <= b.start_s for a, b in zip(words, words[1:], strict=False))
        fa_err.append(_boundary_errors(fa, target.words))
        ee_err.append(_boundary_errors(ee, target.words))
    fa_e, ee_e = np.concatenate(fa_err), np.concatenate(ee_err)
    print(f"\nforced alignment: median {np.median(fa_e) * 1e3:.1f} ms, 90th percentile "
          f"{np.percentile(fa_e, 90) * 1e3:.1f} ms; energy estimate: median "
          f"{np.median(ee_e) * 1e3:.1f} ms, 90th percentile {np.percentile(ee_e, 90) * 1e3:.1f} "
          f"ms ({fa_e.size} boundaries)")
    # measured: forced 6.9 / 35.5 ms, energy 33.7 / 202 ms
    assert np.median(fa_e) < 0.025 and np.percentile(fa_e, 90) < 0.090
    assert np.median(ee_e) < 0.090 and np.percentile(ee_e, 90) < 0.400
    # the energy estimate is worse than alignment, and both beat an even spread of the words
    even = []
    for text, errs in zip(SENTENCES, fa_err, strict=True):
        target = espeak.synthesize(text, voice="en-us+f3", rate=150)
        k = len(target.words)
        cuts = np.linspace(0.0, target.duration_s, k + 1)
        spread = tuple(Word(w.text, float(cuts[i]), float(cuts[i + 1]))
                       for i, w in enumerate(target.words))
        even.append(_boundary_errors(spread, target.words))
        assert errs.size == 2 * k
    assert np.median(ee_e) < np.median(np.concatenate(even)) and np.median(fa_e) < np.median(ee_e)


def test_forced_align_rejects_a_reference_for_other_words() -> None:
    target = espeak.synthesize(OTHER)
    with pytest.raises(SpecError, match="field 'reference'"):
        align.forced_align(target.audio, 16000, OTHER, espeak.synthesize(TEXT))
    with pytest.raises(SpecError, match="field 'audio'"):
        align.energy_estimate(np.zeros(1600, dtype=np.float32), 16000, OTHER)


# ------------------------------------------------------------------------------ cache
def test_cache_hit_is_bit_identical_and_corruption_is_regenerated(tmp_path, monkeypatch) -> None:
    generator, voice = ("flite", "slt") if generator_available("flite") else ("espeak-ng", "en-us")
    computed = generate(generator, OTHER, voice, cache=False)
    cold = SpeechCache(tmp_path)
    miss = generate(generator, OTHER, voice, cache=cold)
    assert cold.stats.computed == 1 and cold.stats.hits == 0
    assert generate(generator, OTHER, voice, cache=cold) is miss and cold.stats.memory_hits == 1
    files = sorted((tmp_path / "speech").rglob("*.speech"))
    assert len(files) == 1
    for c in (SpeechCache(tmp_path), SpeechCache(tmp_path, memory_bytes=0)):
        hit = generate(generator, OTHER, voice, cache=c)
        assert c.stats.disk_hits == 1 and c.stats.computed == 0
        for a in (miss, hit):
            assert a.audio.tobytes() == computed.audio.tobytes() and a.words == computed.words
            assert not a.audio.flags.writeable
    good = files[0].read_bytes()
    for bad in (good[:-100], good[:40], good[:-1] + bytes([good[-1] ^ 1]),
                good[:200] + bytes([good[200] ^ 1]) + good[201:], b""):
        files[0].write_bytes(bad)
        c = SpeechCache(tmp_path)
        again = generate(generator, OTHER, voice, cache=c)
        assert c.stats.corrupt == 1 and c.stats.computed == 1 and c.stats.disk_hits == 0
        assert again.audio.tobytes() == computed.audio.tobytes() and again.words == computed.words
        assert files[0].read_bytes() == good  # replaced by a verified entry
    # another key's file under this key's name is not trusted either
    other = generate(generator, TEXT, voice, cache=SpeechCache(tmp_path))
    other_file = next(p for p in (tmp_path / "speech").rglob("*.speech") if p != files[0])
    files[0].write_bytes(other_file.read_bytes())
    c = SpeechCache(tmp_path)
    assert generate(generator, OTHER, voice, cache=c).words == computed.words != other.words
    assert c.stats.corrupt == 1
    # CHIMEIN_SPEECH_CACHE=0: no disk layer
    monkeypatch.setenv("CHIMEIN_SPEECH_CACHE", "0")
    off = SpeechCache(tmp_path / "off")
    generate(generator, OTHER, voice, cache=off)
    assert off.directory is None and not (tmp_path / "off").exists()


def test_cache_key_separates_what_changes_the_output(tmp_path) -> None:
    c = SpeechCache(tmp_path)
    a = generate("espeak-ng", OTHER, "en-us", cache=c)
    for kwargs in ({"rate": 200}, {"pitch": 30}, {"sample_rate": 22050}):
        sp = generate("espeak-ng", OTHER, "en-us", cache=c, **kwargs)
        assert sp is not a and sp.audio.tobytes() != a.audio.tobytes()
    assert generate("espeak-ng", OTHER, "en-us+f3", cache=c) is not a
    assert generate("espeak-ng", "  " + OTHER.replace(" ", "\n "), "en-us", cache=c) is a
    assert c.stats.computed == 5
