"""Seeded fuzz tests (Hypothesis): every input chimein reads either works or raises
:class:`~chimein.errors.ChimeinError` (for the ``chimein`` command: exit status 0 or 2, or a
``SystemExit`` with a message), never another exception.

Covered boundaries: scene specs (mutated dicts, and files -- JSON, YAML, non-UTF-8 bytes --
read by :meth:`SceneSpec.load`), sound-pack manifests (:meth:`SoundPack.load`), suite files
(:func:`chimein.eval.suites.get_suite`), CLI overrides (:func:`chimein.cli.main`) and policy
server frames (the :mod:`chimein.agents.protocol` decoders, and a live server answering
arbitrary frames).

Every test is derandomized (the same examples on every run; no example database) and bounded
in examples so that the file runs in well under a minute. A bug the fuzzer finds gets its
input pinned with ``@example`` next to the fix.
"""

from __future__ import annotations

import copy
import json
import math
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from chimein.errors import ChimeinError

#: Shrinking a failure to a minimal example can take longer than the whole file; it is off
#: unless ``CHIMEIN_FUZZ_SHRINK=1`` (a failure still prints its input and reproduces: the
#: examples are derandomized).
_PHASES = tuple(Phase) if os.environ.get("CHIMEIN_FUZZ_SHRINK") == "1" else (
    Phase.explicit, Phase.reuse, Phase.generate)
#: reproducible in CI: fixed examples, no database, no deadline (a shared 2-core machine)
FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=True, phases=_PHASES,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


def fuzz(n: int) -> settings:
    """:data:`FUZZ` with ``n`` examples (times ``CHIMEIN_FUZZ_SCALE``, default 1: fuzz longer
    locally with e.g. ``CHIMEIN_FUZZ_SCALE=20``)."""
    return settings(FUZZ, max_examples=max(1, round(n * float(os.environ.get("CHIMEIN_FUZZ_SCALE", "1")))))


# ============================================================================================
# Generic mutation of a valid nested document
# ============================================================================================
#: values that break parsers: wrong types, non-finite and huge numbers, empty containers
NASTY: tuple[Any, ...] = (
    None, True, False, 0, -1, 2**31, 2**63, -(2**70), 1e308, -1e308, 1e-320, math.nan, math.inf,
    -math.inf, "", " ", "6.6", "nan", "inf", "-1", "true", "\x00", "..", "../../etc/passwd", "é" * 3,
    [], [1], [1, 2, 3], [math.nan, 0, 0], {}, {"x": 1}, "RESPOND", "speech", "easy",
)


def _scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(NASTY),
        st.none(), st.booleans(),
        st.integers(min_value=-(2**80), max_value=2**80),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=12),
    )


def _values() -> st.SearchStrategy[Any]:
    """Any JSON-like value; a fresh copy each time (mutations must not edit :data:`NASTY`)."""
    return st.recursive(_scalars(), lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
        max_leaves=8).map(copy.deepcopy)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``obj`` (dict keys and list indices), ``()`` included."""
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _get(obj: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        obj = obj[k]
    return obj


@st.composite
def mutated(draw: st.DrawFn, base: Any, max_mutations: int = 3) -> Any:
    """``base`` (deep-copied) with 1..``max_mutations`` edits: a value replaced by a nasty one,
    a key or list item deleted, or an unknown key added."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, max_mutations))):
        path = draw(st.sampled_from(_paths(doc)))
        op = draw(st.sampled_from(("replace", "replace", "delete", "extra")))
        if not path:
            if op == "replace":
                doc = draw(_values())
            continue
        parent, key = _get(doc, path[:-1]), path[-1]
        if op == "replace":
            parent[key] = draw(_values())
        elif op == "delete":
            del parent[key]
        else:
            target = _get(doc, path)
            if isinstance(target, dict):
                target[draw(st.text(min_size=1, max_size=8))] = draw(_values())
            elif isinstance(target, list):
                target.append(draw(_values()))
            else:
                parent[key] = draw(_values())
    return doc


