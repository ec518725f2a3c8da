"""Probability and information: KL divergences, the ELBO, EM, Fisher information, mutual information."""
