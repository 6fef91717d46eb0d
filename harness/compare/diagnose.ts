// Diagnosis of a wrong loader: for every tensor whose bytes differ from the reference,
// where did the loader's bytes come from? Every loading bug of spec/layouts.md §3 leaves a
// fingerprint: gate and up halves swapped, the fused 2I axis cut in one piece, another TP
// rank's slice, another expert's weights, a transposed matrix, interleaved rows read as
// concatenated, a rescaled or zeroed tensor, values rounded through a narrower dtype. Each
// hypothesis is tested against the reference (the rank's expected tensors, and the whole
// TP 1 / EP 1 tensors where given), slot by slot, and named only when it holds for every
// byte of the part it covers; nothing that fits is `unknown`, with where the bytes differ.
//
// Cost: linear in the tensor's size. Experts are found by a fingerprint of one row (a hash
// map over the whole tensor's experts), row-map hypotheses compare whole rows natively and
// stop at the first differing row, value hypotheses decode one row at a time.
import { misreadingsOf } from './misreadings.js';
import { schemeOf } from '../quant/scheme.js';
import type { QuantGeometry } from '../layouts/ops.js';
import { sameTensor, type Canonical, type ParallelRequest, type Tensor } from '../tensor.js';
import type { DType } from '../safetensors/dtypes.js';
import { dtypeBits } from '../safetensors/dtypes.js';
import { decodeFloats64, encodeFloats } from '../safetensors/codecs.js';
import { expertsOf } from '../canonical/cut.js';
import { idsFor, int32Values, ranges } from './locate.js';
import { dequantizedAfterMaxRequant, requantizedToScale, scalePairFinding } from './scale-pairs.js';
import { int4CompanionFinding } from './int4-companions.js';
import { confusedScaleRow } from '../canonical/marlin.js';

/**
 * The diagnosis kinds, part of the JSON results format (spec/loader-protocol.md §6): tools
 * count them by these exact names. New kinds may be added; none is ever renamed.
 */
export const DIAGNOSIS_KINDS = [
  'gate-up-swapped',
  'fused-axis-cut-in-one-piece',
  'tp-slice-of-another-rank',
  'not-cut',
  'expert-permutation',
  'expert-placement',
  'transposed',
  'interleave-concat-confusion',
  'scaled',
  'zeros-or-constant',
  'nan-or-inf',
  'dtype-conversion',
  'scale-block-misaligned',
  'missing-tensor',
  'unexpected-tensor',
  'shape-mismatch',
  'accepted-broken-checkpoint',
  'refused-valid-request',
  /** An invalid request (I % T != 0, P > E, rank out of range) answered with tensors. */
  'accepted-invalid-request',
  /** The loader crashed, timed out or wrote an unreadable output on a valid request. */
  'loader-crashed',
  /** Forward-level (a backend under test, with bit-exact weights): the selection-only correction bias ignored. */
  'forward-ignores-correction-bias',
  /** Forward-level: the top-k weights not renormalised where the model renormalises. */
  'forward-skips-renormalisation',
  /** Forward-level: the routed scaling factor applied twice. */
  'forward-routed-scaling-twice',
  /** Forward-level: softmax scores where the model's router uses sigmoid. */
  'forward-softmax-for-sigmoid',
  /** Packed 4-bit codes with their nibbles in another order: E2M1 pairs high nibble first, INT4 words in AutoAWQ's order or the reverse. */
  'nibble-order',
  /** Engine form `marlin`: INT4 scales permuted with Marlin's other scale permutation (single-group for grouped, or the reverse): chosen from the wrong K. */
  'marlin-scale-permutation',
  /** Quantized routed-expert weights served in the dequantized form (F32) with values the format's dequantization does not give (zero points, group indices or scales misapplied). */
  'dequantized-differently',
  /** Quantized routed-expert weights (or their scales) re-quantized: the checkpoint's stored elements not kept. */
  'requantized',
  /** INT4 weights dequantized with another group size than config.json's (its group_size ignored, 128 assumed): ./misreadings.ts. */
  'group-size-mismatch',
  /** NVFP4 weights dequantized with weight_scale_2 applied twice: ./misreadings.ts. */
  'global-scale-applied-twice',
  /** GPTQ zero points read in the other checkpoint_format's convention (v1 stores z - 1, v2 z): every weight one scale step off (./misreadings.ts). */
  'zero-point-off-by-one',
  /** INT4 activation-order group indices (g_idx) not applied as stored: ignored (consecutive groups), or cut or rebased wrongly (./misreadings.ts, ./int4-companions.ts). */
  'group-index-misapplied',
  /** The tensor of a `.safetensors` file beside the index that the index does not name (a loader that globs *.safetensors): ./unindexed-file.ts. */
  'unindexed-file-read',
  /** Gate's and up's per-projection scales (per-tensor FP8 weight_scale, NVFP4 weight_scale_2, input_scale) merged into one: gate's, up's or their maximum in both entries (./scale-pairs.ts). */
  'gate-up-scales-merged',
  'unknown',
] as const;

export { ranges } from './locate.js';

export type DiagnosisKind = (typeof DIAGNOSIS_KINDS)[number];

/** One finding: which tensor (or '' for the whole case), what relation, and the evidence. */
export interface Diagnosis {
  tensor: string;
  kind: DiagnosisKind;
  /** The part it covers and the evidence, for a person. */
  detail: string;
  /** expert-permutation and expert-placement: the global expert whose data each slot holds (-1: none found). */
  map?: number[];
}

export interface DiagnoseContext {
  /** The rank the tensors were loaded for. */
  req?: ParallelRequest;
  /** The reference at TP 1, EP 1 (in the same form as `expected`): where another rank's or expert's data is searched. */
  whole?: Canonical;
  /** The quantized format of the checkpoint (QuantGeometry.method), where it is quantized. */
  quantized?: string;
  /** The checkpoint's scheme and the reference rank in the quantized form, where the loader served it dequantized: known misreadings are redone on it (./misreadings.ts). */
  stored?: { scheme: QuantGeometry; tensors: Canonical };
}

// ---------------------------------------------------------------------------------------
// Tensor roles: how a canonical tensor is laid out (spec §1).

type Cut = 'gate-up' | 'columns' | 'none';

interface Role {
  /** Leading axis is the expert slot. */
  stacked: boolean;
  cut: Cut;
  scale: boolean;
}

