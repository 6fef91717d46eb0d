// The inverse of the TP/EP cut of spec §1, written independently of the loader's cutting
// code: from every rank's canonical tensors, rebuild the whole (TP 1, EP 1) tensors and
// check on the way that the ranks cover every weight exactly once and agree on what every
// rank must hold whole (router, correction bias, w2_bias, shared tensors across EP ranks).
import { MoeConformanceError } from '../harness/errors.js';
import { dtypeBits } from '../harness/safetensors/dtypes.js';
import type { Canonical, Tensor } from '../harness/tensor.js';
import type { RankTensors } from '../kernels/backend.js';
import type { QuantGeometry } from '../harness/layouts/ops.js';

/** The ranks do not fit together into one whole: a weight is missing, repeated or disagrees. */
export class CoverageError extends MoeConformanceError {}

// The router may have dotted names (zaya: router.down.weight).
const NAME = /^layers\.(\d+)\.(?:(experts|shared)\.([a-z0-9_]+)|router\.([a-z0-9_.]+)|latent\.fc[12]|output_bias|output_norm|expert_input_norm)$/;

/** Tensors every rank holds whole and identical. */
const WHOLE_EVERYWHERE = new Set([
  'router.weight', 'router.bias', 'router.correction_bias', 'router.tid2eid', 'shared.gate', 'output_bias', 'output_norm', 'latent.fc1', 'latent.fc2',
  // gemma4's scales and expert input norm, inkling's global scale
  'router.input_scale', 'router.expert_scale', 'router.global_scale', 'expert_input_norm',
  // zaya's MLP router
  'router.down.weight', 'router.down.bias', 'router.state_scale', 'router.norm', 'router.fc1.weight', 'router.fc1.bias', 'router.fc2.weight', 'router.fc2.bias',
]);

/**
 * `gated: false` for non-gated experts (spec §1: w13 and shared.w13 hold the up rows alone,
 * each TP rank a contiguous slice of them).
 */
export function reassemble(ranks: readonly RankTensors[], quant?: QuantGeometry, gated = true): Canonical {
  const join13 = gated ? joinGateUp : joinRows;
  const first = ranks[0];
  if (!first) throw new CoverageError('no ranks to reassemble');
  const { tpSize: T, epSize: P } = first.req;
  const at = (tp: number, ep: number): Canonical => {
    const r = ranks.find((x) => x.req.tpRank === tp && x.req.epRank === ep);
    if (!r) throw new CoverageError('a rank is missing', { expected: `TP rank ${tp}, EP rank ${ep}`, found: 'none' });
    return r.tensors;
  };
  const names = new Set(ranks.flatMap((r) => [...r.tensors.keys()]));
  for (const r of ranks) {
    for (const n of names) if (!r.tensors.has(n)) throw new CoverageError(`TP rank ${r.req.tpRank} EP rank ${r.req.epRank} lacks a tensor other ranks hold`, { tensor: n });
  }
  const whole: Canonical = new Map();
  const layers = new Set<number>();
  for (const n of names) {
    const m = NAME.exec(n);
    if (!m) throw new CoverageError('tensor name outside the protocol', { tensor: n, expected: 'layers.L.(experts|router|shared).* or layers.L.output_(bias|norm)' });
    layers.add(Number(m[1]));
  }
  for (const L of [...layers].sort((a, b) => a - b)) {
    const p = `layers.${L}.`;
    for (const key of WHOLE_EVERYWHERE) {
      if (!names.has(p + key)) continue;
      whole.set(p + key, sameOnAll(ranks.map((r) => r.tensors.get(p + key)!), p + key));
    }
    const shared13 = p + 'shared.w13';
    if (names.has(shared13)) {
      // Every EP rank holds the same shared expert; TP cuts it like w13 and w2, with its companions where quantized.
      const each = (suffix: string, join: Join) => {
        const n = p + 'shared.' + suffix;
        if (!names.has(n)) return;
        for (let q = 1; q < P; q++) for (let r = 0; r < T; r++) sameOnAll([at(r, 0).get(n)!, at(r, q).get(n)!], n);
        whole.set(n, join(range(T).map((r) => at(r, 0).get(n)!), n));
      };
      each('w13', join13);
      each('w2', joinColumns);
      joinCompanions(each, () => at(0, 0).get(shared13)!.shape[0]! / 2, quant);
    }
    if (names.has(p + 'experts.ids')) reassembleExperts(L, T, P, at, names, whole, quant, join13);
  }
  return whole;
}

