"""meta_arch/postprocessing.py and clip_results: the fast semantic maps equal their definition.

The oracle below is the definition written plainly (every query's mask resized to the output size,
reductions over the query and class dimensions, instances painted through boolean indexing), as
the code computed it before the maps were built in place from the kept queries. On the CPU the
outputs must be bit-identical, and so must every evaluator number on fixed outputs.
"""

import math
from itertools import count

import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import Instances

from ovavss_d2.data.datasets import register_avsbench_dataset
from ovavss_d2.evaluation import AVSBinaryEvaluator, AVSSEvaluator
from ovavss_d2.modeling.meta_arch.inference import clip_results, frame_mask_logits
from ovavss_d2.modeling.meta_arch.postprocessing import (
    channel_max,
    paint_instances,
    select_instances,
    semantic_from_masks,
)
from ovavss_d2.utils.testing import make_fake_avsbench

_names = count()


def _oracle_semantic(scores: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    evidence = torch.einsum("qk,qhw->khw", scores, masks)
    fg = (scores.sum(-1)[:, None, None] * masks).amax(0).clamp(0, 1)
    best = evidence.amax(0, keepdim=True).clamp(min=1e-12)
    return torch.cat([(1 - fg)[None], fg[None] * evidence / best])


def _oracle_paint(instances: Instances, num_classes: int) -> torch.Tensor:
    h, w = instances.image_size
    sem = torch.zeros(num_classes + 1, h, w, device=instances.pred_masks.device)
    for mask, cls, score in zip(instances.pred_masks, instances.pred_classes, instances.scores):
        channel = sem[int(cls) + 1]
        channel[mask] = torch.maximum(channel[mask], score)
    sem[0] = (sem[1:].max(0)[0] == 0).float()
    return sem


def _oracle_clip_results(scores, mask_logits, *, semantic_from, **kw):
    per_frame = scores.dim() == 3
    keep_q, keep_k, keep_s = select_instances(  # per-frame scores: chosen on the best frame
        scores.amax(1) if per_frame else scores, kw["top_k"], kw["score_threshold"]
    )
    sizes = kw["padded_size"], kw["image_size"], kw["output_size"]
    results = []
    for t in range(mask_logits.shape[1]):
        frame_scores = scores[:, t] if per_frame else scores
        prob = frame_mask_logits(mask_logits, t, *sizes).sigmoid()
        inst = Instances(tuple(kw["output_size"]))
        inst.pred_masks = prob[keep_q] > kw["mask_threshold"]
        inst.scores = frame_scores[keep_q, keep_k] if per_frame else keep_s
        if per_frame:  # not painted in the frames where the pair scores below the threshold
            inst.pred_masks = inst.pred_masks & (inst.scores > kw["score_threshold"])[:, None, None]
        inst.pred_classes = keep_k
        if semantic_from == "masks":
            sem = _oracle_semantic(frame_scores, prob)
        else:
            sem = _oracle_paint(inst, scores.shape[-1])
        results.append({"sem_seg": sem, "instances": inst})
    return results


def _fixed_outputs(seed, queries, frames, classes, padded, per_frame=False, device="cpu"):
    """Random ``(scores, mask_logits)`` of one clip: a few confident queries with blob masks."""
    g = torch.Generator().manual_seed(seed)
    h, w = padded[0] // 4, padded[1] // 4
    logits = torch.randn(queries, frames, h, w, generator=g) * 3 - 2
    for q in range(min(4, queries)):  # blobs, so that thresholds and argmax have structure
        y, x = int(torch.randint(0, h, (1,), generator=g)), int(
            torch.randint(0, w, (1,), generator=g)
        )
        logits[q, :, max(0, y - h // 4) : y + h // 4, max(0, x - w // 4) : x + w // 4] += 8
    shape = (queries, frames, classes) if per_frame else (queries, classes)
    p_cls = torch.softmax(torch.randn(*shape, generator=g) * 3, -1)
    p_fg = torch.rand(queries, generator=g)
    p_fg[:4] = 0.9
    scores = p_fg.view(-1, *([1] * (len(shape) - 1))) * p_cls
    return scores.to(device), logits.to(device)


def _assert_same(a, b, exact: bool):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if exact:
            assert torch.equal(x["sem_seg"], y["sem_seg"])
        else:  # other BLAS kernels (CUDA): the same labels, floats within rounding
            torch.testing.assert_close(x["sem_seg"], y["sem_seg"], rtol=1e-5, atol=1e-6)
        assert torch.equal(x["instances"].pred_masks, y["instances"].pred_masks)
        assert torch.equal(x["instances"].scores, y["instances"].scores)
        assert torch.equal(x["instances"].pred_classes, y["instances"].pred_classes)


CASES = {
    # name: (queries, frames, classes, padded, image, output, per-frame scores)
    "paper-shape": (100, 2, 70, (96, 160), (90, 160), (90, 160), False),
    "resized": (20, 3, 7, (64, 96), (60, 90), (120, 180), False),
    "per-frame": (20, 3, 7, (64, 96), (64, 96), (64, 96), True),
    "downsized": (5, 2, 3, (32, 32), (30, 31), (17, 23), False),
}


@pytest.mark.parametrize("semantic_from", ["masks", "instances"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_clip_results_equal_the_plain_definition(case, semantic_from, device):
    q, t, k, padded, image, output, per_frame = CASES[case]
    scores, logits = _fixed_outputs(len(case), q, t, k, padded, per_frame, device)
    kw = dict(
        padded_size=padded,
        image_size=image,
        output_size=output,
        top_k=10,
        score_threshold=0.3,
        mask_threshold=0.5,
    )
    new = clip_results(scores, logits, semantic_from=semantic_from, **kw)
    old = _oracle_clip_results(scores, logits, semantic_from=semantic_from, **kw)
    assert len(new[0]["instances"]) > 0  # the case keeps instances
    _assert_same(new, old, exact=device == "cpu")


@pytest.mark.parametrize("semantic_from", ["masks", "instances"])
def test_nothing_kept(semantic_from):
    scores, logits = _fixed_outputs(0, 6, 2, 4, (32, 32))
    kw = dict(padded_size=(32, 32), image_size=(32, 32), output_size=(20, 20), top_k=5)
    kw.update(score_threshold=1.0, mask_threshold=0.5)
    new = clip_results(scores, logits, semantic_from=semantic_from, **kw)
    old = _oracle_clip_results(scores, logits, semantic_from=semantic_from, **kw)
    assert len(new[0]["instances"]) == 0
    _assert_same(new, old, exact=True)
    if semantic_from == "instances":
        assert (new[0]["sem_seg"][0] == 1).all()


def test_semantic_from_masks_zero_evidence_and_channel_max():
    scores = torch.zeros(3, 4)
    masks = torch.rand(3, 5, 6)
    assert torch.equal(semantic_from_masks(scores, masks), _oracle_semantic(scores, masks))
    values = torch.randn(7, 5, 6)
    assert torch.equal(channel_max(values), values.amax(0))


def test_paint_instances_overlap_keeps_the_higher_score():
    inst = Instances((2, 3))
    inst.pred_masks = torch.tensor([[[1, 1, 0], [0, 0, 0]], [[0, 1, 1], [0, 0, 0]]], dtype=bool)
    inst.scores = torch.tensor([0.4, 0.7])
    inst.pred_classes = torch.tensor([1, 1])
    sem = paint_instances(inst, 2)
    assert torch.equal(sem, _oracle_paint(inst, 2))
    assert sem[2, 0].tolist() == pytest.approx([0.4, 0.7, 0.7])
    assert sem[0].tolist() == [[0, 0, 0], [1, 1, 1]]


def _results_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        (math.isnan(a[k]) and math.isnan(b[k])) or a[k] == b[k] for k in a
    )


@pytest.mark.parametrize("semantic_from", ["masks", "instances"])
def test_evaluator_numbers_unchanged_on_fixed_outputs(tmp_path, semantic_from):
    """AVSS (GZSL mIoU, per-frame metrics) and binary AVS (with the swept F-measure, which reads
    the floats through a softmax) give the same numbers on both implementations' outputs."""
    fake = make_fake_avsbench(
        tmp_path / "AVSBench-semantic", subsets=("v1m",), splits=("test",), clips_per_split=2
    )
    prefix = f"_postprocessing_{next(_names)}_"
    register_avsbench_dataset(prefix + "avss", fake.root, subsets=("v1m",), splits=("test",))
    register_avsbench_dataset(
        prefix + "avs", fake.root, subsets=("v1m",), splits=("test",), split_file=None, binary=True
    )
    try:
        clips = DatasetCatalog.get(prefix + "avss")
        num_classes = len(MetadataCatalog.get(prefix + "avss").stuff_classes) - 1
        kw = dict(padded_size=(48, 64), image_size=(48, 64), output_size=(48, 64), top_k=10)
        kw.update(score_threshold=0.3, mask_threshold=0.5)
        outputs = {"new": [], "old": []}
        for i, clip in enumerate(clips):
            scores, logits = _fixed_outputs(i, 30, len(clip["file_names"]), num_classes, (48, 64))
            outputs["new"].append(clip_results(scores, logits, semantic_from=semantic_from, **kw))
            outputs["old"].append(
                _oracle_clip_results(scores, logits, semantic_from=semantic_from, **kw)
            )
        results = {}
        for key, outs in outputs.items():
            avss = AVSSEvaluator(prefix + "avss", distributed=False)
            avs = AVSBinaryEvaluator(prefix + "avs", distributed=False, f_sweep=True)
            for evaluator in (avss, avs):
                evaluator.reset()
                evaluator.process(clips, outs)
            results[key] = {**avss.evaluate()["sem_seg"], **avs.evaluate()["avs_binary"]}
        assert _results_equal(results["new"], results["old"]), (results["new"], results["old"])
        assert 0 < results["new"]["Mj"] < 100 and 0 < results["new"]["F_sweep"] < 100
        assert not np.isnan(results["new"]["mIoU"])
    finally:
        for name in ("avss", "avs"):
            DatasetCatalog.remove(prefix + name)
            MetadataCatalog.remove(prefix + name)
