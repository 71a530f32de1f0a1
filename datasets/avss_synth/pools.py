"""Media of AVSS-Synth v2 beyond the objects, split into disjoint train / val / test pools.

v2 adds to ``media.index_media``: more photos and recordings of some classes (``EXTRA_STAMPS`` /
``EXTRA_SOUNDS``), more background photographs, Tux Paint's spoken descriptions (``*_desc*.ogg``,
the speech babble) and recordings of things outside the class list (``OFFSCREEN_SOUNDS``).
Backgrounds and noise recordings are assigned to one split each by a hash of their name
(``assign_pools``), so the test split never shows or plays one that training saw.
"""

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .media import (
    OPENCV_BACKGROUNDS,
    OPENCV_EXAMPLES_DIR,
    SETUP_HINT,
    SKIMAGE_BACKGROUNDS,
    MediaError,
    MediaIndex,
    _find_sound,
    _skimage_data_dir,
    default_background_paths,
    index_media,
)

POOL_SPLITS = ("train", "val", "test")
POOL_FRACTIONS = (0.7, 0.15, 0.15)  # share of backgrounds / noise recordings per split
MAX_SPEECH_PER_POOL = (600, 150, 150)  # spoken descriptions kept per split (bounds decode caches)

# Further photos of a class and further recordings of a class (beyond media.py's).
EXTRA_STAMPS: Dict[str, str] = {
    "animals/birds/lark.png": "bird",
    "animals/birds/magpie.png": "bird",
    "animals/birds/pigeon.png": "bird",
    "animals/birds/cuckoo.png": "bird",
    "animals/birds/seagull.png": "bird",
    "animals/birds/silver-gull.png": "bird",
    "animals/birds/owl.png": "bird",
    "animals/mammals/dogs/dingo.png": "dog",
    "vehicles/emergency/sedan_police.png": "emergency-car",
    "vehicles/emergency/sedan_police_mirror.png": "emergency-car",
}
EXTRA_SOUNDS: Dict[str, str] = {
    "animals/birds/lark.ogg": "bird",
    "animals/birds/cuckoo.ogg": "bird",
    "animals/birds/owl.ogg": "bird",
    "animals/birds/seagull.ogg": "bird",
}

# Off-screen sounds: real recordings of things that are not in the class list and do not sound
# like a class (no bird, bovine, equine, feline, canine, drum or cymbal). giraffe.ogg and
# wombat.ogg are left out: they are silent.
OFFSCREEN_SOUNDS: Tuple[str, ...] = (
    "animals/insects/bee.ogg",
    "animals/insects/grasshopper.ogg",
    "animals/insects/hornet.ogg",
    "animals/insects/mosquito.ogg",
    "animals/mammals/apes/chimp.ogg",
    "animals/mammals/apes/gorilla.ogg",
    "animals/mammals/aquatic/dolphin.ogg",
    "animals/mammals/aquatic/orca.ogg",
    "animals/mammals/aquatic/sea_lion.ogg",
    "animals/mammals/aquatic/whale.ogg",
    "animals/mammals/bears/bear.ogg",
    "animals/mammals/camel/camel.ogg",
    "animals/mammals/camel/dromedary.ogg",
    "animals/mammals/hippopotamus.ogg",
    "animals/mammals/rodents/mouse.ogg",
    "animals/marsupials/koala.ogg",
    "household/kettle.ogg",
    "household/toilet.ogg",
    "household/vacuum_cleaner.ogg",
    "household/Washing-machine.ogg",
    "household/arttools/scissors_small_open.ogg",
    "household/dishes/bottle.ogg",
    "household/dishes/glass.ogg",
    "household/tools/hammer.ogg",
    "household/tools/mallet_metal.ogg",
    "household/tools/saw.ogg",
    "hobbies/camera_35mm.ogg",
    "naturalforces/lightningbolt.ogg",
    "seasonal/newyears/fireworks.ogg",
    "space/apollo_lander.ogg",
)

# Background photographs added in v2 (no object of the class list in them).
EXTRA_OPENCV_BACKGROUNDS: Tuple[str, ...] = (
    "data/aloeR.jpg",
    "data/apple.jpg",
    "data/blox.jpg",
    "data/box_in_scene.png",
    "data/graf3.png",
    "data/orange.jpg",
    "data/rubberwhale2.png",
    "data/smarties.png",
    "data/starry_night.jpg",
    "hfs/data/000.jpg",
    "text/scenetext01.jpg",
)
EXTRA_SKIMAGE_BACKGROUNDS: Tuple[str, ...] = ("hubble_deep_field.jpg", "motorcycle_left.png")


@dataclass(frozen=True)
class PoolIndex:
    """Per split, the backgrounds, off-screen recordings and speech recordings it may use."""

    backgrounds: Dict[str, Tuple[str, ...]]
    offscreen: Dict[str, Tuple[str, ...]]
    speech: Dict[str, Tuple[str, ...]]


