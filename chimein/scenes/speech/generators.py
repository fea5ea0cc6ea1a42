"""Speech generators behind one interface: :func:`generate` gives audio with word timings.

========== ================================ ==================================================
generator  voices                           word timings (:func:`timing_method`)
========== ================================ ==================================================
espeak-ng  :data:`.espeak.VOICES` (and any  ``engine word events``: espeak-ng reports the
           shipped ``base[+variant]``)      output sample where each word starts
piper      ``joe`` (the ``piper`` extra)    ``model phoneme alignment``: the VITS model's own
                                            per-phoneme durations, grouped into words
flite      ``slt`` ``rms`` ``awb``          ``segment durations``: flite's timed segments,
           ``kal16`` (system ``flite``)     mapped onto each word's phones
========== ================================ ==================================================

Each generator uses the timing its engine knows exactly, because a model's own durations are
sample-accurate while any estimate from the audio is not. When a generator's timings cannot be
mapped onto the text's words (the engine reads a token as several words, or joins some), the
words are found by :func:`.align.forced_align` (DTW against an espeak-ng rendering of the same
text), and if even that fails by :func:`.align.energy_estimate`; :func:`generate_timed` says
which method was used, and the cache keeps it.

Output is what :mod:`.espeak` gives: float32 mono at ``sample_rate`` (resampled polyphase from
the engine's rate), read-only, leading and trailing silence trimmed on 10 ms frames
(:data:`.espeak.SILENCE_DB`), one :class:`~chimein.scenes.spec.Word` per whitespace token of
the text (edge punctuation stripped), seconds from the trimmed start; the first word starts at
0 and the last ends at the end of the audio, where speech energy starts and ends. espeak-ng
keeps its native rate and pitch; piper and flite have none (tempo and pitch come from the
speaker model applied afterwards). Every generator is deterministic: the same arguments give
the same bytes in any process and in any order. espeak-ng and piper keep state that changes
with every synthesis and that no API call resets (espeak-ng's C statics; the random generator
of piper's onnxruntime session, which also draws the model's noise), so each loads once in a
helper process that forks per request and answers from the pristine fork (:mod:`.espeak`,
:mod:`._forkhelper`); flite runs a fresh ``flite`` process per call.

Results go through a :class:`.cache.SpeechCache` (memory and disk, keyed by everything that
determines them, including the engine's version and a digest of this code), so repeated
utterances cost a file read; cached and computed results are bit-identical.

Examples
--------
>>> sp = generate("espeak-ng", "hey chime, set a timer", "en-us+f3", cache=False)
>>> [w.text for w in sp.words], sp.sample_rate
(['hey', 'chime', 'set', 'a', 'timer'], 16000)
>>> timing_method("flite")
'segment durations'
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
from importlib import metadata
from pathlib import Path

import numpy as np

from chimein.errors import SpecError
from chimein.scenes.audio import resample
from chimein.scenes.speech.align import TimedAudio
from chimein.scenes.speech.base import Speech
from chimein.scenes.speech.cache import SpeechCache, default_speech_cache

__all__ = [
    "FALLBACK_METHODS",
    "GENERATORS",
    "engine_version",
    "generate",
    "generate_timed",
    "generator_available",
    "generator_voices",
    "timing_method",
]

log = logging.getLogger(__name__)

GENERATORS: tuple[str, ...] = ("espeak-ng", "piper", "flite")
"""The speech generators, in order of preference for v0 compatibility (espeak-ng first)."""

_TIMING = {
    "espeak-ng": "engine word events",
    "piper": "model phoneme alignment",
    "flite": "segment durations",
}
FALLBACK_METHODS: tuple[str, ...] = ("forced alignment", "energy estimate")
"""What :func:`generate_timed` reports when a generator's own timings could not be used."""

_MAX_TEXT_CHARS = 2000


def _check_generator(generator: str) -> str:
    if generator not in GENERATORS:
        raise SpecError(f"speech: field 'generator': unknown generator {generator!r}; use one "
                        f"of {GENERATORS}")
    return generator


def generator_voices(generator: str) -> tuple[str, ...]:
    """The voices offered by ``generator`` (espeak-ng accepts other shipped voices too).

    Examples
    --------
    >>> generator_voices("flite")
    ('slt', 'rms', 'awb', 'kal16')
    """
    g = _check_generator(generator)
    if g == "espeak-ng":
        from chimein.scenes.speech.espeak import VOICES
    elif g == "piper":
        from chimein.scenes.speech.piper import VOICES
    else:
        from chimein.scenes.speech.flite import VOICES
    return tuple(VOICES)


def timing_method(generator: str) -> str:
    """How ``generator``'s word timings are obtained (see the module notes)."""
    return _TIMING[_check_generator(generator)]


