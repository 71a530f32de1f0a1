"""Media as a player reads them (issue 18): audio aligned with the video by the streams' start
times, frames turned upright by the display matrix, the audio track chosen by a rule or by number,
and a demo run that would overwrite its own input refused."""

import logging
import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import av
import numpy as np
import pytest

from ovavss_d2.utils.video_io import (
    AudioWindow,
    MediaError,
    choose_audio_track,
    iter_frames,
    open_audio,
    probe_video,
)

REPO = Path(__file__).resolve().parents[2]
RATE = 16000
WIDTH, HEIGHT = 64, 48


def pattern() -> np.ndarray:
    """A (48, 64, 3) frame that no turn or flip maps onto itself: a red block at the top left,
    a green one at the bottom right, on grey."""
    frame = np.full((HEIGHT, WIDTH, 3), 90, dtype=np.uint8)
    frame[:16, :32] = (230, 20, 20)
    frame[32:, 48:] = (20, 230, 20)
    return frame


def tone(seconds: float, amplitude: float = 0.3, silent_until: float = 0.0) -> np.ndarray:
    """Mono 440 Hz tone at RATE, zero before ``silent_until`` seconds."""
    t = np.arange(int(seconds * RATE)) / RATE
    wave = amplitude * np.sin(2 * np.pi * 440 * t) * (t >= silent_until)
    return wave.astype(np.float32)


def write_media(
    path: Path,
    seconds: float = 4.0,
    fps: int = 10,
    rotation: Optional[int] = None,
    video_start: float = 0.0,
    tracks: Sequence[Tuple[float, np.ndarray]] = (),
    default: Optional[int] = None,
) -> Path:
    """An H.264 video of :func:`pattern` with AAC tracks ``(start seconds, mono samples)``.

    ``rotation``: the display matrix's counter-clockwise degrees (a phone held upright records
    landscape frames with -90, i.e. "turn 90 degrees clockwise to show"); ``video_start``: the
    time stamp of the first frame; ``default``: the track flagged default (MP4 flags the first
    when none is).
    """
    container = av.open(str(path), "w")
    video = container.add_stream("libx264", rate=fps)
    video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    if rotation is not None:
        video.set_display_rotation(rotation)
    audio = []
    for i, _ in enumerate(tracks):
        stream = container.add_stream("aac", rate=RATE)
        stream.layout = "mono"
        if default is not None:
            stream.disposition = av.stream.Disposition(
                av.stream.Disposition.default if i == default else 0
            )
        audio.append(stream)
    first = int(round(video_start * fps))
    for i in range(int(seconds * fps)):
        frame = av.VideoFrame.from_ndarray(pattern(), format="rgb24")
        frame.pts = first + i
        for packet in video.encode(frame):
            container.mux(packet)
    for stream, (start, samples) in zip(audio, tracks):
        offset = int(round(start * RATE))
        for pos in range(0, len(samples), 1024):
            chunk = samples[None, pos : pos + 1024]
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = RATE, offset + pos
            for packet in stream.encode(frame):
                container.mux(packet)
    for stream in [video, *audio]:
        for packet in stream.encode():
            container.mux(packet)
    container.close()
    return path


def onset(samples: np.ndarray, rate: int, threshold: float = 0.05) -> float:
    """Seconds to the first sample louder than ``threshold`` (any channel)."""
    loud = np.flatnonzero(np.abs(samples).max(axis=0) > threshold)
    assert loud.size, "no sound at all"
    return loud[0] / rate


def run_demo(demo, predictor, config_file, video: Path, out: Path, caplog, *extra) -> Tuple:
    """The demo in process with the tiny model; returns (summary, log messages)."""
    argv = ["--video", str(video), "--output", str(out), "--config-file", str(config_file)]
    package_logger = logging.getLogger("ovavss_d2")  # Detectron2's setup: no propagation
    package_logger.addHandler(caplog.handler)
    try:
        summary = demo.main([*argv, *extra], predictor=predictor)
    finally:
        package_logger.removeHandler(caplog.handler)
    return summary, [r.getMessage() for r in caplog.records]


