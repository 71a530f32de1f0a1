#!/usr/bin/env python
"""How well each class-evidence source names objects on their own, with ground-truth masks.

No segmentation model: every object of a clip (one per class present in its label maps) becomes a
"query" whose mask is its ground truth, and each source names it over the dataset's vocabulary.
Reported: per-object top-1 accuracy over the vocabulary (all / base / novel objects) for

* ``image_tags`` in both modes ("crop", "mask_pool") at several ``TOP_K``;
* the sound tags (YAMNet's AudioSet tags embedded by the text encoder): the clip mean, with the
  non-object tags suppressed, with per-query seconds, and both.

Choose settings on ``avss_synth_val``; report them on the test split and its variants.

    OMP_NUM_THREADS=1 nice -n 19 python tools/class_source_probe.py \\
        --datasets avss_synth_val avss_synth_test --json output/class_source_probe/val_test.json
    # audio only (the variants share the test split's frames and labels):
    OMP_NUM_THREADS=1 nice -n 19 python tools/class_source_probe.py --no-image \\
        --datasets avss_synth_test_clean avss_synth_test_snr20 avss_synth_test_snr10 \\
        avss_synth_test_snr5 --json output/class_source_probe/variants.json
"""

import argparse
import json
import logging
import os
import time
from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.detection_utils import read_image

import ovavss_d2.data.datasets  # noqa: F401  (registers the datasets)
from ovavss_d2.data.audio import AudioParams, load_frame_log_mel_patches
from ovavss_d2.data.labels import read_label_map
from ovavss_d2.modeling.audio_encoder.yamnet import YAMNet, yamnet_class_names
from ovavss_d2.modeling.class_sources.image_tags import ImageTagsSource
from ovavss_d2.modeling.class_sources.imagenet_classifier import (
    ImageNetClassifier,
    imagenet_categories,
)
from ovavss_d2.modeling.class_sources.tag_filters import (
    NON_OBJECT_TAGS_FILE,
    keep_tags,
    query_sound_logits,
    read_tag_list,
    suppress_tags,
    tag_text_logits,
)
from ovavss_d2.modeling.text_encoder import TextClassifierCache, get_templates
from ovavss_d2.modeling.text_encoder.minilm import MiniLMTextEncoder

logger = logging.getLogger("class_source_probe")

IMAGE_TOP_KS = (1, 5, 10, 20)
AUDIO_TOP_K = 5  # MODEL.CLASS_SOURCES.AUDIO_TAGS.TOP_K of the default config
AUDIO_VARIANTS = (
    ("clip_mean", False, None),
    ("suppress", True, None),
    ("seconds_mass", False, "mass"),
    ("seconds_max", False, "max"),
    ("suppress+seconds_mass", True, "mass"),
    ("suppress+seconds_max", True, "max"),
)


def clip_objects(record: dict, num_label_classes: int) -> Tuple[torch.Tensor, List[int]]:
    """``(frames uint8 (T, 3, H, W) RGB, masks float (O, T, H, W), labels [O] (1-based))``."""
    frames = np.stack([read_image(f, format="RGB") for f in record["file_names"]])
    labels = np.stack(
        [read_label_map(f, num_label_classes) for f in record["sem_seg_file_names"]]
    )  # (T, H, W)
    present = sorted(int(c) for c in np.unique(labels) if 0 < c < num_label_classes)
    masks = np.stack([(labels == c) for c in present]) if present else np.zeros((0, *labels.shape))
    return (
        torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous(),
        torch.from_numpy(masks.astype(np.float32)),
        present,
    )


class Tally:
    """Top-1 hits per setting, split by base / novel object class, and per class."""

    def __init__(self):
        self.hits = defaultdict(lambda: defaultdict(int))
        self.total = defaultdict(int)
        self.per_class = defaultdict(lambda: defaultdict(lambda: [0, 0]))

    def add(self, setting: str, pred: torch.Tensor, target: Sequence[int], is_base, names) -> None:
        for p, t in zip(pred.tolist(), target):
            group = "base" if is_base[t] else "novel"
            hit = int(p == t)
            self.hits[setting][group] += hit
            self.hits[setting]["all"] += hit
            self.per_class[setting][names[t]][0] += hit
            self.per_class[setting][names[t]][1] += 1

    def count(self, target: Sequence[int], is_base) -> None:
        for t in target:
            self.total["base" if is_base[t] else "novel"] += 1
            self.total["all"] += 1

    def summary(self) -> Dict[str, Dict[str, float]]:
        return {
            s: {
                **{g: h[g] / max(self.total[g], 1) for g in ("all", "base", "novel")},
                **{f"n_{g}": self.total[g] for g in ("all", "base", "novel")},
                "per_class": {c: f"{a}/{b}" for c, (a, b) in sorted(self.per_class[s].items())},
            }
            for s, h in self.hits.items()
        }


