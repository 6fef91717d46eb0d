// The reversible operations between the logical parts of an MoE layer (one expert's gate
// [I,H], the router [E,H], ...) and the tensors a checkpoint stores. Each operation is a
// bijection of index spaces: it says where every element of its inputs lands in its
// output. Loading gathers through that map and writing scatters through the same map, so
// the inverse of every operation (chunk for concat, split for stack, de-interleave for
// interleave, ...) is the same data read the other way: a loader and a writer cannot
// disagree about a layout because there is only one description of it.

/** The logical pieces of one MoE layer, in the model's own `[out, in]` orientation. */
export type PartName =
  | 'gate' // per expert [I, H]
  | 'up' // per expert [I, H]
  | 'down' // per expert [H, I]
  | 'gate_bias' // per expert [I]
  | 'up_bias' // per expert [I]
  | 'down_bias' // per expert [H]
  | 'router' // [E, H]
  | 'router_bias' // [E]
  | 'correction_bias' // [E]
  | 'shared_gate_proj' // [Is, H]
  | 'shared_up_proj' // [Is, H]
  | 'shared_down_proj' // [H, Is]
  | 'shared_gate' // [1, H]
  | 'output_bias' // [H]: added to the block's output (jetmoe)
  | 'output_norm' // [H]: RMSNorm weight applied to the block's output (axk1)
  | 'unused_router_bias' // [E (+ Z)]: stored, but the model never adds it (longcat_flash); not canonical
  | 'router_input_scale' // [H]: multiplies the router's normalised input (gemma4 router.scale)
  | 'expert_input_norm' // [H]: the RMSNorm weight of the experts' input (gemma4 pre_feedforward_layernorm_2)
  | 'expert_scale' // [E]: multiplies each expert's routing weight (gemma4 router.per_expert_scale)
  | 'router_global_scale' // [1]: multiplies every routing weight (inkling gate.global_scale)
  | 'tid2eid' // [V, K] integer: a hash layer's expert ids per token id (deepseek_v4)
  // zaya's MLP router (R = router hidden size): down [R, H] + bias, the carried state's scale
  // [R], RMSNorm weight [R], fc1/fc2 [R, R] + biases; 'router' is then its out_proj [E + Z, R].
  | 'latent_fc1' // [D, H]: nemotron_h's projection of the block input into the experts' latent space
  | 'latent_fc2' // [H, D]: and of the routed sum back
  | 'router_down'
  | 'router_down_bias'
  | 'router_state_scale'
  | 'router_norm'
  | 'router_fc1'
  | 'router_fc1_bias'
  | 'router_fc2'
  | 'router_fc2_bias'
  // Quantized checkpoints (../quant): per expert, FP8 block scales [ceil(I/bm), ceil(H/bn)]
  // (down: [ceil(H/bm), ceil(I/bn)]), or MXFP4 E8M0 scales [I, H/32] (down: [H, I/32]).
  | 'gate_scale'
  | 'up_scale'
  | 'down_scale'
  // One value per expert projection (NVFP4's `weight_scale_2`, static activation scales): [1].
  | 'gate_scale_2'
  | 'up_scale_2'
  | 'down_scale_2'
  | 'gate_input_scale'
  | 'up_input_scale'
  | 'down_input_scale'
  // Integer group quantization: the zero-point grid (the scale grid's, `zeroRows` rows packed
  // into one stored element), and the stored `[out, in]` of each projection ([2]).
  | 'gate_zero'
  | 'up_zero'
  | 'down_zero'
  | 'gate_shape'
  | 'up_shape'
  | 'down_shape'
  // The group of each input column (GPTQ's `g_idx`): gate/up [H], down [I].
  | 'gate_g_idx'
  | 'up_g_idx'
  | 'down_g_idx'
  // A quantized shared expert's companions: the routed ones' with Is for I (`shared_gate_proj_scale` is `gate_scale`'s shape).
  | `${SharedProjection}_${'scale' | 'scale_2' | 'input_scale' | 'zero' | 'shape' | 'g_idx'}`;

