"""``ResponseTimingVectorEnv``: N response-timing episodes stepped as batched numpy.

Like Gymnasium's ``CartPoleVectorEnv``, one object holds the state of every sub-environment in
arrays and steps them together: the step is a handful of batched numpy operations, the
observation one fancy index into a :class:`ChunkPool` of episode audio (pre-rendered scenes are
copied into it once, not once per episode), and only slots whose action takes effect or whose
cue window closes run Python-level scoring. Scenes of upcoming episodes are loaded ahead by a
:class:`~chimein.envs.sources.Prefetcher` (thread or process pool), so stepping does not wait on
rendering.

Equivalence: sub-env ``i`` after ``reset(seed=s)`` plays exactly the episodes of
``ResponseTimingEnv`` reset with seed ``s + i`` and then reset without a seed at every episode
end -- what ``gymnasium.vector.SyncVectorEnv`` does -- so observations and rewards are identical
to ``SyncVectorEnv`` of the single env (tested), whatever the prefetch timing.

Examples
--------
>>> import numpy as np
>>> from chimein.scenes.spec import Annotations, Cue, Mics, Room, SceneSpec
>>> from chimein.scenes.render import RenderedScene
>>> spec = SceneSpec(id="s", seed=0, duration_s=1.0, room=Room(dims=(4.0, 3.0, 2.5)),
...                  mics=Mics(((2.0, 1.5, 1.2),)), sources=(),
...                  annotations=Annotations(cues=(Cue("c0", "RESPOND", (0.0, 0.9), "q"),)))
>>> scene = RenderedScene(np.zeros((16000, 1), np.float32), 16000, spec)
>>> envs = ResponseTimingVectorEnv(4, [scene])
>>> obs, info = envs.reset(seed=0)
>>> obs["audio"].shape
(4, 1280, 1)
>>> obs, rew, term, trunc, info = envs.step(np.array([1, 0, 2, 0]))
>>> rew.tolist()
[1.0, 0.0, 0.25, 0.0]
"""

from __future__ import annotations

import math
import os
import weakref
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from chimein.config import unknown_key_error
from chimein.envs.core import (
    EchoMaker,
    EnvConfig,
    EpisodeAudio,
    add_echo,
    refresh_frames,
    scene_frames,
)
from chimein.envs.env import SOURCE_OPTIONS, scoring_plan
from chimein.envs.scoring import EPS_S, ActionLog, OnlineScorer, decision_times
from chimein.envs.sources import Prefetcher, SceneSource, make_source
from chimein.envs.viz import timeline_rgb, timeline_text
from chimein.errors import SpecError

VECTOR_OPTIONS = (*SOURCE_OPTIONS, "num_envs", "prefetch", "prefetch_workers", "prefetch_backend", "autoreset_mode")


