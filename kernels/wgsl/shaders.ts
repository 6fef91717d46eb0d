// The hand-written WGSL of the MoE forward: one grouped GEMM per projection for all the
// experts of a weight chunk, and one combine.
//
// The GEMM computes C = A·Bᵀ for many experts in one dispatch. The rows of A that one expert
// serves are contiguous in a sorted row table (tokens grouped by expert on the GPU:
// grouping.ts); a tile table cuts each expert's rows into tiles of TM rows, and workgroup
// (x, y) computes tile x against column tile y of that expert's B, whose base the tile names.
// The number of row tiles is known only on the GPU, so routed GEMMs are dispatched indirectly.
// Inside a tile it is the classic register-blocked shared-memory GEMM: a wx × wy workgroup,
// each thread an rm × 8 block of C held in named registers (straight-line FMAs the compiler
// cannot spill through a dynamically indexed array), K walked in bk-deep slabs staged through
// workgroup memory as vec4 along M and N, the next slab's global loads issued before the
// current one is multiplied. A thread's rows are 4ty..4ty+3 (and TM/2 + the same), its
// columns 4tx..4tx+3 and TN/2 + 4tx..4tx+3, so that every workgroup-memory read is one vec4.
//
// Two modes:
// - `up`: A = x gathered through the row table (token, input scale); the tile's two column
//   halves are the gate and the up rows of w13 for the same TN/2 intermediate columns, so the
//   activation (SiLU-gated, gpt_oss's clamped form, or relu² of the up half for non-gated
//   experts; with the w13 bias) runs in the epilogue
//   and only act = f(gate, up) is written.
// - `down`: A read directly by row (act, or x for the router); the epilogue adds the w2 bias,
//   multiplies by the row's output scale (routing weight) and writes y.
// B is read as stored: f32, or bf16 / f16 pairs unpacked on the GPU (never widened on the
// CPU). When K is a multiple of 4, loads are 16-byte (f32) or 8-byte (16-bit) vectors;
// otherwise an element-wise variant with the same structure handles any K.

import { flatEntry } from './flat.js';

export type WeightDtype = 'f32' | 'bf16' | 'f16';
export type GemmMode = 'up' | 'down';

/** What every tiling may add: the down GEMM's K cut into `splitK` parts (kChunkOf), summed by the combine. */
interface SplitK {
  splitK?: number;
}

/** The register-blocked shared-memory GEMM (see above). */
export interface TiledTiling extends SplitK {
  kind?: 'tiled';
  /** Workgroup size: wx threads along N (8 columns each), wy along M (rm rows each). */
  wx: number;
  wy: number;
  /** Rows of C per thread: 4 (one group) or 8 (two groups TM/2 apart). */
  rm: 4 | 8;
  /** K per staged slab, a multiple of 4. */
  bk: number;
}

/**
 * The few-rows GEMM (`skinny`): for experts that get a handful of tokens each, where only the
 * weights' bandwidth counts. A workgroup owns `pairs` pairs of B rows (in `up` mode the gate
 * and the up row of one intermediate column; in `down` mode output columns n and n + pairs)
 * and one tile of at most `tm` rows of A; `lanes` threads walk K for each pair, 8 elements a
 * step (one 16-byte load of bf16 / f16, two of f32, consecutive lanes on consecutive bytes),
 * each B load multiplied into every row of the tile, and sum their partial dots through
 * workgroup memory at the end. No slab staging, one barrier.
 */
export interface SkinnyTiling extends SplitK {
  kind: 'skinny';
  lanes: number;
  pairs: number;
  /** Rows of A per tile, 1 to 8. */
  tm: number;
}

export type GemmTiling = TiledTiling | SkinnyTiling;

/**
 * Split-K of the down GEMM: where its output has few tiles against a long K (Mixtral's down,
 * 4096 columns against K 14336, at a few hundred rows), the K walk is cut into `splitK` parts,
 * one dispatch z each, every part writing its own partial row of y (row r's part z at
 * r·splits + z; the bias in part 0 only), and the combine sums the parts with the slots.
 * Parts are kChunk long (a multiple of 32, so no vector load straddles a cut); parts past K
 * write zeros.
 */
