"""Predefined datasets under ``$DETECTRON2_DATASETS`` (default ``datasets/``), registered at import.

==============================================  ===================  ==============================
names                                           root                 content
==============================================  ===================  ==============================
``avss_{v1s,v1m,v2,all}_{train,val,test}``      AVSBench-semantic    semantic, 70 classes
``avsbench_ov_train_base``                      AVSBench-semantic    train clips naming no novel
                                                                     class
``avsbench_ov_{val,test}``                      AVSBench-semantic    all clips of the split
``avs_s4_{train,val,test}``                     AVSBench-semantic    binary, v1s (AVSBench S4)
``avs_ms3_{train,val,test}``                    AVSBench-semantic    binary, v1m (AVSBench MS3)
``avss_synth_{train,val,test}``                 AVSS-Synth           semantic (train: base only)
``avs_synth_{train,val,test}``                  AVSS-Synth           binary
``avss_synth_wide_train``                       AVSS-Synth-wide      train clips with the wide pool
                                                                     (avss_synth_wide.txt)
``avss_synth_test_{clean,snr20,snr10,snr5}``    AVSS-Synth/variants  v2 test clips, other audio
``avs_synth_test_{clean,snr20,snr10,snr5}``     AVSS-Synth/variants  the same, binary
==============================================  ===================  ==============================

Registration is lazy (no disk access under the root until ``DatasetCatalog.get``). The class list
and split of AVSBench-semantic can be replaced from a config with ``register_from_config(cfg)``.
"""

import logging
import os
from typing import List

from detectron2.data import DatasetCatalog, MetadataCatalog

from ..class_lists import resolve_data_file
from ..labels import IGNORE_LABEL
from .avsbench import SPLITS, SUBSETS, register_avsbench_dataset, register_avsbench_semantic

logger = logging.getLogger(__name__)

AVSBENCH_DIR = "AVSBench-semantic"
SYNTH_DIR = "AVSS-Synth"
AVSBENCH_CLASS_LIST = "avsbench_semantic.txt"
AVSBENCH_SPLIT = "avsbench_ov_split.json"
SYNTH_CLASS_LIST = "avss_synth.txt"
SYNTH_SPLIT = "avss_synth_split.json"
# The training clips built with --train-pool wide (datasets/README.md, "Wide training pool"): their
# own root and class list (the 22 classes with their indices, then the pool's classes, all base).
SYNTH_WIDE_DIR = "AVSS-Synth-wide"
SYNTH_WIDE_CLASS_LIST = "avss_synth_wide.txt"
SYNTH_WIDE_SPLIT = "avss_synth_wide_split.json"
SYNTH_WIDE_TRAIN = "avss_synth_wide_train"

# Robustness variants of the AVSS-Synth v2 test split (datasets/prepare_avss_synth.py --variants):
# same frames and labels as avss_synth_test, other audio; each is a root of its own.
SYNTH_VARIANTS = ("clean", "snr20", "snr10", "snr5")
SYNTH_VARIANTS_DIR = "variants"

# Binary AVS datasets read from the AVSBench-semantic layout: name prefix -> subset.
_BINARY_AVSBENCH_SUBSETS = {"avs_s4": "v1s", "avs_ms3": "v1m"}


def register_all_avsbench(root: str) -> List[str]:
    """Register the AVSBench-semantic datasets and the binary S4 / MS3 datasets under ``root``."""
    path = os.path.join(root, AVSBENCH_DIR)
    names = register_avsbench_semantic(
        path, class_list=AVSBENCH_CLASS_LIST, split_file=AVSBENCH_SPLIT
    )
    for prefix, subset in _BINARY_AVSBENCH_SUBSETS.items():
        for split in SPLITS:
            name = f"{prefix}_{split}"
            register_avsbench_dataset(
                name,
                path,
                subsets=(subset,),
                splits=(split,),
                class_list=AVSBENCH_CLASS_LIST,
                split_file=None,
                binary=True,
            )
            names.append(name)
    return names


def _register_missing(name: str, root: str, missing: str) -> None:
    """Register a dataset whose class files are not there yet: ``get`` explains what is missing."""

    def load():
        raise FileNotFoundError(f"dataset '{name}' cannot be loaded: {missing}")

    DatasetCatalog.register(name, load)
    MetadataCatalog.get(name).set(
        dataset_root=root, evaluator_type="avss", ignore_label=IGNORE_LABEL
    )


