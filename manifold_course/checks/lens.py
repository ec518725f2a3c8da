"""Checks for chapter v7_capstone/02_every_model_through_the_lens (the capstone: every model through the lens).

The references are :mod:`manifold_course.lens` (coverage, isotropy, Bhattacharyya distance, InPCA, capture) and
:mod:`manifold_course.capstone.zoo` (the hunchback test of an intrinsic-dimension profile). Cases are drawn at
grading time; InPCA's coordinates are compared up to the sign of each axis (an eigenvector's sign is arbitrary).
``capture`` is judged through an adapter that builds a small model from plain data, calls the answer, and reports
the captured clouds, the hooks left on the model, its training flag and whether its parameters or buffers changed.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from manifold_course import lens as L
from manifold_course.capstone import zoo
from manifold_course.grading import Case, Exercise
from manifold_course.grading.compare import compare, float_problem
from manifold_course.seeding import manual_seed

CHAPTER = "v7_capstone/02_every_model_through_the_lens"


# ---------------------------------------------------------------- coverage


def _coverage_cases(rng):
    relu = lambda a: np.maximum(a, 0.0)   # noqa: E731
    A = relu(rng.normal(size=(40, 12)))
    A[:, [2, 7]] = 0.0
    yield Case((torch.as_tensor(A),), label="(40, 12) ReLU activations, units 2 and 7 never fire")
    B = rng.normal(size=(25, 9))
    B[:, 0] = -np.abs(B[:, 0]) - 0.1
    yield Case((torch.as_tensor(B),), label="(25, 9) signed activations: unit 0 always negative (dead, but |a| > 0)")
    yield Case((torch.as_tensor(B), 0.5), label="the same with threshold 0.5")
    yield Case((torch.ones(7, 5),), label="every unit equally active: entropy exactly 1")
    one = torch.zeros(6, 4)
    one[:, 1] = 2.0
    yield Case((one,), label="one unit carries all the activity: entropy 0, dead fraction 3/4")
    yield Case((torch.zeros(5, 3),), label="nothing is active at all: dead fraction 1, entropy 0")
    yield Case((torch.as_tensor(relu(rng.normal(size=(1, 10)))),), label="batch of one input")
    yield Case((torch.as_tensor(relu(rng.normal(size=(30, 1)))),), label="a single unit (D = 1): entropy 0 by convention")
    for n, d in ((50, 33), (17, 64)):
        yield Case((torch.as_tensor(relu(rng.normal(0.3, 1.0, size=(n, d))) * rng.uniform(0, 3, size=d)),),
                   label=f"({n}, {d}) ReLU activations with unequal unit scales")


def _coverage_ref(A, threshold=0.0):
    return L.coverage(A, threshold)


def _judge_dict(keys, hints, rtol=1e-9, atol=1e-12):
    def judge(got, expected, case):
        if not isinstance(got, dict):
            return f"return a dict with keys {list(keys)}, got {type(got).__name__}"
        for k in keys:
            if k not in got:
                return f"the dict lacks the key {k!r} (it needs {list(keys)})"
            problem = float_problem(got[k], f"{k!r}")
            if problem and not (isinstance(got[k], float) and np.isnan(expected[k]) and np.isnan(got[k])):
                return problem
            problem = compare(float(got[k]), float(expected[k]), rtol, atol, f"{k!r}: {hints[k]}")
            if problem:
                return problem
        return None
    return judge


_COVERAGE_HINTS = {
    "dead_fraction": "the share of units whose activation is > threshold on no input (a unit that is never above "
                     "the threshold is dead even if it is negative)",
    "coverage": "1 - dead_fraction",
    "entropy": "-sum p_j log p_j / log D with p_j = mean_n |a_nj| / sum_k mean_n |a_nk| (0 when D = 1 or all zero)",
}


# ---------------------------------------------------------------- isotropy


def _isotropy_ref(X):
    out = L.isotropy(X, max_points=10**6)
    return {"mean_abs_cos": out["mean_abs_cos"], "top_pc_fraction": out["top_pc_fraction"]}


def _isotropy_cases(rng):
    yield Case((torch.as_tensor(rng.normal(size=(60, 20))),), label="an isotropic Gaussian cloud (60, 20)")
    shifted = rng.normal(size=(40, 8)) + 5.0
    yield Case((torch.as_tensor(shifted),), label="a cloud far from the origin (mean 5): centre it first")
    line = np.outer(rng.normal(size=30), rng.normal(size=6)) + 0.01 * rng.normal(size=(30, 6)) + 2.0
    yield Case((torch.as_tensor(line),), label="points near one line (off the origin): |cos| near 1")
    x = rng.normal(size=(1, 5))
    sym = np.concatenate([x, -x, np.zeros((1, 5)), 2 * x[:, ::-1], -2 * x[:, ::-1]])
    yield Case((torch.as_tensor(sym),), label="five rows whose mean is 0 and one row *is* the mean: leave a zero "
                                             "centred row out of the cosines")
    aniso = rng.normal(size=(80, 12)) * np.geomspace(3, 0.1, 12)
    yield Case((torch.as_tensor(aniso),), label="an anisotropic Gaussian (scales 3 .. 0.1)")
    yield Case((torch.as_tensor(rng.normal(size=(2, 3))),), label="two rows only")
    yield Case((torch.as_tensor(rng.normal(size=(9, 40))),), label="fewer rows than columns (9, 40)")


_ISO_HINTS = {"mean_abs_cos": "mean over ordered pairs i != j of |cos| between *centred* rows (rows with zero centred "
                              "norm left out)",
              "top_pc_fraction": "largest eigenvalue of the covariance of the centred rows / its trace"}


# ---------------------------------------------------------------- Bhattacharyya


def _probs(rng, n, c, conc=1.0):
    return torch.as_tensor(rng.dirichlet(np.full(c, conc), size=n))


def _bhat_cases(rng):
    P = _probs(rng, 20, 10)
    yield Case((P, P.clone()), label="identical predictions: distance 0")
    yield Case((P, _probs(rng, 20, 10)), label="two random sets of predictions (20 samples, 10 classes)")
    yield Case((_probs(rng, 30, 3, 0.3), _probs(rng, 30, 3, 0.3)), label="peaked predictions, 3 classes")
    eye = torch.eye(4, dtype=torch.float64)
    yield Case((eye, eye[[1, 2, 3, 0]]), label="disjoint one-hot predictions: the sum is 0, floored at 1e-12")
    yield Case((_probs(rng, 1, 10), torch.full((1, 10), 0.1, dtype=torch.float64)),
               label="one sample against the uniform prediction")
    yield Case((_probs(rng, 50, 10, 5.0), _probs(rng, 50, 10, 0.5)), label="50 samples, flat against peaked")


def _judge_float(what, rtol=1e-9, atol=1e-12):
    def judge(got, expected, case):
        return float_problem(got, what) or compare(float(got), float(expected), rtol, atol, what)
    return judge


# ---------------------------------------------------------------- InPCA


def _bhat_matrix(points):
    K = len(points)
    D = np.zeros((K, K))
    for i in range(K):
        for j in range(i + 1, K):
            D[i, j] = D[j, i] = L.bhattacharyya(points[i], points[j])
    return D


def _inpca_cases(rng):
    pts = [rng.dirichlet(np.ones(5), size=12) for _ in range(7)]
    yield Case((_bhat_matrix(pts),), label="Bhattacharyya distances of 7 random prediction sets (some eigenvalues < 0)")
    Y = rng.normal(size=(6, 2))
    sq = ((Y[:, None] - Y[None]) ** 2).sum(-1)
    yield Case((sq,), label="squared Euclidean distances of 6 points in the plane: classical MDS, two positive "
                            "eigenvalues")
    traj = [np.full((10, 4), 0.25)]
    for k in range(1, 6):
        logits = rng.normal(size=(10, 4)) * k
        e = np.exp(logits - logits.max(1, keepdims=True))
        traj.append(e / e.sum(1, keepdims=True))
    yield Case((_bhat_matrix(traj),), label="a 6-checkpoint 'trajectory' from uniform to peaked predictions")
    M = rng.uniform(0, 1, size=(5, 5))
    M = M + M.T
    np.fill_diagonal(M, 0)
    yield Case((M,), label="a random symmetric (5, 5) dissimilarity matrix")
    yield Case((np.array([[0.0, 1.0], [1.0, 0.0]]),), label="two points")


def _judge_inpca(got, expected, case):
    if not (isinstance(got, tuple) and len(got) == 2):
        return "return a pair (eigenvalues (K,), coordinates (K, K)) of numpy arrays"
    lam, X = got
    elam, eX = expected
    problem = compare(lam, elam, 1e-7, 1e-9, "the eigenvalues of W = -1/2 J D J (signs kept), sorted by decreasing "
                                             "absolute value")
    if problem:
        return problem
    X = np.asarray(X, dtype=np.float64)
    if X.shape != eX.shape:
        return f"the coordinates have shape {X.shape}, expected {eX.shape} (one column per eigenvalue)"
    for i in range(eX.shape[1]):
        col, ecol = X[:, i], eX[:, i]
        if np.linalg.norm(ecol) < 1e-6:
            continue                                      # a (numerically) zero eigenvalue: any direction is right
        if any(abs(abs(elam[i]) - abs(elam[j])) < 1e-8 * max(1.0, abs(elam[i])) for j in range(len(elam)) if j != i):
            continue                                      # a repeated |eigenvalue|: the axes may rotate
        sign = 1.0 if float(col @ ecol) >= 0 else -1.0
        problem = compare(sign * col, ecol, 1e-6, 1e-8, f"coordinate column {i} (the eigenvector times "
                                                         f"sqrt(|lambda_{i}|), up to its sign)")
        if problem:
            return problem
    return None


# ---------------------------------------------------------------- hunchback


def _hunch_cases(rng):
    yield Case(([8.8, 12.0, 10.0, 5.0],), label="rises then falls: a hunchback")
    yield Case(([8.8, 7.3, 6.5, 6.1, 5.4, 4.9],), label="falls all the way: not a hunchback")
    yield Case(([3.0, 4.0, 5.0, 9.0],), label="rises all the way (peak at the last layer): not a hunchback")
    yield Case(([5.0, 5.4, 5.0],), label="a bump of 8 %, below rel = 0.1")
    yield Case(([5.0, 5.4, 5.0], 0.05), label="the same bump with rel = 0.05")
    yield Case(([5.0, 5.5, 5.0],), label="a bump of exactly 10 %: >= counts")
    yield Case(([4.0, 9.0],), label="two layers only")
    yield Case(([4.0, float("nan"), 9.0, 3.0],), label="a NaN in the profile (a dead layer)")
    yield Case(([2.0, 9.0, 9.5, 2.0],), label="a plateau in the middle")
    yield Case(([10.0, 6.0, 12.0],), label="the peak must beat the first layer too")
    yield Case((np.array([3.0, 6.0, 2.0]),), label="a numpy array")
    for _ in range(6):
        n = int(rng.integers(3, 9))
        yield Case((list(np.round(rng.uniform(1, 20, size=n), 2)), float(rng.choice([0.0, 0.1, 0.3]))),
                   label="a random profile")


def _judge_bool(got, expected, case):
    if not isinstance(got, (bool, np.bool_)):
        return f"return a bool, got {type(got).__name__}"
    if bool(got) != bool(expected):
        return (f"profile {list(np.asarray(case.args[0], dtype=float))}: expected {bool(expected)}, got {bool(got)} "
                "(a hunchback: >= 3 finite values and max >= (1 + rel) * max(first, last))")
    return None


# ---------------------------------------------------------------- capture


class TupleBlock(nn.Module):
    """A residual block that returns ``(x, extra)``, as the course's GPT blocks return ``(x, cache)``."""

    def __init__(self, d: int):
        super().__init__()
        self.lin = nn.Linear(d, d)

    def forward(self, x):
        return x + torch.tanh(self.lin(x)), x.mean()


