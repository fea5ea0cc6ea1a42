"""Speech packs: sound packs of recorded speech by talkers that training never heard.

A model trained on chimein's scenes has heard the training voices (:data:`TRAINING_VOICES`) and
the speakers drawn from ``speaker_pool_seed = 0``. To judge it on voices it never heard,
:func:`make_speech_pack` records a pack of addressed requests and bystander chit-chat spoken by
*held-back* talkers -- by default flite's ``awb`` (a voice no training preset uses) and piper's
``joe`` with speakers drawn from :data:`HELDOUT_SPEAKER_SEED` -- and writes it in
Proactive-Sound-Bench's format (:mod:`chimein.scenes.packs`), so that the scene sampler mixes
it in like any user's recordings::

    chimein scenes speech-pack out=packs/heldout
    chimein scenes generate out=runs/heldout scenes.sound_packs=[packs/heldout] scenes.pack_fraction=1.0

What the pack holds
-------------------
- ``manifest.jsonl``: one line per recording;
- ``Human Signals/Speech/RESPOND/req0000.wav`` ...: **requests** to the assistant (decision
  ``RESPOND``, action ``RESPOND``, description = what is said). With ``natural`` they sound like
  people: fillers ("um"), self-corrections ("five, no, ten minutes") and, for about
  ``pause_rate`` of them, mid-turn pauses of ``pause_s`` seconds (:mod:`chimein.scenes.turns`;
  some are the ``pauses`` family's turns split in two or three fragments). The sampler finds
  the pauses in the audio (:mod:`chimein.scenes.pack_speech`) and annotates them as mid-turn
  pauses; such requests also serve the ``pauses`` family;
- ``Human Signals/Conversation/IGNORE/chat0000.wav`` ...: **chit-chat** (decision ``IGNORE``,
  speech): one line, or a line and a reply by a second talker; scenes play it as bystander talk;
- ``speakers.json``: who is in the pack -- every speaker's generator, voice and speaker-model
  parameters (:func:`chimein.scenes.talkers.pool_speaker`) and why it is held out -- and, per
  entry, its speakers, text, features and the planned pauses (seconds from the file's start).

Talkers: every pair of ``generators`` x ``voices`` has ``speakers_per_voice`` speakers, speaker
``k`` being :func:`~chimein.scenes.talkers.pool_speaker` ``k`` of ``speaker_pool_seed`` (the
ranges of the default scenes preset). Entries go round the speakers in shuffled rounds, so each
speaker says about as many lines; per line the tempo varies as in scenes (the habitual tempo
times ``rate / 175``, ``rate`` from the preset's ``speech_rate``). Each file is 16-bit PCM WAV
at ``sample_rate``: 0.1-0.3 s of silence, the speech at -20 dBFS RMS plus the speaker's
``level_db`` (peaks at most -0.2 dBFS), 0.1-0.3 s of silence.

Determinism and writing
-----------------------
Every random choice derives from ``seed``: entry ``i`` draws from ``SeedSequence([seed, kind,
0, i])`` and round ``r`` of the speaker rotation from ``SeedSequence([seed, kind, 1, r])``, so
the same arguments give a byte-identical pack in any process, and a larger ``n_requests`` or
``n_chitchat`` keeps the entries of a smaller one. The pack is written into a fresh temporary
folder that then replaces ``out_dir`` in one rename (:func:`chimein.io.atomic_write_dir`):
``out_dir`` is always absent, the old pack, or the complete new one. ``out_dir`` may be a new
or empty folder, or a speech pack written before (its ``speakers.json`` says so), which is
replaced whole; any other folder is refused, so user files are never deleted.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chimein._version import __version__
from chimein.errors import ConfigError, SpecError
from chimein.io import _umask, atomic_write_dir, atomic_write_text
from chimein.scenes.talkers import HELDOUT_SPEAKER_SEED

__all__ = [
    "FORMAT",
    "PAUSE_S_MIN",
    "SPEAKERS_NAME",
    "make_speech_pack",
    "pack_summary",
]

FORMAT = "chimein-speech-pack/1"
"""The ``format`` field of ``speakers.json``: what marks a folder as a speech pack."""
SPEAKERS_NAME = "speakers.json"
"""Who is in the pack (see the module notes)."""
PAUSE_S_MIN = 0.3
"""Shortest planned pause (s): comfortably above the 0.25 s that
:mod:`chimein.scenes.pack_speech` needs to find a pause in the audio."""

_REQUEST_DIR = ("Human Signals", "Speech", "RESPOND")
_CHAT_DIR = ("Human Signals", "Conversation", "IGNORE")
_REQUEST, _CHAT = 0, 1  # the ``kind`` of the seed sequences
_TARGET_RMS_DB = -20.0
_PEAK = 10.0 ** (-0.2 / 20.0)
_EDGE_S = (0.1, 0.3)
_REPLY_GAP_S = (0.3, 0.9)
_LENGTHEN = (1.1, 1.6)  # as the sampler lengthens the word before a pause
_SPLIT_SHARE = 0.3  # of the paused requests: the pauses family's split turns
_P_FILLER, _P_CORRECTION, _P_REPLY = 0.3, 0.15, 0.5
_BASE_RATE = 175.0
_WHERE = "speech pack"


# ------------------------------------------------------------------------------------------
# Arguments
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Args:
    """The checked arguments of :func:`make_speech_pack`."""

    out_dir: Path
    n_requests: int
    n_chitchat: int
    voices: dict[str, tuple[str, ...]]
    speaker_pool_seed: int
    speakers_per_voice: int
    natural: bool
    pause_s: tuple[float, float]
    pause_rate: float
    seed: int
    sample_rate: int

    def record(self) -> dict[str, Any]:
        """The arguments as ``speakers.json`` records them (no folder: it may move)."""
        return {"n_requests": self.n_requests, "n_chitchat": self.n_chitchat,
                "voices": {g: list(v) for g, v in self.voices.items()},
                "speaker_pool_seed": self.speaker_pool_seed,
                "speakers_per_voice": self.speakers_per_voice, "natural": self.natural,
                "pause_s": list(self.pause_s), "pause_rate": self.pause_rate, "seed": self.seed,
                "sample_rate": self.sample_rate}


def _bad(field: str, msg: str) -> ConfigError:
    return ConfigError(f"{_WHERE}: field {field!r}: {msg}")


def _int(field: str, v: Any, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or not lo <= int(v) <= hi:
        raise _bad(field, f"need an integer in [{lo}, {hi}], got {v!r}")
    return int(v)


def _number(field: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float | np.number) or not math.isfinite(float(v)):
        raise _bad(field, f"need a finite number, got {v!r}")
    return float(v)


def _names(field: str, v: Any) -> tuple[str, ...]:
    """A non-empty list of distinct non-empty strings."""
    if isinstance(v, str | bytes) or not isinstance(v, Sequence) or not v:
        raise _bad(field, f"need a non-empty list of names, got {v!r}")
    out = tuple(v)
    for x in out:
        if not isinstance(x, str) or not x.strip():
            raise _bad(field, f"need names (strings), got {x!r} in {list(out)}")
    dup = sorted({x for x in out if out.count(x) > 1})
    if dup:
        raise _bad(field, f"{dup} listed more than once; list each once")
    return out


def _voices(generators: tuple[str, ...], voices: Any) -> dict[str, tuple[str, ...]]:
    """``{generator: voices}`` with the defaults filled in and every name checked."""
    from chimein.scenes.speech.espeak import available_voice
    from chimein.scenes.speech.generators import generator_available, generator_voices
    from chimein.scenes.talkers import GENERATOR_NAMES, HELDOUT_VOICES, TRAINING_VOICES

    for g in generators:
        if g not in GENERATOR_NAMES:
            raise _bad("generators", f"unknown generator {g!r}; use some of {list(GENERATOR_NAMES)}")
    if voices is None:
        voices = {}
    if not isinstance(voices, Mapping):
        raise _bad("voices", f"need a mapping generator -> [voices] such as {{flite: [awb]}}, "
                             f"or null for the defaults; got {voices!r}")
    for g in voices:
        if g not in generators:
            raise _bad("voices", f"generator {g!r} is not among generators {list(generators)}; "
                                 "add it there or drop its voices")
    out: dict[str, tuple[str, ...]] = {}
    for g in generators:
        chosen = voices.get(g)
        names = (_names(f"voices.{g}", chosen) if chosen is not None
                 else HELDOUT_VOICES.get(g, TRAINING_VOICES[g]))
        for v in names:
            if g == "espeak-ng":
                try:
                    available_voice(v)
                except SpecError as e:
                    raise _bad(f"voices.{g}", str(e)) from None
            elif v not in generator_voices(g):
                raise _bad(f"voices.{g}", f"unknown voice {v!r}; use some of {list(generator_voices(g))}")
        if not generator_available(g):
            raise _bad("generators", f"{g} is not installed here (piper: pip install "
                                     "'chimein[piper]'; flite: apt-get install flite); install it "
                                     "or leave it out")
        out[g] = tuple(names)
    return out


def _check(out_dir: Any, n_requests: Any, n_chitchat: Any, generators: Any, voices: Any,
           speaker_pool_seed: Any, speakers_per_voice: Any, natural: Any, pause_s: Any,
           pause_rate: Any, seed: Any, sample_rate: Any) -> _Args:
    if not isinstance(out_dir, str | os.PathLike) or not str(out_dir).strip():
        raise _bad("out_dir", f"need a folder path, got {out_dir!r}")
    n_req = _int("n_requests", n_requests, 0, 100_000)
    n_chat = _int("n_chitchat", n_chitchat, 0, 100_000)
    if n_req + n_chat == 0:
        raise _bad("n_requests", "n_requests and n_chitchat are both 0; a pack needs an entry")
    gens = _names("generators", generators)
    if not isinstance(natural, bool):
        raise _bad("natural", f"need true or false, got {natural!r}")
    if isinstance(pause_s, str | bytes) or not isinstance(pause_s, Sequence) or len(pause_s) != 2:
        raise _bad("pause_s", f"need [low, high] seconds, got {pause_s!r}")
    lo, hi = _number("pause_s", pause_s[0]), _number("pause_s", pause_s[1])
    if not PAUSE_S_MIN <= lo <= hi <= 5.0:
        raise _bad("pause_s", f"need {PAUSE_S_MIN} <= low <= high <= 5 (shorter pauses are not "
                              f"found in the audio), got {list(pause_s)}")
    rate = _number("pause_rate", pause_rate)
    if not 0.0 <= rate <= 1.0:
        raise _bad("pause_rate", f"need a probability in [0, 1], got {pause_rate!r}")
    return _Args(
        out_dir=Path(out_dir), n_requests=n_req, n_chitchat=n_chat,
        voices=_voices(gens, voices),
        speaker_pool_seed=_int("speaker_pool_seed", speaker_pool_seed, 0, 2**63 - 1),
        speakers_per_voice=_int("speakers_per_voice", speakers_per_voice, 1, 1000),
        natural=natural, pause_s=(lo, hi), pause_rate=rate,
        seed=_int("seed", seed, 0, 2**63 - 1),
        sample_rate=_int("sample_rate", sample_rate, 8000, 48000),
    )


def _is_speech_pack(d: Path) -> bool:
    """Whether folder ``d`` holds a speech pack (its ``speakers.json`` names :data:`FORMAT`)."""
    try:
        return json.loads((d / SPEAKERS_NAME).read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _check_out(out: Path) -> None:
    """Refuse a destination that is a file, or a folder with files that are not a speech pack."""
    if out.exists() and not out.is_dir():
        raise _bad("out_dir", f"{out} is a file; give a folder for the pack")
    if out.is_dir() and any(out.iterdir()) and not _is_speech_pack(out):
        raise _bad("out_dir", f"{out} holds files that are not a speech pack (no {SPEAKERS_NAME} "
                              f"of format {FORMAT!r}); choose a new or empty folder, or delete it")


# ------------------------------------------------------------------------------------------
# Talkers and lines
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Line:
    """One utterance: its speaker (habitual parameters), text and planned pauses."""

    generator: str
    voice: str
    speaker: dict[str, Any]
    text: str
    pauses: tuple[dict[str, Any], ...] = ()
    features: tuple[str, ...] = ()


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


def _pool(a: _Args, cfg: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """Every speaker of the pack: ``(generator, voice, pool_speaker)`` in a fixed order."""
    from chimein.scenes.talkers import pool_speaker

    return [(g, v, pool_speaker(cfg, g, v, k))
            for g, vs in a.voices.items() for v in vs for k in range(a.speakers_per_voice)]


def _speaker_of(a: _Args, kind: int, i: int, n_pool: int) -> int:
    """Index into the pool of entry ``i``'s speaker: shuffled rounds through the pool."""
    r, j = divmod(i, n_pool)
    return int(_rng(a.seed, kind, 1, r).permutation(n_pool)[j])


