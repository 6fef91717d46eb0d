// Each routing variant on small cases whose expected values were worked out by hand from
// the formulas in layouts.md §2 (logits chosen as logs or logits of round numbers), plus a
// brute-force property for the plain top-k variants.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { MoeSemantics, Routing } from '../harness/layouts/semantics.js';
import { WHOLE } from '../harness/tensor.js';
import { erf, gelu } from './mlp-router.js';
import {
  addZeroExperts, hashChoiceOf, productKeyRoute, route, RoutingError, scoreBiasTopk, sqrtSoftplus, sigmoidBias, sigmoidGroupLimitedBias, softmax, softmaxBiasNormmin, softmaxGroupLimited,
  softmaxTopk, softmaxTopkPnorm, sparsemixer, topK, topkSigmoidInput, topkSoftmax,
} from './routing.js';

const SEED = Number(process.env.FC_SEED ?? 42);
const logOf = (v: number[]) => v.map(Math.log);
/** σ^-1: the logit whose sigmoid is s. */
const logitOf = (v: number[]) => v.map((s) => Math.log(s / (1 - s)));

function closeTo(found: number[], expected: number[]) {
  expect(found.length).toBe(expected.length);
  found.forEach((f, i) => expect(f).toBeCloseTo(expected[i]!, 12));
}

function sem(routing: Routing, experts: number, topK: number): MoeSemantics {
  return {
    modelType: 'test', experts, topK, hidden: 4, intermediate: 2, sharedIntermediate: 0,
    routing, activation: { kind: 'silu_gated' }, sharedGate: false, moeLayers: [0],
  };
}

describe('topK', () => {
  it('orders by score, largest first, equal scores by lower index', () => {
    expect(topK([0.1, 0.5, 0.5, 0.9], 3)).toEqual([3, 1, 2]);
  });
  it('ranks NaN above everything, like torch.topk', () => {
    expect(topK([1, Number.NaN, 2], 1)).toEqual([1]);
  });
});

describe('softmax_topk (mixtral, qwen, jamba)', () => {
  const l = logOf([1, 2, 3, 4]); // softmax = [0.1, 0.2, 0.3, 0.4]
  it('keeps the probabilities without renormalisation (jamba)', () => {
    const c = softmaxTopk(l, 2, false, 1);
    expect(c.ids).toEqual([3, 2]);
    closeTo(c.weights, [0.4, 0.3]);
  });
  it('renormalises to sum 1 and scales (mixtral, × routed_scaling_factor)', () => {
    const c = softmaxTopk(l, 2, true, 2);
    closeTo(c.weights, [(2 * 4) / 7, (2 * 3) / 7]);
  });
});

describe('softmax_topk_pnorm (dbrx)', () => {
  const l = logOf([1, 2, 3, 4]);
  it('p = 1 divides by the sum', () => closeTo(softmaxTopkPnorm(l, 2, 1).weights, [4 / 7, 3 / 7]));
  it('p = 2 divides by the Euclidean norm', () => closeTo(softmaxTopkPnorm(l, 2, 2).weights, [0.8, 0.6]));
});

describe('softmax_group_limited (deepseek_v2)', () => {
  // probabilities [9, 8, 1, 1 | 10, 1, 1, 1] / 32
  const l = logOf([9, 8, 1, 1, 10, 1, 1, 1]);
  it('greedy (one group) is a plain top-k, never renormalised, × scaling', () => {
    const c = softmaxGroupLimited(l, 2, 1, 1, 3);
    expect(c.ids).toEqual([4, 0]);
    closeTo(c.weights, [(3 * 10) / 32, (3 * 9) / 32]);
  });
  it('keeps only the group with the best maximum', () => {
    const c = softmaxGroupLimited(l, 2, 2, 1, 1);
    expect(c.ids).toEqual([4, 5]);
    closeTo(c.weights, [10 / 32, 1 / 32]);
  });
});

