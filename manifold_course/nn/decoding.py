r"""Decoding: temperature, top-k and top-p (nucleus) filtering, and speculative sampling.

**Filters** act on the logits $\ell \in \mathbb R^V$ of the next token, last axis (``(..., V)``); a removed token gets
the logit $-\infty$ (probability 0) and the softmax of what is left renormalises.

- temperature $T$: $\mathrm{softmax}(\ell / T)$; $T \to 0$ is greedy decoding, $T = 1$ the model, $T > 1$ flatter;
- top-k: keep the $k$ largest logits;
- top-p (Holtzman et al., "The Curious Case of Neural Text Degeneration", 2019, arXiv:1904.09751): keep the smallest
  set of most probable tokens whose total probability is $\ge p$ -- *including* the token that crosses $p$.

**Speculative sampling** (Leviathan, Kalman & Matias, "Fast Inference from Transformers via Speculative Decoding",
2023, arXiv:2211.17192; Chen et al., "Accelerating Large Language Model Decoding with Speculative Sampling", 2023,
arXiv:2302.01318). A cheap draft model proposes $x \sim q$; the target model, whose distribution is $p$, accepts it
with probability $\min(1, p(x)/q(x))$; on rejection it samples from the residual
$p_{res} = \max(0, p - q) / \sum\max(0, p - q)$. The output is distributed *exactly* as $p$:
$P(x) = q(x)\min(1, p(x)/q(x)) + (1 - \beta)\,p_{res}(x) = \min(p, q)(x) + \max(0, p - q)(x) = p(x)$, with acceptance
rate $\beta = \sum_x \min(p(x), q(x)) = 1 - \mathrm{TV}(p, q)$. With $\gamma$ drafted tokens per round and i.i.d.
acceptance $\alpha$, a round yields $(1 - \alpha^{\gamma + 1})/(1 - \alpha)$ tokens in expectation (Leviathan eq. 1).
"""

from __future__ import annotations

