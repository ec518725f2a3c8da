"""Checks for chapter v4_agents/04_audio_and_embodiment (Volume 4, sections 4.8 and 4.10).

The mel scale, the mel filter bank and the log-mel spectrogram are compared with **librosa** (Whisper's filter bank
is ``librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)`` with librosa's defaults: Slaney scale, Slaney area
normalisation), the power spectrogram with ``torch.stft``. librosa is imported only when a reference is computed
(it costs about a second, through numba). Action tokens are compared exactly; ``tokenize_action`` accepts either
neighbouring bin for a value within 1e-9 bin widths of an interior bin edge (floating-point ties).
"""

from __future__ import annotations

import numpy as np
import torch

from manifold_course.agents import action_tokens as at
from manifold_course.agents import audio
from manifold_course.grading import Case, Exercise
from manifold_course.grading.compare import compare

CHAPTER = "v4_agents/04_audio_and_embodiment"


# ---------------------------------------------------------------- references (librosa, torch.stft)


def _librosa():
    import librosa

    return librosa


def ref_hz_to_mel(f, htk=False):
    return np.asarray(_librosa().hz_to_mel(np.asarray(f, dtype=np.float64), htk=htk), dtype=np.float64)


def ref_mel_to_hz(m, htk=False):
    return np.asarray(_librosa().mel_to_hz(np.asarray(m, dtype=np.float64), htk=htk), dtype=np.float64)


def ref_mel_filterbank(sr, n_fft, n_mels):
    return _librosa().filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, dtype=np.float64)


def ref_stft_power(x, n_fft, hop):
    X = torch.stft(torch.as_tensor(x, dtype=torch.float64), n_fft, hop,
                   window=torch.hann_window(n_fft, dtype=torch.float64), center=True, pad_mode="reflect",
                   return_complex=True)
    return (X.abs() ** 2).numpy()


def ref_log_mel_spectrogram(x, sr, n_fft, hop, n_mels):
    return np.log10(np.maximum(ref_mel_filterbank(sr, n_fft, n_mels) @ ref_stft_power(x, n_fft, hop), 1e-10))


def _arr_problem(got, shape, what, integer=False) -> str | None:
    if isinstance(got, torch.Tensor):
        return f"{what} should be a numpy array, got a torch.Tensor (use .numpy())"
    if not isinstance(got, np.ndarray):
        return f"{what} should be a numpy array of shape {shape}, got {type(got).__name__}"
    if got.shape != tuple(shape):
        return f"{what} has shape {got.shape}, expected {tuple(shape)}"
    if integer and not np.issubdtype(got.dtype, np.integer):
        return f"{what} should have an integer dtype (np.int64), got {got.dtype}"
    return None


# ---------------------------------------------------------------- mel scales


def _freqs(rng, n=12):
    return np.concatenate([[0.0, 60.0, 999.999, 1000.0, 1000.001, 8000.0], np.sort(rng.uniform(0, 22050, n))])


def _hz_cases(rng):
    yield Case((_freqs(rng),), label="Slaney scale (htk=False, the default): linear below 1 kHz, log above")
    yield Case((_freqs(rng),), {"htk": True}, label="HTK scale: 2595 log10(1 + f/700)")
    yield Case((np.array([440.0]),), label="one frequency, 440 Hz (Slaney: 6.6 mel)")
    yield Case((rng.uniform(0, 500, (3, 4)),), label="a (3, 4) array below 1 kHz")


def _judge_hz(got, expected, case):
    htk = case.kwargs.get("htk", False)
    problem = _arr_problem(got, expected.shape, "the mels")
    if problem:
        return problem
    problem = compare(got.astype(np.float64), expected, 1e-9, 1e-9, "the mels")
    if problem and not htk and np.allclose(got, ref_hz_to_mel(case.args[0], htk=True), rtol=1e-6):
        return ("with htk=False you computed the HTK scale 2595 log10(1 + f/700); the default, librosa's and "
                "Whisper's, is Slaney's: f / (200/3) below 1000 Hz, 15 + ln(f/1000) / (ln(6.4)/27) above")
    if problem and htk and np.allclose(got, 2595 * np.log(1 + case.args[0] / 700), rtol=1e-6):
        return "the HTK formula uses log10, not the natural log"
    return problem


