"""Sound packs: users' own recordings described by a Proactive-Sound-Bench manifest.

A sound pack is a folder holding audio files and a ``manifest.jsonl`` in the format of
Proactive-Sound-Bench (PSB), one JSON object per line::

    {"id": "c9a2d625", "path": "./Daily Living/Daily Affairs/IGNORE/c9a2d625.wav",
     "description": "balloon", "decision": "IGNORE"}

(one line in the file). The PSB benchmark itself is such a pack, so the same loader serves the
benchmark, users' recordings, and the packs chimein exports (:func:`write_manifest`).

Fields
------
Required (PSB): ``id`` (unique), ``path`` (relative to the manifest's folder; PSB writes
``./Domain/Subcategory/DECISION/id.wav``), ``description``, ``decision`` (``RESPOND`` or
``IGNORE``). Optional chimein extras, ignored by PSB tools:

- ``action``: ``INTERVENE``, ``RESPOND`` or ``IGNORE``; overrides the decision mapping below;
- ``safety_critical``: bool, default ``false``;
- ``domain``: default inferred from the path's first folder when it names one of PSB's six
  domains (spelling, case, ``_`` and spaces are forgiven: ``daily_living`` is "Daily Living"),
  else ``"unknown"``; ``subcategory``: default the second folder when the domain was inferred
  and that folder is not the decision folder, else ``"unknown"``;
- ``onset_delay_s``: how long after its onset the sound becomes recognisable (a kettle
  whistles only after it builds up), default 0.5 s; response windows start this late. It must
  be shorter than the clip (:func:`onset_delay_problem`, the one rule that
  :meth:`SoundPack.validate_audio` and the scene sampler apply);
- ``speech``: bool, whether the recording is people talking. Default: true for entries whose
  ``action`` is ``RESPOND`` (spoken requests) and for those whose subcategory names talk (``Conversation``,
  ``Speech``, ``Talking``, ``Chatting``, ``Chit-chat``, ``Dialogue``; spelling forgiven as for
  domains: :data:`SPEECH_SUBCATEGORIES`), else false. The scene sampler mixes ``IGNORE`` speech
  in as bystander talk (with its pauses), not as a sound event.

Domains
-------
A ``domain`` field is read like a path's folder: PSB's spelling is restored (``daily_living``
becomes "Daily Living"). The names of chimein's task families are known domains too
(:data:`CHIMEIN_DOMAINS`: ``chimein scenes export-psb`` writes a clip's family there). Any
other domain loads as written -- a pack may keep its own taxonomy -- but warns
(:class:`PackWarning`), once per domain and manifest, naming the first entry's ``manifest:line``,
the other lines using it, PSB's domains and the closest one: per-domain results of ``chimein eval
psb`` group by this field, and a typo would split a domain silently. Silence them with
``warnings.filterwarnings("ignore", category=PackWarning)``.

Decision mapping
----------------
PSB asks one question per clip: should the assistant speak up (``RESPOND``) or not
(``IGNORE``)? Its RESPOND sounds are events that call for an unprompted interjection (glass
break, smoke alarm, a fall), which is chimein's **INTERVENE**; PSB ``IGNORE`` is chimein's
``IGNORE``. ``action`` may refine a RESPOND sound to chimein's ``RESPOND``, but it must agree with
the decision: an action is ``IGNORE`` exactly when the decision is ``IGNORE``.

In generated scenes
-------------------
``scenes.sound_packs`` mixes pack recordings into sampled scenes (each use with probability
``pack_fraction`` when an entry fits; :mod:`chimein.scenes.sampler`):

- ``INTERVENE`` entries are proactive events (window from ``onset + onset_delay_s``) and
  monitoring targets ("tell me when you hear the <description>"). A pack with an ``INTERVENE``
  entry whose ``onset_delay_s`` is not shorter than the part of the clip a scene plays (at most
  20 s) is refused when the scenes config is read: its window would open after the sound ended;
- ``IGNORE`` entries that are not speech are benign events, monitoring look-alikes, and
  monitoring targets when their ``onset_delay_s`` fits the clip;
- ``IGNORE`` speech is bystander chit-chat at speech level: ``speech`` spans of the bystander,
  not addressed, split at the recording's pauses (:mod:`chimein.scenes.pack_speech`);
- ``RESPOND`` entries are the user's addressed requests; those with a pause inside (detected by
  :mod:`chimein.scenes.pack_speech`) also serve the ``pauses`` family. Pauses are annotated as
  mid-turn ``pause`` spans between the ``speech`` pieces; the RESPOND window opens when the
  last piece ends.

Levels: with ``scenes.pack_levels: normalised`` (the presets' value) every recording plays at a
level drawn from the range of its role, like a synthesised event; with ``recorded`` it keeps its
level relative to the other recordings of its pack (a loud smoke alarm stays 20 dB above a quiet
beep): :mod:`chimein.scenes.pack_levels`. Either way an INTERVENE cue carries its entry's
``safety_critical`` flag, so missing a pack's alarm counts as a safety miss.

Audio
-----
Files are read with libsndfile (WAV, FLAC, OGG/Vorbis, MP3, ...) at any sample rate through
:func:`chimein.scenes.audio.load_audio`: multi-channel recordings are **downmixed by averaging the
channels**, then **resampled with a polyphase filter** (``scipy.signal.resample_poly``, Kaiser
window, rate ratio reduced to a fraction), so durations and pitches are preserved. The result is
mono float32, shape ``(samples,)``. A file whose rate is outside 1-384 kHz, or that would last
more than an hour, is refused from its header, before anything is decoded.

Validation
----------
Everything read from a manifest is checked at the boundary; each problem raises one
:class:`~chimein.errors.SpecError` naming the manifest, line, field and fix: a line that is
not JSON or not an object, a missing/empty/mistyped field, an unknown decision or action, a
duplicate id, a path that is absolute or leaves the pack (``..``, or a symlink resolving
outside), a missing file. Blank lines are allowed (PSB has no comments). ``check_audio=True``
(or :meth:`SoundPack.validate_audio`, which collects every problem) also decodes each file and
rejects corrupt, empty, silent and NaN-filled audio.

Examples
--------
>>> import tempfile, numpy as np, soundfile as sf
>>> from pathlib import Path
>>> d = Path(tempfile.mkdtemp())
>>> wav = d / "Nature" / "Meteorological" / "RESPOND" / "t1.wav"
>>> wav.parent.mkdir(parents=True)
>>> sf.write(wav, 0.1 * np.ones(8000, np.float32), 8000)
>>> line = '{"id": "t1", "path": "./Nature/Meteorological/RESPOND/t1.wav", '
>>> line += '"description": "thunder", "decision": "RESPOND"}'
>>> _ = (d / "manifest.jsonl").write_text(line + "\\n")
>>> pack = SoundPack.load(d)
>>> e = pack.entries[0]
>>> e.action, e.domain, e.subcategory, e.load(16000).shape
('INTERVENE', 'Nature', 'Meteorological', (16000,))
"""

