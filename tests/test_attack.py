"""Adversarial search: the declared space, validity constraints, CEM, resumption, CLI, outputs."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from chimein.errors import ConfigError, SpecError
from chimein.eval.attack import (
    CANDIDATES,
    STATE,
    SearchConfig,
    attack,
    draw,
    evaluate_candidate,
    initial_distribution,
    read_candidates,
    update_distribution,
)
from chimein.scenes.search_space import (
    PARAMETERS,
    Constraints,
    SearchSpace,
    check_scene,
    cue_snr_db,
)

# A small space of short, cheap scenes: one pooled room per room size, addressed turns.
SPACE = {
    "params": {
        "snr_db": {"type": "float", "low": 5.0, "high": 30.0, "step": 5.0},
        "pause_s": {"type": "float", "low": 0.3, "high": 1.5, "step": 0.1},
        "family": {"type": "categorical", "choices": ["addressed", "pauses"]},
        "distractor_kind": {"type": "categorical", "choices": ["none", "tv_wake"]},
        "distractor_offset_s": {"type": "float", "low": -1.0, "high": 1.0, "step": 0.5},
        "target_distance_m": {"type": "float", "low": 0.5, "high": 3.0, "step": 0.5},
    },
    "base": {"difficulty": "easy", "room_pool": 1, "positions_per_room": 4, "lead_s": [0.5, 0.8],
             "tail_s": [0.8, 1.0], "distractor_rate": 0.0, "overlap": 0.0,
             "device_rate": 0.0},  # an ideal microphone: the audibility test checks the room's SNR exactly
    "constraints": {"audibility_floor_db": 0.0},
}
SEARCH = {"population": 3, "top_k": 2, "n_random": 2, "n_holdout": 1, "resamples": 50, "examples": 1}


@pytest.fixture(scope="module")
def rir_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("rir"))


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return SearchSpace.from_mapping(SPACE)


def _job(space: SearchSpace, point: dict, seed: int, rir_dir: str, env: dict | None = None,
         policy: str = "energy-endpoint") -> dict:
    return {"key": "k", "point": point, "seed": seed, "space": space.to_dict(),
            "policy": {"name": policy, "kwargs": {}}, "env": env or SearchConfig().env_options(),
            "rir_cache_dir": rir_dir}


# ============================================================================================
# Search space
# ============================================================================================
@pytest.mark.parametrize("params, match", [
    ({"nope": {"type": "float", "low": 0, "high": 1}}, "unknown parameter"),
    ({"rt60": {"type": "float", "low": 0.2, "high": 5.0}}, "rt60"),
    ({"snr_db": {"type": "float", "low": 10, "high": 10}}, "low < high"),
    ({"snr_db": {"type": "float", "low": 0, "high": 10, "step": 20}}, "step"),
    ({"snr_db": {"type": "categorical", "choices": ["a"]}}, "type"),
    ({"noise_kind": {"type": "categorical", "choices": ["pink", "purple"]}}, "purple"),
    ({"family": {"type": "categorical", "choices": []}}, "choices"),
    ({"snr_db": {"type": "float", "low": 0}}, "high"),
])
def test_space_rejects_bad_declarations(params: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        SearchSpace.from_mapping({"params": params})


def test_space_rejects_base_clash_and_bad_constraints() -> None:
    with pytest.raises(ConfigError, match="base.snr_db"):
        SearchSpace.from_mapping({"params": {"snr_db": {"type": "float", "low": 0, "high": 5}},
                                  "base": {"snr_db": [1, 2]}})
    with pytest.raises(ConfigError, match="audibility_floor_db"):
        SearchSpace.from_mapping({"params": {"snr_db": {"type": "float", "low": 0, "high": 5}},
                                  "constraints": {"audibility_floor_db": 100}})


def test_points_bounded_snapped_and_deterministic(space: SearchSpace) -> None:
    rng, again = np.random.default_rng(1), np.random.default_rng(1)
    pts = [space.sample_prior(rng) for _ in range(50)]
    assert pts == [space.sample_prior(again) for _ in range(50)]
    for pt in pts:
        assert space.validate_point(pt) == pt
        assert pt["snr_db"] in (5.0, 10.0, 15.0, 20.0, 25.0, 30.0)
        assert 0.3 <= pt["pause_s"] <= 1.5 and math.isclose(round(pt["pause_s"] / 0.1), pt["pause_s"] / 0.1)
    assert {p["family"] for p in pts} == {"addressed", "pauses"}
    with pytest.raises(SpecError, match="outside"):
        space.validate_point({**pts[0], "snr_db": 31.0})
    with pytest.raises(SpecError, match="missing"):
        space.validate_point({k: v for k, v in pts[0].items() if k != "snr_db"})
    with pytest.raises(SpecError, match="not one of"):
        space.validate_point({**pts[0], "family": "monitoring"})
    p = space.param("snr_db")
    assert p.from_unit(-3.0) == 5.0 and p.from_unit(7.0) == 30.0 and p.snap(12.4) == 10.0


def test_every_parameter_builds_a_valid_scene() -> None:
    """The whole declared vocabulary at once: the scene validates and reflects the point."""
    decl = {}
    for name, info in PARAMETERS.items():
        if info.kind == "categorical":
            decl[name] = {"type": "categorical", "choices": list(info.universe)}
        else:
            lo, hi = info.limits
            decl[name] = {"type": "float", "low": lo, "high": min(hi, lo + 1.0)}
    decl["room_length"] = {"type": "float", "low": 5.0, "high": 6.0}
    decl["room_width"] = {"type": "float", "low": 4.0, "high": 5.0}
    decl["rt60"] = {"type": "float", "low": 0.2, "high": 0.3}
    decl["speech_rate"] = {"type": "float", "low": 150.0, "high": 160.0}
    decl["aug_lowpass_hz"] = {"type": "float", "low": 3000.0, "high": 4000.0}
    decl["lead_s"] = {"type": "float", "low": 0.5, "high": 1.0}
    decl["family"] = {"type": "categorical", "choices": ["proactive"]}
    decl["distractor_kind"] = {"type": "categorical", "choices": ["lookalike"]}
    sp = SearchSpace.from_mapping({"params": decl, "base": {"room_pool": 1}})
    pt = sp.sample_prior(np.random.default_rng(0))
    spec = sp.build_scene(pt, seed=5, scene_id="x")
    assert spec == sp.build_scene(pt, seed=5, scene_id="x")
    assert spec.difficulty == "adversarial" and spec.meta["attack"]["point"] == pt
    assert spec.room.rt60 == pt["rt60"] and spec.room.dims[:2] == (pt["room_length"], pt["room_width"])
    assert spec.meta["snr_db"] == pt["snr_db"] and spec.meta["noise"] == pt["noise_kind"]
    assert [a["name"] for a in spec.augment] == ["LowPassFilter", "AddGaussianSNR", "Gain"]
    # the injected look-alike has its IGNORE cue, attributed to its source
    adv = [s for s in spec.sources if s.id == "adv_ev0"]
    assert len(adv) == 1 and adv[0].level_db == round(pt["distractor_level_db"], 2)
    assert any(c.expected == "IGNORE" and c.source_ids == ("adv_ev0",) for c in spec.annotations.cues)
    assert spec.meta["attack"]["target_distance_m"] <= pt["target_distance_m"] + 1e-6


def test_target_distance_and_tv_injection(space: SearchSpace) -> None:
    base = {"snr_db": 20.0, "pause_s": 0.5, "family": "addressed", "distractor_kind": "tv_wake",
            "distractor_offset_s": 0.0, "target_distance_m": 2.0}
    spec = space.build_scene(base, seed=11)
    user = [s for s in spec.sources if s.role == "user"][0]
    c = spec.mics.center
    d = math.hypot(user.position[0] - c[0], user.position[1] - c[1])
    assert d == pytest.approx(spec.meta["attack"]["target_distance_m"], abs=2e-3) and d <= 2.0 + 1e-3
    tv = [s for s in spec.sources if s.id == "adv_tv0"][0]
    cue = [c for c in spec.annotations.cues if c.source_ids == ("adv_tv0",)][0]
    assert tv.role == "media" and cue.label == "tv speech with wake phrase"
    # anchored at the RESPOND window's start (offset 0), and the scene extends to cover it
    resp = spec.annotations.action_cues[0]
    assert tv.onset_s == pytest.approx(resp.window[0], abs=1e-3)
    assert spec.duration_s >= cue.window[1]
    noise = [s for s in spec.sources if s.kind == "noise"][0]
    assert noise.duration_s == spec.duration_s
    none = space.build_scene({**base, "distractor_kind": "none"}, seed=11)
    assert not any(s.id.startswith("adv") for s in none.sources)


# ============================================================================================
# Constraints
# ============================================================================================
def test_audibility_measure_tracks_snr(space: SearchSpace, rir_dir: str) -> None:
    from chimein.scenes.rir import RIRCache

    cache = RIRCache(rir_dir)
    pt = {"snr_db": 25.0, "pause_s": 0.5, "family": "addressed", "distractor_kind": "none",
          "distractor_offset_s": 0.0, "target_distance_m": 1.0}
    hi = cue_snr_db(space.build_scene(pt, seed=3), cache)
    lo = cue_snr_db(space.build_scene({**pt, "snr_db": 5.0}, seed=3), cache)
    (k,) = hi
    # no other point source: the cue's SINR is the noise SNR plus the target's active-frame gain
    assert hi[k] - lo[k] == pytest.approx(20.0, abs=0.01) and hi[k] > 25.0


def test_inaudible_cue_is_rejected(space: SearchSpace, rir_dir: str) -> None:
    pt = {"snr_db": 5.0, "pause_s": 0.5, "family": "addressed", "distractor_kind": "none",
          "distractor_offset_s": 0.0, "target_distance_m": 1.0}
    spec = space.build_scene(pt, seed=3)
    bad, snr = check_scene(spec, Constraints(audibility_floor_db=40.0))
    assert bad and bad[0].startswith("audibility") and all(v < 40 for v in snr.values())
    strict = SearchSpace.from_mapping({**SPACE, "constraints": {"audibility_floor_db": 40.0}})
    res = evaluate_candidate(_job(strict, pt, 3, rir_dir))
    assert not res["valid"] and res["reasons"][0].startswith("audibility")
    assert res["regret"] is None and "policy" not in res  # never played, never an elite


def test_short_windows_are_rejected(space: SearchSpace) -> None:
    pt = {"snr_db": 25.0, "pause_s": 0.5, "family": "addressed", "distractor_kind": "none",
          "distractor_offset_s": 0.0, "target_distance_m": 1.0}
    bad, _ = check_scene(space.build_scene(pt, seed=3), Constraints(min_window_s=10.0))
    assert any(b.startswith("window") for b in bad)


def test_oracle_failure_is_rejected(rir_dir: str) -> None:
    """Two action cues closer than the assistant's speaking time: even the oracle must miss one."""
    sp = SearchSpace.from_mapping({"params": {"snr_db": {"type": "float", "low": 20, "high": 30}},
                                   "base": {"family": "monitoring", "difficulty": "easy", "room_pool": 1}})
    pt = {"snr_db": 25.0}
    env = SearchConfig(env={"chunk_ms": 80.0, "speak_s": 40.0}).env_options()
    res = evaluate_candidate(_job(sp, pt, 2, rir_dir, env=env, policy="always-wait"))
    assert not res["valid"] and res["reasons"][0].startswith("oracle")
    ok = evaluate_candidate(_job(sp, pt, 2, rir_dir, policy="always-wait"))
    assert ok["valid"] and ok["oracle"]["reward"] == ok["max_reward"] == 2.0
    # always-wait misses both cues: (2 - (-1)) / 2 cues
    assert ok["regret"] == pytest.approx(1.5)