def _mel_values(rng, htk):
    top = ref_hz_to_mel(22050.0, htk)
    return np.concatenate([[0.0, 1.0, 15.0 if not htk else 1000.0], np.sort(rng.uniform(0, float(top), 12))])


def _mel_cases(rng):
    yield Case((_mel_values(rng, False),), label="Slaney scale (htk=False): 15 mel = 1000 Hz is the knee")
    yield Case((_mel_values(rng, True),), {"htk": True}, label="HTK scale: f = 700 (10^(m/2595) - 1)")
    yield Case((ref_hz_to_mel(np.array([0.0, 440.0, 4000.0, 8000.0])),), label="the mels of 0, 440, 4000, 8000 Hz")


def _judge_mel(got, expected, case):
    htk = case.kwargs.get("htk", False)
    problem = _arr_problem(got, expected.shape, "the frequencies")
    if problem:
        return problem
    problem = compare(got.astype(np.float64), expected, 1e-9, 1e-7, "the frequencies (Hz)")
    if problem and not htk and np.allclose(got, ref_mel_to_hz(case.args[0], htk=True), rtol=1e-6):
        return ("with htk=False you inverted the HTK scale; invert Slaney's: 200/3 * m below 15 mel, "
                "1000 * exp((m - 15) * ln(6.4) / 27) above")
    return problem


def _roundtrip(fn) -> str | None:
    f = np.array([0.0, 123.0, 999.0, 1000.0, 2500.0, 7999.0])
    for htk in (False, True):
        back = np.asarray(fn(ref_hz_to_mel(f, htk), htk=htk), dtype=np.float64)
        if back.shape != f.shape or not np.allclose(back, f, rtol=1e-9, atol=1e-7):
            return f"mel_to_hz(hz_to_mel(f)) should give f back (htk={htk}); f = {f.tolist()}, got {back.tolist()}"
    return None


# ---------------------------------------------------------------- the filter bank


def _fb_cases(rng):
    yield Case((16000, 400, 80), label="Whisper's: sr 16 kHz, n_fft 400 (25 ms), 80 mels")
    yield Case((16000, 400, 128), label="Whisper large-v3's 128 mels")
    yield Case((8000, 256, 40), label="sr 8 kHz, n_fft 256, 40 mels")
    yield Case((22050, 2048, 128), label="librosa's usual sr 22050, n_fft 2048, 128 mels")
    yield Case((12000, 300, 30), label="n_fft 300 (not a power of two): 151 FFT bins")
    sr = int(rng.choice([11025, 16000, 24000, 44100]))
    yield Case((sr, int(rng.choice([512, 640, 1024])), int(rng.integers(20, 60))), label=f"sr {sr}, a random size")


def _judge_fb(got, expected, case):
    sr, n_fft, n_mels = case.args
    problem = _arr_problem(got, expected.shape, f"the filter bank (n_mels, 1 + n_fft // 2) = {expected.shape}")
    if problem:
        return problem
    got = got.astype(np.float64)
    problem = compare(got, expected, 1e-6, 1e-9, "the filter bank")
    if not problem:
        return None
    # the diagnoses use the course's own bank (equal to librosa's with these options; librosa's norm=None path
    # would JIT-compile a numba function for seconds)
    if np.allclose(got, audio.mel_filterbank(sr, n_fft, n_mels, htk=True), rtol=1e-5, atol=1e-9):
        return ("this is the HTK mel scale's filter bank; Whisper's (librosa's default, htk=False) uses the Slaney "
                "scale: linear below 1 kHz, logarithmic above")
    if np.allclose(got, audio.mel_filterbank(sr, n_fft, n_mels, slaney_norm=False), rtol=1e-5, atol=1e-9):
        return ("the triangles are right but not normalised: multiply filter i by 2 / (f[i+2] - f[i]) (Slaney's area "
                "normalisation, librosa's norm='slaney')")
    if np.allclose(got, audio.mel_filterbank(sr, n_fft, n_mels, htk=True, slaney_norm=False), rtol=1e-5, atol=1e-9):
        return "HTK scale and no normalisation: use the Slaney scale and divide each triangle by half its width in Hz"
    return problem + " (edges: n_mels + 2 points equally spaced in mel from 0 Hz to sr/2; FFT bin k is at k sr / n_fft Hz)"


