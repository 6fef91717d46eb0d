// The quantized golden fixtures (golden/hf-quant) against harness/quant and the reference
// loader: each TP/EP rank's quantized canonical tensors are derived here independently of
// the loader (straight from the stored tensors, by index lists) and must equal the
// loader's bit for bit; dequantized by dequantizeCanonical, the summed reference forward
// is compared with transformers' output under the float32 bounds.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CheckpointDir } from '../checkpoint/directory.js';
import { semanticsOf } from './layout.js';
import type { MoeSemantics } from '../layouts/semantics.js';
import { InvalidParallelRequest } from '../canonical/errors.js';
import { expertsOf } from '../canonical/cut.js';
import { dtypeBits } from '../safetensors/dtypes.js';
import { SafetensorsFile } from '../safetensors/read.js';
import { decodeFloats } from '../safetensors/codecs.js';
import type { Canonical, EpPlacement, ParallelRequest, Tensor } from '../tensor.js';
import type { RankTensors } from '../../kernels/backend.js';
import { referenceBackend, referenceForward } from '../../kernels/moe.js';
import { compareToBounds } from '../compare/tolerance.js';
import { compareLayer, discoverFixtures, readGolden, type Fixture } from '../../golden/golden.js';
import { assertBitIdentical } from '../compare/bits.js';
import { loadCanonical } from '../loader/load.js';
import { dequantizeCanonical } from './dequantize.js';
import { MX_BLOCK } from './mxfp4.js';
import { MXFP4_SCHEME, quantSchemeOf, type QuantScheme } from './scheme.js';
import { checkRequest } from '../canonical/cut.js';
import { WHOLE } from '../tensor.js';
import { ScaleMismatch } from './errors.js';

const ROOT = join(import.meta.dirname, '../../golden/hf-quant');

// ---- independent index-list tensor surgery (any whole-byte dtype) ----

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

/** The elements of `t` at `indices` along `axis`, in that order. */
function take(t: Tensor, axis: number, indices: number[]): Tensor {
  const w = dtypeBits(t.dtype) / 8;
  const outer = t.shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = t.shape.slice(axis + 1).reduce((a, b) => a * b, 1) * w;
  const n = t.shape[axis]!;
  const out = new Uint8Array(outer * indices.length * inner);
  let k = 0;
  for (let o = 0; o < outer; o++) {
    for (const i of indices) {
      out.set(t.bytes.subarray((o * n + i) * inner, (o * n + i + 1) * inner), k);
      k += inner;
    }
  }
  const shape = t.shape.slice();
  shape[axis] = indices.length;
  return { dtype: t.dtype, shape, bytes: out };
}

/** Concatenation along `axis`. */
function cat(ts: Tensor[], axis: number): Tensor {
  const w = dtypeBits(ts[0]!.dtype) / 8;
  const outer = ts[0]!.shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const chunk = (t: Tensor) => t.shape.slice(axis).reduce((a, b) => a * b, 1) * w;
  const out = new Uint8Array(ts.reduce((s, t) => s + t.bytes.length, 0));
  let k = 0;
  for (let o = 0; o < outer; o++) {
    for (const t of ts) {
      out.set(t.bytes.subarray(o * chunk(t), (o + 1) * chunk(t)), k);
      k += chunk(t);
    }
  }
  const shape = ts[0]!.shape.slice();
  shape[axis] = ts.reduce((s, t) => s + t.shape[axis]!, 0);
  return { dtype: ts[0]!.dtype, shape, bytes: out };
}

const lead = (t: Tensor): Tensor => ({ ...t, shape: [1, ...t.shape] });

/** The last two axes swapped, element by element. */
function transpose(t: Tensor): Tensor {
  const w = dtypeBits(t.dtype) / 8;
  const [r, c] = t.shape.slice(-2) as [number, number];
  const outer = t.shape.slice(0, -2).reduce((a, b) => a * b, 1);
  const out = new Uint8Array(t.bytes.length);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < r; i++)
      for (let j = 0; j < c; j++) out.set(t.bytes.subarray(((o * r + i) * c + j) * w, ((o * r + i) * c + j + 1) * w), ((o * c + j) * r + i) * w);
  return { dtype: t.dtype, shape: [...t.shape.slice(0, -2), c, r], bytes: out };
}