def generator_available(generator: str) -> bool:
    """Whether ``generator`` can run here (its package or program is installed).

    espeak-ng is a core dependency; piper needs ``pip install 'chimein[piper]'``; flite needs
    the system ``flite`` program (``apt-get install flite``).
    """
    g = _check_generator(generator)
    if g == "espeak-ng":
        return importlib.util.find_spec("espeakng_loader") is not None
    if g == "piper":
        import chimein.scenes.speech.piper as piper

        return piper.available()
    import chimein.scenes.speech.flite as flite

    return flite.available()


@functools.lru_cache(maxsize=8)
def _code_digest(generator: str) -> str:
    """SHA-256 of the modules that shape ``generator``'s output, so edits invalidate the cache."""
    import chimein.scenes.speech.align as align
    import chimein.scenes.speech.base as base
    import chimein.scenes.speech.espeak as espeak

    mods = [Path(__file__), Path(align.__file__), Path(base.__file__), Path(espeak.__file__)]
    if generator != "espeak-ng":
        mods.append(Path(__file__).with_name(generator + ".py"))
    h = hashlib.sha256()
    for p in mods:
        h.update(p.read_bytes())
    return h.hexdigest()


def engine_version(generator: str, voice: str) -> str:
    """What identifies ``generator``'s engine and voice data (part of the cache key).

    espeak-ng: the ``espeakng-loader`` version; piper: package versions, model and config
    digests and the synthesis recipe (:func:`.piper.version`); flite: ``flite --version`` and
    its voice list. Plus a digest of the generator's code.

    Raises
    ------
    ConfigError
        The generator is not installed.
    """
    g = _check_generator(generator)
    if g == "espeak-ng":
        ver = "espeakng-loader " + metadata.version("espeakng-loader")
    elif g == "piper":
        import chimein.scenes.speech.piper as piper

        ver = piper.version(voice)
    else:
        import chimein.scenes.speech.flite as flite

        ver = flite.version()
    return f"{ver}; code {_code_digest(g)}"


