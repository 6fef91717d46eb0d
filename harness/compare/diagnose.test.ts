import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Canonical, ParallelRequest, Tensor } from '../tensor.js';
import { encodeFloats, decodeFloats64 } from '../safetensors/codecs.js';
import { expertsOf, tpSlice } from '../canonical/cut.js';
import { bitsHex, countKinds, diagnoseCanonical, DIAGNOSIS_KINDS, ranges, type Diagnosis } from './diagnose.js';
import { marlinScaleBytes } from '../canonical/marlin.js';

// A tiny model by hand: w13 [E, 2I, H], w2 [E, H, I], w2_bias [E, H], router [E, H], cut for a
// rank here with plain loops (independently of harness/canonical's specs).
interface Dims { E: number; I: number; H: number }

function rand(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 2 ** 32 - 0.5;
  };
}

const f32 = (shape: number[], values: ArrayLike<number>): Tensor => ({ dtype: 'F32', shape, bytes: encodeFloats('F32', values) });
const i32 = (ids: number[]): Tensor => ({ dtype: 'I32', shape: [ids.length], bytes: new Uint8Array(new Int32Array(ids).buffer) });
const vals = (t: Tensor) => decodeFloats64(t.dtype, t.bytes);

function wholeModel(d: Dims, seed = 1): Canonical {
  const r = rand(seed);
  const n = (k: number) => Array.from({ length: k }, r);
  return new Map<string, Tensor>([
    ['layers.0.experts.ids', i32(Array.from({ length: d.E }, (_, i) => i))],
    ['layers.0.experts.w13', f32([d.E, 2 * d.I, d.H], n(d.E * 2 * d.I * d.H))],
    ['layers.0.experts.w2', f32([d.E, d.H, d.I], n(d.E * d.H * d.I))],
    ['layers.0.experts.w2_bias', f32([d.E, d.H], n(d.E * d.H))],
    ['layers.0.router.weight', f32([d.E, d.H], n(d.E * d.H))],
  ]);
}

/** w13 rows of each expert: `rows(e)` lists the whole rows, in order, that the rank holds. */
function pickRows(t: Tensor, slots: number[], rows: (e: number) => number[]): Tensor {
  const [, R, H] = t.shape as [number, number, number];
  const v = vals(t);
  const out: number[] = [];
  for (const e of slots) for (const j of rows(e)) for (let c = 0; c < H; c++) out.push(v[(e * R + j) * H + c]!);
  return f32([slots.length, rows(slots[0]!).length, H], out);
}

function pickCols(t: Tensor, slots: number[], a: number, b: number): Tensor {
  const [, H, I] = t.shape as [number, number, number];
  const v = vals(t);
  const out: number[] = [];
  for (const e of slots) for (let h = 0; h < H; h++) for (let c = a; c < b; c++) out.push(v[(e * H + h) * I + c]!);
  return f32([slots.length, H, b - a], out);
}

function pickSlotsOf(t: Tensor, slots: number[]): Tensor {
  const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
  const v = vals(t);
  return f32([slots.length, ...t.shape.slice(1)], slots.flatMap((e) => Array.from(v.subarray(e * per, (e + 1) * per))));
}

const gateUp = (I: number, T: number, r: number) => {
  const [a, b] = tpSlice(I, T, r);
  return (_e: number) => [...Array.from({ length: b - a }, (_, i) => a + i), ...Array.from({ length: b - a }, (_, i) => I + a + i)];
};

function rankOf(whole: Canonical, d: Dims, req: ParallelRequest, o: { slots?: number[]; w13Rows?: (e: number) => number[]; w2Rank?: number } = {}): Canonical {
  const slots = o.slots ?? expertsOf(d.E, req.epSize, req.epRank, req.epPlacement);
  const [a, b] = tpSlice(d.I, req.tpSize, o.w2Rank ?? req.tpRank);
  return new Map<string, Tensor>([
    ['layers.0.experts.ids', i32(slots)],
    ['layers.0.experts.w13', pickRows(whole.get('layers.0.experts.w13')!, slots, o.w13Rows ?? gateUp(d.I, req.tpSize, req.tpRank))],
    ['layers.0.experts.w2', pickCols(whole.get('layers.0.experts.w2')!, slots, a, b)],
    ['layers.0.experts.w2_bias', pickSlotsOf(whole.get('layers.0.experts.w2_bias')!, slots)],
    ['layers.0.router.weight', whole.get('layers.0.router.weight')!],
  ]);
}

