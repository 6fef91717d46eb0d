// Remembering a few recent results, for the mutant test: a mutant asks for the same whole
// tensors once per rank, and twelve mutants are checked on the same cases.
import { wrapLoader, type Canonical, type Loader, type ParallelRequest } from '../harness/tensor.js';

/** The last `size` results by key (promises, so concurrent askers share one computation). */
export function recent<T>(size: number): (key: string, make: () => Promise<T>) => Promise<T> {
  const memo = new Map<string, Promise<T>>();
  return (key, make) => {
    let hit = memo.get(key);
    if (!hit) {
      hit = make();
      memo.set(key, hit);
      if (memo.size > size) memo.delete(memo.keys().next().value!);
    }
    return hit;
  };
}

/** A loader that remembers its last `size` outputs (a call for several ranks at once is one entry); callers must not change the maps it returns. */
export function memoLoader(loader: Loader, size: number): Loader {
  const loads = recent<Canonical[]>(size);
  const rank = (r: ParallelRequest) => `${r.tpSize}/${r.tpRank}/${r.epSize}/${r.epRank}/${r.epPlacement}`;
  return wrapLoader(loader, (dir, reqs, call) => loads(`${dir}|${reqs.map(rank).join(';')}`, call));
}
