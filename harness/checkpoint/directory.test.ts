// CheckpointDir on the golden folders and on hand-made broken folders, one per refusal.
import { mkdtemp, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NotARegularFile } from '../safetensors/open-file.js';
import { mkfifo, releaseFifos } from '../safetensors/test/fifo.js';
import { MetadataIncompleteBuffer, SafetensorError, TensorNotFound } from '../safetensors/errors.js';
import { parseSafetensors } from '../safetensors/read.js';
import { serializeSafetensors } from '../safetensors/write.js';
import type { Tensor } from '../tensor.js';
import { CheckpointDir } from './directory.js';
import {
  AmbiguousCheckpoint,
  BadShardName,
  ConfigError,
  DuplicateIndexKey,
  DuplicateTensor,
  InvalidIndex,
  MissingShard,
  NoWeights,
  TensorMissingFromShard,
  TensorNotIndexed,
  TotalSizeMismatch,
  UnsafeShardPath,
} from './errors.js';

const GOLDEN = new URL('../../golden/hf/', import.meta.url).pathname;
const u8 = (...v: number[]): Tensor => ({ dtype: 'U8', shape: [v.length], bytes: Uint8Array.from(v) });
const shard = (entries: Array<[string, Tensor]>) => serializeSafetensors(entries, { format: 'pt' });
const CONFIG = '{"model_type": "mixtral"}';
const S1 = 'model-00001-of-00002.safetensors';
const S2 = 'model-00002-of-00002.safetensors';
const index = (map: string, total = 5) => `{"metadata": {"total_size": ${total}}, "weight_map": {${map}}}`;
const GOOD_MAP = `"a": "${S1}", "b": "${S1}", "c": "${S2}"`;

let root: string;
let counter = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ckpt-dir-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A folder from file name -> content. */
async function folder(files: Record<string, string | Uint8Array>): Promise<string> {
  const dir = join(root, `d${counter++}`);
  await mkdir(dir);
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
  return dir;
}

/** A valid two-shard folder, with some files replaced or added. */
const sharded = (over: Record<string, string | Uint8Array> = {}) =>
  folder({ 'config.json': CONFIG, [S1]: shard([['a', u8(1, 2)], ['b', u8(3)]]), [S2]: shard([['c', u8(4, 5)]]), 'model.safetensors.index.json': index(GOOD_MAP), ...over });

async function refusal(dir: Promise<string>): Promise<unknown> {
  return CheckpointDir.open(await dir).then(
    async (c) => (await c.close(), 'opened'),
    (e: unknown) => e,
  );
}

