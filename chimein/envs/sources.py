"""Where an environment's scenes come from: sampled, read from a dataset, or given.

A :class:`SceneSource` maps an integer *episode key* to a rendered scene. The environment
draws one key per episode (:meth:`SceneSource.draw_key`, from its seeded generator and its
episode cursor) and loads it (:meth:`SceneSource.load`, a pure function of the key). Because
keys are drawn before and independently of loading, a vector env can render the scenes of
upcoming episodes in the background (:class:`Prefetcher`) and still produce exactly the episodes
a serial env would.

Four sources, picked by :func:`make_source` from the env's ``scenes=`` argument:

- :class:`SamplerSource` -- a sampler config mapping (``{"family": "proactive",
  "difficulty": "easy", ...}``; ``family`` may be a list to mix families), a family name
  (``"monitoring"``), a difficulty name (``"hard"``) or ``"family:difficulty"``. The key is the
  scene seed; the scene is sampled and rendered (RIRs from a shared :class:`RIRCache`).
- :class:`DatasetSource` -- a dataset directory written by ``chimein scenes generate``.
- :class:`SequenceSource` -- a list of ``RenderedScene`` and/or ``SceneSpec`` objects (tests,
  adversarial sets).
- :class:`SyntheticSource` -- ``"synthetic"``: a toy task (noise, tones and modulated noise
  standing in for speech, with the real cue/span structure) made without room simulation, for
  smoke tests and benchmarks (``scene_overrides`` become its keyword arguments).

For the dataset and sequence sources, ``order="random"`` draws a uniformly random scene per
episode; ``order="sequential"`` plays scene ``cursor mod len``, where the env sets the cursor
to the reset seed (``reset(seed=i)`` plays scene ``i``) and advances it every episode.

Examples
--------
>>> src = make_source({"family": "addressed", "difficulty": "easy"})
>>> type(src).__name__, src.families
('SamplerSource', ('addressed',))

Mixtures
--------
Mix scene sources with fixed weights: the curriculum seam for adversarial datasets.

An adversarial search (``chimein attack``) writes the scenes that break a policy as a dataset;
training then mixes them into its usual distribution, e.g. 70 % sampled ``hard`` scenes and
30 % adversarial ones. :class:`MixtureSource` is a :class:`~chimein.envs.sources.SceneSource`,
so the env, the vector env and anything built on them take it as ``scenes=``; it draws each
episode's component from the env's seeded generator (then the component draws its own key), so
episodes stay reproducible and prefetchable.

A mixture is declared one component per entry::

    {"mixture": [{"scenes": {"difficulty": "hard", "room_pool": 32}, "weight": 0.6},
                 {"scenes": "runs/attack", "weight": 0.2},     # the saved hardest scenes
                 {"attack": "runs/attack", "weight": 0.2}]}    # fresh draws like them

(:func:`mixture_from_config`): ``scenes`` is anything the env's ``scenes=`` takes (here the
attack's output directory, a dataset), ``attack`` draws new scenes from the search's final
distribution (:class:`SpaceSource`). For trainers that read a dataset directory (the supervised
trainer's ``train.data.source=dataset``), :func:`materialize` writes ``n`` episodes of a mixture
as an ordinary dataset.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from chimein.config import to_plain, unknown_key_error
from chimein.errors import SpecError
from chimein.scenes.spec import SceneSpec

#: Scene seeds are drawn uniformly below this (the sampler's seeds are 32-bit).
KEY_SPACE = 2**32
ORDERS = ("random", "sequential")


class SceneSource(ABC):
    """Maps episode keys to rendered scenes (``audio (samples, mics) float32``,
    ``sample_rate``, ``spec``)."""

    #: whether :meth:`load` is cheap (no rendering or disk reads): prefetching is skipped.
    cheap_load: bool = False

    def __init__(self, cache_size: int = 8) -> None:
        if int(cache_size) < 0:
            raise SpecError(f"scenes: field 'cache_size': must be >= 0, got {cache_size}")
        self.cache_size = int(cache_size)
        self._cache: OrderedDict[int, Any] = OrderedDict()
        self._lock = threading.Lock()

    @abstractmethod
    def draw_key(self, rng: np.random.Generator, cursor: int) -> int:
        """The key of the next episode, from the env's generator and episode cursor."""

    @abstractmethod
    def _load(self, key: int) -> Any:
        """Produce the rendered scene for ``key`` (uncached)."""

    def load(self, key: int) -> Any:
        """The rendered scene for ``key`` (a pure function of ``key``; LRU-cached)."""
        key = int(key)
        if self.cache_size:
            with self._lock:
                if key in self._cache:
                    self._cache.move_to_end(key)
                    return self._cache[key]
        scene = self._load(key)
        if self.cache_size:
            with self._lock:
                self._cache[key] = scene
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return scene

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Drop cached scenes."""
        with self._lock:
            self._cache.clear()


def _check_order(order: str) -> str:
    if order not in ORDERS:
        raise SpecError(f"scenes: field 'order': got {order!r}; use one of {ORDERS}")
    return order


class SamplerSource(SceneSource):
    """Sample a scene from ``config`` with the key as seed, then render it.

    Parameters
    ----------
    config
        A :class:`~chimein.scenes.sampler.SamplerConfig` mapping; ``family`` may be a list of
        families, one of which is chosen per episode (``key mod len``).
    cache_size
        Rendered scenes kept in memory (LRU).
    rir_cache_dir
        Folder of the RIR cache (default: the scene engine's default folder).
    """

    def __init__(self, config: Mapping[str, Any] | None = None, cache_size: int = 8,
                 rir_cache_dir: str | os.PathLike[str] | None = None) -> None:
        super().__init__(cache_size)
        from chimein.scenes.sampler import SamplerConfig

        cfg = dict(_plain_mapping(config or {}))
        fam = cfg.pop("family", "mixed")
        families = (fam,) if isinstance(fam, str) else tuple(fam)
        if not families or not all(isinstance(f, str) for f in families):
            raise SpecError(f"scenes config: field 'family': expected a family name or a non-empty "
                            f"list of names, got {fam!r}")
        for f in families:  # validate every variant now, not at the first reset
            SamplerConfig.from_mapping({**cfg, "family": f})
        self.config = cfg
        self.families = families
        self.rir_cache_dir = None if rir_cache_dir is None else str(rir_cache_dir)
        self._rirs: Any = None

    def draw_key(self, rng: np.random.Generator, cursor: int) -> int:
        return int(rng.integers(0, KEY_SPACE))

    def spec(self, key: int) -> SceneSpec:
        """The scene spec of ``key`` (cheap: no rendering)."""
        from chimein.scenes.sampler import sample_scene

        fam = self.families[int(key) % len(self.families)]
        return sample_scene({**self.config, "family": fam}, seed=int(key))

    def _load(self, key: int) -> Any:
        from chimein.scenes.render import render
        from chimein.scenes.rir import RIRCache

        if self._rirs is None:
            self._rirs = RIRCache(self.rir_cache_dir)
        return render(self.spec(key), cache=self._rirs)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_rirs"] = None
        return state


class DatasetSource(SceneSource):
    """Scenes of a dataset directory (``manifest.jsonl`` + audio + specs)."""

    def __init__(self, root: str | os.PathLike[str], order: str = "random", cache_size: int = 8) -> None:
        super().__init__(cache_size)
        from chimein.scenes.dataset import SceneDataset

        self.root = str(root)
        self.order = _check_order(order)
        self.dataset = SceneDataset(Path(root))
        if len(self.dataset) == 0:
            raise SpecError(f"{root}: the dataset has no scenes; generate some with `chimein scenes generate`")

    def draw_key(self, rng: np.random.Generator, cursor: int) -> int:
        n = len(self.dataset)
        return cursor % n if self.order == "sequential" else int(rng.integers(0, n))

    def _load(self, key: int) -> Any:
        return self.dataset.load(int(key))


class SequenceSource(SceneSource):
    """Scenes given in memory: ``RenderedScene`` objects (played as is) or ``SceneSpec``
    objects (rendered on first use, then cached)."""

    def __init__(self, items: Sequence[Any], order: str = "random", cache_size: int = 64,
                 rir_cache_dir: str | os.PathLike[str] | None = None) -> None:
        super().__init__(cache_size)
        items = list(items)
        if not items:
            raise SpecError("scenes: the scene list is empty; give at least one RenderedScene or SceneSpec")
        for i, it in enumerate(items):
            if not isinstance(it, SceneSpec) and not _is_rendered(it):
                raise SpecError(f"scenes[{i}]: expected a RenderedScene or SceneSpec, got {type(it).__name__}")
        self.items = items
        self.order = _check_order(order)
        self.cheap_load = all(_is_rendered(it) for it in items)
        self.rir_cache_dir = None if rir_cache_dir is None else str(rir_cache_dir)
        self._rirs: Any = None

    def draw_key(self, rng: np.random.Generator, cursor: int) -> int:
        n = len(self.items)
        return cursor % n if self.order == "sequential" else int(rng.integers(0, n))

    def load(self, key: int) -> Any:
        it = self.items[int(key)]
        return it if _is_rendered(it) else super().load(key)

    def _load(self, key: int) -> Any:
        from chimein.scenes.render import render
        from chimein.scenes.rir import RIRCache

        if self._rirs is None:
            self._rirs = RIRCache(self.rir_cache_dir)
        return render(self.items[int(key)], cache=self._rirs)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_rirs"] = None
        return state


class SyntheticSource(SceneSource):
    """Scenes synthesised from the key alone, without room simulation or speech synthesis.

    A toy task with the real reward structure, for smoke tests, benchmarks and debugging RL
    pipelines (``scenes="synthetic"``): white noise at ``noise_db`` dBFS and a sequence of
    segments, each with its cue --

    - a *user turn* (noise band amplitude-modulated at 4 Hz, a ``speech`` span of 1-2 s) followed
      by a RESPOND window of ``respond_window_s`` from the turn's end;
    - a *beeping alarm* (2 kHz, 4 beeps/s, 1.5 s) with an INTERVENE window of
      ``intervene_window_s`` from 0.2 s after its onset (safety-critical half of the time);
    - a *steady 1 kHz tone* (1.5 s) to be ignored (an IGNORE cue over its span).

    Parameters
    ----------
    duration_s
        ``(low, high)`` seconds; the scene is extended to cover its last window.
    n_mics, sample_rate
        Channels (independent sensor noise per channel) and rate.
    noise_db
        Background level in dBFS.
    """

    def __init__(self, duration_s: tuple[float, float] = (8.0, 15.0), n_mics: int = 1,
                 sample_rate: int = 16000, noise_db: float = -40.0, respond_window_s: float = 3.0,
                 intervene_window_s: float = 4.0, cache_size: int = 8) -> None:
        super().__init__(cache_size)
        lo, hi = (float(v) for v in duration_s)
        if not 2.0 <= lo <= hi <= 3600.0:
            raise SpecError(f"synthetic scenes: field 'duration_s': need 2 <= low <= high <= 3600, got {duration_s}")
        if not 1 <= int(n_mics) <= 16:
            raise SpecError(f"synthetic scenes: field 'n_mics': must be in [1, 16], got {n_mics}")
        self.duration_s = (lo, hi)
        self.n_mics = int(n_mics)
        self.sample_rate = int(sample_rate)
        self.noise_db = float(noise_db)
        self.respond_window_s = float(respond_window_s)
        self.intervene_window_s = float(intervene_window_s)

    def draw_key(self, rng: np.random.Generator, cursor: int) -> int:
        return int(rng.integers(0, KEY_SPACE))

    def spec(self, key: int) -> SceneSpec:
        """The scene's spec (room and microphones are nominal: nothing is simulated)."""
        from chimein.scenes.spec import Annotations, Cue, Mics, Room, Span

        rng = np.random.default_rng(np.random.SeedSequence([int(key), 7]))
        target = float(rng.uniform(*self.duration_s))
        t = float(rng.uniform(0.5, 1.5))
        cues: list[Cue] = []
        spans: list[Span] = []
        while t < target - 3.0 or not cues:
            kind = int(rng.integers(3))
            if kind == 0:
                turn = float(rng.uniform(1.0, 2.0))
                spans.append(Span(round(t, 4), round(t + turn, 4), "user", "speech", True))
                s, e = t + turn, t + turn + self.respond_window_s
                cues.append(Cue(f"c{len(cues)}", "RESPOND", (round(s, 4), round(e, 4)), "user turn", False, (), round(t, 4)))
            elif kind == 1:
                s, e = t + 0.2, t + 0.2 + self.intervene_window_s
                cues.append(Cue(f"c{len(cues)}", "INTERVENE", (round(s, 4), round(e, 4)), "alarm",
                                bool(rng.random() < 0.5), (), round(t, 4)))
            else:
                s, e = t, t + 1.5
                cues.append(Cue(f"c{len(cues)}", "IGNORE", (round(s, 4), round(e, 4)), "tone", False, (), round(t, 4)))
            t = e + float(rng.uniform(0.5, 2.0))
        duration = round(max(target, t), 3)
        mics = Mics(tuple((2.0 + 0.05 * i, 1.5, 1.2) for i in range(self.n_mics)))
        return SceneSpec(id=f"synthetic-{int(key)}", seed=int(key), duration_s=duration,
                         room=Room(dims=(4.0, 3.0, 2.5), rt60=0.3), mics=mics, sources=(),
                         annotations=Annotations(cues=tuple(cues), spans=tuple(spans)),
                         sample_rate=self.sample_rate, family="synthetic")

    def _load(self, key: int) -> Any:
        from chimein.scenes.render import RenderedScene

        spec = self.spec(key)
        sr = self.sample_rate
        n = int(round(spec.duration_s * sr))
        rng = np.random.default_rng(np.random.SeedSequence([int(key), 8]))
        sig = np.zeros(n)
        tt = np.arange(n) / sr

        def put(start: float, end: float, x: np.ndarray) -> None:
            a, b = int(round(start * sr)), min(n, int(round(end * sr)))
            sig[a:b] += x[a:b]

        for c in spec.annotations.cues:
            onset = c.onset_s if c.onset_s is not None else c.window[0]
            if c.expected == "INTERVENE":
                beep = 0.1 * np.sin(2 * np.pi * 2000 * tt) * (np.sin(2 * np.pi * 4 * tt) > 0)
                put(onset, onset + 1.5, beep)
            elif c.expected == "IGNORE":
                put(c.window[0], c.window[1], 0.05 * np.sin(2 * np.pi * 1000 * tt))
        for sp in spec.annotations.spans:
            a, b = int(round(sp.start_s * sr)), min(n, int(round(sp.end_s * sr)))
            band = np.convolve(rng.standard_normal(b - a), np.hanning(16), mode="same")
            sig[a:b] += 0.05 * band * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * tt[a:b]))
        noise = rng.standard_normal((n, self.n_mics)) * 10 ** (self.noise_db / 20)
        audio = (sig[:, None] + noise).astype(np.float32)
        return RenderedScene(audio=np.clip(audio, -1.0, 1.0), sample_rate=sr, spec=spec)


