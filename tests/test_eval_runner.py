"""The evaluation runner: baselines on a tiny suite, oracle on top, resume, batching, parallel
workers, bad input, re-scoring, comparison and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from chimein.cli import main as cli_main
from chimein.envs.rollout import rollout
from chimein.errors import ChimeinError, ConfigError, SpecError
from chimein.eval.episodes import read_episodes
from chimein.eval.metrics import METRICS
from chimein.eval.report import compare, load_results
from chimein.eval.runner import evaluate, evaluate_many
from chimein.eval.suites import MaterializedSuite, SuiteDef, materialize

TINY = SuiteDef(name="tiny-eval", revision=0, description="runner tests", seed=11,
                families=("addressed", "pauses", "proactive", "distractors"),
                tiers={"clean": {"difficulty": "easy", "room_pool": 1, "positions_per_room": 4},
                       "hard": {"difficulty": "hard", "room_pool": 1, "positions_per_room": 4}},
                scenes={"default": 2})
BASELINES = ("always-wait", "random", "energy-endpoint", "oracle")


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> MaterializedSuite:
    d = tmp_path_factory.mktemp("cache")
    return materialize(TINY, cache_dir=d, workers=1, progress=False, rir_cache_dir=str(d))


@pytest.fixture(scope="module")
def runs(suite: MaterializedSuite, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for p in BASELINES:
        out[p] = root / p
        evaluate(p, suite, out=out[p], workers=1, batch_size=4, progress=False, report=p == "oracle",
                 resamples=200, examples=2)
    return out


def overall(run: Path) -> dict:
    return load_results(run)["metrics"]["overall"]


def test_results_files_and_oracle_scores_the_maximum(runs: dict[str, Path], suite: MaterializedSuite) -> None:
    res = load_results(runs["oracle"])
    assert res["suite"]["fingerprint"] == suite.fingerprint and res["suite"]["revision"] == 0
    assert res["policy"] == "oracle" and res["chimein_version"]
    assert res["timing"]["episodes_run"] == 16 and res["timing"]["episodes_resumed"] == 0
    assert set(res["metrics"]["by_split"]) == {s.name for s in TINY.splits}
    assert set(res["metrics"]["by_family"]) == set(TINY.families) and set(res["metrics"]["by_tier"]) == {"clean", "hard"}
    o = res["metrics"]["overall"]
    assert set(METRICS) <= set(o) and o["n_episodes"] == 16
    for k in ("hit_rate", "timeliness", "respond_recall", "intervene_recall", "normalized_reward",
              "oracle_normalized_reward", "clip_accuracy"):
        assert o[k]["value"] == 1.0, k
    for k in ("false_alarms_per_min", "miss_rate", "safety_miss_rate", "pause_takeover_rate", "duplicate_rate"):
        assert o[k]["value"] in (0.0, None), k
    for p in BASELINES[:-1]:
        other = overall(runs[p])
        for k in ("normalized_reward", "mean_reward", "hit_rate", "timeliness"):
            assert other[k]["value"] <= o[k]["value"] + 1e-12, (p, k)
    # report with its plots
    md = (runs["oracle"] / "report.md").read_text()
    assert "| hit_rate (higher better) | 1.00 [1.00, 1.00]" in md and "## By split" in md
    plots = sorted(p.name for p in (runs["oracle"] / "plots").glob("*.png"))
    assert "latency_cdf.png" in plots and "families.png" in plots and len(plots) == 4


def test_always_wait_scores_zero_and_episodes_are_self_contained(runs: dict[str, Path]) -> None:
    o = overall(runs["always-wait"])
    assert o["normalized_reward"]["value"] == 0.0 and o["miss_rate"]["value"] == 1.0
    assert o["actions_per_min"]["value"] == 0.0 and o["latency_p50"]["value"] is None
    lines = read_episodes(runs["always-wait"] / "episodes.jsonl")
    assert len(lines) == 16 and len({e.key for e in lines}) == 16
    e = lines[0].to_dict()
    for k in ("suite", "run", "policy", "split", "family", "tier", "scene_id", "annotations", "action_log",
              "outcome", "reward_cfg", "env", "duration_s"):
        assert k in e, k
    assert e["suite"]["name"] == "tiny-eval" and e["env"] == {"chunk_ms": 80.0, "speak_s": 2.0}
    # the record's JSON is the line as written, byte for byte
    assert [r.to_json() for r in lines] == (runs["always-wait"] / "episodes.jsonl").read_text().splitlines()


def test_rescore_equals_original(runs: dict[str, Path], tmp_path: Path) -> None:
    for p in ("energy-endpoint", "random"):
        assert cli_main(["eval", "rescore", str(runs[p] / "episodes.jsonl"), f"out={tmp_path / p}",
                         "eval.report=false", "eval.resamples=200"]) == 0
        a, b = load_results(runs[p])["metrics"], load_results(tmp_path / p)["metrics"]
        assert a == b
    # a harsher reward changes the reward metrics, not the detection metrics
    assert cli_main(["eval", "rescore", str(runs["random"]), f"out={tmp_path / 'harsh'}", "eval.report=false",
                     "eval.resamples=0", "+reward.false_alarm=-2.0"]) == 0
    h, o = overall(tmp_path / "harsh"), overall(runs["random"])
    assert h["hit_rate"] == {**o["hit_rate"], "ci": [None, None]}
    assert h["mean_reward"]["value"] < o["mean_reward"]["value"]


def test_rescore_works_without_the_suite_from_spec_paths(runs: dict[str, Path], suite: MaterializedSuite,
                                                        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = read_episodes(runs["energy-endpoint"] / "episodes.jsonl")
    f = tmp_path / "deployment.jsonl"
    keep = ("scene_id", "split", "family", "tier", "action_log", "spec")
    f.write_text("".join(json.dumps({k: v for k, v in e.to_dict().items() if k in keep}) + "\n" for e in lines))
    assert cli_main(["eval", "rescore", str(f), "eval.report=false", "eval.resamples=0"]) == 2
    assert "scene spec not found" in capsys.readouterr().err
    # spec paths are relative to the suite folder
    assert cli_main(["eval", "rescore", str(f), f"out={tmp_path / 'dep'}", f"specs_root={suite.root}",
                     "eval.report=false", "eval.resamples=0"]) == 0
    a, b = overall(runs["energy-endpoint"]), overall(tmp_path / "dep")
    assert {k: a[k]["value"] for k in METRICS} == {k: b[k]["value"] for k in METRICS}


def test_resume_recomputes_only_missing_episodes(runs: dict[str, Path], suite: MaterializedSuite,
                                                 tmp_path: Path) -> None:
    import shutil

    d = tmp_path / "resume"
    shutil.copytree(runs["energy-endpoint"], d)
    ep = d / "episodes.jsonl"
    full = ep.read_text().splitlines(keepends=True)
    # a kill mid-run: 9 complete lines and half of the 10th
    ep.write_text("".join(full[:9]) + full[9][: len(full[9]) // 2])
    res = evaluate("energy-endpoint", suite, out=d, workers=1, batch_size=4, progress=False, report=False,
                   resamples=200)
    assert res["timing"]["episodes_resumed"] == 9 and res["timing"]["episodes_run"] == 7
    lines = read_episodes(ep)
    assert len(lines) == 16
    key = {e.key: e.action_log for e in read_episodes(runs["energy-endpoint"] / "episodes.jsonl")}
    assert all(key[e.key] == e.action_log for e in lines)
    assert res["metrics"] == load_results(runs["energy-endpoint"])["metrics"]
    again = evaluate("energy-endpoint", suite, out=d, workers=1, progress=False, report=False, resamples=0)
    assert again["timing"]["episodes_run"] == 0


def test_episodes_of_another_suite_version_or_run_are_refused(runs: dict[str, Path], suite: MaterializedSuite,
                                                              tmp_path: Path) -> None:
    import shutil

    d = tmp_path / "other"
    shutil.copytree(runs["always-wait"], d)
    with pytest.raises(SpecError, match="another run"):
        evaluate("oracle", suite, out=d, workers=1, progress=False, report=False)
    lines = (d / "episodes.jsonl").read_text().splitlines()
    old = json.loads(lines[0])
    old["suite"] = {**old["suite"], "revision": 7, "definition_hash": "f" * 64}
    (d / "episodes.jsonl").write_text(json.dumps(old) + "\n" + "\n".join(lines[1:]) + "\n")
    with pytest.raises(SpecError, match=r"episodes.jsonl:1: .*revision 7.*another suite version"):
        evaluate("always-wait", suite, out=d, workers=1, progress=False, report=False)


def test_unknown_policy_and_suite(suite: MaterializedSuite, tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="unknown policy name"):
        evaluate("smartest", suite, out=tmp_path, workers=1, progress=False)
    with pytest.raises(SpecError, match="unknown suite"):
        evaluate("oracle", "chimein-bench-v9", out=tmp_path, workers=1, progress=False)
    with pytest.raises(SpecError, match="bad arguments"):
        evaluate("random", suite, out=tmp_path, policy_kwargs={"rte": 0.1}, workers=1, progress=False)
    assert not (tmp_path / "episodes.jsonl").exists()
    assert cli_main(["eval", "policy=smartest", "suite=tiny", f"out={tmp_path}"]) == 2


def test_batched_unbatched_and_parallel_give_identical_logs(suite: MaterializedSuite, runs: dict[str, Path],
                                                           tmp_path: Path) -> None:
    ref = {e.key: (e.action_log, e.outcome.reward) for e in read_episodes(runs["energy-endpoint"] / "episodes.jsonl")}
    one = evaluate("energy-endpoint", suite, out=tmp_path / "b1", workers=1, batch_size=1, progress=False,
                   report=False, resamples=0, splits=["clean/addressed", "hard/pauses", "hard/proactive"])
    evaluate("energy-endpoint", suite, out=tmp_path / "par", workers=2, batch_size=3, progress=False,
             report=False, resamples=0)
    assert one["metrics"]["overall"]["n_episodes"] == 6
    for d, n in ((tmp_path / "b1", 6), (tmp_path / "par", 16)):
        lines = read_episodes(d / "episodes.jsonl")
        assert len(lines) == n
        for e in lines:
            assert ref[e.key] == (e.action_log, e.outcome.reward)


def test_rollout_flags_or_refuses_invalid_actions(suite: MaterializedSuite) -> None:
    from chimein.agents.baselines import AlwaysWait

    class Broken(AlwaysWait):
        name = "broken"

        def _act(self, obs):  # type: ignore[no-untyped-def]
            a = np.zeros(self.n_streams, np.int64)
            a[0] = 7
            return a, np.zeros((self.n_streams, 3), np.float32)

    ds = suite.dataset("clean/addressed")
    scenes = [ds.load(0), ds.load(1)]
    with pytest.raises(ChimeinError, match="action 7"):
        rollout(scenes, Broken())
    infos = rollout(scenes, Broken(), on_invalid="flag")
    assert [i.invalid for i in infos] == [True, False]
    assert infos[0].outcome.n_actions == 0
    # a caller's bug is a plain ValueError; a setting the policy cannot read is a ConfigError
    with pytest.raises(ValueError, match="on_invalid") as bug:
        rollout(scenes, Broken(), on_invalid="ignore")
    assert not isinstance(bug.value, ChimeinError)
    Broken.obs_modes = ("audio",)
    with pytest.raises(ConfigError, match="obs_mode"):
        rollout(scenes, Broken(), {"obs_mode": "logmel"})


def test_compare_and_cli(runs: dict[str, Path], suite: MaterializedSuite, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    text, written = compare([runs[p] for p in BASELINES], out=tmp_path / "lb.md")
    rows = [r for r in text.splitlines() if r.startswith("| ") and r[2].isdigit()]
    assert [r.split(" | ")[1] for r in rows][0] == "oracle" and len(rows) == 4
    assert written is not None and written.read_text().startswith(text.splitlines()[0])
    assert (tmp_path / "lb_latency.png").is_file()
    assert cli_main(["eval", "compare", *(str(runs[p]) for p in BASELINES), f"out={tmp_path / 'cli.md'}"]) == 0
    out = capsys.readouterr().out  # the compact table (tests/test_eval_compare_paired.py)
    assert "1  oracle" in out and "| 1 | oracle |" in (tmp_path / "cli.md").read_text()
    # the demo's one call: every run above is resumed, nothing is recomputed
    text2, path = evaluate_many(list(BASELINES), suite, out=runs["oracle"].parent, workers=1, batch_size=4,
                                progress=False, report=False, resamples=200)
    assert path == runs["oracle"].parent / "leaderboard.md" and text2.splitlines()[:7] == text.splitlines()[:7]
    short, _ = evaluate_many(list(BASELINES), suite, out=runs["oracle"].parent, workers=1, batch_size=4,
                             progress=False, report=False, resamples=200, terminal=True)
    assert max(map(len, short.splitlines())) <= 120 and "1  oracle" in short and "![" not in short
    assert path.read_text().startswith(text.splitlines()[0])  # the file keeps the full table
    assert all(load_results(runs[p])["timing"]["episodes_run"] == 0 for p in BASELINES)
    other = tmp_path / "fake"
    other.mkdir()
    res = load_results(runs["oracle"])
    res["suite"]["fingerprint"] = "0" * 64
    (other / "results.json").write_text(json.dumps(res))
    with pytest.raises(SpecError, match="different suites"):
        compare([runs["oracle"], other])
    with pytest.raises(SpecError, match="no results.json"):
        compare([tmp_path / "nothing"])


def test_cli_eval_on_a_suite_file(suite: MaterializedSuite, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    f = tmp_path / "tiny.yaml"
    f.write_text(yaml.safe_dump({**TINY.to_dict(), "families": list(TINY.families)}))
    cache = suite.root.parent.parent
    rc = cli_main(["eval", "policy=random", f"suite={f}", f"out={tmp_path / 'run'}", "workers=1",
                   f"eval.cache_dir={cache}", "eval.report=false", "eval.resamples=0", "eval.progress=false",
                   "+policy_args.rate=0.05", "eval.splits=[clean/addressed]"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "random on tiny-eval (2 episodes" in out
    assert "normalized_reward (+)" in out and "false_alarms_per_min (-)" in out and "(+) higher is better" in out
    assert max(map(len, out.splitlines())) <= 120 and "![" not in out
    res = load_results(tmp_path / "run")
    assert res["policy_kwargs"] == {"rate": 0.05} and res["suite"]["fingerprint"] == suite.fingerprint
