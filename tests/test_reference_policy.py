"""The timing-LM checkpoints shipped inside the package (``chimein-lm``, ``chimein-lm-sup``):
small safetensors files checked against their card, loadable by name with no training, and
scoring on ``chimein-bench-v1-mini`` what their card records."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from chimein.agents.lm.reference import (
    CARD_FILE,
    REFERENCE_NAMES,
    checkpoint_path,
    reference_card,
    reference_root,
    verify_reference,
)
from chimein.errors import ConfigError, SpecError


def test_shipped_checkpoints_are_small_verified_safetensors() -> None:
    total = 0
    for name in REFERENCE_NAMES:
        d = verify_reference(name)
        card = reference_card(name)
        files = {p.name for p in d.iterdir() if p.is_file()} - {CARD_FILE}
        assert files == set(card["files"]), "every shipped file is on the card, and only those"
        assert all(f.endswith((".safetensors", ".json")) for f in files)  # no pickles
        assert card["recipe"].strip() and card["source"].strip()
        assert "chimein-bench-v1-mini" in card["metrics"]
        total += sum((d / f).stat().st_size for f in files)
    assert total <= 20 * 2**20, f"shipped checkpoints take {total / 2**20:.1f} MB (budget 20 MB)"


def test_a_damaged_shipped_file_is_refused(tmp_path, monkeypatch) -> None:
    import chimein.agents.lm.reference as ref

    shutil.copytree(reference_root() / "chimein-lm-sup", tmp_path / "chimein-lm-sup")
    monkeypatch.setattr(ref, "reference_root", lambda: tmp_path)
    monkeypatch.setattr(ref, "_VERIFIED", set())
    assert verify_reference("chimein_lm_sup") == tmp_path / "chimein-lm-sup"
    cfg = tmp_path / "chimein-lm-sup" / "chimein.json"
    original = cfg.read_text()
    meta = json.loads(original)
    meta["inference"]["logit_bias"] = [0.0, 3.0, 3.0]
    cfg.write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="chimein.json has sha256 .* reinstall chimein"):
        verify_reference("chimein-lm-sup")
    cfg.write_text(original)
    (tmp_path / "chimein-lm-sup" / "model.safetensors").unlink()
    with pytest.raises(ConfigError, match="'model.safetensors' is missing"):
        verify_reference("chimein-lm-sup")
    with pytest.raises(SpecError, match="not a shipped checkpoint"):
        reference_card("chimein-lm-large")


def test_shipped_policies_load_by_name_and_are_never_recalibrated() -> None:
    from chimein.agents.registry import make_policy
    from chimein.training.supervised import calibrate_checkpoint

    for name in REFERENCE_NAMES:
        p = make_policy(name)
        assert p.name == name and p.chunk_s == 0.08
        p.reset(2)
        a, probs = p.act({"audio": np.zeros((2, 1280, 1), np.float32)})
        assert a.shape == (2,) and np.allclose(probs.sum(-1), 1.0)
    assert checkpoint_path("chimein-lm") == str(reference_root() / "chimein-lm")
    with pytest.raises(ConfigError, match="shipped inside chimein"):
        calibrate_checkpoint("chimein-lm", {})


@pytest.mark.parametrize("name", REFERENCE_NAMES)
def test_shipped_policies_reproduce_their_recorded_metrics(name, tmp_path) -> None:
    """Re-measure the card's ``chimein-bench-v1-mini`` entry (every tier and family). On the recording machine play is bit-identical; elsewhere SIMD code paths may flip
    a decision that sat on a tie, so one changed episode is allowed and the headline
    metrics must agree to 0.02."""
    from chimein.eval import evaluate
    from chimein.eval.reference import MINI_SUITE, compare_recorded, summarise_results

    recorded = reference_card(name)["metrics"][MINI_SUITE]
    evaluate(name, MINI_SUITE, out=tmp_path / name, workers=1, resamples=0, progress=False,
             report=False)
    fresh = summarise_results(tmp_path / name, episodes=True)
    diffs = compare_recorded(recorded, fresh, tol=0.02, max_episodes_changed=1)
    assert not diffs, "\n".join(diffs)
    assert len(fresh["episodes"]) == len(recorded["episodes"]) == recorded["suite"]["n_scenes"]


def test_compare_recorded_reports_changed_play() -> None:
    from chimein.eval.reference import MINI_SUITE, compare_recorded

    rec = reference_card("chimein-lm")["metrics"][MINI_SUITE]
    assert compare_recorded(rec, rec) == []
    changed = json.loads(json.dumps(rec))
    key = sorted(changed["episodes"])[0]
    changed["episodes"][key]["actions"] = "0" * 64
    changed["overall"]["normalized_reward"]["value"] += 0.05
    diffs = compare_recorded(rec, changed)
    assert any(key in d and "actions differ" in d for d in diffs)
    assert any("normalized_reward" in d for d in diffs)
    assert compare_recorded(rec, changed, tol=0.1, max_episodes_changed=1) == []
    assert Path(reference_root()).is_dir()
