"""``chimein scenes ...`` commands: thin wrappers from a composed config to the library."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from chimein.cli.common import container
from chimein.errors import ConfigError


def generate(cfg: Any) -> int:
    """``chimein scenes generate n=200 seed=3 out=DIR``: a resumable, parallel dataset."""
    from chimein.exec import ray_options_from_config
    from chimein.scenes.dataset import generate_dataset

    c = container(cfg)
    manifest = generate_dataset(
        c["scenes"], n=int(c["n"]), seed=int(c["seed"]), out=c["out"], workers=int(c["workers"]) or None,
        audio_format=str(c["format"]), cache_dir=c.get("cache_dir"), progress=bool(c["progress"]),
        backend=str(c["backend"]), ray_options=ray_options_from_config(c),
    )
    n = len(manifest.read_text().splitlines())
    print(f"wrote {manifest} ({n} scenes)")
    return 0


def show(cfg: Any) -> int:
    """``chimein scenes show SPEC.json out=PNG``: spectrogram + annotated timeline."""
    from chimein.scenes.show import find_scene_audio, plot_scene
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
    print(f"wrote {out}", file=sys.stderr)
    return 0
