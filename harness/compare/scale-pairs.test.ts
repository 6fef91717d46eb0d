// Gate's and up's per-projection scales in the quantized form (spec §4): a loader that swaps
// them, keeps one of them for both, or takes their maximum (requantizing FP8 weights to it) is
// named for what it did, at TP 1 and on a TP rank (where the pairs are whole on every rank).
import { describe, expect, it } from 'vitest';
import { ModelConfig } from '../checkpoint/config.js';
import { buildConfig } from '../writer/config.js';
import { moeLayoutsOf } from '../quant/layout.js';
import { randomQuantizedCanonical } from '../quant/random.js';
import { QUANT_DTYPES, type QuantDtypeName } from '../quant/formats/index.js';
import { quantizationConfig } from '../quant/scheme.js';
import { decodeFloats64, encodeFloats } from '../safetensors/codecs.js';
import type { Canonical, ParallelRequest, Tensor } from '../tensor.js';
import { WHOLE } from '../tensor.js';
import { diagnoseCanonical, type Diagnosis } from './diagnose.js';
import { mapPairs, requantizedToMaxScale } from './misreadings.js';
import { dequantizeCanonical } from '../quant/dequantize.js';

const EXPERTS = 4;

function whole(d: QuantDtypeName): { scheme: (typeof QUANT_DTYPES)[QuantDtypeName]; stored: Canonical } {
  const scheme = QUANT_DTYPES[d];
  const config = new ModelConfig({ ...buildConfig({ modelType: 'qwen3_moe', experts: EXPERTS, hidden: 32, intermediate: 32, topK: 1, layers: 1 }, 'bfloat16'), quantization_config: quantizationConfig(scheme) });
  const { dims } = moeLayoutsOf(config, scheme);
  return { scheme, stored: randomQuantizedCanonical(dims, scheme, 11) };
}

/** The pairs of `name` set by hand (gate, up per expert), so that which is larger is known. */
function withPairs(c: Canonical, name: string, pairs: Array<[number, number]>): Canonical {
  const t = c.get(name)!;
  return new Map(c).set(name, { ...t, bytes: encodeFloats('F32', pairs.flat()) } satisfies Tensor);
}

const TP_RANK: ParallelRequest = { ...WHOLE, tpSize: 2, tpRank: 1 };
const only = (c: Canonical, names: string[]) => new Map(names.map((n) => [n, c.get(n)!]));
const kinds = (ds: Diagnosis[]) => ds.map((x) => [x.tensor, x.kind]);

