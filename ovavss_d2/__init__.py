"""Open-vocabulary audio-visual semantic segmentation as a Detectron2 extension."""

__version__ = "0.1.0"

from . import baselines  # noqa: F401  registers the baselines' meta-architectures (TPAVIAVS)
from . import data  # noqa: F401  registers the AVSBench datasets
from . import evaluation  # noqa: F401
from . import modeling  # noqa: F401  registers backbones, encoders, decoders, meta-architectures
from .config import add_ovavss_config  # noqa: F401
