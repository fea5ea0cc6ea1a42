"""The one config reader (:mod:`chimein.config`) and the agreement of every shipped YAML default
in ``chimein/configs/`` with the dataclass (or function) default it mirrors."""

from __future__ import annotations

import functools
import inspect
import json
import os
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


def test_a_path_becomes_its_str() -> None:
    """``os.PathLike`` values are stored as ``os.fspath`` strings, in a ``str`` field or inside
    a free-form mapping, so the config stays JSON-ready (``to_dict``, ``chimein.json``)."""
    from chimein.training.supervised import TrainConfig

    cfg = read_config(_Outer, {"inner": {"names": [Path("a") / "b"]}, "extra": {"dir": Path("c")}})
    assert cfg.inner.names == (os.fspath(Path("a") / "b"),) and type(cfg.inner.names[0]) is str
    assert cfg.extra == {"dir": "c"}
    train = TrainConfig.from_mapping({"data": {"cache_dir": Path("x")}})
    assert train.to_dict()["data"] == {"cache_dir": "x"} and train.data_cfg.cache_dir == "x"


def test_also_known_keys_are_hinted_but_not_accepted() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'ordr' in opts; known keys: .*order.*did you mean 'order'"):
        read_config(_Inner, {"ordr": 1}, "opts", also_known=("order",))
    with pytest.raises(ConfigError, match="unknown key 'order' in opts"):
        read_config(_Inner, {"order": 1}, "opts", also_known=("order",))


def test_to_plain_converts_omegaconf_containers_only() -> None:
    from chimein.config import to_plain

    assert to_plain(OmegaConf.create({"a": "${b}", "b": [1]})) == {"a": [1], "b": [1]}
    assert type(to_plain(OmegaConf.create([1, {"x": 2}]))) is list
    d = {"a": 1}
    assert to_plain(d) is d and to_plain(None) is None


def test_codebook_config_reads_the_group() -> None:
    from chimein.agents.lm.tokenizer import FeatureConfig
    from chimein.training.codebook import CodebookConfig

    cfg = CodebookConfig.from_mapping({**_load("training/codebook.yaml"), "size": 128.0, "features": {"n_mels": 16}})
    assert cfg.size == 128 and type(cfg.size) is int and cfg.features == FeatureConfig(n_mels=16)
    assert cfg.difficulties == ("easy", "default", "hard")
    with pytest.raises(ConfigError, match="unknown key 'sise' in codebook; .*did you mean 'size'"):
        CodebookConfig.from_mapping({"sise": 3})
    with pytest.raises(ConfigError, match="field 'size': must be >= 2"):
        CodebookConfig.from_mapping({"size": 1})


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


def _workers(v: Any) -> Any:
    """What the commands pass for ``workers`` (0: all cores, the library's None)."""
    return int(v) or None


def _signature_disagreements(yaml_cfg: Mapping[str, Any], fn: Any, where: str,
                             renames: Mapping[str, Any] = {}, command: Sequence[str] = (),
                             convert: Mapping[str, Any] = {}) -> list[str]:
    """Like :func:`_disagreements` against the keyword defaults of function ``fn``.

    ``renames``: YAML key -> ``(other callable or class, its parameter or field name)``;
    ``command``: keys only the command reads (no library default to compare with; every other
    key must be a parameter); ``convert``: YAML key -> what the command does to the value before
    passing it (``workers``: 0 -> None). A required value (``???``) or a parameter without a
    default has nothing to compare."""
    params = inspect.signature(fn).parameters if fn is not None else {}
    name_of = fn.__qualname__ if fn is not None else "the command"
    out = []
    for k, v in yaml_cfg.items():
        if k in command:
            continue
        if k in renames:
            other, name = renames[k]
            default = (getattr(other(), name) if isinstance(other, type)
                       else inspect.signature(other).parameters[name].default)
        elif k in params:
            default = params[k].default
        else:
            out.append(f"{where}: key {k!r} is not a parameter of {name_of}")
            continue
        if v == "???" or default is inspect.Parameter.empty:
            continue
        v = convert[k](v) if k in convert else v
        if _plain(v) != _plain(default) and not (v == {} and default is None):
            out.append(f"{where}: {k} = {v!r} in YAML, {default!r} in {name_of}")
    return out


