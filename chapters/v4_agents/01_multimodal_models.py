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
# # Volume 4, Chapter 1: Multimodal models (sections 4.1-4.2)
#
# A language model that can see needs two things: a space where pictures and words can be compared, and a way to
# hand a picture to a model that only reads words. CLIP builds the first by contrastive learning on image-caption
# pairs; LLaVA does the second with a small projector that turns image features into "pseudo-words". Both run here
# at toy scale, on the 8x8 digits of scikit-learn, with models trained inside the chapter: no download, no API key.
#
# | section | question | what you will measure |
# |---|---|---|
# | 4.1 | how do images and captions meet in one space? | a mini-CLIP trained with the symmetric InfoNCE loss: zero-shot accuracy on training and held-out caption templates and on upside-down digits, retrieval recall@k against its ceiling, the modality gap |
# | 4.1 lens | does a contrastive loss find the shape of the data? | DrLIM on the rotations of one digit: a closed loop in 2-D, $H_1 = 1$ by persistent homology (experiment F8c) |
# | 4.2 | how does an LLM read an image? | parameter counts per LLaVA stage for the real shapes; a frozen tiny caption LM that learns nothing while a projector learns to make it name the digit; a Q-Former's fixed output length |
#
# **Goals.** After this chapter you can
# - write CLIP's symmetric loss, classify zero-shot with prompts, and measure retrieval with recall@k;
# - say what the modality gap is and measure it;
# - explain why zero-shot accuracy is strong but uneven, and show where it breaks;
# - use a contrastive loss on neighbourhood relations alone (DrLIM) and check the topology of what it learns;
# - build a LLaVA input (image tokens, text, attention mask, labels with image positions ignored), count what each
#   stage trains, and compress any number of patches to a fixed number of tokens with a Q-Former.
#
# **Prerequisites.** Cross-entropy and softmax (Volume 0); attention and the course's GPT (Volume 2, chapter 1,
# `manifold_course.nn.gpt`); persistent homology (`manifold_course.geometry.topology`, Volume 0).
#
# **Time.** About 1.5 hours of reading and running, plus 1 hour for the exercises. The notebook runs in about 30 s on
# a 2-core CPU. `SCALE = 1`; on a faster machine or a GPU raise it: it multiplies the training steps of the mini-CLIP,
# of the caption LM and of the projectors.
#
# **Symbols.** $x$ an image, $t$ a caption; $f$ the image encoder and $g$ the text encoder, $\hat f = f/\|f\|$ and
# $\hat g$ their unit-normalised outputs; $N$ pairs in a batch; $S$ the $N\times N$ similarity matrix,
# $S_{ij} = \tau^{-1}\langle \hat f_i, \hat g_j\rangle$ with temperature $\tau$ ($1/\tau$ is the *logit scale*);
# $\mathrm{CE}(S, I)$ the cross-entropy of each row of $S$ against the diagonal; $C$ classes; $k$ in recall@k the
# number of retrieved items; $G_W$ the DrLIM map, $D$ a distance, $m$ the margin, $Y$ the pair label; $H_1$ the
# first homology (loops); $Z_v$ the patch features of the vision encoder, $H_v$ their projections, $P$ or $N$ their
# number, $D$ (in 4.2) the LLM width, $V$ its vocabulary, $L$ its layers and $F$ its feed-forward width; $Q$ the
# learned queries of a Q-Former and $M = |Q|$.

# %%
from manifold_course import seed_everything
from manifold_course.seeding import manual_seed, numpy_rng, torch_generator

rng = seed_everything(0)

import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from manifold_course import plotting
from manifold_course.agents import clip, llava
from manifold_course.data import digits, train_test_split_indices
from manifold_course.geometry import topology
from manifold_course.nn.gpt import GPT, GPTConfig

SCALE = 1            # multiplies training steps; 1 runs in ~30 s on a 2-core CPU
SEEDS = (0, 1, 2)    # every trained-model claim below is checked over these three seeds
T0 = time.process_time()
X, y = digits()      # (1797, 64) in [0, 1], (1797,)

# %% [markdown]
# ## 4.1 CLIP: the Rosetta Stone of vision and language
#
# CLIP (A. Radford et al., "Learning Transferable Visual Models From Natural Language Supervision", 2021,
# arXiv:2103.00020) trains an image encoder $f$ and a text encoder $g$ on 400 million image-caption pairs from the
# web. In a batch of $N$ pairs, the $N$ matched pairs should score higher than the $N^2 - N$ mismatched ones:
#
# $$S_{ij} = \tau^{-1}\langle \hat f(x_i), \hat g(t_j)\rangle,\qquad
#   \mathcal L = \tfrac12\big[\mathrm{CE}(S, I) + \mathrm{CE}(S^\top, I)\big].$$
#
# The first term is a softmax over the captions for each image, the second one over the images for each caption:
# the loss is **symmetric**. With one term only, the captions would not learn to pick their image out of the batch.
# $\tau$ is learned (initialised at 0.07, $1/\tau$ clipped at 100).
#
# Our data: each digit image gets a synthetic caption from a template, with **synonyms**: the class may be written
# as a word or as a numeral ("a handwritten seven", "the digit 7", "number seven"). Three templates are **held out**
# from training; two of them contain words the text encoder has never seen, which its tokenizer maps to `<unk>`.