def _is_rendered(x: Any) -> bool:
    return hasattr(x, "audio") and hasattr(x, "sample_rate") and isinstance(getattr(x, "spec", None), SceneSpec)


def _plain_mapping(m: Mapping[str, Any]) -> Mapping[str, Any]:
    """``m`` as a plain mapping (:func:`chimein.config.to_plain`); anything else is an error."""
    m = to_plain(m)
    if not isinstance(m, Mapping):
        raise SpecError(f"scenes: expected a mapping, got {type(m).__name__}")
    return m


def make_source(scenes: Any = None, *, order: str = "random", cache_size: int = 8,
                scene_overrides: Mapping[str, Any] | None = None,
                rir_cache_dir: str | os.PathLike[str] | None = None) -> SceneSource:
    """Resolve an env's ``scenes=`` argument to a :class:`SceneSource`.

    ``None`` -> the mixed default distribution; a :class:`SceneSource` -> itself; a mapping ->
    sampler config, or a ``{"mixture": [...]}`` curriculum (:class:`MixtureSource`); a ``str``/path naming an existing directory -> dataset; a ``str`` naming a
    family, a difficulty or ``"family:difficulty"`` -> sampler config; a list -> scenes given in
    memory. ``scene_overrides`` are merged into a sampler config (e.g. ``{"difficulty":
    "easy"}`` on top of a registered id's preset).
    """
    if isinstance(scenes, SceneSource):
        if scene_overrides:
            raise SpecError("scene_overrides only apply to sampler configs, not to a SceneSource")
        return scenes
    if scenes is None:
        scenes = {}
    if isinstance(scenes, (str, os.PathLike)) and Path(scenes).is_dir():
        if scene_overrides:
            raise SpecError(f"scene_overrides only apply to sampler configs, not to the dataset {scenes}")
        return DatasetSource(scenes, order=order, cache_size=cache_size)
    if isinstance(scenes, str) and scenes == "synthetic":
        import inspect

        known = set(inspect.signature(SyntheticSource).parameters) - {"cache_size"}
        bad = sorted(set(scene_overrides or {}) - known)
        if bad:
            raise unknown_key_error(bad[0], sorted(known), "synthetic scene options")
        return SyntheticSource(**dict(scene_overrides or {}), cache_size=cache_size)
    if isinstance(scenes, str):
        scenes = _parse_scene_name(scenes)
    if isinstance(scenes, os.PathLike):
        raise SpecError(f"{scenes}: dataset directory not found; generate one with `chimein scenes generate`")
    if isinstance(scenes, Mapping) and "mixture" in scenes:  # curriculum: weighted scene sources
        if scene_overrides:
            raise SpecError("scene_overrides only apply to sampler configs, not to a scene mixture")
        return mixture_from_config(scenes, order=order, cache_size=cache_size, rir_cache_dir=rir_cache_dir)
    if isinstance(scenes, Mapping) or hasattr(scenes, "_content"):
        cfg = {**_plain_mapping(scenes), **dict(scene_overrides or {})}
        return SamplerSource(cfg, cache_size=cache_size, rir_cache_dir=rir_cache_dir)
    if isinstance(scenes, Sequence):
        if scene_overrides:
            raise SpecError("scene_overrides only apply to sampler configs, not to a scene list")
        return SequenceSource(scenes, order=order, cache_size=max(cache_size, 64), rir_cache_dir=rir_cache_dir)
    raise SpecError(f"scenes: cannot use a {type(scenes).__name__}; give a sampler config mapping, a family or "
                    "difficulty name, a dataset directory, or a list of RenderedScene/SceneSpec")


