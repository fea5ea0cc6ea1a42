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
    One addressed turn split into fragments by 0.5-1.5 s mid-turn pauses: acting inside a
    pause is an interruption; RESPOND after the last fragment.
``distractors``
    TV speech (possibly with the wake phrase), people talking to each other, benign sounds:
    no action cue; stay quiet.
``multi_event``
    A 30-120 s stream of several segments of the families above, with distractors.
``mixed``
    Each scene draws one of the six families above uniformly.

Difficulty presets (``easy``/``default``/``hard``) set room size, RT60, SNR, noise kinds,
distractor rate and overlap, speech rate, pause lengths and augmentation; any knob can be
overridden (``None`` means "from the preset").

Examples
--------
>>> from chimein.scenes.sampler import sample_scene
>>> spec = sample_scene({"family": "addressed", "difficulty": "easy"}, seed=3)
>>> [c.expected for c in spec.annotations.action_cues]
['RESPOND']
>>> sample_scene({"family": "addressed", "difficulty": "easy"}, seed=3) == spec
True
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from chimein.config import read_config
from chimein.errors import ConfigError, SpecError
from chimein.scenes.spec import (
    Annotations,
    Cue,
    Mics,
    Room,
    SceneSpec,
    Source,
    Span,
    Vec3,
)

FAMILIES: tuple[str, ...] = ("addressed", "proactive", "monitoring", "pauses", "distractors", "multi_event")
DIFFICULTIES: tuple[str, ...] = ("easy", "default", "hard")

# Event classes the monitoring family may watch for, with the phrase used in the request.
MONITOR_TARGETS: dict[str, str] = {
    "washer_done": "the washing machine finishes",
    "microwave_done": "the microwave is done",
    "oven_done": "the oven is ready",
    "kettle_whistle": "the kettle boils",
    "doorbell": "someone rings the doorbell",
    "phone_ring": "the phone rings",
    "baby_cry": "the baby wakes up",
    "dryer_done": "the dryer finishes",
    "toaster_pop": "the toast is ready",
}


