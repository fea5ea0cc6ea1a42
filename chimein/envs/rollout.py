"""Play scenes through the batched vector env with any policy: the one rollout loop.

:func:`rollout` is what evaluation (:mod:`chimein.eval.runner`), the adversarial search, the
supervised stage's validation and the remote/real-time client all use to turn (scenes, policy)
into :class:`~chimein.envs.episode.EpisodeRecord` s; it needs only the vector env and the :class:`~chimein.agents.policy.Policy`
protocol (``configure``, ``reset``, ``act``), so it lives with the envs and policies may use it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from chimein.envs.episode import EpisodeRecord
from chimein.errors import ChimeinError, ConfigError

__all__ = ["latency_mark", "prepare_policy", "rollout"]


def prepare_policy(policy: Any, env_cfg: Any) -> None:
    """Configure ``policy`` for the env's stream format (and the oracle's speaking time).

    Raises
    ------
    ConfigError
        The policy cannot read the env's ``obs_mode`` (a setting the user chooses).
    """
    obs_modes = getattr(policy, "obs_modes", None)
    if obs_modes is not None and env_cfg.obs_mode not in obs_modes:
        raise ConfigError(f"policy {getattr(policy, 'name', '?')!r} needs obs_mode in {tuple(obs_modes)}, the "
                        f"env plays {env_cfg.obs_mode!r}; set env.obs_mode={obs_modes[0]}")
    policy.configure(env_cfg.chunk_s, env_cfg.sample_rate, env_cfg.obs_mode)
    if getattr(policy, "name", "") == "oracle" and hasattr(policy, "speak_s"):
        policy.speak_s = float(env_cfg.speak_s)


def rollout(scenes: Sequence[Any], policy: Any, env_options: Mapping[str, Any] | None = None,
            on_invalid: str = "raise") -> list[EpisodeRecord]:
    """Play every scene once, all in lockstep, with one batched policy call per step.

    Parameters
    ----------
    scenes
        Rendered scenes (``audio``, ``sample_rate``, ``spec``).
    policy
        A :class:`~chimein.agents.policy.Policy`; it is configured for the env's stream
        format and reset with the scenes' specs.
    env_options
        Options of :class:`~chimein.envs.vector.ResponseTimingVectorEnv` (``chunk_ms``,
        ``speak_s``, ``reward``, ...).
    on_invalid
        What to do when the policy returns an action outside {0, 1, 2} for a stream:
        ``"raise"`` a :class:`~chimein.errors.ChimeinError`, or ``"flag"`` the episode as unusable
        (``record.invalid``) and play WAIT for it from then on (PSB's rule: unusable output
        counts as wrong).

    Raises
    ------
    ValueError
        ``on_invalid`` is neither ``"raise"`` nor ``"flag"`` (a bug of the caller).
    ChimeinError
        The policy broke the :class:`~chimein.agents.policy.Policy` contract: ``act`` returned
        actions of another shape, or (with ``on_invalid="raise"``) an invalid action. A policy
        may be the user's own or a plugin, so the CLI reports it as one line.
    ConfigError
        See :func:`prepare_policy`.

    Returns
    -------
    list of EpisodeRecord
        Per scene, in order: the env's final judgement (``outcome``, ``action_log``,
        ``scene_id``) and ``invalid``; with ``decision_latencies_ms`` (one value per step the
        scene was playing) when the policy recorded latencies in its ``latencies_ms`` list
        during the rollout (see :func:`_take_latencies`). ``meta`` is empty.

    Examples
    --------
    >>> from chimein.envs.sources import SyntheticSource
    >>> from chimein.agents.baselines import Oracle
    >>> scenes = [SyntheticSource().load(k) for k in (1, 2)]
    >>> records = rollout(scenes, Oracle())
    >>> [r.outcome.reward == r.outcome.max_reward for r in records]
    [True, True]
    """
    from chimein.envs.vector import ResponseTimingVectorEnv

    if on_invalid not in ("raise", "flag"):
        raise ValueError(f"rollout: on_invalid={on_invalid!r}; use 'raise' or 'flag'")
    n = len(scenes)
    if n == 0:
        return []
    envs = ResponseTimingVectorEnv(n, list(scenes), order="sequential", prefetch=0, **dict(env_options or {}))
    try:
        obs, _ = envs.reset(seed=list(range(n)))
        prepare_policy(policy, envs.config)
        policy.reset(n, [s.spec for s in envs.scenes])
        done = np.zeros(n, bool)
        invalid = np.zeros(n, bool)
        finals: list[Mapping[str, Any] | None] = [None] * n
        lat: list[list[float]] = [[] for _ in range(n)]
        recorded = False
        while not done.all():
            mark = latency_mark(policy)
            actions, _ = policy.act(obs)
            if mark is not None:
                recorded |= _take_latencies(policy, mark, ~done, lat)
            a = np.asarray(actions)
            if a.shape != (n,):
                raise ChimeinError(f"policy {getattr(policy, 'name', '?')!r}: act() returned actions of shape "
                                f"{a.shape}; expected ({n},)")
            bad = ~np.isin(a, (0, 1, 2)) & ~done
            if bad.any():
                if on_invalid == "raise":
                    i = int(np.flatnonzero(bad)[0])
                    raise ChimeinError(f"policy {getattr(policy, 'name', '?')!r}: action {a[i].item()!r} for scene "
                                    f"{envs.scenes[i].spec.id!r} is not 0 WAIT, 1 RESPOND or 2 INTERVENE")
                invalid |= bad
            a = np.where(done | invalid | ~np.isin(a, (0, 1, 2)), 0, a).astype(np.int64)
            obs, _, _, trunc, _ = envs.step(a)
            for i in np.flatnonzero(trunc & ~done).tolist():
                finals[i] = envs.last_final[i][1]
                done[i] = True
        return [replace(EpisodeRecord.from_final_info(fin), invalid=bool(invalid[i]),  # type: ignore[arg-type]
                        decision_latencies_ms=tuple(lat[i]) if recorded else None)
                for i, fin in enumerate(finals)]
    finally:
        envs.close()


def latency_mark(policy: Any) -> int | None:
    """Length of the policy's ``latencies_ms`` list (None: the policy records none)."""
    v = getattr(policy, "latencies_ms", None)
    return len(v) if isinstance(v, list) else None


_WARNED: set[str] = set()


def _take_latencies(policy: Any, mark: int, live: np.ndarray, out: list[list[float]]) -> bool:
    """Attribute the latencies one ``act`` call appended after index ``mark`` to its streams.

    One value per stream (in stream order) goes to each stream that is still playing (``live``;
    finished streams are padding, their chunks are not decisions of any episode); a single value
    (a policy that times whole calls) goes to every live stream. Any other count cannot be
    attributed: those values are skipped with one warning. Returns whether values were taken.
    """
    new = policy.latencies_ms[mark:]
    n = live.shape[0]
    if not new:
        return False
    if len(new) not in (n, 1):
        name = str(getattr(policy, "name", "?"))
        if name not in _WARNED:
            _WARNED.add(name)
            print(f"warning: policy {name!r} recorded {len(new)} latencies for one act() call of {n} "
                  "streams (expected one per stream, or one per call); they are not attributed to episodes",
                  file=sys.stderr)
        return False
    for i in np.flatnonzero(live).tolist():
        out[i].append(float(new[i] if len(new) == n else new[0]))
    return True
