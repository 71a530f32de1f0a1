"""OVAVSSCheckpointer: weights files that cannot run code, strict loading, frozen modules recorded
by source, and the pretrained start (MODEL.BACKBONE.WEIGHTS)."""

import logging
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from torch import nn

from ovavss_d2.checkpoint import (
    CheckpointError,
    OVAVSSCheckpointer,
    load_pretrained_backbone,
    load_training_start,
)


class Tiny(nn.Module):
    """Two groups: a 'backbone' (8*4+8 = 40 elements) and a 'head' (2*8+2 = 18 elements)."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, width))
        self.head = nn.Linear(width, 2)


class WriteMarker:
    """A pickle payload that creates a file when unpickled by a plain unpickler."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _zoo_pkl(path, model: nn.Module, protocol: int) -> None:
    """A file in the Detectron2 model-zoo layout: NumPy arrays under "model", "__author__"."""
    weights = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    with open(path, "wb") as f:
        pickle.dump(
            {"model": weights, "__author__": "test", "matching_heuristics": True}, f, protocol
        )


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_model_zoo_pkl_loads(tmp_path, protocol):
    torch.manual_seed(0)
    source = Tiny()
    _zoo_pkl(tmp_path / "zoo.pkl", source, protocol)
    target = Tiny()
    OVAVSSCheckpointer(target).load(str(tmp_path / "zoo.pkl"))
    for k, v in source.state_dict().items():
        assert torch.equal(target.state_dict()[k], v), k


def test_caffe2_style_pkl_loads(tmp_path):
    # Caffe2 / ImageNet zoo files: a plain dict of NumPy arrays (momentum blobs dropped).
    weights = {"w": np.ones((2, 2), np.float32), "w_momentum": np.zeros((2, 2), np.float32)}
    with open(tmp_path / "c2.pkl", "wb") as f:
        pickle.dump({"blobs": weights}, f, 2)
    data = OVAVSSCheckpointer(Tiny())._load_file(str(tmp_path / "c2.pkl"))
    assert set(data["model"]) == {"w"} and data["matching_heuristics"]


