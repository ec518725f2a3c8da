"""High-dimensional geometry: volumes, concentration, intrinsic dimension, topology."""
