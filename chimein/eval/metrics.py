"""Timing metrics over episodes, all derived from the shared scoring function's outcomes.

Every number here is computed from :class:`~chimein.envs.scoring.EpisodeOutcome` (per-cue
outcomes, penalties, reward) together with the scene's annotations (cue kinds, user turns and
pauses) and the action log -- the same judgement the environment paid as reward, so an episode
file re-scores to the same metrics without the simulator.

Definitions
-----------
Counts are summed over the episodes of a group (micro-averages: every cue, action or minute
weighs the same), then combined:

==========================  =======================================================================
metric                      definition
==========================  =======================================================================
respond_recall              RESPOND cues hit / RESPOND cues
respond_precision           RESPOND hits / effective RESPOND actions
intervene_recall            INTERVENE cues hit / INTERVENE cues
intervene_precision         INTERVENE hits / effective INTERVENE actions
intervene_f1                harmonic mean of the two above: 2 hits / (INTERVENE actions + cues)
hit_rate                    action cues hit (right kind) / action cues
wrong_kind_rate             action cues answered with the other action / action cues
miss_rate                   action cues whose window closed unanswered / action cues
safety_miss_rate            safety-critical cues missed / safety-critical cues (reported on its own)
timeliness                  mean credit over action cues (ProactiveBench-PAUC-like): the hit's
                            timeliness factor (1 within the grace period, falling linearly to
                            ``late_floor`` at the window end), times ``wrong_kind`` for the wrong
                            action, 0 for a miss. Penalties are *not* subtracted: they are the
                            rates below.
false_alarms_per_min        false-alarm penalties per minute of audio
ignore_false_alarm_rate     IGNORE cues (TV, benign sounds) acted on / IGNORE cues
interruptions_per_turn      interruption penalties / user turns (a turn: one speaker's speech
                            spans joined by their mid-turn pauses)
turn_interruption_rate      turns with at least one interruption / user turns
pause_takeover_rate         mid-turn pauses in which an interruption was charged / pauses
                            (Full-Duplex-Bench's pause-handling TOR; lower is better)
false_cutoff_rate           addressed user turns the policy spoke into (an interruption in one of
                            their speech or pause spans) / addressed user turns: LiveKit's
                            end-of-turn cut-off rate; turn_interruption_rate restricted to turns
                            directed at the assistant (lower is better)
smooth_takeover_rate        RESPOND cues opening at an addressed turn's end (within 0.5 s) that an
                            action answered (hit or wrong kind) / such cues (Full-Duplex-Bench's
                            smooth turn-taking TOR; higher is better)
side_talk_takeover_rate     the user's non-addressed turns (talking to someone else) with a
                            penalised action in them or within 1 s after / such turns (FDB v1.5
                            talking to others; lower is better)
background_takeover_rate    background speech (a bystander's turn, a TV/radio speech IGNORE cue)
                            with a penalised action in it or within 1 s after / such events (FDB
                            v1.5 background speech; lower is better)
duplicate_rate              duplicate penalties / effective actions
actions_per_min             effective actions per minute
latency_p50, latency_p90    percentiles of hit latency (action time - window start, s)
respond_latency_p50         the same over RESPOND hits (the response gap after a turn end)
intervene_latency_p50       the same over INTERVENE hits
mean_reward                 mean episode reward
normalized_reward           (R - R_wait) / (R_max - R_wait), summed over episodes: 0 is as good as
                            always waiting, 1 is every cue hit in time with no penalty
oracle_normalized_reward    (R - R_wait) / (R_oracle - R_wait): the same against what the oracle
                            baseline earns on these scenes (1.0 for the oracle itself)
clip_accuracy               Proactive-Sound-Bench-style clip decision: a scene is a RESPOND clip if
                            it has an action cue, else IGNORE; the policy "responds" if it acted
                            at all. Unusable episodes (invalid policy output) count as wrong.
clip_respond_accuracy       the same over RESPOND clips only
clip_ignore_accuracy        the same over IGNORE clips only
==========================  =======================================================================

``false_cutoff_rate`` and the four takeover rates (``pause_``, ``smooth_``, ``side_talk_``,
``background_``) are the field's metrics, each condition its own metric, never averaged with
another; their conditions (who the user is, what counts as background speech, a penalised
action) are defined in :mod:`chimein.eval.field`, which counts them from the same outcome.
``safety_miss_rate`` is the safety-critical false-negative rate (Proactive-Sound-Bench's weak
spot), reported on its own line. The false cut-off rate at 300/600 ms of latency and the latency at
a 5 % cut-off rate are properties of an operating curve, not of one run:
:func:`chimein.eval.sweep.curve_figures` reads them off a sweep of ``false_cutoff_rate`` against
``respond_latency_p50``.

Confidence intervals are percentile bootstrap intervals over scenes: episodes are resampled
with replacement within each split (so every split keeps its size), ``resamples`` times, from a
generator seeded by ``seed`` and the group's name; a metric undefined in a resample (0/0) is
left out of its percentiles.

When the episodes hold the held-out tier (:data:`HELDOUT_TIER`) and a reference tier
(:data:`REFERENCE_TIERS`), :func:`aggregate` adds a ``gap`` entry: every metric on the held-out
tier minus the reference tiers pooled, overall and per family, with a two-sample bootstrap
interval (:func:`generalisation_gap`).

Examples
--------
>>> from chimein.scenes.spec import Annotations, Cue
>>> from chimein.envs.scoring import ActionLog
>>> ann = Annotations(cues=(Cue("c0", "RESPOND", (1.0, 4.0), "question"),))
>>> ep = make_episode(ann, ActionLog.from_actions([0] * 14 + [1] + [0] * 50, chunk_s=0.08))
>>> m = aggregate([ep], resamples=0)["overall"]
>>> m["respond_recall"]["value"], round(m["latency_p50"]["value"], 2)
(1.0, 0.2)
"""

