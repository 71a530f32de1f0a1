"""Golden values of the class evidence of every shipped OV-AVSS config (issue 16).

Each config of ``configs/avsbench_ov`` and ``configs/avss_synth`` is built with its own
class-evidence and inference keys, but with a tiny architecture (``TINY``: EfficientNet-Lite0,
small decoders, YAMNet; none of these keys names or weighs classes) and a tiny random CLIP where
the config uses CLIP. Every parameter is then set from a generator seeded by the parameter's name,
so the numbers depend neither on construction order nor on packaged weights of the model itself,
and the decoder's outputs are replaced by fixed random ones (distinct queries, masks, objectness
and audio embeddings), so that the sources get something to tell apart. On one fixed clip the
test compares the query scores ``p_fg * p_cls``, ``p_fg``, the kept instances (class, score, mask
area) and the semantic labels with values recorded by the code before the class-evidence
refactor (the ``legacy_sources`` path; ``python tests/modeling/meta_arch/
test_class_evidence_golden.py`` wrote the file at commit "golden values of class evidence").
Equality is exact (atol 0): the same operations run in the same order on both paths.
"""

import math
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.config import get_cfg
from detectron2.modeling import build_model

sys.path.insert(0, str(Path(__file__).parent))
from ovavss_model_helpers import make_clip, register_meta_only  # noqa: E402

from ovavss_d2 import add_ovavss_config  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
GOLDEN = Path(__file__).parent / "data" / "class_evidence_golden.npz"
CONFIGS = [
    "configs/avsbench_ov/Base-AVSBench-OV.yaml",
    "configs/avsbench_ov/ovavss_R50.yaml",
    "configs/avsbench_ov/ovavss_R50_eval.yaml",
    "configs/avsbench_ov/ovavss_R50_clip_only_eval.yaml",
    "configs/avsbench_ov/ovavss_R50_reference.yaml",
    "configs/avss_synth/ovavss_effnet_yamnet_minilm.yaml",
    "configs/avss_synth/ovavss_effnet_yamnet_minilm_instant_test.yaml",
]
# Architecture only: what the decoder computes changes, not how its outputs become classes.
TINY = {
    "MODEL.BACKBONE.NAME": "D2EfficientNetLite",
    "MODEL.EFFICIENTNET.WEIGHTS": "none",
    "MODEL.EFFICIENTNET.FREEZE_AT": 0,
    "MODEL.AUDIO_ENCODER.NAME": "YAMNet",
    "MODEL.AUDIO_ENCODER.WEIGHTS": "none",
    "MODEL.PIXEL_DECODER.CONV_DIM": 32,
    "MODEL.PIXEL_DECODER.MASK_DIM": 32,
    "MODEL.PIXEL_DECODER.NUM_ENCODER_LAYERS": 1,
    "MODEL.PIXEL_DECODER.NUM_HEADS": 4,
    "MODEL.PIXEL_DECODER.DIM_FEEDFORWARD": 64,
    "MODEL.PIXEL_DECODER.AV_FUSION.NUM_HEADS": 4,
    "MODEL.TRANSFORMER_DECODER.HIDDEN_DIM": 32,
    "MODEL.TRANSFORMER_DECODER.NUM_QUERIES": 8,
    "MODEL.TRANSFORMER_DECODER.NHEADS": 4,
    "MODEL.TRANSFORMER_DECODER.DIM_FEEDFORWARD": 64,
    "MODEL.TRANSFORMER_DECODER.DEC_LAYERS": 2,
    "MODEL.TRANSFORMER_DECODER.EMBED_DIM": 32,
    "MODEL.DEVICE": "cpu",
}


def _set(cfg, key, value):
    node = cfg
    *path, leaf = key.split(".")
    for p in path:
        node = getattr(node, p)
    setattr(node, leaf, value)


def _tiny_clip(folder: Path) -> str:
    from clip.model import CLIP

    path = folder / "tiny_clip.pt"
    if not path.exists():
        torch.manual_seed(0)
        torch.save(CLIP(32, 32, 2, 64, 16, 77, 49408, 64, 1, 1).state_dict(), path)
    return str(path)


