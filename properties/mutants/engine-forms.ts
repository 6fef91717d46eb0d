// Loaders that emit the engine forms of spec §8, written from the spec independently of
// harness/canonical/forms.ts (which maps the other way): a correct one per form, which the
// suite must pass once the loader declares its forms, and a mutant per form that declares
// it but gets it wrong the way a real engine port would, which the suite must catch.
import { expertsOf, tpSlice } from '../../harness/canonical/cut.js';
import { sharedSlots } from '../../harness/canonical/forms.js';
import type { Canonical, ParallelRequest, Tensor } from '../../harness/tensor.js';
import { concatAxis, int32s, int32Tensor, pickSlots, selectAxis, transposeLast2 } from '../../harness/tensor-ops.js';
import { load, modelOf, type Model, type Mutant } from './catalogue.js';

/**
 * Marlin's INT4 layouts as vLLM's Python test helpers describe them (marlin_utils_test.py
 * get_weight_perm / marlin_weights, marlin_utils.py get_scale_perms / marlin_zero_points):
 * 16 x 16 sub-tiles laid out row by row, one 1024-entry permutation per 16 x 64 tile, codes
 * packed eight to a word in order. Written apart from harness/canonical/marlin.ts, which reads
 * the same order off the repack kernel as an index formula.
 */
const INTERLEAVE = [0, 2, 4, 6, 1, 3, 5, 7];
const WEIGHT_PERM: number[] = (() => {
  const perm: number[] = [];
  for (let t = 0; t < 32; t++) {
    const rows = [2 * (t % 4), 2 * (t % 4) + 1, 2 * (t % 4 + 4), 2 * (t % 4 + 4) + 1];
    const one = [0, 1].flatMap((block) => rows.map((row) => 16 * row + Math.floor(t / 4) + 8 * block));
    for (let warp = 0; warp < 4; warp++) perm.push(...one.map((x) => x + 256 * warp));
  }
  return perm.map((_, i) => perm[i - (i % 8) + INTERLEAVE[i % 8]!]!);
})();
const SCALE_PERMS = {
  grouped: Array.from({ length: 8 }, (_, i) => Array.from({ length: 8 }, (_, j) => i + 8 * j)).flat(),
  single: Array.from({ length: 4 }, (_, i) => [0, 1, 8, 9, 16, 17, 24, 25].map((j) => 2 * i + j)).flat(),
};
/** Each run of `perm.length` entries of `xs` gathered by `perm`. */
const gatherRuns = <T>(xs: T[], perm: number[]) => xs.map((_, i) => xs[i - (i % perm.length) + perm[i % perm.length]!]!);
const nib = (b: Uint8Array, i: number) => (b[i >> 1]! >> ((i & 1) * 4)) & 15;
/** Codes packed eight to an I32 word, element 8j + i at bits 4i. */
function pack8(codes: number[]): Uint8Array {
  const out = new Uint8Array(codes.length / 2);
  codes.forEach((c, i) => (out[i >> 1] = out[i >> 1]! | (c << ((i & 1) * 4))));
  return out;
}

/** One slot's `[rows, cols]` codes of a canonical INT4 tensor, packed along its columns or (8 rows to a word, in `order`) its rows. */
function codesOf(bytes: Uint8Array, slot: number, rows: number, cols: number, alongRows: boolean, order: readonly number[]): number[][] {
  const base = slot * rows * cols;
  return Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, c) => nib(bytes, base + (alongRows ? (Math.floor(r / 8) * cols + c) * 8 + order.indexOf(r % 8) : r * cols + c))));
}

/**
 * vLLM's Marlin MoE post-processing of INT4 experts (no activation order) where the sizes tile:
 * w13 (K = H, N = 2*Ir) and w2 (K = Ir, N = H). `scaleK(w, K, Ir)` is the K the scale
 * permutation is chosen from: the weight's own K in a correct loader.
 */
