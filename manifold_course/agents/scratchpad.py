r"""Chain-of-thought as extra serial computation: scratchpads, the $(1-e)^n$ model, and a tiny GPT that adds.

A transformer spends a fixed amount of computation on each token it writes (about $2N$ FLOPs for $N$ parameters),
so an answer written in one token gets one token's worth of depth. Writing intermediate steps first (a
*scratchpad*: M. Nye et al., "Show Your Work: Scratchpads for Intermediate Computation with Language Models", 2021,
arXiv:2112.00114; J. Wei et al., "Chain-of-Thought Prompting Elicits Reasoning in Large Language Models", 2022,
arXiv:2201.11903) lets later tokens read earlier results: more serial steps, not less work.

LeCun's slide "Auto-Regressive Generative Models Suck!" argues that if every token is wrong independently with
probability $e$, an answer of $n$ tokens is right with probability $(1-e)^n$. N. Dziri et al. ("Faith and Fate:
Limits of Transformers on Compositionality", NeurIPS 2023, arXiv:2305.18654) find compositional errors that do not
behave like independent coin flips. This module gives both sides something to measure:

- :func:`scratchpad_multiplication` and :func:`addition_scratchpad`: deterministic worked-out formats;
- :func:`extract_final_answer`: the parser a grader uses on free text;
- :func:`independent_error_accuracy`, :func:`fit_per_token_error`: the closed form and its least-squares fit;
- :func:`error_correlation`: the mean pairwise correlation (phi coefficient) of per-position error indicators;
- :func:`encode_problems`, :func:`train_adder`, :func:`token_errors`: a tiny GPT (:mod:`manifold_course.nn.gpt`)
  trained on multi-digit addition with or without a scratchpad, and its per-token errors under teacher forcing.
"""

from __future__ import annotations

import math
import re

import numpy as np
import torch
import torch.nn.functional as F

from manifold_course.nn.gpt import GPT, GPTConfig
from manifold_course.seeding import manual_seed, numpy_rng

# ---------------------------------------------------------------- text formats


def scratchpad_multiplication(a: int, b: int) -> str:
    """a x b worked out by the digits of b, least significant first, then summed.

    ``scratchpad_multiplication(23, 18)`` is::

        23 * 18
        23 * 8 = 184
        23 * 10 = 230
        184 + 230 = 414
        Answer: 414

    One line per *non-zero* digit of b (``a * d * 10^k``), then a running sum line for every partial product after
    the first, then ``Answer: <a*b>``. With a single non-zero digit there is no sum line; with b = 0 the only step
    is ``a * 0 = 0``. a and b are non-negative integers.
    """
    if a < 0 or b < 0:
        raise ValueError("non-negative integers only")
    lines = [f"{a} * {b}"]
    partials = []
    for k, d in enumerate(reversed(str(b))):
        if d != "0":
            p = a * int(d) * 10**k
            lines.append(f"{a} * {int(d) * 10**k} = {p}")
            partials.append(p)
    if not partials:
        lines.append(f"{a} * 0 = 0")
        partials.append(0)
    total = partials[0]
    for p in partials[1:]:
        lines.append(f"{total} + {p} = {total + p}")
        total += p
    lines.append(f"Answer: {total}")
    return "\n".join(lines)


_ANSWER = re.compile(r"answer\s*(?:is)?\s*[:=]?\s*(-?\d[\d,]*)", re.IGNORECASE)
_INT = re.compile(r"-?\d+(?:,\d{3})*(?!\d)")


def extract_final_answer(text: str) -> int | None:
    """The integer a free-text answer commits to, or None.

    The *last* ``Answer: N`` (also ``answer is N``, ``answer = N``; any case) wins; without one, the last integer
    in the text; thousands separators ``1,234`` are read as 1234; ``-`` directly before the digits is a sign.
    None when the text holds no integer (or is not a string).
    """
    if not isinstance(text, str):
        return None
    marked = _ANSWER.findall(text)
    if marked:
        return int(marked[-1].rstrip(",").replace(",", ""))
    ints = _INT.findall(text)
    return int(ints[-1].replace(",", "")) if ints else None


# ---------------------------------------------------------------- the (1 - e)^n model


def independent_error_accuracy(e: float, n: int | np.ndarray) -> float | np.ndarray:
    """$P(\text{all } n \text{ tokens right}) = (1-e)^n$ when each token is wrong independently with probability e."""
    return (1.0 - e) ** np.asarray(n, dtype=np.float64) if np.ndim(n) else float((1.0 - e) ** n)


def fit_per_token_error(lengths, acc) -> float:
    r"""Least-squares e in $\log \mathrm{acc}_i = n_i \log(1-e)$ (a line through the origin in $n$).

    $\hat\beta = \sum_i n_i \log a_i / \sum_i n_i^2$ and $\hat e = 1 - e^{\hat\beta}$. Accuracies are clipped to
    $[10^{-6}, 1]$ first so that a length with no correct answer does not give $\log 0$. Returns a float in [0, 1).
    """
    n = np.asarray(lengths, dtype=np.float64)
    a = np.clip(np.asarray(acc, dtype=np.float64), 1e-6, 1.0)
    beta = float((n * np.log(a)).sum() / (n * n).sum())
    return float(1.0 - math.exp(beta))


def error_correlation(errors) -> float:
    """Mean pairwise Pearson correlation (phi) of the columns of a 0/1 error matrix (problems, positions).

    Pairs where a column never or always errs have no correlation and are skipped; NaN when no pair is left.
    Independent errors give about 0; errors that come together give a positive number.
    """
    E = np.asarray(errors, dtype=np.float64)
    keep = E.std(0) > 0
    E = E[:, keep]
    if E.shape[1] < 2:
        return float("nan")
    C = np.corrcoef(E, rowvar=False)
    iu = np.triu_indices(C.shape[0], 1)
    return float(C[iu].mean())