def _int_field(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise SpecError(f"speech: field '{name}': need an integer in [{lo}, {hi}], got {value!r}")
    if not lo <= int(value) <= hi:
        raise SpecError(f"speech: field '{name}': {int(value)} is outside [{lo}, {hi}]")
    return int(value)


def _canonical_voice(generator: str, voice: str) -> str:
    if not isinstance(voice, str) or not voice.strip():
        raise SpecError(f"speech: field 'voice': need a {generator} voice, one of "
                        f"{generator_voices(generator)}, got {voice!r}")
    if generator == "espeak-ng":
        from chimein.scenes.speech.espeak import available_voice

        return available_voice(voice)
    if generator == "piper":
        from chimein.scenes.speech.piper import check_voice

        return check_voice(voice.strip())
    from chimein.scenes.speech.flite import check_voice as check_flite

    return check_flite(voice.strip())


def generate(generator: str, text: str, voice: str, sample_rate: int = 16000, *,
             rate: int | None = None, pitch: int | None = None,
             cache: SpeechCache | bool | None = True) -> Speech:
    """Speak ``text`` with ``generator``'s ``voice``: deterministic, cached, word-timed.

    Parameters
    ----------
    generator : str
        One of :data:`GENERATORS`.
    text : str
        What to say (plain text, at most 2000 characters); whitespace is normalised.
    voice : str
        One of :func:`generator_voices` (espeak-ng: any shipped ``base[+variant]``).
    sample_rate : int
        Output rate in Hz (8000-192000).
    rate, pitch : int, optional
        espeak-ng only: words per minute (default 175) and base pitch 0-99 (default 50).
    cache : SpeechCache or bool
        ``True``: the process's shared cache (:func:`.cache.default_speech_cache`, on disk
        unless ``CHIMEIN_SPEECH_CACHE=0``); a :class:`.cache.SpeechCache`: that one;
        ``False`` or ``None``: synthesise without caching.

    Returns
    -------
    Speech
        See the module notes; :func:`generate_timed` also says how the words were timed.

    Raises
    ------
    SpecError
        Unknown generator or voice, bad text, rate, pitch or sample rate (the message names
        the field), or text that makes no audible speech.
    ConfigError
        The generator is not installed (the message says how to install it).
    """
    return generate_timed(generator, text, voice, sample_rate, rate=rate, pitch=pitch,
                          cache=cache)[0]


def generate_timed(generator: str, text: str, voice: str, sample_rate: int = 16000, *,
                   rate: int | None = None, pitch: int | None = None,
                   cache: SpeechCache | bool | None = True) -> tuple[Speech, str]:
    """:func:`generate`, plus the timing method actually used: :func:`timing_method` of the
    generator, or one of :data:`FALLBACK_METHODS` when its own timings could not be mapped."""
    from chimein.scenes.speech.align import words_of

    g = _check_generator(generator)
    if not isinstance(text, str) or not text.strip():
        raise SpecError(f"speech: field 'text': need non-empty text to speak, got {text!r}")
    if len(text) > _MAX_TEXT_CHARS:
        raise SpecError(f"speech: field 'text': {len(text)} characters; split texts longer "
                        f"than {_MAX_TEXT_CHARS} into several utterances")
    norm = " ".join(text.split())
    if not words_of(norm):
        raise SpecError(f"speech: field 'text': {text!r} has no words to speak")
    sr = _int_field("sample_rate", sample_rate, 8000, 192000)
    if g == "espeak-ng":
        rate_i = _int_field("rate", 175 if rate is None else rate, 80, 450)
        pitch_i: int | None = _int_field("pitch", 50 if pitch is None else pitch, 0, 99)
    else:
        for name, value in (("rate", rate), ("pitch", pitch)):
            if value is not None:
                raise SpecError(f"speech: field '{name}': {g} has no native {name}; leave it "
                                "out and set the speaker model's tempo and pitch_st instead")
        rate_i, pitch_i = 0, None
    name = _canonical_voice(g, voice)

    def make() -> tuple[Speech, str]:
        return _make(g, norm, name, sr, rate_i, pitch_i)

    if cache is True:
        store: SpeechCache | None = default_speech_cache()
    elif cache is False or cache is None:
        store = None
    elif isinstance(cache, SpeechCache):
        store = cache
    else:
        raise SpecError(f"speech: field 'cache': need True, False or a SpeechCache, got {cache!r}")
    if store is None:
        return make()
    key = store.key({"generator": g, "engine": engine_version(g, name), "voice": name,
                     "text": norm, "sample_rate": sr, "rate": rate_i, "pitch": pitch_i})
    return store.get_or_make(key, make)


def _make(generator: str, text: str, voice: str, sr: int, rate: int, pitch: int | None
          ) -> tuple[Speech, str]:
    import chimein.scenes.speech.align as align
    import chimein.scenes.speech.espeak as espeak

    if generator == "espeak-ng":
        sp = espeak.synthesize(text, voice, rate, 50 if pitch is None else pitch, sr)
        return sp, _TIMING[generator]
    tokens = align.words_of(text)
    if generator == "piper":
        import chimein.scenes.speech.piper as piper

        rendering = piper.render(text, voice, tokens)
    else:
        import chimein.scenes.speech.flite as flite

        rendering = flite.render(text, voice, tokens)
    return _finish(generator, rendering, text, tokens, sr)


def _finish(generator: str, r: TimedAudio, text: str, tokens: list[str], sr: int
            ) -> tuple[Speech, str]:
    """Trim, time and resample an engine's output into :class:`Speech`."""
    import chimein.scenes.speech.align as align
    import chimein.scenes.speech.espeak as espeak

    x = np.asarray(r.audio, dtype=np.float32)
    active, hop = espeak._active_frames(x, r.sample_rate)
    if not active.any():
        raise SpecError(f"speech: field 'text': {text!r} produces no audible speech with "
                        f"{generator}; use words it can pronounce")
    idx = np.flatnonzero(active)
    lo, hi = int(idx[0]) * hop, min(x.shape[0], (int(idx[-1]) + 1) * hop)
    xt = x[lo:hi]
    dur = (hi - lo) / r.sample_rate
    method = _TIMING[generator]
    if r.spans is not None and len(r.spans) == len(tokens):
        bounds = np.asarray(r.spans, dtype=np.float64) - lo / r.sample_rate
    else:
        bounds, method = _fallback(xt, r.sample_rate, text, tokens, generator)
    bounds[0, 0] = 0.0  # speech energy starts with the first word and ends with the last
    bounds[-1, 1] = dur
    words = align._tidy(tokens, bounds, dur)
    y = np.ascontiguousarray(resample(xt, r.sample_rate, sr), dtype=np.float32)
    y.flags.writeable = False
    return Speech(audio=y, sample_rate=sr, words=words), method


def _fallback(x: np.ndarray, sr: int, text: str, tokens: list[str], generator: str
              ) -> tuple[np.ndarray, str]:
    """Word bounds by forced alignment to espeak-ng, else by the energy estimate."""
    import chimein.scenes.speech.align as align

    try:
        words = align.forced_align(x, sr, text)
        method = FALLBACK_METHODS[0]
    except SpecError as e:  # espeak-ng cannot render a matching reference
        log.debug("forced alignment failed (%s); estimating from energy", e)
        words = align.energy_estimate(x, sr, text)
        method = FALLBACK_METHODS[1]
    log.debug("%s: word timings of %r by %s", generator, text, method)
    return np.array([[w.start_s, w.end_s] for w in words], dtype=np.float64), method