describe('sigmoid_group_limited_bias (deepseek_v3, glm4_moe)', () => {
  const s = [0.9, 0.1, 0.2, 0.3, 0.8, 0.7, 0.05, 0.05];
  const l = logitOf(s);
  it('groups score by the sum of their top-2; weights are renormalised and scaled', () => {
    // group sums 0.9+0.3 = 1.2 and 0.8+0.7 = 1.5: group 1 wins.
    const c = sigmoidGroupLimitedBias(l, 2, 2, 1, true, 2.5, undefined);
    expect(c.ids).toEqual([4, 5]);
    closeTo(c.weights, [(2.5 * 0.8) / 1.5, (2.5 * 0.7) / 1.5]);
  });
  it('uses the correction bias for the choice only, never in the weights', () => {
    const bias = [1, 0, 0, 0, 0, 0, 0, 0]; // group 0: 1.9 + 0.3 = 2.2 now wins
    const c = sigmoidGroupLimitedBias(l, 2, 2, 1, false, 1, bias);
    expect(c.ids).toEqual([0, 3]);
    closeTo(c.weights, [0.9, 0.3]);
  });
  it('masks dropped groups with 0.0 like transformers, so they beat negative kept scores', () => {
    const bias = [-1, -1, -1, -1, -5, -5, -5, -5];
    const c = sigmoidGroupLimitedBias(l, 2, 2, 1, false, 1, bias);
    expect(c.ids).toEqual([4, 5]);
    closeTo(c.weights, [0.8, 0.7]);
  });
  it('route reports the group scores that decided the kept groups', () => {
    const r = route(sem({ kind: 'sigmoid_group_limited_bias', groups: 2, topkGroups: 1, renormalize: false, scaling: 1 }, 8, 2), Float64Array.from(l), 1);
    expect(r.groups).toMatchObject({ count: 2, kept: 1 });
    closeTo(Array.from(r.groups!.scores), [1.2, 1.5]);
    expect(route(sem({ kind: 'topk_softmax' }, 8, 2), Float64Array.from(l), 1).groups).toBeUndefined();
  });
  it('refuses groups that do not divide the experts', () => {
    expect(() => sigmoidGroupLimitedBias(l, 2, 3, 1, false, 1, undefined)).toThrow(RoutingError);
  });
});

describe('softmax_bias_normmin (ernie4_5_moe)', () => {
  const l = logOf([1, 2, 3, 4]);
  const bias = [0.5, 0, 0, 0]; // choice scores [0.6, 0.2, 0.3, 0.4]
  it('chooses with the bias, weighs with p / max(sum, norm_min)', () => {
    const c = softmaxBiasNormmin(l, 2, 1e-12, bias);
    expect(c.ids).toEqual([0, 3]);
    closeTo(c.weights, [0.2, 0.8]);
  });
  it('norm_min bounds the divisor from below', () => closeTo(softmaxBiasNormmin(l, 2, 1, bias).weights, [0.1, 0.4]));
});

describe('sigmoid_bias (lfm2_moe)', () => {
  const l = logitOf([0.9, 0.1, 0.2, 0.3]);
  const bias = [0, 0.85, 0, 0]; // choice scores [0.9, 0.95, 0.2, 0.3]
  it('chooses with the expert bias, weighs with σ(l), renormalised with +1e-6, × scaling', () => {
    const c = sigmoidBias(l, 2, true, 2, bias);
    expect(c.ids).toEqual([1, 0]);
    closeTo(c.weights, [(2 * 0.1) / (1 + 1e-6), (2 * 0.9) / (1 + 1e-6)]);
  });
  it('without renormalisation the weights are σ(l)', () => closeTo(sigmoidBias(l, 2, false, 1, undefined).weights, [0.9, 0.3]));
});

