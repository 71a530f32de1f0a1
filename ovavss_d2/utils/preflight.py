"""Checks of command-line inputs that run before torch and Detectron2 are imported.

This module imports only the standard library and PyYAML, and the package is light at import
(``ovavss_d2/__init__.py``): ``demo/demo.py`` and ``train_net.py`` import it first, check their
arguments and files, and only then import the heavy stack, so that an input error is reported
within about a second. Every problem is an :class:`InputError` whose message starts with the file
(or argument) it concerns.
"""

import argparse
import contextlib
import os
import zipfile
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from .train_checks import training_option_problem

__all__ = [
    "InputError",
    "training_parser",
    "check_training_args",
    "parse_training_args",
    "read_config_chain",
    "parse_opts",
    "config_value",
    "weights_file_problem",
    "check_weights",
    "check_output_dir",
    "output_path",
    "check_device",
    "check_input_file",
    "merge_config",
    "remote_flag",
    "ints_for_float_keys",
    "D2_DEFAULTS",
]

# Detectron2 0.6 defaults of the keys checked here (tests/test_launch.py compares them with
# get_cfg(), so they cannot drift).
D2_DEFAULTS = {"MODEL.DEVICE": "cuda", "MODEL.WEIGHTS": "", "OUTPUT_DIR": "./output"}


class InputError(ValueError):
    """A bad command-line input; the message starts with the file or argument concerned."""


def training_parser(description: str = "") -> argparse.ArgumentParser:
    """The options of Detectron2's ``default_argument_parser``, without importing Detectron2.

    ``--dist-url`` defaults to ``auto`` (a free local port) on one machine.
    """
    parser = argparse.ArgumentParser(
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Clusters: run one command per machine with the same --num-machines N, its own "
        "--machine-rank (0..N-1) and --dist-url tcp://HOST0:PORT naming machine 0. See "
        "docs/RELIABILITY.md.",
    )
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to config file")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="resume from OUTPUT_DIR/last_checkpoint (model, optimizer, scheduler, data position "
        "and RNG states)",
    )
    parser.add_argument("--eval-only", action="store_true", help="perform evaluation only")
    parser.add_argument("--num-gpus", type=int, default=1, help="processes per machine")
    parser.add_argument("--num-machines", type=int, default=1, help="total number of machines")
    parser.add_argument(
        "--machine-rank", type=int, default=0, help="the rank of this machine (unique per machine)"
    )
    parser.add_argument(
        "--dist-url",
        default="auto",
        help="initialization URL for multi-process training: 'auto' (one machine, a free port) or "
        "tcp://IP_OF_MACHINE_0:PORT",
    )
    parser.add_argument(
        "--allow-remote-config",
        action="store_true",
        help="admit a config or _BASE_ given as a URL (read with YAML's safe loader)",
    )
    parser.add_argument(
        "opts",
        default=None,
        nargs=argparse.REMAINDER,
        help="modify config options at the end of the command, as KEY VALUE pairs",
    )
    return parser


def _yaml():
    import yaml  # PyYAML: light, and what yacs / fvcore parse configs with

    return yaml


def read_config_chain(path: str, allow_remote: Optional[bool] = None) -> Dict[str, Any]:
    """The YAML of ``path`` merged over its ``_BASE_`` chain (values only, no defaults), read by
    :func:`ovavss_d2.utils.safe_config.load_config_chain` (local files and the safe loader only).

    Raises:
        InputError: a missing file, a YAML syntax error (with its line), a document that is not a
            mapping, a ``_BASE_`` cycle or a refused URL.
    """
    from .safe_config import load_config_chain

    return load_config_chain(path, allow_remote)


def parse_opts(opts: Optional[Sequence[str]]) -> Dict[str, str]:
    """``KEY VALUE`` pairs of the command line as a dict (values as given).

    Raises:
        InputError: an odd number of items, or a key that is not dotted upper-case (a value given
            without its key).
    """
    opts = list(opts or [])
    if opts and opts[0] == "--":
        opts = opts[1:]
    if len(opts) % 2:
        raise InputError(
            f"--opts / trailing overrides: {len(opts)} items, but they come as KEY VALUE pairs "
            f"(the last key {opts[-1]!r} has no value?)"
        )
    pairs = {}
    for key, value in zip(opts[0::2], opts[1::2]):
        if not key or key.startswith("-") or key != key.upper() or " " in key:
            raise InputError(
                f"--opts / trailing overrides: {key!r} is not a config key (KEY VALUE pairs "
                "such as MODEL.WEIGHTS model.pth)"
            )
        pairs[key] = value
    return pairs


