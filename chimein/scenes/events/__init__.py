"""Procedural sound events: a registry of classes with a default decision, and their synthesis.

Every class of :data:`EVENT_CLASSES` belongs to one of the six Proactive-Sound-Bench domains
(Daily Living, Equipment, Human Signals, Music, Nature, Traffic, as in its taxonomy)
and carries a default decision: ``INTERVENE`` (someone should act: PSB's RESPOND) or ``IGNORE``
(benign). Many benign classes are look-alikes of a help event (``lookalike_of``): a fridge hum
next to a grinding appliance, laughter next to a scream, a turn signal next to a seat-belt
chime. They are what makes the decision hard.

Sounds are synthesised, not recorded, so the library needs no data: additive and FM tones for
alarms and chimes (with the standard temporal patterns: ISO 8201 T3 for smoke alarms, T4 for
CO alarms, IEC 60601-1-8 high priority for patient monitors), modal synthesis (sums of
exponentially decaying partials) for impacts, bells and instruments, filtered noise bursts for
cracks, hiss and crackle, and the source-filter voice model of :mod:`chimein.scenes.noise` with
pitch contours for cries, screams, laughter and coughs. Each instance draws its pitch, timing,
durations and timbre from a generator seeded per instance.

Modules: :mod:`~.registry` (:class:`EventClass`, :data:`EVENT_CLASSES`, look-up and
registration), :mod:`~.catalog` (the built-in classes, registered in a fixed order on import),
the synthesisers by what they make (:mod:`~.alarms`, :mod:`~.household`, :mod:`~.human`,
:mod:`~.music`, :mod:`~.nature`, :mod:`~.traffic`, on the helpers of :mod:`~.dsp`),
:mod:`~.synthesis` (:func:`synthesize_event`, normalisation), :mod:`~.recorded` (recorded
``fd_*`` classes from a sound-theme folder) and :mod:`~.pool` (what a sampler draws from).

Recorded classes are never registered at import: a scenes config asks for them with
``recorded_sounds_dir`` (e.g. Debian's ``sound-theme-freedesktop`` folder,
:data:`FREEDESKTOP_DIR`), so an installed package cannot change a built-in suite.

Examples
--------
>>> from chimein.scenes.events import EVENT_CLASSES, synthesize_event
>>> x = synthesize_event({"cls": "smoke_alarm", "seed": 7}, 16000, duration_s=2.0)
>>> x.dtype, x.shape, EVENT_CLASSES["smoke_alarm"].decision
(dtype('float32'), (32000,), 'INTERVENE')
"""

from __future__ import annotations

from chimein.scenes.events.catalog import BUILTIN_CLASSES
from chimein.scenes.events.pool import event_pool
from chimein.scenes.events.recorded import FREEDESKTOP_DIR, register_recorded_classes
from chimein.scenes.events.registry import (
    DOMAINS,
    EVENT_CLASSES,
    EventClass,
    Synth,
    get_event_class,
    recorded_classes_available,
    register_event_class,
)
from chimein.scenes.events.synthesis import (
    ACTIVE_FRAME_S,
    ACTIVE_RANGE_DB,
    MAX_CREST,
    MAX_DURATION_S,
    MIN_DURATION_S,
    active_mask,
    active_rms,
    synthesize_event,
)

__all__ = [
    "ACTIVE_FRAME_S",
    "ACTIVE_RANGE_DB",
    "BUILTIN_CLASSES",
    "DOMAINS",
    "EVENT_CLASSES",
    "FREEDESKTOP_DIR",
    "MAX_CREST",
    "MAX_DURATION_S",
    "MIN_DURATION_S",
    "EventClass",
    "Synth",
    "active_mask",
    "active_rms",
    "event_pool",
    "get_event_class",
    "recorded_classes_available",
    "register_event_class",
    "register_recorded_classes",
    "synthesize_event",
]
