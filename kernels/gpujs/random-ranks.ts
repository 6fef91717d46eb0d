// Seeded random canonical tensors of one MoE layer, rank by rank, for checking a backend
// against the reference (the gpu.js tests). Each rank's experts are drawn
// on their own: both forwards read the same rank tensors, so they need not reassemble
// into one model. Router and shared-gate tensors are the same on every rank, as the
// protocol says.
import type { MoeSemantics } from '../../harness/layouts/semantics.js';
import type { Canonical, EpPlacement, Tensor } from '../../harness/tensor.js';
import { expertsOf } from '../../harness/canonical/cut.js';
import { xoshiro128ss } from '../../harness/canonical/random.js';
import type { RankTensors } from '../backend.js';

/** Uniform in [-scale, scale). */
export function randomFloats(random: () => number, n: number, scale: number): Float32Array {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = (2 * random() - 1) * scale;
  return v;
}

function f32Tensor(values: Float32Array, shape: number[]): Tensor {
  return { dtype: 'F32', shape, bytes: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

function idsTensor(ids: number[]): Tensor {
  const v = Int32Array.from(ids);
  return { dtype: 'I32', shape: [ids.length], bytes: new Uint8Array(v.buffer) };
}

export interface LayerExtras {
  /** router.bias, experts.w13_bias and experts.w2_bias (gpt_oss). */
  biases?: boolean;
  /** router.correction_bias. */
  correctionBias?: boolean;
  /** Overrides the random router weight (`[E, H]`), e.g. to force which experts win. */
  routerWeight?: Float32Array;
}

export interface Split {
  tpSize: number;
  epSize: number;
  placement: EpPlacement;
}

/** Every rank of `split` for layer `layer`, weights uniform in ±`scale`. */
export function randomRanks(sem: MoeSemantics, layer: number, split: Split, seed: number, extras: LayerExtras = {}, scale = 0.1): RankTensors[] {
  const random = xoshiro128ss(seed);
  const { hidden: H, experts: E } = sem;
  const p = `layers.${layer}.`;
  const whole = new Map<string, Tensor>();
  whole.set(`${p}router.weight`, f32Tensor(extras.routerWeight ?? randomFloats(random, E * H, scale), [E, H]));
  if (extras.biases) whole.set(`${p}router.bias`, f32Tensor(randomFloats(random, E, scale), [E]));
  if (extras.correctionBias) whole.set(`${p}router.correction_bias`, f32Tensor(randomFloats(random, E, scale), [E]));
  if (sem.sharedGate) whole.set(`${p}shared.gate`, f32Tensor(randomFloats(random, H, scale), [1, H]));

  const ranks: RankTensors[] = [];
  const ir = sem.intermediate / split.tpSize;
  const isr = sem.sharedIntermediate / split.tpSize;
  // Shared-expert slices: one per TP rank, the same on every EP rank.
  const shared = Array.from({ length: split.tpSize }, () => ({
    w13: randomFloats(random, 2 * isr * H, scale),
    w2: randomFloats(random, H * isr, scale),
  }));
  for (let tpRank = 0; tpRank < split.tpSize; tpRank++) {
    for (let epRank = 0; epRank < split.epSize; epRank++) {
      const ids = expertsOf(E, split.epSize, epRank, split.placement);
      const n = ids.length;
      const tensors: Canonical = new Map(whole);
      tensors.set(`${p}experts.ids`, idsTensor(ids));
      tensors.set(`${p}experts.w13`, f32Tensor(randomFloats(random, n * 2 * ir * H, scale), [n, 2 * ir, H]));
      tensors.set(`${p}experts.w2`, f32Tensor(randomFloats(random, n * H * ir, scale), [n, H, ir]));
      if (extras.biases) {
        tensors.set(`${p}experts.w13_bias`, f32Tensor(randomFloats(random, n * 2 * ir, scale), [n, 2 * ir]));
        tensors.set(`${p}experts.w2_bias`, f32Tensor(randomFloats(random, n * H, scale), [n, H]));
      }
      if (isr > 0) {
        tensors.set(`${p}shared.w13`, f32Tensor(shared[tpRank]!.w13, [2 * isr, H]));
        tensors.set(`${p}shared.w2`, f32Tensor(shared[tpRank]!.w2, [H, isr]));
      }
      ranks.push({ req: { tpSize: split.tpSize, tpRank, epSize: split.epSize, epRank, epPlacement: split.placement }, tensors });
    }
  }
  return ranks;
}
