"""Plausible wrong answers to the exercises of v4_agents/04_audio_and_embodiment; each check must reject them."""

from __future__ import annotations

import numpy as np
import torch

from manifold_course.agents import action_tokens as at
from manifold_course.agents import audio

# ---------------------------------------------------------------- mel scales


def hz_to_mel_always_htk(f, htk=False):
    # the textbook formula for both scales: the HTK-against-Slaney mix-up
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def hz_to_mel_htk_natural_log(f, htk=False):
    f = np.asarray(f, dtype=np.float64)
    return 2595.0 * np.log(1.0 + f / 700.0) if htk else audio.hz_to_mel(f)


def hz_to_mel_no_linear_part(f, htk=False):
    f = np.asarray(f, dtype=np.float64)
    if htk:
        return audio.hz_to_mel(f, htk=True)
    return 15.0 + np.log(np.maximum(f, 1e-3) / 1000.0) / (np.log(6.4) / 27.0)   # the log law below 1 kHz too


def mel_to_hz_always_htk(m, htk=False):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_to_hz_knee_in_hz(m, htk=False):
    m = np.asarray(m, dtype=np.float64)
    if htk:
        return audio.mel_to_hz(m, htk=True)
    # compares the mel value with 1000 (Hz) instead of 15 (mel): the log branch is never taken
    return np.where(m >= 1000.0, 1000.0 * np.exp(np.log(6.4) / 27.0 * (m - 15.0)), 200.0 / 3 * m)


# ---------------------------------------------------------------- filter bank


def filterbank_htk(sr, n_fft, n_mels):
    return audio.mel_filterbank(sr, n_fft, n_mels, htk=True)


def filterbank_unnormalised(sr, n_fft, n_mels):
    return audio.mel_filterbank(sr, n_fft, n_mels, slaney_norm=False)


def filterbank_n_fft_columns(sr, n_fft, n_mels):
    # one column per FFT bin of the full spectrum, not of the rfft's 1 + n_fft // 2
    W = audio.mel_filterbank(sr, 2 * n_fft - 2, n_mels)
    return W[:, :n_fft] if W.shape[1] >= n_fft else np.pad(W, ((0, 0), (0, n_fft - W.shape[1])))


def filterbank_fmax_past_nyquist(sr, n_fft, n_mels):
    # the top edge 5% above sr / 2: every filter is stretched
    return audio.mel_filterbank(sr, n_fft, n_mels, fmax=sr / 2.0 * 1.05)


# ---------------------------------------------------------------- STFT, log-mel, normalisation


def stft_not_centred(x, n_fft, hop):
    x = torch.as_tensor(x, dtype=torch.float64)
    X = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft, dtype=torch.float64), center=False,
                   return_complex=True)
    return (X.abs() ** 2).numpy()


def stft_symmetric_window(x, n_fft, hop):
    x = torch.as_tensor(x, dtype=torch.float64)
    w = torch.hann_window(n_fft, periodic=False, dtype=torch.float64)
    return (torch.stft(x, n_fft, hop, window=w, return_complex=True).abs() ** 2).numpy()


def stft_magnitude(x, n_fft, hop):
    return np.sqrt(audio.stft_power(x, n_fft, hop))


def stft_zero_padding(x, n_fft, hop):
    x = torch.as_tensor(x, dtype=torch.float64)
    X = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft, dtype=torch.float64), pad_mode="constant",
                   return_complex=True)
    return (X.abs() ** 2).numpy()


def log_mel_natural_log(x, sr, n_fft, hop, n_mels):
    return audio.log_mel_spectrogram(x, sr, n_fft, hop, n_mels) * np.log(10.0)


def log_mel_decibels(x, sr, n_fft, hop, n_mels):
    return 10.0 * audio.log_mel_spectrogram(x, sr, n_fft, hop, n_mels)


def log_mel_htk_bank(x, sr, n_fft, hop, n_mels):
    M = audio.mel_filterbank(sr, n_fft, n_mels, htk=True)
    return audio.log_mel_spectrogram(x, sr, n_fft, hop, n_mels, filters=M)


def log_mel_magnitude(x, sr, n_fft, hop, n_mels):
    mel = audio.mel_filterbank(sr, n_fft, n_mels) @ np.sqrt(audio.stft_power(x, n_fft, hop))
    return np.log10(np.maximum(mel, 1e-10))


