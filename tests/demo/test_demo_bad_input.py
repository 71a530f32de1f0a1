"""demo/demo.py with bad or unusual inputs: one line ``demo.py: error: ...``, a non-zero exit, no
traceback, nothing left in --output; the argument checks run before torch is imported."""

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def files(tmp_path_factory, make_video, make_wav):
    d = tmp_path_factory.mktemp("inputs")
    paths = {"dir": str(d)}
    paths["video"] = str(make_video(d / "clip.mp4", 1.0))
    paths["wav"] = str(make_wav(d / "a.wav", 1.0))
    (d / "bad.yaml").write_text("MODEL:\n  DEVICE: cpu\n   WEIGHTS: x\n")  # bad indentation
    (d / "empty.pth").write_bytes(b"")
    (d / "junk.pth").write_bytes(b"this is not a checkpoint at all")
    good = d / "good.pth"
    torch.save({"model": {"w": torch.zeros(64, 64)}}, good)
    (d / "truncated.pth").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (d / "a_file").write_text("x")
    paths["cfg"] = str(REPO / "configs/avss_synth/ovavss_effnet_yamnet_minilm_instant_test.yaml")
    return paths


# case: (extra argv, expected fragment of the message)
PREFLIGHT = {
    "malformed yaml": (
        ["--config-file", "{dir}/bad.yaml"],
        "{dir}/bad.yaml: malformed YAML at line 3",
    ),
    "missing config": (["--config-file", "{dir}/none.yaml"], "config file '{dir}/none.yaml' not"),
    "odd --opts": (["--opts", "MODEL.WEIGHTS"], "they come as KEY VALUE pairs"),
    "value without key": (["--opts", "cpu", "MODEL.DEVICE"], "'cpu' is not a config key"),
    "missing weights": (["--opts", "MODEL.WEIGHTS", "{dir}/no.pth"], "{dir}/no.pth: no such file"),
    "empty weights": (
        ["--opts", "MODEL.WEIGHTS", "{dir}/empty.pth"],
        "the file is empty (0 bytes)",
    ),
    "corrupt weights": (
        ["--opts", "MODEL.WEIGHTS", "{dir}/junk.pth"],
        "{dir}/junk.pth: neither a PyTorch checkpoint nor a pickle",
    ),
    "truncated weights": (
        ["--opts", "MODEL.WEIGHTS", "{dir}/truncated.pth"],
        "{dir}/truncated.pth: an incomplete zip archive",
    ),
    "cuda without gpu": (["--opts", "MODEL.DEVICE", "cuda"], "MODEL.DEVICE cuda: this machine"),
    "output below a file": (["--output", "{dir}/a_file/out"], "lies below the file"),
    "output is a file": (["--output", "{dir}/a_file"], "exists and is not a folder"),
    "empty name": (["--vocabulary", "dog,,violin"], "class name 2 of 3 is empty"),
    "zero-width name": (["--vocabulary", "dog,\u200b,violin"], "class name 2 of 3 is empty"),
    "only commas": (["--vocabulary", " , "], "the vocabulary is empty"),
    "missing video": (["--video", "{dir}/none.mp4"], "video '{dir}/none.mp4' does not exist"),
    "missing audio": (["--audio", "{dir}/none.wav"], "audio '{dir}/none.wav' does not exist"),
    "threshold": (["--confidence-threshold", "2"], "must lie in [0, 1], got 2.0"),
}


def _argv(case_argv, files, out):
    argv = [a.format(**files) for a in case_argv]
    defaults = {
        "--video": files["video"],
        "--audio": files["wav"],
        "--config-file": files["cfg"],
        "--output": str(out),
    }
    head = []
    for flag, value in defaults.items():
        if flag not in argv:
            head += [flag, value]
    if "--opts" in argv:  # --opts swallows the rest of the line: keep it last
        i = argv.index("--opts")
        return head + argv[:i] + argv[i:]
    return head + argv


