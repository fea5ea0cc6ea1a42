"""Tests of the timing LM: checkpoints, streaming == full decoding, and LMPolicy in the env."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from chimein.agents.lm.checkpoint import load_checkpoint, save_checkpoint
from chimein.agents.lm.decide import choose_actions, decide
from chimein.agents.lm.decoder import (
    IncrementalDecoder,
    action_tokens,
    full_action_logits,
    step_tokens,
)
from chimein.agents.lm.model import LMConfig, action_log_probs
from chimein.agents.lm.tokenizer import (
    ACTION_IDS,
    BOS_ID,
    interleave,
)
from chimein.agents.registry import make_policy
from chimein.errors import SpecError

K = 24  # codebook size of the models and codebooks of conftest.py (make_stream_*)


def random_stream(n_chunks: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(
        interleave(rng.integers(0, K, 2 * n_chunks), rng.integers(0, 3, n_chunks), 2)
    )


def test_incremental_equals_full_over_several_windows_with_rebase_and_batched_reset(
    make_stream_model,
) -> None:
    model = make_stream_model()
    n = 30  # 90 tokens: almost 4 windows of 24
    a, b, c = random_stream(n, 1), random_stream(n, 2), random_stream(12, 3)
    act_pos = [3 * k + 2 for k in range(n)]  # position of each chunk's last unit token
    ref_a = torch.softmax(full_action_logits(model, a[None], act_pos)[0], -1)
    ref_b = torch.softmax(full_action_logits(model, b[None], act_pos)[0], -1)
    ref_c = torch.softmax(full_action_logits(model, c[None], act_pos[:12])[0], -1)
    for rebase_at in (1 << 14, 2 * 26 + 6):  # never / every few chunks
        dec = IncrementalDecoder(model, 2, rebase_at=rebase_at)
        got_a, got_b, got_c = [], [], []
        for k in range(n):
            out = dec.step(torch.stack([a[3 * k : 3 * k + 3], b[3 * k : 3 * k + 3]]))
            p = torch.softmax(out.action_logits, -1)
            got_a.append(p[0])
            got_b.append(p[1])
        dec.reset(1)  # stream 1 restarts; stream 0 continues
        for k in range(12):
            cont = torch.tensor([ACTION_IDS[0], 7 + k % 5, 8])
            out = dec.step(torch.stack([cont, c[3 * k : 3 * k + 3]]))
            got_c.append(torch.softmax(out.action_logits, -1)[1])
        for got, ref in ((got_a, ref_a), (got_b, ref_b), (got_c, ref_c)):
            g = torch.stack(got)
            assert torch.allclose(g, ref, atol=1e-5), (g - ref).abs().max()
            assert torch.equal(g.argmax(-1), ref.argmax(-1))
    assert len(set(ref_a.argmax(-1).tolist())) > 1  # the test exercises different decisions


def test_window_bounds_context(make_stream_model, stream_lm) -> None:
    """Tokens older than the receptive field (layers x window) cannot change a decision;
    with a window longer than the stream, they do."""
    model = make_stream_model()
    a, b = random_stream(40, 5), random_stream(40, 6)
    mixed = torch.cat([b[:30], a[30:]])  # same last 110 tokens, different first 30
    la = full_action_logits(model, a[None])[0, -1]
    lm = full_action_logits(model, mixed[None])[0, -1]
    assert torch.allclose(la, lm, atol=1e-5)
    wide = make_stream_model(cfg=LMConfig(**{**stream_lm.to_dict(), "window": 256}))
    assert not torch.allclose(
        full_action_logits(wide, a[None])[0, -1], full_action_logits(wide, mixed[None])[0, -1]
    )


def test_save_load_gives_equal_logits_and_values(make_stream_model, make_stream_codebook, stream_lm,
                                                 tmp_path) -> None:
    model, cb = make_stream_model(3), make_stream_codebook()
    with torch.no_grad():
        model.value_head.out.weight.normal_()
    save_checkpoint(
        tmp_path / "ck",
        model,
        cb,
        chunk_s=0.08,
        inference={"logit_bias": [0.0, -1.0, -0.5]},
        training={"note": "test"},
    )
    ck = load_checkpoint(tmp_path / "ck")
    seq = random_stream(10, 7)[None]
    with torch.no_grad():
        o1, o2 = model(seq, full_logits=True), ck.model(seq, full_logits=True)
    assert torch.equal(o1.logits, o2.logits) and torch.equal(o1.values, o2.values)
    meta = json.loads((tmp_path / "ck" / "chimein.json").read_text())
    assert meta["units_per_chunk"] == 2 and meta["inference"]["logit_bias"] == [0.0, -1.0, -0.5]
    assert meta["training"] == {"note": "test"} and meta["lm"]["window"] == stream_lm.window
    assert (
        not list((tmp_path / "ck").glob("*.bin"))
        and (tmp_path / "ck" / "model.safetensors").is_file()
    )
    tok = ck.tokenizer()
    assert tok.convert_tokens_to_ids("<respond>") == ACTION_IDS[1]
    assert ck.model.lm.config.bos_token_id == tok.bos_token_id == BOS_ID


def test_not_a_checkpoint_errors(make_stream_model, make_stream_codebook, tmp_path) -> None:
    with pytest.raises(SpecError, match="no such"):
        load_checkpoint(tmp_path / "missing")
    (tmp_path / "pick").mkdir()
    (tmp_path / "pick" / "pytorch_model.bin").write_bytes(b"\x80\x04junk")
    with pytest.raises(SpecError, match="pickle"):
        make_policy(str(tmp_path / "pick"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpecError, match="not a chimein checkpoint"):
        make_policy(str(tmp_path / "empty"))
    save_checkpoint(tmp_path / "ck", make_stream_model(), make_stream_codebook())
    (tmp_path / "ck" / "value_head.safetensors").unlink()
    with pytest.raises(SpecError, match="value_head"):
        load_checkpoint(tmp_path / "ck")


def test_action_log_probs_restricted_vs_full(make_stream_model) -> None:
    logits = torch.randn(5, 40)
    r, f = action_log_probs(logits)
    assert torch.allclose(r.exp().sum(-1), torch.ones(5))
    gap = f - r  # the same for the three actions: log of the action mass
    assert torch.allclose(gap, gap[:, :1].expand_as(gap), atol=1e-6)
    model = make_stream_model()
    dec = IncrementalDecoder(model, 1)
    out = dec.step(torch.tensor([[BOS_ID, 7, 8]]), full_vocab=True)
    full = model(torch.tensor([[BOS_ID, 7, 8]]), full_logits=True).logits[0, -1]
    assert torch.allclose(
        out.log_action_mass, action_log_probs(full)[1][0] - action_log_probs(full)[0][0], atol=1e-5
    )


def test_stepping_every_stream_is_stepping_the_subset_of_every_stream(make_stream_model) -> None:
    """One decoder: ``step(tokens)`` equals ``step(tokens, streams=all)`` bit for bit (resets
    included), and subsets stepped in any order equal lockstep within float rounding."""
    model = make_stream_model()
    rng = np.random.default_rng(5)
    toks = torch.from_numpy(rng.integers(4, 20, size=(40, 3, 3)))
    lock, subset = IncrementalDecoder(model, 3, rebase_at=52), IncrementalDecoder(model, 3,
                                                                                 rebase_at=52)
    for k in range(40):
        if k == 15:
            lock.reset(1)
            subset.reset(1)
        a, b = lock.step(toks[k], full_vocab=True), subset.step(toks[k], [0, 1, 2], full_vocab=True)
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert np.array_equal(lock.filled, subset.filled) and torch.equal(lock.k, subset.k)
    # streams 1 and 2 stepped in random subsets (stream 0 never): the same logits as lockstep
    ref = IncrementalDecoder(model, 2, rebase_at=52)
    want = [ref.step(toks[k, 1:]).action_logits for k in range(40)]
    dec = IncrementalDecoder(model, 3, rebase_at=52, rewind_on_reset=True)
    ks = [0, 0]
    while min(ks) < 40:
        sub = [i for i in (0, 1) if ks[i] < 40 and rng.random() < 0.6]
        if not sub:
            continue
        out = dec.step(torch.stack([toks[ks[i], i + 1] for i in sub]), [i + 1 for i in sub])
        for j, i in enumerate(sub):
            assert torch.allclose(out.action_logits[j], want[ks[i]][i], atol=1e-4)
            ks[i] += 1
    assert int(dec.pos[0]) == 0 and int(dec.pos.max()) < 52 + 3  # untouched; rebased
    dec.reset(2)
    assert dec.filled[2] == 0 and dec.filled[1] > 0  # rewound ring
    with pytest.raises(ValueError, match="stream indices"):
        dec.step(toks[0, :2], [1])
    with pytest.raises(ValueError, match="expected tokens"):
        dec.step(toks[0, :2])
    with pytest.raises(ValueError, match="distinct"):
        dec.step(toks[0, :2], [1, 1])


def test_decide_rule() -> None:
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 0.5]])
    actions, probs = decide(logits, torch.tensor([0.0, 0.0, 1.0]))
    assert actions.tolist() == [0, 1, 2] and probs.dtype == np.float32
    assert np.allclose(probs, torch.softmax(logits + torch.tensor([0.0, 0.0, 1.0]), -1).numpy())
    assert choose_actions(probs, act_threshold=0.5).tolist() == [0, 1, 2]
    assert choose_actions(probs, act_threshold=0.99).tolist() == [0, 0, 0]
    draw = [np.random.default_rng(i) for i in range(3)]
    again = [np.random.default_rng(i) for i in range(3)]
    assert np.array_equal(choose_actions(probs, True, rngs=draw), choose_actions(probs, True,
                                                                                 rngs=again))
    with pytest.raises(ValueError, match="generator"):
        choose_actions(probs, True)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, make_stream_model, make_stream_codebook) -> str:
    d = tmp_path_factory.mktemp("lm") / "ckpt"
    save_checkpoint(
        d, make_stream_model(4), make_stream_codebook(), chunk_s=0.08, inference={"logit_bias": [0.0, 1.0, 1.0]}
    )
    return str(d)


def test_lm_policy_runs_through_the_env(ckpt) -> None:
    from chimein.envs.vector import ResponseTimingVectorEnv

    policy = make_policy(ckpt)
    envs = ResponseTimingVectorEnv(3, "synthetic", chunk_ms=80)
    try:
        obs, _ = envs.reset(seed=0)
        policy.configure(0.08, 16000, "audio")
        policy.reset(3)
        seen = set()
        for _ in range(40):
            actions, probs = policy.act(obs)
            assert actions.shape == (3,) and actions.dtype == np.int64 and probs.shape == (3, 3)
            assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
            seen.update(actions.tolist())
            obs, *_ = envs.step(actions)
        policy.reset_stream(1)
        policy.act(obs)
    finally:
        envs.close()
    assert seen <= {0, 1, 2}


def test_lm_policy_decisions_match_decoder_and_substeps(ckpt) -> None:
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal((2, 12 * 1280))).astype(np.float32)
    p80 = make_policy(ckpt, logit_bias=[0.0, 0.0, 0.0])
    p80.reset(2)
    acts80, probs80 = [], []
    for k in range(12):
        a, p = p80.act({"audio": audio[:, k * 1280 : (k + 1) * 1280, None]})
        acts80.append(a)
        probs80.append(p)
    # the same stream through the decoder by hand
    ck = load_checkpoint(ckpt)
    from chimein.agents.lm.tokenizer import UNIT_OFFSET, AudioTokenizer

    ids = np.stack([AudioTokenizer(ck.codebook).tokenize(audio[b]) for b in range(2)])
    dec = IncrementalDecoder(ck.model, 2)
    prev = torch.full((2,), BOS_ID)
    for k in range(12):
        toks = step_tokens(prev, ids[:, 2 * k : 2 * k + 2])
        assert torch.equal(toks[:, 1:], torch.from_numpy(ids[:, 2 * k : 2 * k + 2] + UNIT_OFFSET))
        p = torch.softmax(dec.step(toks).action_logits, -1).numpy()
        assert np.allclose(p, probs80[k], atol=1e-5)
        prev = action_tokens(acts80[k])
        assert prev.tolist() == [ACTION_IDS[a] for a in acts80[k]]
    # a 400 ms env chunk = 5 model chunks with WAIT forced on the first four
    p400 = make_policy(ckpt, chunk_s=0.4)
    assert p400.substeps == 5
    p400.reset(2)
    a, p = p400.act({"audio": audio[:, :6400, None]})
    assert a.shape == (2,) and p.shape == (2, 3)
    with pytest.raises(SpecError, match="multiple"):
        make_policy(ckpt, chunk_s=0.1)
    sampled = make_policy(ckpt, sample=True, seed=3)
    sampled.reset(2)
    s1 = [sampled.act({"audio": audio[:, k * 1280 : (k + 1) * 1280, None]})[0] for k in range(12)]
    sampled.reset(2)
    s2 = [sampled.act({"audio": audio[:, k * 1280 : (k + 1) * 1280, None]})[0] for k in range(12)]
    assert all(np.array_equal(x, y) for x, y in zip(s1, s2, strict=True))
    with pytest.raises(SpecError, match="logit_bias"):
        make_policy(ckpt, logit_bias=[0.0, 1.0])
