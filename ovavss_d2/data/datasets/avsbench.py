"""AVSBench-semantic on-disk format: reading ``metadata.csv`` and clip folders into dataset dicts.

Layout under a dataset root (AVSBench-semantic, and the generated AVSS-Synth benchmark)::

    metadata.csv            columns uid, a_obj, split, label (others are ignored)
    label2idx.json          optional; class keys -> label indices (checked against the class list)
    <subset>/<uid>/frames/<t>.jpg        t = 0..T_clip-1 (T_clip: 5 for v1s and v1m, 10 for v2)
    <subset>/<uid>/labels_rgb/<t>.png    palette label maps; v1s training clips have only 0.png
    <subset>/<uid>/audio.wav             (audio.flac / audio.ogg also accepted)

``load_avsbench_semantic`` returns one dict per clip (keys in docs/DESIGN.md);
``register_avsbench_dataset`` registers one lazily loaded dataset and its metadata;
``register_avsbench_semantic`` registers every subset x split plus the open-vocabulary protocol.
Nothing reads the dataset root before ``DatasetCatalog.get``.
"""

import csv
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

from detectron2.data import DatasetCatalog, MetadataCatalog
from PIL import Image, UnidentifiedImageError

from ..class_lists import ClassList, PathLike, load_class_list, load_split, resolve_data_file
from ..labels import IGNORE_LABEL

logger = logging.getLogger(__name__)

__all__ = [
    "SUBSET_NUM_FRAMES",
    "SUBSETS",
    "SPLITS",
    "MetadataRow",
    "read_metadata",
    "scan_clip",
    "load_avsbench_semantic",
    "avsbench_metadata",
    "register_avsbench_dataset",
    "register_avsbench_semantic",
]

# Frames per clip of each AVSBench subset (1 fps): v1s single-source and v1m multi-source 5 s clips,
# v2 10 s clips.
SUBSET_NUM_FRAMES: Dict[str, int] = {"v1s": 5, "v1m": 5, "v2": 10}
SUBSETS: Tuple[str, ...] = tuple(SUBSET_NUM_FRAMES)
SPLITS: Tuple[str, ...] = ("train", "val", "test")
REQUIRED_COLUMNS: Tuple[str, ...] = ("uid", "a_obj", "split", "label")
FRAME_EXTENSIONS: Tuple[str, ...] = (".jpg", ".jpeg", ".png")
AUDIO_NAMES: Tuple[str, ...] = ("audio.wav", "audio.flac", "audio.ogg")
LABEL_DIR = "labels_rgb"


class DatasetFormatError(ValueError):
    """A dataset root does not follow the AVSBench-semantic format; the message names the file."""


@dataclass(frozen=True)
class MetadataRow:
    """One valid row of ``metadata.csv``."""

    line: int  # line number in metadata.csv (header is line 1)
    uid: str
    subset: str
    split: str
    class_names: Tuple[str, ...]


def _uid_problem(uid: str) -> Optional[str]:
    """Why ``uid`` cannot name a clip folder directly under ``<root>/<subset>/``, or None."""
    if not uid:
        return "empty uid"
    if os.path.isabs(uid) or uid.startswith(("/", "\\")):
        return f"uid '{uid}' is an absolute path (escapes the dataset root)"
    parts = uid.replace("\\", "/").split("/")
    if ".." in parts:
        return f"uid '{uid}' contains '..' (escapes the dataset root)"
    if len(parts) > 1 or uid in (".",):
        return f"uid '{uid}' is not a single folder name"
    return None


