#!/usr/bin/env bash
# The CUDA path in one command, offline, within a time budget (default 8 minutes), for whoever has
# a GPU; with --cpu the same steps run on the CPU at small sizes (the test suite runs that).
#
#   bash tools/device_check.sh [--cpu] [OUT_DIR]   # default OUT_DIR output/device_check
#   bash tools/device_check.sh [--cpu] --list      # the steps it would run, one per line
#
# Steps (none stops the others; each logs to OUT_DIR/<step>.log):
#   tests_cuda        pytest -m cuda: the tests marked `cuda` (run on the GPU; skipped with --cpu)
#   tests_other       pytest -m "not cuda", in parallel with the steps below (not with --cpu: the
#                     CI runs the suite); with tests_cuda, the whole suite, no -x
#   prepare           generated AVSBench-format clips, a random CLIP ViT-B/16 of the real size in a
#                     local file (tools/benchmark.py's; a tiny one with --cpu), the demo clip
#   train_r50         configs/avsbench_ov/ovavss_R50.yaml, 1 device, random initial weights
#   train_r50_ngpu    the same on all N visible GPUs (--num-gpus N; only when N > 1)
#   train_r50_reference, train_r50_reference_ngpu   ovavss_R50_reference.yaml, the same way
#   amp_bf16, amp_fp16  train_r50 with SOLVER.AMP.ENABLED True SOLVER.AMP.DTYPE bfloat16|float16
#   eval_only         --eval-only with train_r50's model_final.pth on the generated test clips
#   resume            --resume of train_r50 for a few more iterations
#   demo              demo/demo.py on the demo clip with MODEL.DEVICE cuda and train_r50's weights
#   benchmark         tools/benchmark.py: peak memory and s/iteration at 480x480, T=5
# OUT_DIR/summary.md: one table (step, exit status, seconds, key numbers, log), rewritten after
# every step; the script exits 1 if a step failed or did not run.
#
# Environment: PYTHON (default .venv/bin/python), NUM_GPUS (default: all visible; with --cpu the
# processes of the *_ngpu steps, default 1), DEVCHECK_BUDGET_S (total seconds, default 480; 1200
# with --cpu; a step that would start past it is "not run", a running one is stopped at it), DEVCHECK_ITERS (training
# iterations, default 20; 2 with --cpu), DEVCHECK_RESUME_ITERS (more iterations of resume, default
# 5; 1 with --cpu), DEVCHECK_TEST_WORKERS (pytest-xdist workers of
# tests_other, default 8).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CPU=0
LIST=0
OUT_ARG=""
for arg in "$@"; do
  case "$arg" in
    --cpu) CPU=1 ;;
    --list) LIST=1 ;;
    -h | --help) sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "device_check.sh: error: unknown option $arg (see --help)" >&2; exit 2 ;;
    *) OUT_ARG="$arg" ;;
  esac
done
PY="${PYTHON:-$ROOT/.venv/bin/python}"
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

if [ "$CPU" = 1 ]; then
  export CUDA_VISIBLE_DEVICES=""  # the CPU path even on a GPU machine
  DEVICE=cpu
  NGPU="${NUM_GPUS:-1}"
  ITERS="${DEVCHECK_ITERS:-2}"
  RESUME_ITERS="${DEVCHECK_RESUME_ITERS:-1}"
else
  DEVICE=cuda
  NGPU="${NUM_GPUS:-$("$PY" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null)}"
  ITERS="${DEVCHECK_ITERS:-20}"
  RESUME_ITERS="${DEVCHECK_RESUME_ITERS:-5}"
fi

steps() {  # the steps of this mode, in order
  echo tests_cuda
  [ "$CPU" = 1 ] || echo tests_other
  echo prepare
  echo train_r50
  [ "${NGPU:-1}" -gt 1 ] && echo train_r50_ngpu
  echo train_r50_reference
  [ "${NGPU:-1}" -gt 1 ] && echo train_r50_reference_ngpu
  echo amp_bf16
  echo amp_fp16
  echo eval_only
  echo resume
  echo demo
  echo benchmark
}

if [ "$LIST" = 1 ]; then
  steps
  exit 0
fi
if [ "$CPU" = 0 ] && ! [ "${NGPU:-0}" -ge 1 ] 2>/dev/null; then
  echo "device_check.sh: error: no CUDA device visible to torch (NUM_GPUS=${NGPU:-?}); run with" \
    "--cpu for the CPU path" >&2
  exit 2
fi

