r"""Grokking modular addition with the course's GPT, and the measurements the capstone points at it.

The task (A. Power, Y. Burda, H. Edwards, I. Babuschkin, V. Misra, "Grokking: Generalization Beyond Overfitting on
Small Algorithmic Datasets", 2022, arXiv:2201.02177): the input is the three tokens ``a b =`` (vocabulary
$V = p + 1$, the token ``p`` is ``=``), the answer is $(a + b) \bmod p$, read at the last position. A fraction of
the $p^2$ pairs is the training set, the rest the test set; training is full-batch. With weight decay the model
first memorises (train accuracy 1, test accuracy near chance), then, much later, generalises: it *groks*.

What the capstone measures on the model:

- **Key frequencies** (N. Nanda, L. Chan, T. Lieberum, J. Smith, J. Steinhardt, "Progress measures for grokking via
  mechanistic interpretability", ICLR 2023, arXiv:2301.05217): the discrete Fourier transform of the embedding
  rows $E_0..E_{p-1}$ over the residue index; a grokked network concentrates its power on a few frequencies $k$,
  each a circle $a \mapsto (\cos 2\pi k a/p, \sin 2\pi k a / p)$ (:func:`fourier_power`,
  :func:`fourier_key_frequencies`, :func:`fourier_concentration`).
- **Parallelograms** (Z. Liu, O. Kitouni, N. Nolte, E. J. Michaud, M. Tegmark, M. Williams, "Towards Understanding
  Grokking: An Effective Theory of Representation Learning", NeurIPS 2022, arXiv:2205.10343): the fraction of
  quadruples with $a + b \equiv c + d$ whose embeddings close a parallelogram, $E_a + E_b \approx E_c + E_d$
  (:func:`parallelogram_score`).
- **Grokking step**: the first evaluation step from which test accuracy stays above a threshold (:func:`grokking_step`).
- **Local Lipschitz** (Part 2 C1): output change over embedding perturbation (:func:`manifold_course.lens.local_lipschitz`,
  through :func:`embedding_forward`).
- **INT4**: every 2-D weight rounded to 4 bits, symmetric per output channel, with Volume 6's
  :func:`manifold_course.systems.quantize.per_channel_quantize` (:func:`quantize_int4_per_channel`,
  :func:`quantize_model_int4`).

Muon (K. Jordan et al., 2024; "Muon is Scalable for LLM Training", J. Liu et al., 2025, arXiv:2502.16982) updates the
2-D matrices inside the blocks; embeddings, norms and the head stay with AdamW, as its authors do.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from manifold_course import lens
from manifold_course.nn.gpt import GPT, GPTConfig
from manifold_course.optim.msign import Muon
from manifold_course.seeding import manual_seed, torch_generator
from manifold_course.systems.quantize import per_channel_quantize


@dataclass(frozen=True)
class GrokConfig:
    p: int = 23                     # the modulus; vocabulary p + 1 (the last token is "=")
    frac: float = 0.6               # training fraction of the p^2 pairs
    d_model: int = 32               # D
    n_layers: int = 1
    n_heads: int = 4
    steps: int = 400                # full-batch steps
    lr: float = 3e-3                # AdamW (all parameters, or the non-matrix ones with Muon)
    weight_decay: float = 1.0       # AdamW's decoupled weight decay
    muon_lr: float = 0.02
    muon_weight_decay: float = 0.1
    eval_every: int = 10
    grad_clip: float | None = None  # max global gradient norm (None: no clipping)


@dataclass
class ModularData:
    """Inputs ``x`` (N, 3) int64 rows ``a b =`` and answers ``y`` (N,) for the training and the test pairs."""
    p: int
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    def all_pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every pair, in the order a * p + b: (p^2, 3) and (p^2,)."""
        return modular_inputs(self.p)


