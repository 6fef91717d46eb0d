// Float32 access to one rank's canonical tensors for the fast paths (CPU and WGSL): shape
// and id checks with the reference's typed errors, small tensors decoded whole, the big
// stacked expert matrices described (not copied) until a path moves them where it computes,
// and the grouping of routed tokens by expert that both paths execute.
import type { MoeSemantics } from '../../harness/layouts/semantics.js';
import type { Tensor } from '../../harness/tensor.js';
import type { RankTensors } from '../backend.js';
import { decodeFloats, encodeFloats, LITTLE_ENDIAN_HOST } from '../../harness/safetensors/codecs.js';
import { dtypeBits, isDType } from '../../harness/safetensors/dtypes.js';
import { CanonicalTensorError, decodeTensor, expertIds, tensorOf } from '../experts.js';
import { route, sigmoid, type HashChoice, type RoutingResult } from '../routing.js';
import { scaleByExpert, sharedRows } from '../block-inputs.js';

/** `count` stacked `rows × cols` matrices of a canonical tensor. */
export interface StackedMatrices {
  tensor: Tensor;
  name: string;
  count: number;
  rows: number;
  cols: number;
}

/** Rows [lo, hi) of a rank's shared MLP (`w13` `[2·Rs, H]`, `w2` `[H, Rs]`) as float32 matrices of their own (block-inputs' sharedRows). */
export function sharedPieceMatrices(w13: StackedMatrices, w2: StackedMatrices, H: number, Rs: number, rows: [number, number]): { w13: StackedMatrices; w2: StackedMatrices } {
  const f32 = (w: StackedMatrices) => new Float32Array(matrixBytesF32(w, 0).slice().buffer);
  const part = sharedRows(f32(w13), f32(w2), H, Rs, rows);
  const n = rows[1] - rows[0];
  const matrices = (values: Float32Array, name: string, r: number, c: number): StackedMatrices => ({
    tensor: { dtype: 'F32', shape: [r, c], bytes: new Uint8Array(values.buffer) },
    name: `${name} rows ${rows[0]}..${rows[1]}`,
    count: 1,
    rows: r,
    cols: c,
  });
  return { w13: matrices(part.w13, w13.name, 2 * n, H), w2: matrices(part.w2, w2.name, H, n) };
}

/** Matrix `index` of `w` as little-endian f32 bytes: F32 data as stored, other dtypes decoded. */
export function matrixBytesF32(w: StackedMatrices, index: number): Uint8Array {
  const n = w.rows * w.cols;
  const bytesPer = w.tensor.bytes.length / (w.count * n);
  if (!Number.isInteger(bytesPer) || bytesPer < 1) {
    throw new CanonicalTensorError('canonical tensor byte length does not fit whole elements', { tensor: w.name, expected: `${w.count * n} elements`, found: w.tensor.bytes.length });
  }
  const bytes = w.tensor.bytes.subarray(index * n * bytesPer, (index + 1) * n * bytesPer);
  if (w.tensor.dtype === 'F32' && LITTLE_ENDIAN_HOST) return bytes;
  try {
    return encodeFloats('F32', decodeFloats(w.tensor.dtype, bytes));
  } catch (e) {
    throw new CanonicalTensorError(`canonical tensor cannot be decoded as floats: ${(e as Error).message}`, { tensor: w.name, found: w.tensor.dtype });
  }
}

/** The tokens one local expert serves, with the scale of its input and of its output. */
export interface ExpertBatch {
  slot: number;
  tokens: Int32Array;
  inputScale: Float32Array;
  outputScale: Float32Array;
}

/**
 * The routed (token, choice) pairs of one rank grouped by local slot in one counting pass:
 * slot s owns rows `offsets[s] .. offsets[s+1]` of `token`/`inputScale`/`outputScale`, in
 * increasing pair order, and `position[t·k + j]` is the row of pair (t, j), or -1 where the
 * chosen expert is not one of `ids`.
 */
export interface ExpertGrouping {
  offsets: Int32Array;
  token: Int32Array;
  inputScale: Float32Array;
  outputScale: Float32Array;
  position: Int32Array;
}

export function groupByExpert(routing: RoutingResult, ids: Int32Array, tokens: number, k: number): ExpertGrouping {
  const slotOf = new Map<number, number>(Array.from(ids, (id, slot) => [id, slot]));
  const n = ids.length;
  const pairs = tokens * k;
  const slotOfPair = new Int32Array(pairs);
  const offsets = new Int32Array(n + 1);
  for (let i = 0; i < pairs; i++) {
    const slot = slotOf.get(routing.selected[i]!) ?? -1;
    slotOfPair[i] = slot;
    if (slot >= 0) offsets[slot + 1]!++;
  }
  for (let s = 0; s < n; s++) offsets[s + 1]! += offsets[s]!;
  const rows = offsets[n]!;
  const fill = offsets.slice(0, n);
  const token = new Int32Array(rows);
  const inputScale = new Float32Array(rows);
  const outputScale = new Float32Array(rows);
  const position = new Int32Array(pairs).fill(-1);
  for (let i = 0; i < pairs; i++) {
    const slot = slotOfPair[i]!;
    if (slot < 0) continue;
    const row = fill[slot]!++;
    const w = routing.weights[i]!;
    token[row] = Math.floor(i / k);
    inputScale[row] = routing.inputScale ? w : 1;
    outputScale[row] = routing.inputScale ? 1 : w;
    position[i] = row;
  }
  return { offsets, token, inputScale, outputScale, position };
}

