"""Device/channel models (chimein.scenes.device): drawing, validation, determinism, and that
each stage does to the signal what its parameters say."""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import random
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pytest
from scipy.signal import welch

from chimein.errors import AudioError, SpecError
from chimein.scenes.device import (
    DEVICE_MODELS,
    STAGES,
    apply_device,
    draw_device,
    validate_device,
)

SR = 16000

#: One device with every stage kind, so the determinism tests cover all of them.
ALL_STAGES: dict[str, Any] = {
    "model": "custom",
    "seed": 987654321,
    "stages": [
        {"kind": "mic_response", "hp_hz": 120.0, "hp_order": 2, "lp_hz": 6000.0, "lp_order": 2,
         "peak_hz": 3000.0, "peak_db": 6.0, "peak_q": 2.0, "shelf_hz": 4000.0, "shelf_db": -3.0},
        {"kind": "agc", "target_db": -20.0, "max_gain_db": 20.0, "attack_ms": 10.0,
         "release_ms": 400.0, "gate_db": -60.0, "threshold_db": -10.0, "ratio": 3.0,
         "knee_db": 6.0},
        {"kind": "lowrate", "cutoff_hz": 5000.0, "frame_ms": 20.0, "step_db": 3.0,
         "floor_db": -40.0},
        {"kind": "telephone", "rate": 8000, "low_hz": 300.0, "high_hz": 3400.0},
        {"kind": "mulaw", "bits": 7},
        {"kind": "bitcrush", "bits": 10},
        {"kind": "clip", "level_db": -3.0, "mode": "soft"},
        {"kind": "hum", "freq_hz": 50, "level_db": -30.0, "harmonics": 4, "decay_db": 4.0},
        {"kind": "dc", "offset": 0.01},
        {"kind": "noise", "snr_db": 40.0},
    ],
}


def _noise(n: int, channels: int = 1, rms: float = 0.1, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((n, channels)) * rms).astype(np.float32)


def _dev(*stages: dict[str, Any], seed: int = 1) -> dict[str, Any]:
    return {"model": "custom", "seed": seed, "stages": list(stages)}


def _mic(**kw: Any) -> dict[str, Any]:
    st = {"kind": "mic_response", "hp_hz": 20.0, "hp_order": 1, "lp_hz": 7900.0, "lp_order": 1,
          "peak_hz": 1000.0, "peak_db": 0.0, "peak_q": 1.0, "shelf_hz": 4000.0, "shelf_db": 0.0}
    return {**st, **kw}


def _rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64))))


def _digest(args: tuple[np.ndarray, dict[str, Any]]) -> str:
    x, dev = args
    return hashlib.sha256(apply_device(x, SR, dev).tobytes()).hexdigest()


# --- drawing and validation ----------------------------------------------------------------


@pytest.mark.parametrize("model", sorted(DEVICE_MODELS))
def test_every_model_draws_valid_json_devices(model: str) -> None:
    kinds = set()
    for seed in range(30):
        dev = draw_device(np.random.default_rng(seed), [model])
        validate_device(dev)
        assert dev["model"] == model
        assert json.loads(json.dumps(dev)) == dev
        kinds |= {st["kind"] for st in dev["stages"]}
    assert kinds == {st["kind"] for st in DEVICE_MODELS[model]["stages"]}  # optional ones appear
    assert DEVICE_MODELS[model]["doc"]


def test_draw_is_reproducible_and_picks_among_models() -> None:
    a = draw_device(np.random.default_rng(4), ["phone", "laptop", "headset"])
    b = draw_device(np.random.default_rng(4), ["phone", "laptop", "headset"])
    assert a == b
    picked = {draw_device(np.random.default_rng(s), ["phone", "laptop"])["model"]
              for s in range(20)}
    assert picked == {"phone", "laptop"}
    with pytest.raises(SpecError, match="'walkie-talkie' is unknown"):
        draw_device(np.random.default_rng(0), ["walkie-talkie"])
    with pytest.raises(SpecError, match="empty"):
        draw_device(np.random.default_rng(0), [])


