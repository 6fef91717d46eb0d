// config.json for a generated checkpoint: every field the registry reads for the model
// type, under that type's own names (each type's `generator.config`), with every decoder
// layer an MoE layer. The test suite reads the result back through the registry and checks
// it gives the sizes asked for.
import { entryFor, isModelType, MODEL_TYPES, type ModelSizes, type SharedRule } from '../layouts/registry.js';
import { WriterInputError } from './errors.js';

export type { ModelSizes } from '../layouts/registry.js';

export type ConfigDtype = 'float32' | 'bfloat16' | 'float16';

/** The shared-expert sizes each model type can express, relative to the expert size `I`. */
export function sharedSizeRule(modelType: string): SharedRule {
  return entryFor(modelType).generator.shared;
}

/** A config.json for these sizes; `overrides` (routing parameters, ...) are merged last. */
export function buildConfig(s: ModelSizes, dtype: ConfigDtype, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  if (!isModelType(s.modelType)) {
    throw new WriterInputError('cannot build a config for this model type', { expected: MODEL_TYPES.join('|'), found: s.modelType });
  }
  const Is = sharedSizeFor(s);
  const sizes: Required<ModelSizes> = { ...s, sharedIntermediate: Is, groups: s.groups ?? 1, topkGroups: s.topkGroups ?? 1 };
  return { model_type: s.modelType, dtype, ...entryFor(s.modelType).generator.config(sizes, Is), ...overrides };
}

/** The shared size the model type will read back, or a refusal if it cannot express the one asked for. */
function sharedSizeFor(s: ModelSizes): number {
  const asked = s.sharedIntermediate ?? 0;
  const rule = sharedSizeRule(s.modelType);
  const refuse = (expected: string) => {
    throw new WriterInputError(`${s.modelType} cannot have this shared-expert size`, { expected, found: asked });
  };
  if (rule === 'none' && asked !== 0) refuse('0 (no shared expert)');
  if (rule === 'equals_I' && asked !== 0 && asked !== s.intermediate) refuse(`Is = I = ${s.intermediate} (or absent)`);
  if (rule === 'multiple_of_I' && asked % s.intermediate !== 0) refuse(`a multiple of I = ${s.intermediate}`);
  if (rule === 'positive_multiple_of_I' && (asked === 0 || asked % s.intermediate !== 0)) refuse(`a positive multiple of I = ${s.intermediate}`);
  return rule === 'equals_I' ? s.intermediate : asked;
}
