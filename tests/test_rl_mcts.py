import numpy as np

from manifold_course.rl import mcts
from manifold_course.rl import tictactoe as ttt


def test_ucb_formula_and_unvisited():
    s = mcts.ucb(np.array([0.5, 0.1, 0.0]), 10, np.array([4, 6, 0]), 1.4)
    assert np.isinf(s[2])
    assert np.isclose(s[0], 0.5 + 1.4 * np.sqrt(np.log(10) / 4))
    assert np.all(np.isinf(mcts.ucb(np.zeros(3), 0, np.zeros(3), 1.0)))


def test_backup_alternates_signs_and_copies():
    N, W = np.zeros((3, 9)), np.zeros((3, 9))
    N2, W2 = mcts.backup(N, W, [(0, 4), (1, 0), (2, 8)], 1.0)
    assert N.sum() == 0 and W.sum() == 0
    assert N2[0, 4] == N2[1, 0] == N2[2, 8] == 1
    assert (W2[2, 8], W2[1, 0], W2[0, 4]) == (-1.0, 1.0, -1.0)


def test_search_finds_wins_and_blocks():
    assert mcts.mcts_move((1, 1, 0, -1, -1, 0, 0, 0, 0), 50, 0) == 2
    assert mcts.mcts_move((1, 0, 0, -1, -1, 0, 1, 0, 0), 50, 0) == 5
    # plain UCT from a won position already prefers the win with enough simulations
    N = mcts.uct_search((1, 1, 0, -1, -1, 0, 0, 0, 0), 300, 1)
    assert int(np.argmax(N)) == 2
    assert N.sum() == 300 and np.all(N[[0, 1, 3, 4]] == 0)


def test_uct_beats_random_more_often_than_it_loses():
    rng = np.random.default_rng(0)
    score = 0
    for g in range(10):
        b = ttt.EMPTY
        while not ttt.is_terminal(b):
            if ttt.to_move(b) == 1:
                b = ttt.play(b, mcts.mcts_move(b, 100, g))
            else:
                moves = ttt.legal_moves(b)
                b = ttt.play(b, int(moves[rng.integers(len(moves))]))
        score += ttt.winner(b)
    assert score >= 7
