#!/usr/bin/env python
"""Segment and name the sounding objects of a video: overlay video, label PNGs and a JSON.

    python demo/demo.py --video clip.mp4 [--audio clip.wav] --vocabulary "dog, violin" \\
        --output output/demo

Writes into ``--output``: ``<video>_overlay.mp4`` (masks and class names drawn on the segmented
frames, the original audio muxed back in), ``<video>_labels/<frame>.png`` (one palette label map
per segmented frame: 0 background, k the k-th vocabulary class) and ``<video>.json`` (per frame,
each detected sounding object: class, score, area, box). See docs/GETTING_STARTED.md.

Arguments and files are checked before torch and Detectron2 are imported (the functions of the
second phase import them), so a bad input gives one line ``demo.py: error: ...`` within a second.
"""

import argparse
import json
import logging
import math
import shutil
import sys
from collections import deque
from pathlib import Path
from typing import Deque, Dict, List, Optional

from ovavss_d2.data.vocabulary import Vocabulary, parse_vocabulary, read_vocabulary_file
from ovavss_d2.utils import preflight
from ovavss_d2.utils.video_io import MediaError, NoAudioTrackError, iter_frames, probe_video

PROG = "demo.py"
# The default model's config (as ovavss_d2.predictor.DEFAULT_CONFIG_FILE, without importing it).
DEFAULT_CONFIG = (
    Path(__file__).resolve().parents[1] / "configs/avss_synth/ovavss_effnet_yamnet_minilm.yaml"
)
# Smallest frame side the demo draws on (Detectron2's Visualizer fails on 2-pixel frames).
MIN_FRAME_SIDE = 16
logger = logging.getLogger("ovavss_d2.demo")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--video", required=True, help="input video (any format PyAV or OpenCV reads)"
    )
    parser.add_argument(
        "--audio",
        help="audio file (wav, flac, ogg, mp3, m4a...); default: the video's own audio track",
    )
    parser.add_argument(
        "--config-file",
        default=str(DEFAULT_CONFIG),
        metavar="FILE",
        help="model config (default: the out-of-the-box offline model)",
    )
    vocab = parser.add_mutually_exclusive_group()
    vocab.add_argument(
        "--vocabulary",
        help="class names separated by commas, synonyms of a class joined by '|', e.g. 'dog, "
        "violin, fire truck|fire engine' (default: the config's vocabulary)",
    )
    vocab.add_argument(
        "--vocabulary-file", metavar="FILE", help="class names, one per line (synonyms: '|')"
    )
    parser.add_argument("--output", required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--confidence-threshold",
        type=float,
        default=None,
        help="keep objects scoring at least this (default: the config's "
        "MODEL.OVAVSS.TEST.SCORE_THRESHOLD)",
    )
    parser.add_argument(
        "--every-frame",
        action="store_true",
        help="segment every frame, each with the second of audio centred on it "
        "(default: one frame per second, with that second's audio, as AVSBench)",
    )
    parser.add_argument(
        "--stride",
        type=int,
        default=None,
        help="segmented frames between the starts of consecutive model windows, 1..T (default: "
        "the config's TEST.VIDEO.STRIDE; T = back-to-back windows, smaller = overlapping windows, "
        "steadier and T/stride times the cost)",
    )
    parser.add_argument(
        "--allow-untrained",
        action="store_true",
        help="run a model whose trained parts keep their random initialisation (no MODEL.WEIGHTS)"
        ": it segments nothing useful (MODEL.ALLOW_UNTRAINED True)",
    )
    parser.add_argument(
        "--opts",
        default=[],
        nargs=argparse.REMAINDER,
        help="config overrides as KEY VALUE pairs, e.g. MODEL.WEIGHTS model.pth",
    )
    return parser


def read_vocabulary(args: argparse.Namespace) -> Optional[Vocabulary]:
    """The vocabulary of ``--vocabulary`` or ``--vocabulary-file``; None for the config's."""
    if args.vocabulary is not None:
        return parse_vocabulary(args.vocabulary, where="--vocabulary")
    if args.vocabulary_file is not None:
        return read_vocabulary_file(args.vocabulary_file)
    return None