type SharedProjection = 'shared_gate_proj' | 'shared_up_proj' | 'shared_down_proj';
const SHARED_ANALOG: Record<SharedProjection, 'gate' | 'up' | 'down'> = { shared_gate_proj: 'gate', shared_up_proj: 'up', shared_down_proj: 'down' };

/** A quantized shared-expert part as its routed analog over sizes with Is for I (`shared_down_proj_scale` -> `down_scale`), or undefined. */
function sharedAnalog(part: PartName, s: PartSizes): { part: PartName; sizes: PartSizes } | undefined {
  const m = /^(shared_(?:gate|up|down)_proj)(_.+)?$/.exec(part);
  if (!m || (m[2] === undefined && !s.quant?.sharedQuantized)) return undefined;
  return { part: `${SHARED_ANALOG[m[1] as SharedProjection]}${m[2] ?? ''}` as PartName, sizes: { ...s, intermediate: s.sharedIntermediate } };
}

/** Parts a checkpoint stores that no canonical tensor holds: checked for shape, written as zeros, never loaded. */
export const UNUSED_PARTS: ReadonlySet<PartName> = new Set(['unused_router_bias']);

/** Per-projection single values of quantized checkpoints, each of shape [1]. */
export const PROJECTION_SCALARS = ['gate_scale_2', 'up_scale_2', 'down_scale_2', 'gate_input_scale', 'up_input_scale', 'down_input_scale'] as const;

export const EXPERT_PARTS: ReadonlySet<PartName> = new Set<PartName>([
  'gate',
  'up',
  'down',
  'gate_bias',
  'up_bias',
  'down_bias',
  'gate_scale',
  'up_scale',
  'down_scale',
  ...PROJECTION_SCALARS,
  'gate_zero',
  'up_zero',
  'down_zero',
  'gate_shape',
  'up_shape',
  'down_shape',
  'gate_g_idx',
  'up_g_idx',
  'down_g_idx',
]);

/** A scale block edge that covers a whole axis (per-tensor and per-channel scales): ceil(n / WHOLE_AXIS) = 1. */
export const WHOLE_AXIS = Number.MAX_SAFE_INTEGER;

/** The sizes that fix every part's shape. */
export interface PartSizes {
  experts: number;
  hidden: number;
  intermediate: number;
  sharedIntermediate: number;
  /**
   * Zero-compute (identity) experts `Z` routed after the `experts` real ones (longcat_flash):
   * the router scores E + Z experts; they hold no weights of their own.
   */
  zeroExperts?: number;
  /** Shared experts the router scores after the routed ones (inkling): router rows E + Z + S; no correction bias for them. */
  sharedRouted?: number;
  /** Hash routing (deepseek_v4): the `[vocab, topK]` table of expert ids by token id that hash layers store. */
  hashTable?: { vocab: number; topK: number };
  /** An MLP router's hidden size R (zaya): the router parts are sized by it, `router` is `[E + Z, R]`. */
  routerHidden?: number;
  /** The experts' input/output size where it is not `hidden` (nemotron_h's moe_latent_size D). */
  expertHidden?: number;
  /** Rows of the router where they are not the experts (doge's product keys: 2·floor(√E)). */
  routerRows?: number;
  /** How the expert projections are quantized; absent for float checkpoints. */
  quant?: QuantGeometry;
}

/**
 * What the layout operations (and TP cutting) need to know of a quantization format; a
 * format in harness/quant supplies it, so this floor never imports the formats.
 */
