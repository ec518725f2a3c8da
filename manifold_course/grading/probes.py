"""Adapters: turn an answer that is more than a plain function into plain observations.

Some answers cannot be judged from what they return alone: a function whose *gradient* is part of the answer
(the reparameterization trick, a straight-through estimator, a loss a model trains through), or a class (an
``nn.Module``, a state machine). Classroom grading must still judge them from plain data, in the grader, outside
the learner's process (see :mod:`manifold_course.grading.isolated`). An *adapter* does this: it wraps the answer
in a function of plain inputs that exercises it and returns plain observations (tensors, numbers, strings, and
dicts and lists of them). The exercise's cases, judge and properties see only the adapted function; the
reference is adapted the same way, so the two are compared like any other outputs.

An adapter runs next to the learner's code and could be tampered with there, but all it can change is the
observations, and observations that match the reference's are a correct answer.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch

from manifold_course.grading.compare import compare

NOT_DIFFERENTIABLE = ("your output does not depend differentiably on {names} (no .detach(), .item(), numpy, "
                      "torch.tensor(...) or in-place writes into a new tensor on the way): a model trains through it")


def input_gradients(wrt: Mapping[int, str]) -> Callable[[Callable[..., Any]], Callable[..., dict]]:
    """An adapter that observes a function's output *and* its gradient.

    ``wrt`` maps argument positions to the names the messages use, e.g. ``{0: "mu", 1: "logvar"}``. The adapted
    function calls the answer on copies of those arguments that require gradients and returns
    ``{"output": ..., "grads": {name: d sum(output) / d argument} or None}``; ``grads`` is None when the output
    is not a tensor that requires a gradient. An argument the output does not depend on gets a zero gradient.
    """

    def adapter(fn: Callable[..., Any]) -> Callable[..., dict]:
        def observed(*args: Any, **kwargs: Any) -> dict:
            args = list(args)
            leaves = {}
            for pos, name in wrt.items():
                a = args[pos]
                if isinstance(a, torch.Tensor) and a.is_floating_point():
                    args[pos] = leaves[name] = a.detach().clone().requires_grad_(True)
            out = fn(*args, **kwargs)
            grads = None
            if isinstance(out, torch.Tensor) and out.requires_grad and leaves:
                got = torch.autograd.grad(out.sum(), list(leaves.values()), allow_unused=True)
                grads = {name: (torch.zeros_like(leaf) if g is None else g.detach())
                         for (name, leaf), g in zip(leaves.items(), got)}
            return {"output": out.detach() if isinstance(out, torch.Tensor) else out, "grads": grads}

        observed.__name__ = getattr(fn, "__name__", "learner_function")
        return observed

    return adapter


def gradient_judge(rtol: float, atol: float, grad_rtol: float = 0.0, grad_atol: float = 0.0, hint: str = "",
                   not_differentiable: str = "",
                   defined: Callable[[Any], Mapping[str, torch.Tensor]] | None = None) -> Callable[[Any, Any, Any], str | None]:
    """The judge for :func:`input_gradients`: the output first, then that it is differentiable, then each gradient.

    Tolerances: the case's own if it sets them, else ``rtol``/``atol``; the gradients' are at least
    ``grad_rtol``/``grad_atol`` (two correct formulas can round differently in their derivatives). ``hint`` is
    appended to a wrong gradient's message, ``not_differentiable`` replaces the default message for an output the
    gradient cannot flow through. ``defined(case)`` may give, per argument name, a boolean mask of the entries
    where the derivative exists (a kink, such as floor() at an integer, has two one-sided derivatives and either
    is right): only those entries are compared.
    """

    def judge(got: Any, expected: Any, case: Any) -> str | None:
        r = rtol if case.rtol is None else case.rtol
        a = atol if case.atol is None else case.atol
        if not isinstance(got, dict) or set(got) != {"output", "grads"}:
            return "the grader could not observe your function's output and gradient"
        problem = compare(got["output"], expected["output"], r, a, where="the output")
        if problem or expected["grads"] is None:
            return problem
        if not isinstance(got["grads"], dict):
            return not_differentiable or NOT_DIFFERENTIABLE.format(names=" and ".join(expected["grads"]))
        masks = defined(case) if defined is not None else {}
        for name, want in expected["grads"].items():
            where = f"the gradient of sum(output) with respect to {name}"
            have = got["grads"].get(name)
            mask = masks.get(name)
            if mask is not None and isinstance(have, torch.Tensor) and have.shape == want.shape:
                have, want, where = have[mask], want[mask], where + " (where it is defined)"
            problem = compare(have, want, max(r, grad_rtol), max(a, grad_atol), where=where)
            if problem:
                return problem + (f" ({hint})" if hint else "")
        return None

    return judge
