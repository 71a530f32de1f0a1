#!/usr/bin/env python
"""Build AVSS-Synth, an offline audio-visual semantic segmentation benchmark (AVSBench format).

Photo cut-outs of Debian's tuxpaint-stamps-default (their alpha channel is the mask) move over real
or procedural backgrounds while their own real recordings play. Each clip: 5 frames over 5 s, 1-3
sounding objects, silent distractors, sources that stop or start within the clip, a noise floor at
a drawn SNR (stationary noise, off-screen speech babble and sounds), camera motion, colour / blur /
JPEG variation, backgrounds and noise recordings held out per split, and robustness variants of the
test split (clean, fixed SNRs): AVSS-Synth v2 (v1 is retired). See datasets/README.md.

    python datasets/prepare_avss_synth.py                        # 1600 clips, 224x224, seed 0
    python datasets/prepare_avss_synth.py --train-clips 3000 --snr-range 5 30 --variants clean,0
    python datasets/prepare_avss_synth.py --train-pool wide --output datasets/AVSS-Synth-wide

The generator itself is the package ``avss_synth`` beside this script (datasets/avss_synth). The
build ends with ``manifest.json`` (a hash of every file, the versions used) and prints its
fingerprint; ``--verify`` checks an existing build against its manifest:

    python datasets/prepare_avss_synth.py --verify [--expect FINGERPRINT]

Needs the media packages: `bash scripts/setup.sh --media`.
"""

import argparse
import logging
import os
import sys
import time
from typing import Tuple

from avss_synth import (
    DEFAULT_CLIPS,
    RETIRED_VERSION_ERROR,
    MediaError,
    build_avss_synth,
    parse_variants,
)
from avss_synth.build import TRAIN_POOLS
from avss_synth.manifest import SHORT, add_verify_arguments, read_manifest, report_verify


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
    parser.add_argument(
        "--version", type=int, default=2, help="benchmark version: 2 (v1 is retired)"
    )
    for split in ("train", "val", "test"):
        parser.add_argument(
            f"--{split}-clips", type=int, default=DEFAULT_CLIPS[split], help=f"{split} clips"
        )
    parser.add_argument(
        "--snr-range",
        type=float,
        nargs=2,
        default=(0.0, 30.0),
        metavar=("LOW", "HIGH"),
        help="dB range of the drawn noise floor",
    )
    parser.add_argument(
        "--variants",
        default="clean,20,10,5",
        help="test variants, 'clean' and SNRs in dB, comma-separated ('' for none)",
    )
    parser.add_argument(
        "--write-stems",
        action="store_true",
        help="also write stems/<uid>/{sources,noise}.wav (float32) of every clip",
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
        default=min(2, os.cpu_count() or 1),
        help="processes; the output does not depend on it",
    )
    parser.add_argument(
        "--train-pool",
        choices=TRAIN_POOLS,
        default="base",
        help="objects of the training clips: the 13 base classes, or also the wide pool of every "
        "stamp that is neither a class nor a near-synonym of a novel one (datasets/README.md); "
        "val and test are the same either way",
    )
    parser.add_argument("--force", action="store_true", help="replace an earlier build")
    add_verify_arguments(parser)
    return parser


def main(argv=None) -> int:
    """Generate the benchmark; return the exit status."""
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log = logging.getLogger("prepare_avss_synth")
    if args.verify:
        return report_verify(args.output, args.expect)
    if args.version != 2:
        log.error("prepare_avss_synth: --version %d: %s", args.version, RETIRED_VERSION_ERROR)
        return 2
    clips = {s: getattr(args, f"{s}_clips") for s in ("train", "val", "test")}
    if min(clips.values()) < 0:
        log.error("clip counts must not be negative")
        return 2
    try:
        variants = parse_variants(args.variants)
    except ValueError as e:
        log.error("prepare_avss_synth: --variants: %s", e)
        return 2
    if args.snr_range[0] > args.snr_range[1]:
        log.error("prepare_avss_synth: --snr-range LOW must not exceed HIGH")
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
            snr_range=tuple(args.snr_range),
            variants=variants,
            write_stems=args.write_stems,
            train_pool=args.train_pool,
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
    print(f"fingerprint: {read_manifest(args.output)['fingerprint'][:SHORT]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
