"""Rendering, RIR computation/caching and augmentation (chimein.scenes.render/rir/augment)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyroomacoustics as pra
import pytest
import soundfile as sf

from chimein.errors import AudioError, SpecError
from chimein.scenes.augment import build_chain
from chimein.scenes.render import (
    PEAK_LIMIT,
    RenderedScene,
    active_power,
    diffuse_mix,
    render,
    source_signal,
)
from chimein.scenes.rir import RIRCache, compute_rirs, compute_rirs_many, rir_key, room_acoustics
from chimein.scenes.spec import Annotations, Mics, Room, SceneSpec, Source

SR = 16000
ROOM = Room(dims=(5.0, 4.0, 2.7), rt60=0.25)
POSITIONS = ((1.0, 1.0, 1.5), (4.0, 3.0, 1.0), (1.2, 3.5, 2.0), (3.6, 0.8, 1.7))


def _signals(seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic dry test signals: noise bursts and a tone complex, different lengths."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(1.1 * SR)) / SR
    return {
        "a": rng.standard_normal(int(0.5 * SR)).astype(np.float32),
        "b": (np.sin(2 * np.pi * 440 * t) + 0.5 * np.sin(2 * np.pi * 1330 * t)).astype(np.float32),
        "c": (rng.standard_normal(int(0.8 * SR)) * (np.arange(int(0.8 * SR)) % 3200 < 1600)).astype(np.float32),
        "d": rng.uniform(-1, 1, int(0.3 * SR)).astype(np.float32),
        "click": np.r_[1.0, np.zeros(99)].astype(np.float32),
    }


SIGNALS = _signals()


def provider(source: Source, spec: SceneSpec) -> np.ndarray:
    """Injected signal provider: point sources by id, noise from its per-mic seed."""
    if source.kind == "noise":
        n = int(round((source.duration_s or spec.duration_s - source.onset_s) * spec.sample_rate))
        return np.random.default_rng(int(source.audio["seed"])).standard_normal(n).astype(np.float32)
    return SIGNALS[source.id]


def point(sid: str, onset: float, level: float, pos: tuple[float, float, float], **kw: object) -> Source:
    return Source(id=sid, kind="file", role="event", audio={"path": f"{sid}.wav"}, onset_s=onset,
                  level_db=level, position=pos, **kw)  # type: ignore[arg-type]


def scene(sources: tuple[Source, ...], mics: Mics | None = None, duration: float = 2.0,
          room: Room = ROOM, seed: int = 0, augment: tuple[dict, ...] = (), sr: int = SR) -> SceneSpec:
    return SceneSpec(id="t", seed=seed, duration_s=duration, room=room,
                     mics=mics or Mics(positions=((2.5, 2.0, 1.2),)), sources=sources,
                     annotations=Annotations(), augment=augment, sample_rate=sr)


def relerr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


ONE_MIC = Mics(positions=((2.5, 2.0, 1.2),))
THREE_MICS = Mics.array((2.5, 2.0, 1.2), "circular", 3, 0.05)


# --------------------------------------------------------------------------------------------
# Equivalence with pyroomacoustics
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("mics", "n_src", "engine"),
                         [(ONE_MIC, 2, "auto"), (ONE_MIC, 4, "pra"), (THREE_MICS, 3, "auto")])
def test_render_equals_pyroomacoustics_simulate(mics: Mics, n_src: int, engine: str) -> None:
    # onsets are whole samples, so pyroomacoustics' floor(delay * fs) and our rounding agree
    onsets, levels = (0.0, 0.25, 0.6, 1.1), (-20.0, -26.0, -30.0, -24.0)
    srcs = tuple(point(k, o, lv, p) for k, o, lv, p in
                 zip("abcd", onsets, levels, POSITIONS, strict=True))[:n_src]
    spec = scene(srcs, mics)
    out = render(spec, cache=RIRCache(disk=False, engine=engine), signals=provider)  # type: ignore[arg-type]

    e_abs, order = room_acoustics(ROOM)
    room = pra.ShoeBox(list(ROOM.dims), fs=SR, materials=pra.Material(e_abs), max_order=order)
    for s in srcs:
        x = SIGNALS[s.id].astype(np.float64)
        x = (x / np.sqrt(np.mean(x**2)) * 10 ** (s.level_db / 20)).astype(np.float32)
        room.add_source(list(s.position), signal=x, delay=s.onset_s)  # type: ignore[arg-type]
    room.add_microphone_array(np.array(mics.positions).T)
    room.simulate()
    n = out.audio.shape[0]
    ref = np.zeros((mics.n, n))
    sim = room.mic_array.signals[:, :n]
    ref[:, : sim.shape[1]] = sim  # pyroomacoustics stops where the last tail ends
    assert relerr(out.audio.T.astype(np.float64), ref) < 1e-4


def test_fast_engine_matches_pyroomacoustics_compute_rir() -> None:
    rooms = [Room(dims=(4.2, 3.1, 2.6), rt60=0.3), Room(dims=(6.0, 5.0, 3.0), rt60=0.2),
             Room(dims=(3.3, 3.0, 2.5), absorption=0.5, max_order=12, rt60=None)]
    mics = Mics.array((1.6, 1.5, 1.2), "linear", 2, 0.1)
    for room in rooms:
        pos = [(0.7, 0.9, 1.4), (2.9, 2.2, 0.5)]
        fast = compute_rirs_many(room, mics, pos, SR, engine="fast")
        ref = compute_rirs_many(room, mics, pos, SR, engine="pra")
        for a, b in zip(fast, ref, strict=True):
            assert a.shape == b.shape and a.dtype == np.float32
            assert relerr(a, b) < 1e-5


def test_fast_engine_binning_is_the_same_at_once_and_by_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast engine bins a small image ball in one np.bincount and a large one block by
    block with np.add.at: both add in the ball's order, so the RIRs are bit-identical."""
    from chimein.scenes import rir

    room = Room(dims=(3.4, 3.0, 2.5), rt60=0.45)  # order 60: 3 blocks of 2**17 images
    e_abs, order = room_acoustics(room)
    assert rir._ball_size(order) > 2 * rir._CHUNK
    mics = Mics.array((1.6, 1.5, 1.2), "linear", 2, 0.1)
    pos = [(0.7, 0.9, 1.4), (2.9, 2.2, 0.5)]
    once = rir._fast_ism(room.dims, e_abs, order, pos, mics.positions, SR)
    monkeypatch.setattr(rir, "_BALL_MAX", 0)
    blocks = rir._fast_ism(room.dims, e_abs, order, pos, mics.positions, SR)
    for a, b in zip(once, blocks, strict=True):
        assert a.dtype == np.float32 and np.array_equal(a, b)


