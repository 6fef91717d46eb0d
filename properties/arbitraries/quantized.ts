// Quantized checkpoints (spec §4): FP8 block-scaled routed experts for model types that
// ship FP8 checkpoints in the per-expert (gate/up/down_proj, w1/w2/w3) and fused layouts,
// and MXFP4 for gpt_oss with sizes in whole 32-element blocks and TP sizes that keep them.
import fc from 'fast-check';
import type { CaseSpec, CheckpointSpec, QuantDtypeName } from '../spec.js';
import { layoutArb, shardArb } from './checkpoint.js';
import { modelSpecArb } from './dims.js';
import { validParallelArb, type ParallelLimits } from './parallel.js';
import { tpKeepsBlocks } from '../../harness/canonical/cut.js';
import { MXFP4_SCHEME } from '../../harness/quant/scheme.js';

export const FP8_MODEL_TYPES: readonly string[] = ['qwen3_moe', 'qwen2_moe', 'mixtral', 'deepseek_v3'];

const fp8Checkpoint = (types: readonly string[]): fc.Arbitrary<CheckpointSpec> =>
  fc.constantFrom(...types).chain((t) => fc.record({ model: modelSpecArb(t), layout: layoutArb(), dtype: fc.constant('fp8' as const), shards: shardArb }));

const mxfp4Checkpoint: fc.Arbitrary<CheckpointSpec> = fc
  .record({ model: modelSpecArb('gpt_oss'), hidden: fc.constantFrom(32, 64), intermediate: fc.constantFrom(32, 64, 96), layout: layoutArb(), shards: shardArb })
  .map(({ model, hidden, intermediate, layout, shards }) => ({ model: { ...model, hidden, intermediate }, layout, dtype: 'mxfp4' as const, shards }));

/** Valid loads of quantized checkpoints over all ranks, and (FP8) both layouts agreeing. */
export function quantCaseArb(limits: ParallelLimits = {}, dtypes: readonly QuantDtypeName[] = ['fp8', 'mxfp4'], modelTypes: readonly string[] = [...FP8_MODEL_TYPES, 'gpt_oss']): fc.Arbitrary<CaseSpec> {
  const fp8Types = FP8_MODEL_TYPES.filter((t) => modelTypes.includes(t));
  const checkpoints = dtypes.map((d) => (d === 'fp8' ? fp8Checkpoint(fp8Types) : mxfp4Checkpoint));
  return fc.oneof(...checkpoints).chain((checkpoint) => {
    const m = checkpoint.model;
    const tpSizes = checkpoint.dtype === 'mxfp4' ? (limits.tpSizes ?? [1, 2, 3, 4]).filter((t) => tpKeepsBlocks(m.intermediate, t, MXFP4_SCHEME)) : limits.tpSizes;
    const parallel = validParallelArb(m, { ...limits, ...(tpSizes ? { tpSizes } : {}) });
    const load = { arbitrary: parallel.map((p): CaseSpec => ({ kind: 'load', checkpoint, parallel: p })), weight: 3 };
    // gpt_oss has one layout: nothing to compare.
    const layout = { arbitrary: parallel.map((p): CaseSpec => ({ kind: 'layout', checkpoint, parallel: p })), weight: 1 };
    return checkpoint.dtype === 'fp8' ? fc.oneof(load, layout) : fc.oneof(load);
  });
}
