r"""Giving a language model eyes: the LLaVA projector, the multimodal batch, a Q-Former, parameter counts (4.2).

**LLaVA** (H. Liu, C. Li, Q. Wu, Y. J. Lee, "Visual Instruction Tuning", 2023, arXiv:2304.08485; H. Liu, C. Li,
Y. Li, Y. J. Lee, "Improved Baselines with Visual Instruction Tuning" (LLaVA-1.5), 2023, arXiv:2310.03744) feeds the
patch features $Z_v$ of a frozen CLIP ViT-L/14 (1024-d) through a projector $H_v = W Z_v$ (LLaVA-1.5: a 2-layer
MLP with GELU) into the word-embedding space of the LLM (Vicuna, 4096-d for 7B) and reads the sequence
$[H_v; \mathrm{Emb}(\text{text})]$. Stage 1 trains only the projector on captions; stage 2 also the LLM. The image
positions carry no next-token targets: their labels are the ignore index $-100$.

**Q-Former** (J. Li, D. Li, S. Savarese, S. Hoi, "BLIP-2: Bootstrapping Language-Image Pre-training with Frozen
Image Encoders and Large Language Models", 2023, arXiv:2301.12597) lets a fixed set of learned queries
cross-attend to the patches, $Q' = \mathrm{softmax}(QW_q (Z_vW_k)^\top/\sqrt d)\,Z_vW_v$, so the LLM reads $|Q|$
tokens (32 in BLIP-2) whatever the number of patches. Here: one cross-attention head (the real Q-Former is a
12-layer BERT with self-attention among the queries as well).

Shapes: ``B`` batch, ``P`` or ``N`` patches, ``T`` text length, ``D`` LLM width, ``M`` queries.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from manifold_course.agents.clip import TRAIN_TEMPLATES, WordTokenizer, caption
from manifold_course.nn.gpt import GPT
from manifold_course.seeding import numpy_rng, torch_generator

IGNORE_INDEX = -100

# ---------------------------------------------------------------- the projector and its size


class Projector(nn.Module):
    """``Projector(kind, d_in, d_out)``: ``"linear"`` is one ``nn.Linear`` (LLaVA); ``"mlp2"`` is Linear, GELU,
    Linear (LLaVA-1.5's ``mlp2x_gelu``). Parameters live in ``self.net`` (an ``nn.Sequential``)."""

    def __init__(self, kind: str = "linear", d_in: int = 1024, d_out: int = 4096):
        super().__init__()
        if kind == "linear":
            self.net = nn.Sequential(nn.Linear(d_in, d_out))
        elif kind == "mlp2":
            self.net = nn.Sequential(nn.Linear(d_in, d_out), nn.GELU(), nn.Linear(d_out, d_out))
        else:
            raise ValueError(f"kind must be 'linear' or 'mlp2', got {kind!r}")

    def forward(self, z: torch.Tensor) -> torch.Tensor:            # (..., d_in) -> (..., d_out)
        return self.net(z)


def projector_params(kind: str, d_in: int, d_out: int) -> int:
    """Closed form: linear $d_{in}d_{out} + d_{out}$; mlp2 adds $d_{out}^2 + d_{out}$."""
    n = d_in * d_out + d_out
    return n if kind == "linear" else n + d_out * d_out + d_out


def llama_params(vocab_size: int, d_model: int, n_layers: int, d_ff: int) -> int:
    r"""A LLaMA/Vicuna decoder: untied input and output embeddings $2VD$; per layer $4D^2$ (q, k, v, o, no biases),
    $3DF$ (SwiGLU: gate, up, down) and $2D$ (two RMSNorm gains); a final RMSNorm $D$."""
    return 2 * vocab_size * d_model + n_layers * (4 * d_model**2 + 3 * d_model * d_ff + 2 * d_model) + d_model


def clip_vit_params(width: int = 1024, layers: int = 24, patch: int = 14, image_size: int = 224,
                    out_dim: int = 768, channels: int = 3) -> int:
    """OpenAI CLIP's vision transformer: patch convolution (no bias), class token, positions, ln_pre, ``layers``
    blocks (LayerNorm, attention with biases, LayerNorm, 4x MLP with biases), ln_post and the output projection."""
    tokens = (image_size // patch) ** 2 + 1
    block = 2 * width + (3 * width * width + 3 * width) + (width * width + width) + 2 * width \
        + (width * 4 * width + 4 * width) + (4 * width * width + width)
    return channels * patch * patch * width + width + tokens * width + 2 * width + layers * block + 2 * width \
        + width * out_dim


def llava_trainable_params(stage: int, projector_kind: str, d_vision: int, vocab_size: int, d_model: int,
                           n_layers: int, d_ff: int) -> int:
    """Trainable parameters of LLaVA in ``stage`` 1 (projector only) or 2 (projector and LLM; vision frozen)."""
    proj = projector_params(projector_kind, d_vision, d_model)
    if stage == 1:
        return proj
    if stage == 2:
        return proj + llama_params(vocab_size, d_model, n_layers, d_ff)
    raise ValueError(f"stage must be 1 or 2, got {stage}")


# ---------------------------------------------------------------- the multimodal batch


def build_multimodal_batch(img_tokens: torch.Tensor, text_ids: torch.Tensor, embed, pad_id: int = 0,
                           ignore_index: int = IGNORE_INDEX):
    """img_tokens (B, P, D) projected, text_ids (B, T) int64 right-padded with ``pad_id``; ``embed`` maps ids to
    (B, T, D). Returns (inputs (B, P+T, D), attention_mask (B, P+T) int64, labels (B, P+T) int64).

    The image comes first; the mask is 1 on image tokens and real text, 0 on padding; labels are the text ids with
    ``ignore_index`` on image positions and padding (a causal LM shifts them by one inside its loss)."""
    B, P, _ = img_tokens.shape
    inputs = torch.cat([img_tokens, embed(text_ids).to(img_tokens.dtype)], dim=1)          # (B, P+T, D)
    real = text_ids != pad_id                                                               # (B, T)
    mask = torch.cat([torch.ones(B, P, dtype=torch.long), real.long()], dim=1)
    labels = torch.cat([torch.full((B, P), ignore_index, dtype=torch.long),
                        torch.where(real, text_ids, torch.full_like(text_ids, ignore_index))], dim=1)
    return inputs, mask, labels


def qformer(Z_v: torch.Tensor, queries: torch.Tensor, W) -> torch.Tensor:
    r"""One cross-attention head: Z_v (B, N, D_v), queries (M, D_q), W = (W_q (D_q, d), W_k (D_v, d), W_v (D_v, d)).

    Returns (B, M, d): $\mathrm{softmax}(Q K^\top/\sqrt d)V$ with $Q = $ queries $W_q$, $K = Z_vW_k$, $V = Z_vW_v$; the
    softmax runs over the N patches, so every query returns one convex mix of patch values, whatever N is."""
    W_q, W_k, W_v = W
    q = queries @ W_q                                                # (M, d)
    k, v = Z_v @ W_k, Z_v @ W_v                                      # (B, N, d)
    att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(q.shape[-1]), dim=-1)   # (B, M, N)
    return att @ v                                                   # (B, M, d)


# ---------------------------------------------------------------- a frozen tiny caption LM that reads embeddings


def lm_logits_from_embeddings(model: GPT, x: torch.Tensor) -> torch.Tensor:
    """The course GPT's forward from input embeddings x (B, T, D) instead of ids -> logits (B, T, V)."""
    return model(None, inputs_embeds=x)


LM_TEMPLATES = ("{w} {n} , handwritten", "{w} {n} , the digit", "{w} {n} , a number", "{w} {n} , written by hand")


def lm_tokenizer() -> WordTokenizer:
    """The caption LM's words: the mini-CLIP vocabulary plus the words of :data:`LM_TEMPLATES`."""
    words = {w for t in TRAIN_TEMPLATES + LM_TEMPLATES for c in range(10) for w in caption(c, t).split()}
    return WordTokenizer(words)


def caption_documents(n_docs: int, seed: int) -> list[str]:
    """Text-only documents for the caption LM: "<bos> seven 7 , the digit <eos>", a caption of a random class with
    a random template of :data:`LM_TEMPLATES`. Nothing before the number word tells which class it is, so the LM
    learns the grammar, ten equally likely number words, and that a number word is followed by its numeral. In the
    multimodal sequence the image token(s) replace "<bos> seven": [image; "7 , the digit <eos>"]."""
    rng = numpy_rng(seed)
    return ["<bos> " + caption(int(rng.integers(10)), LM_TEMPLATES[int(rng.integers(len(LM_TEMPLATES)))])
            + " <eos>" for _ in range(n_docs)]


def train_caption_lm(lm: GPT, docs: torch.Tensor, steps: int, batch_size: int = 32, lr: float = 3e-3,
                     seed: int = 0) -> list[float]:
    """Next-token training on whole documents (B, T) padded with 0 (padding ignored): the LM never sees text from
    another document before a caption, so what precedes a caption is always of its class."""
    gen = torch_generator(seed)
    opt = torch.optim.AdamW(lm.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    losses = []
    lm.train()
    for _ in range(steps):
        x = docs[torch.randint(len(docs), (batch_size,), generator=gen)]           # (B, T)
        logits = lm(x[:, :-1])
        target = x[:, 1:].masked_fill(x[:, 1:] == 0, IGNORE_INDEX)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=IGNORE_INDEX)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def caption_lm_loss(model: GPT, prefix: torch.Tensor, text_ids: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy of the text after an embedded prefix (B, P, D); image positions are ignored."""
    inputs, _, labels = build_multimodal_batch(prefix, text_ids, model.tok_emb)
    logits = lm_logits_from_embeddings(model, inputs)                            # (B, P+T, V)
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                           ignore_index=IGNORE_INDEX)


def freeze(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        p.requires_grad_(False)
    return module.eval()


def train_connector(connector: nn.Module, lm: GPT, Z_v: torch.Tensor, labels: torch.Tensor, tok: WordTokenizer,
                    steps: int, batch_size: int = 64, lr: float = 3e-3, seed: int = 0) -> list[float]:
    """Stage 1: only ``connector`` (vision features (n, P, d_v) -> LM embeddings) learns; LM and features are frozen.

    Each step pairs image i with a caption of its class from a random template of :data:`LM_TEMPLATES`, minus its
    first word: [image; "7 , the digit <eos>"]. The loss covers the text only (image positions are -100)."""
    rng = numpy_rng(seed)
    opt = torch.optim.AdamW([p for p in connector.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    caps = {c: tok.batch([caption(c, t).split(" ", 1)[1] + " <eos>" for t in LM_TEMPLATES], length=7)
            for c in range(10)}
    losses = []
    for _ in range(steps):
        idx = rng.choice(len(Z_v), batch_size, replace=False)
        which = rng.integers(0, len(LM_TEMPLATES), batch_size)
        text = torch.stack([caps[int(labels[i])][w] for i, w in zip(idx, which)])  # (B, 8)
        loss = caption_lm_loss(lm, connector(Z_v[torch.as_tensor(idx)]), text)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def caption_accuracy(connector: nn.Module, lm: GPT, Z_v: torch.Tensor, labels: torch.Tensor, tok: WordTokenizer) -> float:
    """Fraction of images for which the LM's greedy first word after the image tokens names the right class (as a
    word or as a numeral)."""
    nxt = lm_logits_from_embeddings(lm, connector(Z_v))[:, -1].argmax(-1)          # (B,)
    numeral = torch.tensor([tok.index[str(int(c))] for c in labels])
    return float((nxt == numeral).double().mean())


def trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class QFormerConnector(nn.Module):
    """Learned queries (M, d_q) and :func:`qformer`, then a linear map to the LM width: always M LM tokens."""

    def __init__(self, n_queries: int, d_vision: int, d_model: int, d_attn: int = 32):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(n_queries, d_attn) / math.sqrt(d_attn))
        self.W_q = nn.Parameter(torch.randn(d_attn, d_attn) / math.sqrt(d_attn))
        self.W_k = nn.Parameter(torch.randn(d_vision, d_attn) / math.sqrt(d_vision))
        self.W_v = nn.Parameter(torch.randn(d_vision, d_attn) / math.sqrt(d_vision))
        self.out = nn.Linear(d_attn, d_model)

    def forward(self, z: torch.Tensor) -> torch.Tensor:            # (B, N, d_vision) -> (B, M, d_model)
        return self.out(qformer(z, self.queries, (self.W_q, self.W_k, self.W_v)))

