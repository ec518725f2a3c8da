"""Optimization: critical points, Hessians, second-order and natural-gradient steps, msign / Muon."""
