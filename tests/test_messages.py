"""What a new user reads: `--help`, calibration and codebook reports, the demo's progress and its
closing summary (issue 17, "The first ten minutes")."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


# --------------------------------------------------------------------------------------------
# chimein eval --help
# --------------------------------------------------------------------------------------------
def test_eval_help_explains_the_keys_and_lists_the_policies(capsys) -> None:
    from chimein.agents.registry import POLICY_NAMES
    from chimein.cli import main

    assert main(["eval", "--help"]) == 0
    out = capsys.readouterr().out
    for name in POLICY_NAMES:
        assert name in out
    assert "checkpoint directory" in out and "remote://host:port" in out
    lines = out.splitlines()
    # each key with its value and its meaning (the YAML comment), on one line
    assert any(ln.split() == ["eval.batch_size=16", "streams", "per", "vector", "env", "(1:", "unbatched)"]
               for ln in lines), out
    assert any(ln.startswith("  workers=0 ") and "processes" in ln for ln in lines), out
    # env overrides need `+` (Hydra refuses `eval.env.chunk_ms=400`: the key is not in the config)
    assert "+eval.env.chunk_ms=400" in out
    assert max(len(ln) for ln in lines) <= 100


def test_help_fits_100_columns_for_every_command(capsys) -> None:
    from chimein.cli import main
    from chimein.cli.main import COMMANDS

    for cmd in COMMANDS:
        assert main([*cmd.words, "--help"]) == 0
        out = capsys.readouterr().out
        assert max(len(ln) for ln in out.splitlines()) <= 100, (cmd.name, out)
        assert "keys (override with key=value" in out


def test_key_docs_read_trailing_and_leading_comments(tmp_path) -> None:
    from chimein.cli.usage import key_docs

    (tmp_path / "cmd").mkdir()
    (tmp_path / "grp").mkdir()
    (tmp_path / "grp" / "default.yaml").write_text("a: 1   # the a\nb: '#x'  # the b\n")
    (tmp_path / "cmd" / "c.yaml").write_text(
        "# @package _global_\n# chimein c: usage line\ndefaults:\n  - /grp@g: default\n  - _self_\n\n"
        "x: ???    # the x, which\n           # goes on\n# about y\ny:\n  z: 2   # the z\n")
    docs = key_docs(tmp_path, "c")
    assert docs == {"g.a": "the a", "g.b": "the b", "x": "the x, which goes on", "y": "about y",
                    "y.z": "the z"}


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------
def _fake_rollouts(monkeypatch, results: dict[float, tuple[float, float]]) -> None:
    """rollout_metrics -> {bias: (mean reward, interruptions/turn)}, with unround timeliness."""
    import chimein.training.supervised.validate as v

    def fake(model, codebook, scenes, chunk_s, logit_bias=(0.0, 0.0, 0.0), batch_size=64, **kw):
        r, ipt = results[logit_bias[1]]
        return {"mean_reward": {"value": r}, "interruptions_per_turn": {"value": ipt},
                "timeliness": {"value": 1 / 3}, "false_alarms_per_min": {"value": 2 / 3}}, []

    monkeypatch.setattr(v, "rollout_metrics", fake)


def test_calibration_says_when_no_bias_meets_the_interruption_budget(monkeypatch) -> None:
    from chimein.training.supervised.validate import calibrate_bias

    _fake_rollouts(monkeypatch, {-1.0: (-0.8333333333333334, 0.25), 0.0: (-0.75, 0.5)})
    lines: list[str] = []
    bias, cal = calibrate_bias(None, None, [object()] * 6, 0.08, [-1.0, 0.0], log=lines.append,
                               max_interruptions_per_turn=0.1)
    assert bias == [0.0, -1.0, -1.0]  # the least interrupting: behaviour unchanged
    text = "\n".join(lines)
    assert "warning: no bias keeps interruptions/turn <= 0.1" in text
    assert "least interrupting" in text and "-1.00" in text
    # rounded: no 0.8333333333333334 or 0.3333333333333333 in what a user reads
    assert "33333" not in text and "-0.833" in text and "0.333" in text
    assert max(len(ln) for ln in lines) <= 100
    assert [row["bias"] for row in cal["table"]] == [-1.0, 0.0]


def test_calibration_within_budget_reports_the_choice_without_a_warning(monkeypatch) -> None:
    from chimein.training.supervised.validate import calibrate_bias

    _fake_rollouts(monkeypatch, {-1.0: (0.1, 0.05), 0.0: (0.4, 0.08), 1.0: (0.9, 0.5)})
    lines: list[str] = []
    bias, _ = calibrate_bias(None, None, [object()] * 6, 0.08, [-1.0, 0.0, 1.0], log=lines.append,
                             max_interruptions_per_turn=0.1, progress=True)
    assert bias == [0.0, 0.0, 0.0]
    text = "\n".join(lines)
    assert "warning" not in text and "best mean reward of the 2 biases within the budget" in text
    assert sum("<- chosen" in ln for ln in lines) == 1
    import functools

    import tqdm

    # a disabled bar (TQDM_DISABLE, no terminal) has no file to write around: the same lines
    monkeypatch.setattr(tqdm, "tqdm", functools.partial(tqdm.tqdm, disable=True))
    again: list[str] = []
    calibrate_bias(None, None, [object()] * 6, 0.08, [-1.0, 0.0, 1.0], log=again.append,
                   max_interruptions_per_turn=0.1, progress=True)
    assert again == lines


# --------------------------------------------------------------------------------------------
# Codebook
# --------------------------------------------------------------------------------------------
def test_codebook_summary_is_readable_not_json() -> None:
    from chimein.agents.lm.tokenizer import Codebook, FeatureConfig
    from chimein.training.codebook import describe

    f = FeatureConfig()
    rng = np.random.default_rng(0)
    meta = {"units": 13986, "size": 8, "iterations": 30, "inertia_per_unit": 9.578046143387377,
            "seed": 0, "fit_s": 0.39, "n_scenes": 24, "collect_s": 4.4, "perplexity": 5.67125030668095,
            "unused": 0.125, "scenes": {"config": {"difficulty": "default"}}}
    book = Codebook(rng.normal(size=(8, f.unit_dim)), np.zeros(f.unit_dim), np.ones(f.unit_dim), f, meta)
    text = describe(book, "runs/codebook.safetensors")
    assert "{" not in text and "9.578046" not in text
    assert "runs/codebook.safetensors" in text and "8 entries of 40 ms" in text
    assert "13986 units from 24 scenes" in text and "perplexity 5.7 of 8" in text and "1 unused" in text


# --------------------------------------------------------------------------------------------
# The demo: progress on, and a closing summary that says what a demo-sized model's numbers mean
# --------------------------------------------------------------------------------------------
def test_demo_stages_show_progress() -> None:
    from chimein.cli.main import compose
    from chimein.config import to_plain

    lm = to_plain(compose("demo"))["lm"]
    overrides = list(lm["grpo"])
    assert not [o for o in overrides if "progress=false" in o.replace(" ", "").lower()], overrides


def _results(d: Path, nr: float, f1: float) -> None:
    d.mkdir(parents=True)
    m = {"normalized_reward": {"value": nr, "ci": [nr, nr]}, "timeliness": {"value": 0.5},
         "intervene_f1": {"value": f1}}
    (d / "results.json").write_text(json.dumps({"metrics": {"overall": m}}))


def test_demo_summary_explains_the_numbers_and_gives_the_real_recipe(tmp_path, monkeypatch) -> None:
    from chimein.cli.demo import summary

    monkeypatch.chdir(tmp_path)
    out = Path("demo_out")
    _results(out / "eval" / "oracle", 1.0, 1.0)
    _results(out / "lm" / "eval" / "grpo", -0.125, 0.0)
    text = summary(out, True, 300.0)
    assert "demo_out/lm/grpo/final" in text and "demo_out/eval/leaderboard.md" in text
    assert "only show that the RL pipeline runs" in text and "not a result" in text
    row = next(ln for ln in text.splitlines() if ln.strip().startswith("chimein-lm-sup +GRPO"))
    assert row.split()[-3:] == ["-0.12", "0.50", "0.00"]
    # the shipped policies' recorded figures, read from their cards
    assert any(ln.strip().startswith("chimein-lm ") and "v1 " in ln for ln in text.splitlines()), text
    assert "chimein train supervised codebook=runs/codebook.safetensors out=runs/sup" in text
    assert max(len(ln) for ln in text.splitlines()) <= 100
    # without the timing LM: no word about it
    assert "pipeline" not in summary(out, False, 30.0)


@pytest.mark.parametrize("resumed", [False, True])
def test_rl_step_bar_follows_absolute_steps(resumed, capsys) -> None:
    from chimein.cli.train import _step_bar

    with _step_bar("train grpo", 4, "step") as (log, on_step):
        if resumed:
            on_step(2, {})  # a resumed run reports its absolute step
        log("grpo step 3/4: reward 0.1")
        on_step(3, {})
        on_step(4, {})
    err = capsys.readouterr().err
    assert "grpo step 3/4" in err and "4/4" in err
