"""A built wheel runs the command line from outside the checkout.

``pip wheel --no-deps .`` of a copy of the checkout, installed into a fresh virtual environment
(``--no-deps``; the dependencies are made visible from the test's own environment), must run
``chimein eval policy=oracle suite=chimein-bench-v0-mini`` from a folder outside the checkout:
the Hydra configs have to ship inside the package and nothing may reach back into the source
tree. This runs on every CI run (``make test``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 600) -> str:
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of a clean copy of the checkout (no build/ or egg-info left in the checkout)."""
    src = tmp_path_factory.mktemp("src") / "chimein-src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".mypy_cache",
        ".ruff_cache", "demo_out", "runs", "data"))
    out = tmp_path_factory.mktemp("wheels")
    # no build isolation: the build backend (setuptools, wheel; dev extra) comes from this env,
    # so the test needs no network
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), "."],
         cwd=src)
    wheels = sorted(out.glob("chimein-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_ships_the_configs(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for cfg in ("chimein/configs/cmd/eval.yaml", "chimein/configs/scenes/default.yaml",
                "chimein/configs/training/supervised.yaml", "chimein/configs/agents/lm.yaml"):
        assert cfg in names, f"{cfg} missing from {wheel.name}"
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/"))]


def test_installed_wheel_runs_eval_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)], cwd=tmp_path)
    # the dependencies: this environment's site-packages, after the new venv's own (where chimein is)
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path).strip())
    (site / "zz_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CHIMEIN_CONFIG_DIR")}
    env["CHIMEIN_CACHE_DIR"] = str(tmp_path / "cache")
    where = _run([str(py), "-c", "import chimein, chimein.cli; print(chimein.__file__)"], cwd=work, env=env).strip()
    assert Path(where).is_relative_to(env_dir), f"chimein imported from {where}, not from the installed wheel"

    out = work / "run"
    _run([str(env_dir / "bin" / "chimein"), "eval", "policy=oracle", "suite=chimein-bench-v0-mini",
          f"out={out}", "workers=1", "eval.progress=false"], cwd=work, env=env, timeout=900)
    results = json.loads((out / "results.json").read_text())
    assert results["suite"]["name"] == "chimein-bench-v0-mini"
    overall = results["metrics"]["overall"]
    assert overall["n_episodes"] == 22
    assert overall["normalized_reward"]["value"] == pytest.approx(1.0)  # the oracle is perfect
