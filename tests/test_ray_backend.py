"""The Ray backend of the execution seam: same bytes as the local backend for `scenes generate`,
`eval` and `attack`; a worker killed mid-run; resume after a killed driver; errors with the
worker's traceback; the policy actor; and a core that never imports Ray.

One local Ray instance (2 CPUs, 100 MB object store, no dashboard) serves the whole module and
is stopped at the end. Without Ray installed the Ray tests are skipped, unless
``CHIMEIN_REQUIRE_RAY=1`` (set by ``make test``) makes that a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chimein.errors import ConfigError, RemoteError, SpecError

CONFIG = {"family": "addressed", "difficulty": "easy", "room_pool": 1, "positions_per_room": 4}
N, SEED = 4, 5
RAY_OPTS = {"object_store_memory": 100 * 2**20}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _assert_same_tree(a: Path, b: Path) -> None:
    fa, fb = _files(a), _files(b)
    assert sorted(fa) == sorted(fb)
    for k in fa:
        assert fa[k] == fb[k], k


# ============================================================================================
# Fixtures
# ============================================================================================
@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    """A local Ray instance started through chimein's own path (ensure_ray), shared by the module."""
    if os.environ.get("CHIMEIN_REQUIRE_RAY"):
        import ray
    else:
        ray = pytest.importorskip("ray")
    from chimein.exec import ray as ray_backend

    os.environ["RAY_DEDUP_LOGS"] = "0"
    assert not ray.is_initialized()
    ray_backend.ensure_ray(RAY_OPTS, workers=2)
    # functions of this test module run in Ray workers, which cannot import it: ship them by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    assert ray.cluster_resources()["CPU"] == 2
    yield ray
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    ray_backend.shutdown()
    assert not ray.is_initialized()


@pytest.fixture(scope="module")
def rir_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("rir"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, rir_dir: str) -> Path:
    """The local backend's dataset (process pool, 2 workers)."""
    from chimein.scenes.dataset import generate_dataset

    out = tmp_path_factory.mktemp("ref") / "data"
    generate_dataset(CONFIG, n=N, seed=SEED, out=out, workers=2, progress=False, cache_dir=rir_dir, backend="local")
    return out


# ============================================================================================
# scenes generate
# ============================================================================================
def test_generate_on_ray_equals_local_bytes(ray_local: Any, reference: Path, rir_dir: str, tmp_path: Path) -> None:
    from chimein.scenes.dataset import SceneDataset, generate_dataset

    out = tmp_path / "ray"
    generate_dataset(CONFIG, n=N, seed=SEED, out=out, workers=2, progress=False, cache_dir=rir_dir, backend="ray",
                     ray_options=RAY_OPTS)
    _assert_same_tree(reference, out)
    assert len(SceneDataset(out, verify=True)) == N


def _kill_once(args: tuple) -> dict:
    """A Ray job that kills its own worker process the first time it runs scene 1."""
    import chimein.scenes.dataset as d

    index, out = args[1], Path(args[3])
    marker = out.parent / f"killed-{index}"
    if index == 1 and not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    real = d._ray_job  # in the worker: the unpatched job
    assert real is not _kill_once, "must run in a Ray worker"
    return real(args)


