"""Typed, validated, serialisable scene descriptions.

A :class:`SceneSpec` says everything needed to render a scene bit-identically: the room, the
listener's microphones, every source (what it plays, where, when, how loud) and the
**annotations** -- the ground-truth timeline that says when the assistant should respond,
intervene or stay quiet, and when the user is speaking (so that acting then is an interruption).

Specs round-trip through JSON and YAML (``to_dict`` / ``from_dict``, ``save`` / ``load``) and are
validated when built or loaded: a bad field raises :class:`SpecError` naming the file and field.
Loading is strict about types: a number field takes a JSON number (never ``true`` or a string
such as ``"6.6"``), an integer field an integer, a flag ``true`` or ``false``.

Examples
--------
>>> from chimein.scenes.spec import Room, Mics, SceneSpec, Annotations
>>> spec = SceneSpec(id="s0", seed=0, duration_s=2.0, room=Room(dims=(4.0, 3.0, 2.5), rt60=0.3),
...                  mics=Mics(positions=((2.0, 1.5, 1.2),)), sources=(), annotations=Annotations())
>>> SceneSpec.from_dict(spec.to_dict()) == spec
True
"""

from __future__ import annotations

import enum
import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from chimein.errors import ChimeinError, SpecError
from chimein.io import atomic_write_text, read_utf8

SPEC_VERSION = 1

Vec3 = tuple[float, float, float]




class Action(enum.IntEnum):
    """What the assistant does on one chunk: the env's ``Discrete(3)`` action space."""

    WAIT = 0
    RESPOND = 1
    INTERVENE = 2


#: What a cue expects. ``IGNORE`` marks a stimulus that needs no action (TV speech, benign
#: sounds): acting during it is a false alarm attributed to that cue.
Expected = Literal["RESPOND", "INTERVENE", "IGNORE"]
EXPECTED_VALUES: tuple[str, ...] = ("RESPOND", "INTERVENE", "IGNORE")

SourceKind = Literal["speech", "event", "noise", "file"]
SOURCE_KINDS: tuple[str, ...] = ("speech", "event", "noise", "file")

#: Who or what a source is, which decides how it is annotated.
SourceRole = Literal["user", "bystander", "media", "event", "noise"]
SOURCE_ROLES: tuple[str, ...] = ("user", "bystander", "media", "event", "noise")


def _err(where: str, fld: str, msg: str) -> SpecError:
    return SpecError(f"{where}: field '{fld}': {msg}")


def _not_number(value: Any) -> str:
    """Why ``value`` is refused where a number belongs (a bool or string is not one)."""
    if isinstance(value, bool):
        return f"true or false is not a number, got {value!r}"
    if isinstance(value, str):
        return f"a string is not a number, got {value!r}; write the number without quotes (YAML: 1.0e-3, not 1e-3)"
    return f"expected a number, got {value!r}"


def _finite(where: str, fld: str, value: Any) -> float:
    """A finite number (an int or a float; never a bool or a string), as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _err(where, fld, _not_number(value))
    v = float(value)
    if not math.isfinite(v):
        raise _err(where, fld, f"expected a finite number, got {value!r}")
    return v


def _int(where: str, fld: str, value: Any) -> int:
    """An integer (an integral float such as 3.0 too; never a bool or a string)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _err(where, fld, _not_number(value).replace("a number", "an integer"))
    if isinstance(value, numbers.Integral):
        return int(value)
    if not (math.isfinite(value) and value == int(value)):
        raise _err(where, fld, f"expected an integer, got {value!r}")
    return int(value)


def _bool(where: str, fld: str, value: Any) -> bool:
    """``true`` or ``false`` (never a string such as "false", nor 0/1)."""
    if not isinstance(value, bool):
        raise _err(where, fld, f"expected true or false, got {value!r}")
    return value


def _vec3(where: str, fld: str, value: Any) -> Vec3:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 3:
        raise _err(where, fld, f"expected [x, y, z] in metres, got {value!r}")
    x, y, z = (_finite(where, fld, v) for v in value)
    return (x, y, z)


