"""The manifest of a build: a hash of every written file, the versions it was built with, and a
fingerprint that says whether two builds are byte-identical.

``<root>/manifest.json``::

    format          1
    generator       which builder wrote the root (``avss_synth`` or ``avss_synth_long``)
    arguments       the builder's arguments (seed, clip counts, size, ...)
    versions        Debian media packages (``dpkg-query``; "unknown" without dpkg) and the Python
                    packages and libraries that decode, resample and encode (numpy, Pillow and its
                    libjpeg / zlib, OpenCV, torch, torchaudio, soundfile and libsndfile, ...)
    files           path relative to the root (``/``-separated) -> sha256 of the file's bytes
    fingerprint     sha256 over the sorted ``"<sha256>  <path>"`` lines of ``files``
    media           the input media the build could draw from (stamps, recordings, backgrounds,
                    the pooled noise recordings): ``files`` (short name -> sha256) and their
                    ``fingerprint``, which tells two machines' media apart when builds differ

The fingerprint depends on the written bytes only (not on the versions, the arguments or the
machine), so two machines that write the same files share it. ``verify`` recomputes the hashes of
a root and lists the files that differ from its manifest.
"""

import hashlib
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Mapping, Optional

MANIFEST = "manifest.json"
FORMAT = 1
MEDIA_PACKAGES = ("tuxpaint-stamps-default", "opencv-doc")
# distributions whose code decodes, resamples, renders or encodes what the generator writes
PYTHON_PACKAGES = (
    "numpy",
    "pillow",
    "opencv-python-headless",
    "opencv-python",
    "torch",
    "torchaudio",
    "soundfile",
    "scikit-image",
)
SHORT = 16  # hex digits of the fingerprint that the builders print


