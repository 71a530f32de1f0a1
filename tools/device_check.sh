#!/usr/bin/env bash
# GPU check in one command, for whoever has a GPU: the test suite with CUDA, 50 training
# iterations of the R50 config on synthetic clips, and the benchmark; one results file.
#
#   tools/device_check.sh [OUT_DIR]        # default output/device_check
#
# Environment: PYTHON (default .venv/bin/python), OVAVSS_CLIP (MODEL.TEXT_ENCODER.CLIP_MODEL for
# the R50 run: a name in ~/.cache/clip or a local file; default ViT-B/16), NUM_GPUS (default 1).
# Each step's exit status and wall time go to OUT_DIR/device_check.txt; a failing step does not stop
# the later ones. The script exits 1 if any step failed.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(mkdir -p "${1:-$ROOT/output/device_check}" && cd "${1:-$ROOT/output/device_check}" && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
CLIP_MODEL="${OVAVSS_CLIP:-ViT-B/16}"
NUM_GPUS="${NUM_GPUS:-1}"
RESULTS="$OUT/device_check.txt"
FAILED=0
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

{
  echo "# ovavss_d2 device check, $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || true
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'available', torch.cuda.is_available(), 'devices', torch.cuda.device_count())"
} > "$RESULTS" 2>&1

run() {  # run NAME COMMAND...: log to OUT/NAME.log, one status line in the results file
  local name="$1"; shift
  local start end rc
  start=$(date +%s)
  "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  end=$(date +%s)
  echo "$name: exit $rc, $((end - start)) s (log: $OUT/$name.log)" >> "$RESULTS"
  [ "$rc" = 0 ] || FAILED=1
  tail -n 3 "$OUT/$name.log" | sed 's/^/    /' >> "$RESULTS"
}

if ! "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
  echo "no CUDA device: nothing to check (the GPU-only tests skip on CPU)" | tee -a "$RESULTS"
  exit 1
fi

# 1. The test suite; the GPU-only tests run instead of skipping.
run tests "$PY" -m pytest tests -q -x -p no:cacheprovider

# 2. 50 iterations of the R50 config on generated AVSBench-format clips (random initial weights).
DATA="$OUT/data"
run make_clips "$PY" - "$DATA/AVSBench-semantic" <<'PYEOF'
import sys
from ovavss_d2.utils.testing import make_fake_avsbench
make_fake_avsbench(sys.argv[1], clips_per_split=4, size=(240, 320))
print("clips written to", sys.argv[1])
PYEOF
run train_r50 env DETECTRON2_DATASETS="$DATA" "$PY" train_net.py \
  --config-file configs/avsbench_ov/ovavss_R50.yaml --num-gpus "$NUM_GPUS" \
  MODEL.DEVICE cuda MODEL.WEIGHTS "" MODEL.TEXT_ENCODER.CLIP_MODEL "$CLIP_MODEL" \
  SOLVER.MAX_ITER 50 SOLVER.STEPS "()" SOLVER.IMS_PER_BATCH "$NUM_GPUS" SOLVER.CHECKPOINT_PERIOD 25 \
  TEST.EVAL_PERIOD 0 DATALOADER.NUM_WORKERS 2 OUTPUT_DIR "$OUT/train_r50"

# 3. The benchmark (inference, training step, memory) of the R50 config on the GPU.
run benchmark "$PY" tools/benchmark.py --config-file configs/avsbench_ov/ovavss_R50.yaml \
  --size 224 --frames 5 --device cuda --output "$OUT/benchmark_R50_cuda.json" \
  MODEL.TEXT_ENCODER.CLIP_MODEL "$CLIP_MODEL"

echo "results: $RESULTS"
cat "$RESULTS"
exit "$FAILED"
