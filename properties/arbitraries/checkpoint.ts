// Checkpoints: a model's sizes, a layout, a dtype and a way of splitting into files.
// Shrinking acts on these parameters; the weights come from the case seed, so a shrunk
// counterexample is a smaller configuration, never a different float.
import fc from 'fast-check';
import { DTYPE_NAMES, LAYOUTS, type CheckpointSpec, type DtypeName, type Layout, type ShardSpec } from '../spec.js';
import { ALL_MODEL_TYPES } from './models.js';
import { modelSpecArb } from './dims.js';

export const layoutArb = (allowed: readonly Layout[] = LAYOUTS): fc.Arbitrary<Layout> => fc.constantFrom(...allowed);
export const dtypeArb = (allowed: readonly DtypeName[] = DTYPE_NAMES): fc.Arbitrary<DtypeName> => fc.constantFrom(...allowed);

/** One file (most often), a size cap that splits layers across files, or tensors scattered over files in random key order. */
export const shardArb: fc.Arbitrary<ShardSpec> = fc.oneof(
  { arbitrary: fc.constant<ShardSpec>({ kind: 'single' }), weight: 3 },
  { arbitrary: fc.constantFrom(1024, 4096).map((bytes): ShardSpec => ({ kind: 'max', bytes })), weight: 2 },
  { arbitrary: fc.integer({ min: 2, max: 4 }).map((files): ShardSpec => ({ kind: 'scatter', files })), weight: 2 },
);

export interface CheckpointFilter {
  modelTypes?: readonly string[];
  layouts?: readonly Layout[];
  dtypes?: readonly DtypeName[];
}

export function checkpointArb(f: CheckpointFilter = {}): fc.Arbitrary<CheckpointSpec> {
  return fc.constantFrom(...(f.modelTypes ?? ALL_MODEL_TYPES)).chain((modelType) =>
    fc.record({ model: modelSpecArb(modelType), layout: layoutArb(f.layouts), dtype: dtypeArb(f.dtypes), shards: shardArb }),
  );
}