# %%
tok = clip.WordTokenizer.for_digits()
for t in clip.TRAIN_TEMPLATES[:3] + clip.HELD_OUT_TEMPLATES:
    text = clip.caption(7, t)
    print(f"{text!r:34} -> {tok.decode(tok.encode(text))!r}")
unk = tok.index["<unk>"]
assert tok.encode(clip.caption(7, clip.HELD_OUT_TEMPLATES[0])).count(unk) == 3     # someone, wrote, here
assert all(unk not in tok.encode(clip.caption(c, t)) for c in range(10) for t in clip.TRAIN_TEMPLATES)

# %% [markdown]
# The towers (`manifold_course.agents.clip`): the image tower is a one-layer vision transformer (A. Dosovitskiy et
# al., "An Image is Worth 16x16 Words", 2020, arXiv:2010.11929) over the 16 patches of 2x2 pixels of a digit, then an
# MLP to a 32-d embedding. The text tower is a **bag of words**: the mean of the word embeddings, then an MLP; it
# cannot see word order.
#
# First the loss on two constructed cases. Aligned pairs whose cross-pairs are orthogonal, at $1/\tau = 100$, give
# a loss of about 0. If all captions lean the same way, $S$ is not symmetric, and the one-sided losses differ from
# each other and from the symmetric one, their mean: by about 1 in the median over random batches of 6 pairs (a
# single batch can come out nearly balanced; about one in 25 is within 0.1).

# %%
E = torch.eye(5, dtype=torch.float64)
assert clip.clip_loss(3 * E, 0.5 * E, 100.0).item() < 1e-30
g = torch_generator(0)
one_sided = []                                                      # (CE(S, I), CE(S^T, I)) for 200 random batches
for _ in range(200):
    a, b = torch.randn(6, 8, generator=g, dtype=torch.float64), torch.randn(6, 8, generator=g, dtype=torch.float64)
    b[:, 0] += 3.0                                                  # every caption leans the same way
    S = 10.0 * F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T
    rows, cols = F.cross_entropy(S, torch.arange(6)).item(), F.cross_entropy(S.T, torch.arange(6)).item()
    assert abs(clip.clip_loss(a, b, 10.0).item() - (rows + cols) / 2) < 1e-12
    one_sided.append((rows, cols))
rows, cols = one_sided[0]
gap = np.median([abs(r - c) for r, c in one_sided])
print(f"first batch: CE(S, I) = {rows:.3f}, CE(S^T, I) = {cols:.3f}, symmetric loss = {(rows + cols) / 2:.3f}; "
      f"|CE(S, I) - CE(S^T, I)| over 200 batches: median {gap:.2f}")
assert gap > 0.5

# %% [markdown]
# ### Training a mini-CLIP and measuring it
#
# For each seed: a random 80/20 split of the 1797 digits, 200 steps of AdamW on batches of 64 pairs, each image with
# a caption drawn from the 7 training templates. Two images of one class in a batch get captions of the same class:
# CLIP's "false negatives", kept as they are. Then, on the test split:
#
# - **zero-shot accuracy**: one prompt embedding per class (the mean over a set of templates, CLIP's *prompt
#   ensembling*), $\hat y = \arg\max_c\cos(f(x), g(\text{prompt}_c))$, with the training templates and with the
#   held-out ones;
# - the same on the test digits turned **upside down** (rows reversed): images from outside the training
#   distribution;
# - **recall@k** of caption-to-image retrieval on a gallery of 100 test images, 10 per class, each with its own
#   random caption;
# - the **modality gap** (W. Liang et al., "Mind the Gap: Understanding the Modality Gap in Multi-modal Contrastive
#   Representation Learning", 2022, arXiv:2203.02053): the distance between the centroids of the unit image and
#   unit caption embeddings, before and after training.

