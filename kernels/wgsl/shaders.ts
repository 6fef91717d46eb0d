// The hand-written WGSL of the MoE forward. The GEMM is the classic shared-memory tiling:
// a WX × WY workgroup computes a (WY·RM) × (WX·RN) tile of C = A·B^T, each thread an
// RM × RN block held in registers, K walked in BK-wide slabs staged through workgroup
// memory, so each global value is read once per tile instead of once per product. Rows of
// A are gathered (and scaled) through a `rows` table, which is how tokens are grouped by
// expert without a copy. Threads own strided rows/columns (t, t+WX, ...) so that reads of
// the staged B slab hit distinct banks and reads of the A slab broadcast.

export interface GemmTiling {
  /** Workgroup size: wx threads along N, wy along M. */
  wx: number;
  wy: number;
  /** Rows and columns of C per thread; the tile is wy·rm × wx·rn. */
  rm: number;
  rn: number;
  /** K per staged slab. */
  bk: number;
}

/** 64 × 64 tiles, 4 × 4 per thread, 16-deep slabs: 8 KiB of workgroup memory, 256 threads. */
export const DEFAULT_TILING: GemmTiling = { wx: 16, wy: 16, rm: 4, rn: 4, bk: 16 };
/** For devices capped at 128 invocations per workgroup (WebGPU compatibility mode): 32 × 64 tiles. */
export const COMPAT_TILING: GemmTiling = { wx: 16, wy: 8, rm: 4, rn: 4, bk: 16 };

/** The tile of C one workgroup computes. */
export const tileRows = (t: GemmTiling): number => t.wy * t.rm;
export const tileCols = (t: GemmTiling): number => t.wx * t.rn;

/**
 * `C[m, n] = Σ_k scale_m · A[row_m, k] · B[n, k]` for m < M, n < N, where
 * `rows[2m] = row_m` and `rows[2m+1] = bitcast<u32>(scale_m)`.
 */
export function gemmShader(t: GemmTiling): string {
  const TM = tileRows(t);
  const TN = tileCols(t);
  const threads = t.wx * t.wy;
  const loadsA = (TM * t.bk) / threads;
  const loadsB = (TN * t.bk) / threads;
  if (!Number.isInteger(loadsA) || !Number.isInteger(loadsB)) throw new RangeError(`tiling ${JSON.stringify(t)}: the tiles do not divide among ${threads} threads`);
  return /* wgsl */ `
struct Params { M: u32, N: u32, K: u32, lda: u32, ldb: u32, ldc: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> rows: array<u32>;
@group(0) @binding(2) var<storage, read> A: array<f32>;
@group(0) @binding(3) var<storage, read> B: array<f32>;
@group(0) @binding(4) var<storage, read_write> C: array<f32>;
var<workgroup> As: array<f32, ${TM * t.bk}>;
var<workgroup> Bs: array<f32, ${TN * t.bk}>;

@compute @workgroup_size(${t.wx}, ${t.wy})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let m0 = wg.y * ${TM}u;
  let n0 = wg.x * ${TN}u;
  var acc: array<f32, ${t.rm * t.rn}>;
  var a: array<f32, ${t.rm}>;
  var b: array<f32, ${t.rn}>;
  for (var k0 = 0u; k0 < p.K; k0 += ${t.bk}u) {
    for (var i = 0u; i < ${loadsA}u; i++) {
      let e = li + i * ${threads}u;
      let r = e / ${t.bk}u;
      let c = e % ${t.bk}u;
      let m = m0 + r;
      let k = k0 + c;
      var v = 0.0;
      if (m < p.M && k < p.K) {
        v = A[rows[2u * m] * p.lda + k] * bitcast<f32>(rows[2u * m + 1u]);
      }
      As[c * ${TM}u + r] = v;
    }
    for (var i = 0u; i < ${loadsB}u; i++) {
      let e = li + i * ${threads}u;
      let r = e / ${t.bk}u;
      let c = e % ${t.bk}u;
      let n = n0 + r;
      let k = k0 + c;
      var v = 0.0;
      if (n < p.N && k < p.K) {
        v = B[n * p.ldb + k];
      }
      Bs[c * ${TN}u + r] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${t.bk}u; kk++) {
      for (var i = 0u; i < ${t.rm}u; i++) { a[i] = As[kk * ${TM}u + lid.y + ${t.wy}u * i]; }
      for (var j = 0u; j < ${t.rn}u; j++) { b[j] = Bs[kk * ${TN}u + lid.x + ${t.wx}u * j]; }
      for (var i = 0u; i < ${t.rm}u; i++) {
        for (var j = 0u; j < ${t.rn}u; j++) {
          acc[i * ${t.rn}u + j] = fma(a[i], b[j], acc[i * ${t.rn}u + j]);
        }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < ${t.rm}u; i++) {
    let m = m0 + lid.y + ${t.wy}u * i;
    for (var j = 0u; j < ${t.rn}u; j++) {
      let n = n0 + lid.x + ${t.wx}u * j;
      if (m < p.M && n < p.N) { C[m * p.ldc + n] = acc[i * ${t.rn}u + j]; }
    }
  }
}
`;
}

/**
 * `act[m, j] = f(h[m, j] + bias[j], h[m, R + j] + bias[R + j])` for the `[M, 2R]` GEMM
 * output `h`: SiLU-gated (`mode` 0), gpt_oss's clamped form (1), or relu² of the up half
 * alone (2, non-gated experts, whose gate half is zeros: kernels/kernel-form.ts).
 */
export const ACTIVATE_SHADER = /* wgsl */ `
struct Params { M: u32, R: u32, mode: u32, alpha: f32, limit: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> h: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> act: array<f32>;

@compute @workgroup_size(128)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 128u;
  if (i >= p.M * p.R) { return; }
  let m = i / p.R;
  let j = i % p.R;
  var g = h[m * 2u * p.R + j] + bias[j];
  var u = h[m * 2u * p.R + p.R + j] + bias[p.R + j];
  if (p.mode == 2u) {
    let r = max(u, 0.0);
    act[i] = r * r;
  } else if (p.mode == 1u) {
    g = min(g, p.limit);
    u = clamp(u, -p.limit, p.limit);
    act[i] = (u + 1.0) * (g / (1.0 + exp(-p.alpha * g)));
  } else {
    act[i] = (g / (1.0 + exp(-g))) * u;
  }
}
`;

/**
 * `out[token_m, c] += w_m · (y[m, c] + bias[c])` where `pairs[2m] = token_m` and
 * `pairs[2m+1] = bitcast<u32>(w_m)`. One expert's tokens are distinct, so no two threads
 * of a dispatch write the same element.
 */
export const SCATTER_SHADER = /* wgsl */ `
struct Params { M: u32, H: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pairs: array<u32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(128)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 128u;
  if (i >= p.M * p.H) { return; }
  let m = i / p.H;
  let c = i % p.H;
  let o = pairs[2u * m] * p.H + c;
  out[o] = out[o] + bitcast<f32>(pairs[2u * m + 1u]) * (y[i] + bias[c]);
}
`;
