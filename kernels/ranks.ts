// Every rank of one TP × EP split, loaded by any loader: what a forward sums over.
import type { Loader, EpPlacement } from '../harness/tensor.js';
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

/** Loads the tp × ep ranks of `dir` one after the other (TP rank major). */
export async function loadRanks(loader: Loader, dir: string, split: Split): Promise<RankTensors[]> {
  const ranks: RankTensors[] = [];
  for (let tpRank = 0; tpRank < split.tp; tpRank++) {
    for (let epRank = 0; epRank < split.ep; epRank++) {
      const req = { tpSize: split.tp, tpRank, epSize: split.ep, epRank, epPlacement: split.placement };
      ranks.push({ req, tensors: await loader.load(dir, req) });
    }
  }
  return ranks;
}