@pytest.mark.skipif(
    any(Path(p).exists() for p in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd")),
    reason="a GPU machine: 'cuda without gpu' does not apply",
)
@pytest.mark.parametrize("case", sorted(PREFLIGHT))
def test_preflight_errors_through_the_cli(case, files, tmp_path, run_cli):
    extra, fragment = PREFLIGHT[case]
    out = tmp_path / "out"
    argv = _argv(extra, files, out)
    # -X importtime lists every module imported: the check must stop before torch / detectron2.
    proc = run_cli("demo/demo.py", argv)
    errors, imported = proc.errors, proc.imported
    assert proc.returncode != 0
    assert len(errors) == 1, proc.stderr[-2000:]
    assert errors[0].startswith("demo.py: error: ")
    assert fragment.format(**files) in errors[0]
    assert "torch" not in imported and "detectron2" not in imported
    assert not out.exists()


def test_phase_two_errors_are_one_line(demo, predictor, files, tmp_path, tiny_config_file):
    """Errors that need the config schema: unknown keys in the file and in --opts."""
    bad_key = tmp_path / "unknown.yaml"
    bad_key.write_text(f"_BASE_: {tiny_config_file}\nMODEL:\n  NO_SUCH_KEY: 1\n")
    cases = [
        (["--config-file", str(bad_key)], f"{bad_key}: Non-existent config key: MODEL.NO_SUCH_KEY"),
        (["--opts", "MODEL.NOPE", "1"], "--opts: Non-existent key: MODEL.NOPE"),
    ]
    for extra, fragment in cases:
        out = tmp_path / "out"
        argv = _argv(extra, {**files, "cfg": str(tiny_config_file)}, out)
        with pytest.raises(SystemExit) as info:
            demo.main(argv, predictor=predictor)
        assert str(info.value.code) == f"demo.py: error: {fragment}"
        assert not out.exists()


def test_tiny_frames_refused(demo, predictor, make_video, files, tmp_path, tiny_config_file):
    video = make_video(tmp_path / "tiny.mp4", 1.0, size=(2, 2))
    out = tmp_path / "out"
    argv = _argv(["--video", str(video)], {**files, "cfg": str(tiny_config_file)}, out)
    with pytest.raises(SystemExit) as info:
        demo.main(argv, predictor=predictor)
    assert "frames of 2x2 pixels are too small" in str(info.value.code)
    assert not out.exists()


def test_twelve_channel_audio(demo, predictor, make_wav, files, tmp_path, tiny_config_file):
    from ovavss_d2.utils.video_io import open_audio

    wav = make_wav(tmp_path / "twelve.wav", 1.0, channels=12)
    out = tmp_path / "out"
    argv = _argv(["--audio", str(wav)], {**files, "cfg": str(tiny_config_file)}, out)
    summary = demo.main(argv, predictor=predictor)
    assert open_audio(summary["overlay_video"]).channels == 2  # mixed down for the MP4


def test_vocabulary_file_with_invisible_line(demo, predictor, files, tmp_path, tiny_config_file):
    vocab = tmp_path / "v.txt"
    vocab.write_text("dog\n\u200b\u200b\nviolin\n")
    out = tmp_path / "out"
    argv = _argv(["--vocabulary-file", str(vocab)], {**files, "cfg": str(tiny_config_file)}, out)
    with pytest.raises(SystemExit) as info:
        demo.main(argv, predictor=predictor)
    assert str(info.value.code) == (
        f"demo.py: error: {vocab}: line 2 holds only invisible characters, not a class name"
    )


def test_video_shorter_than_its_container_claims(
    demo, predictor, make_video, files, tmp_path, tiny_config_file, caplog
):
    video = make_video(tmp_path / "long.mp4", 4.0)
    data = video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.7)])  # the index (moov, at the front) claims 4 s
    out = tmp_path / "out"
    argv = _argv(["--video", str(cut)], {**files, "cfg": str(tiny_config_file)}, out)
    demo_logger = logging.getLogger("ovavss_d2")  # Detectron2's logger setup: no propagation
    demo_logger.addHandler(caplog.handler)
    try:
        demo.main(argv, predictor=predictor)
    finally:
        demo_logger.removeHandler(caplog.handler)
    warnings = [r.getMessage() for r in caplog.records if "before the" in r.getMessage()]
    assert warnings and "4.00 s its container claims" in warnings[0], caplog.text[-2000:]


def test_complete_video_gets_no_length_warning(
    demo, predictor, make_video, files, tmp_path, tiny_config_file, caplog
):
    """One frame a second is segmented, but every frame is decoded: no false 'ends at' warning."""
    video = make_video(tmp_path / "full.mp4", 4.0)
    out = tmp_path / "out"
    argv = _argv(["--video", str(video)], {**files, "cfg": str(tiny_config_file)}, out)
    demo_logger = logging.getLogger("ovavss_d2")
    demo_logger.addHandler(caplog.handler)
    try:
        summary = demo.main(argv, predictor=predictor)
    finally:
        demo_logger.removeHandler(caplog.handler)
    assert len(summary["frames"]) == 4
    assert not [r for r in caplog.records if "before the" in r.getMessage()], caplog.text[-2000:]


def test_resnet18_weights_refused_by_the_demo(demo, files, tmp_path):
    torchvision = pytest.importorskip("torchvision")
    weights = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    out = tmp_path / "out"
    argv = _argv(
        ["--opts", "MODEL.WEIGHTS", str(weights), "MODEL.DEVICE", "cpu"],
        {**files, "cfg": str(REPO / "configs/avss_synth/ovavss_effnet_yamnet_minilm.yaml")},
        out,
    )
    with pytest.raises(SystemExit) as info:
        demo.main(argv)
    message = str(info.value.code)
    assert message.startswith(f"demo.py: error: {weights}: leaves ")
    assert "% of the model's parameters unloaded" in message
    assert "missing: " in message and "unexpected: layer" in message
    assert not out.exists()


def test_small_helpers(demo):
    assert demo.parse_vocabulary("dog, \u200bfire  truck\ufeff ").names == ["dog", "fire truck"]
    assert np.isfinite(demo.MIN_FRAME_SIDE)
