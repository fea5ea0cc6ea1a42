"""The field's own turn detectors as policies: Pipecat's Smart Turn stack and the TEN VAD endpointer.

Both are optional extras; without them these tests are skipped, unless ``CHIMEIN_REQUIRE_PEERS=1``
(set by ``make test``) makes that a failure. The Smart Turn test pins the stack's decisions, its
times and Smart Turn's probabilities on seeded scenes, so that an upgrade of the ``pipecat-ai``
wheel that changes behaviour is noticed (update the pins, and the leaderboard, deliberately).
"""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

import numpy as np
import pytest

from chimein.agents import make_policy
from chimein.errors import ConfigError, SpecError

CH = 1280  # 80 ms at 16 kHz


def _need(module: str, extra: str) -> None:
    """Skip without ``module``, or fail when ``CHIMEIN_REQUIRE_PEERS=1``."""
    if importlib.util.find_spec(module) is not None:
        return
    msg = f"the '{extra}' extra is not installed (pip install 'chimein[{extra}]')"
    if os.environ.get("CHIMEIN_REQUIRE_PEERS") == "1":
        pytest.fail(msg + "; CHIMEIN_REQUIRE_PEERS=1")
    pytest.skip(msg)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> list:
    """An addressed scene and a scene with mid-turn pauses (easy, seeded)."""
    from chimein.eval.suites import SuiteDef, materialize

    d = SuiteDef(name="peers", revision=0, description="", seed=7, families=("addressed", "pauses"),
                 tiers={"clean": {"difficulty": "easy"}}, scenes={"default": 1})
    m = materialize(d, cache_dir=tmp_path_factory.mktemp("peers"), workers=1, progress=False)
    return [m.dataset("clean/addressed").load(0), m.dataset("clean/pauses").load(0)]


def _mono(scene) -> np.ndarray:
    x = np.asarray(scene.audio, np.float32)
    return x[:, 0] if x.ndim == 2 else x


def _play(policy, audios: list[np.ndarray]) -> np.ndarray:
    """Actions ``(n, k)`` of ``policy`` on streams cut to the shortest, in 80 ms chunks, together."""
    k = min(len(a) for a in audios) // CH
    x = np.stack([a[: k * CH] for a in audios])
    policy.configure(0.08, 16000, "audio")
    policy.reset(len(audios))
    return np.stack([policy.act({"audio": x[:, j * CH:(j + 1) * CH, None]})[0] for j in range(k)], 1)


def _together_and_alone(name: str, scenes: list, **kw) -> tuple[np.ndarray, np.ndarray]:
    """Actions of policy ``name`` on the scenes (cut to one length) played as one batch, and
    each played alone: equal when every stream keeps its own state."""
    n = min(len(_mono(s)) for s in scenes)
    audios = [_mono(s)[:n] for s in scenes]
    alone = np.concatenate([_play(make_policy(name, **kw), [a]) for a in audios])
    return _play(make_policy(name, **kw), audios), alone


# ------------------------------------------------------------------------------ no extra
def test_a_missing_extra_is_named(monkeypatch) -> None:
    import chimein.agents.peers._common as common

    def fail(name: str):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(common.importlib, "import_module", fail)
    with pytest.raises(ConfigError, match=r"needs the 'smart-turn' extra.*--no-deps pipecat-ai==1.14.0"):
        make_policy("smart-turn")
    with pytest.raises(ConfigError, match=r"'ten-vad' extra"):
        make_policy("ten-vad-endpoint")


# ------------------------------------------------------------------------------ TEN VAD
def test_ten_vad_endpoint_is_the_silero_rule_with_another_vad(scenes) -> None:
    _need("ten_vad", "ten-vad")
    ten, sil = make_policy("ten-vad-endpoint"), make_policy("silero-endpoint")
    assert ten.endpoint_options == sil.endpoint_options
    assert (ten.threshold, ten.neg_threshold) == (sil.threshold, sil.neg_threshold) == (0.5, 0.35)
    assert ten.framer.frame_len == 256 and sil.framer.frame_len == 512
    # speech scores high, silence low
    vad = ten.vad
    vad.reset(2)
    speech = _mono(scenes[0])
    on = scenes[0].spec.annotations.spans[0].start_s
    seg = speech[int(on * 16000): int(on * 16000) + 256 * 60].reshape(1, 60, 256)
    frames = np.concatenate([seg, np.zeros_like(seg)])
    p = vad.process(frames, np.ones((2, 60), bool))
    assert np.nanmean(p[0]) > 0.5 and np.nanmax(p[1]) < ten.neg_threshold
    with pytest.raises(SpecError, match="16000 Hz"):
        ten.configure(0.08, 8000, "audio")


def test_ten_vad_endpoint_answers_turns_and_streams_are_independent(scenes) -> None:
    _need("ten_vad", "ten-vad")
    together, alone = _together_and_alone("ten-vad-endpoint", scenes)
    assert np.array_equal(together, alone)
    assert (together == 1).any(axis=1).all()  # every scene's turn is answered


# ------------------------------------------------------------------------------ Smart Turn
#: Pinned on pipecat-ai 1.14.0: per scene, the RESPOND decisions (chunk indices) and the stack's
#: events (kind, time, Smart Turn probability rounded to 2 decimals).
PINNED: dict[str, dict] = {
    "addressed": {"respond": [47], "events": [("start", 1.44, None), ("stop", 3.84, 0.99)]},
    "pauses": {"respond": [50, 80, 114], "events": [
        ("start", 2.22, None), ("stop", 4.04, 0.94), ("start", 5.42, None), ("stop", 6.48, 0.97),
        ("start", 7.14, None), ("stop", 9.2, 0.99)]},
}