@dataclass(frozen=True)
class SamplerConfig:
    """Every knob of the scene distribution. Ranges are ``[low, high]`` drawn uniformly.

    Fields left ``None`` take the value of the ``difficulty`` preset (:data:`PRESETS`).
    """

    family: str = "mixed"
    """Task family of every scene (:data:`FAMILIES`), or ``mixed``: each scene draws one."""
    difficulty: str = "default"
    """Preset (:data:`DIFFICULTIES`) that fills the fields left ``None``."""
    sample_rate: int = 16000
    """Sample rate (Hz) of the rendered scenes."""
    # room
    room_length: Sequence[float] | None = None
    """Room length range (m)."""
    room_width: Sequence[float] | None = None
    """Room width range (m)."""
    room_height: Sequence[float] | None = None
    """Room height range (m)."""
    rt60: Sequence[float] | None = None
    """Reverberation time range (s)."""
    ray_tracing: bool | None = None
    """Render rooms with pyroomacoustics' hybrid image-source + ray-tracing model (slower)."""
    room_pool: int | None = None
    """Number of distinct rooms scenes draw from (0: every scene its own room). A finite pool
    with ``positions_per_room`` candidate source positions lets the RIR cache serve most
    sources, the way SoundSpaces precomputes a grid."""
    positions_per_room: int | None = None
    """Candidate source positions per pooled room (at least 2)."""
    room_pool_seed: int | None = None
    """Seed of the room pool (rooms and candidate positions depend only on it and the index)."""
    # microphones
    mic_shape: str | None = None
    """Microphone array: ``single``, ``linear`` or ``circular``."""
    n_mics: int | None = None
    """Number of microphones in the array."""
    mic_spacing: float | None = None
    """Spacing (m) of a linear array, radius (m) of a circular one."""
    # levels and noise
    snr_db: Sequence[float] | None = None
    """Range of the SNR (dB) of the diffuse background noise against the scene at mic 0."""
    noise_kinds: Sequence[str] | None = None
    """Background noise kinds a scene draws one of (:data:`~chimein.scenes.noise.NOISE_KINDS`)."""
    speech_level_db: Sequence[float] | None = None
    """Range of the dry level (dBFS RMS) of the user's and bystanders' speech."""
    event_level_db: Sequence[float] | None = None
    """Range of the dry level (dBFS RMS) of sound events."""
    distractor_level_db: Sequence[float] | None = None
    """Range of the dry level (dBFS RMS) of distractors (TV speech, benign sounds)."""
    # speech
    speech_rate: Sequence[float] | None = None
    """Range of the speaking rate (words per minute, espeak-ng's rate), drawn once per talker."""
    speech_pitch: Sequence[float] | None = None
    """Range of the talker's pitch (espeak-ng's 0-99 scale), drawn once per talker."""
    pause_s: Sequence[float] | None = None
    """Range of the mid-turn pause lengths (s) of the ``pauses`` family."""
    # composition
    distractor_rate: float | None = None
    """Probability of a distractor segment after each segment of a ``multi_event`` stream
    (half of it: before the segment of any other family)."""
    overlap: float | None = None
    """Probability that a distractor (a benign sound, TV or chit-chat) overlaps a user's turn or
    a proactive event."""
    lead_s: Sequence[float] | None = None
    """Range of the silence (s) before the first segment."""
    tail_s: Sequence[float] | None = None
    """Range of the time (s) the scene runs on after its last segment."""
    multi_event_duration_s: Sequence[float] | None = None
    """Range of the target length (s) of a ``multi_event`` stream."""
    respond_window_s: float | None = None
    """Length (s) of a RESPOND window, from the end of the user's turn."""
    intervene_window_s: float | None = None
    """Length (s) of an INTERVENE window, from the moment the event becomes recognisable."""
    event_classes: Sequence[str] | None = None
    """Event classes (names) this sampler may use; None: all built-in classes (plus the
    recorded ones of ``recorded_sounds_dir`` when it is set)."""
    recorded_sounds_dir: str | None = None
    """Folder of sound-theme recordings (e.g. Debian's /usr/share/sounds/freedesktop/stereo)
    whose ``fd_*`` classes join the event pool; None (the default): built-in classes only,
    so an installed sound theme never changes a scene."""
    sound_packs: Sequence[str] | None = None
    """Folders (or manifest.jsonl paths) of sound packs in Proactive-Sound-Bench's format; their
    INTERVENE/IGNORE recordings join the events, RESPOND recordings the addressed requests."""
    pack_fraction: float | None = None
    """Probability that an event (or an addressed request) is drawn from the packs when one
    fits."""
    augment: Sequence[Mapping[str, Any]] | None = None
    """Audiomentations chain applied to the rendered scene, e.g.
    ``[{"name": "AddGaussianSNR", "p": 0.5, "min_snr_db": 10, "max_snr_db": 30}]``."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Free-form keys kept with the config; the sampler does not read them."""

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | SamplerConfig | None) -> SamplerConfig:
        """Build from a (Hydra/OmegaConf or plain) mapping with
        :func:`chimein.config.read_config` and validate it against its preset; unknown keys
        and bad values raise :class:`~chimein.errors.ConfigError`."""
        if isinstance(cfg, SamplerConfig):
            return cfg
        out = read_config(cls, cfg, "scenes config")
        out.resolved()  # validate early
        return out

    def resolved(self) -> SamplerConfig:
        """Fill ``None`` fields from the difficulty preset and validate every range."""
        if self.difficulty not in PRESETS:
            raise ConfigError(f"scenes config: field 'difficulty': unknown {self.difficulty!r}; use one of {DIFFICULTIES}")
        if self.family not in (*FAMILIES, "mixed"):
            raise ConfigError(f"scenes config: field 'family': unknown {self.family!r}; use one of {(*FAMILIES, 'mixed')}")
        preset = {**PRESETS["default"], **PRESETS[self.difficulty]}
        vals = {f.name: getattr(self, f.name) for f in fields(self)}
        for k, v in preset.items():
            if vals.get(k) is None:
                vals[k] = v
        out = SamplerConfig(**vals)
        out._validate()
        return out

    def _validate(self) -> None:
        def rng_(name: str, lo: float, hi: float) -> None:
            v = getattr(self, name)
            if not isinstance(v, Sequence) or isinstance(v, str) or len(v) != 2:
                raise ConfigError(f"scenes config: field '{name}': expected [low, high], got {v!r}")
            a, b = float(v[0]), float(v[1])
            if not (lo <= a <= b <= hi):
                raise ConfigError(f"scenes config: field '{name}': need {lo} <= low <= high <= {hi}, got {list(v)}")

        rng_("room_length", 1.5, 50)
        rng_("room_width", 1.5, 50)
        rng_("room_height", 2.0, 10)
        rng_("rt60", 0.05, 2.0)
        rng_("snr_db", -20, 80)
        rng_("speech_level_db", -60, 0)
        rng_("event_level_db", -60, 0)
        rng_("distractor_level_db", -60, 0)
        rng_("speech_rate", 80, 450)
        rng_("speech_pitch", 0, 99)
        rng_("pause_s", 0.05, 5)
        rng_("lead_s", 0, 30)
        rng_("tail_s", 0, 30)
        rng_("multi_event_duration_s", 10, 600)
        for p in self.sound_packs or ():
            _pack(str(p))  # loads and validates the manifest (errors name file:line and field)
        for name in ("distractor_rate", "overlap", "pack_fraction"):
            v = float(getattr(self, name))
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"scenes config: field '{name}': must be in [0, 1], got {v}")
        for name in ("respond_window_s", "intervene_window_s"):
            v = float(getattr(self, name))
            if not 0.2 <= v <= 30:
                raise ConfigError(f"scenes config: field '{name}': must be in [0.2, 30] s, got {v}")
        if self.mic_shape not in ("single", "linear", "circular"):
            raise ConfigError(f"scenes config: field 'mic_shape': use single, linear or circular, got {self.mic_shape!r}")
        if not 1 <= int(self.n_mics or 0) <= 16:  # type: ignore[arg-type]
            raise ConfigError(f"scenes config: field 'n_mics': must be in [1, 16], got {self.n_mics}")
        if int(self.room_pool or 0) < 0 or int(self.positions_per_room or 0) < 2:  # type: ignore[arg-type]
            raise ConfigError("scenes config: field 'room_pool' must be >= 0 and 'positions_per_room' >= 2")
        from chimein.scenes.noise import NOISE_KINDS

        for k in self.noise_kinds or ():
            if k not in NOISE_KINDS:
                raise ConfigError(f"scenes config: field 'noise_kinds': unknown {k!r}; use {NOISE_KINDS}")
        pool = _event_pool(self.recorded_sounds_dir)
        for name in self.event_classes or ():
            if name not in pool:
                from chimein.scenes.events import get_event_class

                get_event_class(name)  # unknown name: raises with close matches
                raise ConfigError(f"scenes config: field 'event_classes': {name!r} is a recorded class; "
                                "set 'recorded_sounds_dir' to the folder of its recording")


