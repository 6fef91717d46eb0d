// MoE sizes for one model type, small by default, with the edge cases that break real
// loaders weighted in: H == 2I (a transposed [E,H,2I] tensor has the shape of an
// untransposed one, transformers issue 47031), I == H, E = 1, top-k = E, E ≥ 11 (expert
// 10 sorts before expert 2 as a string), E prime (no EP size but 1 and E divides it), and,
// rarely because they are big, H or I just past gpu.js's default loop cap of 1000.
import fc from 'fast-check';
import { entryFor } from '../../harness/layouts/registry.js';
import { sharedSizeRule } from '../../harness/writer/config.js';
import type { ModelSpec } from '../spec.js';
import { MODEL_TRAITS, type ModelTraits } from './models.js';

export interface Core {
  experts: number;
  hidden: number;
  intermediate: number;
}

/** Small even sizes: TP 2 divides I often, TP 3 sometimes, so both paths get exercised. */
const smallCore: fc.Arbitrary<Core> = fc.record({
  experts: fc.integer({ min: 2, max: 9 }),
  hidden: fc.integer({ min: 2, max: 12 }).map((x) => 2 * x),
  intermediate: fc.integer({ min: 1, max: 12 }).map((x) => 2 * x),
});

const edgeH2I: fc.Arbitrary<Core> = fc.record({ experts: fc.integer({ min: 2, max: 8 }), intermediate: fc.integer({ min: 2, max: 8 }).map((x) => 2 * x) }).map((c) => ({ ...c, hidden: 2 * c.intermediate }));
const edgeIeqH: fc.Arbitrary<Core> = fc.record({ experts: fc.integer({ min: 2, max: 8 }), hidden: fc.integer({ min: 2, max: 12 }).map((x) => 2 * x) }).map((c) => ({ ...c, intermediate: c.hidden }));
const edgeOneExpert: fc.Arbitrary<Core> = smallCore.map((c) => ({ ...c, experts: 1 }));
const edgeManyExperts: fc.Arbitrary<Core> = smallCore.chain((c) => fc.integer({ min: 11, max: 16 }).map((experts) => ({ ...c, experts })));
const edgePrimeExperts: fc.Arbitrary<Core> = smallCore.chain((c) => fc.constantFrom(5, 7, 11, 13).map((experts) => ({ ...c, experts })));
/** Past the loop cap of 1000: one big side only, and few experts, to stay cheap. */
const edgeLoopCap: fc.Arbitrary<Core> = fc.oneof(
  fc.record({ experts: fc.constant(2), hidden: fc.constant(1040), intermediate: fc.constantFrom(2, 4) }),
  fc.record({ experts: fc.constant(2), hidden: fc.constantFrom(4, 8), intermediate: fc.constant(1040) }),
);

export const coreDims: fc.Arbitrary<Core> = fc.oneof(
  { arbitrary: smallCore, weight: 10 },
  { arbitrary: edgeH2I, weight: 3 },
  { arbitrary: edgeIeqH, weight: 2 },
  { arbitrary: edgeOneExpert, weight: 1 },
  { arbitrary: edgeManyExperts, weight: 3 },
  { arbitrary: edgePrimeExperts, weight: 2 },
  { arbitrary: edgeLoopCap, weight: 1 },
);

function sharedSize(modelType: string, intermediate: number): fc.Arbitrary<number> {
  const required = entryFor(modelType).constraints?.sharedRequired === true;
  switch (sharedSizeRule(modelType)) {
    case 'none':
      return fc.constant(0);
    case 'free':
      // Never 0: transformers builds qwen2_moe's shared expert and its gate whatever the size,
      // so a checkpoint without them is not one transformers would write or load.
      return fc.integer({ min: 1, max: 12 }).map((x) => 2 * x);
    case 'multiple_of_I':
      return fc.integer({ min: required ? 1 : 0, max: 2 }).map((n) => n * intermediate);
    case 'positive_multiple_of_I':
      return fc.integer({ min: 1, max: 2 }).map((n) => n * intermediate);
    case 'equals_I':
      return fc.constant(intermediate);
  }
}

/** top-k from 1 to E, with k = E weighted in (every expert selected). */
function topK(t: ModelTraits, experts: number): fc.Arbitrary<number> {
  if (t.topK !== undefined) return fc.constant(Math.min(t.topK, experts));
  return fc.oneof({ arbitrary: fc.integer({ min: 1, max: Math.min(experts, 4) }), weight: 3 }, { arbitrary: fc.constant(experts), weight: 1 });
}

/** Groups dividing E, and how many of them routing keeps. */
function groups(t: ModelTraits, experts: number): fc.Arbitrary<{ groups: number; topkGroups: number }> {
  if (!t.grouped) return fc.constant({ groups: 1, topkGroups: 1 });
  // Group scores take the top 2 of each group, so a group holds at least 2 experts.
  const divisors = Array.from({ length: experts }, (_, i) => i + 1).filter((g) => experts % g === 0 && g <= 4 && (g === 1 || experts / g >= 2));
  return fc.constantFrom(...divisors).chain((g) => fc.integer({ min: 1, max: g }).map((topkGroups) => ({ groups: g, topkGroups })));
}

/** A model of `modelType` whose experts, hidden and intermediate sizes `cores` draws (default: the edge-weighted `coreDims`); the rest fits them. */
export function modelSpecArb(modelType: string, cores: fc.Arbitrary<Core> = coreDims): fc.Arbitrary<ModelSpec> {
  const traits = MODEL_TRAITS[modelType];
  if (!traits) throw new Error(`no traits for model type ${modelType}`);
  // The registry's constraints: sizes transformers would build as something else are never drawn.
  const minExperts = entryFor(modelType).constraints?.minExperts ?? 1;
  const fixedI = traits.intermediate;
  return cores.map((c) => (c.experts < minExperts ? { ...c, experts: minExperts } : c)).map((c) => (fixedI ? { ...c, intermediate: fixedI } : c)).chain((core) =>
    fc
      .record({
        sharedIntermediate: sharedSize(modelType, core.intermediate),
        k: topK(traits, core.experts),
        g: groups(traits, core.experts),
        layers: fc.integer({ min: 1, max: 2 }),
      })
      .map(({ sharedIntermediate, k, g, layers }) => {
        // Grouped routing keeps topkGroups groups of E/groups experts: top-k must fit in them.
        const fits = (g.topkGroups * core.experts) / g.groups;
        return { modelType, ...core, sharedIntermediate, topK: Math.min(k, fits, traits.maxTopK?.(core.experts) ?? k), groups: g.groups, topkGroups: g.topkGroups, layers };
      }),
  );
}