function reassembleExperts(
  L: number, T: number, P: number, at: (tp: number, ep: number) => Canonical, names: Set<string>, whole: Canonical, quant: QuantGeometry | undefined,
  join13: (ts: Tensor[], name: string) => Tensor,
): void {
  const p = `layers.${L}.experts.`;
  // Which EP rank and slot holds each global expert; each exactly once.
  const home = new Map<number, { q: number; slot: number }>();
  for (let q = 0; q < P; q++) {
    const ids = readIds(at(0, q).get(p + 'ids')!, p + 'ids');
    for (let r = 1; r < T; r++) {
      const other = readIds(at(r, q).get(p + 'ids')!, p + 'ids');
      if (other.join() !== ids.join()) throw new CoverageError(`TP ranks of EP rank ${q} hold different experts`, { tensor: p + 'ids', expected: ids, found: other });
    }
    ids.forEach((e, slot) => {
      const prev = home.get(e);
      if (prev) throw new CoverageError(`expert ${e} is held twice`, { tensor: p + 'ids', layer: L, expected: 'once', found: `EP ranks ${prev.q} and ${q}` });
      home.set(e, { q, slot });
    });
  }
  const E = home.size;
  for (let e = 0; e < E; e++) {
    if (!home.has(e)) throw new CoverageError(`expert ${e} is held by no rank`, { tensor: p + 'ids', layer: L, expected: `ids 0..${E - 1}`, found: [...home.keys()].sort((a, b) => a - b) });
  }
  const perExpert = (suffix: string, join: (parts: Tensor[], name: string) => Tensor) => {
    if (!names.has(p + suffix)) return;
    const experts = range(E).map((e) => {
      const { q, slot } = home.get(e)!;
      return join(range(T).map((r) => slice(at(r, q).get(p + suffix)!, slot, p + suffix)), p + suffix);
    });
    whole.set(p + suffix, stack(experts));
  };
  whole.set(p + 'ids', { dtype: 'I32', shape: [E], bytes: new Uint8Array(new Int32Array(range(E)).buffer) });
  perExpert('w13', join13);
  perExpert('w2', joinColumns);
  perExpert('w13_bias', joinGateUp);
  perExpert('w2_bias', sameOnAll); // whole on every TP rank
  joinCompanions(perExpert, () => slice(at(0, 0).get(p + 'w13')!, 0, p + 'w13').shape[0]! / 2, quant);
}

type Join = (parts: Tensor[], name: string) => Tensor;

/**
 * The companions of a quantized w13/w2 (spec §4), each joined over the TP ranks by `each`:
 * block scales (FP8) are held by every rank whose slice touches the block; whole-block scales
 * (MXFP4, NVFP4) are cut like their rows and columns; one value per projection (`_scale_2`,
 * `_input_scale`) is the same on every TP rank. `Ir`: the rows of one half of a rank's w13.
 */
function joinCompanions(each: (suffix: string, join: Join) => void, Ir: () => number, quant: QuantGeometry | undefined): void {
  if (quant?.splitsBlocks) {
    each('w13_scale', (ts, name) => joinBlocks(ts, name, Ir(), quant.scaleBlock.rows, 'rows'));
    each('w2_scale', (ts, name) => joinBlocks(ts, name, Ir(), quant.scaleBlock.cols, 'cols'));
  } else {
    each('w13_scale', joinGateUp);
    // Activation order keeps w2's groups whole on every rank.
    each('w2_scale', quant?.kScalesWhole ? sameOnAll : joinColumns);
  }
  // INT4 zero points: w13's packed rows cut like its rows, w2's groups like its columns (whole under activation order); recorded shapes whole.
  each('w13_zero', joinGateUp);
  each('w2_zero', quant?.kScalesWhole ? sameOnAll : joinColumns);
  // g_idx: gate's and up's whole on every rank, w2's cut with its columns.
  each('w13_g_idx', sameOnAll);
  each('w2_g_idx', joinVector);
  for (const w of ['w13', 'w2']) for (const c of ['scale_2', 'input_scale', 'shape']) each(`${w}_${c}`, sameOnAll);
}

