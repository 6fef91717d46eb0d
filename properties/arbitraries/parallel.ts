// Parallel settings for a model: TP sizes that divide I and Is (valid) and ones that do not
// (to be refused), EP sizes up to E (with E % P != 0 weighted in: remainder experts) and
// past it (to be refused), both placements. A valid setting is checked on all its ranks.
import fc from 'fast-check';
import type { EpPlacement } from '../../harness/tensor.js';
import type { BadRequest, ModelSpec, ParallelSpec } from '../spec.js';

export const placementArb: fc.Arbitrary<EpPlacement> = fc.constantFrom('linear', 'round_robin');

export interface ParallelLimits {
  /** TP sizes to try (default 1..4); those that do not divide I become invalid-request cases. */
  tpSizes?: readonly number[];
  /** EP sizes to try (default 1..4); those past E become invalid-request cases. */
  epSizes?: readonly number[];
}

const DEFAULT_SIZES = [1, 2, 3, 4];

/** A setting every conforming loader must serve, over all its ranks (TP 1 / EP 1 when no listed size fits). */
export function validParallelArb(m: ModelSpec, limits: ParallelLimits = {}): fc.Arbitrary<ParallelSpec> {
  const both = m.sharedIntermediate === 0 ? m.intermediate : gcd(m.intermediate, m.sharedIntermediate);
  const tps = orOne((limits.tpSizes ?? DEFAULT_SIZES).filter((t) => t >= 1 && both % t === 0));
  const eps = orOne((limits.epSizes ?? DEFAULT_SIZES).filter((p) => p >= 1 && p <= m.experts));
  const remainder = eps.filter((p) => m.experts % p !== 0);
  const epArb = remainder.length ? fc.oneof(fc.constantFrom(...eps), fc.constantFrom(...remainder)) : fc.constantFrom(...eps);
  return fc.record({ tp: fc.constantFrom(...tps), ep: epArb, placement: placementArb });
}

/** The invalid requests this model allows making (a TP size that divides nothing is not always findable small). */
export function badRequestArb(m: ModelSpec, allowed?: readonly BadRequest[]): fc.Arbitrary<{ parallel: ParallelSpec; bad: BadRequest }> {
  const options: fc.Arbitrary<{ parallel: ParallelSpec; bad: BadRequest }>[] = [
    placementArb.map((placement) => ({ parallel: { tp: 1, ep: m.experts + 1, placement }, bad: 'ep-too-large' as const })),
    placementArb.map((placement) => ({ parallel: { tp: 1, ep: 1, placement }, bad: 'tp-rank-out-of-range' as const })),
    placementArb.map((placement) => ({ parallel: { tp: 1, ep: 1, placement }, bad: 'ep-rank-out-of-range' as const })),
  ];
  const nonDividing = [3, 4, 5, 6, 7, 8].filter((t) => m.intermediate % t !== 0 || m.sharedIntermediate % t !== 0);
  if (nonDividing.length) {
    options.push(fc.record({ tp: fc.constantFrom(...nonDividing), placement: placementArb }).map(({ tp, placement }) => ({ parallel: { tp, ep: 1, placement }, bad: 'tp-not-dividing' as const })));
  }
  const kinds: BadRequest[] = ['ep-too-large', 'tp-rank-out-of-range', 'ep-rank-out-of-range', 'tp-not-dividing'];
  const some = options.filter((_, i) => !allowed || allowed.includes(kinds[i]!));
  return fc.oneof(...(some.length ? some : options));
}

function orOne(sizes: number[]): number[] {
  return sizes.length ? sizes : [1];
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
