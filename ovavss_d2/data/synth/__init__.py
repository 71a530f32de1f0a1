"""AVSS-Synth: an offline audio-visual semantic segmentation benchmark built from real media.

``media`` finds the Tux Paint photo stamps, their recordings and background photographs; ``clips``
samples, renders and writes one clip; ``build`` writes a whole benchmark in the AVSBench-semantic
on-disk format. The command line is ``datasets/prepare_avss_synth.py``.
"""

from .build import DEFAULT_CLIPS, build_avss_synth  # noqa: F401
from .media import MediaError, MediaIndex, index_media  # noqa: F401
