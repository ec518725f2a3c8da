"""How a chapter declares an exercise: seeded cases, a reference, and how to judge an answer.

A check module (``manifold_course/checks/<chapter>.py``) lists :class:`Exercise` objects. Cases
are *drawn at grading time* from a seeded generator, so the module holds no answer a stub
could return.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

# A judge looks at one case's output and returns a message saying what is wrong, or None.
Judge = Callable[[Any, Any, "Case"], "str | None"]
# A property looks at the learner's whole function (it may call it) and returns a message or None.
Property = Callable[[Callable[..., Any]], "str | None"]


@dataclass(frozen=True)
class Case:
    """One call of the learner's function: ``fn(*args, **kwargs)``.

    ``label`` is what the learner reads when this case fails ("d=1000, no overflow").
    ``rtol``/``atol`` override the exercise's tolerances for this case only.
    """

    args: tuple = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""
    rtol: float | None = None
    atol: float | None = None


@dataclass(frozen=True)
class Exercise:
    """One graded exercise.

    - ``id``: ``"<chapter>.<name>"``, the string the notebook passes to ``check``.
    - ``cases(rng)``: yields :class:`Case` objects; ``rng`` is a seeded ``numpy.random.Generator``.
    - ``reference``: the function whose output each case is compared with (None when a ``judge``
      decides from properties alone).
    - ``judge(got, expected, case)``: replaces the default comparison for each case.
    - ``properties``: checks on the learner's whole function, run after the cases pass.
    - ``timeout``: seconds for all cases together; learner code running longer is stopped.
    - ``known_good``: for an exercise judged without a ``reference``, a correct implementation
      that the test suite runs to prove the check accepts right answers.
    - ``adapter``: for an answer that is not a plain function of plain data (a class, an ``nn.Module``, a
      function whose *gradient* is part of the answer): ``adapter(answer)`` returns a function of plain inputs
      that exercises the answer and returns plain *observations* (outputs, gradients, a log of method calls; see
      :mod:`manifold_course.grading.probes`). The cases, the judge and the properties see the adapted function,
      and the reference is adapted the same way, so classroom grading records the observations in the sandbox
      and judges them in the grader like any other answer. Every exercise is judged that way: the grading
      child only ever calls the learner's code and reports plain data (see :mod:`manifold_course.grading.isolated`).
    """

    id: str
    title: str
    cases: Callable[[np.random.Generator], Iterable[Case]]
    reference: Callable[..., Any] | None = None
    judge: Judge | None = None
    properties: Sequence[Property] = ()
    rtol: float = 1e-5
    atol: float = 1e-6
    timeout: float = 10.0
    known_good: Callable[..., Any] | None = None
    adapter: Callable[[Any], Callable[..., Any]] | None = None

    def __post_init__(self) -> None:
        if "." not in self.id:
            raise ValueError(f"exercise id {self.id!r} must look like '<chapter>.<name>'")
        if self.reference is None and self.judge is None:
            raise ValueError(f"exercise {self.id!r} needs a reference or a judge")

    @property
    def chapter(self) -> str:
        return self.id.split(".", 1)[0]


def case_rng(exercise_id: str, seed: int) -> np.random.Generator:
    """The generator an exercise's cases are drawn from: one stream per (exercise, seed)."""
    tag = sum((i + 1) * ord(c) for i, c in enumerate(exercise_id))  # stable across runs (unlike hash())
    return np.random.default_rng([seed, tag])