def sha256_file(path: os.PathLike, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def file_hashes(root: os.PathLike) -> Dict[str, str]:
    """Relative path (``/``-separated) -> sha256 of every file under ``root`` but the manifest.

    Hard links (the variants' frames and labels) are read once."""
    root = Path(root)
    out: Dict[str, str] = {}
    seen: Dict[tuple, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if rel == MANIFEST:
                continue
            st = path.stat()
            key = (st.st_dev, st.st_ino)
            if key not in seen:
                seen[key] = sha256_file(path)
            out[rel] = seen[key]
    return dict(sorted(out.items()))


def fingerprint(files: Mapping[str, str]) -> str:
    """sha256 over the sorted ``"<sha256>  <path>\\n"`` lines (as ``sha256sum`` prints them)."""
    digest = hashlib.sha256()
    for rel in sorted(files):
        digest.update(f"{files[rel]}  {rel}\n".encode())
    return digest.hexdigest()


def _dpkg_version(package: str) -> str:
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", package],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def _python_versions() -> Dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in PYTHON_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    try:  # the codecs inside the wheels: what actually encodes JPEG / PNG and reads / writes audio
        from PIL import features

        out["libjpeg (Pillow)"] = str(features.version("jpg"))
        out["zlib (Pillow)"] = str(features.version("zlib"))
        for feature in ("libjpeg_turbo", "zlib_ng"):  # unknown features raise in old Pillows
            if features.check_feature(feature):
                out[f"{feature} (Pillow)"] = str(features.version_feature(feature))
    except Exception:  # noqa: BLE001 - an old Pillow without features.version
        pass
    try:
        import soundfile

        out["libsndfile"] = str(soundfile.__libsndfile_version__)
    except Exception:  # noqa: BLE001
        pass
    try:
        import cv2

        out["cv2"] = cv2.__version__
    except Exception:  # noqa: BLE001
        pass
    try:
        import numpy as np

        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        out["blas (numpy)"] = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # noqa: BLE001 - numpy < 1.26 has no mode="dicts"
        pass
    return out


def versions() -> Dict[str, Dict[str, str]]:
    """The versions a build depends on: Debian media packages, Python packages, CPU."""
    return {
        "media_packages": {p: _dpkg_version(p) for p in MEDIA_PACKAGES},
        "python_packages": _python_versions(),
        "machine": {"platform": platform.platform(), "processor": _cpu_name()},
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def media_hashes(paths: Iterable[str], name: Callable[[str], str]) -> Dict[str, Dict]:
    """``{"fingerprint", "files"}`` of the input media ``paths`` (keyed by their short ``name``)."""
    files = {name(p): sha256_file(p) for p in sorted(set(paths))}
    files = dict(sorted(files.items()))
    return {"fingerprint": fingerprint(files), "files": files}


def write_manifest(
    root: os.PathLike,
    generator: str,
    arguments: Mapping,
    media: Optional[Mapping] = None,
) -> Dict:
    """Hash every file under ``root`` and write ``manifest.json``; return the manifest.

    ``media``: ``media_hashes`` of the inputs (recorded, not part of the fingerprint)."""
    files = file_hashes(root)
    manifest = {
        "format": FORMAT,
        "generator": generator,
        "arguments": dict(arguments),
        "versions": versions(),
        "fingerprint": fingerprint(files),
        "files": files,
    }
    if media is not None:
        manifest["media"] = dict(media)
    with open(Path(root) / MANIFEST, "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    return manifest


def read_manifest(root: os.PathLike) -> Dict:
    """``manifest.json`` of a root (FileNotFoundError without one)."""
    with open(Path(root) / MANIFEST) as f:
        return json.load(f)


def verify(root: os.PathLike) -> Dict[str, List[str]]:
    """Compare the files under ``root`` with its manifest.

    Returns:
        ``{"changed": [...], "missing": [...], "extra": [...], "fingerprint": <of the files on
        disk>, "expected": <the manifest's>}``; the build is intact when the three lists are empty.
    """
    manifest = read_manifest(root)
    expected = manifest["files"]
    actual = file_hashes(root)
    return {
        "changed": sorted(k for k in expected if k in actual and actual[k] != expected[k]),
        "missing": sorted(k for k in expected if k not in actual),
        "extra": sorted(k for k in actual if k not in expected),
        "fingerprint": fingerprint(actual),
        "expected": manifest["fingerprint"],
    }


def add_verify_arguments(parser) -> None:
    """``--verify`` and ``--expect`` of the builders' command lines (an argparse parser)."""
    parser.add_argument(
        "--verify",
        action="store_true",
        help="build nothing: recompute the hashes of the build in --output, list the files that "
        "differ from its manifest.json and print its fingerprint (exit status 1 if any differ)",
    )
    parser.add_argument(
        "--expect",
        metavar="FINGERPRINT",
        default=None,
        help="with --verify: also fail unless the fingerprint starts with this (e.g. the one "
        "docs/RESULTS.md names)",
    )


def report_verify(root: os.PathLike, expect: Optional[str] = None, limit: int = 20) -> int:
    """Print ``verify``'s findings; 0 when the build matches its manifest (and the fingerprint
    starts with ``expect`` when given), 1 otherwise, 2 without a manifest."""
    try:
        result = verify(root)
    except FileNotFoundError:
        print(f"error: {Path(root) / MANIFEST} not found (built before manifests were written?)")
        return 2
    bad = 0
    for kind in ("changed", "missing", "extra"):
        names = result[kind]
        bad += len(names)
        for name in names[:limit]:
            print(f"{kind}: {name}")
        if len(names) > limit:
            print(f"{kind}: ... and {len(names) - limit} more")
    print(f"fingerprint: {result['fingerprint'][:SHORT]}")
    if bad:
        expected = result["expected"][:SHORT]
        print(f"{bad} file(s) differ from {MANIFEST} (fingerprint there: {expected})")
    if expect and not result["fingerprint"].startswith(expect.lower()):
        print(f"the fingerprint differs from the expected {expect}")
        bad += 1
    if not bad:
        print("ok: every file matches the manifest")
    return 1 if bad else 0
