// The generated part of a conformance run: sample case specs from the arbitraries with a
// fixed seed (or take the ones named on the command line), and wrap each as a runner case.
import fc from 'fast-check';
import { caseHash, parseCaseId } from '../harness/conformance/case-id.js';
import type { ConformanceCase } from '../harness/conformance/results.js';
import { breakagesFor, caseArb, type CaseFilter } from './arbitraries/cases.js';
import { ALL_MODEL_TYPES } from './arbitraries/models.js';
import { hasTwoLayouts } from './materialize.js';
import { checkCase, type PropertyContext, type Target } from './properties.js';
import { BAD_REQUESTS, DTYPE_NAMES, LAYOUTS, QUANT_DTYPE_NAMES, specIdText, specNeeds, specSeed, type CaseSpec, type DtypeName, type Layout, type QuantDtypeName } from './spec.js';
import { quantCaseArb, quantModelTypes } from './arbitraries/quantized.js';
import type { Capabilities } from '../harness/conformance/capabilities.js';

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

/** The float dtypes (f32, f16, bf16) and the quantized ones (harness/quant's formats) of a list. */
function splitDtypes(dtypes: readonly DtypeName[]): { float: DtypeName[]; quantized: QuantDtypeName[] } {
  return {
    float: dtypes.filter((d) => DTYPE_NAMES.includes(d)),
    quantized: QUANT_DTYPE_NAMES.filter((d) => dtypes.includes(d)),
  };
}

/**
 * The quantized dtypes a sampled run of a loader draws cases for: those the run asks for
 * (`--dtypes`) where it names dtypes, else those the loader declares. A loader that declares
 * no dtypes gets none: its run stays the float one (the vitest entry, which knows it runs in
 * the loader's own test suite, draws every format instead).
 */
export function quantDtypesOf(requested: readonly DtypeName[] | undefined, declared: Capabilities | undefined): QuantDtypeName[] {
  return splitDtypes(requested ?? declared?.dtypes ?? []).quantized;
}

/**
 * The quantized cases of a sampled run: for each dtype, loads over all ranks (one with a TP
 * split that keeps the format's scale blocks, one with EP, one drawn freely), both layouts
 * agreeing (where both are allowed), and the refusal of a checkpoint that quantizes its router.
 * They come from the same family arbitrary as `defineMoeConformanceSuite`'s quantized
 * properties (arbitraries/quantized.ts), kept within the filter and what the loader declares
 * (model types, layouts, largest TP and EP), so that each dtype's cases are run, not skipped.
 */
export function quantizedSpecs(seed: number, dtypes: readonly QuantDtypeName[], filter: CaseFilter = {}, declared: Capabilities = {}): CaseSpec[] {
  const within = <T>(a: readonly T[] | undefined, b: readonly T[] | undefined) => (a && b ? a.filter((x) => b.includes(x)) : a ?? b);
  const types = within(filter.modelTypes, declared.modelTypes);
  const layouts = within(filter.layouts, declared.layouts) ?? LAYOUTS;
  const tps = (filter.tpSizes ?? [1, 2, 3, 4]).filter((t) => declared.maxTp === undefined || t <= declared.maxTp);
  const eps = (filter.epSizes ?? [1, 2, 3, 4]).filter((p) => declared.maxEp === undefined || p <= declared.maxEp);
  const out: CaseSpec[] = [];
  for (const d of dtypes) {
    const served = quantModelTypes(d).filter((t) => !types || types.includes(t));
    if (served.length === 0 || layouts.length === 0) continue;
    // The first of a few draws that splits as asked (some sizes of a format keep no TP split), else the first.
    const one = (kind: CaseSpec['kind'], tpSizes: readonly number[], epSizes: readonly number[], tag: string, split: (s: CaseSpec) => boolean = () => true) => {
      const drawn = fc.sample(quantCaseArb({ tpSizes, epSizes, layouts }, [d], served).filter((s) => s.kind === kind), { numRuns: 16, seed: (seed ^ caseHash(`quantized/${d}/${tag}`)) | 0 });
      return drawn.find(split) ?? drawn[0]!;
    };
    const tp = (s: CaseSpec) => s.kind === 'load' && s.parallel.tp > 1;
    const ep = (s: CaseSpec) => s.kind === 'load' && s.parallel.ep > 1;
    out.push(one('load', tps.filter((t) => t > 1), eps, 'tp', tp), one('load', tps, eps.filter((p) => p > 1), 'ep', ep), one('load', tps, eps, 'free'));
    if (layouts.length === LAYOUTS.length) out.push(one('layout', tps, eps, 'layout'));
    out.push(one('refuse', tps, eps, 'router'));
  }
  return [...new Map(out.map((s) => [specIdText(s), s])).values()];
}

/**
 * The generated cases of a CLI run (`check`, `run`): `count` float cases (default: `base`, or
 * as many as the coverage set takes), none where `filter.dtypes` names only quantized dtypes,
 * then the quantized cases of each of `quantized` (see quantizedSpecs).
 */
export function runSpecs(o: { seed: number; filter?: CaseFilter; count?: number; base?: number; quantized: readonly QuantDtypeName[]; declared?: Capabilities }): CaseSpec[] {
  const { dtypes, ...rest } = o.filter ?? {};
  const floatDtypes = dtypes && splitDtypes(dtypes).float;
  const filter: CaseFilter = { ...rest, ...(floatDtypes && { dtypes: floatDtypes }) };
  const floats = floatDtypes?.length === 0 ? [] : sampleSpecs(o.count ?? defaultCaseCount(o.seed, filter, o.base), o.seed, filter);
  return [...floats, ...quantizedSpecs(o.seed, o.quantized, filter, o.declared)];
}

export function generatedCases(specs: readonly CaseSpec[], target: Target, ctx: PropertyContext, replay: (id: string) => string): ConformanceCase[] {
  return specs.map((spec) => {
    const text = specIdText(spec);
    return { id: parseCaseId(text), seed: specSeed(spec), replay: replay(text), needs: specNeeds(spec), run: () => checkCase(spec, target, ctx) };
  });
}
