"""The one typed reader of chimein's dataclass configs.

Every configuration chimein reads -- a Hydra group (``train``, ``scenes``, ``attack.search``),
a YAML suite file, ``chimein.json`` in a checkpoint, keyword options of the env -- is a frozen
dataclass, and :func:`read_config` is the only code that turns a mapping into one. It does
once what sixteen hand-written parsers used to do each in their own way:

- accepts a plain mapping, an OmegaConf ``DictConfig`` (resolved), an instance of the class
  (returned as is) or ``None`` (the defaults);
- rejects unknown keys, listing the known ones and the closest match
  (``unknown key 'stpes' in train; known keys: ...; did you mean 'steps'?``);
- checks and coerces each value against the field's annotation: nested dataclasses (read
  recursively, ``None`` giving their defaults), ``X | None``, ``Literal[...]``, ``int`` (an
  integral float becomes an int), ``float`` (an int becomes a float), ``bool``, ``str``,
  ``tuple[...]``, ``Sequence[...]`` (a list stays a list, a tuple a tuple), ``Mapping[...]``
  (a plain ``dict``) and ``Any`` (passed through);
- turns an ``os.PathLike`` value, at any depth and whatever the annotation, into its
  ``os.fspath`` string: a config holds plain, JSON-ready data;
- wraps a missing required field into a :class:`~chimein.errors.ConfigError` naming it.

Range, choice and cross-field checks stay with each dataclass (``__post_init__``), next to the
fields they are about; they raise :class:`~chimein.errors.ConfigError` too.

This module is layer 0: it imports nothing of chimein but :mod:`chimein.errors` (OmegaConf
only when given one of its objects).

Examples
--------
>>> from dataclasses import dataclass, field
>>> @dataclass(frozen=True)
... class Opt:
...     lr: float = 1e-3
...     sizes: tuple[int, ...] = (1, 2)
>>> @dataclass(frozen=True)
... class Train:
...     steps: int = 10
...     opt: Opt = field(default_factory=Opt)
>>> read_config(Train, {"steps": 20, "opt": {"lr": 1, "sizes": [3]}})
Train(steps=20, opt=Opt(lr=1.0, sizes=(3,)))
>>> read_config(Train, {"stpes": 20}, where="train")
Traceback (most recent call last):
...
chimein.errors.ConfigError: unknown key 'stpes' in train; known keys: opt, steps; did you mean 'steps'?
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import numbers
import os
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from chimein.errors import ConfigError

__all__ = ["config_fields", "read_config", "to_plain", "unknown_key_error"]

T = TypeVar("T")

_NONE = type(None)


def to_plain(data: Any) -> Any:
    """``data`` with OmegaConf containers turned into plain dicts/lists (resolved); other
    values are returned unchanged.

    The one conversion of a composed Hydra config (or any ``DictConfig``/``ListConfig``) to
    plain Python containers: every config reader and command goes through it, so all resolve
    interpolations the same way. OmegaConf is imported only when given one of its objects.
    """
    if type(data).__module__.startswith("omegaconf"):
        from omegaconf import Container, OmegaConf
        from omegaconf.errors import OmegaConfBaseException

        if isinstance(data, Container):
            try:
                return OmegaConf.to_container(data, resolve=True)
            except OmegaConfBaseException as e:  # e.g. an override key=${missing}
                key = getattr(e, "full_key", None)
                first = (str(e).splitlines() or [type(e).__name__])[0]
                raise ConfigError(f"{f'key {key!r}: ' if key else ''}cannot resolve the config: "
                                  f"{first}; fix the ${{...}} reference (or quote a literal value)") from None
    return data


def unknown_key_error(key: Any, known: Sequence[str], where: str) -> ConfigError:
    """The error of an unknown key: names the key, where it was found, every known key and the
    closest match (difflib)."""
    close = difflib.get_close_matches(str(key), list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown key {key!r} in {where}; known keys: {', '.join(sorted(known))}{hint}")


@functools.cache
def config_fields(cls: type) -> dict[str, Any]:
    """``{field name: resolved type annotation}`` of the init fields of dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls) if f.init}


