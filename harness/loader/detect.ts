// Which layout a checkpoint's MoE layers are stored in, read from key names only: the model
// type from config.json, then per MoE layer whether its tensors are the original or the
// fused form. A layer in both forms, a tensor no layout knows under an MoE module, an
// expert id >= E, a missing tensor or a shape that does not fit config.json are refused
// here, with the layer and the tensor named.
import type { DType } from '../safetensors/dtypes.js';
import type { ModelConfig } from '../checkpoint/config.js';
import { DtypeMismatch, ExpertOutOfRange, MissingTensor, MixedLayout, ShapeMismatch, UnrecognisedTensor } from '../layouts/errors.js';
import { EXPERT_PARTS, partViews, type PartName, type PartView } from '../layouts/ops.js';
import { LAYOUT_NAMES, type LayoutName, type ModelEntry, type ModuleLayout, type MoeDims } from '../layouts/registry.js';
import { moeLayoutsOf, schemeVariants, type MoeLayouts } from '../quant/layout.js';
import { MoeConformanceError } from '../errors.js';
import { isRouterQuantTensor, QuantizedRouter, ROUTER_DTYPES } from '../quant/errors.js';

/** The parts that select experts: never quantized. */
const ROUTER_PARTS: ReadonlySet<PartName> = new Set<PartName>([
  'router', 'router_bias', 'correction_bias',
  'router_down', 'router_down_bias', 'router_state_scale', 'router_norm', 'router_fc1', 'router_fc1_bias', 'router_fc2', 'router_fc2_bias',
]);

/** What detection needs from a checkpoint: CheckpointDir provides it. */
export interface TensorDirectory {
  readonly config: ModelConfig;
  tensorNames(): string[];
  info(name: string): { dtype: DType; shape: number[]; file: string };
}

/** One stored tensor of a layout, with the parts it holds. */
export interface StoredTensor {
  key: string;
  shape: number[];
  /** The expert this tensor belongs to, for per-expert tensors; null when it holds all experts or none. */
  expert: number | null;
  views: PartView[];
}

/** Where a part of one layer lives on disk. */
export interface PartLocation {
  key: string;
  file: string;
  dtype: DType;
  view: PartView;
}

export interface LayerLayout {
  layer: number;
  layout: LayoutName;
  /** True where the model's original and fused layouts are the same (gpt_oss, llama4_text, dbrx). */
  layoutsIdentical: boolean;
  /** The layer's MoE tensors, in the layout's order. */
  tensors: string[];
  locate(part: PartName, expert: number | null): PartLocation;
}

export interface Detected {
  modelType: string;
  entry: ModelEntry;
  dims: MoeDims;
  layers: LayerLayout[];
}

/** One stored-tensor spec of a layer, resolved for given sizes (`{e}` still open in per-expert keys). */
interface CompiledSpec {
  key: string;
  shape: number[];
  views: PartView[];
  perExpert: boolean;
  /** How many expert ids a per-expert key takes: E, or E + Z where zero-compute experts store it too. */
  count: number;
}

function compile(layout: ModuleLayout, layer: number, d: MoeDims): CompiledSpec[] {
  const module = moduleOf(layout, layer);
  return layout.tensors
    .filter((spec) => !spec.when || spec.when(d.features, layer))
    .map((spec) => {
      const composite = spec.op(d);
      const count = d.experts + (spec.zeroExpertsToo ? (d.zeroExperts ?? 0) : 0);
      return { key: storedKey(module, spec.key), shape: composite.shape, views: partViews(composite, d), perExpert: spec.key.includes('{e}'), count };
    });
}

/** The full name of a spec's key under `module`; a `../` key is beside the module, under its parent (the decoder layer). */
function storedKey(module: string, key: string): string {
  return key.startsWith('../') ? `${module.slice(0, module.lastIndexOf('.'))}.${key.slice(3)}` : `${module}.${key}`;
}

const keyOf = (spec: CompiledSpec, expert: number | null) => (expert === null ? spec.key : spec.key.replace('{e}', String(expert)));

/** Which spec (and expert) a stored key is, if any; expert ids must be canonical decimals below the spec's count (E, or E + Z). */
function matchKey(specs: CompiledSpec[], key: string): { spec: CompiledSpec; expert: number | null } | undefined {
  for (const spec of specs) {
    if (!spec.perExpert) {
      if (spec.key === key) return { spec, expert: null };
      continue;
    }
    const [head, tail] = spec.key.split('{e}') as [string, string];
    if (!key.startsWith(head) || !key.endsWith(tail) || key.length <= head.length + tail.length) continue;
    const id = key.slice(head.length, key.length - tail.length);
    if (/^(0|[1-9]\d{0,8})$/.test(id) && Number(id) < spec.count) return { spec, expert: Number(id) };
  }
  return undefined;
}

/** The stored tensors of one layer in one layout, for these dimensions (the writer's list). */
export function expandLayout(layout: ModuleLayout, layer: number, d: MoeDims): StoredTensor[] {
  return compile(layout, layer, d).flatMap((spec) =>
    (spec.perExpert ? Array.from({ length: spec.count }, (_, e) => e) : [null]).map((e) => ({ key: keyOf(spec, e), shape: spec.shape, expert: e, views: spec.views })),
  );
}

