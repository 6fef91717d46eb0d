import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkfifo, releaseFifos } from '../safetensors/test/fifo.js';
import { WHOLE, type ParallelRequest } from '../tensor.js';
import {
  CommandLineError,
  LoaderCrashed,
  LoaderOutputInvalid,
  LoaderRefused,
  LoaderTimedOut,
  commandLoader,
  killRunningLoaders,
  protocolArgs,
  readOutput,
  resolveSelf,
  splitCommand,
} from './command-loader.js';

const fakes = fileURLToPath(new URL('./test/fake-loaders/', import.meta.url));
const fake = (name: string) => `${JSON.stringify(process.execPath)} ${join(fakes, name)}`;
/** Dead or a zombie (PID 1 of a container may never reap it). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\S+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}
const req: ParallelRequest = { tpSize: 2, tpRank: 1, epSize: 3, epRank: 2, epPlacement: 'round_robin' };

describe('splitCommand', () => {
  it('splits words and honours simple quoting without expanding anything', () => {
    expect(splitCommand(`python3  -m 'my loader' "a \\"b\\" c" x\\ y $HOME;rm`)).toEqual(['python3', '-m', 'my loader', 'a "b" c', 'x y', '$HOME;rm']);
    expect(splitCommand(`''`)).toEqual(['']);
  });
  it('refuses unbalanced quotes and empty commands', () => {
    expect(() => splitCommand(`a 'b`)).toThrow(CommandLineError);
    expect(() => splitCommand(`a "b`)).toThrow(CommandLineError);
    expect(() => splitCommand(`a \\`)).toThrow(CommandLineError);
    expect(() => splitCommand('   ')).toThrow(CommandLineError);
  });
});

describe('resolveSelf', () => {
  it('maps moe-conformance to this package\'s CLI and leaves other commands alone', () => {
    expect(resolveSelf(['python3', 'x.py'])).toEqual(['python3', 'x.py']);
    const self = resolveSelf(['moe-conformance', 'load']);
    expect(self[0]).toBe(process.execPath);
    expect(self.at(-1)).toBe('load');
    expect(self.some((w) => /app[/\\]cli[/\\]main\.(ts|js)$/.test(w))).toBe(true);
  });
});

describe('commandLoader', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'moe-cmd-test-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('passes the protocol arguments and reads the output with the strict reader', async () => {
    const out = await commandLoader(fake('echo.mjs'), { timeoutMs: 20_000 }).load(dir, req);
    expect([...out.keys()].sort()).toEqual(['argv', 'rank']);
    const argv = JSON.parse(Buffer.from(out.get('argv')!.bytes).toString()) as string[];
    const outFile = argv[argv.indexOf('--out') + 1]!;
    expect(argv).toEqual(protocolArgs(dir, outFile, req));
    expect(argv).toEqual(['--checkpoint', dir, '--out', outFile, '--tp-size', '2', '--tp-rank', '1', '--ep-size', '3', '--ep-rank', '2', '--ep-placement', 'round_robin']);
    const rank = out.get('rank')!;
    expect(rank.dtype).toBe('I32');
    expect(Buffer.from(rank.bytes).readInt32LE(0)).toBe(1);
  });

  it('turns a crash into LoaderCrashed with the stderr', async () => {
    const err = await commandLoader(fake('crash.mjs'), { timeoutMs: 20_000 }).load(dir, WHOLE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoaderCrashed);
    expect((err as Error).message).toMatch(/SIGSEGV/);
    expect((err as Error).message).toMatch(/about to crash/);
  });

  it('kills a hanging loader and its children on timeout', async () => {
    const pidFile = join(dir, 'grandchild.pid');
    const started = Date.now();
    const err = await commandLoader(fake('hang.mjs'), { timeoutMs: 1500, env: { ...process.env, GRANDCHILD_PID_FILE: pidFile } })
      .load(dir, WHOLE)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoaderTimedOut);
    expect((err as Error).message).toMatch(/loading forever/);
    expect(Date.now() - started).toBeLessThan(60_000); // it returned at all: no hang
    const grandchild = Number(await readFile(pidFile, 'utf8'));
    await new Promise((r) => setTimeout(r, 200));
    expect(alive(grandchild)).toBe(false); // gone with its group
  });

  it('ends running loaders on request (an interrupted run)', async () => {
    const pidFile = join(dir, 'grandchild2.pid');
    const pending = commandLoader(fake('hang.mjs'), { timeoutMs: 60_000, env: { ...process.env, GRANDCHILD_PID_FILE: pidFile } }).load(dir, WHOLE).catch((e: unknown) => e);
    let grandchild = NaN;
    for (let i = 0; i < 100 && Number.isNaN(grandchild); i++) {
      await new Promise((r) => setTimeout(r, 50));
      grandchild = Number(await readFile(pidFile, 'utf8').catch(() => 'NaN'));
    }
    killRunningLoaders();
    expect(await pending).toBeInstanceOf(LoaderCrashed); // killed by a signal
    await new Promise((r) => setTimeout(r, 200));
    expect(alive(grandchild)).toBe(false);
  });

  it('reports a garbage output file as LoaderOutputInvalid naming the reader error', async () => {
    const err = await commandLoader(fake('garbage.mjs'), { timeoutMs: 20_000 }).load(dir, WHOLE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoaderOutputInvalid);
    expect((err as Error).message).toMatch(/not valid safetensors: \w+: /);
  });

  it('reports exit 0 without output as LoaderOutputInvalid', async () => {
    const err = await commandLoader(fake('silent.mjs'), { timeoutMs: 20_000 }).load(dir, WHOLE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoaderOutputInvalid);
    expect((err as Error).message).toMatch(/without writing/);
  });

  it('reports a non-zero exit as LoaderRefused with the reason', async () => {
    const err = await commandLoader(fake('refuse.mjs'), { timeoutMs: 20_000 }).load(dir, WHOLE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoaderRefused);
    expect((err as LoaderRefused).exitCode).toBe(3);
    expect((err as LoaderRefused).stderr).toMatch(/expert 3 of layer 0 is missing/);
    // The checkpoint closes the harness's sentence; the loader's stderr follows on its own indented lines.
    expect((err as Error).message).toBe(`loader exited 3 [file ${dir}]\n  --- loader stderr (last lines) ---\n    refused: expert 3 of layer 0 is missing`);
  });

  it('keeps a bounded tail of stderr', async () => {
    const err = (await commandLoader(fake('noisy.mjs'), { timeoutMs: 20_000, maxStderrBytes: 1000 }).load(dir, WHOLE).catch((e: unknown) => e)) as LoaderRefused;
    expect(err).toBeInstanceOf(LoaderRefused);
    expect(err.stderr.length).toBeLessThan(1100);
    expect(err.stderr).toMatch(/truncated[\s\S]*the real reason/);
  });

  it('refuses an output file larger than allowed', async () => {
    const err = await commandLoader(fake('echo.mjs'), { timeoutMs: 20_000, maxOutputBytes: 16 }).load(dir, req).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoaderOutputInvalid);
    expect((err as Error).message).toMatch(/larger than allowed/);
  });

  it('reports a command that cannot start as LoaderCrashed', async () => {
    const err = await commandLoader('/nonexistent/loader --flag', { timeoutMs: 20_000 }).load(dir, WHOLE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoaderCrashed);
    expect((err as Error).message).toMatch(/could not start/);
  });
});

describe('readOutput', () => {
  afterEach(releaseFifos);
  it('a loader output that is a FIFO is refused at once (it blocked the harness before), saying what it is', { timeout: 3000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'read-output-'));
    try {
      const out = mkfifo(join(dir, 'rank.safetensors'));
      const e = await readOutput(out, 1024, { missing: 'no output', expected: 'an output' }).then(() => undefined, (x: unknown) => x);
      expect(e).toBeInstanceOf(LoaderOutputInvalid);
      expect((e as Error).message).toBe(`loader output is not valid safetensors: NotARegularFile: not a regular file (expected a regular file, found FIFO (named pipe)) [file ${out}]`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
