#!/usr/bin/env python
"""Where a model's points go: oracle decomposition, object recall, naming and conditions.

Runs the model once over a registered dataset (like ``train_net.py --eval-only``) and prints, in
the spirit of TIDE: hIoU and base / novel mIoU of the model and with each oracle substituted
(names, sounding decision, ground-truth masks named by the model, names and sounding together),
object recall and best-query IoU by base / novel and size, the naming of ground-truth masks, the
share of silent-object pixels predicted foreground (AVSS-Synth records silent objects) and all of
it by condition (SNR, off-screen sound, sources, occlusion). Every hIoU / mIoU is the project's
evaluator's on the same predictions. Writes ``report.md`` and ``report.json`` in ``--output``
(docs/ERROR_ANALYSIS.md explains each number).

    OMP_NUM_THREADS=1 python tools/analyze_errors.py \\
        --config-file configs/avss_synth/ovavss_effnet_yamnet_minilm.yaml \\
        --dataset avss_synth_val --output output/analysis_val
    # another checkpoint: trailing KEY VALUE overrides, e.g. MODEL.WEIGHTS path/to/model.pth
"""

import argparse
import json
import logging
import os
import shlex
import sys
import time

import torch
from detectron2.data import MetadataCatalog, build_detection_test_loader
from detectron2.modeling import build_model
from detectron2.utils.logger import setup_logger
from tqdm import tqdm

from ovavss_d2 import get_cfg
from ovavss_d2.checkpoint import load_for_inference
from ovavss_d2.data import build_dataset_mapper
from ovavss_d2.data.datasets import register_from_config
from ovavss_d2.data.vocabulary import dataset_vocabulary
from ovavss_d2.evaluation import build_evaluator
from ovavss_d2.evaluation.analysis_inference import predict_clips
from ovavss_d2.evaluation.clip_evaluator import write_json
from ovavss_d2.evaluation.error_analysis import (
    ErrorAnalysis,
    ObjectRecord,
    Postprocess,
    bands_json,
    object_records_json,
    objects_by_size,
    size_band,
)
from ovavss_d2.evaluation.error_report import markdown_report
from ovavss_d2.utils.preflight import ints_for_float_keys

logger = logging.getLogger("ovavss_d2.analyze_errors")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config-file", default="", metavar="FILE")
    parser.add_argument(
        "--dataset", default="", help="a registered avss dataset (default DATASETS.TEST[0])"
    )
    parser.add_argument("--output", required=True, metavar="DIR", help="report.md, report.json")
    parser.add_argument("--max-clips", type=int, default=0, help="first N clips only (0: all)")
    parser.add_argument(
        "--rerender",
        action="store_true",
        help="run nothing: write report.md again from the report.json in --output",
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    args = parser.parse_args(argv)
    if not args.rerender and not args.config_file:
        parser.error("--config-file is required (unless --rerender)")
    return args


def rerender(output: str) -> str:
    """report.md from ``<output>/report.json`` (the summary and header it holds); the size
    tables are recomputed from the object records with the current ``SIZE_BANDS`` (and written
    back to report.json)."""
    path = os.path.join(output, "report.json")
    with open(path) as f:
        payload = json.load(f)
    objects = [ObjectRecord(**o) for o in payload.get("object_records", [])]
    if objects:
        for o in objects:
            o.size = size_band(o.area)
        payload["objects_by_size"] = objects_by_size(objects)
        payload["size_bands"] = bands_json()
        payload["object_records"] = object_records_json(objects)
        write_json(path, payload)
    summary = {k: v for k, v in payload.items() if k not in ("header", "object_records")}
    return markdown_report(summary, payload["header"])


def setup(args: argparse.Namespace):
    """Config with ``--dataset`` as its only test dataset (datasets registered)."""
    cfg = get_cfg()
    with ints_for_float_keys():
        cfg.merge_from_file(args.config_file)
        cfg.merge_from_list(args.opts)
    register_from_config(cfg)
    name = args.dataset or (cfg.DATASETS.TEST[0] if cfg.DATASETS.TEST else "")
    if name not in MetadataCatalog.list():
        sys.exit(f"analyze_errors.py: error: --dataset '{name}' is not a registered dataset")
    if getattr(MetadataCatalog.get(name), "evaluator_type", None) != "avss":
        sys.exit(f"analyze_errors.py: error: '{name}' is not a semantic (avss) dataset")
    cfg.DATASETS.TEST = (name,)
    cfg.freeze()
    return cfg


class DatasetRecords:
    """Silent-object masks and conditions of a dataset's clips, where it records them."""

    def __init__(self, dataset_name: str):
        import _avss_synth_path  # noqa: F401  (datasets/ on sys.path: AVSS-Synth's records)

        from avss_synth.records import SynthRecords, find_synth_root

        meta = MetadataCatalog.get(dataset_name)
        root = getattr(meta, "dataset_root", None)
        build = find_synth_root(root) if root else None
        self.synth = SynthRecords(build, root) if build is not None else None

    def clip(self, clip: dict):
        """``(silent masks (T, H0, W0) or None, conditions)`` of a mapper dict."""
        record = None
        if self.synth is not None:
            size = (int(clip["width"]), int(clip["height"]))
            record = self.synth.clip(str(clip.get("clip_id")), size)
        if record is None:  # any dataset: the sounding classes of the clip's metadata
            return None, {"sources": str(len(clip.get("class_names", [])))}
        return record.silent_masks, record.conditions


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.rerender:
        report = rerender(args.output)
        with open(os.path.join(args.output, "report.md"), "w") as f:
            f.write(report)
        print(report)
        return
    cfg = setup(args)
    setup_logger(name="ovavss_d2")
    dataset = cfg.DATASETS.TEST[0]
    torch.set_grad_enabled(False)
    model = build_model(cfg).eval()
    load_for_inference(cfg, model, source=args.config_file)
    model.set_vocabulary(dataset_vocabulary(dataset, cfg.MODEL.OVAVSS.TEST.VOCABULARY))
    meta = MetadataCatalog.get(dataset)
    analysis = ErrorAnalysis(
        dataset, Postprocess.of(model), lambda: build_evaluator(cfg, dataset, None)
    )
    records = DatasetRecords(dataset)
    loader = build_detection_test_loader(
        cfg, dataset, mapper=build_dataset_mapper(cfg, is_train=False)
    )
    start, done = time.perf_counter(), 0
    for batch in tqdm(loader, desc=f"analysing {dataset}", unit="clip"):
        for clip, pred in predict_clips(model, batch, meta.label_num_classes, meta.ignore_label):
            silent, conditions = records.clip(clip)
            analysis.process(clip, pred, silent, conditions)
            done += 1
        if args.max_clips and done >= args.max_clips:
            break
    summary = analysis.summarize()
    header = {
        "dataset": f"{dataset} ({done} clips)",
        "config": args.config_file,
        "weights": cfg.MODEL.WEIGHTS or "(none)",
        "command": "python tools/analyze_errors.py " + " ".join(map(shlex.quote, sys.argv[1:])),
        "time": f"{time.perf_counter() - start:.0f} s, {torch.get_num_threads()} torch thread(s)",
    }
    os.makedirs(args.output, exist_ok=True)
    report = markdown_report(summary, header)
    with open(os.path.join(args.output, "report.md"), "w") as f:
        f.write(report)
    payload = dict(header=header, **summary, object_records=object_records_json(analysis.objects))
    write_json(os.path.join(args.output, "report.json"), json.loads(json.dumps(payload)))
    print(report)


if __name__ == "__main__":
    main()
