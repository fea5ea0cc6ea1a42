"""The episode record: what the env, evaluation, training and the re-scorer exchange.

One :class:`EpisodeRecord` is one played (or logged) episode: the scene it played, the
:class:`~chimein.envs.scoring.ActionLog` of what the policy did, the typed
:class:`~chimein.envs.scoring.EpisodeOutcome` the scoring function judged, the scene's
:class:`~chimein.scenes.spec.Annotations` when known, whether the policy's output was unusable,
the measured decision latencies, and every other field of the run (split, family, tier, suite
identity, run key, policy, env options, reward configuration, ...) as verbatim JSON values in
:attr:`EpisodeRecord.meta`.

:func:`~chimein.envs.rollout.rollout` returns records, the evaluation runner appends
:meth:`EpisodeRecord.to_json` lines to ``episodes.jsonl`` (:mod:`chimein.eval.episodes`), and
reading that file gives records back (:meth:`EpisodeRecord.from_json`, validated, errors naming
the file and line), which the metrics and ``chimein eval rescore`` judge. The JSON of a record is
byte-for-byte what the runner wrote before the record existed (``json.dumps(..., sort_keys=True)``
of the same values), so old runs stay readable and re-score to the same numbers.

Examples
--------
>>> from chimein.envs.scoring import ActionLog
>>> r = EpisodeRecord("s0", ActionLog.from_actions([0, 1, 0], chunk_s=0.08), meta={"split": "a"})
>>> text = r.to_json()
>>> text
'{"action_log": {"chunk_s": 0.08, "events": [[1, 1, 1]], "n_steps": 3}, "invalid": false, "scene_id": "s0", "split": "a"}'
>>> EpisodeRecord.from_json(text) == r
True
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from chimein.envs.scoring import ActionLog, EpisodeOutcome
from chimein.errors import ChimeinError, SpecError
from chimein.scenes.spec import Annotations

__all__ = ["EpisodeRecord", "annotations_dict"]

#: JSON fields held by typed attributes of :class:`EpisodeRecord` (the rest go to ``meta``).
_TYPED = ("scene_id", "action_log", "outcome", "annotations", "invalid", "decision_latencies_ms")


def annotations_dict(annotations: Annotations) -> dict[str, Any]:
    """The JSON form of ``annotations``: what ``SceneSpec.to_dict()["annotations"]`` holds
    (cues and spans as objects, tuples as lists), so that it reads back with
    :meth:`Annotations.from_dict <chimein.scenes.spec.Annotations.from_dict>` unchanged."""
    return _lists(asdict(annotations))


def _lists(x: Any) -> Any:
    """Tuples to lists, recursively (the JSON shape, so that dicts compare equal to parsed JSON)."""
    if isinstance(x, dict):
        return {k: _lists(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_lists(v) for v in x]
    return x


@dataclass(frozen=True, eq=False)
class EpisodeRecord:
    """One episode as the env played it (or a deployment logged it), ready to score or store.

    Attributes
    ----------
    scene_id : str
        The scene's id.
    action_log : ActionLog
        What the policy did, one entry per step.
    outcome : EpisodeOutcome or None
        The scoring function's judgement; None for a log not scored yet (a deployment log:
        :func:`chimein.eval.metrics.judge` scores it).
    annotations : Annotations or None
        The scene's ground truth; None when the record names a scene spec file instead
        (``meta["spec"]``) or comes straight from :func:`~chimein.envs.rollout.rollout`.
    invalid : bool
        The policy's output was unusable (an action outside {0, 1, 2}, or a clip that could
        not be played); such episodes count as wrong.
    decision_latencies_ms : tuple of float or None
        The measured decision latency of every chunk the episode was live for (ms), when the
        policy recorded latencies; None otherwise.
    meta : Mapping[str, Any]
        Every other field, JSON values kept verbatim: ``split``, ``family``, ``tier``,
        ``scene_seed``, ``spec``, ``duration_s``, ``wall_s``, ``decision_latency_ms`` and the
        run header (``suite``, ``run``, ``policy``, ``policy_kwargs``, ``env``, ``reward_cfg``).
    line : int or None
        The 1-based line of the file the record was read from (for error messages; never
        written).
    """

    scene_id: str
    action_log: ActionLog
    outcome: EpisodeOutcome | None = None
    annotations: Annotations | None = None
    invalid: bool = False
    decision_latencies_ms: tuple[float, ...] | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    line: int | None = None

    def __post_init__(self) -> None:
        clash = sorted(set(self.meta) & set(_TYPED))
        if clash:
            raise SpecError(f"episode {self.scene_id!r}: meta field {clash[0]!r} is a typed field of the record")

    # ---------------------------------------------------------------- views
    @property
    def n_steps(self) -> int:
        """Steps the episode lasted (one decision per chunk)."""
        return self.action_log.n_steps

    @property
    def split(self) -> str:
        """The suite split (``tier/family``); ``""`` when the record has none."""
        return str(self.meta.get("split", ""))

    @property
    def key(self) -> tuple[str, str]:
        """``(split, scene_id)``: what identifies an episode within a run."""
        return self.split, self.scene_id

    @property
    def where(self) -> str:
        """How error messages name this episode."""
        return f"episode {self.scene_id!r} (line {'?' if self.line is None else self.line})"

    def with_meta(self, **fields_: Any) -> EpisodeRecord:
        """A copy with ``fields_`` added to (or replacing those of) :attr:`meta`."""
        return replace(self, meta={**self.meta, **fields_})

    # ---------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the record (an ``episodes.jsonl`` line before encoding)."""
        d: dict[str, Any] = {**self.meta, "scene_id": self.scene_id, "action_log": self.action_log.to_dict(),
                             "invalid": bool(self.invalid)}
        if self.outcome is not None:
            d["outcome"] = self.outcome.to_dict()
        if self.annotations is not None:
            d["annotations"] = annotations_dict(self.annotations)
        if self.decision_latencies_ms is not None:
            d["decision_latencies_ms"] = list(self.decision_latencies_ms)
        return d

    def to_json(self) -> str:
        """One ``episodes.jsonl`` line (without its newline): keys sorted, floats as Python
        writes them."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "episode", line: int | None = None) -> EpisodeRecord:
        """Inverse of :meth:`to_dict`, validated.

        ``scene_id`` (a string) and ``action_log`` are required; ``outcome``, ``annotations``,
        ``invalid`` and ``decision_latencies_ms`` are optional; keys starting with ``_`` are
        dropped and every other key is kept in :attr:`meta`.

        Raises
        ------
        SpecError
            Naming ``where`` (the file and line) and the field at fault.
        """
        if not isinstance(d, Mapping):
            raise SpecError(f"{where}: expected a JSON object, got {type(d).__name__}")
        sid = d.get("scene_id")
        if sid is None:
            raise SpecError(f"{where}: field 'scene_id' is missing")
        if not isinstance(sid, str):
            raise SpecError(f"{where}: field 'scene_id': expected a string, got {sid!r}")
        if "action_log" not in d:
            raise SpecError(f"{where}: field 'action_log' is missing (episode {sid!r})")
        try:
            log = ActionLog.from_dict(d["action_log"])
            outcome = None if d.get("outcome") is None else EpisodeOutcome.from_dict(d["outcome"])
            ann = None if d.get("annotations") is None else Annotations.from_dict(d["annotations"], "annotations")
        except ChimeinError as e:
            raise SpecError(f"{where}: {e}") from None
        invalid = d.get("invalid", False)
        if not isinstance(invalid, bool):
            raise SpecError(f"{where}: field 'invalid': expected true or false, got {invalid!r}")
        return cls(sid, log, outcome, ann, invalid, _latencies(d.get("decision_latencies_ms"), where),
                   {k: v for k, v in d.items() if k not in _TYPED and not str(k).startswith("_")}, line)

    @classmethod
    def from_json(cls, text: str, where: str = "episode", line: int | None = None) -> EpisodeRecord:
        """A record from one ``episodes.jsonl`` line; ``where`` names it in errors
        (``path:line``)."""
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(f"{where}: not valid JSON ({e.msg}); each line must be one episode object") from None
        return cls.from_dict(d, where, line)

    @classmethod
    def from_final_info(cls, info: Mapping[str, Any]) -> EpisodeRecord:
        """The record of an env's final ``info`` (``outcome``, ``action_log``, ``scene_id``:
        the dicts Gymnasium's info carries)."""
        return cls(str(info["scene_id"]), ActionLog.from_dict(info["action_log"]),
                   EpisodeOutcome.from_dict(info["outcome"]))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EpisodeRecord):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


def _latencies(v: Any, where: str) -> tuple[float, ...] | None:
    if v is None:
        return None
    if not isinstance(v, Sequence) or isinstance(v, str) or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v):
        raise SpecError(f"{where}: field 'decision_latencies_ms': expected a list of finite numbers (ms)")
    return tuple(v)
