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
# # Volume 2, Chapter 3: Alignment and inference (sections 2.8-2.10, KV cache, speculative decoding)
#
# A pre-trained language model is adapted to what people want in two ways: **fine-tuning** on new text (cheaply, with
# LoRA on a quantised base: QLoRA), and **alignment** to preferences (a reward model and PPO, or DPO without a reward
# model). Then it has to be served: the **KV cache** makes each new token cost one token's work, sampling filters
# shape the output, and **speculative decoding** lets a small model draft tokens that the large one only verifies.
# This chapter builds each piece from scratch on the course's GPT and on small exact problems where the right answer
# is known in closed form.
#
# | section | question | what you will measure |
# |---|---|---|
# | 2.8 | how few parameters does fine-tuning need? | LoRA vs full fine-tuning of a code GPT on docstring prose: trainable parameters, loss on the new domain, forgetting of the old; the rank of the full update; NF4 vs INT4 error |
# | 2.9 | how does RLHF work? | a Bradley-Terry reward model from synthetic preferences; PPO with a KL penalty converging to $\pi^* \propto \pi_{ref}e^{r/\beta}$; reward hacking and the KL leash |
# | 2.10 | can we skip the reward model? | DPO on the same preferences reaching the same $\pi^*$; the implicit reward and its constant $\beta\log Z$ |
# | inference | how is a model served? | KV cache (identical logits, speed), temperature / top-k / top-p, speculative decoding (exactness, acceptance rate $1 - \mathrm{TV}$, speed-up model) |
#
# **Goals.** After this chapter you can
# - write a LoRA layer, merge and unmerge it, count its parameters, and fine-tune a GPT with it;
# - build the NF4 code book from normal quantiles and say why it beats evenly spaced 4-bit levels on Gaussian weights;
# - fit a reward model to preferences, derive the KL-regularised optimum, run PPO and DPO and show that they agree;
# - prove (and check numerically) that speculative sampling outputs exactly the target distribution.
#
# **Prerequisites.** Volume 2 chapter 1 (the GPT of `manifold_course.nn.gpt`, attention and its KV cache); KL
# divergence and softmax (Volume 0); the policy gradient idea (a gradient of $\mathbb E_\pi[R]$ is
# $\mathbb E_\pi[R\,\nabla\log\pi]$).
#
# **Time.** About 2 hours of reading and running, plus 2 hours for the exercises. The notebook runs in about 30 s on a
# 2-core CPU.
#
# **Symbols.** $W_0$ a frozen weight ($d_{out}\times d_{in}$), $A$ ($r\times d_{in}$) and $B$ ($d_{out}\times r$) the
# LoRA factors, $r$ the rank, $\alpha$ the LoRA scale; $x$ a prompt, $y$ a response, $y_w \succ y_l$ a preferred and a
# rejected response; $r(y)$ a reward; $\sigma$ the logistic function; $\pi_\theta$ the trained policy, $\pi_{ref}$ the
# reference (SFT) policy, $\pi^*$ the optimum; $\beta$ the strength of the KL penalty; $Z$ a normaliser; $p$ and $q$ the
# target's and the draft's next-token distributions; $\gamma$ the number of drafted tokens; $V$ the vocabulary size.

# %%
from manifold_course import seed_everything
from manifold_course.seeding import manual_seed, torch_generator

rng = seed_everything(0)

import ast
import copy
import math
import time

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch

from manifold_course import data, plotting
from manifold_course.nn import decoding, lora, quantization
from manifold_course.nn.gpt import GPT, GPTConfig, evaluate_loss, train_gpt
from manifold_course.probability import preferences as prefs
from manifold_course.timing import median_ms

F64 = torch.float64

# %% [markdown]
# ## 2.8 Parameter-efficient fine-tuning: LoRA
#
# Fine-tuning changes a pre-trained weight $W_0$ by some $\Delta W$. Hu et al. ("LoRA: Low-Rank Adaptation of Large
# Language Models", 2021, arXiv:2106.09685) restrict the change to rank $r$ and train only the two factors:
#
# $$h = W_0 x + \frac{\alpha}{r}\,B A x,\qquad A\in\mathbb R^{r\times d_{in}}\ \text{(random)},\quad
# B\in\mathbb R^{d_{out}\times r}\ \text{(zero)} .$$
#
# Because $B = 0$ at the start, the adapted model *is* the pre-trained model at step 0. The adapter has
# $r(d_{in} + d_{out})$ parameters instead of $d_{in}d_{out}$: for a $4096\times4096$ projection and $r = 8$ that is
# 65 536 instead of 16.8 million, 256 times fewer. After training, $\frac{\alpha}{r}BA$ is added into $W_0$ (**merged**)
# and inference costs exactly what the base model cost.

# %%
full_ft, lora_8 = 4096 * 4096, lora.lora_param_count(4096, 4096, 8)
print(f"4096 x 4096 layer: full fine-tuning {full_ft:,} parameters, LoRA r = 8: {lora_8:,} ({full_ft / lora_8:.0f}x fewer)")
assert full_ft == 16_777_216 and lora_8 == 65_536 and full_ft // lora_8 == 256

layer = lora.LoRALinear(torch.nn.Linear(48, 40), r=4, alpha=8.0, generator=torch_generator(0))
x = torch.randn(5, 48)
err_init = float((layer(x) - layer.base(x)).abs().max())
with torch.no_grad():
    layer.lora_B.normal_()                                   # pretend B was trained
w0, y_unmerged = layer.base.weight.detach().clone(), layer(x).detach()
layer.merge()
err_merge = float((layer(x) - y_unmerged).abs().max())
layer.unmerge()
err_unmerge = float((layer.base.weight - w0).abs().max())
print(f"at init |LoRA(x) - base(x)| = {err_init:.1e}; merged vs unmerged output {err_merge:.1e}; "
      f"W after merge + unmerge vs W0 {err_unmerge:.1e} (float32 rounding)")
assert err_init == 0.0 and err_merge < 1e-5 and err_unmerge < 1e-6

# %% [markdown]
# ### Fine-tuning the GPT on a new domain
#
# The base model: the course's GPT (2 layers, $D = 64$, RoPE, SwiGLU) pre-trained on **code**, the source of 17 standard
# library modules. The new domain: **prose**, the docstrings of the *other* 17 modules, extracted with `ast`. A
# character model of code has never needed to predict long runs of English, so its loss there is high. We compare
#
# - **LoRA**: rank 4 on every linear layer of the blocks (attention and SwiGLU), everything else frozen;
# - **full fine-tuning**: every parameter trained, same steps and learning rate.

