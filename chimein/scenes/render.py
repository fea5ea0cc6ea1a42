"""Render a :class:`~chimein.scenes.spec.SceneSpec` to multichannel audio.

For every point source: the dry signal (:func:`source_signal`, or an injected provider) is
normalised to unit RMS and scaled to ``level_db`` dBFS, cropped or looped to ``duration_s``
when set, placed at ``onset_s`` (rounded to the nearest sample) and convolved with its room
impulse responses (from a :class:`~chimein.scenes.rir.RIRCache`). The RIRs keep
pyroomacoustics' fixed offset (propagation time plus a 40-sample fractional-delay offset), so
the mix equals ``pyroomacoustics.Room.simulate()`` for the same sources, signals and delays
(``tests/test_render.py`` checks 1e-4 relative error); the travel time to the microphones is
physical, and annotations refer to emission times.

Diffuse noise (``kind="noise"``, no position) is added directly at the microphones:

- ``audio = {"color": kind, "seed": int, "snr_db": float}``. With ``snr_db`` the noise is scaled
  so that the SNR at microphone 0 between the rendered point-source mix and the noise equals
  ``snr_db``. The mix's power is measured where it is active: 20 ms frames whose power is within
  50 dB of the loudest frame (:func:`active_power`), so pauses do not dilute the speech level;
  the noise's power over its own span. Several noise sources are each scaled against the
  point-source mix. Without ``snr_db``, or when the scene has no audible point source,
  ``level_db`` is the noise's absolute RMS level in dBFS.
- Channels: microphone 0 plays the provider's noise for ``seed``; microphone ``m > 0`` one for
  the child seed ``SeedSequence([seed, m])``. With several microphones these independent
  signals are mixed per frequency to the coherence of a spherically isotropic (diffuse) field,
  ``sinc(2 f d / c)`` for microphones ``d`` metres apart (Habets & Gannot 2007), via a Cholesky
  factor: microphone 0 keeps its signal and every channel keeps its spectrum, while closely
  spaced microphones get the strongly correlated low frequencies of a real room.

After mixing, the optional ``spec.augment`` chain (:mod:`chimein.scenes.augment`, seeded from
``spec.seed``) runs, then a peak guard: a scene whose peak exceeds 0.99 is scaled down as a
whole to peak 0.99 (a deterministic function of the audio, so it needs no record).

Convolutions are single-precision FFTs (``scipy.fft``, one worker), which are deterministic:
the same spec gives bit-identical float32 output in any process.

Examples
--------
>>> import numpy as np
>>> from chimein.scenes.spec import Room, Mics, Source, SceneSpec, Annotations
>>> src = Source(id="tone", kind="file", role="event", audio={"path": "unused"}, onset_s=0.5,
...              level_db=-20.0, position=(1.0, 1.0, 1.5))
>>> spec = SceneSpec(id="s0", seed=0, duration_s=2.0, room=Room(dims=(4.0, 3.0, 2.5), rt60=0.2),
...                  mics=Mics(positions=((2.0, 1.5, 1.2),)), sources=(src,),
...                  annotations=Annotations())
>>> tone = lambda source, spec: np.sin(np.arange(8000) * 0.1).astype(np.float32)
>>> scene = render(spec, signals=tone)
>>> scene.audio.shape, scene.audio.dtype, scene.duration_s
((32000, 1), dtype('float32'), 2.0)
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chimein.errors import SpecError
from chimein.io import safe_join
from chimein.scenes.audio import load_audio
from chimein.scenes.rir import RIRCache, fft_size
from chimein.scenes.spec import SceneSpec, Source

__all__ = [
    "PEAK_LIMIT",
    "RenderedScene",
    "SignalProvider",
    "active_power",
    "diffuse_mix",
    "render",
    "source_signal",
]

#: Peak above which a rendered scene is scaled down (and the peak it is scaled to).
PEAK_LIMIT = 0.99
#: Frame length and floor (dB below the loudest frame) of :func:`active_power`.
ACTIVE_FRAME_S = 0.02
ACTIVE_FLOOR_DB = -50.0

SignalProvider = Callable[[Source, SceneSpec], np.ndarray]


@dataclass(frozen=True, eq=False)
class RenderedScene:
    """A rendered scene: ``audio`` float32 ``(samples, mics)``, its rate and its spec."""

    audio: np.ndarray
    sample_rate: int
    spec: SceneSpec

    @property
    def duration_s(self) -> float:
        """Length in seconds (``samples / sample_rate``)."""
        return self.audio.shape[0] / self.sample_rate

    @property
    def n_mics(self) -> int:
        """Number of channels (microphones)."""
        return int(self.audio.shape[1])


# --------------------------------------------------------------------------------------------
# Dry signals
# --------------------------------------------------------------------------------------------
def _samples(seconds: float, sr: int) -> int:
    """Seconds to samples: the one place renderers convert (round to nearest)."""
    return int(round(seconds * sr))


def _source_seed(source: Source, spec: SceneSpec) -> int:
    if "seed" in source.audio:
        try:
            return int(source.audio["seed"])
        except (TypeError, ValueError):
            raise SpecError(f"source {source.id!r}: field 'audio.seed': expected an integer, "
                            f"got {source.audio['seed']!r}") from None
    # no explicit seed: derive one from the scene seed and the source id (stable across runs)
    ss = np.random.SeedSequence([int(spec.seed) % 2**64, zlib.crc32(source.id.encode("utf-8"))])
    return int(ss.generate_state(1)[0])


def _unit_rms(x: np.ndarray, what: str) -> np.ndarray:
    x64 = np.asarray(x, dtype=np.float64)
    rms = math.sqrt(float(np.mean(np.square(x64)))) if x64.size else 0.0
    if rms <= 0.0:
        raise SpecError(f"{what}: the signal is silent; check the source's audio")
    return (x64 / rms).astype(np.float32)


def source_signal(source: Source, spec: SceneSpec) -> np.ndarray:
    """The dry mono signal of ``source`` at ``spec.sample_rate`` (float32, unit RMS).

    - ``speech``: :func:`chimein.scenes.speech.realize` (``text``, ``generator``, ``voice``,
      ``speaker``, ``pauses``; espeak-ng's ``rate``, ``pitch``, ``pitch_range``);
    - ``event``: :func:`chimein.scenes.events.synthesize_event` (``audio`` mapping,
      ``source.duration_s``);
    - ``noise``: :func:`chimein.scenes.noise.make_noise` (``color``, default ``"pink"``;
      ``seed``, default derived from the scene seed and source id) for ``duration_s`` or the
      rest of the scene;
    - ``file``: :func:`chimein.scenes.audio.load_audio` of ``path`` inside ``pack`` (checked with
      :func:`~chimein.io.safe_join`), or of ``path`` itself without a ``pack``.

    Raises
    ------
    SpecError
        Unknown kind, a path leaving its pack, a missing or unreadable file (``AudioError``).

    Examples
    --------
    >>> from chimein.scenes.spec import Room, Mics, Source, SceneSpec, Annotations
    >>> spec = SceneSpec(id="s", seed=0, duration_s=1.0, room=Room(dims=(4.0, 3.0, 2.5)),
    ...                  mics=Mics(((2.0, 1.5, 1.2),)), sources=(), annotations=Annotations())
    >>> src = Source(id="n", kind="noise", role="noise", audio={"color": "white", "seed": 1},
    ...              onset_s=0.0)
    >>> x = source_signal(src, spec)
    >>> x.shape, round(float(np.sqrt(np.mean(x.astype(float) ** 2))), 3)
    ((16000,), 1.0)
    """
    sr = spec.sample_rate
    a = source.audio
    where = f"source {source.id!r}"
    if source.kind == "speech":
        from chimein.scenes.speech import realize

        return _unit_rms(realize(a, sr).audio, where)
    if source.kind == "event":
        from chimein.scenes.events import synthesize_event

        return np.asarray(synthesize_event(a, sr, source.duration_s), dtype=np.float32)
    if source.kind == "noise":
        from chimein.scenes.noise import make_noise

        seconds = source.duration_s if source.duration_s is not None else spec.duration_s - source.onset_s
        rng = np.random.default_rng(_source_seed(source, spec))
        return make_noise(str(a.get("color", "pink")), max(1, _samples(seconds, sr)), sr, rng)
    if source.kind == "file":
        if "path" not in a:
            raise SpecError(f"{where}: field 'audio.path': a file source needs a path")
        if a.get("pack") is not None:
            path = safe_join(Path(str(a["pack"])), str(a["path"]), what=f"{where} audio.path")
        else:
            path = Path(str(a["path"]))
        return load_audio(path, sr)
    raise SpecError(f"{where}: field 'kind': unknown source kind {source.kind!r}; "
                    "use speech, event, noise or file")


def _dry(source: Source, spec: SceneSpec, provider: SignalProvider) -> np.ndarray:
    """Provider output, validated, at unit RMS times ``level_db``, cropped/looped."""
    where = f"source {source.id!r}"
    x = np.asarray(provider(source, spec))
    if x.ndim != 1 or x.size == 0:
        raise SpecError(f"{where}: the signal provider returned shape {x.shape}; need a non-empty "
                        "mono array")
    if not np.isfinite(x).all():
        raise SpecError(f"{where}: the signal contains NaN or Inf")
    x64 = x.astype(np.float64)
    rms = math.sqrt(float(np.add.reduce(x64 * x64)) / x64.size)
    if rms <= 0.0:
        raise SpecError(f"{where}: the signal is silent; check the source's audio")
    y = (x64 * (10.0 ** (source.level_db / 20.0) / rms)).astype(np.float32)
    if source.duration_s is not None:
        y = _fit(y, _samples(source.duration_s, spec.sample_rate))
    return y


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    """Crop to ``n`` samples, or loop (repeat from the start) up to ``n``."""
    n = max(1, n)
    if x.shape[-1] >= n:
        return x[..., :n]
    reps = -(-n // x.shape[-1])
    return np.tile(x, (1,) * (x.ndim - 1) + (reps,))[..., :n]


# --------------------------------------------------------------------------------------------
# Levels and diffuse noise
# --------------------------------------------------------------------------------------------
def active_power(x: np.ndarray, sample_rate: int, frame_s: float = ACTIVE_FRAME_S,
                 floor_db: float = ACTIVE_FLOOR_DB) -> float:
    """Mean square of ``x`` over its active frames (0 for silence).

    ``x`` is cut into frames of ``frame_s`` (the last partial frame included); a frame is
    active when its power is within ``-floor_db`` dB of the loudest frame. This measures a
    speech or event level without the pauses between them.

    Examples
    --------
    >>> x = np.zeros(16000); x[:1600] = 1.0
    >>> active_power(x, 16000), float(np.mean(x ** 2))
    (1.0, 0.1)
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return 0.0
    hop = max(1, _samples(frame_s, sample_rate))
    n_frames = -(-x.size // hop)
    sq = np.zeros(n_frames * hop)
    sq[: x.size] = np.square(x)
    energy = sq.reshape(n_frames, hop).sum(axis=1)
    counts = np.full(n_frames, hop, dtype=np.float64)
    counts[-1] = x.size - (n_frames - 1) * hop
    power = energy / counts
    peak = float(power.max())
    if peak <= 0.0:
        return 0.0
    active = power >= peak * 10.0 ** (floor_db / 10.0)
    return float(energy[active].sum() / counts[active].sum())


def diffuse_mix(channels: np.ndarray, mic_positions: Sequence[Sequence[float]], sample_rate: int,
                c: float = 343.0) -> np.ndarray:
    """Give independent noise channels the coherence of a spherically isotropic noise field.

    Per frequency ``f`` the target coherence between microphones ``i`` and ``j`` is
    ``sinc(2 f d_ij / c)``; its Cholesky factor (lightly diagonal-loaded, since the matrix
    is singular at 0 Hz) mixes the channels' spectra. Channel 0 is returned unchanged and
    every channel keeps its power spectrum.

    Parameters
    ----------
    channels : np.ndarray
        ``(mics, samples)`` independent signals.
    mic_positions : sequence of [x, y, z]
        One per channel, metres.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((2, 16000))
    >>> y = diffuse_mix(x, [(0, 0, 0), (0.02, 0, 0)], 16000)
    >>> bool(np.allclose(y[0], x[0])), round(float(np.corrcoef(y)[0, 1]), 1)
    (True, 0.6)
    """
    import scipy.fft as sfft

    x = np.asarray(channels, dtype=np.float64)
    m, n = x.shape
    if m == 1:
        return x.copy()
    pos = np.asarray(mic_positions, dtype=np.float64)
    dist = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    nfft = sfft.next_fast_len(n, real=True)
    spec = sfft.rfft(x, nfft, axis=1)  # (m, F)
    freqs = np.fft.rfftfreq(nfft, 1.0 / sample_rate)
    gamma = np.sinc(2.0 * freqs[:, None, None] * dist[None] / c)  # (F, m, m)
    gamma += 1e-6 * np.eye(m)
    chol = np.linalg.cholesky(gamma)
    chol /= np.linalg.norm(chol, axis=2, keepdims=True)  # exact unit row norm: same spectrum
    mixed = np.einsum("fij,jf->if", chol, spec)
    return sfft.irfft(mixed, nfft, axis=1)[:, :n]


def _noise_channels(source: Source, spec: SceneSpec, provider: SignalProvider,
                    n_target: int) -> np.ndarray:
    """Unit-RMS noise ``(mics, n_target)`` for a diffuse source (see module notes)."""
    seed = _source_seed(source, spec)
    chans = []
    for m in range(spec.mics.n):
        s_m = seed if m == 0 else int(np.random.SeedSequence([seed % 2**64, m]).generate_state(1)[0])
        src_m = dataclasses.replace(source, audio={**source.audio, "seed": s_m})
        x = np.asarray(provider(src_m, spec))
        if x.ndim != 1 or x.size == 0 or not np.isfinite(x).all():
            raise SpecError(f"source {source.id!r}: the noise provider returned an empty, "
                            "non-mono or non-finite array")
        chans.append(_fit(_unit_rms(x, f"source {source.id!r}").astype(np.float64), n_target))
    x = np.stack(chans)
    if x.shape[0] > 1:
        import pyroomacoustics as pra

        x = diffuse_mix(x, spec.mics.positions, spec.sample_rate, float(pra.constants.get("c")))
    return x


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------
#: Samples per FFT batch (rows x FFT size) in :func:`_convolve_sources`: bounds its memory.
_BATCH_SAMPLES = 1 << 21


def _convolve_sources(out: np.ndarray, items: Sequence[tuple[int, np.ndarray, np.ndarray, str]],
                      cache: RIRCache) -> None:
    """``out[:, onset:] += dry (*) rirs[m]`` for every ``(onset, dry, rirs, key)`` item.

    Uniformly partitioned overlap-add, single precision: with ``B >= L`` (the longest RIR) a
    block of ``B`` dry samples convolved with an RIR fits an FFT of ``2B``. The RIR spectra at
    that size depend only on the RIR, so :meth:`RIRCache.spectrum` computes each once; every
    block of every source is transformed in one batch, which pocketfft vectorises across rows
    (about 2.5x faster per sample than transforms one at a time). Exact linear convolution up
    to float32 rounding.
    """
    import scipy.fft as sfft

    n, n_mics = out.shape[1], out.shape[0]
    todo = [(onset, dry[: n - onset], h, key) for onset, dry, h, key in items if onset < n]
    if not todo:
        return
    block = fft_size(max(h.shape[1] for _, _, h, _ in todo))
    nfft = 2 * block
    spectra = [cache.spectrum(key, h, nfft) for _, _, h, key in todo]
    rows = [(i, k) for i, (_, d, _, _) in enumerate(todo) for k in range(-(-d.size // block))]
    per_batch = max(1, _BATCH_SAMPLES // nfft)
    for b0 in range(0, len(rows), per_batch):
        chunk = rows[b0: b0 + per_batch]
        x = np.zeros((len(chunk), nfft), dtype=np.float32)
        for r, (i, k) in enumerate(chunk):
            seg = todo[i][1][k * block: (k + 1) * block]
            x[r, : seg.size] = seg
        xs = sfft.rfft(x, axis=1)
        ys = np.stack([spectra[i] for i, _ in chunk])  # (rows, mics, bins)
        ys *= xs[:, None, :]
        y = sfft.irfft(ys.reshape(len(chunk) * n_mics, -1), nfft, axis=1)
        y = y.reshape(len(chunk), n_mics, nfft)
        for r, (i, k) in enumerate(chunk):
            start = todo[i][0] + k * block
            stop = min(start + nfft, n)
            out[:, start:stop] += y[r, :, : stop - start]


WALK_STEP_S = 0.1
"""Time step (s) between the positions whose RIRs a walking source is cross-faded between
(0.25 s gave an audible ~1 dB level flutter above 1 kHz, 0.1 s about 0.7 dB: the measuring
floor of a standing source was 0.4 dB)."""


def _add_walking(mix: np.ndarray, source: Source, spec: SceneSpec, provider: SignalProvider,
                 cache: RIRCache) -> None:
    """Add a walking source: its dry signal cross-faded between the RIRs of the positions along
    its path every :data:`WALK_STEP_S` (:mod:`chimein.scenes.moving`), RIRs from ``cache``."""
    from chimein.scenes.moving import path_positions, render_moving

    sr, n = spec.sample_rate, mix.shape[1]
    onset = _samples(source.onset_s, sr)
    if onset >= n:
        return
    dry = _dry(source, spec, provider)
    times, positions = path_positions(source.position, source.path or (), float(source.speed_mps or 1.0),  # type: ignore[arg-type]
                                      max(dry.size / sr, 1.0 / sr), step_s=WALK_STEP_S)
    rirs = cache.get_many(spec.room, spec.mics, positions, sr, seed=spec.seed)
    wet = render_moving(dry, sr, times, rirs)
    stop = min(n, onset + wet.shape[1])
    mix[:, onset:stop] += wet[:, : stop - onset]


def render(spec: SceneSpec, cache: RIRCache | None = None,
           signals: SignalProvider | None = None) -> RenderedScene:
    """Render ``spec`` to audio (see the module notes for every convention).

    Parameters
    ----------
    spec : SceneSpec
        The scene.
    cache : RIRCache, optional
        Where RIRs come from; pass one shared cache to reuse RIRs across scenes (and a disk
        store across processes). ``None``: a private in-memory cache for this call.
    signals : callable, optional
        ``signals(source, spec) -> mono array`` for every source (default
        :func:`source_signal`). For diffuse noise it is called once per microphone with the
        ``audio["seed"]`` of that microphone.

    Returns
    -------
    RenderedScene
        ``audio`` float32 ``(round(duration_s * sample_rate), mics)``.

    Raises
    ------
    SpecError
        A source cannot be produced (the message names it) or the augment chain is invalid.

    Examples
    --------
    >>> from chimein.scenes.spec import Room, Mics, Source, SceneSpec, Annotations
    >>> beep = Source(id="b", kind="file", role="event", audio={"path": "-"}, onset_s=0.25,
    ...               position=(1.0, 1.0, 1.2))
    >>> spec = SceneSpec(id="s", seed=1, duration_s=1.0, room=Room(dims=(4.0, 3.0, 2.5), rt60=0.2),
    ...                  mics=Mics.array((2.0, 1.5, 1.2), "linear", 2), sources=(beep,),
    ...                  annotations=Annotations())
    >>> out = render(spec, signals=lambda s, sp: np.ones(800, np.float32))
    >>> out.audio.shape, bool(np.abs(out.audio[:4000]).max() == 0.0)
    ((16000, 2), True)
    """
    sr = spec.sample_rate
    n = _samples(spec.duration_s, sr)
    provider = signals if signals is not None else source_signal
    cache = cache if cache is not None else RIRCache(disk=False)
    mix = np.zeros((spec.mics.n, n), dtype=np.float32)

    points = [s for s in spec.sources if s.kind != "noise"]
    if points:
        for s in points:
            if s.position is None:
                raise SpecError(f"source {s.id!r}: field 'position': a point source needs [x, y, z]")
        walking = [s for s in points if s.path is not None]
        points = [s for s in points if s.path is None]
        found = cache.lookup(spec.room, spec.mics, [s.position for s in points], sr,  # type: ignore[misc]
                             seed=spec.seed)
        _convolve_sources(mix, [(_samples(s.onset_s, sr), _dry(s, spec, provider), h, key)
                                for s, (key, h) in zip(points, found, strict=True)
                                if _samples(s.onset_s, sr) < n], cache)
        for s in walking:
            _add_walking(mix, s, spec, provider, cache)

    noises = [s for s in spec.sources if s.kind == "noise"]
    if noises:
        sig_power = active_power(mix[0], sr)
        total = mix.astype(np.float64)
        for s in noises:
            onset = _samples(s.onset_s, sr)
            if onset >= n:
                continue
            span = _samples(s.duration_s, sr) if s.duration_s is not None else n - onset
            span = max(1, min(span, n - onset))
            noise = _noise_channels(s, spec, provider, span)
            if "snr_db" in s.audio and sig_power > 0.0:
                try:
                    snr = float(s.audio["snr_db"])
                except (TypeError, ValueError):
                    raise SpecError(f"source {s.id!r}: field 'audio.snr_db': expected a number, "
                                    f"got {s.audio['snr_db']!r}") from None
                if not math.isfinite(snr):
                    raise SpecError(f"source {s.id!r}: field 'audio.snr_db': must be finite")
                p_noise = float(np.mean(np.square(noise[0])))
                gain = math.sqrt(sig_power / (p_noise * 10.0 ** (snr / 10.0)))
            else:
                gain = 10.0 ** (s.level_db / 20.0)
            total[:, onset: onset + span] += gain * noise
        mix = total.astype(np.float32)

    if spec.device is not None:  # the recording device, after the room (chimein.scenes.device)
        from chimein.scenes.device import apply_device

        mix = np.ascontiguousarray(apply_device(np.ascontiguousarray(mix.T), sr, spec.device).T, dtype=np.float32)
    if spec.augment:
        from chimein.scenes.augment import build_chain

        audio = build_chain(spec.augment)(np.ascontiguousarray(mix.T), sr, spec.seed)
    else:
        audio = mix.T
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > PEAK_LIMIT:
        audio = audio * np.float32(PEAK_LIMIT / peak)
    return RenderedScene(audio=np.ascontiguousarray(audio, dtype=np.float32), sample_rate=sr, spec=spec)
