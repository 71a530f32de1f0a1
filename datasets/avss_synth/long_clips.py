"""AVSS-Synth long clips: the same objects for a whole video while their sounds start and stop.

For the video-inference benchmark (windows and tracks, docs/RESULTS.md). A long clip lasts
``N`` seconds at the segmented rate (one frame per second, as AVSBench), holds 2-3 objects of
distinct classes that stay visible and drift for the whole clip, and each object sounds in
alternating on / off stretches of several seconds (its label is background while it is silent).
Reuses the media and the pasting of the 5-second generator (``media.py``, ``objects.py``); its
object sizes, gains and white noise are those of the retired AVSS-Synth v1.

Layout under ``root``::

    metadata.csv                uid, a_obj, split, num_frames
    long_info.jsonl             one JSON record per clip: objects, media, on / off stretches
    <uid>/frames/<t>.jpg        t = 0..N-1
    <uid>/labels_rgb/<t>.png    palette label maps of every frame (class index of sounding pixels)
    <uid>/audio.wav             mono PCM-16, N seconds
    manifest.json               sha256 of every file, the versions used, the fingerprint

Shape letters: ``N`` frames (= seconds) of a clip, ``H x W`` frame size.
"""

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ovavss_d2.data.class_lists import load_class_list
from ovavss_d2.data.datasets.avsbench_format import (
    make_clip_dirs,
    write_audio,
    write_frame,
    write_label,
    write_metadata,
)

from .build import CLASS_LIST_FILE
from .manifest import MANIFEST, media_hashes, write_manifest
from .media import MediaIndex, index_media, load_background, load_sound, load_stamp
from .objects import SPEED, TARGET_RMS_DB, alpha_paste

logger = logging.getLogger(__name__)

LONG_SPLITS = ("val", "test")
DEFAULT_LONG_CLIPS = {"val": 2, "test": 6}
DEFAULT_SECONDS = (30, 40)  # clip length range, seconds (inclusive)
NUM_OBJECTS = (2, 3)  # objects per clip (inclusive), all of distinct classes
STRETCH_SECONDS = {True: (4, 12), False: (2, 7)}  # length of sounding / silent stretches
FADE_SECONDS = 0.02
OBJECT_SIZE = (0.32, 0.52)  # sqrt(object area) / min(H, W), times 0.85
GAIN_DB = (-9.0, 0.0)  # per-source gain after loudness normalisation
NOISE_DB = (-55.0, -42.0)  # RMS of the added white noise, dBFS
PEAK = 0.89  # the mix is scaled down to this peak if it would exceed it
JPEG_QUALITY = 90
LONG_OUTPUTS = ("metadata.csv", "long_info.jsonl", MANIFEST)


@dataclass
class LongObject:
    """One object of a long clip: its look, its path and when it sounds."""

    key: str
    stamp: str
    flip: bool
    sound: str
    gain_db: float
    sound_offset: float
    centers: List[Tuple[float, float]]  # (N,) centre (x, y) in pixels
    sizes: List[float]  # (N,) sqrt(area) in pixels
    sounding: List[bool]  # (N,) whether it is heard in second t


@dataclass
class LongClipPlan:
    """Everything random about one long clip."""

    uid: str
    split: str
    num_frames: int
    background: str
    crop: Tuple[int, int, int, int]  # (x0, y0, w, h)
    objects: List[LongObject] = field(default_factory=list)  # bottom to top
    noise_db: float = -50.0
    noise_seed: int = 0


def _on_off(rng: np.random.Generator, num_frames: int) -> List[bool]:
    """Alternating sounding / silent stretches, starting sounding or not at random."""
    state, out = bool(rng.random() < 0.7), []
    while len(out) < num_frames:
        low, high = STRETCH_SECONDS[state]
        out += [state] * int(rng.integers(low, high + 1))
        state = not state
    return out[:num_frames]


def _motion(rng, stamp_hw, size, num_frames) -> Tuple[List[Tuple[float, float]], List[float]]:
    """A slow drift with bounces, the object kept inside the frame."""
    width, height = size
    short = min(width, height)
    h, w = stamp_hw
    aspect = np.sqrt(w / h)
    side = rng.uniform(*OBJECT_SIZE) * short * 0.85
    side = min(side, 0.9 * width / aspect, 0.9 * height * aspect)
    half = np.array([side * aspect, side / aspect]) / 2
    low, high = half, np.maximum(np.array([width, height]) - half, half)
    pos = rng.uniform(low, high)
    angle = rng.uniform(0, 2 * np.pi)
    velocity = np.array([np.cos(angle), np.sin(angle)]) * rng.uniform(*SPEED) * short
    centers = []
    for _ in range(num_frames):
        centers.append((round(float(pos[0]), 2), round(float(pos[1]), 2)))
        pos = pos + velocity
        for axis in range(2):
            if pos[axis] < low[axis] or pos[axis] > high[axis]:
                velocity[axis] = -velocity[axis]
                pos[axis] = np.clip(pos[axis], low[axis], high[axis])
    return centers, [round(float(side), 2)] * num_frames


