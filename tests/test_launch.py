"""Multi-process training on CPU: detectron2's launch with the build's gloo fix, 2 processes x 1
clip == 1 process x 2 clips (losses and gradients), evaluation gathered across processes; and the
preflight defaults that mirror Detectron2's."""

import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
build_detectron2 = importlib.import_module("build_detectron2")  # scripts/ is no package

WORKER = textwrap.dedent("""
    import itertools, sys
    import numpy as np, torch
    from torch.nn.parallel import DistributedDataParallel
    sys.path.insert(0, sys.argv[1])
    from d2_launch_gloo import launch  # detectron2's launch.py with the build's fix
    from detectron2.data import MetadataCatalog
    from detectron2.utils import comm
    from ovavss_d2.data.samplers import ResumableTrainingSampler
    from ovavss_d2.evaluation.avss_evaluation import AVSSEvaluator

    def worker(out, data):
        world = comm.get_world_size()
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
        net = DistributedDataParallel(model) if world > 1 else model
        sampler = ResumableTrainingSampler(2, batch_size=2 // world, shuffle=False, seed=0)
        idx = [i for _, i in itertools.islice(iter(sampler), 2 // world)]
        x, y = data["x"][idx], data["y"][idx]
        loss = ((net(x) - y) ** 2).mean()
        loss.backward()  # DDP averages the gradients over the processes
        losses = comm.all_gather(loss.item())
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}

        MetadataCatalog.get("ddp_avss").set(
            stuff_classes=["background", "cat", "dog"], base_ids=[1], novel_ids=[2],
            ignore_label=255, evaluator_type="avss",
        )
        evaluator = AVSSEvaluator("ddp_avss")
        evaluator.reset()
        clips = data["clips"][comm.get_rank()::world]
        evaluator.process([c for c, _ in clips], [o for _, o in clips])
        results = evaluator.evaluate()
        if comm.is_main_process():
            torch.save(
                {"losses": losses, "grads": grads, "eval": results, "world": world, "idx": idx},
                out,
            )

    if __name__ == "__main__":
        data = torch.load(sys.argv[2], weights_only=False)
        launch(worker, int(sys.argv[3]), dist_url="auto", args=(sys.argv[4], data))
    """)


def _label_png(path, array):
    from PIL import Image

    from ovavss_d2.data.class_lists import encode_label_rgb

    Image.fromarray(encode_label_rgb(np.asarray(array), 3)).save(path)
    return str(path)


@pytest.fixture(scope="module")
def launch_dir(tmp_path_factory):
    installed = importlib.import_module("detectron2.engine.launch")  # the module, not launch()

    d = tmp_path_factory.mktemp("launch")
    text = Path(installed.__file__).read_text()
    if "GLOO" not in text:  # the shared venv may hold an older build: apply the build's fix
        text = build_detectron2.patch_launch(text)
    (d / "d2_launch_gloo.py").write_text(text)
    (d / "worker.py").write_text(WORKER)
    rng = np.random.default_rng(0)
    clips = []
    for c in range(2):
        labels = [rng.integers(0, 3, (4, 6)) for _ in range(2)]
        clip = {
            "clip_id": f"c{c}",
            "file_names": ["f0.jpg", "f1.jpg"],
            "sem_seg_file_names": [
                _label_png(d / f"l{c}{t}.png", lab) for t, lab in enumerate(labels)
            ],
            "frame_indices": [0, 1],
            "height": 4,
            "width": 6,
            "class_names": [],
            "binary": False,
        }
        outputs = [{"sem_seg": torch.as_tensor(rng.normal(size=(3, 4, 6))).float()} for _ in labels]
        clips.append((clip, outputs))
    data = {"x": torch.randn(2, 6), "y": torch.randn(2, 3), "clips": clips}
    torch.save(data, d / "data.pt")
    return d


def _run(launch_dir, processes: int):
    out = launch_dir / f"out{processes}.pt"
    subprocess.run(
        [
            sys.executable,
            str(launch_dir / "worker.py"),
            str(launch_dir),
            str(launch_dir / "data.pt"),
            str(processes),
            str(out),
        ],
        check=True,
        timeout=300,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    return torch.load(out, weights_only=False)


def test_two_processes_equal_one_process_with_both_clips(launch_dir):
    one, two = _run(launch_dir, 1), _run(launch_dir, 2)
    assert one["world"] == 1 and two["world"] == 2
    assert one["idx"] == [0, 1] and two["idx"] == [0]  # rank 0 got clip 0, rank 1 clip 1
    assert len(two["losses"]) == 2
    assert np.mean(two["losses"]) == pytest.approx(one["losses"][0], rel=1e-6)
    for name, grad in one["grads"].items():
        torch.testing.assert_close(two["grads"][name], grad, rtol=1e-5, atol=1e-7)
    # The evaluator of rank 0 summed the statistics of both processes.
    (task_one,) = one["eval"].values()
    (task_two,) = two["eval"].values()
    np.testing.assert_allclose(
        [task_two[k] for k in sorted(task_one)], [task_one[k] for k in sorted(task_one)]
    )


def test_patch_launch_fits_detectron2_0_6():
    installed = importlib.import_module("detectron2.engine.launch")  # the module, not launch()

    text = Path(installed.__file__).read_text()
    if "GLOO" in text:
        pytest.skip("this detectron2 already chooses gloo")
    patched = build_detectron2.patch_launch(text)
    assert 'backend="NCCL" if has_gpu else "GLOO"' in patched
    assert "        torch.cuda.set_device(local_rank)" in patched  # only under ``if has_gpu:``
    assert "    torch.cuda.set_device" not in patched.replace("        torch.cuda.set_device", "")
    compile(patched, "launch.py", "exec")


def test_patch_defaults_fits_detectron2_0_6():
    installed = importlib.import_module("detectron2.engine.defaults")
    text = Path(installed.__file__).read_text()
    if "kwargs and torch.cuda.is_available()" in text:
        pytest.skip("this detectron2 already leaves device_ids out on CPUs")
    patched = build_detectron2.patch_defaults(text)
    assert 'if "device_ids" not in kwargs and torch.cuda.is_available():' in patched
    compile(patched, "defaults.py", "exec")


def test_wheel_hash_is_checked(tmp_path):
    wheel = tmp_path / "pb1_detectron2-0.6-py3-none-any.whl"
    wheel.write_bytes(b"built wheel")
    assert not build_detectron2.verified(wheel)  # no record: not reused
    build_detectron2.record_hash(wheel)
    assert build_detectron2.verified(wheel)
    wheel.write_bytes(b"tampered wheel")
    assert not build_detectron2.verified(wheel)


def test_preflight_defaults_match_detectron2():
    from detectron2.config import get_cfg

    from ovavss_d2.utils import preflight

    cfg = get_cfg()
    for key, value in preflight.D2_DEFAULTS.items():
        node = cfg
        for part in key.split("."):
            node = node[part]
        assert node == value, key