describe('topk_softmax (gpt_oss, granitemoe) and topk_sigmoid_input (llama4_text)', () => {
  const l = [1, 3, 2, 0];
  it('softmax over the selected logits only', () => {
    const c = topkSoftmax(l, 2);
    expect(c.ids).toEqual([1, 2]);
    closeTo(c.weights, [Math.E / (Math.E + 1), 1 / (Math.E + 1)]);
  });
  it('σ of the selected logit, applied to the input', () => {
    const c = topkSigmoidInput(l, 1);
    expect(c.ids).toEqual([1]);
    closeTo(c.weights, [1 / (1 + Math.exp(-3))]);
    expect(route(sem({ kind: 'topk_sigmoid_input' }, 4, 1), new Float64Array(l), 1).inputScale).toBe(true);
  });
});

describe('sparsemixer (phimoe)', () => {
  it('masks experts beyond the relative threshold, then repeats without the winner', () => {
    // round 1: max 2; (2 - 1.99)/2 = 0.005 ≤ 0.02 keeps expert 1; 1 and -3 are masked.
    // round 2: max 1.99; every other expert is masked or already chosen.
    const c = sparsemixer([2, 1.99, 1, -3], 2, 0.01);
    expect(c.ids).toEqual([0, 1]);
    closeTo(c.weights, [1 / (1 + Math.exp(-0.01)), 1]);
  });
  it('a wide jitter keeps every expert in the softmax', () => {
    const c = sparsemixer([0, Math.log(3)], 2, 10);
    expect(c.ids).toEqual([1, 0]);
    closeTo(c.weights, [0.75, 1]);
  });
});

describe('route', () => {
  it('accepts float32 logits and lays out [tokens, k]', () => {
    const logits = new Float32Array([1, 3, 2, 0, 0, 0, 5, 1]);
    const r = route(sem({ kind: 'topk_softmax' }, 4, 2), logits, 2);
    expect(Array.from(r.selected)).toEqual([1, 2, 2, 3]);
    expect(r.weights[2]).toBeCloseTo(Math.exp(4) / (Math.exp(4) + 1), 12);
    expect(r.scores.length).toBe(8);
  });
  it('refuses logits of the wrong shape, a bad k and a bias of the wrong length', () => {
    const s = sem({ kind: 'topk_softmax' }, 4, 2);
    expect(() => route(s, new Float64Array(7), 2)).toThrow(RoutingError);
    expect(() => route(sem({ kind: 'topk_softmax' }, 4, 5), new Float64Array(8), 2)).toThrow(RoutingError);
    expect(() => route(s, new Float64Array(8), 2, [1, 2])).toThrow(RoutingError);
  });
});

describe('plain top-k variants against brute force', () => {
  // Every k-subset is tried; the chosen set must be the one with the largest sum of scores.
  function bestSubset(scores: number[], k: number): number[] {
    let best: number[] = [];
    let bestSum = -Infinity;
    const n = scores.length;
    for (let mask = 0; mask < 1 << n; mask++) {
      const members = Array.from({ length: n }, (_, i) => i).filter((i) => (mask >> i) & 1);
      if (members.length !== k) continue;
      const s = members.reduce((a, i) => a + scores[i]!, 0);
      if (s > bestSum) [best, bestSum] = [members, s];
    }
    return best;
  }
  const rows = fc.integer({ min: 2, max: 8 }).chain((n) =>
    fc.tuple(fc.uniqueArray(fc.integer({ min: -400, max: 400 }), { minLength: n, maxLength: n }).map((v) => v.map((x) => x / 50)), fc.integer({ min: 1, max: n })),
  );
  it('softmax_topk renormalised picks the best set and weights p / Σp', () => {
    fc.assert(
      fc.property(rows, ([l, k]) => {
        const c = softmaxTopk(l, k, true, 1);
        const p = l.map(Math.exp);
        const chosen = bestSubset(p, k);
        expect([...c.ids].sort((a, b) => a - b)).toEqual(chosen);
        const total = chosen.reduce((a, i) => a + p[i]!, 0);
        c.ids.forEach((id, j) => expect(c.weights[j]).toBeCloseTo(p[id]! / total, 12));
      }),
      { seed: SEED, numRuns: 200 },
    );
  });
  it('topk_softmax picks the best logits and weights exp(l) / Σ exp over the chosen', () => {
    fc.assert(
      fc.property(rows, ([l, k]) => {
        const c = topkSoftmax(l, k);
        const chosen = bestSubset(l, k);
        expect([...c.ids].sort((a, b) => a - b)).toEqual(chosen);
        const total = chosen.reduce((a, i) => a + Math.exp(l[i]!), 0);
        c.ids.forEach((id, j) => expect(c.weights[j]).toBeCloseTo(Math.exp(l[id]!) / total, 12));
      }),
      { seed: SEED, numRuns: 200 },
    );
  });
  it('softmax sums to one even for huge logits', () => {
    const p = softmax([1000, 1000, -1000]);
    closeTo(p, [0.5, 0.5, 0]);
  });
});

