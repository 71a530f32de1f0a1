#!/usr/bin/env python
"""Build a detectron2 wheel offline from the hash-pinned ``pb1-detectron2==0.6`` sdist.

The sdist is upstream detectron2 v0.6's Python code without the C++ sources of ``detectron2._C``.
This script downloads it (or reuses a cached copy), checks its SHA-256, adds an empty extension
module of our own, applies the post-0.6 upstream compatibility fixes (NumPy >= 1.24 aliases,
Pillow >= 10 ``Image.LINEAR``, ``launch`` choosing the gloo backend and DDP no ``device_ids``
when no GPU is present),
drops the ``black`` pin and the direct-URL extra from its ``setup.py``, and builds a wheel into
the cache directory, recording its SHA-256 next to it (``<wheel>.sha256``); a cached wheel is
reused only when it still has that hash. Nothing from detectron2 is vendored into this repository.
"""

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

SDIST_NAME = "pb1-detectron2-0.6.tar.gz"
SDIST_URL = (
    "https://files.pythonhosted.org/packages/60/26/"
    "48f5bbb7ee492696a21da23303daeecdfe3942c498a70d34108acf63b2bd/" + SDIST_NAME
)
SDIST_SHA256 = "5d2e9e51e523ec72f6a31cca04b0a515492e9514b773a3d134cedc0677170b29"

# The only symbol detectron2 0.6 needs from its extension at import time is the module itself.
PLACEHOLDER_EXTENSION = """\
// Placeholder for detectron2._C: ovavss_d2 uses none of detectron2's compiled operators. It answers
// the build questions detectron2's environment report (default_setup) asks.
#include <torch/extension.h>

#include <string>

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "detectron2._C placeholder built by ovavss_d2 (no compiled operators)";
  m.def("get_compiler_version", [] { return std::string("none (placeholder without operators)"); });
  m.def("get_cuda_version", [] { return std::string("none"); });
  m.def("has_cuda", [] { return false; });
}
"""
# Bump when the patched source changes, so that cached wheels of older builds are not reused.
# 3: launch() uses gloo and create_ddp_model() no device_ids without GPUs.
BUILD_REVISION = 3

NUMPY_ALIASES = {"np.bool": "bool", "np.int": "int", "np.float": "float", "np.str": "str"}


