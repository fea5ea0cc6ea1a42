"""``ResponseTimingEnv``: hear a scene chunk by chunk, decide each chunk to wait, respond or intervene."""

from __future__ import annotations

import contextlib
import math
import os
import weakref
from collections.abc import Mapping
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from chimein.config import unknown_key_error
from chimein.envs.core import (
    EchoMaker,
    EnvConfig,
    EpisodeAudio,
    add_echo,
    refresh_frames,
    scene_frames,
)
from chimein.envs.scoring import EPS_S, ActionLog, OnlineScorer, decision_times
from chimein.envs.sources import SceneSource, make_source
from chimein.envs.viz import timeline_rgb, timeline_text
from chimein.errors import SpecError
from chimein.scenes.spec import SceneSpec

#: Options of the env itself, about where scenes come from and how they are shown; every other
#: option is an :class:`~chimein.envs.core.EnvConfig` field (:data:`~chimein.envs.core.ENV_OPTIONS`).
SOURCE_OPTIONS = ("scenes", "order", "scene_overrides", "cache_size", "rir_cache_dir", "render_mode")


def scoring_plan(cache: weakref.WeakKeyDictionary[Any, tuple[list[float], OnlineScorer]], scene: Any, n: int,
                 cfg: EnvConfig) -> tuple[list[float], OnlineScorer]:
    """Decision times (``n + 1``, the last for the final observation) and an unused scorer
    for ``scene``, cached per scene object (replayed scenes skip re-planning; use
    ``OnlineScorer.fresh()`` on the template)."""
    try:
        hit = cache.get(scene)
    except TypeError:  # not weak-referenceable
        hit = None
    if hit is not None and hit[1].n_steps == n:
        return hit
    times = decision_times(n + 1, cfg.chunk_s)
    plan = (times.tolist(), OnlineScorer(scene.spec.annotations, times[:n], cfg.reward))
    with contextlib.suppress(TypeError):
        cache[scene] = plan
    return plan


def check_action(action: Any) -> int:
    """``action`` as an int in {0, 1, 2}, or a ValueError naming it."""
    try:
        if isinstance(action, np.ndarray):
            if action.size != 1:
                raise TypeError
            action = action.reshape(()).item()
        if isinstance(action, (bool, np.bool_, str, bytes)) or (
                isinstance(action, (float, np.floating)) and not float(action).is_integer()):
            raise TypeError
        a = int(action)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"action {action!r} is not in the action space Discrete(3); use 0 WAIT, "
                         "1 RESPOND or 2 INTERVENE") from None
    if not 0 <= a <= 2:
        raise ValueError(f"action {action!r} is not in the action space Discrete(3); use 0 WAIT, "
                         "1 RESPOND or 2 INTERVENE")
    return a


