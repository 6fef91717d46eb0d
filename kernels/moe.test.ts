// The reference forward against a naive whole-matrix forward written from the formulas,
// on every TP/EP split (the ranks are cut by hand in test/synthetic.ts, not by the loader),
// and its float32 error bound against an actual float32 forward.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { findRoutingTies } from '../harness/compare/tolerance.js';
import { referenceBackend, referenceForward, ForwardInputError } from './moe.js';
import { CanonicalTensorError } from './experts.js';
import { allRanks, naiveForward, randomInput, randomLayer, type LayerOptions } from './test/synthetic.js';

const T = 12;
const SPLITS: Array<[number, number, 'linear' | 'round_robin']> = [
  [1, 1, 'linear'], [2, 1, 'linear'], [1, 2, 'linear'], [1, 3, 'linear'], [2, 3, 'round_robin'], [4, 2, 'round_robin'],
];
const CASES: Record<string, LayerOptions> = {
  'silu, renormalised softmax top-2, gated shared expert': { experts: 5, topK: 2, hidden: 8, intermediate: 12, sharedIntermediate: 4, sharedGate: true },
  'gpt_oss: biases, clamped activation, softmax over the selected': {
    experts: 4, topK: 2, hidden: 8, intermediate: 4, biases: true, routerBias: true, scale: 3,
    routing: { kind: 'topk_softmax' }, activation: { kind: 'gpt_oss_clamped', alpha: 1.702, limit: 7 },
  },
  'ungated shared expert, no renormalisation, top-3': {
    experts: 6, topK: 3, hidden: 8, intermediate: 8, sharedIntermediate: 8, routing: { kind: 'softmax_topk', renormalize: false, scaling: 1 },
  },
};

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe.each(Object.entries(CASES))('%s', (_name, options) => {
  const layer = randomLayer(7, options);
  const x = randomInput(11, T, options.hidden);
  const exact = naiveForward(layer, x, T);

  it.each(SPLITS)('TP %i × EP %i (%s) sums to the naive forward', (tp, ep, placement) => {
    const r = referenceForward(layer.sem, 3, allRanks(layer, tp, ep, placement), x, T);
    expect(maxDiff(r.output, exact)).toBeLessThan(1e-12);
    expect(r.selected.length).toBe(T * options.topK);
  });

  it('bounds the error of a float32 forward, and the bound is tight enough to mean something', () => {
    const r = referenceForward(layer.sem, 3, allRanks(layer, 1, 1), x, T, { bound: true });
    const single = naiveForward(layer, x, T, Math.fround);
    const b = r.bounds!;
    let worstBound = 0;
    let largest = 0;
    for (let i = 0; i < single.length; i++) {
      const err = Math.abs(single[i]! - r.output[i]!);
      expect(err).toBeLessThanOrEqual(b.strict[i]!);
      expect(b.loose[i]!).toBeGreaterThan(b.strict[i]!);
      worstBound = Math.max(worstBound, b.strict[i]!);
      largest = Math.max(largest, Math.abs(r.output[i]!));
    }
    // Norm-wise: a few hundred float32 roundings, far below a wrong weight's effect.
    expect(worstBound / largest).toBeLessThan(1e-4);
    expect(b.logits.length).toBe(T * options.experts);
  });
});

describe('summing the ranks', () => {
  const layer = randomLayer(3, CASES['gpt_oss: biases, clamped activation, softmax over the selected']!);
  const x = randomInput(5, T, 8);
  it('adds each selected expert\'s w2_bias once, not once per TP rank', async () => {
    const whole = await referenceBackend.forward(layer.sem, 3, allRanks(layer, 1, 1), x, T);
    const tp2 = await referenceBackend.forward(layer.sem, 3, allRanks(layer, 2, 1), x, T);
    expect(maxDiff(whole.output, tp2.output)).toBeLessThan(1e-12);
    const noBias = randomLayer(3, CASES['gpt_oss: biases, clamped activation, softmax over the selected']!);
    noBias.w2Bias = noBias.w2Bias!.map((row) => row.map(() => 0));
    const without = referenceForward(noBias.sem, 3, allRanks(noBias, 1, 1), x, T);
    expect(maxDiff(whole.output, without.output)).toBeGreaterThan(1e-3); // the bias does count
  });
  it('counts the shared expert once per TP shard, from EP rank 0 only', () => {
    const shared = randomLayer(9, CASES['ungated shared expert, no renormalisation, top-3']!);
    const xs = randomInput(1, T, 8);
    const one = referenceForward(shared.sem, 3, allRanks(shared, 1, 1), xs, T).output;
    const split = referenceForward(shared.sem, 3, allRanks(shared, 2, 3, 'round_robin'), xs, T).output;
    expect(maxDiff(one, split)).toBeLessThan(1e-12);
  });
});

