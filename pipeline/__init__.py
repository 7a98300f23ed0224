"""Custody: evidence media integrity and archive pipeline."""

__version__ = "0.1.0"
