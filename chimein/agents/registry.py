"""Resolve a policy name, a checkpoint path or a ``remote://`` URL to a policy.

``make_policy`` is what ``policy=<...>`` on the command line goes through. ``ten-vad-endpoint``
and ``smart-turn`` are the field's own detectors (:mod:`chimein.agents.peers`), optional extras;
``chimein-lm`` and ``chimein-lm-sup`` are the timing-LM checkpoints shipped inside the package
(:mod:`chimein.agents.lm.reference`). Names map to
factories in :data:`POLICY_FACTORIES`; anything that looks like a path or a ``remote://``
URL goes to the checkpoint loader or the client of the policy server (``chimein serve``).

Examples
--------
>>> from chimein.agents.registry import make_policy, POLICY_NAMES
>>> POLICY_NAMES
('always-wait', 'random', 'energy-endpoint', 'silero-endpoint', 'ten-vad-endpoint', 'smart-turn', 'chimein-lm', 'chimein-lm-sup', 'oracle')
>>> make_policy("random", rate=0.1, seed=7).name
'random'
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chimein.agents.policy import Policy
from chimein.errors import SpecError

__all__ = ["PEER_EXTRAS", "POLICY_FACTORIES", "POLICY_NAMES", "REMOTE_SCHEME", "looks_like_path", "make_policy",
           "missing_extra", "register_policy"]

#: URL scheme of a policy served by ``chimein serve``.
REMOTE_SCHEME = "remote://"


def _always_wait(**kw: Any) -> Policy:
    from chimein.agents.baselines import AlwaysWait

    return AlwaysWait(**kw)


def _random(**kw: Any) -> Policy:
    from chimein.agents.baselines import RandomPolicy

    return RandomPolicy(**kw)


def _energy(**kw: Any) -> Policy:
    from chimein.agents.baselines import EnergyEndpoint

    return EnergyEndpoint(**kw)


def _silero(**kw: Any) -> Policy:
    from chimein.agents.baselines import SileroEndpoint

    return SileroEndpoint(**kw)


def _smart_turn(**kw: Any) -> Policy:
    from chimein.agents.peers.smart_turn import SmartTurnPolicy

    return SmartTurnPolicy(**kw)


def _ten_vad(**kw: Any) -> Policy:
    from chimein.agents.peers.ten_vad import TenVadEndpoint

    return TenVadEndpoint(**kw)


def _reference(name: str) -> Callable[..., Policy]:
    """A factory of the shipped checkpoint ``name`` (:mod:`chimein.agents.lm.reference`)."""

    def make(**kw: Any) -> Policy:
        from chimein.agents.lm.policy import LMPolicy
        from chimein.agents.lm.reference import reference_checkpoint

        return LMPolicy(str(reference_checkpoint(name)), **kw)

    make.__name__ = f"_{name.replace('-', '_')}"
    return make


def _oracle(**kw: Any) -> Policy:
    from chimein.agents.baselines import Oracle

    return Oracle(**kw)


#: Name -> factory taking the policy's keyword arguments.
POLICY_FACTORIES: dict[str, Callable[..., Policy]] = {
    "always-wait": _always_wait,
    "random": _random,
    "energy-endpoint": _energy,
    "silero-endpoint": _silero,
    "ten-vad-endpoint": _ten_vad,
    "smart-turn": _smart_turn,
    "chimein-lm": _reference("chimein-lm"),
    "chimein-lm-sup": _reference("chimein-lm-sup"),
    "oracle": _oracle,
}

#: The built-in policy names, in leaderboard order.
POLICY_NAMES: tuple[str, ...] = tuple(POLICY_FACTORIES)

#: Policies that need an optional extra: name -> (module it imports, chimein extra).
PEER_EXTRAS: dict[str, tuple[str, str]] = {"ten-vad-endpoint": ("ten_vad", "ten-vad"),
                                           "smart-turn": ("pipecat", "smart-turn")}


def missing_extra(name: str) -> str | None:
    """The chimein extra that policy ``name`` needs and this environment lacks, else None.

    Examples
    --------
    >>> missing_extra("energy-endpoint") is None
    True
    """
    import importlib.util

    need = PEER_EXTRAS.get(name)
    if need is None or importlib.util.find_spec(need[0]) is not None:
        return None
    return need[1]


def register_policy(name: str, factory: Callable[..., Policy]) -> None:
    """Add a named policy factory (plugins, tests); refuses to shadow an existing name."""
    if not name or "/" in name or name.startswith(REMOTE_SCHEME) or name in POLICY_FACTORIES:
        raise SpecError(f"policy name {name!r} is empty, looks like a path/URL or is taken; "
                        f"taken: {sorted(POLICY_FACTORIES)}")
    POLICY_FACTORIES[name] = factory


def looks_like_path(s: str) -> bool:
    """Whether the policy name ``s`` names a checkpoint directory rather than a registered
    policy: it has a path separator, starts with ``.`` or ``~``, or exists on disk."""
    return (os.sep in s or "/" in s or s.startswith((".", "~")) or Path(s).expanduser().exists())


def _from_remote(url: str, **kwargs: Any) -> Policy:
    """``remote://host:port`` -> :class:`~chimein.agents.remote.RemotePolicy` (``chimein serve``)."""
    from chimein.agents.remote import RemotePolicy

    try:
        return RemotePolicy(url, **kwargs)
    except TypeError as e:
        raise SpecError(f"policy {url!r}: bad arguments {sorted(kwargs)}: {e}") from None


