// One MoE forward problem for the kernel benchmarks: a mixtral-routed layer (softmax top-k,
// renormalised, SiLU-gated experts) with random float32 weights, as the canonical tensors
// of one whole rank, and the same numbers as a safetensors file for the torch peer
// (bench/peers/torch_moe_file.py), so that both sides compute on identical inputs.
import type { MoeSemantics } from '../harness/layouts/semantics.js';
import { WHOLE, type Canonical, type Tensor } from '../harness/tensor.js';
import { writeSafetensors, type LazyTensor } from '../harness/safetensors/write.js';
import type { RankTensors } from '../kernels/backend.js';

export interface MoeProblem {
  sem: MoeSemantics;
  tokens: number;
  x: Float32Array;
  ranks: RankTensors[];
  /** Router, gate and up (2·2I·H per routed token) and down (2·I·H). */
  flops: number;
}

export interface ProblemSize {
  tokens: number;
  hidden: number;
  intermediate: number;
  experts: number;
  topK: number;
}

/** Uniform numbers with the variance of N(0, scale²), from a 32-bit xorshift: fast and seeded. */
function randomF32(n: number, scale: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  const k = scale * Math.sqrt(3) / 2 ** 31;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = (s | 0) * k;
  }
  return out;
}

const f32Tensor = (shape: number[], values: Float32Array): Tensor => ({ dtype: 'F32', shape, bytes: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) });

export function moeProblem(size: ProblemSize, seed = 1): MoeProblem {
  const { tokens: T, hidden: H, intermediate: I, experts: E, topK: k } = size;
  const sem: MoeSemantics = {
    modelType: 'mixtral', experts: E, topK: k, hidden: H, intermediate: I, sharedIntermediate: 0,
    routing: { kind: 'softmax_topk', renormalize: true, scaling: 1 },
    activation: { kind: 'silu_gated' }, sharedGate: false, moeLayers: [0],
  };
  const tensors: Canonical = new Map([
    ['layers.0.experts.ids', { dtype: 'I32', shape: [E], bytes: new Uint8Array(Int32Array.from({ length: E }, (_, e) => e).buffer) }],
    ['layers.0.experts.w13', f32Tensor([E, 2 * I, H], randomF32(E * 2 * I * H, H ** -0.5, seed + 1))],
    ['layers.0.experts.w2', f32Tensor([E, H, I], randomF32(E * H * I, I ** -0.5, seed + 2))],
    ['layers.0.router.weight', f32Tensor([E, H], randomF32(E * H, H ** -0.5, seed + 3))],
  ]);
  return {
    sem, tokens: T, x: randomF32(T * H, 1, seed), ranks: [{ req: WHOLE, tensors }],
    flops: 2 * T * E * H + T * k * (4 * I * H + 2 * I * H),
  };
}

/**
 * A tensor handed to the writer in 256 MiB chunks: one write of more than 2 GiB is refused
 * by Node's fs (the Mixtral-sized w13 is 3.8 GB).
 */
function chunked(t: Tensor): LazyTensor {
  const step = 256 << 20;
  return {
    dtype: t.dtype, shape: t.shape, byteLength: t.bytes.length,
    async *chunks() {
      for (let at = 0; at < t.bytes.length; at += step) yield t.bytes.subarray(at, at + step);
    },
  };
}

/** Writes `x`, `router`, `w13`, `w2` and metadata `top_k` for the torch peer. */
export async function writePeerInput(p: MoeProblem, file: string): Promise<void> {
  const t = p.ranks[0]!.tensors;
  await writeSafetensors(file, new Map<string, LazyTensor>([
    ['x', chunked(f32Tensor([p.tokens, p.sem.hidden], p.x))],
    ['router', chunked(t.get('layers.0.router.weight')!)],
    ['w13', chunked(t.get('layers.0.experts.w13')!)],
    ['w2', chunked(t.get('layers.0.experts.w2')!)],
  ]), { top_k: String(p.sem.topK) });
}

/** The first `n` tokens of the problem: a forward is per token, so their outputs are the same rows. */
export function firstTokens(p: MoeProblem, n: number): MoeProblem {
  const tokens = Math.min(n, p.tokens);
  return { ...p, tokens, x: p.x.subarray(0, tokens * p.sem.hidden), flops: (p.flops * tokens) / p.tokens };
}
