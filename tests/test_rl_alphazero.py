import numpy as np
import torch

from manifold_course.rl import alphazero as az
from manifold_course.rl import tictactoe as ttt


def test_puct_and_policy_pieces():
    assert az.puct_select(np.full(3, 1 / 3), np.zeros(3), np.zeros(3), 1.0) == 0
    assert az.puct_select(np.array([0.1, 0.9]), np.array([1.0, 0.0]), np.array([0.0, 0.0]), 1.0) == 1
    assert np.allclose(az.visits_to_policy(np.array([1.0, 3.0]), 1.0), [0.25, 0.75])
    assert np.allclose(az.visits_to_policy(np.array([2.0, 5.0, 5.0]), 0), [0, 0.5, 0.5])
    p = az.visits_to_policy(np.array([1e6, 2e6]), 0.01)
    assert np.all(np.isfinite(p)) and p[1] > 1 - 1e-12


def test_loss_matches_hand_computation():
    g = torch.Generator().manual_seed(0)
    logits, v = torch.randn(4, 9, generator=g), torch.tanh(torch.randn(4, generator=g))
    pi, z = torch.softmax(torch.randn(4, 9, generator=g), -1), torch.tensor([1.0, -1.0, 0.0, 1.0])
    params = [torch.randn(3, 3, generator=g)]
    want = ((z - v) ** 2).mean() - (pi * torch.log_softmax(logits, -1)).sum(-1).mean() + 0.1 * (params[0] ** 2).sum()
    assert torch.isclose(az.alphazero_loss(logits, v, pi, z, params, 0.1), want)


def test_symmetries_are_the_dihedral_group():
    assert len({tuple(p) for p in az.SYMMETRIES}) == 8
    b = (1, 0, 0, 0, -1, 0, 0, 0, 0)
    bs, ps = az.dihedral_symmetries(b, np.arange(9.0))
    assert all(ttt.negamax(tuple(int(c) for c in row)) == ttt.negamax(b) for row in bs)
    assert np.array_equal(bs[0], b) and np.array_equal(ps[0], np.arange(9.0))


def test_encode_is_from_the_movers_view():
    x = az.encode([(1, 0, 0, 0, 0, 0, 0, 0, 0)])            # O to move: X's stone is the opponent's
    assert x[0, 9] == 1 and x[0, :9].sum() == 0


def test_search_with_a_uniform_evaluator_takes_wins_and_evaluation_counts_lines():
    table = {b: (np.where(np.asarray(b) == 0, 1.0, 0.0) / max(1, b.count(0)), 0.0)
             for b in ttt.all_positions() if not ttt.is_terminal(b)}
    assert az.search_move((1, 1, 0, -1, -1, 0, 0, 0, 0), table, 30) == 2
    perfect = az.outcomes_vs_perfect(lambda b: ttt.optimal_moves(b)[0])
    assert perfect["loss"] == 0 and perfect["win"] == 0            # perfect against perfect: all draws
    first_empty = az.outcomes_vs_perfect(lambda b: ttt.legal_moves(b)[0])
    assert first_empty["loss"] > 0


def test_short_training_runs_and_records():
    res = az.train(az.AZConfig(iterations=2, games=4, sims=8, eval_sims=8, steps=5, eval_every=1))
    assert len(res.losses) == len(res.evals) >= 1 and all(np.isfinite(res.losses))
