// The expert MLPs of the float64 reference: one rank's canonical tensors decoded once to
// float64 and checked against the semantics, and the gated MLP that both routed and shared
// experts run, optionally carrying the float32 rounding-error bound alongside
// (harness/compare/tolerance.ts explains the error model).
import type { ExpertActivation, MoeSemantics } from '../harness/layouts/semantics.js';
import type { DType } from '../harness/safetensors/dtypes.js';
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

function presentTensor(rank: RankTensors, name: string): Tensor {
  const t = rank.tensors.get(name);
  if (t === undefined) throw new CanonicalTensorError('canonical tensor missing', { tensor: name, expected: 'present', found: 'absent' });
  return t;
}

/** Tensor `name` of one rank after checking its shape; `-1` in `shape` accepts any size there. */
export function tensorOf(rank: RankTensors, name: string, shape: number[]): Tensor {
  const t = presentTensor(rank, name);
  const fits = t.shape.length === shape.length && shape.every((d, i) => d < 0 || d === t.shape[i]);
  if (!fits) throw new CanonicalTensorError('canonical tensor has the wrong shape', { tensor: name, expected: shape, found: t.shape });
  return t;
}

/**
 * A float tensor checked against `shape` and decoded with `decode` (float64 here, float32 in
 * the fast paths): a dtype that is not a float, or bytes that do not match the shape, are refused.
 */
export function decodeTensor<T extends ArrayLike<number>>(rank: RankTensors, name: string, shape: number[], decode: (dtype: DType, bytes: Uint8Array) => T): T {
  const t = tensorOf(rank, name, shape);
  let values: T;
  try {
    values = decode(t.dtype, t.bytes);
  } catch (e) {
    throw new CanonicalTensorError(`canonical tensor cannot be decoded as floats: ${(e as Error).message}`, { tensor: name, found: t.dtype });
  }
  const count = t.shape.reduce((a, b) => a * b, 1);
  if (values.length !== count) {
    throw new CanonicalTensorError('canonical tensor byte length does not match its shape', { tensor: name, expected: count, found: values.length });
  }
  return values;
}

/** A float tensor of one rank, checked against `shape` and decoded to float64. */
export function decodeFloatTensor(rank: RankTensors, name: string, shape: number[]): Float64Array {
  return decodeTensor(rank, name, shape, decodeFloats64);
}

/** Decodes a float tensor to float64 with the shape it has (`-1` entries of `shape` filled in). */
function floats(rank: RankTensors, name: string, shape: number[]): { values: Float64Array; shape: number[] } {
  const values = decodeFloatTensor(rank, name, shape);
  // Present and of a fitting shape: decodeFloatTensor checked both.
  return { values, shape: rank.tensors.get(name)!.shape };
}

function optionalFloats(rank: RankTensors, name: string, shape: number[]): Float64Array | undefined {
  return rank.tensors.has(name) ? decodeFloatTensor(rank, name, shape) : undefined;
}

/** A rank's local expert ids: a 1-D I32 tensor of distinct ids in `0..experts-1`. */
export function expertIds(rank: RankTensors, name: string, experts: number): Int32Array {
  const t = presentTensor(rank, name);
  if (t.dtype !== 'I32' || t.shape.length !== 1 || t.bytes.length !== 4 * t.shape[0]!) {
    throw new CanonicalTensorError('expert ids must be a 1-D I32 tensor', { tensor: name, expected: 'I32 [E_local]', found: `${t.dtype} [${t.shape.join(', ')}]` });
  }
  const view = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
  const ids = Int32Array.from({ length: t.shape[0]! }, (_, i) => view.getInt32(4 * i, true));
  // A set, not indexOf: the check stays linear however many ids a hostile tensor holds.
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
  /** `[tokens, H]` error bound of the terms added so far. */
  error: Float64Array;
  /** `[tokens, H]` Σ|term| of the terms added so far (for the rounding of their final sum). */
  magnitude: Float64Array;
}

/** The tokens one MLP runs on, with each token's input and output scale. */
export interface TokenBatch {
  tokens: number[];
  /** llama4: the routing weight multiplies the input; 1 elsewhere. */
  inputScale: number[];
  /** The routing weight (or the shared expert's gate) multiplying the output. */
  scale: number[];
  /** Relative float32 error of each scale, for the bound. */
  inputScaleRelError: number[];
  scaleRelError: number[];
}

/** gelu_pytorch_tanh: g/2 · (1 + tanh(√(2/π) · (g + 0.044715 g³))). */
export const geluTanh = (g: number): number => 0.5 * g * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (g + 0.044715 * g * g * g)));

/** act(gate, up) of one intermediate row; a non-gated activation reads `u` only. */
export function activation(act: ExpertActivation, g: number, u: number): number {
  if (act.kind === 'silu_gated') return (g / (1 + Math.exp(-g))) * u;
  if (act.kind === 'relu2') return u > 0 ? u * u : 0;
  if (act.kind === 'silu') return u / (1 + Math.exp(-u));
  if (act.kind === 'silu_clamped') {
    const gc = Math.min(g, act.limit);
    return (gc / (1 + Math.exp(-gc))) * Math.min(Math.max(u, -act.limit), act.limit);
  }
  if (act.kind === 'gelu_tanh_gated') return geluTanh(g) * u;
  if (act.kind === 'silu_clamped_after') return Math.min(g / (1 + Math.exp(-g)), act.limit) * Math.min(Math.max(u, -act.limit), act.limit);
  const gc = Math.min(g, act.limit);
  const uc = Math.min(Math.max(u, -act.limit), act.limit);
  return (uc + 1) * (gc / (1 + Math.exp(-act.alpha * gc)));
}