#: Difficulty presets. ``default`` defines every knob; the others override some.
PRESETS: dict[str, dict[str, Any]] = {
    "default": dict(
        room_length=[3.0, 8.0], room_width=[2.5, 6.0], room_height=[2.4, 3.2], rt60=[0.2, 0.6],
        ray_tracing=False, room_pool=0, positions_per_room=8, room_pool_seed=0,
        mic_shape="single", n_mics=1, mic_spacing=0.05,
        snr_db=[10.0, 30.0], noise_kinds=["pink", "brown", "hvac", "babble", "white"],
        speech_level_db=[-30.0, -22.0], event_level_db=[-32.0, -20.0], distractor_level_db=[-36.0, -24.0],
        speech_rate=[150.0, 200.0], speech_pitch=[35.0, 65.0], pause_s=[0.5, 1.5],
        distractor_rate=0.3, overlap=0.15, lead_s=[0.8, 2.4], tail_s=[0.8, 2.4],
        multi_event_duration_s=[30.0, 120.0], respond_window_s=3.0, intervene_window_s=5.0,
        event_classes=None, recorded_sounds_dir=None, sound_packs=[], pack_fraction=0.5, augment=[],
    ),
    "easy": dict(
        room_length=[3.0, 6.0], room_width=[2.5, 5.0], rt60=[0.15, 0.35], snr_db=[22.0, 35.0],
        noise_kinds=["pink", "brown", "hvac"], speech_rate=[150.0, 175.0], distractor_rate=0.0, overlap=0.0,
        multi_event_duration_s=[30.0, 45.0],
    ),
    "hard": dict(
        room_length=[4.0, 10.0], room_width=[3.0, 8.0], rt60=[0.5, 0.9], snr_db=[0.0, 12.0],
        noise_kinds=["babble", "hvac", "pink", "white"], speech_level_db=[-36.0, -24.0],
        event_level_db=[-40.0, -26.0], distractor_level_db=[-32.0, -22.0], speech_rate=[130.0, 240.0],
        pause_s=[0.7, 1.5], distractor_rate=0.8, overlap=0.5,
        augment=[{"name": "LowPassFilter", "p": 0.3, "min_cutoff_freq": 2500, "max_cutoff_freq": 6000},
                 {"name": "AddGaussianSNR", "p": 0.3, "min_snr_db": 10.0, "max_snr_db": 25.0}],
    ),
}


