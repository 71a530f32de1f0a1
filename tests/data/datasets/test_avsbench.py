"""AVSBench-semantic registration: names, counts and fields per subset and split, laziness."""

import builtins
import logging
import os

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

from ovavss_d2.data.class_lists import load_class_list, load_split
from ovavss_d2.data.datasets import (
    SPLITS,
    SUBSET_NUM_FRAMES,
    SUBSETS,
    register_avsbench_dataset,
    register_avsbench_semantic,
)
from ovavss_d2.utils.testing import make_fake_avsbench

DICT_KEYS = {
    "clip_id",
    "subset",
    "split",
    "file_names",
    "sem_seg_file_names",
    "audio_file_name",
    "height",
    "width",
    "class_names",
    "binary",
}


@pytest.fixture(scope="module")
def registered(fake_avsbench):
    names = register_avsbench_semantic(fake_avsbench.root, name_prefix="reg_")
    yield fake_avsbench, names
    for name in names:  # the catalogs are global: leave them as found
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def test_names(registered):
    _, names = registered
    expected = [f"reg_avss_{s}_{p}" for s in ("v1s", "v1m", "v2", "all") for p in SPLITS]
    expected += ["reg_avsbench_ov_train_base", "reg_avsbench_ov_val", "reg_avsbench_ov_test"]
    assert names == expected


@pytest.mark.parametrize("subset", SUBSETS + ("all",))
@pytest.mark.parametrize("split", SPLITS)
def test_counts_and_fields(registered, subset, split):
    fake, _ = registered
    dicts = DatasetCatalog.get(f"reg_avss_{subset}_{split}")
    clips = fake.select(None if subset == "all" else subset, split)
    assert len(dicts) == len(clips) == (6 if subset == "all" else 2)
    by_id = {c.uid: c for c in clips}
    for d in dicts:
        assert set(d) == DICT_KEYS
        clip = by_id[d["clip_id"]]
        n = SUBSET_NUM_FRAMES[clip.subset]
        assert (d["subset"], d["split"], d["binary"]) == (clip.subset, split, False)
        assert d["file_names"] == [str(clip.clip_dir / "frames" / f"{t}.jpg") for t in range(n)]
        assert d["sem_seg_file_names"] == [
            str(clip.clip_dir / "labels_rgb" / f"{t}.png") if clip.annotated[t] else None
            for t in range(n)
        ]
        assert d["audio_file_name"] == str(clip.clip_dir / "audio.wav")
        assert (d["height"], d["width"]) == (48, 64)
        assert d["class_names"] == clip.class_names


def test_v1s_train_frames_after_0_are_unannotated(registered):
    for d in DatasetCatalog.get("reg_avss_v1s_train"):
        assert d["sem_seg_file_names"][0] is not None
        assert d["sem_seg_file_names"][1:] == [None] * 4
    for name in ("reg_avss_v1s_val", "reg_avss_v1m_train", "reg_avss_v2_test"):
        for d in DatasetCatalog.get(name):
            assert None not in d["sem_seg_file_names"]


def test_open_vocabulary_protocol(registered, caplog):
    fake, _ = registered
    classes = load_class_list("avsbench_semantic.txt")
    novel = {classes.names[i] for i in load_split("avsbench_ov_split.json", classes)["novel"]}
    with caplog.at_level(logging.INFO, logger="ovavss_d2.data.datasets.avsbench"):
        base = DatasetCatalog.get("reg_avsbench_ov_train_base")
    train = fake.select(split="train")
    kept = [c.uid for c in train if not novel.intersection(c.class_names)]
    assert sorted(d["clip_id"] for d in base) == sorted(kept)
    assert len(kept) == 3 and len(train) == 6  # the fake alternates base-only and novel clips
    assert (
        "reg_avsbench_ov_train_base: dropped 3 clips naming one of the 30 excluded classes"
        in caplog.text
    )
    assert len(DatasetCatalog.get("reg_avsbench_ov_val")) == 6
    assert len(DatasetCatalog.get("reg_avsbench_ov_test")) == 6


