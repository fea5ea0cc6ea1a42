"""Mix scene sources with fixed weights: the curriculum seam for adversarial datasets.

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

Examples
--------
>>> from chimein.envs.sources import SyntheticSource
>>> mix = MixtureSource([(SyntheticSource(), 0.5), (SyntheticSource(noise_db=-20.0), 0.5)])
>>> import numpy as np
>>> keys = [mix.draw_key(np.random.default_rng(0), i) for i in range(3)]
>>> mix.component_of(keys[0]) in (0, 1), mix.load(keys[0]).audio.dtype
(True, dtype('float32'))
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chimein.envs.sources import SceneSource, make_source
from chimein.errors import SpecError

__all__ = ["MixtureSource", "SpaceSource", "materialize", "mixture_from_config"]


class MixtureSource(SceneSource):
    """Each episode's scene comes from component ``i`` with probability ``weights[i]``.

    Parameters
    ----------
    components
        ``(source, weight)`` pairs; a source is a :class:`SceneSource` or anything
        :func:`~chimein.envs.sources.make_source` resolves (sampler config, family or difficulty
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
        from chimein.envs.sources import KEY_SPACE

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
    if hasattr(cfg, "_content"):
        from omegaconf import OmegaConf

        cfg = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    items = cfg.get("mixture") if isinstance(cfg, Mapping) else cfg
    if isinstance(cfg, Mapping) and set(cfg) - {"mixture"}:
        raise SpecError(f"scenes mixture: unknown field '{sorted(set(cfg) - {'mixture'})[0]}'; use 'mixture'")
    if not isinstance(items, Sequence) or isinstance(items, str) or not items:
        raise SpecError("scenes mixture: field 'mixture': give a list of {scenes: ..., weight: ...}")
    comps = []
    for i, it in enumerate(items):
        if not isinstance(it, Mapping) or ("scenes" in it) == ("attack" in it):
            raise SpecError(f"scenes mixture: component {i}: expected {{scenes: ..., weight: ...}} or "
                            f"{{attack: DIR, weight: ...}}, got {it!r}")
        unknown = sorted(set(it) - {"scenes", "attack", "weight"})
        if unknown:
            raise SpecError(f"scenes mixture: component {i}: unknown field '{unknown[0]}'; use scenes (or "
                            "attack) and weight")
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
    >>> from chimein.envs.sources import SyntheticSource
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
    return write_scene_dataset(out, scenes, {"made_by": "chimein.envs.mixture.materialize", "n": int(n),
                                             "seed": int(seed)}, audio_format)
