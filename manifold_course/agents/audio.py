"""Whisper's audio front end from scratch, task-token prompts, and a tiny keyword classifier on synthetic speech.

Whisper (A. Radford, J. W. Kim, T. Xu, G. Brockman, C. McLeavey, I. Sutskever, "Robust Speech Recognition via
Large-Scale Weak Supervision", 2022, arXiv:2212.04356) reads 16 kHz audio as an 80-bin log-Mel spectrogram:
a 400-sample (25 ms) periodic Hann window every 160 samples (10 ms), ``torch.stft`` with its default centring
(reflect padding of ``n_fft // 2`` on both sides), the power ``|X|^2`` with the last frame dropped, the filter bank
``librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)`` with librosa's defaults (``fmin=0``, ``fmax=sr/2``,
``htk=False``: the **Slaney** mel scale, and ``norm="slaney"``: each triangle divided by half its width in Hz so
that it has unit area), then ``log10(max(., 1e-10))``, a floor 8 (that is 80 dB) below the maximum, and
``(x + 4) / 4``.

Two mel scales are in use. HTK's ``mel(f) = 2595 log10(1 + f / 700)`` (the textbook formula) and Slaney's (the
Auditory Toolbox's, librosa's default): linear, ``f / (200/3)``, below 1 kHz and logarithmic above, ``15 +
27 ln(f / 1000) / ln 6.4``. They differ by a factor of about 66 in scale, and the filter banks they give differ.

Everything here is NumPy float64 except the classifier (PyTorch). The reference ``mel_filterbank`` is checked
against librosa in ``tests/test_agents_audio_embodiment.py``; the chapter imports librosa only where it compares.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from manifold_course.seeding import manual_seed, torch_generator

SAMPLE_RATE = 16_000          # Hz
N_FFT = 400                   # 25 ms window
HOP_LENGTH = 160              # 10 ms hop: 100 frames a second
N_MELS = 80
CHUNK_SECONDS = 30            # Whisper pads or trims every input to 30 s

# ---------------------------------------------------------------- mel scales

_F_SP = 200.0 / 3             # Slaney: Hz per mel in the linear part
_MIN_LOG_HZ = 1000.0          # Slaney: where the log part starts
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP          # = 15 mel
_LOGSTEP = np.log(6.4) / 27.0               # Slaney: 27 mel per factor 6.4 above 1 kHz


def hz_to_mel(f, htk: bool = False) -> np.ndarray:
    """Hz to mel. HTK: 2595 log10(1 + f/700). Slaney (default): f / (200/3) below 1 kHz, 15 + ln(f/1000)/logstep above."""
    f = np.asarray(f, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    lin = f / _F_SP
    log = _MIN_LOG_MEL + np.log(np.maximum(f, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(f >= _MIN_LOG_HZ, log, lin)


def mel_to_hz(m, htk: bool = False) -> np.ndarray:
    """The inverse of :func:`hz_to_mel` on the same scale."""
    m = np.asarray(m, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    lin = _F_SP * m
    log = _MIN_LOG_HZ * np.exp(_LOGSTEP * (np.maximum(m, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.where(m >= _MIN_LOG_MEL, log, lin)


def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None,
                   htk: bool = False, slaney_norm: bool = True) -> np.ndarray:
    """Triangular filters (n_mels, 1 + n_fft // 2) with centres equally spaced in mel.

    Edges: ``n_mels + 2`` points equally spaced in mel from ``fmin`` to ``fmax`` (default sr/2), mapped to Hz;
    filter ``i`` rises from edge ``i`` to 1 at edge ``i+1`` and falls to 0 at edge ``i+2``, evaluated at the FFT bin
    frequencies ``k sr / n_fft``. Slaney normalisation multiplies filter ``i`` by ``2 / (f_{i+2} - f_i)`` (unit area).
    With the defaults this is ``librosa.filters.mel`` (Whisper's filter bank for sr=16000, n_fft=400, n_mels=80).
    """
    fmax = sr / 2.0 if fmax is None else float(fmax)
    fft_freqs = np.arange(1 + n_fft // 2) * sr / n_fft                             # (F,)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin, htk), hz_to_mel(fmax, htk), n_mels + 2), htk)   # (n_mels + 2,)
    lower = (fft_freqs[None, :] - edges[:-2, None]) / np.diff(edges)[:-1, None]    # rising slope, (n_mels, F)
    upper = (edges[2:, None] - fft_freqs[None, :]) / np.diff(edges)[1:, None]      # falling slope
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if slaney_norm:
        weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights


# ---------------------------------------------------------------- STFT and log-mel


def hann_window(n: int) -> np.ndarray:
    """The periodic Hann window w[n] = 0.5 - 0.5 cos(2 pi n / N) (torch.hann_window's and librosa's default)."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def n_frames(n_samples: int, hop: int) -> int:
    """Frames of a centred STFT with an even window: 1 + n_samples // hop."""
    return 1 + n_samples // hop


def stft_power(x, n_fft: int, hop: int) -> np.ndarray:
    """|X(m, k)|^2, shape (..., 1 + n_fft // 2, 1 + len // hop), of a centred STFT (reflect padding, periodic Hann).

    X(m, k) = sum_n x_pad[m H + n] w[n] e^{-2 pi i k n / N}: the same numbers as ``torch.stft(x, n_fft, hop,
    window=torch.hann_window(n_fft), return_complex=True).abs() ** 2``. ``x`` is (..., T) with T > n_fft // 2.
    """
    x = np.asarray(x, dtype=np.float64)
    pad = n_fft // 2
    xp = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode="reflect")       # (..., T + 2 pad)
    frames = np.lib.stride_tricks.sliding_window_view(xp, n_fft, axis=-1)[..., ::hop, :]   # (..., M, N)
    spec = np.fft.rfft(frames * hann_window(n_fft), axis=-1)                     # (..., M, F)
    return np.swapaxes(np.abs(spec) ** 2, -1, -2)                                # (..., F, M)


def log_mel_spectrogram(x, sr: int = SAMPLE_RATE, n_fft: int = N_FFT, hop: int = HOP_LENGTH, n_mels: int = N_MELS,
                        eps: float = 1e-10, filters: np.ndarray | None = None) -> np.ndarray:
    """log10(max(M |X|^2, eps)), shape (..., n_mels, 1 + len // hop), with M the Slaney filter bank."""
    M = mel_filterbank(sr, n_fft, n_mels) if filters is None else filters
    mel = np.moveaxis(np.tensordot(M, stft_power(x, n_fft, hop), axes=(1, -2)), 0, -2)   # M @ |X|^2 per clip
    return np.log10(np.maximum(mel, eps))


def whisper_normalize(log_spec) -> np.ndarray:
    """Whisper's dynamic range: floor at max - 8 (80 dB below the loudest cell), then (x + 4) / 4. Max over all cells."""
    log_spec = np.asarray(log_spec, dtype=np.float64)
    return (np.maximum(log_spec, log_spec.max() - 8.0) + 4.0) / 4.0


def whisper_log_mel(x, filters: np.ndarray | None = None) -> np.ndarray:
    """Whisper's encoder input for 16 kHz mono audio ``x`` (T,): (80, T // 160), the last STFT frame dropped."""
    return whisper_normalize(log_mel_spectrogram(x, filters=filters)[..., :-1])


# ---------------------------------------------------------------- task tokens

TASKS = ("transcribe", "translate")
LANGUAGES = ("en", "de", "es", "fr", "ja", "zh", "sw", "cy")     # a few of Whisper's 99 language codes


def whisper_prefix(task: str = "transcribe", language: str = "en", timestamps: bool = False) -> list[str]:
    """The decoder's prompt: <|startoftranscript|>, <|lang|>, <|task|>, then <|notimestamps|> unless timestamps.

    Whisper's tokenizer builds its ``sot_sequence`` as [sot, language, task] and appends ``<|notimestamps|>`` when
    asked for text only; with timestamps the model itself emits <|0.00|> ... <|30.00|> tokens (20 ms steps).
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    prefix = ["<|startoftranscript|>", f"<|{language}|>", f"<|{task}|>"]
    return prefix if timestamps else prefix + ["<|notimestamps|>"]


# ---------------------------------------------------------------- synthetic "words" and a keyword classifier

WORDS = ("rise", "fall", "flat", "rise-fall", "fall-rise", "two-syllables")


def synth_word(kind: str, rng: np.random.Generator, seconds: float = 0.5, sr: int = SAMPLE_RATE) -> np.ndarray:
    """A harmonic "word" whose pitch contour (in octaves over a random base of 110-300 Hz) names its class.

    rise / fall: a glide of 0.3-0.8 octave; rise-fall / fall-rise: a half-sine excursion; flat: none;
    two-syllables: flat pitch, two bursts with a gap. Random onset, duration, harmonic amplitudes, noise (SNR 5-20 dB).
    """
    T = int(seconds * sr)
    dur = int(rng.uniform(0.3, 0.42) * sr)
    start = int(rng.integers(0, T - dur + 1))
    t = np.linspace(0.0, 1.0, dur)
    ex = rng.uniform(0.3, 0.8)
    contour = {"rise": ex * t - ex / 2, "fall": ex / 2 - ex * t, "flat": 0 * t,
               "rise-fall": ex * np.sin(np.pi * t), "fall-rise": -ex * np.sin(np.pi * t),
               "two-syllables": 0 * t}[kind]
    f0 = rng.uniform(110.0, 300.0) * 2.0 ** contour                               # Hz, (dur,)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    amps = rng.uniform(0.2, 1.0, 5) / np.arange(1, 6)
    voiced = sum(a * np.sin((h + 1) * phase) for h, a in enumerate(amps))
    env = np.sin(np.pi * t) ** 0.5                                                # one syllable
    if kind == "two-syllables":
        gap = rng.uniform(0.15, 0.3)
        env = np.where(np.abs(t - 0.5) < gap / 2, 0.0, np.abs(np.sin(np.pi * t / 0.5)) ** 0.5)
    x = np.zeros(T)
    x[start:start + dur] = voiced * env
    noise = rng.standard_normal(T)
    snr_db = rng.uniform(5.0, 20.0)
    x += noise * np.sqrt(np.mean(x[start:start + dur] ** 2) / 10 ** (snr_db / 10))
    return x * rng.uniform(0.1, 1.0)


def keyword_dataset(n_per_class: int, rng: np.random.Generator, filters: np.ndarray | None = None):
    """(features (N, 1, 80, 50) float32 Whisper log-mels, labels (N,)) of 0.5 s synthetic words, classes balanced."""
    labels = np.repeat(np.arange(len(WORDS)), n_per_class)
    waves = np.stack([synth_word(WORDS[c], rng) for c in labels])                # (N, 8000)
    M = mel_filterbank(SAMPLE_RATE, N_FFT, N_MELS) if filters is None else filters
    logmel = log_mel_spectrogram(waves, filters=M)[..., :-1]                      # (N, 80, 50)
    feats = np.stack([whisper_normalize(s) for s in logmel])                     # per clip, as Whisper does
    return torch.tensor(feats[:, None], dtype=torch.float32), torch.tensor(labels)


class KeywordCNN(nn.Module):
    """Two strided convs (5x5, then 3x3; each with batch norm) on the log-mel "image", max-pooled to 4 time steps.

    It reads the lowest ``n_bands`` mel bands (48 of Whisper's 80 reach 2.3 kHz, above the fifth harmonic of the
    highest synthetic voice; the bands above hold only noise and would cost 40% more compute). Convolution along the
    mel axis is what makes a glide at 120 Hz and one at 250 Hz look alike; keeping 4 time steps (not 1) keeps the
    order of events, which separates rise-fall from fall-rise.
    """

    def __init__(self, n_classes: int = len(WORDS), width: int = 8, n_bands: int = 48):
        super().__init__()
        self.n_bands = n_bands
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 5, stride=2, padding=2), nn.BatchNorm2d(width), nn.ReLU(),           # (B, w, 24, 25)
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),  # (B, 2w, 12, 13)
            nn.AdaptiveMaxPool2d((1, 4)))                                                             # (B, 2w, 1, 4)
        self.head = nn.Linear(8 * width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:       # (B, 1, n_mels, frames) -> (B, n_classes)
        return self.head(self.features(x[:, :, :self.n_bands]).flatten(1))


@dataclass(frozen=True)
class KeywordTrainConfig:
    steps: int = 250
    batch_size: int = 32
    lr: float = 3e-3


def train_keyword_cnn(x: torch.Tensor, y: torch.Tensor, seed: int, cfg: KeywordTrainConfig = KeywordTrainConfig()):
    """Adam on cross-entropy over random mini-batches; returns (model, losses).

    Then the batch-norm layers' running statistics are recomputed over the whole training set at the final weights
    (``torch.optim.swa_utils.update_bn``). The running averages kept during training (momentum 0.1) trail weights
    that still move at step 250: without this, some seeds reached as low a training loss as the others and then
    classified their own training clips at 0.6-0.85 in eval mode (9 of 180 runs scored below 0.75 held out)."""
    manual_seed(seed)
    model = KeywordCNN()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    g = torch_generator(seed)
    losses = []
    for _ in range(cfg.steps):
        idx = torch.randint(0, len(x), (cfg.batch_size,), generator=g)
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    batches = [x[i:i + 256] for i in range(0, len(x), 256)]
    torch.optim.swa_utils.update_bn(batches, model)      # exact mean and variance at the final weights
    return model.eval(), losses           # eval mode: batch norm uses those statistics from now on


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((model(x).argmax(-1) == y).float().mean())