def sample_long_clip(
    rng: np.random.Generator,
    uid: str,
    split: str,
    pool: Sequence[str],
    media: MediaIndex,
    size: Tuple[int, int],
    seconds: Tuple[int, int] = DEFAULT_SECONDS,
) -> LongClipPlan:
    """Sample the plan of one long clip (``size`` = ``(W, H)``)."""
    num_frames = int(rng.integers(seconds[0], seconds[1] + 1))
    count = int(rng.integers(NUM_OBJECTS[0], NUM_OBJECTS[1] + 1))
    keys = [pool[i] for i in rng.permutation(len(pool))[:count]]
    background = media.backgrounds[int(rng.integers(len(media.backgrounds)))]
    bg_h, bg_w = load_background(background).shape[:2]
    width, height = size
    crop_w = int(min(bg_w, bg_h * width / height) * np.sqrt(rng.uniform(0.5, 1.0)))
    crop_h = max(1, int(crop_w * height / width))
    crop = (int(rng.integers(0, bg_w - crop_w + 1)), int(rng.integers(0, bg_h - crop_h + 1)))
    plan = LongClipPlan(uid, split, num_frames, background, (*crop, crop_w, crop_h))
    for key in keys:
        stamps, sounds = media.stamps[key], media.sounds[key]
        stamp = stamps[int(rng.integers(len(stamps)))]
        centers, sizes = _motion(rng, load_stamp(stamp).shape[:2], size, num_frames)
        plan.objects.append(
            LongObject(
                key=key,
                stamp=stamp,
                flip=bool(rng.random() < 0.5),
                sound=sounds[int(rng.integers(len(sounds)))],
                gain_db=round(float(rng.uniform(*GAIN_DB)), 2),
                sound_offset=round(float(rng.uniform(0, 2.0)), 3),
                centers=centers,
                sizes=sizes,
                sounding=_on_off(rng, num_frames),
            )
        )
    plan.noise_db = round(float(rng.uniform(*NOISE_DB)), 2)
    plan.noise_seed = int(rng.integers(2**31))
    return plan


def _stamp_at(obj: LongObject, t: int) -> Tuple[np.ndarray, int, int]:
    rgba = load_stamp(obj.stamp)
    h, w = rgba.shape[:2]
    scale = obj.sizes[t] / np.sqrt(h * w)
    new_w, new_h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    resized = cv2.resize(rgba, (new_w, new_h), interpolation=cv2.INTER_AREA)
    if obj.flip:
        resized = np.ascontiguousarray(resized[:, ::-1])
    cx, cy = obj.centers[t]
    return resized, int(round(cx - new_w / 2)), int(round(cy - new_h / 2))


def render_long_frame(
    plan: LongClipPlan, background: np.ndarray, t: int, class_index: Dict[str, int]
) -> Tuple[np.ndarray, np.ndarray]:
    """Frame ``t`` ``(H, W, 3)`` uint8 and its labels ``(H, W)`` int64 (0 where not sounding)."""
    canvas = background.copy()
    labels = np.zeros(canvas.shape[:2], dtype=np.int64)
    for obj in plan.objects:
        rgba, x, y = _stamp_at(obj, t)
        window = alpha_paste(canvas, rgba, x, y)
        if window is not None:
            frame_sl, stamp_sl = window
            value = class_index[obj.key] if obj.sounding[t] else 0
            labels[frame_sl][rgba[stamp_sl][..., 3] >= 128] = value
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8), labels