#: YAML keys that configure a whole group (compared with their dataclass elsewhere in this file)
_GROUPS = ("defaults", "eval", "attack", "scenes", "codebook", "lm", "train")


def _cmd_disagreements() -> list[str]:
    """Every top-level key of ``chimein/configs/cmd/*.yaml`` against the keyword default of the
    library function (or dataclass) the command hands it to; keys only the command reads are
    listed per file, and a file missing from the table is a disagreement too."""
    from chimein.agents.server import ServerConfig
    from chimein.eval.attack import attack
    from chimein.eval.psb import evaluate_psb, export_psb
    from chimein.eval.recordings import export_suite_hf
    from chimein.eval.report import compare
    from chimein.eval.runner import evaluate
    from chimein.eval.suites import materialize
    from chimein.eval.sweep import sweep, tradeoff
    from chimein.exec.ray import RayOptions
    from chimein.scenes.dataset import generate_dataset
    from chimein.scenes.speech_pack import make_speech_pack
    from chimein.training.curves import plot_curves
    from chimein.training.grpo import train_grpo
    from chimein.training.ppo import train_ppo
    from chimein.training.supervised import calibrate_checkpoint, train_supervised

    ray = {"ray_address": (RayOptions, "address"), "ray_num_gpus": (RayOptions, "num_gpus")}
    w = {"workers": _workers}
    # file -> (consumer, renames, keys only the command reads, value conversions)
    table: dict[str, tuple[Any, Mapping[str, Any], tuple[str, ...], Mapping[str, Any]]] = {
        "attack": (attack, {"policy_args": (attack, "policy_kwargs"), **ray},
                   ("replay",), w),  # replay=DIR: the command calls eval.attack.replay instead
        "demo": (None, {}, ("out", "seed", "scenes_per_family", "workers", "lm"), {}),
        # recordings=DIR: the command calls eval.recordings.evaluate_recordings instead
        "eval": (evaluate, {"policy_args": (evaluate, "policy_kwargs")}, ("recordings",), w),
        "eval_compare": (compare, {}, (), {}),
        "eval_materialize": (materialize, {}, (), w),
        "eval_psb": (evaluate_psb, {"policy_args": (evaluate_psb, "policy_kwargs")}, (), w),
        "eval_rescore": (None, {}, ("episodes", "out", "reward", "specs_root", "annotations"), {}),
        "eval_spread": (None, {}, ("runs", "out"), {}),  # seed_spread(runs), write_spread(out)
        "eval_sweep": (sweep, {"policy_args": (sweep, "policy_kwargs"), "suite": (evaluate, "suite"),
                               "workers": (evaluate, "workers")}, (), w),
        "eval_tradeoff": (tradeoff, {}, ("runs",), {}),  # positional folders: the sweeps
        "scenes_export_psb": (export_psb, {"cache_dir": (materialize, "cache_dir"),
                                           "workers": (materialize, "workers"),
                                           "progress": (materialize, "progress")},
                              ("suite", "dataset"), w),  # one of them is export_psb's source
        "scenes_export_hf": (export_suite_hf, {"cache_dir": (materialize, "cache_dir"),
                                              "workers": (materialize, "workers")},
                             ("suite", "dataset"), w),  # dataset=DIR: scenes.hf.export_audiofolder
        "scenes_generate": (generate_dataset, {"format": (generate_dataset, "audio_format"), **ray}, (), w),
        "scenes_speech_pack": (make_speech_pack, {"out": (make_speech_pack, "out_dir")}, ("progress",), {}),
        "scenes_show": (None, {}, ("spec", "out", "render"), {}),
        "serve": (ServerConfig, {}, ("checkpoint",), {}),
        "train_calibrate": (calibrate_checkpoint, {"checkpoint": (calibrate_checkpoint, "path")}, (), {}),
        # the library collects quietly (progress=False); the command shows its progress bar
        "train_codebook": (None, {}, ("out", "progress"), {}),
        # tags null: plot_curves' default tags, those no run logged skipped (named tags must exist)
        "train_curves": (plot_curves, {}, ("runs", "tags"), {}),
        "train_grpo": (train_grpo, {}, (), {}),
        "train_ppo": (train_ppo, {}, (), {}),
        "train_supervised": (train_supervised, {"codebook": (train_supervised, "codebook_path")}, (), {}),
    }
    bad: list[str] = []
    for p in sorted((CONFIGS / "cmd").glob("*.yaml")):
        if p.stem not in table:
            bad.append(f"cmd/{p.name}: no consumer listed in test_config._cmd_disagreements")
            continue
        fn, renames, command, convert = table[p.stem]
        keys = {k: v for k, v in _load(f"cmd/{p.name}").items() if k not in _GROUPS}
        if isinstance(fn, type):  # a dataclass: its field defaults
            bad += _disagreements({k: v for k, v in keys.items() if k not in command}, fn, f"cmd/{p.name}")
        elif fn is None:
            bad += [f"cmd/{p.name}: key {k!r} is neither a library argument nor listed as a command key"
                    for k in keys if k not in command]
        else:
            bad += _signature_disagreements(keys, fn, f"cmd/{p.name}", renames, command, convert)
    return bad


