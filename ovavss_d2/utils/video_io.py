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

Media as a player shows them: frames are rotated upright by the video's display matrix (phone
videos), the audio track of a container is aligned with its video by the streams' start times
(:func:`open_audio`: sample 0 is the time of the first frame) and, of several audio tracks, one is
chosen by a rule (:func:`choose_audio_track`) or by its number.

Shape letters: ``H x W`` frame size, ``C`` audio channels, ``N`` samples.
"""

import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, List, NamedTuple, Optional, Tuple, Union

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
    # Degrees counter-clockwise (0, 90, 180 or 270) by which the stored frames are turned upright
    # (the display matrix); width and height above are those of the upright frames.
    rotation: int = 0


def _start_seconds(stream) -> Optional[float]:
    """A stream's start time in seconds (PyAV), None when the container gives none."""
    if stream.start_time is None:
        return None
    return float(stream.start_time * stream.time_base)


def _picture_streams(container) -> List:
    """The video streams that are moving pictures (not the cover art of an audio file)."""
    attached = av.stream.Disposition.attached_pic
    return [s for s in container.streams.video if not s.disposition & attached]


def _quarter_turns(frame, stream) -> int:
    """Counter-clockwise quarter turns (0..3) that show a decoded frame upright.

    FFmpeg attaches the stream's display matrix to each frame (``frame.rotation``: degrees
    counter-clockwise); a legacy ``rotate`` tag (degrees clockwise) is used when there is none.
    Angles between multiples of 90 are rounded to the nearest one.
    """
    degrees = float(getattr(frame, "rotation", 0) or 0)
    if not degrees:
        try:
            degrees = -float(stream.metadata.get("rotate", 0))
        except ValueError:
            degrees = 0.0
    return int(round(degrees / 90.0)) % 4


