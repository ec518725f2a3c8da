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

import numbers
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


def module_outputs(modes: tuple[str, ...] = ("eval",)) -> Callable[[Callable[..., Any]], Callable[..., dict]]:
    """An adapter for an answer that is an ``nn.Module`` class: build it, load given weights, run given inputs.

    The adapted function takes ``(ctor_args, state, inputs)``: the constructor's arguments, a state dict (the
    reference's parameter names, with random values drawn by the cases, so that a wrong structure cannot agree
    by luck) and a list of input tensors. It returns ``{"module": bool, "type": str, "n_params": int,
    "load_error": str or None, "outputs": [one per mode and input], "input_changed": bool}``; in ``"train"``
    mode the forward also runs (BatchNorm's batch statistics), in ``"eval"`` mode the stored statistics are used.
    """

    def adapter(cls: Callable[..., Any]) -> Callable[..., dict]:
        def observed(ctor_args: tuple, state: dict, inputs: list) -> dict:
            m = cls(*ctor_args)
            obs: dict[str, Any] = {"module": isinstance(m, torch.nn.Module), "type": type(m).__name__}
            if not obs["module"]:
                return obs
            obs["n_params"] = int(sum(p.numel() for p in m.parameters()))
            try:
                m.load_state_dict({k: v.clone() for k, v in state.items()})
                obs["load_error"] = None
            except (RuntimeError, KeyError, TypeError, ValueError) as exc:
                obs["load_error"] = (str(exc).strip().splitlines() or [""])[0][:300]
                return obs
            outputs, changed = [], False
            for mode in modes:
                m.train(mode == "train")
                for x in inputs:
                    x_in = x.clone()
                    with torch.no_grad():
                        y = m(x_in)
                    changed = changed or not torch.equal(x_in, x)
                    outputs.append(y.detach() if isinstance(y, torch.Tensor) else y)
            obs["outputs"], obs["input_changed"] = outputs, changed
            return obs

        observed.__name__ = getattr(cls, "__name__", "learner_class")
        return observed

    return adapter


def module_judge(what: str, modes: tuple[str, ...] = ("eval",), rtol: float = 1e-4, atol: float = 1e-5,
                 hint: str = "") -> Callable[[Any, Any, Any], str | None]:
    """The judge for :func:`module_outputs`; ``what`` names the class in messages ("ResBlock")."""

    def judge(got: Any, expected: Any, case: Any) -> str | None:
        ctor, state, inputs = case.args
        call = f"{what}({', '.join(map(str, ctor))})"
        if not isinstance(got, dict) or "module" not in got:
            return f"the grader could not observe your {what}"
        if not got["module"]:
            return f"{call} should build an nn.Module, got {got.get('type')}"
        if got.get("n_params") != expected["n_params"]:
            return (f"{call} has {got.get('n_params')} parameters, expected {expected['n_params']}; compare your "
                    "layers with the spec")
        if got.get("load_error") is not None:
            return (f"could not copy the reference's weights into yours (use the attribute names of the spec, "
                    f"{sorted(state)}): {got['load_error']}")
        if got.get("input_changed"):
            return "your forward changed its input in place; compute the result into a new tensor"
        outs = got.get("outputs")
        if not isinstance(outs, list) or len(outs) != len(expected["outputs"]):
            return f"the grader could not observe your {what}'s outputs"
        labels = [f"the output in {mode} mode for an input of shape {tuple(x.shape)}" for mode in modes for x in inputs]
        for have, want, where in zip(outs, expected["outputs"], labels):
            problem = compare(have, want, rtol, atol, where=where)
            if problem:
                return problem + (f" ({hint})" if hint else "")
        return None

    return judge


def random_state(module: torch.nn.Module, rng: Any, positive: Callable[[str], bool] = lambda name: False) -> dict:
    """A state dict with ``module``'s names and shapes and random values from the numpy generator ``rng``.

    Entries for which ``positive(name)`` holds (norm gains, running variances) get values in [0.5, 1.5], the
    others N(0, 0.3^2); integer entries (BatchNorm's batch counter) are kept.
    """
    state = {}
    for name, t in module.state_dict().items():
        if not t.is_floating_point():
            state[name] = t.clone()
        elif positive(name):
            state[name] = torch.as_tensor(rng.uniform(0.5, 1.5, tuple(t.shape)), dtype=t.dtype)
        else:
            state[name] = torch.as_tensor(0.3 * rng.standard_normal(tuple(t.shape)), dtype=t.dtype)
    return state


