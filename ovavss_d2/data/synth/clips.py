"""One AVSS-Synth clip: sample its plan, render its frames and labels, mix its audio, write it.

Shape letters: ``T`` frames (= seconds) per clip, ``H x W`` frame size, ``N`` audio samples.

A clip is fully described by a :class:`ClipPlan`, sampled from a NumPy generator seeded per clip,
so a clip does not depend on which worker builds it or in which order.
"""

import io
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .media import MediaIndex, load_background, load_sound, load_stamp

NUM_FRAMES = 5  # frames per clip, one per second (AVSBench v1s / v1m)
P_SINGLE_SOURCE = 0.5  # share of single-source (v1s) clips; the others have 2-3 sources (v1m)
P_THREE_SOURCES = 0.4  # among multi-source clips
DISTRACTOR_PROBS = (0.4, 0.4, 0.2)  # P(0, 1, 2 visible silent objects of other classes)
P_STOP = 0.35  # chance that a source of a multi-source clip stops for one second
OBJECT_SIZE = (0.32, 0.52)  # sqrt(object area) as a fraction of min(H, W)
SPEED = (0.01, 0.05)  # motion per frame as a fraction of min(H, W)
MIN_VISIBLE = 0.5  # every sounding object keeps this share of its pixels visible in every frame
GAIN_DB = (-9.0, 0.0)  # per-source gain after loudness normalisation
NOISE_DB = (-55.0, -42.0)  # RMS of the added white noise, dBFS
TARGET_RMS_DB = -20.0  # per-source loudness before the random gain
PEAK = 0.89  # the mix is scaled down to this peak if it would exceed it
JPEG_QUALITY = 90


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
    silent_second: Optional[int] = None  # the second in which the sound stops, if any
    gain_db: float = 0.0
    sound_offset: float = 0.0  # start position in the looped recording, seconds
    sound_gap: float = 0.0  # pause between repetitions of the recording, seconds
    silent_seconds: List[int] = field(default_factory=list)  # v2: late start / early stop

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
    crop: Tuple[int, int, int, int]  # (x0, y0, w, h) crop of the background
    bg_flip: bool
    objects: List[ObjectPlan] = field(default_factory=list)
    noise_db: float = -50.0
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
    size_range: Optional[Tuple[float, float]] = None,
) -> Tuple[List[Tuple[float, float]], List[float]]:
    """Start point, drift and size of one object over the T frames, kept inside the frame.

    ``size_range``: sqrt(area) / min(H, W) range, drawn uniformly (default ``OBJECT_SIZE``); a
    v2 range is drawn log-uniformly by the caller and passed as ``(s, s)``.
    """
    width, height = size
    short = min(width, height)
    h, w = stamp_hw
    base = rng.uniform(*(size_range or OBJECT_SIZE)) * short
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
    p_single: float = P_SINGLE_SOURCE,
    p_three: float = P_THREE_SOURCES,
    distractor_probs: Sequence[float] = DISTRACTOR_PROBS,
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


def sample_clip(
    rng: np.random.Generator,
    uid: str,
    split: str,
    pool: Sequence[str],
    first_key: str,
    media: MediaIndex,
    size: Tuple[int, int],
) -> ClipPlan:
    """Sample the plan of one clip.

    Args:
        rng: the clip's own generator.
        uid, split: clip folder name and split.
        pool: class keys allowed in this clip, as sources and as distractors.
        first_key: the first sounding class (the caller balances classes over a split).
        media: the media files of every class.
        size: ``(W, H)`` of the frames.
    """
    subset, keys, num_sources = sample_object_keys(rng, pool, first_key)

    background = _pick(rng, media.backgrounds)
    bg_h, bg_w = load_background(background).shape[:2]
    width, height = size
    aspect = width / height
    crop_w = min(bg_w, bg_h * aspect) * np.sqrt(rng.uniform(0.5, 1.0))
    crop_h = crop_w / aspect
    crop_w, crop_h = max(1, int(round(crop_w))), max(1, int(round(crop_h)))
    x0 = int(rng.integers(0, bg_w - crop_w + 1))
    y0 = int(rng.integers(0, bg_h - crop_h + 1))
    plan = ClipPlan(
        uid, split, subset, background, (x0, y0, crop_w, crop_h), bool(rng.random() < 0.5)
    )

    for i, key in enumerate(keys):
        sounding = i < num_sources
        obj = ObjectPlan(
            key, sounding, _pick(rng, media.stamps[key]), bool(rng.random() < 0.5), [], []
        )
        if sounding:
            obj.sound = _pick(rng, media.sounds[key])
            obj.gain_db = round(float(rng.uniform(*GAIN_DB)), 2)
            obj.sound_offset = round(float(rng.uniform(0, 2.0)), 3)
            obj.sound_gap = round(float(rng.uniform(0, 0.15)), 3)
        plan.objects.append(obj)
    if num_sources > 1:
        # one-second stops, keeping at least one source audible in every second
        for obj in plan.objects[:num_sources]:
            if rng.random() < P_STOP:
                t = int(rng.integers(NUM_FRAMES))
                if any(o.sounding_at(t) for o in plan.objects[:num_sources] if o is not obj):
                    obj.silent_second = t
    order = rng.permutation(len(plan.objects))  # occlusion order, bottom to top
    plan.objects = [plan.objects[i] for i in order]

    best, best_score = None, -1.0
    for _ in range(30):  # re-sample the layout until every sounding object stays visible
        for obj in plan.objects:
            obj.centers, obj.sizes = _sample_motion(rng, load_stamp(obj.stamp).shape[:2], size)
        score = min_visible_fraction(plan, size)
        if score > best_score:
            best, best_score = [(o.centers, o.sizes) for o in plan.objects], score
        if score >= MIN_VISIBLE:
            break
    for obj, (centers, sizes) in zip(plan.objects, best):
        obj.centers, obj.sizes = centers, sizes

    plan.noise_db = round(float(rng.uniform(*NOISE_DB)), 2)
    plan.noise_seed = int(rng.integers(2**31))
    return plan


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


