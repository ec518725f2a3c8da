"""Checks for chapter v1_architecture/02_graph_neural_networks (Volume 1, sections 1.5-1.7).

Graphs are drawn at grading time from the seeded generator: random graphs of odd sizes, disconnected graphs,
bipartite paths, weighted graphs, a node without neighbours, repeated edges, the karate club. Spectral embeddings are
judged by the subspace they span (never by the sign of an eigenvector), and GAT coefficients by their exact zeros.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from manifold_course.grading import Case, Exercise
from manifold_course.grading.compare import compare, float_problem
from manifold_course.grading.probes import gradient_judge, input_gradients
from manifold_course.nn import deformable, gnn, graphs

CHAPTER = "v1_architecture/02_graph_neural_networks"


# ---------------------------------------------------------------- graph makers


def _random_graph(rng, n: int, p: float, dtype=torch.float64, weighted: bool = False, isolated_ok: bool = False):
    """Symmetric adjacency with zero diagonal; unless ``isolated_ok``, every node gets at least one neighbour."""
    upper = np.triu(rng.random((n, n)) < p, k=1)
    A = (upper | upper.T).astype(np.float64)
    if not isolated_ok:
        for i in np.flatnonzero(A.sum(1) == 0):
            j = (i + 1 + int(rng.integers(n - 1))) % n
            A[i, j] = A[j, i] = 1.0
    if weighted:
        Wt = np.triu(rng.uniform(0.5, 2.0, (n, n)), 1)
        A = A * (Wt + Wt.T)
    return torch.as_tensor(A, dtype=dtype)


def _karate(dtype=torch.float64):
    return graphs.adjacency_matrix(nx.karate_club_graph(), dtype)


def _two_components(rng, dtype=torch.float64):
    A1, A2 = _random_graph(rng, 9, 0.5), _random_graph(rng, 6, 0.6)
    nx_conn = all(nx.is_connected(nx.from_numpy_array(a.numpy())) for a in (A1, A2))
    A = torch.block_diag(A1, A2) if nx_conn else torch.block_diag(_karate(), graphs.adjacency_matrix(nx.cycle_graph(7)))
    return A.to(dtype)


def _path(n, dtype=torch.float64):
    return graphs.adjacency_matrix(nx.path_graph(n), dtype)


def _graph_cases(rng):
    yield Case((_karate(),), label="the karate club (34 nodes, float64)")
    n = int(rng.integers(20, 40))
    yield Case((_random_graph(rng, n, 0.2),), label=f"a random graph with {n} nodes")
    yield Case((_two_components(rng),), label="two connected components")
    yield Case((_path(7),), label="a path of 7 nodes (bipartite)")
    yield Case((_random_graph(rng, 2, 1.0),), label="two nodes and one edge")
    yield Case((_random_graph(rng, 13, 0.4, weighted=True),), label="a weighted graph (weights in [0.5, 2])")
    yield Case((_random_graph(rng, 37, 0.15, dtype=torch.float32),), label="float32, 37 nodes: keep the dtype")


# ---------------------------------------------------------------- 1.5 Laplacians and the normalised adjacency


def _norm_adj_cases(rng):
    for case in _graph_cases(rng):
        yield Case(case.args, {"self_loops": True}, label=case.label + ", self_loops=True")
    yield Case((_path(6),), {"self_loops": False}, label="a path, self_loops=False: eigenvalue -1 appears")
    yield Case((_random_graph(rng, 15, 0.3, weighted=True),), {"self_loops": False}, label="weighted, self_loops=False")
    yield Case((_karate(torch.float32),), label="karate, float32, default self_loops")


def _norm_adj_spectrum(fn) -> str | None:
    A = _path(8)
    for loops, lo in ((True, -1.0 + 1e-9), (False, -1.0 - 1e-9)):
        ev = graphs.spectrum(fn(A, self_loops=loops))
        if float(ev.max()) > 1 + 1e-9 or float(ev.min()) < lo:
            return f"eigenvalues of your normalised adjacency of a path (self_loops={loops}) lie outside the allowed range"
    return None


def _ortho_problem(U, n: int, k: int, dtype, tol: float) -> str | None:
    if not isinstance(U, torch.Tensor):
        return f"return a torch.Tensor of shape ({n}, {k}), got {type(U).__name__}"
    if tuple(U.shape) != (n, k):
        return f"the embedding has shape {tuple(U.shape)}, expected ({n}, {k}): one row per node, one column per eigenvector"
    if U.dtype != dtype:
        return f"the embedding has dtype {U.dtype}, expected {dtype} (the dtype of A)"
    U = U.detach().double()
    if not torch.isfinite(U).all():
        return "the embedding contains NaN or inf"
    if float((U.T @ U - torch.eye(k, dtype=torch.float64)).abs().max()) > tol:
        return "the columns are not orthonormal (U^T U != I): use torch.linalg.eigh on the symmetric L_sym"
    return None


def _spectral_cases(rng):
    yield Case((_karate(), 2), label="karate club, k=2")
    sbm = graphs.stochastic_block_model([20, 27, 31], 0.5, 0.02, seed=int(rng.integers(1_000_000)), dtype=torch.float64)
    yield Case((sbm.A, 3), label="a 3-block SBM (78 nodes), k=3")
    yield Case((_two_components(rng), 2), label="two components, k=2: eigenvalue 0 twice, any basis of it is right")
    yield Case((_karate(), 1), label="k=1")
    sbm = graphs.stochastic_block_model([15, 16], 0.6, 0.05, seed=int(rng.integers(1_000_000)), dtype=torch.float64)
    yield Case((sbm.A, 4), label="k=4 on a 2-block SBM")
    yield Case((_karate(torch.float32), 3), label="float32 karate, k=3", atol=2e-4)


def _judge_spectral(got, expected, case) -> str | None:
    A, k = case.args
    tol = case.atol if case.atol is not None else 1e-8
    problem = _ortho_problem(got, A.shape[0], k, A.dtype, max(tol, 1e-8))
    if problem:
        return problem
    err = graphs.subspace_distance(got.detach().double(), expected.double())
    if err > max(tol, 1e-7):
        return (f"your columns span a different subspace from the eigenvectors of L_sym = I - D^-1/2 A D^-1/2 for the "
                f"k smallest eigenvalues (max |UU^T - VV^T| = {err:.3g}); eigh returns eigenvalues in ascending order and "
                "eigenvectors as *columns*")
    return None


def _spectral_recovers_blocks(fn) -> str | None:
    sbm = graphs.stochastic_block_model([40, 40, 40], 0.3, 0.02, seed=3, dtype=torch.float64)
    U = fn(sbm.A, 3).detach().double()
    U = U / U.norm(dim=1, keepdim=True).clamp_min(1e-12)
    labels = KMeans(3, n_init=10, random_state=0).fit_predict(U.numpy())
    ari = adjusted_rand_score(sbm.y.numpy(), labels)
    if ari < 0.9:
        return f"k-means on your embedding of a 3-block SBM has adjusted Rand index {ari:.2f} < 0.9"
    return None


# ---------------------------------------------------------------- 1.6 message passing, GCN, GAT


def _edge_list(rng, n: int, E: int, dtype):
    ei = torch.as_tensor(rng.integers(0, n, size=(2, E)), dtype=torch.int64)
    w = torch.as_tensor(rng.uniform(-1, 2, size=E), dtype=dtype)
    return ei, w


def _mp_cases(rng):
    n = int(rng.integers(10, 30))
    ei, w = _edge_list(rng, n, 3 * n, torch.float64)
    yield Case((torch.as_tensor(rng.standard_normal((n, 5))), ei, w), label=f"random directed edges, n={n}, F=5")
    X = torch.as_tensor(rng.standard_normal((6, 3)))
    ei = torch.tensor([[0, 0, 1, 2, 2, 2], [3, 3, 3, 4, 4, 0]])
    w = torch.tensor([1.0, 2.0, 0.5, 1.0, 1.0, -1.0], dtype=torch.float64)
    yield Case((X, ei, w), label="repeated edges into the same node: every message counts")
    ei = torch.tensor([[1, 2, 3], [0, 0, 0]])
    yield Case((X[:4], ei, torch.ones(3, dtype=torch.float64)), label="a directed star: messages flow src -> dst only")
    yield Case((X, torch.zeros(2, 0, dtype=torch.int64), torch.zeros(0, dtype=torch.float64)), label="no edges at all")
    A = _karate(torch.float32)
    ei, w = gnn.edge_index_from_adjacency(A)
    yield Case((torch.as_tensor(rng.standard_normal((34, 1)), dtype=torch.float32), ei, w), label="karate, float32, F=1")


def _mp_matches_dense(fn) -> str | None:
    g = np.random.default_rng(5)
    n = 17
    ei, w = _edge_list(g, n, 40, torch.float64)
    X = torch.as_tensor(g.standard_normal((n, 4)))
    problem = compare(fn(X, ei, w), gnn.to_dense(ei, w, n) @ X, 1e-9, 1e-9, "message_passing(X, edge_index, w)")
    return problem and problem + " (it should equal M @ X with M[dst, src] = w)"


def _gcn_cases(rng):
    for case in _graph_cases(rng):
        A = case.args[0]
        n, f_in, f_out = A.shape[0], int(rng.integers(1, 6)), int(rng.integers(1, 5))
        X = torch.as_tensor(rng.standard_normal((n, f_in)), dtype=A.dtype)
        W = torch.as_tensor(rng.standard_normal((f_in, f_out)), dtype=A.dtype)
        yield Case((X, A, W), label=case.label + f", F={f_in} -> {f_out}")


def _equivariance_property(kind: str):
    """out(P x, P A P^T) = P out(x, A) for a layer; alpha(P x, P A P^T) = P alpha P^T for attention."""
    def prop(fn) -> str | None:
        g = np.random.default_rng(7)
        A = _random_graph(g, 19, 0.25)
        X = torch.as_tensor(g.standard_normal((19, 4)))
        W = torch.as_tensor(g.standard_normal((4, 3)))
        a = torch.as_tensor(g.standard_normal(6))
        perm = torch.as_tensor(g.permutation(19))
        extra = (W,) if kind == "gcn" else (W, a)
        out, out_p = fn(X, A, *extra), fn(X[perm], A[perm][:, perm], *extra)
        expected = out[perm] if kind == "gcn" else out[perm][:, perm]
        if not torch.allclose(out_p, expected, rtol=1e-9, atol=1e-10):
            what = "out(P x, P A P^T) != P out(x, A)" if kind == "gcn" else "alpha(P x, P A P^T) != P alpha P^T"
            return f"not permutation-equivariant: {what}; renumbering the nodes must only renumber the output"
        return None
    return prop


def _gat_cases(rng):
    for case in _graph_cases(rng):
        A = case.args[0]
        n, f_in, f_out = A.shape[0], int(rng.integers(2, 6)), int(rng.integers(1, 5))
        h = torch.as_tensor(rng.standard_normal((n, f_in)), dtype=A.dtype)
        W = torch.as_tensor(rng.standard_normal((f_in, f_out)), dtype=A.dtype)
        a = torch.as_tensor(rng.standard_normal(2 * f_out), dtype=A.dtype)
        yield Case((h, A, W, a), label=case.label)
    A = _random_graph(rng, 9, 0.3, isolated_ok=True)
    A[4, :] = 0.0
    A[:, 4] = 0.0
    yield Case((torch.as_tensor(rng.standard_normal((9, 3))), A, torch.as_tensor(rng.standard_normal((3, 2))),
                torch.as_tensor(rng.standard_normal(4))), label="node 4 has no neighbours: it attends only to itself")
    h = torch.as_tensor(rng.standard_normal((8, 3))) * 30
    yield Case((h, _random_graph(rng, 8, 0.5), torch.eye(3, dtype=torch.float64), torch.ones(6, dtype=torch.float64)),
               label="large scores: subtract the max (or use torch.softmax)")


def _judge_gat(got, expected, case) -> str | None:
    problem = compare(got, expected, 1e-5, 1e-7)
    if problem:
        return problem
    A = case.args[1]
    off_graph = (A == 0) & ~torch.eye(A.shape[0], dtype=torch.bool)
    if off_graph.any() and bool((got.detach()[off_graph] != 0).any()):
        return "an entry outside the graph (not a neighbour, not the node itself) is not exactly 0: mask with -inf"
    return None


def _dirichlet_cases(rng):
    A = _karate()
    yield Case((torch.as_tensor(rng.standard_normal((34, 3))), A), label="karate, random features")
    d = graphs.degrees(A)
    yield Case((d.sqrt()[:, None] * 2.5, A), label="h = c sqrt(d): zero energy", atol=1e-9)
    n = int(rng.integers(15, 40))
    A = _random_graph(rng, n, 0.2, weighted=True)
    yield Case((torch.as_tensor(rng.standard_normal((n, 1))), A), label=f"weighted graph, n={n}, one feature")
    A = _two_components(rng)
    yield Case((torch.as_tensor(rng.standard_normal((A.shape[0], 4))), A), label="two components")
    A = _random_graph(rng, 21, 0.3, dtype=torch.float32)
    yield Case((torch.as_tensor(rng.standard_normal((21, 2)), dtype=torch.float32), A), label="float32", rtol=1e-4)


def _judge_float(got, expected, case) -> str | None:
    problem = float_problem(got)
    if problem:
        return problem
    rtol = case.rtol if case.rtol is not None else 1e-7
    atol = case.atol if case.atol is not None else 1e-9
    if abs(float(got) - expected) > atol + rtol * abs(expected):
        return (f"expected E(H) = tr(H^T L_sym H) = {expected:.6g}, got {float(got):.6g}; per edge "
                "(counted once) the term is A_ij ||h_i / sqrt(d_i) - h_j / sqrt(d_j)||^2")
    return None


# ---------------------------------------------------------------- 1.7 deformable and dynamic convolution


def _interp_cases(rng):
    x = torch.as_tensor(rng.standard_normal((2, 3, 11)))
    pos = torch.as_tensor(rng.uniform(0, 10, size=(2, 17)))
    yield Case((x, pos), label="B=2, C=3, L=11, positions inside [0, L-1]")
    yield Case((x, torch.arange(11, dtype=torch.float64).repeat(2, 1)), label="integer positions: the samples themselves")
    out = torch.tensor([[-3.2, -1.0, -0.5, -0.25, 10.0, 10.5, 10.75, 11.0, 14.0]], dtype=torch.float64)
    yield Case((x[:1], out), label="positions outside: zero padding (between x[0] and 0 on (-1, 0))")
    yield Case((torch.as_tensor(rng.standard_normal((1, 1, 1))), torch.tensor([[-0.5, 0.0, 0.25, 1.0]], dtype=torch.float64)),
               label="L=1")
    x32 = torch.as_tensor(rng.standard_normal((3, 2, 30)), dtype=torch.float32)
    yield Case((x32, torch.as_tensor(rng.uniform(-2, 31, size=(3, 8)), dtype=torch.float32)), label="float32, some outside")


def _deform_cases(rng):
    x = torch.as_tensor(rng.standard_normal((2, 3, 13)))
    w = torch.as_tensor(rng.standard_normal((4, 3, 3)))
    yield Case((x, w, torch.zeros(2, 11, 3, dtype=torch.float64)), label="zero offsets: F.conv1d")
    yield Case((x, w, torch.as_tensor(rng.uniform(-2, 2, size=(2, 11, 3)))), label="fractional offsets in [-2, 2]")
    yield Case((x, w, torch.as_tensor(rng.uniform(-1, 1, size=(2, 15, 3)))), {"padding": 2}, label="padding=2")
    x1 = torch.as_tensor(rng.standard_normal((1, 1, 9)))
    w1 = torch.as_tensor(rng.standard_normal((1, 1, 4)))
    yield Case((x1, w1, torch.full((1, 6, 4), 3.0, dtype=torch.float64)), label="B=1, integer offsets +3 (even kernel)")
    yield Case((x1, w1, torch.as_tensor(rng.uniform(-12, 12, size=(1, 8, 4)))), {"padding": 1},
               label="huge offsets: samples fall outside and read 0")
    x32 = torch.as_tensor(rng.standard_normal((3, 2, 20)), dtype=torch.float32)
    yield Case((x32, torch.as_tensor(rng.standard_normal((5, 2, 5)), dtype=torch.float32),
                torch.as_tensor(rng.uniform(-1.5, 1.5, size=(3, 16, 5)), dtype=torch.float32)), label="float32")


def _dynamic_cases(rng):
    B, C, O, K, k, L = 3, 2, 4, 3, 3, 17
    x = torch.as_tensor(rng.standard_normal((B, C, L)))
    ker = torch.as_tensor(rng.standard_normal((K, O, C, k)))
    soft = torch.softmax(torch.as_tensor(rng.standard_normal((B, K))), dim=1)
    yield Case((x, ker, soft), label="softmax mixing weights, B=3, K=3")
    yield Case((x, ker, F.one_hot(torch.tensor([2, 0, 2]), K).double()), {"padding": 1}, label="one-hot weights, padding=1")
    yield Case((x[:1], ker, soft[:1]), {"padding": 2}, label="B=1, padding=2")
    w = torch.as_tensor(rng.uniform(-1, 1, size=(B, K)))
    yield Case((x, ker, w), label="arbitrary (signed) weights: use them as given, no softmax")
    x32 = torch.as_tensor(rng.standard_normal((5, 1, 10)), dtype=torch.float32)
    ker32 = torch.as_tensor(rng.standard_normal((2, 3, 1, 4)), dtype=torch.float32)
    yield Case((x32, ker32, torch.softmax(torch.as_tensor(rng.standard_normal((5, 2)), dtype=torch.float32), 1)),
               label="float32, B=5, even kernel length 4")


def _dynamic_one_hot(fn) -> str | None:
    g = torch.Generator().manual_seed(4)
    x = torch.randn(4, 3, 15, generator=g, dtype=torch.float64)
    ker = torch.randn(5, 2, 3, 3, generator=g, dtype=torch.float64)
    choice = [4, 1, 1, 0]
    out = fn(x, ker, F.one_hot(torch.tensor(choice), 5).double(), padding=1)
    for b, j in enumerate(choice):
        if not torch.allclose(out[b], F.conv1d(x[b:b + 1], ker[j], padding=1)[0], atol=1e-10):
            return f"with a one-hot router picking kernel {j} for sample {b}, the output is not F.conv1d with that kernel"
    return None


EXERCISES = [
    Exercise("gnn.graph_laplacians", "The three graph Laplacians",
             cases=_graph_cases, reference=graphs.graph_laplacians, rtol=1e-5, atol=1e-6),
    Exercise("gnn.normalized_adjacency", "The normalised adjacency, with and without self-loops",
             cases=_norm_adj_cases, reference=graphs.normalized_adjacency, rtol=1e-5, atol=1e-6,
             properties=[_norm_adj_spectrum]),
    Exercise("gnn.spectral_embedding", "Spectral embedding (judged by its subspace)",
             cases=_spectral_cases, reference=graphs.spectral_embedding, judge=_judge_spectral,
             properties=[_spectral_recovers_blocks]),
    Exercise("gnn.message_passing", "Message passing on an edge list",
             cases=_mp_cases, reference=gnn.message_passing, rtol=1e-6, atol=1e-6, properties=[_mp_matches_dense]),
    Exercise("gnn.gcn_layer", "A GCN layer: self-loops, symmetric normalisation, ReLU",
             cases=_gcn_cases, reference=gnn.gcn_layer, rtol=1e-5, atol=1e-6,
             properties=[_equivariance_property("gcn")]),
    Exercise("gnn.gat_attention", "GAT attention coefficients",
             cases=_gat_cases, reference=gnn.gat_attention, judge=_judge_gat,
             properties=[_equivariance_property("gat")]),
    Exercise("gnn.dirichlet_energy", "Dirichlet energy of node features",
             cases=_dirichlet_cases, reference=graphs.dirichlet_energy, judge=_judge_float),
    Exercise("gnn.linear_interp_1d", "Linear interpolation with zero padding",
             cases=_interp_cases, reference=deformable.linear_interp_1d, rtol=1e-5, atol=1e-6,
             adapter=input_gradients({0: "x", 1: "the positions"}),
             judge=gradient_judge(1e-5, 1e-6, defined=lambda case: {"the positions": case.args[1] != case.args[1].round()},
                                  hint="d output / d position is the slope x[i+1] - x[i]: use t = p - floor(p) as a weight",
                                  not_differentiable="the output does not depend differentiably on the positions (no "
                                  "gradient): use t = p - floor(p) as a weight")),
    Exercise("gnn.deform_conv1d", "1-D deformable convolution",
             cases=_deform_cases, reference=deformable.deform_conv1d, rtol=1e-5, atol=1e-5,
             adapter=input_gradients({0: "x", 1: "the weights", 2: "the offsets"}),
             judge=gradient_judge(1e-5, 1e-5, defined=lambda case: {"the offsets": case.args[2] != case.args[2].round()},
                                  hint="offsets must move the sampling points smoothly: interpolate with weights "
                                  "t = p - floor(p), do not round",
                                  not_differentiable="the output carries no gradient to the offsets: interpolate with "
                                  "weights t = p - floor(p), do not round")),
    Exercise("gnn.dynamic_conv1d", "Dynamic convolution: per-sample mixtures of kernels",
             cases=_dynamic_cases, reference=deformable.dynamic_conv1d, rtol=1e-5, atol=1e-5,
             properties=[_dynamic_one_hot]),
]
