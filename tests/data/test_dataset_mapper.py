"""AVSSDatasetMapper: shapes, frame sampling, unannotated frames, clip-consistent augmentation."""

import numpy as np
import pytest
import torch
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog
from detectron2.data import transforms as T
from PIL import Image

from ovavss_d2.config import add_ovavss_config
from ovavss_d2.data import MAPPERS, AVSSDatasetMapper, build_dataset_mapper
from ovavss_d2.data.class_lists import encode_label_rgb
from ovavss_d2.data.dataset_mapper import sample_frame_indices
from ovavss_d2.data.datasets import register_avsbench_semantic
from ovavss_d2.utils.testing import make_fake_avsbench, write_tone

IDENTITY = [T.ResizeShortestEdge(48, 1000)]  # the fake frames are 48x64: no resize


@pytest.fixture(scope="module")
def dicts(fake_avsbench):
    register_avsbench_semantic(fake_avsbench.root, name_prefix="map_")
    return {
        name: DatasetCatalog.get(f"map_avss_{name}")
        for name in ("v1s_train", "v1m_val", "v2_test", "v2_train")
    }


def _clip(fake, clip_id):
    return next(c for c in fake.clips if c.uid == clip_id)


def test_test_mode_takes_every_frame(fake_avsbench, dicts):
    d = dicts["v2_test"][0]
    out = AVSSDatasetMapper(False, augmentations=IDENTITY, image_format="RGB")(d)
    clip = _clip(fake_avsbench, d["clip_id"])
    assert out["frame_indices"] == list(range(10))
    assert out["images"].shape == (10, 3, 48, 64) and out["images"].dtype == torch.uint8
    assert out["audio"].shape == (10, 1, 96, 64) and out["audio"].dtype == torch.float32
    assert out["sem_seg"].shape == (10, 48, 64) and out["sem_seg"].dtype == torch.int64
    assert out["annotated"].tolist() == [True] * 10
    inst = out["instances"]
    assert inst.image_size == (48, 64)
    order = np.argsort(clip.label_ids)
    assert inst.gt_classes.tolist() == [clip.label_ids[k] - 1 for k in order]
    assert inst.gt_masks.shape == (2, 10, 48, 64) and inst.gt_masks.dtype == torch.bool
    for row, k in enumerate(order):
        for t, (x0, y0, x1, y1) in enumerate(clip.boxes[k]):
            expected = torch.zeros(48, 64, dtype=torch.bool)
            expected[y0:y1, x0:x1] = True
            assert torch.equal(inst.gt_masks[row, t], expected)
    # the input dict is kept as is, and its keys are passed on
    assert (
        "images" not in d
        and out["clip_id"] == d["clip_id"]
        and out["file_names"] == d["file_names"]
    )


def test_v1s_training_frames_after_0_are_ignored(dicts):
    mapper = AVSSDatasetMapper(True, augmentations=IDENTITY, sampling_frame_num=3)
    for d in dicts["v1s_train"]:
        for _ in range(3):
            out = mapper(d)
            # the only windows holding an annotated frame start at frame 0
            assert out["frame_indices"] == [0, 1, 2]
            assert out["annotated"].tolist() == [True, False, False]
            assert (out["sem_seg"][1:] == 255).all()
            assert (out["sem_seg"][0] != 255).all()
            masks = out["instances"].gt_masks
            assert masks.shape[0] == 1 and masks[:, 0].any() and not masks[:, 1:].any()


def test_training_window_and_audio_alignment(dicts):
    mapper = AVSSDatasetMapper(True, augmentations=IDENTITY, sampling_frame_num=4)
    test_mapper = AVSSDatasetMapper(False, augmentations=IDENTITY)
    d = dicts["v2_train"][0]
    full = test_mapper(d)
    np.random.seed(0)
    starts = set()
    for _ in range(12):
        out = mapper(d)
        idx = out["frame_indices"]
        assert idx == list(range(idx[0], idx[0] + 4))
        starts.add(idx[0])
        assert torch.equal(out["audio"], full["audio"][idx])  # frame t gets second t
        assert torch.equal(out["sem_seg"], full["sem_seg"][idx])
    assert len(starts) > 1


