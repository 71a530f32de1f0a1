"""Class lists, base/novel splits and the AVSBench label palette, all read from data files."""

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np

CLASSES_DIR = Path(__file__).resolve().parent / "classes"

PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class ClassList:
    """An ordered class list whose index 0 is background, with prompt names per class."""

    names: Tuple[str, ...]  # (K+1,) keys as written in metadata.csv; names[0] is background
    prompt_names: Tuple[Tuple[str, ...], ...]  # (K+1,) prompt names (synonyms) per class
    source: str = field(default="", compare=False)

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Return the label index of a class key, with an error naming the class list."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"class '{name}' is not in the class list {self.source}") from None

    @property
    def colors(self) -> List[Tuple[int, int, int]]:
        """Palette colour of every class, index order."""
        return [tuple(int(c) for c in color) for color in palette(len(self.names))]


def resolve_data_file(name_or_path: PathLike) -> Path:
    """Return a path to a class-list or split file: an existing path, or a name in ``classes/``."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    packaged = CLASSES_DIR / path.name
    if packaged.is_file():
        return packaged
    raise FileNotFoundError(
        f"class data file '{name_or_path}' not found (looked at that path and in {CLASSES_DIR})"
    )


def load_class_list(name_or_path: PathLike) -> ClassList:
    """Read a ``<index>:<key>[,<prompt name>,...]`` file; indices must be 0..K in order."""
    path = resolve_data_file(name_or_path)
    names: List[str] = []
    prompts: List[Tuple[str, ...]] = []
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        index, sep, rest = line.partition(":")
        entries = [e.strip() for e in rest.split(",") if e.strip()]
        if not sep or not index.strip().isdigit() or not entries:
            raise ValueError(
                f"{path}:{lineno}: expected '<index>:<name>[,<synonym>...]', got {raw!r}"
            )
        if int(index) != len(names):
            raise ValueError(f"{path}:{lineno}: index {index} out of order (expected {len(names)})")
        if entries[0] in names:
            raise ValueError(f"{path}:{lineno}: duplicate class '{entries[0]}'")
        names.append(entries[0])
        synonyms = entries[1:] or [entries[0].replace("-", " ")]
        prompts.append(tuple(synonyms))
    if len(names) < 2:
        raise ValueError(f"{path}: a class list needs background and at least one class")
    return ClassList(tuple(names), tuple(prompts), source=str(path))


def load_split(name_or_path: PathLike, classes: ClassList) -> Dict[str, List[int]]:
    """Read a ``{"base": [...], "novel": [...]}`` JSON file and return label indices per group.

    An optional ``"pool"`` list names base classes that only a training pool adds (shown in
    training clips, never evaluated; ``MODEL.OVAVSS.TRAIN_POOL_NAMES`` decides whether the
    classifier learns their names); ``[]`` when the file has none.
    """
    path = resolve_data_file(name_or_path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    out: Dict[str, List[int]] = {}
    for group in ("base", "novel", "pool"):
        if group == "pool" and group not in data:
            out[group] = []
            continue
        if not isinstance(data.get(group), list):
            raise ValueError(f"{path}: missing list '{group}'")
        unknown = [n for n in data[group] if n not in classes.names[1:]]
        if unknown:
            raise ValueError(f"{path}: {group} classes not in {classes.source}: {unknown}")
        out[group] = sorted(classes.index(n) for n in data[group])
    overlap = set(out["base"]) & set(out["novel"])
    if overlap:
        raise ValueError(
            f"{path}: classes both base and novel: {[classes.names[i] for i in overlap]}"
        )
    outside = sorted(set(out["pool"]) - set(out["base"]))
    if outside:
        raise ValueError(
            f"{path}: pool classes must also be base: {[classes.names[i] for i in outside]}"
        )
    return out


@functools.lru_cache(maxsize=None)
def palette(num_colors: int = 256) -> np.ndarray:
    """PASCAL-VOC bit-interleaved palette, read-only ``(num_colors, 3)`` uint8 (0 is black)."""
    colors = np.zeros((num_colors, 3), dtype=np.uint8)
    for j in range(num_colors):
        value, c = j, [0, 0, 0]
        for i in range(8):
            for channel in range(3):
                c[channel] |= ((value >> channel) & 1) << (7 - i)
            value >>= 3
        colors[j] = c
    colors.flags.writeable = False  # shared by every caller through the cache
    return colors


def encode_label_rgb(label: np.ndarray, num_classes: int) -> np.ndarray:
    """Index map ``(H, W)`` -> palette RGB image ``(H, W, 3)`` uint8."""
    if label.min(initial=0) < 0 or label.max(initial=0) >= num_classes:
        raise ValueError(
            f"label values must lie in [0, {num_classes}), got {label.min()}..{label.max()}"
        )
    return palette(num_classes)[label]


def decode_label_rgb(rgb: np.ndarray, num_classes: int, source: str = "<array>") -> np.ndarray:
    """Palette RGB image ``(H, W, 3)`` -> index map ``(H, W)`` int64, by exact colour match."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"{source}: expected an RGB label image (H, W, 3), got shape {rgb.shape}")
    colors = palette(num_classes).astype(np.int64)
    code = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    keys = (colors[:, 0] << 16) | (colors[:, 1] << 8) | colors[:, 2]
    order = np.argsort(keys)
    pos = np.clip(np.searchsorted(keys[order], code), 0, len(keys) - 1)
    known = keys[order][pos] == code
    if not known.all():
        bad = np.unique(code[~known])[:5]
        shown = ", ".join(f"({v >> 16},{(v >> 8) & 255},{v & 255})" for v in bad)
        raise ValueError(
            f"{source}: {int((~known).sum())} pixels have colours outside the {num_classes}-class "
            f"palette, e.g. {shown}"
        )
    return order[pos].astype(np.int64)


def prompt_names_for(classes: ClassList, indices: Sequence[int]) -> List[Tuple[str, ...]]:
    """Prompt names (synonyms) of the given label indices."""
    return [classes.prompt_names[i] for i in indices]
