r"""Policy gradients (Volume 5, sections 5.5-5.6) and a toy sequence policy for the manifold lens F21.

**REINFORCE** (Williams, "Simple statistical gradient-following algorithms for connectionist reinforcement learning",
Machine Learning 8, 1992) and the **policy gradient theorem** (Sutton, McAllester, Singh & Mansour, NeurIPS 2000):

$$\nabla_\theta J(\theta) = \mathbb E_{\pi_\theta}\Big[\sum_t \nabla_\theta\log\pi_\theta(a_t|s_t)\,(G_t - b(s_t))\Big],$$

with $G_t$ the return from step $t$ and any baseline $b$ that does not depend on the action: since
$\mathbb E_{a\sim\pi}[\nabla\log\pi(a|s)] = \nabla\sum_a\pi(a|s) = 0$, the baseline leaves the mean unchanged and, well
chosen ($b\approx V(s)$), lowers the variance. :func:`reinforce_loss` is the surrogate whose autograd gradient is the
estimator; the baseline must be detached, or its own gradient is added.

A **Gaussian policy** for continuous actions, $a\sim\mathcal N(\mu_\theta(s), \mathrm{diag}\,\sigma^2)$, has
$\log\pi(a|s) = \sum_i\big[-\tfrac12\big(\tfrac{a_i-\mu_i}{\sigma_i}\big)^2 - \log\sigma_i - \tfrac12\log 2\pi\big]$.

**F21** (SYLLABUS Part 3): a tiny autoregressive policy over short token sequences is pre-trained by maximum likelihood
on a broad distribution, fine-tuned on narrow demonstrations, then trained by REINFORCE on a sparse reward. With a
vocabulary of $V$ tokens and length $L$ all $V^L$ sequences can be enumerated, so KL divergences and entropies are
exact; the hidden features are compared with **linear CKA** (Kornblith, Norouzi, Lee & Hinton, "Similarity of Neural
Network Representations Revisited", ICML 2019, arXiv:1905.00414).
"""

from __future__ import annotations

import itertools
import math
from typing import Callable

import torch
import torch.nn as nn

from manifold_course.seeding import manual_seed, torch_generator


def reinforce_loss(logp: torch.Tensor, returns: torch.Tensor, baseline: torch.Tensor | None = None) -> torch.Tensor:
    r"""$-\mathrm{mean}\big[\log\pi(a|s)\,(G - b)\big]$; the baseline is detached (it must not receive a gradient)."""
    weight = returns if baseline is None else returns - baseline.detach()
    return -(logp * weight.detach()).mean()


