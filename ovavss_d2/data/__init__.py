"""Data: class lists, vocabularies, audio features, AVSBench registration and the clip mapper.

Light at import (see ``ovavss_d2/__init__.py``): the datasets are registered by importing
``ovavss_d2.data.datasets`` (``ovavss_d2.setup()`` does), and the mapper names below are imported
when first used.
"""

import importlib

__all__ = ["MAPPERS", "AVSSDatasetMapper", "build_dataset_mapper"]


def __getattr__(name: str):
    # PEP 562: the mapper (torch, Detectron2) is imported when one of its names is first taken.
    if name in __all__:
        value = getattr(importlib.import_module(".dataset_mapper", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