function roleOf(name: string): Role {
  const stacked = /\.experts\./.test(name);
  const scale = name.endsWith('_scale');
  const base = name.replace(/_scale$/, '');
  if (/\.(experts\.w13|experts\.w13_bias|shared\.w13)$/.test(base)) return { stacked, cut: 'gate-up', scale };
  if (/\.(experts\.w2|shared\.w2)$/.test(base)) return { stacked, cut: 'columns', scale };
  return { stacked, cut: 'none', scale };
}

/** A tensor seen as slots × rows × row bytes (1-D tensors: one row of one element each). */
interface View {
  t: Tensor;
  slots: number;
  rows: number;
  rowBytes: number;
  elem: number;
}

const elemBytes = (d: DType) => Math.max(1, dtypeBits(d) / 8);

function viewOf(t: Tensor, role: Role): View {
  const elem = elemBytes(t.dtype);
  const shape = role.stacked ? t.shape : [1, ...t.shape];
  const slots = shape[0] ?? 1;
  const rows = shape[1] ?? 1;
  const rest = shape.slice(2).reduce((a, b) => a * b, 1);
  return { t, slots, rows, rowBytes: (rest * dtypeBits(t.dtype)) / 8, elem };
}

const row = (v: View, slot: number, r: number, from = 0, to = v.rowBytes) => {
  const at = (slot * v.rows + r) * v.rowBytes;
  return v.t.bytes.subarray(at + from, at + to);
};

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0;
}

const slotBytes = (v: View, s: number) => v.t.bytes.subarray(s * v.rows * v.rowBytes, (s + 1) * v.rows * v.rowBytes);

// ---------------------------------------------------------------------------------------
// Row maps: rank row i of a slot comes from row map(i) of the whole tensor's expert, in
// byte columns [col, col + rowBytes).

interface RowSource {
  kind: DiagnosisKind;
  what: string;
  source: View;
  map: (i: number) => number;
  col: number;
}

/** Whether found slot `s` equals the source's expert `e` under `src`, row by row (stops at the first difference). */
function matches(found: View, s: number, src: RowSource, e: number): boolean {
  for (let i = 0; i < found.rows; i++) {
    const j = src.map(i);
    if (j < 0 || j >= src.source.rows) return false;
    if (!sameBytes(row(found, s, i), row(src.source, e, j, src.col, src.col + found.rowBytes))) return false;
  }
  return true;
}

/** The TP arithmetic of a tensor for rank r of T, or undefined where the found/whole sizes do not fit it. */
interface TpGeometry {
  T: number;
  r: number;
  /** gate-up: rows per half of the rank and of the whole; columns: the rank's row bytes. */
  half: number;
  wholeHalf: number;
}

function tpGeometry(role: Role, found: View, whole: View, req: ParallelRequest | undefined): TpGeometry | undefined {
  const T = req?.tpSize ?? 1;
  const r = req?.tpRank ?? 0;
  if (role.cut === 'gate-up' && found.rowBytes === whole.rowBytes && found.rows % 2 === 0 && whole.rows === found.rows * T) {
    return { T, r, half: found.rows / 2, wholeHalf: whole.rows / 2 };
  }
  if (role.cut === 'columns' && found.rows === whole.rows && whole.rowBytes === found.rowBytes * T) return { T, r, half: found.rowBytes, wholeHalf: whole.rowBytes };
  if (role.cut === 'none' && found.rows === whole.rows && found.rowBytes === whole.rowBytes) return { T: 1, r: 0, half: 0, wholeHalf: 0 };
  return undefined;
}

/** The expected source of rank row i (gate rows then up rows of the rank), as a whole row. */
const gateUpRow = (g: TpGeometry, rank: number) => (i: number) => (i < g.half ? rank * g.half + i : g.wholeHalf + rank * g.half + (i - g.half));

function expectedSource(role: Role, g: TpGeometry, whole: View): RowSource {
  if (role.cut === 'gate-up') return { kind: 'unknown', what: 'as expected', source: whole, map: gateUpRow(g, g.r), col: 0 };
  if (role.cut === 'columns') return { kind: 'unknown', what: 'as expected', source: whole, map: (i) => i, col: g.r * g.half };
  return { kind: 'unknown', what: 'as expected', source: whole, map: (i) => i, col: 0 };
}

/** Every wrong-layout hypothesis for a tensor of this role, most specific first. */
function layoutHypotheses(role: Role, g: TpGeometry, whole: View): RowSource[] {
  const out: RowSource[] = [];
  const { T, r, half, wholeHalf } = g;
  if (role.cut === 'gate-up') {
    const expected = gateUpRow(g, r);
    out.push({ kind: 'gate-up-swapped', what: 'gate and up halves swapped (up rows first)', source: whole, col: 0, map: (i) => (i < half ? wholeHalf + r * half + i : r * half + (i - half)) });
    if (T > 1) {
      out.push({ kind: 'fused-axis-cut-in-one-piece', what: `TP rank ${r}/${T} holds rows ${r * 2 * half}..${(r + 1) * 2 * half} of the fused 2I axis (cut in one piece, not gate and up separately)`, source: whole, col: 0, map: (i) => r * 2 * half + i });
      for (let o = 0; o < T; o++) if (o !== r) out.push({ kind: 'tp-slice-of-another-rank', what: `TP rank ${r}/${T} holds the slice of TP rank ${o}`, source: whole, col: 0, map: gateUpRow(g, o) });
    }
    // Interleaved storage (g0 u0 g1 u1 ...) read as concatenated halves, and the reverse.
    const W = wholeHalf;
    out.push({ kind: 'interleave-concat-confusion', what: 'interleaved gate/up rows (g0 u0 g1 u1 ...) read as concatenated halves', source: whole, col: 0, map: (i) => { const j = expected(i); return j % 2 === 0 ? j / 2 : W + (j - 1) / 2; } });
    out.push({ kind: 'interleave-concat-confusion', what: 'concatenated gate/up halves read as interleaved rows', source: whole, col: 0, map: (i) => { const j = expected(i); return j < W ? 2 * j : 2 * (j - W) + 1; } });
  } else if (role.cut === 'columns' && T > 1) {
    for (let o = 0; o < T; o++) if (o !== r) out.push({ kind: 'tp-slice-of-another-rank', what: `TP rank ${r}/${T} holds the columns of TP rank ${o}`, source: whole, col: o * half, map: (i) => i });
  }
  return out;
}

/** Each `[n, n]` matrix of a slotted view transposed (only where square). */
function transposedView(v: View): View | undefined {
  const n = v.rows;
  if (v.rowBytes !== n * v.elem || dtypeBits(v.t.dtype) < 8) return undefined;
  return { ...v, t: { ...v.t, bytes: transposeMatrices(v.t.bytes, v.slots, n, n, v.elem) } };
}

