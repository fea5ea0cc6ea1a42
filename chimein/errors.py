"""chimein's errors: one base class, one kind per boundary.

Every error chimein raises on bad input is a :class:`ChimeinError` whose message names the
file or key at fault and how to fix it; the ``chimein`` command prints it as one line and exits
with status 2. The kinds say *where* the input came from:

- :class:`SpecError` -- a scene spec, annotation, manifest, dataset or suite is invalid;
- :class:`ConfigError` -- a configuration key or value (Hydra overrides, YAML, dataclass input);
- :class:`AudioError` -- an audio file or array (unreadable, silent, NaN, wrong rate);
- :class:`RemoteError` -- a policy server, remote client or Ray cluster failed or misbehaved.

All derive from :class:`ValueError` (through :class:`ChimeinError`) so callers that caught
``ValueError`` keep working.

Examples
--------
>>> from chimein.errors import ChimeinError, ConfigError
>>> try:
...     raise ConfigError("unknown key 'stpes' in train; did you mean 'steps'?")
... except ChimeinError as e:
...     print(type(e).__name__, e)
ConfigError unknown key 'stpes' in train; did you mean 'steps'?
"""

from __future__ import annotations

__all__ = ["AudioError", "ChimeinError", "ConfigError", "RemoteError", "SpecError"]


class ChimeinError(ValueError):
    """Bad input or a failed boundary; the message names the file or key and the fix."""


class SpecError(ChimeinError):
    """A scene spec, manifest, dataset, suite or audio reference is invalid."""


class ConfigError(ChimeinError):
    """A configuration key or value is invalid (unknown key, wrong type, out of range)."""


class AudioError(ChimeinError):
    """An audio file or array cannot be used (unreadable, empty, silent, NaN, bad rate)."""


class RemoteError(ChimeinError):
    """A policy server, remote client or execution backend failed or broke the protocol."""
