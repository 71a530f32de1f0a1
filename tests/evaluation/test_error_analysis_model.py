"""The error analysis's model row equals the project's evaluator on the model's own forward outputs
(a tiny random OV-AVSS of the instant-test config on a tiny fake AVSS-Synth-class dataset)."""

import uuid

import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog, build_detection_test_loader
from detectron2.modeling import build_model

from ovavss_d2 import get_cfg
from ovavss_d2.data import build_dataset_mapper
from ovavss_d2.data.datasets.avsbench import register_avsbench_dataset
from ovavss_d2.data.vocabulary import dataset_vocabulary
from ovavss_d2.evaluation import build_evaluator
from ovavss_d2.evaluation.analysis_inference import predict_clips
from ovavss_d2.evaluation.error_analysis import (
    SUMMARY_KEYS,
    ErrorAnalysis,
    Postprocess,
)
from ovavss_d2.utils.testing import make_fake_avsbench

INSTANT_TEST = "configs/avss_synth/ovavss_effnet_yamnet_minilm_instant_test.yaml"


@pytest.fixture
def fake_synth(tmp_path):
    fake = make_fake_avsbench(
        tmp_path / "fake",
        clips_per_split={("v1m", "test"): 2, ("v1s", "test"): 1},
        size=(48, 64),
        classes="avss_synth.txt",
        split_file="avss_synth_split.json",
    )
    name = f"_analysis_fake_{uuid.uuid4().hex[:8]}"
    register_avsbench_dataset(
        name,
        fake.root,
        splits=("test",),
        class_list="avss_synth.txt",
        split_file="avss_synth_split.json",
    )
    yield name
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


def test_model_row_equals_the_evaluator_on_forward_outputs(repo_root, fake_synth):
    cfg = get_cfg()
    cfg.merge_from_file(str(repo_root / INSTANT_TEST))
    cfg.DATASETS.TRAIN = (fake_synth,)
    cfg.DATASETS.TEST = (fake_synth,)
    cfg.MODEL.EFFICIENTNET.WEIGHTS = "none"  # random backbone: fast, nothing to load
    cfg.MODEL.TEXT_ENCODER.TEMPLATES = "single"
    cfg.MODEL.OVAVSS.TEST.SCORE_THRESHOLD = 0.0
    # the learned classifier and the sound tags (a source that reads the masks); the image tags
    # would only add minutes of ImageNet-name encoding
    cfg.MODEL.CLASS_SOURCES.NAMES = ["learned", "audio_tags"]
    cfg.MODEL.CLASS_SOURCES.BASE_WEIGHTS = [1.0, 0.5]
    cfg.MODEL.CLASS_SOURCES.NOVEL_WEIGHTS = [0.0, 0.4]
    cfg.freeze()
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    model.set_vocabulary(dataset_vocabulary(fake_synth))
    meta = MetadataCatalog.get(fake_synth)
    loader = build_detection_test_loader(
        cfg, fake_synth, mapper=build_dataset_mapper(cfg, is_train=False)
    )
    evaluator = build_evaluator(cfg, fake_synth, None)
    analysis = ErrorAnalysis(
        fake_synth, Postprocess.of(model), lambda: build_evaluator(cfg, fake_synth, None)
    )
    evaluator.reset()
    with torch.no_grad():
        for batch in loader:
            evaluator.process(batch, model(batch))
            for clip, pred in predict_clips(model, batch, meta.label_num_classes):
                assert pred.gt_probs is not None and len(pred.gt_ids) >= 1
                analysis.process(clip, pred)
    expected = evaluator.evaluate()["sem_seg"]
    summary = analysis.summarize()
    assert "masks" in summary["rows"]
    for key in SUMMARY_KEYS:
        assert summary["rows"]["model"][key] == pytest.approx(expected[key], nan_ok=True), key
    assert len(analysis.objects) == 5  # 2 classes in each v1m clip, 1 in the v1s clip