/** `slots` [rows, cols] matrices of `elem`-byte elements, each transposed to [cols, rows]. */
function transposeMatrices(bytes: Uint8Array, slots: number, rows: number, cols: number, elem: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let s = 0; s < slots; s++) {
    const base = s * rows * cols * elem;
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out.set(bytes.subarray(base + (i * cols + j) * elem, base + (i * cols + j + 1) * elem), base + (j * rows + i) * elem);
  }
  return out;
}

/**
 * Whether `f` is `e` with every matrix (its last two axes) transposed: a loader that wrote a
 * non-square weight without the transpose the canonical form takes (down_proj read as
 * [Ir, H]). Byte-sized dtypes only (a packed 4-bit tensor's elements are not bytes).
 */
function matricesTransposed(e: Tensor, f: Tensor): boolean {
  const n = e.shape.length;
  if (n < 2 || e.dtype !== f.dtype || dtypeBits(e.dtype) < 8 || f.bytes.length !== e.bytes.length) return false;
  const [rows, cols] = [e.shape[n - 2]!, e.shape[n - 1]!];
  if (!sameShape(f.shape, [...e.shape.slice(0, n - 2), cols, rows]) || rows === cols) return false;
  const slots = e.shape.slice(0, n - 2).reduce((a, b) => a * b, 1);
  return sameBytes(transposeMatrices(e.bytes, slots, rows, cols, dtypeBits(e.dtype) / 8), f.bytes);
}

// ---------------------------------------------------------------------------------------
// Value hypotheses (float dtypes): found versus the expected part, decoded a row at a time.

const FLOATS = new Set<DType>(['F64', 'F32', 'F16', 'BF16']);
/** Relative spacing of a dtype's values: a rescaled value is rounded to within this. */
const EPS: Partial<Record<DType, number>> = { F64: 2 ** -52, F32: 2 ** -23, F16: 2 ** -10, BF16: 2 ** -7 };

interface Part {
  /** Rows [a, b) of the slot. */
  a: number;
  b: number;
  name: string;
}

/** Rows decoded per step: value hypotheses hold this many rows' values at a time, whatever the tensor's size. */
const CHUNK_ELEMENTS = 1 << 20;

/** Part p of slot s of both views, decoded a few rows at a time: fn(found, expected) per chunk; false from fn stops. */
function eachChunk(found: View, exp: View, s: number, p: Part, fn: (f: Float64Array, x: Float64Array) => boolean): void {
  const rowElems = Math.max(1, Math.round(found.rowBytes / found.elem));
  const step = Math.max(1, Math.floor(CHUNK_ELEMENTS / rowElems));
  for (let a = p.a; a < p.b; a += step) {
    const b = Math.min(p.b, a + step);
    const f = decodeFloats64(found.t.dtype, found.t.bytes.subarray((s * found.rows + a) * found.rowBytes, (s * found.rows + b) * found.rowBytes));
    const x = decodeFloats64(exp.t.dtype, exp.t.bytes.subarray((s * exp.rows + a) * exp.rowBytes, (s * exp.rows + b) * exp.rowBytes));
    if (!fn(f, x)) return;
  }
}

/** The value relation found = f(expected) over part p of slot s, or undefined. */
function valueRelation(found: View, exp: View, s: number, p: Part): { kind: DiagnosisKind; what: string } | undefined {
  const floats = FLOATS.has(found.t.dtype);
  if (floats) {
    const { nonFinite, n } = countNonFinite(found, exp, s, p);
    if (nonFinite > 0) return { kind: 'nan-or-inf', what: `${nonFinite} of ${n} elements NaN or infinite where the reference is finite` };
  }
  const fb = found.t.bytes.subarray((s * found.rows + p.a) * found.rowBytes, (s * found.rows + p.b) * found.rowBytes);
  const e = exp.elem;
  if (fb.length >= e && fb.length > 0) {
    let constant = true;
    for (let i = e; i < fb.length && constant; i++) if (fb[i] !== fb[i % e]) constant = false;
    if (constant) {
      const ev = floats ? decodeFloats64(found.t.dtype, fb.subarray(0, e))[0]! : undefined;
      const eb = exp.t.bytes.subarray((s * exp.rows + p.a) * exp.rowBytes, (s * exp.rows + p.b) * exp.rowBytes);
      let expConstant = true;
      for (let i = e; i < eb.length && expConstant; i++) if (eb[i] !== eb[i % e]) expConstant = false;
      // All zeros where the reference is not zero counts even where the reference is one value too (a slot of one scale).
      const zeroForNonzero = ev === 0 && decodeFloats64(exp.t.dtype, eb).some((v) => v !== 0);
      if (!expConstant || zeroForNonzero) return { kind: 'zeros-or-constant', what: ev === 0 ? 'all zeros' : `every element the constant ${ev ?? `0x${bitsHex(found.t.dtype, fb.subarray(0, e))}`}` };
    }
  }
  if (!floats) return nibbleOrder(found, exp, s, p);
  // found = 1 / expected, element by element (rounded to the dtype): a global scale stored or read as its inverse
  // (NVFP4's weight_scale_2 against ModelOpt's amax / (6 · 448) convention). Before `scaled`, which any one-element slot fits.
  let reciprocal = true;
  eachChunk(found, exp, s, p, (f, x) => {
    const r = decodeFloats64(found.t.dtype, encodeFloats(found.t.dtype, Array.from(x, (v) => 1 / v)));
    for (let i = 0; i < x.length && reciprocal; i++) reciprocal = x[i] !== 0 && Number.isFinite(x[i]!) && r[i] === f[i];
    return reciprocal;
  });
  if (reciprocal) return { kind: 'scaled', what: 'found = 1 / expected: the reciprocal of every value (a scale stored or applied as its inverse)' };
  // Each relation is tried on a sample first: most fail there, and only one that holds on it is checked everywhere.
  const sample = sampleOf(found, exp, s, p);
  if (!scaledFactor(sample.f, sample.x, found.t.dtype) && !(['BF16', 'F16'] as const).some((d) => roundsThrough(d, found.t.dtype, sample.f, sample.x))) return undefined;
  // found = c × expected: c by least squares over every element (each found value is rounded), then checked everywhere.
  if (scaledFactor(sample.f, sample.x, found.t.dtype) !== undefined) {
    let fx = 0;
    let xx = 0;
    eachChunk(found, exp, s, p, (f, x) => {
      for (let i = 0; i < x.length; i++) {
        fx += f[i]! * x[i]!;
        xx += x[i]! * x[i]!;
      }
      return true;
    });
    const c = fx / xx;
    let ok = Number.isFinite(c) && c !== 1;
    eachChunk(found, exp, s, p, (f, x) => (ok &&= isScaled(f, x, c, found.t.dtype)));
    if (ok) return { kind: 'scaled', what: `found = c × expected with c = ${describeFactor(c)}` };
  }
  for (const d of ['BF16', 'F16'] as const) {
    if (!roundsThrough(d, found.t.dtype, sample.f, sample.x)) continue;
    let ok = true;
    eachChunk(found, exp, s, p, (f, x) => (ok = roundsThrough(d, found.t.dtype, f, x)));
    if (ok) return { kind: 'dtype-conversion', what: `values rounded through ${d} (stored as ${found.t.dtype})` };
  }
  return undefined;
}

