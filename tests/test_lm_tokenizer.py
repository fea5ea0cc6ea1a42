"""Tests of the audio tokenizer, codebook IO and the token vocabulary (chimein.agents.lm.tokenizer)."""

from __future__ import annotations

import numpy as np
import pytest

from chimein.agents.lm.tokenizer import (
    ACTION_IDS,
    ACTION_TOKENS,
    BOS_ID,
    SPECIAL_TOKENS,
    UNIT_OFFSET,
    AudioTokenizer,
    Codebook,
    FeatureConfig,
    build_hf_tokenizer,
    ids_to_text,
    interleave,
)
from chimein.errors import ConfigError, SpecError
from chimein.scenes.spec import Action

FC = FeatureConfig(n_mels=16)
FC_NORM = FeatureConfig(n_mels=16, frame_norm="running_mean", frame_norm_s=0.5)


def make_codebook(k: int = 32, seed: int = 0, fc: FeatureConfig = FC) -> Codebook:
    """A codebook whose centroids are real normalised units of noise and tones (so every
    assignment has a clear winner)."""
    rng = np.random.default_rng(seed)
    sig = np.concatenate(
        [
            0.05 * rng.standard_normal(8000),
            0.3 * np.sin(2 * np.pi * 440 * np.arange(8000) / 16000),
            0.001 * rng.standard_normal(8000),
        ]
    ).astype(np.float32)
    tok_units = AudioTokenizer(
        Codebook(
            np.zeros((2, fc.unit_dim), np.float32),
            np.zeros(fc.unit_dim, np.float32),
            np.ones(fc.unit_dim, np.float32),
            fc,
        )
    ).units(sig)
    mean, std = tok_units.mean(0), tok_units.std(0) + 1e-3
    pick = rng.choice(len(tok_units), k, replace=False)
    return Codebook((tok_units[pick] - mean) / std, mean, std, fc, {"test": True})