def probe(dataset: str, parts: dict, with_image: bool, limit: int) -> dict:
    """Accuracies of every setting on one dataset."""
    meta = MetadataCatalog.get(dataset)
    records = DatasetCatalog.get(dataset)[: limit or None]
    vocab = [tuple(n) for n in meta.prompt_names[1:]]  # K classes, label index - 1
    names = list(meta.stuff_classes[1:])
    is_base = [k + 1 in set(meta.base_ids) for k in range(len(vocab))]
    audio_text, image_src = parts["audio_text"], parts["image_src"]
    label_embeds = audio_text.get(parts["audio_labels"])
    class_embeds_audio = audio_text.get(vocab)
    keep = parts["keep"]
    tally = Tally()
    start = time.perf_counter()
    for i, record in enumerate(records):
        frames, masks, present = clip_objects(record, meta.label_num_classes)
        if not present:
            continue
        target = [c - 1 for c in present]
        tally.count(target, is_base)
        # sound tags
        patches = load_frame_log_mel_patches(
            record["audio_file_name"], frames.shape[0], parts["audio_params"]
        )
        with torch.no_grad():
            scores = parts["yamnet"].classify(patches).sigmoid()  # (T, J)
        for setting, suppress, seconds in AUDIO_VARIANTS:
            s = suppress_tags(scores, keep) if suppress else scores
            logits = tag_text_logits(s, label_embeds, class_embeds_audio, AUDIO_TOP_K, 30.0)
            mode = "query_seconds" if seconds else "clip_mean"
            q_logits = query_sound_logits(logits, len(present), mode, masks, seconds or "mass")
            tally.add(f"audio/{setting}", q_logits.argmax(-1), target, is_base, names)
        # image tags
        if with_image:
            for mode in ("crop", "mask_pool"):
                image_src.mode = mode
                label_probs = image_src.label_probs(frames, masks)  # (O, J)
                for top_k in IMAGE_TOP_KS:
                    image_src.top_k = top_k
                    logits = image_src.class_logits(label_probs.nan_to_num(1e-3), vocab)
                    tally.add(f"image/{mode}/top{top_k}", logits.argmax(-1), target, is_base, names)
        if (i + 1) % 50 == 0:
            logger.info(
                "%s: %d/%d clips, %.0f s", dataset, i + 1, len(records), time.perf_counter() - start
            )
    out = {
        "settings": tally.summary(),
        "clips": len(records),
        "seconds": time.perf_counter() - start,
    }
    if with_image:
        cos = (
            image_src.text_classifier.get(vocab)
            @ image_src.text_classifier.get(image_src.label_names).t()
        ).amax(1)
        out["image_best_label_cosine"] = {n: round(float(c), 3) for n, c in zip(names, cos)}
    return out


def build_parts(args) -> dict:
    """The frozen models shared by every dataset of a run."""
    text = MiniLMTextEncoder()
    image_text = TextClassifierCache(text, get_templates(args.image_templates))
    image_src = ImageTagsSource(ImageNetClassifier(), imagenet_categories(), image_text)
    audio_labels = yamnet_class_names()
    return {
        "yamnet": YAMNet().eval(),
        "audio_params": AudioParams(log_offset=0.001),
        "audio_text": TextClassifierCache(text, get_templates("none")),
        "audio_labels": [(n,) for n in audio_labels],
        "keep": keep_tags(audio_labels, read_tag_list(args.tags), source=args.tags),
        "image_src": image_src,
    }


def print_table(results: dict) -> None:
    for dataset, res in results.items():
        print(f"\n{dataset} ({res['clips']} clips, {res['seconds']:.0f} s)")
        print("| setting | all | base | novel |")
        print("|---|---|---|---|")
        for s, r in res["settings"].items():
            print(
                f"| {s} | {r['all']:.3f} ({r['n_all']}) | {r['base']:.3f} ({r['n_base']}) "
                f"| {r['novel']:.3f} ({r['n_novel']}) |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["avss_synth_val"])
    parser.add_argument("--json", default="output/class_source_probe/probe.json")
    parser.add_argument("--tags", default=NON_OBJECT_TAGS_FILE, help="non-object tag list")
    parser.add_argument("--image-templates", default="single", help="vild / single / none")
    parser.add_argument("--no-image", action="store_true", help="sound tags only")
    parser.add_argument("--limit", type=int, default=0, help="first N clips only (0: all)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_grad_enabled(False)
    parts = build_parts(args)
    results = {d: probe(d, parts, not args.no_image, args.limit) for d in args.datasets}
    results["_run"] = {"threads": torch.get_num_threads(), "args": vars(args)}
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(results, f, indent=1)
    print_table({k: v for k, v in results.items() if not k.startswith("_")})
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
