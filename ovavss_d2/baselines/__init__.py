"""Baselines beside the main model, each a sibling project with its own modules and config keys.

Importing this package registers their meta-architectures (``TPAVIAVS``) with Detectron2.
"""

from . import tpavi  # noqa: F401