def _parse_scene_name(name: str) -> dict[str, Any]:
    from chimein.scenes.sampler import DIFFICULTIES, FAMILIES

    families = (*FAMILIES, "mixed")
    fam, sep, diff = name.partition(":")
    if not sep and fam in DIFFICULTIES:
        return {"difficulty": fam}
    if fam in families and (not sep or diff in DIFFICULTIES):
        return {"family": fam, **({"difficulty": diff} if sep else {})}
    raise SpecError(f"scenes: {name!r} is neither an existing dataset directory nor a scene name; use a family "
                    f"{families}, a difficulty {DIFFICULTIES}, 'family:difficulty', 'synthetic', or a directory "
                    "written by `chimein scenes generate`")


# ============================================================================================
# Prefetching
# ============================================================================================
_WORKER_SOURCE: SceneSource | None = None


def _init_worker(source: SceneSource) -> None:
    global _WORKER_SOURCE
    _WORKER_SOURCE = source


def _load_in_worker(key: int) -> Any:
    assert _WORKER_SOURCE is not None
    return _WORKER_SOURCE.load(key)


class Prefetcher:
    """Load scenes ahead of use: a thread pool (default) or a process pool, or inline.

    ``submit(key)`` returns a :class:`~concurrent.futures.Future`; results depend only on the
    key, never on timing. ``workers=0`` loads synchronously in :meth:`submit`.

    Parameters
    ----------
    source
        The scene source (pickled into each worker process for ``backend="process"``).
    workers
        Pool size; 0 for inline loading.
    backend
        ``"thread"`` (shares the RIR cache; pyroomacoustics and numpy release the GIL in their
        heavy loops) or ``"process"`` (spawned workers, each with its own source and cache).
    """

    def __init__(self, source: SceneSource, workers: int = 1, backend: str = "thread") -> None:
        if backend not in ("thread", "process"):
            raise SpecError(f"prefetch_backend: got {backend!r}; use 'thread' or 'process'")
        if int(workers) < 0:
            raise SpecError(f"prefetch_workers: must be >= 0, got {workers}")
        self.source = source
        self.workers = int(workers)
        self.backend = backend
        self._pool: ThreadPoolExecutor | ProcessPoolExecutor | None = None

    def _ensure_pool(self) -> ThreadPoolExecutor | ProcessPoolExecutor:
        if self._pool is None:
            if self.backend == "thread":
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="chimein-prefetch")
            else:
                import multiprocessing as mp

                self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"),
                                                 initializer=_init_worker, initargs=(self.source,))
        return self._pool

    def submit(self, key: int) -> Future[Any]:
        """Start loading ``key``; the future's result is ``source.load(key)``."""
        if self.workers == 0 or self.source.cheap_load:
            f: Future[Any] = Future()
            try:
                f.set_result(self.source.load(key))
            except BaseException as e:  # surfaced by .result(), like a pool would
                f.set_exception(e)
            return f
        pool = self._ensure_pool()
        if isinstance(pool, ThreadPoolExecutor):
            return pool.submit(self.source.load, key)
        return pool.submit(_load_in_worker, key)

    def close(self) -> None:
        """Stop the pool (pending loads are cancelled)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class MixtureSource(SceneSource):
    """Each episode's scene comes from component ``i`` with probability ``weights[i]``.

    Parameters
    ----------
    components
        ``(source, weight)`` pairs; a source is a :class:`SceneSource` or anything
        :func:`make_source` resolves (sampler config, family or difficulty
        name, dataset directory, list of scenes). Weights are non-negative, not all zero, and
        normalised.
    order
        Order of dataset and list components (``random`` or ``sequential``; a sequential
        component plays its scenes in turn, by the env's episode cursor).

    Notes
    -----
    A key encodes the component and the component's own key, ``key = sub_key * n + i``; it
    is a pure function of the env's generator and cursor, and :meth:`load` is a pure function
    of the key (components cache their own scenes).
    """

    def __init__(self, components: Sequence[tuple[Any, float]], order: str = "random", cache_size: int = 8,
                 rir_cache_dir: str | os.PathLike[str] | None = None) -> None:
        super().__init__(cache_size=0)
        if isinstance(components, (str, Mapping)) or not components:
            raise SpecError("scenes mixture: give a non-empty list of (source, weight) components")
        sources: list[SceneSource] = []
        weights: list[float] = []
        for i, item in enumerate(components):
            try:
                src, w = item
            except (TypeError, ValueError):
                raise SpecError(f"scenes mixture: component {i}: expected (source, weight), got {item!r}") from None
            try:
                w = float(w)
            except (TypeError, ValueError):
                raise SpecError(f"scenes mixture: component {i}: field 'weight': expected a number, got {w!r}") from None
            if not (np.isfinite(w) and w >= 0):
                raise SpecError(f"scenes mixture: component {i}: field 'weight': must be >= 0, got {w}")
            sources.append(src if isinstance(src, SceneSource) else
                           make_source(src, order=order, cache_size=cache_size, rir_cache_dir=rir_cache_dir))
            weights.append(w)
        total = sum(weights)
        if total <= 0:
            raise SpecError("scenes mixture: at least one weight must be > 0")
        self.components = sources
        self.weights = np.asarray(weights, float) / total
        self.cheap_load = all(s.cheap_load for s in sources)

    @property
    def n(self) -> int:
        return len(self.components)

    def component_of(self, key: int) -> int:
        """Index of the component a key belongs to."""
        return int(key) % self.n

    def draw_key(self, rng: np.random.Generator, cursor: int) -> int:
        i = int(rng.choice(self.n, p=self.weights))
        return int(self.components[i].draw_key(rng, cursor)) * self.n + i

    def load(self, key: int) -> Any:
        key = int(key)
        return self.components[key % self.n].load(key // self.n)

    def _load(self, key: int) -> Any:
        return self.load(key)

    def close(self) -> None:
        for s in self.components:
            s.close()


class SpaceSource(SceneSource):
    """Fresh scenes from a search space's distribution -- e.g. the final distribution of an
    adversarial search (:meth:`from_attack`), an unlimited supply of scenes like the ones that
    broke the policy, instead of the few saved ones.

    The key is the scene seed; the point is drawn from a generator seeded by the key
    (:meth:`~chimein.scenes.search_space.SearchSpace.sample`). With ``validate`` a scene that
    fails the space's scene-only constraints (audibility floor, windows) is redrawn with the
    next sub-seed (up to ``max_tries``), so training never sees an inaudible cue; the oracle
    check of the search needs a rollout and is not repeated here (it rejected 1 scene in 480
    in the run of ``docs/attack.md``).

    Examples
    --------
    >>> space = {"params": {"snr_db": {"type": "float", "low": 10, "high": 30, "step": 5}},
    ...          "base": {"family": "addressed", "difficulty": "easy"}}
    >>> src = SpaceSource(space, {"mean": {"snr_db": 0.9}, "std": {"snr_db": 0.05}, "probs": {}})
    >>> src.spec(7).meta["attack"]["point"]["snr_db"] >= 25.0
    True
    """

    def __init__(self, space: Mapping[str, Any] | Any, dist: Mapping[str, Any] | None = None,
                 validate: bool = True, max_tries: int = 10, cache_size: int = 8,
                 rir_cache_dir: str | os.PathLike[str] | None = None) -> None:
        super().__init__(cache_size)
        from chimein.scenes.search_space import SearchSpace

        self.space = SearchSpace.from_mapping(space)
        self.dist = None if dist is None else dict(dist)
        if self.dist is not None:
            self.space.sample(np.random.default_rng(0), self.dist)  # a mismatched distribution fails now
        self.validate = bool(validate)
        self.max_tries = int(max_tries)
        self.rir_cache_dir = None if rir_cache_dir is None else str(rir_cache_dir)
        self._rirs: Any = None

    @classmethod
    def from_attack(cls, out: str | os.PathLike[str], **kwargs: Any) -> SpaceSource:
        """The final search distribution of the attack in ``out`` (``attack_state.json``)."""
        import json

        path = Path(out) / "attack_state.json"
        if not path.is_file():
            raise SpecError(f"{path}: no attack state; is {out} a directory written by `chimein attack`?")
        state = json.loads(path.read_text())
        if not state.get("history"):
            raise SpecError(f"{path}: the attack has not finished a generation yet; rerun it to resume")
        return cls(state["identity"]["space"], state["history"][-1]["dist"], **kwargs)

    def draw_key(self, rng: np.random.Generator, cursor: int) -> int:
        return int(rng.integers(0, KEY_SPACE))

    def _rir_cache(self) -> Any:
        if self._rirs is None:
            from chimein.scenes.rir import RIRCache

            self._rirs = RIRCache(self.rir_cache_dir)
        return self._rirs

    def spec(self, key: int) -> Any:
        """The scene spec of ``key`` (the first valid draw when ``validate``)."""
        from chimein.scenes.search_space import check_scene

        last = ""
        for attempt in range(max(1, self.max_tries)):
            rng = np.random.default_rng(np.random.SeedSequence([int(key), 0x5CE4E, attempt]))
            seed = int(key) if attempt == 0 else int(rng.integers(0, 2**32))
            spec = self.space.build_scene(self.space.sample(rng, self.dist), seed, scene_id=f"space-{int(key)}")
            if not self.validate:
                return spec
            bad, _ = check_scene(spec, self.space.constraints, self._rir_cache())
            if not bad:
                return spec
            last = bad[0]
        raise SpecError(f"scenes: no valid scene for key {key} in {self.max_tries} draws (last: {last}); "
                        "the distribution mostly produces scenes that break the space's constraints")

    def _load(self, key: int) -> Any:
        from chimein.scenes.render import render

        return render(self.spec(key), cache=self._rir_cache())

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_rirs"] = None
        return state


def mixture_from_config(cfg: Mapping[str, Any] | Sequence[Mapping[str, Any]], **kwargs: Any) -> MixtureSource:
    """A :class:`MixtureSource` from ``{"mixture": [{"scenes": ..., "weight": w}, ...]}`` (or the
    list itself); ``kwargs`` go to :class:`MixtureSource` (``order``, ``cache_size``,
    ``rir_cache_dir``).

    Examples
    --------
    >>> mix = mixture_from_config({"mixture": [{"scenes": "synthetic", "weight": 1},
    ...                                        {"scenes": "addressed:easy", "weight": 3}]})
    >>> [round(float(w), 2) for w in mix.weights]
    [0.25, 0.75]
    """
    cfg = to_plain(cfg)
    items = cfg.get("mixture") if isinstance(cfg, Mapping) else cfg
    if isinstance(cfg, Mapping) and set(cfg) - {"mixture"}:
        raise unknown_key_error(sorted(set(cfg) - {"mixture"})[0], ["mixture"], "scenes mixture")
    if not isinstance(items, Sequence) or isinstance(items, str) or not items:
        raise SpecError("scenes mixture: field 'mixture': give a list of {scenes: ..., weight: ...}")
    comps = []
    for i, it in enumerate(items):
        if not isinstance(it, Mapping) or ("scenes" in it) == ("attack" in it):
            raise SpecError(f"scenes mixture: component {i}: expected {{scenes: ..., weight: ...}} or "
                            f"{{attack: DIR, weight: ...}}, got {it!r}")
        unknown = sorted(set(it) - {"scenes", "attack", "weight"})
        if unknown:
            raise unknown_key_error(unknown[0], ["scenes", "attack", "weight"], f"scenes mixture component {i}")
        if "attack" in it:
            src: Any = SpaceSource.from_attack(it["attack"], rir_cache_dir=kwargs.get("rir_cache_dir"))
        else:
            src = it["scenes"]
        comps.append((src, it.get("weight", 1.0)))
    return MixtureSource(comps, **kwargs)


def materialize(source: SceneSource, n: int, seed: int, out: str | os.PathLike[str],
                audio_format: str = "flac") -> Path:
    """Write ``n`` episodes' scenes of ``source`` (keys drawn as an env seeded with ``seed``
    would) as a dataset in ``out``; returns the manifest path. Scene ids are
    ``mix-<i>-<original id>`` (an adversarial scene drawn twice appears twice).

    Examples
    --------
    >>> import tempfile
        >>> from chimein.scenes.dataset import SceneDataset
    >>> d = tempfile.mkdtemp()
    >>> _ = materialize(MixtureSource([(SyntheticSource(), 1.0)]), 2, seed=0, out=d)
    >>> len(SceneDataset(d))
    2
    """
    from dataclasses import replace

    from chimein.scenes.dataset import write_scene_dataset

    if int(n) < 1:
        raise SpecError(f"materialize: field 'n': need at least 1 scene, got {n}")
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
    scenes = []
    for i in range(int(n)):
        sc = source.load(source.draw_key(rng, i))
        scenes.append((replace(sc.spec, id=f"mix-{i:06d}-{sc.spec.id}"), sc.audio))
    return write_scene_dataset(out, scenes, {"made_by": "chimein.envs.sources.materialize", "n": int(n),
                                             "seed": int(seed)}, audio_format)