# %%
SYMMETRIC = [0, 1, 3, 8]          # digits that look alike upside down (mirrored top to bottom)
runs = {}
for seed in SEEDS:
    tr, te = train_test_split_indices(len(X), 0.2, seed=seed)
    manual_seed(seed)
    model = clip.MiniCLIP(tok.vocab_size)
    caps_rng = numpy_rng(100 + seed)
    test_caps = tok.batch([clip.caption(int(c), clip.TRAIN_TEMPLATES[caps_rng.integers(7)]) for c in y[te]])
    with torch.no_grad():
        gap0 = clip.modality_gap(model.image(X[te]), model.text(test_caps))
    run = clip.train_clip(model, X[tr], y[tr], tok, steps=200 * SCALE, batch_size=64, lr=5e-3, seed=seed)
    r = {"loss": float(np.mean(run.losses[-20:])), "gap0": gap0}
    with torch.no_grad():
        img = model.image(X[te])
        for name, tmpl in (("train", clip.TRAIN_TEMPLATES), ("held_out", clip.HELD_OUT_TEMPLATES)):
            pred = clip.zero_shot_predict(img, clip.class_prompt_embeddings(model, tok, tmpl))
            r[name] = (pred == y[te]).double().mean().item()
        prompts = clip.class_prompt_embeddings(model, tok, clip.TRAIN_TEMPLATES)
        flip = X[te].reshape(-1, 8, 8).flip(1).reshape(-1, 64)
        ok = clip.zero_shot_predict(model.image(flip), prompts) == y[te]
        sym = torch.isin(y[te], torch.tensor(SYMMETRIC))
        r["flip"], r["flip_sym"], r["flip_other"] = (ok.double().mean().item(), ok[sym].double().mean().item(),
                                                     ok[~sym].double().mean().item())
        pred = clip.zero_shot_predict(img, prompts)
        r["per_class"] = np.array([(pred[y[te] == c] == c).double().mean().item() for c in range(10)])
        r["gap"] = clip.modality_gap(img, model.text(test_caps))
        gallery = torch.cat([torch.as_tensor(te)[y[te] == c][:10] for c in range(10)])          # 100 images
        cap_ids = tok.batch([clip.caption(int(y[i]), clip.TRAIN_TEMPLATES[caps_rng.integers(7)]) for i in gallery])
        sim = F.normalize(model.text(cap_ids), dim=-1) @ F.normalize(model.image(X[gallery]), dim=-1).T   # (100, 100)
        r["recall"] = [clip.recall_at_k(sim, k) for k in (1, 5, 10)]
    runs[seed] = (model, te, r)
    print(f"seed {seed}: loss {r['loss']:.2f}; zero-shot {r['train']:.3f} (training templates), {r['held_out']:.3f} "
          f"(held-out), {r['flip']:.3f} (upside down: {r['flip_sym']:.2f} on 0/1/3/8, {r['flip_other']:.2f} on the "
          f"rest); recall@1/5/10 {r['recall']}; gap {r['gap0']:.2f} -> {r['gap']:.2f}")

# %% [markdown]
# What the three seeds show (the cell below asserts each point over the seeds):
#
# - **Zero-shot works**: no classifier was trained, yet the nearest class prompt is the right class for most test
#   digits (median over seeds at least 90 %). Measured over 41 seed offsets (123 runs), the median seed scored 0.95 to
#   0.98, and single runs mostly 0.94 or more, but one run in 123 ended at 0.74: one seed can land badly, the median
#   seed does not.
# - **Held-out templates cost little here**, because a bag of words reduces "someone wrote a seven here" to the word
#   "seven" and two `<unk>`s: the median run lost 0.014 to them, the worst 0.16. A median over seeds of at least 80 %
#   is asserted (measured: 0.83 to 0.98, and 0.91 or more in 40 of the 41 draws).
# - **Upside-down digits break it**: median accuracy falls below 60 %. The fall is uneven: digits that look
#   alike upside down (0, 1, 3, 8) keep most of their accuracy, the others collapse. Over 41 draws the median seed's
#   accuracy on 0/1/3/8 was 0.58 or more above its accuracy on the other digits (asserted: above 0.3); every run had
#   a gap of 0.55 or more but the poor one (0.18).
# - **Recall@k meets its ceiling, not 1.** Each caption names only the class, and the gallery holds 10 images of
#   each class. A perfect model ranks those 10 first, in an order the caption cannot decide, so the expected
#   recall@k is at most $k/10$: 0.1, 0.5 and 1.0. Chance is $k/100$. We assert recall@10 at least 0.8 (median), and
#   recall@1 at most 0.25 in every seed: near the ceiling, far above chance.
# - **The modality gap** is large at initialisation (the *cone effect* of Liang et al.: each randomly initialised
#   tower maps everything into a narrow cone of its own) and shrinks with training, but stays positive in every seed.

# %%
R = {k: np.array([runs[s][2][k] for s in SEEDS]) for k in ("train", "held_out", "flip", "flip_sym", "flip_other",
                                                            "gap0", "gap")}
