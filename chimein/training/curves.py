"""Reward curves of RL runs from their TensorBoard logs (``chimein train curves``).

Both RL trainers log scalars to ``OUT/tb`` (:class:`chimein.training.rl_common.TBLogger`): PPO
once per update, GRPO once per optimizer step. :func:`read_scalars` reads the requested tags
from every event file under ``RUN/tb`` and :func:`plot_curves` draws one subplot per tag, one
line per run (labelled by the run directory's name): the raw values faint and their
TensorBoard-style debiased exponential moving average (:func:`ema`) bold. The PNG and the
plotted series (``<out>.json``: steps, raw values and smoothed values per tag and run) are
written atomically, so a researcher can re-plot or compare the numbers without TensorBoard.

Resumed runs append a new event file and may re-log steps after the last checkpoint; for a
step logged more than once the value written last (by wall time) is kept, as the resumed run's
value is the one the final model descends from.

matplotlib and tensorboard are imported only when used.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chimein.errors import SpecError
from chimein.io import atomic_write, atomic_write_text

__all__ = ["DEFAULT_TAGS", "ema", "event_files", "plot_curves", "read_scalars"]

DEFAULT_TAGS: tuple[str, ...] = (
    "rollout/episode_reward",
    "val/normalized_reward",
    "val/timeliness",
    "policy/kl_to_init",
)
X_LABEL = "update (PPO) / step (GRPO)"

Series = dict[str, list[Any]]  # {"step": [int, ...], "value": [float, ...]}


def ema(values: Sequence[float], smooth: float) -> list[float]:
    """TensorBoard's debiased exponential moving average of ``values``.

    ``last = smooth * last + (1 - smooth) * v`` starting from 0, divided by
    ``1 - smooth ** n`` (n = finite values seen so far) so the first points are not pulled
    towards 0. Non-finite values are passed through unsmoothed and do not enter the average,
    as in TensorBoard. ``smooth`` = 0 returns the values unchanged.
    """
    if not 0.0 <= smooth < 1.0:
        raise SpecError(f"smooth={smooth}: the smoothing weight must be in [0, 1) (TensorBoard's "
                        "slider; 0.6 is its default, 0 disables smoothing)")
    out: list[float] = []
    last = 0.0
    n = 0
    for v in values:
        v = float(v)
        if not math.isfinite(v):
            out.append(v)
            continue
        last = last * smooth + (1.0 - smooth) * v
        n += 1
        debias = 1.0 - smooth**n
        out.append(last / debias if debias > 0 else v)
    return out


def event_files(run: str | Path) -> list[Path]:
    """TensorBoard event files under ``RUN/tb`` (also in its subfolders), sorted by path.

    Raises
    ------
    SpecError
        When ``RUN/tb`` holds no event file (not an RL run folder, or a run that never logged).
    """
    tb = Path(run) / "tb"
    files = sorted(p for p in tb.rglob("*tfevents*") if p.is_file()) if tb.is_dir() else []
    if not files:
        raise SpecError(f"{run}: no TensorBoard event files under {tb}; pass the OUT folder of "
                        "`chimein train ppo` or `chimein train grpo` (it logs to OUT/tb)")
    return files


def read_scalars(run: str | Path, tags: Sequence[str] | None = None) -> dict[str, Series]:
    """Scalars of ``run`` (its ``RUN/tb`` event files) by tag, sorted by step.

    Parameters
    ----------
    run
        RL run folder (the trainers' ``OUT``).
    tags
        Tags to read; None reads every scalar tag. Tags the run did not log are left out.

    Returns
    -------
    dict
        ``{tag: {"step": [...], "value": [...]}}``; a step logged twice keeps the value
        written last (a resumed run re-logs steps after its last checkpoint).
    """
    from tensorboard.backend.event_processing.event_accumulator import (
        SCALARS,
        EventAccumulator,
    )

    merged: dict[str, dict[int, tuple[float, float]]] = {}  # tag -> step -> (wall_time, value)
    for f in event_files(run):
        acc = EventAccumulator(str(f), size_guidance={SCALARS: 0})  # 0: keep every point
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            if tags is not None and tag not in tags:
                continue
            by_step = merged.setdefault(tag, {})
            for e in acc.Scalars(tag):
                old = by_step.get(int(e.step))
                if old is None or e.wall_time >= old[0]:
                    by_step[int(e.step)] = (float(e.wall_time), float(e.value))
    out: dict[str, Series] = {}
    for tag, by_step in merged.items():
        steps = sorted(by_step)
        out[tag] = {"step": steps, "value": [by_step[s][1] for s in steps]}
    return out


def plot_curves(
    runs: Sequence[str | Path],
    out: str | Path,
    tags: Sequence[str] = DEFAULT_TAGS,
    smooth: float = 0.6,
    require_all: bool = False,
    dpi: int = 110,
) -> dict[str, Any]:
    """Draw the ``tags`` of ``runs`` to ``out`` (PNG) and write the series to ``out``'s ``.json``.

    One subplot per tag that at least one run logged, one line per run labelled by its folder
    name: raw values faint, debiased EMA (weight ``smooth``) bold; x = the step the scalar was
    logged at (PPO update, GRPO step). Both files are written atomically.

    Tags no run logged are skipped (listed under ``"skipped"``) unless ``require_all``: the
    default tags include ``val/*``, which runs without a validation suite do not have, whereas
    a tag the user named explicitly and no run has is most likely a typo.

    Returns
    -------
    dict
        What was written to the JSON: ``{"smooth", "x", "runs", "tags", "skipped", "series":
        {tag: {run_name: {"step", "value", "smoothed"}}}}`` plus ``"png"`` and ``"json"`` paths.

    Raises
    ------
    SpecError
        No runs, a run without ``tb/`` event files, an empty tag list, a bad ``smooth``, or a
        none of ``tags`` in any run, or (``require_all``) any one of them in no run; the error
        lists the tags the runs do have.
    """
    if not runs:
        raise SpecError("no runs given: pass one or more RL run folders (OUT of train ppo/grpo)")
    tags = [str(t) for t in tags]
    if not tags:
        raise SpecError("tags=[]: name at least one scalar tag, e.g. tags=[rollout/episode_reward]")
    ema([], smooth)  # validates smooth before any reading
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise SpecError(f"out={out}: the curves are written as PNG; give a path ending in .png")
    names = _run_names(runs)
    data = {name: read_scalars(r, None) for name, r in zip(names, runs, strict=True)}
    present = [t for t in tags if any(t in d for d in data.values())]
    skipped = [t for t in tags if t not in present]
    if not present or (require_all and skipped):
        have = sorted({t for d in data.values() for t in d})
        what = f"tags={tags}: none of these" if not present else f"tag(s) {skipped}: not"
        raise SpecError(f"{what} in the TensorBoard logs of any run ({', '.join(map(str, runs))}); "
                        f"the runs have: {', '.join(have) or 'no scalars'}")
    series: dict[str, dict[str, dict[str, list[Any]]]] = {}
    for tag in present:
        series[tag] = {}
        for name, d in data.items():
            if tag in d:
                s = d[tag]
                series[tag][name] = {**s, "smoothed": ema(s["value"], smooth)}

    plt = _plt()
    fig, axes = plt.subplots(len(present), 1, figsize=(8.0, 2.6 * len(present)), sharex=False,
                             squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, tag in zip(axes[:, 0], present, strict=True):
        for i, name in enumerate(names):
            got = series[tag].get(name)
            if got is None:
                continue
            s = got
            c = colors[i % len(colors)]
            few = len(s["step"]) <= 30  # sparse series (val/* every N steps): mark the points
            ax.plot(s["step"], s["value"], color=c, alpha=0.25, linewidth=1.0)
            ax.plot(s["step"], s["smoothed"], color=c, linewidth=2.0, label=name,
                    marker="o" if few else None, markersize=3.5)
        ax.set_title(tag, fontsize=10)
        ax.set_xlabel(X_LABEL)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(f"RL curves (EMA smoothing {smooth:g}; faint: raw)", fontsize=11)
    fig.tight_layout()
    try:
        atomic_write(out, lambda t: fig.savefig(t, format="png", dpi=dpi, bbox_inches="tight"))
    finally:
        plt.close(fig)
    js = out.with_suffix(".json")
    doc: dict[str, Any] = {
        "smooth": smooth, "x": X_LABEL, "runs": {n: str(r) for n, r in zip(names, runs, strict=True)},
        "tags": present, "skipped": skipped, "series": series,
    }
    atomic_write_text(js, json.dumps(doc, indent=1) + "\n")
    return {**doc, "png": str(out), "json": str(js)}


def _run_names(runs: Sequence[str | Path]) -> list[str]:
    """Run labels: the folder names, with the parent prepended where two names collide."""
    paths = [Path(r).resolve() for r in runs]
    names = [p.name for p in paths]
    if len(set(names)) < len(names):
        names = [f"{p.parent.name}/{p.name}" for p in paths]
    if len(set(names)) < len(names):  # still ambiguous (the same folder twice): number them
        names = [f"{n} ({i})" for i, n in enumerate(names)]
    return names


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
