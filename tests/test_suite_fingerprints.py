"""The built-in suites' fingerprints are a promise: pinned here, the same with a sound theme installed.

``fingerprint`` hashes the definition and every scene's spec JSON, which depend only on the
seeds and chimein's code, so it is pinned for both built-in suites and computed without
rendering (:func:`~chimein.eval.suites.spec_fingerprint`). The audio fingerprint (the FLAC
checksums) depends on the CPU's vector paths in numpy and on the libFLAC version; mini's is
checked where it was measured (numpy dispatching its x86-64-v3 loops, libFLAC 1.4.3).

A new fingerprint here means the scenes changed: if that is intended, bump the suite's
``revision`` and update the pinned value and the README's leaderboard line together.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from chimein.eval.suites import (
    SUITES,
    materialize,
    same_audio,
    same_scenes,
    spec_fingerprint,
)

#: ``fingerprint`` (scene specs) of each built-in suite.
PINNED = {
    "chimein-bench-v0-mini": "1dc5a6422989f92382ea19a496e187f3c7227f4880cfb7b9303aa0b53c3c00fb",
    "chimein-bench-v0": "ef5e462ba6262bc8e5bc9b8c8bc2e0b4fbd24c7de492024d3c53dd7d6ca2fd42",
    "chimein-bench-v1-mini": "3f4ed1e856ac8b22aceebd81cc55d7af565604ba31eb68ae152649168aac1133",
    "chimein-bench-v1": "3eb413ebaa9f4e893b5e68239213cb814657c97055f61a16fe90aef92abd09d8",
}
#: ``audio_fingerprint`` of chimein-bench-v0-mini (x86-64-v3 numpy loops, libFLAC 1.4.3); it is
#: also the single fingerprint chimein recorded before the spec/audio split.
MINI_AUDIO = "ae906723afc29e621657c3c46e4616d8bb7cabdd7ffae63c684a6d5103232200"
#: Stems of the recordings chimein knows in a sound-theme folder (sound-theme-freedesktop's).
THEME_STEMS = ("alarm-clock-elapsed", "phone-incoming-call", "bell", "complete", "message-new-instant")


@pytest.fixture
def theme_installed(tmp_path: Path) -> Iterator[Path]:
    """A machine with the freedesktop sound theme: a folder of test recordings of every stem
    chimein knows stands in for ``/usr/share/sounds/freedesktop/stereo``, and its ``fd_*``
    classes are registered in this process (as the importing chimein did before recorded
    sounds became opt-in, and as a scenes config naming the folder does)."""
    import soundfile as sf

    import chimein.scenes.events as events

    sr = 22050
    t = np.arange(int(0.5 * sr)) / sr
    for k, stem in enumerate(THEME_STEMS):
        y = 0.3 * np.sin(2 * np.pi * (440.0 + 220.0 * k) * t) * np.exp(-t / 0.15)
        sf.write(str(tmp_path / f"{stem}.oga"), y, sr, format="OGG", subtype="VORBIS")
    # chimein no longer looks at FREEDESKTOP_DIR by itself: what an installed theme could do is
    # what registering its classes does (the old import-time behaviour), so register them
    before = set(events.EVENT_CLASSES)
    added = events.register_recorded_classes(tmp_path)
    assert len(added) == len(THEME_STEMS) and events.recorded_classes_available()
    yield tmp_path
    for name in set(events.EVENT_CLASSES) - before:
        del events.EVENT_CLASSES[name]


@pytest.mark.parametrize("name", sorted(PINNED))
def test_builtin_suite_fingerprint_is_pinned(name: str) -> None:
    assert spec_fingerprint(name) == PINNED[name]


@pytest.mark.parametrize("name", sorted(set(PINNED) - {"chimein-bench-v1"}))  # v1: its mini stands in (a minute each)
def test_fingerprint_is_the_same_with_a_sound_theme_installed(name: str, theme_installed: Path) -> None:
    assert spec_fingerprint(name) == PINNED[name]


def test_materialised_mini_records_both_fingerprints(tmp_path: Path, theme_installed: Path) -> None:
    m = materialize("chimein-bench-v0-mini", cache_dir=tmp_path, workers=1, progress=False,
                    rir_cache_dir=str(tmp_path / "rir"))
    # the specs on disk are the ones spec_fingerprint samples
    assert m.fingerprint == PINNED["chimein-bench-v0-mini"]
    info = json.loads((m.root / "suite.json").read_text())
    assert (info["fingerprint"], info["audio_fingerprint"]) == (m.fingerprint, m.audio_fingerprint)
    ident = m.identity
    assert (ident["fingerprint"], ident["audio_fingerprint"]) == (m.fingerprint, m.audio_fingerprint)
    assert len(m.audio_fingerprint) == 64 and m.audio_fingerprint != m.fingerprint
    # a cache written before the split (suite.json with the audio hash as its one fingerprint)
    # is upgraded in place, nothing rendered again
    (m.root / "suite.json").write_text(json.dumps({**info, "fingerprint": m.audio_fingerprint,
                                                   "audio_fingerprint": None}))
    again = materialize("chimein-bench-v0-mini", cache_dir=tmp_path, workers=1, progress=False)
    assert (again.fingerprint, again.audio_fingerprint) == (m.fingerprint, m.audio_fingerprint)
    assert json.loads((m.root / "suite.json").read_text())["fingerprint"] == m.fingerprint
    flac = next((m.root / "clean" / "addressed" / "audio").glob("*.flac")).read_bytes()
    from numpy._core._multiarray_umath import __cpu_features__

    if platform.machine() != "x86_64" or not __cpu_features__.get("X86_V3") \
            or b"reference libFLAC 1.4.3" not in flac[:256]:
        pytest.skip("mini's audio fingerprint is pinned for numpy's x86-64-v3 loops and libFLAC 1.4.3 only")
    assert m.audio_fingerprint == MINI_AUDIO


def test_pairing_rules() -> None:
    new = {"name": "s", "revision": 1, "definition_hash": "d", "fingerprint": "S", "audio_fingerprint": "A"}
    other_machine = {**new, "audio_fingerprint": "B"}
    legacy = {"name": "s", "revision": 1, "definition_hash": "d", "fingerprint": "A"}  # audio hash only
    # same scenes, other audio: comparable (compare notes it), not the same audio (no resume)
    assert same_scenes(new, other_machine) and not same_audio(new, other_machine)
    assert not same_scenes(new, {**new, "fingerprint": "T"})
    # results written before the split pair through their audio hash
    assert same_scenes(legacy, new) and same_audio(legacy, new) and same_scenes(legacy, dict(legacy))
    assert not same_scenes(legacy, other_machine)


def test_compare_pairs_the_same_scenes_and_notes_other_audio() -> None:
    from chimein.errors import SpecError
    from chimein.eval.report import check_same_scenes

    new = {"name": "s", "revision": 1, "definition_hash": "d", "fingerprint": "S" * 64, "audio_fingerprint": "A" * 64}
    assert check_same_scenes([(Path("a"), {"suite": new}), (Path("b"), {"suite": dict(new)})]) is None
    note = check_same_scenes([(Path("a"), {"suite": new}), (Path("b"), {"suite": {**new, "audio_fingerprint": "B" * 64}})])
    assert note is not None and "AAAAAAAAAAAA" in note and "BBBBBBBBBBBB" in note
    with pytest.raises(SpecError, match="different suites"):
        check_same_scenes([(Path("a"), {"suite": new}), (Path("b"), {"suite": {**new, "fingerprint": "T" * 64}})])


def test_builtin_suites_are_the_pinned_ones() -> None:
    assert set(SUITES) == set(PINNED)