export function kChunkOf(K: number, splits: number): number {
  return Math.max(32, Math.ceil(K / splits / 32) * 32);
}

export interface GemmVariant {
  mode: GemmMode;
  tiling: GemmTiling;
  dtype: WeightDtype;
  /** Vector loads (`vecLoads`). */
  vec: boolean;
}

/**
 * The few-rows tiling taken without autotune up to SKINNY_ROWS rows per expert: on the H100
 * (bench/results/gpu/gpu-h100-2026-12-07T17-50-31Z.json) the autotune's best or within 10% of it
 * at 16 tokens of every shape, within 30% at DeepSeek-V3's 256 (8 rows per expert), where
 * every tiled candidate took 1.5× longer or more.
 */
export const DEFAULT_SKINNY: SkinnyTiling = { kind: 'skinny', lanes: 16, pairs: 16, tm: 4 };
/** Rows per expert up to which the heuristic takes DEFAULT_SKINNY. */
export const SKINNY_ROWS = 8;

/**
 * The tilings the autotune tries, large tiles for many rows per expert down to thin ones for
 * the few-token experts of many-expert models (where each weight is read for one or two rows).
 */
export const CANDIDATE_TILINGS: GemmTiling[] = [
  { wx: 16, wy: 16, rm: 8, bk: 8 },
  { wx: 16, wy: 16, rm: 8, bk: 16 },
  { wx: 16, wy: 8, rm: 8, bk: 16 },
  // About 64 rows per expert (Mixtral at 256 tokens, DeepSeek-V3 at 2048): 64- and 32-row tiles
  // with less workgroup memory, or 8 rows a thread, for more workgroups per multiprocessor.
  { wx: 16, wy: 8, rm: 8, bk: 8 },
  { wx: 16, wy: 4, rm: 8, bk: 16 },
  { wx: 16, wy: 8, rm: 4, bk: 16 },
  { wx: 32, wy: 4, rm: 4, bk: 16 },
  { wx: 16, wy: 4, rm: 4, bk: 16 },
  // Deeper slabs for one or two rows per expert, where only the weights' bandwidth counts.
  { wx: 8, wy: 4, rm: 4, bk: 32 },
  { wx: 16, wy: 2, rm: 4, bk: 24 },
  // A few hundred rows against a long down K (Mixtral's 14336): the down GEMM's K in 4 parts.
  { wx: 16, wy: 8, rm: 8, bk: 16, splitK: 4 },
  { wx: 16, wy: 4, rm: 4, bk: 16, splitK: 4 },
  // Few rows per expert: weights streamed once per tile of tm rows.
  { kind: 'skinny', lanes: 32, pairs: 8, tm: 4 },
  { kind: 'skinny', lanes: 16, pairs: 16, tm: 4 },
  { kind: 'skinny', lanes: 16, pairs: 8, tm: 8 },
];

/** The rows of C (tokens) one workgroup computes. */
export const tileRows = (t: GemmTiling): number => (t.kind === 'skinny' ? t.tm : t.wy * t.rm);
/** The columns of C one workgroup computes (in `up` mode: TN/2 gate and TN/2 up columns). */
export const tileCols = (t: GemmTiling): number => (t.kind === 'skinny' ? 2 * t.pairs : t.wx * 8);
/** The workgroup's size (x, y). */
export const workgroupSize = (t: GemmTiling): [number, number] => (t.kind === 'skinny' ? [t.lanes * t.pairs, 1] : [t.wx, t.wy]);

/** Workgroup memory one tiling needs, in bytes. */
export const workgroupBytes = (t: GemmTiling): number => (t.kind === 'skinny' ? 4 * t.lanes * skinnyStride(t) : 4 * t.bk * (tileRows(t) + tileCols(t)));

