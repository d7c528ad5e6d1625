"""Sweeps: requests turned into one job graph, run in-process or on Ray; evaluation, robustness and verification."""
