r"""The manifold lens: one instrument that looks at the representations of any trained model, layer by layer.

``look(model, inputs, layers)`` records the named layers' outputs with forward hooks (the model is not changed)
and measures, per layer, the shape of the point cloud of representations:

- **intrinsic dimension** (Part 2 D1, D2): TwoNN (E. Facco, M. d'Errico, A. Rodriguez, A. Laio, Scientific Reports
  2017, arXiv:1803.06992), the number of principal components that explain 95 % of the variance, and the
  participation ratio $(\sum\lambda_i)^2/\sum\lambda_i^2$ of the covariance eigenvalues $\lambda_i$;
- **topology** (P1): the Vietoris-Rips persistence of the cloud (ripser), its longest $H_1$ bar (the most persistent
  loop) and that bar divided by the median pairwise distance, which makes it comparable across layers;
- **coverage** (C2): the fraction of units never active (output above a threshold on no input) and the entropy of
  the units' mean absolute activation, normalised by $\log D$ (1 = all $D$ units used evenly);
- **isotropy** (the Gram-matrix view of seed 002): the mean $|\cos|$ between centred representations of different
  inputs (0 for an isotropic cloud) and the share of the variance on the first principal component;
- **continuity** (C1): a local Lipschitz estimate, $\max_u \|h(x + \varepsilon u) - h(x)\| / \varepsilon$ over random
  unit directions $u$ of a perturbation made at the input or at a named module (e.g. a GPT's token embedding),
  the median over the inputs.

Every measurement reuses :mod:`manifold_course.geometry` (intrinsic dimension, topology); the lens composes them.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from manifold_course.geometry.intrinsic_dimension import (pca_explained_variance, spectrum_effective_rank,
                                                         spectrum_participation_ratio, twonn_id)
from manifold_course.geometry.topology import max_persistence, persistence
from manifold_course.seeding import numpy_rng, torch_generator

INPUT = "input"

Forward = Callable[[nn.Module, object], object]
Select = Callable[[str, torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------------------------------- capture


def _first_tensor(out) -> torch.Tensor:
    """The tensor a module returned: itself, or the first element of a tuple / list (a GPT block returns (x, cache))."""
    while isinstance(out, (tuple, list)):
        if not out:
            raise TypeError("a hooked module returned an empty tuple; the lens needs a tensor")
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"a hooked module returned {type(out).__name__}, not a tensor")
    return out


def as_points(t: torch.Tensor) -> torch.Tensor:
    """Reshape one layer's output to a point cloud (N, D): (B, D) kept, (B, T, D) -> (B*T, D), (B, C, H, W) -> (B, C*H*W)."""
    t = t.detach().float().cpu()
    if t.ndim == 1:
        return t[:, None]
    if t.ndim == 3:
        return t.reshape(-1, t.shape[-1])
    return t.reshape(t.shape[0], -1)


def _modules(model: nn.Module, names: Sequence[str]) -> dict[str, nn.Module]:
    table = dict(model.named_modules())
    missing = [n for n in names if n != INPUT and n not in table]
    if missing:
        some = ", ".join(repr(n) for n in list(table)[1:12])
        raise KeyError(f"no module named {missing} in this model; names look like: {some} ...")
    return {n: table[n] for n in names if n != INPUT}


