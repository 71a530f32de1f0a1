"""Real media for AVSS-Synth: Tux Paint photo stamps, their recordings, background photographs.

Stamps come from Debian's ``tuxpaint-stamps-default`` (GPL-2): photo cut-outs whose alpha channel is
an exact object mask, several with a same-named real recording. Backgrounds are real photographs
from ``opencv-doc`` (Apache-2.0 / BSD-3-Clause) and scikit-image's bundled samples (CC0 / public
domain). ``STAMP_CLASSES`` and ``SOUND_CLASSES`` below are the only place that says which file makes
which class; the class keys are those of ``ovavss_d2/data/classes/avss_synth.txt``.
"""

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

DEFAULT_STAMPS_DIR = Path("/usr/share/tuxpaint/stamps")
OPENCV_EXAMPLES_DIR = Path("/usr/share/doc/opencv-doc/examples")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
SOUND_SUFFIXES = (".ogg", ".wav", ".flac")

# Stamp photograph (path under the stamps folder) -> class key. Every stamp is a photo cut-out.
# Stamps without a recording of their own (lion-2, tiger_sumatran, donkey_eating, frog-1) borrow
# their class's recordings. Left out on purpose: ram (its recording is the goat bleat of
# mountaingoat.ogg, which would leak a novel sound into a base class), clip-art and SVG-only stamps
# (vacuum cleaner, washing machine, black cat) and recordings of low quality (8 kHz saw, hammer).
STAMP_CLASSES: Dict[str, str] = {
    "hobbies/music/wind/bassoon.png": "bassoon",
    "animals/birds/crow.png": "bird",
    "animals/birds/blackbird.png": "bird",
    "hobbies/music/string/cello.png": "cello",
    "animals/mammals/bovines/cow.png": "cow",
    "animals/mammals/bovines/cow_white.png": "cow",
    "animals/mammals/bovines/bull.png": "cow",
    "animals/mammals/dogs/dog.png": "dog",
    "animals/mammals/equines/donkey.png": "donkey",
    "animals/mammals/equines/donkey_eating.png": "donkey",
    "hobbies/music/percussion/drumkit.png": "drum",
    "hobbies/music/percussion/drum_tomtom_floor.png": "drum",
    "animals/birds/duck.png": "duck",
    "animals/birds/drake.png": "duck",
    "animals/mammals/elephant.png": "elephant",
    "vehicles/emergency/firetruck.png": "emergency-car",
    "animals/amphibians/frog.png": "frog",
    "animals/amphibians/frog-1.png": "frog",
    "animals/mammals/bovines/goat.png": "goat",
    "animals/mammals/bovines/mountaingoat.png": "goat",
    "animals/birds/gander.png": "goose",
    "animals/birds/hen.png": "hen",
    "animals/mammals/equines/horse.png": "horse",
    "animals/mammals/cats/lion.png": "lion",
    "animals/mammals/cats/lion-2.png": "lion",
    "animals/mammals/pig.png": "pig",
    "animals/mammals/pig_golden.png": "pig",
    "animals/mammals/pig_golden2.png": "pig",
    "animals/birds/rooster.png": "rooster",
    "animals/mammals/bovines/sheep.png": "sheep",
    "animals/mammals/bovines/sheep_lamb.png": "sheep",
    "animals/mammals/rodents/squirrel.png": "squirrel",
    "animals/mammals/cats/tiger.png": "tiger",
    "animals/mammals/cats/tiger_sumatran.png": "tiger",
    "hobbies/music/string/violin.png": "violin",
}

# Real recording (path under the stamps folder, named like its stamp) -> class key. Spoken
# descriptions (``*_desc*.ogg``) are never used. A ``.wav`` or ``.flac`` file of the same stem is
# accepted in place of the ``.ogg`` (tests build such folders).
SOUND_CLASSES: Dict[str, str] = {
    "hobbies/music/wind/bassoon.ogg": "bassoon",
    "animals/birds/crow.ogg": "bird",
    "animals/birds/blackbird.ogg": "bird",
    "hobbies/music/string/cello.ogg": "cello",
    "animals/mammals/bovines/cow.ogg": "cow",
    "animals/mammals/bovines/cow_white.ogg": "cow",
    "animals/mammals/bovines/bull.ogg": "cow",
    "animals/mammals/dogs/dog.ogg": "dog",
    "animals/mammals/equines/donkey.ogg": "donkey",
    "hobbies/music/percussion/drumkit.ogg": "drum",
    "hobbies/music/percussion/drum_tomtom_floor.ogg": "drum",
    "animals/birds/duck.ogg": "duck",
    "animals/birds/drake.ogg": "duck",
    "animals/mammals/elephant.ogg": "elephant",
    "vehicles/emergency/firetruck.ogg": "emergency-car",
    "animals/amphibians/frog.ogg": "frog",
    "animals/mammals/bovines/goat.ogg": "goat",
    "animals/mammals/bovines/mountaingoat.ogg": "goat",
    "animals/birds/gander.ogg": "goose",
    "animals/birds/hen.ogg": "hen",
    "animals/mammals/equines/horse.ogg": "horse",
    "animals/mammals/cats/lion.ogg": "lion",
    "animals/mammals/pig.ogg": "pig",
    "animals/mammals/pig_golden.ogg": "pig",
    "animals/mammals/pig_golden2.ogg": "pig",
    "animals/birds/rooster.ogg": "rooster",
    "animals/mammals/bovines/sheep.ogg": "sheep",
    "animals/mammals/bovines/sheep_lamb.ogg": "sheep",
    "animals/mammals/rodents/squirrel.ogg": "squirrel",
    "animals/mammals/cats/tiger.ogg": "tiger",
    "hobbies/music/string/violin.ogg": "violin",
}

