// Tokens grouped by expert on the GPU, from the selected ids and weights that the routing
// shader (or, for sparsemixer, the CPU) left in device buffers, so that no forward waits on
// the host between the router and the expert GEMMs. Per rank:
//
// 1. COUNT: one thread per routed (token, choice) pair adds 1 to its local expert's count
//    (atomics; the counts are cleared before the pass).
// 2. PLAN: one workgroup turns the counts into row offsets and first tiles (prefix sums) and
//    writes, for each of up to two ways of cutting the rank's experts into weight chunks
//    (w13's and w2's), each chunk's tile table — (expert within the chunk, first
//    row, end row, expert slot) per tile of that GEMM's rows (TMA for up, TMB for down: the
//    two GEMMs may take different tilings) — and the chunk's indirect dispatch
//    arguments (tiles, column tiles, split-K parts), so the grouped GEMMs are dispatched with the counts
//    they need without the host ever seeing them.
// 3. SCATTER: one thread per pair takes the next row of its expert (atomic) and writes the row
//    table entry (token, input scale, output scale) and the pair's row for the combine.
//
// The order of rows within an expert depends on the atomics, but no result does: every row
// of C is computed from its own row of A alone, and the combine sums a token's rows in choice
// order, so the output is the same bits run to run.

import { flatEntry } from './flat.js';

/** Bindings: 0 params (pairs), 1 selected i32, 2 slot of each global expert id (i32, -1: not local), 3 counts (atomic). */
export const COUNT_SHADER = /* wgsl */ `
struct Params { pairs: u32, E: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> selected: array<i32>;
@group(0) @binding(2) var<storage, read> slotOf: array<i32>;
@group(0) @binding(3) var<storage, read_write> counts: array<atomic<u32>>;

${flatEntry(128, 'i')}
  if (i >= p.pairs) { return; }
  let id = selected[i];
  if (id < 0 || u32(id) >= p.E) { return; }
  let s = slotOf[id];
  if (s >= 0) { atomicAdd(&counts[s], 1u); }
}
`;

/** The PLAN uniform: 12 words. */
export interface PlanParams {
  /** Local experts. */
  n: number;
  /** Rows per tile of the up GEMM (w13) and of the down GEMM (w2). */
  TMA: number;
  TMB: number;
  /** Experts per weight chunk, tile-table capacity per chunk (entries), column tiles, chunks: of w13 (A) and w2 (B). */
  perA: number;
  capA: number;
  colsA: number;
  chunksA: number;
  perB: number;
  capB: number;
  colsB: number;
  chunksB: number;
  /** The down GEMM's split-K parts: the z of w2's dispatches. */
  splitsB: number;
}

export function planParams(p: PlanParams): Uint32Array {
  return new Uint32Array([p.n, p.TMA, p.perA, p.capA, p.colsA, p.chunksA, p.perB, p.capB, p.colsB, p.chunksB, p.splitsB, p.TMB]);
}

/**
 * Bindings: 0 params, 1 counts, 2 offsets `[3n + 3]`: the row offsets `[n + 1]` (then the
 * scatter's fill counters), then each expert's first tile of A `[n + 1]` and of B `[n + 1]`;
 * 3 tiles of A (`chunksA × capA` vec4), 4 tiles of B, 5 indirect arguments (3 words per chunk
 * of A, then of B). One workgroup: the prefix sums of the row and tile counts 128 experts at a time (Hillis–Steele
 * in workgroup memory), then one thread per expert writes its tiles into its chunk's table,
 * and the first expert of each chunk the chunk's arguments.
 */
