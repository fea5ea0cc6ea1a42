"""The event-class registry: the :class:`EventClass` type, :data:`EVENT_CLASSES` and look-up.

Every class belongs to one of the six Proactive-Sound-Bench domains (:data:`DOMAINS`) and carries
a default decision: ``INTERVENE`` (someone should act: PSB's RESPOND) or ``IGNORE`` (benign).
The built-in procedural classes (:mod:`chimein.scenes.events.catalog`) are registered when the
package is imported; recorded classes (:mod:`chimein.scenes.events.recorded`) only when a caller
(a scenes config's ``recorded_sounds_dir``) asks for them.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from chimein.errors import SpecError

#: Synthesiser signature: ``(rng, sample_rate, duration_s) -> float array of
#: round(duration_s * sample_rate) samples`` (any scale; ``synthesize_event`` normalises).
Synth = Callable[[np.random.Generator, int, float], np.ndarray]

#: PSB domains.
DOMAINS: tuple[str, ...] = (
    "Daily Living",
    "Equipment",
    "Human Signals",
    "Music",
    "Nature",
    "Traffic",
)


@dataclass(frozen=True)
class EventClass:
    """One sound-event class.

    Attributes
    ----------
    name : registry key (``snake_case``).
    domain, subcategory : PSB taxonomy position (domain is one of :data:`DOMAINS`).
    decision : ``"INTERVENE"`` (act unprompted) or ``"IGNORE"`` (benign).
    safety_critical : a miss may hurt someone (alarms, breaking glass, screams, ...).
    description : what the sound is, in words.
    default_duration_s : ``(low, high)`` range the sampler draws durations from.
    onset_delay_s : seconds after onset by which a listener can recognise the sound, i.e. when
        intervening becomes appropriate (0.3 for breaking glass, 1.5 for a baby's cry).
    synth : ``(rng, sample_rate, duration_s) -> samples``.
    lookalike_of : for a benign class, the help class it can be mistaken for.
    """

    name: str
    domain: str
    subcategory: str
    decision: Literal["INTERVENE", "IGNORE"]
    safety_critical: bool
    description: str
    default_duration_s: tuple[float, float]
    onset_delay_s: float
    synth: Synth
    lookalike_of: str | None = None


#: Every registered event class, by name, in registration order: the built-in procedural
#: classes, then any recorded classes a caller registered explicitly.
EVENT_CLASSES: dict[str, EventClass] = {}


def register_event_class(ec: EventClass, replace: bool = False) -> EventClass:
    """Add ``ec`` to :data:`EVENT_CLASSES` under ``ec.name``.

    ``replace=True`` overwrites a class of the same name (re-registering recorded classes is
    idempotent); otherwise a taken name raises :class:`SpecError`, so two classes cannot share
    a name by accident.
    """
    if ec.domain not in DOMAINS:
        raise SpecError(f"event class {ec.name!r}: domain {ec.domain!r} is not one of {DOMAINS}")
    if ec.name in EVENT_CLASSES and not replace:
        raise SpecError(f"event class {ec.name!r} is already registered")
    EVENT_CLASSES[ec.name] = ec
    return ec


def get_event_class(name: str) -> EventClass:
    """The registered class ``name``.

    Raises
    ------
    SpecError
        Unknown name; the message lists close matches (and, for a recorded ``fd_*`` name, how
        to load recorded classes).

    Examples
    --------
    >>> get_event_class("smoke_alarm").safety_critical
    True
    """
    ec = EVENT_CLASSES.get(name) if isinstance(name, str) else None
    if ec is None:
        close = difflib.get_close_matches(str(name), list(EVENT_CLASSES), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        if str(name).startswith("fd_"):
            hint += (
                "recorded classes are loaded only on request: set the scenes config's "
                "'recorded_sounds_dir' (or call register_recorded_classes(dir)); "
            )
        raise SpecError(
            f"event: field 'cls': unknown event class {name!r}; {hint}"
            f"known classes: {', '.join(sorted(EVENT_CLASSES))}"
        )
    return ec


def recorded_classes_available() -> bool:
    """Whether recorded (``fd_*``) classes are registered in this process (they never are
    unless a caller loaded them with ``register_recorded_classes``)."""
    return any(name.startswith("fd_") for name in EVENT_CLASSES)


__all__ = [
    "DOMAINS",
    "EVENT_CLASSES",
    "EventClass",
    "Synth",
    "get_event_class",
    "recorded_classes_available",
    "register_event_class",
]
