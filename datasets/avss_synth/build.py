"""Build the AVSS-Synth benchmark (v2) in the AVSBench-semantic format.

Output (``root``)::

    metadata.csv        uid, a_obj (sounding class keys joined by "_"), split, label (= subset)
    label2idx.json      background first, then the classes of avss_synth.txt in order
    synth_info.jsonl    one JSON record per clip: every random choice (objects, stamps, recordings,
                        silent seconds, gains, positions, conditions), for analysis and debugging
    conditions.json     uid -> the clip's recording conditions (SNR, noise kinds and files,
                        background and its pool, camera, colour, blur, JPEG quality, object areas)
    noise_pools.json    split -> its pool of noise recordings (absolute paths)
    manifest.json       sha256 of every file, versions used, the build fingerprint (manifest.py)
    v1s/<uid>/...       single-source clips; training clips only label frame 0, as AVSBench does
    v1m/<uid>/...       clips with 2-3 sources, 5 labelled frames
                        each clip: frames/0..4.jpg, labels_rgb/<t>.png, audio.wav
    variants/test_<name>/   the test clips with other audio (variants.py), same format
    stems/<uid>/        with ``write_stems``: sources.wav and noise.wav of audio.wav

AVSS-Synth v1 (clean clips over one photograph, white noise) is retired: only v2 is built.
"""

import json
import logging
import multiprocessing as mp
import os
import shutil
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ovavss_d2.data.class_lists import ClassList, load_class_list, load_split
from ovavss_d2.data.datasets.avsbench_format import write_label2idx, write_metadata
from ovavss_d2.data.datasets.register_avsbench import SYNTH_CLASS_LIST, SYNTH_SPLIT

from .clips_v2 import conditions_record, sample_clip_v2
from .conditions import SNR_RANGE
from .manifest import MANIFEST, media_hashes, write_manifest
from .media import MediaError, MediaIndex
from .objects import describe
from .pools import PoolIndex, index_media_v2
from .variants import DEFAULT_VARIANTS, VARIANTS_DIR, variant_root, write_clip_v2
from .wide_pool import WidePool, index_wide_pool

logger = logging.getLogger(__name__)

CLASS_LIST_FILE = SYNTH_CLASS_LIST
SPLIT_FILE = SYNTH_SPLIT
SPLITS = ("train", "val", "test")
TRAIN_POOLS = ("base", "wide")  # --train-pool: base classes only, or also the wide pool
WIDE_CLASS_LIST_FILE = "avss_synth_wide.txt"  # the 22 classes, then the wide pool's classes
DEFAULT_CLIPS = {"train": 1200, "val": 200, "test": 200}
RETIRED_VERSION_ERROR = "AVSS-Synth v1 is retired; build v2"
# names this builder writes under the output folder (the only ones --force removes)
OUTPUTS = (
    "metadata.csv",
    "label2idx.json",
    "synth_info.jsonl",
    "conditions.json",
    "noise_pools.json",
    "v1s",
    "v1m",
    VARIANTS_DIR,
    "stems",
    MANIFEST,
)

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


def _set_threads(torch_threads: int, cv2_threads: int) -> Tuple[int, int]:
    """Set torch's and OpenCV's thread counts; return the previous ones."""
    import cv2
    import torch

    previous = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(torch_threads)
    cv2.setNumThreads(cv2_threads)
    return previous


def _init_worker(settings: Dict) -> None:
    # one torch / OpenCV thread in every process, the main one included (workers=1): the processes
    # share the cores, and no result depends on how a library splits its work between threads
    _set_threads(1, 1)
    _WORKER.clear()
    _WORKER.update(settings)