# ============================================================================================
# Composition
# ============================================================================================
class _Builder:
    """Collects sources, cues and spans of one scene while segments are placed in time."""

    def __init__(self, cfg: SamplerConfig, rng: np.random.Generator, room: Room, mics: Mics,
                 candidates: list[Vec3] | None) -> None:
        self.cfg, self.rng, self.room, self.mics, self.candidates = cfg, rng, room, mics, candidates
        self.events = _event_pool(cfg.recorded_sounds_dir)  # the classes this scene may draw
        self.sources: list[Source] = []
        self.cues: list[Cue] = []
        self.spans: list[Span] = []
        self._voices: dict[str, tuple[str, int, int]] = {}
        self._positions: dict[str, Vec3] = {}

    # ------------------------------------------------------------------ helpers
    def u(self, r: Sequence[float]) -> float:
        return float(self.rng.uniform(float(r[0]), float(r[1])))

    def _sid(self, prefix: str) -> str:
        return f"{prefix}{sum(1 for s in self.sources if s.id.startswith(prefix))}"

    def position(self, who: str, role: str) -> Vec3:
        """A valid position for a talker/sound, stable per talker within the scene."""
        if who in self._positions:
            return self._positions[who]
        if self.candidates:
            p = self.candidates[int(self.rng.integers(len(self.candidates)))]
        else:
            p = _place(self.rng, self.room, self.mics.center, role)
        self._positions[who] = p
        return p

    def voice(self, who: str) -> tuple[str, int, int]:
        from chimein.scenes.speech import VOICES

        if who not in self._voices:
            used = {v[0] for v in self._voices.values()}
            choices = [v for v in VOICES if v not in used] or list(VOICES)
            self._voices[who] = (
                choices[int(self.rng.integers(len(choices)))],
                int(round(self.u(self.cfg.speech_rate))),  # type: ignore[arg-type]
                int(round(self.u(self.cfg.speech_pitch))),  # type: ignore[arg-type]
            )
        return self._voices[who]

    def say(self, who: str, role: str, text: str, t0: float, level_db: float | None = None) -> tuple[Source, float, float]:
        """Place an utterance starting at ``t0``; return the source and its speech start/end."""
        from chimein.scenes.speech import synthesize

        voice, rate, pitch = self.voice(who)
        sp = synthesize(text, voice=voice, rate=rate, pitch=pitch, sample_rate=self.cfg.sample_rate)
        lvl = self.u(self.cfg.speech_level_db) if level_db is None else level_db  # type: ignore[arg-type]
        src = Source(
            id=self._sid(who + "_"), kind="speech", role=role,  # type: ignore[arg-type]
            audio={"text": text, "voice": voice, "rate": rate, "pitch": pitch},
            onset_s=round(t0, 4), level_db=round(lvl, 2), position=self.position(who, role),
            words=sp.words, label=text,
        )
        self.sources.append(src)
        start = src.onset_s + (sp.words[0].start_s if sp.words else 0.0)
        end = src.onset_s + (sp.words[-1].end_s if sp.words else sp.duration_s)
        return src, start, end

    def event(self, cls_name: str, t0: float, level_db: float | None = None, role: str = "event") -> tuple[Source, Any]:
        from chimein.scenes.events import get_event_class

        ec = get_event_class(cls_name)
        dur = round(self.u(ec.default_duration_s), 3)
        lvl = self.u(self.cfg.event_level_db) if level_db is None else level_db  # type: ignore[arg-type]
        src = Source(
            id=self._sid("ev_"), kind="event", role=role,  # type: ignore[arg-type]
            audio={"cls": ec.name, "seed": int(self.rng.integers(2**31))},
            onset_s=round(t0, 4), level_db=round(lvl, 2), duration_s=dur,
            position=self.position(f"ev{len(self.sources)}", "event"), label=ec.name,
        )
        self.sources.append(src)
        return src, ec

    def cue(self, expected: str, start: float, end: float, label: str, sc: bool, srcs: Sequence[Source],
            onset: float | None = None) -> None:
        self.cues.append(Cue(
            id=f"c{len(self.cues)}", expected=expected, window=(round(start, 4), round(end, 4)),  # type: ignore[arg-type]
            label=label, safety_critical=sc, source_ids=tuple(s.id for s in srcs),
            onset_s=None if onset is None else round(onset, 4),
        ))

    def span(self, start: float, end: float, speaker: str, kind: str = "speech", addressed: bool = False) -> None:
        self.spans.append(Span(round(start, 4), round(end, 4), speaker, kind, addressed))  # type: ignore[arg-type]

    # ------------------------------------------------------------------ event choice
    def event_names(self, decision: str) -> list[str]:
        allowed = self.cfg.event_classes
        return sorted(n for n, ec in self.events.items()
                      if ec.decision == decision and (allowed is None or n in allowed))

    def pack_entries(self, action: str) -> list[tuple[str, Any]]:
        """``(pack root, entry)`` of every sound-pack recording whose action is ``action``."""
        out = []
        for p in self.cfg.sound_packs or ():
            pack = _pack(str(p))
            out += [(str(pack.root), e) for e in pack.by_action(action)]
        return out

    def use_pack(self, action: str) -> tuple[str, Any] | None:
        """With probability ``pack_fraction``, a pack recording of ``action`` (else None)."""
        entries = self.pack_entries(action)
        if not entries or self.rng.random() >= float(self.cfg.pack_fraction):  # type: ignore[arg-type]
            return None
        return entries[int(self.rng.integers(len(entries)))]

    def recording(self, pick: tuple[str, Any], t0: float, role: str, who: str,
                  level_db: float) -> tuple[Source, float, float]:
        """Place a sound-pack recording at ``t0``; returns the source and its active span
        (recordings longer than 20 s are cropped)."""
        root, entry = pick
        first, last, dur = _active_bounds(str(entry.path), self.cfg.sample_rate)
        dur = min(dur, 20.0)
        src = Source(
            id=self._sid("rec_"), kind="file", role=role,  # type: ignore[arg-type]
            audio={"path": entry.rel_path, "pack": root},
            onset_s=round(t0, 4), level_db=round(level_db, 2), duration_s=round(dur, 3),
            position=self.position(who, role), label=entry.description,
        )
        self.sources.append(src)
        return src, src.onset_s + first, src.onset_s + min(last, dur)

    def pick(self, names: Sequence[str]) -> str:
        if not names:
            raise SpecError("scenes config: field 'event_classes': no event class of the needed kind is allowed")
        return names[int(self.rng.integers(len(names)))]


