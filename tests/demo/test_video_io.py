"""Streaming media I/O: frame reading, audio tracks, the sliding audio window and the writer."""

import av
import numpy as np
import pytest
import soundfile as sf

from ovavss_d2.utils.video_io import (
    AudioStream,
    AudioWindow,
    MediaError,
    NoAudioTrackError,
    VideoWriter,
    iter_frames,
    open_audio,
    probe_video,
)


def audio_seconds(path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return float(stream.duration * stream.time_base)


def test_writer_pads_odd_sizes_and_trims_longer_audio(tmp_path, make_video, make_wav):
    path = make_video(tmp_path / "v.mp4", 2.5, fps=10, size=(63, 47), audio_seconds=4.0)
    info = probe_video(path)
    assert (info.width, info.height, info.fps, info.num_frames) == (64, 48, 10.0, 25)
    assert info.has_audio
    with av.open(str(path)) as container:
        assert [s.type for s in container.streams] == ["video", "audio"]
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.video[0].pix_fmt == "yuv420p"
    # the 4 s of audio are cut at the video's 2.5 s (AAC frames round up by at most 1024 samples)
    assert 2.45 < audio_seconds(path) < 2.55
    frames = list(iter_frames(path))
    assert len(frames) == 25
    assert [i for i, _, _ in frames] == list(range(25))
    np.testing.assert_allclose([t for _, t, _ in frames], np.arange(25) / 10, atol=1e-6)
    assert frames[0][2].shape == (48, 64, 3) and frames[0][2].dtype == np.uint8


def test_writer_keeps_shorter_audio_and_resamples_odd_rates(tmp_path):
    rate = 44056  # no AAC encoder takes this rate: muxed at 48 kHz
    tone = np.zeros((1, rate), dtype=np.float32)
    with VideoWriter(tmp_path / "v.mp4", 10, audio=AudioStream(rate, 1, iter([tone]))) as writer:
        for _ in range(30):
            writer.write(np.zeros((32, 32, 3), dtype=np.uint8))
    source = open_audio(tmp_path / "v.mp4")
    assert (source.sample_rate, source.channels) == (48000, 1)
    assert 0.95 < audio_seconds(tmp_path / "v.mp4") < 1.05
    assert probe_video(tmp_path / "v.mp4").num_frames == 30


@pytest.mark.parametrize(
    "channels,rate,fmt", [(1, 22050, "WAV"), (2, 8000, "FLAC"), (2, 48000, "OGG")]
)
def test_open_audio_files(tmp_path, channels, rate, fmt, make_video, make_wav):
    path = tmp_path / f"a.{fmt.lower()}"
    make_wav(tmp_path / "tmp.wav", 1.5, rate, channels)
    data, _ = sf.read(tmp_path / "tmp.wav", dtype="float32")
    sf.write(path, data, rate, format=fmt)
    source = open_audio(path)
    assert (source.sample_rate, source.channels) == (rate, channels)
    waveform = AudioWindow(source).read_all()
    assert waveform.dtype == np.float32 and waveform.shape == (channels, int(1.5 * rate))


def test_open_audio_track_of_a_video(tmp_path, make_video, make_wav):
    path = make_video(tmp_path / "v.mp4", 2.0, audio_seconds=2.0, sample_rate=22050)
    source = open_audio(path)
    assert (source.sample_rate, source.channels) == (22050, 2)
    waveform = AudioWindow(source).read_all()
    assert waveform.shape[0] == 2 and abs(waveform.shape[1] / 22050 - 2.0) < 0.1
    assert 0.1 < np.abs(waveform).max() < 0.3  # the 0.2 tone, decoded from AAC


def test_audio_window_pads_with_silence_and_slides(tmp_path):
    rate = 1000
    ramp = np.arange(3 * rate, dtype=np.float32)[None] / rate  # value = time in seconds
    chunks = iter([ramp[:, i : i + 700] for i in range(0, 3 * rate, 700)])
    window = AudioWindow(AudioStream(rate, 1, chunks))
    head = window.read(-0.5, 0.5)
    assert head.shape == (1, 1000)
    assert np.all(head[0, :500] == 0) and head[0, 500] == 0 and head[0, 999] == pytest.approx(0.499)
    window.discard_before(1.0)
    middle = window.read(1.0, 2.0)
    assert middle[0, 0] == pytest.approx(1.0) and middle.shape == (1, 1000)
    tail = window.read(2.5, 3.5)
    assert tail[0, 499] == pytest.approx(2.999) and np.all(tail[0, 500:] == 0)
    assert window.exhausted and window.samples_read == 3 * rate
    with pytest.raises(ValueError, match="discarded"):
        window.read(0.2, 0.4)


def test_truncated_video_yields_the_frames_before_the_cut(tmp_path, make_video, make_wav):
    path = make_video(tmp_path / "v.mp4", 3.0, fps=10)
    with av.open(str(path)) as container:
        positions = [p.pos for p in container.demux(video=0) if p.pos is not None]
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: positions[15] + 5])  # the moov atom is in front
    frames = list(iter_frames(cut))
    assert 5 < len(frames) < 30


def test_media_errors(tmp_path, make_video, make_wav):
    with pytest.raises(MediaError, match="does not exist"):
        probe_video(tmp_path / "missing.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(MediaError, match="is empty"):
        list(iter_frames(tmp_path / "empty.mp4"))
    (tmp_path / "junk.mp4").write_bytes(b"\x00not a video\x17" * 200)
    with pytest.raises(MediaError, match="not a video file or it is corrupt"):
        list(iter_frames(tmp_path / "junk.mp4"))
    with pytest.raises(MediaError, match="not an audio or video file"):
        open_audio(tmp_path / "junk.mp4")
    silent = make_video(tmp_path / "silent.mp4", 1.0)
    with pytest.raises(NoAudioTrackError, match="has no audio track"):
        open_audio(silent)
    wav = make_wav(tmp_path / "a.wav", 1.0)
    with pytest.raises(MediaError, match="has no video stream"):
        probe_video(wav)
    with pytest.raises(MediaError, match="is not a file"):
        open_audio(tmp_path)
