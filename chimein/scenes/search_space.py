"""The declared, bounded search space of adversarial scenes, and the validity checks a scene
must pass to count as a fair attack.

A *point* of the space is a mapping ``{parameter name: value}``: a float inside its declared
``[low, high]`` (snapped to ``step`` when given) or one of a categorical parameter's
``choices``. :meth:`SearchSpace.build_scene` turns a point and a seed into a
:class:`~chimein.scenes.spec.SceneSpec`, a pure function of both: the point fixes the knobs,
the seed everything else (texts, voices, event instances, positions drawn from the room's
candidate grid).

Parameters (:data:`PARAMETERS`; a config declares any subset, the rest keep the sampler's
preset). Most set a :class:`~chimein.scenes.sampler.SamplerConfig` knob to a single value
(a range ``[v, v]``):

=====================  ===========  =====================================================================
name                   kind         what it sets
=====================  ===========  =====================================================================
family                 categorical  task family of the scene (addressed, pauses, proactive, ...)
room_length            float (m)    room length
room_width             float (m)    room width
rt60                   float (s)    reverberation time
snr_db                 float (dB)   diffuse noise SNR at mic 0 against the point-source mix
noise_kind             categorical  noise colour/kind (white, pink, brown, hvac, babble)
speech_level_db        float (dBFS) level of the user's speech
event_level_db         float (dBFS) level of sound events
distractor_level_db    float (dBFS) level of distractors (the sampler's and the injected one)
speech_rate            float (wpm)  espeak speaking rate of every talker
pause_s                float (s)    mid-turn pause length (family ``pauses``)
overlap                float        probability that a distractor overlaps a turn or an event
distractor_rate        float        probability of a leading distractor segment
lead_s                 float (s)    time before the first segment (how long a listener can adapt)
aug_lowpass_hz         float (Hz)   a low-pass filter at this cut-off (muffled microphone)
aug_noise_snr_db       float (dB)   white microphone self-noise at this SNR (AddGaussianSNR)
aug_gain_db            float (dB)   overall level change
target_distance_m      float (m)    horizontal distance from the microphones to the target source(s)
distractor_kind        categorical  an injected distractor: none, tv, tv_wake (TV speech saying the wake
                                    phrase), lookalike (a benign look-alike of the target sound), chitchat
distractor_offset_s    float (s)    onset of the injected distractor relative to the first action window
distractor_distance_m  float (m)    its horizontal distance from the microphones
=====================  ===========  =====================================================================

The last four are *perturbations* of the sampled scene: the target sources (those of the
action cues) are moved along their horizontal direction from the microphone centre to the
requested distance (clamped 0.3 m inside the walls; the realised distance is recorded in
``spec.meta["attack"]``), and the injected distractor is added with its own IGNORE cue (and, for
chit-chat, a bystander speech span), extending the scene if needed.

Validity (:func:`check_scene`): a scene that no listener could solve is not a fair attack.

- **windows**: every action cue's window is at least ``min_window_s`` long and starts no
  earlier than its stimulus (``onset_s``); the spec's own validation already guarantees
  ``0 <= start < end <= duration``.
- **audibility**: every action cue's sources reach ``audibility_floor_db`` of
  signal-to-interference-plus-noise ratio at microphone 0 (:func:`cue_snr_db`), measured on the
  rendered stems over the target's active frames: the target stem against the other point
  sources (distractors included) plus the diffuse noise and the microphone self-noise
  of ``AddGaussianSNR`` (at its worst SNR). Spectral augmentations (low-pass, gain) act on
  target and interference alike and are not counted.
- the oracle check (the oracle policy still earns the maximum) needs a policy run and lives in
  :mod:`chimein.eval.attack`.

Examples
--------
>>> space = SearchSpace.from_mapping({
...     "params": {"snr_db": {"type": "float", "low": 0, "high": 30, "step": 1},
...                "noise_kind": {"type": "categorical", "choices": ["pink", "babble"]}},
...     "base": {"family": "addressed", "difficulty": "easy"}})
>>> import numpy as np
>>> point = space.sample_prior(np.random.default_rng(0))
>>> sorted(point), space.validate_point(point) == point
(['noise_kind', 'snr_db'], True)
>>> spec = space.build_scene(point, seed=3)
>>> spec.meta["snr_db"] == point["snr_db"], spec.meta["noise"] == point["noise_kind"]
(True, True)
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from chimein.config import read_config, to_plain
from chimein.errors import ConfigError, SpecError
from chimein.scenes.spec import Annotations, Cue, SceneSpec, Source, Span, Vec3

__all__ = [
    "DISTRACTOR_KINDS",
    "PARAMETERS",
    "Constraints",
    "Param",
    "ParamInfo",
    "SearchSpace",
    "check_scene",
    "cue_snr_db",
]

DISTRACTOR_KINDS: tuple[str, ...] = ("none", "tv", "tv_wake", "lookalike", "chitchat")
_WALL_MARGIN = 0.3
_SALT = 0xA77AC  # separates the perturbation stream from the sampler's use of the scene seed


@dataclass(frozen=True)
class ParamInfo:
    """What a known parameter controls and the hard limits a declaration must respect."""

    kind: Literal["float", "categorical"]
    help: str
    limits: tuple[float, float] = (0.0, 0.0)
    universe: tuple[str, ...] = ()
    #: finest meaningful value step: the precision the sampler rounds the knob to (dims to cm,
    #: RT60 to ms, levels and SNR to 0.01 dB, espeak rates to whole words per minute), so a
    #: point's value is exactly what the scene realises
    resolution: float = 1e-3


def _universe_families() -> tuple[str, ...]:
    from chimein.scenes.sampler import FAMILIES

    return FAMILIES


def _universe_noise() -> tuple[str, ...]:
    from chimein.scenes.noise import NOISE_KINDS

    return tuple(NOISE_KINDS)


#: Every parameter a search space may declare (see the module notes).
PARAMETERS: dict[str, ParamInfo] = {
    "family": ParamInfo("categorical", "task family", universe=_universe_families()),
    "room_length": ParamInfo("float", "room length (m)", (2.0, 30.0), resolution=0.01),
    "room_width": ParamInfo("float", "room width (m)", (2.0, 30.0), resolution=0.01),
    "rt60": ParamInfo("float", "reverberation time (s)", (0.05, 2.0)),
    "snr_db": ParamInfo("float", "diffuse noise SNR at mic 0 (dB)", (-20.0, 80.0), resolution=0.01),
    "noise_kind": ParamInfo("categorical", "noise kind", universe=_universe_noise()),
    "speech_level_db": ParamInfo("float", "user speech level (dBFS)", (-60.0, 0.0), resolution=0.01),
    "event_level_db": ParamInfo("float", "event level (dBFS)", (-60.0, 0.0), resolution=0.01),
    "distractor_level_db": ParamInfo("float", "distractor level (dBFS)", (-60.0, 0.0), resolution=0.01),
    "speech_rate": ParamInfo("float", "speaking rate (words per minute)", (80.0, 450.0), resolution=1.0),
    "pause_s": ParamInfo("float", "mid-turn pause length (s)", (0.05, 5.0)),
    "overlap": ParamInfo("float", "probability of an overlapping distractor", (0.0, 1.0)),
    "distractor_rate": ParamInfo("float", "probability of a leading distractor segment", (0.0, 1.0)),
    "lead_s": ParamInfo("float", "time before the first segment (s)", (0.0, 30.0)),
    "aug_lowpass_hz": ParamInfo("float", "low-pass cut-off (Hz)", (200.0, 7900.0), resolution=1.0),
    "aug_noise_snr_db": ParamInfo("float", "microphone self-noise SNR (dB)", (-10.0, 80.0), resolution=0.01),
    "aug_gain_db": ParamInfo("float", "overall gain (dB)", (-40.0, 20.0), resolution=0.01),
    "target_distance_m": ParamInfo("float", "distance of the target source(s) to the mics (m)", (0.3, 20.0),
                                   resolution=0.01),
    "distractor_kind": ParamInfo("categorical", "injected distractor", universe=DISTRACTOR_KINDS),
    "distractor_offset_s": ParamInfo("float", "injected distractor onset vs the first action window (s)",
                                     (-15.0, 15.0)),
    "distractor_distance_m": ParamInfo("float", "distance of the injected distractor (m)", (0.3, 20.0),
                                       resolution=0.01),
}

#: Parameters that set a sampler range knob to ``[v, v]``.
_RANGE_KNOBS = ("room_length", "room_width", "rt60", "snr_db", "speech_level_db", "event_level_db",
                "distractor_level_db", "speech_rate", "pause_s", "lead_s")
#: Sampler knobs a parameter controls (the ``base`` config may not also set them).
_CONTROLS = {**{k: k for k in _RANGE_KNOBS}, "family": "family", "noise_kind": "noise_kinds",
             "overlap": "overlap", "distractor_rate": "distractor_rate", "aug_lowpass_hz": "augment",
             "aug_noise_snr_db": "augment", "aug_gain_db": "augment"}


# ============================================================================================
# Parameters
# ============================================================================================
@dataclass(frozen=True)
class _Declaration:
    """The keys a parameter declaration may have (:meth:`Param.from_mapping` checks them)."""

    type: str | None = None
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: Sequence[Any] | None = None


@dataclass(frozen=True)
class Param:
    """One declared parameter: a bounded float (optionally on a grid of ``step``) or a
    categorical choice. Floats map to the unit interval for search (:meth:`to_unit`,
    :meth:`from_unit`)."""

    name: str
    kind: Literal["float", "categorical"]
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    choices: tuple[str, ...] = ()
    resolution: float = 1e-3

    @classmethod
    def from_mapping(cls, name: str, d: Mapping[str, Any]) -> Param:
        """Validate a declaration such as ``{type: float, low: 0, high: 30, step: 1}``."""
        where = f"attack space: parameter '{name}'"
        if name not in PARAMETERS:
            raise ConfigError(f"{where}: unknown parameter; known parameters are {sorted(PARAMETERS)}")
        info = PARAMETERS[name]
        if not isinstance(to_plain(d), Mapping):
            raise ConfigError(f"{where}: expected a mapping like {{type: float, low: .., high: ..}}, got {d!r}")
        decl = read_config(_Declaration, d, where)
        d = {k: v for k, v in vars(decl).items() if v is not None}
        kind = d.get("type", info.kind)
        if kind != info.kind:
            raise ConfigError(f"{where}: field 'type': this parameter is {info.kind}, got {kind!r}")
        if kind == "categorical":
            choices = d.get("choices")
            if isinstance(choices, str) or not isinstance(choices, Sequence) or not choices:
                raise ConfigError(f"{where}: field 'choices': give a non-empty list from {list(info.universe)}")
            choices = tuple(str(c) for c in choices)
            bad = [c for c in choices if c not in info.universe]
            if bad or len(set(choices)) != len(choices):
                raise ConfigError(f"{where}: field 'choices': {bad or 'duplicates'} not allowed; use distinct "
                                f"values from {list(info.universe)}")
            return cls(name, "categorical", choices=choices)
        try:
            low, high = float(d["low"]), float(d["high"])
        except KeyError as e:
            raise ConfigError(f"{where}: field '{e.args[0]}' is missing") from None
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: fields 'low'/'high' must be numbers, got {d.get('low')!r}, "
                            f"{d.get('high')!r}") from None
        lo_lim, hi_lim = info.limits
        if not (math.isfinite(low) and math.isfinite(high) and lo_lim <= low < high <= hi_lim):
            raise ConfigError(f"{where}: need {lo_lim} <= low < high <= {hi_lim} ({info.help}), got "
                            f"[{low}, {high}]")
        if high - low < info.resolution:
            raise ConfigError(f"{where}: the range [{low}, {high}] is narrower than the parameter's "
                            f"resolution {info.resolution}; widen it or fix the value in 'base'")
        step = d.get("step")
        if step is not None:
            step = float(step)
            if not (math.isfinite(step) and info.resolution <= step <= high - low):
                raise ConfigError(f"{where}: field 'step': must be in [{info.resolution}, high - low], got {step}")
        return cls(name, "float", low, high, step, resolution=info.resolution)

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "categorical":
            return {"type": "categorical", "choices": list(self.choices)}
        return {"type": "float", "low": self.low, "high": self.high, "step": self.step}

    def snap(self, v: float) -> float:
        """Clip ``v`` to the bounds, round it to the grid (``low + k * step``), then to the
        parameter's resolution (staying inside the bounds)."""
        v = min(max(float(v), self.low), self.high)
        if self.step:
            k = round((v - self.low) / self.step)
            v = min(self.low + k * self.step, self.high)
        r = self.resolution
        q = round(v / r) * r
        if q < self.low - 1e-9:
            q = math.ceil(self.low / r - 1e-9) * r
        elif q > self.high + 1e-9:
            q = math.floor(self.high / r + 1e-9) * r
        return round(q, 6)

    def from_unit(self, z: float) -> float:
        """The value at ``z`` in [0, 1] (clipped) of the bounds, snapped to the grid."""
        return self.snap(self.low + min(max(float(z), 0.0), 1.0) * (self.high - self.low))

    def to_unit(self, v: float) -> float:
        return (float(v) - self.low) / (self.high - self.low)

    def check(self, v: Any) -> Any:
        """``v`` if it is a valid value of this parameter, else :class:`SpecError`."""
        where = f"attack point: parameter '{self.name}'"
        if self.kind == "categorical":
            if v not in self.choices:
                raise SpecError(f"{where}: {v!r} is not one of {list(self.choices)}")
            return v
        if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not math.isfinite(float(v)):
            raise SpecError(f"{where}: expected a finite number, got {v!r}")
        if not self.low - 1e-9 <= float(v) <= self.high + 1e-9:
            raise SpecError(f"{where}: {v} is outside [{self.low}, {self.high}]")
        return float(v)


