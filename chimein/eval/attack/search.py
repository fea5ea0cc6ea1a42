"""The search: its settings and the cross-entropy method over a declared scene space.

Everything here is pure and seeded: generation ``g``'s candidates come from a generator seeded by
``(seed, g)`` and the distribution after generation ``g - 1``; the comparison's random and held-out
scenes from their own seeded generators.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from chimein.config import read_config
from chimein.envs.core import EnvConfig, default_env
from chimein.errors import ConfigError

__all__ = ["SearchConfig", "comparison_points", "draw", "generation_points", "initial_distribution", "seed_of", "select_elites", "update_distribution"]


@dataclass(frozen=True)
class SearchConfig:
    """Search and comparison settings (the ``attack.search`` config)."""

    population: int = 32
    """Candidate scenes per generation."""
    elite_frac: float = 0.25
    """The elites are the best ``elite_frac`` of a generation's valid candidates (at least 2)."""
    keep_elites: bool = True
    """The previous generation's elites compete with the new candidates (elite retention, as in
    iCEM: a rare very hard scene keeps pulling the distribution until something harder is
    found)."""
    smoothing: float = 0.7
    """Weight of the elites' statistics in each update (the rest stays with the previous
    distribution)."""
    min_std: float = 0.05
    """Floor of each float's standard deviation (unit scale)."""
    cat_floor: float = 0.05
    """Share of the uniform distribution mixed into each categorical."""
    top_k: int = 32
    """Hardest valid scenes found that the comparison uses."""
    n_random: int = 48
    """Scenes from the prior that the comparison uses (the baseline)."""
    n_holdout: int = 48
    """Fresh scenes from the final distribution that the comparison uses."""
    resamples: int = 1000
    """Bootstrap resamples of the comparison."""
    examples: int = 3
    """Worst scenes that get a timeline plot."""
    audio_format: str = "flac"
    """Audio format of the written scene datasets (found and random scenes)."""
    env: Mapping[str, Any] = field(default_factory=default_env)
    """Env options of every episode."""
    reward: Mapping[str, Any] = field(default_factory=dict)
    """Reward (:class:`~chimein.envs.scoring.RewardConfig` fields) of every episode."""

    def __post_init__(self) -> None:
        def bad(name: str, rule: str) -> ConfigError:
            return ConfigError(f"attack search: field '{name}': {rule}, got {getattr(self, name)!r}")

        for name in ("population", "top_k", "n_random", "n_holdout", "resamples", "examples"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise bad(name, "must be an integer >= 0")
        if self.population < 2:
            raise bad("population", "must be >= 2")
        for name, lo, hi in (("elite_frac", 0.0, 1.0), ("smoothing", 0.0, 1.0), ("min_std", 0.0, 1.0),
                             ("cat_floor", 0.0, 1.0)):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not lo <= float(v) <= hi:
                raise bad(name, f"must be in [{lo}, {hi}]")
        if self.elite_frac <= 0:
            raise bad("elite_frac", "must be > 0")
        if not isinstance(self.keep_elites, bool):
            raise bad("keep_elites", "must be true or false")
        from chimein.scenes.dataset import AUDIO_FORMATS

        if self.audio_format not in AUDIO_FORMATS:
            raise bad("audio_format", f"use one of {AUDIO_FORMATS}")
        env = dict(self.env)
        if "reward" in env:
            raise ConfigError("attack search: set the reward under 'reward', not 'env.reward'")
        EnvConfig.from_options({**env, "reward": dict(self.reward)})
        object.__setattr__(self, "env", json.loads(json.dumps(env, sort_keys=True)))
        object.__setattr__(self, "reward", json.loads(json.dumps(dict(self.reward), sort_keys=True)))

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | SearchConfig | None) -> SearchConfig:
        """Read the ``attack.search`` config (:func:`chimein.config.read_config`)."""
        return read_config(cls, d, "attack search")

    @property
    def n_elite(self) -> int:
        return max(2, math.ceil(self.elite_frac * self.population))

    def env_options(self) -> dict[str, Any]:
        """Env options of every rollout (reward included)."""
        return {**dict(self.env), "reward": dict(self.reward)}

    def identity(self) -> dict[str, Any]:
        """What decides the search's candidates and scores (the comparison sizes do not)."""
        d = asdict(self)
        for k in ("top_k", "n_random", "n_holdout", "resamples", "examples", "audio_format"):
            d.pop(k)
        return json.loads(json.dumps(d, sort_keys=True))


def seed_of(*parts: int) -> int:
    """A 32-bit seed from integer parts (SeedSequence; no clock, no global RNG)."""
    return int(np.random.SeedSequence([int(p) % 2**64 for p in parts]).generate_state(1, dtype=np.uint32)[0])


_SEARCH, _RANDOM, _HOLDOUT = 0xCE11, 0x52A1, 0x401D


