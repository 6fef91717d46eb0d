// Which layout a checkpoint's MoE layers are stored in, read from key names only: the model
// type from config.json, then per MoE layer whether its tensors are the original or the
// fused form. A layer in both forms, a tensor no layout knows under an MoE module, an
// expert id >= E, a missing tensor or a shape that does not fit config.json are refused
// here, with the layer and the tensor named.
import type { DType } from '../safetensors/dtypes.js';
import type { ModelConfig } from '../checkpoint/config.js';
import { ExpertOutOfRange, MissingTensor, MixedLayout, ShapeMismatch, UnrecognisedTensor } from './errors.js';
import { EXPERT_PARTS, partViews, type PartName, type PartView } from './ops.js';
import { entryFor, LAYOUT_NAMES, type LayoutName, type ModelEntry, type ModuleLayout, type MoeDims } from './registry.js';

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

/** The stored tensors of one layer in one layout, for these dimensions. */
export function expandLayout(layout: ModuleLayout, layer: number, d: MoeDims): StoredTensor[] {
  const module = moduleOf(layout, layer);
  const out: StoredTensor[] = [];
  for (const spec of layout.tensors) {
    if (spec.when && !spec.when(d.features)) continue;
    const composite = spec.op(d);
    const views = partViews(composite, d);
    if (spec.key.includes('{e}')) {
      for (let e = 0; e < d.experts; e++) out.push({ key: `${module}.${spec.key.replace('{e}', String(e))}`, shape: composite.shape, expert: e, views });
    } else {
      out.push({ key: `${module}.${spec.key}`, shape: composite.shape, expert: null, views });
    }
  }
  return out;
}

export function moduleOf(layout: ModuleLayout, layer: number): string {
  return layout.module.replace('{L}', String(layer));
}

/** Detect the model type and the layout of every MoE layer, refusing what cannot be loaded. */
export function detect(dir: TensorDirectory): Detected {
  const entry = entryFor(dir.config.modelType);
  const dims = entry.dims(dir.config);
  const byModule = groupByModule(dir.tensorNames(), entry);
  const moe = new Set(dims.moeLayers);
  const layers: LayerLayout[] = [];
  for (let layer = 0; layer < dims.layers; layer++) {
    const present = modulesOf(entry, layer).flatMap((m) => byModule.get(m) ?? []);
    if (!moe.has(layer)) {
      const stray = present.find((k) => /(^|\.)experts\./.test(k));
      if (stray !== undefined) {
        throw new UnrecognisedTensor('expert tensors in a layer that config.json makes dense', { layer, tensor: stray, file: dir.info(stray).file });
      }
      continue;
    }
    layers.push(detectLayer(dir, entry, dims, layer, present));
  }
  return { modelType: dir.config.modelType, entry, dims, layers };
}

function detectLayer(dir: TensorDirectory, entry: ModelEntry, d: MoeDims, layer: number, present: string[]): LayerLayout {
  const expanded = new Map(LAYOUT_NAMES.map((name) => [name, new Map(expandLayout(entry.layouts[name], layer, d).map((s) => [s.key, s]))]));
  const original = expanded.get('original')!;
  const fused = expanded.get('fused')!;
  const layoutsIdentical = original.size === fused.size && [...original.keys()].every((k) => fused.has(k));

  const onlyOriginal: string[] = [];
  const onlyFused: string[] = [];
  for (const key of present) {
    const inOriginal = original.has(key);
    const inFused = fused.has(key);
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
  const layout: LayoutName = onlyFused.length > 0 ? 'fused' : 'original';
  const stored = expanded.get(layout)!;
  const have = new Set(present);
  const locations = new Map<string, PartLocation>();
  for (const s of stored.values()) {
    if (!have.has(s.key)) {
      throw new MissingTensor(`missing MoE tensor (layer in the ${layout} layout)`, { layer, tensor: s.key, expected: 'present', found: 'absent' });
    }
    const info = dir.info(s.key);
    if (info.shape.length !== s.shape.length || info.shape.some((n, i) => n !== s.shape[i])) {
      throw new ShapeMismatch('tensor shape does not fit config.json', { layer, tensor: s.key, file: info.file, expected: s.shape, found: info.shape });
    }
    for (const view of s.views) {
      locations.set(locationKey(view.part, s.expert), { key: s.key, file: info.file, dtype: info.dtype, view });
    }
  }
  return {
    layer,
    layout,
    layoutsIdentical,
    tensors: [...stored.keys()],
    locate(part, expert) {
      const perExpert = EXPERT_PARTS.has(part);
      const found = locations.get(locationKey(part, perExpert ? expert : null)) ?? (perExpert ? locations.get(locationKey(part, null)) : undefined);
      // The registry guarantees every part a layout needs; a miss here is a registry bug.
      if (!found) throw new Error(`layout ${layout} of ${entry.modelType} does not store part ${part}`);
      return found;
    },
  };
}

function refuseUnknown(dir: TensorDirectory, key: string, layer: number, experts: number): never {
  const file = dir.info(key).file;
  const id = /(?:^|\.)experts\.(\d+)\./.exec(key);
  if (id && /^(0|[1-9]\d*)$/.test(id[1]!) && Number(id[1]) >= experts) {
    throw new ExpertOutOfRange('expert id beyond the number of experts in config.json', { layer, tensor: key, file, expected: `< ${experts}`, found: Number(id[1]) });
  }
  throw new UnrecognisedTensor('tensor under an MoE module that no layout of this model type recognises', { layer, tensor: key, file });
}

function locationKey(part: PartName, expert: number | null): string {
  return expert === null ? part : `${part}#${expert}`;
}

/** Every module prefix (`model.layers.3.mlp`) a layer's MoE tensors may sit under. */
function modulesOf(entry: ModelEntry, layer: number): string[] {
  return [...new Set(LAYOUT_NAMES.map((n) => moduleOf(entry.layouts[n], layer)))];
}

/** Group tensor names by the MoE module prefix they sit under (one pass over the names). */
function groupByModule(names: string[], entry: ModelEntry): Map<string, string[]> {
  const patterns = [...new Set(LAYOUT_NAMES.map((n) => entry.layouts[n].module))].map(
    (m) => new RegExp(`^(${m.split('{L}').map(escapeRegExp).join('(?:0|[1-9]\\d*)')})\\.`),
  );
  const groups = new Map<string, string[]>();
  for (const name of names) {
    for (const p of patterns) {
      const m = p.exec(name);
      if (!m) continue;
      const list = groups.get(m[1]!) ?? [];
      list.push(name);
      groups.set(m[1]!, list);
    }
  }
  return groups;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