def test_sample_frame_indices():
    rng = np.random.RandomState(0)
    for _ in range(20):
        idx = sample_frame_indices(3, 5, [True] * 3, rng)
        assert len(idx) == 5 and idx == sorted(idx) and set(idx) == {0, 1, 2}
        idx = sample_frame_indices(10, 4, [t == 8 for t in range(10)], rng)
        assert idx[0] in (5, 6) and idx == list(range(idx[0], idx[0] + 4))
        idx = sample_frame_indices(10, 4, [False] * 10, rng)
        assert 0 <= idx[0] <= 6
    assert sample_frame_indices(5, 5, [True] + [False] * 4, rng) == [0, 1, 2, 3, 4]


def _static_clip(tmp_path, num_frames=5, size=(40, 60)):
    """A clip whose frames are one PNG: a bright asymmetric 'L' (class 5) on dark ground."""
    h, w = size
    label = np.zeros((h, w), dtype=np.int64)
    label[5:30, 8:14] = 5  # vertical bar
    label[24:30, 8:40] = 5  # foot, to the right
    frame = np.full((h, w, 3), 20, dtype=np.uint8)
    frame[label == 5] = (240, 200, 160)
    clip_dir = tmp_path / "v1m" / "static"
    for sub in ("frames", "labels_rgb"):
        (clip_dir / sub).mkdir(parents=True)
    for t in range(num_frames):
        Image.fromarray(frame).save(clip_dir / "frames" / f"{t}.png")
        Image.fromarray(encode_label_rgb(label, 71)).save(clip_dir / "labels_rgb" / f"{t}.png")
    write_tone(clip_dir / "audio.wav", num_frames, frequency=440)
    d = {
        "clip_id": "static",
        "subset": "v1m",
        "split": "train",
        "file_names": [str(clip_dir / "frames" / f"{t}.png") for t in range(num_frames)],
        "sem_seg_file_names": [
            str(clip_dir / "labels_rgb" / f"{t}.png") for t in range(num_frames)
        ],
        "audio_file_name": str(clip_dir / "audio.wav"),
        "height": h,
        "width": w,
        "class_names": ["bassoon"],
        "binary": False,
    }
    return d, label, frame


def test_flip_applies_to_every_frame_and_label(tmp_path):
    d, label, frame = _static_clip(tmp_path)
    mapper = AVSSDatasetMapper(False, augmentations=[T.RandomFlip(prob=1.0)], image_format="RGB")
    out = mapper(d)
    for t in range(5):
        assert torch.equal(out["sem_seg"][t], torch.from_numpy(label[:, ::-1].copy()))
        assert torch.equal(
            out["images"][t], torch.from_numpy(frame[:, ::-1].transpose(2, 0, 1).copy())
        )


def test_clip_consistent_resize_crop_flip(tmp_path):
    """Random resize, crop and flip: every frame and label of a clip get the same transform."""
    d, label, _ = _static_clip(tmp_path)
    augs = [
        T.ResizeShortestEdge((30, 40, 60), 200, "choice"),
        T.RandomCrop("absolute", (24, 32)),
        T.RandomFlip(prob=0.5),
    ]
    mapper = AVSSDatasetMapper(True, augmentations=augs, sampling_frame_num=5, image_format="RGB")
    np.random.seed(1)
    outcomes = set()
    for _ in range(25):
        out = mapper(d)
        images, sem = out["images"], out["sem_seg"]
        assert images.shape[-2:] == sem.shape[-2:] == (24, 32)
        for t in range(1, 5):  # identical frames in, identical frames out
            assert torch.equal(images[t], images[0]) and torch.equal(sem[t], sem[0])
        # frame and label moved together: bright pixels are the object (up to resize edges)
        bright = images[0].float().mean(dim=0) > 110
        agree = (bright == (sem[0] == 5)).float().mean()
        assert agree > 0.95, float(agree)
        assert set(sem.unique().tolist()) <= {0, 5}
        outcomes.add(sem[0].numpy().tobytes())
    assert len(outcomes) > 5  # the transform does vary from clip to clip