# ============================================================================================
# Constraints
# ============================================================================================
@dataclass(frozen=True)
class Constraints:
    """Validity rules a candidate scene must pass (see the module notes).

    ``audibility_floor_db``: minimum SINR of every action cue's sources at mic 0 (dB);
    ``active_db``: frames of the target stem within this many dB of its loudest frame are
    where the SINR is measured; ``min_window_s``: minimum action-window length;
    ``oracle_tolerance``: how far below the maximum reward the oracle may land (float slack).
    """

    audibility_floor_db: float = 0.0
    active_db: float = -30.0
    min_window_s: float = 1.0
    oracle_tolerance: float = 1e-6

    def __post_init__(self) -> None:
        c = self
        if not -60.0 <= c.audibility_floor_db <= 60.0:
            raise ConfigError(f"attack constraints: field 'audibility_floor_db': must be in [-60, 60] dB, "
                              f"got {c.audibility_floor_db}")
        if not -80.0 <= c.active_db < 0.0:
            raise ConfigError(f"attack constraints: field 'active_db': must be in [-80, 0) dB, got {c.active_db}")
        if not 0.0 <= c.min_window_s <= 30.0:
            raise ConfigError(f"attack constraints: field 'min_window_s': must be in [0, 30] s, got "
                              f"{c.min_window_s}")
        if not 0.0 <= c.oracle_tolerance <= 1.0:
            raise ConfigError(f"attack constraints: field 'oracle_tolerance': must be in [0, 1], got "
                              f"{c.oracle_tolerance}")

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> Constraints:
        """Read the ``attack.space.constraints`` config (:func:`chimein.config.read_config`)."""
        return read_config(cls, d, "attack constraints")


