"""Moving sources (chimein.scenes.moving): the path sampling, the cross-faded rendering and its
validation."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import scipy.signal as ss

import chimein.scenes.moving as moving
from chimein.errors import SpecError
from chimein.scenes.moving import path_positions, render_moving, validate_path
from chimein.scenes.rir import RIRCache, compute_rirs
from chimein.scenes.spec import Mics, Room

SR = 16000
ROOM = Room(dims=(6.0, 4.0, 2.5), rt60=0.15)
NEAR, FAR = (0.8, 2.0, 1.2), (5.2, 2.0, 1.2)
MICS = Mics((NEAR, FAR))
WALK = ((1.3, 2.0, 1.4), [(4.7, 2.0, 1.4)])  # start, waypoints: 3.4 m from near to far mic


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _noise(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n).astype(np.float32)


@pytest.fixture(scope="module")
def walk() -> tuple[np.ndarray, list, list[np.ndarray]]:
    times, pos = path_positions(*WALK, speed_mps=1.0, duration_s=3.4, step_s=0.25)
    return times, pos, RIRCache(disk=False).get_many(ROOM, MICS, pos, SR)


def test_doctests() -> None:
    assert doctest.testmod(moving).failed == 0


# ---------------------------------------------------------------------------- path_positions
def test_path_walks_at_constant_speed_and_stands_at_the_end() -> None:
    start, way = (1.0, 1.0, 1.5), [(3.0, 1.0, 1.5), (3.0, 2.5, 1.5)]  # 2 m + 1.5 m
    t, p = path_positions(start, way, speed_mps=0.5, duration_s=9.1, step_s=0.5, grid_m=0.0)
    assert t[0] == 0.0 and t[-1] == pytest.approx(9.1) and np.allclose(np.diff(t)[:-1], 0.5)
    xyz = np.array(p)
    along = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(xyz, axis=0), axis=1))])
    walking = t <= 7.0  # 3.5 m at 0.5 m/s
    assert np.allclose(along[walking], 0.5 * t[walking], atol=1e-9)
    assert all(q == (3.0, 2.5, 1.5) for q, tk in zip(p, t, strict=True) if tk >= 7.0)
    assert p[13] == (3.0, 2.25, 1.5)  # at 6.5 s: 0.25 m before the end
    assert p[4] == (2.0, 1.0, 1.5)  # at 2 s: 1 m along the first leg


def test_path_positions_round_to_the_grid_and_are_deterministic() -> None:
    args = ((1.01, 1.02, 1.5), [(3.3, 2.77, 1.5)], 0.73, 4.0)
    t1, p1 = path_positions(*args, step_s=0.2, grid_m=0.05)
    t2, p2 = path_positions(*args, step_s=0.2, grid_m=0.05)
    assert np.array_equal(t1, t2) and p1 == p2
    for q in p1:
        for v in q:
            assert abs(v / 0.05 - round(v / 0.05)) < 1e-9 and v == round(v, 6)
    _, raw = path_positions(*args, step_s=0.2, grid_m=0.0)
    assert raw != p1 and max(math.dist(a, b) for a, b in zip(raw, p1, strict=True)) <= 0.05 * 3 ** 0.5 / 2


def test_path_positions_refuses_bad_arguments() -> None:
    with pytest.raises(SpecError, match="'speed_mps'"):
        path_positions((1, 1, 1), [(2, 1, 1)], 0.0, 1.0)
    with pytest.raises(SpecError, match="'duration_s'"):
        path_positions((1, 1, 1), [(2, 1, 1)], 1.0, float("nan"))
    with pytest.raises(SpecError, match="'path'"):
        path_positions((1, 1, 1), [], 1.0, 1.0)


# ---------------------------------------------------------------------------- validation
@pytest.mark.parametrize(("waypoints", "speed", "match"), [
    ([], 1.0, r"field 'path': give at least one waypoint"),
    ([(3.0, 2.0, 1.4), (5.9, 2.0, 1.4)], 1.0, r"field 'path\[1\]': .* closer than 0.3 m"),
    ([(3.0, 0.1, 1.4)], 1.0, r"field 'path\[0\]'"),
    ([(3.0, 2.0, float("inf"))], 1.0, r"field 'path\[0\]': coordinates must be finite"),
    ([(3.0, 2.0)], 1.0, r"field 'path\[0\]': expected \[x, y, z\]"),
    ([(3.0, 2.0, 1.4)], 0.1, r"field 'speed_mps': 0.1 m/s is not a walking speed; use 0.2 to 2.5"),
    ([(3.0, 2.0, 1.4)], 3.0, r"field 'speed_mps'"),
    ([(3.0, 2.0, 1.4)], float("nan"), r"field 'speed_mps': expected a finite number"),
    ([(3.0, 2.0, 1.4)], True, r"field 'speed_mps': expected a number"),
])
def test_validate_path_names_the_field(waypoints: list, speed: float, match: str) -> None:
    with pytest.raises(SpecError, match=r"^source 'u': " + match):
        validate_path((1.0, 2.0, 1.4), waypoints, speed, ROOM.dims, "source 'u'")


def test_validate_path_accepts_a_walk_and_the_margin_edge() -> None:
    validate_path((1.0, 2.0, 1.4), [(0.3, 3.7, 2.2), (5.7, 0.3, 0.3)], 2.5, ROOM.dims, "s")


# ---------------------------------------------------------------------------- rendering
def test_weights_are_a_partition_of_unity() -> None:
    times = np.array([0.0, 0.1, 0.25, 0.3, 0.7])
    n = 16000
    for fade in (1.0, 0.3):
        total = np.zeros(n)
        for k in range(times.size):
            a, w = moving._run_weights(times, k, k, SR, n, fade)
            assert w.min() >= 0.0
            total[a: a + w.size] += w
        assert np.allclose(total, 1.0, atol=1e-12)


def test_static_path_is_plain_convolution() -> None:
    h = compute_rirs(ROOM, MICS, (2.0, 1.5, 1.3), SR)
    x = _noise(SR)
    ref = np.stack([ss.fftconvolve(x.astype(np.float64), hm.astype(np.float64)) for hm in h])
    times = np.arange(9) * 0.125
    copies = [h.copy() for _ in times]
    merged = render_moving(x, SR, times, copies)  # identical RIRs: one run
    unmerged = moving._overlap_add(x, SR, times, copies, [[k] for k in range(9)], 1.0)
    assert merged.shape == ref.shape == unmerged.shape and merged.dtype == np.float32
    assert _rel(merged, ref) < 1e-5 and _rel(unmerged, ref) < 1e-5


def test_crossfade_matches_a_direct_reference() -> None:
    rng = np.random.default_rng(3)
    rirs = [rng.standard_normal((2, int(m))).astype(np.float32) for m in (300, 500, 200, 500)]
    times = np.array([0.0, 0.05, 0.08, 0.2])
    x = _noise(4000, seed=1)
    out = render_moving(x, SR, times, rirs, fade=0.6)
    ref = np.zeros((2, 4000 + 500 - 1))
    for k, h in enumerate(rirs):
        a, w = moving._run_weights(times, k, k, SR, x.size, 0.6)
        xw = np.zeros(x.size)
        xw[a: a + w.size] = w * x[a: a + w.size]
        for m in range(2):
            y = np.convolve(xw, h[m].astype(np.float64))
            ref[m, : y.size] += y
    assert _rel(out, ref) < 1e-5


def _delay_track(wet: np.ndarray, dry: np.ndarray, block: int, max_lag: int) -> list[int]:
    """Per block of ``dry``: the first lag where its cross-correlation with ``wet`` reaches half
    its maximum (the direct path: a reflection may be stronger, it is never earlier)."""
    lags = []
    for a in range(0, dry.size - block + 1, block):
        seg = wet[a: a + block + max_lag].astype(np.float64)
        r = ss.correlate(seg, dry[a: a + block].astype(np.float64), mode="valid")
        r = np.abs(r)
        lags.append(int(np.argmax(r >= 0.5 * r.max())))
    return lags


def test_direct_path_delay_follows_the_walk(walk: tuple) -> None:
    times, pos, rirs = walk
    dry = _noise(int(3.4 * SR), seed=2)
    wet = render_moving(dry, SR, times, rirs)
    block = SR // 8
    xs = np.array(pos)[:, 0]
    tracks = []
    for m, mic in enumerate((NEAR, FAR)):
        lags = _delay_track(wet[m], dry, block, 600)
        mids = (np.arange(len(lags)) + 0.5) * block / SR
        expect = [math.dist((float(np.interp(t, times, xs)), 2.0, 1.4), mic) / 343.0 * SR + 40
                  for t in mids]
        assert np.allclose(lags, expect, atol=8), (m, lags, expect)
        tracks.append(lags)
    near, far = tracks
    assert near[-1] - near[0] > 100 and far[0] - far[-1] > 100  # walking away / towards


def test_energy_moves_from_the_near_to_the_far_mic(walk: tuple) -> None:
    times, _, rirs = walk
    wet = render_moving(_noise(int(3.4 * SR), seed=4), SR, times, rirs).astype(np.float64)
    q = wet.shape[1] // 4
    ratio = [10 * np.log10(np.sum(wet[0, i * q:(i + 1) * q] ** 2) / np.sum(wet[1, i * q:(i + 1) * q] ** 2))
             for i in range(4)]
    assert ratio[0] > 3.0 and ratio[-1] < -3.0 and all(np.diff(ratio) < 0), ratio


def test_render_moving_refuses_bad_inputs() -> None:
    h = np.ones((2, 4), np.float32)
    with pytest.raises(SpecError, match="one RIR per time"):
        render_moving(np.ones(8), SR, np.array([0.0, 1.0]), [h])
    with pytest.raises(SpecError, match="strictly increasing"):
        render_moving(np.ones(8), SR, np.array([0.0, 0.0]), [h, h])
    with pytest.raises(SpecError, match="same n_mics"):
        render_moving(np.ones(8), SR, np.array([0.0, 1.0]), [h, np.ones((1, 4))])
    with pytest.raises(SpecError, match="mono"):
        render_moving(np.ones((8, 2)), SR, np.array([0.0]), [h])


def test_rirs_along_a_path_come_from_the_cache_on_the_second_call(tmp_path) -> None:
    times, pos = path_positions(*WALK, speed_mps=1.2, duration_s=3.5, step_s=0.25)
    distinct = len(set(pos))
    assert distinct < len(pos)  # standing at the end: repeats share one computation
    cache = RIRCache(tmp_path)
    first = cache.get_many(ROOM, MICS, pos, SR)
    assert cache.stats.computed == distinct
    again = cache.get_many(ROOM, MICS, pos, SR)
    assert cache.stats.computed == distinct and cache.stats.memory_hits >= len(pos)
    assert all(a is b for a, b in zip(first, again, strict=True))
    fresh = RIRCache(tmp_path)  # another process: served from disk
    from_disk = fresh.get_many(ROOM, MICS, pos, SR)
    assert fresh.stats.computed == 0 and fresh.stats.disk_hits == distinct
    x = _noise(int(3.5 * SR), seed=5)
    assert np.array_equal(render_moving(x, SR, times, first), render_moving(x, SR, times, from_disk))
