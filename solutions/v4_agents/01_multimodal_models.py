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
# # Volume 4, Chapter 1 exercises: multimodal models (sections 4.1-4.2)
#
# Nine pieces of a vision-language model: CLIP's symmetric loss, zero-shot prediction, retrieval recall@k and the
# modality gap (4.1); DrLIM's contrastive loss, the loss of the manifold-thread experiment F8c (4.1); LLaVA's
# projector, the multimodal batch with its labels, a Q-Former cross-attention and the trainable parameters of each
# LLaVA stage for the real model shapes (4.2). Write each body where it says `# YOUR CODE HERE`, run the cell, then
# the `check(...)` cell below it: it answers at once with a green "passed" or a red message that says what to fix.
# The checks draw fresh random inputs each time, with edge cases.
#
# The lecture is `chapters/v4_agents/01_multimodal_models.ipynb`. Please write your own code rather than importing
# the course's reference implementations (`manifold_course.agents.clip`, `manifold_course.agents.llava`).
#
# **Conventions.** Embeddings are float torch tensors, one row per item. Never modify an input in place. The
# syllabus's list is kept; `modality_gap`, `drlim_loss` and `llava_trainable_params` are added to reach nine.
# `build_multimodal_batch` takes a `pad_id` besides the syllabus's arguments: without padding there would be no
# attention mask to build.

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import math

import torch
import torch.nn.functional as F
from torch import nn

from manifold_course.grading import check

# %% [markdown]
# ## Exercise 1: CLIP's symmetric loss
#
# `clip_loss(img_emb, txt_emb, logit_scale) -> torch.Tensor` (0-dim): `img_emb` and `txt_emb` are (N, d), row $i$ of
# each is pair $i$; `logit_scale` is the number $1/\tau > 0$ (already exponentiated). Unit-normalise both, form
# $S = \tau^{-1}\hat F\hat G^\top$ (N, N) and return
#
# $$\mathcal L = \tfrac12\big[\mathrm{CE}(S, I) + \mathrm{CE}(S^\top, I)\big],$$
#
# the mean cross-entropy of each image against all captions (rows) and of each caption against all images
# (columns), the target being the diagonal.
#
# **Checked** against the reference, value and gradient with respect to both embeddings: rows with very different
# norms, a batch of one pair (loss 0), aligned pairs with orthogonal cross-pairs at $1/\tau = 100$ (loss ~0), a case
# where the two directions differ, float32.

# %%
def clip_loss(img_emb, txt_emb, logit_scale):
    ### BEGIN SOLUTION
    logits = logit_scale * F.normalize(img_emb, dim=-1) @ F.normalize(txt_emb, dim=-1).T   # (N, N)
    target = torch.arange(len(img_emb))
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    ### END SOLUTION


# %%
check("multimodal.clip_loss", clip_loss)

# %% [markdown]
# ## Exercise 2: zero-shot prediction
#
# `zero_shot_predict(img_emb, class_txt_emb) -> torch.Tensor`: images (N, d), one prompt embedding per class (C, d);
# return the (N,) int64 indices $\hat y_i = \arg\max_c \cos(f_i, g_c)$. The answer must not change when any row of
# either input is rescaled.
#
# **Checked** exactly, on prompts whose norms range from 0.05 to 20 (a dot product would pick the longest prompt).

# %%
def zero_shot_predict(img_emb, class_txt_emb):
    ### BEGIN SOLUTION
    sim = F.normalize(img_emb, dim=-1) @ F.normalize(class_txt_emb, dim=-1).T   # (N, C)
    return sim.argmax(dim=-1)
    ### END SOLUTION


# %%
check("multimodal.zero_shot_predict", zero_shot_predict)

# %% [markdown]
# ## Exercise 3: recall@k
#
# `recall_at_k(sim, k) -> float`: `sim` (N, M), M >= N, row $i$ (a query) has its match in column $i$. The match's
# rank is the number of columns that score **strictly** higher (a tie counts in the match's favour); the query is a
# hit when that rank is below `k`. Return the fraction of hits as a Python float.
#
# **Checked** against the reference on random similarity matrices (square and not), `k` = 1 and `k >= M`, and on
# a matrix with ties.

# %%
def recall_at_k(sim, k):
    ### BEGIN SOLUTION
    n = sim.shape[0]
    match = sim[torch.arange(n), torch.arange(n)].unsqueeze(1)   # (N, 1)
    rank = (sim > match).sum(dim=1)
    return float((rank < k).double().mean())
    ### END SOLUTION