# %%
mods = data.STDLIB_MODULES
code_text = data.stdlib_corpus(300_000, modules=mods[:17])
docstrings = [ast.get_docstring(n) for n in ast.walk(ast.parse(data.stdlib_corpus(2_000_000, modules=mods[17:])))
              if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
doc_text = "\n\n".join(d for d in docstrings if d)
tok = data.CharTokenizer.from_text(code_text + doc_text)
code_ids, doc_ids = tok.encode(code_text), tok.encode(doc_text)
split = int(0.9 * len(doc_ids))
doc_train, doc_test = doc_ids[:split], doc_ids[split:]
print(f"code: {len(code_ids):,} characters; docstrings: {len(doc_ids):,} characters; vocabulary {tok.vocab_size}")
print("a docstring:", repr(doc_text[2000:2100]))

manual_seed(0)
base = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=64, d_model=64, n_layers=2, n_heads=4))
train_gpt(base, code_ids, steps=200, batch_size=16, lr=3e-3)
base_code, base_doc = evaluate_loss(base, code_ids), evaluate_loss(base, doc_test)
print(f"pre-trained on code: loss {base_code:.3f} nats/char on code, {base_doc:.3f} on docstrings")
assert base_doc > base_code + 0.3

# %%
lora_model = lora.apply_lora(copy.deepcopy(base), r=4, alpha=8.0, target=lambda name, m: name.startswith("blocks"))
frozen_before = {k: v.clone() for k, v in lora_model.state_dict().items() if "lora_" not in k}
n_train, n_total = lora.count_params(lora_model, trainable_only=True), base.num_params()
train_gpt(lora_model, doc_train, steps=100, batch_size=16, lr=3e-3)
frozen_after = {k: v for k, v in lora_model.state_dict().items() if "lora_" not in k}
base_untouched = all(torch.equal(frozen_before[k], frozen_after[k]) for k in frozen_before)

full_model = copy.deepcopy(base)
train_gpt(full_model, doc_train, steps=100, batch_size=16, lr=3e-3)
results = {name: (evaluate_loss(m, doc_test), evaluate_loss(m, code_ids))
           for name, m in (("LoRA r = 4", lora_model), ("full fine-tuning", full_model))}
print(f"LoRA trains {n_train:,} of {n_total:,} parameters ({100 * n_train / n_total:.1f} %); base weights unchanged: {base_untouched}")
print(f"{'':18s} docstring loss   code loss (forgetting)")
print(f"{'base':18s} {base_doc:10.3f}   {base_code:10.3f}")
for name, (d, c) in results.items():
    print(f"{name:18s} {d:10.3f}   {c:10.3f} (+{c - base_code:.3f})")
assert base_untouched and 0.08 < n_train / n_total < 0.10
assert results["LoRA r = 4"][0] < base_doc - 0.2                                # the new domain is learned
assert results["full fine-tuning"][0] < results["LoRA r = 4"][0]                # full FT fits it better...
assert results["LoRA r = 4"][1] - base_code < results["full fine-tuning"][1] - base_code   # ...and forgets more

# %%
lora_model.eval()
probe = doc_test[:64].view(1, -1)
with torch.no_grad():
    before = lora_model(probe)
    lora.merge_lora(lora_model)
    after = lora_model(probe)
    lora.unmerge_lora(lora_model)
merge_err = float((before - after).abs().max())
print(f"merging all {len(lora.lora_layers(lora_model))} adapters into the GPT changes its logits by {merge_err:.1e}")
assert merge_err < 1e-4

# %% [markdown]
# LoRA with 9 % of the parameters takes the docstring loss most of the way that full fine-tuning goes, and it forgets
# less of the code. That is the trade-off measured by Part 2's experiment **F15** (is forgetting inevitable under
# fine-tuning?): LoRA's code loss rises 0.38 to 0.93 times as far as full fine-tuning's (median 0.61 over 39 draws
# of the course's seeds: eight while writing, 31 at seed offsets 100-129 and 147; the assert asks for less forgetting,
# not for a ratio, which one draw in 39 put above 0.8). Forgetting is real but can be limited by the method
# (LoRA, rehearsal of old data, a penalty towards the initial weights); the claim "SFT does not cause forgetting" is not
# right as stated. (F15's other arms, rehearsal and an $L_2$-to-init penalty, are left for the exercises' extensions.)
#
# ### Manifold lens: the intrinsic rank of a fine-tuning update (experiment D1, 2.8)
#
# LoRA's premise is that the update $\Delta W$ that *full* fine-tuning finds has a low intrinsic rank. We can look: the
# singular values $s_i$ of $\Delta W = W_{full} - W_0$ of every layer, and the share of the squared Frobenius norm in
# the top 4 of them, $\sum_{i\le4}s_i^2 / \sum_i s_i^2$, against the same share for a Gaussian matrix of the same shape.

# %%
gen = torch_generator(0)
rank_rows = []
for (name, w_full), w_base in zip(full_model.named_parameters(), base.parameters()):
    if name.startswith("blocks") and w_full.ndim == 2:
        s = torch.linalg.svdvals((w_full - w_base).detach())
        g = torch.linalg.svdvals(torch.randn(w_full.shape, generator=gen))
        rank_rows.append((name, float((s[:4] ** 2).sum() / (s**2).sum()), float((g[:4] ** 2).sum() / (g**2).sum()), s))
for name, top_upd, top_gauss, _ in rank_rows:
    print(f"{name:28s} top-4 energy of the update {top_upd:.2f}   Gaussian {top_gauss:.2f}")
ratios = [top_upd / top_gauss for _, top_upd, top_gauss, _ in rank_rows]
print(f"ratio to the Gaussian share: {min(ratios):.1f} to {max(ratios):.1f}, median layer {np.median(ratios):.1f}")
assert 1.2 < min(ratios) and max(ratios) < 4          # every layer: more concentrated than noise
assert np.median(ratios) > 1.6                          # the median layer: about twice the Gaussian share

fig, ax = plotting.figure(width=5.5)
for name, _, _, s in rank_rows[:4]:
    ax.semilogy(np.arange(1, len(s) + 1), s.numpy() / s[0].item(), label=name.replace("blocks.", "").replace(".weight", ""))
ax.semilogy(np.arange(1, 65), (g / g[0]).numpy()[:64], "k--", label="Gaussian matrix")
plotting.label(ax, "Singular values of the full fine-tuning update", "index i", "s_i / s_1")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# Every layer's update concentrates more of its energy in a few directions than noise would (over 1.2 times the
# Gaussian share in every layer, about twice in the median layer, up to about 3 times in some attention
# projections): the update is not low-rank in the strict sense, but its spectrum decays fast, which is why a rank-4
# adapter recovers most of the gain. Aghajanyan et al. (2020, arXiv:2012.13255) measured the related *intrinsic
# dimension* of fine-tuning objectives. (Part 2's experiment L2d, loss barriers between independently trained and
# commonly initialised networks, is left for the capstone.)
#
# ## QLoRA: a 4-bit frozen base
#
# QLoRA (Dettmers, Pagnoni, Holtzman & Zettlemoyer, 2023, arXiv:2305.14314) keeps the frozen $W_0$ in 4 bits and
# trains LoRA adapters in 16 bits on top. Weights are quantised in blocks of 64: each block stores 4-bit codes and its
# absolute maximum $s$. Which 16 values should the codes stand for? Trained weights are roughly Gaussian, so evenly
# spaced levels (INT4: $s\cdot\{-7, \dots, 7\}/7$) waste resolution in the sparse tails. **NormalFloat-4** puts the
# levels at quantiles of $\mathcal N(0, 1)$, so every level is used about equally often; the paper's construction is
# asymmetric (8 positive, 7 negative levels, and an exact 0). We compute it from $\Phi^{-1}$ and compare with the
# table printed in the paper.

