"""Actions as tokens (RT-2) and a behaviour-cloned action-token policy on a 2-D reach task with language goals.

RT-1 (A. Brohan et al., "RT-1: Robotics Transformer for Real-World Control at Scale", 2022, arXiv:2212.06817)
and RT-2 (A. Brohan et al., "RT-2: Vision-Language-Action Models Transfer Web Knowledge to Robotic Control", 2023,
arXiv:2307.15818) discretise every continuous action dimension into 256 uniform bins and let a transformer emit the
bin indices as tokens; RT-2 reuses a vision-language model's vocabulary for them (OpenVLA, M. J. Kim et al., 2024,
arXiv:2406.09246, overwrites the last 256 ids of the Llama tokenizer). With Delta = (high - low) / n:

    b(a) = clip(floor((a - low) / (high - low) * n), 0, n - 1),      a_hat(b) = low + (b + 1/2) Delta,

so |a - a_hat(b(a))| <= Delta / 2 on [low, high]. An even n has no bin centred on 0: the smallest step is Delta / 2.

The task (ours, in the spirit of RT-2's language-conditioned pick and place): a point agent in the unit square,
four coloured landmarks, an instruction "go to the red square". The scripted expert steps straight at the named
landmark, at most ``max_step`` per axis; an episode succeeds if the agent ends within ``radius`` of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from manifold_course.seeding import manual_seed, torch_generator

# ---------------------------------------------------------------- tokens


def bin_width(low, high, n_bins: int):
    """Delta = (high - low) / n_bins."""
    return (np.asarray(high, dtype=np.float64) - np.asarray(low, dtype=np.float64)) / n_bins


def tokenize_action(a, low, high, n_bins: int) -> np.ndarray:
    """Bin indices (int64, the shape of ``a``): clip(floor((a - low) / (high - low) * n_bins), 0, n_bins - 1)."""
    a, low, high = (np.asarray(v, dtype=np.float64) for v in (a, low, high))
    return np.clip(np.floor((a - low) / (high - low) * n_bins), 0, n_bins - 1).astype(np.int64)


def detokenize_action(bins, low, high, n_bins: int) -> np.ndarray:
    """Bin centres (float64): low + (b + 1/2) Delta."""
    return np.asarray(low, dtype=np.float64) + (np.asarray(bins, dtype=np.float64) + 0.5) * bin_width(low, high, n_bins)


def action_tokens_to_vocab(bins, vocab_size: int, n_bins: int) -> np.ndarray:
    """Bin b -> token id vocab_size - n_bins + b: a bijection of {0..n_bins-1} onto the last n_bins ids."""
    b = np.asarray(bins, dtype=np.int64)
    if b.size and (b.min() < 0 or b.max() >= n_bins):
        raise ValueError(f"bins must lie in [0, {n_bins - 1}]")
    return vocab_size - n_bins + b


def vocab_to_action_tokens(ids, vocab_size: int, n_bins: int) -> np.ndarray:
    """The inverse of :func:`action_tokens_to_vocab`."""
    b = np.asarray(ids, dtype=np.int64) - (vocab_size - n_bins)
    if b.size and (b.min() < 0 or b.max() >= n_bins):
        raise ValueError(f"ids must lie in the last {n_bins} of the vocabulary")
    return b


# ---------------------------------------------------------------- the reach task

COLOURS = ("red", "green", "blue", "yellow")
TEMPLATES = ("go to the {} square", "move to the {} square", "reach the {} square")
VOCAB = tuple(sorted({w for t in TEMPLATES for c in COLOURS for w in t.format(c).split()}))


@dataclass(frozen=True)
class ReachConfig:
    max_step: float = 0.1       # |action| per axis; the action range is [-max_step, max_step]
    radius: float = 0.02        # success: final distance to the named landmark below this
    horizon: int = 25           # steps per episode (the farthest landmark needs at most 10)
    min_sep: float = 0.2        # landmarks at least this far apart


@dataclass
class Scenes:
    """A batch of episodes' initial conditions: start (n, 2), landmarks (n, 4, 2), goal index (n,), instructions."""
    start: np.ndarray
    landmarks: np.ndarray
    goal: np.ndarray
    instructions: list[str]

    @property
    def target(self) -> np.ndarray:                     # (n, 2), the named landmark
        return self.landmarks[np.arange(len(self.goal)), self.goal]


def sample_scenes(n: int, rng: np.random.Generator, cfg: ReachConfig = ReachConfig()) -> Scenes:
    marks = np.empty((n, len(COLOURS), 2))
    for i in range(n):                                   # rejection sampling of well-separated landmarks
        while True:
            p = rng.uniform(0.1, 0.9, (len(COLOURS), 2))
            d = np.linalg.norm(p[:, None] - p[None], axis=-1) + np.eye(len(COLOURS))
            if d.min() >= cfg.min_sep:
                marks[i] = p
                break
    goal = rng.integers(0, len(COLOURS), n)
    words = [TEMPLATES[int(t)].format(COLOURS[int(g)]) for t, g in zip(rng.integers(0, len(TEMPLATES), n), goal)]
    return Scenes(rng.uniform(0.0, 1.0, (n, 2)), marks, goal, words)


def bag_of_words(texts: list[str]) -> np.ndarray:
    """(n, |VOCAB|) word counts; unknown words are ignored."""
    out = np.zeros((len(texts), len(VOCAB)))
    for i, t in enumerate(texts):
        for w in t.split():
            if w in VOCAB:
                out[i, VOCAB.index(w)] += 1
    return out


