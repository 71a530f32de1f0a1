#!/usr/bin/env python
"""Video inference on AVSS-Synth-Long: mIoU and F, track metrics, frames per second, peak memory.

Runs ``VideoPredictor.stream`` over every long clip of a registered dataset (frames read one at a
time), feeds each frame to the AVSS evaluator (``sem_seg``: the windows' maps combined) and, on
the kept tracked objects, to a second AVSS evaluator (the objects painted with their track's
class, higher scores winning: ``mIoU_tracks``) and to the track metrics (docs/METRICS.md).
Frames per second count the whole loop (decoding, audio, model, tracking, evaluation) after one
warm-up call (text embeddings of the vocabulary); the peak resident set size is that of this
process, so run one setting per process::

    python datasets/prepare_avss_synth_long.py
    python tools/eval_long_video.py --stride 5 --output output/long/s5.json
    python tools/eval_long_video.py --stride 5 --today --output output/long/today.json
"""

import argparse
import json
import logging
import platform
import resource
import time
from typing import Iterator

import numpy as np
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data import detection_utils as utils
from detectron2.structures import Instances
from detectron2.utils.logger import setup_logger

from ovavss_d2 import get_cfg
from ovavss_d2.data.audio import read_audio
from ovavss_d2.data.labels import read_label_map
from ovavss_d2.data.vocabulary import dataset_vocabulary
from ovavss_d2.evaluation.avss_evaluation import AVSSEvaluator
from ovavss_d2.evaluation.track_metrics import TrackMetrics
from ovavss_d2.modeling.meta_arch.postprocessing import paint_instances
from ovavss_d2.predictor import DEFAULT_CONFIG_FILE, VideoPredictor
from ovavss_d2.utils.preflight import ints_for_float_keys
from ovavss_d2.utils.visualization import select_instances

logger = logging.getLogger("ovavss_d2.eval_long_video")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-file", default=str(DEFAULT_CONFIG_FILE))
    parser.add_argument("--dataset", default="avss_synth_long_test")
    parser.add_argument("--stride", type=int, default=None, help="TEST.VIDEO.STRIDE override")
    parser.add_argument(
        "--today",
        action="store_true",
        help="the inference before windows and tracks: back-to-back windows, a short last "
        "window, no tracking (each window's objects are new tracks)",
    )
    parser.add_argument(
        "--all-background",
        action="store_true",
        help="the trivial baseline: every pixel background, no object (no model call)",
    )
    parser.add_argument("--max-clips", type=int, default=0, help="first N clips only (0: all)")
    parser.add_argument("--output", help="JSON file of the results")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE")
    return parser


def build_predictor(args) -> VideoPredictor:
    cfg = get_cfg()
    with ints_for_float_keys():  # KEY 0 for a float key
        cfg.merge_from_file(args.config_file)
        cfg.merge_from_list(args.opts)
    if args.stride is not None:
        cfg.TEST.VIDEO.STRIDE = args.stride
    if args.today:
        cfg.TEST.VIDEO.STRIDE = 0
        cfg.TEST.VIDEO.FULL_LAST_WINDOW = False
        cfg.TEST.VIDEO.TRACK.ENABLED = False
    vocabulary = dataset_vocabulary(args.dataset, cfg.MODEL.OVAVSS.TEST.VOCABULARY)
    return VideoPredictor(cfg, vocabulary=vocabulary)


def background(clip: dict, meta) -> Iterator[dict]:
    """Outputs of the all-background baseline: channel 0 everywhere, no instances."""
    size = (clip["height"], clip["width"])
    for _ in clip["file_names"]:
        sem = torch.zeros(len(meta.stuff_classes), *size)
        sem[0] = 1
        instances = Instances(size)
        instances.pred_masks = torch.zeros(0, *size, dtype=torch.bool)
        instances.scores = torch.zeros(0)
        instances.pred_classes = torch.zeros(0, dtype=torch.int64)
        instances.track_ids = torch.zeros(0, dtype=torch.int64)
        yield {"sem_seg": sem, "instances": instances}


def evaluate(args) -> dict:
    predictor = build_predictor(args)
    clips = DatasetCatalog.get(args.dataset)
    if args.max_clips:
        clips = clips[: args.max_clips]
    meta = MetadataCatalog.get(args.dataset)
    semantic = AVSSEvaluator(args.dataset, distributed=False)
    painted = AVSSEvaluator(args.dataset, distributed=False)
    tracks = TrackMetrics(iou_threshold=0.5, ignore_label=meta.ignore_label)
    threshold = predictor.cfg.MODEL.OVAVSS.TEST.SCORE_THRESHOLD
    num_classes = len(meta.stuff_classes) - 1
    # warm-up outside the timing: the vocabulary's text embeddings and the first model call
    first = utils.read_image(clips[0]["file_names"][0], format="RGB")
    predictor([first], np.zeros(16000, dtype=np.float32), 16000)
    frames_done, begin = 0, time.perf_counter()
    for clip in clips:
        waveform, rate = read_audio(clip["audio_file_name"])
        n = len(clip["file_names"])
        patches = predictor.audio_patches(waveform, rate, n)
        items = (
            (utils.read_image(path, format="RGB"), patch)
            for path, patch in zip(clip["file_names"], patches)
        )
        stream = predictor.stream(items) if not args.all_background else background(clip, meta)
        for t, output in enumerate(stream):
            frame = {
                "clip_id": clip["clip_id"],
                "sem_seg_file_names": [clip["sem_seg_file_names"][t]],
                "frame_indices": [0],
                "class_names": clip["class_names"],
            }
            semantic.process([frame], [[{"sem_seg": output["sem_seg"]}]])
            kept = select_instances(output["instances"], threshold)
            painted.process([frame], [[{"sem_seg": paint_instances(kept, num_classes)}]])
            label = read_label_map(clip["sem_seg_file_names"][t], meta.label_num_classes)
            tracks.process_frame(
                clip["clip_id"],
                label,
                kept.pred_masks.numpy(),
                kept.pred_classes.tolist(),
                kept.track_ids.tolist(),
            )
        frames_done += n
        logger.info("%s: %d frames, %d tracks", clip["clip_id"], n, len(predictor.tracks))
    seconds = time.perf_counter() - begin
    sem = semantic.evaluate()["sem_seg"]
    results = {
        "dataset": args.dataset,
        "clips": len(clips),
        "frames": frames_done,
        "window_length": predictor.clip_length,
        "stride": predictor.stride,
        "today": args.today,
        "all_background": args.all_background,
        "mIoU": sem["mIoU"],
        "mIoU_base": sem["mIoU_base"],
        "mIoU_novel": sem["mIoU_novel"],
        "F": sem["F"],
        "mIoU_tracks": painted.evaluate()["sem_seg"]["mIoU"],
        **tracks.summarize(),
        "fps": frames_done / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
    }
    return results


def main(argv=None) -> dict:
    args = get_parser().parse_args(argv)
    setup_logger(name="ovavss_d2")
    results = evaluate(args)
    text = json.dumps(results, indent=1)
    print(text)
    if args.output:
        from pathlib import Path

        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text + "\n")
    return results


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
