// writeCheckpointDir: transformers' file names and greedy sharding, round trips through
// CheckpointDir with both plans, and byte equality with the golden folders' shards and index.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { dtypeBits, type DType } from '../safetensors/dtypes.js';
import type { Tensor } from '../tensor.js';
import { CheckpointDir } from './directory.js';
import { ConfigError, ShardPlanError } from './errors.js';
import { pythonJson } from './pyjson.js';
import { writeCheckpointDir } from './write.js';

const GOLDEN = new URL('../../golden/hf/', import.meta.url).pathname;
const bytes = (n: number, fill: number): Tensor => ({ dtype: 'U8', shape: [n], bytes: new Uint8Array(n).fill(fill) });
const CONFIG = { model_type: 'mixtral', hidden_size: 4 };

let root: string;
let counter = 0;
const fresh = () => join(root, `w${counter++}`);
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ckpt-write-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function contents(dir: string): Promise<Map<string, number[]>> {
  const c = await CheckpointDir.open(dir);
  try {
    return new Map(await Promise.all(c.tensorNames().map(async (n) => [n, [...(await c.read(n)).bytes]] as [string, number[]])));
  } finally {
    await c.close();
  }
}

describe('writeCheckpointDir', () => {
  it('writes one model.safetensors when everything fits, config.json with indent 2', async () => {
    const dir = fresh();
    await writeCheckpointDir(dir, CONFIG, [['a', bytes(3, 1)], ['b', bytes(2, 2)]]);
    expect((await readdir(dir)).sort()).toEqual(['config.json', 'model.safetensors']);
    expect(await readFile(join(dir, 'config.json'), 'utf8')).toBe('{\n  "hidden_size": 4,\n  "model_type": "mixtral"\n}\n');
    expect(await contents(dir)).toEqual(new Map([['a', [1, 1, 1]], ['b', [2, 2]]]));
  });

  it('fills shards greedily in the given order; a tensor above the limit gets its own shard', async () => {
    const dir = fresh();
    // 40 + 40 fit in 80; 30 tips over and starts a shard; 100 > 80 goes alone, before it.
    await writeCheckpointDir(dir, CONFIG, [['a', bytes(40, 1)], ['b', bytes(40, 2)], ['c', bytes(30, 3)], ['d', bytes(100, 4)]], { maxShardBytes: 80 });
    const index = JSON.parse(await readFile(join(dir, 'model.safetensors.index.json'), 'utf8')) as unknown;
    expect(index).toEqual({
      metadata: { total_size: 210 },
      weight_map: { a: 'model-00001-of-00003.safetensors', b: 'model-00001-of-00003.safetensors', c: 'model-00003-of-00003.safetensors', d: 'model-00002-of-00003.safetensors' },
    });
    expect((await contents(dir)).get('d')).toEqual(new Array(100).fill(4));
  });

  it('follows an explicit assignment and round-trips through CheckpointDir', async () => {
    const dir = fresh();
    const tensors = new Map<string, Tensor>([['x', bytes(1, 9)], ['__proto__', bytes(2, 8)], ['y', { dtype: 'F32', shape: [], bytes: Uint8Array.from([0, 0, 128, 63]) }]]);
    await writeCheckpointDir(dir, CONFIG, tensors, { assignment: new Map([['x', 1], ['__proto__', 0], ['y', 1]]), files: 2 });
    const c = await CheckpointDir.open(dir);
    try {
      expect(c.files).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
      expect(c.info('__proto__').file).toBe(join(dir, 'model-00001-of-00002.safetensors'));
      expect(c.info('y')).toMatchObject({ dtype: 'F32', shape: [], file: join(dir, 'model-00002-of-00002.safetensors') });
      expect([...(await c.read('y')).bytes]).toEqual([0, 0, 128, 63]);
    } finally {
      await c.close();
    }
  });

  it('replaces an earlier save, removing its stale shards and index', async () => {
    const dir = fresh();
    await writeCheckpointDir(dir, CONFIG, [['a', bytes(40, 1)], ['b', bytes(40, 2)]], { maxShardBytes: 40 });
    await writeFile(join(dir, 'notes.txt'), 'kept');
    await writeCheckpointDir(dir, CONFIG, [['a', bytes(1, 5)]]);
    expect((await readdir(dir)).sort()).toEqual(['config.json', 'model.safetensors', 'notes.txt']);
    expect(await contents(dir)).toEqual(new Map([['a', [5]]]));
  });

  it('refuses plans it cannot write and configs Python could not read back strictly', async () => {
    const t: Array<[string, Tensor]> = [['a', bytes(1, 1)], ['b', bytes(1, 2)]];
    await expect(writeCheckpointDir(fresh(), CONFIG, t, { assignment: new Map([['a', 0]]), files: 2 })).rejects.toThrow(ShardPlanError);
    await expect(writeCheckpointDir(fresh(), CONFIG, t, { assignment: new Map([['a', 0], ['b', 2]]), files: 2 })).rejects.toThrow(ShardPlanError);
    await expect(writeCheckpointDir(fresh(), CONFIG, t, { assignment: new Map([['a', 0], ['b', 0]]), files: 2 })).rejects.toThrow(ShardPlanError);
    await expect(writeCheckpointDir(fresh(), CONFIG, t, { assignment: new Map(), files: 0 })).rejects.toThrow(ShardPlanError);
    await expect(writeCheckpointDir(fresh(), CONFIG, t, { maxShardBytes: 0 })).rejects.toThrow(ShardPlanError);
    await expect(writeCheckpointDir(fresh(), { ...CONFIG, x: { y: NaN } }, t)).rejects.toThrow(/x\.y/);
    await expect(writeCheckpointDir(fresh(), { ...CONFIG, x: Infinity }, t)).rejects.toThrow(ConfigError);
  });

  it('reproduces the golden shards byte for byte, and the index but for total_parameters', async () => {
    const problems: string[] = [];
    let compared = 0;
    for (const model of await readdir(GOLDEN, { withFileTypes: true })) {
      if (!model.isDirectory()) continue;
      for (const layout of ['original', 'fused']) {
        const src = join(GOLDEN, model.name, layout);
        const c = await CheckpointDir.open(src);
        const out = fresh();
        try {
          const names = c.tensorNames();
          const tensors = await Promise.all(names.map(async (n) => [n, await c.read(n)] as [string, Tensor]));
          const assignment = new Map(names.map((n) => [n, c.files.findIndex((f) => join(src, f) === c.info(n).file)]));
          await writeCheckpointDir(out, c.config.raw, tensors, { assignment, files: c.files.length });
        } finally {
          await c.close();
        }
        for (const f of await readdir(src)) {
          if (f === 'config.json') continue; // JS numbers cannot keep Python's 1.0 vs 1
          const [want, got] = await Promise.all([readFile(join(src, f)), readFile(join(out, f))]);
          const same = f.endsWith('.json') ? want.toString().replace(/\n {4}"total_parameters": \d+,/, '') === got.toString() : want.equals(got);
          if (!same) problems.push(join(src, f));
        }
        compared++;
      }
    }
    expect(problems).toEqual([]);
    expect(compared).toBeGreaterThanOrEqual(48);
  });
});