/** Groups the routed (token, choice) pairs by the local slots of `ids`; slots no token chose are left out. */
export function expertBatches(routing: RoutingResult, ids: Int32Array, tokens: number, k: number): ExpertBatch[] {
  const g = groupByExpert(routing, ids, tokens, k);
  return Array.from(ids, (_, slot) => slot).flatMap((slot) => {
    const from = g.offsets[slot]!;
    const to = g.offsets[slot + 1]!;
    if (to === from) return [];
    return [{ slot, tokens: g.token.subarray(from, to), inputScale: g.inputScale.subarray(from, to), outputScale: g.outputScale.subarray(from, to) }];
  });
}

/** The shared expert's batch: every token, scaled by σ(x·gate) where the model has that gate, and by `scale`. */
export function sharedBatch(x: Float32Array, tokens: number, hidden: number, gate: Float32Array | undefined, scale = 1): ExpertBatch {
  return {
    slot: 0,
    tokens: Int32Array.from({ length: tokens }, (_, t) => t),
    inputScale: new Float32Array(tokens).fill(1),
    outputScale: Float32Array.from({ length: tokens }, (_, t) => {
      if (!gate) return scale;
      let z = 0;
      for (let c = 0; c < hidden; c++) z += x[t * hidden + c]! * gate[c]!;
      return sigmoid(z) * scale;
    }),
  };
}

/** A small float tensor (router, biases, gate), checked and decoded to float32. */
export function wholeFloats(rank: RankTensors, name: string, shape: number[]): Float32Array {
  return decodeTensor(rank, name, shape, decodeFloats);
}

/**
 * Routing from the router's raw logits `x·routerᵀ` ([tokens, E], float32): `router.bias` is
 * added here (in place) and `router.correction_bias` passed on, both read from `rank` where
 * the model has them, so every fast path routes exactly as the shared routing code says.
 */
export function routeLogits(sem: MoeSemantics, layer: number, rank: RankTensors, logits: Float32Array, tokens: number, hash?: HashChoice): RoutingResult {
  const p = `layers.${layer}.`;
  const E = sem.experts;
  if (rank.tensors.has(`${p}router.bias`)) {
    const rows = sem.routerRows ?? E;
    const bias = wholeFloats(rank, `${p}router.bias`, [rows]);
    for (let i = 0; i < logits.length; i++) logits[i]! += bias[i % rows]!;
  }
  const correction = rank.tensors.has(`${p}router.correction_bias`) ? wholeFloats(rank, `${p}router.correction_bias`, [E - (sem.sharedRouted ?? 0)]) : undefined;
  return scaleByExpert(sem, layer, rank, route(sem, logits, tokens, correction, hash));
}

/** A rank's expert biases where the model has them ([n, 2R] and [n, H]) for its `n` local experts of `R` rows. */
export interface ExpertBiases {
  w13?: Float32Array;
  /** Only on TP rank 0: the down bias belongs to the whole output, so it is added once. */
  w2?: Float32Array;
}

export function expertBiases(layer: number, rank: RankTensors, n: number, R: number, H: number): ExpertBiases {
  const p = `layers.${layer}.`;
  const b: ExpertBiases = {};
  if (rank.tensors.has(`${p}experts.w13_bias`)) b.w13 = wholeFloats(rank, `${p}experts.w13_bias`, [n, 2 * R]);
  if (rank.tensors.has(`${p}experts.w2_bias`) && rank.req.tpRank === 0) b.w2 = wholeFloats(rank, `${p}experts.w2_bias`, [n, H]);
  return b;
}

/** One rank's expert (and shared-expert) weight matrices, shapes checked, not yet copied. */
export interface RankWeights {
  ids: Int32Array;
  w13: StackedMatrices;
  w2: StackedMatrices;
  shared?: { w13: StackedMatrices; w2: StackedMatrices };
}

export function rankWeights(sem: MoeSemantics, layer: number, rank: RankTensors): RankWeights {
  const p = `layers.${layer}.`;
  const H = sem.hidden;
  const R = sem.intermediate / rank.req.tpSize;
  const ids = expertIds(rank, `${p}experts.ids`, sem.experts);
  const n = ids.length;
  const stacked = (name: string, count: number, rows: number, cols: number): StackedMatrices => {
    const shape = count === 1 && name.includes('shared') ? [rows, cols] : [count, rows, cols];
    const tensor = tensorOf(rank, `${p}${name}`, shape);
    // Checked before anything is sized from the shape: a shape its bytes do not back is refused.
    const bits = isDType(tensor.dtype) ? dtypeBits(tensor.dtype) : NaN;
    if (tensor.bytes.length * 8 !== count * rows * cols * bits) {
      throw new CanonicalTensorError('canonical tensor byte length does not match its shape and dtype', { tensor: `${p}${name}`, expected: (count * rows * cols * bits) / 8, found: tensor.bytes.length });
    }
    return { tensor, name: `${p}${name}`, count, rows, cols };
  };
  const w: RankWeights = { ids, w13: stacked('experts.w13', n, 2 * R, H), w2: stacked('experts.w2', n, H, R) };
  if (sem.sharedIntermediate > 0) {
    const Rs = sem.sharedIntermediate / rank.req.tpSize;
    w.shared = { w13: stacked('shared.w13', 1, 2 * Rs, H), w2: stacked('shared.w2', 1, H, Rs) };
  }
  return w;
}
