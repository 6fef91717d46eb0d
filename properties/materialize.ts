// Turns a checkpoint spec into a Hugging Face directory on disk: config.json from the
// writer's config builder, whole canonical weights from the seeded generator, the layout
// written by the writer, sharded as the spec says; and, for broken checkpoints, the one
// defect the spec names, made the way it happens in the wild.
import { readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ModelConfig } from '../harness/checkpoint/config.js';
import { writeCheckpointDir, type ShardPlan } from '../harness/checkpoint/write.js';
import { MoeConformanceError } from '../harness/errors.js';
import { entryFor, type MoeDims } from '../harness/layouts/registry.js';
import type { DType } from '../harness/safetensors/dtypes.js';
import type { Canonical, Tensor } from '../harness/tensor.js';
import { buildConfig, type ConfigDtype } from '../harness/writer/config.js';
import { randomCanonical, xoshiro128ss } from '../harness/canonical/random.js';
import { moeLayoutsOf } from '../harness/quant/layout.js';
import { randomQuantizedCanonical } from '../harness/quant/random.js';
import { fp8Scheme, quantizationConfig, type QuantScheme } from '../harness/quant/scheme.js';
import { decodeFloats64, encodeFloats } from '../harness/safetensors/codecs.js';
import { QUANT_DTYPES } from '../harness/quant/formats/index.js';
import { storedTensors, writeMoeCheckpoint } from '../harness/writer/write-checkpoint.js';
import { writeSafetensors } from '../harness/safetensors/write.js';
import { INDEX_FILE } from '../harness/checkpoint/directory.js';
import { CaseSpecError, shardText, type Breakage, type CaseSpec, type CheckpointSpec, type DtypeName, type Layout, type ModelSpec, type QuantDtypeName, type ShardSpec } from './spec.js';
import { checkRequest } from '../harness/canonical/cut.js';
import { InvalidParallelRequest } from '../harness/canonical/errors.js';

export class MaterializeError extends MoeConformanceError {}

const DTYPES: Record<DtypeName, { dtype: DType; config: ConfigDtype; quant?: Record<string, unknown>; scheme?: QuantScheme }> = {
  f32: { dtype: 'F32', config: 'float32' },
  f16: { dtype: 'F16', config: 'float16' },
  bf16: { dtype: 'BF16', config: 'bfloat16' },
  // Every quantized dtype's config; FP8 blocks small and rectangular, so the generated sizes end in partial blocks and TP ranks start inside them.
  // The scheme rides along: variants of one config (NVFP4's shared global scales) differ in stored shapes only.
  ...(Object.fromEntries(Object.entries(QUANT_DTYPES).map(([name, scheme]) => [name, { dtype: 'BF16', config: 'bfloat16', quant: quantizationConfig(scheme), scheme }])) as Record<QuantDtypeName, { dtype: DType; config: ConfigDtype; quant: Record<string, unknown>; scheme: QuantScheme }>),
  fp8: { dtype: 'BF16', config: 'bfloat16', quant: quantizationConfig(fp8Scheme({ rows: 4, cols: 6 })), scheme: fp8Scheme({ rows: 4, cols: 6 }) },
  'fp8-shared': { dtype: 'BF16', config: 'bfloat16', quant: quantizationConfig(fp8Scheme({ rows: 4, cols: 6 })), scheme: { ...fp8Scheme({ rows: 4, cols: 6 }), sharedQuantized: true } },
};

/** config.json for the spec: the writer's builder, with the spec's expert groups. */
export function configFor(m: ModelSpec, dtype: DtypeName): Record<string, unknown> {
  const quant = DTYPES[dtype].quant;
  return buildConfig({ ...m }, DTYPES[dtype].config, quant ? { quantization_config: quant } : {});
}