/**
 * FP8 scale shards to the whole grid. TP rank r holds the blocks from the one holding its
 * first row (column) `r*Ir` to the one holding its last; a block on two ranks must be the
 * same on both, and every block must be held. `rows`: gate blocks then up blocks of
 * `[2*nb, cols]` shards; `cols`: `[rows, nb]` shards.
 */
function joinBlocks(ts: Tensor[], name: string, Ir: number, block: number, axis: 'rows' | 'cols'): Tensor {
  const T = ts.length;
  const total = Math.ceil((T * Ir) / block);
  const first = (r: number) => Math.floor((r * Ir) / block);
  const held = (r: number) => Math.floor(((r + 1) * Ir - 1) / block) - first(r) + 1;
  const a = ts[0]!;
  const w = elemBytes(a);
  const halves = axis === 'rows' ? 2 : 1;
  const rows = axis === 'rows' ? 2 * total : a.shape[0]!;
  const cols = axis === 'rows' ? a.shape[1]! : total;
  const bytes = new Uint8Array(rows * cols * w);
  const seen = new Uint8Array(rows * cols);
  ts.forEach((t, r) => {
    const n = held(r);
    const want = axis === 'rows' ? [halves * n, cols] : [rows, n];
    if (t.dtype !== a.dtype || t.shape.join() !== want.join()) {
      throw new CoverageError(`TP rank ${r} holds a scale grid of the wrong shape`, { tensor: name, expected: `${a.dtype} [${want}]`, found: `${t.dtype} [${t.shape}]` });
    }
    for (let i = 0; i < want[0]!; i++) {
      for (let j = 0; j < want[1]!; j++) {
        const [gi, gj] = axis === 'rows' ? [Math.floor(i / n) * total + first(r) + (i % n), j] : [i, first(r) + j];
        const k = gi * cols + gj;
        const src = t.bytes.subarray((i * want[1]! + j) * w, (i * want[1]! + j + 1) * w);
        if (seen[k] && !bytesEqual(src, bytes.subarray(k * w, (k + 1) * w))) {
          throw new CoverageError('TP ranks disagree on a scale block they share', { tensor: name, expected: 'the same scale on every rank holding the block', found: `rank ${r} differs at block (${gi}, ${gj})` });
        }
        bytes.set(src, k * w);
        seen[k] = 1;
      }
    }
  });
  if (seen.includes(0)) throw new CoverageError('a scale block is held by no TP rank', { tensor: name, expected: 'every block held', found: `block ${seen.indexOf(0)} missing` });
  return { dtype: a.dtype, shape: [rows, cols], bytes };
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function readIds(t: Tensor, name: string): number[] {
  if (t.dtype !== 'I32' || t.shape.length !== 1) throw new CoverageError('experts.ids must be a 1-D I32 tensor', { tensor: name, expected: 'I32 [E_local]', found: `${t.dtype} [${t.shape}]` });
  if (t.bytes.length !== 4 * t.shape[0]!) throw new CoverageError('experts.ids byte length does not match its shape', { tensor: name, expected: 4 * t.shape[0]!, found: t.bytes.length });
  const copy = t.bytes.slice();
  return [...new Int32Array(copy.buffer, 0, t.shape[0])];
}

function sameOnAll(ts: Tensor[], name: string): Tensor {
  const [a, ...rest] = ts;
  for (const b of rest) {
    if (a!.dtype !== b.dtype || a!.shape.join() !== b.shape.join() || !bytesEqual(a!.bytes, b.bytes)) {
      throw new CoverageError('ranks disagree on a tensor that every rank holds whole', { tensor: name, expected: `${a!.dtype} [${a!.shape}]`, found: `${b.dtype} [${b.shape}]${bytesEqual(a!.bytes, b.bytes) ? '' : ', different bytes'}` });
    }
  }
  return a!;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const elemBytes = (t: Tensor) => dtypeBits(t.dtype) / 8;
const count = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Slot `i` of a tensor stacked on its first axis. */
function slice(t: Tensor, i: number, name: string): Tensor {
  if (i >= t.shape[0]!) throw new CoverageError('slot out of range', { tensor: name, expected: `< ${t.shape[0]}`, found: i });
  const inner = t.shape.slice(1);
  const n = count(inner) * elemBytes(t);
  return { dtype: t.dtype, shape: inner, bytes: t.bytes.subarray(i * n, (i + 1) * n) };
}

function stack(ts: Tensor[]): Tensor {
  const first = ts[0]!;
  const bytes = new Uint8Array(ts.reduce((s, t) => s + t.bytes.length, 0));
  let o = 0;
  for (const t of ts) {
    bytes.set(t.bytes, o);
    o += t.bytes.length;
  }
  return { dtype: first.dtype, shape: [ts.length, ...first.shape], bytes };
}

function checkSameKind(ts: Tensor[], name: string): void {
  const a = ts[0]!;
  for (const t of ts) {
    if (t.dtype !== a.dtype || t.shape.join() !== a.shape.join()) {
      throw new CoverageError('TP shards differ in dtype or shape', { tensor: name, expected: `${a.dtype} [${a.shape}]`, found: `${t.dtype} [${t.shape}]` });
    }
  }
}

/** TP shards of `[2*Ir, ...]` (gate rows then up rows) to `[2*I, ...]`: all gates, then all ups. */
/** TP shards of a non-gated w13: the up rows of each rank one after another. */
function joinRows(ts: Tensor[], name: string): Tensor {
  checkSameKind(ts, name);
  const a = ts[0]!;
  const bytes = new Uint8Array(a.bytes.length * ts.length);
  ts.forEach((t, i) => bytes.set(t.bytes, i * a.bytes.length));
  return { dtype: a.dtype, shape: [a.shape[0]! * ts.length, ...a.shape.slice(1)], bytes };
}

function joinGateUp(ts: Tensor[], name: string): Tensor {
  checkSameKind(ts, name);
  const a = ts[0]!;
  if (a.shape[0]! % 2 !== 0) throw new CoverageError('gate/up tensor has an odd number of rows', { tensor: name, expected: 'even', found: a.shape[0] });
  const half = (a.bytes.length / 2) | 0;
  const gates = ts.map((t) => t.bytes.subarray(0, half));
  const ups = ts.map((t) => t.bytes.subarray(half));
  const bytes = new Uint8Array(a.bytes.length * ts.length);
  let o = 0;
  for (const b of [...gates, ...ups]) {
    bytes.set(b, o);
    o += b.length;
  }
  return { dtype: a.dtype, shape: [a.shape[0]! * ts.length, ...a.shape.slice(1)], bytes };
}

/** TP shards of `[rows, Ir, ...]` to `[rows, I, ...]`: row by row, the shards' columns side by side (MXFP4 columns are `[blocks, 16]`). */
/** TP shards of a vector `[Ir]` (w2's g_idx) to `[I]`, rank after rank. */
function joinVector(ts: Tensor[], name: string): Tensor {
  checkSameKind(ts, name);
  const bytes = new Uint8Array(ts.reduce((n, t) => n + t.bytes.length, 0));
  let o = 0;
  for (const t of ts) {
    bytes.set(t.bytes, o);
    o += t.bytes.length;
  }
  return { dtype: ts[0]!.dtype, shape: [ts.reduce((n, t) => n + t.shape[0]!, 0)], bytes };
}

function joinColumns(ts: Tensor[], name: string): Tensor {
  checkSameKind(ts, name);
  const a = ts[0]!;
  const rows = a.shape[0]!;
  const rowBytes = (a.bytes.length / rows) | 0;
  const bytes = new Uint8Array(a.bytes.length * ts.length);
  let o = 0;
  for (let r = 0; r < rows; r++) {
    for (const t of ts) {
      bytes.set(t.bytes.subarray(r * rowBytes, (r + 1) * rowBytes), o);
      o += rowBytes;
    }
  }
  return { dtype: a.dtype, shape: [rows, a.shape[1]! * ts.length, ...a.shape.slice(2)], bytes };
}
