"""Paired differences in ``chimein eval compare``: run - reference on the same scenes with a
paired bootstrap interval, exact zeros against itself, a significant oracle gain over waiting,
runs on other scenes left unpaired, and the leaderboard above unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from chimein.cli import main as cli_main
from chimein.errors import SpecError
from chimein.eval.metrics import COUNTS
from chimein.eval.report import PAIRED_METRICS, compare, episode_count_rows, paired_differences
from chimein.eval.runner import evaluate
from chimein.eval.suites import MaterializedSuite, SuiteDef, materialize

# two splits of short, easy scenes: a few seconds to materialise and evaluate
TINY = SuiteDef(name="tiny-paired", revision=0, description="paired compare tests", seed=5,
                families=("addressed", "proactive"),
                tiers={"clean": {"difficulty": "easy", "room_pool": 1, "positions_per_room": 2,
                                 "lead_s": [0.0, 0.2], "tail_s": [0.2, 0.4], "distractor_rate": 0.0}},
                scenes={"default": 3})


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> MaterializedSuite:
    d = tmp_path_factory.mktemp("cache")
    return materialize(TINY, cache_dir=d, workers=1, progress=False, rir_cache_dir=str(d))


@pytest.fixture(scope="module")
def runs(suite: MaterializedSuite, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for p, splits in (("always-wait", None), ("oracle", None), ("energy-endpoint", ["clean/addressed"])):
        out[p] = root / p
        evaluate(p, suite, out=out[p], workers=1, batch_size=4, progress=False, report=False, resamples=50,
                 splits=splits)
    return out


def paired_rows(text: str) -> list[str]:
    """The rows of the first paired table (the overall one; by tier and family follow it)."""
    block = text[text.index("Paired differences"):]
    rows: list[str] = []
    for r in block.splitlines():
        if r.startswith("| ") and not r.startswith("| policy"):
            rows.append(r)
        elif rows and not r.startswith("|"):
            break
    return rows


def test_a_run_against_itself_is_exactly_zero(runs: dict[str, Path]) -> None:
    rows = episode_count_rows(runs["oracle"])
    assert rows is not None and len(rows) == 6 and all(v.shape == (len(COUNTS),) for v in rows.values())
    d = paired_differences(rows, rows, resamples=300, seed=3)
    for m in PAIRED_METRICS:
        if d[m]["reference"] is None:  # undefined on these scenes (e.g. no safety cues)
            assert d[m]["value"] is None and d[m]["ci"] == [None, None]
            continue
        assert d[m]["value"] == 0.0 and d[m]["ci"] == [0.0, 0.0] and not d[m]["significant"], m
    text, _ = compare([runs["always-wait"], runs["always-wait"]], resamples=100)
    (row,) = paired_rows(text)
    assert "+0.000 [+0.000, +0.000] |" in row and "*" not in row


def test_oracle_beats_waiting_significantly_and_other_scenes_are_not_paired(runs: dict[str, Path],
                                                                            tmp_path: Path) -> None:
    dirs = [runs["always-wait"], runs["oracle"], runs["energy-endpoint"]]
    plain, _ = compare(dirs, paired_metrics=())
    text, written = compare(dirs, out=tmp_path / "lb.md", resamples=200, seed=0)
    # the leaderboard is unchanged; the paired table follows it
    assert "Paired differences" not in plain and text.startswith(plain)
    assert text[len(plain):].startswith("\nPaired differences against the reference `always-wait`")
    assert "lower is better for interr./turn, safety miss, FA/min" in text
    rows = {r.split(" | ")[0][2:]: r for r in paired_rows(text)}
    assert set(rows) == {"oracle", "energy-endpoint"}
    assert "not paired: different scenes" in rows["energy-endpoint"]
    cell = rows["oracle"].split(" | ")[2]
    assert cell.startswith("+") and cell.endswith("*")
    # the written leaderboard and the JSON next to it
    assert written is not None and written.read_text().startswith(text)
    js = json.loads((tmp_path / "lb.paired.json").read_text())
    assert js["reference"]["policy"] == "always-wait" and js["reference"]["n_scenes"] == 6
    assert js["metrics"] == list(PAIRED_METRICS) and js["bootstrap"]["resamples"] == 200
    by = {r["policy"]: r for r in js["runs"]}
    nr = by["oracle"]["diffs"]["normalized_reward"]
    assert nr["value"] > 0 and nr["ci"][0] > 0 and nr["significant"]
    assert nr["value"] == pytest.approx(nr["run"] - nr["reference"])
    assert not by["energy-endpoint"]["paired"] and by["energy-endpoint"]["reason"] == "different scenes"
    # seeded: the same numbers again; another seed draws other resamples
    again, _ = compare(dirs, resamples=200, seed=0)
    assert text.startswith(again)  # (+ the latency plot written with out)
    ref, orc = episode_count_rows(runs["always-wait"]), episode_count_rows(runs["oracle"])
    assert ref is not None and orc is not None
    d = paired_differences(ref, orc, ["timeliness", "false_alarms_per_min"], resamples=200, seed=0)
    t = by["oracle"]["diffs"]["timeliness"]
    assert d["timeliness"] == t and np.isfinite(t["value"])


def test_reference_option_cli_and_bad_input(runs: dict[str, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    dirs = [str(runs["always-wait"]), str(runs["oracle"])]
    assert cli_main(["eval", "compare", *dirs, f"reference={runs['oracle']}", f"out={tmp_path / 'cli.md'}",
                     "eval.resamples=100"]) == 0
    out = capsys.readouterr().out
    assert "1  oracle" in out and "vs `oracle`" in out and "100 paired bootstrap resamples" in out
    md = (tmp_path / "cli.md").read_text()  # the full tables, with intervals
    assert "| 1 | oracle |" in md and "against the reference `oracle`" in md and "100 resamples" in md
    (row,) = paired_rows(md)
    assert row.startswith("| always-wait | 6 | -1.000 [-1.000, -1.000]*")
    assert (tmp_path / "cli.paired.json").is_file()
    assert cli_main(["eval", "compare", *dirs, "eval.splits=[clean/addressed]"]) == 2  # not silently ignored
    assert "'eval.splits' is not used by compare" in capsys.readouterr().err
    with pytest.raises(SpecError, match="'reference'"):
        compare(dirs, reference=tmp_path)
    with pytest.raises(SpecError, match="'paired_metrics'"):
        compare(dirs, paired_metrics=["latency_p50"])
    rows = episode_count_rows(runs["oracle"])
    assert rows is not None
    with pytest.raises(SpecError, match="same"):
        paired_differences(rows, dict(list(rows.items())[:3]))


def test_terminal_tables_fit_120_columns_with_direction_marks(runs: dict[str, Path], tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    dirs = [str(runs["always-wait"]), str(runs["oracle"]), str(runs["energy-endpoint"])]
    md_text, md = compare(dirs, out=tmp_path / "lb.md", resamples=100)
    assert md is not None
    written = md.read_text()
    text, md2 = compare(dirs, out=tmp_path / "lb.md", resamples=100, terminal=True)
    # the file is the same full Markdown (intervals, image link); only the returned text is compact
    assert md2 == md and md.read_text() == written == md_text and "![" in written and " [" in written
    assert cli_main(["eval", "compare", *dirs, f"out={tmp_path / 'cli.md'}", "eval.resamples=100"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "cli.md").read_text() == written.replace("lb_latency.png", "cli_latency.png")
    for t in (text, out):
        lines = t.splitlines()
        assert max(len(x) for x in lines) <= 120, max(lines, key=len)
        assert "![" not in t and "](" not in t and "| " not in t
        heads = [x for x in lines if x.startswith("#  policy")]
        assert len(heads) == 1 and heads[0].split()[2:12] == ["(+)"] * 4 + ["(-)"] * 5 + ["(+)"]
        assert "(+) higher is better, (-) lower is better" in t
        assert "1  oracle" in t and "+1.000*" in t and "not paired: different scenes" in t
        assert "[" not in t.split("Full tables")[0].replace("[95", "")  # no intervals on screen
        assert t.rstrip().splitlines()[-1].endswith("lb.md" if t is text else "cli.md")
    # a run name too long for the width is cut, not allowed to widen the table
    res = json.loads((runs["oracle"] / "results.json").read_text())
    long = tmp_path / "long"
    long.mkdir()
    (long / "results.json").write_text(json.dumps({**res, "policy_kwargs": {"x" * 40: "y" * 80}}))
    t, _ = compare([runs["oracle"], long], resamples=0, terminal=True)
    assert max(len(x) for x in t.splitlines()) <= 120 and "~" in t


def test_paired_differences_by_tier_pair_each_tiers_scenes(runs: dict[str, Path]) -> None:
    """With two tiers, each tier's paired difference is the one computed on its scenes alone,
    and the Markdown table lists it per tier; one tier gives no breakdown."""
    from chimein.eval.report import paired_by_tier, paired_by_tier_table

    ref, orc = episode_count_rows(runs["always-wait"]), episode_count_rows(runs["oracle"])
    assert ref is not None and orc is not None
    assert paired_by_tier(ref, orc) is None  # TINY has one tier

    def retier(rows: dict) -> dict:  # the proactive split becomes a "heldout" tier
        return {((f"heldout/{s.split('/')[1]}" if "proactive" in s else s), i): v for (s, i), v in rows.items()}

    r2, o2 = retier(ref), retier(orc)
    by = paired_by_tier(r2, o2, ["normalized_reward"], resamples=200, seed=1)
    assert by is not None and list(by) == ["clean", "heldout"]
    held = {k: v for k, v in r2.items() if k[0].startswith("heldout/")}
    alone = paired_differences(held, {k: v for k, v in o2.items() if k in held}, ["normalized_reward"],
                               resamples=200, seed=1)
    assert by["heldout"] == alone and by["heldout"]["normalized_reward"]["significant"]
    paired = {"metrics": ["normalized_reward"], "reference": {"name": "always-wait"},
              "runs": [{"name": "oracle", "by_tier": by}]}
    lines = paired_by_tier_table(paired)
    assert "| policy | clean | heldout |" in lines and lines[-1].startswith("| oracle | +")
    assert paired_by_tier_table({**paired, "runs": [{"name": "x"}]}) == []


def test_paired_differences_by_family_pool_the_tiers(runs: dict[str, Path]) -> None:
    """By family, each family's difference pools its scenes from every tier (issue 21: "better
    than every endpointer on every family"), in the sampler's order of families."""
    from chimein.eval.report import paired_by_part, paired_by_part_table
    from chimein.scenes.sampler.config import FAMILIES

    ref, orc = episode_count_rows(runs["always-wait"]), episode_count_rows(runs["oracle"])
    assert ref is not None and orc is not None
    by = paired_by_part(ref, orc, "family", ["normalized_reward"], resamples=200, seed=1)
    fams = sorted({s.split("/")[-1] for s, _ in ref}, key=FAMILIES.index)
    assert by is not None and list(by) == fams and len(fams) >= 2
    fam = fams[0]
    mine = {k: v for k, v in ref.items() if k[0].split("/")[-1] == fam}
    alone = paired_differences(mine, {k: v for k, v in orc.items() if k in mine}, ["normalized_reward"],
                               resamples=200, seed=1)
    assert by[fam] == alone
    paired = {"metrics": ["normalized_reward"], "reference": {"name": "always-wait"},
              "runs": [{"name": "oracle", "by_family": by}]}
    lines = paired_by_part_table(paired, "family")
    assert f"| policy | {' | '.join(fams)} |" in lines and "by family" in lines[1]
    with pytest.raises(ValueError, match="part"):
        paired_by_part(ref, orc, "room")
