import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkRequest, expertsOf, tpSlice } from './cut.js';
import { InvalidParallelRequest } from './errors.js';
import type { ParallelRequest } from '../tensor.js';

const seed = Number(process.env.FC_SEED ?? 42);
const req = (r: Partial<ParallelRequest>): ParallelRequest => ({ tpSize: 1, tpRank: 0, epSize: 1, epRank: 0, epPlacement: 'linear', ...r });
const sizes = { experts: 8, intermediate: 20, sharedIntermediate: 28 };

describe('EP placement', () => {
  it('linear gives the remainder experts to the first ranks (spec §1, worked by hand)', () => {
    // E = 10, P = 3: base 3, rem 1 -> rank 0 holds 4 from 0, rank 1 holds 3 from 4, rank 2 holds 3 from 7.
    expect(expertsOf(10, 3, 0, 'linear')).toEqual([0, 1, 2, 3]);
    expect(expertsOf(10, 3, 1, 'linear')).toEqual([4, 5, 6]);
    expect(expertsOf(10, 3, 2, 'linear')).toEqual([7, 8, 9]);
  });
  it('round_robin deals experts q, q+P, ...', () => {
    expect(expertsOf(10, 3, 1, 'round_robin')).toEqual([1, 4, 7]);
    expect(expertsOf(8, 1, 0, 'round_robin')).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });
  it('the ranks together hold every expert exactly once, both placements', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 64 }), fc.constantFrom('linear' as const, 'round_robin' as const), (e, p, placement) => {
        fc.pre(p <= e);
        const all = Array.from({ length: p }, (_, q) => expertsOf(e, p, q, placement)).flat();
        expect(all.slice().sort((a, b) => a - b)).toEqual(Array.from({ length: e }, (_, i) => i));
      }),
      { seed, numRuns: 200 },
    );
  });
});

describe('TP slices', () => {
  it('cut an axis into equal consecutive pieces', () => {
    expect([0, 1, 2, 3].map((r) => tpSlice(20, 4, r))).toEqual([
      [0, 5],
      [5, 10],
      [10, 15],
      [15, 20],
    ]);
  });
});

describe('request checks', () => {
  const refused: Array<[string, Partial<ParallelRequest>]> = [
    ['I % T != 0', { tpSize: 3 }],
    ['P > E', { epSize: 9 }],
    ['TP rank out of range', { tpSize: 2, tpRank: 2 }],
    ['EP rank out of range', { epSize: 2, epRank: 5 }],
    ['negative rank', { tpRank: -1 }],
    ['zero TP size', { tpSize: 0 }],
    ['fractional size', { epSize: 1.5 }],
    ['unknown placement', { epPlacement: 'random' as never }],
  ];
  for (const [why, r] of refused) {
    it(`refuses ${why}`, () => {
      expect(() => checkRequest(req(r), sizes)).toThrow(InvalidParallelRequest);
    });
  }
  it('refuses Is % T != 0 even where I divides (I = 24, Is = 28, T = 8)', () => {
    expect(() => checkRequest(req({ tpSize: 8 }), { experts: 8, intermediate: 24, sharedIntermediate: 28 })).toThrow(/shared-expert/);
  });
  it('accepts TP 4 and EP 8 for I = 20, Is = 28, E = 8', () => {
    expect(() => checkRequest(req({ tpSize: 4, tpRank: 3, epSize: 8, epRank: 7 }), sizes)).not.toThrow();
  });
});