def modular_inputs(p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All p^2 inputs ``a b =`` in the order a * p + b -> x (p^2, 3) int64, y (p^2,) = (a + b) mod p."""
    a = torch.arange(p).repeat_interleave(p)                      # (p^2,)  0 0 .. 0 1 1 ..
    b = torch.arange(p).repeat(p)                                 # (p^2,)  0 1 .. p-1 0 1 ..
    x = torch.stack([a, b, torch.full_like(a, p)], dim=1)        # (p^2, 3)
    return x, (a + b) % p


def modular_addition_split(p: int, frac: float, seed: int = 0) -> ModularData:
    """A seeded random split of the p^2 pairs: round(frac p^2) for training, the rest for the test set."""
    if not 0 < frac < 1:
        raise ValueError(f"frac must lie strictly between 0 and 1, got {frac}")
    x, y = modular_inputs(p)
    perm = torch.randperm(p * p, generator=torch_generator(seed))
    n = int(round(frac * p * p))
    tr, te = perm[:n], perm[n:]
    return ModularData(p, x[tr], y[tr], x[te], y[te])


def make_model(cfg: GrokConfig = GrokConfig(), seed: int = 0) -> GPT:
    """The course's GPT (RMSNorm, RoPE, SwiGLU) for ``a b =``: vocabulary p + 1, context 3, untied head."""
    manual_seed(seed)
    return GPT(GPTConfig(vocab_size=cfg.p + 1, block_size=3, d_model=cfg.d_model, n_layers=cfg.n_layers,
                         n_heads=cfg.n_heads, tie_weights=False))


def answer_logits(model: nn.Module, x: torch.Tensor, p: int) -> torch.Tensor:
    """Logits over the p residues at the answer position (the last token): (N, 3) -> (N, p)."""
    return model(x)[:, -1, :p]


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, p: int) -> float:
    was = model.training
    model.eval()
    acc = float((answer_logits(model, x, p).argmax(-1) == y).double().mean())
    model.train(was)
    return acc


