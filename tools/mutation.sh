#!/usr/bin/env bash
# Mutation testing of the core modules with mutmut (a dev dependency: pip install -e ".[dev]").
#
#   bash tools/mutation.sh                 # every module of the table below, one after the other
#   bash tools/mutation.sh metrics matcher # only these modules
#   bash tools/mutation.sh --list          # the table
#
# Each module runs in its own copy of the working tree (output/mutation/<module>/) with only the
# tests that cover it, so one module's slow tests never run against another module's mutants.
# mutmut then runs, for each mutant, only the tests that called the mutated function.
# Results: output/mutation/<module>/results.txt (one line per mutant that was not killed) and
# output/mutation/summary.tsv (module, killed, survived, no tests, timeout, score in %).
# Environment: MUTATION_JOBS (default 1: parallel mutants), MUTATION_OUT (default output/mutation).
# See docs/TESTING.md for the scores and the reasons surviving mutants are equivalent.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PY:-$ROOT/.venv/bin/python}"
OUT="${MUTATION_OUT:-$ROOT/output/mutation}"
JOBS="${MUTATION_JOBS:-1}"

# module | files to mutate (glob, space-separated) | tests that cover them | mutant-name filter
TABLE="$(cat <<'EOF'
metrics|ovavss_d2/evaluation/metrics.py|tests/evaluation|
evaluators|ovavss_d2/evaluation/avss_evaluation.py ovavss_d2/evaluation/avs_evaluation.py ovavss_d2/evaluation/clip_evaluator.py|tests/evaluation|
labels|ovavss_d2/data/labels.py ovavss_d2/data/class_lists.py|tests/data/test_labels.py tests/data/test_class_lists.py|
audio|ovavss_d2/data/audio.py|tests/data/test_audio.py|
format|ovavss_d2/data/datasets/avsbench_format.py|tests/data/datasets/test_avsbench_format.py tests/data/test_bad_input.py tests/data/datasets/test_avsbench.py tests/data/datasets/test_register_avsbench.py|
ensemble|ovavss_d2/modeling/class_sources/ensemble.py ovavss_d2/data/vocabulary.py|tests/modeling/class_sources/test_ensemble.py tests/modeling/class_sources/test_query_scores.py tests/data/test_vocabulary.py|
scoring|ovavss_d2/modeling/class_sources/ensemble.py ovavss_d2/modeling/class_sources/learned.py|tests/modeling/class_sources/test_query_scores.py tests/modeling/class_sources/test_ensemble.py tests/modeling/class_sources/test_learned.py|
predictor|ovavss_d2/predictor.py|tests/demo/test_predictor.py tests/demo/test_predictor_values.py tests/demo/test_predictor_windows.py tests/data/test_vocabulary.py|
matcher|ovavss_d2/modeling/matcher.py|tests/modeling/test_matcher.py tests/modeling/test_criterion.py|
criterion|ovavss_d2/modeling/criterion.py|tests/modeling/test_criterion.py tests/modeling/test_matcher.py|
EOF
)"

if [ "${1:-}" = "--list" ]; then echo "$TABLE" | column -t -s '|'; exit 0; fi
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then sed -n '2,15p' "$0"; exit 0; fi
"$PY" -c "import mutmut" 2>/dev/null || { echo "mutation: mutmut missing: pip install -e '.[dev]'" >&2; exit 2; }
WANT=("$@")
known="$(echo "$TABLE" | cut -d'|' -f1 | tr '\n' ' ')"
for w in "${WANT[@]}"; do
  case " $known " in *" $w "*) ;; *) echo "mutation: unknown module '$w' (known: $known)" >&2; exit 2 ;; esac
done

mkdir -p "$OUT"
SUMMARY="$OUT/summary.tsv"
[ -f "$SUMMARY" ] || printf 'module\tkilled\tsurvived\tno_tests\ttimeout\tscore_pct\tminutes\n' >"$SUMMARY"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=
while IFS='|' read -r name files tests filter; do
  [ -n "$name" ] || continue
  if [ "${#WANT[@]}" -gt 0 ] && [[ ! " ${WANT[*]} " == *" $name "* ]]; then continue; fi
  work="$OUT/$name"
  echo "==> $name: mutating $files with $tests"
  rm -rf "$work" && mkdir -p "$work"
  # the tracked and new (not ignored) files of the working tree: sources, tests, configs, docs
  git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$work" 2>/dev/null || true
  {
    echo "[mutmut]"
    echo "source_paths = ovavss_d2"
    echo "only_mutate ="
    for f in $files; do echo "    $f"; done
    echo "pytest_add_cli_args_test_selection ="
    for t in $tests; do echo "    $t"; done
    echo "pytest_add_cli_args = -p no:cacheprovider -x -q"
    echo "also_copy ="
    for a in configs demo tools datasets docs train_net.py README.md; do echo "    $a"; done
  } >>"$work/setup.cfg"
  start=$(date +%s)
  # shellcheck disable=SC2086
  (cd "$work" && nice -n 5 "$ROOT/.venv/bin/mutmut" run --max-children "$JOBS" $filter \
    >"$work/run.log" 2>&1) || echo "mutation: mutmut exited non-zero for $name (see $work/run.log)"
  minutes=$(( ($(date +%s) - start + 30) / 60 ))
  (cd "$work" && "$ROOT/.venv/bin/mutmut" results --all true >"$work/all.txt" 2>&1 || true)
  grep -v ': killed$' "$work/all.txt" >"$work/results.txt" || true
  "$PY" - "$work/all.txt" "$name" "$minutes" >>"$SUMMARY" <<'PYEOF'
import collections, sys
path, name, minutes = sys.argv[1:]
counts = collections.Counter(
    line.rsplit(":", 1)[1].strip() for line in open(path) if line.startswith("    ") and ":" in line
)
killed = counts["killed"]
tried = killed + counts["survived"] + counts["timeout"]
score = 100.0 * (killed + counts["timeout"]) / tried if tried else float("nan")
print(f"{name}\t{killed}\t{counts['survived']}\t{counts['no tests']}\t{counts['timeout']}\t"
      f"{score:.1f}\t{minutes}")
PYEOF
  tail -n 1 "$SUMMARY"
done <<<"$TABLE"
column -t "$SUMMARY"
