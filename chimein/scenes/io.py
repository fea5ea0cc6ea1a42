"""File IO shared by the whole package: atomic writes, validated audio reading, safe paths.

Every write goes to a temporary file in the destination folder and is renamed into place, so
an interrupted job never leaves a half-written file under a final name. Every audio read is
validated at the boundary: a missing, corrupt, empty, silent or non-finite file raises
:class:`AudioError` naming the file, instead of failing later deep inside numpy.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from chimein.scenes.spec import SpecError


class AudioError(SpecError):
    """An audio file cannot be used; the message names the file and the problem."""


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # portable fallback: read by setting, then restore at once
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> None:
    """Call ``write(tmp_path)`` then rename ``tmp_path`` onto ``path`` (same folder, atomic)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file 0600; give the final file the mode a plain open() would have
    # (or keep the mode of the file being replaced), so datasets stay readable by others.
    try:
        mode = p.stat().st_mode & 0o777
    except OSError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp" + p.suffix, dir=p.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, mode)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    def _w(t: Path) -> None:
        with open(t, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    atomic_write(path, _w)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def safe_join(root: str | Path, rel: str | Path, what: str = "path") -> Path:
    """Resolve ``rel`` inside ``root``; refuse absolute paths and paths that leave ``root``.

    Used for every path read from a manifest, so a manifest cannot point at ``/etc/passwd``
    or ``../../secrets``.
    """
    root_r = Path(root).resolve()
    if "\x00" in str(rel):
        raise SpecError(f"{what} {str(rel)!r} contains a NUL byte; write a plain relative path")
    relp = Path(rel)
    if relp.is_absolute():
        raise SpecError(f"{what} {str(rel)!r} is absolute; manifest paths must be relative to {root_r}")
    try:
        full = (root_r / relp).resolve()
    except (OSError, RuntimeError) as e:  # symlink loop and friends
        raise SpecError(f"{what} {str(rel)!r} cannot be resolved ({e}); fix the link") from None
    if full != root_r and root_r not in full.parents:
        raise SpecError(f"{what} {str(rel)!r} leaves its folder {root_r}; keep files inside it")
    return full


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
        (RMS of the returned signal, after any downmix, below ``silence_dbfs``).
    """
    import soundfile as sf

    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer) or sample_rate <= 0:
        raise SpecError(f"sample_rate must be a positive integer in Hz, got {sample_rate!r}")
    p = Path(path)
    if not p.is_file():
        raise AudioError(f"{p}: audio file not found")
    if p.stat().st_size == 0:
        raise AudioError(f"{p}: audio file is empty (0 bytes)")
    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception as e:  # soundfile.LibsndfileError and friends
        raise AudioError(f"{p}: cannot decode audio ({e}); is it a valid WAV/FLAC/OGG/MP3 file?") from None
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
        raise SpecError(f"{p}: unsupported audio suffix; use .flac, .wav or .ogg")
    st = subtype or {"FLAC": "PCM_24", "WAV": "FLOAT", "OGG": "VORBIS"}[fmt]
    arr = np.asarray(audio)
    if arr.ndim not in (1, 2) or arr.size == 0:
        raise SpecError(f"{p}: audio must be a non-empty (samples,) or (samples, channels) array, got shape {arr.shape}")
    if fmt == "WAV" and st == "FLOAT":
        from scipy.io import wavfile

        data = np.ascontiguousarray(audio, dtype=np.float32)
        atomic_write(p, lambda t: wavfile.write(str(t), int(sample_rate), data))
        return
    atomic_write(p, lambda t: sf.write(str(t), audio, sample_rate, format=fmt, subtype=st))
