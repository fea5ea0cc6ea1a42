"""The one config reader (:mod:`chimein.config`) and the agreement of every shipped YAML default
in ``chimein/configs/`` with the dataclass (or function) default it mirrors."""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from omegaconf import OmegaConf

import chimein
from chimein.config import read_config
from chimein.errors import ChimeinError, ConfigError

CONFIGS = Path(chimein.__file__).parent / "configs"


# ============================================================================================
# The reader
# ============================================================================================
@dataclass(frozen=True)
class _Inner:
    rate: float = 0.5
    names: tuple[str, ...] = ("a",)


@dataclass(frozen=True)
class _Outer:
    steps: int = 10
    mode: Literal["fast", "slow"] = "fast"
    limit: float | None = None
    ranges: Sequence[float] = (1.0, 2.0)
    extra: Mapping[str, Any] = field(default_factory=dict)
    inner: _Inner = field(default_factory=_Inner)


def test_defaults_instances_and_none() -> None:
    assert read_config(_Outer, None) == _Outer()
    o = _Outer(steps=3)
    assert read_config(_Outer, o) is o


def test_nested_dataclasses_and_coercion() -> None:
    cfg = read_config(_Outer, {"steps": 4.0, "limit": 2, "ranges": [1, 3], "inner": {"rate": 1, "names": ["x", "y"]}})
    assert cfg == _Outer(steps=4, limit=2.0, ranges=[1.0, 3.0], inner=_Inner(rate=1.0, names=("x", "y")))
    assert type(cfg.steps) is int and type(cfg.limit) is float and type(cfg.inner.rate) is float
    assert isinstance(cfg.ranges, list) and isinstance(cfg.inner.names, tuple)  # a list stays a list
    assert read_config(_Outer, {"inner": None}).inner == _Inner()  # null nested config: its defaults


def test_omegaconf_input() -> None:
    node = OmegaConf.create({"steps": 7, "extra": {"k": [1, 2]}, "inner": {"names": ["${mode}"]}, "mode": "slow"})
    cfg = read_config(_Outer, node)
    assert cfg == _Outer(steps=7, mode="slow", extra={"k": [1, 2]}, inner=_Inner(names=("slow",)))
    assert type(cfg.extra) is dict and type(cfg.extra["k"]) is list  # plain containers, resolved


def test_unknown_key_names_where_the_known_keys_and_the_closest() -> None:
    with pytest.raises(ConfigError) as e:
        read_config(_Outer, {"stpes": 3}, where="train")
    assert str(e.value) == ("unknown key 'stpes' in train; known keys: extra, inner, limit, mode, ranges, "
                            "steps; did you mean 'steps'?")
    with pytest.raises(ConfigError, match=r"unknown key 'rte' in train\.inner; .*did you mean 'rate'"):
        read_config(_Outer, {"inner": {"rte": 1}}, where="train")
    with pytest.raises(ConfigError, match=r"unknown key 'zzz' in _Outer; known keys: [^?]*$"):
        read_config(_Outer, {"zzz": 1})


