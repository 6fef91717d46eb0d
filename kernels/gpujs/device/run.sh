#!/usr/bin/env bash
# Run THERE (the NVIDIA machine), from the repository root, after prepare.sh here and with
# `.gpujs-device` carried. Unpacks Node, the Vulkan loader and the modules, then times the
# gpu.js webgpu backend on Dawn's Vulkan backend with the project's kernels benchmark
# (bench/kernels.ts: median ms, GFLOP/s, output checked against the float64 reference).
# BENCH_BACKENDS picks the backends (default gpujs-webgpu), BENCH_HIDDEN etc. the size.
# The torch peer row fails there (no Python): expected. Results go to $OUT when set.
set -euo pipefail
cd "$(dirname "$0")/../../.."
in=.gpujs-device
# The loader libraries belong in /: extract only these debs there.
for f in "$in"/debs/*.deb; do dpkg -x "$f" /; done
ldconfig
mkdir -p /opt/gpujs-node && tar -C /opt/gpujs-node -xJf "$in/node.tar.xz"
tar -xJf "$in/modules.tar.xz"
export PATH=/opt/gpujs-node:$PATH
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
export MOE_WEBGPU_BACKEND=vulkan
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
node --version
export BENCH_BACKENDS=${BENCH_BACKENDS:-gpujs-webgpu}
node --import tsx bench/run.ts kernels --runs "${RUNS:-5}" | tee "${OUT:-/tmp}/gpujs-bench.md"
if [ -n "${OUT:-}" ]; then cp bench/results/kernels-*.json "$OUT"/ 2>/dev/null || true; fi
