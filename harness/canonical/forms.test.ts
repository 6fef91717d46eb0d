// The engine-form mapping on small hand-built ranks: declarations are parsed strictly, no
// form leaves the ranks exactly as they are, and every promise a form makes (zero padding,
// identical replicas, physical slots equal to their logical expert, shared slots where the
// spec puts them) is checked, with a typed error naming form, rank, tensor, expected and found.
import { describe, expect, it } from 'vitest';
import type { Canonical, EpPlacement, ParallelRequest, Tensor } from '../tensor.js';
import { concatAxis, int32Tensor, pickSlots, selectAxis, transposeLast2 } from '../tensor-ops.js';
import { expertsOf } from './cut.js';
import { FormDeclarationError, FormMismatch, NO_FORMS, parseForms, toCanonicalRanks, type RankOutput } from './forms.js';
import { marlinScaleBytes, marlinWeightBytes, marlinZeroBytes } from './marlin.js';

const E = 3;
const H = 2;
const I = 4;
const Is = 8;
const dims = { experts: E, intermediate: I, sharedIntermediate: Is };

const f32 = (shape: number[], base: number): Tensor => {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'F32', shape, bytes: new Uint8Array(Float32Array.from({ length: n }, (_, i) => base + i + 1).buffer) };
};
const W13 = f32([E, 2 * I, H], 0);
const W2 = f32([E, H, I], 1000);
const S13 = f32([2 * Is, H], 2000);
const S2 = f32([H, Is], 3000);
const ROUTER = f32([E, H], 4000);

/** The canonical rank of spec §1, cut here by hand. */
function canonical(T: number, r: number, P = 1, q = 0, placement: EpPlacement = 'linear'): RankOutput {
  const req: ParallelRequest = { tpSize: T, tpRank: r, epSize: P, epRank: q, epPlacement: placement };
  const ids = expertsOf(E, P, q, placement);
  const [ir, isr] = [I / T, Is / T];
  const tensors: Canonical = new Map([
    ['layers.0.experts.ids', int32Tensor(ids)],
    ['layers.0.experts.w13', pickSlots(selectAxis(W13, 1, [[r * ir, (r + 1) * ir], [I + r * ir, I + (r + 1) * ir]]), ids)],
    ['layers.0.experts.w2', pickSlots(selectAxis(W2, 2, [[r * ir, (r + 1) * ir]]), ids)],
    ['layers.0.router.weight', ROUTER],
    ['layers.0.shared.w13', selectAxis(S13, 0, [[r * isr, (r + 1) * isr], [Is + r * isr, Is + (r + 1) * isr]])],
    ['layers.0.shared.w2', selectAxis(S2, 1, [[r * isr, (r + 1) * isr]])],
  ]);
  return { req, tensors };
}
const grid = (T: number, P = 1) => Array.from({ length: T * P }, (_, i) => canonical(T, Math.floor(i / P), P, i % P));
const withTensor = (r: RankOutput, name: string, t: Tensor | undefined): RankOutput => {
  const tensors = new Map(r.tensors);
  if (t) tensors.set(name, t);
  else tensors.delete(name);
  return { req: r.req, tensors };
};
const same = (a: RankOutput[], b: RankOutput[]) => a.length === b.length && a.every((r, i) => [...r.tensors].every(([k, t]) => Buffer.from(t.bytes).equals(Buffer.from(b[i]!.tensors.get(k)?.bytes ?? []))) && r.tensors.size === b[i]!.tensors.size);
const mismatch = (f: () => unknown): FormMismatch => {
  try {
    f();
  } catch (e) {
    if (e instanceof FormMismatch) return e;
    throw e;
  }
  throw new Error('no FormMismatch');
};

