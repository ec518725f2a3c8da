r"""A mini-CLIP on the 8x8 digits, and DrLIM: contrastive embeddings that pull pairs together (chapter 4.1).

**CLIP** (A. Radford et al., "Learning Transferable Visual Models From Natural Language Supervision", 2021,
arXiv:2103.00020) trains an image encoder $f$ and a text encoder $g$ on $N$ matched pairs per batch. With unit
vectors $\hat f_i = f(x_i)/\|f(x_i)\|$, $\hat g_j = g(t_j)/\|g(t_j)\|$ and a learned scale $1/\tau$ the logits are
$S_{ij} = \tau^{-1}\langle\hat f_i, \hat g_j\rangle$ and the loss is the *symmetric* InfoNCE (A. van den Oord et al.,
"Representation Learning with Contrastive Predictive Coding", 2018, arXiv:1807.03748)

$$\mathcal L = \tfrac12\big[\mathrm{CE}(S, I) + \mathrm{CE}(S^\top, I)\big],$$

a softmax over the captions for each image and one over the images for each caption. Zero-shot classification
embeds one prompt per class and takes $\hat y = \arg\max_c \cos(f(x), g(\text{prompt}_c))$. The **modality gap**
(W. Liang et al., "Mind the Gap: Understanding the Modality Gap in Multi-modal Contrastive Representation Learning",
2022, arXiv:2203.02053) is the distance between the centroids of the two unit-normalised clouds.

Our towers: a tiny ViT (A. Dosovitskiy et al., "An Image is Worth 16x16 Words", 2020, arXiv:2010.11929) over the
16 patches of 2x2 pixels of a digit, and a bag-of-words text tower over synthetic captions.

**DrLIM** (R. Hadsell, S. Chopra, Y. LeCun, "Dimensionality Reduction by Learning an Invariant Mapping", CVPR
2006) learns $G_W$ from neighbourhood relations only: with $D = \|G_W(x_1) - G_W(x_2)\|$ and $Y = 0$ for
neighbours, $Y = 1$ otherwise, $L = (1-Y)\tfrac12 D^2 + Y\tfrac12\max(0, m - D)^2$.

Shapes: ``B`` batch, ``P`` patches, ``L`` caption length, ``d`` embedding width, ``V`` vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from manifold_course.seeding import manual_seed, numpy_rng

# ---------------------------------------------------------------- synthetic captions

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# {w} is the number word, {n} the numeral: two synonyms of one class ("seven" and "7")
TRAIN_TEMPLATES = ("a handwritten {w}", "the digit {n}", "number {w}", "a photo of the number {w}",
                   "a scan of a {n}", "the digit {w}", "number {n}")
HELD_OUT_TEMPLATES = ("someone wrote a {w} here", "an image of the numeral {n}", "a handwritten {n}")
SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>", ";")


def caption(label: int, template: str) -> str:
    """The caption of class ``label`` written with ``template`` (which uses {w} and/or {n})."""
    return template.format(w=DIGIT_WORDS[label], n=str(label))


class WordTokenizer:
    """Whitespace words to ids; ``<pad>`` is 0 and ``<unk>`` 1. The vocabulary is fixed from the training
    templates: the held-out templates' new words ("someone", "numeral") map to ``<unk>``."""

    def __init__(self, words):
        self.vocab = list(SPECIALS) + sorted(set(words) - set(SPECIALS))
        self.index = {w: i for i, w in enumerate(self.vocab)}

    @classmethod
    def for_digits(cls) -> "WordTokenizer":
        words = {w for t in TRAIN_TEMPLATES for c in range(10) for w in caption(c, t).split()}
        return cls(words)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        return [self.index.get(w, 1) for w in text.split()]

    def decode(self, ids) -> str:
        return " ".join(self.vocab[int(i)] for i in ids)

    def batch(self, texts, length: int | None = None) -> torch.Tensor:
        """Captions to a (B, L) int64 tensor padded with 0."""
        ids = [self.encode(t) for t in texts]
        L = length or max(len(i) for i in ids)
        out = torch.zeros(len(ids), L, dtype=torch.long)
        for r, i in enumerate(ids):
            out[r, :len(i)] = torch.tensor(i[:L])
        return out


# ---------------------------------------------------------------- the two towers


def patchify(x: torch.Tensor, side: int = 8, patch: int = 2) -> torch.Tensor:
    """(B, side*side) images -> (B, P, patch*patch) non-overlapping patches in row-major order."""
    B = x.shape[0]
    g = side // patch
    x = x.reshape(B, g, patch, g, patch)                          # (B, gy, py, gx, px)
    return x.permute(0, 1, 3, 2, 4).reshape(B, g * g, patch * patch)