# %%
levels = quantization.nf4_levels(F64)
published = torch.tensor(quantization.NF4_PUBLISHED, dtype=F64)
table_err = float((levels - published).abs().max())
print("NF4 levels:", " ".join(f"{v:+.4f}" for v in levels.tolist()))
print(f"largest difference from the published table: {table_err:.1e}")
assert table_err < 1e-6 and (levels == 0).sum() == 1

w_gauss = torch.randn(512, 512, generator=torch_generator(1))
mse = {m: quantization.quantization_error(w_gauss, m, block=64) for m in ("int8", "int4", "nf4")}
for m, e in mse.items():
    print(f"{m}: mean squared error {e:.2e} on N(0, 1) weights ({e:.3%} of their variance)")
print(f"NF4 error / INT4 error = {mse['nf4'] / mse['int4']:.3f}")
assert abs(mse["nf4"] / mse["int4"] - 0.73) < 0.02 and mse["int8"] < 0.01 * mse["nf4"]

# %% [markdown]
# NF4 has about 27 % less error than INT4 at the same 4 bits. What does 4-bit storage do to *our* GPT? We quantise
# every weight matrix of the code model (NF4 and INT4, blocks of 64) and measure the loss: it rises by less than 0.1
# nats with either. NF4 reconstructs the trained weights with less squared error than INT4, but on this small model
# the two losses differ by less than 0.03 nats, in either direction depending on the draw: a smaller weight error
# need not show in the loss.

# %%
def quantised_copy(model, method):
    q = copy.deepcopy(model)
    with torch.no_grad():
        for p in q.parameters():
            if p.ndim == 2:
                if method == "nf4":
                    codes, s = quantization.nf4_quantize(p)
                    p.copy_(quantization.nf4_dequantize(codes, s, p.shape))
                else:
                    codes, s = quantization.absmax_quantize(p, bits=4)
                    p.copy_(quantization.absmax_dequantize(codes, s, p.shape, bits=4))
    return q


q_loss = {m: evaluate_loss(quantised_copy(base, m), code_ids) for m in ("nf4", "int4")}
w_err = {m: sum(quantization.quantization_error(p.detach(), m, block=64) * p.numel()
                for p in base.parameters() if p.ndim == 2) for m in ("nf4", "int4")}
print(f"code loss: float32 {base_code:.3f}, NF4 {q_loss['nf4']:.3f}, INT4 {q_loss['int4']:.3f}; "
      f"squared weight error NF4 / INT4 = {w_err['nf4'] / w_err['int4']:.2f}")
assert all(base_code - 0.01 < q_loss[m] < base_code + 0.1 for m in q_loss)   # 4 bits cost under 0.1 nats
assert w_err["nf4"] < w_err["int4"]                                           # NF4 stores the weights better ...
assert abs(q_loss["nf4"] - q_loss["int4"]) < 0.03                             # ... which the loss barely notices

overhead, overhead_dq = quantization.scale_overhead_bits(64), quantization.scale_overhead_bits(64, double_quant=True)
gb_4bit, gb_70b = 70e9 * 4 / 8 / 1e9, 70e9 * (4 + overhead_dq) / 8 / 1e9
print(f"scale overhead: {overhead} bit/weight (fp32 per 64), {overhead_dq:.3f} with double quantisation; "
      f"70 B weights: {gb_4bit:.0f} GB of 4-bit codes, {gb_70b:.1f} GB with the scales")
assert overhead == 0.5 and abs(overhead_dq - 0.127) < 1e-3 and gb_4bit == 35.0 and 36 < gb_70b < 36.5

# %% [markdown]
# *Double quantisation* stores the fp32 block scales themselves in 8 bits (one fp32 scale per 256 of them), cutting
# the overhead from $32/64 = 0.5$ to $8/64 + 32/(64\cdot256) \approx 0.127$ bit per weight.
#
# > **Careful.** "QLoRA fine-tunes Llama-2-70B on a 24 GB card" is wrong: the 4-bit weights of a 70 B model alone take
# > 35 GB (36 GB with the scales, computed above), before activations and adapter states. The QLoRA paper fine-tunes a **65 B** model on
# > **one 48 GB GPU** (with paged optimisers for memory spikes).
#
# ## 2.9 RLHF: SFT, a reward model, PPO
#
# The standard recipe (Ouyang et al., "Training language models to follow instructions with human feedback", 2022,
# arXiv:2203.02155) has three stages:
#
# 1. **SFT** (supervised fine-tuning): next-token cross-entropy on demonstrations (prompt, good answer), exactly what we
#    did above with docstrings. The result is the reference policy $\pi_{ref}$.
# 2. **A reward model** $r_\phi(x, y)$ trained on human comparisons "$y_w$ is better than $y_l$" with the Bradley-Terry
#    likelihood $P(y_w\succ y_l) = \sigma(r(y_w) - r(y_l))$, i.e. the loss $-\log\sigma(r_\phi(y_w) - r_\phi(y_l))$.
# 3. **RL** against the reward model with a KL leash to the reference:
#    $\max_\pi \mathbb E_{y\sim\pi}[r(y)] - \beta\,\mathrm{KL}(\pi\|\pi_{ref})$.
#
# The objective of stage 3 has a closed-form maximiser. Write $J(\pi) = \sum_y\pi(y)[r(y) - \beta\log\frac{\pi(y)}{\pi_{ref}(y)}]$
# $= -\beta\,\mathrm{KL}(\pi\|\pi^*) + \beta\log Z$ with
#
# $$\pi^*(y) = \frac{\pi_{ref}(y)\,e^{r(y)/\beta}}{Z},\qquad Z = \sum_y\pi_{ref}(y)e^{r(y)/\beta},$$
#
# so $J$ is maximal, equal to $\beta\log Z$, exactly at $\pi = \pi^*$. Large $\beta$ keeps $\pi^*$ near $\pi_{ref}$;
# small $\beta$ sends it to the best response.
#
# To see everything exactly we use a **response bandit**: one prompt, $K = 12$ candidate responses, a reference policy
# and a hidden "human" reward. Preferences are sampled from the Bradley-Terry model of the true reward. How well the
# fitted reward model recovers it is judged against the fit's own uncertainty: the maximum-likelihood estimate's
# standard errors are the square roots of the diagonal of the inverse Fisher information (about 0.08 here). We assert
# every one of the 12 errors within 4.5 standard errors (over 400 draws the largest was 3.9) and a correlation above
# 0.95 with the true reward (at least 0.98 over those draws; it is lowest when the 12 true rewards happen to lie close
# together, so that the same errors matter more).

