"""The ``chimein`` command: ``chimein <group> <command> [positional] [key=value ...]``.

One module per command group (:mod:`~chimein.cli.scenes`, :mod:`~chimein.cli.eval`,
:mod:`~chimein.cli.attack`, :mod:`~chimein.cli.train`, :mod:`~chimein.cli.serve`,
:mod:`~chimein.cli.demo`), each a thin handler from a composed Hydra config to the library;
:mod:`~chimein.cli.main` holds the command table, composes configs from the package data in
``chimein/configs/`` and dispatches. This is the top layer: it may import every package, and
no package imports it.
"""

from __future__ import annotations

from chimein.cli.main import COMMANDS, compose, config_dir, main

__all__ = ["COMMANDS", "compose", "config_dir", "main"]