class EncoderBlock(nn.Module):
    """A bidirectional Pre-Norm transformer layer (no causal mask: every patch sees every patch)."""

    def __init__(self, width: int, n_heads: int = 2):
        super().__init__()
        self.n_heads = n_heads
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.ReLU(), nn.Linear(2 * width, width))

    def forward(self, z: torch.Tensor) -> torch.Tensor:            # (B, P, W) -> (B, P, W)
        B, P, W = z.shape
        q, k, v = self.qkv(self.norm1(z)).view(B, P, 3, self.n_heads, W // self.n_heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v)                 # (B, H, P, W/H), softmax(q k^T / sqrt(d)) v
        z = z + self.out(a.transpose(1, 2).reshape(B, P, W))
        return z + self.mlp(self.norm2(z))


class ImageTower(nn.Module):
    """A one-layer ViT: patch embedding + learned positions, one bidirectional encoder layer, then an MLP head.

    ``forward(x)`` (B, 64) -> (B, d); ``patch_features(x)`` -> Z_v (B, 16, width), the contextual patch tokens
    that a LLaVA-style projector reads (LLaVA reads the ViT's patch features, not its pooled embedding)."""

    def __init__(self, d_embed: int = 32, width: int = 32, n_patches: int = 16, patch_dim: int = 4):
        super().__init__()
        self.embed = nn.Linear(patch_dim, width)
        self.pos = nn.Parameter(0.02 * torch.randn(n_patches, width))
        self.encoder = EncoderBlock(width)
        self.head = nn.Sequential(nn.Linear(n_patches * width, 128), nn.ReLU(), nn.Linear(128, d_embed))

    def patch_features(self, x: torch.Tensor) -> torch.Tensor:
        z = self.embed(patchify(x)) + self.pos                       # (B, P, width)
        return self.encoder(z)                                      # (B, P, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.patch_features(x).flatten(1))         # (B, d)


class TextTower(nn.Module):
    """Bag of words: the mean of the word embeddings (padding excluded), then an MLP. Word order is invisible."""

    def __init__(self, vocab_size: int, d_embed: int = 32, width: int = 64):
        super().__init__()
        self.emb = nn.Embedding(vocab_size, width, padding_idx=0)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, d_embed))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:          # (B, L) int64 -> (B, d)
        mask = (ids != 0).float().unsqueeze(-1)                     # (B, L, 1)
        bag = (self.emb(ids) * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return self.mlp(bag)


class MiniCLIP(nn.Module):
    """Image tower, text tower and a learned log-scale, initialised at CLIP's $1/\\tau = 1/0.07$."""

    def __init__(self, vocab_size: int, d_embed: int = 32):
        super().__init__()
        self.image = ImageTower(d_embed)
        self.text = TextTower(vocab_size, d_embed)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def scale(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=100.0)                # CLIP clips 1/tau at 100


# ---------------------------------------------------------------- the loss and the measurements


def clip_loss(img_emb: torch.Tensor, txt_emb: torch.Tensor, logit_scale) -> torch.Tensor:
    r"""Symmetric InfoNCE of N matched pairs: img_emb (N, d), txt_emb (N, d), ``logit_scale`` = $1/\tau$ (> 0).

    Row i of each is pair i. Both are unit-normalised here; returns a 0-dim tensor."""
    img = F.normalize(img_emb, dim=-1)
    txt = F.normalize(txt_emb, dim=-1)
    logits = logit_scale * img @ txt.T                               # (N, N): S_ij = <f_i, g_j> / tau
    target = torch.arange(len(img), device=img.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def zero_shot_predict(img_emb: torch.Tensor, class_txt_emb: torch.Tensor) -> torch.Tensor:
    """(N, d) images, (C, d) class prompts -> (N,) int64: the class of largest cosine similarity."""
    sim = F.normalize(img_emb, dim=-1) @ F.normalize(class_txt_emb, dim=-1).T   # (N, C)
    return sim.argmax(dim=-1)


def recall_at_k(sim: torch.Tensor, k: int) -> float:
    """sim (N, M), row i's match is column i: the fraction of rows whose match has fewer than k columns scoring
    strictly higher (a tie is counted in the match's favour)."""
    n = sim.shape[0]
    match = sim[torch.arange(n), torch.arange(n)].unsqueeze(1)     # (N, 1)
    rank = (sim > match).sum(dim=1)                                 # 0 = the match is first
    return float((rank < k).double().mean())


def modality_gap(img_emb: torch.Tensor, txt_emb: torch.Tensor) -> float:
    r"""$\|\frac1N\sum_i \hat f_i - \frac1M\sum_j \hat g_j\|$: the distance between the centroids of the unit vectors."""
    gap = F.normalize(img_emb, dim=-1).mean(0) - F.normalize(txt_emb, dim=-1).mean(0)
    return float(gap.norm())


@dataclass(frozen=True)
class CLIPRun:
    model: MiniCLIP
    losses: list


def train_clip(model: MiniCLIP, images: torch.Tensor, labels: torch.Tensor, tok: WordTokenizer, steps: int,
               batch_size: int = 128, lr: float = 3e-3, seed: int = 0, templates=TRAIN_TEMPLATES) -> CLIPRun:
    """AdamW on random batches of (image, caption) pairs; each caption drawn from ``templates`` afresh per step.

    Two images of one class in a batch give identical captions: CLIP's false negatives, kept as they are."""
    rng = numpy_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    all_caps = [[tok.encode(caption(c, t)) for t in templates] for c in range(10)]
    L = max(len(i) for caps in all_caps for i in caps)
    table = torch.zeros(10, len(templates), L, dtype=torch.long)   # every caption of every class, padded
    for c in range(10):
        for j, ids in enumerate(all_caps[c]):
            table[c, j, :len(ids)] = torch.tensor(ids)
    losses = []
    model.train()
    for _ in range(steps):
        idx = torch.as_tensor(rng.choice(len(images), batch_size, replace=False))
        which = torch.as_tensor(rng.integers(0, len(templates), batch_size))
        ids = table[labels[idx], which]                             # (B, L)
        loss = clip_loss(model.image(images[idx]), model.text(ids), model.scale())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    return CLIPRun(model, losses)


@torch.no_grad()
def class_prompt_embeddings(model: MiniCLIP, tok: WordTokenizer, templates) -> torch.Tensor:
    """(10, d): per class, the mean of the unit embeddings of its prompts over ``templates`` (prompt ensembling)."""
    out = []
    for c in range(10):
        e = model.text(tok.batch([caption(c, t) for t in templates]))
        out.append(F.normalize(e, dim=-1).mean(0))
    return torch.stack(out)


# ---------------------------------------------------------------- DrLIM on rotations (experiment F8c)


def drlim_loss(z1: torch.Tensor, z2: torch.Tensor, similar: torch.Tensor, margin: float) -> torch.Tensor:
    r"""Mean over pairs of $\tfrac12 D^2$ (similar) or $\tfrac12\max(0, m - D)^2$ (dissimilar); z1, z2 (N, k),
    ``similar`` (N,) bool. Hadsell, Chopra & LeCun 2006 write $Y = 0$ for similar pairs."""
    diff = z1 - z2
    pull = 0.5 * (diff**2).sum(-1)                                  # 0.5 D^2, smooth at D = 0
    D = diff.norm(dim=-1)                                           # (N,)
    push = 0.5 * torch.clamp(margin - D, min=0.0) ** 2
    return torch.where(similar, pull, push).mean()


def rotated_copies(image: np.ndarray, angles_deg, upsample: int = 2) -> np.ndarray:
    """(len(angles), (8 * upsample)**2) copies of one 8x8 image, upsampled (bilinear) and rotated about its centre."""
    from scipy import ndimage

    big = ndimage.zoom(np.asarray(image, dtype=np.float64).reshape(8, 8), upsample, order=1)
    out = [ndimage.rotate(big, float(a), reshape=False, order=1, mode="constant") for a in angles_deg]
    return np.clip(np.stack(out), 0, None).reshape(len(out), -1)


def cyclic_neighbours(n: int, k: int = 1) -> np.ndarray:
    """(n, n) bool: i and j are neighbours when their angles are at most k steps apart on the circle."""
    i = np.arange(n)
    step = np.abs(i[:, None] - i[None, :])
    return (np.minimum(step, n - step) <= k) & (step > 0)


def train_drlim(X: torch.Tensor, neighbours: np.ndarray, dim: int = 2, steps: int = 300, margin: float = 1.0,
                lr: float = 1e-2, seed: int = 0) -> tuple[nn.Module, list]:
    """An MLP G_W: X (n, D) -> (n, dim), trained full-batch with :func:`drlim_loss` on all pairs i < j.

    Neighbour pairs are few (2k of the n - 1 partners of a point), so the loss is the average of the neighbours'
    mean and the non-neighbours' mean: both kinds of pair weigh the same."""
    manual_seed(seed)
    net = nn.Sequential(nn.Linear(X.shape[1], 64), nn.Tanh(), nn.Linear(64, dim))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    i, j = np.triu_indices(len(X), k=1)
    near = torch.as_tensor(neighbours[i, j])
    i, j = torch.as_tensor(i), torch.as_tensor(j)
    losses = []
    for _ in range(steps):
        z = net(X)
        loss = 0.5 * (drlim_loss(z[i[near]], z[j[near]], near[near], margin)
                      + drlim_loss(z[i[~near]], z[j[~near]], near[~near], margin))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return net, losses

