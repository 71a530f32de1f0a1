"""Check an AVSBench-semantic-format dataset root and report every problem found.

    python -m ovavss_d2.data.validate ROOT [--class-list FILE] [--no-audio] [--no-labels]
                                           [--workers N]

Problems reported (all of them, not only the first): a missing or unparseable ``metadata.csv``;
metadata without any row (an empty dataset); metadata rows with unknown classes, subsets or
splits, uids that escape the root (``..``, absolute paths) or repeat; clip folders, their
``frames`` / ``labels_rgb`` folders and frame, label or audio files that resolve (symlinks)
outside the root (named; nothing is read through them); a ``label2idx.json`` that disagrees with
the class list; missing clip folders; clips whose frame count does not match their subset;
missing or unreadable frames, labels and audio; frames of different sizes in one clip; labels
whose size differs from their frame or whose colours lie outside the class list's palette; empty
audio or audio with NaN / inf samples. The command prints one line per problem and a summary, and
exits with status 1 when it found any problem (0 otherwise).
"""

import argparse
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple, Union

from PIL import Image, UnidentifiedImageError

from .audio import read_audio
from .class_lists import ClassList, PathLike, load_class_list
from .datasets.avsbench_format import (
    DatasetFormatError,
    check_label2idx,
    outside_root,
    read_metadata,
    scan_clip,
)
from .labels import read_label_map

__all__ = ["ValidationReport", "validate_dataset", "main"]

logger = logging.getLogger(__name__)


@dataclass
class ValidationReport:
    """Outcome of ``validate_dataset``: every problem, each a message that starts with a path."""

    root: str
    num_clips: int = 0  # clips (valid metadata rows) whose files were checked
    problems: List[Tuple[str, str]] = field(default_factory=list)  # (kind, message)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, kind: str, message: str) -> None:
        self.problems.append((kind, message))

    def messages(self, kind: Optional[str] = None) -> List[str]:
        """Problem messages, optionally of one kind (metadata, clip, frame, label, audio)."""
        return [m for k, m in self.problems if kind is None or k == kind]

    def summary(self) -> str:
        """One line: clips checked and problems per kind."""
        if self.ok:
            return f"{self.root}: OK ({self.num_clips} clips checked)"
        kinds = {}
        for k, _ in self.problems:
            kinds[k] = kinds.get(k, 0) + 1
        per_kind = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        return (
            f"{self.root}: {len(self.problems)} problems ({per_kind}); "
            f"{self.num_clips} clips of valid metadata rows checked"
        )


def _check_frame(path: str) -> Tuple[Optional[Tuple[int, int]], Optional[str]]:
    """Decode a frame fully; ``((h, w), None)`` or ``(None, problem)``."""
    try:
        with Image.open(path) as img:
            img.load()
            return (img.size[1], img.size[0]), None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        return None, f"{path}: cannot read frame image ({e})"


def _check_clip(args) -> List[Tuple[str, str]]:
    """Every problem of one clip: (kind, message) pairs."""
    row, root, num_classes, check_labels, check_audio = args
    clip_dir = os.path.join(root, row.subset, row.uid)
    escape = outside_root(clip_dir, root)
    if escape is not None:  # report it, and read nothing through the link
        return [("clip", escape)]
    files = scan_clip(clip_dir, row.subset, row.split, root)
    problems = list(files.problems)
    sizes = {}
    for path in files.frames:
        size, problem = _check_frame(path)
        if problem:
            problems.append(("frame", problem))
        else:
            sizes[path] = size
    distinct = sorted(set(sizes.values()))
    if len(distinct) > 1:
        problems.append(("frame", f"{clip_dir}: frames have different sizes {distinct} (HxW)"))
    frame_size = distinct[0] if len(distinct) == 1 else None
    if check_labels:
        for path in files.labels:
            if path is None:
                continue
            try:
                read_label_map(path, num_classes, expected_size=frame_size)
            except (FileNotFoundError, ValueError) as e:
                problems.append(("label", str(e)))
    if check_audio and files.audio:
        try:
            read_audio(files.audio)
        except (FileNotFoundError, ValueError) as e:
            problems.append(("audio", str(e)))
    return problems


def validate_dataset(
    root: PathLike,
    *,
    class_list: Union[ClassList, PathLike] = "avsbench_semantic.txt",
    check_labels: bool = True,
    check_audio: bool = True,
    num_workers: int = 0,
) -> ValidationReport:
    """Walk a dataset root and collect every problem (see the module docstring).

    Args:
        root: dataset root holding ``metadata.csv``.
        class_list: the class list (or its file) of metadata names and label colours.
        check_labels: decode every label file (the slowest check).
        check_audio: read every audio file.
        num_workers: threads for the per-clip checks (0 or 1: no extra thread).

    Returns:
        a ``ValidationReport``; ``report.ok`` is True when nothing was found.
    """
    root = os.fspath(root)
    report = ValidationReport(root=root)
    classes = class_list if isinstance(class_list, ClassList) else load_class_list(class_list)
    if not os.path.isdir(root):
        report.add("metadata", f"{root}: dataset root not found")
        return report
    mismatch = check_label2idx(root, classes)
    if mismatch:
        report.add("metadata", mismatch)
    try:
        rows, problems = read_metadata(root, classes)
    except (FileNotFoundError, DatasetFormatError) as e:
        report.add("metadata", str(e))
        return report
    for p in problems:
        report.add("metadata", p)
    if not rows and not problems:
        report.add("metadata", f"{os.path.join(root, 'metadata.csv')}: no clips (no rows)")

    jobs = [(row, root, len(classes), check_labels, check_audio) for row in rows]
    if num_workers > 1:
        # Threads, not processes: decoding and file reads release the GIL, and forking a process
        # that has started torch's thread pool can deadlock.
        with ThreadPoolExecutor(num_workers) as pool:
            results = list(pool.map(_check_clip, jobs))
    else:
        results = [_check_clip(job) for job in jobs]
    report.num_clips = len(rows)
    for clip_problems in results:
        for kind, message in clip_problems:
            report.add(kind, message)
    return report


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry: print every problem and a summary; return 1 when problems were found."""
    parser = argparse.ArgumentParser(
        prog="python -m ovavss_d2.data.validate",
        description="Check an AVSBench-semantic-format dataset root and report every problem.",
    )
    parser.add_argument(
        "root", help="dataset root (holds metadata.csv), e.g. datasets/AVSBench-semantic"
    )
    parser.add_argument(
        "--class-list",
        default="avsbench_semantic.txt",
        help="class list file or packaged name (default: avsbench_semantic.txt; "
        "AVSS-Synth: avss_synth.txt)",
    )
    parser.add_argument("--no-labels", action="store_true", help="do not decode label files")
    parser.add_argument("--no-audio", action="store_true", help="do not read audio files")
    parser.add_argument("--workers", type=int, default=0, help="threads for the per-clip checks")
    args = parser.parse_args(argv)
    try:
        classes = load_class_list(args.class_list)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report = validate_dataset(
        args.root,
        class_list=classes,
        check_labels=not args.no_labels,
        check_audio=not args.no_audio,
        num_workers=args.workers,
    )
    for kind, message in report.problems:
        print(f"[{kind}] {message}")
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
