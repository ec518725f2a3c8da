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
# # Capstone, Chapter 2: every model through the lens
#
# The course has trained a residual MLP and a CNN on digits (Volume 1), a character-level GPT (Volume 2), a diffusion
# denoiser (Volume 3) and a policy (Volume 5). Each volume measured its model with the tools of its own trade:
# accuracy, perplexity, a sample, a return. This chapter retrains one small model from each volume in seconds, with
# the package's own trainers, and points *one* instrument at all of them, the manifold lens of
# `manifold_course.lens`: what shape do their representations take, layer by layer? Then it tests the essays'
# claims about that shape (the syllabus's Part 2) on these models, keeps what holds, says plainly what does not,
# and closes the course with its road in six computed pictures.
#
# | section | question | what you will measure |
# |---|---|---|
# | 1 | five models in seconds? | the zoo: each volume's model, its score and its training time |
# | 2 | what shape do they take? | `lens.look` on each: TwoNN and PCA dimension, $H_1$ loops, coverage, isotropy, local Lipschitz; one comparative table |
# | 3 | low dimension, and a "hunchback"? (D1) | the ID profile of the digits MLP over seeds; a random-label control |
# | 4 | how many dimensions are used? (D2) | dimension against width; the "300-500-dimensional self manifold" of seed 000 at this scale |
# | 5 | one path for all training runs? (T1) | prediction-space trajectories of six digits MLPs (seeds, optimisers, widths) by InPCA |
# | 6 | continuity and coverage (C1, C2) | where the Lipschitz estimate grows, which units are used |
# | 7 | the road | six pictures of the course, each computed here, and where to go next |
#
# **Goals.** After this chapter you can
# - point the same measurement at an MLP, a CNN, a transformer's residual stream, a denoiser and a policy, and read the table;
# - estimate intrinsic dimension two ways and say when an estimator is not to be trusted;
# - test a claim from a paper or an essay over seeds, with a control, and report what failed as plainly as what held;
# - place training runs in prediction space with the Bhattacharyya distance and intensive PCA.
#
# **Prerequisites.** Intrinsic dimension and persistent homology (Volume 0, chapters 0.3-0.4); the residual MLP and
# `train_classifier` (Volume 1); the course's GPT (Volume 2); DDPM (Volume 3); PPO (Volume 5); chapter 1 of the capstone (the lens
# on the grokking transformer).
#
# **Time.** About 1.5 hours of reading and running, plus an hour for the exercises. The notebook runs in about 30 s on
# a 2-core CPU. `SCALE = 1`; raise it on a faster machine or a GPU: it multiplies every training run's steps (the
# zoo, the seed loops, the trajectories).
#
# **Symbols.** $x$ an input, $h_\ell(x)$ the output of layer $\ell$ ($\ell = 0$ the input), $N$ the number of probe
# inputs and $D$ a layer's width; $d$ an intrinsic dimension: $d_{\rm TwoNN}$ (Facco et al.'s two-nearest-neighbour
# estimator), $d_{95}$ (principal components for 95 % of the variance), $\mathrm{PR} = (\sum\lambda_i)^2/\sum\lambda_i^2$
# over the covariance eigenvalues $\lambda_i$; $H_1$ the loops of a Vietoris-Rips filtration and $h_1^{\rm rel}$ its
# longest bar over the median pairwise distance; $\bar a_j$ the mean $|a|$ of unit $j$ and $p_j = \bar a_j/\sum_k \bar
# a_k$; $\varepsilon$ a perturbation size and $L_\ell$ the median over inputs of $\max_u\|h_\ell(x+\varepsilon u) -
# h_\ell(x)\|/\varepsilon$; $P, Q$ predicted probabilities $(N, C)$ over $C$ classes, $d_B$ their Bhattacharyya
# distance, $J = I - \frac1K\mathbf 1\mathbf 1^\top$ the centring matrix of $K$ checkpoints.

# %%
from manifold_course import seed_everything
from manifold_course.seeding import numpy_rng

rng = seed_everything(0)

import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import HTML, display
from tqdm.auto import tqdm

from manifold_course import lens
from manifold_course.capstone import zoo
from manifold_course.geometry import volumes
from manifold_course.optim import scaling
from manifold_course.systems import roofline

SCALE = 1            # multiplies every training run's steps; 1 runs in about 30 s on a 2-core CPU
SEEDS = (0, 1, 2)    # every statistical claim below is checked over these seeds (moved by MANIFOLD_COURSE_SEED_OFFSET)
T0 = time.process_time()

