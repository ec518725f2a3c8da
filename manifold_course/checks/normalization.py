"""Checks for chapter v1_architecture/03_normalization_initialization_landscapes (Volume 1, sections 1.8-1.10).

Cases are drawn at grading time from the seeded generator. Random initialisers are judged by the law they must
follow (variance, bound, shape of the distribution, determinism under a seed), never against the reference's own
draw; the activation profile is judged against the reference's profile with tolerances wider than the
fluctuations of a finite-width network.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from manifold_course.grading import Case, Exercise
from manifold_course.grading.compare import float_problem as _float_problem
from manifold_course.nn import init, norms
from manifold_course.nn.mlp import MLPConfig, deep_mlp
from manifold_course.optim import landscape

CHAPTER = "v1_architecture/03_normalization_initialization_landscapes"
F32, F64 = torch.float32, torch.float64


@contextlib.contextmanager
def _torch_seeded(rng: np.random.Generator):
    """Build modules with torch's global generator seeded from ``rng``, then give the caller its state back."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(rng.integers(1_000_000)))
        yield


def _t(rng: np.random.Generator, *shape: int, dtype=F32, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    return torch.as_tensor(rng.standard_normal(shape) * scale + shift, dtype=dtype)


# ---------------------------------------------------------------- 1.8 normalisation layers


def _rms_cases(rng):
    yield Case((_t(rng, 5, 8), _t(rng, 8), 1e-6), label="x (5, 8), float32")
    yield Case((_t(rng, 2, 3, 7), _t(rng, 7), 1e-6), label="x (2, 3, 7): normalise the last axis only")
    yield Case((_t(rng, 1, 13), _t(rng, 13), 1e-6), label="batch of one row")
    yield Case((_t(rng, 4, 1), _t(rng, 1), 1e-6), label="D = 1")
    yield Case((_t(rng, 3, 6, scale=1e-3), _t(rng, 6), 1e-5),
               label="tiny x (rms 1e-3, eps 1e-5): eps goes inside the square root")
    yield Case((_t(rng, 3, 10, scale=1e3, shift=5e2), _t(rng, 10), 1e-6), label="large x (rms ~ 1e3) with an offset")
    yield Case((_t(rng, 6, 33, dtype=F64), _t(rng, 33, dtype=F64), 1e-8), label="float64, D = 33", rtol=1e-10, atol=1e-12)


def _ln_cases(rng):
    yield Case((_t(rng, 5, 8), _t(rng, 8), _t(rng, 8), 1e-5), label="x (5, 8), float32")
    yield Case((_t(rng, 2, 3, 7), _t(rng, 7), _t(rng, 7), 1e-5), label="x (2, 3, 7): normalise the last axis only")
    yield Case((_t(rng, 1, 10), _t(rng, 10), _t(rng, 10), 1e-5), label="batch of one row")
    yield Case((_t(rng, 4, 3), _t(rng, 3), _t(rng, 3), 1e-5), label="D = 3: the biased variance (divide by D, not D - 1)")
    yield Case((_t(rng, 3, 9, scale=1e-3, shift=5.0), _t(rng, 9), _t(rng, 9), 1e-5),
               label="nearly constant rows (std 1e-3, eps 1e-5): eps inside the square root")
    yield Case((_t(rng, 6, 17, dtype=F64, scale=3.0, shift=-2.0), _t(rng, 17, dtype=F64), _t(rng, 17, dtype=F64), 1e-5),
               label="float64, D = 17", rtol=1e-10, atol=1e-12)


def _bn_train_cases(rng):
    def stats(D, dtype=F32):
        return _t(rng, D, dtype=dtype), torch.as_tensor(rng.uniform(0.5, 2.0, D), dtype=dtype)

    for B, D, m, eps, label in ((7, 5, 0.1, 1e-5, "B = 7, D = 5, momentum 0.1"),
                                (2, 4, 0.1, 1e-5, "B = 2: the running variance is unbiased (x B / (B - 1))"),
                                (3, 6, 0.3, 1e-3, "B = 3, momentum 0.3, eps 1e-3"),
                                (33, 1, 1.0, 1e-5, "D = 1, momentum 1 (the running stats become the batch stats)"),
                                (64, 3, 0.1, 1e-5, "B = 64")):
        rm, rv = stats(D)
        yield Case((_t(rng, B, D, scale=2.0, shift=1.0), _t(rng, D), _t(rng, D), rm, rv, m, eps), label=label)
    rm, rv = stats(7, F64)
    yield Case((_t(rng, 9, 7, dtype=F64, scale=3.0), _t(rng, 7, dtype=F64), _t(rng, 7, dtype=F64), rm, rv, 0.2, 1e-5),
               label="float64", rtol=1e-10, atol=1e-12)
    x_small = _t(rng, 5, 4, scale=1e-3)
    rm, rv = stats(4)
    yield Case((x_small, _t(rng, 4), _t(rng, 4), rm, rv, 0.1, 1e-5),
               label="features with std 1e-3 (eps 1e-5): eps inside the square root")


def _bn_matches_torch(fn) -> str | None:
    gen = torch.Generator().manual_seed(0)
    bn = nn.BatchNorm1d(6, momentum=0.2, eps=1e-4)
    with torch.no_grad():
        bn.weight.copy_(torch.randn(6, generator=gen))
        bn.bias.copy_(torch.randn(6, generator=gen))
    x = torch.randn(5, 6, generator=gen) * 3 + 1
    rm, rv = bn.running_mean.clone(), bn.running_var.clone()
    y_ref = bn(x)
    y, m, v = fn(x, bn.weight.detach().clone(), bn.bias.detach().clone(), rm, rv, 0.2, 1e-4)
    for name, got, want in (("y", y, y_ref), ("new running mean", m, bn.running_mean),
                            ("new running var", v, bn.running_var)):
        if not torch.allclose(torch.as_tensor(got).detach().float(), want.detach(), rtol=1e-4, atol=1e-5):
            return f"your {name} differs from torch.nn.BatchNorm1d(6, momentum=0.2, eps=1e-4) in train mode"
    return None


def _bn_eval_cases(rng):
    for B, D, label in ((6, 5, "B = 6, D = 5"), (1, 7, "batch of one row: evaluation mode works with B = 1"),
                        (9, 1, "D = 1")):
        yield Case((_t(rng, B, D, scale=2.0), _t(rng, D), _t(rng, D), _t(rng, D),
                    torch.as_tensor(rng.uniform(0.3, 3.0, D), dtype=F32), 1e-5), label=label)
    yield Case((_t(rng, 4, 3, scale=1e-3), _t(rng, 3), _t(rng, 3), _t(rng, 3, scale=1e-3),
                torch.full((3,), 1e-6), 1e-5), label="running_var 1e-6 (eps 1e-5): eps inside the square root")
    yield Case((_t(rng, 8, 11, dtype=F64), _t(rng, 11, dtype=F64), _t(rng, 11, dtype=F64), _t(rng, 11, dtype=F64),
                torch.as_tensor(rng.uniform(0.3, 3.0, 11), dtype=F64), 1e-5), label="float64", rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- 1.9 initialisation


def _init_cases(rng):
    yield Case(((512, 512), int(rng.integers(1_000_000))), label="(512, 512)")
    yield Case(((100, 700), int(rng.integers(1_000_000))), label="(100, 700): fan_in is shape[1] = 700, fan_out is 100")
    yield Case(((700, 100), int(rng.integers(1_000_000))), label="(700, 100): fan_in 100, fan_out 700")
    yield Case(((64, 3, 5, 5), int(rng.integers(1_000_000))), label="conv kernel (64, 3, 5, 5): fan_in = 3 * 5 * 5 = 75")
    yield Case(((257, 129), int(rng.integers(1_000_000))), label="(257, 129): odd sizes")


def _tensor_problem(got, shape) -> str | None:
    if isinstance(got, np.ndarray):
        return "the output should be a torch.Tensor, got a numpy.ndarray (use torch.rand / torch.randn with a Generator)"
    if not isinstance(got, torch.Tensor):
        return f"the output should be a torch.Tensor of shape {tuple(shape)}, got {type(got).__name__}"
    if tuple(got.shape) != tuple(shape):
        return f"the output has shape {tuple(got.shape)}, expected {tuple(shape)}"
    if got.dtype != F32:
        return f"the output has dtype {got.dtype}, expected torch.float32 (the default dtype)"
    if not torch.isfinite(got).all():
        return "the output contains NaN or inf"
    return None


def _moments(w: torch.Tensor) -> tuple[float, float, float, int]:
    x = w.detach().double().reshape(-1)
    mean, var = float(x.mean()), float(x.var())
    kurt = float(((x - x.mean()) ** 4).mean() / x.var(correction=0) ** 2) - 3.0     # excess kurtosis
    return mean, var, kurt, x.numel()


def _judge_kaiming(got, expected, case) -> str | None:
    shape = case.args[0]
    problem = _tensor_problem(got, shape)
    if problem:
        return problem
    fan_in, fan_out = init.fans(shape)
    target = 2.0 / fan_in
    mean, var, kurt, N = _moments(got)
    if abs(mean) > 6 * math.sqrt(target / N):
        return f"the mean of the entries is {mean:.3g}, expected about 0 (standard error {math.sqrt(target / N):.2g})"
    tol = max(0.05, 6 * math.sqrt(2 / N))
    if abs(var / target - 1) > tol:
        return (f"the variance of the entries is {var:.4g}, expected 2 / fan_in = 2 / {fan_in} = {target:.4g} "
                f"(2 / fan_out would be {2 / fan_out:.4g})")
    if abs(kurt) > 6 * math.sqrt(24 / N) + 0.05:
        return f"the entries are not Gaussian: excess kurtosis {kurt:.2f}, expected 0 (a uniform law gives -1.2)"
    return None


def _judge_xavier(got, expected, case) -> str | None:
    shape = case.args[0]
    problem = _tensor_problem(got, shape)
    if problem:
        return problem
    fan_in, fan_out = init.fans(shape)
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    w = got.detach().double().reshape(-1)
    if float(w.abs().max()) > bound * (1 + 1e-6):
        return (f"an entry has |w| = {float(w.abs().max()):.4g} > sqrt(6 / (fan_in + fan_out)) = {bound:.4g}: "
                "the law is uniform on [-bound, bound]")
    mean, var, _, N = _moments(got)
    if abs(mean) > 6 * bound / math.sqrt(3 * N):
        return f"the mean of the entries is {mean:.3g}, expected about 0: draw from [-bound, bound], not [0, bound]"
    if abs(var / (bound**2 / 3) - 1) > max(0.05, 6 * math.sqrt(0.8 / N)):
        return f"the variance is {var:.4g}, expected bound^2 / 3 = 2 / (fan_in + fan_out) = {bound**2 / 3:.4g}"
    u = np.sort((w.numpy() / bound + 1) / 2)                                   # uniform on [0, 1] if right
    ks = float(np.max(np.abs(u - (np.arange(1, N + 1) - 0.5) / N)))
    if ks > 2.5 / math.sqrt(N) + 1e-3:
        return f"the entries are not uniform on [-bound, bound] (Kolmogorov-Smirnov distance {ks:.3f})"
    return None


def _seeded(shape):
    def prop(fn) -> str | None:
        a, b, c = fn(shape, 5), fn(shape, 5), fn(shape, 6)
        if not torch.equal(a, b):
            return "two calls with the same seed gave different tensors: draw with torch.Generator().manual_seed(seed)"
        if torch.equal(a, c):
            return "seeds 5 and 6 gave the same tensor: use the seed"
        return None

    return prop


def _profile_cases(rng):
    s = lambda: int(rng.integers(1_000_000))  # noqa: E731
    yield Case((50, 256, "kaiming", "relu", s()), label="ReLU + Kaiming, depth 50: the signal keeps its size")
    yield Case((50, 256, "xavier", "relu", s()), label="ReLU + Xavier, depth 50: halves the second moment per layer")
    yield Case((50, 256, "pytorch", "relu", s()), label="ReLU + PyTorch's default U(+-1/sqrt(fan_in))")
    yield Case((30, 200, "standard", "relu", s()), label="ReLU + N(0, 1), depth 30: explodes")
    yield Case((50, 256, "xavier", "tanh", s()), label="tanh + Xavier")
    yield Case((20, 256, "standard", "tanh", s()), label="tanh + N(0, 1): saturated at +-1")
    yield Case((40, 257, "kaiming", "linear", s()), label="linear + Kaiming: grows by sqrt(2) per layer; width 257")
    yield Case((1, 300, "xavier", "linear", s()), label="depth 1")


def _judge_profile(got, expected, case) -> str | None:
    depth, width, init_name, act = case.args[:4]
    if not isinstance(got, (list, tuple)):
        return f"return a list of {depth} Python floats (one std per layer), got {type(got).__name__}"
    if len(got) != depth:
        return f"return one std per layer: {depth} values, got {len(got)} (leave out the input itself)"
    explodes = init_name == "standard" and act != "tanh"
    for i, v in enumerate(got):
        if explodes and isinstance(v, float) and not math.isfinite(v):
            continue
        problem = _float_problem(v, f"entry {i}")
        if problem:
            return problem
    g = np.array([float(v) for v in got])
    e = np.array(expected)
    if not (abs(g[0] / e[0] - 1) < 0.1):
        return (f"the std after layer 1 is {g[0]:.4g}, expected about {e[0]:.4g}: check the weight variance of "
                f"'{init_name}', the activation, and that you return the std (not the variance) of the layer's output")
    if explodes:
        if np.all(np.isfinite(g)) and g[-1] < 1e6 * g[0]:
            return f"with N(0, 1) weights the signal should explode (last / first > 1e6), got last = {g[-1]:.3g}"
        return None
    if np.any(g <= 0):
        return f"a std is {g.min():.3g} <= 0"
    if depth >= 10:
        r_got = (math.log(g[-1]) - math.log(g[0])) / (depth - 1)
        r_exp = (math.log(e[-1]) - math.log(e[0])) / (depth - 1)
        if abs(r_got - r_exp) > 0.05:
            return (f"the std changes by a factor {math.exp(r_got):.3f} per layer on average, expected about "
                    f"{math.exp(r_exp):.3f} for '{init_name}' + {act} (last layer {g[-1]:.3g}, expected about {e[-1]:.3g})")
    return None


# ---------------------------------------------------------------- 1.9 Jacobian spectrum


def _jac_cases(rng):
    with _torch_seeded(rng):
        net = init.deep_net(6, 9, "orthogonal", "tanh", seed=int(rng.integers(1000)), gain=1.3).double()
        rect = nn.Sequential(nn.Linear(7, 12), nn.Tanh(), nn.Linear(12, 4)).double()
        lin = init.deep_net(5, 8, "orthogonal", "linear", seed=int(rng.integers(1000))).double()
        res = deep_mlp(MLPConfig(d_in=6, width=10, depth=3, n_out=5, residual=True, activation="tanh", norm="layer"),
                       seed=int(rng.integers(1000))).double().eval()
        relu = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 5)).double()
    yield Case((net, _t(rng, 9, dtype=F64)), label="6 tanh layers of width 9, orthogonal init")
    yield Case((rect, _t(rng, 7, dtype=F64)), label="7 -> 12 -> 4: a (4, 7) Jacobian, 4 singular values")
    yield Case((lin, _t(rng, 8, dtype=F64)), label="deep linear net with orthogonal weights: all singular values 1")
    yield Case((res, _t(rng, 6, dtype=F64)), label="residual DeepMLP with LayerNorm (call it on a batch of one row)")
    yield Case((relu, _t(rng, 5, dtype=F64)), label="ReLU net (some singular values may be tiny)")


