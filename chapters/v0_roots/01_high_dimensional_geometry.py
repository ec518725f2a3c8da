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
# # Volume 0, Chapter 1: High-dimensional geometry and the manifold hypothesis (sections 0.1-0.4)
#
# Deep learning lives in spaces with hundreds or thousands of dimensions, where our 3-D intuition fails.
# This chapter measures that failure, then shows why learning still works: real data occupy thin,
# low-dimensional, sometimes loopy subsets of those spaces.
#
# **Goals.** After this chapter you can
# - compute the volume of a ball in any dimension without overflow, and explain why volume lives "in the corners"
#   and in a thin outer shell (section 0.1);
# - predict the norm of a Gaussian vector ($\approx\sqrt d$) and the angle between two random vectors
#   ($\approx 90°$, spread $1/\sqrt d$) and check both by simulation (0.1-0.2);
# - estimate the intrinsic dimension of a data set two ways (TwoNN and PCA) and validate the estimators on data of
#   known dimension (0.3);
# - read a persistence barcode, find the loop of a circle and the two loops of a torus with `ripser`, and use Cover's
#   theorem to explain why adding dimensions makes data separable (0.4).
#
# **Prerequisites.** Vectors, norms, dot products; eigenvalues of a symmetric matrix; a histogram; basic PyTorch
# tensors. No topology is assumed.
#
# **Time.** About 2 hours of reading and running, plus 2 hours for the exercises. The notebook runs in well under a
# minute on a laptop CPU.
#
# **Symbols used throughout.** $d$: dimension of the space; $N$: number of points; $x \in \mathbb R^d$ a vector;
# $\|x\| = \sqrt{\sum_i x_i^2}$ its Euclidean norm; $\mathcal N(0, I_d)$: the standard Gaussian in $\mathbb R^d$
# (independent coordinates of mean 0 and variance 1); $\Gamma$: the Gamma function, with $\Gamma(n + 1) = n!$ and
# $\Gamma(\tfrac12) = \sqrt\pi$.

# %%
from manifold_course import seed_everything
from manifold_course.seeding import numpy_rng, torch_generator

rng = seed_everything(0)

import math

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm.auto import tqdm

from manifold_course import data, plotting
from manifold_course.geometry import concentration, gram, layer_geometry, separability, topology, volumes
from manifold_course.geometry import intrinsic_dimension as idim

# %% [markdown]
# ## 0.1 The curse of dimensionality: where the volume is
#
# Put a ball of radius $\tfrac12$ inside the unit cube $[-\tfrac12, \tfrac12]^d$ so that it touches every face.
# The volume of a ball of radius $r$ in $\mathbb R^d$ is
#
# $$V_d(r) = \frac{\pi^{d/2}}{\Gamma(d/2 + 1)}\, r^d ,$$
#
# ($d = 2$: $\pi r^2$; $d = 3$: $\tfrac43\pi r^3$), so the ball's share of the cube is
#
# $$\rho_d = \frac{V_d(1/2)}{1} = \frac{\pi^{d/2}}{2^d\,\Gamma(d/2 + 1)} .$$
#
# The Gamma function grows like a factorial, far faster than $\pi^{d/2}$, so $\rho_d \to 0$. Computing it naively
# overflows: $\Gamma(d/2 + 1)$ exceeds the largest float near $d = 342$. We work in logarithms with
# `math.lgamma` ($\log\Gamma$), as `volumes.ball_cube_volume_ratio` does.

# %%
for d in (1, 2, 3, 5, 10, 20, 30, 100):
    print(f"d = {d:3d}   rho_d = {volumes.ball_cube_volume_ratio(d):.3e}")

assert abs(volumes.ball_cube_volume_ratio(2) - math.pi / 4) < 1e-12      # 78.5 %
assert abs(volumes.ball_cube_volume_ratio(3) - math.pi / 6) < 1e-12      # 52.4 %
assert abs(volumes.ball_cube_volume_ratio(10) - 2.5e-3) < 0.05e-3        # 0.25 %
assert abs(volumes.ball_cube_volume_ratio(30) - 2e-14) < 0.1e-14
assert volumes.ball_cube_volume_ratio(1000) >= 0.0                       # no overflow, just a tiny number
math.gamma(340 / 2 + 1)                                                  # fine: about 7e306
try:
    math.gamma(342 / 2 + 1)                                              # 171! > 1.8e308, the largest float
    raise AssertionError("expected an overflow")
except OverflowError:
    pass

# %% [markdown]
# The ball fills $\pi/4 \approx 78.5\,\%$ of the square and $\pi/6 \approx 52.4\,\%$ of the cube, but only
# $0.25\,\%$ of the 10-dimensional cube and $2\cdot10^{-14}$ of the 30-dimensional one. Where did the volume go?
# Into the corners: the corner $(\tfrac12, \dots, \tfrac12)$ is at distance $\sqrt d/2$ from the centre, which is
# 5 at $d = 100$: ten times farther than the ball's surface.

# %%
half_diagonal = math.sqrt(100) / 2
assert half_diagonal / 0.5 == 10.0
assert 4.5e13 < 1 / volumes.ball_cube_volume_ratio(30) < 5.5e13          # rejection sampling: draws per accepted point

ds = np.arange(1, 101)
fig, ax = plotting.figure()
ax.semilogy(ds, [volumes.ball_cube_volume_ratio(int(d)) for d in ds])
plotting.label(ax, "Inscribed ball's share of the unit cube", "dimension d", "volume ratio rho_d (log scale)")
plt.show()

# %% [markdown]
# A practical consequence: sampling uniformly from a ball by drawing points in the cube and rejecting those outside
# needs $1/\rho_d$ draws per accepted point, about $5\cdot10^{13}$ at $d = 30$. Instead,
# `volumes.sample_uniform_ball` draws a uniform *direction* (a Gaussian vector divided by its norm) and a *radius*
# $U^{1/d}$ (because a uniform point satisfies $P(\|x\| \le r) = r^d$); exercise 3 asks you to write it.
#
# **The orange peel.** The share of a ball's volume within $\varepsilon$ of its surface is $1 - (1-\varepsilon)^d$:
# the inner ball of radius $1 - \varepsilon$ holds only $(1-\varepsilon)^d$ of it. With $\varepsilon = 0.01$ the
# outer 1 % peel holds 63 % of the volume at $d = 100$ and 99.996 % at $d = 1000$; half of a 100-dimensional ball
# lies within 0.7 % of its surface. We check the formula by Monte Carlo.

# %%
assert abs(volumes.shell_fraction(100, 0.01) - 0.634) < 1e-3
assert abs(volumes.shell_fraction(1000, 0.01) - 0.99996) < 1e-5
assert abs((1 - 0.5 ** (1 / 100)) - 0.007) < 0.0005        # radius that splits the volume in half: 0.993

X_ball = volumes.sample_uniform_ball(20000, 100, seed=0)    # (20000, 100)
mc = volumes.shell_fraction_mc(X_ball, 0.01)
print(f"outer 1% shell at d=100: Monte Carlo {mc:.3f}, formula {volumes.shell_fraction(100, 0.01):.3f}")
assert abs(mc - volumes.shell_fraction(100, 0.01)) < 0.02

# %% [markdown]
# ### Gaussian vectors live on a thin shell of radius $\sqrt d$
#
# For $x \sim \mathcal N(0, I_d)$, $\|x\|^2 = \sum_i x_i^2$ is a sum of $d$ independent terms of mean 1, so
# $\mathbb E\|x\|^2 = d$. The norm itself follows the *chi distribution*:
#
# $$\mathbb E\|x\| = \sqrt2\,\frac{\Gamma(\frac{d+1}2)}{\Gamma(\frac d2)} \approx \sqrt{d - \tfrac12},
# \qquad \mathrm{Var}\,\|x\| = d - (\mathbb E\|x\|)^2 \to \tfrac12 ,$$
#
# and the tails are sub-Gaussian, $P(|\,\|x\| - \sqrt d\,| > t) \le 2e^{-ct^2}$ with a constant $c$ that does not
# depend on $d$. The shell's radius grows like $\sqrt d$ while its thickness stays about $1/\sqrt2$: relative to
# its radius, the shell gets thinner and thinner. The seed demo: 10 000 points in $d = 2$ and $d = 100$.