def _u(rng: np.random.Generator, r: Sequence[float]) -> float:
    return float(rng.uniform(float(r[0]), float(r[1])))


def _line(rng: np.random.Generator, cfg: Any, who: tuple[str, str, dict[str, Any]], text: str,
          pauses: Sequence[Any], pause_s: tuple[float, float], features: Sequence[str]) -> _Line:
    """``text`` said by ``who`` at a tempo drawn as the sampler draws it, with ``pauses``
    (:class:`~chimein.scenes.turns.PlannedPause`) of ``pause_s`` seconds."""
    g, v, spk = who
    rate = _u(rng, cfg.speech_rate)
    said = dict(spk, tempo=round(float(np.clip(spk["tempo"] * rate / _BASE_RATE, 0.6, 1.6)), 3))
    ps = tuple({"after_word": int(p.after_word), "pause_s": round(_u(rng, pause_s), 3),
                "lengthen": round(_u(rng, _LENGTHEN), 3)} for p in pauses)
    return _Line(g, v, said, text, ps, tuple(features))


def _request(a: _Args, cfg: Any, pool: list[Any], i: int) -> list[_Line]:
    """Request ``i``: a wake request or command, made natural when ``a.natural``."""
    from chimein.scenes import templates, turns

    rng = _rng(a.seed, _REQUEST, 0, i)
    who = pool[_speaker_of(a, _REQUEST, i, len(pool))]
    if a.natural and rng.random() < a.pause_rate * _SPLIT_SHARE:
        plan = turns.paused_turn(rng, templates.split_turn(rng))
    else:
        utt = templates.wake_request(rng) if rng.random() < 0.6 else templates.command(rng)
        plan = (turns.natural_request(rng, utt.text, _P_FILLER, a.pause_rate, _P_CORRECTION)
                if a.natural else turns.TurnPlan(text=utt.text))
    return [_line(rng, cfg, who, plan.text, plan.pauses, a.pause_s, plan.features)]