def test_worker_killed_mid_run_is_retried_same_bytes(ray_local: Any, reference: Path, rir_dir: str,
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import chimein.scenes.dataset as d

    monkeypatch.setattr(d, "_ray_job", _kill_once)
    out = tmp_path / "killed"
    d.generate_dataset(CONFIG, n=N, seed=SEED, out=out, workers=2, progress=False, cache_dir=rir_dir,
                       backend="ray", ray_options={**RAY_OPTS, "max_retries": 2})
    assert (tmp_path / "killed-1").is_file()  # the worker really died
    _assert_same_tree(reference, out)


def test_worker_death_without_retries_fails_loudly(ray_local: Any, rir_dir: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import chimein.scenes.dataset as d

    monkeypatch.setattr(d, "_ray_job", _kill_once)
    with pytest.raises(ray_local.exceptions.WorkerCrashedError):
        d.generate_dataset(CONFIG, n=2, seed=SEED, out=tmp_path / "data", workers=1, progress=False,
                           cache_dir=rir_dir, backend="ray", ray_options={**RAY_OPTS, "max_retries": 0})
    # scene 0 (if it finished first) is in the manifest with its files; scene 1 left nothing behind
    assert not (tmp_path / "data" / "audio" / "scene-000001.flac").exists()


def test_driver_killed_then_rerun_on_ray_resumes(ray_local: Any, reference: Path, rir_dir: str,
                                                 tmp_path: Path) -> None:
    from chimein.scenes.dataset import generate_dataset

    out = tmp_path / "resumed"
    shutil.copytree(reference, out)
    lines = (out / "manifest.jsonl").read_text().splitlines()
    # as left by a driver killed while appending line 3 (scenes 2 and 3 not recorded; 3's files gone)
    (out / "manifest.jsonl").write_text("\n".join(lines[:2]) + "\n" + lines[2][:25])
    for f in ("audio/scene-000003.flac", "specs/scene-000003.json"):
        (out / f).unlink()
    kept = {f: (out / f).stat().st_mtime_ns for f in ("audio/scene-000000.flac", "audio/scene-000001.flac")}
    generate_dataset(CONFIG, n=N, seed=SEED, out=out, workers=2, progress=False, cache_dir=rir_dir, backend="ray",
                     ray_options=RAY_OPTS)
    _assert_same_tree(reference, out)
    assert {f: (out / f).stat().st_mtime_ns for f in kept} == kept  # written scenes are not redone


def test_cli_generate_backend_ray(ray_local: Any, rir_dir: str, tmp_path: Path) -> None:
    from chimein.cli import main

    out = tmp_path / "cli"
    rc = main(["scenes", "generate", "n=2", "seed=1", f"out={out}", "scenes=easy", "scenes.family=addressed",
               "scenes.room_pool=1", "workers=2", "backend=ray", "ray_address=null", "progress=false",
               f"cache_dir={rir_dir}"])
    assert rc == 0 and len((out / "manifest.jsonl").read_text().splitlines()) == 2


# ============================================================================================
# The seam itself
# ============================================================================================
def _fail_on_two(x: int) -> int:
    if x == 2:
        raise SpecError(f"item {x}: field 'x' is bad")
    return x * 10


def _init_marker(path: str) -> None:
    with open(path, "a") as f:
        f.write(f"{os.getpid()}\n")


def _pid(x: int) -> tuple[int, int]:
    return x, os.getpid()


def test_error_carries_worker_traceback_and_class(ray_local: Any) -> None:
    from chimein.exec import imap_unordered

    with pytest.raises(SpecError, match="field 'x' is bad") as exc:
        list(imap_unordered(_fail_on_two, range(6), workers=2, backend="ray"))
    assert "_fail_on_two" in str(exc.value)  # the worker's traceback
    assert sorted(r for _, r in imap_unordered(_fail_on_two, [0, 1, 3], workers=2, backend="ray")) == [0, 10, 30]


def test_initializer_runs_once_per_worker_and_results_stream(ray_local: Any, tmp_path: Path) -> None:
    from chimein.exec import imap_unordered

    marker = tmp_path / "init.txt"
    out = list(imap_unordered(_pid, range(12), workers=2, backend="ray", initializer=_init_marker,
                              initargs=(str(marker),), max_pending=3))
    assert sorted(x for x, _ in out) == list(range(12)) and all(x == r[0] for x, r in out)
    pids = marker.read_text().split()
    assert len(pids) == len(set(pids)) and set(pids) == {str(r[1]) for _, r in out}


def test_ray_options_validation(ray_local: Any) -> None:
    from chimein.exec import imap_unordered
    from chimein.exec.ray import RayOptions

    for bad, match in (({"num_gpus": -1}, "num_gpus"), ({"adress": "auto"}, "unknown key 'adress'.*did you mean 'address'"),
                       ({"max_retries": 1.5}, "max_retries"), ({"num_cpus": 0}, "both 0"),
                       ({"object_store_memory": 10}, "object_store_memory")):
        with pytest.raises(ConfigError, match=match):
            RayOptions.from_mapping(bad)
    with pytest.raises(RemoteError, match="has 0"):  # would wait forever on this GPU-less instance
        list(imap_unordered(abs, [1], workers=1, backend="ray", ray_options={"num_gpus": 0.25}))


# ============================================================================================
# eval and attack
# ============================================================================================
def _episodes(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for r in rows:
        r.pop("wall_s")  # timing: the only field allowed to differ
    return sorted(rows, key=lambda r: (r["split"], r["scene_id"]))


def test_eval_on_ray_equals_local(ray_local: Any, rir_dir: str, tmp_path: Path) -> None:
    from chimein.eval.runner import evaluate
    from chimein.eval.suites import SuiteDef, materialize

    tiny = SuiteDef(name="tiny-ray", revision=0, description="ray backend", seed=5,
                    families=("addressed", "distractors"),
                    tiers={"clean": {"difficulty": "easy", "room_pool": 1, "positions_per_room": 4}},
                    scenes={"default": 2})
    m = materialize(tiny, cache_dir=tmp_path / "cache", workers=1, progress=False, rir_cache_dir=rir_dir)
    kw: dict[str, Any] = {"batch_size": 2, "progress": False, "report": False, "resamples": 50}
    local = evaluate("energy-endpoint", m, out=tmp_path / "local", workers=1, **kw)
    ray = evaluate("energy-endpoint", m, out=tmp_path / "ray", workers=2, backend="ray", ray_options=RAY_OPTS, **kw)
    assert _episodes(tmp_path / "local" / "episodes.jsonl") == _episodes(tmp_path / "ray" / "episodes.jsonl")
    assert local["metrics"] == ray["metrics"] and ray["timing"]["episodes_run"] == 4


def test_attack_on_ray_equals_local(ray_local: Any, rir_dir: str, tmp_path: Path) -> None:
    from chimein.eval.attack import attack, replay

    space = {"params": {"snr_db": {"type": "float", "low": 5, "high": 30, "step": 5}},
             "base": {"family": "addressed", "difficulty": "easy", "room_pool": 1, "positions_per_room": 4}}
    search = {"population": 2, "top_k": 1, "n_random": 1, "n_holdout": 1, "resamples": 0, "examples": 0}
    kw: dict[str, Any] = {"budget": 2, "space": space, "search": search, "progress": False, "report": False,
                          "rir_cache_dir": rir_dir}
    local = attack("energy-endpoint", tmp_path / "local", workers=1, **kw)
    ray = attack("energy-endpoint", tmp_path / "ray", workers=2, backend="ray", ray_options=RAY_OPTS, **kw)

    def cands(root: Path) -> list[dict]:
        rows = [json.loads(line) for line in (root / "candidates.jsonl").read_text().splitlines()]
        for r in rows:
            r.pop("wall_s")
        return sorted(rows, key=lambda r: r["key"])

    assert cands(tmp_path / "local") == cands(tmp_path / "ray") and len(cands(tmp_path / "ray")) == 4
    assert local["sets"] == ray["sets"]
    for f in ("manifest.jsonl", "attack_state.json"):
        assert (tmp_path / "local" / f).read_bytes() == (tmp_path / "ray" / f).read_bytes(), f
    for p in (tmp_path / "local" / "audio").iterdir():
        assert p.read_bytes() == (tmp_path / "ray" / "audio" / p.name).read_bytes()
    # replay ships the scenes' bytes to the workers
    r_local = replay("energy-endpoint", tmp_path / "local", workers=1, progress=False, search={"resamples": 0})
    r_ray = replay("energy-endpoint", tmp_path / "local", workers=2, backend="ray", ray_options=RAY_OPTS,
                   progress=False, search={"resamples": 0})
    assert r_local == r_ray


# ============================================================================================
# Policy actor
# ============================================================================================
def test_policy_actor_matches_local_policy(ray_local: Any, reference: Path) -> None:
    from chimein.agents.ray_actor import ActorPolicy, start_policy_actor
    from chimein.agents.registry import make_policy
    from chimein.envs.rollout import rollout
    from chimein.scenes.dataset import SceneDataset

    ds = SceneDataset(reference)
    scenes = [ds.load(i) for i in range(3)]
    env = {"chunk_ms": 80.0, "speak_s": 1.5}
    for name, kwargs in (("energy-endpoint", {"silence_timeout_s": 0.5}), ("oracle", {})):
        actor = start_policy_actor(name, kwargs)
        a, b = ActorPolicy(actor), ActorPolicy(actor)  # two clients, two sessions, one actor
        assert a.name == name and a._session != b._session
        want = rollout(scenes, make_policy(name, **kwargs), env)
        assert rollout(scenes, a, env) == want and rollout(scenes[:1], b, env) == want[:1]
        if name == "oracle":
            assert a.speak_s == 1.5  # rollout set the remote policy's attribute
        a.close()
        with pytest.raises(RemoteError, match="not open"):
            a.act({})
        ray_local.kill(actor)
    with pytest.raises(SpecError, match="unknown policy name"):
        start_policy_actor("no-such-policy")


# ============================================================================================
# The core never needs Ray
# ============================================================================================
def test_core_never_imports_ray_and_missing_ray_is_explained(tmp_path: Path) -> None:
    code = f"""
import sys
import chimein
from chimein.scenes.dataset import generate_dataset
from chimein.exec import imap_unordered
import chimein.exec.ray  # importable without importing ray
generate_dataset({CONFIG!r}, n=1, seed=0, out={str(tmp_path / 'd')!r}, workers=1, progress=False,
                 cache_dir={str(tmp_path / 'rir')!r}, backend="local")
assert "ray" not in sys.modules, "ray was imported"
sys.modules["ray"] = None  # as if Ray were not installed
from chimein.errors import ConfigError  # not a RemoteError: nothing remote was tried
try:
    generate_dataset({CONFIG!r}, n=2, seed=0, out={str(tmp_path / 'd')!r}, workers=2, progress=False,
                     backend="ray")
except ConfigError as e:
    print("ERR", e)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "ERR backend=ray needs Ray" in r.stdout and "pip install 'chimein[ray]'" in r.stdout