/** Words per lane of the skinny reduction buffer: 2 rows × tm per pair, padded to an odd count (no bank conflicts when lanes write). */
const skinnyStride = (t: SkinnyTiling): number => 2 * t.pairs * t.tm + 1;

/**
 * Whether a GEMM of depth K takes the vector loads: every row of A and B then starts on a
 * vector boundary and no vector crosses its end (the tiled kernel's 4 elements; the skinny
 * kernel's steps of 8).
 */
export const vecLoads = (t: GemmTiling, K: number): boolean => K % (t.kind === 'skinny' ? 8 : 4) === 0;

export function checkTiling(t: GemmTiling): void {
  const int = (v: number) => Number.isInteger(v) && v > 0;
  const ok = t.kind === 'skinny'
    ? int(t.lanes) && int(t.pairs) && int(t.tm) && t.tm <= 8
    : int(t.wx) && int(t.wy) && (t.rm === 4 || t.rm === 8) && int(t.bk) && t.bk % 4 === 0;
  const splitOk = t.splitK === undefined || (int(t.splitK) && t.splitK <= 64);
  if (!ok || !splitOk) {
    const rule = `${t.kind === 'skinny' ? 'lanes, pairs positive integers, tm 1 to 8' : 'wx, wy positive integers, rm 4 or 8, bk a positive multiple of 4'}, splitK 1 to 64`;
    throw new RangeError(`tiling ${JSON.stringify(t)}: ${rule}`);
  }
}

/** Uniform block of the GEMM: 12 words. */
export interface GemmParams {
  /** Columns of C that exist: R (intermediate) in `up` mode, the output width in `down` mode. */
  N: number;
  K: number;
  /** Rows of B per expert (2R in `up` mode, N in `down` mode), for the expert's base and bias. */
  rowsB: number;
  /** First up row of B within an expert (`up` mode: R). */
  upRow: number;
  ldc: number;
  /** Row offset added to every row of C written. */
  cOff: number;
  hasBias: boolean;
  /** `down` only: K cut into `splits` parts of kChunk (kChunkOf), part z of row m written to C row (m + cOff)·splits + z. */
  splits?: number;
  kChunk?: number;
  /** The activation: 0 SiLU-gated, 1 gpt_oss's clamped form, 2 relu² of the up half (non-gated experts), 3 SiLU-gated with gate and up clamped at limit (glm5_next), 4 clamped after SiLU (step3p7), 5 GeGLU (gemma4), 6 SiLU of the up half (doge). */
  mode: number;
  alpha: number;
  limit: number;
}

export function gemmParams(p: GemmParams): Uint32Array {
  const words = new Uint32Array(12);
  words.set([p.N, p.K, p.rowsB, p.upRow, p.ldc, p.cOff, p.hasBias ? 1 : 0, p.mode]);
  new Float32Array(words.buffer).set([p.alpha, p.limit], 8);
  words.set([p.kChunk ?? p.K, p.splits ?? 1], 10);
  return words;
}

