#!/usr/bin/env python
"""Segment and name the sounding objects of a video: overlay video, label PNGs and a JSON.

    python demo/demo.py --video clip.mp4 [--audio clip.wav] [--audio-track N] \\
        --vocabulary "dog, violin" --output output/demo

Writes into ``--output``: ``<video>_overlay.mp4`` (masks and class names drawn on the segmented
frames, the original audio muxed back in), ``<video>_labels/<frame>.png`` (one palette label map
per segmented frame: 0 background, k the k-th vocabulary class) and ``<video>.json`` (per frame,
each detected sounding object: class, score, area, box). See docs/GETTING_STARTED.md.

Media are read as a player shows them: frames turned upright by the video's rotation, its audio
aligned with its frames by the streams' start times, and of several audio tracks the default one
with sound, else the first with sound (``--audio-track N`` picks another; the log says which).

The results are written into ``--output/.<video>.partial-<pid>/`` and moved to their names when
all are written, replacing an earlier run's; a failed, interrupted (Ctrl-C) or stopped (SIGTERM)
run leaves nothing. A second run writing the same video's results into the same folder while one
runs is refused (``ovavss_d2/utils/run_output.py``, docs/RELIABILITY.md "Outputs (issue 18)").

Arguments and files are checked before torch and Detectron2 are imported (the functions of the
second phase import them), so a bad input gives one line ``demo.py: error: ...`` within a second.
"""

import argparse
import json
import logging
import math
import sys
from collections import deque
from pathlib import Path
from typing import Deque, Dict, List, Optional

