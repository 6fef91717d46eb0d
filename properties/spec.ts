// A conformance case as data: the model's sizes, the checkpoint's layout, dtype and
// sharding, the parallel setting, and what (if anything) is broken. The case ID prints
// every one of these, and parses back, so `check --case ID` rebuilds the very same case;
// the weights and the input are drawn from a seed derived from the ID, never the reverse.
import { MoeConformanceError } from '../harness/errors.js';
import { caseHash, caseId, formatCaseId, param, parseCaseId, type CaseId } from '../harness/conformance/case-id.js';
import type { EpPlacement } from '../harness/tensor.js';

export class CaseSpecError extends MoeConformanceError {}

// The layout and dtype names are the capabilities' vocabulary (a loader declares them), defined there.
import { DTYPE_NAMES, LAYOUTS, QUANT_DTYPE_NAMES, type CaseNeeds, type DtypeName, type Layout } from '../harness/conformance/capabilities.js';
export { DTYPE_NAMES, LAYOUTS, QUANT_DTYPE_NAMES };
export type { DtypeName, Layout, QuantDtypeName } from '../harness/conformance/capabilities.js';

export interface ModelSpec {
  modelType: string;
  experts: number;
  hidden: number;
  intermediate: number;
  /** 0: no shared expert. */
  sharedIntermediate: number;
  topK: number;
  /** Expert groups for group-limited routing (1 where the model has none). */
  groups: number;
  topkGroups: number;
  layers: number;
}

/**
 * How the checkpoint is split into files: one file; transformers' greedy plan with a size
 * cap; or every tensor sent to a random one of `n` files with keys in random order (one
 * layer's experts spread over files), drawn from the case seed.
 */
export type ShardSpec = { kind: 'single' } | { kind: 'max'; bytes: number } | { kind: 'scatter'; files: number };

export interface CheckpointSpec {
  model: ModelSpec;
  layout: Layout;
  dtype: DtypeName;
  shards: ShardSpec;
  /**
   * Beside the indexed shards, `.safetensors` files the index does not name, holding every
   * tensor of the checkpoint under the same names with other values (materialize.ts
   * DECOY_FILES): a loader that reads only the files the index names, as transformers and vLLM do,
   * loads the checkpoint; one that globs `*.safetensors` loads the decoy. `decoy=1` in the
   * case ID; drawn only by the suite's decoy property, for loads of an indexed checkpoint.
   */
  decoy?: true;
}

export interface ParallelSpec {
  tp: number;
  ep: number;
  placement: EpPlacement;
}

/** `quantized-router`: a quantized checkpoint whose router is stored F8_E4M3 with a weight_scale (drawn by the quantized families only). */
export const BREAKAGES = ['missing-expert', 'duplicate-expert', 'wrong-shape', 'half-fused', 'missing-shard', 'truncated-shard', 'quantized-router'] as const;
export type Breakage = (typeof BREAKAGES)[number];

export const BAD_REQUESTS = ['tp-not-dividing', 'ep-too-large', 'tp-rank-out-of-range', 'ep-rank-out-of-range'] as const;
export type BadRequest = (typeof BAD_REQUESTS)[number];

export type CaseSpec =
  /** Every rank of a valid checkpoint: bit-exact, coverage, forward, loading twice. */
  | { kind: 'load'; checkpoint: CheckpointSpec; parallel: ParallelSpec }
  /** The same weights in both layouts load to the same bytes. */
  | { kind: 'layout'; checkpoint: CheckpointSpec; parallel: ParallelSpec }
  /** A broken checkpoint is refused. */
  | { kind: 'refuse'; checkpoint: CheckpointSpec; broken: Breakage }
  /** An invalid request is refused. */
  | { kind: 'request'; checkpoint: CheckpointSpec; parallel: ParallelSpec; bad: BadRequest };

export function shardText(s: ShardSpec): string {
  return s.kind === 'single' ? 'single' : s.kind === 'max' ? `max-${s.bytes}` : `scatter-${s.files}`;
}

function parseShards(text: string): ShardSpec {
  if (text === 'single') return { kind: 'single' };
  const m = /^(max|scatter)-(\d+)$/.exec(text);
  if (!m) throw new CaseSpecError('bad shards parameter', { expected: 'single | max-BYTES | scatter-FILES', found: text });
  return m[1] === 'max' ? { kind: 'max', bytes: Number(m[2]) } : { kind: 'scatter', files: Number(m[2]) };
}

