"""The one reader of media files, and the overlay writer: video frames with timestamps, audio
tracks, whole audio files, H.264 + AAC writing.

Every problem with an input file is a :class:`MediaError` (a ``ValueError``) whose message names
the file and the problem; :class:`NoAudioTrackError` and :class:`MediaFileNotFoundError` (also a
``FileNotFoundError``) derive from it.

Nothing here holds a whole video in memory: frames come one at a time, audio is read in chunks
through a sliding window, and the writer encodes as it goes. PyAV is the main backend (it gives
timestamps and audio tracks); OpenCV is the fallback for videos PyAV cannot open. Audio files are
read with soundfile (wav, flac, ogg, mp3) and anything else (m4a, the audio track of a video) with
PyAV, decoded packet by packet so that one bad packet does not end the stream. The datasets'
audio files are read whole with soundfile (:func:`read_audio_file`).

Shape letters: ``H x W`` frame size, ``C`` audio channels, ``N`` samples.
"""

import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, NamedTuple, Optional, Tuple, Union

import av
import cv2
import numpy as np
import soundfile as sf

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

# FFmpeg channel layouts by channel count, used to convert any decoded audio to planar float.
_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
# Sample rates the AAC encoder accepts; other rates are resampled to 48 kHz when muxing.
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)


class MediaError(ValueError):
    """An input file that cannot be used; the message names the file and the problem."""


class NoAudioTrackError(MediaError):
    """A media file without an audio stream."""


class MediaFileNotFoundError(MediaError, FileNotFoundError):
    """A media file that does not exist."""