# --------------------------------------------------------------------------------------------
# Room and microphones
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Room:
    """A shoebox room.

    Give either ``rt60`` (seconds; wall absorption and image-source order follow from Sabine's
    formula) or ``absorption`` (energy absorption coefficient of every wall, 0-1) with
    ``max_order``. ``ray_tracing`` turns on pyroomacoustics' hybrid simulator (slower, more
    realistic late reverberation; seeded from the scene seed).
    """

    dims: Vec3
    rt60: float | None = 0.4
    absorption: float | None = None
    max_order: int | None = None
    ray_tracing: bool = False

    def validate(self, where: str = "room") -> None:
        if any(d <= 0.5 or d > 100 for d in self.dims):
            raise _err(where, "dims", f"each dimension must be in (0.5, 100] m, got {self.dims}")
        if self.rt60 is None and self.absorption is None:
            raise _err(where, "rt60", "give rt60 (seconds) or absorption (0-1)")
        if self.rt60 is not None and not 0.0 < self.rt60 <= 3.0:
            raise _err(where, "rt60", f"must be in (0, 3] s, got {self.rt60}")
        if self.absorption is not None and not 0.0 < self.absorption <= 1.0:
            raise _err(where, "absorption", f"must be in (0, 1], got {self.absorption}")
        if self.max_order is not None and not 0 <= self.max_order <= 100:
            raise _err(where, "max_order", f"must be in [0, 100], got {self.max_order}")

    def contains(self, p: Vec3, margin: float = 0.0) -> bool:
        """Whether point ``p`` lies inside the room, at least ``margin`` metres from each wall."""
        return all(margin <= c <= d - margin for c, d in zip(p, self.dims, strict=True))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "room") -> Room:
        _no_unknown(d, cls, where)
        if "dims" not in d:
            raise _err(where, "dims", "missing; give [length, width, height] in metres")
        room = cls(
            dims=_vec3(where, "dims", d["dims"]),
            rt60=None if d.get("rt60", 0.4) is None else _finite(where, "rt60", d.get("rt60", 0.4)),
            absorption=None if d.get("absorption") is None else _finite(where, "absorption", d["absorption"]),
            max_order=None if d.get("max_order") is None else _int(where, "max_order", d["max_order"]),
            ray_tracing=_bool(where, "ray_tracing", d.get("ray_tracing", False)),
        )
        room.validate(where)
        return room


