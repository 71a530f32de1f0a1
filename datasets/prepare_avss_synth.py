#!/usr/bin/env python
"""Build AVSS-Synth, an offline audio-visual semantic segmentation benchmark (AVSBench format).

Photo cut-outs of Debian's tuxpaint-stamps-default (their alpha channel is the mask) move over real
background photographs (opencv-doc, scikit-image samples) while their own real recordings play.
Each clip: 5 frames over 5 s, 1-3 sounding objects, 0-2 visible silent distractors, a sound may stop
for a second (its object is background in that frame's label). See datasets/README.md.

    python datasets/prepare_avss_synth.py                        # ~200 clips, 224x224, seed 0
    python datasets/prepare_avss_synth.py --train-clips 1000 --size 320x240 --output /data/synth

Needs the media packages: `bash scripts/setup.sh --media`.
"""

import argparse
import logging
import os
import sys
import time
from typing import Tuple

from ovavss_d2.data.synth import DEFAULT_CLIPS, MediaError, build_avss_synth


def parse_size(text: str) -> Tuple[int, int]:
    """``"WxH"`` (or one number for a square) -> ``(W, H)``."""
    parts = text.lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got '{text}'") from None
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or min(values) < 16:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT of at least 16x16, got '{text}'")
    return values[0], values[1]


def default_output() -> str:
    """``$DETECTRON2_DATASETS/AVSS-Synth``, with detectron2's default ``datasets``."""
    return os.path.join(os.getenv("DETECTRON2_DATASETS", "datasets"), "AVSS-Synth")


def get_parser() -> argparse.ArgumentParser:
    """Command-line arguments of the generator."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--output", default=default_output(), help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same files")
    for split in ("train", "val", "test"):
        parser.add_argument(
            f"--{split}-clips", type=int, default=DEFAULT_CLIPS[split], help=f"{split} clips"
        )
    parser.add_argument("--size", type=parse_size, default="224x224", help="frame WIDTHxHEIGHT")
    parser.add_argument("--sample-rate", type=int, default=16000, help="audio.wav sample rate")
    parser.add_argument(
        "--stamps-dir",
        default=None,
        help="folder laid out like /usr/share/tuxpaint/stamps (None: that folder)",
    )
    parser.add_argument(
        "--backgrounds-dir",
        default=None,
        help="folder of background images (None: curated opencv-doc and scikit-image photos)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes; the output does not depend on it (one is enough for a few hundred clips)",
    )
    parser.add_argument("--force", action="store_true", help="replace an earlier build")
    return parser


def main(argv=None) -> int:
    """Generate the benchmark; return the exit status."""
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log = logging.getLogger("prepare_avss_synth")
    clips = {"train": args.train_clips, "val": args.val_clips, "test": args.test_clips}
    if min(clips.values()) < 0:
        log.error("clip counts must not be negative")
        return 2
    start = time.perf_counter()
    try:
        counts = build_avss_synth(
            args.output,
            seed=args.seed,
            clips=clips,
            size=args.size,
            sample_rate=args.sample_rate,
            stamps_dir=args.stamps_dir,
            backgrounds_dir=args.backgrounds_dir,
            workers=max(1, args.workers),
            force=args.force,
            progress=True,
        )
    except (MediaError, FileExistsError) as e:
        log.error("prepare_avss_synth: %s", e)
        return 2
    log.info(
        "wrote %d clips %s to %s in %.1f s",
        sum(counts.values()),
        counts,
        args.output,
        time.perf_counter() - start,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
