// The writer: reference ordering and layout, write -> read identity for every dtype, lazy
// sources in bounded memory, and nothing left behind when a write fails.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DTYPES, dtypeBits, type DType } from './dtypes.js';
import { DuplicateKey, InvalidTensorName, InvalidTensorView, MisalignedSlice, SafetensorIoError, ValidationMismatch } from './errors.js';
import { parseSafetensors, SafetensorsFile } from './read.js';
import { serializeHeader, serializeSafetensors, writeSafetensors, type LazyTensor, type TensorSource } from './write.js';
import type { Tensor } from '../tensor.js';

const seed = Number(process.env.FC_SEED ?? 42);

const tensor = (dtype: DType, shape: number[], fill = 0): Tensor => {
  const elements = shape.reduce((a, b) => a * b, 1);
  return { dtype, shape, bytes: new Uint8Array((elements * dtypeBits(dtype)) / 8).fill(fill) };
};

describe('serializeHeader', () => {
  it('orders by the reference Dtype enum rank descending, then by UTF-8 bytes of the name', () => {
    const { order } = serializeHeader([
      ['b', { dtype: 'BOOL', shape: [1] }],
      ['x', { dtype: 'F32', shape: [1] }],
      ['a', { dtype: 'F32', shape: [1] }],
      ['f64', { dtype: 'F64', shape: [1] }],
      ['i64', { dtype: 'I64', shape: [1] }],
      ['c64', { dtype: 'C64', shape: [1] }],
      ['bf', { dtype: 'BF16', shape: [1] }],
      ['h', { dtype: 'F16', shape: [1] }],
      ['u8', { dtype: 'U8', shape: [1] }],
      ['\u{1F600}', { dtype: 'F32', shape: [1] }],
      ['\uFF61', { dtype: 'F32', shape: [1] }],
    ]);
    // Hand-derived from tensor.rs: enum order ... F16 < BF16 < I32 < U32 < F32 < C64 < F64 <
    // I64 < U64, sorted descending; U+FF61 (EF BD A1) sorts before U+1F600 (F0 9F 98 80).
    expect(order).toEqual(['i64', 'f64', 'c64', 'a', 'x', '\uFF61', '\u{1F600}', 'bf', 'h', 'u8', 'b']);
  });

  it('writes compact JSON, __metadata__ first, padded with spaces to a multiple of 8', () => {
    const { header, offsets } = serializeHeader([['w"\n', { dtype: 'F32', shape: [2] }], ['e', { dtype: 'U8', shape: [0] }]], { format: 'pt' });
    const n = Number(new DataView(header.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    expect(header.length).toBe(8 + n);
    const json = new TextDecoder().decode(header.subarray(8));
    expect(json.trimEnd()).toBe('{"__metadata__":{"format":"pt"},"w\\"\\n":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"U8","shape":[0],"data_offsets":[8,8]}}');
    expect(json.length - json.trimEnd().length).toBeLessThan(8);
    expect(offsets).toEqual(new Map([['w"\n', [0, 8]], ['e', [8, 8]]]));
  });

  it('an empty file is {} padded; metadata keeps its order', () => {
    expect(new TextDecoder().decode(serializeHeader([]).header.subarray(8))).toBe('{}      ');
    const meta = new Map([['z', '1'], ['a', '2']]);
    expect(new TextDecoder().decode(serializeHeader([], meta).header.subarray(8)).trimEnd()).toBe('{"__metadata__":{"z":"1","a":"2"}}');
  });

  it('refuses names and shapes the format cannot hold', () => {
    expect(() => serializeHeader([['__metadata__', { dtype: 'U8', shape: [1] }]])).toThrow(InvalidTensorName);
    expect(() => serializeHeader([['\ud800', { dtype: 'U8', shape: [1] }]])).toThrow(InvalidTensorName);
    expect(() => serializeHeader([], { ['\udc00x']: 'v' })).toThrow(InvalidTensorName);
    expect(() => serializeHeader([['a', { dtype: 'U8', shape: [1] }], ['a', { dtype: 'U8', shape: [1] }]])).toThrow(DuplicateKey);
    expect(() => serializeHeader([['a', { dtype: 'U8', shape: [-1] }]])).toThrow(InvalidTensorView);
    expect(() => serializeHeader([['a', { dtype: 'U8', shape: [1.5] }]])).toThrow(InvalidTensorView);
    expect(() => serializeHeader([['a', { dtype: 'F4', shape: [3] }]])).toThrow(MisalignedSlice);
  });
});

const dtypeArb = fc.constantFrom(...DTYPES);
const shapeArb = (dtype: DType) =>
  fc
    .array(fc.integer({ min: 0, max: 5 }), { maxLength: 4 })
    .map((s) => (dtypeBits(dtype) % 8 !== 0 && s.reduce((a, b) => a * b, 1) % 8 !== 0 ? [...s, 8] : s));
const tensorArb = dtypeArb.chain((dtype) =>
  shapeArb(dtype).chain((shape) => {
    const n = (shape.reduce((a, b) => a * b, 1) * dtypeBits(dtype)) / 8;
    return fc.uint8Array({ minLength: n, maxLength: n }).map((bytes): Tensor => ({ dtype, shape, bytes }));
  }),
);
const tensorsArb = fc.uniqueArray(fc.tuple(fc.string({ unit: 'binary', maxLength: 6 }).filter((s) => s !== '__metadata__'), tensorArb), {
  selector: ([name]) => name,
  maxLength: 6,
});
const metadataArb = fc.option(fc.dictionary(fc.string({ unit: 'binary', maxLength: 4 }), fc.string({ unit: 'binary', maxLength: 4 })), { nil: undefined });

describe('write -> read', () => {
  it('is the identity for random tensors of every dtype and shape (zero-sized and scalars included)', () => {
    fc.assert(
      fc.property(tensorsArb, metadataArb, (tensors, metadata) => {
        const bytes = serializeSafetensors(tensors, metadata);
        const parsed = parseSafetensors(bytes);
        expect(parsed.tensors.size).toBe(tensors.length);
        for (const [name, t] of tensors) {
          const back = parsed.tensor(name);
          expect(back.dtype).toBe(t.dtype);
          expect(back.shape).toEqual(t.shape);
          expect(Buffer.from(back.bytes).equals(Buffer.from(t.bytes))).toBe(true);
        }
        expect(parsed.metadata).toEqual(metadata === undefined ? undefined : new Map(Object.entries(metadata)));
        // And writing what was read gives the same bytes again.
        const again = serializeSafetensors([...parsed.tensors.keys()].map((k) => [k, parsed.tensor(k)]), parsed.metadata);
        expect(Buffer.from(again).equals(Buffer.from(bytes))).toBe(true);
      }),
      { seed, numRuns: 200 },
    );
  });

  it('refuses a tensor whose bytes do not match its shape', () => {
    expect(() => serializeSafetensors([['a', { dtype: 'F32', shape: [2], bytes: new Uint8Array(7) }]])).toThrow(InvalidTensorView);
  });
});

describe('writeSafetensors', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'st-write-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const lazy = (dtype: DType, shape: number[], chunks: Uint8Array[], byteLength = chunks.reduce((a, c) => a + c.length, 0)): LazyTensor => ({
    dtype,
    shape,
    byteLength,
    async *chunks() {
      yield* chunks;
    },
  });

  it('writes the same bytes as serializeSafetensors, from in-memory and lazy sources', async () => {
    const a = tensor('F32', [3, 2], 7);
    const b = tensor('BF16', [5], 9);
    const path = join(dir, 'same.safetensors');
    await writeSafetensors(path, new Map<string, TensorSource>([['a', a], ['b', lazy('BF16', [5], [b.bytes.subarray(0, 3), new Uint8Array(0), b.bytes.subarray(3)])]]), { format: 'pt' });
    const expected = serializeSafetensors([['a', a], ['b', b]], { format: 'pt' });
    expect(Buffer.compare(await readFile(path), Buffer.from(expected))).toBe(0);
    expect(await readdir(dir)).toEqual(['same.safetensors']);
  });

  it('lazy sources cut at random points write the same file as serializeSafetensors', async () => {
    const path = join(dir, 'random.safetensors');
    await fc.assert(
      fc.asyncProperty(tensorsArb, fc.infiniteStream(fc.nat(16)), async (tensors, cuts) => {
        const sources = tensors.map(([name, t]): [string, TensorSource] => {
          const pieces: Uint8Array[] = [];
          for (let at = 0; at < t.bytes.length; ) {
            const next = Math.min(t.bytes.length, at + cuts.next().value);
            pieces.push(t.bytes.subarray(at, next));
            at = next;
          }
          return [name, lazy(t.dtype, t.shape, pieces, t.bytes.length)];
        });
        await writeSafetensors(path, sources, { format: 'pt' });
        expect((await readFile(path)).equals(Buffer.from(serializeSafetensors(tensors, { format: 'pt' })))).toBe(true);
      }),
      { seed, numRuns: 50 },
    );
    await rm(path);
  });

  it('a lazy source that yields too few or too many bytes is ValidationMismatch and leaves no file', async () => {
    const path = join(dir, 'short.safetensors');
    await expect(writeSafetensors(path, [['a', lazy('U8', [4], [new Uint8Array(3)], 4)]])).rejects.toThrow(ValidationMismatch);
    await expect(writeSafetensors(path, [['a', lazy('U8', [4], [new Uint8Array(3), new Uint8Array(3)], 4)]])).rejects.toThrow(ValidationMismatch);
    expect(await readdir(dir)).not.toContain('short.safetensors');
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('a declared length that disagrees with the shape is refused before anything is written', async () => {
    await expect(writeSafetensors(join(dir, 'x.safetensors'), [['a', lazy('F32', [4], [new Uint8Array(12)])]])).rejects.toThrow(InvalidTensorView);
    expect(await readdir(dir)).not.toContain('x.safetensors');
  });

  it('a source that throws, or a folder that does not exist, is an I/O error; an existing file stays intact', async () => {
    const path = join(dir, 'keep.safetensors');
    await writeFile(path, 'old');
    const failing: LazyTensor = {
      dtype: 'U8',
      shape: [2],
      byteLength: 2,
      async *chunks() {
        yield new Uint8Array(1);
        throw new Error('disk on fire');
      },
    };
    await expect(writeSafetensors(path, [['a', failing]])).rejects.toThrow(SafetensorIoError);
    expect((await readFile(path)).toString()).toBe('old');
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    await expect(writeSafetensors(join(dir, 'no', 'such', 'x.safetensors'), [])).rejects.toThrow(SafetensorIoError);
  });

  it('streams a large lazy source in bounded memory', async () => {
    const chunk = new Uint8Array(1 << 20).fill(5);
    const count = 48;
    const source: LazyTensor = {
      dtype: 'U8',
      shape: [count, 1 << 20],
      byteLength: count << 20,
      async *chunks() {
        for (let i = 0; i < count; i++) yield chunk;
      },
    };
    const path = join(dir, 'big.safetensors');
    const before = process.memoryUsage().arrayBuffers;
    await writeSafetensors(path, [['big', source]]);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 << 20);
    const f = await SafetensorsFile.open(path);
    try {
      expect(f.info('big').dataOffsets).toEqual([0, count << 20]);
      expect([...(await f.readBytes('big', (count << 20) - 2, count << 20))]).toEqual([5, 5]);
    } finally {
      await f.close();
      await rm(path);
    }
  });
});