def test_compute_rirs_direct_path_and_errors() -> None:
    h = compute_rirs(ROOM, ONE_MIC, (1.0, 1.0, 1.5), SR)
    dist = np.linalg.norm(np.subtract((1.0, 1.0, 1.5), ONE_MIC.positions[0]))
    assert abs(int(np.argmax(np.abs(h[0]))) - (dist / 343.0 * SR + 40)) <= 1
    with pytest.raises(SpecError, match="outside the room"):
        compute_rirs(ROOM, ONE_MIC, (9.0, 1.0, 1.0), SR)
    with pytest.raises(SpecError, match="rt60"):
        room_acoustics(Room(dims=(20.0, 20.0, 10.0), rt60=0.05))
    with pytest.raises(SpecError, match="engine"):
        compute_rirs(ROOM, ONE_MIC, (1.0, 1.0, 1.5), SR, engine="gpu")  # type: ignore[arg-type]


def test_ray_tracing_is_seeded() -> None:
    room = Room(dims=(4.0, 3.0, 2.5), rt60=0.2, ray_tracing=True)
    m = Mics(((2.0, 1.5, 1.2),))
    a = compute_rirs(room, m, (1.0, 1.0, 1.5), SR, seed=3)
    assert np.array_equal(a, compute_rirs(room, m, (1.0, 1.0, 1.5), SR, seed=3))
    assert not np.array_equal(a, compute_rirs(room, m, (1.0, 1.0, 1.5), SR, seed=4))
    assert rir_key(room, m, (1.0, 1.0, 1.5), SR, 3) != rir_key(room, m, (1.0, 1.0, 1.5), SR, 4)
    assert rir_key(ROOM, m, (1.0, 1.0, 1.5), SR, 3) == rir_key(ROOM, m, (1.0, 1.0, 1.5), SR, 4)


