"""Benchmarks and the learning proof (scripts; not installed with the package)."""
