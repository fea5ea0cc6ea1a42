"""Operating curves: `chimein eval sweep` / `chimein eval tradeoff`."""

from __future__ import annotations

import json

import pytest

from chimein.errors import SpecError
from chimein.eval.suites import SuiteDef
from chimein.eval.sweep import interpolate, load_sweep, sweep, tradeoff

TINY = SuiteDef(name="tiny", revision=0, description="", seed=1, families=("addressed",),
                tiers={"clean": {"difficulty": "easy"}}, scenes={"default": 2})


def _fake(points: list[tuple[float, float, float]]) -> dict:
    return {"param": "logit_bias", "default": 0.0, "rows": [
        {"value": v, "metrics": {"false_alarms_per_min": {"value": x}, "timeliness": {"value": y},
                                 "interruptions_per_turn": {"value": 0.0}}} for v, x, y in points]}


def test_interpolate_between_operating_points_and_never_extrapolates() -> None:
    s = _fake([(0.5, 3.0, 0.7), (-0.5, 1.0, 0.5), (0.0, 2.0, 0.55)])
    assert interpolate(s, "false_alarms_per_min", "timeliness", 1.5) == pytest.approx(0.525)
    assert interpolate(s, "false_alarms_per_min", "timeliness", 3.0) == pytest.approx(0.7)
    assert interpolate(s, "false_alarms_per_min", "timeliness", 3.5) is None
    assert interpolate(s, "false_alarms_per_min", "timeliness", 0.5) is None
    # two points at the same rate: the better one (upper envelope)
    s2 = _fake([(0.0, 1.0, 0.4), (0.1, 1.0, 0.6), (0.5, 2.0, 0.8)])
    assert interpolate(s2, "false_alarms_per_min", "timeliness", 1.0) == pytest.approx(0.6)


def test_sweep_evaluates_each_value_resumes_and_plots(tmp_path) -> None:
    kw = dict(cache_dir=tmp_path / "suites", workers=1, progress=False, report=False)
    s = sweep("random", TINY, tmp_path / "sw", "rate", [0.0, 0.3], **kw)
    assert [r["value"] for r in s["rows"]] == [0.0, 0.3]
    apm = [r["metrics"]["actions_per_min"]["value"] for r in s["rows"]]
    assert apm[0] == 0 and apm[1] > 0  # the knob reached the policy
    assert (tmp_path / "sw" / "rate=+0.3" / "episodes.jsonl").is_file()
    assert load_sweep(tmp_path / "sw") == json.loads((tmp_path / "sw" / "sweep.json").read_text())
    # a rerun plays nothing again
    again = sweep("random", TINY, tmp_path / "sw", "rate", [0.0, 0.3], **kw)
    assert again["rows"] == s["rows"]
    text, data = tradeoff([tmp_path / "sw", tmp_path / "sw"], out=tmp_path / "t.png",
                          at={"false_alarms_per_min": [0.0]}, names=["a", "b"])
    assert (tmp_path / "t.png").stat().st_size > 1000 and (tmp_path / "t.json").is_file()
    assert "| a |" in text and data["sweeps"]["a"]["interpolated"]["false_alarms_per_min=0"] is not None


def test_bad_input_names_the_field(tmp_path) -> None:
    with pytest.raises(SpecError, match="values"):
        sweep("random", TINY, tmp_path / "x", "rate", [])
    with pytest.raises(SpecError, match="no sweep.json"):
        load_sweep(tmp_path)
    (tmp_path / "sweep.json").write_text("{}")
    with pytest.raises(SpecError, match="rows"):
        load_sweep(tmp_path)
    with pytest.raises(SpecError, match="unknown metric"):
        tradeoff([], at={"nope": [1.0]})


def test_cli_sweep_and_tradeoff(tmp_path, capsys) -> None:
    import yaml

    from chimein.cli import main

    suite = tmp_path / "tiny.yaml"
    suite.write_text(yaml.safe_dump(TINY.to_dict()))
    out = tmp_path / "sw"
    assert main(["eval", "sweep", "policy=random", f"suite={suite}", f"out={out}", "param=rate",
                 "values=[0.0,0.2]", "workers=1", f"eval.cache_dir={tmp_path / 'c'}",
                 "eval.progress=false", "eval.report=false"]) == 0
    assert "rate=0.2: timeliness" in capsys.readouterr().out
    png = tmp_path / "t.png"
    assert main(["eval", "tradeoff", str(out), f"out={png}", "+at.false_alarms_per_min=[0.0]"]) == 0
    assert png.is_file() and "@ false_alarms_per_min=0" in capsys.readouterr().out
    assert main(["eval", "tradeoff", str(tmp_path / "nope")]) == 2
