"""Reading a built AVSS-Synth root back: each clip's objects (silent ones included) and conditions.

Shape letters: ``O`` objects of a clip (bottom to top), ``T`` frames, ``H x W`` frame size.

The label maps hold only the objects that sound in each frame; the silent distractors and the
sources in their silent seconds are background there. ``synth_info.jsonl`` keeps every object's
stamp, motion and silences, so their masks are re-rendered here exactly as the builder pasted them
(``objects.owner_maps``); ``conditions.json`` gives the SNR and the noise kinds. The error-analysis
tool (``tools/analyze_errors.py``) reads both through :class:`SynthRecords`.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from .media import DEFAULT_STAMPS_DIR
from .objects import NUM_FRAMES, ClipPlan, ObjectPlan, _placed_stamp, owner_maps

__all__ = ["ClipRecord", "SynthRecords", "find_synth_root", "plan_from_record"]

INFO_FILE = "synth_info.jsonl"
CONDITIONS_FILE = "conditions.json"
SNR_BANDS = ((10.0, "< 10 dB"), (20.0, "10-20 dB"), (float("inf"), ">= 20 dB"))
# visible share of the least visible sounding object (over its frames): band edges
OCCLUSION_BANDS = ((0.6, "heavy (< 60 % visible)"), (0.95, "partial"), (1.01, "none (>= 95 %)"))


@dataclass
class ClipRecord:
    """What the tool needs of one clip beyond its labels."""

    silent_masks: np.ndarray  # bool (T, H, W): visible pixels of objects not sounding in frame t
    conditions: Dict[str, str]  # condition -> this clip's band (see ``SynthRecords.conditions``)


def find_synth_root(dataset_root: os.PathLike) -> Optional[Path]:
    """The build root holding ``synth_info.jsonl`` for a dataset root (the root itself, or the
    build above ``variants/test_<name>``); None for other datasets."""
    root = Path(dataset_root)
    for candidate in (root, root.parent.parent):
        if (candidate / INFO_FILE).is_file():
            return candidate
    return None


def plan_from_record(record: Dict, stamps_dir: os.PathLike) -> ClipPlan:
    """The :class:`ClipPlan` of a ``synth_info.jsonl`` record (stamp names made paths again)."""
    objects = [
        ObjectPlan(
            key=o["key"],
            sounding=bool(o["sounding"]),
            stamp=str(Path(stamps_dir) / o["stamp"]),
            flip=bool(o["flip"]),
            centers=[tuple(c) for c in o["centers"]],
            sizes=list(o["sizes"]),
            silent_second=o.get("silent_second"),
            silent_seconds=list(o.get("silent_seconds", [])),
        )
        for o in record["objects"]
    ]
    return ClipPlan(
        record["uid"], record["split"], record["subset"], "", (0, 0, 0, 0), False, objects
    )


def visible_shares(plan: ClipPlan, owners: np.ndarray) -> np.ndarray:
    """``(O, T)`` visible share of each object's full stamp mask (``min_visible_fraction``'s)."""
    shares = np.ones((len(plan.objects), NUM_FRAMES))
    for i, obj in enumerate(plan.objects):
        for t in range(NUM_FRAMES):
            full = max(1, int((_placed_stamp(obj, t)[0][..., 3] >= 128).sum()))
            shares[i, t] = float((owners[t] == i).sum()) / full
    return shares


def _band(value: float, bands) -> str:
    return next(name for edge, name in bands if value < edge)


class SynthRecords:
    """Silent-object masks and conditions of the clips of one AVSS-Synth root."""

    def __init__(self, root: os.PathLike, dataset_root: Optional[os.PathLike] = None):
        """
        Args:
            root: the build root (``synth_info.jsonl``, ``manifest.json``).
            dataset_root: the registered root whose ``conditions.json`` applies (a variant's
                records its own SNR); default ``root``.
        """
        root = Path(root)
        with open(root / INFO_FILE) as f:
            self.records = {r["uid"]: r for r in map(json.loads, f)}
        with open(Path(dataset_root or root) / CONDITIONS_FILE) as f:
            self.clip_conditions = json.load(f)
        stamps = None
        if (root / "manifest.json").is_file():
            with open(root / "manifest.json") as f:
                stamps = json.load(f).get("arguments", {}).get("stamps_dir")
        self.stamps_dir = Path(stamps) if stamps else DEFAULT_STAMPS_DIR

    def conditions(self, uid: str, shares: np.ndarray, plan: ClipPlan) -> Dict[str, str]:
        """Bands of the clip's SNR, off-screen sound, sources, occlusion and silent objects."""
        cond = self.clip_conditions.get(uid, {})
        snr = cond.get("snr_db")
        sounding = [i for i, o in enumerate(plan.objects) if o.sounding]
        silent = [o for o in plan.objects if not o.sounding]
        worst = min((float(shares[i].min()) for i in sounding), default=1.0)
        return {
            "SNR": "clean" if snr is None else _band(float(snr), SNR_BANDS),
            "off-screen sound": "yes" if "offscreen" in cond.get("noise_kinds", []) else "no",
            "sources": str(len(sounding)),
            "occlusion": _band(worst, OCCLUSION_BANDS),
            "silent objects": "none" if not silent else "1 or more",
        }

    def clip(self, uid: str, size: Tuple[int, int]) -> Optional[ClipRecord]:
        """The clip's record at frame size ``(W, H)``; None for a uid the build does not know."""
        record = self.records.get(uid)
        if record is None:
            return None
        plan = plan_from_record(record, self.stamps_dir)
        missing = [o.stamp for o in plan.objects if not os.path.isfile(o.stamp)]
        if missing:
            raise FileNotFoundError(
                f"{missing[0]}: stamp of clip {uid} not found (the build's stamps folder, "
                "tuxpaint-stamps-default); silent-object masks need it"
            )
        owners = owner_maps(plan, size)  # (T, H, W)
        silent = np.zeros(owners.shape, dtype=bool)
        for i, obj in enumerate(plan.objects):
            for t in range(NUM_FRAMES):
                if not obj.sounding_at(t):
                    silent[t] |= owners[t] == i
        shares = visible_shares(plan, owners)
        return ClipRecord(silent_masks=silent, conditions=self.conditions(uid, shares, plan))


def sounding_masks(plan: ClipPlan, size: Tuple[int, int]) -> List[np.ndarray]:
    """Per frame, the bool ``(O, H, W)`` visible masks of the objects sounding in it (tests compare
    them with the written label maps)."""
    owners = owner_maps(plan, size)
    return [
        np.stack([(owners[t] == i) & o.sounding_at(t) for i, o in enumerate(plan.objects)])
        for t in range(NUM_FRAMES)
    ]