OUT="$(mkdir -p "${OUT_ARG:-$ROOT/output/device_check}" && cd "${OUT_ARG:-$ROOT/output/device_check}" && pwd)"
BUDGET="${DEVCHECK_BUDGET_S:-$([ "$CPU" = 1 ] && echo 1200 || echo 480)}"
START=$(date +%s)
DATA="$OUT/data"
CLIP="$OUT/clip/clip_random.pt"
CFG=configs/avsbench_ov/ovavss_R50.yaml
REF_CFG=configs/avsbench_ov/ovavss_R50_reference.yaml
# A fresh start: an earlier check's runs would be continued or found finished.
for old in "$OUT"/train_r50* "$OUT"/amp_* "$OUT"/eval_only "$OUT"/demo "$OUT"/data "$OUT"/clip \
  "$OUT"/*.log "$OUT"/benchmark.json "$OUT"/prepare.json; do
  rm -rf "$old"
done
: > "$OUT/steps.tsv"
{
  echo "# ovavss_d2 device check"
  echo
  echo "- $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "- mode: $([ "$CPU" = 1 ] && echo '--cpu (small sizes)' || echo 'cuda'), devices: $NGPU," \
    "training iterations: $ITERS, budget: $BUDGET s"
  echo "- $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
    | paste -sd ';' - | sed 's/^$/no nvidia-smi/')"
  echo "- $("$PY" -c "import torch; print('torch', torch.__version__, '| CUDA', torch.version.cuda, \
'| available', torch.cuda.is_available(), '| devices', torch.cuda.device_count())" 2>&1 | tail -n 1)"
} > "$OUT/header.md"

report() { "$PY" tools/device_check_report.py "$OUT"; }
FAILED=0
record() {  # record NAME STATUS SECONDS LOG
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$OUT/steps.tsv"
  [ "$2" = 0 ] || FAILED=1
  report
}
left() { echo $((BUDGET - ($(date +%s) - START))); }

# Overrides shared by the training runs: offline (no MODEL.WEIGHTS, no ImageNet R-50.pkl in
# MODEL.BACKBONE.WEIGHTS: random initial weights; the local CLIP file), no
# evaluation inside training (eval_only does it), small sizes with --cpu.
SIZES=()
if [ "$CPU" = 1 ]; then
  SIZES=(INPUT.MIN_SIZE_TRAIN "(48,)" INPUT.MAX_SIZE_TRAIN 64 INPUT.MIN_SIZE_TEST 48
    INPUT.MAX_SIZE_TEST 64 MODEL.OVAVSS.TRAIN_NUM_POINTS 1024 DATALOADER.NUM_WORKERS 0)
fi
OFFLINE=(MODEL.WEIGHTS "" MODEL.BACKBONE.WEIGHTS "" MODEL.TEXT_ENCODER.CLIP_MODEL "$CLIP" "${SIZES[@]}")

train_cmd() {  # train_cmd CONFIG PROCESSES OUTPUT_DIR [FLAG ...] [-- KEY VALUE ...]
  local config="$1" procs="$2" dir="$3" flags=()
  shift 3
  while [ $# -gt 0 ] && [ "$1" != -- ]; do flags+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  # IMS_PER_BATCH = REFERENCE_WORLD_SIZE = processes: one clip per device, no rescaling; only
  # model_final.pth is saved unless the overrides set a period.
  CMD=(env DETECTRON2_DATASETS="$DATA" "$PY" train_net.py --config-file "$config"
    --num-gpus "$procs" "${flags[@]}" MODEL.DEVICE "$DEVICE" "${OFFLINE[@]}" DATASETS.TEST "()"
    SOLVER.IMS_PER_BATCH "$procs" SOLVER.REFERENCE_WORLD_SIZE "$procs" SOLVER.MAX_ITER "$ITERS"
    SOLVER.STEPS "()" SOLVER.CHECKPOINT_PERIOD 1000000 TEST.EVAL_PERIOD 0 "$@" OUTPUT_DIR "$dir")
}

read -r -d '' PREPARE_PY <<'PYEOF'
"""Clips, a random CLIP of the real size (a tiny one with --cpu) and the demo clip, offline."""
import importlib.util, json, os, subprocess, sys
import torch
from ovavss_d2.utils.testing import make_fake_avsbench

out, cpu = sys.argv[1], sys.argv[2] == "1"
if cpu:
    fake = make_fake_avsbench(os.path.join(out, "data", "AVSBench-semantic"), clips_per_split=1,
                              size=(48, 64), subsets=("v1s",))
else:
    fake = make_fake_avsbench(os.path.join(out, "data", "AVSBench-semantic"), clips_per_split=4,
                              size=(360, 640))
os.makedirs(os.path.join(out, "clip"), exist_ok=True)
clip_path = os.path.join(out, "clip", "clip_random.pt")
if cpu:  # ViT CLIP: embed 32, 32 px images, 2 layers of width 64; text 1 layer of width 64
    from clip.model import CLIP
    torch.manual_seed(0)
    torch.save(CLIP(32, 32, 2, 64, 16, 77, 49408, 64, 1, 1).state_dict(), clip_path)
else:  # tools/benchmark.py's random CLIP of the architecture of ViT-B/16
    spec = importlib.util.spec_from_file_location("benchmark", "tools/benchmark.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    os.replace(bench.random_clip_checkpoint("ViT-B/16", os.path.join(out, "clip")), clip_path)
demo = [sys.executable, "tools/make_demo_clip.py", "--output", os.path.join(out, "clip")]
if cpu:
    demo += ["--objects", "dog", "--seconds", "2", "--size", "96x64", "--fps", "5"]
subprocess.run(demo, check=True)
facts = {"clips": len(fake.clips) if hasattr(fake, "clips") else "?",
         "CLIP MB": round(os.path.getsize(clip_path) / 2**20)}
json.dump(facts, open(os.path.join(out, "prepare.json"), "w"))
print(facts)
PYEOF

step_cmd() {  # the command of step $1 in CMD
  local n="$NGPU"
  case "$1" in
    tests_cuda) CMD=("$PY" -m pytest tests -m cuda -p no:cacheprovider -rA) ;;
    tests_other)
      local par=()
      "$PY" -c "import xdist" 2>/dev/null && par=(-n "${DEVCHECK_TEST_WORKERS:-8}")
      CMD=("$PY" -m pytest tests -m "not cuda" -p no:cacheprovider "${par[@]}") ;;
    prepare) CMD=("$PY" -c "$PREPARE_PY" "$OUT" "$CPU") ;;
    train_r50)  # a periodic checkpoint at the last iteration too (resumable, whatever
      # model_final.pth keeps)
      train_cmd "$CFG" 1 "$OUT/train_r50" -- SOLVER.CHECKPOINT_PERIOD "$ITERS" ;;
    train_r50_ngpu) train_cmd "$CFG" "$n" "$OUT/train_r50_ngpu" ;;
    train_r50_reference) train_cmd "$REF_CFG" 1 "$OUT/train_r50_reference" ;;
    train_r50_reference_ngpu) train_cmd "$REF_CFG" "$n" "$OUT/train_r50_reference_ngpu" ;;
    amp_bf16 | amp_fp16)
      local dtype=bfloat16
      [ "$1" = amp_fp16 ] && dtype=float16
      train_cmd "$CFG" 1 "$OUT/$1" -- SOLVER.AMP.ENABLED True SOLVER.AMP.DTYPE "$dtype" ;;
    eval_only)
      CMD=(env DETECTRON2_DATASETS="$DATA" "$PY" train_net.py --config-file "$CFG" --eval-only
        MODEL.DEVICE "$DEVICE" "${OFFLINE[@]}" MODEL.WEIGHTS "$OUT/train_r50/model_final.pth"
        OUTPUT_DIR "$OUT/eval_only") ;;
    resume)
      # train_r50's run continued from its last checkpoint for RESUME_ITERS more iterations.
      train_cmd "$CFG" 1 "$OUT/train_r50" --resume -- SOLVER.CHECKPOINT_PERIOD "$ITERS" \
        SOLVER.MAX_ITER "$((ITERS + RESUME_ITERS))" ;;
    demo)
      CMD=("$PY" demo/demo.py --video "$OUT/clip/demo_clip.mp4" --config-file "$CFG"
        --vocabulary "dog, violin" --output "$OUT/demo" --opts MODEL.DEVICE "$DEVICE"
        "${OFFLINE[@]}" MODEL.WEIGHTS "$OUT/train_r50/model_final.pth") ;;
    benchmark)
      local size=(--size 480 --frames 5)
      [ "$CPU" = 1 ] && size=(--size 64 --frames 2 --warmup 0 --iters 1 --train-iters 1)
      CMD=("$PY" tools/benchmark.py --config-file "$CFG" "${size[@]}" --device "$DEVICE"
        --output "$OUT/benchmark.json" MODEL.TEXT_ENCODER.CLIP_MODEL "$CLIP") ;;
    *) echo "device_check.sh: no step $1" >&2; return 1 ;;
  esac
}

run_step() {  # run_step NAME: its command under the time left, logged; one row in steps.tsv
  local name="$1" log="$OUT/$1.log" limit start rc
  limit=$(left)
  if [ "$limit" -lt 15 ]; then
    record "$name" "not run (time budget spent)" 0 ""
    return
  fi
  step_cmd "$name" || { record "$name" "no such step" 0 ""; return; }
  start=$(date +%s)
  { printf '+'; printf ' %q' "${CMD[@]}"; echo; } > "$log"
  timeout --kill-after=10 "$limit" "${CMD[@]}" >> "$log" 2>&1
  rc=$?
  record "$name" "$rc" "$(($(date +%s) - start))" "$log"
}

# tests_other runs beside the others (CPU-bound; the GPU steps mostly wait on the device).
BG_PID=""
if steps | grep -qx tests_other; then
  step_cmd tests_other
  BG_START=$(date +%s)
  { printf '+'; printf ' %q' "${CMD[@]}"; echo; } > "$OUT/tests_other.log"
  timeout --kill-after=10 "$((BUDGET - 10))" "${CMD[@]}" >> "$OUT/tests_other.log" 2>&1 &
  BG_PID=$!
fi
for step in $(steps); do
  [ "$step" = tests_other ] && continue
  run_step "$step"
done
if [ -n "$BG_PID" ]; then
  wait "$BG_PID"
  BG_RC=$?
  record tests_other "$BG_RC" "$(($(date +%s) - BG_START))" "$OUT/tests_other.log"
fi
if [ "$CPU" = 1 ]; then  # random weights of the CPU run: gigabytes, of no further use
  find "$OUT" -name '*.pth' -delete
fi
echo "device check: $(($(date +%s) - START)) s; summary: $OUT/summary.md"
cat "$OUT/summary.md"
exit "$FAILED"