def _fb_rows(fn) -> str | None:
    W = np.asarray(fn(16000, 400, 80), dtype=np.float64)
    if W.shape != (80, 201):
        return None
    if (W < 0).any():
        return "filter weights must be non-negative"
    if not np.all(np.diff(W.argmax(1)) >= 0):
        return "the filters' peaks should move up in frequency with the filter index"
    return None


# ---------------------------------------------------------------- STFT, log-mel, Whisper normalisation


def _tone(f, n, sr=16000, amp=0.5):
    return amp * np.sin(2 * np.pi * f * np.arange(n) / sr)


def _stft_cases(rng):
    yield Case((rng.standard_normal(1601), 400, 160), label="Whisper's n_fft 400, hop 160; 1601 samples -> 11 frames")
    yield Case((rng.standard_normal(1000), 256, 64), label="n_fft 256, hop 64; 1000 samples (not a multiple of hop)")
    yield Case((_tone(1000.0, 2048), 512, 128), label="a 1 kHz tone, n_fft 512, hop 128")
    yield Case((rng.standard_normal(400), 400, 160), label="exactly one window of samples (reflect padding at both ends)")
    yield Case((rng.standard_normal(int(rng.integers(900, 3000))), 320, 100), label="a random length, n_fft 320")


def _judge_stft(got, expected, case):
    x, n_fft, hop = case.args
    problem = _arr_problem(got, expected.shape, f"|X|^2 (1 + n_fft // 2 bins, 1 + len(x) // hop frames)")
    if problem:
        if isinstance(got, np.ndarray) and got.ndim == 2 and got.shape[0] == expected.shape[0]:
            problem += (": centre the frames, padding n_fft // 2 samples on both ends by reflection (torch.stft's "
                        "center=True), which gives 1 + len(x) // hop frames")
        elif isinstance(got, np.ndarray) and got.shape == expected.shape[::-1]:
            problem += ": return frequency first, (bins, frames), as torch.stft and librosa do"
        return problem
    scale = float(expected.max())
    problem = compare(got.astype(np.float64), expected, 1e-7, 1e-9 * scale, "|X|^2")
    if problem:
        X = torch.stft(torch.as_tensor(x, dtype=torch.float64), n_fft, hop, window=torch.hann_window(
            n_fft, periodic=False, dtype=torch.float64), return_complex=True).abs().numpy() ** 2
        if np.allclose(got, X, rtol=1e-6, atol=1e-9 * scale):
            return problem + ": use the periodic Hann window 0.5 - 0.5 cos(2 pi n / N), not the symmetric one (N - 1)"
        if np.allclose(got, np.sqrt(expected), rtol=1e-6, atol=1e-9 * scale):
            return problem + ": return the power |X|^2, not the magnitude |X|"
    return problem


def _logmel_cases(rng):
    yield Case((_tone(440.0, 4000), 16000, 400, 160, 80), label="a 440 Hz tone, Whisper's settings")
    f = float(rng.uniform(1500, 6000))
    yield Case((_tone(f, 3200), 16000, 400, 160, 80), label=f"a {f:.0f} Hz tone (above the 1 kHz knee)")
    yield Case((np.zeros(1600), 16000, 400, 160, 80), label="silence: log10 of the floor 1e-10 = -10 everywhere")
    yield Case((rng.standard_normal(2000) * 0.1, 8000, 256, 80, 40), label="noise, sr 8 kHz, n_fft 256, 40 mels")
    t = np.arange(4800) / 16000
    yield Case((np.sin(2 * np.pi * (200 * t + 4000 * t ** 2)), 16000, 400, 160, 80), label="a chirp 200 Hz -> 2.6 kHz")


