r"""Gaussian mixtures: data whose diffusion and flow-matching quantities are known in closed form.

Volume 3 grades samplers and losses exactly because its data are a Gaussian mixture (2-D toys, and a mixture fitted
to the 8x8 digits): every quantity a diffusion model or a flow-matching model must learn is then analytic, and can
serve as an oracle.

A mixture $p(x) = \sum_k w_k\,\mathcal N(x; \mu_k, \Sigma_k)$ (weights $w_k$, means $\mu_k$, covariances $\Sigma_k$,
``K`` components in ``D`` dimensions) stays a mixture under any map $x \mapsto a x + b\,\varepsilon$ with independent
$\varepsilon \sim \mathcal N(0, I)$: component $k$ becomes $\mathcal N(a\mu_k,\ a^2\Sigma_k + b^2 I)$. So

- the **forward diffusion** (variance preserving, DDPM's) $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$
  has the marginal :meth:`GaussianMixture.noised` ($a = \sqrt{\bar\alpha_t}$, $b = \sqrt{1-\bar\alpha_t}$); its
  **score** $\nabla_x \log p_t(x)$ is :meth:`GaussianMixture.score`, and the noise an ideal network predicts is
  $\hat\varepsilon(x_t) = -\sqrt{1-\bar\alpha_t}\,\nabla\log p_t(x_t)$ (:meth:`GaussianMixture.eps_oracle`);
- the **flow-matching path** (the course's convention, as in SYLLABUS 3.3: $t = 0$ data, $t = 1$ noise)
  $x_t = (1-t)\,x_0 + t\,x_1$, $x_1 \sim \mathcal N(0, I)$, has the marginal :meth:`GaussianMixture.interpolated`
  ($a = 1-t$, $b = t$), and the **marginal velocity** $v(x, t) = \mathbb E[x_1 - x_0 \mid x_t = x]$
  (:meth:`GaussianMixture.fm_velocity`) is what flow matching regresses onto (Lipman et al., "Flow Matching for
  Generative Modeling", 2022, arXiv:2210.02747; Liu et al., "Flow Straight and Fast", 2022, arXiv:2209.03003).

Within component $k$ the pair $(x_0, x_t)$ is jointly Gaussian, so with $C_k = a^2\Sigma_k + b^2 I$ and the
posterior weight (responsibility) $r_k(x) = w_k\mathcal N(x; a\mu_k, C_k) / p_t(x)$:

$$\nabla\log p_t(x) = -\sum_k r_k(x)\,C_k^{-1}(x - a\mu_k),\qquad
\mathbb E[x_0\mid x_t=x, k] = \mu_k + a\Sigma_k C_k^{-1}(x - a\mu_k),\qquad
\mathbb E[x_1\mid x_t=x, k] = b\,C_k^{-1}(x - a\mu_k).$$

Everything is float64 torch; ``x`` has shape ``(N, D)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class GaussianMixture:
    """``weights`` (K,), summing to 1; ``means`` (K, D); ``covs`` (K, D, D), symmetric positive definite."""

    weights: torch.Tensor
    means: torch.Tensor
    covs: torch.Tensor

    def __post_init__(self) -> None:
        w, m, c = (torch.as_tensor(v, dtype=torch.float64) for v in (self.weights, self.means, self.covs))
        if m.dim() != 2 or w.shape != m.shape[:1] or c.shape != (m.shape[0], m.shape[1], m.shape[1]):
            raise ValueError(f"need weights (K,), means (K, D), covs (K, D, D); got {tuple(w.shape)}, "
                             f"{tuple(m.shape)}, {tuple(c.shape)}")
        if (w < 0).any() or abs(float(w.sum()) - 1.0) > 1e-9:
            raise ValueError("the weights must be non-negative and sum to 1")
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "means", m)
        object.__setattr__(self, "covs", 0.5 * (c + c.transpose(1, 2)))

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @staticmethod
    def isotropic(weights, means, std: float) -> GaussianMixture:
        """Components with covariance ``std**2 * I`` (the "8 Gaussians" toy, for instance)."""
        m = torch.as_tensor(means, dtype=torch.float64)
        return GaussianMixture(torch.as_tensor(weights, dtype=torch.float64), m,
                               std**2 * torch.eye(m.shape[1], dtype=torch.float64).expand(m.shape[0], -1, -1).clone())

    @staticmethod
    def from_sklearn(gm) -> GaussianMixture:
        """From a fitted ``sklearn.mixture.GaussianMixture`` with ``covariance_type="full"``."""
        return GaussianMixture(torch.as_tensor(gm.weights_), torch.as_tensor(gm.means_), torch.as_tensor(gm.covariances_))

    # ------------------------------------------------------------------ density and sampling

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` draws, shape (n, D): a component by its weight, then its Gaussian."""
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        chol = torch.linalg.cholesky(self.covs)
        return self.means[k] + (chol[k] @ z[:, :, None])[:, :, 0]

    def _component_terms(self, x: torch.Tensor):
        x = torch.as_tensor(x, dtype=torch.float64)
        diff = x[:, None, :] - self.means[None]                                     # (N, K, D)
        chol = torch.linalg.cholesky(self.covs)                                     # (K, D, D)
        sol = torch.cholesky_solve(diff.permute(1, 2, 0), chol).permute(2, 0, 1)    # C_k^{-1}(x - m_k): (N, K, D)
        maha = (diff * sol).sum(-1)
        logdet = 2 * torch.log(torch.diagonal(chol, dim1=1, dim2=2)).sum(-1)
        logpk = torch.log(self.weights) - 0.5 * (maha + logdet + self.dim * math.log(2 * math.pi))   # (N, K)
        return logpk, sol

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x), shape (N,)."""
        logpk, _ = self._component_terms(x)
        return torch.logsumexp(logpk, dim=1)

    def responsibilities(self, x: torch.Tensor) -> torch.Tensor:
        """r_k(x) = p(component k | x), shape (N, K)."""
        logpk, _ = self._component_terms(x)
        return torch.softmax(logpk, dim=1)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        r"""$\nabla_x \log p(x)$, shape (N, D)."""
        logpk, sol = self._component_terms(x)
        return -(torch.softmax(logpk, dim=1)[:, :, None] * sol).sum(1)

    def mean(self) -> torch.Tensor:
        return self.weights @ self.means

    def cov(self) -> torch.Tensor:
        """The mixture's covariance: sum_k w_k (Sigma_k + mu_k mu_k^T) - mu mu^T."""
        mu = self.mean()
        second = (self.weights[:, None, None] * (self.covs + self.means[:, :, None] * self.means[:, None, :])).sum(0)
        return second - torch.outer(mu, mu)

    # ------------------------------------------------------------------ the two noising paths

    def affine_noised(self, a: float, b: float) -> GaussianMixture:
        r"""The law of $a x + b\varepsilon$ with $x \sim$ this mixture and independent $\varepsilon \sim \mathcal N(0, I)$."""
        eye = torch.eye(self.dim, dtype=torch.float64)
        return GaussianMixture(self.weights, a * self.means, a**2 * self.covs + b**2 * eye)

    def noised(self, alpha_bar: float) -> GaussianMixture:
        r"""Marginal of the forward diffusion at $\bar\alpha_t$ = ``alpha_bar`` (1: the data; 0: N(0, I))."""
        return self.affine_noised(math.sqrt(alpha_bar), math.sqrt(1.0 - alpha_bar))

    def eps_oracle(self, x: torch.Tensor, alpha_bar: float) -> torch.Tensor:
        r"""The noise an ideal network predicts at $\bar\alpha_t$: $\mathbb E[\varepsilon\mid x_t] = -\sqrt{1-\bar\alpha_t}\,\nabla\log p_t$."""
        return -math.sqrt(1.0 - alpha_bar) * self.noised(alpha_bar).score(x)

    def interpolated(self, t: float) -> GaussianMixture:
        """Marginal of the flow-matching path x_t = (1 - t) x_0 + t x_1 (t = 0: the data; t = 1: N(0, I))."""
        return self.affine_noised(1.0 - t, t)

    def fm_velocity(self, x: torch.Tensor, t: float) -> torch.Tensor:
        r"""The marginal flow-matching velocity $v(x, t) = \mathbb E[x_1 - x_0 \mid x_t = x]$, shape (N, D)."""
        a, b = 1.0 - t, t
        p_t = self.interpolated(t)
        logpk, sol = p_t._component_terms(x)                               # sol = C_k^{-1}(x - a mu_k)
        r = torch.softmax(logpk, dim=1)[:, :, None]
        e_x1 = b * sol                                                     # E[x_1 | x_t, k]
        e_x0 = self.means[None] + a * (self.covs[None] @ sol[..., None])[..., 0]   # E[x_0 | x_t, k]
        return (r * (e_x1 - e_x0)).sum(1)


