r"""AlphaZero-lite for tic-tac-toe: a policy-value network, PUCT search, self-play and training (section 5.9).

Silver et al. ("Mastering the game of Go without human knowledge", Nature 2017; "A general reinforcement learning
algorithm that masters chess, shogi, and Go through self-play", Science 2018, arXiv:1712.01815) replace MCTS's
random rollouts with a network $f_\theta(s) = (p, v)$: a prior $p$ over moves and a value $v \in [-1, 1]$ for the
player to move. The search selects by PUCT (after Rosin, "Multi-armed bandits with episode context", AMAI 2011)

$$a^* = \arg\max_a \Big[Q(s,a) + c_{puct}\,P(s,a)\,\frac{\sqrt{\sum_b N(s,b)}}{1 + N(s,a)}\Big],$$

evaluates each new leaf with $v$ instead of a rollout, and backs the value up with the negamax sign flip of
:func:`manifold_course.rl.mcts.backup`. Self-play records, at every move, the root's visit counts turned into a
policy $\pi(a) \propto N(s,a)^{1/\tau}$ and, at the end, the outcome $z$ for the player to move; the network is
trained on

$$\ell = (z - v)^2 - \pi^\top \log p + c\,\lVert\theta\rVert^2 .$$

Better network, better search, better data. Tic-tac-toe has 5478 positions, so while the network is fixed we
evaluate all of them in one batch and search with table look-ups (on Go one batches the leaves of many games).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from manifold_course.rl import tictactoe as ttt
from manifold_course.rl.mcts import backup
from manifold_course.seeding import manual_seed, numpy_rng, torch_generator

# ---------------------------------------------------------------- the pieces


def puct_select(P: np.ndarray, N: np.ndarray, Q: np.ndarray, c_puct: float) -> int:
    """argmax of ``Q + c_puct P sqrt(sum N) / (1 + N)`` (ties: the lowest index)."""
    N = np.asarray(N, dtype=np.float64)
    return int(np.argmax(np.asarray(Q) + c_puct * np.asarray(P) * np.sqrt(N.sum()) / (1.0 + N)))


def visits_to_policy(N: np.ndarray, tau: float) -> np.ndarray:
    """``pi(a) = N(a)^(1/tau) / sum_b N(b)^(1/tau)``, computed in logs (no overflow for large N, small tau).

    ``tau == 0`` is the limit: a one-hot on the most visited action, ties split evenly."""
    N = np.asarray(N, dtype=np.float64)
    if tau == 0:
        best = (N == N.max()).astype(np.float64)
        return best / best.sum()
    with np.errstate(divide="ignore"):
        logits = np.log(N) / tau
    w = np.exp(logits - logits.max())
    return w / w.sum()


def alphazero_loss(p_logits: torch.Tensor, v: torch.Tensor, pi: torch.Tensor, z: torch.Tensor,
                   params: list[torch.Tensor], c: float) -> torch.Tensor:
    """Mean over the batch of ``(z - v)^2 - sum_a pi_a log softmax(p_logits)_a``, plus ``c`` times the sum of the
    squares of every parameter."""
    value = ((z - v) ** 2).mean()
    policy = -(pi * torch.log_softmax(p_logits, -1)).sum(-1).mean()
    return value + policy + c * sum((p**2).sum() for p in params)


_GRID = np.arange(9).reshape(3, 3)
SYMMETRIES = np.stack([np.rot90(g, k).reshape(-1) for g in (_GRID, _GRID.T) for k in range(4)])
"""The 8 dihedral permutations of the cells: a transformed board is ``board[SYMMETRIES[k]]``."""


def dihedral_symmetries(board, policy) -> tuple[np.ndarray, np.ndarray]:
    """The 8 rotations and reflections of a board and, with the same permutation, of a policy over its cells:
    arrays (8, 9) each (row 0 the identity)."""
    b, p = np.asarray(board), np.asarray(policy)
    return b[SYMMETRIES], p[SYMMETRIES]


# ---------------------------------------------------------------- the network


def encode(boards) -> torch.Tensor:
    """(B, 18) float inputs from the mover's point of view: the mover's stones, then the opponent's."""
    b = np.asarray(boards, dtype=np.float32).reshape(-1, 9)
    b = b * np.where(b.sum(1, keepdims=True) == 0, 1.0, -1.0)   # the player to move becomes +1
    return torch.from_numpy(np.concatenate([b == 1, b == -1], 1).astype(np.float32))


