r"""A small GPT assembled from the pieces of chapter 2.1: attention, positions, feed-forward, RMSNorm, KV cache.

The model (A. Radford et al., "Language Models are Unsupervised Multitask Learners", 2019; the LLaMA recipe of
H. Touvron et al., "LLaMA: Open and Efficient Foundation Language Models", 2023, arXiv:2302.13971) is
token embedding -> n_layers blocks -> final norm -> logits (tied to the embedding). A block is

- **Pre-Norm** (R. Xiong et al., "On Layer Normalization in the Transformer Architecture", ICML 2020,
  arXiv:2002.04745): $x \leftarrow x + \mathrm{Attn}(\mathrm{N}(x))$, $x \leftarrow x + \mathrm{MLP}(\mathrm{N}(x))$:
  the residual stream is an untouched sum, so gradients reach every layer through the identity;
- **Post-Norm** (the original transformer): $x \leftarrow \mathrm{N}(x + \mathrm{Attn}(x))$,
  $x \leftarrow \mathrm{N}(x + \mathrm{MLP}(x))$: every layer's gradient passes through all later norms.

N is RMSNorm (:class:`manifold_course.nn.norms.RMSNorm`). Shapes: ``B`` batch, ``T`` time, ``D`` width,
``V`` vocabulary. The KV cache is a plain list with one ``(k, v)`` pair per layer, each (B, G, T_cached, d).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from manifold_course.data import lm_batch
from manifold_course.nn.attention import GroupedQueryAttention
from manifold_course.nn.feedforward import feedforward
from manifold_course.nn.norms import RMSNorm
from manifold_course.nn.positions import sinusoidal_embedding
from manifold_course.seeding import torch_generator

POSITIONS = ("rope", "learned", "sinusoidal", "alibi", "none")


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int
    block_size: int = 64              # training context length (and the table size of learned positions)
    d_model: int = 64                 # D
    n_layers: int = 2                 # L
    n_heads: int = 4                  # H query heads
    n_kv_heads: int | None = None     # G key/value heads: None = H (MHA); 1 = MQA; in between = GQA
    pos: str = "rope"                 # "rope" | "learned" | "sinusoidal" | "alibi" | "none"
    rope_base: float = 10000.0
    rope_scale: float = 1.0           # position interpolation: RoPE positions are divided by this
    mlp: str = "swiglu"               # "swiglu" | "gelu"
    norm: str = "pre"                 # "pre" | "post"
    window: int | None = None         # sliding-window attention width (None = full causal)
    tie_weights: bool = True          # logits use the token embedding matrix


class Block(nn.Module):
    """One transformer block, Pre-Norm or Post-Norm; ``forward(x, positions, cache) -> (x, (k, v))``."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.prenorm = cfg.norm == "pre"
        self.norm1 = RMSNorm(cfg.d_model)
        self.attn = GroupedQueryAttention(cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.pos if cfg.pos in
                                          ("rope", "alibi") else "none", cfg.rope_base, cfg.rope_scale, cfg.window)
        self.norm2 = RMSNorm(cfg.d_model)
        self.mlp = feedforward(cfg.mlp, cfg.d_model)

    def forward(self, x: torch.Tensor, positions: torch.Tensor, cache: tuple | None = None):
        if self.prenorm:
            a, new_cache = self.attn(self.norm1(x), positions, cache)
            x = x + a                                           # x <- x + Attn(N(x))
            x = x + self.mlp(self.norm2(x))                     # x <- x + MLP(N(x))
        else:
            a, new_cache = self.attn(x, positions, cache)
            x = self.norm1(x + a)                               # x <- N(x + Attn(x))
            x = self.norm2(x + self.mlp(x))                     # x <- N(x + MLP(x))
        return x, new_cache


