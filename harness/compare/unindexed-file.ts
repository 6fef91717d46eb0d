// The fingerprint of a loader that globs `*.safetensors` instead of reading the files the
// index names (vLLM issue #40765, mlx-vlm issue #1329): its tensors are those of a file the
// index does not name. Given the rank as the reference loads it from that file alone, every
// tensor the loader got wrong and that equals the file's, byte for byte, is named.
import { sameTensor as same, type Canonical } from '../tensor.js';
import type { Diagnosis } from './diagnose.js';

/**
 * `unindexed-file-read` for each tensor of `found` that differs from `expected` and is the
 * one of `unindexed` (the same rank loaded from the files in `files` alone, which the index
 * does not name), in `found`'s order.
 */
export function unindexedFileRead(expected: Canonical, found: Canonical, unindexed: Canonical, files: readonly string[]): Diagnosis[] {
  const out: Diagnosis[] = [];
  for (const [name, t] of found) {
    const want = expected.get(name);
    const other = unindexed.get(name);
    if (!want || !other || same(want, t) || !same(other, t)) continue;
    out.push({ tensor: name, kind: 'unindexed-file-read', detail: `the values of ${files.join(' and ')}, which the index does not name (the loader read every *.safetensors file, not the files model.safetensors.index.json names)` });
  }
  return out;
}
