#!/usr/bin/env python
"""Choose the class-source ensemble weights of an OV-AVSS checkpoint on validation data.

Runs the model once over a dataset and caches, per clip, what each class-evidence source said
(``OVAVSS.class_evidence``: foreground probabilities, each source's ``(Q, K)`` distribution, the
mask logits), then re-scores the cached clips under other weights without running the model again,
with the project's own post-processing and evaluator. ``--search`` does coordinate descent over a
grid of each source's base and novel exponent on the ``--objective`` metric; ``--ablate`` scores
the given weights with each source removed in turn.

    # choose on validation (writes output/tune/val/{evidence.pt,search.json})
    python tools/tune_class_sources.py \\
        --config-file configs/avss_synth/ovavss_effnet_yamnet_minilm.yaml \\
        --dataset avss_synth_val --output output/tune/val --search
    # score fixed weights, the single-source ablations and the baselines on another dataset
    python tools/tune_class_sources.py \\
        --config-file configs/avss_synth/ovavss_effnet_yamnet_minilm.yaml \\
        --dataset avss_synth_test --output output/tune/test --ablate --baselines

The weights come from the config (``MODEL.CLASS_SOURCES.*``); overrides go after the flags as
``KEY VALUE`` pairs. Everything is chosen on the dataset given; choose on validation only.
"""

import argparse
import functools
import itertools
import json
import logging
import os
from typing import Dict, List, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from detectron2.data import build_detection_test_loader
from detectron2.modeling import build_model
from detectron2.utils.logger import setup_logger
from tqdm import tqdm

from ovavss_d2 import get_cfg
from ovavss_d2.checkpoint import OVAVSSCheckpointer
from ovavss_d2.data import build_dataset_mapper
from ovavss_d2.evaluation import build_evaluator, clip_evaluator
from ovavss_d2.modeling.class_sources import SourceWeights
from ovavss_d2.modeling.meta_arch.inference import frame_mask_logits
from ovavss_d2.modeling.meta_arch.postprocessing import semantic_from_masks

logger = logging.getLogger("ovavss_d2.tune")

DEFAULT_GRID = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
DEFAULT_BIAS_GRID = (0.0, 0.5, 1.0, 2.0, 3.0)


def setup(args: argparse.Namespace):
    """Config of the checkpoint with ``--dataset`` as its only test dataset."""
    cfg = get_cfg()
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.DATASETS.TEST = (args.dataset,)
    cfg.freeze()
    return cfg


@torch.no_grad()
def collect(cfg, model, max_clips: int = 0) -> List[Dict]:
    """Per clip of ``cfg.DATASETS.TEST[0]`` (the first ``max_clips``; 0: all): its mapper dict
    without tensors and its class evidence."""
    loader = build_detection_test_loader(
        cfg, cfg.DATASETS.TEST[0], mapper=build_dataset_mapper(cfg, is_train=False)
    )
    records = []
    for batch in tqdm(loader, desc=f"evidence of {cfg.DATASETS.TEST[0]}", unit="clip"):
        for x, ev in zip(batch, model.class_evidence(batch)):
            inputs = {k: v for k, v in x.items() if not isinstance(v, torch.Tensor)}
            records.append({"inputs": inputs, "clip": ev})
        if max_clips and len(records) >= max_clips:
            break
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
            if generator is not None:
                outputs = _random_class_outputs(model, clip, generator)
            elif "frame_probs" in record and model.semantic_from == "masks":
                outputs = _semantic_outputs(model.query_scores(clip), record["frame_probs"])
            else:
                outputs = model.postprocess(clip)
            evaluator.process([record["inputs"]], [outputs])
    finally:
        model.source_weights, model.base_bias = saved
    return dict(evaluator.evaluate()["sem_seg"])


def _semantic_outputs(scores: torch.Tensor, frame_probs: Sequence[torch.Tensor]) -> List[Dict]:
    """``sem_seg`` of each frame from cached mask probabilities, as ``clip_results`` computes it
    with ``semantic_from="masks"`` (the evaluator reads nothing else)."""
    return [
        {"sem_seg": semantic_from_masks(scores[:, t] if scores.dim() == 3 else scores, p.float())}
        for t, p in enumerate(frame_probs)
    ]


def cache_frame_probs(records: Sequence[Dict]) -> None:
    """Add each clip's per-frame mask probabilities at the original size (they do not depend on
    the weights): the search then only re-combines and re-paints."""
    for record in tqdm(records, desc="mask probabilities", unit="clip"):
        clip = record["clip"]
        sizes = (clip["padded_size"], clip["image_size"], clip["output_size"])
        record["frame_probs"] = [
            frame_mask_logits(clip["mask_logits"], t, *sizes).sigmoid().half()
            for t in range(clip["mask_logits"].shape[1])
        ]


def cache_label_reads() -> None:
    """Read each label file once per run (the search evaluates the same frames many times)."""
    read = clip_evaluator.read_label_map
    cached = functools.lru_cache(maxsize=None)(read)
    clip_evaluator.read_label_map = lambda *args, **kwargs: cached(*args, **kwargs).copy()


