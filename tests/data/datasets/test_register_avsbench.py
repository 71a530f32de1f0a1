"""ovavss_d2.data.datasets.register_avsbench: predefined names, registration from a config."""

import os
import subprocess
import sys

from detectron2.data import DatasetCatalog, MetadataCatalog


def test_register_from_config(fake_avsbench, monkeypatch):
    from detectron2.config import get_cfg

    from ovavss_d2.config import add_ovavss_config
    from ovavss_d2.data.datasets import register_avsbench as reg

    cfg = get_cfg()
    add_ovavss_config(cfg)
    assert reg.register_from_config(cfg) == []  # defaults: nothing to do
    default_root = reg._ROOT
    monkeypatch.setattr(reg, "_ROOT", str(fake_avsbench.root.parent))
    cfg.DATASETS.SKIP_BAD_CLIPS = True
    names = reg.register_from_config(cfg)
    assert "avss_v2_train" in names and "avsbench_ov_train_base" in names
    try:
        assert len(DatasetCatalog.get("avss_v2_train")) == 2
    finally:  # give the predefined names back their default registration
        for name in names:
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
        reg.register_all_avsbench(default_root)  # semantic and binary (S4 / MS3) names
        reg.register_all_avss_synth(default_root)  # SKIP_BAD_CLIPS re-registered these too


def test_import_registers_predefined_names(fake_avsbench):
    """`ovavss_d2.setup()` registers every predefined name under $DETECTRON2_DATASETS."""
    code = (
        "import ovavss_d2\n"
        "ovavss_d2.setup()\n"
        "from detectron2.data import DatasetCatalog, MetadataCatalog\n"
        "names = [n for s in ('v1s', 'v1m', 'v2', 'all') for n in ("
        "f'avss_{s}_train', f'avss_{s}_val', f'avss_{s}_test')]\n"
        "names += ['avsbench_ov_train_base', 'avsbench_ov_val', 'avsbench_ov_test']\n"
        "names += [f'{p}_{s}' for p in ('avs_s4', 'avs_ms3', 'avss_synth', 'avs_synth') "
        "for s in ('train', 'val', 'test')]\n"
        "missing = [n for n in names if n not in DatasetCatalog.list()]\n"
        "assert not missing, missing\n"
        "print(len(DatasetCatalog.get('avss_v2_train')), len(DatasetCatalog.get('avs_ms3_val')))\n"
        "print(MetadataCatalog.get('avs_s4_test').evaluator_type,"
        " MetadataCatalog.get('avss_synth_test').evaluator_type)\n"
    )
    env = dict(os.environ, DETECTRON2_DATASETS=str(fake_avsbench.root.parent))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["2", "2", "avs_binary", "avss"]


def test_wide_train_metadata_and_training_vocabulary():
    """``avss_synth_wide_train``: the 22 classes keep their indices, the wide pool's follow and
    count as base, so TRAIN_VOCABULARY "base" trains on the 13 base names and the pool's."""
    import ovavss_d2
    from ovavss_d2.data.class_lists import load_class_list
    from ovavss_d2.data.vocabulary import UNNAMED, training_vocabulary

    ovavss_d2.setup()
    narrow = load_class_list("avss_synth.txt")
    meta = MetadataCatalog.get("avss_synth_wide_train")
    assert tuple(meta.stuff_classes[: len(narrow)]) == narrow.names
    assert len(meta.stuff_classes) <= 255  # label indices stay below the ignore value
    assert set(meta.novel_classes) == set(MetadataCatalog.get("avss_synth_val").novel_classes)
    vocab = training_vocabulary(["avss_synth_wide_train"], "base")
    assert len(vocab["keys"]) == len(meta.stuff_classes) - 1 - len(meta.novel_classes)
    assert vocab["keys"][:13] == list(MetadataCatalog.get("avss_synth_train").base_classes)
    assert (vocab["dataset_to_train"] >= 0).sum() == len(vocab["keys"])
    # The pool's classes are listed (metadata pool_ids): the 13-names classifier leaves them out.
    assert [meta.stuff_classes[i] for i in meta.pool_ids] == list(meta.stuff_classes[len(narrow) :])
    named = training_vocabulary(["avss_synth_wide_train"], "base", pool_names=False)
    assert named["keys"] == list(MetadataCatalog.get("avss_synth_train").base_classes)
    assert (named["dataset_to_train"] == UNNAMED).sum() == len(meta.pool_ids) == 221