def _judge_logmel(got, expected, case):
    problem = _arr_problem(got, expected.shape, "the log-mel spectrogram (n_mels, 1 + len(x) // hop)")
    if problem:
        return problem
    got = got.astype(np.float64)
    problem = compare(got, expected, 1e-6, 1e-5, "the log-mel spectrogram")
    if not problem:
        return None
    if np.allclose(got, expected * np.log(10), rtol=1e-5, atol=1e-4):
        return problem + ": use log10 (Whisper's), not the natural log"
    if np.allclose(got, 10 * expected, rtol=1e-5, atol=1e-3):
        return problem + ": that is decibels (10 log10); Whisper takes plain log10"
    if np.isfinite(got).all() and not np.isfinite(expected).all():
        return problem
    if not np.isfinite(got).all():
        return problem + ": floor the mel power at 1e-10 before the log (silence would give log(0))"
    return problem


def _tone_peaks(fn) -> str | None:
    M = ref_mel_filterbank(16000, 400, 80)
    for f in (300.0, 1234.0, 3000.0):
        S = np.asarray(fn(_tone(f, 3200), 16000, 400, 160, 80))
        k = int(S[:, 10].argmax()) if S.ndim == 2 and S.shape[0] == 80 else -1
        best = int(M[:, int(round(f * 400 / 16000))].argmax())
        if abs(k - best) > 1:
            return f"a pure {f:.0f} Hz tone should peak in mel bin {best} (the filter that weighs its FFT bin most); got {k}"
    return None


def _norm_cases(rng):
    yield Case((rng.uniform(-10, 2, (80, 30)),), label="a dynamic range of 12 > 8: the floor bites")
    yield Case((rng.uniform(-3, 1, (80, 17)),), label="a range of 4 < 8: no floor, only (x + 4) / 4")
    s = rng.uniform(-10, -9, (40, 9))
    s[3, 4] = 0.5
    yield Case((s,), label="one loud cell: everything else is floored at max - 8")
    yield Case((np.full((80, 5), -10.0),), label="silence (all -10): max - 8 = -2 floors everything")


def _judge_norm(got, expected, case):
    problem = _arr_problem(got, expected.shape, "the normalised log-mel")
    if problem:
        return problem
    problem = compare(got.astype(np.float64), expected, 1e-9, 1e-9, "the normalised log-mel")
    if problem:
        x = case.args[0]
        rowwise = (np.maximum(x, x.max(1, keepdims=True) - 8) + 4) / 4
        if np.allclose(got, rowwise):
            return problem + ": the floor is max - 8 with the maximum over the whole spectrogram, not per mel bin"
        if np.allclose(got, (x + 4) / 4):
            return problem + ": first floor every value at (max - 8), then (x + 4) / 4"
    return problem


# ---------------------------------------------------------------- task tokens


def _prefix_cases(rng):
    yield Case(("transcribe", "en", False), label="English transcription without timestamps")
    yield Case(("translate", "de", False), label="German speech translated to English text")
    yield Case(("transcribe", "ja", True), label="Japanese with timestamps: no <|notimestamps|>")
    yield Case(("translate", "fr", True), label="translate with timestamps")
    lang = str(rng.choice(audio.LANGUAGES))
    yield Case(("transcribe", lang, False), label=f"language {lang}")


def _judge_prefix(got, expected, case):
    if not isinstance(got, list) or not all(isinstance(t, str) for t in got):
        return f"return a list of token strings such as {expected}"
    if got == expected:
        return None
    task, language, ts = case.args
    if sorted(got) == sorted(expected):
        return f"right tokens, wrong order: Whisper's order is {expected}"
    if ts and "<|notimestamps|>" in got:
        return "with timestamps=True the prefix must not contain <|notimestamps|> (the model then emits time tokens)"
    if not ts and "<|notimestamps|>" not in got:
        return "with timestamps=False end the prefix with <|notimestamps|>"
    return f"expected {expected}, got {got}"