# ---------------------------------------------------------------------------------------------
# Alignment by start times
# ---------------------------------------------------------------------------------------------


def test_audio_starting_2_s_late_is_read_from_video_time_2(tmp_path):
    """The tone starts with the track, 2 s after the first frame: it must land at 2 s."""
    video = write_media(tmp_path / "late.mp4", tracks=[(2.0, tone(2.0))])
    source = open_audio(video)
    # AAC's priming frame makes the track start 1024 samples (0.064 s) before its first sound
    assert 1.9 < source.offset <= 2.0
    samples = AudioWindow(source).read_all()
    assert onset(samples, source.sample_rate) == pytest.approx(2.0, abs=0.01)
    assert samples.shape[1] / source.sample_rate == pytest.approx(4.0, abs=0.1)


def test_audio_starting_before_the_video_loses_its_head(tmp_path):
    """Video from 1 s, audio from 0 s with a tone from 1.5 s: the tone is at video time 0.5 s."""
    video = write_media(
        tmp_path / "early.mp4", video_start=1.0, tracks=[(0.0, tone(5.0, 0.3, 1.5))]
    )
    with av.open(str(video)) as container:
        starts = [float(s.start_time * s.time_base) for s in container.streams]
    assert starts[0] == pytest.approx(1.0) and starts[1] == pytest.approx(0.0)
    assert iter_frames(video).__next__()[1] == 0.0  # frame times count from the first frame
    source = open_audio(video)
    assert source.offset == pytest.approx(-1.0)
    assert onset(AudioWindow(source).read_all(), source.sample_rate) == pytest.approx(0.5, abs=0.01)


def test_late_audio_lands_in_second_2_of_patches_and_overlay(
    demo, predictor, tiny_config_file, tmp_path, caplog
):
    from ovavss_d2.predictor import AudioTrack

    video = write_media(tmp_path / "late.mp4", tracks=[(2.0, tone(2.0))])
    patches = AudioTrack(video).patches([0.0, 1.0, 2.0, 3.0], predictor.audio_params)
    floor = float(np.log(predictor.audio_params.log_offset))  # the log-mel value of silence
    # seconds 0 and 1 hold no sound (but AAC's pre-echo in the last 50 ms before the onset)
    assert float((patches[:2, :, :90] - floor).abs().max()) < 1e-5
    assert patches[2].mean() > floor + 1 and patches[3].mean() > floor + 1

    summary, messages = run_demo(demo, predictor, tiny_config_file, video, tmp_path / "out", caplog)
    assert any("starts 1.936 s after the video" in m for m in messages), messages
    overlay = open_audio(summary["overlay_video"])
    assert overlay.offset == 0.0  # the overlay's audio starts with its video
    assert onset(AudioWindow(overlay).read_all(), overlay.sample_rate) == pytest.approx(
        2.0, abs=0.03
    )


def torch_equal(a, b) -> bool:
    return bool((a == b).all())


# ---------------------------------------------------------------------------------------------
# Rotation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("degrees,turns", [(-90, -1), (90, 1), (180, 2), (0, 0)])
def test_frames_are_turned_upright(tmp_path, degrees, turns):
    video = write_media(tmp_path / "rot.mp4", seconds=0.5, rotation=degrees)
    upright = np.rot90(pattern(), turns)
    info = probe_video(video)
    assert (info.height, info.width) == upright.shape[:2]
    assert info.rotation == degrees % 360
    frames = list(iter_frames(video))
    assert len(frames) == 5
    for _, _, frame in frames:
        assert frame.shape == upright.shape and frame.flags["C_CONTIGUOUS"]
        assert np.abs(frame.astype(int) - upright).mean() < 3  # H.264 loses a little