def config_value(chain: Dict[str, Any], opts: Dict[str, str], key: str) -> Any:
    """The value of dotted ``key``: command line, else config chain, else Detectron2 default."""
    if key in opts:
        return _yaml().safe_load(opts[key]) if opts[key] else ""
    node: Any = chain
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return D2_DEFAULTS.get(key)
        node = node[part]
    return node


def weights_file_problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be a weights file, or None; reads only its header and zip directory."""
    if not os.path.exists(path):
        return "no such file"
    if os.path.isdir(path):
        return "is a folder, not a weights file"
    size = os.path.getsize(path)
    if size == 0:
        return "the file is empty (0 bytes)"
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile:
            return f"an incomplete zip archive ({size} bytes): truncated download or copy?"
        if not any(n.endswith("data.pkl") for n in names):
            return "a zip archive without data.pkl: not a PyTorch checkpoint"
        return None
    if head[:1] == b"\x80" or head[:1] in (b"(", b"}", b"]"):
        return None  # a pickle: its contents are checked when it is read
    return f"neither a PyTorch checkpoint nor a pickle (it starts with {head!r})"


def check_weights(path: str) -> None:
    """Raise :class:`InputError` for a local weights file that cannot be read, or a model-zoo URL
    (``ovavss_d2://``) naming no file of the package (other URLs pass)."""
    from ovavss_d2 import model_zoo  # light: no torch

    if path.startswith(model_zoo.PREFIX):
        try:
            path = str(model_zoo.resolve(path))
        except model_zoo.ModelZooError as e:
            raise InputError(f"{e} (MODEL.WEIGHTS)") from None
    if not path or "://" in path:
        return
    problem = weights_file_problem(os.path.expanduser(path))
    if problem is not None:
        raise InputError(f"{path}: {problem} (MODEL.WEIGHTS)")


def output_path(path: str, what: str = "--output") -> Path:
    """The output folder ``path`` as a shell user means it: ``~`` expanded (also in
    ``--output=~/x``, which the shell leaves alone). Used both to check and to write.

    Raises:
        InputError: ``path`` is empty (it would mean the current folder).
    """
    if not str(path).strip():
        raise InputError(f"{what} is empty: give a folder (. for the current one)")
    return Path(os.path.expanduser(str(path)))


def check_output_dir(path: str, what: str = "--output") -> None:
    """Raise :class:`InputError` unless folder ``path`` exists or can be created and written."""
    target = output_path(path, what).absolute()
    if target.exists() and not target.is_dir():
        raise InputError(f"{path}: {what} exists and is not a folder")
    probe = target
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"{path}: {what} lies below the file '{probe}', which cannot hold folders")
    if _read_only_fs(probe):
        raise InputError(f"{path}: {what} lies on a read-only file system ('{probe}')")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"{path}: {what} cannot be written: no write permission on '{probe}'")


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def check_device(device: str) -> None:
    """Refuse ``cuda`` devices on a machine without any GPU device node (no torch needed)."""
    if not str(device).startswith("cuda"):
        return
    nodes = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/proc/driver/nvidia/gpus")
    if not any(os.path.exists(n) for n in nodes):
        raise InputError(
            f"MODEL.DEVICE {device}: this machine has no GPU (no NVIDIA or ROCm device): add "
            "MODEL.DEVICE cpu"
        )


def check_input_file(path: str, what: str) -> None:
    """Raise :class:`InputError` unless ``path`` is a non-empty readable file."""
    file = Path(path)
    if not file.exists():
        raise InputError(f"{what} '{path}' does not exist")
    if not file.is_file():
        raise InputError(f"{what} '{path}' is not a file")
    if file.stat().st_size == 0:
        raise InputError(f"{what} '{path}' is empty (0 bytes)")
    if not os.access(file, os.R_OK):
        raise InputError(f"{what} '{path}' cannot be read (permission denied)")


def first_line(error: Exception) -> str:
    """The first line of an exception's message (a KeyError's without its quotes)."""
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


