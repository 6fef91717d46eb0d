// Safetensors files of any size without writing their data: the header, then a hole
// (truncate) that reads as zeros, with a few patches of known bytes. For tests of tensors
// over 4 GiB on a machine that cannot write or hold one.
import { open } from 'node:fs/promises';
import type { DType } from '../dtypes.js';
import { serializeHeader } from '../write.js';

export interface SparseTensor {
  dtype: DType;
  shape: number[];
}

/**
 * Write `path` with these tensors (in the writer's order) and `patches`: [tensor, byte offset
 * in it, bytes]. Returns each tensor's offsets in the data section.
 */
export async function writeSparse(path: string, tensors: Array<[string, SparseTensor]>, patches: Array<[string, number, Uint8Array]> = []): Promise<Map<string, [number, number]>> {
  const { header, offsets, order } = serializeHeader(tensors);
  const end = order.length ? offsets.get(order[order.length - 1]!)![1] : 0;
  const h = await open(path, 'w');
  try {
    await h.write(header, 0, header.length, 0);
    await h.truncate(header.length + end);
    for (const [name, at, bytes] of patches) await h.write(bytes, 0, bytes.length, header.length + offsets.get(name)![0] + at);
  } finally {
    await h.close();
  }
  return offsets;
}

/** `n` bytes of a pattern that differs from position to position and from `salt` to salt. */
export function pattern(n: number, salt: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (Math.imul(i + 1, 2654435761) + salt * 40503) >>> 24 || 1);
}
