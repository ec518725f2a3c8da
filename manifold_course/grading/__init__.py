"""Self-grading: ``check(exercise_id, fn)`` and what stands behind it.

- :mod:`.exercise` - how a chapter declares an exercise (cases, reference, judge).
- :mod:`.compare`  - output comparison with messages that say what to fix.
- :mod:`.sandbox`  - time limits, captured printing, learner exceptions.
- :mod:`.check`    - ``check`` and :class:`CheckResult`.
- :mod:`.registry` - every exercise, found in :mod:`manifold_course.checks`.
- :mod:`.progress` - the learner's progress store.
- :mod:`.notebook` - headless grading of whole notebooks (``manifold-course grade``).
- :mod:`.release`  - ``exercises/`` generated from ``solutions/``.
"""

from manifold_course.grading.check import CheckResult, check, run_exercise
from manifold_course.grading.exercise import Case, Exercise

__all__ = ["Case", "CheckResult", "Exercise", "check", "run_exercise"]
