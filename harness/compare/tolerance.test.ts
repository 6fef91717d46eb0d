// The tiers of the bound comparison, NaN and infinity, the routing-tie rules, and the error
// model's building blocks against values worked out by hand.
import { describe, expect, it } from 'vitest';
import { activationError, compareToBounds, findRoutingTies, gamma, looseBound, LOOSE_RELATIVE, U32, worstTier } from './tolerance.js';

// Bounds as the reference produces them for elements whose terms have magnitude 0.01.
const bounds = (n: number, strict: number) => ({ strict: new Float64Array(n).fill(strict), loose: new Float64Array(n).fill(looseBound(strict, 0.01)) });

describe('looseBound', () => {
  it('adds bf16-level error of the magnitude to the strict bound', () => {
    expect(looseBound(1e-6, 1)).toBe(1e-6 + 2 ** -8);
    expect(LOOSE_RELATIVE).toBe(2 ** -8);
  });
});

describe('gamma', () => {
  it('is K·u / (1 − K·u) and infinite once K·u reaches 1', () => {
    expect(gamma(1)).toBeCloseTo(U32 / (1 - U32), 25);
    expect(gamma(1000)).toBeGreaterThan(1000 * U32);
    expect(gamma(2 ** 24)).toBe(Infinity);
  });
});

describe('activationError', () => {
  it('grows with the errors of both inputs, and is only rounding when they are exact', () => {
    const silu = { kind: 'silu_gated' } as const;
    const exact = activationError(silu, 1, 2, 0, 0);
    expect(exact).toBeGreaterThan(0);
    expect(exact).toBeLessThan(1e-6);
    expect(activationError(silu, 1, 2, 1e-3, 0)).toBeGreaterThan(1e-3);
    expect(activationError(silu, 1, 2, 0, 1e-3)).toBeGreaterThan(1e-3 * 0.7);
  });
  it('bounds the real change of the clamped gpt_oss activation', () => {
    const act = { kind: 'gpt_oss_clamped', alpha: 1.702, limit: 7 } as const;
    const f = (g: number, u: number) => (Math.min(Math.max(u, -7), 7) + 1) * Math.min(g, 7) / (1 + Math.exp(-1.702 * Math.min(g, 7)));
    for (const [g, u] of [[0.5, 0.3], [2.4 / 1.702, -1], [6.99, 6.99], [-3, 2]] as const) {
      const e = 1e-4;
      const moved = Math.max(Math.abs(f(g + e, u + e) - f(g, u)), Math.abs(f(g - e, u - e) - f(g, u)), Math.abs(f(g + e, u - e) - f(g, u)));
      expect(moved).toBeLessThanOrEqual(activationError(act, g, u, e, e));
    }
  });
});

describe('compareToBounds tiers', () => {
  const expected = [1, 2, 3, 4];
  const b = bounds(4, 1e-6);
  it('a value just inside the strict bound passes', () => {
    const r = compareToBounds([1, 2, 3 + 0.99e-6, 4], expected, b, 2);
    expect(r.tier).toBe('pass');
    expect(r.mismatches).toBe(0);
    expect(r.maxAbs).toMatchObject({ row: 1, col: 0 });
  });
  it('a value between the strict and the loose bound warns', () => {
    const r = compareToBounds([1, 2, 3, 4 + 1e-5], expected, b, 2);
    expect(r.tier).toBe('warn');
    expect(r).toMatchObject({ mismatches: 1, failures: 0, share: 0.25 });
    expect(r.maxRel.value).toBeCloseTo(1e-5 / 4, 12);
  });
  it('a value beyond the loose bound fails, with its place', () => {
    const r = compareToBounds([1, 2.1, 3, 4], expected, b, 2);
    expect(r.tier).toBe('fail');
    expect(r.maxAbs).toMatchObject({ row: 0, col: 1 });
    expect(r.maxAbs.value).toBeCloseTo(0.1, 12);
  });
  it('NaN and infinity fail even where the bound is infinite', () => {
    const wide = { strict: [Infinity, Infinity, Infinity, Infinity], loose: [Infinity, Infinity, Infinity, Infinity] };
    expect(compareToBounds([1, Number.NaN, 3, 4], expected, wide, 2)).toMatchObject({ tier: 'fail', nan: 1, maxAbs: { row: 0, col: 1 } });
    expect(compareToBounds([1, 2, Infinity, 4], expected, wide, 2)).toMatchObject({ tier: 'fail', inf: 1 });
  });
  it('a shape mismatch fails', () => {
    expect(compareToBounds([1, 2, 3], expected, b, 2).tier).toBe('fail');
  });
  it('breaks mismatches down per expert and per rank', () => {
    const selected = Int32Array.from([0, 1, 2, 1]);
    const ranksOfExpert = new Map([[0, ['tp0/ep0']], [1, ['tp0/ep0']], [2, ['tp0/ep1']]]);
    const r = compareToBounds([1, 2, 3, 5], expected, b, 2, { selected, k: 2, ranksOfExpert });
    expect([...r.perExpert]).toEqual([[2, 1], [1, 1]]);
    expect(new Map(r.perRank)).toEqual(new Map([['tp0/ep1', 1], ['tp0/ep0', 1]]));
  });
  it('worstTier orders pass < warn < fail', () => {
    expect(worstTier('pass', 'warn')).toBe('warn');
    expect(worstTier('fail', 'warn', 'pass')).toBe('fail');
    expect(worstTier()).toBe('pass');
  });
});