rec = np.array([runs[s][2]["recall"] for s in SEEDS])                  # (seeds, 3)
print("median recall@1/5/10:", np.median(rec, 0), "ceiling 0.1/0.5/1.0, chance 0.01/0.05/0.10")
assert np.median(R["train"]) >= 0.90          # 41 draws: median seed 0.95-0.98; one run in 123 was as low as 0.74
assert np.median(R["held_out"]) >= 0.80       # 41 draws: median seed 0.83-0.98 (0.91 or more in all but one)
assert np.median(R["flip"]) < 0.60 and np.all(R["flip"] < R["train"] - 0.25)
assert np.median(R["flip_sym"] - R["flip_other"]) > 0.3     # 41 draws: 0.58 or more (one poor run of 123: 0.18)
assert np.median(rec[:, 2]) >= 0.8 and np.all(rec[:, 0] <= 0.25) and np.all(rec > 3 * np.array([0.01, 0.05, 0.10]))
assert np.all(R["gap0"] > 0.8) and np.all(R["gap"] < R["gap0"]) and np.all(R["gap"] > 0.05)

# %% [markdown]
# An abstract category fails in a plainer way. The prompts "an even number" and "an odd number" contain two words
# the tokenizer never saw in a caption; both become the bag {`<unk>`, `<unk>`, "number"}, so the two prompts have
# the **same** embedding and zero-shot even/odd cannot beat always answering the same class. CLIP can name only what
# its captions named.

# %%
model0, te0, r0 = runs[SEEDS[0]]
with torch.no_grad():
    even, odd = model0.text(tok.batch(["an even number", "an odd number"]))
assert torch.equal(even, odd)
print("per-class zero-shot accuracy (seed 0):", np.round(r0["per_class"], 2))

fig, axes = plotting.figure(2, 1, width=4.4, height=3.4)
with torch.no_grad():
    caps0 = tok.batch([clip.caption(int(c), clip.TRAIN_TEMPLATES[0]) for c in y[te0]])
    both = torch.cat([F.normalize(model0.image(X[te0]), dim=-1), F.normalize(model0.text(caps0), dim=-1)])
U, s_, Vt = torch.linalg.svd(both - both.mean(0), full_matrices=False)
P2 = (both - both.mean(0)) @ Vt[:2].T
n0 = len(te0)
axes[0].scatter(P2[:n0, 0], P2[:n0, 1], s=6, c=y[te0], cmap="tab10", label="images")
axes[0].scatter(P2[n0:, 0], P2[n0:, 1], s=40, marker="x", c="k", label="captions")
plotting.label(axes[0], "Unit embeddings, first two PCs (seed 0)", "PC 1", "PC 2")
axes[0].legend(fontsize=8)
xs = np.arange(len(SEEDS))
axes[1].bar(xs - 0.2, R["gap0"], 0.4, label="at initialisation")
axes[1].bar(xs + 0.2, R["gap"], 0.4, label="after training")
axes[1].set_xticks(xs, [f"seed {s}" for s in SEEDS])
plotting.label(axes[1], "Modality gap", "seed", "centroid distance (unit sphere)")
axes[1].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# > **Careful.** CLIP is sometimes said to recognise "any object" zero-shot. Its zero-shot accuracy is strong but
# > **uneven**: the paper itself reports weak results on fine-grained classes (car models, flower species),
# > abstract tasks (counting objects) and data far from its web images (handwritten digits of MNIST, where a
# > linear classifier on raw pixels does better). Above: held-out caption wording cost little, turning the digits
# > upside down cost most of the accuracy, unevenly across classes, and a concept the captions never named
# > (even/odd) was out of reach.

# %% [markdown]
# ## Manifold lens: a contrastive loss finds a loop (experiment F8c)
#
# DrLIM (R. Hadsell, S. Chopra, Y. LeCun, "Dimensionality Reduction by Learning an Invariant Mapping", CVPR 2006) is
# a contrastive loss that needs no labels, only a neighbourhood graph. With $D = \|G_W(x_1) - G_W(x_2)\|$ and $Y = 0$
# for neighbours, $Y = 1$ otherwise,
#
# $$L = (1-Y)\,\tfrac12 D^2 + Y\,\tfrac12\max(0, m - D)^2:$$
#
# neighbours are pulled together, others pushed apart until they are at least the margin $m$ apart. CLIP's InfoNCE
# is a relative of this loss: there the "neighbours" are an image and its caption.
#
# The data: one digit "4", upsampled to 16x16 and rotated every 10 degrees (36 images), neighbours = adjacent
# angles, so 350 degrees and 0 degrees are neighbours too. $G_W$ is an MLP from 256 pixels to 2-D. Nothing tells it
# about angles or circles. If the embedding respects the neighbourhoods, it must close into a **loop**. We measure
# that with persistent homology (`manifold_course.geometry.topology`, Ripser) on the embeddings of the 36 training
# rotations plus 36 held-out ones (5, 15, ..., 355 degrees). We count $H_1$ bars that live longer than a quarter of the
# embedding's diameter.

