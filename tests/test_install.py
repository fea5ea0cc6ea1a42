"""`make demo` / `make test` install the pinned torch build: a local wheel when one satisfies the
pin, else PyTorch's wheel index for that build (never an unpinned torch, never the CUDA default)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _install_commands(tmp_path: Path, *args: str) -> list[str]:
    """The commands `make` would run to set up a fresh venv in ``tmp_path`` (``make -n``)."""
    venv = tmp_path / "venv"
    out = subprocess.run(["make", "-n", "-B", f"{venv}/.chimein-installed", f"VENV={venv}", *args],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return out.replace("\\\n", " ").splitlines()


def _pin() -> str:
    lines = [ln for ln in (ROOT / "constraints.txt").read_text().splitlines() if ln.startswith("torch==")]
    assert len(lines) == 1, lines
    return lines[0]


def test_torch_pin_is_the_cpu_build():
    assert re.fullmatch(r"torch==\d+\.\d+\.\d+\+cpu", _pin())


def test_torch_comes_from_a_local_wheel_else_the_cpu_index(tmp_path):
    cmds = _install_commands(tmp_path)
    torch = [c for c in cmds if f'"{_pin()}"' in c]
    assert len(torch) == 1, cmds
    # the plain pin first (a local wheel or the configured indexes: works offline), then the index
    plain, fallback = torch[0].split("||", 1)
    assert "--extra-index-url" not in plain and "--index-url" not in plain
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in fallback
    assert f'"{_pin()}"' in fallback
    # everything else is installed against the same torch pin
    rest = [c for c in cmds if "-e " in c and "pip install" in c]
    assert rest and all(f"-c {tmp_path}/venv/constraints.txt" in c for c in rest)
    assert any(f"s/^torch==.*/{_pin()}/" in c for c in cmds)


def test_torch_build_is_chosen_with_TORCH(tmp_path):
    version = _pin().removeprefix("torch==").removesuffix("+cpu")
    cmds = " ".join(_install_commands(tmp_path, "TORCH=cu128"))
    assert f'"torch=={version}+cu128"' in cmds
    assert "--extra-index-url https://download.pytorch.org/whl/cu128" in cmds
    assert f"s/^torch==.*/torch=={version}+cu128/" in cmds  # the constraints follow the choice
