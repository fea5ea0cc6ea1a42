"""Proactive-Sound-Bench (PSB) interop: run policies on PSB clips, export scenes as PSB clips.

Evaluating on PSB-format clips (:func:`evaluate_psb`)
-----------------------------------------------------
Each clip of a PSB manifest (see :mod:`chimein.scenes.packs`) is streamed through the same
batched environment as suite scenes: the clip's audio (mono, resampled to the env's rate),
preceded by ``lead_s`` and followed by ``tail_s`` seconds of silence -- so an endpointing policy
has time to notice that the sound is over, as PSB models hear the whole clip before answering --
becomes a scene with one cue: for a RESPOND clip a window of the entry's chimein action
(``INTERVENE`` for PSB RESPOND by default) from ``onset_delay_s`` after the clip's start to the
end of the tail; for an IGNORE clip an IGNORE cue over the clip. The policy "responds" if it
takes any effective action. Accuracy is computed the way PSB defines it (correct decisions /
clips), except that unusable outputs -- an action outside {0, 1, 2}, or a clip whose audio
cannot be decoded when ``skip_bad_audio`` is set -- count as wrong instead of being dropped from
the denominator. Reported: overall accuracy, per-decision accuracy, the macro average over
domains and per-domain/subcategory accuracy, plus every chimein timing metric (splits =
domains).

Exporting scenes as PSB clips (:func:`export_psb`)
---------------------------------------------------
PSB judges a whole clip with one label, so a scene with several cues is cut into one clip per
cue (``unit="cue"``, default): from ``lead_s`` before the cue's stimulus onset (the first word
of the turn, the event onset) to ``post_s`` after its window starts (``post_s`` after the end
for IGNORE cues), at most ``max_clip_s`` long (the start is moved later, the decision point
kept). RESPOND and INTERVENE cues become PSB ``RESPOND`` clips (the chimein action is kept in the
``action`` field), IGNORE cues ``IGNORE`` clips; an IGNORE clip that overlaps a stimulus or
window of an action cue is skipped (its true label would be RESPOND). ``unit="scene"`` writes
one clip per whole scene instead, RESPOND iff the scene has an action cue -- exactly the
clip-level decision behind :mod:`chimein.eval.metrics`' ``clip_accuracy``. Clips are 16-bit
WAV of microphone 0 at ``./<family>/<tier>/<DECISION>/<id>.wav`` (PSB's
``Domain/Subcategory/DECISION`` layout) with a PSB manifest.

Examples
--------
>>> import tempfile
>>> from chimein.eval.suites import materialize, tiny_suite
>>> d = tempfile.mkdtemp()
>>> manifest = export_psb(materialize(tiny_suite(1), cache_dir=d, workers=1, progress=False), d + "/psb")
>>> res = evaluate_psb(manifest, "oracle", out=d + "/run", workers=1, progress=False, report=False)
>>> res["psb"]["accuracy"]
1.0
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chimein.envs.core import DEFAULT_ENV
from chimein.envs.episode import EpisodeRecord
from chimein.errors import AudioError, SpecError
from chimein.scenes.spec import Annotations, Cue

__all__ = ["evaluate_psb", "export_psb", "psb_accuracy"]


# ============================================================================================
# Clips -> scenes
# ============================================================================================
def _clip_scene(entry: Any, audio: np.ndarray, sample_rate: int, lead_s: float, tail_s: float) -> Any:
    from chimein.eval.external import recorded_scene

    lead = int(round(lead_s * sample_rate))
    tail = int(round(tail_s * sample_rate))
    x = np.zeros(lead + len(audio) + tail, np.float32)
    x[lead: lead + len(audio)] = audio
    dur = len(x) / sample_rate
    clip_end = (lead + len(audio)) / sample_rate
    if entry.action == "IGNORE":
        cue = Cue("c0", "IGNORE", (lead_s, clip_end), entry.description)
    else:
        start = min(lead_s + entry.onset_delay_s, clip_end)
        cue = Cue("c0", entry.action, (start, dur), entry.description, entry.safety_critical)
    return recorded_scene(entry.id, x, sample_rate, Annotations(cues=(cue,)), family=entry.domain, tier="psb",
                          duration_s=dur)


def load_psb_scenes(manifest: str, ids: Sequence[str], sample_rate: int, lead_s: float, tail_s: float,
                    skip_bad_audio: bool) -> tuple[list[dict[str, Any]], list[Any]]:
    """Shard loader: the clips ``ids`` of a PSB manifest as scenes (see the module docstring)."""
    from chimein.scenes.packs import SoundPack

    pack = SoundPack.load(manifest)
    metas, scenes = [], []
    for cid in ids:
        e = pack.get(cid)
        meta: dict[str, Any] = {"split": f"psb/{e.domain}", "family": e.domain, "tier": "psb", "scene_id": e.id,
                                "decision": e.decision, "subcategory": e.subcategory, "path": e.rel_path}
        try:
            audio = e.load(sample_rate)
        except AudioError as err:
            if not skip_bad_audio:
                raise
            meta.update(invalid=True, error=str(err))
            audio = np.zeros(sample_rate, np.float32)
        metas.append(meta)
        scenes.append(_clip_scene(e, audio, sample_rate, lead_s, tail_s))
    return metas, scenes


def psb_accuracy(episodes: Sequence[EpisodeRecord]) -> dict[str, Any]:
    """PSB decision accuracy from episode records (``meta["decision"]``, ``outcome``, ``invalid``).

    A clip is answered RESPOND when the policy took an effective action; unusable episodes
    (``invalid``) count as wrong.
    """
    def acc(rows: list[tuple[str, bool]]) -> float | None:
        return None if not rows else sum(ok for _, ok in rows) / len(rows)

    rows: list[tuple[Mapping[str, Any], bool]] = []
    for r in episodes:
        acted = (r.outcome.n_actions if r.outcome is not None else 0) > 0
        ok = (acted == (r.meta["decision"] == "RESPOND")) and not r.invalid
        rows.append(({**r.meta, "invalid": r.invalid}, ok))
    by_dom: dict[str, list[tuple[str, bool]]] = {}
    by_sub: dict[str, list[tuple[str, bool]]] = {}
    for e, ok in rows:
        by_dom.setdefault(str(e.get("family")), []).append((e["decision"], ok))
        by_sub.setdefault(f"{e.get('family')}/{e.get('subcategory')}", []).append((e["decision"], ok))
    dom_acc = {d: acc(r) for d, r in by_dom.items()}
    vals = [v for v in dom_acc.values() if v is not None]
    return {
        "n_clips": len(rows), "accuracy": acc([(e["decision"], ok) for e, ok in rows]),
        "respond_accuracy": acc([(e["decision"], ok) for e, ok in rows if e["decision"] == "RESPOND"]),
        "ignore_accuracy": acc([(e["decision"], ok) for e, ok in rows if e["decision"] == "IGNORE"]),
        "domain_macro_accuracy": (sum(vals) / len(vals)) if vals else None,
        "unusable": sum(1 for e, _ in rows if e.get("invalid")),
        "n_respond": sum(1 for e, _ in rows if e["decision"] == "RESPOND"),
        "n_ignore": sum(1 for e, _ in rows if e["decision"] == "IGNORE"),
        "by_domain": {d: {"n": len(r), "accuracy": dom_acc[d]} for d, r in by_dom.items()},
        "by_subcategory": {s: {"n": len(r), "accuracy": acc(r)} for s, r in by_sub.items()},
    }


def _pack_identity(pack: Any, options: Mapping[str, Any]) -> dict[str, Any]:
    from chimein.eval.external import items_identity

    return items_identity(f"psb:{pack.root.name}", pack.manifest.read_bytes(), options,
                          [(e.id, e.path) for e in pack.entries])


def evaluate_psb(
    manifest: str | os.PathLike[str],
    policy: Any,
    out: str | os.PathLike[str] = "psb_out",
    *,
    policy_kwargs: Mapping[str, Any] | None = None,
    workers: int | None = None,
    batch_size: int = 16,
    env: Mapping[str, Any] | None = None,
    lead_s: float = 0.5,
    tail_s: float = 2.0,
    skip_bad_audio: bool = False,
    resamples: int = 1000,
    seed: int = 0,
    progress: bool = True,
    report: bool = True,
    backend: str = "local",
) -> dict[str, Any]:
    """Run a policy over the clips of a PSB manifest; write ``out/episodes.jsonl``,
    ``out/results.json`` (PSB accuracy under ``"psb"`` plus chimein metrics) and a report.

    Parameters
    ----------
    manifest
        A PSB ``manifest.jsonl`` (or its folder).
    policy
        Registry name, checkpoint path or :class:`~chimein.eval.runner.PolicySpec`.
    lead_s, tail_s
        Silence before and after each clip (s).
    skip_bad_audio
        Count clips whose audio cannot be decoded as wrong (unusable) instead of stopping.
    env
        Env option overrides (default: 80 ms chunks, 2 s assistant speech).

    Raises
    ------
    SpecError
        A manifest problem (missing audio file, bad line), an unknown policy, or an episodes
        file of another manifest or run in ``out``.
    """
    from chimein.eval.external import evaluate_items, policy_spec
    from chimein.eval.runner import resolve_env
    from chimein.scenes.packs import SoundPack

    for name, v in (("lead_s", lead_s), ("tail_s", tail_s)):
        if not 0.0 <= float(v) <= 30.0:
            raise SpecError(f"eval psb: field '{name}': must be in [0, 30] s, got {v}")
    pack = SoundPack.load(manifest)  # missing files, bad lines: SpecError naming the line
    pspec = policy_spec(policy, policy_kwargs)
    env_opts = resolve_env(DEFAULT_ENV, {}, env)
    identity = _pack_identity(pack, {"lead_s": float(lead_s), "tail_s": float(tail_s)})
    return evaluate_items(
        identity, [(f"psb/{e.domain}", e.id) for e in pack.entries],
        lambda todo: _psb_shards(pack, [pack.entries[i] for i in todo], pspec, env_opts, int(batch_size),
                                 float(lead_s), float(tail_s), bool(skip_bad_audio)),
        pspec, env_opts, out, description=f"Proactive-Sound-Bench-format clips of {pack.manifest}",
        extra={"psb_options": {"lead_s": float(lead_s), "tail_s": float(tail_s), "skip_bad_audio": bool(skip_bad_audio)}},
        summarize=lambda eps: {"psb": psb_accuracy(eps)}, desc=f"psb {pspec.name}", unit="clip", workers=workers,
        backend=backend, resamples=resamples, seed=seed, progress=progress, report=report)


def _psb_shards(pack: Any, todo: Sequence[Any], pspec: Any, env_opts: Mapping[str, Any], batch_size: int,
                lead_s: float, tail_s: float, skip_bad_audio: bool) -> list[Any]:
    """Shards of up to ``batch_size`` clips of ``todo`` (pack entries), in manifest order; an
    invalid action or unusable audio flags the episode instead of stopping the run."""
    from chimein.eval.runner import Shard

    sr = int(env_opts.get("sample_rate", 16000))
    return [Shard(load_psb_scenes, (str(pack.manifest), [e.id for e in todo[j: j + batch_size]], sr, lead_s,
                                    tail_s, skip_bad_audio), pspec, env_opts, on_invalid="flag",
                  size=len(todo[j: j + batch_size])) for j in range(0, len(todo), batch_size)]


# ============================================================================================
# Scenes -> clips
# ============================================================================================
_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")


def _slug(s: str) -> str:
    return _SLUG.sub("_", s).strip("_") or "x"


def _clip_interval(cue: Cue, duration: float, lead_s: float, post_s: float, max_clip_s: float) -> tuple[float, float]:
    onset = cue.onset_s if cue.onset_s is not None else cue.start_s
    a = max(0.0, min(onset, cue.start_s) - lead_s)
    b = min(duration, (cue.end_s if cue.expected == "IGNORE" else cue.start_s) + post_s)
    if b - a > max_clip_s:
        a = b - max_clip_s
    return a, b


def _overlaps_action(a: float, b: float, ann: Annotations) -> bool:
    for c in ann.action_cues:
        onset = c.onset_s if c.onset_s is not None else c.start_s
        if min(onset, c.start_s) < b and c.end_s > a:
            return True
    return False


def export_psb(
    source: Any,
    out: str | os.PathLike[str],
    unit: str = "cue",
    lead_s: float = 0.5,
    post_s: float = 1.5,
    max_clip_s: float = 15.0,
    splits: Sequence[str] | None = None,
) -> Path:
    """Write scenes as PSB-format clips plus ``out/manifest.jsonl`` (see the module docstring).

    Parameters
    ----------
    source
        A :class:`~chimein.eval.suites.MaterializedSuite`, or a dataset folder (or a list of
        them) written by ``chimein scenes generate``.
    out
        Output folder (the pack).
    unit
        ``"cue"`` (one clip per cue) or ``"scene"`` (one clip per scene).
    lead_s, post_s, max_clip_s
        Clip boundaries for ``unit="cue"``.
    splits
        Only these splits of a suite.

    Returns
    -------
    Path
        The manifest written; it loads with :meth:`chimein.scenes.packs.SoundPack.load`.
    """
    from chimein.scenes.audio import write_audio
    from chimein.scenes.dataset import SceneDataset
    from chimein.scenes.packs import PackEntry, write_manifest

    if unit not in ("cue", "scene"):
        raise SpecError(f"export-psb: field 'unit': got {unit!r}; use 'cue' (one clip per cue) or 'scene'")
    if not (0 <= lead_s <= 10 and 0 <= post_s <= 30 and 1 <= max_clip_s <= 600):
        raise SpecError("export-psb: need 0 <= lead_s <= 10, 0 <= post_s <= 30 and 1 <= max_clip_s <= 600")
    datasets: list[tuple[str, Any]] = []
    if hasattr(source, "definition"):
        for sp in source.definition.splits:
            if splits is None or sp.name in splits:
                datasets.append((sp.name, source.dataset(sp.name)))
    else:
        for d in ([source] if isinstance(source, (str, os.PathLike)) else list(source)):
            datasets.append((Path(d).name, SceneDataset(d)))
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    entries: list[PackEntry] = []
    for split, ds in datasets:
        for i in range(len(ds)):
            scene = ds.load(i)
            spec = scene.spec
            sr = scene.sample_rate
            x = scene.audio[:, 0]
            tier = spec.difficulty if "/" not in split else split.split("/", 1)[0]
            clips: list[tuple[str, float, float, str, str, bool, float]] = []
            ann = spec.annotations
            if unit == "scene":
                acts = ann.action_cues
                if acts:
                    first = min(acts, key=lambda c: c.start_s)
                    clips.append(("scene", 0.0, spec.duration_s, "+".join(c.label for c in acts)[:200],
                                  first.expected, any(c.safety_critical for c in acts), first.start_s))
                else:
                    clips.append(("scene", 0.0, spec.duration_s, f"{spec.family} scene without action cue",
                                  "IGNORE", False, 0.5))
            else:
                for c in ann.cues:
                    a, b = _clip_interval(c, spec.duration_s, lead_s, post_s, max_clip_s)
                    if c.expected == "IGNORE" and _overlaps_action(a, b, ann):
                        continue
                    clips.append((c.id, a, b, c.label, c.expected, c.safety_critical, c.start_s - a))
            for cid, a, b, label, expected, sc, delay in clips:
                seg = x[int(round(a * sr)): int(round(b * sr))]
                if seg.size < int(0.6 * sr) or not np.any(seg):
                    continue
                decision = "IGNORE" if expected == "IGNORE" else "RESPOND"
                eid = _slug(f"{split}-{spec.id}-{cid}")
                path = root / _slug(spec.family) / _slug(tier) / decision / f"{eid}.wav"
                write_audio(path, seg, sr, subtype="PCM_16")
                dur = seg.size / sr
                entries.append(PackEntry(
                    id=eid, path=path.resolve(), rel_path=str(path.relative_to(root)), description=label or expected,
                    decision=decision, action=expected, safety_critical=bool(sc), domain=spec.family,
                    subcategory=tier, onset_delay_s=float(min(max(delay, 0.0), max(0.0, dur - 0.05)))
                    if decision == "RESPOND" else 0.5))
    if not entries:
        raise SpecError(f"export-psb: no clips to write from {source}; are the scenes empty?")
    return write_manifest(root, entries)