function loadBCode(dtype: WeightDtype, vec: boolean): { decl: string; fn: string } {
  if (vec) {
    if (dtype === 'f32') {
      return { decl: 'array<vec4<f32>>', fn: 'fn loadB(e: u32) -> vec4<f32> { return B[e / 4u]; }' };
    }
    const unpack = dtype === 'bf16'
      ? 'vec4<f32>(bitcast<f32>(w.x << 16u), bitcast<f32>(w.x & 0xffff0000u), bitcast<f32>(w.y << 16u), bitcast<f32>(w.y & 0xffff0000u))'
      : 'vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y))';
    return { decl: 'array<vec2<u32>>', fn: `fn loadB(e: u32) -> vec4<f32> { let w = B[e / 4u]; return ${unpack}; }` };
  }
  // Element-wise: e is the first of 4 consecutive elements; those at or past `end` read as 0.
  if (dtype === 'f32') {
    return {
      decl: 'array<f32>',
      fn: `fn loadB1(e: u32, end: u32) -> f32 { if (e < end) { return B[e]; } return 0.0; }
fn loadB(e: u32, end: u32) -> vec4<f32> { return vec4<f32>(loadB1(e, end), loadB1(e + 1u, end), loadB1(e + 2u, end), loadB1(e + 3u, end)); }`,
    };
  }
  const half = dtype === 'bf16'
    ? 'let w = B[e / 2u]; if ((e & 1u) == 0u) { return bitcast<f32>(w << 16u); } return bitcast<f32>(w & 0xffff0000u);'
    : 'let w = unpack2x16float(B[e / 2u]); return w[e & 1u];';
  return {
    decl: 'array<u32>',
    fn: `fn loadB1(e: u32, end: u32) -> f32 { if (e >= end) { return 0.0; } ${half} }
fn loadB(e: u32, end: u32) -> vec4<f32> { return vec4<f32>(loadB1(e, end), loadB1(e + 1u, end), loadB1(e + 2u, end), loadB1(e + 3u, end)); }`,
  };
}

/** The GEMM's uniform and bindings (see `gemmShader`), with A and B declared as the variant reads them. */
function gemmBindings(aDecl: string, bDecl: string): string {
  return /* wgsl */ `struct Params { N: u32, K: u32, rowsB: u32, upRow: u32, ldc: u32, cOff: u32, hasBias: u32, mode: u32, alpha: f32, limit: f32, kChunk: u32, splits: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> tiles: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> rows: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> A: ${aDecl};
@group(0) @binding(4) var<storage, read> B: ${bDecl};
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> C: array<f32>;`;
}

/** The epilogue's bias and activation (GemmParams.hasBias, mode, alpha, limit). */
const EPILOGUE_FNS = /* wgsl */ `
fn biasOf(slot: u32, n: u32) -> f32 {
  if (p.hasBias == 1u) { return bias[slot * p.rowsB + n]; }
  return 0.0;
}

// A split-K part's share of the bias: all of it in part 0.
fn partBias(z: u32, slot: u32, n: u32) -> f32 {
  if (z == 0u) { return biasOf(slot, n); }
  return 0.0;
}

fn activate(gate: f32, upv: f32, slot: u32, j: u32) -> f32 {
  var g = gate + biasOf(slot, j);
  var u = upv + biasOf(slot, p.upRow + j);
  if (p.mode == 2u) {
    let r = max(u, 0.0);
    return r * r;
  }
  if (p.mode == 1u) {
    g = min(g, p.limit);
    u = clamp(u, -p.limit, p.limit);
    return (u + 1.0) * (g / (1.0 + exp(-p.alpha * g)));
  }
  if (p.mode == 6u) {
    // doge: SiLU of the up half alone (non-gated single-neuron experts).
    g = u;
    u = 1.0;
  }
  if (p.mode == 3u) {
    // glm5_next: SiLU-gated with gate and up clamped first.
    g = min(g, p.limit);
    u = clamp(u, -p.limit, p.limit);
  }
  if (p.mode == 5u) {
    // gemma4's GeGLU: tanh GELU, tanh from exp(-2|y|) (an overflowing exp is undefined in WGSL).
    let y = 0.7978845608028654 * (g + 0.044715 * g * g * g);
    let ey = exp(-2.0 * abs(y));
    let th = sign(y) * (1.0 - ey) / (1.0 + ey);
    return 0.5 * g * (1.0 + th) * u;
  }
  if (p.mode == 4u) {
    // step3p7: the clamp after SiLU.
    return min(g / (1.0 + exp(-g)), p.limit) * clamp(u, -p.limit, p.limit);
  }
  return (g / (1.0 + exp(-g))) * u;
}
`;

