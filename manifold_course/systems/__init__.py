"""AI systems: GPU performance models, benchmarks of the kernels in manifold_course.kernels, distributed training, serving."""
