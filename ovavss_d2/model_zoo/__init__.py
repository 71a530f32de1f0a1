"""The project's model zoo: configs and checkpoints by name, as ``detectron2.model_zoo``.

Checkpoints that ship inside the package are named by ``ovavss_d2://`` URLs, resolved to the file
inside the installed package wherever the config that names them lives::

    MODEL.WEIGHTS: "ovavss_d2://model_zoo/ovavss_effnet_yamnet_minilm.pth"

so a copy of a config, or a config that inherits it through ``_BASE_``, keeps its weights.
Detectron2's ``PathManager`` (``detectron2.utils.file_io``), which its checkpointers open files
through, resolves the prefix once :mod:`ovavss_d2.model_zoo.path_handler` is imported; ``import
ovavss_d2.checkpoint`` and ``ovavss_d2.get_cfg()`` / ``ovavss_d2.setup()`` import it.

This module itself imports neither torch nor Detectron2 (until :func:`get_config` / :func:`get`
are called), so command-line checks can resolve a URL before the heavy imports::

    from ovavss_d2 import model_zoo
    model_zoo.get_config_file("avss_synth/ovavss_effnet_yamnet_minilm.yaml")  # configs/... path
    model_zoo.get_checkpoint_url("avss_synth/ovavss_effnet_yamnet_minilm.yaml")  # ovavss_d2://...
    model = model_zoo.get("avss_synth/ovavss_effnet_yamnet_minilm.yaml", trained=True)
"""

import os
from pathlib import Path
from typing import Dict, List

__all__ = [
    "PREFIX",
    "ModelZooError",
    "available_checkpoints",
    "resolve",
    "get_config_file",
    "get_checkpoint_url",
    "get_config",
    "get",
]

PREFIX = "ovavss_d2://"
# The installed package (ovavss_d2/), which the URLs are relative to.
PACKAGE_DIR = Path(__file__).resolve().parents[1]
MODEL_ZOO_DIR = Path(__file__).resolve().parent
# The repository's configs/ (present in a checkout: pip install -e .).
CONFIGS_DIR = PACKAGE_DIR.parent / "configs"
# Config name (relative to configs/) -> its shipped checkpoint, relative to the package.
CHECKPOINTS: Dict[str, str] = {
    "avss_synth/ovavss_effnet_yamnet_minilm.yaml": "model_zoo/ovavss_effnet_yamnet_minilm.pth",
}


class ModelZooError(FileNotFoundError):
    """A name that is not in the model zoo; the message lists the names that are."""


def available_checkpoints() -> List[str]:
    """The ``ovavss_d2://`` URLs of the checkpoints present in the installed package."""
    return [
        f"{PREFIX}{p.relative_to(PACKAGE_DIR).as_posix()}"
        for p in sorted(MODEL_ZOO_DIR.glob("*.pth"))
    ]


def _listing(names: List[str]) -> str:
    return ", ".join(names) if names else "none"


def resolve(url: str) -> Path:
    """The file inside the installed package that an ``ovavss_d2://`` URL names.

    Raises:
        ModelZooError: a URL without the prefix, one leading outside the package, or a file that
            the package does not hold (the message lists the available checkpoints).
    """
    if not url.startswith(PREFIX):
        raise ModelZooError(f"{url}: not a model-zoo URL (they start with {PREFIX})")
    relative = url[len(PREFIX) :]
    path = (PACKAGE_DIR / relative).resolve()
    inside = path == PACKAGE_DIR or PACKAGE_DIR in path.parents
    if not relative or not inside or not path.is_file():
        raise ModelZooError(
            f"{url}: no such file in the ovavss_d2 model zoo ({PACKAGE_DIR}); available: "
            f"{_listing(available_checkpoints())}"
        )
    return path


def _config_name(name: str) -> str:
    name = name.replace(os.sep, "/")
    return name if name.endswith(".yaml") else f"{name}.yaml"


def _available_configs() -> List[str]:
    return sorted(p.relative_to(CONFIGS_DIR).as_posix() for p in CONFIGS_DIR.glob("*/*.yaml"))


def get_config_file(name: str) -> str:
    """The path of config ``name`` of the repository's ``configs/`` folder, e.g.
    ``"avss_synth/ovavss_effnet_yamnet_minilm.yaml"`` (the ``.yaml`` may be left out).

    Raises:
        ModelZooError: no such config (the message lists them), or no ``configs/`` folder (an
            installation that is not a checkout).
    """
    if not CONFIGS_DIR.is_dir():
        raise ModelZooError(
            f"{name}: the configs live in the repository's configs/ folder ({CONFIGS_DIR} is "
            "missing): install ovavss_d2 from a checkout with pip install -e ."
        )
    path = CONFIGS_DIR / _config_name(name)
    if not path.is_file():
        raise ModelZooError(
            f"{name}: no such config in {CONFIGS_DIR}; available: {_listing(_available_configs())}"
        )
    return str(path)


def get_checkpoint_url(name: str) -> str:
    """The ``ovavss_d2://`` URL of the trained checkpoint that ships for config ``name``.

    Raises:
        ModelZooError: no checkpoint ships for that config (the message lists those that do).
    """
    relative = CHECKPOINTS.get(_config_name(name))
    if relative is None:
        raise ModelZooError(
            f"{name}: no trained checkpoint ships for this config; configs with one: "
            f"{_listing(sorted(CHECKPOINTS))}"
        )
    url = PREFIX + relative
    resolve(url)  # the file is there
    return url


def get_config(name: str, trained: bool = False):
    """The full config (:func:`ovavss_d2.get_cfg`) of ``name``.

    Args:
        trained: set ``MODEL.WEIGHTS`` to the shipped checkpoint (:func:`get_checkpoint_url`);
            otherwise it is what the config file says.
    """
    from ovavss_d2 import get_cfg
    from ovavss_d2.utils.preflight import merge_config

    cfg = get_cfg()
    merge_config(cfg, get_config_file(name), [], "overrides")
    if trained:
        cfg.MODEL.WEIGHTS = get_checkpoint_url(name)
    return cfg


def get(name: str, trained: bool = True, device=None):
    """A model built from config ``name``, with its shipped weights when ``trained``, else with
    its initial weights (``MODEL.WEIGHTS`` not loaded). In train mode, as Detectron2's
    ``build_model`` returns it; call ``.eval()`` for inference.

    Args:
        device: overrides ``MODEL.DEVICE``, e.g. "cpu".
    """
    from detectron2.modeling import build_model

    from ovavss_d2.checkpoint import OVAVSSCheckpointer

    cfg = get_config(name, trained=trained)
    if device is not None:
        cfg.MODEL.DEVICE = str(device)
    model = build_model(cfg)
    if trained:
        OVAVSSCheckpointer.from_config(cfg, model).load(cfg.MODEL.WEIGHTS)
    return model
