// Do two checkpoint directories hold the same canonical tensors? The question of anyone who
// re-saved a model in another layout. Both are planned with the reference loader, rank by
// rank for a TP × EP split, and each pair of planned tensors is streamed side by side in
// bounded chunks (tensorChunks), so memory holds a chunk or two per side whatever the
// checkpoint's size. A difference is located in the canonical tensor (element index,
// bytes, values: bits.ts describes it) and traced back to the stored tensor and file it
// was read from on each side.
import { CheckpointDir } from '../checkpoint/directory.js';
import { MoeConformanceError } from '../errors.js';
import { detect } from '../loader/detect.js';
import { checkRequest } from '../canonical/cut.js';
import { planLoad, tensorChunks, type LoadPlan, type PlannedTensor } from '../loader/load.js';
import { dtypeBits } from '../safetensors/dtypes.js';
import type { EpPlacement, ParallelRequest } from '../tensor.js';
import { bytesDifference, describeDifference, differingElements, headerDifference, type BitDifference } from './bits.js';

/** A checkpoint the reference loader refuses (a mixed layout, a missing expert, ...): the reason is the cause. */
export class CheckpointRefused extends MoeConformanceError {}

export interface CompareOptions {
  tpSize: number;
  epSize: number;
  epPlacement: EpPlacement;
  /** Go on after the first differing tensor and report every one (at most maxReported described). */
  all?: boolean;
  /** Differences described in full; further ones are only counted. Default 20. */
  maxReported?: number;
  /** Largest chunk read at once per side (COMPARE_WINDOW by default); tests make it tiny. */
  maxWindow?: number;
}

// Two streams are read side by side and each chunk is dropped once compared: windows of
// 1 MiB (not the loader's 16 MiB) stay in cache and leave little garbage between
// collections. On the 5.6 GB benchmark pair, peak RSS fell from ~400 to ~200 MB at TP 8
// and TP 1 ran faster (bench/compare.ts).
export const COMPARE_WINDOW = 1 << 20;

/** Where one element of a canonical tensor was read from: a stored tensor, its file, and the element's index in it. */
export interface ElementSource {
  tensor: string;
  file: string;
  index: number[];
}

export type RankId = Pick<ParallelRequest, 'tpRank' | 'tpSize' | 'epRank' | 'epSize'>;

export type CheckpointDifference =
  /** The model type or a size config.json gives differs: no tensor is compared. */
  | { kind: 'model'; field: string; expected: unknown; found: unknown }
  | { kind: 'tensor'; rank: RankId; difference: BitDifference; expectedSource?: ElementSource; foundSource?: ElementSource };

export interface CheckpointComparison {
  same: boolean;
  /** Ranks, tensors and bytes (one side's) compared; when stopped at the first difference, up to it. */
  ranks: number;
  tensors: number;
  bytes: number;
  /** Described differences, A taken as expected and B as found. */
  differences: CheckpointDifference[];
  /** Differing tensors found beyond maxReported. */
  unreported: number;
}

/** Compare the canonical tensors of checkpoints A (expected) and B (found), rank by rank. */
export async function compareCheckpoints(dirA: string, dirB: string, o: CompareOptions): Promise<CheckpointComparison> {
  const maxReported = o.maxReported ?? 20;
  const result: CheckpointComparison = { same: true, ranks: 0, tensors: 0, bytes: 0, differences: [], unreported: 0 };
  /** Records a difference; true when the comparison should stop. */
  const report = (d: CheckpointDifference): boolean => {
    result.same = false;
    if (result.differences.length < maxReported) result.differences.push(d);
    else result.unreported++;
    return !o.all;
  };

  const a = await refusedAs('A', dirA, () => CheckpointDir.open(dirA));
  try {
    const b = await refusedAs('B', dirB, () => CheckpointDir.open(dirB));
    try {
      const modelA = await refusedAs('A', dirA, async () => detect(a));
      const modelB = await refusedAs('B', dirB, async () => detect(b));
      const model = modelDifference({ model_type: modelA.modelType, ...modelA.dims }, { model_type: modelB.modelType, ...modelB.dims });
      if (model) {
        report(model);
        return result;
      }
      for (let tpRank = 0; tpRank < o.tpSize; tpRank++) {
        for (let epRank = 0; epRank < o.epSize; epRank++) {
          const req: ParallelRequest = { tpSize: o.tpSize, tpRank, epSize: o.epSize, epRank, epPlacement: o.epPlacement };
          // A request that does not fit the model is refused for both sides alike, not as A's fault.
          checkRequest(req, modelA.dims);
          const planA = await refusedAs('A', dirA, () => planLoad(a, req));
          const planB = await refusedAs('B', dirB, () => planLoad(b, req));
          result.ranks++;
          if (await compareRank(planA, planB, req, o, result, report)) return result;
        }
      }
      return result;
    } finally {
      await b.close();
    }
  } finally {
    await a.close();
  }
}

