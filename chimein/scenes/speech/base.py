"""What every speech generator returns: :class:`Speech`, audio with word timings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chimein.scenes.spec import Word

__all__ = ["Speech"]


@dataclass(frozen=True, eq=False)
class Speech:
    """A synthesised utterance: mono float32 audio and word timings.

    ``words`` times are seconds from the start of ``audio``; ``audio`` starts and ends with
    speech (silence trimmed) and is read-only, because results are shared through a cache.
    Compared by identity (it holds an array).
    """

    audio: np.ndarray
    sample_rate: int
    words: tuple[Word, ...]

    @property
    def duration_s(self) -> float:
        """Length of the audio in seconds."""
        return self.audio.shape[0] / self.sample_rate
