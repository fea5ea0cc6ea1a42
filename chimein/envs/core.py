"""What the single and the vector environment share: validated options, spaces, episode setup.

:class:`EnvConfig` holds every option that shapes an episode (chunking, observation, assistant
speech, its echo, reward) and builds the observation/action spaces, so ``ResponseTimingEnv`` and
``ResponseTimingVectorEnv`` cannot disagree. The helpers below turn a rendered scene into the
per-episode buffers both step over: a chunk-aligned, clipped copy of the audio (plus one silent
chunk for the final observation), in ``logmel`` mode every frame of it, and with ``echo=True``
the assistant's reply as the microphones hear it (:class:`EchoMaker`, once per episode).
"""

from __future__ import annotations

import contextlib
import math
import os
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from chimein.config import read_config
from chimein.envs.features import LogMel
from chimein.envs.scoring import RewardConfig
from chimein.errors import ConfigError, SpecError
from chimein.scenes.echo import DEFAULT_VOICE, assistant_echo, split_voice

OBS_MODES = ("audio", "logmel")
CHUNK_MS_RANGE = (20.0, 400.0)


@dataclass(frozen=True)
class EnvConfig:
    """Options that shape an episode: the one spelling of the env options.

    ``ResponseTimingEnv``, ``ResponseTimingVectorEnv``, suites and searches all take these
    names (:data:`ENV_OPTIONS`) and build this object with :meth:`from_options`; values are
    validated on construction (a :class:`~chimein.errors.ConfigError` naming the option).

    Parameters
    ----------
    chunk_ms
        Decision chunk, 20-400 ms, a whole number of samples (a multiple of 10 ms for logmel).
    obs_mode
        ``"audio"`` (raw chunk) or ``"logmel"`` (the last ``n_frames`` log-mel frames).
    n_mics, sample_rate
        Microphone channels observed (the first ones of the scene) and sample rate.
    n_frames, n_mels
        Log-mel context frames and mel bands (``obs_mode="logmel"``).
    speak_s
        How long the assistant speaks after an effective RESPOND/INTERVENE.
    echo
        Play the assistant's replies into the room while it speaks: from the scene's
        loudspeaker (:mod:`chimein.scenes.loudspeaker`; a scene without one has it 10 cm below
        its microphones), through the room's RIRs to every microphone, minus echo cancellation
        (:mod:`chimein.scenes.echo`).
    echo_level_db
        Dry level of the replies at the loudspeaker (dBFS RMS, [-60, 0]); None: the scene's
        loudspeaker level (-26 dBFS when the scene names none).
    echo_residual_db
        The echo left after echo cancellation relative to the raw echo ([-100, 0] dB; -20: an
        echo return loss enhancement of 20 dB; 0: no echo cancellation).
    echo_voice
        ``generator/voice`` speaking the replies (default ``espeak-ng/en-us+f2``).
    echo_clip
        A recording (any format libsndfile reads) played as the reply instead of generator
        speech, looped to fill ``speak_s``; None: generator speech.
    max_time_since_spoke_s
        Cap of the ``time_since_spoke`` observation.
    max_duration_s
        Cut long scenes (cues starting later are not scored); None: whole scenes.
    reward
        A :class:`~chimein.envs.scoring.RewardConfig` (or a mapping of its fields).
    """

    chunk_ms: float = 80.0
    obs_mode: str = "audio"
    n_mics: int = 1
    sample_rate: int = 16000
    n_frames: int = 100
    n_mels: int = 64
    speak_s: float = 2.0
    echo: bool = False
    echo_level_db: float | None = None
    echo_residual_db: float = -20.0
    echo_voice: str = DEFAULT_VOICE
    echo_clip: str | None = None
    max_time_since_spoke_s: float = 30.0
    max_duration_s: float | None = None
    reward: RewardConfig = field(default_factory=RewardConfig)

    def __post_init__(self) -> None:
        def num(name: str, lo: float, hi: float, integer: bool = False) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not math.isfinite(v):
                raise ConfigError(f"env: option '{name}': expected a number, got {v!r}")
            if integer and v != int(v):
                raise ConfigError(f"env: option '{name}': expected an integer, got {v!r}")
            if not lo <= v <= hi:
                raise ConfigError(f"env: option '{name}': must be in [{lo}, {hi}], got {v}")

        num("chunk_ms", *CHUNK_MS_RANGE)
        num("n_mics", 1, 16, integer=True)
        num("sample_rate", 8000, 48000, integer=True)
        num("n_frames", 1, 2000, integer=True)
        num("n_mels", 1, 128, integer=True)
        num("speak_s", 0.0, 60.0)
        if self.echo_level_db is not None:
            num("echo_level_db", -60.0, 0.0)
        num("echo_residual_db", -100.0, 0.0)
        num("max_time_since_spoke_s", 0.1, 86400.0)
        if self.max_duration_s is not None:
            num("max_duration_s", 0.001, 86400.0)
        if self.obs_mode not in OBS_MODES:
            raise ConfigError(f"env: option 'obs_mode': got {self.obs_mode!r}; use one of {OBS_MODES}")
        if not isinstance(self.echo, (bool, np.bool_)):
            raise ConfigError(f"env: option 'echo': expected true/false, got {self.echo!r}")
        self._check_echo_source()
        if not isinstance(self.reward, RewardConfig):
            object.__setattr__(self, "reward", read_config(RewardConfig, self.reward, "env.reward"))
        samples = self.chunk_ms * self.sample_rate / 1000.0
        if abs(samples - round(samples)) > 1e-9:
            raise ConfigError(f"env: option 'chunk_ms': {self.chunk_ms} ms is {samples:g} samples at "
                            f"{self.sample_rate} Hz; choose a chunk that is a whole number of samples")
        for name in ("n_mics", "sample_rate", "n_frames", "n_mels"):
            object.__setattr__(self, name, int(getattr(self, name)))
        if self.obs_mode == "logmel":
            hop = self.logmel.hop
            if round(samples) % hop:
                raise ConfigError(f"env: option 'chunk_ms': with obs_mode='logmel' the chunk must be a multiple "
                                f"of the 10 ms feature hop, got {self.chunk_ms} ms")

    def _check_echo_source(self) -> None:
        if not isinstance(self.echo_voice, str):
            raise ConfigError(f"env: option 'echo_voice': expected 'generator/voice', got {self.echo_voice!r}")
        try:
            split_voice(self.echo_voice, "env: option 'echo_voice'")
        except SpecError as e:
            raise ConfigError(str(e)) from None
        clip = self.echo_clip
        if clip is not None:
            if not isinstance(clip, (str, os.PathLike)):
                raise ConfigError(f"env: option 'echo_clip': expected the path of a recording, got {clip!r}")
            if not Path(clip).is_file():
                raise ConfigError(f"env: option 'echo_clip': no file at {str(clip)!r}; give a recording of the "
                                  "assistant's reply (WAV, FLAC, OGG, ...) or null for generator speech")
            object.__setattr__(self, "echo_clip", str(clip))

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None, extra: tuple[str, ...] = ()) -> EnvConfig:
        """Build from keyword options (:func:`chimein.config.read_config`); an unknown name
        raises :class:`~chimein.errors.ConfigError` with the closest valid name (``extra``:
        names the caller handles itself, listed among the valid ones but not read here)."""
        return read_config(cls, dict(options or {}), "env", also_known=extra)

    # ---------------------------------------------------------------- derived values
    @property
    def chunk_samples(self) -> int:
        return int(round(self.chunk_ms * self.sample_rate / 1000.0))

    @property
    def chunk_s(self) -> float:
        """Chunk length in seconds (exactly ``chunk_samples / sample_rate``)."""
        return self.chunk_samples / self.sample_rate

    @property
    def logmel(self) -> LogMel:
        lm = self.__dict__.get("_logmel")
        if lm is None:
            lm = LogMel(self.sample_rate, self.n_mels)
            object.__setattr__(self, "_logmel", lm)
        return lm

    @property
    def frames_per_chunk(self) -> int:
        return self.chunk_samples // self.logmel.hop

    # ---------------------------------------------------------------- spaces
    def observation_space(self) -> spaces.Dict:
        """``Dict(audio|logmel, assistant_speaking, time_since_spoke)``; exact dtypes and bounds."""
        if self.obs_mode == "audio":
            main: spaces.Box = spaces.Box(-1.0, 1.0, (self.chunk_samples, self.n_mics), np.float32)
        else:
            lm = self.logmel
            main = spaces.Box(np.float32(lm.low), np.float32(lm.high),
                              (self.n_mics, self.n_frames, self.n_mels), np.float32)
        return spaces.Dict({
            self.obs_mode: main,
            "assistant_speaking": spaces.MultiBinary(1),
            "time_since_spoke": spaces.Box(0.0, np.float32(self.max_time_since_spoke_s), (1,), np.float32),
        })

    @staticmethod
    def action_space() -> spaces.Discrete:
        return spaces.Discrete(3)