def gaussian_logprob(a: torch.Tensor, mu: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    r"""$\log\mathcal N(a;\mu,\mathrm{diag}\,e^{2\log\sigma})$ summed over the last (action) axis."""
    z = (a - mu) * torch.exp(-log_std)
    return (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


# ---------------------------------------------------------------- the bandit: gradient estimates, exact and sampled


def bandit_gradient_exact(logits: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    r"""$\nabla_\theta\sum_a\pi_\theta(a)\mu_a$ for a softmax policy over arms with mean rewards $\mu$."""
    pi = torch.softmax(logits.double(), -1)
    return pi * (means.double() - (pi * means.double()).sum())


def bandit_gradient_variance(logits: torch.Tensor, means: torch.Tensor, noise: float, batch: int,
                             baseline: float | None) -> float:
    r"""Exact total variance (trace of the covariance) of a ``batch``-sample REINFORCE estimate: one pull gives
    $g = (e_a - \pi)(r - b)$, $\mathbb E[gg^\top] = \sum_a\pi_a(e_a-\pi)(e_a-\pi)^\top((\mu_a-b)^2+\sigma^2)$, and the
    batch mean has covariance $(\mathbb E[gg^\top] - \nabla J\nabla J^\top)/B$."""
    pi, mu = torch.softmax(logits.double(), -1), means.double()
    b = 0.0 if baseline is None else float(baseline)
    score = torch.eye(len(pi), dtype=torch.float64) - pi                      # row a: e_a - pi
    second = (pi * ((mu - b) ** 2 + noise**2) * score.pow(2).sum(-1)).sum()    # E|g|^2
    return float((second - bandit_gradient_exact(logits, means).pow(2).sum()) / batch)


def bandit_gradient_samples(logits: torch.Tensor, means: torch.Tensor, noise: float, batch: int, n_batches: int,
                            baseline: float | None, seed: int = 0) -> torch.Tensor:
    r"""``n_batches`` REINFORCE estimates of the gradient (rows), each from ``batch`` pulls with Gaussian reward
    noise, computed by autograd through :func:`reinforce_loss` (one copy of the logits per batch)."""
    gen = torch_generator(seed)
    theta = logits.double().detach().expand(n_batches, -1).clone().requires_grad_(True)
    logp_all = torch.log_softmax(theta, -1)
    a = torch.multinomial(logp_all.detach().exp(), batch, replacement=True, generator=gen)       # (n_batches, batch)
    r = means.double()[a] + noise * torch.randn(a.shape, generator=gen, dtype=torch.float64)
    b = None if baseline is None else torch.full_like(r, baseline)
    loss = reinforce_loss(logp_all.gather(1, a), r, b) * n_batches        # each batch's mean loss, summed over batches
    (grad,) = torch.autograd.grad(loss, theta)
    return -grad                                                          # ascent direction: the gradient of J


# ---------------------------------------------------------------- F21: a toy sequence policy


def all_sequences(vocab: int, length: int) -> torch.Tensor:
    """Every sequence of ``length`` tokens from ``range(vocab)``, shape (vocab**length, length), lexicographic."""
    return torch.tensor(list(itertools.product(range(vocab), repeat=length)), dtype=torch.long)


class PrefixMLP(nn.Module):
    r"""An autoregressive policy $\pi(x_t|x_{<t})$ over sequences of ``length`` tokens: position $t$ sees the one-hot
    prefix $x_{<t}$ (later slots zero) and a one-hot of $t$; one tanh hidden layer (the features compared by CKA)."""

    def __init__(self, vocab: int, length: int, hidden: int = 64):
        super().__init__()
        self.vocab, self.length = vocab, length
        self.hidden = nn.Linear(length * vocab + length, hidden)
        self.out = nn.Linear(hidden, vocab)
        self.register_buffer("causal", torch.tril(torch.ones(length, length), -1))      # [t, s] = 1 if s < t

    def features(self, seqs: torch.Tensor) -> torch.Tensor:
        """Hidden activations at every position, (B, length, hidden)."""
        onehot = nn.functional.one_hot(seqs, self.vocab).float()                          # (B, L, V)
        prefix = self.causal[None, :, :, None] * onehot[:, None, :, :]                    # (B, L_t, L_s, V)
        pos = torch.eye(self.length).expand(len(seqs), -1, -1)
        return torch.tanh(self.hidden(torch.cat([prefix.flatten(2), pos], -1)))

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        """Logits of every position's next token given its prefix, (B, length, vocab)."""
        return self.out(self.features(seqs))

    def log_prob(self, seqs: torch.Tensor) -> torch.Tensor:
        r"""$\log\pi(x) = \sum_t\log\pi(x_t|x_{<t})$, shape (B,)."""
        return torch.log_softmax(self(seqs), -1).gather(-1, seqs[..., None]).squeeze(-1).sum(-1)

    @torch.no_grad()
    def sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        seqs = torch.zeros(n, self.length, dtype=torch.long)
        for t in range(self.length):
            probs = torch.softmax(self(seqs)[:, t], -1)
            seqs[:, t] = torch.multinomial(probs, 1, generator=gen).squeeze(-1)
        return seqs


def sequence_policy(vocab: int, length: int, hidden: int = 64, seed: int = 0) -> PrefixMLP:
    manual_seed(seed)
    return PrefixMLP(vocab, length, hidden)


def fit_mle(model: PrefixMLP, data: torch.Tensor, steps: int, lr: float = 3e-3, batch: int = 256,
            seed: int = 0) -> list[float]:
    """Maximum likelihood (pre-training, or SFT on demonstrations): Adam on minibatches of ``data``; the NLLs."""
    gen = torch_generator(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        x = data[torch.randint(len(data), (batch,), generator=gen)]
        loss = -model.log_prob(x).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def fit_reinforce(model: PrefixMLP, reward: Callable[[torch.Tensor], torch.Tensor], steps: int, lr: float = 1e-3,
                  batch: int = 256, seed: int = 0) -> list[float]:
    """REINFORCE on whole sequences (one reward per sequence, the batch mean as baseline); the mean rewards."""
    gen = torch_generator(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    means = []
    for _ in range(steps):
        x = model.sample(batch, gen)
        r = reward(x).float()
        loss = reinforce_loss(model.log_prob(x), r, r.mean())
        opt.zero_grad()
        loss.backward()
        opt.step()
        means.append(float(r.mean()))
    return means


@torch.no_grad()
def sequence_stats(model: PrefixMLP, ref_logp: torch.Tensor, everything: torch.Tensor,
                   reward: Callable[[torch.Tensor], torch.Tensor]) -> dict:
    r"""Exact, over all sequences: ``kl`` = KL(model || ref) and ``entropy`` in nats, ``success`` = E[reward]."""
    logp = model.log_prob(everything).double()
    p = logp.exp()
    return {"kl": float((p * (logp - ref_logp.double())).sum()), "entropy": float(-(p * logp).sum()),
            "success": float((p * reward(everything).double()).sum())}