# %% [markdown]
# ## 1. The zoo: one model from each volume, retrained in seconds
#
# `manifold_course.capstone.zoo` trains each model with its volume's own trainer and returns a `Specimen`: the model,
# probe inputs it was not trained on, the layers to look at, and the options `lens.look` needs for it (a denoiser
# takes a time step besides its input; a GPT takes integer tokens, so its Lipschitz probe perturbs the token
# embedding instead of the input).

# %%
Z = zoo.build_zoo(seed=0, scale=SCALE)
for name, s in Z.items():
    n_params = sum(p.numel() for p in s.model.parameters())
    scores = ", ".join(f"{k} {v:.3g}" for k, v in s.score.items())
    print(f"Vol. {s.volume}  {name:16s} {n_params:6d} parameters, trained in {s.seconds:4.1f} s CPU: {scores}")
print(f"all five: {sum(s.seconds for s in Z.values()):.1f} s of CPU time")

random_return = zoo.random_policy_return(Z["CartPole policy"].extra["env_id"], episodes=20, seed=0)
assert Z["digits MLP"].score["test_accuracy"] > 0.9 and Z["digits CNN"].score["test_accuracy"] > 0.9
assert Z["char GPT"].score["val_loss"] < 0.6 * Z["char GPT"].score["uniform_loss"]
assert Z["circle denoiser"].score["final_loss"] < 0.5 * Z["circle denoiser"].score["first_loss"]
assert Z["CartPole policy"].score["greedy_return"] > 2 * random_return
print(f"random CartPole policy: {random_return:.1f}")

# %% [markdown]
# Every model learned something: both digit classifiers exceed 90 % test accuracy, the GPT's held-out loss is below
# 60 % of the uniform guess $\log V$, the denoiser's loss fell below half its first value, and the greedy policy
# balances the pole more than twice as long as random actions do. They are small and briefly trained, so the shapes
# below are those of *these* models, not of their large relatives.
#
# ## 2. The manifold lens on every model
#
# `lens.look(model, inputs, layers, ...)` records the named layers with forward hooks (the model is not changed) and
# measures each layer's point cloud: intrinsic dimension (TwoNN, $d_{95}$, PR), the longest $H_1$ bar relative to the
# cloud's scale, the dead-unit fraction and the entropy of unit use, the mean $|\cos|$ of centred points and the top
# principal component's share, and the local Lipschitz estimate $L_\ell$. Here is one model's report in full.

# %%
R = {name: s.look() for name, s in Z.items()}
display(R["digits MLP"])
fig = R["digits MLP"].plot()
plt.show()

# %% [markdown]
# And one table for all five: per model, the probe's size, the widths its layers have, and the range of each
# measurement over its layers (first layer -> last layer, and the extreme value where that is what matters).

# %%
def summary(name, rep):
    r = rep.rows
    rng_ = lambda k: f"{r[0][k]:.3g} -> {r[-1][k]:.3g}"   # noqa: E731
    return {"model": name, "vol.": Z[name].volume, "N": r[0]["n"], "widths": "/".join(str(x["dim"]) for x in r),
            "TwoNN": rng_("twonn"), "PCA-95": "/".join(str(x["pca95"]) for x in r),
            "max H1 rel.": f"{max(x['h1_rel'] for x in r):.2f}", "max dead": f"{max(x['dead_fraction'] for x in r):.2f}",
            "mean|cos|": rng_("mean_abs_cos"), "Lipschitz": rng_("lipschitz")}


table = [summary(n, rep) for n, rep in R.items()]
cols = list(table[0])
display(HTML("<table><tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>" +
             "".join("<tr>" + "".join(f"<td>{row[c]}</td>" for c in cols) + "</tr>" for row in table) + "</table>"))

