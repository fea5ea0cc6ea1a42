"""``chimein <command> --help``: every config key of a command with its value and what it means.

The meanings are the comments of the command's YAML files in ``chimein/configs/`` (its primary
config under ``cmd/`` and the group configs its ``defaults`` pull in): a key's trailing comment,
or the comment lines right above a key that has none. Commands that take a policy also list the
policy names.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["key_docs", "key_help"]

_KEY = re.compile(r"^(\s*)([A-Za-z_][\w\-]*):(.*)$")


def _strip_comment(rest: str) -> tuple[str, str]:
    """``value  # comment`` -> (value, comment); a ``#`` inside quotes is part of the value."""
    quote = ""
    for i, ch in enumerate(rest):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or rest[i - 1].isspace()):
            return rest[:i].strip(), rest[i + 1:].strip()
    return rest.strip(), ""


def _file_docs(path: Path, package: str) -> dict[str, str]:
    """``{dotted key: comment}`` of one YAML file whose keys live under ``package`` ('' = root)."""
    docs: dict[str, str] = {}
    stack: list[tuple[int, str]] = []  # (indent, key) of the open mappings
    above: list[str] = []  # comment lines right above the next key
    seen_key, last = False, ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            above = []
            continue
        if line.lstrip().startswith("#"):
            text = line.strip()[1:].strip()
            if last and docs.get(last) and line.startswith(" ") and not above:
                docs[last] += " " + text  # a trailing comment continued on the next line
            elif seen_key and not text.startswith("@package"):
                above.append(text)
            continue
        m = _KEY.match(line)
        if not m:
            last = ""
            continue
        indent, key = len(m.group(1)), m.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        name = ".".join([package] * bool(package) + [k for _, k in stack] + [key])
        _, comment = _strip_comment(m.group(3))
        if key != "defaults" or stack:
            docs[name] = comment or " ".join(above)
        stack.append((indent, key))
        above, seen_key, last = [], True, name if comment else ""
    return docs


def key_docs(config_dir: Path, config_name: str) -> dict[str, str]:
    """``{dotted key: meaning}`` of command config ``cmd/<config_name>.yaml`` and the group
    configs of its ``defaults`` (a group's keys under its package: ``/eval: default`` -> ``eval.*``,
    ``/training@train: ppo`` -> ``train.*``)."""
    import yaml

    primary = config_dir / "cmd" / f"{config_name}.yaml"
    docs: dict[str, str] = {}
    for entry in (yaml.safe_load(primary.read_text(encoding="utf-8")) or {}).get("defaults") or []:
        if not isinstance(entry, Mapping):
            continue
        for target, option in entry.items():
            group, _, package = str(target).lstrip("/").partition("@")
            for name in dict.fromkeys(("default", str(option))):  # a variant documents its changes
                f = config_dir / group / f"{name}.yaml"
                if f.is_file():
                    docs.update({k: v for k, v in _file_docs(f, package or group).items() if v})
    for k, v in _file_docs(primary, "").items():
        if v or k not in docs:
            docs[k] = v
    return docs


def _value(v: Any) -> str:
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k}: {_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)


def _leaves(cfg: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in cfg.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out += _leaves(v, name + ".")
        else:
            out.append((name, v))
    return out


def _policies(key: str, remote: bool) -> str:
    from chimein.agents.registry import POLICY_NAMES, REMOTE_SCHEME

    text = (f"{key}: a policy name ({', '.join(POLICY_NAMES)}) or a checkpoint directory (`chimein "
            "train supervised|ppo|grpo` output, e.g. runs/sup/final)")
    return text + (f" or {REMOTE_SCHEME}host:port (a policy served by `chimein serve`)" if remote else "")


def key_help(config_dir: Path, config_name: str, cfg: Mapping[str, Any], width: int = 100) -> str:
    """The key table of ``chimein <command> --help``: ``key=value  meaning`` per leaf of the
    composed config ``cfg`` (a plain mapping), wrapped to ``width`` columns; the policy names
    when the command takes ``policy`` or ``checkpoint``."""
    docs = key_docs(config_dir, config_name)
    lines: list[str] = []
    key = "policy" if "policy" in cfg else "checkpoint" if config_name == "serve" else None
    if key is not None:
        lines += textwrap.wrap(_policies(key, remote=key == "policy"), width, subsequent_indent="  ",
                               break_on_hyphens=False) + [""]
    lines.append("keys (override with key=value; ??? = required; +key=value adds a key the config "
                 "does not have):")
    col = 34
    for name, v in sorted(_leaves(cfg), key=lambda kv: "." in kv[0]):  # the command's own keys first
        if name.startswith("runs."):
            continue
        head = f"  {name}={_value(v)}"
        doc = docs.get(name, "")
        if not doc:
            lines += textwrap.wrap(head, width, subsequent_indent=" " * 6, break_on_hyphens=False)
            continue
        if len(head) + 2 <= col:
            lines += textwrap.wrap(doc, width, initial_indent=head.ljust(col), subsequent_indent=" " * col,
                                   break_on_hyphens=False)
        else:
            lines += textwrap.wrap(head, width, subsequent_indent=" " * 6, break_on_hyphens=False)
            lines += textwrap.wrap(doc, width, initial_indent=" " * col, subsequent_indent=" " * col,
                                   break_on_hyphens=False)
    return "\n".join(lines)
