"""Which event classes a scene sampler may draw: the built-in ones, plus recorded ones on request.

The sampler and the attack search space draw event classes from :func:`event_pool`, never from
everything registered, so what a process happens to have registered (a test, a notebook, a
sound theme on the machine) cannot change a seeded scene. Recorded classes join the pool only
when the scenes config names their folder (``recorded_sounds_dir``).
"""

from __future__ import annotations

from pathlib import Path

from chimein.scenes.events.catalog import BUILTIN_CLASSES
from chimein.scenes.events.recorded import register_recorded_classes
from chimein.scenes.events.registry import EVENT_CLASSES, EventClass


def event_pool(recorded_sounds_dir: str | Path | None = None) -> dict[str, EventClass]:
    """The classes a sampler may draw from, by name.

    Parameters
    ----------
    recorded_sounds_dir
        ``None`` (the default): the built-in procedural classes only, the same on every
        machine. A folder: its recorded ``fd_*`` classes are registered
        (:func:`~chimein.scenes.events.recorded.register_recorded_classes`) and added after the
        built-in ones.

    Examples
    --------
    >>> sorted(event_pool()) == sorted(BUILTIN_CLASSES)
    True
    """
    pool = dict(BUILTIN_CLASSES)
    if recorded_sounds_dir is not None:
        for name in register_recorded_classes(recorded_sounds_dir):
            pool[name] = EVENT_CLASSES[name]
    return pool


__all__ = ["event_pool"]
