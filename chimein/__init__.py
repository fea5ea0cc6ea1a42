"""chimein: simulate, train and judge *when* an always-listening audio assistant should speak.

Importing :mod:`chimein` is cheap and registers nothing: it holds the version only. The
packages are the layers of the README's architecture section (``chimein.scenes``,
``chimein.envs``, ``chimein.agents``, ``chimein.eval``, ``chimein.training``, ``chimein.cli``);
``import chimein.envs`` registers the ``chimein/*`` Gymnasium ids.
"""

from __future__ import annotations

from chimein._version import __version__

__all__ = ["__version__"]
