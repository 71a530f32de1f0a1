#!/usr/bin/env python
"""Choose the class-source ensemble weights of an OV-AVSS checkpoint on validation data.

Runs the model once over a dataset and caches, per clip, what each class-evidence source said
(``OVAVSS.class_evidence``: foreground probabilities, each source's ``(Q, K)`` distribution, the
mask logits), then re-scores the cached clips under other weights without running the model again,
with the project's own post-processing and evaluator. ``--search`` does coordinate descent over a
grid of each source's base and novel exponent on the ``--objective`` metric; ``--ablate`` scores
the given weights with each source removed in turn.

    # choose on validation (writes output/tune/val/{evidence.pt,search.json})
    python tools/tune_class_sources.py --config-file configs/avss_synth/ovavss_effnet_yamnet_minilm.yaml \\
        --dataset avss_synth_val --output output/tune/val --search
    # score fixed weights and the single-source ablations on another dataset
    python tools/tune_class_sources.py --config-file configs/avss_synth/ovavss_effnet_yamnet_minilm.yaml \\
        --dataset avss_synth_test --output output/tune/test --ablate

The weights come from the config (``MODEL.CLASS_SOURCES.*``); overrides go after the flags as
``KEY VALUE`` pairs. Everything is chosen on the dataset given; choose on validation only.
"""

import argparse
import itertools
import json
import logging
import os
from typing import Dict, List, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.data import build_detection_test_loader
from detectron2.modeling import build_model
from detectron2.utils.logger import setup_logger
from tqdm import tqdm

from ovavss_d2 import add_ovavss_config
from ovavss_d2.data import build_dataset_mapper
from ovavss_d2.evaluation import build_evaluator
from ovavss_d2.modeling.class_sources import SourceWeights, combine_evidence

logger = logging.getLogger("ovavss_d2.tune")

DEFAULT_GRID = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)


def setup(args: argparse.Namespace):
    """Config of the checkpoint with ``--dataset`` as its only test dataset."""
    cfg = get_cfg()
    add_ovavss_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.DATASETS.TEST = (args.dataset,)
    cfg.freeze()
    return cfg


@torch.no_grad()
def collect(cfg, model) -> List[Dict]:
    """Per clip of ``cfg.DATASETS.TEST[0]``: its mapper dict (without tensors) and its evidence."""
    loader = build_detection_test_loader(
        cfg, cfg.DATASETS.TEST[0], mapper=build_dataset_mapper(cfg, is_train=False)
    )
    records = []
    for batch in tqdm(loader, desc=f"evidence of {cfg.DATASETS.TEST[0]}", unit="clip"):
        for x, ev in zip(batch, model.class_evidence(batch)):
            inputs = {k: v for k, v in x.items() if not isinstance(v, torch.Tensor)}
            records.append({"inputs": inputs, "clip": ev})
    return records


def score_records(
    cfg,
    model,
    records: Sequence[Dict],
    weights: Mapping[str, SourceWeights],
    base_bias: Optional[float] = None,
    random_seed: Optional[int] = None,
) -> Dict[str, float]:
    """The evaluator's results for the cached clips under ``weights`` (sources without a weight are
    left out) and ``base_bias``; with ``random_seed``, the random-class baseline: each query's class
    distribution replaced by a one-hot on a uniformly drawn class (masks and p_fg kept)."""
    evaluator = build_evaluator(cfg, cfg.DATASETS.TEST[0], output_folder=None)
    evaluator.reset()
    saved = (model.source_weights, model.base_bias)
    model.source_weights = dict(weights)
    if base_bias is not None:
        model.base_bias = base_bias
    generator = torch.Generator().manual_seed(random_seed) if random_seed is not None else None
    try:
        for record in records:
            clip = dict(record["clip"])
            clip["evidence"] = {k: v for k, v in clip["evidence"].items() if k in weights}
            if generator is None:
                outputs = model.postprocess(clip)
            else:
                outputs = _random_class_outputs(model, clip, generator)
            evaluator.process([record["inputs"]], [outputs])
    finally:
        model.source_weights, model.base_bias = saved
    return dict(evaluator.evaluate()["sem_seg"])


