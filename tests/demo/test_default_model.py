"""The out-of-the-box model: the default config with its packaged checkpoint, no download."""

import numpy as np
import pytest
import torch

from ovavss_d2 import model_zoo
from ovavss_d2.predictor import DEFAULT_WEIGHTS, VideoPredictor, get_default_cfg


def test_default_model_loads_its_checkpoint_and_runs():
    cfg = get_default_cfg()
    # the config names the packaged checkpoint by URL (issue 18: copies of it keep their weights)
    assert cfg.MODEL.WEIGHTS == "ovavss_d2://model_zoo/ovavss_effnet_yamnet_minilm.pth"
    assert model_zoo.resolve(cfg.MODEL.WEIGHTS) == DEFAULT_WEIGHTS and DEFAULT_WEIGHTS.is_file()
    predictor = VideoPredictor(cfg, vocabulary=["dog", "violin"])
    saved = torch.load(DEFAULT_WEIGHTS, map_location="cpu")["model"]
    state = predictor.model.state_dict()
    assert saved and set(saved) <= set(state)
    for key, value in saved.items():
        torch.testing.assert_close(state[key], value.to(state[key].dtype))

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (90, 120, 3), dtype=np.uint8) for _ in range(2)]
    outputs = predictor(frames, 0.1 * rng.standard_normal(32000).astype(np.float32), 16000)
    assert [out["sem_seg"].shape for out in outputs] == [(3, 90, 120)] * 2


def test_shipped_checkpoint_has_exactly_the_default_models_keys():
    """No missing and no unexpected keys: the class sources moved, the state dict did not. The
    frozen YAMNet is not in the file (it comes from its package, issue 19), exactly as the
    checkpointer would write the model today."""
    from detectron2.modeling import build_model

    from ovavss_d2.checkpoint import OVAVSSCheckpointer

    model = build_model(get_default_cfg())
    saved = torch.load(DEFAULT_WEIGHTS, map_location="cpu")["model"]
    assert set(saved) == set(OVAVSSCheckpointer(model).model_state()["model"])
    assert not any(k.startswith("audio_encoder.") for k in saved)
    assert any(k.startswith("embedding_classifier.") for k in saved)


def test_incompatible_checkpoint_names_the_keys(tmp_path):
    """A checkpoint from an older layout (the classifier under another name) fails loudly."""
    from detectron2.modeling import build_model

    from ovavss_d2.checkpoint import CheckpointError, OVAVSSCheckpointer

    saved = torch.load(DEFAULT_WEIGHTS, map_location="cpu")
    old = {
        k.replace("embedding_classifier.", "open_vocab_head."): v for k, v in saved["model"].items()
    }
    path = tmp_path / "old_layout.pth"
    torch.save({"model": old}, path)
    with pytest.raises(CheckpointError) as info:
        OVAVSSCheckpointer(build_model(get_default_cfg())).load(str(path))
    text = str(info.value)
    assert text.startswith(str(path))
    assert "missing: embedding_classifier.proj" in text
    assert "unexpected: open_vocab_head.proj" in text
