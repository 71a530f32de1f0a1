"""Build the AVSS-Synth benchmark in the AVSBench-semantic on-disk format.

Output (``root``)::

    metadata.csv        uid, a_obj (sounding class keys joined by "_"), split, label (= subset)
    label2idx.json      background first, then the classes of avss_synth.txt in order
    synth_info.jsonl    one JSON record per clip: every random choice (objects, stamps, recordings,
                        stopped second, gains, positions), for analysis and debugging
    v1s/<uid>/...       single-source clips; training clips only label frame 0, as AVSBench does
    v1m/<uid>/...       clips with 2-3 sources, 5 labelled frames
                        each clip: frames/0..4.jpg, labels_rgb/<t>.png, audio.wav
"""

import csv
import json
import logging
import multiprocessing as mp
import os
import shutil
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..class_lists import load_class_list, load_split
from .clips import describe, sample_clip, write_clip
from .media import MediaIndex, index_media

logger = logging.getLogger(__name__)

CLASS_LIST_FILE = "avss_synth.txt"
SPLIT_FILE = "avss_synth_split.json"
SPLITS = ("train", "val", "test")
DEFAULT_CLIPS = {"train": 120, "val": 40, "test": 40}
# names this builder writes under the output folder (the only ones --force removes)
OUTPUTS = ("metadata.csv", "label2idx.json", "synth_info.jsonl", "v1s", "v1m")

_WORKER: Dict = {}


def class_pools(classes: Sequence[str], base: Sequence[str]) -> Dict[str, List[str]]:
    """Classes allowed per split: base only in train (sounding and visible), all in val/test."""
    return {"train": [k for k in classes if k in base], "val": list(classes), "test": list(classes)}


def clip_seed(seed: int, split: str, index: int) -> List[int]:
    """Entropy of one clip's generator: independent of worker count and build order."""
    return [seed, SPLITS.index(split), index]


def _first_keys(seed: int, split: str, pool: Sequence[str], count: int) -> List[str]:
    """First sounding class of every clip of a split: a shuffled round robin over the pool."""
    rng = np.random.default_rng([seed, SPLITS.index(split), 1 << 30])
    keys: List[str] = []
    while len(keys) < count:
        keys += [pool[i] for i in rng.permutation(len(pool))]
    return keys[:count]


def _init_worker(settings: Dict, single_thread: bool = True) -> None:
    if single_thread:  # a worker process: one torch thread each, the processes share the cores
        import cv2
        import torch

        torch.set_num_threads(1)
        cv2.setNumThreads(1)
    _WORKER.clear()
    _WORKER.update(settings)


def _build_one(task: Tuple[str, int, str, str]) -> Tuple[Dict[str, str], Dict]:
    split, index, uid, first_key = task
    s = _WORKER
    rng = np.random.default_rng(clip_seed(s["seed"], split, index))
    plan = sample_clip(rng, uid, split, s["pools"][split], first_key, s["media"], s["size"])
    write_clip(plan, s["root"], s["size"], s["sample_rate"], s["class_index"])
    row = {
        "uid": uid,
        "a_obj": "_".join(plan.sounding_keys(s["class_index"])),
        "split": split,
        "label": plan.subset,
    }
    return row, describe(plan, s["media"])


def prepare_output(root: Path, force: bool) -> None:
    """Refuse to write into a non-empty folder unless ``force``; with it, remove earlier output."""
    if root.exists() and any(root.iterdir()):
        if not force:
            raise FileExistsError(
                f"{root} exists and is not empty; pass --force to replace the AVSS-Synth files"
            )
        for name in OUTPUTS:
            path = root / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    root.mkdir(parents=True, exist_ok=True)


def build_avss_synth(
    root: os.PathLike,
    *,
    seed: int = 0,
    clips: Optional[Dict[str, int]] = None,
    size: Tuple[int, int] = (224, 224),
    sample_rate: int = 16000,
    stamps_dir: Optional[os.PathLike] = None,
    backgrounds_dir: Optional[os.PathLike] = None,
    workers: int = 1,
    force: bool = False,
    progress: bool = False,
    media: Optional[MediaIndex] = None,
) -> Dict[str, int]:
    """Build the benchmark under ``root`` and return the number of clips per split.

    Args:
        root: output folder.
        seed: the same seed (and the same media and library versions) gives identical files.
        clips: clips per split (default ``DEFAULT_CLIPS``).
        size: ``(W, H)`` of frames and labels.
        sample_rate: audio sample rate of ``audio.wav`` (mono, 16-bit PCM).
        stamps_dir, backgrounds_dir: media folders (see ``media.index_media``).
        workers: processes; the output does not depend on it.
        force: replace an earlier build in ``root``.
        progress: show a tqdm progress bar.
        media: an already indexed MediaIndex (overrides the two folders).
    """
    classes = load_class_list(CLASS_LIST_FILE)
    split = load_split(SPLIT_FILE, classes)
    keys = list(classes.names[1:])
    base = [classes.names[i] for i in split["base"]]
    if media is None:
        media = index_media(keys, stamps_dir, backgrounds_dir)
    counts = dict(DEFAULT_CLIPS if clips is None else clips)
    root = Path(root)
    prepare_output(root, force)

    pools = class_pools(keys, base)
    tasks = []
    for name in SPLITS:
        first = _first_keys(seed, name, pools[name], counts.get(name, 0))
        tasks += [(name, i, f"{name}_{i:04d}", first[i]) for i in range(counts.get(name, 0))]
    settings = {
        "seed": seed,
        "pools": pools,
        "media": media,
        "size": tuple(size),
        "sample_rate": sample_rate,
        "root": str(root),
        "class_index": {k: i for i, k in enumerate(classes.names)},
    }
    logger.info(
        "building %d clips (%s) into %s with %d worker(s)", len(tasks), counts, root, workers
    )

    results = []
    if workers > 1 and len(tasks) > 1:
        # spawn: workers start clean (no inherited torch threads); results come back in task order
        ctx = mp.get_context("spawn")
        with ctx.Pool(workers, initializer=_init_worker, initargs=(settings,)) as pool:
            iterator = pool.imap(_build_one, tasks, chunksize=4)
            results = list(_progress(iterator, len(tasks), progress))
    else:
        _init_worker(settings, single_thread=False)
        results = [_build_one(t) for t in _progress(tasks, len(tasks), progress)]

    with open(root / "metadata.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["uid", "a_obj", "split", "label"])
        writer.writeheader()
        writer.writerows(row for row, _ in results)
    with open(root / "label2idx.json", "w") as f:
        json.dump({k: i for i, k in enumerate(classes.names)}, f, indent=1)
        f.write("\n")
    with open(root / "synth_info.jsonl", "w") as f:
        for _, record in results:
            f.write(json.dumps(record, sort_keys=True) + "\n")
    return {name: counts.get(name, 0) for name in SPLITS}


def _progress(iterable, total: int, enabled: bool):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, unit="clip", desc="AVSS-Synth")