# ---------------------------------------------------------------- 1.10 landscapes


def _small_mlp(rng, norm=None, residual=False, d_in=6, width=8, depth=3, n_out=4, dtype=F32) -> nn.Module:
    m = deep_mlp(MLPConfig(d_in=d_in, width=width, depth=depth, n_out=n_out, residual=residual, norm=norm),
                 seed=int(rng.integers(1_000_000)))
    return m.to(dtype).eval()


def _directions(rng, params, dtype=F32):
    return [torch.as_tensor(rng.standard_normal(tuple(p.shape)), dtype=dtype) for p in params]


def _filter_cases(rng):
    m = _small_mlp(rng, d_in=7, width=12, depth=2, n_out=3)
    params = [p.detach().clone() for p in m.parameters()]
    yield Case((_directions(rng, params), params), label="DeepMLP weights (2-D) and biases (1-D)")
    mb = _small_mlp(rng, norm="batch", d_in=5, width=9, depth=2, n_out=4)
    pb = [p.detach().clone() for p in mb.parameters()]
    yield Case((_directions(rng, pb), pb), label="with BatchNorm gains and shifts (1-D: zero direction)")
    conv = [_t(rng, 8, 3, 3, 3), _t(rng, 8), _t(rng, 5, 8, 3, 3)]
    yield Case((_directions(rng, conv), conv), label="conv kernels (C_out, C_in, k, k): one filter per output channel")
    W = [_t(rng, 6, 4, scale=0.3), _t(rng, 6)]
    d = _directions(rng, W)
    d[0][2] = 0.0
    yield Case((d, W), label="a filter of the direction that is exactly 0: stays 0 (the + 1e-10)")
    W64 = [_t(rng, 3, 11, dtype=F64), _t(rng, 1, 5, dtype=F64)]
    yield Case((_directions(rng, W64, F64), W64), label="float64; a (1, 5) weight is one filter", rtol=1e-10, atol=1e-12)