/**
 * The grouped GEMM of one variant. Bindings: 0 params, 1 tiles `vec4<u32>` (expert within
 * the weight chunk, first row, end row, expert slot for the bias), 2 rows `vec4<u32>` (row of
 * A, input-scale bits, output-scale bits, unused), 3 A (f32), 4 B (the chunk, as stored),
 * 5 bias (f32, `[slots, rowsB]`), 6 C (f32).
 */
export function gemmShader(v: GemmVariant): string {
  const t = v.tiling;
  checkTiling(t);
  return t.kind === 'skinny' ? skinnyShader(v, t) : tiledShader(v, t);
}

/** A (f32) as vec4s from element e (the first of 4; those at or past `end` read as 0 without vector loads). */
function loadACode(vec: boolean): { decl: string; fn: string } {
  return vec
    ? { decl: 'array<vec4<f32>>', fn: 'fn loadA(e: u32, end: u32) -> vec4<f32> { return A[e / 4u]; }' }
    : {
      decl: 'array<f32>',
      fn: `fn loadA1(e: u32, end: u32) -> f32 { if (e < end) { return A[e]; } return 0.0; }
fn loadA(e: u32, end: u32) -> vec4<f32> { return vec4<f32>(loadA1(e, end), loadA1(e + 1u, end), loadA1(e + 2u, end), loadA1(e + 3u, end)); }`,
    };
}