def check_args(args: argparse.Namespace) -> None:
    """Check arguments and input files without torch: config chain, overrides, device, weights,
    video / audio files, vocabulary, threshold and output folder.

    Raises:
        preflight.InputError: the first problem found.
    """
    chain = preflight.read_config_chain(args.config_file)
    opts = preflight.parse_opts(args.opts)
    preflight.check_device(str(preflight.config_value(chain, opts, "MODEL.DEVICE")))
    preflight.check_weights(str(preflight.config_value(chain, opts, "MODEL.WEIGHTS") or ""))
    preflight.check_input_file(args.video, "video")
    if args.audio:
        preflight.check_input_file(args.audio, "audio")
    read_vocabulary(args)
    threshold = args.confidence_threshold
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise preflight.InputError(f"--confidence-threshold must lie in [0, 1], got {threshold}")
    preflight.check_output_dir(args.output)


def parse_and_check(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parsed arguments; a bad input exits with one line ``demo.py: error: ...``."""
    args = get_parser().parse_args(argv)
    try:
        check_args(args)
    except preflight.InputError as e:
        sys.exit(f"{PROG}: error: {e}")
    return args


def setup_cfg(args: argparse.Namespace):
    """Config from ``--config-file``, ``--opts`` and the flags."""
    import torch

    from ovavss_d2 import get_cfg
    from ovavss_d2.data.datasets import register_from_config

    cfg = get_cfg()
    preflight.merge_config(cfg, args.config_file, args.opts, "--opts")
    if cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        raise preflight.InputError(
            f"MODEL.DEVICE {cfg.MODEL.DEVICE}: no GPU is available: add --opts MODEL.DEVICE cpu"
        )
    if args.allow_untrained:
        cfg.MODEL.ALLOW_UNTRAINED = True
    if args.confidence_threshold is not None:
        cfg.MODEL.OVAVSS.TEST.SCORE_THRESHOLD = args.confidence_threshold
    if args.stride is not None:
        cfg.TEST.VIDEO.STRIDE = args.stride
    cfg.freeze()
    register_from_config(cfg)  # DATASETS.CLASS_LIST / OV_SPLIT: the default vocabulary's classes
    return cfg


class DemoRun:
    """One pass over a video: its frames and audio through the predictor, results to disk.

    Args:
        args: the parsed command line.
        predictor: a model already loaded (to process several videos with one model); default:
            built from ``--config-file`` and ``--opts``.
    """

    def __init__(self, args: argparse.Namespace, predictor=None):
        from ovavss_d2.checkpoint import UntrainedModelError
        from ovavss_d2.predictor import AudioTrack, VideoPredictor

        self.args, self.cfg = args, setup_cfg(args)
        vocabulary = read_vocabulary(args)
        self.info = probe_video(args.video)
        if min(self.info.width, self.info.height) < MIN_FRAME_SIDE:
            raise MediaError(
                f"video '{args.video}': frames of {self.info.width}x{self.info.height} pixels are "
                f"too small: the demo needs at least {MIN_FRAME_SIDE} pixels a side"
            )
        self.audio_path = args.audio or args.video
        try:
            self.audio = AudioTrack(self.audio_path)
        except NoAudioTrackError:
            if args.audio:
                raise
            raise NoAudioTrackError(
                f"video '{args.video}' has no audio track: give the audio with --audio PATH"
            ) from None
        out, stem = Path(args.output), Path(args.video).stem
        self.video_out = out / f"{stem}_overlay.mp4"
        self.label_dir = out / f"{stem}_labels"
        self.json_out = out / f"{stem}.json"
        # What this run creates, removed again if it fails.
        self.created = {
            "output": not out.exists(),
            "labels": not self.label_dir.exists(),
            "video": not self.video_out.exists(),
        }
        if predictor is None:
            try:
                predictor = VideoPredictor(self.cfg, vocabulary=vocabulary)
            except UntrainedModelError as e:
                raise UntrainedModelError(e.problem, args.config_file, "add --allow-untrained")
        else:
            if vocabulary is not None:
                predictor.set_vocabulary(vocabulary)
            if args.stride is not None:
                predictor.stride = args.stride
        self.predictor = predictor
        self.threshold = float(self.cfg.MODEL.OVAVSS.TEST.SCORE_THRESHOLD)
        self.records: List[Dict] = []
        self.last_frame_time: Optional[float] = None

    def run(self) -> Dict:
        from tqdm import tqdm

        from ovavss_d2.predictor import sample_frames
        from ovavss_d2.utils.video_io import VideoWriter, open_audio
        from ovavss_d2.utils.visualization import render_frame, track_summaries

        args, info, predictor = self.args, self.info, self.predictor
        self.label_dir.mkdir(parents=True, exist_ok=True)
        if args.every_frame:
            out_fps, total = info.fps or 25.0, info.num_frames
        else:
            out_fps = 1.0
            total = math.ceil(info.duration) if info.duration else None
        selected = sample_frames(self._decoded(), args.every_frame, predictor.patch_seconds)
        pending: Deque = deque()  # (index, time, frame) of the frames awaiting their output

        def frames_and_audio_starts():
            for index, time, frame, audio_start in selected:
                pending.append((index, time, frame))
                yield frame, audio_start

        with VideoWriter(
            self.video_out, out_fps, audio=open_audio(self.audio_path)
        ) as writer, tqdm(total=total, unit="frame", desc="segmenting", dynamic_ncols=True) as bar:
            for output in predictor.stream_video(frames_and_audio_starts(), self.audio):
                index, time, frame = pending.popleft()
                label_file = self.label_dir / f"{index:06d}.png"
                overlay, objects = render_frame(
                    frame, output["instances"], predictor.class_names, self.threshold, label_file
                )
                writer.write(overlay)
                self.records.append(
                    {
                        "frame_index": index,
                        "time": round(time, 4),
                        "label_file": str(label_file.relative_to(self.json_out.parent)),
                        "objects": objects,
                    }
                )
                bar.update(1)
        self.audio.report_length(info.duration or 0.0)
        self._report_video_length()
        names = predictor.class_names
        summary = {
            "video": str(args.video),
            "audio": str(self.audio_path),
            "config_file": str(args.config_file),
            "weights": self.cfg.MODEL.WEIGHTS,
            "vocabulary": names,
            "confidence_threshold": self.threshold,
            "segmented_fps": out_fps,
            "overlay_video": str(self.video_out),
            "label_dir": str(self.label_dir),
            "window_length": predictor.clip_length,
            "window_stride": predictor.stride,
            "tracks": track_summaries(self.records, predictor.tracks, names, out_fps),
            "frames": self.records,
        }
        self.json_out.write_text(json.dumps(summary, indent=1))
        return summary

    def _decoded(self):
        """The decoded frames; the time of the last one is kept (video-length check)."""
        for item in iter_frames(self.args.video):
            self.last_frame_time = item[1]
            yield item

    def _report_video_length(self) -> None:
        """Warn when the frames end clearly before the duration the container claims."""
        info = self.info
        if not info.duration or self.last_frame_time is None:
            return
        frame_seconds = 1.0 / info.fps if info.fps else 0.0
        decoded = self.last_frame_time + frame_seconds
        if decoded < info.duration - max(2 * frame_seconds, 0.1):
            logger.warning(
                "video '%s' ends at %.2f s, before the %.2f s its container claims: the frames "
                "after %.2f s are missing",
                self.args.video,
                decoded,
                info.duration,
                decoded,
            )

    def cleanup(self) -> None:
        """After a failed run: remove what this run created (label folder, partial video, the
        output folder when it is left empty); earlier results stay."""
        if self.created["labels"] and self.label_dir.is_dir():
            shutil.rmtree(self.label_dir)
        if self.created["video"] and self.video_out.is_file():
            self.video_out.unlink()
        out = self.label_dir.parent
        if self.created["output"] and out.is_dir() and not any(out.iterdir()):
            out.rmdir()


def main(argv: Optional[List[str]] = None, predictor=None) -> Dict:
    """Run the demo; returns the JSON summary. Input errors exit with a one-line message."""
    args = parse_and_check(argv)
    from detectron2.utils.logger import setup_logger

    setup_logger(name="ovavss_d2")
    setup_logger(name="detectron2", abbrev_name="d2")
    setup_logger(name="fvcore")  # which checkpoint loaded, and any keys it lacked
    try:
        demo = DemoRun(args, predictor)  # checks every input before any work
    except (ValueError, FileNotFoundError) as e:  # MediaError, InputError, CheckpointError
        sys.exit(f"{PROG}: error: {e}")
    try:
        summary = demo.run()
    except (MediaError, preflight.InputError) as e:  # a video that breaks off in the middle
        demo.cleanup()
        sys.exit(f"{PROG}: error: {e}")
    except BaseException:
        demo.cleanup()
        raise
    print(f"overlay video: {summary['overlay_video']}")
    print(f"label maps:    {summary['label_dir']}/")
    print(f"detections:    {demo.json_out}")
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