def _chitchat(a: _Args, cfg: Any, pool: list[Any], i: int) -> list[_Line]:
    """Chit-chat ``i``: one line, or (half the time, with two or more speakers) a reply too."""
    from chimein.scenes import templates

    rng = _rng(a.seed, _CHAT, 0, i)
    k = _speaker_of(a, _CHAT, i, len(pool))
    lines = [_line(rng, cfg, pool[k], templates.chitchat(rng).text, (), a.pause_s, ())]
    if len(pool) > 1 and rng.random() < _P_REPLY:
        other = [j for j in range(len(pool)) if j != k]
        who = pool[other[int(rng.integers(len(other)))]]
        lines.append(_line(rng, cfg, who, templates.chitchat(rng).text, (), a.pause_s, ("reply",)))
    return lines


# ------------------------------------------------------------------------------------------
# Audio
# ------------------------------------------------------------------------------------------
def _record(a: _Args, rng: np.random.Generator, lines: Sequence[_Line]
            ) -> tuple[np.ndarray, list[list[float]]]:
    """The recording of ``lines`` (one after another, gaps of 0.3-0.9 s) and the planned pauses
    as ``[start_s, end_s]`` from the file's start."""
    from chimein.scenes.speech import realize

    sr = a.sample_rate
    parts: list[np.ndarray] = []
    pauses: list[list[float]] = []
    t = round(_u(rng, _EDGE_S) * sr)
    parts.append(np.zeros(t, np.float32))
    for n, ln in enumerate(lines):
        if n:
            gap = round(_u(rng, _REPLY_GAP_S) * sr)
            parts.append(np.zeros(gap, np.float32))
            t += gap
        audio: dict[str, Any] = {"text": ln.text, "generator": ln.generator, "voice": ln.voice,
                                 "speaker": ln.speaker}
        if ln.pauses:
            audio["pauses"] = [dict(p) for p in ln.pauses]
        sp = realize(audio, sr)
        x = np.asarray(sp.audio, np.float64)
        rms = float(np.sqrt(np.mean(x * x))) or 1.0
        x = x * (10.0 ** ((_TARGET_RMS_DB + float(ln.speaker["level_db"])) / 20.0) / rms)
        peak = float(np.max(np.abs(x)))
        if peak > _PEAK:
            x *= _PEAK / peak
        for p in ln.pauses:
            k = int(p["after_word"])
            pauses.append([round(t / sr + sp.words[k].end_s, 4),
                           round(t / sr + sp.words[k + 1].start_s, 4)])
        parts.append(x.astype(np.float32))
        t += x.shape[0]
    parts.append(np.zeros(round(_u(rng, _EDGE_S) * sr), np.float32))
    return np.concatenate(parts), pauses


