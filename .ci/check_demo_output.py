#!/usr/bin/env python
"""Check what README's first command wrote: the demo's overlay video, label PNGs and JSON.

Usage: ``python .ci/check_demo_output.py VIDEO OUTPUT_DIR [--frames N]``. Exits non-zero with one
line per problem (docs/GETTING_STARTED.md, "Outputs", says what each file holds).
"""

import argparse
import json
import os
import sys
from typing import List

import av
import numpy as np
from PIL import Image

TOP_KEYS = (
    "video",
    "audio",
    "config_file",
    "weights",
    "vocabulary",
    "confidence_threshold",
    "segmented_fps",
    "overlay_video",
    "label_dir",
    "frames",
)
FRAME_KEYS = ("frame_index", "time", "label_file", "objects")
OBJECT_KEYS = ("class", "label", "score", "area", "box")


def count_video_frames(path: str) -> int:
    """Decoded frames of the first video stream (not the container's estimate)."""
    with av.open(path) as container:
        return sum(1 for _ in container.decode(video=0))


def check(video: str, out_dir: str, expected_frames: int) -> List[str]:
    name = os.path.splitext(os.path.basename(video))[0]
    problems = []
    json_path = os.path.join(out_dir, f"{name}.json")
    if not os.path.isfile(json_path):
        return [f"{json_path}: missing"]
    with open(json_path) as f:
        record = json.load(f)
    problems += [f"{json_path}: no key '{k}'" for k in TOP_KEYS if k not in record]
    frames = record.get("frames", [])
    if len(frames) != expected_frames:
        problems.append(f"{json_path}: {len(frames)} frames, expected {expected_frames}")
    vocabulary = record.get("vocabulary", [])
    if not vocabulary:
        problems.append(f"{json_path}: empty vocabulary")
    for i, fr in enumerate(frames):
        where = f"{json_path}: frames[{i}]"
        problems += [f"{where}: no key '{k}'" for k in FRAME_KEYS if k not in fr]
        label_file = os.path.join(out_dir, fr.get("label_file", ""))
        if not os.path.isfile(label_file):
            problems.append(f"{where}: label file {label_file} missing")
            continue
        labels = np.asarray(Image.open(label_file))
        scores = [o.get("score", -1) for o in fr.get("objects", [])]
        if scores != sorted(scores, reverse=True):
            problems.append(f"{where}: objects not sorted by decreasing score")
        for j, obj in enumerate(fr.get("objects", [])):
            problems += [f"{where}.objects[{j}]: no key '{k}'" for k in OBJECT_KEYS if k not in obj]
            if obj.get("class") not in vocabulary:
                problems.append(
                    f"{where}.objects[{j}]: class {obj.get('class')!r} not in vocabulary"
                )
            if not 0.0 <= obj.get("score", -1) <= 1.0:
                problems.append(f"{where}.objects[{j}]: score {obj.get('score')} outside [0, 1]")
            x0, y0, x1, y1 = obj.get("box", (0, 0, 0, 0))
            h, w = labels.shape[:2]
            if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
                problems.append(f"{where}.objects[{j}]: box {obj.get('box')} outside {w}x{h}")
        painted = set(np.unique(labels).tolist()) - {0}
        named = {o.get("label") for o in fr.get("objects", [])}
        if not painted <= named:
            problems.append(f"{where}: {label_file} paints labels {painted - named} of no object")
    overlay = record.get("overlay_video", os.path.join(out_dir, f"{name}_overlay.mp4"))
    if not os.path.isfile(overlay):
        problems.append(f"{overlay}: missing")
    else:
        n = count_video_frames(overlay)
        if n != expected_frames:
            problems.append(f"{overlay}: {n} video frames, expected {expected_frames}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", help="the video given to demo/demo.py --video")
    parser.add_argument("output", help="the folder given to demo/demo.py --output")
    parser.add_argument("--frames", type=int, default=6, help="segmented frames expected")
    args = parser.parse_args()
    problems = check(args.video, args.output, args.frames)
    for p in problems:
        print(f"check_demo_output: {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"check_demo_output: {args.output}: {args.frames} frames, overlay and JSON as documented")


if __name__ == "__main__":
    main()