export interface QuantGeometry {
  /** The format's name (`quant_method`). */
  method: string;
  /** Values packed into one stored element along a weight's columns (MXFP4: 2 per byte). */
  packing: number;
  /** The weight elements one scale covers, `[rows, cols]` of a `[out, in]` weight; a partial edge block has a scale of its own. */
  scaleBlock: { rows: number; cols: number };
  /** Whether a TP cut may split a scale block (both ranks then hold its scale); otherwise a rank must hold whole blocks. */
  splitsBlocks: boolean;
  /** Zero points packed into one stored element along the rows (compressed-tensors: 8 per I32); formats with zero points only. */
  zeroRows?: number;
  /** Whether `packing` packs the weight along its rows (`[out/8, in]`, AWQ) instead of its columns. */
  packRows?: boolean;
  /** Codes packed along the rows (AWQ's weights, every zero point): the row `8j + rowNibbles[k]` nibble k of word j holds; in order where absent (AutoAWQ: 0 2 4 6 1 3 5 7). */
  rowNibbles?: readonly number[];
  /** Whether w2's scales and zeros stay whole along K on every TP rank (activation order scatters groups over K). */
  kScalesWhole?: boolean;
  /** Whether the shared experts are quantized like the routed ones (else they keep the float form). */
  sharedQuantized?: boolean;
}

export function partShape(part: PartName, s: PartSizes): number[] {
  const shared = sharedAnalog(part, s);
  if (shared) return partShape(shared.part, shared.sizes);
  switch (part) {
    case 'gate':
    case 'up':
    case 'down':
    case 'gate_scale':
    case 'up_scale':
    case 'down_scale':
      return expertPartShape(part, s);
    case 'gate_bias':
    case 'up_bias':
      return [s.intermediate];
    case 'down_bias':
    case 'output_bias':
    case 'router_input_scale':
    case 'expert_input_norm':
    case 'output_norm':
      return [s.hidden];
    case 'expert_scale':
      return [s.experts];
    case 'router':
      return [s.routerRows ?? s.experts + (s.zeroExperts ?? 0) + (s.sharedRouted ?? 0), s.routerHidden ?? s.hidden];
    case 'router_global_scale':
      return [1];
    case 'router_down':
      return [routerHidden(s), s.hidden];
    case 'latent_fc1':
      return [s.expertHidden ?? s.hidden, s.hidden];
    case 'latent_fc2':
      return [s.hidden, s.expertHidden ?? s.hidden];
    case 'router_down_bias':
    case 'router_state_scale':
    case 'router_norm':
    case 'router_fc1_bias':
    case 'router_fc2_bias':
      return [routerHidden(s)];
    case 'router_fc1':
    case 'router_fc2':
      return [routerHidden(s), routerHidden(s)];
    case 'router_bias':
    case 'correction_bias':
    case 'unused_router_bias':
      return [s.experts + (s.zeroExperts ?? 0)];
    // One shared expert's own projection: the S router-weighted shared experts (inkling) are S stored slices of Is / S each.
    case 'shared_gate_proj':
    case 'shared_up_proj':
      return [s.sharedIntermediate / (s.sharedRouted ?? 1), s.hidden];
    case 'shared_down_proj':
      return [s.hidden, s.sharedIntermediate / (s.sharedRouted ?? 1)];
    case 'shared_gate':
      return [1, s.hidden];
    case 'tid2eid':
      // Sizes without hash routing (a probe of the layout's operations): one row of one id.
      return [s.hashTable?.vocab ?? 1, s.hashTable?.topK ?? 1];
    case 'gate_scale_2':
    case 'up_scale_2':
    case 'down_scale_2':
    case 'gate_input_scale':
    case 'up_input_scale':
    case 'down_input_scale':
      return [1];
    case 'gate_zero':
    case 'up_zero':
    case 'down_zero': {
      const [rows, cols] = part === 'down_zero' ? [s.hidden, s.intermediate] : [s.intermediate, s.hidden];
      const q = s.quant;
      if (q?.zeroRows === undefined) throw new Error(`part ${part} needs a quantization scheme with zero points`);
      return [Math.ceil(rows / q.zeroRows), Math.ceil(cols / q.scaleBlock.cols)];
    }
    case 'gate_shape':
    case 'up_shape':
    case 'down_shape':
      return [2];
    case 'gate_g_idx':
    case 'up_g_idx':
      return [s.hidden];
    case 'down_g_idx':
      return [s.intermediate];
    default:
      // The shared experts' companions, reached above through sharedAnalog (a quantized scheme's only).
      throw new Error(`part ${part} needs a scheme that quantizes the shared experts`);
  }
}