def probe_video(path: PathLike) -> VideoInfo:
    """Open a video and describe it, raising :class:`MediaError` for anything unreadable."""
    path = _existing_file(path, "video")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"'{path}' has no video stream")
            stream = (_picture_streams(container) or container.streams.video)[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            if stream.duration is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1e6
            else:
                duration = None
            turns = _first_frame_turns(container, stream)
            width, height = stream.width, stream.height
            if turns % 2:
                width, height = height, width
            return VideoInfo(
                str(path),
                width,
                height,
                float(rate) if rate else 0.0,
                stream.frames or None,
                duration,
                bool(container.streams.audio),
                "pyav",
                90 * turns,
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


def _first_frame_turns(container, stream) -> int:
    """The quarter turns of the first decodable frame (0 when none decodes)."""
    try:
        for frame in _decode_packets(container, stream):
            turns = _quarter_turns(frame, stream)
            if getattr(frame, "rotation", 0) not in (0, 90 * turns, 90 * turns - 360):
                logger.warning(
                    "video '%s': rotation of %s degrees rounded to %d",
                    container.name,
                    frame.rotation,
                    90 * turns,
                )
            return turns
    except av.FFmpegError:
        pass
    return 0


def iter_frames(path: PathLike) -> Iterator[Tuple[int, float, np.ndarray]]:
    """Stream the frames of a video, upright.

    Frames are turned by the video's display matrix (the rotation a phone records), as players
    show them; :attr:`VideoInfo.rotation` says by how much.

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
        stream = (_picture_streams(container) or container.streams.video)[0]
        stream.thread_type = "AUTO"
        start = _start_seconds(stream)
        for index, frame in enumerate(_decode_packets(container, stream)):
            if frame.time is None:
                time = index / info.fps if info.fps else float(index)
            else:
                start = frame.time if start is None else start
                time = frame.time - start
            image = frame.to_ndarray(format="rgb24")
            turns = _quarter_turns(frame, stream)
            if turns:
                image = np.ascontiguousarray(np.rot90(image, turns))
            yield index, max(time, 0.0), image


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


@dataclass(frozen=True)
class AudioTrackChoice:
    """Which audio track of a file is read, and why (``str()``: ``"track 1 of 2 (why)"``)."""

    index: int  # among the file's audio tracks, 0-based
    count: int  # audio tracks in the file
    reason: str

    def __str__(self) -> str:
        return f"track {self.index} of {self.count} ({self.reason})"


class AudioStream(NamedTuple):
    """An opened audio source: rate, channel count and a lazy iterator of ``(C, N)`` float32.

    ``offset``: seconds by which the track starts after its video (padded with silence in front;
    negative: that much of its start was dropped); ``track``: which track was taken.
    """

    sample_rate: int
    channels: int
    chunks: Iterator[np.ndarray]
    track: Optional[AudioTrackChoice] = None
    offset: float = 0.0


# A track is silent when no sample of its first SOUND_CHECK_SECONDS exceeds SILENCE_PEAK (-60 dBFS).
SOUND_CHECK_SECONDS = 30.0
SILENCE_PEAK = 1e-3


def _soundfile_info(path: Path):
    try:
        return sf.info(str(path))
    except sf.LibsndfileError:
        return None  # not a format libsndfile knows: try FFmpeg


def _open_container(path: Path):
    try:
        return av.open(str(path))
    except av.FFmpegError as e:
        raise MediaError(
            f"cannot read audio from '{path}': not an audio or video file, or corrupt ({e})"
        ) from None


def _describe_track(position: int, stream) -> str:
    parts = [stream.codec_context.name, f"{stream.codec_context.channels} ch", f"{stream.rate} Hz"]
    if stream.disposition & av.stream.Disposition.default:
        parts.append("default")
    if stream.language and stream.language != "und":
        parts.append(stream.language)
    return f"{position} ({', '.join(parts)})"


def audio_tracks(path: PathLike) -> List[str]:
    """One line per audio track of a file, e.g. ``["0 (aac, 2 ch, 44100 Hz, default)"]``.

    Raises:
        MediaError: the file is missing or unreadable (a file without audio gives ``[]``).
    """
    path = _existing_file(path, "audio file")
    info = _soundfile_info(path)
    if info is not None:
        return [f"0 ({info.format.lower()}, {info.channels} ch, {info.samplerate} Hz)"]
    with _open_container(path) as container:
        return [_describe_track(i, s) for i, s in enumerate(container.streams.audio)]


def _track_out_of_range(path: Path, track: int, tracks: List[str]) -> MediaError:
    return MediaError(
        f"'{path}' has no audio track {track}: its {len(tracks)} audio track(s): "
        f"{', '.join(tracks)}"
    )


def _has_sound(path: Path, position: int, seconds: float) -> bool:
    """Whether a sample of the first ``seconds`` of audio track ``position`` exceeds -60 dBFS."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[position]
            resampler = av.AudioResampler(format="fltp")
            samples = 0
            for frame in _decode_packets(container, stream):
                for out in resampler.resample(frame):
                    if np.abs(out.to_ndarray()).max(initial=0.0) > SILENCE_PEAK:
                        return True
                    samples += out.samples
                if samples >= seconds * stream.rate:
                    break
    except (av.FFmpegError, ValueError) as e:  # a track FFmpeg cannot convert: no usable sound
        logger.debug("%s: audio track %d not checked: %s", path, position, e)
    return False


def choose_audio_track(
    path: PathLike, track: Optional[int] = None, check_seconds: float = SOUND_CHECK_SECONDS
) -> AudioTrackChoice:
    """The audio track of a file to read: ``track`` when given, else by a rule.

    The rule, for several tracks: the track flagged default if it has sound, else the first track
    with sound, else the default (or first) one. "Sound": a sample above -60 dBFS within the first
    ``check_seconds`` (a muted commentary or microphone track is silent). MP4 files flag their
    first audio track default when the writer flags none, so a silent first track is passed over.

    Raises:
        NoAudioTrackError: the file has no audio track.
        MediaError: ``track`` is not one of the file's tracks (the message lists them), or the
            file is missing or unreadable.
    """
    path = _existing_file(path, "audio file")
    if _soundfile_info(path) is not None:
        tracks, defaults = audio_tracks(path), []
    else:
        with _open_container(path) as container:
            streams = list(container.streams.audio)
            tracks = [_describe_track(i, s) for i, s in enumerate(streams)]
            default = av.stream.Disposition.default
            defaults = [i for i, s in enumerate(streams) if s.disposition & default]
    if not tracks:
        raise NoAudioTrackError(f"'{path}' has no audio track")
    if track is not None:
        if not 0 <= track < len(tracks):
            raise _track_out_of_range(path, track, tracks)
        return AudioTrackChoice(track, len(tracks), "as asked")
    if len(tracks) == 1:
        return AudioTrackChoice(0, 1, "the only one")
    preferred = defaults[0] if defaults else None
    if preferred is not None and _has_sound(path, preferred, check_seconds):
        return AudioTrackChoice(preferred, len(tracks), "the default track")
    quiet = f"the default track {preferred} is silent" if preferred is not None else "no default"
    for i in range(len(tracks)):
        if i != preferred and _has_sound(path, i, check_seconds):
            return AudioTrackChoice(i, len(tracks), f"the first with sound; {quiet}")
    first = 0 if preferred is None else preferred
    what = "the default" if preferred is not None else "the first"
    return AudioTrackChoice(
        first, len(tracks), f"{what}; every track is silent in its first {check_seconds:g} s"
    )


def open_audio(
    path: PathLike, chunk_seconds: float = 1.0, track: Optional[int] = None
) -> AudioStream:
    """Open the audio of a file: an audio file, or an audio track of a video container.

    soundfile reads wav / flac / ogg / mp3; any other format (m4a, aac, a video's track) goes
    through PyAV. Decoding is lazy: the returned iterator reads as it is consumed.

    The track is ``track`` (0-based among the audio tracks) or the one
    :func:`choose_audio_track` picks. In a container with a video stream the audio is aligned
    with the video by the streams' start times: sample 0 is the time of the first frame (a track
    that starts later is padded with silence in front, one that starts earlier loses its head).

    Raises:
        NoAudioTrackError: the file is a media file without audio.
        MediaError: the file is missing, neither soundfile nor PyAV can read it, or it has no
            track ``track``.
    """
    path = _existing_file(path, "audio file")
    info = _soundfile_info(path)
    if info is not None:
        if info.frames == 0 or info.channels == 0:
            raise MediaError(f"audio file '{path}' holds no samples")
        choice = choose_audio_track(path, track)
        blocksize = max(1, int(info.samplerate * chunk_seconds))
        chunks = _iter_soundfile(path, blocksize)
        return AudioStream(info.samplerate, info.channels, chunks, choice)
    choice = choose_audio_track(path, track)
    container = _open_container(path)
    stream = container.streams.audio[choice.index]
    channels = stream.codec_context.channels
    if not stream.rate or channels not in _LAYOUTS:
        container.close()
        raise MediaError(
            f"audio track {choice.index} of '{path}': unsupported ({channels} channels, "
            f"{stream.rate} Hz)"
        )
    offset = 0.0
    pictures = _picture_streams(container)
    video_start = _start_seconds(pictures[0]) if pictures else None
    audio_start = _start_seconds(stream)
    if video_start is not None and audio_start is not None:
        offset = audio_start - video_start
    shift = int(round(offset * stream.rate))
    chunks = _iter_pyav_audio(container, stream, channels, shift)
    return AudioStream(stream.rate, channels, chunks, choice, shift / stream.rate)


def _iter_soundfile(path: Path, blocksize: int) -> Iterator[np.ndarray]:
    try:
        with sf.SoundFile(str(path)) as f:
            for block in f.blocks(blocksize=blocksize, dtype="float32", always_2d=True):
                yield np.ascontiguousarray(block.T)  # (N, C) -> (C, N)
    except sf.LibsndfileError as e:
        raise MediaError(f"audio file '{path}' is corrupt: {e}") from None


def _iter_pyav_audio(container, stream, channels: int, shift: int = 0) -> Iterator[np.ndarray]:
    """Decoded samples, ``shift`` samples of silence first (negative: that many dropped)."""
    # Decoders give planar float (AAC, MP3) or packed integers (WAV, FLAC); resampling to planar
    # float with an explicit layout makes every case (C, N) float32.
    resampler = av.AudioResampler(format="fltp", layout=_LAYOUTS[channels], rate=stream.rate)
    for start in range(0, max(shift, 0), stream.rate):
        yield np.zeros((channels, min(stream.rate, shift - start)), dtype=np.float32)
    drop = max(-shift, 0)

    def decoded() -> Iterator[np.ndarray]:
        for frame in _decode_packets(container, stream):
            for out in resampler.resample(frame):
                yield out.to_ndarray()
        for out in resampler.resample(None):
            yield out.to_ndarray()

    with container:
        for chunk in decoded():
            if drop:
                cut = min(drop, chunk.shape[1])
                chunk, drop = chunk[:, cut:], drop - cut
                if chunk.shape[1] == 0:
                    continue
            yield chunk


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


def report_video_length(
    path: PathLike, info: "VideoInfo", last_frame_time: Optional[float]
) -> None:
    """Warn when the decoded frames (the last at ``last_frame_time`` s) end clearly before the
    duration the container of ``path`` claims."""
    if not info.duration or last_frame_time is None:
        return
    frame_seconds = 1.0 / info.fps if info.fps else 0.0
    decoded = last_frame_time + frame_seconds
    if decoded < info.duration - max(2 * frame_seconds, 0.1):
        logger.warning(
            "video '%s' ends at %.2f s, before the %.2f s its container claims: the frames "
            "after %.2f s are missing",
            path,
            decoded,
            info.duration,
            decoded,
        )
