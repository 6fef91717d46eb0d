#!/usr/bin/env bash
# The H200 benchmark, run from the repository root on the GPU machine, with what
# setup-h200.sh lists carried (.device and .gl), and python3 with torch (CUDA) and numpy. Writes JSON results and logs to $OUT.
#   bash bench/gpu/run-h200.sh [extra h200.ts options, e.g. --runs 10 --tilings default,big]
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:?set OUT to the folder that comes back}"
mkdir -p "$OUT"

source bench/gpu/setup-h200.sh
export MOE_BENCH_RESULTS="$OUT"

{
  node --version
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
  python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0))' || true
} > "$OUT/environment.txt" 2>&1

# Bounded below the device's 10-minute command limit so that whatever was measured comes back.
timeout 540 node --import tsx bench/gpu/h200.ts "$@" 2>&1 | tee "$OUT/h200.log"
