"""One AVSS-Synth v2 clip: objects and recording conditions, frames, labels and audio tracks.

Shape letters: ``T`` frames (= seconds), ``H x W`` frame size, ``N`` audio samples.

The objects and labelling rules are those of ``objects.py`` (as in AVSS-Synth v1, now retired);
v2 draws, per clip: smaller and larger objects, up to three silent distractors that may occlude
the sources, sources that stop for a second, start late or stop early, a noise floor at a drawn
SNR (``conditions.AudioConditions``), real or procedural backgrounds of the split's own pool seen
by a panning / zooming camera, colour, blur and JPEG quality (``conditions.VisualConditions``).
The sources and the noise are kept as separate tracks, so that the same clip can be written at
any other SNR (the robustness variants).
"""

import os
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .backgrounds import apply_image_conditions, crop_frames, procedural_background
from .conditions import (
    SNR_RANGE,
    AudioConditions,
    NoiseComponent,
    VisualConditions,
    sample_audio_conditions,
    sample_visual_conditions,
)
from .media import MediaIndex, load_background, load_sound, load_stamp
from .noise import FADE_S, colored_noise, event_track, looped, talker_track
from .objects import (
    NUM_FRAMES,
    TARGET_RMS_DB,
    ClipPlan,
    ObjectPlan,
    _pick,
    _placed_stamp,
    _sample_motion,
    min_visible_fraction,
    paste_objects,
    sample_object_keys,
)
from .pools import PoolIndex
from .wide_pool import WidePool, sample_wide_keys

P_SINGLE_SOURCE = 0.5
P_THREE_SOURCES = 0.4
DISTRACTOR_PROBS = (0.25, 0.35, 0.25, 0.15)  # P(0..3 visible silent objects)
OBJECT_SIZE = (0.14, 0.55)  # sqrt(area) / min(H, W), log-uniform: about 2% to 30% of the frame
MIN_VISIBLE = 0.35  # sounding objects may be partly occluded, but keep this share visible
P_STOP = 0.25  # multi-source clips: a source is silent for one second
P_LATE_START = 0.15  # ... starts at second 1-2
P_EARLY_STOP = 0.15  # ... stops after second 2-3
GAIN_DB = (-10.0, 0.0)
PEAK = 0.89


@dataclass
class ClipPlanV2(ClipPlan):
    """A clip's objects plus its recording conditions (``crop`` and ``bg_flip`` are unused)."""

    visual: Optional[VisualConditions] = None
    audio: Optional[AudioConditions] = None
    pool_split: str = ""  # which held-out pool the background and noise came from
    object_areas: List[float] = field(default_factory=list)  # (objects,) area share, frame 0


def _draw_silences(rng: np.random.Generator, sources: Sequence[ObjectPlan]) -> None:
    """Stops, late starts and early stops, keeping one source audible in every second."""
    for obj in sources:
        r = rng.random()
        if r < P_STOP:
            silent = [int(rng.integers(NUM_FRAMES))]
        elif r < P_STOP + P_LATE_START:
            silent = list(range(int(rng.integers(1, 3))))
        elif r < P_STOP + P_LATE_START + P_EARLY_STOP:
            silent = list(range(int(rng.integers(3, 5)), NUM_FRAMES))
        else:
            continue
        others = [o for o in sources if o is not obj]
        if all(any(o.sounding_at(t) for o in others) for t in silent):
            obj.silent_seconds = silent