from __future__ import annotations

import difflib
import json
import math
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chimein.config import unknown_key_error
from chimein.errors import AudioError, ChimeinError, SpecError
from chimein.io import atomic_write_text, safe_join
from chimein.scenes.audio import load_audio
from chimein.scenes.spec import Action

MANIFEST_NAME = "manifest.jsonl"

#: PSB's two clip labels.
DECISIONS: tuple[str, ...] = ("RESPOND", "IGNORE")
#: chimein's expectations a pack entry may carry.
ACTIONS: tuple[str, ...] = ("INTERVENE", "RESPOND", "IGNORE")
#: A PSB decision read as a chimein action (PSB RESPOND = an unprompted interjection).
DECISION_TO_ACTION: dict[str, str] = {"RESPOND": "INTERVENE", "IGNORE": "IGNORE"}
#: The six PSB domains, as PSB spells them.
PSB_DOMAINS: tuple[str, ...] = (
    "Daily Living", "Equipment", "Human Signals", "Music", "Nature", "Traffic",
)
#: Domains of the packs chimein writes (``export-psb``: a clip's task family), also known.
CHIMEIN_DOMAINS: tuple[str, ...] = (
    "addressed", "proactive", "monitoring", "pauses", "distractors", "multi_event",
)
#: Subcategories whose recordings are people talking (compared with spelling forgiven).
SPEECH_SUBCATEGORIES: tuple[str, ...] = (
    "Conversation", "Conversations", "Speech", "Talking", "Chatting", "Chat", "Chit-chat",
    "Dialogue", "Dialog",
)
DEFAULT_ONSET_DELAY_S = 0.5