/** An MLP router's hidden size; `hidden` for sizes without one (a probe of the layout's operations). */
const routerHidden = (s: PartSizes): number => s.routerHidden ?? s.hidden;

/**
 * Expert projections and their scales. A packed format (MXFP4: two values per byte) has
 * gate/up/down parts of `cols / packing` stored elements; a scale part is the weight's grid of
 * scale blocks.
 */
function expertPartShape(part: 'gate' | 'up' | 'down' | 'gate_scale' | 'up_scale' | 'down_scale', s: PartSizes): number[] {
  const D = s.expertHidden ?? s.hidden;
  const [rows, cols] = part === 'down' || part === 'down_scale' ? [D, s.intermediate] : [s.intermediate, D];
  const q = s.quant;
  const scale = part.endsWith('_scale');
  if (!scale) return q?.packRows ? [rows / q.packing, cols] : [rows, cols / (q?.packing ?? 1)];
  // A layout that names a scale part without a quantization scheme is a registry bug.
  if (q === undefined) throw new Error(`part ${part} needs a quantization scheme`);
  return [Math.ceil(rows / q.scaleBlock.rows), Math.ceil(cols / q.scaleBlock.cols)];
}

/** One output coordinate as an affine function of the part's own indices and the expert id. */
interface Coordinate {
  constant: number;
  perIndex: number[];
  perExpert: number;
}

interface Placement {
  part: PartName;
  coords: Coordinate[];
}

/** A composed tensor: its shape and where each part's elements sit in it. */
export interface Composite {
  shape: number[];
  placements: Placement[];
}

/** An operation tree evaluated for given sizes. */
export type Op = (s: PartSizes) => Composite;

/** Where one part sits inside a stored tensor, in elements of that tensor (row-major). */
export interface PartView {
  part: PartName;
  /** The part's own shape (`[I, H]` for gate, `[E]` for a bias vector, ...). */
  shape: number[];
  offset: number;
  /** Element stride in the stored tensor for each of the part's own dimensions. */
  strides: number[];
  /** Element stride between experts where the tensor stacks experts; 0 otherwise. */
  expertStride: number;
}

/** A part as stored on its own (`experts.3.gate_proj.weight`, `gate.weight`). */
export function part(name: PartName): Op {
  return (s) => {
    const shape = partShape(name, s);
    const coords = shape.map((_, d) => ({ constant: 0, perIndex: shape.map((__, k) => (k === d ? 1 : 0)), perExpert: 0 }));
    return { shape, placements: [{ part: name, coords }] };
  };
}

/** Stack the E experts along a new leading axis (transformers' MergeModulelist; inverse: split). */
export function stackExperts(inner: Op, withZeroExperts = false): Op {
  return (s) => {
    const x = inner(s);
    return {
      // With the zero-compute experts: their rows follow the real experts' and hold no part (dead weights).
      shape: [s.experts + (withZeroExperts ? (s.zeroExperts ?? 0) : 0), ...x.shape],
      placements: x.placements.map((p) => ({
        part: p.part,
        coords: [{ constant: 0, perIndex: zeros(p), perExpert: 1 }, ...p.coords],
      })),
    };
  };
}