def _event_pool(recorded_sounds_dir: str | None) -> dict[str, Any]:
    """The event classes a scene may draw (:func:`chimein.scenes.events.event_pool`): the
    built-in ones, plus the recorded ones of ``recorded_sounds_dir`` when it is set (a missing
    folder, or one without any known recording, raises)."""
    from chimein.scenes.events import event_pool

    if recorded_sounds_dir is None:
        return event_pool()
    if not isinstance(recorded_sounds_dir, str) or not Path(recorded_sounds_dir).is_dir():
        raise ConfigError(f"scenes config: field 'recorded_sounds_dir': {recorded_sounds_dir!r} is not a folder; "
                          "use null (built-in classes only) or a folder of sound-theme recordings")
    pool = event_pool(recorded_sounds_dir)
    if not any(n.startswith("fd_") for n in pool):
        raise ConfigError(f"scenes config: field 'recorded_sounds_dir': no known recording in {recorded_sounds_dir!r} "
                          "(expected files like bell.oga, complete.oga, alarm-clock-elapsed.oga)")
    return pool


@functools.lru_cache(maxsize=32)
def _pack(path: str) -> Any:
    from chimein.scenes.packs import SoundPack

    return SoundPack.load(path)


@functools.lru_cache(maxsize=4096)
def _active_bounds(path: str, sample_rate: int) -> tuple[float, float, float]:
    """(first, last active second, duration) of a recording: 20 ms frames within 40 dB of the
    loudest. A recorded request's turn ends where its speech energy ends."""
    from chimein.scenes.audio import load_audio

    x = load_audio(path, sample_rate)
    hop = max(1, int(0.02 * sample_rate))
    n = len(x) // hop
    if n == 0:
        return 0.0, len(x) / sample_rate, len(x) / sample_rate
    e = 10 * np.log10(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-20)
    act = np.flatnonzero(e > e.max() - 40.0)
    return float(act[0] * hop / sample_rate), float((act[-1] + 1) * hop / sample_rate), len(x) / sample_rate


