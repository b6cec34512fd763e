#!/usr/bin/env bash
# scripts/gpu-check.sh [BUNDLE]: what a lent GPU machine can measure of the serving pipeline, in at most 8 minutes,
# with no network: only the working tree (BUNDLE defaults to models/demo, which it carries) and what the machine
# has. Prints one table:
#   - the machine: GPU (nvidia-smi), CUDA libraries the loader can find
#   - Python onnxruntime (model/scripts/gpu_check.py; numpy + onnxruntime only): on CUDA when it is onnxruntime-gpu
#     and the provider loads, else CPU: session load and the provider each graph really runs on, per-stage latency,
#     caption decoding tokens/s by decoder_generate.onnx vs the step loop, bytes crossing the session boundary per
#     generated token
#   - onnxruntime-node, the worker's own path (bench/gpu-check.ts), when node and node_modules are there: asks for
#     CUDA, reports the provider it got and why not, per-stage latency of real jobs, the same decode figures
# onnxruntime-node's CUDA provider libraries (libonnxruntime_providers_cuda.so, _shared.so) are not in its npm
# package: its install script downloads them when ONNXRUNTIME_NODE_INSTALL=cuda12 (this repository's .npmrc skips
# that), which needs network. Where they are absent the script says so and the Node side measures on CPU.
# Runs correctly on a CPU-only machine too (every measurement then says CPU).
set -uo pipefail
cd "$(dirname "$0")/.."
BUNDLE="${1:-models/demo}"
BUDGET_S="${GPU_CHECK_BUDGET_S:-470}"   # under 8 minutes, all steps together
START=$(date +%s)
OUTDIR="${OUT:-$(mktemp -d)}"
mkdir -p "$OUTDIR"
left() { echo $(( BUDGET_S - ($(date +%s) - START) )); }
row() { printf '| %-48s | %s\n' "$1" "$2"; }
section() { printf '|%s|\n| %s\n' "--------------------------------------------------" "$1"; }

section "machine"
row "host" "$(uname -srm), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
GPU=no
if command -v nvidia-smi >/dev/null 2>&1 && smi=$(timeout 20 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1); then
  GPU=yes
  while IFS= read -r line; do row "GPU" "$line"; done <<<"$smi"
else
  row "GPU" "none visible (nvidia-smi absent or failing): every measurement below is on CPU"
fi
libs=$( (ldconfig -p 2>/dev/null || true) | grep -oE 'lib(cudart|cublas|cublasLt|cudnn|nvrtc|curand|cufft)\.so[.0-9]*' | sort -u | tr '\n' ' ')
row "CUDA libraries on the loader path" "${libs:-none found by ldconfig}"
[ -f "$BUNDLE/manifest.json" ] || { row "bundle" "$BUNDLE has no manifest.json: nothing to measure"; exit 1; }
row "bundle" "$BUNDLE ($(du -sh "$BUNDLE" | cut -f1)), graphs: $(grep -o '"[a-z_]*\.onnx"' "$BUNDLE/manifest.json" | sort -u | tr -d '"' | tr '\n' ' ')"

section "Python onnxruntime (model/scripts/gpu_check.py)"
PY=""
for candidate in .venv/bin/python python3 python; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import numpy, onnxruntime' >/dev/null 2>&1; then PY="$candidate"; break; fi
done
if [ -z "$PY" ]; then
  row "python onnxruntime" "no Python with numpy + onnxruntime here: Python side not measured"
else
  row "python" "$PY: $("$PY" --version 2>&1)"
  budget=$(( $(left) > 170 ? 150 : $(left) - 20 ))
  if [ "$budget" -gt 10 ]; then
    timeout "$budget" "$PY" model/scripts/gpu_check.py --bundle "$BUNDLE" --provider auto --runs 5 --json "$OUTDIR/python.json" 2>"$OUTDIR/python.err"
    rc=$?
    [ $rc -eq 124 ] && row "python side" "stopped after ${budget} s (the budget of this step)"
    [ $rc -ne 0 ] && [ $rc -ne 124 ] && row "python side" "failed (exit $rc): $(tail -n 3 "$OUTDIR/python.err" | tr '\n' ' ')"
  fi
fi

section "onnxruntime-node, the worker's path (bench/gpu-check.ts)"
ORT_NODE=node_modules/onnxruntime-node
if ! command -v node >/dev/null 2>&1; then
  row "node" "absent on this machine: Node side not measured"
elif [ ! -d "$ORT_NODE" ] || [ ! -x node_modules/.bin/tsx ]; then
  row "node" "$(node --version); node_modules absent (not in the working tree; npm install needs network): Node side not measured"
else
  cuda_libs=$(ls "$ORT_NODE"/bin/napi-v*/linux/x64/libonnxruntime_providers_cuda.so 2>/dev/null | head -n 1)
  if [ -n "$cuda_libs" ]; then
    row "onnxruntime-node CUDA provider" "present: $cuda_libs"
  else
    row "onnxruntime-node CUDA provider" "ABSENT: libonnxruntime_providers_cuda.so is downloaded by npm install with ONNXRUNTIME_NODE_INSTALL=cuda12 (network); asking for cuda shows the fallback, numbers are CPU"
  fi
  provider=cpu
  [ "$GPU" = yes ] && provider=cuda
  budget=$(( $(left) - 10 ))
  if [ "$budget" -gt 20 ]; then
    timeout "$budget" node_modules/.bin/tsx bench/gpu-check.ts --bundle "$BUNDLE" --provider "$provider" --runs 5 2>"$OUTDIR/node.err"
    rc=$?
    [ $rc -eq 124 ] && row "node side" "stopped after ${budget} s (the budget of this step)"
    [ $rc -ne 0 ] && [ $rc -ne 124 ] && row "node side" "failed (exit $rc): $(grep -v '^\s*$' "$OUTDIR/node.err" | tail -n 3 | tr '\n' ' ')"
  else
    row "node side" "not run: the time budget is spent"
  fi
fi
section "done in $(( $(date +%s) - START )) s (budget ${BUDGET_S} s); logs in $OUTDIR"
