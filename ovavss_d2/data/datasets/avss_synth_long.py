"""AVSS-Synth-Long (datasets/prepare_avss_synth_long.py): loader and lazy registration.

``avss_synth_long_{val,test}`` under ``$DETECTRON2_DATASETS/AVSS-Synth-Long``: one dataset dict
per long clip in the layout of docs/DESIGN.md (every frame labelled; ``class_names`` are the
clip's objects, each of its own class, so a class is also an object identity within a clip), and
the metadata of AVSS-Synth (same class list and base / novel split, evaluator ``"avss"``).
"""

import csv
import os
from typing import Dict, List

from detectron2.data import DatasetCatalog, MetadataCatalog

from ..class_lists import load_class_list
from .avsbench import avsbench_metadata
from .avsbench_format import AUDIO_NAMES, LABEL_DIR, image_size

__all__ = ["LONG_DIR", "load_avss_synth_long", "register_avss_synth_long"]

LONG_DIR = "AVSS-Synth-Long"
LONG_SPLITS = ("val", "test")
CLASS_LIST = "avss_synth.txt"
SPLIT_FILE = "avss_synth_split.json"


def load_avss_synth_long(root: str, split: str) -> List[Dict]:
    """Dataset dicts of the long clips of ``split`` under ``root``; errors name the file."""
    path = os.path.join(root, "metadata.csv")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"metadata file not found: {path} (build the long clips with "
            "datasets/prepare_avss_synth_long.py)"
        )
    known = set(load_class_list(CLASS_LIST).names[1:])
    dicts = []
    with open(path, newline="", encoding="utf-8") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            if row["split"] != split:
                continue
            names = row["a_obj"].split("_")
            unknown = [n for n in names if n not in known]
            if unknown:
                raise ValueError(f"{path}:{line}: classes {unknown} are not in {CLASS_LIST}")
            clip_dir = os.path.join(root, row["uid"])
            n = int(row["num_frames"])
            frames = [os.path.join(clip_dir, "frames", f"{t}.jpg") for t in range(n)]
            labels = [os.path.join(clip_dir, LABEL_DIR, f"{t}.png") for t in range(n)]
            missing = [
                p for p in (frames[0], frames[-1], labels[0], labels[-1]) if not os.path.isfile(p)
            ]
            audio = [os.path.join(clip_dir, a) for a in AUDIO_NAMES]
            audio = [a for a in audio if os.path.isfile(a)]
            if missing or not audio:
                raise FileNotFoundError(
                    f"{path}:{line}: clip '{row['uid']}' lacks "
                    f"{missing[0] if missing else 'its audio file'}"
                )
            height, width = image_size(frames[0])
            dicts.append(
                {
                    "clip_id": row["uid"],
                    "subset": "long",
                    "split": split,
                    "file_names": frames,
                    "sem_seg_file_names": labels,
                    "audio_file_name": audio[0],
                    "height": height,
                    "width": width,
                    "class_names": names,
                    "binary": False,
                }
            )
    return dicts


def register_avss_synth_long(root: str) -> List[str]:
    """Register ``avss_synth_long_{val,test}`` lazily under ``<root>/AVSS-Synth-Long``."""
    path = os.path.join(root, LONG_DIR)
    names = []
    for split in LONG_SPLITS:
        name = f"avss_synth_long_{split}"
        DatasetCatalog.register(name, lambda s=split: load_avss_synth_long(path, s))
        meta = avsbench_metadata(CLASS_LIST, SPLIT_FILE)
        MetadataCatalog.get(name).set(dataset_root=path, **meta)
        names.append(name)
    return names


register_avss_synth_long(os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets")))