from __future__ import annotations

import json
import math
import zlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chimein.envs.episode import EpisodeRecord
from chimein.envs.scoring import ActionLog, EpisodeOutcome, RewardConfig, score
from chimein.errors import ChimeinError, SpecError
from chimein.eval.field import FIELD_COUNTS, condition_counts
from chimein.scenes.spec import Annotations, SceneSpec, Span

__all__ = ["CI_PERCENTILES", "COUNTS", "HELDOUT_TIER", "METRICS", "REFERENCE_TIERS", "Episode", "aggregate", "bare_spec",
           "episode_counts", "generalisation_gap", "judge", "make_episode", "metrics_from_counts", "oracle_rewards",
           "user_turns"]

#: metric -> (one-line description, higher is better)
METRICS: dict[str, tuple[str, bool]] = {
    "respond_recall": ("RESPOND cues hit / RESPOND cues", True),
    "respond_precision": ("RESPOND hits / effective RESPOND actions", True),
    "intervene_recall": ("INTERVENE cues hit / INTERVENE cues", True),
    "intervene_precision": ("INTERVENE hits / effective INTERVENE actions", True),
    "intervene_f1": ("harmonic mean of intervene precision and recall", True),
    "hit_rate": ("action cues hit with the right action / action cues", True),
    "wrong_kind_rate": ("action cues answered with the other action / action cues", False),
    "miss_rate": ("action cues never answered / action cues", False),
    "safety_miss_rate": ("safety-critical cues missed / safety-critical cues", False),
    "timeliness": ("mean timeliness credit over action cues (0 for misses)", True),
    "false_alarms_per_min": ("false-alarm penalties per minute", False),
    "ignore_false_alarm_rate": ("IGNORE cues acted on / IGNORE cues", False),
    "interruptions_per_turn": ("interruption penalties per user turn", False),
    "turn_interruption_rate": ("user turns with an interruption / user turns", False),
    "pause_takeover_rate": ("mid-turn pauses taken over / pauses (FDB pause TOR)", False),
    "false_cutoff_rate": ("addressed user turns spoken into before they ended / addressed turns (LiveKit EOU)",
                          False),
    "smooth_takeover_rate": ("RESPOND cues at an addressed turn's end answered / such cues (FDB smooth TOR)", True),
    "side_talk_takeover_rate": ("the user's turns to others taken over / such turns (FDB talking to others)",
                                False),
    "background_takeover_rate": ("TV/bystander speech taken over / such events (FDB background speech)", False),
    "duplicate_rate": ("duplicate penalties / effective actions", False),
    "actions_per_min": ("effective actions per minute", False),
    "latency_p50": ("median hit latency from window start (s)", False),
    "latency_p90": ("90th percentile hit latency (s)", False),
    "respond_latency_p50": ("median RESPOND hit latency (s)", False),
    "intervene_latency_p50": ("median INTERVENE hit latency (s)", False),
    "mean_reward": ("mean episode reward", True),
    "normalized_reward": ("(R - R_wait) / (R_max - R_wait)", True),
    "oracle_normalized_reward": ("(R - R_wait) / (R_oracle - R_wait)", True),
    "clip_accuracy": ("PSB-style clip RESPOND/IGNORE accuracy (unusable = wrong)", True),
    "clip_respond_accuracy": ("clip accuracy on scenes with an action cue", True),
    "clip_ignore_accuracy": ("clip accuracy on scenes without an action cue", True),
}