def sha256(path: Path) -> str:
    """Return the hex SHA-256 digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_sdist(cache: Path) -> Path:
    """Download the sdist into ``cache`` unless a copy with the right hash is already there."""
    target = cache / SDIST_NAME
    if target.exists() and sha256(target) == SDIST_SHA256:
        return target
    print(f"[build_detectron2] downloading {SDIST_URL}", flush=True)
    partial = target.with_suffix(".part")
    with urllib.request.urlopen(SDIST_URL, timeout=120) as response, open(partial, "wb") as f:
        shutil.copyfileobj(response, f)
    actual = sha256(partial)
    if actual != SDIST_SHA256:
        partial.unlink()
        raise SystemExit(f"[build_detectron2] hash mismatch for {SDIST_NAME}: {actual}")
    partial.replace(target)
    return target


# detectron2 0.6's engine/launch.py hard-codes NCCL and CUDA devices; upstream later made the
# worker choose gloo and skip the device calls when no GPU is present. The same edit here:
LAUNCH_FIXES = (
    (
        '    assert torch.cuda.is_available(), "cuda is not available. Please check your '
        'installation."\n',
        "    has_gpu = torch.cuda.is_available()\n",
    ),
    ('            backend="NCCL",\n', '            backend="NCCL" if has_gpu else "GLOO",\n'),
    (
        "    assert num_gpus_per_machine <= torch.cuda.device_count()\n"
        "    torch.cuda.set_device(local_rank)\n",
        "    if has_gpu:\n"
        "        assert num_gpus_per_machine <= torch.cuda.device_count()\n"
        "        torch.cuda.set_device(local_rank)\n",
    ),
)


# engine/defaults.py's create_ddp_model passes device_ids=[local rank], which DDP refuses for a
# CPU model: only with a GPU.
DEFAULTS_FIXES = (
    (
        '    if "device_ids" not in kwargs:\n',
        '    if "device_ids" not in kwargs and torch.cuda.is_available():\n',
    ),
)


def _apply(text: str, fixes, name: str) -> str:
    for old, new in fixes:
        if text.count(old) != 1:
            raise SystemExit(f"[build_detectron2] {name}: expected once: {old.strip()!r}")
        text = text.replace(old, new)
    return text


def patch_launch(text: str) -> str:
    """``engine/launch.py`` of detectron2 0.6 with the gloo fallback (exits if it does not fit)."""
    return _apply(text, LAUNCH_FIXES, "launch.py")


def patch_defaults(text: str) -> str:
    """``engine/defaults.py`` of detectron2 0.6: DDP of a CPU model without ``device_ids``."""
    return _apply(text, DEFAULTS_FIXES, "defaults.py")


def patch_source(src: Path) -> None:
    """Apply the placeholder extension and the post-0.6 compatibility fixes in place."""
    csrc = src / "detectron2" / "layers" / "csrc"
    csrc.mkdir(parents=True, exist_ok=True)
    (csrc / "vision.cpp").write_text(PLACEHOLDER_EXTENSION)

    alias = re.compile(r"\bnp\.(bool|int|float|str)\b(?!_)")
    for py in src.rglob("*.py"):
        text = py.read_text()
        new = alias.sub(lambda m: NUMPY_ALIASES[m.group(0)], text)
        new = new.replace("Image.LINEAR", "Image.BILINEAR")
        if new != text:
            py.write_text(new)

    engine = src / "detectron2" / "engine"
    (engine / "launch.py").write_text(patch_launch((engine / "launch.py").read_text()))
    (engine / "defaults.py").write_text(patch_defaults((engine / "defaults.py").read_text()))

    setup_py = src / "setup.py"
    text = setup_py.read_text()
    text = re.sub(r'\s*"black==[^"]*",', "", text)
    text = re.sub(r'\s*"panopticapi @ [^"]*",', "", text)
    setup_py.write_text(text)


def hash_file(wheel: Path) -> Path:
    """Where the SHA-256 of ``wheel`` is recorded."""
    return wheel.with_name(wheel.name + ".sha256")


def record_hash(wheel: Path) -> None:
    """Write ``<wheel>.sha256`` (``sha256sum`` format) right after the build."""
    hash_file(wheel).write_text(f"{sha256(wheel)}  {wheel.name}\n")


def verified(wheel: Path) -> bool:
    """Whether ``wheel`` still has the hash recorded when it was built."""
    record = hash_file(wheel)
    if not record.is_file():
        return False
    expected = record.read_text().split()[0] if record.read_text().strip() else ""
    return expected == sha256(wheel)


def main() -> None:
    """Build (or reuse) the wheel and print its path on the last line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="directory for sdist and wheel")
    args = parser.parse_args()
    wheel_dir = args.cache / f"wheels-r{BUILD_REVISION}"
    wheel_dir.mkdir(parents=True, exist_ok=True)

    for wheel in sorted(wheel_dir.glob("pb1_detectron2-0.6-*.whl")):
        if verified(wheel):
            print(wheel)
            return
        print(f"[build_detectron2] {wheel}: hash missing or changed; rebuilding", flush=True)
        wheel.unlink()
    sdist = fetch_sdist(args.cache)
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(sdist) as tar:
            tar.extractall(tmp, filter="data")
        src = Path(tmp) / "pb1-detectron2-0.6"
        patch_source(src)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-build-isolation",
                "--no-deps",
                "-w",
                str(wheel_dir),
                str(src),
            ],
            check=True,
        )
    wheels = sorted(wheel_dir.glob("pb1_detectron2-0.6-*.whl"))
    if not wheels:
        raise SystemExit("[build_detectron2] pip wheel finished but produced no wheel")
    record_hash(wheels[-1])
    print(wheels[-1])


if __name__ == "__main__":
    main()