def initial_distribution(space: Any) -> dict[str, Any]:
    """The prior as a CEM distribution: mean 0.5 and the uniform's std ``1/sqrt(12)`` on the
    unit scale of every float, uniform probabilities for every categorical."""
    dist: dict[str, Any] = {"mean": {}, "std": {}, "probs": {}}
    for p in space.params:
        if p.kind == "categorical":
            dist["probs"][p.name] = [1.0 / len(p.choices)] * len(p.choices)
        else:
            dist["mean"][p.name] = 0.5
            dist["std"][p.name] = 1.0 / math.sqrt(12.0)
    return dist


def draw(space: Any, dist: Mapping[str, Any] | None, rng: np.random.Generator) -> dict[str, Any]:
    """One point: from the uniform prior when ``dist`` is None, else from the CEM
    distribution (Gaussian on the unit scale, clipped and snapped; categorical); see
    :meth:`~chimein.scenes.search_space.SearchSpace.sample`."""
    return space.sample(rng, dist)


def update_distribution(space: Any, dist: Mapping[str, Any], elites: Sequence[Mapping[str, Any]],
                        cfg: SearchConfig) -> dict[str, Any]:
    """The CEM update: blend the elites' mean/std (floats, unit scale) and frequencies
    (categoricals) into ``dist`` with weight ``smoothing``; floor stds at ``min_std`` and mix
    ``cat_floor`` of the uniform into each categorical. Fewer than 2 elites: unchanged."""
    new = json.loads(json.dumps(dist))
    if len(elites) < 2:
        return new
    a = float(cfg.smoothing)
    for p in space.params:
        vals = [e[p.name] for e in elites]
        if p.kind == "categorical":
            freq = np.array([sum(v == c for v in vals) for c in p.choices], float) / len(vals)
            probs = a * freq + (1 - a) * np.asarray(dist["probs"][p.name], float)
            probs = (1 - cfg.cat_floor) * probs + cfg.cat_floor / len(p.choices)
            new["probs"][p.name] = [float(x) for x in probs / probs.sum()]
        else:
            z = np.array([p.to_unit(v) for v in vals], float)
            new["mean"][p.name] = float(a * z.mean() + (1 - a) * float(dist["mean"][p.name]))
            std = a * float(z.std()) + (1 - a) * float(dist["std"][p.name])
            new["std"][p.name] = float(max(std, cfg.min_std))
    return new


def select_elites(results: Sequence[Mapping[str, Any]], n: int) -> list[Mapping[str, Any]]:
    valid = [r for r in results if r["valid"]]
    valid.sort(key=lambda r: (-float(r["regret"]), r["key"]))
    return valid[:n]


def fold_generation(space: Any, cfg: SearchConfig, g: int, gen: Sequence[Mapping[str, Any]],
                    kept: Sequence[Mapping[str, Any]], base: Mapping[str, Any]) -> dict[str, Any]:
    """Generation ``g``'s record in the search history: its elites (the best valid candidates of
    ``gen`` and the retained elites ``kept``), the distribution ``base`` refitted to them, and the
    generation's regret statistics."""
    elites = select_elites([*gen, *kept], cfg.n_elite)
    new = update_distribution(space, base, [e["point"] for e in elites], cfg)
    regrets = [float(r["regret"]) for r in gen if r["valid"]]
    return {"generation": g, "dist": new, "n_valid": len(regrets), "n_elite": len(elites),
            "elites": [e["key"] for e in elites],
            "mean_regret": float(np.mean(regrets)) if regrets else None,
            "elite_regret": float(np.mean([e["regret"] for e in elites])) if elites else None,
            "max_regret": max(regrets) if regrets else None}


def generation_points(space: Any, dist: Mapping[str, Any] | None, seed: int, g: int, population: int
                      ) -> list[tuple[str, dict[str, Any], int]]:
    """``(key, point, scene seed)`` of generation ``g``'s candidates (prior when ``dist`` is None)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _SEARCH, g]))
    return [(f"g{g:03d}-{j:03d}", draw(space, dist, rng), seed_of(seed, _SEARCH, g * population + j))
            for j in range(population)]


def comparison_points(space: Any, dist: Mapping[str, Any], seed: int, n_gen: int, n_random: int,
                      n_holdout: int) -> tuple[list[tuple[str, dict[str, Any], int]], list[tuple[str, dict[str, Any], int]]]:
    """The random scenes (prior) and the held-out scenes (final distribution) of the comparison;
    each is drawn from its own seeded generator, so enlarging either keeps its prefix."""
    rand = [(f"r{j:04d}", space.sample_prior(np.random.default_rng(np.random.SeedSequence([int(seed), _RANDOM, j]))),
             seed_of(seed, _RANDOM, j)) for j in range(n_random)]
    hold = [(f"h{n_gen:03d}-{j:04d}", draw(space, dist, np.random.default_rng(
        np.random.SeedSequence([int(seed), _HOLDOUT, n_gen, j]))), seed_of(seed, _HOLDOUT, n_gen, j)) for j in range(n_holdout)]
    return rand, hold