# ---------------------------------------------------------------- action tokens


def _action_cases(rng):
    low, high = np.array([-0.1, -0.1, -np.pi]), np.array([0.1, 0.1, np.pi])
    yield Case((rng.uniform(low, high, (20, 3)), low, high, 256), label="RT-2's 256 bins, 20 random actions")
    edges = np.stack([low, high, (low + high) / 2, low + 1e-12, high - 1e-12])
    yield Case((edges, low, high, 256), label="a = low -> bin 0, a = high -> bin 255 (not 256), the midpoint -> 128")
    yield Case((np.array([[-0.3, 0.25], [0.1, -0.2]]), np.array([-0.2, -0.2]), np.array([0.2, 0.2]), 4),
               label="values outside [low, high] are clipped to the first / last bin")
    yield Case((rng.uniform(0, 1, (6, 1)), np.array([0.0]), np.array([1.0]), 7), label="7 bins on [0, 1]")
    yield Case((rng.uniform(-2, 2, (5, 2)), np.array([-2.0, -2.0]), np.array([2.0, 2.0]), 1), label="one bin: all 0")


def _judge_tokenize(got, expected, case):
    a, low, high, n = case.args
    problem = _arr_problem(got, expected.shape, "the bins", integer=True)
    if problem:
        return problem
    if got.size and (got.max() >= n or got.min() < 0):
        return (f"bins must lie in 0..{n - 1}, got {int(got.min())}..{int(got.max())}: a = high maps to bin {n - 1} "
                "and values outside [low, high] are clipped to the first / last bin")
    diff = got.astype(np.int64) - expected
    if not diff.any():
        return None
    delta = (high - low) / n
    frac = (np.clip(a, low, high) - low) / delta
    edge = np.round(frac)
    tie = (np.abs(frac - edge) < 1e-9) & (edge > 0) & (edge < n)     # a value on an interior bin edge
    bad = (diff != 0) & ~((np.abs(diff) == 1) & tie)
    if not bad.any():
        return None
    i = tuple(int(v) for v in np.argwhere(bad)[0])
    hint = ""
    if np.array_equal(got, np.clip(np.round((np.clip(a, low, high) - low) / delta), 0, n - 1)):
        hint = ": floor, do not round ((a - low) / Delta lies in [b, b + 1) for bin b)"
    return f"bin of a = {a[i]:.6g} (dimension {i[-1]}): expected {expected[i]}, got {got[i]}{hint}"


def _detok_cases(rng):
    low, high = np.array([-0.1, -0.1, -np.pi]), np.array([0.1, 0.1, np.pi])
    yield Case((rng.integers(0, 256, (10, 3)), low, high, 256), label="RT-2's 256 bins")
    yield Case((np.array([[0, 255], [255, 0]]), np.array([-1.0, 0.0]), np.array([1.0, 2.0]), 256),
               label="bins 0 and 255: the centres low + Delta/2 and high - Delta/2")
    yield Case((np.array([[0], [1], [2], [3]]), np.array([-0.2]), np.array([0.2]), 4), label="4 bins: +-0.05, +-0.15")
    yield Case((np.array([[0, 0]]), np.array([0.0, -5.0]), np.array([1.0, 5.0]), 1), label="one bin: the midpoint")


def _judge_detok(got, expected, case):
    problem = _arr_problem(got, expected.shape, "the actions")
    if problem:
        return problem
    problem = compare(got.astype(np.float64), expected, 1e-12, 1e-12, "the bin centres")
    if problem:
        b, low, high, n = case.args
        if np.allclose(got, low + b * (high - low) / n):
            return problem + ": that is the bin's left edge; the centre is low + (b + 1/2) Delta"
    return problem