describe('CheckpointDir', () => {
  it('opens every golden folder; tensors, index and shards agree', async () => {
    let count = 0;
    for (const model of await readdir(GOLDEN, { withFileTypes: true })) {
      if (!model.isDirectory()) continue;
      for (const layout of ['original', 'fused']) {
        const dir = join(GOLDEN, model.name, layout);
        const c = await CheckpointDir.open(dir);
        try {
          const present = (await readdir(dir)).filter((f) => f.endsWith('.safetensors')).sort();
          expect(c.files).toEqual(present);
          if (present.length > 1) {
            const idx = JSON.parse(await readFile(join(dir, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
            expect(c.tensorNames()).toEqual(Object.keys(idx.weight_map).sort());
            for (const [name, file] of Object.entries(idx.weight_map)) expect(c.info(name).file).toBe(join(dir, file));
          }
          const name = c.tensorNames()[0]!;
          const direct = parseSafetensors(new Uint8Array(await readFile(c.info(name).file))).tensor(name);
          expect(Buffer.from((await c.read(name)).bytes).equals(Buffer.from(direct.bytes))).toBe(true);
          expect(c.config.modelType.length).toBeGreaterThan(0);
        } finally {
          await c.close();
        }
        count++;
      }
    }
    expect(count).toBeGreaterThanOrEqual(48);
  });

  it('reads tensors, byte ranges and multi-ranges across shards', async () => {
    const c = await CheckpointDir.open(await sharded());
    try {
      expect(c.tensorNames()).toEqual(['a', 'b', 'c']);
      expect(c.has('c')).toBe(true);
      expect(c.has('d')).toBe(false);
      expect(c.info('c')).toMatchObject({ dtype: 'U8', shape: [2], file: join(c.dir, S2) });
      expect([...(await c.read('a')).bytes]).toEqual([1, 2]);
      expect([...(await c.readBytes('c', 1, 2))]).toEqual([5]);
      expect([...(await c.readRanges('c', [[1, 2], [0, 1]]))]).toEqual([5, 4]);
      expect(() => c.info('d')).toThrow(TensorNotFound);
      await expect(Promise.resolve().then(() => c.read('d'))).rejects.toThrow(TensorNotFound);
    } finally {
      await c.close();
    }
  });

  it('opens a single model.safetensors, and several un-indexed files', async () => {
    const one = await CheckpointDir.open(await folder({ 'config.json': CONFIG, 'model.safetensors': shard([['a', u8(1)]]) }));
    expect(one.files).toEqual(['model.safetensors']);
    await one.close();
    const two = await CheckpointDir.open(await folder({ 'config.json': CONFIG, 'x.safetensors': shard([['a', u8(1)]]), 'y.safetensors': shard([['b', u8(2)]]) }));
    expect(two.tensorNames()).toEqual(['a', 'b']);
    await two.close();
  });

  it('follows symbolic links, as in the Hugging Face hub cache', async () => {
    const blobs = await sharded();
    const dir = await folder({});
    for (const f of ['config.json', S1, S2, 'model.safetensors.index.json']) await symlink(join(blobs, f), join(dir, f));
    const c = await CheckpointDir.open(dir);
    expect(c.files).toEqual([S1, S2]);
    expect([...(await c.read('c')).bytes]).toEqual([4, 5]);
    await c.close();
  });

  // transformers and vLLM's default loader read only the files the index names; Mistral's
  // repos ship consolidated.safetensors (Mistral-native names) beside the HF shards.
  it('with an index, a .safetensors file the index does not name is ignored and listed', async () => {
    const dir = await sharded({
      'consolidated.safetensors': shard([['a', u8(9, 9)], ['z', u8(7)]]),
      'model-stale.safetensors': shard([]),
    });
    const c = await CheckpointDir.open(dir);
    expect(c.files).toEqual([S1, S2]);
    expect(c.ignored).toEqual(['consolidated.safetensors', 'model-stale.safetensors']);
    expect(c.tensorNames()).toEqual(['a', 'b', 'c']);
    expect([...(await c.read('a')).bytes]).toEqual([1, 2]);
    await c.close();
  });

  // transformers 5.17 reads model.safetensors whenever it exists (the index only without it);
  // vLLM and mlx-vlm read the files the index names: neither reading is the checkpoint's.
  it('an index beside a model.safetensors it does not name is refused as ambiguous, naming both', async () => {
    const e = await refusal(sharded({ 'model.safetensors': shard([['a', u8(9, 9)]]) }));
    expect(e).toBeInstanceOf(AmbiguousCheckpoint);
    expect(e).toMatchObject({ found: 'both', expected: 'model.safetensors or model.safetensors.index.json, or an index that names model.safetensors' });
    expect((e as Error).message).toMatch(/transformers reads model\.safetensors, vLLM and others the files the index names .*\[file .*model\.safetensors\]$/);
    // An index that names model.safetensors itself is no ambiguity.
    const dir = await folder({ 'config.json': CONFIG, 'model.safetensors': shard([['a', u8(1)]]), 'model.safetensors.index.json': index('"a": "model.safetensors"', 1) });
    const c = await CheckpointDir.open(dir);
    expect(c.files).toEqual(['model.safetensors']);
    await c.close();
  });

  it('without an index every *.safetensors file is read, and none is ignored', async () => {
    const dir = await folder({ 'config.json': CONFIG, 'x.safetensors': shard([['a', u8(1)]]), 'y.safetensors': shard([['b', u8(2)]]) });
    const c = await CheckpointDir.open(dir);
    expect(c.files).toEqual(['x.safetensors', 'y.safetensors']);
    expect(c.ignored).toEqual([]);
    expect(c.tensorNames()).toEqual(['a', 'b']);
    await c.close();
  });

  const REFUSALS: Array<[string, () => Promise<string>, new (...a: never[]) => Error]> = [
    ['index names a missing shard', () => sharded({ 'model.safetensors.index.json': index(`${GOOD_MAP}, "d": "model-00003-of-00003.safetensors"`) }), MissingShard],
    ['shard path with ..', () => sharded({ 'model.safetensors.index.json': index(`${GOOD_MAP}, "d": "../x.safetensors"`) }), UnsafeShardPath],
    ['shard path is ..', () => sharded({ 'model.safetensors.index.json': index(`${GOOD_MAP}, "d": ".."`) }), UnsafeShardPath],
    ['absolute shard path', () => sharded({ 'model.safetensors.index.json': index(`${GOOD_MAP}, "d": "/etc/x.safetensors"`) }), UnsafeShardPath],
    ['drive letter', () => sharded({ 'model.safetensors.index.json': index(`${GOOD_MAP}, "d": "C:x.safetensors"`) }), UnsafeShardPath],
    ['backslash', () => sharded({ 'model.safetensors.index.json': index(`${GOOD_MAP}, "d": "sub\\\\x.safetensors"`) }), UnsafeShardPath],
    ['shard not ending in .safetensors', () => sharded({ 'model.safetensors.index.json': index(`${GOOD_MAP}, "d": "model.bin"`) }), BadShardName],
    ['tensor listed twice in the index JSON', () => sharded({ 'model.safetensors.index.json': index(`${GOOD_MAP}, "a": "${S2}"`) }), DuplicateIndexKey],
    ['tensor stored in two shards', () => sharded({ [S2]: shard([['c', u8(4, 5)], ['a', u8(1, 2)]]) }), DuplicateTensor],
    ['index maps a tensor to a shard without it', () => sharded({ 'model.safetensors.index.json': index(`"a": "${S1}", "b": "${S2}", "c": "${S2}"`) }), TensorMissingFromShard],
    ['index lists a tensor no shard has', () => sharded({ 'model.safetensors.index.json': index(`${GOOD_MAP}, "z": "${S2}"`) }), TensorMissingFromShard],
    ['shard holds a tensor the index omits', () => sharded({ 'model.safetensors.index.json': index(`"a": "${S1}", "c": "${S2}"`) }), TensorNotIndexed],
    ['total_size off by one', () => sharded({ 'model.safetensors.index.json': index(GOOD_MAP, 6) }), TotalSizeMismatch],
    ['total_size a float', () => sharded({ 'model.safetensors.index.json': index(GOOD_MAP).replace('5', '5.0') }), InvalidIndex],
    ['no weight_map', () => sharded({ 'model.safetensors.index.json': '{"metadata": {}}' }), InvalidIndex],
    ['weight_map value not a string', () => sharded({ 'model.safetensors.index.json': index(`${GOOD_MAP}, "d": 1`) }), InvalidIndex],
    ['index not JSON', () => sharded({ 'model.safetensors.index.json': '{"weight_map": {' }), InvalidIndex],
    ['index an array', () => sharded({ 'model.safetensors.index.json': '[]' }), InvalidIndex],
    ['same tensor in two files without an index', () => folder({ 'config.json': CONFIG, 'x.safetensors': shard([['a', u8(1)]]), 'y.safetensors': shard([['a', u8(1)]]) }), DuplicateTensor],
    ['no weights at all', () => folder({ 'config.json': CONFIG }), NoWeights],
    ['no config.json', () => folder({ 'model.safetensors': shard([]) }), ConfigError],
    ['config without model_type', () => folder({ 'config.json': '{"hidden_size": 4}', 'model.safetensors': shard([]) }), ConfigError],
    ['config with a duplicate key', () => folder({ 'config.json': '{"model_type": "a", "model_type": "b"}', 'model.safetensors': shard([]) }), ConfigError],
    ['a corrupt shard', () => sharded({ [S2]: new Uint8Array([...shard([['c', u8(4, 5)]]), 0]) }), MetadataIncompleteBuffer],
  ];

  it.each(REFUSALS)('refuses: %s', async (_label, make, error) => {
    const e = await refusal(make());
    expect(e).toBeInstanceOf(error);
    expect((e as Error).constructor).toBe(error);
    expect((e as SafetensorError).file).toBeTypeOf('string');
  });
});

describe('CheckpointDir: an entry that is not a regular file is refused, saying what it is', () => {
  // Before the fix a FIFO blocked open(2) forever (afterEach releases such an open) and a
  // directory or FIFO index was passed over as if absent.
  const QUICK = { timeout: 3000 };
  afterEach(releaseFifos);
  const FIFO = 'FIFO (named pipe)';

  async function withFifo(name: string, over: Record<string, string | Uint8Array> = {}, make = sharded): Promise<string> {
    const dir = await make(over);
    await rm(join(dir, name), { force: true });
    mkfifo(join(dir, name));
    return dir;
  }
  async function withDir(name: string): Promise<string> {
    const dir = await sharded();
    await rm(join(dir, name), { force: true });
    await mkdir(join(dir, name));
    return dir;
  }
  const single = (over: Record<string, string | Uint8Array> = {}) => folder({ 'config.json': CONFIG, 'model.safetensors': shard([['a', u8(1)]]), ...over });

  it('an unindexed file beside an index is never opened: a corrupt one or a FIFO is ignored', QUICK, async () => {
    const dir = await sharded({ 'stale.safetensors': Uint8Array.from([1, 2, 3]) });
    mkfifo(join(dir, 'pipe.safetensors'));
    const c = await CheckpointDir.open(dir);
    expect(c.ignored).toEqual(['pipe.safetensors', 'stale.safetensors']);
    await c.close();
  });

  it('config.json a FIFO: ConfigError', QUICK, async () => {
    const dir = await withFifo('config.json');
    const e = (await refusal(Promise.resolve(dir))) as ConfigError;
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).toBe(`cannot read: not a regular file (expected a regular file, found ${FIFO}) [file ${join(dir, 'config.json')}]`);
  });

  it('the index a directory or a FIFO: InvalidIndex, not a folder of un-indexed shards', QUICK, async () => {
    for (const dir of [await withDir('model.safetensors.index.json'), await withFifo('model.safetensors.index.json')]) {
      const e = (await refusal(Promise.resolve(dir))) as InvalidIndex;
      expect(e).toBeInstanceOf(InvalidIndex);
      expect(e.message).toMatch(/^cannot read: not a regular file \(expected a regular file, found (directory|FIFO \(named pipe\))\) \[file [^\]]*model\.safetensors\.index\.json\]$/);
    }
  });

  it('a shard the index names that is a directory or a FIFO: what it is, not "not in the folder"', QUICK, async () => {
    for (const [dir, kind] of [[await withDir(S2), 'directory'], [await withFifo(S2), FIFO]] as const) {
      const e = await refusal(Promise.resolve(dir));
      expect(e).toBeInstanceOf(NotARegularFile);
      expect(e).toMatchObject({ file: join(dir, S2), found: kind });
    }
  });

  it('an un-indexed shard that is a FIFO, or a symbolic link to one', QUICK, async () => {
    const dir = await withFifo('model.safetensors', {}, single);
    expect(await refusal(Promise.resolve(dir))).toMatchObject({ name: 'NotARegularFile', file: join(dir, 'model.safetensors'), found: FIFO });
    const linked = await single();
    await rm(join(linked, 'model.safetensors'));
    await symlink(join(dir, 'model.safetensors'), join(linked, 'model.safetensors'));
    expect(await refusal(Promise.resolve(linked))).toMatchObject({ name: 'NotARegularFile', file: join(linked, 'model.safetensors'), found: FIFO });
  });
});

describe('CheckpointDir: index messages', () => {
  it('an empty weight_map says the index lists no tensors (both it and the shards exist)', async () => {
    const dir = await sharded({ 'model.safetensors.index.json': index('', 0) });
    const e = (await refusal(Promise.resolve(dir))) as NoWeights;
    expect(e).toBeInstanceOf(NoWeights);
    expect(e.message).toBe(`the index lists no tensors (its weight_map is empty) (expected at least one tensor, found 0 tensors) [file ${join(dir, 'model.safetensors.index.json')}]`);
  });

  it('a JSON syntax or duplicate-key error names the index once', async () => {
    for (const [text, error] of [['{"weight_map": {', InvalidIndex], [`{"weight_map": {${GOOD_MAP}}, "weight_map": {}}`, DuplicateIndexKey]] as const) {
      const dir = await sharded({ 'model.safetensors.index.json': text });
      const e = (await refusal(Promise.resolve(dir))) as Error;
      expect(e).toBeInstanceOf(error);
      expect(e.message.split(`file ${join(dir, 'model.safetensors.index.json')}`)).toHaveLength(2);
    }
  });
});