#: Per-episode counts summed by :func:`aggregate` (the inputs of every ratio metric).
COUNTS: tuple[str, ...] = (
    "episodes", "minutes", "action_cues", "resp_cues", "resp_hits", "resp_wrong", "int_cues", "int_hits",
    "int_wrong", "misses", "safety_cues", "safety_misses", "credit", "ign_cues", "ign_fa", "eff_actions",
    "eff_resp", "eff_int", "false_alarms", "interruptions", "duplicates", "turns", "turns_interrupted",
    "pauses", "pauses_taken", "reward", "max_reward", "wait_reward", "oracle_reward", "clip_pos",
    "clip_pos_correct", "clip_neg", "clip_neg_correct", "invalid", *FIELD_COUNTS,
)
#: Percentiles of the bootstrap distribution that bound a 95 % interval.
CI_PERCENTILES = (2.5, 97.5)
#: The tier of scenes whose voices, speakers, rooms and devices training never used
#: (``chimein-bench-v1``); :func:`aggregate` reports its gap to :data:`REFERENCE_TIERS`.
HELDOUT_TIER = "heldout"
#: The tiers the held-out tier is compared with, pooled (those present in the episodes).
REFERENCE_TIERS: tuple[str, ...] = ("clean", "hard")


# ============================================================================================
# Episodes
# ============================================================================================
@dataclass(frozen=True, eq=False)
class Episode:
    """One judged episode: where it came from, its annotations, actions and outcome."""

    split: str
    family: str
    tier: str
    scene_id: str
    annotations: Annotations
    log: ActionLog
    outcome: EpisodeOutcome
    reward_cfg: RewardConfig
    speak_s: float = 2.0
    invalid: bool = False


def make_episode(annotations: Annotations, log: ActionLog, reward_cfg: RewardConfig | None = None,
                 split: str = "custom", family: str = "custom", tier: str = "custom",
                 scene_id: str = "scene", speak_s: float = 2.0, invalid: bool = False) -> Episode:
    """Score ``log`` against ``annotations`` (the env's rule) and wrap it as an :class:`Episode`."""
    cfg = reward_cfg or RewardConfig()
    return Episode(split, family, tier, scene_id, annotations, log, score(annotations, log, cfg), cfg,
                   float(speak_s), bool(invalid))


def judge(record: EpisodeRecord, base_dir: str | Path | None = None, rescore: bool = False,
          reward: Mapping[str, Any] | RewardConfig | None = None) -> Episode:
    """An :class:`Episode` from one :class:`~chimein.envs.episode.EpisodeRecord` (an
    ``episodes.jsonl`` line read back, or a deployment log).

    The record needs ``annotations`` (or ``meta["spec"]``: a scene spec JSON path, relative to
    ``base_dir``). Its stored ``outcome`` is used unless ``rescore`` is set, it has none, or
    ``reward`` overrides the record's ``reward_cfg``; then the log is scored again with
    :func:`~chimein.envs.scoring.score`.

    Raises
    ------
    SpecError
        Naming the episode and its line.
    """
    where = record.where
    meta = record.meta
    try:
        if record.annotations is not None:
            ann = record.annotations
        elif "spec" in meta:
            p = Path(meta["spec"])
            if base_dir is not None and not p.is_absolute():
                p = Path(base_dir) / p
            ann = SceneSpec.load(p).annotations
        else:
            raise SpecError(f"{where}: needs 'annotations' (or 'spec', a scene spec path) to be scored")
        cfg = RewardConfig.from_mapping(reward if reward is not None else meta.get("reward_cfg"))
        env = meta.get("env") or {}
        speak_s = float(env.get("speak_s", meta.get("speak_s", 2.0)))
        if rescore or reward is not None or record.outcome is None:
            outcome = score(ann, record.action_log, cfg)
        else:
            outcome = record.outcome
    except ChimeinError as e:
        msg = str(e)
        raise SpecError(msg if msg.startswith("episode") else f"{where}: {msg}") from None
    return Episode(str(meta.get("split", "custom")), str(meta.get("family", "custom")),
                   str(meta.get("tier", "custom")), record.scene_id, ann, record.action_log, outcome, cfg,
                   speak_s, record.invalid)


def _record(e: EpisodeRecord | Mapping[str, Any], i: int) -> EpisodeRecord:
    """``e`` as a record: a :class:`~chimein.envs.episode.EpisodeRecord` as is, a dict read with
    :meth:`~chimein.envs.episode.EpisodeRecord.from_dict` (``i``: its index, for errors)."""
    if isinstance(e, EpisodeRecord):
        return e
    return EpisodeRecord.from_dict(e, f"episodes[{i}]")


# ============================================================================================
# Per-episode counts
# ============================================================================================
def user_turns(spans: Sequence[Span]) -> tuple[list[int], int]:
    """Group spans into user turns: ``(turn index of each span, number of turns)``.

    A turn is one speaker's speech spans joined by that speaker's pause spans: a pause belongs
    to the speaker's turn in progress, and a speech span that starts where that speaker's pause
    ends continues it.
    """
    turn = [-1] * len(spans)
    current: dict[str, tuple[int, str, float]] = {}  # speaker -> (turn, last kind, last end)
    n = 0
    for i in sorted(range(len(spans)), key=lambda i: (spans[i].start_s, i)):
        sp = spans[i]
        cur = current.get(sp.speaker)
        if cur is not None and (sp.kind == "pause" or (cur[1] == "pause" and abs(sp.start_s - cur[2]) < 1e-3)):
            turn[i] = cur[0]
        else:
            turn[i] = n
            n += 1
        current[sp.speaker] = (turn[i], sp.kind, sp.end_s)
    return turn, n


