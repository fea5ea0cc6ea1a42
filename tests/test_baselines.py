"""Tests of chimein.agents: the Policy interface, the baselines, the VADs and the registry."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from chimein.agents import (
    POLICY_NAMES,
    AlwaysWait,
    EnergyEndpoint,
    Oracle,
    Policy,
    RandomPolicy,
    make_policy,
)
from chimein.agents.baselines import Endpointer
from chimein.agents.vad import EnergyVAD, StreamFramer, frame_features
from chimein.errors import ConfigError, RemoteError, SpecError
from chimein.scenes.spec import Annotations, Cue, Mics, Room, SceneSpec

SR = 16000
CHUNK_S = 0.08
CHUNK = int(CHUNK_S * SR)


# --------------------------------------------------------------------------------------------
# Synthetic signals
# --------------------------------------------------------------------------------------------
def noise(n: int, level_db: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n) * 10 ** (level_db / 20)).astype(np.float32)


def set_level(x: np.ndarray, level_db: float) -> np.ndarray:
    return (x / np.sqrt(np.mean(x.astype(np.float64) ** 2)) * 10 ** (level_db / 20)).astype(np.float32)


def speechlike(dur_s: float, seed: int = 0, level_db: float = -26.0) -> np.ndarray:
    """Voiced 'speech': gliding F0 harmonics shaped by three formants, 4 Hz syllables."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(dur_s * SR)) / SR
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = np.zeros_like(t)
    formants = np.array([500.0, 1500.0, 2500.0])
    for k in range(1, 30):
        fk = k * 130.0
        amp = sum(np.exp(-0.5 * ((fk - f) / 120.0) ** 2) for f in formants) + 0.02
        x += amp / k**0.5 * np.sin(k * phase)
    envelope = 0.55 - 0.45 * np.cos(2 * np.pi * 4.0 * t)  # syllables, never fully silent
    return set_level(x * envelope, level_db)


def beeps(dur_s: float, freq: float = 3000.0, on_s: float = 0.5, level_db: float = -26.0) -> np.ndarray:
    t = np.arange(int(dur_s * SR)) / SR
    return set_level(np.sin(2 * np.pi * freq * t) * ((t % (2 * on_s)) < on_s), level_db)


def scene_audio(total_s: float, items: list[tuple[float, np.ndarray]], seed: int = 0) -> np.ndarray:
    """Background noise at -60 dBFS plus signals placed at onsets (seconds)."""
    y = noise(int(total_s * SR), -60.0, seed)
    for onset, x in items:
        i = int(onset * SR)
        y[i:i + len(x)] += x[: len(y) - i]
    return y


