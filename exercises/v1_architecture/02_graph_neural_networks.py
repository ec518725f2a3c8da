# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Volume 1, Chapter 2 exercises: Graph neural networks, deformable and dynamic convolution (sections 1.5-1.7)
#
# Ten functions, from the matrices of a graph to a deformable convolution. Each exercise states its inputs, outputs
# and what the check verifies; write the body of the function where it says `# YOUR CODE HERE`, run the cell, then
# run the `check(...)` cell below it: it answers at once with a green "passed" or a red message that says what to
# fix. The checks draw fresh random graphs and signals each time, including edge cases (a path, two components, a
# node without neighbours, repeated edges, positions outside the signal, float32).
#
# The lecture is `chapters/v1_architecture/02_graph_neural_networks.ipynb`. Please write your own code rather than
# importing the course's reference implementations: the point is to build them yourself.
#
# Conventions: an adjacency matrix `A` is a symmetric `(n, n)` torch tensor (0/1 or positive weights, zero diagonal);
# every node has at least one neighbour unless said otherwise; outputs keep the dtype of the inputs.

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import torch
import torch.nn.functional as F

from manifold_course.grading import check

# %% [markdown]
# ## Exercise 1: the three Laplacians (warm-up)
#
# `graph_laplacians(A) -> (L, L_sym, L_rw)`, three `(n, n)` tensors:
#
# $$L = D - A, \qquad L_{sym} = I - D^{-1/2} A D^{-1/2}, \qquad L_{rw} = I - D^{-1} A,$$
#
# with $D = \mathrm{diag}(d)$, $d_i = \sum_j A_{ij}$.
#
# **Checked:** against the reference (`rtol=1e-5`) on the karate club, a random graph, two components, a 7-node path,
# a single edge, a weighted graph and a float32 graph (keep the dtype).

# %%
def graph_laplacians(A):
    # YOUR CODE HERE
    # Hint: scale rows and columns by broadcasting, s[:, None] * A * s[None, :], instead of building diag matrices.
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("gnn.graph_laplacians", graph_laplacians)

# %% [markdown]
# ## Exercise 2: the normalised adjacency
#
# `normalized_adjacency(A, self_loops=True) -> (n, n)`: with `self_loops`, $\hat A = \tilde D^{-1/2}\tilde A\tilde D^{-1/2}$
# where $\tilde A = A + I$ and $\tilde D$ holds the degrees **of $\tilde A$**; without, $D^{-1/2} A D^{-1/2}$.
#
# **Checked:** against the reference on the graphs of exercise 1 with and without self-loops, weighted and float32;
# the eigenvalues on a path lie in $(-1, 1]$ with self-loops and in $[-1, 1]$ without.

# %%
def normalized_adjacency(A, self_loops=True):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("gnn.normalized_adjacency", normalized_adjacency)

# %% [markdown]
# ## Exercise 3: spectral embedding
#
# `spectral_embedding(A, k) -> (n, k)`: the eigenvectors of $L_{sym}$ for its $k$ smallest eigenvalues, as
# orthonormal **columns**, in the dtype of `A`.
#
# **Checked:** by the subspace the columns span, not column by column (the sign of an eigenvector, and the basis inside
# a repeated eigenvalue, are arbitrary): shape, dtype, $U^\top U = I$, and $\max|UU^\top - VV^\top| < 10^{-7}$ against
# the reference $V$ (float32: $2\cdot10^{-4}$); cases include two components (eigenvalue 0 twice) and $k = 1$. Finally
# k-means on your row-normalised embedding of a 3-block SBM must reach an adjusted Rand index of at least 0.9.

# %%
def spectral_embedding(A, k):
    # YOUR CODE HERE
    # Hint: torch.linalg.eigh returns eigenvalues in ascending order and eigenvectors as the columns of its 2nd output.
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("gnn.spectral_embedding", spectral_embedding)

