// Tokens grouped by expert on the GPU, from the selected ids and weights that the routing
// shader (or, for sparsemixer, the CPU) left in device buffers, so that no forward waits on
// the host between the router and the expert GEMMs. Per rank:
//
// 1. COUNT: one thread per routed (token, choice) pair adds 1 to its local expert's count
//    (atomics; the counts are cleared before the pass).
// 2. PLAN: one thread turns the counts into row offsets (a prefix sum over at most a few
//    hundred experts) and writes, for each of up to two ways of cutting the rank's experts into
//    weight chunks (w13's and w2's), each chunk's tile table — (expert within the chunk, first
//    row, end row, expert slot) per tile of TM rows — and the chunk's indirect dispatch
//    arguments (tiles, column tiles, 1), so the grouped GEMMs are dispatched with the counts
//    they need without the host ever seeing them.
// 3. SCATTER: one thread per pair takes the next row of its expert (atomic) and writes the row
//    table entry (token, input scale, output scale) and the pair's row for the combine.
//
// The order of rows within an expert depends on the atomics, but no result does: every row
// of C is computed from its own row of A alone, and the combine sums a token's rows in choice
// order, so the output is the same bits run to run.

/** Bindings: 0 params (pairs), 1 selected i32, 2 slot of each global expert id (i32, -1: not local), 3 counts (atomic). */
export const COUNT_SHADER = /* wgsl */ `
struct Params { pairs: u32, E: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> selected: array<i32>;
@group(0) @binding(2) var<storage, read> slotOf: array<i32>;
@group(0) @binding(3) var<storage, read_write> counts: array<atomic<u32>>;

@compute @workgroup_size(128)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 128u;
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
  /** Rows per tile. */
  TM: number;
  /** Experts per weight chunk, tile-table capacity per chunk (entries), column tiles, chunks: of w13 (A) and w2 (B). */
  perA: number;
  capA: number;
  colsA: number;
  chunksA: number;
  perB: number;
  capB: number;
  colsB: number;
  chunksB: number;
}

export function planParams(p: PlanParams): Uint32Array {
  return new Uint32Array([p.n, p.TM, p.perA, p.capA, p.colsA, p.chunksA, p.perB, p.capB, p.colsB, p.chunksB, 0, 0]);
}

/**
 * Bindings: 0 params, 1 counts, 2 offsets `[n + 1]` (then the scatter's fill counters), 3 tiles
 * of A (`chunksA × capA` vec4), 4 tiles of B, 5 indirect arguments (3 words per chunk of A,
 * then of B). One thread: the work is a few hundred experts and about rows / TM tiles.
 */
export const PLAN_SHADER = /* wgsl */ `
struct Params { n: u32, TM: u32, perA: u32, capA: u32, colsA: u32, chunksA: u32, perB: u32, capB: u32, colsB: u32, chunksB: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> counts: array<u32>;
@group(0) @binding(2) var<storage, read_write> offsets: array<u32>;
@group(0) @binding(3) var<storage, read_write> tilesA: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read_write> tilesB: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read_write> args: array<u32>;

@compute @workgroup_size(1)
fn main() {
  var off = 0u;
  for (var s = 0u; s < p.n; s++) { offsets[s] = off; off += counts[s]; }
  offsets[p.n] = off;
  for (var c = 0u; c < p.chunksA; c++) {
    var count = 0u;
    for (var s = c * p.perA; s < min(p.n, (c + 1u) * p.perA); s++) {
      let end = offsets[s] + counts[s];
      for (var m = offsets[s]; m < end; m += p.TM) { tilesA[c * p.capA + count] = vec4<u32>(s - c * p.perA, m, min(m + p.TM, end), s); count++; }
    }
    args[3u * c] = count; args[3u * c + 1u] = p.colsA; args[3u * c + 2u] = 1u;
  }
  let b0 = 3u * p.chunksA;
  for (var c = 0u; c < p.chunksB; c++) {
    var count = 0u;
    for (var s = c * p.perB; s < min(p.n, (c + 1u) * p.perB); s++) {
      let end = offsets[s] + counts[s];
      for (var m = offsets[s]; m < end; m += p.TM) { tilesB[c * p.capB + count] = vec4<u32>(s - c * p.perB, m, min(m + p.TM, end), s); count++; }
    }
    args[b0 + 3u * c] = count; args[b0 + 3u * c + 1u] = p.colsB; args[b0 + 3u * c + 2u] = 1u;
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

@compute @workgroup_size(128)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 128u;
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

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = gid.x + gid.y * nwg.x * 64u;
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

@compute @workgroup_size(128)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 128u;
  if (i >= p.T * p.H) { return; }
  let t = i / p.H;
  var s = out[i];
  for (var j = 0u; j < p.k; j++) {
    if (selected[t * p.k + j] >= i32(p.firstZero)) { s = s + weights[t * p.k + j] * x[i]; }
  }
  out[i] = s;
}
`;
