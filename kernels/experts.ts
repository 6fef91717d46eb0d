// The expert MLPs of the float64 reference: one rank's canonical tensors decoded once to
// float64 and checked against the semantics, and the gated MLP that both routed and shared
// experts run, optionally carrying the float32 rounding-error bound alongside
// (harness/compare/tolerance.ts explains the error model).
import type { ExpertActivation, MoeSemantics } from '../harness/layouts/semantics.js';
import type { Tensor } from '../harness/tensor.js';
import type { RankTensors } from './backend.js';
import { MoeConformanceError } from '../harness/errors.js';
import { decodeFloats64 } from '../harness/safetensors/codecs.js';
import { activationError, gamma, U32 } from '../harness/compare/tolerance.js';

/** A canonical tensor that a forward cannot use: absent, wrong dtype, wrong shape, bad ids. */
export class CanonicalTensorError extends MoeConformanceError {}

/** One rank's routed experts of one layer, in float64. */
export interface ExpertWeights {
  ids: Int32Array;
  /** Intermediate rows per expert held by this TP rank (`Ir`). */
  rows: number;
  w13: Float64Array;
  w2: Float64Array;
  w13Bias?: Float64Array;
  w2Bias?: Float64Array;
}

export interface SharedWeights {
  rows: number;
  w13: Float64Array;
  w2: Float64Array;
  /** `[H]` the sigmoid gate's weight, where the model has one. */
  gate?: Float64Array;
}

export interface RankWeights {
  tpRank: number;
  epRank: number;
  experts: ExpertWeights;
  shared?: SharedWeights;
}

function tensorOf(rank: RankTensors, name: string): Tensor {
  const t = rank.tensors.get(name);
  if (t === undefined) throw new CanonicalTensorError('canonical tensor missing', { tensor: name, expected: 'present', found: 'absent' });
  return t;
}

/** Decodes a float tensor after checking its shape; `-1` in `shape` accepts any size there. */
function floats(rank: RankTensors, name: string, shape: number[]): { values: Float64Array; shape: number[] } {
  const t = tensorOf(rank, name);
  const fits = t.shape.length === shape.length && shape.every((d, i) => d < 0 || d === t.shape[i]);
  if (!fits) throw new CanonicalTensorError('canonical tensor has the wrong shape', { tensor: name, expected: shape, found: t.shape });
  let values: Float64Array;
  try {
    values = decodeFloats64(t.dtype, t.bytes);
  } catch (e) {
    throw new CanonicalTensorError(`canonical tensor cannot be decoded as floats: ${(e as Error).message}`, { tensor: name, found: t.dtype });
  }
  const count = t.shape.reduce((a, b) => a * b, 1);
  if (values.length !== count) {
    throw new CanonicalTensorError('canonical tensor byte length does not match its shape', { tensor: name, expected: count, found: values.length });
  }
  return { values, shape: t.shape };
}

/** A float tensor of one rank, checked against `shape` and decoded to float64. */
export function decodeFloatTensor(rank: RankTensors, name: string, shape: number[]): Float64Array {
  return floats(rank, name, shape).values;
}

function optionalFloats(rank: RankTensors, name: string, shape: number[]): Float64Array | undefined {
  return rank.tensors.has(name) ? floats(rank, name, shape).values : undefined;
}

function expertIds(rank: RankTensors, name: string, experts: number): Int32Array {
  const t = tensorOf(rank, name);
  if (t.dtype !== 'I32' || t.shape.length !== 1 || t.bytes.length !== 4 * t.shape[0]!) {
    throw new CanonicalTensorError('expert ids must be a 1-D I32 tensor', { tensor: name, expected: 'I32 [E_local]', found: `${t.dtype} [${t.shape.join(', ')}]` });
  }
  const view = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
  const ids = Int32Array.from({ length: t.shape[0]! }, (_, i) => view.getInt32(4 * i, true));
  const seen = new Set<number>();
  for (const id of ids) {
    if (id < 0 || id >= experts || seen.has(id)) {
      throw new CanonicalTensorError('expert id out of range or repeated', { tensor: name, expected: `distinct ids in 0..${experts - 1}`, found: Array.from(ids) });
    }
    seen.add(id);
  }
  return ids;
}

/** Decodes and checks one rank's tensors of MoE layer `layer`. */
export function decodeRank(sem: MoeSemantics, layer: number, rank: RankTensors): RankWeights {
  const p = `layers.${layer}.`;
  const H = sem.hidden;
  const ids = expertIds(rank, `${p}experts.ids`, sem.experts);
  const n = ids.length;
  const w13 = floats(rank, `${p}experts.w13`, [n, -1, H]);
  const twoRows = w13.shape[1]!;
  const rows = twoRows / 2;
  if (!Number.isInteger(rows) || sem.intermediate % rows !== 0 || rows === 0) {
    throw new CanonicalTensorError('w13 rows are not 2·I/T for some TP size T', { tensor: `${p}experts.w13`, expected: `2·${sem.intermediate}/T`, found: twoRows });
  }
  const experts: ExpertWeights = {
    ids,
    rows,
    w13: w13.values,
    w2: floats(rank, `${p}experts.w2`, [n, H, rows]).values,
  };
  const w13Bias = optionalFloats(rank, `${p}experts.w13_bias`, [n, 2 * rows]);
  const w2Bias = optionalFloats(rank, `${p}experts.w2_bias`, [n, H]);
  if (w13Bias) experts.w13Bias = w13Bias;
  if (w2Bias) experts.w2Bias = w2Bias;
  const weights: RankWeights = { tpRank: rank.req.tpRank, epRank: rank.req.epRank, experts };
  if (sem.sharedIntermediate > 0) {
    const sw13 = floats(rank, `${p}shared.w13`, [-1, H]);
    const sRows = sw13.shape[0]! / 2;
    if (!Number.isInteger(sRows) || sRows === 0 || sem.sharedIntermediate % sRows !== 0) {
      throw new CanonicalTensorError('shared w13 rows are not 2·Is/T for some TP size T', { tensor: `${p}shared.w13`, expected: `2·${sem.sharedIntermediate}/T`, found: sw13.shape[0] });
    }
    weights.shared = { rows: sRows, w13: sw13.values, w2: floats(rank, `${p}shared.w2`, [H, sRows]).values };
    if (sem.sharedGate) weights.shared.gate = floats(rank, `${p}shared.gate`, [1, H]).values;
  }
  return weights;
}

