#!/usr/bin/env python
"""Keep only the model weights of a training checkpoint, for shipping (e.g. the default model).

    python tools/export_model.py output/avss_synth/ovavss_effnet_yamnet_minilm/model_final.pth \\
        ovavss_d2/model_zoo/ovavss_effnet_yamnet_minilm.pth

train_net.py's checkpoints also hold the optimizer and scheduler states (about three times the
weights). The exported file holds ``{"model": state_dict, "__source__": ..., "iteration": ...}``,
which ``DetectionCheckpointer`` loads as it loads the original. Prints the size and SHA-256.
"""

import argparse
import hashlib
import sys
from pathlib import Path

import torch


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a .pth written by train_net.py (DetectionCheckpointer)")
    parser.add_argument("output", help="where to write the weights-only .pth")
    parser.add_argument(
        "--half",
        action="store_true",
        help="store floating-point tensors as float16 (half the size; loaded "
        "back into float32 parameters)",
    )
    args = parser.parse_args(argv)

    source = Path(args.checkpoint)
    if not source.is_file():
        sys.exit(f"export_model.py: error: checkpoint '{source}' not found")
    checkpoint = torch.load(source, map_location="cpu", weights_only=False)
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        sys.exit(f"export_model.py: error: '{source}' holds no 'model' state dict")
    weights = checkpoint["model"]
    if args.half:
        weights = {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}
    exported = {"model": weights, "__source__": source.name}
    if "iteration" in checkpoint:
        exported["iteration"] = checkpoint["iteration"]

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    torch.save(exported, output)
    digest = hashlib.sha256(output.read_bytes()).hexdigest()
    size = output.stat().st_size / 2**20
    print(f"{output}: {len(weights)} tensors, {size:.1f} MiB, sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