# %%
four = X[(y == 4).nonzero()[0, 0]].numpy()
angles, held_angles = np.arange(0, 360, 10), np.arange(5, 360, 10)
rot = torch.tensor(clip.rotated_copies(four, angles), dtype=torch.float32)          # (36, 256)
rot_held = torch.tensor(clip.rotated_copies(four, held_angles), dtype=torch.float32)
near = clip.cyclic_neighbours(len(angles), 1)
drlim_runs = {}
for seed in SEEDS:
    net, losses = clip.train_drlim(rot, near, dim=2, steps=300 * SCALE, margin=1.0, seed=seed)
    with torch.no_grad():
        Z = net(torch.cat([rot, rot_held])).numpy()                                 # (72, 2)
    diam = float(np.ptp(Z, axis=0).max())
    h1 = topology.persistence(Z, maxdim=1)[1]
    drlim_runs[seed] = (Z, h1, diam, losses[-1])
    print(f"seed {seed}: final loss {losses[-1]:.4f}; H1 bars longer than diameter / 4: "
          f"{topology.count_long_bars(h1, diam / 4)}; longest {topology.max_persistence(h1) / diam:.2f} x diameter")
raw_h1 = topology.persistence(torch.cat([rot, rot_held]).numpy(), maxdim=1)[1]
raw_diam = float(torch.cdist(rot, rot).max())
print(f"raw pixels (256-D): longest H1 bar {topology.max_persistence(raw_h1) / raw_diam:.2f} x diameter")

# %% [markdown]
# The 2-D embedding has exactly one long $H_1$ bar, longer than half its diameter: one loop, as on a circle
# (`count_long_bars` counts bars longer than the threshold; the short ones are noise). The held-out angles fall on
# the loop between their neighbours: $G_W$ is a function of the image, not a lookup table of the 36 training points.
# Gradient descent on this loss does not always get there. In 14 of the 180 runs we swept (three seeds under seed
# offsets 0-59) it stopped in a local minimum where the loop folds over itself: one or two shorter bars, and a final
# loss of about 0.023 against 0.019 for a clean loop. A draw of three seeds held two folded runs in 3 of those 60
# offsets, so "most seeds find the loop" is not a claim about every draw. What held in every run is what we assert:
# the seed with the lowest final loss gives one loop, and every seed that gives one loop ends with a lower loss than
# every seed that does not (the loss tells the two minima apart). The loop was in the data all along: the orbit of a
# rotation is a closed curve in pixel space, and the raw 256-D images have a long $H_1$ bar as well (printed above).
# DrLIM found it from neighbour relations alone and kept it in two dimensions.

# %%
one_loop = {s: topology.count_long_bars(drlim_runs[s][1], drlim_runs[s][2] / 4) == 1
            and topology.max_persistence(drlim_runs[s][1]) > drlim_runs[s][2] / 2 for s in SEEDS}
best = min(SEEDS, key=lambda s: drlim_runs[s][3])
final_loss = {s: drlim_runs[s][3] for s in SEEDS}
assert one_loop[best], one_loop
assert all(final_loss[s] < final_loss[t] for s in SEEDS if one_loop[s] for t in SEEDS if not one_loop[t]), final_loss
assert topology.max_persistence(raw_h1) > raw_diam / 4

Z, h1, diam, _ = drlim_runs[best]
fig, axes = plotting.figure(2, 1, width=4.2, height=3.4)
sc = axes[0].scatter(Z[:36, 0], Z[:36, 1], c=angles, cmap="hsv", s=30, label="training angles")
axes[0].scatter(Z[36:, 0], Z[36:, 1], c=held_angles, cmap="hsv", s=30, marker="x", label="held-out angles")
fig.colorbar(sc, ax=axes[0], label="rotation (degrees)")
plotting.label(axes[0], f"DrLIM embedding of a rotated 4 (seed {best})", "G_W(x)_1", "G_W(x)_2")
axes[0].legend(fontsize=7)
plotting.barcode(h1, axes[1], "H1 barcode of the embedding")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4.2 LLaVA: giving an LLM eyes
#
# LLaVA (H. Liu, C. Li, Q. Wu, Y. J. Lee, "Visual Instruction Tuning", 2023, arXiv:2304.08485) connects a frozen CLIP
# ViT-L/14 to a language model. The ViT's patch features $Z_v$ (1024-d, one per 14x14 patch: 256 at 224 px, 576 at
# 336 px in LLaVA-1.5) go through a **projector** into the LLM's word-embedding space (4096-d for a 7B model):
# $H_v = W Z_v$ (LLaVA), or a 2-layer MLP with GELU (LLaVA-1.5: H. Liu, C. Li, Y. Li, Y. J. Lee, "Improved Baselines
# with Visual Instruction Tuning", 2023, arXiv:2310.03744). The LLM reads $[H_v;\ \mathrm{Emb}(\text{text})]$ as if
# the image were a few hundred words of a foreign language. Training has two stages:
#
# 1. **feature alignment**: vision encoder and LLM frozen, only the projector learns, on image-caption pairs
#    (558 K for LLaVA-1.5);
# 2. **visual instruction tuning**: projector and LLM learn, on instruction data (conversations about images).
#
# In both, the image positions carry no targets: their labels are the ignore index $-100$.
#
# What each stage trains, for the real shapes (`manifold_course.agents.llava`; exercise 9 computes the same):