def read_metadata(root: PathLike, classes: ClassList) -> Tuple[List[MetadataRow], List[str]]:
    """Parse ``<root>/metadata.csv``, collecting every row problem instead of stopping at the first.

    A row is a problem when its subset (``label`` column) or split is unknown, its uid is empty,
    absolute, holds ``..`` or a path separator, it names a class outside ``classes`` (or none),
    or it repeats a (subset, uid) pair.

    Args:
        root: dataset root.
        classes: class list the ``a_obj`` names must belong to.

    Returns:
        ``(rows, problems)``: the valid rows in file order, and one message per problem, each
        naming ``metadata.csv`` and the line.

    Raises:
        FileNotFoundError: no metadata.csv.
        DatasetFormatError: unreadable file or missing columns (nothing can be parsed).
    """
    path = os.path.join(os.fspath(root), "metadata.csv")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"metadata file not found: {path}")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED_COLUMNS if c not in columns]
            if missing:
                raise DatasetFormatError(f"{path}: missing columns {missing} (found {columns})")
            records = []  # (line number where the record ends, {column: value})
            for r in reader:
                values = {(k or "").strip(): v.strip() for k, v in r.items() if isinstance(v, str)}
                records.append((reader.line_num, values))
    except (UnicodeDecodeError, csv.Error) as e:
        raise DatasetFormatError(f"{path}: cannot parse CSV ({e})") from None

    known = set(classes.names[1:])
    rows: List[MetadataRow] = []
    problems: List[str] = []
    seen: Dict[Tuple[str, str], int] = {}
    for line, rec in records:
        where = f"{path}:{line}"
        uid, subset, split = rec.get("uid", ""), rec.get("label", ""), rec.get("split", "")
        names = tuple(n.strip() for n in rec.get("a_obj", "").split("_") if n.strip())
        row_problems = []
        if subset not in SUBSET_NUM_FRAMES:
            row_problems.append(
                f"unknown subset (label column) '{subset}', expected one of {list(SUBSETS)}"
            )
        if split not in SPLITS:
            row_problems.append(f"unknown split '{split}', expected one of {list(SPLITS)}")
        uid_problem = _uid_problem(uid)
        if uid_problem:
            row_problems.append(uid_problem)
        unknown = [n for n in names if n not in known]
        if unknown:
            row_problems.append(f"classes {unknown} are not in the class list {classes.source}")
        if not names:
            row_problems.append("a_obj names no class")
        if not row_problems:
            if (subset, uid) in seen:
                row_problems.append(
                    f"uid '{uid}' of subset {subset} repeats line {seen[(subset, uid)]}"
                )
            seen[(subset, uid)] = line
        if row_problems:
            problems.extend(f"{where}: {p}" for p in row_problems)
        else:
            rows.append(MetadataRow(line, uid, subset, split, names))
    return rows, problems


def check_label2idx(root: PathLike, classes: ClassList) -> Optional[str]:
    """Compare ``<root>/label2idx.json`` (if present) with the class list: a problem or None."""
    path = os.path.join(os.fspath(root), "label2idx.json")
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            mapping = json.load(f)
        order = [name for name, _ in sorted(mapping.items(), key=lambda kv: int(kv[1]))]
    except (OSError, ValueError, TypeError, AttributeError) as e:
        return f"{path}: cannot read label2idx.json ({e})"
    if order != list(classes.names):
        diff = [(i, a, b) for i, (a, b) in enumerate(zip(order, classes.names)) if a != b][:3]
        return (
            f"{path}: label indices do not match the class list {classes.source} "
            f"({len(order)} vs {len(classes.names)} entries; first differences "
            f"(index, file, list): {diff})"
        )
    return None


@dataclass
class ClipFiles:
    """Files of one clip folder found by ``scan_clip``."""

    frames: List[str] = field(default_factory=list)  # (T_clip,) in time order
    labels: List[Optional[str]] = field(default_factory=list)  # (T_clip,), None = unannotated
    audio: Optional[str] = None
    problems: List[Tuple[str, str]] = field(default_factory=list)  # (kind, message); kind: clip,
    # frame, label or audio


def annotated_by_design(subset: str, split: str, t: int) -> bool:
    """Whether AVSBench annotates frame ``t``: every frame except v1s training frames 1.."""
    return not (subset == "v1s" and split == "train" and t > 0)


