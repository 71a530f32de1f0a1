"""The objects of an AVSS-Synth clip: its plan, their motion, pasting and labels, its record.

Shape letters: ``T`` frames (= seconds) per clip, ``H x W`` frame size.

A clip is fully described by a plan (:class:`ClipPlan`, extended by ``clips_v2.ClipPlanV2``),
sampled from a NumPy generator seeded per clip, so a clip does not depend on which worker builds it
or in which order. The long clips (``long_clips.py``) reuse the pasting and the speed range.
"""

from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .media import MediaIndex, load_stamp

NUM_FRAMES = 5  # frames per clip, one per second (AVSBench v1s / v1m)
SPEED = (0.01, 0.05)  # motion per frame as a fraction of min(H, W)
TARGET_RMS_DB = -20.0  # per-source loudness before the random gain


@dataclass
class ObjectPlan:
    """One object of a clip; objects are listed bottom to top (later ones occlude earlier ones)."""

    key: str  # class key
    sounding: bool  # False for a distractor (never labelled, never heard)
    stamp: str  # stamp PNG path
    flip: bool  # mirrored horizontally
    centers: List[Tuple[float, float]]  # (T,) object centre (x, y) in pixels per frame
    sizes: List[float]  # (T,) sqrt(object area) in pixels per frame
    sound: Optional[str] = None  # recording path (sounding objects)
    silent_second: Optional[int] = None  # always None (AVSS-Synth v1's one silent second)
    gain_db: float = 0.0
    sound_offset: float = 0.0  # start position in the looped recording, seconds
    sound_gap: float = 0.0  # pause between repetitions of the recording, seconds
    silent_seconds: List[int] = field(default_factory=list)  # stop, late start, early stop

    def sounding_at(self, t: int) -> bool:
        """Whether the object is heard in second ``t`` (never for a distractor)."""
        return self.sounding and self.silent_second != t and t not in self.silent_seconds


@dataclass
class ClipPlan:
    """Everything random about one clip."""

    uid: str
    split: str
    subset: str  # "v1s" (one source) or "v1m" (2-3 sources)
    background: str  # background photograph path
    crop: Tuple[int, int, int, int]  # unused (AVSS-Synth v1's background crop), kept in records
    bg_flip: bool  # unused, as crop
    objects: List[ObjectPlan] = field(default_factory=list)
    noise_db: float = 0.0  # unused (AVSS-Synth v1's white noise), kept in records
    noise_seed: int = 0

    def sounding_keys(self, class_index: Dict[str, int]) -> List[str]:
        """Keys of the sounding classes, in class-list order (metadata ``a_obj``)."""
        return sorted((o.key for o in self.objects if o.sounding), key=class_index.__getitem__)

    def annotated_frames(self) -> List[int]:
        """AVSBench convention: single-source training clips only label frame 0."""
        if self.subset == "v1s" and self.split == "train":
            return [0]
        return list(range(NUM_FRAMES))


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _sample_motion(
    rng: np.random.Generator,
    stamp_hw: Tuple[int, int],
    size: Tuple[int, int],
    size_range: Tuple[float, float],
) -> Tuple[List[Tuple[float, float]], List[float]]:
    """Start point, drift and size of one object over the T frames, kept inside the frame.

    ``size_range``: sqrt(area) / min(H, W) range, drawn uniformly (v2 draws a size log-uniformly
    and passes it as ``(s, s)``).
    """
    width, height = size
    short = min(width, height)
    h, w = stamp_hw
    base = rng.uniform(*size_range) * short
    # an elongated stamp (bassoon, fire truck) must still fit: cap its longer side at 90%
    aspect = np.sqrt(w / h)
    base = min(base, 0.9 * width / aspect, 0.9 * height * aspect)
    angle = rng.uniform(0, 2 * np.pi)
    speed = rng.uniform(*SPEED) * short
    velocity = np.array([np.cos(angle), np.sin(angle)]) * speed
    growth = rng.uniform(-0.04, 0.04)
    centers, sizes = [], []
    for t in range(NUM_FRAMES):
        s = base * (1 + growth) ** t
        half = np.array([s * aspect, s / aspect]) / 2
        low, high = half, np.array([width, height]) - half
        if t == 0:
            pos = rng.uniform(low, np.maximum(high, low))
        else:
            pos = centers[-1] + velocity + rng.normal(0, 0.004 * short, 2)
            for axis in range(2):  # bounce off the borders
                if pos[axis] < low[axis] or pos[axis] > high[axis]:
                    velocity[axis] = -velocity[axis]
                    pos[axis] = np.clip(pos[axis], low[axis], max(low[axis], high[axis]))
        centers.append(np.asarray(pos, dtype=np.float64))
        sizes.append(float(s))
    return [(round(float(c[0]), 2), round(float(c[1]), 2)) for c in centers], [
        round(s, 2) for s in sizes
    ]


