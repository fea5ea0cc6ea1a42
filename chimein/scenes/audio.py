"""Audio files: validated reading (any rate, any channel count) and writing, resampling.

Every audio read is validated at the boundary: a missing, corrupt, empty, silent or
non-finite file raises :class:`~chimein.errors.AudioError` naming the file, instead of
failing later deep inside numpy. Writes are atomic (:func:`chimein.io.atomic_write`).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from chimein.errors import AudioError
from chimein.io import atomic_write

__all__ = ["MAX_AUDIO_S", "MAX_FILE_RATE", "MIN_FILE_RATE", "load_audio", "resample", "write_audio"]

#: Sample rates a file read by :func:`load_audio` may have (Hz): below 1 kHz nothing audible is
#: left, above 384 kHz no recorder writes; outside, the file is broken or not audio.
MIN_FILE_RATE, MAX_FILE_RATE = 1_000, 384_000
#: The longest audio :func:`load_audio` returns (seconds, after resampling): an hour, the
#: longest scene a spec allows; longer would only fill memory.
MAX_AUDIO_S = 3600.0


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Polyphase resampling along axis 0 (scipy ``resample_poly``, Kaiser window)."""
    if sr_in == sr_out:
        return x
    from scipy.signal import resample_poly

    fr = Fraction(sr_out, sr_in).limit_denominator(1000)
    return resample_poly(x, fr.numerator, fr.denominator, axis=0).astype(np.float32)


def load_audio(
    path: str | Path,
    sample_rate: int = 16000,
    mono: bool = True,
    silence_dbfs: float = -80.0,
) -> np.ndarray:
    """Read any file libsndfile reads (WAV, FLAC, OGG, MP3, ...), validated.

    Multi-channel audio is downmixed by averaging channels (``mono=True``); the result is
    resampled to ``sample_rate`` with a polyphase filter and returned as float32, shape
    ``(samples,)`` (mono) or ``(samples, channels)``.

    Raises
    ------
    AudioError
        The file is missing, unreadable/corrupt, empty, contains NaN/Inf, or is silent
        (RMS of the returned signal, after any downmix, below ``silence_dbfs``); its sample
        rate is outside [:data:`MIN_FILE_RATE`, :data:`MAX_FILE_RATE`], or it would last longer
        than :data:`MAX_AUDIO_S` (checked from the header, before decoding).
    """
    import soundfile as sf

    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer) or sample_rate <= 0:
        raise AudioError(f"sample_rate must be a positive integer in Hz, got {sample_rate!r}")
    p = Path(path)
    if not p.is_file():
        raise AudioError(f"{p}: audio file not found")
    if p.stat().st_size == 0:
        raise AudioError(f"{p}: audio file is empty (0 bytes)")
    try:
        info = sf.info(str(p))
        _check_size(p, int(info.samplerate), int(info.frames))
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except AudioError:
        raise
    except Exception as e:  # soundfile.LibsndfileError and friends
        raise AudioError(f"{p}: cannot decode audio ({e}); is it a valid WAV/FLAC/OGG/MP3 file?") from None
    _check_size(p, int(sr), data.shape[0])  # the header's frame count may be an estimate (MP3)
    if data.shape[0] == 0:
        raise AudioError(f"{p}: audio file is empty (0 samples)")
    if not np.isfinite(data).all():
        raise AudioError(f"{p}: audio contains NaN or Inf samples")
    if mono:
        data = data.mean(axis=1, keepdims=True)
    # Silence is judged on what the caller gets: anti-phase stereo downmixes to nothing.
    rms = float(np.sqrt(np.mean(np.square(data, dtype=np.float64))))
    if rms <= 10 ** (silence_dbfs / 20):
        raise AudioError(f"{p}: audio is silent (RMS {20 * np.log10(rms + 1e-30):.1f} dBFS < {silence_dbfs} dBFS)")
    data = resample(data, int(sr), sample_rate)
    return np.ascontiguousarray(data[:, 0] if mono else data, dtype=np.float32)


def _check_size(p: Path, sr: int, frames: int) -> None:
    """Refuse a file whose rate is absurd or that would last longer than :data:`MAX_AUDIO_S`."""
    if not MIN_FILE_RATE <= sr <= MAX_FILE_RATE:
        raise AudioError(f"{p}: sample rate {sr} Hz is outside {MIN_FILE_RATE}-{MAX_FILE_RATE} Hz; the file "
                         "is damaged or not audio: re-export it at a common rate (16000, 44100 or 48000 Hz)")
    if frames / sr > MAX_AUDIO_S:
        raise AudioError(f"{p}: audio is too long ({frames / sr:.0f} s > {MAX_AUDIO_S:.0f} s); cut it into "
                         "shorter clips")


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int, subtype: str | None = None) -> None:
    """Write audio atomically; the format follows the suffix (``.flac``, ``.wav`` or ``.ogg``).

    FLAC is written as 24-bit PCM (lossless for the dynamic range of rendered scenes);
    WAV as 32-bit float unless ``subtype`` says otherwise. Float WAV goes through scipy, because
    libsndfile stamps a PEAK chunk with the wall-clock time into float WAVs: the same audio
    must give the same bytes (dataset checksums, bit-identical regeneration).
    """
    import soundfile as sf

    p = Path(path)
    fmt = {".flac": "FLAC", ".wav": "WAV", ".ogg": "OGG"}.get(p.suffix.lower())
    if fmt is None:
        raise AudioError(f"{p}: unsupported audio suffix; use .flac, .wav or .ogg")
    st = subtype or {"FLAC": "PCM_24", "WAV": "FLOAT", "OGG": "VORBIS"}[fmt]
    arr = np.asarray(audio)
    if arr.ndim not in (1, 2) or arr.size == 0:
        raise AudioError(f"{p}: audio must be a non-empty (samples,) or (samples, channels) array, got shape {arr.shape}")
    if fmt == "WAV" and st == "FLOAT":
        from scipy.io import wavfile

        data = np.ascontiguousarray(audio, dtype=np.float32)
        atomic_write(p, lambda t: wavfile.write(str(t), int(sample_rate), data))
        return
    atomic_write(p, lambda t: sf.write(str(t), audio, sample_rate, format=fmt, subtype=st))
