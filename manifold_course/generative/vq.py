r"""Vector quantisation: the VQ-VAE's discrete bottleneck, its straight-through gradient, its losses and its codebook.

van den Oord, Vinyals & Kavukcuoglu, "Neural Discrete Representation Learning", 2017 (arXiv:1711.00937); VQGAN
(Esser, Rombach & Ommer, "Taming Transformers for High-Resolution Image Synthesis", 2020, arXiv:2012.09841) keeps
the same quantiser and adds adversarial and perceptual losses. An encoder output $z_e$ is replaced by its nearest
codebook vector,

$$k = \arg\min_j \|z_e - e_j\|^2,\qquad z_q = e_k ,$$

which has no useful derivative. The **straight-through estimator** copies the decoder's gradient onto $z_e$:
$z_q \leftarrow z_e + \mathrm{sg}(e_k - z_e)$ (sg = stop-gradient, ``.detach()``), equal to $e_k$ in value and to
the identity in derivative. Because no gradient reaches the codebook that way, two losses are added,

$$\mathcal L = \|x - \mathcal D(z_q)\|^2 + \underbrace{\|\mathrm{sg}[z_e] - e_k\|^2}_{\text{codebook}}
 + \beta\,\underbrace{\|z_e - \mathrm{sg}[e_k]\|^2}_{\text{commitment}} ,$$

the first moving the codes towards the encoder outputs, the second keeping the encoder near its codes ($\beta = 0.25$
in the paper). Codebook **usage** is summarised by the perplexity $\exp H(p)$ of the code frequencies $p$ (natural
logarithms): $K$ for uniform use of $K$ codes, 1 when one code takes everything. Codes that no input selects are
**dead**: they receive no gradient and stay dead unless revived (here: moved onto the encoder outputs that are worst
served by their current codes; Jukebox, Dhariwal et al. 2020, arXiv:2005.00341, resets them to random encoder outputs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from manifold_course.seeding import manual_seed, torch_generator


def vector_quantize(z_e: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(z_q, idx)``: the nearest code (squared Euclidean distance) of every row of ``z_e`` (..., D) in ``codebook``
    (K, D); ``idx`` (...) int64, ``z_q`` (..., D) with the straight-through gradient (identity with respect to
    ``z_e``, none to the codebook)."""
    flat = z_e.reshape(-1, z_e.shape[-1])
    d2 = (flat**2).sum(-1, keepdim=True) - 2 * flat @ codebook.T + (codebook**2).sum(-1)    # (n, K)
    idx = d2.argmin(-1).reshape(z_e.shape[:-1])
    e = codebook[idx]
    return z_e + (e - z_e).detach(), idx


