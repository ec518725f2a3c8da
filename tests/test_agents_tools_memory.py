import json

import numpy as np
import pytest
import torch

from manifold_course.agents import constrained as C
from manifold_course.agents import memory as M
from manifold_course.agents import sop as S


def test_every_prefix_of_valid_calls_is_viable_and_complete_calls_validate():
    pairs = C.function_calling_pairs(C.TOOLS, 60, seed=0)
    for _, call in pairs:
        assert all(C.valid_prefix(call[:i]) for i in range(len(call) + 1))
        assert C.is_complete(call) and C.is_valid_call(call)
        assert not any(C.valid_prefix(call + c) for c in '}," x')     # complete calls are prefix-free


@pytest.mark.parametrize("text", [
    '{"name":"get_weather","args":{"city":"paris,"days":3}}',      # unclosed string
    '{"name":"get_weather","args":{"city":"paris","days":03}}',
    '{"name":"get_weather","args":{"city":"paris","days":15}}',
    '{"name":"convert","args":{"amount":1,"to":"gbp"}}',
    '{"name":"set_alarm","args":{"hour":7,"repeat":yes}}',
])
def test_broken_calls_are_not_viable(text):
    assert not C.valid_prefix(text) and not C.is_valid_call(text)


def test_viable_prefixes_inside_a_string_and_an_integer():
    assert C.valid_prefix('{"name":"get_weather","args":{"city":"pa}}')      # braces inside an open string
    assert C.valid_prefix('{"name":"convert","args":{"amount":99')
    assert not C.valid_prefix('{"name":"convert","args":{"amount":99999')    # above 9999 whatever follows
    assert C.valid_prefix('{"name":"convert","args":{"amount":9,"to":"e')
    assert not C.valid_prefix('{"name":"convert","args":{"amount":9,"to":"x')


def test_constrained_samples_always_validate_and_unconstrained_often_do_not():
    pairs = C.function_calling_pairs(C.TOOLS, 300, seed=1)
    vocab = sorted(set("".join(c for _, c in pairs)))
    model = C.CharNGram([c for _, c in pairs], vocab, n=4)
    rng = np.random.default_rng(0)
    cons = [C.constrained_sample(model.logits, vocab, C.valid_prefix, 100, rng) for _ in range(15)]
    unc = [C.unconstrained_sample(model.logits, vocab, 100, rng) for _ in range(40)]
    assert all(C.is_valid_call(s) for s in cons)
    assert np.mean([C.is_valid_call(s) for s in unc]) < 0.9


def test_toolformer_keep_uses_the_smaller_loss_and_keeps_ties():
    keep = C.toolformer_keep(np.array([3.0, 3.0, 1.0]), np.array([2.5, 2.0, 0.5]), np.array([3.5, 2.5, 3.0]), 0.5)
    assert keep.tolist() == [True, True, True]
    assert C.toolformer_keep([3.0], [2.0], [2.25], 0.5).tolist() == [False]
    assert np.isclose(C.toolformer_weights(7).sum(), 1.0) and C.toolformer_weights(7)[-1] == 0


def test_vector_store_matches_brute_force_and_breaks_ties_by_id():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 8))
    store = M.VectorStore(8)
    store.add(X[:100], list(range(100)))
    store.add(X[100:], list(range(100, 300)))
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    for q in rng.standard_normal((5, 8)):
        ids = [i for i, _, _ in store.search(q, 7)]
        assert ids == M.exact_top_k(U, (q / np.linalg.norm(q))[None], 7)[0].tolist()
    dup = M.VectorStore(2)
    dup.add(np.array([[1.0, 1.0], [0.0, 1.0], [1.0, 1.0]]), ["a", "b", "c"])
    assert [m for _, _, m in dup.search([1.0, 1.0], 3)] == ["a", "c", "b"]
    assert dup.search([1.0, 0.0], 10)[0][0] == 0 and len(dup.search([1.0, 0.0], 10)) == 3


def test_recall_at_k():
    assert M.recall_at_k([[1, 2, -1]], [[2, 1, 5]]) == pytest.approx(2 / 3)


def test_memory_scores_recency_weight_moves_recent_items_up():
    rng = np.random.default_rng(1)
    mems = [{"vec": rng.standard_normal(4), "time": float(t), "importance": float(rng.integers(1, 11))}
            for t in (0, 100, 200, 300)]
    q = rng.standard_normal(4)
    low = M.memory_scores(mems, q, 300.0, (0.1, 1, 1))
    high = M.memory_scores(mems, q, 300.0, (10, 1, 1))
    assert np.argmax(high) == 3 and np.argsort(-high).tolist().index(3) <= np.argsort(-low).tolist().index(3)
    const = M.memory_scores([{"vec": [1, 0], "time": 0, "importance": 5}] * 3, [1, 0], 1.0, (1, 1, 1))
    assert np.allclose(const, 1.5)


def test_context_aware_decoding():
    lc, ln = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
    assert torch.allclose(M.context_aware_decoding(lc, ln, 0.0), torch.softmax(lc, -1))
    p = M.context_aware_decoding(lc * 1000, ln * 1000, 1.0)
    assert torch.isfinite(p).all() and torch.allclose(p.sum(-1), torch.ones(3, dtype=torch.float64))


def test_message_pool_delivery_rules():
    pool = S.MessagePool()
    pool.subscribe("eng", ["design"])
    pool.publish({"type": "design", "sender": "arch", "content": 1})
    pool.publish({"type": "design", "sender": "eng", "content": 2})
    pool.publish({"type": "prd", "sender": "pm", "content": 3})
    assert [m["content"] for m in pool.fetch("eng")] == [1] and pool.fetch("eng") == []
    assert pool.fetch("nobody") == []


def test_sop_runs_the_team_and_qa_catches_the_bug():
    good = S.run_sop(S.software_team(buggy=False), "write reverse_string: reverse a string", 10)
    bad = S.run_sop(S.software_team(buggy=True), "write reverse_string: reverse a string", 10)
    assert set(good) == {"task", "prd", "design", "code", "tests", "test_report"}
    assert good["test_report"]["failed"] == [] and good["test_report"]["passed"] == 5
    assert len(bad["test_report"]["failed"]) == 1
    assert S.run_sop(S.software_team(), "write f: x", 2).keys() == {"task", "prd", "design", "tests"}


def test_run_tests_reports_broken_code_without_raising():
    assert S.run_tests("def f(:\n", ["assert f() == 1"], "f")["error"].startswith("SyntaxError")
    assert S.run_tests("g = 1\n", [], "f")["error"] == "the code does not define f()"
    assert json.dumps(S.run_tests("def f():\n    return 1\n", ["assert f() == 2"], "f"))   # plain data