/** One gated MLP inside stacked float64 weights: rows `[gate; up]` of `w13`, `w2` `[H, rows]`. */
export interface GatedMlp {
  act: ExpertActivation;
  hidden: number;
  rows: number;
  w13: Float64Array;
  w13Offset: number;
  w2: Float64Array;
  w2Offset: number;
  bias13?: Float64Array;
  bias13Offset?: number;
  /** Added to the output before `scale` (gpt_oss: `down(…) + b`, then × the routing weight). */
  bias2?: Float64Array;
  bias2Offset?: number;
}

/** Where the float32 error bound is accumulated, when asked for. */
export interface BoundAccumulator {
  /** `[H]` error bound of the terms added so far. */
  error: Float64Array;
  /** `[H]` Σ|term| of the terms added so far (for the rounding of their final sum). */
  magnitude: Float64Array;
  /** Relative error of the input scale (llama4) and of the output scale (routing weight). */
  inputScaleRelError: number;
  scaleRelError: number;
}

export function activation(act: ExpertActivation, g: number, u: number): number {
  if (act.kind === 'silu_gated') return (g / (1 + Math.exp(-g))) * u;
  const gc = Math.min(g, act.limit);
  const uc = Math.min(Math.max(u, -act.limit), act.limit);
  return (uc + 1) * (gc / (1 + Math.exp(-act.alpha * gc)));
}

/**
 * out[o + j] += scale · (Σ_i w2[j, i] · act(gate_i·x', up_i·x') + bias2_j) with x' = x·inputScale,
 * for the row of x starting at `xo`. `scratch` holds at least 2·rows numbers.
 */
export function addGatedMlp(
  m: GatedMlp, x: Float64Array, xo: number, inputScale: number, scale: number, out: Float64Array, o: number,
  scratch: Float64Array, bound?: BoundAccumulator,
): void {
  const { hidden: H, rows: R, w13, w2 } = m;
  const a = scratch;
  const errA = bound ? scratch.subarray(R, 2 * R) : undefined;
  for (let i = 0; i < R; i++) {
    const gBase = m.w13Offset + i * H;
    const uBase = m.w13Offset + (R + i) * H;
    let g = 0;
    let u = 0;
    for (let c = 0; c < H; c++) {
      const xc = x[xo + c]!;
      g += w13[gBase + c]! * xc;
      u += w13[uBase + c]! * xc;
    }
    g *= inputScale;
    u *= inputScale;
    const bg = m.bias13 ? m.bias13[m.bias13Offset! + i]! : 0;
    const bu = m.bias13 ? m.bias13[m.bias13Offset! + R + i]! : 0;
    a[i] = activation(m.act, g + bg, u + bu);
    if (bound && errA) {
      let gAbs = 0;
      let uAbs = 0;
      for (let c = 0; c < H; c++) {
        const xc = Math.abs(x[xo + c]!);
        gAbs += Math.abs(w13[gBase + c]!) * xc;
        uAbs += Math.abs(w13[uBase + c]!) * xc;
      }
      const s = Math.abs(inputScale);
      const rel = gamma(H + 2) + bound.inputScaleRelError;
      errA[i] = activationError(m.act, g + bg, u + bu, rel * s * gAbs + U32 * Math.abs(bg), rel * s * uAbs + U32 * Math.abs(bu));
    }
  }
  for (let j = 0; j < H; j++) {
    const base = m.w2Offset + j * R;
    let y = 0;
    for (let i = 0; i < R; i++) y += w2[base + i]! * a[i]!;
    const b2 = m.bias2 ? m.bias2[m.bias2Offset! + j]! : 0;
    out[o + j] = out[o + j]! + scale * (y + b2);
    if (bound && errA) {
      let yAbs = 0;
      let yErr = 0;
      for (let i = 0; i < R; i++) {
        const w = Math.abs(w2[base + i]!);
        yAbs += w * Math.abs(a[i]!);
        yErr += w * errA[i]!;
      }
      const term = Math.abs(scale * (y + b2));
      bound.error[j] = bound.error[j]! + Math.abs(scale) * (gamma(R + 1) * (yAbs + Math.abs(b2)) + yErr) + (bound.scaleRelError + U32) * term;
      bound.magnitude[j] = bound.magnitude[j]! + Math.abs(scale) * (yAbs + Math.abs(b2));
    }
  }
}