# %%
K, beta = 12, 0.5
g = torch_generator(0)
r_true = torch.randn(K, dtype=F64, generator=g)
pi_ref = torch.softmax(torch.randn(K, dtype=F64, generator=g), dim=-1)
chosen, rejected = prefs.sample_preferences(r_true, 4000, g)
r_hat = prefs.fit_bradley_terry(chosen, rejected, K)
corr = float(torch.corrcoef(torch.stack([r_hat, r_true]))[0, 1])
# The fit's standard errors: the inverse Fisher information of the pairs, sum of p(1-p) (e_w - e_l)(e_w - e_l)^T.
# It is singular along (1, ..., 1) (adding a constant changes no preference); adding J = 11^T/K and taking 1/K back
# off the diagonal inverts it on the centred rewards.
diff = torch.nn.functional.one_hot(chosen, K).to(F64) - torch.nn.functional.one_hot(rejected, K).to(F64)
p_win = torch.sigmoid(r_hat[chosen] - r_hat[rejected])
fisher = diff.T @ (diff * (p_win * (1 - p_win))[:, None])
se = (torch.linalg.inv(fisher + torch.full((K, K), 1 / K, dtype=F64)).diagonal() - 1 / K).sqrt()
z = (r_hat - (r_true - r_true.mean())) / se
print(f"{len(chosen)} preference pairs; reward model vs true reward: correlation {corr:.4f}, "
      f"largest error after centring {float((r_hat - (r_true - r_true.mean())).abs().max()):.3f}, "
      f"standard errors {float(se.min()):.3f}-{float(se.max()):.3f}, largest |error| / se {float(z.abs().max()):.2f}")
assert corr > 0.95 and z.abs().max() < 4.5                              # 12 errors, each within 4.5 standard errors

pi_star = prefs.optimal_kl_policy(pi_ref, r_hat, beta)
J_star = float(prefs.kl_objective(pi_star, pi_ref, r_hat, beta))
J_random = [float(prefs.kl_objective(torch.softmax(torch.randn(K, dtype=F64, generator=g) * 2, -1), pi_ref, r_hat, beta))
            for _ in range(100)]
logZ = float(torch.log((pi_ref * torch.exp(r_hat / beta)).sum()))
print(f"J(pi*) = {J_star:.4f} = beta log Z = {beta * logZ:.4f}; best of 100 random policies {max(J_random):.4f}")
assert abs(J_star - beta * logZ) < 1e-12 and J_star > max(J_random)

# %% [markdown]
# **PPO** (Schulman et al., "Proximal Policy Optimization Algorithms", 2017, arXiv:1707.06347) learns $\pi^*$ by
# sampling. Each iteration draws a batch of responses from the current policy $\pi_{old}$, scores each with the
# *KL-shaped* reward $R = r(y) - \beta\log\frac{\pi_{old}(y)}{\pi_{ref}(y)}$, subtracts the batch mean (a baseline) to get
# advantages $A$, and takes a few gradient steps on the clipped surrogate
#
# $$\mathbb E\big[\min(\rho A,\ \mathrm{clip}(\rho, 1-\epsilon, 1+\epsilon)A)\big],\qquad \rho = \frac{\pi_\theta(y)}{\pi_{old}(y)},$$
#
# which stops one batch from moving the policy too far. The gradient of $J$ is $\mathbb E_\pi[(R - b)\nabla\log\pi]$,
# zero exactly when $R$ is the same for every response, i.e. $r(y) - \beta\log\frac{\pi(y)}{\pi_{ref}(y)} = $ const:
# that is $\pi^*$. Our policy is a table of 12 logits started at $\log\pi_{ref}$. Sampling noise decides how close
# it ends: over 703 draws of the seeds (a replica of these two cells) the final KL to $\pi^*$ was at most
# $2.8\times10^{-3}$ and the last-to-first ratio at most $1.9\times10^{-3}$ (median $3\times10^{-5}$: a long tail);
# the cell asserts $10^{-2}$ for both.

# %%
pi_ppo, kl_history = prefs.ppo_bandit(pi_ref, r_hat, beta, iterations=150, batch=256)
kl_ppo = float(prefs.kl(pi_ppo, pi_star))
print(f"PPO: KL(pi_PPO || pi*) {kl_history[0]:.3f} after one iteration -> {kl_ppo:.1e} after {len(kl_history)}")
assert kl_ppo < 1e-2 and kl_history[-1] < 1e-2 * kl_history[0]      # two orders of magnitude closer to pi*

fig, ax = plotting.figure(width=5)
ax.semilogy(np.arange(1, len(kl_history) + 1), kl_history)
plotting.label(ax, "PPO with a KL penalty converges to pi*", "PPO iteration", "KL(pi || pi*) (nats)")
plt.show()

# %% [markdown]
# ### Reward hacking and the KL leash
#
# A learned reward model is wrong somewhere, and pure reward maximisation finds where. Give the reward model one
# **blind spot**: it rates the truly *worst* response (say, a confident but empty answer) 0.3 above the truly best one. The optimum $\pi^*_\beta$ of the *proxy* reward, scored with the *true* reward, as
# $\beta$ varies:

# %%
hack = int(torch.argmin(r_true))                            # the truly worst response...
r_proxy = r_hat.clone()
r_proxy[hack] = r_hat.max() + 0.3                            # ...is the reward model's favourite
r_true_h = r_true
betas = np.geomspace(0.02, 50, 40)
true_ret = [float((prefs.optimal_kl_policy(pi_ref, r_proxy, b) * r_true_h).sum()) for b in betas]
proxy_ret = [float((prefs.optimal_kl_policy(pi_ref, r_proxy, b) * r_proxy).sum()) for b in betas]
drift = [float(prefs.kl(prefs.optimal_kl_policy(pi_ref, r_proxy, b), pi_ref)) for b in betas]
best = int(np.argmax(true_ret))
print(f"true reward: beta -> 0 {true_ret[0]:.2f} (hacked), best {true_ret[best]:.2f} at beta = {betas[best]:.2f}, "
      f"beta -> inf {true_ret[-1]:.2f} (= E_ref r = {float((pi_ref * r_true_h).sum()):.2f})")
assert true_ret[best] > true_ret[0] + 0.3 and true_ret[0] < true_ret[-1]    # a weak leash lands on the hack