def scan_clip(clip_dir: str, subset: str, split: str) -> ClipFiles:
    """List a clip folder's frames, labels and audio and collect structural problems.

    Problems: missing folders; frame files not numbered ``0..T_clip-1`` for the subset; a label
    missing for a frame AVSBench annotates; no audio file. A label present for a frame AVSBench
    leaves unannotated is used. File contents are not read here (see ``validate``).
    """
    out = ClipFiles()
    n = SUBSET_NUM_FRAMES[subset]
    if not os.path.isdir(clip_dir):
        out.problems.append(("clip", f"{clip_dir}: clip folder not found"))
        return out
    frame_dir = os.path.join(clip_dir, "frames")
    frames: Dict[int, str] = {}
    if not os.path.isdir(frame_dir):
        out.problems.append(("frame", f"{frame_dir}: frames folder not found"))
    else:
        for name in os.listdir(frame_dir):
            stem, ext = os.path.splitext(name)
            if ext.lower() in FRAME_EXTENSIONS and stem.isdigit():
                if int(stem) in frames:
                    out.problems.append(("frame", f"{frame_dir}: two files for frame {int(stem)}"))
                frames[int(stem)] = os.path.join(frame_dir, name)
        if sorted(frames) != list(range(n)):
            out.problems.append(
                (
                    "frame",
                    f"{frame_dir}: found {len(frames)} frames numbered {sorted(frames)[:12]}, "
                    f"but a {subset} clip has {n} frames numbered 0..{n - 1}",
                )
            )
    out.frames = [frames[t] for t in sorted(frames)]

    label_dir = os.path.join(clip_dir, LABEL_DIR)
    present = set(os.listdir(label_dir)) if os.path.isdir(label_dir) else set()
    for t in range(n):
        name = f"{t}.png"
        if name in present:
            out.labels.append(os.path.join(label_dir, name))
        elif annotated_by_design(subset, split, t):
            out.labels.append(None)
            out.problems.append(("label", f"{os.path.join(label_dir, name)}: label file not found"))
        else:
            out.labels.append(None)

    audio = [
        os.path.join(clip_dir, a) for a in AUDIO_NAMES if os.path.isfile(os.path.join(clip_dir, a))
    ]
    if audio:
        out.audio = audio[0]
    else:
        out.problems.append(("audio", f"{clip_dir}: no audio file ({' / '.join(AUDIO_NAMES)})"))
    return out


def image_size(path: str) -> Tuple[int, int]:
    """``(height, width)`` of an image as ``detection_utils.read_image`` gives it (EXIF applied)."""
    try:
        with Image.open(path) as img:
            width, height = img.size
            if img.getexif().get(0x0112) in (5, 6, 7, 8):  # EXIF orientations that swap the axes
                width, height = height, width
    except (UnidentifiedImageError, OSError) as e:
        raise DatasetFormatError(f"{path}: cannot read frame image ({e})") from None
    return height, width


def _as_class_list(class_list: Union[ClassList, PathLike]) -> ClassList:
    return class_list if isinstance(class_list, ClassList) else load_class_list(class_list)


