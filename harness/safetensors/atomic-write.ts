// Writing a file so that readers never see half of it: the bytes go to a temporary file in
// the same folder, renamed over the target only once all of them are out. The checkpoint's
// safetensors shards and its JSON files (config, index) are all written this way.
import { randomBytes } from 'node:crypto';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { MoeConformanceError } from '../errors.js';
import { SafetensorIoError } from './errors.js';

/**
 * Writes `path` with `fill`, which writes the whole content through `handle` (and has
 * finished every write it started when it returns or throws). On failure the temporary file
 * is removed and `path` is left as it was; typed errors pass through, file-system errors and
 * whatever else `fill` throws become a SafetensorIoError naming `path`.
 */
export async function writeAtomically(path: string, fill: (handle: FileHandle) => Promise<void>): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx').catch((e: Error) => {
    throw new SafetensorIoError(`cannot create ${temp}: ${e.message}`, { file: path });
  });
  let ok = false;
  try {
    await fill(handle);
    // No fsync, like the reference (tempfile + persist): the rename is what readers rely on.
    await handle.close();
    await rename(temp, path);
    ok = true;
  } catch (e) {
    if (e instanceof MoeConformanceError) throw e;
    throw new SafetensorIoError(`write failed: ${(e as Error)?.message ?? String(e)}`, { file: path });
  } finally {
    if (!ok) {
      await handle.close().catch(() => undefined);
      await unlink(temp).catch(() => undefined);
    }
  }
}
