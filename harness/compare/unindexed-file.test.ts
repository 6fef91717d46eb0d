import { describe, expect, it } from 'vitest';
import type { Canonical, Tensor } from '../tensor.js';
import { unindexedFileRead } from './unindexed-file.js';

const u8 = (...v: number[]): Tensor => ({ dtype: 'U8', shape: [v.length], bytes: Uint8Array.from(v) });
const set = (o: Record<string, Tensor>): Canonical => new Map(Object.entries(o));

describe('unindexedFileRead', () => {
  const expected = set({ a: u8(1, 2), b: u8(3), c: u8(5) });
  const unindexed = set({ a: u8(9, 9), b: u8(3), c: u8(7) });
  it('names each wrong tensor that is the unindexed file\'s, and no other', () => {
    // a: the decoy's; b: right (the decoy happens to agree); c: wrong, but not the decoy's either.
    const found = set({ a: u8(9, 9), b: u8(3), c: u8(6) });
    expect(unindexedFileRead(expected, found, unindexed, ['consolidated.safetensors'])).toEqual([
      { tensor: 'a', kind: 'unindexed-file-read', detail: expect.stringContaining('the values of consolidated.safetensors, which the index does not name') },
    ]);
  });
  it('says nothing of a rank that is right, or of another dtype or shape with the same bytes', () => {
    expect(unindexedFileRead(expected, expected, unindexed, ['x.safetensors'])).toEqual([]);
    const reshaped = set({ a: { dtype: 'U8', shape: [1, 2], bytes: Uint8Array.from([9, 9]) } });
    expect(unindexedFileRead(expected, reshaped, unindexed, ['x.safetensors'])).toEqual([]);
  });
});
