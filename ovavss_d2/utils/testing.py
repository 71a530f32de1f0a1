"""Tiny AVSBench-semantic-format datasets for tests (no real data needed).

``make_fake_avsbench(root)`` writes, under ``root``, exactly the on-disk layout that
``ovavss_d2.data.datasets.avsbench`` reads, with the format's writers (``avsbench_format``)::

    metadata.csv      columns vid, uid, s_min, s_sec, a_obj, split, label (as AVSBench's)
    label2idx.json    class keys -> label indices, from the class list
    <subset>/<uid>/frames/<t>.jpg       T_clip = 5 (v1s, v1m) or 10 (v2) frames
    <subset>/<uid>/labels_rgb/<t>.png   PASCAL-VOC palette labels (or paletted "P" PNGs);
                                        v1s training clips have only 0.png, as in AVSBench
    <subset>/<uid>/audio.wav            T_clip seconds, one tone per sounding class

Each clip shows its sounding classes as axis-aligned rectangles that drift one pixel per frame,
filled with a class-specific colour over a noisy background, and its audio plays a class-specific
tone (``tone_frequency(label_index)``) in every second. A model can therefore learn the fake data,
which makes it useful for smoke tests. Everything is deterministic for a seed.

Example::

    from ovavss_d2.data.datasets import register_avsbench_semantic
    from ovavss_d2.utils.testing import make_fake_avsbench

    fake = make_fake_avsbench(tmp_path / "AVSBench-semantic", clips_per_split=2)
    names = register_avsbench_semantic(fake.root, name_prefix="test_")  # test_avss_v2_train, ...
"""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import soundfile as sf

from ..data.class_lists import ClassList, load_class_list, load_split
from ..data.datasets.avsbench_format import (
    SUBSET_NUM_FRAMES,
    annotated_by_design,
    clip_folder,
    make_clip_dirs,
    write_audio,
    write_frame,
    write_label,
    write_label2idx,
    write_metadata,
)

__all__ = ["FakeClip", "FakeDataset", "make_fake_avsbench", "tone_frequency", "write_tone"]

_SPLITS = ("train", "val", "test")
_METADATA_COLUMNS = ("vid", "uid", "s_min", "s_sec", "a_obj", "split", "label")  # as AVSBench's


@dataclass
class FakeClip:
    """What was written for one clip."""

    uid: str
    subset: str
    split: str
    class_names: List[str]  # sounding classes, as in metadata a_obj
    label_ids: List[int]  # their label indices in the class list
    num_frames: int
    annotated: List[bool]  # (num_frames,) which frames have a label file
    boxes: List[
        List[Tuple[int, int, int, int]]
    ]  # per class, per frame: (x0, y0, x1, y1), exclusive end
    clip_dir: Path


@dataclass
class FakeDataset:
    """The generated root and its clips, for assertions."""

    root: Path
    classes: ClassList
    clips: List[FakeClip] = field(default_factory=list)

    def select(self, subset: Optional[str] = None, split: Optional[str] = None) -> List[FakeClip]:
        """Clips of a subset and/or split."""
        return [
            c
            for c in self.clips
            if (subset is None or c.subset == subset) and (split is None or c.split == split)
        ]


def tone_frequency(label_index: int) -> float:
    """Frequency in Hz of the tone that stands for a class in fake audio (300 Hz .. 6 kHz)."""
    return 300.0 * (1.06 ** (label_index % 52))


def write_tone(
    path: Union[str, os.PathLike],
    seconds: float,
    *,
    sample_rate: int = 16000,
    channels: int = 1,
    frequency: float = 1000.0,
    active: Optional[Tuple[float, float]] = None,
    amplitude: float = 0.5,
) -> np.ndarray:
    """Write a wav of a sine tone in the ``active`` interval of seconds (default all), else silence.

    Returns:
        the float32 ``(N, channels)`` samples written.
    """
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    signal = amplitude * np.sin(2 * np.pi * frequency * t)
    if active is not None:
        signal = np.where((t >= active[0]) & (t < active[1]), signal, 0.0)
    data = np.repeat(signal[:, None], channels, axis=1).astype(np.float32)
    sf.write(os.fspath(path), data, sample_rate)
    return data


def _class_color(label_index: int) -> np.ndarray:
    """A bright RGB fill for a class in the frames (not the label palette colour)."""
    rng = np.random.RandomState(1000 + label_index)
    return rng.randint(64, 256, size=3).astype(np.uint8)


