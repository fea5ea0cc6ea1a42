"""Recording-device and channel models applied to the rendered room signal.

A scene's room gives the sound at the microphone; the device decides what the recording
sounds like: the microphone's frequency response, an automatic gain control and compressor,
an overdriven input stage, a telephone channel or a low bit rate codec, a DC offset, mains
hum and self-noise. A device is a plain mapping recorded in the scene spec::

    {"model": "phone", "seed": 123, "stages": [{"kind": "mic_response", ...}, ...]}

:func:`draw_device` draws one from a named family in :data:`DEVICE_MODELS`,
:func:`validate_device` checks one (a :class:`~chimein.errors.SpecError` names the field),
:func:`apply_device` runs its stages in order. Every parameter is explicit in the mapping and
the only randomness (noise samples, hum phases) comes from ``device["seed"]``, so the mapping
alone gives bit-identical audio in any process.

Stage kinds (:data:`STAGES` lists each parameter and its allowed range):

``mic_response``
    Butterworth high-pass and low-pass corners, a resonant peak and a high shelf (a tilt).
    Uses audiomentations ``HighPassFilter``/``LowPassFilter``/``PeakingFilter``/
    ``HighShelfFilter`` with every ``min_*`` equal to its ``max_*`` (nothing left to draw),
    the global RNGs seeded from the device seed around the call and restored afterwards.
    A corner or centre at or above 0.49 x the sample rate is outside the audio band and skipped.
``agc``
    Automatic gain control followed by a soft-knee compressor, both on 10 ms frame levels
    (channels linked: one gain for all, as a device's AGC sees the mixed input). The AGC level
    detector is a one-pole follower with separate attack/release time constants; it steers the
    gain towards ``target_db`` (dBFS RMS) within +-``max_gain_db`` and holds it while the level
    is below ``gate_db`` (so silence is not pumped up). The compressor's static curve
    (``threshold_db``, ``ratio``, ``knee_db``) then acts on the AGC'd frame level. The gain is
    interpolated between frame centres. Own numpy code: audiomentations has no AGC, and its
    ``Limiter`` needs an optional compiled package.
``clip``
    Hard (``np.clip``) or soft (``L * tanh(x / L)``) clipping at ``level_db`` below the input's
    peak, so it clips the loudest parts whatever the scene level. Own code: audiomentations'
    ``ClippingDistortion`` is parameterised by a percentile and has no soft mode.
``telephone``
    Resample to ``rate`` Hz (:func:`chimein.scenes.audio.resample`), band-pass
    ``low_hz``..``high_hz`` there (4th-order Butterworth), resample back; the length is kept.
``mulaw``
    G.711-style mu-law (mu = 255) encode/decode with ``bits`` bits (8 = telephone quality,
    fewer = a coarser codec). The codec's full scale is max(1, peak), so it never clips.
``bitcrush``
    Uniform quantisation to ``bits`` bits (audiomentations ``BitCrush``, fixed depth).
``lowrate``
    Not a real codec: a short-time Fourier transform (``frame_ms`` frames, half overlap) whose
    bins above ``cutoff_hz`` are dropped, whose magnitudes are rounded to ``step_db`` steps and
    whose bins more than ``-floor_db`` below the frame's loudest bin are zeroed (the spectral
    holes of a low bit rate codec); phase is kept. It mimics the band limit, coarse spectral
    envelope and "watery" holes of low bit rate speech codecs, not their exact artefacts.
``dc``
    A constant ``offset`` added (an ADC offset).
``hum``
    Mains hum at ``freq_hz`` (50 or 60) with ``harmonics`` harmonics; the fundamental's RMS is
    ``level_db`` relative to the stage's input RMS (floored at -80 dBFS), each further harmonic
    ``decay_db`` lower, random phases from the seed (same hum on every channel: one ground loop).
``noise``
    White self-noise at ``snr_db`` below the stage's input RMS (floored at -80 dBFS),
    independent per channel.

Examples
--------
>>> import numpy as np
>>> dev = draw_device(np.random.default_rng(0), ["phone"])
>>> validate_device(dev)
>>> x = np.random.default_rng(1).standard_normal((16000, 2)).astype(np.float32) * 0.1
>>> y = apply_device(x, 16000, dev)
>>> y.shape, y.dtype
((16000, 2), dtype('float32'))
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

import chimein.scenes.augment as augment
from chimein.errors import AudioError, SpecError
from chimein.scenes.audio import resample

__all__ = ["DEVICE_MODELS", "STAGES", "apply_device", "draw_device", "validate_device"]

_FRAME_S = 0.010  # AGC/compressor frame
_FLOOR_DB = -80.0  # reference level floor for hum/noise on (near) silent input
_SALT = 0x64657669  # separates the device stream from other users of the scene seed

#: Stage kinds -> parameter -> allowed values: ``(lo, hi)`` floats, ``(lo, hi, int)`` integers
#: (inclusive), or a list of choices.
STAGES: dict[str, dict[str, Any]] = {
    "mic_response": {
        "hp_hz": (10.0, 2000.0), "hp_order": (1, 4, int),
        "lp_hz": (1000.0, 48000.0), "lp_order": (1, 4, int),
        "peak_hz": (100.0, 16000.0), "peak_db": (-15.0, 15.0), "peak_q": (0.3, 10.0),
        "shelf_hz": (300.0, 16000.0), "shelf_db": (-15.0, 15.0),
    },
    "agc": {
        "target_db": (-40.0, -6.0), "max_gain_db": (0.0, 40.0), "attack_ms": (1.0, 1000.0),
        "release_ms": (10.0, 10000.0), "gate_db": (-100.0, -20.0), "threshold_db": (-40.0, 0.0),
        "ratio": (1.0, 20.0), "knee_db": (0.0, 24.0),
    },
    "clip": {"level_db": (-30.0, 0.0), "mode": ["hard", "soft"]},
    "telephone": {"rate": (4000, 16000, int), "low_hz": (20.0, 1000.0), "high_hz": (1000.0, 7900.0)},
    "mulaw": {"bits": (2, 8, int)},
    "bitcrush": {"bits": (2, 16, int)},
    "lowrate": {
        "cutoff_hz": (1000.0, 16000.0), "frame_ms": (8.0, 64.0), "step_db": (0.0, 12.0),
        "floor_db": (-90.0, -10.0),
    },
    "dc": {"offset": (-0.2, 0.2)},
    "hum": {"freq_hz": [50, 60], "level_db": (-80.0, 0.0), "harmonics": (1, 12, int),
            "decay_db": (0.0, 24.0)},
    "noise": {"snr_db": (-10.0, 100.0)},
}


def _stage(kind: str, p: float = 1.0, **params: Any) -> dict[str, Any]:
    return {"kind": kind, "p": p, **params}


_FLAT_AGC = {"gate_db": -60.0, "knee_db": 6.0}
#: Named device families. Each is ``{"doc": what it models, "stages": [...]}``; a stage lists
#: its kind, the probability ``p`` that a drawn device has it, and per parameter a fixed value,
#: a ``(lo, hi)`` range (uniform; integers when both ends are ints) or a list of choices.
DEVICE_MODELS: dict[str, dict[str, Any]] = {
    "clean": {"doc": "a measurement microphone: the room signal unchanged", "stages": []},
    "smart-speaker": {
        "doc": "far-field MEMS array mic: gentle high-pass, near-flat top, mild AGC, low noise",
        "stages": [
            _stage("mic_response", hp_hz=(100.0, 200.0), hp_order=2, lp_hz=(7000.0, 7800.0),
                   lp_order=1, peak_hz=(2000.0, 5000.0), peak_db=(-3.0, 3.0), peak_q=(0.7, 1.5),
                   shelf_hz=4000.0, shelf_db=(-2.0, 2.0)),
            _stage("agc", target_db=(-26.0, -20.0), max_gain_db=(6.0, 15.0),
                   attack_ms=(5.0, 20.0), release_ms=(300.0, 800.0), threshold_db=(-12.0, -6.0),
                   ratio=(1.5, 2.5), **_FLAT_AGC),
            _stage("noise", snr_db=(50.0, 70.0)),
        ],
    },
    "laptop": {
        "doc": "laptop mic: band 150-7000 Hz, a tilt, strong AGC, sometimes clipping, fan and "
               "mains hum",
        "stages": [
            _stage("mic_response", hp_hz=(150.0, 250.0), hp_order=2, lp_hz=(6000.0, 7000.0),
                   lp_order=2, peak_hz=(1000.0, 3000.0), peak_db=(-4.0, 4.0), peak_q=(0.7, 2.0),
                   shelf_hz=3000.0, shelf_db=(-6.0, 0.0)),
            _stage("agc", target_db=(-24.0, -18.0), max_gain_db=(15.0, 30.0),
                   attack_ms=(5.0, 20.0), release_ms=(200.0, 600.0), threshold_db=(-15.0, -8.0),
                   ratio=(2.0, 4.0), **_FLAT_AGC),
            _stage("clip", p=0.3, level_db=(-6.0, -1.0), mode=["hard", "soft"]),
            _stage("hum", p=0.5, freq_hz=[50, 60], level_db=(-45.0, -30.0), harmonics=(3, 6),
                   decay_db=(3.0, 8.0)),
            _stage("noise", snr_db=(35.0, 50.0)),
        ],
    },
    "phone": {
        "doc": "telephone call: handset mic, AGC, 8 kHz channel band 300-3400 Hz, mu-law",
        "stages": [
            _stage("mic_response", hp_hz=(200.0, 300.0), hp_order=2, lp_hz=(3600.0, 3800.0),
                   lp_order=2, peak_hz=(1500.0, 3000.0), peak_db=(0.0, 5.0), peak_q=(0.7, 2.0),
                   shelf_hz=2000.0, shelf_db=0.0),
            _stage("agc", target_db=(-22.0, -16.0), max_gain_db=(10.0, 20.0),
                   attack_ms=(5.0, 20.0), release_ms=(200.0, 500.0), threshold_db=(-12.0, -6.0),
                   ratio=(2.0, 4.0), **_FLAT_AGC),
            _stage("telephone", rate=8000, low_hz=(250.0, 350.0), high_hz=(3300.0, 3500.0)),
            _stage("mulaw", bits=(6, 8)),
            _stage("noise", snr_db=(40.0, 55.0)),
        ],
    },
    "voip": {
        "doc": "low bit rate internet call: wideband-ish band limit, AGC, coarse spectral codec",
        "stages": [
            _stage("mic_response", hp_hz=(100.0, 200.0), hp_order=2, lp_hz=(6500.0, 7500.0),
                   lp_order=2, peak_hz=2000.0, peak_db=0.0, peak_q=1.0, shelf_hz=3000.0,
                   shelf_db=(-3.0, 0.0)),
            _stage("agc", target_db=(-24.0, -18.0), max_gain_db=(10.0, 20.0),
                   attack_ms=(5.0, 20.0), release_ms=(200.0, 600.0), threshold_db=(-12.0, -6.0),
                   ratio=(2.0, 3.0), **_FLAT_AGC),
            _stage("lowrate", cutoff_hz=(3500.0, 7000.0), frame_ms=[20.0, 32.0],
                   step_db=(2.0, 6.0), floor_db=(-50.0, -35.0)),
        ],
    },
    "cheap-mic": {
        "doc": "cheap electret/USB mic: resonant peak, low-pass 4-6 kHz, DC offset, hum, noise, "
               "often clipping, sometimes a coarse ADC",
        "stages": [
            _stage("mic_response", hp_hz=(60.0, 150.0), hp_order=1, lp_hz=(4000.0, 6000.0),
                   lp_order=2, peak_hz=(2000.0, 4000.0), peak_db=(4.0, 10.0), peak_q=(2.0, 5.0),
                   shelf_hz=3000.0, shelf_db=0.0),
            _stage("clip", p=0.5, level_db=(-9.0, -2.0), mode=["hard", "soft"]),
            _stage("bitcrush", p=0.3, bits=(8, 12)),
            _stage("hum", p=0.7, freq_hz=[50, 60], level_db=(-40.0, -25.0), harmonics=(2, 8),
                   decay_db=(2.0, 6.0)),
            _stage("dc", offset=(-0.02, 0.02)),
            _stage("noise", snr_db=(25.0, 40.0)),
        ],
    },
    "headset": {
        "doc": "close-talk headset boom mic: bright, presence peak, light compression",
        "stages": [
            _stage("mic_response", hp_hz=(80.0, 150.0), hp_order=2, lp_hz=(7000.0, 7800.0),
                   lp_order=1, peak_hz=(3000.0, 6000.0), peak_db=(2.0, 6.0), peak_q=(1.0, 2.0),
                   shelf_hz=4000.0, shelf_db=(2.0, 6.0)),
            _stage("agc", target_db=(-20.0, -16.0), max_gain_db=(0.0, 6.0),
                   attack_ms=(2.0, 10.0), release_ms=(100.0, 300.0), threshold_db=(-10.0, -6.0),
                   ratio=(1.5, 2.5), **_FLAT_AGC),
            _stage("noise", snr_db=(55.0, 70.0)),
        ],
    },
}


# --- drawing -------------------------------------------------------------------------------


def _draw_value(rng: np.random.Generator, spec: Any) -> Any:
    if isinstance(spec, list):
        return spec[int(rng.integers(len(spec)))]
    if isinstance(spec, tuple):
        lo, hi = spec
        if isinstance(lo, int) and isinstance(hi, int):
            return int(rng.integers(lo, hi + 1))
        return round(float(rng.uniform(lo, hi)), 4)
    return spec


def draw_device(rng: np.random.Generator, models: Sequence[str]) -> dict[str, Any]:
    """Draw a device: pick one of ``models`` uniformly, then every parameter from its ranges.

    Parameters
    ----------
    rng
        The scene's generator; the draw consumes from it, so it is reproducible.
    models
        Names from :data:`DEVICE_MODELS` to choose among (e.g. ``["phone", "laptop"]``).

    Returns
    -------
    dict
        JSON-able ``{"model": name, "seed": int, "stages": [{"kind": ..., params...}]}``;
        :func:`apply_device` needs nothing else.

    Raises
    ------
    SpecError
        ``models`` is empty or names an unknown model.

    Examples
    --------
    >>> import numpy as np
    >>> dev = draw_device(np.random.default_rng(3), ["cheap-mic"])
    >>> dev["model"], dev["stages"][0]["kind"]
    ('cheap-mic', 'mic_response')
    """
    names = list(models)
    if not names:
        raise SpecError(f"device models: empty; choose from {sorted(DEVICE_MODELS)}")
    for n in names:
        if n not in DEVICE_MODELS:
            raise SpecError(f"device model {n!r} is unknown; choose from {sorted(DEVICE_MODELS)}")
    name = names[int(rng.integers(len(names)))]
    seed = int(rng.integers(0, 2**32))
    stages: list[dict[str, Any]] = []
    for st in DEVICE_MODELS[name]["stages"]:
        keep = float(rng.random()) < st["p"]  # always drawn, so later draws do not shift
        params = {k: _draw_value(rng, v) for k, v in st.items() if k not in ("kind", "p")}
        if keep:
            stages.append({"kind": st["kind"], **params})
    return {"model": name, "seed": seed, "stages": stages}


# --- validation ----------------------------------------------------------------------------


def _check_param(value: Any, allowed: Any, where: str) -> None:
    if isinstance(allowed, list):
        if value not in allowed or isinstance(value, bool):
            raise SpecError(f"{where}: {value!r} is not one of {allowed}")
        return
    lo, hi = allowed[0], allowed[1]
    if len(allowed) == 3:
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise SpecError(f"{where}: must be an integer in [{lo}, {hi}], got {value!r}")
    elif isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise SpecError(f"{where}: must be a number in [{lo}, {hi}], got {value!r}")
    if not (np.isfinite(value) and lo <= value <= hi):
        raise SpecError(f"{where}: {value!r} is outside [{lo}, {hi}]")


def validate_device(device: Mapping[str, Any], where: str = "device") -> None:
    """Check a device mapping; raise :class:`~chimein.errors.SpecError` naming the bad field.

    Checks the keys (``model``, ``seed``, ``stages``), every stage's ``kind``, that each stage
    has exactly its kind's parameters (:data:`STAGES`), their types and ranges, and the
    cross-field orders (high-pass below low-pass; telephone band inside the channel's Nyquist).

    Examples
    --------
    >>> validate_device({"model": "x", "seed": 1, "stages": [{"kind": "dc", "offset": 0.5}]})
    Traceback (most recent call last):
    ...
    chimein.errors.SpecError: device.stages[0].offset: 0.5 is outside [-0.2, 0.2]
    """
    if not isinstance(device, Mapping):
        raise SpecError(f"{where}: must be a mapping with model, seed, stages; got {device!r}")
    extra = set(device) - {"model", "seed", "stages"}
    if extra:
        raise SpecError(f"{where}: unknown key(s) {sorted(extra)}; allowed: model, seed, stages")
    for key in ("model", "seed", "stages"):
        if key not in device:
            raise SpecError(f"{where}.{key}: missing")
    if not isinstance(device["model"], str):
        raise SpecError(f"{where}.model: must be a string, got {device['model']!r}")
    seed = device["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**63:
        raise SpecError(f"{where}.seed: must be an integer in [0, 2**63), got {seed!r}")
    if not isinstance(device["stages"], list | tuple):
        raise SpecError(f"{where}.stages: must be a list of stage mappings")
    for i, st in enumerate(device["stages"]):
        _validate_stage(st, f"{where}.stages[{i}]")


def _validate_stage(st: Any, w: str) -> None:
    if not isinstance(st, Mapping) or "kind" not in st:
        raise SpecError(f"{w}: must be a mapping with a 'kind' in {sorted(STAGES)}")
    kind = st["kind"]
    if kind not in STAGES:
        raise SpecError(f"{w}.kind: {kind!r} is unknown; choose from {sorted(STAGES)}")
    allowed = STAGES[kind]
    unknown = set(st) - set(allowed) - {"kind"}
    if unknown:
        raise SpecError(f"{w}: unknown parameter(s) {sorted(unknown)} for {kind}; "
                        f"allowed: {sorted(allowed)}")
    for name, rng in allowed.items():
        if name not in st:
            raise SpecError(f"{w}.{name}: missing (a {kind} stage needs {sorted(allowed)})")
        _check_param(st[name], rng, f"{w}.{name}")
    if kind == "mic_response" and st["hp_hz"] >= st["lp_hz"]:
        raise SpecError(f"{w}.lp_hz: {st['lp_hz']} must be above hp_hz {st['hp_hz']}")
    if kind == "telephone":
        if st["low_hz"] >= st["high_hz"]:
            raise SpecError(f"{w}.high_hz: {st['high_hz']} must be above low_hz {st['low_hz']}")
        if st["high_hz"] >= 0.49 * st["rate"]:
            raise SpecError(f"{w}.high_hz: {st['high_hz']} must be below 0.49 x rate "
                            f"({0.49 * st['rate']:g} Hz)")


# --- stages --------------------------------------------------------------------------------


@contextmanager
def _seeded_globals(seed: int) -> Iterator[None]:
    """Seed ``random``/``np.random`` for an audiomentations call; restore them afterwards."""
    with augment.RNG_LOCK:  # the lock the augment chains take for the same global RNGs
        py_state, np_state = random.getstate(), np.random.get_state()
        random.seed(seed)
        np.random.seed(seed % 2**32)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def _am(transform: Any, x: np.ndarray, sr: int, seed: int) -> np.ndarray:
    """Apply an audiomentations transform to (samples, channels) audio, deterministically."""
    xc = np.ascontiguousarray(x.T) if x.shape[1] > 1 else np.ascontiguousarray(x[:, 0])
    with _seeded_globals(seed):
        y = transform(samples=xc, sample_rate=sr)
    y = np.asarray(y, dtype=np.float32)
    return y.T.copy() if y.ndim == 2 else y[:, None]


def _mic_response(x: np.ndarray, sr: int, st: Mapping[str, Any], seed: int) -> np.ndarray:
    import audiomentations as am

    band = 0.49 * sr
    y = x
    if st["hp_hz"] < band:
        hp, o = float(st["hp_hz"]), 6 * int(st["hp_order"])
        y = _am(am.HighPassFilter(min_cutoff_freq=hp, max_cutoff_freq=hp, min_rolloff=o,
                                  max_rolloff=o, p=1.0), y, sr, seed)
    if st["lp_hz"] < band:
        lp, o = float(st["lp_hz"]), 6 * int(st["lp_order"])
        y = _am(am.LowPassFilter(min_cutoff_freq=lp, max_cutoff_freq=lp, min_rolloff=o,
                                 max_rolloff=o, p=1.0), y, sr, seed)
    if st["peak_db"] != 0 and st["peak_hz"] < band:
        f, g, q = float(st["peak_hz"]), float(st["peak_db"]), float(st["peak_q"])
        y = _am(am.PeakingFilter(min_center_freq=f, max_center_freq=f, min_gain_db=g,
                                 max_gain_db=g, min_q=q, max_q=q, p=1.0), y, sr, seed)
    if st["shelf_db"] != 0 and st["shelf_hz"] < band:
        f, g = float(st["shelf_hz"]), float(st["shelf_db"])
        y = _am(am.HighShelfFilter(min_center_freq=f, max_center_freq=f, min_gain_db=g,
                                   max_gain_db=g, min_q=0.707, max_q=0.707, p=1.0), y, sr, seed)
    return y


def _db(power: np.ndarray | float) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(power, 1e-12))


def _agc(x: np.ndarray, sr: int, st: Mapping[str, Any], seed: int) -> np.ndarray:
    hop = max(1, round(_FRAME_S * sr))
    n = x.shape[0]
    nf = -(-n // hop)
    pw = np.zeros(nf * hop, dtype=np.float64)
    pw[:n] = np.mean(np.square(x, dtype=np.float64), axis=1)
    level = _db(pw.reshape(nf, hop).mean(axis=1))
    a_att = 1.0 - np.exp(-_FRAME_S * 1000.0 / float(st["attack_ms"]))
    a_rel = 1.0 - np.exp(-_FRAME_S * 1000.0 / float(st["release_ms"]))
    target, gmax, gate = float(st["target_db"]), float(st["max_gain_db"]), float(st["gate_db"])
    gain = np.empty(nf)
    env, g = target, 0.0  # start at the target: no gain until the detector has heard the input
    for i, lv in enumerate(level.tolist()):
        if lv >= gate:
            env += (a_att if lv > env else a_rel) * (lv - env)
            g = min(gmax, max(-gmax, target - env))
        gain[i] = g
    # soft-knee compressor on the AGC'd frame level
    over = level + gain - float(st["threshold_db"])
    knee, slope = float(st["knee_db"]), 1.0 / float(st["ratio"]) - 1.0
    red = np.where(over > knee / 2, slope * over, 0.0)
    if knee > 0:
        inside = np.abs(over) <= knee / 2
        red = np.where(inside, slope * (over + knee / 2) ** 2 / (2 * knee), red)
    total = gain + red
    centres = (np.arange(nf) + 0.5) * hop
    g_lin = 10.0 ** (np.interp(np.arange(n), centres, total) / 20.0)
    return (x * g_lin[:, None]).astype(np.float32)


def _clip(x: np.ndarray, sr: int, st: Mapping[str, Any], seed: int) -> np.ndarray:
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak == 0.0:
        return x
    lim = np.float32(peak * 10.0 ** (float(st["level_db"]) / 20.0))
    if st["mode"] == "hard":
        return np.clip(x, -lim, lim)
    return (lim * np.tanh(x / lim)).astype(np.float32)


def _butter_band(x: np.ndarray, sr: int, lo: float, hi: float) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    sos = butter(4, [lo, hi], btype="bandpass", fs=sr, output="sos")
    return sosfilt(sos, x, axis=0).astype(np.float32)


def _telephone(x: np.ndarray, sr: int, st: Mapping[str, Any], seed: int) -> np.ndarray:
    rate = int(st["rate"])
    if sr <= rate:  # already narrower than the channel: only its band-pass applies
        hi = min(float(st["high_hz"]), 0.49 * sr)
        return _butter_band(x, sr, float(st["low_hz"]), hi) if hi > st["low_hz"] else x
    y = _butter_band(resample(x, sr, rate), rate, float(st["low_hz"]), float(st["high_hz"]))
    y = resample(y, rate, sr)
    out = np.zeros_like(x)
    m = min(len(y), len(x))
    out[:m] = y[:m]
    return out


def _mulaw(x: np.ndarray, sr: int, st: Mapping[str, Any], seed: int) -> np.ndarray:
    mu, levels = 255.0, 2 ** int(st["bits"])
    full = max(1.0, float(np.max(np.abs(x))) if x.size else 1.0)
    v = x.astype(np.float64) / full
    enc = np.sign(v) * np.log1p(mu * np.abs(v)) / np.log1p(mu)
    step = 2.0 / (levels - 1)
    q = np.round((enc + 1.0) / step) * step - 1.0
    dec = np.sign(q) * np.expm1(np.abs(q) * np.log1p(mu)) / mu
    return (dec * full).astype(np.float32)


def _bitcrush(x: np.ndarray, sr: int, st: Mapping[str, Any], seed: int) -> np.ndarray:
    import audiomentations as am

    b = int(st["bits"])
    return _am(am.BitCrush(min_bit_depth=b, max_bit_depth=b, p=1.0), x, sr, seed)


def _lowrate(x: np.ndarray, sr: int, st: Mapping[str, Any], seed: int) -> np.ndarray:
    from scipy.signal import istft, stft

    nper = max(16, round(float(st["frame_ms"]) * sr / 1000.0))
    nper += nper % 2
    f, _, z = stft(x, fs=sr, nperseg=nper, noverlap=nper // 2, axis=0)
    z[f > float(st["cutoff_hz"])] = 0.0
    mag = np.abs(z)
    mag_db = _db(mag**2)  # 20 log10 of the magnitude
    step = float(st["step_db"])
    if step > 0:
        mag_db = np.round(mag_db / step) * step
    frame_max = mag_db.max(axis=0, keepdims=True)
    keep = (mag_db >= frame_max + float(st["floor_db"])) & (mag > 0)
    z = np.where(keep, 10.0 ** (mag_db / 20.0) * np.exp(1j * np.angle(z)), 0.0)
    _, y = istft(z, fs=sr, nperseg=nper, noverlap=nper // 2, time_axis=-1, freq_axis=0)
    y = np.asarray(y).T if y.ndim == 2 else y[:, None]
    out = np.zeros_like(x)
    m = min(len(y), len(x))
    out[:m] = y[:m]
    return out


def _dc(x: np.ndarray, sr: int, st: Mapping[str, Any], seed: int) -> np.ndarray:
    return (x + np.float32(st["offset"])).astype(np.float32)


def _ref_rms(x: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    return max(rms, 10.0 ** (_FLOOR_DB / 20.0))


def _hum(x: np.ndarray, sr: int, st: Mapping[str, Any], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(x.shape[0]) / sr
    amp0 = _ref_rms(x) * 10.0 ** (float(st["level_db"]) / 20.0) * np.sqrt(2.0)
    hum = np.zeros(x.shape[0])
    for k in range(1, int(st["harmonics"]) + 1):
        fk = k * float(st["freq_hz"])
        phase = rng.uniform(0.0, 2.0 * np.pi)
        if fk < 0.49 * sr:
            amp = amp0 * 10.0 ** (-float(st["decay_db"]) * (k - 1) / 20.0)
            hum += amp * np.sin(2.0 * np.pi * fk * t + phase)
    return (x + hum[:, None]).astype(np.float32)


def _noise(x: np.ndarray, sr: int, st: Mapping[str, Any], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sigma = _ref_rms(x) * 10.0 ** (-float(st["snr_db"]) / 20.0)
    return (x + sigma * rng.standard_normal(x.shape, dtype=np.float32)).astype(np.float32)


_APPLY: dict[str, Callable[[np.ndarray, int, Mapping[str, Any], int], np.ndarray]] = {
    "mic_response": _mic_response, "agc": _agc, "clip": _clip, "telephone": _telephone,
    "mulaw": _mulaw, "bitcrush": _bitcrush, "lowrate": _lowrate, "dc": _dc, "hum": _hum,
    "noise": _noise,
}


def _stage_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([int(seed), _SALT, index]).generate_state(1)[0])


def apply_device(audio: np.ndarray, sample_rate: int, device: Mapping[str, Any]) -> np.ndarray:
    """Run a device's stages on ``audio`` in order.

    Parameters
    ----------
    audio
        float32, shape ``(samples, channels)``; every channel goes through the same device
        (one microphone model), except that added noise is independent per channel.
    sample_rate
        Hz. Filter corners at or above 0.49 x ``sample_rate`` are skipped.
    device
        A mapping from :func:`draw_device` (validated here first).

    Returns
    -------
    numpy.ndarray
        float32, the shape of ``audio``, finite; a function of the arguments alone (stage
        ``i`` draws from a generator seeded by ``(device["seed"], i)``). Only a ``clip``
        stage clips; values above 1 may remain (the renderer limits peaks afterwards).

    Examples
    --------
    >>> import numpy as np
    >>> dev = {"model": "custom", "seed": 0, "stages": [{"kind": "dc", "offset": 0.1}]}
    >>> float(apply_device(np.zeros((4, 1), np.float32), 16000, dev)[0, 0])
    0.10000000149011612
    """
    validate_device(device)
    x = np.asarray(audio)
    if x.ndim != 2 or x.dtype != np.float32:
        raise AudioError(f"apply_device: audio must be float32 (samples, channels), got "
                        f"{x.dtype} {x.shape}")
    if x.shape[0] == 0:
        return x.copy()
    y = x.copy()
    for i, st in enumerate(device["stages"]):
        y = _APPLY[st["kind"]](y, int(sample_rate), st, _stage_seed(device["seed"], i))
        y = np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32, copy=False)
    return y