@dataclass(frozen=True)
class Mics:
    """The listener's microphones: absolute positions (metres), one row per channel.

    Build common array shapes with :meth:`array`. Channel 0 is the reference microphone.
    """

    positions: tuple[Vec3, ...]
    layout: str = "custom"

    @property
    def n(self) -> int:
        return len(self.positions)

    @property
    def center(self) -> Vec3:
        n = len(self.positions)
        return tuple(sum(p[i] for p in self.positions) / n for i in range(3))  # type: ignore[return-value]

    @classmethod
    def array(
        cls, center: Vec3, shape: str = "single", n: int = 1, spacing: float = 0.05
    ) -> Mics:
        """Microphones around ``center``: ``single``; ``linear`` (``n`` mics along x,
        ``spacing`` apart); ``circular`` (``n`` mics on a horizontal circle of radius
        ``spacing``), like the arrays of smart speakers."""
        cx, cy, cz = center
        if shape == "single":
            return cls(positions=((cx, cy, cz),), layout="single")
        if n < 1:
            raise SpecError(f"mics: field 'n': need at least one microphone, got {n}")
        if shape == "linear":
            off = (n - 1) * spacing / 2
            pos = tuple((cx - off + i * spacing, cy, cz) for i in range(n))
        elif shape == "circular":
            pos = tuple(
                (cx + spacing * math.cos(2 * math.pi * i / n), cy + spacing * math.sin(2 * math.pi * i / n), cz)
                for i in range(n)
            )
        else:
            raise SpecError(f"mics: field 'shape': unknown array shape {shape!r}; use single, linear or circular")
        return cls(positions=tuple((round(x, 6), round(y, 6), round(z, 6)) for x, y, z in pos), layout=f"{shape}{n}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "mics") -> Mics:
        _mapping(d, where)
        if "positions" not in d:
            if "shape" in d and "center" in d:
                return cls.array(_vec3(where, "center", d["center"]), str(d["shape"]), _int(where, "n", d.get("n", 1)),
                                 _finite(where, "spacing", d.get("spacing", 0.05)))
            raise _err(where, "positions", "missing; give a list of [x, y, z] or shape+center")
        pos = d["positions"]
        if not isinstance(pos, Sequence) or len(pos) == 0:
            raise _err(where, "positions", "need at least one microphone position")
        return cls(positions=tuple(_vec3(where, f"positions[{i}]", p) for i, p in enumerate(pos)),
                   layout=str(d.get("layout", "custom")))


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Word:
    """One synthesised word and its time (seconds from the source's onset)."""

    text: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Source:
    """One sound placed in the room.

    ``audio`` says how to produce the dry signal and depends on ``kind``:

    - ``speech``: ``{"text": str, "generator": "piper", "voice": "joe", "speaker": {...},
      "pauses": [...]}`` (see :func:`chimein.scenes.speech.realize`; without ``generator``:
      ``{"text", "voice": "en-us+f3", "rate": 175, "pitch": 50}``, espeak-ng as in v0);
    - ``event``: ``{"cls": "smoke_alarm", "seed": int, ...class parameters}`` (procedural);
    - ``noise``: ``{"color": "pink", "seed": int}`` (diffuse: added at every mic, no position);
    - ``file``: ``{"path": "relative/to/pack.wav", "pack": "/abs/pack/dir"}`` (a recording).

    ``level_db`` is the RMS level of the dry signal in dBFS before room rendering; ``onset_s``
    is when it starts in the scene; ``duration_s`` crops or loops it (``None``: natural length).
    """

    id: str
    kind: SourceKind
    role: SourceRole
    audio: Mapping[str, Any]
    onset_s: float
    level_db: float = -26.0
    position: Vec3 | None = None
    duration_s: float | None = None
    words: tuple[Word, ...] = ()
    label: str = ""
    path: tuple[Vec3, ...] | None = None
    speed_mps: float | None = None

    def validate(self, room: Room, where: str) -> None:
        if self.kind not in SOURCE_KINDS:
            raise _err(where, "kind", f"unknown source kind {self.kind!r}; use one of {SOURCE_KINDS}")
        if self.role not in SOURCE_ROLES:
            raise _err(where, "role", f"unknown role {self.role!r}; use one of {SOURCE_ROLES}")
        if self.onset_s < 0:
            raise _err(where, "onset_s", f"must be >= 0, got {self.onset_s}")
        if self.duration_s is not None and self.duration_s <= 0:
            raise _err(where, "duration_s", f"must be > 0, got {self.duration_s}")
        if not -100.0 <= self.level_db <= 6.0:
            raise _err(where, "level_db", f"must be in [-100, 6] dBFS, got {self.level_db}")
        if self.kind == "noise":
            if self.position is not None:
                raise _err(where, "position", "noise is diffuse; leave position empty")
        else:
            if self.position is None:
                raise _err(where, "position", "a point source needs [x, y, z]")
            if not room.contains(self.position, margin=0.0):
                raise _err(where, "position", f"{list(self.position)} is outside the room {list(room.dims)}; "
                           "move it inside (0 <= x,y,z <= dims)")
        if self.path is not None or self.speed_mps is not None:
            self._validate_path(room, where)
        if self.kind == "speech" and not str(self.audio.get("text", "")).strip():
            raise _err(where, "audio.text", "speech needs non-empty text")
        if self.kind == "event":
            if "cls" not in self.audio:
                raise _err(where, "audio.cls", "an event source needs its class name")
            from chimein.scenes.events import get_event_class

            try:
                get_event_class(str(self.audio["cls"]))
            except ChimeinError as e:
                raise _err(where, "audio.cls", str(e)) from None
        if self.kind == "file" and "path" not in self.audio:
            raise _err(where, "audio.path", "a file source needs a path")

    def _validate_path(self, room: Room, where: str) -> None:
        """A walking source: waypoints after ``position``, inside the room (0.3 m from the
        walls), at a walking speed (see :mod:`chimein.scenes.moving`)."""
        if self.path is None or self.speed_mps is None:
            raise _err(where, "path", "a walking source needs both 'path' (waypoints) and 'speed_mps'")
        if self.kind == "noise" or self.position is None:
            raise _err(where, "path", "only a point source with a position can walk")
        if not self.path:
            raise _err(where, "path", "list at least one waypoint [x, y, z]")
        for i, p in enumerate(self.path):
            if not room.contains(p, margin=0.3):
                raise _err(where, f"path[{i}]", f"{list(p)} is not inside the room {list(room.dims)} "
                           "with 0.3 m to spare; move the waypoint inside")
        if not 0.2 <= self.speed_mps <= 2.5:
            raise _err(where, "speed_mps", f"a walking speed in [0.2, 2.5] m/s, got {self.speed_mps}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str) -> Source:
        _no_unknown(d, cls, where)
        for req in ("id", "kind", "audio", "onset_s"):
            if req not in d:
                raise _err(where, req, "missing")
        if not isinstance(d["audio"], Mapping):
            raise _err(where, "audio", "expected a mapping describing the signal")
        return cls(
            id=str(d["id"]),
            kind=d["kind"],
            role=d.get("role", "event"),
            audio=dict(d["audio"]),
            onset_s=_finite(where, "onset_s", d["onset_s"]),
            level_db=_finite(where, "level_db", d.get("level_db", -26.0)),
            position=None if d.get("position") is None else _vec3(where, "position", d["position"]),
            duration_s=None if d.get("duration_s") is None else _finite(where, "duration_s", d["duration_s"]),
            words=tuple(Word(str(w["text"]), _finite(f"{where}.words[{i}]", "start_s", w["start_s"]),
                             _finite(f"{where}.words[{i}]", "end_s", w["end_s"])) for i, w in enumerate(d.get("words", ()))),
            label=str(d.get("label", "")),
            path=None if d.get("path") is None else tuple(
                _vec3(where, f"path[{i}]", p) for i, p in enumerate(_items(where, "path", d))),
            speed_mps=None if d.get("speed_mps") is None else _finite(where, "speed_mps", d["speed_mps"]),
        )


# --------------------------------------------------------------------------------------------
# Annotations
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cue:
    """A moment that calls for a decision.

    ``window`` is ``(start_s, end_s)``: for ``RESPOND``/``INTERVENE`` the first action of the
    right kind inside it is a hit (full credit within the reward's grace period after
    ``start_s``, decaying to ``end_s``); for ``IGNORE`` it is the span of a stimulus that needs
    no action, so acting inside it is a false alarm attributed to this cue.
    ``onset_s`` is when the stimulus itself began (for latency analyses).
    """

    id: str
    expected: Expected
    window: tuple[float, float]
    label: str
    safety_critical: bool = False
    source_ids: tuple[str, ...] = ()
    onset_s: float | None = None

    @property
    def start_s(self) -> float:
        return self.window[0]

    @property
    def end_s(self) -> float:
        return self.window[1]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str) -> Cue:
        _no_unknown(d, cls, where)
        exp = d.get("expected")
        if exp not in EXPECTED_VALUES:
            raise _err(where, "expected", f"got {exp!r}; use one of {EXPECTED_VALUES}")
        w = d.get("window")
        if not isinstance(w, Sequence) or len(w) != 2:
            raise _err(where, "window", f"expected [start_s, end_s], got {w!r}")
        return cls(
            id=str(d.get("id", "")),
            expected=exp,
            window=(_finite(where, "window[0]", w[0]), _finite(where, "window[1]", w[1])),
            label=str(d.get("label", "")),
            safety_critical=_bool(where, "safety_critical", d.get("safety_critical", False)),
            source_ids=tuple(str(s) for s in d.get("source_ids", ())),
            onset_s=None if d.get("onset_s") is None else _finite(where, "onset_s", d["onset_s"]),
        )


SPAN_KINDS: tuple[str, ...] = ("speech", "pause", "backchannel")
"""Kinds of :class:`Span`; acting inside any of them is an interruption."""


@dataclass(frozen=True)
class Span:
    """A stretch of time when someone in the room is talking (``kind="speech"``), pausing
    inside their turn (``kind="pause"``: a mid-turn pause), or backchannelling while someone
    else holds the floor (``kind="backchannel"``: "mm hmm", "yeah"). Acting during any of them is
    an interruption. ``addressed`` is true when the speech is directed at the assistant."""

    start_s: float
    end_s: float
    speaker: str
    kind: Literal["speech", "pause", "backchannel"] = "speech"
    addressed: bool = False

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str) -> Span:
        _no_unknown(d, cls, where)
        kind = d.get("kind", "speech")
        if kind not in SPAN_KINDS:
            raise _err(where, "kind", f"got {kind!r}; use one of {SPAN_KINDS}")
        return cls(
            start_s=_finite(where, "start_s", d.get("start_s")),
            end_s=_finite(where, "end_s", d.get("end_s")),
            speaker=str(d.get("speaker", "")),
            kind=kind,
            addressed=_bool(where, "addressed", d.get("addressed", False)),
        )


