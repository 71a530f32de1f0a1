"""Every command in the docs still works as written: the script exists, its flags parse, each
config file with its ``KEY VALUE`` overrides loads, and the cheap commands run.

Commands are read from the shell code blocks and the inline code (`python ...`, `bash ...`) of
README.md, docs/*.md, datasets/README.md, tools/README.md and demo/README.md. Any script gets the
generic checks (exists, ``--help`` exits 0, every ``--flag`` of the command is in its help); the
table ``CHEAP`` lists the commands that also run here, with their outputs sent to a temp folder.
"""

import functools
import glob
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", *sorted(glob.glob("docs/*.md", root_dir=ROOT))]
DOCS += ["datasets/README.md", "tools/README.md", "demo/README.md"]
SHELL_BLOCKS = ("", "bash", "sh", "shell", "console")
COMMAND_START = re.compile(r"^(?:\w+=\S+ +)*(?:\.venv/bin/)?(?:python3?|bash|pip)\b")
INLINE = re.compile(r"(?<!`)`((?:\w+=\S+ +)*(?:\.venv/bin/)?(?:python3?|bash) [^`]+)`")
CONFIG_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)*$")
# Values of variables the docs use without defining them in the block.
KNOWN_VARIABLES = {"DETECTRON2_DATASETS": "datasets"}


@dataclass
class Command:
    doc: str
    text: str  # as written (one line, continuations joined)
    argv: List[str]
    env: Dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.doc}: {self.text}"

    def __len__(self) -> int:
        return len(self.argv)


def _commands_of_block(doc: str, body: str) -> List[Command]:
    body = re.sub(r"\\\n\s*", " ", body)
    variables = dict(KNOWN_VARIABLES)
    out = []
    for line in body.splitlines():
        line = line.strip()
        assignment = re.match(r"^([A-Z_]+)=(\"[^\"]*\"|'[^']*'|\S+)$", line)
        if assignment:  # NAME="..." on its own line: a variable for the next commands
            variables[assignment.group(1)] = shlex.split(assignment.group(2))[0]
            continue
        if not COMMAND_START.match(line):
            continue
        for part in line.split("&&"):
            out.append(_parse(doc, part.strip(), variables))
    return out


def _parse(doc: str, text: str, variables: Dict[str, str]) -> Command:
    expanded = re.sub(r"\$\{?(\w+)\}?", lambda m: variables.get(m.group(1), m.group(0)), text)
    argv = shlex.split(expanded, comments=True)
    env = {}
    while argv and re.match(r"^\w+=", argv[0]):
        key, value = argv.pop(0).split("=", 1)
        env[key] = value
    return Command(doc, text.split(" #")[0].strip(), argv, env)


def documented_commands() -> List[Command]:
    commands = []
    for doc in DOCS:
        path = ROOT / doc
        if not path.is_file():
            continue
        text = path.read_text()
        for lang, body in re.findall(r"```(\w*)\n(.*?)```", text, re.S):
            if lang in SHELL_BLOCKS:
                commands += _commands_of_block(doc, body)
        for inline in INLINE.findall(text):
            commands.append(_parse(doc, inline, dict(KNOWN_VARIABLES)))
    return commands


COMMANDS = documented_commands()


def _target(cmd: Command) -> Tuple[str, str, List[str]]:
    """``(kind, name, args)``: kind "script" (a .py file), "module" (``-m``), "bash" or "pip"."""
    prog, *args = cmd.argv
    if prog == "pip" or (args[:2] == ["-m", "pip"]):
        return "pip", "pip", args
    if prog == "bash":
        return "bash", args[0], args[1:]
    if args and args[0] == "-m":
        return "module", args[1], args[2:]
    return "script", args[0], args[1:]


@functools.lru_cache(maxsize=None)
def help_text(kind: str, name: str, subcommand: str = "") -> str:
    """The ``--help`` output of a script, module or bash script (which must exit 0); of its
    ``subcommand`` when given (argparse sub-parsers)."""
    sub = [subcommand] if subcommand else []
    if kind == "bash":
        argv = ["bash", name, *sub, "--help"]
    elif kind == "module":
        argv = [sys.executable, "-m", name, *sub, "--help"]
    else:
        argv = [sys.executable, name, *sub, "--help"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{' '.join(argv)} exited {r.returncode}:\n{r.stderr[-2000:]}"
    return r.stdout


def _flag_takes_value(help_out: str, flag: str) -> bool:
    return bool(re.search(rf"(?m)^\s+(?:-\w, )?{re.escape(flag)}[ =][A-Z\[.]", help_out))


def _split_args(help_out: str, args: List[str]) -> Tuple[Dict[str, Optional[str]], List[str]]:
    """``({flag: value or None}, positional tokens)``; ``--opts`` takes the rest."""
    flags: Dict[str, Optional[str]] = {}
    positional: List[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--opts":
            flags[a] = None
            positional += args[i + 1 :]
            break
        if a.startswith("--"):
            name, _, inline_value = a.partition("=")
            if inline_value:
                flags[name] = inline_value
            elif _flag_takes_value(help_out, name):
                # a flag may take several values (``--objects dog violin:3-6``)
                j = i + 1
                while (
                    j < len(args) and not args[j].startswith("--") and not CONFIG_KEY.match(args[j])
                ):
                    j += 1
                flags[name] = " ".join(args[i + 1 : j])
                i = j
                continue
            else:
                flags[name] = None
        else:
            positional.append(a)
        i += 1
    return flags, positional


def _config_overrides(positional: List[str]) -> List[str]:
    """The ``KEY VALUE`` pairs among the positional tokens (from the first config key on)."""
    first = next((i for i, t in enumerate(positional) if CONFIG_KEY.match(t) and "." in t), None)
    if first is None:
        first = next((i for i, t in enumerate(positional) if t in ("SEED", "OUTPUT_DIR")), None)
    return [] if first is None else positional[first:]


def _ids(commands):
    return [f"{c.doc}:{i}" for i, c in enumerate(commands)]


def test_commands_were_found():
    docs = {c.doc for c in COMMANDS}
    assert {"README.md", "tools/README.md", "datasets/README.md", "docs/GETTING_STARTED.md"} <= docs
    assert len(COMMANDS) >= 40


@pytest.mark.parametrize("cmd", COMMANDS, ids=_ids(COMMANDS))
def test_documented_command(cmd):
    kind, name, args = _target(cmd)
    if kind == "pip":
        pytest.skip("installs a package")
    if kind == "module":
        if name == "pytest":
            for path in [a for a in args if a.startswith("tests")]:  # not option values
                assert (ROOT / path.split("::")[0]).exists(), f"{cmd}: no {path}"
            return
        mod_path = ROOT / (name.replace(".", "/") + ".py")
        assert mod_path.is_file(), f"{cmd}: module {name} is not a file of the repository"
    else:
        assert (ROOT / name).is_file(), f"{cmd}: no script {name}"
    out = help_text(kind, name)
    choices = re.search(r"\{([\w,-]+)\}", out)  # argparse sub-commands: {collect,select,...}
    if args and choices and args[0] in choices.group(1).split(","):
        out = help_text(kind, name, args[0])
        args = args[1:]
    flags, positional = _split_args(out, args)
    for flag in flags:
        assert re.search(
            rf"(?<![\w-]){re.escape(flag)}(?![\w-])", out
        ), f"{cmd}: flag {flag} is not in the --help of {name}"
    overrides = _config_overrides(positional)
    if overrides or "--config-file" in flags:
        _check_config(cmd, flags.get("--config-file"), overrides)


def _check_config(cmd: Command, config_file: Optional[str], overrides: List[str]) -> None:
    from detectron2.config import get_cfg

    from ovavss_d2 import add_ovavss_config
    from ovavss_d2.baselines.tpavi import add_tpavi_config
    from ovavss_d2.predictor import DEFAULT_CONFIG_FILE
    from ovavss_d2.utils.preflight import InputError, merge_config

    path = ROOT / config_file if config_file else Path(DEFAULT_CONFIG_FILE)
    assert path.is_file(), f"{cmd}: no config file {path}"
    assert len(overrides) % 2 == 0, f"{cmd}: overrides are not KEY VALUE pairs: {overrides}"
    cfg = get_cfg()
    add_ovavss_config(cfg)
    add_tpavi_config(cfg)
    cfg.set_new_allowed(False)
    try:  # the scripts' merge (train_net.py, demo): an int is accepted for a float key
        merge_config(cfg, str(path), overrides, "overrides")
    except InputError as e:
        raise AssertionError(f"{cmd}: overrides {overrides} do not load: {e}") from e


# -- the cheap commands, run with their outputs in a temp folder ---------------------------------

MEDIA = Path("/usr/share/tuxpaint/stamps")
needs_media = pytest.mark.skipif(not MEDIA.is_dir(), reason="needs scripts/setup.sh --media")


def _documented(script: str) -> List[Command]:
    found = [c for c in COMMANDS if _target(c)[1] == script]
    assert found, f"no documented command runs {script}"
    return found


def _run(argv: List[str], env: Optional[dict] = None, timeout: int = 600):
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    r = subprocess.run(
        argv, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout
    )
    assert r.returncode == 0, f"{' '.join(argv)} exited {r.returncode}:\n{r.stderr[-3000:]}"
    return r


@needs_media
def test_cheap_prepare_and_validate_offline_benchmark(tmp_path):
    """``prepare_avss_synth.py`` then ``validate`` as documented, under $DETECTRON2_DATASETS
    (with 4 small clips instead of 200)."""
    env = {"DETECTRON2_DATASETS": str(tmp_path)}
    small = ["--train-clips", "2", "--val-clips", "1", "--test-clips", "1", "--size", "64x64"]
    for cmd in _documented("datasets/prepare_avss_synth.py")[:1]:
        _run([sys.executable, *cmd.argv[1:], *small], env)
    assert (tmp_path / "AVSS-Synth" / "metadata.csv").is_file()
    validations = [c for c in _documented("ovavss_d2.data.validate") if "AVSS-Synth" in c.text]
    for cmd in validations:
        args = [a.replace("datasets/", f"{tmp_path}/", 1) for a in cmd.argv[1:]]
        r = _run([sys.executable, *args], env)
        assert "AVSS-Synth" in r.stdout + r.stderr


@needs_media
def test_cheap_make_demo_clip(tmp_path):
    """The documented ``make_demo_clip.py`` command with the most flags, small, into a temp folder
    (.ci/run runs README's plain one)."""
    for i, cmd in enumerate(sorted(_documented("tools/make_demo_clip.py"), key=len)[-1:]):
        _, _, args = _target(cmd)
        flags, _ = _split_args(help_text("script", "tools/make_demo_clip.py"), args)
        out = tmp_path / str(i)
        argv = [sys.executable, "tools/make_demo_clip.py", "--output", str(out), "--size", "96x64"]
        if flags.get("--objects"):
            argv += ["--objects", *flags["--objects"].split()]
        _run(argv)
        assert (out / "demo_clip.mp4").is_file() and (out / "demo_clip.wav").is_file()


def test_cheap_shell_helps():
    """``setup.sh --help`` names the flags the docs use; ``mutation.sh --list`` prints its table."""
    setup_help = help_text("bash", "scripts/setup.sh")
    assert "--media" in setup_help
    r = _run(["bash", "tools/mutation.sh", "--list"])
    assert "metrics" in r.stdout and "matcher" in r.stdout


def test_parser_of_the_docs_on_a_sample():
    """The extraction itself: continuations, ``&&``, comments, variables and env prefixes."""
    block = (
        'CLIP="A.B 1 C.D x"\n'
        "OMP_NUM_THREADS=1 python t.py --f 1 \\\n  $CLIP  # note\n"
        "bash s.sh && python u.py\n"
    )
    cmds = _commands_of_block("x.md", block)
    assert [c.argv for c in cmds] == [
        ["python", "t.py", "--f", "1", "A.B", "1", "C.D", "x"],
        ["bash", "s.sh"],
        ["python", "u.py"],
    ]
    assert cmds[0].env == {"OMP_NUM_THREADS": "1"}
    flags, positional = _split_args("  --f F  help\n", ["--f", "1", "A.B", "1"])
    assert flags == {"--f": "1"} and _config_overrides(positional) == ["A.B", "1"]