# %%
VICUNA_7B = dict(vocab_size=32000, d_model=4096, n_layers=32, d_ff=11008)
VICUNA_13B = dict(vocab_size=32000, d_model=5120, n_layers=40, d_ff=13824)
vit = llava.clip_vit_params(width=1024, layers=24, patch=14, image_size=336)
llm7 = llava.llama_params(**VICUNA_7B)
llm13 = llava.llama_params(**VICUNA_13B)
print(f"CLIP ViT-L/14 (336 px): {vit:,} parameters (frozen in both stages)")
print(f"Vicuna-7B: {llm7:,};  Vicuna-13B: {llm13:,}")
for kind in ("linear", "mlp2"):
    for name, shape, llm in (("7B", VICUNA_7B, llm7), ("13B", VICUNA_13B, llm13)):
        s1 = llava.llava_trainable_params(1, kind, 1024, **shape)
        s2 = llava.llava_trainable_params(2, kind, 1024, **shape)
        total = vit + s2
        print(f"{kind:6} {name:3}: stage 1 trains {s1:>14,} ({100 * s1 / total:.2f} % of all), stage 2 {s2:>15,} "
              f"({100 * s2 / total:.1f} %)")
assert llm7 == 6_738_415_616                      # LLaMA-7B's published count (Vicuna-7B has LLaMA's shapes)
assert llava.projector_params("linear", 1024, 4096) == 4_198_400
assert llava.projector_params("mlp2", 1024, 4096) == 20_979_712
assert sum(p.numel() for p in llava.Projector("mlp2", 32, 64).parameters()) == llava.projector_params("mlp2", 32, 64)
assert 3.0e8 < vit < 3.1e8 and llava.llava_trainable_params(1, "mlp2", 1024, **VICUNA_7B) / (vit + llm7) < 0.005

# %% [markdown]
# Stage 1 trains less than half a percent of the model; stage 2 trains almost all of it except the vision tower.
#
# > **Careful.** LLaVA is often described as built on Llama 2 or 3. The original LLaVA used **Vicuna** (LLaMA
# > fine-tuned on shared ChatGPT conversations), and so did LLaVA-1.5 (Vicuna v1.5, on Llama 2); later releases
# > swapped in other LLMs (LLaVA-NeXT offers Mistral, Yi and Llama 3 variants). The shapes above are Vicuna's.
#
# ### The multimodal batch
#
# `build_multimodal_batch` (exercise 7) puts the image tokens first, marks padding in the attention mask and gives
# the image positions the label $-100$, which `F.cross_entropy(..., ignore_index=-100)` skips. The LM is never
# asked to predict its own image tokens. They are not words of its vocabulary.

# %%
emb = torch.nn.Embedding(10, 4)
img_tok = torch.randn(2, 3, 4)
ids = torch.tensor([[5, 6, 7, 8], [5, 9, 0, 0]])              # row 1 is right-padded with 0
inputs, mask, labels = llava.build_multimodal_batch(img_tok, ids, emb)
print("attention mask:\n", mask, "\nlabels:\n", labels)
assert inputs.shape == (2, 7, 4) and labels[:, :3].eq(-100).all() and labels[1, 5:].eq(-100).all()
assert mask.tolist() == [[1] * 7, [1, 1, 1, 1, 1, 0, 0]]

# %% [markdown]
# ### Stage 1 at toy scale: a projector teaches a frozen caption model to see
#
# The language model: the course's GPT (`manifold_course.nn.gpt`, 2 layers, width 32, RoPE), trained here on text
# only, on captions such as "<bos> seven 7 , the digit" in which a number word is always followed by its numeral.
# Nothing in the text says which digit a caption is about, so after `<bos>` the LM can only guess among ten words;
# after "seven" it knows "7" comes next. Then the LM is **frozen**.
#
# The vision side: the frozen mini-CLIP image tower of 4.1 (seed by seed). We hand the LM **one** visual token: the
# projected 32-d image embedding, in the place of "<bos> seven", and ask it to continue with "7 , the digit
# <eos>". (LLaVA hands over all its patch tokens. At our scale the frozen LM most easily reads the token just
# before the one it predicts, so one pooled token is the reliable choice.) **Only the projector learns**: 60 steps,
# loss on the caption, image position masked. The measure: the fraction of test images for which the LM's first
# word is the right numeral; chance is about 10 %.