# Default backgrounds: real colour and grey photographs without any object of the class list
# (opencv-doc's squirrel, dog, robin and baboon pictures are left out on purpose).
OPENCV_BACKGROUNDS: Tuple[str, ...] = (
    "data/aero1.jpg",
    "data/aero3.jpg",
    "data/aloeL.jpg",
    "data/board.jpg",
    "data/building.jpg",
    "data/fruits.jpg",
    "data/graf1.png",
    "data/home.jpg",
    "data/leuvenA.jpg",
    "data/leuvenB.jpg",
    "data/rubberwhale1.png",
    "data/stuff.jpg",
    "alphamat/input_images/plant.jpg",
    "hfs/data/001.jpg",
    "hfs/data/002.jpg",
    "reg/home.png",
    "text/scenetext02.jpg",
    "text/scenetext03.jpg",
    "text/scenetext04.jpg",
    "text/scenetext05.jpg",
    "text/scenetext06.jpg",
)
SKIMAGE_BACKGROUNDS: Tuple[str, ...] = (
    "brick.png",
    "coffee.png",
    "grass.png",
    "gravel.png",
    "rocket.jpg",
)

SETUP_HINT = (
    "install the media packages with `bash scripts/setup.sh --media` (or `sudo apt-get install "
    "tuxpaint-stamps-default opencv-doc`), or point --stamps-dir / --backgrounds-dir at folders "
    "laid out the same way"
)


class MediaError(RuntimeError):
    """The media needed to build the benchmark are missing; the message says how to get them."""


@dataclass(frozen=True)
class MediaIndex:
    """The media files of every class, sorted so that sampling from them is deterministic."""

    stamps: Dict[str, Tuple[str, ...]]  # class key -> stamp PNG paths
    sounds: Dict[str, Tuple[str, ...]]  # class key -> recording paths
    backgrounds: Tuple[str, ...]  # background photograph paths
    roots: Tuple[Tuple[str, str], ...] = ()  # (folder, short name) used by name()

    def name(self, path: str) -> str:
        """A short, machine-independent name of a media file (relative to its folder)."""
        for folder, short in self.roots:
            if path.startswith(folder + os.sep):
                rel = os.path.relpath(path, folder)
                return f"{short}/{rel}" if short else rel
        return os.path.basename(path)


def _skimage_data_dir() -> Optional[Path]:
    try:
        import skimage
    except ImportError:
        return None
    return Path(skimage.__file__).resolve().parent / "data"


def default_background_paths() -> List[Path]:
    """The curated opencv-doc and scikit-image photographs (MediaError without opencv-doc)."""
    if not OPENCV_EXAMPLES_DIR.is_dir():
        raise MediaError(
            f"background photographs not found: {OPENCV_EXAMPLES_DIR} is missing (Debian package "
            f"opencv-doc); {SETUP_HINT}"
        )
    paths = [OPENCV_EXAMPLES_DIR / p for p in OPENCV_BACKGROUNDS]
    skimage_dir = _skimage_data_dir()
    if skimage_dir is not None:
        paths += [skimage_dir / p for p in SKIMAGE_BACKGROUNDS]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise MediaError(f"background photographs missing: {missing[:5]}; {SETUP_HINT}")
    return paths


def _find_sound(stamps_dir: Path, rel: str) -> Optional[Path]:
    stem = (stamps_dir / rel).with_suffix("")
    for suffix in SOUND_SUFFIXES:
        if stem.with_suffix(suffix).is_file():
            return stem.with_suffix(suffix)
    return None


