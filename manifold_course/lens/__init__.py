"""The manifold lens: ``look(model, inputs, layers)`` measures the shape of a trained model's representations,
layer by layer (intrinsic dimension, loops, coverage, isotropy, local Lipschitz), and
``prediction_trajectories`` places checkpoints in prediction space (InPCA). See :mod:`manifold_course.lens.core`
and :mod:`manifold_course.lens.trajectories`.
"""

from manifold_course.lens.core import (COLUMNS, INPUT, LensReport, as_points, capture, coverage, intrinsic_dimension,
                                       isotropy, local_lipschitz, look, loops)
from manifold_course.lens.trajectories import bhattacharyya, inpca, prediction_trajectories

__all__ = ["COLUMNS", "INPUT", "LensReport", "as_points", "bhattacharyya", "capture", "coverage", "inpca",
           "intrinsic_dimension", "isotropy", "local_lipschitz", "look", "loops", "prediction_trajectories"]
