"""demo/demo.py end to end, in process, on short generated videos with a tiny random model."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ovavss_d2.predictor import sample_frames
from ovavss_d2.utils.video_io import iter_frames, open_audio, probe_video

VOCABULARY = "dog, violin, fire truck"


def audio_seconds(path) -> float:
    source = open_audio(path)
    return sum(chunk.shape[1] for chunk in source.chunks) / source.sample_rate


def check_outputs(out: Path, stem: str, summary: dict, num_frames: int, size, vocabulary):
    """JSON structure, label PNGs and overlay video of one demo run; ``size`` is (W, H)."""
    on_disk = json.loads((out / f"{stem}.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert on_disk["vocabulary"] == vocabulary
    assert len(on_disk["frames"]) == num_frames
    width, height = size
    for record in on_disk["frames"]:
        assert set(record) == {"frame_index", "time", "label_file", "objects"}
        labels = Image.open(out / record["label_file"])
        assert labels.mode == "P" and labels.size == (width, height)
        values = set(np.unique(np.asarray(labels)).tolist()) - {0}
        assert values <= {obj["label"] for obj in record["objects"]}
        for obj in record["objects"]:
            assert set(obj) == {"class", "label", "score", "area", "box", "track_id"}
            assert obj["class"] == vocabulary[obj["label"] - 1]
            assert 0.0 <= obj["score"] <= 1.0
            assert 0 <= obj["area"] <= width * height
            if obj["area"]:
                x0, y0, x1, y1 = obj["box"]
                assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        scores = [obj["score"] for obj in record["objects"]]
        assert scores == sorted(scores, reverse=True)
    assert len(list((out / f"{stem}_labels").glob("*.png"))) == num_frames
    overlay = out / f"{stem}_overlay.mp4"
    assert Path(on_disk["overlay_video"]) == overlay
    info = probe_video(overlay)
    even = (width + width % 2, height + height % 2)
    assert (info.width, info.height) == even and info.has_audio
    assert len(list(iter_frames(overlay))) == num_frames
    return on_disk, info


def test_separate_wav_one_frame_per_second(
    demo, predictor, tiny_config_file, tmp_path, capsys, make_video, make_wav
):
    video = make_video(tmp_path / "clip.mp4", 3.0, fps=10, size=(64, 48))  # no audio track
    wav = make_wav(tmp_path / "sound.wav", 2.5, sample_rate=22050, channels=1)  # shorter
    out = tmp_path / "out"
    summary = demo.main(
        [
            "--video",
            str(video),
            "--audio",
            str(wav),
            "--config-file",
            str(tiny_config_file),
            "--vocabulary",
            VOCABULARY,
            "--output",
            str(out),
            "--confidence-threshold",
            "0",
        ],
        predictor=predictor,
    )
    result, info = check_outputs(out, "clip", summary, 3, (64, 48), ["dog", "violin", "fire truck"])
    # in second s, the frame nearest to s + 0.5 s
    assert [r["frame_index"] for r in result["frames"]] == [5, 15, 25]
    assert info.fps == 1.0
    assert abs(audio_seconds(out / "clip_overlay.mp4") - 2.5) < 0.05  # all of the shorter audio
    printed = capsys.readouterr().out
    assert str(out / "clip_overlay.mp4") in printed and str(out / "clip.json") in printed


def test_embedded_audio_every_frame_odd_size(
    demo, predictor, tiny_config_file, tmp_path, make_video
):
    video = make_video(tmp_path / "odd.mp4", 1.0, fps=6, size=(63, 47), audio_seconds=3.0)
    out = tmp_path / "out"
    summary = demo.main(
        [
            "--video",
            str(video),
            "--config-file",
            str(tiny_config_file),
            "--vocabulary",
            "cello",
            "--output",
            str(out),
            "--every-frame",
            "--confidence-threshold",
            "0.0",
        ],
        predictor=predictor,
    )
    # the writer padded the generated input to 64x48: frames, labels and overlay keep that size
    result, info = check_outputs(out, "odd", summary, 6, (64, 48), ["cello"])
    assert [r["frame_index"] for r in result["frames"]] == list(range(6))
    assert info.fps == 6.0
    assert abs(audio_seconds(out / "odd_overlay.mp4") - 1.0) < 0.05  # trimmed to the video


def test_odd_frame_size_input(demo, predictor, tiny_config_file, tmp_path, make_wav):
    """A video whose frames really have odd sizes (FFV1 in Matroska, which stores no count)."""
    import av

    video = tmp_path / "odd.mkv"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("ffv1", rate=5)
        stream.width, stream.height, stream.pix_fmt = 37, 29, "yuv444p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((29, 37, 3), 20 * i, np.uint8), "rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    wav = make_wav(tmp_path / "a.wav", 2.0, sample_rate=48000, channels=2)
    out = tmp_path / "out"
    summary = demo.main(
        [
            "--video",
            str(video),
            "--audio",
            str(wav),
            "--config-file",
            str(tiny_config_file),
            "--vocabulary",
            VOCABULARY,
            "--output",
            str(out),
        ],
        predictor=predictor,
    )
    check_outputs(out, "odd", summary, 2, (37, 29), ["dog", "violin", "fire truck"])


def test_builds_its_model_from_the_config(demo, tiny_config_file, tmp_path, make_video):
    video = make_video(tmp_path / "clip.mp4", 1.0, fps=8, size=(48, 32), audio_seconds=1.0)
    vocabulary_file = tmp_path / "vocabulary.txt"
    vocabulary_file.write_text("# my classes\ndog\n\nfire truck\n")
    out = tmp_path / "out"
    summary = demo.main(
        [
            "--video",
            str(video),
            "--config-file",
            str(tiny_config_file),
            "--vocabulary-file",
            str(vocabulary_file),
            "--output",
            str(out),
            "--opts",
            "MODEL.OVAVSS.TEST.TOP_K",
            "3",
        ]
    )
    result, _ = check_outputs(out, "clip", summary, 1, (48, 32), ["dog", "fire truck"])
    assert result["weights"] == ""  # the tiny config is not the default model's


BAD_INPUTS = {
    "missing video": (["--video", "{tmp}/nope.mp4"], "video '{tmp}/nope.mp4' does not exist"),
    "no audio anywhere": (
        ["--video", "{silent}"],
        "has no audio track: give the audio with --audio",
    ),
    "corrupt video": (
        ["--video", "{junk}", "--audio", "{wav}"],
        "not a video file or it is corrupt",
    ),
    "unreadable audio": (["--video", "{silent}", "--audio", "{junk}"], "cannot read audio from"),
    "missing audio": (["--video", "{silent}", "--audio", "{tmp}/x.wav"], "x.wav' does not exist"),
    "empty vocabulary": (
        ["--video", "{silent}", "--audio", "{wav}", "--vocabulary", " , "],
        "the vocabulary is empty",
    ),
    "repeated class": (
        ["--video", "{silent}", "--audio", "{wav}", "--vocabulary", "dog,dog"],
        "more than once",
    ),
    "empty vocabulary file": (
        ["--video", "{silent}", "--audio", "{wav}", "--vocabulary-file", "{empty}"],
        "holds no class names",
    ),
    "missing vocabulary file": (
        ["--video", "{silent}", "--audio", "{wav}", "--vocabulary-file", "{tmp}/v.txt"],
        "vocabulary file '{tmp}/v.txt' not found",
    ),
    "output is a file": (
        ["--video", "{silent}", "--audio", "{wav}", "--output", "{wav}"],
        "exists and is not a folder",
    ),
    "threshold out of range": (
        ["--video", "{silent}", "--audio", "{wav}", "--confidence-threshold", "1.5"],
        "must lie in [0, 1]",
    ),
    "missing config": (
        ["--video", "{silent}", "--audio", "{wav}", "--config-file", "{tmp}/c.yaml"],
        "config file '{tmp}/c.yaml' not found",
    ),
}


def test_audio_with_nan_samples(demo, predictor, tiny_config_file, tmp_path, make_video):
    import soundfile as sf

    video = make_video(tmp_path / "clip.mp4", 2.0, fps=5)
    samples = np.zeros(2 * 16000, dtype=np.float32)
    samples[20000] = np.nan
    sf.write(tmp_path / "nan.wav", samples, 16000, subtype="FLOAT")
    argv = [
        "--video",
        str(video),
        "--audio",
        str(tmp_path / "nan.wav"),
        "--config-file",
        str(tiny_config_file),
        "--output",
        str(tmp_path / "out"),
    ]
    with pytest.raises(SystemExit, match="holds NaN or infinite samples"):
        demo.main(argv, predictor=predictor)


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_a_clear_error(
    case, demo, predictor, tiny_config_file, tmp_path, make_video, make_wav
):
    paths = {
        "tmp": str(tmp_path),
        "silent": str(make_video(tmp_path / "silent.mp4", 1.0)),
        "wav": str(make_wav(tmp_path / "a.wav", 1.0)),
        "junk": str(tmp_path / "junk.mp4"),
        "empty": str(tmp_path / "empty.txt"),
    }
    (tmp_path / "junk.mp4").write_bytes(b"\x00this is no media file\x17" * 100)
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    argv, message = BAD_INPUTS[case]
    argv = [a.format(**paths) for a in argv]
    defaults = {"--config-file": str(tiny_config_file), "--output": str(tmp_path / "out")}
    for flag, value in defaults.items():
        if flag not in argv:
            argv += [flag, value]
    with pytest.raises(SystemExit) as exit_info:
        demo.main(argv, predictor=predictor)
    assert str(exit_info.value.code).startswith("demo.py: error: ")
    assert message.format(**paths) in str(exit_info.value.code)
    assert not (tmp_path / "out").exists()  # nothing written


def test_frame_sampling_and_audio_pairing():
    times = [0.0, 0.3, 0.6, 0.9, 1.2, 1.8, 2.05]
    frames = [(i, t, None) for i, t in enumerate(times)]
    per_second = list(sample_frames(frames, every_frame=False, patch_seconds=0.96))
    # second s: the frame nearest to s + 0.5 (the earlier one on a tie), audio from s
    assert [(i, start) for i, _, _, start in per_second] == [(2, 0.0), (4, 1.0), (6, 2.0)]
    every = list(sample_frames(frames, every_frame=True, patch_seconds=0.96))
    assert [i for i, _, _, _ in every] == list(range(7))
    assert [start for _, _, _, start in every] == pytest.approx([t - 0.48 for t in times])
