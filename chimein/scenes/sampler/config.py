"""The sampler's knobs: task families, :class:`SamplerConfig`, the difficulty presets, and
the event pool and sound packs a config may draw from (loaded and checked when it is read)."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from chimein.config import read_config
from chimein.errors import ConfigError
from chimein.scenes.pack_speech import Pieces

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
    """Range of the mid-turn pause lengths (s) of the ``pauses`` family and of natural turns."""
    # voices and speakers (chimein.scenes.talkers)
    speech_generators: Sequence[str] | None = None
    """Speech generators talkers draw from, one per talker: ``espeak-ng``, ``piper``, ``flite``
    (used when ``speakers_per_voice`` > 0; v0's speech is espeak-ng only)."""
    speech_voices: Mapping[str, Sequence[str]] | None = None
    """Voices per generator, e.g. ``{flite: [awb]}``; a generator not named draws from its
    training voices (:data:`chimein.scenes.talkers.TRAINING_VOICES`)."""
    speakers_per_voice: int | None = None
    """0: no speaker model, each talker an espeak-ng voice with a rate and pitch from
    ``speech_rate``/``speech_pitch`` (v0); N: each talker is one of N speakers of its voice
    (speaker model: pitch, tempo, vocal-tract length, level; ids recorded in the spec)."""
    speaker_pool_seed: int | None = None
    """Seed of the speakers (speaker k of a voice depends only on it, the names and k); held-out
    suites use another seed (:data:`chimein.scenes.talkers.HELDOUT_SPEAKER_SEED`)."""
    speaker_pitch_st: Sequence[float] | None = None
    """Range of a speaker's pitch shift (semitones)."""
    speaker_tempo: Sequence[float] | None = None
    """Range of a speaker's habitual tempo factor (times ``speech_rate / 175`` in a scene)."""
    speaker_vtl: Sequence[float] | None = None
    """Range of a speaker's vocal-tract-length factor (> 1: longer tract, lower formants)."""
    speaker_level_db: Sequence[float] | None = None
    """Range of a speaker's level offset (dB) on top of ``speech_level_db``."""
    # natural turns (chimein.scenes.turns)
    pause_mode: str | None = None
    """``whole``: the ``pauses`` family synthesises the turn as one utterance and places its
    pauses at word boundaries inside it (continuation prosody, final lengthening);
    ``fragments``: each fragment synthesised alone, so each ends like a finished sentence
    (chimein-bench-v0's speech; kept to reproduce it)."""
    filler_rate: float | None = None
    """Probability that an addressed request has a filler ("um", "so") after the wake phrase."""
    turn_pause_rate: float | None = None
    """Probability of a mid-turn pause inside an addressed request (after its filler, at a
    mid-clause point or between wake phrase and body), with final lengthening before it."""
    correction_rate: float | None = None
    """Probability of a self-correction ("for five, no, ten minutes") in a request."""
    short_answer_rate: float | None = None
    """Probability that the user follows a request with a short complete answer ("yes", "no
    thanks") after the assistant's turn: a RESPOND cue of its own."""
    backchannel_rate: float | None = None
    """Probability of a bystander's backchannel ("mm hmm") in a mid-turn pause of the ``pauses``
    family and after each chit-chat line: annotated ``backchannel``, acting on it interrupts."""
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
    pack_levels: str | None = None
    """How loud a pack recording plays: ``recorded`` (the presets': each clip keeps its level
    relative to the other recordings of its pack, so loud alarms stay loud and quiet beeps quiet;
    :mod:`chimein.scenes.pack_levels`) or ``normalised`` (every clip at a level drawn from the
    range of its role, as a synthesised event: chimein-bench-v0's). Both draw the same numbers;
    only the recordings' ``level_db`` differs."""
    event_overlap_rate: float | None = None
    """Probability that the event of a ``proactive`` or ``monitoring`` segment (also inside
    ``multi_event``) gets a second sound event overlapping it in time: another help event with an
    INTERVENE window of its own, or a benign sound (IGNORE); drawn from a random stream of its
    own (:func:`chimein.scenes.sampler.families.overlap_event`). 0 / 0.15 / 0.3 in the easy /
    default / hard presets (chimein-bench-v0 lays 0 under its tiers)."""
    augment: Sequence[Mapping[str, Any]] | None = None
    """Audiomentations chain applied to the rendered scene, e.g.
    ``[{"name": "AddGaussianSNR", "p": 0.5, "min_snr_db": 10, "max_snr_db": 30}]``."""
    device_rate: float | None = None
    """Probability that a scene is recorded through a device model (microphone response, AGC,
    clipping, telephone band, codec, DC offset, hum: :mod:`chimein.scenes.device`) rather than an
    ideal microphone; the device is recorded in the spec. 0.3 / 0.5 / 0.7 in the easy / default
    / hard presets (chimein-bench-v0 lays 0 under its tiers)."""
    walk_rate: float | None = None
    """Probability that a person walks while speaking an utterance (a straight path at
    ``walk_speed_mps``, rendered by interpolating RIRs along it: :mod:`chimein.scenes.moving`).
    0.1 / 0.2 / 0.3 in the easy / default / hard presets (chimein-bench-v0 lays 0 under its tiers)."""
    walk_speed_mps: Sequence[float] | None = None
    """Range of the walking speed (m/s)."""
    device_models: Sequence[str] | None = None
    """Device models a scene draws one of (:data:`chimein.scenes.device.DEVICE_MODELS`)."""
    device_pool: int | None = None
    """Number of distinct devices scenes draw from (0: every scene draws its own device from its
    seed). Like ``room_pool``: device ``k`` of a pool depends only on ``device_pool_seed`` and
    ``k``, so a held-out tier can use devices no training scene was recorded with."""
    device_pool_seed: int | None = None
    """Seed of the device pool (with ``device_pool`` > 0)."""
    loudspeaker_rate: float | None = None
    """Probability that a scene places the assistant's loudspeaker (recorded in the spec; the env
    plays the assistant's replies from it, :mod:`chimein.scenes.loudspeaker`) like a smart
    speaker's: ``loudspeaker_distance_m`` below the microphones, at the same spot for every scene
    of a pooled room. Drawn from streams of its own, so no other draw of a scene moves; a scene
    without one gets a default position. 1 in the presets (chimein-bench-v0 lays 0 under its
    tiers)."""
    loudspeaker_distance_m: Sequence[float] | None = None
    """Range of the loudspeaker's distance (m) from the microphone array's centre."""
    loudspeaker_level_db: Sequence[float] | None = None
    """Range of the dry level (dBFS RMS) of the assistant's replies at the loudspeaker."""
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
        rng_("speaker_pitch_st", -8, 8)
        rng_("speaker_tempo", 0.6, 1.6)
        rng_("speaker_vtl", 0.8, 1.25)
        rng_("speaker_level_db", -12, 12)
        self._validate_speech()
        rng_("lead_s", 0, 30)
        rng_("tail_s", 0, 30)
        rng_("multi_event_duration_s", 10, 600)
        for p in self.sound_packs or ():
            _pack(str(p))  # loads and validates the manifest (errors name file:line and field)
        from chimein.scenes.pack_levels import LEVEL_MODES

        if self.pack_levels not in LEVEL_MODES:
            raise ConfigError(f"scenes config: field 'pack_levels': use one of {LEVEL_MODES}, got {self.pack_levels!r}")
        if not 0.0 <= float(self.event_overlap_rate) <= 1.0:  # type: ignore[arg-type]
            raise ConfigError(f"scenes config: field 'event_overlap_rate': must be in [0, 1], got {self.event_overlap_rate}")
        self._validate_device()
        rng_("walk_speed_mps", 0.2, 2.5)
        rng_("loudspeaker_distance_m", 0.03, 0.5)
        rng_("loudspeaker_level_db", -60, 0)
        for name in ("distractor_rate", "overlap", "pack_fraction", "device_rate", "walk_rate", "loudspeaker_rate",
                     "filler_rate", "turn_pause_rate",
                     "correction_rate", "short_answer_rate", "backchannel_rate"):
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
        for name in ("device_pool", "device_pool_seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"scenes config: field '{name}': a non-negative integer, got {v!r}")
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

    def _validate_device(self) -> None:
        models = self.device_models
        if models is None:
            return
        from chimein.scenes.device import DEVICE_MODELS

        if isinstance(models, str) or not isinstance(models, Sequence) or not models:
            raise ConfigError(f"scenes config: field 'device_models': a non-empty list from {sorted(DEVICE_MODELS)}, got {models!r}")
        for m in models:
            if m not in DEVICE_MODELS:
                raise ConfigError(f"scenes config: field 'device_models': unknown device model {m!r}; use {sorted(DEVICE_MODELS)}")

    def _validate_speech(self) -> None:
        from chimein.scenes.talkers import GENERATOR_NAMES, voices_of

        if self.pause_mode not in ("whole", "fragments"):
            raise ConfigError(f"scenes config: field 'pause_mode': use whole or fragments, got {self.pause_mode!r}")
        n = self.speakers_per_voice
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 1000:
            raise ConfigError(f"scenes config: field 'speakers_per_voice': an integer in [0, 1000], got {n!r}")
        gens = self.speech_generators
        if isinstance(gens, str) or not isinstance(gens, Sequence) or not gens:
            raise ConfigError(f"scenes config: field 'speech_generators': a non-empty list from {GENERATOR_NAMES}, got {gens!r}")
        for g in gens:
            if g not in GENERATOR_NAMES:
                raise ConfigError(f"scenes config: field 'speech_generators': unknown generator {g!r}; use {GENERATOR_NAMES}")
        if n == 0 and list(gens) != ["espeak-ng"]:
            raise ConfigError("scenes config: field 'speech_generators': other generators need the speaker model; "
                              "set speakers_per_voice >= 1 (0 means v0's espeak-ng talkers)")
        if not isinstance(self.speech_voices, Mapping | type(None)):
            raise ConfigError(f"scenes config: field 'speech_voices': a mapping generator -> [voices], got {self.speech_voices!r}")
        for g, voices in dict(self.speech_voices or {}).items():
            if g not in GENERATOR_NAMES:
                raise ConfigError(f"scenes config: field 'speech_voices': unknown generator {g!r}; use {GENERATOR_NAMES}")
            if isinstance(voices, str) or not isinstance(voices, Sequence):
                raise ConfigError(f"scenes config: field 'speech_voices.{g}': a list of voices, got {voices!r}")
        if n:
            from chimein.scenes.speech.generators import generator_voices

            for g in gens:
                known = generator_voices(g)
                for v in voices_of(self, g):
                    if g != "espeak-ng" and v not in known:
                        raise ConfigError(f"scenes config: field 'speech_voices.{g}': unknown voice {v!r}; use {known}")


#: Difficulty presets. ``default`` defines every knob; the others override some.
PRESETS: dict[str, dict[str, Any]] = {
    "default": dict(
        room_length=[3.0, 8.0], room_width=[2.5, 6.0], room_height=[2.4, 3.2], rt60=[0.2, 0.6],
        ray_tracing=False, room_pool=0, positions_per_room=8, room_pool_seed=0,
        mic_shape="single", n_mics=1, mic_spacing=0.05,
        snr_db=[10.0, 30.0], noise_kinds=["pink", "brown", "hvac", "babble", "white"],
        speech_level_db=[-30.0, -22.0], event_level_db=[-32.0, -20.0], distractor_level_db=[-36.0, -24.0],
        speech_rate=[150.0, 200.0], speech_pitch=[35.0, 65.0], pause_s=[0.5, 1.5],
        speech_generators=["espeak-ng", "piper", "flite"], speech_voices=None, speakers_per_voice=4,
        speaker_pool_seed=0, speaker_pitch_st=[-3.0, 3.0], speaker_tempo=[0.9, 1.1], speaker_vtl=[0.92, 1.1],
        speaker_level_db=[-3.0, 3.0], pause_mode="whole", filler_rate=0.25, turn_pause_rate=0.25,
        correction_rate=0.1, short_answer_rate=0.15, backchannel_rate=0.3,
        distractor_rate=0.3, overlap=0.15, lead_s=[0.8, 2.4], tail_s=[0.8, 2.4],
        multi_event_duration_s=[30.0, 120.0], respond_window_s=3.0, intervene_window_s=5.0,
        event_classes=None, recorded_sounds_dir=None, sound_packs=[], pack_fraction=0.5, augment=[],
        pack_levels="recorded", event_overlap_rate=0.15,
        device_rate=0.5, device_models=None, device_pool=0, device_pool_seed=0, walk_rate=0.2,
        walk_speed_mps=[0.5, 1.4], loudspeaker_rate=1.0, loudspeaker_distance_m=[0.05, 0.15],
        loudspeaker_level_db=[-32.0, -20.0],
    ),
    "easy": dict(
        room_length=[3.0, 6.0], room_width=[2.5, 5.0], rt60=[0.15, 0.35], snr_db=[22.0, 35.0],
        noise_kinds=["pink", "brown", "hvac"], speech_rate=[150.0, 175.0], distractor_rate=0.0, overlap=0.0,
        multi_event_duration_s=[30.0, 45.0], device_rate=0.3, walk_rate=0.1, event_overlap_rate=0.0,
    ),
    "hard": dict(
        room_length=[4.0, 10.0], room_width=[3.0, 8.0], rt60=[0.5, 0.9], snr_db=[0.0, 12.0],
        noise_kinds=["babble", "hvac", "pink", "white"], speech_level_db=[-36.0, -24.0],
        event_level_db=[-40.0, -26.0], distractor_level_db=[-32.0, -22.0], speech_rate=[130.0, 240.0],
        pause_s=[0.7, 1.5], distractor_rate=0.8, overlap=0.5, device_rate=0.7, walk_rate=0.3,
        event_overlap_rate=0.3,
        augment=[{"name": "LowPassFilter", "p": 0.3, "min_cutoff_freq": 2500, "max_cutoff_freq": 6000},
                 {"name": "AddGaussianSNR", "p": 0.3, "min_snr_db": 10.0, "max_snr_db": 25.0}],
    ),
}


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


#: Scenes play at most this much (s) of a pack recording (the rest is cropped).
MAX_RECORDING_S = 20.0


@functools.lru_cache(maxsize=32)
def _pack(path: str) -> Any:
    """Load and validate a sound pack (manifest problems: SpecError naming file:line), and
    refuse it (ConfigError) when an INTERVENE entry's window would open after its sound ended:
    :func:`~chimein.scenes.packs.onset_delay_problem` on the part of the clip a scene plays
    (header duration, at most :data:`MAX_RECORDING_S`), the rule of ``validate_audio``."""
    from chimein.scenes.packs import SoundPack, onset_delay_problem

    pack = SoundPack.load(path)
    bad = []
    for e, line in zip(pack.entries, pack.lines, strict=True):
        problem = onset_delay_problem(e, _header_s(e)) if e.action == "INTERVENE" else None
        if problem is not None:
            bad.append(f"{pack.manifest}:{line}: pack entry {e.id!r}: {problem}")
    if bad:
        raise ConfigError(
            f"scenes config: field 'sound_packs': {len(bad)} INTERVENE recording(s) would open "
            f"their window after the sound has ended (scenes play at most {MAX_RECORDING_S:g} s "
            "of a clip); give each a smaller onset_delay_s in the manifest:\n" + "\n".join(bad))
    return pack


@functools.lru_cache(maxsize=65536)
def _header_s(entry: Any) -> float:
    """How much of ``entry``'s clip a scene plays (s), from the file header (no decoding)."""
    return min(float(entry.duration_s), MAX_RECORDING_S)


@functools.lru_cache(maxsize=4096)
def _played(entry: Any, sample_rate: int) -> tuple[Pieces, float]:
    """Speech pieces (:func:`chimein.scenes.pack_speech.speech_pieces`) and duration of the part
    of ``entry``'s recording a scene plays (the first :data:`MAX_RECORDING_S` seconds)."""
    from chimein.scenes.pack_speech import speech_pieces

    x = entry.load(sample_rate)
    dur = min(x.shape[0] / sample_rate, MAX_RECORDING_S)
    pieces = tuple((a, min(b, dur)) for a, b in speech_pieces(x, sample_rate) if a < dur)
    return pieces or ((0.0, dur),), dur


