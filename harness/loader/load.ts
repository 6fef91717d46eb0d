// The reference loader. It first makes a plan: every output tensor of one TP/EP rank with
// the exact pieces of stored tensors it is made of (contiguous row runs, or a strided
// block for transposed and interleaved layouts). The plan is then either materialised in
// memory or streamed into one safetensors file in chunks of at most MAX_WINDOW bytes (one
// row at least), the writer writing one chunk while the next is read, so memory stays
// bounded whatever the checkpoint size. Loading moves bytes; it never decodes floats.
import { CheckpointDir } from '../checkpoint/directory.js';
import { detect, type LayerLayout } from './detect.js';
import { DtypeMismatch } from '../layouts/errors.js';
import { blockEnd, blockOf, gather, gatherInto, type StridedBlock } from '../layouts/ops.js';
import type { MoeDims } from '../layouts/registry.js';
import { dtypeBits, type DType } from '../safetensors/dtypes.js';
import { checkBufferSize } from '../safetensors/read.js';
import { writeSafetensors, type LazyTensor } from '../safetensors/write.js';
import type { Canonical, Loader, ParallelRequest } from '../tensor.js';
import { canonicalName, elementCount, expertIds, type CanonicalSpec } from '../canonical/canonical.js';
import { canonicalSpecs } from '../quant/canonical.js';
import { checkRequest } from '../canonical/cut.js';

/** Bytes of one output tensor: either read from a stored tensor, or given (the expert ids). */
export type PlanPiece =
  | { kind: 'read'; tensor: string; file: string; block: StridedBlock; elemBytes: number }
  | { kind: 'literal'; bytes: Uint8Array };

export interface PlannedTensor {
  name: string;
  dtype: DType;
  shape: number[];
  byteLength: number;
  /** Concatenated in order, they are the tensor's row-major bytes. */
  pieces: PlanPiece[];
}

export interface LoadPlan {
  dir: CheckpointDir;
  modelType: string;
  dims: MoeDims;
  request: ParallelRequest;
  layers: LayerLayout[];
  tensors: PlannedTensor[];
}

/** Plan one rank's canonical tensors. Refuses an invalid request or checkpoint before reading any tensor data. */
export async function planLoad(dir: string | CheckpointDir, req: ParallelRequest): Promise<LoadPlan> {
  const checkpoint = typeof dir === 'string' ? await CheckpointDir.open(dir) : dir;
  try {
    const found = detect(checkpoint);
    checkRequest(req, found.dims);
    const tensors: PlannedTensor[] = [];
    for (const layer of found.layers) {
      const ids = expertIds(found.dims, req);
      const idBytes = new Uint8Array(new Int32Array(ids).buffer);
      tensors.push({
        name: canonicalName(layer.layer, 'experts.ids'),
        dtype: 'I32',
        shape: [ids.length],
        byteLength: idBytes.length,
        pieces: [{ kind: 'literal', bytes: idBytes }],
      });
      for (const spec of canonicalSpecs(layer.layer, found.dims, req)) tensors.push(planTensor(layer, spec));
    }
    return { dir: checkpoint, modelType: found.modelType, dims: found.dims, request: req, layers: found.layers, tensors };
  } catch (e) {
    if (typeof dir === 'string') await checkpoint.close();
    throw e;
  }
}

function planTensor(layer: LayerLayout, spec: CanonicalSpec): PlannedTensor {
  let dtype: DType | undefined;
  let first = '';
  const pieces: PlanPiece[] = spec.slices.map((s) => {
    const at = layer.locate(s.part, s.expert);
    if (dtype === undefined) [dtype, first] = [at.dtype, at.key];
    if (at.dtype !== dtype) {
      throw new DtypeMismatch(`tensors forming ${spec.name} disagree on dtype`, { layer: layer.layer, tensor: at.key, file: at.file, expected: `${dtype} (as ${first})`, found: at.dtype });
    }
    const bits = dtypeBits(at.dtype);
    if (bits % 8 !== 0) {
      throw new DtypeMismatch('sub-byte dtypes cannot be cut by element', { layer: layer.layer, tensor: at.key, file: at.file, expected: 'a whole-byte dtype', found: at.dtype });
    }
    return { kind: 'read', tensor: at.key, file: at.file, block: blockOf(at.view, s.expert ?? 0, s.rows, s.cols), elemBytes: bits / 8 };
  });
  const elemBytes = dtypeBits(dtype!) / 8;
  return { name: spec.name, dtype: dtype!, shape: spec.shape, byteLength: elementCount(spec.shape) * elemBytes, pieces };
}

