"""AVSBench-format datasets: the loader and the predefined registrations."""

from . import avss_synth_long  # noqa: F401  registers avss_synth_long_{val,test} (lazily)
from . import register_avsbench  # noqa: F401  registers the predefined datasets (lazily)
from .avsbench import (  # noqa: F401
    SPLITS,
    SUBSET_NUM_FRAMES,
    SUBSETS,
    DatasetFormatError,
    load_avsbench_semantic,
    register_avsbench_dataset,
    register_avsbench_semantic,
)
from .register_avsbench import register_from_config  # noqa: F401
