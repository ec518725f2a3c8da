r"""BatchNorm, LayerNorm and RMSNorm from scratch, matching PyTorch's modules.

All three standardise a pre-activation and then let the network rescale it with a learned gain $\gamma$ (and
shift $\beta$); they differ in *which numbers* they average over. Shapes: ``B`` batch, ``D`` features.

- **BatchNorm** (S. Ioffe, C. Szegedy, "Batch Normalization: Accelerating Deep Network Training by Reducing
  Internal Covariate Shift", ICML 2015, arXiv:1502.03167) standardises each *feature* over the batch:
  $\hat x_{bj} = (x_{bj} - \mu_j)/\sqrt{\sigma_j^2 + \epsilon}\,\gamma_j + \beta_j$ with
  $\mu_j = \frac1B\sum_b x_{bj}$ and the *biased* $\sigma_j^2 = \frac1B\sum_b (x_{bj} - \mu_j)^2$. In training it also
  keeps running statistics for evaluation, $\mu_{run} \leftarrow (1-m)\mu_{run} + m\mu$ and
  $\sigma^2_{run} \leftarrow (1-m)\sigma^2_{run} + m\,\frac{B}{B-1}\sigma^2$: the running variance uses the
  *unbiased* estimate, the normalisation the biased one (that is what ``nn.BatchNorm1d`` does).
- **LayerNorm** (J. L. Ba, J. R. Kiros, G. E. Hinton, "Layer Normalization", 2016, arXiv:1607.06450) standardises
  each *sample* over its features: the same formula with a per-row mean and biased variance. No batch statistics,
  so training and evaluation agree and the batch size does not matter.
- **RMSNorm** (B. Zhang, R. Sennrich, "Root Mean Square Layer Normalization", NeurIPS 2019, arXiv:1910.07467) drops
  the mean: $\hat x = x / \sqrt{\frac1D\sum_j x_j^2 + \epsilon} \odot \gamma$.

Invariances (checked in the tests and the chapter): LayerNorm is invariant to $x \mapsto a x + c\mathbf 1$ ($a > 0$)
for every row, RMSNorm only to $x \mapsto a x$, BatchNorm to $x_{:,j} \mapsto a_j x_{:,j} + c_j$ per feature
(all up to $\epsilon$).
"""

from __future__ import annotations

import torch
from torch import nn
from manifold_course.seeding import torch_generator


def batch_norm_train(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, running_mean: torch.Tensor,
                     running_var: torch.Tensor, momentum: float = 0.1,
                     eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""BatchNorm in training mode on x (B, D), B >= 2: returns ``(y, new_running_mean, new_running_var)``.

    Matches ``nn.BatchNorm1d(D, eps=eps, momentum=momentum)`` in ``train()`` mode; the inputs are not modified.
    """
    B = x.shape[0]
    if B < 2:
        raise ValueError("BatchNorm in training mode needs more than one sample per feature (B >= 2)")
    mu = x.mean(dim=0)                                               # (D,)  per-feature batch mean
    var = x.var(dim=0, correction=0)                               # (D,)  biased: divides by B
    y = (x - mu) / torch.sqrt(var + eps) * gamma + beta              # (B, D)
    new_mean = (1 - momentum) * running_mean + momentum * mu         # mu_run <- (1 - m) mu_run + m mu
    new_var = (1 - momentum) * running_var + momentum * var * B / (B - 1)   # unbiased: B / (B - 1) correction
    return y, new_mean, new_var


def batch_norm_eval(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, running_mean: torch.Tensor,
                    running_var: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    r"""BatchNorm in evaluation mode: $(x - \mu_{run})/\sqrt{\sigma^2_{run} + \epsilon}\,\gamma + \beta$ (B, D); any B >= 1."""
    return (x - running_mean) / torch.sqrt(running_var + eps) * gamma + beta


def layer_norm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    r"""LayerNorm over the last axis of x (..., D): per-row mean and biased variance; matches ``F.layer_norm``."""
    mu = x.mean(dim=-1, keepdim=True)                                # (..., 1)
    var = x.var(dim=-1, correction=0, keepdim=True)                # (..., 1)
    return (x - mu) / torch.sqrt(var + eps) * gamma + beta           # (..., D)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    r"""RMSNorm over the last axis: $x / \sqrt{\mathrm{mean}(x^2) + \epsilon} \odot w$ (..., D); matches ``nn.RMSNorm``."""
    inv_rms = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)   # (..., 1)
    return x * inv_rms * weight


class BatchNorm1d(nn.Module):
    """``nn.BatchNorm1d`` for (B, D) inputs, written with :func:`batch_norm_train` / :func:`batch_norm_eval`."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))        # gamma
        self.bias = nn.Parameter(torch.zeros(num_features))         # beta
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:              # (B, D) -> (B, D)
        if not self.training:
            return batch_norm_eval(x, self.weight, self.bias, self.running_mean, self.running_var, self.eps)
        y, mean, var = batch_norm_train(x, self.weight, self.bias, self.running_mean, self.running_var,
                                        self.momentum, self.eps)
        with torch.no_grad():                                        # buffers are state, not part of the graph
            self.running_mean.copy_(mean)
            self.running_var.copy_(var)
        return y


class LayerNorm(nn.Module):
    """``nn.LayerNorm(D)`` over the last axis, with :func:`layer_norm`."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return layer_norm(x, self.weight, self.bias, self.eps)


class RMSNorm(nn.Module):
    """``nn.RMSNorm(D, eps)`` over the last axis, with :func:`rms_norm`."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.weight, self.eps)


def batch_stat_noise(x: torch.Tensor, batch_size: int, n_batches: int = 200, seed: int = 0) -> tuple[float, float]:
    r"""How noisy are BatchNorm's statistics? Standard deviation, over random batches of ``batch_size`` rows of x (N, D),
    of the batch mean and of the batch (biased) standard deviation, averaged over features and divided by each
    feature's full-data standard deviation: ``(mean_noise, std_noise)``. Theory for Gaussian features:
    $\approx 1/\sqrt B$ and $\approx 1/\sqrt{2B}$.
    """
    gen = torch_generator(seed)
    idx = torch.stack([torch.randperm(x.shape[0], generator=gen)[:batch_size] for _ in range(n_batches)])   # (n, B)
    batches = x[idx]                                                 # (n_batches, B, D)
    scale = x.std(dim=0, correction=0)                               # (D,)
    keep = scale > 0                                                 # constant features have no noise to measure
    mean_noise = (batches.mean(dim=1).std(dim=0)[keep] / scale[keep]).mean()
    std_noise = (batches.std(dim=1, correction=0).std(dim=0)[keep] / scale[keep]).mean()
    return float(mean_noise), float(std_noise)