class TinySeq(nn.Module):
    """(B, T) token ids -> embedding (B, T, D) -> two tuple-returning blocks -> logits (B, T, V)."""

    def __init__(self, V: int = 11, D: int = 6):
        super().__init__()
        self.emb = nn.Embedding(V, D)
        self.blocks = nn.ModuleList([TupleBlock(D), TupleBlock(D)])
        self.head = nn.Linear(D, V)

    def forward(self, idx):
        x = self.emb(idx)
        for b in self.blocks:
            x, _ = b(x)
        return self.head(x)


def build_model(kind: str, seed: int) -> nn.Module:
    """The small models the capture check hooks: an MLP with dropout and batch norm, a CNN, a tuple-block sequence model."""
    manual_seed(seed)         # the caller saves and restores the global random state around this
    if kind == "mlp":
        return nn.Sequential(nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
    if kind == "cnn":
        return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Dropout(0.3), nn.Flatten(), nn.Linear(48, 2))
    if kind == "seq":
        return TinySeq()
    raise ValueError(kind)


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _capture_observe(fn):
    """Adapter: build the case's model in the given training mode, call ``fn(model, inputs, layers)``, and report what
    it returned and what it left behind."""

    def observed(kind, seed, inputs, layers, training):
        state = torch.random.get_rng_state()
        try:
            model = build_model(kind, seed)
        finally:
            torch.random.set_rng_state(state)
        model.train(training)
        before = _state(model)
        out = fn(model, inputs, list(layers))
        if isinstance(out, dict):
            acts = {str(k): (v.detach().clone() if isinstance(v, torch.Tensor) else v) for k, v in out.items()}
        else:
            acts = out
        hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
        after = _state(model)
        changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
        flags = sorted({m.training for m in model.modules()})
        return {"acts": acts, "hooks": hooks, "training": flags, "changed": changed}

    observed.__name__ = getattr(fn, "__name__", "capture")
    return observed


