# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Volume 4, Chapter 4 exercises: audio and embodiment (sections 4.8 and 4.10)
#
# Ten pieces of two front ends. For Whisper (4.8): the two mel scales and their inverses, the mel filter bank
# (checked against **librosa**, the library Whisper's own filters come from), a centred STFT's power (checked against
# `torch.stft`), the log-mel spectrogram, Whisper's dynamic-range normalisation and its task-token prefix. For RT-2
# (4.10): actions to bins, bins back to actions, and bins to the ids of a language model's vocabulary. Write each body
# where it says `# YOUR CODE HERE`, run the cell, then the `check(...)` cell below it: it answers at once with a
# green "passed" or a red message that says what to fix. The checks draw fresh random inputs each time, with edge
# cases.
#
# The lecture is `chapters/v4_agents/04_audio_and_embodiment.ipynb`. Please write your own code (NumPy is enough)
# rather than importing the course's reference implementations or librosa.
#
# **Conventions.** Arrays are NumPy, float64 unless said otherwise; never modify an input in place. Spectrograms are
# frequency first, `(bins, frames)`, as in `torch.stft`, librosa and Whisper.
#
# The SYLLABUS lists `hz_to_mel`, `mel_to_hz` and `mel_filterbank` as one exercise and `tokenize_action` /
# `detokenize` as another; here each function is checked on its own, and `stft_power` and `whisper_normalize` are
# added (the two steps of Whisper's front end between the samples and the mel filters, and after them).

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import numpy as np

from manifold_course.grading import check

# %% [markdown]
# ## Exercise 1: Hz to mel, on two scales
#
# `hz_to_mel(f, htk=False) -> np.ndarray` for an array `f` of frequencies in Hz (any shape; return the same shape,
# float64).
#
# - **HTK** (`htk=True`), the textbook formula: $m = 2595\,\log_{10}(1 + f/700)$.
# - **Slaney** (`htk=False`, the default of librosa and so of Whisper): linear below 1 kHz and logarithmic above,
#   $$m = \begin{cases} f / f_{sp} & f < 1000\\ 15 + \ln(f/1000) / s & f \ge 1000\end{cases},\qquad f_{sp} =
#   \tfrac{200}{3}\ \text{Hz},\quad s = \frac{\ln 6.4}{27}.$$
#   (15 mel is 1000 Hz on both branches, so the curve is continuous.)
#
# Hint: `np.where(f >= 1000, log_branch, linear_branch)`; take the log of `np.maximum(f, 1000)` so that the unused
# branch never sees a log of 0.
#
# **Checked** against `librosa.hz_to_mel` on both scales: 0 Hz, just below and above 1 kHz, up to 22 050 Hz.

# %%
def hz_to_mel(f, htk=False):
    ### BEGIN SOLUTION
    f = np.asarray(f, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    logstep = np.log(6.4) / 27.0
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1000.0) / 1000.0) / logstep, f / (200.0 / 3))
    ### END SOLUTION


# %%
check("audio_embodiment.hz_to_mel", hz_to_mel)

# %% [markdown]
# ## Exercise 2: mel to Hz
#
# `mel_to_hz(m, htk=False) -> np.ndarray`, the inverse of exercise 1 on the same scale: HTK $f = 700\,(10^{m/2595} -
# 1)$; Slaney $f = \tfrac{200}{3} m$ below 15 mel and $f = 1000\,e^{s(m - 15)}$ above.
#
# **Checked** against `librosa.mel_to_hz` on both scales, and `mel_to_hz(hz_to_mel(f)) == f`.