class PreNormBlock(Block):
    """The Pre-Norm block of the exercise: ``PreNormBlock(d_model, n_heads)(x)`` with RoPE, SwiGLU, positions 0..T-1."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__(GPTConfig(vocab_size=1, d_model=d_model, n_heads=n_heads, norm="pre"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:          # (B, T, D) -> (B, T, D)
        return super().forward(x, torch.arange(x.shape[1]))[0]


class GPT(nn.Module):
    """A decoder-only transformer; see the module docstring and :class:`GPTConfig`."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        if cfg.pos not in POSITIONS:
            raise ValueError(f"unknown position encoding {cfg.pos!r}; use one of {POSITIONS}")
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        if cfg.pos == "learned":
            self.pos_emb = nn.Embedding(cfg.block_size, cfg.d_model)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        self.norm_f = RMSNorm(cfg.d_model) if cfg.norm == "pre" else nn.Identity()  # post-norm output is normed
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_weights:
            self.lm_head.weight = self.tok_emb.weight
        self.apply(self._init_weights)
        for name, p in self.named_parameters():                 # GPT-2: residual outputs scaled by 1/sqrt(2L)
            if name.endswith(("attn.wo.weight", "mlp.w2.weight", "mlp.w_down.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def num_params(self) -> int:
        """Number of distinct parameters (a tied matrix counts once)."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor | None, kv_cache: list | None = None, start_pos: int = 0,
                return_hidden: bool = False, inputs_embeds: torch.Tensor | None = None):
        """idx (B, T) int64 -> logits (B, T, V) [, hidden: n_layers + 1 tensors (B, T, D)].

        With ``kv_cache`` a list (``[]`` on the first call), layer i stores / extends its (k, v) in ``kv_cache[i]``;
        ``start_pos`` is the absolute position of ``idx[:, 0]`` (the number of cached tokens). ``inputs_embeds``
        (B, T, D), with ``idx=None``, replaces the token embeddings (a LLaVA-style model feeds projected image
        features there); positions are added as for tokens.
        """
        if (idx is None) == (inputs_embeds is None):
            raise ValueError("give the token ids idx or inputs_embeds, not both")
        x = self.tok_emb(idx) if inputs_embeds is None else inputs_embeds             # (B, T, D)
        B, T = x.shape[:2]
        positions = torch.arange(start_pos, start_pos + T, device=x.device)      # (T,)
        if self.cfg.pos == "learned":
            if start_pos + T > self.cfg.block_size:
                raise ValueError(f"learned positions stop at block_size = {self.cfg.block_size}; got position "
                                 f"{start_pos + T - 1}")
            x = x + self.pos_emb(positions)
        elif self.cfg.pos == "sinusoidal":
            x = x + sinusoidal_embedding(T, self.cfg.d_model, start=start_pos).to(x.device, x.dtype)
        hidden = [x]
        for i, block in enumerate(self.blocks):
            cache = kv_cache[i] if kv_cache is not None and i < len(kv_cache) else None
            x, new_cache = block(x, positions, cache)
            if kv_cache is not None:
                if i < len(kv_cache):
                    kv_cache[i] = new_cache
                else:
                    kv_cache.append(new_cache)
            hidden.append(x)
        logits = self.lm_head(self.norm_f(x))                                    # (B, T, V)
        return (logits, hidden) if return_hidden else logits

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, use_cache: bool = True,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample ``max_new_tokens`` tokens after idx (B, T) -> (B, T + new). ``temperature=0`` is greedy.

        The model sees at most the last ``block_size`` tokens. With ``use_cache`` the prompt is processed once and
        every later step feeds one token; once the sequence is longer than ``block_size`` the window slides and the
        step falls back to a full forward on the last ``block_size`` tokens, so both paths give the same tokens.
        """
        was_training = self.training
        self.eval()
        bs = self.cfg.block_size
        cache: list | None = None
        for _ in range(max_new_tokens):
            if use_cache and idx.shape[1] <= bs:
                if cache is None:
                    cache = []
                    logits = self(idx, kv_cache=cache, start_pos=0)
                else:
                    logits = self(idx[:, -1:], kv_cache=cache, start_pos=idx.shape[1] - 1)
            else:
                logits = self(idx[:, -bs:])
            logits = logits[:, -1, :]                                             # (B, V)
            if temperature == 0:
                nxt = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None:
                    kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                if top_p is not None:                                             # nucleus: smallest set with mass >= p
                    sorted_logits, order = torch.sort(logits, descending=True)
                    probs = torch.softmax(sorted_logits, dim=-1)
                    drop = probs.cumsum(-1) - probs > top_p                       # mass *before* this token already > p
                    sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
                    logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
                nxt = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)   # (B, 1)
            idx = torch.cat([idx, nxt], dim=1)
        self.train(was_training)
        return idx


def train_gpt(model: GPT, ids: torch.Tensor, steps: int, batch_size: int = 32, lr: float = 3e-3, seed: int = 0,
              progress: bool = False, grad_clip: float | None = None, weight_decay: float = 0.0) -> list[float]:
    """AdamW on random ``lm_batch`` windows of ``model.cfg.block_size``; returns the training loss of every step.

    Constant learning rate, no warm-up and (by default) no gradient clipping, so that instabilities stay visible.
    """
    gen = torch_generator(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=weight_decay)
    model.train()
    losses: list[float] = []
    it = range(steps)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="train_gpt")
    for _ in it:
        x, y = lm_batch(ids, model.cfg.block_size, batch_size, gen)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def evaluate_loss(model: GPT, ids: torch.Tensor, n_batches: int = 20, batch_size: int = 32, seed: int = 0,
                  block_size: int | None = None) -> float:
    """Mean next-token cross-entropy (nats) over ``n_batches`` random windows of ``block_size`` (default the model's)."""
    block = model.cfg.block_size if block_size is None else block_size
    gen = torch_generator(seed)
    was_training = model.training
    model.eval()
    total = 0.0
    for _ in range(n_batches):
        x, y = lm_batch(ids, block, batch_size, gen)
        logits = model(x)
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)).item()
    model.train(was_training)
    return total / n_batches
