"""manifold-course: an executable, self-grading deep-learning course.

The package holds the reference implementations a learner compares against (topic
subpackages such as :mod:`manifold_course.geometry`), offline data helpers
(:mod:`manifold_course.data`), plotting helpers, and the grader
(:mod:`manifold_course.grading`). Importing it has no side effects.
"""

from manifold_course.seeding import seed_everything

__version__ = "0.1.0"
__all__ = ["seed_everything", "__version__"]