def _from_checkpoint(path: str, **kwargs: Any) -> Policy:
    """A checkpoint directory (``chimein train supervised`` output) -> :class:`~chimein.agents.lm.policy.LMPolicy`."""
    p = Path(path).expanduser()
    if not p.exists():
        raise SpecError(f"policy {path!r}: no such file or directory, and not a policy name; "
                        "valid names: " + ", ".join(POLICY_FACTORIES))
    from chimein.agents.lm.checkpoint import explain_not_checkpoint, is_checkpoint

    if not is_checkpoint(p):
        raise SpecError(f"policy {path!r}: " + explain_not_checkpoint(p)
                        + "; valid policy names: " + ", ".join(POLICY_FACTORIES))
    from chimein.agents.lm.policy import LMPolicy

    try:
        return LMPolicy(str(p), **kwargs)
    except TypeError as e:
        raise SpecError(f"policy {path!r}: bad arguments {sorted(kwargs)}: {e}") from None


def make_policy(name_or_path: str, **kwargs: Any) -> Policy:
    """Build a policy from a registry name, a checkpoint path or a ``remote://`` URL.

    Parameters
    ----------
    name_or_path : str
        One of :data:`POLICY_NAMES` (case-insensitive, ``_`` accepted for ``-``), a checkpoint
        directory (``chimein train supervised|ppo|grpo`` output) or ``remote://host:port`` (a
        policy served by ``chimein serve``).
    **kwargs
        Passed to the policy's constructor (e.g. ``chunk_s=0.08``, ``rate=0.05``,
        ``silence_timeout_s=0.5``, ``speak_s=2.0``).

    Raises
    ------
    SpecError
        Unknown name (the message lists the valid ones and the closest), a path that is not a
        checkpoint, or keyword arguments the policy does not take.

    Examples
    --------
    >>> policy = make_policy("energy-endpoint", chunk_s=0.08, silence_timeout_s=0.5)
    >>> policy.endpointer.silence_frames
    25
    """
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise SpecError(f"policy: expected a name or path, got {name_or_path!r}; "
                        "valid names: " + ", ".join(POLICY_FACTORIES))
    s = name_or_path.strip()
    if s.startswith(REMOTE_SCHEME):
        return _from_remote(s, **kwargs)
    key = s.lower().replace("_", "-")
    if key in POLICY_FACTORIES:
        try:
            return POLICY_FACTORIES[key](**kwargs)
        except TypeError as e:
            raise SpecError(f"policy {key!r}: bad arguments {sorted(kwargs)}: {e}") from None
    if looks_like_path(s):
        return _from_checkpoint(s, **kwargs)
    import difflib

    close = difflib.get_close_matches(key, list(POLICY_FACTORIES), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise SpecError(f"policy {s!r}: unknown policy name; {hint}valid names: " + ", ".join(POLICY_FACTORIES)
                    + f", a checkpoint directory (e.g. runs/sup/final) or {REMOTE_SCHEME}host:port "
                    "(a policy served by `chimein serve`)")