@dataclass(frozen=True)
class Annotations:
    """The ground-truth timeline of a scene: cues and the user's speaking/pausing spans."""

    cues: tuple[Cue, ...] = ()
    spans: tuple[Span, ...] = ()

    @property
    def action_cues(self) -> tuple[Cue, ...]:
        """Cues that expect an action (RESPOND or INTERVENE)."""
        return tuple(c for c in self.cues if c.expected != "IGNORE")

    def validate(self, duration_s: float, where: str = "annotations") -> None:
        for i, c in enumerate(self.cues):
            w = f"{where}.cues[{i}]"
            s, e = c.window
            if not (0.0 <= s < e):
                raise _err(w, "window", f"need 0 <= start_s < end_s, got {list(c.window)}")
            if e > duration_s + 1e-6:
                raise _err(w, "window", f"ends at {e:.3f} s, after the scene ({duration_s:.3f} s)")
        for i, sp in enumerate(self.spans):
            w = f"{where}.spans[{i}]"
            if not (0.0 <= sp.start_s < sp.end_s <= duration_s + 1e-6):
                raise _err(w, "start_s", f"need 0 <= start_s < end_s <= duration, got "
                           f"[{sp.start_s}, {sp.end_s}] for a {duration_s:.3f} s scene")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "annotations") -> Annotations:
        _no_unknown(d, cls, where)
        return cls(
            cues=tuple(Cue.from_dict(c, f"{where}.cues[{i}]") for i, c in enumerate(_items(where, "cues", d))),
            spans=tuple(Span.from_dict(s, f"{where}.spans[{i}]") for i, s in enumerate(_items(where, "spans", d))),
        )