describe('routing added for the transformers 5.17 types', () => {
  it('softmax_group_top2 (mistral4): group score = top-2 sum of softmax, masked experts score 0, renormalised + scaled', () => {
    // probabilities [4, 3, 1, 1 | 5, 1, 1, 1] / 17: group 0 scores 4 + 3 = 7, group 1 only 5 + 1 = 6.
    const p = [4, 3, 1, 1, 5, 1, 1, 1];
    const r = route(sem({ kind: 'softmax_group_top2', groups: 2, topkGroups: 1, renormalize: true, scaling: 2 }, 8, 2), Float64Array.from(logOf(p)), 1);
    expect(Array.from(r.selected)).toEqual([0, 1]); // expert 4 (the best alone) is in the dropped group
    closeTo(Array.from(r.weights), [(2 * 4) / 7, (2 * 3) / 7]);
  });
  it('softmax_group_top2 with one group and a correction bias (longcat_flash): choice by p + bias, weights p, not renormalised', () => {
    const p = [0.1, 0.2, 0.3, 0.4];
    const r = route(sem({ kind: 'softmax_group_top2', groups: 1, topkGroups: 1, renormalize: false, scaling: 3 }, 4, 1), Float64Array.from(logOf(p)), 1, [0.5, 0, 0, 0]);
    expect(Array.from(r.selected)).toEqual([0]);
    closeTo(Array.from(r.weights), [0.3]);
  });
  it('topk_sigmoid (cohere2_moe): top-k of the raw logits, σ, renormalised, × scaling', () => {
    const s = [0.2, 0.8, 0.6, 0.4];
    const r = route(sem({ kind: 'topk_sigmoid', renormalize: true, scaling: 0.5 }, 4, 2), Float64Array.from(logitOf(s)), 1);
    expect(Array.from(r.selected)).toEqual([1, 2]);
    closeTo(Array.from(r.weights), [(0.5 * 0.8) / 1.4, (0.5 * 0.6) / 1.4]);
    const plain = route(sem({ kind: 'topk_sigmoid', renormalize: false }, 4, 2), Float64Array.from(logitOf(s)), 1);
    closeTo(Array.from(plain.weights), [0.8, 0.6]);
  });
  it('topk_softmax with scaling (cohere2_moe average)', () => {
    const r = route(sem({ kind: 'topk_softmax', scaling: 0.5 }, 3, 2), Float64Array.from(logOf([1, 3, 1])), 1);
    closeTo(Array.from(r.weights), [0.375, 0.125]);
  });
  it('softcap (laguna) replaces the logits by tanh(l / c) · c before σ', () => {
    const l = [3, -1, 2, 0.5];
    const capped = l.map((v) => Math.tanh(v / 2) * 2);
    const r = route(sem({ kind: 'sigmoid_group_limited_bias', groups: 1, topkGroups: 1, renormalize: false, scaling: 1, softcap: 2 }, 4, 1), Float64Array.from(l), 1);
    closeTo(Array.from(r.weights), [1 / (1 + Math.exp(-capped[0]!))]);
  });
  it('maskNegInf (nemotron_h): an expert of a dropped group is never chosen, even against negative scores', () => {
    // Choice scores with a bias of -1: kept group [0.5 - 1, 0.4 - 1], dropped group (scores 0.2, 0.1).
    const l = logitOf([0.5, 0.4, 0.2, 0.1]);
    const bias = [-1, -1, -1.7, -1.7];
    const zero = route(sem({ kind: 'sigmoid_group_limited_bias', groups: 2, topkGroups: 1, renormalize: false, scaling: 1 }, 4, 2), Float64Array.from(l), 1, bias);
    const negInf = route(sem({ kind: 'sigmoid_group_limited_bias', groups: 2, topkGroups: 1, renormalize: false, scaling: 1, maskNegInf: true }, 4, 2), Float64Array.from(l), 1, bias);
    expect(Array.from(zero.selected)).toEqual([2, 3]); // masked to 0.0, which beats the kept -0.5 and -0.6
    expect(Array.from(negInf.selected)).toEqual([0, 1]);
  });
  it('addZeroExperts (longcat_flash): a chosen zero-compute expert adds weight · x once', () => {
    const s: MoeSemantics = { ...sem({ kind: 'softmax_topk', renormalize: false, scaling: 1 }, 4, 2), hidden: 2, zeroExperts: 1 };
    const r = { selected: Int32Array.from([3, 0]), weights: Float64Array.from([0.25, 0.5]), scores: new Float64Array(4), inputScale: false };
    const out = new Float64Array([1, 1]);
    addZeroExperts(s, r, [2, -4], 1, out);
    expect(Array.from(out)).toEqual([1.5, 0]);
  });
});