def _all_disagreements() -> list[str]:
    from chimein.agents.lm.model import LMConfig
    from chimein.agents.lm.tokenizer import FeatureConfig
    from chimein.envs.core import ENV_OPTIONS, EnvConfig
    from chimein.envs.scoring import RewardConfig
    from chimein.envs.vector import VECTOR_OPTIONS
    from chimein.eval.attack import SearchConfig
    from chimein.eval.runner import evaluate
    from chimein.exec.ray import RayOptions
    from chimein.scenes.sampler import SamplerConfig
    from chimein.scenes.search_space import Constraints, SearchSpace
    from chimein.training.codebook import CodebookConfig
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
    # its values: valid env options, equal to the env defaults but for the overrides meant
    bad += _disagreements({k: v for k, v in ppo["env"].items() if k in ENV_OPTIONS and k not in PPO_ENV_OVERRIDES},
                          EnvConfig, "training/ppo.yaml env")
    bad += [f"training/ppo.yaml env: {k} = {ppo['env'].get(k)!r} in YAML, {v!r} meant (PPO_ENV_OVERRIDES)"
            for k, v in PPO_ENV_OVERRIDES.items() if ppo["env"].get(k) != v]
    try:
        EnvConfig.from_options({k: v for k, v in ppo["env"].items() if k in ENV_OPTIONS})
    except ConfigError as e:
        bad.append(f"training/ppo.yaml env: {e}")
    cb = _load("training/codebook.yaml")
    bad += _disagreements(cb, CodebookConfig, "training/codebook.yaml", skip=("features",))
    bad += _disagreements(cb["features"], FeatureConfig, "training/codebook.yaml features")
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
    # cmd/: every command's own keys (the server's settings among them), and every sampler
    # overlay a command carries
    bad += _cmd_disagreements()
    for p in sorted((CONFIGS / "cmd").glob("*.yaml")):
        scenes = _load(f"cmd/{p.name}").get("scenes")
        if isinstance(scenes, Mapping):
            bad += [f"cmd/{p.name}: scenes.{k} is not a field of SamplerConfig" for k in scenes
                    if k not in {f.name for f in fields(SamplerConfig)}]
    return bad


#: env options ``training/ppo.yaml`` sets on purpose (PPOConfig's ``env`` is empty): episodes
#: cropped to ``n_steps`` decisions of 80 ms (160 x 80 ms = 12.8 s)
PPO_ENV_OVERRIDES = {"max_duration_s": 12.8}


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