class ResponseTimingEnv(gym.Env[dict[str, np.ndarray], np.int64]):
    """
    ## Description

    An always-listening assistant hears an acoustic scene (a simulated room with a user, other
    people, a TV, sound events and noise) one chunk at a time and decides after every chunk
    whether to stay quiet, answer, or interrupt to warn. The scene's annotations say when a
    response is called for (a question addressed to the assistant), when an intervention is (a
    smoke alarm, a fall, a monitored appliance finishing), what must be ignored (TV speech,
    benign sounds), and when the user is talking or pausing mid-turn (acting then is an
    interruption). The reward is computed by :func:`chimein.envs.scoring.score`, the same
    function evaluation uses.

    ## Action Space

    ``Discrete(3)``:

    | Num | Action    | Meaning                                               |
    |-----|-----------|-------------------------------------------------------|
    | 0   | WAIT      | stay quiet                                            |
    | 1   | RESPOND   | answer / acknowledge (conversational reply)           |
    | 2   | INTERVENE | interrupt to warn or notify (alarm, fall, appliance)  |

    After an effective RESPOND/INTERVENE the assistant speaks for ``speak_s`` seconds; actions
    during that time have no effect (they are logged with ``effective=False`` and not scored).

    ## Observation Space

    ``Dict`` with three keys:

    | Key                  | Space                                           | Meaning |
    |----------------------|-------------------------------------------------|---------|
    | ``audio``            | ``Box(-1, 1, (chunk_samples, n_mics), float32)`` | the chunk just heard (``obs_mode="audio"``), clipped to [-1, 1] |
    | ``logmel``           | ``Box(log(1e-10), log(n_fft*win), (n_mics, n_frames, n_mels), float32)`` | the last ``n_frames`` log-mel frames per microphone, oldest first (25 ms window, 10 ms hop, causal; ``obs_mode="logmel"``) |
    | ``assistant_speaking`` | ``MultiBinary(1)``                            | 1 if the assistant is still speaking at this decision instant (an action now has no effect) |
    | ``time_since_spoke`` | ``Box(0, max_time_since_spoke_s, (1,), float32)`` | seconds since the assistant last finished speaking (0 while speaking; the cap before it ever spoke) |

    Exactly one of ``audio``/``logmel`` is present. ``chunk_samples = chunk_ms * sample_rate /
    1000`` (1280 at the defaults). With ``echo=True`` the assistant hears itself: after an
    effective action its reply (generator speech in ``echo_voice``, or the recording
    ``echo_clip``, ``speak_s`` long) plays from the scene's loudspeaker (the spec's
    ``loudspeaker``, else 10 cm below the microphones), reaches each microphone through the
    room's RIRs and is attenuated by echo cancellation to ``echo_residual_db`` (see
    :mod:`chimein.scenes.echo`); the reverberant tail outlasts ``speak_s`` slightly, as in
    a room. Scenes with more microphones than ``n_mics`` are observed
    through their first ``n_mics`` channels (channel 0 is the reference); fewer raise an error.

    ## Rewards

    Defaults of :class:`~chimein.envs.scoring.RewardConfig` (all configurable via ``reward=``):

    | Event | Reward | When |
    |-------|--------|------|
    | hit | ``+1 x timeliness`` | first action of the right kind inside a cue window; timeliness is 1 within the grace period (1.0 s RESPOND, 0.5 s INTERVENE), then falls linearly to 0.25 at the window end |
    | wrong kind | ``+0.25 x timeliness`` | first action inside the window is of the other kind |
    | false alarm | ``-0.5`` | acting outside any window (and outside user speech) |
    | interruption | ``-1.0`` | acting during user speech or a mid-turn pause (also on top of a RESPOND hit; never for INTERVENE cues) |
    | duplicate | ``-0.25`` | acting again inside an already-answered window |
    | miss | ``-0.5`` | a window closes without an action |
    | safety-critical miss | ``-2.0`` | a safety-critical window (smoke alarm, fall, ...) closes without an action |

    ``reward={"dense": False}`` pays the episode total at the last step instead.

    ## Starting State

    ``reset(seed=s)`` draws the episode's scene from the env's generator: a fresh sample of the
    scene distribution (rendered with a shared RIR cache), or a scene of the dataset/list (at
    random, or scene ``s`` with ``order="sequential"``). The same seed always gives the same
    episode. The first observation is chunk 0; the assistant has not spoken.

    ## Episode End

    ``terminated`` is always False. The episode is truncated after the last chunk of the scene
    (``ceil(duration / chunk)`` steps, or up to ``max_duration_s``); the final observation is a
    silent chunk. The final ``info`` holds ``"outcome"`` (``EpisodeOutcome.to_dict()``: per-cue
    outcomes, penalties, reward) and ``"action_log"`` (``ActionLog.to_dict()``, re-scorable
    offline with :func:`~chimein.envs.scoring.score`).

    ## Arguments

    ```python
    import gymnasium as gym, chimein
    env = gym.make("chimein/ProactiveHelp-v0", chunk_ms=80, obs_mode="logmel", echo=True)
    ```

    * ``scenes``: sampler config mapping, family/difficulty name, dataset directory, list of
      ``RenderedScene``/``SceneSpec`` or a :class:`~chimein.envs.sources.SceneSource`
      (default: the mixed distribution). ``scene_overrides`` merges keys into a sampler config.
    * every :class:`~chimein.envs.core.EnvConfig` field (its docstring gives their defaults and
      ranges): ``chunk_ms``, ``obs_mode``, ``n_mics``, ``sample_rate``, ``n_frames``, ``n_mels``,
      ``speak_s``, ``echo``, ``echo_level_db``, ``echo_residual_db``, ``echo_voice``,
      ``echo_clip``, ``max_time_since_spoke_s``, ``max_duration_s``,
      ``reward`` (a :class:`~chimein.envs.scoring.RewardConfig` or a mapping of its fields).
    * ``order`` (``"random"``/``"sequential"``), ``cache_size`` (8 rendered scenes),
      ``rir_cache_dir``, ``render_mode`` (``"rgb_array"`` timeline image or ``"ansi"`` text).

    ## Version History

    * v0: initial version.
    """

    metadata = {"render_modes": ["rgb_array", "ansi"], "render_fps": 12.5}

    def __init__(
        self,
        scenes: Any = None,
        *,
        order: str = "random",
        scene_overrides: Mapping[str, Any] | None = None,
        cache_size: int = 8,
        rir_cache_dir: str | os.PathLike[str] | None = None,
        render_mode: str | None = None,
        **options: Any,
    ) -> None:
        self.config = EnvConfig.from_options(options, extra=SOURCE_OPTIONS)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise SpecError(f"env: option 'render_mode': got {render_mode!r}; use one of "
                            f"{self.metadata['render_modes']} or None")
        self.render_mode = render_mode
        self.source: SceneSource = make_source(scenes, order=order, cache_size=cache_size,
                                               scene_overrides=scene_overrides, rir_cache_dir=rir_cache_dir)
        cfg = self.config
        self.observation_space = cfg.observation_space()  # type: ignore[assignment]
        self.action_space = cfg.action_space()  # type: ignore[assignment]
        self._key = cfg.obs_mode
        self._cursor = 0
        self._C = cfg.chunk_samples
        self._speak_s = float(cfg.speak_s)
        self._cap = float(cfg.max_time_since_spoke_s)
        self._echoes = EchoMaker(cfg, rir_cache_dir)
        self._echo: np.ndarray | None = None
        self._lm = cfg.logmel if cfg.obs_mode == "logmel" else None
        self._pad = cfg.n_frames
        self._n = 0
        self._k = 0
        self.scene: Any = None
        self._plans: weakref.WeakKeyDictionary[Any, tuple[list[float], OnlineScorer]] = weakref.WeakKeyDictionary()
        self.metadata = {**self.metadata, "render_fps": 1.0 / cfg.chunk_s}

    # ---------------------------------------------------------------- episode setup
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode; ``options={"scene": RenderedScene | SceneSpec}`` plays that scene."""
        super().reset(seed=seed)
        if seed is not None:
            self._cursor = int(seed)
        scene = None
        if options:
            unknown = sorted(set(options) - {"scene"})
            if unknown:
                raise unknown_key_error(unknown[0], ["scene"], "reset options")
            scene = options.get("scene")
            if isinstance(scene, SceneSpec):
                from chimein.envs.sources import SequenceSource

                scene = SequenceSource([scene]).load(0)
        if scene is None:
            key = self.source.draw_key(self.np_random, self._cursor)
            self._cursor += 1
            scene = self.source.load(key)
        self._begin(scene)
        return self._obs(0), {"scene_id": self.spec_id, "n_steps": self._n,
                              "duration_s": self._n * self.config.chunk_s}

    def _begin(self, scene: Any) -> None:
        cfg = self.config
        ep = EpisodeAudio(scene, cfg)
        n = ep.n
        self.scene = scene
        self._ep = ep
        self._n = n
        self._k = 0
        self._times, template = scoring_plan(self._plans, scene, n, cfg)
        self._scorer = template.fresh()
        self._busy_until = -math.inf
        self._events: list[tuple[int, int, bool]] = []
        self._echo = self._echoes(scene)  # once per episode (cached per scene and options)
        if self._lm is not None:
            self._frames = scene_frames(ep, cfg)

    @property
    def spec_id(self) -> str | None:
        """The id of the current scene (None before the first reset)."""
        return None if self.scene is None else self.scene.spec.id

    # ---------------------------------------------------------------- stepping
    def _obs(self, k: int) -> dict[str, np.ndarray]:
        t = self._times[k]
        busy = self._busy_until
        spk = 1 if t < busy - EPS_S else 0  # exactly the rule that makes an action a no-op
        # before the first utterance busy is -inf: the difference is inf -> the cap
        tss = t - busy
        tss = 0.0 if tss < 0.0 else (self._cap if tss > self._cap else tss)
        if self._lm is None:
            ep = self._ep
            main = (ep.head[k] if k < ep.full else ep.tail[k - ep.full]).copy()
        else:
            end = self._pad + (k + 1) * self.config.frames_per_chunk
            main = self._frames[end - self._pad: end].transpose(1, 0, 2).copy()
        return {self._key: main, "assistant_speaking": np.array([spk], np.int8),
                "time_since_spoke": np.array([tss], np.float32)}

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], SupportsFloat, bool, bool, dict[str, Any]]:
        a = action if type(action) is int and 0 <= action <= 2 else check_action(action)
        k = self._k
        if k >= self._n:
            raise RuntimeError("step() called without an active episode; call reset() first"
                               if self._n == 0 else "the episode is over (truncated); call reset()")
        eff = True
        if a:
            t = self._times[k]
            if t < self._busy_until - EPS_S:
                eff = False
            else:
                self._busy_until = t + self._speak_s
                if self._echo is not None:
                    buf = self._ep.make_private()
                    s, e = add_echo(buf, (k + 1) * self._C, self._echo)
                    if self._lm is not None:
                        refresh_frames(self._frames, self._pad, buf, self._lm, s, e)
            self._events.append((k, a, eff))
            r = self._scorer.step(k, a, eff)
        elif k == self._scorer.next_event:
            r = self._scorer.step(k, 0, True)
        else:
            r = 0.0
        k += 1
        self._k = k
        if k < self._n:
            return self._obs(k), r, False, False, {}
        return self._obs(k), r, False, True, self._final_info()

    def _final_info(self) -> dict[str, Any]:
        log = self.action_log()
        return {"outcome": self._scorer.outcome().to_dict(),
                "action_log": ActionLog.grid_dict(self.config.chunk_s, log.actions, log.effective),
                "scene_id": self.spec_id}

    def action_log(self) -> ActionLog:
        """The actions of the current episode so far (one entry per step taken)."""
        k = self._k
        acts = np.zeros(k, np.int8)
        eff = np.ones(k, bool)
        for step, a, e in self._events:
            acts[step], eff[step] = a, e
        return ActionLog(decision_times(k, self.config.chunk_s), acts, eff, chunk_s=self.config.chunk_s)

    # ---------------------------------------------------------------- rendering
    def _timeline_args(self) -> tuple[Any, float, list[tuple[float, int, bool]], float | None]:
        if self.scene is None:
            raise RuntimeError("render() needs an episode; call reset() first")
        dur = self._n * self.config.chunk_s
        events = [(self._times[k], a, e) for k, a, e in self._events]
        now = self._times[self._k - 1] if self._k else 0.0
        return self.scene.spec.annotations, dur, events, now

    def render(self) -> np.ndarray | str | None:  # type: ignore[override]
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; use render_mode='rgb_array' or 'ansi'")
            return None
        ann, dur, events, now = self._timeline_args()
        if self.render_mode == "ansi":
            return timeline_text(ann, dur, events, now)
        return timeline_rgb(ann, dur, events, self._speak_s, now)

    def close(self) -> None:
        self.source.close()
        super().close()