# %%
for d in (2, 100):
    mean, std = concentration.gaussian_norm_stats(10000, d, seed=0)
    print(f"d = {d:3d}: mean norm {mean:.3f}, sqrt(d) = {math.sqrt(d):.3f}, sqrt(d - 1/2) = {math.sqrt(d - 0.5):.3f}, std {std:.3f}")

mean100, std100 = concentration.gaussian_norm_stats(10000, 100, seed=0)
chi_mean = math.sqrt(2) * math.exp(math.lgamma(50.5) - math.lgamma(50))    # the formula above at d = 100
se100 = std100 / math.sqrt(10000)                                # the sample mean's standard error, about 0.007
print(f"d = 100: E||x|| = {chi_mean:.4f} exactly; sample mean {mean100:.4f} = {(mean100 - chi_mean) / se100:+.1f} se from it")
assert abs(chi_mean - 9.975) < 1e-3 and abs(mean100 - chi_mean) < 4 * se100   # "about 9.97 versus 10"
assert abs(mean100 / math.sqrt(100 - 0.5) - 1) < 0.01            # within 1 % of sqrt(d - 1/2)

# %% [markdown]
# The standard deviation of the norm tends to $1/\sqrt2 \approx 0.707$ whatever the dimension, and the chance of
# landing more than 1 away from $\sqrt d$ stays near $P(|Z| > \sqrt2) \approx 16\,\%$ (with $Z$ standard normal),
# instead of growing with $d$:

# %%
for d in (10, 100, 1000):
    r = concentration.gaussian_norms(10000, d, seed=1)
    far = float(((r - math.sqrt(d)).abs() > 1).double().mean())
    print(f"d = {d:4d}: std of the norm {float(r.std()):.3f}, share farther than 1 from sqrt(d): {far:.3f}")
    if d >= 100:
        assert abs(float(r.std()) - 1 / math.sqrt(2)) < 0.03
        assert 0.12 < far < 0.20
assert abs(concentration.gaussian_norm_std(10**6) - 1 / math.sqrt(2)) < 1e-3

# %% [markdown]
# Distances between random points concentrate too: $\|x - y\|^2$ has mean $2d$, so pairwise distances cluster near
# $\sqrt{2d}$, and the farthest neighbour is barely farther than the nearest. That is why nearest-neighbour methods
# struggle on raw high-dimensional data. We measure the *relative contrast* (max - min) / min of the distances from
# one point to 500 others, and take its median over 20 draws (a single draw in the plane can have its query point far
# out in the tail, with no close neighbour: about one in 80 falls below 10): above 10 in the plane, below 0.2 at
# $d = 1000$.

# %%
def relative_contrast(d: int, n: int = 500, seed: int = 0) -> float:
    gen = torch_generator(seed)
    P = torch.randn(n + 1, d, generator=gen, dtype=torch.float64)
    dist = (P[1:] - P[0]).norm(dim=1)                                  # (n,) distances from point 0
    return float((dist.max() - dist.min()) / dist.min())


for d in (2, 10, 100, 1000):
    gen = torch_generator(d)
    P = torch.randn(300, d, generator=gen, dtype=torch.float64)
    mean_dist = float(torch.pdist(P).mean())
    print(f"d = {d:4d}: mean distance / sqrt(2d) = {mean_dist / math.sqrt(2 * d):.3f}, relative contrast {relative_contrast(d):.2f}")
assert abs(float(torch.pdist(P).mean()) / math.sqrt(2 * 1000) - 1) < 0.01
contrast = {d: float(np.median([relative_contrast(d, seed=s) for s in range(20)])) for d in (2, 1000)}
print(f"median relative contrast over 20 draws: {contrast[2]:.1f} (d = 2), {contrast[1000]:.3f} (d = 1000)")
assert contrast[2] > 10 and contrast[1000] < 0.2

# %% [markdown]
# Histograms make the shell visible. In $d = 2$ the norm follows the *Rayleigh* law, density $r e^{-r^2/2}$; in
# $d = 100$ the norms crowd into a narrow band around 10. The curves are the exact chi densities.

# %%
from scipy import stats

fig, axes = plotting.figure(ncols=2)
for ax, d in zip(axes, (2, 100)):
    r = concentration.gaussian_norms(10000, d, seed=0).numpy()
    ax.hist(r, bins=60, density=True, alpha=0.6, label="10 000 samples")
    grid = np.linspace(0, r.max() * 1.05, 300)
    ax.plot(grid, stats.chi(d).pdf(grid), "k", label="chi density")
    ax.axvline(math.sqrt(d), color="C3", ls="--", label="sqrt(d)")
    plotting.label(ax, f"Norms of standard Gaussians, d = {d}", "norm ||x||", "density")
    ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# > **Careful.** A popular write-up says that "in 2-D, Gaussian norms cluster near 0". They do not. The *density of
# > points* $e^{-\|x\|^2/2}/2\pi$ is largest at the origin, but there is very little area near the origin: the
# > norm in 2-D has the Rayleigh density $r e^{-r^2/2}$, which is **zero at 0** and peaks at $r = 1$. Only
# > $1 - e^{-0.005} \approx 0.5\,\%$ of the points have norm below 0.1. (Near its peak the density is flat: bins of
# > width 0.1 centred at 0.85 and 1.15 hold only about 2 % fewer points than those at 0.95 and 1.05, so the highest bin
# > of a histogram of $10^5$ samples can land one bin further out; the cell below compares every bin with the
# > Rayleigh count instead.)

# %%
r2d = concentration.gaussian_norms(100000, 2, seed=2).numpy()
counts, edges = np.histogram(r2d, bins=40, range=(0, 4))
mode = 0.5 * (edges[counts.argmax()] + edges[counts.argmax() + 1])
expected = len(r2d) * np.diff(1 - np.exp(-edges**2 / 2))          # Rayleigh CDF 1 - exp(-r^2/2), per bin
print(f"histogram mode of the 2-D norm: {mode:.2f}; share with norm < 0.1: {np.mean(r2d < 0.1):.4f}; largest "
      f"deviation from the Rayleigh count {np.max(np.abs(counts - expected) / np.sqrt(expected)):.1f} standard errors")
assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected) + 1)  # every bin agrees with the Rayleigh density
assert abs(mode - 1.0) < 0.2           # the highest bin sits at the peak r = 1, give or take one bin of width 0.1
assert 0.97 < expected[8] / expected[9] < 0.99 and 0.97 < expected[11] / expected[10] < 0.99   # the text's "2 % fewer"
assert abs(np.mean(r2d < 0.1) - (1 - math.exp(-0.005))) < 0.002

# %% [markdown]
# **Why this matters for networks.** A neuron computes $w^\top x$. With $w$ and $x$ standard Gaussian in
# $\mathbb R^{1000}$, $w^\top x$ has standard deviation $\sqrt{1000} \approx 32$, so $\tanh(w^\top x)$ is saturated
# (|output| > 0.99, gradient about 0) for most inputs. Scaling the weights by $1/\sqrt d$ (LeCun/Xavier/He
# initialisation, Volume 1) brings the pre-activation back to standard deviation 1.

# %%
gen = torch_generator(3)
x = torch.randn(4000, 1000, generator=gen)
w = torch.randn(1000, generator=gen)
saturated_raw = float((torch.tanh(x @ w).abs() > 0.99).float().mean())
saturated_scaled = float((torch.tanh(x @ (w / math.sqrt(1000))).abs() > 0.99).float().mean())
print(f"share of saturated tanh units: unscaled weights {saturated_raw:.2f}, weights / sqrt(d) {saturated_scaled:.3f}")
assert saturated_raw > 0.85 and saturated_scaled < 0.02

