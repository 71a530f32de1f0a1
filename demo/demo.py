#!/usr/bin/env python
"""Segment and name the sounding objects of a video: overlay video, label PNGs and a JSON.

    python demo/demo.py --video clip.mp4 [--audio clip.wav] --vocabulary "dog, violin" \\
        --output output/demo

Writes into ``--output``: ``<video>_overlay.mp4`` (masks and class names drawn on the segmented
frames, the original audio muxed back in), ``<video>_labels/<frame>.png`` (one palette label map
per segmented frame: 0 background, k the k-th vocabulary class) and ``<video>.json`` (per frame,
each detected sounding object: class, score, area, box). See docs/GETTING_STARTED.md.
"""

import argparse
import importlib.util
import json
import logging
import math
import shutil
import sys
from collections import deque
from pathlib import Path
from typing import Deque, Dict, Iterable, Iterator, List, Optional, Tuple

PROG = "demo.py"


def _load_preflight():
    """ovavss_d2/utils/preflight.py by path: the package init would import torch first."""
    name = "ovavss_d2.utils.preflight"  # the package's own name: one InputError class for both
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "ovavss_d2" / "utils" / "preflight.py"
        spec = importlib.util.spec_from_file_location(name, path)
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


preflight = _load_preflight()
# The default model's config (as ovavss_d2.predictor.DEFAULT_CONFIG_FILE, without importing it).
DEFAULT_CONFIG = (
    Path(__file__).resolve().parents[1] / "configs/avss_synth/ovavss_effnet_yamnet_minilm.yaml"
)
# Smallest frame side the demo draws on (Detectron2's Visualizer fails on 2-pixel frames).
MIN_FRAME_SIDE = 16


# Extra audio decoded on both sides of a window, so that resampling sees context at its edges.
AUDIO_MARGIN_SECONDS = 0.25


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
        help="comma-separated class names, e.g. 'dog, violin, fire truck' (default: the "
        "config's vocabulary)",
    )
    vocab.add_argument("--vocabulary-file", metavar="FILE", help="class names, one per line")
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
        "--opts",
        default=[],
        nargs=argparse.REMAINDER,
        help="config overrides as KEY VALUE pairs, e.g. MODEL.WEIGHTS model.pth",
    )
    return parser