# --------------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------------
def test_cache_memory_disk_and_corrupt_recovery(tmp_path: Path) -> None:
    pos = POSITIONS[0]
    c1 = RIRCache(tmp_path)
    h = c1.get(ROOM, ONE_MIC, pos, SR)
    assert not h.flags.writeable
    assert np.array_equal(c1.get(ROOM, ONE_MIC, pos, SR), h)
    assert (c1.stats.computed, c1.stats.memory_hits, c1.stats.disk_hits) == (1, 1, 0)
    path = c1.path_for(c1.key(ROOM, ONE_MIC, pos, SR))
    assert path is not None and path.is_file() and path.suffix == ".npy"
    assert np.array_equal(np.load(path, allow_pickle=False), h)  # a plain .npy (+ checksum trailer)

    c2 = RIRCache(tmp_path)  # a new object (or process) reads the disk store
    assert np.array_equal(c2.get(ROOM, ONE_MIC, pos, SR), h)
    assert (c2.stats.computed, c2.stats.disk_hits) == (0, 1)

    good = path.read_bytes()
    for bad in (good[: len(good) // 2], good[:-40] + bytes(40), b"not a numpy file at all",
                good[:200] + bytes([good[200] ^ 1]) + good[201:]):
        path.write_bytes(bad)
        c3 = RIRCache(tmp_path)
        assert np.array_equal(c3.get(ROOM, ONE_MIC, pos, SR), h)
        assert (c3.stats.corrupt, c3.stats.computed) == (1, 1)
        assert path.read_bytes() == good  # replaced by a good file

    # keys depend on what shapes the RIR, not on how numbers are spelled
    assert c1.key(ROOM, ONE_MIC, (1, 1, 1.5), SR) == c1.key(ROOM, ONE_MIC, pos, SR)
    assert c1.key(ROOM, ONE_MIC, pos, 22050) != c1.key(ROOM, ONE_MIC, pos, SR)
    assert c1.key(ROOM, THREE_MICS, pos, SR) != c1.key(ROOM, ONE_MIC, pos, SR)


def test_cache_batch_lru_and_memory_only(tmp_path: Path) -> None:
    c = RIRCache(tmp_path / "mem", disk=False, memory_bytes=80_000)
    hs = c.get_many(ROOM, ONE_MIC, list(POSITIONS) + [POSITIONS[0]], SR)
    assert hs[0] is hs[-1] and (c.stats.computed, c.stats.memory_hits) == (4, 1)
    assert c.memory_used <= 80_000 and 0 < len(c) < 4  # the LRU evicted the oldest
    assert not (tmp_path / "mem").exists()
    for h, p in zip(hs, POSITIONS, strict=False):
        assert np.array_equal(h, compute_rirs(ROOM, ONE_MIC, p, SR))  # batching changes nothing
    with pytest.raises(SpecError):
        RIRCache(disk=False, memory_bytes=-1)


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("duration", "sr"), [(1.00003, 16000), (0.99997, 16000), (1.3, 22050),
                                              (0.0301, 8000)])
def test_exact_output_length(duration: float, sr: int) -> None:
    spec = scene((point("d", 0.0, -20.0, POSITIONS[0]),), duration=duration, sr=sr)
    out = render(spec, signals=provider)
    assert isinstance(out, RenderedScene)
    assert out.audio.shape == (int(round(duration * sr)), 1) and out.audio.dtype == np.float32
    assert out.audio.flags.c_contiguous and out.n_mics == 1 and out.sample_rate == sr


def test_onset_places_the_source() -> None:
    cache = RIRCache(disk=False)
    base = render(scene((point("click", 0.0, -20.0, POSITIONS[0]),)), cache, provider).audio[:, 0]
    shift = 0.5
    k = int(shift * SR)
    late = render(scene((point("click", shift, -20.0, POSITIONS[0]),)), cache, provider).audio[:, 0]
    np.testing.assert_allclose(late[k:], base[:-k], atol=1e-7)
    assert np.all(late[:k] == 0.0)
    # the direct sound peaks after the travel time plus pyroomacoustics' 40-sample offset
    dist = np.linalg.norm(np.subtract(POSITIONS[0], ONE_MIC.positions[0]))
    assert abs(int(np.argmax(np.abs(late))) - (k + dist / 343.0 * SR + 40)) <= 1


def test_duration_crops_and_loops() -> None:
    src_crop = point("b", 0.0, -20.0, POSITIONS[0], duration_s=0.25)
    src_loop = point("d", 0.0, -20.0, POSITIONS[1], duration_s=1.0)  # "d" is 0.3 s long
    cache = RIRCache(disk=False)
    a = render(scene((src_crop,), duration=1.5), cache, provider).audio
    full = render(scene((point("b", 0.0, -20.0, POSITIONS[0]),), duration=1.5), cache, provider).audio
    assert np.abs(a[int(0.25 * SR) + 3000:]).max() < np.abs(full[int(0.25 * SR) + 3000:]).max() / 10
    b = render(scene((src_loop,), duration=1.5), cache, provider).audio
    assert np.abs(b[int(0.9 * SR): int(1.0 * SR)]).max() > 1e-3  # still playing after 0.3 s


