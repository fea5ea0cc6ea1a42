"""The assistant's loudspeaker in a scene: where the assistant's replies come from.

A smart speaker hears itself: when the assistant answers, its reply leaves a loudspeaker a few
centimetres from the microphones. A scene spec may say where that loudspeaker is, as a plain
mapping (like ``device``)::

    {"position": [x, y, z], "level_db": -26.0}

``position`` in metres, inside the room and at least :data:`MIN_MIC_DISTANCE_M` from every
microphone; ``level_db`` the RMS level (dBFS) of the dry replies before the room, like a source's
``level_db`` (default :data:`DEFAULT_LEVEL_DB`).

- :func:`validate_loudspeaker` checks one (a :class:`~chimein.errors.SpecError` names the field),
  :func:`canonical_loudspeaker` is the form a spec keeps;
- :func:`draw_loudspeaker` places one like a smart speaker's (the sampler's ``loudspeaker_rate``);
- :func:`default_loudspeaker` is where a scene without one has it, so any scene can be played
  with the assistant's echo; :func:`loudspeaker_of` gives a scene's either way.

How the replies sound at the microphones is :mod:`chimein.scenes.echo`. This module imports no
other scene module, because :mod:`chimein.scenes.spec` validates with it.

Examples
--------
>>> from chimein.scenes.spec import Mics, Room
>>> room, mics = Room(dims=(4.0, 3.0, 2.5)), Mics(((2.0, 1.5, 1.2),))
>>> default_loudspeaker(room, mics)
(2.0, 1.5, 1.1)
>>> draw_loudspeaker(7, room, mics, (0.05, 0.15), (-26.0, -26.0))["level_db"]
-26.0
"""

from __future__ import annotations

import json
import math
import numbers
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from chimein.errors import SpecError

__all__ = [
    "DEFAULT_DISTANCE_M",
    "DEFAULT_LEVEL_DB",
    "LEVEL_RANGE_DB",
    "MIN_MIC_DISTANCE_M",
    "STREAM",
    "Loudspeaker",
    "canonical_loudspeaker",
    "default_loudspeaker",
    "draw_loudspeaker",
    "loudspeaker_of",
    "validate_loudspeaker",
]

Vec3 = tuple[float, float, float]

DEFAULT_LEVEL_DB = -26.0
"""Level (dBFS RMS of the dry replies) of a loudspeaker that names none: a source's default level."""
LEVEL_RANGE_DB = (-60.0, 0.0)
"""Allowed ``level_db``."""
DEFAULT_DISTANCE_M = 0.10
"""Distance of :func:`default_loudspeaker` from the microphone array's centre."""
MIN_MIC_DISTANCE_M = 0.01
"""A loudspeaker closer than this to a microphone is refused (the direct path diverges)."""
CLEAR_M = 0.02
"""What placement keeps between the loudspeaker and the walls and microphones."""
STREAM = 0x10D5
"""Tag of the loudspeaker's seed streams (never shared with another draw of a scene)."""

_KEYS = ("position", "level_db")


@dataclass(frozen=True)
class Loudspeaker:
    """A scene's loudspeaker: position (metres) and dry level of the replies (dBFS RMS)."""

    position: Vec3
    level_db: float = DEFAULT_LEVEL_DB


def _err(where: str, fld: str, msg: str) -> SpecError:
    return SpecError(f"{where}: field '{fld}': {msg}")