def eight_gaussians(radius: float = 2.0, std: float = 0.15) -> GaussianMixture:
    """The classic 2-D toy: eight equal components on a circle of ``radius``."""
    ang = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    return GaussianMixture.isotropic(torch.full((8,), 1 / 8, dtype=torch.float64),
                                     radius * torch.stack([ang.cos(), ang.sin()], 1), std)


# ---------------------------------------------------------------------- distances between samples


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    r"""The energy distance $2\,\mathbb E\|X-Y\| - \mathbb E\|X-X'\| - \mathbb E\|Y-Y'\|$ between two samples
    (Szekely & Rizzo 2013), with the within-sample means over distinct pairs: 0 for identical laws in the limit,
    and in one dimension twice the integral of the squared difference of the two CDFs."""
    x, y = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    x, y = x.reshape(len(x), -1), y.reshape(len(y), -1)
    n, m = len(x), len(y)
    xy = torch.cdist(x, y).mean()
    xx = torch.cdist(x, x).sum() / (n * (n - 1))
    yy = torch.cdist(y, y).sum() / (m * (m - 1))
    return float(2 * xy - xx - yy)


def wasserstein_1d(x: torch.Tensor, y: torch.Tensor) -> float:
    """The 1-Wasserstein distance between two 1-D samples of the same size: the mean gap of the sorted values."""
    x, y = torch.as_tensor(x, dtype=torch.float64).reshape(-1), torch.as_tensor(y, dtype=torch.float64).reshape(-1)
    if len(x) != len(y):
        raise ValueError(f"give two samples of the same size, got {len(x)} and {len(y)}")
    return float((x.sort().values - y.sort().values).abs().mean())


def sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, n_projections: int, generator: torch.Generator) -> float:
    """The sliced 1-Wasserstein distance: the 1-D distance of the two samples' projections on random unit
    directions, averaged over ``n_projections`` directions (Rabin et al. 2011; Bonneel et al. 2015)."""
    x, y = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    d = torch.randn(n_projections, x.shape[1], generator=generator, dtype=torch.float64)
    d = d / d.norm(dim=1, keepdim=True)
    return sum(wasserstein_1d(x @ u, y @ u) for u in d) / n_projections