def test_metadata(registered):
    fake, _ = registered
    meta = MetadataCatalog.get("reg_avsbench_ov_test")
    assert len(meta.stuff_classes) == 71 and meta.stuff_classes[0] == "background"
    assert meta.stuff_classes[1] == "accordion" and meta.stuff_colors[1] == (128, 0, 0)
    assert len(meta.stuff_colors) == len(meta.prompt_names) == 71
    assert len(meta.base_ids) == 40 and len(meta.novel_ids) == 30
    assert set(meta.base_ids) | set(meta.novel_ids) == set(range(1, 71))
    assert meta.base_classes[0] == "airplane" and meta.novel_classes[0] == "accordion"
    assert meta.ignore_label == 255 and meta.evaluator_type == "avss"
    assert meta.label_num_classes == 71
    assert meta.class_list_file.endswith("avsbench_semantic.txt")
    assert meta.split_file.endswith("avsbench_ov_split.json")
    assert meta.dataset_root == str(fake.root)


def test_binary_dataset(fake_avsbench, unique_prefix):
    name = unique_prefix + "avs_s4_train"
    register_avsbench_dataset(
        name, fake_avsbench.root, subsets=("v1s",), splits=("train",), split_file=None, binary=True
    )
    dicts = DatasetCatalog.get(name)
    assert len(dicts) == 2 and all(d["binary"] and d["subset"] == "v1s" for d in dicts)
    meta = MetadataCatalog.get(name)
    assert meta.stuff_classes == ["background", "sounding"] and meta.evaluator_type == "avs_binary"
    assert meta.label_num_classes == 71 and meta.base_ids == [1] and meta.novel_ids == []


def test_registration_is_lazy(fake_avsbench, unique_prefix, monkeypatch):
    """Registering touches nothing under the root; DatasetCatalog.get reads it."""
    root = str(fake_avsbench.root)
    touched = []

    def spy(fn):
        def wrapper(path, *args, **kwargs):
            if str(path).startswith(root):
                touched.append(str(path))
            return fn(path, *args, **kwargs)

        return wrapper

    for mod, attr in ((os, "listdir"), (os, "scandir"), (os, "stat"), (builtins, "open")):
        monkeypatch.setattr(mod, attr, spy(getattr(mod, attr)))
    names = register_avsbench_semantic(root, name_prefix=unique_prefix)
    assert touched == []
    assert len(DatasetCatalog.get(names[0])) == 2
    assert touched


def test_missing_root_fails_on_get_only(tmp_path, unique_prefix):
    names = register_avsbench_semantic(tmp_path / "nowhere", name_prefix=unique_prefix)
    with pytest.raises(
        FileNotFoundError, match=r"dataset root not found: .*nowhere.*DETECTRON2_DATASETS"
    ):
        DatasetCatalog.get(names[0])


def test_other_class_list(tmp_path, unique_prefix):
    """A dataset in another class list (the AVSS-Synth files) registers through the same code."""
    fake = make_fake_avsbench(
        tmp_path / "synth",
        classes="avss_synth.txt",
        split_file="avss_synth_split.json",
        subsets=("v1m",),
        clips_per_split=2,
    )
    name = unique_prefix + "synth_train"
    register_avsbench_dataset(
        name,
        fake.root,
        class_list="avss_synth.txt",
        split_file="avss_synth_split.json",
        drop_novel=True,
        splits=("train",),
    )
    dicts = DatasetCatalog.get(name)
    assert len(dicts) == 1
    meta = MetadataCatalog.get(name)
    assert meta.stuff_classes == list(load_class_list("avss_synth.txt").names)
    # the 70-class list does not describe this root: label2idx.json disagrees
    other = unique_prefix + "synth_wrong"
    register_avsbench_dataset(other, fake.root, class_list="avsbench_semantic.txt", splits=("val",))
    with pytest.raises(
        ValueError, match=r"label2idx\.json: label indices do not match the class list"
    ):
        DatasetCatalog.get(other)
