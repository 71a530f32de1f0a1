"""AVSS-Synth: an offline audio-visual semantic segmentation benchmark built from real media.

``media`` finds the Tux Paint photo stamps, their recordings and background photographs; ``clips``
samples, renders and writes one v1 clip. v2 adds ``pools`` (held-out backgrounds and noise
recordings), ``conditions`` (what is drawn per clip), ``noise`` and ``backgrounds`` (how it is
rendered), ``clips_v2`` (one v2 clip) and ``variants`` (writing a clip and its robustness variants).
``build`` writes a whole benchmark in the AVSBench-semantic on-disk format. The command line is
``datasets/prepare_avss_synth.py``.
"""

from .build import DEFAULT_CLIPS, DEFAULT_CLIPS_V1, build_avss_synth  # noqa: F401
from .media import MediaError, MediaIndex, index_media  # noqa: F401
from .pools import PoolIndex, index_media_v2  # noqa: F401
from .variants import DEFAULT_VARIANTS, parse_variants, variant_root  # noqa: F401