def load_avsbench_semantic(
    root: PathLike,
    *,
    subsets: Sequence[str] = SUBSETS,
    splits: Sequence[str] = SPLITS,
    class_list: Union[ClassList, PathLike] = "avsbench_semantic.txt",
    drop_classes: Sequence[str] = (),
    binary: bool = False,
    skip_bad_clips: bool = False,
    dataset_name: str = "",
) -> List[dict]:
    """Read an AVSBench-semantic-format root into one dict per clip.

    Args:
        root: dataset root (holds metadata.csv and the subset folders).
        subsets: subsets to keep (``v1s``, ``v1m``, ``v2``).
        splits: splits to keep (``train``, ``val``, ``test``).
        class_list: class list (or its file) that metadata class names and label colours follow.
        drop_classes: clips whose metadata names any of these classes are left out (the
            open-vocabulary base training set drops clips with a novel class); counted and logged.
        binary: mark the dicts ``binary`` (labels collapse to sounding / not in the mapper).
        skip_bad_clips: leave out clips with missing files instead of raising; counted and logged.
            Metadata problems always raise.
        dataset_name: used in log messages.

    Returns:
        list of dicts with keys ``clip_id, subset, split, file_names, sem_seg_file_names,
        audio_file_name, height, width, class_names, binary`` (docs/DESIGN.md), in metadata order.

    Raises:
        FileNotFoundError / DatasetFormatError naming the file for every problem found.
    """
    root = os.fspath(root)
    label = dataset_name or root
    classes = _as_class_list(class_list)
    for s in subsets:
        if s not in SUBSET_NUM_FRAMES:
            raise ValueError(f"unknown subset '{s}', expected one of {list(SUBSETS)}")
    for s in splits:
        if s not in SPLITS:
            raise ValueError(f"unknown split '{s}', expected one of {list(SPLITS)}")
    unknown_drop = [c for c in drop_classes if c not in classes.names]
    if unknown_drop:
        raise ValueError(f"drop_classes {unknown_drop} are not in the class list {classes.source}")
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f"dataset root not found: {root} (set $DETECTRON2_DATASETS to the folder holding it; "
            "see datasets/README.md)"
        )
    mismatch = check_label2idx(root, classes)
    if mismatch:
        raise DatasetFormatError(mismatch)
    rows, problems = read_metadata(root, classes)
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise DatasetFormatError(
            f"{len(problems)} problems in metadata "
            f"(run `python -m ovavss_d2.data.validate {root}`):"
            f"\n  {shown}{more}"
        )

    drop = set(drop_classes)
    dicts: List[dict] = []
    dropped, skipped = 0, []
    for row in rows:
        if row.subset not in subsets or row.split not in splits:
            continue
        if drop.intersection(row.class_names):
            dropped += 1
            continue
        clip_dir = os.path.join(root, row.subset, row.uid)
        files = scan_clip(clip_dir, row.subset, row.split)
        if not files.problems:
            try:
                height, width = image_size(files.frames[0])
            except DatasetFormatError as e:
                files.problems.append(("frame", str(e)))
        if files.problems:
            messages = [m for _, m in files.problems]
            if not skip_bad_clips:
                raise DatasetFormatError(
                    f"clip '{row.uid}' (metadata.csv line {row.line}) of {label}:\n  "
                    + "\n  ".join(messages)
                )
            skipped.append(f"{row.uid}: {messages[0]}")
            continue
        dicts.append(
            {
                "clip_id": row.uid,
                "subset": row.subset,
                "split": row.split,
                "file_names": files.frames,
                "sem_seg_file_names": files.labels,
                "audio_file_name": files.audio,
                "height": height,
                "width": width,
                "class_names": list(row.class_names),
                "binary": bool(binary),
            }
        )
    if drop:
        logger.info(
            "%s: dropped %d clips naming one of the %d excluded classes (e.g. %s); %d kept",
            label,
            dropped,
            len(drop),
            ", ".join(sorted(drop)[:3]),
            len(dicts),
        )
    if skipped:
        logger.warning(
            "%s: skipped %d clips with missing files (skip_bad_clips=True), e.g. %s",
            label,
            len(skipped),
            "; ".join(skipped[:3]),
        )
    logger.info("%s: loaded %d clips from %s", label, len(dicts), root)
    return dicts


def avsbench_metadata(
    class_list: Union[ClassList, PathLike],
    split_file: Optional[PathLike] = None,
    *,
    binary: bool = False,
) -> dict:
    """MetadataCatalog fields of a dataset (docs/DESIGN.md), from its class list and split.

    ``label_num_classes`` is the number of palette entries of the label files (``K+1`` of the
    class list), also for binary datasets whose ``stuff_classes`` are background / sounding.
    """
    classes = _as_class_list(class_list)
    meta = {
        "ignore_label": IGNORE_LABEL,
        "class_list_file": classes.source,
        "split_file": str(resolve_data_file(split_file)) if split_file else "",
        "label_num_classes": len(classes),
    }
    if binary:
        meta.update(
            stuff_classes=["background", "sounding"],
            stuff_colors=[(0, 0, 0), (255, 255, 255)],
            prompt_names=[("background",), ("sounding object",)],
            base_ids=[1],
            novel_ids=[],
            base_classes=["sounding"],
            novel_classes=[],
            evaluator_type="avs_binary",
        )
        return meta
    if split_file:
        split = load_split(split_file, classes)
    else:  # no split: every class is base
        split = {"base": list(range(1, len(classes))), "novel": []}
    meta.update(
        stuff_classes=list(classes.names),
        stuff_colors=classes.colors,
        prompt_names=list(classes.prompt_names),
        base_ids=split["base"],
        novel_ids=split["novel"],
        base_classes=[classes.names[i] for i in split["base"]],
        novel_classes=[classes.names[i] for i in split["novel"]],
        evaluator_type="avss",
    )
    return meta