def _place(rng: np.random.Generator, room: Room, center: Vec3, role: str) -> Vec3:
    """Rejection-sample a plausible position for ``role`` (inside the room, >= 0.3 m from the
    walls, >= 0.5 m from the microphones; talkers at head height within 0.7-3.5 m)."""
    L, W, H = room.dims
    m = 0.3
    for _ in range(200):
        if role in ("user", "bystander"):
            r = rng.uniform(0.7, 3.5)
            a = rng.uniform(0, 2 * math.pi)
            p = (center[0] + r * math.cos(a), center[1] + r * math.sin(a), rng.uniform(1.1, min(1.85, H - m)))
        elif role == "media":  # a TV or radio near a wall
            wall = int(rng.integers(4))
            x = rng.uniform(m, L - m) if wall < 2 else (m if wall == 2 else L - m)
            y = rng.uniform(m, W - m) if wall >= 2 else (m if wall == 0 else W - m)
            p = (x, y, rng.uniform(0.6, min(1.6, H - m)))
        else:
            p = (rng.uniform(m, L - m), rng.uniform(m, W - m), rng.uniform(0.2, min(2.0, H - m)))
        if room.contains(p, m) and math.dist(p, center) >= 0.5:
            return (round(p[0], 3), round(p[1], 3), round(p[2], 3))
    # tiny rooms: fall back to the farthest corner region, still valid
    p = (m if center[0] > L / 2 else L - m, m if center[1] > W / 2 else W - m, min(1.5, H - m))
    return (round(p[0], 3), round(p[1], 3), round(p[2], 3))


def _room(cfg: SamplerConfig, rng: np.random.Generator) -> tuple[Room, Mics, list[Vec3] | None]:
    if cfg.room_pool:  # the room, mics and candidate positions depend only on the pool index
        idx = int(rng.integers(int(cfg.room_pool)))
        rng = np.random.default_rng(np.random.SeedSequence([int(cfg.room_pool_seed or 0), idx, 0x600D]))

    def u(r: Sequence[float]) -> float:
        return float(rng.uniform(float(r[0]), float(r[1])))

    dims = (round(u(cfg.room_length), 2), round(u(cfg.room_width), 2), round(u(cfg.room_height), 2))  # type: ignore[arg-type]
    room = Room(dims=dims, rt60=round(u(cfg.rt60), 3), ray_tracing=bool(cfg.ray_tracing))  # type: ignore[arg-type]
    L, W, H = dims
    center = (round(rng.uniform(0.6, L - 0.6), 3), round(rng.uniform(0.6, W - 0.6), 3),
              round(rng.uniform(0.7, min(1.5, H - 0.3)), 3))
    n = int(cfg.n_mics or 1)
    mics = Mics.array(center, cfg.mic_shape or "single", n, float(cfg.mic_spacing or 0.05))
    if not all(room.contains(p) for p in mics.positions):
        raise SpecError("scenes config: field 'mic_spacing': the microphone array does not fit in the room")
    candidates = None
    if cfg.room_pool:
        roles = ("user", "user", "bystander", "media", "event", "event", "event", "event")
        candidates = [_place(rng, room, center, roles[i % len(roles)]) for i in range(int(cfg.positions_per_room or 8))]
    return room, mics, candidates