/** Runs `step`, turning a typed refusal into CheckpointRefused naming the side and folder. */
async function refusedAs<T>(side: 'A' | 'B', dir: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (e) {
    if (!(e instanceof MoeConformanceError)) throw e;
    // One message: the side and its folder, then the loader's own error as it is (with its file).
    throw new CheckpointRefused(`checkpoint ${side} (${dir}) cannot be loaded: ${e.name}: ${e.message}`);
  }
}

/** The first field (model type, then each config-derived size) on which the two models differ. */
function modelDifference(a: Record<string, unknown>, b: Record<string, unknown>): CheckpointDifference | undefined {
  for (const field of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (JSON.stringify(a[field]) !== JSON.stringify(b[field])) return { kind: 'model', field, expected: a[field], found: b[field] };
  }
  return undefined;
}

/** One rank: names, dtypes and shapes first, then the bytes of each pair. True when the comparison should stop. */
async function compareRank(
  planA: LoadPlan,
  planB: LoadPlan,
  req: ParallelRequest,
  o: CompareOptions,
  result: CheckpointComparison,
  report: (d: CheckpointDifference) => boolean,
): Promise<boolean> {
  const rank: RankId = { tpRank: req.tpRank, tpSize: req.tpSize, epRank: req.epRank, epSize: req.epSize };
  const inB = new Map(planB.tensors.map((t) => [t.name, t]));
  const inA = new Set(planA.tensors.map((t) => t.name));
  for (const ta of planA.tensors) {
    const tb = inB.get(ta.name);
    const header = headerDifference(ta.name, ta, tb);
    if (header) {
      if (report({ kind: 'tensor', rank, difference: header })) return true;
      continue;
    }
    result.tensors++;
    result.bytes += ta.byteLength;
    const found = await compareTensor(planA, ta, planB, tb!, o.maxWindow ?? COMPARE_WINDOW);
    if (found && report({ kind: 'tensor', rank, ...found })) return true;
  }
  for (const tb of planB.tensors) {
    if (!inA.has(tb.name) && report({ kind: 'tensor', rank, difference: headerDifference(tb.name, undefined, tb)! })) return true;
  }
  return false;
}

type TensorDifference = Omit<Extract<CheckpointDifference, { kind: 'tensor' }>, 'kind' | 'rank'>;

/**
 * Streams both tensors side by side and compares the overlapping runs of their chunks; the
 * whole tensor is read even after a difference, to count the differing elements.
 */
