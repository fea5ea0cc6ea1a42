"""Recorded event classes (``fd_*``) from a folder of sound-theme files, loaded only on request.

Debian's ``sound-theme-freedesktop`` puts a few useful recordings (an alarm clock, a phone, a
bell, notification sounds) in :data:`FREEDESKTOP_DIR`. Nothing is registered at import: a
machine that has the theme installed builds the same built-in scenes as one that has not.
A scenes config asks for the recordings with ``recorded_sounds_dir: /usr/share/sounds/
freedesktop/stereo`` (any folder with files of the same stems works, which is how the tests
simulate an installed theme); :func:`register_recorded_classes` is the loader it calls.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Final, Literal

import numpy as np

import chimein.scenes.events.dsp as dsp
from chimein.scenes.events.registry import DOMAINS, EventClass, Synth, register_event_class

#: Where Debian's sound-theme-freedesktop puts its Ogg files (a value for
#: ``recorded_sounds_dir``; never read unless a config names it).
FREEDESKTOP_DIR = Path("/usr/share/sounds/freedesktop/stereo")

#: File extensions tried for each stem, in order (the theme ships ``.oga``).
RECORDED_EXTENSIONS: tuple[str, ...] = (".oga", ".ogg", ".wav", ".flac")

_DL, _EQ = DOMAINS[0], DOMAINS[1]
_I: Final = "INTERVENE"
_G: Final = "IGNORE"

#: file stem -> (class name, domain, subcategory, decision, description, lookalike_of)
_RECORDED: dict[str, tuple[str, str, str, Literal["INTERVENE", "IGNORE"], str, str | None]] = {
    "alarm-clock-elapsed": (
        "fd_alarm_clock",
        _DL,
        "Daily Affairs",
        _I,
        "an alarm clock going off",
        None,
    ),
    "phone-incoming-call": (
        "fd_phone_incoming_call",
        _DL,
        "Daily Affairs",
        _I,
        "a phone ringing",
        None,
    ),
    "bell": ("fd_bell", _DL, "Daily Affairs", _I, "a bell rung for attention", None),
    "complete": (
        "fd_complete",
        _EQ,
        "House Equipment States",
        _G,
        "a computer's task-complete sound",
        "microwave_done",
    ),
    "message-new-instant": (
        "fd_message_new_instant",
        _EQ,
        "House Equipment States",
        _G,
        "a chat-message notification",
        "phone_ring",
    ),
}


@functools.lru_cache(maxsize=32)
def _load_recording(path: str, sr: int) -> np.ndarray:
    from chimein.scenes.audio import load_audio

    x = load_audio(path, sr)
    x.setflags(write=False)
    return x


def _recorded_synth(path: Path) -> Synth:
    def synth(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
        n = dsp.ns(sr, dur)
        x = _load_recording(str(path), sr).astype(np.float64)
        rate = rng.uniform(0.97, 1.03)  # small playback-speed (pitch) variation
        m = max(2, int(len(x) / rate))
        x = np.interp(np.arange(m) * rate, np.arange(len(x)), x)
        out = np.zeros(n)
        pos = -int(rng.integers(0, max(1, m // 4)))  # start a little way into the first play
        while pos < n:
            dsp.add(out, x * 10 ** (rng.uniform(-2.0, 2.0) / 20), pos)
            pos += m + int(rng.uniform(0.2, 1.0) * sr)
        return out

    synth.__doc__ = f"Recorded sound {path.name}, looped with gaps and cropped."
    return synth


def _find(directory: Path, stem: str) -> Path | None:
    for ext in RECORDED_EXTENSIONS:
        p = directory / f"{stem}{ext}"
        if p.is_file():
            return p
    return None


def register_recorded_classes(directory: str | Path) -> list[str]:
    """Register ``fd_*`` classes for the sound-theme files found in ``directory``.

    Looks for each known stem (``bell``, ``complete``, ``alarm-clock-elapsed``, ...) with one of
    :data:`RECORDED_EXTENSIONS`; a missing directory or file registers nothing. Registering the
    same folder again replaces the classes with identical ones. Returns the names registered,
    in a fixed order.

    Examples
    --------
    >>> register_recorded_classes("/nonexistent")
    []
    """
    d = Path(directory)
    added = []
    for stem, (name, dom, sub, dec, desc, like) in _RECORDED.items():
        p = _find(d, stem)
        if p is None:
            continue
        dur = (0.8, 3.0) if dec == _G else (3.0, 8.0)
        register_event_class(
            EventClass(
                name,
                dom,
                sub,
                dec,
                False,
                f"{desc} (recording: {p.name})",
                dur,
                1.0 if dec == _I else 0.5,
                _recorded_synth(p),
                like,
            ),
            replace=True,
        )
        added.append(name)
    return added


__all__ = ["FREEDESKTOP_DIR", "RECORDED_EXTENSIONS", "register_recorded_classes"]
