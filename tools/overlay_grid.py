#!/usr/bin/env python
"""Tile the frames of a demo overlay video into one picture (docs/images/demo_overlay.png).

python tools/overlay_grid.py output/demo/demo_clip_overlay.mp4 docs/images/demo_overlay.png
"""

import argparse
import math

import cv2
import numpy as np
from PIL import Image

from ovavss_d2.utils.video_io import iter_frames


def tile(frames, columns: int, width: int) -> np.ndarray:
    """``(H, W, 3)`` frames, each resized to ``width`` pixels wide, left to right, top to bottom."""
    height = int(round(frames[0].shape[0] * width / frames[0].shape[1]))
    rows = math.ceil(len(frames) / columns)
    grid = np.zeros((rows * height, columns * width, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        r, c = divmod(i, columns)
        small = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        grid[r * height : (r + 1) * height, c * width : (c + 1) * width] = small
    return grid


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", help="overlay video written by demo/demo.py")
    parser.add_argument("output", help="PNG to write")
    parser.add_argument("--columns", type=int, default=3)
    parser.add_argument("--width", type=int, default=320, help="width of one tile, pixels")
    args = parser.parse_args(argv)
    frames = [frame for _, _, frame in iter_frames(args.video)]
    if not frames:
        raise SystemExit(f"overlay_grid.py: error: '{args.video}' holds no frame")
    Image.fromarray(tile(frames, args.columns, args.width)).save(args.output, optimize=True)
    print(f"{len(frames)} frames -> {args.output}")


if __name__ == "__main__":
    main()
