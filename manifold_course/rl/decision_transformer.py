r"""The Decision Transformer: reinforcement learning as conditional sequence modelling (section 5.11).

L. Chen, K. Lu, A. Rajeswaran, K. Lee, A. Grover, M. Laskin, P. Abbeel, A. Srinivas, I. Mordatch, "Decision
Transformer: Reinforcement Learning via Sequence Modeling", 2021, arXiv:2106.01345.

An episode with rewards $r_1, \dots, r_T$ is written as the token sequence
$(\hat R_1, s_1, a_1, \hat R_2, s_2, a_2, \dots)$ with the **returns-to-go** $\hat R_t = \sum_{t'\ge t} r_{t'}$
(undiscounted). A causal transformer reads it and predicts $a_t$ from the output at the token $s_t$, which sees
$\hat R_{\le t}, s_{\le t}, a_{<t}$ and nothing later. Training is plain supervised learning (cross-entropy on the
logged actions, no Bellman backup); at test time one writes the return one *wants* as $\hat R_1$ and, after each
reward, $\hat R_{t+1} = \hat R_t - r_t$.

Token layout used here: each token is a vector ``[type one-hot (3), rtg (1), state (d_s), action (d_a)]`` with
zeros in the slots of the other types, so that one ``nn.Linear`` embeds the three kinds of token (it equals three
separate embeddings, each with its own bias). The transformer blocks are the course's own
(:class:`manifold_course.nn.gpt.Block`, causal attention, Pre-Norm); positions enter as a learned embedding of the
*timestep* $t$, shared by the three tokens of a step, as in the paper.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from manifold_course.nn.attention import attention_mask
from manifold_course.nn.gpt import Block, GPTConfig
from manifold_course.nn.norms import RMSNorm
from manifold_course.seeding import torch_generator


def returns_to_go(rewards) -> np.ndarray:
    r"""$\hat R_t = \sum_{t' \ge t} r_{t'}$ along the last axis (float64); $\hat R_1$ is the episode's return."""
    r = np.asarray(rewards, dtype=np.float64)
    return np.flip(np.cumsum(np.flip(r, -1), -1), -1).copy()


def update_rtg(rtg, r):
    r"""$\hat R_{t+1} = \hat R_t - r_t$: the return still to collect after reward ``r`` arrived."""
    return rtg - r


def interleave_dt(rtg: torch.Tensor, states: torch.Tensor, actions: torch.Tensor):
    r"""Tokens, timesteps and attention mask of the sequence $(\hat R_1, s_1, a_1, \dots, \hat R_T, s_T, a_T)$.

    ``rtg`` (B, T), ``states`` (B, T, d_s), ``actions`` (B, T, d_a) (one-hot for discrete actions), all float.
    Returns ``tokens`` (B, 3T, 4 + d_s + d_a) laid out as in the module docstring (token $3t$ is $\hat R_t$,
    $3t+1$ is $s_t$, $3t+2$ is $a_t$, counting $t$ from 0), ``timesteps`` (B, 3T) int64 ($t$ for the three tokens
    of step $t$) and ``mask`` (3T, 3T) bool, True where token $i$ may attend to token $j$ ($j \le i$): the
    prediction of $a_t$, read at token $3t+1$, then sees $\hat R_{\le t}, s_{\le t}, a_{<t}$ only.
    """
    B, T = rtg.shape
    d_s, d_a = states.shape[-1], actions.shape[-1]
    width = 4 + d_s + d_a
    tok = torch.zeros(B, T, 3, width, dtype=states.dtype)
    tok[:, :, 0, 0] = 1.0
    tok[:, :, 0, 3] = rtg
    tok[:, :, 1, 1] = 1.0
    tok[:, :, 1, 4:4 + d_s] = states
    tok[:, :, 2, 2] = 1.0
    tok[:, :, 2, 4 + d_s:] = actions
    timesteps = torch.arange(T).repeat_interleave(3).expand(B, 3 * T).clone()
    return tok.reshape(B, 3 * T, width), timesteps, attention_mask(3 * T, 3 * T)