def _held_out(g: str, v: str, pool_seed: int) -> list[str]:
    """Why talker ``g``/``v`` of ``pool_seed`` is new to training: ``voice``, ``speaker_pool_seed``."""
    from chimein.scenes.talkers import TRAINING_VOICES

    return ((["voice"] if v not in TRAINING_VOICES.get(g, ()) else [])
            + (["speaker_pool_seed"] if pool_seed != 0 else []))


def _write(a: _Args, root: Path, progress: bool) -> None:
    """Fill ``root`` with the pack: audio files, ``manifest.jsonl`` and ``speakers.json``."""
    from chimein.scenes.audio import write_audio
    from chimein.scenes.packs import PackEntry, write_manifest
    from chimein.scenes.sampler import SamplerConfig

    cfg = SamplerConfig.from_mapping({"speaker_pool_seed": a.speaker_pool_seed}).resolved()
    pool = _pool(a, cfg)
    jobs: list[tuple[str, int, Callable[..., list[_Line]], tuple[str, ...], str]] = (
        [(f"req{i:04d}", i, _request, _REQUEST_DIR, "RESPOND") for i in range(a.n_requests)]
        + [(f"chat{i:04d}", i, _chitchat, _CHAT_DIR, "IGNORE") for i in range(a.n_chitchat)])
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="speech pack", unit="file")
    entries: list[PackEntry] = []
    about: dict[str, Any] = {}
    try:
        for eid, i, make, folder, decision in jobs:
            lines = make(a, cfg, pool, i)
            kind = _REQUEST if decision == "RESPOND" else _CHAT
            x, pauses = _record(a, _rng(a.seed, kind, 2, i), lines)
            path = root.joinpath(*folder, f"{eid}.wav")
            write_audio(path, x, a.sample_rate, subtype="PCM_16")
            text = " / ".join(ln.text for ln in lines)
            entries.append(PackEntry(
                id=eid, path=path.resolve(), rel_path="./" + "/".join((*folder, path.name)),
                description=text, decision=decision, action=decision, domain=folder[0],
                subcategory=folder[1], speech=True))
            about[eid] = {"speakers": [ln.speaker["id"] for ln in lines], "text": text,
                          "features": sorted({f for ln in lines for f in ln.features}),
                          "pauses_s": pauses, "duration_s": round(x.shape[0] / a.sample_rate, 4)}
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    write_manifest(root, entries)
    speakers = {spk["id"]: {"generator": g, "voice": v,
                            **{k: spk[k] for k in ("pitch_st", "tempo", "vtl", "level_db")},
                            "held_out": _held_out(g, v, a.speaker_pool_seed)}
                for g, v, spk in pool}
    doc = {"format": FORMAT, "chimein": __version__, "arguments": a.record(),
           "speakers": speakers, "entries": about}
    atomic_write_text(root / SPEAKERS_NAME, json.dumps(doc, indent=1) + "\n")