class ChunkPool:
    """Every sub-env's episode audio in one array, so one fancy index gathers a step's observations.

    Row ``r`` holds one episode's ``n + 1`` chunks (``arr[r, k]`` is chunk ``k``). After its
    episode ends, a row holding a clean scene stays cached (at most ``extra`` cached rows beyond
    one per sub-env, least recently used first out), so replaying pre-rendered scenes copies each
    scene into the pool once rather than once per episode. Rows that get echo written into them
    are private (never shared or cached).
    """

    def __init__(self, n_slots: int, chunk: int, mics: int, extra: int) -> None:
        self.limit = n_slots + max(0, int(extra))
        self.arr = np.zeros((0, 0, chunk, mics), np.float32)
        self.scene: list[Any] = []  # scene cached in each row (None: private or empty)
        self.refs: list[int] = []
        self.n1: list[int] = []  # chunks of the episode in each row
        self.free: OrderedDict[int, None] = OrderedDict()  # rows nobody plays, oldest first
        self.by_id: dict[int, int] = {}

    def _grow(self, rows: int, chunks: int) -> None:
        r0, c0 = self.arr.shape[:2]
        if rows <= r0 and chunks <= c0:
            return
        r1 = max(rows, min(self.limit, 2 * r0)) if rows > r0 else r0
        c1 = max(chunks, int(c0 * 1.25)) if chunks > c0 else c0
        arr = np.zeros((r1, c1, *self.arr.shape[2:]), np.float32)
        arr[:r0, :c0] = self.arr
        self.arr = arr
        self.scene += [None] * (r1 - r0)
        self.refs += [0] * (r1 - r0)
        self.n1 += [0] * (r1 - r0)
        for r in range(r0, r1):
            self.free[r] = None
            self.free.move_to_end(r, last=False)  # empty rows are used before cached ones

    def _take(self, chunks: int) -> int:
        if not self.free:
            self._grow(len(self.refs) + 1, chunks)
        self._grow(0, chunks)
        empty = next((r for r in self.free if self.scene[r] is None), None)
        if empty is None and len(self.refs) < self.limit:
            self._grow(len(self.refs) + 1, chunks)
            empty = next(r for r in self.free if self.scene[r] is None)
        row = empty if empty is not None else next(iter(self.free))
        del self.free[row]
        old = self.scene[row]
        if old is not None:
            self.by_id.pop(id(old), None)
            self.scene[row] = None
        self.refs[row] = 1
        return row

    def cached(self, scene: Any) -> int | None:
        """The row caching ``scene`` (now also used by the caller), or None."""
        row = self.by_id.get(id(scene))
        if row is not None and self.scene[row] is scene:
            self.refs[row] += 1
            self.free.pop(row, None)
            return row
        return None

    def acquire(self, scene: Any, ep: EpisodeAudio) -> int:
        """A row holding ``ep``'s chunks, cached for ``scene`` when it is clean."""
        n1 = ep.n + 1
        row = self._take(n1)
        dst = self.arr[row]
        dst[: ep.full] = ep.head
        dst[ep.full: n1] = ep.tail
        self.n1[row] = n1
        if ep.buf is None:  # clean scene read in place: cacheable
            self.scene[row] = scene
            self.by_id[id(scene)] = row
        return row

    def make_private(self, row: int, n1: int) -> int:
        """A row only this caller uses, with the same chunks (copy-on-write before adding echo)."""
        if self.scene[row] is None and self.refs[row] == 1:
            return row
        new = self._take(n1)
        self.arr[new, :n1] = self.arr[row, :n1]
        self.n1[new] = n1
        self.release(row)
        return new

    def release(self, row: int) -> None:
        self.refs[row] -= 1
        if self.refs[row] == 0:
            self.free[row] = None
            if self.scene[row] is None:
                self.free.move_to_end(row, last=False)


