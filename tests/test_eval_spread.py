"""The spread of a recipe's figures over training seeds (``chimein.eval.spread``,
``chimein eval spread``, the shipped cards' ``seed_spread``)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from chimein.errors import SpecError
from chimein.eval.spread import HEADLINE_KEYS, seed_spread, spread_cell, spread_table


def _run(root: Path, name: str, reward: float, tiers: dict[str, float], suite: str = "chimein-bench-v1",
         definition: str = "d1", safety: float | None = 0.5) -> Path:
    """A `chimein eval` folder with the fields the spread reads."""

    def block(r: float) -> dict[str, Any]:
        m: dict[str, Any] = {k: {"value": 0.1, "ci": [0.0, 0.2]} for k in HEADLINE_KEYS}
        m["normalized_reward"] = {"value": r, "ci": [r - 0.03, r + 0.03]}
        m["safety_miss_rate"] = {"value": safety, "ci": None}
        return m

    d = root / name
    d.mkdir(parents=True)
    res = {"suite": {"name": suite, "revision": 1, "definition_hash": definition, "n_scenes": 12,
                     "fingerprint": "f"},
           "env": {"chunk_ms": 80},
           "metrics": {"overall": block(reward), "by_tier": {t: block(v) for t, v in tiers.items()}}}
    (d / "results.json").write_text(json.dumps(res))
    (d / "episodes.jsonl").write_text(json.dumps({
        "split": "addressed/clean", "scene_id": "s0", "outcome": {"reward": 1.0},
        "action_log": {"events": [[3, 1, 1]], "n_steps": 10}}) + "\n")
    return d


def test_seed_spread_reports_every_seed_with_mean_sd_and_range(tmp_path: Path) -> None:
    runs = [_run(tmp_path, f"s{i}", r, {"clean": r + 0.1, "heldout": r - 0.1})
            for i, r in enumerate((0.22, 0.18, 0.20))]
    s = seed_spread(runs)
    nr = s["overall"]["normalized_reward"]
    assert nr["values"] == [0.22, 0.18, 0.20] and nr["n"] == 3
    assert nr["mean"] == pytest.approx(0.20) and nr["sd"] == pytest.approx(0.02)
    assert (nr["min"], nr["max"]) == (0.18, 0.22)
    assert s["by_tier"]["heldout"]["normalized_reward"]["mean"] == pytest.approx(0.10)
    assert s["n_seeds"] == 3 and set(s["by_tier"]) == {"clean", "heldout"}
    table = "\n".join(spread_table(s))
    assert "Spread over 3 training seeds" in table
    assert "| normalized_reward | 0.20 ± 0.02 [0.18, 0.22] | 0.30 ± 0.02 [0.28, 0.32] |" in table


def test_an_undefined_metric_is_left_out_not_counted_as_zero(tmp_path: Path) -> None:
    runs = [_run(tmp_path, "a", 0.2, {}, safety=None), _run(tmp_path, "b", 0.2, {}, safety=0.4),
            _run(tmp_path, "c", 0.2, {}, safety=0.6)]
    sm = seed_spread(runs)["overall"]["safety_miss_rate"]
    assert sm["n"] == 2 and sm["mean"] == pytest.approx(0.5) and sm["values"][0] is None
    assert spread_cell({"mean": None}) == "n/a"
    assert not math.isnan(sm["sd"])


def test_runs_of_different_suites_or_a_single_run_are_refused(tmp_path: Path) -> None:
    a = _run(tmp_path, "a", 0.2, {})
    b = _run(tmp_path, "b", 0.2, {}, definition="d2")
    with pytest.raises(SpecError, match="different suites"):
        seed_spread([a, b])
    with pytest.raises(SpecError, match="at least two"):
        seed_spread([a])
    with pytest.raises(SpecError, match="not a `chimein eval` output folder"):
        seed_spread([a, tmp_path])


def test_the_command_prints_and_writes_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from chimein.cli.main import main

    runs = [str(_run(tmp_path, f"s{i}", r, {"clean": r})) for i, r in enumerate((0.1, 0.3))]
    assert main(["eval", "spread", *runs, f"out={tmp_path / 'spread.md'}"]) == 0
    assert "0.20 ± 0.14 [0.10, 0.30]" in capsys.readouterr().out
    data = json.loads((tmp_path / "spread.json").read_text())
    assert data["overall"]["normalized_reward"]["values"] == [0.1, 0.3]


def test_ship_records_the_seed_spread_on_the_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import chimein.eval.reference as ship_mod
    from chimein.agents.lm.reference import CARD_FILE, reference_root

    ckpt = tmp_path / "ckpt"
    shutil.copytree(reference_root() / "chimein-lm-sup", ckpt)
    (ckpt / CARD_FILE).unlink()
    dest = tmp_path / "pkg"
    dest.mkdir()
    monkeypatch.setattr(ship_mod, "reference_root", lambda: dest)
    mini = _run(tmp_path, "mini", 0.3, {}, suite="chimein-bench-v1-mini", definition="m")
    v1 = [_run(tmp_path, f"v1s{i}", r, {"heldout": r}) for i, r in enumerate((0.22, 0.18, 0.20))]
    out = ship_mod.ship("chimein-lm-sup", ckpt, [mini, v1[0]], recipe="r", seed_results=v1[1:])
    card = json.loads((out / CARD_FILE).read_text())
    spread = card["seed_spread"]
    assert list(spread) == ["chimein-bench-v1"], "only suites with more than one seed get a spread"
    assert spread["chimein-bench-v1"]["overall"]["normalized_reward"]["values"] == [0.22, 0.18, 0.20]
    assert card["metrics"]["chimein-bench-v1"]["overall"]["normalized_reward"]["value"] == 0.22
    orphan = _run(tmp_path, "v0s1", 0.2, {}, suite="chimein-bench-v0", definition="v0")
    with pytest.raises(SpecError, match="pass its run too"):
        ship_mod.ship("chimein-lm-sup", ckpt, [mini, v1[0]], seed_results=[orphan])
