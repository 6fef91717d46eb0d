import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readBoundedFile, readBoundedFileAs } from './bounded-read.js';
import { NotARegularFile, openRegularFile } from './open-file.js';
import { SafetensorsFile } from './read.js';
import { SafetensorIoError } from './errors.js';
import { serializeSafetensors } from './write.js';
import { MoeConformanceError } from '../errors.js';
import { mkfifo, releaseFifos } from './test/fifo.js';

// Before the fix each of these blocked in open(2) until a writer came: the short timeout
// makes such a hang a failure (afterEach then releases the stuck open so the run ends).
const QUICK = { timeout: 3000 };

let dir: string;
let fifo: string;
let linkToFifo: string;
let regular: string;
let linkToRegular: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'open-file-'));
  fifo = mkfifo(join(dir, 'fifo'));
  linkToFifo = join(dir, 'link.safetensors');
  await symlink(fifo, linkToFifo);
  regular = join(dir, 'w.safetensors');
  await writeFile(regular, serializeSafetensors([['w', { dtype: 'U8', shape: [2], bytes: Uint8Array.from([1, 2]) }]]));
  linkToRegular = join(dir, 'link-to-w.safetensors');
  await symlink(regular, linkToRegular);
  await mkdir(join(dir, 'sub'));
});
afterEach(releaseFifos);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function refusal(p: Promise<unknown>): Promise<MoeConformanceError> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(MoeConformanceError);
  return e as MoeConformanceError;
}

describe('openRegularFile', () => {
  it('opens a regular file, and a symbolic link to one', QUICK, async () => {
    for (const path of [regular, linkToRegular]) {
      const h = await openRegularFile(path);
      expect((await h.stat()).size).toBeGreaterThan(8);
      await h.close();
    }
  });

  it('refuses a FIFO, a link to a FIFO, a directory and a device without blocking, saying what each is', QUICK, async () => {
    for (const [path, kind] of [[fifo, 'FIFO (named pipe)'], [linkToFifo, 'FIFO (named pipe)'], [join(dir, 'sub'), 'directory'], ['/dev/zero', 'character device']] as const) {
      const e = await refusal(openRegularFile(path));
      expect(e).toBeInstanceOf(NotARegularFile);
      expect(e).toMatchObject({ file: path, expected: 'a regular file', found: kind });
      expect(e.message).toBe(`not a regular file (expected a regular file, found ${kind}) [file ${path}]`);
    }
  });
});

describe('every reader opens through it', () => {
  it('readBoundedFile refuses a FIFO', QUICK, async () => {
    expect(await refusal(readBoundedFile(fifo, 1000))).toMatchObject({ name: 'NotARegularFile', file: fifo, found: 'FIFO (named pipe)' });
  });

  it('readBoundedFileAs wraps it in the caller\'s kind, naming the file once', QUICK, async () => {
    const e = await refusal(readBoundedFileAs(fifo, 1000, SafetensorIoError, 'cannot read x'));
    expect(e).toBeInstanceOf(SafetensorIoError);
    expect(e.message).toBe(`cannot read x: not a regular file (expected a regular file, found FIFO (named pipe)) [file ${fifo}]`);
  });

  it('SafetensorsFile.open refuses a FIFO and a symbolic link to one', QUICK, async () => {
    expect(await refusal(SafetensorsFile.open(fifo))).toMatchObject({ name: 'NotARegularFile', file: fifo, found: 'FIFO (named pipe)' });
    expect(await refusal(SafetensorsFile.open(linkToFifo))).toMatchObject({ name: 'NotARegularFile', file: linkToFifo, found: 'FIFO (named pipe)' });
    const ok = await SafetensorsFile.open(regular);
    expect([...ok.tensors.keys()]).toEqual(['w']);
    await ok.close();
  });
});
