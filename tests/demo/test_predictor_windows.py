"""VideoPredictor over windows: values of the outputs, the audio of each window, streaming."""

import contextlib

import numpy as np
import pytest
import torch

from ovavss_d2.inference import window_spans
from ovavss_d2.predictor import VideoPredictor


def frames_and_audio(num_frames: int, size=(40, 48), rate: int = 16000):
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 255, (*size, 3), dtype=np.uint8) for _ in range(num_frames)]
    # a different tone every second: every frame's patch differs from the others
    t = np.arange(num_frames * rate) / rate
    wave = 0.3 * np.sin(2 * np.pi * (200 + 150 * np.floor(t)) * t)
    return frames, wave.astype(np.float32), rate


@contextlib.contextmanager
def recording(predictor: VideoPredictor, stride: int):
    """Set ``stride`` and record the clip of every model call (and the model's own outputs)."""
    model, old_stride = predictor.model, predictor.stride
    calls = []

    def spy(batch):
        outputs = model(batch)
        calls.append((batch[0], outputs[0]))
        return outputs

    predictor.model, predictor.stride = spy, stride
    try:
        yield calls
    finally:
        predictor.model, predictor.stride = model, old_stride


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_each_window_gets_its_own_frames_and_audio(predictor, stride):
    frames, wave, rate = frames_and_audio(7)
    patches = predictor.audio_patches(wave, rate, 7)
    assert not torch.equal(patches[0], patches[3])  # distinct seconds
    with recording(predictor, stride) as calls:
        outputs = predictor(frames, wave, rate)
    assert len(outputs) == 7  # every frame exactly one output
    spans = window_spans(7, 3, stride)
    assert [c["frame_indices"] for c, _ in calls] == [list(range(a, b)) for a, b in spans]
    for (clip, _), (a, b) in zip(calls, spans):
        assert clip["images"].shape[0] == 3  # the last window too holds T frames
        torch.testing.assert_close(clip["audio"], patches[a:b])
        for t, image in zip(range(a, b), clip["images"]):
            torch.testing.assert_close(image, predictor._prepare(frames[t]))


@pytest.mark.parametrize("stride", [1, 3])
def test_frame_outputs_combine_the_covering_windows(predictor, stride):
    frames, wave, rate = frames_and_audio(5)
    with recording(predictor, stride) as calls:
        outputs = predictor(frames, wave, rate)
    for t, out in enumerate(outputs):
        covering = [(clip, res) for clip, res in calls if t in clip["frame_indices"]]
        maps = [res[clip["frame_indices"].index(t)]["sem_seg"] for clip, res in covering]
        torch.testing.assert_close(out["sem_seg"], torch.stack(maps).mean(0))
        # every kept mask is voted by at least half of the covering windows' masks of that frame
        window_masks = [
            res[clip["frame_indices"].index(t)]["instances"].pred_masks for clip, res in covering
        ]
        union = torch.stack([m.any(0) for m in window_masks]).any(0)
        for mask in out["instances"].pred_masks:
            assert not (mask & ~union).any()
    if stride == 3:  # windows [0, 3) and [2, 5): frames 0-1 come from one window only
        clip, res = calls[0]
        for t in (0, 1):
            masks = {tuple(m.flatten().tolist()) for m in res[t]["instances"].pred_masks if m.any()}
            got = {tuple(m.flatten().tolist()) for m in outputs[t]["instances"].pred_masks}
            assert got <= masks


@pytest.mark.parametrize("stride", [1, 3])
def test_stream_gives_the_list_outputs_and_stays_lazy(predictor, stride):
    frames, wave, rate = frames_and_audio(8)
    old = predictor.stride
    predictor.stride = stride
    try:
        listed = predictor(frames, wave, rate)
        patches = predictor.audio_patches(wave, rate, 8)
        consumed = []

        def items():
            for t in range(8):
                consumed.append(t)
                yield frames[t], patches[t]

        streamed = []
        for out in predictor.stream(items()):
            streamed.append(out)
            # frames are read only as far as the windows need: at most T + stride ahead
            assert len(consumed) - len(streamed) <= 3 + stride
    finally:
        predictor.stride = old
    assert len(streamed) == len(listed) == 8
    for a, b in zip(listed, streamed):
        torch.testing.assert_close(a["sem_seg"], b["sem_seg"])
        for key in ("pred_masks", "scores", "pred_classes", "track_ids"):
            assert torch.equal(getattr(a["instances"], key), getattr(b["instances"], key))


def test_tracks_are_reported_and_ids_persist(predictor):
    frames, wave, rate = frames_and_audio(1)
    outputs = predictor([frames[0]] * 6, np.tile(wave, 6), rate)  # a still video: same objects
    ids = [set(o["instances"].track_ids.tolist()) for o in outputs]
    assert ids[0] and all(i == ids[0] for i in ids)
    assert set(predictor.tracks) >= ids[0]
    for o in outputs:
        for track_id, cls in zip(o["instances"].track_ids, o["instances"].pred_classes):
            assert int(cls) == predictor.tracks[int(track_id)].class_id


def test_bad_stride(tiny_cfg):
    with pytest.raises(ValueError, match="stride must lie in 1..3"):
        VideoPredictor(tiny_cfg, stride=4)
    cfg = tiny_cfg.clone()
    cfg.TEST.VIDEO.TRACK.ENABLED = False
    with pytest.raises(ValueError, match="needs back-to-back windows"):
        VideoPredictor(cfg, stride=2)