# %%
check("multimodal.recall_at_k", recall_at_k)

# %% [markdown]
# ## Exercise 4: the modality gap
#
# `modality_gap(img_emb, txt_emb) -> float`: unit-normalise every row of the images (N, d) and of the captions
# (M, d); return the Euclidean distance between the two centroids,
# $\big\|\frac1N\sum_i \hat f_i - \frac1M\sum_j \hat g_j\big\|$ (Liang et al. 2022).
#
# **Checked** against the reference: clouds on opposite sides, the same directions rescaled (gap 0), different
# counts N != M, float32.

# %%
def modality_gap(img_emb, txt_emb):
    ### BEGIN SOLUTION
    return float((F.normalize(img_emb, dim=-1).mean(0) - F.normalize(txt_emb, dim=-1).mean(0)).norm())
    ### END SOLUTION


# %%
check("multimodal.modality_gap", modality_gap)

# %% [markdown]
# ## Exercise 5: DrLIM's contrastive loss
#
# `drlim_loss(z1, z2, similar, margin) -> torch.Tensor` (0-dim): pairs $(z1_i, z2_i)$, both (N, k), `similar` (N,)
# bool. With $D_i = \|z1_i - z2_i\|$ and margin $m$ (Hadsell, Chopra, LeCun 2006), the mean over pairs of
#
# $$\tfrac12 D_i^2 \ \text{(neighbours)},\qquad \tfrac12\max(0, m - D_i)^2 \ \text{(the others)}.$$
#
# Hint: write the neighbours' term as half the sum of squared differences; the norm's gradient is undefined at 0.
#
# **Checked** against the reference, value and gradients: mixed pairs, neighbours only, non-neighbours beyond the
# margin (loss and gradient 0), non-neighbours inside it.

# %%
def drlim_loss(z1, z2, similar, margin):
    ### BEGIN SOLUTION
    diff = z1 - z2
    pull = 0.5 * (diff**2).sum(-1)
    push = 0.5 * torch.clamp(margin - diff.norm(dim=-1), min=0.0) ** 2
    return torch.where(similar, pull, push).mean()
    ### END SOLUTION


# %%
check("multimodal.drlim_loss", drlim_loss)

# %% [markdown]
# ## Exercise 6: LLaVA's projector
#
# `Projector(kind, d_in, d_out)`, an `nn.Module` whose layers live in `self.net`, an `nn.Sequential`:
# - `kind="linear"`: `nn.Linear(d_in, d_out)` (LLaVA): $d_{in}d_{out} + d_{out}$ parameters;
# - `kind="mlp2"`: `nn.Linear(d_in, d_out)`, `nn.GELU()`, `nn.Linear(d_out, d_out)` (LLaVA-1.5's `mlp2x_gelu`):
#   $d_{in}d_{out} + d_{out} + d_{out}^2 + d_{out}$.
#
# `forward(z)` maps (..., d_in) to (..., d_out).
#
# **Checked**: the parameter count for small shapes and for LLaVA's 1024 -> 4096 (built on the `meta` device, so it
# costs no memory), then the output with the reference's weights loaded into yours.

# %%
class Projector(nn.Module):
    def __init__(self, kind="linear", d_in=1024, d_out=4096):
        super().__init__()
        ### BEGIN SOLUTION
        if kind == "linear":
            self.net = nn.Sequential(nn.Linear(d_in, d_out))
        elif kind == "mlp2":
            self.net = nn.Sequential(nn.Linear(d_in, d_out), nn.GELU(), nn.Linear(d_out, d_out))
        else:
            raise ValueError(f"kind must be 'linear' or 'mlp2', got {kind!r}")
        ### END SOLUTION

    def forward(self, z):
        ### BEGIN SOLUTION
        return self.net(z)
        ### END SOLUTION


# %%
check("multimodal.Projector", Projector)

# %% [markdown]
# ## Exercise 7: the multimodal batch
#
# `build_multimodal_batch(img_tokens, text_ids, embed, pad_id=0, ignore_index=-100)`: `img_tokens` (B, P, D) are the
# projected image tokens, `text_ids` (B, T) int64 are right-padded with `pad_id`, `embed` maps ids to (B, T, D) (an
# `nn.Embedding`). Return a tuple
# - `inputs` (B, P+T, D): the image tokens first, then `embed(text_ids)`;
# - `attention_mask` (B, P+T) int64: 1 on image tokens and real text, 0 on padding;
# - `labels` (B, P+T) int64: `ignore_index` at the P image positions and at padding, the text id elsewhere (not
#   shifted: the LM's loss shifts them, as in Hugging Face's convention).
#
# **Checked** exactly on batches of 1-3 rows with 1-5 image tokens, rows with and without padding, `pad_id` 0 and 7.

