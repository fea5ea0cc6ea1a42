"""The timing language model: a small decoder that hears audio as tokens and decides when to act.

Where each part lives
---------------------
- :mod:`~chimein.agents.lm.tokenizer` -- audio -> codebook unit tokens, the vocabulary and the
  token layout of an episode (``<bos> (units of chunk k, action k)*``).
- :mod:`~chimein.agents.lm.model` -- :class:`~chimein.agents.lm.model.TimingLM` (a sliding-window
  Mistral-style causal LM, its decide head and value head) and its config.
- :mod:`~chimein.agents.lm.checkpoint` -- checkpoint directories: save, load, recognise.
- :mod:`~chimein.agents.lm.decoder` -- the **one** incremental decoder (sliding-window KV
  cache) that steps any subset of streams; lockstep inference steps all of them.
- :mod:`~chimein.agents.lm.decide` -- the **one** decide rule: decide-head logits + bias ->
  probabilities -> action (greedy, thresholded or sampled).
- :mod:`~chimein.agents.lm.policy` -- :class:`~chimein.agents.lm.policy.LMPolicy`, a checkpoint
  as a :class:`~chimein.agents.policy.Policy` (in-process, lockstep streams).
- :mod:`~chimein.agents.lm.slots` -- per-stream slots the policy server steps in any subset
  (LM checkpoints batched; other policies one instance per slot).

Importing this package imports nothing (torch loads with :mod:`~chimein.agents.lm.model`,
:mod:`~chimein.agents.lm.decoder` and :mod:`~chimein.agents.lm.decide`), so that
:mod:`~chimein.agents.lm.tokenizer` stays importable without torch.
"""
