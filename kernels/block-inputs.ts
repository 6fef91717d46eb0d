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
import { sharedPieces } from '../harness/canonical/canonical.js';

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

/** Rows [lo, hi) of a rank's shared expert that one router-weighted shared expert owns, with its weight for every token. */
export interface RoutedSharedPiece {
  rows: [number, number];
  weights: Float64Array;
}

/**
 * inkling: the rank's `Rs` shared-expert rows cut into the runs each of the S router-weighted
 * shared experts owns (spec/loader-protocol.md §1: canonically one shared MLP of intermediate
 * S·I, cut contiguously for TP, so rank `tpRank` holds rows tpRank·Rs .. (tpRank+1)·Rs), each
 * with that shared expert's routing weights; undefined where the routing weights no shared expert.
 * A run is a shared MLP of its own: its weight scales its output, as inkling scales its activations.
 */
export function routedSharedPieces(sem: MoeSemantics, routing: RoutingResult, tpRank: number, Rs: number): RoutedSharedPiece[] | undefined {
  const S = sem.sharedRouted;
  if (!S) return undefined;
  const w = routing.sharedWeights;
  if (w === undefined || w.length % S !== 0) {
    throw new BlockSemanticsError('the routing gives no weight for every router-weighted shared expert and token', { expected: `a multiple of ${S} weights`, found: w?.length ?? 'none' });
  }
  const tokens = w.length / S;
  const first = tpRank * Rs;
  return sharedPieces([first, first + Rs], sem.sharedIntermediate, S).map((p) => {
    const s = p.expert ?? 0;
    const start = s * (sem.sharedIntermediate / S) + p.rows[0] - first;
    return { rows: [start, start + p.rows[1] - p.rows[0]], weights: Float64Array.from({ length: tokens }, (_, t) => w[t * S + s]!) };
  });
}

/** Rows [lo, hi) of a shared MLP, `w13` `[2·Rs, H]` (gate rows, then up rows) and `w2` `[H, Rs]`, as an MLP of their own. */
export function sharedRows<T extends Float32Array | Float64Array>(w13: T, w2: T, H: number, Rs: number, [lo, hi]: [number, number]): { w13: T; w2: T } {
  const n = hi - lo;
  const a = w13.slice(0, 2 * n * H) as T;
  a.set(w13.subarray(lo * H, hi * H), 0);
  a.set(w13.subarray((Rs + lo) * H, (Rs + hi) * H), n * H);
  const b = w2.slice(0, H * n) as T;
  for (let h = 0; h < H; h++) b.set(w2.subarray(h * Rs + lo, h * Rs + hi), h * n);
  return { w13: a, w2: b };
}

/** Semantics that the kernels cannot compute. */
export class BlockSemanticsError extends MoeConformanceError {}
