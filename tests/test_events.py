"""Tests for chimein.scenes.events (procedural sound events) and chimein.scenes.noise."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from chimein.errors import ConfigError, SpecError
from chimein.scenes import events as ev
from chimein.scenes.events import (
    DOMAINS,
    EVENT_CLASSES,
    MAX_CREST,
    active_mask,
    active_rms,
    get_event_class,
    recorded_classes_available,
    register_recorded_classes,
    synthesize_event,
)
from chimein.scenes.noise import NOISE_KINDS, make_noise, snr_scale

REQUIRED = (
    "smoke_alarm",
    "co_alarm",
    "kettle_whistle",
    "microwave_done",
    "oven_done",
    "washer_done",
    "dryer_done",
    "toaster_pop",
    "phone_ring",
    "doorbell",
    "baby_cry",
    "glass_break",
    "object_fall",
    "cough_choke",
    "scream",
    "car_horn",
    "siren",
    "knock",
    "error_beep",
    "heart_rate_warning",
    "broken_instrument",
    "thunder",
    "explosion",
    "keyboard_typing",
    "frying",
    "fridge_hum",
    "music",
    "laughter",
    "rain",
    "traffic",
    "microwave_running",
    "clock_tick",
    "footsteps",
    "water_running",
    "light_cough",
    "birdsong",
    "printer",
    "blender",
    "turn_signal",
)
SAFETY = ("smoke_alarm", "co_alarm", "glass_break", "cough_choke", "scream", "siren", "explosion")
SYNTH_CLASSES = sorted(n for n in EVENT_CLASSES if not n.startswith("fd_"))


# ------------------------------------------------------------------------------------ registry
def test_registry_covers_psb_domains_and_decisions() -> None:
    assert len(EVENT_CLASSES) >= 30
    missing = [n for n in REQUIRED if n not in EVENT_CLASSES]
    assert not missing
    assert {ec.domain for ec in EVENT_CLASSES.values()} == set(DOMAINS)
    both = [
        d
        for d in DOMAINS
        if {ec.decision for ec in EVENT_CLASSES.values() if ec.domain == d}
        == {"INTERVENE", "IGNORE"}
    ]
    assert len(both) >= 4
    for name in SAFETY:
        assert EVENT_CLASSES[name].safety_critical and EVENT_CLASSES[name].decision == "INTERVENE"
    for name in (
        "keyboard_typing",
        "fridge_hum",
        "music",
        "laughter",
        "microwave_running",
        "turn_signal",
    ):
        assert EVENT_CLASSES[name].decision == "IGNORE"
    assert EVENT_CLASSES["broken_instrument"].decision == "INTERVENE"
    assert EVENT_CLASSES["broken_instrument"].domain == "Music"


@pytest.mark.parametrize("name", sorted(EVENT_CLASSES))
def test_class_metadata_is_consistent(name: str) -> None:
    ec = EVENT_CLASSES[name]
    assert ec.name == name and ec.domain in DOMAINS and ec.subcategory and ec.description
    assert ec.decision in ("INTERVENE", "IGNORE")
    assert not (ec.safety_critical and ec.decision == "IGNORE")
    lo, hi = ec.default_duration_s
    assert 0.3 <= lo < hi <= 10.0
    assert 0.0 < ec.onset_delay_s <= lo
    if ec.lookalike_of is not None:
        assert ec.decision == "IGNORE"
        assert EVENT_CLASSES[ec.lookalike_of].decision == "INTERVENE"
    with pytest.raises(AttributeError):
        ec.name = "x"  # type: ignore[misc]


def test_duration_ranges_follow_kind() -> None:
    for name in ("smoke_alarm", "co_alarm", "phone_ring", "siren", "oven_done"):
        lo, hi = EVENT_CLASSES[name].default_duration_s
        assert lo >= 3.0 and hi <= 8.0
    for name in ("glass_break", "object_fall"):
        lo, hi = EVENT_CLASSES[name].default_duration_s
        assert lo >= 0.5 and hi <= 1.5
    assert EVENT_CLASSES["glass_break"].onset_delay_s < EVENT_CLASSES["baby_cry"].onset_delay_s


# ----------------------------------------------------------------------------------- synthesis
@pytest.mark.parametrize("name", SYNTH_CLASSES)
def test_every_class_synthesises_unit_active_rms(name: str) -> None:
    for sr, dur in ((16000, 0.6), (8000, 0.35)):
        x = synthesize_event({"cls": name, "seed": 11}, sr, dur)
        assert x.dtype == np.float32 and x.shape == (round(dur * sr),)
        assert np.isfinite(x).all()
        assert active_mask(x, sr).mean() > 0.01  # not silent
        assert active_rms(x, sr) == pytest.approx(1.0, abs=1e-4)
        assert np.abs(x).max() <= 1.2 * MAX_CREST
        again = synthesize_event({"cls": name, "seed": 11}, sr, dur)
        assert again.tobytes() == x.tobytes()
    other = synthesize_event({"cls": name, "seed": 12}, 16000, 0.6)
    first = synthesize_event({"cls": name, "seed": 11}, 16000, 0.6)
    assert not np.allclose(other, first, atol=1e-3)


def test_duration_precedence_and_seeded_draw() -> None:
    ec = EVENT_CLASSES["knock"]
    x = synthesize_event({"cls": "knock", "seed": 5})
    lo, hi = ec.default_duration_s
    assert lo * 16000 <= len(x) <= hi * 16000
    assert synthesize_event({"cls": "knock", "seed": 5}).tobytes() == x.tobytes()
    lens = {len(synthesize_event({"cls": "knock", "seed": s}, 8000)) for s in range(6)}
    assert len(lens) > 1
    assert len(synthesize_event({"cls": "knock", "seed": 5, "duration_s": 1.25}, 8000)) == 10000
    assert len(synthesize_event({"cls": "knock", "seed": 5, "duration_s": 1.25}, 8000, 0.5)) == 4000


def test_active_rms_ignores_silence() -> None:
    sr = 16000
    x = np.zeros(sr)
    x[:1600] = np.sin(np.arange(1600) * 0.3) * 2.0
    x[8000:8320] = 1e-6  # more than 40 dB below the tone: not active
    m = active_mask(x, sr)
    assert m[:1600].all() and not m[1600:].any()
    assert active_rms(x, sr) == pytest.approx(np.sqrt(2.0), rel=1e-2)
    assert active_rms(np.zeros(100), sr) == 0.0


def _synth_in_child(args: tuple[str, int]) -> bytes:
    from chimein.scenes.events import synthesize_event as se

    return se({"cls": args[0], "seed": args[1]}, 16000, 1.0).tobytes()


def test_bit_identical_across_processes() -> None:
    jobs = [("baby_cry", 3), ("glass_break", 4)]
    with mp.get_context("spawn").Pool(1) as pool:
        child = pool.map(_synth_in_child, jobs)
    assert child == [_synth_in_child(j) for j in jobs]


# --------------------------------------------------------------------------- alarm patterns
def _frame_db(x: np.ndarray, sr: int, t: float, w: float = 0.05) -> float:
    i = int(t * sr)
    seg = x[i - int(w * sr / 2) : i + int(w * sr / 2)].astype(np.float64)
    return 10 * np.log10(np.mean(seg**2) + 1e-20)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_smoke_alarm_is_3khz_t3(seed: int) -> None:
    sr = 16000
    x = synthesize_event({"cls": "smoke_alarm", "seed": seed}, sr, 4.6)
    spec = np.abs(np.fft.rfft(x))
    f_peak = np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spec)]
    assert 2900 <= f_peak <= 3300
    on = [0.25, 1.25, 2.25, 4.25]  # three beeps, 1.5 s pause, next cycle starts at 4.0 s
    off = [0.75, 1.75, 2.75, 3.25, 3.75]
    lo_on = min(_frame_db(x, sr, t) for t in on)
    hi_off = max(_frame_db(x, sr, t) for t in off)
    assert lo_on > -3.0 and hi_off < lo_on - 40.0


def test_co_alarm_is_t4() -> None:
    sr = 16000
    x = synthesize_event({"cls": "co_alarm", "seed": 3}, sr, 6.5)
    hop = int(0.01 * sr)
    e = np.array(
        [np.mean(x[i : i + hop].astype(np.float64) ** 2) for i in range(0, len(x) - hop, hop)]
    )
    act = e > 0.1 * e.max()
    onsets = np.flatnonzero(act[1:] & ~act[:-1]) + 1
    if act[0]:
        onsets = np.r_[0, onsets]
    t_on = onsets * 0.01
    assert len(t_on[t_on < 1.0]) == 4
    assert not act[int(1.0 / 0.01) : int(5.5 / 0.01)].any()  # the 5 s pause
    assert len(t_on[(t_on > 5.5) & (t_on < 6.5)]) >= 2  # the next group
    f_peak = np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(np.abs(np.fft.rfft(x)))]
    assert 3250 <= f_peak <= 3550


def test_voice_events_have_voice_pitch() -> None:
    """The cry's and scream's energy sits in a high-pitched voiced band, unlike a thud."""
    sr = 16000
    for name, band in (("baby_cry", (300, 5000)), ("scream", (300, 6000))):
        x = synthesize_event({"cls": name, "seed": 1}, sr, 2.0).astype(np.float64)
        f, p = signal.welch(x, sr, nperseg=1024)
        share = p[(f >= band[0]) & (f <= band[1])].sum() / p.sum()
        assert share > 0.8, name
    x = synthesize_event({"cls": "object_fall", "seed": 1}, sr, 1.0).astype(np.float64)
    f, p = signal.welch(x, sr, nperseg=1024)
    assert p[f < 500].sum() / p.sum() > 0.5


# ------------------------------------------------------------------------------------- errors
def test_unknown_class_suggests_close_match() -> None:
    with pytest.raises(SpecError, match="smoke_alarm"):
        get_event_class("smoke_alrm")
    with pytest.raises(SpecError, match="'cls'"):
        synthesize_event({"cls": "no_such_sound", "seed": 0})


@pytest.mark.parametrize(
    ("audio", "dur", "field"),
    [
        ({"cls": "knock", "seed": 0}, -1.0, "duration_s"),
        ({"cls": "knock", "seed": 0}, float("nan"), "duration_s"),
        ({"cls": "knock", "seed": 0}, 0.0, "duration_s"),
        ({"cls": "knock", "seed": 0, "duration_s": "3"}, None, "audio.duration_s"),
        ({"cls": "knock", "seed": -3}, 1.0, "seed"),
        ({"cls": "knock", "seed": 1.5}, 1.0, "seed"),
        ({"seed": 1}, 1.0, "cls"),
    ],
)
def test_bad_input_names_the_field(audio: dict, dur: float | None, field: str) -> None:
    with pytest.raises(SpecError, match=f"'{field}'"):
        synthesize_event(audio, 16000, dur)


def test_bad_sample_rate_and_audio_type() -> None:
    with pytest.raises(SpecError, match="sample_rate"):
        synthesize_event({"cls": "knock", "seed": 0}, 100, 1.0)
    with pytest.raises(SpecError, match="audio"):
        synthesize_event("knock", 16000, 1.0)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- recorded sounds
@pytest.fixture
def fake_freedesktop(tmp_path: Path) -> Iterator[Path]:
    """A folder that looks like an installed sound-theme-freedesktop (an Ogg and a WAV file);
    the recorded classes registered from it are removed afterwards."""
    import soundfile as sf

    sr = 22050
    t = np.arange(int(0.4 * sr)) / sr
    theme = tmp_path / "freedesktop"
    theme.mkdir()
    for stem, f, fmt in (("bell", 880.0, "oga"), ("complete", 1320.0, "wav")):
        y = 0.3 * np.sin(2 * np.pi * f * t) * np.exp(-t / 0.1)
        if fmt == "oga":
            sf.write(str(theme / f"{stem}.oga"), y, sr, format="OGG", subtype="VORBIS")
        else:
            sf.write(str(theme / f"{stem}.wav"), y, sr)
    before = set(EVENT_CLASSES)
    yield theme
    for name in set(EVENT_CLASSES) - before:
        del EVENT_CLASSES[name]


def test_recorded_classes_register_from_a_directory(fake_freedesktop: Path) -> None:
    added = register_recorded_classes(fake_freedesktop)
    assert sorted(added) == ["fd_bell", "fd_complete"]
    assert register_recorded_classes(fake_freedesktop) == added  # idempotent
    assert recorded_classes_available()
    assert get_event_class("fd_bell").decision == "INTERVENE"
    assert get_event_class("fd_complete").lookalike_of in EVENT_CLASSES
    x = synthesize_event({"cls": "fd_bell", "seed": 2}, 16000, 2.0)
    assert x.shape == (32000,) and active_rms(x, 16000) == pytest.approx(1.0, abs=1e-4)
    assert synthesize_event({"cls": "fd_bell", "seed": 2}, 16000, 2.0).tobytes() == x.tobytes()
    assert not np.allclose(
        synthesize_event({"cls": "fd_bell", "seed": 3}, 16000, 2.0), x, atol=1e-3
    )
    spec = np.abs(np.fft.rfft(x))
    assert 850 <= np.fft.rfftfreq(len(x), 1 / 16000)[np.argmax(spec)] <= 910  # +-3 % speed


def test_import_registers_no_recorded_class() -> None:
    """Whatever is installed on this machine, importing the package registers built-in classes only."""
    import subprocess
    import sys

    code = (
        "from chimein.scenes.events import BUILTIN_CLASSES, EVENT_CLASSES, "
        "recorded_classes_available as r; "
        "assert not r() and list(EVENT_CLASSES) == list(BUILTIN_CLASSES), list(EVENT_CLASSES)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert register_recorded_classes(ev.FREEDESKTOP_DIR.parent / "no-such-theme") == []


def _scenes(config: dict) -> list[str]:
    from chimein.scenes.sampler import FAMILIES, sample_scene
    from chimein.scenes.search_space import SearchSpace

    out = [
        sample_scene({**config, "family": fam, "difficulty": diff}, seed).to_json()
        for fam in FAMILIES
        for diff in ("default", "hard")
        for seed in range(3)
    ]
    space = SearchSpace.from_mapping(
        {
            "params": {"distractor_kind": {"type": "categorical", "choices": ["lookalike"]}},
            "base": {"family": "proactive", **config},
        }
    )
    out += [
        space.build_scene({"distractor_kind": "lookalike"}, seed).to_json() for seed in range(4)
    ]
    return out


def test_installed_theme_does_not_change_default_scenes(fake_freedesktop: Path) -> None:
    """The default sampler (and the attack's look-alike injection) draws the same scenes, byte
    for byte, whether or not recorded classes are registered in the process."""
    without = _scenes({})
    register_recorded_classes(fake_freedesktop)  # what an installed theme used to do at import
    assert recorded_classes_available()
    assert _scenes({}) == without
    assert not any('"fd_' in s for s in without)


def test_recorded_sounds_dir_brings_recorded_classes_in(fake_freedesktop: Path) -> None:
    from chimein.scenes.events import event_pool
    from chimein.scenes.sampler import sample_scene
    from chimein.scenes.search_space import SearchSpace

    assert not any(n.startswith("fd_") for n in event_pool())
    assert {"fd_bell", "fd_complete"} <= set(event_pool(str(fake_freedesktop)))
    cfg = {
        "family": "proactive",
        "recorded_sounds_dir": str(fake_freedesktop),
        "event_classes": ["fd_bell", "smoke_alarm", "fridge_hum"],
    }
    drawn = {
        s.audio["cls"]
        for seed in range(12)
        for s in sample_scene(cfg, seed).sources
        if s.kind == "event"
    }
    assert "fd_bell" in drawn
    assert _scenes({"recorded_sounds_dir": str(fake_freedesktop)}) != _scenes({})
    space = SearchSpace.from_mapping(
        {
            "params": {"distractor_kind": {"type": "categorical", "choices": ["lookalike"]}},
            "base": {
                "family": "proactive",
                "recorded_sounds_dir": str(fake_freedesktop),
                "event_classes": ["microwave_done", "fd_complete"],
            },
        }
    )
    spec = space.build_scene({"distractor_kind": "lookalike"}, 0)
    assert [s.audio["cls"] for s in spec.sources if s.id == "adv_ev0"] == ["fd_complete"]


def test_recorded_classes_need_the_config_key(fake_freedesktop: Path, tmp_path: Path) -> None:
    from chimein.scenes.sampler import SamplerConfig

    register_recorded_classes(fake_freedesktop)
    with pytest.raises(ConfigError, match="recorded_sounds_dir"):
        SamplerConfig.from_mapping({"event_classes": ["fd_bell"]})
    with pytest.raises(ConfigError, match="recorded_sounds_dir.*not a folder"):
        SamplerConfig.from_mapping({"recorded_sounds_dir": str(tmp_path / "missing")})
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no known recording"):
        SamplerConfig.from_mapping({"recorded_sounds_dir": str(tmp_path / "empty")})


def test_dataset_with_recorded_sounds_loads_in_a_fresh_process(fake_freedesktop: Path,
                                                                tmp_path: Path) -> None:
    """A dataset generated with ``recorded_sounds_dir`` loads in a process that never saw the
    config: opening it registers the classes its header names."""
    import subprocess
    import sys

    from chimein.scenes.dataset import generate_dataset

    cfg = {"family": "proactive", "difficulty": "easy", "recorded_sounds_dir": str(fake_freedesktop),
           "event_classes": ["fd_bell"]}
    out = tmp_path / "ds"
    generate_dataset(cfg, n=1, seed=0, out=out, workers=1, progress=False, cache_dir=str(tmp_path / "rir"))
    code = (f"from chimein.scenes.dataset import SceneDataset; ds = SceneDataset({str(out)!r}); "
            "print(sorted({s.audio['cls'] for s in ds.spec(0).sources if s.kind == 'event'}))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert "fd_bell" in r.stdout


# -------------------------------------------------------------------------------------- noise
def _slope_db_per_octave(x: np.ndarray, sr: int) -> float:
    f, p = signal.welch(x.astype(np.float64), sr, nperseg=4096)
    m = (f >= 100) & (f <= 4000)
    return float(np.polyfit(np.log2(f[m]), 10 * np.log10(p[m]), 1)[0])


@pytest.mark.parametrize(("kind", "slope"), [("white", 0.0), ("pink", -3.01), ("brown", -6.02)])
def test_noise_colour_slopes(kind: str, slope: float) -> None:
    x = make_noise(kind, 16000 * 8, 16000, np.random.default_rng(0))
    assert _slope_db_per_octave(x, 16000) == pytest.approx(slope, abs=0.4)


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_make_noise_unit_rms_and_deterministic(kind: str) -> None:
    x = make_noise(kind, 12000, 16000, np.random.default_rng(4))
    assert x.dtype == np.float32 and x.shape == (12000,) and np.isfinite(x).all()
    assert np.sqrt(np.mean(x.astype(np.float64) ** 2)) == pytest.approx(1.0, abs=1e-4)
    assert make_noise(kind, 12000, 16000, np.random.default_rng(4)).tobytes() == x.tobytes()
    assert not np.allclose(make_noise(kind, 12000, 16000, np.random.default_rng(5)), x)


def test_make_noise_rejects_bad_input() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(SpecError, match="kind"):
        make_noise("purple", 100, 16000, rng)
    with pytest.raises(SpecError, match="n_samples"):
        make_noise("pink", 0, 16000, rng)
    with pytest.raises(SpecError, match="sample_rate"):
        make_noise("pink", 100, 100, rng)


def test_snr_scale() -> None:
    noise = make_noise("white", 16000, 16000, np.random.default_rng(1))
    g = snr_scale(2.0, noise, 10.0)
    assert 10 * np.log10(2.0 / np.mean((g * noise.astype(np.float64)) ** 2)) == pytest.approx(
        10.0, abs=1e-3
    )
    with pytest.raises(SpecError):
        snr_scale(1.0, np.zeros(10, np.float32), 0.0)