def sample_clip_v2(
    rng: np.random.Generator,
    uid: str,
    split: str,
    pool: Sequence[str],
    first_key: str,
    media: MediaIndex,
    pools: PoolIndex,
    size: Tuple[int, int],
    snr_range: Tuple[float, float] = SNR_RANGE,
    wide: Optional[WidePool] = None,
) -> ClipPlanV2:
    """Sample one v2 clip; backgrounds and noise come from ``pools`` of ``split``.

    ``wide``: draw objects from the wide pool too (``wide_pool.sample_wide_keys``) and add its
    recordings, but those of the clip's visible stamps, to the off-screen sounds; ``media`` must
    then hold the pool's stamps and recordings. None (val, test, the default) changes nothing."""
    if wide is None:
        subset, keys, num_sources = sample_object_keys(
            rng, pool, first_key, P_SINGLE_SOURCE, P_THREE_SOURCES, DISTRACTOR_PROBS
        )
    else:
        subset, keys, num_sources = sample_wide_keys(
            rng, pool, first_key, wide, P_SINGLE_SOURCE, P_THREE_SOURCES, DISTRACTOR_PROBS
        )

    plan = ClipPlanV2(uid, split, subset, "", (0, 0, 0, 0), False, pool_split=split)
    plan.visual = sample_visual_conditions(
        rng,
        pools.backgrounds[split],
        lambda p: load_background(p).shape[:2],
        size,
        NUM_FRAMES,
    )
    plan.background = plan.visual.background
    for i, key in enumerate(keys):
        obj = ObjectPlan(
            key, i < num_sources, _pick(rng, media.stamps[key]), bool(rng.random() < 0.5), [], []
        )
        if obj.sounding:
            obj.sound = _pick(rng, media.sounds[key])
            obj.gain_db = round(float(rng.uniform(*GAIN_DB)), 2)
            obj.sound_offset = round(float(rng.uniform(0, 2.0)), 3)
            obj.sound_gap = round(float(rng.uniform(0, 0.3)), 3)
        plan.objects.append(obj)
    if num_sources > 1:
        _draw_silences(rng, plan.objects[:num_sources])
    order = rng.permutation(len(plan.objects))  # occlusion order, bottom to top
    plan.objects = [plan.objects[i] for i in order]

    log_lo, log_hi = np.log(OBJECT_SIZE[0]), np.log(OBJECT_SIZE[1])
    best, best_score = None, -1.0
    for _ in range(30):  # re-sample the layout until every sounding object stays visible enough
        for obj in plan.objects:
            s = float(np.exp(rng.uniform(log_lo, log_hi)))
            obj.centers, obj.sizes = _sample_motion(
                rng, load_stamp(obj.stamp).shape[:2], size, (s, s)
            )
        score = min_visible_fraction(plan, size)
        if score > best_score:
            best, best_score = [(o.centers, o.sizes) for o in plan.objects], score
        if score >= MIN_VISIBLE:
            break
    for obj, (centers, sizes) in zip(plan.objects, best):
        obj.centers, obj.sizes = centers, sizes
    area = float(size[0] * size[1])
    plan.object_areas = [
        round(float((_placed_stamp(o, 0)[0][..., 3] >= 128).sum()) / area, 4) for o in plan.objects
    ]
    offscreen = pools.offscreen[split]
    if wide is not None:  # a visible stamp's own recording never plays off-screen
        visible = {os.path.splitext(o.stamp)[0] for o in plan.objects}
        extra = offscreen + wide.offscreen
        offscreen = tuple(p for p in extra if os.path.splitext(p)[0] not in visible)
    plan.audio = sample_audio_conditions(
        rng, pools.speech[split], offscreen, float(NUM_FRAMES), snr_range
    )
    return plan


def render_clip_v2(
    plan: ClipPlanV2, size: Tuple[int, int], class_index: Dict[str, int]
) -> Tuple[np.ndarray, np.ndarray]:
    """Composite the frames (``objects.paste_objects`` labels) under the clip's visual conditions.

    Returns:
        frames: ``(T, H, W, 3)`` uint8 RGB; labels: ``(T, H, W)`` int64 class indices.
    """
    vis = plan.visual
    width, height = size
    if vis.background_kind == "photo":
        image = load_background(vis.background)
    else:
        image = procedural_background(vis.background_kind, vis.bg_seed, size)
    canvases = crop_frames(image, vis.crops, size, vis.bg_flip)
    labels = np.zeros((NUM_FRAMES, height, width), dtype=np.int64)
    for t in range(NUM_FRAMES):
        canvas = np.ascontiguousarray(canvases[t])
        paste_objects(canvas, labels[t], plan.objects, t, class_index)
        canvases[t] = canvas
    frames = apply_image_conditions(
        canvases, vis.brightness, vis.contrast, vis.saturation, vis.channel_gains, vis.blur_sigma
    )
    return frames, labels


