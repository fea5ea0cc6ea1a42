"""The pictures of an evaluation report, checked on the matplotlib figures (not pixels): every
plot names the policy and suite it shows, an undefined metric is drawn as "n/a" and not as a
0-height bar, the family plot has one legend for all panels, and a timeline's action markers
have legend entries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import chimein.eval.report as report
import chimein.scenes.show as show
from chimein.eval.metrics import bare_spec
from chimein.eval.runner import evaluate
from chimein.eval.suites import MaterializedSuite
from chimein.scenes.spec import Annotations, Cue

COLS = ("hit_rate", "false_alarms_per_min")


def _metrics() -> dict[str, Any]:
    def m(v: float | None) -> dict[str, Any]:
        return {"value": v, "ci": [None, None] if v is None else [v - 0.1, v + 0.1]}

    return {"by_split": {
        "clean/addressed": {"hit_rate": m(0.0), "false_alarms_per_min": m(1.0)},  # a true 0
        "clean/distractors": {"hit_rate": m(None), "false_alarms_per_min": m(2.0)},  # no action cues
        "hard/addressed": {"hit_rate": m(0.5), "false_alarms_per_min": m(0.0)},
        "hard/distractors": {"hit_rate": m(None), "false_alarms_per_min": m(3.0)},
    }}


def _bars(ax: Any) -> list[Any]:
    from matplotlib.container import BarContainer

    return [p for c in ax.containers if isinstance(c, BarContainer) for p in c.patches]


def test_family_figure_titles_na_and_one_legend() -> None:
    fig = report.family_figure(_metrics(), COLS, "energy-endpoint on mini-suite: per-family metrics")
    try:
        assert "energy-endpoint" in fig._suptitle.get_text() and "mini-suite" in fig._suptitle.get_text()
        hit, fa = fig.axes
        assert "higher better" in hit.get_title() and "lower better" in fa.get_title()
        # hit rate: the two defined values are bars (the true 0 is a 0-height bar); the two
        # undefined ones are not bars at all but labelled n/a
        heights = [b.get_height() for b in _bars(hit)]
        assert len(heights) == 2 and all(np.isfinite(heights)) and sorted(heights) == [0.0, 0.5]
        assert [t.get_text() for t in hit.texts].count("n/a") == 2
        xs_na = sorted(t.get_position()[0] for t in hit.texts if t.get_text() == "n/a")
        xs_bar = sorted(b.get_x() + b.get_width() / 2 for b in _bars(hit))
        assert not set(np.round(xs_na, 6)) & set(np.round(xs_bar, 6))
        assert len(_bars(fa)) == 4 and not [t for t in fa.texts if t.get_text() == "n/a"]
        # one figure legend (tiers and the n/a convention), not a legend in the first panel only
        (leg,) = fig.legends
        labels = [t.get_text() for t in leg.get_texts()]
        assert "tier clean" in labels and "tier hard" in labels and any(x.startswith("n/a") for x in labels)
        assert all(ax.get_legend() is None for ax in fig.axes)
    finally:
        report._plt().close(fig)


def test_latency_cdf_lists_a_series_without_hits() -> None:
    fig = report.latency_cdf_figure({"oracle": [0.1, 0.2], "always-wait": []}, "hit latency CDF per policy on s")
    try:
        labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        assert labels == ["oracle (n=2)", "always-wait: no hits (n/a)"]
    finally:
        report._plt().close(fig)


def test_scene_figure_has_legend_entries_for_the_actions() -> None:
    cue = Cue(id="c0", expected="RESPOND", window=(1.0, 3.0), label="question")
    spec = bare_spec("s0", Annotations(cues=(cue,)), 5.0, "addressed")
    for actions, want in (([(1.5, 1), (2.5, 2)], {"policy acts: RESPOND", "policy acts: INTERVENE"}),
                          ([(1.5, 1)], {"policy acts: RESPOND"}), ([], set())):
        fig = show.scene_figure(spec, None, actions, title="oracle on tiny: clean/addressed s0")
        try:
            labels = {t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()}
            assert {x for x in labels if x.startswith("policy acts")} == want
            assert "RESPOND cue" in labels and "safety-critical cue (!)" in labels
        finally:
            report._plt().close(fig)


def test_report_plots_name_policy_and_suite(tiny_suite: MaterializedSuite, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    saved: dict[str, Any] = {}
    scenes: list[Any] = []
    real_scene_figure = show.scene_figure

    def keep(fig: Any, path: Path) -> None:
        saved[Path(path).name] = fig

    def scene_figure(*a: Any, **k: Any) -> Any:
        scenes.append(real_scene_figure(*a, **k))
        return scenes[-1]

    monkeypatch.setattr(report, "_save", keep)
    monkeypatch.setattr(show, "scene_figure", scene_figure)
    evaluate("oracle", tiny_suite, out=tmp_path / "run", workers=1, progress=False, resamples=0, examples=1)
    try:
        fam = saved["families.png"]._suptitle.get_text()
        lat = saved["latency_cdf.png"].axes[0].get_title()
        (ex,) = [f.axes[0].get_title() for f in scenes]
        for title in (fam, lat, ex):
            assert "oracle on tiny" in title, title
        labels = {t.get_text() for t in scenes[0].axes[1].get_legend().get_texts()}
        assert "policy acts: RESPOND" in labels
    finally:
        for f in [*saved.values(), *scenes]:
            report._plt().close(f)
