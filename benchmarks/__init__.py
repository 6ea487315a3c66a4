"""Benchmarks: each builds its data in setup and prints a ratio against the usual way.

Run one with ``python -m benchmarks.<name>`` from the repository root; see benchmarks/README.md.
"""
