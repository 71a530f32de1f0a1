"""Reading AVSBench label maps: palette RGB PNGs or index PNGs -> class-index arrays.

Shared by the mapper, the evaluators and ``validate``, so that every reader decodes labels the
same way and reports problems with the file's name.
"""

import os
from typing import Optional, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from .class_lists import decode_label_rgb

__all__ = ["read_label_map", "IGNORE_LABEL"]

IGNORE_LABEL = 255  # label value for "not annotated / ignore" (MetadataCatalog.ignore_label)


def read_label_map(
    path: Union[str, os.PathLike],
    num_classes: int,
    *,
    binary: bool = False,
    ignore_label: int = IGNORE_LABEL,
    expected_size: Optional[tuple] = None,
) -> np.ndarray:
    """Read one label PNG as class indices.

    Formats: an RGB (or RGBA, alpha ignored) image in the PASCAL-VOC palette, decoded by exact
    colour match (AVSBench ``labels_rgb``); or a single-channel image (``P`` paletted or ``L``)
    whose pixel values are the class indices, ``ignore_label`` allowed (``labels_semantic``).

    Args:
        path: label file.
        num_classes: ``K+1`` entries of the label's class list (background included); colours or
            indices beyond it are errors.
        binary: collapse every class > 0 to 1 (sounding), keeping ``ignore_label``.
        ignore_label: the ignore value of index images (kept as is).
        expected_size: ``(H, W)`` the label must have (its frame's size), or None.

    Returns:
        int64 ``(H, W)`` label indices.

    Raises:
        FileNotFoundError / ValueError naming ``path`` for a missing, unreadable, mis-sized file or
        values outside the palette.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"label file not found: {path}")
    try:
        with Image.open(path) as img:
            if expected_size is not None and (img.size[1], img.size[0]) != tuple(expected_size):
                raise ValueError(
                    f"{path}: label size {img.size[0]}x{img.size[1]} (WxH) differs from its "
                    f"frame's {expected_size[1]}x{expected_size[0]}"
                )
            img.load()
            mode = img.mode
            if mode in ("P", "L"):
                label = np.asarray(img, dtype=np.int64)
            elif mode in ("RGB", "RGBA"):
                label = decode_label_rgb(np.asarray(img.convert("RGB")), num_classes, source=path)
            else:
                raise ValueError(
                    f"{path}: unsupported label image mode {mode} (expected RGB, P or L)"
                )
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"{path}: cannot read label image ({e})") from None
    if mode in ("P", "L"):
        bad = (label >= num_classes) & (label != ignore_label)
        if bad.any():
            raise ValueError(
                f"{path}: {int(bad.sum())} pixels hold indices outside [0, {num_classes}) "
                f"(max {int(label[bad].max())}), and not the ignore value {ignore_label}"
            )
    if binary:
        label = np.where((label > 0) & (label != ignore_label), 1, label)
    return label