@st.composite
def not_utf8(draw: st.DrawFn, text: str) -> bytes:
    """``text`` encoded as UTF-8 with bytes that are not UTF-8 spliced in somewhere."""
    data = text.encode("utf-8")
    at = draw(st.integers(0, len(data)))
    bad = draw(st.sampled_from((b"\xff", b"\xfe\xff", b"\xc3", b"\x80", b"\xed\xa0\x80", b"\xe9t\xe9")))
    return data[:at] + bad + draw(st.binary(max_size=4)) + data[at:]


#: YAML that ``yaml.safe_load`` turns into values JSON has no word for (dates, bytes, sets,
#: self-referencing anchors) or into surprising numbers
YAML_SNIPPETS = ("2020-01-01", "!!timestamp 2001-12-14t21:59:43.10-05:00", "!!binary aGVsbG8=",
                 "!!set {a, b}", "&a [*a]", "&a {x: *a}", "!!python/object:os.system x", ".nan",
                 "-.inf", "1e400", "0x1F", "1_000", "!!str 5", "~", "{a: [1, {b: 2}]}", "'é'")


@st.composite
def yaml_with_snippet(draw: st.DrawFn, base: dict[str, Any]) -> str:
    """``base`` as block YAML with one value (not the top level) replaced by a raw YAML snippet."""
    doc = copy.deepcopy(base)
    path = draw(st.sampled_from(_paths(doc)[1:]))
    _get(doc, path[:-1])[path[-1]] = "@@SNIPPET@@"
    snippet = draw(st.sampled_from(YAML_SNIPPETS))
    return yaml.safe_dump(doc, default_flow_style=False).replace("'@@SNIPPET@@'", snippet)


