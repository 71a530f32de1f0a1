"""The one reader of config files: the ``_BASE_`` chain resolved and checked before Detectron2.

Detectron2 0.6 reads config files itself with ``CfgNode.load_yaml_with_base``: it opens every
``_BASE_`` through PathManager (which downloads any ``http(s)://`` base into iopath's cache, keyed
by file name) and falls back to ``yaml.unsafe_load`` (which runs code) when the safe loader
refuses a document. ovavss_d2 never lets it: :func:`load_config_chain` reads the chain here and
:func:`merge_config_file` gives Detectron2 only the merged values. The rules:

- YAML is read with ``yaml.safe_load`` only: a Python tag (``!!python/object/apply:os.system``)
  is refused with its line, never run;
- a ``_BASE_`` (a file name, or a list of them merged in order, as fvcore does) is a local file:
  ``~`` is expanded and a relative name is resolved against the folder of the file that names it.
  A URL (any ``scheme://``, also when a local folder such as ``http:`` exists) is refused with one
  line unless remote configs are allowed (``--allow-remote-config``, or the environment variable
  ``OVAVSS_ALLOW_REMOTE_CONFIG=1``); allowed ones are downloaded through the project's cache
  (:mod:`ovavss_d2.utils.downloads`, keyed by the whole URL) and read with the safe loader too, and
  their own bases are resolved against their URL (a remote config never reads local files);
- cycles, chains deeper than :data:`MAX_DEPTH`, files over :data:`MAX_BYTES` and documents over
  :data:`MAX_VALUES` values (YAML anchors expanded) are refused;
- every key is a config name (letters, digits, ``_``): a YAML document of other keys is not a
  config (``/etc/shadow``'s lines parse as keys, which yacs would quote as unknown keys);
- error messages never quote a file's content: a YAML error gives its line and column and the
  parser's problem with quoted text removed, and a ``_BASE_`` that is not a readable YAML mapping
  (``_BASE_: /etc/shadow``) is reported as such, without its lines.

Only the standard library and PyYAML are imported at module level (the input checks of
``demo/demo.py`` and ``train_net.py`` run before torch is imported); :func:`merge_config_file`
imports Detectron2's version helpers when it runs.
"""

import copy
import os
import re
import urllib.parse
from typing import Any, Dict, List, Optional, Tuple, Union

from . import downloads
from .preflight import InputError

__all__ = [
    "ALLOW_REMOTE_ENV",
    "remote_allowed",
    "load_config_chain",
    "merge_config_file",
    "local_copy",
]

ALLOW_REMOTE_ENV = "OVAVSS_ALLOW_REMOTE_CONFIG"
MAX_DEPTH = 32
MAX_BYTES = 1 << 20
MAX_VALUES = 100_000

_REFUSAL = (
    "remote configs are refused: download the file, check it and name the local copy, or pass "
    f"--allow-remote-config (or set {ALLOW_REMOTE_ENV}=1) to read it with YAML's safe loader"
)


def remote_allowed(allow: Optional[bool] = None) -> bool:
    """``allow`` when given, else whether ``$OVAVSS_ALLOW_REMOTE_CONFIG`` is 1 / true / yes."""
    if allow is not None:
        return bool(allow)
    return os.environ.get(ALLOW_REMOTE_ENV, "").strip().lower() in ("1", "true", "yes")


def _yaml():
    import yaml

    return yaml


def _shown(name: Any) -> str:
    """A ``_BASE_`` value as it may appear in a message (one short line)."""
    text = str(name)
    if len(text) > 200 or not text.isprintable():
        return repr(text[:200])
    return text


class _File:
    """One file of the chain: how messages name it, where it is, and whether it is remote."""

    def __init__(self, shown: str, location: str, remote: bool):
        self.shown, self.location, self.remote = shown, location, remote


