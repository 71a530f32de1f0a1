"""tools/calibrate_class_sources.py on a small synthetic cache: the pseudo-novel views never hold
a real novel class, the offline ensemble, the report."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

TOOL = Path(__file__).resolve().parents[2] / "tools" / "calibrate_class_sources.py"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("calibrate_class_sources", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cache(num_clips=12, k=6, seed=0):
    """Classes 0-3 base, 4-5 novel; one or two objects per clip; evidence leaning to the truth."""
    rng = np.random.RandomState(seed)
    e, j, t = 8, 10, 2
    rows = {k_: [] for k_ in ("learned", "audio_idx", "audio_val", "image_idx", "image_val")}
    rows.update(presence=[], target=[], clip=[], num_sources=[])
    for c in range(num_clips):
        objs = rng.choice(k, size=1 + c % 2, replace=False)
        idx, val = rng.randint(0, j, (t, 3)), rng.rand(t, 3).astype(np.float32)
        for o in objs:
            logits = rng.randn(k + 1).astype(np.float32)
            logits[o] += 3.0
            rows["learned"].append(logits)
            rows["audio_idx"].append(idx)
            rows["audio_val"].append(val)
            rows["image_idx"].append(rng.randint(0, j, 4))
            rows["image_val"].append(rng.rand(4).astype(np.float32))
            rows["presence"].append(np.ones(t, np.float32))
            rows["target"].append(o)
            rows["clip"].append(c)
            rows["num_sources"].append(len(objs))
    cache = {key: np.stack(v) for key, v in rows.items()}
    cache.update(
        is_base=np.arange(k) < 4,
        names=np.array([f"c{i}" for i in range(k)]),
        audio_labels=rng.randn(j, e).astype(np.float32),
        audio_classes=rng.randn(k, e).astype(np.float32),
        image_labels=rng.randn(j, e).astype(np.float32),
        image_classes=rng.randn(k, e).astype(np.float32),
        image_speaks=np.ones(k, bool),
        audio_scale=np.array(30.0),
        image_scale=np.array(30.0),
        check=np.zeros(0, np.int64),
    )
    return cache


def test_views_never_hold_a_real_novel_class(tool):
    cache = _cache()
    views = tool.fold_views(cache, [[0, 1], [2, 3]])
    novel = {4, 5}
    for v in views:
        assert not set(v["vocab"].tolist()) & novel
        assert not set(cache["target"][v["rows"]].tolist()) & novel
        assert set(v["withheld"].tolist()) <= {0, 1, 2, 3}
        assert (~v["is_base"]).sum() == 2
    with pytest.raises(ValueError, match="not base"):
        tool.fold_views(cache, [[0, 4]])


def test_withheld_classes_get_no_learned_evidence(tool):
    cache = _cache()
    s = tool.Settings()
    lp = tool.source_log_probs(cache, np.arange(4), np.array([1]), s)
    assert lp["learned"].shape == (len(cache["target"]), 4)
    torch.testing.assert_close(
        lp["learned"][:, 1], torch.full_like(lp["learned"][:, 1], -np.log(4))
    )
    for name in ("audio_tags", "image_tags"):
        assert torch.isfinite(lp[name]).all()


def test_bias_moves_names_towards_base(tool):
    cache = _cache()
    views = tool.fold_views(cache, [[0, 1], [2, 3]])
    lps = tool.fold_log_probs(cache, views, tool.Settings())
    low = tool.score_folds(cache, views, lps, tool.Settings(base_bias=3.0))
    high = tool.score_folds(cache, views, lps, tool.Settings(base_bias=-3.0))
    assert high["base_named_novel"] <= low["base_named_novel"]
    assert high["novel_named_base"] >= low["novel_named_base"]
    fitted = tool.fit_combiner(views, lps, tool.Settings(), steps=20)
    assert fitted.learned[1] == 0.0 and min(fitted.audio_tags + fitted.image_tags) >= 0


def test_report_runs(tool, tmp_path, capsys):
    path = tmp_path / "cache.npz"
    np.savez(path, **_cache())
    tool.main(["report", "--cache", str(path), "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert "| shipped | 2-3 sources" in out and (tmp_path / "r.json").is_file()
