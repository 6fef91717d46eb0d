// The reader against malformed files (one exact error class each), the golden fixtures
// written by the Rust/Python safetensors, and random mutations of valid files.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  DuplicateKey,
  HeaderTooLarge,
  HeaderTooSmall,
  InvalidHeader,
  InvalidHeaderDeserialization,
  InvalidHeaderLength,
  InvalidHeaderStart,
  InvalidOffset,
  InvalidSlice,
  MetadataIncompleteBuffer,
  MisalignedSlice,
  SafetensorError,
  SafetensorIoError,
  TensorInvalidInfo,
  TensorNotFound,
  UnknownDtype,
  ValidationOverflow,
} from './errors.js';
import { parseHeader, parseSafetensors, SafetensorsFile } from './read.js';
import { serializeSafetensors } from './write.js';

const seed = Number(process.env.FC_SEED ?? 42);
const GOLDEN = new URL('../../golden/hf/', import.meta.url).pathname;

/** A file from raw header bytes (length prefix computed unless given) and a data section. */
function file(header: string | Uint8Array, data: number | Uint8Array = 0, n?: bigint): Uint8Array {
  const h = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, n ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}

const t = (name: string, dtype: string, shape: unknown[], offsets: unknown[]) =>
  `${JSON.stringify(name)}:{"dtype":"${dtype}","shape":[${shape.join(',')}],"data_offsets":[${offsets.join(',')}]}`;
const one = (dtype = 'F32', shape: unknown[] = [2], offsets: unknown[] = [0, 8]) => `{${t('w', dtype, shape, offsets)}}`;
const nested = (depth: number) => `{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":${'['.repeat(depth)}${']'.repeat(depth)}}}`;

type Case = [label: string, bytes: Uint8Array, error: new (...a: never[]) => SafetensorError];