# %%
ltok = llava.lm_tokenizer()
docs = ltok.batch(llava.caption_documents(2000, seed=0))
manual_seed(0)
lm = GPT(GPTConfig(vocab_size=ltok.vocab_size, block_size=16, d_model=32, n_layers=2, n_heads=2))
lm_losses = llava.train_caption_lm(lm, docs, steps=100 * SCALE, lr=5e-3, seed=0)
llava.freeze(lm)
print(f"caption LM: {lm.num_params():,} parameters, final loss {np.mean(lm_losses[-10:]):.3f} nats")

stage1 = {}
for seed in SEEDS:
    model, te, _ = runs[seed]
    tr = np.setdiff1d(np.arange(len(X)), te)
    llava.freeze(model)
    with torch.no_grad():
        z_tr, z_te = model.image(X[tr])[:, None], model.image(X[te])[:, None]     # (n, 1, 32): one visual token
    for kind in ("linear", "mlp2"):
        manual_seed(seed)
        proj = llava.Projector(kind, 32, 32)
        before = llava.caption_accuracy(proj, lm, z_te, y[te], ltok)
        frozen_before = [p.clone() for p in lm.parameters()]
        losses = llava.train_connector(proj, lm, z_tr, y[tr], ltok, steps=60 * SCALE, lr=1e-2, seed=seed)
        assert all(torch.equal(p, q) for p, q in zip(lm.parameters(), frozen_before))   # the LM did not move
        stage1[seed, kind] = (before, llava.caption_accuracy(proj, lm, z_te, y[te], ltok), llava.trainable(proj))
    print(f"seed {seed}: first word right " + ", ".join(
        f"{k}: {stage1[seed, k][0]:.2f} -> {stage1[seed, k][1]:.3f}" for k in ("linear", "mlp2")))
print(f"trainable in stage 1: linear {stage1[0, 'linear'][2]:,}, mlp2 {stage1[0, 'mlp2'][2]:,}; frozen: LM "
      f"{lm.num_params():,}, image tower {sum(p.numel() for p in runs[0][0].image.parameters()):,}")

# %% [markdown]
# Before training the projector, the LM's first word is rarely the right numeral (below 30 % in every run, asserted;
# often far below, since an untrained projector tends to push every image towards the same word). After 60 steps on the
# projector alone it names it for at least 85 % of the test images in the median run, and in every run it comes
# within 0.05 of the mini-CLIP's own zero-shot accuracy on the same images (asserted; over 246 runs at 41 seed offsets
# it landed between 0.03 below and 0.06 above it): the projector can only pass on what the frozen image tower
# separates, so the one CLIP run in 123 that reached only 0.74 gave captions right 0.72 (linear) and 0.81 (MLP) of the
# time. The LM's weights did not change (asserted in the loop). What
# changed is the input it reads: the projector learned to write, for each image, a vector the LM treats like the
# word for its digit. This is LLaVA's stage 1 in miniature. It is also prefix tuning (X. L. Li, P. Liang,
# "Prefix-Tuning", 2021, arXiv:2101.00190), with a prefix computed from the image.

# %%
for seed in SEEDS:
    for kind in ("linear", "mlp2"):
        before, after, _ = stage1[seed, kind]
        assert before < 0.3 and after > runs[seed][2]["train"] - 0.05, (seed, kind, before, after)
assert np.median([after for _, after, _ in stage1.values()]) >= 0.85

# %% [markdown]
# ### A Q-Former: a fixed number of visual tokens
#
# LLaVA-1.5 gives the LLM 576 visual tokens per image; a long context fills quickly with them. BLIP-2 (J. Li, D. Li,
# S. Savarese, S. Hoi, "BLIP-2: Bootstrapping Language-Image Pre-training with Frozen Image Encoders and Large
# Language Models", 2023, arXiv:2301.12597) puts a **Q-Former** in between: $M = 32$ learned queries cross-attend to
# the patches,
#
# $$Q' = \mathrm{softmax}\big(QW_q\,(Z_vW_k)^\top/\sqrt d\big)\,Z_vW_v,$$
#
# and the LLM reads $M$ tokens whatever the number of patches. The softmax runs over the patches, so each query returns
# a weighted average of patch values. (BLIP-2's Q-Former is a 12-layer transformer with self-attention among the
# queries too; `llava.qformer` is its core, one cross-attention head: exercise 8.) Below: the 16 patch features of
# our ViT, and random stand-ins for 256 and 576 ViT-L/14 patches, all compressed to 4 tokens.

