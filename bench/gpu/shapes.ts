// The MoE layer shapes of the GPU benchmark (today's models plus Mixtral) and their weights.
// Every number comes from a counter-based hash of (tensor, expert, element), so the torch
// peer (bench/peers/torch_moe_gpu.py) makes the same weights on the GPU by itself instead of
// reading tens of gigabytes from a file: expert matrices in bf16 (as the models are
// published), router, biases and x in f32. Host arrays are filled by worker threads; a
// shape whose stacked expert tensor would pass Node's 4 GiB typed-array limit is held as EP
// ranks (DeepSeek-V3: 4 ranks of 64 experts), which the backends sum like any EP split.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { ExpertActivation, MoeSemantics, Routing } from '../../harness/layouts/semantics.js';
import type { Canonical, Tensor } from '../../harness/tensor.js';
import type { RankTensors } from '../../kernels/backend.js';

export interface ModelShape {
  name: string;
  hidden: number;
  intermediate: number;
  experts: number;
  topK: number;
  sharedIntermediate: number;
  routing: Routing;
  activation: ExpertActivation;
  /** gpt_oss: w13/w2 biases and a router bias. */
  biases: boolean;
  /** deepseek_v3: the selection-only correction bias. */
  correction: boolean;
  /** EP ranks the experts are held in (each rank's w13 under 4 GiB). */
  ep: number;
}

const SOFTMAX_RENORM: Routing = { kind: 'softmax_topk', renormalize: true, scaling: 1 };

export const MODEL_SHAPES: ModelShape[] = [
  { name: 'qwen3-30b-a3b', hidden: 2048, intermediate: 768, experts: 128, topK: 8, sharedIntermediate: 0, routing: SOFTMAX_RENORM, activation: { kind: 'silu_gated' }, biases: false, correction: false, ep: 1 },
  {
    name: 'deepseek-v3', hidden: 7168, intermediate: 2048, experts: 256, topK: 8, sharedIntermediate: 2048,
    routing: { kind: 'sigmoid_group_limited_bias', groups: 8, topkGroups: 4, renormalize: true, scaling: 2.5 }, activation: { kind: 'silu_gated' }, biases: false, correction: true, ep: 4,
  },
  {
    name: 'gpt-oss-120b', hidden: 2880, intermediate: 2880, experts: 128, topK: 4, sharedIntermediate: 0,
    routing: { kind: 'topk_softmax' }, activation: { kind: 'gpt_oss_clamped', alpha: 1.702, limit: 7 }, biases: true, correction: false, ep: 1,
  },
  { name: 'mixtral-8x7b', hidden: 4096, intermediate: 14336, experts: 8, topK: 2, sharedIntermediate: 0, routing: SOFTMAX_RENORM, activation: { kind: 'silu_gated' }, biases: false, correction: false, ep: 1 },
];

const SMALL = ' (small)';

/** The same routing and activation at a size the float64 reference computes in a moment (a small shape stays as it is). */
export function smallShape(s: ModelShape): ModelShape {
  return { ...s, name: s.name.endsWith(SMALL) ? s.name : `${s.name}${SMALL}`, hidden: 96, intermediate: 64, experts: Math.min(s.experts, 32), sharedIntermediate: s.sharedIntermediate ? 64 : 0, topK: Math.min(s.topK, 8), ep: Math.min(s.ep, 2) };
}

/** Seeds of the tensors, shared with the torch peer. */
export const SEEDS = { x: 1, router: 2, w13: 3, w2: 4, sharedW13: 5, sharedW2: 6, w13Bias: 7, w2Bias: 8, routerBias: 9, correction: 10 } as const;

/** Uniform scale of each tensor (values in [-scale, scale)), shared with the torch peer. */
export function scales(s: ModelShape): Record<keyof typeof SEEDS, number> {
  return {
    x: Math.sqrt(3), router: Math.sqrt(3 / s.hidden), w13: Math.sqrt(3 / s.hidden), w2: Math.sqrt(3 / s.intermediate),
    sharedW13: Math.sqrt(3 / s.hidden), sharedW2: Math.sqrt(3 / Math.max(1, s.sharedIntermediate)), w13Bias: 0.1, w2Bias: 0.1, routerBias: 0.1, correction: 0.01,
  };
}