/**
 * Refuses a generated-case spec that no checkpoint or request can be made for — a case ID
 * edited by hand: a model type that does not exist, sizes the type does not allow, a TP size
 * that does not divide I, more EP ranks than experts — before any loader runs, so that a
 * correct loader is never blamed for the harness's impossible case. Request cases carry an
 * invalid request on purpose: only their checkpoint is checked.
 */
export function checkSpec(spec: CaseSpec): void {
  const { model, dtype } = spec.checkpoint;
  let dims: MoeDims;
  try {
    dims = moeLayoutsOf(new ModelConfig(configFor(model, dtype)), DTYPES[dtype].scheme).dims;
  } catch (e) {
    throw new CaseSpecError(`no ${model.modelType} checkpoint can be made with these sizes: ${(e as Error).message}`);
  }
  const { shards, decoy } = spec.checkpoint;
  if (decoy && (spec.kind !== 'load' || shards.kind !== 'scatter' || shards.files < 2)) {
    throw new CaseSpecError('decoy files are written beside an index, for loads: decoy=1 needs a load case with shards=scatter-N, N ≥ 2', { expected: 'moe:load:...;shards=scatter-N;decoy=1', found: `${spec.kind} case with shards=${shardText(shards)}` });
  }
  if (spec.kind !== 'load' && spec.kind !== 'layout') return;
  const { tp, ep, placement } = spec.parallel;
  try {
    for (let tpRank = 0; tpRank < tp; tpRank++) for (let epRank = 0; epRank < ep; epRank++) checkRequest({ tpSize: tp, tpRank, epSize: ep, epRank, epPlacement: placement }, dims);
  } catch (e) {
    if (!(e instanceof InvalidParallelRequest)) throw e;
    throw new CaseSpecError(`TP ${tp} × EP ${ep} is not a request every loader must serve for this checkpoint: ${e.message}`);
  }
}

/** The model's config, its sizes as the registry reads them, and its whole weights. */
export interface Generated {
  config: ModelConfig;
  dims: MoeDims;
  canonical: Canonical;
  /** The quantization scheme (variant) the weights are drawn and stored in. */
  scheme?: QuantScheme;
  /** The decoy files written beside the index (spec.decoy). */
  decoy?: { files: readonly string[] };
}

/**
 * The decoys of a `decoy=1` case, beside `model-0000k-of-0000N.safetensors` and the index:
 * Mistral's `consolidated.safetensors` (its repositories ship it beside the HF shards) sorts
 * before the shards, `model-stale.safetensors` (a stale shard of an earlier save) after them,
 * so a globbing loader reads a decoy last or first, whichever file wins. Both hold the same
 * tensors (see writeDecoys). Never `model.safetensors`: transformers reads that one instead of
 * the index, so a checkpoint holding both is refused as ambiguous (spec §2), not a decoy.
 */
export const DECOY_FILES = ['consolidated.safetensors', 'model-stale.safetensors'] as const;

/** Writes config.json into `dir` (which must exist) and generates the weights. */
export async function generate(spec: CheckpointSpec, seed: number, dir: string): Promise<Generated> {
  await writeFile(join(dir, 'config.json'), JSON.stringify(configFor(spec.model, spec.dtype), null, 2));
  const config = await ModelConfig.read(dir);
  const { dims, scheme } = moeLayoutsOf(config, DTYPES[spec.dtype].scheme);
  return { config, dims, ...(scheme && { scheme }), canonical: drawWeights(spec.dtype, dims, scheme, seed) };
}

/** Whole canonical weights of the model, drawn from `seed`: quantized in `scheme` where there is one. */
function drawWeights(dtype: DtypeName, dims: MoeDims, scheme: QuantScheme | undefined, seed: number): Canonical {
  return scheme ? randomQuantizedCanonical(dims, scheme, seed) : randomCanonical(dims, DTYPES[dtype].dtype, seed);
}