_REQUIRED = ("id", "path", "description", "decision")
_OPTIONAL = ("action", "safety_critical", "domain", "subcategory", "onset_delay_s", "speech")
_KNOWN = _REQUIRED + _OPTIONAL
_UNKNOWN = "unknown"


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


_DOMAIN_BY_KEY = {_key(d): d for d in PSB_DOMAINS}
_SPEECH_KEYS = frozenset(_key(s) for s in SPEECH_SUBCATEGORIES)


class PackWarning(UserWarning):
    """A manifest that loads but probably says something it did not mean (an unknown domain)."""


def infer_speech(action: str, subcategory: str) -> bool:
    """The default of the ``speech`` field: a spoken request (``RESPOND``) or a subcategory of
    :data:`SPEECH_SUBCATEGORIES`.

    Examples
    --------
    >>> infer_speech("IGNORE", "chit_chat"), infer_speech("IGNORE", "Physiological")
    (True, False)
    """
    return action == "RESPOND" or _key(subcategory) in _SPEECH_KEYS


def onset_delay_problem(entry: PackEntry, clip_s: float) -> str | None:
    """Why ``entry``'s ``onset_delay_s`` does not fit a clip of ``clip_s`` seconds, or None.

    The delay must be shorter than the clip: a window that opens ``onset_delay_s`` after the
    onset must open while the sound still plays. :meth:`SoundPack.validate_audio` applies this
    rule to the decoded files, the scene sampler to the part of each clip it plays.

    Examples
    --------
    >>> e = PackEntry(id="pop", path=Path("/p/pop.wav").absolute(), rel_path="./pop.wav",
    ...               description="pop", decision="RESPOND", action="INTERVENE")
    >>> onset_delay_problem(e, 2.0) is None
    True
    >>> print(onset_delay_problem(e, 0.3))  # doctest: +ELLIPSIS
    field 'onset_delay_s': 0.5 s is not shorter than the clip (0.300 s, ...pop.wav); lower it
    """
    if entry.onset_delay_s < clip_s:
        return None
    return (f"field 'onset_delay_s': {entry.onset_delay_s} s is not shorter than the clip "
            f"({clip_s:.3f} s, {entry.path}); lower it")


def _domain(value: str) -> str:
    """A ``domain`` field's value with PSB's spelling restored (as for path folders)."""
    return _UNKNOWN if _key(value) == _UNKNOWN else _DOMAIN_BY_KEY.get(_key(value), value)


def _warn_unknown_domains(manifest: Path, entries: Iterable[PackEntry], lines: Iterable[int]) -> None:
    """One :class:`PackWarning` per domain that is neither PSB's nor chimein's."""
    seen: dict[str, list[tuple[str, int]]] = {}
    for e, ln in zip(entries, lines, strict=True):
        if e.domain not in PSB_DOMAINS and e.domain not in CHIMEIN_DOMAINS and e.domain != _UNKNOWN:
            seen.setdefault(e.domain, []).append((e.id, ln))
    for domain, uses in seen.items():
        (eid, ln), more = uses[0], [str(u[1]) for u in uses[1:]]
        closest = max(PSB_DOMAINS, key=lambda d: difflib.SequenceMatcher(
            None, _key(domain), _key(d)).ratio())
        also = f" (also on line{'s' if len(more) > 1 else ''} {', '.join(more)})" if more else ""
        warnings.warn(
            f"{manifest}:{ln}: pack entry {eid!r}: field 'domain': {domain!r} is not one of "
            f"Proactive-Sound-Bench's domains ({', '.join(PSB_DOMAINS)}){also}; closest: "
            f"{closest!r}. Per-domain results group by this field: fix a typo, or keep your "
            "own domain and ignore this warning", PackWarning, stacklevel=3)