def mix_long_audio(plan: LongClipPlan, sample_rate: int) -> np.ndarray:
    """``(N * sample_rate,)`` float32: each source looped, gated by its stretches, plus noise."""
    n = plan.num_frames * sample_rate
    mix = np.zeros(n, dtype=np.float64)
    fade = max(1, int(FADE_SECONDS * sample_rate))
    ramp = np.ones(fade) / fade
    for obj in plan.objects:
        wave = load_sound(obj.sound, sample_rate).astype(np.float64)
        start = int(obj.sound_offset * sample_rate) % len(wave)
        track = np.tile(wave, (start + n) // len(wave) + 1)[start : start + n]
        track *= 10 ** ((TARGET_RMS_DB + obj.gain_db) / 20) / (np.sqrt(np.mean(track**2)) + 1e-9)
        gate = np.repeat(np.asarray(obj.sounding, dtype=np.float64), sample_rate)
        gate = np.convolve(gate, ramp, mode="same")  # short fades where a stretch starts or ends
        mix += track * gate[:n]
    mix += np.random.default_rng(plan.noise_seed).standard_normal(n) * 10 ** (plan.noise_db / 20)
    peak = np.abs(mix).max()
    if peak > PEAK:
        mix *= PEAK / peak
    return mix.astype(np.float32)


def write_long_clip(
    plan: LongClipPlan,
    root: os.PathLike,
    size: Tuple[int, int],
    sample_rate: int,
    class_index: Dict[str, int],
) -> None:
    """Write ``<root>/<uid>/{frames/<t>.jpg, labels_rgb/<t>.png, audio.wav}``, frame by frame."""
    clip_dir = make_clip_dirs(Path(root) / plan.uid)
    x0, y0, cw, ch = plan.crop
    bg = load_background(plan.background)[y0 : y0 + ch, x0 : x0 + cw]
    bg = cv2.resize(bg, tuple(size), interpolation=cv2.INTER_AREA).astype(np.float32)
    num_classes = max(class_index.values()) + 1
    for t in range(plan.num_frames):
        frame, labels = render_long_frame(plan, bg, t, class_index)
        write_frame(clip_dir, t, frame, quality=JPEG_QUALITY)
        write_label(clip_dir, t, labels, num_classes)
    write_audio(clip_dir, mix_long_audio(plan, sample_rate), sample_rate)


def _prepare_long_output(root: Path, force: bool) -> None:
    """Refuse a non-empty folder unless ``force``; with it, remove only what this builder writes."""
    if root.exists() and any(root.iterdir()):
        if not force:
            raise FileExistsError(
                f"{root} exists and is not empty; pass --force to replace the long clips"
            )
        for path in root.iterdir():
            if path.name in LONG_OUTPUTS:
                path.unlink()
            elif path.is_dir() and path.name.startswith("long_"):
                shutil.rmtree(path)
    root.mkdir(parents=True, exist_ok=True)


def build_avss_synth_long(
    root: os.PathLike,
    *,
    seed: int = 0,
    clips: Optional[Dict[str, int]] = None,
    seconds: Tuple[int, int] = DEFAULT_SECONDS,
    size: Tuple[int, int] = (224, 224),
    sample_rate: int = 16000,
    force: bool = False,
    media: Optional[MediaIndex] = None,
    manifest: bool = True,
) -> Dict[str, int]:
    """Build the long clips under ``root``; returns the number of clips per split.

    Every class of ``avss_synth.txt`` (base and novel) may appear, as in the 5-second val and test
    splits. The same seed (and media and library versions) gives identical files; ``manifest``
    writes ``manifest.json`` with their hashes and fingerprint.
    """
    classes = load_class_list(CLASS_LIST_FILE)
    keys = list(classes.names[1:])
    if media is None:
        media = index_media(keys)
    counts = dict(DEFAULT_LONG_CLIPS if clips is None else clips)
    root = Path(root)
    _prepare_long_output(root, force)
    class_index = {k: i for i, k in enumerate(classes.names)}
    rows, records = [], []
    for s, split in enumerate(LONG_SPLITS):
        for i in range(counts.get(split, 0)):
            uid = f"long_{split}_{i:03d}"
            rng = np.random.default_rng([seed, 100 + s, i])
            plan = sample_long_clip(rng, uid, split, keys, media, size, seconds)
            write_long_clip(plan, root, size, sample_rate, class_index)
            a_obj = sorted({o.key for o in plan.objects}, key=class_index.__getitem__)
            rows.append(
                {
                    "uid": uid,
                    "a_obj": "_".join(a_obj),
                    "split": split,
                    "num_frames": plan.num_frames,
                }
            )
            record = asdict(plan)
            record["background"] = media.name(plan.background)
            for obj in record["objects"]:
                obj["stamp"], obj["sound"] = media.name(obj["stamp"]), media.name(obj["sound"])
            records.append(record)
            logger.info("%s: %d s, %s", uid, plan.num_frames, rows[-1]["a_obj"])
    write_metadata(root, rows, columns=("uid", "a_obj", "split", "num_frames"))
    with open(root / "long_info.jsonl", "w") as f:
        for record in records:
            f.write(json.dumps(record, sort_keys=True) + "\n")
    if manifest:
        arguments = {
            "seed": seed,
            "clips": {split: counts.get(split, 0) for split in LONG_SPLITS},
            "seconds": list(seconds),
            "size": list(size),
            "sample_rate": sample_rate,
        }
        inputs = [p for v in media.stamps.values() for p in v]
        inputs += [p for v in media.sounds.values() for p in v] + list(media.backgrounds)
        write_manifest(root, "avss_synth_long", arguments, media_hashes(inputs, media.name))
    return {split: counts.get(split, 0) for split in LONG_SPLITS}
