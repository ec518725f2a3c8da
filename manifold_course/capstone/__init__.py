"""The capstone's models: grokking modular addition (``grokking``) and one small model from each volume (``zoo``),
retrained in seconds so that :mod:`manifold_course.lens` can look at them."""
