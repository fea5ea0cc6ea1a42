"""``chimein train curves``: reward curves (PNG + JSON) from RL runs' TensorBoard logs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from chimein.errors import SpecError
from chimein.training.curves import ema, plot_curves, read_scalars

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _fake_run(root: Path, name: str, scalars: dict[str, list[tuple[int, float]]]) -> Path:
    """A run folder whose ``tb/`` holds ``scalars`` ({tag: [(step, value), ...]})."""
    from torch.utils.tensorboard import SummaryWriter

    run = root / name
    w = SummaryWriter(str(run / "tb"))
    for tag, points in scalars.items():
        for step, v in points:
            w.add_scalar(tag, v, step)
    w.close()
    return run


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path]:
    ppo = _fake_run(tmp_path, "ppo-a", {
        "rollout/episode_reward": [(1, 1.0), (2, 2.0), (3, 4.0)],
        "policy/kl_to_init": [(1, 0.0), (2, 0.01), (3, 0.02)],
        "val/normalized_reward": [(2, 0.3)],
    })
    grpo = _fake_run(tmp_path, "grpo-b", {
        "rollout/episode_reward": [(1, -1.0), (2, 0.0)],
        "policy/kl_to_init": [(1, 0.0), (2, 0.5)],
    })
    return ppo, grpo


def test_ema_is_tensorboards_debiased_average() -> None:
    # w = 0.5: last = 0.5, 1.25, 2.625; debias 0.5, 0.75, 0.875 -> 1, 5/3, 3
    assert ema([1.0, 2.0, 4.0], 0.5) == pytest.approx([1.0, 5.0 / 3.0, 3.0])
    assert ema([1.0, 2.0, 4.0], 0.0) == [1.0, 2.0, 4.0]
    nan_kept = ema([1.0, math.nan, 3.0], 0.5)  # non-finite passes through, skipped by the EMA
    assert math.isnan(nan_kept[1]) and nan_kept[2] == pytest.approx((0.5 * 0.5 + 1.5) / 0.75)
    with pytest.raises(SpecError, match="smooth"):
        ema([1.0], 1.0)


def test_read_scalars_keeps_last_written_value_of_a_relogged_step(tmp_path: Path) -> None:
    import time

    run = _fake_run(tmp_path, "r", {"rollout/episode_reward": [(1, 1.0), (2, 2.0)]})
    time.sleep(0.01)
    from torch.utils.tensorboard import SummaryWriter  # a resume: a second event file

    w = SummaryWriter(str(run / "tb"), filename_suffix=".resumed")
    w.add_scalar("rollout/episode_reward", 5.0, 2)
    w.add_scalar("rollout/episode_reward", 6.0, 3)
    w.close()
    s = read_scalars(run, ["rollout/episode_reward"])["rollout/episode_reward"]
    assert s == {"step": [1, 2, 3], "value": [1.0, 5.0, 6.0]}


def test_plot_curves_png_and_json(runs: tuple[Path, Path], tmp_path: Path) -> None:
    png = tmp_path / "out" / "curves.png"
    res = plot_curves(list(runs), png, smooth=0.5)
    assert png.read_bytes()[:8] == PNG_MAGIC
    doc = json.loads((tmp_path / "out" / "curves.json").read_text())
    assert doc["tags"] == ["rollout/episode_reward", "val/normalized_reward", "policy/kl_to_init"]
    assert doc["skipped"] == ["val/timeliness"] == res["skipped"]
    r = doc["series"]["rollout/episode_reward"]
    assert set(r) == {"ppo-a", "grpo-b"}
    assert r["ppo-a"]["step"] == [1, 2, 3]
    assert r["ppo-a"]["value"] == [1.0, 2.0, 4.0]
    assert r["ppo-a"]["smoothed"] == pytest.approx([1.0, 5.0 / 3.0, 3.0])
    assert r["grpo-b"]["smoothed"] == pytest.approx([-1.0, (0.5 * -0.5) / 0.75])
    assert set(doc["series"]["val/normalized_reward"]) == {"ppo-a"}  # grpo-b never validated
    assert not list(png.parent.glob(".*.tmp*"))  # atomic writes left no temp files


def test_plot_curves_errors(runs: tuple[Path, Path], tmp_path: Path) -> None:
    png = tmp_path / "c.png"
    (tmp_path / "empty" / "tb").mkdir(parents=True)
    with pytest.raises(SpecError, match="no TensorBoard event files"):
        plot_curves([runs[0], tmp_path / "empty"], png)
    with pytest.raises(SpecError, match="no TensorBoard event files"):
        plot_curves([tmp_path / "missing"], png)
    with pytest.raises(SpecError, match="none of these.*the runs have: policy/kl_to_init"):
        plot_curves(list(runs), png, tags=["val/no_such_metric"])
    with pytest.raises(SpecError, match=r"\['val/typo'\]: not in"):
        plot_curves(list(runs), png, tags=["rollout/episode_reward", "val/typo"], require_all=True)
    with pytest.raises(SpecError, match="no runs"):
        plot_curves([], png)
    assert not png.exists()


def test_cli_train_curves(runs: tuple[Path, Path], tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    from chimein.cli import main

    png = tmp_path / "cli" / "rl.png"
    assert main(["train", "curves", str(runs[0]), str(runs[1]), f"out={png}", "smooth=0.5"]) == 0
    assert png.read_bytes()[:8] == PNG_MAGIC
    doc = json.loads(png.with_suffix(".json").read_text())
    assert list(doc["runs"]) == ["ppo-a", "grpo-b"]  # positional order kept
    assert doc["series"]["rollout/episode_reward"]["ppo-a"]["smoothed"] == pytest.approx(
        [1.0, 5.0 / 3.0, 3.0])
    assert "skipped tag val/timeliness" in capsys.readouterr().err

    # default out: curves.png next to the first run folder
    assert main(["train", "curves", str(runs[1]), "tags=[policy/kl_to_init]"]) == 0
    assert (runs[1].parent / "curves.png").read_bytes()[:8] == PNG_MAGIC
    assert json.loads((runs[1].parent / "curves.json").read_text())["tags"] == ["policy/kl_to_init"]

    # explicitly named tags must exist; bad run folders are a clean error (exit 2)
    assert main(["train", "curves", str(runs[1]), "tags=[val/normalized_reward]"]) == 2
    assert "val/normalized_reward" in capsys.readouterr().err
    assert main(["train", "curves", str(tmp_path / "nope"), f"out={png}"]) == 2
    assert "no TensorBoard event files" in capsys.readouterr().err