def _existing_file(path: PathLike, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{what} '{path}' does not exist")
    if not path.is_file():
        raise MediaError(f"{what} '{path}' is not a file")
    if path.stat().st_size == 0:
        raise MediaError(f"{what} '{path}' is empty (0 bytes)")
    return path


def _decode_packets(container, stream) -> Iterator:
    """Decode one stream packet by packet, skipping (and counting) packets FFmpeg rejects."""
    bad = 0
    for packet in container.demux(stream):
        try:
            yield from packet.decode()
        except av.FFmpegError as e:
            bad += 1
            logger.debug("%s: skipped a %s packet: %s", container.name, stream.type, e)
    if bad:
        logger.warning("%s: skipped %d undecodable %s packet(s)", container.name, bad, stream.type)


# ---------------------------------------------------------------------------------------------
# Video reading
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoInfo:
    """What a container says about its video stream (frame counts may be absent or wrong)."""

    path: str
    width: int
    height: int
    fps: float
    num_frames: Optional[int]  # the container's claim; None when it stores none (mkv, webm)
    duration: Optional[float]  # seconds; None when unknown
    has_audio: bool
    backend: str  # "pyav" or "opencv"


def probe_video(path: PathLike) -> VideoInfo:
    """Open a video and describe it, raising :class:`MediaError` for anything unreadable."""
    path = _existing_file(path, "video")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"'{path}' has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            if stream.duration is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1e6
            else:
                duration = None
            return VideoInfo(
                str(path),
                stream.width,
                stream.height,
                float(rate) if rate else 0.0,
                stream.frames or None,
                duration,
                bool(container.streams.audio),
                "pyav",
            )
    except av.FFmpegError as pyav_error:
        capture = cv2.VideoCapture(str(path))
        try:
            if not capture.isOpened() or not capture.read()[0]:
                raise MediaError(
                    f"cannot read video '{path}': it is not a video file or it is corrupt "
                    f"(PyAV: {pyav_error}; OpenCV could not open it either)"
                ) from None
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            fps = float(capture.get(cv2.CAP_PROP_FPS))
            return VideoInfo(
                str(path),
                int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                fps,
                count if count > 0 else None,
                count / fps if count > 0 and fps > 0 else None,
                False,
                "opencv",
            )
        finally:
            capture.release()


def iter_frames(path: PathLike) -> Iterator[Tuple[int, float, np.ndarray]]:
    """Stream the frames of a video.

    Yields:
        ``(index, time, frame)``: the frame's position in decode order, its time in seconds from
        the start of the video stream, and the frame as ``(H, W, 3)`` uint8 RGB.
    Raises:
        MediaError: the file is missing, not a video, or no frame of it can be decoded.
    """
    info = probe_video(path)
    frames = _iter_frames_pyav(info) if info.backend == "pyav" else _iter_frames_opencv(info)
    count = 0
    for count, item in enumerate(frames, 1):
        yield item
    if count == 0:
        raise MediaError(f"no frame of video '{path}' could be decoded (corrupt or empty stream)")


def _iter_frames_pyav(info: VideoInfo) -> Iterator[Tuple[int, float, np.ndarray]]:
    with av.open(info.path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        start = None
        if stream.start_time is not None:
            start = float(stream.start_time * stream.time_base)
        for index, frame in enumerate(_decode_packets(container, stream)):
            if frame.time is None:
                time = index / info.fps if info.fps else float(index)
            else:
                start = frame.time if start is None else start
                time = frame.time - start
            yield index, max(time, 0.0), frame.to_ndarray(format="rgb24")


def _iter_frames_opencv(info: VideoInfo) -> Iterator[Tuple[int, float, np.ndarray]]:
    capture = cv2.VideoCapture(info.path)
    fps = info.fps if info.fps > 0 else 25.0
    try:
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            yield index, index / fps, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()


# ---------------------------------------------------------------------------------------------
# Audio reading
# ---------------------------------------------------------------------------------------------


class AudioStream(NamedTuple):
    """An opened audio source: rate, channel count and a lazy iterator of ``(C, N)`` float32."""

    sample_rate: int
    channels: int
    chunks: Iterator[np.ndarray]


def open_audio(path: PathLike, chunk_seconds: float = 1.0) -> AudioStream:
    """Open the audio of a file: an audio file, or the first audio track of a video container.

    soundfile reads wav / flac / ogg / mp3; any other format (m4a, aac, a video's track) goes
    through PyAV. Decoding is lazy: the returned iterator reads as it is consumed.

    Raises:
        NoAudioTrackError: the file is a media file without audio.
        MediaError: the file is missing or neither soundfile nor PyAV can read it.
    """
    path = _existing_file(path, "audio file")
    try:
        info = sf.info(str(path))
    except sf.LibsndfileError:
        info = None  # not a format libsndfile knows: try FFmpeg
    if info is not None:
        if info.frames == 0 or info.channels == 0:
            raise MediaError(f"audio file '{path}' holds no samples")
        blocksize = max(1, int(info.samplerate * chunk_seconds))
        return AudioStream(info.samplerate, info.channels, _iter_soundfile(path, blocksize))
    try:
        container = av.open(str(path))
    except av.FFmpegError as e:
        raise MediaError(
            f"cannot read audio from '{path}': not an audio or video file, or corrupt ({e})"
        ) from None
    if not container.streams.audio:
        container.close()
        raise NoAudioTrackError(f"'{path}' has no audio track")
    stream = container.streams.audio[0]
    channels = stream.codec_context.channels
    if not stream.rate or channels not in _LAYOUTS:
        container.close()
        raise MediaError(
            f"audio track of '{path}': unsupported ({channels} channels, " f"{stream.rate} Hz)"
        )
    return AudioStream(stream.rate, channels, _iter_pyav_audio(container, stream, channels))


def _iter_soundfile(path: Path, blocksize: int) -> Iterator[np.ndarray]:
    try:
        with sf.SoundFile(str(path)) as f:
            for block in f.blocks(blocksize=blocksize, dtype="float32", always_2d=True):
                yield np.ascontiguousarray(block.T)  # (N, C) -> (C, N)
    except sf.LibsndfileError as e:
        raise MediaError(f"audio file '{path}' is corrupt: {e}") from None


def _iter_pyav_audio(container, stream, channels: int) -> Iterator[np.ndarray]:
    # Decoders give planar float (AAC, MP3) or packed integers (WAV, FLAC); resampling to planar
    # float with an explicit layout makes every case (C, N) float32.
    resampler = av.AudioResampler(format="fltp", layout=_LAYOUTS[channels], rate=stream.rate)
    with container:
        for frame in _decode_packets(container, stream):
            for out in resampler.resample(frame):
                yield out.to_ndarray()
        for out in resampler.resample(None):
            yield out.to_ndarray()


def read_audio_file(path: PathLike) -> Tuple[np.ndarray, int]:
    """Read a whole audio file with soundfile (the datasets' wav / flac / ogg files).

    Returns:
        ``(waveform, sample_rate)``: float32 ``(C, N)`` in [-1, 1] and the rate in Hz.

    Raises:
        MediaFileNotFoundError: the file does not exist.
        MediaError: the file is unreadable, empty, or holds NaN / inf samples.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MediaFileNotFoundError(f"audio file not found: {path}")
    try:
        data, sample_rate = sf.read(path, dtype="float32", always_2d=True)  # (N, C)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise MediaError(f"{path}: cannot read audio ({e})") from None
    if data.shape[0] == 0:
        raise MediaError(f"{path}: audio file holds no samples")
    waveform = np.ascontiguousarray(data.T)
    if not np.isfinite(waveform).all():
        bad = int((~np.isfinite(waveform)).sum())
        raise MediaError(f"{path}: audio holds {bad} NaN or infinite samples")
    return waveform, int(sample_rate)


class AudioWindow:
    """Random access by time to a streamed audio source, keeping only a sliding window.

    ``read(start, end)`` returns the samples between two times, zero-padded before the start and
    after the end of the recording; ``discard_before(t)`` frees what lies before ``t``. Reads may
    only move forward past discarded data, which is what a left-to-right pass over a video needs.
    """

    def __init__(self, source: AudioStream):
        self.sample_rate = source.sample_rate
        self.channels = source.channels
        self._chunks = source.chunks
        self._buffer = np.zeros((self.channels, 0), dtype=np.float32)  # (C, N)
        self._offset = 0  # sample index of self._buffer[:, 0]
        self.exhausted = False

    @property
    def samples_read(self) -> int:
        """Samples decoded so far (the recording's length once ``exhausted``)."""
        return self._offset + self._buffer.shape[1]

    def _fill(self, end: int) -> None:
        pieces = [self._buffer]
        total = self.samples_read
        while total < end and not self.exhausted:
            chunk = next(self._chunks, None)
            if chunk is None:
                self.exhausted = True
            else:
                pieces.append(chunk.astype(np.float32, copy=False))
                total += chunk.shape[1]
        if len(pieces) > 1:
            self._buffer = np.concatenate(pieces, axis=1)

    def read(self, start: float, end: float) -> np.ndarray:
        """Samples from ``start`` to ``end`` seconds, ``(C, N)`` float32, zero-padded outside."""
        a, b = int(round(start * self.sample_rate)), int(round(end * self.sample_rate))
        if a < self._offset and b > 0 and self._offset > 0:
            raise ValueError(f"audio before {self._offset / self.sample_rate:.3f} s was discarded")
        self._fill(b)
        out = np.zeros((self.channels, max(b - a, 0)), dtype=np.float32)
        lo, hi = max(a, self._offset), min(b, self.samples_read)
        if hi > lo:
            out[:, lo - a : hi - a] = self._buffer[:, lo - self._offset : hi - self._offset]
        return out

    def discard_before(self, time: float) -> None:
        """Free the samples before ``time`` seconds."""
        cut = min(int(time * self.sample_rate), self.samples_read) - self._offset
        if cut > 0:
            self._buffer = self._buffer[:, cut:].copy()
            self._offset += cut

    def read_all(self) -> np.ndarray:
        """Decode to the end and return every sample not yet discarded, ``(C, N)``."""
        self._fill(np.iinfo(np.int64).max)
        return self._buffer


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


# Layouts the MP4 writer muxes as they are; other channel counts are mixed down to stereo.
_MUX_LAYOUTS = _LAYOUTS


def _to_stereo(chunk: np.ndarray) -> np.ndarray:
    """``(C, N)`` -> ``(2, N)``: even channels to the left, odd ones to the right, averaged."""
    chunk = np.asarray(chunk, dtype=np.float32)
    if chunk.shape[0] == 1:
        return np.repeat(chunk, 2, axis=0)
    return np.stack([chunk[0::2].mean(axis=0), chunk[1::2].mean(axis=0)])


class VideoWriter:
    """Write RGB frames as H.264 (yuv420p) MP4 with an optional AAC track, as frames arrive.

    The output plays in browsers: libx264, even frame sizes (odd sizes get one replicated edge
    row or column), ``+faststart``. Audio is pulled from ``audio`` up to the time of the frames
    written so far, so it is interleaved with the video and trimmed to the video's length.
    Frames of another size than the first are resized to it.
    """

    def __init__(
        self,
        path: PathLike,
        fps: float,
        audio: Optional[AudioStream] = None,
        crf: int = 20,
        preset: str = "veryfast",
    ):
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._rate = Fraction(fps).limit_denominator(1001)
        self._container = av.open(str(self.path), "w", options={"movflags": "+faststart"})
        self._video = None
        self._size: Optional[Tuple[int, int]] = None  # (H, W) of the first frame
        self._options = {"crf": str(crf), "preset": preset}
        self.frames_written = 0
        self._audio_source = audio
        self._audio_done = audio is None
        self._audio_stream = None
        self._resampler = None
        self._audio_in = 0  # samples taken from the source
        if audio is not None:
            if audio.channels <= 0:
                raise MediaError(f"cannot mux audio of {audio.channels} channels")
            if audio.channels not in _MUX_LAYOUTS:
                # AAC in MP4 has no layout for it (e.g. 12-channel recordings): mix down to stereo
                # before any frame is written, so the run does not fail after the model ran.
                logger.info("overlay video: %d audio channels mixed down to stereo", audio.channels)
                audio = AudioStream(audio.sample_rate, 2, (_to_stereo(c) for c in audio.chunks))
                self._audio_source = audio
            self._layout = _MUX_LAYOUTS[audio.channels]
            self._pending = np.zeros((audio.channels, 0), dtype=np.float32)

    def _add_streams(self, height: int, width: int) -> None:
        # video first: some tools take stream 0 for the picture
        self._video = self._container.add_stream("libx264", rate=self._rate)
        self._video.height, self._video.width = height + height % 2, width + width % 2
        self._video.pix_fmt = "yuv420p"
        self._video.options = self._options
        if self._audio_source is not None:
            source_rate = self._audio_source.sample_rate
            rate = source_rate if source_rate in _AAC_RATES else 48000
            self._audio_stream = self._container.add_stream("aac", rate=rate)
            self._audio_stream.layout = self._layout
            if rate != source_rate:
                self._resampler = av.AudioResampler(format="fltp", layout=self._layout, rate=rate)

    def write(self, frame: np.ndarray) -> None:
        """Append one ``(H, W, 3)`` uint8 RGB frame."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 frame, got {frame.shape} {frame.dtype}")
        if self._video is None:
            self._size = frame.shape[:2]
            self._add_streams(*self._size)
        if frame.shape[:2] != self._size:
            frame = cv2.resize(frame, (self._size[1], self._size[0]), interpolation=cv2.INTER_AREA)
        if self._size[0] % 2 or self._size[1] % 2:
            frame = np.pad(frame, ((0, self._size[0] % 2), (0, self._size[1] % 2), (0, 0)), "edge")
        out = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        out.pts = self.frames_written  # renumbered: the codec time base is 1 / fps
        for packet in self._video.encode(out):
            self._container.mux(packet)
        self.frames_written += 1
        self._write_audio_until(self.frames_written / self._rate)

    def _write_audio_until(self, time: Fraction) -> None:
        if self._audio_source is None:
            return
        target = int(time * self._audio_source.sample_rate)
        while self._audio_in < target and not self._audio_done:
            chunk = next(self._audio_source.chunks, None)
            if chunk is None:
                self._audio_done = True
                break
            self._pending = np.concatenate([self._pending, chunk.astype(np.float32)], axis=1)
            self._audio_in += chunk.shape[1]
        written = self._audio_in - self._pending.shape[1]
        take = min(max(target - written, 0), self._pending.shape[1])
        if take:
            self._encode_audio(self._pending[:, :take], pts=written)
            self._pending = self._pending[:, take:]

    def _encode_audio(self, samples: np.ndarray, pts: int) -> None:
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples), format="fltp", layout=self._layout
        )
        frame.sample_rate = self._audio_source.sample_rate
        frame.pts = pts
        frames = self._resampler.resample(frame) if self._resampler else [frame]
        for f in frames:
            for packet in self._audio_stream.encode(f):
                self._container.mux(packet)

    def close(self) -> None:
        """Flush the encoders and finish the file (audio past the last frame is dropped)."""
        if self._container is None:
            return
        if self._video is not None:
            for packet in self._video.encode():
                self._container.mux(packet)
        if self._audio_stream is not None:
            if self._resampler is not None:
                for f in self._resampler.resample(None):
                    for packet in self._audio_stream.encode(f):
                        self._container.mux(packet)
            for packet in self._audio_stream.encode():
                self._container.mux(packet)
        self._container.close()
        self._container = None

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