def _random_class_outputs(model, clip: Dict, generator: torch.Generator) -> List[Dict]:
    """``model.postprocess`` with each query's class distribution a random one-hot."""
    scores = model.query_scores(clip)
    p_fg = scores.sum(-1, keepdim=True)  # p_cls sums to 1 over the K classes
    num_queries, num_classes = scores.shape[0], scores.shape[-1]
    labels = torch.randint(num_classes, (num_queries,), generator=generator)
    one_hot = F.one_hot(labels, num_classes).to(scores)
    if scores.dim() == 3:
        one_hot = one_hot[:, None].expand_as(scores)
    return model.postprocess(clip, scores=p_fg * one_hot)


def coordinate_search(
    score, weights: Dict[str, SourceWeights], grid: Sequence[float], rounds: int, objective: str
) -> List[Dict]:
    """Coordinate descent: each (source, base / novel) exponent in turn over ``grid``."""
    history = []
    best = score(weights)[objective]
    history.append({"weights": _plain(weights), objective: best})
    for _ in range(rounds):
        improved = False
        for name, part in itertools.product(list(weights), ("base", "novel")):
            for value in grid:
                trial = dict(weights)
                w = trial[name]
                trial[name] = SourceWeights(
                    value if part == "base" else w.base, value if part == "novel" else w.novel
                )
                if trial[name] == w:
                    continue
                result = score(trial)[objective]
                history.append({"weights": _plain(trial), objective: result})
                if result > best + 1e-6:
                    best, weights, improved = result, trial, True
                    logger.info("%s %s=%.2f: %s %.2f", name, part, value, objective, best)
        if not improved:
            break
    history.append({"chosen": _plain(weights), objective: best})
    return history


def _plain(weights: Mapping[str, SourceWeights]) -> Dict[str, List[float]]:
    return {k: [w.base, w.novel] for k, w in weights.items()}


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--dataset", required=True, help="a registered AVSS dataset")
    parser.add_argument("--output", required=True, help="folder for evidence.pt and the JSON")
    parser.add_argument("--search", action="store_true", help="coordinate descent on the weights")
    parser.add_argument("--ablate", action="store_true", help="each source removed in turn")
    parser.add_argument("--objective", default="hIoU", help="metric that --search maximises")
    parser.add_argument("--rounds", type=int, default=2, help="coordinate-descent rounds")
    parser.add_argument(
        "--grid", default=",".join(str(g) for g in DEFAULT_GRID), help="exponents tried"
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE")
    args = parser.parse_args(argv)
    setup_logger(name="ovavss_d2")
    setup_logger(name="detectron2", abbrev_name="d2")
    cfg = setup(args)
    os.makedirs(args.output, exist_ok=True)
    model = build_model(cfg).eval()
    DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)

    cache = os.path.join(args.output, "evidence.pt")
    if os.path.isfile(cache):
        records = torch.load(cache, weights_only=False)
        logger.info("read the evidence of %d clips from %s", len(records), cache)
    else:
        records = collect(cfg, model)
        torch.save(records, cache)
        logger.info("wrote the evidence of %d clips to %s", len(records), cache)

    weights = dict(model.source_weights)
    report: Dict[str, object] = {"dataset": args.dataset, "weights": _plain(weights)}
    report["results"] = score_records(cfg, model, records, weights)
    if args.search:
        grid = [float(g) for g in args.grid.split(",")]

        def score(w):
            return score_records(cfg, model, records, w)

        report["search"] = coordinate_search(score, weights, grid, args.rounds, args.objective)
        weights = {k: SourceWeights(*v) for k, v in report["search"][-1]["chosen"].items()}
        report["chosen_results"] = score_records(cfg, model, records, weights)
        names = list(weights)
        logger.info(
            "chosen: MODEL.CLASS_SOURCES.NAMES %s BASE_WEIGHTS %s NOVEL_WEIGHTS %s",
            names,
            [weights[n].base for n in names],
            [weights[n].novel for n in names],
        )
    if args.ablate:
        report["ablations"] = {
            f"without {name}": score_records(
                cfg, model, records, {k: w for k, w in weights.items() if k != name}
            )
            for name in weights
            if len(weights) > 1
        }
    path = os.path.join(args.output, "search.json" if args.search else "results.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=1)
    logger.info("wrote %s", path)


if __name__ == "__main__":
    main()
