"""Where a recorded utterance speaks and where it pauses: speech pieces of sound-pack recordings.

A recorded request ("hey chime, can you remind me to ... call mum at six") often pauses in the
middle. The sampler annotates such a recording the way the synthetic ``pauses`` family
annotates its turns: one ``speech`` span per piece and a ``pause`` span in each gap between
pieces, so that acting in the pause is scored as taking over a mid-turn pause (not as talking
over speech) and the RESPOND window opens when the last piece ends.

The rule
--------
The recording (mono, at the scene's sample rate) is cut into 10 ms frames (:data:`FRAME_S`),
and each frame's energy taken in dB (mean square). Levels are relative to the recording itself,
so neither its gain nor the scene's mixing level matters:

- **speech level** ``L``: the 95th percentile of the energies of the frames within 60 dB of the
  loudest one (a click cannot set it; long digital silence does not lower it);
- **noise floor** ``F``: the 10th percentile of all frame energies;
- a frame is **silent** when its energy is below ``max(L - 30 dB, F + 6 dB)``
  (:data:`SILENCE_BELOW_DB`, :data:`NOISE_MARGIN_DB`): 30 dB under the speech, or within 6 dB
  of a steady noise floor;
- silent runs shorter than :data:`MIN_PAUSE_S` (0.25 s, the usual silent-pause threshold of
  pause studies: stop closures and the gaps between words are shorter) are bridged;
- then non-silent runs shorter than :data:`MIN_PIECE_S` (60 ms: a click, a lip smack) are
  dropped, which merges the gaps around them.

What remains are the **speech pieces**, ``(start_s, end_s)`` from the start of the recording;
the first starts where speech starts and the last ends where it ends, and every gap between two
pieces is at least :data:`MIN_PAUSE_S` long: a pause. When the noise floor is within
:data:`MIN_CONTRAST_DB` (20 dB) of the speech level, no pause can be told from noise: the whole
recording is one piece. A breath loud enough to pass the threshold inside a pause shortens or
splits it; a recording of several people talking yields gaps between talkers as pauses too
(the sampler annotates them as the talker's pauses).

Examples
--------
>>> import numpy as np
>>> sr = 16000
>>> word = 0.3 * np.sin(2 * np.pi * 220 * np.arange(int(0.4 * sr)) / sr)
>>> x = np.concatenate([np.zeros(1600), word, np.zeros(8000), word, np.zeros(1600)])
>>> pieces = speech_pieces(x, sr)
>>> pieces
((0.1, 0.5), (1.0, 1.4))
>>> pauses_between(pieces)
((0.5, 1.0),)
"""

from __future__ import annotations

import numpy as np

from chimein.errors import AudioError

__all__ = [
    "FRAME_S",
    "MIN_CONTRAST_DB",
    "MIN_PAUSE_S",
    "MIN_PIECE_S",
    "NOISE_MARGIN_DB",
    "SILENCE_BELOW_DB",
    "Pieces",
    "pauses_between",
    "speech_pieces",
]

FRAME_S = 0.010
"""Frame length (s) of the energy analysis; piece edges fall on this grid."""
MIN_PAUSE_S = 0.25
"""A silent gap at least this long (s) inside speech is a pause."""
MIN_PIECE_S = 0.06
"""A non-silent run shorter than this (s) between pauses is a click, not speech."""
SILENCE_BELOW_DB = 30.0
"""A frame this many dB below the speech level is silent."""
NOISE_MARGIN_DB = 6.0
"""A frame within this many dB of the noise floor is silent."""
MIN_CONTRAST_DB = 20.0
"""Below this speech-to-noise-floor contrast (dB) no pause is detected: one piece."""

#: Speech pieces: ``(start_s, end_s)`` pairs, in order, seconds from the recording's start.
Pieces = tuple[tuple[float, float], ...]


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` frame index runs where ``mask`` is true."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


def speech_pieces(x: np.ndarray, sample_rate: int) -> Pieces:
    """The speech pieces of a mono recording (see the module's rule).

    Parameters
    ----------
    x
        Mono audio, shape ``(samples,)``, finite.
    sample_rate
        Its rate (Hz).

    Returns
    -------
    Pieces
        At least one piece; gaps between consecutive pieces are at least :data:`MIN_PAUSE_S`.
        A recording shorter than one frame is one piece over all of it.

    Raises
    ------
    AudioError
        ``x`` is not one-dimensional or not finite.
    """
    x = np.asarray(x)
    if x.ndim != 1 or not np.isfinite(x).all():
        raise AudioError(f"speech_pieces: need finite mono audio, got shape {x.shape}")
    dur = x.shape[0] / sample_rate
    hop = max(1, int(round(FRAME_S * sample_rate)))
    n = x.shape[0] // hop
    if n == 0:
        return ((0.0, round(dur, 4)),)
    frames = x[: n * hop].astype(np.float64).reshape(n, hop)
    e = 10.0 * np.log10(np.mean(frames * frames, axis=1) + 1e-12)
    level = float(np.percentile(e[e > e.max() - 60.0], 95))
    floor = float(np.percentile(e, 10))
    if level - floor < MIN_CONTRAST_DB:
        return ((0.0, round(dur, 4)),)
    loud = e >= max(level - SILENCE_BELOW_DB, floor + NOISE_MARGIN_DB)
    min_gap = int(round(MIN_PAUSE_S / FRAME_S))
    runs = _runs(loud)
    bridged: list[list[int]] = []
    for a, b in runs:  # bridge gaps shorter than a pause
        if bridged and a - bridged[-1][1] < min_gap:
            bridged[-1][1] = b
        else:
            bridged.append([a, b])
    kept = [r for r in bridged if (r[1] - r[0]) * FRAME_S >= MIN_PIECE_S - 1e-9] or bridged
    step = hop / sample_rate
    return tuple((round(a * step, 4), round(min(b * step, dur), 4)) for a, b in kept)


def pauses_between(pieces: Pieces) -> Pieces:
    """The gaps between consecutive speech pieces: ``(end of one, start of the next)``."""
    return tuple((a[1], b[0]) for a, b in zip(pieces[:-1], pieces[1:], strict=True))