@pytest.mark.parametrize(("rel", "key", "value", "words"), [
    ("training/codebook.yaml", "iters", 31, "iters = 31 in YAML, 30 in CodebookConfig"),
    ("training/codebook.yaml", "n_scnes", 1, "'n_scnes' is not a field of CodebookConfig"),
    ("cmd/eval_psb.yaml", "lead_s", 0.25, "lead_s = 0.25 in YAML, 0.5 in evaluate_psb"),
    ("cmd/eval.yaml", "workers", 2, "workers = 2 in YAML, None in evaluate"),
    ("cmd/attack.yaml", "budget", 100, "budget = 100 in YAML, 256 in attack"),
    ("cmd/attack.yaml", "budgte", 100, "'budgte' is not a parameter of attack"),
    ("cmd/scenes_show.yaml", "dpi", 100, "'dpi' is neither a library argument nor listed"),
    ("cmd/serve.yaml", "device", "cuda", "device = 'cuda' in YAML, 'cpu' in ServerConfig"),
    ("cmd/serve.yaml", "policy_args", {"a": 1}, "policy_args = {'a': 1} in YAML, {} in ServerConfig"),
])
def test_a_yaml_only_change_is_caught(monkeypatch: pytest.MonkeyPatch, rel: str, key: str, value: Any,
                                      words: str) -> None:
    """Editing one YAML default (or adding a key) without the code makes the comparison fail."""
    real = _load
    monkeypatch.setattr(f"{__name__}._load", lambda r: {**real(r), key: value} if r == rel else real(r))
    assert any(words in d for d in _all_disagreements()), _all_disagreements()


def test_a_ppo_env_change_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    real = _load

    def env(**over: Any) -> Any:
        return lambda r: {**real(r), "env": {**real(r)["env"], **over}} if r == "training/ppo.yaml" else real(r)

    monkeypatch.setattr(f"{__name__}._load", env(max_duration_s=10.0))
    assert any("max_duration_s = 10.0 in YAML, 12.8 meant" in d for d in _all_disagreements())
    monkeypatch.setattr(f"{__name__}._load", env(speak_s=9.0))
    assert any("speak_s = 9.0 in YAML" in d and "EnvConfig" in d for d in _all_disagreements())
    monkeypatch.setattr(f"{__name__}._load", env(echo="yes"))
    assert any("training/ppo.yaml env: " in d and "echo" in d for d in _all_disagreements())


def test_a_code_only_change_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Changing a library default (a function's keyword, a config field) without its YAML makes
    the comparison fail."""
    import chimein.eval.psb
    from chimein.agents.server import ServerConfig
    from chimein.training.codebook import CodebookConfig

    real = chimein.eval.psb.evaluate_psb
    sig = inspect.signature(real)
    fake = functools.wraps(real)(lambda *a, **k: real(*a, **k))
    fake.__signature__ = sig.replace(parameters=[  # type: ignore[attr-defined]
        p.replace(default=1.0) if p.name == "tail_s" else p for p in sig.parameters.values()])
    monkeypatch.setattr(chimein.eval.psb, "evaluate_psb", fake)
    assert any("tail_s = 2.0 in YAML, 1.0 in evaluate_psb" in d for d in _all_disagreements())
    monkeypatch.undo()
    monkeypatch.setattr(CodebookConfig, "__init__", _with_default(CodebookConfig.__init__, "size", 256))
    assert any("size = 512 in YAML, 256 in CodebookConfig" in d for d in _all_disagreements())
    monkeypatch.undo()
    monkeypatch.setattr(ServerConfig, "__init__", _with_default(ServerConfig.__init__, "device", "cuda"))
    assert any("device = 'cpu' in YAML, 'cuda' in ServerConfig" in d for d in _all_disagreements())


def _with_default(init: Any, name: str, value: Any) -> Any:
    def wrapped(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault(name, value)
        init(self, *args, **kwargs)

    wrapped.__signature__ = inspect.signature(init)  # type: ignore[attr-defined]
    return wrapped
