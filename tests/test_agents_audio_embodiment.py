import numpy as np
import pytest
import torch

from manifold_course.agents import action_tokens as at
from manifold_course.agents import audio


@pytest.mark.parametrize("sr, n_fft, n_mels, htk", [(16000, 400, 80, False), (16000, 400, 128, False),
                                                    (22050, 2048, 128, False), (8000, 256, 40, False),
                                                    (12000, 300, 30, False), (16000, 400, 80, True),
                                                    (22050, 2048, 64, True)])
def test_mel_filterbank_equals_librosa(sr, n_fft, n_mels, htk):
    librosa = pytest.importorskip("librosa")
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, htk=htk, dtype=np.float64)
    np.testing.assert_allclose(audio.mel_filterbank(sr, n_fft, n_mels, htk=htk), ref, rtol=1e-12, atol=1e-15)


def test_whisper_filterbank_is_librosas_default_float32():
    librosa = pytest.importorskip("librosa")
    ref = librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)          # exactly Whisper's call
    assert ref.dtype == np.float32
    np.testing.assert_allclose(audio.mel_filterbank(16000, 400, 80), ref, rtol=1e-6, atol=1e-9)


def test_mel_scales_known_values_and_roundtrip():
    assert audio.hz_to_mel(1000.0) == pytest.approx(15.0)
    assert audio.hz_to_mel(440.0) == pytest.approx(6.6)
    assert audio.hz_to_mel(1000.0, htk=True) == pytest.approx(1000.0, abs=0.02)
    f = np.linspace(0, 22050, 301)
    for htk in (False, True):
        np.testing.assert_allclose(audio.mel_to_hz(audio.hz_to_mel(f, htk), htk), f, rtol=1e-12, atol=1e-9)


def test_stft_power_matches_torch_stft_and_frame_count():
    x = np.random.default_rng(0).standard_normal(1601)
    P = audio.stft_power(x, 400, 160)
    X = torch.stft(torch.tensor(x), 400, 160, window=torch.hann_window(400, dtype=torch.float64), return_complex=True)
    assert P.shape == (201, audio.n_frames(1601, 160)) == (201, 11)
    np.testing.assert_allclose(P, (X.abs() ** 2).numpy(), rtol=1e-10, atol=1e-10)


def test_whisper_log_mel_matches_whispers_torch_pipeline():
    librosa = pytest.importorskip("librosa")
    x = np.random.default_rng(1).standard_normal(8000).astype(np.float32) * 0.1
    st = torch.stft(torch.from_numpy(x), 400, 160, window=torch.hann_window(400), return_complex=True)
    mel = torch.from_numpy(librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)) @ st[..., :-1].abs() ** 2
    ref = torch.clamp(mel, min=1e-10).log10()
    ref = (torch.maximum(ref, ref.max() - 8.0) + 4.0) / 4.0
    got = audio.whisper_log_mel(x)
    assert got.shape == (80, 50)
    np.testing.assert_allclose(got, ref.numpy(), atol=1e-5)


def test_pure_tone_peaks_in_its_mel_bin():
    M = audio.mel_filterbank(16000, 400, 80)
    for f in (250.0, 700.0, 1500.0, 5000.0):
        x = np.sin(2 * np.pi * f * np.arange(4000) / 16000)
        S = audio.log_mel_spectrogram(x)
        assert abs(int(S[:, 12].argmax()) - int(M[:, round(f / 40)].argmax())) <= 1


def test_whisper_prefix_order():
    assert audio.whisper_prefix("translate", "de", False) == [
        "<|startoftranscript|>", "<|de|>", "<|translate|>", "<|notimestamps|>"]
    assert audio.whisper_prefix("transcribe", "en", True)[-1] == "<|transcribe|>"
    with pytest.raises(ValueError):
        audio.whisper_prefix("summarise")


def test_synthetic_words_are_finite_and_sized():
    rng = np.random.default_rng(0)
    for w in audio.WORDS:
        x = audio.synth_word(w, rng)
        assert x.shape == (8000,) and np.isfinite(x).all() and np.abs(x).max() > 0
    X, y = audio.keyword_dataset(2, rng)
    assert X.shape == (12, 1, 80, 50) and y.tolist() == sorted(y.tolist())
    assert audio.KeywordCNN()(X).shape == (12, len(audio.WORDS))


@pytest.mark.parametrize("n_bins", [1, 2, 7, 256])
def test_action_roundtrip_within_half_a_bin(n_bins):
    low, high = np.array([-0.1, -np.pi]), np.array([0.1, np.pi])
    a = np.random.default_rng(n_bins).uniform(low, high, (1000, 2))
    b = at.tokenize_action(a, low, high, n_bins)
    assert b.dtype == np.int64 and b.min() >= 0 and b.max() <= n_bins - 1
    err = np.abs(at.detokenize_action(b, low, high, n_bins) - a)
    assert np.all(err <= at.bin_width(low, high, n_bins) / 2 + 1e-15)
    assert at.tokenize_action(low[None], low, high, n_bins).tolist() == [[0, 0]]
    assert at.tokenize_action(high[None], low, high, n_bins).tolist() == [[n_bins - 1] * 2]


def test_vocab_mapping_is_a_bijection_onto_the_last_ids():
    ids = at.action_tokens_to_vocab(np.arange(256), 32000, 256)
    assert ids.tolist() == list(range(31744, 32000))
    assert at.vocab_to_action_tokens(ids, 32000, 256).tolist() == list(range(256))
    with pytest.raises(ValueError):
        at.action_tokens_to_vocab(np.array([256]), 32000, 256)


def test_quantised_expert_success_follows_the_bin_width():
    cfg = at.ReachConfig()
    scenes = at.sample_scenes(200, np.random.default_rng(0), cfg)
    expert = lambda p, s: at.expert_action(p, s, cfg)   # noqa: E731
    assert at.success(at.rollout(expert, scenes, cfg)[0], scenes, cfg).all()
    assert at.success(at.rollout(at.quantised(expert, 16, cfg), scenes, cfg)[0], scenes, cfg).all()
    assert at.success(at.rollout(at.quantised(expert, 2, cfg), scenes, cfg)[0], scenes, cfg).mean() < 0.3


def test_bc_policy_learns_to_follow_the_instruction():
    cfg = at.ReachConfig()
    obs, acts = at.collect_demonstrations(150, np.random.default_rng(0), cfg)
    model, losses = at.train_bc(obs, acts, 16, seed=0, cfg=cfg, steps=250)
    assert np.mean(losses[-20:]) < np.mean(losses[:20])
    scenes = at.sample_scenes(100, np.random.default_rng(1), cfg)
    final, _ = at.rollout(at.token_policy(model, cfg), scenes, cfg)
    near = np.linalg.norm(final[:, None] - scenes.landmarks, axis=-1).argmin(1)
    assert (near == scenes.goal).mean() > 0.9