/** Concatenate along `axis` (transformers' Concatenate; inverse: chunk). */
export function concat(axis: number, ...inputs: Op[]): Op {
  return (s) => {
    const xs = inputs.map((op) => op(s));
    const first = xs[0]!;
    let at = 0;
    const placements: Placement[] = [];
    for (const x of xs) {
      assertSameRank(first.shape, x.shape, axis, 'concat');
      for (const p of x.placements) placements.push(shiftAxis(p, axis, (c) => ({ ...c, constant: c.constant + at })));
      at += x.shape[axis]!;
    }
    return { shape: first.shape.map((n, d) => (d === axis ? at : n)), placements };
  };
}

/** Interleave two equal tensors along `axis`: a at even, b at odd positions (inverse: de-interleave). */
export function interleave(axis: number, a: Op, b: Op): Op {
  return (s) => {
    const xa = a(s);
    const xb = b(s);
    assertSameRank(xa.shape, xb.shape, -1, 'interleave');
    const twice = (plus: number) => (c: Coordinate) => ({
      constant: 2 * c.constant + plus,
      perIndex: c.perIndex.map((v) => 2 * v),
      perExpert: 2 * c.perExpert,
    });
    return {
      shape: xa.shape.map((n, d) => (d === axis ? 2 * n : n)),
      placements: [...xa.placements.map((p) => shiftAxis(p, axis, twice(0))), ...xb.placements.map((p) => shiftAxis(p, axis, twice(1)))],
    };
  };
}

/** Swap the last two axes (its own inverse). */
export function transposeLast(inner: Op): Op {
  return (s) => {
    const x = inner(s);
    const n = x.shape.length;
    const swap = <T>(v: T[]): T[] => [...v.slice(0, n - 2), v[n - 1]!, v[n - 2]!];
    return { shape: swap(x.shape), placements: x.placements.map((p) => ({ part: p.part, coords: swap(p.coords) })) };
  };
}

/** Merge the first two axes, `[E, I, H]` to `[E*I, H]` (inverse: view as `[E, I, H]`). */
export function flattenLeading(inner: Op): Op {
  return (s) => {
    const x = inner(s);
    const [d0, d1, ...rest] = x.shape;
    return {
      shape: [d0! * d1!, ...rest],
      placements: x.placements.map((p) => {
        const [c0, c1, ...others] = p.coords;
        return { part: p.part, coords: [combine(c0!, d1!, c1!), ...others] };
      }),
    };
  };
}

/**
 * Split the last axis into `[n / size, size]` (MXFP4's `[..., G, 16]` bytes). Offsets are
 * unchanged: the last axis keeps stride 1 and the part's column index, the new axis gets
 * coordinate 0 (inverse: merge the two axes).
 */
export function splitLast(inner: Op, size: number): Op {
  return (s) => {
    const x = inner(s);
    const n = x.shape[x.shape.length - 1]!;
    if (n % size !== 0) throw new Error(`splitLast: ${n} is not a multiple of ${size}`);
    return {
      shape: [...x.shape.slice(0, -1), n / size, size],
      placements: x.placements.map((p) => ({ part: p.part, coords: [...p.coords.slice(0, -1), { constant: 0, perIndex: zeros(p), perExpert: 0 }, p.coords[p.coords.length - 1]!] })),
    };
  };
}

/**
 * Stack the S router-weighted shared experts along a new leading axis (inkling's `[S, Is/S, H]`):
 * shared expert `s` is the part's expert index `s` (inverse: split). Without them, one.
 */
export function stackSharedRouted(inner: Op): Op {
  return (s) => {
    const x = inner(s);
    return {
      shape: [s.sharedRouted ?? 1, ...x.shape],
      placements: x.placements.map((p) => ({ part: p.part, coords: [{ constant: 0, perIndex: zeros(p), perExpert: 1 }, ...p.coords] })),
    };
  };
}

/** Add a leading axis of size 1, `[E]` to `[1, E]` (inverse: squeeze that axis only). */
export function unsqueezeLeading(inner: Op): Op {
  return (s) => {
    const x = inner(s);
    return {
      shape: [1, ...x.shape],
      placements: x.placements.map((p) => ({ part: p.part, coords: [{ constant: 0, perIndex: zeros(p), perExpert: 0 }, ...p.coords] })),
    };
  };
}