const BAD: Case[] = [
  ['zero-length file', new Uint8Array(0), HeaderTooSmall],
  ['seven bytes', new Uint8Array(7), HeaderTooSmall],
  ['header length 2^64-1', file('{}', 0, (1n << 64n) - 1n), HeaderTooLarge],
  ['header length 100,000,001', file('{}', 0, 100_000_001n), HeaderTooLarge],
  ['header length past the end', file('{}', 0, 100n), InvalidHeaderLength],
  ['header length 99,999,999 in a tiny file', file('{}', 0, 99_999_999n), InvalidHeaderLength],
  ['invalid UTF-8 byte', file(Uint8Array.from([0x7b, 0xff, 0x7d])), InvalidHeader],
  ['overlong UTF-8', file(Uint8Array.from([0x7b, 0x22, 0xc0, 0x80, 0x22, 0x7d])), InvalidHeader],
  ['UTF-8-encoded surrogate', file(Uint8Array.from([0x7b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d])), InvalidHeader],
  ['truncated UTF-8 sequence', file(Uint8Array.from([0x7b, 0x22, 0xe2, 0x82, 0x22, 0x7d])), InvalidHeader],
  ['UTF-8 BOM', file('\ufeff{}'), InvalidHeaderStart],
  ['array at top level', file('[]'), InvalidHeaderStart],
  ['empty header', file(''), InvalidHeaderStart],
  ['NUL padding', file('{}\0\0\0\0\0\0'), InvalidHeaderDeserialization],
  ['trailing garbage after the object', file('{} x'), InvalidHeaderDeserialization],
  ['two objects', file('{}{}'), InvalidHeaderDeserialization],
  ['truncated JSON', file('{"w":'), InvalidHeaderDeserialization],
  ['comment', file('{/**/}'), InvalidHeaderDeserialization],
  ['trailing comma', file(`{${t('w', 'U8', [1], [0, 1])},}`, 1), InvalidHeaderDeserialization],
  ['single quotes', file("{'w':1}"), InvalidHeaderDeserialization],
  ['NaN literal', file('{"w":NaN}'), InvalidHeaderDeserialization],
  ['raw control character in a name', file('{"a\tb":{"dtype":"U8","shape":[],"data_offsets":[0,1]}}', 1), InvalidHeaderDeserialization],
  ['lone leading surrogate escape', file('{"\\ud800":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1), InvalidHeaderDeserialization],
  ['lone trailing surrogate escape', file('{"\\udc00":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1), InvalidHeaderDeserialization],
  ['leading surrogate then non-surrogate escape', file('{"\\ud800\\u0041":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1), InvalidHeaderDeserialization],
  ['invalid escape', file('{"\\x41":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1), InvalidHeaderDeserialization],
  ['nesting 128 deep in an unknown field', file(nested(126), 1), InvalidHeaderDeserialization],
  ['nesting 100,000 deep', file('{"w":' + '['.repeat(100_000)), InvalidHeaderDeserialization],
  ['duplicate tensor name', file(`{${t('w', 'U8', [1], [0, 1])},${t('w', 'U8', [1], [1, 2])}}`, 2), DuplicateKey],
  ['duplicate field inside a tensor', file('{"w":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1), DuplicateKey],
  ['duplicate metadata key', file('{"__metadata__":{"format":"pt","format":"np"}}'), DuplicateKey],
  ['duplicate __metadata__', file('{"__metadata__":{},"__metadata__":{}}'), DuplicateKey],
  ['unknown dtype', file(one('F128')), UnknownDtype],
  ['lower-case dtype', file(one('f32'), 8), UnknownDtype],
  ['dtype not a string', file('{"w":{"dtype":7,"shape":[],"data_offsets":[0,1]}}', 1), InvalidHeaderDeserialization],
  ['missing shape', file('{"w":{"dtype":"U8","data_offsets":[0,1]}}', 1), InvalidHeaderDeserialization],
  ['missing data_offsets', file('{"w":{"dtype":"U8","shape":[1]}}', 1), InvalidHeaderDeserialization],
  ['missing dtype', file('{"w":{"shape":[1],"data_offsets":[0,1]}}', 1), InvalidHeaderDeserialization],
  ['three data_offsets', file(one('U8', [1], [0, 1, 1]), 1), InvalidHeaderDeserialization],
  ['data_offsets not an array', file('{"w":{"dtype":"U8","shape":[1],"data_offsets":{"0":0}}}', 1), InvalidHeaderDeserialization],
  ['negative shape entry', file(one('U8', [-1], [0, 1]), 1), InvalidHeaderDeserialization],
  ['negative zero', file(one('U8', ['-0'], [0, 0])), InvalidHeaderDeserialization],
  ['float shape entry', file(one('U8', ['1.0'], [0, 1]), 1), InvalidHeaderDeserialization],
  ['exponent in an offset', file(one('U8', [1], [0, '1e0']), 1), InvalidHeaderDeserialization],
  ['leading zero', file(one('U8', ['01'], [0, 1]), 1), InvalidHeaderDeserialization],
  ['offset 2^64', file(one('U8', [1], [0, '18446744073709551616']), 1), InvalidHeaderDeserialization],
  ['offset of a million digits', file(one('U8', [1], [0, '9'.repeat(1_000_000)]), 1), InvalidHeaderDeserialization],
  ['shape entry a string', file(one('U8', ['"1"'], [0, 1]), 1), InvalidHeaderDeserialization],
  ['tensor entry a string', file('{"w":"F32"}'), InvalidHeaderDeserialization],
  ['__metadata__ with tensor fields', file(`{${t('__metadata__', 'U8', [1], [0, 1])}}`, 1), InvalidHeaderDeserialization],
  ['__metadata__ with a number value', file('{"__metadata__":{"format":1}}'), InvalidHeaderDeserialization],
  ['__metadata__ an array', file('{"__metadata__":["pt"]}'), InvalidHeaderDeserialization],
  ['element count 2^64', file(one('F32', [4294967296, 4294967296], [0, 0])), ValidationOverflow],
  ['element count overflow before a zero dimension', file(one('U8', [4294967296, 4294967296, 0], [0, 0])), ValidationOverflow],
  ['bit count 2^67', file(one('F32', [4611686018427387904], [0, 0])), ValidationOverflow],
  ['shape entry above 2^53 with zero elements', file(one('U8', [1152921504606846976, 0], [0, 0])), ValidationOverflow],
  ['F4 with an odd element count', file(one('F4', [3], [0, 2]), 2), MisalignedSlice],
  ['F6 that ends mid-byte', file(one('F6_E2M3', [3], [0, 3]), 3), MisalignedSlice],
  ['byte length disagrees with shape', file(one('F32', [2], [0, 4]), 4), TensorInvalidInfo],
  ['offsets past the end of the file', file(one('F32', [1], [0, 4]), 2), MetadataIncompleteBuffer],
  ['hole between tensors', file(`{${t('a', 'U8', [4], [0, 4])},${t('b', 'U8', [4], [8, 12])}}`, 12), InvalidOffset],
  ['overlapping tensors', file(`{${t('a', 'U8', [8], [0, 8])},${t('b', 'U8', [8], [4, 12])}}`, 12), InvalidOffset],
  ['two tensors on the same bytes', file(`{${t('a', 'U8', [4], [0, 4])},${t('b', 'U8', [4], [0, 4])}}`, 4), InvalidOffset],
  ['end before begin', file(one('U8', [0], [4, 0]), 4), InvalidOffset],
  ['first tensor not at 0', file(one('U8', [4], [4, 8]), 8), InvalidOffset],
  ['trailing bytes (polyglot)', file(one('U8', [4], [0, 4]), 9), MetadataIncompleteBuffer],
  ['data but no tensors', file('{}', 1), MetadataIncompleteBuffer],
];

describe('bad input: each malformed file raises its exact error class', () => {
  it('has at least 40 cases', () => expect(BAD.length).toBeGreaterThanOrEqual(40));
  it.each(BAD)('%s', (_label, bytes, error) => {
    let thrown: unknown;
    try {
      parseSafetensors(bytes, 'bad.safetensors');
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(error);
    expect((thrown as Error).constructor).toBe(error);
    expect((thrown as SafetensorError).file).toBe('bad.safetensors');
  });
});

describe('what a refusal holds', () => {
  // The error of a shape of a million entries listed them all (a 20 MB header's took 500 MiB).
  it.each([
    ['a shape entry above 2^53', [...Array(1_000_000).fill(1), '1152921504606846976', 0], /^ValidationOverflow: shape entry is not a safe integer \(found 1000002 dimensions\)/],
    ['an element count above 2^64', [...Array(1_000_000).fill(1), 4294967296, 4294967296], /^ValidationOverflow: element count overflows u64 \(found 1000002 dimensions\)/],
  ])('%s in a shape of a million entries: the count of entries, not the list', (_label, shape, message) => {
    const e = (() => {
      try {
        parseSafetensors(file(one('U8', shape, [0, 0])), 'big.safetensors');
      } catch (x) {
        return x as SafetensorError;
      }
    })();
    expect(`${e?.name}: ${e?.message}`).toMatch(message);
    expect(e?.found).toBe('1000002 dimensions');
  });

  it('a short shape is listed, with the exact value of an entry above 2^53', () => {
    expect(() => parseSafetensors(file(one('U8', ['9007199254740993', 0], [0, 0])))).toThrow(/found \["9007199254740993","0"\]/);
  });
});

describe('edge cases the reference accepts', () => {
  it('leading whitespace before the object, padding after it', () => {
    expect(parseSafetensors(file(` \n\t\r${one('U8', [1], [0, 1])}   `, 1)).tensors.get('w')?.shape).toEqual([1]);
  });
  it('unknown fields in a tensor entry are ignored, nesting up to 127 deep (serde_json)', () => {
    expect(parseSafetensors(file(nested(125), 1)).tensors.has('w')).toBe(true);
  });
  it('a tensor named __proto__ is just a name', () => {
    const p = parseSafetensors(file(`{${t('__proto__', 'U8', [2], [0, 2])},${t('constructor', 'U8', [], [2, 3])}}`, Uint8Array.from([1, 2, 3])));
    expect([...p.tensors.keys()]).toEqual(['__proto__', 'constructor']);
    expect([...p.tensor('__proto__').bytes]).toEqual([1, 2]);
    expect({}.constructor).toBe(Object);
  });
  it('null __metadata__ means none; escaped names and surrogate pairs decode', () => {
    const p = parseSafetensors(file(`{"__metadata__":null,"a\\u00e9\\ud83d\\ude00\\n":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}`));
    expect(p.metadata).toBeUndefined();
    expect([...p.tensors.keys()]).toEqual(['aé😀\n']);
  });
  it('zero-sized and scalar tensors, tensors listed out of offset order', () => {
    const p = parseSafetensors(file(`{${t('s', 'F32', [], [4, 8])},${t('z', 'F32', [0, 5], [0, 0])},${t('u', 'U8', [0], [0, 0])},${t('a', 'I16', [2], [0, 4])}}`, 8));
    expect(p.tensors.get('s')).toEqual({ name: 's', dtype: 'F32', shape: [], dataOffsets: [4, 8] });
    expect(p.tensor('z').bytes.length).toBe(0);
  });
  it('TensorNotFound names the tensor and the file', () => {
    const p = parseSafetensors(file('{}'), 'x.safetensors');
    expect(() => p.tensor('missing')).toThrow(TensorNotFound);
    expect(() => p.tensor('missing')).toThrow(/missing.*x\.safetensors|x\.safetensors.*missing/);
  });
  it('parseHeader validates from a prefix plus the total length', () => {
    const whole = file(one('U8', [4], [0, 4]), 4);
    const prefix = whole.subarray(0, whole.length - 4);
    expect(parseHeader(prefix, 'f', whole.length).dataStart).toBe(whole.length - 4);
    expect(() => parseHeader(prefix, 'f', whole.length + 1)).toThrow(MetadataIncompleteBuffer);
    expect(() => parseHeader(prefix.subarray(0, 12), 'f', whole.length)).toThrow(InvalidHeaderLength);
  });
});

async function* safetensorsUnder(dir: string): AsyncGenerator<string> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* safetensorsUnder(p);
    else if (e.name.endsWith('.safetensors')) yield p;
  }
}

describe('golden fixtures (written by the Rust/Python safetensors)', () => {
  it('every file validates, from memory and from disk, and re-serializes byte for byte', async () => {
    const problems: string[] = [];
    let count = 0;
    for await (const path of safetensorsUnder(GOLDEN)) {
      const bytes = new Uint8Array(await readFile(path));
      const parsed = parseSafetensors(bytes, path);
      // Checkpoint shards carry {"format":"pt"}; golden.safetensors was saved without metadata.
      const meta = JSON.stringify(parsed.metadata && [...parsed.metadata]);
      if (meta !== (path.endsWith('golden.safetensors') ? undefined : '[["format","pt"]]')) problems.push(`${path}: metadata ${meta}`);
      const again = serializeSafetensors([...parsed.tensors.keys()].map((k) => [k, parsed.tensor(k)]), parsed.metadata);
      if (!Buffer.from(again).equals(Buffer.from(bytes))) problems.push(`${path}: re-serialized bytes differ`);
      const f = await SafetensorsFile.open(path);
      try {
        if (JSON.stringify([...f.tensors]) !== JSON.stringify([...parsed.tensors])) problems.push(`${path}: disk header differs`);
        const last = [...f.tensors.keys()].pop()!;
        if (!Buffer.from((await f.readTensor(last)).bytes).equals(Buffer.from(parsed.tensor(last).bytes))) problems.push(`${path}: ${last} bytes differ`);
      } finally {
        await f.close();
      }
      count++;
    }
    expect(problems).toEqual([]);
    expect(count).toBeGreaterThanOrEqual(24);
  });
});

describe('SafetensorsFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'st-read-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads byte ranges and coalesced multi-ranges, bounds-checked', async () => {
    const data = Uint8Array.from({ length: 20 }, (_, i) => i);
    const path = join(dir, 'r.safetensors');
    await writeFile(path, file(`{${t('a', 'U8', [4], [0, 4])},${t('b', 'U8', [16], [4, 20])}}`, data));
    const f = await SafetensorsFile.open(path);
    try {
      expect([...(await f.readBytes('b', 2, 5))]).toEqual([6, 7, 8]);
      expect([...(await f.readBytes('b', 3, 3))]).toEqual([]);
      expect([...(await f.readRanges('b', [[0, 2], [2, 4], [10, 12], [1, 2]]))]).toEqual([4, 5, 6, 7, 14, 15, 5]);
      expect([...(await f.readRanges('a', []))]).toEqual([]);
      await expect(f.readBytes('a', 0, 5)).rejects.toThrow(InvalidSlice);
      await expect(f.readBytes('a', 3, 2)).rejects.toThrow(InvalidSlice);
      await expect(f.readBytes('a', -1, 2)).rejects.toThrow(InvalidSlice);
      await expect(f.readBytes('a', 0.5, 2)).rejects.toThrow(InvalidSlice);
      await expect(f.readRanges('b', [[0, 1], [15, 17]])).rejects.toThrow(InvalidSlice);
      await expect(f.readTensor('nope')).rejects.toThrow(TensorNotFound);
      expect(() => f.info('nope')).toThrow(TensorNotFound);
    } finally {
      await f.close();
    }
  });

  it('readRangesInto fills exactly its destination, and refuses one of another length', async () => {
    const data = Uint8Array.from({ length: 20 }, (_, i) => i);
    const path = join(dir, 'into.safetensors');
    await writeFile(path, file(`{${t('b', 'U8', [20], [0, 20])}}`, data));
    const f = await SafetensorsFile.open(path);
    try {
      const out = new Uint8Array(9).fill(0xee);
      f.readRangesInto('b', [[3, 5], [17, 20], [0, 1]], out.subarray(2, 8));
      expect([...out]).toEqual([0xee, 0xee, 3, 4, 17, 18, 19, 0, 0xee]);
      expect(() => f.readRangesInto('b', [[0, 4]], new Uint8Array(3))).toThrow(InvalidSlice);
      expect(() => f.readRangesInto('b', [[0, 21]], new Uint8Array(21))).toThrow(InvalidSlice);
    } finally {
      await f.close();
    }
  });

  it('readRanges equals the concatenation of the ranges sliced from the whole tensor', async () => {
    const size = 300_000; // larger than the gap the reader reads through
    const data = Uint8Array.from({ length: size }, (_, i) => (i * 7 + (i >> 8)) & 0xff);
    const path = join(dir, 'ranges.safetensors');
    await writeFile(path, file(one('U8', [size], [0, size]), data));
    const f = await SafetensorsFile.open(path);
    const range = fc.tuple(fc.nat(size), fc.nat(size)).map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as [number, number]);
    const near = fc.tuple(fc.nat(size - 1), fc.nat(100), fc.nat(100)).map(([a, len, gap]) => [a, len, gap] as const);
    // Runs of nearby forward ranges (the shape of a column slice), plus arbitrary ranges.
    const rows = fc.array(near, { maxLength: 20 }).map((xs) => {
      const out: Array<[number, number]> = [];
      let at = xs[0]?.[0] ?? 0;
      for (const [, len, gap] of xs) {
        const b = Math.min(at + gap, size);
        const e = Math.min(b + len, size);
        out.push([b, e]);
        at = e;
      }
      return out;
    });
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.oneof(range.map((r) => [r]), rows), { maxLength: 6 }), async (groups) => {
          const ranges = groups.flat();
          const want = Buffer.concat(ranges.map(([b, e]) => data.subarray(b, e)));
          expect(Buffer.from(await f.readRanges('w', ranges)).equals(want)).toBe(true);
        }),
        { seed, numRuns: 200 },
      );
    } finally {
      await f.close();
    }
  });

  it('a missing file and a file truncated after opening are I/O errors', async () => {
    await expect(SafetensorsFile.open(join(dir, 'absent.safetensors'))).rejects.toThrow(SafetensorIoError);
    const path = join(dir, 'shrinks.safetensors');
    await writeFile(path, file(one('U8', [64], [0, 64]), 64));
    const f = await SafetensorsFile.open(path);
    try {
      await writeFile(path, new Uint8Array(10));
      await expect(f.readTensor('w')).rejects.toThrow(SafetensorIoError);
    } finally {
      await f.close();
    }
  });

  it('every bad input gives the same error class from disk as from memory', async () => {
    for (const [label, bytes, error] of BAD) {
      const path = join(dir, 'bad.safetensors');
      await writeFile(path, bytes);
      await expect(SafetensorsFile.open(path), label).rejects.toThrow(error);
    }
  });

  it('hostile header lengths are refused before anything the size of N is allocated', async () => {
    const path = join(dir, 'hostile.safetensors');
    await fc.assert(
      fc.asyncProperty(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.integer({ min: 8, max: 64 }), async (n, size) => {
        const bytes = new Uint8Array(size).fill(0x20);
        new DataView(bytes.buffer).setBigUint64(0, n, true);
        await writeFile(path, bytes);
        const before = process.memoryUsage().arrayBuffers;
        const outcome = await SafetensorsFile.open(path).then(
          async (f) => (await f.close(), 'valid'),
          (e: unknown) => e,
        );
        // Whatever happens, no buffer anywhere near N bytes was made.
        expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1 << 20);
        if (n > 100_000_000n) expect(outcome).toBeInstanceOf(HeaderTooLarge);
        else if (n + 8n > BigInt(size)) expect(outcome).toBeInstanceOf(InvalidHeaderLength);
        else expect(outcome === 'valid' || outcome instanceof SafetensorError).toBe(true);
      }),
      { seed, numRuns: 60 },
    );
  });
});