def observe(pos: np.ndarray, scenes: Scenes) -> np.ndarray:
    """Policy input (n, 8 + |VOCAB|) float32: each landmark relative to the agent, and the instruction's words."""
    rel = (scenes.landmarks - pos[:, None, :]).reshape(len(pos), -1)
    return np.concatenate([rel, bag_of_words(scenes.instructions)], 1).astype(np.float32)


def expert_action(pos: np.ndarray, scenes: Scenes, cfg: ReachConfig = ReachConfig()) -> np.ndarray:
    """The scripted expert: straight at the named landmark, clipped to max_step per axis (it stops exactly there)."""
    return np.clip(scenes.target - pos, -cfg.max_step, cfg.max_step)


def rollout(policy, scenes: Scenes, cfg: ReachConfig = ReachConfig(), noise: float = 0.0,
            rng: np.random.Generator | None = None):
    """Run ``policy(pos, scenes) -> actions (n, 2)`` for ``horizon`` steps; returns (final positions, visited states).

    Actions are clipped to the action range; ``noise`` adds Gaussian perturbations to the *executed* action (used
    when collecting demonstrations, so that the data also cover states slightly off the expert's path)."""
    pos = scenes.start.copy()
    visited = []
    for _ in range(cfg.horizon):
        visited.append(pos.copy())
        a = np.clip(policy(pos, scenes), -cfg.max_step, cfg.max_step)
        if noise:
            a = a + noise * rng.standard_normal(a.shape)
        pos = np.clip(pos + a, 0.0, 1.0)
    return pos, visited


def success(final: np.ndarray, scenes: Scenes, cfg: ReachConfig = ReachConfig()) -> np.ndarray:
    return np.linalg.norm(final - scenes.target, axis=1) < cfg.radius


def quantised(policy, n_bins: int, cfg: ReachConfig = ReachConfig()):
    """The policy whose actions go through tokenize -> detokenize (what an action-token model can at best emit)."""
    lo, hi = -cfg.max_step, cfg.max_step
    return lambda pos, scenes: detokenize_action(tokenize_action(policy(pos, scenes), lo, hi, n_bins), lo, hi, n_bins)


def collect_demonstrations(n_episodes: int, rng: np.random.Generator, cfg: ReachConfig = ReachConfig(),
                           noise: float = 0.03):
    """(observations (N, 8 + |VOCAB|) float32, expert actions (N, 2)) from noisy expert rollouts, every step labelled."""
    scenes = sample_scenes(n_episodes, rng, cfg)
    _, visited = rollout(lambda p, s: expert_action(p, s, cfg), scenes, cfg, noise=noise, rng=rng)
    obs = np.concatenate([observe(p, scenes) for p in visited])
    acts = np.concatenate([expert_action(p, scenes, cfg) for p in visited])
    return obs, acts


# ---------------------------------------------------------------- the action-token policy


class TokenPolicy(nn.Module):
    """Language-conditioned action-token policy: the instruction picks a landmark, an MLP emits the action's bins.

    ``pick``: a linear map from the instruction's bag of words to one score per landmark; softmax over the
    landmarks gives attention weights, and the attended relative position (in units of ``max_step``) goes through
    an MLP to ``n_dims`` categorical distributions over ``n_bins`` (RT-1 conditions its vision on the instruction
    with FiLM; here a single attention step plays that role).
    """

    def __init__(self, n_bins: int, n_objects: int = len(COLOURS), n_words: int = len(VOCAB), n_dims: int = 2,
                 hidden: int = 64, max_step: float = ReachConfig.max_step):
        super().__init__()
        self.n_bins, self.n_dims, self.n_objects, self.max_step = n_bins, n_dims, n_objects, max_step
        self.pick = nn.Linear(n_words, n_objects)
        self.net = nn.Sequential(nn.Linear(n_dims, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, n_dims * n_bins))

    def attention(self, obs: torch.Tensor) -> torch.Tensor:     # (B, n_in) -> (B, n_objects)
        return torch.softmax(self.pick(obs[:, self.n_objects * self.n_dims:]), -1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:       # (B, n_in) -> (B, n_dims, n_bins) logits
        rel = obs[:, :self.n_objects * self.n_dims].view(-1, self.n_objects, self.n_dims) / self.max_step
        goal = (self.attention(obs)[..., None] * rel).sum(1)   # (B, n_dims): the named landmark, attended
        return self.net(goal).view(-1, self.n_dims, self.n_bins)


def train_bc(obs: np.ndarray, actions: np.ndarray, n_bins: int, seed: int, cfg: ReachConfig = ReachConfig(),
             steps: int = 300, batch_size: int = 128, lr: float = 1e-2):
    """Behaviour cloning: cross-entropy of the expert's action tokens, summed over dimensions. Returns (model, losses)."""
    manual_seed(seed)
    model = TokenPolicy(n_bins, max_step=cfg.max_step)
    x = torch.as_tensor(obs)
    y = torch.as_tensor(tokenize_action(actions, -cfg.max_step, cfg.max_step, n_bins))    # (N, 2) bins
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch_generator(seed)
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch_size,), generator=g)
        logits = model(x[idx])                                                           # (B, 2, n_bins)
        loss = nn.functional.cross_entropy(logits.reshape(-1, n_bins), y[idx].reshape(-1)) * model.n_dims
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model, losses


def token_policy(model: TokenPolicy, cfg: ReachConfig = ReachConfig()):
    """Greedy decoding: the most likely bin per dimension, detokenized to a continuous action."""

    @torch.no_grad()
    def act(pos, scenes):
        bins = model(torch.as_tensor(observe(pos, scenes))).argmax(-1).numpy()
        return detokenize_action(bins, -cfg.max_step, cfg.max_step, model.n_bins)

    return act
