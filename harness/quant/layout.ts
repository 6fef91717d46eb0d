// A checkpoint's MoE layouts: the model type's float layouts (../layouts/registry.ts), with
// the expert weights of a quantized checkpoint replaced or joined by its format's tensors
// (./formats/), so that the loader and the writer handle them like any other layout.
import type { ModelConfig } from '../checkpoint/config.js';
import { entryFor, modelSemanticsOf, type LayoutName, type ModelEntry, type ModuleLayout, type MoeDims } from '../layouts/registry.js';
import type { MoeSemantics } from '../layouts/semantics.js';
import { formatOf } from './formats/index.js';
import { quantSchemeOf, type QuantScheme } from './scheme.js';

/** A model's MoE layouts and sizes for this config.json, quantized where it says so. */
export interface MoeLayouts {
  entry: ModelEntry;
  dims: MoeDims;
  layouts: Record<LayoutName, ModuleLayout>;
  scheme?: QuantScheme;
}

const cache = new WeakMap<ModelEntry, Map<string, Record<LayoutName, ModuleLayout>>>();

export function moeLayoutsOf(config: ModelConfig): MoeLayouts {
  const entry = entryFor(config.modelType);
  const scheme = quantSchemeOf(config.raw, config.file);
  const dims = entry.dims(config);
  if (scheme === undefined) return { entry, dims, layouts: entry.layouts };
  const format = formatOf(scheme);
  format.check(config.modelType, dims, scheme, config.file);
  // Layouts are data: build each quantized variant once per entry and scheme.
  const byScheme = cache.get(entry) ?? new Map<string, Record<LayoutName, ModuleLayout>>();
  cache.set(entry, byScheme);
  const id = JSON.stringify(scheme);
  let layouts = byScheme.get(id);
  if (!layouts) {
    const make = (l: ModuleLayout) => format.layout(l, scheme);
    const original = make(entry.layouts.original);
    layouts = { original, fused: entry.layouts.fused === entry.layouts.original ? original : make(entry.layouts.fused) };
    byScheme.set(id, layouts);
  }
  return { entry, dims: { ...dims, quant: scheme }, layouts, scheme };
}

/** What one MoE block of this checkpoint computes (consumed by kernels/): the model type's semantics with its quantization scheme. */
export function semanticsOf(c: ModelConfig): MoeSemantics {
  const scheme = quantSchemeOf(c.raw, c.file);
  return { ...modelSemanticsOf(c), ...(scheme ? { quant: scheme } : {}) };
}