# ---------------------------------------------------------------- segments
# Each segment writes sources/cues/spans starting at t0 and returns the time at which the
# segment is over (its last window closed, its last sound ended).
def _seg_addressed(b: _Builder, t0: float) -> float:
    from chimein.scenes import templates

    rec = b.use_pack("RESPOND")
    if rec is not None:  # a recorded request: the turn ends where its speech energy ends
        src, s, e = b.recording(rec, t0, "user", "user", b.u(b.cfg.speech_level_db))  # type: ignore[arg-type]
        intent = rec[1].description
    else:
        utt = templates.wake_request(b.rng) if b.rng.random() < 0.6 else templates.command(b.rng)
        src, s, e = b.say("user", "user", utt.text, t0)
        intent = utt.intent
    b.span(s, e, "user", addressed=True)
    b.cue("RESPOND", e, e + float(b.cfg.respond_window_s), intent, False, [src], onset=s)  # type: ignore[arg-type]
    _maybe_overlap_distractor(b, s, e)
    return e + float(b.cfg.respond_window_s)  # type: ignore[arg-type]


def _seg_pauses(b: _Builder, t0: float) -> float:
    from chimein.scenes import templates

    frags = templates.split_turn(b.rng)
    t, first, srcs, pause_from = t0, None, [], None
    for frag in frags:
        src, s, e = b.say("user", "user", frag, t)
        srcs.append(src)
        if pause_from is not None:  # the pause lasts until this fragment's first word
            b.span(pause_from, s, "user", kind="pause", addressed=True)
        first = s if first is None else first
        b.span(s, e, "user", addressed=True)
        pause_from = e
        t = e + b.u(b.cfg.pause_s)  # type: ignore[arg-type]
    b.cue("RESPOND", e, e + float(b.cfg.respond_window_s), "request after pauses", False, srcs, onset=first)  # type: ignore[arg-type]
    return e + float(b.cfg.respond_window_s)  # type: ignore[arg-type]


def _seg_proactive(b: _Builder, t0: float) -> float:
    rec = b.use_pack("INTERVENE")
    if rec is not None:  # a recorded event from a sound pack
        src, _, _ = b.recording(rec, t0, "event", f"ev{len(b.sources)}", b.u(b.cfg.event_level_db))  # type: ignore[arg-type]
        entry = rec[1]
        start = src.onset_s + float(entry.onset_delay_s)
        label, sc = entry.description, bool(entry.safety_critical)
    else:
        src, ec = b.event(b.pick(b.event_names("INTERVENE")), t0)
        start = src.onset_s + ec.onset_delay_s
        label, sc = ec.name, ec.safety_critical
    end = start + float(b.cfg.intervene_window_s)  # type: ignore[arg-type]
    b.cue("INTERVENE", start, end, label, sc, [src], onset=src.onset_s)
    over = 0.0
    if b.rng.random() < float(b.cfg.overlap):  # type: ignore[arg-type]
        over = _chitchat(b, max(0.0, src.onset_s - b.u((0.5, 2.0))))
    return max(end, over, src.onset_s + float(src.duration_s or 0))


def _seg_monitoring(b: _Builder, t0: float) -> float:
    from chimein.scenes import templates

    allowed = b.cfg.event_classes
    targets = [n for n in MONITOR_TARGETS if n in b.events and (allowed is None or n in allowed)]
    target = b.pick(targets)
    utt = templates.monitoring_request(b.rng, MONITOR_TARGETS[target])
    src, s, e = b.say("user", "user", utt.text, t0)
    b.span(s, e, "user", addressed=True)
    ack_end = e + float(b.cfg.respond_window_s)  # type: ignore[arg-type]
    b.cue("RESPOND", e, ack_end, "acknowledge monitoring request", False, [src], onset=s)
    t = ack_end + b.u((2.0, 10.0))
    others = [n for n in targets if n != target]
    if others and b.rng.random() < 0.6:  # a non-target look-alike: must be ignored
        o_src, o_ec = b.event(b.pick(others), t)
        o_end = o_src.onset_s + float(o_src.duration_s or 1.0)
        b.cue("IGNORE", o_src.onset_s, o_end, f"non-target {o_ec.name}", False, [o_src], onset=o_src.onset_s)
        t = o_end + b.u((2.0, 6.0))
    ev, ec = b.event(target, t)
    start = ev.onset_s + ec.onset_delay_s
    end = start + float(b.cfg.intervene_window_s)  # type: ignore[arg-type]
    b.cue("INTERVENE", start, end, f"monitored {ec.name}", ec.safety_critical, [ev], onset=ev.onset_s)
    return max(end, ev.onset_s + float(ev.duration_s or 0))