class _MSE:
    """Mean squared error between logits and one-hot targets (a second loss besides cross-entropy)."""

    def __call__(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(out, F.one_hot(y, out.shape[1]).to(out.dtype))

    def __repr__(self) -> str:
        return "mse_loss(logits, one_hot(y))"


def _surface_cases(rng):
    def setup(norm=None, residual=False, n=40):
        m = _small_mlp(rng, norm=norm, residual=residual, dtype=F64)
        params = list(m.parameters())
        X = _t(rng, n, 6, dtype=F64)
        y = torch.as_tensor(rng.integers(0, 4, n))
        return m, X, y, landscape.random_direction(params, int(rng.integers(1000))), \
            landscape.random_direction(params, int(rng.integers(1000)))

    m, X, y, d1, d2 = setup()
    yield Case((m, F.cross_entropy, X, y, d1, d2, [-1.0, -0.5, 0.0, 0.5, 1.0], [-1.0, -0.5, 0.0, 0.5, 1.0]),
               label="5 x 5 grid; the centre is L(theta*)")
    m, X, y, d1, d2 = setup(residual=True)
    yield Case((m, F.cross_entropy, X, y, d1, d2, [-0.3, 0.0, 0.3], [-0.2, 0.1, 0.4, 0.7]),
               label="3 x 4 grid (rows follow alphas, columns betas)")
    m, X, y, d1, d2 = setup()
    yield Case((m, F.cross_entropy, X, y, d1, d2, [0.0], [0.0]), label="1 x 1 grid at (0, 0)")
    m, X, y, d1, d2 = setup(norm="layer")
    yield Case((m, _MSE(), X, y, d1, d2, np.linspace(-0.5, 0.5, 4), np.linspace(0.0, 1.0, 3)),
               label="numpy grids, another loss, LayerNorm")


def _lesion_cases(rng):
    for residual, norm, idx, label in ((False, None, 2, "plain tanh net, delete block 2"),
                                       (True, None, 2, "residual tanh net, delete block 2"),
                                       (False, "batch", 0, "plain net with BatchNorm (eval mode), delete the first block"),
                                       (True, "batch", 5, "residual net with BatchNorm, delete the last block (index 5)"),
                                       (True, None, 0, "residual net, delete block 0")):
        m = deep_mlp(MLPConfig(d_in=10, width=16, depth=6, n_out=5, residual=residual, norm=norm, activation="tanh"),
                     seed=int(rng.integers(1_000_000)))
        init.init_linear_(m, "kaiming", seed=int(rng.integers(1_000_000)), gain=0.4 if residual else 0.8)
        with torch.no_grad():                                        # tanh keeps the answers varied across inputs
            for lin in (mod for mod in m.modules() if isinstance(mod, nn.Linear)):
                lin.bias.copy_(_t(rng, lin.bias.shape[0], scale=0.1))
        if norm == "batch":
            with torch.no_grad():                                    # running statistics as after some training
                for b in m.blocks:
                    b.norm.running_mean.copy_(_t(rng, 16, scale=0.1))
                    b.norm.running_var.copy_(torch.as_tensor(rng.uniform(0.05, 0.3, 16), dtype=F32))
        m.eval()
        X = _t(rng, 200, 10, scale=2.0)
        with torch.no_grad():
            y = m(X).argmax(dim=1)                                   # labels = the intact model's answers
        yield Case((m, idx, X, y), label=label + " (the intact model has accuracy 1)", rtol=0.0, atol=1e-6)


def _path_cases(rng):
    yield Case((0,), label="n = 0: one path of length 0")
    yield Case((1,), label="n = 1")
    yield Case((3,), label="n = 3: 1/8, 3/8, 3/8, 1/8")
    yield Case((54,), label="n = 54 (the 54 blocks of Veit et al.'s ResNet-110)")
    yield Case((int(rng.integers(5, 200)),), label="random n")
    yield Case((1100,), label="n = 1100: 2.0 ** n and float(comb(n, k)) overflow; divide exact integers")


def _path_sums_to_one(fn) -> str | None:
    p = np.asarray(fn(17), dtype=np.float64)
    if abs(p.sum() - 1) > 1e-12 or abs((np.arange(18) * p).sum() - 8.5) > 1e-9:
        return "for n = 17 the probabilities should sum to 1 with mean n / 2 = 8.5"
    return None


EXERCISES = [
    Exercise("normalization.rms_norm", "RMSNorm from scratch",
             cases=_rms_cases, reference=norms.rms_norm, rtol=1e-5, atol=1e-6),
    Exercise("normalization.layer_norm", "LayerNorm from scratch",
             cases=_ln_cases, reference=norms.layer_norm, rtol=1e-5, atol=1e-5),
    Exercise("normalization.batch_norm_train", "BatchNorm in training mode, with running statistics",
             cases=_bn_train_cases, reference=norms.batch_norm_train, rtol=1e-5, atol=1e-5,
             properties=[_bn_matches_torch]),
    Exercise("normalization.batch_norm_eval", "BatchNorm in evaluation mode",
             cases=_bn_eval_cases, reference=norms.batch_norm_eval, rtol=1e-5, atol=1e-5),
    Exercise("normalization.kaiming_normal", "Kaiming (He) normal initialisation",
             cases=_init_cases, judge=_judge_kaiming, properties=[_seeded((300, 200))],
             known_good=init.kaiming_normal),
    Exercise("normalization.xavier_uniform", "Xavier (Glorot) uniform initialisation",
             cases=_init_cases, judge=_judge_xavier, properties=[_seeded((300, 200))],
             known_good=init.xavier_uniform),
    Exercise("normalization.activation_std_profile", "Activation std through 50 layers",
             cases=_profile_cases, reference=init.activation_std_profile, judge=_judge_profile),
    Exercise("normalization.jacobian_singular_values", "Singular values of the input-output Jacobian",
             cases=_jac_cases, reference=init.jacobian_singular_values, rtol=1e-7, atol=1e-10),
    Exercise("normalization.filter_normalize", "Filter-normalised directions (Li et al. 2018)",
             cases=_filter_cases, reference=landscape.filter_normalize, rtol=1e-5, atol=1e-6),
    Exercise("normalization.loss_surface_2d", "A 2-D slice of the loss surface",
             cases=_surface_cases, reference=landscape.loss_surface_2d, rtol=1e-9, atol=1e-10),
    Exercise("normalization.lesion_accuracy", "Lesion study: delete one block",
             cases=_lesion_cases, reference=landscape.lesion_accuracy),
    Exercise("normalization.path_length_distribution", "Path lengths of an unrolled residual net",
             cases=_path_cases, reference=landscape.path_length_distribution, rtol=1e-9, atol=1e-300,
             properties=[_path_sums_to_one]),
]