def _build_one(task: Tuple[str, int, str, str]) -> Tuple[Dict[str, str], Dict, Dict]:
    split, index, uid, first_key = task
    s = _WORKER
    rng = np.random.default_rng(clip_seed(s["seed"], split, index))
    pool = s["pools"][split]
    wide = s["wide"] if split == "train" else None
    plan = sample_clip_v2(
        rng, uid, split, pool, first_key, s["media"], s["media_pools"], s["size"], s["snr"], wide
    )
    variants = s["variants"] if split == "test" else None
    write_clip_v2(
        plan,
        s["root"],
        s["size"],
        s["sample_rate"],
        s["class_index"],
        variants=variants,
        write_stems=s["write_stems"],
    )
    conditions = conditions_record(plan, s["media"])
    row = {
        "uid": uid,
        "a_obj": "_".join(plan.sounding_keys(s["class_index"])),
        "split": split,
        "label": plan.subset,
    }
    return row, describe(plan, s["media"]), conditions


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
    snr_range: Tuple[float, float] = SNR_RANGE,
    variants: Optional[Dict[str, Optional[float]]] = None,
    write_stems: bool = False,
    media_pools: Optional[PoolIndex] = None,
    manifest: bool = True,
    train_pool: str = "base",
    wide_pool: Optional[WidePool] = None,
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
        media, media_pools: an already indexed MediaIndex and its held-out background and noise
            pools (``pools.index_media_v2``; both, or neither: then the two folders are indexed).
        snr_range: ``(low, high)`` dB of the drawn noise floor.
        variants: test variants to write (default ``DEFAULT_VARIANTS``; ``{}`` for none).
        write_stems: also write each clip's sources and noise tracks (``stems/``).
        manifest: finally write ``manifest.json`` (the hash of every file, the versions used and
            the fingerprint, ``manifest.py``).
        train_pool: "base" (training clips show the 13 base classes only) or "wide" (training
            clips also show and play the wide pool, ``wide_pool.py``, labelled with the classes of
            ``avss_synth_wide.txt``); val and test are the same files either way.
        wide_pool: with "wide", an already indexed pool (default: ``index_wide_pool`` of the
            stamps folder, which runs the MiniLM check).
    """
    if train_pool not in TRAIN_POOLS:
        raise ValueError(f"train_pool {train_pool!r}: expected one of {list(TRAIN_POOLS)}")
    if snr_range[0] > snr_range[1]:
        raise ValueError(f"snr_range {snr_range}: low must not exceed high")
    classes = load_class_list(CLASS_LIST_FILE)
    split = load_split(SPLIT_FILE, classes)
    keys = list(classes.names[1:])
    base = [classes.names[i] for i in split["base"]]
    if media is None or media_pools is None:
        media, media_pools = index_media_v2(keys, stamps_dir, backgrounds_dir)
    wide = None
    label_classes = classes
    if train_pool == "wide":
        novel = {classes.names[i]: classes.prompt_names[i] for i in split["novel"]}
        media, wide, label_classes = _with_wide_pool(
            media, media_pools, novel, stamps_dir, wide_pool
        )
    counts = dict(DEFAULT_CLIPS if clips is None else clips)
    variants = dict(DEFAULT_VARIANTS if variants is None else variants)
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
        "class_index": {k: i for i, k in enumerate(label_classes.names)},
        "media_pools": media_pools,
        "wide": wide,
        "snr": tuple(snr_range),
        "variants": variants,
        "write_stems": write_stems,
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
        previous = _set_threads(1, 1)
        try:
            _init_worker(settings)
            results = [_build_one(t) for t in _progress(tasks, len(tasks), progress)]
        finally:
            _set_threads(*previous)

    _write_index(root, [row for row, _, _ in results], label_classes.names)
    with open(root / "synth_info.jsonl", "w") as f:
        for _, record, _ in results:
            f.write(json.dumps(record, sort_keys=True) + "\n")
    conditions = {row["uid"]: cond for row, _, cond in results}
    _write_json(root / "conditions.json", conditions)
    write_noise_pools(root, media_pools)
    test = [(row, cond) for row, _, cond in results if row["split"] == "test"]
    for name, snr in variants.items():
        vroot = variant_root(root, name)
        vroot.mkdir(parents=True, exist_ok=True)
        _write_index(vroot, [row for row, _ in test], classes.names)
        vcond = {
            row["uid"]: dict(cond, variant=name, snr_db=snr, drawn_snr_db=cond["snr_db"])
            for row, cond in test
        }
        _write_json(vroot / "conditions.json", vcond)
    if manifest:
        arguments = {
            "version": 2,
            "seed": seed,
            "clips": {name: counts.get(name, 0) for name in SPLITS},
            "size": list(size),
            "sample_rate": sample_rate,
            "snr_range": list(snr_range),
            "variants": variants,
            "write_stems": write_stems,
            "stamps_dir": None if stamps_dir is None else os.fspath(stamps_dir),
            "backgrounds_dir": None if backgrounds_dir is None else os.fspath(backgrounds_dir),
            "workers": workers,
        }
        if train_pool != "base":  # the default build's manifest stays as it was
            arguments["train_pool"] = train_pool
        inputs = [p for v in media.stamps.values() for p in v]
        inputs += [p for v in media.sounds.values() for p in v] + list(media.backgrounds)
        for pool in (media_pools.backgrounds, media_pools.offscreen, media_pools.speech):
            inputs += [p for v in pool.values() for p in v]
        write_manifest(root, "avss_synth", arguments, media_hashes(inputs, media.name))
    return {name: counts.get(name, 0) for name in SPLITS}


def _with_wide_pool(
    media: MediaIndex,
    media_pools: PoolIndex,
    novel: Dict[str, Sequence[str]],
    stamps_dir: Optional[os.PathLike],
    wide: Optional[WidePool] = None,
) -> Tuple[MediaIndex, WidePool, ClassList]:
    """The media index extended by the wide pool (indexed unless given), the pool, and the wide
    class list (MediaError when the pool holds a class that avss_synth_wide.txt lacks)."""
    if wide is None:  # val / test recordings never play in training
        root = Path(stamps_dir) if stamps_dir is not None else Path(media.roots[0][0])
        splits = ("val", "test")
        held_out = [p for s in splits for p in media_pools.offscreen[s] + media_pools.speech[s]]
        wide = index_wide_pool(root, novel, held_out, class_keys=list(media.stamps))
    wide_classes = load_class_list(WIDE_CLASS_LIST_FILE)
    unknown = sorted(set(wide.stamps) - set(wide_classes.names))
    if unknown:
        raise MediaError(
            f"the wide pool holds classes missing from {wide_classes.source}: {unknown}; "
            "regenerate it with `python datasets/review_wide_pool.py --write-class-list`"
        )
    merged = MediaIndex(
        stamps={**media.stamps, **wide.stamps},
        sounds={**media.sounds, **wide.sounds},
        backgrounds=media.backgrounds,
        roots=media.roots,
    )
    return merged, wide, wide_classes


def write_noise_pools(root: Path, pools: PoolIndex) -> None:
    """``noise_pools.json``: split -> the noise recordings (absolute paths) of its pool, for
    ``INPUT.AUDIO.AUGMENT.NOISE_PATH`` (the train pool) and for checking that pools are disjoint."""
    _write_json(
        Path(root) / "noise_pools.json",
        {s: sorted(pools.offscreen[s] + pools.speech[s]) for s in pools.offscreen},
    )


def _write_json(path: Path, obj) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")


def _write_index(root: Path, rows: List[Dict[str, str]], class_names: Sequence[str]) -> None:
    """``metadata.csv`` and ``label2idx.json`` of a root."""
    write_metadata(root, rows)
    write_label2idx(root, class_names)


def _progress(iterable, total: int, enabled: bool):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, unit="clip", desc="AVSS-Synth")