/** AutoAWQ's nibble order within an I32 word, and its inverse. */
const AWQ_ORDERS = [
  [0, 2, 4, 6, 1, 3, 5, 7],
  [0, 4, 1, 5, 2, 6, 3, 7],
] as const;

/** Packed 4-bit codes of part p in another nibble order: U8 pairs swapped, or I32 words permuted by AutoAWQ's order (either way). */
function nibbleOrder(found: View, exp: View, s: number, p: Part): { kind: DiagnosisKind; what: string } | undefined {
  const fb = found.t.bytes.subarray((s * found.rows + p.a) * found.rowBytes, (s * found.rows + p.b) * found.rowBytes);
  const eb = exp.t.bytes.subarray((s * exp.rows + p.a) * exp.rowBytes, (s * exp.rows + p.b) * exp.rowBytes);
  if (fb.length === 0 || fb.length !== eb.length || sameBytes(fb, eb)) return undefined;
  if (found.t.dtype === 'U8' || found.t.dtype === 'F4') {
    for (let i = 0; i < fb.length; i++) if (fb[i] !== (((eb[i]! & 15) << 4) | (eb[i]! >> 4))) return undefined;
    return { kind: 'nibble-order', what: 'every byte holds the two 4-bit codes swapped (the high nibble read as element 2k)' };
  }
  if (found.t.dtype !== 'I32' || fb.length % 4 !== 0) return undefined;
  const words = (b: Uint8Array) => new Uint32Array(b.slice().buffer);
  const [fw, ew] = [words(fb), words(eb)];
  for (const order of AWQ_ORDERS) {
    let ok = true;
    for (let i = 0; i < ew.length && ok; i++) {
      let v = 0;
      for (let k = 0; k < 8; k++) v |= ((ew[i]! >>> (4 * order[k]!)) & 15) << (4 * k);
      ok = v >>> 0 === fw[i];
    }
    if (ok) return { kind: 'nibble-order', what: `every I32 word's eight 4-bit codes in the order ${order.join(' ')} (AutoAWQ's packing confused with in-order packing)` };
  }
  return undefined;
}

/** Scale rows in the order one Marlin scale permutation leaves where the other was due (the choice made from a wrong K), or undefined. */
function marlinScaleOrder(found: View, exp: View, s: number): string | undefined {
  if (found.rows % 64 !== 0 || found.rowBytes !== exp.rowBytes) return undefined;
  for (const grouped of [false, true]) {
    const src = confusedScaleRow(grouped);
    let ok = true;
    for (let i = 0; i < found.rows && ok; i++) ok = sameBytes(row(found, s, i), row(exp, s, src(i)));
    if (ok) return `scales in Marlin's ${grouped ? 'grouped (scale_perm)' : 'single-group (scale_perm_single)'} order where the ${grouped ? 'single-group' : 'grouped'} one is due: the permutation chosen from the wrong K`;
  }
  return undefined;
}

/** Up to 4096 elements of part p of slot s, evenly spread, decoded on both sides. */
function sampleOf(found: View, exp: View, s: number, p: Part): { f: number[]; x: number[] } {
  const [fe, xe] = [found.elem, exp.elem];
  const start = (s * found.rows + p.a) * found.rowBytes;
  const n = ((p.b - p.a) * found.rowBytes) / fe;
  const count = Math.min(n, 4096);
  const f: number[] = [];
  const x: number[] = [];
  for (let k = 0; k < count; k++) {
    const i = Math.floor((k * n) / count);
    f.push(decodeFloats64(found.t.dtype, found.t.bytes.subarray(start + i * fe, start + (i + 1) * fe))[0]!);
    const xs = (s * exp.rows + p.a) * exp.rowBytes;
    x.push(decodeFloats64(exp.t.dtype, exp.t.bytes.subarray(xs + i * xe, xs + (i + 1) * xe))[0]!);
  }
  return { f, x };
}

/** The c with f = c·x on these values (within the dtype's rounding), or undefined. */
function scaledFactor(f: ArrayLike<number>, x: ArrayLike<number>, dtype: DType): number | undefined {
  let fx = 0;
  let xx = 0;
  for (let i = 0; i < x.length; i++) {
    fx += f[i]! * x[i]!;
    xx += x[i]! * x[i]!;
  }
  const c = fx / xx;
  return xx > 0 && Number.isFinite(c) && c !== 1 && isScaled(f, x, c, dtype) ? c : undefined;
}

/** f = c·x element by element, within twice the dtype's rounding (a value near zero may round to anything that small). */
function isScaled(f: ArrayLike<number>, x: ArrayLike<number>, c: number, dtype: DType): boolean {
  const eps = 2 * (EPS[dtype] ?? 0);
  for (let i = 0; i < x.length; i++) if (!(Math.abs(f[i]! - c * x[i]!) <= eps * Math.abs(c * x[i]!) + Number.MIN_VALUE * 4 + (Math.abs(x[i]!) < 1e-30 ? Math.abs(f[i]!) : 0))) return false;
  return true;
}

/** Whether f is x rounded through the narrower float dtype d (and stored back in `dtype`). */
function roundsThrough(d: 'BF16' | 'F16', dtype: DType, f: ArrayLike<number>, x: ArrayLike<number>): boolean {
  if (d === dtype || dtypeBits(d) >= dtypeBits(dtype)) return false;
  const through = decodeFloats64(d, encodeFloats(d, x));
  for (let i = 0; i < x.length; i++) if (!(Object.is(through[i], f[i]) || through[i] === f[i])) return false;
  return true;
}