def read_config(cls: type[T], data: Any, where: str | None = None, *, also_known: Sequence[str] = ()) -> T:
    """Build dataclass ``cls`` from ``data``, checking every key and value.

    Parameters
    ----------
    cls
        A dataclass whose fields all have defaults or are given in ``data``.
    data
        A mapping (plain or OmegaConf), an instance of ``cls`` (returned unchanged) or None
        (``cls()``, the defaults).
    where
        What the config is called in messages (``"train"``, ``"scenes config"``, a file
        path); default: the class name.
    also_known
        Keys the caller reads itself (not fields of ``cls``, and still rejected here): listed
        among the known keys of an unknown-key message, so a misspelling of one of them gets
        its close-match hint too.

    Returns
    -------
    cls
        The instance; ``cls.__post_init__`` has run its own checks.

    Raises
    ------
    ConfigError
        Not a mapping, an unknown key (with the known keys and a close-match hint), a value of
        the wrong type, or a missing required field. Checks in ``__post_init__`` raise their
        own errors (also :class:`ConfigError` for chimein's configs).
    """
    where = where or cls.__name__
    if data is None:
        data = {}
    if isinstance(data, cls):
        return data
    data = to_plain(data)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of {cls.__name__} fields, got {type(data).__name__} "
                          f"{data!r}")
    types_ = config_fields(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in types_:
            raise unknown_key_error(key, [*types_, *also_known], where)
        kwargs[key] = _coerce(types_[key], value, f"{where}: field {key!r}")
    missing = [f.name for f in dataclasses.fields(cls)  # type: ignore[arg-type]
               if f.init and f.name not in kwargs and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{where}: field {missing[0]!r} is missing")
    return cls(**kwargs)


# ============================================================================================
# Values
# ============================================================================================
def _describe(tp: Any) -> str:
    if tp is _NONE:
        return "null"
    if isinstance(tp, type):
        return {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}.get(
            tp.__name__, tp.__name__)
    return str(tp).replace("typing.", "").replace("collections.abc.", "")


def _coerce(tp: Any, v: Any, where: str) -> Any:
    """``v`` checked against annotation ``tp`` (and converted where lossless)."""
    v = to_plain(v)
    if isinstance(v, os.PathLike):  # a Path given from Python: kept as its str, JSON-ready
        v = os.fspath(v)
    if tp is Any or tp is object:
        return v
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        if v is None and _NONE in args:
            return None
        first: ConfigError | None = None
        for a in args:
            if a is _NONE:
                continue
            try:
                return _coerce(a, v, where)
            except ConfigError as e:
                first = first or e
        if len(args) == 2 and _NONE in args and first is not None:
            raise ConfigError(f"{first}, or null") from None
        raise ConfigError(f"{where}: expected {' or '.join(_describe(a) for a in args)}, got {v!r}")
    if origin is typing.Literal:
        if v not in args:
            raise ConfigError(f"{where}: must be one of {list(args)}, got {v!r}")
        return v
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return read_config(tp, v, where.replace(": field ", ".").replace("'", ""))
    if origin in (tuple, list, Sequence) or tp in (tuple, list, Sequence):
        return _sequence(tp, origin or tp, args, v, where)
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        return _mapping(args, v, where)
    if tp is bool:
        if isinstance(v, (bool, _np_bool())):
            return bool(v)
        raise ConfigError(f"{where}: expected true or false, got {v!r}")
    if tp is int:
        if isinstance(v, numbers.Integral) and not isinstance(v, (bool, _np_bool())):
            return int(v)
        if isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) and v == int(v):
            return int(v)
        raise ConfigError(f"{where}: expected an integer, got {v!r}")
    if tp is float:
        if isinstance(v, numbers.Real) and not isinstance(v, (bool, _np_bool())):
            return float(v)
        raise ConfigError(f"{where}: expected a number, got {v!r}")
    if tp is str:
        if isinstance(v, str):
            return v
        raise ConfigError(f"{where}: expected a string, got {v!r}")
    if isinstance(tp, type) and not isinstance(v, tp):
        raise ConfigError(f"{where}: expected {_describe(tp)}, got {v!r}")
    return v


def _sequence(tp: Any, origin: Any, args: tuple[Any, ...], v: Any, where: str) -> Any:
    if isinstance(v, (str, bytes)) or not isinstance(v, Sequence):
        raise ConfigError(f"{where}: expected a list, got {v!r}")
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        if len(v) != len(args):
            raise ConfigError(f"{where}: expected {len(args)} values, got {list(v)!r}")
        return tuple(_coerce(a, x, f"{where}[{i}]") for i, (a, x) in enumerate(zip(args, v, strict=True)))
    elem = args[0] if args else Any
    items = [_coerce(elem, x, f"{where}[{i}]") for i, x in enumerate(v)]
    if origin is tuple:
        return tuple(items)
    if origin is list:
        return items
    return tuple(items) if isinstance(v, tuple) else items


def _mapping(args: tuple[Any, ...], v: Any, where: str) -> dict[Any, Any]:
    if not isinstance(v, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {v!r}")
    kt, vt = args if len(args) == 2 else (Any, Any)
    return {(str(k) if kt is str else k): _coerce(vt, x, f"{where}[{k!r}]") for k, x in v.items()}


@functools.cache
def _np_bool() -> type:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency
        return bool
    return np.bool_
