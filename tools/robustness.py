#!/usr/bin/env python
"""Robustness table and plot of a checkpoint over the AVSS-Synth v2 test variants.

Evaluates the model (and, with ``--baselines``, the baselines of tools/eval_baselines.py) on the
test split at its drawn SNRs and on each variant (clean audio, fixed SNRs), prints a Markdown table
(mIoU, base, novel, hIoU, F per variant) and draws mIoU against SNR as a PNG.

    python tools/robustness.py --config-file configs/avss_synth/ovavss_effnet_yamnet_minilm.yaml \\
        MODEL.WEIGHTS ovavss_d2/model_zoo/ovavss_effnet_yamnet_minilm.pth
    # or only tabulate / plot results written by tools/eval_baselines.py (same datasets):
    python tools/robustness.py --results output/v2_eval/baselines.json \
        --png docs/images/robustness.png
"""

import argparse
import json
import logging
import math
import os
import re
import subprocess
import sys
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

logger = logging.getLogger("ovavss_d2.robustness")

DATASETS = (
    "avss_synth_test",
    "avss_synth_test_clean",
    "avss_synth_test_snr20",
    "avss_synth_test_snr10",
    "avss_synth_test_snr5",
)
COLUMNS = ("mIoU", "mIoU_base", "mIoU_novel", "hIoU", "F")
LABELS = {"background": "all background", "random_class": "random class", "model": "model"}


def variant_snr(dataset: str) -> Optional[float]:
    """SNR (dB) of a fixed-SNR variant from its name, inf for ``clean``, None for drawn SNRs."""
    m = re.search(r"_snr([\d.]+)$", dataset)
    if m:
        return float(m.group(1))
    return math.inf if dataset.endswith("_clean") else None


def format_table(report: Dict[str, Dict[str, Dict]], datasets: Sequence[str]) -> str:
    """Markdown table: one row per (dataset, baseline) of ``report[dataset][baseline]``."""
    lines = [
        "| dataset | SNR (dB) | predictor | " + " | ".join(COLUMNS) + " |",
        "|---|---|---|" + "---:|" * len(COLUMNS),
    ]
    for dataset in datasets:
        snr = variant_snr(dataset)
        snr_text = "drawn 0-30" if snr is None else ("clean" if math.isinf(snr) else f"{snr:g}")
        for name, results in report.get(dataset, {}).items():
            r = results["sem_seg"]
            cells = " | ".join(f"{r[k]:.2f}" for k in COLUMNS)
            lines.append(f"| {dataset} | {snr_text} | {LABELS.get(name, name)} | {cells} |")
    return "\n".join(lines)


def plot(
    report: Dict[str, Dict[str, Dict]], datasets: Sequence[str], path: str, title: str
) -> None:
    """mIoU, base and novel mIoU of the model against the SNR of the fixed variants; clean at the
    right end, the drawn-SNR test split as dashed lines, baselines in grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fixed = sorted(
        (variant_snr(d), d)
        for d in datasets
        if d in report and variant_snr(d) is not None and not math.isinf(variant_snr(d))
    )
    clean = [d for d in datasets if d in report and variant_snr(d) == math.inf]
    # the test split at its drawn SNRs (not another split such as val)
    drawn = [d for d in datasets if d in report and variant_snr(d) is None and "_test" in d]
    xs = [snr for snr, _ in fixed]
    names = [d for _, d in fixed]
    clean_x = (max(xs) + 10) if xs else 30
    if clean:
        xs, names = xs + [clean_x], names + clean
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    colours = {"mIoU": "black", "mIoU_base": "tab:blue", "mIoU_novel": "tab:orange"}
    for key, colour in colours.items():
        ys = [report[d]["model"]["sem_seg"][key] for d in names if "model" in report[d]]
        if len(ys) == len(xs):
            ax.plot(xs, ys, "o-", color=colour, label=f"model {key}")
        for d in drawn:
            if "model" in report[d]:
                y = report[d]["model"]["sem_seg"][key]
                ax.axhline(y, color=colour, ls="--", lw=0.8)
    for base, style in (("random_class", ":"), ("background", "-.")):
        ys = [report[d][base]["sem_seg"]["mIoU"] for d in names if base in report[d]]
        if ys and len(ys) == len(xs):
            ax.plot(xs, ys, style, color="grey", label=f"{LABELS[base]} mIoU")
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{x:g}" for x in xs[: len(fixed)]] + (["clean"] if clean else []))
    ax.set_xlabel("SNR of the test audio (dB); dashed: the test split at its drawn SNRs")
    ax.set_ylabel("%")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def evaluate(args, datasets: List[str]) -> Dict:
    """Run tools/eval_baselines.py on ``datasets`` and return its ``baselines.json``."""
    out_dir = args.output_dir
    tool = os.path.join(os.path.dirname(os.path.abspath(__file__)), "eval_baselines.py")
    test = "(" + ",".join(f'"{d}"' for d in datasets) + ",)"
    cmd = [sys.executable, tool, "--config-file", args.config_file, "--baselines", args.baselines]
    cmd += args.opts + ["DATASETS.TEST", test, "OUTPUT_DIR", out_dir]
    logger.info("running %s", " ".join(cmd))
    subprocess.run(cmd, check=True)
    with open(os.path.join(out_dir, "baselines.json")) as f:
        return json.load(f, object_pairs_hook=OrderedDict)


def main(argv=None) -> int:
    """Evaluate (or read) the results, print the table, write the PNG; return the exit status."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config-file", help="config of the checkpoint (to evaluate)")
    parser.add_argument(
        "--results", help="a baselines.json of tools/eval_baselines.py: tabulate it, no evaluation"
    )
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated names")
    parser.add_argument(
        "--baselines", default="model", help="eval_baselines.py predictors: model,random_class,..."
    )
    parser.add_argument("--output-dir", default="output/robustness", help="evaluation output")
    parser.add_argument(
        "--png", default=None, help="plot path (default <output-dir>/robustness.png)"
    )
    parser.add_argument("--title", default="mIoU against SNR, AVSS-Synth v2 test (200 clips)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    if args.results:
        if not os.path.isfile(args.results):
            parser.error(f"--results {args.results}: file not found")
        with open(args.results) as f:
            report = json.load(f, object_pairs_hook=OrderedDict)
        missing = [d for d in datasets if d not in report]
        if missing:
            logger.warning("%s has no results for %s", args.results, missing)
    elif args.config_file:
        report = evaluate(args, datasets)
    else:
        parser.error("give --config-file (to evaluate) or --results (to tabulate)")
    print(format_table(report, datasets))
    png = args.png or os.path.join(args.output_dir, "robustness.png")
    plot(report, datasets, png, args.title)
    print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