/** Elements whose exponent bits are all ones (NaN or ±Inf) in found but not in expected, read from the bits. */
function countNonFinite(found: View, exp: View, s: number, p: Part): { nonFinite: number; n: number } {
  const mask: Partial<Record<DType, number>> = { F32: 0x7f800000, F16: 0x7c00, BF16: 0x7f80 };
  const m = mask[found.t.dtype];
  const at = (v: View) => (s * v.rows + p.a) * v.rowBytes;
  const n = ((p.b - p.a) * found.rowBytes) / found.elem;
  let nonFinite = 0;
  if (m === undefined || exp.t.dtype !== found.t.dtype) {
    eachChunk(found, exp, s, p, (f, x) => {
      for (let i = 0; i < f.length; i++) if (!Number.isFinite(f[i]!) && Number.isFinite(x[i]!)) nonFinite++;
      return true;
    });
    return { nonFinite, n };
  }
  const [fb, xb, e] = [found.t.bytes, exp.t.bytes, found.elem];
  const [f0, x0] = [at(found), at(exp)];
  const word = (b: Uint8Array, i: number) => (e === 4 ? (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0 : b[i]! | (b[i + 1]! << 8));
  for (let k = 0; k < n; k++) if ((word(fb, f0 + k * e) & m) === m && (word(xb, x0 + k * e) & m) !== m) nonFinite++;
  return { nonFinite, n };
}

/** c as a person would write it: 1/T for a division by a small integer. */
function describeFactor(c: number): string {
  const inv = 1 / c;
  const near = (v: number) => Math.abs(v - Math.round(v)) < 1e-2 * Math.abs(v) && Math.round(v) !== 0;
  if (near(inv) && Math.abs(inv) > 1) return `1/${Math.round(inv)} (${c.toPrecision(4)})`;
  if (near(c)) return String(Math.round(c));
  return c.toPrecision(6);
}

// ---------------------------------------------------------------------------------------

/** The dtype's bit pattern of one little-endian element, as hex (f16 bytes 57 b0 → b057). */
export function bitsHex(dtype: DType, bytes: Uint8Array): string {
  if (dtypeBits(dtype) < 8) return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).reverse().join('');
}


/** What a list of experts held by EP rank q is, measured against the placements a loader may confuse. */
export function describePlacement(found: readonly number[], expected: readonly number[], experts: number | undefined, req: ParallelRequest | undefined): { kind: DiagnosisKind; what: string } {
  const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);
  const sorted = (a: readonly number[]) => [...a].sort((x, y) => x - y);
  if (same(sorted(found), sorted(expected))) {
    const moves = found.map((e, s) => (e !== expected[s] ? `slot ${s} holds expert ${e}` : '')).filter(Boolean);
    return { kind: 'expert-permutation', what: `experts in the wrong slots: ${moves.join(', ')} (expected ids in slot order: ${expected.join(', ')})` };
  }
  const base = `holds experts [${found.join(', ')}], expected [${expected.join(', ')}]`;
  if (experts === undefined || req === undefined) return { kind: 'expert-placement', what: base };
  const { epSize: P, epRank: q, epPlacement: pl } = req;
  if (same(found, Array.from({ length: experts }, (_, i) => i)) && P > 1) return { kind: 'not-cut', what: `every expert on EP rank ${q}/${P} (not cut for EP): ${base}` };
  if (same(found, expertsOf(experts, P, P - 1 - q, pl))) return { kind: 'expert-placement', what: `the experts of EP rank ${P - 1 - q} (ranks reversed): ${base}` };
  const other = pl === 'linear' ? 'round_robin' : 'linear';
  if (same(found, expertsOf(experts, P, q, other))) return { kind: 'expert-placement', what: `${other} placement where ${pl} is due: ${base}` };
  // E mod P ignored: what this rank holds against what is due, no guess at the other ranks (they may hold the remainder, or none may).
  const b = Math.floor(experts / P);
  const rem = experts % P;
  const dueMore = rem > 1 ? `EP ranks 0–${rem - 1} hold ${b + 1} each` : `EP rank 0 holds ${b + 1}`;
  if (pl === 'linear' && same(found, Array.from({ length: b }, (_, i) => q * b + i))) return { kind: 'expert-placement', what: `linear placement ignoring E mod P = ${rem}: this rank holds floor(E/P) = ${b} experts from ${q}·${b}, where ${dueMore}: ${base}` };
  if (pl === 'linear' && q === P - 1 && rem > 0 && same(found, Array.from({ length: experts - q * b }, (_, i) => q * b + i))) return { kind: 'expert-placement', what: `linear placement with the E mod P = ${rem} remainder on the last rank: this rank holds experts ${q}·${b} to ${experts - 1}, where ${dueMore}: ${base}` };
  for (let o = 0; o < P; o++) if (o !== q && same(found, expertsOf(experts, P, o, pl))) return { kind: 'expert-placement', what: `the experts of EP rank ${o}: ${base}` };
  // No placement explains it, but every slot holds a distinct expert: the expert order itself is permuted.
  if (found.length === expected.length && new Set(found).size === found.length && found.every((e) => e >= 0 && e < experts)) {
    const byString = Array.from({ length: experts }, (_, i) => i).sort((a, b) => (String(a) < String(b) ? -1 : 1));
    const hint = same(found, expected.map((e) => byString[e]!)) ? ' (the experts in the string order of their ids: 10 before 2)' : '';
    const moves = found.map((e, s) => (e !== expected[s] ? `slot ${s} holds expert ${e} (expected ${expected[s]})` : '')).filter(Boolean);
    return { kind: 'expert-permutation', what: `${moves.join(', ')}${hint}` };
  }
  return { kind: 'expert-placement', what: base };
}

interface SlotFinding {
  kind: DiagnosisKind;
  what: string;
  /** Global expert (stacked tensors), or undefined. */
  expert?: number;
  part?: string;
}

/** Every mismatching tensor of `found` against `expected`, diagnosed; empty when they are identical. */
export function diagnoseCanonical(expected: Canonical, found: Canonical, ctx: DiagnoseContext = {}): Diagnosis[] {
  const out: Diagnosis[] = [];
  const names = [...new Set([...expected.keys(), ...found.keys()])].sort();
  for (const name of names) {
    try {
      out.push(...diagnoseTensor(name, expected, found, ctx));
    } catch (e) {
      // A diagnosis never turns a failure into a crash: what could not be examined is said so.
      out.push({ tensor: name, kind: 'unknown', detail: `could not be examined: ${(e as Error)?.message ?? String(e)}` });
    }
  }
  return out;
}