def split_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(hidden 2-D matrices inside the blocks, for Muon; everything else: embedding, norms, head, for AdamW)."""
    hidden, rest = [], []
    for name, prm in model.named_parameters():
        (hidden if prm.ndim == 2 and name.startswith("blocks.") else rest).append(prm)
    return hidden, rest


def make_optimizers(model: nn.Module, optimizer: str, cfg: GrokConfig) -> list[torch.optim.Optimizer]:
    adam = dict(lr=cfg.lr, betas=(0.9, 0.98), weight_decay=cfg.weight_decay)
    if optimizer == "adamw":
        return [torch.optim.AdamW(model.parameters(), **adam)]
    if optimizer == "muon":
        hidden, rest = split_parameters(model)
        return [Muon(hidden, lr=cfg.muon_lr, weight_decay=cfg.muon_weight_decay), torch.optim.AdamW(rest, **adam)]
    raise ValueError(f"optimizer must be 'adamw' or 'muon', got {optimizer!r}")


@dataclass
class Curves:
    """What :func:`train_grokking` records every ``eval_every`` steps (and at the last step)."""
    steps: list[int] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    checkpoints: dict[int, dict] = field(default_factory=dict)   # step -> state_dict copy (those asked for)
    seconds: float = 0.0


def train_grokking(model: nn.Module, data: ModularData, optimizer: str = "adamw", cfg: GrokConfig = GrokConfig(),
                   steps: int | None = None, keep: tuple[int, ...] | str = (), patience: int | None = None,
                   target: float = 0.95, progress: bool = False) -> Curves:
    """Full-batch training on the training pairs with AdamW or Muon + AdamW; cross-entropy at the answer position.

    Accuracy and loss on both splits are recorded at steps 0, eval_every, 2 eval_every, ... (the state after that many
    updates) and after the last step; ``keep`` lists steps whose weights are copied into ``curves.checkpoints``
    (``"all"``: every recorded step). With ``patience``, training stops once test accuracy has been >= ``target``
    at ``patience`` evaluations in a row (the run has grokked; the last record is that step).
    """
    steps = cfg.steps if steps is None else steps
    opts = make_optimizers(model, optimizer, cfg)
    p, cur = data.p, Curves()
    t0 = time.perf_counter()

    def record(s: int) -> None:
        with torch.no_grad():
            model.eval()
            for x, y, acc, loss in ((data.x_train, data.y_train, cur.train_acc, cur.train_loss),
                                    (data.x_test, data.y_test, cur.test_acc, cur.test_loss)):
                logits = answer_logits(model, x, p)
                acc.append(float((logits.argmax(-1) == y).double().mean()))
                loss.append(float(F.cross_entropy(logits, y)))
            model.train()
        cur.steps.append(s)
        if keep == "all" or s in keep:
            cur.checkpoints[s] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    it = range(steps)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc=f"grokking ({optimizer})")
    model.train()
    streak = 0
    for s in it:
        if s % cfg.eval_every == 0 or (keep != "all" and s in keep):
            record(s)
            streak = streak + 1 if cur.test_acc[-1] >= target else 0
            if patience is not None and streak >= patience:
                break
        loss = F.cross_entropy(answer_logits(model, data.x_train, p), data.y_train)
        for o in opts:
            o.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        for o in opts:
            o.step()
    else:
        record(steps)
    model.eval()
    cur.seconds = time.perf_counter() - t0
    return cur


def grokking_step(test_acc, steps, threshold: float = 0.9) -> int | None:
    """The first step from which test accuracy is >= threshold at every later evaluation; None if it never settles."""
    acc = np.asarray(test_acc, dtype=np.float64)
    if len(acc) != len(steps):
        raise ValueError("test_acc and steps must have the same length")
    below = np.flatnonzero(~(acc >= threshold))                   # NaN counts as below
    first = 0 if len(below) == 0 else int(below[-1]) + 1
    return None if first >= len(acc) else int(steps[first])


def memorisation_step(train_acc, steps, threshold: float = 1.0) -> int | None:
    """The first step from which training accuracy stays >= threshold (the network has memorised)."""
    return grokking_step(train_acc, steps, threshold)


# ---------------------------------------------------------------- the embedding's geometry


def residue_embedding(model: GPT, p: int) -> torch.Tensor:
    """The token embeddings of the residues 0..p-1 (not of "="): (p, D) float32, detached."""
    return model.tok_emb.weight[:p].detach().float().cpu().clone()


def fourier_power(E) -> np.ndarray:
    r"""Power of the embedding matrix E (p, D) at each frequency $k = 0..\lfloor p/2 \rfloor$ over the residue index:
    $P_k = \sum_j |\hat E_{kj}|^2$, $\hat E_{kj} = \sum_a E_{aj} e^{-2\pi i k a / p}$ (``np.fft.rfft`` along axis 0)."""
    E = np.asarray(E.detach().cpu() if isinstance(E, torch.Tensor) else E, dtype=np.float64)
    return (np.abs(np.fft.rfft(E, axis=0)) ** 2).sum(axis=1)     # (p // 2 + 1,)


def fourier_key_frequencies(E, k: int) -> list[int]:
    """The k frequencies in 1..floor(p/2) with the most power in E (p, D), strongest first (ties: lower frequency)."""
    P = fourier_power(E)[1:]                                      # drop k = 0 (the mean row)
    order = np.lexsort((np.arange(len(P)), -P))                   # by power descending, then by frequency
    return [int(i) + 1 for i in order[:k]]


def fourier_concentration(E, k: int) -> float:
    """Share of the non-constant power of E (p, D) carried by its k key frequencies (about k / (p // 2) if random)."""
    P = fourier_power(E)[1:]
    total = P.sum()
    return float(np.sort(P)[::-1][:k].sum() / total) if total > 0 else 0.0


def key_plane(E, k: int) -> np.ndarray:
    r"""The centred rows of E (p, D) projected on the plane of frequency k: an orthonormal basis of
    $\mathrm{span}(\mathrm{Re}\,\hat E_k, \mathrm{Im}\,\hat E_k)$ -> (p, 2). A circle of the network's shows as a loop here."""
    E = np.asarray(E.detach().cpu() if isinstance(E, torch.Tensor) else E, dtype=np.float64)
    F_k = np.fft.rfft(E, axis=0)[k]                               # (D,) complex
    basis = np.linalg.qr(np.stack([F_k.real, F_k.imag], axis=1))[0]   # (D, 2)
    return (E - E.mean(axis=0)) @ basis


def key_plane_loop(E, k: int | None = None, seed: int = 0) -> float:
    """``lens.loops``' h1_rel of :func:`key_plane` (k: the strongest frequency by default): about 1 for residues
    evenly spaced on a circle, small for a blob."""
    from manifold_course import lens

    k = fourier_key_frequencies(E, 1)[0] if k is None else k
    X = key_plane(E, k)
    return float(lens.loops(X, n_points=len(X), seed=seed)["h1_rel"])


def clearest_key_loop(E, ks: list[int] | None = None, n: int = 3, seed: int = 0) -> float:
    """The largest :func:`key_plane_loop` over the planes of frequencies ``ks`` (default: E's ``n`` key frequencies).

    A network that uses several key frequencies draws its circle across several planes, each holding part of the
    structure, and which plane is strongest is an accident of training: the clearest of the key planes is the
    steadier measure of whether a loop is there."""
    ks = fourier_key_frequencies(E, n) if ks is None else ks
    return max(key_plane_loop(E, k, seed) for k in ks)


def parallelogram_score(E, delta: float = 0.1) -> float:
    r"""Liu et al.'s representation quality index for addition mod p, with p = len(E).

    Over all quadruples $(a, b, c, d)$ with $a + b \equiv c + d \pmod p$ and $\{a, b\} \ne \{c, d\}$: the fraction
    with $\|E_a + E_b - E_c - E_d\| \le \delta\, s$, where $s$ is the RMS norm of the centred rows $E_a - \bar E$.
    Quadruples are ordered: each sum class holds the $p$ ordered pairs $(a, c - a)$, so there are $p \cdot p(p-2)$ or
    so non-trivial quadruples. 1 = every sum class collapses to one point; near 0 for a random embedding.
    """
    E = torch.as_tensor(np.asarray(E.detach().cpu() if isinstance(E, torch.Tensor) else E), dtype=torch.float64)
    p = E.shape[0]
    Ec = E - E.mean(0, keepdim=True)
    s = Ec.pow(2).sum(1).mean().sqrt()
    if s == 0:
        return 1.0
    a = torch.arange(p)
    hits = total = 0
    for c in range(p):                                            # sum class c: pairs (a, c - a)
        S = Ec[a] + Ec[(c - a) % p]                               # (p, D) one pair sum per a
        dist = torch.cdist(S, S)                                  # (p, p)
        same = (a[:, None] == a[None, :]) | (a[:, None] == ((c - a) % p)[None, :])   # {a, b} = {c, d}
        hits += int(((dist <= delta * s) & ~same).sum())
        total += int((~same).sum())
    return hits / total


# ---------------------------------------------------------------- Lipschitz, quantisation, the report


def embedding_forward(model: GPT, p: int):
    """f(emb) -> answer logits (N, p) for token embeddings emb (N, 3, D): perturb the embedding, not the ids."""
    def f(emb: torch.Tensor) -> torch.Tensor:
        return model(None, inputs_embeds=emb)[:, -1, :p]
    return f


def quantize_int4_per_channel(w: torch.Tensor) -> torch.Tensor:
    """INT4 symmetric per output channel (rows of w (out, in)): Volume 6's per_channel_quantize(w, 4), dequantised."""
    q, s = per_channel_quantize(w, bits=4)
    return q.to(w.dtype) * s.to(w.dtype)


def quantize_model_int4(model: nn.Module) -> nn.Module:
    """A copy of the model with every 2-D weight (embedding, attention, MLP, head) INT4 per channel; norms kept."""
    qm = copy.deepcopy(model)
    with torch.no_grad():
        for prm in qm.parameters():
            if prm.ndim == 2:
                prm.copy_(quantize_int4_per_channel(prm))
    return qm.eval()


def embedding_loop(model: GPT, p: int, seed: int = 0) -> float:
    """The longest H1 bar of the residue embeddings over their median pairwise distance (lens.loops' h1_rel)."""
    from manifold_course import lens

    return float(lens.loops(residue_embedding(model, p), n_points=p, seed=seed)["h1_rel"])


def embedding_h1_max(model: GPT, p: int, seed: int = 0) -> float:
    """The longest H1 bar of the p residue embeddings (absolute, in embedding units)."""
    from manifold_course import lens

    return float(lens.loops(residue_embedding(model, p), n_points=p, seed=seed)["h1_max"])


def residual_layers(model: GPT) -> list[str]:
    """Where the residual stream changes at the answer position: each block's attention output, then the block's output.

    (The embedding itself is useless there: the answer position always holds "=", one point. Its attention output is
    the residual stream after attention up to that constant translation, so it has the same geometry.)"""
    return [name for i in range(len(model.blocks)) for name in (f"blocks.{i}.attn", f"blocks.{i}")]


def last_token(name: str, t: torch.Tensor) -> torch.Tensor:
    """lens ``select``: keep the answer position (B, T, D) -> (B, D)."""
    return t[:, -1, :]


def capstone_report(model: GPT, data: ModularData, seed: int = 0) -> dict:
    """The capstone's summary of a trained model: test accuracy, TwoNN dimension at the answer position of each of
    :func:`residual_layers` (on all p^2 inputs), the longest H1 bar of the residue embeddings (absolute), the median
    over test inputs of the local Lipschitz estimate of the answer logits under perturbation of the token embeddings
    (eps 1e-2, 8 directions), and the INT4 (per channel) test accuracy."""
    from manifold_course import lens

    p = data.p
    x_all, _ = data.all_pairs()
    acts = lens.capture(model, x_all, residual_layers(model), select=last_token)
    ids = [float(lens.intrinsic_dimension(a, seed=seed)["twonn"]) for a in acts.values()]
    emb = model.tok_emb(data.x_test).detach()
    lip = lens.local_lipschitz(embedding_forward(model, p), emb, eps=1e-2, n_dirs=8, generator=torch_generator(seed))
    return {"acc": accuracy(model, data.x_test, data.y_test, p), "id_per_layer": ids,
            "h1_max_persistence": embedding_h1_max(model, p, seed),
            "lipschitz": float(lip.median()),
            "acc_int4": accuracy(quantize_model_int4(model), data.x_test, data.y_test, p)}
