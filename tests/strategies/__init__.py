"""Hypothesis strategies shared by property tests (specs.py: random well-typed .gen specs)."""
