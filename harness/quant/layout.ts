// A checkpoint's MoE layouts: the model type's float layouts (../layouts/registry.ts), with
// the expert weights of a quantized checkpoint replaced or joined by its format's tensors
// (./formats/), so that the loader and the writer handle them like any other layout.
import type { ModelConfig } from '../checkpoint/config.js';
import { entryFor, modelSemanticsOf, type LayoutName, type ModelEntry, type ModuleLayout, type MoeDims } from '../layouts/registry.js';
import type { MoeSemantics } from '../layouts/semantics.js';
import { formatOf } from './formats/index.js';
import { quantSchemeOf, type QuantScheme } from './scheme.js';
import { QuantConfigError } from './errors.js';

/** A model's MoE layouts and sizes for this config.json, quantized where it says so. */
export interface MoeLayouts {
  entry: ModelEntry;
  dims: MoeDims;
  layouts: Record<LayoutName, ModuleLayout>;
  scheme?: QuantScheme;
}

const cache = new WeakMap<ModelEntry, Map<string, Record<LayoutName, ModuleLayout>>>();

/**
 * `variant`: one of the config scheme's variants (the format's `variants`, told apart by stored
 * shapes), which the writer is asked for and the loader finds by the shapes (loader/detect.ts).
 */
export function moeLayoutsOf(config: ModelConfig, variant?: QuantScheme): MoeLayouts {
  const entry = entryFor(config.modelType, config.file);
  const scheme = variantOf(quantSchemeOf(config.raw, config.file), variant, config.file);
  const dims = entry.dims(config);
  if (scheme === undefined) return { entry, dims, layouts: entry.layouts };
  const format = formatOf(scheme);
  format.check(config.modelType, dims, scheme, config.file);
  // A quantized shared expert is held to the routed experts' size rules, Is for I.
  if (scheme.sharedQuantized && dims.sharedIntermediate > 0) format.check(config.modelType, { ...dims, intermediate: dims.sharedIntermediate }, scheme, config.file);
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

/** The config's scheme, or the variant of it asked for; a variant the config cannot mean is refused. */
function variantOf(scheme: QuantScheme | undefined, variant: QuantScheme | undefined, file: string): QuantScheme | undefined {
  if (variant === undefined || scheme === undefined) return variant ?? scheme;
  const id = JSON.stringify(variant);
  const known = variantsOf(scheme);
  if (known.some((k) => JSON.stringify(k) === id)) return variant;
  throw new QuantConfigError('the quantization scheme asked for is not one the config can mean', { file, expected: known.map((k) => JSON.stringify(k)).join(' | '), found: id });
}

/**
 * The config scheme's variants, the config's own first: its format's (NVFP4's shared global
 * scales), each with the shared experts float or quantized like the routed ones (which the
 * config's ignore list may or may not exempt: the stored tensors tell).
 */
export function variantsOf(scheme: QuantScheme): QuantScheme[] {
  return (formatOf(scheme).variants?.(scheme) ?? [scheme]).flatMap((v) => [v, { ...v, sharedQuantized: true }]);
}

export function schemeVariants(config: ModelConfig): QuantScheme[] {
  const scheme = quantSchemeOf(config.raw, config.file);
  return scheme === undefined ? [] : variantsOf(scheme);
}

/** What one MoE block of this checkpoint computes (consumed by kernels/): the model type's semantics with its quantization scheme. */
export function semanticsOf(c: ModelConfig): MoeSemantics {
  const scheme = quantSchemeOf(c.raw, c.file);
  return { ...modelSemanticsOf(c), ...(scheme ? { quant: scheme } : {}) };
}