def check_args(args: argparse.Namespace) -> None:
    """Check arguments and input files without torch: config chain, overrides, weights, device,
    video / audio / vocabulary files, vocabulary names, threshold and output folder.

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
    if args.vocabulary is not None:
        preflight.split_vocabulary(args.vocabulary)
    if args.vocabulary_file is not None and not Path(args.vocabulary_file).is_file():
        raise preflight.InputError(f"vocabulary file '{args.vocabulary_file}' not found")
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


if __name__ == "__main__":
    ARGS = parse_and_check()

# The heavy imports, after the inputs were checked.
import numpy as np  # noqa: E402
import torch  # noqa: E402
from detectron2.config import get_cfg  # noqa: E402
from detectron2.utils.logger import setup_logger  # noqa: E402
from tqdm import tqdm  # noqa: E402

from ovavss_d2 import add_ovavss_config  # noqa: E402
from ovavss_d2.data.audio import log_mel_patches  # noqa: E402
from ovavss_d2.data.datasets import register_from_config  # noqa: E402
from ovavss_d2.predictor import VideoPredictor, check_vocabulary, default_weights  # noqa: E402
from ovavss_d2.utils.video_io import (  # noqa: E402
    AudioWindow,
    MediaError,
    NoAudioTrackError,
    VideoWriter,
    iter_frames,
    open_audio,
    probe_video,
)
from ovavss_d2.utils.visualization import (  # noqa: E402
    draw_instances,
    instance_records,
    label_map,
    save_label_png,
    select_instances,
    track_summaries,
)

logger = logging.getLogger("ovavss_d2.demo")


def setup_cfg(args: argparse.Namespace):
    """Config from ``--config-file`` and ``--opts``; the default checkpoint when none is given.

    Raises:
        preflight.InputError: an unknown key or a value of the wrong type, a CUDA device without
            a GPU, or a threshold outside [0, 1].
    """
    cfg = get_cfg()
    add_ovavss_config(cfg)
    config_file = Path(args.config_file)
    if not config_file.is_file():
        raise FileNotFoundError(f"config file '{config_file}' not found")
    preflight.merge_config(cfg, config_file, args.opts, "--opts")
    if cfg.MODEL.DEVICE.startswith("cuda"):
        if not torch.cuda.is_available():
            raise preflight.InputError(
                f"MODEL.DEVICE {cfg.MODEL.DEVICE}: no GPU is available: add --opts MODEL.DEVICE cpu"
            )
    if not cfg.MODEL.WEIGHTS:
        weights = default_weights(config_file)
        if weights is not None:
            cfg.MODEL.WEIGHTS = str(weights)
    if args.confidence_threshold is not None:
        if not 0.0 <= args.confidence_threshold <= 1.0:
            raise ValueError(
                f"--confidence-threshold must lie in [0, 1], got {args.confidence_threshold}"
            )
        cfg.MODEL.OVAVSS.TEST.SCORE_THRESHOLD = args.confidence_threshold
    if args.stride is not None:
        cfg.TEST.VIDEO.STRIDE = args.stride
    cfg.freeze()
    register_from_config(cfg)  # DATASETS.CLASS_LIST / OV_SPLIT: the default vocabulary's classes
    return cfg


def read_vocabulary(args: argparse.Namespace) -> Optional[List[str]]:
    """The vocabulary from ``--vocabulary`` or ``--vocabulary-file``; None for the config's.

    Invisible characters (zero-width space, BOM) are removed; a name left empty is an error.
    """
    if args.vocabulary is not None:
        return check_vocabulary(preflight.split_vocabulary(args.vocabulary))
    if args.vocabulary_file is not None:
        path = Path(args.vocabulary_file)
        if not path.is_file():
            raise FileNotFoundError(f"vocabulary file '{path}' not found")
        names = []
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip() or line.strip().startswith("#"):
                continue
            name = preflight.clean_class_name(line)
            if not name:
                raise preflight.InputError(
                    f"{path}: line {number} holds only invisible characters, not a class name"
                )
            names.append(name)
        if not names:
            raise ValueError(f"vocabulary file '{path}' holds no class names")
        return check_vocabulary(names)
    return None


def sample_frames(
    frames: Iterable[Tuple[int, float, np.ndarray]], every_frame: bool, patch_seconds: float
) -> Iterator[Tuple[int, float, np.ndarray, float]]:
    """Choose the frames to segment and the start time of each one's audio patch.

    Every frame: its patch is centred on it. One per second (default): in second ``s``, the frame
    nearest to ``s + 0.5``, paired with the patch starting at ``s`` (AVSBench's pairing).

    Yields:
        ``(index, time, frame, audio_start)``.
    """
    if every_frame:
        for index, time, frame in frames:
            yield index, time, frame, time - patch_seconds / 2
        return
    best = None  # (distance to the middle of its second, index, time, frame)
    for index, time, frame in frames:
        second = math.floor(time)
        if best is not None and second != math.floor(best[2]):
            yield best[1], best[2], best[3], float(math.floor(best[2]))
            best = None
        distance = abs(time - (second + 0.5))
        if best is None or distance < best[0]:
            best = (distance, index, time, frame)
    if best is not None:
        yield best[1], best[2], best[3], float(math.floor(best[2]))


class DemoRun:
    """One pass over a video: windows of frames through the predictor, results to disk.

    Args:
        args: the parsed command line.
        predictor: a model already loaded (to process several videos with one model); default:
            built from ``--config-file`` and ``--opts``.
    """

    def __init__(self, args: argparse.Namespace, predictor: Optional[VideoPredictor] = None):
        self.args = args
        self.cfg = setup_cfg(args)
        self.vocabulary = read_vocabulary(args)
        self.info = probe_video(args.video)
        if min(self.info.width, self.info.height) < MIN_FRAME_SIDE:
            raise MediaError(
                f"video '{args.video}': frames of {self.info.width}x{self.info.height} pixels are "
                f"too small: the demo needs at least {MIN_FRAME_SIDE} pixels a side"
            )
        audio_path = args.audio or args.video
        try:
            self.model_audio = AudioWindow(open_audio(audio_path))
        except NoAudioTrackError:
            if args.audio:
                raise
            raise NoAudioTrackError(
                f"video '{args.video}' has no audio track: give the audio with --audio PATH"
            ) from None
        self.audio_path = audio_path
        out = Path(args.output)
        if out.exists() and not out.is_dir():
            raise ValueError(f"--output '{out}' exists and is not a folder")
        stem = Path(args.video).stem
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
            predictor = VideoPredictor(self.cfg, vocabulary=self.vocabulary)
        else:
            if self.vocabulary is not None:
                predictor.set_vocabulary(self.vocabulary)
            if args.stride is not None:
                predictor.stride = args.stride
        self.predictor = predictor
        self.threshold = float(self.cfg.MODEL.OVAVSS.TEST.SCORE_THRESHOLD)
        self.records: List[Dict] = []
        self.last_frame_time: Optional[float] = None

    def run(self) -> Dict:
        args, info = self.args, self.info
        self.label_dir.mkdir(parents=True, exist_ok=True)
        if args.every_frame:
            out_fps, total = info.fps or 25.0, info.num_frames
        else:
            out_fps = 1.0
            total = math.ceil(info.duration) if info.duration else None
        params = self.predictor.audio_params
        patch_seconds = params.patch_samples / params.sample_rate
        decoded = self._note_decoded(iter_frames(args.video))
        selected = sample_frames(decoded, args.every_frame, patch_seconds)
        pending: Deque[Tuple[int, float, np.ndarray]] = deque()  # frames awaiting their output
        items = self._model_inputs(selected, patch_seconds, pending)
        with VideoWriter(
            self.video_out, out_fps, audio=open_audio(self.audio_path)
        ) as writer, tqdm(total=total, unit="frame", desc="segmenting", dynamic_ncols=True) as bar:
            for output in self.predictor.stream(items):
                self._write(pending.popleft(), output, writer)
                bar.update(1)
        self._report_audio_length(info)
        self._report_video_length(info)
        names = self.predictor.class_names
        summary = {
            "video": str(args.video),
            "audio": str(self.audio_path),
            "config_file": str(args.config_file),
            "weights": self.cfg.MODEL.WEIGHTS,
            "vocabulary": self.predictor.class_names,
            "confidence_threshold": self.threshold,
            "segmented_fps": out_fps,
            "overlay_video": str(self.video_out),
            "label_dir": str(self.label_dir),
            "window_length": self.predictor.clip_length,
            "window_stride": self.predictor.stride,
            "tracks": track_summaries(self.records, self.predictor.tracks, names, out_fps),
            "frames": self.records,
        }
        self.json_out.write_text(json.dumps(summary, indent=1))
        return summary

    def _model_inputs(
        self,
        selected: Iterable[Tuple[int, float, np.ndarray, float]],
        patch_seconds: float,
        pending: Deque[Tuple[int, float, np.ndarray]],
    ) -> Iterator[Tuple[np.ndarray, torch.Tensor]]:
        """``(frame, log-mel patch)`` per selected frame, the audio decoded a window at a time;
        each frame is also queued in ``pending`` until its output comes back."""
        params = self.predictor.audio_params
        for group in _chunks(selected, self.predictor.clip_length):
            starts = [g[3] for g in group]
            begin = min(starts) - AUDIO_MARGIN_SECONDS
            end = max(starts) + patch_seconds + AUDIO_MARGIN_SECONDS
            waveform = self.model_audio.read(begin, end)
            if not np.isfinite(waveform).all():
                raise MediaError(
                    f"audio '{self.audio_path}' holds NaN or infinite samples between "
                    f"{max(begin, 0.0):.2f} s and {end:.2f} s"
                )
            patches = log_mel_patches(
                waveform, self.model_audio.sample_rate, [s - begin for s in starts], params
            )
            self.model_audio.discard_before(max(starts) - AUDIO_MARGIN_SECONDS)
            for (index, time, frame, _), patch in zip(group, patches):
                pending.append((index, time, frame))
                yield frame, patch

    def _note_decoded(
        self, frames: Iterable[Tuple[int, float, np.ndarray]]
    ) -> Iterator[Tuple[int, float, np.ndarray]]:
        """The decoded frames, passed on; the time of the last one is kept (video-length check)."""
        for item in frames:
            self.last_frame_time = item[1]
            yield item

    def _write(self, item: Tuple[int, float, np.ndarray], output: Dict, writer) -> None:
        """One frame's results: label PNG, overlay frame and JSON record."""
        index, time, frame = item
        names = self.predictor.class_names
        instances = select_instances(output["instances"], self.threshold)
        label_file = self.label_dir / f"{index:06d}.png"
        save_label_png(label_map(instances, *frame.shape[:2]), label_file)
        writer.write(draw_instances(frame, instances, names))
        self.records.append(
            {
                "frame_index": index,
                "time": round(time, 4),
                "label_file": str(label_file.relative_to(self.json_out.parent)),
                "objects": instance_records(instances, names),
            }
        )

    def _report_video_length(self, info) -> None:
        """Warn when the frames end clearly before the duration the container claims."""
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

    def _report_audio_length(self, info) -> None:
        rate = self.model_audio.sample_rate
        video_seconds = info.duration or 0.0
        if not self.model_audio.exhausted:
            logger.info(
                "the audio is longer than the %.2f s video; the rest is ignored", video_seconds
            )
        elif self.model_audio.samples_read / rate < video_seconds - 0.05:
            logger.warning(
                "the audio (%.2f s) is shorter than the video (%.2f s): the rest counts as silence",
                self.model_audio.samples_read / rate,
                video_seconds,
            )


def _chunks(items: Iterable, size: int) -> Iterator[List]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    chunk: List = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def main(argv: Optional[List[str]] = None, predictor: Optional[VideoPredictor] = None) -> Dict:
    """Run the demo; returns the JSON summary. Input errors exit with a one-line message."""
    args = parse_and_check(argv)
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
    print(f"detections:    {Path(args.output) / (Path(args.video).stem + '.json')}")
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
