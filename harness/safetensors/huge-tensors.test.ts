// Tensors larger than one buffer (2^32 bytes in Node 20), in sparse files: the whole
// tensor is refused with a typed error that says to read it in pieces (it was an untyped
// RangeError), and every piece, offsets past 4 GiB included, reads right.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensorTooLarge } from './errors.js';
import { MAX_BUFFER_BYTES, SafetensorsFile } from './read.js';
import { pattern, writeSparse } from './test/sparse.js';

const BIG = 2 ** 32 + 64;
let dir: string;
let f: SafetensorsFile;
const across = pattern(64, 1); // written across the 4 GiB mark of the big tensor
const tail = pattern(8, 2);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'huge-tensors-'));
  const path = join(dir, 'huge.safetensors');
  await writeSparse(path, [['a.big', { dtype: 'U8', shape: [BIG] }], ['b.tail', { dtype: 'U8', shape: [8] }]], [['a.big', 2 ** 32 - 32, across], ['b.tail', 0, tail]]);
  f = await SafetensorsFile.open(path);
});
afterAll(async () => {
  await f?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('a tensor over 4 GiB', () => {
  it('opens, with offsets past 2^32', () => {
    expect(MAX_BUFFER_BYTES).toBeLessThan(BIG);
    expect(f.info('a.big').dataOffsets).toEqual([0, BIG]);
    expect(f.info('b.tail').dataOffsets).toEqual([BIG, BIG + 8]);
  });

  it('read whole: TensorTooLarge naming the tensor, its size and what to do', async () => {
    const e = await f.readTensor('a.big').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TensorTooLarge);
    expect((e as TensorTooLarge).tensor).toBe('a.big');
    expect((e as Error).message).toMatch(/4294967360 bytes/);
    expect((e as Error).message).toMatch(/pieces/);
    await expect(f.readBytes('a.big', 0, BIG)).rejects.toThrow(TensorTooLarge);
    await expect(f.readRanges('a.big', [[0, 2 ** 31], [2 ** 31, 2 ** 32 + 1]])).rejects.toThrow(TensorTooLarge);
  });

  it('read in pieces: a range across the 4 GiB mark, and the tensor after it', async () => {
    expect(await f.readBytes('a.big', 2 ** 32 - 32, 2 ** 32 + 32)).toEqual(across);
    expect(await f.readRanges('a.big', [[2 ** 32 + 16, 2 ** 32 + 24], [2 ** 32 - 32, 2 ** 32 - 24]])).toEqual(Uint8Array.from([...across.subarray(48, 56), ...across.subarray(0, 8)]));
    expect((await f.readTensor('b.tail')).bytes).toEqual(tail);
  });

  it('streamed in chunks from past the 4 GiB mark to its end', async () => {
    const got: number[] = [];
    let chunks = 0;
    for await (const c of f.chunks('a.big', { begin: 2 ** 32 - 40, chunkBytes: 7 })) {
      expect(c.length).toBeLessThanOrEqual(7);
      got.push(...c);
      chunks++;
    }
    expect(chunks).toBe(Math.ceil(104 / 7));
    expect(Uint8Array.from(got)).toEqual(Uint8Array.from([...new Uint8Array(8), ...across, ...new Uint8Array(32)]));
    await expect(async () => {
      for await (const _ of f.chunks('a.big', { begin: 5, end: BIG + 1 })) void _;
    }).rejects.toThrow();
  });
});
