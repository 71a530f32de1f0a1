"""tools/visualize_data.py: frames of a registered clip dataset drawn with their ground truth."""

import itertools

import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from PIL import Image

from ovavss_d2.data.datasets import register_avsbench_dataset
from ovavss_d2.utils.testing import make_fake_avsbench

INSTANT = "configs/avss_synth/ovavss_effnet_yamnet_minilm_instant_test.yaml"
_counter = itertools.count()


@pytest.fixture
def fake_train(tmp_path):
    """A registered fake training set: one v1m clip of 5 labelled frames."""
    fake = make_fake_avsbench(tmp_path / "AVSBench-semantic", subsets=("v1m",), splits=("train",))
    name = f"_visualize_data_{next(_counter)}"
    register_avsbench_dataset(name, fake.root, subsets=("v1m",), splits=("train",))
    yield name
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


@pytest.mark.parametrize("source", ["annotation", "dataloader"])
def test_draws_frames_with_their_labels(source, fake_train, tmp_path, load_script, repo_root):
    tool = load_script("tools/visualize_data.py")
    out = tmp_path / "vis"
    tool.main(
        ["--config-file", str(repo_root / INSTANT), "--source", source, "--output-dir", str(out)]
        + ["--max-frames", "3", "DATASETS.TRAIN", f"('{fake_train}',)", "MODEL.DEVICE", "cpu"]
    )
    drawn = sorted(out.glob("*.jpg"))
    assert len(drawn) == 3
    (clip,) = DatasetCatalog.get(fake_train)
    if source == "annotation":  # frames as stored: the drawing is the frame plus its labels
        frame = np.asarray(Image.open(clip["file_names"][0]).convert("RGB")).astype(int)
        image = np.asarray(Image.open(out / f"{fake_train}_{clip['clip_id']}_0.jpg")).astype(int)
        assert image.shape == frame.shape
        assert np.abs(image - frame).mean() > 10, "labels drawn over the frame"
        assert (out / "label_cache").is_dir()
    else:  # the train loader's frames: short side 96 scaled by 0.75-1.25 (RandomScale)
        image = np.asarray(Image.open(drawn[0]))
        assert 72 <= min(image.shape[:2]) <= 120 and image.std() > 10