describe('parseForms', () => {
  it('accepts every form once, in the order they are undone, with the pad parsed', () => {
    expect(parseForms(['eplb', 'pad-ir-64', 'w31', 'transposed'])).toEqual({ names: ['transposed', 'pad-ir-64', 'w31', 'eplb'], padIr: 64 });
    expect(parseForms([])).toEqual(NO_FORMS);
  });
  it('refuses unknown names, repeats, a pad below 1 and the two shared forms together', () => {
    expect(() => parseForms(['w13'])).toThrow(FormDeclarationError);
    expect(() => parseForms(['w31', 'w31'])).toThrow(/declared twice/);
    expect(() => parseForms(['pad-ir-8', 'pad-ir-16'])).toThrow(/declared twice/);
    expect(() => parseForms(['pad-ir-0'])).toThrow(/N >= 1/);
    expect(() => parseForms(['shared-replicated', 'shared-expert-slots'])).toThrow(/exclude each other/);
  });
});

describe('toCanonicalRanks', () => {
  it('leaves the ranks exactly as they are when no form is declared (version 1)', () => {
    const ranks = grid(2, 2);
    expect(same(toCanonicalRanks(NO_FORMS, ranks, dims), ranks)).toBe(true);
  });

  it('undoes w31, transposed and padding together', () => {
    const ranks = grid(2);
    const engine = ranks.map((r) => {
      const w13 = r.tensors.get('layers.0.experts.w13')!;
      const ir = I / 2;
      const zeros = (t: Tensor, shape: number[]): Tensor => ({ dtype: t.dtype, shape, bytes: new Uint8Array(4 * shape.reduce((a, b) => a * b, 1)) });
      const up = selectAxis(w13, 1, [[ir, 2 * ir]]);
      const gate = selectAxis(w13, 1, [[0, ir]]);
      const padded13 = concatAxis([up, zeros(up, [E, 1, H]), gate, zeros(gate, [E, 1, H])], 1); // pad-ir-3: Ir 2 -> 3
      const w2 = r.tensors.get('layers.0.experts.w2')!;
      const padded2 = concatAxis([w2, zeros(w2, [E, H, 1])], 2);
      return withTensor(withTensor(r, 'layers.0.experts.w13', transposeLast2(padded13)), 'layers.0.experts.w2', transposeLast2(padded2));
    });
    expect(same(toCanonicalRanks(parseForms(['w31', 'transposed', 'pad-ir-3']), engine, dims), ranks)).toBe(true);
  });

  it('w31 and transposed: a tensor that cannot hold the form is a FormMismatch naming it', () => {
    const r = canonical(1, 0);
    const odd = withTensor(r, 'layers.0.experts.w13', f32([E, 3, H], 0));
    expect(mismatch(() => toCanonicalRanks(parseForms(['w31']), [odd], dims))).toMatchObject({ form: 'w31', tensor: 'layers.0.experts.w13', expected: '[E_local, 2*Ir, ...]', found: '[3,3,2]' });
    const flat = withTensor(withTensor(r, 'layers.0.experts.w13', transposeLast2(r.tensors.get('layers.0.experts.w13')!)), 'layers.0.experts.w2', f32([E * H, I], 0));
    expect(mismatch(() => toCanonicalRanks(parseForms(['transposed']), [flat], dims))).toMatchObject({ form: 'transposed', tensor: 'layers.0.experts.w2', found: '[6,4]' });
  });

  it('transposed: a 3-D tensor left untransposed is a FormMismatch with the shape the loader wrote, not a shape mismatch after transposing', () => {
    // H = 2, Ir = 2 at TP 2: w2 [E, H, Ir] is square, so w13 [E, 2*Ir, H] = [3, 4, 2] and w2 of TP 1 [3, 2, 4] carry the test.
    const withH = { ...dims, hidden: H };
    const r1 = canonical(1, 0);
    const w2 = r1.tensors.get('layers.0.experts.w2')!;
    const only13 = withTensor(r1, 'layers.0.experts.w13', transposeLast2(r1.tensors.get('layers.0.experts.w13')!)); // w2 kept as [E, H, Ir]
    const e = mismatch(() => toCanonicalRanks(parseForms(['transposed']), [only13], withH));
    expect(e).toMatchObject({ form: 'transposed', tensor: 'layers.0.experts.w2', expected: `[${E},${I},${H}]`, found: `[${w2.shape}]` });
    expect(e.message).toMatch(/declared form transposed: a transposed w2 is \[E_local, Ir, H\]/);
    // Without the hidden size the Ir side still tells; w13 left [E, 2*Ir, H] too.
    expect(mismatch(() => toCanonicalRanks(parseForms(['transposed']), [r1], dims))).toMatchObject({ form: 'transposed', tensor: 'layers.0.experts.w13', expected: `[${E},H,${2 * I}]`, found: `[${E},${2 * I},${H}]` });
    // With pad-ir-N the declared width is the padded one: Ir 4 -> 6 under pad-ir-3.
    const zeros = (shape: number[]): Tensor => ({ dtype: 'F32', shape, bytes: new Uint8Array(4 * shape.reduce((a, b) => a * b, 1)) });
    const w13 = r1.tensors.get('layers.0.experts.w13')!;
    const p13 = concatAxis([selectAxis(w13, 1, [[0, I]]), zeros([E, 2, H]), selectAxis(w13, 1, [[I, 2 * I]]), zeros([E, 2, H])], 1);
    const p2 = concatAxis([w2, zeros([E, H, 2])], 2);
    const padded = withTensor(withTensor(r1, 'layers.0.experts.w13', transposeLast2(p13)), 'layers.0.experts.w2', p2);
    expect(mismatch(() => toCanonicalRanks(parseForms(['transposed', 'pad-ir-3']), [padded], withH))).toMatchObject({ form: 'transposed', tensor: 'layers.0.experts.w2', expected: `[${E},6,${H}]`, found: `[${E},${H},6]` });
    expect(same(toCanonicalRanks(parseForms(['transposed', 'pad-ir-3']), [withTensor(padded, 'layers.0.experts.w2', transposeLast2(p2))], withH), [r1])).toBe(true);
  });

  it('pad-ir-N: non-zero padding names the rank, the tensor, the element and its bytes', () => {
    const r = canonical(2, 1);
    const w2 = r.tensors.get('layers.0.experts.w2')!;
    const pad = f32([E, H, 1], 7); // 8, 9, ...: not zeros
    const e = mismatch(() => toCanonicalRanks(parseForms(['pad-ir-3']), [withTensor(r, 'layers.0.experts.w2', concatAxis([w2, pad], 2))], dims));
    expect(e.message).toMatch(/^TP rank 1\/2, EP rank 0\/1 linear: declared form pad-ir-3: w13 padded to 2\*Irp = 2\*3 has the wrong shape \(expected \[3,6,2\], found \[3,4,2\]\)/);
    const zeroRow: Tensor = { dtype: 'F32', shape: [E, 1, H], bytes: new Uint8Array(4 * E * H) };
    const ok13 = (t: Tensor) => concatAxis([selectAxis(t, 1, [[0, 2]]), zeroRow, selectAxis(t, 1, [[2, 4]]), zeroRow], 1);
    const padded = withTensor(withTensor(r, 'layers.0.experts.w2', concatAxis([w2, pad], 2)), 'layers.0.experts.w13', ok13(r.tensors.get('layers.0.experts.w13')!));
    const z = mismatch(() => toCanonicalRanks(parseForms(['pad-ir-3']), [padded], dims));
    expect(z).toMatchObject({ form: 'pad-ir-3', tensor: 'layers.0.experts.w2', expected: '0x00000000 (zero) at [0,0,2]', found: '0x00000041 (8)' });
    expect(z.message).toContain('TP rank 1/2, EP rank 0/1 linear: declared form pad-ir-3: the padding columns must be zeros');
  });

  it('shared-replicated: cuts the replica for each TP rank, and a replica that differs between ranks names both', () => {
    const ranks = grid(2, 2);
    const replicated = ranks.map((r) => withTensor(withTensor(r, 'layers.0.shared.w13', S13), 'layers.0.shared.w2', S2));
    expect(same(toCanonicalRanks(parseForms(['shared-replicated']), replicated, dims), ranks)).toBe(true);
    const stale = { ...S2, bytes: S2.bytes.slice() };
    stale.bytes[4 * 5] = 0x55;
    const bad = replicated.map((r, i) => (i === 3 ? withTensor(r, 'layers.0.shared.w2', stale) : r));
    const e = mismatch(() => toCanonicalRanks(parseForms(['shared-replicated']), bad, dims));
    expect(e.message).toBe("TP rank 1/2, EP rank 1/2 linear: declared form shared-replicated: the replicated shared expert differs from TP rank 0/2, EP rank 0/2 linear's copy at [0,5] (expected 0x00e03b45 (3006), found 0x55e03b45 (3006.020751953125)) [layer 0, tensor \"layers.0.shared.w2\"]");
    // A loader that cut the shared expert after all: the replica has the wrong shape.
    expect(mismatch(() => toCanonicalRanks(parseForms(['shared-replicated']), ranks, dims)).message).toMatch(/replicated shared tensor \(whole on every rank\) has the wrong shape \(expected \[16,2\], found \[8,2\]\)/);
  });

  it('shared-expert-slots: slots E..E+n-1 rebuild the canonical shared expert; misplaced ids, a leftover shared tensor and a non-zero slot bias fail', () => {
    const T = 2;
    const ranks = grid(T, 2);
    const n = Is / I;
    const slotted = ranks.map((r) => {
      const t = r.req.tpRank;
      const ir = I / T;
      // Slot j on TP rank t: rows j*I + t*ir .. of the shared gate and up, columns of the down.
      const w13 = Array.from({ length: n }, (_, j) => selectAxis(S13, 0, [[j * I + t * ir, j * I + (t + 1) * ir], [Is + j * I + t * ir, Is + j * I + (t + 1) * ir]]));
      const w2 = Array.from({ length: n }, (_, j) => selectAxis(S2, 1, [[j * I + t * ir, j * I + (t + 1) * ir]]));
      const stack = (ts: Tensor[]) => concatAxis(ts.map((x) => ({ ...x, shape: [1, ...x.shape] })), 0);
      const ids = expertsOf(E, 2, r.req.epRank, 'linear');
      let out = withTensor(r, 'layers.0.experts.w13', concatAxis([r.tensors.get('layers.0.experts.w13')!, stack(w13)], 0));
      out = withTensor(out, 'layers.0.experts.w2', concatAxis([r.tensors.get('layers.0.experts.w2')!, stack(w2)], 0));
      out = withTensor(out, 'layers.0.experts.ids', int32Tensor([...ids, E, E + 1]));
      return withTensor(withTensor(out, 'layers.0.shared.w13', undefined), 'layers.0.shared.w2', undefined);
    });
    const forms = parseForms(['shared-expert-slots']);
    expect(same(toCanonicalRanks(forms, slotted, dims).map((r) => ({ req: r.req, tensors: new Map([...r.tensors].sort()) })), ranks.map((r) => ({ req: r.req, tensors: new Map([...r.tensors].sort()) })))).toBe(true);
    const wrongIds = slotted.map((r, i) => (i === 1 ? withTensor(r, 'layers.0.experts.ids', int32Tensor([2, 0, 1])) : r));
    expect(mismatch(() => toCanonicalRanks(forms, wrongIds, dims))).toMatchObject({ tensor: 'layers.0.experts.ids', expected: '[..., 3,4]', found: '[2,0,1]' });
    expect(mismatch(() => toCanonicalRanks(forms, ranks, dims)).message).toMatch(/^TP rank 0\/2, EP rank 0\/2 linear: declared form shared-expert-slots: the shared expert must be in expert slots 3\.\.4, not in shared\.w13/);
    const bias = slotted.map((r) => withTensor(r, 'layers.0.experts.w2_bias', f32([r.tensors.get('layers.0.experts.w13')!.shape[0]!, H], 0)));
    expect(mismatch(() => toCanonicalRanks(forms, bias, dims)).message).toMatch(/a shared slot's bias \(the shared expert has none\) must be zeros/);
  });

  it('eplb: redundant copies are folded into the canonical placement; a copy that differs, an id out of range and an expert held nowhere fail', () => {
    const ranks = grid(1, 2); // EP rank 0: experts 0, 1; rank 1: expert 2
    const whole = canonical(1, 0);
    const physical = (r: RankOutput, ids: number[]) => {
      let out = withTensor(r, 'layers.0.experts.ids', int32Tensor(ids));
      for (const k of ['layers.0.experts.w13', 'layers.0.experts.w2']) out = withTensor(out, k, pickSlots(whole.tensors.get(k)!, ids));
      return out;
    };
    const eplb = parseForms(['eplb']);
    // Rank 0 holds 2 and 0, rank 1 holds 1, 2 and 2 again: more slots than experts, ids repeating.
    const engine = [physical(ranks[0]!, [2, 0]), physical(ranks[1]!, [1, 2, 2])];
    expect(same(toCanonicalRanks(eplb, engine, dims), ranks)).toBe(true);
    const w13 = engine[1]!.tensors.get('layers.0.experts.w13')!;
    const bad = { ...w13, bytes: w13.bytes.slice() };
    bad.bytes.set(new Uint8Array(new Float32Array([-1]).buffer), 4 * (2 * 2 * I * H + 3));
    const e = mismatch(() => toCanonicalRanks(eplb, [engine[0]!, withTensor(engine[1]!, 'layers.0.experts.w13', bad)], dims));
    expect(e.message).toBe('TP rank 0/1, EP rank 1/2 linear: declared form eplb: physical slot 2 holds expert 2 but differs from its copy in EP rank 0 slot 0 at [1,1] (expected 0x00001042 (36), found 0x000080bf (-1)) [layer 0, tensor "layers.0.experts.w13"]');
    expect(mismatch(() => toCanonicalRanks(eplb, [physical(ranks[0]!, [0, 1]), physical(ranks[1]!, [1])], dims))).toMatchObject({ message: expect.stringContaining('logical expert 2 is held by no physical slot of any EP rank'), tensor: 'layers.0.experts.ids', found: '[0,1]' });
    const outOfRange = withTensor(engine[1]!, 'layers.0.experts.ids', int32Tensor([1, 2, 3]));
    expect(mismatch(() => toCanonicalRanks(eplb, [engine[0]!, outOfRange], dims))).toMatchObject({ expected: 'an id in 0..2', found: 3 });
  });

  it('w31 and eplb read a rank\'s names a few times, not once per layer: a loader\'s output of 20,000 layers took 32 s (w31), of 10,000 took 29 s (eplb)', () => {
    /** A rank whose reads of its entries are counted (counted, not timed). */
    class Counted extends Map<string, Tensor> {
      reads = 0;
      override *entries(): MapIterator<[string, Tensor]> {
        for (const e of super.entries()) {
          this.reads++;
          yield e;
        }
      }
      override *keys(): MapIterator<string> {
        for (const [k] of this.entries()) yield k;
      }
      override [Symbol.iterator](): MapIterator<[string, Tensor]> {
        return this.entries();
      }
    }
    const layers = 500;
    const one = canonical(1, 0).tensors;
    for (const form of ['w31', 'eplb']) {
      const tensors = new Counted();
      for (let L = 0; L < layers; L++) for (const w of ['ids', 'w13', 'w2']) tensors.set(`layers.${L}.experts.${w}`, one.get(`layers.0.experts.${w}`)!);
      toCanonicalRanks(parseForms([form]), [{ req: canonical(1, 0).req, tensors }], dims);
      // Per layer: 1,500 names read 500 times (w31), 3 × 1,500 × 500 (eplb); now a few passes.
      expect(tensors.reads, form).toBeLessThan(10 * tensors.size);
    }
  });

  it('needs every rank of the split for the forms that look across ranks', () => {
    const slotsOnly = grid(2).slice(0, 1).map((r) => withTensor(withTensor(withTensor(r, 'layers.0.shared.w13', undefined), 'layers.0.shared.w2', undefined), 'layers.0.experts.ids', int32Tensor([0, 1, 2, 3, 4])));
    const padded = slotsOnly.map((r) => withTensor(withTensor(r, 'layers.0.experts.w13', concatAxis([r.tensors.get('layers.0.experts.w13')!, pickSlots(r.tensors.get('layers.0.experts.w13')!, [0, 1])], 0)), 'layers.0.experts.w2', concatAxis([r.tensors.get('layers.0.experts.w2')!, pickSlots(r.tensors.get('layers.0.experts.w2')!, [0, 1])], 0)));
    expect(mismatch(() => toCanonicalRanks(parseForms(['shared-expert-slots']), padded, dims))).toMatchObject({ expected: 'TP rank 1, EP rank 0', found: 'none' });
  });

  it('marlin: INT4 weights, scales and zero points come back from Marlin\'s order; a weight left canonical where Marlin tiles is a mismatch; untiled weights stay', () => {
    const quant = { method: 'int4-ct', packing: 8, scaleBlock: { rows: 1, cols: 32 }, splitsBlocks: false, zeroRows: 8 };
    const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (Math.imul(i + seed, 2654435761) >>> 11) & 255);
    const int4 = (H: number, Ir: number): RankOutput => {
      const S = 2;
      const t = (shape: number[], dtype: 'I32' | 'BF16', seed: number): Tensor => ({ dtype, shape, bytes: bytes(shape.reduce((a, b) => a * b, 1) * (dtype === 'I32' ? 4 : 2), seed) });
      return {
        req: { tpSize: 1, tpRank: 0, epSize: 1, epRank: 0, epPlacement: 'linear' },
        tensors: new Map([
          ['layers.0.experts.ids', int32Tensor([0, 1])],
          ['layers.0.experts.w13', t([S, 2 * Ir, H / 8], 'I32', 1)],
          ['layers.0.experts.w13_scale', t([S, 2 * Ir, H / 32], 'BF16', 2)],
          ['layers.0.experts.w13_zero', t([S, (2 * Ir) / 8, H / 32], 'I32', 3)],
          ['layers.0.experts.w2', t([S, H, Ir / 8], 'I32', 4)],
          ['layers.0.experts.w2_scale', t([S, H, Ir / 32], 'BF16', 5)],
          ['layers.0.experts.w2_zero', t([S, H / 8, Ir / 32], 'I32', 6)],
        ]),
      };
    };
    const toMarlin = (r: RankOutput, w: string, K: number, N: number): RankOutput => {
      const p = `layers.0.experts.${w}`;
      const G = K / 32;
      let out = withTensor(r, p, { dtype: 'I32', shape: [2, K / 16, 2 * N], bytes: marlinWeightBytes(r.tensors.get(p)!.bytes, 2, K, N, { alongRows: false }, true) });
      out = withTensor(out, `${p}_scale`, { dtype: 'BF16', shape: [2, G, N], bytes: marlinScaleBytes(r.tensors.get(`${p}_scale`)!.bytes, 2, G, N, 2, true) });
      return withTensor(out, `${p}_zero`, { dtype: 'I32', shape: [2, G, N / 8], bytes: marlinZeroBytes(r.tensors.get(`${p}_zero`)!.bytes, 2, G, N, { alongRows: false }, true) });
    };
    const marlin = parseForms(['marlin']);
    const d = (H: number) => ({ experts: 2, intermediate: 32, sharedIntermediate: 0, hidden: H, quant });
    // H = 64, Ir = 32: w13 is K = 64 x N = 64 (two groups), w2 K = 32 x N = 64 (one group).
    const r = int4(64, 32);
    const engine = toMarlin(toMarlin(r, 'w13', 64, 64), 'w2', 32, 64);
    expect(same(toCanonicalRanks(marlin, [engine], d(64)), [r])).toBe(true);
    expect(mismatch(() => toCanonicalRanks(marlin, [r], d(64)))).toMatchObject({ form: 'marlin', tensor: 'layers.0.experts.w13', expected: '[2,4,128]', found: '[2,64,8]' });
    // H = 32: w2's N = 32 does not tile, so it stays as spec §4 has it; w13 (K = 32, N = 64) is Marlin's.
    const small = int4(32, 32);
    expect(same(toCanonicalRanks(marlin, [toMarlin(small, 'w13', 32, 64)], d(32)), [small])).toBe(true);
    // Not INT4 (no quantization): nothing to undo.
    expect(same(toCanonicalRanks(marlin, grid(1), dims), grid(1))).toBe(true);
  });
});
