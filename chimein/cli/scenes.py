"""``chimein scenes ...`` commands: thin wrappers from a composed config to the library."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chimein.cli.common import container
from chimein.config import read_config
from chimein.errors import ConfigError


@dataclass(frozen=True)
class GenerateCounts:
    """The numeric and boolean keys of ``chimein scenes generate``, checked by name."""

    n: int
    seed: int
    workers: int
    progress: bool

    def __post_init__(self) -> None:
        for key, low, what in (("n", 1, "scenes"), ("seed", 0, "the seed"), ("workers", 0, "processes (0: all cores)")):
            if getattr(self, key) < low:
                raise ConfigError(f"scenes generate: field {key!r}: {what} must be >= {low}, got {getattr(self, key)}")


def generate(cfg: Any) -> int:
    """``chimein scenes generate n=200 seed=3 out=DIR``: a resumable, parallel dataset."""
    from chimein.exec import ray_options_from_config
    from chimein.scenes.dataset import generate_dataset

    c = container(cfg)
    k = read_config(GenerateCounts, {f: c[f] for f in ("n", "seed", "workers", "progress")}, "scenes generate")
    manifest = generate_dataset(
        c["scenes"], n=k.n, seed=k.seed, out=c["out"], workers=k.workers or None,
        audio_format=str(c["format"]), cache_dir=c.get("cache_dir"), progress=k.progress,
        backend=str(c["backend"]), ray_options=ray_options_from_config(c),
    )
    n = len(manifest.read_text().splitlines())
    print(f"wrote {manifest} ({n} scenes)")
    return 0


def show(cfg: Any) -> int:
    """``chimein scenes show SPEC.json out=PNG``: spectrogram + annotated timeline."""
    from chimein.scenes.show import find_scene_audio, plot_scene, speech_listing
    from chimein.scenes.spec import SceneSpec

    c = container(cfg)
    spec_path = Path(c["spec"])
    spec = SceneSpec.load(spec_path)
    audio = find_scene_audio(spec_path)
    if audio is None and c.get("render", True):
        from chimein.scenes.render import render

        audio = render(spec).audio
    out = Path(c["out"]) if c.get("out") else spec_path.with_suffix(".png")
    if out.suffix.lower() != ".png":
        raise ConfigError(f"scenes show: field 'out': {out} must end in .png")
    plot_scene(spec, audio, out)
    for line in speech_listing(spec):  # who speaks, with which generator, voice and speaker
        print(line)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def speech_pack(cfg: Any) -> int:
    """``chimein scenes speech-pack out=DIR``: a sound pack of recorded speech by held-back
    talkers (:func:`chimein.scenes.speech_pack.make_speech_pack`), then a one-line summary."""
    import time

    from chimein.scenes.speech_pack import make_speech_pack, pack_summary

    c = container(cfg)
    if c.get("out") in (None, "", "???"):
        raise ConfigError("scenes speech-pack: field 'out': required; give the pack's folder, out=DIR")
    keys = ("n_requests", "n_chitchat", "generators", "voices", "speaker_pool_seed",
            "speakers_per_voice", "natural", "pause_s", "pause_rate", "seed", "sample_rate")
    t0 = time.monotonic()
    manifest = make_speech_pack(c["out"], **{k: c[k] for k in keys}, progress=bool(c["progress"]))
    print(f"wrote {manifest}: {pack_summary(manifest)} ({time.monotonic() - t0:.0f} s)")
    return 0


def export_hf(cfg: Any) -> int:
    """``chimein scenes export-hf suite=NAME|dataset=DIR out=DIR [hf_split=test]``: scenes as a
    Hugging Face audiofolder (:mod:`chimein.scenes.hf`)."""
    from chimein.scenes.hf import ExportSource, export_audiofolder

    c = container(cfg)
    if bool(c.get("suite")) == bool(c.get("dataset")):
        raise ConfigError("scenes export-hf: give exactly one of suite=NAME (a suite, materialised if needed) "
                          "or dataset=DIR (a folder written by `chimein scenes generate`, or a list of them)")
    progress = bool(c["progress"])
    if c.get("suite"):
        from chimein.eval.recordings import export_suite_hf
        from chimein.eval.suites import materialize

        m = materialize(c["suite"], cache_dir=c.get("cache_dir"), workers=int(c.get("workers") or 0) or None,
                        progress=progress)
        meta = export_suite_hf(m, c["out"], splits=c.get("splits"), hf_split=str(c["hf_split"]), progress=progress)
    else:
        roots = [str(d) for d in (c["dataset"] if isinstance(c["dataset"], list) else [c["dataset"]])]
        info = {"source": {"datasets": [str(Path(d).resolve()) for d in roots]}}
        meta = export_audiofolder([ExportSource(Path(d).resolve().name, d) for d in roots], c["out"],
                                  hf_split=str(c["hf_split"]), info=info, progress=progress)
    n = sum(1 for line in meta.read_text(encoding="utf-8").splitlines() if line.strip())
    print(f"wrote {meta} ({n} scenes); load it with datasets.load_dataset('audiofolder', data_dir={str(c['out'])!r})")
    return 0