def register_all_avss_synth(
    root: str, skip_bad_clips: bool = False, allow_outside_root: bool = False
) -> List[str]:
    """Register the generated offline benchmark (datasets/prepare_avss_synth.py) under ``root``.

    ``avss_synth_train`` drops clips naming a novel class (the generator writes none; any found are
    counted and logged). If the benchmark's class files are not in the package, the names are still
    registered and ``DatasetCatalog.get`` raises an error naming the missing file.
    ``skip_bad_clips`` and ``allow_outside_root``: see ``load_avsbench_semantic``.
    """
    path = os.path.join(root, SYNTH_DIR)
    # (name, dataset root, split) of every registration
    entries = [(f"avss_synth_{s}", path, s) for s in SPLITS]
    entries += [(f"avs_synth_{s}", path, s) for s in SPLITS]
    for v in SYNTH_VARIANTS:
        vpath = os.path.join(path, SYNTH_VARIANTS_DIR, f"test_{v}")
        entries += [(f"avss_synth_test_{v}", vpath, "test"), (f"avs_synth_test_{v}", vpath, "test")]
    wide_root = os.path.join(root, SYNTH_WIDE_DIR)
    try:
        for name in (SYNTH_CLASS_LIST, SYNTH_SPLIT, SYNTH_WIDE_CLASS_LIST, SYNTH_WIDE_SPLIT):
            resolve_data_file(name)
    except FileNotFoundError as e:
        logger.debug("AVSS-Synth class files missing: %s", e)
        for name, dataset_root, _ in entries + [(SYNTH_WIDE_TRAIN, wide_root, "train")]:
            _register_missing(name, dataset_root, str(e))
        return [name for name, _, _ in entries] + [SYNTH_WIDE_TRAIN]
    register_avsbench_dataset(
        SYNTH_WIDE_TRAIN,
        wide_root,
        subsets=SUBSETS,
        splits=("train",),
        class_list=SYNTH_WIDE_CLASS_LIST,
        split_file=SYNTH_WIDE_SPLIT,
        drop_novel=True,
        skip_bad_clips=skip_bad_clips,
        allow_outside_root=allow_outside_root,
    )
    for name, dataset_root, split in entries:
        binary = name.startswith("avs_synth")
        register_avsbench_dataset(
            name,
            dataset_root,
            subsets=SUBSETS,
            splits=(split,),
            class_list=SYNTH_CLASS_LIST,
            split_file=None if binary else SYNTH_SPLIT,
            binary=binary,
            drop_novel=split == "train" and not binary,
            skip_bad_clips=skip_bad_clips,
            allow_outside_root=allow_outside_root,
        )
    return [name for name, _, _ in entries] + [SYNTH_WIDE_TRAIN]


def _reregister_avss_synth(skip_bad_clips: bool, allow_outside_root: bool) -> List[str]:
    """The AVSS-Synth names again, with these loader options (their class files stay)."""
    names = [f"{p}_{s}" for p in ("avss_synth", "avs_synth") for s in SPLITS]
    names += [f"{p}_test_{v}" for p in ("avss_synth", "avs_synth") for v in SYNTH_VARIANTS]
    names.append(SYNTH_WIDE_TRAIN)
    for name in names:
        if name in DatasetCatalog.list():
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
    return register_all_avss_synth(_ROOT, skip_bad_clips, allow_outside_root)


def register_from_config(cfg) -> List[str]:
    """Re-register the AVSBench-semantic datasets (binary S4 / MS3 included) with the
    ``cfg.DATASETS`` keys CLASS_LIST, OV_SPLIT, SKIP_BAD_CLIPS and ALLOW_SYMLINKS_OUTSIDE_ROOT,
    and the AVSS-Synth ones with SKIP_BAD_CLIPS and ALLOW_SYMLINKS_OUTSIDE_ROOT, when they differ
    from the defaults (train_net.py and the demo call it from their setup).

    Returns:
        the re-registered names (empty when the config keeps the defaults).
    """
    d = cfg.DATASETS
    allow = bool(d.get("ALLOW_SYMLINKS_OUTSIDE_ROOT", False))
    synth = []
    if d.SKIP_BAD_CLIPS or allow:
        synth = _reregister_avss_synth(bool(d.SKIP_BAD_CLIPS), allow)
    if (d.CLASS_LIST, d.OV_SPLIT, d.SKIP_BAD_CLIPS, allow) == (
        AVSBENCH_CLASS_LIST,
        AVSBENCH_SPLIT,
        False,
        False,
    ):
        return synth
    path = os.path.join(_ROOT, AVSBENCH_DIR)
    names = [f"avss_{a}_{s}" for a in SUBSETS + ("all",) for s in SPLITS]
    names += ["avsbench_ov_train_base", "avsbench_ov_val", "avsbench_ov_test"]
    binary = [f"{p}_{s}" for p in _BINARY_AVSBENCH_SUBSETS for s in SPLITS]
    for name in names + binary:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    registered = register_avsbench_semantic(
        path,
        class_list=d.CLASS_LIST,
        split_file=d.OV_SPLIT,
        skip_bad_clips=d.SKIP_BAD_CLIPS,
        allow_outside_root=allow,
    )
    for prefix, subset in _BINARY_AVSBENCH_SUBSETS.items():  # S4 / MS3: binary, no split file
        for split in SPLITS:
            register_avsbench_dataset(
                f"{prefix}_{split}",
                path,
                subsets=(subset,),
                splits=(split,),
                class_list=d.CLASS_LIST,
                split_file=None,
                binary=True,
                skip_bad_clips=d.SKIP_BAD_CLIPS,
                allow_outside_root=allow,
            )
            registered.append(f"{prefix}_{split}")
    logger.info(
        "re-registered %d AVSBench-semantic datasets with %s / %s",
        len(registered),
        d.CLASS_LIST,
        d.OV_SPLIT,
    )
    return registered + synth


# Like detectron2's builtin datasets: the root is resolved at import, but not read.
_ROOT = os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))
if __name__.endswith(".register_avsbench"):
    register_all_avsbench(_ROOT)
    register_all_avss_synth(_ROOT)