#: Every option of :class:`EnvConfig` (the one spelling of the env options; the envs add their
#: own scene-source options, :data:`chimein.envs.env.SOURCE_OPTIONS`).
ENV_OPTIONS: tuple[str, ...] = tuple(f.name for f in fields(EnvConfig))

#: The env options a suite or an attack search records when it names none: the defaults of
#: the decision chunk and of the assistant's speech (what ``chimein-bench-v0`` is played with).
DEFAULT_ENV: Mapping[str, Any] = {"chunk_ms": EnvConfig.chunk_ms, "speak_s": EnvConfig.speak_s}


def default_env() -> dict[str, Any]:
    """A fresh copy of :data:`DEFAULT_ENV` (for a dataclass ``default_factory``)."""
    return dict(DEFAULT_ENV)


# ============================================================================================
# Episode setup
# ============================================================================================
def scene_audio(scene: Any, cfg: EnvConfig) -> tuple[np.ndarray, int]:
    """Validate a rendered scene against the env; return ``(audio view, n_steps)``.

    The view holds the first ``n_mics`` channels (channel 0 is the reference microphone) and is
    cropped to ``max_duration_s``. ``n_steps = ceil(samples / chunk_samples)`` (the last chunk
    is zero-padded).
    """
    sid = getattr(getattr(scene, "spec", None), "id", "?")
    audio = getattr(scene, "audio", None)
    if not isinstance(audio, np.ndarray) or audio.ndim != 2 or audio.shape[0] == 0:
        raise SpecError(f"scene {sid!r}: audio must be a non-empty (samples, mics) array, got "
                        f"{getattr(audio, 'shape', type(audio).__name__)}")
    if int(scene.sample_rate) != cfg.sample_rate:
        raise SpecError(f"scene {sid!r}: sample rate {scene.sample_rate} Hz differs from the env's "
                        f"{cfg.sample_rate} Hz; render scenes at {cfg.sample_rate} Hz or set sample_rate")
    if audio.shape[1] < cfg.n_mics:
        raise SpecError(f"scene {sid!r}: has {audio.shape[1]} microphone channel(s) but the env observes "
                        f"n_mics={cfg.n_mics}; lower n_mics or render scenes with more microphones")
    n = audio.shape[0]
    if cfg.max_duration_s is not None:
        n = min(n, max(1, int(round(cfg.max_duration_s * cfg.sample_rate))))
    return audio[:n, : cfg.n_mics], -(-n // cfg.chunk_samples)


#: Scenes whose audio was found finite and within [-1, 1] (checked once per scene object).
_CLEAN: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def is_clean(scene: Any) -> bool:
    """Whether ``scene.audio`` is finite and within [-1, 1] (cached per scene object)."""
    clean = _CLEAN.get(scene)
    if clean is None:
        lo, hi = float(scene.audio.min()), float(scene.audio.max())  # NaN propagates: not clean
        clean = lo >= -1.0 and hi <= 1.0
        with contextlib.suppress(TypeError):  # not weak-referenceable: checked again next time
            _CLEAN[scene] = clean
    return clean


class EpisodeAudio:
    """The ``n + 1`` chunks an episode observes: ``n`` chunks of the scene (the last one
    zero-padded) and one silent chunk for the final observation.

    A clean scene (finite, within [-1, 1]) is read in place: full chunks are views of
    ``scene.audio`` and only the padded tail is copied, so replaying pre-rendered scenes costs
    no per-episode copy. Otherwise -- or with ``private=True`` (echo is added to the audio) --
    the episode gets its own clipped copy. Scenes are read, never written: do not modify a
    scene's audio while an environment plays it.
    """

    __slots__ = ("n", "C", "full", "head", "tail", "buf")

    def __init__(self, scene: Any, cfg: EnvConfig, private: bool = False) -> None:
        src, n = scene_audio(scene, cfg)
        C = cfg.chunk_samples
        self.n, self.C = n, C
        m = src.shape[1]
        if private or not is_clean(scene):
            buf = np.empty(((n + 1) * C, m), np.float32)
            np.clip(src, -1.0, 1.0, out=buf[: src.shape[0]])
            buf[src.shape[0]:] = 0.0
            if not np.isfinite(buf).all():
                raise SpecError(f"scene {scene.spec.id!r}: audio contains NaN or infinite samples; "
                                "re-render the scene")
            self.buf: np.ndarray | None = buf
            self.head = buf.reshape(n + 1, C, m)
            self.full = n + 1
            self.tail = self.head[:0]
        else:
            f = src.shape[0] // C
            self.buf = None
            self.head = src[: f * C].reshape(f, C, m)  # a view: splitting an axis never copies
            tail = np.zeros(((n + 1 - f) * C, m), np.float32)
            tail[: src.shape[0] - f * C] = src[f * C:]
            self.tail = tail.reshape(n + 1 - f, C, m)
            self.full = f

    def chunk(self, k: int) -> np.ndarray:
        """Chunk ``k`` (``0 <= k <= n``) as a read-only-by-convention view."""
        return self.head[k] if k < self.full else self.tail[k - self.full]

    def samples(self) -> np.ndarray:
        """All ``(n + 1) * C`` samples as one array (the private buffer, or a new copy)."""
        if self.buf is not None:
            return self.buf
        return np.concatenate([self.head.reshape(-1, self.head.shape[2]), self.tail.reshape(-1, self.tail.shape[2])])

    def make_private(self) -> np.ndarray:
        """Switch to a private copy (to add echo); return the sample buffer."""
        if self.buf is None:
            self.buf = np.ascontiguousarray(self.samples(), dtype=np.float32)
            self.head = self.buf.reshape(self.n + 1, self.C, self.buf.shape[1])
            self.full = self.n + 1
            self.tail = self.head[:0]
        return self.buf


def scene_frames(audio: EpisodeAudio, cfg: EnvConfig) -> np.ndarray:
    """Log-mel frames of the episode, ``(n_frames + (n + 1) * frames_per_chunk, n_mics, n_mels)``:
    ``n_frames`` rows of the floor value (the history before the scene), then every frame."""
    lm = cfg.logmel
    fr = lm.frames(audio.samples())
    out = np.empty((cfg.n_frames + fr.shape[0], fr.shape[1], fr.shape[2]), np.float32)
    out[: cfg.n_frames] = np.float32(lm.low)
    out[cfg.n_frames:] = fr
    return out


class EchoMaker:
    """The assistant's echo for each episode of one env: what ``echo=True`` adds to the
    microphones after an effective action.

    Calling it with a scene returns :func:`chimein.scenes.echo.assistant_echo` of the
    scene with the env's options (float32 ``(samples, n_mics)``: ``speak_s`` of reply plus the
    room's tail), or None without echo. The envs call it once per episode, at reset; results are
    cached per process by scene and options, and the RIRs come from an :class:`RIRCache` in
    ``rir_cache_dir`` (opened on first use), so pooled rooms and replayed scenes cost nothing.
    """

    def __init__(self, cfg: EnvConfig, rir_cache_dir: str | os.PathLike[str] | None = None) -> None:
        self.cfg = cfg
        self.rir_cache_dir = None if rir_cache_dir is None else str(rir_cache_dir)
        self._rirs: Any = None

    def __call__(self, scene: Any) -> np.ndarray | None:
        cfg = self.cfg
        if not cfg.echo or cfg.speak_s <= 0:
            return None
        if self._rirs is None:
            from chimein.scenes.rir import RIRCache

            self._rirs = RIRCache(self.rir_cache_dir)
        return assistant_echo(scene.spec, cfg.speak_s, n_mics=cfg.n_mics, level_db=cfg.echo_level_db,
                              residual_db=cfg.echo_residual_db, voice=cfg.echo_voice, clip=cfg.echo_clip,
                              cache=self._rirs)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_rirs": None}  # the cache holds a lock; reopened on first use


def add_echo(buf: np.ndarray, start: int, echo: np.ndarray) -> tuple[int, int]:
    """Add the echo (``(samples, channels)``, one signal per microphone) to ``buf`` from sample
    ``start`` (clipped to the buffer and to [-1, 1]); return the modified sample range."""
    end = min(buf.shape[0], start + echo.shape[0])
    if end > start:
        seg = buf[start:end]
        seg += echo[: end - start]
        np.clip(seg, -1.0, 1.0, out=seg)
    return start, end


def refresh_frames(frames: np.ndarray, pad: int, buf: np.ndarray, lm: LogMel, start: int, end: int) -> None:
    """Recompute the log-mel frames of ``buf`` whose windows overlap samples ``[start, end)``
    (``frames[pad + j]`` is frame ``j``)."""
    total = frames.shape[0] - pad
    j0 = max(0, start // lm.hop)
    j1 = min(total, -(-(end + lm.win) // lm.hop) - 1)
    if j1 > j0:
        frames[pad + j0: pad + j1] = lm.frames(buf, j0, j1)