# --------------------------------------------------------------------------------------------
# The scene
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SceneSpec:
    """Everything needed to render one scene and judge a policy on it.

    ``augment`` is an optional audiomentations chain description (see
    :mod:`chimein.scenes.augment`), applied after rendering and seeded from ``seed``.
    ``device`` is the optional device/channel model of the recording microphone (see
    :mod:`chimein.scenes.device`: frequency response, AGC, clipping, telephone band, codec,
    DC offset, hum), applied after the room and before ``augment``; absent: an ideal microphone
    (and no ``device`` key in the JSON, so specs written before devices are unchanged).
    ``loudspeaker`` is the optional assistant's loudspeaker ``{"position": [x, y, z], "level_db":
    dBFS}`` (see :mod:`chimein.scenes.loudspeaker`: where the env plays the assistant's replies
    when it hears its own echo); absent: a default position, and no key in the JSON.
    ``meta`` carries the sampler's provenance (family, difficulty, SNR, ...).
    """

    id: str
    seed: int
    duration_s: float
    room: Room
    mics: Mics
    sources: tuple[Source, ...]
    annotations: Annotations
    sample_rate: int = 16000
    family: str = "custom"
    difficulty: str = "default"
    augment: tuple[Mapping[str, Any], ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)
    version: int = SPEC_VERSION
    device: Mapping[str, Any] | None = None
    loudspeaker: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        self.validate()
        if self.loudspeaker is not None:  # one form, so a JSON round trip gives an equal spec
            from chimein.scenes.loudspeaker import canonical_loudspeaker

            object.__setattr__(self, "loudspeaker", canonical_loudspeaker(self.loudspeaker))

    def validate(self, where: str = "scene") -> None:
        if not self.duration_s > 0 or not math.isfinite(self.duration_s):
            raise _err(where, "duration_s", f"must be a positive number of seconds, got {self.duration_s}")
        if self.duration_s > 3600:
            raise _err(where, "duration_s", f"at most 3600 s, got {self.duration_s}")
        if self.sample_rate not in (8000, 16000, 22050, 24000, 32000, 44100, 48000):
            raise _err(where, "sample_rate", f"unsupported rate {self.sample_rate}; use 16000 (default)")
        self.room.validate(f"{where}.room")
        for i, p in enumerate(self.mics.positions):
            if not self.room.contains(p, margin=0.0):
                raise _err(f"{where}.mics", f"positions[{i}]", f"{list(p)} is outside the room {list(self.room.dims)}")
        ids = [s.id for s in self.sources]
        if len(set(ids)) != len(ids):
            raise _err(where, "sources", f"source ids must be unique, got {ids}")
        for i, s in enumerate(self.sources):
            s.validate(self.room, f"{where}.sources[{i}] ({s.id})")
            if s.onset_s >= self.duration_s:
                raise _err(f"{where}.sources[{i}] ({s.id})", "onset_s",
                           f"{s.onset_s} s is after the scene's end ({self.duration_s} s)")
        self.annotations.validate(self.duration_s, f"{where}.annotations")
        if self.device is not None:
            if not isinstance(self.device, Mapping):
                raise _err(where, "device", f"a device mapping (see chimein.scenes.device), got {self.device!r}")
            from chimein.scenes.device import validate_device

            validate_device(self.device, f"{where}.device")
        if self.loudspeaker is not None:
            from chimein.scenes.loudspeaker import validate_loudspeaker

            validate_loudspeaker(self.loudspeaker, self.room, self.mics, f"{where}.loudspeaker")
        for i, c in enumerate(self.annotations.cues):
            for sid in c.source_ids:
                if sid not in ids:
                    raise _err(f"{where}.annotations.cues[{i}]", "source_ids", f"unknown source {sid!r}")

    # ---------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d.get("device") is None:  # an ideal microphone: specs without devices are unchanged
            d.pop("device", None)
        if d.get("loudspeaker") is None:  # no loudspeaker: specs written before it are unchanged
            d.pop("loudspeaker", None)
        for src in d["sources"]:  # a standing source: specs without walking talkers are unchanged
            for k in ("path", "speed_mps"):
                if src.get(k) is None:
                    src.pop(k, None)
        return _plain(d)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "scene") -> SceneSpec:
        _no_unknown(d, cls, where)
        for req in ("id", "duration_s", "room", "mics"):
            if req not in d:
                raise _err(where, req, "missing")
        version = _int(where, "version", d.get("version", SPEC_VERSION))
        if version > SPEC_VERSION:
            raise _err(where, "version", f"spec version {version} is newer than this chimein ({SPEC_VERSION}); upgrade chimein")
        try:
            return cls(
                id=str(d["id"]),
                seed=_int(where, "seed", d.get("seed", 0)),
                duration_s=_finite(where, "duration_s", d["duration_s"]),
                room=Room.from_dict(d["room"], f"{where}.room"),
                mics=Mics.from_dict(d["mics"], f"{where}.mics"),
                sources=tuple(Source.from_dict(s, f"{where}.sources[{i}]") for i, s in enumerate(d.get("sources", ()))),
                annotations=Annotations.from_dict(d.get("annotations", {}), f"{where}.annotations"),
                sample_rate=_int(where, "sample_rate", d.get("sample_rate", 16000)),
                family=str(d.get("family", "custom")),
                difficulty=str(d.get("difficulty", "default")),
                augment=tuple(dict(a) for a in d.get("augment", ())),
                meta=dict(d.get("meta", {})),
                version=version,
                device=None if d.get("device") is None else _device_mapping(where, d["device"]),
                loudspeaker=d.get("loudspeaker"),
            )
        except ChimeinError:
            raise
        except (TypeError, KeyError, ValueError) as e:  # malformed nested values
            raise SpecError(f"{where}: malformed spec: {e}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    def save(self, path: str | Path) -> None:
        """Write as JSON (``.json``) or YAML (``.yaml``/``.yml``), atomically."""
        p = Path(path)
        if p.suffix in (".yaml", ".yml"):
            import yaml

            atomic_write_text(p, yaml.safe_dump(self.to_dict(), sort_keys=True))
        else:
            atomic_write_text(p, self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> SceneSpec:
        """Read and validate a JSON or YAML spec; errors name the file and the field."""
        p = Path(path)
        if not p.is_file():
            raise SpecError(f"{p}: scene spec not found")
        text = read_utf8(p, "the spec")
        try:
            if p.suffix in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except Exception as e:  # json.JSONDecodeError, yaml.YAMLError
            raise SpecError(f"{p}: not valid {'YAML' if p.suffix in ('.yaml', '.yml') else 'JSON'}: {e}") from None
        try:  # a spec is JSON: YAML's dates, binary, sets and self-referencing anchors are not
            json.dumps(data, allow_nan=True)
        except (TypeError, ValueError, RecursionError) as e:
            raise SpecError(f"{p}: holds a value JSON cannot represent ({e}); write plain numbers, "
                            "strings, lists and mappings (quote dates)") from None
        try:
            return cls.from_dict(data, where=str(p))
        except ChimeinError as e:
            msg = str(e)
            raise SpecError(msg if msg.startswith(str(p)) else f"{p}: {msg}") from None


def _device_mapping(where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _err(where, "device", f"a device mapping (see chimein.scenes.device), got {value!r}")
    return json.loads(json.dumps(value))  # a plain, independent copy


def _plain(x: Any) -> Any:
    """Tuples to lists, mappings to dicts, recursively (JSON-ready)."""
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, enum.Enum):
        return x.value
    return x


def _mapping(d: Any, where: str) -> None:
    """``d`` is a mapping (a JSON object), or an error naming where it was found."""
    if not isinstance(d, Mapping):
        raise SpecError(f"{where}: expected a mapping (JSON object), got {type(d).__name__}")


def _no_unknown(d: Mapping[str, Any], cls: type, where: str) -> None:
    """``d`` is a mapping with only ``cls``'s fields (the first check of every ``from_dict``)."""
    _mapping(d, where)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise _err(where, unknown[0], f"unknown field; known fields are {sorted(known)}")


def _items(where: str, fld: str, d: Mapping[str, Any]) -> list[Any]:
    """The list ``d[fld]`` (absent: empty); anything else is an error naming the field."""
    v = d.get(fld, ())
    if not isinstance(v, (list, tuple)):
        raise _err(where, fld, f"expected a list, got {type(v).__name__}")
    return list(v)