/** The diagnoses of one tensor (none when it matches). */
export function diagnoseTensor(name: string, expected: Canonical, found: Canonical, ctx: DiagnoseContext = {}): Diagnosis[] {
  const e = expected.get(name);
  const f = found.get(name);
  const d = (kind: DiagnosisKind, detail: string, map?: number[]): Diagnosis => ({ tensor: name, kind, detail, ...(map && { map }) });
  if (!f && !e) return [];
  if (!f) return [d('missing-tensor', `the loader did not return it (expected ${e!.dtype} [${e!.shape.join(', ')}])`)];
  if (!e) return [d('unexpected-tensor', `not in the canonical form of this model and rank (found ${f.dtype} [${f.shape.join(', ')}])`)];
  if (sameTensor(e, f)) return [];

  const wholeT = ctx.whole?.get(name);
  const expIds = idsFor(name, expected);
  const experts = ctx.whole ? idsFor(name, ctx.whole)?.length : undefined;

  if (name.endsWith('.experts.ids')) {
    const fi = int32Values(f);
    if (!fi) return [d('shape-mismatch', `ids are ${f.dtype} [${f.shape.join(', ')}], expected I32 [${e.shape.join(', ')}]`)];
    const p = describePlacement(fi, int32Values(e)!, experts, ctx.req);
    return [d(p.kind, p.what, fi)];
  }

  if (e.dtype !== f.dtype) return [dtypeDiagnosis(name, e, f)];
  if (ctx.stored && ctx.req && f.dtype === 'F32' && quantizedWeight(name, ctx)) {
    const scheme = schemeOf(ctx.stored.scheme)!;
    // Misreadings redone exactly, and per-tensor FP8 requantized to max(gate, up) with any rounding (./scale-pairs.ts).
    const ms = misreadingsOf(name, f, ctx.stored.tensors, ctx.stored.scheme, ctx.req);
    const requantized = dequantizedAfterMaxRequant(name, f, ctx.stored.tensors) ?? [];
    // Several that give the same values here are all said: the evidence cannot tell them apart.
    const or = [...ms.map((m) => m.what(scheme)), ...(ms.length && requantized.length ? [requantized.map((x) => x.detail).join('; ')] : [])];
    if (ms.length) return [d(ms[0]!.kind, or.join('; or, giving the same values here: '))];
    if (requantized.length) return requantized.map((x) => d(x.kind, x.detail));
  }
  if (sameShape(e.shape, f.shape)) {
    // Gate's and up's scales swapped or merged, and F8 weights requantized to a merged scale (./scale-pairs.ts).
    const pair = scalePairFinding(name, expected, found, ctx.whole);
    if (pair) return [d(pair.kind, pair.detail)];
    const requantized = requantizedToScale(name, expected, found);
    if (requantized) return requantized.map((x) => d(x.kind, x.detail));
    // INT4 zero points and group indices rewritten (./int4-companions.ts).
    const int4 = int4CompanionFinding(name, expected, found, { ...(ctx.req && { req: ctx.req }), ...(ctx.whole && { whole: ctx.whole }), ...(ctx.stored && { scheme: schemeOf(ctx.stored.scheme)! }) });
    if (int4) return [d(int4.kind, int4.detail)];
  }
  const role = roleOf(name);
  const fv = viewOf(f, role);
  const ev = viewOf(e, role);
  const wv = wholeT && wholeT.dtype === f.dtype ? viewOf(wholeT, role) : undefined;

  if (!sameShape(e.shape, f.shape)) {
    if (wholeT && sameShape(wholeT.shape, f.shape) && sameBytes(wholeT.bytes, f.bytes)) {
      return [d('not-cut', `holds the whole tensor [${f.shape.join(', ')}] where the rank's slice [${e.shape.join(', ')}] is due`)];
    }
    const sameSlot = fv.rows === ev.rows && fv.rowBytes === ev.rowBytes;
    if (role.stacked && sameSlot && wv) {
      // Another set of experts: which expert does each slot hold?
      const map = slotExperts(fv, wv, tpGeometry(role, fv, wv, ctx.req), role);
      if (map.every((x) => x >= 0)) {
        const p = describePlacement(map, expIds ?? [], experts, ctx.req);
        return [d(p.kind, p.what, map)];
      }
    }
    if (!role.stacked && wv && fv.rowBytes === wv.rowBytes && role.cut === 'none' && expIds) {
      // A layer-wide tensor with one row per expert cut to the rank's experts (the router, as if EP split it).
      const rowsOf = Array.from({ length: fv.rows }, (_, i) => findRow(fv, 0, i, wv));
      if (rowsOf.every((x) => x >= 0) && rowsOf.length === expIds.length && rowsOf.every((x, i) => x === expIds[i])) {
        return [d('shape-mismatch', `holds only the rows of this rank's experts [${ranges(expIds)}] (cut by EP; it is whole on every rank): [${f.shape.join(', ')}], expected [${e.shape.join(', ')}]`)];
      }
    }
    if (role.cut !== 'none' && wv && role.stacked === true && fv.slots === ev.slots) {
      const g = tpGeometry(role, fv, wv, ctx.req);
      if (fv.rows === wv.rows && fv.rowBytes === wv.rowBytes && g === undefined) {
        const all = Array.from({ length: fv.slots }, (_, s) => sameBytes(slotBytes(fv, s), slotBytes(wv, expIds?.[s] ?? s)));
        if (all.every(Boolean)) return [d('not-cut', `every slot holds its expert's whole tensor [${f.shape.slice(1).join(', ')}] where TP rank ${ctx.req?.tpRank ?? 0}/${ctx.req?.tpSize ?? 1}'s slice [${e.shape.slice(1).join(', ')}] is due`)];
      }
    }
    if (!role.stacked && wv && sameShape(wholeT!.shape, f.shape)) {
      return [d('not-cut', `holds a tensor of the whole's shape [${f.shape.join(', ')}] where the rank's slice [${e.shape.join(', ')}] is due`)];
    }
    if (matricesTransposed(e, f)) {
      return [d('transposed', `every [${e.shape.slice(-2).join(', ')}] matrix stored transposed: [${f.shape.join(', ')}], expected [${e.shape.join(', ')}]`)];
    }
    return [d('shape-mismatch', `shape [${f.shape.join(', ')}], expected [${e.shape.join(', ')}]`)];
  }

  // Same dtype and shape: slot by slot.
  const g = wv ? tpGeometry(role, fv, wv, ctx.req) : undefined;
  const exp = wv && g ? expectedSource(role, g, wv) : undefined;
  // A scale tensor's rows follow blocks, not weight rows: beyond a swap, where they come from is searched (misalignedScale).
  const hyps = wv && g ? layoutHypotheses(role, g, wv).filter((h) => !role.scale || h.kind === 'gate-up-swapped') : [];
  // Every square matrix (w13 where 2I == H, w2 where I == H, a square grid of block scales, ...): spec §6's `transposed` is each square matrix transposed.
  const transposed = wv && g ? lazy(() => transposedView(wv)) : undefined;
  const expertIndex = role.stacked && wv && exp ? fingerprintIndex(fv, wv, exp) : undefined;
  const findings = new Map<number, SlotFinding[]>();
  const holds: number[] = [];
  let moved = false;
  for (let s = 0; s < fv.slots; s++) {
    const expert = role.stacked ? (expIds?.[s] ?? s) : undefined;
    holds.push(expert ?? -1);
    if (sameBytes(slotBytes(fv, s), slotBytes(ev, s))) continue;
    // Another expert's weights, cut correctly?
    if (expertIndex && exp) {
      const other = expertIndex.lookup(fv, s).find((x) => x !== expert && matches(fv, s, exp, x));
      if (other !== undefined) {
        holds[s] = other;
        moved = true;
        continue;
      }
    }
    const we = expert ?? 0;
    const found: SlotFinding[] = [];
    const hyp = hyps.find((h) => matches(fv, s, h, we));
    if (hyp) found.push({ kind: hyp.kind, what: hyp.what, ...(expert !== undefined && { expert }) });
    else if (transposed && exp) {
      const tv = transposed();
      if (tv && matches(fv, s, { ...exp, source: tv }, we)) found.push({ kind: 'transposed', what: `each [${wv!.rows}, ${wv!.rows}] matrix read untransposed (found = the transpose of the expected rows)`, ...(expert !== undefined && { expert }) });
    }
    if (found.length === 0 && role.scale) {
      const mp = marlinScaleOrder(fv, ev, s);
      if (mp) found.push({ kind: 'marlin-scale-permutation', what: mp, ...(expert !== undefined && { expert }) });
    }
    if (found.length === 0 && role.scale && wv) {
      const mis = misalignedScale(fv, s, wv, we, role);
      if (mis) found.push({ kind: 'scale-block-misaligned', what: mis, ...(expert !== undefined && { expert }) });
    }
    if (found.length === 0) found.push(...valueFindings(fv, ev, s, role, expert, quantizedWeight(name, ctx)));
    findings.set(s, found);
  }
  const diagnoses: Diagnosis[] = [];
  if (moved) {
    const p = describePlacement(holds, expIds ?? holds, experts, ctx.req);
    diagnoses.push(d(p.kind, p.what, holds));
  }
  // Group the slots that share a finding: "experts 0–7: gate and up halves swapped".
  const groups = new Map<string, { f: SlotFinding; experts: number[] }>();
  for (const [, list] of findings) {
    for (const x of list) {
      const key = `${x.kind}\u0000${x.what}\u0000${x.part ?? ''}`;
      const gr = groups.get(key) ?? { f: x, experts: [] };
      if (x.expert !== undefined) gr.experts.push(x.expert);
      groups.set(key, gr);
    }
  }
  for (const { f: x, experts: ex } of groups.values()) {
    const whereExperts = role.stacked ? `experts ${ranges([...ex].sort((a, b) => a - b))}` : '';
    const where = [x.part, whereExperts].filter(Boolean).join(' of ');
    diagnoses.push(d(x.kind, `${where ? `${where}: ` : ''}${x.what}`));
  }
  return diagnoses;
}