def _locate(name: str, parent: Optional[_File]) -> _File:
    if downloads.is_url(name):
        return _File(name, downloads.expand_url(name), True)
    if parent is not None and parent.remote:
        url = urllib.parse.urljoin(parent.location, name)
        return _File(url, url, True)
    path = os.path.expanduser(name)
    if parent is not None and not os.path.isabs(path):
        path = os.path.join(os.path.dirname(parent.shown), path)
    return _File(path, os.path.realpath(path), False)


def _unquoted(problem: str) -> str:
    """A PyYAML problem without the file text it quotes (``found character '\\t'`` is kept)."""

    def blank(match: "re.Match[str]") -> str:
        return match.group(0) if match.group(0) in ("'\\t'", "'\\x00'") else "'...'"

    return re.sub(r"'[^']*'|\"[^\"]*\"", blank, problem)


def _yaml_problem(error: Exception) -> str:
    yaml = _yaml()
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    if isinstance(error, yaml.constructor.ConstructorError):
        return (
            f"YAML tag refused{where}: configs are plain YAML (the safe loader builds no Python "
            "objects)"
        )
    problem = _unquoted(str(getattr(error, "problem", None) or "")).strip()
    return f"malformed YAML{where}" + (f": {problem}" if problem else "")


def _count_values(data: Any, budget: int) -> int:
    """``budget`` less the values in ``data`` (aliases counted each time); stops below 0."""
    stack = [data]
    while stack and budget >= 0:
        item = stack.pop()
        budget -= 1
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return budget


def _read_text(file: _File) -> Tuple[Optional[str], str]:
    """(text, '') or (None, why it cannot be read); never the file's content in the reason."""
    if file.remote:
        try:
            path = downloads.download(file.location, max_bytes=MAX_BYTES)
        except downloads.DownloadError as e:
            return None, str(e).replace(f"{file.location}: ", "", 1)
    else:
        path = file.location
        if not os.path.exists(path):
            return None, "not found"
        if os.path.isdir(path):
            return None, "is a folder"
        if not os.access(path, os.R_OK):
            return None, "no read permission"
        if os.path.getsize(path) > MAX_BYTES:
            return None, f"larger than {MAX_BYTES // (1 << 20)} MiB"
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        return None, f"read error: {e.strerror or type(e).__name__}"
    if len(raw) > MAX_BYTES:
        return None, f"larger than {MAX_BYTES // (1 << 20)} MiB"
    try:
        return raw.decode("utf-8"), ""
    except UnicodeDecodeError:
        return None, "not a text file (a YAML config was expected)"


def _parse(text: str) -> Tuple[Optional[Dict[str, Any]], str]:
    """(mapping, '') or (None, the problem, without the file's content)."""
    yaml = _yaml()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        return None, _yaml_problem(e)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return None, f"a config is a YAML mapping, got a {type(data).__name__}"
    if _count_values(data, MAX_VALUES) < 0:
        return None, f"more than {MAX_VALUES} values (YAML anchors expanded)"
    if not _names_only(data):
        return None, "holds keys that are not config names such as MODEL"
    return data, ""


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _names_only(data: Dict[Any, Any]) -> bool:
    """Whether every key of ``data`` and of its sub-mappings is a config name (an identifier):
    a YAML file of other keys (``root:x:0:0:::`` lines) is not a config, and yacs would quote its
    keys in an unknown-key error."""
    stack = [data]
    while stack:
        node = stack.pop()
        for key, value in node.items():
            if not (isinstance(key, str) and _NAME.fullmatch(key)):
                return False
            if isinstance(value, dict):
                stack.append(value)
    return True


def _merge(into: Dict[str, Any], new: Dict[str, Any], where: str, prefix: str = "") -> None:
    """Merge ``new`` over ``into`` as fvcore's ``load_yaml_with_base`` does."""
    for key, value in new.items():
        if isinstance(value, dict) and key in into:
            if not isinstance(into[key], dict):
                raise InputError(
                    f"{where}: {prefix}{key} is a mapping here but a single value in its _BASE_"
                )
            _merge(into[key], value, where, f"{prefix}{key}.")
        else:
            into[key] = copy.deepcopy(value)