def _capture_cases(rng):
    for training in (True, False):
        X = torch.as_tensor(rng.normal(size=(9, 5)), dtype=torch.float32)
        yield Case(("mlp", int(rng.integers(1000)), X, ["input", "0", "1", "2", "4"], training),
                   label=f"an MLP with BatchNorm and Dropout, left in {'training' if training else 'eval'} mode")
    X = torch.as_tensor(rng.normal(size=(4, 1, 4, 4)), dtype=torch.float32)
    yield Case(("cnn", int(rng.integers(1000)), X, ["0", "1", "4"], True),
               label="a CNN: a (B, C, H, W) output becomes (B, C*H*W)")
    idx = torch.as_tensor(rng.integers(0, 11, size=(3, 5)))
    yield Case(("seq", int(rng.integers(1000)), idx, ["emb", "blocks.0", "blocks.1", "head"], True),
               label="a sequence model: (B, T, D) becomes (B*T, D); blocks return a tuple (keep its first element)")
    yield Case(("mlp", int(rng.integers(1000)), torch.as_tensor(rng.normal(size=(6, 5)), dtype=torch.float32),
                ["4"], False), label="one layer only")


def _judge_capture(got, expected, case):
    if not isinstance(got, dict) or set(got) != {"acts", "hooks", "training", "changed"}:
        return "the grader could not observe your capture"
    if got["hooks"]:
        return (f"{got['hooks']} hook(s) are still registered on the model afterwards: keep the handles that "
                "register_forward_hook returns and call .remove() on each (in a finally: block)")
    if got["training"] != expected["training"]:
        return (f"the model's training flag is {got['training']} afterwards, expected {expected['training']}: remember "
                "model.training before model.eval() and restore it with model.train(was_training)")
    if got["changed"]:
        return (f"the model changed: {got['changed']} (BatchNorm updates its running statistics in training mode: "
                "run the forward pass in eval mode, under torch.no_grad())")
    acts, exp = got["acts"], expected["acts"]
    if not isinstance(acts, dict):
        return f"return a dict {{layer name: (N, D) tensor}}, got {type(acts).__name__}"
    if list(acts) != list(exp):
        return f"the dict's keys should be the layer names in the given order {list(exp)}, got {list(acts)}"
    for name in exp:
        a = acts[name]
        if isinstance(a, torch.Tensor) and a.dtype != torch.float32:
            return f"layer {name!r}: return float32 tensors (.float()), got {a.dtype}"
        problem = compare(a, exp[name], 1e-5, 1e-6,
                          f"layer {name!r} (eval mode, no gradient; (B, T, D) -> (B*T, D), (B, C, H, W) -> (B, C*H*W); "
                          "a tuple output contributes its first element; 'input' is the inputs themselves)")
        if problem:
            return problem
        if isinstance(a, torch.Tensor) and a.requires_grad:
            return f"layer {name!r}: detach the captured tensors (run under torch.no_grad())"
    return None


