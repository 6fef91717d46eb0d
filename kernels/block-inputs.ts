// What a block does around its router and experts with tensors of its own, in one place for
// every backend: gemma4's normalised inputs (the router scores RMSNorm(x) · input_scale · H^-½,
// the experts run on RMSNorm(x) · expert_input_norm) and per-expert output scales (each
// routing weight × expert_scale[expert]). Computed on the host in float64 from rank 0's
// tensors (every rank holds them whole); a backend that computes in float32 rounds the
// inputs once, which the reference's error bound allows for (INPUT_REL_ERROR).
import type { MoeSemantics } from '../harness/layouts/semantics.js';
import type { RankTensors } from './backend.js';
import type { RoutingResult } from './routing.js';
import { decodeFloatTensor } from './experts.js';
import { U32 } from '../harness/compare/tolerance.js';
import { MoeConformanceError } from '../harness/errors.js';

export interface BlockInputs {
  /** `[tokens, H]` what the router scores. */
  router: Float64Array;
  /** `[tokens, H]` what the experts (and a shared expert) run on. */
  experts: Float64Array;
}

/** Relative error of a normalised input once rounded to float32 by a backend. */
export const INPUT_REL_ERROR = 2 * U32;

/** x / sqrt(mean(x²) + eps) of each row, × `weight` (and `factor`). */
function rmsNorm(x: ArrayLike<number>, tokens: number, H: number, eps: number, weight: Float64Array, factor: number): Float64Array {
  const out = new Float64Array(tokens * H);
  for (let t = 0; t < tokens; t++) {
    let ms = 0;
    for (let h = 0; h < H; h++) ms += x[t * H + h]! * x[t * H + h]!;
    const inv = 1 / Math.sqrt(ms / H + eps);
    for (let h = 0; h < H; h++) out[t * H + h] = x[t * H + h]! * inv * weight[h]! * factor;
  }
  return out;
}

/** The router's and the experts' inputs of layer `layer` for the block input `x` (both x itself where the block has no norms). */
export function blockInputs(sem: MoeSemantics, layer: number, r0: RankTensors, x: ArrayLike<number>, tokens: number): BlockInputs {
  const H = sem.hidden;
  if (!sem.inputNorms) {
    const same = Float64Array.from(x);
    return { router: same, experts: same };
  }
  const p = `layers.${layer}.`;
  const { eps } = sem.inputNorms;
  return {
    router: rmsNorm(x, tokens, H, eps, decodeFloatTensor(r0, `${p}router.input_scale`, [H]), H ** -0.5),
    experts: rmsNorm(x, tokens, H, eps, decodeFloatTensor(r0, `${p}expert_input_norm`, [H]), 1),
  };
}

/** blockInputs in float32 for the float32 backends: `x` itself where the block has no norms. */
export function blockInputsF32(sem: MoeSemantics, layer: number, r0: RankTensors, x: Float32Array, tokens: number): { router: Float32Array; experts: Float32Array } {
  if (!sem.inputNorms) return { router: x, experts: x };
  const b = blockInputs(sem, layer, r0, x, tokens);
  return { router: Float32Array.from(b.router), experts: Float32Array.from(b.experts) };
}

/**
 * Routing weights × the block's stored scales, in place: `router.expert_scale[expert]`
 * (gemma4's per-expert output scales), `router.global_scale` (inkling, the shared experts' weights too).
 */
export function scaleByExpert(sem: MoeSemantics, layer: number, r0: RankTensors, routing: RoutingResult): RoutingResult {
  if (sem.expertOutputScale) {
    const scale = decodeFloatTensor(r0, `layers.${layer}.router.expert_scale`, [sem.experts]);
    for (let i = 0; i < routing.weights.length; i++) routing.weights[i] = routing.weights[i]! * scale[routing.selected[i]!]!;
  }
  if (sem.routerGlobalScale) {
    const g = decodeFloatTensor(r0, `layers.${layer}.router.global_scale`, [1])[0]!;
    for (const w of [routing.weights, routing.sharedWeights]) for (let i = 0; w && i < w.length; i++) w[i] = w[i]! * g;
  }
  return routing;
}

/** The shared expert's per-token scale where the routing weights it (inkling: one shared expert), else undefined. */
export function routedSharedScale(sem: MoeSemantics, routing: RoutingResult): Float64Array | undefined {
  if (!sem.sharedRouted) return undefined;
  if (sem.sharedRouted !== 1 || routing.sharedWeights === undefined) {
    throw new BlockSemanticsError('only one router-weighted shared expert can be computed', { expected: 1, found: sem.sharedRouted });
  }
  return routing.sharedWeights;
}

/** Semantics that the kernels cannot compute. */
export class BlockSemanticsError extends MoeConformanceError {}
