"""The error-analysis report: markdown of a summary, and the tool's --rerender from report.json."""

import json

import numpy as np
import torch

from ovavss_d2.evaluation import AVSSEvaluator
from ovavss_d2.evaluation.clip_evaluator import write_json
from ovavss_d2.evaluation.error_analysis import ClipPrediction, ErrorAnalysis, Postprocess
from ovavss_d2.evaluation.error_report import markdown_report


def _summary(datasets, silent: bool) -> dict:
    name = datasets.avss()
    label = np.zeros((8, 8), dtype=np.int64)
    label[:4, :4] = 1  # a cat (base)
    label[4:, 4:] = 3  # a violin (novel)
    logits = torch.full((1, 2, 8, 8), -10.0)
    logits[0, :, :4, :4] = 10.0  # one query: the cat, named dog
    scores = torch.tensor([[0.0, 0.9, 0.0, 0.0]])
    gt = torch.eye(4)[[0, 2]]  # ground-truth masks named right
    pred = ClipPrediction(scores, logits, (8, 8), (8, 8), (8, 8), gt, [1, 3])
    analysis = ErrorAnalysis(name, Postprocess(), lambda: AVSSEvaluator(name, distributed=False))
    masks = np.zeros((2, 8, 8), dtype=bool) if silent else None
    analysis.process(datasets.clip([label, label]), pred, masks, {"sources": "2"})
    return analysis.summarize()


def test_markdown_rows_and_silent_note(datasets):
    summary = _summary(datasets, silent=False)
    text = markdown_report(summary, {"dataset": "fake"})
    assert "| nothing (the model) | 0.00 |" in text
    assert "| masks (ground-truth masks named by the model's ensemble) | 100.00 |" in text
    assert "Cannot be measured" in text
    assert "small < 2 %, medium 2-5 %, large >= 5 %" in text
    assert "### sources" in text
    measured = markdown_report(_summary(datasets, silent=True), {"dataset": "fake"})
    assert "Share of silent-object pixels predicted foreground: -" in measured  # no silent pixel


def test_rerender_from_report_json(datasets, tmp_path, load_script, capsys):
    summary = _summary(datasets, silent=False)
    header = {"dataset": "fake"}
    write_json(
        str(tmp_path / "report.json"), json.loads(json.dumps(dict(header=header, **summary)))
    )
    tool = load_script("tools/analyze_errors.py")
    tool.main(["--rerender", "--output", str(tmp_path)])
    assert (tmp_path / "report.md").read_text() == markdown_report(summary, header)
    assert "| nothing (the model) |" in capsys.readouterr().out
