"""VideoPredictor outputs against the model run by hand on independently prepared windows."""

import numpy as np
import torch
from PIL import Image

from ovavss_d2.data.audio import AudioParams, log_mel_patches


def frames_and_audio(num_frames: int, size=(45, 61), seconds: float = 3.0, rate: int = 22050):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (*size, 3), dtype=np.uint8) for _ in range(num_frames)]
    waveform = (0.1 * rng.standard_normal((2, int(seconds * rate)))).astype(np.float32)
    return frames, waveform, rate


def test_outputs_are_the_covering_windows_model_outputs(predictor, tiny_cfg):
    """7 frames, windows of 3 back to back with a full last window: [0, 3), [3, 6), [4, 7).

    Each window is rebuilt here: frames resized by PIL (shorter side 45 -> 64 = MIN_SIZE_TEST,
    61 -> round(61 * 64 / 45) = 87), the log-mel patches at the given start times, the original
    size as output size. ``sem_seg`` of a frame is the mean over the windows covering it; frames
    covered by one window keep that window's masks and scores.
    """
    assert predictor.clip_length == 3 and predictor.stride == 3
    frames, waveform, rate = frames_and_audio(7)
    starts = [0.4 * t for t in range(7)]
    outputs = predictor(frames, waveform, rate, audio_starts=starts)
    assert len(outputs) == 7 and all(len(out["instances"]) for out in outputs)

    images = [
        torch.from_numpy(
            np.asarray(Image.fromarray(f).resize((87, 64), Image.BILINEAR))
            .transpose(2, 0, 1)
            .copy()
        )
        for f in frames
    ]
    patches = log_mel_patches(waveform, rate, starts, AudioParams.from_config(tiny_cfg))
    per_frame = {t: [] for t in range(7)}
    for a, b in [(0, 3), (3, 6), (4, 7)]:
        clip = {
            "images": torch.stack(images[a:b]),
            "audio": torch.as_tensor(patches[a:b]),
            "height": 45,
            "width": 61,
        }
        with torch.no_grad():
            result = predictor.model([clip])[0]
        for t in range(a, b):
            per_frame[t].append(result[t - a])

    for t, out in enumerate(outputs):
        windows = per_frame[t]
        assert len(windows) == (2 if t in (4, 5) else 1)
        expected = sum(w["sem_seg"] for w in windows) / len(windows)
        assert out["sem_seg"].shape == (4, 45, 61)  # background + 3 classes
        torch.testing.assert_close(out["sem_seg"], expected)
        inst = out["instances"]
        assert inst.image_size == (45, 61) and inst.pred_masks.dtype == torch.bool
        assert len(inst.scores) == len(inst.pred_classes) == len(inst.track_ids)
        assert bool(((inst.pred_classes >= 0) & (inst.pred_classes < 3)).all())
        if len(windows) == 1:  # one window: each instance is one of its (mask, score) pairs
            ref = windows[0]["instances"]
            pairs = list(zip(ref.pred_masks, ref.scores.tolist()))
            for mask, score in zip(inst.pred_masks, inst.scores.tolist()):
                assert any(
                    torch.equal(mask, m) and abs(score - s) < 1e-6 for m, s in pairs
                ), f"frame {t}: an instance that the window did not give"
