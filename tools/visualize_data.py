#!/usr/bin/env python
"""Draw the ground truth of training frames with Detectron2's Visualizer (as its visualize_data).

``--source annotation`` draws the frames of each ``DATASETS.TRAIN`` dataset (or ``--datasets``) as
stored, through the per-frame view of the clip dataset (``ovavss_d2/data/frame_view.py``: label
files decoded to class-index PNGs in ``<output-dir>/label_cache``) and
``Visualizer.draw_dataset_dict``; ``--source dataloader`` draws what training sees: the frames
and labels of the train loader's clips after sampling, resizing and flipping. One image per
frame, ``<output-dir>/<dataset or "loader">_<clip>_<frame>.jpg``. Example::

    python tools/visualize_data.py \\
        --config-file configs/avss_synth/ovavss_effnet_yamnet_minilm.yaml \\
        --source annotation --output-dir output/visualize_data --max-frames 20
"""

import argparse
import itertools
import os
import re
from typing import Dict, Iterator, Tuple

import numpy as np

from ovavss_d2.utils import preflight  # torch-free: the arguments are checked first


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", required=True, metavar="FILE")
    parser.add_argument("--source", choices=["annotation", "dataloader"], required=True)
    parser.add_argument("--output-dir", required=True, help="folder of the drawn frames")
    parser.add_argument(
        "--datasets", nargs="+", default=None, help="registered clip datasets (annotation only)"
    )
    parser.add_argument("--max-frames", type=int, default=20, help="frames drawn (0: all)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return parser


def _safe(text: str) -> str:
    return re.sub(r"[^\w.-]+", "_", text)


def annotation_frames(names, cache_dir: str) -> Iterator[Tuple[str, np.ndarray, Dict, str]]:
    """``(name, RGB frame, frame dict, dataset)`` of every frame of the clip datasets."""
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.data.detection_utils import read_image

    from ovavss_d2.data.frame_view import frame_dicts

    for dataset in names:
        metadata = MetadataCatalog.get(dataset)
        for frame in frame_dicts(DatasetCatalog.get(dataset), metadata, cache_dir=cache_dir):
            name = f"{dataset}_{frame['clip_id']}_{frame['frame_index']}"
            yield name, read_image(frame["file_name"], format="RGB"), frame, dataset


def loader_frames(cfg) -> Iterator[Tuple[str, np.ndarray, Dict, str]]:
    """``(name, RGB frame, {"sem_seg": labels} or {}, dataset)`` of the train loader's clips."""
    from detectron2.data import get_detection_dataset_dicts
    from detectron2.data.detection_utils import convert_image_to_rgb

    from ovavss_d2.data import build_dataset_mapper
    from ovavss_d2.data.samplers import build_resumable_train_loader

    dicts = get_detection_dataset_dicts(cfg.DATASETS.TRAIN, filter_empty=False)
    loader, _ = build_resumable_train_loader(cfg, dicts, build_dataset_mapper(cfg, is_train=True))
    for batch in loader:
        for clip in batch:
            annotated = clip.get("annotated", [True] * len(clip["images"]))
            for t, image in enumerate(clip["images"]):
                rgb = convert_image_to_rgb(image.permute(1, 2, 0).numpy(), cfg.INPUT.FORMAT)
                frame = {"sem_seg": clip["sem_seg"][t].numpy()} if bool(annotated[t]) else {}
                name = f"loader_{clip.get('clip_id', 'clip')}_{t}"
                yield name, rgb, frame, cfg.DATASETS.TRAIN[0]


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    if args.max_frames < 0:
        raise SystemExit("--max-frames: must be >= 0")
    try:
        preflight.check_output_dir(args.output_dir, "--output-dir")
    except preflight.InputError as e:
        raise SystemExit(str(e)) from None

    from detectron2.data import MetadataCatalog
    from detectron2.utils.logger import setup_logger
    from detectron2.utils.visualizer import Visualizer
    from PIL import Image

    from ovavss_d2 import get_cfg
    from ovavss_d2.data.datasets import register_from_config

    cfg = get_cfg()
    try:
        preflight.merge_config(cfg, args.config_file, args.opts, "command-line overrides")
    except preflight.InputError as e:
        raise SystemExit(str(e)) from None
    cfg.freeze()
    setup_logger(name="ovavss_d2")
    register_from_config(cfg)
    os.makedirs(args.output_dir, exist_ok=True)
    if args.source == "annotation":
        names = args.datasets or list(cfg.DATASETS.TRAIN)
        cache = os.path.join(args.output_dir, "label_cache")
        frames = annotation_frames(names, cache)
    else:
        frames = loader_frames(cfg)
    count = args.max_frames or None
    written = 0
    for name, image, frame, dataset in itertools.islice(frames, count):
        vis = Visualizer(image, metadata=MetadataCatalog.get(dataset))
        drawn = vis.draw_dataset_dict(frame).get_image()
        Image.fromarray(drawn).save(os.path.join(args.output_dir, _safe(name) + ".jpg"))
        written += 1
    print(f"wrote {written} frames to {args.output_dir}")


if __name__ == "__main__":
    main()
