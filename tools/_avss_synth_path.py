"""Put ``datasets/`` on ``sys.path`` so that a tool can import the AVSS-Synth generator.

The generator (``datasets/avss_synth``) lives beside its command lines, outside the runtime
package. A tool that needs it imports this module first::

    import _avss_synth_path  # noqa: F401  (datasets/ on sys.path)
    from avss_synth.media import index_media
"""

import sys
from pathlib import Path

DATASETS_DIR = str(Path(__file__).resolve().parents[1] / "datasets")
if DATASETS_DIR not in sys.path:
    sys.path.insert(0, DATASETS_DIR)
