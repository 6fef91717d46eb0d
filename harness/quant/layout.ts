// Where a quantized checkpoint keeps its expert weights and scales, as layouts of the
// registry's operation trees (../layouts/ops.ts), so that the loader and the writer handle
// them like any other layout:
// - FP8: the F8 weights sit exactly where the float weights would; each expert weight
//   tensor `X` gets a scale tensor (`X.weight` -> `X.weight_scale_inv`, fused `X` ->
//   `X_scale_inv`) composed by the same tree over the scale grids, so fused scales are
//   stacked and concatenated like their weights.
// - MXFP4 (gpt_oss as published): `*_blocks` [E, rows, in/32, 16] stored [out, in] with the
//   gate/up rows interleaved, and `*_scales` [E, rows, in/32].
import type { ModelConfig } from '../checkpoint/config.js';
import { interleave, part, splitLast, stackExperts, type Op, type PartName } from '../layouts/ops.js';
import { entryFor, modelSemanticsOf, type LayoutName, type ModelEntry, type ModuleLayout, type MoeDims, type TensorSpec } from '../layouts/registry.js';
import { ShapeMismatch } from '../layouts/errors.js';
import type { MoeSemantics } from '../layouts/semantics.js';
import { MX_BLOCK, MX_BLOCK_BYTES } from './mxfp4.js';
import { quantSchemeOf, type QuantScheme } from './scheme.js';
import { QuantConfigError } from './errors.js';

const SCALE_OF: Partial<Record<PartName, PartName>> = { gate: 'gate_scale', up: 'up_scale', down: 'down_scale' };

/** The scale tensor of an FP8 expert weight tensor (`X.weight` -> `X.weight_scale_inv`, `X` -> `X_scale_inv`). */
function fp8ScaleSpec(spec: TensorSpec): TensorSpec {
  const key = `${spec.key}_scale_inv`;
  const scaled: Op = (s) => {
    const q = s.quant;
    if (q?.method !== 'fp8') throw new Error('FP8 scale layout evaluated without an FP8 scheme');
    // Evaluate the weight's own tree on the scale grid: gate/up are [I, H], down is [H, I].
    const down = spec.op(s).placements.some((p) => p.part === 'down');
    const grid = down
      ? { ...s, hidden: Math.ceil(s.hidden / q.scaleBlock.rows), intermediate: Math.ceil(s.intermediate / q.scaleBlock.cols), quant: undefined }
      : { ...s, intermediate: Math.ceil(s.intermediate / q.scaleBlock.rows), hidden: Math.ceil(s.hidden / q.scaleBlock.cols), quant: undefined };
    const c = spec.op(grid);
    return { shape: c.shape, placements: c.placements.map((p) => ({ ...p, part: SCALE_OF[p.part]! })) };
  };
  return { key, op: scaled, ...(spec.when ? { when: spec.when } : {}) };
}

/** Whether a tensor spec holds routed expert weights (gate, up or down), judged on tiny sizes. */
function holdsExpertWeights(spec: TensorSpec): boolean {
  const probe = spec.op({ experts: 1, hidden: 2, intermediate: 2, sharedIntermediate: 2 });
  return probe.placements.some((p) => SCALE_OF[p.part] !== undefined);
}

function withFp8Scales(layout: ModuleLayout): ModuleLayout {
  const scales = layout.tensors.filter(holdsExpertWeights).map(fp8ScaleSpec);
  return { module: layout.module, tensors: [...layout.tensors, ...scales] };
}

/** gpt_oss's MXFP4 tensors; router and biases as in its float layout. */
function gptOssMxfp4(float: ModuleLayout): ModuleLayout {
  const rowsOf = (a: Op, b?: Op) => stackExperts(b ? interleave(0, a, b) : a);
  return {
    module: float.module,
    tensors: [
      ...float.tensors.filter((t) => !holdsExpertWeights(t)),
      { key: 'experts.gate_up_proj_blocks', op: stackExperts(splitLast(interleave(0, part('gate'), part('up')), MX_BLOCK_BYTES)) },
      { key: 'experts.gate_up_proj_scales', op: rowsOf(part('gate_scale'), part('up_scale')) },
      { key: 'experts.down_proj_blocks', op: stackExperts(splitLast(part('down'), MX_BLOCK_BYTES)) },
      { key: 'experts.down_proj_scales', op: rowsOf(part('down_scale')) },
    ],
  };
}

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
  if (scheme.method === 'mxfp4') {
    if (config.modelType !== 'gpt_oss') {
      throw new QuantConfigError('MXFP4 checkpoints are known for gpt_oss only', { file: config.file, expected: 'gpt_oss', found: config.modelType });
    }
    for (const [what, n] of [['hidden', dims.hidden], ['intermediate', dims.intermediate]] as const) {
      if (n % MX_BLOCK !== 0) throw new ShapeMismatch(`MXFP4 needs the ${what} size in whole 32-element blocks`, { file: config.file, expected: `a multiple of ${MX_BLOCK}`, found: n });
    }
  }
  // Layouts are data: build each quantized variant once per entry and scheme.
  const byScheme = cache.get(entry) ?? new Map<string, Record<LayoutName, ModuleLayout>>();
  cache.set(entry, byScheme);
  const id = scheme.method;
  let layouts = byScheme.get(id);
  if (!layouts) {
    const make = scheme.method === 'fp8' ? withFp8Scales : gptOssMxfp4;
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
