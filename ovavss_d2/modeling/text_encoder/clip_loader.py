"""One place that loads CLIP models (`clip` package, clip-anytorch), shared by the text encoder and
the CLIP visual classifier so that a model is loaded once per process.

Named models (``clip.available_models()``, e.g. ``"ViT-B/16"``) are downloaded on first use, which
needs internet: local rank 0 downloads, the other ranks wait at a barrier and then read the file. A
path to a local checkpoint (a plain state dict or OpenAI's TorchScript archive) works offline.
"""

import logging
import os
from functools import lru_cache
from typing import Union

import torch
from detectron2.utils import comm

from ...utils.preflight import InputError

logger = logging.getLogger(__name__)


class ClipModelError(InputError):
    """A CLIP model that is neither cached, downloadable nor a local file."""


def _resolve_device(device: Union[str, torch.device]) -> str:
    device = str(device) if device else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        logger.warning("CUDA is not available: loading CLIP on the CPU")
        device = "cpu"
    return device


@lru_cache(maxsize=4)
def _load(name_or_path: str, device: str, download_root: str):
    import clip

    if name_or_path in clip.available_models():
        # Download once per machine: local rank 0 first, the others after the barrier.
        if comm.get_local_rank() == 0:
            try:
                clip.load(name_or_path, device="cpu", download_root=download_root)
            except (OSError, RuntimeError) as e:  # URLError is an OSError
                url = clip.clip._MODELS[name_or_path]
                cached = os.path.join(download_root, os.path.basename(url))
                reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                where = "unreadable in" if os.path.isfile(cached) else "not in"
                raise ClipModelError(
                    f"MODEL.TEXT_ENCODER.CLIP_MODEL {name_or_path!r}: {where} the cache ({cached}) "
                    f"and not downloadable ({reason}): copy the file there, or give the path of "
                    "a local CLIP checkpoint as MODEL.TEXT_ENCODER.CLIP_MODEL"
                ) from None
        comm.synchronize()
    elif not os.path.isfile(name_or_path):
        raise FileNotFoundError(
            f"CLIP model {name_or_path!r} is neither a file nor one of {clip.available_models()}"
        )
    model, _ = clip.load(name_or_path, device=device, download_root=download_root)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    logger.info("Loaded CLIP %s on %s (%s)", name_or_path, device, next(model.parameters()).dtype)
    return model


def load_clip(
    name_or_path: str, device: Union[str, torch.device] = "cpu", download_root: str = ""
) -> torch.nn.Module:
    """Load a frozen CLIP model (``clip.model.CLIP``), cached per (model, device).

    Args:
        name_or_path: a ``clip.available_models()`` name or a local checkpoint file.
        device: where to put it; CLIP keeps fp16 weights on CUDA and float32 on the CPU.
        download_root: download folder for named models ("" -> ``~/.cache/clip``).

    Returns:
        The model in eval mode with ``requires_grad=False``. It is shared: do not modify it.
    """
    root = download_root or os.path.expanduser("~/.cache/clip")
    return _load(str(name_or_path), _resolve_device(device), root)
