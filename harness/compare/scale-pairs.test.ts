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
    expect(kept[0]!.detail).toMatch(/^experts 0–3: gate's weight_scale used for up too: the up rows' codes kept as stored/);
  });

  it('static input scales replaced by the largest of the layer (one per MoE layer)', () => {
    const name = 'layers.0.experts.w13_input_scale';
    const expected = only(withPairs(whole('fp8-tensor').stored, name, PAIRS), ['layers.0.experts.ids', name]);
    const found = withPairs(expected, name, PAIRS.map(() => [0.75, 0.75]));
    const ds = diagnoseCanonical(expected, found, { req: WHOLE, quantized: 'fp8-static' });
    expect(kinds(ds)).toEqual([[name, 'gate-up-scales-merged']]);
    expect(ds[0]!.detail).toMatch(/^every entry holds 0.75, the largest input_scale of the rank's experts/);
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
});
