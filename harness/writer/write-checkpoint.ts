// Write whole canonical weights (TP 1, EP 1: what loading a checkpoint WHOLE returns) as a
// Hugging Face directory of one model type in one layout. It runs the registry's operation
// trees backwards: each canonical rectangle is a part (canonical.ts), each part is
// scattered into the stored tensors through the same views the loader gathers from.
import { writeCheckpointDir, type ShardPlan } from '../checkpoint/write.js';
import type { ModelConfig } from '../checkpoint/config.js';
import { expandLayout } from '../loader/detect.js';
import { blockOf, EXPERT_PARTS, scatter, UNUSED_PARTS, type PartName } from '../layouts/ops.js';
import type { LayoutName, MoeDims } from '../layouts/registry.js';
import { moeLayoutsOf } from '../quant/layout.js';
import { canonicalName, elementCount } from '../canonical/canonical.js';
import { canonicalSpecs } from '../quant/canonical.js';
import { dtypeBits, type DType } from '../safetensors/dtypes.js';
import type { TensorSource } from '../safetensors/write.js';
import { WHOLE, type Canonical, type Tensor } from '../tensor.js';
import { WriterInputError } from './errors.js';

export interface MoeWriteRequest {
  /** config.json as it will be written; its model_type and sizes decide the layout. */
  config: ModelConfig;
  layout: LayoutName;
  canonical: Canonical;
  /** Tensors outside the MoE blocks (embeddings, attention, norms), written as given. */
  extra?: Map<string, Tensor>;
  plan?: ShardPlan;
  /** Reorders the stored tensors before sharding (tests shuffle it); identity by default. */
  order?: (keys: string[]) => string[];
}

/** The stored MoE tensors for whole canonical weights, in the layout's order. */
export function storedTensors(req: Pick<MoeWriteRequest, 'config' | 'layout' | 'canonical'>): Map<string, Tensor> {
  const { dims, layouts } = moeLayoutsOf(req.config);
  const out = new Map<string, Tensor>();
  for (const layer of dims.moeLayers) {
    const parts = partsOf(req.canonical, dims, layer);
    for (const stored of expandLayout(layouts[req.layout], layer, dims)) {
      const v0 = stored.views[0]!;
      // A zero-compute expert's dead weights (expert id >= E) are written as zeros in the dtype of expert 0's.
      // A part the model never uses (UNUSED_PARTS) is written as zeros in the router's dtype.
      const dead = (stored.expert !== null && stored.expert >= dims.experts) || stored.views.every((v) => UNUSED_PARTS.has(v.part));
      const first = UNUSED_PARTS.has(v0.part) ? parts.get('router', null) : parts.get(v0.part, EXPERT_PARTS.has(v0.part) ? (dead ? 0 : (stored.expert ?? 0)) : null);
      const elemBytes = dtypeBits(first.dtype) / 8;
      const bytes = new Uint8Array(elementCount(stored.shape) * elemBytes);
      for (const view of dead ? [] : stored.views) {
        const experts = !EXPERT_PARTS.has(view.part) ? [null] : stored.expert !== null ? [stored.expert] : range(dims.experts);
        for (const e of experts) {
          // Every stored tensor draws on one canonical tensor (w13 for gate and up, ...), so one dtype.
          const values = parts.get(view.part, e);
          const [rows, cols] = view.shape.length === 2 ? view.shape : [1, view.shape[0]!];
          scatter(bytes, blockOf(view, e ?? 0, [0, rows!], [0, cols!]), values.bytes, elemBytes);
        }
      }
      out.set(stored.key, { dtype: first.dtype, shape: stored.shape, bytes });
    }
  }
  return out;
}

/** Write the directory: config.json, the MoE tensors in the requested layout, and any extra tensors. */
export async function writeMoeCheckpoint(dir: string, req: MoeWriteRequest): Promise<void> {
  const tensors = storedTensors(req);
  for (const [name, t] of req.extra ?? []) {
    if (tensors.has(name)) throw new WriterInputError('an extra tensor has the name of an MoE tensor', { tensor: name });
    tensors.set(name, t);
  }
  const keys = (req.order ?? ((k: string[]) => k))([...tensors.keys()]);
  const entries: Array<[string, TensorSource]> = keys.map((k) => [k, tensors.get(k)!]);
  await writeCheckpointDir(dir, req.config.raw, entries, req.plan);
}

interface PartBytes {
  dtype: DType;
  bytes: Uint8Array;
}

/** Cut whole canonical tensors of one layer back into parts, checking names, shapes and ids. */
function partsOf(canonical: Canonical, dims: MoeDims, layer: number): { get(part: PartName, expert: number | null): PartBytes } {
  const ids = canonical.get(canonicalName(layer, 'experts.ids'));
  const expectIds = new Int32Array(range(dims.experts));
  if (!ids || ids.dtype !== 'I32' || !sameBytes(ids.bytes, new Uint8Array(expectIds.buffer))) {
    throw new WriterInputError('experts.ids must list every expert 0..E-1 (whole weights, EP 1)', { layer, tensor: canonicalName(layer, 'experts.ids'), expected: `0..${dims.experts - 1}`, found: ids ? 'other ids' : 'absent' });
  }
  const parts = new Map<string, PartBytes>();
  for (const spec of canonicalSpecs(layer, dims, WHOLE)) {
    const t = canonical.get(spec.name);
    if (!t) throw new WriterInputError('canonical tensor missing', { layer, tensor: spec.name, expected: spec.shape, found: 'absent' });
    if (t.shape.length !== spec.shape.length || t.shape.some((n, i) => n !== spec.shape[i])) {
      throw new WriterInputError('canonical tensor has the wrong shape', { layer, tensor: spec.name, expected: spec.shape, found: t.shape });
    }
    const elemBytes = dtypeBits(t.dtype) / 8;
    let at = 0;
    for (const s of spec.slices) {
      const length = (s.rows[1] - s.rows[0]) * (s.cols[1] - s.cols[0]) * elemBytes;
      parts.set(key(s.part, s.expert), { dtype: t.dtype, bytes: t.bytes.subarray(at, at + length) });
      at += length;
    }
  }
  return {
    get(part, expert) {
      const found = parts.get(key(part, expert));
      // canonicalSpecs covers every part a layout stores; a miss is a registry bug.
      if (!found) throw new Error(`no canonical rectangle for part ${part} of expert ${expert}`);
      return found;
    },
  };
}

const key = (part: PartName, expert: number | null) => (expert === null ? part : `${part}#${expert}`);
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