describe('routing ties', () => {
  // Two tokens, three experts, top-1: token 0 is decided by 1e-6, token 1 by 0.5.
  const scores = Float64Array.from([0.5, 0.5 - 1e-6, 0, 0.9, 0.4, 0]);
  const logitBound = new Float64Array(6).fill(1e-6);
  const ties = findRoutingTies(scores, logitBound, 2, 3, 1);
  it('flags only tokens whose k-th and (k+1)-th scores are within rounding', () => {
    expect(ties).toHaveLength(1);
    expect(ties[0]).toMatchObject({ token: 0, kind: 'experts', pair: [0, 1] });
    expect(findRoutingTies(scores, new Float64Array(6), 2, 3, 1)).toHaveLength(0);
    expect(findRoutingTies(scores, logitBound, 2, 3, 3)).toHaveLength(0);
  });
  const expected = [1, 1, 2, 2];
  const b = bounds(4, 1e-6);
  it('a tie token that differs is tie-ambiguous: reported, excluded from failing, at least a warning', () => {
    const r = compareToBounds([7, 7, 2, 2], expected, b, 2, { ties });
    expect(r).toMatchObject({ tier: 'warn', tieAmbiguous: [0], failures: 0 });
    expect(r.notes.join('\n')).toMatch(/tie at token 0: experts 0\/1/);
  });
  it('flags a token whose kept and dropped groups are within rounding', () => {
    // One token, four experts in two groups, one group kept: group scores 1.0 and 1.0 - 1e-6.
    const groups = { scores: Float64Array.from([1, 1 - 1e-6]), count: 2, kept: 1 };
    const found = findRoutingTies(Float64Array.from([0.9, 0.1, 0, 0]), new Float64Array(4).fill(1e-6), 1, 4, 1, groups);
    expect(found).toEqual([expect.objectContaining({ token: 0, kind: 'groups', pair: [0, 1] })]);
    const clear = { ...groups, scores: Float64Array.from([1, 0.5]) };
    expect(findRoutingTies(Float64Array.from([0.9, 0.1, 0, 0]), new Float64Array(4).fill(1e-6), 1, 4, 1, clear)).toEqual([]);
  });
  it('a tie token that matches passes', () => {
    expect(compareToBounds([1, 1, 2, 2], expected, b, 2, { ties }).tier).toBe('pass');
  });
  it('never passes blindly: if every token is an ambiguous tie, nothing was verified and it fails', () => {
    const all = [0, 1].map((token) => ({ token, kind: 'experts' as const, pair: [0, 1] as [number, number], gap: 0, epsilon: 1 }));
    const r = compareToBounds([7, 7, 9, 9], expected, b, 2, { ties: all });
    expect(r.tier).toBe('fail');
    expect(r.notes.join('\n')).toMatch(/every token is a routing tie/);
    expect(r.notes.join('\n')).toMatch(/nothing was verified/);
  });
  it('a non-tie token beyond the loose bound still fails next to a tie', () => {
    expect(compareToBounds([7, 7, 3, 2], expected, b, 2, { ties }).tier).toBe('fail');
  });
});