def render_clip(
    plan: ClipPlan, size: Tuple[int, int], class_index: Dict[str, int]
) -> Tuple[np.ndarray, np.ndarray]:
    """Composite the frames and build the label maps.

    Returns:
        frames: ``(T, H, W, 3)`` uint8 RGB.
        labels: ``(T, H, W)`` int64 class indices; a pixel takes the class of its top-most object
            if that object sounds in that second, else 0 (background, silent objects, distractors).
    """
    width, height = size
    x0, y0, cw, ch = plan.crop
    bg = load_background(plan.background)[y0 : y0 + ch, x0 : x0 + cw]
    interp = cv2.INTER_AREA if cw > width else cv2.INTER_LINEAR
    bg = cv2.resize(bg, (width, height), interpolation=interp).astype(np.float32)
    if plan.bg_flip:
        bg = bg[:, ::-1]
    frames = np.empty((NUM_FRAMES, height, width, 3), dtype=np.uint8)
    labels = np.zeros((NUM_FRAMES, height, width), dtype=np.int64)
    for t in range(NUM_FRAMES):
        canvas = bg.copy()
        paste_objects(canvas, labels[t], plan.objects, t, class_index)
        frames[t] = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    return frames, labels


def mix_audio(plan: ClipPlan, sample_rate: int) -> np.ndarray:
    """The clip's soundtrack, ``(N,)`` float32 with N = T * sample_rate.

    Each source loops its recording (with a short pause between repetitions) from a random offset,
    is normalised to the same RMS, takes its random gain, and is muted (20 ms fades) in the second
    in which it stops. White noise is added; the mix is scaled down if it would clip.
    """
    n = NUM_FRAMES * sample_rate
    mix = np.zeros(n, dtype=np.float64)
    fade = max(1, int(0.02 * sample_rate))
    for obj in plan.objects:
        if not obj.sounding:
            continue
        wave = load_sound(obj.sound, sample_rate).astype(np.float64)
        unit = np.concatenate([wave, np.zeros(int(round(obj.sound_gap * sample_rate)))])
        start = int(round(obj.sound_offset * sample_rate)) % len(unit)
        reps = (start + n) // len(unit) + 1
        track = np.tile(unit, reps)[start : start + n]
        rms = np.sqrt(np.mean(track**2)) + 1e-9
        track *= 10 ** ((TARGET_RMS_DB + obj.gain_db) / 20) / rms
        if obj.silent_second is not None:
            envelope = np.ones(n)
            a, b = obj.silent_second * sample_rate, (obj.silent_second + 1) * sample_rate
            envelope[a:b] = 0
            if a > 0:
                envelope[max(0, a - fade) : a] = np.linspace(1, 0, min(fade, a), endpoint=False)
            if b < n:
                envelope[b : b + fade] = np.linspace(0, 1, min(fade, n - b), endpoint=False)
            track *= envelope
        mix += track
    noise_rng = np.random.default_rng(plan.noise_seed)
    mix += noise_rng.standard_normal(n) * 10 ** (plan.noise_db / 20)
    peak = np.abs(mix).max()
    if peak > PEAK:
        mix *= PEAK / peak
    return mix.astype(np.float32)


def _encode_png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def write_clip(
    plan: ClipPlan,
    root: os.PathLike,
    size: Tuple[int, int],
    sample_rate: int,
    class_index: Dict[str, int],
) -> None:
    """Write ``<root>/<subset>/<uid>/{frames/<t>.jpg, labels_rgb/<t>.png, audio.wav}``."""
    import soundfile as sf
    from PIL import Image

    from ..class_lists import encode_label_rgb

    clip_dir = Path(root) / plan.subset / plan.uid
    (clip_dir / "frames").mkdir(parents=True, exist_ok=True)
    (clip_dir / "labels_rgb").mkdir(parents=True, exist_ok=True)
    frames, labels = render_clip(plan, size, class_index)
    for t in range(NUM_FRAMES):
        Image.fromarray(frames[t]).save(clip_dir / "frames" / f"{t}.jpg", quality=JPEG_QUALITY)
    num_classes = max(class_index.values()) + 1
    for t in plan.annotated_frames():
        rgb = encode_label_rgb(labels[t], num_classes)
        (clip_dir / "labels_rgb" / f"{t}.png").write_bytes(_encode_png(rgb))
    sf.write(clip_dir / "audio.wav", mix_audio(plan, sample_rate), sample_rate, subtype="PCM_16")


def describe(plan: ClipPlan, media: MediaIndex) -> Dict:
    """A JSON-able record of the plan, with media paths relative to their folders."""
    record = asdict(plan)
    record["background"] = media.name(plan.background)
    for obj in record["objects"]:
        obj["stamp"] = media.name(obj["stamp"])
        obj["sound"] = media.name(obj["sound"]) if obj["sound"] else None
        if not obj["silent_seconds"]:  # v2 only: v1 records stay as they were
            del obj["silent_seconds"]
    if record.get("visual") and record["visual"]["background"]:  # v2 (clips_v2.ClipPlanV2)
        record["visual"]["background"] = media.name(record["visual"]["background"])
    for comp in (record.get("audio") or {}).get("components", []):
        comp["files"] = [media.name(f) for f in comp["files"]]
    return record
