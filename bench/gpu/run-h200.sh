#!/usr/bin/env bash
# The GPU benchmark (`npm run bench -- gpu`), run from the repository root on the GPU machine,
# with what setup-h200.sh lists carried (.device and .gl), and python3 with torch (CUDA).
# Writes the JSON result, the log and the environment to $OUT.
#   bash bench/gpu/run-h200.sh [--runs N]   (BENCH_GPU_SHAPES / BENCH_GPU_TOKENS / MOE_DAWN_FEATURES pass through)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:?set OUT to the folder that comes back}"
mkdir -p "$OUT"

source bench/gpu/setup-h200.sh
export MOE_BENCH_RESULTS="$OUT"

{
  node --version
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
  python3 -c 'import torch, torch.nn.functional as F; print("torch", torch.__version__, torch.cuda.get_device_name(0), "F.grouped_mm", hasattr(F, "grouped_mm"), "torch._grouped_mm", hasattr(torch, "_grouped_mm"))' || true
  nproc; free -g | head -2
} >> "$OUT/environment.txt" 2>&1

# Bounded below the device's 10-minute command limit so that whatever was measured comes back.
timeout "${BENCH_GPU_TIMEOUT:-540}" node --import tsx bench/run.ts gpu "$@" 2>&1 | tee -a "$OUT/gpu.log"
