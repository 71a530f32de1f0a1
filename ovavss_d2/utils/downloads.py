"""The project's downloads, cached under a key of the whole URL.

Everything ovavss_d2 downloads itself (remote configs that ``--allow-remote-config`` admits,
``MODEL.WEIGHTS`` given as a URL) lands in ``<root>/<sha256 of the URL>/<file name>``: two URLs
that share a file name (``https://a/x/base.yaml`` and ``https://b/y/base.yaml``, or the same path
on two hosts, or two query strings) never share a cache entry, unlike iopath's cache
(``~/.torch/iopath_cache/<path of the URL>``), which ignores the host and keeps the first file of a
name. The file name is kept inside the folder so that its extension (``.pkl`` / ``.pth``) still
tells readers the format.

The root is ``$OVAVSS_D2_CACHE/downloads`` when that variable is set, else
``~/.cache/ovavss_d2/downloads``. A download is written to a temporary file beside its entry and
renamed when complete, so a broken transfer never leaves a partial entry, and processes that
download the same URL at once each end with the whole file.

Standard library only (no torch): the input checks of ``demo/demo.py`` and ``train_net.py`` use it.
"""

import hashlib
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import BinaryIO, Optional, Union

__all__ = [
    "DownloadError",
    "is_url",
    "expand_url",
    "cache_root",
    "cache_path",
    "download",
    "clear",
]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# Detectron2's PathManager reads detectron2://X from this prefix (detectron2/utils/file_io.py).
DETECTRON2_PREFIX = "https://dl.fbaipublicfiles.com/detectron2/"
DOWNLOADABLE_SCHEMES = ("http", "https", "ftp")
TIMEOUT_SECONDS = 60


class DownloadError(OSError):
    """A URL that could not be downloaded; the message starts with the URL."""


def is_url(name: Union[str, os.PathLike]) -> bool:
    """Whether ``name`` starts with a URL scheme (``http://``, ``detectron2://``, ...)."""
    return bool(_SCHEME.match(str(name)))


def expand_url(url: str) -> str:
    """``url`` with ``detectron2://`` spelt out as the https address Detectron2 reads it from."""
    if url.startswith("detectron2://"):
        return DETECTRON2_PREFIX + url[len("detectron2://") :]
    return url


def cache_root() -> Path:
    """The folder of the download cache (see the module docstring)."""
    base = os.environ.get("OVAVSS_D2_CACHE")
    if base:
        return Path(os.path.expanduser(base)) / "downloads"
    return Path(os.path.expanduser("~/.cache/ovavss_d2/downloads"))


def _file_name(url: str) -> str:
    name = os.path.basename(urllib.parse.unquote(urllib.parse.urlparse(url).path))
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")[:100]
    return name or "download"


def cache_path(url: str, root: Optional[Union[str, os.PathLike]] = None) -> Path:
    """Where ``url`` is cached: a folder named by the SHA-256 of the whole (expanded) URL, holding
    a file named as the URL's last path component."""
    url = expand_url(url)
    key = hashlib.sha256(url.encode("utf-8")).hexdigest()
    return Path(root if root is not None else cache_root()) / key / _file_name(url)


def _fetch(url: str, out: BinaryIO, max_bytes: Optional[int]) -> None:
    """Write the body of ``url`` to ``out``; tests replace this function (no network)."""
    with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
        copied = 0
        while True:
            chunk = response.read(1 << 20)
            if not chunk:
                return
            copied += len(chunk)
            if max_bytes is not None and copied > max_bytes:
                raise DownloadError(f"{url}: larger than {max_bytes} bytes")
            out.write(chunk)


def download(
    url: str,
    root: Optional[Union[str, os.PathLike]] = None,
    max_bytes: Optional[int] = None,
) -> Path:
    """The local copy of ``url`` (http, https, ftp or detectron2://), downloaded on first use.

    Raises:
        DownloadError: another scheme, a failed transfer or a body over ``max_bytes``.
    """
    full = expand_url(url)
    scheme = urllib.parse.urlparse(full).scheme.lower()
    if scheme not in DOWNLOADABLE_SCHEMES:
        raise DownloadError(
            f"{url}: cannot download {scheme}:// URLs (http, https, ftp and detectron2:// only)"
        )
    target = cache_path(full, root)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix=".partial-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            _fetch(full, out, max_bytes)
        os.replace(partial, target)
    except DownloadError:
        raise
    except (urllib.error.URLError, OSError, ValueError) as e:
        http = isinstance(e, urllib.error.HTTPError)
        reason = e if http else (getattr(e, "reason", None) or e)
        raise DownloadError(f"{url}: download failed ({reason})") from None
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target


def clear(url: str, root: Optional[Union[str, os.PathLike]] = None) -> None:
    """Remove the cache entry of ``url`` (its whole folder), if any."""
    shutil.rmtree(cache_path(url, root).parent, ignore_errors=True)
