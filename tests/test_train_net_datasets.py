"""train_net.py with a defective dataset (issue 18): one line ``train_net.py: error: ...`` naming
the dataset or clip and the file, a non-zero exit status and no traceback. Defects found by the
loader are reported before the model is built; unreadable file contents when the clip is first
mapped (also from a DataLoader worker)."""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ovavss_d2.utils.testing import make_fake_avsbench

ROOT = Path(__file__).resolve().parents[1]
TRAIN_NET = ROOT / "train_net.py"
INSTANT_TEST = ROOT / "configs/avss_synth/ovavss_effnet_yamnet_minilm_instant_test.yaml"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """An AVSS-Synth-format root (under AVSS-Synth/) with one v1s clip per split."""
    d = tmp_path_factory.mktemp("tn_datasets")
    make_fake_avsbench(
        d / "AVSS-Synth",
        clips_per_split=1,
        subsets=("v1s",),
        classes="avss_synth.txt",
        split_file="avss_synth_split.json",
    )
    return d


def _clip(root: Path, split: str = "train") -> Path:
    return next((root / "AVSS-Synth" / "v1s").glob(f"fakev1s{split}*"), None)


def _rewrite_metadata(root: Path, keep) -> None:
    path = root / "AVSS-Synth" / "metadata.csv"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    columns = [c for c in rows[0] if keep(c, None)]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(r for r in rows if keep(None, r))


def no_root(root):
    shutil.rmtree(root / "AVSS-Synth")


def no_split_column(root):
    _rewrite_metadata(root, lambda column, row: column != "split")


def frame_missing(root):
    (_clip(root) / "frames" / "3.jpg").unlink()


def audio_missing(root):
    (_clip(root) / "audio.wav").unlink()


def frame_linked_outside(root):
    frame = _clip(root) / "frames" / "0.jpg"
    outside = root.parent / f"{root.name}_outside.jpg"
    shutil.move(frame, outside)
    frame.symlink_to(outside)


def no_test_clips(root):
    _rewrite_metadata(root, lambda column, row: row is None or row["split"] != "test")


def corrupt_label(root):
    (_clip(root) / "labels_rgb" / "0.png").write_bytes(b"not a PNG")


def unreadable_audio(root):
    (_clip(root) / "audio.wav").write_bytes(b"RIFF\x00\x00garbage")


def unknown_label_colour(root):
    path = _clip(root) / "labels_rgb" / "0.png"
    rgb = np.asarray(Image.open(path).convert("RGB")).copy()
    rgb[:4, :4] = (1, 2, 3)  # no class of the palette
    Image.fromarray(rgb).save(path)


def nothing(root):
    pass


# case: (defect, extra overrides, message fragment, found before the model is built)
CASES = {
    "dataset root missing": (
        no_root,
        [],
        "DATASETS.TRAIN 'avss_synth_train': dataset root not found: {root}/AVSS-Synth",
        True,
    ),
    "metadata column missing": (
        no_split_column,
        [],
        "DATASETS.TRAIN 'avss_synth_train': {root}/AVSS-Synth/metadata.csv: missing columns "
        "['split']",
        True,
    ),
    "frame missing": (
        frame_missing,
        [],
        "frames: found 4 frames numbered [0, 1, 2, 4], but a v1s clip has 5 frames",
        True,
    ),
    "audio missing": (audio_missing, [], "fakev1strain000_0: no audio file", True),
    "frame linked outside the root": (
        frame_linked_outside,
        [],
        "frames/0.jpg: the frame resolves to '{root}_outside.jpg', outside the dataset root",
        True,
    ),
    "split without clips": (
        no_test_clips,
        ["DATASETS.TEST", "('avss_synth_test',)"],
        "DATASETS.TEST 'avss_synth_test': no clips of split test, subsets v1s/v1m/v2 in "
        "{root}/AVSS-Synth",
        True,
    ),
    "unregistered dataset": (
        nothing,
        ["DATASETS.TRAIN", "('avss_synth_trian',)"],
        "DATASETS.TRAIN: dataset 'avss_synth_trian' is not registered (did you mean "
        "avss_synth_train",
        True,
    ),
    "corrupt label": (
        corrupt_label,
        [],
        "clip 'fakev1strain000_0': {clip}/labels_rgb/0.png: cannot read label image",
        False,
    ),
    "unreadable audio, in a loader worker": (
        unreadable_audio,
        ["DATALOADER.NUM_WORKERS", "1"],
        "clip 'fakev1strain000_0': {clip}/audio.wav: cannot read audio",
        False,
    ),
    "unknown label colour": (
        unknown_label_colour,
        [],
        "{clip}/labels_rgb/0.png: 16 pixels have colours outside the",
        False,
    ),
}


def _train(root: Path, out: Path, max_iter: int, *extra: str) -> subprocess.CompletedProcess:
    """train_net.py with the instant-test config for ``max_iter`` tiny iterations on the datasets
    under ``root`` (no test set), ``extra`` overrides before OUTPUT_DIR."""
    argv = [sys.executable, str(TRAIN_NET), "--config-file", str(INSTANT_TEST)]
    argv += ["MODEL.EFFICIENTNET.WEIGHTS", "none", "MODEL.TEXT_ENCODER.TEMPLATES", "single"]
    argv += ["SOLVER.IMS_PER_BATCH", "1", "SOLVER.MAX_ITER", str(max_iter), "SOLVER.STEPS", "()"]
    argv += ["DATASETS.TEST", "()", *extra, "OUTPUT_DIR", str(out)]
    env = dict(os.environ, DETECTRON2_DATASETS=str(root), OMP_NUM_THREADS="1")
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)


@pytest.mark.parametrize("case", sorted(CASES))
def test_dataset_defect_is_one_line(case, pristine, tmp_path):
    defect, extra, fragment, before_model = CASES[case]
    root = tmp_path / "data"
    shutil.copytree(pristine, root, symlinks=True)
    defect(root)
    proc = _train(root, tmp_path / "out", 2, *extra)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("train_net.py: error: "), proc.stderr[-3000:]
    assert fragment.format(root=root, clip=_clip(root)) in errors[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    built = "Model:" in proc.stdout + proc.stderr  # Detectron2 logs the model once it is built
    assert built != before_model, case


def test_links_outside_the_root_allowed(pristine, tmp_path):
    """The advice of the message works for the AVSS-Synth datasets: training runs."""
    root = tmp_path / "data"
    shutil.copytree(pristine, root, symlinks=True)
    frame_linked_outside(root)
    proc = _train(root, tmp_path / "out", 1, "DATASETS.ALLOW_SYMLINKS_OUTSIDE_ROOT", "True")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "out" / "model_weights.pth").is_file()