/** Writes a valid checkpoint in `layout` (default the spec's) into the empty folder `dir`. */
export async function writeCheckpoint(spec: CheckpointSpec, seed: number, dir: string, layout: Layout = spec.layout): Promise<Generated> {
  const g = await generate(spec, seed, dir);
  const keys = [...storedTensors({ config: g.config, layout, canonical: g.canonical, scheme: g.scheme }).keys()];
  const { plan, order } = shardPlan(spec.shards, keys, seed);
  await writeMoeCheckpoint(dir, { config: g.config, layout, canonical: g.canonical, scheme: g.scheme, plan, order });
  return spec.decoy ? { ...g, decoy: await writeDecoys(dir, spec.dtype, g, layout, seed) } : g;
}

/**
 * Writes DECOY_FILES beside the index: every stored tensor of the checkpoint, same names,
 * dtypes and shapes, with the values of another draw of the weights (seed ^ 0xdec0). The
 * index names none of them, so a loader that honours it never reads them (spec §2).
 */
async function writeDecoys(dir: string, dtype: DtypeName, g: Generated, layout: Layout, seed: number): Promise<NonNullable<Generated['decoy']>> {
  const indexed = await stat(join(dir, INDEX_FILE)).then(() => true, () => false);
  if (!indexed) throw new MaterializeError('decoy files need an index beside them', { file: join(dir, INDEX_FILE), expected: 'an index (a checkpoint of several shards)', found: 'none' });
  const decoySeed = (seed ^ 0xdec0) >>> 0;
  const canonical = drawWeights(dtype, g.dims, g.scheme, decoySeed);
  const stored = storedTensors({ config: g.config, layout, canonical, scheme: g.scheme });
  for (const name of DECOY_FILES) await writeSafetensors(join(dir, name), stored, { format: 'pt' });
  return { files: DECOY_FILES };
}

function shardPlan(s: ShardSpec, keys: string[], seed: number): { plan?: ShardPlan; order?: (k: string[]) => string[] } {
  if (s.kind === 'single') return {};
  if (s.kind === 'max') return { plan: { maxShardBytes: s.bytes } };
  // Every file gets at least one tensor; the rest land anywhere; keys are written in random order.
  const random = xoshiro128ss(seed ^ 0x5eed);
  const files = Math.max(1, Math.min(s.files, keys.length));
  const shuffled = shuffle(keys, random);
  const assignment = new Map(shuffled.map((k, i) => [k, i < files ? i : Math.floor(random() * files)]));
  return { plan: { assignment, files }, order: () => shuffled };
}

function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** Whether the model's original and fused layouts differ (gpt_oss, llama4_text and dbrx have one layout). */
export function hasTwoLayouts(modelType: string): boolean {
  const l = entryFor(modelType).layouts;
  return l.original !== l.fused;
}

/** Whether the two layouts name their tensors differently (qwen3_vl_moe's differ in shapes only): a layer can then be half of each. */
export function layoutsDifferInNames(modelType: string): boolean {
  const l = entryFor(modelType).layouts;
  const names = (m: { module: string; tensors: Array<{ key: string }> }) => m.tensors.map((t) => `${m.module}.${t.key}`).join();
  return names(l.original) !== names(l.fused);
}

/** The defect a broken checkpoint carries: what was done, to which tensors or file (for the report). */
export interface Defect {
  broken: Breakage;
  /** e.g. `removed model.layers.1.mlp.experts.3.up_proj.weight`. */
  detail: string;
}

