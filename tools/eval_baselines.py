#!/usr/bin/env python
"""Evaluate a trained OV-AVSS model next to two reference baselines, with the same evaluator.

Baselines:

- ``background``: every pixel of every frame predicted as background.
- ``random_class``: the same model (masks, objectness, background score unchanged) whose class
  distribution is replaced by a one-hot on a class drawn uniformly at random per query and clip.
- ``model``: the model itself.

    python tools/eval_baselines.py \\
        --config-file configs/avss_synth/ovavss_effnet_yamnet_minilm.yaml \\
        MODEL.WEIGHTS output/avss_synth/ovavss_effnet_yamnet_minilm/model_final.pth

Writes ``<OUTPUT_DIR>/baselines.json`` and logs one table per test dataset.
"""

import argparse
import json
import logging
import os
from collections import OrderedDict
from typing import Dict, List

import torch
import torch.nn.functional as F
from detectron2.data import MetadataCatalog, build_detection_test_loader
from detectron2.evaluation import inference_on_dataset
from detectron2.modeling import build_model
from detectron2.utils.logger import create_small_table, setup_logger
from torch import nn

from ovavss_d2 import get_cfg
from ovavss_d2.checkpoint import OVAVSSCheckpointer
from ovavss_d2.data import build_dataset_mapper
from ovavss_d2.data.vocabulary import dataset_vocabulary
from ovavss_d2.evaluation import build_evaluator
from ovavss_d2.utils.preflight import ints_for_float_keys

logger = logging.getLogger("ovavss_d2.baselines")
BASELINES = ("background", "random_class", "model")


class AllBackground(nn.Module):
    """Predicts background everywhere: ``sem_seg`` channel 0 is 1, the K class channels 0."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.num_classes = num_classes

    def forward(self, batched_inputs: List[Dict]) -> List[List[Dict]]:
        results = []
        for x in batched_inputs:
            sem = torch.zeros(self.num_classes + 1, int(x["height"]), int(x["width"]))
            sem[0] = 1.0
            results.append([{"sem_seg": sem} for _ in range(len(x["images"]))])
        return results


def randomise_classes(model: nn.Module, seed: int) -> None:
    """Replace the model's class distribution by a random one-hot per query (per clip)."""
    generator = torch.Generator().manual_seed(seed)
    scores_of = model.query_scores

    def random_scores(record):
        scores = scores_of(record)  # (Q, K) = p_fg * p_cls, or per frame (Q, T, K)
        p_fg = scores.sum(-1, keepdim=True)  # p_cls sums to 1 over the K classes
        labels = torch.randint(scores.shape[-1], (scores.shape[0],), generator=generator)
        one_hot = F.one_hot(labels, scores.shape[-1]).to(scores)  # (Q, K)
        return p_fg * (one_hot if scores.dim() == 2 else one_hot[:, None])

    model.query_scores = random_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument(
        "--baselines",
        default=",".join(BASELINES),
        help=f"comma-separated subset of {','.join(BASELINES)}",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random-class baseline")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    args = parser.parse_args()
    baselines = [b.strip() for b in args.baselines.split(",") if b.strip()]
    unknown = set(baselines) - set(BASELINES)
    if unknown:
        parser.error(f"unknown baselines {sorted(unknown)}; choose from {BASELINES}")

    cfg = get_cfg()
    with ints_for_float_keys():  # KEY 0 for a float key
        cfg.merge_from_file(args.config_file)
        cfg.merge_from_list(args.opts)
    cfg.freeze()
    setup_logger(name="ovavss_d2")
    setup_logger(name="fvcore")

    report: Dict[str, Dict] = OrderedDict()
    for name in baselines:
        if name == "background":
            num_classes = len(MetadataCatalog.get(cfg.DATASETS.TEST[0]).stuff_classes) - 1
            model = AllBackground(num_classes)
        else:
            model = build_model(cfg)
            OVAVSSCheckpointer(model, max_unloaded_share=1.0).load(cfg.MODEL.WEIGHTS)
            if name == "random_class":
                randomise_classes(model, args.seed)
        model.eval()
        for dataset in cfg.DATASETS.TEST:
            if hasattr(model, "set_vocabulary"):
                model.set_vocabulary(dataset_vocabulary(dataset, cfg.MODEL.OVAVSS.TEST.VOCABULARY))
            loader = build_detection_test_loader(
                cfg, dataset, mapper=build_dataset_mapper(cfg, is_train=False)
            )
            results = inference_on_dataset(model, loader, build_evaluator(cfg, dataset))
            report.setdefault(dataset, OrderedDict())[name] = results
            summary = {k: v for k, v in results["sem_seg"].items() if not k.startswith("IoU-")}
            logger.info("%s on %s:\n%s", name, dataset, create_small_table(summary))
    os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    path = os.path.join(cfg.OUTPUT_DIR, "baselines.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=1)
    logger.info("Wrote %s", path)


if __name__ == "__main__":
    main()