function tiledShader(v: GemmVariant, t: TiledTiling): string {
  const TM = tileRows(t);
  const TN = tileCols(t);
  const threads = t.wx * t.wy;
  const Q = t.bk / 4; // k-quads per slab
  const unitsA = TM * Q;
  const unitsB = TN * Q;
  const perA = Math.ceil(unitsA / threads);
  const perB = Math.ceil(unitsB / threads);
  const up = v.mode === 'up';
  const b = loadBCode(v.dtype, v.vec);
  const a = loadACode(v.vec);
  const callB = (e: string, end: string) => (v.vec ? `loadB(${e})` : `loadB(${e}, ${end})`);

  // Per-thread load units, fixed for the whole K walk: their rows are looked up once.
  const setup: string[] = [];
  const fetch: string[] = [];
  const store: string[] = [];
  for (let i = 0; i < perA; i++) {
    const guard = (i + 1) * threads > unitsA ? `li + ${i * threads}u < ${unitsA}u` : 'true';
    setup.push(`let ua${i} = li + ${i * threads}u;
  let ra${i} = ua${i} / ${Q}u;
  let qa${i} = ua${i} % ${Q}u;
  let okA${i} = ${guard} && m0 + ra${i} < mEnd;
  var baseA${i} = 0u;
  var scA${i} = 1.0;
  if (okA${i}) {
    ${up ? `let rw = rows[m0 + ra${i}]; baseA${i} = rw.x * p.K; scA${i} = bitcast<f32>(rw.y);` : `baseA${i} = (m0 + ra${i}) * p.K;`}
  }
  var va${i} = vec4<f32>(0.0);`);
    fetch.push(`{ let k = KB + 4u * qa${i}; va${i} = vec4<f32>(0.0); if (okA${i} && k < kEnd) { va${i} = scA${i} * loadA(baseA${i} + k, baseA${i} + p.K); } }`);
    store.push(`if (${guard}) { let s = 4u * qa${i} * ${TM / 4}u + ra${i} / 4u; let c = ra${i} % 4u;
      As[s][c] = va${i}.x; As[s + ${TM / 4}u][c] = va${i}.y; As[s + ${TM / 2}u][c] = va${i}.z; As[s + ${(3 * TM) / 4}u][c] = va${i}.w; }`);
  }
  for (let i = 0; i < perB; i++) {
    const guard = (i + 1) * threads > unitsB ? `li + ${i * threads}u < ${unitsB}u` : 'true';
    // Logical column n of the tile → row of B within the expert.
    const rowOf = up
      ? `let h${i} = select(0u, 1u, rb${i} >= ${TN / 2}u); let j${i} = n0 + rb${i} - h${i} * ${TN / 2}u; let okN${i} = j${i} < p.N; let brow${i} = j${i} + h${i} * p.upRow;`
      : `let brow${i} = n0 + rb${i}; let okN${i} = brow${i} < p.N;`;
    setup.push(`let ub${i} = li + ${i * threads}u;
  let rb${i} = ub${i} / ${Q}u;
  let qb${i} = ub${i} % ${Q}u;
  ${rowOf}
  let okB${i} = ${guard} && okN${i};
  let baseB${i} = bBase + brow${i} * p.K;
  var vb${i} = vec4<f32>(0.0);`);
    fetch.push(`{ let k = KB + 4u * qb${i}; vb${i} = vec4<f32>(0.0); if (okB${i} && k < kEnd) { vb${i} = ${callB(`baseB${i} + k`, `baseB${i} + p.K`)}; } }`);
    store.push(`if (${guard}) { let s = 4u * qb${i} * ${TN / 4}u + rb${i} / 4u; let c = rb${i} % 4u;
      Bs[s][c] = vb${i}.x; Bs[s + ${TN / 4}u][c] = vb${i}.y; Bs[s + ${TN / 2}u][c] = vb${i}.z; Bs[s + ${(3 * TN) / 4}u][c] = vb${i}.w; }`);
  }

  // The multiply of one k: named accumulators acc{row}_{half}, one vec4 of 4 columns each.
  const groups = t.rm / 4;
  const accs: string[] = [];
  const mul: string[] = [`let b0 = Bs[kk * ${TN / 4}u + lid.x];`, `let b1 = Bs[kk * ${TN / 4}u + ${TN / 8}u + lid.x];`];
  for (let g = 0; g < groups; g++) {
    mul.push(`let a${g} = As[kk * ${TM / 4}u + ${g * (TM / 8)}u + lid.y];`);
    for (let c = 0; c < 4; c++) {
      const r = g * 4 + c;
      for (let h = 0; h < 2; h++) {
        accs.push(`var acc${r}_${h} = vec4<f32>(0.0);`);
        mul.push(`acc${r}_${h} = fma(vec4<f32>(a${g}[${c}]), b${h}, acc${r}_${h});`);
      }
    }
  }

  // Epilogue: tile row r of thread → row m of C.
  const out: string[] = [];
  for (let g = 0; g < groups; g++) {
    for (let c = 0; c < 4; c++) {
      const r = g * 4 + c;
      const m = `m0 + ${g * (TM / 2)}u + 4u * lid.y + ${c}u`;
      if (up) {
        const cols = [0, 1, 2, 3].map((q) => `{ let j = n0 + 4u * lid.x + ${q}u; if (j < p.N) { C[(m + p.cOff) * p.ldc + j] = activate(acc${r}_0[${q}], acc${r}_1[${q}], slot, j); } }`);
        out.push(`{ let m = ${m}; if (m < mEnd) { ${cols.join(' ')} } }`);
      } else {
        const cols = [0, 1, 2, 3].flatMap((q) => [0, 1].map((h) => `{ let n = n0 + ${h * (TN / 2)}u + 4u * lid.x + ${q}u; if (n < p.N) { C[((m + p.cOff) * p.splits + wg.z) * p.ldc + n] = s * (acc${r}_${h}[${q}] + partBias(wg.z, slot, n)); } }`));
        out.push(`{ let m = ${m}; if (m < mEnd) { let s = bitcast<f32>(rows[m].z); ${cols.join(' ')} } }`);
      }
    }
  }

  return /* wgsl */ `
${gemmBindings(a.decl, b.decl)}
var<workgroup> As: array<vec4<f32>, ${(t.bk * TM) / 4}>;
var<workgroup> Bs: array<vec4<f32>, ${(t.bk * TN) / 4}>;

${a.fn}
${b.fn}
${EPILOGUE_FNS}
@compute @workgroup_size(${t.wx}, ${t.wy})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let tile = tiles[wg.x];
  let m0 = tile.y;
  let mEnd = tile.z;
  let slot = tile.w;
  let bBase = tile.x * p.rowsB * p.K;
  let n0 = wg.y * ${up ? TN / 2 : TN}u;
  ${setup.join('\n  ')}
  ${accs.join('\n  ')}
  let kBegin = wg.z * p.kChunk;
  let kEnd = min(p.K, kBegin + p.kChunk);
  var k0 = kBegin;
  ${fetch.join('\n  ').replaceAll('KB', 'kBegin')}
  for (; k0 < kEnd; k0 += ${t.bk}u) {
    ${store.join('\n    ')}
    workgroupBarrier();
    if (k0 + ${t.bk}u < kEnd) {
      let kn = k0 + ${t.bk}u;
      ${fetch.join('\n      ').replaceAll('KB', 'kn')}
    }
    for (var kk = 0u; kk < ${t.bk}u; kk++) {
      ${mul.join('\n      ')}
    }
    workgroupBarrier();
  }
  ${out.join('\n  ')}
}
`;
}