export const emitMarlin = (scaleK: (w: 'w13' | 'w2', K: number, Ir: number) => number = (_w, K) => K): Emit => (c, { req, m }) => {
  const q = m.quant;
  if (!q || q.packing !== 8 || q.kScalesWhole) return c;
  const gs = q.scaleBlock.cols;
  const order = q.rowNibbles ?? [0, 1, 2, 3, 4, 5, 6, 7];
  const Ir = m.intermediate / req.tpSize;
  return edit(c, (out, L) => {
    for (const w of ['w13', 'w2'] as const) {
      const [K, N] = w === 'w13' ? [m.hidden, 2 * Ir] : [Ir, m.hidden];
      if (K % 16 !== 0 || N % 64 !== 0) continue;
      const G = K / gs;
      const name = `layers.${L}.experts.${w}`;
      const [t, s, z] = [out.get(name)!, out.get(`${name}_scale`)!, out.get(`${name}_zero`)];
      const S = t.shape[0]!;
      const e = s.bytes.length / (S * N * G);
      const weights: Uint8Array[] = [];
      const scales: Uint8Array[] = [];
      const zeros: Uint8Array[] = [];
      for (let slot = 0; slot < S; slot++) {
        const nk = codesOf(t.bytes, slot, N, K, q.packRows === true, order); // [N][K]
        // [K/16, 16, N/16, 16] -> [K/16, N/16, 16, 16] -> [K/16, 16N], then each 16 x 64 tile through WEIGHT_PERM.
        const tiles: number[] = [];
        for (let kt = 0; kt < K / 16; kt++) for (let nt = 0; nt < N / 16; nt++) for (let ki = 0; ki < 16; ki++) for (let ni = 0; ni < 16; ni++) tiles.push(nk[nt * 16 + ni]![kt * 16 + ki]!);
        weights.push(pack8(gatherRuns(tiles, WEIGHT_PERM)));
        // Scales [N][G] -> [G][N], each row's runs permuted (one group along K: the single permutation).
        const perm = gs < scaleK(w, K, Ir) ? SCALE_PERMS.grouped : SCALE_PERMS.single;
        const elems = Array.from({ length: G * N }, (_, i) => { const [g, n] = [Math.floor(i / N), i % N]; return s.bytes.subarray(((slot * N + n) * G + g) * e, ((slot * N + n) * G + g + 1) * e); });
        const ps = gatherRuns(elems, perm);
        const sb = new Uint8Array(G * N * e);
        ps.forEach((x, i) => sb.set(x, i * e));
        scales.push(sb);
        if (z) {
          const ng = codesOf(z.bytes, slot, N, G, true, order); // [N][G]
          const gn = Array.from({ length: G }, (_, g) => ng.map((row) => row[g]!)).flat();
          zeros.push(pack8(gatherRuns(gatherRuns(gn, SCALE_PERMS.grouped), INTERLEAVE)));
        }
      }
      const cat = (xs: Uint8Array[]) => { const o = new Uint8Array(xs.reduce((a, x) => a + x.length, 0)); let at = 0; for (const x of xs) { o.set(x, at); at += x.length; } return o; };
      out.set(name, { dtype: 'I32', shape: [S, K / 16, 2 * N], bytes: cat(weights) });
      out.set(`${name}_scale`, { dtype: s.dtype, shape: [S, G, N], bytes: cat(scales) });
      if (z) out.set(`${name}_zero`, { dtype: z.dtype, shape: [S, G, N / 8], bytes: cat(zeros) });
    }
  });
};

/** A loader together with the engine forms it declares. */
export interface FormLoader extends Omit<Mutant, 'diagnosis'> {
  forms: readonly string[];
}

/** One step from the canonical form towards an engine form, for one rank. */
type Emit = (c: Canonical, ctx: { dir: string; req: ParallelRequest; m: Model }) => Promise<Canonical> | Canonical;

const layersOf = (c: Canonical) => [...c.keys()].map((k) => /^layers\.(\d+)\.experts\.ids$/.exec(k)?.[1]).filter((x): x is string => x !== undefined).map(Number);
const quantized = (c: Canonical, L: number) => c.has(`layers.${L}.experts.w13_scale`);
const zerosLike = (t: Tensor, shape: number[]): Tensor => ({ dtype: t.dtype, shape, bytes: new Uint8Array((t.bytes.length / t.shape.reduce((a, b) => a * b, 1)) * shape.reduce((a, b) => a * b, 1)) });