def _works_or_chimein_error(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``; a :class:`ChimeinError` is a fine answer to bad input, anything else fails."""
    try:
        return fn(*args, **kwargs)
    except ChimeinError as e:
        assert str(e).strip(), "a ChimeinError must say what is wrong"
        return None


# ============================================================================================
# Scene specs
# ============================================================================================
VALID_SPEC: dict[str, Any] = {
    "id": "fuzz-0", "seed": 3, "duration_s": 4.0, "sample_rate": 16000, "family": "custom",
    "difficulty": "default", "version": 1,
    "room": {"dims": [5.0, 4.0, 2.7], "rt60": 0.4, "absorption": None, "max_order": None,
             "ray_tracing": False},
    "mics": {"positions": [[2.5, 2.0, 1.2]], "layout": "single"},
    "sources": [
        {"id": "u", "kind": "speech", "role": "user", "onset_s": 0.5, "level_db": -26.0,
         "position": [1.0, 1.0, 1.5], "duration_s": None, "label": "request",
         "audio": {"text": "what time is it", "voice": "en-us", "rate": 175, "pitch": 50},
         "words": [{"text": "what", "start_s": 0.0, "end_s": 0.2}]},
        {"id": "e", "kind": "event", "role": "event", "onset_s": 2.0, "level_db": -20.0,
         "position": [4.0, 3.0, 1.0], "duration_s": 1.0, "label": "alarm",
         "audio": {"cls": "smoke_alarm", "seed": 1}},
        {"id": "n", "kind": "noise", "role": "noise", "onset_s": 0.0, "level_db": -50.0,
         "audio": {"color": "pink", "seed": 2}},
    ],
    "annotations": {
        "cues": [{"id": "c0", "expected": "RESPOND", "window": [1.5, 3.0], "label": "answer",
                  "safety_critical": False, "source_ids": ["u"], "onset_s": 0.5},
                 {"id": "c1", "expected": "INTERVENE", "window": [2.2, 3.9], "label": "alarm",
                  "safety_critical": True, "source_ids": ["e"]}],
        "spans": [{"start_s": 0.5, "end_s": 1.4, "speaker": "u", "kind": "speech",
                   "addressed": True}],
    },
    "augment": [], "meta": {"note": "fuzz"},
}


def _spec_with(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """:data:`VALID_SPEC` with the value at ``path`` replaced (an ``@example`` input)."""
    doc = copy.deepcopy(VALID_SPEC)
    _get(doc, path[:-1])[path[-1]] = value
    return doc


def test_valid_spec_is_valid() -> None:
    """The base every spec mutation starts from loads (else the fuzzing below tests nothing)."""
    from chimein.scenes.spec import SceneSpec

    spec = SceneSpec.from_dict(VALID_SPEC)
    assert SceneSpec.from_dict(spec.to_dict()) == spec


@fuzz(150)
@example(doc=_spec_with(("version",), math.inf))  # inputs the fuzzer found
@example(doc=_spec_with(("seed",), math.nan))
@example(doc=_spec_with(("sample_rate",), [[]]))
@example(doc=_spec_with(("room", "max_order"), math.inf))
@example(doc=_spec_with(("mics",), {"shape": "linear", "center": [2, 2, 1], "n": math.inf}))
@example(doc=_spec_with(("annotations",), []))
@example(doc=_spec_with(("annotations", "cues", 1), []))
@example(doc=_spec_with(("annotations", "spans", 0), []))
@given(doc=mutated(VALID_SPEC))
def test_fuzz_spec_dict(doc: Any) -> None:
    from chimein.scenes.spec import SceneSpec

    spec = _works_or_chimein_error(SceneSpec.from_dict, doc)
    if spec is not None:  # what loads also round-trips
        assert SceneSpec.from_dict(json.loads(spec.to_json())) == spec


def _spec_text(doc: Any, suffix: str) -> str:
    if suffix == ".json":
        return json.dumps(doc)  # NaN/Infinity tokens included: JSON readers meet them
    return yaml.safe_dump(doc)


@fuzz(80)
@given(doc=mutated(VALID_SPEC), suffix=st.sampled_from((".json", ".yaml")))
def test_fuzz_spec_file(doc: Any, suffix: str) -> None:
    from chimein.scenes.spec import SceneSpec

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"scene{suffix}"
        p.write_text(_spec_text(doc, suffix), encoding="utf-8")
        spec = _works_or_chimein_error(SceneSpec.load, p)
        if spec is not None:
            assert SceneSpec.from_dict(json.loads(spec.to_json())) == spec


@fuzz(40)
@example(text="id: x\nduration_s: 1\nroom: {dims: [4, 4, 3]}\nmics: {positions: [[1, 1, 1]]}\n"
              "meta: {when: 2020-01-01}\n")
@given(text=yaml_with_snippet(VALID_SPEC))
def test_fuzz_spec_yaml_values(text: str) -> None:
    """A YAML spec that loads can be written back as JSON (datasets store specs as JSON)."""
    from chimein.scenes.spec import SceneSpec

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "scene.yaml"
        p.write_text(text, encoding="utf-8")
        spec = _works_or_chimein_error(SceneSpec.load, p)
        if spec is not None:
            assert SceneSpec.from_dict(json.loads(spec.to_json())) == spec


@fuzz(40)
@given(data=st.data(), suffix=st.sampled_from((".json", ".yaml", ".yml")))
def test_fuzz_spec_file_not_utf8(data: st.DataObject, suffix: str) -> None:
    from chimein.scenes.spec import SceneSpec

    raw = data.draw(not_utf8(_spec_text(VALID_SPEC, ".json" if suffix == ".json" else ".yaml")))
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"scene{suffix}"
        p.write_bytes(raw)
        _works_or_chimein_error(SceneSpec.load, p)


@fuzz(40)
@example(raw=b'{"id": "caf\xe9"}', suffix=".json")  # was a UnicodeDecodeError traceback
@example(raw=b"id: caf\xe9\n", suffix=".yaml")
@given(raw=st.binary(max_size=64), suffix=st.sampled_from((".json", ".yaml")))
def test_fuzz_spec_file_bytes(raw: bytes, suffix: str) -> None:
    from chimein.scenes.spec import SceneSpec

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"scene{suffix}"
        p.write_bytes(raw)
        _works_or_chimein_error(SceneSpec.load, p)


# ============================================================================================
# Sound-pack manifests
# ============================================================================================
_PACK_PATHS = (
    "./a.wav", "a.wav", "./Nature/Meteorological/RESPOND/b.wav", "Nature/../a.wav", "../a.wav",
    "./../outside.wav", "/etc/passwd", "/", ".", "", " ", "./Nature", "./missing.wav",
    "./link-out.wav", "./link-in.wav", "a.wav\x00", "./a.wav/", "~/a.wav", "C:\\a.wav",
    "./Nature/Meteorological/RESPOND/../../../../a.wav", "%2e%2e/a.wav",
)
_ENTRY: dict[str, Any] = {"id": "a", "path": "./a.wav", "description": "thunder",
                          "decision": "RESPOND", "action": "INTERVENE", "safety_critical": True,
                          "domain": "Nature", "subcategory": "Meteorological",
                          "onset_delay_s": 0.1}


@st.composite
def manifest_lines(draw: st.DrawFn) -> list[str]:
    lines: list[str] = []
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(("entry", "entry", "entry", "text", "json")))
        if kind == "text":
            lines.append(draw(st.text(max_size=30)))
        elif kind == "json":
            lines.append(json.dumps(draw(_values())))
        else:
            e = draw(mutated({**_ENTRY, "id": f"e{i}"}, max_mutations=2))
            if isinstance(e, dict) and draw(st.booleans()):
                e["path"] = draw(st.sampled_from(_PACK_PATHS))
            if isinstance(e, dict) and draw(st.booleans()):
                e["decision"] = draw(st.sampled_from(("RESPOND", "IGNORE", "respond", "INTERVENE", "")))
            lines.append(json.dumps(e))
    return lines


def _make_pack(d: Path, sample_rate: int = 8000, samples: int = 800) -> None:
    import soundfile as sf

    x = 0.1 * np.sin(np.arange(samples, dtype=np.float32) * 0.3)
    sf.write(d / "a.wav", x, sample_rate)
    (d / "Nature" / "Meteorological" / "RESPOND").mkdir(parents=True)
    sf.write(d / "Nature" / "Meteorological" / "RESPOND" / "b.wav", x, 16000)
    sf.write(d.parent / "outside.wav", x, 16000)
    (d / "link-out.wav").symlink_to(d.parent / "outside.wav")
    (d / "link-in.wav").symlink_to(d / "a.wav")


@fuzz(80)
@given(lines=manifest_lines(), check_audio=st.booleans(), allow_unknown=st.booleans())
def test_fuzz_pack_manifest(lines: list[str], check_audio: bool, allow_unknown: bool) -> None:
    from chimein.scenes.packs import SoundPack

    with tempfile.TemporaryDirectory() as top:
        d = Path(top) / "pack"
        d.mkdir()
        _make_pack(d)
        (d / "manifest.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        pack = _works_or_chimein_error(SoundPack.load, d, check_audio=check_audio,
                                       allow_unknown_fields=allow_unknown)
        if pack is not None:  # every entry stays inside the pack
            for e in pack.entries:
                assert e.path.resolve().is_relative_to(d.resolve())


@fuzz(30)
@given(data=st.data())
def test_fuzz_pack_manifest_not_utf8(data: st.DataObject) -> None:
    from chimein.scenes.packs import SoundPack

    raw = data.draw(not_utf8(json.dumps(_ENTRY) + "\n"))
    with tempfile.TemporaryDirectory() as top:
        d = Path(top) / "pack"
        d.mkdir()
        _make_pack(d)
        (d / "manifest.jsonl").write_bytes(raw)
        _works_or_chimein_error(SoundPack.load, d)


@fuzz(40)
@given(rate=st.sampled_from((1, 2, 7, 100, 4000, 8000, 11025, 16000, 44100, 96000, 192000,
                             384000, 1_000_000)),
       samples=st.integers(1, 400))
def test_fuzz_pack_audio_rates(rate: int, samples: int) -> None:
    """Clips at odd sample rates: decoded and resampled, or refused with an AudioError."""
    from chimein.scenes.packs import SoundPack

    with tempfile.TemporaryDirectory() as top:
        d = Path(top) / "pack"
        d.mkdir()
        _make_pack(d, sample_rate=rate, samples=samples)
        entry = {**_ENTRY, "onset_delay_s": 0.0}
        (d / "manifest.jsonl").write_text(json.dumps(entry) + "\n", encoding="utf-8")
        pack = SoundPack.load(d)
        _works_or_chimein_error(pack.entries[0].load, 16000)


# ============================================================================================
# Suite files
# ============================================================================================
VALID_SUITE: dict[str, Any] = {
    "name": "fuzz", "revision": 0, "description": "fuzzed", "seed": 1,
    "families": ["addressed", "pauses"],
    "tiers": {"clean": {"difficulty": "easy", "room_pool": 2, "snr_db": [20.0, 30.0]}},
    "scenes": {"default": 1, "pauses": 2},
    "family_overrides": {"pauses": {"lead_s": [0.5, 1.0]}},
    "env": {"chunk_ms": 80},
    "reward": {},
}


def test_valid_suite_is_valid() -> None:
    from chimein.eval.suites import SuiteDef

    assert SuiteDef.from_dict(VALID_SUITE).n_scenes == 3


@fuzz(120)
@given(doc=mutated(VALID_SUITE), suffix=st.sampled_from((".yaml", ".json")))
def test_fuzz_suite_file(doc: Any, suffix: str) -> None:
    from chimein.eval.suites import get_suite

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"suite{suffix}"
        p.write_text(json.dumps(doc) if suffix == ".json" else yaml.safe_dump(doc), encoding="utf-8")
        suite = _works_or_chimein_error(get_suite, p)
        if suite is not None:
            assert suite.splits and len(suite.definition_hash) == 64


@fuzz(40)
@given(text=yaml_with_snippet(VALID_SUITE))
def test_fuzz_suite_yaml_values(text: str) -> None:
    from chimein.eval.suites import get_suite

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "suite.yaml"
        p.write_text(text, encoding="utf-8")
        suite = _works_or_chimein_error(get_suite, p)
        if suite is not None:
            assert len(suite.definition_hash) == 64


@fuzz(30)
@given(data=st.data(), suffix=st.sampled_from((".yaml", ".json")))
def test_fuzz_suite_file_not_utf8(data: st.DataObject, suffix: str) -> None:
    from chimein.eval.suites import get_suite

    text = json.dumps(VALID_SUITE) if suffix == ".json" else yaml.safe_dump(VALID_SUITE)
    raw = data.draw(not_utf8(text))
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"suite{suffix}"
        p.write_bytes(raw)
        _works_or_chimein_error(get_suite, p)


# ============================================================================================
# CLI overrides
# ============================================================================================
_GEN_KEYS = ("n", "seed", "out", "format", "workers", "backend", "progress", "cache_dir",
             "ray_address", "scenes", "scenes.family", "scenes.difficulty", "scenes.snr_db",
             "scenes.room_pool", "scenes.n_mics", "scenes.rt60", "scenes.lead_s",
             "scenes.noise_kinds", "scenes.augment", "scenes.extra", "scenes.nope", "nope")
_OVERRIDE_VALUES = ("abc", "1.5", "-1", "0", "1", "null", "true", "[1,2]", "[a", "{}", "''",
                    "nan", "inf", "1e400", "99999999999999999999", "${oops}", "easy", "hard",
                    "pauses", "ray", "wav", "[20,10]", "é", "'x y'")


@st.composite
def overrides(draw: st.DrawFn) -> list[str]:
    out = []
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.one_of(st.sampled_from(_GEN_KEYS), st.text(min_size=1, max_size=6)))
        val = draw(st.one_of(st.sampled_from(_OVERRIDE_VALUES), st.text(max_size=6)))
        prefix = draw(st.sampled_from(("", "", "+", "~", "++")))
        out.append(f"{prefix}{key}" if prefix == "~" else f"{prefix}{key}={val}")
    return out


def _cli_ok_or_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """``chimein`` exits 0 or 2, or stops with a ``SystemExit`` that says why; no traceback."""
    from chimein.cli import main

    try:
        rc = main(argv)
    except SystemExit as e:  # an unknown command: the usage
        assert isinstance(e.code, str) and e.code.strip(), f"SystemExit without a message: {e.code!r}"
        return
    finally:
        err = capsys.readouterr().err
        assert "Traceback" not in err, err
    assert rc in (0, 2), f"exit status {rc}"


@fuzz(50)
@given(command=st.sampled_from(("scenes generate", "scenes show", "eval", "eval materialize",
                                "eval compare", "train supervised", "serve", "no-such")),
       args=overrides(), bare=st.lists(st.text(max_size=8), max_size=2))
def test_fuzz_cli_cfg(command: str, args: list[str], bare: list[str],
                      capsys: pytest.CaptureFixture[str]) -> None:
    """``chimein COMMAND [positional] key=value ... --cfg``: composing the config never crashes."""
    _cli_ok_or_error([*command.split(), *bare, *args, "--cfg"], capsys)


@fuzz(30)
@example(n="abc", args=[])  # was a ValueError traceback (issue 17)
@given(n=st.one_of(st.sampled_from(("0", "-1", "-0.5", "abc", "nan", "-inf", "1e400", "null", "[1]",
                                    "{}", "''", "${n}")),
                   st.text(alphabet="gjkqwxyz_-.", min_size=1, max_size=4)),
       args=overrides().filter(lambda a: not any(x.lstrip("+~").split("=")[0] == "n" for x in a)))
def test_fuzz_cli_generate(n: str, args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """``scenes generate`` with a scene count that is never a positive number (so it fails
    before rendering anything) and any other overrides: exit 2 or a SystemExit with a message."""
    with tempfile.TemporaryDirectory() as d:
        _cli_ok_or_error(["scenes", "generate", *args, f"out={d}/ds", "workers=1",
                          "backend=inline", "progress=false", f"n={n}"], capsys)


_MAT_KEYS = ("workers", "verify", "suite", "eval.cache_dir", "eval.rir_cache_dir", "eval.progress",
             "eval.backend", "eval.ray_address", "eval.env", "eval.env.chunk_ms", "eval.nope")


@fuzz(30)
@example(args=[("workers", "abc")])  # was a ValueError traceback
@example(args=[("workers", "inf")])
@example(args=[("workers", "[1,2]")])
@example(args=[("verify", "${oops}")])  # was an omegaconf InterpolationKeyError traceback
@given(args=st.lists(st.tuples(st.sampled_from(_MAT_KEYS), st.one_of(
    st.sampled_from(_OVERRIDE_VALUES), st.text(max_size=6))), min_size=1, max_size=3))
def test_fuzz_cli_materialize(args: list[tuple[str, str]], capsys: pytest.CaptureFixture[str]) -> None:
    """``eval materialize`` of a suite file that is not there (it fails before generating
    anything) with any other overrides: exit 2 or a SystemExit with a message."""
    with tempfile.TemporaryDirectory() as d:
        argv = ["eval", "materialize", *(f"{k}={v}" for k, v in args if k != "suite"),
                f"suite={d}/missing.yaml", f"eval.cache_dir={d}/cache"]
        _cli_ok_or_error(argv, capsys)


# ============================================================================================
# Policy-server frames
# ============================================================================================
@st.composite
def frames(draw: st.DrawFn) -> bytes | str:
    """Frames a client might send: random bytes, text, and headers with mutated fields."""
    from chimein.agents import protocol as P

    kind = draw(st.sampled_from(("bytes", "text", "header", "header", "open", "chunk")))
    if kind == "bytes":
        return draw(st.binary(max_size=80))
    if kind == "text":
        return draw(st.text(max_size=30))
    u8, u16, u32 = (st.integers(0, 2**b - 1) for b in (8, 16, 32))
    magic = draw(st.sampled_from((P.MAGIC, P.MAGIC, b"CHMX", b"\x00" * 4)))
    version = draw(st.one_of(st.just(P.PROTOCOL_VERSION), u8))
    mtype = draw(st.one_of(st.sampled_from(list(P.MsgType)), u8))
    flags, stream, seq = draw(u16), draw(st.one_of(st.integers(0, 3), u32)), draw(u32)
    samples = draw(st.one_of(st.sampled_from((0, 1, 1280)), st.integers(0, 5000)))
    channels, dtype = draw(st.one_of(st.integers(0, 3), u8)), draw(st.one_of(st.just(1), u8))
    header = P.HEADER.pack(magic, version, int(mtype), flags, stream, seq, samples, dtype,
                           channels, 0)
    if kind == "open":
        chunk_ms = draw(st.one_of(st.sampled_from((80.0, 20.0, 400.0, 7.0, 0.0, -80.0)),
                                  st.floats(width=32)))
        payload = struct.pack("<fIH", chunk_ms, draw(st.sampled_from((16000, 8000, 0, 2**32 - 1))),
                              draw(st.sampled_from((1, 0, 2, 9, 65535))))
        header = P.HEADER.pack(magic, version, int(P.MsgType.OPEN), flags, stream, seq, samples,
                               dtype, channels, 0)
    elif kind == "chunk":
        n = samples * max(channels, 1)
        if n * 4 > 64_000:
            n = 16
        vals = draw(st.sampled_from(("zeros", "nan", "random")))
        x = np.zeros(n, "<f4")
        if vals == "nan" and n:
            x[draw(st.integers(0, n - 1))] = np.nan
        elif vals == "random":
            x = np.frombuffer(draw(st.binary(min_size=4 * n, max_size=4 * n)), "<f4")
        payload = x.tobytes()[: draw(st.integers(0, 4 * n))] if draw(st.booleans()) else x.tobytes()
    else:
        payload = draw(st.binary(max_size=24))
    return header + payload


@fuzz(300)
@given(frame=frames())
def test_fuzz_protocol_decoders(frame: bytes | str) -> None:
    """What the server calls on a request frame: a header, then OPEN/CHUNK payload decoders."""
    from chimein.agents import protocol as P

    h = _works_or_chimein_error(P.decode_header, frame)
    if h is None:
        return
    assert isinstance(frame, bytes)
    if h.type == P.MsgType.OPEN:
        got = _works_or_chimein_error(P.decode_open, h, frame)
        if got is not None:
            assert len(got) == 3
    elif h.type == P.MsgType.CHUNK:
        a = _works_or_chimein_error(P.decode_audio, h, frame)
        if a is not None:
            assert a.shape == (h.samples, h.channels) and np.isfinite(a).all()


@fuzz(150)
@example(payload=b"", kind=17)
@example(payload=b"\x01", kind=20)
@example(payload=b"\xff\xff", kind=20)
@given(payload=st.binary(max_size=40), kind=st.sampled_from((17, 18, 19, 20, 21)))
def test_fuzz_protocol_reply_decoders(payload: bytes, kind: int) -> None:
    """What a client does with a server's reply: check it (ERROR/BUSY raise), then decode an
    ACTION; a STATUS reply's JSON is the caller's to parse."""
    from chimein.agents import protocol as P
    from chimein.agents.remote import _raise_reply

    frame = P.encode(kind, 1, 1, payload)
    _works_or_chimein_error(_raise_reply, frame, "fuzz")
    if kind == P.MsgType.ACTION:
        _works_or_chimein_error(P.decode_action, frame)
    elif kind == P.MsgType.ERROR:
        _works_or_chimein_error(P.decode_error, frame)
    else:
        assert isinstance(P.decode_text(frame), str)


@pytest.fixture(scope="module")
def server_url() -> Any:
    from chimein.agents.remote import parse_url
    from chimein.agents.server import PolicyServer, ServerThread

    with ServerThread(PolicyServer("always-wait", port=0, max_streams=16)) as s:
        yield parse_url(s.url)


@fuzz(120)
@given(batch=st.lists(frames(), min_size=1, max_size=4))
def test_fuzz_server_frames(batch: list[bytes | str], server_url: str) -> None:
    """A live server answers every frame with a well-formed reply and keeps serving."""
    from websockets.sync.client import connect

    from chimein.agents import protocol as P

    with connect(server_url, open_timeout=30) as ws:
        for frame in batch:
            ws.send(frame)
            reply = ws.recv(timeout=30)
            assert isinstance(reply, bytes)
            h = P.decode_header(reply)
            assert h.type in (P.MsgType.OPENED, P.MsgType.ACTION, P.MsgType.OK,
                              P.MsgType.STATUS_REPLY, P.MsgType.ERROR, P.MsgType.BUSY), h
            if h.type == P.MsgType.ERROR:
                code, msg = P.decode_error(reply)
                assert code in set(P.ErrorCode) and msg
        ws.send(P.encode(P.MsgType.STATUS, 0, 7))
        status = json.loads(P.decode_text(ws.recv(timeout=30)))
        assert isinstance(status, dict)