/**
 * A one-element tensor viewed as `shape` (all ones, or `[]` for a scalar): a per-tensor scale
 * stored as `[]` or `[1]` (inverse: the same view back).
 */
export function single(inner: Op, shape: number[]): Op {
  return (s) => {
    const x = inner(s);
    if (x.shape.some((n) => n !== 1) || shape.some((n) => n !== 1)) throw new Error(`single: ${JSON.stringify(x.shape)} is not one element`);
    return { shape: shape.slice(), placements: x.placements.map((p) => ({ part: p.part, coords: shape.map(() => ({ constant: 0, perIndex: zeros(p), perExpert: 0 })) })) };
  };
}

/** Resolve a composite into one row-major element view per part. */
export function partViews(c: Composite, s: PartSizes): PartView[] {
  const rowMajor = rowMajorStrides(c.shape);
  return c.placements.map((p) => {
    const shape = partShape(p.part, s);
    let offset = 0;
    let expertStride = 0;
    const strides = shape.map(() => 0);
    p.coords.forEach((coord, d) => {
      const stride = rowMajor[d]!;
      offset += coord.constant * stride;
      expertStride += coord.perExpert * stride;
      coord.perIndex.forEach((v, k) => (strides[k]! += v * stride));
    });
    return { part: p.part, shape, offset, strides, expertStride };
  });
}

export function rowMajorStrides(shape: number[]): number[] {
  const strides = shape.map(() => 1);
  for (let d = shape.length - 2; d >= 0; d--) strides[d] = strides[d + 1]! * shape[d + 1]!;
  return strides;
}

/**
 * A rectangle of a part, as seen in the stored tensor: `rows` runs of `cols` elements,
 * element (i, j) at `offset + i*rowStride + j*colStride`. 1-D parts are one row.
 */
export interface StridedBlock {
  offset: number;
  rows: number;
  cols: number;
  rowStride: number;
  colStride: number;
}

/** The block of `view` for expert `expert`, rows [r0, r1) and columns [c0, c1) of the part. */
export function blockOf(view: PartView, expert: number, rows: [number, number], cols: [number, number]): StridedBlock {
  const two = view.shape.length === 2;
  const rowStride = two ? view.strides[0]! : 0;
  const colStride = two ? view.strides[1]! : view.strides[0]!;
  return {
    offset: view.offset + expert * view.expertStride + rows[0] * rowStride + cols[0] * colStride,
    rows: rows[1] - rows[0],
    cols: cols[1] - cols[0],
    rowStride,
    colStride,
  };
}

/** Last element index the block touches, plus one (for the window to read). */
export function blockEnd(b: StridedBlock): number {
  if (b.rows === 0 || b.cols === 0) return b.offset;
  return b.offset + (b.rows - 1) * b.rowStride + (b.cols - 1) * b.colStride + 1;
}

/** Copy the block out of `source` (whose element 0 is element `base` of the tensor) into row-major bytes. */
export function gather(source: Uint8Array, base: number, b: StridedBlock, elemBytes: number): Uint8Array {
  const out = new Uint8Array(b.rows * b.cols * elemBytes);
  gatherInto(out, b.cols, 0, source, base, b, elemBytes);
  return out;
}

/**
 * Like `gather`, into columns [firstCol, firstCol + b.cols) of a row-major `out` that has
 * `outCols` columns: a block gathered in column strips lands in one output.
 */