def _load(name: str, parent: Optional[_File], chain: List[_File], allow: bool) -> Dict[str, Any]:
    file = _locate(name, parent)
    # How messages introduce a problem of this file: its own name at the top of the chain, the
    # including file and the _BASE_ value below it.
    label = f"{parent.shown}: _BASE_ {_shown(name)}" if parent else _shown(name)
    if file.remote and not allow:
        raise InputError(f"{label}: {_REFUSAL}")
    if any(file.location == seen.location for seen in chain):
        cycle = " -> ".join([seen.shown for seen in chain] + [file.shown])
        raise InputError(f"{label}: _BASE_ cycle ({cycle})")
    if len(chain) >= MAX_DEPTH:
        raise InputError(f"{label}: _BASE_ chain deeper than {MAX_DEPTH} files")
    text, problem = _read_text(file)
    if text is None and problem == "not found":
        of = f" (the _BASE_ of {parent.shown})" if parent else ""
        raise InputError(f"config file '{file.shown}' not found{of}")
    if text is not None:
        data, problem = _parse(text)
    if text is None or data is None:
        if parent is None:
            raise InputError(f"{label}: {problem}")
        raise InputError(f"{label}: not a readable YAML mapping ({problem})")
    base = data.pop("_BASE_", None)
    if base is None:
        return data
    bases = base if isinstance(base, list) else [base]  # [] names no base, as in fvcore
    if not all(isinstance(b, str) and b.strip() for b in bases):
        raise InputError(
            f"{file.shown}: _BASE_ must name a config file (or a list of them), got "
            f"{type(base).__name__} {_shown(base)}"
        )
    merged: Dict[str, Any] = {}
    for one in bases:
        _merge(merged, _load(one, file, chain + [file], allow), file.shown)
    _merge(merged, data, file.shown)
    return merged


def load_config_chain(
    path: Union[str, os.PathLike], allow_remote: Optional[bool] = None
) -> Dict[str, Any]:
    """The values of config ``path`` merged over its ``_BASE_`` chain (no defaults).

    Args:
        path: a local config file (or, when remote configs are allowed, a URL).
        allow_remote: admit URLs; None: as ``$OVAVSS_ALLOW_REMOTE_CONFIG`` says.

    Raises:
        InputError: one line naming the file (and the ``_BASE_``) concerned; see the module
            docstring.
    """
    return _load(os.fspath(path), None, [], remote_allowed(allow_remote))


def local_copy(path: Union[str, os.PathLike]) -> str:
    """``path``, or for a URL its copy in the download cache (for readers of the file's text
    such as Detectron2's ``default_setup``, which would otherwise download it again)."""
    path = os.fspath(path)
    return str(downloads.download(path, max_bytes=MAX_BYTES)) if downloads.is_url(path) else path


def merge_config_file(
    cfg, path: Union[str, os.PathLike], allow_remote: Optional[bool] = None
) -> None:
    """Merge config ``path`` (read by :func:`load_config_chain`) into the yacs / Detectron2 ``cfg``
    as Detectron2's ``CfgNode.merge_from_file`` does (an older ``VERSION`` is upgraded).

    Raises:
        InputError: a problem of the file chain.
        KeyError, ValueError, AssertionError: yacs' errors (an unknown or renamed key, a value of
            another type), as from ``merge_from_file``.
    """
    path = os.fspath(path)
    loaded = type(cfg)(load_config_chain(path, allow_remote))
    if "VERSION" not in cfg:  # a plain yacs / fvcore config
        cfg.merge_from_other_cfg(loaded)
        return
    from detectron2.config.compat import downgrade_config, guess_version, upgrade_config

    version = loaded.get("VERSION", None)
    if version is None:
        version = guess_version(loaded, path)
    if version > cfg.VERSION:
        raise InputError(f"{path}: a VERSION {version} config, newer than this Detectron2's")
    if version == cfg.VERSION:
        cfg.merge_from_other_cfg(loaded)
        return
    old = downgrade_config(cfg, to_version=version)
    old.merge_from_other_cfg(loaded)
    new = upgrade_config(old)
    cfg.clear()
    cfg.update(new)
