// Reading a whole untrusted file (config.json, an index, a results or expectations file)
// with a size limit: a 10 GB "config.json" must not be read into memory. Only a regular
// file is opened (open-file.ts: a FIFO, a directory or a device is refused without blocking).
// The size is checked before reading, and the read stops one byte past the limit whatever
// the size said (a file may grow while it is read).
import { openRegularFile } from './open-file.js';
import { MoeConformanceError, type ErrorContext } from '../errors.js';

/** A file above the limit its kind has (spec §5); the reader names the file and both sizes. */
export class FileTooLarge extends MoeConformanceError {}

const STEP = 1 << 20;

/** The bytes of `path`, at most `maxBytes` of them, else FileTooLarge; not a regular file: NotARegularFile; I/O errors are thrown as they come. */
export async function readBoundedFile(path: string, maxBytes: number): Promise<Uint8Array> {
  const handle = await openRegularFile(path);
  try {
    const size = (await handle.stat()).size;
    const tooLarge = (found: string): never => {
      throw new FileTooLarge(`file larger than the ${maxBytes}-byte limit for its kind`, { file: path, expected: `<= ${maxBytes} bytes`, found });
    };
    if (size > maxBytes) tooLarge(`${size} bytes`);
    let out = new Uint8Array(Math.min(maxBytes + 1, Math.max(size + 1, STEP)));
    let n = 0;
    for (;;) {
      if (n === out.length) {
        if (n > maxBytes) tooLarge(`more than ${maxBytes} bytes`);
        const grown = new Uint8Array(Math.min(maxBytes + 1, 2 * out.length));
        grown.set(out);
        out = grown;
      }
      const { bytesRead } = await handle.read(out, n, out.length - n, null);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > maxBytes) tooLarge(`more than ${maxBytes} bytes`);
    }
    return out.subarray(0, n);
  } finally {
    await handle.close();
  }
}

/**
 * readBoundedFile for a caller with its own error kind: any failure (too large, not a regular
 * file, an I/O error) becomes one `Err` saying `${what}: <why>`, naming the file once and
 * keeping what was expected and found.
 */
export async function readBoundedFileAs(
  path: string,
  maxBytes: number,
  Err: new (message: string, context: ErrorContext) => MoeConformanceError,
  what = 'cannot read',
): Promise<Uint8Array> {
  try {
    return await readBoundedFile(path, maxBytes);
  } catch (e) {
    if (e instanceof MoeConformanceError) throw new Err(`${what}: ${e.reason}`, { file: path, expected: e.expected, found: e.found });
    throw new Err(`${what}: ${(e as Error).message}`, { file: path });
  }
}