def vq_losses(z_e: torch.Tensor, e: torch.Tensor, beta: float = 0.25) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``(codebook_loss, commitment_loss)``, 0-dim tensors: $\mathrm{mean}(\mathrm{sg}[z_e] - e)^2$ and
    $\beta\,\mathrm{mean}(z_e - \mathrm{sg}[e])^2$, means over all entries. ``e`` is ``codebook[idx]``, the selected
    codes themselves (not the straight-through output, which carries no gradient to the codebook)."""
    return F.mse_loss(e, z_e.detach()), beta * F.mse_loss(z_e, e.detach())


def codebook_perplexity(idx: torch.Tensor, K: int) -> float:
    r"""$\exp(-\sum_k p_k\log p_k)$ with $p_k$ the fraction of entries of ``idx`` equal to $k$ (0 log 0 = 0)."""
    p = torch.bincount(idx.reshape(-1), minlength=K).double() / idx.numel()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def dead_codes(idx: torch.Tensor, K: int) -> torch.Tensor:
    """Boolean (K,): True for the codes that no entry of ``idx`` uses."""
    return torch.bincount(idx.reshape(-1), minlength=K) == 0


def revive_dead_codes(codebook: torch.Tensor, z_e: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """A new codebook (K, D) where the dead codes (in increasing index order) are replaced by the rows of ``z_e``
    (N, D) farthest from their assigned codes (largest squared error first; ties by the lower row); live codes are
    unchanged and nothing is modified in place. Assumes N >= the number of dead codes."""
    dead = torch.nonzero(dead_codes(idx, codebook.shape[0])).reshape(-1)
    err = ((z_e - codebook[idx]) ** 2).sum(-1)
    order = torch.sort(err, descending=True, stable=True).indices[: len(dead)]
    new = codebook.detach().clone()
    new[dead] = z_e.detach()[order].to(new.dtype)
    return new


# ---------------------------------------------------------------------- a small VQ-VAE for the 8x8 digits


@dataclass(frozen=True)
class VQConfig:
    in_dim: int = 64
    hidden: int = 128
    n_tokens: int = 4        # codes per image (a 2x2 "latent grid" flattened)
    code_dim: int = 4
    n_codes: int = 32        # K
    beta: float = 0.25
    init_scale: float = 0.1  # codebook entries start N(0, init_scale^2): far larger than the encoder's outputs kills codes


class VQVAE(nn.Module):
    """x (B, 64) -> z_e (B, n_tokens, code_dim) -> quantised -> reconstruction (B, 64) (no output squashing)."""

    def __init__(self, cfg: VQConfig = VQConfig()):
        super().__init__()
        self.cfg = cfg
        t = cfg.n_tokens * cfg.code_dim
        self.encoder = nn.Sequential(nn.Linear(cfg.in_dim, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.hidden),
                                     nn.ReLU(), nn.Linear(cfg.hidden, t))
        self.decoder = nn.Sequential(nn.Linear(t, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU(),
                                     nn.Linear(cfg.hidden, cfg.in_dim))
        self.codebook = nn.Parameter(cfg.init_scale * torch.randn(cfg.n_codes, cfg.code_dim))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).reshape(len(x), self.cfg.n_tokens, self.cfg.code_dim)

    def decode(self, z_q: torch.Tensor) -> torch.Tensor:
        return self.decoder(z_q.reshape(len(z_q), -1))

    def forward(self, x: torch.Tensor):
        """(reconstruction (B, 64), z_e, idx (B, n_tokens), codebook loss, commitment loss)."""
        z_e = self.encode(x)
        z_q, idx = vector_quantize(z_e, self.codebook)
        cb, cm = vq_losses(z_e, self.codebook[idx], self.cfg.beta)
        return self.decode(z_q), z_e, idx, cb, cm

    @torch.no_grad()
    def decode_indices(self, idx: torch.Tensor) -> torch.Tensor:
        """Decode code indices (B, n_tokens) exactly (the straight-through sum z_e + (e - z_e) rounds differently)."""
        return self.decode(self.codebook[idx])

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode_indices(self.indices(x))

    @torch.no_grad()
    def indices(self, x: torch.Tensor) -> torch.Tensor:
        return self(x)[2]


def train_vqvae(X: torch.Tensor, cfg: VQConfig = VQConfig(), steps: int = 1500, batch: int = 128, lr: float = 2e-3,
                revive_every: int = 0, seed: int = 0, progress: bool = False) -> tuple[VQVAE, dict]:
    """Train a :class:`VQVAE` on ``X`` (N, 64) with Adam; every ``revive_every`` steps (0: never) dead codes,
    judged on the whole of ``X``, are revived with :func:`revive_dead_codes`. Returns the model (eval mode) and a
    history dict of per-step ``recon`` losses and per-revival counts of revived codes."""
    manual_seed(seed)
    g = torch_generator(seed)
    model = VQVAE(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    hist: dict = {"recon": [], "revived": []}
    it = range(steps)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="VQ-VAE")
    for step in it:
        xb = X[torch.randint(0, len(X), (batch,), generator=g)]
        rec, _, _, cb, cm = model(xb)
        recon = F.mse_loss(rec, xb)
        opt.zero_grad()
        (recon + cb + cm).backward()
        opt.step()
        hist["recon"].append(recon.item())
        if revive_every and (step + 1) % revive_every == 0 and step + 1 < steps:
            with torch.no_grad():
                z_e = model.encode(X).reshape(-1, cfg.code_dim)
                _, idx = vector_quantize(z_e, model.codebook)
                hist["revived"].append(int(dead_codes(idx, cfg.n_codes).sum()))
                model.codebook.copy_(revive_dead_codes(model.codebook, z_e, idx))
    return model.eval(), hist