def index_media(
    class_keys: Sequence[str],
    stamps_dir: Optional[os.PathLike] = None,
    backgrounds_dir: Optional[os.PathLike] = None,
) -> MediaIndex:
    """Find the stamps, recordings and backgrounds of every class, or raise MediaError.

    Args:
        class_keys: the classes to build (keys of the class list, background excluded).
        stamps_dir: a folder laid out like ``/usr/share/tuxpaint/stamps`` (default: that folder).
        backgrounds_dir: a folder whose images (searched recursively) serve as backgrounds
            (default: the curated opencv-doc and scikit-image photographs).
    """
    root = Path(stamps_dir) if stamps_dir is not None else DEFAULT_STAMPS_DIR
    if not root.is_dir():
        raise MediaError(
            f"stamp folder {root} not found (Debian package tuxpaint-stamps-default); {SETUP_HINT}"
        )
    stamps: Dict[str, List[str]] = {k: [] for k in class_keys}
    sounds: Dict[str, List[str]] = {k: [] for k in class_keys}
    for rel, key in STAMP_CLASSES.items():
        if key in stamps and (root / rel).is_file():
            stamps[key].append(str(root / rel))
    for rel, key in SOUND_CLASSES.items():
        path = _find_sound(root, rel) if key in sounds else None
        if path is not None:
            sounds[key].append(str(path))
    unknown = sorted(set(class_keys) - set(STAMP_CLASSES.values()))
    if unknown:
        raise MediaError(f"no stamp is mapped to the classes {unknown} (see STAMP_CLASSES)")
    incomplete = sorted(k for k in class_keys if not stamps[k] or not sounds[k])
    if incomplete:
        raise MediaError(
            f"{root} lacks the stamp photograph or recording of the classes {incomplete}; "
            f"{SETUP_HINT}"
        )

    roots = [(str(root), "")]
    if backgrounds_dir is None:
        backgrounds = [str(p) for p in default_background_paths()]
        roots.append((str(OPENCV_EXAMPLES_DIR), "opencv-doc"))
        skimage_dir = _skimage_data_dir()
        if skimage_dir is not None:
            roots.append((str(skimage_dir), "skimage"))
    else:
        bg_root = Path(backgrounds_dir)
        if not bg_root.is_dir():
            raise MediaError(f"backgrounds folder {bg_root} not found")
        backgrounds = sorted(
            str(p) for p in bg_root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not backgrounds:
            raise MediaError(f"no .jpg/.png image found under {bg_root}")
        roots.append((str(bg_root), "backgrounds"))
    return MediaIndex(
        stamps={k: tuple(sorted(v)) for k, v in stamps.items()},
        sounds={k: tuple(sorted(v)) for k, v in sounds.items()},
        backgrounds=tuple(backgrounds),
        roots=tuple(roots),
    )


@lru_cache(maxsize=None)
def load_stamp(path: str) -> np.ndarray:
    """Read a stamp as RGBA ``(h, w, 4)`` uint8, cropped to its alpha channel's bounding box."""
    from PIL import Image

    with Image.open(path) as im:
        rgba = np.asarray(im.convert("RGBA"))
    ys, xs = np.nonzero(rgba[..., 3] >= 128)
    if len(ys) == 0:
        raise MediaError(f"{path}: the stamp's alpha channel is empty (no object mask)")
    return np.ascontiguousarray(rgba[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])


@lru_cache(maxsize=None)
def load_background(path: str) -> np.ndarray:
    """Read a background photograph as RGB ``(H, W, 3)`` uint8 (grey images are replicated)."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _compact_silence(wave: np.ndarray, sr: int, keep_gap_s: float = 0.15) -> np.ndarray:
    """Drop leading/trailing silence and shorten inner pauses to ``keep_gap_s``.

    Silence is a 20 ms window more than 35 dB below the loudest window. Without this, a looped
    recording with long pauses (blackbird, duck) could leave a labelled second nearly silent.
    """
    hop = max(1, int(0.02 * sr))
    n = len(wave) // hop
    if n == 0:
        return wave
    rms = np.sqrt(np.mean(wave[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    active = 20 * np.log10(rms) > 20 * np.log10(rms.max()) - 35
    keep = active.copy()
    max_gap = int(round(keep_gap_s / 0.02))
    run_start = None
    for i in range(n + 1):
        if i < n and not active[i]:
            run_start = i if run_start is None else run_start
            continue
        if run_start is not None:
            inner = run_start > 0 and i < n and active[:run_start].any()
            if inner:
                keep[run_start : run_start + max_gap] = True
            run_start = None
    mask = np.repeat(keep, hop)
    return wave[: n * hop][mask]


@lru_cache(maxsize=None)
def load_sound(path: str, sample_rate: int) -> np.ndarray:
    """Read a recording as mono float32 at ``sample_rate``, silences compacted, peak 1.0.

    Decoding uses soundfile (ogg, wav, flac); resampling uses torchaudio.functional.resample.
    """
    import soundfile as sf
    import torch
    import torchaudio.functional as AF

    data, sr = sf.read(path, dtype="float32", always_2d=True)
    wave = data.mean(axis=1)
    if sr != sample_rate:
        wave = AF.resample(torch.from_numpy(wave), sr, sample_rate).numpy()
    wave = _compact_silence(wave.astype(np.float32), sample_rate)
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    if peak < 1e-4:
        raise MediaError(f"{path}: the recording is silent")
    return (wave / peak).astype(np.float32)
