// Grouping results for reports. A results file is input (`check --merge`, `diff`), so its
// size and its strings are the attacker's:
// - each group is one array appended to in place. Copying the group on every append
//   (`[...(map.get(k) ?? []), x]`) is quadratic: 40,000 results in one group took about a
//   minute per report;
// - a key longer than V8 hashes whole (json.ts MAX_KEY_LENGTH: longer strings hash by their
//   length alone) is looked up by its SHA-256 instead: 3,000 undeclared-skip notes of 16,400
//   characters took 13 s to group, all in one hash bucket. Hashed as UTF-16 code units, so
//   that keys differing only in a lone surrogate (UTF-8 writes each as U+FFFD) stay apart.
import { createHash } from 'node:crypto';
import { MAX_KEY_LENGTH } from '../../harness/safetensors/json.js';

/** `items` by `keyOf`: each key with its items, groups and items in first-seen order. */
export function groupBy<T, K>(items: Iterable<T>, keyOf: (item: T) => K): Array<[K, T[]]> {
  const order: Array<[K, T[]]> = [];
  const byKey = new Map<unknown, [K, T[]]>();
  const byDigest = new Map<string, [K, T[]]>();
  for (const item of items) {
    const key = keyOf(item);
    const long = typeof key === 'string' && key.length > MAX_KEY_LENGTH;
    const [map, slot]: [Map<unknown, [K, T[]]>, unknown] = long ? [byDigest, createHash('sha256').update(key, 'utf16le').digest('base64')] : [byKey, key];
    const group = map.get(slot);
    if (group) group[1].push(item);
    else {
      const created: [K, T[]] = [key, [item]];
      map.set(slot, created);
      order.push(created);
    }
  }
  return order;
}