export function moduleOf(layout: ModuleLayout, layer: number): string {
  return layout.module.replace('{L}', String(layer));
}

/** Detect the model type and the layout of every MoE layer, refusing what cannot be loaded. */
export function detect(dir: TensorDirectory): Detected {
  const base = moeLayoutsOf(dir.config);
  // Every scheme variant's layouts that these sizes allow: a quantized tensor stored beside the
  // module (step3p7's shared expert, `../` keys) has its own names in each.
  const variants = buildableVariants(dir);
  const byLayer = groupByLayer(dir.tensorNames(), [base, ...variants].flatMap((m) => LAYOUT_NAMES.map((n) => m.layouts[n])));
  const { entry, dims, layouts } = variantFitting(dir, base, variants, byLayer);
  const moe = new Set(dims.moeLayers);
  for (const [layer, names] of byLayer) {
    // Dense decoder layers may hold anything but experts. Layers past num_hidden_layers are
    // not decoder layers (deepseek_v3's multi-token-prediction layer has experts): ignored.
    if (moe.has(layer) || layer >= dims.layers) continue;
    const stray = names.find((k) => /(^|\.)experts\./.test(k));
    if (stray !== undefined) {
      throw new UnrecognisedTensor('expert tensors in a layer that config.json makes dense', { layer, tensor: stray, file: dir.info(stray).file });
    }
  }
  const layers = dims.moeLayers.map((layer) => detectLayer(dir, entry.modelType, layouts, dims, layer, byLayer.get(layer) ?? []));
  return { modelType: dir.config.modelType, entry, dims, layers };
}

/**
 * The layouts of each variant of the config's scheme (layout.ts schemeVariants) that these sizes
 * allow: a variant whose size rules they break (a shared expert quantized in blocks it does not
 * fill) is no candidate, not an error.
 */
function buildableVariants(dir: TensorDirectory): MoeLayouts[] {
  return schemeVariants(dir.config).flatMap((v) => {
    try {
      return [moeLayoutsOf(dir.config, v)];
    } catch (e) {
      if (e instanceof MoeConformanceError) return [];
      throw e;
    }
  });
}

/**
 * Where the config's scheme has variants that differ in stored shapes only (NVFP4's shared
 * global scales, layouts.md §4.1), the first whose layouts every MoE tensor of the first MoE
 * layer fits (name and shape); the config's own scheme where none does (its errors then say why).
 */
function variantFitting(dir: TensorDirectory, base: MoeLayouts, variants: MoeLayouts[], byLayer: Map<number, string[]>): MoeLayouts {
  const layer = base.dims.moeLayers[0];
  if (variants.length < 2 || layer === undefined) return base;
  const present = byLayer.get(layer) ?? [];
  for (const m of variants) {
    const specs = [compile(m.layouts.original, layer, m.dims), compile(m.layouts.fused, layer, m.dims)];
    const fits = present.every((key) => {
      const shape = dir.info(key).shape;
      return specs.some((s) => {
        const hit = matchKey(s, key);
        return hit !== undefined && hit.spec.shape.length === shape.length && hit.spec.shape.every((n, i) => n === shape[i]);
      });
    });
    if (fits) return m;
  }
  return base;
}

