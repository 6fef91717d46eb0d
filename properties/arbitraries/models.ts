// Routing constraints on the sizes of each model type, for the generators, read from the
// registry (each type's `generator` traits): whether routing is group-limited (`n_group`
// must divide E) and whether top-k is fixed. Which shared-expert sizes a type can express
// is the same traits' `shared` rule (the writer's sharedSizeRule).
import { entryFor, MODEL_TYPES, type ModelType } from '../../harness/layouts/registry.js';

export interface ModelTraits {
  /** Group-limited routing (deepseek family). */
  grouped: boolean;
  /** A fixed top-k (phimoe's sparsemixer is top-2). */
  topK?: number;
  /** A fixed expert intermediate size (doge: 1). */
  intermediate?: number;
  /** The most experts a token can choose among E (doge). */
  maxTopK?: (experts: number) => number;
}

export const MODEL_TRAITS: Readonly<Record<string, ModelTraits>> = Object.fromEntries(
  MODEL_TYPES.map((t) => {
    const g = entryFor(t).generator;
    return [t, { grouped: g.grouped === true, ...(g.topK !== undefined ? { topK: g.topK } : {}), ...(g.intermediate !== undefined ? { intermediate: g.intermediate } : {}), ...(g.maxTopK ? { maxTopK: g.maxTopK } : {}) }];
  }),
);

export const ALL_MODEL_TYPES: readonly ModelType[] = MODEL_TYPES;
