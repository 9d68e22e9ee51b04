"""Benchmarks for Sekisho (``python -m bench.pdf``). Not part of the installed package."""