const req = (tpSize: number, tpRank: number, epSize = 1, epRank = 0, epPlacement: 'linear' | 'round_robin' = 'linear'): ParallelRequest => ({ tpSize, tpRank, epSize, epRank, epPlacement });
const kinds = (ds: Diagnosis[]) => ds.map((x) => `${x.tensor.replace('layers.0.', '')}:${x.kind}`);
const set = (c: Canonical, name: string, t: Tensor) => new Map(c).set(name, t);

describe('diagnoseCanonical', () => {
  const d: Dims = { E: 4, I: 4, H: 6 };
  const whole = wholeModel(d);

  it('finds nothing in a correct rank', () => {
    for (const r of [req(1, 0), req(2, 1), req(2, 0, 2, 1), req(1, 0, 3, 2, 'round_robin')]) {
      const x = rankOf(whole, d, r);
      expect(diagnoseCanonical(x, rankOf(whole, d, r), { req: r, whole })).toEqual([]);
    }
  });

  it('names gate and up halves swapped, on every expert', () => {
    const r = req(2, 1);
    const [a, b] = tpSlice(d.I, 2, 1);
    const found = rankOf(whole, d, r, { w13Rows: () => [...Array.from({ length: b - a }, (_, i) => d.I + a + i), ...Array.from({ length: b - a }, (_, i) => a + i)] });
    const ds = diagnoseCanonical(rankOf(whole, d, r), found, { req: r, whole });
    expect(kinds(ds)).toEqual(['experts.w13:gate-up-swapped']);
    expect(ds[0]!.detail).toBe('experts 0–3: gate and up halves swapped (up rows first)');
  });

  it('names the fused axis cut in one piece and another rank\'s slice', () => {
    const r = req(4, 1);
    const Ir = d.I / 4;
    const onePiece = rankOf(whole, d, r, { w13Rows: () => Array.from({ length: 2 * Ir }, (_, i) => 2 * Ir + i) });
    expect(kinds(diagnoseCanonical(rankOf(whole, d, r), onePiece, { req: r, whole }))).toEqual(['experts.w13:fused-axis-cut-in-one-piece']);
    const other = rankOf(whole, d, r, { w13Rows: gateUp(d.I, 4, 3), w2Rank: 2 });
    const ds = diagnoseCanonical(rankOf(whole, d, r), other, { req: r, whole });
    expect(kinds(ds)).toEqual(['experts.w13:tp-slice-of-another-rank', 'experts.w2:tp-slice-of-another-rank']);
    expect(ds.map((x) => x.detail)).toEqual(['experts 0–3: TP rank 1/4 holds the slice of TP rank 3', 'experts 0–3: TP rank 1/4 holds the columns of TP rank 2']);
  });

  it('gives the map of permuted experts, and names a wrong placement', () => {
    const r = req(1, 0, 2, 0);
    const perm = rankOf(whole, d, r, { slots: [1, 0] });
    const ds = diagnoseCanonical(rankOf(whole, d, r), perm, { req: r, whole });
    expect(kinds(ds)).toEqual(['experts.ids:expert-permutation', 'experts.w13:expert-permutation', 'experts.w2:expert-permutation', 'experts.w2_bias:expert-permutation']);
    expect(ds[1]!.map).toEqual([1, 0]);
    expect(ds[1]!.detail).toContain('slot 0 holds expert 1, slot 1 holds expert 0');
    const reversed = rankOf(whole, d, r, { slots: [2, 3] });
    const rd = diagnoseCanonical(rankOf(whole, d, r), reversed, { req: r, whole });
    expect(new Set(rd.map((x) => x.kind))).toEqual(new Set(['expert-placement']));
    expect(rd[1]!.detail).toMatch(/^the experts of EP rank 1 \(ranks reversed\)/);
    // E = 5 over 2 ranks, linear: rank 0 holds 0..2; ignoring the remainder leaves 0..1 (fewer slots).
    const d5: Dims = { E: 5, I: 4, H: 6 };
    const w5 = wholeModel(d5, 3);
    const dropped = rankOf(w5, d5, r, { slots: [0, 1] });
    const dd = diagnoseCanonical(rankOf(w5, d5, r), dropped, { req: r, whole: w5 });
    expect(new Set(dd.map((x) => x.kind))).toEqual(new Set(['expert-placement']));
    // Rank 0 alone cannot tell whether another rank holds the remainder: it says what it holds and what is due, no more.
    expect(dd[1]!.detail).toBe('linear placement ignoring E mod P = 1: this rank holds floor(E/P) = 2 experts from 0·2, where EP rank 0 holds 3: holds experts [0, 1], expected [0, 1, 2]');
    expect(dd.map((x) => x.detail).join('\n')).not.toMatch(/dropped|lost/);
    // The last rank taking the remainder (floor(E/P) from q·floor(E/P), then the rest): named from what it holds.
    const r1 = req(1, 0, 2, 1);
    const last = diagnoseCanonical(rankOf(w5, d5, r1), rankOf(w5, d5, r1, { slots: [2, 3, 4] }), { req: r1, whole: w5 });
    expect(new Set(last.map((x) => x.kind))).toEqual(new Set(['expert-placement']));
    expect(last[1]!.detail).toBe('linear placement with the E mod P = 1 remainder on the last rank: this rank holds experts 1·2 to 4, where EP rank 0 holds 3: holds experts [2, 3, 4], expected [3, 4]');
    const rr = rankOf(w5, d5, r, { slots: [0, 2, 4] });
    expect(diagnoseCanonical(rankOf(w5, d5, r), rr, { req: r, whole: w5 })[1]!.detail).toMatch(/^round_robin placement where linear is due/);
  });

  it('names zeros, a scale factor, NaN and a rounding through bf16, on the part they cover', () => {
    const r = req(2, 0);
    const x = rankOf(whole, d, r);
    const w13 = x.get('layers.0.experts.w13')!;
    const zeroed = { ...w13, bytes: w13.bytes.slice() };
    const per = zeroed.bytes.length / 4;
    zeroed.bytes.fill(0, 3 * per, 4 * per);
    const zd = diagnoseCanonical(x, set(x, 'layers.0.experts.w13', zeroed), { req: r, whole });
    expect(zd).toEqual([{ tensor: 'layers.0.experts.w13', kind: 'zeros-or-constant', detail: 'experts 3: all zeros' }]);
    // Only the up half of expert 1 zeroed: the part is named.
    const upZero = { ...w13, bytes: w13.bytes.slice() };
    upZero.bytes.fill(0, per + per / 2, 2 * per);
    expect(diagnoseCanonical(x, set(x, 'layers.0.experts.w13', upZero), { req: r, whole })[0]!.detail).toBe('up half of experts 1: all zeros');
    const bias = x.get('layers.0.experts.w2_bias')!;
    const halved = f32(bias.shape, vals(bias).map((v) => v / 2));
    expect(diagnoseCanonical(x, set(x, 'layers.0.experts.w2_bias', halved), { req: r, whole })).toEqual([
      { tensor: 'layers.0.experts.w2_bias', kind: 'scaled', detail: 'experts 0–3: found = c × expected with c = 1/2 (0.5000)' },
    ]);
    const nan = f32(bias.shape, vals(bias).map((v, i) => (i === 7 ? NaN : v)));
    expect(kinds(diagnoseCanonical(x, set(x, 'layers.0.experts.w2_bias', nan), { req: r, whole }))).toEqual(['experts.w2_bias:nan-or-inf']);
    const router = x.get('layers.0.router.weight')!;
    const rounded = f32(router.shape, decodeFloats64('BF16', encodeFloats('BF16', vals(router))));
    const rd = diagnoseCanonical(x, set(x, 'layers.0.router.weight', rounded), { req: r, whole });
    expect(rd).toEqual([{ tensor: 'layers.0.router.weight', kind: 'dtype-conversion', detail: 'values rounded through BF16 (stored as F32)' }]);
    const asBf16: Tensor = { dtype: 'BF16', shape: router.shape, bytes: encodeFloats('BF16', vals(router)) };
    expect(diagnoseCanonical(x, set(x, 'layers.0.router.weight', asBf16), { req: r, whole })[0]).toMatchObject({ kind: 'dtype-conversion', detail: 'stored as BF16, expected F32: the values rounded to BF16' });
  });

  it('names a transposed square matrix and interleaved rows read as concatenated', () => {
    const sq: Dims = { E: 2, I: 3, H: 6 };
    const w = wholeModel(sq, 5);
    const t = w.get('layers.0.experts.w13')!;
    const v = vals(t);
    const tr = f32(t.shape, v.map((_, k) => { const e = Math.floor(k / 36); const i = Math.floor((k % 36) / 6); const j = k % 6; return v[e * 36 + j * 6 + i]!; }));
    const wt = set(w, 'layers.0.experts.w13', tr);
    const r = req(1, 0);
    expect(kinds(diagnoseCanonical(rankOf(w, sq, r), rankOf(wt, sq, r), { req: r, whole: w }))).toEqual(['experts.w13:transposed']);
    // Stored g0 u0 g1 u1 ...: row i of the bug's result is stored row i.
    const inter = rankOf(w, sq, r, { w13Rows: () => Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? i / 2 : 3 + (i - 1) / 2)) });
    expect(kinds(diagnoseCanonical(rankOf(w, sq, r), inter, { req: r, whole: w }))).toEqual(['experts.w13:interleave-concat-confusion']);
  });

  it('names a transposed square w2 (H == I), at TP 1 and on a TP rank\'s columns of the transposed matrix', () => {
    const sq: Dims = { E: 3, I: 4, H: 4 };
    const w = wholeModel(sq, 9);
    const t = w.get('layers.0.experts.w2')!;
    const v = vals(t);
    const n = 4;
    // Each expert's [H, I] matrix transposed (the loader read down_proj the other way round).
    const tr = f32(t.shape, v.map((_, k) => { const e = Math.floor(k / (n * n)); const i = Math.floor((k % (n * n)) / n); const j = k % n; return v[e * n * n + j * n + i]!; }));
    const wt = set(w, 'layers.0.experts.w2', tr);
    for (const r of [req(1, 0), req(2, 1), req(2, 0, 2, 1)]) {
      const ds = diagnoseCanonical(rankOf(w, sq, r), rankOf(wt, sq, r), { req: r, whole: w });
      expect(kinds(ds), `TP ${r.tpRank}/${r.tpSize} EP ${r.epRank}/${r.epSize}`).toEqual(['experts.w2:transposed']);
      expect(ds[0]!.detail).toMatch(/^experts [\d–, ]+: each \[4, 4\] matrix read untransposed/);
    }
  });

  it('names a transposed non-square w2 (H != I) by its swapped shape and bytes; another tensor of that shape stays a shape mismatch', () => {
    const rect: Dims = { E: 3, I: 6, H: 4 };
    const w = wholeModel(rect, 11);
    for (const r of [req(1, 0), req(2, 1)]) {
      const want = rankOf(w, rect, r);
      const t = want.get('layers.0.experts.w2')!;
      const [E, H, Ir] = t.shape as [number, number, number];
      const v = vals(t);
      // Each expert's [H, Ir] matrix written as [Ir, H] (down_proj without the transpose).
      const tr = f32([E, Ir, H], v.map((_, k) => { const e = Math.floor(k / (H * Ir)); const i = Math.floor((k % (H * Ir)) / H); const j = k % H; return v[e * H * Ir + j * Ir + i]!; }));
      const ds = diagnoseCanonical(want, set(want, 'layers.0.experts.w2', tr), { req: r, whole: w });
      expect(kinds(ds), `TP ${r.tpRank}/${r.tpSize}`).toEqual(['experts.w2:transposed']);
      expect(ds[0]!.detail).toBe(`every [${H}, ${Ir}] matrix stored transposed: [${E}, ${Ir}, ${H}], expected [${E}, ${H}, ${Ir}]`);
      // The same shape with other values: not a transpose.
      const other = f32([E, Ir, H], v.map((x) => x + 1));
      expect(kinds(diagnoseCanonical(want, set(want, 'layers.0.experts.w2', other), { req: r, whole: w }))).toEqual(['experts.w2:shape-mismatch']);
    }
  });

  it('names INT4 scales in the order of Marlin\'s other scale permutation (chosen from the wrong K), either way', () => {
    const [E, N, G] = [2, 128, 2];
    const r = rand(7);
    const bf16 = (bytes: Uint8Array): Tensor => ({ dtype: 'BF16', shape: [E, N, G], bytes });
    const want = bf16(encodeFloats('BF16', Array.from({ length: E * N * G }, r)));
    for (const grouped of [true, false]) {
      // A loader permutes with one Marlin scale permutation; the harness undoes the other.
      const found = bf16(marlinScaleBytes(marlinScaleBytes(want.bytes, E, G, N, 2, true, !grouped), E, G, N, 2, false, grouped));
      const ds = diagnoseCanonical(new Map([['layers.0.experts.w13_scale', want]]), new Map([['layers.0.experts.w13_scale', found]]));
      expect(kinds(ds)).toEqual(['experts.w13_scale:marlin-scale-permutation']);
      expect(ds[0]!.detail).toMatch(grouped ? /^experts 0, 1: scales in Marlin's single-group \(scale_perm_single\) order where the grouped one is due/ : /grouped \(scale_perm\) order where the single-group one is due/);
    }
  });

  it('names missing, unexpected, not-cut and mis-shaped tensors, and an EP-cut router', () => {
    const r = req(2, 1, 2, 1);
    const x = rankOf(whole, d, r);
    const missing = new Map(x);
    missing.delete('layers.0.experts.w2_bias');
    missing.set('layers.0.experts.gate_up_proj', x.get('layers.0.experts.w13')!);
    expect(kinds(diagnoseCanonical(x, missing, { req: r, whole }))).toEqual(['experts.gate_up_proj:unexpected-tensor', 'experts.w2_bias:missing-tensor']);
    const notCut = set(x, 'layers.0.experts.w13', pickRows(whole.get('layers.0.experts.w13')!, [2, 3], () => Array.from({ length: 8 }, (_, i) => i)));
    expect(diagnoseCanonical(x, notCut, { req: r, whole })[0]!.kind).toBe('not-cut');
    const routerCut = set(x, 'layers.0.router.weight', pickSlotsOf(whole.get('layers.0.router.weight')!, [2, 3]));
    expect(diagnoseCanonical(x, routerCut, { req: r, whole })[0]).toMatchObject({ kind: 'shape-mismatch', detail: expect.stringMatching(/only the rows of this rank's experts \[2, 3\] \(cut by EP/) });
    const odd = set(x, 'layers.0.router.weight', f32([1, 3], [1, 2, 3]));
    expect(diagnoseCanonical(x, odd, { req: r, whole })[0]!.kind).toBe('shape-mismatch');
  });

  it('a tensor of the due shape in another dtype is a dtype conversion, not a shape mismatch: FP8 e4m3 bytes labelled e5m2 named so', () => {
    const bytes = Uint8Array.from([0x38, 0x40, 0xb8, 0x00, 0x7e, 0x01]);
    const want = new Map([['layers.0.experts.w2', { dtype: 'F8_E4M3' as const, shape: [1, 2, 3], bytes }]]);
    const relabelled = new Map([['layers.0.experts.w2', { dtype: 'F8_E5M2' as const, shape: [1, 2, 3], bytes }]]);
    expect(diagnoseCanonical(want, relabelled)).toEqual([{ tensor: 'layers.0.experts.w2', kind: 'dtype-conversion', detail: 'stored as F8_E5M2, expected F8_E4M3, shape [1, 2, 3] as due: the expected bytes labelled F8_E5M2 (read as another format of the same width)' }]);
    const other = new Map([['layers.0.experts.w2', { dtype: 'I32' as const, shape: [1, 2, 3], bytes: new Uint8Array(24) }]]);
    expect(diagnoseCanonical(want, other)[0]).toMatchObject({ kind: 'dtype-conversion', detail: expect.stringMatching(/shape \[1, 2, 3\] as due: other values in I32$/) });
  });

  it('says unknown, with the rows that differ, rather than guess', () => {
    const r = req(1, 0);
    const x = rankOf(whole, d, r);
    const w2 = x.get('layers.0.experts.w2')!;
    const noisy = f32(w2.shape, vals(w2).map((v, i) => (i >= 12 && i < 20 ? v + 0.25 * Math.sin(i) : v)));
    const ds = diagnoseCanonical(x, set(x, 'layers.0.experts.w2', noisy), { req: r, whole });
    expect(ds).toEqual([{ tensor: 'layers.0.experts.w2', kind: 'unknown', detail: 'experts 0: no known relation to the reference; rows 3..5 differ (of 6)' }]);
  });

  it('names one relation per bug over random sizes and ranks', () => {
    const bugs = ['gate-up-swapped', 'tp-slice-of-another-rank', 'expert-permutation', 'zeros-or-constant'] as const;
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 6 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 2, max: 4 }), fc.constantFrom(...bugs), fc.nat(), (E, per, H, T, bug, seed) => {
        const dd: Dims = { E, I: per * T, H };
        const w = wholeModel(dd, seed + 1);
        const r = req(T, seed % T);
        const x = rankOf(w, dd, r);
        const Ir = per;
        const [a] = tpSlice(dd.I, T, r.tpRank);
        const found =
          bug === 'gate-up-swapped' ? rankOf(w, dd, r, { w13Rows: () => [...Array.from({ length: Ir }, (_, i) => dd.I + a + i), ...Array.from({ length: Ir }, (_, i) => a + i)] })
          : bug === 'tp-slice-of-another-rank' ? rankOf(w, dd, r, { w13Rows: gateUp(dd.I, T, (r.tpRank + 1) % T) })
          : bug === 'expert-permutation' ? rankOf(w, dd, r, { slots: Array.from({ length: E }, (_, i) => E - 1 - i) })
          : set(x, 'layers.0.experts.w13', { ...x.get('layers.0.experts.w13')!, bytes: new Uint8Array(x.get('layers.0.experts.w13')!.bytes.length) });
        const ds = diagnoseCanonical(x, found, { req: r, whole: w });
        const w13 = ds.find((z) => z.tensor === 'layers.0.experts.w13');
        // E = 1 (or a palindromic order) leaves nothing to permute.
        if (bug === 'expert-permutation' && E === 1) return;
        expect(w13?.kind).toBe(bug);
        expect(ds.every((z) => z.kind !== 'unknown')).toBe(true);
      }),
      { seed: 13, numRuns: 120 },
    );
  });
});