async function compareTensor(planA: LoadPlan, ta: PlannedTensor, planB: LoadPlan, tb: PlannedTensor, maxWindow: number): Promise<TensorDifference | undefined> {
  const size = dtypeBits(ta.dtype) / 8;
  const sa = tensorChunks(planA.dir, ta, { maxWindow });
  const sb = tensorChunks(planB.dir, tb, { maxWindow });
  let ca: Uint8Array = new Uint8Array(0);
  let cb: Uint8Array = new Uint8Array(0);
  let [ia, ib, at] = [0, 0, 0];
  let first: { index: number; expected: Uint8Array; found: Uint8Array } | undefined;
  let differing = 0;
  try {
    while (at < ta.byteLength) {
      // Read the side (or both sides, at once) whose chunk is used up.
      const [na, nb] = await Promise.all([ia === ca.length ? sa.next() : undefined, ib === cb.length ? sb.next() : undefined]);
      if (na) [ca, ia] = [nextChunk(na, ta, at), 0];
      if (nb) [cb, ib] = [nextChunk(nb, tb, at), 0];
      const n = Math.min(ca.length - ia, cb.length - ib);
      const ea = ca.subarray(ia, ia + n);
      const eb = cb.subarray(ib, ib + n);
      if (!Buffer.from(ea.buffer, ea.byteOffset, n).equals(Buffer.from(eb.buffer, eb.byteOffset, n))) {
        const d = differingElements(ea, eb, size);
        differing += d.count;
        if (!first) first = { index: (at / size) + d.first, expected: ea.slice(d.first * size, (d.first + 1) * size), found: eb.slice(d.first * size, (d.first + 1) * size) };
      }
      [ia, ib, at] = [ia + n, ib + n, at + n];
    }
    if (ia !== ca.length || ib !== cb.length) throw new Error(`internal: ${ta.name} streamed more than its ${ta.byteLength} planned bytes`);
  } finally {
    await Promise.all([sa.return(undefined), sb.return(undefined)]);
  }
  if (!first) return undefined;
  const out: TensorDifference = { difference: bytesDifference(ta.name, ta.dtype, first.index, first.expected, first.found, differing, { shape: ta.shape }) };
  const expectedSource = sourceOf(planA, ta, first.index);
  const foundSource = sourceOf(planB, tb, first.index);
  if (expectedSource) out.expectedSource = expectedSource;
  if (foundSource) out.foundSource = foundSource;
  return out;
}

/** A stream's next chunk; a stream that ends before the planned length is a loader bug, never a quiet partial compare. */
function nextChunk(r: IteratorResult<Uint8Array>, t: PlannedTensor, at: number): Uint8Array {
  if (r.done || r.value.length === 0) throw new Error(`internal: ${t.name} streamed ${at} of its ${t.byteLength} planned bytes`);
  return r.value;
}

/** The stored tensor, file and index that element `index` of a planned tensor is read from (undefined for given bytes, the expert ids). */
function sourceOf(plan: LoadPlan, t: PlannedTensor, index: number): ElementSource | undefined {
  const size = dtypeBits(t.dtype) / 8;
  let k = index;
  for (const piece of t.pieces) {
    const elements = piece.kind === 'literal' ? piece.bytes.length / size : piece.block.rows * piece.block.cols;
    if (k >= elements) {
      k -= elements;
      continue;
    }
    if (piece.kind === 'literal') return undefined;
    const b = piece.block;
    let flat = b.offset + Math.floor(k / b.cols) * b.rowStride + (k % b.cols) * b.colStride;
    const shape = plan.dir.info(piece.tensor).shape;
    const at = shape.map(() => 0);
    for (let d = shape.length - 1; d >= 0; d--) {
      at[d] = flat % shape[d]!;
      flat = Math.floor(flat / shape[d]!);
    }
    return { tensor: piece.tensor, file: piece.file, index: at };
  }
  return undefined;
}

const rankName = (r: RankId) => `TP rank ${r.tpRank}/${r.tpSize}, EP rank ${r.epRank}/${r.epSize}`;
const show = (v: unknown) => JSON.stringify(v) ?? String(v);
const sourceLine = (side: string, s: ElementSource) => `  ${side}: ${s.tensor}[${s.index.join(', ')}] in ${s.file}`;

/** One difference as lines of text: A is the expected side, B the found one. */
export function describeCheckpointDifference(d: CheckpointDifference): string {
  if (d.kind === 'model') {
    const what = d.field === 'model_type' ? 'different model types' : `different config-derived ${d.field}`;
    return `${what}: ${show(d.found)} in B, ${show(d.expected)} in A`;
  }
  const lines = [`${rankName(d.rank)}: ${describeDifference(d.difference)}`];
  if (d.expectedSource) lines.push(sourceLine('A', d.expectedSource));
  if (d.foundSource) lines.push(sourceLine('B', d.foundSource));
  return lines.join('\n');
}
