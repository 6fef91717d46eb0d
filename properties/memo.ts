// Remembering a few recent results, for the mutant test: a mutant asks for the same whole
// tensors once per rank, and twelve mutants are checked on the same cases.
import type { Canonical, Loader } from '../harness/tensor.js';

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

/** A loader that remembers its last `size` outputs; callers must not change the maps it returns. */
export function memoLoader(loader: Loader, size: number): Loader {
  const loads = recent<Canonical>(size);
  return {
    name: loader.name,
    load: (dir, req) => loads(`${dir}|${req.tpSize}/${req.tpRank}/${req.epSize}/${req.epRank}/${req.epPlacement}`, () => loader.load(dir, req)),
  };
}
