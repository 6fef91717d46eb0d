#!/usr/bin/env bash
# Packs what bench/gpu/run-h200.sh needs from node_modules into .device/node_modules.tar.xz
# (a few MB instead of 300: Dawn's linux-x64 build only, gpu.js without its browser
# bundles), so that it fits the device's carry limit. Run from the repository root here.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .device
tar -cJf .device/node_modules.tar.xz \
  --exclude='node_modules/webgpu/dist/darwin-*' --exclude='node_modules/webgpu/dist/win32-*' --exclude='node_modules/webgpu/dist/linux-arm64' \
  --exclude='node_modules/gpu.js/dist' \
  --exclude='node_modules/gpu.js/node_modules/webgpu/dist/darwin-*' --exclude='node_modules/gpu.js/node_modules/webgpu/dist/win32-*' \
  --exclude='node_modules/gpu.js/node_modules/webgpu/dist/linux-arm64' \
  node_modules/tsx node_modules/esbuild node_modules/@esbuild node_modules/webgpu node_modules/gpu.js node_modules/acorn node_modules/gpu-mock.js
ls -la .device/node_modules.tar.xz
