"""Meta-architectures (registered in Detectron2's META_ARCH_REGISTRY)."""

from .ovavss import OVAVSS  # noqa: F401
from .vocabulary import dataset_vocabulary, normalize_vocabulary, training_vocabulary  # noqa: F401