export const PLAN_SHADER = /* wgsl */ `
struct Params { n: u32, TMA: u32, perA: u32, capA: u32, colsA: u32, chunksA: u32, perB: u32, capB: u32, colsB: u32, chunksB: u32, splitsB: u32, TMB: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> counts: array<u32>;
@group(0) @binding(2) var<storage, read_write> offsets: array<u32>;
@group(0) @binding(3) var<storage, read_write> tilesA: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read_write> tilesB: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read_write> args: array<u32>;
var<workgroup> sh: array<u32, 128>;

// Inclusive prefix sum of v over the workgroup; the block's total is then sh[127] until the next call.
fn scan(li: u32, v: u32) -> u32 {
  workgroupBarrier();
  sh[li] = v;
  workgroupBarrier();
  for (var d = 1u; d < 128u; d = d * 2u) {
    var add = 0u;
    if (li >= d) { add = sh[li - d]; }
    workgroupBarrier();
    sh[li] = sh[li] + add;
    workgroupBarrier();
  }
  return sh[li];
}

// T0: where this GEMM's first tiles start in offsets.
fn writeTiles(s: u32, TM: u32, T0: u32, per: u32, cap: u32, cols: u32, argsAt: u32, isA: bool) {
  let c = s / per;
  let first = c * per;
  let local = offsets[T0 + s] - offsets[T0 + first];
  let end = offsets[s] + counts[s];
  var q = 0u;
  for (var m = offsets[s]; m < end; m += TM) {
    let tile = vec4<u32>(s - first, m, min(m + TM, end), s);
    if (isA) { tilesA[c * cap + local + q] = tile; } else { tilesB[c * cap + local + q] = tile; }
    q++;
  }
  if (s == first) {
    let last = min(p.n, first + per);
    args[argsAt + 3u * c] = offsets[T0 + last] - offsets[T0 + first];
    args[argsAt + 3u * c + 1u] = cols;
    args[argsAt + 3u * c + 2u] = select(p.splitsB, 1u, isA);
  }
}

@compute @workgroup_size(128)
fn main(@builtin(local_invocation_index) li: u32) {
  let TA0 = p.n + 1u;
  let TB0 = 2u * p.n + 2u;
  var rows = 0u;
  var totalA = 0u;
  var totalB = 0u;
  for (var b = 0u; b < p.n; b += 128u) {
    let s = b + li;
    var c = 0u;
    if (s < p.n) { c = counts[s]; }
    let tA = (c + p.TMA - 1u) / p.TMA;
    let tB = (c + p.TMB - 1u) / p.TMB;
    let r = scan(li, c);
    let blockRows = sh[127];
    let qA = scan(li, tA);
    let blockA = sh[127];
    let qB = scan(li, tB);
    let blockB = sh[127];
    if (s < p.n) {
      offsets[s] = rows + r - c;
      offsets[TA0 + s] = totalA + qA - tA;
      offsets[TB0 + s] = totalB + qB - tB;
    }
    rows += blockRows;
    totalA += blockA;
    totalB += blockB;
  }
  if (li == 0u) {
    offsets[p.n] = rows;
    offsets[TA0 + p.n] = totalA;
    offsets[TB0 + p.n] = totalB;
  }
  storageBarrier();
  for (var s = li; s < p.n; s += 128u) {
    writeTiles(s, p.TMA, TA0, p.perA, p.capA, p.colsA, 0u, true);
    writeTiles(s, p.TMB, TB0, p.perB, p.capB, p.colsB, 3u * p.chunksA, false);
  }
}
`;

/**
 * Bindings: 0 params, 1 selected, 2 weights, 3 slot of each expert id, 4 fill counters (the
 * PLAN's offsets, atomic), 5 row table `vec4<u32>` (token, input-scale bits, output-scale
 * bits, 0), 6 the row of every (token, slot) for the combine (0xffffffff: none); slot k is
 * the shared expert's row, `sharedRow0 + token`, where the rank has one.
 */
export const SCATTER_SHADER = /* wgsl */ `
struct Params { pairs: u32, k: u32, slots: u32, inputScale: u32, sharedRow0: u32, E: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> selected: array<i32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read> slotOf: array<i32>;
@group(0) @binding(4) var<storage, read_write> fill: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read_write> rows: array<vec4<u32>>;
@group(0) @binding(6) var<storage, read_write> pos: array<u32>;

${flatEntry(128, 'i')}
  if (i >= p.pairs) { return; }
  let t = i / p.k;
  let j = i % p.k;
  let id = selected[i];
  var s = -1;
  if (id >= 0 && u32(id) < p.E) { s = slotOf[id]; }
  if (s < 0) {
    pos[t * p.slots + j] = 0xffffffffu;
  } else {
    let row = atomicAdd(&fill[s], 1u);
    let w = weights[i];
    let inS = select(1.0, w, p.inputScale == 1u);
    let outS = select(w, 1.0, p.inputScale == 1u);
    rows[row] = vec4<u32>(t, bitcast<u32>(inS), bitcast<u32>(outS), 0u);
    pos[t * p.slots + j] = row;
  }
  if (j == 0u && p.slots > p.k) { pos[t * p.slots + p.k] = p.sharedRow0 + t; }
}
`;

/**
 * The row table of a batch of every token (the router's, the shared expert's): row t is
 * (t, 1, scale · σ(x_t · gate) where the model gates its shared expert, else scale).
 * Bindings: 0 params, 1 x `[T, H]`, 2 gate `[H]` (unused without), 3 rows.
 */
export const ALL_ROWS_SHADER = /* wgsl */ `
struct Params { T: u32, H: u32, gated: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gate: array<f32>;
@group(0) @binding(3) var<storage, read_write> rows: array<vec4<u32>>;

${flatEntry(64, 't')}
  if (t >= p.T) { return; }
  var s = p.scale;
  if (p.gated == 1u) {
    var z = 0.0;
    for (var c = 0u; c < p.H; c++) { z += x[t * p.H + c] * gate[c]; }
    s = s / (1.0 + exp(-z));
  }
  rows[t] = vec4<u32>(t, bitcast<u32>(1.0), bitcast<u32>(s), 0u);
}
`;

/**
 * The zero-compute (identity) experts' share, once for the whole block: `out[t, c] +=
 * Σ_j w[t, j] · x[t, c]` over the choices j of an id ≥ firstZero (longcat_flash).
 * Bindings: 0 params, 1 selected, 2 weights, 3 x, 4 out.
 */
export const ZERO_EXPERTS_SHADER = /* wgsl */ `
struct Params { T: u32, H: u32, k: u32, firstZero: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> selected: array<i32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

${flatEntry(128, 'i')}
  if (i >= p.T * p.H) { return; }
  let t = i / p.H;
  var s = out[i];
  for (var j = 0u; j < p.k; j++) {
    if (selected[t * p.k + j] >= i32(p.firstZero)) { s = s + weights[t * p.k + j] * x[i]; }
  }
  out[i] = s;
}
`;