def test_phone_video_is_segmented_and_written_upright(
    demo, predictor, tiny_config_file, tmp_path, caplog
):
    """A portrait phone video (landscape frames, display matrix -90): labels and overlay are
    portrait, the overlay carries no rotation, and its red block is where a player shows it."""
    video = write_media(tmp_path / "phone.mp4", seconds=2.0, rotation=-90, tracks=[(0, tone(2))])
    # No object drawn (threshold 1): the overlay shows the frames as decoded, whatever the shared
    # tiny random model detects after the tests before this one.
    summary, _ = run_demo(
        demo,
        predictor,
        tiny_config_file,
        video,
        tmp_path / "out",
        caplog,
        "--confidence-threshold",
        "1.0",
    )
    from PIL import Image

    for record in summary["frames"]:
        assert Image.open(tmp_path / "out" / record["label_file"]).size == (HEIGHT, WIDTH)
    info = probe_video(summary["overlay_video"])
    assert (info.width, info.height, info.rotation) == (HEIGHT, WIDTH, 0)
    with av.open(summary["overlay_video"]) as container:
        first = next(container.decode(video=0))
        assert first.rotation == 0 and "DISPLAYMATRIX" not in str(list(first.side_data.keys()))
    overlay = next(iter_frames(summary["overlay_video"]))[2].astype(int)
    redness = overlay[..., 0] - overlay[..., 1]  # the red block: top right once upright
    assert redness[:32, 32:].mean() > redness[:32, :16].mean() + 60
    assert redness[:32, 32:].mean() > redness[32:, :].mean() + 60


# ---------------------------------------------------------------------------------------------
# Choice of the audio track
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_tracks(tmp_path_factory) -> Path:
    """Track 0 silent (and flagged default, as MP4 does for the first track), track 1 a tone."""
    path = tmp_path_factory.mktemp("tracks") / "two.mp4"
    return write_media(
        path, seconds=2.0, tracks=[(0.0, np.zeros(2 * RATE, np.float32)), (0.0, tone(2))]
    )


def test_silent_first_track_is_passed_over(two_tracks):
    choice = choose_audio_track(two_tracks)
    assert (choice.index, choice.count) == (1, 2)
    assert str(choice) == "track 1 of 2 (the first with sound; the default track 0 is silent)"
    source = open_audio(two_tracks)
    assert source.track == choice
    assert np.abs(AudioWindow(source).read_all()).max() > 0.1
    asked = open_audio(two_tracks, track=0)
    assert str(asked.track) == "track 0 of 2 (as asked)"
    assert np.abs(AudioWindow(asked).read_all()).max() == 0.0
    with pytest.raises(MediaError) as info:
        open_audio(two_tracks, track=2)
    assert str(info.value) == (
        f"'{two_tracks}' has no audio track 2: its 2 audio track(s): "
        "0 (aac, 1 ch, 16000 Hz, default), 1 (aac, 1 ch, 16000 Hz)"
    )


def test_default_track_with_sound_is_taken(tmp_path):
    tracks = [(0.0, tone(1.0, 0.2)), (0.0, tone(1.0, 0.4))]
    path = write_media(tmp_path / "d.mkv", seconds=1.0, tracks=tracks, default=1)
    assert str(choose_audio_track(path)) == "track 1 of 2 (the default track)"
    tracks = [(0.0, np.zeros(RATE, np.float32))] * 2
    path = write_media(tmp_path / "quiet.mkv", seconds=1.0, tracks=tracks)  # mkv: none default
    assert str(choose_audio_track(path, check_seconds=5)) == (
        "track 0 of 2 (the first; every track is silent in its first 5 s)"
    )
    wav = tmp_path / "a.wav"
    import soundfile as sf

    sf.write(wav, tone(0.5), RATE)
    assert str(choose_audio_track(wav)) == "track 0 of 1 (the only one)"
    with pytest.raises(MediaError, match=r"has no audio track 1: its 1 audio track\(s\): 0 \(wav"):
        open_audio(wav, track=1)


