"""Weights by name and untrained models (issue 18, docs/RELIABILITY.md).

The default config names its packaged checkpoint by URL (``ovavss_d2://``), so copies and children
of it keep the trained weights; a model left untrained refuses inference unless allowed; weights
with NaN / infinite / blanked tensors and damaged zip members are refused by name.
"""

import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from ovavss_d2 import model_zoo
from ovavss_d2.checkpoint import (
    CheckpointError,
    OVAVSSCheckpointer,
    UntrainedModelError,
    load_for_inference,
)
from ovavss_d2.predictor import DEFAULT_CONFIG_FILE, DEFAULT_WEIGHTS, VideoPredictor

REPO = Path(__file__).resolve().parents[2]
DEMO_FILE = REPO / "demo" / "demo.py"
TRAIN_NET = REPO / "train_net.py"
INSTANT_CONFIG = REPO / "configs" / "avss_synth" / "ovavss_effnet_yamnet_minilm_instant_test.yaml"
URL = "ovavss_d2://model_zoo/ovavss_effnet_yamnet_minilm.pth"
NAME = "avss_synth/ovavss_effnet_yamnet_minilm.yaml"


def _full_cfg(config_file):
    from ovavss_d2 import get_cfg
    from ovavss_d2.utils.preflight import merge_config

    cfg = get_cfg()
    merge_config(cfg, str(config_file), [], "overrides")
    return cfg


# -- the model zoo ---------------------------------------------------------------------------------


def test_model_zoo_names():
    assert model_zoo.available_checkpoints() == [URL]
    assert model_zoo.resolve(URL) == DEFAULT_WEIGHTS
    assert model_zoo.get_config_file(NAME) == str(DEFAULT_CONFIG_FILE)
    assert model_zoo.get_config_file(NAME[: -len(".yaml")]) == str(DEFAULT_CONFIG_FILE)
    assert model_zoo.get_checkpoint_url(NAME) == URL
    from detectron2.utils.file_io import PathManager

    assert PathManager.get_local_path(URL) == str(DEFAULT_WEIGHTS)
    assert PathManager.isfile(URL) and not PathManager.isfile("ovavss_d2://model_zoo/no.pth")


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda: model_zoo.resolve("ovavss_d2://model_zoo/nope.pth"), "no such file"),
        (lambda: model_zoo.resolve("ovavss_d2://../setup.py"), "no such file"),
        (lambda: model_zoo.resolve("ovavss_d2://"), "no such file"),
        (lambda: model_zoo.get_config_file("avss_synth/nope.yaml"), "no such config"),
        (lambda: model_zoo.get_checkpoint_url("avsbench_ov/ovavss_R50.yaml"), "no trained"),
    ],
)
def test_model_zoo_missing_names_list_the_available_ones(call, fragment):
    with pytest.raises(model_zoo.ModelZooError, match=fragment) as info:
        call()
    assert ("ovavss_effnet_yamnet_minilm" in str(info.value)) or "R50" in str(info.value)
    if "config" in fragment:
        assert NAME in str(info.value)
    else:
        assert URL in str(info.value) or NAME in str(info.value)


def test_path_manager_missing_name():
    from detectron2.utils.file_io import PathManager

    with pytest.raises(FileNotFoundError, match=f"available: {URL}"):
        PathManager.get_local_path("ovavss_d2://model_zoo/nope.pth")


@pytest.fixture(scope="module")
def trained_model():
    return model_zoo.get(NAME, trained=True)


