// Quantized checkpoints (spec §4), one family per format, each for every gated model type and
// layout family it can store (transposed, interleaved and flattened included; AWQ not
// interleaved): FP8 block-scaled; static FP8 (every producer's form); NVFP4 (sizes in whole
// 16-element blocks; global scales per projection, per expert, per tensor); INT4 groups
// (sizes in whole groups); MXFP4 (sizes in whole 32-element blocks). TP sizes that would split a block of a format that forbids it are left to the
// invalid-request family.
import fc from 'fast-check';
import { CaseSpecError, type CaseSpec, type CheckpointSpec, type Layout, type ModelSpec, type QuantDtypeName } from '../spec.js';
import { layoutArb, shardArb } from './checkpoint.js';
import { coreDims, modelSpecArb } from './dims.js';
import { validParallelArb, type ParallelLimits } from './parallel.js';
import { tpKeepsBlocks } from '../../harness/canonical/cut.js';
import { modelTypesFor, QUANT_DTYPES } from '../../harness/quant/formats/index.js';
import { ModelConfig } from '../../harness/checkpoint/config.js';
import { entryFor } from '../../harness/layouts/registry.js';
import { buildConfig } from '../../harness/writer/config.js';

/** FP8 block scales: every gated model type, every layout family (transposed, interleaved and flattened included). */
export const FP8_MODEL_TYPES: readonly string[] = modelTypesFor(QUANT_DTYPES.fp8);
/** The gated model types a quantized dtype can store, every layout family included (AWQ leaves out gpt_oss's interleaved gate/up: spec/layouts.md §4). */
const typesOf = (d: QuantDtypeName): readonly string[] => modelTypesFor(QUANT_DTYPES[d]);

/** Which model types each quantized dtype is drawn for, and the sizes it needs. */
const FAMILIES: Record<QuantDtypeName, { types: readonly string[]; hidden?: number[]; intermediate?: number[]; layouts: boolean }> = {
  fp8: { types: FP8_MODEL_TYPES, layouts: true },
  'fp8-shared': { types: typesOf('fp8-shared'), layouts: true },
  mxfp4: { types: typesOf('mxfp4'), hidden: [32, 64], intermediate: [32, 64, 96], layouts: true },
  'mxfp4-shared': { types: typesOf('mxfp4-shared'), hidden: [32, 64], intermediate: [32, 64, 96], layouts: true },
  'mxfp4-ct': { types: typesOf('mxfp4-ct'), hidden: [32, 64], intermediate: [32, 64, 96], layouts: true },
  nvfp4: { types: typesOf('nvfp4'), hidden: [16, 32, 48], intermediate: [32, 64, 96], layouts: true },
  'nvfp4-merged': { types: typesOf('nvfp4-merged'), hidden: [16, 32, 48], intermediate: [32, 64, 96], layouts: true },
  'nvfp4-tensor': { types: typesOf('nvfp4-tensor'), hidden: [16, 32, 48], intermediate: [32, 64, 96], layouts: true },
  'fp8-tensor': { types: typesOf('fp8-tensor'), layouts: true },
  'fp8-modelopt': { types: typesOf('fp8-modelopt'), layouts: true },
  'fp8-modelopt-tensor': { types: typesOf('fp8-modelopt-tensor'), layouts: true },
  'fp8-ct-tensor': { types: typesOf('fp8-ct-tensor'), layouts: true },
  'fp8-ct-channel': { types: typesOf('fp8-ct-channel'), layouts: true },
  // INT4 groups: sizes in whole groups, TP in whole groups of w2's K; rows of at least two groups, so that a loader
  // assuming another group size (128) reads the wrong scales on every case of groups of 32 or 64.
  'int4-ct-g32': { types: typesOf('int4-ct-g32'), hidden: [64, 128], intermediate: [64, 128, 192], layouts: true },
  'int4-ct-g64-asym': { types: typesOf('int4-ct-g64-asym'), hidden: [64], intermediate: [64, 128], layouts: true },
  'int4-ct-g32-asym': { types: typesOf('int4-ct-g32-asym'), hidden: [64, 128], intermediate: [64, 128, 192], layouts: true },
  'int4-ct-g128': { types: typesOf('int4-ct-g128'), hidden: [128], intermediate: [128, 256], layouts: true },
  'int4-gptq-g32': { types: typesOf('int4-gptq-g32'), hidden: [64, 128], intermediate: [64, 128, 192], layouts: true },
  'int4-gptq-g64-asym': { types: typesOf('int4-gptq-g64-asym'), hidden: [64], intermediate: [64, 128], layouts: true },
  'int4-gptq-g32-desc-act': { types: typesOf('int4-gptq-g32-desc-act'), hidden: [64, 128], intermediate: [64, 128, 192], layouts: true },
  'int4-gptq-v2-g32-asym': { types: typesOf('int4-gptq-v2-g32-asym'), hidden: [64, 128], intermediate: [64, 128, 192], layouts: true },
  'int4-ct-g32-actorder': { types: typesOf('int4-ct-g32-actorder'), hidden: [64, 128], intermediate: [64, 128, 192], layouts: true },
  'int4-awq-g32': { types: typesOf('int4-awq-g32'), hidden: [64, 128], intermediate: [64, 128, 192], layouts: true },
  'int4-awq-g128': { types: typesOf('int4-awq-g128'), hidden: [128], intermediate: [256], layouts: true },
};

/** The model types a quantized dtype is drawn for. */
export const quantModelTypes = (d: QuantDtypeName): readonly string[] => FAMILIES[d].types;