# %% [markdown]
# What the table says, model by model (each statement is asserted below; each was checked on seeds 0-3 while the
# chapter was written, and the robust run moves the seed again):
#
# - **Digits MLP and CNN.** The input digits already have a low intrinsic dimension (TwoNN below 10 of 64 pixels);
#   every later layer has a lower one, down to the logits. The representations are low-dimensional compared with
#   any width they live in ($d_{95}$ of a hidden layer far below its width).
# - **Char GPT.** Its residual stream (64 wide) uses a small part of its width: $d_{95}$ at most about a quarter of 64
#   at every layer. TwoNN reads much lower than $d_{95}$ inside the blocks: the points (one per character position)
#   form tight clusters, and TwoNN, which only sees the two nearest neighbours, measures the clusters' local spread.
#   The Lipschitz estimate grows through the stream: the final RMSNorm's output moves more than 1.3 times as much per
#   unit embedding perturbation as the first block's.
# - **Circle denoiser.** The data is a circle thickened by noise, and TwoNN stays near 2 at every layer: 1.60 to 2.77
#   over 120 draws (seed offsets 0-119, five layers each). That spread is mostly the estimator's own: on 400 points of
#   a flat 2-D Gaussian cloud TwoNN reads 1.64 to 2.55 over 3000 draws (standard deviation 0.14), so a single layer
#   outside (1.5, 2.5) says nothing; we assert between 1.4 and 3, clearly above a thin circle's 1 and below 3. The
#   loop is plain at the input and survives the first hidden layer: the longest $H_1$ bar was 0.37 to 0.68 of the
#   cloud's median pairwise distance at both over those 120 draws, where a loop-free Gaussian blob of as many
#   points gives 0.16 in the median and below 0.28 in 99 % of 5000 draws (a few reached 0.40: one blob's
#   longest bar is a noisy yardstick). We assert more than 1.5 times the median of five blobs; deeper in, how much of
#   it is left varies from seed to seed. That is what the task asks for: near the data the predicted noise points
#   *toward the circle*, a function of the distance to it more than of the angle along it, so the output need not keep
#   the angle's loop.
# - **CartPole policy.** The states the policy visits are nearly flat: two or three principal components carry 95 % of
#   the variance at every layer. Here TwoNN is the column not to trust: on points strung along a few trajectories it reads
#   more dimensions at the input than PCA's two (printed below), because nearest neighbours along a trajectory are
#   nearly duplicates.

# %%
mlp_r, cnn_r, gpt_r, den_r, pol_r = (R[n] for n in Z)
for rep in (mlp_r, cnn_r):
    tw = rep.column("twonn")
    assert tw[0] < 10 and tw[-1] < tw[0], tw
    assert all(row["pca95"] < row["dim"] / 2 for row in rep.rows[1:-1])