// A piece of row runs (consecutive elements) is read run by run into place. A strided piece
// (transposed or interleaved) whose covering window is at most WINDOW_SLACK times its own
// size (or small) is read as windows and gathered in memory. Sparser strided pieces read
// only the spans they need, so a TP rank reads about 1/T of the expert bytes. Both are read
// in row bands and strips of at most MAX_WINDOW bytes: memory holds one band and one strip,
// whatever the size of an expert.
const WINDOW_SLACK = 1.5;
const SMALL_WINDOW = 1 << 16;
const MAX_WINDOW = 16 << 20;

/** How readPiece reads; the defaults are the loader's, tests vary them to reach every path. */
export interface ReadOptions {
  /** Largest window read at once. */
  maxWindow?: number;
  /** Windows up to this size are read whole even when sparse. */
  smallWindow?: number;
  small?: SmallTensorCache;
}

/** The bytes of one piece, as row bands of at most maxWindow bytes each (one row at least). */
export async function* pieceChunks(dir: CheckpointDir, piece: PlanPiece, options: ReadOptions = {}): AsyncGenerator<Uint8Array> {
  if (piece.kind === 'literal') {
    yield piece.bytes;
    return;
  }
  const { block: b, elemBytes: n } = piece;
  const band = Math.max(1, Math.floor((options.maxWindow ?? MAX_WINDOW) / Math.max(1, b.cols * n)));
  for (let first = 0; first < b.rows && b.cols > 0; first += band) {
    yield await readBlock(dir, piece.tensor, { ...b, offset: b.offset + first * b.rowStride, rows: Math.min(band, b.rows - first) }, n, options);
  }
}

/** One block of a stored tensor: its row runs read into place, or read as spans or windows, in strips, and gathered. */
async function readBlock(dir: CheckpointDir, tensor: string, b: StridedBlock, n: number, options: ReadOptions): Promise<Uint8Array> {
  const { maxWindow = MAX_WINDOW, smallWindow = SMALL_WINDOW, small } = options;
  const whole = small ? await small.get(dir, tensor) : undefined;
  if (whole) return gather(whole, 0, b, n);
  // Rows of consecutive elements (every cut of a row-major part: an expert's rows of gate
  // or up, the columns of down) are already in output order: read each row run straight
  // into the output, adjacent runs in one read (a fused gate or up slab is one range).
  if (b.colStride === 1) return dir.readRanges(tensor, runs(b.offset, b.rows, b.rowStride, b.cols, n));
  const windowBytes = (blockEnd(b) - b.offset) * n;
  // Sparse pieces (a TP cut of a large tensor) read, for each line along the outer
  // (larger-stride) axis, only the span that covers the inner axis: for plain and transposed
  // layouts exactly the elements needed (interleaved gate/up spans also hold the other half).
  // Dense pieces read whole windows. Either way in strips of at most maxWindow bytes.
  const sparse = windowBytes > Math.max(WINDOW_SLACK * b.rows * b.cols * n, smallWindow);
  const innerRows = b.cols === 1 || (b.rows > 1 && b.rowStride < b.colStride);
  const [inner, innerStride, outer, outerStride] = innerRows ? [b.rows, b.rowStride, b.cols, b.colStride] : [b.cols, b.colStride, b.rows, b.rowStride];
  const span = (inner - 1) * innerStride + 1;
  const lineBytes = (sparse ? span : outerStride) * n;
  const perStrip = Math.max(1, Math.floor(maxWindow / Math.max(1, lineBytes)));
  const out = new Uint8Array(b.rows * b.cols * n);
  for (let first = 0; first < outer; first += perStrip) {
    const count = Math.min(perStrip, outer - first);
    const strip: StridedBlock = innerRows
      ? { ...b, offset: b.offset + first * outerStride, cols: count }
      : { ...b, offset: b.offset + first * outerStride, rows: count };
    let source: Uint8Array;
    let local: StridedBlock;
    if (sparse) {
      source = await dir.readRanges(tensor, runs(strip.offset, count, outerStride, span, n));
      local = innerRows ? { ...strip, offset: 0, rowStride: innerStride, colStride: span } : { ...strip, offset: 0, rowStride: span, colStride: innerStride };
    } else {
      source = await dir.readBytes(tensor, strip.offset * n, blockEnd(strip) * n);
      local = { ...strip, offset: 0 };
    }
    if (innerRows) gatherInto(out, b.cols, first, source, 0, local, n);
    else gatherInto(out.subarray(first * b.cols * n), b.cols, 0, source, 0, local, n);
  }
  return out;
}