class ResponseTimingVectorEnv(VectorEnv):
    """N :class:`~chimein.envs.env.ResponseTimingEnv` episodes in one batched object.

    Takes every option of ``ResponseTimingEnv`` plus:

    Parameters
    ----------
    num_envs
        Number of sub-environments.
    prefetch
        Episodes loaded ahead per sub-environment (default 1; 0 loads each scene when its
        episode starts). Ignored for pre-rendered scene lists.
    prefetch_workers
        Size of the loading pool (default 1).
    prefetch_backend
        ``"thread"`` (default) or ``"process"`` (spawned processes, each with its own RIR
        memory cache; use it when rendering is the bottleneck and cores are free).
    autoreset_mode
        An ``AutoresetMode`` or its name (``"next_step"``, ``"SameStep"``, ...).
        ``AutoresetMode.NEXT_STEP`` (default, Gymnasium's convention: the step after an episode
        ends returns the next episode's first observation with reward 0 and ignores the action)
        or ``AutoresetMode.SAME_STEP`` (the new episode starts in the same step; the final
        observation and info are in ``info["final_obs"]``/``info["final_info"]``; SB3's
        convention).
    """

    metadata = {"render_modes": ["rgb_array", "ansi"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        scenes: Any = None,
        *,
        order: str = "random",
        scene_overrides: Mapping[str, Any] | None = None,
        cache_size: int = 8,
        rir_cache_dir: str | os.PathLike[str] | None = None,
        prefetch: int = 1,
        prefetch_workers: int = 1,
        prefetch_backend: str = "thread",
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        render_mode: str | None = None,
        **options: Any,
    ) -> None:
        cfg = self.config = EnvConfig.from_options(options, extra=VECTOR_OPTIONS)
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise SpecError(f"vector env: option 'num_envs': need an integer >= 1, got {num_envs!r}")
        if int(prefetch) < 0:
            raise SpecError(f"vector env: option 'prefetch': must be >= 0, got {prefetch}")
        names = {m.value.lower(): m for m in AutoresetMode}
        mode = autoreset_mode if isinstance(autoreset_mode, AutoresetMode) else names.get(
            str(autoreset_mode).replace("_", "").lower())
        if mode is None:
            raise SpecError(f"vector env: option 'autoreset_mode': got {autoreset_mode!r}; use "
                            f"{AutoresetMode.NEXT_STEP.value!r} or {AutoresetMode.SAME_STEP.value!r}")
        if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
            raise SpecError(f"vector env: option 'autoreset_mode': {mode.value!r} is not supported; use "
                            f"{AutoresetMode.NEXT_STEP.value!r} or {AutoresetMode.SAME_STEP.value!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise SpecError(f"vector env: option 'render_mode': got {render_mode!r}; use one of "
                            f"{self.metadata['render_modes']} or None")
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        self.render_mode = render_mode
        self.num_envs = N = int(num_envs)
        self.source: SceneSource = make_source(scenes, order=order, cache_size=cache_size,
                                               scene_overrides=scene_overrides, rir_cache_dir=rir_cache_dir)
        self.prefetch = int(prefetch)
        self._prefetcher = Prefetcher(self.source, workers=prefetch_workers if self.prefetch else 0,
                                      backend=prefetch_backend)
        self.single_observation_space = cfg.observation_space()
        self.single_action_space = cfg.action_space()
        self.observation_space = batch_space(self.single_observation_space, N)
        self.action_space = batch_space(self.single_action_space, N)

        self._key = cfg.obs_mode
        self._C = cfg.chunk_samples
        self._chunk_s = cfg.chunk_s
        self._speak_s = float(cfg.speak_s)
        self._cap = float(cfg.max_time_since_spoke_s)
        self._echoes = EchoMaker(cfg, rir_cache_dir)
        self._lm = cfg.logmel if cfg.obs_mode == "logmel" else None
        self._fpc = cfg.frames_per_chunk if self._lm is not None else 0
        self._pad = cfg.n_frames
        self._rows = np.arange(N)
        self._k = np.zeros(N, np.int64)
        self._n = np.zeros(N, np.int64)
        self._busy = np.full(N, -math.inf)
        self._next_event = np.zeros(N, np.int64)
        self._autoreset = np.zeros(N, bool)
        self._any_autoreset = False
        self._pool = ChunkPool(N, self._C, cfg.n_mics, N if self.source.cheap_load else 0)
        self._prow = np.full(N, -1, np.int64)  # pool row of each sub-env's episode
        self._plans: weakref.WeakKeyDictionary[Any, tuple[list[float], OnlineScorer]] = weakref.WeakKeyDictionary()
        self._frs: list[np.ndarray] = [np.zeros((0, cfg.n_mics, cfg.n_mels), np.float32)] * N
        # actions and effectiveness of every step of every slot's current episode
        self._capacity = 0
        self._tgrid = decision_times(1, self._chunk_s)
        self._acts = np.zeros((N, 0), np.int8)
        self._eff = np.zeros((N, 0), bool)
        self._scorers: list[OnlineScorer | None] = [None] * N
        self._scenes: list[Any] = [None] * N
        self._echo: list[np.ndarray | None] = [None] * N  # each slot's episode echo (None: no echo)
        self._rngs: list[np.random.Generator | None] = [None] * N
        self._cursors = [0] * N
        self._pending: list[deque[Future[Any]]] = [deque() for _ in range(N)]
        self._started = False
        #: per slot that ended in the last step: (final observation, final info)
        self.last_final: dict[int, tuple[dict[str, np.ndarray], dict[str, Any]]] = {}

    def set_source(self, source: SceneSource) -> None:
        """Replace the scene source (a curriculum's next stage): later episodes are drawn from
        ``source`` and loaded by a new prefetcher with the same workers and backend; the old
        prefetcher is closed. Takes effect at the next reset."""
        old = self._prefetcher
        self.source = source
        self._prefetcher = Prefetcher(source, workers=old.workers, backend=old.backend)
        old.close()

    # ================================================================ episodes
    def _episode_key(self, i: int) -> int:
        """Sub-env ``i``'s next episode key (its own generator and cursor, in order)."""
        rng = self._rngs[i]
        assert rng is not None
        key = self.source.draw_key(rng, self._cursors[i])
        self._cursors[i] += 1
        return key

    def _draw(self, i: int) -> Future[Any]:
        return self._prefetcher.submit(self._episode_key(i))

    def _next_scene(self, i: int) -> Any:
        q = self._pending[i]
        if q:
            fut = q.popleft()
        elif self.source.cheap_load:  # in memory already: nothing to load ahead
            return self.source.load(self._episode_key(i))
        else:
            fut = self._draw(i)
        while len(q) < self.prefetch:
            q.append(self._draw(i))
        return fut.result()

    def _ensure_capacity(self, steps: int) -> None:
        if steps <= self._capacity:
            return
        cap = max(steps, int(self._capacity * 1.25))
        acts = np.zeros((self.num_envs, cap), np.int8)
        acts[:, : self._capacity] = self._acts
        eff = np.zeros((self.num_envs, cap), bool)
        eff[:, : self._capacity] = self._eff
        self._acts, self._eff, self._capacity = acts, eff, cap
        self._tgrid = decision_times(cap + 1, self._chunk_s)

    def _start(self, i: int) -> dict[str, Any]:
        scene = self._next_scene(i)
        cfg = self.config
        if self._prow[i] >= 0:
            self._pool.release(int(self._prow[i]))
        row = self._pool.cached(scene) if self._lm is None else None
        if row is None:
            ep = EpisodeAudio(scene, cfg)
            n = ep.n
            row = self._pool.acquire(scene, ep)
            if self._lm is not None:
                self._frs[i] = scene_frames(ep, cfg)
        else:
            n = self._pool.n1[row] - 1
        self._prow[i] = row
        self._ensure_capacity(n + 1)
        sc = scoring_plan(self._plans, scene, n, cfg)[1].fresh()
        self._scorers[i] = sc
        self._scenes[i] = scene
        self._echo[i] = self._echoes(scene)  # once per episode (cached per scene and options)
        self._acts[i] = 0
        self._eff[i] = False
        self._k[i] = 0
        self._n[i] = n
        self._busy[i] = -math.inf
        self._next_event[i] = sc.next_event
        return {"scene_id": scene.spec.id, "n_steps": n, "duration_s": n * self._chunk_s}

    # ================================================================ API
    def reset(self, *, seed: int | Sequence[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset every sub-env (or those in ``options["reset_mask"]``).

        ``seed``: an int ``s`` seeds sub-env ``i`` with ``s + i`` (as ``SyncVectorEnv``); a list
        gives each sub-env its seed; ``None`` continues each sub-env's generator.
        """
        N = self.num_envs
        mask = np.ones(N, bool)
        if options:
            unknown = sorted(set(options) - {"reset_mask"})
            if unknown:
                raise unknown_key_error(unknown[0], ["reset_mask"], "vector reset options")
            m = np.asarray(options["reset_mask"])
            if m.shape != (N,) or m.dtype != np.bool_ or not m.any():
                raise SpecError(f"vector reset: 'reset_mask' must be a bool array of shape ({N},) with a True")
            mask = m
            if not self._started and not mask.all():
                raise SpecError("vector reset: the first reset must reset every sub-environment (no reset_mask)")
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            super().reset(seed=int(seed))
            seeds: list[int | None] = [int(seed) + i for i in range(N)]
        elif seed is None:
            seeds = [None] * N
        else:
            seeds = list(seed)  # type: ignore[arg-type]
            if len(seeds) != N:
                raise SpecError(f"vector reset: {len(seeds)} seeds given for {N} sub-environments")
        infos: dict[str, Any] = {}
        slots = np.flatnonzero(mask).tolist()
        for i in slots:
            s = seeds[i]
            if s is not None or self._rngs[i] is None:
                for f in self._pending[i]:
                    f.cancel()
                self._pending[i].clear()
                self._rngs[i] = seeding.np_random(s)[0]
                self._cursors[i] = 0 if s is None else int(s)
            if not self._pending[i] and self.prefetch and not self.source.cheap_load:
                self._pending[i].append(self._draw(i))  # every first scene is queued before any look-ahead
        for i in slots:
            infos = self._add_info(infos, self._start(i), i)
        self._autoreset[mask] = False
        self._any_autoreset = bool(self._autoreset.any())
        self._started = True
        self.last_final = {}
        return self._gather(), infos

    @property
    def _next_step_mode(self) -> bool:
        return self.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP

    def _check_actions(self, actions: Any) -> np.ndarray:
        a = np.asarray(actions)
        if a.shape != (self.num_envs,):
            raise ValueError(f"actions must have shape ({self.num_envs},), one of 0 WAIT, 1 RESPOND, "
                             f"2 INTERVENE per sub-env; got shape {a.shape}")
        if a.dtype != np.int64:
            if a.dtype.kind == "f" and np.all(a == np.round(a)) or a.dtype.kind in "iu":
                a = a.astype(np.int64)
            else:
                raise ValueError(f"actions must be integers 0 WAIT, 1 RESPOND, 2 INTERVENE; got {a!r}")
        if (a.view(np.uint64) > 2).any():  # negative values wrap to huge unsigned ones
            i = int(np.flatnonzero((a < 0) | (a > 2))[0])
            raise ValueError(f"action {a[i].item()!r} of sub-env {i} is not in Discrete(3); use 0 WAIT, 1 RESPOND "
                             "or 2 INTERVENE")
        return a

    def step(self, actions: Any) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-env (see the class docstring for the autoreset convention).

        Per step, only sub-envs whose action takes effect or whose cue window closes run
        Python-level scoring; everything else is a handful of batched numpy operations.
        """
        if not self._started:
            raise RuntimeError("step() called before reset(); call reset() first")
        a = self._check_actions(actions)
        N = self.num_envs
        k = self._k
        resetting = self._autoreset
        any_reset = self._any_autoreset
        rewards = np.zeros(N, np.float64)
        acting = a != 0
        due = k == self._next_event
        if any_reset:
            active = ~resetting
            acting &= active
            due &= active
        if np.count_nonzero(acting):
            t = self._tgrid[k]
            eff = acting & (t >= self._busy - EPS_S)
            self._acts[self._rows, k] = a
            self._eff[self._rows, k] = eff
            if np.count_nonzero(eff):
                self._busy[eff] = t[eff] + self._speak_s
                due &= ~eff
                for i in np.flatnonzero(eff).tolist():
                    sc = self._scorers[i]
                    ki = int(k[i])
                    rewards[i] = sc.step(ki, int(a[i]), True)  # type: ignore[union-attr]
                    self._next_event[i] = sc.next_event  # type: ignore[union-attr]
                    if self._echo[i] is not None:
                        self._apply_echo(i, ki)
        if np.count_nonzero(due):
            for i in np.flatnonzero(due).tolist():
                sc = self._scorers[i]
                rewards[i] = sc.step(int(k[i]), 0, True)  # type: ignore[union-attr]
                self._next_event[i] = sc.next_event  # type: ignore[union-attr]
        if any_reset:
            k += active
        else:
            k += 1
        truncated = k >= self._n
        if any_reset:
            truncated &= active
        terminated = np.zeros(N, bool)
        infos: dict[str, Any] = {}
        if self.last_final:
            self.last_final = {}
        if self._next_step_mode:
            if any_reset:
                for i in np.flatnonzero(resetting).tolist():
                    infos = self._add_info(infos, self._start(i), i)
            obs = self._gather()
            ends = np.count_nonzero(truncated)
            if ends:
                for i in np.flatnonzero(truncated).tolist():
                    fin = self._final_info(i)
                    self.last_final[i] = (self._row(obs, i), fin)
                    infos = self._add_info(infos, fin, i)
            if ends or any_reset:
                self._autoreset = truncated.copy()
                self._any_autoreset = bool(ends)
        else:
            obs = self._gather()
            done = np.flatnonzero(truncated).tolist()
            for i in done:
                fin = self._final_info(i)
                final_obs = self._row(obs, i)
                self.last_final[i] = (final_obs, fin)
                infos = self._add_info(infos, {"final_obs": final_obs, "final_info": fin}, i)
                infos = self._add_info(infos, self._start(i), i)
            if done:
                self._gather(obs, np.asarray(done))
        return obs, rewards, terminated, truncated, infos

    def _apply_echo(self, i: int, k: int) -> None:
        echo = self._echo[i]
        assert echo is not None
        n1 = int(self._n[i]) + 1
        row = self._prow[i] = self._pool.make_private(int(self._prow[i]), n1)
        buf = self._pool.arr[row, :n1].reshape(n1 * self._C, -1)
        s, e = add_echo(buf, (k + 1) * self._C, echo)
        if self._lm is not None:
            refresh_frames(self._frs[i], self._pad, buf, self._lm, s, e)

    def _gather(self, out: dict[str, np.ndarray] | None = None, rows: np.ndarray | None = None
                ) -> dict[str, np.ndarray]:
        """Observations of all slots (or of ``rows``, written into ``out``)."""
        if rows is None:
            k, prow, busy = self._k, self._prow, self._busy
        else:
            k, prow, busy = self._k[rows], self._prow[rows], self._busy[rows]
        if self._lm is None:
            main = self._pool.arr[prow, k]
        else:
            ks = k.tolist()
            frs = self._frs if rows is None else [self._frs[i] for i in rows.tolist()]
            nf, fpc = self._pad, self._fpc
            main = np.stack([fr[(kk + 1) * fpc: (kk + 1) * fpc + nf] for fr, kk in zip(frs, ks, strict=True)])
            main = np.ascontiguousarray(main.transpose(0, 2, 1, 3))
        t = self._tgrid[k]  # decision times (k + 1) * chunk_s
        spk = t < busy - EPS_S
        # -inf before the first utterance: the difference is inf and clips to the cap
        tss = np.minimum(np.maximum(t - busy, 0.0), self._cap)
        if out is None:
            return {self._key: main, "assistant_speaking": spk.view(np.int8)[:, None],
                    "time_since_spoke": tss.astype(np.float32)[:, None]}
        out[self._key][rows] = main
        out["assistant_speaking"][rows, 0] = spk
        out["time_since_spoke"][rows, 0] = tss
        return out

    def _row(self, obs: dict[str, np.ndarray], i: int) -> dict[str, np.ndarray]:
        return {key: v[i].copy() for key, v in obs.items()}

    def _final_info(self, i: int) -> dict[str, Any]:
        sc = self._scorers[i]
        assert sc is not None
        n = int(self._n[i])
        acts, eff = self._acts[i, :n], self._eff[i, :n]
        sc.count_ineffective(int(np.count_nonzero(acts)) - int(np.count_nonzero(eff)))
        return {"outcome": sc.outcome().to_dict(), "action_log": ActionLog.grid_dict(self._chunk_s, acts, eff),
                "scene_id": self._scenes[i].spec.id}

    def action_log(self, i: int) -> ActionLog:
        """Sub-env ``i``'s actions in its current episode so far."""
        k = int(self._k[i])
        acts = self._acts[i, :k].copy()
        eff = self._eff[i, :k] | (acts == 0)
        return ActionLog(decision_times(k, self._chunk_s), acts, eff, chunk_s=self._chunk_s)

    @property
    def scenes(self) -> list[Any]:
        """The scene each sub-env is playing."""
        return list(self._scenes)

    def render(self) -> tuple[Any, ...] | None:
        if self.render_mode is None:
            return None
        frames = []
        for i in range(self.num_envs):
            if self._scenes[i] is None:
                raise RuntimeError("render() needs episodes; call reset() first")
            n = int(self._n[i])
            times = decision_times(n + 1, self._chunk_s)
            ks = np.flatnonzero(self._acts[i, : self._k[i]])
            ev = [(float(times[k]), int(self._acts[i, k]), bool(self._eff[i, k])) for k in ks]
            now = float(times[self._k[i] - 1]) if self._k[i] else 0.0
            ann = self._scenes[i].spec.annotations
            dur = n * self._chunk_s
            frames.append(timeline_text(ann, dur, ev, now) if self.render_mode == "ansi"
                          else timeline_rgb(ann, dur, ev, self._speak_s, now))
        return tuple(frames)

    def close_extras(self, **kwargs: Any) -> None:
        for q in self._pending:
            for f in q:
                f.cancel()
            q.clear()
        self._prefetcher.close()
        self.source.close()