def goodhart_draw(gen):
    """One random world (true reward, reference policy, the reward model's blind spot on the worst response):
    the true reward of pi*_beta at every beta of the sweep."""
    r_t = torch.randn(K, dtype=F64, generator=gen)
    pi_r = torch.softmax(torch.randn(K, dtype=F64, generator=gen), dim=-1)
    r_p = r_t - r_t.mean()                                   # a reward model right up to a constant...
    r_p[int(torch.argmin(r_t))] = r_p.max() + 0.3            # ...but for one blind spot
    return np.array([float((prefs.optimal_kl_policy(pi_r, r_p, b) * r_t).sum()) for b in betas])


g_w = torch_generator(7)
worlds = np.array([goodhart_draw(g_w) for _ in range(100)])           # (100 worlds, 40 betas)
b_best = worlds.argmax(1)
interior = (b_best > 0) & (b_best < len(betas) - 1) & (worlds.max(1) > worlds[:, -1] + 1e-3)
print(f"100 random worlds: a moderate beta beats both extremes in {int(interior.sum())}; median gain over beta -> inf "
      f"{np.median(worlds.max(1) - worlds[:, -1]):.2f}, over beta -> 0 {np.median(worlds.max(1) - worlds[:, 0]):.2f}")
assert interior.sum() >= 70 and (worlds.max(1) - worlds[:, 0] > 0.5).sum() >= 95
bound = [(float(r_proxy.max()) - float((pi_ref * r_proxy).sum())) / b for b in betas]
assert all(np.diff(drift) < 0) and all(d <= c + 1e-12 for d, c in zip(drift, bound))

fig, axes = plotting.figure(ncols=2, width=9)
axes[0].semilogx(betas, proxy_ret, label="proxy reward (what is optimised)")
axes[0].semilogx(betas, true_ret, label="true reward")
plotting.label(axes[0], "Goodhart: optimising a flawed reward", "beta (KL strength)", "expected reward under pi*_beta")
axes[0].legend(fontsize=8)
axes[1].loglog(betas, drift, label="KL(pi*_beta || pi_ref)")
axes[1].loglog(betas, bound, "k--", label="bound (max r - E_ref r) / beta")
plotting.label(axes[1], "The KL penalty bounds the drift", "beta", "KL (nats)")
axes[1].legend(fontsize=8)
plt.show()

# %% [markdown]
# With a weak leash ($\beta\to0$) the policy puts all its mass on the hacked response: proxy reward highest, true
# reward lowest. With a very strong leash it stays at $\pi_{ref}$. In between is usually the best true reward: the KL
# penalty is what makes RLHF survive an imperfect reward model. "Usually": how much a moderate $\beta$ gains over not
# optimising at all depends on the world. Over 100 random worlds (true rewards, reference policies, the blind spot
# on the worst response) a moderate $\beta$ beat both extremes in most (about 86 % over 4 000 worlds we tried; the
# assert asks for 70 of 100), with a median gain of about 0.17 over $\pi_{ref}$, while the weak leash lost to the
# best $\beta$ in essentially every world (median about 1.9). The drift is bounded in closed form: since $J(\pi^*)\ge J(\pi_{ref})$,
# $\beta\,\mathrm{KL}(\pi^*\|\pi_{ref}) \le \mathbb E_{\pi^*}[r] - \mathbb E_{\pi_{ref}}[r] \le \max r - \mathbb E_{\pi_{ref}}[r]$
# (dashed line, asserted above).
#
# > **Careful (Part 2, R1).** Seed 000 speaks of "a model trapped in an RLHF basin" whose KL penalty "leaves a back
# > door", and of "architecture > optimiser > data" overturning scaling laws. None of that follows from the cited
# > papers. The measurable part is what we just did: the KL penalty bounds how far the policy moves from the reference,
# > by $(\max r - \mathbb E_{\pi_{ref}} r)/\beta$ nats. (Measuring the drift of hidden features, e.g. by linear CKA, needs
# > a policy with hidden layers; our tabular policy has none.)
#
# ## 2.10 DPO: alignment without a reward model
#
# Rafailov et al. ("Direct Preference Optimization: Your Language Model is Secretly a Reward Model", 2023,
# arXiv:2305.18290) invert the closed form: from $\pi^* = \pi_{ref}e^{r/\beta}/Z$,
#
# $$r(y) = \beta\log\frac{\pi^*(y)}{\pi_{ref}(y)} + \beta\log Z .$$
#
# Put this into the Bradley-Terry likelihood: the constant $\beta\log Z$ (the same for $y_w$ and $y_l$ of one prompt)
# cancels in $r(y_w) - r(y_l)$, and the reward model's loss becomes a loss on the policy itself:
#
# $$\mathcal L_{DPO}(\theta) = -\mathbb E\log\sigma\Big(\beta\log\frac{\pi_\theta(y_w)}{\pi_{ref}(y_w)} - \beta\log\frac{\pi_\theta(y_l)}{\pi_{ref}(y_l)}\Big).$$
#
# No reward model, no sampling: a logistic regression on log-probability ratios. For a policy that can represent any
# distribution (our table), the DPO minimiser is $\pi_{ref}e^{\hat r/\beta}/Z$ where $\hat r$ is the Bradley-Terry fit
# of the same pairs, i.e. the same $\pi^*$ PPO converges to. This needs $\hat r$ to be the *maximum-likelihood* fit:
# `fit_bradley_terry` pins only the free constant (a penalty on $\sum_y \hat r(y)$), because a ridge on $\hat r$ would
# shrink the differences and move the two apart by up to $10^{-3}$ (an earlier version did). Both fits run L-BFGS in
# float64 to round-off; over 204 draws the implicit reward matched $\hat r$ to within $10^{-5}$ after removing the
# constant. We train it on the **same 4000 pairs**:

# %%
pi_dpo = prefs.train_dpo(pi_ref, chosen, rejected, beta)
kl_dpo = float(prefs.kl(pi_dpo, pi_star))
kl_between = float(prefs.kl(pi_ppo, pi_dpo))
implicit = beta * torch.log(pi_dpo / pi_ref)                  # DPO's implicit reward
offset = implicit - r_hat
print(f"KL(pi_DPO || pi*) = {kl_dpo:.1e}; KL(pi_PPO || pi_DPO) = {kl_between:.1e}")
print(f"implicit reward - fitted reward: mean {float(offset.mean()):.4f} (= -beta log Z = {-beta * logZ:.4f}), "
      f"spread {float(offset.std()):.1e}")
print(f"against the TRUE reward's pi*: KL(pi_DPO || pi*_true) = {float(prefs.kl(pi_dpo, prefs.optimal_kl_policy(pi_ref, r_true, beta))):.1e} "
      "(the estimation error of 4000 pairs)")
assert kl_dpo < 1e-6 and kl_between < 1e-2            # PPO sits within its own distance of pi*
assert abs(float(offset.mean()) + beta * logZ) < 1e-3 and float(offset.std()) < 1e-3

