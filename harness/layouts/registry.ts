// The index of model types (one file each under types/, described by model-type.ts) and
// what the rest of the harness asks of it: an entry by model_type, and the semantics of a
// checkpoint's MoE block from its config.json.
// Sources: spec/layouts.md, transformers 5.17 modeling_*.py, configuration_*.py
// and conversion_mapping.py, and the golden fixtures' headers.
import { CONFIG_FILE, type ModelConfig } from '../checkpoint/config.js';
import type { MoeSemantics } from './semantics.js';
import type { ModelEntry } from './model-type.js';
import { RefusedModelType, UnknownModelType } from './errors.js';
import { ENTRIES, ENTRIES_BY_TYPE, type ModelType } from './types/index.js';
import { REFUSED_TYPES } from './types/refused.js';

export type { ModelType };

export { LAYOUT_NAMES } from './model-type.js';
export type { Features, GeneratorTraits, LayoutName, ModelEntry, ModelSizes, ModuleLayout, MoeDims, SharedRule, SizeConstraints, TensorSpec } from './model-type.js';

const REGISTRY = new Map<string, ModelEntry>(ENTRIES.map((e) => [e.modelType, e]));

export const MODEL_TYPES = Object.keys(ENTRIES_BY_TYPE) as readonly ModelType[];

export function isModelType(name: string): name is ModelType {
  return REGISTRY.has(name);
}

/** `file`: the config the model_type was read from, named in the error (config.json by default). */
export function entryFor(modelType: string, file: string = CONFIG_FILE): ModelEntry {
  const entry = REGISTRY.get(modelType);
  const refused = Object.hasOwn(REFUSED_TYPES, modelType) ? REFUSED_TYPES[modelType] : undefined;
  if (!entry && refused !== undefined) {
    throw new RefusedModelType(`model_type ${modelType} is refused: ${refused}`, { file, expected: 'one routed expert set per MoE layer', found: modelType });
  }
  if (!entry) throw new UnknownModelType('no layout is registered for this model_type', { file, expected: MODEL_TYPES.join('|'), found: modelType });
  return entry;
}

/**
 * What one MoE block of this model type computes, from config.json, before quantization:
 * harness/quant's semanticsOf adds the checkpoint's quantization scheme (what kernels/ read).
 */
export function modelSemanticsOf(c: ModelConfig): MoeSemantics {
  const entry = entryFor(c.modelType, c.file);
  const d = entry.dims(c);
  return {
    modelType: c.modelType,
    experts: d.experts,
    topK: d.topK,
    hidden: d.hidden,
    intermediate: d.intermediate,
    sharedIntermediate: d.sharedIntermediate,
    routing: entry.routing(c),
    activation: entry.activation(c),
    sharedGate: d.features.sharedGate,
    moeLayers: d.moeLayers,
    ...(entry.extra ? entry.extra(c, d) : {}),
  };
}
