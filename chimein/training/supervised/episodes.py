"""Tokenized training episodes: where they come from and the process pool that caches them."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from chimein.agents.lm.tokenizer import AudioTokenizer, Codebook
from chimein.training.data import EpisodeSource, SourceSpec

__all__ = ["prepare_cache"]


def _prepare_job(args: tuple[str, dict[str, Any], float, str, int]) -> int:
    """Tokenize and cache episode ``i`` in a worker (the source is built once per worker)."""
    cb_path, spec_d, chunk_s, cache_dir, i = args
    torch.set_num_threads(1)
    global _PREP
    key = (cb_path, json.dumps(spec_d, sort_keys=True), chunk_s, cache_dir)
    if _PREP is None or _PREP[0] != key:
        spec = SourceSpec(**{**spec_d, "difficulties": tuple(spec_d["difficulties"])})
        _PREP = (
            key,
            EpisodeSource(spec, AudioTokenizer(Codebook.load(cb_path)), chunk_s, cache_dir),
        )
    _PREP[1].get(i)
    return i


_PREP: Any = None


def prepare_cache(
    codebook_path: str | Path,
    spec: SourceSpec,
    chunk_s: float,
    cache_dir: str | Path,
    indices: Sequence[int] | range,
    workers: int,
    progress: bool = True,
) -> None:
    """Tokenize and cache episodes ``indices`` with a process pool (skips cached ones)."""
    from chimein.exec import imap_unordered

    src = EpisodeSource(spec, AudioTokenizer(Codebook.load(codebook_path)), chunk_s, cache_dir)
    assert src.cache is not None
    todo = [int(i) for i in indices if not (src.cache / f"{int(i):08d}.npz").is_file()]
    if not todo:
        return
    spec_d = {
        "kind": spec.kind,
        "config": dict(spec.config),
        "difficulties": list(spec.difficulties),
        "seed": spec.seed,
        "dataset": spec.dataset,
        "rir_cache_dir": spec.rir_cache_dir,
    }
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="episodes", unit="ep", file=sys.stderr)
    jobs = [(str(codebook_path), spec_d, float(chunk_s), str(cache_dir), i) for i in todo]
    for _ in imap_unordered(_prepare_job, jobs, workers=workers):
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
