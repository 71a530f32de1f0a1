#!/usr/bin/env python
"""Sizes of the files ``train_net.py`` writes for a config, with frozen pretrained modules stored
(as before issue 19) and recorded by source (the default since), with and without the optimizer.

    python tools/checkpoint_sizes.py --config-file configs/avsbench_ov/ovavss_R50.yaml

The model is built with random weights (nothing is downloaded): a named CLIP that is not in the
download cache is replaced by a random one of its architecture (as tools/benchmark.py does), and a
VGGish without weights gets a random file of the real size, so that it has a source. The resumable
file holds what the trainer's checkpointer saves: the model and the AdamW state of every trainable
parameter (after one step; scheduler and RNG states are a few kB); the export
(``model_weights.pth``) holds the model only. Prints a Markdown table (docs/BENCHMARKS.md).
"""

import argparse
import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from detectron2.modeling import build_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark import CLIP_ARCHS, _clip_url, random_clip_checkpoint  # noqa: E402

from ovavss_d2 import get_cfg  # noqa: E402
from ovavss_d2.checkpoint import OVAVSSCheckpointer  # noqa: E402
from ovavss_d2.modeling.audio_encoder.vggish import VGGish  # noqa: E402
from ovavss_d2.solver import build_optimizer  # noqa: E402
from ovavss_d2.utils.preflight import ints_for_float_keys  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config-file", required=True, help="the config to measure")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides")
    return parser.parse_args(argv)


def random_config(args: argparse.Namespace, tmp: str):
    """The config on the CPU, with random CLIP / VGGish files where it names none that exist."""
    cfg = get_cfg()
    with ints_for_float_keys():
        cfg.merge_from_file(args.config_file)
        cfg.merge_from_list(args.opts)
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = ""
    name = cfg.MODEL.TEXT_ENCODER.CLIP_MODEL
    if cfg.MODEL.TEXT_ENCODER.NAME == "CLIPTextEncoder" and name in CLIP_ARCHS:
        cache = cfg.MODEL.TEXT_ENCODER.CLIP_DOWNLOAD_ROOT or os.path.expanduser("~/.cache/clip")
        if not os.path.isfile(os.path.join(cache, os.path.basename(_clip_url(name)))):
            cfg.MODEL.TEXT_ENCODER.CLIP_MODEL = random_clip_checkpoint(name, tmp)
    if cfg.MODEL.AUDIO_ENCODER.NAME == "VGGish" and not cfg.MODEL.AUDIO_ENCODER.WEIGHTS:
        path = os.path.join(tmp, "vggish-random.pth")
        torch.manual_seed(0)
        torch.save(VGGish(weights="none").state_dict(), path)
        cfg.MODEL.AUDIO_ENCODER.WEIGHTS = path
    return cfg


def main(argv=None) -> None:
    args = parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="ovavss_ckpt_sizes_")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    cfg = random_config(args, tmp)
    torch.manual_seed(0)
    model = build_model(cfg)
    optimizer = build_optimizer(cfg, model)
    for p in model.parameters():
        if p.requires_grad:
            p.grad = torch.zeros_like(p)
    optimizer.step()  # AdamW's moments exist from the first step on
    trainer = {"iteration": 0, "_trainer": {"optimizer": optimizer.state_dict()}}
    rows = []
    for frozen, store in (("stored", True), ("by source", False)):
        checkpointer = OVAVSSCheckpointer(model, tmp, store_frozen=store)
        checkpointer.save(f"resumable_{store}", trainer=trainer)
        resumable = os.path.getsize(os.path.join(tmp, f"resumable_{store}.pth"))
        export = os.path.getsize(checkpointer.save_weights(f"weights_{store}"))
        rows.append((frozen, resumable, export))
    print(f"{args.config_file}:\n")
    print("| frozen pretrained modules | model_XXXXXXX.pth / model_final.pth | model_weights.pth |")
    print("|---|---|---|")
    for frozen, resumable, export in rows:
        print(f"| {frozen} | {resumable / 1e6:.1f} MB | {export / 1e6:.1f} MB |")


if __name__ == "__main__":
    main()