def source_track(plan: ClipPlan, sample_rate: int) -> np.ndarray:
    """The sum of the sounding objects' recordings, ``(N,)`` float64, no noise, not limited.

    Each source loops its recording from a random offset (pauses between repetitions), is
    normalised to -20 dBFS RMS, takes its gain, and is muted (20 ms fades) in its silent seconds.
    """
    n = NUM_FRAMES * sample_rate
    mix = np.zeros(n)
    for obj in plan.objects:
        if not obj.sounding:
            continue
        wave = load_sound(obj.sound, sample_rate)
        track = looped(
            wave,
            n,
            int(round(obj.sound_offset * sample_rate)),
            int(round(obj.sound_gap * sample_rate)),
        )
        track *= 10 ** ((TARGET_RMS_DB + obj.gain_db) / 20) / (np.sqrt(np.mean(track**2)) + 1e-9)
        env = np.repeat([float(obj.sounding_at(t)) for t in range(NUM_FRAMES)], sample_rate)
        mix += track * smooth_edges(env, int(FADE_S * sample_rate))
    return mix


def smooth_edges(env: np.ndarray, fade: int) -> np.ndarray:
    """A 0/1 envelope whose steps become linear ramps of ``fade`` samples inside its 1-runs
    (the ends of the track count as continuing the first and last values)."""
    if fade <= 1:
        return env
    padded = np.concatenate([np.full(fade, env[0]), env, np.full(fade, env[-1])])
    c = np.concatenate([[0.0], np.cumsum(padded)])
    n = len(env)
    idx = np.arange(n) + fade
    causal = (c[idx + 1] - c[idx + 1 - fade]) / fade  # mean of the last `fade` samples
    anticausal = (c[idx + fade] - c[idx]) / fade  # mean of the next `fade` samples
    return np.minimum(causal, anticausal) * env


def noise_track(audio: AudioConditions, sample_rate: int) -> np.ndarray:
    """The clip's noise floor before SNR scaling: the components at their relative gains."""
    n = NUM_FRAMES * sample_rate
    total = np.zeros(n)
    for c in audio.components:
        if c.kind == "babble":
            track = talker_track(c.files, n, sample_rate, c.offset_s, c.gap_s)
        elif c.kind == "offscreen":
            track = event_track(c.files[0], n, sample_rate, c.start_s, c.end_s, c.offset_s)
        else:
            track = colored_noise(c.kind, n, c.seed)
        total += track * 10 ** (c.gain_db / 20)
    return total


def conditions_record(plan: ClipPlanV2, media: MediaIndex) -> Dict:
    """The clip's recording conditions for ``conditions.json`` (media as short names)."""
    vis = asdict(plan.visual)
    vis["background"] = media.name(vis["background"]) if vis["background"] else ""
    comps = []
    for c in plan.audio.components:
        d = asdict(c)
        d["files"] = [media.name(f) for f in c.files]
        comps.append(d)
    return {
        "split": plan.split,
        "pool": plan.pool_split,
        "subset": plan.subset,
        "snr_db": plan.audio.snr_db,
        "noise_kinds": plan.audio.kinds(),
        "noise": comps,
        "visual": vis,
        "objects": [
            {
                "key": o.key,
                "sounding": o.sounding,
                "stamp": media.name(o.stamp),
                "sound": media.name(o.sound) if o.sound else None,
                "area": a,
                "silent_seconds": sorted(set(o.silent_seconds) | ({o.silent_second} - {None})),
            }
            for o, a in zip(plan.objects, plan.object_areas)
        ],
    }


__all__ = [
    "ClipPlanV2",
    "NoiseComponent",
    "conditions_record",
    "noise_track",
    "render_clip_v2",
    "sample_clip_v2",
    "source_track",
]
