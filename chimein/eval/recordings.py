"""Suites as Hugging Face audiofolders, and policies scored on folders of annotated recordings.

:func:`export_suite_hf` (``chimein scenes export-hf suite=NAME out=DIR``) writes a materialised
suite's scenes with :func:`chimein.scenes.hf.export_audiofolder`: one row per scene, chimein's
split (``<tier>/<family>``), tier and family as the suite names them, and in ``chimein.json`` the
suite's identity, env and reward options.

:func:`evaluate_recordings` (``chimein eval policy=NAME recordings=DIR out=RUN``) is the inverse:
it plays every row of such a folder -- an export, or a lab's own recordings annotated in the same
columns (:func:`chimein.scenes.hf.read_recordings` validates each row first) -- through the same
batched environment as a suite's scenes and writes the same ``episodes.jsonl``,
``results.json`` and report. Audio is read with :func:`chimein.scenes.audio.load_audio`
(every channel kept, resampled to the env's rate); the scene's spec is a bare one
(:func:`chimein.eval.external.recorded_scene`) holding the row's annotations, id, seed, family and
tier. The env and reward options are the export's (``chimein.json``), else the defaults
(:data:`chimein.envs.core.DEFAULT_ENV`, the default reward), then ``env`` overrides. An export
played this way gives each scene the very episode the suite gives it: same audio samples, same
annotations, same seed.

Examples
--------
>>> import tempfile
>>> from chimein.eval.suites import materialize, tiny_suite
>>> d = tempfile.mkdtemp()
>>> _ = export_suite_hf(materialize(tiny_suite(1), cache_dir=d, workers=1, progress=False), d + "/hf",
...                     progress=False)
>>> res = evaluate_recordings(d + "/hf", "oracle", out=d + "/run", workers=1, progress=False, report=False)
>>> res["metrics"]["overall"]["respond_recall"]["value"]
1.0
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chimein.errors import AudioError, SpecError
from chimein.scenes.hf import DEFAULT_HF_SPLIT, ExportSource, Recording

__all__ = ["evaluate_recordings", "export_suite_hf", "load_recordings"]


def export_suite_hf(suite: Any, out: str | os.PathLike[str], *, splits: Sequence[str] | None = None,
                    hf_split: str = DEFAULT_HF_SPLIT, progress: bool = True) -> Path:
    """Write a suite (a :class:`~chimein.eval.suites.MaterializedSuite`; materialise a name first
    with :func:`~chimein.eval.suites.materialize`) as a Hugging Face audiofolder; returns its
    ``metadata.jsonl``. ``splits``: only these suite splits."""
    from chimein.scenes.hf import export_audiofolder

    d = suite.definition
    for s in splits or ():
        d.split(s)  # an unknown split: SpecError listing the suite's
    sources = [ExportSource(sp.name, suite.split_dir(sp.name), tier=sp.tier, family=sp.family)
               for sp in d.splits if splits is None or sp.name in splits]
    info = {"source": {"suite": {**suite.identity, "description": d.description}},
            "env": dict(d.env), "reward": dict(d.reward)}
    return export_audiofolder(sources, out, hf_split=hf_split, info=info, title=f"chimein suite {d.name}",
                              progress=progress)


def load_recordings(recs: Sequence[Recording], sample_rate: int) -> tuple[list[dict[str, Any]], list[Any]]:
    """Shard loader: the recordings as scenes at ``sample_rate`` (see the module docstring)."""
    from chimein.eval.external import recorded_scene
    from chimein.scenes.audio import load_audio

    metas, scenes = [], []
    for r in recs:
        try:
            audio = load_audio(r.path, sample_rate=sample_rate, mono=False)
        except AudioError as e:
            raise AudioError(f"{r.where}: {e}") from None
        scenes.append(recorded_scene(r.scene_id, audio, sample_rate, r.annotations, family=r.family, tier=r.tier,
                                     seed=r.seed, duration_s=r.duration_s))
        metas.append({"split": r.split, "family": r.family, "tier": r.tier, "scene_id": r.scene_id,
                      "scene_seed": r.seed, "recording": r.file_name})
    return metas, scenes


def evaluate_recordings(
    recordings: str | os.PathLike[str],
    policy: Any,
    out: str | os.PathLike[str] = "eval_out",
    *,
    policy_kwargs: Mapping[str, Any] | None = None,
    workers: int | None = None,
    batch_size: int = 16,
    env: Mapping[str, Any] | None = None,
    splits: Sequence[str] | None = None,
    resamples: int = 1000,
    seed: int = 0,
    progress: bool = True,
    report: bool = True,
    backend: str = "local",
) -> dict[str, Any]:
    """Evaluate a policy on a folder of annotated recordings; write ``out/episodes.jsonl``,
    ``results.json`` and ``report.md`` (reruns resume).

    Parameters
    ----------
    recordings
        A folder with ``metadata.jsonl`` (or ``.csv``) rows and audio files
        (:mod:`chimein.scenes.hf`): ``chimein scenes export-hf`` output or a lab's own.
    policy
        Registry name, checkpoint path or :class:`~chimein.eval.runner.PolicySpec`.
    env
        Env option overrides, on top of the export's options (``chimein.json``) or the defaults.
    splits
        Only the rows of these splits (the ``split`` column).
    workers, batch_size, resamples, seed, progress, report, backend
        As for :func:`chimein.eval.runner.evaluate`.

    Raises
    ------
    SpecError
        A bad row (naming ``metadata file:line``, the field and the fix), an unknown split or
        policy, or an episode log of other recordings or another run in ``out``.
    AudioError
        An audio file that cannot be decoded or is silent, naming its row.
    """
    from chimein.envs.core import DEFAULT_ENV
    from chimein.eval.external import evaluate_items, items_identity, policy_spec
    from chimein.eval.runner import Shard, resolve_env
    from chimein.scenes.hf import metadata_files, read_export_info, read_recordings

    if isinstance(batch_size, bool) or int(batch_size) < 1:
        raise SpecError(f"eval: field 'batch_size': must be >= 1, got {batch_size!r}")
    root = Path(recordings).resolve()
    recs = read_recordings(root)  # every row validated before any work
    metadata = b"".join(p.read_bytes() for p in metadata_files(root))
    identity = items_identity(f"recordings:{root.name}", metadata, {}, [(f"{r.split}/{r.scene_id}", r.path) for r in recs])
    if splits is not None:
        have = sorted({r.split for r in recs})
        for s in splits:
            if s not in have:
                raise SpecError(f"eval: field 'splits': no recordings of split {s!r} in {root}; splits: {have}")
        recs = [r for r in recs if r.split in splits]
    info = read_export_info(root) or {}
    env_opts = resolve_env(info.get("env") or DEFAULT_ENV, info.get("reward") or {}, env)
    pspec = policy_spec(policy, policy_kwargs)
    sr = int(env_opts.get("sample_rate", 16000))
    bs = int(batch_size)

    def shards(todo: Sequence[int]) -> list[Any]:
        order = sorted(todo, key=lambda i: (recs[i].duration_s or 0.0, i))  # similar lengths share a batch
        chunks = [order[j: j + bs] for j in range(0, len(order), bs)]
        return [Shard(load_recordings, ([recs[i] for i in c], sr), pspec, env_opts, size=len(c)) for c in chunks]

    source = (info.get("source") or {}).get("suite")
    extra = {"recordings": {"root": str(root), "n": len(recs), **({"exported_from": source} if source else {})}}
    return evaluate_items(identity, [r.key for r in recs], shards, pspec, env_opts, out,
                          description=f"annotated recordings in {root}", extra=extra, desc=f"eval {pspec.name}",
                          unit="rec", workers=workers, backend=backend, resamples=resamples, seed=seed,
                          progress=progress, report=report)
