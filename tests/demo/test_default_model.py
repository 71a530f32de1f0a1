"""The out-of-the-box model: the default config with its packaged checkpoint, no download."""

import numpy as np
import torch

from ovavss_d2.predictor import DEFAULT_WEIGHTS, VideoPredictor, get_default_cfg


def test_default_model_loads_its_checkpoint_and_runs():
    cfg = get_default_cfg()
    assert cfg.MODEL.WEIGHTS == str(DEFAULT_WEIGHTS)
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
