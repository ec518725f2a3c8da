"""High-dimensional geometry: volumes, concentration, Gram matrices, intrinsic dimension, topology, separability, ReLU layer geometry, representation similarity (CKA)."""