/** Writes the checkpoint with one defect into the empty folder `dir`, and says what the defect is. */
export async function writeBroken(spec: CheckpointSpec, seed: number, broken: Breakage, dir: string): Promise<Defect> {
  if (broken === 'missing-shard' || broken === 'truncated-shard') {
    const g = await writeCheckpoint(spec, seed, dir);
    const shards = (await readdir(dir)).filter((f) => f.endsWith('.safetensors')).sort();
    const name = shards[shards.length - 1]!;
    const victim = join(dir, name);
    const held = await tensorsInShard(dir, name, g);
    if (broken === 'missing-shard') await rm(victim);
    else await truncate(victim, (await stat(victim)).size - 1);
    return { broken, detail: `${broken === 'missing-shard' ? 'deleted' : 'cut the last byte off'} shard ${name} (holding ${held})` };
  }
  const g = await generate(spec, seed, dir);
  const stored = storedTensors({ config: g.config, layout: spec.layout, canonical: g.canonical, scheme: g.scheme });
  const other = storedTensors({ config: g.config, layout: spec.layout === 'original' ? 'fused' : 'original', canonical: g.canonical, scheme: g.scheme });
  // Not shared_experts., nor granitemoeshared's shared_mlp.input_linear; doge's experts are down_embed/up_embed;
  // step3p7's original stacks its experts as moe.{gate,up,down}_proj.
  const expertKeys = [...stored.keys()].filter((k) => /(^|\.)experts\.|(^|\.)(block_sparse_moe|mlp)\.(input|output)_linear\.|\.(down|up)_embed\.|\.moe\.(gate|up|down)_proj\./.test(k));
  const victim = expertKeys[expertKeys.length - 1];
  if (victim === undefined) throw new MaterializeError('no expert tensor to break', { expected: 'an experts.* tensor', found: [...stored.keys()] });
  const t = stored.get(victim)!;
  let detail: string;
  switch (broken) {
    case 'missing-expert': {
      // Per-expert layouts lose the last expert (all its tensors, or, for odd seeds, only one
      // projection of it); stacked layouts lose the last expert's slice.
      const perExpert = expertKeys.filter((k) => /experts\.\d+\./.test(k));
      const last = perExpert[perExpert.length - 1];
      if (last === undefined) {
        stored.set(victim, dropLastExpert(t, g.dims.experts));
        detail = `dropped the last expert's slice of ${victim} (${JSON.stringify(t.shape)} stored as ${JSON.stringify(stored.get(victim)!.shape)})`;
      } else if (seed % 2 === 1) {
        stored.delete(last);
        detail = `removed ${last}`;
      } else {
        const prefix = /^(.*experts\.\d+\.)/.exec(last)![1]!;
        const gone = perExpert.filter((k) => k.startsWith(prefix));
        for (const k of gone) stored.delete(k);
        detail = `removed ${gone.join(', ')}`;
      }
      break;
    }
    case 'duplicate-expert': {
      // An expert stored twice: the other layout's form of it added beside this one's.
      const extra = [...other.keys()].find((k) => !stored.has(k) && /experts|_linear/.test(k));
      // Where both layouts store the same names (jetmoe's input/output_linear), the other form adds nothing: add a per-expert copy beside the stacked one.
      let key = extra ?? victim.replace(/experts\..*$/, 'experts.0.gate_proj.weight');
      if (extra === undefined && stored.has(key)) key = victim.replace(/[^.]+\.weight$/, 'experts.0.gate_proj.weight');
      stored.set(key, extra !== undefined ? other.get(extra)! : { ...t });
      detail = `added ${key}, a second copy of weights that ${extra !== undefined ? 'the layout already stores' : `${victim} holds`}`;
      break;
    }
    case 'wrong-shape':
      stored.set(victim, extraRow(t));
      detail = `${victim} stored with one extra row: ${JSON.stringify(stored.get(victim)!.shape)} instead of ${JSON.stringify(t.shape)}`;
      break;
    case 'quantized-router': {
      // The first MoE layer's router stored as F8_E4M3 with a per-tensor weight_scale beside it, as a quantizer whose ignore list missed it writes.
      // The stored tensor that holds the first MoE layer's router: the writer stores the canonical router as it is.
      const layer = g.dims.moeLayers[0]!;
      const router = g.canonical.get(`layers.${layer}.router.weight`)!;
      const key = [...stored].find(([, t]) => t.bytes === router.bytes || (t.bytes.length === router.bytes.length && t.bytes.every((b, i) => b === router.bytes[i])))?.[0];
      if (key === undefined) throw new MaterializeError('no router tensor to quantize', { expected: 'the stored router weight', found: [...stored.keys()] });
      const r = stored.get(key)!;
      const values = decodeFloats64(r.dtype, r.bytes);
      const scale = Math.fround(values.reduce((m, v) => Math.max(m, Math.abs(v)), 0) / 448 || 1);
      stored.set(key, { dtype: 'F8_E4M3', shape: r.shape, bytes: encodeFloats('F8_E4M3', values.map((v) => v / scale)) });
      stored.set(`${key}_scale`, { dtype: 'F32', shape: [], bytes: new Uint8Array(Float32Array.of(scale).buffer) });
      detail = `${key} stored as F8_E4M3 with ${key}_scale beside it (a quantized router)`;
      break;
    }
    case 'half-fused': {
      // The first MoE layer: half of its original-only tensors, half of its fused-only ones.
      const layer = g.dims.moeLayers[0]!;
      const inLayer = (k: string) => new RegExp(`(^|\\.)(layers|blocks)\\.${layer}\\.`).test(k);
      const [original, fused] = spec.layout === 'original' ? [new Map(stored), other] : [other, new Map(stored)];
      const originalOnly = [...original.keys()].filter((k) => inLayer(k) && !fused.has(k)).sort();
      const fusedOnly = [...fused.keys()].filter((k) => inLayer(k) && !original.has(k)).sort();
      if (originalOnly.length === 0 || fusedOnly.length === 0) throw new MaterializeError('this model has one layout: it cannot be half fused', { expected: 'a model whose original and fused layouts differ', found: spec.model.modelType });
      for (const k of [...originalOnly, ...fusedOnly]) stored.delete(k);
      const keptOriginal = originalOnly.slice(0, Math.ceil(originalOnly.length / 2));
      const keptFused = fusedOnly.slice(Math.floor(fusedOnly.length / 2));
      for (const k of keptOriginal) stored.set(k, original.get(k)!);
      for (const k of keptFused) stored.set(k, fused.get(k)!);
      detail = `layer ${layer} holds original-layout ${keptOriginal.join(', ')} beside fused-layout ${keptFused.join(', ')}`;
      break;
    }
  }
  const { plan, order } = shardPlan(spec.shards, [...stored.keys()], seed);
  const keys = order ? order([...stored.keys()]) : [...stored.keys()];
  await writeCheckpointDir(dir, g.config.raw, keys.map((k) => [k, stored.get(k)!]), plan);
  return { broken, detail };
}