@contextlib.contextmanager
def ints_for_float_keys():
    """Within the block, yacs merges accept an int where the default is a float (``KEY 0`` for a
    float key, in YAML files and in ``KEY VALUE`` overrides) and store it as a float; every other
    type mismatch (a bool, a string, a float for an int key) still raises yacs' "Type mismatch".

    yacs checks each merged value with ``yacs.config._check_and_coerce_cfg_value_type``; this
    wraps that function for the duration of the block (tests/utils/test_config_int_floats.py
    fails if yacs stops calling it).
    """
    import yacs.config

    check = yacs.config._check_and_coerce_cfg_value_type

    def coerce(replacement, original, key, full_key):
        if (
            isinstance(original, float)
            and isinstance(replacement, int)
            and not isinstance(replacement, bool)
        ):
            replacement = float(replacement)
        return check(replacement, original, key, full_key)

    yacs.config._check_and_coerce_cfg_value_type = coerce
    try:
        yield
    finally:
        yacs.config._check_and_coerce_cfg_value_type = check


def merge_config(
    cfg, config_file: str, opts: Sequence[str], opts_name: str, allow_remote: Optional[bool] = None
) -> None:
    """Merge ``config_file`` (its chain read by :mod:`ovavss_d2.utils.safe_config`) then ``opts``
    into a yacs ``cfg``; a bad key or value raises one :class:`InputError` naming the file, or
    ``opts_name`` for the overrides. An int is accepted for a float key
    (:func:`ints_for_float_keys`). ``allow_remote``: admit URLs (None: the environment decides)."""
    from .safe_config import merge_config_file

    with ints_for_float_keys():
        try:
            merge_config_file(cfg, str(config_file), allow_remote)
        except (KeyError, ValueError, AssertionError) as e:
            raise InputError(f"{config_file}: {first_line(e)}") from None
        try:
            cfg.merge_from_list(list(opts))
        except (KeyError, ValueError, AssertionError) as e:
            raise InputError(f"{opts_name}: {first_line(e)}") from None


def remote_flag(args: argparse.Namespace) -> Optional[bool]:
    """True with ``--allow-remote-config``, else None (``$OVAVSS_ALLOW_REMOTE_CONFIG`` decides)."""
    return True if getattr(args, "allow_remote_config", False) else None


def check_training_args(args: argparse.Namespace) -> None:
    """Check ``train_net.py``'s arguments: config chain, overrides, device, output folder, the
    weights (or the checkpoint ``--resume`` continues from) and the process counts.

    Raises:
        InputError: the first problem found.
    """
    if not args.config_file:
        raise InputError("--config-file: required (a YAML config under configs/)")
    chain = read_config_chain(args.config_file, remote_flag(args))
    opts = parse_opts(args.opts)
    check_device(str(config_value(chain, opts, "MODEL.DEVICE")))
    output_dir = str(config_value(chain, opts, "OUTPUT_DIR"))
    check_output_dir(output_dir, "OUTPUT_DIR")
    last = output_path(output_dir, "OUTPUT_DIR") / "last_checkpoint"
    problem = training_option_problem(
        lambda key: config_value(chain, opts, key),
        eval_only=args.eval_only,
        resuming=args.resume and last.is_file(),
        world_size=max(args.num_gpus, 1) * max(args.num_machines, 1),
    )
    if problem:
        raise InputError(problem)
    if args.resume and last.is_file():
        name = last.read_text().strip()
        if not name:
            raise InputError(f"{last}: empty (it should name the checkpoint to resume)")
        check_weights(str(last.parent / name))
    else:
        check_weights(str(config_value(chain, opts, "MODEL.WEIGHTS") or ""))
    if args.num_gpus < 1 or args.num_machines < 1:
        raise InputError("--num-gpus / --num-machines: must be at least 1")
    if not 0 <= args.machine_rank < args.num_machines:
        raise InputError(
            f"--machine-rank {args.machine_rank}: must lie in [0, {args.num_machines - 1}]"
        )


def parse_training_args(
    argv: Optional[Sequence[str]] = None, prog: str = "train_net.py", description: str = ""
) -> argparse.Namespace:
    """``train_net.py``'s arguments, parsed and checked; a bad input exits with one line
    ``<prog>: error: <problem>`` and status 2."""
    parser = training_parser(description)
    args = parser.parse_args(argv)
    try:
        check_training_args(args)
    except InputError as e:
        parser.exit(2, f"{prog}: error: {e}\n")
    return args