def _wait_reward(outcome: EpisodeOutcome, cfg: RewardConfig) -> float:
    return math.fsum(cfg.safety_miss if o.safety_critical else cfg.miss
                     for o in outcome.cue_outcomes if o.expected != "IGNORE")


def episode_counts(ep: Episode, oracle_reward: float = math.nan) -> tuple[dict[str, float], list[tuple[float, str]]]:
    """The counts of :data:`COUNTS` for one episode, and its hits' ``(latency_s, kind)``."""
    out = ep.outcome
    c = dict.fromkeys(COUNTS, 0.0)
    c["episodes"] = 1.0
    end = float(ep.log.times_s[-1]) if ep.log.n_steps else 0.0
    c["minutes"] = end / 60.0
    lat: list[tuple[float, str]] = []
    hit_steps = set()
    for o in out.cue_outcomes:
        if o.expected == "IGNORE":
            c["ign_cues"] += 1
            c["ign_fa"] += o.outcome == "false_alarm"
            continue
        k = "resp" if o.expected == "RESPOND" else "int"
        c["action_cues"] += 1
        c[f"{k}_cues"] += 1
        c["credit"] += o.credit
        if o.safety_critical:
            c["safety_cues"] += 1
            c["safety_misses"] += o.outcome == "miss"
        if o.outcome == "hit":
            c[f"{k}_hits"] += 1
            lat.append((float(o.latency_s), o.expected))  # type: ignore[arg-type]
        elif o.outcome == "wrong_kind":
            c[f"{k}_wrong"] += 1
        elif o.outcome == "miss":
            c["misses"] += 1
        if o.outcome in ("hit", "wrong_kind"):
            hit_steps.add(o.step)
            c["eff_resp" if o.action == 1 else "eff_int"] += 1
    # every effective action has one primary class; an interruption charged on top of a hit
    # (same step) is the same action
    for p in (*out.false_alarms, *out.duplicates, *out.interruptions):
        if p.kind == "interruption" and p.step in hit_steps:
            continue
        c["eff_resp" if p.action == 1 else "eff_int"] += 1
    c["eff_actions"] = c["eff_resp"] + c["eff_int"]
    c["false_alarms"] = len(out.false_alarms)
    c["interruptions"] = len(out.interruptions)
    c["duplicates"] = len(out.duplicates)
    spans = ep.annotations.spans
    turn_of, _ = user_turns(spans)
    reached = [i for i, sp in enumerate(spans) if sp.start_s <= end + 1e-6]
    c["turns"] = len({turn_of[i] for i in reached if spans[i].kind == "speech"})
    c["pauses"] = sum(1 for i in reached if spans[i].kind == "pause")
    hit_spans = {p.span_index for p in out.interruptions if p.span_index is not None}
    c["turns_interrupted"] = len({turn_of[i] for i in hit_spans if 0 <= i < len(spans)})
    c["pauses_taken"] = sum(1 for i in hit_spans if 0 <= i < len(spans) and spans[i].kind == "pause")
    c.update(condition_counts(ep.annotations, out, turn_of, end))
    c["reward"] = out.reward
    c["max_reward"] = out.max_reward
    c["wait_reward"] = _wait_reward(out, ep.reward_cfg)
    c["oracle_reward"] = oracle_reward
    positive = c["action_cues"] > 0
    acted = c["eff_actions"] > 0 and not ep.invalid
    correct = (acted == positive) and not ep.invalid
    c["clip_pos" if positive else "clip_neg"] = 1.0
    c["clip_pos_correct" if positive else "clip_neg_correct"] = float(correct)
    c["invalid"] = float(ep.invalid)
    return c, lat


def bare_spec(scene_id: str, annotations: Annotations, duration_s: float = 0.0, family: str = "custom") -> SceneSpec:
    """A minimal valid :class:`SceneSpec` holding ``annotations`` (no sources; cue source ids
    dropped): what annotation-only consumers (the oracle, timeline plots) need."""
    from dataclasses import replace

    from chimein.scenes.spec import Mics, Room

    ann = Annotations(cues=tuple(replace(c, source_ids=()) for c in annotations.cues), spans=annotations.spans)
    dur = max([float(duration_s), 0.1] + [c.end_s for c in ann.cues] + [s.end_s for s in ann.spans])
    return SceneSpec(id=scene_id, seed=0, duration_s=dur, room=Room(dims=(4.0, 3.0, 2.5)),
                     mics=Mics(((2.0, 1.5, 1.2),)), sources=(), annotations=ann, family=family)