def _capture_ref(model, inputs, layers):
    return L.capture(model, inputs, layers)


EXERCISES = [
    Exercise("lens.coverage", "Coverage: dead units and the entropy of unit use", cases=_coverage_cases,
             reference=_coverage_ref, judge=_judge_dict(("dead_fraction", "coverage", "entropy"), _COVERAGE_HINTS)),
    Exercise("lens.isotropy", "Isotropy: mean |cos| of centred rows and the top principal component's share",
             cases=_isotropy_cases, reference=_isotropy_ref,
             judge=_judge_dict(("mean_abs_cos", "top_pc_fraction"), _ISO_HINTS, rtol=1e-8, atol=1e-10)),
    Exercise("lens.bhattacharyya", "The Bhattacharyya distance between two sets of predictions", cases=_bhat_cases,
             reference=L.bhattacharyya,
             judge=_judge_float("the mean over samples of -log(max(sum_c sqrt(p q), 1e-12))")),
    Exercise("lens.inpca", "Intensive PCA of a distance matrix", cases=_inpca_cases, reference=L.inpca,
             judge=_judge_inpca),
    Exercise("lens.hunchback", "Is an intrinsic-dimension profile a hunchback?", cases=_hunch_cases,
             reference=zoo.hunchback, judge=_judge_bool),
    Exercise("lens.capture", "Capture layer outputs with forward hooks, leaving the model as it was",
             cases=_capture_cases, reference=_capture_ref, adapter=_capture_observe, judge=_judge_capture),
]
