// Opening an untrusted path for reading: only a regular file (a symbolic link is followed) is
// read. A FIFO would block open(2) until some writer appears (forever, usually), a directory
// or a device is not a file of any format here. The open never blocks (O_NONBLOCK), and what
// it opened is checked with fstat on the same descriptor, so no rename between a check and
// the open can slip anything else in. Every reader of files goes through here: bounded reads
// (config.json, an index, capabilities, expectations, results) and safetensors files.
import { constants } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { MoeConformanceError } from '../errors.js';

/** The path is not a regular file (a FIFO, a directory, a device, a socket); `found` says which. */
export class NotARegularFile extends MoeConformanceError {}

const FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

/** What a non-regular file is, in words. */
function fileKind(s: Stats | undefined): string {
  if (!s) return 'special file';
  if (s.isFile()) return 'regular file';
  if (s.isDirectory()) return 'directory';
  if (s.isFIFO()) return 'FIFO (named pipe)';
  if (s.isCharacterDevice()) return 'character device';
  if (s.isBlockDevice()) return 'block device';
  if (s.isSocket()) return 'socket';
  return 'special file';
}

/** A read handle on `path` when it is a regular file, else NotARegularFile; I/O errors are thrown as they come. */
export async function openRegularFile(path: string): Promise<FileHandle> {
  let handle: FileHandle;
  try {
    handle = await open(path, FLAGS);
  } catch (e) {
    // A socket cannot be opened at all (ENXIO): say what it is rather than the errno.
    if ((e as NodeJS.ErrnoException).code === 'ENXIO') throw notRegular(path, fileKind(await stat(path).catch(() => undefined)));
    throw e;
  }
  let kind: string | undefined;
  try {
    const s = await handle.stat();
    if (!s.isFile()) kind = fileKind(s);
  } catch (e) {
    await handle.close();
    throw e;
  }
  if (kind !== undefined) {
    await handle.close();
    throw notRegular(path, kind);
  }
  return handle;
}

function notRegular(file: string, found: string): NotARegularFile {
  return new NotARegularFile('not a regular file', { file, expected: 'a regular file', found });
}
