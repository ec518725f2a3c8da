r"""Scaling laws: power laws in parameters $N$ and data $D$, the Chinchilla parametric fit and its optimum.

**Power law.** Kaplan et al., "Scaling Laws for Neural Language Models" (2020, arXiv:2001.08361) found that the test
loss of a language model falls as a power of the number of (non-embedding) parameters $N$ when data is not the
bottleneck, and as a power of the number of training tokens $D$ when the model is not:

$$L(N) = a\,N^{-\alpha} + c ,\qquad L(D) = b\,D^{-\beta} + c .$$

With $c = 0$ the law is a straight line in log-log coordinates, $\log L = \log a - \alpha\log N$, and ordinary least
squares on $(\log N, \log L)$ gives $(a, \alpha)$ in closed form. With an irreducible loss $c > 0$ (the entropy of the
text itself) the curve bends, and the three parameters are fitted by non-linear least squares (``scipy.optimize``).

**Compute.** A forward and backward pass cost about $6$ floating-point operations per parameter per token (2 for
the forward multiply-add, 4 for the backward), so training costs $C \approx 6ND$ FLOPs.

**Chinchilla.** Hoffmann et al., "Training Compute-Optimal Large Language Models" (2022, arXiv:2203.15556), fitted
$$L(N, D) = E + \frac{A}{N^{\alpha}} + \frac{B}{D^{\beta}}$$
with $E = 1.69, A = 406.4, B = 410.7, \alpha = 0.34, \beta = 0.28$. Minimising it on the budget line $6ND = C$
(a Lagrange multiplier, or substitute $D = C/(6N)$ and set $dL/dN = 0$) gives
$$N^* = G\left(\frac C6\right)^{\frac{\beta}{\alpha+\beta}},\qquad D^* = G^{-1}\left(\frac C6\right)^{\frac{\alpha}{\alpha+\beta}},
\qquad G = \left(\frac{\alpha A}{\beta B}\right)^{\frac{1}{\alpha+\beta}} .$$
Besiroglu, Erdil, Barnett & You, "Chinchilla Scaling: A replication attempt" (2024, arXiv:2404.10102) refitted the same
data and reported $E = 1.82, A = 482.01, B = 2085.43, \alpha = 0.3478, \beta = 0.3658$, whose optimum is close to the
famous "20 tokens per parameter"; the published fit above implies several times more.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import curve_fit
from manifold_course.seeding import manual_seed

# The parametric fit of Hoffmann et al. 2022 (their eq. 10) and the refit of Besiroglu et al. 2024 (their Table 1).
CHINCHILLA = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
BESIROGLU = {"E": 1.82, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}


def power_law(N, a: float, alpha: float, c: float = 0.0):
    r"""$a\,N^{-\alpha} + c$ (numpy broadcasting)."""
    return a * np.power(np.asarray(N, dtype=np.float64), -alpha) + c


def fit_power_law(N, L, with_offset: bool = False) -> tuple[float, ...]:
    r"""Fit $L \approx a N^{-\alpha}$ (or $a N^{-\alpha} + c$ when ``with_offset``); returns (a, alpha) or (a, alpha, c).

    Without offset: ordinary least squares of $\log L$ on $\log N$, slope $= -\alpha$, intercept $= \log a$.
    With offset: non-linear least squares on $\log L$ (relative errors, so small and large losses weigh alike),
    started from the log-log fit of $L - 0.9\min L$.
    """
    x = np.log(np.asarray(N, dtype=np.float64))                      # (n,)
    y = np.log(np.asarray(L, dtype=np.float64))                      # (n,)
    if not with_offset:
        slope, intercept = np.polyfit(x, y, 1)                       # y = slope x + intercept
        return float(math.exp(intercept)), float(-slope)
    c0 = 0.9 * float(np.min(L))
    a0, alpha0 = fit_power_law(N, np.asarray(L) - c0)

    def log_model(logN, log_a, alpha, c):
        return np.log(np.exp(log_a - alpha * logN) + c)

    (log_a, alpha, c), _ = curve_fit(log_model, x, y, p0=(math.log(a0), alpha0, c0),
                                     bounds=([-np.inf, 0.0, 0.0], [np.inf, 5.0, float(np.min(L))]), maxfev=20_000)
    return float(math.exp(log_a)), float(alpha), float(c)


def training_flops(N: float, D: float) -> float:
    r"""Approximate training compute in FLOPs: $C \approx 6ND$ (Kaplan et al. 2020, section 2.1)."""
    return 6.0 * float(N) * float(D)


def chinchilla_loss(N, D, E: float, A: float, B: float, alpha: float, beta: float):
    r"""$L(N, D) = E + A N^{-\alpha} + B D^{-\beta}$ (numpy broadcasting)."""
    N, D = np.asarray(N, dtype=np.float64), np.asarray(D, dtype=np.float64)
    return E + A * N ** (-alpha) + B * D ** (-beta)


def chinchilla_optimal(C: float, A: float, B: float, E: float, alpha: float, beta: float) -> tuple[float, float]:
    r"""Compute-optimal $(N^*, D^*)$ of $L(N, D)$ on the budget $6ND = C$ (Hoffmann et al. 2022, appendix D.2).

    $E$ does not move the optimum (it is a constant); it is an argument so the call reads like the fit.
    """
    del E
    G = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    s = C / 6.0
    N_opt = G * s ** (beta / (alpha + beta))
    D_opt = s ** (alpha / (alpha + beta)) / G
    return float(N_opt), float(D_opt)


def fit_chinchilla(N, D, L, p0: dict | None = None) -> dict[str, float]:
    r"""Fit $E, A, B, \alpha, \beta$ of $L(N, D)$ to measured losses by non-linear least squares on $\log L$.

    Hoffmann et al. minimise a Huber loss of log-space residuals over a grid of starts; with a handful of points
    plain least squares from one sensible start is enough. Returns a dict with the keys of ``CHINCHILLA``.
    """
    N, D, L = (np.asarray(v, dtype=np.float64) for v in (N, D, L))
    p = p0 or {"E": 0.8 * float(L.min()), "A": 10.0, "B": 10.0, "alpha": 0.3, "beta": 0.3}

    def log_model(ND, E, log_A, log_B, alpha, beta):
        n, d = ND
        return np.log(E + np.exp(log_A - alpha * np.log(n)) + np.exp(log_B - beta * np.log(d)))

    popt, _ = curve_fit(log_model, np.vstack([N, D]), np.log(L),
                        p0=(p["E"], math.log(p["A"]), math.log(p["B"]), p["alpha"], p["beta"]),
                        bounds=([0.0, -20, -20, 0.0, 0.0], [float(L.min()), 30, 30, 3.0, 3.0]), maxfev=50_000)
    E, log_A, log_B, alpha, beta = (float(v) for v in popt)
    return {"E": E, "A": math.exp(log_A), "B": math.exp(log_B), "alpha": alpha, "beta": beta}


def tokens_per_parameter(C: float, fit: dict[str, float]) -> float:
    """$D^*/N^*$ at compute $C$ for a fit given as a dict like ``CHINCHILLA``."""
    N_opt, D_opt = chinchilla_optimal(C, fit["A"], fit["B"], fit["E"], fit["alpha"], fit["beta"])
    return D_opt / N_opt


def gpt_size_sweep(train_ids, val_ids, vocab_size: int, shapes, steps: int = 300, batch_size: int = 16,
                   block_size: int = 32, checkpoints=(40, 75, 150, 300), lr: float = 3e-3, window: int = 20,
                   progress: bool = False) -> list[dict]:
    """Train one small ``GPT`` per (d_model, n_layers, n_heads) in ``shapes`` on the same token stream.

    Returns one dict per model: ``N`` (parameters), ``model``, ``val_loss`` (held-out loss after training) and
    ``curve``: the online loss around each checkpoint step (mean training loss over the ``window`` steps before it;
    each batch is measured *before* the model trains on it, so it estimates the held-out loss) with
    ``tokens`` = checkpoint x batch_size x block_size tokens seen. Cost grows with N; nothing is cached.
    """
    import torch

    from manifold_course.nn.gpt import GPT, GPTConfig, evaluate_loss, train_gpt

    it = shapes
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(shapes, desc="GPT sizes")
    runs = []
    for d_model, n_layers, n_heads in it:
        manual_seed(0)
        model = GPT(GPTConfig(vocab_size=vocab_size, block_size=block_size, d_model=d_model, n_layers=n_layers,
                              n_heads=n_heads))
        losses = train_gpt(model, train_ids, steps=steps, batch_size=batch_size, lr=lr, seed=0)
        curve = [float(np.mean(losses[max(0, s - window):s])) for s in checkpoints]
        runs.append({"shape": (d_model, n_layers, n_heads), "N": model.num_params(), "model": model.eval(),
                     "val_loss": evaluate_loss(model, val_ids, n_batches=8, batch_size=32),
                     "tokens": [s * batch_size * block_size for s in checkpoints], "curve": curve})
    return runs