# ---------------------------------------------------------------- a tiny GPT that adds

VOCAB = "0123456789+=:.#"          # '#' pads; '.' ends an answer
PAD = VOCAB.index("#")
STOI = {c: i for i, c in enumerate(VOCAB)}


def addition_scratchpad(a: int, b: int, n: int) -> str:
    """The completion after ``a+b=`` worked out digit by digit, least significant first: the sum digit and the carry
    out of each position, then ``.`` (``"2131."`` for 47 + 85: 7+5 = 12, then 4+8+1 = 13; the sum 132 is read off
    by :func:`read_scratchpad`: the last carry, then the sum digits backwards)."""
    da, db = str(a).zfill(n)[::-1], str(b).zfill(n)[::-1]
    carry, steps = 0, []
    for x, y in zip(da, db):
        s = int(x) + int(y) + carry
        carry = s // 10
        steps.append(f"{s % 10}{carry}")
    return "".join(steps) + "."


def read_scratchpad(completion: str) -> int | None:
    """The sum a scratchpad completion commits to (None if it is not of the form of :func:`addition_scratchpad`)."""
    body = completion.split(".")[0]
    if not body or len(body) % 2 or not body.isdigit():
        return None
    return int(body[-1] + body[-2::-2])


def addition_plain(a: int, b: int, n: int) -> str:
    """The completion after ``a+b=`` without a scratchpad: the n+1-digit sum (zero-padded), ``.``."""
    return str(a + b).zfill(n + 1) + "."


def sample_operands(rng: np.random.Generator, n: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` pairs of n-digit numbers (leading digit non-zero; 0-9 when n = 1)."""
    lo = 0 if n == 1 else 10 ** (n - 1)
    return rng.integers(lo, 10**n, count), rng.integers(lo, 10**n, count)


def encode_problems(a, b, n: int, scratchpad: bool, width: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Token ids (P, width) of the problems padded with '#', a mask (P, width) that is True where the token is part
    of the completion (the positions a model is graded on), and the completion's length.

    The prompt says which format to use: ``a+b=`` asks for the sum directly (:func:`addition_plain`), ``a+b:`` for
    the worked-out digits (:func:`addition_scratchpad`), so that one model learns both from the same steps.
    """
    fmt, sign = (addition_scratchpad, ":") if scratchpad else (addition_plain, "=")
    rows, masks = [], []
    for x, y in zip(np.asarray(a).tolist(), np.asarray(b).tolist()):
        prompt, comp = f"{x}+{y}{sign}", fmt(x, y, n)
        s = prompt + comp
        if len(s) > width:
            raise ValueError(f"{s!r} is longer than width {width}")
        rows.append([STOI[c] for c in s] + [PAD] * (width - len(s)))
        masks.append([False] * len(prompt) + [True] * len(comp) + [False] * (width - len(s)))
    return torch.tensor(rows), torch.tensor(masks), len(comp)


def train_adder(max_digits: int, steps: int, seed: int, per_cell: int = 16, d_model: int = 32, n_layers: int = 2,
                n_heads: int = 4, lr: float = 1e-2) -> GPT:
    """One GPT trained on both formats at once: every step holds ``per_cell`` problems of each operand length
    1..max_digits in each format (a batch of 2 * max_digits * per_cell), next-token cross-entropy on the completion
    tokens only, Adam with the learning rate decaying linearly to 0. Same weights, same steps for both formats."""
    rng = numpy_rng(seed)
    width = 2 * max_digits + 2 + 2 * max_digits + 1                  # the longest prompt + scratchpad completion
    manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=len(VOCAB), block_size=width, d_model=d_model, n_layers=n_layers,
                          n_heads=n_heads))
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.98), eps=1e-8)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 - t / steps)   # linear decay to 0
    model.train()
    for _ in range(steps):
        xs, ms = [], []
        for n in range(1, max_digits + 1):
            for scratch in (False, True):
                ids, mask, _ = encode_problems(*sample_operands(rng, n, per_cell), n, scratch, width)
                xs.append(ids), ms.append(mask)
        ids, mask = torch.cat(xs), torch.cat(ms)
        logits = model(ids[:, :-1])                                   # (B, T-1, V): predicts ids[:, 1:]
        target = ids[:, 1:].masked_fill(~mask[:, 1:], -100)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    return model


@torch.no_grad()
def token_errors(model: GPT, a, b, n: int, scratchpad: bool) -> np.ndarray:
    """0/1 errors (P, L) of the model's greedy choice at each of the L completion tokens, given the correct prefix
    (teacher forcing). A row of zeros is exactly a problem that greedy decoding answers right, token for token."""
    ids, mask, L = encode_problems(a, b, n, scratchpad, model.cfg.block_size)
    pred = model(ids[:, :-1]).argmax(-1)                              # (P, T-1)
    wrong = (pred != ids[:, 1:]) & mask[:, 1:]
    first = int(mask[0].nonzero()[0]) - 1                             # all rows share n, so the same columns
    return wrong[:, first:first + L].numpy().astype(np.int64)


@torch.no_grad()
def greedy_completions(model: GPT, a, b, n: int, scratchpad: bool) -> list[str]:
    """What the model writes after each prompt by greedy decoding (up to the completion's length)."""
    ids, mask, L = encode_problems(a, b, n, scratchpad, model.cfg.block_size)
    first = int(mask[0].nonzero()[0])
    out = model.generate(ids[:, :first], L, temperature=0)
    return ["".join(VOCAB[t] for t in row[first:].tolist()) for row in out]
