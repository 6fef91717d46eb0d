// The one atomic write under the safetensors writer and the checkpoint's JSON files: all or
// nothing at the target path, and no temporary left behind either way.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeAtomically } from './atomic-write.js';
import { SafetensorIoError, ValidationMismatch } from './errors.js';

let dir: string;
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'atomic-write-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

describe('writeAtomically', () => {
  it('replaces the target with everything fill wrote and leaves nothing else', async () => {
    const path = join(dir, 'ok.json');
    await writeFile(path, 'old');
    await writeAtomically(path, (h) => h.writeFile('new contents'));
    expect(await readFile(path, 'utf8')).toBe('new contents');
    expect(await readdir(dir)).toEqual(['ok.json']);
  });

  it('a failing fill leaves the old file intact and no temporary; untyped errors become SafetensorIoError, typed ones pass', async () => {
    const path = join(dir, 'keep.json');
    await writeFile(path, 'old');
    const half = (error: Error) => async (h: import('node:fs/promises').FileHandle) => {
      await h.writeFile('half');
      throw error;
    };
    await expect(writeAtomically(path, half(new Error('disk full')))).rejects.toSatisfy((e) => e instanceof SafetensorIoError && (e as SafetensorIoError).message.includes('disk full'));
    const typed = new ValidationMismatch('short source', { file: path });
    await expect(writeAtomically(path, half(typed))).rejects.toBe(typed);
    expect(await readFile(path, 'utf8')).toBe('old');
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('a folder that does not exist is an I/O error naming the target', async () => {
    const path = join(dir, 'missing', 'x.json');
    await expect(writeAtomically(path, (h) => h.writeFile('x'))).rejects.toSatisfy((e) => e instanceof SafetensorIoError && (e as SafetensorIoError).file === path);
  });
});
