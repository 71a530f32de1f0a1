"""``AVSSDatasetMapper``: one AVSBench clip dict -> frames, audio patches, labels and set targets.

Shape letters: ``T`` frames taken from the clip, ``H x W`` frame size after augmentation, ``L``
STFT frames per audio patch (96), ``M`` mel bands (64), ``N`` classes present in the clip.
"""

import copy
import logging
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data import MetadataCatalog
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T
from detectron2.structures import Instances
from PIL import UnidentifiedImageError

from .audio import (
    AudioParams,
    frame_log_mel_patches,
    load_frame_log_mel_patches,
    prepare_waveform,
    read_audio,
)
from .augmentation import build_frame_augmentations, build_waveform_augmentation
from .labels import IGNORE_LABEL, read_label_map

logger = logging.getLogger(__name__)

__all__ = ["AVSSDatasetMapper", "sample_frame_indices", "MAPPERS", "build_dataset_mapper"]


def sample_frame_indices(
    num_frames: int,
    num_samples: int,
    annotated: Sequence[bool],
    rng: np.random.RandomState = np.random,
) -> List[int]:
    """Training frame sampling.

    A clip with more frames than ``num_samples`` gives a random contiguous window of
    ``num_samples`` frames, chosen among the windows holding at least one annotated frame (all
    windows when none does), so that v1s training clips (frame 0 annotated) always supervise. A clip
    with at most ``num_samples`` frames gives every frame plus ``num_samples - num_frames`` random
    repeats, in time order.

    Args:
        num_frames: frames in the clip.
        num_samples: frames to take (T).
        annotated: ``(num_frames,)`` which frames carry a label.
        rng: random source (default NumPy's global one, which Detectron2 seeds per worker).

    Returns:
        ``T`` sorted frame indices.
    """
    if num_samples >= num_frames:
        extra = rng.randint(0, num_frames, size=num_samples - num_frames).tolist()
        return sorted(list(range(num_frames)) + extra)
    starts = list(range(num_frames - num_samples + 1))
    useful = [s for s in starts if any(annotated[s : s + num_samples])]
    start = int(rng.choice(useful or starts))
    return list(range(start, start + num_samples))