describe('hostile input', () => {
  it('never throws, whatever the found tensors are: odd shapes, dtypes, lengths and names', () => {
    const d: Dims = { E: 3, I: 2, H: 4 };
    const whole = wholeModel(d, 9);
    const r = req(2, 1, 3, 2);
    const x = rankOf(whole, d, r);
    const names = [...x.keys(), 'layers.0.shared.w13', 'layers.0.experts.w13_scale', 'other'];
    const tensor = fc.record({
      dtype: fc.constantFrom('F32' as const, 'BF16' as const, 'I32' as const, 'U8' as const, 'F4' as const),
      shape: fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 4 }),
      bytes: fc.uint8Array({ maxLength: 200 }),
    });
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...names), tensor, { maxKeys: 6 }), (found) => {
        const ds = diagnoseCanonical(x, new Map(Object.entries(found)), { req: r, whole });
        for (const z of ds) expect(DIAGNOSIS_KINDS).toContain(z.kind);
        // Nothing fell through to the safety net: every tensor was examined.
        expect(ds.filter((z) => z.detail.startsWith('could not be examined'))).toEqual([]);
      }),
      { seed: 5, numRuns: 300 },
    );
  });
});

describe('helpers', () => {
  it('shows a dtype\'s bit pattern, not the little-endian bytes', () => {
    expect(bitsHex('F16', Uint8Array.of(0x57, 0xb0))).toBe('b057');
    expect(bitsHex('F32', Uint8Array.of(0x00, 0x00, 0x80, 0x3f))).toBe('3f800000');
  });
  it('writes number ranges and counts the kinds of failures', () => {
    expect(ranges([0, 1, 2, 3, 5, 7, 8])).toBe('0–3, 5, 7, 8');
    expect(countKinds([[{ tensor: 'a', kind: 'gate-up-swapped', detail: '' }], [{ tensor: 'a', kind: 'gate-up-swapped', detail: '' }], undefined])).toEqual([['gate-up-swapped', 2], ['no diagnosis', 1]]);
  });
  it('keeps the names the issue fixed for the JSON format', () => {
    for (const k of ['gate-up-swapped', 'fused-axis-cut-in-one-piece', 'tp-slice-of-another-rank', 'not-cut', 'expert-permutation', 'expert-placement', 'transposed', 'interleave-concat-confusion', 'scaled', 'zeros-or-constant', 'nan-or-inf', 'dtype-conversion', 'scale-block-misaligned', 'missing-tensor', 'unexpected-tensor', 'shape-mismatch', 'accepted-broken-checkpoint', 'refused-valid-request', 'unknown']) {
      expect(DIAGNOSIS_KINDS).toContain(k);
    }
  });
});