class DecisionTransformer(nn.Module):
    """A tiny Decision Transformer for discrete actions: token embedding + timestep embedding, ``n_layers`` course
    GPT blocks, RMSNorm, and a linear action head read at the state tokens."""

    def __init__(self, state_dim: int, n_actions: int, max_timestep: int, d_model: int = 32, n_layers: int = 2,
                 n_heads: int = 2, rtg_scale: float = 1.0):
        super().__init__()
        self.state_dim, self.n_actions, self.rtg_scale = state_dim, n_actions, rtg_scale
        cfg = GPTConfig(vocab_size=1, d_model=d_model, n_layers=n_layers, n_heads=n_heads, pos="none")
        self.embed = nn.Linear(4 + state_dim + n_actions, d_model)
        with torch.no_grad():                           # the rtg column as nn.Linear(1, d) would start: U(-1, 1)
            self.embed.weight[:, 3].uniform_(-1.0, 1.0)
        self.time_emb = nn.Embedding(max_timestep, d_model)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(n_layers)])
        self.norm = RMSNorm(d_model)
        self.head = nn.Linear(d_model, n_actions)

    def forward(self, rtg: torch.Tensor, states: torch.Tensor, actions: torch.Tensor,
                start: torch.Tensor | None = None) -> torch.Tensor:
        """Action logits (B, T, n_actions): entry t is the prediction of $a_t$ from the token $s_t$.
        ``actions`` (B, T) int64; the last one may be a placeholder (the model never sees $a_t$ when predicting it).
        ``start`` (B,): the episode timestep of the window's first step (default 0)."""
        onehot = F.one_hot(actions.clamp(min=0), self.n_actions).to(states.dtype)
        tokens, timesteps, _ = interleave_dt(rtg / self.rtg_scale, states, onehot)
        if start is not None:
            timesteps = (timesteps + start[:, None]).clamp(max=self.time_emb.num_embeddings - 1)
        x = self.embed(tokens) + self.time_emb(timesteps)
        positions = torch.arange(x.shape[1])
        for block in self.blocks:                       # causal attention inside: the mask of interleave_dt
            x, _ = block(x, positions)
        return self.head(self.norm(x[:, 1::3]))


def train_dt(model: DecisionTransformer, rtg: torch.Tensor, states: torch.Tensor, actions: torch.Tensor,
             lengths: torch.Tensor, steps: int = 300, batch_size: int = 32, context: int = 5, lr: float = 3e-3,
             seed: int = 0) -> list[float]:
    """Cross-entropy on the logged actions of padded episodes (rtg (N, T), states (N, T, d_s), actions (N, T),
    ``lengths`` (N,)), on random windows of ``context`` steps (the paper's K); returns the loss of every step.
    Padding steps (t >= length) carry no loss."""
    gen = torch_generator(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    T = rtg.shape[1]
    pad = lambda x: torch.cat([x, torch.zeros((x.shape[0], context) + x.shape[2:], dtype=x.dtype)], 1)
    rtg_p, states_p, actions_p = pad(rtg), pad(states), pad(actions)
    valid = pad(torch.arange(T)[None, :] < lengths[:, None])
    window = torch.arange(context)
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, rtg.shape[0], (batch_size,), generator=gen)
        room = (lengths[idx] - context + 1).clamp(min=1)                        # windows inside the episode
        start = (torch.rand(batch_size, generator=gen) * room).long()
        cols = start[:, None] + window[None, :]
        rows = idx[:, None]
        logits = model(rtg_p[rows, cols], states_p[rows, cols], actions_p[rows, cols], start)
        m = valid[rows, cols]
        loss = F.cross_entropy(logits[m], actions_p[rows, cols][m])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def rollout_dt(model: DecisionTransformer, env, target_return: float, encode, max_steps: int,
               context: int = 5, seed: int = 0) -> float:
    """Run one greedy episode conditioned on ``target_return``; ``encode(obs)`` gives the state vector. Returns
    the achieved (undiscounted) return. The model sees the last ``context`` steps."""
    model.eval()
    obs, _ = env.reset(seed=seed)
    rtgs, states, acts, total = [float(target_return)], [encode(obs)], [0], 0.0
    for t in range(max_steps):
        k = max(0, len(acts) - context)
        logits = model(torch.tensor([rtgs[k:]]), torch.stack(states[k:])[None], torch.tensor([acts[k:]]),
                       torch.tensor([k]))
        a = int(logits[0, -1].argmax())
        acts[-1] = a
        obs, r, terminated, truncated, _ = env.step(a)
        total += float(r)
        if terminated or truncated:
            break
        rtgs.append(update_rtg(rtgs[-1], float(r)))
        states.append(encode(obs))
        acts.append(0)
    model.train()
    return total