# ============================================================================================
# CEM
# ============================================================================================
def test_cem_update_moves_toward_elites(space: SearchSpace) -> None:
    cfg = SearchConfig(smoothing=0.5, min_std=0.1, cat_floor=0.1)
    d0 = initial_distribution(space)
    elites = [{**space.sample_prior(np.random.default_rng(i)), "snr_db": 30.0, "family": "pauses"} for i in range(4)]
    d1 = update_distribution(space, d0, elites, cfg)
    assert d1["mean"]["snr_db"] == pytest.approx(0.75) and d1["std"]["snr_db"] >= 0.1
    assert d1["probs"]["family"][1] == pytest.approx((0.5 * 1 + 0.5 * 0.5) * 0.9 + 0.05)
    assert sum(d1["probs"]["family"]) == pytest.approx(1.0)
    assert update_distribution(space, d0, elites[:1], cfg) == d0  # too few elites: unchanged
    pts = [draw(space, d1, np.random.default_rng(7)) for _ in range(3)]
    assert pts == [draw(space, d1, np.random.default_rng(7)) for _ in range(3)]
    for pt in pts:
        space.validate_point(pt)


def test_search_config_validation() -> None:
    with pytest.raises(ConfigError, match="population"):
        SearchConfig(population=1)
    with pytest.raises(ConfigError, match="unknown key 'populaton' in attack search; .*did you mean 'population'"):
        SearchConfig.from_mapping({"populaton": 4})
    with pytest.raises(ConfigError, match="chunk_ms"):
        SearchConfig(env={"chunk_ms": 0.001})