export function gatherInto(out: Uint8Array, outCols: number, firstCol: number, source: Uint8Array, base: number, b: StridedBlock, elemBytes: number): void {
  if (b.colStride === 1) {
    for (let i = 0; i < b.rows; i++) {
      const row = b.offset - base + i * b.rowStride;
      out.set(source.subarray(row * elemBytes, (row + b.cols) * elemBytes), (i * outCols + firstCol) * elemBytes);
    }
    return;
  }
  const words = wordViews(out, source, elemBytes);
  if (words) {
    gatherWordsTiled(words[0], words[1], outCols, firstCol, base, b);
    return;
  }
  for (let i = 0; i < b.rows; i++) {
    const row = b.offset - base + i * b.rowStride;
    let o = (i * outCols + firstCol) * elemBytes;
    for (let j = 0; j < b.cols; j++) {
      const at = (row + j * b.colStride) * elemBytes;
      for (let k = 0; k < elemBytes; k++) out[o++] = source[at + k]!;
    }
  }
}

// A transposed gather walks one side with a large stride: in square tiles both the reads
// and the writes stay in cache (a plain double loop is about 50x slower on big experts).
const TILE = 64;

function gatherWordsTiled(to: Uint16Array | Uint32Array, from: Uint16Array | Uint32Array, outCols: number, firstCol: number, base: number, b: StridedBlock): void {
  for (let i0 = 0; i0 < b.rows; i0 += TILE) {
    const i1 = Math.min(b.rows, i0 + TILE);
    for (let j0 = 0; j0 < b.cols; j0 += TILE) {
      const j1 = Math.min(b.cols, j0 + TILE);
      for (let j = j0; j < j1; j++) {
        const src = b.offset - base + j * b.colStride;
        for (let i = i0; i < i1; i++) to[i * outCols + firstCol + j] = from[src + i * b.rowStride]!;
      }
    }
  }
}

/** 16- or 32-bit views of both buffers where their alignment allows, else null (byte copy). */
function wordViews(out: Uint8Array, source: Uint8Array, elemBytes: number): [Uint16Array | Uint32Array, Uint16Array | Uint32Array] | null {
  const View = elemBytes === 2 ? Uint16Array : elemBytes === 4 ? Uint32Array : null;
  if (View === null || out.byteOffset % elemBytes !== 0 || source.byteOffset % elemBytes !== 0) return null;
  return [
    new View(out.buffer as ArrayBuffer, out.byteOffset, Math.floor(out.length / elemBytes)),
    new View(source.buffer as ArrayBuffer, source.byteOffset, Math.floor(source.length / elemBytes)),
  ];
}

/** The inverse of `gather`: write row-major `values` into the block of `target` (element 0 = tensor element 0). */
export function scatter(target: Uint8Array, b: StridedBlock, values: Uint8Array, elemBytes: number): void {
  let o = 0;
  for (let i = 0; i < b.rows; i++) {
    const row = b.offset + i * b.rowStride;
    for (let j = 0; j < b.cols; j++) {
      const at = (row + j * b.colStride) * elemBytes;
      for (let k = 0; k < elemBytes; k++) target[at + k] = values[o++]!;
    }
  }
}

function zeros(p: Placement): number[] {
  return p.coords[0]?.perIndex.map(() => 0) ?? [];
}

function shiftAxis(p: Placement, axis: number, f: (c: Coordinate) => Coordinate): Placement {
  return { part: p.part, coords: p.coords.map((c, d) => (d === axis ? f(c) : c)) };
}

function combine(outer: Coordinate, innerSize: number, inner: Coordinate): Coordinate {
  return {
    constant: outer.constant * innerSize + inner.constant,
    perIndex: outer.perIndex.map((v, k) => v * innerSize + inner.perIndex[k]!),
    perExpert: outer.perExpert * innerSize + inner.perExpert,
  };
}

function assertSameRank(a: number[], b: number[], except: number, op: string): void {
  const same = a.length === b.length && a.every((n, d) => d === except || n === b[d]);
  // A registry entry combining mismatched parts is a programming error, not bad input.
  if (!same) throw new Error(`${op}: shapes ${JSON.stringify(a)} and ${JSON.stringify(b)} do not fit`);
}
