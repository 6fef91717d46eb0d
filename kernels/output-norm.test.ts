// The block-output RMSNorm (semantics.outputNorm, axk1): applied once to the sum of the ranks,
// by the reference forward with its float32 bound carried through it.
import { describe, expect, it } from 'vitest';
import { encodeFloats } from '../harness/safetensors/codecs.js';
import type { MoeSemantics } from '../harness/layouts/semantics.js';
import { referenceForward, ForwardInputError } from './moe.js';
import type { RankTensors } from './backend.js';
import { allRanks, randomInput, randomLayer, rng } from './test/synthetic.js';

const H = 8;
const layer = randomLayer(11, { experts: 6, topK: 2, hidden: H, intermediate: 4, sharedIntermediate: 4 });
const weight = Array.from({ length: H }, ((r) => () => Math.fround(1 + r()))(rng(5)));
const normed: MoeSemantics = { ...layer.sem, outputNorm: { eps: 1e-6 } };
const withNorm = (ranks: RankTensors[], w = weight): RankTensors[] =>
  ranks.map((r) => ({ ...r, tensors: new Map([...r.tensors, ['layers.3.output_norm', { dtype: 'F32' as const, shape: [H], bytes: encodeFloats('F32', w) }]]) }));
const tokens = 5;
const x = randomInput(3, tokens, H);

/** y · w / sqrt(mean(y²) + eps), written out for one row. */
function rmsNorm(y: Float64Array, eps: number): Float64Array {
  const out = new Float64Array(y.length);
  for (let t = 0; t < tokens; t++) {
    const row = y.subarray(t * H, (t + 1) * H);
    const r = Math.sqrt(row.reduce((s, v) => s + v * v, 0) / H + eps);
    for (let h = 0; h < H; h++) out[t * H + h] = (weight[h]! * row[h]!) / r;
  }
  return out;
}

describe('block output norm (axk1)', () => {
  const plain = referenceForward(layer.sem, 3, allRanks(layer, 1, 1), x, tokens).output;

  it('normalises the whole block output, and only where the semantics ask for it', () => {
    const out = referenceForward(normed, 3, withNorm(allRanks(layer, 1, 1)), x, tokens).output;
    const want = rmsNorm(plain, 1e-6);
    for (let i = 0; i < out.length; i++) expect(out[i]).toBeCloseTo(want[i]!, 12);
    // The same ranks without outputNorm in the semantics: the tensor is not applied.
    expect(referenceForward(layer.sem, 3, allRanks(layer, 1, 1), x, tokens).output).toEqual(plain);
  });

  it('applies to the sum of the TP × EP ranks, not to each rank\'s partial output', () => {
    const whole = referenceForward(normed, 3, withNorm(allRanks(layer, 1, 1)), x, tokens).output;
    const split = referenceForward(normed, 3, withNorm(allRanks(layer, 2, 3)), x, tokens).output;
    for (let i = 0; i < whole.length; i++) expect(split[i]).toBeCloseTo(whole[i]!, 12);
    // Normalising each rank and summing is something else.
    // Each TP rank's partial output, computed as a layer of half the intermediate sizes.
    const half = { ...layer.sem, intermediate: 2, sharedIntermediate: 2 };
    const perRank = allRanks(layer, 2, 1).map((r) => rmsNorm(referenceForward(half, 3, [{ ...r, req: { ...r.req, tpSize: 1, tpRank: 0 } }], x, tokens).output, 1e-6));
    const summed = perRank[0]!.map((v, i) => v + perRank[1]![i]!);
    expect(Math.max(...summed.map((v, i) => Math.abs(v - whole[i]!)))).toBeGreaterThan(1e-3);
  });

  it('carries the float32 bound through the norm: a float32 rounding of the input stays within it, a 1% change of the weight does not', () => {
    const ref = referenceForward(normed, 3, withNorm(allRanks(layer, 1, 1)), x, tokens, { bound: true });
    const strict = ref.bounds!.strict;
    expect(strict.every((b) => b > 0 && Number.isFinite(b))).toBe(true);
    const rounded = Float32Array.from(ref.output);
    for (let i = 0; i < rounded.length; i++) expect(Math.abs(rounded[i]! - ref.output[i]!)).toBeLessThanOrEqual(strict[i]!);
    const off = referenceForward(normed, 3, withNorm(allRanks(layer, 1, 1), weight.map((w) => w * 1.01)), x, tokens).output;
    expect(off.some((v, i) => Math.abs(v - ref.output[i]!) > strict[i]!)).toBe(true);
  });

  it('refuses ranks that disagree on the norm weight', () => {
    const ranks = withNorm(allRanks(layer, 2, 1));
    ranks[1] = withNorm([ranks[1]!], weight.map((w) => -w))[0]!;
    expect(() => referenceForward(normed, 3, ranks, x, tokens)).toThrow(ForwardInputError);
  });
});