/** Tokens are processed this many at a time, so that every weight loaded serves four dot products. */
const BLOCK = 4;

/**
 * For each token t of the batch: out[t, j] += scale_t · (Σ_i w2[j, i] · act(gate_i·x'_t, up_i·x'_t) + bias2_j)
 * with x'_t = x_t · inputScale_t. The batch's inputs are gathered into a contiguous matrix
 * padded with zero rows to a multiple of BLOCK; loops run weight row by weight row with a
 * block of tokens inside, so each row is read from memory once per batch, not per token.
 */
export function addGatedMlp(m: GatedMlp, x: Float64Array, batch: TokenBatch, out: Float64Array, bound?: BoundAccumulator): void {
  const { hidden: H, rows: R, w13, w2 } = m;
  const n = batch.tokens.length;
  const padded = Math.ceil(n / BLOCK) * BLOCK;
  const xb = new Float64Array(padded * H);
  batch.tokens.forEach((t, b) => xb.set(x.subarray(t * H, (t + 1) * H), b * H));
  const a = new Float64Array(padded * R);
  const errA = new Float64Array(bound ? n * R : 0);
  for (let i = 0; i < R; i++) {
    const gBase = m.w13Offset + i * H;
    const uBase = m.w13Offset + (R + i) * H;
    const bg = m.bias13 ? m.bias13[m.bias13Offset! + i]! : 0;
    const bu = m.bias13 ? m.bias13[m.bias13Offset! + R + i]! : 0;
    for (let b = 0; b < padded; b += BLOCK) {
      const x0 = b * H, x1 = x0 + H, x2 = x1 + H, x3 = x2 + H;
      let g0 = 0, g1 = 0, g2 = 0, g3 = 0, u0 = 0, u1 = 0, u2 = 0, u3 = 0;
      for (let c = 0; c < H; c++) {
        const wg = w13[gBase + c]!;
        const wu = w13[uBase + c]!;
        const v0 = xb[x0 + c]!, v1 = xb[x1 + c]!, v2 = xb[x2 + c]!, v3 = xb[x3 + c]!;
        g0 += wg * v0; g1 += wg * v1; g2 += wg * v2; g3 += wg * v3;
        u0 += wu * v0; u1 += wu * v1; u2 += wu * v2; u3 += wu * v3;
      }
      const gs = [g0, g1, g2, g3];
      const us = [u0, u1, u2, u3];
      for (let q = 0; q < BLOCK && b + q < n; q++) {
        const s = batch.inputScale[b + q]!;
        a[(b + q) * R + i] = activation(m.act, gs[q]! * s + bg, us[q]! * s + bu);
      }
    }
    for (let b = 0; bound && b < n; b++) {
      let g = 0, u = 0, gAbs = 0, uAbs = 0;
      for (let c = 0; c < H; c++) {
        const xc = xb[b * H + c]!;
        g += w13[gBase + c]! * xc;
        u += w13[uBase + c]! * xc;
        gAbs += Math.abs(w13[gBase + c]! * xc);
        uAbs += Math.abs(w13[uBase + c]! * xc);
      }
      const s = batch.inputScale[b]!;
      const rel = Math.abs(s) * (gamma(H + 2) + batch.inputScaleRelError[b]!);
      errA[b * R + i] = activationError(m.act, g * s + bg, u * s + bu, rel * gAbs + U32 * Math.abs(bg), rel * uAbs + U32 * Math.abs(bu));
    }
  }
  for (let j = 0; j < H; j++) {
    const base = m.w2Offset + j * R;
    const b2 = m.bias2 ? m.bias2[m.bias2Offset! + j]! : 0;
    for (let b = 0; b < padded; b += BLOCK) {
      const a0 = b * R, a1 = a0 + R, a2 = a1 + R, a3 = a2 + R;
      let y0 = 0, y1 = 0, y2 = 0, y3 = 0;
      for (let i = 0; i < R; i++) {
        const w = w2[base + i]!;
        y0 += w * a[a0 + i]!; y1 += w * a[a1 + i]!; y2 += w * a[a2 + i]!; y3 += w * a[a3 + i]!;
      }
      const ys = [y0, y1, y2, y3];
      for (let q = 0; q < BLOCK && b + q < n; q++) {
        const o = batch.tokens[b + q]! * H + j;
        out[o] = out[o]! + batch.scale[b + q]! * (ys[q]! + b2);
      }
    }
    for (let b = 0; bound && b < n; b++) {
      let y = 0, yAbs = 0, yErr = 0;
      for (let i = 0; i < R; i++) {
        const w = w2[base + i]!;
        y += w * a[b * R + i]!;
        yAbs += Math.abs(w * a[b * R + i]!);
        yErr += Math.abs(w) * errA[b * R + i]!;
      }
      const scale = batch.scale[b]!;
      const o = batch.tokens[b]! * H + j;
      const s = Math.abs(scale);
      bound.error[o] = bound.error[o]! + s * (gamma(R + 1) * (yAbs + Math.abs(b2)) + yErr) + (batch.scaleRelError[b]! + U32) * Math.abs(scale * (y + b2));
      bound.magnitude[o] = bound.magnitude[o]! + s * (yAbs + Math.abs(b2));
    }
  }
}