def test_deterministic_and_bit_identical_across_processes(tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    pack.mkdir()
    sf.write(pack / "tone.wav", SIGNALS["b"] * 0.3, SR, subtype="FLOAT")
    src = Source(id="tone", kind="file", role="event", audio={"path": "tone.wav", "pack": str(pack)},
                 onset_s=0.1, level_db=-23.0, position=POSITIONS[2])
    spec = scene((src,), THREE_MICS, seed=11,
                 augment=({"name": "AddGaussianSNR", "p": 1.0, "min_snr_db": 20, "max_snr_db": 30},))
    a = render(spec).audio
    assert np.array_equal(a, render(spec, RIRCache(disk=False)).audio)
    spec_path, out_path = tmp_path / "spec.json", tmp_path / "out.npy"
    spec.save(spec_path)
    code = ("import sys, numpy as np\n"
            "from chimein.scenes.spec import SceneSpec\nfrom chimein.scenes.render import render\n"
            "np.save(sys.argv[2], render(SceneSpec.load(sys.argv[1])).audio)\n")
    subprocess.run([sys.executable, "-c", code, str(spec_path), str(out_path)], check=True, timeout=120)
    assert np.load(out_path).tobytes() == a.tobytes()


def test_file_source_level_and_errors(tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    (pack / "sub").mkdir(parents=True)
    sf.write(pack / "sub" / "x.wav", SIGNALS["a"] * 0.05, SR)
    (tmp_path / "secret.wav").write_bytes(b"")
    ok = Source(id="x", kind="file", role="event", audio={"path": "sub/x.wav", "pack": str(pack)},
                onset_s=0.0, level_db=-20.0, position=POSITIONS[0])
    spec = scene((ok,))
    x = source_signal(ok, spec)
    assert abs(np.sqrt(np.mean(x.astype(np.float64) ** 2)) - 0.05) < 1e-3  # raw file level
    render(spec)  # normalised to level_db inside render; no error

    escape = Source(id="x", kind="file", role="event", audio={"path": "../secret.wav", "pack": str(pack)},
                    onset_s=0.0, position=POSITIONS[0])
    with pytest.raises(SpecError, match="leaves its folder"):
        render(scene((escape,)))
    missing = Source(id="x", kind="file", role="event", audio={"path": "nope.wav", "pack": str(pack)},
                     onset_s=0.0, position=POSITIONS[0])
    with pytest.raises(AudioError, match="not found"):
        render(scene((missing,)))
    bogus = Source(id="x", kind="hologram", role="event", audio={}, onset_s=0.0)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="unknown source kind"):
        source_signal(bogus, spec)
    with pytest.raises(SpecError, match="silent"):
        render(spec, signals=lambda s, sp: np.zeros(100, np.float32))
    with pytest.raises(SpecError, match="mono"):
        render(spec, signals=lambda s, sp: np.ones((100, 2), np.float32))


def test_noise_snr_and_absolute_level() -> None:
    cache = RIRCache(disk=False)
    talk = point("c", 0.2, -22.0, POSITIONS[1])  # bursts with gaps: active-frame level matters
    clean = render(scene((talk,)), cache, provider).audio
    for snr in (0.0, 12.5):
        noise = Source(id="n", kind="noise", role="noise", audio={"color": "white", "seed": 5, "snr_db": snr},
                       onset_s=0.0)
        noisy = render(scene((talk, noise)), cache, provider).audio
        n_part = noisy[:, 0].astype(np.float64) - clean[:, 0]
        measured = 10 * np.log10(active_power(clean[:, 0], SR) / np.mean(n_part**2))
        assert abs(measured - snr) < 0.05
    absolute = Source(id="n", kind="noise", role="noise", audio={"color": "white", "seed": 5},
                      onset_s=0.5, level_db=-30.0)
    only = render(scene((absolute,)), cache, provider).audio[:, 0]
    assert np.all(only[: int(0.5 * SR)] == 0.0)
    assert abs(20 * np.log10(np.sqrt(np.mean(only[int(0.5 * SR):].astype(np.float64) ** 2))) + 30) < 0.01


def test_diffuse_noise_channels() -> None:
    noise = Source(id="n", kind="noise", role="noise", audio={"color": "white", "seed": 9},
                   onset_s=0.0, level_db=-30.0)
    mics = Mics.array((2.5, 2.0, 1.2), "linear", 3, 0.5)
    out = render(scene((noise,), mics, duration=1.0), signals=provider).audio.astype(np.float64)
    ref0 = provider(noise, scene((noise,), mics, duration=1.0)).astype(np.float64)
    ref0 = ref0 / np.sqrt(np.mean(ref0**2)) * 10 ** (-30 / 20)
    np.testing.assert_allclose(out[:, 0], ref0, atol=1e-6)  # mic 0 plays the seed's noise
    rms = np.sqrt(np.mean(out**2, axis=0))
    np.testing.assert_allclose(rms, 10 ** (-30 / 20), rtol=0.05)
    corr = np.corrcoef(out.T)
    assert abs(corr[0, 1]) < 0.2 and abs(corr[0, 2]) < 0.2  # 0.5 m apart: nearly independent
    rng = np.random.default_rng(0)
    close = diffuse_mix(rng.standard_normal((2, 16000)), [(0, 0, 0), (0.01, 0, 0)], SR)
    assert np.corrcoef(close)[0, 1] > 0.5  # 1 cm apart: strongly coherent


def test_peak_guard() -> None:
    loud = point("a", 0.0, 6.0, (2.5, 2.3, 1.2))  # 0.3 m from the mic, +6 dBFS RMS
    out = render(scene((loud,)), signals=provider).audio
    assert abs(float(np.abs(out).max()) - PEAK_LIMIT) < 1e-6


def test_active_power() -> None:
    x = np.zeros(SR)
    x[: SR // 10] = 0.5
    assert active_power(x, SR) == pytest.approx(0.25)
    assert active_power(np.zeros(10), SR) == 0.0


# --------------------------------------------------------------------------------------------
# Augmentation
# --------------------------------------------------------------------------------------------
AUG = ({"name": "AddGaussianSNR", "p": 1.0, "min_snr_db": 10, "max_snr_db": 30},
       {"name": "Gain", "p": 0.5, "min_gain_db": -6, "max_gain_db": 0},
       {"name": "LowPassFilter", "p": 1.0, "min_cutoff_freq": 2000, "max_cutoff_freq": 6000})


def test_augment_is_seeded_and_leaves_global_rng_alone() -> None:
    cache = RIRCache(disk=False)
    srcs = (point("a", 0.0, -20.0, POSITIONS[0]), point("b", 0.4, -24.0, POSITIONS[1]))
    random.seed(123)
    np.random.seed(456)
    py_state, np_state = random.getstate(), np.random.get_state()
    a = render(scene(srcs, THREE_MICS, seed=4, augment=AUG), cache, provider).audio
    assert random.getstate() == py_state
    after = np.random.get_state()
    assert np.array_equal(after[1], np_state[1]) and after[2:] == np_state[2:]
    b = render(scene(srcs, THREE_MICS, seed=4, augment=AUG), cache, provider).audio
    c = render(scene(srcs, THREE_MICS, seed=5, augment=AUG), cache, provider).audio
    dry = render(scene(srcs, THREE_MICS, seed=4), cache, provider).audio
    assert np.array_equal(a, b) and not np.array_equal(a, c) and not np.array_equal(a, dry)
    assert a.shape == dry.shape and a.dtype == np.float32


def test_augment_same_parameters_on_every_channel() -> None:
    chain = build_chain([{"name": "Gain", "p": 1.0, "min_gain_db": -12, "max_gain_db": 12}])
    x = np.ones((100, 3), dtype=np.float32)
    y = chain(x, SR, 1)
    assert np.allclose(y, y[0, 0]) and not np.allclose(y, 1.0)
    shift = build_chain([{"name": "PitchShift", "p": 1.0, "min_semitones": -3, "max_semitones": 3}])
    tone = np.sin(np.arange(8000) * 0.2).astype(np.float32)
    y3 = shift(np.stack([tone] * 3, axis=1), SR, 0)  # > 2 channels: shifted one by one
    assert y3.shape == (8000, 3) and np.array_equal(y3[:, 0], y3[:, 2])
    assert not np.allclose(y3[:, 0], tone, atol=1e-2)


def test_augment_errors() -> None:
    with pytest.raises(SpecError, match=r"augment\[0\].*unknown or unsupported transform 'Reverse'"):
        build_chain([{"name": "Reverse"}])
    with pytest.raises(SpecError, match=r"augment\[1\] \(Gain\): bad parameters"):
        build_chain([{"name": "Gain"}, {"name": "Gain", "loudness": 3}])
    with pytest.raises(SpecError, match=r"augment\[0\] \(PitchShift\): bad parameters"):
        build_chain([{"name": "PitchShift", "min_semitones": 5, "max_semitones": 1}])
    with pytest.raises(SpecError, match="augment"):
        build_chain({"name": "Gain"})  # type: ignore[arg-type]
    spec = scene((point("a", 0.0, -20.0, POSITIONS[0]),), augment=({"name": "Nope"},))
    with pytest.raises(SpecError, match="Nope"):
        render(spec, signals=provider)
    assert json.dumps(spec.to_dict())  # the augment entry survives serialisation
