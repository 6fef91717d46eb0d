// Tensor-parallel cutting and expert-parallel placement (spec §1): which rows and columns
// and which experts one rank holds. Pure arithmetic, checked before anything is read.
import type { EpPlacement, ParallelRequest } from '../tensor.js';
import { InvalidParallelRequest } from './errors.js';
import type { QuantGeometry } from '../layouts/ops.js';

export const EP_PLACEMENTS: readonly EpPlacement[] = ['linear', 'round_robin'];

/** Sizes the request is checked against. */
export interface CutSizes {
  experts: number;
  intermediate: number;
  sharedIntermediate: number;
  quant?: QuantGeometry;
}

/** Refuse a request that no loader can serve correctly for these sizes. */
export function checkRequest(req: ParallelRequest, s: CutSizes): void {
  const fields: Array<[keyof ParallelRequest, number]> = [
    ['tpSize', 1],
    ['epSize', 1],
    ['tpRank', 0],
    ['epRank', 0],
  ];
  for (const [field, min] of fields) {
    const v = req[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
      throw new InvalidParallelRequest(`${field} must be an integer >= ${min}`, { expected: `>= ${min}`, found: v });
    }
  }
  if (req.tpRank >= req.tpSize) throw new InvalidParallelRequest('tpRank out of range', { expected: `< ${req.tpSize}`, found: req.tpRank });
  if (req.epRank >= req.epSize) throw new InvalidParallelRequest('epRank out of range', { expected: `< ${req.epSize}`, found: req.epRank });
  if (!EP_PLACEMENTS.includes(req.epPlacement)) {
    throw new InvalidParallelRequest('unknown EP placement', { expected: EP_PLACEMENTS.join('|'), found: req.epPlacement });
  }
  if (req.epSize > s.experts) {
    throw new InvalidParallelRequest('more EP ranks than experts', { expected: `epSize <= E = ${s.experts}`, found: req.epSize });
  }
  if (s.intermediate % req.tpSize !== 0) {
    throw new InvalidParallelRequest('the expert intermediate size does not divide by the TP size', {
      expected: `I % T == 0 (I = ${s.intermediate})`,
      found: `T = ${req.tpSize}`,
    });
  }
  if (!tpKeepsBlocks(s.intermediate, req.tpSize, s.quant)) {
    const b = s.quant!.scaleBlock;
    throw new InvalidParallelRequest(`a ${s.quant!.method} rank must hold whole ${b.rows}x${b.cols} scale blocks`, {
      expected: `(I / T) % ${b.cols} == 0 and (I / T) % ${b.rows} == 0 (I = ${s.intermediate})`,
      found: `T = ${req.tpSize}`,
    });
  }
  if (s.quant?.sharedQuantized && s.sharedIntermediate > 0 && !tpKeepsBlocks(s.sharedIntermediate, req.tpSize, s.quant)) {
    const b = s.quant.scaleBlock;
    throw new InvalidParallelRequest(`a ${s.quant.method} rank must hold whole ${b.rows}x${b.cols} scale blocks of the quantized shared expert`, {
      expected: `(Is / T) % ${b.cols} == 0 and (Is / T) % ${b.rows} == 0 (Is = ${s.sharedIntermediate})`,
      found: `T = ${req.tpSize}`,
    });
  }
  if (s.sharedIntermediate % req.tpSize !== 0) {
    throw new InvalidParallelRequest('the shared-expert intermediate size does not divide by the TP size', {
      expected: `Is % T == 0 (Is = ${s.sharedIntermediate})`,
      found: `T = ${req.tpSize}`,
    });
  }
}

/**
 * Whether TP size `tpSize` leaves every rank whole scale blocks of a format that may not split
 * them (w13's rows and w2's columns are cut along I); always true for float weights and for
 * formats whose straddled blocks both ranks hold.
 */
export function tpKeepsBlocks(intermediate: number, tpSize: number, q: QuantGeometry | undefined): boolean {
  if (q === undefined || q.splitsBlocks) return true;
  const per = intermediate / tpSize;
  return Number.isInteger(per) && per % q.scaleBlock.cols === 0 && per % q.scaleBlock.rows === 0;
}

/** Global ids of the experts EP rank `rank` of `size` holds, in slot order. */
export function expertsOf(experts: number, size: number, rank: number, placement: EpPlacement): number[] {
  if (placement === 'round_robin') {
    const ids: number[] = [];
    for (let e = rank; e < experts; e += size) ids.push(e);
    return ids;
  }
  const base = Math.floor(experts / size);
  const rem = experts % size;
  const start = rank * base + Math.min(rank, rem);
  const count = base + (rank < rem ? 1 : 0);
  return Array.from({ length: count }, (_, i) => start + i);
}

/** The slice [start, end) of an axis of `size` that TP rank `rank` of `tpSize` holds. */
export function tpSlice(size: number, tpSize: number, rank: number): [number, number] {
  const per = size / tpSize;
  return [rank * per, (rank + 1) * per];
}
