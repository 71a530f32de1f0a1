"""Fixtures of the evaluator tests: temporary datasets with palette PNG labels."""

import uuid
from types import SimpleNamespace
from typing import List, Optional

import numpy as np
import pytest
import torch
from detectron2.data import MetadataCatalog
from PIL import Image

from ovavss_d2.data.class_lists import encode_label_rgb, palette

# 4 classes + background: 1, 2 base; 3, 4 novel.
AVSS_CLASSES = ["background", "cat", "dog", "violin", "tabla"]


def one_hot_scores(pred: np.ndarray, num_channels: int) -> torch.Tensor:
    """Index map ``(H, W)`` -> scores ``(C, H, W)`` whose argmax is ``pred``."""
    return torch.nn.functional.one_hot(torch.as_tensor(pred), num_channels).permute(2, 0, 1).float()


class _Datasets:
    """Registers metadata under unique names and writes label PNGs; removes them afterwards."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.names: List[str] = []

    def avss(self, **extra) -> str:
        meta = dict(
            stuff_classes=AVSS_CLASSES,
            base_ids=[1, 2],
            novel_ids=[3, 4],
            ignore_label=255,
            evaluator_type="avss",
        )
        meta.update(extra)
        return self._register("test_avss", meta)

    def binary(self, **extra) -> str:
        meta = dict(
            stuff_classes=["background", "sounding"],
            base_ids=[1],
            novel_ids=[],
            ignore_label=255,
            label_num_classes=len(AVSS_CLASSES),
            evaluator_type="avs_binary",
        )
        meta.update(extra)
        return self._register("test_avs_binary", meta)

    def _register(self, prefix: str, meta: dict) -> str:
        name = f"{prefix}_{uuid.uuid4().hex}"
        MetadataCatalog.get(name).set(**meta)
        self.names.append(name)
        return name

    def label(self, array, num_classes: int = len(AVSS_CLASSES)) -> str:
        """Write an index map as an RGB palette PNG (a ``P`` PNG if it holds ignore pixels)."""
        path = self.tmp_path / f"label_{uuid.uuid4().hex}.png"
        array = np.asarray(array)
        if (array == 255).any():  # RGB labels have no ignore colour: store indices instead
            image = Image.fromarray(array.astype(np.uint8), mode="P")
            image.putpalette(palette(256).tobytes())
        else:
            image = Image.fromarray(encode_label_rgb(array, num_classes))
        image.save(path)
        return str(path)

    def clip(self, labels: List[Optional[np.ndarray]], **extra) -> dict:
        """A mapper-style clip dict whose frames have these labels (None: unannotated)."""
        files = [None if lab is None else self.label(lab) for lab in labels]
        shape = next(np.asarray(lab).shape for lab in labels if lab is not None)
        clip = {
            "clip_id": f"clip_{uuid.uuid4().hex[:6]}",
            "file_names": [f"frame_{t}.jpg" for t in range(len(labels))],
            "sem_seg_file_names": files,
            "frame_indices": list(range(len(labels))),
            "height": shape[0],
            "width": shape[1],
            "class_names": [],
            "binary": False,
        }
        clip.update(extra)
        return clip


@pytest.fixture
def datasets(tmp_path):
    registry = _Datasets(tmp_path)
    yield registry
    for name in registry.names:
        MetadataCatalog.remove(name)


def run_evaluator(evaluator, inputs: list, outputs: list, batch_size: int) -> dict:
    """reset, process ``batch_size`` clips per call, evaluate; return the one task's results."""
    evaluator.reset()
    for i in range(0, len(inputs), batch_size):
        evaluator.process(inputs[i : i + batch_size], outputs[i : i + batch_size])
    (results,) = evaluator.evaluate().values()
    return results


@pytest.fixture
def helpers():
    return SimpleNamespace(one_hot=one_hot_scores, run=run_evaluator)