// lowbias32 (Chris Wellons' integer hash). Self-contained, no nested functions: the worker
// threads run these functions' own source text.
export function lowbias32(v: number): number {
  let h = v >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Element i of the tensor with `seed`: u = hash(i + hash(seed·0x9E3779B9)) >>> 8, value
 * (u − 2²³)·2⁻²³·scale rounded to f32, then truncated to bf16 where asked; stored at out[i].
 */
export function fillHash(out: Float32Array | Uint16Array, seed: number, scale: number, bf16: boolean): void {
  const base = lowbias32(Math.imul(seed, 0x9e3779b9));
  const s = Math.fround(scale);
  const f = new Float32Array(1);
  const bits = new Uint32Array(f.buffer);
  for (let i = 0; i < out.length; i++) {
    const u = lowbias32((i + base) >>> 0) >>> 8;
    f[0] = (u - 8388608) * 1.1920928955078125e-7 * s;
    out[i] = bf16 ? bits[0]! >>> 16 : f[0]!;
  }
}

interface FillJob {
  /** Byte offset of the matrix in the shared buffer. */
  at: number;
  count: number;
  seed: number;
  scale: number;
  bf16: boolean;
}

const WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
${lowbias32.toString()}
${fillHash.toString()}
for (const j of workerData.jobs) {
  const view = j.bf16 ? new Uint16Array(workerData.buffer, j.at, j.count) : new Float32Array(workerData.buffer, j.at, j.count);
  fillHash(view, j.seed, j.scale, j.bf16);
}
parentPort.postMessage('done');
`;

/** Runs the jobs over the shared buffer on all cores. */
async function fillParallel(buffer: SharedArrayBuffer, jobs: FillJob[]): Promise<void> {
  const workers = Math.max(1, Math.min(jobs.length, availableParallelism()));
  await Promise.all(Array.from({ length: workers }, (_, w) => new Promise<void>((resolve, reject) => {
    const worker = new Worker(WORKER, { eval: true, workerData: { buffer, jobs: jobs.filter((_, i) => i % workers === w) } });
    worker.once('message', () => resolve());
    worker.once('error', reject);
    worker.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`fill worker exited with ${code}`))));
  })));
}

/** `[count, rows, cols]` stacked matrices, matrix e seeded `seed·100000 + firstId + e`. */
async function stacked(count: number, rows: number, cols: number, seed: number, firstId: number, scale: number, bf16: boolean): Promise<Tensor> {
  const bytesPer = bf16 ? 2 : 4;
  const n = rows * cols;
  const buffer = new SharedArrayBuffer(count * n * bytesPer);
  await fillParallel(buffer, Array.from({ length: count }, (_, e) => ({ at: e * n * bytesPer, count: n, seed: seed * 100000 + firstId + e, scale, bf16 })));
  return { dtype: bf16 ? 'BF16' : 'F32', shape: [count, rows, cols], bytes: new Uint8Array(buffer) };
}

function small(shape: number[], seed: number, scale: number): Tensor {
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  fillHash(values, seed * 100000, scale, false);
  return { dtype: 'F32', shape, bytes: new Uint8Array(values.buffer) };
}

export function semanticsOf(s: ModelShape): MoeSemantics {
  return {
    modelType: s.name, experts: s.experts, topK: s.topK, hidden: s.hidden, intermediate: s.intermediate, sharedIntermediate: s.sharedIntermediate,
    routing: s.routing, activation: s.activation, sharedGate: false, moeLayers: [0],
  };
}

export interface ShapeProblem {
  shape: ModelShape;
  sem: MoeSemantics;
  ranks: RankTensors[];
  /** `[tokens, hidden]` for the largest token count; a forward of T tokens takes the first T rows. */
  x: Float32Array;
}

/** FLOPs of one forward of `tokens` tokens: router, routed experts, shared expert. */
export function flopsOf(s: ModelShape, tokens: number): number {
  return 2 * tokens * s.experts * s.hidden + tokens * s.topK * 6 * s.intermediate * s.hidden + tokens * 6 * s.sharedIntermediate * s.hidden;
}

/** The layer's canonical tensors (EP ranks of whole experts, linear placement) and x, from the hash. */
export async function shapeProblem(s: ModelShape, tokens: number): Promise<ShapeProblem> {
  const { hidden: H, intermediate: I, experts: E, sharedIntermediate: Is } = s;
  const sc = scales(s);
  const router = small([E, H], SEEDS.router, sc.router);
  const ranks: RankTensors[] = [];
  const per = E / s.ep;
  const routerBias = s.biases ? small([E], SEEDS.routerBias, sc.routerBias) : undefined;
  const correction = s.correction ? small([E], SEEDS.correction, sc.correction) : undefined;
  const sharedW13 = Is > 0 ? { ...(await stacked(1, 2 * Is, H, SEEDS.sharedW13, 0, sc.sharedW13, true)), shape: [2 * Is, H] } : undefined;
  const sharedW2 = Is > 0 ? { ...(await stacked(1, H, Is, SEEDS.sharedW2, 0, sc.sharedW2, true)), shape: [H, Is] } : undefined;
  if (!Number.isInteger(per)) throw new RangeError(`${s.name}: ${s.ep} EP ranks do not divide ${E} experts`);
  for (let q = 0; q < s.ep; q++) {
    const first = q * per;
    const t: Canonical = new Map();
    t.set('layers.0.experts.ids', { dtype: 'I32', shape: [per], bytes: new Uint8Array(Int32Array.from({ length: per }, (_, i) => first + i).buffer) });
    t.set('layers.0.experts.w13', await stacked(per, 2 * I, H, SEEDS.w13, first, sc.w13, true));
    t.set('layers.0.experts.w2', await stacked(per, H, I, SEEDS.w2, first, sc.w2, true));
    t.set('layers.0.router.weight', router);
    if (s.biases) {
      t.set('layers.0.experts.w13_bias', await stacked(per, 1, 2 * I, SEEDS.w13Bias, first, sc.w13Bias, false).then((b) => ({ ...b, shape: [per, 2 * I] })));
      t.set('layers.0.experts.w2_bias', await stacked(per, 1, H, SEEDS.w2Bias, first, sc.w2Bias, false).then((b) => ({ ...b, shape: [per, H] })));
    }
    if (routerBias) t.set('layers.0.router.bias', routerBias);
    if (correction) t.set('layers.0.router.correction_bias', correction);
    if (sharedW13 && sharedW2) {
      t.set('layers.0.shared.w13', sharedW13);
      t.set('layers.0.shared.w2', sharedW2);
    }
    ranks.push({ req: { tpSize: 1, tpRank: 0, epSize: s.ep, epRank: q, epPlacement: 'linear' }, tensors: t });
  }
  const x = new Float32Array(tokens * H);
  fillHash(x, SEEDS.x * 100000, sc.x, false);
  return { shape: s, sem: semanticsOf(s), ranks, x };
}