def _reinitialise(model) -> None:
    """Every parameter from a generator seeded by its name (independent of build order); the
    learned classifier's temperature at 1 / 10."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
            if name.endswith("logit_scale"):
                p.fill_(math.log(10.0))


def _fixed_decoder(model, num_queries: int, embed_dim: int):
    """``model._decode`` replaced by fixed random outputs of the right shapes."""

    def decode(images, audio, num_frames):
        g = torch.Generator().manual_seed(7)
        h, w = images.shape[-2] // 4, images.shape[-1] // 4
        clips = images.shape[0] // num_frames
        return {
            "pred_embeds": torch.randn(clips, num_queries, embed_dim, generator=g),
            "pred_objectness": torch.randn(clips, num_queries, 2, generator=g) * 2,
            "pred_masks": torch.randn(clips, num_queries, num_frames, h, w, generator=g) * 4,
            "aux_outputs": [],
            "audio_embeds": torch.randn(
                clips, num_frames, model.audio_encoder.output_dim, generator=g
            ),
        }

    model._decode = decode


def config_outputs(config: str, clip_folder: Path) -> dict:
    """Query scores, p_fg, instances and semantic labels of ``config`` on the fixed clip."""
    cfg = get_cfg()
    add_ovavss_config(cfg)
    cfg.merge_from_file(str(REPO / config))
    for key, value in TINY.items():
        _set(cfg, key, value)
    if cfg.MODEL.TEXT_ENCODER.NAME == "CLIPTextEncoder":
        cfg.MODEL.TEXT_ENCODER.CLIP_MODEL = _tiny_clip(clip_folder)
    name = register_meta_only(f"_golden_{Path(config).stem}")
    cfg.DATASETS.TRAIN = (name,)
    cfg.DATASETS.TEST = (name,)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    _reinitialise(model)
    _fixed_decoder(
        model, cfg.MODEL.TRANSFORMER_DECODER.NUM_QUERIES, cfg.MODEL.TRANSFORMER_DECODER.EMBED_DIM
    )
    clip = make_clip(2, size=(64, 80), seed=3, original_size=(72, 90))
    (record,) = model.class_evidence([clip])
    scores = model.query_scores(record)
    frames = model.postprocess(record)
    out = {
        "scores": scores.numpy(),
        "p_fg": record["p_fg"].numpy(),
        "labels": np.stack([f["sem_seg"].argmax(0).numpy().astype(np.uint8) for f in frames]),
    }
    for t, f in enumerate(frames):
        inst = f["instances"]
        out[f"instances_{t}"] = np.concatenate(
            [
                inst.pred_classes.numpy()[:, None].astype(np.float64),
                inst.scores.numpy()[:, None].astype(np.float64),
                inst.pred_masks.flatten(1).sum(1).numpy()[:, None].astype(np.float64),
            ],
            axis=1,
        )
    return out


def _key(config: str, field: str) -> str:
    return f"{Path(config).stem}/{field}"


@pytest.mark.parametrize("config", CONFIGS)
def test_class_evidence_matches_recorded_values(config, tmp_path_factory):
    golden = np.load(GOLDEN)
    out = config_outputs(config, tmp_path_factory.mktemp("clip"))
    for field, value in out.items():
        expected = golden[_key(config, field)]
        assert value.shape == expected.shape, (config, field)
        np.testing.assert_array_equal(value, expected, err_msg=f"{config}: {field}")


if __name__ == "__main__":  # record the golden values (run before changing class evidence)
    import tempfile

    torch.set_num_threads(1)
    values = {}
    with tempfile.TemporaryDirectory() as folder:
        for config in CONFIGS:
            for field, value in config_outputs(config, Path(folder)).items():
                values[_key(config, field)] = value
    GOLDEN.parent.mkdir(exist_ok=True)
    np.savez_compressed(GOLDEN, **values)
    print(f"wrote {GOLDEN}: {len(values)} arrays")