def score_all_background(cfg, records: Sequence[Dict]) -> Dict[str, float]:
    """The all-background baseline: channel 0 is 1 at every pixel of every frame."""
    evaluator = build_evaluator(cfg, cfg.DATASETS.TEST[0], output_folder=None)
    evaluator.reset()
    for record in records:
        clip = record["clip"]
        num_classes = int(clip["is_base"].numel())
        height, width = clip["output_size"]
        sem = torch.zeros(num_classes + 1, height, width)
        sem[0] = 1.0
        frames = [{"sem_seg": sem} for _ in range(clip["mask_logits"].shape[1])]
        evaluator.process([record["inputs"]], [frames])
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
    score,
    weights: Dict[str, SourceWeights],
    base_bias: float,
    grid: Sequence[float],
    bias_grid: Sequence[float],
    rounds: int,
    objective: str,
) -> List[Dict]:
    """Coordinate descent: each source's base and novel exponent over ``grid``, then the base
    bias over ``bias_grid``, for at most ``rounds`` rounds; ``score(weights, bias)`` is a result
    dict. The last entry of the returned history holds the choice."""
    best = score(weights, base_bias)[objective]
    history = [{"weights": _plain(weights), "base_bias": base_bias, objective: best}]
    for _ in range(rounds):
        improved = False
        for name, part in itertools.product(list(weights), ("base", "novel")):
            for value in grid:
                w = weights[name]
                new = SourceWeights(
                    value if part == "base" else w.base, value if part == "novel" else w.novel
                )
                if new == w:
                    continue
                trial = dict(weights, **{name: new})
                result = score(trial, base_bias)[objective]
                history.append(
                    {"weights": _plain(trial), "base_bias": base_bias, objective: result}
                )
                if result > best + 1e-6:
                    best, weights, improved = result, trial, True
                    logger.info("%s %s=%g: %s %.2f", name, part, value, objective, best)
        for bias in bias_grid:
            if bias == base_bias:
                continue
            result = score(weights, bias)[objective]
            history.append({"weights": _plain(weights), "base_bias": bias, objective: result})
            if result > best + 1e-6:
                best, base_bias, improved = result, bias, True
                logger.info("base_bias=%g: %s %.2f", bias, objective, best)
        if not improved:
            break
    history.append({"chosen": _plain(weights), "base_bias": base_bias, objective: best})
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
    parser.add_argument("--max-clips", type=int, default=0, help="only the first N clips (0: all)")
    parser.add_argument("--objective", default="hIoU", help="metric that --search maximises")
    parser.add_argument("--rounds", type=int, default=2, help="coordinate-descent rounds")
    parser.add_argument(
        "--grid", default=",".join(str(g) for g in DEFAULT_GRID), help="exponents tried"
    )
    parser.add_argument(
        "--bias-grid",
        default=",".join(str(g) for g in DEFAULT_BIAS_GRID),
        help="MODEL.CLASS_SOURCES.BASE_BIAS values tried",
    )
    parser.add_argument(
        "--baselines", action="store_true", help="also the random-class and all-background rows"
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE")
    args = parser.parse_args(argv)
    setup_logger(name="ovavss_d2")
    setup_logger(name="detectron2", abbrev_name="d2")
    cfg = setup(args)
    # The evaluator logs a per-class table on every call; the search makes hundreds.
    logging.getLogger("ovavss_d2.evaluation").setLevel(logging.WARNING)
    os.makedirs(args.output, exist_ok=True)
    model = build_model(cfg).eval()
    OVAVSSCheckpointer(model, max_unloaded_share=1.0).load(cfg.MODEL.WEIGHTS)

    cache = os.path.join(args.output, "evidence.pt")
    if os.path.isfile(cache):
        records = torch.load(cache, weights_only=False)
        logger.info("read the evidence of %d clips from %s", len(records), cache)
    else:
        records = collect(cfg, model, args.max_clips)
        torch.save(records, cache)
        logger.info("wrote the evidence of %d clips to %s", len(records), cache)

    cache_label_reads()
    weights, base_bias = dict(model.source_weights), model.base_bias
    report: Dict[str, object] = {
        "dataset": args.dataset,
        "weights": _plain(weights),
        "base_bias": base_bias,
        "results": score_records(cfg, model, records, weights, base_bias),
    }
    if args.search:
        grid = [float(g) for g in args.grid.split(",")]
        bias_grid = [float(g) for g in args.bias_grid.split(",")]

        def score(w, bias):
            return score_records(cfg, model, records, w, bias)

        cache_frame_probs(records)  # fp16 masks: the search's scores differ in the 3rd decimal

        history = coordinate_search(
            score, weights, base_bias, grid, bias_grid, args.rounds, args.objective
        )
        report["search"] = history
        for record in records:  # what is reported comes from model.postprocess itself
            del record["frame_probs"]
        weights = {k: SourceWeights(*v) for k, v in history[-1]["chosen"].items()}
        base_bias = history[-1]["base_bias"]
        report["chosen_results"] = score_records(cfg, model, records, weights, base_bias)
        names = list(weights)
        logger.info(
            "chosen: MODEL.CLASS_SOURCES.NAMES %s BASE_WEIGHTS %s NOVEL_WEIGHTS %s BASE_BIAS %g",
            names,
            [weights[n].base for n in names],
            [weights[n].novel for n in names],
            base_bias,
        )
    if args.ablate:
        report["ablations"] = {
            f"without {name}": score_records(
                cfg, model, records, {k: w for k, w in weights.items() if k != name}, base_bias
            )
            for name in weights
            if len(weights) > 1
        }
    if args.baselines:
        report["random_class"] = score_records(
            cfg, model, records, weights, base_bias, random_seed=0
        )
        report["background"] = score_all_background(cfg, records)
    path = os.path.join(args.output, "search.json" if args.search else "results.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=1)
    logger.info("wrote %s", path)


if __name__ == "__main__":
    main()