# ============================================================================================
# Runs: resumption, determinism, outputs, CLI
# ============================================================================================
def _numbers(d: Path) -> tuple:
    state = json.loads((d / STATE).read_text())
    res = json.loads((d / "results.json").read_text())
    cands = read_candidates(d / CANDIDATES)
    keep = {k: (v["point"], v["seed"], v["valid"], v["regret"]) for k, v in cands.items() if k[0] == "g"}
    return (state["history"], keep, res["sets"], res["quality_bar"], res["importance"],
            (d / "manifest.jsonl").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, rir_dir: str) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("attack")
    kw = dict(space=SPACE, search=SEARCH, workers=1, progress=False, report=False, rir_cache_dir=rir_dir, seed=3)
    # interrupted after one generation, then continued with the larger budget
    attack("energy-endpoint", root / "resumed", budget=3, **kw)
    first = _numbers(root / "resumed")
    attack("energy-endpoint", root / "resumed", budget=6, **kw)
    # uninterrupted
    attack("energy-endpoint", root / "straight", budget=6, **kw)
    return {"root": root, "first": first, **{k: root / k for k in ("resumed", "straight")}}


def test_resumed_run_equals_uninterrupted_run(runs: dict) -> None:
    a, b = _numbers(runs["resumed"]), _numbers(runs["straight"])
    assert a == b
    assert len(a[0]) == 2 and len(runs["first"][0]) == 1
    assert runs["first"][0][0] == a[0][0]  # generation 0 is not changed by continuing


