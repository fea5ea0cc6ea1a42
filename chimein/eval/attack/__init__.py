"""Adversarial scene search: find the scenes of a declared space that break a timing policy.

The search minimises the target policy's *score* on candidate scenes -- the episode reward of
the shared scoring function (timeliness-weighted credit for hits, minus false alarms,
interruptions, duplicates and misses) per scored action cue (at least 1, so scenes with more
cues do not weigh more) -- by maximising its **regret** ``(R_oracle - R_policy) / n_cues`` on
each scene, under validity constraints that keep every scene solvable (the oracle still earns
its maximum, the target cues stay audible, windows stay well-formed; see
:mod:`chimein.scenes.search_space`).

Search: the cross-entropy method (CEM) over the space's unit-scaled floats (independent
Gaussians, clipped to the bounds and snapped to their grid) and categoricals (independent
categorical distributions). Generation 0 samples the uniform prior -- the very distribution
"random scenes from the same space" come from; each later generation refits the
distributions to the top ``elite_frac`` of the previous generation's valid candidates (which
compete with the elites before them: iCEM's elite retention), with smoothing, a floor on each
standard deviation and on each category's probability, so the search keeps exploring. CEM is population-based (a generation is evaluated in parallel), needs no
gradient and no extra dependency (``cma`` is not installed), copes with mixed
continuous/categorical parameters and with the noise of a fresh scene seed per candidate, and
its final distribution is itself a *scene distribution* of hard scenes (sampled again for the
held-out check below).

Each candidate is evaluated by :func:`evaluate_candidate`, a pure function of its job
(parameters, scene seed, space, policy, env): build the scene, check the scene-only
constraints, render it, play the target policy and the oracle through the env layer's
:func:`~chimein.envs.rollout.rollout`. Jobs go through :func:`chimein.exec.imap_unordered`
(local process pool, inline or Ray); results are collected by key, so they do not depend
on the number of workers.

Outputs in ``DIR``:

- ``manifest.jsonl``, ``audio/``, ``specs/``, ``dataset.json``: the ``top_k`` hardest valid
  scenes found, worst first, in the normal dataset format (``SceneDataset``, ``DatasetSource``,
  ``chimein eval``, training); ``scenes.jsonl`` lists their parameters and scores;
- ``random/``: the valid random scenes of the comparison, as a dataset too;
- ``report.md`` + ``plots/``: failure modes and the before/after comparison
  (:mod:`chimein.eval.attack.report`); ``results.json``: every number of the report;
- ``episodes.jsonl`` / ``oracle_episodes.jsonl``: the comparison's episodes (re-scorable with
  ``chimein eval rescore``);
- ``attack_state.json`` (identity, the CEM distribution after every generation) and
  ``candidates.jsonl`` (one line per evaluated candidate, appended as results arrive).

Resuming: the state is written atomically after every generation and every candidate's result
is appended as soon as it arrives; rerunning the same command skips what is done. Generation
``g``'s candidates are drawn from a generator seeded by ``(seed, g)`` and the distribution
after generation ``g - 1``, so a run continued with a larger ``budget`` gives exactly the
result of an uninterrupted run with that budget (the budget is rounded up to whole
generations).

Layout
------
:mod:`.search` (the settings, the CEM distribution and its update, the seeded candidates),
:mod:`.jobs` (what runs in workers: evaluating a candidate, replaying or rendering a scene, the
per-process cache), :mod:`.state` (``attack_state.json`` and ``candidates.jsonl``),
:mod:`.run` (:func:`attack`: the search loop and the comparison; :func:`replay`) and
:mod:`.report` (datasets, comparison, failure modes, ``report.md`` and plots).

Examples
--------
>>> import tempfile
>>> space = {"params": {"snr_db": {"type": "float", "low": 5, "high": 30, "step": 5}},
...          "base": {"family": "addressed", "difficulty": "easy", "room_pool": 1}}
>>> d = tempfile.mkdtemp()
>>> res = attack("always-wait", d, budget=2, space=space, search={"population": 2, "top_k": 1,
...              "n_random": 1, "n_holdout": 1, "resamples": 0, "examples": 0}, workers=1,
...              progress=False, rir_cache_dir=d)
>>> res["search"]["evaluated"], res["sets"]["found"]["n_valid"]
(2, 1)
"""

from chimein.eval.attack.jobs import evaluate_candidate
from chimein.eval.attack.report import bootstrap_mean, replay_summary, summary
from chimein.eval.attack.run import attack, replay
from chimein.eval.attack.search import (
    SearchConfig,
    draw,
    initial_distribution,
    update_distribution,
)
from chimein.eval.attack.state import CANDIDATES, STATE, read_candidates

__all__ = [
    "CANDIDATES",
    "STATE",
    "SearchConfig",
    "attack",
    "bootstrap_mean",
    "draw",
    "evaluate_candidate",
    "initial_distribution",
    "read_candidates",
    "replay",
    "replay_summary",
    "summary",
    "update_distribution",
]
