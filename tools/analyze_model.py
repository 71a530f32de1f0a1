#!/usr/bin/env python
"""FLOPs, activations, parameters or structure of a model (as Detectron2's analyze_model).

Counts run on one synthetic clip (random frames and audio of ``--frames`` frames at ``--size`` x
``--width`` pixels; no dataset needed) through the whole inference (``model.eval()``: backbone,
audio encoder, decoders, class sources, post-processing), with fvcore's counters behind
``ovavss_d2.utils.analysis.ClipTensorAdapter`` (Detectron2 0.6's ``detectron2.utils.analysis``
does not import with torch 2.x). fvcore counts one fused multiply-add as one flop and skips
element-wise ops (the skipped ops are logged). Weights do not change the counts: the model keeps
its initialisation unless ``MODEL.WEIGHTS`` is given. Example::

    python tools/analyze_model.py \\
        --config-file configs/avss_synth/ovavss_effnet_yamnet_minilm.yaml --tasks flop parameter
"""

import argparse
import logging

from ovavss_d2.utils import preflight  # torch-free: the arguments are checked first

TASKS = ("flop", "activation", "parameter", "structure")
logger = logging.getLogger("ovavss_d2.analyze_model")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", required=True, metavar="FILE")
    parser.add_argument("--tasks", nargs="+", required=True, choices=TASKS)
    parser.add_argument("--size", type=int, default=224, help="frame height (pixels)")
    parser.add_argument("--width", type=int, default=0, help="frame width (0: the height)")
    parser.add_argument("--frames", type=int, default=5, help="frames per clip T")
    parser.add_argument("--max-depth", type=int, default=3, help="module depth of the tables")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return parser


def synthetic_inputs(frames: int, height: int, width: int, patch_frames: int, mel_bins: int):
    """``(images, audio)`` of one clip: uint8 ``(1, T, 3, H, W)`` and ``(1, T, 1, L, M)``."""
    import torch

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (1, frames, 3, height, width), generator=g, dtype=torch.uint8)
    return images, torch.randn(1, frames, 1, patch_frames, mel_bins, generator=g)


def build_model_for_analysis(cfg):
    """The configured model in eval mode, weights from ``MODEL.WEIGHTS`` when set, vocabulary of
    the first test dataset."""
    from detectron2.modeling import build_model

    from ovavss_d2.checkpoint import OVAVSSCheckpointer
    from ovavss_d2.data.vocabulary import dataset_vocabulary

    model = build_model(cfg)
    if cfg.MODEL.WEIGHTS:
        share = cfg.MODEL.CHECKPOINT.MAX_UNLOADED_SHARE
        OVAVSSCheckpointer(model, max_unloaded_share=share).load(cfg.MODEL.WEIGHTS)
    if hasattr(model, "set_vocabulary"):
        vocabulary = dataset_vocabulary(cfg.DATASETS.TEST[0]) if cfg.DATASETS.TEST else []
        model.set_vocabulary(vocabulary or model.train_keys)
    return model.eval()


def main(argv=None) -> dict:
    """Run the tasks; return ``{"gflops": ..., "activations": ..., "parameters": table}`` for
    those run."""
    args = get_parser().parse_args(argv)
    if min(args.size, args.frames) < 1 or args.width < 0:
        raise SystemExit("--size and --frames must be >= 1, --width >= 0")

    import torch
    from detectron2.utils.logger import setup_logger
    from fvcore.nn import flop_count_table, parameter_count_table

    from ovavss_d2 import get_cfg
    from ovavss_d2.data.datasets import register_from_config
    from ovavss_d2.utils.analysis import (
        ClipTensorAdapter,
        activation_count_analysis,
        flop_count_analysis,
    )

    cfg = get_cfg()
    try:
        preflight.merge_config(cfg, args.config_file, args.opts, "command-line overrides")
    except preflight.InputError as e:
        raise SystemExit(str(e)) from None
    cfg.freeze()
    setup_logger(name="ovavss_d2")
    register_from_config(cfg)
    model = build_model_for_analysis(cfg)
    width = args.width or args.size
    audio = cfg.INPUT.AUDIO
    inputs = synthetic_inputs(args.frames, args.size, width, audio.PATCH_FRAMES, audio.NUM_MEL_BINS)
    adapter = ClipTensorAdapter(model)
    clip = f"one clip of {args.frames} frames at {args.size}x{width}"
    results = {}
    with torch.no_grad():
        adapter(*inputs)  # fills the text-embedding caches: the counts are those of a later clip
        if "flop" in args.tasks:
            flops = flop_count_analysis(adapter, inputs)
            logger.info(
                "FLOPs (fvcore: multiply-adds) of %s, by module:\n%s",
                clip,
                flop_count_table(flops, max_depth=args.max_depth),
            )
            results["gflops"] = flops.total() / 1e9
            logger.info("total: %.3f GFLOPs per clip", results["gflops"])
            if flops.unsupported_ops():
                logger.info("uncounted ops: %s", dict(flops.unsupported_ops()))
        if "activation" in args.tasks:
            activations = activation_count_analysis(adapter, inputs)
            per_module = {  # the adapter's module names start with "model"
                name: count
                for name, count in activations.by_module().items()
                if name.count(".") < args.max_depth + 1 and count and name
            }
            results["activations"] = activations.total()
            logger.info(
                "Activations (output elements of counted ops) of %s, by module:\n%s",
                clip,
                "\n".join(f"{name}: {count / 1e6:.3f} M" for name, count in per_module.items()),
            )
    if "parameter" in args.tasks:
        results["parameters"] = parameter_count_table(model, max_depth=args.max_depth)
        logger.info("Parameters:\n%s", results["parameters"])
    if "structure" in args.tasks:
        logger.info("Model structure:\n%s", model)
    return results


if __name__ == "__main__":
    main()
