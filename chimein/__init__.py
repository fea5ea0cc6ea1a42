"""chimein: simulate, train and judge *when* an always-listening audio assistant should speak.

Importing :mod:`chimein` is cheap: it registers the Gymnasium environment ids (see
:mod:`chimein.envs.registration`) and nothing heavy (torch, trl, matplotlib) is imported here.
"""

from __future__ import annotations

__version__ = "0.1.0"

import chimein.envs  # noqa: E402,F401  (registers the chimein/* Gymnasium ids; no torch)

__all__ = ["__version__"]
