r"""Tic-tac-toe: the rules, exact minimax values, perfect play, and a Gymnasium environment (Volume 5, section 5.8).

A board is a tuple of 9 ints, cell ``i = 3 * row + col``: ``+1`` is X, ``-1`` is O, ``0`` is empty. X moves first,
so the player to move is X when both have as many stones. Gymnasium has no tic-tac-toe, hence this course-made one.

**Negamax.** Values are from the point of view of the *player to move* (+1: a forced win, 0: a draw, -1: a forced
loss). A finished board is worth -1 to the player to move if the other player has just completed a line, else 0;
otherwise

$$V(s) = \max_{a\ \text{legal}} \big(-V(s \cdot a)\big),$$

the minimax recursion of von Neumann (1928) written once for both players: my value is minus my opponent's value
after my move. Memoised on the board, the whole game is 5478 positions, so every value below is exact.
"""

from __future__ import annotations

from functools import lru_cache

import gymnasium as gym
import numpy as np
from gymnasium import spaces

Board = tuple[int, ...]
EMPTY: Board = (0,) * 9
LINES = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6))


def to_move(board: Board) -> int:
    """+1 when X is to move, -1 when O is."""
    return 1 if sum(board) == 0 else -1


@lru_cache(maxsize=None)
def winner(board: Board) -> int:
    """+1 if X has three in a row, -1 if O has, 0 otherwise (no line yet, or a draw)."""
    for i, j, k in LINES:
        s = board[i] + board[j] + board[k]
        if s == 3 or s == -3:
            return board[i]
    return 0


@lru_cache(maxsize=None)
def legal_moves(board: Board) -> tuple[int, ...]:
    """The empty cells in increasing order; none once somebody has won."""
    if winner(board):
        return ()
    return tuple(i for i, c in enumerate(board) if c == 0)


def is_terminal(board: Board) -> bool:
    return not legal_moves(board)


def play(board: Board, move: int) -> Board:
    """The board after the player to move puts a stone on ``move`` (which must be empty)."""
    if board[move] != 0:
        raise ValueError(f"cell {move} is not empty")
    b = list(board)
    b[move] = to_move(board)
    return tuple(b)


def terminal_value(board: Board) -> int:
    """Value of a finished board for the player to move: -1 if the opponent has just won, else 0 (a draw)."""
    return -1 if winner(board) else 0


@lru_cache(maxsize=None)
def negamax(board: Board) -> int:
    """Exact game value for the player to move (+1, 0 or -1)."""
    moves = legal_moves(board)
    if not moves:
        return terminal_value(board)
    return max(-negamax(play(board, m)) for m in moves)


@lru_cache(maxsize=None)
def optimal_moves(board: Board) -> tuple[int, ...]:
    """Every move that keeps the game value (the moves a perfect player chooses among)."""
    v = negamax(board)
    return tuple(m for m in legal_moves(board) if -negamax(play(board, m)) == v)


@lru_cache(maxsize=None)
def all_positions() -> tuple[Board, ...]:
    """Every position reachable from the empty board by legal play (5478 of them), in breadth-first order."""
    seen, frontier = [EMPTY], [EMPTY]
    found = {EMPTY}
    while frontier:
        nxt = []
        for b in frontier:
            for m in legal_moves(b):
                c = play(b, m)
                if c not in found:
                    found.add(c)
                    nxt.append(c)
        seen += nxt
        frontier = nxt
    return tuple(seen)


@lru_cache(maxsize=None)
def game_tree_size(board: Board = EMPTY) -> tuple[int, int]:
    """(nodes, leaves) of the full game tree below ``board``: every move sequence counted, transpositions apart."""
    moves = legal_moves(board)
    if not moves:
        return 1, 1
    nodes, leaves = 1, 0
    for m in moves:
        n, l = game_tree_size(play(board, m))
        nodes, leaves = nodes + n, leaves + l
    return nodes, leaves


def random_position(rng: np.random.Generator, plies: int) -> Board:
    """A position after up to ``plies`` uniformly random legal moves from the empty board."""
    b = EMPTY
    for _ in range(plies):
        moves = legal_moves(b)
        if not moves:
            break
        b = play(b, int(moves[rng.integers(len(moves))]))
    return b


# ---------------------------------------------------------------- a Gymnasium environment


class TicTacToeEnv(gym.Env):
    """The agent plays one side of tic-tac-toe against a fixed opponent policy.

    - ``opponent``: ``"random"`` (uniform over legal moves) or ``"perfect"`` (a uniformly random one of its
      :func:`optimal_moves`); both draw from the environment's ``np_random``, so ``reset(seed=...)`` fixes them.
    - ``agent_first``: the agent is X (moves first) if True, else O (the opponent opens).
    - Observation: 9 cells in {0, 1, 2} = empty, the agent's stone, the opponent's stone.
      ``info["action_mask"]`` marks the empty cells.
    - Reward at the end of the episode: +1 win, -1 loss, 0 draw. An illegal move (an occupied cell) ends the
      episode with reward -1.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, opponent: str = "random", agent_first: bool = True, render_mode: str | None = None):
        if opponent not in ("random", "perfect"):
            raise ValueError(f"unknown opponent {opponent!r}: use 'random' or 'perfect'")
        self.opponent, self.agent_first, self.render_mode = opponent, agent_first, render_mode
        self.observation_space = spaces.MultiDiscrete([3] * 9)
        self.action_space = spaces.Discrete(9)
        self.board: Board = EMPTY
        self.agent = 1 if agent_first else -1

    def _obs(self) -> np.ndarray:
        b = np.asarray(self.board, dtype=np.int64) * self.agent
        return np.where(b == 1, 1, np.where(b == -1, 2, 0)).astype(np.int64)

    def _info(self) -> dict:
        return {"action_mask": np.asarray([c == 0 for c in self.board], dtype=np.int8), "board": self.board}

    def _opponent_move(self) -> None:
        moves = optimal_moves(self.board) if self.opponent == "perfect" else legal_moves(self.board)
        self.board = play(self.board, int(moves[self.np_random.integers(len(moves))]))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.board = EMPTY
        if not self.agent_first:
            self._opponent_move()
        return self._obs(), self._info()

    def step(self, action):
        a = int(action)
        if self.board[a] != 0 or is_terminal(self.board):
            return self._obs(), -1.0, True, False, self._info()
        self.board = play(self.board, a)
        if not is_terminal(self.board):
            self._opponent_move()
        done = is_terminal(self.board)
        reward = float(winner(self.board) * self.agent) if done else 0.0
        return self._obs(), reward, done, False, self._info()

    def render(self):
        rows = ["".join(".XO"[c] for c in (self.board[3 * r + i] for i in range(3))) for r in range(3)]
        return "\n".join(rows)