# %% [markdown]
# > **Careful.** Four claims that often travel with this picture:
# > - "High-dimensional vectors naturally become large." Only with a fixed variance per coordinate. With the usual
# >   $1/\sqrt d$ scaling, $x/\sqrt d$ has norm $\approx 1$ in every dimension (checked below).
# > - "Normalisation layers are necessary because of concentration; LayerNorm pulls activations back to the shell."
# >   RMSNorm does place every vector exactly on the sphere of radius $\sqrt d$ (checked below), but *why*
# >   normalisation helps training is still debated: smoother loss landscapes (Santurkar et al. 2018,
# >   arXiv:1805.11604), scale invariance, better conditioning. Treat "back to the shell" as an intuition.
# > - "GPT-4 works in 12 288 dimensions." 12 288 is the hidden width of GPT-3 175B; GPT-4's sizes are undisclosed.
# > - The shell is a statement about *norms*. It does not say data avoid the centre "because they are pushed out".

# %%
z = torch.randn(5000, 1000, generator=gen)
assert abs(float((z / math.sqrt(1000)).norm(dim=1).mean()) - 1) < 0.01     # norm about 1 with 1/sqrt(d) scaling
rms_normed = z / z.pow(2).mean(dim=1, keepdim=True).sqrt()                  # RMSNorm without the learned gain
assert torch.allclose(rms_normed.norm(dim=1), torch.full((5000,), math.sqrt(1000)), rtol=1e-4)

# %% [markdown]
# ### Explore: norms and angles as the dimension grows
#
# Move the slider. Left: norms divided by $\sqrt d$ (the shell tightens around 1). Right: cosines between random
# pairs (they tighten around 0, which is the subject of 0.2). The default, $d = 100$, is what a headless run shows.

# %%
def show_dimension(d: int = 100) -> None:
    fig, axes = plotting.figure(ncols=2)
    r = concentration.gaussian_norms(4000, d, seed=4).numpy() / math.sqrt(d)
    axes[0].hist(r, bins=50, range=(0, 2), density=True)
    plotting.label(axes[0], f"||x|| / sqrt(d), d = {d}", "norm / sqrt(d)", "density")
    if d >= 2:
        c = concentration.random_cosines(4000, d, seed=5).numpy()
        axes[1].hist(c, bins=50, range=(-1, 1), density=True, alpha=0.6)
        t = np.linspace(-0.999, 0.999, 400)
        axes[1].plot(t, concentration.cosine_density(t, d), "k")
    plotting.label(axes[1], f"cosine of random pairs, d = {d}", "cos(angle)", "density")
    fig.tight_layout()
    plt.show()


widgets.interact(show_dimension, d=widgets.IntSlider(value=100, min=1, max=500, step=1, description="d"));

# %% [markdown]
# ## 0.2 Near-orthogonality of random vectors
#
# The cosine of the angle $\theta$ between $x$ and $y$ is $\cos\theta = x^\top y / (\|x\|\,\|y\|)$. For independent
# Gaussian vectors $x^\top y = \sum_i x_i y_i$ is a sum of $d$ terms of random sign that mostly cancel: it has
# mean 0 and standard deviation $\sqrt d$, while $\|x\|\,\|y\| \approx d$. So the cosine concentrates at 0 with
# spread $1/\sqrt d$; exactly,
#
# $$\mathbb E\cos\theta = 0,\qquad \mathrm{Var}\cos\theta = \frac1d,\qquad
# p(t) \propto (1 - t^2)^{\frac{d-3}2} \ \text{on } [-1, 1], \qquad \frac{t + 1}2 \sim \mathrm{Beta}\Big(\frac{d-1}2, \frac{d-1}2\Big).$$
#
# At $d = 3$ the density is flat: the cosine is uniform on $[-1, 1]$ (Archimedes' hat-box theorem).

# %%
for d in (3, 10, 100, 1000):
    c = concentration.random_cosines(5000, d, seed=d)
    print(f"d = {d:4d}: mean cosine {float(c.mean()):+.4f}, std * sqrt(d) = {float(c.std()) * math.sqrt(d):.3f}")
    assert abs(float(c.std()) * math.sqrt(d) - 1) < 0.05

# %% [markdown]
# The seed demo counts pairs with $|\cos\theta| < 0.1$ (angle between about 84° and 96°, checked in the next cell). At $d = 3$ the uniform law
# gives exactly 10 %. At $d = 10\,000$ a cosine of size 0.1 is ten standard deviations away, with probability
# about $10^{-23}$: all 1000 pairs are nearly orthogonal.

# %%
exact3 = concentration.prob_near_orthogonal(3, 0.1)
mc3 = concentration.frac_near_orthogonal(3, 1000, 0.1, seed=6)
c_big = concentration.random_cosines(1000, 10000, seed=7, dtype=torch.float32)
frac_big = float((c_big.abs() < 0.1).float().mean())
print(f"d = 3: exact {exact3:.4f}, 1000 pairs {mc3:.3f};  d = 10 000: 1000 pairs {frac_big:.3f}, "
      f"exact P(|cos| >= 0.1) = {concentration.prob_cosine_exceeds(10000, 0.1):.1e}")
assert abs(exact3 - 0.1) < 1e-12
assert round(math.degrees(math.acos(0.1))) == 84 and round(math.degrees(math.acos(-0.1))) == 96
assert abs(mc3 - 0.1) < 5 * math.sqrt(0.1 * 0.9 / 1000)   # five standard errors (0.047) of 1000 coin flips
#                                                    with p = 0.1 (three, 0.03, were exceeded at seed offset 9404)
assert frac_big == 1.0
assert concentration.prob_cosine_exceeds(10000, 0.1) < 1e-20

# %% [markdown]
# > **Careful.** The seed text expects "about 10-20 %" of near-orthogonal pairs at $d = 3$; the exact value is 10 %,
# > since the cosine is uniform. It also says that in 3-D "two random lines usually intersect or are parallel".
# > Two random lines in 3-D are almost surely *skew*: they neither meet nor are parallel. Below, the smallest
# > distance between two random lines, $|(p - q)^\top (u \times v)| / \|u \times v\|$, is positive for all of 10 000 pairs.

# %%
gen = torch_generator(8)
p, q, u, v = (torch.randn(10000, 3, generator=gen, dtype=torch.float64) for _ in range(4))
n = torch.linalg.cross(u, v)                                        # (10000, 3) common normal
gap = ((p - q) * n).sum(1).abs() / n.norm(dim=1)                    # distance between the two lines
print(f"smallest distance between two random lines over 10 000 pairs: {float(gap.min()):.2e}")
assert float(gap.min()) > 0

# %% [markdown]
# The histograms below overlay the Beta law (black) on the simulated cosines: one formula for every dimension.

# %%
fig, axes = plotting.figure(ncols=4, width=3.2)
t = np.linspace(-0.999, 0.999, 400)
for ax, d in zip(axes, (3, 10, 100, 1000)):
    ax.hist(concentration.random_cosines(5000, d, seed=d).numpy(), bins=50, range=(-1, 1), density=True, alpha=0.6)
    ax.plot(t, concentration.cosine_density(t, d), "k")
    plotting.label(ax, f"d = {d}", "cos(angle)", "density")
fig.tight_layout()
plt.show()

# %% [markdown]
# **Embeddings start out unrelated.** A freshly initialised `nn.Embedding(1000, 512)` draws each row from
# $\mathcal N(0, I_{512})$, so any two token vectors are nearly orthogonal. Training must *create* the angles
# between related tokens (king and queen). Among 100 rows, the largest off-diagonal $|\cos|$, the mutual
# *coherence*, is the maximum of about $n^2/2 = 4950$ cosines of spread $1/\sqrt{512}$; a union bound puts it near
# $\sqrt{4\ln n / d} \approx 0.19$. "Near" is all it can say: a maximum of thousands of draws scatters (an extreme
# value, Gumbel-distributed, with a width of about $1/(2\ln n^2) \approx 5\,\%$ of the value, and a long upper tail),
# and at small $d$ the cosines' tails are lighter than Gaussian. Over many draws of the seeds the coherence landed
# between 0.69 and 1.12 times $\sqrt{4\ln n / d}$ at $d = 64$ to $1024$; the checks below allow 0.65 to 1.3.