def oracle_rewards(episodes: Sequence[Episode], batch: int = 64) -> np.ndarray:
    """What the ``oracle`` baseline earns on each episode's scene (same steps, chunk, speaking
    time and reward); NaN for logs not on a regular chunk grid."""
    from chimein.agents.baselines import Oracle

    out = np.full(len(episodes), np.nan)
    groups: dict[tuple[float, float], list[int]] = defaultdict(list)
    for i, ep in enumerate(episodes):
        c = ep.log.chunk_s
        if c is not None and ep.log.n_steps and np.array_equal(
                ep.log.times_s, np.arange(1, ep.log.n_steps + 1) * float(c)):
            groups[(float(c), ep.speak_s)].append(i)
    for (chunk_s, speak_s), idx in groups.items():
        sr = 16000
        while abs(chunk_s * sr - round(chunk_s * sr)) > 1e-6 and sr < 10**7:
            sr *= 10
        idx.sort(key=lambda i: episodes[i].log.n_steps)
        oracle = Oracle(speak_s=speak_s, chunk_s=chunk_s, sample_rate=sr)
        for j in range(0, len(idx), batch):
            part = idx[j: j + batch]
            specs = []
            for i in part:
                ep = episodes[i]
                specs.append(bare_spec(ep.scene_id, ep.annotations, ep.log.n_steps * chunk_s))
            n_max = max(episodes[i].log.n_steps for i in part)
            oracle.reset(len(part), specs)
            acts = np.zeros((len(part), n_max), np.int64)
            obs = {"assistant_speaking": np.zeros((len(part), 1), np.int8)}
            for k in range(n_max):
                acts[:, k] = oracle.act(obs)[0]
            for r, i in enumerate(part):
                ep = episodes[i]
                log = ActionLog.from_actions(acts[r, : ep.log.n_steps], chunk_s, speak_s)
                out[i] = score(ep.annotations, log, ep.reward_cfg).reward
    return out


# ============================================================================================
# Aggregation
# ============================================================================================
def _div(a: Any, b: Any) -> Any:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.asarray(b) != 0, np.asarray(a, float) / np.where(np.asarray(b) != 0, b, 1), np.nan)


def metrics_from_counts(s: Mapping[str, Any]) -> dict[str, Any]:
    """Every ratio metric of :data:`METRICS` from summed counts (scalars or arrays of
    bootstrap sums); latency percentiles are computed separately."""
    m: dict[str, Any] = {}
    m["respond_recall"] = _div(s["resp_hits"], s["resp_cues"])
    m["respond_precision"] = _div(s["resp_hits"], s["eff_resp"])
    m["intervene_recall"] = _div(s["int_hits"], s["int_cues"])
    m["intervene_precision"] = _div(s["int_hits"], s["eff_int"])
    # F1 = 2TP / (2TP + FP + FN) = 2 hits / (actions + cues): 0 for a policy that never
    # intervenes on scenes that need it, undefined only without cues and actions
    m["intervene_f1"] = _div(2 * np.asarray(s["int_hits"]), np.asarray(s["eff_int"]) + np.asarray(s["int_cues"]))
    hits = np.asarray(s["resp_hits"]) + np.asarray(s["int_hits"])
    m["hit_rate"] = _div(hits, s["action_cues"])
    m["wrong_kind_rate"] = _div(np.asarray(s["resp_wrong"]) + np.asarray(s["int_wrong"]), s["action_cues"])
    m["miss_rate"] = _div(s["misses"], s["action_cues"])
    m["safety_miss_rate"] = _div(s["safety_misses"], s["safety_cues"])
    m["timeliness"] = _div(s["credit"], s["action_cues"])
    m["false_alarms_per_min"] = _div(s["false_alarms"], s["minutes"])
    m["ignore_false_alarm_rate"] = _div(s["ign_fa"], s["ign_cues"])
    m["interruptions_per_turn"] = _div(s["interruptions"], s["turns"])
    m["turn_interruption_rate"] = _div(s["turns_interrupted"], s["turns"])
    m["pause_takeover_rate"] = _div(s["pauses_taken"], s["pauses"])
    m["false_cutoff_rate"] = _div(s["addr_turns_cut"], s["addr_turns"])
    m["smooth_takeover_rate"] = _div(s["smooth_taken"], s["smooth_cues"])
    m["side_talk_takeover_rate"] = _div(s["side_taken"], s["side_turns"])
    m["background_takeover_rate"] = _div(s["bg_taken"], s["bg_events"])
    m["duplicate_rate"] = _div(s["duplicates"], s["eff_actions"])
    m["actions_per_min"] = _div(s["eff_actions"], s["minutes"])
    m["mean_reward"] = _div(s["reward"], s["episodes"])
    gain = np.asarray(s["reward"]) - np.asarray(s["wait_reward"])
    m["normalized_reward"] = _div(gain, np.asarray(s["max_reward"]) - np.asarray(s["wait_reward"]))
    m["oracle_normalized_reward"] = _div(gain, np.asarray(s["oracle_reward"]) - np.asarray(s["wait_reward"]))
    m["clip_accuracy"] = _div(np.asarray(s["clip_pos_correct"]) + np.asarray(s["clip_neg_correct"]),
                              np.asarray(s["clip_pos"]) + np.asarray(s["clip_neg"]))
    m["clip_respond_accuracy"] = _div(s["clip_pos_correct"], s["clip_pos"])
    m["clip_ignore_accuracy"] = _div(s["clip_neg_correct"], s["clip_neg"])
    return m