def _run(model: nn.Module, inputs, layers: Sequence[str], forward: Forward | None,
         perturb: tuple[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Raw first-tensor outputs of the named layers (batch first), optionally adding a perturbation at one module."""
    mods = _modules(model, list(layers) + ([perturb[0]] if perturb and perturb[0] != INPUT else []))
    seen: dict[str, torch.Tensor] = {}
    handles = []

    def recorder(name):
        def hook(_module, _args, out):
            seen[name] = _first_tensor(out).detach()
        return hook

    def adder(delta):
        def hook(_module, _args, out):
            if isinstance(out, tuple):
                return (out[0] + delta.to(out[0].dtype),) + tuple(out[1:])
            return out + delta.to(out.dtype)
        return hook

    x = inputs
    if perturb is not None and perturb[0] == INPUT:
        x = inputs + perturb[1].to(inputs.dtype)
    was_training = model.training
    try:
        if perturb is not None and perturb[0] != INPUT:      # registered first, so recorders see the perturbed output
            handles.append(mods[perturb[0]].register_forward_hook(adder(perturb[1])))
        for name in layers:
            if name != INPUT:
                handles.append(mods[name].register_forward_hook(recorder(name)))
        model.eval()
        with torch.no_grad():
            forward(model, x) if forward is not None else model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if INPUT in layers:
        if not isinstance(x, torch.Tensor):
            raise TypeError("the layer 'input' needs the inputs as one tensor")
        seen[INPUT] = x.detach()
    never = [n for n in layers if n not in seen]
    if never:
        raise RuntimeError(f"the forward pass never ran the module(s) {never}; check the layer names")
    return {n: seen[n] for n in layers}


def capture(model: nn.Module, inputs, layers: Sequence[str], *, forward: Forward | None = None,
            select: Select | None = None) -> dict[str, torch.Tensor]:
    """Outputs of the named layers on ``inputs`` as point clouds ``{name: (N, D) float32}``, via forward hooks.

    ``layers`` are names from ``model.named_modules()`` (``"input"`` means the inputs). The hooks are removed and
    the training flag restored afterwards; the model runs in eval mode without gradients. ``forward(model, inputs)``
    replaces ``model(inputs)`` (e.g. a denoiser that also takes a time step); ``select(name, output) -> (N, D)``
    replaces the default reshape :func:`as_points` (e.g. keep a sequence model's last position only).
    """
    raw = _run(model, inputs, layers, forward)
    out = {}
    for name, t in raw.items():
        pts = select(name, t) if select is not None else t
        out[name] = as_points(pts) if select is None else pts.detach().float().cpu().reshape(pts.shape[0], -1)
    return out


# ---------------------------------------------------------------------------------------------- measurements


def _subsample(X: torch.Tensor | np.ndarray, max_points: int, seed: int) -> np.ndarray:
    X = X.detach().cpu().double().numpy() if isinstance(X, torch.Tensor) else np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"expected a point cloud (N, D), got shape {X.shape}")
    if len(X) > max_points:
        X = X[np.sort(numpy_rng(seed).choice(len(X), max_points, replace=False))]
    return X


def intrinsic_dimension(X, max_points: int = 1000, seed: int = 0) -> dict[str, float]:
    """TwoNN, PCA-95 % and participation ratio of the cloud X (N, D) (at most ``max_points`` rows, a seeded subsample).

    TwoNN uses the distinct points only, and is NaN when fewer than three remain (e.g. a dead layer).
    """
    X = _subsample(X, max_points, seed)
    distinct = np.unique(X, axis=0)                    # repeated points (a token seen twice) carry no distance
    try:
        with np.errstate(invalid="raise", divide="raise"):
            tw = twonn_id(distinct)
    except (ValueError, FloatingPointError):
        tw = float("nan")
    if not np.isfinite(X).all() or np.allclose(X, X[:1]):
        return {"twonn": tw, "pca95": 0, "participation_ratio": float("nan")}
    ev = pca_explained_variance(X)                     # one SVD serves both numbers
    cum = np.cumsum(ev)
    return {"twonn": tw, "pca95": int(np.searchsorted(cum, 0.95) + 1),
            "participation_ratio": spectrum_participation_ratio(ev)}


def loops(X, n_points: int = 200, seed: int = 0) -> dict[str, object]:
    """Rips persistence of at most ``n_points`` points of X (N, D): H0 and H1 diagrams, the longest H1 bar, and that
    bar over the median pairwise distance (``h1_rel``, scale-free).

    Up to ``4 n_points`` rows are drawn at random (seeded), then ripser keeps ``n_points`` of them by greedy
    farthest-point sampling, so the diagram approximates the full cloud's up to its covering radius.
    """
    from scipy.spatial.distance import pdist

    X = _subsample(X, 4 * n_points, seed)
    if len(X) < 3:
        raise ValueError("persistence needs at least 3 points")
    h0, h1 = persistence(X, maxdim=1, n_perm=n_points)[:2]
    scale = float(np.median(pdist(X[:n_points])))
    h1_max = max_persistence(h1)
    return {"h0": h0, "h1": h1, "h1_max": h1_max, "h1_rel": h1_max / scale if scale > 0 else 0.0}


def coverage(A, threshold: float = 0.0) -> dict[str, float]:
    r"""Coverage of the units of activations A (N, D) (Part 2 C2).

    ``dead_fraction``: units whose activation exceeds ``threshold`` on no input; ``coverage`` = 1 - that;
    ``entropy``: $-\sum_j p_j\log p_j / \log D$ with $p_j$ unit $j$'s mean $|a|$ over the inputs, normalised to sum
    to one (1 = every unit carries the same mean activity; 0 = one unit carries it all, or nothing is active).
    """
    A = torch.as_tensor(A).detach().double().cpu()
    if A.ndim != 2:
        raise ValueError(f"expected activations (N, D), got shape {tuple(A.shape)}")
    D = A.shape[1]
    alive = (A > threshold).any(dim=0)
    m = A.abs().mean(dim=0)
    total = float(m.sum())
    if D < 2 or total <= 0 or not math.isfinite(total):
        ent = 0.0
    else:
        p = m / total
        p = p[p > 0]
        ent = float(-(p * p.log()).sum() / math.log(D))
    dead = 1.0 - float(alive.double().mean())
    return {"dead_fraction": dead, "coverage": 1.0 - dead, "entropy": ent}


def isotropy(X, max_points: int = 1000, seed: int = 0) -> dict[str, float]:
    r"""How evenly the centred cloud X (N, D) spreads over directions (the Gram-matrix view of seed 002).

    ``mean_abs_cos``: mean $|\cos|$ between the centred representations of two different inputs (0 when they are
    mutually orthogonal, as random vectors in high dimension nearly are; near 1 when all lie on one line);
    ``top_pc_fraction``: the first principal component's share of the variance (1/D when isotropic);
    ``effective_rank``: exp of the entropy of the normalised singular values (geometry.intrinsic_dimension).
    """
    X = _subsample(X, max_points, seed)
    Xc = X - X.mean(axis=0, keepdims=True)
    norms = np.linalg.norm(Xc, axis=1)
    keep = norms > 1e-12 * max(float(norms.max()), 1e-300) if len(norms) else norms > 0
    if keep.sum() < 2:
        return {"mean_abs_cos": float("nan"), "top_pc_fraction": float("nan"), "effective_rank": float("nan")}
    U = Xc[keep] / norms[keep, None]
    C = np.abs(U @ U.T)                                        # (n, n) |cosines|
    n = len(U)
    mean_abs_cos = float((C.sum() - np.trace(C)) / (n * (n - 1)))
    ev = pca_explained_variance(X)                             # sigma_i^2 / sum sigma^2, one SVD for both numbers
    return {"mean_abs_cos": mean_abs_cos, "top_pc_fraction": float(ev[0]),
            "effective_rank": spectrum_effective_rank(np.sqrt(ev))}    # sqrt(ev) is proportional to sigma_i


def _unit_directions(shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """Random directions of the given shape, each batch row of unit Euclidean norm over its non-batch entries."""
    u = torch.randn(shape, generator=gen, dtype=torch.float64)
    return u / u.flatten(1).norm(dim=1).reshape(-1, *([1] * (len(shape) - 1)))


def local_lipschitz(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, eps: float = 1e-2, n_dirs: int = 16,
                    seed: int = 0, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Per point $x_i$ of the batch x (N, ...): $\max_u \|f(x_i + \varepsilon u) - f(x_i)\| / \varepsilon$ over ``n_dirs``
    random unit directions $u$ (norms over all non-batch entries) -> (N,) float64 (Part 2 C1).

    A lower bound on the local Lipschitz constant at scale $\varepsilon$: for a linear map $f(x) = Ax$ it lies below
    $\|A\|_2$ and approaches it as the directions cover the sphere. The directions come from ``generator`` when given,
    else from a fresh generator seeded with ``seed``.
    """
    if not torch.is_floating_point(x):
        raise TypeError("local_lipschitz perturbs x, so x must be a float tensor (for tokens, perturb the embedding)")
    gen = generator if generator is not None else torch_generator(seed)
    with torch.no_grad():
        base = f(x)
        best = torch.zeros(x.shape[0], dtype=torch.float64)
        for _ in range(n_dirs):
            u = _unit_directions(tuple(x.shape), gen).to(x.dtype)
            change = (f(x + eps * u) - base).double().flatten(1).norm(dim=1) / eps
            best = torch.maximum(best, change)
    return best


# ---------------------------------------------------------------------------------------------- the report

COLUMNS = ("layer", "n", "dim", "twonn", "pca95", "participation_ratio", "h1_max", "h1_rel", "dead_fraction",
           "coverage_entropy", "mean_abs_cos", "top_pc_fraction", "lipschitz")
_PLOTTED = (("twonn", "TwoNN dimension"), ("pca95", "PCA-95 % dimension"), ("h1_rel", "longest H1 bar / median dist"),
            ("dead_fraction", "dead units"), ("mean_abs_cos", "mean |cos| (anisotropy)"), ("lipschitz", "local Lipschitz"))


def _fmt(v) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.2e}"
    return str(v)


class LensReport:
    """What :func:`look` measured: ``rows`` (one dict per layer, keys :data:`COLUMNS`) and the diagrams per layer."""

    def __init__(self, rows: list[dict], diagrams: dict[str, list[np.ndarray]], title: str = ""):
        self.rows = rows
        self.diagrams = diagrams
        self.title = title

    @property
    def layers(self) -> list[str]:
        return [r["layer"] for r in self.rows]

    def row(self, name: str) -> dict:
        for r in self.rows:
            if r["layer"] == name:
                return r
        raise KeyError(f"no layer {name!r} in this report; it has {self.layers}")

    def column(self, key: str) -> list:
        return [r[key] for r in self.rows]

    def to_dict(self) -> dict:
        return {"title": self.title, "rows": [dict(r) for r in self.rows]}

    def __repr__(self) -> str:
        cells = [[_fmt(r[c]) for c in COLUMNS] for r in self.rows]
        widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(COLUMNS)]
        lines = [("  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths)))]
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
        return (f"LensReport {self.title}\n" if self.title else "") + "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r[c]))}</td>" for c in COLUMNS) + "</tr>"
                       for r in self.rows)
        cap = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def plot(self, keys: Sequence[str] | None = None):
        """One small panel per measurement against the layer; returns the matplotlib Figure."""
        import matplotlib.pyplot as plt

        panels = [(k, t) for k, t in _PLOTTED if keys is None or k in keys]
        fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.4), squeeze=False)
        xs = np.arange(len(self.rows))
        for ax, (key, label) in zip(axes[0], panels):
            ax.plot(xs, [float(r[key]) for r in self.rows], "o-")
            ax.set_title(label, fontsize=9)
            ax.set_xticks(xs, [r["layer"] for r in self.rows], rotation=60, fontsize=7)
        if self.title:
            fig.suptitle(self.title, fontsize=10)
        fig.tight_layout()
        return fig


