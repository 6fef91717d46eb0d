// The raw tensor and the canonical form of spec/loader-protocol.md.
// Loading moves bytes and never decodes floats: decoding happens only where numbers are
// compared or computed (compare/, kernels/).
import type { DType } from './safetensors/dtypes.js';

export interface Tensor {
  dtype: DType;
  shape: number[];
  /** Row-major little-endian bytes, exactly as stored. */
  bytes: Uint8Array;
}

/** The same tensor bit for bit: dtype, shape and bytes. */
export function sameTensor(a: Tensor, b: Tensor): boolean {
  return a.dtype === b.dtype && a.shape.length === b.shape.length && a.shape.every((n, i) => n === b.shape[i]) && a.bytes.length === b.bytes.length && Buffer.compare(a.bytes, b.bytes) === 0;
}

/** Protocol tensor name (`layers.L.experts.w13`, ...) to tensor, for one TP/EP rank. */
export type Canonical = Map<string, Tensor>;

export type EpPlacement = 'linear' | 'round_robin';

export interface ParallelRequest {
  tpSize: number;
  tpRank: number;
  epSize: number;
  epRank: number;
  epPlacement: EpPlacement;
}

export const WHOLE: ParallelRequest = { tpSize: 1, tpRank: 0, epSize: 1, epRank: 0, epPlacement: 'linear' };

/** Anything that turns a checkpoint directory into one rank's canonical tensors. */
export interface Loader {
  readonly name: string;
  load(dir: string, req: ParallelRequest): Promise<Canonical>;
  /**
   * Several ranks of one checkpoint at once, in the order asked: a loader that reads the
   * checkpoint once and cuts every rank from it (a worker, spec §7) offers this; callers
   * that need every rank use it when present, else call `load` per rank.
   */
  loadRanks?(dir: string, reqs: readonly ParallelRequest[]): Promise<Canonical[]>;
}

/**
 * What a wrapper does around each call of the loader it wraps: `reqs` are the ranks the call
 * serves (one for `load`, every rank asked at once for `loadRanks`), `call` makes it.
 */
export type AroundLoad = (dir: string, reqs: readonly ParallelRequest[], call: () => Promise<Canonical[]>) => Promise<Canonical[]>;

/**
 * `inner` with `around` run around each of its calls. The result offers `loadRanks` exactly
 * when `inner` does: a wrapper built here cannot turn a worker's one request per case
 * (spec/loader-protocol.md §7.4) into one request per rank. Every wrapper of a Loader is
 * built with it.
 */
export function wrapLoader(inner: Loader, around: AroundLoad): Loader {
  const loader: Loader = {
    name: inner.name,
    load: async (dir, req) => (await around(dir, [req], async () => [await inner.load(dir, req)]))[0]!,
  };
  const many = inner.loadRanks?.bind(inner);
  if (many) loader.loadRanks = (dir, reqs) => around(dir, reqs, () => many(dir, reqs));
  return loader;
}

/** `TP rank 1/2, EP rank 0/3 linear`: one rank of a request, as messages name it. */
export const rankName = (req: ParallelRequest) => `TP rank ${req.tpRank}/${req.tpSize}, EP rank ${req.epRank}/${req.epSize} ${req.epPlacement}`;

/** The ranks of one loader call, as messages name them: one rank by `rankName`, several as `TP ranks 0, 1/2, EP rank 0/1 linear`-like lists. */
export const ranksName = (reqs: readonly ParallelRequest[]): string => {
  if (reqs.length === 1) return rankName(reqs[0]!);
  const [first] = reqs;
  if (!first) return 'no rank';
  const sameSplit = reqs.every((r) => r.tpSize === first.tpSize && r.epSize === first.epSize && r.epPlacement === first.epPlacement);
  if (!sameSplit) return reqs.map(rankName).join('; ');
  const tp = [...new Set(reqs.map((r) => r.tpRank))].join(', ');
  const ep = [...new Set(reqs.map((r) => r.epRank))].join(', ');
  return `TP rank${tp.includes(',') ? 's' : ''} ${tp}/${first.tpSize}, EP rank${ep.includes(',') ? 's' : ''} ${ep}/${first.epSize} ${first.epPlacement}`;
};
