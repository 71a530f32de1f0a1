"""The markdown report of an error analysis (``ErrorAnalysis.summarize()``; docs/ERROR_ANALYSIS.md).

Percentages (IoU) are printed as the evaluator reports them (0-100, two decimals); recalls, mean
IoUs of objects and naming rates as fractions (0-1).
"""

import math
from typing import Dict, List, Sequence

__all__ = ["ORACLE_TITLES", "markdown_report"]

ORACLE_TITLES = {
    "model": "nothing (the model)",
    "names": "names of the model's segments",
    "sounding": "sounding decision (segments mostly on background / silent objects removed)",
    "masks": "masks (ground-truth masks named by the model's ensemble)",
    "names+sounding": "names and sounding decision",
}


def _f(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _band_text(name: str, low: float, high) -> str:
    if high is None:
        return f"{name} >= {100 * low:g} %"
    if low <= 0:
        return f"{name} < {100 * high:g} %"
    return f"{name} {100 * low:g}-{100 * high:g} %"


def _table(headers: Sequence[str], rows: List[Sequence[str]]) -> List[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def _objects_row(name: str, s: Dict) -> List[str]:
    return [
        name,
        str(s["all"]["objects"]),
        _f(s["base"]["query_recall"]),
        _f(s["novel"]["query_recall"]),
        _f(s["base"]["recall"]),
        _f(s["novel"]["recall"]),
        _f(s["base"]["best_query_iou"]),
        _f(s["novel"]["best_query_iou"]),
    ]


OBJECT_HEADERS = (
    "objects",
    "n",
    "recall base",
    "recall novel",
    "kept-instance recall base",
    "kept-instance recall novel",
    "best-query IoU base",
    "best-query IoU novel",
)


def markdown_report(summary: Dict, header: Dict[str, str]) -> str:
    """The report as markdown; ``header`` lists what was analysed (model, dataset, command)."""
    out = ["# Error analysis", ""]
    out += [f"- {k}: {v}" for k, v in header.items()] + [""]
    rows = summary["rows"]
    out += ["## Oracles: hIoU with one decision replaced by ground truth", ""]
    out += _table(
        ("replaced by ground truth", "hIoU", "mIoU_base", "mIoU_novel", "mIoU", "F"),
        [
            [ORACLE_TITLES[n], _f(r["hIoU"]), _f(r["mIoU_base"]), _f(r["mIoU_novel"])]
            + [_f(r["mIoU"]), _f(r["F"])]
            for n, r in rows.items()
        ],
    )
    if "masks" not in rows:
        out += ["", "The masks oracle was not measured (no ground-truth-mask naming)."]

    out += ["", "## Localisation: ground-truth objects found", ""]
    bands = ", ".join(_band_text(*band) for band in summary["size_bands"])
    out += [
        "recall: one query's segment covers >= 50 % of the object (JSON `query_recall`); "
        "kept-instance recall: one of the model's output instances does (JSON `recall`); "
        "best-query IoU: mean over objects of the best "
        f"query mask's IoU. Sizes (share of the frame): {bands}.",
        "",
    ]
    table = [_objects_row("all", summary["objects"])]
    table += [_objects_row(n, s) for n, s in summary["objects_by_size"].items()]
    out += _table(OBJECT_HEADERS, table)

    naming = summary["naming"]
    out += ["", "## Naming of ground-truth masks by the model's ensemble", ""]
    if naming is None:
        out += ["Not measured."]
    else:
        out += _table(
            (
                "accuracy",
                "base",
                "novel",
                "harmonic",
                "base named novel",
                "novel named base",
            ),
            [
                [_f(naming[k]) for k in ("accuracy", "accuracy_base", "accuracy_novel")]
                + [_f(naming[k]) for k in ("accuracy_harmonic", "base_named_novel")]
                + [_f(naming["novel_named_base"])]
            ],
        )

    out += ["", "## Per class", ""]
    out += _table(
        (
            "class",
            "group",
            "objects",
            "recall",
            "kept-instance recall",
            "best-query IoU",
            "named right",
            "top wrong names",
        ),
        [
            [name, c["group"], str(c["objects"]), _f(c["query_recall"]), _f(c["recall"])]
            + [_f(c["best_query_iou"])]
            + [_f(c["named_right"]), ", ".join(f"{n} {k}" for n, k in c["wrong_names"]) or "-"]
            for name, c in summary["per_class"].items()
        ],
    )

    silent = summary["silent"]
    out += ["", "## Silent objects", ""]
    if silent["measured"]:
        out += [
            f"Share of silent-object pixels predicted foreground: "
            f"{_f(silent['share_foreground'], 3)} ({silent['pixels']} pixels of objects that do "
            "not sound in their frame). Foreground IoU (every sounding class as one): "
            f"{_f(summary['foreground_IoU'])}.",
        ]
    else:
        out += [
            "Cannot be measured: the dataset does not record silent objects (AVSS-Synth does; "
            f"AVSBench does not). Foreground IoU: {_f(summary['foreground_IoU'])}."
        ]

    out += ["", "## By condition", ""]
    if not summary["conditions"]:
        out += ["The dataset records no conditions."]
    names = list(rows)
    for cond, bands_ in summary["conditions"].items():
        out += [f"### {cond}", ""]
        headers = ["band", "clips"] + [f"hIoU {n}" for n in names]
        headers += [
            "fg IoU",
            "recall base",
            "recall novel",
            "named right base",
            "named right novel",
        ]
        table = []
        for band, g in bands_.items():
            o = g["objects"]
            table.append(
                [band, str(g["clips"])]
                + [_f(g["rows"][n]["hIoU"]) for n in names]
                + [_f(g["foreground_IoU"]), _f(o["base"]["query_recall"])]
                + [_f(o["novel"]["query_recall"])]
                + [_f(o["base"]["named_right"]), _f(o["novel"]["named_right"])]
            )
        out += _table(headers, table) + [""]
    return "\n".join(out).rstrip() + "\n"
