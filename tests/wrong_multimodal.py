"""Plausible wrong answers to the exercises of v4_agents/01_multimodal_models; each check must reject them."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------- clip_loss


def clip_loss_one_sided(img_emb, txt_emb, logit_scale):
    # only images -> captions: the named mistake
    logits = logit_scale * F.normalize(img_emb, dim=-1) @ F.normalize(txt_emb, dim=-1).T
    return F.cross_entropy(logits, torch.arange(len(img_emb)))


def clip_loss_unnormalised(img_emb, txt_emb, logit_scale):
    logits = logit_scale * img_emb @ txt_emb.T
    t = torch.arange(len(img_emb))
    return 0.5 * (F.cross_entropy(logits, t) + F.cross_entropy(logits.T, t))


def clip_loss_divides_by_scale(img_emb, txt_emb, logit_scale):
    logits = F.normalize(img_emb, dim=-1) @ F.normalize(txt_emb, dim=-1).T / logit_scale
    t = torch.arange(len(img_emb))
    return 0.5 * (F.cross_entropy(logits, t) + F.cross_entropy(logits.T, t))


def clip_loss_summed(img_emb, txt_emb, logit_scale):
    logits = logit_scale * F.normalize(img_emb, dim=-1) @ F.normalize(txt_emb, dim=-1).T
    t = torch.arange(len(img_emb))
    return F.cross_entropy(logits, t) + F.cross_entropy(logits.T, t)


# ---------------------------------------------------------------- zero-shot, recall, gap


def zero_shot_dot_product(img_emb, class_txt_emb):
    return (img_emb @ class_txt_emb.T).argmax(-1)


def zero_shot_wrong_axis(img_emb, class_txt_emb):
    sim = F.normalize(img_emb, dim=-1) @ F.normalize(class_txt_emb, dim=-1).T
    return sim.argmax(0)


def zero_shot_float(img_emb, class_txt_emb):
    sim = F.normalize(img_emb, dim=-1) @ F.normalize(class_txt_emb, dim=-1).T
    return sim.argmax(-1).float()


def recall_off_by_one(sim, k):
    n = sim.shape[0]
    rank = (sim > sim[torch.arange(n), torch.arange(n)].unsqueeze(1)).sum(1)
    return float((rank <= k).double().mean())


def recall_ties_against(sim, k):
    n = sim.shape[0]
    rank = (sim >= sim[torch.arange(n), torch.arange(n)].unsqueeze(1)).sum(1) - 1
    rank = rank + (sim == sim[torch.arange(n), torch.arange(n)].unsqueeze(1)).sum(1) - 1
    return float((rank < k).double().mean())


def recall_topk_columns(sim, k):
    top = sim.topk(min(k, sim.shape[0]), dim=0).indices       # ranks the queries for each gallery item
    return float(sum(int(i in top[:, i].tolist()) for i in range(sim.shape[0])) / sim.shape[0])


def gap_unnormalised(img_emb, txt_emb):
    return float((img_emb.mean(0) - txt_emb.mean(0)).norm())


def gap_mean_cosine(img_emb, txt_emb):
    return float(1 - (F.normalize(img_emb, dim=-1) @ F.normalize(txt_emb, dim=-1).T).mean())


def gap_normalises_centroids(img_emb, txt_emb):
    return float((F.normalize(img_emb.mean(0), dim=0) - F.normalize(txt_emb.mean(0), dim=0)).norm())


# ---------------------------------------------------------------- DrLIM


def drlim_swapped_labels(z1, z2, similar, margin):
    D = (z1 - z2).norm(dim=-1)
    return torch.where(similar, 0.5 * torch.clamp(margin - D, min=0) ** 2, 0.5 * D**2).mean()


def drlim_unsquared_hinge(z1, z2, similar, margin):
    D = (z1 - z2).norm(dim=-1)
    return torch.where(similar, 0.5 * D**2, 0.5 * torch.clamp(margin - D, min=0)).mean()


def drlim_hinge_wrong_way(z1, z2, similar, margin):
    D = (z1 - z2).norm(dim=-1)
    return torch.where(similar, 0.5 * D**2, 0.5 * torch.clamp(D - margin, min=0) ** 2).mean()


def drlim_summed(z1, z2, similar, margin):
    D = (z1 - z2).norm(dim=-1)
    return torch.where(similar, 0.5 * D**2, 0.5 * torch.clamp(margin - D, min=0) ** 2).sum()


# ---------------------------------------------------------------- Projector


class ProjectorNoBias(nn.Module):
    def __init__(self, kind="linear", d_in=1024, d_out=4096):
        super().__init__()
        layers = [nn.Linear(d_in, d_out, bias=False)]
        if kind == "mlp2":
            layers += [nn.GELU(), nn.Linear(d_out, d_out, bias=False)]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)


class ProjectorReLU(nn.Module):
    def __init__(self, kind="linear", d_in=1024, d_out=4096):
        super().__init__()
        layers = [nn.Linear(d_in, d_out)]
        if kind == "mlp2":
            layers += [nn.ReLU(), nn.Linear(d_out, d_out)]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)


class ProjectorHiddenDin(nn.Module):
    # the MLP's hidden width is d_in instead of d_out
    def __init__(self, kind="linear", d_in=1024, d_out=4096):
        super().__init__()
        if kind == "mlp2":
            self.net = nn.Sequential(nn.Linear(d_in, d_in), nn.GELU(), nn.Linear(d_in, d_out))
        else:
            self.net = nn.Sequential(nn.Linear(d_in, d_out))

    def forward(self, z):
        return self.net(z)


# ---------------------------------------------------------------- build_multimodal_batch


def mm_labels_include_image(img_tokens, text_ids, embed, pad_id=0, ignore_index=-100):
    # the named mistake: image positions carry labels (here the pad id)
    B, P, _ = img_tokens.shape
    inputs = torch.cat([img_tokens, embed(text_ids)], 1)
    real = text_ids != pad_id
    mask = torch.cat([torch.ones(B, P, dtype=torch.long), real.long()], 1)
    labels = torch.cat([torch.full((B, P), pad_id, dtype=torch.long), torch.where(real, text_ids, ignore_index)], 1)
    return inputs, mask, labels


def mm_text_first(img_tokens, text_ids, embed, pad_id=0, ignore_index=-100):
    B, P, _ = img_tokens.shape
    inputs = torch.cat([embed(text_ids), img_tokens], 1)
    real = text_ids != pad_id
    mask = torch.cat([real.long(), torch.ones(B, P, dtype=torch.long)], 1)
    labels = torch.cat([torch.where(real, text_ids, ignore_index), torch.full((B, P), ignore_index)], 1)
    return inputs, mask, labels


def mm_padding_attended(img_tokens, text_ids, embed, pad_id=0, ignore_index=-100):
    B, P, _ = img_tokens.shape
    T = text_ids.shape[1]
    inputs = torch.cat([img_tokens, embed(text_ids)], 1)
    mask = torch.ones(B, P + T, dtype=torch.long)
    labels = torch.cat([torch.full((B, P), ignore_index), text_ids], 1)
    return inputs, mask, labels


def mm_bool_mask(img_tokens, text_ids, embed, pad_id=0, ignore_index=-100):
    B, P, _ = img_tokens.shape
    inputs = torch.cat([img_tokens, embed(text_ids)], 1)
    real = text_ids != pad_id
    mask = torch.cat([torch.ones(B, P, dtype=torch.bool), real], 1)
    labels = torch.cat([torch.full((B, P), ignore_index), torch.where(real, text_ids, ignore_index)], 1)
    return inputs, mask, labels


# ---------------------------------------------------------------- qformer


def qformer_softmax_over_queries(Z_v, queries, W):
    W_q, W_k, W_v = W
    q, k, v = queries @ W_q, Z_v @ W_k, Z_v @ W_v
    att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(q.shape[-1]), dim=1)
    return att @ v


def qformer_unscaled(Z_v, queries, W):
    W_q, W_k, W_v = W
    q, k, v = queries @ W_q, Z_v @ W_k, Z_v @ W_v
    return torch.softmax(q @ k.transpose(1, 2), dim=-1) @ v


def qformer_patches_attend(Z_v, queries, W):
    # roles swapped: every patch attends to the queries, so the output has N rows, not M
    W_q, W_k, W_v = W
    q, k = queries @ W_q, Z_v @ W_k
    att = torch.softmax(k @ q.T / math.sqrt(q.shape[-1]), dim=-1)      # (B, N, M)
    return att @ (q @ torch.eye(q.shape[-1], dtype=q.dtype))


# ---------------------------------------------------------------- LLaVA parameter counts


def _llama(V, D, L, F):
    return 2 * V * D + L * (4 * D * D + 3 * D * F + 2 * D) + D


def _proj(kind, d_in, d_out):
    return d_in * d_out + d_out + (d_out * d_out + d_out if kind == "mlp2" else 0)


def llava_tied_embeddings(stage, projector_kind, d_vision, vocab_size, d_model, n_layers, d_ff):
    n = _proj(projector_kind, d_vision, d_model)
    return n if stage == 1 else n + _llama(vocab_size, d_model, n_layers, d_ff) - vocab_size * d_model


def llava_two_matrix_mlp(stage, projector_kind, d_vision, vocab_size, d_model, n_layers, d_ff):
    # a GELU MLP with two matrices (up, down) instead of SwiGLU's three
    n = _proj(projector_kind, d_vision, d_model)
    llm = 2 * vocab_size * d_model + n_layers * (4 * d_model**2 + 2 * d_model * d_ff + 2 * d_model) + d_model
    return n if stage == 1 else n + llm


def llava_stage1_with_embeddings(stage, projector_kind, d_vision, vocab_size, d_model, n_layers, d_ff):
    n = _proj(projector_kind, d_vision, d_model)
    return n + vocab_size * d_model if stage == 1 else n + _llama(vocab_size, d_model, n_layers, d_ff)


def llava_no_projector_bias(stage, projector_kind, d_vision, vocab_size, d_model, n_layers, d_ff):
    n = d_vision * d_model + (d_model * d_model if projector_kind == "mlp2" else 0)
    return n if stage == 1 else n + _llama(vocab_size, d_model, n_layers, d_ff)


WRONG = {
    "multimodal.clip_loss": [clip_loss_one_sided, clip_loss_unnormalised, clip_loss_divides_by_scale, clip_loss_summed],
    "multimodal.zero_shot_predict": [zero_shot_dot_product, zero_shot_wrong_axis, zero_shot_float],
    "multimodal.recall_at_k": [recall_off_by_one, recall_ties_against, recall_topk_columns],
    "multimodal.modality_gap": [gap_unnormalised, gap_mean_cosine, gap_normalises_centroids],
    "multimodal.drlim_loss": [drlim_swapped_labels, drlim_unsquared_hinge, drlim_hinge_wrong_way, drlim_summed],
    "multimodal.Projector": [ProjectorNoBias, ProjectorReLU, ProjectorHiddenDin],
    "multimodal.build_multimodal_batch": [mm_labels_include_image, mm_text_first, mm_padding_attended, mm_bool_mask],
    "multimodal.qformer": [qformer_softmax_over_queries, qformer_unscaled, qformer_patches_attend],
    "multimodal.llava_trainable_params": [llava_tied_embeddings, llava_two_matrix_mlp, llava_stage1_with_embeddings,
                                          llava_no_projector_bias],
}