def test_pkl_payload_refused(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": {}, "__author__": WriteMarker(marker)}, f, 2)
    with pytest.raises(CheckpointError, match=r"evil\.pkl: refused to load the global"):
        OVAVSSCheckpointer(Tiny()).load(str(path))
    assert not marker.exists()
    # What Detectron2's own checkpointer does with it (the defect this guards against).
    try:
        DetectionCheckpointer(Tiny()).load(str(path))
    except Exception:
        pass
    assert marker.exists()


def test_pth_payload_refused(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pth"
    torch.save({"model": Tiny().state_dict(), "extra": WriteMarker(marker)}, path)
    with pytest.raises(CheckpointError, match=r"evil\.pth: refused by torch.load\(weights_only"):
        OVAVSSCheckpointer(Tiny()).load(str(path))
    assert not marker.exists()


def test_torch_load_gets_weights_only(tmp_path, monkeypatch):
    path = tmp_path / "ok.pth"
    torch.save({"model": Tiny().state_dict()}, path)
    calls = []
    real = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    OVAVSSCheckpointer(Tiny()).load(str(path))
    assert calls == [True]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "the file is empty"),
        (b"hello world", "neither a PyTorch checkpoint nor a pickle"),
        (None, "incomplete zip archive"),  # a truncated real checkpoint
        (b"\x80\x02}q\x00(X", "not a readable pickle"),  # a truncated pickle
    ],
)
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "bad.pkl" if content and content.startswith(b"\x80") else tmp_path / "w.pth"
    if content is None:
        torch.save({"model": Tiny().state_dict()}, path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as info:
        OVAVSSCheckpointer(Tiny()).load(str(path))
    assert str(info.value).startswith(str(path))


def test_zip_without_data_pkl(tmp_path):
    path = tmp_path / "w.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "not a checkpoint")
    with pytest.raises(CheckpointError, match="without data.pkl"):
        OVAVSSCheckpointer(Tiny()).load(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        OVAVSSCheckpointer(Tiny())._load_file(str(tmp_path / "nope.pth"))


def test_strict_loading_names_the_groups(tmp_path):
    path = tmp_path / "backbone_only.pth"
    torch.save({"model": Tiny().backbone.state_dict()}, path)  # keys "0.weight", "0.bias"
    with pytest.raises(CheckpointError) as info:
        OVAVSSCheckpointer(Tiny()).load(str(path))
    text = str(info.value)
    # All 58 elements unloaded: the keys lack the "backbone." prefix.
    assert "100.0%" in text and "missing: backbone.0 (2), head.weight (1), head.bias (1)" in text
    assert "unexpected: 0.weight (1), 0.bias (1)" in text


def test_share_limit(tmp_path):
    path = tmp_path / "partial.pth"
    state = {k: v for k, v in Tiny().state_dict().items() if k.startswith("backbone.")}
    torch.save({"model": state}, path)
    with pytest.raises(CheckpointError, match=r"leaves 31\.0% of the model's parameters unloaded"):
        OVAVSSCheckpointer(Tiny()).load(str(path))  # head: 18 of 58 elements
    OVAVSSCheckpointer(Tiny(), max_unloaded_share=0.32).load(str(path))
    with pytest.raises(CheckpointError):
        OVAVSSCheckpointer(Tiny(), max_unloaded_share=0.30).load(str(path))


def test_other_shapes_count_as_unloaded(tmp_path):
    path = tmp_path / "wide.pth"
    torch.save({"model": Tiny(width=16).state_dict()}, path)
    with pytest.raises(CheckpointError, match=r"other shape: backbone\.0 \(2\), head\.weight"):
        OVAVSSCheckpointer(Tiny(width=8)).load(str(path))


def test_torchvision_resnet_refused(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    path = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    with pytest.raises(CheckpointError, match="unexpected: .*layer"):
        OVAVSSCheckpointer(Tiny()).load(str(path))


def test_full_checkpoint_loads_without_error(tmp_path):
    source = Tiny()
    DetectionCheckpointer(source, save_dir=str(tmp_path)).save("model")
    target = Tiny()
    OVAVSSCheckpointer(target).load(os.path.join(tmp_path, "model.pth"))
    assert torch.equal(target.head.weight, source.head.weight)


def _global_pickle(module: str, name: str, args=None) -> bytes:
    """Protocol-2 pickle bytes naming the global ``module.name`` with the GLOBAL opcode (exactly
    that pair, whatever the object's own ``__module__``), called with ``args`` unless None."""
    head = b"\x80\x02c" + f"{module}\n{name}\n".encode()
    if args is None:
        return head + b"."
    return head + pickle.dumps(tuple(args), 2)[2:-1] + b"R."


class Call:
    """A pickle payload: a plain unpickler calls ``fn(*args)``."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _payloads(tmp):
    """(module, name, args, runs): ``runs`` payloads write below ``tmp`` when a plain unpickler
    reads them (shown by the test); the others are globals that run code given other arguments."""
    marker = str(tmp / "marker")
    code = f"open({marker!r}, 'w').close()"
    nested = tmp / "nested.pkl"  # a plain pickle that writes the marker
    nested.write_bytes(pickle.dumps(Call(open, marker, "w"), 2))
    return [
        # builtins (and their protocol-2 spelling)
        ("builtins", "eval", (code,), True),
        ("builtins", "exec", (code,), True),
        ("__builtin__", "eval", (code,), True),
        ("builtins", "open", (marker, "w"), True),
        ("builtins", "getattr", ("text", "upper"), False),
        ("builtins", "__import__", ("os",), False),
        ("builtins", "compile", ("1", "f", "eval"), False),
        ("builtins", "bytearray", (4,), False),
        # operator, functools, importlib, pickle itself
        ("operator", "attrgetter", ("system",), False),
        ("operator", "methodcaller", ("system", f"touch {marker}"), False),
        ("functools", "partial", ("print",), False),
        ("functools", "reduce", ("print", [1]), False),
        ("importlib", "import_module", ("os",), False),
        ("pickle", "loads", (nested.read_bytes(),), True),
        ("_pickle", "load", ("f",), False),
        # processes and files
        ("os", "system", (f"touch {marker}",), True),
        ("posix", "system", (f"touch {marker}",), True),
        ("os", "popen", (f"touch {marker}",), False),
        ("subprocess", "Popen", (["touch", marker],), False),
        ("subprocess", "check_call", (["touch", marker],), True),
        ("subprocess", "getoutput", (f"touch {marker}",), True),
        ("shutil", "rmtree", (str(tmp / "keep"),), True),
        # NumPy: exec helpers, pickle-reading and file-writing functions, modules
        ("numpy.testing._private.utils", "runstring", (code, {}), True),
        ("numpy", "load", (str(nested), None, True), True),
        ("numpy", "save", (marker, [1]), True),
        ("numpy", "fromfile", (str(nested),), False),
        ("numpy", "frompyfunc", ("print", 1, 1), False),
        ("numpy.ctypeslib", "load_library", ("libc", "/lib"), False),
        ("numpy.lib.npyio", "load", (str(nested), None, True), False),
        ("numpy", "dtypes", None, False),  # a module object: its attributes could be overwritten
        ("numpy.core.multiarray", "_reconstruct_evil", (), False),
        # torch: loaders that unpickle or compile
        ("torch", "load", (str(nested),), False),
        ("torch.serialization", "load", (str(nested),), False),
        ("torch.storage", "_load_from_bytes", (nested.read_bytes(),), False),
        ("torch.hub", "load", ("owner/repo", "model"), False),
        ("torch.jit", "load", (str(nested),), False),
        ("torch.utils.cpp_extension", "load_inline", ("x", "int f();"), False),
    ]


def test_every_code_running_global_is_refused(tmp_path):
    """Each payload of the list is refused before it runs; one admitted global family (say every
    ``numpy.*``, which holds an exec helper) fails the test."""
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "file").write_text("x")
    payloads = _payloads(tmp_path)
    files = sorted(p.name for p in tmp_path.rglob("*"))
    for i, (module, name, args, _) in enumerate(payloads):
        path = tmp_path / f"evil{i}.pkl"
        path.write_bytes(_global_pickle(module, name, args))
        with pytest.raises(
            CheckpointError, match=rf"refused to load the global '{module}\.{name}'"
        ):
            OVAVSSCheckpointer(Tiny()).load(str(path))
        path.unlink()
        assert sorted(p.name for p in tmp_path.rglob("*")) == files, (module, name)


def test_the_payloads_are_real(tmp_path):
    """The payloads marked as running do write below ``tmp`` through a plain unpickler."""
    (tmp_path / "keep").mkdir()
    for module, name, args, runs in _payloads(tmp_path):
        if not runs:
            continue
        before = sorted(p.name for p in tmp_path.rglob("*"))
        try:
            pickle.loads(_global_pickle(module, name, args))
        except Exception:
            pass
        after = sorted(p.name for p in tmp_path.rglob("*"))
        assert after != before, (module, name)
        for leftover in ("marker", "marker.npy"):
            if (tmp_path / leftover).exists():
                (tmp_path / leftover).unlink()
        (tmp_path / "keep").mkdir(exist_ok=True)


@pytest.mark.parametrize("protocol", [2, 4, pickle.HIGHEST_PROTOCOL])
def test_legitimate_pickles_still_load(tmp_path, protocol):
    """What model-zoo pickles hold: arrays of every numeric dtype (empty ones too), NumPy scalars
    and strings, ordered dicts, lists, tuples, bytes."""
    from collections import OrderedDict

    weights = OrderedDict(
        (f"w.{dt}", np.arange(6, dtype=dt).reshape(2, 3)) for dt in ("f4", "f8", "f2", "i8", "u1")
    )
    weights["empty"] = np.zeros((0, 4), np.float32)
    weights["flag"] = np.zeros(3, bool)
    data = {
        "model": weights,
        "__author__": "test",
        "meta": [np.float32(1.5), np.int64(7), np.str_("a"), (1, "b"), b"raw", b"", None, 2.5],
    }
    path = tmp_path / "zoo.pkl"
    path.write_bytes(pickle.dumps(data, protocol))
    loaded = OVAVSSCheckpointer(Tiny())._load_file(str(path))
    assert list(loaded["model"]) == list(weights)
    for key, value in weights.items():
        assert loaded["model"][key].dtype == value.dtype and np.array_equal(
            loaded["model"][key], value
        )
    assert loaded["meta"] == data["meta"]


def test_payloads_in_a_pth_are_refused(tmp_path):
    """The same payloads saved by torch.save (their objects' own global names) in a .pth."""
    import importlib

    (tmp_path / "keep").mkdir()
    checked = 0
    for i, (module, name, args, runs) in enumerate(_payloads(tmp_path)):
        if not runs or module == "__builtin__":
            continue
        fn = getattr(importlib.import_module(module), name)
        path = tmp_path / f"evil{i}.pth"
        torch.save({"model": Tiny().state_dict(), "x": Call(fn, *args)}, path)
        files = sorted(p.name for p in tmp_path.rglob("*"))
        with pytest.raises(CheckpointError, match="refused by torch.load"):
            OVAVSSCheckpointer(Tiny()).load(str(path))
        assert sorted(p.name for p in tmp_path.rglob("*")) == files, (module, name)
        checked += 1
    assert checked >= 10


# -- frozen modules left out of checkpoints, recorded by source -----------------------------------


class Encoder(nn.Module):
    """A frozen pretrained part: its weights come from a file (``weights_source``)."""

    def __init__(self, source: str = ""):
        super().__init__()
        self.proj = nn.Linear(4, 3)
        self.weights_source = ""
        if source:
            self.load_state_dict(self.read_weights(source))
            self.weights_source = source
        self.requires_grad_(False)

    def read_weights(self, source: str):
        return torch.load(source, weights_only=True)


class WithEncoder(nn.Module):
    def __init__(self, source: str = ""):
        super().__init__()
        self.encoder = Encoder(source)
        self.head = nn.Linear(3, 2)


def _encoder_file(path, seed: int) -> str:
    torch.manual_seed(seed)
    torch.save(Encoder().state_dict(), path)
    return str(path)


def test_frozen_source_left_out_and_restored(tmp_path):
    first = _encoder_file(tmp_path / "enc.pth", seed=0)
    model = WithEncoder(first)
    OVAVSSCheckpointer(model, str(tmp_path)).save("model")
    data = torch.load(tmp_path / "model.pth", weights_only=True)
    assert sorted(data["model"]) == ["head.bias", "head.weight"]
    entry = data["frozen_sources"]["encoder"]
    assert entry["source"] == first and len(entry["sha256"]) == 64
    # Built from the same file: loads and checks; every tensor counts as loaded.
    same = WithEncoder(first)
    OVAVSSCheckpointer(same).load(str(tmp_path / "model.pth"))
    assert torch.equal(same.head.weight, model.head.weight)
    # Built from another file: the recorded one is read back.
    other = WithEncoder(_encoder_file(tmp_path / "other.pth", seed=1))
    assert not torch.equal(other.encoder.proj.weight, model.encoder.proj.weight)
    OVAVSSCheckpointer(other).load(str(tmp_path / "model.pth"))
    assert torch.equal(other.encoder.proj.weight, model.encoder.proj.weight)
    assert other.encoder.weights_source == first


def test_frozen_source_missing_or_changed_is_refused(tmp_path):
    first = _encoder_file(tmp_path / "enc.pth", seed=0)
    OVAVSSCheckpointer(WithEncoder(first), str(tmp_path)).save("model")
    _encoder_file(tmp_path / "enc.pth", seed=2)  # the file now holds other weights
    with pytest.raises(
        CheckpointError, match=r"model\.pth: 'encoder' is not stored .* other weights"
    ):
        OVAVSSCheckpointer(WithEncoder()).load(str(tmp_path / "model.pth"))
    os.remove(first)
    with pytest.raises(CheckpointError, match=r"enc\.pth which is missing here"):
        OVAVSSCheckpointer(WithEncoder()).load(str(tmp_path / "model.pth"))


def test_store_frozen_keeps_them_and_trainable_modules_are_kept(tmp_path):
    model = WithEncoder(_encoder_file(tmp_path / "enc.pth", seed=0))
    OVAVSSCheckpointer(model, str(tmp_path), store_frozen=True).save("stored")
    assert "encoder.proj.weight" in torch.load(tmp_path / "stored.pth", weights_only=True)["model"]
    model.encoder.requires_grad_(True)  # trained: its weights are the run's, always stored
    path = OVAVSSCheckpointer(model, str(tmp_path)).save_weights("trained")
    data = torch.load(path, weights_only=True)
    assert "encoder.proj.weight" in data["model"] and "frozen_sources" not in data


def test_file_without_sources_keeps_the_models_frozen_module(tmp_path):
    # A checkpoint of an earlier version (the shipped default model): the encoder is absent and
    # not recorded; the model keeps the weights it was built with and loading stays strict.
    model = WithEncoder(_encoder_file(tmp_path / "enc.pth", seed=0))
    torch.save(
        {"model": {k: v for k, v in model.state_dict().items() if "head" in k}},
        tmp_path / "old.pth",
    )
    target = WithEncoder(str(tmp_path / "enc.pth"))
    before = target.encoder.proj.weight.clone()
    OVAVSSCheckpointer(target).load(str(tmp_path / "old.pth"))
    assert torch.equal(target.encoder.proj.weight, before)
    assert torch.equal(target.head.weight, model.head.weight)


# -- a pretrained start (MODEL.BACKBONE.WEIGHTS) ---------------------------------------------------


def _resnet_cfg():
    from detectron2.config import get_cfg

    from ovavss_d2 import add_ovavss_config

    cfg = get_cfg()
    add_ovavss_config(cfg)
    cfg.MODEL.RESNETS.DEPTH = 50
    cfg.MODEL.RESNETS.WIDTH_PER_GROUP = 8  # a narrow ResNet-50: the test stays small
    cfg.MODEL.RESNETS.STRIDE_IN_1X1 = False  # torchvision layout
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    return cfg


class SegModel(nn.Module):
    """The top-level layout of OVAVSS: backbone, frozen audio encoder, two decoders."""

    def __init__(self, cfg, audio_source: str = ""):
        from detectron2.layers import ShapeSpec
        from detectron2.modeling.backbone import build_resnet_backbone

        super().__init__()
        self.backbone = build_resnet_backbone(cfg, ShapeSpec(channels=3))
        self.audio_encoder = Encoder(audio_source)
        self.pixel_decoder = nn.Conv2d(2048, 8, 1)
        self.transformer_decoder = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 4))


def _d2_name(key: str) -> str:
    """A torchvision ResNet key as Detectron2's conversion of torchvision files names it."""
    key = key if key.startswith("layer") else f"stem.{key}"
    for stage in range(1, 5):
        key = key.replace(f"layer{stage}.", f"res{stage + 1}.")
    for conv in range(1, 4):
        key = key.replace(f"bn{conv}.", f"conv{conv}.norm.")
    return key.replace("downsample.0.", "shortcut.").replace("downsample.1.", "shortcut.norm.")


def _torchvision_r50_pkl(path) -> dict:
    """``R-50.pkl`` of Detectron2's ImageNetPretrained/torchvision, narrow and of random values."""
    torchvision = pytest.importorskip("torchvision")
    net = torchvision.models.resnet50(weights=None, width_per_group=8)
    g = torch.Generator().manual_seed(0)
    weights = {}
    for key, value in net.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue  # not in the released file (saved before torch counted batches)
        rand = torch.rand(value.shape, generator=g) + 0.5  # positive: fine for running_var too
        weights[_d2_name(key)] = rand.numpy()
    with open(path, "wb") as f:
        data = {"model": weights, "__author__": "torchvision", "matching_heuristics": True}
        pickle.dump(data, f, 2)
    return weights


@pytest.fixture
def propagating(caplog):
    """caplog at INFO for ovavss_d2's loggers (setup_logger may have stopped propagation)."""
    logger = logging.getLogger("ovavss_d2")
    old = logger.propagate
    logger.propagate = True
    caplog.set_level(logging.INFO)
    yield caplog
    logger.propagate = old


def test_pretrained_backbone_start(tmp_path, propagating):
    file_weights = _torchvision_r50_pkl(tmp_path / "R-50.pkl")
    cfg = _resnet_cfg()
    cfg.MODEL.BACKBONE.WEIGHTS = str(tmp_path / "R-50.pkl")
    model = SegModel(cfg, _encoder_file(tmp_path / "audio.pth", seed=0))
    checkpointer = OVAVSSCheckpointer.from_config(cfg, model)
    load_training_start(cfg, checkpointer)
    own = model.backbone.state_dict()
    used = [k for k in file_weights if not k.startswith("stem.fc.")]
    assert set(used) == set(own)
    for key in used:
        assert torch.equal(own[key], torch.from_numpy(file_weights[key])), key
    text = propagating.text
    line = next(r.getMessage() for r in propagating.records if "pretrained parts" in r.getMessage())
    assert (
        "random initialisation: pixel_decoder (2 tensors), transformer_decoder (4 tensors)" in line
    )
    assert "audio_encoder (from" in line and "unused in the file: stem.fc (2)" in line
    for module in ("pixel_decoder", "transformer_decoder", "audio_encoder", "stem.fc"):
        assert text.count(module) == 1, module  # listed once, not per parameter
    assert not [r for r in propagating.records if r.levelno >= logging.WARNING]


def test_whole_model_file_gives_its_backbone(tmp_path):
    # Mask2Former-style: the backbone's tensors under "backbone.", decoders of another layout.
    cfg = _resnet_cfg()
    source = SegModel(cfg)
    weights = {f"backbone.{k}": v.numpy() + 1 for k, v in source.backbone.state_dict().items()}
    weights["sem_seg_head.predictor.weight"] = np.ones((3, 3), np.float32)
    with open(tmp_path / "m2f.pkl", "wb") as f:
        pickle.dump({"model": weights, "__author__": "m2f", "matching_heuristics": True}, f)
    model = SegModel(cfg)
    loaded, unused = load_pretrained_backbone(model, str(tmp_path / "m2f.pkl"))
    assert len(loaded) == len(model.backbone.state_dict()) and unused == []
    assert torch.equal(
        model.backbone.res5[0].conv1.weight, source.backbone.res5[0].conv1.weight + 1
    )


def test_backbone_file_of_another_network_is_refused(tmp_path):
    with open(tmp_path / "other.pkl", "wb") as f:
        pickle.dump({"model": {"layer.w": np.ones(3, np.float32)}, "__author__": "x"}, f)
    with pytest.raises(CheckpointError, match=r"other\.pkl: fills none of the backbone's param"):
        load_pretrained_backbone(SegModel(_resnet_cfg()), str(tmp_path / "other.pkl"))


def test_missing_backbone_file_is_named(tmp_path):
    with pytest.raises(
        CheckpointError, match=r"R-50\.pkl: no such file \(MODEL\.BACKBONE\.WEIGHTS\)"
    ):
        load_pretrained_backbone(SegModel(_resnet_cfg()), str(tmp_path / "R-50.pkl"))


def test_random_start_warns_once(propagating):
    cfg = _resnet_cfg()
    model = SegModel(cfg)
    load_training_start(cfg, OVAVSSCheckpointer.from_config(cfg, model))
    warnings = [r.getMessage() for r in propagating.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert (
        "every trained module starts from random initialisation (backbone, pixel_decoder"
        in warnings[0]
    )
    assert "MODEL.BACKBONE.WEIGHTS" in warnings[0]


def test_trained_weights_skip_the_pretrained_parts(tmp_path, propagating):
    cfg = _resnet_cfg()
    trained = SegModel(cfg)
    OVAVSSCheckpointer(trained, str(tmp_path)).save("trained")
    cfg.MODEL.WEIGHTS = str(tmp_path / "trained.pth")
    cfg.MODEL.BACKBONE.WEIGHTS = str(tmp_path / "absent.pkl")  # not read
    model = SegModel(cfg)
    load_training_start(cfg, OVAVSSCheckpointer.from_config(cfg, model))
    assert torch.equal(model.backbone.stem.conv1.weight, trained.backbone.stem.conv1.weight)
    assert not [r for r in propagating.records if r.levelno >= logging.WARNING]
