r"""A small variational auto-encoder for the 8x8 digits, sized to train on a CPU in seconds.

Kingma & Welling, "Auto-Encoding Variational Bayes", 2013 (arXiv:1312.6114). The encoder outputs
$q_\phi(z|x) = \mathcal N(\mu_\phi(x), \mathrm{diag}\,e^{\log\sigma^2_\phi(x)})$, the decoder $p_\theta(x|z)$, and the loss
is the negative ELBO with a weight $\beta$ on the KL (Higgins et al., "beta-VAE", ICLR 2017):

$$\mathcal L(x) = \underbrace{-\mathbb E_{q}[\log p_\theta(x|z)]}_{\text{recon}} + \beta\,\underbrace{\mathrm{KL}(q_\phi(z|x)\,\|\,\mathcal N(0, I))}_{\text{kl}}.$$

- ``likelihood="bernoulli"``: the decoder outputs logits $\ell$; recon $= \sum_j \mathrm{BCE}(\ell_j, x_j)$ (cross-entropy).
  For pixels in [0, 1] that are not binary this is a cross-entropy, not a normalised likelihood (Loaiza-Ganem &
  Cunningham, "The continuous Bernoulli", 2019, arXiv:1907.06845).
- ``likelihood="gaussian"``: the decoder outputs the mean $\hat x$; recon $= \tfrac12\|x - \hat x\|^2$, the negative log of
  $\mathcal N(x;\hat x, I)$ without its constant $\tfrac D2\log 2\pi$.

$\beta = 0$ is a (noisy) auto-encoder: nothing ties the codes to the prior. Shapes: ``B`` batch, ``D`` = 64 pixels, ``k`` latent.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from manifold_course.probability.elbo import reparameterize
from manifold_course.probability.kl import kl_std_normal
from manifold_course.seeding import manual_seed, torch_generator


@dataclass(frozen=True)
class VAEConfig:
    in_dim: int = 64
    hidden: int = 128
    latent: int = 2
    likelihood: str = "bernoulli"  # or "gaussian"


class Encoder(nn.Module):
    """x (B, D) -> (mu (B, k), logvar (B, k))."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(cfg.in_dim, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU())
        self.mu = nn.Linear(cfg.hidden, cfg.latent)
        self.logvar = nn.Linear(cfg.hidden, cfg.latent)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)                                                # (B, hidden)
        return self.mu(h), self.logvar(h)