/** The tensor names a shard holds, from the index (or every stored tensor for a single file), for the defect's description. */
async function tensorsInShard(dir: string, shard: string, g: Generated): Promise<string> {
  try {
    const index = JSON.parse(await readFile(join(dir, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    const names = Object.entries(index.weight_map).filter(([, f]) => f === shard).map(([k]) => k).sort();
    return names.length <= 4 ? names.join(', ') : `${names.slice(0, 3).join(', ')} and ${names.length - 3} more`;
  } catch {
    return `${g.canonical.size > 0 ? 'every tensor' : 'nothing'}`;
  }
}

function dropLastExpert(t: Tensor, experts: number): Tensor {
  const rows = t.shape[0]!;
  const keep = rows - rows / experts;
  const rowBytes = t.bytes.length / rows;
  return { dtype: t.dtype, shape: [keep, ...t.shape.slice(1)], bytes: t.bytes.slice(0, keep * rowBytes) };
}

function extraRow(t: Tensor): Tensor {
  const rows = t.shape[0]!;
  const rowBytes = rows === 0 ? 0 : t.bytes.length / rows;
  const bytes = new Uint8Array(t.bytes.length + rowBytes);
  bytes.set(t.bytes);
  bytes.set(t.bytes.subarray(0, rowBytes), t.bytes.length);
  return { dtype: t.dtype, shape: [rows + 1, ...t.shape.slice(1)], bytes };
}