def _seg_distractors(b: _Builder, t0: float) -> float:
    kinds = ["tv", "chitchat", "benign"]
    n = 1 + int(b.rng.integers(2))
    t = t0
    for _ in range(n):
        kind = kinds[int(b.rng.integers(len(kinds)))]
        if kind == "tv":
            t = _tv(b, t, with_wake=b.rng.random() < 0.6)
        elif kind == "chitchat":
            t = _chitchat(b, t)
        else:
            t = _benign(b, t)
        t += b.u((0.3, 1.5))
    return t


def _tv(b: _Builder, t0: float, with_wake: bool) -> float:
    from chimein.scenes import templates

    utt = templates.tv_line(b.rng, with_wake=with_wake)
    src, s, e = b.say("tv", "media", utt.text, t0, level_db=b.u(b.cfg.distractor_level_db))  # type: ignore[arg-type]
    b.cue("IGNORE", s, e, "tv speech with wake phrase" if utt.contains_wake else "tv speech", False, [src], onset=s)
    return e


def _chitchat(b: _Builder, t0: float) -> float:
    from chimein.scenes import templates

    t = t0
    for i in range(2 + int(b.rng.integers(3))):
        who = "bystander" if i % 2 == 0 else "user"
        utt = templates.chitchat(b.rng)
        src, s, e = b.say(who, "bystander" if who == "bystander" else "user", utt.text, t,
                          level_db=b.u(b.cfg.distractor_level_db))  # type: ignore[arg-type]
        b.span(s, e, who, addressed=False)
        t = e + b.u((0.2, 0.8))
    return t


def _benign(b: _Builder, t0: float) -> float:
    from chimein.scenes.events import get_event_class

    rec = b.use_pack("IGNORE")
    if rec is not None:
        src, _, _ = b.recording(rec, t0, "event", f"ev{len(b.sources)}", b.u(b.cfg.distractor_level_db))  # type: ignore[arg-type]
        end = src.onset_s + float(src.duration_s or 1.0)
        b.cue("IGNORE", src.onset_s, end, rec[1].description, False, [src], onset=src.onset_s)
        return end
    names = b.event_names("IGNORE")
    # prefer look-alikes of help events: they are what makes the task hard
    look = [n for n in names if get_event_class(n).lookalike_of]
    name = b.pick(look if look and b.rng.random() < 0.6 else names)
    src, ec = b.event(name, t0, level_db=b.u(b.cfg.distractor_level_db), role="event")  # type: ignore[arg-type]
    end = src.onset_s + float(src.duration_s or 1.0)
    b.cue("IGNORE", src.onset_s, end, ec.name, False, [src], onset=src.onset_s)
    return end


def _maybe_overlap_distractor(b: _Builder, s: float, e: float) -> None:
    """With probability ``overlap``, a benign sound or TV line overlaps the user's turn."""
    if b.rng.random() >= float(b.cfg.overlap):  # type: ignore[arg-type]
        return
    t = s + b.u((-0.5, max(0.0, e - s - 0.3)))
    if b.rng.random() < 0.5:
        _benign(b, max(0.0, t))
    else:
        _tv(b, max(0.0, t), with_wake=False)


_SEGMENTS = {
    "addressed": _seg_addressed,
    "proactive": _seg_proactive,
    "monitoring": _seg_monitoring,
    "pauses": _seg_pauses,
    "distractors": _seg_distractors,
}


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

    noise_kind = list(cfg.noise_kinds or ["pink"])[int(rng.integers(len(cfg.noise_kinds or ["pink"])))]
    b.sources.append(Source(
        id="noise", kind="noise", role="noise",
        audio={"color": noise_kind, "seed": int(rng.integers(2**31)), "snr_db": round(b.u(cfg.snr_db), 2)},  # type: ignore[arg-type]
        onset_s=0.0, duration_s=duration, label=f"{noise_kind} noise",
    ))
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
    )


def scene_seed(base_seed: int, index: int) -> int:
    """The seed of scene ``index`` in a dataset or suite generated from ``base_seed``.

    Independent of how many scenes are generated, so extending a dataset keeps its prefix.
    """
    return int(np.random.SeedSequence([int(base_seed), int(index)]).generate_state(1, dtype=np.uint32)[0])
