"""Overlapping events (``scenes.event_overlap_rate``) and safety-critical flags in the spec.

A proactive/monitoring event gets a second sound overlapping it, annotated on its own: another
help event (INTERVENE window opening :data:`OVERLAP_STAGGER_S` after the first's, so both stay
hittable) or a benign sound (IGNORE). Its draws come from a stream of its own. Every INTERVENE
cue carries the safety-critical flag of its built-in class or pack entry, overlap events too, and
the scorer charges a safety miss for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chimein.envs.scoring import ActionLog, score
from chimein.errors import ConfigError
from chimein.scenes.events import get_event_class
from chimein.scenes.sampler import SamplerConfig, sample_scene
from chimein.scenes.sampler.families import OVERLAP_STAGGER_S
from chimein.scenes.spec import Cue, SceneSpec, Source

SR = 16000
CHUNK_S = 0.08


def tone(dur_s: float, freq: float, amp: float = 0.2) -> np.ndarray:
    t = np.arange(int(round(dur_s * SR))) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory, write_pack: Callable[..., Path]) -> Path:
    """Two long help recordings (one safety-critical) and a benign one."""
    root = tmp_path_factory.mktemp("overlap_pack")
    items: list[tuple[str, np.ndarray, dict[str, Any]]] = [
        ("Equipment/Alarm/RESPOND/smoke.wav", tone(6.0, 3000.0), {"description": "smoke alarm", "decision": "RESPOND",
                                                                 "safety_critical": True}),
        ("Daily Living/Kitchen/RESPOND/kettle.wav", tone(6.0, 1800.0), {"description": "kettle", "decision": "RESPOND"}),
        ("Daily Living/Kitchen/IGNORE/hum.wav", tone(6.0, 120.0), {"description": "fridge hum", "decision": "IGNORE"}),
    ]
    return write_pack(root, items, SR)


def span(s: Source) -> tuple[float, float]:
    return s.onset_s, s.onset_s + float(s.duration_s or 0.0)


def event_cues(spec: SceneSpec) -> list[tuple[Cue, Source]]:
    """(cue, its sound) of every cue on a non-speech source."""
    by_id = {s.id: s for s in spec.sources}
    return [(c, by_id[c.source_ids[0]]) for c in spec.annotations.cues
            if c.source_ids and by_id[c.source_ids[0]].kind in ("event", "file")]


def pairs(spec: SceneSpec) -> list[tuple[tuple[Cue, Source], tuple[Cue, Source]]]:
    """(first, overlap) pairs: an INTERVENE event and a later-starting event sound overlapping it."""
    evs = [x for x in event_cues(spec) if not x[0].label.startswith("non-target")]
    out = []
    for a in evs:
        for b in evs:
            (ca, sa), (_, sb) = a, b
            if ca.expected == "INTERVENE" and sa.id != sb.id and sa.onset_s <= sb.onset_s < span(sa)[1]:
                out.append((a, b))
    return out


def test_every_event_gets_an_overlapping_annotated_event() -> None:
    kinds = {"INTERVENE": 0, "IGNORE": 0}
    for family in ("proactive", "monitoring"):
        for seed in range(10):
            spec = sample_scene({"family": family, "difficulty": "easy", "event_overlap_rate": 1.0}, seed)
            found = pairs(spec)
            assert len(found) == 1, (family, seed, [(c.expected, c.label, c.window) for c, _ in event_cues(spec)])
            (ca, sa), (cb, sb) = found[0]
            assert span(sb)[0] < span(sa)[1] - 0.29  # the sounds overlap
            assert cb.source_ids == (sb.id,) and ca.source_ids == (sa.id,)  # each its own annotation
            kinds[cb.expected] += 1
            if cb.expected == "INTERVENE":  # scorable: the second window opens after the stagger
                assert cb.window[0] >= ca.window[0] + OVERLAP_STAGGER_S - 1e-3
                assert cb.label != ca.label.removeprefix("monitored ")
                assert cb.window[1] - cb.window[0] == pytest.approx(5.0)
            else:
                assert cb.window == pytest.approx(span(sb))
    assert kinds["INTERVENE"] >= 3 and kinds["IGNORE"] >= 3


def test_overlaps_draw_from_their_own_stream() -> None:
    """Rate 1 adds sources and cues but moves no other draw: removing them gives the rate-0 scene
    (but for the scene's length, which now covers the overlap)."""
    for seed in range(8):
        cfg = {"family": "proactive", "difficulty": "easy"}
        off, on = sample_scene(cfg, seed), sample_scene({**cfg, "event_overlap_rate": 1.0}, seed)
        assert sample_scene({**cfg, "event_overlap_rate": 0.0}, seed) == off
        ((_, _), (extra_cue, extra)), = pairs(on)
        assert [s for s in on.sources if s.id != extra.id and s.kind != "noise"] == \
               [s for s in off.sources if s.kind != "noise"]
        strip = [replace(c, id="") for c in on.annotations.cues if c.source_ids != (extra.id,)]
        assert strip == [replace(c, id="") for c in off.annotations.cues]
        (n_on,), (n_off,) = [s for s in on.sources if s.kind == "noise"], [s for s in off.sources if s.kind == "noise"]
        assert n_on.audio == n_off.audio and on.duration_s >= off.duration_s


def test_overlap_in_multi_event_and_with_packs(pack: Path) -> None:
    n_pairs, pack_pairs = 0, 0
    for seed in range(6):
        for family in ("multi_event", "proactive", "monitoring"):
            cfg = {"family": family, "event_overlap_rate": 1.0, "sound_packs": [str(pack)], "pack_fraction": 1.0}
            spec = sample_scene(cfg, seed)
            for (ca, sa), (cb, sb) in pairs(spec):
                n_pairs += 1
                if sa.kind == sb.kind == "file" and ca.expected == cb.expected == "INTERVENE":
                    pack_pairs += 1  # the other help recording, not the same one again
                    assert sa.audio["path"] != sb.audio["path"]
    assert n_pairs >= 12 and pack_pairs >= 2


def _act_asap(spec: SceneSpec, late: bool) -> ActionLog:
    """INTERVENE as soon as each INTERVENE window is open and the assistant is not speaking (or,
    ``late``, at each window's last chunk), RESPOND likewise for RESPOND windows."""
    n = int(spec.duration_s / CHUNK_S) + 1
    times = (np.arange(n) + 1) * CHUNK_S
    acts = np.zeros(n, np.int8)
    busy = -1.0
    for c in sorted(spec.annotations.action_cues, key=lambda c: c.window[1] if late else c.window[0]):
        ks = np.flatnonzero((times >= c.window[0] - 1e-9) & (times <= c.window[1] + 1e-9) & (times >= busy - 1e-9))
        assert ks.size, c
        k = int(ks[-1] if late and times[ks[-1]] >= busy else ks[0])
        acts[k] = 1 if c.expected == "RESPOND" else 2
        busy = float(times[k]) + 2.0
    return ActionLog.from_actions(acts, CHUNK_S, speak_s=2.0)


def test_overlapping_intervene_windows_stay_scorable() -> None:
    both = 0
    for seed in range(10):
        spec = sample_scene({"family": "proactive", "difficulty": "easy", "event_overlap_rate": 1.0}, seed)
        if sum(c.expected == "INTERVENE" for c in spec.annotations.cues) < 2:
            continue
        both += 1
        for late in (False, True):
            out = score(spec.annotations, _act_asap(spec, late), duration_s=spec.duration_s)
            assert [o.outcome for o in out.cue_outcomes if o.expected == "INTERVENE"] == ["hit", "hit"], (seed, late)
    assert both >= 3


def test_event_overlap_rate_is_validated() -> None:
    with pytest.raises(ConfigError, match="'event_overlap_rate'"):
        SamplerConfig.from_mapping({"event_overlap_rate": 1.5})


# ---------------------------------------------------------------- safety-critical flags
def test_safety_critical_flags_reach_the_spec_and_the_scorer(pack: Path) -> None:
    """Every INTERVENE cue (built-in class, pack entry, overlap event) carries its sound's flag,
    and an agent that never acts is charged a safety miss for exactly those."""
    flags = {"./Equipment/Alarm/RESPOND/smoke.wav": True, "./Daily Living/Kitchen/RESPOND/kettle.wav": False,
             "./Daily Living/Kitchen/IGNORE/hum.wav": False}  # an IGNORE sound the user asked to watch for
    seen = {"file": set(), "event": set()}
    for seed in range(8):
        for family in ("proactive", "monitoring", "multi_event"):
            cfg = {"family": family, "event_overlap_rate": 0.7, "sound_packs": [str(pack)], "pack_fraction": 0.5}
            spec = sample_scene(cfg, seed)
            for c, s in event_cues(spec):
                if c.expected != "INTERVENE":
                    continue
                want = flags[s.audio["path"]] if s.kind == "file" else get_event_class(s.audio["cls"]).safety_critical
                assert c.safety_critical == want, (c, s)
                seen[s.kind].add(want)
            wait = ActionLog.from_actions(np.zeros(int(spec.duration_s / CHUNK_S) + 1, np.int8), CHUNK_S)
            out = score(spec.annotations, wait, duration_s=spec.duration_s)
            for o in out.cue_outcomes:
                if o.expected == "INTERVENE":
                    assert o.outcome == "miss" and o.safety_critical == next(
                        c.safety_critical for c in spec.annotations.cues if c.id == o.cue_id)
    assert seen == {"file": {True, False}, "event": {True, False}}