/** A routed expert weight or scale of a quantized checkpoint: the format's name, else undefined. */
function quantizedWeight(name: string, ctx: DiagnoseContext): string | undefined {
  return ctx.quantized !== undefined && (/\.experts\.w(13|2)(_scale)?$/.test(name) || (ctx.stored?.scheme.sharedQuantized === true && /\.shared\.w(13|2)(_scale)?$/.test(name))) ? ctx.quantized : undefined;
}

/** Whether two F32 byte runs hold the same numbers and differ only where one has -0.0 and the other +0.0. */
function signOfZeroOnly(a: Uint8Array, b: Uint8Array): boolean {
  const x = decodeFloats64('F32', a);
  const y = decodeFloats64('F32', b);
  return x.length === y.length && Array.prototype.every.call(x, (v: number, i: number) => v === y[i]);
}

function valueFindings(fv: View, ev: View, s: number, role: Role, expert: number | undefined, quantized?: string): SlotFinding[] {
  const at = expert !== undefined ? { expert } : {};
  const whole: Part = { a: 0, b: fv.rows, name: '' };
  // The same numbers but for zeros of the other sign (no value relation says more): an E2M1 decoder that gives code 0x8
  // -0.0 (vLLM's table) where NVFP4's gives +0.0 (spec/layouts.md §4.1), or the reverse. Not a rounding, not a scale.
  if (fv.t.dtype === 'F32' && ev.t.dtype === 'F32' && signOfZeroOnly(slotBytes(fv, s), slotBytes(ev, s))) {
    const what = 'equal to the expected values but for the sign of zero (-0.0 against +0.0';
    if (quantized !== undefined && !role.scale) return [{ kind: 'dequantized-differently', what: `F32 weights ${what}: E2M1 code 0x8 is +0.0 in NVFP4's table, -0.0 in MXFP4's; spec/layouts.md §4.1)`, ...at }];
    return [{ kind: 'unknown', what: `values ${what})`, ...at }];
  }
  const rel = valueRelation(fv, ev, s, whole);
  if (rel) return [{ ...rel, ...at }];
  if (quantized !== undefined) {
    // No layout or value relation: the loader computed or re-encoded the quantized weights its own way.
    if (fv.t.dtype === 'F32' && !role.scale) {
      return [{ kind: 'dequantized-differently', what: `F32 weights that are not the ${quantized} dequantization of the checkpoint (zero points, group indices or scales misapplied)`, ...at }];
    }
    return [{ kind: 'requantized', what: `${fv.t.dtype} values that are not the checkpoint's stored ${quantized} elements (re-quantized or re-scaled)`, ...at }];
  }
  // A named half of gate/up, or the rows that differ.
  const parts: Part[] = role.cut === 'gate-up' && fv.rows % 2 === 0 ? [{ a: 0, b: fv.rows / 2, name: 'gate half' }, { a: fv.rows / 2, b: fv.rows, name: 'up half' }] : [];
  const out: SlotFinding[] = [];
  for (const p of parts) {
    if (sameBytes(fv.t.bytes.subarray((s * fv.rows + p.a) * fv.rowBytes, (s * fv.rows + p.b) * fv.rowBytes), ev.t.bytes.subarray((s * ev.rows + p.a) * ev.rowBytes, (s * ev.rows + p.b) * ev.rowBytes))) continue;
    const r = valueRelation(fv, ev, s, p);
    if (!r) return [unknownFinding(fv, ev, s, at)];
    out.push({ ...r, ...at, part: p.name });
  }
  return out.length ? out : [unknownFinding(fv, ev, s, at)];
}