# %%
g = torch_generator(1)
W = tuple(torch.randn(*s, generator=g) for s in ((8, 8), (32, 8), (32, 8)))
queries = torch.randn(4, 8, generator=g)
with torch.no_grad():
    Zv = runs[SEEDS[0]][0].image.patch_features(X[:5])                         # (5, 16, 32)
shapes = {n: tuple(llava.qformer(z, queries, W).shape) for n, z in
          ((16, Zv), (256, torch.randn(5, 256, 32, generator=g)), (576, torch.randn(5, 576, 32, generator=g)))}
print({f"{n} patches": s for n, s in shapes.items()})
assert all(s == (5, 4, 8) for s in shapes.values())
perm = torch.randperm(16, generator=g)
assert torch.allclose(llava.qformer(Zv, queries, W), llava.qformer(Zv[:, perm], queries, W), atol=1e-5)

# %% [markdown]
# The output never depends on the order of the patches (asserted above): cross-attention without position
# embeddings sees a set. Where positions matter, they must be added to $Z_v$ first, as a ViT does.
#
# **Not done here: multimodal in-context learning** (few-shot prompts with interleaved images and answers,
# Flamingo-style). It is an optional demo in the syllabus. A caption LM trained on single captions has no
# multi-example prompts to learn from, and training one that does would exceed this notebook's time budget.

# %%
print(f"chapter CPU time: {time.process_time() - T0:.1f} s")

# %% [markdown]
# ## Summary
#
# - **CLIP** aligns two towers with a symmetric InfoNCE loss over an $N\times N$ similarity matrix. Our mini-CLIP,
#   trained in seconds on captioned digits, classified them zero-shot by the nearest class prompt (median at
#   least 90 % over seeds). Held-out caption templates cost little, since a bag of words keeps only the class word.
#   Upside-down digits broke it unevenly, and a concept no caption named (even/odd) was out of reach.
# - **Recall@k** met the ceiling set by the captions (a caption names a class, not an image): about $k/10$ on a
#   gallery of ten images per class. The **modality gap** was large at initialisation and smaller, but not zero,
#   after training.
# - **Manifold lens (F8c)**: DrLIM, a contrastive loss on neighbour relations alone, embedded the rotations of a
#   digit as one closed loop in 2-D ($H_1 = 1$ always for the lowest loss; the rarer failure, about one run in
#   thirteen, is a local minimum with a higher loss where the loop folds over itself), held-out angles included.
# - **LLaVA**: a projector maps vision features into the LLM's embedding space; stage 1 trains only the projector
#   (4.2 M or 21 M parameters for 1024 -> 4096, under 0.5 % of a 7B model), stage 2 also the LLM. Image positions get the
#   label $-100$. At toy scale, training only a projector made a frozen caption LM name the digit it was shown for
#   at least 85 % of test images (median run), as often as the image tower's own zero-shot accuracy allows.
# - **Q-Former**: learned queries cross-attend to any number of patches and return a fixed number of tokens.
#
# **Exercises.** Open `exercises/v4_agents/01_multimodal_models.ipynb` (the command `manifold-course lab` copies it
# to your `my_work/` folder). Nine pieces: `clip_loss`, `zero_shot_predict`, `recall_at_k`, `modality_gap`,
# `drlim_loss`, `Projector`, `build_multimodal_batch`, `qformer` and `llava_trainable_params`.
#
# **Further reading.**
# - A. Radford et al., "Learning Transferable Visual Models From Natural Language Supervision", 2021,
#   arXiv:2103.00020; A. van den Oord, Y. Li, O. Vinyals, "Representation Learning with Contrastive Predictive
#   Coding", 2018, arXiv:1807.03748.
# - W. Liang, Y. Zhang, Y. Kwon, S. Yeung, J. Zou, "Mind the Gap: Understanding the Modality Gap in Multi-modal
#   Contrastive Representation Learning", 2022, arXiv:2203.02053; M. Yuksekgonul et al., "When and Why
#   Vision-Language Models Behave like Bags-of-Words, and What to Do About It", 2022, arXiv:2210.01936.
# - R. Hadsell, S. Chopra, Y. LeCun, "Dimensionality Reduction by Learning an Invariant Mapping", CVPR 2006.
# - H. Liu, C. Li, Q. Wu, Y. J. Lee, "Visual Instruction Tuning", 2023, arXiv:2304.08485; H. Liu, C. Li, Y. Li,
#   Y. J. Lee, "Improved Baselines with Visual Instruction Tuning", 2023, arXiv:2310.03744.
# - J. Li, D. Li, S. Savarese, S. Hoi, "BLIP-2: Bootstrapping Language-Image Pre-training with Frozen Image Encoders
#   and Large Language Models", 2023, arXiv:2301.12597; J.-B. Alayrac et al., "Flamingo: a Visual Language Model
#   for Few-Shot Learning", 2022, arXiv:2204.14198.