class AVSSDatasetMapper:
    """Map a clip dict (docs/DESIGN.md) to model inputs, with one augmentation for the whole clip.

    Steps of ``__call__``:

    1. Deep-copy the dict; pick the frames: ``sample_frame_indices`` in training, all at test.
    2. Read the taken frames (``INPUT.FORMAT``) and their labels (palette RGB or index PNGs);
       unannotated frames get an all-ignore label; sizes are checked against the dict.
    3. Draw the augmentation once, from the first taken frame, and apply the same transforms
       (resize, crop, flip) to every frame and label (labels with nearest interpolation).
    4. Compute the log-mel patch of each taken frame's second from the clip's audio.
    5. Build the set-prediction targets: one mask over the clip per class present in the
       annotated taken frames. Binary datasets collapse every class to "sounding".

    Tensors are returned (not NumPy arrays) so that the DataLoader workers pass shared memory.
    """

    @configurable
    def __init__(
        self,
        is_train: bool = True,
        *,
        augmentations: List,
        image_format: str = "RGB",
        sampling_frame_num: int = 5,
        audio_params: AudioParams = AudioParams(),
        ignore_label: int = IGNORE_LABEL,
        label_num_classes: Optional[int] = None,
        waveform_augmentation: Optional[Callable] = None,
    ):
        """
        Args:
            is_train: sample ``sampling_frame_num`` frames (training) or take all frames (test).
            augmentations: Detectron2 augmentations, drawn once per clip.
            image_format: ``detection_utils.read_image`` format (``INPUT.FORMAT``).
            sampling_frame_num: frames per training clip (T); <= 0 takes every frame.
            audio_params: log-mel front-end parameters.
            ignore_label: label value of unannotated frames and pixels.
            label_num_classes: palette entries (``K+1``) of the label files, to reject colours
                beyond the class list; None accepts any colour of the 256-entry palette.
            waveform_augmentation: ``(N,) -> (N,)`` on the clip's mono waveform at the front-end
                rate, before the log-mel patches (``augmentation.WaveformAugmentation``).
        """
        self.is_train = is_train
        self.augmentations = T.AugmentationList(augmentations)
        self.image_format = image_format
        self.sampling_frame_num = sampling_frame_num
        self.audio_params = audio_params
        self.ignore_label = ignore_label
        self.label_num_classes = label_num_classes
        self.waveform_augmentation = waveform_augmentation
        mode = "training" if is_train else "inference"
        logger.info(f"[AVSSDatasetMapper] augmentations used in {mode}: {augmentations}")

    @classmethod
    def from_config(cls, cfg, is_train: bool = True) -> Dict:
        augs = utils.build_augmentation(cfg, is_train)  # [ResizeShortestEdge, RandomFlip (train)]
        if is_train and cfg.INPUT.CROP.ENABLED:
            augs.insert(1, T.RandomCrop(cfg.INPUT.CROP.TYPE, cfg.INPUT.CROP.SIZE))
        augs += build_frame_augmentations(cfg, is_train)  # INPUT.AUGMENT (off by default)
        names = cfg.DATASETS.TRAIN if is_train else cfg.DATASETS.TEST
        metas = [MetadataCatalog.get(n) for n in names]
        counts = [m.label_num_classes for m in metas if hasattr(m, "label_num_classes")]
        ignore = {m.ignore_label for m in metas if hasattr(m, "ignore_label")}
        if len(ignore) > 1:
            raise ValueError(f"datasets {list(names)} use different ignore labels {sorted(ignore)}")
        return {
            "is_train": is_train,
            "augmentations": augs,
            "image_format": cfg.INPUT.FORMAT,
            "sampling_frame_num": cfg.INPUT.SAMPLING_FRAME_NUM,
            "audio_params": AudioParams.from_config(cfg),
            "ignore_label": ignore.pop() if ignore else IGNORE_LABEL,
            # Several datasets: the largest palette bounds all of them.
            "label_num_classes": max(counts) if len(counts) == len(metas) and counts else None,
            "waveform_augmentation": build_waveform_augmentation(cfg, is_train),
        }

    def _read_frame(self, path: str) -> np.ndarray:
        try:
            image = utils.read_image(path, format=self.image_format)
        except FileNotFoundError:
            raise FileNotFoundError(f"frame not found: {path}") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise ValueError(f"{path}: cannot read frame image ({e})") from None
        return image

    def __call__(self, dataset_dict: dict) -> dict:
        """
        Args:
            dataset_dict: one clip dict (docs/DESIGN.md, "Dataset dicts").

        Returns:
            the dict's keys plus ``frame_indices`` (list[int]), ``images`` uint8 ``(T, 3, H, W)``,
            ``audio`` float32 ``(T, 1, L, M)``, ``sem_seg`` int64 ``(T, H, W)``, ``annotated`` bool
            ``(T,)`` and ``instances`` (``gt_classes`` int64 ``(N,)``, ``gt_masks`` bool
            ``(N, T, H, W)``).
        """
        d = copy.deepcopy(dataset_dict)  # the dict is modified below
        files, label_files = d["file_names"], d["sem_seg_file_names"]
        clip = d.get("clip_id", files[0] if files else "?")
        if not files or len(label_files) != len(files):
            raise ValueError(
                f"clip {clip}: {len(files)} frames but {len(label_files)} label entries"
            )
        annotated_all = [f is not None for f in label_files]
        if self.is_train and self.sampling_frame_num > 0:
            indices = sample_frame_indices(len(files), self.sampling_frame_num, annotated_all)
        else:
            indices = list(range(len(files)))
        binary = bool(d.get("binary", False))
        num_classes = self.label_num_classes or 256

        # (2) read frames and labels at their original size
        frames, labels = [], []
        for t in indices:
            image = self._read_frame(files[t])
            expected = (d["height"], d["width"])
            if image.shape[:2] != expected:
                raise ValueError(
                    f"{files[t]}: frame size {image.shape[1]}x{image.shape[0]} (WxH) differs "
                    f"from the clip's {expected[1]}x{expected[0]} (clip {clip})"
                )
            if label_files[t] is None:
                label = np.full(expected, self.ignore_label, dtype=np.uint8)
            else:
                label = read_label_map(
                    label_files[t],
                    num_classes,
                    binary=binary,
                    ignore_label=self.ignore_label,
                    expected_size=expected,
                ).astype(np.uint8)
            frames.append(image)
            labels.append(label)

        # (3) one augmentation for the whole clip, drawn on the first taken frame
        aug_input = T.AugInput(frames[0], sem_seg=labels[0])
        transforms = self.augmentations(aug_input)
        frames = [aug_input.image] + [transforms.apply_image(f) for f in frames[1:]]
        labels = [aug_input.sem_seg] + [transforms.apply_segmentation(s) for s in labels[1:]]

        # np.stack copies into one fresh, writable array (resized frames can be read-only views
        # of PIL images): (T, H, W, 3) -> (T, 3, H, W)
        images = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()
        sem_seg = torch.from_numpy(np.stack(labels)).long()  # (T, H, W)
        annotated = torch.tensor([annotated_all[t] for t in indices], dtype=torch.bool)

        # (4) audio: patch of each taken frame's second (augmented waveform when configured)
        if self.waveform_augmentation is None:
            audio = load_frame_log_mel_patches(
                d["audio_file_name"], len(files), self.audio_params, indices
            )
        else:
            path = str(d["audio_file_name"])
            wav, rate = read_audio(path)
            wav = self.waveform_augmentation(prepare_waveform(wav, rate, self.audio_params, path))
            audio = frame_log_mel_patches(
                wav, self.audio_params.sample_rate, len(files), self.audio_params, indices, path
            )

        # (5) set-prediction targets over the clip; unannotated frames are all ignore, so their
        # masks are all False
        valid = (sem_seg != self.ignore_label) & (sem_seg > 0)
        present = torch.unique(sem_seg[valid])  # sorted label indices, (N,)
        h, w = sem_seg.shape[-2:]
        instances = Instances((h, w))
        instances.gt_classes = (present - 1).long()
        instances.gt_masks = sem_seg.unsqueeze(0) == present.view(-1, 1, 1, 1)  # (N, T, H, W)

        d.update(
            frame_indices=indices,
            images=images,
            audio=audio,
            sem_seg=sem_seg,
            annotated=annotated,
            instances=instances,
        )
        return d


# Mapper classes by ``INPUT.DATASET_MAPPER_NAME`` (train_net.py: build_dataset_mapper).
MAPPERS: Dict[str, Callable] = {"avss_semantic": AVSSDatasetMapper}


def build_dataset_mapper(cfg, is_train: bool):
    """The mapper named by ``cfg.INPUT.DATASET_MAPPER_NAME``, built from ``cfg``."""
    name = cfg.INPUT.DATASET_MAPPER_NAME
    if name not in MAPPERS:
        raise KeyError(f"INPUT.DATASET_MAPPER_NAME '{name}' is not one of {sorted(MAPPERS)}")
    return MAPPERS[name](cfg, is_train)
