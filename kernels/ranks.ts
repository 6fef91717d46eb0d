// Every rank of one TP × EP split, loaded by any loader: what a forward sums over.
import type { Loader, EpPlacement, ParallelRequest } from '../harness/tensor.js';
import type { RankTensors } from './backend.js';

export interface Split {
  tp: number;
  ep: number;
  placement: EpPlacement;
}

/** `TP2×EP3 round_robin`, `TP1`: a split as people write it. */
export function splitLabel(s: Split): string {
  const tp = `TP${s.tp}`;
  return s.ep === 1 ? tp : `${tp}×EP${s.ep} ${s.placement}`;
}

/** The tp × ep requests of a split, TP rank major. */
export function splitRequests(split: Split): ParallelRequest[] {
  const reqs: ParallelRequest[] = [];
  for (let tpRank = 0; tpRank < split.tp; tpRank++) {
    for (let epRank = 0; epRank < split.ep; epRank++) reqs.push({ tpSize: split.tp, tpRank, epSize: split.ep, epRank, epPlacement: split.placement });
  }
  return reqs;
}

/** Loads the tp × ep ranks of `dir`: in one call where the loader takes several ranks at once, else one after the other. */
export async function loadRanks(loader: Loader, dir: string, split: Split): Promise<RankTensors[]> {
  const reqs = splitRequests(split);
  if (loader.loadRanks) {
    const all = await loader.loadRanks(dir, reqs);
    return reqs.map((req, i) => ({ req, tensors: all[i]! }));
  }
  const ranks: RankTensors[] = [];
  for (const req of reqs) ranks.push({ req, tensors: await loader.load(dir, req) });
  return ranks;
}
