// config.json and the index are untrusted input too: a size limit checked before reading,
// the strict grammar, typed errors, and memory bounded whatever the JSON's shape (the
// config's generic tree refuses a document it would store at more than 8× its size; the
// index is read straight into its weight map). Each of these was accepted or read whole
// before (a 4 MB config of empty objects built a ~280 MB tree).
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileTooLarge, readBoundedFile } from '../safetensors/bounded-read.js';
import { JsonTooLarge, MAX_KEY_LENGTH, parseStrictJson } from '../safetensors/json.js';
import { CONFIG_MAX_BYTES, ModelConfig } from './config.js';
import { BadShardName, ConfigError, DuplicateIndexKey, InvalidIndex } from './errors.js';
import { INDEX_MAX_BYTES, MAX_SHARD_NAME, parseIndex } from './index-json.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hostile-json-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** `head`, then `unit` repeated to about `size` bytes, then `tail`. */
const repeated = (head: string, unit: string, tail: string, size: number) => head + unit.repeat(Math.floor(size / unit.length)) + tail;

describe('bounded reads', () => {
  it('a file over the limit is refused from its size, before it is read (a sparse 1 GiB file)', async () => {
    const path = join(dir, 'sparse.json');
    const h = await open(path, 'w');
    await h.truncate(2 ** 30);
    await h.close();
    await expect(readBoundedFile(path, 1000)).rejects.toThrow(FileTooLarge);
    await expect(readBoundedFile(path, 1000)).rejects.toThrow(/1000-byte limit.*1073741824 bytes/);
  });

  it('a regular file whose size in stat says less than it holds (/proc: size 0) is refused one byte past the limit', async () => {
    await expect(readBoundedFile('/proc/self/maps', 100)).rejects.toThrow(/more than 100 bytes/);
  });

  it('a file that never ends (a device, size 0 in stat: /dev/zero) is refused before it is read', async () => {
    await expect(readBoundedFile('/dev/zero', 3 << 20)).rejects.toThrow(/not a regular file \(expected a regular file, found character device\)/);
  });

  it('config.json over 16 MiB is a ConfigError naming the limit', async () => {
    const sub = join(dir, 'big-config');
    await rm(sub, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(sub));
    const h = await open(join(sub, 'config.json'), 'w');
    await h.write('{"model_type": "mixtral"}');
    await h.truncate(CONFIG_MAX_BYTES + 1);
    await h.close();
    await expect(ModelConfig.read(sub)).rejects.toThrow(ConfigError);
    await expect(ModelConfig.read(sub)).rejects.toThrow(/16777216-byte limit/);
  });
});

describe('config.json', () => {
  it('a document whose tree would take more than 8× its size is refused while parsing (JsonTooLarge)', () => {
    const text = repeated('{"model_type": "mixtral", "x": [{}', ',{}', ']}', 4e6);
    expect(() => parseStrictJson(text)).toThrow(JsonTooLarge);
    // Realistic documents of any size pass: long keys and values cost little per byte.
    const wide = repeated('{"model_type": "mixtral"', ', "a_rather_long_field_name_%": [1.0800000429153442, 2.5, "text value"]', '}', 1.5e6)
      .split('%')
      .map((part, i) => (i ? `${i}${part}` : part))
      .join('');
    expect(() => parseStrictJson(wide)).not.toThrow();
  });

  it('a config of 4 MB of empty objects is a typed ConfigError', async () => {
    const sub = join(dir, 'objects');
    await import('node:fs/promises').then((fs) => fs.mkdir(sub, { recursive: true }));
    await writeFile(join(sub, 'config.json'), repeated('{"model_type": "mixtral", "x": [{}', ',{}', ']}', 4e6));
    const e = await ModelConfig.read(sub).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).message).toMatch(/8× its size/);
  });

  it(`a key longer than ${MAX_KEY_LENGTH} characters is a ConfigError (V8 hashes such keys by their length alone)`, async () => {
    const sub = join(dir, 'long-key');
    await import('node:fs/promises').then((fs) => fs.mkdir(sub, { recursive: true }));
    await writeFile(join(sub, 'config.json'), `{"model_type": "mixtral", "${'k'.repeat(MAX_KEY_LENGTH + 1)}": 1}`);
    await expect(ModelConfig.read(sub)).rejects.toThrow(ConfigError);
    await expect(ModelConfig.read(sub)).rejects.toThrow(/key of 16384 characters/);
  });

  it('invalid UTF-8 is a ConfigError (it was replaced by U+FFFD silently)', async () => {
    const sub = join(dir, 'utf8');
    await import('node:fs/promises').then((fs) => fs.mkdir(sub, { recursive: true }));
    await writeFile(join(sub, 'config.json'), Buffer.from([...Buffer.from('{"model_type": "mix'), 0xff, ...Buffer.from('tral"}')]));
    await expect(ModelConfig.read(sub)).rejects.toThrow(ConfigError);
  });
});