/**
 * Eight consecutive weights of B from element e as two vec4s: one 16-byte load of bf16 / f16
 * (vector variant, e a multiple of 8), else two of the tiled kernel's 4-element loads.
 */
function loadB8Code(dtype: WeightDtype, vec: boolean): { decl: string; fn: string } {
  if (vec && dtype !== 'f32') {
    const half = (w: string) => (dtype === 'bf16'
      ? `vec4<f32>(bitcast<f32>(${w}.x << 16u), bitcast<f32>(${w}.x & 0xffff0000u), bitcast<f32>(${w}.y << 16u), bitcast<f32>(${w}.y & 0xffff0000u))`
      : `vec4<f32>(unpack2x16float(${w}.x), unpack2x16float(${w}.y))`);
    return { decl: 'array<vec4<u32>>', fn: `fn loadB8(e: u32, end: u32) -> V8 { let w = B[e / 8u]; return V8(${half('w')}, ${half('w.zw')}); }` };
  }
  const b = loadBCode(dtype, vec);
  const call = (e: string) => (vec ? `loadB(${e})` : `loadB(${e}, end)`);
  return { decl: b.decl, fn: `${b.fn}\nfn loadB8(e: u32, end: u32) -> V8 { return V8(${call('e')}, ${call('e + 4u')}); }` };
}

