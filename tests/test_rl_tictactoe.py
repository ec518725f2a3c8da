import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from manifold_course.rl import tictactoe as ttt


def test_counts_of_the_game():
    assert len(ttt.all_positions()) == 5478
    assert ttt.game_tree_size() == (549946, 255168)
    assert sum(ttt.is_terminal(b) for b in ttt.all_positions()) == 958


def test_rules():
    assert ttt.to_move(ttt.EMPTY) == 1 and ttt.to_move(ttt.play(ttt.EMPTY, 4)) == -1
    assert ttt.winner((1, 1, 1, -1, -1, 0, 0, 0, 0)) == 1
    assert ttt.winner((1, 1, -1, 1, -1, 0, -1, 0, 0)) == -1
    assert ttt.legal_moves((1, 1, 1, -1, -1, 0, 0, 0, 0)) == ()
    assert ttt.legal_moves((1, 0, 0, 0, -1, 0, 0, 0, 0)) == (1, 2, 3, 5, 6, 7, 8)
    with pytest.raises(ValueError):
        ttt.play((1,) + (0,) * 8, 0)


def test_negamax_values():
    assert ttt.negamax(ttt.EMPTY) == 0
    assert all(ttt.negamax(ttt.play(ttt.EMPTY, m)) == 0 for m in range(9))     # every opening draws
    assert ttt.negamax((1, 1, 0, -1, -1, 0, 0, 0, 0)) == 1                        # X wins at 2
    assert ttt.negamax((1, 1, 1, -1, -1, 0, 0, 0, 0)) == -1                       # O to move has lost
    assert ttt.negamax((0, 1, 0, 0, 0, 0, 0, 0, 0)) == 0
    assert -ttt.negamax(ttt.play((0, 1, 0, 0, 0, 0, 0, 0, 0), 6)) == -1          # O's far corner loses
    assert set(ttt.optimal_moves((0, 1, 0, 0, 0, 0, 0, 0, 0))) == {0, 2, 4, 7}


@pytest.mark.parametrize("opponent", ["random", "perfect"])
@pytest.mark.parametrize("agent_first", [True, False])
def test_env_passes_gymnasium_checker(opponent, agent_first):
    check_env(ttt.TicTacToeEnv(opponent, agent_first), skip_render_check=True)


def test_env_plays_a_game():
    env = ttt.TicTacToeEnv("perfect", agent_first=False)
    obs, info = env.reset(seed=3)
    assert obs.sum() == 2 and info["action_mask"].sum() == 8      # the opponent (X) has opened
    total, done = 0.0, False
    while not done:
        a = int(np.flatnonzero(info["action_mask"])[0])            # a weak agent: the first empty cell
        obs, r, done, trunc, info = env.step(a)
        total += r
    assert total in (-1.0, 0.0)                                     # never beats a perfect player
    obs, r, done, _, _ = env.step(0)
    assert done and r == -1.0                                       # stepping a finished game is illegal


def test_illegal_move_ends_with_minus_one():
    env = ttt.TicTacToeEnv("random", agent_first=False)
    obs, info = env.reset(seed=0)
    occupied = int(np.flatnonzero(obs)[0])
    _, r, done, _, _ = env.step(occupied)
    assert done and r == -1.0
