"""Open-vocabulary audio-visual semantic segmentation as a Detectron2 extension.

Importing the package is light: ``import ovavss_d2`` and the torch-free modules
(``ovavss_d2.utils.preflight``, ``ovavss_d2.data.vocabulary``) import neither torch nor
Detectron2, so scripts can check their inputs before the heavy stack loads.

Registration rule: Detectron2's registries (datasets, model components, evaluators) are filled by
importing the modules listed in :data:`REGISTERING_MODULES`. :func:`setup` imports them all, and
getting :func:`add_ovavss_config` from the package (``from ovavss_d2 import add_ovavss_config``)
calls :func:`setup` first. So an entry point that builds its config with
``from ovavss_d2 import add_ovavss_config`` has everything registered; code that builds models
without a config of its own calls ``ovavss_d2.setup()``. A new module that registers something
is added to :data:`REGISTERING_MODULES`.
"""

import importlib

__version__ = "0.1.0"

__all__ = ["REGISTERING_MODULES", "add_ovavss_config", "setup"]

# Modules whose import registers datasets, model components or evaluators with Detectron2.
REGISTERING_MODULES = (
    "ovavss_d2.data.datasets",  # the predefined AVSBench-format datasets
    "ovavss_d2.modeling",  # backbones, encoders, decoders, meta-architectures
    "ovavss_d2.evaluation",  # the evaluators (build_evaluator)
)


def setup() -> None:
    """Import every module of :data:`REGISTERING_MODULES` (again: a no-op). Imports torch."""
    for name in REGISTERING_MODULES:
        importlib.import_module(name)


def __getattr__(name: str):
    # PEP 562: the one heavy name of the package registers everything when it is first taken.
    if name == "add_ovavss_config":
        setup()
        from .config import add_ovavss_config

        globals()[name] = add_ovavss_config
        return add_ovavss_config
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
