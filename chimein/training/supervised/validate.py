"""Validation of the timing LM during and after supervised training, and the decide head's
calibration.

Held-out scenes (:func:`validation_scenes`, their own seed and room pool) are played with the
current model through the real env and scoring (:func:`rollout_metrics`); :class:`Validator`
adds the teacher-forced loss and accuracy on the same scenes and writes everything to
TensorBoard; :func:`calibrate_bias` picks the decide head's ``logit_bias`` on them, and
:func:`calibrate_checkpoint` does so for a checkpoint trained elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from chimein.agents.lm.checkpoint import Checkpoint
from chimein.agents.lm.model import TimingLM
from chimein.agents.lm.tokenizer import AudioTokenizer, Codebook
from chimein.config import read_config
from chimein.envs.episode import EpisodeRecord
from chimein.errors import ConfigError
from chimein.io import atomic_write_text
from chimein.training.data import item_rng, make_batch, tokenize_scene
from chimein.training.labels import LabelConfig
from chimein.training.supervised.config import TrainConfig, ValConfig
from chimein.training.supervised.loss import compute_loss

__all__ = [
    "VAL_KEYS",
    "Validator",
    "calibrate_bias",
    "calibrate_checkpoint",
    "calibration_lines",
    "metric_value",
    "rollout_metrics",
    "smooth_curve",
    "validation_scenes",
]

_VAL_BATCH = 2**31 - 1  # batch index of the validation items' generators (never a training batch)


def validation_scenes(
    scenes_cfg: Mapping[str, Any], val: ValConfig, rir_cache_dir: str | None = None
) -> list[Any]:
    """Held-out scenes: ``n_per_family`` per family and difficulty, from the validation seed and
    room pool (disjoint from the training pool and from chimein-bench-v0's)."""
    from chimein.scenes.render import render
    from chimein.scenes.rir import RIRCache
    from chimein.scenes.sampler import sample_scene, scene_seed

    cache = RIRCache(cache_dir=rir_cache_dir)
    out: list[Any] = []
    base = {k: v for k, v in dict(scenes_cfg).items() if k not in ("family", "difficulty")}
    for d in val.difficulties:
        for fam in val.families:
            cfg = {
                **base,
                "family": fam,
                "difficulty": d,
                "room_pool_seed": int(val.room_pool_seed),
                "multi_event_duration_s": list(val.multi_event_duration_s),
            }
            for i in range(int(val.n_per_family)):
                seed = scene_seed(int(val.seed), len(out))
                out.append(
                    render(sample_scene(cfg, seed, scene_id=f"val-{d}-{fam}-{i}"), cache=cache)
                )
    return out


def rollout_metrics(
    model: TimingLM,
    codebook: Codebook,
    scenes: Sequence[Any],
    chunk_s: float,
    logit_bias: Sequence[float] = (0.0, 0.0, 0.0),
    batch_size: int = 64,
    speak_s: float = 2.0,
    threads: int = 1,
    groups: bool = False,
) -> tuple[dict[str, Any], list[EpisodeRecord]]:
    """Play ``scenes`` with the model as an :class:`~chimein.agents.lm.policy.LMPolicy` through the
    env; return the overall metrics of :func:`chimein.eval.metrics.aggregate` (all of its groups
    with ``groups=True``) on the episode records and the records themselves (with the scene's
    annotations; ``meta``: ``split``, ``family``, ``tier``, ``env`` and ``index``, the scene's
    index). The metrics judge the outcomes the env scored (default reward configuration).

    Runs with ``threads`` torch threads (restored afterwards): streaming steps are many small
    operations, which extra threads slow down on a busy machine."""
    from chimein.agents.lm.policy import LMPolicy
    from chimein.envs.rollout import rollout
    from chimein.eval.metrics import aggregate

    was_training = model.training
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    ck = Checkpoint(
        Path("."),
        model,
        codebook,
        {
            "chunk_s": chunk_s,
            "units_per_chunk": int(round(chunk_s / codebook.features.unit_s)),
            "inference": {"logit_bias": list(logit_bias)},
        },
    )
    try:
        policy = LMPolicy(ck, device=next(model.parameters()).device)
        policy.name = "validation"
        env = {"chunk_ms": chunk_s * 1000.0, "speak_s": speak_s}
        records: list[EpisodeRecord] = []
        order = sorted(range(len(scenes)), key=lambda i: scenes[i].audio.shape[0])
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            played = rollout([scenes[i] for i in idx], policy, env)
            for i, rec in zip(idx, played, strict=True):
                spec = scenes[i].spec
                records.append(
                    replace(rec, annotations=spec.annotations).with_meta(
                        split=f"{spec.difficulty}/{spec.family}",
                        family=spec.family,
                        tier=spec.difficulty,
                        env=env,
                        index=i,
                    )
                )
    finally:
        torch.set_num_threads(prev_threads)
        model.train(was_training)
    agg = aggregate(records, resamples=0)
    return (agg if groups else agg["overall"]), records


#: The rollout metrics logged at validation and recorded in the final checkpoint.
VAL_KEYS = (
    "normalized_reward",
    "mean_reward",
    "timeliness",
    "hit_rate",
    "miss_rate",
    "safety_miss_rate",
    "interruptions_per_turn",
    "turn_interruption_rate",
    "pause_takeover_rate",
    "false_alarms_per_min",
    "ignore_false_alarm_rate",
    "respond_recall",
    "intervene_recall",
    "latency_p50",
    "actions_per_min",
)


def metric_value(m: Mapping[str, Any], k: str) -> float | None:
    """Metric ``k`` of an :func:`~chimein.eval.metrics.aggregate` group as a float (its
    ``value`` when it has an interval); None when missing or not finite."""
    v = m.get(k)
    v = v.get("value") if isinstance(v, Mapping) else v
    return None if v is None or not math.isfinite(float(v)) else float(v)


#: The metrics of the calibration table (``calibration.table`` of a checkpoint).
_CAL_KEYS = ("mean_reward", "timeliness", "interruptions_per_turn", "false_alarms_per_min",
             "pause_takeover_rate")

#: The calibration's budgets: the metric each bounds -> (its column label, its name in words).
BUDGETS = {
    "interruptions_per_turn": ("interr.", "interruptions/turn"),
    "false_alarms_per_min": ("FA/min", "false alarms/min"),
    "pause_takeover_rate": ("TOR", "pause take-over rate"),
}


def smooth_curve(values: Sequence[float], k: int) -> list[float]:
    """Triangular moving average of ``values`` (a curve over an ordered grid) with ``k``
    neighbours on each side, weights ``k + 1 - |d|``, renormalised at the ends; non-finite
    entries are skipped (a point with none finite stays as it was). ``k`` = 0: unchanged.

    Examples
    --------
    >>> smooth_curve([0.0, 1.0, 0.0, 1.0], 1)
    [0.3333333333333333, 0.5, 0.5, 0.6666666666666666]
    """
    if k <= 0:
        return [float(v) for v in values]
    out = []
    for j in range(len(values)):
        num = den = 0.0
        for d in range(-k, k + 1):
            if 0 <= j + d < len(values) and math.isfinite(values[j + d]):
                w = k + 1 - abs(d)
                num += w * values[j + d]
                den += w
        out.append(num / den if den else float(values[j]))
    return out


#: What a calibration worker plays: (model, codebook, scenes, chunk_s, batch_size).
_SWEEP: Any = None


def _sweep_init(model: TimingLM, codebook: Codebook, scenes: Sequence[Any], chunk_s: float,
                batch_size: int) -> None:
    """Keep the model and scenes in a calibration worker (pickled to it once)."""
    global _SWEEP
    _SWEEP = (model, codebook, scenes, chunk_s, batch_size)


def _sweep_job(item: tuple[float, tuple[float, float, float]]) -> Mapping[str, Any]:
    """The overall rollout metrics of one grid value's logit bias, in a calibration worker."""
    model, codebook, scenes, chunk_s, batch_size = _SWEEP
    return rollout_metrics(model, codebook, scenes, chunk_s, item[1], batch_size)[0]


def _sweep(
    model: TimingLM,
    codebook: Codebook,
    scenes: Sequence[Any],
    chunk_s: float,
    values: Sequence[float],
    bias_of: Any,
    batch_size: int,
    bar: Any,
    known: Mapping[float, Mapping[str, Any]] | None = None,
    workers: int = 1,
) -> list[tuple[float, Mapping[str, Any]]]:
    """Rollout metrics of every value of a bias grid (``bias_of(v)``: the logit bias played);
    values already measured (``known``) are not played again. With ``workers`` > 1 (and the
    model on the CPU) the values are played by a ``spawn`` process pool (the model and scenes
    pickled to each worker once), each whole in one process on one thread, as here: the
    metrics are the same. As with any spawn pool, a script that calibrates must guard its entry
    point (``if __name__ == "__main__":``)."""
    got = {float(v): m for v, m in (known or {}).items()}
    todo = [float(v) for v in values if float(v) not in got]
    if bar is not None:
        bar.update(len(values) - len(todo))
    if workers > 1 and len(todo) > 1 and next(model.parameters()).device.type == "cpu":
        from chimein.exec import imap_unordered

        jobs = imap_unordered(_sweep_job, [(v, bias_of(v)) for v in todo], workers=min(workers, len(todo)),
                              initializer=_sweep_init,
                              initargs=(model, codebook, list(scenes), chunk_s, batch_size))
        for (v, _), m in jobs:
            got[v] = m
            if bar is not None:
                bar.update(1)
    else:
        for v in todo:
            got[v], _ = rollout_metrics(model, codebook, scenes, chunk_s, bias_of(v), batch_size)
            if bar is not None:
                bar.update(1)
    return [(float(v), got[float(v)]) for v in values]


def _choose(
    rows: Sequence[tuple[float, Mapping[str, Any]]], budgets: Mapping[str, float], smoothing: int
) -> tuple[int, list[dict[str, Any]], int]:
    """The index of the chosen grid value, the table, and how many values were within budget.

    The choice: the best (smoothed) mean reward among the values whose (smoothed) metrics are
    all within ``budgets`` (metric -> upper bound, see :data:`BUDGETS`); when none is, the one
    least over budget (the smallest largest ratio metric / bound), then the best reward. A
    missing metric (no turns, no pauses) counts as 0."""
    table = [{"bias": v, **{k: metric_value(m, k) for k in _CAL_KEYS}} for v, m in rows]
    order = sorted(range(len(rows)), key=lambda i: rows[i][0])

    def curve(k: str, missing: float) -> dict[int, float]:
        raw = [metric_value(rows[i][1], k) for i in order]
        sm = smooth_curve([missing if v is None else v for v in raw], smoothing)
        return {order[j]: sm[j] for j in range(len(order))}

    reward = curve("mean_reward", -math.inf)
    watched = {k: curve(k, 0.0) for k in {"interruptions_per_turn", *budgets}}
    if smoothing:
        for i, row in enumerate(table):
            row["smoothed_reward"] = reward[i]
            row["smoothed_interruptions"] = watched["interruptions_per_turn"][i]
            for k in budgets:
                if k != "interruptions_per_turn":
                    row[f"smoothed_{k}"] = watched[k][i]

    def over(i: int) -> float:
        return max((watched[k][i] / max(float(lim), 1e-9) for k, lim in budgets.items()), default=0.0)

    ok = [i for i in range(len(rows)) if over(i) <= 1.0 + 1e-9]
    best = (max(ok, key=lambda i: reward[i]) if ok
            else min(range(len(rows)), key=lambda i: (over(i), -reward[i])))
    return best, table, len(ok)


def _budgets(
    max_interruptions_per_turn: float | None,
    max_false_alarms_per_min: float | None,
    max_pause_takeover_rate: float | None,
) -> dict[str, float]:
    """The calibration's budgets that are set, keyed by the metric each bounds."""
    given = {"interruptions_per_turn": max_interruptions_per_turn,
             "false_alarms_per_min": max_false_alarms_per_min,
             "pause_takeover_rate": max_pause_takeover_rate}
    return {k: float(v) for k, v in given.items() if v is not None}


def calibrate_bias(
    model: TimingLM,
    codebook: Codebook,
    scenes: Sequence[Any],
    chunk_s: float,
    biases: Sequence[float],
    batch_size: int = 64,
    log: Any = None,
    max_interruptions_per_turn: float | None = None,
    progress: bool = False,
    smoothing: int = 0,
    intervene: bool = False,
    max_false_alarms_per_min: float | None = None,
    max_pause_takeover_rate: float | None = None,
    workers: int = 1,
) -> tuple[list[float], dict[str, Any]]:
    """Pick the decide-head logit bias ``[0, b, b]`` on ``scenes`` (streaming rollouts through
    the env for every ``b`` in ``biases``): the best mean reward among the biases whose
    interruption rate is at most ``max_interruptions_per_turn``, false alarms per minute at
    most ``max_false_alarms_per_min`` and pause take-over rate at most
    ``max_pause_takeover_rate`` (a None budget is no bound; when no bias is within every
    budget, the one least over budget, which ``log`` is told). Returns the bias and a summary
    table; ``log`` gets the table (rounded) and the choice, ``progress`` shows a bar.

    ``smoothing`` > 0 judges each bias by the triangular moving average of mean reward and
    interruption rate over its ``smoothing`` neighbours on each side (in bias order; see
    :func:`smooth_curve`): on a few dozen scenes one episode more or less moves a single bias's
    figures by more than the gap between neighbouring biases, and the raw criterion then picks
    an operating point another machine (or seed) does not reproduce.

    ``intervene``: a second stage then keeps RESPOND's bias ``b`` and picks INTERVENE's own
    bias ``c`` (``[0, b, c]``) from the same grid by the same criterion (``b`` itself is not
    played again). The two actions answer different cues at different costs (a missed
    safety-critical cue costs four false alarms), and one shared bias set INTERVENE's operating
    point by RESPOND's (issue 21: the shared bias missed 90 % of safety-critical cues).

    ``workers``: processes that play a stage's biases at once (see :func:`_sweep`; the result
    does not depend on it)."""
    bar = None
    if progress:
        from tqdm import tqdm

        total = len(biases) * (2 if intervene else 1)  # the shared point counts once per stage
        bar = tqdm(total=total, desc="calibrating the decide bias", unit="bias", file=sys.stderr)
    budget = _budgets(max_interruptions_per_turn, max_false_alarms_per_min, max_pause_takeover_rate)

    def tell(lines: Sequence[str]) -> None:
        """Log ``lines`` above the progress bar (cleared and redrawn, not written into)."""
        if log is None:
            return
        with type(bar).external_write_mode(file=sys.stderr) if bar is not None else contextlib.nullcontext():
            for line in lines:
                log(line)

    try:
        rows = _sweep(model, codebook, scenes, chunk_s, biases, lambda b: (0.0, b, b), batch_size, bar,
                      workers=workers)
        if not rows:
            return [0.0, 0.0, 0.0], {"logit_bias": [0.0, 0.0, 0.0], "table": []}
        best_i, table, n_ok = _choose(rows, budget, smoothing)
        b, chosen = rows[best_i]
        bias = [0.0, b, b]
        tell(calibration_lines(table, b, budget, n_ok, len(scenes), smoothing))
        stage2: dict[str, Any] = {}
        if intervene:
            rows2 = _sweep(model, codebook, scenes, chunk_s, biases, lambda c: (0.0, b, c), batch_size,
                           bar, known={b: chosen}, workers=workers)
            best2, table2, n_ok2 = _choose(rows2, budget, smoothing)
            c, chosen = rows2[best2]
            bias = [0.0, b, c]
            stage2 = {"intervene_table": table2}
            tell(calibration_lines(table2, c, budget, n_ok2, len(scenes), smoothing,
                                   what=f"the intervene bias c of [0, {b:+.2f}, c]", symbol="c"))
    finally:
        if bar is not None:
            bar.close()
    return bias, {
        "logit_bias": bias,
        "n_scenes": len(scenes),
        "max_interruptions_per_turn": max_interruptions_per_turn,
        "max_false_alarms_per_min": max_false_alarms_per_min,
        "max_pause_takeover_rate": max_pause_takeover_rate,
        "smoothing": int(smoothing),
        "table": table,
        **stage2,
        "validation": {k: metric_value(chosen, k) for k in VAL_KEYS},
    }


def calibration_lines(
    table: Sequence[Mapping[str, Any]],
    chosen: float,
    budget: Mapping[str, float],
    n_within: int,
    n_scenes: int,
    smoothing: int = 0,
    what: str = "the decide bias [0, b, b]",
    symbol: str = "b",
) -> list[str]:
    """The calibration's report: its table (one row per bias, rounded) and the choice, with a
    warning when no bias kept within the budgets (``n_within`` == 0); with ``smoothing``, the
    smoothed reward and budgeted metrics the choice was made on. ``budget``: metric -> bound
    (:data:`BUDGETS`; empty: no budget)."""
    import textwrap

    budgets = budget

    def cell(v: float | None, width: int, digits: int) -> str:
        return f"{'-' if v is None else f'{v:.{digits}f}':>{width}}"

    limits = ", ".join(f"<= {v:g} {BUDGETS[k][1]}" for k, v in budgets.items())
    cond = f"budget {limits}" if budgets else "no budget"
    how = f"; smoothed over {smoothing} bias(es) each side" if smoothing else ""
    shown = [k for k in BUDGETS if k in budgets] or ["interruptions_per_turn"]
    lines = [f"calibration of {what} on {n_scenes} validation scenes"]
    lines += textwrap.wrap(f"({cond}{how}):", 98, initial_indent="  ", subsequent_indent="  ")
    raw = [("mean_reward", "reward", 9, 3), ("timeliness", "timel.", 8, 3),
           ("interruptions_per_turn", "interr.", 9, 3), ("false_alarms_per_min", "FA/min", 8, 2),
           ("pause_takeover_rate", "TOR", 7, 3)]
    if smoothing:
        raw += [("smoothed_reward", "smoothed: reward", 17, 3)] + [
            ("smoothed_interruptions" if k == "interruptions_per_turn" else f"smoothed_{k}",
             BUDGETS[k][0], 8, 2 if k == "false_alarms_per_min" else 3) for k in shown]
    lines.append(f"  bias {symbol}" + "".join(f"{label:>{w}}" for _, label, w, _ in raw))
    for row in table:
        mark = " <- chosen" if row["bias"] == chosen else ""
        lines.append(f"  {row['bias']:+6.2f}" + "".join(cell(row.get(k), w, d) for k, _, w, d in raw)
                     + mark)
    crit = "smoothed mean reward" if smoothing else "mean reward"
    if not budgets:
        lines.append(f"calibration: bias {symbol} {chosen:+.2f}, the best {crit}")
    elif n_within:
        within = "the only bias" if n_within == 1 else f"the {n_within} biases"
        lines.append(f"calibration: bias {symbol} {chosen:+.2f}, the best {crit} of {within} within the budget")
    elif list(budgets) == ["interruptions_per_turn"]:
        fewest = min((r.get("interruptions_per_turn") or 0.0) for r in table)
        lines += textwrap.wrap(
            f"calibration: warning: no bias keeps interruptions/turn <= {budgets['interruptions_per_turn']:g} "
            f"(the fewest: {fewest:.3f}); falling back to the least interrupting, bias {chosen:+.2f}. Add "
            "lower biases (train.val.biases) or raise train.val.max_interruptions_per_turn; `chimein train "
            "calibrate CKPT` redoes the choice for any checkpoint.", 100, subsequent_indent="  ")
    else:
        opts = ", ".join(f"train.val.max_{k}" for k in budgets)
        lines += textwrap.wrap(
            f"calibration: warning: no bias keeps within the budget ({limits}); falling back to the "
            f"one least over it, bias {symbol} {chosen:+.2f}. Add biases (train.val.biases) or loosen "
            f"{opts}; `chimein train calibrate CKPT` redoes the choice for any checkpoint.", 100,
            subsequent_indent="  ")
    return lines


def calibrate_checkpoint(
    path: str | Path,
    scenes_cfg: Mapping[str, Any],
    val: ValConfig | Mapping[str, Any] | None = None,
    log: Any = None,
    progress: bool = False,
) -> list[float]:
    """Calibrate an existing checkpoint's ``inference.logit_bias`` on the validation scenes of
    ``val`` (e.g. after training elsewhere) and rewrite its ``chimein.json`` atomically
    (``log``, ``progress``: as :func:`calibrate_bias`)."""
    from chimein.agents.lm.checkpoint import META_FILE, load_checkpoint
    from chimein.agents.lm.reference import is_reference, reference_root

    if is_reference(str(path)) or reference_root() in Path(path).resolve().parents:
        raise ConfigError(
            f"calibrate: {path} is a checkpoint shipped inside chimein, which is never rewritten "
            "(its card records its checksums and metrics); copy the directory (python -c \"import "
            "shutil; from chimein.agents.lm.reference import reference_checkpoint as r; "
            "shutil.copytree(r('chimein-lm'), 'my-lm')\") and calibrate the copy"
        )
    v = read_config(ValConfig, val, "val")
    ck = load_checkpoint(path)
    scenes = validation_scenes(scenes_cfg, v)
    bias, cal = calibrate_bias(
        ck.model,
        ck.codebook,
        scenes,
        ck.chunk_s,
        v.biases,
        v.batch_size,
        log,
        v.max_interruptions_per_turn,
        progress,
        v.smoothing,
        v.calibrate_intervene,
        v.max_false_alarms_per_min,
        v.max_pause_takeover_rate,
        v.workers,
    )
    meta = dict(ck.meta)
    meta["inference"] = {**dict(meta.get("inference", {})), "logit_bias": bias}
    meta["calibration"] = cal
    atomic_write_text(Path(path) / META_FILE, json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return bias



@dataclass
class Validator:
    """The held-out scenes of a run, tokenized once, and how the model is validated on them."""

    codebook: Codebook
    scenes: Sequence[Any]
    eps: Sequence[Any]
    train: TrainConfig
    labels: LabelConfig
    val: ValConfig
    max_chunks: int

    @classmethod
    def build(
        cls,
        codebook: Codebook,
        tok: AudioTokenizer,
        scenes_cfg: Mapping[str, Any],
        train: TrainConfig,
        max_chunks: int,
    ) -> Validator:
        """Render the validation scenes of ``train.val`` (none when neither periodic validation
        nor calibration asks for them) and tokenize them."""
        val, data = train.val_cfg, train.data_cfg
        scenes = (
            validation_scenes(scenes_cfg, val, data.rir_cache_dir)
            if val.every > 0 or val.calibrate
            else []
        )
        eps = [tokenize_scene(s, tok, train.chunk_s) for s in scenes]
        return cls(codebook, scenes, eps, train, train.label_cfg, val, max_chunks)

    @torch.no_grad()
    def run(
        self,
        model: TimingLM,
        class_w: torch.Tensor,
        writer: Any,
        step: int,
        tmpdir: Path,
        aux: torch.nn.Module | None = None,
    ) -> dict[str, Any]:
        """Teacher-forced validation loss/accuracy and streaming rollout metrics -> TensorBoard;
        returns the rollout metrics."""
        train, scenes = self.train, self.scenes
        was = model.training
        model.eval()
        self._teacher_forced(model, class_w, writer, step, aux)
        metrics, records = rollout_metrics(
            model, self.codebook, scenes, train.chunk_s, batch_size=self.val.batch_size
        )
        for k in VAL_KEYS:
            v = metric_value(metrics, k)
            if v is not None:
                writer.add_scalar(f"val/{k}", v, step)
        _plot_examples(writer, records, scenes, step, self.val.examples, tmpdir)
        writer.flush()
        model.train(was)
        return metrics

    def _teacher_forced(
        self,
        model: TimingLM,
        class_w: torch.Tensor,
        writer: Any,
        step: int,
        aux: torch.nn.Module | None,
    ) -> None:
        """The action loss and per-action accuracy on the tokenized scenes -> TensorBoard."""
        train, eps = self.train, self.eps
        upc = int(round(train.chunk_s / self.codebook.features.unit_s))
        dev = next(model.parameters()).device
        tot: dict[str, float] = {}
        for i in range(0, len(eps), 8):
            group = eps[i : i + 8]
            b = make_batch(
                group,
                [item_rng(train.seed, _VAL_BATCH, i + j) for j in range(len(group))],
                upc,
                train.chunk_s,
                self.max_chunks,
                self.labels,
            )
            batch = {k: torch.from_numpy(v).to(dev) for k, v in b.items()}
            _, parts = compute_loss(
                model, batch, class_w, train.unit_loss_weight, aux, train.aux_loss_weight
            )
            n = float(batch["act_weight"].sum())
            tot["loss_act"] = tot.get("loss_act", 0.0) + float(parts["loss_act"]) * n
            tot["n"] = tot.get("n", 0.0) + n
            for k, v in parts.items():
                if k.startswith(("n_", "correct_")):
                    tot[k] = tot.get(k, 0.0) + float(v)
        writer.add_scalar("val/loss_act", tot["loss_act"] / max(tot["n"], 1.0), step)
        for name in ("wait", "respond", "intervene"):
            if tot.get(f"n_{name}"):
                writer.add_scalar(
                    f"val/acc_{name}", tot[f"correct_{name}"] / tot[f"n_{name}"], step
                )


def _plot_examples(
    writer: Any,
    records: Sequence[EpisodeRecord],
    scenes: Sequence[Any],
    step: int,
    n: int,
    tmpdir: Path,
) -> None:
    """Draw ``n`` example timelines (multi-event scenes first) of a validation rollout."""
    if n <= 0:
        return
    import matplotlib.image as mpimg

    from chimein.scenes.show import plot_scene

    picks = sorted(
        records, key=lambda r: (-(scenes[r.meta["index"]].spec.family == "multi_event"), r.meta["index"])
    )[:n]
    for j, rec in enumerate(picks):
        sc = scenes[rec.meta["index"]]
        log = rec.action_log
        acts = [
            (float(t), int(a))
            for t, a, e in zip(log.times_s, log.actions, log.effective, strict=True)
            if a and e
        ]
        png = plot_scene(
            sc.spec,
            sc.audio,
            tmpdir / f"ex{j}.png",
            actions=acts,
            title=f"step {step}: {sc.spec.id} reward {rec.outcome.reward if rec.outcome else float('nan'):.2f}",
            dpi=60,
        )
        writer.add_image(
            f"val/example_{j}", mpimg.imread(str(png))[..., :3], step, dataformats="HWC"
        )

