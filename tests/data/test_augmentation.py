"""Training-time augmentation: waveform noise / gain / shift and frame colour / scale jitter."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog
from detectron2.data import transforms as T

from avss_synth.noise import snr_db
from ovavss_d2.config import add_ovavss_config
from ovavss_d2.data import AVSSDatasetMapper
from ovavss_d2.data.augmentation import (
    RandomScale,
    SaturationTransform,
    WaveformAugmentation,
    build_frame_augmentations,
    build_waveform_augmentation,
    find_noise_files,
)
from ovavss_d2.data.datasets import register_avsbench_semantic

SR = 16000
IDENTITY = [T.ResizeShortestEdge(48, 1000)]  # the fake frames are 48x64: no resize


@pytest.fixture(scope="module")
def noise_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("noise")
    rng = np.random.default_rng(0)
    sf.write(folder / "hiss.wav", (0.2 * rng.standard_normal(SR)).astype(np.float32), SR)
    (folder / "sub").mkdir()
    sf.write(folder / "sub" / "hum.flac", 0.3 * np.sin(np.arange(SR // 2) / 3.0), SR)
    (folder / "notes.txt").write_text("not a recording")
    return folder


@pytest.fixture(scope="module")
def train_dict(fake_avsbench):
    register_avsbench_semantic(fake_avsbench.root, name_prefix="aug_")
    return DatasetCatalog.get("aug_avss_v1m_train")[0]


def _cfg(**overrides):
    cfg = get_cfg()
    add_ovavss_config(cfg)
    cfg.merge_from_list([x for kv in overrides.items() for x in kv])
    return cfg


def test_defaults_are_off():
    cfg = _cfg()
    assert not cfg.INPUT.AUDIO.AUGMENT.ENABLED and cfg.INPUT.AUDIO.AUGMENT.NOISE_PATH == ""
    assert build_waveform_augmentation(cfg, True) is None
    assert build_frame_augmentations(cfg, True) == []
    on = _cfg(**{"INPUT.AUDIO.AUGMENT.ENABLED": True, "INPUT.AUGMENT.COLOR_JITTER.ENABLED": True})
    assert build_waveform_augmentation(on, False) is None  # never at test time
    assert build_frame_augmentations(on, False) == []
    assert len(build_frame_augmentations(on, True)) == 3


def test_find_noise_files(noise_dir, tmp_path):
    files = find_noise_files(str(noise_dir))
    assert [f.rsplit("/", 1)[1] for f in files] == ["hiss.wav", "hum.flac"]
    pools = tmp_path / "noise_pools.json"
    pools.write_text(json.dumps({"train": [files[1]], "test": [files[0]]}))
    assert find_noise_files(str(pools)) == [files[1]]  # the generator's train pool only
    with pytest.raises(FileNotFoundError, match="nowhere"):
        find_noise_files(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        find_noise_files(str(tmp_path / "empty"))


def test_waveform_augmentation_mixes_at_the_drawn_snr(noise_dir):
    files = find_noise_files(str(noise_dir))
    aug = WaveformAugmentation(
        files[:1],
        SR,
        noise_prob=1.0,
        snr_range=(7.0, 7.0),
        gain_db_range=(0, 0),
        max_shift_seconds=0,
    )
    wav = torch.sin(torch.arange(3 * SR, dtype=torch.float32) / 7.0) * 0.5
    out = aug(wav, np.random.RandomState(0))
    assert out.shape == wav.shape
    assert abs(snr_db(wav.numpy(), (out - wav).numpy()) - 7.0) < 1e-3
    # gain only: a factor of 10^(6/20); shift only: zero-filled, at most 0.1 s
    gain = WaveformAugmentation([], SR, gain_db_range=(6, 6), max_shift_seconds=0)
    assert torch.allclose(gain(wav), wav * 10 ** (6 / 20))
    shift = WaveformAugmentation([], SR, gain_db_range=(0, 0), max_shift_seconds=0.1)
    moved = shift(wav, np.random.RandomState(3))
    k = int(np.random.RandomState(3).randint(-1600, 1601))  # the shift it draws first
    expected = torch.zeros_like(wav)
    if k >= 0:
        expected[k:] = wav[: wav.numel() - k]
    else:
        expected[:k] = wav[-k:]
    assert k != 0 and torch.equal(moved, expected)


def test_mapper_noise_changes_log_mel_not_labels(train_dict, noise_dir):
    """The same clip with and without the waveform augmentation: identical frames, labels and
    targets; different log-mel patches."""
    plain = AVSSDatasetMapper(True, augmentations=IDENTITY, sampling_frame_num=0)
    aug = WaveformAugmentation(
        find_noise_files(str(noise_dir)), SR, noise_prob=1.0, snr_range=(0, 5), gain_db_range=(0, 0)
    )
    noisy = AVSSDatasetMapper(
        True, augmentations=IDENTITY, sampling_frame_num=0, waveform_augmentation=aug
    )
    np.random.seed(0)
    a = plain(train_dict)
    np.random.seed(0)
    b = noisy(train_dict)
    assert torch.equal(a["images"], b["images"]) and torch.equal(a["sem_seg"], b["sem_seg"])
    assert torch.equal(a["instances"].gt_masks, b["instances"].gt_masks)
    assert torch.equal(a["instances"].gt_classes, b["instances"].gt_classes)
    assert a["audio"].shape == b["audio"].shape
    assert (a["audio"] - b["audio"]).abs().mean() > 0.1


def test_mapper_from_config_builds_the_augmentations(noise_dir, fake_avsbench):
    register_avsbench_semantic(fake_avsbench.root, name_prefix="augcfg_")
    cfg = _cfg(
        **{
            "DATASETS.TRAIN": ("augcfg_avss_v1m_train",),
            "INPUT.AUDIO.AUGMENT.ENABLED": True,
            "INPUT.AUDIO.AUGMENT.NOISE_PATH": str(noise_dir),
            "INPUT.AUGMENT.SCALE_JITTER.ENABLED": True,
        }
    )
    mapper = AVSSDatasetMapper(cfg, True)
    assert isinstance(mapper.waveform_augmentation, WaveformAugmentation)
    assert len(mapper.waveform_augmentation.noise_files) == 2
    assert any(isinstance(a, RandomScale) for a in mapper.augmentations.augs)
    out = mapper(DatasetCatalog.get("augcfg_avss_v1m_train")[0])
    assert out["images"].shape[-2:] == out["sem_seg"].shape[-2:]


def test_saturation_uses_each_frames_own_grey():
    """Drawn on one frame and applied to another, the saturation change must not blend in the
    first frame (Detectron2's RandomSaturation would): a grey frame stays exactly grey."""
    colour = np.zeros((4, 5, 3), np.uint8)
    colour[..., 0] = 200
    grey = np.full((4, 5, 3), 77, np.uint8)
    t = SaturationTransform(0.5)
    assert np.array_equal(t.apply_image(grey), grey)
    expected = np.rint(0.299 * 200 + 0.5 * (np.array([200, 0, 0]) - 0.299 * 200))
    assert np.array_equal(t.apply_image(colour)[0, 0], np.clip(expected, 0, 255).astype(np.uint8))
    labels = np.arange(20, dtype=np.uint8).reshape(4, 5)
    assert np.array_equal(t.apply_segmentation(labels), labels)


def test_random_scale_keeps_label_values():
    np.random.seed(1)
    image = np.zeros((40, 60, 3), np.uint8)
    labels = np.zeros((40, 60), np.uint8)
    labels[10:30, 20:40] = 7
    labels[0, 0] = 255
    aug_input = T.AugInput(image, sem_seg=labels)
    transform = T.AugmentationList([RandomScale(0.5, 0.5)])(aug_input)
    assert aug_input.image.shape == (20, 30, 3) and aug_input.sem_seg.shape == (20, 30)
    assert set(np.unique(aug_input.sem_seg)) <= {0, 7, 255}
    assert (aug_input.sem_seg == 7).sum() == 100  # 20x20 -> 10x10, nearest
    assert transform.apply_image(image).shape == (20, 30, 3)  # the same size on every frame