assert all(row["pca95"] <= 64 // 4 + 2 for row in gpt_r.rows), gpt_r.column("pca95")
assert all(row["twonn"] < row["pca95"] for row in gpt_r.rows[1:]), (gpt_r.column("twonn"), gpt_r.column("pca95"))
assert gpt_r.row("norm_f")["lipschitz"] > 1.3 * gpt_r.row("blocks.0")["lipschitz"]
null_h1 = [lens.loops(numpy_rng(s).standard_normal((400, 2)))["h1_rel"] for s in range(5)]   # no loop at all
print(f"longest H1 bar / median distance: circle denoiser {np.round(den_r.column('h1_rel'), 2).tolist()}; "
      f"five Gaussian blobs of 400 points {np.round(sorted(null_h1), 2).tolist()}")
assert min(den_r.column("h1_rel")[:2]) > 1.5 * np.median(null_h1), (den_r.column("h1_rel"), null_h1)
assert all(1.4 < t < 3 for t in den_r.column("twonn")), den_r.column("twonn")   # 120 draws: 1.60 to 2.77
assert all(p <= 3 for p in pol_r.column("pca95")), pol_r.column("pca95")
assert pol_r.rows[0]["twonn"] > pol_r.rows[0]["pca95"]
print("policy input states (ambient dimension 4): TwoNN", round(pol_r.rows[0]["twonn"], 2), "PCA-95", pol_r.rows[0]["pca95"])

# %% [markdown]
# ## 3. D1: low intrinsic dimension, and a "hunchback"?
#
# A. Ansuini, A. Laio, J. H. Macke, D. Zoccolan, "Intrinsic dimension of data representations in deep neural
# networks", NeurIPS 2019 (arXiv:1905.12784), found with TwoNN (E. Facco, M. d'Errico, A. Rodriguez, A. Laio, Scientific
# Reports 2017, arXiv:1803.06992) that the intrinsic dimension of deep CNNs' representations (i) is far below the number
# of units, (ii) across layers first rises, then falls (a "hunchback"), and (iii) is lower in the last hidden layer of
# networks that generalise better; networks trained on shuffled labels keep a higher final dimension.
#
# We call a profile $d_0, \dots, d_{L-1}$ a hunchback when $\max_\ell d_\ell \ge (1 + r)\max(d_0, d_{L-1})$ with
# $r = 0.1$ (exercise `hunchback`). Three seeds of the digits MLP, each also trained on shuffled labels:

# %%
prof, prof_rl, scores = {}, {}, {}
fig, ax = plt.subplots(1, 2, figsize=(9, 3))
for seed in tqdm(SEEDS, desc="D1: seeds"):
    for rl, store in ((False, prof), (True, prof_rl)):
        s = zoo.digits_mlp(seed=seed, scale=SCALE, random_labels=rl)
        rep = s.look(topology=False, perturb=None)
        store[seed] = rep
        if not rl:
            scores[seed] = s.score
        ax[0].plot(rep.column("twonn"), "o-" if not rl else "s--", color=f"C{seed}", alpha=0.8)
        ax[1].plot(rep.column("pca95"), "o-" if not rl else "s--", color=f"C{seed}", alpha=0.8)
layers = prof[SEEDS[0]].layers
for a, t in zip(ax, ("TwoNN", "PCA-95 %")):
    a.set_xticks(range(len(layers)), layers, rotation=30, fontsize=8)
    a.set_ylabel(t + " dimension")
ax[0].set_title("digits MLP: true labels (o-), shuffled (s--)")
plt.tight_layout()
plt.show()

for seed in SEEDS:
    tw, tw_rl = prof[seed].column("twonn"), prof_rl[seed].column("twonn")
    p, p_rl = prof[seed].column("pca95"), prof_rl[seed].column("pca95")
    print(f"seed {seed}: TwoNN {np.round(tw, 1)}, shuffled {np.round(tw_rl, 1)}; PCA-95 {p}, shuffled {p_rl}")
    assert max(tw[1:-1]) < 10                           # (i) low: below 10 in 64-wide layers
    assert not zoo.hunchback(tw)                        # (ii) no TwoNN hunchback: the input is the peak
    assert p_rl[-2] > 1.5 * p[-2]                       # (iii) shuffled labels: far more components in the last block
    assert not zoo.hunchback(p, rel=0.05)               #       and true labels never rise-then-fall in d95
# (iii), the effects that vary from seed to seed: stated over the seeds (the median of three = two of three)
gap = np.array([prof_rl[s].column("twonn")[-1] - prof[s].column("twonn")[-1] for s in SEEDS])
d95_rl = {s: prof_rl[s].column("pca95") for s in SEEDS}
rises = sum(max(d[1:-1]) > max(d[0], d[-1]) for d in d95_rl.values())       # an interior layer above both ends
rises_5 = sum(zoo.hunchback(d, rel=0.05) for d in d95_rl.values())           # ... by 5 % or more
print(f"final-layer TwoNN, shuffled minus true labels: {np.round(gap, 2)} (median {np.median(gap):.2f}); "
      f"d95 rises then falls under shuffled labels in {rises} of {len(SEEDS)} seeds ({rises_5} by 5 % or more)")
assert np.median(gap) > 0 and rises >= len(SEEDS) - 1                # higher final TwoNN in at least 2 of 3 seeds

# %% [markdown]
# What held and what did not (on every seed, unless a count is given):
#
# - **Low dimension holds.** Hidden TwoNN stays below 10 in 64-wide layers.
# - **The hunchback does not appear.** The digits' input has the highest TwoNN, and every layer lowers it: the MLP only
#   compresses. Ansuini et al.'s rise happens in deep CNNs on natural images, whose first layers expand a
#   low-dimensional pixel manifold into many features; 8 x 8 digits and a 5-layer MLP are not that regime.
# - **The random-label control holds.** Trained on shuffled labels, the network's final layers keep a higher
#   dimension: $d_{95}$ of the last block is 2 to 3 times as large on every seed (129 runs: seed offsets 100-140, 144
#   and 147, three seeds each; asserted: more than 1.5 times). The TwoNN of the logits is higher too, but by an amount
#   that varies from seed to seed: over 32 draws (16 seeds, each with AVX-512 and with AVX2 matrix kernels) the gap
#   ranged from 0.47 to 2.2 with a median near 1.3, and one draw in CI's moved-seed run gave 0.2; the median over three
#   seeds ranged from 0.37 to 2.0 over 43 offsets. So the cell asserts the direction only: a higher final TwoNN in at
#   least two of the three seeds (median gap above 0). In $d_{95}$, memorisation produces a rise-then-fall profile that
#   true labels never do: the first hidden layer needs more components than the 64 pixels (27 or 28) before the later
#   layers bring it down. The rise is small, 0 to 8 components (peaks 28 to 36 over 177 seeds, offsets 7000-7058): at
#   least 5 % in 171 of the 177, at least one component in 176 (in the last the peak only equalled the input). The cell
#   asserts a rise in at least two of the three seeds (held at all 59 offsets) and prints how many rose by 5 %. The same
#   network, the same data: only the labels' structure decides how far the representation is compressed.
#
# > **Careful (Part 4).** The seed essay says the useful dimensions "number a few hundred"; Ansuini et al. report
# > tens. TwoNN is a local estimator: on clustered or trajectory-like clouds it reads low or high (see the GPT and the
# > policy above), so always show a second estimator beside it.
#
# ## 4. D2: how many dimensions are used, and the "300-500-dimensional self manifold"
#
# Seed 000 says transformers "grow a 300-500-dimensional shape in a 10 000-dimensional space, and that shape is
# intelligence"; seed 004 adds "300-500 of 12 288". What this chapter can measure is the part with content: how many
# dimensions a representation uses as the width grows. The digits MLP at widths 16, 64 and 256:

# %%
WIDTHS = (16, 64, 256)
used, err = {}, {}
for seed in tqdm(SEEDS, desc="D2: seeds"):
    for w in WIDTHS:
        if w == 64:                                          # trained in section 3 already
            rep, score = prof[seed], scores[seed]
        else:
            s = zoo.digits_mlp(seed=seed, scale=SCALE, width=w)
            rep, score = s.look(topology=False, perturb=None), s.score
        used[seed, w] = rep.rows[-2]["pca95"]
        err[seed, w] = 1 - score["test_accuracy"]
print("PCA-95 dimension of the last hidden layer:")
for seed in SEEDS:
    print(f"  seed {seed}: " + ", ".join(f"width {w}: {used[seed, w]}" for w in WIDTHS))
    assert used[seed, 16] <= used[seed, 64] <= used[seed, 256] <= 10
gpt_dims = gpt_r.column("pca95")
print(f"char GPT (width 64): PCA-95 per layer {gpt_dims}, TwoNN per layer {np.round(gpt_r.column('twonn'), 1)}")
assert max(gpt_dims) < 20 and max(gpt_r.column("twonn")) < 30

# %% [markdown]
# A 16-fold wider network uses at most a few more principal components (never more than 10 at width 256): the used
# dimension grows far more slowly than the width and is set by the task, not by the room available. The course's GPT
# is 64 wide, so it *cannot* host a 300-dimensional shape, and it does not come close to filling the room it has (under
# 20 components, under 30 TwoNN dimensions at every layer).
#
# > **Careful (Part 4, P4-B/P4-C).** No source cited by the essays gives the figure 300-500, and 12 288 is GPT-3's
# > hidden width, not a dimension of its parameter space (which has $1.75\cdot10^{11}$). Nothing measurable links a
# > representation's dimension to "intelligence" or a "self". What a small model can show is the trend above:
# > dimension used grows sub-linearly with width. Whether it reaches hundreds at 12 288 is a question for a GPU and a
# > large model, with the estimators' caveats of section 3.
#
# ## 5. T1: do training runs share one low-dimensional path in prediction space?
#
# J. Mao, I. Griniasty, H. K. Teoh, R. Ramesh, R. Yang, M. K. Transtrum, J. P. Sethna, P. Chaudhari, "The training
# process of many deep networks explores the same low-dimensional manifold", PNAS 2024 (arXiv:2305.01604), describe a
# checkpoint by its predicted probabilities $P$ on a fixed probe set, compare two with the Bhattacharyya distance
# $d_B(P, Q) = \frac1N\sum_n -\log\sum_c\sqrt{p_{nc}q_{nc}}$, and embed all checkpoints by intensive PCA (K. N. Quinn et
# al., PNAS 2019, arXiv:1810.02877): $W = -\frac12 JDJ$, eigenvalues sorted by $|\lambda|$ with their signs kept. They
# find the top three components explain most of the (absolute) eigenvalue mass, and that bigger networks travel the
# same path faster. Six digits MLPs, 150 steps each, six checkpoints, plus the "truth" (one-hot) and "ignorance"
# (uniform) points:

# %%
RUNS = {"Adam, seed a": dict(seed=0), "Adam, seed b": dict(seed=10), "SGD+momentum": dict(seed=0, optimizer="sgd", lr=0.05),
        "AdamW": dict(seed=0, optimizer="adamw"), "Adam, width 128": dict(seed=0, width=128),
        "Adam, width 16": dict(seed=0, width=16)}
ckpts = {}
for name, kw in RUNS.items():
    ckpts[name], probe_labels = zoo.digits_checkpoints(scale=SCALE, **kw)
traj = lens.prediction_trajectories(ckpts, labels=probe_labels)
ev = traj["eigenvalues"]
top3, top1 = zoo.top_explained(ev, 3), zoo.top_explained(ev, 1)
print(f"InPCA: top-1 explains {top1:.1%}, top-3 {top3:.1%} of sum |lambda|; "
      f"{int((ev < -1e-9).sum())} of {len(ev)} eigenvalues are negative")


def progress(name):
    """Position along the first InPCA axis, 0 at 'ignorance', 1 at 'truth'."""
    c = traj["coords"]
    a, b = c["ignorance"][0, 0], c["truth"][0, 0]
    return (c[name][:, 0] - a) / (b - a)


fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
for name in RUNS:
    xy = traj["coords"][name]
    ax[0].plot(xy[:, 0], xy[:, 1], "o-", ms=3, label=name)
    ax[1].plot(np.linspace(0, 150 * SCALE, len(xy)), progress(name), "o-", ms=3, label=name)
for ref, mk in (("truth", "k*"), ("ignorance", "kx")):
    ax[0].plot(*traj["coords"][ref][0, :2], mk, ms=10, label=ref)
ax[0].set_xlabel("InPCA 1")
ax[0].set_ylabel("InPCA 2")
ax[0].legend(fontsize=7)
ax[1].set_xlabel("training step")
ax[1].set_ylabel("progress: ignorance (0) -> truth (1)")
plt.tight_layout()
plt.show()

assert top3 > 0.9 and top1 > 0.8
assert progress("Adam, width 128")[-1] > progress("Adam, width 16")[-1] + 0.2
assert all(abs(progress("AdamW")[k] - progress("Adam, seed a")[k]) < 0.05 for k in range(len(progress("AdamW"))))

# %% [markdown]
# The first InPCA axis alone runs from ignorance to truth and carries more than 80 % of the mass; three axes carry more
# than 90 %. At the last checkpoint the wider network is further along that one axis (by more than a fifth of the
# way), as Mao et al. report ("bigger networks follow the same path faster"), and AdamW with a small weight decay
# traces Adam's path to within 5 % of the way at every checkpoint. Honest limits: these are six short runs of one architecture
# family, so the dominance of the first axis is partly that every run is still mostly *moving from ignorance toward
# truth*; the paper's architecture-vs-optimiser comparisons need many more networks than a 30-s notebook holds.
#
# > **Careful (Part 4).** The seed's "150 000 networks", "450 000-dimensional prediction space" and "top-3 explain
# > 76 %" are to be checked against the paper before quoting; and the paper says nothing about a "valley that exists in
# > data space independent of design": it shows shared paths *in prediction space*, with architecture-dependent detail.
#
# ## 6. C1 and C2 across the zoo: continuity and coverage
#
# Seed 004 asks for representations that are *continuous* (similar inputs, similar outputs) and *evenly used* (no
# dead regions). The lens columns answer per model:

# %%
for name, rep in R.items():
    print(f"{name:16s} Lipschitz per layer {np.round(rep.column('lipschitz'), 2)}; "
          f"dead fraction {np.round(rep.column('dead_fraction'), 2)}; "
          f"hidden-layer unit-use entropy >= {min(rep.column('coverage_entropy')[1:-1]):.2f}")
lip = mlp_r.column("lipschitz")
assert lip[-1] > 4 * lip[0]                            # the digits MLP amplifies input perturbations toward the logits
hidden = [row for rep in R.values() for row in rep.rows[1:-1]]          # every layer but the input and the output
assert all(row["coverage_entropy"] > 0.85 for row in hidden)
assert np.median([row["dead_fraction"] for row in hidden]) < 0.1          # the typical layer: few dead units
assert all(row["dead_fraction"] < 0.5 for row in hidden)                  # and no layer loses most of its units
assert max(gpt_r.column("dead_fraction")) < 0.05                       # no ReLU there: almost every coordinate > 0 somewhere

# %% [markdown]
# - **Continuity.** The digits MLP's logits move more than 4 times as much as its input under a small random
#   perturbation: the classifier amplifies the directions it has learned to separate, while the denoiser's output is
#   a different map altogether (a residual toward the data, not a class score). A single Lipschitz number says little without the model's purpose.
# - **Coverage.** Unit use is even in every model (normalised entropy above 0.85 at every hidden layer); the GPT's
#   residual stream has almost no dead coordinate (it is not a ReLU layer: coordinates take both signs). Dead
#   units appear where ReLUs and SiLUs are (the MLP's stem, the CNN's convolutions, the denoiser's trunk), few in the
#   typical layer (asserted: under 10 % in the median hidden layer) and under half of any layer: no large "hole". A
#   narrow layer can lose whole channels, though: the CNN's first convolution has only 8, and in 1 of 100 draws (seed
#   offsets 100-199) 3 of them never fired on the test digits, 37.5 % of the layer (the next largest: 26 %). (In 1 of 43 draws one of the GPT's 64 coordinates stayed negative on every
#   probe input, so "dead" by this measure, which is a ReLU notion; we assert under 5 %.)
#
# ## 7. The road: six pictures of the course
#
# The syllabus closes with six images of the road: **foundations** (high-dimensional geometry), **pillars**
# (architectures and their inductive biases), **power** (scaling), **soul** (generation and values), **body** (agents
# that act) and **skeleton** (the hardware and systems underneath). Each panel below is computed now, from the
# course's own functions and the models of this chapter.

# %%
fig, axes = plt.subplots(2, 3, figsize=(12, 7))
# foundations: almost all of a high-dimensional ball's volume lies in a thin shell
d = np.arange(1, 201)
shell = [volumes.shell_fraction(int(k), 0.05) for k in d]
axes[0, 0].plot(d, shell)
axes[0, 0].set(title="foundations: volume within 5 % of the surface", xlabel="dimension d", ylabel="fraction")
assert volumes.shell_fraction(100, 0.05) > 0.99
# pillars: the CNN's learned 3x3 filters (locality and weight sharing)
W = Z["digits CNN"].model[0].weight.detach()[:, 0]          # (8, 3, 3)
pad = lambda w: torch.nn.functional.pad(w, (0, 1, 0, 1), value=float("nan"))   # noqa: E731  (a gap after each filter)
grid = torch.cat([torch.cat([pad(W[4 * r + c]) for c in range(4)], 1) for r in range(2)], 0)   # (8, 16): 2 x 4 filters
axes[0, 1].imshow(grid, cmap="RdBu")
axes[0, 1].set(title="pillars: the digits CNN's first filters", xticks=[], yticks=[])
# power: test error against width, and its power-law fit
ws = np.array(WIDTHS, dtype=float)
med_err = np.array([np.median([err[s, int(w)] for s in SEEDS]) for w in ws])
a, alpha = scaling.fit_power_law(ws, med_err)
axes[0, 2].loglog(ws, med_err, "o", label="median over seeds")
axes[0, 2].loglog(np.geomspace(16, 256), scaling.power_law(np.geomspace(16, 256), a, alpha), label=f"a N^-{alpha:.2f}")
axes[0, 2].set(title="power: digits MLP test error vs width", xlabel="width", ylabel="test error")
axes[0, 2].set_xticks(ws, [str(int(w)) for w in ws])
axes[0, 2].tick_params(axis="x", which="minor", bottom=False, labelbottom=False)
axes[0, 2].legend()
assert med_err[-1] < med_err[0] and alpha > 0                  # the median seed: wider, lower test error
# soul: the denoiser imagines the circle
den = Z["circle denoiser"]
x = zoo.ddpm_samples(den.model, den.extra["betas"], n=400, seed=0)
radius = x.norm(dim=1)
axes[1, 0].scatter(x[:, 0], x[:, 1], s=3)
axes[1, 0].set(title="soul: 400 DDPM samples of the circle", aspect="equal")
on_circle = float(((radius - 1).abs() < 0.2).float().mean())
gauss_on_circle = np.exp(-0.8**2 / 2) - np.exp(-1.2**2 / 2)      # P(0.8 < |z| < 1.2) for z ~ N(0, I_2)
assert on_circle > 0.9, on_circle         # the data: all within 0.2; a Gaussian: 24 %; 120 draws: 96.5 % to 100 %
# body: the policy acts
axes[1, 1].bar(["random", "PPO (greedy)"], [random_return, Z["CartPole policy"].score["greedy_return"]])
axes[1, 1].set(title="body: CartPole return", ylabel="steps balanced")
# skeleton: where the GPT's matmuls sit on an H100's roofline
gpu = roofline.GPUS["H100 SXM"]
I = np.geomspace(0.1, 2000)
axes[1, 2].loglog(I, roofline.roofline(I, gpu.tensor_fp16_flops, gpu.hbm_bandwidth) / 1e12)
for tokens in (16 * 32, 65536):
    Ik = roofline.arithmetic_intensity("matmul", (tokens, 64, 4 * 64), 2)
    axes[1, 2].plot(Ik, roofline.roofline(Ik, gpu.tensor_fp16_flops, gpu.hbm_bandwidth) / 1e12, "o",
                    label=f"GPT MLP matmul, {tokens} tokens")
axes[1, 2].set(title="skeleton: H100 roofline (BF16)", xlabel="FLOP / byte", ylabel="TFLOP/s")
axes[1, 2].legend(fontsize=7)
ridge = roofline.ridge_point(gpu.tensor_fp16_flops, gpu.hbm_bandwidth)
assert roofline.arithmetic_intensity("matmul", (65536, 64, 256), 2) < ridge
plt.tight_layout()
plt.show()
print(f"{on_circle:.0%} of the samples lie within 0.2 of the unit circle (a Gaussian: {gauss_on_circle:.0%}); power-law exponent {alpha:.2f}; "
      f"H100 ridge point {ridge:.0f} FLOP/byte")

# %% [markdown]
# Six pictures, six volumes: in 100 dimensions more than 99 % of a ball's volume lies within 5 % of its surface; the
# CNN's filters are local and shared; test error falls as a power of width (exponent above 0; in the median over the
# seeds: a single seed's width-256 and width-16 nets can tie, as at seed offset 8004 with 30 of 449 test digits wrong
# at both); the denoiser puts almost all of its samples within 0.2 of the circle (asserted: more than 90 %; 96.5 % to
# 100 % over 120 draws, seed offsets 0-119), where its starting Gaussian puts 24 %; the policy balances far longer
# than chance; and the GPT's 64-wide MLP matmul, even over 65 536 tokens, sits left of the H100's ridge point: it is
# memory-bound, which is why Volume 6 fuses kernels. Training length matters for the denoiser: the same model after
# 500 steps instead of 1000 put 28 % to 94 % of its samples there over 200 draws (seed offsets 30000-30199), a sketch
# of the circle whose quality varied from seed to seed.
#
# ## Where to go next
#
# - *Geometry of representations*: Ansuini et al. 2019 (arXiv:1905.12784); S. Recanatesi et al., "A scale-dependent
#   notion of effective dimension", 2020 (arXiv:2001.10872); Y. Bahri et al., "Explaining neural scaling laws", 2021
#   (arXiv:2102.06701).
# - *Prediction-space trajectories*: Mao et al. 2024 (arXiv:2305.01604); Quinn et al. 2019 (arXiv:1810.02877).
# - *Mechanistic interpretability*: N. Elhage et al., "Toy Models of Superposition", 2022 (arXiv:2209.10652); Nanda
#   et al. 2023 (arXiv:2301.05217), the subject of chapter 1 of the capstone.
# - *Topology of learned representations*: G. Naitzat, A. Zhitnikov, L.-H. Lim, "Topology of deep neural networks",
#   JMLR 2020 (arXiv:2004.06093).
# - *Scale*: J. Hoffmann et al., "Training Compute-Optimal Large Language Models", 2022 (arXiv:2203.15556); the
#   models here, with `SCALE` raised on a GPU, are where to test whether the trends of sections 3-5 persist.
#
# ## Summary
#
# - One instrument, five models: the lens reads an MLP, a CNN, a transformer's residual stream, a denoiser and a
#   policy with the same columns, so that their shapes can be compared.
# - Low intrinsic dimension holds everywhere; the hunchback does not appear on digits (the MLP only compresses); the
#   random-label control keeps a higher final dimension, as Ansuini et al. report.
# - Dimension used grows far more slowly than width; a 64-wide model cannot test a "300-500-dimensional" claim, and
#   the claim has no source.
# - Six training runs share one dominant InPCA axis, from ignorance to truth, with wider networks further along it.
# - Estimators fail in recognisable ways (TwoNN on clusters and trajectories): show two.
#
# **Exercises:** `exercises/v7_capstone/02_every_model_through_the_lens.ipynb` (coverage, isotropy, the Bhattacharyya
# distance, InPCA, the hunchback test, a hook-based capture that leaves the model as it found it).
#
# **Further reading.** A. Ansuini, A. Laio, J. H. Macke, D. Zoccolan, "Intrinsic dimension of data representations in
# deep neural networks", NeurIPS 2019 (arXiv:1905.12784). E. Facco, M. d'Errico, A. Rodriguez, A. Laio, "Estimating the
# intrinsic dimension of datasets by a minimal neighborhood information", Scientific Reports 2017 (arXiv:1803.06992).
# J. Mao et al., "The training process of many deep networks explores the same low-dimensional manifold", PNAS 2024
# (arXiv:2305.01604). K. N. Quinn, C. B. Clement, F. De Bernardis, M. D. Niemack, J. P. Sethna, "Visualizing
# probabilistic models and data with Intensive Principal Component Analysis", PNAS 2019 (arXiv:1810.02877).

# %%
print(f"notebook CPU time: {time.process_time() - T0:.1f} s")
