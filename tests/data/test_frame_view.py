"""data/frame_view.py: a clip dataset seen frame by frame, drawn by Detectron2's Visualizer."""

import itertools
import os

import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.detection_utils import read_image
from detectron2.utils.visualizer import Visualizer
from PIL import Image

from ovavss_d2.data.datasets import register_avsbench_dataset
from ovavss_d2.data.frame_view import frame_dicts, index_label_file, register_frame_view
from ovavss_d2.data.labels import read_label_map
from ovavss_d2.utils.testing import make_fake_avsbench

_counter = itertools.count()


@pytest.fixture
def fake_datasets(tmp_path):
    """Two registered clip datasets of the same fake clips: semantic (v1s train: only frame 0
    has a label) and binary (v1m test, every frame labelled)."""
    fake = make_fake_avsbench(
        tmp_path / "AVSBench-semantic",
        clips_per_split={("v1s", "train"): 1, ("v1m", "test"): 1},
        subsets=("v1s", "v1m"),
    )
    prefix = f"_frame_view_{next(_counter)}_"
    names = {"semantic": prefix + "semantic", "binary": prefix + "binary"}
    register_avsbench_dataset(names["semantic"], fake.root, subsets=("v1s",), splits=("train",))
    register_avsbench_dataset(
        names["binary"], fake.root, subsets=("v1m",), splits=("test",), split_file=None, binary=True
    )
    yield names
    for name in list(DatasetCatalog.list()):
        if name.startswith(prefix):
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)


def _frames(name, cache_dir=None):
    return list(
        frame_dicts(DatasetCatalog.get(name), MetadataCatalog.get(name), cache_dir=cache_dir)
    )


def test_one_dict_per_frame_with_index_labels(fake_datasets, tmp_path):
    name = fake_datasets["semantic"]
    (clip,) = DatasetCatalog.get(name)
    cache = tmp_path / "cache"
    frames = _frames(name, str(cache))
    assert len(frames) == len(clip["file_names"]) == 5
    assert [f["frame_index"] for f in frames] == list(range(5))
    assert frames[0]["image_id"] == f"{clip['clip_id']}/0"
    assert all(f["file_name"] == p for f, p in zip(frames, clip["file_names"]))
    # v1s training clips label frame 0 only: the others carry no label at all
    assert "sem_seg_file_name" in frames[0]
    assert not any("sem_seg_file_name" in f or "sem_seg" in f for f in frames[1:])
    index = np.asarray(Image.open(frames[0]["sem_seg_file_name"]))
    num_classes = MetadataCatalog.get(name).label_num_classes
    expected = read_label_map(clip["sem_seg_file_names"][0], num_classes)
    assert index.dtype == np.uint8 and (index == expected).all()
    assert (index > 0).any(), "the fake clip shows a sounding object"
    in_memory = _frames(name)
    assert (in_memory[0]["sem_seg"] == expected).all()
    assert "sem_seg_file_name" not in in_memory[0]


def test_binary_dataset_collapses_classes(fake_datasets):
    name = fake_datasets["binary"]
    frames = _frames(name)
    labels = np.stack([f["sem_seg"] for f in frames])
    assert set(np.unique(labels)) == {0, 1}


def test_cached_label_is_reused_then_rewritten_when_the_source_changes(fake_datasets, tmp_path):
    (clip,) = DatasetCatalog.get(fake_datasets["semantic"])
    source = clip["sem_seg_file_names"][0]
    num_classes = MetadataCatalog.get(fake_datasets["semantic"]).label_num_classes
    path = index_label_file(source, str(tmp_path), num_classes)
    os.utime(path, (1e9, 2e9))  # newer than the source: reused as it is
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(path)
    os.utime(path, (1e9, 2e9))
    assert index_label_file(source, str(tmp_path), num_classes) == path
    assert np.asarray(Image.open(path)).shape == (2, 2)
    os.utime(path, (1e9, 1e9))  # older than the source: written again
    os.utime(source, (1e9, 1.5e9))
    index_label_file(source, str(tmp_path), num_classes)
    assert (np.asarray(Image.open(path)) == read_label_map(source, num_classes)).all()
    with pytest.raises(ValueError, match="at most 256 classes"):
        index_label_file(source, str(tmp_path), 300)


def test_visualizer_draws_the_ground_truth_of_a_frame(fake_datasets, tmp_path):
    name = fake_datasets["semantic"]
    view = register_frame_view(name, cache_dir=str(tmp_path / "cache"))
    assert view == name + "_frames"
    meta = MetadataCatalog.get(view)
    assert meta.stuff_classes == MetadataCatalog.get(name).stuff_classes
    assert meta.clip_dataset == name and not hasattr(meta, "evaluator_type")
    frame = DatasetCatalog.get(view)[0]
    image = read_image(frame["file_name"], format="RGB")
    drawn = Visualizer(image, metadata=meta).draw_dataset_dict(frame).get_image()
    plain = Visualizer(image, metadata=meta).draw_dataset_dict({}).get_image()
    label = np.asarray(Image.open(frame["sem_seg_file_name"]))
    diff = np.abs(drawn.astype(int) - plain.astype(int)).sum(-1)
    assert diff[label > 0].mean() > 20, "objects are coloured"
    # the in-memory labels draw the same picture
    memory = next(f for f in _frames(name) if "sem_seg" in f)
    again = Visualizer(image, metadata=meta).draw_dataset_dict(memory).get_image()
    assert (again == drawn).all()


def test_unknown_dataset_has_no_view():
    with pytest.raises(KeyError, match="not registered"):
        register_frame_view("_no_such_dataset_")