def _plain(v: Any) -> Any:
    """A learner's return value as plain data: numbers and lists of them stay, anything else becomes its type name."""
    if isinstance(v, (bool, type(None), str)):
        return v
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        return float(v)
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return f"<{type(v).__name__}>"


class _StopScript(Exception):
    """The learner's object raised something other than an expected exception: the transcript ends there."""


class TranscriptRecorder:
    """Stands in for a learner's object while a check's *script* drives it (in the grading child): every call of
    one of ``methods`` is passed on and logged as plain data, with its outcome (a value, an expected exception
    such as ``MemoryError``, or an error)."""

    def __init__(self, obj: Any, methods: tuple[str, ...], expected: tuple[type[BaseException], ...] = ()):
        self._obj, self._expected = obj, expected
        self.has = [m for m in methods if callable(getattr(obj, m, None))]
        self.log: list[list[Any]] = []
        for m in self.has:
            setattr(self, m, self._recording(m))

    def _recording(self, name: str) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            entry: list[Any] = [name, _plain(list(args))]
            self.log.append(entry)
            try:
                value = getattr(self._obj, name)(*args)
            except self._expected as exc:
                entry.append({"raised": type(exc).__name__})
                raise
            except Exception as exc:  # noqa: BLE001 - the learner's bug: logged, and the script stops
                from manifold_course.grading.sandbox import describe_exception

                entry.append({"error": describe_exception(exc).message})
                raise _StopScript from None
            entry.append({"value": _plain(value)})
            return entry[2]["value"]             # the script sees exactly what the grader's replay will see

        return call


class TranscriptPlayer:
    """Stands in for the learner's object in the grader: answers the script's calls from a recorded transcript, in
    order, so that the same script reaches the same verdict the learner's object would have given it."""

    def __init__(self, has: list, log: list, expected: tuple[type[BaseException], ...] = ()):
        self._log, self._next = log, 0
        self._expected = {e.__name__: e for e in expected}
        for m in has:
            setattr(self, str(m), self._playing(str(m)))

    def _playing(self, name: str) -> Callable[..., Any]:
        from manifold_course.grading.sandbox import LearnerError

        def call(*args: Any) -> Any:
            entry = self._log[self._next] if self._next < len(self._log) else None
            self._next += 1
            if not (isinstance(entry, list) and len(entry) == 3 and entry[:2] == [name, _plain(list(args))]):
                raise LearnerError("error", "the grader could not match this call with one your object answered in "
                                            "the grading process (does it depend on global state or randomness?)")
            outcome = entry[2] if isinstance(entry[2], dict) else {}
            if "value" in outcome:
                return outcome["value"]
            if outcome.get("raised") in self._expected:
                raise self._expected[outcome["raised"]]()
            raise LearnerError("error", str(outcome.get("error", "your code failed"))[:400])

        return call


def transcript(script: Callable[..., Any], methods: tuple[str, ...], n_ctor_args: int,
               expected: tuple[type[BaseException], ...] = ()) -> Callable[[Callable[..., Any]], Callable[..., dict]]:
    """An adapter for a class judged by a *script* that drives an instance and returns a message or None.

    The adapted function takes the case's arguments: the first ``n_ctor_args`` build the instance, and
    ``script(instance, *all_args)`` drives it. It returns ``{"has": [methods it has], "log": transcript}``; the
    judge (:func:`transcript_judge`) runs the same script against a :class:`TranscriptPlayer` of the log.
    """

    def adapter(cls: Callable[..., Any]) -> Callable[..., dict]:
        def observed(*args: Any) -> dict:
            rec = TranscriptRecorder(cls(*args[:n_ctor_args]), methods, expected)
            try:
                script(rec, *args)
            except (_StopScript, *expected):
                pass
            except (AttributeError, TypeError, ValueError):
                pass                               # the script met a malformed answer: the grader's replay says so
            return {"has": rec.has, "log": rec.log}

        observed.__name__ = getattr(cls, "__name__", "learner_class")
        return observed

    return adapter


def transcript_judge(script: Callable[..., Any], methods: tuple[str, ...], what: str,
                     expected: tuple[type[BaseException], ...] = ()) -> Callable[[Any, Any, Any], str | None]:
    def judge(got: Any, _expected: Any, case: Any) -> str | None:
        if not isinstance(got, dict) or not isinstance(got.get("has"), list) or not isinstance(got.get("log"), list):
            return f"the grader could not observe your {what}"
        if sorted(got["has"]) != sorted(methods):
            return f"{what} should have methods {', '.join(methods)}"
        return script(TranscriptPlayer(got["has"], got["log"], expected), *case.args)

    return judge