describe('the index', () => {
  const entry = (i: number) => `"model.layers.${i}.mlp.experts.down_proj": "model-0000${i % 3}-of-00003.safetensors"`;

  it('reads weight_map and total_size; ignores other fields, validating them', () => {
    const idx = parseIndex(`{"metadata": {"total_size": 18446744073709551615, "format": {"x": [1e-5]}}, "extra": [[{}]], "weight_map": {${entry(1)}, ${entry(2)}}}`, 'i.json');
    expect(idx.totalSize).toBe(2n ** 64n - 1n);
    expect([...idx.weightMap.values()]).toEqual(['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors']);
    expect(parseIndex('{"metadata": null, "weight_map": {}}', 'i.json').totalSize).toBeUndefined();
  });

  it.each([
    ['an array', '[]', InvalidIndex],
    ['no weight_map', '{"metadata": {}}', InvalidIndex],
    ['weight_map an array', '{"weight_map": []}', InvalidIndex],
    ['a value not a string', '{"weight_map": {"a": 1}}', InvalidIndex],
    ['a tensor twice', '{"weight_map": {"a": "x.safetensors", "a": "x.safetensors"}}', DuplicateIndexKey],
    ['weight_map twice', '{"weight_map": {}, "weight_map": {}}', DuplicateIndexKey],
    ['total_size twice', '{"metadata": {"total_size": 1, "total_size": 1}, "weight_map": {}}', DuplicateIndexKey],
    ['total_size a float', '{"metadata": {"total_size": 5.0}, "weight_map": {}}', InvalidIndex],
    ['total_size 2^64', '{"metadata": {"total_size": 18446744073709551616}, "weight_map": {}}', InvalidIndex],
    ['total_size a string', '{"metadata": {"total_size": "5"}, "weight_map": {}}', InvalidIndex],
    ['metadata a number', '{"metadata": 5, "weight_map": {}}', InvalidIndex],
    ['an ignored field 200 deep', `{"x": ${'['.repeat(200)}${']'.repeat(200)}, "weight_map": {}}`, InvalidIndex],
    ['trailing characters', '{"weight_map": {}} x', InvalidIndex],
    ['invalid UTF-8', Buffer.from([0x7b, 0xff, 0x7d]), InvalidIndex],
    // Names V8 would hash by their length alone (json.ts MAX_KEY_LENGTH): refused as read, before they are map keys.
    ['a tensor name of 16,384 characters', `{"weight_map": {"${'t'.repeat(MAX_KEY_LENGTH + 1)}": "x.safetensors"}}`, InvalidIndex],
    [`a shard name longer than ${MAX_SHARD_NAME} characters`, `{"weight_map": {"t": "${'s'.repeat(MAX_SHARD_NAME - 11)}.safetensors"}}`, BadShardName],
  ] as const)('%s: refused with its typed error', (_name, text, error) => {
    const e = (() => {
      try {
        parseIndex(text, 'i.json');
      } catch (x) {
        return x;
      }
    })();
    expect(e).toBeInstanceOf(error);
    expect((e as InvalidIndex).file).toBe('i.json');
  });

  it(`a shard name of ${MAX_SHARD_NAME} characters is read`, () => {
    const name = `${'s'.repeat(MAX_SHARD_NAME - 12)}.safetensors`;
    expect([...parseIndex(`{"weight_map": {"t": "${name}"}}`, 'i.json').weightMap.values()]).toEqual([name]);
  });

  it('an index of 4 MB of ignored empty objects, and one of 100,000 entries, parse (no tree is built)', () => {
    expect(parseIndex(repeated('{"weight_map": {}, "x": [{}', ',{}', ']}', 4e6), 'i.json').weightMap.size).toBe(0);
    const big = parseIndex(`{"weight_map": {${Array.from({ length: 100_000 }, (_, i) => entry(i)).join(', ')}}}`, 'i.json');
    expect(big.weightMap.size).toBe(100_000);
    expect(INDEX_MAX_BYTES).toBeGreaterThan(100_000 * 100);
  });
});
