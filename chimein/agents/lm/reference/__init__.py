"""The reference timing policies shipped inside the package: ``chimein-lm`` and ``chimein-lm-sup``.

A user who wants a strong starting point should not have to train one first. Two checkpoints of
the timing LM ship with chimein as ordinary checkpoint directories (safetensors only, see
:mod:`chimein.agents.lm.checkpoint`) beside this module:

``chimein-lm-sup``
    The supervised checkpoint of the README's recipe (``chimein train supervised``), calibrated.
``chimein-lm``
    The reference policy: the best of the supervised checkpoint and its RL refinements (PPO,
    GRPO) on ``chimein-bench-v1``, as its card says (``reference_card("chimein-lm")["source"]``).

Each directory holds a ``reference.json`` *card*: what the checkpoint is, the commands that made
it, the sha256 of every file, and the metrics it scored (``chimein-bench-v1-mini``, recorded by
:mod:`chimein.eval.reference`, which a test re-measures; the full suites' headline figures).
:func:`reference_checkpoint` checks the files against the card before anything loads them, so a
damaged or edited install fails loudly instead of changing a number.

``policy=chimein-lm`` (``make_policy``), ``init=chimein-lm-sup`` (``chimein train ppo|grpo``) and
``chimein serve policy=chimein-lm`` go through :func:`checkpoint_path`.

Examples
--------
>>> from chimein.agents.lm.reference import REFERENCE_NAMES, checkpoint_path
>>> REFERENCE_NAMES
('chimein-lm', 'chimein-lm-sup')
>>> checkpoint_path("runs/sup/final")  # anything else is passed through
'runs/sup/final'
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from chimein.errors import ConfigError, SpecError

__all__ = [
    "CARD_FILE",
    "REFERENCE_NAMES",
    "checkpoint_path",
    "is_reference",
    "reference_card",
    "reference_checkpoint",
    "reference_root",
    "verify_reference",
]

#: The shipped checkpoints, in leaderboard order.
REFERENCE_NAMES: tuple[str, ...] = ("chimein-lm", "chimein-lm-sup")

#: The card beside each shipped checkpoint (not itself checksummed: it holds the checksums).
CARD_FILE = "reference.json"

_VERIFIED: set[tuple[str, float]] = set()


def reference_root() -> Path:
    """The folder that holds the shipped checkpoint directories (inside the installed package)."""
    return Path(__file__).resolve().parent


def _key(name: str) -> str:
    return str(name).strip().lower().replace("_", "-")


def is_reference(name: Any) -> bool:
    """Whether ``name`` names a shipped checkpoint (case-insensitive, ``_`` for ``-``)."""
    return isinstance(name, str) and _key(name) in REFERENCE_NAMES


def reference_card(name: str) -> dict[str, Any]:
    """The parsed ``reference.json`` of shipped checkpoint ``name``.

    Raises
    ------
    SpecError
        ``name`` is not a shipped checkpoint.
    ConfigError
        The card is missing or unreadable (a partial install: reinstall chimein).
    """
    key = _key(name)
    if key not in REFERENCE_NAMES:
        raise SpecError(f"{name!r} is not a shipped checkpoint; shipped: {', '.join(REFERENCE_NAMES)}")
    card = reference_root() / key / CARD_FILE
    try:
        return dict(json.loads(card.read_text(encoding="utf-8")))
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"shipped checkpoint {key!r}: cannot read {card} ({e}); the installation is incomplete: "
            "reinstall chimein (`make test` or `pip install -e .` in a fresh clone)"
        ) from None


def verify_reference(name: str) -> Path:
    """Check every file of shipped checkpoint ``name`` against the sha256 its card records;
    return its directory.

    Raises
    ------
    ConfigError
        A file is missing, extra weights appear, or a checksum differs (the message names the
        file and the fix).
    """
    from chimein.scenes.dataset import sha256_file

    key = _key(name)
    card = reference_card(key)
    d = reference_root() / key
    files = card.get("files")
    if not isinstance(files, dict) or not files:
        raise ConfigError(f"shipped checkpoint {key!r}: {d / CARD_FILE} lists no files; reinstall chimein")
    stamp = (key, max(((d / f).stat().st_mtime for f in files if (d / f).is_file()), default=0.0))
    if stamp in _VERIFIED:
        return d
    for fname, digest in sorted(files.items()):
        p = d / fname
        if not p.is_file():
            raise ConfigError(f"shipped checkpoint {key!r}: file {fname!r} is missing from {d}; "
                              "reinstall chimein")
        got = sha256_file(p)
        if got != digest:
            raise ConfigError(
                f"shipped checkpoint {key!r}: {p} has sha256 {got[:12]}... but its card records "
                f"{str(digest)[:12]}...; the file was changed or damaged: reinstall chimein (to "
                "change a shipped policy, train your own and pass its directory instead)"
            )
    _VERIFIED.add(stamp)
    return d


def reference_checkpoint(name: str) -> Path:
    """The verified directory of shipped checkpoint ``name`` (see :func:`verify_reference`)."""
    return verify_reference(name)


def checkpoint_path(name_or_path: str | os.PathLike[str]) -> str:
    """A shipped checkpoint's verified directory for its name; any other argument unchanged."""
    if is_reference(name_or_path):
        return str(reference_checkpoint(str(name_or_path)))
    return str(name_or_path)
