"""What the peer policies share: importing an optional package (or naming its extra) and int16 PCM."""

from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np

from chimein.errors import ConfigError

__all__ = ["require", "to_int16"]


def require(module: str, extra: str, policy: str, install: str | None = None) -> ModuleType:
    """Import ``module`` or raise a :class:`ConfigError` naming the extra that installs it.

    Parameters
    ----------
    module : str
        The module to import (``"ten_vad"``).
    extra : str
        chimein's extra that installs it (``"ten-vad"``).
    policy : str
        The policy name, for the message.
    install : str or None
        The install command to name, when it is not ``pip install 'chimein[EXTRA]'``.

    Examples
    --------
    >>> require("json", "none", "demo").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except (ImportError, OSError) as e:  # OSError: a native library (libc++ for ten-vad) is missing
        how = install or f"pip install 'chimein[{extra}]' -c constraints.txt"
        raise ConfigError(f"policy {policy!r} needs the '{extra}' extra (module {module!r}: {e}); install it "
                          f"with `{how}` (`make test` installs it)") from e


def to_int16(x: np.ndarray) -> np.ndarray:
    """float audio in [-1, 1] -> int16 PCM (rounded, clipped): what a voice agent's transport carries.

    Examples
    --------
    >>> to_int16(np.array([0.0, 0.5, -2.0])).tolist()
    [0, 16384, -32768]
    """
    return np.clip(np.rint(np.asarray(x, np.float64) * 32767.0), -32768, 32767).astype(np.int16)