def test_model_ranges_lie_inside_the_stage_limits() -> None:
    for name, model in DEVICE_MODELS.items():
        for st in model["stages"]:
            for param, spec in st.items():
                if param in ("kind", "p"):
                    continue
                values = spec if isinstance(spec, list | tuple) else [spec]
                for v in values:  # both ends of a range, every choice, the fixed value
                    stage = {**{k: (w[0] if isinstance(w, list | tuple) else w)
                                for k, w in st.items() if k != "p"}, param: v}
                    validate_device(_dev(stage), where=f"{name}")


@pytest.mark.parametrize(
    ("device", "field"),
    [
        (_dev({"kind": "reverb"}), r"device\.stages\[0\]\.kind: 'reverb' is unknown"),
        (_dev({k: v for k, v in _mic().items() if k != "hp_hz"}),
         r"device\.stages\[0\]\.hp_hz: missing"),
        (_dev({**_mic(), "wobble": 1}), r"device\.stages\[0\]: unknown parameter.*wobble"),
        (_dev({"kind": "dc", "offset": 0.5}), r"device\.stages\[0\]\.offset: 0\.5 is outside"),
        (_dev({"kind": "mulaw", "bits": 7.5}), r"device\.stages\[0\]\.bits: must be an integer"),
        (_dev({"kind": "mulaw", "bits": True}), r"device\.stages\[0\]\.bits: must be an integer"),
        (_dev({"kind": "clip", "level_db": -3.0, "mode": "fuzz"}),
         r"device\.stages\[0\]\.mode: 'fuzz' is not one of"),
        (_dev({"kind": "noise", "snr_db": float("nan")}), r"device\.stages\[0\]\.snr_db"),
        (_dev(_mic(hp_hz=1500.0, lp_hz=1200.0)), r"device\.stages\[0\]\.lp_hz: .* above hp_hz"),
        (_dev({"kind": "telephone", "rate": 8000, "low_hz": 300.0, "high_hz": 3990.0}),
         r"device\.stages\[0\]\.high_hz: .* below 0\.49 x rate"),
        (_dev(seed=-1), r"device\.seed: must be an integer"),
        ({"model": "x", "stages": []}, r"device\.seed: missing"),
        ({"model": "x", "seed": 0, "stages": [], "colour": 1}, r"device: unknown key.*colour"),
    ],
)
def test_validation_names_the_field(device: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError, match=field):
        validate_device(device)
    with pytest.raises(SpecError, match=field.replace(r"device", "scene.device", 1)):
        validate_device(device, where="scene.device")


def test_apply_validates_the_device_and_the_audio() -> None:
    with pytest.raises(SpecError, match="offset"):
        apply_device(_noise(100), SR, _dev({"kind": "dc", "offset": 1.0}))
    with pytest.raises(AudioError, match="float32"):
        apply_device(_noise(100).astype(np.float64), SR, _dev())
    with pytest.raises(AudioError, match="float32"):
        apply_device(_noise(100)[:, 0], SR, _dev())


# --- determinism, shape -------------------------------------------------------------------


@pytest.mark.parametrize("model", sorted(DEVICE_MODELS))
@pytest.mark.parametrize("channels", [1, 3])
def test_shape_dtype_finite_for_every_model(model: str, channels: int) -> None:
    x = _noise(SR, channels)
    for seed in range(3):
        dev = draw_device(np.random.default_rng(seed), [model])
        y = apply_device(x, SR, dev)
        assert y.shape == x.shape and y.dtype == np.float32
        assert np.isfinite(y).all()
    assert apply_device(np.zeros((0, channels), np.float32), SR, dev).shape == (0, channels)


