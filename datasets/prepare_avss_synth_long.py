#!/usr/bin/env python
"""Build AVSS-Synth-Long: long clips whose objects persist while their sounds start and stop.

The benchmark of video inference over windows and tracks (docs/RESULTS.md, "Long videos"): each
clip lasts 30-40 s at one segmented frame per second, with 2-3 objects of distinct classes from
the AVSS-Synth media that stay visible and drift, each sounding in on / off stretches of seconds.

    python datasets/prepare_avss_synth_long.py                 # 2 val + 6 test clips, seed 0
    python datasets/prepare_avss_synth_long.py --test-clips 20 --seconds 30 60

Writes ``$DETECTRON2_DATASETS/AVSS-Synth-Long`` (registered as ``avss_synth_long_{val,test}``)
with its ``manifest.json`` and prints the build's fingerprint; ``--verify`` checks a build.
Needs the media packages: `bash scripts/setup.sh --media`.
"""

import argparse
import logging
import os
import sys
import time

from avss_synth import MediaError
from avss_synth.long_clips import DEFAULT_LONG_CLIPS, DEFAULT_SECONDS, build_avss_synth_long
from avss_synth.manifest import SHORT, add_verify_arguments, read_manifest, report_verify


def get_parser() -> argparse.ArgumentParser:
    """Command-line arguments of the long-clip generator."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    default_root = os.path.join(os.getenv("DETECTRON2_DATASETS", "datasets"), "AVSS-Synth-Long")
    parser.add_argument("--output", default=default_root, help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same files")
    for split in ("val", "test"):
        parser.add_argument(
            f"--{split}-clips", type=int, default=DEFAULT_LONG_CLIPS[split], help=f"{split} clips"
        )
    parser.add_argument(
        "--seconds",
        type=int,
        nargs=2,
        default=list(DEFAULT_SECONDS),
        metavar=("MIN", "MAX"),
        help="clip length range in seconds (= segmented frames)",
    )
    parser.add_argument("--size", type=int, nargs=2, default=[224, 224], metavar=("W", "H"))
    parser.add_argument("--sample-rate", type=int, default=16000, help="audio.wav sample rate")
    parser.add_argument("--force", action="store_true", help="replace an earlier build")
    add_verify_arguments(parser)
    return parser


def main(argv=None) -> int:
    """Generate the long clips; return the exit status."""
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.verify:
        return report_verify(args.output, args.expect)
    low, high = args.seconds
    if not 1 <= low <= high:
        print(f"error: --seconds needs 1 <= MIN <= MAX, got {low} {high}", file=sys.stderr)
        return 2
    if min(args.size) < 16:
        print(f"error: --size must be at least 16 16, got {args.size}", file=sys.stderr)
        return 2
    begin = time.time()
    try:
        counts = build_avss_synth_long(
            args.output,
            seed=args.seed,
            clips={"val": args.val_clips, "test": args.test_clips},
            seconds=(low, high),
            size=tuple(args.size),
            sample_rate=args.sample_rate,
            force=args.force,
        )
    except (MediaError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {counts} long clips to {args.output} in {time.time() - begin:.0f} s")
    print(f"fingerprint: {read_manifest(args.output)['fingerprint'][:SHORT]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