# %% [markdown]
# ## Exercise 4: message passing on an edge list
#
# `message_passing(X, edge_index, edge_weight) -> (n, F)`. `X` is `(n, F)`; `edge_index` is a `(2, E)` int64 tensor
# whose row 0 holds the sources $u$ and row 1 the destinations $v$; `edge_weight` is `(E,)`. Return
#
# $$\text{out}_v = \sum_{e = (u \to v)} w_e\, x_u ,$$
#
# (a node without incoming edges gets a zero row). Work on the edge list: gather one message per edge and scatter-add
# them into the destinations; do not build the dense $n\times n$ matrix.
#
# **Checked:** against the reference on random directed edge lists, **repeated edges into the same node** (every
# message counts), a directed star (messages flow from source to destination only), an empty edge list, and the
# karate club in float32; and equal to `M @ X` with $M_{vu} = w_e$.

# %%
def message_passing(X, edge_index, edge_weight):
    # YOUR CODE HERE
    # Hint: out[dst] += msg loses messages when dst repeats; use torch.zeros_like(X).index_add_(0, dst, msg).
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("gnn.message_passing", message_passing)

# %% [markdown]
# ## Exercise 5: a GCN layer
#
# `gcn_layer(X, A, W) -> (n, F_out)` with `X` `(n, F_in)`, `A` `(n, n)`, `W` `(F_in, F_out)`:
#
# $$\mathrm{ReLU}\big(\tilde D^{-1/2}\tilde A\tilde D^{-1/2}\, X W\big), \qquad \tilde A = A + I .$$
#
# This fixes the seed's `adj @ linear(x)`: add the self-loops, normalise symmetrically, apply the non-linearity.
#
# **Checked:** against the reference on the graphs of exercise 1 with random feature sizes; permutation equivariance
# $f(PX, PAP^\top) = P f(X, A)$ on a random graph.

# %%
def gcn_layer(X, A, W):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("gnn.gcn_layer", gcn_layer)

# %% [markdown]
# ## Exercise 6: GAT attention coefficients
#
# `gat_attention(h, A, W, a) -> (n, n)` with `h` `(n, F)`, `W` `(F, F')`, `a` `(2F',)`. With $z = hW$,
#
# $$e_{vu} = \mathrm{LeakyReLU}_{0.2}\big(a^\top [z_v \,\|\, z_u]\big), \qquad
# \alpha_{vu} = \mathrm{softmax}_{u \in N(v)\cup\{v\}}\, e_{vu},$$
#
# and $\alpha_{vu} = 0$ for every $u$ outside $N(v) \cup \{v\}$ (row $v$ is the node that receives). The graph is given by
# the non-zero entries of `A`; a node may have no neighbours (then it attends only to itself).
#
# **Checked:** against the reference (`rtol=1e-5`); off-graph entries exactly 0; large scores; a node without
# neighbours; equivariance $\alpha(PX, PAP^\top) = P\alpha P^\top$.

# %%
def gat_attention(h, A, W, a):
    # YOUR CODE HERE
    # Hint: split a = [a1; a2]: e[v, u] = z[v] @ a1 + z[u] @ a2 is an (n, 1) + (1, n) broadcast.
    # Hint: set e to -inf outside the neighbourhood before torch.softmax(e, dim=1): exp(-inf) is exactly 0.
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("gnn.gat_attention", gat_attention)

# %% [markdown]
# ## Exercise 7: Dirichlet energy
#
# `dirichlet_energy(H, A) -> float`: for node features `H` `(n, F)`,
#
# $$E(H) = \operatorname{tr}\big(H^\top L_{sym} H\big) = \tfrac12 \sum_{i,j} A_{ij}\,
# \Big\|\frac{h_i}{\sqrt{d_i}} - \frac{h_j}{\sqrt{d_j}}\Big\|^2 .$$
#
# Return a Python float.
#
# **Checked:** within `rtol=1e-7` (float32: `1e-4`) on the karate club, a weighted graph, two components and
# $H = c\sqrt d$ (energy 0).

# %%
def dirichlet_energy(H, A):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("gnn.dirichlet_energy", dirichlet_energy)