fig, ax = plotting.figure(width=6)
idx = np.arange(K)
for i, (name, pi) in enumerate((("pi_ref", pi_ref), ("pi* (closed form)", pi_star), ("PPO", pi_ppo), ("DPO", pi_dpo))):
    ax.bar(idx + (i - 1.5) * 0.2, pi.numpy(), width=0.2, label=name)
plotting.label(ax, "PPO and DPO on the same preferences reach the same pi*", "response y", "probability")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# DPO recovers the reward only up to the constant $\beta\log Z$, which is why its "implicit reward" is useful for
# *comparing* responses of one prompt, not across prompts.
#
# > **Careful.** Two claims to correct:
# > - The seed writes $r = \beta\log\frac{\pi^*}{\pi_{ref}} + Z(x)$. The constant is $\beta\log Z(x)$ (measured above:
# >   the offset is $-\beta\log Z$ to $10^{-3}$).
# > - "Llama 3's official fine-tuning mostly uses DPO." Meta's Llama 3 announcement (April 2024) lists SFT, rejection
# >   sampling, PPO and DPO; the Llama 3 report (Grattafiori et al. 2024, arXiv:2407.21783, the 3.1 models) describes
# >   rounds of SFT, rejection sampling and DPO. "Mostly DPO" holds for the preference step of Llama 3.1 only; qualify it.
#
# Part 2's experiment **F6** (hallucination as a classification error that benchmarks reward, Kalai et al. 2025,
# arXiv:2509.04664) also belongs here; its synthetic "birthday facts" experiment is left for a later revision of this
# chapter.
#
# ## Inference: the KV cache
#
# Generating token $t+1$ needs the attention of the new query against the keys and values of **all** earlier tokens.
# Without a cache, each step recomputes them for the whole prefix ($O(t)$ work per layer per step, $O(T^2)$ for a
# sequence); with a cache, each layer keeps its $(K, V)$ and a step feeds only the new token. The logits must be
# identical: we feed a sequence token by token through the cache and compare with one full forward pass.

# %%
base.eval()
seq = code_ids[:64].view(1, -1)
with torch.no_grad():
    full_logits = base(seq)
    cache = []
    step_logits = [base(seq[:, :8], kv_cache=cache, start_pos=0)]             # prefill: the 8-token prompt at once
    for t in range(8, 64):
        step_logits.append(base(seq[:, t:t + 1], kv_cache=cache, start_pos=t))
cached_logits = torch.cat(step_logits, dim=1)
kv_err = float((cached_logits - full_logits).abs().max())
print(f"max |logits with cache - full forward| = {kv_err:.1e}; cache per layer: K and V of shape {tuple(cache[0][0].shape)}")
assert kv_err < 1e-4

prompt = tok.encode("    def ").view(1, -1)
fed = []                                            # the tokens each forward call of the model processes
hook = base.register_forward_pre_hook(lambda module, args: fed.append(args[0].shape[1]))
try:                                                # the hook comes off even if generation raises
    greedy_cached = base.generate(prompt, 56, temperature=0, use_cache=True)
    fed_cached, fed = sum(fed), []
    greedy_plain = base.generate(prompt, 56, temperature=0, use_cache=False)
    fed_plain = sum(fed)
finally:
    hook.remove()
rounds = []                                         # interleaved, best of 5: another process slowing one round
for _ in range(5):                                  # slows both variants alike, and the minimum is the least disturbed
    t0 = time.perf_counter(); base.generate(prompt, 56, temperature=0, use_cache=True); t1 = time.perf_counter()
    base.generate(prompt, 56, temperature=0, use_cache=False); rounds.append((t1 - t0, time.perf_counter() - t1))
t_cached, t_plain = (1e3 * min(r[i] for r in rounds) for i in (0, 1))
print("greedy continuation:", repr(tok.decode(greedy_cached[0])))
print(f"same tokens with and without the cache: {torch.equal(greedy_cached, greedy_plain)}; token positions through "
      f"the model: {fed_cached} with the cache, {fed_plain} without; 56 tokens in {t_cached:.0f} ms with the cache, "
      f"{t_plain:.0f} ms without ({t_plain / t_cached:.1f}x on this machine, now)")
assert torch.equal(greedy_cached, greedy_plain)
P = prompt.shape[1]                                 # the prompt once, then one token per step; without: the prefix
assert fed_cached == P + 55 and fed_plain == sum(P + i for i in range(56)) and P + 55 <= base.cfg.block_size

# %% [markdown]
# The cache cut the token positions pushed through the model from $\sum_{i<56}(P + i)$ to $P + 55$ ($P$ the prompt's
# length; asserted). The time saved is less: on a model this small and a context of 64, per-call overhead dominates
# and the speed-up is modest (printed, not asserted: a timing on a shared CPU says as much about the other processes;
# in one robustness sweep, four processes on two cores, the cached generation took more than 1.5 times as long as the
# plain one). The speed-up grows with the context length and the model width, because the cached step does $O(t)$
# attention work and $O(1)$ projections where the uncached one does $O(t^2)$ and $O(t)$. The price is memory:
# $2\cdot n_{layers}\cdot n_{kv}\cdot d_h\cdot T$ numbers per sequence (chapter 1's GQA cuts $n_{kv}$).
#
# ## Inference: temperature, top-k, top-p
#
# The model gives logits $\ell$; the sampler chooses how adventurous to be. **Temperature** samples from
# $\mathrm{softmax}(\ell/T)$ (entropy grows with $T$; $T\to0$ is greedy). **Top-k** keeps the $k$ largest logits.
# **Top-p** (nucleus sampling, Holtzman et al. 2019, arXiv:1904.09751) keeps the smallest set of most probable tokens
# whose mass reaches $p$, including the token that crosses $p$. Here is the GPT's next-character distribution after a
# code prefix:

# %%
context = code_ids[2000:2040].view(1, -1)
with torch.no_grad():
    next_logits = base(context)[0, -1].double()                                # (V,)
temps = [0.25, 0.5, 1.0, 2.0, 4.0]
entropies = [float(-(p * torch.log(p.clamp_min(1e-300))).sum()) for p in
             (decoding.filtered_probs(next_logits, temperature=T) for T in temps)]
print("context:", repr(tok.decode(context[0, -20:])))
print("entropy (nats) at T =", ", ".join(f"{T}: {h:.2f}" for T, h in zip(temps, entropies)))
assert all(np.diff(entropies) > 0)
p_k = decoding.filtered_probs(next_logits, top_k=5)
assert int((p_k > 0).sum()) == 5 and abs(float(p_k.sum()) - 1) < 1e-12
probs = torch.softmax(next_logits, -1)
for p_nuc in (0.5, 0.9, 0.99):
    kept = torch.isfinite(decoding.top_p_filter(next_logits, p_nuc))
    mass, smallest = float(probs[kept].sum()), float(probs[kept].min())
    print(f"top-p {p_nuc}: keeps {int(kept.sum())} characters with mass {mass:.3f}; without the least likely one {mass - smallest:.3f}")
    assert mass >= p_nuc and (mass - smallest < p_nuc or int(kept.sum()) == 1)


