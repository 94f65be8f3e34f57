"""Benchmarks and evaluations of RecVector (run from the source tree: `python -m bench.<name>`; never loaded by PL/Python)."""