def infer_domain(rel_path: str) -> tuple[str, str]:
    """Domain and subcategory from a PSB-style path ``./Domain/Subcategory/DECISION/file``.

    Returns ``("unknown", "unknown")`` when the first folder is not a PSB domain, and subcategory
    ``"unknown"`` when there is no second folder or it is the decision folder.

    Examples
    --------
    >>> infer_domain("./Human_Signals/Physiological/RESPOND/a.wav")
    ('Human Signals', 'Physiological')
    >>> infer_domain("./mine/a.wav")
    ('unknown', 'unknown')
    """
    parts = [p for p in Path(rel_path).parts[:-1] if p not in (".", "")]
    if not parts or _key(parts[0]) not in _DOMAIN_BY_KEY:
        return _UNKNOWN, _UNKNOWN
    domain = _DOMAIN_BY_KEY[_key(parts[0])]
    if len(parts) >= 2 and parts[1].upper() not in DECISIONS:
        return domain, parts[1]
    return domain, _UNKNOWN


def _check_values(where: str, decision: Any, action: Any, onset_delay_s: Any) -> None:
    """Value checks shared by the manifest parser and :class:`PackEntry` itself."""
    if decision not in DECISIONS:
        raise SpecError(f"{where}: field 'decision': got {decision!r}; use 'RESPOND' or 'IGNORE' "
                        "(PSB's labels, upper case)")
    if action not in ACTIONS:
        raise SpecError(f"{where}: field 'action': got {action!r}; use one of {ACTIONS} "
                        "or leave it out to map the decision")
    if (action == "IGNORE") != (decision == "IGNORE"):
        raise SpecError(f"{where}: field 'action': {action!r} contradicts decision {decision!r}; "
                        "an entry is IGNORE in both fields or in neither (fix one of them)")
    if (isinstance(onset_delay_s, bool) or not isinstance(onset_delay_s, int | float)
            or not math.isfinite(onset_delay_s) or onset_delay_s < 0):
        raise SpecError(f"{where}: field 'onset_delay_s': got {onset_delay_s!r}; "
                        "use a finite number of seconds >= 0")


@dataclass(frozen=True)
class PackEntry:
    """One recording of a sound pack.

    Attributes
    ----------
    id : str
        Unique within the pack.
    path : Path
        Resolved absolute path of the audio file (inside the pack's folder).
    rel_path : str
        The path exactly as the manifest wrote it (``./Domain/Sub/DECISION/id.wav``).
    description : str
        What the sound is ("balloon", "smoke alarm").
    decision : str
        PSB's label, ``RESPOND`` or ``IGNORE``.
    action : str
        chimein's expectation: ``INTERVENE``, ``RESPOND`` or ``IGNORE`` (see the module's
        decision mapping).
    safety_critical, domain, subcategory, onset_delay_s
        chimein extras; see the module docstring.
    speech : bool
        Whether the recording is people talking; None (the default) infers it from the action
        and subcategory (:func:`infer_speech`).
    """

    id: str
    path: Path
    rel_path: str
    description: str
    decision: str
    action: str
    safety_critical: bool = False
    domain: str = _UNKNOWN
    subcategory: str = _UNKNOWN
    onset_delay_s: float = DEFAULT_ONSET_DELAY_S
    speech: bool = None  # type: ignore[assignment]  # None: inferred in __post_init__

    def __post_init__(self) -> None:
        where = f"pack entry {self.id!r}"
        if not isinstance(self.id, str) or not self.id:
            raise SpecError(f"{where}: field 'id': must be a non-empty string")
        if self.speech is None:
            object.__setattr__(self, "speech", infer_speech(self.action, self.subcategory))
        elif not isinstance(self.speech, bool):
            raise SpecError(f"{where}: field 'speech': expected true or false, got {self.speech!r}")
        object.__setattr__(self, "path", Path(self.path))
        if not self.path.is_absolute():
            raise SpecError(f"{where}: field 'path': {str(self.path)!r} must be absolute; "
                            "join it onto the pack folder")
        _check_values(where, self.decision, self.action, self.onset_delay_s)
        object.__setattr__(self, "onset_delay_s", float(self.onset_delay_s))

    def load(self, sample_rate: int = 16000) -> np.ndarray:
        """Decode, downmix to mono and resample; float32, shape ``(samples,)``.

        Raises
        ------
        AudioError
            The file is missing, corrupt, empty, silent or contains NaN/Inf; the message names
            the entry and the file.
        """
        try:
            return load_audio(self.path, sample_rate=sample_rate, mono=True)
        except AudioError as e:
            raise AudioError(f"pack entry {self.id!r}: {e}") from None

    @property
    def duration_s(self) -> float:
        """Length in seconds from the file header (no decoding)."""
        import soundfile as sf

        try:
            return float(sf.info(str(self.path)).duration)
        except Exception as e:  # soundfile.LibsndfileError, OSError
            raise AudioError(f"pack entry {self.id!r}: {self.path}: cannot read the audio header "
                             f"({e}); is it a valid WAV/FLAC/OGG/MP3 file?") from None