def _wquantile(sorted_vals: np.ndarray, weights: np.ndarray, q: float) -> np.ndarray:
    """Inverted-CDF quantile of ``sorted_vals`` under each row of ``weights`` (R, M)."""
    if sorted_vals.size == 0:
        return np.full(weights.shape[0], np.nan)
    cw = np.cumsum(weights, axis=1)
    total = cw[:, -1]
    idx = np.minimum((cw < (q * total)[:, None] - 1e-9).sum(axis=1), sorted_vals.size - 1)
    return np.where(total > 0, sorted_vals[idx], np.nan)


def _latency_metrics(lat: list[tuple[int, float, str]], w: np.ndarray) -> dict[str, np.ndarray]:
    """Latency percentiles for each row of episode weights ``w`` (R, N)."""
    out = {}
    for name, kind, q in (("latency_p50", None, 0.5), ("latency_p90", None, 0.9),
                          ("respond_latency_p50", "RESPOND", 0.5), ("intervene_latency_p50", "INTERVENE", 0.5)):
        sel = [(v, e) for e, v, k in lat if kind is None or k == kind]
        sel.sort()
        vals = np.array([v for v, _ in sel])
        eps = np.array([e for _, e in sel], int)
        out[name] = _wquantile(vals, w[:, eps] if eps.size else np.zeros((w.shape[0], 0)), q)
    return out


def _clean(x: Any) -> float | None:
    x = float(x)
    return None if not math.isfinite(x) else x


def _strata_weights(rng: np.random.Generator, st: np.ndarray, resamples: int) -> np.ndarray:
    """``(resamples, n)`` bootstrap multiplicities: the episodes of each stratum (split) drawn
    with replacement, so every stratum keeps its size."""
    w = np.zeros((resamples, len(st)))
    for s in np.unique(st):
        cols = np.flatnonzero(st == s)
        w[:, cols] = rng.multinomial(len(cols), np.full(len(cols), 1.0 / len(cols)), size=resamples)
    return w


def _local_lat(idx: np.ndarray, lat: list[tuple[int, float, str]]) -> list[tuple[int, float, str]]:
    """The hit latencies of the episodes ``idx``, re-indexed by position in ``idx``."""
    pos = {int(e): j for j, e in enumerate(idx)}
    return [(pos[e], v, k) for e, v, k in lat if e in pos]


