"""Check which surviving mutants of a finished ``tools/mutation.sh`` run new tests kill.

    python tools/mutation_recheck.py MODULE TEST_FILE [TEST_FILE ...]

Runs in ``output/mutation/<MODULE>/mutants`` (the mutated copy mutmut left there), copies the given
test files in, and for each mutant that survived the run (``mutmut results``) activates it the way
mutmut does (``MUTANT_UNDER_TEST``) and runs the test files with pytest in this one process.
Prints ``KILLED name`` or ``alive  name`` per mutant. Much faster than a new ``mutmut run`` (no
mutant generation, no per-mutant process), and only meant for that: re-run the module with
``tools/mutation.sh`` for its score.
"""

import argparse
import contextlib
import fnmatch
import io
import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def survivors(mutants: Path):
    """Names of the mutants with exit code 0 (survived) in mutmut's ``*.meta`` files."""
    for meta in sorted(mutants.rglob("*.meta")):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            if code == 0:
                yield name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("module", help="a module of tools/mutation.sh --list, already run")
    parser.add_argument("tests", nargs="+", help="test files (paths from the repository root)")
    parser.add_argument("--out", default=str(ROOT / "output" / "mutation"), help="MUTATION_OUT")
    parser.add_argument("--only", default="*", help="fnmatch pattern of mutant names to check")
    args = parser.parse_args()
    mutants = Path(args.out) / args.module / "mutants"
    if not mutants.is_dir():
        parser.error(f"{mutants} not found: run bash tools/mutation.sh {args.module} first")
    for test in args.tests:
        (mutants / test).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / test, mutants / test)
    os.chdir(mutants)
    sys.path.insert(0, str(mutants))
    import pytest

    import ovavss_d2

    if not Path(ovavss_d2.__file__).resolve().is_relative_to(mutants.resolve()):
        sys.exit(f"ovavss_d2 resolves to {ovavss_d2.__file__}, not the mutants: unset PYTHONPATH")

    def run(name: str) -> int:
        os.environ["MUTANT_UNDER_TEST"] = name
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return pytest.main([*args.tests, "-x", "-q", "-p", "no:cacheprovider"])

    if run("") != 0:
        sys.exit("the tests fail without a mutant: fix them first")
    for name in survivors(mutants):
        if not fnmatch.fnmatch(name, args.only):
            continue
        print(("KILLED " if run(name) != 0 else "alive  ") + name, flush=True)


if __name__ == "__main__":
    main()