describe('random inputs', () => {
  const valid = serializeSafetensors(
    [
      ['a', { dtype: 'F32', shape: [2, 3], bytes: new Uint8Array(24).fill(1) }],
      ['b', { dtype: 'BF16', shape: [4], bytes: new Uint8Array(8).fill(2) }],
      ['c', { dtype: 'U8', shape: [], bytes: new Uint8Array(1).fill(3) }],
    ],
    { format: 'pt' },
  );

  const outcome = (bytes: Uint8Array): 'valid' | 'typed' => {
    try {
      parseSafetensors(bytes);
      return 'valid';
    } catch (e) {
      if (e instanceof SafetensorError) return 'typed';
      throw e;
    }
  };

  it('byte mutations of a valid file give a valid parse or a SafetensorError', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: -16, max: 16 }),
        (edits, resize) => {
          const bytes = new Uint8Array(Math.max(0, valid.length + resize));
          bytes.set(valid.subarray(0, bytes.length));
          for (const [i, v] of edits) if (i < bytes.length) bytes[i] = v;
          outcome(bytes);
        },
      ),
      { seed, numRuns: 2000 },
    );
  });

  it('random headers give a valid parse or a SafetensorError', () => {
    const num = fc.oneof(fc.nat(40).map(String), fc.constantFrom('-1', '1.5', '1e3', '18446744073709551616', '4294967296', '0'));
    const entry = fc.record({
      dtype: fc.constantFrom('"F32"', '"U8"', '"F4"', '"BF16"', '"X"', '3'),
      shape: fc.array(num, { maxLength: 3 }).map((a) => `[${a.join(',')}]`),
      offsets: fc.array(num, { minLength: 1, maxLength: 3 }).map((a) => `[${a.join(',')}]`),
    });
    const header = fc.dictionary(fc.string({ maxLength: 4 }), entry, { maxKeys: 4 }).map(
      (d) => `{${Object.entries(d).map(([k, e]) => `${JSON.stringify(k)}:{"dtype":${e.dtype},"shape":${e.shape},"data_offsets":${e.offsets}}`).join(',')}}`,
    );
    fc.assert(
      fc.property(header, fc.nat(64), (h, data) => {
        outcome(file(h, data));
      }),
      { seed, numRuns: 1000 },
    );
  });

  it('random JSON-ish text gives a valid parse or a SafetensorError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.json(), fc.string({ unit: fc.constantFrom(...'{}[]":,0123-.e\\u ntrfals'.split('')), maxLength: 60 })), (h) => {
        outcome(file(h));
      }),
      { seed, numRuns: 1000 },
    );
  });
});
