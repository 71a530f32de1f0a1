"""Dataset problems reported as one line (train_net.py).

``check_config_datasets(cfg, training)`` loads every dataset a run will read (DATASETS.TRAIN when
training, and DATASETS.TEST, evaluated at the end of training too) before the model is built, and
turns what can be wrong with them into a :class:`DatasetError` naming the config key, the
dataset and the file: an unregistered name, a missing root or ``metadata.csv``, a malformed
metadata file, a clip with missing frames, labels or audio or a link outside the root, a dataset
with no clips. The contents of frames, labels and audio are read only when a clip is mapped:
:class:`ReportClipErrors` wraps a mapper so that a corrupt or unreadable file becomes a
``DatasetError`` too, and :func:`quiet_training_traceback` keeps Detectron2's training loop from
logging its traceback before train_net.py prints the one line (docs/RELIABILITY.md).
"""

import difflib
import logging
import os
from typing import Callable, List, Optional

from detectron2.data import DatasetCatalog, MetadataCatalog

__all__ = [
    "DatasetError",
    "one_line",
    "load_checked",
    "check_config_datasets",
    "ReportClipErrors",
    "quiet_training_traceback",
]

# What a DataLoader worker's exception becomes in the main process (torch's ExceptionWrapper):
# "Caught DatasetError in DataLoader worker process 0.\nOriginal Traceback ...\n<type>: <message>".
_WORKER_MARK = "\nOriginal Traceback"


class DatasetError(ValueError):
    """A dataset of the config cannot be used; the message is one line naming the file."""

    def __init__(self, message: str):
        if _WORKER_MARK in message:  # re-raised from a DataLoader worker: keep the message only
            last = message.rstrip().splitlines()[-1]
            message = last.split(f"{type(self).__name__}: ", 1)[-1]
        super().__init__(message)


def one_line(error: BaseException) -> str:
    """The message of ``error`` on one line: the first line, its first listed problem and how
    many more there are (the loader lists a clip's or the metadata's problems one per line)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    head, listed = lines[0], [line for line in lines[1:] if not line.startswith("... and ")]
    if not listed:
        return head
    more = len(listed) - 1
    for line in lines[1:]:
        if line.startswith("... and ") and line.split()[2].isdigit():
            more += int(line.split()[2])
    text = f"{head.rstrip(':')}: {listed[0]}"
    return text + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def _validate_hint(name: str) -> str:
    meta = MetadataCatalog.get(name)
    root = meta.get("dataset_root", "")
    if not root or not os.path.isdir(root):
        return ""
    class_list = meta.get("class_list_file", "")
    option = f" --class-list {class_list}" if class_list else ""
    return f"; `python -m ovavss_d2.data.validate {root}{option}` lists every problem"


def load_checked(name: str, key: str = "DATASETS.TRAIN") -> List[dict]:
    """``DatasetCatalog.get(name)``, with every problem as a one-line :class:`DatasetError`.

    Args:
        name: a registered dataset name.
        key: the config key that names it (starts the message).

    Raises:
        DatasetError: ``"<key> '<name>': <problem>"``.
    """
    registered = DatasetCatalog.list()
    if name not in registered:
        close = difflib.get_close_matches(name, registered, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see datasets/README.md"
        raise DatasetError(f"{key}: dataset '{name}' is not registered ({hint})")
    try:
        dicts = DatasetCatalog.get(name)
    except (OSError, ValueError) as e:  # our loaders name the file; KeyError etc. are bugs
        message = one_line(e)
        if "ovavss_d2.data.validate" not in message:
            message += _validate_hint(name)
        raise DatasetError(f"{key} '{name}': {message}") from None
    if not dicts:
        meta = MetadataCatalog.get(name)
        where = meta.get("dataset_root", "its root")
        splits, subsets = meta.get("splits", None), meta.get("subsets", None)
        which = f" of split {'/'.join(splits)}, subsets {'/'.join(subsets)}" if splits else ""
        raise DatasetError(
            f"{key} '{name}': no clips{which} in {where} (an empty metadata.csv, or every clip "
            "dropped or skipped: see the log above)"
        )
    return dicts


def check_config_datasets(cfg, training: bool) -> None:
    """Load every dataset the run reads (DATASETS.TRAIN when ``training``; DATASETS.TEST, which
    training evaluates at its end too) before the model is built.

    Raises:
        DatasetError: the first problem, one line.
    """
    keys = (("DATASETS.TRAIN", cfg.DATASETS.TRAIN),) if training else ()
    for key, names in keys + (("DATASETS.TEST", cfg.DATASETS.TEST),):
        for name in names:
            load_checked(name, key)


class ReportClipErrors:
    """A mapper whose file errors name the clip and file as a one-line :class:`DatasetError`.

    Only errors whose message names one of the clip's files are converted (the readers of frames,
    labels and audio all do); any other error is a bug and keeps its traceback.
    """

    def __init__(self, mapper: Callable[[dict], dict]):
        self.mapper = mapper

    def __call__(self, dataset_dict: dict) -> dict:
        try:
            return self.mapper(dataset_dict)
        except (OSError, ValueError) as e:
            message = str(e)
            files = list(dataset_dict.get("file_names", []))
            files += [f for f in dataset_dict.get("sem_seg_file_names", []) if f]
            files += [dataset_dict.get("audio_file_name") or ""]
            if not any(f and str(f) in message for f in files):
                raise
            clip = dataset_dict.get("clip_id", "?")
            raise DatasetError(f"clip '{clip}': {one_line(e)}") from None


class _DropDatasetErrorTraceback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DatasetError)


_FILTER: Optional[_DropDatasetErrorTraceback] = None


def quiet_training_traceback() -> None:
    """Keep Detectron2's training loop from logging the traceback of a :class:`DatasetError`
    ("Exception during training:"); the caller reports it as one line. Idempotent."""
    global _FILTER
    if _FILTER is None:
        _FILTER = _DropDatasetErrorTraceback()
        logging.getLogger("detectron2.engine.train_loop").addFilter(_FILTER)
