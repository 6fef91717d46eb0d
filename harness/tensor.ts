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

/** `TP rank 1/2, EP rank 0/3 linear`: one rank of a request, as messages name it. */
export const rankName = (req: ParallelRequest) => `TP rank ${req.tpRank}/${req.tpSize}, EP rank ${req.epRank}/${req.epSize} ${req.epPlacement}`;
