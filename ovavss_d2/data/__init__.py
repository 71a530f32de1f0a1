"""Data: class lists, audio features, AVSBench registration and the clip mapper."""

from . import datasets  # noqa: F401  registers the predefined datasets
from .dataset_mapper import MAPPERS, AVSSDatasetMapper, build_dataset_mapper  # noqa: F401