def register_avsbench_dataset(
    name: str,
    root: PathLike,
    *,
    subsets: Sequence[str] = SUBSETS,
    splits: Sequence[str] = SPLITS,
    class_list: PathLike = "avsbench_semantic.txt",
    split_file: Optional[PathLike] = "avsbench_ov_split.json",
    drop_novel: bool = False,
    binary: bool = False,
    skip_bad_clips: bool = False,
) -> None:
    """Register one dataset lazily: the root is read only by ``DatasetCatalog.get(name)``.

    The class list and split files (package data) are read now, for the metadata.

    Args:
        name: dataset name.
        root: dataset root.
        subsets, splits: which clips (see ``load_avsbench_semantic``).
        class_list, split_file: class list and base/novel split files (names in
            ``ovavss_d2/data/classes/`` or paths); ``split_file`` None makes every class base.
        drop_novel: leave out clips naming a novel class (open-vocabulary base training).
        binary: binary AVS dataset (sounding vs not).
        skip_bad_clips: see ``load_avsbench_semantic``.
    """
    root = os.fspath(root)
    classes = load_class_list(class_list)
    meta = avsbench_metadata(classes, split_file, binary=binary)
    drop = (
        [classes.names[i] for i in load_split(split_file, classes)["novel"]] if drop_novel else []
    )
    subsets, splits = tuple(subsets), tuple(splits)

    def load() -> List[dict]:
        return load_avsbench_semantic(
            root,
            subsets=subsets,
            splits=splits,
            class_list=classes,
            drop_classes=drop,
            binary=binary,
            skip_bad_clips=skip_bad_clips,
            dataset_name=name,
        )

    DatasetCatalog.register(name, load)
    MetadataCatalog.get(name).set(
        dataset_root=root, subsets=list(subsets), splits=list(splits), **meta
    )


def register_avsbench_semantic(
    root: PathLike,
    *,
    class_list: PathLike = "avsbench_semantic.txt",
    split_file: PathLike = "avsbench_ov_split.json",
    name_prefix: str = "",
    skip_bad_clips: bool = False,
) -> List[str]:
    """Register AVSBench-semantic: every subset x split, and the open-vocabulary protocol.

    Names (with ``name_prefix`` prepended): ``avss_{v1s,v1m,v2,all}_{train,val,test}`` and
    ``avsbench_ov_train_base`` (training clips of all subsets naming no novel class),
    ``avsbench_ov_val``, ``avsbench_ov_test`` (all subsets and classes).

    Returns:
        the registered names.
    """
    names = []
    common = dict(class_list=class_list, split_file=split_file, skip_bad_clips=skip_bad_clips)
    for subset in SUBSETS + ("all",):
        for split in SPLITS:
            name = f"{name_prefix}avss_{subset}_{split}"
            subsets = SUBSETS if subset == "all" else (subset,)
            register_avsbench_dataset(name, root, subsets=subsets, splits=(split,), **common)
            names.append(name)
    for name, split, drop_novel in (
        ("avsbench_ov_train_base", "train", True),
        ("avsbench_ov_val", "val", False),
        ("avsbench_ov_test", "test", False),
    ):
        name = name_prefix + name
        register_avsbench_dataset(name, root, splits=(split,), drop_novel=drop_novel, **common)
        names.append(name)
    return names