def signal(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    t = np.arange(n) / 16000
    env = (np.sin(2 * np.pi * 1.3 * t) > 0).astype(np.float32)
    return (0.2 * env * np.sin(2 * np.pi * 300 * t) + 0.02 * rng.standard_normal(n)).astype(
        np.float32
    )


@pytest.mark.parametrize("fc", [FC, FC_NORM], ids=["plain", "running_mean"])
def test_stream_tokens_equal_whole_signal_tokens_with_one_stream_reset(fc) -> None:
    tok = AudioTokenizer(make_codebook(fc=fc))
    a, b, c = signal(3.2, 1), signal(3.2, 2), signal(1.6, 3)
    stream = tok.stream(2)
    got_a, got_b, got_c = [], [], []
    chunk = 1280
    for k in range(0, len(a), chunk):
        ids = stream.push(np.stack([a[k : k + chunk], b[k : k + chunk]]))
        assert ids.shape == (2, 2)
        got_a.append(ids[0])
        got_b.append(ids[1])
    stream.reset(1)  # stream 1 starts a new signal, stream 0 goes on with silence
    for k in range(0, len(c), chunk):
        ids = stream.push(np.stack([np.zeros(chunk, np.float32), c[k : k + chunk]]))
        got_c.append(ids[1])
    assert np.array_equal(np.concatenate(got_a), tok.tokenize(a))
    assert np.array_equal(np.concatenate(got_b), tok.tokenize(b))
    assert np.array_equal(np.concatenate(got_c), tok.tokenize(c))
    assert len(np.unique(tok.tokenize(a))) > 3  # the tokens carry information


@pytest.mark.parametrize("fc", [FC, FC_NORM], ids=["plain", "running_mean"])
def test_stream_pushes_of_stream_subsets_equal_whole_signal_tokens(fc) -> None:
    """A server pushes whichever streams sent a chunk: each stream's ids still equal the
    tokens of its whole signal, whatever the other streams did."""
    tok = AudioTokenizer(make_codebook(fc=fc))
    sigs = [signal(1.6, 10 + i) for i in range(3)]
    stream = tok.stream(4)  # stream 0 is never pushed
    rng = np.random.default_rng(0)
    got: list[list[np.ndarray]] = [[], [], []]
    ks = [0, 0, 0]
    chunk = 1280
    while min(ks) < 20:
        sub = [i for i in range(3) if ks[i] < 20 and rng.random() < 0.6]
        if not sub:
            continue
        ids = stream.push(np.stack([sigs[i][ks[i] * chunk : (ks[i] + 1) * chunk] for i in sub]),
                          np.array([i + 1 for i in sub]))
        for j, i in enumerate(sub):
            got[i].append(ids[j])
            ks[i] += 1
    for i in range(3):
        assert np.array_equal(np.concatenate(got[i]), tok.tokenize(sigs[i]))
    assert not stream._hist[:, 0].any()
    with pytest.raises(SpecError, match="expected a chunk"):
        stream.push(np.zeros((2, chunk), np.float32), np.array([1]))


def test_multi_mic_audio_uses_reference_channel() -> None:
    tok = AudioTokenizer(make_codebook())
    x = signal(1.0, 4)
    multi = np.stack([x, np.zeros_like(x), -x], axis=1)
    assert np.array_equal(tok.tokenize(multi), tok.tokenize(x))


def test_stream_rejects_chunks_that_are_not_whole_units() -> None:
    stream = AudioTokenizer(make_codebook()).stream(1)
    with pytest.raises(SpecError, match="whole number"):
        stream.push(np.zeros((1, 1000), np.float32))


def test_codebook_save_load_round_trip(tmp_path) -> None:
    cb = make_codebook()
    cb.save(tmp_path / "cb.safetensors")
    back = Codebook.load(tmp_path / "cb.safetensors")
    assert np.array_equal(back.centroids, cb.centroids) and np.array_equal(back.std, cb.std)
    assert back.features == cb.features and back.meta == {"test": True}
    assert back.digest == cb.digest
    x = signal(1.0, 5)
    assert np.array_equal(AudioTokenizer(back).tokenize(x), AudioTokenizer(cb).tokenize(x))


def test_codebook_load_errors(tmp_path) -> None:
    with pytest.raises(SpecError, match="not found"):
        Codebook.load(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(SpecError, match="safetensors"):
        Codebook.load(tmp_path / "junk.safetensors")
    with pytest.raises(SpecError, match="centroids"):
        Codebook(np.zeros((4, 7), np.float32), np.zeros(7, np.float32), np.ones(7, np.float32), FC)


def test_hf_tokenizer_round_trip_and_action_tokens_are_not_special() -> None:
    tok = build_hf_tokenizer(16)
    assert tok.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == [0, 1, 2, 3]
    assert tok.convert_tokens_to_ids(list(ACTION_TOKENS)) == list(ACTION_IDS)
    assert tok.bos_token_id == BOS_ID and tok.pad_token_id == 0 and tok.eos_token_id == 2
    assert not set(ACTION_TOKENS) & set(tok.all_special_tokens)
    rng = np.random.default_rng(0)
    ids = interleave(rng.integers(0, 16, 20), rng.integers(0, 3, 10), 2).tolist() + [2]
    text = ids_to_text(ids, 16)
    assert tok(text)["input_ids"] == ids
    assert tok.decode(ids) == text
    kept = tok.decode(ids, skip_special_tokens=True).split()
    assert (
        kept[0].startswith("<u")
        and kept.count("<wait>") + kept.count("<respond>") + kept.count("<intervene>") == 10
    )
    assert tok("<u99>")["input_ids"] == [3]  # out of vocabulary -> <unk>


def test_interleave_layout() -> None:
    ids = interleave(np.array([0, 1, 2, 3]), np.array([Action.WAIT, Action.INTERVENE]), 2)
    assert ids.tolist() == [
        BOS_ID,
        UNIT_OFFSET,
        UNIT_OFFSET + 1,
        ACTION_IDS[0],
        UNIT_OFFSET + 2,
        UNIT_OFFSET + 3,
        ACTION_IDS[2],
    ]
    assert interleave(np.array([5]), np.array([1]), 1, bos=False).tolist() == [
        UNIT_OFFSET + 5,
        ACTION_IDS[1],
    ]
    with pytest.raises(SpecError):
        interleave(np.array([0, 1, 2]), np.array([0, 0]), 2)


def test_feature_config_validation() -> None:
    assert FeatureConfig().unit_samples == 640 and FeatureConfig().unit_dim == 128
    with pytest.raises(ConfigError, match="Nyquist"):
        FeatureConfig(fmax=9000.0)
    with pytest.raises(ConfigError, match="unknown key 'n_mel' in features.*did you mean 'n_mels'"):
        FeatureConfig.from_dict({"n_mel": 3})


def test_running_mean_units_ignore_gain_and_a_fixed_frequency_response() -> None:
    """A microphone's gain and frequency response add a constant per band to log energies:
    with ``frame_norm="running_mean"`` the units do not change (up to float rounding), with
    absolute log energies they do."""
    from scipy.signal import lfilter

    x = signal(3.2, 6)
    coloured = (0.3 * lfilter([1.0, -0.9], [1.0], x)).astype(np.float32)  # gain + high-pass
    plain, norm = AudioTokenizer(make_codebook(fc=FC)), AudioTokenizer(make_codebook(fc=FC_NORM))
    assert np.abs(plain.units(coloured) - plain.units(x)).max() > 1.0
    d = np.abs(norm.units(coloured) - norm.units(x))
    assert np.median(d) < 0.05, np.median(d)
    assert (norm.tokenize(coloured) == norm.tokenize(x)).mean() > 0.8
    assert (plain.tokenize(coloured) == plain.tokenize(x)).mean() < 0.5


def test_running_band_mean_is_the_documented_recursion() -> None:
    from chimein.agents.lm.tokenizer import RunningBandMean

    rng = np.random.default_rng(1)
    f = rng.normal(size=(50, 1, 3))
    got = RunningBandMean(1, 3, alpha=0.1).apply(f)[:, 0]
    m, want = f[0, 0].copy(), []
    for t in range(50):
        want.append(f[t, 0] - m)
        m = m + max(0.1, 1.0 / (t + 1)) * (f[t, 0] - m)
    assert np.allclose(got, np.array(want), atol=1e-6)
    assert not got[0].any()


def test_frame_norm_config_validation_and_old_codebooks_keep_their_digest(tmp_path) -> None:
    with pytest.raises(ConfigError, match="frame_norm.*one of"):
        FeatureConfig(frame_norm="pcen")
    with pytest.raises(ConfigError, match="frame_norm_s"):
        FeatureConfig(frame_norm="running_mean", frame_norm_s=0.001)
    assert "frame_norm" not in FeatureConfig().to_dict()  # files fitted before the option
    assert FeatureConfig.from_dict(FeatureConfig().to_dict()) == FeatureConfig()
    cb = make_codebook(fc=FC_NORM)
    cb.save(tmp_path / "cb.safetensors")
    back = Codebook.load(tmp_path / "cb.safetensors")
    assert back.features == FC_NORM and back.digest == cb.digest != make_codebook().digest
