"""Real-time evaluation through the policy server: ``evaluate`` with
``remote://...`` and ``realtime=True`` records the true decision latency of every chunk per
episode line and pooled over the run in ``results.json`` (resume included); other policies
record none."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from chimein.agents.server import PolicyServer, ServerThread
from chimein.envs.rollout import rollout
from chimein.eval.episodes import EPISODES, latency_summary, merged_latency, read_episodes
from chimein.eval.runner import PolicySpec, evaluate

# short scenes (about 4-5 s): a real-time run takes the scenes' duration in wall-clock time
TINY = dict(name="tiny-rt", revision=0, description="", seed=1, families=("addressed",),
            tiers={"clean": {"difficulty": "easy", "lead_s": [0.0, 0.1], "tail_s": [0.1, 0.3],
                             "distractor_rate": 0.0, "speech_rate": [350, 450], "pause_s": [0.05, 0.1]}})


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    from chimein.eval.suites import SuiteDef, materialize

    d = tmp_path_factory.mktemp("suite")
    return materialize(SuiteDef(**TINY, scenes={"default": 3}), cache_dir=d, workers=1, progress=False)


def _steps(eps) -> int:
    return sum(e.n_steps for e in eps)


def test_realtime_eval_records_decision_latency_per_chunk_and_resumes(suite, tmp_path) -> None:
    out = tmp_path / "served"
    with ServerThread(PolicyServer("energy-endpoint", port=0, max_streams=8)) as st:
        spec = PolicySpec(st.url, {"realtime": True})
        # the 3 scenes in one batch: the shorter ones end first, and the chunks the runner still
        # sends for them (padding) must not count
        res1 = evaluate(spec, suite, out=out, workers=1, batch_size=3, progress=False, report=False,
                        resamples=10)
        lines = read_episodes(out / EPISODES)
        assert len(lines) == 3 and len({e.n_steps for e in lines}) > 1
        # drop one episode line: the next run plays it again and reads the other two back
        keep = lines[:2]
        (out / EPISODES).write_text("".join(e.to_json() + "\n" for e in keep))
        res = evaluate(spec, suite, out=out, workers=1, batch_size=3, progress=False, report=True,
                       examples=0, resamples=10)
    assert res["timing"]["episodes_run"] == 1 and res["timing"]["episodes_resumed"] == 2
    lines = read_episodes(out / EPISODES)
    steps = _steps(lines)
    for e in lines:  # per episode: one latency per decision step of that episode
        lat = e.meta["decision_latency_ms"]
        assert lat["n"] == e.n_steps == len(e.outcome.step_rewards) == len(e.decision_latencies_ms)
        assert 0 < lat["p50"] <= lat["p99"] <= lat["max"]  # the figures: benchmarks/bench_server.py
    for r in (res1, res):  # overall: pooled over all chunks of the run (resumed episodes too)
        lat = r["decision_latency_ms"]
        assert lat["n"] == steps and lat["episodes"] == 3
        assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    pooled = [x for e in lines for x in e.decision_latencies_ms]
    assert res["decision_latency_ms"]["p99"] == pytest.approx(float(np.percentile(pooled, 99)), abs=1e-3)
    saved = json.loads((out / "results.json").read_text())
    assert saved["decision_latency_ms"] == res["decision_latency_ms"]
    assert "real-time decision latency" in (out / "report.md").read_text()

    # simulated metrics are those of the in-process policy; it records no latency
    local = evaluate("energy-endpoint", suite, out=tmp_path / "local", workers=1, batch_size=3,
                     progress=False, report=False, resamples=10)
    assert local["metrics"] == res["metrics"]
    assert "decision_latency_ms" not in local
    assert "decision_latency_ms" not in json.loads((tmp_path / "local" / "results.json").read_text())
    assert all("decision_latency_ms" not in e.meta and e.decision_latencies_ms is None
               for e in read_episodes(tmp_path / "local" / EPISODES))


def test_latency_attribution_skips_finished_streams() -> None:
    """A fake latency-recording policy: per-stream values land on the streams still playing."""
    from chimein.agents.baselines import AlwaysWait
    from chimein.envs.sources import SyntheticSource

    class Timed(AlwaysWait):
        def __init__(self) -> None:
            super().__init__()
            self.latencies_ms: list[float] = []
            self.calls = 0

        def act(self, obs):
            self.calls += 1
            n = len(obs["audio"])
            self.latencies_ms.extend(float(1000 * i + self.calls) for i in range(n))
            return super().act(obs)

    src = SyntheticSource(duration_s=(2.0, 4.0))
    scenes = [src.load(k) for k in (1, 2, 3)]
    pol = Timed()
    infos = rollout(scenes, pol)
    assert pol.calls == max(i.n_steps for i in infos) > min(i.n_steps for i in infos)
    for i, info in enumerate(infos):
        assert info.decision_latencies_ms == tuple(1000.0 * i + k for k in range(1, info.n_steps + 1))
    assert latency_summary([])["n"] == 0
    assert merged_latency([replace(infos[0], decision_latencies_ms=None)]) is None  # none recorded: no summary