# %% [markdown]
# ## Exercise 8: linear interpolation with zero padding
#
# `linear_interp_1d(x, positions) -> (B, C, P)` reads the signals `x` `(B, C, L)` at fractional `positions` `(B, P)`
# (the same positions for every channel of a sample):
#
# $$x(p) = (1 - t)\,x[i] + t\,x[i + 1], \qquad i = \lfloor p \rfloor,\ t = p - i,$$
#
# with $x[j] = 0$ for $j < 0$ or $j > L - 1$ (zero padding). Inside $[0, L-1]$ this is `numpy.interp`; at $p = -0.5$
# it is $\tfrac12 x[0]$.
#
# **Checked:** against the reference inside and outside the signal, at integer positions, for $L = 1$ and in float32;
# the output must be differentiable in the positions with $\partial x(p)/\partial p = x[i+1] - x[i]$.

# %%
def linear_interp_1d(x, positions):
    # YOUR CODE HERE
    # Hint: torch.floor, not .long(): .long() rounds -0.5 up to 0.
    # Hint: torch.gather(x, 2, idx[:, None, :].expand(B, C, P)) reads x at the (B, P) indices idx for every channel.
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("gnn.linear_interp_1d", linear_interp_1d)

# %% [markdown]
# ## Exercise 9: 1-D deformable convolution
#
# `deform_conv1d(x, w, offsets, padding=0) -> (B, O, L_out)` with `x` `(B, C, L)`, `w` `(O, C, K)`, stride 1,
# $L_{out} = L + 2\,\text{padding} - K + 1$ and `offsets` `(B, L_out, K)`. Output $i$, tap $k$ reads $x$ at
#
# $$p = i - \text{padding} + k + \Delta_{b,i,k}$$
#
# with linear interpolation and zero padding (exercise 8), the same position for every input channel:
# $y_{b,o,i} = \sum_{c,k} w_{o,c,k}\, x_{b,c}(p)$. No kernel flip: with zero offsets this is `F.conv1d`.
#
# **Checked:** against the reference with zero, fractional, integer and huge offsets, padding 0, 1, 2, an even kernel
# and float32; equal to `F.conv1d(x, w, padding=1)` at zero offsets; the gradient with respect to the offsets must
# match the reference's (it is non-zero: rounding positions is not enough).

# %%
def deform_conv1d(x, w, offsets, padding=0):
    # YOUR CODE HERE
    # Hint: build the (L_out, K) grid of integer positions, add the offsets, read all B * L_out * K positions with
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("gnn.deform_conv1d", deform_conv1d)

# %% [markdown]
# ## Exercise 10: dynamic convolution
#
# `dynamic_conv1d(x, kernels, weights, padding=0) -> (B, O, L_out)` with `x` `(B, C, L)`, `kernels` `(K, O, C, k)`
# and mixing `weights` `(B, K)` (one row per sample, used as given: no softmax). Sample $b$ is convolved (as
# `F.conv1d`, stride 1) with its own kernel
#
# $$W_b = \sum_{j=1}^{K} \text{weights}_{b,j}\, \text{kernels}_j .$$
#
# **Checked:** against the reference with softmax, one-hot and signed weights, $B = 1$, padding 0, 1, 2, an even kernel
# length and float32; with a one-hot router every sample must equal `F.conv1d` with the chosen kernel.

# %%
def dynamic_conv1d(x, kernels, weights, padding=0):
    # YOUR CODE HERE
    # Hint: torch.einsum("bk,kocj->bocj", weights, kernels) gives the B per-sample kernels; a loop over the batch is
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("gnn.dynamic_conv1d", dynamic_conv1d)

# %% [markdown]
# ## Going further
#
# - Use your `message_passing` with the edge weights $1/\sqrt{\tilde d_u \tilde d_v}$ (and one self-loop per node) and
#   check that it reproduces `normalized_adjacency(A) @ X`: this is how PyTorch Geometric's `GCNConv` works.
# - Stack your `gcn_layer` 16 times on a stochastic block model and plot your `dirichlet_energy` of the output
#   (on `A + I`) against depth.
# - Replace the single offset per tap in `deform_conv1d` by offsets predicted from `x` with an `nn.Conv1d` initialised at
#   zero, and train it to align a warped signal as in the lecture.
