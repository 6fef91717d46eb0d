// Reading a whole untrusted file (config.json, an index, a results or expectations file)
// with a size limit: a 10 GB "config.json", or a FIFO that never ends, must not be read
// into memory. The size is checked before reading, and the read stops one byte past the
// limit whatever the size said (special files report 0, files grow).
import { open } from 'node:fs/promises';
import { MoeConformanceError } from '../errors.js';

/** A file above the limit its kind has (spec §5); the reader names the file and both sizes. */
export class FileTooLarge extends MoeConformanceError {}

const STEP = 1 << 20;

/** The bytes of `path`, at most `maxBytes` of them, else FileTooLarge; I/O errors are thrown as they come. */
export async function readBoundedFile(path: string, maxBytes: number): Promise<Uint8Array> {
  const handle = await open(path, 'r');
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