def test_demo_says_which_track_and_takes_the_one_asked(
    demo, predictor, tiny_config_file, two_tracks, tmp_path, caplog
):
    summary, messages = run_demo(
        demo, predictor, tiny_config_file, two_tracks, tmp_path / "a", caplog
    )
    assert "audio: track 1 of 2 (the first with sound; the default track 0 is silent)" in messages
    assert summary["audio_track"] == 1
    assert np.abs(AudioWindow(open_audio(summary["overlay_video"])).read_all()).max() > 0.1
    caplog.clear()
    summary, messages = run_demo(
        demo, predictor, tiny_config_file, two_tracks, tmp_path / "b", caplog, "--audio-track", "0"
    )
    assert "audio: track 0 of 2 (as asked)" in messages
    assert summary["audio_track"] == 0
    assert np.abs(AudioWindow(open_audio(summary["overlay_video"])).read_all()).max() < 1e-3


@pytest.fixture
def demo_cli(run_cli):
    """``demo_cli(*argv)``: demo.py run under -X importtime: (exit code, error lines, modules)."""

    def run(*argv: str) -> Tuple[int, List[str], set]:
        proc = run_cli("demo/demo.py", argv)
        return proc.returncode, proc.errors, proc.imported

    return run


def test_audio_track_out_of_range_is_one_line(two_tracks, tmp_path, demo_cli):
    out = tmp_path / "out"
    for track in ("2", "-1"):
        code, errors, imported = demo_cli(
            "--video", str(two_tracks), "--output", str(out), "--audio-track", track
        )
        assert code == 1 and len(errors) == 1, errors
        assert errors[0] == (
            f"demo.py: error: --audio-track {track}: '{two_tracks}' has 2 audio track(s): "
            "0 (aac, 1 ch, 16000 Hz, default), 1 (aac, 1 ch, 16000 Hz)"
        )
        assert "torch" not in imported and not out.exists()
    mute = write_media(tmp_path / "mute.mp4", seconds=0.5)
    code, errors, imported = demo_cli(
        "--video", str(mute), "--output", str(out), "--audio-track", "0"
    )
    assert code == 1 and errors == [
        f"demo.py: error: --audio-track 0: '{mute}' has no audio: give the audio with --audio PATH"
    ]


@pytest.mark.parametrize("target", ["overlay", "link to overlay", "label file", "video as json"])
def test_input_that_the_run_would_overwrite_is_refused(two_tracks, tmp_path, target, demo_cli):
    out = tmp_path / "out"
    (out / "two_labels").mkdir(parents=True)
    overlay = out / "two_overlay.mp4"
    overlay.write_bytes(two_tracks.read_bytes())  # the overlay of an earlier run
    video, audio = str(two_tracks), str(overlay)
    what = "--audio is the overlay video"
    if target == "link to overlay":
        os.symlink(overlay, tmp_path / "link.mp4")
        audio = str(tmp_path / "link.mp4")
    elif target == "label file":
        audio = str(out / "two_labels" / "000000.mp4")
        Path(audio).write_bytes(two_tracks.read_bytes())
        what = "--audio is the label folder"
    elif target == "video as json":
        video = str(out / "x.json")  # a video named .json: the run's JSON would replace it
        Path(video).write_bytes(two_tracks.read_bytes())
        audio = str(two_tracks)
        what = "--video is the detections JSON"
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    code, errors, imported = demo_cli("--video", video, "--audio", audio, "--output", str(out))
    assert code == 1 and len(errors) == 1, errors
    assert errors[0].startswith(f"demo.py: error: {audio if 'audio' in what else video}: {what}")
    assert errors[0].endswith(
        "it would be overwritten while it is read; copy it elsewhere or give another --output"
    )
    assert "torch" not in imported
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
