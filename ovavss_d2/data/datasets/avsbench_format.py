"""AVSBench-semantic on-disk format: constants, reading (``metadata.csv`` rows, clip folder
scanning) and writing (clip files, ``metadata.csv``, ``label2idx.json``).

Layout under a dataset root (AVSBench-semantic, and the generated AVSS-Synth benchmark)::

    metadata.csv            columns uid, a_obj, split, label (others are ignored)
    label2idx.json          optional; class keys -> label indices (checked against the class list)
    <subset>/<uid>/frames/<t>.jpg        t = 0..T_clip-1 (T_clip: 5 for v1s and v1m, 10 for v2)
    <subset>/<uid>/labels_rgb/<t>.png    palette label maps; v1s training clips have only 0.png
    <subset>/<uid>/audio.wav             (audio.flac / audio.ogg also accepted)

Nothing here reads file contents beyond ``metadata.csv``, ``label2idx.json`` and image headers;
``avsbench.load_avsbench_semantic`` turns these pieces into dataset dicts and ``validate`` checks
the files themselves. The writers are the only ones of the format: the AVSS-Synth generator
(``datasets/avss_synth``) and the test datasets (``utils.testing``) both use them.
"""

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..class_lists import ClassList, PathLike, encode_label_rgb, palette

__all__ = [
    "SUBSET_NUM_FRAMES",
    "SUBSETS",
    "SPLITS",
    "DatasetFormatError",
    "MetadataRow",
    "read_metadata",
    "check_label2idx",
    "ClipFiles",
    "annotated_by_design",
    "scan_clip",
    "image_size",
    "clip_folder",
    "make_clip_dirs",
    "write_frame",
    "write_label",
    "write_audio",
    "write_metadata",
    "write_label2idx",
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
FRAME_DIR = "frames"
AUDIO_FILE = "audio.wav"  # what the writers write (the readers accept AUDIO_NAMES)


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
    if len(parts) > 1 or uid == ".":
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
    # (kind, message); kind is one of clip, frame, label, audio
    problems: List[Tuple[str, str]] = field(default_factory=list)


def annotated_by_design(subset: str, split: str, t: int) -> bool:
    """Whether AVSBench annotates frame ``t``: every frame except v1s training frames 1.."""
    return not (subset == "v1s" and split == "train" and t > 0)


def _escape(path: str, real_root: str, what: str) -> Optional[str]:
    """A problem message when ``path`` resolves (symlinks, ``..``) outside ``real_root``."""
    real = os.path.realpath(path)
    if os.path.commonpath([real, real_root]) == real_root:
        return None
    return (
        f"{path}: the {what} resolves to '{real}', outside the dataset root '{real_root}' "
        "(a symlink?); DATASETS.ALLOW_SYMLINKS_OUTSIDE_ROOT True accepts it"
    )


def outside_root(clip_dir: str, root: str) -> Optional[str]:
    """A problem message when ``clip_dir`` (a symlink, or below one) resolves outside ``root``."""
    return _escape(clip_dir, os.path.realpath(root), "clip folder")


def scan_clip(clip_dir: str, subset: str, split: str, root: Optional[str] = None) -> ClipFiles:
    """List a clip folder's frames, labels and audio and collect structural problems.

    Problems: missing folders; frame files not numbered ``0..T_clip-1`` for the subset; a label
    missing for a frame AVSBench annotates; no audio file. A label present for a frame AVSBench
    leaves unannotated is used. File contents are not read here (see ``validate``).

    With ``root``, the ``frames`` and ``labels_rgb`` folders and every frame, label and audio file
    must also resolve inside it: one that a symlink takes outside is a problem and left out (the
    clip folder itself is checked by ``outside_root``). Only symlinks are resolved, so the check
    costs no extra file-system call for plain files.
    """
    out = ClipFiles()
    n = SUBSET_NUM_FRAMES[subset]
    if not os.path.isdir(clip_dir):
        out.problems.append(("clip", f"{clip_dir}: clip folder not found"))
        return out
    real_root = os.path.realpath(root) if root is not None else None

    def escapes(kind: str, path: str, what: str, is_link: bool) -> bool:
        """Record a problem and return True when a symlinked ``path`` leaves the root."""
        if real_root is None or not is_link:
            return False
        problem = _escape(path, real_root, what)
        if problem:
            out.problems.append((kind, problem))
        return problem is not None

    frame_dir = os.path.join(clip_dir, FRAME_DIR)
    frames: Dict[int, Optional[str]] = {}  # None: a link outside the root
    if not os.path.isdir(frame_dir):
        out.problems.append(("frame", f"{frame_dir}: frames folder not found"))
    elif not escapes("frame", frame_dir, "frames folder", os.path.islink(frame_dir)):
        with os.scandir(frame_dir) as entries:
            for entry in entries:
                stem, ext = os.path.splitext(entry.name)
                if ext.lower() in FRAME_EXTENSIONS and stem.isdigit():
                    if int(stem) in frames:
                        out.problems.append(
                            ("frame", f"{frame_dir}: two files for frame {int(stem)}")
                        )
                    frames[int(stem)] = entry.path
                    if escapes("frame", entry.path, "frame", entry.is_symlink()):
                        frames[int(stem)] = None
        if sorted(frames) != list(range(n)):
            out.problems.append(
                (
                    "frame",
                    f"{frame_dir}: found {len(frames)} frames numbered {sorted(frames)[:12]}, "
                    f"but a {subset} clip has {n} frames numbered 0..{n - 1}",
                )
            )
    out.frames = [frames[t] for t in sorted(frames) if frames[t] is not None]

    label_dir = os.path.join(clip_dir, LABEL_DIR)
    present = {}
    label_dir_outside = os.path.isdir(label_dir) and escapes(
        "label", label_dir, "labels folder", os.path.islink(label_dir)
    )
    if os.path.isdir(label_dir) and not label_dir_outside:
        with os.scandir(label_dir) as entries:
            present = {e.name: e for e in entries}
    for t in range(n):
        name = f"{t}.png"
        if name in present:
            entry = present[name]
            outside = escapes("label", entry.path, "label", entry.is_symlink())
            out.labels.append(None if outside else entry.path)
        elif annotated_by_design(subset, split, t) and not label_dir_outside:
            out.labels.append(None)
            out.problems.append(("label", f"{os.path.join(label_dir, name)}: label file not found"))
        else:
            out.labels.append(None)

    audio = [
        os.path.join(clip_dir, a) for a in AUDIO_NAMES if os.path.isfile(os.path.join(clip_dir, a))
    ]
    if audio:
        if not escapes("audio", audio[0], "audio file", os.path.islink(audio[0])):
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


# -- writing ----------------------------------------------------------------------------------


def clip_folder(root: PathLike, subset: str, uid: str) -> Path:
    """The folder of clip ``uid`` of ``subset``: ``<root>/<subset>/<uid>``."""
    return Path(root) / subset / uid


def make_clip_dirs(clip_dir: PathLike) -> Path:
    """Create a clip folder with its ``frames`` and ``labels_rgb`` folders; return it."""
    clip_dir = Path(clip_dir)
    (clip_dir / FRAME_DIR).mkdir(parents=True, exist_ok=True)
    (clip_dir / LABEL_DIR).mkdir(parents=True, exist_ok=True)
    return clip_dir


def write_frame(clip_dir: PathLike, t: int, frame: np.ndarray, quality: int = 90) -> Path:
    """Write the uint8 RGB ``(H, W, 3)`` frame ``t`` as ``frames/<t>.jpg`` at a JPEG quality."""
    path = Path(clip_dir) / FRAME_DIR / f"{t}.jpg"
    Image.fromarray(frame).save(path, quality=quality)
    return path


def write_label(
    clip_dir: PathLike, t: int, label: np.ndarray, num_classes: int, paletted: bool = False
) -> Path:
    """Write the class indices ``(H, W)`` of frame ``t`` as ``labels_rgb/<t>.png``: palette
    colours in RGB (as AVSBench), or with ``paletted`` a "P" PNG whose indices are the classes."""
    path = Path(clip_dir) / LABEL_DIR / f"{t}.png"
    if paletted:
        h, w = label.shape
        image = Image.frombytes("P", (w, h), label.astype(np.uint8).tobytes())
        colors = palette(num_classes)
        image.putpalette(colors.reshape(-1).tolist() + [0] * (768 - colors.size))
    else:
        image = Image.fromarray(encode_label_rgb(label, num_classes))
    image.save(path, format="PNG")
    return path


def write_audio(clip_dir: PathLike, samples: np.ndarray, sample_rate: int) -> Path:
    """Write float samples ``(N,)`` or ``(N, channels)`` in [-1, 1] as 16-bit PCM ``audio.wav``."""
    import soundfile as sf

    path = Path(clip_dir) / AUDIO_FILE
    data = np.asarray(samples, dtype=np.float32)
    sf.write(os.fspath(path), data, sample_rate, subtype="PCM_16")
    return path


def write_metadata(
    root: PathLike, rows: Sequence[Mapping[str, object]], columns: Sequence[str] = REQUIRED_COLUMNS
) -> Path:
    """Write ``<root>/metadata.csv``: a header of ``columns``, then one line per row."""
    path = Path(root) / "metadata.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_label2idx(root: PathLike, class_names: Sequence[str]) -> Path:
    """Write ``<root>/label2idx.json``: class key -> label index, in class-list order."""
    path = Path(root) / "label2idx.json"
    with open(path, "w") as f:
        json.dump({name: i for i, name in enumerate(class_names)}, f, indent=1)
        f.write("\n")
    return path