/** The few-rows GEMM (SkinnyTiling): same bindings, tile table and epilogue as the tiled one. */
function skinnyShader(v: GemmVariant, t: SkinnyTiling): string {
  const { lanes: L, pairs: P, tm: TM } = t;
  const threads = L * P;
  const stride = skinnyStride(t);
  const up = v.mode === 'up';
  const a = loadACode(v.vec);
  const b = loadB8Code(v.dtype, v.vec);
  const rows = Array.from({ length: TM }, (_, r) => r);
  // Pair g's two rows of B within the expert, and whether each exists.
  const rowsOfPair = up
    ? `let j = wg.y * ${P}u + g; let row0 = j; let row1 = p.upRow + j; let ok0 = j < p.N; let ok1 = ok0;`
    : `let row0 = wg.y * ${2 * P}u + g; let row1 = row0 + ${P}u; let ok0 = row0 < p.N; let ok1 = row1 < p.N;`;
  const aSetup = rows.map((r) => `var aB${r} = 0u;
  if (${r}u < nr) { ${up ? `aB${r} = rows[m0 + ${r}u].x * p.K;` : `aB${r} = (m0 + ${r}u) * p.K;`} }
  var c0_${r} = 0.0;
  var c1_${r} = 0.0;`);
  const step = rows.map((r) => `if (${r}u < nr) { let x = V8(loadA(aB${r} + k, aB${r} + p.K), loadA(aB${r} + k + 4u, aB${r} + p.K)); c0_${r} += dot8(x, w0); c1_${r} += dot8(x, w1); }`);
  const park = rows.map((r) => `red[lane * ${stride}u + ${2 * TM}u * g + ${r}u] = c0_${r}; red[lane * ${stride}u + ${2 * TM}u * g + ${TM + r}u] = c1_${r};`);
  const epilogue = up
    ? `let jj = wg.y * ${P}u + gg; if (jj < p.N) { let sc = bitcast<f32>(rows[m].y); C[(m + p.cOff) * p.ldc + jj] = activate(sc * s0, sc * s1, slot, jj); }`
    : `let n = wg.y * ${2 * P}u + gg; let sc = bitcast<f32>(rows[m].z);
      let c = ((m + p.cOff) * p.splits + wg.z) * p.ldc;
      if (n < p.N) { C[c + n] = sc * (s0 + partBias(wg.z, slot, n)); }
      if (n + ${P}u < p.N) { C[c + n + ${P}u] = sc * (s1 + partBias(wg.z, slot, n + ${P}u)); }`;
  return /* wgsl */ `
${gemmBindings(a.decl, b.decl)}
struct V8 { lo: vec4<f32>, hi: vec4<f32> }
var<workgroup> red: array<f32, ${L * stride}>;

${a.fn}
${b.fn}
fn dot8(x: V8, w: V8) -> f32 { return dot(x.lo, w.lo) + dot(x.hi, w.hi); }
${EPILOGUE_FNS}
@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let tile = tiles[wg.x];
  let m0 = tile.y;
  let nr = tile.z - tile.y;
  let slot = tile.w;
  let bBase = tile.x * p.rowsB * p.K;
  let g = li / ${L}u;
  let lane = li % ${L}u;
  ${rowsOfPair}
  let b0 = bBase + row0 * p.K;
  let b1 = bBase + row1 * p.K;
  ${aSetup.join('\n  ')}
  let kEnd = min(p.K, wg.z * p.kChunk + p.kChunk);
  for (var k = wg.z * p.kChunk + 8u * lane; k < kEnd; k += ${8 * L}u) {
    var w0 = V8(vec4<f32>(0.0), vec4<f32>(0.0));
    var w1 = w0;
    if (ok0) { w0 = loadB8(b0 + k, b0 + p.K); }
    if (ok1) { w1 = loadB8(b1 + k, b1 + p.K); }
    ${step.join('\n    ')}
  }
  ${park.join('\n  ')}
  workgroupBarrier();
  for (var o = li; o < ${P * TM}u; o += ${threads}u) {
    let gg = o / ${TM}u;
    let r = o % ${TM}u;
    if (r < nr) {
      var s0 = 0.0;
      var s1 = 0.0;
      for (var l = 0u; l < ${L}u; l++) {
        s0 += red[l * ${stride}u + ${2 * TM}u * gg + r];
        s1 += red[l * ${stride}u + ${2 * TM}u * gg + ${TM}u + r];
      }
      let m = m0 + r;
      ${epilogue}
    }
  }
}
`;
}

/**
 * `out[t, c] = (accumulate ? out[t, c] : 0) + Σ_s Σ_z y[pos[t·S + s]·splits + z, c]` over the
 * S slots of token t whose position is not 0xffffffff and the down GEMM's split-K parts: the
 * weighted expert outputs (already scaled in the down GEMM), summed per token in one
 * dispatch, deterministic (no atomics).
 */
export const COMBINE_SHADER = /* wgsl */ `
struct Params { T: u32, H: u32, S: u32, accumulate: u32, splits: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pos: array<u32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

${flatEntry(128, 'i')}
  if (i >= p.T * p.H) { return; }
  let t = i / p.H;
  let c = i % p.H;
  var s = 0.0;
  if (p.accumulate == 1u) { s = out[i]; }
  for (var j = 0u; j < p.S; j++) {
    let r = pos[t * p.S + j];
    if (r != 0xffffffffu) {
      for (var z = 0u; z < p.splits; z++) { s = s + y[(r * p.splits + z) * p.H + c]; }
    }
  }
  out[i] = s;
}
`;