# %%
def build_multimodal_batch(img_tokens, text_ids, embed, pad_id=0, ignore_index=-100):
    ### BEGIN SOLUTION
    B, P, _ = img_tokens.shape
    inputs = torch.cat([img_tokens, embed(text_ids).to(img_tokens.dtype)], dim=1)
    real = text_ids != pad_id
    mask = torch.cat([torch.ones(B, P, dtype=torch.long), real.long()], dim=1)
    labels = torch.cat([torch.full((B, P), ignore_index, dtype=torch.long),
                        torch.where(real, text_ids, torch.full_like(text_ids, ignore_index))], dim=1)
    return inputs, mask, labels
    ### END SOLUTION


# %%
check("multimodal.build_multimodal_batch", build_multimodal_batch)

# %% [markdown]
# ## Exercise 8: a Q-Former cross-attention
#
# `qformer(Z_v, queries, W) -> torch.Tensor`: patches `Z_v` (B, N, D_v), learned `queries` (M, D_q),
# `W = (W_q, W_k, W_v)` of shapes (D_q, d), (D_v, d), (D_v, d). One head:
#
# $$Q = \text{queries}\,W_q,\quad K = Z_vW_k,\quad V = Z_vW_v,\qquad Q' = \mathrm{softmax}\big(QK^\top/\sqrt d\big)V,$$
#
# the softmax over the N patches; return $Q'$ (B, M, d). Its length is M whatever N is.
#
# **Checked** against the reference, then for N = 1, 2, 5, 64 and 577 (ViT-L/14 at 336 px) patches, and for
# invariance to the order of the patches.

# %%
def qformer(Z_v, queries, W):
    ### BEGIN SOLUTION
    W_q, W_k, W_v = W
    q = queries @ W_q                                    # (M, d)
    k, v = Z_v @ W_k, Z_v @ W_v                          # (B, N, d)
    att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(q.shape[-1]), dim=-1)   # (B, M, N)
    return att @ v
    ### END SOLUTION


# %%
check("multimodal.qformer", qformer)

# %% [markdown]
# ## Exercise 9: trainable parameters per LLaVA stage
#
# `llava_trainable_params(stage, projector_kind, d_vision, vocab_size, d_model, n_layers, d_ff) -> int`. Stage 1
# trains only the projector (`d_vision -> d_model`, as in exercise 6); stage 2 the projector and the LLM (the vision
# tower stays frozen in both). The LLM is a LLaMA/Vicuna decoder: untied input embedding and output head
# ($2VD$); per layer the attention's $W_q, W_k, W_v, W_o$ ($4D^2$, no biases), SwiGLU's gate, up and down matrices
# ($3DF$) and two RMSNorm gains ($2D$); a final RMSNorm ($D$).
#
# **Checked** exactly on LLaVA's shapes (Vicuna-7B: V = 32000, D = 4096, L = 32, F = 11008; 13B: D = 5120, L = 40,
# F = 13824) and on small random shapes.

# %%
def llava_trainable_params(stage, projector_kind, d_vision, vocab_size, d_model, n_layers, d_ff):
    ### BEGIN SOLUTION
    proj = d_vision * d_model + d_model
    if projector_kind == "mlp2":
        proj += d_model * d_model + d_model
    if stage == 1:
        return proj
    llm = 2 * vocab_size * d_model + n_layers * (4 * d_model**2 + 3 * d_model * d_ff + 2 * d_model) + d_model
    return proj + llm
    ### END SOLUTION


# %%
check("multimodal.llava_trainable_params", llava_trainable_params)

# %% [markdown]
# ## What next
#
# Back to the lecture (`chapters/v4_agents/01_multimodal_models.ipynb`) for what these pieces do together: a
# mini-CLIP trained with your loss, its zero-shot accuracy on held-out caption templates and on upside-down digits,
# retrieval at the ceiling that class-level captions allow, the modality gap; DrLIM closing a loop of rotations; and
# a projector that teaches a frozen caption model to name the digit it is shown.