def test_model_zoo_get_trained_model_has_the_shipped_weights(trained_model):
    saved = torch.load(DEFAULT_WEIGHTS, map_location="cpu", weights_only=True)["model"]
    state = trained_model.state_dict()
    for key in list(saved)[:: max(1, len(saved) // 20)]:
        torch.testing.assert_close(state[key], saved[key].to(state[key].dtype))
    cfg = model_zoo.get_config(NAME, trained=False)
    assert cfg.MODEL.WEIGHTS == URL  # the config file itself names its weights


# -- copies and children of the default config keep their weights -------------------------------


@pytest.fixture(scope="module")
def config_copies(tmp_path_factory):
    """The tester's cases: a copy next to the original, a child through _BASE_, a UTF-8 BOM."""
    root = tmp_path_factory.mktemp("configs")
    shutil.copytree(REPO / "configs", root / "configs")
    folder = root / "configs" / "avss_synth"
    text = DEFAULT_CONFIG_FILE.read_bytes()
    (folder / "my.yaml").write_bytes(text)
    (folder / "bom.yaml").write_bytes(b"\xef\xbb\xbf" + text)
    child = root / "child.yaml"
    child.write_text(
        f"_BASE_: {DEFAULT_CONFIG_FILE}\nMODEL:\n  OVAVSS:\n    TEST:\n      TOP_K: 5\n"
    )
    bom_child = root / "bom_child.yaml"
    bom_child.write_bytes(b"\xef\xbb\xbf" + f"_BASE_: {folder / 'my.yaml'}\n".encode())
    return {
        "copy": folder / "my.yaml",
        "bom copy": folder / "bom.yaml",
        "child": child,
        "bom child of a copy": bom_child,
    }


@pytest.mark.parametrize("case", ["copy", "bom copy", "child", "bom child of a copy"])
def test_copies_of_the_default_config_load_the_trained_weights(case, config_copies, trained_model):
    cfg = _full_cfg(config_copies[case])
    assert cfg.MODEL.WEIGHTS == URL
    saved = torch.load(DEFAULT_WEIGHTS, map_location="cpu", weights_only=True)["model"]
    key = "embedding_classifier.proj.weight"
    param = dict(trained_model.named_parameters())[key]
    with torch.no_grad():
        param.fill_(0.5)  # forget what was loaded before
    load_for_inference(cfg, trained_model)
    torch.testing.assert_close(param.detach(), saved[key])


def test_demo_config_of_a_copy_names_the_trained_weights(config_copies, demo):
    args = demo.get_parser().parse_args(
        ["--video", "v.mp4", "--output", "out", "--config-file", str(config_copies["bom copy"])]
    )
    assert demo.setup_cfg(args).MODEL.WEIGHTS == URL


def test_instant_test_config_trains_from_scratch():
    assert _full_cfg(INSTANT_CONFIG).MODEL.WEIGHTS == ""


# -- untrained models refuse inference -----------------------------------------------------------


def test_predictor_refuses_an_untrained_model(tiny_cfg):
    cfg = tiny_cfg.clone()
    cfg.MODEL.ALLOW_UNTRAINED = False
    with pytest.raises(UntrainedModelError) as info:
        VideoPredictor(cfg)
    text = str(info.value)
    assert text.startswith("MODEL.WEIGHTS is empty: the model's ")
    assert "keep their random initialisation" in text
    assert "set MODEL.ALLOW_UNTRAINED True to run it untrained" in text
    assert "\n" not in text


def test_predictor_refuses_weights_that_fill_no_trained_parameter(tiny_cfg, predictor, tmp_path):
    """A file that loads only buffers (partial loading allowed) leaves the model untrained."""
    trainable = {n for n, p in predictor.model.named_parameters() if p.requires_grad}
    state = {k: v for k, v in predictor.model.state_dict().items() if k not in trainable}
    path = tmp_path / "buffers_only.pth"
    torch.save({"model": state}, path)
    cfg = tiny_cfg.clone()
    cfg.MODEL.ALLOW_UNTRAINED = False
    cfg.MODEL.CHECKPOINT.MAX_UNLOADED_SHARE = 1.0
    cfg.MODEL.WEIGHTS = str(path)
    with pytest.raises(UntrainedModelError, match=f"MODEL.WEIGHTS '{path}' loads none of"):
        VideoPredictor(cfg)


def test_predictor_refuses_backbone_only_weights(tiny_cfg, predictor, tmp_path):
    """Weights for one top-level module only (an ImageNet backbone): the rest stays random."""
    trainable = [n for n, p in predictor.model.named_parameters() if p.requires_grad]
    first = trainable[0].split(".")[0]
    state = {k: v for k, v in predictor.model.state_dict().items() if k.startswith(first + ".")}
    path = tmp_path / "one_module.pth"
    torch.save({"model": state}, path)
    cfg = tiny_cfg.clone()
    cfg.MODEL.ALLOW_UNTRAINED = False
    cfg.MODEL.CHECKPOINT.MAX_UNLOADED_SHARE = 1.0
    cfg.MODEL.WEIGHTS = str(path)
    with pytest.raises(UntrainedModelError) as info:
        VideoPredictor(cfg)
    text = str(info.value)
    assert text.startswith(f"MODEL.WEIGHTS '{path}' loads none of the trainable parameter tensors")
    others = {n.split(".")[0] for n in trainable} - {first}
    assert others and all(f"{m} (" in text for m in others) and f"{first} (" not in text


def test_predictor_allows_an_untrained_model_when_told(tiny_cfg, caplog):
    cfg = tiny_cfg.clone()
    cfg.MODEL.ALLOW_UNTRAINED = True
    assert VideoPredictor(cfg).model is not None


def _tiny_untrained_config(tmp_path) -> Path:
    path = tmp_path / "untrained.yaml"
    path.write_text(
        f"_BASE_: {INSTANT_CONFIG}\n"
        "MODEL:\n  TEXT_ENCODER:\n    TEMPLATES: single\n  OVAVSS:\n    TEST:\n      TOP_K: 3\n"
        "INPUT:\n  MIN_SIZE_TEST: 64\n  MAX_SIZE_TEST: 96\n  SAMPLING_FRAME_NUM: 2\n"
    )
    return path


def _run(argv, tmp_path, timeout=600):
    return subprocess.run(
        [sys.executable, *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def test_demo_refuses_an_untrained_model_and_runs_it_when_told(tmp_path, make_video):
    config = _tiny_untrained_config(tmp_path)
    video = make_video(tmp_path / "clip.mp4", 1.0, fps=4, size=(48, 32), audio_seconds=1.0)
    out = tmp_path / "out"
    argv = [DEMO_FILE, "--video", video, "--config-file", config, "--output", out]
    proc = _run(argv, tmp_path)
    assert proc.returncode == 1, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"demo.py: error: {config}: MODEL.WEIGHTS is empty: the model's ")
    assert last.endswith("or add --allow-untrained to run it untrained")
    assert "Traceback" not in proc.stderr
    assert not out.exists()

    proc = _run([*argv, "--allow-untrained"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "clip.json").is_file()


def test_eval_only_refuses_an_untrained_model(tmp_path):
    argv = [
        TRAIN_NET,
        "--config-file",
        INSTANT_CONFIG,
        "--eval-only",
        "MODEL.EFFICIENTNET.WEIGHTS",
        "none",
        "DATASETS.TEST",
        "()",
        "OUTPUT_DIR",
        tmp_path / "out",
    ]
    # Refused by the checks before torch is imported (ovavss_d2/utils/train_checks.py), exit 2.
    proc = _run(argv, tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("train_net.py: error: --eval-only: MODEL.WEIGHTS is empty")
    assert last.endswith("or set MODEL.ALLOW_UNTRAINED True to evaluate it untrained)")
    assert "Traceback" not in proc.stderr

    # The override lifts that refusal: the next check speaks (no test set in this tiny run).
    proc = _run([*argv, "MODEL.ALLOW_UNTRAINED", "True"], tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("train_net.py: error: --eval-only: DATASETS.TEST is empty"), last


# -- broken weights ------------------------------------------------------------------------------


def _saved(predictor, tmp_path, name, change=None) -> Path:
    state = {k: v.clone() for k, v in predictor.model.state_dict().items()}
    if change is not None:
        change(state)
    path = tmp_path / name
    torch.save({"model": state}, path)
    return path


def _load(predictor, path):
    OVAVSSCheckpointer(predictor.model).load(str(path))


def test_the_models_own_weights_load(predictor, tmp_path):
    """Zero-initialised tensors (biases, attention weights) are zero in the model too: fine."""
    _load(predictor, _saved(predictor, tmp_path, "own.pth"))


def _first_weight(state, ndim=2):
    return next(k for k, v in state.items() if k.endswith(".weight") and v.ndim == ndim)


@pytest.mark.parametrize(
    "value, fragment", [(float("nan"), "1 NaN and 0"), (float("inf"), "0 NaN and 1")]
)
def test_nan_and_inf_tensors_are_refused_by_name(predictor, tmp_path, value, fragment):
    names = []

    def poison(state):
        names.append(_first_weight(state))
        state[names[0]].view(-1)[3] = value

    path = _saved(predictor, tmp_path, "poisoned.pth", poison)
    with pytest.raises(CheckpointError) as info:
        _load(predictor, path)
    text = str(info.value)
    assert text.startswith(f"{path}: tensor '{names[0]}' holds {fragment} infinite values")


def test_all_nan_checkpoint_is_refused(predictor, tmp_path):
    def poison(state):
        for v in state.values():
            if v.is_floating_point():
                v.fill_(float("nan"))

    path = _saved(predictor, tmp_path, "nan.pth", poison)
    with pytest.raises(CheckpointError, match=r"NaN .* \(and \d+ more tensors\)"):
        _load(predictor, path)


def test_zeroed_weight_matrix_is_refused_by_name(predictor, tmp_path):
    names = []

    def blank(state):
        names.append(_first_weight(state))
        state[names[0]].zero_()

    path = _saved(predictor, tmp_path, "blank_one.pth", blank)
    with pytest.raises(CheckpointError) as info:
        _load(predictor, path)
    assert str(info.value).startswith(f"{path}: tensor '{names[0]}' is all zeros, where the model")


def test_all_zero_checkpoint_is_refused(predictor, tmp_path):
    def blank(state):
        for v in state.values():
            if v.is_floating_point():
                v.zero_()

    path = _saved(predictor, tmp_path, "zeros.pth", blank)
    with pytest.raises(CheckpointError, match=r"is all zeros \(and \d+ more tensors\)"):
        _load(predictor, path)


def test_flipped_byte_in_a_zip_member_is_refused(predictor, tmp_path):
    path = _saved(predictor, tmp_path, "flipped.pth")
    with zipfile.ZipFile(path) as archive:
        member = max(archive.infolist(), key=lambda i: i.file_size)  # a tensor's data
    data = bytearray(path.read_bytes())
    offset = member.header_offset
    name_len, extra_len = struct.unpack("<HH", data[offset + 26 : offset + 30])
    data[offset + 30 + name_len + extra_len + member.file_size // 2] ^= 0x01
    path.write_bytes(bytes(data))
    torch.load(path, weights_only=True)  # torch itself reads it without a word
    with pytest.raises(CheckpointError) as info:
        _load(predictor, path)
    assert str(info.value) == (
        f"{path}: member '{member.filename}' fails its CRC check: the file was damaged "
        "(re-download or copy it)"
    )


def test_demo_names_a_missing_model_zoo_file_before_importing_torch(tmp_path, make_video):
    video = make_video(tmp_path / "clip.mp4", 1.0, fps=4, size=(48, 32), audio_seconds=1.0)
    argv = [
        "-X",
        "importtime",
        DEMO_FILE,
        "--video",
        video,
        "--output",
        tmp_path / "out",
        "--opts",
        "MODEL.WEIGHTS",
        "ovavss_d2://model_zoo/nope.pth",
    ]
    proc = _run(argv, tmp_path, timeout=120)
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert proc.returncode != 0
    assert errors == [
        "demo.py: error: ovavss_d2://model_zoo/nope.pth: no such file in the ovavss_d2 model zoo "
        f"({model_zoo.PACKAGE_DIR}); available: {URL} (MODEL.WEIGHTS)"
    ]
    assert "torch" not in imported and "detectron2" not in imported
