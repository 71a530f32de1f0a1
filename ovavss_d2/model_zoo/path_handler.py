"""Registers the ``ovavss_d2://`` prefix with Detectron2's ``PathManager`` (imports Detectron2).

Importing this module is enough; :mod:`ovavss_d2.checkpoint` and ``ovavss_d2.setup()`` do.
"""

from detectron2.utils.file_io import PathHandler, PathManager

from . import PREFIX, resolve


class OVAVSSModelZooHandler(PathHandler):
    """``ovavss_d2://<path>``: the file ``<path>`` inside the installed ovavss_d2 package."""

    def _get_supported_prefixes(self):
        return [PREFIX]

    def _get_local_path(self, path, **kwargs):
        return str(resolve(path))

    def _open(self, path, mode="r", buffering=-1, **kwargs):
        return open(self._get_local_path(path), mode, buffering=buffering)

    def _exists(self, path, **kwargs):
        try:
            resolve(path)
        except FileNotFoundError:
            return False
        return True

    def _isfile(self, path, **kwargs):
        return self._exists(path)


def register() -> None:
    """Register the handler (again: a no-op)."""
    if PREFIX not in PathManager._path_handlers:
        PathManager.register_handler(OVAVSSModelZooHandler())


register()
