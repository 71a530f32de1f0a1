"""AVSS-Synth: an offline audio-visual semantic segmentation benchmark built from real media.

The benchmark's generator, kept beside its command lines (``datasets/prepare_avss_synth.py``,
``datasets/prepare_avss_synth_long.py``) and outside the runtime package: nothing in
``ovavss_d2`` imports it, it imports ``ovavss_d2`` (class lists, the AVSBench-format writer).
``media`` finds the Tux Paint photo stamps, their recordings and background photographs; ``pools``
adds the held-out backgrounds and noise recordings; ``objects`` samples, pastes and labels the
objects of a clip; ``conditions`` draws its recording conditions, ``noise`` and ``backgrounds``
render them; ``clips_v2`` makes one clip and ``variants`` writes it with its robustness variants;
``build`` writes a whole benchmark in the AVSBench-semantic on-disk format. ``long_clips`` builds
the long clips of AVSS-Synth-Long. AVSS-Synth v1 is retired: only v2 is built.

The scripts of ``datasets/`` import it as ``avss_synth`` (their folder is on ``sys.path``); tests
get ``datasets/`` on the path from ``setup.cfg``, tools from ``tools/_avss_synth_path.py``.
"""

from .build import DEFAULT_CLIPS, RETIRED_VERSION_ERROR, build_avss_synth  # noqa: F401
from .media import MediaError, MediaIndex, index_media  # noqa: F401
from .pools import PoolIndex, index_media_v2  # noqa: F401
from .variants import DEFAULT_VARIANTS, parse_variants, variant_root  # noqa: F401