# ------------------------------------------------------------------------------------------
# Public functions
# ------------------------------------------------------------------------------------------
def make_speech_pack(out_dir: str | os.PathLike[str], *, n_requests: int = 60,
                     n_chitchat: int = 30, generators: Sequence[str] = ("piper", "flite"),
                     voices: Mapping[str, Sequence[str]] | None = None,
                     speaker_pool_seed: int = HELDOUT_SPEAKER_SEED, speakers_per_voice: int = 4,
                     natural: bool = True, pause_s: Sequence[float] = (0.5, 1.5),
                     pause_rate: float = 0.5, seed: int = 0, sample_rate: int = 16000,
                     progress: bool = False) -> Path:
    """Record a sound pack of requests and chit-chat by held-back talkers (module notes).

    Parameters
    ----------
    out_dir
        The pack's folder: new, empty, or a speech pack made before (replaced whole,
        atomically). Any other non-empty folder is refused.
    n_requests
        Number of addressed requests (``RESPOND`` entries).
    n_chitchat
        Number of chit-chat recordings (``IGNORE`` speech entries). ``n_requests +
        n_chitchat`` must be at least 1.
    generators
        Speech generators of the talkers (:data:`chimein.scenes.talkers.GENERATOR_NAMES`);
        each must be installed.
    voices
        ``{generator: [voices]}``; a generator left out (or ``None`` for all) takes its held-out
        voices (:data:`~chimein.scenes.talkers.HELDOUT_VOICES`: flite ``awb``) if it has any,
        else its training voices (piper ``joe``: held out by ``speaker_pool_seed`` alone).
    speaker_pool_seed
        Seed of the speakers (:func:`~chimein.scenes.talkers.pool_speaker`); the default is
        :data:`~chimein.scenes.talkers.HELDOUT_SPEAKER_SEED` (training presets use 0).
    speakers_per_voice
        Speakers per voice (speaker model: pitch, tempo, vocal-tract length, level).
    natural
        Fillers, self-corrections and mid-turn pauses in requests (else templates as written).
    pause_s
        ``[low, high]`` length (s) of a mid-turn pause, ``low >= PAUSE_S_MIN``.
    pause_rate
        Probability that a request pauses mid-turn (when ``natural``; about that share do).
    seed
        Every random choice derives from it.
    sample_rate
        Rate of the WAV files (Hz).
    progress
        Show a progress bar (tqdm, on stderr).

    Returns
    -------
    Path
        The pack's ``manifest.jsonl``.

    Raises
    ------
    ConfigError
        A bad argument or a generator that is not installed (the message names the field), or
        an ``out_dir`` that holds other files.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()) / "pack"
    >>> m = make_speech_pack(d, n_requests=2, n_chitchat=1, generators=["espeak-ng"],
    ...                      voices={"espeak-ng": ["en-us+f3"]}, speakers_per_voice=2)
    >>> from chimein.scenes.packs import SoundPack
    >>> [(e.id, e.action, e.speech) for e in SoundPack.load(m)]
    [('req0000', 'RESPOND', True), ('req0001', 'RESPOND', True), ('chat0000', 'IGNORE', True)]
    >>> print(pack_summary(m))  # doctest: +ELLIPSIS
    2 requests (... pause mid-turn), 1 chit-chat; 2 speakers: espeak-ng en-us+f3 x2 (held out: speaker_pool_seed)
    """
    a = _check(out_dir, n_requests, n_chitchat, generators, voices, speaker_pool_seed,
               speakers_per_voice, natural, pause_s, pause_rate, seed, sample_rate)
    target = a.out_dir.resolve()  # "." and ".." have no name to rename
    _check_out(target)
    atomic_write_dir(target, lambda tmp: _write(a, tmp, bool(progress)), mode=0o777 & ~_umask())
    return a.out_dir / "manifest.jsonl"