describe('pythonJson (json.dumps(indent=2, sort_keys=True))', () => {
  it('matches Python for nesting, key order, escapes and floats', () => {
    // Expected strings are what CPython 3 prints for the same values.
    expect(pythonJson({ b: [1, 2], a: {}, c: [], d: { z: null, y: true } })).toBe(
      '{\n  "a": {},\n  "b": [\n    1,\n    2\n  ],\n  "c": [],\n  "d": {\n    "y": true,\n    "z": null\n  }\n}',
    );
    expect(pythonJson('é\u{1F600}\n"\u007f')).toBe('"\\u00e9\\ud83d\\ude00\\n\\"\u007f"');
    expect([1e-6, 0.5, 1e-4, 1.5e-5, 1e16 + 2, 123.25, 2 ** 60, -0.001, 2 ** 53 - 1].map((x) => pythonJson(x))).toEqual([
      '1e-06',
      '0.5',
      '0.0001',
      '1.5e-05',
      '1.0000000000000002e+16',
      '123.25',
      '1.152921504606847e+18',
      '-0.001',
      '9007199254740991',
    ]);
    expect(pythonJson(1.5e300)).toBe('1.5e+300');
    expect(pythonJson({ '\uFF61': 1, '\u{1F600}': 2, B: 3, a: 4 })).toBe('{\n  "B": 3,\n  "a": 4,\n  "\\uff61": 1,\n  "\\ud83d\\ude00": 2\n}');
  });
});

describe('write -> open -> read over random tensors and shard plans', () => {
  const seed = Number(process.env.FC_SEED ?? 42);
  const tensorArb = fc
    .tuple(fc.constantFrom<DType>('F32', 'BF16', 'U8', 'I64'), fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }))
    .chain(([dtype, shape]) => {
      const n = shape.reduce((a, b) => a * b, 1) * (dtypeBits(dtype) / 8);
      return fc.uint8Array({ minLength: n, maxLength: n }).map((bytes): Tensor => ({ dtype, shape, bytes }));
    });
  const entries = fc.uniqueArray(fc.tuple(fc.string({ minLength: 1, maxLength: 5 }).filter((s) => s !== '__metadata__'), tensorArb), { selector: ([n]) => n, minLength: 1, maxLength: 8 });

  it('both plans give back every tensor, byte for byte, in files that respect the plan', async () => {
    await fc.assert(
      fc.asyncProperty(entries, fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 4 }), fc.infiniteStream(fc.nat()), async (list, maxShardBytes, files, picks) => {
        const want = new Map(list.map(([n, t]) => [n, [...t.bytes]]));
        const greedy = fresh();
        await writeCheckpointDir(greedy, CONFIG, list, { maxShardBytes });
        expect(await contents(greedy)).toEqual(want);
        const g = await CheckpointDir.open(greedy);
        try {
          // Each shard stays within the limit unless it holds one tensor that alone exceeds it.
          const perFile = new Map<string, number[]>();
          for (const n of g.tensorNames()) perFile.set(g.info(n).file, [...(perFile.get(g.info(n).file) ?? []), g.info(n).dataOffsets[1] - g.info(n).dataOffsets[0]]);
          for (const sizes of perFile.values()) expect(sizes.length === 1 || sizes.reduce((a, b) => a + b, 0) <= maxShardBytes).toBe(true);
        } finally {
          await g.close();
        }
        const k = Math.min(files, list.length);
        // Every file gets one tensor first, the rest go anywhere.
        const assignment = new Map(list.map(([n], i) => [n, i < k ? i : picks.next().value % k]));
        const explicit = fresh();
        await writeCheckpointDir(explicit, CONFIG, list, { assignment, files: k });
        const c = await CheckpointDir.open(explicit);
        try {
          expect(c.files.length).toBe(k);
          for (const [n, i] of assignment) expect(c.info(n).file).toBe(join(explicit, k === 1 ? 'model.safetensors' : c.files[i]!));
        } finally {
          await c.close();
        }
        expect(await contents(explicit)).toEqual(want);
      }),
      { seed, numRuns: 40 },
    );
  });
});