def normalize_per_row(log_spec):
    x = np.asarray(log_spec, dtype=np.float64)
    return (np.maximum(x, x.max(1, keepdims=True) - 8.0) + 4.0) / 4.0


def normalize_no_floor(log_spec):
    return (np.asarray(log_spec, dtype=np.float64) + 4.0) / 4.0


def normalize_floor_at_minus_8(log_spec):
    x = np.asarray(log_spec, dtype=np.float64)
    return (np.maximum(x, -8.0) + 4.0) / 4.0


# ---------------------------------------------------------------- task tokens


def prefix_timestamps_inverted(task="transcribe", language="en", timestamps=False):
    p = ["<|startoftranscript|>", f"<|{language}|>", f"<|{task}|>"]
    return p + ["<|notimestamps|>"] if timestamps else p


def prefix_task_before_language(task="transcribe", language="en", timestamps=False):
    p = ["<|startoftranscript|>", f"<|{task}|>", f"<|{language}|>"]
    return p if timestamps else p + ["<|notimestamps|>"]


def prefix_no_sot(task="transcribe", language="en", timestamps=False):
    p = [f"<|{language}|>", f"<|{task}|>"]
    return p if timestamps else p + ["<|notimestamps|>"]


# ---------------------------------------------------------------- action tokens


def tokenize_round(a, low, high, n_bins):
    a, low, high = (np.asarray(v, dtype=np.float64) for v in (a, low, high))
    return np.clip(np.round((a - low) / (high - low) * n_bins), 0, n_bins - 1).astype(np.int64)


def tokenize_no_clip(a, low, high, n_bins):
    a, low, high = (np.asarray(v, dtype=np.float64) for v in (a, low, high))
    return np.floor((a - low) / (high - low) * n_bins).astype(np.int64)


def tokenize_n_minus_1(a, low, high, n_bins):
    # scales by n_bins - 1 and rounds: linspace-style grid points, not RT-2's bins
    a, low, high = (np.asarray(v, dtype=np.float64) for v in (a, low, high))
    return np.clip(np.round((a - low) / (high - low) * (n_bins - 1)), 0, n_bins - 1).astype(np.int64)


def tokenize_float(a, low, high, n_bins):
    return at.tokenize_action(a, low, high, n_bins).astype(np.float64)


def detokenize_left_edge(bins, low, high, n_bins):
    return np.asarray(low, dtype=np.float64) + np.asarray(bins, dtype=np.float64) * at.bin_width(low, high, n_bins)


def detokenize_n_minus_1(bins, low, high, n_bins):
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    return low + np.asarray(bins, dtype=np.float64) * (high - low) / max(n_bins - 1, 1)


def vocab_reversed(bins, vocab_size, n_bins):
    return vocab_size - 1 - np.asarray(bins, dtype=np.int64)


def vocab_past_the_end(bins, vocab_size, n_bins):
    return vocab_size + np.asarray(bins, dtype=np.int64)


def vocab_off_by_one(bins, vocab_size, n_bins):
    return vocab_size - n_bins - 1 + np.asarray(bins, dtype=np.int64)


WRONG = {
    "audio_embodiment.hz_to_mel": [hz_to_mel_always_htk, hz_to_mel_htk_natural_log, hz_to_mel_no_linear_part],
    "audio_embodiment.mel_to_hz": [mel_to_hz_always_htk, mel_to_hz_knee_in_hz],
    "audio_embodiment.mel_filterbank": [filterbank_htk, filterbank_unnormalised, filterbank_n_fft_columns,
                                        filterbank_fmax_past_nyquist],
    "audio_embodiment.stft_power": [stft_not_centred, stft_symmetric_window, stft_magnitude, stft_zero_padding],
    "audio_embodiment.log_mel_spectrogram": [log_mel_natural_log, log_mel_decibels, log_mel_htk_bank,
                                             log_mel_magnitude],
    "audio_embodiment.whisper_normalize": [normalize_per_row, normalize_no_floor, normalize_floor_at_minus_8],
    "audio_embodiment.whisper_prefix": [prefix_timestamps_inverted, prefix_task_before_language, prefix_no_sot],
    "audio_embodiment.tokenize_action": [tokenize_round, tokenize_no_clip, tokenize_n_minus_1, tokenize_float],
    "audio_embodiment.detokenize_action": [detokenize_left_edge, detokenize_n_minus_1],
    "audio_embodiment.action_tokens_to_vocab": [vocab_reversed, vocab_past_the_end, vocab_off_by_one],
}