def _number(where: str, fld: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise _err(where, fld, f"expected a finite number, got {value!r}")
    return float(value)


def validate_loudspeaker(value: Any, room: Any, mics: Any, where: str = "loudspeaker") -> None:
    """Check a spec's ``loudspeaker`` mapping against its room and microphones.

    ``position`` (required) must lie inside the room and at least :data:`MIN_MIC_DISTANCE_M`
    from every microphone; ``level_db`` (optional) in [-60, 0] dBFS.

    Raises
    ------
    SpecError
        Naming the field, e.g. ``loudspeaker: field 'position': [2.0, 1.5, 2.6] is outside the
        room [4.0, 3.0, 2.5]; move it inside (0 <= x,y,z <= dims)``.
    """
    if not isinstance(value, Mapping):
        raise SpecError(f"{where}: expected a mapping {{position: [x, y, z], level_db: dBFS}}, got {value!r}")
    unknown = sorted(set(value) - set(_KEYS))
    if unknown:
        raise _err(where, unknown[0], f"unknown field; known fields are {list(_KEYS)}")
    if "position" not in value:
        raise _err(where, "position", "missing; give the loudspeaker's [x, y, z] in metres")
    pos = value["position"]
    if not isinstance(pos, Sequence) or isinstance(pos, str) or len(pos) != 3:
        raise _err(where, "position", f"expected [x, y, z] in metres, got {pos!r}")
    p = tuple(_number(where, "position", v) for v in pos)
    if not room.contains(p):
        raise _err(where, "position", f"{list(p)} is outside the room {list(room.dims)}; move it inside "
                   "(0 <= x,y,z <= dims)")
    for i, m in enumerate(mics.positions):
        if math.dist(p, m) < MIN_MIC_DISTANCE_M:
            raise _err(where, "position", f"{list(p)} is {math.dist(p, m) * 100:.2g} cm from microphone {i}; "
                       f"keep at least {MIN_MIC_DISTANCE_M * 100:g} cm between them")
    lvl = _number(where, "level_db", value.get("level_db", DEFAULT_LEVEL_DB))
    if not LEVEL_RANGE_DB[0] <= lvl <= LEVEL_RANGE_DB[1]:
        raise _err(where, "level_db", f"must be in [{LEVEL_RANGE_DB[0]:g}, {LEVEL_RANGE_DB[1]:g}] dBFS, got {lvl}")


def canonical_loudspeaker(value: Mapping[str, Any]) -> dict[str, Any]:
    """The one form a spec keeps (plain floats, ``level_db`` filled in), so a JSON round trip
    gives an equal spec. ``value`` must have been validated."""
    x, y, z = (float(v) for v in value["position"])
    return {"position": [x, y, z], "level_db": float(value.get("level_db", DEFAULT_LEVEL_DB))}


def _clear(p: Vec3, room: Any, mics: Any) -> bool:
    return bool(room.contains(p, CLEAR_M)) and all(math.dist(p, m) >= CLEAR_M for m in mics.positions)


def _r3(p: Sequence[float]) -> Vec3:
    return (round(float(p[0]), 3), round(float(p[1]), 3), round(float(p[2]), 3))


def default_loudspeaker(room: Any, mics: Any) -> Vec3:
    """Where a scene without a ``loudspeaker`` has it: :data:`DEFAULT_DISTANCE_M` (10 cm) below
    the microphone array's centre, where a smart speaker's driver sits under its microphones.

    When that point is not inside the room with 2 cm to spare, or is within 2 cm of a
    microphone: 10 cm from the centre horizontally toward the room's centre, then along -x, +x,
    -y, +y, up (the first that is clear); if none is (microphones in a corner), the first of
    these points that is clear once moved inside the room, 2 cm from the walls. Rounded to 1 mm.

    Raises
    ------
    SpecError
        No clear point near the microphones (a room too small for them).
    """
    c = mics.center
    d = DEFAULT_DISTANCE_M
    dx, dy = room.dims[0] / 2 - c[0], room.dims[1] / 2 - c[1]
    norm = math.hypot(dx, dy)
    dirs = [(0.0, 0.0, -1.0)]
    if norm > 1e-9:
        dirs.append((dx / norm, dy / norm, 0.0))
    dirs += [(-1.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)]
    points = [[c[i] + d * u[i] for i in range(3)] for u in dirs]
    for q in points:
        p = _r3(q)
        if _clear(p, room, mics):
            return p
    for q in points:  # microphones in a corner: the same points moved inside the room
        p = _r3([min(max(q[i], CLEAR_M), room.dims[i] - CLEAR_M) for i in range(3)])
        if _clear(p, room, mics):
            return p
    raise SpecError(f"loudspeaker: no place 2 cm clear of the walls and microphones near {list(c)} in the room "
                    f"{list(room.dims)}; give the scene a 'loudspeaker' position")


def _room_seed(room: Any, mics: Any) -> int:
    doc = json.dumps({"dims": [float(v) for v in room.dims], "rt60": room.rt60, "absorption": room.absorption,
                      "mics": [[float(v) for v in p] for p in mics.positions]}, sort_keys=True)
    return zlib.crc32(doc.encode("utf-8"))


def draw_loudspeaker(seed: int, room: Any, mics: Any, distance_m: Sequence[float],
                     level_db: Sequence[float]) -> dict[str, Any]:
    """Place a scene's loudspeaker like a smart speaker's.

    ``distance_m`` (a ``[low, high]`` range) from the microphone array's centre, below it
    (30-90 degrees under the horizontal, any azimuth), inside the room and 2 cm clear of the
    walls and microphones (:func:`default_loudspeaker` when 100 tries find no such point); the
    level from the range ``level_db``.

    The position comes from a stream seeded by the room and microphones alone, so the scenes of
    a pooled room (``room_pool``) share the loudspeaker and its cached RIRs (a device stays where
    it stands); the level comes from a stream of the scene ``seed``. Neither touches the
    sampler's own generator, so drawing a loudspeaker shifts no other draw of the scene.

    Returns the spec mapping (:func:`canonical_loudspeaker` form).
    """
    prng = np.random.default_rng(np.random.SeedSequence([_room_seed(room, mics), STREAM]))
    c = mics.center
    lo, hi = float(distance_m[0]), float(distance_m[1])
    pos = None
    for _ in range(100):
        d = prng.uniform(lo, hi)
        az = prng.uniform(0.0, 2.0 * math.pi)
        el = prng.uniform(math.pi / 6, math.pi / 2)
        p = _r3((c[0] + d * math.cos(el) * math.cos(az), c[1] + d * math.cos(el) * math.sin(az),
                 c[2] - d * math.sin(el)))
        if _clear(p, room, mics):
            pos = p
            break
    if pos is None:
        pos = default_loudspeaker(room, mics)
    lrng = np.random.default_rng(np.random.SeedSequence([int(seed) % 2**64, STREAM]))
    level = round(float(lrng.uniform(float(level_db[0]), float(level_db[1]))), 2)
    return canonical_loudspeaker({"position": list(pos), "level_db": level})


def loudspeaker_of(spec: Any) -> Loudspeaker:
    """The scene's loudspeaker: its spec's, else :func:`default_loudspeaker` at
    :data:`DEFAULT_LEVEL_DB`."""
    ls = spec.loudspeaker
    if ls is None:
        return Loudspeaker(default_loudspeaker(spec.room, spec.mics), DEFAULT_LEVEL_DB)
    x, y, z = (float(v) for v in ls["position"])
    return Loudspeaker((x, y, z), float(ls.get("level_db", DEFAULT_LEVEL_DB)))