def _stem(spec: SceneSpec, sources: Sequence[Source], cache: Any) -> np.ndarray:
    """Mic-0 signal of ``sources`` alone (no noise, no augmentation), float64."""
    from chimein.scenes.render import render

    bare = replace(spec, sources=tuple(sources), annotations=Annotations(), augment=())
    return render(bare, cache=cache).audio[:, 0].astype(np.float64)


def cue_snr_db(spec: SceneSpec, cache: Any = None, active_db: float = -30.0) -> dict[str, float]:
    """Signal-to-interference-plus-noise ratio (dB) of every action cue's sources at mic 0.

    The target stem (the cue's sources rendered alone) is compared, over its active 20 ms
    frames (power within ``active_db`` of its loudest frame), with everything else: the other
    point sources (the rest of the rendered mix), the diffuse noise (its power follows from the
    render's SNR rule: the point mix's active power over ``10 ** (snr_db / 10)``) and the
    ``AddGaussianSNR`` self-noise at its lowest SNR (relative to the whole signal's power).
    Cues without sources get ``inf`` (nothing to measure).

    Examples
    --------
    >>> from chimein.scenes.sampler import sample_scene
    >>> spec = sample_scene({"family": "addressed", "difficulty": "easy", "snr_db": [20, 20]}, seed=1)
    >>> snr = cue_snr_db(spec)
    >>> list(snr) == [c.id for c in spec.annotations.action_cues], 15 < snr["c0"] < 25
    (True, True)
    """
    from chimein.scenes.render import active_power

    sr = spec.sample_rate
    points = [s for s in spec.sources if s.kind != "noise"]
    cues = spec.annotations.action_cues
    if not points:
        return {c.id: (math.inf if not c.source_ids else -math.inf) for c in cues}
    full = _stem(spec, points, cache)
    p_noise = 0.0
    for s in spec.sources:
        if s.kind != "noise":
            continue
        if "snr_db" in s.audio:
            p_noise += active_power(full, sr) / 10.0 ** (float(s.audio["snr_db"]) / 10.0)
        else:
            p_noise += 10.0 ** (s.level_db / 10.0)
    p_aug = 0.0
    for a in spec.augment:
        if a.get("name") == "AddGaussianSNR" and float(a.get("p", 0.5)) > 0:
            worst = float(a.get("min_snr_db", a.get("max_snr_db", 40.0)))
            p_aug += (float(np.mean(np.square(full))) + p_noise) / 10.0 ** (worst / 10.0)
    hop = max(1, int(round(0.02 * sr)))
    out: dict[str, float] = {}
    for c in cues:
        tgt = [s for s in points if s.id in c.source_ids]
        if not tgt:
            out[c.id] = math.inf
            continue
        t = _stem(spec, tgt, cache)
        other = full - t
        n = -(-t.size // hop)
        pad = n * hop - t.size
        pt = np.pad(np.square(t), (0, pad)).reshape(n, hop).mean(axis=1)
        po = np.pad(np.square(other), (0, pad)).reshape(n, hop).mean(axis=1)
        if pt.max() <= 0.0:
            out[c.id] = -math.inf
            continue
        active = pt >= pt.max() * 10.0 ** (active_db / 10.0)
        interference = float(po[active].mean()) + p_noise + p_aug
        signal = float(pt[active].mean())
        out[c.id] = math.inf if interference <= 0.0 else round(10.0 * math.log10(signal / interference), 3)
    return out


def check_scene(spec: SceneSpec, constraints: Constraints | None = None, cache: Any = None
                ) -> tuple[list[str], dict[str, float]]:
    """The scene-only validity checks: ``(violations, per-cue SINR in dB)``.

    Violations are short strings ``"<rule>: <detail>"`` with rule ``window`` or
    ``audibility``; an empty list means the scene passes (the oracle check is separate).

    Examples
    --------
    >>> from chimein.scenes.sampler import sample_scene
    >>> spec = sample_scene({"family": "addressed", "difficulty": "easy", "snr_db": [-15, -15]}, seed=1)
    >>> bad, snr = check_scene(spec, Constraints(audibility_floor_db=0.0))
    >>> bad[0].startswith("audibility"), snr["c0"] < 0
    (True, True)
    """
    c = constraints or Constraints()
    bad: list[str] = []
    for cue in spec.annotations.action_cues:
        s, e = cue.window
        if e - s < c.min_window_s - 1e-9:
            bad.append(f"window: cue {cue.id} lasts {e - s:.2f} s < {c.min_window_s} s")
        if cue.onset_s is not None and s < cue.onset_s - 1e-6:
            bad.append(f"window: cue {cue.id} opens at {s:.2f} s before its stimulus ({cue.onset_s:.2f} s)")
    snr = cue_snr_db(spec, cache, c.active_db)
    for cid, v in snr.items():
        if v < c.audibility_floor_db:
            bad.append(f"audibility: cue {cid} at {v:.1f} dB < {c.audibility_floor_db} dB")
    return bad, snr


# ============================================================================================
# The space
# ============================================================================================
@dataclass(frozen=True)
class _SpaceConfig:
    """The keys of the ``attack.space`` config (:meth:`SearchSpace.from_mapping`)."""

    params: Mapping[str, Any] = field(default_factory=dict)
    base: Mapping[str, Any] = field(default_factory=dict)
    constraints: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class SearchSpace:
    """Declared parameters, fixed sampler settings (``base``) and validity constraints.

    Build it from the ``attack.space`` Hydra config with :meth:`from_mapping`:
    ``{"params": {name: declaration}, "base": {sampler knobs}, "constraints": {...}}``.
    """

    params: tuple[Param, ...]
    base: Mapping[str, Any] = field(default_factory=dict)
    constraints: Constraints = field(default_factory=Constraints)

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        if not names:
            raise ConfigError("attack space: declare at least one parameter under 'params'")
        if len(set(names)) != len(names):
            raise ConfigError(f"attack space: duplicate parameters in {names}")
        from chimein.scenes.sampler import SamplerConfig

        base = dict(self.base)
        clash = sorted({_CONTROLS[n] for n in names if n in _CONTROLS} & set(base))
        if clash:
            raise ConfigError(f"attack space: field 'base.{clash[0]}' is also set by a searched parameter; "
                            "remove it from base or from params")
        SamplerConfig.from_mapping(base)  # unknown knobs and bad ranges fail now
        object.__setattr__(self, "base", json.loads(json.dumps(base)))

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | SearchSpace) -> SearchSpace:
        """Validate a space config (plain or OmegaConf mapping); errors name the field."""
        if isinstance(d, SearchSpace):
            return d
        raw = read_config(_SpaceConfig, d, "attack space")
        return cls(tuple(Param.from_mapping(str(k), v) for k, v in raw.params.items()), dict(raw.base),
                   Constraints.from_mapping(raw.constraints))

    def to_dict(self) -> dict[str, Any]:
        return {"params": {p.name: p.to_dict() for p in self.params}, "base": dict(self.base),
                "constraints": dict(vars(self.constraints))}

    def fingerprint(self) -> str:
        """SHA-256 (16 hex digits) of the canonical config: what decides the scenes."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise ConfigError(f"attack space: no parameter {name!r}; declared: {list(self.names)}")

    # ---------------------------------------------------------------- points
    def sample_prior(self, rng: np.random.Generator) -> dict[str, Any]:
        """A point drawn from the prior: uniform over each float's bounds (then snapped) and
        over each categorical's choices. This is the "random scenes from the same space"."""
        out: dict[str, Any] = {}
        for p in self.params:
            if p.kind == "categorical":
                out[p.name] = p.choices[int(rng.integers(len(p.choices)))]
            else:
                out[p.name] = p.from_unit(float(rng.random()))
        return out

    def sample(self, rng: np.random.Generator, dist: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A point from ``dist`` -- independent Gaussians on each float's unit scale (``dist["mean"]``,
        ``dist["std"]``; clipped to the bounds, snapped) and categoricals (``dist["probs"]``),
        the form the adversarial search's distributions take -- or from the prior when ``dist``
        is None."""
        if dist is None:
            return self.sample_prior(rng)
        out: dict[str, Any] = {}
        try:
            for p in self.params:
                if p.kind == "categorical":
                    probs = np.asarray(dist["probs"][p.name], float)
                    out[p.name] = p.choices[int(rng.choice(len(p.choices), p=probs / probs.sum()))]
                else:
                    z = float(dist["mean"][p.name]) + float(dist["std"][p.name]) * float(rng.standard_normal())
                    out[p.name] = p.from_unit(z)
        except (KeyError, TypeError, ValueError) as e:
            raise SpecError(f"attack distribution: no usable entry for parameter {e}; it does not match the "
                            f"space {list(self.names)}") from None
        return out

    def validate_point(self, point: Mapping[str, Any]) -> dict[str, Any]:
        """The point with every declared parameter checked (missing or extra names raise)."""
        if not isinstance(point, Mapping):
            raise SpecError(f"attack point: expected a mapping of parameter values, got {type(point).__name__}")
        extra = sorted(set(point) - set(self.names))
        if extra:
            raise SpecError(f"attack point: parameter '{extra[0]}' is not in the space {list(self.names)}")
        missing = [n for n in self.names if n not in point]
        if missing:
            raise SpecError(f"attack point: parameter '{missing[0]}' is missing")
        return {p.name: p.check(point[p.name]) for p in self.params}

    def sampler_config(self, point: Mapping[str, Any]) -> dict[str, Any]:
        """The :class:`~chimein.scenes.sampler.SamplerConfig` mapping of ``point``: the base
        settings plus every sampler knob the point sets."""
        pt = self.validate_point(point)
        cfg = dict(self.base)
        for name in _RANGE_KNOBS:
            if name in pt:
                cfg[name] = [pt[name], pt[name]]
        if "family" in pt:
            cfg["family"] = pt["family"]
        if "noise_kind" in pt:
            cfg["noise_kinds"] = [pt["noise_kind"]]
        for name in ("overlap", "distractor_rate"):
            if name in pt:
                cfg[name] = pt[name]
        aug = []
        if "aug_lowpass_hz" in pt:
            f = pt["aug_lowpass_hz"]
            aug.append({"name": "LowPassFilter", "p": 1.0, "min_cutoff_freq": f, "max_cutoff_freq": f})
        if "aug_noise_snr_db" in pt:
            s = pt["aug_noise_snr_db"]
            aug.append({"name": "AddGaussianSNR", "p": 1.0, "min_snr_db": s, "max_snr_db": s})
        if "aug_gain_db" in pt:
            g = pt["aug_gain_db"]
            aug.append({"name": "Gain", "p": 1.0, "min_gain_db": g, "max_gain_db": g})
        if aug:
            cfg["augment"] = aug
        return cfg

    def build_scene(self, point: Mapping[str, Any], seed: int, scene_id: str | None = None) -> SceneSpec:
        """The scene of ``point`` and ``seed``: sampled with :meth:`sampler_config`, then
        perturbed (target distance, injected distractor). Pure: equal inputs, equal specs.

        ``spec.meta["attack"]`` records the point and the realised perturbations; the
        difficulty is ``"adversarial"``.
        """
        from chimein.scenes.sampler import sample_scene

        pt = self.validate_point(point)
        spec = sample_scene(self.sampler_config(pt), int(seed), scene_id=scene_id)
        rng = np.random.default_rng(np.random.SeedSequence([int(seed) % 2**64, _SALT]))
        record: dict[str, Any] = {"point": dict(pt), "space": self.fingerprint()}
        if "target_distance_m" in pt:
            spec, record["target_distance_m"] = _move_targets(spec, float(pt["target_distance_m"]))
        kind = pt.get("distractor_kind", "none")
        if kind != "none":
            spec = _inject(spec, kind, rng, pt, self.base)
        meta = {**dict(spec.meta), "attack": record}
        return replace(spec, difficulty="adversarial", meta=meta)


# ============================================================================================
# Perturbations
# ============================================================================================
def _ray_fit(room_dims: Vec3, c: Vec3, u: tuple[float, float], want: float, z: float) -> Vec3:
    """``c + d * u`` (horizontal) at height ``z`` with ``d <= want`` as large as fits inside
    the walls with a margin."""
    L, W, _ = room_dims
    d = want
    for coord, comp, size in ((c[0], u[0], L), (c[1], u[1], W)):
        if comp > 1e-12:
            d = min(d, (size - _WALL_MARGIN - coord) / comp)
        elif comp < -1e-12:
            d = min(d, (_WALL_MARGIN - coord) / comp)
    d = max(d, 0.0)
    return (round(c[0] + d * u[0], 3), round(c[1] + d * u[1], 3), round(z, 3))


def _direction(c: Vec3, p: Vec3) -> tuple[float, float]:
    dx, dy = p[0] - c[0], p[1] - c[1]
    r = math.hypot(dx, dy)
    return (1.0, 0.0) if r < 1e-9 else (dx / r, dy / r)


def _move_targets(spec: SceneSpec, distance: float) -> tuple[SceneSpec, float | None]:
    """Move every source sharing a position with an action cue's source to ``distance``
    (horizontal) from the microphone centre, along its current direction."""
    targets = {sid for c in spec.annotations.action_cues for sid in c.source_ids}
    pos = {s.position for s in spec.sources if s.id in targets and s.position is not None}
    if not pos:
        return spec, None
    c = spec.mics.center
    z_min = _WALL_MARGIN
    moved: dict[Vec3, Vec3] = {}
    for p in sorted(pos):
        z = min(max(p[2], z_min), spec.room.dims[2] - _WALL_MARGIN)
        moved[p] = _ray_fit(spec.room.dims, c, _direction(c, p), distance, z)
    sources = tuple(replace(s, position=moved[s.position]) if s.position in moved else s for s in spec.sources)
    realised = min(math.hypot(q[0] - c[0], q[1] - c[1]) for q in moved.values())
    return replace(spec, sources=sources), round(realised, 3)


def _anchor(spec: SceneSpec) -> float:
    acts = spec.annotations.action_cues
    if acts:
        return min(c.window[0] for c in acts)
    if spec.annotations.cues:
        return min(c.window[0] for c in spec.annotations.cues)
    onsets = [s.onset_s for s in spec.sources if s.kind != "noise"]
    return min(onsets) if onsets else 0.0


def _inject(spec: SceneSpec, kind: str, rng: np.random.Generator, pt: Mapping[str, Any],
            base: Mapping[str, Any]) -> SceneSpec:
    """Add one distractor of ``kind`` with its IGNORE cue (and span, for chit-chat)."""
    from chimein.scenes import templates
    from chimein.scenes.events import event_pool, get_event_class
    from chimein.scenes.speech import VOICES, synthesize

    onset = round(max(0.05, _anchor(spec) + float(pt.get("distractor_offset_s", 0.0))), 4)
    dist = float(pt.get("distractor_distance_m", 2.0))
    level = float(pt.get("distractor_level_db", -28.0))
    c = spec.mics.center
    a = float(rng.uniform(0.0, 2.0 * math.pi))
    z = min(1.2 if kind != "lookalike" else float(rng.uniform(0.3, 1.8)), spec.room.dims[2] - _WALL_MARGIN)
    position = _ray_fit(spec.room.dims, c, (math.cos(a), math.sin(a)), dist, z)
    cues = list(spec.annotations.cues)
    spans = list(spec.annotations.spans)
    if kind == "lookalike":
        targets = {str(s.audio.get("cls")) for c_ in spec.annotations.action_cues for s in spec.sources
                   if s.id in c_.source_ids and s.kind == "event"}
        # the sampler's pool (built-in classes; recorded ones only when base names their folder)
        pool = event_pool(base.get("recorded_sounds_dir"))
        names = sorted(n for n, ec in pool.items() if ec.decision == "IGNORE" and ec.lookalike_of in targets)
        if not names:
            names = sorted(n for n, ec in pool.items() if ec.decision == "IGNORE" and ec.lookalike_of)
        allowed = base.get("event_classes")
        if allowed:
            names = [n for n in names if n in allowed] or names
        ec = get_event_class(names[int(rng.integers(len(names)))])
        dur = round(float(rng.uniform(*ec.default_duration_s)), 3)
        src = Source(id="adv_ev0", kind="event", role="event", audio={"cls": ec.name, "seed": int(rng.integers(2**31))},
                     onset_s=onset, level_db=round(level, 2), position=position, duration_s=dur, label=ec.name)
        start, end, label = onset, onset + dur, f"look-alike {ec.name}"
    else:
        used = {str(s.audio.get("voice")) for s in spec.sources if s.kind == "speech"}
        voices = [v for v in VOICES if v not in used] or list(VOICES)
        voice = voices[int(rng.integers(len(voices)))]
        rate = int(round(float(rng.uniform(150.0, 190.0))))
        pitch = int(round(float(rng.uniform(35.0, 65.0))))
        if kind == "chitchat":
            text = templates.chitchat(rng).text
            role, sid, label = "bystander", "adv_bys0", "bystander chit-chat"
        else:
            text = templates.tv_line(rng, with_wake=kind == "tv_wake").text
            role, sid = "media", "adv_tv0"
            label = "tv speech with wake phrase" if kind == "tv_wake" else "tv speech"
        sp = synthesize(text, voice=voice, rate=rate, pitch=pitch, sample_rate=spec.sample_rate)
        src = Source(id=sid, kind="speech", role=role, audio={"text": text, "voice": voice, "rate": rate, "pitch": pitch},
                     onset_s=onset, level_db=round(level, 2), position=position, words=sp.words, label=text)
        start = onset + (sp.words[0].start_s if sp.words else 0.0)
        end = onset + (sp.words[-1].end_s if sp.words else sp.duration_s)
        if kind == "chitchat":
            spans.append(Span(round(start, 4), round(end, 4), "adv_bystander", "speech", False))
    cues.append(Cue("adv", "IGNORE", (round(start, 4), round(end, 4)), label, False, (src.id,), round(onset, 4)))
    duration = max(spec.duration_s, round(end + 0.5, 3))
    if src.duration_s is not None:
        duration = max(duration, round(src.onset_s + src.duration_s + 0.2, 3))
    sources = [replace(s, duration_s=duration) if s.kind == "noise" and s.duration_s == spec.duration_s else s
               for s in spec.sources]
    sources.insert(len([s for s in sources if s.kind != "noise"]), src)
    cues.sort(key=lambda c_: (c_.window[0], c_.id))
    cues = [replace(c_, id=f"c{i}") for i, c_ in enumerate(cues)]
    spans.sort(key=lambda s: (s.start_s, s.speaker))
    return replace(spec, duration_s=duration, sources=tuple(sources),
                   annotations=Annotations(cues=tuple(cues), spans=tuple(spans)))


# ============================================================================================
# Writing found scenes
# ============================================================================================
