"""Open-vocabulary audio-visual semantic segmentation as a Detectron2 extension.

Importing the package is light: ``import ovavss_d2`` and the torch-free modules
(``ovavss_d2.utils.preflight``, ``ovavss_d2.data.vocabulary``) import neither torch nor
Detectron2, so scripts can check their inputs before the heavy stack loads.

Registration rule: Detectron2's registries (datasets, model components, evaluators) are filled by
importing the modules listed in :data:`REGISTERING_MODULES`. :func:`setup` imports them all, and
getting :func:`get_cfg` or :func:`add_ovavss_config` from the package (``from ovavss_d2 import
get_cfg``) calls :func:`setup` first. So an entry point that builds its config with
``ovavss_d2.get_cfg()`` (every key, the baselines' included) has everything registered; code
that builds models without a config of its own calls ``ovavss_d2.setup()``. A new module that
registers something is added to :data:`REGISTERING_MODULES`.
"""

import importlib

__version__ = "0.1.0"

__all__ = ["REGISTERING_MODULES", "add_ovavss_config", "get_cfg", "setup"]

# Modules whose import registers datasets, model components or evaluators with Detectron2.
REGISTERING_MODULES = (
    "ovavss_d2.data.datasets",  # the predefined AVSBench-format datasets
    "ovavss_d2.baselines",  # the baselines' meta-architectures (TPAVIAVS)
    "ovavss_d2.modeling",  # backbones, encoders, decoders, meta-architectures
    "ovavss_d2.evaluation",  # the evaluators (build_evaluator)
    "ovavss_d2.model_zoo.path_handler",  # ovavss_d2:// paths with Detectron2's PathManager
)


def setup() -> None:
    """Import every module of :data:`REGISTERING_MODULES` (again: a no-op). Imports torch."""
    for name in REGISTERING_MODULES:
        importlib.import_module(name)


def __getattr__(name: str):
    # PEP 562: the package's heavy names register everything when one is first taken.
    if name in ("add_ovavss_config", "get_cfg"):
        setup()
        from . import config

        globals()[name] = getattr(config, name)
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