describe('routing of the s2-i14-c types', () => {
  it('sqrtSoftplus is sqrt(log(1 + e^z)), without overflow', () => {
    for (const z of [-30, -2, 0, 0.5, 3]) expect(sqrtSoftplus(z) / Math.sqrt(Math.log1p(Math.exp(z)))).toBeCloseTo(1, 14);
    expect(sqrtSoftplus(1000)).toBeCloseTo(Math.sqrt(1000), 10);
  });
  it('score_bias_topk (deepseek_v4): choice by score + bias, weights score / (Σ + 1e-20) × scaling', () => {
    // sigmoid scores [0.2, 0.4, 0.6, 0.8]; bias lifts expert 0 above expert 2.
    const l = logitOf([0.2, 0.4, 0.6, 0.8]);
    const c = scoreBiasTopk(l, 2, 'sigmoid', 1.5, [0.5, 0, 0, 0]);
    expect(c.ids).toEqual([3, 0]);
    closeTo(c.weights, [(0.8 / 1.0) * 1.5, (0.2 / 1.0) * 1.5]);
    const s = scoreBiasTopk([0, 1], 1, 'sqrtsoftplus', 1, undefined);
    expect(s.ids).toEqual([1]);
    closeTo(s.weights, [1]);
  });
  it('a hash layer takes tid2eid[token id] whatever the scores, and refuses a token outside the table', () => {
    const semantics = { ...sem({ kind: 'score_bias_topk', score: 'sigmoid', scaling: 2 }, 4, 2), hash: { layers: [0], vocab: 3 } };
    const l = Float64Array.from([...logitOf([0.2, 0.4, 0.6, 0.8]), ...logitOf([0.2, 0.4, 0.6, 0.8])]);
    const table = [0, 1, 2, 3, 1, 0];
    const r = route(semantics, l, 2, [9, 9, 9, 9], { table, tokenIds: [2, 1] });
    expect(Array.from(r.selected)).toEqual([1, 0, 2, 3]);
    closeTo(Array.from(r.weights), [(0.4 / 0.6) * 2, (0.2 / 0.6) * 2, (0.6 / 1.4) * 2, (0.8 / 1.4) * 2]);
    expect(() => route(semantics, l, 2, undefined, { table, tokenIds: [3, 0] })).toThrow(RoutingError);
    expect(() => route(semantics, l, 2, undefined, { table: [0, 4, 0, 1, 1, 0], tokenIds: [0, 1] })).toThrow(/does not exist/);
    expect(() => route(sem({ kind: 'topk_softmax' }, 4, 2), l, 2, undefined, { table, tokenIds: [0, 1] })).toThrow(RoutingError);
  });
  it('hashChoiceOf refuses a hash layer without token ids or without its table', () => {
    const semantics = { ...sem({ kind: 'score_bias_topk', score: 'sigmoid', scaling: 1 }, 4, 2), hash: { layers: [0], vocab: 3 } };
    const table = { dtype: 'I64' as const, shape: [3, 2], bytes: new Uint8Array(new BigInt64Array([0n, 1n, 2n, 3n, 1n, 0n]).buffer) };
    const rank = { req: WHOLE, tensors: new Map([['layers.0.router.tid2eid', table]]) };
    expect(Array.from(hashChoiceOf(semantics, 0, rank, 2, { tokenIds: [1, 2] })!.table)).toEqual([0, 1, 2, 3, 1, 0]);
    expect(hashChoiceOf(semantics, 1, rank, 2, undefined)).toBeUndefined();
    expect(() => hashChoiceOf(semantics, 0, rank, 2, undefined)).toThrow(/needs the token ids/);
    expect(() => hashChoiceOf(semantics, 0, { req: WHOLE, tensors: new Map() }, 2, { tokenIds: [0, 0] })).toThrow(/tid2eid/);
  });
  it('product_key (doge) reads x/y scores the way view(2, T, K) lays out [T, 2K], mixing tokens', () => {
    // T = 2, K = 2: flat logits [t0: a0 a1 b0 b1, t1: c0 c1 d0 d1]; row 0's x = [a0, a1], y = [c0, c1]; row 1's x = [b0, b1], y = [d0, d1].
    const logits = Float64Array.from([0, 3, 1, 0, /* t1 */ 2, 0, 0, 5]);
    const r = productKeyRoute(logits, 2, 4, 1, 2, false);
    // row 0: best x = index 1 (3), best y = index 0 (2): expert 1·2 + 0 = 2; row 1: x index 0 (1), y index 1 (5): expert 1.
    expect(Array.from(r.selected)).toEqual([2, 1]);
    closeTo(Array.from(r.weights), [1, 1]);
    const two = productKeyRoute(logits, 2, 4, 2, 2, true);
    // row 0 sums: e0 = 0+2, e1 = 0+0, e2 = 3+2, e3 = 3+0 → experts 2 (5), 3 (3); softmax of [5, 3].
    expect(Array.from(two.selected.subarray(0, 2))).toEqual([2, 3]);
    closeTo(Array.from(two.weights.subarray(0, 2)), softmax([5, 3]));
    expect(() => productKeyRoute(logits, 2, 3, 1, 2, false)).toThrow(RoutingError);
  });
  it('addZeroExperts adds nothing for a skip class (zaya)', () => {
    const s: MoeSemantics = { ...sem({ kind: 'softmax_topk', renormalize: false, scaling: 1 }, 4, 1), hidden: 2, zeroExperts: 1, zeroExpertsSkip: true };
    const out = new Float64Array([1, 1]);
    addZeroExperts(s, { selected: Int32Array.from([3]), weights: Float64Array.from([0.5]), scores: new Float64Array(4), inputScale: false }, [2, -4], 1, out);
    expect(Array.from(out)).toEqual([1, 1]);
  });
  it('erf and gelu (zaya\'s router) match known values to 1e-14', () => {
    expect(erf(0.5)).toBeCloseTo(0.5204998778130465, 14);
    expect(erf(-2)).toBeCloseTo(-0.9953222650189527, 14);
    expect(erf(3.5)).toBeCloseTo(0.9999992569016276, 14);
    expect(gelu(1)).toBeCloseTo(0.8413447460685429, 14);
  });
});
