// A large generated checkpoint for the load-and-cut benchmark, written with bounded memory:
// the registry gives every stored tensor's name and shape for the model type and layout,
// and each tensor is a lazy source that produces random finite bf16/f16/f32 bytes in 16 MiB
// chunks as the writer asks for them. Values are random, so no tensor is ever built whole.
import { ModelConfig } from '../harness/checkpoint/config.js';
import { writeCheckpointDir } from '../harness/checkpoint/write.js';
import { expandLayout } from '../harness/loader/detect.js';
import { entryFor, type LayoutName } from '../harness/layouts/registry.js';
import { dtypeBits, type DType } from '../harness/safetensors/dtypes.js';
import type { LazyTensor } from '../harness/safetensors/write.js';
import { buildConfig, type ConfigDtype, type ModelSizes } from '../harness/writer/config.js';

const CHUNK_BYTES = 16 << 20;
const CONFIG_DTYPE: Record<string, ConfigDtype> = { BF16: 'bfloat16', F16: 'float16', F32: 'float32' };

/** Random finite values of magnitude about 2^-8..1 in `dtype`, from a seeded xorshift. */
function randomChunk(dtype: DType, bytes: number, seed: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
  if (dtype === 'F32') {
    const v = new Float32Array(out.buffer);
    for (let i = 0; i < v.length; i++) v[i] = (next() / 2 ** 31 - 1) * 0.05;
    return out;
  }
  const v = new Uint16Array(out.buffer);
  // Sign, an exponent in a narrow finite band, and random mantissa bits.
  const [expBits, lo, span] = dtype === 'BF16' ? [7, 119, 8] : [10, 7, 8];
  for (let i = 0; i < v.length; i++) {
    const r = next();
    v[i] = ((r >>> 31) << 15) | ((lo + ((r >>> 20) % span)) << expBits) | (r & ((1 << expBits) - 1));
  }
  return out;
}

function lazyRandom(dtype: DType, shape: number[], seed: number): LazyTensor {
  const byteLength = (shape.reduce((a, b) => a * b, 1) * dtypeBits(dtype)) / 8;
  return {
    dtype, shape, byteLength,
    async *chunks() {
      for (let at = 0, k = 0; at < byteLength; at += CHUNK_BYTES, k++) yield randomChunk(dtype, Math.min(CHUNK_BYTES, byteLength - at), seed * 7919 + k);
    },
  };
}

export interface BigCheckpoint {
  sizes: ModelSizes;
  layout: LayoutName;
  dtype: 'BF16' | 'F16' | 'F32';
  maxShardBytes: number;
  seed: number;
}

/** Writes the checkpoint into `dir` and returns the bytes of its MoE tensors. */
export async function writeBigCheckpoint(dir: string, c: BigCheckpoint): Promise<number> {
  const raw = buildConfig(c.sizes, CONFIG_DTYPE[c.dtype]!);
  const entry = entryFor(c.sizes.modelType);
  const dims = entry.dims(new ModelConfig(raw));
  const tensors: Array<[string, LazyTensor]> = [];
  let seed = c.seed;
  for (const layer of dims.moeLayers) {
    for (const stored of expandLayout(entry.layouts[c.layout], layer, dims)) tensors.push([stored.key, lazyRandom(c.dtype, stored.shape, seed++)]);
  }
  await writeCheckpointDir(dir, raw, tensors, { maxShardBytes: c.maxShardBytes });
  return tensors.reduce((sum, [, t]) => sum + t.byteLength, 0);
}
