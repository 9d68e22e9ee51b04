"""Sekisho (関所): a sanitization gateway between network zones."""

__version__ = "0.1.0"
