// Whole conformance cases, composed from the arbitraries above: valid loads over all ranks
// of a parallel setting, layout invariance, broken checkpoints and invalid requests.
import fc from 'fast-check';
import { layoutsDifferInNames } from '../materialize.js';
import { BREAKAGES, CaseSpecError, type BadRequest, type Breakage, type CaseSpec } from '../spec.js';
import { checkpointArb, type CheckpointFilter } from './checkpoint.js';
import { badRequestArb, validParallelArb, type ParallelLimits } from './parallel.js';

export interface CaseFilter extends CheckpointFilter, ParallelLimits {
  kinds?: readonly CaseSpec['kind'][];
  /** Defects to draw from (default all that the model allows). */
  breakages?: readonly Breakage[];
  /** Invalid requests to draw from (default all that the model allows). */
  badRequests?: readonly BadRequest[];
}

/** The defects this model's checkpoints can have: only models with two layouts can be half fused. */
export function breakagesFor(modelType: string): Breakage[] {
  return BREAKAGES.filter((b) => b !== 'quantized-router' && (b !== 'half-fused' || layoutsDifferInNames(modelType)));
}

/** A defect this model's checkpoints can have, among `allowed` when one of them applies. */
export function breakageArb(modelType: string, allowed?: readonly Breakage[]): fc.Arbitrary<Breakage> {
  const all = breakagesFor(modelType);
  const some = all.filter((b) => !allowed || allowed.includes(b));
  return fc.constantFrom(...(some.length ? some : all));
}

export function caseArb(f: CaseFilter = {}): fc.Arbitrary<CaseSpec> {
  // Layout invariance needs both layouts: a loader of one layout is not asked for it.
  const bothLayouts = !f.layouts || (f.layouts.includes('original') && f.layouts.includes('fused'));
  const kinds = (f.kinds ?? ['load', 'layout', 'refuse', 'request']).filter((k) => k !== 'layout' || bothLayouts);
  const byKind: Record<CaseSpec['kind'], { arbitrary: fc.Arbitrary<CaseSpec>; weight: number }> = {
    load: { arbitrary: checkpointArb(f).chain((checkpoint) => validParallelArb(checkpoint.model, f).map((parallel): CaseSpec => ({ kind: 'load', checkpoint, parallel }))), weight: 6 },
    layout: { arbitrary: checkpointArb(f).chain((checkpoint) => validParallelArb(checkpoint.model, f).map((parallel): CaseSpec => ({ kind: 'layout', checkpoint, parallel }))), weight: 2 },
    refuse: {
      arbitrary: checkpointArb(f).chain((checkpoint) =>
        breakageArb(checkpoint.model.modelType, f.breakages).map((broken): CaseSpec => {
          // A missing shard is a file the index names: make sure there is an index.
          const indexed = broken === 'missing-shard' && checkpoint.shards.kind !== 'scatter' ? { ...checkpoint, shards: { kind: 'scatter' as const, files: 2 } } : checkpoint;
          return { kind: 'refuse', checkpoint: indexed, broken };
        }),
      ),
      weight: 2,
    },
    request: { arbitrary: checkpointArb(f).chain((checkpoint) => badRequestArb(checkpoint.model, f.badRequests).map(({ parallel, bad }): CaseSpec => ({ kind: 'request', checkpoint, parallel, bad }))), weight: 1 },
  };
  if (kinds.length === 0) throw new CaseSpecError('no kind of case is left to generate', { expected: 'load, refuse or request (layout needs both layouts)', found: f.kinds });
  return fc.oneof(...kinds.map((k) => byKind[k]));
}

/**
 * Loads of an indexed checkpoint with decoy files beside the index that it does not name
 * (spec.decoy, materialize.ts DECOY_FILES): the loads of caseArb, their shards scattered over
 * files (two where the draw had another plan) so that there is an index. Drawn only by the
 * suite's own decoy property: the other properties' draws stay as they were.
 */
export function decoyCaseArb(f: CaseFilter = {}): fc.Arbitrary<CaseSpec> {
  return caseArb({ ...f, kinds: ['load'] }).map((s): CaseSpec => {
    const c = s.checkpoint;
    const shards = c.shards.kind === 'scatter' && c.shards.files >= 2 ? c.shards : { kind: 'scatter' as const, files: 2 };
    return { ...s, checkpoint: { ...c, shards, decoy: true } };
  });
}
