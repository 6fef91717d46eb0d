// Every command that opens a checkpoint or an input file, given a FIFO (directly, as a
// checkpoint's config.json, or as a shard linked to one): a prompt typed refusal naming the
// file and what it is. Before the fix each of these blocked in open(2) until a writer came;
// the short timeout turns such a hang into a failure, and afterEach releases the stuck open.
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { mkfifo, releaseFifos } from '../../harness/safetensors/test/fifo.js';
import { capture } from './test/capture.js';
import { run as validate } from './commands/validate.js';
import { run as inspect } from './commands/inspect.js';
import { run as load } from './commands/load.js';
import { run as compare } from './commands/compare.js';
import { run as check } from './commands/check.js';

const GOLDEN = join(import.meta.dirname, '../../golden/hf/mixtral-f32/original');
const QUICK = { timeout: 4000 };
const FIFO = 'not a regular file (expected a regular file, found FIFO (named pipe))';

const scratch = mkdtempSync(join(tmpdir(), 'special-files-'));
afterEach(releaseFifos);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let n = 0;
/** A copy of a golden checkpoint with `name` replaced by a FIFO. */
function checkpointWithFifo(name: string): string {
  const dir = join(scratch, `ckpt${n++}`);
  cpSync(GOLDEN, dir, { recursive: true });
  rmSync(join(dir, name));
  mkfifo(join(dir, name));
  return dir;
}

/** What a command said when it failed: its thrown error, or its stderr and exit status. */
async function failure(command: (argv: string[]) => Promise<number>, argv: string[]): Promise<string> {
  try {
    const r = await capture(command, argv);
    expect(r.code).not.toBe(0);
    return r.err;
  } catch (e) {
    return `${(e as Error).name}: ${(e as Error).message}`;
  }
}

describe('a FIFO in a checkpoint', () => {
  it('config.json a FIFO: validate, inspect, load and compare refuse it', QUICK, async () => {
    const dir = checkpointWithFifo('config.json');
    const config = join(dir, 'config.json');
    const out = join(scratch, 'rank.safetensors');
    for (const [command, argv] of [[validate, [dir]], [inspect, [dir]], [load, ['--checkpoint', dir, '--out', out]], [compare, [GOLDEN, dir]]] as const) {
      const said = await failure(command, [...argv]);
      expect(said).toContain(`ConfigError: cannot read: ${FIFO} [file ${config}]`);
    }
  });

  it('a shard that is a symbolic link to a FIFO: validate and load refuse it', QUICK, async () => {
    const dir = join(scratch, `ckpt${n++}`);
    cpSync(GOLDEN, dir, { recursive: true });
    const shard = join(dir, 'model-00002-of-00002.safetensors');
    rmSync(shard);
    symlinkSync(mkfifo(join(scratch, `fifo${n++}`)), shard);
    expect(await failure(validate, [dir])).toContain(`NotARegularFile: ${FIFO} [file ${shard}]`);
    expect(await failure(load, ['--checkpoint', dir, '--out', join(scratch, 'rank2.safetensors')])).toContain(`NotARegularFile: ${FIFO} [file ${shard}]`);
  });
});

describe('a FIFO as an input file', () => {
  it('validate FIFO', QUICK, async () => {
    const fifo = mkfifo(join(scratch, `fifo${n++}`));
    expect(await failure(validate, [fifo])).toBe(`${fifo}: NotARegularFile: ${FIFO} [file ${fifo}]\n`);
  });

  it('check --capabilities FIFO and --expectations FIFO', QUICK, async () => {
    const fifo = mkfifo(join(scratch, `fifo${n++}`));
    expect(await failure(check, ['--loader', 'x', '--capabilities', fifo])).toBe(`CapabilitiesError: cannot read capabilities: ${FIFO} [file ${fifo}]`);
    expect(await failure(check, ['--loader', 'x', '--expectations', fifo])).toBe(`ExpectationsError: cannot read expectations: ${FIFO} [file ${fifo}]`);
  });
});
