"""AVSBench-semantic datasets: clip folders -> dataset dicts, metadata, and lazy registration.

``load_avsbench_semantic`` returns one dict per clip (keys in docs/DESIGN.md);
``avsbench_metadata`` gives a dataset's ``MetadataCatalog`` fields;
``register_avsbench_dataset`` registers one lazily loaded dataset and its metadata;
``register_avsbench_semantic`` registers every subset x split plus the open-vocabulary protocol.
Nothing reads the dataset root before ``DatasetCatalog.get``. The on-disk format itself (layout,
metadata rows, clip scanning) is in ``avsbench_format``.
"""

import logging
import os
from typing import List, Optional, Sequence, Union

from detectron2.data import DatasetCatalog, MetadataCatalog

from ..class_lists import ClassList, PathLike, load_class_list, load_split, resolve_data_file
from ..labels import IGNORE_LABEL
from .avsbench_format import (  # noqa: F401  re-exported: the format names predate the split
    SPLITS,
    SUBSET_NUM_FRAMES,
    SUBSETS,
    ClipFiles,
    DatasetFormatError,
    MetadataRow,
    check_label2idx,
    image_size,
    outside_root,
    read_metadata,
    scan_clip,
)

logger = logging.getLogger(__name__)

__all__ = [
    "SUBSET_NUM_FRAMES",
    "SUBSETS",
    "SPLITS",
    "DatasetFormatError",
    "MetadataRow",
    "read_metadata",
    "scan_clip",
    "load_avsbench_semantic",
    "avsbench_metadata",
    "register_avsbench_dataset",
    "register_avsbench_semantic",
]


MAX_PROBLEMS_SHOWN = 20  # metadata problems listed in the error; validate lists them all


def _as_class_list(class_list: Union[ClassList, PathLike]) -> ClassList:
    """A loaded class list, or the one read from a file name or path."""
    return class_list if isinstance(class_list, ClassList) else load_class_list(class_list)


def _check_selection(
    subsets: Sequence[str], splits: Sequence[str], drop_classes: Sequence[str], classes: ClassList
) -> None:
    """Raise a ValueError for an unknown subset, split or class to drop."""
    for s in subsets:
        if s not in SUBSET_NUM_FRAMES:
            raise ValueError(f"unknown subset '{s}', expected one of {list(SUBSETS)}")
    for s in splits:
        if s not in SPLITS:
            raise ValueError(f"unknown split '{s}', expected one of {list(SPLITS)}")
    unknown_drop = [c for c in drop_classes if c not in classes.names]
    if unknown_drop:
        raise ValueError(f"drop_classes {unknown_drop} are not in the class list {classes.source}")


def _read_checked_metadata(root: str, classes: ClassList) -> List[MetadataRow]:
    """Rows of ``<root>/metadata.csv``; raise listing every problem of the root's metadata."""
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
        shown = "\n  ".join(problems[:MAX_PROBLEMS_SHOWN])
        more = len(problems) - MAX_PROBLEMS_SHOWN
        raise DatasetFormatError(
            f"{len(problems)} problems in metadata "
            f"(run `python -m ovavss_d2.data.validate {root} --class-list {classes.source}`):"
            f"\n  {shown}" + (f"\n  ... and {more} more" if more > 0 else "")
        )
    return rows


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
    allow_outside_root: bool = False,
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
        allow_outside_root: accept clip folders, ``frames`` / ``labels_rgb`` folders and frame,
            label and audio files that resolve outside ``root`` (symlinks); by default such a
            clip is a problem (raised, or skipped with ``skip_bad_clips``).

    Returns:
        list of dicts with keys ``clip_id, subset, split, file_names, sem_seg_file_names,
        audio_file_name, height, width, class_names, binary`` (docs/DESIGN.md), in metadata order.

    Raises:
        FileNotFoundError / DatasetFormatError naming the file for every problem found.
    """
    root = os.fspath(root)
    label = dataset_name or root
    classes = _as_class_list(class_list)
    _check_selection(subsets, splits, drop_classes, classes)
    rows = _read_checked_metadata(root, classes)

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
        escape = None if allow_outside_root else outside_root(clip_dir, root)
        inside = None if allow_outside_root else root  # frames, labels, audio stay inside it
        files = (
            scan_clip(clip_dir, row.subset, row.split, inside) if escape is None else ClipFiles()
        )
        if escape is not None:
            files.problems.append(("clip", escape))
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
            pool_ids=[],
            evaluator_type="avs_binary",
        )
        return meta
    if split_file:
        split = load_split(split_file, classes)
    else:  # no split: every class is base
        split = {"base": list(range(1, len(classes))), "novel": [], "pool": []}
    meta.update(
        stuff_classes=list(classes.names),
        stuff_colors=classes.colors,
        prompt_names=list(classes.prompt_names),
        base_ids=split["base"],
        novel_ids=split["novel"],
        base_classes=[classes.names[i] for i in split["base"]],
        novel_classes=[classes.names[i] for i in split["novel"]],
        pool_ids=split["pool"],
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
    allow_outside_root: bool = False,
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
        skip_bad_clips, allow_outside_root: see ``load_avsbench_semantic``.
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
            allow_outside_root=allow_outside_root,
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
    allow_outside_root: bool = False,
) -> List[str]:
    """Register AVSBench-semantic: every subset x split, and the open-vocabulary protocol.

    Names (with ``name_prefix`` prepended): ``avss_{v1s,v1m,v2,all}_{train,val,test}`` and
    ``avsbench_ov_train_base`` (training clips of all subsets naming no novel class),
    ``avsbench_ov_val``, ``avsbench_ov_test`` (all subsets and classes).

    Returns:
        the registered names.
    """
    names = []
    common = dict(
        class_list=class_list,
        split_file=split_file,
        skip_bad_clips=skip_bad_clips,
        allow_outside_root=allow_outside_root,
    )
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