@dataclass(frozen=True)
class SoundPack:
    """A folder of recordings and the manifest describing them.

    Build it with :meth:`SoundPack.load`. ``lines`` holds the manifest line number of each entry
    (used in error messages); ``len()``, iteration and :meth:`get` work on ``entries``.
    """

    root: Path
    manifest: Path
    entries: tuple[PackEntry, ...]
    lines: tuple[int, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", tuple(self.entries))
        seen: set[str] = set()
        for e in self.entries:
            if e.id in seen:
                raise SpecError(f"{self.manifest}: duplicate id {e.id!r}; give every entry its own id")
            seen.add(e.id)

    @classmethod
    def load(cls, path: str | Path, check_audio: bool = False,
             allow_unknown_fields: bool = False) -> SoundPack:
        """Read and validate a pack.

        Parameters
        ----------
        path
            The pack folder (holding ``manifest.jsonl``) or the manifest file itself; audio paths
            are relative to the manifest's folder.
        check_audio
            Also decode every file (slower) and raise one :class:`AudioError` listing every
            corrupt, empty, silent or NaN-filled file; by default only existence is checked.
        allow_unknown_fields
            Accept fields other than PSB's and chimein's (by default they are refused, to catch
            typos such as ``safety_critcal``).

        Raises
        ------
        SpecError
            On the first manifest problem, naming ``manifest:line``, the field and the fix.

        Examples
        --------
        >>> SoundPack.load("/nonexistent/pack")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        chimein.errors.SpecError: /nonexistent/pack...: sound pack manifest not found; ...
        """
        p = Path(path)
        manifest = p / MANIFEST_NAME if p.is_dir() else p
        if not manifest.is_file():
            raise SpecError(f"{manifest}: sound pack manifest not found; give a folder holding "
                            f"{MANIFEST_NAME} or the manifest file itself")
        root = manifest.parent.resolve()
        try:
            text = manifest.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise SpecError(f"{manifest}: not UTF-8 text ({e}); save the manifest as UTF-8") from None
        entries: list[PackEntry] = []
        lines: list[int] = []
        first_line: dict[str, int] = {}
        # split on "\n" only: str.splitlines would also split on U+2028 inside JSON strings
        for lineno, raw in enumerate(text.split("\n"), start=1):
            if not raw.strip():
                continue
            where = f"{manifest}:{lineno}"
            entry = _parse_line(where, raw, root, allow_unknown_fields)
            if entry.id in first_line:
                raise SpecError(f"{where}: field 'id': duplicate id {entry.id!r} (first on line "
                                f"{first_line[entry.id]}); give every entry its own id")
            first_line[entry.id] = lineno
            entries.append(entry)
            lines.append(lineno)
        if not entries:
            raise SpecError(f"{manifest}: the manifest has no entries; write one JSON object per "
                            'line: {"id": ..., "path": ..., "description": ..., "decision": ...}')
        pack = cls(root=root, manifest=manifest.resolve(), entries=tuple(entries),
                   lines=tuple(lines))
        _warn_unknown_domains(manifest, entries, lines)
        if check_audio:
            errors = pack.validate_audio()
            if len(errors) == 1:
                raise errors[0]
            if errors:
                raise AudioError(f"{manifest}: {len(errors)} audio problems:\n"
                                 + "\n".join(str(e) for e in errors))
        return pack

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[PackEntry]:
        return iter(self.entries)

    def get(self, entry_id: str) -> PackEntry:
        """The entry with this id; :class:`SpecError` naming the manifest if there is none."""
        for e in self.entries:
            if e.id == entry_id:
                return e
        raise SpecError(f"{self.manifest}: no entry with id {entry_id!r}; "
                        f"the pack has {len(self.entries)} entries")

    def by_action(self, action: str | Action) -> tuple[PackEntry, ...]:
        """Entries whose chimein action is ``action`` (``INTERVENE``, ``RESPOND`` or ``IGNORE``)."""
        name = action.name if isinstance(action, Action) else action
        if name not in ACTIONS:
            raise SpecError(f"by_action: unknown action {name!r}; use one of {ACTIONS}")
        return tuple(e for e in self.entries if e.action == name)

    def validate_audio(self, sample_rate: int = 16000) -> list[AudioError]:
        """Decode every file and return all problems (empty list: the pack is usable).

        Checks what :func:`~chimein.scenes.audio.load_audio` checks (missing, corrupt, empty,
        silent, NaN/Inf) and that ``onset_delay_s`` is shorter than the clip. Each error names the
        manifest line, the entry id and the file.
        """
        errors: list[AudioError] = []
        line_of = dict(zip((e.id for e in self.entries), self.lines, strict=False))
        for e in self.entries:
            where = f"{self.manifest}:{line_of[e.id]}" if e.id in line_of else str(self.manifest)
            try:
                x = e.load(sample_rate)
            except AudioError as err:
                errors.append(AudioError(f"{where}: {err}"))
                continue
            problem = onset_delay_problem(e, x.shape[0] / sample_rate)
            if problem is not None:
                errors.append(AudioError(f"{where}: pack entry {e.id!r}: {problem}"))
        return errors


def _parse_line(where: str, raw: str, root: Path, allow_unknown: bool) -> PackEntry:
    """One manifest line -> a validated :class:`PackEntry` (or one :class:`SpecError`)."""

    def no_dup_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for k, v in pairs:
            if k in d:
                raise SpecError(f"{where}: field {k!r}: given twice in one object; keep one")
            d[k] = v
        return d

    try:
        obj = json.loads(raw, object_pairs_hook=no_dup_keys)
    except json.JSONDecodeError as e:
        raise SpecError(f"{where}: not valid JSON ({e.msg} at column {e.colno}); each line must be "
                        'one object like {"id": ..., "path": ..., "description": ..., '
                        '"decision": ...}') from None
    if not isinstance(obj, dict):
        raise SpecError(f"{where}: expected a JSON object, got {type(obj).__name__}; write one "
                        "object per line")
    if not allow_unknown:
        for k in obj:
            if k not in _KNOWN:  # a fault of the file: a SpecError, in the config reader's words
                raise SpecError(f"{where}: {unknown_key_error(k, _KNOWN, 'this entry')} "
                                "(or load with allow_unknown_fields=True)")
    for k in _REQUIRED:
        if k not in obj:
            raise SpecError(f"{where}: field {k!r}: missing; every entry needs "
                            f"{', '.join(_REQUIRED)}")
        if not isinstance(obj[k], str):
            raise SpecError(f"{where}: field {k!r}: expected a string, got {obj[k]!r}")
        if not obj[k].strip():
            raise SpecError(f"{where}: field {k!r}: is empty; fill it in")
    for k in ("domain", "subcategory", "action"):
        if k in obj and (not isinstance(obj[k], str) or not obj[k].strip()):
            raise SpecError(f"{where}: field {k!r}: expected a non-empty string, got {obj[k]!r}; "
                            "fix it or leave the field out")
    for k in ("safety_critical", "speech"):
        if k in obj and not isinstance(obj[k], bool):
            raise SpecError(f"{where}: field {k!r}: expected true or false, got {obj[k]!r}")
    decision = obj["decision"]
    if decision not in DECISIONS:  # before the action default, which depends on it
        _check_values(where, decision, "IGNORE", 0.0)
    action = obj.get("action", DECISION_TO_ACTION[decision])
    onset = obj.get("onset_delay_s", DEFAULT_ONSET_DELAY_S)
    _check_values(where, decision, action, onset)

    rel = obj["path"]
    try:
        full = safe_join(root, rel, what="audio path")
    except ChimeinError as e:
        raise SpecError(f"{where}: field 'path': {e}") from None
    if not full.exists():
        raise SpecError(f"{where}: field 'path': file {full} not found; check {rel!r} (relative "
                        f"to {root}) or remove the line")
    if not full.is_file():
        raise SpecError(f"{where}: field 'path': {full} is not a regular file; point it at an "
                        "audio file")
    domain, sub = infer_domain(rel)
    sub = obj.get("subcategory", sub)
    return PackEntry(
        id=obj["id"], path=full, rel_path=rel, description=obj["description"],
        decision=decision, action=action, safety_critical=obj.get("safety_critical", False),
        domain=_domain(obj.get("domain", domain)), subcategory=sub, onset_delay_s=float(onset),
        speech=obj.get("speech", infer_speech(action, sub)),
    )


def write_manifest(path: str | Path, entries: Iterable[PackEntry]) -> Path:
    """Write a PSB-format ``manifest.jsonl`` atomically; return its path.

    ``path`` is the manifest file, or a folder (existing, or without a suffix) to hold
    ``manifest.jsonl``. Every entry's file must lie inside that folder; its path is written
    relative to it with PSB's ``./`` prefix. The four PSB fields come first; chimein extras are
    written only where they differ from what loading would infer, so a PSB manifest round-trips
    to PSB's own four fields.

    Raises
    ------
    SpecError
        No entries, a duplicate id, or a file outside the manifest's folder.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> e = PackEntry(id="a1", path=d / "Traffic" / "a1.wav", rel_path="Traffic/a1.wav",
    ...               description="car horn", decision="RESPOND", action="INTERVENE",
    ...               safety_critical=True, domain="Traffic")
    >>> print(write_manifest(d, [e]).read_text(), end="")
    {"id": "a1", "path": "./Traffic/a1.wav", "description": "car horn", "decision": "RESPOND", "safety_critical": true}
    """
    p = Path(path)
    manifest = p / MANIFEST_NAME if p.is_dir() or not p.suffix else p
    root = manifest.parent.resolve()
    out: list[str] = []
    seen: set[str] = set()
    for e in entries:
        if e.id in seen:
            raise SpecError(f"{manifest}: duplicate id {e.id!r}; give every entry its own id")
        seen.add(e.id)
        full = e.path.resolve()
        if full != root and root not in full.parents:
            raise SpecError(f"{manifest}: entry {e.id!r}: file {full} is outside the manifest's "
                            f"folder {root}; copy it inside the pack first")
        rel = "./" + full.relative_to(root).as_posix()
        obj: dict[str, Any] = {"id": e.id, "path": rel, "description": e.description,
                               "decision": e.decision}
        if e.action != DECISION_TO_ACTION[e.decision]:
            obj["action"] = e.action
        if e.safety_critical:
            obj["safety_critical"] = True
        domain, sub = infer_domain(rel)
        if e.domain != domain:
            obj["domain"] = e.domain
        if e.subcategory != sub:
            obj["subcategory"] = e.subcategory
        if e.onset_delay_s != DEFAULT_ONSET_DELAY_S:
            obj["onset_delay_s"] = e.onset_delay_s
        if e.speech != infer_speech(e.action, e.subcategory):
            obj["speech"] = e.speech
        out.append(json.dumps(obj))  # ASCII escapes: safe for any line splitter
    if not out:
        raise SpecError(f"{manifest}: no entries to write; a sound pack needs at least one")
    atomic_write_text(manifest, "\n".join(out) + "\n")
    return manifest
