"""Moving sources: a talker who walks while speaking, rendered from RIRs along the path.

pyroomacoustics simulates fixed sources only, so a walking source is approximated the usual
way: sample the path at regular times, take the (cached) RIRs of those positions, and
cross-fade between them on the dry signal.

- :func:`path_positions` turns a path (``start`` then waypoints, walked at constant speed,
  standing at the last waypoint) into times and positions every ``step_s``; positions are
  rounded to a ``grid_m`` grid so scenes with nearby paths share cached RIRs
  (:class:`chimein.scenes.rir.RIRCache`, which also serves the repeats of a standing source
  from one computation).
- :func:`render_moving` convolves the dry signal with those RIRs: sample ``i`` of the dry
  signal (emission time ``i / sample_rate``) is split between the RIRs of its neighbouring
  path times ``t_k <= t < t_k+1`` by raised-cosine weights ``cos^2`` / ``sin^2`` (the middle
  ``fade`` fraction of each interval; the source holds a position outside it), which sum to
  one, so a source that does not move gives exactly the plain convolution. Each RIR's
  weighted piece is convolved by uniformly partitioned overlap-add (batched single-precision
  FFTs, as :mod:`chimein.scenes.render` does); consecutive identical RIRs (a standing source)
  are merged into one piece first. The emission-time weighting keeps the propagation delay
  of each RIR, so the direct-path delay to each microphone follows the distance along the walk.
- :func:`validate_path` checks a path as a spec field (inside the room with the sampler's
  0.3 m wall margin, walking speed 0.2-2.5 m/s).

Layouts follow :mod:`chimein.scenes.rir` and :mod:`chimein.scenes.render`: RIR arrays are
``(n_mics, taps)`` float32 and the wet signal is ``(n_mics, samples)`` float32, the layout of
the renderer's mix (``mix[:, onset:] += wet``).

Approximation: a cross-fade between two RIRs whose direct paths differ by ``d`` samples acts
as a comb filter while it lasts (the mean power of the decorrelated part dips by up to 3 dB
mid-fade), a level flutter at ``1 / step_s`` Hz. Keep ``speed * step_s`` small or shorten the
fade. Measured on white noise walking 1 m/s in a 6 x 5 x 3 m room (RT60 0.4 s), the standard
deviation of the above-1-kHz level in 20 ms frames around its 0.5 s average is 0.99 dB with
``step_s=0.25`` (0.68 dB with ``fade=0.25``), 0.67 dB at 0.1 s, 0.49 dB at 0.05 s, against
0.42 dB for a static source. Doppler shift is not modelled beyond what the changing delays give
(below 1 % at walking speed).

Examples
--------
>>> from chimein.scenes.rir import RIRCache
>>> from chimein.scenes.spec import Mics, Room
>>> room, mics = Room(dims=(5.0, 4.0, 2.5), rt60=0.15), Mics(((1.0, 2.0, 1.2),))
>>> validate_path((1.5, 2.0, 1.4), [(4.0, 2.0, 1.4)], 1.0, room.dims, "source 'u'")
>>> times, pos = path_positions((1.5, 2.0, 1.4), [(4.0, 2.0, 1.4)], 1.0, duration_s=1.0)
>>> times.tolist(), pos[-1]
([0.0, 0.25, 0.5, 0.75, 1.0], (2.5, 2.0, 1.4))
>>> rirs = RIRCache(disk=False).get_many(room, mics, pos, 16000)
>>> dry = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
>>> wet = render_moving(dry, 16000, times, rirs)
>>> wet.shape == (1, 16000 + max(h.shape[1] for h in rirs) - 1), wet.dtype
(True, dtype('float32'))
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from chimein.errors import SpecError
from chimein.scenes.rir import fft_size
from chimein.scenes.spec import Vec3

__all__ = [
    "MAX_SPEED_MPS",
    "MIN_SPEED_MPS",
    "WALL_MARGIN_M",
    "path_positions",
    "render_moving",
    "validate_path",
]

#: Walking speeds accepted by :func:`validate_path` (m/s): a slow stroll to a brisk walk.
MIN_SPEED_MPS = 0.2
MAX_SPEED_MPS = 2.5
#: Distance a waypoint keeps from every wall (the sampler's placement margin).
WALL_MARGIN_M = 0.3
#: Rows x FFT size per batch in :func:`render_moving` (bounds its memory, as in render.py).
_BATCH_SAMPLES = 1 << 21


# --------------------------------------------------------------------------------------------
# The path
# --------------------------------------------------------------------------------------------
def _finite_vec3(where: str, fld: str, p: object) -> np.ndarray:
    try:
        v = np.asarray(p, dtype=np.float64)
    except (TypeError, ValueError):
        raise SpecError(f"{where}: field '{fld}': expected [x, y, z] in metres, got {p!r}") from None
    if v.shape != (3,):
        raise SpecError(f"{where}: field '{fld}': expected [x, y, z] in metres, got {p!r}")
    if not np.isfinite(v).all():
        raise SpecError(f"{where}: field '{fld}': coordinates must be finite, got {p!r}")
    return v


def _finite_number(where: str, fld: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise SpecError(f"{where}: field '{fld}': expected a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise SpecError(f"{where}: field '{fld}': expected a finite number, got {value!r}")
    return v


def validate_path(start: Vec3, waypoints: Sequence[Vec3], speed_mps: float,
                  room_dims: Vec3, where: str) -> None:
    """Check a walking path as a scene-spec field; raise :class:`SpecError` naming the field.

    Parameters
    ----------
    start : Vec3
        The source's ``position`` (where the walk starts; checked for finiteness only, the
        spec checks it is in the room).
    waypoints : sequence of Vec3
        ``path``: at least one point, each inside the room and at least
        :data:`WALL_MARGIN_M` from every wall.
    speed_mps : float
        ``speed_mps``: within [:data:`MIN_SPEED_MPS`, :data:`MAX_SPEED_MPS`] (walking).
    room_dims : Vec3
        The room's ``dims``.
    where : str
        Prefix of messages, e.g. ``"source 'u1'"``.

    Examples
    --------
    >>> validate_path((1.0, 1.0, 1.5), [(3.0, 1.0, 1.5)], 1.0, (4.0, 3.0, 2.5), "source 'u'")
    >>> validate_path((1.0, 1.0, 1.5), [(3.9, 1.0, 1.5)], 1.0, (4.0, 3.0, 2.5), "source 'u'")
    Traceback (most recent call last):
    ...
    chimein.errors.SpecError: source 'u': field 'path[0]': [3.9, 1.0, 1.5] is closer than 0.3 m to a wall of the (4.0, 3.0, 2.5) m room; keep waypoints within [0.3, dims - 0.3]
    """
    _finite_vec3(where, "position", start)
    dims = _finite_vec3(where, "room.dims", room_dims)
    if isinstance(waypoints, str | bytes) or not isinstance(waypoints, Sequence) or not waypoints:
        raise SpecError(f"{where}: field 'path': give at least one waypoint [x, y, z] after "
                        f"'position', got {waypoints!r}")
    for i, p in enumerate(waypoints):
        v = _finite_vec3(where, f"path[{i}]", p)
        if not ((v >= WALL_MARGIN_M) & (v <= dims - WALL_MARGIN_M)).all():
            raise SpecError(
                f"{where}: field 'path[{i}]': {v.tolist()} is closer than {WALL_MARGIN_M} m to a "
                f"wall of the {tuple(dims.tolist())} m room; keep waypoints within "
                f"[{WALL_MARGIN_M}, dims - {WALL_MARGIN_M}]")
    speed = _finite_number(where, "speed_mps", speed_mps)
    if not MIN_SPEED_MPS <= speed <= MAX_SPEED_MPS:
        raise SpecError(f"{where}: field 'speed_mps': {speed} m/s is not a walking speed; use "
                        f"{MIN_SPEED_MPS} to {MAX_SPEED_MPS} m/s")


def path_positions(start: Vec3, waypoints: Sequence[Vec3], speed_mps: float, duration_s: float,
                   step_s: float = 0.25, grid_m: float = 0.05) -> tuple[np.ndarray, list[Vec3]]:
    """Times and positions of a source walking ``start -> waypoints`` at constant speed.

    The source starts at ``start`` at time 0 (its onset), walks the polyline through the
    waypoints at ``speed_mps`` and stands at the last waypoint once there.

    Parameters
    ----------
    start : Vec3
        The source's position at its onset.
    waypoints : sequence of Vec3
        At least one point.
    speed_mps : float
        Walking speed (> 0; see :func:`validate_path` for the range a spec accepts).
    duration_s : float
        How long the source sounds (> 0): the times cover ``[0, duration_s]``.
    step_s : float
        Spacing of the times: ``0, step_s, 2 step_s, ...``, then ``duration_s`` itself when it
        is not on that grid.
    grid_m : float
        Positions are rounded to multiples of ``grid_m`` metres (0: no rounding) and to 1e-6 m,
        so nearby scenes and a standing source reuse cached RIRs. A waypoint at least
        ``grid_m / 2`` inside the room's bounds stays inside after rounding.

    Returns
    -------
    times : np.ndarray
        float64 ``(K,)``, seconds from the onset, increasing, first 0, last ``duration_s``.
    positions : list of Vec3
        ``K`` positions (plain floats), deterministic for the same inputs.

    Raises
    ------
    SpecError
        Non-finite or non-positive ``speed_mps``, ``duration_s`` or ``step_s``, negative
        ``grid_m``, no waypoint, or a malformed point.

    Examples
    --------
    >>> t, p = path_positions((0.0, 0.0, 1.5), [(0.5, 0.0, 1.5), (0.5, 0.5, 1.5)], 1.0, 1.2,
    ...                       step_s=0.5)
    >>> t.tolist(), p
    ([0.0, 0.5, 1.0, 1.2], [(0.0, 0.0, 1.5), (0.5, 0.0, 1.5), (0.5, 0.5, 1.5), (0.5, 0.5, 1.5)])
    """
    where = "path_positions"
    speed = _finite_number(where, "speed_mps", speed_mps)
    dur = _finite_number(where, "duration_s", duration_s)
    step = _finite_number(where, "step_s", step_s)
    grid = _finite_number(where, "grid_m", grid_m)
    for name, v in (("speed_mps", speed), ("duration_s", dur), ("step_s", step)):
        if v <= 0.0:
            raise SpecError(f"{where}: field '{name}': must be > 0, got {v}")
    if grid < 0.0:
        raise SpecError(f"{where}: field 'grid_m': must be >= 0 (0: no rounding), got {grid}")
    if isinstance(waypoints, str | bytes) or not isinstance(waypoints, Sequence) or not waypoints:
        raise SpecError(f"{where}: field 'path': give at least one waypoint, got {waypoints!r}")
    pts = np.stack([_finite_vec3(where, "position", start)]
                   + [_finite_vec3(where, f"path[{i}]", p) for i, p in enumerate(waypoints)])
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    keep = np.concatenate([[True], seg > 0.0])  # drop zero-length legs (repeated points)
    pts, seg = pts[keep], seg[seg > 0.0]
    cum = np.concatenate([[0.0], np.cumsum(seg)])

    n_steps = int(math.floor(dur / step + 1e-9))
    times = np.arange(n_steps + 1, dtype=np.float64) * step
    times = times[times < dur - 1e-9]
    times = np.concatenate([times, [dur]])
    dist = np.minimum(speed * times, cum[-1])
    xyz = np.stack([np.interp(dist, cum, pts[:, a]) for a in range(3)], axis=1)
    if grid > 0.0:
        xyz = np.round(xyz / grid) * grid
    xyz = np.round(xyz, 6) + 0.0  # one spelling per grid point (and no -0.0) for the cache key
    return times, [(float(x), float(y), float(z)) for x, y, z in xyz]


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------
def _runs(rirs: Sequence[np.ndarray]) -> list[list[int]]:
    """Indices of ``rirs`` grouped into runs of consecutive identical arrays."""
    runs: list[list[int]] = [[0]]
    for k in range(1, len(rirs)):
        a, b = rirs[k - 1], rirs[k]
        if a is b or (a.shape == b.shape and np.array_equal(a, b)):
            runs[-1].append(k)
        else:
            runs.append([k])
    return runs


def _run_weights(times: np.ndarray, k0: int, k1: int, sample_rate: int, n: int,
                 fade: float) -> tuple[int, np.ndarray]:
    """``(a, w)``: the summed cross-fade weight of path points ``k0..k1`` on samples ``a..``.

    Between ``t_j`` and ``t_j+1`` point ``j`` weighs ``1 - r`` and point ``j+1`` weighs ``r``,
    ``r = sin^2(pi u / 2)`` with ``u`` rising 0 -> 1 over the middle ``fade`` of the interval;
    before ``t_0`` only point 0 counts, after the last time only the last point.
    """
    K = times.size
    a = 0 if k0 == 0 else max(0, int(math.floor(times[k0 - 1] * sample_rate)))
    b = n if k1 == K - 1 else min(n, int(math.ceil(times[k1 + 1] * sample_rate)) + 1)
    if a >= b:
        return a, np.zeros(0)
    ts = np.arange(a, b, dtype=np.float64) / sample_rate
    j = np.searchsorted(times, ts, side="right") - 1  # -1 .. K-1
    jc = np.clip(j, 0, K - 2) if K > 1 else np.zeros_like(j)
    if K > 1:
        s = (ts - times[jc]) / (times[jc + 1] - times[jc])
        u = np.clip((s - (1.0 - fade) / 2.0) / fade, 0.0, 1.0)
        r = np.sin(0.5 * np.pi * u) ** 2
    else:
        r = np.zeros_like(ts)
    r = np.where(j < 0, 1.0, np.where(j >= K - 1, 0.0, r))
    w = np.where((j >= k0) & (j <= k1), 1.0 - r, 0.0) + np.where((j + 1 >= k0) & (j + 1 <= k1), r, 0.0)
    return a, w


def _check_render_inputs(dry: np.ndarray, sample_rate: int, times: np.ndarray,
                         rirs: Sequence[np.ndarray], fade: float) -> None:
    where = "render_moving"
    if dry.ndim != 1 or dry.size == 0 or not np.isfinite(dry).all():
        raise SpecError(f"{where}: dry must be a non-empty finite mono array, got shape {dry.shape}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer) or sample_rate <= 0:
        raise SpecError(f"{where}: sample_rate must be a positive integer in Hz, got {sample_rate!r}")
    if times.ndim != 1 or times.size == 0 or times.size != len(rirs):
        raise SpecError(f"{where}: need one RIR per time, got {times.size} times and {len(rirs)} RIRs")
    if not np.isfinite(times).all() or (np.diff(times) <= 0).any():
        raise SpecError(f"{where}: times_s must be finite and strictly increasing")
    n_mics = {h.shape[0] if h.ndim == 2 else -1 for h in rirs}
    if len(n_mics) != 1 or -1 in n_mics or any(h.shape[1] == 0 for h in rirs):
        raise SpecError(f"{where}: RIRs must all be (n_mics, taps) arrays with the same n_mics, "
                        f"got shapes {sorted({h.shape for h in rirs})}")
    if not 0.0 < fade <= 1.0:
        raise SpecError(f"{where}: fade must be in (0, 1], got {fade}")


def render_moving(dry: np.ndarray, sample_rate: int, times_s: np.ndarray,
                  rirs: Sequence[np.ndarray], fade: float = 1.0) -> np.ndarray:
    """Convolve a moving source's dry signal with the RIRs along its path, cross-fading.

    Parameters
    ----------
    dry : np.ndarray
        Mono ``(n,)`` signal; sample ``i`` is emitted at ``i / sample_rate`` s after the onset.
    sample_rate : int
        In Hz (the rate of ``dry`` and of the RIRs).
    times_s : np.ndarray
        ``(K,)`` strictly increasing path times in seconds from the onset (from
        :func:`path_positions`).
    rirs : sequence of np.ndarray
        ``K`` RIR arrays ``(n_mics, taps_k)`` as :class:`~chimein.scenes.rir.RIRCache` returns
        them, ``rirs[k]`` for the position at ``times_s[k]``; lengths may differ (shorter ones
        act zero-padded).
    fade : float
        Fraction (0, 1] of each interval ``[t_k, t_k+1]`` over which the raised-cosine
        cross-fade runs, centred in the interval (1: the whole interval).

    Returns
    -------
    np.ndarray
        float32 ``(n_mics, n + taps - 1)``, ``taps`` the longest RIR: the wet signal at every
        microphone, in the layout of :func:`chimein.scenes.render.render`'s mix.

    Raises
    ------
    SpecError
        Malformed inputs (shapes, non-finite values, times not increasing).

    Examples
    --------
    >>> h = np.zeros((2, 8), np.float32); h[0, 0] = 1.0; h[1, 3] = 0.5
    >>> wet = render_moving(np.ones(4, np.float32), 8000, np.array([0.0, 1.0]), [h, h])
    >>> wet.shape, np.round(wet[1, :6], 6).tolist()
    ((2, 11), [0.0, 0.0, 0.0, 0.5, 0.5, 0.5])
    """
    x = np.asarray(dry)
    times = np.asarray(times_s, dtype=np.float64)
    _check_render_inputs(x, sample_rate, times, rirs, float(fade))
    return _overlap_add(x.astype(np.float32), int(sample_rate), times, rirs, _runs(rirs),
                        float(fade))


def _overlap_add(x: np.ndarray, sr: int, times: np.ndarray, rirs: Sequence[np.ndarray],
                 runs: list[list[int]], fade: float) -> np.ndarray:
    """Sum over ``runs`` of (``x`` times the run's weight) convolved with the run's RIR.

    Uniformly partitioned overlap-add: blocks of ``B >= taps`` weighted samples, FFT size
    ``2B``, every block of every run transformed in batches (float32 FFTs, float64 sums).
    """
    import scipy.fft as sfft

    n, n_mics = x.size, rirs[0].shape[0]
    taps = max(h.shape[1] for h in rirs)
    block = fft_size(taps)
    nfft = 2 * block
    out = np.zeros((n_mics, n + taps - 1 + nfft), dtype=np.float64)
    rows: list[tuple[int, int, np.ndarray]] = []  # (run, start sample, weighted block)
    for g, run in enumerate(runs):
        a, w = _run_weights(times, run[0], run[-1], sr, n, fade)
        for s in range(0, w.size, block):
            piece = w[s: s + block] * x[a + s: a + s + min(block, w.size - s)]
            if piece.any():
                rows.append((g, a + s, piece.astype(np.float32)))
    per_batch = max(1, _BATCH_SAMPLES // nfft)
    for b0 in range(0, len(rows), per_batch):
        chunk = rows[b0: b0 + per_batch]
        spectra = {g: sfft.rfft(np.asarray(rirs[runs[g][0]], dtype=np.float32), nfft, axis=1)
                   for g in dict.fromkeys(g for g, _, _ in chunk)}
        buf = np.zeros((len(chunk), nfft), dtype=np.float32)
        for r, (_, _, piece) in enumerate(chunk):
            buf[r, : piece.size] = piece
        ys = sfft.rfft(buf, axis=1)[:, None, :] * np.stack([spectra[g] for g, _, _ in chunk])
        y = sfft.irfft(ys.reshape(len(chunk) * n_mics, -1), nfft, axis=1)
        y = y.reshape(len(chunk), n_mics, nfft)
        for r, (_, start, _) in enumerate(chunk):
            out[:, start: start + nfft] += y[r]
    return out[:, : n + taps - 1].astype(np.float32)