import torch


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    if temperature <= 0:
        raise ValueError("temperature must be > 0 (use argmax for greedy decoding)")
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest logits of the last axis, set the others to -inf (ties at the k-th value are kept)."""
    k = min(k, logits.shape[-1])
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]                 # (..., 1) the k-th largest logit
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    r"""Keep the smallest set of most probable tokens with total probability $\ge p$; others get -inf.

    A token is kept when the probability mass of the tokens *strictly more probable* than it (in sorted order) is
    $< p$: so the token that crosses $p$ is kept, and the most probable token always is.
    """
    if p >= 1.0:
        return logits.clone()                                             # the whole vocabulary
    probs = torch.softmax(logits, dim=-1)
    sorted_p, order = torch.sort(probs, dim=-1, descending=True)          # (..., V)
    mass_before = torch.cumsum(sorted_p, dim=-1) - sorted_p               # mass of the tokens ranked above each one
    keep_sorted = mass_before < p
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)  # back to vocabulary order
    return logits.masked_fill(~keep, float("-inf"))


def filtered_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None) -> torch.Tensor:
    """Probabilities after temperature, then top-k, then top-p (the order Hugging Face and our GPT use)."""
    z = apply_temperature(logits, temperature)
    if top_k is not None:
        z = top_k_filter(z, top_k)
    if top_p is not None:
        z = top_p_filter(z, top_p)
    return torch.softmax(z, dim=-1)


# ---------------------------------------------------------------- speculative sampling


def residual_distribution(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    r"""$\max(0, p - q)$ normalised over the last axis; where $p = q$ (nothing is ever rejected) it returns $p$."""
    r = (p - q).clamp(min=0)
    z = r.sum(dim=-1, keepdim=True)
    return torch.where(z > 0, r / z.clamp(min=torch.finfo(p.dtype).tiny), p)


def speculative_sample(p: torch.Tensor, q: torch.Tensor, draft_token: int, u: float, u_residual: float) -> int:
    r"""One accept/reject step. Accept the draft when $u < p(x)/q(x)$, else return the inverse-CDF sample of the
    residual at $u_{res}$: the smallest index $i$ with $\sum_{j \le i} p_{res}(j) > u_{res}$.

    ``p`` and ``q`` are (V,) probabilities, ``draft_token`` was drawn from ``q`` (so ``q[x] > 0``), ``u`` and
    ``u_residual`` are uniform on [0, 1).
    """
    if u < float(p[draft_token] / q[draft_token]):
        return int(draft_token)
    cdf = torch.cumsum(residual_distribution(p, q), dim=-1)
    idx = int(torch.searchsorted(cdf, torch.tensor([u_residual], dtype=cdf.dtype), right=True)[0])
    return min(idx, p.shape[-1] - 1)                                     # guard against cdf[-1] = 1 - 1e-16


def speculative_output_distribution(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    r"""Exact law of one accept/reject round: $q\min(1, p/q) + (1 - \beta)\,p_{res}$ (which equals $p$)."""
    ratio = torch.where(q > 0, p / q.clamp(min=torch.finfo(q.dtype).tiny), torch.ones_like(p))
    accepted = q * ratio.clamp(max=1.0)                                  # P(draft x and accepted) = min(p, q)
    beta = accepted.sum(dim=-1, keepdim=True)
    return accepted + (1 - beta) * residual_distribution(p, q)


def acceptance_rate(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    r"""$\beta = \sum_x \min(p(x), q(x)) = 1 - \mathrm{TV}(p, q)$ over the last axis."""
    return torch.minimum(p, q).sum(dim=-1)


def expected_tokens_per_round(alpha: float, gamma: int) -> float:
    r"""$(1 - \alpha^{\gamma+1}) / (1 - \alpha)$: accepted drafts plus the one token the target always adds."""
    if alpha >= 1.0:
        return float(gamma + 1)
    return (1 - alpha ** (gamma + 1)) / (1 - alpha)


def expected_speedup(alpha: float, gamma: int, cost_ratio: float) -> float:
    r"""Leviathan et al.'s walltime improvement $\frac{1 - \alpha^{\gamma+1}}{(1 - \alpha)(\gamma c + 1)}$, where $c$
    is the cost of one draft call relative to one target call (the target checks all $\gamma$ drafts in one call)."""
    return expected_tokens_per_round(alpha, gamma) / (gamma * cost_ratio + 1)


@torch.no_grad()
def speculative_decode(target, draft, idx: torch.Tensor, max_new_tokens: int, gamma: int = 4,
                       generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
    """Speculative decoding with two language models ``logits = model(idx)`` (batch 1, no cache, temperature 1).

    Each round the draft proposes ``gamma`` tokens one by one, the target scores them all in **one** forward pass,
    and the accept/reject rule keeps a prefix; a rejected position is resampled from the residual, and if all are
    accepted the target adds one token from its own distribution. Returns the sequence (1, T + new) and statistics.
    """
    assert idx.shape[0] == 1, "batch 1 only"
    stats = {"rounds": 0, "drafted": 0, "accepted": 0, "target_calls": 0, "draft_calls": 0, "acceptance_probs": []}
    start = idx.shape[1]
    while idx.shape[1] - start < max_new_tokens:
        n = min(gamma, max_new_tokens - (idx.shape[1] - start))
        ctx, qs = idx, []
        for _ in range(n):                                               # the draft proposes n tokens
            q = torch.softmax(draft(ctx)[0, -1].double(), dim=-1)
            tok = torch.multinomial(q, 1, generator=generator)
            qs.append(q)
            ctx = torch.cat([ctx, tok.view(1, 1)], dim=1)
            stats["draft_calls"] += 1
        p_all = torch.softmax(target(ctx)[0, -n - 1:].double(), dim=-1)   # (n + 1, V): one target call
        stats["target_calls"] += 1
        stats["rounds"] += 1
        new = []
        for i in range(n):
            x = int(ctx[0, idx.shape[1] + i])
            stats["acceptance_probs"].append(float(acceptance_rate(p_all[i], qs[i])))
            u, u2 = torch.rand(2, generator=generator, dtype=torch.float64).tolist()
            y = speculative_sample(p_all[i], qs[i], x, u, u2)
            stats["drafted"] += 1
            new.append(y)
            if y != x:                                                   # rejected: the residual sample ends the round
                break
            stats["accepted"] += 1
        else:
            new.append(int(torch.multinomial(p_all[n], 1, generator=generator)))   # bonus token from the target
        idx = torch.cat([idx, torch.tensor([new], dtype=idx.dtype)], dim=1)
    return idx[:, : start + max_new_tokens], stats
