"""utils/analysis.py: fvcore's counters on a model that takes clip dicts and returns Instances."""

import torch
from detectron2.structures import Instances
from torch import nn

from ovavss_d2.utils.analysis import ClipTensorAdapter, count_flops, flatten_tensors


class _ClipModel(nn.Module):
    """A meta-architecture in miniature: clip dicts in, per-frame ``sem_seg`` and instances out."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.audio = nn.Linear(6, 4)

    def forward(self, clips):
        out = []
        for clip in clips:
            sem = self.conv(clip["images"].float())  # (T, 4, H, W)
            sem = sem + self.audio(clip["audio"].flatten(1))[:, :, None, None]
            frames = []
            for s in sem:
                inst = Instances((clip["height"], clip["width"]))
                inst.pred_masks = s[:2] > 0
                inst.scores = s[:2].mean((1, 2))
                frames.append({"sem_seg": s, "instances": inst})
            out.append(frames)
        return out


def test_flatten_order_and_non_tensors():
    inst = Instances((1, 1), scores=torch.ones(1), pred_classes=torch.zeros(1))
    out = flatten_tensors([[{"sem_seg": torch.zeros(2), "instances": inst, "name": "x"}]])
    # keys and fields by name: instances (pred_classes, scores) before sem_seg
    assert [t.shape for t in out] == [(1,), (1,), (2,)]
    assert out[0].sum() == 0 and out[1].sum() == 1 and out[2].sum() == 0


def test_flops_of_a_clip_model_through_the_adapter():
    model = _ClipModel()
    images = torch.randint(0, 255, (2, 3, 3, 8, 10), dtype=torch.uint8)  # B=2, T=3
    audio = torch.randn(2, 3, 1, 2, 3)
    adapter = ClipTensorAdapter(model)
    outputs = adapter(images, audio)
    assert len(outputs) == 2 * 3 * 3  # per frame: pred_masks, scores, sem_seg
    gflops = count_flops(adapter, (images, audio))
    conv = 2 * 3 * (8 * 10) * 4 * 3 * 3 * 3  # clips x frames x pixels x out x in x kernel
    linear = 2 * 3 * 4 * 6
    assert round(gflops * 1e9) == conv + linear


def test_mm_with_out_is_counted():
    class MatMul(nn.Module):
        def forward(self, a, b):
            out = a.new_empty(a.shape[0], b.shape[1])
            torch.mm(a, b, out=out)
            return out

    assert round(count_flops(MatMul(), (torch.randn(3, 4), torch.randn(4, 5))) * 1e9) == 60