def test_kill_mid_generation_resumes(runs: dict, rir_dir: str) -> None:
    """A run killed inside generation 1 (state still at 1 generation, two results of the
    generation written, a half-written line) resumes to the uninterrupted result."""
    d = runs["root"] / "killed"
    shutil.copytree(runs["straight"], d)
    state = json.loads((d / STATE).read_text())
    state["generations"], state["history"] = 1, state["history"][:1]
    (d / STATE).write_text(json.dumps(state))
    lines = [ln for ln in (d / CANDIDATES).read_text().splitlines() if json.loads(ln)["key"][0] == "g"]
    keep = [ln for ln in lines if not json.loads(ln)["key"].startswith("g001-002")]
    (d / CANDIDATES).write_text("\n".join(keep) + "\n" + keep[-1][: len(keep[-1]) // 2])
    (d / "manifest.jsonl").unlink()
    attack("energy-endpoint", d, budget=6, space=SPACE, search=SEARCH, workers=1, progress=False, report=False,
           rir_cache_dir=rir_dir, seed=3)
    assert _numbers(d) == _numbers(runs["straight"])


def test_other_settings_refuse_the_directory(runs: dict, rir_dir: str) -> None:
    with pytest.raises(SpecError, match="different"):
        attack("energy-endpoint", runs["straight"], budget=3, space=SPACE, search=SEARCH, workers=1,
               progress=False, report=False, rir_cache_dir=rir_dir, seed=4)


def test_outputs_are_a_dataset_the_env_plays(runs: dict) -> None:
    from chimein.envs.env import ResponseTimingEnv
    from chimein.envs.sources import DatasetSource, MixtureSource, SyntheticSource
    from chimein.scenes.dataset import SceneDataset

    d = runs["straight"]
    res = json.loads((d / "results.json").read_text())
    ds = SceneDataset(d, verify=True)
    assert len(ds) == res["sets"]["found"]["n_valid"] == 2
    scene = ds.load(0)
    assert scene.audio.dtype == np.float32 and scene.spec.difficulty == "adversarial"
    rows = [json.loads(x) for x in (d / "scenes.jsonl").read_text().splitlines()]
    assert [r["regret"] for r in rows] == sorted((r["regret"] for r in rows), reverse=True)
    assert res["sets"]["found"]["oracle_at_max"] == 2  # the oracle still solves every found scene
    assert len(SceneDataset(d / "random")) == res["sets"]["random"]["n_valid"]
    env = ResponseTimingEnv(scenes=str(d), order="sequential")
    env.reset(seed=0)
    for _ in range(5):
        env.step(0)
    env.close()
    mix = MixtureSource([(DatasetSource(d), 0.5), (SyntheticSource(), 0.5)])
    rng = np.random.default_rng(0)
    keys = [mix.draw_key(rng, i) for i in range(8)]
    assert {mix.component_of(k) for k in keys} == {0, 1}
    env = ResponseTimingEnv(scenes=mix)
    env.reset(seed=1)
    env.step(0)
    env.close()
    # fresh scenes from the search's final distribution, mixed with the saved ones
    from chimein.envs.sources import SpaceSource, mixture_from_config

    fresh = SpaceSource.from_attack(d)
    state = json.loads((d / STATE).read_text())
    assert fresh.dist == state["history"][-1]["dist"]
    spec = fresh.spec(5)
    assert spec == fresh.spec(5) and not check_scene(spec, fresh.space.constraints)[0]
    cfg = mixture_from_config({"mixture": [{"scenes": str(d), "weight": 1}, {"attack": str(d), "weight": 3}]})
    assert list(cfg.weights) == [0.25, 0.75]
    with pytest.raises(SpecError, match="attack state"):
        SpaceSource.from_attack(d / "random")


def test_cli_tiny_budget(tmp_path: Path, rir_dir: str) -> None:
    """The default space through the command line (small, dry rooms: quick RIRs; report and
    plots included)."""
    from chimein.cli import main

    out = tmp_path / "cli"
    rc = main(["attack", "policy=always-wait", "budget=2", f"out={out}", "workers=1", "progress=false",
               f"rir_cache_dir={rir_dir}", "attack.search.population=2", "attack.search.top_k=1",
               "attack.search.n_random=1", "attack.search.n_holdout=0", "attack.search.resamples=20",
               "attack.search.examples=1", "attack.space.params.rt60.high=0.3",
               "attack.space.params.room_length.high=5.0", "attack.space.params.room_width.high=4.0"])
    assert rc == 0
    text = (out / "report.md").read_text()
    assert "Quality bar" in text and "Which parameters drive failure" in text
    assert (out / "plots" / "params.png").is_file()
    res = json.loads((out / "results.json").read_text())
    assert res["search"]["evaluated"] == 2 and res["policy"] == "always-wait"
    assert main(["attack", "policy=no-such-policy", "budget=2", f"out={tmp_path / 'x'}"]) == 2


def test_replay_re_evaluates_found_scenes(runs: dict, tmp_path: Path) -> None:
    """The re-evaluate step: the policy scores on the saved found scenes as it did in the search."""
    from chimein.cli import main
    from chimein.eval.attack import replay

    d = runs["straight"]
    rep = replay("energy-endpoint", d, workers=1, progress=False, search={"resamples": 0})
    res = json.loads((d / "results.json").read_text())
    assert rep["n"] == 2 and rep["oracle_at_max"] == 2
    assert rep["drop"]["value"] == pytest.approx(res["sets"]["found"]["drop"]["value"], abs=1e-9)
    assert main(["attack", "policy=always-wait", f"replay={d}", f"out={tmp_path}", "workers=1", "progress=false",
                 "attack.search.resamples=0"]) == 0
    assert json.loads((tmp_path / "replay.json").read_text())["n"] == 2