describe('gate and up scale pairs', () => {
  // Experts 0, 1: gate's scale the larger; 2, 3: up's.
  const PAIRS: Array<[number, number]> = [[0.5, 0.25], [0.75, 0.125], [0.25, 0.5], [0.125, 0.625]];

  for (const [d, name] of [['fp8-tensor', 'layers.0.experts.w13_scale'], ['fp8-modelopt', 'layers.0.experts.w13_scale'], ['fp8-ct-tensor', 'layers.0.experts.w13_scale'], ['nvfp4', 'layers.0.experts.w13_scale_2'], ['nvfp4', 'layers.0.experts.w13_input_scale']] as const) {
    it(`${d} ${name.split('.').pop()}: swapped on a TP rank, gate's for both, up's for both, max for both`, () => {
      const ref = withPairs(whole(d).stored, name, PAIRS);
      const what = name.endsWith('scale_2') ? 'weight_scale_2' : name.endsWith('input_scale') ? 'input_scale' : 'weight_scale';
      const cases: Array<[Array<[number, number]>, ParallelRequest, string, RegExp]> = [
        // Swapped: at TP 1 the layout hypothesis names it; on a TP rank (the pair is whole there) only the pair does.
        [PAIRS.map(([g, u]) => [u, g]), TP_RANK, 'gate-up-swapped', new RegExp(`^experts 0–3: gate's and up's ${what} swapped`)],
        [PAIRS.map(([g]) => [g, g]), WHOLE, 'gate-up-scales-merged', new RegExp(`^experts 0–3: gate's ${what} used for up too`)],
        [PAIRS.map(([, u]) => [u, u]), TP_RANK, 'gate-up-scales-merged', new RegExp(`^experts 0–3: up's ${what} used for gate too`)],
        [PAIRS.map(([g, u]) => [Math.max(g, u), Math.max(g, u)]), WHOLE, 'gate-up-scales-merged', new RegExp(`^experts 0–3: max\\(gate, up\\) in both entries \\(one ${what} per expert\\) \\(the canonical form`)],
      ];
      for (const [pairs, req, kind, detail] of cases) {
        const expected = only(ref, ['layers.0.experts.ids', name]);
        const found = withPairs(expected, name, pairs);
        const ds = diagnoseCanonical(expected, found, { req, whole: expected, quantized: whole(d).scheme.method });
        expect(kinds(ds), `${kind} ${detail}`).toEqual([[name, kind]]);
        expect(ds[0]!.detail).toMatch(detail);
      }
    });
  }

  it('says both gate\'s scale and the maximum where gate\'s is the larger in every expert that differs (NVFP4 weight_scale_2: nothing else tells)', () => {
    const name = 'layers.0.experts.w13_scale_2';
    const expected = only(withPairs(whole('nvfp4').stored, name, PAIRS), ['layers.0.experts.ids', name]);
    const found = withPairs(expected, name, PAIRS.map(([g, u]) => [g, g > u ? g : u]));
    const [x, ...rest] = diagnoseCanonical(expected, found, { req: WHOLE, quantized: 'nvfp4' });
    expect(rest).toEqual([]);
    expect(x).toMatchObject({ tensor: name, kind: 'gate-up-scales-merged' });
    expect(x!.detail).toMatch(/^experts 0, 1: gate's weight_scale_2 used for up too, or max\(gate, up\) in both entries \(one weight_scale_2 per expert\).*cannot tell the two apart/);
  });

  it('per-tensor FP8 requantized to max(gate, up): the weights name the requantization, and the scale pair is told from gate\'s kept scale by them', () => {
    const w13 = 'layers.0.experts.w13';
    const ref = withPairs(whole('fp8-tensor').stored, `${w13}_scale`, PAIRS);
    const found = requantizedToMaxScale(ref);
    const ds = diagnoseCanonical(ref, found, { req: WHOLE, whole: ref, quantized: 'fp8-static' });
    expect(kinds(ds)).toEqual([[w13, 'requantized'], [w13, 'requantized'], [`${w13}_scale`, 'gate-up-scales-merged']]);
    expect(ds[0]!.detail).toMatch(/^experts 0, 1: the up half's F8_E4M3 codes requantized to max\(gate, up\)/);
    expect(ds[1]!.detail).toMatch(/^experts 2, 3: the gate half's F8_E4M3 codes requantized to max\(gate, up\)/);
    expect(ds[2]!.detail).toMatch(/^experts 0–3: max\(gate, up\) in both entries/);

    // Only experts whose gate scale is the larger: the scale pair alone fits gate's and the maximum; the requantized weights say which.
    const gateLarger = withPairs(ref, `${w13}_scale`, PAIRS.map(([g, u]) => [Math.max(g, u), Math.min(g, u)]));
    const requantized = diagnoseCanonical(gateLarger, requantizedToMaxScale(gateLarger), { req: WHOLE, quantized: 'fp8-static' });
    expect(requantized.find((x) => x.tensor === `${w13}_scale`)!.detail).toMatch(/^experts 0–3: max\(gate, up\) in both entries \(one weight_scale per expert\), the other half's codes requantized to it/);
    const kept = diagnoseCanonical(gateLarger, mapPairs(gateLarger, '.w13_scale', (g) => [g, g]), { req: WHOLE, quantized: 'fp8-static' });
    expect(kinds(kept)).toEqual([[`${w13}_scale`, 'gate-up-scales-merged']]);
    // Gate's is the larger everywhere: the maximum taken without requantizing is the same bytes, so both are said.
    expect(kept[0]!.detail).toMatch(/^experts 0–3: gate's weight_scale used for up too, or max\(gate, up\) in both entries \(one weight_scale per expert\) without the codes requantized to it \(gate's is the larger in every expert that differs\): the up rows' codes kept as stored/);
    expect(diagnoseCanonical(gateLarger, mapPairs(gateLarger, '.w13_scale', (g, u) => [Math.max(g, u), Math.max(g, u)]), { req: WHOLE, quantized: 'fp8-static' })).toEqual(kept);
  });

  it('per-tensor FP8 codes requantized to a scale that is not max(gate, up): named as requantized to the scale the loader wrote, not to the maximum', () => {
    const w13 = 'layers.0.experts.w13';
    const ref = withPairs(whole('fp8-tensor').stored, `${w13}_scale`, PAIRS);
    // Both halves of every expert requantized to twice the larger scale (codes halved, within E4M3's range).
    const s = decodeFloats64('F32', ref.get(`${w13}_scale`)!.bytes);
    const q = decodeFloats64('F8_E4M3', ref.get(w13)!.bytes);
    const half = q.length / s.length;
    const to = Array.from(s, (_, p) => 2 * Math.max(s[p]!, s[p ^ 1]!));
    const found = new Map(ref)
      .set(w13, { ...ref.get(w13)!, bytes: encodeFloats('F8_E4M3', Array.from(q, (v, i) => (v * s[Math.floor(i / half)]!) / to[Math.floor(i / half)]!)) })
      .set(`${w13}_scale`, { ...ref.get(`${w13}_scale`)!, bytes: encodeFloats('F32', to) });
    const ds = diagnoseCanonical(ref, found, { req: WHOLE, whole: ref, quantized: 'fp8-static' });
    const w = ds.filter((x) => x.tensor === w13);
    expect(w.map((x) => x.kind)).toEqual(['requantized']);
    expect(w[0]!.detail).toMatch(/^experts 0–3: the gate and up halves' F8_E4M3 codes requantized to the w13_scale the loader wrote: each is the stored q · s \/ s' within one E4M3 step/);
  });

  it('static input scales replaced by the largest of the layer (one per MoE layer)', () => {
    const name = 'layers.0.experts.w13_input_scale';
    const expected = only(withPairs(whole('fp8-tensor').stored, name, PAIRS), ['layers.0.experts.ids', name]);
    const found = withPairs(expected, name, PAIRS.map(() => [0.75, 0.75]));
    const ds = diagnoseCanonical(expected, found, { req: WHOLE, quantized: 'fp8-static' });
    expect(kinds(ds)).toEqual([[name, 'gate-up-scales-merged']]);
    expect(ds[0]!.detail).toMatch(/^every entry holds 0.75, the largest input_scale of the rank's experts/);
  });

  it('static input scales replaced by the layer\'s largest on an EP rank that does not hold it (the maximum over every expert, found in the whole reference)', () => {
    const name = 'layers.0.experts.w13_input_scale';
    const wholeRef = only(withPairs(whole('fp8-tensor').stored, name, PAIRS), ['layers.0.experts.ids', name]);
    // EP rank 1 of 2 (linear) holds experts 2 and 3, whose largest is 0.625; the layer's is expert 1's 0.75.
    const rank: Canonical = new Map<string, Tensor>([
      ['layers.0.experts.ids', { dtype: 'I32', shape: [2], bytes: new Uint8Array(Int32Array.of(2, 3).buffer) }],
      [name, { ...wholeRef.get(name)!, shape: [2, 2], bytes: encodeFloats('F32', PAIRS.slice(2).flat()) }],
    ]);
    const req: ParallelRequest = { ...WHOLE, epSize: 2, epRank: 1 };
    for (const [top, what] of [[0.75, /^every entry holds 0.75, the largest input_scale of the layer's experts /], [0.625, /^every entry holds 0.625, the largest input_scale of the rank's experts/]] as const) {
      const ds = diagnoseCanonical(rank, withPairs(rank, name, [[top, top], [top, top]]), { req, whole: wholeRef, quantized: 'fp8-static' });
      expect(kinds(ds), String(top)).toEqual([[name, 'gate-up-scales-merged']]);
      expect(ds[0]!.detail).toMatch(what);
    }
  });

  it('claims nothing it cannot show: another expert\'s pair, a pair of other values, a mix of swaps and merges', () => {
    const name = 'layers.0.experts.w13_scale_2';
    const expected = only(withPairs(whole('nvfp4').stored, name, PAIRS), ['layers.0.experts.ids', name]);
    for (const pairs of [PAIRS.map(() => PAIRS[0]!), PAIRS.map(([g, u]) => [g * 2, u]), PAIRS.map(([g, u], e) => (e % 2 ? [u, g] : [g, g]))] as Array<Array<[number, number]>>) {
      const ds = diagnoseCanonical(expected, withPairs(expected, name, pairs), { req: WHOLE, whole: expected, quantized: 'nvfp4' });
      expect(ds.map((x) => x.kind)).not.toContain('gate-up-scales-merged');
      expect(ds.map((x) => x.kind)).not.toContain('gate-up-swapped');
    }
    // Values equal where gate and up are equal: nothing differs, nothing is said.
    const equal = withPairs(expected, name, PAIRS.map(([g]) => [g, g]));
    expect(diagnoseCanonical(equal, mapPairs(equal, '.w13_scale_2', (g) => [g, g]), { req: WHOLE, quantized: 'nvfp4' })).toEqual([]);
    expect(decodeFloats64('F32', equal.get(name)!.bytes).length).toBe(2 * EXPERTS);
  });

  it('dequantized form: weights from FP8 codes requantized to max(gate, up), with any rounding, are named; gate\'s scale for both is told apart, or both are said where the values agree', () => {
    const w13 = 'layers.0.experts.w13';
    const { scheme, stored } = whole('fp8-tensor');
    const ref = withPairs(stored, `${w13}_scale`, PAIRS);
    const ctx = { req: WHOLE, quantized: scheme.method, stored: { scheme, tensors: ref } };
    const right = dequantizeCanonical(ref, scheme, WHOLE);
    // Requantized with round-to-nearest-even, and with the quotient rounded toward zero (another engine's rounding): both named so.
    const towardZero = requantizedToMaxScale(new Map(ref).set(w13, { ...ref.get(w13)! }));
    const q = decodeFloats64('F8_E4M3', ref.get(w13)!.bytes);
    const s = decodeFloats64('F32', ref.get(`${w13}_scale`)!.bytes);
    const half = q.length / s.length;
    const truncated = Uint8Array.from(q, (v, i) => {
      const p = Math.floor(i / half);
      const x = (v * s[p]!) / Math.max(s[p]!, s[p ^ 1]!);
      const code = encodeFloats('F8_E4M3', [x])[0]!;
      // E4M3 codes grow with the magnitude: one code down is the next value toward zero.
      return Math.abs(decodeFloats64('F8_E4M3', Uint8Array.of(code))[0]!) > Math.abs(x) && (code & 0x7f) > 0 ? code - 1 : code;
    });
    towardZero.set(w13, { ...ref.get(w13)!, bytes: truncated });
    expect(truncated).not.toEqual(requantizedToMaxScale(ref).get(w13)!.bytes);
    for (const wrong of [requantizedToMaxScale(ref), towardZero]) {
      const ds = diagnoseCanonical(right, dequantizeCanonical(wrong, scheme, WHOLE), ctx);
      expect(kinds(ds)).toEqual([[w13, 'requantized'], [w13, 'requantized']]);
      expect(ds[0]!.detail).toMatch(/^experts 0, 1: the up half dequantized from its F8_E4M3 codes requantized to max\(gate, up\)/);
      expect(ds[1]!.detail).toMatch(/^experts 2, 3: the gate half dequantized from its F8_E4M3 codes requantized to max\(gate, up\)/);
    }
    // Gate's scale for up: the up codes kept, dequantized with gate's scale: not a requantization.
    const gate = diagnoseCanonical(right, dequantizeCanonical(mapPairs(ref, '.w13_scale', (g) => [g, g]), scheme, WHOLE), ctx);
    expect(kinds(gate)).toEqual([[w13, 'gate-up-scales-merged']]);
    expect(gate[0]!.detail).not.toMatch(/requantized/);
    // The maximum for both without requantizing the codes: named so where gate's and up's differ in which is larger; where gate's is
    // the larger in every expert, the same values as gate's for both, and both are said.
    const maxKept = diagnoseCanonical(right, dequantizeCanonical(mapPairs(ref, '.w13_scale', (g, u) => [Math.max(g, u), Math.max(g, u)]), scheme, WHOLE), ctx);
    expect(maxKept).toEqual([{ tensor: w13, kind: 'gate-up-scales-merged', detail: "max(gate, up) of the weight_scale in both entries, the codes not requantized to it: the rows of the smaller one's half dequantized with the larger scale" }]);
    const gateLarger = withPairs(stored, `${w13}_scale`, PAIRS.map(([g, u]) => [Math.max(g, u), Math.min(g, u)]));
    const gateLargerCtx = { ...ctx, stored: { scheme, tensors: gateLarger } };
    const gateLargerRight = dequantizeCanonical(gateLarger, scheme, WHOLE);
    const [gateOrMax, ...none] = diagnoseCanonical(gateLargerRight, dequantizeCanonical(mapPairs(gateLarger, '.w13_scale', (g) => [g, g]), scheme, WHOLE), gateLargerCtx);
    expect(none).toEqual([]);
    expect(gateOrMax!.detail).toMatch(/^gate's weight_scale used for up too: .*; or, giving the same values here: max\(gate, up\) of the weight_scale in both entries, the codes not requantized to it/);
    // Up's scale within 1 % of gate's: requantizing to gate's gives back every up code, so both fit, and both are said.
    const close = withPairs(stored, `${w13}_scale`, PAIRS.map(([g]) => [g, g * 0.99]));
    const closeRight = dequantizeCanonical(close, scheme, WHOLE);
    const both = diagnoseCanonical(closeRight, dequantizeCanonical(requantizedToMaxScale(close), scheme, WHOLE), { ...ctx, stored: { scheme, tensors: close } });
    expect(kinds(both)).toEqual([[w13, 'gate-up-scales-merged']]);
    expect(both[0]!.detail).toMatch(/^gate's weight_scale used for up too.*; or, giving the same values here: experts 0–3: the up half dequantized from its F8_E4M3 codes requantized to max\(gate, up\)/);
  });
});