function checkpointArb(dtype: QuantDtypeName, types: readonly string[], layouts?: readonly Layout[]): fc.Arbitrary<CheckpointSpec> {
  const f = FAMILIES[dtype];
  // Sizes a format constrains are drawn from its list, with the default generator's experts.
  const cores =
    f.hidden && f.intermediate
      ? coreDims.chain((c) => fc.record({ experts: fc.constant(c.experts), hidden: fc.constantFrom(...f.hidden!), intermediate: fc.constantFrom(...f.intermediate!) }))
      : coreDims;
  // A quantized shared expert keeps the format's size rules: a free shared size becomes I (whole blocks and groups, on every TP rank I's are).
  const scheme = QUANT_DTYPES[dtype];
  // Quantized shared experts are defined for one stored shared expert (spec/loader-protocol.md §1): inkling's S router-weighted ones are then one, Is = I.
  const severalStored = (m: ModelSpec) => m.sharedIntermediate > 0 && (entryFor(m.modelType).dims(new ModelConfig(buildConfig(m, 'bfloat16'))).sharedRouted ?? 1) > 1;
  const shared = (m: ModelSpec): ModelSpec =>
    scheme.sharedQuantized && ((!scheme.splitsBlocks && m.sharedIntermediate % m.intermediate !== 0) || severalStored(m)) ? { ...m, sharedIntermediate: m.intermediate } : m;
  return fc.constantFrom(...types).chain((t) => fc.record({ model: modelSpecArb(t, cores).map(shared), layout: layoutArb(layouts), shards: shardArb }).map(({ model, layout, shards }) => ({ model, layout, dtype, shards })));
}

/** What a quantized family is drawn within: TP and EP sizes, and the layouts (default both). */
interface QuantLimits extends ParallelLimits {
  layouts?: readonly Layout[];
}

/** Valid loads of quantized checkpoints over all ranks, (where both layouts are allowed) both layouts agreeing, and the refusal of a quantized router. */
export function quantCaseArb(limits: QuantLimits = {}, dtypes: readonly QuantDtypeName[] = ['fp8', 'mxfp4'], modelTypes?: readonly string[]): fc.Arbitrary<CaseSpec> {
  const checkpoints = dtypes.flatMap((d) => {
    const types = FAMILIES[d].types.filter((t) => !modelTypes || modelTypes.includes(t));
    return types.length ? [checkpointArb(d, types, limits.layouts)] : [];
  });
  if (checkpoints.length === 0) throw new CaseSpecError('no quantized checkpoint is left to generate', { expected: `a model type ${dtypes.join(', ')} can store`, found: modelTypes });
  const bothLayouts = !limits.layouts || (limits.layouts.includes('original') && limits.layouts.includes('fused'));
  return fc.oneof(...checkpoints).chain((checkpoint) => {
    const m = checkpoint.model;
    const scheme = QUANT_DTYPES[checkpoint.dtype as QuantDtypeName];
    const tpSizes = (limits.tpSizes ?? [1, 2, 3, 4]).filter((t) => tpKeepsBlocks(m.intermediate, t, scheme));
    const parallel = validParallelArb(m, { ...limits, tpSizes });
    const load = { arbitrary: parallel.map((p): CaseSpec => ({ kind: 'load', checkpoint, parallel: p })), weight: 3 };
    const layout = { arbitrary: parallel.map((p): CaseSpec => ({ kind: 'layout', checkpoint, parallel: p })), weight: 1 };
    // The router is never quantized (spec/layouts.md §4): a checkpoint that quantizes it is refused.
    const router = { arbitrary: fc.constant<CaseSpec>({ kind: 'refuse', checkpoint, broken: 'quantized-router' }), weight: 1 };
    return FAMILIES[checkpoint.dtype as QuantDtypeName].layouts && bothLayouts ? fc.oneof(load, layout, router) : fc.oneof(load, router);
  });
}

/** The quantized case families of the default suite: one per format, so each gets its share of cases. */
export const QUANT_FAMILIES: ReadonlyArray<{ label: string; dtypes: readonly QuantDtypeName[] }> = [
  { label: 'FP8 block scales (shared experts float and quantized)', dtypes: ['fp8', 'fp8-shared'] },
  { label: 'MXFP4 (every layout family; shared experts float and quantized; compressed-tensors mxfp4-pack-quantized)', dtypes: ['mxfp4', 'mxfp4-shared', 'mxfp4-ct'] },
  { label: 'NVFP4 (global scales per projection, per expert, per tensor)', dtypes: ['nvfp4', 'nvfp4-merged', 'nvfp4-tensor'] },
  { label: 'static FP8 (fp8, ModelOpt, compressed-tensors per tensor and per channel)', dtypes: ['fp8-tensor', 'fp8-modelopt', 'fp8-modelopt-tensor', 'fp8-ct-tensor', 'fp8-ct-channel'] },
  { label: 'INT4 groups (compressed-tensors pack-quantized: groups of 32, 64 asymmetric, 128, actorder)', dtypes: ['int4-ct-g32', 'int4-ct-g64-asym', 'int4-ct-g128', 'int4-ct-g32-actorder'] },
  { label: 'INT4 groups (GPTQ: groups of 32, 64 asymmetric, desc_act, v2 zeros)', dtypes: ['int4-gptq-g32', 'int4-gptq-g64-asym', 'int4-gptq-g32-desc-act', 'int4-gptq-v2-g32-asym'] },
  { label: 'INT4 groups (AWQ GEMM: groups of 32, 128)', dtypes: ['int4-awq-g32', 'int4-awq-g128'] },
];