function unknownFinding(fv: View, ev: View, s: number, at: { expert?: number }): SlotFinding {
  let first = -1;
  let last = -1;
  for (let i = 0; i < fv.rows; i++) {
    if (!sameBytes(row(fv, s, i), row(ev, s, i))) {
      if (first < 0) first = i;
      last = i;
    }
  }
  return { kind: 'unknown', what: `no known relation to the reference; rows ${first}..${last + 1} differ (of ${fv.rows})`, ...at };
}

function lazy<T>(f: () => T): () => T {
  let done = false;
  let v: T;
  return () => {
    if (!done) {
      v = f();
      done = true;
    }
    return v;
  };
}

/** A hash map from one row's bytes (the first row under the expected map) to the whole tensor's experts. */
function fingerprintIndex(fv: View, wv: View, exp: RowSource): { lookup(v: View, s: number): number[] } {
  const key = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, Math.min(b.length, 64)).toString('latin1');
  const map = new Map<string, number[]>();
  const j = exp.map(0);
  for (let x = 0; x < wv.slots; x++) {
    const k = key(row(wv, x, j, exp.col, exp.col + fv.rowBytes));
    map.set(k, [...(map.get(k) ?? []), x]);
  }
  return { lookup: (v, s) => map.get(key(row(v, s, 0))) ?? [] };
}

/** For each found slot, the whole tensor's expert whose (rank-cut) data it holds, or -1. */
function slotExperts(fv: View, wv: View, g: TpGeometry | undefined, role: Role): number[] {
  if (!g) return Array.from({ length: fv.slots }, () => -1);
  const exp = expectedSource(role, g, wv);
  const index = fingerprintIndex(fv, wv, exp);
  return Array.from({ length: fv.slots }, (_, s) => index.lookup(fv, s).find((x) => matches(fv, s, exp, x)) ?? -1);
}

/**
 * A quantized scale slot whose rows (or, for w2's, columns) are all the whole tensor's, but
 * not the ones the rank's blocks need: the description, or undefined.
 */
function misalignedScale(fv: View, s: number, wv: View, we: number, role: Role): string | undefined {
  if (role.cut === 'gate-up' && fv.rowBytes === wv.rowBytes) {
    const src: number[] = [];
    for (let i = 0; i < fv.rows; i++) {
      let j = 0;
      while (j < wv.rows && !sameBytes(row(fv, s, i), row(wv, we, j))) j++;
      if (j === wv.rows) return undefined;
      src.push(j);
    }
    return `scale rows taken from rows [${ranges(src)}] of the whole scale tensor: blocks not aligned with the rank's weight rows`;
  }
  if (role.cut === 'columns' && fv.rows === wv.rows) {
    const offsets = new Set<number>();
    for (let i = 0; i < fv.rows; i++) {
      const whole = Buffer.from(row(wv, we, i));
      let at = whole.indexOf(Buffer.from(row(fv, s, i)));
      while (at >= 0 && at % fv.elem !== 0) at = whole.indexOf(Buffer.from(row(fv, s, i)), at + 1);
      if (at < 0) return undefined;
      offsets.add(at / fv.elem);
    }
    return `scale columns taken from column ${[...offsets].join(', ')} of the whole scale tensor: blocks not aligned with the rank's weight columns`;
  }
  return undefined;
}

/** The row of the whole (single-slot) view equal to row i of slot s, or -1. */
function findRow(fv: View, s: number, i: number, wv: View): number {
  for (let j = 0; j < wv.rows; j++) if (sameBytes(row(fv, s, i), row(wv, 0, j))) return j;
  return -1;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function dtypeDiagnosis(name: string, e: Tensor, f: Tensor): Diagnosis {
  const base = `stored as ${f.dtype}, expected ${e.dtype}`;
  if (FLOATS.has(e.dtype) && FLOATS.has(f.dtype) && sameShape(e.shape, f.shape)) {
    // Chunk by chunk: equal values (a widening), or the values rounded to the found dtype.
    const [es, fs] = [elemBytes(e.dtype), elemBytes(f.dtype)];
    let exact = true;
    let rounded = true;
    const n = e.bytes.length / es;
    for (let a = 0; a < n && (exact || rounded); a += CHUNK_ELEMENTS) {
      const b = Math.min(n, a + CHUNK_ELEMENTS);
      const x = decodeFloats64(e.dtype, e.bytes.subarray(a * es, b * es));
      const y = decodeFloats64(f.dtype, f.bytes.subarray(a * fs, b * fs));
      const same = (u: ArrayLike<number>) => u.length === y.length && Array.prototype.every.call(u, (v: number, i: number) => Object.is(v, y[i]) || v === y[i]);
      exact &&= same(x);
      rounded &&= same(decodeFloats64(f.dtype, encodeFloats(f.dtype, x)));
    }
    if (exact) return { tensor: name, kind: 'dtype-conversion', detail: `${base}: the same values converted to ${f.dtype}` };
    if (rounded) return { tensor: name, kind: 'dtype-conversion', detail: `${base}: the values rounded to ${f.dtype}` };
  }
  // The shape is right and only the dtype is not (spec §6: stored in another dtype): the same bytes under another label
  // (FP8 e4m3 read as e5m2), or other bytes of that dtype.
  if (sameShape(e.shape, f.shape)) {
    const relabelled = elemBytes(e.dtype) === elemBytes(f.dtype) && sameBytes(e.bytes, f.bytes);
    return { tensor: name, kind: 'dtype-conversion', detail: `${base}, shape [${f.shape.join(', ')}] as due: ${relabelled ? `the expected bytes labelled ${f.dtype} (read as another format of the same width)` : `other values in ${f.dtype}`}` };
  }
  return { tensor: name, kind: 'shape-mismatch', detail: `${base}, shape [${f.shape.join(', ')}]` };
}

/** "w13 of experts 0–7: gate and up halves swapped", the diagnoses of one case on one line each. */
export function describeDiagnosis(d: Diagnosis): string {
  return `${d.tensor ? `${d.tensor}: ` : ''}${d.kind}: ${d.detail}`;
}

/** Counts of the first diagnosis kind of each failure: "19 gate-up-swapped, 6 expert-permutation". */
export function countKinds(diagnoses: ReadonlyArray<readonly Diagnosis[] | undefined>): Array<[string, number]> {
  const counts = new Map<string, number>();
  for (const list of diagnoses) {
    const k = list?.[0]?.kind ?? 'no diagnosis';
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
}
