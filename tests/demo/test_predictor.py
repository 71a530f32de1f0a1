"""VideoPredictor on a tiny random-initialised OVAVSS: output structure, vocabularies, bad input."""

import numpy as np
import pytest
import torch

from ovavss_d2.predictor import VideoPredictor


def frames_and_audio(num_frames: int, size=(45, 61), seconds: float = 3.0, rate: int = 22050):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (*size, 3), dtype=np.uint8) for _ in range(num_frames)]
    waveform = (0.1 * rng.standard_normal((2, int(seconds * rate)))).astype(np.float32)
    return frames, waveform, rate


def test_vocabulary_per_call_and_synonyms(predictor):
    frames, waveform, rate = frames_and_audio(2, size=(32, 40), seconds=1.0)
    outputs = predictor(frames, waveform, rate, vocabulary=["cello", ("fire truck", "fire engine")])
    assert predictor.class_names == ["cello", "fire truck"]
    assert outputs[0]["sem_seg"].shape == (3, 32, 40)
    # the vocabulary stays for later calls; mono audio of another rate and BGR frames work too
    outputs = predictor(frames, waveform[0, :8000], 8000)
    assert outputs[1]["sem_seg"].shape == (3, 32, 40)
    predictor.set_vocabulary(["dog", "violin", "fire truck"])  # back to the fixture's


def test_bgr_input_matches_rgb(tiny_cfg, device):
    """On ``device``: scores stay on the model's device, instances come back on the CPU."""
    cfg = tiny_cfg.clone()
    cfg.MODEL.DEVICE = device
    rgb = VideoPredictor(cfg, vocabulary=["dog"])
    bgr = VideoPredictor(cfg, vocabulary=["dog"], input_format="BGR")
    bgr.model.load_state_dict(rgb.model.state_dict())
    frames, waveform, rate = frames_and_audio(1, size=(40, 40), seconds=1.0)
    out = rgb(frames, waveform, rate)[0]
    a = out["sem_seg"]
    b = bgr([f[:, :, ::-1] for f in frames], waveform, rate)[0]["sem_seg"]
    torch.testing.assert_close(a, b)
    assert a.device.type == device and out["instances"].scores.device.type == "cpu"


def test_vocabulary_string_is_parsed(predictor):
    """A string vocabulary is read as on the command line (tests/data/test_vocabulary.py)."""
    predictor.set_vocabulary("dog, fire truck|fire engine")
    assert predictor.class_names == ["dog", "fire truck"]
    with pytest.raises(ValueError, match="more than once"):
        predictor.set_vocabulary(["dog", "cat", "dog"])
    predictor.set_vocabulary(["dog", "violin", "fire truck"])  # back to the fixture's


def test_bad_inputs(predictor):
    frames, waveform, rate = frames_and_audio(2, size=(32, 32), seconds=1.0)
    with pytest.raises(ValueError, match="no frames"):
        predictor([], waveform, rate)
    with pytest.raises(ValueError, match="frame 1 is"):
        predictor([frames[0], frames[1][:16]], waveform, rate)
    with pytest.raises(ValueError, match="uint8"):
        predictor([f.astype(np.float32) for f in frames], waveform, rate)
    with pytest.raises(ValueError, match="1 audio start times for 2 frames"):
        predictor(frames, waveform, rate, audio_starts=[0.0])
    with pytest.raises(ValueError, match="NaN"):
        predictor(frames, np.full(rate, np.nan, dtype=np.float32), rate)
    with pytest.raises(ValueError, match="sample rate"):
        predictor(frames, waveform, 0)
    with pytest.raises(ValueError, match="empty"):
        predictor(frames, waveform, rate, vocabulary=[])


def test_loads_model_weights(predictor, tiny_cfg, tmp_path):
    """A weights-only checkpoint (train_net.py model_weights.pth) loads via MODEL.WEIGHTS."""
    state = {
        k: v + 0.01 if v.is_floating_point() else v for k, v in predictor.model.state_dict().items()
    }
    torch.save({"model": state, "iteration": 7}, tmp_path / "model_weights.pth")
    cfg = tiny_cfg.clone()
    cfg.MODEL.WEIGHTS = str(tmp_path / "model_weights.pth")
    loaded = VideoPredictor(cfg).model.state_dict()
    for key, value in state.items():
        torch.testing.assert_close(loaded[key], value)


def test_default_config_names_the_packaged_weights(tmp_path, monkeypatch):
    from ovavss_d2 import model_zoo
    from ovavss_d2 import predictor as module

    assert module.DEFAULT_CONFIG_FILE.is_file() and module.DEFAULT_WEIGHTS.is_file()
    assert model_zoo.resolve(module.get_default_cfg().MODEL.WEIGHTS) == module.DEFAULT_WEIGHTS
    monkeypatch.setattr(model_zoo, "MODEL_ZOO_DIR", tmp_path)  # an install without the file
    monkeypatch.setattr(model_zoo, "PACKAGE_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="no such file in the ovavss_d2 model zoo"):
        module.get_default_cfg()
