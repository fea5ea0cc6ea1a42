"""Timing policies: the :class:`Policy` interface, baselines and name resolution.

Importing this package is cheap: torch and the Silero model load only when a
``silero-endpoint`` policy is built.
"""

from __future__ import annotations

from chimein.agents.baselines import (
    AlwaysWait,
    EnergyEndpoint,
    Oracle,
    RandomPolicy,
    SileroEndpoint,
)
from chimein.agents.policy import BasePolicy, Policy
from chimein.agents.registry import POLICY_NAMES, make_policy, register_policy

__all__ = [
    "POLICY_NAMES",
    "AlwaysWait",
    "BasePolicy",
    "EnergyEndpoint",
    "Oracle",
    "Policy",
    "RandomPolicy",
    "SileroEndpoint",
    "make_policy",
    "register_policy",
]
