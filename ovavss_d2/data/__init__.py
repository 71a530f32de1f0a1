"""Data: class lists, audio features, AVSBench registration and the clip mapper."""
from . import datasets  # noqa: F401  registers the predefined datasets
