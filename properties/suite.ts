// The generated part of a conformance run: sample case specs from the arbitraries with a
// fixed seed (or take the ones named on the command line), and wrap each as a runner case.
import fc from 'fast-check';
import { caseHash, parseCaseId } from '../harness/conformance/case-id.js';
import type { ConformanceCase } from '../harness/conformance/results.js';
import { breakagesFor, caseArb, type CaseFilter } from './arbitraries/cases.js';
import { ALL_MODEL_TYPES } from './arbitraries/models.js';
import { hasTwoLayouts } from './materialize.js';
import { checkCase, type PropertyContext, type Target } from './properties.js';
import { BAD_REQUESTS, LAYOUTS, specIdText, specNeeds, specSeed, type CaseSpec, type Layout } from './spec.js';

/**
 * The cases every run holds first, in priority order, so that even a short run spreads over
 * the model types: a load of each type (its layouts alternating) interleaved with a refusal
 * of a broken checkpoint of each type (the defects taking turns), then a load of each type in
 * its other layout(s), then each invalid request once, on types spread over the list. A model type
 * with one layout (gpt_oss, llama4_text, dbrx) has one layout to cover.
 */
export function coverageSpecs(seed: number, filter: CaseFilter = {}): CaseSpec[] {
  const types = filter.modelTypes ?? ALL_MODEL_TYPES;
  const allowed = filter.layouts ?? LAYOUTS;
  const kinds = filter.kinds ?? ['load', 'layout', 'refuse', 'request'];
  const layoutsOf = (t: string): Layout[] => (hasTwoLayouts(t) ? [...allowed] : [allowed[0]!]);
  const one = (t: string, layout: Layout, kind: CaseSpec['kind'], extra: Partial<CaseFilter> = {}): CaseSpec =>
    fc.sample(caseArb({ ...filter, ...extra, modelTypes: [t], layouts: [layout], kinds: [kind] }), { numRuns: 1, seed: (seed ^ caseHash(`${t}/${layout}/${kind}/${JSON.stringify(extra)}`)) | 0 })[0]!;
  const out: CaseSpec[] = [];
  // Loads and refusals alternate, the refusal on the type half the list away, so a short run
  // still reaches as many types as it has cases, with both kinds.
  const refuseOf = (i: number): CaseSpec => {
    const t = types[i]!;
    const defects = breakagesFor(t).filter((b) => !filter.breakages || filter.breakages.includes(b));
    const ls = layoutsOf(t);
    return one(t, ls[(i + 1) % ls.length]!, 'refuse', defects.length ? { breakages: [defects[(i + seed) % defects.length]!] } : {});
  };
  types.forEach((t, i) => {
    if (kinds.includes('load')) out.push(one(t, layoutsOf(t)[i % layoutsOf(t).length]!, 'load'));
    if (kinds.includes('refuse')) out.push(refuseOf((i + Math.floor(types.length / 2)) % types.length));
  });
  if (kinds.includes('load')) types.forEach((t, i) => layoutsOf(t).forEach((l, j) => j !== i % layoutsOf(t).length && out.push(one(t, l, 'load'))));
  if (kinds.includes('request')) {
    const bad = filter.badRequests ?? BAD_REQUESTS;
    bad.forEach((b, j) => {
      const t = types[Math.floor((j * types.length) / bad.length + seed) % types.length]!;
      out.push(one(t, layoutsOf(t)[0]!, 'request', { badRequests: [b] }));
    });
  }
  return out;
}

/**
 * `count` distinct cases drawn with `seed`: the same list on every machine. The coverage
 * cases come first (as many as fit in `count`; the default counts of check and run hold
 * them all), then random ones.
 */
/** Generated cases a default run draws: `base`, or more where the coverage set (every type × layout, a refusal of every type) needs more. */
export function defaultCaseCount(seed: number, filter: CaseFilter = {}, base = 100): number {
  return Math.max(base, coverageSpecs(seed, filter).length);
}

export function sampleSpecs(count: number, seed: number, filter: CaseFilter = {}): CaseSpec[] {
  const arb = caseArb(filter);
  const byId = new Map<string, CaseSpec>();
  for (const s of coverageSpecs(seed, filter)) if (byId.size < count) byId.set(specIdText(s), s);
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
