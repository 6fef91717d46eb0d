// The generated part of a conformance run: sample case specs from the arbitraries with a
// fixed seed (or take the ones named on the command line), and wrap each as a runner case.
import fc from 'fast-check';
import { parseCaseId } from '../harness/conformance/case-id.js';
import type { ConformanceCase } from '../harness/conformance/results.js';
import { caseArb, type CaseFilter } from './arbitraries/cases.js';
import { checkCase, type PropertyContext, type Target } from './properties.js';
import { specIdText, specNeeds, specSeed, type CaseSpec } from './spec.js';

/** `count` distinct cases drawn with `seed`: the same list on every machine. */
export function sampleSpecs(count: number, seed: number, filter: CaseFilter = {}): CaseSpec[] {
  const arb = caseArb(filter);
  const byId = new Map<string, CaseSpec>();
  // Duplicates are dropped, so draw a few more rounds until there are enough (bounded).
  for (let round = 0; round < 4 && byId.size < count; round++) {
    for (const s of fc.sample(arb, { numRuns: count, seed: seed + round })) {
      if (byId.size < count) byId.set(specIdText(s), s);
    }
  }
  return [...byId.values()];
}

export function generatedCases(specs: readonly CaseSpec[], target: Target, ctx: PropertyContext, replay: (id: string) => string): ConformanceCase[] {
  return specs.map((spec) => {
    const text = specIdText(spec);
    return { id: parseCaseId(text), seed: specSeed(spec), replay: replay(text), needs: specNeeds(spec), run: () => checkCase(spec, target, ctx) };
  });
}