def test_smart_turn_stack_pinned_on_seeded_scenes(scenes) -> None:
    _need("pipecat", "smart-turn")
    from chimein.agents.peers.smart_turn import PIPECAT_VERSION

    assert importlib.metadata.version("pipecat-ai") == PIPECAT_VERSION
    for scene in scenes:
        policy = make_policy("smart-turn")
        acts = _play(policy, [_mono(scene)])[0]
        got = {"respond": np.flatnonzero(acts == 1).tolist(),
               "events": [(e.kind, round(e.t, 2), None if e.probability is None else round(e.probability, 2))
                          for e in policy.events[0]]}
        print(scene.spec.family, got)
        want = PINNED[scene.spec.family]
        assert got["respond"] == want["respond"]
        assert [e[:2] for e in got["events"]] == [e[:2] for e in want["events"]]
        for (_, _, p), (_, _, q) in zip(got["events"], want["events"], strict=True):
            assert (p is None) == (q is None) and (p is None or abs(p - q) <= 0.02)  # int8 kernels per CPU


def test_smart_turn_never_intervenes_streams_are_independent_and_options_are_checked(scenes) -> None:
    _need("pipecat", "smart-turn")
    together, alone = _together_and_alone("smart-turn", scenes)
    assert np.array_equal(together, alone)
    assert not (together == 2).any() and (together == 1).any()
    # a later candidate stop (longer VAD stop) answers later or not at all
    slow = _play(make_policy("smart-turn", vad_stop_s=0.6), [_mono(scenes[0])[: together.shape[1] * CH]])[0]
    assert np.flatnonzero(slow == 1)[0] > np.flatnonzero(together[0] == 1)[0]
    for bad in ({"threshold": 1.5}, {"vad_stop_s": -1}, {"max_duration_s": 9.0}):
        with pytest.raises(SpecError, match=next(iter(bad))):
            make_policy("smart-turn", **bad)
    with pytest.raises(ConfigError, match="16000 Hz"):
        make_policy("smart-turn", sample_rate=8000)
    with pytest.raises(ConfigError, match="frame_ms"):
        make_policy("smart-turn", frame_ms=30.0)


def test_smart_turn_incomplete_waits_for_more_speech_or_the_fallback(scenes, monkeypatch) -> None:
    """With Smart Turn saying "incomplete" at every stop, the turn ends only by the fallback,
    ``stop_s`` of silence after the last VAD stop, and a resumed turn is scored on all of it."""
    _need("pipecat", "smart-turn")
    policy = make_policy("smart-turn", stop_s=2.5)
    seen: list[int] = []

    def incomplete(audio: np.ndarray) -> dict:
        seen.append(len(audio))
        return {"prediction": 0, "probability": 0.1}

    monkeypatch.setattr(policy._model, "_predict_endpoint", incomplete)
    acts = _play(policy, [_mono(scenes[1])])[0]
    ev = policy.events[0]
    stops = [e for e in ev if e.kind == "stop"]
    assert len(stops) == 3 and not any(e.complete for e in stops)
    assert seen[0] < seen[1] < seen[2]  # the same turn, growing: no clear between the stops
    fallback = [e for e in ev if e.kind == "fallback"]
    assert len(fallback) == 1 and fallback[0].t == pytest.approx(stops[-1].t + 2.5, abs=1e-6)  # counted from the frame after the stop
    assert np.flatnonzero(acts == 1).tolist() == [math.ceil(fallback[0].t / 0.08 - 1e-9) - 1]  # its chunk


def test_smart_turn_is_served_like_any_policy() -> None:
    _need("pipecat", "smart-turn")
    from chimein.agents.server import PolicyServer, ServerThread

    rng = np.random.default_rng(3)
    t = np.arange(40 * CH) / 16000
    voiced = (0.2 * np.sin(2 * np.pi * 140 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    audio = np.stack([voiced * (t < 1.5), voiced * (t < 2.0)]) + rng.normal(0, 1e-3, (2, len(t))).astype(np.float32)
    ref = _play(make_policy("smart-turn"), list(audio))
    with ServerThread(PolicyServer("smart-turn", port=0, max_streams=4)) as st:
        pol = make_policy(st.url)
        got = _play(pol, list(audio))
        pol.close()
    assert np.array_equal(got, ref)


def test_peers_are_listed_with_their_extras() -> None:
    from chimein.agents.registry import PEER_EXTRAS, POLICY_NAMES, missing_extra

    assert set(PEER_EXTRAS) <= set(POLICY_NAMES)
    for name, (module, extra) in PEER_EXTRAS.items():
        assert missing_extra(name) == (None if importlib.util.find_spec(module) else extra)
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    constraints = (Path(__file__).parents[1] / "constraints.txt").read_text()
    assert "smart-turn = [" in pyproject and "pipecat-ai==1.14.0" in constraints
    assert "--no-deps" in (Path(__file__).parents[1] / "Makefile").read_text()
    assert 'ten-vad = ["ten-vad==1.0.6.9"]' in pyproject and "ten-vad==1.0.6.9" in constraints