/** Byte ranges of `count` runs of `length` elements, `stride` elements apart from `offset`. */
function runs(offset: number, count: number, stride: number, length: number, n: number): Array<[number, number]> {
  return Array.from({ length: count }, (_, k): [number, number] => [(offset + k * stride) * n, (offset + k * stride + length) * n]);
}

// Stored tensors up to SMALL_TENSOR bytes are read whole once per output tensor: a fused
// tensor of a small model then costs one read instead of one per expert and projection.
const SMALL_TENSOR = 1 << 20;

/** Whole small stored tensors, kept while one output tensor is assembled. */
export class SmallTensorCache {
  private readonly bytes = new Map<string, Uint8Array>();

  async get(dir: CheckpointDir, tensor: string): Promise<Uint8Array | undefined> {
    const [begin, end] = dir.info(tensor).dataOffsets;
    if (end - begin > SMALL_TENSOR) return undefined;
    let whole = this.bytes.get(tensor);
    if (!whole) {
      whole = (await dir.read(tensor)).bytes;
      this.bytes.set(tensor, whole);
    }
    return whole;
  }
}

/**
 * One planned tensor's row-major bytes, as the chunks of its pieces in order (each a whole
 * number of elements, at most maxWindow bytes unless one row is larger): the one way
 * materialize, writePlan and checkpoint comparison produce a tensor.
 */
export async function* tensorChunks(dir: CheckpointDir, t: PlannedTensor, options: Omit<ReadOptions, 'small'> = {}): AsyncGenerator<Uint8Array> {
  const small = new SmallTensorCache();
  for (const piece of t.pieces) yield* pieceChunks(dir, piece, { ...options, small });
}

/** Build the planned tensors in memory. */
export async function materialize(plan: LoadPlan): Promise<Canonical> {
  const out: Canonical = new Map();
  for (const t of plan.tensors) {
    checkBufferSize(t.byteLength, plan.dir.dir, t.name, 'canonical tensor', 'stream it (writePlan, tensorChunks), or load a TP/EP rank');
    const bytes = new Uint8Array(t.byteLength);
    let at = 0;
    for await (const chunk of tensorChunks(plan.dir, t)) {
      bytes.set(chunk, at);
      at += chunk.length;
    }
    out.set(t.name, { dtype: t.dtype, shape: t.shape, bytes });
  }
  return out;
}

/** Stream the planned tensors into one safetensors file, one band of one piece in memory at a time. */
export async function writePlan(plan: LoadPlan, outFile: string): Promise<void> {
  const sources = plan.tensors.map((t): [string, LazyTensor] => [
    t.name,
    {
      dtype: t.dtype,
      shape: t.shape,
      byteLength: t.byteLength,
      chunks: () => tensorChunks(plan.dir, t),
    },
  ]);
  await writeSafetensors(outFile, sources);
}

/** Load one rank's canonical tensors from a checkpoint directory. */
export async function loadCanonical(dir: string, req: ParallelRequest): Promise<Canonical> {
  const plan = await planLoad(dir, req);
  try {
    return await materialize(plan);
  } finally {
    await plan.dir.close();
  }
}

export const referenceLoader: Loader = { name: 'reference', load: loadCanonical };
