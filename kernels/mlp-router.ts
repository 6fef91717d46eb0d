// An MLP router's logits (zaya's ZayaRouter, `MoeSemantics.mlpRouter`), in float64 from the
// canonical router tensors of one rank, with a float32 error bound of every logit. Every
// backend takes its router logits from here for such a model (like the shared routing code):
// the router is a few small matrix-vector products per token, and its float32 error has to
// be bounded stage by stage anyway.
import type { MoeSemantics } from '../harness/layouts/semantics.js';
import { gamma, looseBound, U32 } from '../harness/compare/tolerance.js';
import type { ForwardInputs, RankTensors } from './backend.js';
import { decodeFloatTensor } from './experts.js';
import { RoutingError } from './routing.js';

/** erf in float64 (series below 3, Lentz continued fraction of erfc above; ~1e-15 absolute). */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (a < 3) {
    let term = a;
    let sum = a;
    for (let n = 1; n < 80 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
      term *= (-a * a) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(a) = e^{-a²}/√π · 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + ...)))), evaluated from the tail.
  let f = a;
  for (let n = 60; n >= 1; n--) f = a + n / 2 / f;
  return Math.sign(x) * (1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / f);
}

/** torch's exact GELU, x · Φ(x). */
export const gelu = (x: number): number => 0.5 * x * (1 + erf(x / Math.SQRT2));
/** A bound of |d gelu(x)/dx| (its maximum is about 1.129). */
const GELU_SLOPE = 1.13;

export interface RouterLogits {
  logits: Float64Array;
  /** Per-logit strict and loose float32 bounds (empty unless asked for). */
  bound: Float64Array;
  loose: Float64Array;
}

/** y = W v + b for one token, with its error bound from `e` (the error of v) and the rounding of the products. */
function linear(W: Float64Array, b: Float64Array | undefined, v: Float64Array, e: Float64Array, rows: number, cols: number) {
  const y = new Float64Array(rows);
  const err = new Float64Array(rows);
  const mag = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let s = b ? b[i]! : 0;
    let m = b ? Math.abs(b[i]!) : 0;
    let p = 0;
    for (let j = 0; j < cols; j++) {
      const w = W[i * cols + j]!;
      s += w * v[j]!;
      m += Math.abs(w * v[j]!);
      p += Math.abs(w) * e[j]!;
    }
    y[i] = s;
    mag[i] = m;
    err[i] = p + gamma(cols + 1) * m;
  }
  return { y, err, mag };
}

/**
 * `[tokens, E + Z]` logits of layer `layer`'s MLP router for the rows of `x`, from rank 0's
 * whole router tensors; a state layer needs `inputs.routerState` (`[tokens, R]`).
 */
export function mlpRouterLogits(sem: MoeSemantics, layer: number, rank: RankTensors, x: ArrayLike<number>, tokens: number, inputs: ForwardInputs | undefined, withBound = false): RouterLogits {
  const m = sem.mlpRouter!;
  const { hidden: H, experts: E } = sem;
  const R = m.hidden;
  const get = (name: string, shape: number[]) => decodeFloatTensor(rank, `layers.${layer}.router.${name}`, shape);
  const down = get('down.weight', [R, H]);
  const downBias = get('down.bias', [R]);
  const norm = get('norm', [R]);
  const fc1 = get('fc1.weight', [R, R]);
  const fc1Bias = get('fc1.bias', [R]);
  const fc2 = get('fc2.weight', [R, R]);
  const fc2Bias = get('fc2.bias', [R]);
  const out = get('weight', [E, R]);
  const withState = m.stateLayers.includes(layer);
  const scale = withState ? get('state_scale', [R]) : undefined;
  const state = inputs?.routerState;
  if (withState && (state === undefined || state.length !== tokens * R)) {
    throw new RoutingError('this layer\'s router adds the state carried from the previous layer: the forward needs it', { layer, expected: `routerState [${tokens}, ${R}]`, found: state === undefined ? 'none' : state.length });
  }
  const logits = new Float64Array(tokens * E);
  const bound = new Float64Array(withBound ? tokens * E : 0);
  const loose = new Float64Array(withBound ? tokens * E : 0);
  const xe = new Float64Array(H);
  for (let t = 0; t < tokens; t++) {
    const xt = Float64Array.from({ length: H }, (_, c) => x[t * H + c]!);
    const r = linear(down, downBias, xt, xe, R, H);
    if (scale) {
      for (let i = 0; i < R; i++) {
        const add = state![t * R + i]! * scale[i]!;
        r.y[i] = r.y[i]! + add;
        r.err[i] = r.err[i]! + 2 * U32 * (Math.abs(add) + Math.abs(r.y[i]!));
      }
    }
    // RMSNorm: n = w · r / sqrt(mean(r²) + eps); an error of r moves it by about as much relatively, twice.
    let ms = 0;
    for (let i = 0; i < R; i++) ms += r.y[i]! * r.y[i]!;
    const rms = Math.sqrt(ms / R + m.eps);
    let rel = 0;
    for (let i = 0; i < R; i++) rel = Math.max(rel, r.err[i]! / rms);
    const n = r.y.map((v, i) => (norm[i]! * v) / rms);
    const ne = r.y.map((v, i) => Math.abs(norm[i]!) * (r.err[i]! / rms + (2 * rel + gamma(R + 4)) * Math.abs(v / rms)));
    const z1 = linear(fc1, fc1Bias, n, ne, R, R);
    const h1 = z1.y.map(gelu);
    const h1e = z1.err.map((e, i) => GELU_SLOPE * e + 4 * U32 * Math.abs(h1[i]!));
    const z2 = linear(fc2, fc2Bias, h1, h1e, R, R);
    const h2 = z2.y.map(gelu);
    const h2e = z2.err.map((e, i) => GELU_SLOPE * e + 4 * U32 * Math.abs(h2[i]!));
    const l = linear(out, undefined, h2, h2e, E, R);
    logits.set(l.y, t * E);
    if (withBound) {
      for (let e = 0; e < E; e++) {
        // Twice the estimate: the stages' bounds are first-order, not proofs.
        bound[t * E + e] = 2 * l.err[e]!;
        loose[t * E + e] = looseBound(bound[t * E + e]!, l.mag[e]!);
      }
    }
  }
  return { logits, bound, loose };
}

/** The MLP router's logits as a float32 backend uses them (rounded once from float64). */
export function mlpRouterLogitsF32(sem: MoeSemantics, layer: number, rank: RankTensors, x: ArrayLike<number>, tokens: number, inputs: ForwardInputs | undefined): Float32Array {
  return Float32Array.from(mlpRouterLogits(sem, layer, rank, x, tokens, inputs).logits);
}