# %%
def mel_to_hz(m, htk=False):
    ### BEGIN SOLUTION
    m = np.asarray(m, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    logstep = np.log(6.4) / 27.0
    return np.where(m >= 15.0, 1000.0 * np.exp(logstep * (np.maximum(m, 15.0) - 15.0)), 200.0 / 3 * m)
    ### END SOLUTION


# %%
check("audio_embodiment.mel_to_hz", mel_to_hz)

# %% [markdown]
# ## Exercise 3: the mel filter bank
#
# `mel_filterbank(sr, n_fft, n_mels) -> np.ndarray` of shape `(n_mels, 1 + n_fft // 2)`, float64: row $i$ weighs the
# FFT bins $k = 0 \dots n_{fft}/2$ (at frequencies $\nu_k = k\,sr/n_{fft}$ Hz) into mel band $i$.
#
# 1. Edges: `n_mels + 2` points equally spaced **in Slaney mel** from 0 Hz to $sr/2$, mapped back to Hz:
#    $f_0 < f_1 < \dots < f_{n+1}$.
# 2. Triangle $i$ rises from 0 at $f_i$ to 1 at $f_{i+1}$ and falls to 0 at $f_{i+2}$:
#    $w_{ik} = \max\big(0, \min\big(\frac{\nu_k - f_i}{f_{i+1} - f_i}, \frac{f_{i+2} - \nu_k}{f_{i+2} - f_{i+1}}\big)\big)$.
# 3. Slaney normalisation: multiply row $i$ by $2 / (f_{i+2} - f_i)$, so each triangle has unit area in Hz.
#
# This is `librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)` with its defaults, and Whisper's filter bank is
# exactly that call with `sr=16000, n_fft=400, n_mels=80`. Use your `hz_to_mel` and `mel_to_hz`.
#
# **Checked** against librosa (float64) for Whisper's sizes, Whisper large-v3's 128 mels, and other rates and sizes
# (one with `n_fft = 300`).

# %%
def mel_filterbank(sr, n_fft, n_mels):
    ### BEGIN SOLUTION
    freqs = np.arange(1 + n_fft // 2) * sr / n_fft                                   # (F,)
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2.0), n_mels + 2))   # (n_mels + 2,)
    width = np.diff(edges)
    rise = (freqs[None] - edges[:-2, None]) / width[:-1, None]
    fall = (edges[2:, None] - freqs[None]) / width[1:, None]
    return np.maximum(0.0, np.minimum(rise, fall)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    ### END SOLUTION


# %%
check("audio_embodiment.mel_filterbank", mel_filterbank)

# %% [markdown]
# ## Exercise 4: the power of a centred STFT
#
# `stft_power(x, n_fft, hop) -> np.ndarray` of shape `(1 + n_fft // 2, 1 + len(x) // hop)` for a 1-D signal `x`
# (`len(x) > n_fft // 2`, `n_fft` even):
#
# $$|X(m, k)|^2,\qquad X(m,k) = \sum_{n=0}^{N-1} \tilde x[mH + n]\, w[n]\, e^{-2\pi i k n / N},$$
#
# with $\tilde x$ the signal padded by $N/2$ samples on **both** ends by **reflection** (`np.pad(x, N // 2,
# mode="reflect")`: frame $m$ is then centred on sample $mH$), and $w$ the **periodic** Hann window
# $w[n] = \tfrac12 - \tfrac12\cos(2\pi n/N)$. This is what `torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft),
# return_complex=True).abs() ** 2` computes, and so what Whisper computes. Hint: `np.lib.stride_tricks.
# sliding_window_view(xp, n_fft)[::hop]` gives the frames; `np.fft.rfft` along the last axis.
#
# **Checked** against `torch.stft` (float64) on noise, a tone, lengths that are not multiples of the hop, a signal
# exactly one window long.

# %%
def stft_power(x, n_fft, hop):
    ### BEGIN SOLUTION
    xp = np.pad(np.asarray(x, dtype=np.float64), n_fft // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(xp, n_fft)[::hop]             # (M, N)
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    return (np.abs(np.fft.rfft(frames * w, axis=-1)) ** 2).T                           # (F, M)
    ### END SOLUTION


# %%
check("audio_embodiment.stft_power", stft_power)

# %% [markdown]
# ## Exercise 5: the log-mel spectrogram
#
# `log_mel_spectrogram(x, sr, n_fft, hop, n_mels) -> np.ndarray` of shape `(n_mels, 1 + len(x) // hop)`:
#
# $$S = \log_{10}\big(\max(M\,|X|^2,\ 10^{-10})\big)$$
#
# with $M$ your filter bank and $|X|^2$ your `stft_power`. (Whisper uses `log10` and this floor of $10^{-10}$.)
#
# **Checked** against librosa's filter bank times `torch.stft`'s power: tones below and above 1 kHz, silence (all
# $-10$), noise at 8 kHz, a chirp; and a pure tone must peak in the mel band whose filter weighs its frequency most.

# %%
def log_mel_spectrogram(x, sr, n_fft, hop, n_mels):
    ### BEGIN SOLUTION
    return np.log10(np.maximum(mel_filterbank(sr, n_fft, n_mels) @ stft_power(x, n_fft, hop), 1e-10))
    ### END SOLUTION


# %%
check("audio_embodiment.log_mel_spectrogram", log_mel_spectrogram)

# %% [markdown]
# ## Exercise 6: Whisper's normalisation
#
# `whisper_normalize(log_spec) -> np.ndarray`, same shape: floor every value at the **overall** maximum minus 8 (an
# 80 dB dynamic range: log10 units are bels), then map $x \mapsto (x + 4)/4$:
#
# $$\hat S = \frac{\max(S,\ \max_{i,t} S_{it} - 8) + 4}{4}.$$
#
# **Checked** on ranges wider and narrower than 8, a single loud cell, and silence.

# %%
def whisper_normalize(log_spec):
    ### BEGIN SOLUTION
    s = np.asarray(log_spec, dtype=np.float64)
    return (np.maximum(s, s.max() - 8.0) + 4.0) / 4.0
    ### END SOLUTION


# %%
check("audio_embodiment.whisper_normalize", whisper_normalize)

# %% [markdown]
# ## Exercise 7: the task-token prefix
#
# Whisper's decoder starts from a prompt of special tokens that says what to do. `whisper_prefix(task, language,
# timestamps) -> list[str]` with `task` `"transcribe"` or `"translate"` (into English), `language` a code such as
# `"en"` or `"de"`, `timestamps` a bool:
#
# `["<|startoftranscript|>", "<|LANG|>", "<|TASK|>"]`, followed by `"<|notimestamps|>"` **only when** `timestamps` is
# False (with timestamps, the model itself writes time tokens `<|0.00|>` ... between the text segments).
#
# **Checked** on every combination of task and timestamps, and several languages.

# %%
def whisper_prefix(task, language, timestamps):
    ### BEGIN SOLUTION
    prefix = ["<|startoftranscript|>", f"<|{language}|>", f"<|{task}|>"]
    return prefix if timestamps else prefix + ["<|notimestamps|>"]
    ### END SOLUTION


# %%
check("audio_embodiment.whisper_prefix", whisper_prefix)

# %% [markdown]
# ## Exercise 8: actions to bins (RT-2)
#
# `tokenize_action(a, low, high, n_bins) -> np.ndarray` (int64, the shape of `a`): `a` is `(N, D)`, `low` and `high`
# are `(D,)` (the range of each action dimension), and
#
# $$b(a) = \mathrm{clip}\Big(\Big\lfloor \frac{a - a_{min}}{a_{max} - a_{min}}\, n \Big\rfloor,\ 0,\ n - 1\Big).$$
#
# Floor, not round: bin $b$ holds $[a_{min} + b\Delta,\ a_{min} + (b+1)\Delta)$ with $\Delta = (a_{max} - a_{min})/n$.
# The clip sends $a = a_{max}$ to bin $n-1$ (not $n$) and values outside the range to the end bins.
#
# **Checked** exactly (a value on an interior bin edge may go to either side): RT-2's 256 bins, the boundaries, values
# outside the range, 7 bins, 1 bin.

# %%
def tokenize_action(a, low, high, n_bins):
    ### BEGIN SOLUTION
    a, low, high = (np.asarray(v, dtype=np.float64) for v in (a, low, high))
    return np.clip(np.floor((a - low) / (high - low) * n_bins), 0, n_bins - 1).astype(np.int64)
    ### END SOLUTION


# %%
check("audio_embodiment.tokenize_action", tokenize_action)

# %% [markdown]
# ## Exercise 9: bins back to actions
#
# `detokenize_action(bins, low, high, n_bins) -> np.ndarray` (float64): the bin **centres**
# $\hat a = a_{min} + (b + \tfrac12)\Delta$. Then $|a - \hat a(b(a))| \le \Delta/2$ for every $a$ in the range.
#
# **Checked** against the reference, and the round trip through the reference `tokenize_action` stays within
# $\Delta/2$.

# %%
def detokenize_action(bins, low, high, n_bins):
    ### BEGIN SOLUTION
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    return low + (np.asarray(bins, dtype=np.float64) + 0.5) * (high - low) / n_bins
    ### END SOLUTION


# %%
check("audio_embodiment.detokenize_action", detokenize_action)

# %% [markdown]
# ## Exercise 10: action bins as vocabulary ids
#
# A vision-language model emits text tokens; to emit actions, RT-2 and OpenVLA give the `n_bins` bins ids of the
# model's own vocabulary. `action_tokens_to_vocab(bins, vocab_size, n_bins) -> np.ndarray` (int64, the shape of
# `bins`): bin $b$ becomes id `vocab_size - n_bins + b`, a bijection of $\{0, \dots, n-1\}$ onto the **last**
# `n_bins` ids, in order. (OpenVLA uses these same last 256 ids of the Llama tokenizer, numbered the other way
# round; here bin 0 is the first of them.)
#
# **Checked** exactly: every bin of 256 in a 32 000-token vocabulary, random arrays, 1000 bins.

# %%
def action_tokens_to_vocab(bins, vocab_size, n_bins):
    ### BEGIN SOLUTION
    return vocab_size - n_bins + np.asarray(bins, dtype=np.int64)
    ### END SOLUTION


# %%
check("audio_embodiment.action_tokens_to_vocab", action_tokens_to_vocab)

# %% [markdown]
# ## What next
#
# Back to the lecture (`chapters/v4_agents/04_audio_and_embodiment.ipynb`) for what these pieces do together: your
# front end against Whisper's, a small CNN that hears "words" in synthetic log-mel spectrograms, and a language-
# conditioned action-token policy whose success depends on the number of bins.
