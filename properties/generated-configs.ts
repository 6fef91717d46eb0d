// The configurations the generators draw, per model type, as data that transformers can be
// asked about: golden/tools/check_generated_configs.py builds each with transformers, saves
// it in both layouts and checks that the MoE module holds exactly the tensors (names and
// shapes) the registry says. Its record, golden/generated-configs.json, is checked without
// Python by generated-configs.test.ts: fresh (the same configs and tensor tables as the
// generators draw today) and clean (transformers built every one as the registry says).
//
// Each sample also says how it was drawn; configs that the registry's constraints exclude
// (jamba with one expert, the deepseek family without a shared expert) are exported as
// counterexamples, which transformers must build as something else: evidence that each
// constraint is real.
import fc from 'fast-check';
import { caseHash } from '../harness/conformance/case-id.js';
import { ModelConfig } from '../harness/checkpoint/config.js';
import { entryFor, MODEL_TYPES, type SizeConstraints } from '../harness/layouts/registry.js';
import { randomCanonical } from '../harness/canonical/random.js';
import { storedTensors } from '../harness/writer/write-checkpoint.js';
import { sharedSizeRule } from '../harness/writer/config.js';
import { modelSpecArb } from './arbitraries/dims.js';
import { configFor } from './materialize.js';
import { LAYOUTS, type Layout, type ModelSpec } from './spec.js';

export interface LayoutTable {
  /** The MoE modules' key prefixes (one per MoE layer). */
  modules: string[];
  /** Every tensor the harness writes under them: name → shape. */
  tensors: Record<string, number[]>;
}

export interface ConfigSample {
  id: string;
  modelType: string;
  model: ModelSpec;
  /** config.json as the generated checkpoint has it. */
  config: Record<string, unknown>;
  layouts: Record<Layout, LayoutTable>;
  /** Set on counterexamples: the constraint that keeps the generators from drawing this config. */
  excludedBy?: keyof SizeConstraints;
}

export const SAMPLES_PER_TYPE = 8;
export const SAMPLE_SEED = 18;

const modelId = (m: ModelSpec) => `${m.modelType}:e=${m.experts};h=${m.hidden};i=${m.intermediate};is=${m.sharedIntermediate};k=${m.topK};g=${m.groups};tg=${m.topkGroups};layers=${m.layers}`;

/** What the harness writes for a model in each layout, under the MoE modules only. */
export function layoutTables(m: ModelSpec, config: Record<string, unknown>): Record<Layout, LayoutTable> {
  const c = new ModelConfig(config, 'config.json');
  const entry = entryFor(m.modelType);
  const dims = entry.dims(c);
  const canonical = randomCanonical(dims, 'F32', 1);
  const out = {} as Record<Layout, LayoutTable>;
  for (const layout of LAYOUTS) {
    const tensors: Record<string, number[]> = {};
    for (const [name, t] of [...storedTensors({ config: c, layout, canonical })].sort(([a], [b]) => (a < b ? -1 : 1))) tensors[name] = [...t.shape];
    out[layout] = { modules: dims.moeLayers.map((l) => entry.layouts[layout].module.replace('{L}', String(l))), tensors };
  }
  return out;
}

function sample(m: ModelSpec, excludedBy?: keyof SizeConstraints): ConfigSample {
  const config = configFor(m, 'f32');
  return { id: modelId(m), modelType: m.modelType, model: m, config, layouts: layoutTables(m, config), ...(excludedBy && { excludedBy }) };
}

/**
 * Per model type, `perType` distinct configs drawn by the generators (the seed fixed) with
 * the smallest expert count and shared size they allow always among them, then one
 * counterexample per constraint the type declares.
 */
export function generatedConfigSamples(perType = SAMPLES_PER_TYPE, seed = SAMPLE_SEED, types: readonly string[] = MODEL_TYPES): ConfigSample[] {
  const out: ConfigSample[] = [];
  for (const t of types) {
    const drawn = fc.sample(modelSpecArb(t), { numRuns: 200, seed: seed + caseHash(t) });
    const byId = new Map<string, ModelSpec>();
    // The edges first: the fewest experts and the smallest shared size drawn, then the rest in draw order.
    const fewest = Math.min(...drawn.map((m) => m.experts));
    const leastShared = Math.min(...drawn.map((m) => m.sharedIntermediate));
    for (const m of [drawn.find((d) => d.experts === fewest)!, drawn.find((d) => d.sharedIntermediate === leastShared)!, ...drawn]) {
      if (byId.size < perType) byId.set(modelId(m), m);
    }
    out.push(...[...byId.values()].map((m) => sample(m)));
    const base = drawn[0]!;
    const c = entryFor(t).constraints ?? {};
    if (c.minExperts !== undefined && c.minExperts > 1) out.push(sample({ ...base, experts: c.minExperts - 1, topK: 1, groups: 1, topkGroups: 1 }, 'minExperts'));
    if (c.sharedRequired && sharedSizeRule(t) === 'multiple_of_I') out.push(sample({ ...base, sharedIntermediate: 0 }, 'sharedRequired'));
  }
  return out;
}

/** A short fingerprint of a sample's config and tensor tables, for the committed record. */
export function sampleHash(s: ConfigSample): string {
  const h1 = caseHash(JSON.stringify({ config: s.config, layouts: s.layouts }));
  const h2 = caseHash(JSON.stringify({ layouts: s.layouts, config: s.config, id: s.id }));
  return `${h1.toString(16).padStart(8, '0')}${h2.toString(16).padStart(8, '0')}`;
}

/** What properties/export-generated-configs.ts writes: the samples with their fingerprints, for the Python check. */
export function exportedSamples(samples: readonly ConfigSample[] = generatedConfigSamples()): string {
  return JSON.stringify({ seed: SAMPLE_SEED, perType: SAMPLES_PER_TYPE, samples: samples.map((s) => ({ ...s, hash: sampleHash(s) })) }, null, 1) + '\n';
}