def sample_object_keys(
    rng: np.random.Generator,
    pool: Sequence[str],
    first_key: str,
    p_single: float,
    p_three: float,
    distractor_probs: Sequence[float],
) -> Tuple[str, List[str], int]:
    """AVSBench subset, object keys (sources first, then silent distractors) and source count."""
    subset = "v1s" if rng.random() < p_single else "v1m"
    num_sources = 1 if subset == "v1s" else (3 if rng.random() < p_three else 2)
    num_distractors = int(rng.choice(len(distractor_probs), p=distractor_probs))
    others = [k for k in pool if k != first_key]
    picked = rng.permutation(len(others))[: num_sources - 1 + num_distractors]
    keys = [first_key] + [others[i] for i in picked]
    num_sources = min(num_sources, len(keys))
    return subset, keys, num_sources


def _placed_stamp(obj: ObjectPlan, t: int) -> Tuple[np.ndarray, int, int]:
    """The object's RGBA stamp resized for frame t, and its top-left corner (x, y)."""
    rgba = load_stamp(obj.stamp)
    h, w = rgba.shape[:2]
    scale = obj.sizes[t] / np.sqrt(h * w)
    new_w, new_h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(rgba, (new_w, new_h), interpolation=interp)
    if obj.flip:
        resized = resized[:, ::-1]
    cx, cy = obj.centers[t]
    return resized, int(round(cx - new_w / 2)), int(round(cy - new_h / 2))


def _paste_window(x: int, y: int, w: int, h: int, width: int, height: int):
    """Slices of the frame and of the stamp where a stamp at (x, y) overlaps the frame."""
    fx0, fy0, fx1, fy1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
    if fx0 >= fx1 or fy0 >= fy1:
        return None
    frame_sl = (slice(fy0, fy1), slice(fx0, fx1))
    stamp_sl = (slice(fy0 - y, fy1 - y), slice(fx0 - x, fx1 - x))
    return frame_sl, stamp_sl


def alpha_paste(canvas: np.ndarray, rgba: np.ndarray, x: int, y: int):
    """Alpha-blend an RGBA stamp, top-left corner at (x, y), onto a float ``(H, W, 3)`` canvas in
    place; returns the overlap's (frame slices, stamp slices), or None where they do not overlap."""
    window = _paste_window(x, y, rgba.shape[1], rgba.shape[0], canvas.shape[1], canvas.shape[0])
    if window is None:
        return None
    frame_sl, stamp_sl = window
    part = rgba[stamp_sl].astype(np.float32)
    alpha = part[..., 3:] / 255.0
    canvas[frame_sl] = canvas[frame_sl] * (1 - alpha) + part[..., :3] * alpha
    return window


def paste_objects(
    canvas: np.ndarray,
    label: np.ndarray,
    objects: Sequence[ObjectPlan],
    t: int,
    class_index: Dict[str, int],
) -> None:
    """Paste the objects' stamps of second ``t`` into ``canvas`` in place, in order (later ones in
    front), and write their class where they sound (0 where silent) into ``label`` ``(H, W)``."""
    for obj in objects:
        rgba, x, y = _placed_stamp(obj, t)
        window = alpha_paste(canvas, rgba, x, y)
        if window is None:
            continue
        frame_sl, stamp_sl = window
        label[frame_sl][rgba[stamp_sl][..., 3] >= 128] = (
            class_index[obj.key] if obj.sounding_at(t) else 0
        )


def owner_maps(plan: ClipPlan, size: Tuple[int, int]) -> np.ndarray:
    """Which object is top-most at each pixel: ``(T, H, W)`` int, -1 where none."""
    width, height = size
    owners = np.full((NUM_FRAMES, height, width), -1, dtype=np.int64)
    for t in range(NUM_FRAMES):
        for i, obj in enumerate(plan.objects):
            rgba, x, y = _placed_stamp(obj, t)
            window = _paste_window(x, y, rgba.shape[1], rgba.shape[0], width, height)
            if window is not None:
                frame_sl, stamp_sl = window
                owners[t][frame_sl][rgba[stamp_sl][..., 3] >= 128] = i
    return owners


def min_visible_fraction(plan: ClipPlan, size: Tuple[int, int]) -> float:
    """Smallest visible share of a sounding object's full mask over objects and frames."""
    owners = owner_maps(plan, size)
    worst = 1.0
    for i, obj in enumerate(plan.objects):
        if not obj.sounding:
            continue
        for t in range(NUM_FRAMES):
            rgba = _placed_stamp(obj, t)[0]
            full = max(1, int((rgba[..., 3] >= 128).sum()))
            worst = min(worst, float((owners[t] == i).sum()) / full)
    return worst


def describe(plan: ClipPlan, media: MediaIndex) -> Dict:
    """A JSON-able record of the plan, with media paths relative to their folders."""
    record = asdict(plan)
    record["background"] = media.name(plan.background)
    for obj in record["objects"]:
        obj["stamp"] = media.name(obj["stamp"])
        obj["sound"] = media.name(obj["sound"]) if obj["sound"] else None
        if not obj["silent_seconds"]:  # as AVSS-Synth v1 records: the key only where not empty
            del obj["silent_seconds"]
    if record.get("visual") and record["visual"]["background"]:  # clips_v2.ClipPlanV2
        record["visual"]["background"] = media.name(record["visual"]["background"])
    for comp in (record.get("audio") or {}).get("components", []):
        comp["files"] = [media.name(f) for f in comp["files"]]
    return record