from ovavss_d2.data.vocabulary import Vocabulary, parse_vocabulary, read_vocabulary_file
from ovavss_d2.utils import preflight
from ovavss_d2.utils.run_output import (
    RunOutput,
    Stopped,
    check_inputs_are_not_outputs,
    result_paths,
    sigterm_ignored,
    stop_on_sigterm,
)
from ovavss_d2.utils.video_io import (
    MediaError,
    NoAudioTrackError,
    audio_tracks,
    iter_frames,
    probe_video,
)

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
        "--audio-track",
        type=int,
        metavar="N",
        help="which audio track to read, 0-based (default: the default track if it has sound, "
        "else the first with sound; the log says which)",
    )
    parser.add_argument(
        "--config-file",
        default=str(DEFAULT_CONFIG),
        metavar="FILE",
        help="model config (default: the out-of-the-box offline model)",
    )
    parser.add_argument(
        "--allow-remote-config",
        action="store_true",
        help="admit a config or _BASE_ given as a URL (read with YAML's safe loader)",
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


def output_paths(args: argparse.Namespace) -> Dict[str, Path]:
    """The files and folder a run writes: overlay video, label folder, JSON."""
    return result_paths(preflight.output_path(args.output), Path(args.video).stem)


def check_audio_track(args: argparse.Namespace) -> None:
    """An --audio-track that the audio file (or the video) has."""
    if args.audio_track is None:
        return
    path = args.audio or args.video
    try:
        tracks = audio_tracks(path)
    except MediaError:
        return  # an unreadable file: reported with the file's own problem after the imports
    if not tracks:
        hint = "" if args.audio else ": give the audio with --audio PATH"
        raise preflight.InputError(f"--audio-track {args.audio_track}: '{path}' has no audio{hint}")
    if not 0 <= args.audio_track < len(tracks):
        raise preflight.InputError(
            f"--audio-track {args.audio_track}: '{path}' has {len(tracks)} audio track(s): "
            f"{', '.join(tracks)}"
        )


def check_args(args: argparse.Namespace) -> None:
    """Check arguments and input files without torch: config chain, overrides, device, weights,
    video / audio files, vocabulary, threshold and output folder.

    Raises:
        preflight.InputError: the first problem found.
    """
    chain = preflight.read_config_chain(args.config_file, preflight.remote_flag(args))
    opts = preflight.parse_opts(args.opts)
    preflight.check_device(str(preflight.config_value(chain, opts, "MODEL.DEVICE")))
    preflight.check_weights(str(preflight.config_value(chain, opts, "MODEL.WEIGHTS") or ""))
    preflight.check_input_file(args.video, "video")
    if args.audio:
        preflight.check_input_file(args.audio, "audio")
    check_inputs_are_not_outputs({"--video": args.video, "--audio": args.audio}, output_paths(args))
    check_audio_track(args)
    read_vocabulary(args)
    threshold = args.confidence_threshold
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise preflight.InputError(f"--confidence-threshold must lie in [0, 1], got {threshold}")
    preflight.check_output_dir(args.output)
    args.output = str(preflight.output_path(args.output))  # what is written is what was checked


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
    preflight.merge_config(cfg, args.config_file, args.opts, "--opts", preflight.remote_flag(args))
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

    def __init__(
        self, args: argparse.Namespace, predictor=None, output: Optional[RunOutput] = None
    ):
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
            self.audio = AudioTrack(self.audio_path, args.audio_track)
        except NoAudioTrackError:
            if args.audio:
                raise
            raise NoAudioTrackError(
                f"video '{args.video}' has no audio track: give the audio with --audio PATH"
            ) from None
        out, stem = preflight.output_path(args.output), Path(args.video).stem
        # Written below output.staging, moved to these names when all are written (commit()).
        self.output = output or RunOutput(out, stem)
        self.video_out, self.label_dir, self.json_out = output_paths(args).values()
        self.writing: Optional[Path] = None  # the file being written (named if writing fails)
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
        from ovavss_d2.utils.video_io import VideoWriter, open_audio, report_video_length
        from ovavss_d2.utils.visualization import render_frame, track_summaries

        args, info, predictor = self.args, self.info, self.predictor
        staging = self.output.begin()
        video_out, label_dir = staging / self.video_out.name, staging / self.label_dir.name
        label_dir.mkdir()
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

        self.writing = self.video_out
        with VideoWriter(
            video_out, out_fps, audio=open_audio(self.audio_path, track=self.audio.choice.index)
        ) as writer, tqdm(total=total, unit="frame", desc="segmenting", dynamic_ncols=True) as bar:
            for output in predictor.stream_video(frames_and_audio_starts(), self.audio):
                index, time, frame = pending.popleft()
                label_file = self.label_dir / f"{index:06d}.png"
                self.writing = label_file
                overlay, objects = render_frame(
                    frame,
                    output["instances"],
                    predictor.class_names,
                    self.threshold,
                    label_dir / label_file.name,
                )
                self.writing = self.video_out
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
        report_video_length(self.args.video, info, self.last_frame_time)
        names = predictor.class_names
        summary = {
            "video": str(args.video),
            "audio": str(self.audio_path),
            "audio_track": self.audio.choice.index,
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
        self.writing = self.json_out
        (staging / self.json_out.name).write_text(json.dumps(summary, indent=1))
        self.writing = None
        with sigterm_ignored():  # nearly instant; a SIGTERM now would leave mixed results
            self.output.commit([self.video_out.name, self.label_dir.name, self.json_out.name])
        return summary

    def _decoded(self):
        """The decoded frames; the time of the last one is kept (video-length check)."""
        for item in iter_frames(self.args.video):
            self.last_frame_time = item[1]
            yield item


def failure_exit(error: BaseException, demo: Optional[DemoRun]):
    """The exit of a run that failed with ``error``, its results already removed: a one-line
    message (exit status 1), or the status itself after printing the line (SIGTERM: 143, Ctrl-C:
    130); None for an error to re-raise."""
    removed = "this run's partial results were removed"
    if isinstance(error, (Stopped, KeyboardInterrupt)):
        how = "stopped by SIGTERM" if isinstance(error, Stopped) else "interrupted (Ctrl-C)"
        print(f"{PROG}: {how}: {removed}", file=sys.stderr, flush=True)
        return Stopped.exit_code if isinstance(error, Stopped) else 130
    if isinstance(error, ValueError):  # MediaError, InputError, CheckpointError
        return f"{PROG}: error: {error}"
    if isinstance(error, OSError):
        if demo is None:  # reading the inputs or the model (FileNotFoundError names the file)
            return f"{PROG}: error: {error}"
        return f"{PROG}: error: {demo.output.write_error(error, demo.writing)}"  # full disk...
    return None


def main(argv: Optional[List[str]] = None, predictor=None) -> Dict:
    """Run the demo; returns the JSON summary. Input errors exit with a one-line message."""
    args = parse_and_check(argv)
    output = RunOutput(Path(args.output), Path(args.video).stem)
    demo = None
    with stop_on_sigterm():  # SIGTERM ends in the same cleanup as Ctrl-C
        try:
            output.acquire()  # before the heavy imports: a folder in use is refused at once
            from detectron2.utils.logger import setup_logger

            setup_logger(name="ovavss_d2")
            setup_logger(name="detectron2", abbrev_name="d2")
            setup_logger(name="fvcore")  # which checkpoint loaded, and any keys it lacked
            demo = DemoRun(args, predictor, output)  # checks every input before any work
            summary = demo.run()
        except BaseException as e:
            output.discard()  # earlier results of the same video stay as they were
            code = failure_exit(e, demo)
            if code is None:
                raise
            sys.exit(code)
    output.release()
    print(f"overlay video: {summary['overlay_video']}")
    print(f"label maps:    {summary['label_dir']}/")
    print(f"detections:    {demo.json_out}")
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
