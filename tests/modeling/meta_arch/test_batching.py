"""meta_arch/batching.py: frames stacked on the host and copied once, the same normalised, padded
batch as frame-by-frame copies gave, and no blocking copy."""

import pytest
import torch
from detectron2.structures import ImageList
from ovavss_model_helpers import make_clip

from ovavss_d2.modeling.meta_arch.batching import batch_clips, stack_padded
from ovavss_d2.utils.host_syncs import HostSyncCounter

MEAN = torch.tensor([123.675, 116.28, 103.53]).view(-1, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(-1, 1, 1)


def _frame_by_frame(clips, device, size_divisibility):
    """The batching before issue 19: every frame copied and normalised alone, then padded."""
    frames = [
        (frame.to(device).float() - MEAN.to(device)) / STD.to(device)
        for x in clips
        for frame in x["images"]
    ]
    images = ImageList.from_tensors(frames, size_divisibility)
    audio = torch.stack([x["audio"] for x in clips]).to(device).float()
    return images, audio


@pytest.mark.parametrize("size_divisibility", [0, 32])
@pytest.mark.parametrize("sizes", [[(64, 80)], [(64, 80), (56, 72), (40, 90)]])
def test_same_batch_as_frame_by_frame(device, size_divisibility, sizes):
    clips = [make_clip(3, size=size, seed=i) for i, size in enumerate(sizes)]
    images, audio, num_frames = batch_clips(
        clips, MEAN.to(device), STD.to(device), size_divisibility
    )
    expected_images, expected_audio = _frame_by_frame(clips, device, size_divisibility)
    assert num_frames == 3
    assert images.tensor.device.type == audio.device.type == device
    assert torch.equal(images.tensor, expected_images.tensor)  # bitwise, padding included
    assert [tuple(s) for s in images.image_sizes] == [tuple(s) for s in expected_images.image_sizes]
    assert torch.equal(audio, expected_audio)


def test_one_non_blocking_copy_per_batch(device):
    clips = [make_clip(2, size=(64, 80), seed=0), make_clip(2, size=(56, 72), seed=1)]
    counter = HostSyncCounter(torch.device(device))
    counter.mark_host(clips)
    mean, std = MEAN.to(device), STD.to(device)
    with counter:
        batch_clips(clips, mean, std, 32)
    assert dict(counter.counts) == {}, counter.sites


def test_stack_padded_corners_and_divisibility():
    a, b = torch.ones(2, 3, 5), torch.full((2, 4, 2), 2.0)
    out = stack_padded([a, b], size_divisibility=4)
    assert out.shape == (2, 2, 4, 8)
    assert torch.equal(out[0, :, :3, :5], a) and out[0].sum() == a.sum()
    assert torch.equal(out[1, :, :4, :2], b) and out[1].sum() == b.sum()
    assert stack_padded([a], 0).shape == (1, 2, 3, 5)


def test_clips_of_different_lengths_refused():
    with pytest.raises(ValueError, match="same number of frames T, got \\[2, 3\\]"):
        batch_clips([make_clip(2), make_clip(3)], MEAN, STD, 32)
    with pytest.raises(ValueError, match="^OVAVSS got an empty batch$"):
        batch_clips([], MEAN, STD, 32)
