"""Benchmarks for Sekisho (``python -m bench.<name>``, results in bench/RESULTS.md). Not part of
the installed package."""