function edit(c: Canonical, f: (out: Canonical, L: number) => void): Canonical {
  const out: Canonical = new Map(c);
  for (const L of layersOf(c)) f(out, L);
  return out;
}

/** [gate; up] halves of axis 1 swapped to [up; gate]. */
const swapHalves = (t: Tensor) => {
  const n = t.shape[1]!;
  return selectAxis(t, 1, [[n / 2, n], [0, n / 2]]);
};

/** Every gate-then-up tensor of the experts: w13 and whatever `w13_*` comes with it (bias, scales, zero points, ...). */
export const emitW31: Emit = (c) =>
  edit(c, (out, L) => {
    for (const k of out.keys()) if (k === `layers.${L}.experts.w13` || k.startsWith(`layers.${L}.experts.w13_`)) out.set(k, swapHalves(out.get(k)!));
  });

export const emitTransposed = (which: readonly string[] = ['w13', 'w2']): Emit => (c) =>
  edit(c, (out, L) => {
    if (quantized(out, L)) return;
    for (const w of which) out.set(`layers.${L}.experts.${w}`, transposeLast2(out.get(`layers.${L}.experts.${w}`)!));
  });

/** Pads `Ir` to a multiple of `n`; `fill` makes the padding (zeros in a correct loader). */
export const emitPadded = (n: number, fill: (like: Tensor, shape: number[]) => Tensor = zerosLike): Emit => (c) =>
  edit(c, (out, L) => {
    if (quantized(out, L)) return;
    const p = `layers.${L}.experts.`;
    const w13 = out.get(p + 'w13')!;
    const Ir = w13.shape[1]! / 2;
    const pad = Math.ceil(Ir / n) * n - Ir;
    const padRows = (t: Tensor) => {
      const gate = selectAxis(t, 1, [[0, Ir]]);
      const up = selectAxis(t, 1, [[Ir, 2 * Ir]]);
      const z = fill(gate, [t.shape[0]!, pad, ...t.shape.slice(2)]);
      return concatAxis([gate, z, up, z], 1);
    };
    out.set(p + 'w13', padRows(w13));
    const bias = out.get(p + 'w13_bias');
    if (bias) out.set(p + 'w13_bias', padRows(bias));
    const w2 = out.get(p + 'w2')!;
    out.set(p + 'w2', concatAxis([w2, fill(w2, [w2.shape[0]!, w2.shape[1]!, pad])], 2));
  });

/** The rank's shared expert whole, as every TP rank holds it (`replica` may spoil it). */
export const emitSharedReplicated = (replica?: (whole: Tensor, cut: Tensor, name: string, req: ParallelRequest) => Tensor): Emit => async (c, { dir, req }) => {
  const whole = await load(dir, { ...req, tpSize: 1, tpRank: 0 });
  const out: Canonical = new Map(c);
  for (const [k, t] of whole) if (/\.shared\.w(13|2)$/.test(k)) out.set(k, replica ? replica(t, c.get(k)!, k, req) : t);
  return out;
};

/**
 * The shared expert (`Is = n*I`) as `n` expert slots of size `I` appended with ids E..E+n-1,
 * each cut for TP like a routed expert. `rowsOf(j, r)` gives the whole-shared rows (of one
 * half) that slot `j` holds on TP rank `r`: `j*I + r*Ir ..` in a correct loader.
 */