def pack_summary(manifest: str | os.PathLike[str]) -> str:
    """One line on a speech pack: its entries and speakers (from its ``speakers.json``).

    Examples
    --------
    See :func:`make_speech_pack`.
    """
    d = Path(manifest).parent
    if not _is_speech_pack(d):
        raise ConfigError(f"{_WHERE}: {d} has no {SPEAKERS_NAME} of format {FORMAT!r}; make the "
                          "pack with `chimein scenes speech-pack`")
    doc = json.loads((d / SPEAKERS_NAME).read_text(encoding="utf-8"))
    entries = doc["entries"]
    req = [e for k, e in entries.items() if k.startswith("req")]
    paused = sum(bool(e["pauses_s"]) for e in req)
    groups: dict[tuple[str, str], list[list[str]]] = {}
    for s in doc["speakers"].values():
        groups.setdefault((s["generator"], s["voice"]), []).append(s["held_out"])
    parts = []
    for (g, v), held in groups.items():
        why = sorted({r for h in held for r in h})
        parts.append(f"{g} {v} x{len(held)} (held out: {', '.join(why) or 'no'})")
    n_req, n_spk = len(req), len(doc["speakers"])
    return (f"{n_req} request{'s' * (n_req != 1)} ({paused} pause mid-turn), "
            f"{len(entries) - n_req} chit-chat; {n_spk} speaker{'s' * (n_spk != 1)}: "
            f"{', '.join(parts)}")