export function specId(spec: CaseSpec): CaseId {
  const c = spec.checkpoint;
  const m = c.model;
  const model = {
    model: m.modelType,
    layout: spec.kind === 'layout' ? 'both' : c.layout,
    dtype: c.dtype,
    e: m.experts,
    h: m.hidden,
    i: m.intermediate,
    is: m.sharedIntermediate,
    k: m.topK,
    g: m.groups,
    tg: m.topkGroups,
    layers: m.layers,
    shards: shardText(c.shards),
    ...(c.decoy && { decoy: 1 }),
  };
  switch (spec.kind) {
    case 'load':
    case 'layout':
      return caseId('moe', spec.kind, { ...model, ...parallelParams(spec.parallel) });
    case 'refuse':
      return caseId('moe', 'refuse', { ...model, broken: spec.broken });
    case 'request':
      return caseId('moe', 'request', { ...model, ...parallelParams(spec.parallel), bad: spec.bad });
  }
}

function parallelParams(p: ParallelSpec) {
  return { tp: p.tp, ep: p.ep, placement: p.placement };
}

export function specIdText(spec: CaseSpec): string {
  return formatCaseId(specId(spec));
}

/** The case an ID names (the inverse of specId). */
export function parseSpec(text: string): CaseSpec {
  const id = parseCaseId(text);
  if (id.suite !== 'moe' || !['load', 'layout', 'refuse', 'request'].includes(id.test)) {
    throw new CaseSpecError('not a generated-case ID', { expected: 'moe:load|layout|refuse|request:...', found: text });
  }
  const get = (k: string): string => {
    const v = param(id, k);
    if (v === undefined) throw new CaseSpecError(`case ID lacks ${k}`, { expected: `${k}=...`, found: text });
    return v;
  };
  const int = (k: string): number => {
    const v = get(k);
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new CaseSpecError(`${k} must be a non-negative integer`, { expected: 'digits', found: v });
    return Number(v);
  };
  const oneOf = <T extends string>(k: string, allowed: readonly T[]): T => {
    const v = get(k);
    if (!(allowed as readonly string[]).includes(v)) throw new CaseSpecError(`bad ${k}`, { expected: allowed.join('|'), found: v });
    return v as T;
  };
  const model: ModelSpec = {
    modelType: get('model'),
    experts: int('e'),
    hidden: int('h'),
    intermediate: int('i'),
    sharedIntermediate: int('is'),
    topK: int('k'),
    groups: int('g'),
    topkGroups: int('tg'),
    layers: int('layers'),
  };
  const checkpoint: CheckpointSpec = {
    model,
    layout: id.test === 'layout' ? (oneOf('layout', ['both']), 'original') : oneOf('layout', LAYOUTS),
    dtype: oneOf('dtype', [...DTYPE_NAMES, ...QUANT_DTYPE_NAMES]),
    shards: parseShards(get('shards')),
    ...(param(id, 'decoy') !== undefined && { decoy: (oneOf('decoy', ['1']), true as const) }),
  };
  const parallel = (): ParallelSpec => ({ tp: int('tp'), ep: int('ep'), placement: oneOf('placement', ['linear', 'round_robin'] as const) });
  let spec: CaseSpec;
  switch (id.test) {
    case 'load':
      spec = { kind: 'load', checkpoint, parallel: parallel() };
      break;
    case 'layout':
      spec = { kind: 'layout', checkpoint, parallel: parallel() };
      break;
    case 'refuse':
      spec = { kind: 'refuse', checkpoint, broken: oneOf('broken', BREAKAGES) };
      break;
    default:
      spec = { kind: 'request', checkpoint, parallel: parallel(), bad: oneOf('bad', BAD_REQUESTS) };
  }
  if (specIdText(spec) !== formatCaseId(id)) {
    throw new CaseSpecError('case ID has parameters out of order or unknown', { expected: specIdText(spec), found: text });
  }
  return spec;
}

/**
 * What a loader must support to be asked this case: the model type, the layouts read, the
 * dtype and (for loads) the parallel setting. An invalid request must be refused whatever
 * the loader's TP and EP limits, so it asks none.
 */
export function specNeeds(spec: CaseSpec): CaseNeeds {
  const c = spec.checkpoint;
  const base = { modelType: c.model.modelType, layouts: spec.kind === 'layout' ? LAYOUTS : [c.layout], dtype: c.dtype };
  if (spec.kind === 'load' || spec.kind === 'layout') return { ...base, tp: spec.parallel.tp, ep: spec.parallel.ep, placement: spec.parallel.placement };
  return base;
}

/** The seed of a case's weights and input: a function of its ID alone. */
export function specSeed(spec: CaseSpec): number {
  return caseHash(specWeightsId(spec));
}

/**
 * The weights depend on the model and dtype only, so the two layouts of a `layout` case,
 * and a `load` case and a `refuse` case of the same model, hold the same numbers.
 */
function specWeightsId(spec: CaseSpec): string {
  const m = spec.checkpoint.model;
  return `${m.modelType}/${m.experts}/${m.hidden}/${m.intermediate}/${m.sharedIntermediate}/${m.topK}/${m.groups}/${m.topkGroups}/${m.layers}/${spec.checkpoint.dtype}`;
}