def _roundtrip_detok(fn) -> str | None:
    low, high, n = np.array([-1.0, 0.0]), np.array([1.0, 3.0]), 256
    a = np.stack([np.linspace(-1, 1, 1001), np.linspace(0, 3, 1001)], 1)
    back = np.asarray(fn(at.tokenize_action(a, low, high, n), low, high, n), dtype=np.float64)
    err = np.abs(back - a).max(0) if back.shape == a.shape else None
    if err is None or np.any(err > (high - low) / n / 2 + 1e-12):
        return "detokenize(tokenize(a)) must be within Delta / 2 of a for every a in [low, high]"
    return None


def _vocab_cases(rng):
    yield Case((np.arange(256), 32000, 256), label="every bin, a Llama-sized vocabulary of 32000")
    yield Case((rng.integers(0, 256, (4, 7)), 32000, 256), label="a (4, 7) array of bins")
    yield Case((np.array([0, 9]), 50, 10), label="10 bins in a vocabulary of 50: ids 40..49")
    yield Case((rng.integers(0, 1000, 9), 257216, 1000), label="1000 bins, PaLI-X-sized vocabulary")


def _judge_vocab(got, expected, case):
    problem = _arr_problem(got, expected.shape, "the token ids", integer=True)
    if problem:
        return problem
    bins, V, n = case.args
    if np.any(got >= V) or np.any(got < 0):
        return f"ids must be valid vocabulary ids, 0..{V - 1}; got {int(got.min())}..{int(got.max())}"
    if np.array_equal(got, V - 1 - bins):
        return "a bijection, but reversed: map bin b to vocab_size - n_bins + b (bin 0 to the first of the last n_bins ids)"
    problem = compare(got.astype(np.int64), expected, 0, 0, "the token ids (vocab_size - n_bins + bin)")
    return problem


# ---------------------------------------------------------------- the list

EXERCISES = [
    Exercise("audio_embodiment.hz_to_mel", "Hz to mel, Slaney and HTK", cases=_hz_cases, reference=ref_hz_to_mel,
             judge=_judge_hz),
    Exercise("audio_embodiment.mel_to_hz", "Mel to Hz, Slaney and HTK", cases=_mel_cases, reference=ref_mel_to_hz,
             judge=_judge_mel, properties=[_roundtrip]),
    Exercise("audio_embodiment.mel_filterbank", "The mel filter bank (against librosa)", cases=_fb_cases,
             reference=ref_mel_filterbank, judge=_judge_fb, properties=[_fb_rows]),
    Exercise("audio_embodiment.stft_power", "A centred STFT's power (against torch.stft)", cases=_stft_cases,
             reference=ref_stft_power, judge=_judge_stft),
    Exercise("audio_embodiment.log_mel_spectrogram", "The log-mel spectrogram", cases=_logmel_cases,
             reference=ref_log_mel_spectrogram, judge=_judge_logmel, properties=[_tone_peaks]),
    Exercise("audio_embodiment.whisper_normalize", "Whisper's dynamic-range normalisation", cases=_norm_cases,
             reference=audio.whisper_normalize, judge=_judge_norm),
    Exercise("audio_embodiment.whisper_prefix", "Whisper's task-token prefix", cases=_prefix_cases,
             reference=audio.whisper_prefix, judge=_judge_prefix),
    Exercise("audio_embodiment.tokenize_action", "Actions to bins (RT-2)", cases=_action_cases,
             reference=at.tokenize_action, judge=_judge_tokenize),
    Exercise("audio_embodiment.detokenize_action", "Bins to actions (bin centres)", cases=_detok_cases,
             reference=at.detokenize_action, judge=_judge_detok, properties=[_roundtrip_detok]),
    Exercise("audio_embodiment.action_tokens_to_vocab", "Action bins as the last ids of a vocabulary",
             cases=_vocab_cases, reference=at.action_tokens_to_vocab, judge=_judge_vocab),
]