export const emitSharedSlots = (rowsOf?: (j: number, r: number, m: Model, T: number) => [number, number]): Emit => async (c, { dir, req, m }) => {
  const dims = { experts: m.experts, intermediate: m.intermediate, sharedIntermediate: m.sharedIntermediate };
  const n = sharedSlots(dims);
  if (n === 0) return c;
  const whole = await load(dir, { ...req, tpSize: 1, tpRank: 0 });
  const Is = m.sharedIntermediate;
  return edit(c, (out, L) => {
    if (quantized(out, L)) return;
    const p = `layers.${L}.`;
    const sw13 = whole.get(p + 'shared.w13')!;
    const sw2 = whole.get(p + 'shared.w2')!;
    const ranges = Array.from({ length: n }, (_, j) => (rowsOf ?? ((j, r) => {
      const [a, b] = tpSlice(m.intermediate, req.tpSize, r);
      return [j * m.intermediate + a, j * m.intermediate + b];
    }))(j, req.tpRank, m, req.tpSize));
    const w13Slots = ranges.map(([a, b]) => selectAxis(sw13, 0, [[a, b], [Is + a, Is + b]]));
    const w2Slots = ranges.map(([a, b]) => selectAxis(sw2, 1, [[a, b]]));
    const stackOf = (ts: Tensor[]) => concatAxis(ts.map((t) => ({ ...t, shape: [1, ...t.shape] })), 0);
    out.set(p + 'experts.w13', concatAxis([out.get(p + 'experts.w13')!, stackOf(w13Slots)], 0));
    out.set(p + 'experts.w2', concatAxis([out.get(p + 'experts.w2')!, stackOf(w2Slots)], 0));
    for (const b of ['w13_bias', 'w2_bias']) {
      const t = out.get(p + 'experts.' + b);
      if (t) out.set(p + 'experts.' + b, concatAxis([t, zerosLike(t, [n, ...t.shape.slice(1)])], 0));
    }
    out.set(p + 'experts.ids', int32Tensor([...int32s(out.get(p + 'experts.ids')!), ...Array.from({ length: n }, (_, j) => m.experts + j)]));
    out.delete(p + 'shared.w13');
    out.delete(p + 'shared.w2');
  });
};

/**
 * EPLB: rank q holds its linear/round-robin experts plus one redundant copy of the first
 * expert of rank q+1 (of expert 0 where P = 1). `source(id, slot, redundant, m)` is the expert
 * whose weights fill a slot (its logical id in a correct loader).
 */
export const emitEplb = (source: (id: number, slot: number, redundant: boolean, m: Model) => number = (id) => id): Emit => async (c, { dir, req, m }) => {
  const all = await load(dir, { ...req, epSize: 1, epRank: 0 });
  const own = expertsOf(m.experts, req.epSize, req.epRank, req.epPlacement);
  const next = expertsOf(m.experts, req.epSize, (req.epRank + 1) % req.epSize, req.epPlacement)[0] ?? 0;
  const ids = [...own, next];
  const out: Canonical = new Map(c);
  for (const L of layersOf(c)) {
    const p = `layers.${L}.experts.`;
    for (const [k, t] of all) if (k.startsWith(p) && k !== p + 'ids') out.set(k, pickSlots(t, ids.map((id, slot) => source(id, slot, slot === own.length, m))));
    out.set(p + 'ids', int32Tensor(ids));
  }
  return out;
};

/** A loader declaring `forms` that emits them by applying `steps` in order to the reference's rank. */
function formLoader(name: string, bug: string, forms: readonly string[], steps: readonly Emit[]): FormLoader {
  return {
    name,
    bug,
    forms,
    loader: {
      name,
      async load(dir, req) {
        const m = await modelOf(dir);
        let c = await load(dir, req);
        for (const s of steps) c = await s(c, { dir, req, m });
        return c;
      },
    },
  };
}

/** Correct loaders: each keeps one engine form (and one keeps all that combine) and declares it. */
export const FORM_LOADERS: readonly FormLoader[] = [
  formLoader('w31', '[up; gate] expert weights, as TensorRT-LLM and FlashInfer keep them', ['w31'], [emitW31]),
  formLoader('transposed', 'w13 and w2 stored transposed ([E, H, 2Ir], [E, Ir, H])', ['transposed'], [emitTransposed()]),
  formLoader('pad-ir-16', 'Ir padded with zeros to a multiple of 16', ['pad-ir-16'], [emitPadded(16)]),
  formLoader('shared-replicated', 'the shared expert whole on every TP rank', ['shared-replicated'], [emitSharedReplicated()]),
  formLoader('shared-expert-slots', 'the shared expert as n = Is/I extra expert slots', ['shared-expert-slots'], [emitSharedSlots()]),
  formLoader('eplb', 'one redundant expert per EP rank (EPLB)', ['eplb'], [emitEplb()]),
  formLoader('marlin', 'INT4 experts repacked to Marlin\'s tiles, scales and zero points permuted (vLLM\'s gptq/awq Marlin MoE)', ['marlin'], [emitMarlin()]),
  formLoader('eplb+shared-expert-slots+w31+marlin+pad-ir-8+transposed', 'every form that combines, at once', ['transposed', 'w31', 'eplb', 'marlin', 'pad-ir-8', 'shared-expert-slots'], [
    emitEplb(), emitSharedSlots(), emitW31, emitMarlin(), emitPadded(8), emitTransposed(),
  ]),
];