# %%
emb = torch.nn.Embedding(1000, 512)
E = emb.weight[:100].detach()
U = E / E.norm(dim=1, keepdim=True)
C = U @ U.T                                                         # (100, 100) cosine matrix
off = C[~torch.eye(100, dtype=torch.bool)]
print(f"off-diagonal cosines: std * sqrt(512) = {float(off.std()) * math.sqrt(512):.3f}, max |cos| = {float(off.abs().max()):.3f}, "
      f"sqrt(4 ln 100 / 512) = {concentration.coherence_scale(100, 512):.3f}")
assert abs(float(off.std()) * math.sqrt(512) - 1) < 0.1
assert float(off.abs().max()) < 1.3 * concentration.coherence_scale(100, 512)
assert abs(concentration.coherence_scale(100, 512) - 0.19) < 0.005

fig, ax = plotting.figure(width=4.6, height=3.8)
im = ax.imshow(C.numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
fig.colorbar(im, ax=ax, label="cosine")
plotting.label(ax, "Cosines of 100 fresh embedding rows", "token index", "token index")
plt.show()

# %%
for d in (64, 256, 1024):
    mc_max = concentration.max_coherence(100, d, seed=9)
    print(f"d = {d:4d}: max |cos| among 100 random vectors {mc_max:.3f}, sqrt(4 ln n / d) = {concentration.coherence_scale(100, d):.3f}")
    assert 0.65 < mc_max / concentration.coherence_scale(100, d) < 1.3          # an extreme value: it scatters
assert concentration.max_coherence(100, 64, seed=9) > concentration.max_coherence(100, 256, seed=9) > concentration.max_coherence(100, 1024, seed=9)

# %% [markdown]
# ## Manifold lens (I2): a random batch is nearly, but not exactly, orthonormal
#
# A recurring idea in optimiser design (Muon, whitening; Volume 1) asks for a batch of inputs $X$ (b rows in
# $\mathbb R^d$) with $XX^\top \approx I$: orthonormal rows. Random Gaussian rows scaled by $1/\sqrt d$ come close
# entry by entry (diagonal $\approx 1$, off-diagonal $\approx \pm 1/\sqrt d$), yet in operator norm (the largest
# $|\text{eigenvalue}|$) the small errors add up. Random-matrix theory (Marchenko-Pastur, 1967) predicts
#
# $$\|XX^\top - I\|_{\mathrm{op}} \approx \big(1 + \sqrt{b/d}\big)^2 - 1 .$$
#
# And when $b > d$, $XX^\top$ has rank at most $d$: at least $b - d$ eigenvalues are 0, so
# $\|XX^\top - I\|_{\mathrm{op}} \ge 1$ for *every* $X$. The best possible value, 1, is reached by a rank-$d$
# projection, the orthonormal polar factor of $X$. At finite size the largest eigenvalue scatters around the edge by
# a few times $b^{-2/3}$ (Tracy-Widom) and sits *below* it on average, so we average five batches per size: at
# $d = 200$ the mean lands within 15 % below the prediction (and never more than 2 % above) for $b \ge d/2$; the
# smallest batch, $b = d/4 = 50$ rows, fluctuates most and lands within 25 % below. The gap closes as $d$ grows.

# %%
d = 200
ratios = [0.25, 0.5, 1.0, 2.0, 3.0, 4.0]
measured, predicted, best = [], [], []
for ratio in ratios:
    b = int(ratio * d)
    batches = [gram.gaussian_batch(b, d, seed=10 + k) for k in range(5)]    # (b, d) each, rows of norm about 1
    measured.append(np.mean([gram.gram_deviation(X_) for X_ in batches]))
    predicted.append(gram.marchenko_pastur_edge(b, d))
    best.append(gram.gram_deviation(gram.closest_orthonormal(batches[0])))
    print(f"b/d = {ratio:4.2f}: ||XX^T - I|| = {measured[-1]:.3f} (mean of 5 batches), Marchenko-Pastur "
          f"{predicted[-1]:.3f}, polar factor {best[-1]:.2e}")
assert all(1 - (0.15 if ratio >= 0.5 else 0.25) < m / p < 1.02                  # just below the edge, on average
           for ratio, m, p in zip(ratios, measured, predicted))
assert all(bst < 1e-9 for ratio, bst in zip(ratios, best) if ratio < 1)           # b < d: exactly orthonormal
assert all(abs(bst - 1) < 1e-9 for ratio, bst in zip(ratios, best) if ratio > 1)  # b > d: a projection, deviation 1

fig, ax = plotting.figure()
ax.plot(ratios, measured, "o", label=f"Gaussian X, d = {d}")
gs = np.linspace(0.05, 4.2, 100)
ax.plot(gs, (1 + np.sqrt(gs)) ** 2 - 1, "k", label="(1 + sqrt(b/d))^2 - 1")
ax.plot(ratios, best, "s", label="best possible (polar factor)")
plotting.label(ax, "How far is a random batch from orthonormal?", "batch size / dimension  b/d", "||XX^T - I||_op")
ax.legend(loc="upper left")
plt.show()

# %% [markdown]
# > **Careful.** A blog post on isotropic inputs says that a standardised $X$ has $XX^\top \approx \sqrt{d}\,I$.
# > Rows of norm $\approx \sqrt d$ give a diagonal $\approx d$, so the entrywise statement is $XX^\top \approx d\,I$;
# > and for $b > d$ no $X$ makes $XX^\top$ close to a multiple of $I$ in operator norm (rank at most $d$).

# %% [markdown]
# ## 0.3 The manifold hypothesis: why deep learning works at all
#
# An 8 x 8 grey image is a point of $\mathbb R^{64}$, yet almost every point of $\mathbb R^{64}$ looks like noise.
# The *manifold hypothesis* says natural data concentrate on or near a low-dimensional manifold $\mathcal M$: a
# crumpled sheet of paper in 3-D is still 2-dimensional for the ink on it. Generatively,
#
# $$x = g(z) + \text{noise},\qquad z \in \mathbb R^k,\quad k \ll D ,$$
#
# with $D$ the ambient dimension and $k$ the *intrinsic dimension*. A classifier bends and stretches the tangled
# class manifolds until a hyperplane separates them; an auto-encoder learns coordinates $z$ (a chart) of $\mathcal M$;
# a diffusion model (Volume 3) learns a vector field that points back to $\mathcal M$: for a small noise level
# $\sigma$ the score of the smoothed density is $\nabla_x \log p_\sigma(x) \approx (\pi_{\mathcal M}(x) - x)/\sigma^2$,
# with $\pi_{\mathcal M}(x)$ the closest point of the manifold.
#
# The swiss roll is the textbook example: a 2-D rectangle rolled up in $\mathbb R^3$.

# %%
X_roll, t_roll = data.swiss_roll(2000, seed=0)                       # (2000, 3), position along the roll
fig = plt.figure(figsize=(5, 4))
ax = fig.add_subplot(projection="3d")
ax.scatter(*X_roll.T, c=t_roll, s=3, cmap="viridis")
ax.set_title("Swiss roll: a 2-D sheet in R^3")
ax.set_xlabel("x1")
ax.set_ylabel("x2")
ax.set_zlabel("x3")
plt.show()

# %% [markdown]
# ### Measuring intrinsic dimension, two ways
#
# **PCA** (principal component analysis) centres the data and diagonalises the covariance; the eigenvalues
# $\lambda_1 \ge \lambda_2 \ge \dots$ are the variances along the principal axes. `pca_dim(X, frac)` is the smallest
# $k$ with $\sum_{i \le k}\lambda_i \ge \mathrm{frac}\cdot\sum_i \lambda_i$. PCA measures *linear* dimension: the
# curled-up swiss roll needs all 3 axes.
#
# **TwoNN** (Facco, d'Errico, Rodriguez, Laio 2017, arXiv:1803.06992) looks only at the two nearest neighbours of
# each point, at distances $r_1 < r_2$. If the data are locally $k$-dimensional with roughly constant density, the
# ratio $\mu = r_2 / r_1$ follows a Pareto law, $P(\mu \le m) = F(m) = 1 - m^{-k}$, i.e.
#
# $$-\log\big(1 - F(\mu)\big) = k \log\mu .$$
#
# So sort the $\mu$'s, give the $i$-th smallest the empirical value $F_i = i/N$, drop the largest 10 % (the noisy
# tail), and fit a line through the origin: its slope is $k$. Both estimators must first pass on data whose
# dimension we know: Gaussian points on $k$-dimensional linear subspaces of $\mathbb R^{50}$, and the swiss roll.

# %%
for k in (2, 5):
    Xk = data.linear_subspace(2000, k, 50, seed=k)                   # (2000, 50), rank k
    est, pk = idim.twonn_id(Xk), idim.pca_dim(Xk, 0.99)
    print(f"{k}-dim subspace of R^50: TwoNN {est:.2f}, PCA dimension for 99 % variance {pk}")
    assert abs(est - k) < 0.15 * k and pk == k

id_roll, pca_roll = idim.twonn_id(X_roll), idim.pca_dim(X_roll, 0.95)
print(f"swiss roll: TwoNN {id_roll:.2f}, PCA needs {pca_roll} components for 95 % of the variance")
assert abs(id_roll - 2) < 0.3 and pca_roll == 3

# %% [markdown]
# The fit behind the TwoNN number for the swiss roll: the points fall on a line of slope $\approx 2$ through the origin.

# %%
r1, r2 = idim.two_nearest_distances(X_roll)
mu = np.sort(r2 / r1)
F = np.arange(1, len(mu) + 1) / len(mu)
m = int(0.9 * len(mu))
fig, ax = plotting.figure()
ax.plot(np.log(mu[:m]), -np.log(1 - F[:m]), ".", ms=2, label="swiss roll points")
xs = np.linspace(0, np.log(mu[m - 1]), 10)
ax.plot(xs, id_roll * xs, "k", label=f"slope {id_roll:.2f}")
plotting.label(ax, "TwoNN fit on the swiss roll", "log mu = log(r2 / r1)", "-log(1 - F(mu))")
ax.legend()
plt.show()

# %% [markdown]
# **Real data: handwritten digits.** scikit-learn's 1797 digits live in $\mathbb R^{64}$. PCA needs 21 components for
# 90 % of the variance and 29 for 95 %, while TwoNN says about 9: far below 64. The two answers differ because the
# digit manifold is curved, so PCA must spend extra linear directions on its curvature (like the third axis of the
# swiss roll).

# %%
X_dig, y_dig = data.digits()                                         # (1797, 64) in [0, 1], labels (1797,)
ev = idim.pca_explained_variance(X_dig)
id_dig = idim.twonn_id(X_dig)
print(f"digits: PCA 90 % -> {idim.pca_dim(X_dig, 0.9)}, 95 % -> {idim.pca_dim(X_dig, 0.95)}, "
      f"TwoNN {id_dig:.1f}, participation ratio {idim.participation_ratio(X_dig):.1f}")
assert idim.pca_dim(X_dig, 0.9) == 21 and idim.pca_dim(X_dig, 0.95) == 29
assert 7 < id_dig < 11

fig, axes = plotting.figure(ncols=2)
plotting.image_grid(X_dig[:40].numpy(), nrow=10, title="40 of the 1797 digits (8 x 8 pixels)", ax=axes[0])
axes[1].plot(np.arange(1, 65), np.cumsum(ev), ".-")
axes[1].axhline(0.95, color="C3", ls="--", lw=1)
axes[1].axvline(id_dig, color="k", ls=":", label=f"TwoNN = {id_dig:.1f}")
plotting.label(axes[1], "Digits: cumulative explained variance", "number of principal components", "share of variance")
axes[1].legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Manifold lens (D1, D2): intrinsic dimension layer by layer
#
# Ansuini, Laio, Macke and Zoccolan (NeurIPS 2019, arXiv:1905.12784) measured TwoNN on the activations of every
# layer of trained image classifiers: the intrinsic dimension first rises, then falls towards the output, it is tens
# (not thousands) at the last hidden layer, and a lower last-layer value goes with better generalisation. We repeat
# a CPU-sized version: an MLP $64 \to 256 \to 128 \to 64 \to 32 \to 10$ on the digits, with TwoNN and the
# *participation ratio* $PR = (\sum_i\lambda_i)^2 / \sum_i\lambda_i^2$ (a soft count of the PCA dimensions in use;
# D2) on 539 held-out digits at every layer, before and after training, plus a control trained on shuffled labels.

# %%
train_idx, test_idx = data.train_test_split_indices(len(X_dig), test_fraction=0.3, seed=0)
Xtr, ytr, Xte, yte = X_dig[train_idx], y_dig[train_idx], X_dig[test_idx], y_dig[test_idx]
assert len(test_idx) == 539
widths = [64, 256, 128, 64, 32]


def id_profile(net) -> tuple[list[float], list[float]]:
    reps = layer_geometry.representations(net, Xte)                   # input, 4 hidden layers, logits
    return [idim.twonn_id(r) for r in reps], [idim.participation_ratio(r) for r in reps]


net = layer_geometry.relu_mlp(widths, 10, seed=0)
id_init, pr_init = id_profile(net)
layer_geometry.train_classifier(net, Xtr, ytr, steps=400, lr=1e-3, batch=128, seed=0)
id_trained, pr_trained = id_profile(net)
test_acc = layer_geometry.accuracy(net, Xte, yte)

y_shuffled = ytr[torch.from_numpy(numpy_rng(1).permutation(len(ytr)))]
net_shuffled = layer_geometry.relu_mlp(widths, 10, seed=0)
layer_geometry.train_classifier(net_shuffled, Xtr, y_shuffled, steps=1200, lr=3e-3, batch=256, seed=0)
id_shuffled, _ = id_profile(net_shuffled)
memorised = layer_geometry.accuracy(net_shuffled, Xtr, y_shuffled)

names = ["input", "h1 (256)", "h2 (128)", "h3 (64)", "h4 (32)", "logits"]
for row in zip(names, id_init, id_trained, id_shuffled, pr_trained):
    print("{:9s} TwoNN init {:5.2f}  trained {:5.2f}  shuffled labels {:5.2f}   PR trained {:5.2f}".format(*row))
print(f"test accuracy {test_acc:.3f}; shuffled-label net fits {memorised:.3f} of its training labels")

# %% [markdown]
# What the numbers say (each asserted below): every layer's intrinsic dimension is a handful, far below its width
# (256, 128, 64, 32); training lowers it in the deeper layers (the network discards directions that do not help to
# classify); the participation ratio drops in the same way; and the network that memorised shuffled labels keeps a
# higher intrinsic dimension in its last hidden layer, as Ansuini et al. report (in 29 of the 30 draws we swept, by
# up to 3.1; in one it was 0.09 lower, inside TwoNN's statistical error of about $1/\sqrt{540} = 4\%$, so we assert
# "not lower beyond that error"). For this small MLP on tiny images the profile falls, from 7 to 8 at the input to
# about 4 to 5 at the last hidden layer (by 1.5 to 3.8 over those 30 draws; we assert more than 1), and no step
# rises by more than TwoNN's noise: over twelve draws of the course's seeds the largest rise was 0.12 (last hidden
# layer to logits, in one draw; in the other eleven that step fell), and the input-to-h1 step fell by as little as
# 0.07. The initial rise that Ansuini et al. see comes with deep convolutional networks on large images (Volume 1
# revisits it).

# %%
assert test_acc > 0.9 and memorised > 0.95
assert max(id_trained[1:5]) < 12 and max(id_shuffled[1:5]) < 12           # far below the widths
assert id_trained[4] < id_init[4] and id_trained[3] < id_init[3]          # training lowers the deep-layer ID
assert id_trained[0] - id_trained[4] > 1 and all(np.diff(id_trained) < 0.3)  # it falls; no step rises beyond noise
assert all(pr_trained[i] < pr_init[i] for i in range(1, 5))               # fewer PCA directions in use
assert id_trained[4] < (1 + 1 / np.sqrt(len(Xte))) * id_shuffled[4]     # memorising keeps more dimensions

fig, ax = plotting.figure(width=5.5)
for prof, lab in ((id_init, "at initialisation"), (id_trained, "trained"), (id_shuffled, "trained on shuffled labels")):
    ax.plot(names, prof, "o-", label=lab)
plotting.label(ax, "Intrinsic dimension (TwoNN) through an MLP", "layer", "TwoNN intrinsic dimension")
ax.tick_params(axis="x", labelrotation=30)
ax.legend()
plt.show()

# %% [markdown]
# > **Careful.** Some write-ups say trained transformers use "only a few hundred useful dimensions" out of thousands;
# > Ansuini et al. report intrinsic dimensions of order tens (roughly 10-100) for image classifiers. And "every
# > layer performs a topological transformation" is wrong in general: ReLU layers and changes of width are not
# > homeomorphisms; they can merge distinct points. Two different inputs with the same image:

# %%
a_pt, b_pt = torch.tensor([-1.0, -2.0]), torch.tensor([-3.0, -1.0])
assert not torch.equal(a_pt, b_pt) and torch.equal(torch.relu(a_pt), torch.relu(b_pt))     # both map to (0, 0)

# %% [markdown]
# ## Manifold lens (F1): a ReLU network tiles its input into linear regions
#
# A ReLU network is piecewise affine: inside each region where the on/off *activation pattern* of its hidden units
# is fixed, it is one affine map. One hidden layer of width $h$ on $\mathbb R^2$ is an arrangement of $h$ lines, which
# cuts the plane into at most $1 + h + \binom h2$ regions. Depth *can* multiply regions (Montufar et al. 2014,
# arXiv:1402.1869), but at random initialisation the count is governed by the total number of neurons, not by the
# depth (Hanin and Rolnick 2019, arXiv:1906.00904): below, three layers of 8 units cut no more regions than one
# layer of 24. We count the distinct patterns on a 200 x 200 grid of $[-3, 3]^2$.

# %%
g = torch.linspace(-3, 3, 200)
grid = torch.stack(torch.meshgrid(g, g, indexing="xy"), dim=-1).reshape(-1, 2)     # (40000, 2)
counts = {}
for arch in ([2, 8], [2, 24], [2, 8, 8, 8]):
    counts[tuple(arch)] = [layer_geometry.count_linear_regions(layer_geometry.relu_mlp(arch, 1, seed=s), grid)
                           for s in range(3)]
    print(f"hidden widths {arch[1:]}: regions seen on the grid {counts[tuple(arch)]}")
assert layer_geometry.max_regions_one_layer_2d(8) == 37 and layer_geometry.max_regions_one_layer_2d(24) == 301
assert max(counts[(2, 8)]) <= 37 and max(counts[(2, 24)]) <= 301
deep, wide = np.mean(counts[(2, 8, 8, 8)]), np.mean(counts[(2, 24)])
assert deep < 1.2 * wide                                                          # depth does not multiply regions here

net_tiles = layer_geometry.relu_mlp([2, 8, 8, 8], 1, seed=0)
pattern = layer_geometry.activation_patterns(net_tiles, grid)
_, region_id = torch.unique(pattern, dim=0, return_inverse=True)
fig, ax = plotting.figure(width=4.4, height=4)
ax.imshow(region_id.reshape(200, 200).numpy() % 20, cmap="tab20", origin="lower", extent=(-3, 3, -3, 3))
plotting.label(ax, "Linear regions of a random ReLU net (8, 8, 8)", "input x1", "input x2")
plt.show()

# %% [markdown]
# ## 0.4 Topological data analysis in one lesson
#
# Distances are not the whole story: data have *shape*, such as clusters, rings and holes. Topology counts them with
# Betti numbers: $\beta_0$ = number of connected components, $\beta_1$ = number of independent loops. A circle has
# $(\beta_0, \beta_1) = (1, 1)$, a torus (the surface of a doughnut) $(1, 2)$, a filled blob $(1, 0)$.
#
# A finite point cloud has no loops by itself, so we grow balls around the points. The *Vietoris-Rips* complex
# $VR_\varepsilon(X)$ joins two points by an edge when their distance is at most $\varepsilon$, fills a triangle when
# all three of its edges are present, and so on. As $\varepsilon$ grows from 0, components merge and loops appear
# and get filled in. *Persistent homology* records each feature as a bar from its birth scale to its death scale.
# Long bars are shape; short bars are noise.
#
# **$H_0$ is the minimum spanning tree.** All points are born at $\varepsilon = 0$. Two components merge exactly when
# $\varepsilon$ reaches the length of an edge that Kruskal's algorithm would add to the minimum spanning tree, so the
# finite $H_0$ death times are the $N - 1$ tree edge lengths (exercise 10). We compare with `ripser`
# (Bauer 2021, arXiv:1908.02518), which computes in single precision.

# %%
X_circle = data.noisy_circle(200, noise=0.05, seed=0)                  # (200, 2)
dgms_circle = topology.persistence(X_circle, maxdim=1)                 # [H0 (200, 2), H1 (n, 2)]
h0_ripser = np.sort(dgms_circle[0][np.isfinite(dgms_circle[0][:, 1]), 1])
h0_mst = topology.h0_persistence(X_circle)
print(f"{len(h0_mst)} finite H0 bars; largest relative difference to ripser {np.max(np.abs(h0_mst - h0_ripser) / h0_mst):.1e}")
assert len(h0_mst) == len(h0_ripser) == 199 and np.allclose(h0_mst, h0_ripser, rtol=1e-6)

# %% [markdown]
# **Loops ($H_1$).** On a noisy circle of radius 1, a loop is born once neighbouring points connect (at about the
# sampling gap) and dies when triangles can span the circle: at $\sqrt3 \approx 1.73$ for a perfect circle (the
# side of the inscribed equilateral triangle), a bit earlier with noise. A Gaussian blob has only short bars. A
# torus has two independent loops (around the hole and around the tube), so two long bars. "Long" needs a scale: we
# call a bar long above 0.7. Over 31 draws (seed offsets 100-129 and 144) the longest bar of a blob of 200 standard
# Gaussian points lay between 0.18 and 0.53, the torus's second loop was at least 0.93 long, and its third-longest
# bar at most 0.43. For the torus we let
# `ripser` keep 300 of 2000 points by greedy farthest-point sampling (`n_perm`), which keeps the run fast.

# %%
X_blob = data.gaussian_blob(200, seed=0)
X_torus = data.torus(2000, R=2.0, r=0.8, seed=0)
H1 = {
    "noisy circle": dgms_circle[1],
    "Gaussian blob": topology.persistence(X_blob, maxdim=1)[1],
    "torus (300 of 2000 points)": topology.persistence(X_torus, maxdim=1, n_perm=300)[1],
}
for name, dgm in H1.items():
    print(f"{name:27s}: longest H1 bars {np.round(np.sort(topology.lifetimes(dgm))[-3:], 2)}")
LONG = 0.7                   # between noise bars (a blob's longest: 0.18-0.53 over 31 draws) and loops (the torus: 0.93+)
assert topology.count_long_bars(H1["noisy circle"], LONG) == 1
assert topology.count_long_bars(H1["Gaussian blob"], LONG) == 0
assert topology.count_long_bars(H1["torus (300 of 2000 points)"], LONG) == 2

perfect = topology.persistence(data.noisy_circle(200, noise=0.0, seed=0))[1]
death = perfect[np.argmax(topology.lifetimes(perfect)), 1]
assert abs(death - math.sqrt(3)) < 0.02 * math.sqrt(3)              # the loop of a clean circle dies at sqrt(3)
death_noisy = H1["noisy circle"][np.argmax(topology.lifetimes(H1["noisy circle"])), 1]
assert death_noisy < math.sqrt(3)                                    # a bit earlier with noise

fig, axes = plotting.figure(ncols=3, width=3.6)
for ax, (name, dgm) in zip(axes, H1.items()):
    plotting.barcode(dgm, ax, f"H1 barcode: {name}")
fig.tight_layout()
plt.show()

# %% [markdown]
# > **Careful.** Persistent homology is sensitive to sampling density and noise: with noise 0.3 instead of 0.05 the
# > circle's loop is much shorter-lived (its bar was 0.12 to 0.53 times as long over 400 seed offsets, a third in the
# > median; the median of seven draws was at most 0.47 over 200 offsets; we assert under a half), and with fewer points
# > or outliers it can vanish among the noise bars. Count bars relative to the noise level, not absolutely. And claims
# > that "more holes in a network's representation mean more intelligence or self-awareness" have no operational
# > content: keep the measurement, drop the interpretation.

# %%
def longest_loop(noise, seed):
    return topology.max_persistence(topology.persistence(data.noisy_circle(200, noise=noise, seed=seed))[1])


shrink = np.array([longest_loop(0.3, s) / longest_loop(0.05, s) for s in range(7)])   # seven circles of each kind
print(f"longest H1 bar, noise 0.3 over noise 0.05, seven seeds: {np.round(shrink, 2)}")
assert np.median(shrink) < 0.5                     # one draw: 0.12-0.53 over 400 offsets, median 0.33

# %% [markdown]
# ## Manifold lens (P1): is there a loop in a learned representation?
#
# Networks that *grok* modular addition $a + b \bmod p$ (Volume 2 and the capstone train one) are reported to
# place the $p$ token embeddings on circles: embedding $a$ looks like $(\cos 2\pi k a/p, \sin 2\pi k a/p)$ for a few
# key frequencies $k$ (Nanda et al. 2023, arXiv:2301.05217; Liu et al. 2022, arXiv:2205.10343). The P1 experiment
# measures this with two tools: the Fourier power of the embeddings over the residue index $a$, and the $H_1$
# barcode of the embeddings projected on the plane of the strongest frequency. Before training on the real thing,
# we validate the pipeline on a planted answer: a 64-dimensional embedding made of three circles, at frequencies 5,
# 17 and 23, in three orthogonal planes, plus noise, against a purely random embedding.

# %%
p_mod = 59
a_idx = np.arange(p_mod)
rng_p1 = numpy_rng(11)
fourier = np.concatenate([np.stack([np.cos(2 * np.pi * k * a_idx / p_mod), np.sin(2 * np.pi * k * a_idx / p_mod)], 1)
                          for k in (5, 17, 23)], axis=1)                           # (59, 6)
planes = np.linalg.qr(rng_p1.standard_normal((64, 6)))[0].T * math.sqrt(64 / 6)   # 3 orthogonal planes, (6, 64)
emb_planted = fourier @ planes + 0.1 * rng_p1.standard_normal((p_mod, 64))
emb_random = rng_p1.standard_normal((p_mod, 64))


def fourier_plane_loops(E: np.ndarray) -> tuple[list[int], float, int]:
    """Top-3 frequencies of E (p, D) over the residue index, their share of the power, and the long H1 bars on the
    plane of the strongest frequency."""
    coef = np.fft.rfft(E - E.mean(0), axis=0)                            # (p//2 + 1, D) complex
    power = (np.abs(coef) ** 2).sum(1)                                   # (p//2 + 1,)
    top = np.argsort(power)[::-1][:3]
    basis, _ = np.linalg.qr(np.stack([coef[top[0]].real, coef[top[0]].imag], 1))   # (D, 2) orthonormal
    P = E @ basis                                                        # (p, 2) projection
    P = P / np.sqrt(((P - P.mean(0)) ** 2).sum(1).mean())               # unit RMS radius: a scale-free threshold
    loops = topology.count_long_bars(topology.persistence(P)[1], 1.0)   # a clean circle's bar is about 1.4
    return sorted(int(k) for k in top), float(power[top].sum() / power.sum()), loops


for name, E_test in (("planted", emb_planted), ("random", emb_random)):
    print("{:8s} top frequencies {}, their share of the power {:.2f}, long H1 bars {}".format(name, *fourier_plane_loops(E_test)))
top_planted, share_planted, loops_planted = fourier_plane_loops(emb_planted)
_, share_random, loops_random = fourier_plane_loops(emb_random)
assert top_planted == [5, 17, 23] and share_planted > 0.9 and loops_planted == 1
assert share_random < 0.3 and loops_random == 0

# %% [markdown]
# With the projection scaled to unit RMS radius, the threshold for a "long" bar is scale-free. A clean circle of 59
# points has an $H_1$ bar of about 1.4 (1.38 or more over 1000 seed offsets of this cell); the random embedding's
# longest bar was at most 0.69 over the same draws (above 0.5 in 4 of them): we count bars longer than 1.0. The planes
# matter. When the three circles are mixed into $\mathbb R^{64}$ by a random, non-orthogonal matrix instead, the plane
# of one frequency also catches the shadows of the other two; its points then wobble in and out by up to half the
# radius, the hole partly fills, and the longest bar fell below 0.5 in 2.4 % of 1000 draws (to 0.23 at worst). A
# learned embedding can have such overlapping planes, so a missing loop there is weaker evidence than a found one.

# %% [markdown]
# ## Cover's theorem: more dimensions, more separable labelings
#
# A *dichotomy* of $N$ points is one of the $2^N$ ways to label them $\pm1$. Cover (1965) counted how many a
# hyperplane through the origin can separate when the points are in general position in $\mathbb R^d$:
#
# $$C(N, d) = 2\sum_{k=0}^{d-1}\binom{N-1}{k},\qquad P_{\mathrm{sep}}(N, d) = \frac{C(N, d)}{2^N}.$$
#
# Every labeling is separable while $N \le d$; exactly half of them at $N = 2d$; almost none beyond. A linear
# classifier in $\mathbb R^d$ can memorise about $2d$ random labels: its *capacity*. We check the formula by
# linear programming: a labeling is separable when some $w$ satisfies $y_i\,w^\top x_i \ge 1$ for all $i$.

# %%
assert all(separability.cover_separable_probability(2 * d, d) == 0.5 for d in range(1, 60))
assert all(separability.cover_separable_probability(N, 10) == 1.0 for N in range(1, 11))

d_cov, trials = 5, 150
Ns = list(range(2, 22, 2))
mc_sep = [separability.separable_fraction_mc(N, d_cov, trials, seed=N) for N in tqdm(Ns, desc="linear programs")]
exact_sep = [separability.cover_separable_probability(N, d_cov) for N in Ns]
for N, m_, e_ in zip(Ns, mc_sep, exact_sep):
    assert abs(m_ - e_) < 4 * math.sqrt(e_ * (1 - e_) / trials) + 0.02

fig, ax = plotting.figure()
ax.plot(np.array(Ns) / d_cov, mc_sep, "o", label=f"linear programs, {trials} labelings each")
Ns_fine = np.arange(1, 23)
ax.plot(Ns_fine / d_cov, [separability.cover_separable_probability(int(N), d_cov) for N in Ns_fine], "k", label="Cover's formula")
ax.axvline(2, color="C3", ls="--", lw=1)
plotting.label(ax, f"Random labelings separable through 0 (d = {d_cov})", "N / d", "P(separable)")
ax.legend(loc="lower left")  # the curve falls from the top left to the bottom right: this corner is empty
plt.show()

# %% [markdown]
# **Dimension raising.** Two concentric circles (`make_circles`) cannot be separated by a line: logistic regression
# is stuck at chance (50 %). Lift each point onto the paraboloid, $\varphi(x_1, x_2) = (x_1, x_2, x_1^2 + x_2^2)$:
# the inner circle sits low, the outer one high, and a horizontal plane separates them (exercise 9). Without knowing
# the geometry, 50 random ReLU features $\mathrm{ReLU}(xW + b)$ do the same job (Rahimi and Recht 2007).

# %%
X_c, y_c = data.circles(400, noise=0.05, seed=0)
X_ct = torch.from_numpy(X_c).float()
acc_raw = separability.logistic_accuracy(X_c, y_c)
acc_lift = separability.logistic_accuracy(separability.lift_paraboloid(X_ct), y_c)
acc_rand = separability.logistic_accuracy(separability.random_relu_features(X_ct, 50, seed=0), y_c)
print(f"logistic regression accuracy: raw 2-D {acc_raw:.2f}, paraboloid lift {acc_lift:.2f}, 50 random ReLU features {acc_rand:.2f}")
assert abs(acc_raw - 0.5) < 0.1 and acc_lift >= 0.99 and acc_rand >= 0.99
assert not separability.is_linearly_separable(X_c, y_c, through_origin=False)
assert separability.is_linearly_separable(separability.lift_paraboloid(X_ct).numpy(), y_c, through_origin=False)

Z = separability.lift_paraboloid(X_ct).numpy()
fig = plt.figure(figsize=(8.5, 3.6))
ax1 = fig.add_subplot(1, 2, 1)
ax1.scatter(X_c[:, 0], X_c[:, 1], c=y_c, cmap="coolwarm", s=6)
plotting.label(ax1, "make_circles in the plane", "x1", "x2")
ax2 = fig.add_subplot(1, 2, 2, projection="3d")
ax2.scatter(Z[:, 0], Z[:, 1], Z[:, 2], c=y_c, cmap="coolwarm", s=6)
ax2.set_title("after the lift (x1, x2, x1^2 + x2^2)")
ax2.set_xlabel("x1")
ax2.set_ylabel("x2")
ax2.set_zlabel("x1^2 + x2^2")
plt.show()

# %% [markdown]
# > **Careful.** "MLPs find ring-shaped data hard; topology needs special operations." Only *narrow* networks do:
# > if every hidden layer has width at most the input dimension (here 2), the decision region is unbounded and
# > cannot enclose the inner circle (Johnson 2019, "Deep, skinny neural networks are not universal approximators",
# > arXiv:1810.00393). An ordinary MLP with a few extra hidden units separates the rings easily. Four seeds each:

# %%
y_ct = torch.from_numpy(y_c).float()
acc = {}
for hidden in ([2, 2, 2], [16]):
    acc[tuple(hidden)] = []
    for seed in range(4):
        net_c = layer_geometry.relu_mlp([2, *hidden], 1, seed=seed)
        layer_geometry.train_classifier(net_c, X_ct, y_ct, steps=800, lr=0.02, batch=len(X_ct), seed=seed)
        acc[tuple(hidden)].append(layer_geometry.accuracy(net_c, X_ct, y_ct))
    print(f"hidden widths {hidden}: training accuracy per seed {np.round(acc[tuple(hidden)], 3)}")
assert max(acc[(2, 2, 2)]) < 1.0 and np.median(acc[(2, 2, 2)]) < 0.95 and min(acc[(16,)]) >= 0.99

# %% [markdown]
# Over ten draws of the course's seeds (40 narrow nets), the width-2 nets reached a median training accuracy between
# 0.5 and 0.85 and never 1; twice one came as close as 0.985: its unbounded decision region reaches the inner circle
# through a thin channel across the outer ring, paying only for the few outer points in the channel. Every width-16
# net reached 1.0. The theorem forbids a bounded region, not a good score on a finite sample; what it predicts, and
# what the cell asserts, is that narrow nets fall short where a slightly wider one does not.

# %% [markdown]
# ## Summary
#
# - The inscribed ball's share of the cube is $\rho_d = \pi^{d/2} / (2^d\,\Gamma(d/2+1))$: $\pi/4$, $\pi/6$,
#   $2.5\cdot10^{-3}$ at $d = 10$, $2\cdot10^{-14}$ at $d = 30$. Volume lives in the corners and in a thin outer shell.
# - Gaussian vectors have norm $\approx \sqrt{d - 1/2}$ with a spread $\to 1/\sqrt2$ that does not grow with $d$; in
#   2-D the norm is Rayleigh (mode 1), not concentrated near 0.
# - Random directions are nearly orthogonal: cosine spread $1/\sqrt d$, Beta law, exactly 10 % with $|\cos| < 0.1$ at
#   $d = 3$. A random batch is nearly orthonormal entrywise, but $\|XX^\top - I\|_{op}$ follows the Marchenko-Pastur
#   edge and is at least 1 once $b > d$.
# - Real data have low intrinsic dimension: TwoNN finds 2 for the swiss roll and about 9 for 64-pixel digits; PCA
#   overestimates curved manifolds. Inside a trained MLP the dimension falls with depth.
# - Persistent homology counts components and loops across scales: one long $H_1$ bar for a circle, two for a torus.
# - Cover's theorem: $P_{\mathrm{sep}} = 1/2$ at $N = 2d$; lifting to more dimensions (paraboloid, random ReLU
#   features, wider layers) makes ring-shaped data linearly separable.
#
# **Exercises.** Open `exercises/v0_roots/01_high_dimensional_geometry.ipynb` (the command `manifold-course lab`
# copies it to your `my_work/` folder, where your answers are safe from course updates). Ten functions, from the
# ball-in-cube ratio to TwoNN and $H_0$ persistence; each cell tells you at once whether you are right.
#
# **Further reading.**
# - R. Vershynin, *High-Dimensional Probability*, Cambridge University Press 2018: chapters 3 (concentration of norms,
#   random vectors) and 4 (random matrices).
# - A. Blum, J. Hopcroft, R. Kannan, *Foundations of Data Science*, Cambridge University Press 2020, chapter 2.
# - E. Facco, M. d'Errico, A. Rodriguez, A. Laio, "Estimating the intrinsic dimension of datasets by a minimal
#   neighborhood information", Scientific Reports 2017, arXiv:1803.06992.
# - A. Ansuini, A. Laio, J. Macke, D. Zoccolan, "Intrinsic dimension of data representations in deep neural
#   networks", NeurIPS 2019, arXiv:1905.12784.
# - P. Pope, C. Zhu, A. Abdelkader, M. Goldblum, T. Goldstein, "The intrinsic dimension of images and its impact on
#   learning", ICLR 2021, arXiv:2104.08894.
# - C. Fefferman, S. Mitter, H. Narayanan, "Testing the manifold hypothesis", J. AMS 2016, arXiv:1310.0425.
# - G. Carlsson, "Topology and data", Bulletin of the AMS 2009; U. Bauer, "Ripser", J. Appl. Comput. Topology 2021,
#   arXiv:1908.02518.
# - T. M. Cover, "Geometrical and statistical properties of systems of linear inequalities with applications in
#   pattern recognition", IEEE Trans. Electronic Computers 1965.
# - J. Johnson, "Deep, skinny neural networks are not universal approximators", ICLR 2019, arXiv:1810.00393.
# - B. Hanin, D. Rolnick, "Deep ReLU networks have surprisingly few activation patterns", NeurIPS 2019, arXiv:1906.00904.
# - N. Nanda, L. Chan, T. Lieberum, J. Smith, J. Steinhardt, "Progress measures for grokking via mechanistic
#   interpretability", ICLR 2023, arXiv:2301.05217.