// ---- one rank's quantized canonical tensors, per format ----

interface Source {
  dir: CheckpointDir;
  sem: MoeSemantics;
  scheme: QuantScheme;
  fused: boolean;
}

async function quantizedRank(src: Source, layer: number, req: ParallelRequest): Promise<Canonical> {
  const { dir, sem } = src;
  const I = sem.intermediate;
  const Ir = I / req.tpSize;
  const lo = req.tpRank * Ir;
  const hi = lo + Ir;
  const ids = expertsOf(sem.experts, req.epSize, req.epRank, req.epPlacement);
  const p = `model.layers.${layer}.mlp.`;
  const out: Canonical = new Map();
  const put = (name: string, t: Tensor) => out.set(`layers.${layer}.${name}`, t);
  put('experts.ids', { dtype: 'I32', shape: [ids.length], bytes: new Uint8Array(new Int32Array(ids).buffer) });
  const w13: Tensor[] = [];
  const s13: Tensor[] = [];
  const w2: Tensor[] = [];
  const s2: Tensor[] = [];
  if (src.scheme.method === 'fp8') {
    const { rows: bm, cols: bn } = src.scheme.block;
    // The scale rows (columns) of the blocks holding the rank's first and last row (column).
    const sRows = range(Math.floor(lo / bm), Math.floor((hi - 1) / bm) + 1);
    const sCols = range(Math.floor(lo / bn), Math.floor((hi - 1) / bn) + 1);
    const gu = src.fused ? await dir.read(`${p}experts.gate_up_proj`) : undefined;
    const gus = src.fused ? await dir.read(`${p}experts.gate_up_proj_scale_inv`) : undefined;
    const dn = src.fused ? await dir.read(`${p}experts.down_proj`) : undefined;
    const dns = src.fused ? await dir.read(`${p}experts.down_proj_scale_inv`) : undefined;
    for (const e of ids) {
      if (src.fused) {
        const half = gus!.shape[1]! / 2;
        const g = take(gu!, 0, [e]);
        const gs = take(gus!, 0, [e]);
        w13.push(cat([take(g, 1, range(lo, hi)), take(g, 1, range(I + lo, I + hi))], 1));
        s13.push(cat([take(gs, 1, sRows), take(gs, 1, sRows.map((r) => half + r))], 1));
        w2.push(take(take(dn!, 0, [e]), 2, range(lo, hi)));
        s2.push(take(take(dns!, 0, [e]), 2, sCols));
      } else {
        const q = (n: string) => dir.read(`${p}experts.${e}.${n}`);
        const [g, u, d] = await Promise.all(['gate_proj', 'up_proj', 'down_proj'].map((n) => q(`${n}.weight`)));
        const [gs, us, ds] = await Promise.all(['gate_proj', 'up_proj', 'down_proj'].map((n) => q(`${n}.weight_scale_inv`)));
        w13.push(lead(cat([take(g!, 0, range(lo, hi)), take(u!, 0, range(lo, hi))], 0)));
        s13.push(lead(cat([take(gs!, 0, sRows), take(us!, 0, sRows)], 0)));
        w2.push(lead(take(d!, 1, range(lo, hi))));
        s2.push(lead(take(ds!, 1, sCols)));
      }
    }
    put('router.weight', await dir.read(`${p}gate.weight`));
    if (dir.has(`${p}gate.e_score_correction_bias`)) put('router.correction_bias', await dir.read(`${p}gate.e_score_correction_bias`));
    // DeepSeek-V3's FP8 shared expert: Is cut like I, its scale rows (columns) those of the blocks the rank's slice touches.
    if (dir.has(`${p}shared_experts.gate_proj.weight_scale_inv`)) {
      const Is = sem.sharedIntermediate;
      const [slo, shi] = [(req.tpRank * Is) / req.tpSize, ((req.tpRank + 1) * Is) / req.tpSize];
      const rows = range(Math.floor(slo / bm), Math.floor((shi - 1) / bm) + 1);
      const cols = range(Math.floor(slo / bn), Math.floor((shi - 1) / bn) + 1);
      const q = (n: string) => dir.read(`${p}shared_experts.${n}`);
      const [g, u, d, gs, us, ds] = await Promise.all(['gate_proj.weight', 'up_proj.weight', 'down_proj.weight', 'gate_proj.weight_scale_inv', 'up_proj.weight_scale_inv', 'down_proj.weight_scale_inv'].map(q));
      put('shared.w13', cat([take(g!, 0, range(slo, shi)), take(u!, 0, range(slo, shi))], 0));
      put('shared.w2', take(d!, 1, range(slo, shi)));
      put('shared.w13_scale', cat([take(gs!, 0, rows), take(us!, 0, rows)], 0));
      put('shared.w2_scale', take(ds!, 1, cols));
    }
  } else if (src.scheme.method === 'nvfp4' || src.scheme.method === 'fp8-static') {
    // Packed columns (NVFP4: two per byte), block-scale columns (NVFP4: one per 16; per-channel FP8: one per row, whole).
    const nv = src.scheme.method === 'nvfp4';
    const wCols = nv ? range(lo / 2, hi / 2) : range(lo, hi);
    const sCols = nv ? range(lo / 16, hi / 16) : [0];
    const sc2: Tensor[] = [];
    const in13: Tensor[] = [];
    const sd2: Tensor[] = [];
    const ind: Tensor[] = [];
    const flat = (t: Tensor): Tensor => ({ ...t, shape: [t.shape.reduce((a, b) => a * b, 1)] });
    const read = (k: string) => dir.read(`${p}experts.${k}`);
    for (const e of ids) {
      if (src.fused) {
        const [gu, gus, gu2, gui, dn, dns, dn2, dni] = await Promise.all(
          ['gate_up_proj', 'gate_up_proj_weight_scale', 'gate_up_proj_weight_scale_2', 'gate_up_proj_input_scale', 'down_proj', 'down_proj_weight_scale', 'down_proj_weight_scale_2', 'down_proj_input_scale'].map((k) =>
            dir.has(`${p}experts.${k}`) ? read(k) : Promise.resolve(undefined),
          ),
        );
        const g = take(gu!, 0, [e]);
        const gs = take(gus!, 0, [e]);
        w13.push(cat([take(g, 1, range(lo, hi)), take(g, 1, range(I + lo, I + hi))], 1));
        s13.push(cat([take(gs, 1, range(lo, hi)), take(gs, 1, range(I + lo, I + hi))], 1));
        w2.push(take(take(dn!, 0, [e]), 2, wCols));
        s2.push(take(take(dns!, 0, [e]), 2, sCols));
        if (gu2) sc2.push(take(gu2, 0, [e]));
        if (gui) in13.push(take(gui, 0, [e]));
        if (dn2) sd2.push(take(dn2, 0, [e]));
        if (dni) ind.push(take(dni, 0, [e]));
      } else {
        const q = (n: string) => (dir.has(`${p}experts.${e}.${n}`) ? dir.read(`${p}experts.${e}.${n}`) : Promise.resolve(undefined));
        const [g, u, d] = await Promise.all(['gate_proj', 'up_proj', 'down_proj'].map((n) => q(`${n}.weight`)));
        const [gs, us, ds] = await Promise.all(['gate_proj', 'up_proj', 'down_proj'].map((n) => q(`${n}.weight_scale`)));
        const [g2, u2, d2] = await Promise.all(['gate_proj', 'up_proj', 'down_proj'].map((n) => q(`${n}.weight_scale_2`)));
        const [gi, ui, di] = await Promise.all(['gate_proj', 'up_proj', 'down_proj'].map((n) => q(`${n}.input_scale`)));
        w13.push(lead(cat([take(g!, 0, range(lo, hi)), take(u!, 0, range(lo, hi))], 0)));
        s13.push(lead(cat([take(gs!, 0, range(lo, hi)), take(us!, 0, range(lo, hi))], 0)));
        w2.push(lead(take(d!, 1, wCols)));
        s2.push(lead(take(ds!, 1, sCols)));
        if (g2) sc2.push(lead(cat([flat(g2), flat(u2!)], 0)));
        if (gi) in13.push(lead(cat([flat(gi), flat(ui!)], 0)));
        if (d2) sd2.push(flat(d2));
        if (di) ind.push(flat(di));
      }
    }
    if (sc2.length) put('experts.w13_scale_2', cat(sc2, 0));
    if (sd2.length) put('experts.w2_scale_2', cat(sd2, 0));
    if (in13.length) put('experts.w13_input_scale', cat(in13, 0));
    if (ind.length) put('experts.w2_input_scale', cat(ind, 0));
    put('router.weight', await dir.read(`${p}gate.weight`));
  } else if (src.scheme.method === 'int4-ct') {
    // Words of 8 codes along `in`; zero points 8 output rows to a word; groups of `gs` along `in`.
    const gs = src.scheme.group;
    const z13: Tensor[] = [];
    const z2: Tensor[] = [];
    const sh13: Tensor[] = [];
    const sh2: Tensor[] = [];
    const rows = range(lo, hi);
    const zRows = range(lo / 8, hi / 8);
    for (const e of ids) {
      if (src.fused) {
        const [gu, gus, guz, gush, dn, dns, dnz, dnsh] = await Promise.all(
          ['gate_up_proj_packed', 'gate_up_proj_weight_scale', 'gate_up_proj_weight_zero_point', 'gate_up_proj_weight_shape', 'down_proj_packed', 'down_proj_weight_scale', 'down_proj_weight_zero_point', 'down_proj_weight_shape'].map((k) => dir.read(`${p}experts.${k}`)),
        );
        const one = (t: Tensor) => take(t, 0, [e]);
        w13.push(cat([take(one(gu!), 1, rows), take(one(gu!), 1, range(I + lo, I + hi))], 1));
        s13.push(cat([take(one(gus!), 1, rows), take(one(gus!), 1, range(I + lo, I + hi))], 1));
        z13.push(cat([take(one(guz!), 1, zRows), take(one(guz!), 1, zRows.map((r) => I / 8 + r))], 1));
        sh13.push(one(gush!));
        w2.push(take(one(dn!), 2, range(lo / 8, hi / 8)));
        s2.push(take(one(dns!), 2, range(lo / gs, hi / gs)));
        z2.push(take(one(dnz!), 2, range(lo / gs, hi / gs)));
        sh2.push(one(dnsh!));
      } else {
        const q = (n: string) => dir.read(`${p}experts.${e}.${n}`);
        const get = (k: string) => Promise.all(['gate_proj', 'up_proj', 'down_proj'].map((n) => q(`${n}.${k}`)));
        const [[g, u, d], [gs_, us, ds], [gz, uz, dz], [gsh, ush, dsh]] = (await Promise.all(['weight_packed', 'weight_scale', 'weight_zero_point', 'weight_shape'].map(get))) as Tensor[][] as [Tensor[], Tensor[], Tensor[], Tensor[]];
        w13.push(lead(cat([take(g!, 0, rows), take(u!, 0, rows)], 0)));
        s13.push(lead(cat([take(gs_!, 0, rows), take(us!, 0, rows)], 0)));
        z13.push(lead(cat([take(gz!, 0, zRows), take(uz!, 0, zRows)], 0)));
        sh13.push(lead(cat([lead(gsh!), lead(ush!)], 0)));
        w2.push(lead(take(d!, 1, range(lo / 8, hi / 8))));
        s2.push(lead(take(ds!, 1, range(lo / gs, hi / gs))));
        z2.push(lead(take(dz!, 1, range(lo / gs, hi / gs))));
        sh2.push(lead(dsh!));
      }
    }
    put('experts.w13_zero', cat(z13, 0));
    put('experts.w2_zero', cat(z2, 0));
    put('experts.w13_shape', cat(sh13, 0));
    put('experts.w2_shape', cat(sh2, 0));
    put('router.weight', await dir.read(`${p}gate.weight`));
  } else if (src.scheme.method === 'int4-gptq' || src.scheme.method === 'int4-awq') {
    // Stored with the output axis last; transposed back to [out, ...]. GPTQ packs 8 inputs to a
    // word (canonical [out, in/8]), AWQ 8 outputs (canonical [out/8, in]); zeros 8 outputs to a word.
    const awq = src.scheme.method === 'int4-awq';
    const gs = src.scheme.group;
    const whole2 = src.scheme.method === 'int4-gptq' && src.scheme.descAct;
    const z13: Tensor[] = [];
    const z2: Tensor[] = [];
    const g13: Tensor[] = [];
    const g2: Tensor[] = [];
    const gate13 = awq ? range(lo / 8, hi / 8) : range(lo, hi);
    const w2cols = awq ? range(lo, hi) : range(lo / 8, hi / 8);
    const groups2 = whole2 ? range(0, I / gs) : range(lo / gs, hi / gs);
    for (const e of ids) {
      const per = async (proj: string, k: string): Promise<Tensor | undefined> => {
        if (!src.fused) return dir.has(`${p}experts.${e}.${proj}.${k}`) ? dir.read(`${p}experts.${e}.${proj}.${k}`) : undefined;
        const fusedKey = `${p}experts.${proj === 'down_proj' ? 'down_proj' : 'gate_up_proj'}_${k}`;
        if (!dir.has(fusedKey)) return undefined;
        const t = take(await dir.read(fusedKey), 0, [e]);
        const one = { ...t, shape: t.shape.slice(1) };
        if (proj === 'down_proj') return one;
        const half = proj === 'gate_proj' ? 0 : 1;
        if (k === 'g_idx') return { ...take(one, 0, [half]), shape: one.shape.slice(1) };
        const n = one.shape[one.shape.length - 1]! / 2;
        return take(one, one.shape.length - 1, range(half * n, (half + 1) * n));
      };
      const [gq, uq, dq] = await Promise.all(['gate_proj', 'up_proj', 'down_proj'].map((n) => per(n, 'qweight')));
      const [gs_, us, ds] = await Promise.all(['gate_proj', 'up_proj', 'down_proj'].map((n) => per(n, 'scales')));
      const [gz, uz, dz] = await Promise.all(['gate_proj', 'up_proj', 'down_proj'].map((n) => per(n, 'qzeros')));
      const [gg, ug, dg] = await Promise.all(['gate_proj', 'up_proj', 'down_proj'].map((n) => per(n, 'g_idx')));
      const T = (t: Tensor | undefined) => transpose(t!);
      w13.push(lead(cat([take(T(gq), 0, gate13), take(T(uq), 0, gate13)], 0)));
      s13.push(lead(cat([take(T(gs_), 0, range(lo, hi)), take(T(us), 0, range(lo, hi))], 0)));
      z13.push(lead(cat([take(T(gz), 0, range(lo / 8, hi / 8)), take(T(uz), 0, range(lo / 8, hi / 8))], 0)));
      w2.push(lead(take(T(dq), 1, w2cols)));
      s2.push(lead(take(T(ds), 1, groups2)));
      z2.push(lead(take(T(dz), 1, groups2)));
      if (gg) {
        g13.push(lead(cat([lead(gg), lead(ug!)], 0)));
        g2.push(lead(take(dg!, 0, range(lo, hi))));
      }
    }
    put('experts.w13_zero', cat(z13, 0));
    put('experts.w2_zero', cat(z2, 0));
    if (g13.length) {
      put('experts.w13_g_idx', cat(g13, 0));
      put('experts.w2_g_idx', cat(g2, 0));
    }
    put('router.weight', await dir.read(`${p}gate.weight`));
  } else {
    const [gub, gus, gubias, dnb, dns, dnbias] = await Promise.all(
      ['gate_up_proj_blocks', 'gate_up_proj_scales', 'gate_up_proj_bias', 'down_proj_blocks', 'down_proj_scales', 'down_proj_bias'].map((n) => dir.read(`${p}experts.${n}`)),
    );
    // Stored rows interleaved: gate row i is row 2i, up row i is row 2i + 1.
    const gateRows = range(lo, hi).map((i) => 2 * i);
    const upRows = gateRows.map((r) => r + 1);
    const blocks = range(lo / MX_BLOCK, hi / MX_BLOCK);
    const b13: Tensor[] = [];
    const b2: Tensor[] = [];
    for (const e of ids) {
      const pick = (t: Tensor) => take(t!, 0, [e]);
      w13.push(cat([take(pick(gub!), 1, gateRows), take(pick(gub!), 1, upRows)], 1));
      s13.push(cat([take(pick(gus!), 1, gateRows), take(pick(gus!), 1, upRows)], 1));
      b13.push(cat([take(pick(gubias!), 1, gateRows), take(pick(gubias!), 1, upRows)], 1));
      w2.push(take(pick(dnb!), 2, blocks));
      s2.push(take(pick(dns!), 2, blocks));
      b2.push(pick(dnbias!));
    }
    put('experts.w13_bias', cat(b13, 0));
    put('experts.w2_bias', cat(b2, 0));
    put('router.weight', await dir.read(`${p}router.weight`));
    put('router.bias', await dir.read(`${p}router.bias`));
  }
  put('experts.w13', cat(w13, 0));
  put('experts.w13_scale', cat(s13, 0));
  put('experts.w2', cat(w2, 0));
  put('experts.w2_scale', cat(s2, 0));
  return out;
}