/** A copy of the gate rows where zeros belong: the padding of a buffer allocated with torch.empty and filled row by row. */
const garbage = (like: Tensor, shape: number[]): Tensor => {
  const z = zerosLike(like, shape);
  for (let i = 0; i < z.bytes.length; i++) z.bytes[i] = like.bytes[i % like.bytes.length]! | 1;
  return z;
};

/** Mutants: each declares a form and gets it wrong as a real port would. */
export const FORM_MUTANTS: readonly FormLoader[] = [
  formLoader('w31-declared-gate-first', 'declares w31 (TensorRT-LLM\'s [up; gate]) but its weight loader still writes vLLM\'s [gate; up]', ['w31'], []),
  formLoader('transposed-w2-untransposed', 'declares transposed, but only w13 is transposed; w2 stays [E, H, Ir]', ['transposed'], [emitTransposed(['w13'])]),
  formLoader('pad-ir-16-uninitialized', 'declares pad-ir-16, but the padded buffer comes from torch.empty: the padding holds leftover bytes, not zeros', ['pad-ir-16'], [emitPadded(16, garbage)]),
  formLoader('shared-replicated-own-shard-only', 'declares shared-replicated, but each TP rank fills only its own TP shard of the replicated buffer (the TP weight loader ran on a replicated parameter), zeros elsewhere', ['shared-replicated'], [
    emitSharedReplicated((whole, cut, name, req) => {
      if (req.tpSize === 1) return whole;
      const z = zerosLike(whole, whole.shape);
      const isW13 = name.endsWith('w13');
      const Is = isW13 ? whole.shape[0]! / 2 : whole.shape[1]!;
      const [a, b] = tpSlice(Is, req.tpSize, req.tpRank);
      const e = whole.bytes.length / (whole.shape[0]! * whole.shape[1]!);
      const H = isW13 ? whole.shape[1]! : whole.shape[0]!;
      if (isW13) {
        // Gate rows a..b and up rows Is+a..Is+b from the rank's cut [2Isr, H].
        z.bytes.set(cut.bytes.subarray(0, (b - a) * H * e), a * H * e);
        z.bytes.set(cut.bytes.subarray((b - a) * H * e), (Is + a) * H * e);
      } else {
        for (let h = 0; h < H; h++) z.bytes.set(cut.bytes.subarray(h * (b - a) * e, (h + 1) * (b - a) * e), (h * Is + a) * e);
      }
      return z;
    }),
  ]),
  formLoader('shared-slots-split-after-tp-cut', 'declares shared-expert-slots, but splits the rank\'s TP shard of the shared expert into n slots (slot j of TP rank r = rows r*Is/T + j*Ir) instead of cutting each slot of size I for TP (rows j*I + r*Ir)', ['shared-expert-slots'], [
    emitSharedSlots((j, r, m, T) => {
      const Ir = m.intermediate / T;
      const a = (r * m.sharedIntermediate) / T + j * Ir;
      return [a, a + Ir];
    }),
  ]),
  formLoader('marlin-w13-scales-with-wrong-k', 'declares marlin, but chooses w13\'s scale permutation from K = Ir (vLLM\'s Marlin MoE paths call marlin_moe_permute_scales(size_k=intermediate_size_per_partition) for w13, whose K is H): wrong wherever the group size lies between Ir and H: the single-group permutation where H has several groups (Ir <= group < H, e.g. I = 1024, group 128 at TP 8; right at TP 2), or the grouped one where H is one group', ['marlin'], [emitMarlin((w, K, Ir) => (w === 'w13' ? Ir : K))]),
  formLoader('eplb-replica-by-slot-index', 'declares eplb, but fills the redundant slot with the expert numbered like its physical slot index instead of its logical id', ['eplb'], [emitEplb((id, slot, redundant, m) => (redundant ? slot % m.experts : id))]),
];