class Decoder(nn.Module):
    """z (B, k) -> logits (Bernoulli) or means (Gaussian) of the pixels (B, D)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(cfg.latent, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU(),
                                 nn.Linear(cfg.hidden, cfg.in_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class VAE(nn.Module):
    def __init__(self, cfg: VAEConfig = VAEConfig()):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(decoder output (B, D), mu (B, k), logvar (B, k)) with one reparameterized sample per input."""
        mu, logvar = self.encoder(x)
        z = reparameterize(mu, logvar, torch.randn_like(mu))
        return self.decoder(z), mu, logvar

    @torch.no_grad()
    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel means for latents z (B, k): sigmoid(logits) for Bernoulli, the output itself for Gaussian."""
        out = self.decoder(z)
        return torch.sigmoid(out) if self.cfg.likelihood == "bernoulli" else out

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        r"""The deterministic auto-encoder map $f(x) = \text{decode\_mean}(\mu_\phi(x))$ (B, D) -> (B, D)."""
        return self.decode_mean(self.encoder(x)[0])


def vae_loss(x: torch.Tensor, decoder_out: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             likelihood: str = "bernoulli", beta: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""``(total, recon, kl)``: each a 0-dim tensor, summed over pixels / latent dims and averaged over the batch.

    total $=$ recon $+\ \beta\cdot$ kl, the negative ELBO per example when $\beta = 1$.
    """
    if likelihood == "bernoulli":
        # BCE with logits: -[x log sigmoid(l) + (1-x) log(1 - sigmoid(l))], stable for large |l|
        recon = F.binary_cross_entropy_with_logits(decoder_out, x, reduction="none").sum(-1)   # (B,)
    elif likelihood == "gaussian":
        recon = 0.5 * (x - decoder_out).pow(2).sum(-1)                                          # (B,)
    else:
        raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}")
    kl = kl_std_normal(mu, logvar)                                                              # (B,)
    return (recon + beta * kl).mean(), recon.mean(), kl.mean()


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 60
    batch_size: int = 64
    lr: float = 2e-3
    beta: float = 1.0
    seed: int = 0
    threads: int | None = 1  # torch intra-op threads while training; tiny layers run fastest (and steadiest) on one


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (restored afterwards); ``None`` leaves it alone."""
    previous = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def train_vae(X: torch.Tensor, cfg: VAEConfig = VAEConfig(), train: TrainConfig = TrainConfig(),
              progress: bool = False) -> tuple[VAE, list[float]]:
    """Train with Adam on mini-batches; returns the model (in eval mode) and the mean loss of every epoch.

    Seeded by ``train.seed``; torch's global random state is saved and restored, so calling this does not
    change what the caller's next ``torch.randn`` returns.
    """
    epochs = range(train.epochs)
    if progress:
        from tqdm.auto import tqdm

        epochs = tqdm(epochs, desc=f"VAE beta={train.beta:g}")
    history = []
    with torch.random.fork_rng(devices=[]), _torch_threads(train.threads):
        manual_seed(train.seed)                                   # weights and the reparameterization noise
        model = VAE(cfg)
        opt = torch.optim.Adam(model.parameters(), lr=train.lr)
        gen = torch_generator(train.seed)                 # mini-batch order
        for _ in epochs:
            perm = torch.randperm(X.shape[0], generator=gen)
            total, count = 0.0, 0
            for i in range(0, X.shape[0], train.batch_size):
                xb = X[perm[i:i + train.batch_size]]                    # (B, D)
                out, mu, logvar = model(xb)
                loss, _, _ = vae_loss(xb, out, mu, logvar, cfg.likelihood, train.beta)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(xb)
                count += len(xb)
            history.append(total / count)
    return model.eval(), history


@torch.no_grad()
def negative_elbo(model: VAE, X: torch.Tensor, n_samples: int = 8, seed: int = 0) -> float:
    """Mean negative ELBO (beta = 1) per example on ``X``, averaged over ``n_samples`` draws of z."""
    g = torch_generator(seed)
    mu, logvar = model.encoder(X)                                       # (N, k)
    vals = []
    for _ in range(n_samples):
        z = reparameterize(mu, logvar, torch.randn(mu.shape, generator=g, dtype=mu.dtype))
        vals.append(float(vae_loss(X, model.decoder(z), mu, logvar, model.cfg.likelihood, 1.0)[0]))
    return sum(vals) / len(vals)


@torch.no_grad()
def aggregate_posterior_kl(model: VAE, X: torch.Tensor, seed: int = 0) -> float:
    r"""How far the aggregate posterior $q(z) = \frac1N\sum_n q(z|x_n)$ is from $\mathcal N(0, I)$, in nats.

    Samples one $z$ per input, fits a Gaussian by moments ($m$, $S$) and returns $\mathrm{KL}(\mathcal N(m,S)\|\mathcal N(0,I))
    = \tfrac12[\operatorname{tr}S + \|m\|^2 - k - \log\det S]$: zero when mean and covariance match the prior's. A moment
    check only (a ring of codes with the right moments would pass), but enough to separate an AE from a VAE.
    """
    g = torch_generator(seed)
    mu, logvar = model.encoder(X)
    z = reparameterize(mu, logvar, torch.randn(mu.shape, generator=g, dtype=mu.dtype)).double()   # (N, k)
    m = z.mean(0)
    S = torch.cov(z.T).reshape(z.shape[1], z.shape[1])
    return float(0.5 * (torch.trace(S) + m @ m - z.shape[1] - torch.logdet(S)))