# %%
def show_sampler(temperature=1.0, top_p=1.0):
    p = decoding.filtered_probs(next_logits, temperature=temperature, top_p=top_p)
    top = torch.argsort(p, descending=True)[:15]
    fig, ax = plotting.figure(width=6)
    ax.bar(range(15), p[top].numpy())
    ax.set_xticks(range(15), [repr(tok.decode([int(i)]))[1:-1] for i in top])
    plotting.label(ax, f"Next character, T = {temperature}, top-p = {top_p}", "character", "probability")
    plt.show()


widgets.interact(show_sampler, temperature=widgets.FloatSlider(value=1.0, min=0.1, max=3.0, step=0.1),
                 top_p=widgets.FloatSlider(value=1.0, min=0.05, max=1.0, step=0.05));

# %% [markdown]
# ## Inference: speculative decoding
#
# A big model generates one token per forward pass, and on a GPU that pass is limited by reading the weights, not by
# arithmetic: checking 5 tokens costs about as much as generating 1. Speculative decoding (Leviathan, Kalman & Matias,
# 2023, arXiv:2211.17192; Chen et al., 2023, arXiv:2302.01318) lets a small **draft** model propose $\gamma$ tokens,
# which the **target** scores in one pass. Each drafted token $x\sim q$ is accepted with probability
# $\min(1, p(x)/q(x))$; at the first rejection, a replacement is drawn from the residual
# $p_{res} = \max(0, p - q)/\sum\max(0, p - q)$ and the round ends; if all are accepted, the target adds one more token.
#
# **Theorem.** Each emitted token has exactly the target distribution $p$. *Proof.* The draft proposes $x$ and it is
# accepted with probability $q(x)\min(1, p(x)/q(x)) = \min(p(x), q(x))$. The total acceptance probability is
# $\beta = \sum_x\min(p, q) = 1 - \mathrm{TV}(p, q)$, and $\sum_x\max(0, p - q) = 1 - \beta$ too. So
# $P(x) = \min(p, q)(x) + (1 - \beta)\frac{\max(0, p - q)(x)}{1 - \beta} = \min(p,q)(x) + \max(0, p - q)(x) = p(x)$. $\square$
#
# We check it exactly (the law of one round, computed) and by Monte Carlo (the sampler itself):

# %%
g = torch_generator(2)
exact_err = 0.0
for V in (2, 5, 17, 100):
    for _ in range(20):
        p = torch.softmax(2 * torch.randn(V, dtype=F64, generator=g), -1)
        q = torch.softmax(2 * torch.randn(V, dtype=F64, generator=g), -1)
        exact_err = max(exact_err, float((decoding.speculative_output_distribution(p, q) - p).abs().max()))
print(f"exact law of one round vs p, 80 random pairs (p, q): max error {exact_err:.1e}")
assert exact_err < 1e-14

p = torch.tensor([0.05, 0.4, 0.15, 0.3, 0.1], dtype=F64)
q = torch.tensor([0.4, 0.1, 0.3, 0.1, 0.1], dtype=F64)
n_mc = 20_000
drafts = torch.multinomial(q, n_mc, replacement=True, generator=g).tolist()
us = torch.rand(n_mc, 2, dtype=F64, generator=g).tolist()
out = np.bincount([decoding.speculative_sample(p, q, x, u, u2) for x, (u, u2) in zip(drafts, us)], minlength=5)
accepted = np.mean([u < float(p[x] / q[x]) for x, (u, _) in zip(drafts, us)])
mc_err = float(np.abs(out / n_mc - p.numpy()).max())
print(f"Monte Carlo ({n_mc} rounds): frequencies {np.round(out / n_mc, 3)} vs p {p.numpy()}; max error {mc_err:.3f}")
print(f"acceptance rate {accepted:.3f} vs 1 - TV(p, q) = {float(decoding.acceptance_rate(p, q)):.3f}")
assert mc_err < 4 * math.sqrt(0.25 / n_mc) and abs(accepted - float(decoding.acceptance_rate(p, q))) < 0.015

# %% [markdown]
# **With real models.** The target is our code GPT; the draft a much smaller GPT (1 layer, $D = 32$) trained briefly
# on the same text. We decode 4 sequences of 48 characters with $\gamma = 4$ and compare the measured acceptance rate
# with the mean of $1 - \mathrm{TV}(p_t, q_t)$ over the drafted positions, and the tokens per target call with
# Leviathan et al.'s formula $(1 - \alpha^{\gamma+1})/(1 - \alpha)$.

# %%
manual_seed(1)
draft = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=64, d_model=32, n_layers=1, n_heads=2))
train_gpt(draft, code_ids, steps=150, batch_size=16, lr=5e-3)
draft.eval()
print(f"target {base.num_params():,} parameters, code loss {base_code:.2f}; draft {draft.num_params():,}, "
      f"loss {evaluate_loss(draft, code_ids):.2f}")
gen_sd = torch_generator(0)
stats_all = {"drafted": 0, "accepted": 0, "target_calls": 0, "tokens": 0, "probs": []}
for s in range(4):
    prompt = code_ids[5000 + 997 * s: 5008 + 997 * s].view(1, -1)
    out_ids, st = decoding.speculative_decode(base, draft, prompt, 48, gamma=4, generator=gen_sd)
    for k in ("drafted", "accepted", "target_calls"):
        stats_all[k] += st[k]
    stats_all["tokens"] += out_ids.shape[1] - 8
    stats_all["probs"] += st["acceptance_probs"]
alpha_measured = stats_all["accepted"] / stats_all["drafted"]
alpha_tv = float(np.mean(stats_all["probs"]))
tokens_per_call = stats_all["tokens"] / stats_all["target_calls"]
print("a speculative sample:", repr(tok.decode(out_ids[0, 8:])))
print(f"acceptance rate {alpha_measured:.3f} ({stats_all['accepted']} / {stats_all['drafted']}) vs mean 1 - TV = {alpha_tv:.3f}")
print(f"tokens per target call {tokens_per_call:.2f} vs (1 - a^5) / (1 - a) = {decoding.expected_tokens_per_round(alpha_tv, 4):.2f}")
sd = math.sqrt(alpha_tv * (1 - alpha_tv) / stats_all["drafted"])
assert abs(alpha_measured - alpha_tv) < 4 * sd + 0.02
# Tokens per round under the formula's model (independent acceptances with probability a): k with probability
# a^(k-1) (1 - a) for k <= gamma, gamma + 1 with probability a^gamma; its standard error over the rounds, and an
# allowance for the last round of each of the 4 sequences, cut to 48 tokens (at most gamma tokens lost each).
a_, gam = alpha_tv, 4
pk = np.array([a_ ** (k - 1) * (1 - a_) for k in range(1, gam + 1)] + [a_ ** gam])
ks_ = np.arange(1, gam + 2)
se_round = math.sqrt(float(pk @ ks_**2 - (pk @ ks_) ** 2) / stats_all["target_calls"])
cut = 4 * gam / stats_all["target_calls"]
expected_tpc = decoding.expected_tokens_per_round(alpha_tv, gam)
print(f"formula {expected_tpc:.2f} +- {se_round:.2f} (std. error), minus at most {cut:.2f} for the cut last rounds")
assert abs(float(pk @ ks_) - expected_tpc) < 1e-12
assert tokens_per_call > 1.5 and expected_tpc - 4 * se_round - cut < tokens_per_call < expected_tpc + 4 * se_round

