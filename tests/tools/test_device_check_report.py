"""tools/device_check_report.py: the summary table from a steps record and its logs."""

import json

EVENTS = (
    "[12/07 21:40:51 d2.utils.events]:  eta: 0:00:00  iter: 19  total_loss: 82.08  loss_mask: 1.9"
    "  time: 0.4312  data_time: 0.0086  lr: 0.0001  max_mem: 20512M\n"
)


def test_summary(tmp_path, load_script):
    report = load_script("tools/device_check_report.py")
    (tmp_path / "header.md").write_text("# check\n")
    logs = {
        "tests_cuda": "PASSED tests/a.py::test_x[cuda]\nFAILED tests/b.py::test_y[cuda] - boom\n"
        "= 1 failed, 1 passed, 1030 deselected in 12.0s =\n",
        "train_r50": EVENTS,
        "resume": "Starting training from iteration 20\n" + EVENTS.replace("iter: 19", "iter: 24"),
        "amp_fp16": "train_net.py: error: SOLVER.AMP.DTYPE 'float16': a | b\n"
        "  - Build settings: CXX_FLAGS= -Werror=return-type -Wno-error=old-style-cast\n",
        "eval_only": "copypaste: Task: sem_seg\ncopypaste: mIoU,mIoU_base,mIoU_novel,hIoU,F\n"
        "copypaste: 46.8,10.0,nan,nan,3.0\n",
        "demo": "",
    }
    rows = []
    for name, text in logs.items():
        (tmp_path / f"{name}.log").write_text(text)
        status = {"amp_fp16": "1", "demo": "124"}.get(name, "0")
        rows.append(f"{name}\t{status}\t7\t{tmp_path / f'{name}.log'}")
    rows.append("benchmark\tnot run (time budget spent)\t0\t")
    (tmp_path / "steps.tsv").write_text("\n".join(rows) + "\n")
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "0.png").write_bytes(b"")
    json.dump({"clips": 3}, (tmp_path / "prepare.json").open("w"))

    assert report.main([str(tmp_path)]) == 0
    lines = (tmp_path / "summary.md").read_text().splitlines()
    assert lines[0] == "# check"
    assert lines[2:] == [
        "| step | exit status | seconds | key numbers | log |",
        "|---|---|---:|---|---|",
        "| tests_cuda | 0 | 7 | 1 failed, 1 passed, 1030 deselected in 12.0s | tests_cuda.log |",
        "| train_r50 | 0 | 7 | iter 19, total_loss 82.08, 0.431 s/iter, max_mem 20512 MB "
        "| train_r50.log |",
        "| resume | 0 | 7 | resumed at iter 20, iter 24, total_loss 82.08, 0.431 s/iter, "
        "max_mem 20512 MB | resume.log |",
        "| amp_fp16 | 1 | 7 | no iteration logged; train_net.py: error: SOLVER.AMP.DTYPE "
        "'float16': a \\| b | amp_fp16.log |",
        "| eval_only | 0 | 7 | mIoU 46.8, mIoU_base 10.0, mIoU_novel nan, hIoU nan "
        "| eval_only.log |",
        "| demo | 124 (time limit) | 7 | 1 files written (1 label PNGs); (empty log) | demo.log |",
        "| benchmark | not run (time budget spent) | 0 |  |  |",
        "",
        "## Tests marked `cuda`",
        "",
        "- `PASSED tests/a.py::test_x[cuda]`",
        "- `FAILED tests/b.py::test_y[cuda] - boom`",
    ]