def stream_actions(policy: Policy, signals: list[np.ndarray], speaking: np.ndarray | None = None) -> np.ndarray:
    """Run equal-length signals as a batch; actions ``(n_chunks, n_streams)``."""
    n = len(signals)
    y = np.stack(signals)
    policy.reset(n)
    out = []
    for k in range(y.shape[1] // CHUNK):
        obs = {
            "audio": y[:, k * CHUNK:(k + 1) * CHUNK, None],
            "assistant_speaking": np.zeros(n, np.int64) if speaking is None else speaking[:, k],
            "time_since_spoke": np.zeros((n, 1), np.float32),
        }
        actions, probs = policy.act(obs)
        assert actions.dtype == np.int64 and actions.shape == (n,)
        assert probs.dtype == np.float32 and probs.shape == (n, 3)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
        out.append(actions)
    return np.array(out)


def action_times(actions: np.ndarray) -> list[tuple[float, int]]:
    """(decision time, action) of the non-WAIT entries of one stream's action column."""
    return [(round((k + 1) * CHUNK_S, 3), int(a)) for k, a in enumerate(actions) if a != 0]


def make_spec(cues: list[Cue], duration_s: float = 10.0, sid: str = "s0", seed: int = 0) -> SceneSpec:
    return SceneSpec(id=sid, seed=seed, duration_s=duration_s, room=Room(dims=(4.0, 3.0, 2.5)),
                     mics=Mics(positions=((2.0, 1.5, 1.2),)), sources=(),
                     annotations=Annotations(cues=tuple(cues)))


# --------------------------------------------------------------------------------------------
# Framing and features
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("chunk, frame", [(1280, 512), (1280, 320), (300, 512), (800, 320)])
def test_framer_reassembles_the_stream(chunk: int, frame: int) -> None:
    x = noise(chunk * 9, -20, 1)
    fr = StreamFramer(frame)
    fr.reset(1)
    got = []
    for k in range(9):
        frames, valid = fr.push(x[None, k * chunk:(k + 1) * chunk])
        got.extend(frames[0, valid[0]])
    n = len(x) // frame
    np.testing.assert_array_equal(np.array(got), x[: n * frame].reshape(n, frame))


def test_framer_reset_stream_realigns_only_that_stream() -> None:
    fr = StreamFramer(512)
    fr.reset(2)
    fr.push(np.ones((2, 1280), np.float32))  # both streams now hold 256 samples
    fr.reset_stream(1)
    frames, valid = fr.push(np.full((2, 1280), 2.0, np.float32))
    assert valid.sum(axis=1).tolist() == [3, 2]
    assert frames[0, 0, 0] == 1.0 and frames[0, 0, -1] == 2.0  # 256 old + 256 new samples
    assert (frames[1, 0] == 2.0).all()


def test_features_separate_tones_noise_and_voice() -> None:
    t = np.arange(320) / SR
    tone = np.sin(2 * np.pi * 3000 * t).astype(np.float32)
    f_tone = frame_features(tone[None], SR)
    f_noise = frame_features(noise(320, -20, 0)[None], SR)
    f_voice = frame_features(speechlike(0.5)[3200:3520][None], SR)
    assert f_tone["tonality"][0] > 0.8 and f_tone["peak_hz"][0] == pytest.approx(3000, abs=40)
    assert f_noise["flatness"][0] > 0.4 and f_noise["tonality"][0] < 0.2
    assert f_voice["flatness"][0] < 0.2 and f_voice["high_ratio"][0] < 0.1


def test_energy_vad_floor_tracks_noise_and_hysteresis() -> None:
    vad = EnergyVAD(0.02, SR)
    vad.reset(1)
    y = scene_audio(3.0, [(1.0, speechlike(1.0))])
    fr = StreamFramer(320)
    fr.reset(1)
    frames, valid = fr.push(y[None])
    d = vad.process(frames, valid)
    t = (np.arange(valid.shape[1]) + 1) * 0.02
    assert not d.active[0, t < 0.98].any()  # background noise alone is never active
    assert d.active[0, (t > 1.05) & (t < 1.95)].mean() > 0.95
    assert d.speech[0, (t > 1.2) & (t < 1.95)].all()
    assert not d.active[0, t > 2.1].any()


# --------------------------------------------------------------------------------------------
# EnergyEndpoint
# --------------------------------------------------------------------------------------------
def test_energy_endpoint_responds_700ms_after_speech_ends() -> None:
    y = scene_audio(5.0, [(1.0, speechlike(1.5))])  # speech 1.0-2.5 s
    acts = stream_actions(EnergyEndpoint(chunk_s=CHUNK_S), [y])[:, 0]
    events = action_times(acts)
    assert len(events) == 1 and events[0][1] == 1
    assert 2.5 + 0.7 - 0.06 <= events[0][0] <= 2.5 + 0.7 + CHUNK_S + 1e-9


def test_energy_endpoint_timeout_is_configurable() -> None:
    y = scene_audio(5.0, [(1.0, speechlike(1.5))])
    acts = stream_actions(EnergyEndpoint(chunk_s=CHUNK_S, silence_timeout_s=0.3), [y])[:, 0]
    events = action_times(acts)  # the envelope fades in the last ~50 ms: speech ends ~2.45 s
    assert len(events) == 1 and 2.5 + 0.3 - 0.06 <= events[0][0] <= 2.5 + 0.3 + CHUNK_S


def test_energy_endpoint_intervenes_once_on_a_beep_pattern() -> None:
    y = scene_audio(6.0, [(1.0, beeps(3.0))])  # 3 kHz, 0.5 s on / 0.5 s off
    events = action_times(stream_actions(EnergyEndpoint(chunk_s=CHUNK_S), [y])[:, 0])
    assert len(events) == 1 and events[0][1] == 2
    assert 1.0 + 0.2 <= events[0][0] <= 1.0 + 0.2 + CHUNK_S + 1e-9
    # a second pattern after the release time is a new event
    y2 = scene_audio(8.0, [(1.0, beeps(1.0)), (5.0, beeps(1.0, freq=1000.0))])
    events2 = action_times(stream_actions(EnergyEndpoint(chunk_s=CHUNK_S), [y2])[:, 0])
    assert [a for _, a in events2] == [2, 2]


@pytest.mark.parametrize("signal", ["zeros", "noise"])
def test_energy_endpoint_waits_on_silence(signal: str) -> None:
    y = np.zeros(4 * SR, np.float32) if signal == "zeros" else noise(4 * SR, -45, 3)
    acts = stream_actions(EnergyEndpoint(chunk_s=CHUNK_S), [y])
    assert (acts == 0).all()


def test_energy_endpoint_holds_actions_while_assistant_speaks() -> None:
    y = scene_audio(6.0, [(1.0, speechlike(1.5))])
    n_chunks = len(y) // CHUNK
    speaking = np.zeros((1, n_chunks), np.int64)
    t_end = (np.arange(n_chunks) + 1) * CHUNK_S
    speaking[0, (t_end > 3.0) & (t_end < 4.0)] = 1  # busy when the timeout expires (~3.2 s)
    events = action_times(stream_actions(EnergyEndpoint(chunk_s=CHUNK_S), [y], speaking)[:, 0])
    assert events == [(4.0, 1)]
    # its own voice (speech heard while speaking) does not open a turn
    speaking[:] = 0
    speaking[0, (t_end > 0.9) & (t_end < 2.7)] = 1
    assert (stream_actions(EnergyEndpoint(chunk_s=CHUNK_S), [y], speaking) == 0).all()


def test_energy_endpoint_batch_equals_single_streams_and_reset_stream() -> None:
    sigs = [scene_audio(6.0, [(1.0, speechlike(1.5, seed=1))], seed=1),
            scene_audio(6.0, [(0.5, beeps(1.0))], seed=2),
            scene_audio(6.0, [(2.0, speechlike(0.8, seed=3)), (4.0, beeps(0.6, freq=2000.0))], seed=3),
            np.zeros(6 * SR, np.float32)]
    policy = EnergyEndpoint(chunk_s=CHUNK_S)
    batched = stream_actions(policy, sigs)
    for i, s in enumerate(sigs):
        np.testing.assert_array_equal(batched[:, i], stream_actions(policy, [s])[:, 0])
    assert [len(action_times(batched[:, i])) for i in range(4)] == [1, 1, 2, 0]

    # reset_stream(1) mid-run: stream 0 is unaffected, stream 1 restarts from scratch
    k_reset = 13  # 1.04 s
    second = sigs[0][: len(sigs[0]) - k_reset * CHUNK]
    policy.reset(2)
    acts0, acts1 = [], []
    for k in range(len(sigs[0]) // CHUNK):
        if k == k_reset:
            policy.reset_stream(1)
        x1 = sigs[1][k * CHUNK:(k + 1) * CHUNK] if k < k_reset else second[(k - k_reset) * CHUNK:(k - k_reset + 1) * CHUNK]
        if len(x1) < CHUNK:
            break
        a, _ = policy.act({"audio": np.stack([sigs[0][k * CHUNK:(k + 1) * CHUNK], x1])[:, :, None]})
        acts0.append(a[0])
        acts1.append(a[1])
    alone0 = stream_actions(policy, [sigs[0]])[: len(acts0), 0]
    np.testing.assert_array_equal(acts0, alone0)
    fresh1 = stream_actions(policy, [second])[:, 0]
    np.testing.assert_array_equal(acts1[k_reset:], fresh1[: len(acts1) - k_reset])


def test_endpointer_rounds_durations_to_frames() -> None:
    ep = Endpointer(0.02, silence_timeout_s=0.7, min_speech_s=0.1, min_event_s=0.2)
    assert (ep.silence_frames, ep.speech_frames, ep.event_frames) == (35, 5, 10)
    with pytest.raises(SpecError, match="silence_timeout_s"):
        Endpointer(0.02, silence_timeout_s=-1.0)


# --------------------------------------------------------------------------------------------
# Trivial policies and the interface
# --------------------------------------------------------------------------------------------
def test_always_wait_and_interface_checks() -> None:
    p = AlwaysWait(chunk_s=CHUNK_S)
    assert isinstance(p, Policy)
    with pytest.raises(SpecError, match="reset"):
        p.act({"audio": np.zeros((1, CHUNK, 1), np.float32)})
    p.reset(3)
    a, probs = p.act({"audio": np.zeros((3, CHUNK, 2), np.float32)})
    assert a.tolist() == [0, 0, 0] and probs[:, 0].tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(SpecError, match="leading stream axis of 3"):
        p.act({"audio": np.zeros((2, CHUNK, 1), np.float32)})
    with pytest.raises(SpecError, match="exactly one stream"):
        p.act_one({"audio": np.zeros((CHUNK, 1), np.float32)})
    p.reset(1)
    action, pr = p.act_one({"audio": np.zeros((CHUNK, 1), np.float32), "assistant_speaking": 0,
                            "time_since_spoke": np.zeros(1, np.float32)})
    assert action == 0 and pr.shape == (3,)
    with pytest.raises(SpecError, match="specs"):
        p.reset(2, [None])
    with pytest.raises(SpecError, match="out of range"):
        p.reset_stream(5)


def test_format_validation() -> None:
    with pytest.raises(ConfigError, match="whole number of samples"):
        AlwaysWait(chunk_s=0.0801)
    with pytest.raises(ConfigError, match="obs_mode"):
        EnergyEndpoint(obs_mode="logmel")
    with pytest.raises(ConfigError, match="obs_mode"):
        AlwaysWait(obs_mode="spectrogram")
    p = EnergyEndpoint(chunk_s=0.2)
    p.reset(1)
    with pytest.raises(SpecError, match="'audio'"):
        p.act({"logmel": np.zeros((1, 20, 64), np.float32)})
    with pytest.raises(SpecError, match="NaN"):
        p.act({"audio": np.full((1, 3200, 1), np.nan, np.float32)})
    with pytest.raises(SpecError, match="configured for 3200"):
        p.act({"audio": np.zeros((1, 1280, 1), np.float32)})
    p.configure(0.04, 16000, "audio")
    assert p.chunk_samples == 640 and p.n_streams == 0
    with pytest.raises(SpecError, match="EnergyVAD"):
        EnergyEndpoint(not_a_threshold=1.0)


def test_random_policy_is_deterministic_per_seed() -> None:
    obs = {"assistant_speaking": np.zeros(4, np.int64)}

    def run(seed: int, specs: list[SceneSpec | None] | None = None) -> np.ndarray:
        p = RandomPolicy(rate=0.3, intervene_fraction=0.5, seed=seed)
        p.reset(4, specs)
        return np.array([p.act(obs)[0] for _ in range(200)])

    a = run(0)
    np.testing.assert_array_equal(a, run(0))
    assert not np.array_equal(a, run(1))
    assert not np.array_equal(a[:, 0], a[:, 1])  # streams are independent
    frac = (a != 0).mean()
    assert 0.25 < frac < 0.35 and 0.4 < (a == 2).sum() / (a != 0).sum() < 0.6
    p = RandomPolicy(rate=0.3, intervene_fraction=0.25)
    p.reset(2)
    np.testing.assert_allclose(p.act({"x": np.zeros((2, 1))})[1][0], [0.7, 0.225, 0.075], rtol=1e-6)
    # with specs, a scene's actions do not depend on its position in the batch
    specs = [make_spec([], sid=f"s{i}", seed=i) for i in range(4)]
    b = run(0, specs)
    c = run(0, specs[::-1])
    np.testing.assert_array_equal(b, c[:, ::-1])
    # reset_stream gives stream i a new episode and leaves the others alone
    p = RandomPolicy(rate=0.5, seed=0)
    p.reset(2)
    first = np.array([p.act({"assistant_speaking": np.zeros(2)})[0] for _ in range(50)])
    p.reset_stream(1)
    after = np.array([p.act({"assistant_speaking": np.zeros(2)})[0] for _ in range(50)])
    q = RandomPolicy(rate=0.5, seed=0)
    q.reset(2)
    both = np.array([q.act({"assistant_speaking": np.zeros(2)})[0] for _ in range(100)])
    np.testing.assert_array_equal(both[:50], first)
    np.testing.assert_array_equal(both[50:, 0], after[:, 0])
    assert not np.array_equal(both[50:, 1], after[:, 1])
    p0 = RandomPolicy(rate=0.0)
    p0.reset(3)
    assert all((p0.act({"a": np.zeros((3, 1))})[0] == 0).all() for _ in range(100))


# --------------------------------------------------------------------------------------------
# Oracle
# --------------------------------------------------------------------------------------------
def run_oracle(oracle: Oracle, specs: list[SceneSpec], n_chunks: int,
               speaking: np.ndarray | None = None) -> np.ndarray:
    n = len(specs)
    oracle.reset(n, specs)
    out = []
    for k in range(n_chunks):
        sp = np.zeros(n, np.int64) if speaking is None else speaking[:, k]
        out.append(oracle.act({"assistant_speaking": sp})[0])
    return np.array(out)


def test_oracle_acts_at_window_starts() -> None:
    cues = [Cue(id="q", expected="RESPOND", window=(0.8, 3.0), label="question"),
            Cue(id="alarm", expected="INTERVENE", window=(4.05, 6.0), label="smoke", safety_critical=True),
            Cue(id="tv", expected="IGNORE", window=(6.5, 8.0), label="tv")]
    acts = run_oracle(Oracle(chunk_s=0.1), [make_spec(cues)], 100)[:, 0]
    # 0.8 is a chunk end; 4.05 is not: the first chunk end >= 4.05 is 4.1
    assert [(round((k + 1) * 0.1, 3), int(a)) for k, a in enumerate(acts) if a] == [(0.8, 1), (4.1, 2)]


def test_oracle_spacing_deferral_and_deadlines() -> None:
    cues = [Cue(id="a", expected="RESPOND", window=(1.0, 5.0), label="q1"),
            Cue(id="b", expected="INTERVENE", window=(1.5, 2.5), label="alarm"),  # ends first
            Cue(id="c", expected="RESPOND", window=(2.0, 2.9), label="q2")]  # unreachable
    acts = run_oracle(Oracle(chunk_s=0.1, speak_s=1.0), [make_spec(cues)], 60)[:, 0]
    got = [(round((k + 1) * 0.1, 3), int(a)) for k, a in enumerate(acts) if a]
    # 1.0: RESPOND (only a is open); 2.0: b ends before c, both open -> INTERVENE; c is lost
    # (it closes at 2.9 < 3.0); nothing else is open, so no more actions
    assert got == [(1.0, 1), (2.0, 2)]
    # the env says the assistant is still speaking at 1.0-1.3: the oracle waits until 1.4
    speaking = np.zeros((1, 60), np.int64)
    speaking[0, 9:13] = 1
    acts = run_oracle(Oracle(chunk_s=0.1, speak_s=0.0), [make_spec(cues)], 60, speaking)[:, 0]
    got = [(round((k + 1) * 0.1, 3), int(a)) for k, a in enumerate(acts) if a]
    assert got == [(1.4, 1), (1.5, 2), (2.0, 1)]


def test_oracle_batches_reset_stream_and_needs_specs() -> None:
    s1 = make_spec([Cue(id="x", expected="RESPOND", window=(0.5, 1.0), label="")], sid="a")
    s2 = make_spec([Cue(id="y", expected="INTERVENE", window=(0.3, 1.0), label="")], sid="b")
    o = Oracle(chunk_s=CHUNK_S)
    both = run_oracle(o, [s1, s2], 20)
    np.testing.assert_array_equal(both[:, 0], run_oracle(o, [s1], 20)[:, 0])
    np.testing.assert_array_equal(both[:, 1], run_oracle(o, [s2], 20)[:, 0])
    o.reset(2, [s1, s2])
    for _ in range(20):
        o.act({"assistant_speaking": np.zeros(2)})
    o.reset_stream(1, s1)
    acts = np.array([o.act({"assistant_speaking": np.zeros(2)})[0] for _ in range(20)])
    assert (acts[:, 0] == 0).all()
    np.testing.assert_array_equal(acts[:, 1], run_oracle(o, [s1], 20)[:, 0])
    with pytest.raises(SpecError, match="scene spec"):
        Oracle().reset(1)
    with pytest.raises(SpecError, match="speak_s"):
        Oracle(speak_s=-1.0)


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------
def test_registry_resolves_names_and_explains_errors(tmp_path) -> None:
    assert POLICY_NAMES == ("always-wait", "random", "energy-endpoint", "silero-endpoint", "ten-vad-endpoint",
                            "smart-turn", "chimein-lm", "chimein-lm-sup", "oracle")
    for name in ("always-wait", "random", "energy-endpoint", "oracle"):
        p = make_policy(name, chunk_s=0.16)
        assert p.name == name and p.chunk_s == 0.16 and isinstance(p, Policy)
    assert make_policy("Energy_Endpoint", silence_timeout_s=0.5).endpointer.silence_frames == 25
    with pytest.raises(SpecError, match="valid names: always-wait, random") as e:
        make_policy("enrgy-endpoint")
    assert "remote://" in str(e.value)
    # the closest name, and no claim that checkpoints and remote:// are unsupported (both work)
    assert "did you mean 'energy-endpoint'?" in str(e.value)
    assert "checkpoint directory" in str(e.value) and "later versions" not in str(e.value)
    with pytest.raises(SpecError, match="unknown policy name") as e:
        make_policy("xyzzy")
    assert "did you mean" not in str(e.value)
    with pytest.raises(SpecError, match="not a (chimein )?checkpoint"):
        make_policy(str(tmp_path))
    with pytest.raises(SpecError, match="no such file"):
        make_policy("./missing/ckpt")
    with pytest.raises(ConfigError, match="remote://HOST:PORT"):
        make_policy("remote://localhost")
    with pytest.raises(RemoteError, match="cannot connect"):  # nothing listens on port 1
        make_policy("remote://127.0.0.1:1").reset(1)
    with pytest.raises(SpecError, match="bad arguments"):
        make_policy("random", speed=3)


# --------------------------------------------------------------------------------------------
# Silero
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def silero_policy():
    pytest.importorskip("silero_vad", reason="silero-vad is not installed")
    from chimein.agents.baselines import SileroEndpoint

    return SileroEndpoint(chunk_s=CHUNK_S)


def test_silero_loads_offline_and_matches_the_packaged_wrapper(monkeypatch, silero_policy) -> None:
    import torch

    from chimein.agents.vad import SileroVAD

    def no_network(*args, **kwargs):
        raise AssertionError("silero-endpoint tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    threads = torch.get_num_threads()
    vad = SileroVAD(SR)
    assert torch.get_num_threads() == threads
    x = scene_audio(1.0, [(0.2, speechlike(0.6))])[: 512 * 30]
    vad.reset(1)
    ours = vad.process(x.reshape(1, 30, 512), np.ones((1, 30), bool))[0]
    wrapper = vad.wrapper
    wrapper.reset_states()
    with torch.no_grad():
        ref = np.array([float(wrapper(torch.from_numpy(w), SR)) for w in x.reshape(30, 512)])
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_silero_endpoint_on_espeak_speech(silero_policy) -> None:
    speech_mod = pytest.importorskip("chimein.scenes.speech", reason="espeak speech module not available")
    try:
        s = speech_mod.synthesize("could you set a timer for ten minutes please", voice="en-us")
    except Exception as e:  # espeak-ng library missing on this machine
        pytest.skip(f"espeak synthesis unavailable: {e}")
    sp = set_level(np.asarray(s.audio, np.float32), -26.0)
    end = 1.0 + len(sp) / SR
    y1 = scene_audio(end + 1.5, [(1.0, sp)], seed=5)
    y2 = scene_audio(end + 1.5, [(1.0, beeps(1.5))], seed=6)
    acts = stream_actions(silero_policy, [y1, y2])
    ev1, ev2 = action_times(acts[:, 0]), action_times(acts[:, 1])
    assert len(ev1) == 1 and ev1[0][1] == 1 and end + 0.7 <= ev1[0][0] <= end + 0.7 + 0.2
    assert len(ev2) == 1 and ev2[0][1] == 2 and 1.2 <= ev2[0][0] <= 1.4
    np.testing.assert_array_equal(acts[:, 0], stream_actions(silero_policy, [y1])[:, 0])
    np.testing.assert_array_equal(acts[:, 1], stream_actions(silero_policy, [y2])[:, 0])
    assert (stream_actions(silero_policy, [np.zeros(2 * SR, np.float32)]) == 0).all()


def test_importing_agents_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, chimein.agents; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