# %% [markdown]
# The measurement agrees with the formula within its sampling error (about 45 rounds: a standard error near 0.2
# tokens) plus the final round of each sequence, which is cut short; across draws it fell between 0.87 and 1.02 times
# the formula. The formula's model is also only an approximation: acceptance is not independent from token to token
# (easy stretches of code are accepted in runs). Whether fewer target calls mean
# less time depends on the cost ratio $c$ of a draft call to a target call: the expected speed-up is
# $\frac{1 - \alpha^{\gamma+1}}{(1 - \alpha)(\gamma c + 1)}$. On a GPU serving a large model $c$ is small (a few
# percent) and the target's pass over $\gamma + 1$ tokens costs about as much as over one. On a CPU, with two tiny
# models, per-call overhead dominates and the draft is not much cheaper than the target; we measure the ratio here
# (one forward pass over a 56-character context):

# %%
ctx56 = code_ids[:56].view(1, -1)
with torch.no_grad():
    c_cpu = median_ms(draft, ctx56, repeats=20) / median_ms(base, ctx56, repeats=20)
print(f"measured cost ratio on this CPU: c = {c_cpu:.2f}; predicted speed-up {decoding.expected_speedup(alpha_tv, 4, c_cpu):.2f}x")
for c in (0.02, 0.1, 0.5):
    print(f"cost ratio c = {c}: expected speed-up with gamma = 4 and alpha = {alpha_tv:.2f}: "
          f"{decoding.expected_speedup(alpha_tv, 4, c):.2f}x")
assert decoding.expected_speedup(alpha_tv, 4, 0.02) > 1.5 and decoding.expected_speedup(alpha_tv, 4, 0.5) < 1.15
assert abs(decoding.expected_speedup(1.0 - 1e-6, 4, 0.5) - 5 / 3) < 1e-4       # even alpha -> 1: (gamma+1)/(gamma c+1)

# %% [markdown]
# A draft half as costly as the target barely pays: at $c = 0.5$ the speed-up is at most $(\gamma+1)/(\gamma c+1) = 5/3$
# even if every draft were accepted, and about 1 at the acceptance rates measured here (0.69 to 0.75 across draws of
# the course's seeds). A draft that costs a few percent of the target turns the same acceptance rate into a 2-3x
# speed-up.

# %% [markdown]
# ## Summary
#
# - LoRA trains $r(d_{in} + d_{out})$ parameters per layer ($256\times$ fewer for $4096^2$ at $r = 8$), starts exactly
#   at the base model ($B = 0$) and merges into it for free inference. On our code GPT adapted to docstrings, rank 4
#   (9 % of the parameters) learned most of what full fine-tuning learned and forgot about half to two thirds as
#   much; the full
#   update's spectrum decays fast (top-4 energy about twice a random matrix's in the median layer).
# - NF4's levels are normal quantiles (the published table, reproduced to $2\cdot10^{-7}$); on Gaussian weights NF4 has
#   about 27 % less error than INT4; double quantisation brings the scale overhead from 0.5 to 0.127 bit per weight.
#   A 70 B model in NF4 takes 35 GB (36 GB with the scales).
# - RLHF: a Bradley-Terry reward model recovers the true reward (to within its standard errors from 4000 pairs); the KL-regularised
#   optimum is $\pi_{ref}e^{r/\beta}/Z$; PPO with a KL-shaped reward converges to it; the KL penalty bounds the drift and
#   saves the true reward from a flawed reward model.
# - DPO turns the same preferences into a logistic loss on log-ratios; it reaches the same $\pi^*$ as PPO, and its
#   implicit reward equals the reward up to $-\beta\log Z$.
# - The KV cache gives identical logits and tokens; sampling filters behave as specified; speculative sampling is exact
#   (checked to $10^{-14}$ and by Monte Carlo), accepts at rate $1 - \mathrm{TV}(p, q)$, and pays off only when drafts
#   are cheap.
#
# **Exercises.** Open `exercises/v2_llm/03_alignment_and_inference.ipynb` (the command `manifold-course lab` copies it
# to your `my_work/` folder). Ten pieces: `LoRALinear`, `nf4_levels`, `nf4_quantize`, `bradley_terry_loss`,
# `optimal_kl_policy`, `ppo_clip_objective`, `dpo_loss`, `top_p_filter`, `residual_distribution` and
# `speculative_sample`; each cell tells you at once whether you are right.
#
# **Further reading.**
# - E. J. Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", 2021, arXiv:2106.09685; A. Aghajanyan,
#   L. Zettlemoyer, S. Gupta, "Intrinsic Dimensionality Explains the Effectiveness of Language Model Fine-Tuning", 2020,
#   arXiv:2012.13255.
# - T. Dettmers, A. Pagnoni, A. Holtzman, L. Zettlemoyer, "QLoRA: Efficient Finetuning of Quantized LLMs", 2023,
#   arXiv:2305.14314.
# - L. Ouyang et al., "Training language models to follow instructions with human feedback", 2022, arXiv:2203.02155;
#   J. Schulman, F. Wolski, P. Dhariwal, A. Radford, O. Klimov, "Proximal Policy Optimization Algorithms", 2017,
#   arXiv:1707.06347.
# - R. Rafailov, A. Sharma, E. Mitchell, S. Ermon, C. D. Manning, C. Finn, "Direct Preference Optimization: Your Language
#   Model is Secretly a Reward Model", 2023, arXiv:2305.18290; A. Grattafiori et al., "The Llama 3 Herd of Models",
#   2024, arXiv:2407.21783.
# - A. Holtzman, J. Buys, L. Du, M. Forbes, Y. Choi, "The Curious Case of Neural Text Degeneration", 2019,
#   arXiv:1904.09751.
# - Y. Leviathan, M. Kalman, Y. Matias, "Fast Inference from Transformers via Speculative Decoding", 2023,
#   arXiv:2211.17192; C. Chen et al., "Accelerating Large Language Model Decoding with Speculative Sampling", 2023,
#   arXiv:2302.01318.
# - A. T. Kalai, O. Nachum, S. S. Vempala, E. Zhang, "Why Language Models Hallucinate", 2025, arXiv:2509.04664.