interface SplitCase {
  tp: number;
  ep: number;
  placement: EpPlacement;
}
const requests = (s: SplitCase): ParallelRequest[] =>
  range(0, s.tp).flatMap((tpRank) => range(0, s.ep).map((epRank) => ({ tpSize: s.tp, tpRank, epSize: s.ep, epRank, epPlacement: s.placement })));

// The formats whose fixtures keep whole blocks or groups at TP 2: whole, TP 2, and TP 2 × EP 3.
const WHOLE_AT_TP2: SplitCase[] = [
  { tp: 1, ep: 1, placement: 'linear' },
  { tp: 2, ep: 1, placement: 'linear' },
  { tp: 2, ep: 3, placement: 'round_robin' },
];

// FP8, I = 160: TP 2 and 5 give 80 and 32 rows per rank, so blocks straddle ranks.
const SPLITS: Partial<Record<QuantScheme['method'], SplitCase[]>> = {
  fp8: [
    { tp: 1, ep: 1, placement: 'linear' },
    { tp: 2, ep: 1, placement: 'linear' },
    { tp: 5, ep: 2, placement: 'linear' },
    { tp: 2, ep: 3, placement: 'round_robin' },
  ],
  mxfp4: WHOLE_AT_TP2,
  // NVFP4, I = 32: TP 2 keeps whole 16-element blocks.
  nvfp4: WHOLE_AT_TP2,
  // INT4 groups of 32, I = 64: TP 2 keeps whole groups.
  'int4-ct': WHOLE_AT_TP2,
  // GPTQ with desc_act and AWQ, groups of 32, I = 64: TP 2 keeps whole groups (GPTQ: w2's groups whole on every rank).
  'int4-gptq': WHOLE_AT_TP2,
  'int4-awq': WHOLE_AT_TP2,
  // Static FP8 per channel, I = 40: any TP size that divides it.
  'fp8-static': [
    { tp: 1, ep: 1, placement: 'linear' },
    { tp: 4, ep: 1, placement: 'linear' },
    { tp: 5, ep: 2, placement: 'round_robin' },
  ],
};

