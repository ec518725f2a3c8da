import math

import networkx as nx
import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F
from sklearn.metrics import adjusted_rand_score

from manifold_course.nn import deformable, gnn, graphs
from manifold_course.nn.gnn import GNNConfig, NodeTrainConfig


def _random_graph(n, p, seed):
    return graphs.adjacency_matrix(nx.gnp_random_graph(n, p, seed=seed))


def _karate():
    G = nx.karate_club_graph()
    y = torch.tensor([0 if G.nodes[i]["club"] == "Mr. Hi" else 1 for i in G.nodes])
    return graphs.adjacency_matrix(G), y


# ---------------------------------------------------------------- graphs


def test_karate_adjacency_is_symmetric_with_78_edges():
    A, y = _karate()
    assert A.shape == (34, 34) and torch.equal(A, A.T) and int(A.sum()) == 2 * 78
    assert torch.equal(graphs.degrees(A)[[0, 33]], torch.tensor([16.0, 17.0], dtype=torch.float64))
    assert torch.equal(torch.bincount(y), torch.tensor([17, 17]))


@pytest.mark.parametrize("n", [5, 17, 32, 50])
def test_laplacians_match_networkx(n):
    G = nx.gnp_random_graph(n, 0.3, seed=n)
    G.remove_nodes_from([v for v in list(G.nodes) if G.degree(v) == 0])
    A = graphs.adjacency_matrix(G)
    L, L_sym, L_rw = graphs.graph_laplacians(A)
    np.testing.assert_allclose(L.numpy(), nx.laplacian_matrix(G).toarray())
    np.testing.assert_allclose(L_sym.numpy(), nx.normalized_laplacian_matrix(G).toarray(), atol=1e-12)
    d = graphs.degrees(A)
    np.testing.assert_allclose(L_rw.numpy(), np.eye(len(d)) - A.numpy() / d.numpy()[:, None], atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_laplacian_spectra(seed):
    G = nx.disjoint_union_all([nx.gnp_random_graph(9, 0.6, seed=seed), nx.cycle_graph(5), nx.path_graph(4)])
    A = graphs.adjacency_matrix(G)
    L, L_sym, L_rw = graphs.graph_laplacians(A)
    assert torch.allclose(L.sum(dim=1), torch.zeros(len(A), dtype=torch.float64))
    ev_sym = graphs.spectrum(L_sym)
    assert float(graphs.spectrum(L).min()) > -1e-10
    assert float(ev_sym.min()) > -1e-10 and float(ev_sym.max()) < 2 + 1e-10
    rw = np.sort(np.linalg.eigvals(L_rw.numpy()).real)
    np.testing.assert_allclose(rw, ev_sym.numpy(), atol=1e-9)          # L_rw is similar to L_sym
    components = nx.number_connected_components(G)
    assert graphs.count_zero_eigenvalues(L) == graphs.count_zero_eigenvalues(L_sym) == components


def test_quadratic_form_is_the_sum_over_edges():
    A = _random_graph(23, 0.3, 4)
    L, _, _ = graphs.graph_laplacians(A)
    x = torch.randn(23, dtype=torch.float64)
    i, j = torch.triu_indices(23, 23, 1)
    edge_sum = (A[i, j] * (x[i] - x[j]) ** 2).sum()
    assert torch.allclose(x @ L @ x, edge_sum)


@pytest.mark.parametrize("n", [2, 7, 12])
def test_path_spectrum_is_the_cosine_law(n):
    L, L_sym, _ = graphs.graph_laplacians(graphs.adjacency_matrix(nx.path_graph(n)))
    k = np.arange(n)
    np.testing.assert_allclose(graphs.spectrum(L).numpy(), np.sort(2 - 2 * np.cos(np.pi * k / n)), atol=1e-10)
    assert abs(float(graphs.spectrum(L_sym).max()) - 2.0) < 1e-10    # bipartite: eigenvalue 2


def test_normalized_adjacency_spectrum_and_relation_to_laplacian():
    A = graphs.adjacency_matrix(nx.path_graph(10))
    _, L_sym, _ = graphs.graph_laplacians(A)
    N = graphs.normalized_adjacency(A, self_loops=False)
    assert torch.allclose(N, torch.eye(10, dtype=torch.float64) - L_sym)
    assert abs(float(graphs.spectrum(N).min()) + 1) < 1e-10         # bipartite: -1
    A_hat = graphs.normalized_adjacency(A)
    ev = graphs.spectrum(A_hat)
    assert torch.allclose(A_hat, A_hat.T)
    assert float(ev.min()) > -1 + 1e-3 and abs(float(ev.max()) - 1) < 1e-10
    d = graphs.degrees(A) + 1
    assert torch.allclose(A_hat @ d.sqrt(), d.sqrt())               # top eigenvector: sqrt of the degrees


def test_normalized_adjacency_keeps_float32_and_handles_isolated_nodes():
    A = torch.zeros(4, 4)
    A[0, 1] = A[1, 0] = 1.0
    N = graphs.normalized_adjacency(A, self_loops=False)
    assert N.dtype == torch.float32 and torch.isfinite(N).all() and float(N[2:].abs().sum()) == 0.0
    assert torch.allclose(graphs.normalized_adjacency(A)[2:, 2:], torch.eye(2))


def test_spectral_embedding_spans_the_bottom_eigenspace():
    A = _random_graph(30, 0.3, 1)
    U = graphs.spectral_embedding(A, 4)
    _, L_sym, _ = graphs.graph_laplacians(A)
    _, V = scipy.linalg.eigh(L_sym.numpy())
    assert torch.allclose(U.T @ U, torch.eye(4, dtype=torch.float64), atol=1e-10)
    assert graphs.subspace_distance(U, torch.as_tensor(V[:, :4])) < 1e-8
    assert graphs.subspace_distance(U, torch.as_tensor(V[:, 1:5])) > 0.1


def test_spectral_clustering_recovers_sbm_blocks():
    sbm = graphs.stochastic_block_model([30, 40, 50], 0.3, 0.02, seed=0)
    assert adjusted_rand_score(sbm.y.numpy(), graphs.spectral_clusters(sbm.A, 3)) > 0.95


def test_fiedler_vector_splits_the_karate_club():
    A, y = _karate()
    side = (graphs.fiedler_vector(A) > 0).long()
    assert max(int((side == y).sum()), int((side != y).sum())) == 32


def test_sbm_is_seeded_symmetric_and_has_the_right_densities():
    a = graphs.stochastic_block_model([50, 70], 0.2, 0.05, n_features=3, seed=5)
    b = graphs.stochastic_block_model([50, 70], 0.2, 0.05, n_features=3, seed=5)
    assert torch.equal(a.A, b.A) and torch.equal(a.X, b.X)
    assert torch.equal(a.A, a.A.T) and float(a.A.diagonal().abs().sum()) == 0.0
    assert a.X.shape == (120, 3) and torch.equal(torch.bincount(a.y), torch.tensor([50, 70]))
    same = a.y[:, None] == a.y[None, :]
    off_diag = ~torch.eye(120, dtype=torch.bool)
    assert abs(float(a.A[same & off_diag].mean()) - 0.2) < 0.03
    assert abs(float(a.A[~same].mean()) - 0.05) < 0.02


def test_dirichlet_energy_equals_the_edge_sum_and_vanishes_on_sqrt_degree():
    A = _random_graph(25, 0.25, 2)
    A = A[graphs.degrees(A) > 0][:, graphs.degrees(A) > 0]
    H = torch.randn(len(A), 3, dtype=torch.float64)
    d = graphs.degrees(A)
    Hn = H / d.sqrt()[:, None]
    edge_sum = 0.5 * (A * ((Hn[:, None] - Hn[None]) ** 2).sum(-1)).sum()
    assert math.isclose(graphs.dirichlet_energy(H, A), float(edge_sum), rel_tol=1e-10)
    assert abs(graphs.dirichlet_energy(d.sqrt()[:, None] * 3.0, A)) < 1e-10
    assert 0.0 <= graphs.rayleigh_quotient(H, A) <= 2.0


def test_dirichlet_energy_does_not_increase_under_gcn_propagation():
    sbm = graphs.stochastic_block_model([20, 20], 0.3, 0.05, seed=1, dtype=torch.float64)
    A_loop = sbm.A + torch.eye(40, dtype=torch.float64)
    P = graphs.normalized_adjacency(sbm.A)
    H, energies = sbm.X, []
    for _ in range(12):
        energies.append(graphs.dirichlet_energy(H, A_loop))
        H = P @ H
    assert all(b <= a + 1e-12 for a, b in zip(energies, energies[1:]))


# ---------------------------------------------------------------- message passing, GCN, GAT


def test_message_passing_equals_the_dense_product_with_repeated_edges():
    ei = torch.tensor([[0, 0, 1, 2, 2, 3], [1, 1, 1, 0, 3, 3]])
    w = torch.tensor([1.0, 2.0, -1.0, 0.5, 1.0, 3.0], dtype=torch.float64)
    X = torch.randn(5, 2, dtype=torch.float64)
    out = gnn.message_passing(X, ei, w)
    assert torch.allclose(out, gnn.to_dense(ei, w, 5) @ X)
    assert torch.allclose(out[1], 3 * X[0] - X[1]) and torch.equal(out[4], torch.zeros(2, dtype=torch.float64))


def test_edge_list_round_trip_and_gcn_weights():
    A = _random_graph(19, 0.3, 3)
    ei, w = gnn.edge_index_from_adjacency(A)
    assert torch.equal(gnn.to_dense(ei, w, 19), A)
    eg, wg = gnn.gcn_edge_weights(ei, 19)
    assert torch.allclose(gnn.to_dense(eg, wg, 19), graphs.normalized_adjacency(A))


@pytest.mark.parametrize("aggregate", ["sum", "mean", "amax"])
def test_propagate_aggregations(aggregate):
    ei = torch.tensor([[1, 2, 3, 0], [0, 0, 0, 1]])
    X = torch.tensor([[1.0], [2.0], [-4.0], [6.0]])
    out = gnn.propagate(X, ei, message=lambda h_dst, h_src: h_src, update=lambda h, m: m, aggregate=aggregate)
    expected = {"sum": 4.0, "mean": 4.0 / 3.0, "amax": 6.0}[aggregate]
    assert math.isclose(float(out[0, 0]), expected, rel_tol=1e-6)
    assert float(out[1, 0]) == 1.0 and float(out[2, 0]) == 0.0


def test_gcn_layer_is_permutation_equivariant_and_nonnegative():
    A = _random_graph(21, 0.2, 7)
    X = torch.randn(21, 4, dtype=torch.float64)
    W = torch.randn(4, 3, dtype=torch.float64)
    perm = torch.randperm(21, generator=torch.Generator().manual_seed(0))
    err = gnn.permutation_equivariance_error(lambda X_, A_: gnn.gcn_layer(X_, A_, W), X, A, perm)
    assert err < 1e-12
    assert float(gnn.gcn_layer(X, A, W).min()) >= 0.0


def test_gcn_module_matches_the_function():
    A = _random_graph(12, 0.4, 8)
    layer = gnn.GCNLayer(3, 2).double()
    with torch.no_grad():
        layer.bias.normal_()
    X = torch.randn(12, 3, dtype=torch.float64)
    out = layer(X, graphs.normalized_adjacency(A))
    assert torch.allclose(out, gnn.gcn_layer(X, A, layer.linear.weight.T, layer.bias))


def test_gat_rows_are_distributions_over_the_neighbourhood():
    A = _random_graph(15, 0.2, 9)
    A[3], A[:, 3] = 0.0, 0.0
    h = torch.randn(15, 4, dtype=torch.float64)
    alpha = gnn.gat_attention(h, A, torch.randn(4, 3, dtype=torch.float64), torch.randn(6, dtype=torch.float64))
    mask = (A != 0) | torch.eye(15, dtype=torch.bool)
    assert torch.allclose(alpha.sum(1), torch.ones(15, dtype=torch.float64))
    assert bool((alpha[~mask] == 0).all()) and bool((alpha[mask] > 0).all())
    assert float(alpha[3, 3]) == 1.0


def test_gat_with_zero_attention_vector_is_the_neighbourhood_mean():
    A = _random_graph(10, 0.4, 10)
    alpha = gnn.gat_attention(torch.randn(10, 3, dtype=torch.float64), A, torch.randn(3, 2, dtype=torch.float64),
                              torch.zeros(4, dtype=torch.float64))
    A_t = A + torch.eye(10, dtype=torch.float64)
    assert torch.allclose(alpha, A_t / A_t.sum(1, keepdim=True))


def test_gat_layer_is_permutation_equivariant():
    torch.manual_seed(0)
    layer = gnn.GATLayer(4, 3, heads=2).double()
    A = _random_graph(16, 0.3, 11)
    X = torch.randn(16, 4, dtype=torch.float64)
    perm = torch.randperm(16)
    assert gnn.permutation_equivariance_error(lambda X_, A_: layer(X_, A_), X, A, perm) < 1e-12
    assert layer(X, A).shape == (16, 6)


def test_gcn_classifies_the_karate_club_from_two_labels_and_mlp_cannot():
    A, y = _karate()
    A, X = A.float(), torch.eye(34)
    train, test = torch.tensor([0, 33]), torch.arange(1, 33)
    accs = {}
    for kind in ("gcn", "mlp"):
        model, losses = gnn.train_node_classifier(GNNConfig(34, 2, kind=kind), X, A, y, train, NodeTrainConfig(steps=100))
        accs[kind] = gnn.node_accuracy(model, X, A, y, test)
    assert accs["gcn"] >= 0.9 and accs["mlp"] <= 0.6                   # the MLP has never seen nodes 1..32


def test_training_is_seeded_and_leaves_the_callers_stream_alone():
    A, y = _karate()
    torch.manual_seed(1)
    expected = torch.rand(1)
    torch.manual_seed(1)
    m1, l1 = gnn.train_node_classifier(GNNConfig(34, 2), torch.eye(34), A.float(), y, torch.tensor([0, 33]),
                                       NodeTrainConfig(steps=5, seed=3))
    assert torch.equal(torch.rand(1), expected)
    m2, l2 = gnn.train_node_classifier(GNNConfig(34, 2), torch.eye(34), A.float(), y, torch.tensor([0, 33]),
                                       NodeTrainConfig(steps=5, seed=3))
    assert l1 == l2


@pytest.mark.parametrize("depth", [1, 3, 6])
def test_node_classifier_depth_and_hidden_states(depth):
    model = gnn.NodeClassifier(GNNConfig(5, 3, hidden=7, depth=depth))
    out, hidden = model(torch.randn(9, 5), _random_graph(9, 0.5, 0).float(), return_hidden=True)
    assert out.shape == (9, 3) and len(hidden) == depth - 1 and all(h.shape == (9, 7) for h in hidden)


# ---------------------------------------------------------------- deformable and dynamic convolution


def test_linear_interp_matches_numpy_inside_and_zero_pads_outside():
    x = torch.randn(2, 3, 11, dtype=torch.float64)
    pos = torch.rand(2, 20, dtype=torch.float64) * 10
    out = deformable.linear_interp_1d(x, pos)
    for b in range(2):
        for c in range(3):
            np.testing.assert_allclose(out[b, c].numpy(), np.interp(pos[b].numpy(), np.arange(11), x[b, c].numpy()))
    far = torch.tensor([[-5.0, -1.0, 11.0, 30.0]], dtype=torch.float64)
    assert float(deformable.linear_interp_1d(x[:1], far).abs().max()) == 0.0
    half = deformable.linear_interp_1d(x[:1], torch.tensor([[-0.5, 10.5]], dtype=torch.float64))
    assert torch.allclose(half[0, :, 0], 0.5 * x[0, :, 0]) and torch.allclose(half[0, :, 1], 0.5 * x[0, :, 10])


def test_linear_interp_gradient_is_the_local_slope():
    x = torch.tensor([[[0.0, 1.0, 4.0, 9.0]]], dtype=torch.float64)
    pos = torch.tensor([[0.5, 1.5, 2.5]], dtype=torch.float64, requires_grad=True)
    deformable.linear_interp_1d(x, pos).sum().backward()
    assert torch.allclose(pos.grad, torch.tensor([[1.0, 3.0, 5.0]], dtype=torch.float64))


@pytest.mark.parametrize("L, K, padding", [(13, 3, 0), (10, 4, 1), (7, 5, 2), (5, 1, 0)])
def test_deform_conv1d_with_zero_offsets_is_conv1d(L, K, padding):
    x = torch.randn(2, 3, L, dtype=torch.float64)
    w = torch.randn(4, 3, K, dtype=torch.float64)
    b = torch.randn(4, dtype=torch.float64)
    L_out = L + 2 * padding - K + 1
    out = deformable.deform_conv1d(x, w, torch.zeros(2, L_out, K, dtype=torch.float64), b, padding)
    torch.testing.assert_close(out, F.conv1d(x, w, b, padding=padding), rtol=0, atol=1e-12)


def test_deform_conv1d_integer_offset_shifts_the_input():
    x = torch.randn(1, 2, 20, dtype=torch.float64)
    w = torch.randn(3, 2, 3, dtype=torch.float64)
    out = deformable.deform_conv1d(x, w, torch.full((1, 18, 3), 2.0, dtype=torch.float64))
    torch.testing.assert_close(out[:, :, :16], F.conv1d(x[:, :, 2:], w))


def test_deform_conv1d_has_gradients_for_the_offsets():
    x = torch.randn(2, 3, 16, dtype=torch.float64)
    w = torch.randn(2, 3, 3, dtype=torch.float64)
    off = (0.3 * torch.randn(2, 14, 3, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda o: deformable.deform_conv1d(x, w, o), (off,))
    (deformable.deform_conv1d(x, w, off) ** 2).sum().backward()
    assert float(off.grad.abs().min()) > 0.0


@pytest.mark.parametrize("H, W, k, padding", [(7, 9, 3, 0), (8, 8, 3, 1), (5, 6, 2, 1), (1, 5, 1, 0)])
def test_deform_conv2d_with_zero_offsets_is_conv2d(H, W, k, padding):
    x = torch.randn(2, 3, H, W, dtype=torch.float64)
    w = torch.randn(4, 3, k, k, dtype=torch.float64)
    b = torch.randn(4, dtype=torch.float64)
    H_out, W_out = H + 2 * padding - k + 1, W + 2 * padding - k + 1
    off = torch.zeros(2, 2 * k * k, H_out, W_out, dtype=torch.float64)
    torch.testing.assert_close(deformable.deform_conv2d(x, w, off, b, padding), F.conv2d(x, w, b, padding=padding),
                               rtol=0, atol=1e-10)


def test_deform_conv2d_constant_offset_moves_rows_and_columns():
    x = torch.randn(1, 1, 10, 10, dtype=torch.float64)
    one = torch.ones(1, 1, 1, 1, dtype=torch.float64)
    off = torch.zeros(1, 2, 10, 10, dtype=torch.float64)
    off[:, 0], off[:, 1] = 2.0, -1.0                                     # rows +2, columns -1
    out = deformable.deform_conv2d(x, one, off)
    torch.testing.assert_close(out[0, 0, :8, 1:], x[0, 0, 2:, :9])
    assert float(out[0, 0, 8:].abs().max()) == 0.0 and float(out[0, 0, :, 0].abs().max()) == 0.0


def test_deform_conv2d_module_starts_as_its_convolution():
    torch.manual_seed(0)
    m = deformable.DeformConv2d(2, 3).double()
    x = torch.randn(2, 2, 6, 7, dtype=torch.float64)
    torch.testing.assert_close(m(x), m.conv(x), rtol=0, atol=1e-10)
    m(x).square().sum().backward()
    assert float(m.offset_conv.weight.grad.abs().max()) > 0.0


def test_dynamic_conv_with_one_hot_router_is_a_single_conv_and_linear_in_weights():
    x = torch.randn(3, 2, 12, dtype=torch.float64)
    ker = torch.randn(4, 5, 2, 3, dtype=torch.float64)
    choice = torch.tensor([3, 0, 3])
    out = deformable.dynamic_conv1d(x, ker, F.one_hot(choice, 4).double(), padding=1)
    for b in range(3):
        torch.testing.assert_close(out[b], F.conv1d(x[b:b + 1], ker[choice[b]], padding=1)[0])
    w = torch.softmax(torch.randn(3, 4, dtype=torch.float64), dim=1)
    mix = sum(w[:, k, None, None] * F.conv1d(x, ker[k]) for k in range(4))
    torch.testing.assert_close(deformable.dynamic_conv1d(x, ker, w), mix)


def test_dynamic_conv_module_routes_with_distributions():
    torch.manual_seed(0)
    m = deformable.DynamicConv1d(3, 4, 5, n_kernels=3, padding=2)
    x = torch.randn(6, 3, 11)
    pi = m.route(x)
    assert pi.shape == (6, 3) and torch.allclose(pi.sum(1), torch.ones(6))
    assert m(x).shape == (6, 4, 11)