def look(model: nn.Module, inputs, layers: Sequence[str], *, forward: Forward | None = None,
         select: Select | None = None, perturb: str | None = INPUT, eps: float = 1e-2, n_dirs: int = 8,
         n_points: int = 200, max_points: int = 1000, seed: int = 0, topology: bool = True,
         threshold: float = 0.0, title: str = "") -> LensReport:
    """Look at ``layers`` of ``model`` on ``inputs`` through the lens; one row per layer (see the module docstring).

    ``perturb`` is where the Lipschitz probe adds a perturbation of norm ``eps`` per input: ``"input"`` (float inputs),
    the name of a module whose output is perturbed (e.g. ``"tok_emb"`` for the course's GPT), or None to skip it.
    The lipschitz column is the median over inputs of the max over ``n_dirs`` directions of
    ||change of the layer's output for that input|| / eps. ``topology=False`` skips persistence (the slowest part).
    """
    if perturb == INPUT and not (isinstance(inputs, torch.Tensor) and torch.is_floating_point(inputs)):
        raise TypeError("perturb='input' needs float inputs; for token ids name the embedding module, "
                        "e.g. perturb='tok_emb', or pass perturb=None")
    raw = _run(model, inputs, layers, forward)
    clouds = {}
    for name, t in raw.items():
        pts = select(name, t) if select is not None else t
        clouds[name] = as_points(pts) if select is None else pts.detach().float().cpu().reshape(pts.shape[0], -1)

    lips: dict[str, float] = {name: float("nan") for name in layers}
    if perturb is not None:
        if perturb == INPUT:
            shape = tuple(inputs.shape)
        else:
            shape = tuple(_first_tensor(_run(model, inputs, [perturb], forward)[perturb]).shape)
        gen = torch_generator(seed)
        best = {name: torch.zeros(raw[name].shape[0], dtype=torch.float64) for name in layers}
        for _ in range(n_dirs):
            delta = eps * _unit_directions(shape, gen)
            moved = _run(model, inputs, layers, forward, perturb=(perturb, delta))
            for name in layers:
                change = (moved[name].double() - raw[name].double()).flatten(1).norm(dim=1) / eps
                best[name] = torch.maximum(best[name], change)
        lips = {name: float(best[name].median()) for name in layers}

    rows, diagrams = [], {}
    for name in layers:
        X = clouds[name]
        row = {"layer": name, "n": int(X.shape[0]), "dim": int(X.shape[1])}
        row.update(intrinsic_dimension(X, max_points=max_points, seed=seed))
        if topology and X.shape[0] >= 3:
            top = loops(X, n_points=n_points, seed=seed)
            row.update(h1_max=float(top["h1_max"]), h1_rel=float(top["h1_rel"]))
            diagrams[name] = [top["h0"], top["h1"]]
        else:
            row.update(h1_max=float("nan"), h1_rel=float("nan"))
        cov = coverage(X, threshold=threshold)
        row.update(dead_fraction=cov["dead_fraction"], coverage_entropy=cov["entropy"])
        iso = isotropy(X, max_points=max_points, seed=seed)
        row.update(mean_abs_cos=iso["mean_abs_cos"], top_pc_fraction=iso["top_pc_fraction"])
        row["lipschitz"] = lips[name]
        rows.append({c: row[c] for c in COLUMNS})
    return LensReport(rows, diagrams, title=title)