const fixtures: Fixture[] = await discoverFixtures(ROOT);

describe('quantized golden fixtures', () => {
  it('are the eight expected ones: FP8 block (and DeepSeek-V3 FP8 with FP8 shared experts), MXFP4, NVFP4, per-channel static FP8, and INT4 groups as compressed-tensors, GPTQ (desc_act) and AWQ write them', () => {
    expect(fixtures.map((f) => f.name)).toEqual(['deepseek_v3-fp8-shared', 'gpt_oss-mxfp4', 'qwen3_moe-awq', 'qwen3_moe-fp8', 'qwen3_moe-fp8-channel', 'qwen3_moe-gptq-desc-act', 'qwen3_moe-int4-g32-asym', 'qwen3_moe-nvfp4']);
  });

  for (const fixture of fixtures) {
    for (const { layout, dir: path } of fixture.layouts) {
      it(`${fixture.name} ${layout}: every split loads as derived, and dequantized rank by rank sums to transformers' output`, async () => {
        const dir = await CheckpointDir.open(path);
        try {
          const sem = semanticsOf(dir.config);
          const scheme = quantSchemeOf(dir.config.raw)!;
          const src: Source = { dir, sem, scheme, fused: layout === 'fused' };
          for (const golden of await readGolden(fixture, sem)) {
            // The format's splits that the fixture's sizes allow (deepseek_v3-fp8-shared: I = Is = 128, so not TP 5).
            for (const split of (SPLITS[scheme.method] ?? [{ tp: 1, ep: 1, placement: 'linear' as const }]).filter((x) => sem.intermediate % x.tp === 0 && sem.sharedIntermediate % x.tp === 0)) {
              const ranks: RankTensors[] = [];
              for (const req of requests(split)) {
                const derived = await quantizedRank(src, golden.layer, req);
                // The reference loader gives the same quantized tensors, bit for bit.
                const loaded = new Map([...(await loadCanonical(path, req))].filter(([n]) => n.startsWith(`layers.${golden.layer}.`)));
                assertBitIdentical(derived, loaded);
                ranks.push({ req, tensors: dequantizeCanonical(derived, scheme, req) });
              }
              const reference = referenceForward(sem, golden.layer, ranks, golden.input, golden.tokens, { bound: true });
              const cmp = await compareLayer(sem, ranks, golden, referenceBackend, reference);
              expect({ split, layer: golden.layer, tier: cmp.output.tier, logits: cmp.routerLogits?.tier }).toEqual({ split, layer: golden.layer, tier: 'pass', logits: 'pass' });
            }
          }
        } finally {
          await dir.close();
        }
      });
    }
  }

  it('FP8: transformers\' own load (80x96 blocks for a [160, 192] weight) is outside the bounds of the right dequantization', async () => {
    const fixture = fixtures.find((f) => f.name === 'qwen3_moe-fp8')!;
    const dir = await CheckpointDir.open(join(fixture.dir, 'original'));
    const st = await SafetensorsFile.open(join(fixture.dir, 'golden.safetensors'));
    try {
      const sem = semanticsOf(dir.config);
      const scheme = quantSchemeOf(dir.config.raw)!;
      for (const golden of await readGolden(fixture, sem)) {
        const req = requests({ tp: 1, ep: 1, placement: 'linear' })[0]!;
        const ranks = [{ req, tensors: dequantizeCanonical(await quantizedRank({ dir, sem, scheme, fused: false }, golden.layer, req), scheme, req) }];
        const ref = referenceForward(sem, golden.layer, ranks, golden.input, golden.tokens, { bound: true });
        const hf = decodeFloats('F32', (await st.readTensor(`moe.${golden.layer}.output_hf_load`)).bytes);
        expect(compareToBounds(hf, ref.output, ref.bounds!, sem.hidden).tier).toBe('fail');
      }
    } finally {
      await st.close();
      await dir.close();
    }
  });

  it('a rank that takes its rows to start on a block boundary is refused (FP8 TP 2, rank 1 starts 80 rows into block 0)', async () => {
    const fixture = fixtures.find((f) => f.name === 'qwen3_moe-fp8')!;
    const dir = await CheckpointDir.open(join(fixture.dir, 'fused'));
    try {
      const sem = semanticsOf(dir.config);
      const scheme = quantSchemeOf(dir.config.raw)!;
      const req = requests({ tp: 2, ep: 1, placement: 'linear' })[1]!;
      const q = await quantizedRank({ dir, sem, scheme, fused: true }, 0, req);
      expect(() => dequantizeCanonical(q, scheme, { ...req, tpRank: 0 })).toThrow(ScaleMismatch);
    } finally {
      await dir.close();
    }
  });

  it('MXFP4: TP 4 of I = 64 would split 32-element blocks and is refused', () => {
    expect(() => checkRequest({ ...WHOLE, tpSize: 4 }, { experts: 2, intermediate: 64, sharedIntermediate: 0, quant: MXFP4_SCHEME })).toThrow(InvalidParallelRequest);
  });
});
