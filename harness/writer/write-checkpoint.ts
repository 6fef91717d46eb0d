// Write whole canonical weights (TP 1, EP 1: what loading a checkpoint WHOLE returns) as a
// Hugging Face directory of one model type in one layout. It runs the registry's operation
// trees backwards: each canonical rectangle is a part (canonical.ts), each part is
// scattered into the stored tensors through the same views the loader gathers from.
import { writeCheckpointDir, type ShardPlan } from '../checkpoint/write.js';
import type { ModelConfig } from '../checkpoint/config.js';
import { expandLayout, type StoredTensor } from '../loader/detect.js';
import { blockOf, EXPERT_PARTS, gather, scatter, UNUSED_PARTS, type PartName, type StridedBlock } from '../layouts/ops.js';
import type { LayoutName, MoeDims } from '../layouts/registry.js';
import { moeLayoutsOf } from '../quant/layout.js';
import type { QuantScheme } from '../quant/scheme.js';
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
  /** A variant of the config's quantization scheme to store (NVFP4's shared global scales); the config's own by default. */
  scheme?: QuantScheme;
  /** Tensors outside the MoE blocks (embeddings, attention, norms), written as given. */
  extra?: Map<string, Tensor>;
  plan?: ShardPlan;
  /** Reorders the stored tensors before sharding (tests shuffle it); identity by default. */
  order?: (keys: string[]) => string[];
}

/** The stored MoE tensors for whole canonical weights, in the layout's order. */
export function storedTensors(req: Pick<MoeWriteRequest, 'config' | 'layout' | 'canonical' | 'scheme'>): Map<string, Tensor> {
  const { dims, layouts } = moeLayoutsOf(req.config, req.scheme);
  const out = new Map<string, Tensor>();
  for (const layer of dims.moeLayers) {
    const parts = partsOf(req.canonical, dims, layer);
    for (const stored of expandLayout(layouts[req.layout], layer, dims)) {
      const v0 = stored.views[0]!;
      // A zero-compute expert's dead weights (expert id >= E) are written as zeros in the dtype of expert 0's.
      // A part the model never uses (UNUSED_PARTS) is written as zeros in the router's dtype.
      const dead = (stored.expert !== null && stored.expert >= dims.experts) || stored.views.every((v) => UNUSED_PARTS.has(v.part));
      // inkling's S router-weighted shared experts are the shared parts' expert indices 0..S-1.
      const sharedExperts = (dims.sharedRouted ?? 1) > 1 ? range(dims.sharedRouted!) : [null];
      const expertsOfView = (part: PartName) => (!EXPERT_PARTS.has(part) ? (SHARED_PARTS.has(part) ? sharedExperts : [null]) : stored.expert !== null ? [stored.expert] : range(dims.experts));
      const first = UNUSED_PARTS.has(v0.part) ? parts.get('router', null) : parts.get(v0.part, EXPERT_PARTS.has(v0.part) ? (dead ? 0 : (stored.expert ?? 0)) : expertsOfView(v0.part)[0]!);
      const elemBytes = dtypeBits(first.dtype) / 8;
      const bytes = new Uint8Array(elementCount(stored.shape) * elemBytes);
      const shared = sharedElements(stored, dims.experts);
      for (const view of dead ? [] : stored.views) {
        for (const e of expertsOfView(view.part)) {
          // Every stored tensor draws on one canonical tensor (w13 for gate and up, ...), so one dtype.
          const values = parts.get(view.part, e);
          const [rows, cols] = view.shape.length === 2 ? view.shape : [1, view.shape[0]!];
          const block = blockOf(view, e ?? 0, [0, rows!], [0, cols!]);
          shared?.check(bytes, block, values.bytes, elemBytes, { layer, tensor: stored.key, part: view.part, expert: e });
          scatter(bytes, block, values.bytes, elemBytes);
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

/**
 * Where one stored element serves several parts (NVFP4's global scale shared by gate and up,
 * or by every expert), a record of the elements written so far: a part whose value differs
 * from the one already stored is refused, since the stored form cannot hold both.
 */
function sharedElements(stored: StoredTensor, experts: number) {
  const held = stored.views.reduce((n, v) => n + elementCount(v.shape) * (stored.expert === null && EXPERT_PARTS.has(v.part) ? experts : 1), 0);
  if (held <= elementCount(stored.shape)) return undefined;
  const written = new Uint8Array(elementCount(stored.shape));
  return {
    check(bytes: Uint8Array, block: StridedBlock, values: Uint8Array, elemBytes: number, at: { layer: number; tensor: string; part: PartName; expert: number | null }) {
      const before = gather(bytes, 0, block, elemBytes);
      const seen = gather(written, 0, block, 1);
      seen.forEach((w, k) => {
        if (w && before.subarray(k * elemBytes, (k + 1) * elemBytes).some((b, i) => b !== values[k * elemBytes + i])) {
          throw new WriterInputError('one stored value serves several canonical values that differ (the layout shares it)', { layer: at.layer, tensor: at.tensor, expected: 'equal values for every part it serves', found: `${at.part} of expert ${String(at.expert)} differs` });
        }
      });
      scatter(written, block, new Uint8Array(block.rows * block.cols).fill(1), 1);
    },
  };
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
  const pieces = new Map<string, { dtype: DType; bytes: Uint8Array[] }>();
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
      // A part cut into several slices (a shared expert's down projection, row by row) is their bytes in order.
      const k = key(s.part, s.expert);
      if (!pieces.has(k)) pieces.set(k, { dtype: t.dtype, bytes: [] });
      pieces.get(k)!.bytes.push(t.bytes.subarray(at, at + length));
      at += length;
    }
  }
  const parts = new Map<string, PartBytes>([...pieces].map(([k, p]) => [k, { dtype: p.dtype, bytes: p.bytes.length === 1 ? p.bytes[0]! : concatBytes(p.bytes) }]));
  return {
    get(part, expert) {
      const found = parts.get(key(part, expert));
      // canonicalSpecs covers every part a layout stores; a miss is a registry bug.
      if (!found) throw new Error(`no canonical rectangle for part ${part} of expert ${expert}`);
      return found;
    },
  };
}

const SHARED_PARTS: ReadonlySet<PartName> = new Set<PartName>(['shared_gate_proj', 'shared_up_proj', 'shared_down_proj']);

function concatBytes(list: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(list.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of list) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

const key = (part: PartName, expert: number | null) => (expert === null ? part : `${part}#${expert}`);
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