describe('refusals', () => {
  const layer = randomLayer(1, CASES['silu, renormalised softmax top-2, gated shared expert']!);
  const x = randomInput(2, T, 8);
  it('refuses an incomplete or repeated set of ranks instead of returning a partial sum', () => {
    const ranks = allRanks(layer, 2, 2);
    expect(() => referenceForward(layer.sem, 3, ranks.slice(1), x, T)).toThrow(ForwardInputError);
    expect(() => referenceForward(layer.sem, 3, [ranks[0]!, ranks[0]!, ranks[1]!, ranks[2]!], x, T)).toThrow(ForwardInputError);
    expect(() => referenceForward(layer.sem, 3, [], x, T)).toThrow(ForwardInputError);
  });
  it('refuses ranks that disagree on the router', () => {
    const ranks = allRanks(layer, 1, 2);
    const other = new Map(ranks[1]!.tensors);
    const w = other.get('layers.3.router.weight')!;
    const bytes = w.bytes.slice();
    bytes[5] = bytes[5]! ^ 1;
    other.set('layers.3.router.weight', { ...w, bytes });
    expect(() => referenceForward(layer.sem, 3, [ranks[0]!, { ...ranks[1]!, tensors: other }], x, T)).toThrow(/disagree.*router\.weight/);
  });
  it('refuses an input of the wrong length', () => {
    expect(() => referenceForward(layer.sem, 3, allRanks(layer, 1, 1), x.subarray(1), T)).toThrow(ForwardInputError);
  });
  it('names the tensor that is missing, misshapen or has bad ids', () => {
    const [rank] = allRanks(layer, 1, 1);
    const missing = new Map(rank!.tensors);
    missing.delete('layers.3.experts.w2');
    expect(() => referenceForward(layer.sem, 3, [{ ...rank!, tensors: missing }], x, T)).toThrow(/experts\.w2/);
    const badShape = new Map(rank!.tensors);
    const w2 = badShape.get('layers.3.experts.w2')!;
    badShape.set('layers.3.experts.w2', { ...w2, shape: [w2.shape[0]!, w2.shape[2]!, w2.shape[1]!] });
    expect(() => referenceForward(layer.sem, 3, [{ ...rank!, tensors: badShape }], x, T)).toThrow(CanonicalTensorError);
    const badIds = new Map(rank!.tensors);
    badIds.set('layers.3.experts.ids', { dtype: 'I32', shape: [5], bytes: new Uint8Array(Int32Array.from([0, 1, 2, 3, 3]).buffer) });
    expect(() => referenceForward(layer.sem, 3, [{ ...rank!, tensors: badIds }], x, T)).toThrow(/repeated/);
  });
});

describe('random layers (fast-check, FC_SEED)', () => {
  const SEED = Number(process.env.FC_SEED ?? 42);
  const layers = fc
    .record({
      experts: fc.integer({ min: 2, max: 6 }),
      hidden: fc.integer({ min: 1, max: 12 }),
      tp: fc.integer({ min: 1, max: 3 }),
      rowsPerRank: fc.integer({ min: 1, max: 4 }),
      sharedPerRank: fc.integer({ min: 0, max: 3 }),
      sharedGate: fc.boolean(),
      variant: fc.constantFrom('renormalised', 'plain', 'gpt_oss'),
      seed: fc.integer({ min: 0, max: 1 << 30 }),
      tokens: fc.integer({ min: 0, max: 6 }),
      placement: fc.constantFrom('linear' as const, 'round_robin' as const),
    })
    .chain((o) => fc.record({ o: fc.constant(o), topK: fc.integer({ min: 1, max: o.experts }), ep: fc.integer({ min: 1, max: o.experts }) }));

  it('every split sums to the naive forward, and a float32 forward stays within the strict bound', () => {
    fc.assert(
      fc.property(layers, ({ o, topK, ep }) => {
        const gptOss = o.variant === 'gpt_oss';
        const options: LayerOptions = {
          experts: o.experts, topK, hidden: o.hidden, intermediate: o.tp * o.rowsPerRank,
          ...(gptOss
            ? { routing: { kind: 'topk_softmax' }, activation: { kind: 'gpt_oss_clamped', alpha: 1.702, limit: 7 }, biases: true, routerBias: true, scale: 3 }
            : { routing: { kind: 'softmax_topk', renormalize: o.variant === 'renormalised', scaling: 1 }, sharedIntermediate: o.tp * o.sharedPerRank, sharedGate: o.sharedGate }),
        };
        const layer = randomLayer(o.seed, options);
        const x = randomInput(o.seed + 1, o.tokens, o.hidden);
        const exact = naiveForward(layer, x, o.tokens);
        const whole = referenceForward(layer.sem, 3, allRanks(layer, 1, 1), x, o.tokens, { bound: true });
        const split = referenceForward(layer.sem, 3, allRanks(layer, o.tp, ep, o.placement), x, o.tokens);
        const scale = 1 + Math.max(0, ...Array.from(exact, Math.abs));
        expect(maxDiff(whole.output, exact)).toBeLessThan(1e-12 * scale);
        expect(maxDiff(split.output, exact)).toBeLessThan(1e-12 * scale);
        const single = naiveForward(layer, x, o.tokens, Math.fround);
        const ties = new Set(findRoutingTies(whole.routing.scores, whole.bounds!.logits, o.tokens, o.experts, topK, whole.routing.groups).map((t) => t.token));
        for (let i = 0; i < single.length; i++) {
          if (ties.has(Math.floor(i / o.hidden))) continue;
          expect(Math.abs(single[i]! - whole.output[i]!)).toBeLessThanOrEqual(whole.bounds!.strict[i]!);
        }
      }),
      { seed: SEED, numRuns: 150 },
    );
  });
});
