// Quantized checkpoints (spec §4), one family per format: FP8 block-scaled and static FP8
// (every producer's form) for model types that ship FP8 checkpoints, in the per-expert
// (gate/up/down_proj, w1/w2/w3) and fused layouts; NVFP4 for per-expert and fused layouts
// with sizes in whole 16-element blocks; MXFP4 for gpt_oss with sizes in whole 32-element
// blocks. TP sizes that would split a block of a format that forbids it are left to the
// invalid-request family.
import fc from 'fast-check';
import type { CaseSpec, CheckpointSpec, QuantDtypeName } from '../spec.js';
import { layoutArb, shardArb } from './checkpoint.js';
import { modelSpecArb } from './dims.js';
import { validParallelArb, type ParallelLimits } from './parallel.js';
import { tpKeepsBlocks } from '../../harness/canonical/cut.js';
import { QUANT_DTYPES } from '../../harness/quant/formats/index.js';

export const FP8_MODEL_TYPES: readonly string[] = ['qwen3_moe', 'qwen2_moe', 'mixtral', 'deepseek_v3'];
/** NVFP4: per-expert (A, B), fused v5 and granitemoe's fused `input_linear` (F). */
export const NVFP4_MODEL_TYPES: readonly string[] = ['qwen3_moe', 'mixtral', 'deepseek_v3', 'granitemoe'];

/** Which model types each quantized dtype is drawn for, and the sizes it needs. */
const FAMILIES: Record<QuantDtypeName, { types: readonly string[]; hidden?: number[]; intermediate?: number[]; layouts: boolean }> = {
  fp8: { types: FP8_MODEL_TYPES, layouts: true },
  mxfp4: { types: ['gpt_oss'], hidden: [32, 64], intermediate: [32, 64, 96], layouts: false },
  nvfp4: { types: NVFP4_MODEL_TYPES, hidden: [16, 32, 48], intermediate: [32, 64, 96], layouts: true },
  'fp8-tensor': { types: FP8_MODEL_TYPES, layouts: true },
  'fp8-modelopt': { types: FP8_MODEL_TYPES, layouts: true },
  'fp8-ct-tensor': { types: FP8_MODEL_TYPES, layouts: true },
  'fp8-ct-channel': { types: FP8_MODEL_TYPES, layouts: true },
  // INT4 groups: sizes in whole groups, TP in whole groups of w2's K.
  'int4-ct-g32': { types: FP8_MODEL_TYPES, hidden: [32, 64], intermediate: [32, 64, 96], layouts: true },
  'int4-ct-g64-asym': { types: FP8_MODEL_TYPES, hidden: [64], intermediate: [64, 128], layouts: true },
  'int4-ct-g128': { types: FP8_MODEL_TYPES, hidden: [128], intermediate: [128, 256], layouts: true },
};

/** The model types a quantized dtype is drawn for. */
export const quantModelTypes = (d: QuantDtypeName): readonly string[] => FAMILIES[d].types;

function checkpointArb(dtype: QuantDtypeName, types: readonly string[]): fc.Arbitrary<CheckpointSpec> {
  const f = FAMILIES[dtype];
  const size = (choices: number[] | undefined) => (choices ? fc.constantFrom(...choices) : fc.constant(undefined));
  return fc.constantFrom(...types).chain((t) =>
    fc.record({ model: modelSpecArb(t), hidden: size(f.hidden), intermediate: size(f.intermediate), layout: layoutArb(), shards: shardArb }).map(({ model, hidden, intermediate, layout, shards }) => ({
      model: { ...model, ...(hidden !== undefined && { hidden }), ...(intermediate !== undefined && { intermediate }) },
      layout,
      dtype,
      shards,
    })),
  );
}

/** Valid loads of quantized checkpoints over all ranks, and (where a model has two) both layouts agreeing. */
export function quantCaseArb(limits: ParallelLimits = {}, dtypes: readonly QuantDtypeName[] = ['fp8', 'mxfp4'], modelTypes?: readonly string[]): fc.Arbitrary<CaseSpec> {
  const checkpoints = dtypes.flatMap((d) => {
    const types = FAMILIES[d].types.filter((t) => !modelTypes || modelTypes.includes(t));
    return types.length ? [checkpointArb(d, types)] : [];
  });
  return fc.oneof(...checkpoints).chain((checkpoint) => {
    const m = checkpoint.model;
    const scheme = QUANT_DTYPES[checkpoint.dtype as QuantDtypeName];
    const tpSizes = (limits.tpSizes ?? [1, 2, 3, 4]).filter((t) => tpKeepsBlocks(m.intermediate, t, scheme));
    const parallel = validParallelArb(m, { ...limits, tpSizes });
    const load = { arbitrary: parallel.map((p): CaseSpec => ({ kind: 'load', checkpoint, parallel: p })), weight: 3 };
    const layout = { arbitrary: parallel.map((p): CaseSpec => ({ kind: 'layout', checkpoint, parallel: p })), weight: 1 };
    // The router is never quantized (spec/layouts.md §4): a checkpoint that quantizes it is refused.
    const router = { arbitrary: fc.constant<CaseSpec>({ kind: 'refuse', checkpoint, broken: 'quantized-router' }), weight: 1 };
    return FAMILIES[checkpoint.dtype as QuantDtypeName].layouts ? fc.oneof(load, layout, router) : fc.oneof(load, router);
  });
}

/** The quantized case families of the default suite: one per format, so each gets its share of cases. */
export const QUANT_FAMILIES: ReadonlyArray<{ label: string; dtypes: readonly QuantDtypeName[] }> = [
  { label: 'FP8 block scales', dtypes: ['fp8'] },
  { label: 'MXFP4', dtypes: ['mxfp4'] },
  { label: 'NVFP4', dtypes: ['nvfp4'] },
  { label: 'static FP8 (fp8, ModelOpt, compressed-tensors per tensor and per channel)', dtypes: ['fp8-tensor', 'fp8-modelopt', 'fp8-ct-tensor', 'fp8-ct-channel'] },
  { label: 'INT4 groups (compressed-tensors pack-quantized: groups of 32, 64 asymmetric, 128)', dtypes: ['int4-ct-g32', 'int4-ct-g64-asym', 'int4-ct-g128'] },
];