def make_fake_avsbench(
    root: Union[str, os.PathLike],
    *,
    clips_per_split: Union[int, Mapping[Tuple[str, str], int]] = 1,
    size: Tuple[int, int] = (48, 64),
    classes: Union[ClassList, str, os.PathLike] = "avsbench_semantic.txt",
    split_file: Optional[Union[str, os.PathLike]] = "avsbench_ov_split.json",
    subsets: Sequence[str] = ("v1s", "v1m", "v2"),
    splits: Sequence[str] = _SPLITS,
    seed: int = 0,
    label_format: str = "rgb",
    sample_rate: int = 16000,
    audio_channels: int = 1,
    audio_seconds: Optional[float] = None,
) -> FakeDataset:
    """Write a tiny dataset in the AVSBench-semantic on-disk format.

    Class choice: v1s clips have one sounding class, v1m and v2 clips two. With a ``split_file``,
    training clips alternate: even-numbered clips (0, 2, ...) of each subset use base classes only,
    odd-numbered ones include a novel class (so ``avsbench_ov_train_base`` keeps the even ones);
    val and test clips draw from all classes. Without a split file, every clip draws from all
    classes.

    Args:
        root: folder to create (its parent must exist or be creatable).
        clips_per_split: clips per (subset, split): an int for all, or a mapping
            ``{(subset, split): count}`` (missing pairs get 0).
        size: ``(height, width)`` of frames and labels.
        classes: class list (or its file); label colours are its PASCAL-VOC palette indices.
        split_file: base/novel split file of that class list, or None.
        subsets: subsets to write (``v1s``: 5 frames, ``v1m``: 5, ``v2``: 10).
        splits: splits to write.
        seed: all randomness derives from it.
        label_format: ``"rgb"`` (palette colours, like ``labels_rgb``) or ``"P"`` (paletted PNG
            whose indices are the class ids).
        sample_rate: audio sample rate (Hz).
        audio_channels: audio channels (the same tone in each).
        audio_seconds: audio length; default the clip's frame count (1 s per frame).

    Returns:
        a ``FakeDataset`` describing every clip written.
    """
    if label_format not in ("rgb", "P"):
        raise ValueError(f"label_format must be 'rgb' or 'P', got {label_format!r}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    cl = classes if isinstance(classes, ClassList) else load_class_list(classes)
    all_ids = list(range(1, len(cl)))
    if split_file is not None:
        split = load_split(split_file, cl)
        base_ids, novel_ids = split["base"], split["novel"]
    else:
        base_ids, novel_ids = all_ids, []
    rng = np.random.RandomState(seed)
    h, w = size
    dataset = FakeDataset(root=root, classes=cl)
    rows = []
    for subset in subsets:
        n_frames = SUBSET_NUM_FRAMES[subset]
        for split_name in splits:
            if isinstance(clips_per_split, int):
                count = clips_per_split
            else:
                count = clips_per_split.get((subset, split_name), 0)
            for i in range(count):
                n_cls = 1 if subset == "v1s" else 2
                if split_name == "train" and novel_ids:
                    if i % 2 == 0:
                        ids = rng.choice(base_ids, n_cls, replace=False).tolist()
                    else:
                        ids = [int(rng.choice(novel_ids))]
                        ids += rng.choice(base_ids, n_cls - 1, replace=False).tolist()
                else:
                    ids = rng.choice(all_ids, n_cls, replace=False).tolist()
                uid = f"fake{subset}{split_name}{i:03d}_{seed}"
                clip = _write_clip(
                    root,
                    subset,
                    split_name,
                    uid,
                    [int(x) for x in ids],
                    n_frames,
                    (h, w),
                    cl,
                    rng,
                    label_format,
                    sample_rate,
                    audio_channels,
                    audio_seconds,
                )
                dataset.clips.append(clip)
                rows.append(
                    {
                        "vid": uid[:-2],
                        "uid": uid,
                        "s_min": 0,
                        "s_sec": 0,
                        "a_obj": "_".join(clip.class_names),
                        "split": split_name,
                        "label": subset,
                    }
                )
    write_metadata(root, rows, columns=_METADATA_COLUMNS)
    write_label2idx(root, cl.names)
    return dataset


def _write_clip(
    root: Path,
    subset: str,
    split: str,
    uid: str,
    ids: List[int],
    n_frames: int,
    size: Tuple[int, int],
    cl: ClassList,
    rng: np.random.RandomState,
    label_format: str,
    sample_rate: int,
    audio_channels: int,
    audio_seconds: Optional[float],
) -> FakeClip:
    h, w = size
    clip_dir = make_clip_dirs(clip_folder(root, subset, uid))
    # One rectangle per class, about a quarter of each side, drifting right/down by a pixel a frame;
    # class k stays in the k-th vertical band so that rectangles never hide each other.
    starts = []
    band = w // len(ids)
    for k in range(len(ids)):
        bh, bw = max(2, h // 4), max(2, w // 4)
        y0 = int(rng.randint(0, max(1, h - bh - n_frames)))
        x0 = k * band + int(rng.randint(0, max(1, band - bw - n_frames)))
        starts.append((x0, y0, bw, bh))
    background = rng.randint(0, 64, size=(h, w, 3)).astype(np.uint8)
    annotated = [annotated_by_design(subset, split, t) for t in range(n_frames)]
    boxes: List[List[Tuple[int, int, int, int]]] = [[] for _ in ids]
    for t in range(n_frames):
        frame = background.copy()
        label = np.zeros((h, w), dtype=np.int64)
        for k, (cls_id, (x0, y0, bw, bh)) in enumerate(zip(ids, starts)):
            left, top = min(x0 + t, w - bw), min(y0 + t, h - bh)
            box = (left, top, left + bw, top + bh)
            boxes[k].append(box)
            frame[box[1] : box[3], box[0] : box[2]] = _class_color(cls_id)
            label[box[1] : box[3], box[0] : box[2]] = cls_id
        write_frame(clip_dir, t, frame, quality=95)
        if annotated[t]:
            write_label(clip_dir, t, label, len(cl), paletted=label_format == "P")
    seconds = float(n_frames) if audio_seconds is None else float(audio_seconds)
    n = int(round(seconds * sample_rate))
    t_axis = np.arange(n) / sample_rate
    signal = sum(0.3 * np.sin(2 * np.pi * tone_frequency(c) * t_axis) for c in ids)
    signal = signal + 0.01 * rng.randn(n)
    data = np.repeat(np.asarray(signal, dtype=np.float32)[:, None], audio_channels, axis=1)
    write_audio(clip_dir, data, sample_rate)
    return FakeClip(
        uid=uid,
        subset=subset,
        split=split,
        class_names=[cl.names[c] for c in ids],
        label_ids=list(ids),
        num_frames=n_frames,
        annotated=annotated,
        boxes=boxes,
        clip_dir=clip_dir,
    )
