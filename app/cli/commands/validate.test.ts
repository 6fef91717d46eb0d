import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../args.js';
import { serializeSafetensors } from '../../../harness/safetensors/write.js';
import { run } from './validate.js';
import { capture } from '../test/capture.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const GOLDEN = join(ROOT, 'golden/hf');

let dir: string;
let good: string;
let trailing: string;
let weird: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'validate-'));
  const valid = serializeSafetensors([['w', { dtype: 'U8', shape: [2], bytes: Uint8Array.from([1, 2]) }]]);
  good = join(dir, 'good.safetensors');
  trailing = join(dir, 'trailing.safetensors');
  weird = join(dir, 'weird.safetensors');
  await writeFile(good, valid);
  await writeFile(trailing, Buffer.concat([valid, Buffer.from('PK\x03\x04')]));
  // A hostile dtype with a line break (echoed in the message) must not break the
  // one-line-per-input report.
  const header = Buffer.from('{"w":{"dtype":"F\\n32","shape":[1],"data_offsets":[0,4]}}');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  await writeFile(weird, Buffer.concat([length, header, Buffer.alloc(4)]));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('validate (in process)', () => {
  it('prints ok for valid files and folders and exits 0', async () => {
    const r = await capture(run, [good, join(GOLDEN, 'mixtral-f32/original'), join(GOLDEN, 'mixtral-bf16/golden.safetensors')]);
    expect(r.code).toBe(0);
    expect(r.out.split('\n').filter(Boolean)).toEqual([`ok ${good}`, `ok ${join(GOLDEN, 'mixtral-f32/original')}`, `ok ${join(GOLDEN, 'mixtral-bf16/golden.safetensors')}`]);
    expect(r.err).toBe('');
  });

  it('prints one line per invalid input with the error class, and exits 1', async () => {
    const missing = join(dir, 'absent.safetensors');
    const r = await capture(run, [trailing, good, missing, join(GOLDEN, 'mixtral-f32'), weird]);
    expect(r.code).toBe(1);
    expect(r.out).toBe(`ok ${good}\n`);
    const lines = r.err.split('\n').filter(Boolean);
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(new RegExp(`^${trailing}: MetadataIncompleteBuffer: `));
    expect(lines[1]).toMatch(new RegExp(`^${missing}: SafetensorIoError: `));
    expect(lines[2]).toMatch(/mixtral-f32: ConfigError: /);
    expect(lines[3]).toMatch(new RegExp(`^${weird}: UnknownDtype: .*F\\\\n32`));
  });

  it('usage errors and --help', async () => {
    await expect(capture(run, [])).rejects.toThrow(UsageError);
    await expect(capture(run, ['--frobnicate', good])).rejects.toThrow(UsageError);
    const help = await capture(run, ['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^usage: moe-conformance validate/);
  });
});

describe('validate: messages a person can act on', () => {
  const copyOf = async (name: string) => {
    const to = join(dir, name);
    await cp(join(GOLDEN, 'mixtral-f32/original'), to, { recursive: true });
    return to;
  };

  it('an index naming a shard outside the folder: the path, never "undefined"', async () => {
    const m = await copyOf('escape');
    const index = join(m, 'model.safetensors.index.json');
    const j = JSON.parse(await readFile(index, 'utf8')) as { weight_map: Record<string, string> };
    j.weight_map[Object.keys(j.weight_map)[0]!] = '../../etc/passwd';
    await writeFile(index, JSON.stringify(j));
    const r = await capture(run, [m]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('UnsafeShardPath');
    expect(r.err).toContain('../../etc/passwd');
    expect(r.err).not.toContain('undefined');
  });

  it('a .safetensors file the index does not name is ignored, as transformers does, and said so', async () => {
    const m = await copyOf('consolidated');
    await writeFile(join(m, 'consolidated.safetensors'), Uint8Array.from([1, 2, 3]));
    const r = await capture(run, [m]);
    expect(r.code).toBe(0);
    expect(r.out).toBe(`ok ${m}\n${m}: ignored: consolidated.safetensors (not in the index)\n`);
    expect(r.err).toBe('');
  });

  it('config.json given as a safetensors file: says it is not one, and what it looks like', async () => {
    const r = await capture(run, [join(GOLDEN, 'mixtral-f32/original/config.json')]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/not a safetensors file \(a JSON file\?\)/);
    expect(r.err).not.toContain('undefined');
  });

  it('a broken config.json is named once', async () => {
    const m = await copyOf('badconfig');
    await writeFile(join(m, 'config.json'), '{"model_type": "mixtral",');
    const r = await capture(run, [m]);
    expect(r.code).toBe(1);
    expect(r.err.split('config.json').length - 1).toBe(1);
  });
});

describe('validate (through the CLI with tsx)', () => {
  const cli = (args: string[]) =>
    promisify(execFile)(process.execPath, ['--import', 'tsx', join(ROOT, 'app/cli/main.ts'), 'validate', ...args], { cwd: ROOT }).then(
      (r) => ({ code: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );

  it('exit codes 0, 1 and 2, never a stack trace', async () => {
    const [ok, bad, usage] = await Promise.all([cli([good]), cli([good, trailing]), cli([])]);
    expect(ok).toMatchObject({ code: 0, stdout: `ok ${good}\n`, stderr: '' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe(bad.stderr.split('\n')[0] + '\n');
    expect(bad.stderr).toMatch(/MetadataIncompleteBuffer/);
    expect(usage.code).toBe(2);
    for (const r of [ok, bad, usage]) expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