def test_paletted_labels_and_binary(tmp_path, unique_prefix):
    fake = make_fake_avsbench(
        tmp_path / "p", subsets=("v1m",), splits=("val",), label_format="P", seed=3
    )
    names = register_avsbench_semantic(fake.root, name_prefix=unique_prefix)
    d = DatasetCatalog.get(unique_prefix + "avss_v1m_val")[0]
    clip = fake.clips[0]
    out = AVSSDatasetMapper(False, augmentations=IDENTITY)(d)
    assert sorted(out["sem_seg"].unique().tolist()) == sorted([0] + clip.label_ids)
    d_binary = dict(d, binary=True)
    out = AVSSDatasetMapper(False, augmentations=IDENTITY)(d_binary)
    assert out["sem_seg"].unique().tolist() == [0, 1]
    assert out["instances"].gt_classes.tolist() == [0]
    assert out["instances"].gt_masks.shape == (1, 5, 48, 64)
    assert names


def test_image_format(dicts, fake_avsbench):
    d = dicts["v1m_val"][0]
    rgb = AVSSDatasetMapper(False, augmentations=IDENTITY, image_format="RGB")(d)["images"]
    bgr = AVSSDatasetMapper(False, augmentations=IDENTITY, image_format="BGR")(d)["images"]
    assert torch.equal(rgb, bgr.flip(1))


def test_from_config_and_registry(dicts):
    cfg = get_cfg()
    add_ovavss_config(cfg)
    cfg.INPUT.MIN_SIZE_TRAIN = (24, 32)
    cfg.INPUT.MAX_SIZE_TRAIN = 100
    cfg.INPUT.CROP.ENABLED = True
    cfg.INPUT.CROP.TYPE = "absolute"
    cfg.INPUT.CROP.SIZE = [20, 20]
    cfg.INPUT.SAMPLING_FRAME_NUM = 2
    cfg.DATASETS.TRAIN = ("map_avss_v1m_val",)
    mapper = build_dataset_mapper(cfg, True)
    assert isinstance(mapper, AVSSDatasetMapper) and MAPPERS["avss_semantic"] is AVSSDatasetMapper
    assert mapper.label_num_classes == 71 and mapper.ignore_label == 255
    kinds = [type(a).__name__ for a in mapper.augmentations.augs]
    assert kinds == ["ResizeShortestEdge", "RandomCrop", "RandomFlip"]
    out = mapper(dicts["v1m_val"][0])
    assert out["images"].shape == (2, 3, 20, 20) and out["audio"].shape == (2, 1, 96, 64)
    test_mapper = AVSSDatasetMapper(cfg, False)
    assert test_mapper(dicts["v1m_val"][0])["images"].shape[0] == 5
    cfg.INPUT.DATASET_MAPPER_NAME = "nope"
    with pytest.raises(KeyError, match="INPUT.DATASET_MAPPER_NAME 'nope' is not one of"):
        build_dataset_mapper(cfg, True)


def test_augmented_audio_pairs_each_sampled_frame_with_its_second(dicts, tmp_path):
    """Waveform augmentation on, a 10-frame clip, T = 3: the audio patches are those of the 3
    sampled frames' seconds (not the clip's 10, nor its first 3), as without augmentation."""
    import soundfile as sf

    from ovavss_d2.data.audio import AudioParams, load_frame_log_mel_patches

    rate = 16000
    t = np.arange(rate) / rate
    seconds = [0.3 * np.sin(2 * np.pi * (400 + 300 * s) * t) for s in range(10)]  # one tone each
    wav = tmp_path / "tones.wav"
    sf.write(wav, np.concatenate(seconds).astype(np.float32), rate)
    d = dict(dicts["v2_train"][0], audio_file_name=str(wav))
    assert len(d["file_names"]) == 10
    # only frame 9 is annotated: the one window of 3 frames holding it is 7-9 (not at the start)
    d["sem_seg_file_names"] = [None] * 9 + [d["sem_seg_file_names"][9]]
    expected = load_frame_log_mel_patches(wav, 10, AudioParams(), [7, 8, 9])
    assert (
        expected - load_frame_log_mel_patches(wav, 10, AudioParams(), [0, 1, 2])
    ).abs().mean() > 1
    for augmentation in (None, lambda waveform: waveform):
        mapper = AVSSDatasetMapper(
            True, augmentations=IDENTITY, sampling_frame_num=3, waveform_augmentation=augmentation
        )
        out = mapper(d)
        assert out["frame_indices"] == [7, 8, 9]
        assert out["audio"].shape == (3, 1, 96, 64) == out["images"].shape[:1] + (1, 96, 64)
        torch.testing.assert_close(out["audio"], expected, rtol=0, atol=1e-5)