def _hash(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()


def assign_pools(
    items: Sequence[str],
    group=lambda s: s,
    fractions: Sequence[float] = POOL_FRACTIONS,
    what: str = "items",
) -> Dict[str, List[str]]:
    """Split ``items`` into disjoint train / val / test pools, each non-empty when >= 3 groups.

    Items of the same ``group(item)`` go to the same pool. Groups are ordered by the SHA-1 of their
    name and cut at the cumulative ``fractions``, so a pool depends only on the names.
    """
    groups = sorted({group(i) for i in items}, key=_hash)
    n = len(groups)
    if n < len(POOL_SPLITS):
        raise MediaError(
            f"need at least 3 distinct {what} to hold out one pool per split, found {n}"
        )
    cuts = [int(round(n * sum(fractions[: k + 1]))) for k in range(len(fractions))]
    cuts[0] = min(max(cuts[0], 1), n - 2)
    cuts[1] = min(max(cuts[1], cuts[0] + 1), n - 1)
    cuts[2] = n
    owner = {}
    for i, g in enumerate(groups):
        owner[g] = POOL_SPLITS[0 if i < cuts[0] else (1 if i < cuts[1] else 2)]
    pools: Dict[str, List[str]] = {s: [] for s in POOL_SPLITS}
    for item in sorted(items):
        pools[owner[group(item)]].append(item)
    return pools


def background_group(name: str) -> str:
    """Photos of one scene form one group: stereo / flow pairs and numbered series (``aloeL`` and
    ``aloeR``, ``rubberwhale1`` and ``rubberwhale2``, ``hfs/data/000``, ``data/home`` and
    ``reg/home``) map to the same key, so they never end up in different pools."""
    folder, stem = os.path.split(os.path.splitext(name)[0])
    stem = re.sub(r"(?<=[a-z])[LRAB]$", "", stem)
    stem = re.sub(r"[\d_-]+$", "", stem).lower()
    return stem or folder


def speech_group(path: str) -> str:
    """All spoken descriptions of one stamp (every language) form one group: ``dog_desc_fr.ogg``
    and ``dog_desc_de.ogg`` both map to ``.../dog``."""
    return path.split("_desc")[0]


def v2_background_paths() -> List[Path]:
    """The photographs of media.py plus those added in v2 (MediaError without opencv-doc or
    scikit-image, or when one of them lacks a photo).

    Every curated photo must be there: one photo less would silently move the cuts between the
    held-out pools (``assign_pools``) and so change every clip of the build."""
    skimage_dir = _skimage_data_dir()
    if skimage_dir is None:
        raise MediaError(
            "scikit-image is not installed: its sample photos are among the v2 backgrounds "
            "(pip install scikit-image)"
        )
    paths = default_background_paths()
    paths += [OPENCV_EXAMPLES_DIR / p for p in EXTRA_OPENCV_BACKGROUNDS]
    paths += [skimage_dir / p for p in EXTRA_SKIMAGE_BACKGROUNDS]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise MediaError(f"background photographs missing: {missing[:5]}; {SETUP_HINT}")
    return paths


def index_media_v2(
    class_keys: Sequence[str],
    stamps_dir: Optional[os.PathLike] = None,
    backgrounds_dir: Optional[os.PathLike] = None,
) -> Tuple[MediaIndex, PoolIndex]:
    """``index_media`` extended by the v2 object media, and the held-out pools (or MediaError)."""
    media = index_media(class_keys, stamps_dir, backgrounds_dir)
    root = Path(stamps_dir) if stamps_dir is not None else Path(media.roots[0][0])
    stamps = {k: list(v) for k, v in media.stamps.items()}
    sounds = {k: list(v) for k, v in media.sounds.items()}
    for rel, key in EXTRA_STAMPS.items():
        if key in stamps and (root / rel).is_file():
            stamps[key].append(str(root / rel))
    for rel, key in EXTRA_SOUNDS.items():
        path = _find_sound(root, rel) if key in sounds else None
        if path is not None:
            sounds[key].append(str(path))
    backgrounds = list(media.backgrounds)
    if backgrounds_dir is None:
        backgrounds = [str(p) for p in v2_background_paths()]
    media = MediaIndex(
        stamps={k: tuple(sorted(v)) for k, v in stamps.items()},
        sounds={k: tuple(sorted(v)) for k, v in sounds.items()},
        backgrounds=tuple(backgrounds),
        roots=media.roots,
    )

    offscreen = [str(p) for p in (_find_sound(root, rel) for rel in OFFSCREEN_SOUNDS) if p]
    speech = sorted(
        str(p) for p in root.rglob("*_desc*") if p.suffix.lower() in (".ogg", ".wav", ".flac")
    )
    if len(offscreen) < 3 or len(speech) < 3:
        raise MediaError(
            f"{root} lacks the off-screen recordings ({len(offscreen)} of "
            f"{len(OFFSCREEN_SOUNDS)} found) or spoken descriptions (*_desc*.ogg: {len(speech)}) "
            f"that AVSS-Synth v2 mixes in as noise; {SETUP_HINT}"
        )
    name = media.name
    # curated photos: one scene per pool; a user's folder: one file per group
    bg_group = (lambda p: background_group(name(p))) if backgrounds_dir is None else name
    bg_pools = assign_pools(backgrounds, group=bg_group, what="background images")
    off_pools = assign_pools(offscreen, group=name, what="off-screen recordings")
    speech_pools = assign_pools(
        speech, group=lambda p: speech_group(name(p)), what="spoken descriptions"
    )
    for i, split in enumerate(POOL_SPLITS):  # a bounded, name-ordered subset of each pool
        kept = sorted(speech_pools[split], key=lambda p: _hash(name(p)))[: MAX_SPEECH_PER_POOL[i]]
        speech_pools[split] = sorted(kept)
    pools = PoolIndex(
        backgrounds={s: tuple(v) for s, v in bg_pools.items()},
        offscreen={s: tuple(v) for s, v in off_pools.items()},
        speech={s: tuple(v) for s, v in speech_pools.items()},
    )
    return media, pools


__all__ = [
    "EXTRA_STAMPS",
    "EXTRA_SOUNDS",
    "OFFSCREEN_SOUNDS",
    "OPENCV_BACKGROUNDS",
    "SKIMAGE_BACKGROUNDS",
    "PoolIndex",
    "assign_pools",
    "background_group",
    "index_media_v2",
    "speech_group",
]