@pytest.mark.parametrize(("data", "match"), [
    ({"steps": "ten"}, r"train: field 'steps': expected an integer, got 'ten'"),
    ({"steps": 2.5}, "expected an integer"),
    ({"steps": True}, "expected an integer"),
    ({"limit": "x"}, r"field 'limit': expected a number, got 'x', or null"),
    ({"mode": "medium"}, r"must be one of \['fast', 'slow'\]"),
    ({"ranges": "1,2"}, "expected a list"),
    ({"ranges": [1, "b"]}, r"field 'ranges'\[1\]: expected a number"),
    ({"extra": [1]}, "expected a mapping"),
    ({"inner": {"names": [1]}}, r"train\.inner: field 'names'\[0\]: expected a string"),
    ([1, 2], "expected a mapping of _Outer fields"),
])
def test_wrong_types_name_the_field(data: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        read_config(_Outer, data, where="train")


def test_config_errors_are_chimein_errors() -> None:
    from chimein.training.supervised import TrainConfig

    with pytest.raises(ChimeinError, match="did you mean 'steps'"):  # what the CLI catches
        TrainConfig.from_mapping({"stpes": 3})
    with pytest.raises(ConfigError, match="field 'steps': a positive integer"):  # __post_init__ checks
        TrainConfig.from_mapping({"steps": 0})


# ============================================================================================
# Every shipped YAML default agrees with its dataclass default
# ============================================================================================
def _load(rel: str) -> dict[str, Any]:
    return yaml.safe_load((CONFIGS / rel).read_text(encoding="utf-8")) or {}


def _plain(x: Any) -> Any:
    """Tuples as lists, so a YAML list and a tuple default compare equal."""
    return json.loads(json.dumps(x, default=list))


def _disagreements(yaml_cfg: Mapping[str, Any], cls: type, where: str, skip: Sequence[str] = ()) -> list[str]:
    """Keys of ``yaml_cfg`` that are not fields of ``cls`` or whose value differs from the
    field's default (``skip``: keys compared elsewhere)."""
    defaults = {f.name: getattr(cls(), f.name) for f in fields(cls)} if _all_default(cls) else {}
    out = []
    for k, v in yaml_cfg.items():
        if k not in {f.name for f in fields(cls)}:
            out.append(f"{where}: key {k!r} is not a field of {cls.__name__}")
        elif k not in skip and _plain(v) != _plain(defaults[k]):
            out.append(f"{where}: {k} = {v!r} in YAML, {defaults[k]!r} in {cls.__name__}")
    return out


def _all_default(cls: type) -> bool:
    try:
        cls()
    except TypeError:
        return False
    return True


def _signature_disagreements(yaml_cfg: Mapping[str, Any], fn: Any, where: str,
                             renames: Mapping[str, Any] = {}) -> list[str]:
    """Like :func:`_disagreements` against the keyword defaults of function ``fn``
    (``renames``: YAML key -> ``(other callable or class, its parameter name)``)."""
    params = inspect.signature(fn).parameters
    out = []
    for k, v in yaml_cfg.items():
        if k in renames:
            other, name = renames[k]
            default = (getattr(other(), name) if isinstance(other, type)
                       else inspect.signature(other).parameters[name].default)
        elif k in params:
            default = params[k].default
        else:
            out.append(f"{where}: key {k!r} is not a parameter of {fn.__qualname__}")
            continue
        if _plain(v) != _plain(default) and not (v == {} and default is None):
            out.append(f"{where}: {k} = {v!r} in YAML, {default!r} in {fn.__qualname__}")
    return out


def _all_disagreements() -> list[str]:
    from chimein.agents.lm.model import LMConfig
    from chimein.agents.lm.tokenizer import FeatureConfig
    from chimein.agents.server import ServerConfig
    from chimein.envs.core import ENV_OPTIONS
    from chimein.envs.scoring import RewardConfig
    from chimein.envs.vector import VECTOR_OPTIONS
    from chimein.eval.attack import SearchConfig
    from chimein.eval.runner import evaluate
    from chimein.exec.ray import RayOptions
    from chimein.scenes.sampler import SamplerConfig
    from chimein.scenes.search_space import Constraints, SearchSpace
    from chimein.training.grpo import GRPORunConfig
    from chimein.training.labels import LabelConfig
    from chimein.training.ppo import PPOConfig
    from chimein.training.supervised import DataConfig, TrainConfig, ValConfig

    bad: list[str] = []
    # training/: the top level and the nested groups
    sup = _load("training/supervised.yaml")
    bad += _disagreements(sup, TrainConfig, "training/supervised.yaml", skip=("labels", "data", "val"))
    bad += _disagreements(sup["labels"], LabelConfig, "training/supervised.yaml labels")
    bad += _disagreements(sup["data"], DataConfig, "training/supervised.yaml data")
    bad += _disagreements(sup["val"], ValConfig, "training/supervised.yaml val")
    grpo = _load("training/grpo.yaml")  # val: options of the validation evaluation (free-form)
    bad += _disagreements(grpo, GRPORunConfig, "training/grpo.yaml", skip=("val",))
    bad += _disagreements(grpo["reward"], RewardConfig, "training/grpo.yaml reward")
    ppo = _load("training/ppo.yaml")  # env: an overlay of env options (its keys are checked below)
    bad += _disagreements(ppo, PPOConfig, "training/ppo.yaml", skip=("val", "env"))
    bad += [f"training/ppo.yaml env: unknown env option {k!r}" for k in ppo["env"]
            if k not in (*ENV_OPTIONS, *VECTOR_OPTIONS)]
    bad += _disagreements(_load("training/codebook.yaml")["features"], FeatureConfig, "training/codebook.yaml features")
    # agents/
    bad += _disagreements(_load("agents/lm.yaml"), LMConfig, "agents/lm.yaml")
    # scenes/: default mirrors the sampler; the difficulty presets override some of its keys
    bad += _disagreements(_load("scenes/default.yaml"), SamplerConfig, "scenes/default.yaml")
    for preset in ("easy", "hard"):
        over = {k: v for k, v in _load(f"scenes/{preset}.yaml").items() if k != "defaults"}
        bad += [f"scenes/{preset}.yaml: key {k!r} is not a field of SamplerConfig" for k in over
                if k not in {f.name for f in fields(SamplerConfig)}]
    # eval/: keyword defaults of evaluate() (the ray_* keys are RayOptions fields)
    bad += _signature_disagreements(_load("eval/default.yaml"), evaluate, "eval/default.yaml",
                                    {"ray_address": (RayOptions, "address"), "ray_num_gpus": (RayOptions, "num_gpus")})
    # attack/: the search settings and the space's constraints; the space itself must read
    att = _load("attack/default.yaml")
    bad += _disagreements(att["search"], SearchConfig, "attack/default.yaml search")
    bad += _disagreements(att["space"]["constraints"], Constraints, "attack/default.yaml space.constraints")
    SearchSpace.from_mapping(att["space"])  # every declaration and base knob is valid
    # cmd/: the server's settings, and every sampler overlay a command carries
    serve = {k: v for k, v in _load("cmd/serve.yaml").items() if k not in ("checkpoint", "device", "policy_args")}
    bad += _disagreements(serve, ServerConfig, "cmd/serve.yaml")
    for p in sorted((CONFIGS / "cmd").glob("*.yaml")):
        scenes = _load(f"cmd/{p.name}").get("scenes")
        if isinstance(scenes, Mapping):
            bad += [f"cmd/{p.name}: scenes.{k} is not a field of SamplerConfig" for k in scenes
                    if k not in {f.name for f in fields(SamplerConfig)}]
    return bad


def test_every_yaml_default_matches_its_dataclass() -> None:
    assert _all_disagreements() == []


def test_the_comparison_catches_a_one_sided_change(monkeypatch: pytest.MonkeyPatch) -> None:
    """Changing one side only (here: the dataclass default of ``train.lr``, and a YAML key that
    no dataclass has) makes the comparison fail."""
    from chimein.training.supervised import TrainConfig

    monkeypatch.setattr(TrainConfig, "__init__", _with_default(TrainConfig.__init__, "lr", 1.0))
    assert any("lr" in d and "TrainConfig" in d for d in _all_disagreements())
    monkeypatch.undo()
    real = _load
    monkeypatch.setattr(f"{__name__}._load", lambda rel: {**real(rel), "stpes": 1} if rel == "agents/lm.yaml" else real(rel))
    assert any("'stpes' is not a field of LMConfig" in d for d in _all_disagreements())


def _with_default(init: Any, name: str, value: Any) -> Any:
    def wrapped(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault(name, value)
        init(self, *args, **kwargs)

    wrapped.__signature__ = inspect.signature(init)  # type: ignore[attr-defined]
    return wrapped
