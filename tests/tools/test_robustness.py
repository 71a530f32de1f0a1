"""tools/robustness.py: the table and the plot from a baselines.json-like report."""

import json
import math


def _results(miou: float) -> dict:
    keys = ("mIoU", "mIoU_base", "mIoU_novel", "hIoU", "F")
    return {"sem_seg": {k: miou + i for i, k in enumerate(keys)}}


def test_table_and_plot(tmp_path, capsys, load_script):
    tool = load_script("tools/robustness.py")
    assert tool.variant_snr("avss_synth_test_snr10") == 10.0
    assert tool.variant_snr("avss_synth_test_snr7.5") == 7.5
    assert math.isinf(tool.variant_snr("avss_synth_test_clean"))
    assert tool.variant_snr("avss_synth_test") is None
    report = {
        d: {"background": _results(1.0), "model": _results(m)}
        for d, m in zip(tool.DATASETS, (10.0, 30.0, 25.0, 20.0, 15.0))
    }
    path = tmp_path / "baselines.json"
    path.write_text(json.dumps(report))
    png = tmp_path / "plot.png"
    assert tool.main(["--results", str(path), "--png", str(png)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| dataset | SNR (dB) | predictor | mIoU | mIoU_base |")
    assert (
        "| avss_synth_test | drawn 0-30 | model | 10.00 | 11.00 | 12.00 | 13.00 | 14.00 |" in lines
    )
    assert (
        "| avss_synth_test_clean | clean | all background | 1.00 | 2.00 | 3.00 | 4.00 | 5.00 |"
        in lines
    )
    assert "| avss_synth_test_snr5 | 5 | model | 15.00 | 16.00 | 17.00 | 18.00 | 19.00 |" in lines
    assert len(lines) == 2 + 2 * 5 + 1
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
