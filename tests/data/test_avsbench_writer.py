"""The AVSBench-format writers: what they write is what the readers of the same module read."""

import numpy as np
import soundfile as sf
from PIL import Image

from ovavss_d2.data.class_lists import decode_label_rgb, load_class_list
from ovavss_d2.data.datasets.avsbench_format import (
    check_label2idx,
    clip_folder,
    image_size,
    make_clip_dirs,
    read_metadata,
    scan_clip,
    write_audio,
    write_frame,
    write_label,
    write_label2idx,
    write_metadata,
)

CLASSES = load_class_list("avss_synth.txt")


def test_written_clip_reads_back(tmp_path):
    num_classes = len(CLASSES)
    clip_dir = make_clip_dirs(clip_folder(tmp_path, "v1m", "clip_0"))
    assert clip_dir == tmp_path / "v1m" / "clip_0"
    rng = np.random.default_rng(0)
    labels = rng.integers(0, num_classes, (5, 12, 16))
    for t in range(5):
        write_frame(clip_dir, t, rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), quality=80)
        write_label(clip_dir, t, labels[t], num_classes, paletted=t == 4)
    samples = 0.5 * np.sin(np.linspace(0, 100, 5 * 8000))
    write_audio(clip_dir, samples, 8000)

    files = scan_clip(str(clip_dir), "v1m", "val")
    assert files.problems == [] and len(files.frames) == 5 and files.audio.endswith("audio.wav")
    assert image_size(files.frames[0]) == (12, 16)
    for t in range(4):
        rgb = np.asarray(Image.open(files.labels[t]).convert("RGB"))
        assert np.array_equal(decode_label_rgb(rgb, num_classes), labels[t])
    with Image.open(files.labels[4]) as paletted:
        assert paletted.mode == "P" and np.array_equal(np.asarray(paletted), labels[4])
    audio, rate = sf.read(files.audio)
    info = sf.info(files.audio)
    assert rate == 8000 and info.subtype == "PCM_16" and np.abs(audio - samples).max() < 1e-4


def test_written_index_reads_back(tmp_path):
    names = CLASSES.names
    rows = [
        {"uid": "a", "a_obj": names[1], "split": "train", "label": "v1s"},
        {"uid": "b", "a_obj": f"{names[1]}_{names[2]}", "split": "test", "label": "v1m"},
    ]
    write_metadata(tmp_path, rows)
    write_label2idx(tmp_path, names)
    read, problems = read_metadata(tmp_path, CLASSES)
    assert problems == [] and [(r.uid, r.subset, r.class_names) for r in read] == [
        ("a", "v1s", (names[1],)),
        ("b", "v1m", (names[1], names[2])),
    ]
    assert check_label2idx(tmp_path, CLASSES) is None
    assert (tmp_path / "label2idx.json").read_text().endswith("}\n")
    other = tmp_path / "long"
    other.mkdir()
    write_metadata(other, [{"uid": "x", "n": 3}], columns=("uid", "n"))
    assert (other / "metadata.csv").read_bytes() == b"uid,n\r\nx,3\r\n"