// Per-expert keys are matched, never enumerated up front: a hostile expert count in
// config.json costs nothing until tensors are checked, and the first missing one stops it.
function detectLayer(dir: TensorDirectory, modelType: string, layouts: Record<LayoutName, ModuleLayout>, d: MoeDims, layer: number, present: string[]): LayerLayout {
  const original = compile(layouts.original, layer, d);
  const fused = compile(layouts.fused, layer, d);
  const layoutsIdentical = layouts.original === layouts.fused;

  const onlyOriginal: string[] = [];
  const onlyFused: string[] = [];
  for (const key of present) {
    const inOriginal = matchKey(original, key) !== undefined;
    const inFused = matchKey(fused, key) !== undefined;
    if (!inOriginal && !inFused) refuseUnknown(dir, key, layer, d.experts);
    if (inOriginal && !inFused) onlyOriginal.push(key);
    if (inFused && !inOriginal) onlyFused.push(key);
  }
  if (onlyOriginal.length > 0 && onlyFused.length > 0) {
    throw new MixedLayout('layer stored partly in the original and partly in the fused layout', {
      layer,
      tensor: onlyFused[0],
      expected: 'one layout per layer',
      found: `${onlyOriginal[0]} (original) and ${onlyFused[0]} (fused)`,
    });
  }
  const layout: LayoutName = onlyFused.length > 0 ? 'fused' : onlyOriginal.length > 0 || layoutsIdentical ? 'original' : byShape(dir, original, fused, present);
  const have = new Set(present);
  const locations = new Map<string, PartLocation>();
  const tensors: string[] = [];
  for (const spec of layout === 'fused' ? fused : original) {
    for (let e = 0; e < (spec.perExpert ? spec.count : 1); e++) {
      const expert = spec.perExpert ? e : null;
      const key = keyOf(spec, expert);
      if (!have.has(key)) {
        throw new MissingTensor(`missing MoE tensor (layer in the ${layout} layout)`, { layer, tensor: key, expected: 'present', found: 'absent' });
      }
      const info = dir.info(key);
      if (info.shape.length !== spec.shape.length || info.shape.some((n, i) => n !== spec.shape[i])) {
        throw new ShapeMismatch('tensor shape does not fit config.json', { layer, tensor: key, file: info.file, expected: spec.shape, found: info.shape });
      }
      for (const view of spec.views) {
        if (ROUTER_PARTS.has(view.part) && !ROUTER_DTYPES.includes(info.dtype)) {
          throw new QuantizedRouter('the router is stored quantized: routers are never quantized (spec/layouts.md §4)', { layer, tensor: key, file: info.file, expected: ROUTER_DTYPES.join('|'), found: info.dtype });
        }
        if (view.part === 'tid2eid' && info.dtype !== 'I64' && info.dtype !== 'I32') {
          throw new DtypeMismatch('a hash layer\'s tid2eid holds expert ids: an integer tensor', { layer, tensor: key, file: info.file, expected: 'I64|I32', found: info.dtype });
        }
        locations.set(locationKey(view.part, expert), { key, file: info.file, dtype: info.dtype, view });
      }
      tensors.push(key);
    }
  }
  return {
    layer,
    layout,
    layoutsIdentical,
    tensors,
    locate(part, expert) {
      const perExpert = EXPERT_PARTS.has(part);
      const found = locations.get(locationKey(part, perExpert ? expert : null)) ?? (perExpert ? locations.get(locationKey(part, null)) : undefined);
      // The registry guarantees every part a layout needs; a miss here is a registry bug.
      if (!found) throw new Error(`layout ${layout} of ${modelType} does not store part ${part}`);
      return found;
    },
  };
}

/**
 * The layout of a layer whose key names both layouts share (qwen3_vl_moe: the original
 * stores the same names transposed): the one whose shapes every stored tensor fits. Where
 * one of the pair is square (2I == H), the other still tells them apart; transformers'
 * check_dims conversion looks at each tensor alone and cannot.
 */
function byShape(dir: TensorDirectory, original: CompiledSpec[], fused: CompiledSpec[], present: string[]): LayoutName {
  const fits = (specs: CompiledSpec[]) =>
    present.every((key) => {
      const m = matchKey(specs, key);
      const shape = dir.info(key).shape;
      return m !== undefined && m.spec.shape.length === shape.length && m.spec.shape.every((n, i) => n === shape[i]);
    });
  return !fits(original) && fits(fused) ? 'fused' : 'original';
}

function refuseUnknown(dir: TensorDirectory, key: string, layer: number, experts: number): never {
  const file = dir.info(key).file;
  if (isRouterQuantTensor(key)) {
    throw new QuantizedRouter('the router carries quantization tensors: routers are never quantized (spec/layouts.md §4)', { layer, tensor: key, file, expected: 'a float router without scales', found: key });
  }
  const id = /(?:^|\.)experts\.(\d+)\./.exec(key);
  if (id && /^(0|[1-9]\d*)$/.test(id[1]!) && Number(id[1]) >= experts) {
    throw new ExpertOutOfRange('expert id beyond the number of experts in config.json', { layer, tensor: key, file, expected: `< ${experts}`, found: Number(id[1]) });
  }
  throw new UnrecognisedTensor('tensor under an MoE module that no layout of this model type recognises', { layer, tensor: key, file });
}

function locationKey(part: PartName, expert: number | null): string {
  return expert === null ? part : `${part}#${expert}`;
}

/** Tensor names under any MoE module of the model, by decoder layer (one pass over the names). */
function groupByLayer(names: string[], layouts: ModuleLayout[]): Map<number, string[]> {
  const layerPattern = (prefix: string, end: string) => new RegExp(`^${prefix.split('{L}').map(escapeRegExp).join('(0|[1-9]\\d{0,8})')}${end}`);
  const patterns = [
    ...[...new Set(layouts.map((l) => l.module))].map((m) => layerPattern(m, '\\.')),
    // Tensors a layout stores beside its module (`../` keys): those names, not the whole decoder layer;
    // an `X.weight` with its quantization companions `X.*` (granitemoeshared's quantized shared_mlp).
    ...[...new Set(layouts.flatMap((l) => l.tensors.filter((t) => t.key.startsWith('../')).map((t) => storedKey(l.module, t.key))))]
      .map((key) => (key.endsWith('.weight') ? layerPattern(key.slice(0, -'weight'.length), '') : layerPattern(key, '$'))),
  ];
  const groups = new Map<number, string[]>();
  for (const name of names) {
    for (const p of patterns) {
      const m = p.exec(name);
      if (!m) continue;
      const layer = Number(m[1]);
      const list = groups.get(layer) ?? [];
      list.push(name);
      groups.set(layer, list);
      break;
    }
  }
  return groups;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