def _point(idx: np.ndarray, C: np.ndarray, lat: list[tuple[int, float, str]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Summed counts of the episodes ``idx`` and every metric of :data:`METRICS` on them."""
    sums = dict(zip(COUNTS, C[idx].sum(axis=0), strict=True))
    point = metrics_from_counts(sums)
    point.update({k: v[0] for k, v in _latency_metrics(_local_lat(idx, lat), np.ones((1, len(idx)))).items()})
    return sums, point


def _boot(idx: np.ndarray, C: np.ndarray, lat: list[tuple[int, float, str]], w: np.ndarray) -> dict[str, Any]:
    """Every metric of the episodes ``idx`` under each row of bootstrap weights ``w`` (R, len(idx))."""
    boot = metrics_from_counts(dict(zip(COUNTS, (w @ C[idx]).T, strict=True)))
    boot.update(_latency_metrics(_local_lat(idx, lat), w))
    return boot


def _ci(point: Any, boot: Any) -> list[float | None]:
    """The 95 % percentile interval of the finite bootstrap values (None, None when the point
    value is undefined or no resample defines it)."""
    if boot is None or _clean(point) is None:
        return [None, None]
    b = np.asarray(boot, float)
    b = b[np.isfinite(b)]
    if not b.size:
        return [None, None]
    return [float(np.percentile(b, CI_PERCENTILES[0])), float(np.percentile(b, CI_PERCENTILES[1]))]


def _rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(name.encode())]))


def _group(name: str, idx: np.ndarray, strata: np.ndarray, C: np.ndarray, lat: list[tuple[int, float, str]],
           resamples: int, seed: int) -> dict[str, Any]:
    sums, point = _point(idx, C, lat)
    res: dict[str, Any] = {"n_episodes": len(idx), "counts": {k: _clean(v) for k, v in sums.items()}}
    boot = _boot(idx, C, lat, _strata_weights(_rng(seed, name), strata[idx], resamples)) if resamples > 0 else {}
    for k in METRICS:
        res[k] = {"value": _clean(point[k]), "ci": _ci(point[k], boot.get(k))}
    return res


def _gap_group(name: str, held: np.ndarray, ref: np.ndarray, strata: np.ndarray, C: np.ndarray,
               lat: list[tuple[int, float, str]], resamples: int, seed: int) -> dict[str, Any]:
    """Held-out minus reference figures of one gap group (see :func:`generalisation_gap`)."""
    idx = np.concatenate([held, ref])
    nh = len(held)
    _, ph = _point(held, C, lat)
    _, pr = _point(ref, C, lat)
    bh: dict[str, Any] = {}
    br: dict[str, Any] = {}
    if resamples > 0:
        w = _strata_weights(_rng(seed, name), strata[idx], resamples)  # one draw: both sides of each resample
        bh, br = _boot(held, C, lat, w[:, :nh]), _boot(ref, C, lat, w[:, nh:])
    res: dict[str, Any] = {"n_heldout": nh, "n_reference": len(ref)}
    for k in METRICS:
        d = float(ph[k]) - float(pr[k])
        diff = None if k not in bh else np.asarray(bh[k], float) - np.asarray(br[k], float)
        ci = _ci(d, diff)
        res[k] = {"value": _clean(d), "ci": ci,
                  "significant": bool(ci[0] is not None and (ci[0] > 0 or ci[1] < 0)),  # type: ignore[operator]
                  "heldout": {"value": _clean(ph[k]), "ci": _ci(ph[k], bh.get(k))},
                  "reference": {"value": _clean(pr[k]), "ci": _ci(pr[k], br.get(k))}}
    return res


def generalisation_gap(eps: Sequence[Episode], strata: np.ndarray, C: np.ndarray, lat: list[tuple[int, float, str]],
                       resamples: int = 1000, seed: int = 0, heldout_tier: str = HELDOUT_TIER,
                       reference_tiers: Sequence[str] = REFERENCE_TIERS,
                       families: Sequence[str] | None = None) -> dict[str, Any] | None:
    """The generalisation gap: every metric on the held-out tier minus the same metric on the
    reference tiers pooled, overall and per family, with 95 % bootstrap intervals.

    Each side is computed like every other group of :func:`aggregate`: counts summed over its
    episodes (the ``heldout`` tier; the ``clean`` and ``hard`` tiers together), then the
    micro-averaged ratios and latency percentiles. So ``value`` is exactly
    ``by_tier[heldout]`` minus what a group holding the reference tiers' episodes would show.

    The interval comes from one bootstrap over the episodes of both sides: each resample draws
    episodes with replacement within each split (a suite's split is ``tier/family``, so each
    side keeps its size) and gives both figures, and the interval is the 2.5-97.5 percentiles
    of their difference within a resample (0/0 left out). The held-out scenes are *other scenes*
    than the reference ones (other voices, speakers, rooms, devices), so nothing is paired: this
    is a two-sample interval, stratified by split, carrying the uncertainty of both sides -- not
    a scene-paired one like :func:`chimein.eval.report.paired_differences`, and wider than
    either side's own interval. Its resamples are seeded by ``seed`` and the group's name
    (``gap:overall``, ``gap:family:<family>``), so the sides' intervals reported here may differ
    in the last digits from ``by_tier``'s, which draw their own resamples.

    Parameters
    ----------
    eps, strata, C, lat
        The episodes of :func:`aggregate` in its order, their split index, per-episode
        :data:`COUNTS` rows and ``(episode, latency, kind)`` hits.
    resamples, seed
        Bootstrap resamples (0: no intervals) and seed.
    heldout_tier, reference_tiers
        The tier whose scenes training never saw, and the tiers it is compared with (pooled;
        those present are used).
    families
        Order of the per-family groups (default: order of first appearance).

    Returns
    -------
    dict or None
        None unless the episodes hold the held-out tier and at least one reference tier; else
        ``{"heldout_tier", "reference_tiers" (those present), "difference": "heldout -
        reference", "bootstrap", "overall": G, "by_family": {family: G}}`` with ``G =
        {"n_heldout", "n_reference", <metric>: {"value", "ci", "significant", "heldout":
        {"value", "ci"}, "reference": {"value", "ci"}}}`` (None where undefined;
        ``significant``: the interval excludes 0). Families lacking either side are left out.
    """
    tiers = np.array([e.tier for e in eps])
    present = [t for t in dict.fromkeys(reference_tiers) if (tiers == t).any()]
    if not present or not (tiers == heldout_tier).any():
        return None
    is_held, is_ref = tiers == heldout_tier, np.isin(tiers, present)
    fam = np.array([e.family for e in eps])
    out: dict[str, Any] = {
        "heldout_tier": heldout_tier, "reference_tiers": present, "difference": "heldout - reference",
        "bootstrap": {"resamples": int(resamples), "seed": int(seed), "ci": 0.95, "strata": "split", "paired": False},
        "overall": _gap_group("gap:overall", np.flatnonzero(is_held), np.flatnonzero(is_ref), strata, C, lat,
                              resamples, seed),
        "by_family": {}}
    for f in families if families is not None else dict.fromkeys(fam.tolist()):
        h, r = np.flatnonzero(is_held & (fam == f)), np.flatnonzero(is_ref & (fam == f))
        if h.size and r.size:
            out["by_family"][f] = _gap_group(f"gap:family:{f}", h, r, strata, C, lat, resamples, seed)
    return out


def aggregate(episodes: Sequence[Episode | EpisodeRecord | Mapping[str, Any]], resamples: int = 1000, seed: int = 0,
              base_dir: str | Path | None = None, rescore: bool = False, heldout_tier: str | None = HELDOUT_TIER,
              reference_tiers: Sequence[str] = REFERENCE_TIERS) -> dict[str, Any]:
    """Metrics with bootstrap CIs, overall and by split, family and tier, and the
    generalisation gap of a held-out tier.

    Parameters
    ----------
    episodes
        :class:`Episode` objects, episode records (judged with :func:`judge`) or episode dicts
        (``episodes.jsonl`` lines parsed with :func:`json.loads`: read with
        :meth:`EpisodeRecord.from_dict <chimein.envs.episode.EpisodeRecord.from_dict>`, then
        judged).
    resamples
        Bootstrap resamples (0: no intervals).
    seed
        Seed of the bootstrap.
    base_dir, rescore
        Passed to :func:`judge` for records.
    heldout_tier, reference_tiers
        The held-out tier and the tiers it is compared with (default ``"heldout"`` against
        ``"clean"`` and ``"hard"`` pooled); None: no gap.

    Returns
    -------
    dict
        ``{"overall": G, "by_split": {name: G}, "by_family": {...}, "by_tier": {...},
        "bootstrap": {...}}`` where ``G = {"n_episodes", "counts", <metric>: {"value", "ci":
        [lo, hi]}}`` (None where undefined); plus ``"gap"`` (:func:`generalisation_gap`) only
        when the episodes hold the held-out tier and at least one reference tier.

    Raises
    ------
    SpecError
        No episodes; an episode dict or record that cannot be read or judged (naming its
        index in ``episodes``); ``heldout_tier`` among ``reference_tiers``.
    """
    if heldout_tier is not None and heldout_tier in tuple(reference_tiers):
        raise SpecError(f"metrics: field 'heldout_tier': {heldout_tier!r} is also one of reference_tiers "
                        f"{list(reference_tiers)}; give the held-out tier and the tiers it is compared with apart")
    eps = [e if isinstance(e, Episode) else judge(_record(e, i), base_dir, rescore) for i, e in enumerate(episodes)]
    if not eps:
        raise SpecError("metrics: no episodes to aggregate")
    # groups are listed in order of first appearance; the numbers do not depend on the order
    order = {key: [] for key in ("split", "family", "tier")}  # type: dict[str, list[str]]
    for e in eps:
        for key, names in order.items():
            if getattr(e, key) not in names:
                names.append(getattr(e, key))
    eps = sorted(eps, key=lambda e: (e.split, e.scene_id))
    orc = oracle_rewards(eps)
    rows: list[list[float]] = []
    lat: list[tuple[int, float, str]] = []
    for i, ep in enumerate(eps):
        c, lt = episode_counts(ep, float(orc[i]))
        rows.append([c[k] for k in COUNTS])
        lat.extend((i, v, k) for v, k in lt)
    C = np.asarray(rows, float)
    split_ids = {n: i for i, n in enumerate(sorted(order["split"]))}
    strata = np.array([split_ids[e.split] for e in eps])
    out: dict[str, Any] = {"overall": _group("overall", np.arange(len(eps)), strata, C, lat, resamples, seed)}
    for key, attr in (("by_split", "split"), ("by_family", "family"), ("by_tier", "tier")):
        out[key] = {n: _group(f"{key}:{n}", np.flatnonzero([getattr(e, attr) == n for e in eps]), strata, C, lat,
                              resamples, seed) for n in order[attr]}
    out["bootstrap"] = {"resamples": int(resamples), "seed": int(seed), "ci": 0.95, "strata": "split"}
    gap = None if heldout_tier is None else generalisation_gap(
        eps, strata, C, lat, resamples, seed, heldout_tier, reference_tiers, order["family"])
    if gap is not None:
        out["gap"] = gap
    return json.loads(json.dumps(out))