@pytest.mark.parametrize("sr", [8000, 16000, 22050, 44100])
def test_every_stage_runs_at_other_sample_rates(sr: int) -> None:
    x = _noise(sr // 2, 2)
    y = apply_device(x, sr, ALL_STAGES)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()


def test_apply_is_deterministic_in_process_and_in_a_spawned_process() -> None:
    x = _noise(2 * SR, 2, seed=3)
    first = _digest((x, ALL_STAGES))
    assert _digest((x, ALL_STAGES)) == first
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as ex:
        assert ex.submit(_digest, (x, ALL_STAGES)).result() == first
    assert _digest((x, {**ALL_STAGES, "seed": 1})) != first  # the seed matters (noise, hum)


def test_global_random_state_is_untouched() -> None:
    random.seed(5)
    np.random.seed(5)
    py, npst = random.getstate(), np.random.get_state()
    apply_device(_noise(SR), SR, ALL_STAGES)
    assert random.getstate() == py
    after = np.random.get_state()
    assert np.array_equal(after[1], npst[1]) and after[2] == npst[2]


def test_channels_share_the_device_but_not_the_noise() -> None:
    x = np.repeat(_noise(SR), 2, axis=1)
    no_noise = {**ALL_STAGES, "stages": ALL_STAGES["stages"][:-1]}
    y = apply_device(x, SR, no_noise)
    assert np.array_equal(y[:, 0], y[:, 1])
    z = apply_device(x, SR, _dev({"kind": "noise", "snr_db": 20.0}))
    n0, n1 = z[:, 0] - x[:, 0], z[:, 1] - x[:, 1]
    assert abs(np.corrcoef(n0, n1)[0, 1]) < 0.05
    assert _rms_db(n0) == pytest.approx(_rms_db(x) - 20.0, abs=0.3)


# --- what each stage does -----------------------------------------------------------------


def _band_db(x: np.ndarray, lo: float, hi: float) -> float:
    f, p = welch(x[:, 0], fs=SR, nperseg=1024)
    return float(10 * np.log10(p[(f >= lo) & (f <= hi)].sum()))


def test_telephone_removes_energy_above_4_khz() -> None:
    x = _noise(4 * SR)
    y = apply_device(x, SR, _dev({"kind": "telephone", "rate": 8000, "low_hz": 300.0,
                                  "high_hz": 3400.0}))
    assert _band_db(y, 4000, 8000) < _band_db(x, 4000, 8000) - 30
    assert _band_db(y, 1000, 3000) == pytest.approx(_band_db(x, 1000, 3000), abs=1.0)
    assert _band_db(y, 0, 150) < _band_db(x, 0, 150) - 10


def _tone_gain_db(st: dict[str, Any], hz: float) -> float:
    t = np.arange(2 * SR) / SR
    x = (0.1 * np.sin(2 * np.pi * hz * t)).astype(np.float32)[:, None]
    y = apply_device(x, SR, _dev(st))
    return _rms_db(y[SR:]) - _rms_db(x[SR:])  # skip the filters' start transient


def test_mic_response_band_edges_attenuate_as_specified() -> None:
    st = _mic(hp_hz=400.0, hp_order=2, lp_hz=3000.0, lp_order=4)
    assert _tone_gain_db(st, 1100.0) == pytest.approx(0.0, abs=1.0)  # passband
    assert _tone_gain_db(st, 400.0) == pytest.approx(-3.0, abs=1.0)  # corners: -3 dB
    assert _tone_gain_db(st, 3000.0) == pytest.approx(-3.0, abs=1.0)
    assert _tone_gain_db(st, 100.0) < -20.0  # 2 octaves below, 12 dB/octave
    assert _tone_gain_db(st, 6000.0) < -20.0  # 1 octave above, 24 dB/octave
    peaked = _mic(hp_hz=50.0, lp_hz=7500.0, peak_hz=2000.0, peak_db=8.0, peak_q=2.0)
    assert _tone_gain_db(peaked, 2000.0) == pytest.approx(8.0, abs=1.0)
    tilted = _mic(shelf_hz=2000.0, shelf_db=-6.0, lp_hz=7900.0)
    assert _tone_gain_db(tilted, 6000.0) == pytest.approx(-6.0, abs=1.5)
    assert _tone_gain_db(tilted, 300.0) == pytest.approx(0.0, abs=1.0)


def test_mulaw_changes_the_signal_but_keeps_it_correlated() -> None:
    x = _noise(SR, rms=0.2)
    for bits in (8, 4):
        y = apply_device(x, SR, _dev({"kind": "mulaw", "bits": bits}))
        assert not np.array_equal(x, y)
        assert np.corrcoef(x[:, 0], y[:, 0])[0, 1] > 0.9
    y8 = apply_device(x, SR, _dev({"kind": "mulaw", "bits": 8}))
    y4 = apply_device(x, SR, _dev({"kind": "mulaw", "bits": 4}))
    assert np.abs(y4 - x).mean() > 2 * np.abs(y8 - x).mean()  # fewer bits, coarser
    assert len(np.unique(y4)) <= 16


def _tone_level_db(y: np.ndarray, hz: float) -> float:
    t = np.arange(len(y)) / SR
    c = 2 * np.mean(y[:, 0] * np.cos(2 * np.pi * hz * t))
    s = 2 * np.mean(y[:, 0] * np.sin(2 * np.pi * hz * t))
    return float(20 * np.log10(np.hypot(c, s) / np.sqrt(2)))  # the tone's RMS, dB


@pytest.mark.parametrize("mains", [50, 60])
def test_hum_adds_mains_at_the_stated_level(mains: int) -> None:
    x = _noise(4 * SR, rms=0.05)
    st = {"kind": "hum", "freq_hz": mains, "level_db": -20.0, "harmonics": 3, "decay_db": 6.0}
    y = apply_device(x, SR, _dev(st))
    ref = _rms_db(x)
    assert _tone_level_db(y, mains) - ref == pytest.approx(-20.0, abs=2.0)
    assert _tone_level_db(y, 2 * mains) - ref == pytest.approx(-26.0, abs=2.0)
    assert _tone_level_db(y, 3 * mains) - ref == pytest.approx(-32.0, abs=2.0)
    assert _tone_level_db(x, mains) - ref < -35.0  # the noise alone has no mains line
    other = apply_device(x, SR, _dev(st, seed=2))
    assert not np.array_equal(y, other)  # the phase comes from the seed


def test_dc_shifts_the_mean() -> None:
    x = _noise(SR)
    y = apply_device(x, SR, _dev({"kind": "dc", "offset": -0.05}))
    assert float(y.mean() - x.mean()) == pytest.approx(-0.05, abs=1e-5)


def test_agc_reduces_the_dynamic_range() -> None:
    loud, quiet = _noise(2 * SR, rms=0.3, seed=1), _noise(2 * SR, rms=0.003, seed=2)
    x = np.concatenate([loud, quiet, loud])
    st = {"kind": "agc", "target_db": -20.0, "max_gain_db": 30.0, "attack_ms": 10.0,
          "release_ms": 300.0, "gate_db": -60.0, "threshold_db": -10.0, "ratio": 4.0,
          "knee_db": 6.0}
    y = apply_device(x, SR, _dev(st))

    def spread(z: np.ndarray) -> float:  # loud/quiet RMS ratio over each segment's last second
        return _rms_db(z[SR:2 * SR]) - _rms_db(z[3 * SR:4 * SR])

    assert spread(x) == pytest.approx(40.0, abs=0.5)
    assert spread(y) < 10.0
    assert _rms_db(y[3 * SR:4 * SR]) == pytest.approx(-20.0, abs=3.0)  # quiet part lifted
    silent = apply_device(np.zeros((SR, 1), np.float32), SR, _dev(st))
    assert not silent.any()  # the gate: silence stays silence


@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_clip_bounds_the_peak(mode: str) -> None:
    x = _noise(SR, rms=0.2)
    y = apply_device(x, SR, _dev({"kind": "clip", "level_db": -6.0, "mode": mode}))
    limit = float(np.abs(x).max()) * 10 ** (-6 / 20)
    assert float(np.abs(y).max()) <= limit * (1 + 1e-6)
    assert float(np.abs(y).max()) > 0.9 * limit
    small = np.abs(x[:, 0]) < 0.1 * limit
    assert np.allclose(y[small, 0], x[small, 0], atol=1e-3)  # quiet samples pass


def test_bitcrush_and_lowrate() -> None:
    x = _noise(2 * SR, rms=0.2)
    y = apply_device(x, SR, _dev({"kind": "bitcrush", "bits": 4}))
    assert len(np.unique(y)) <= 2**4 + 3 and np.corrcoef(x[:, 0], y[:, 0])[0, 1] > 0.9
    st = {"kind": "lowrate", "cutoff_hz": 3000.0, "frame_ms": 32.0, "step_db": 6.0,
          "floor_db": -30.0}
    z = apply_device(x, SR, _dev(st))
    assert _band_db(z, 3500, 8000) < _band_db(x, 3500, 8000) - 30
    assert _band_db(z, 500, 2500) == pytest.approx(_band_db(x, 500, 2500), abs=3.0)
    assert not np.allclose(z, x, atol=1e-2)


def test_stage_table_documents_every_kind() -> None:
    import chimein.scenes.device as device

    for kind in STAGES:
        assert f"``{kind}``" in (device.__doc__ or "")
