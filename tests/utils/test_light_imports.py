"""The package is light at import; add_ovavss_config / setup() register everything."""

import subprocess
import sys


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_preflight_imports_neither_torch_nor_detectron2():
    _run(
        "import sys\n"
        "import ovavss_d2, ovavss_d2.utils, ovavss_d2.data, ovavss_d2.utils.preflight\n"
        "from ovavss_d2.utils import preflight\n"
        "heavy = [m for m in ('torch', 'detectron2') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )


def test_add_ovavss_config_registers_everything():
    out = _run(
        "from ovavss_d2 import add_ovavss_config\n"
        "from detectron2.data import DatasetCatalog\n"
        "from detectron2.modeling import META_ARCH_REGISTRY\n"
        "print('OVAVSS' in META_ARCH_REGISTRY, 'avss_synth_test' in DatasetCatalog.list())\n"
    )
    assert out.split() == ["True", "True"]