class PolicyValueNet(nn.Module):
    """An MLP trunk with a policy head (9 logits) and a value head (tanh)."""

    def __init__(self, hidden: int = 64):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(18, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.policy, self.value = nn.Linear(hidden, 9), nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return self.policy(h), torch.tanh(self.value(h)).squeeze(-1)


@torch.no_grad()
def evaluate_all(net: PolicyValueNet) -> dict:
    """``{board: (prior over the legal moves (9,), value)}`` for every non-terminal position, in one batch."""
    boards = [b for b in ttt.all_positions() if not ttt.is_terminal(b)]
    logits, values = net(encode(boards))
    legal = torch.as_tensor(np.asarray(boards) == 0)
    priors = torch.softmax(logits.masked_fill(~legal, -torch.inf), -1).double().numpy()
    return {b: (p, float(v)) for b, p, v in zip(boards, priors, values.tolist())}


# ---------------------------------------------------------------- search


def puct_search(root: ttt.Board, table: dict, n_sims: int, c_puct: float = 1.5,
                root_noise: np.ndarray | None = None, noise_frac: float = 0.25) -> np.ndarray:
    """``n_sims`` PUCT simulations from ``root`` with the network's priors and values from ``table``; returns
    the root's visit counts. A node is expanded (and its value backed up) on its first visit. While a node's
    children are all unvisited, ``sqrt(sum N) = 0`` and PUCT sees only Q = 0: we follow the prior then (the limit
    of any positive exploration term). ``root_noise`` (Dirichlet) is mixed into the root's prior in self-play.
    The selection is :func:`puct_select` over the legal moves, written in plain Python (9 numbers are too few
    for NumPy to pay)."""
    N, W = np.zeros((n_sims + 1, 9)), np.zeros((n_sims + 1, 9))
    child = -np.ones((n_sims + 1, 9), dtype=np.int64)
    p0 = table[root][0]
    if root_noise is not None:
        p0 = (1 - noise_frac) * p0 + noise_frac * root_noise * (p0 > 0)
    boards, priors = [root], [p0.tolist()]
    for _ in range(n_sims):
        node, path = 0, []
        while True:
            b = boards[node]
            moves = ttt.legal_moves(b)
            if not moves:
                value = ttt.terminal_value(b)
                break
            n, w, P = N[node].tolist(), W[node].tolist(), priors[node]
            root_n = math.sqrt(sum(n))
            best, a = -math.inf, moves[0]
            for m in moves:                               # ties: the lowest index
                q = w[m] / n[m] if n[m] else 0.0
                score = q + c_puct * P[m] * root_n / (1.0 + n[m]) if root_n else P[m]
                if score > best:
                    best, a = score, m
            path.append((node, a))
            if child[node, a] < 0:
                nb = ttt.play(b, a)
                boards.append(nb)
                child[node, a] = len(boards) - 1
                if ttt.is_terminal(nb):
                    priors.append(None)
                    value = ttt.terminal_value(nb)
                else:
                    priors.append(table[nb][0].tolist())
                    value = table[nb][1]
                break
            node = int(child[node, a])
        N, W = backup(N, W, path, value)
    return N[0]


def search_move(board: ttt.Board, table: dict, n_sims: int, c_puct: float = 1.5) -> int:
    """The deterministic player: the most visited root action (ties: the lowest index)."""
    return int(np.argmax(puct_search(board, table, n_sims, c_puct)))


def policy_move(board: ttt.Board, table: dict) -> int:
    """The raw policy head, no search: its most probable legal move."""
    return int(np.argmax(table[board][0]))


# ---------------------------------------------------------------- evaluation against the perfect player

STARTS: tuple[ttt.Board, ...] = (ttt.EMPTY,) + tuple(ttt.play(ttt.EMPTY, m) for m in range(9))
"""The opening position and the 9 positions reachable in one move."""


def outcomes_vs_perfect(agent, starts=STARTS) -> dict[str, int]:
    """Play the deterministic ``agent(board) -> move`` against a perfect player that tries *every* one of its
    optimal moves (every tie-break), from each start, with the agent as X and as O. Returns the number of game
    lines won, drawn and lost by the agent (the agent's moves are memoised: it is deterministic)."""
    memo: dict = {}
    counts = {"win": 0, "draw": 0, "loss": 0}

    def go(b: ttt.Board, side: int) -> None:
        if ttt.is_terminal(b):
            w = ttt.winner(b) * side
            counts["win" if w > 0 else "loss" if w < 0 else "draw"] += 1
        elif ttt.to_move(b) == side:
            if b not in memo:
                memo[b] = agent(b)
            go(ttt.play(b, memo[b]), side)
        else:
            for m in ttt.optimal_moves(b):
                go(ttt.play(b, m), side)

    for s in starts:
        for side in (1, -1):
            go(s, side)
    return counts


# ---------------------------------------------------------------- self-play and training


@dataclass(frozen=True)
class AZConfig:
    """Self-play and training knobs. ``eval_every`` iterations the deterministic player (``eval_sims``
    simulations) is scored by :func:`outcomes_vs_perfect`; training stops at the first score without a loss."""

    iterations: int = 30             # the budget
    games: int = 48
    sims: int = 40
    eval_sims: int = 100
    c_puct: float = 1.5
    explore_moves: int = 9           # moves sampled from pi(tau = 1); later ones take the most visited
    dirichlet: float = 0.5
    steps: int = 150
    batch: int = 256
    lr: float = 5e-3
    l2: float = 1e-4
    buffer_iterations: int = 3
    hidden: int = 64
    eval_every: int = 2
    seed: int = 0


@dataclass
class AZResult:
    net: PolicyValueNet
    losses: list[float] = field(default_factory=list)             # total loss per iteration
    value_losses: list[float] = field(default_factory=list)
    policy_losses: list[float] = field(default_factory=list)
    evals: list[tuple[int, dict]] = field(default_factory=list)   # (iteration, outcomes_vs_perfect)
    solved_at: int | None = None                                   # first iteration whose evaluation had no loss


def self_play_game(table: dict, cfg: AZConfig, rng: np.random.Generator, start: ttt.Board = ttt.EMPTY) -> list[tuple]:
    """One game of the search against itself from ``start``: ``[(board, pi, z)]``, z the outcome for the player
    to move at that board."""
    b, record = start, []
    while not ttt.is_terminal(b):
        noise = rng.dirichlet([cfg.dirichlet] * 9)
        N = puct_search(b, table, cfg.sims, cfg.c_puct, root_noise=noise)
        pi = visits_to_policy(N, 1.0)
        tau_move = 1.0 if len(record) < cfg.explore_moves else 0.0
        record.append((b, pi))
        b = ttt.play(b, int(rng.choice(9, p=visits_to_policy(N, tau_move))))
    w = ttt.winner(b)
    return [(s, pi, float(w * ttt.to_move(s))) for s, pi in record]


def _augment(samples: list[tuple]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    boards, pis, zs = [], [], []
    for s, pi, z in samples:
        bs, ps = dihedral_symmetries(s, pi)
        boards.append(bs), pis.append(ps), zs.append(np.full(8, z))
    return (encode(np.concatenate(boards)), torch.as_tensor(np.concatenate(pis), dtype=torch.float32),
            torch.as_tensor(np.concatenate(zs), dtype=torch.float32))


def train(cfg: AZConfig = AZConfig()) -> AZResult:
    """Self-play, train, evaluate; stop once the player never loses to the perfect player (or at the budget)."""
    manual_seed(cfg.seed)
    rng, gen = numpy_rng(cfg.seed), torch_generator(cfg.seed)
    net = PolicyValueNet(cfg.hidden)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    res, buffer = AZResult(net), []
    for it in range(1, cfg.iterations + 1):
        table = evaluate_all(net)
        starts = [STARTS[i] for i in rng.integers(len(STARTS), size=cfg.games)]   # the opening and each first move
        buffer.append([x for s in starts for x in self_play_game(table, cfg, rng, s)])
        buffer = buffer[-cfg.buffer_iterations:]
        x, pi, z = _augment([s for games in buffer for s in games])
        tot = val = pol = 0.0
        for _ in range(cfg.steps):
            idx = torch.randint(len(x), (cfg.batch,), generator=gen)
            logits, v = net(x[idx])
            loss = alphazero_loss(logits, v, pi[idx], z[idx], list(net.parameters()), cfg.l2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += loss.item()
            val += ((z[idx] - v) ** 2).mean().item()
            pol += -(pi[idx] * torch.log_softmax(logits, -1)).sum(-1).mean().item()
        res.losses.append(tot / cfg.steps), res.value_losses.append(val / cfg.steps)
        res.policy_losses.append(pol / cfg.steps)
        if it % cfg.eval_every == 0:
            table = evaluate_all(net)
            out = outcomes_vs_perfect(lambda b: search_move(b, table, cfg.eval_sims, cfg.c_puct))
            res.evals.append((it, out))
            if out["loss"] == 0:
                res.solved_at = it
                break
    return res
