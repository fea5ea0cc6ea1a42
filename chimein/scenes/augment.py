"""Seeded audiomentations chains applied to rendered scenes.

A scene's ``augment`` field lists transforms as mappings, e.g.
``[{"name": "AddGaussianSNR", "p": 0.5, "min_snr_db": 10, "max_snr_db": 30}]``. Only a
whitelist (:data:`TRANSFORMS`) is accepted: transforms that keep the length and timing of the
audio, so the scene's annotations stay true.

Determinism: audiomentations draws from the global :mod:`random` and :data:`numpy.random`
(REFERENCE.md), so the chain seeds both from the scene seed right before applying and restores
their previous states afterwards (under a lock), so nothing else in the process is disturbed
and the same scene gives the same output in any process.

Multi-channel audio is passed to audiomentations as ``(channels, samples)``: each transform
draws its random parameters once per call, so every channel gets the same gain, cutoff, SNR or
pitch shift (noise samples themselves differ per channel).

Examples
--------
>>> import numpy as np
>>> chain = build_chain([{"name": "Gain", "p": 1.0, "min_gain_db": -6, "max_gain_db": -6}])
>>> x = np.full((4, 2), 0.5, dtype=np.float32)
>>> [round(float(v), 3) for v in chain(x, 16000, 7)[0]]
[0.251, 0.251]
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from chimein.errors import SpecError

__all__ = ["TRANSFORMS", "build_chain", "chain_seed"]

#: Accepted transform names and what they model.
TRANSFORMS: dict[str, str] = {
    "AddGaussianSNR": "microphone self-noise at a random SNR",
    "Gain": "a random overall level change",
    "LowPassFilter": "a muffled (cheap or covered) microphone",
    "HighPassFilter": "a small speaker/microphone without bass",
    "BandPassFilter": "telephone-like band limits",
    "TanhDistortion": "soft clipping of an overdriven input stage",
    "ClippingDistortion": "hard clipping of a saturated ADC",
    "PitchShift": "pitch variation without timing change",
    "Mp3Compression": "lossy codec artefacts (needs fast-mp3-augment, lameenc or pydub)",
}

_MP3_BACKENDS = {"fast-mp3-augment": "fast_mp3_augment", "lameenc": "lameenc", "pydub": "pydub"}
RNG_LOCK = threading.Lock()  # the global RNGs are shared by every thread of the process
_SALT = 0x61756720  # separates the augment stream from other users of the scene seed

Chain = Callable[[np.ndarray, int, int], np.ndarray]


def chain_seed(seed: int) -> int:
    """The 32-bit seed given to ``random`` and ``np.random`` for a scene seed."""
    return int(np.random.SeedSequence([int(seed) % 2**64, _SALT]).generate_state(1)[0])


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _make(i: int, entry: Mapping[str, Any]) -> Any:
    where = f"augment[{i}]"
    if not isinstance(entry, Mapping):
        raise SpecError(f"{where}: expected a mapping like {{'name': 'Gain', 'p': 0.5}}, got {entry!r}")
    name = entry.get("name")
    if name not in TRANSFORMS:
        raise SpecError(f"{where}: field 'name': unknown or unsupported transform {name!r}; "
                        f"use one of {sorted(TRANSFORMS)}")
    params = {str(k): v for k, v in entry.items() if k != "name"}
    if name == "Mp3Compression":
        backend = params.get("backend", "fast-mp3-augment")
        module = _MP3_BACKENDS.get(str(backend))
        if module is None or not _importable(module):
            raise SpecError(f"{where} (Mp3Compression): backend {backend!r} is not installed; "
                            f"install one of {sorted(_MP3_BACKENDS)} or drop this entry")
    import audiomentations

    try:
        return getattr(audiomentations, name)(**params)
    except (TypeError, ValueError, AssertionError) as e:
        raise SpecError(f"{where} ({name}): bad parameters {params}: {e}") from None


def build_chain(augment: Sequence[Mapping[str, Any]]) -> Chain:
    """Build the chain described by ``augment``; validate every entry now.

    Parameters
    ----------
    augment : sequence of mappings
        Each has ``name`` (one of :data:`TRANSFORMS`) and that transform's keyword arguments
        (``p``, ``min_snr_db``, ...). Empty: the identity.

    Returns
    -------
    callable
        ``chain(audio, sample_rate, seed) -> audio``: ``audio`` is float32 ``(samples,
        channels)``; the result has the same shape and dtype. ``seed`` is the scene seed.

    Raises
    ------
    SpecError
        Unknown name, bad parameters (naming the entry), or a missing optional backend.

    Examples
    --------
    >>> import numpy as np, random
    >>> chain = build_chain([{"name": "AddGaussianSNR", "p": 1.0, "min_snr_db": 20,
    ...                       "max_snr_db": 20}])
    >>> x = np.sin(np.linspace(0, 100, 16000, dtype=np.float32))[:, None]
    >>> state = random.getstate()
    >>> bool((chain(x, 16000, 3) == chain(x, 16000, 3)).all()), random.getstate() == state
    (True, True)
    """
    if isinstance(augment, (Mapping, str)):
        raise SpecError("augment: expected a list of transforms like [{'name': 'Gain', 'p': 0.5}]")
    entries = list(augment)
    transforms = [_make(i, e) for i, e in enumerate(entries)]

    def chain(audio: np.ndarray, sample_rate: int, seed: int) -> np.ndarray:
        x = np.asarray(audio)
        if x.ndim != 2:
            raise SpecError(f"augment: expected audio shaped (samples, channels), got {x.shape}")
        if not transforms:
            return x
        n, ch = x.shape
        y = np.ascontiguousarray(x.T, dtype=np.float32)
        y = y[0] if ch == 1 else y
        s = chain_seed(seed)
        with RNG_LOCK:
            py_state, np_state = random.getstate(), np.random.get_state()
            try:
                random.seed(s)
                np.random.seed(s)
                for i, t in enumerate(transforms):
                    try:
                        y = _apply(t, y, sample_rate, ch)
                    except Exception as e:  # a parameter only checkable against the audio
                        raise SpecError(f"augment[{i}] ({type(t).__name__}): failed on "
                                        f"{ch}-channel audio at {sample_rate} Hz: {e}") from None
                    y = _fix_length(y, n)
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)
        out = y[:, None] if ch == 1 else y.T
        return np.ascontiguousarray(out, dtype=np.float32)

    return chain


def _apply(t: Any, y: np.ndarray, sample_rate: int, ch: int) -> np.ndarray:
    """Apply one transform; PitchShift's default engine (signalsmith) takes at most two
    channels, so larger arrays are shifted channel by channel with one draw of parameters."""
    if type(t).__name__ == "PitchShift" and ch > 2 and t.method == "signalsmith_stretch":
        t.randomize_parameters(y, sample_rate)
        if not t.parameters["should_apply"]:
            return y
        return np.stack([np.asarray(t.apply(np.ascontiguousarray(y[c]), sample_rate),
                                    dtype=np.float32) for c in range(ch)])
    return np.asarray(t(samples=y, sample_rate=sample_rate), dtype=np.float32)


def _fix_length(y: np.ndarray, n: int) -> np.ndarray:
    """Crop or zero-pad the last axis to ``n`` samples (a codec may add a few)."""
    m = y.shape[-1]
    if m == n:
        return y
    if m > n:
        return np.ascontiguousarray(y[..., :n])
    pad = [(0, 0)] * (y.ndim - 1) + [(0, n - m)]
    return np.pad(y, pad)
