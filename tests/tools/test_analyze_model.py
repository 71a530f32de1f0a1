"""tools/analyze_model.py: fvcore FLOPs and the parameter table of a configured model."""

import pytest

INSTANT = "configs/avss_synth/ovavss_effnet_yamnet_minilm_instant_test.yaml"
FAST = [  # a random backbone and the learned classifier only: nothing to encode but 22 names
    "MODEL.DEVICE", "cpu",
    "MODEL.EFFICIENTNET.WEIGHTS", "none",
    "MODEL.TEXT_ENCODER.TEMPLATES", "single",
    "MODEL.CLASS_SOURCES.NAMES", "['learned']",
    "MODEL.CLASS_SOURCES.BASE_WEIGHTS", "[1.0]",
    "MODEL.CLASS_SOURCES.NOVEL_WEIGHTS", "[1.0]",
]  # fmt: skip


def test_flop_and_parameter_tasks(load_script, repo_root):
    tool = load_script("tools/analyze_model.py")
    argv = ["--config-file", str(repo_root / INSTANT), "--tasks", "flop", "parameter"]
    argv += ["--size", "64", "--width", "96", "--frames", "2", "--max-depth", "1", *FAST]
    results = tool.main(argv)
    assert results["gflops"] > 0.01  # the backbone alone: ~0.1 GFLOPs for 2 frames of 64x96
    for module in ("backbone", "audio_encoder", "pixel_decoder", "transformer_decoder"):
        assert f"| {module} " in results["parameters"], module


def test_bad_arguments(load_script, repo_root):
    tool = load_script("tools/analyze_model.py")
    with pytest.raises(SystemExit):
        tool.main(["--config-file", str(repo_root / INSTANT), "--tasks", "speed"])
    with pytest.raises(SystemExit, match="must be >= 1"):
        tool.main(["--config-file", str(repo_root / INSTANT), "--tasks", "flop", "--frames", "0"])
