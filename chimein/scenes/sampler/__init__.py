"""Draw scene specs from configurable distributions: task families x difficulty presets.

A scene is composed from *segments*, each one of the task families below, placed on one
timeline in one room. Every random choice comes from one ``np.random.Generator`` seeded by the
scene seed, so ``sample_scene(cfg, seed)`` returns the same :class:`SceneSpec` in any process.

Task families
-------------
``addressed``
    The user says the wake phrase and a request or command. RESPOND window: from the end of
    the turn (last word) for ``respond_window_s``.
``proactive``
    A sound event that needs help (smoke alarm, glass break, baby crying, ...). INTERVENE
    window: from ``onset + onset_delay_s`` (when the sound becomes recognisable) for
    ``intervene_window_s``; ``safety_critical`` from the event class.
``monitoring``
    "Tell me when the washing machine finishes": RESPOND (acknowledge) after the request;
    later, maybe a look-alike non-target event (IGNORE), then the target event (INTERVENE).
``pauses``
    One addressed turn with 0.5-1.5 s mid-turn pauses, synthesised as one utterance with the
    pauses cut in at word boundaries (``pause_mode=whole``; ``fragments``: one utterance per
    fragment, v0's way); a bystander may backchannel in a pause. Acting inside a pause is an
    interruption; RESPOND after the last word.
``distractors``
    TV speech (possibly with the wake phrase), people talking to each other, benign sounds:
    no action cue; stay quiet.
``multi_event``
    A 30-120 s stream of several segments of the families above, with distractors.
``mixed``
    Each scene draws one of the six families above uniformly.

Speech (every family): talkers from three generators (espeak-ng, piper, flite) with several
speakers per voice (:mod:`chimein.scenes.talkers`), and natural turns
(:mod:`chimein.scenes.turns`): fillers, mid-turn pauses inside requests, self-corrections, short
follow-up answers (a RESPOND cue of their own) and bystanders' backchannels.

Difficulty presets (``easy``/``default``/``hard``) set room size, RT60, SNR, noise kinds,
distractor rate and overlap, speech rate, pause lengths and augmentation; any knob can be
overridden (``None`` means "from the preset").

Examples
--------
>>> from chimein.scenes.sampler import sample_scene
>>> spec = sample_scene({"family": "addressed", "difficulty": "easy"}, seed=3)
>>> [c.expected for c in spec.annotations.action_cues][:1]
['RESPOND']
>>> sample_scene({"family": "addressed", "difficulty": "easy"}, seed=3) == spec
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from chimein.scenes.sampler.builder import _Builder, _loudspeaker, _room
from chimein.scenes.sampler.config import (
    DIFFICULTIES,
    FAMILIES,
    MONITOR_TARGETS,
    PRESETS,
    SamplerConfig,
)
from chimein.scenes.sampler.families import _SEGMENTS, _seg_distractors
from chimein.scenes.spec import Annotations, SceneSpec, Source

__all__ = [
    "DIFFICULTIES",
    "FAMILIES",
    "MONITOR_TARGETS",
    "PRESETS",
    "SamplerConfig",
    "sample_scene",
    "scene_seed",
]


def sample_scene(config: Mapping[str, Any] | SamplerConfig | None, seed: int,
                 scene_id: str | None = None) -> SceneSpec:
    """Draw one scene spec.

    Parameters
    ----------
    config
        A :class:`SamplerConfig` or mapping of its fields (``family``, ``difficulty`` and any
        knob); ``None`` means the default mixed distribution.
    seed
        Every random choice derives from it: equal seeds give equal specs (and audio).
    scene_id
        Defaults to ``"<family>-<seed>"``.
    """
    cfg = SamplerConfig.from_mapping(config).resolved()
    seed = int(seed)
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    family = cfg.family
    if family == "mixed":
        family = FAMILIES[int(rng.integers(len(FAMILIES)))]
    room, mics, candidates = _room(cfg, rng)
    b = _Builder(cfg, rng, room, mics, candidates)
    lead = b.u(cfg.lead_s)  # type: ignore[arg-type]

    if family == "multi_event":
        target = b.u(cfg.multi_event_duration_s)  # type: ignore[arg-type]
        t = lead
        kinds = ["addressed", "proactive", "monitoring", "pauses", "distractors"]
        weights = np.array([0.3, 0.3, 0.1, 0.15, 0.15])
        # at least two action segments, then until the target length is reached
        while t < target - 12.0 or sum(c.expected != "IGNORE" for c in b.cues) < 2:
            kind = kinds[int(rng.choice(len(kinds), p=weights))]
            t = _SEGMENTS[kind](b, t) + b.u((1.0, 4.0))
            if rng.random() < float(cfg.distractor_rate):  # type: ignore[arg-type]
                t = _seg_distractors(b, t) + b.u((0.5, 2.0))
        end = max(t, target)
    else:
        if family != "distractors" and rng.random() < float(cfg.distractor_rate) * 0.5:  # type: ignore[arg-type]
            lead = _seg_distractors(b, lead) + b.u((1.0, 2.5))
        end = _SEGMENTS[family](b, lead)
    duration = round(end + b.u(cfg.tail_s), 3)  # type: ignore[arg-type]
    # the scene ends after every sound has ended
    for s in b.sources:
        if s.duration_s is not None:
            duration = max(duration, round(s.onset_s + s.duration_s + 0.2, 3))
    # ... and after every cue's window closed (a slow talker's TV line that overlaps a turn can
    # outlast the turn's segment; no v0 scene has such a cue, so v0 is unchanged)
    late = max((c.window[1] for c in b.cues), default=0.0)
    if late > duration:
        duration = round(late + 0.2, 3)

    noise_kind = list(cfg.noise_kinds or ["pink"])[int(rng.integers(len(cfg.noise_kinds or ["pink"])))]
    b.sources.append(Source(
        id="noise", kind="noise", role="noise",
        audio={"color": noise_kind, "seed": int(rng.integers(2**31)), "snr_db": round(b.u(cfg.snr_db), 2)},  # type: ignore[arg-type]
        onset_s=0.0, duration_s=duration, label=f"{noise_kind} noise",
    ))
    device = None
    if float(cfg.device_rate or 0.0) > 0.0 and rng.random() < float(cfg.device_rate or 0.0):
        from chimein.scenes.device import DEVICE_MODELS, draw_device

        models = list(cfg.device_models or sorted(DEVICE_MODELS))
        if cfg.device_pool:  # the device depends only on the pool seed and its index
            idx = int(rng.integers(int(cfg.device_pool)))
            pool_rng = np.random.default_rng(np.random.SeedSequence([int(cfg.device_pool_seed or 0), idx, 0xDE71CE]))
            device = draw_device(pool_rng, models)
        else:
            device = draw_device(rng, models)
    cues = tuple(sorted(b.cues, key=lambda c: (c.window[0], c.id)))
    cues = tuple(replace(c, id=f"c{i}") for i, c in enumerate(cues))
    spans = tuple(sorted(b.spans, key=lambda s: (s.start_s, s.speaker)))
    return SceneSpec(
        id=scene_id or f"{family}-{seed}", seed=seed, duration_s=duration, room=room, mics=mics,
        sources=tuple(b.sources), annotations=Annotations(cues=cues, spans=spans),
        sample_rate=cfg.sample_rate, family=family, difficulty=cfg.difficulty,
        augment=tuple(dict(a) for a in (cfg.augment or ())),
        meta={"noise": noise_kind, "snr_db": b.sources[-1].audio["snr_db"], "rt60": room.rt60,
              "config_family": cfg.family},
        device=device,
        loudspeaker=_loudspeaker(cfg, seed, room, mics),
    )


def scene_seed(base_seed: int, index: int) -> int:
    """The seed of scene ``index`` in a dataset or suite generated from ``base_seed``.

    Independent of how many scenes are generated, so extending a dataset keeps its prefix.
    """
    return int(np.random.SeedSequence([int(base_seed), int(index)]).generate_state(1, dtype=np.uint32)[0])
