"""Scene specs: JSON/YAML round trips and every bad input named by file and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chimein.errors import SpecError
from chimein.scenes.spec import Annotations, Cue, Mics, Room, SceneSpec, Source, Span


def _spec(**kw) -> SceneSpec:
    base = dict(
        id="t", seed=1, duration_s=6.0, room=Room(dims=(5.0, 4.0, 2.7), rt60=0.3),
        mics=Mics.array((2.5, 2.0, 1.0), "circular", 4, 0.04),
        sources=(Source(id="u", kind="speech", role="user", audio={"text": "hey chime, hello"},
                        onset_s=0.5, position=(1.0, 1.0, 1.6)),),
        annotations=Annotations(cues=(Cue("c0", "RESPOND", (2.0, 5.0), "request", source_ids=("u",)),),
                                spans=(Span(0.5, 2.0, "user", addressed=True),)),
    )
    base.update(kw)
    return SceneSpec(**base)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    s = _spec()
    p = tmp_path / f"s{suffix}"
    s.save(p)
    assert SceneSpec.load(p) == s
    assert SceneSpec.from_dict(json.loads(s.to_json())) == s


def test_mic_arrays() -> None:
    assert Mics.array((1, 1, 1)).n == 1
    lin = Mics.array((2, 2, 1), "linear", 3, 0.1)
    assert [p[0] for p in lin.positions] == pytest.approx([1.9, 2.0, 2.1])
    with pytest.raises(SpecError, match="shape"):
        Mics.array((1, 1, 1), "spiral", 3)


def _write(tmp_path: Path, d: dict) -> Path:
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(d))
    return p


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["sources"][0].update(position=[9.0, 1.0, 1.0]), "position"),
        (lambda d: d.update(duration_s=-3), "duration_s"),
        (lambda d: d["sources"].append({"id": "e", "kind": "event", "role": "event", "audio": {"cls": "smoke_alarn"},
                                        "onset_s": 1.0, "position": [1, 1, 1]}), "audio.cls"),
        (lambda d: d["sources"][0].update(kind="hologram"), "kind"),
        (lambda d: d["annotations"]["cues"][0].update(expected="DANCE"), "expected"),
        (lambda d: d["annotations"]["cues"][0].update(window=[5.0, 2.0]), "window"),
        (lambda d: d["annotations"]["cues"][0].update(window=[2.0, 60.0]), "window"),
        (lambda d: d["room"].update(dims=[3.0, 3.0]), "dims"),
        (lambda d: d["room"].update(rt60=9.0), "rt60"),
        (lambda d: d["mics"].update(positions=[[1.0, 1.0, 9.0]]), "positions"),
        (lambda d: d.update(colour="blue"), "colour"),
        (lambda d: d["sources"][0].update(onset_s="soon"), "onset_s"),
        (lambda d: d["sources"][0]["audio"].update(text=""), "audio.text"),
        (lambda d: d["annotations"]["cues"][0].update(source_ids=["ghost"]), "source_ids"),
        (lambda d: d.update(duration_s=float("nan")), "duration_s"),
    ],
)
def test_bad_specs_name_file_and_field(tmp_path: Path, mutate, field: str) -> None:
    p, msg = _load_error(tmp_path, mutate)
    assert str(p) in msg and field in msg, msg


def _load_error(tmp_path: Path, mutate) -> tuple[Path, str]:
    """The file written from ``_spec()`` changed by ``mutate``, and the SpecError loading it gives."""
    d = _spec().to_dict()
    mutate(d)
    p = _write(tmp_path, d)
    with pytest.raises(SpecError) as ei:
        SceneSpec.load(p)
    return p, str(ei.value)


def test_not_json_and_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text("{oops")
    with pytest.raises(SpecError, match="not valid JSON"):
        SceneSpec.load(p)
    with pytest.raises(SpecError, match="not found"):
        SceneSpec.load(tmp_path / "nope.json")
    y = tmp_path / "x.yaml"
    y.write_text("!!python/object:os.system ['true']")
    with pytest.raises(SpecError, match="YAML"):  # safe loader refuses arbitrary objects
        SceneSpec.load(y)


# ---------------------------------------------------------------------------------------------
# Wrong types are refused by field name (no bool or string where a number belongs)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda d: d["sources"][0].update(level_db=True), "level_db", "true or false is not a number"),
        (lambda d: d.update(duration_s="6.6"), "duration_s", "a string is not a number"),
        (lambda d: d.update(duration_s=True), "duration_s", "true or false is not a number"),
        (lambda d: d["sources"][0].update(onset_s="0.5"), "onset_s", "a string"),
        (lambda d: d["room"].update(rt60=False), "rt60", "true or false"),
        (lambda d: d["room"].update(dims=[5.0, "4", 2.7]), "dims", "a string"),
        (lambda d: d["room"].update(max_order=2.5), "max_order", "an integer"),
        (lambda d: d["room"].update(ray_tracing="no"), "ray_tracing", "true or false"),
        (lambda d: d.update(seed="3"), "seed", "an integer"),
        (lambda d: d.update(sample_rate=True), "sample_rate", "an integer"),
        (lambda d: d.update(version="1"), "version", "an integer"),
        (lambda d: d["annotations"]["cues"][0].update(window=[True, 5.0]), "window[0]", "true or false"),
        (lambda d: d["annotations"]["cues"][0].update(safety_critical="false"), "safety_critical", "true or false"),
        (lambda d: d["annotations"]["spans"][0].update(addressed=1), "addressed", "true or false"),
        (lambda d: d["annotations"]["spans"][0].update(end_s="2"), "end_s", "a string"),
        (lambda d: d["sources"][0].update(words=[{"text": "hey", "start_s": "0", "end_s": 0.2}]), "start_s",
         "a string"),
    ],
)
def test_wrong_types_are_refused_by_name(tmp_path: Path, mutate, field: str, words: str) -> None:
    p, msg = _load_error(tmp_path, mutate)
    assert str(p) in msg and f"'{field}'" in msg and words in msg, msg
    assert "onset_s" not in msg or field == "onset_s", msg  # duration_s: true no longer blames onset_s


def test_numbers_of_every_numeric_kind_still_load(tmp_path: Path) -> None:
    d = _spec().to_dict()
    d["duration_s"], d["room"]["max_order"], d["sources"][0]["level_db"] = 6, 3.0, -20  # ints, integral floats
    s = SceneSpec.load(_write(tmp_path, d))
    assert (s.duration_s, s.room.max_order, s.sources[0].level_db) == (6.0, 3, -20.0)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_spec_not_utf8_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str) -> None:
    from chimein.cli import main as cli_main

    p = tmp_path / f"s{suffix}"
    p.write_bytes(_spec().to_json().replace('"t"', '"caf\u00e9"').encode("latin-1"))
    with pytest.raises(SpecError, match="UTF-8"):
        SceneSpec.load(p)
    assert cli_main(["scenes", "show", str(p), f"out={tmp_path / 'x.png'}"]) == 2
    err = capsys.readouterr().err
    assert str(p) in err and "UTF-8" in err and "Traceback" not in err, err
