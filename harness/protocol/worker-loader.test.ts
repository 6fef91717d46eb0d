import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ParallelRequest } from '../tensor.js';
import { LoaderCrashed, LoaderOutputInvalid, LoaderRefused, LoaderTimedOut } from './command-loader.js';
import { WorkerAnswerInvalid, WorkerHandshakeError, WorkerLineTooLong } from './worker-messages.js';
import { WorkerCrashed, WorkerRefused, WorkerTimedOut, workerLoader, type WorkerLoader, type WorkerLoaderOptions } from './worker-loader.js';

const fake = `${JSON.stringify(process.execPath)} ${join(fileURLToPath(new URL('./test/fake-workers/', import.meta.url)), 'worker.mjs')}`;
/** Dead or a zombie (PID 1 of a container may never reap it). */
function alive(pid: number): boolean {
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
const req = (tpRank: number, tpSize = 2): ParallelRequest => ({ tpSize, tpRank, epSize: 1, epRank: 0, epPlacement: 'linear' });

let dir: string;
const open: WorkerLoader[] = [];
function worker(mode: string, extra: Partial<WorkerLoaderOptions> & { env?: NodeJS.ProcessEnv } = {}): WorkerLoader {
  const w = workerLoader(fake, { timeoutMs: 10_000, workDir: dir, ...extra, env: { ...process.env, FAKE_WORKER: mode, ...extra.env } });
  open.push(w);
  return w;
}
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'moe-worker-test-'));
});
afterAll(async () => {
  await Promise.all(open.map((w) => w.close()));
  await rm(dir, { recursive: true, force: true });
});

/** Loads, expects a typed failure of class `cls`, then checks the worker's process group is gone. */
async function failsWith(w: WorkerLoader, cls: new (...a: never[]) => Error, pattern: RegExp): Promise<Error> {
  const p = w.loadRanks('/ckpt', [req(0)]);
  const err = await p.then(() => undefined, (e: unknown) => e as Error);
  expect(err).toBeInstanceOf(cls);
  expect(err!.message).toMatch(pattern);
  expect(w.pids).toEqual([]);
  return err!;
}

describe('workerLoader', () => {
  it('handshakes once, then answers many requests from the same process, several ranks per request', async () => {
    const w = worker('ok', { env: { FAKE_CAPABILITIES: JSON.stringify({ modelTypes: ['mixtral'], maxTp: 2, forms: [] }) } });
    const h = await w.handshake();
    expect(h.loader).toEqual({ name: 'fake', version: '0.0.1' });
    expect(h.capabilities).toEqual({ modelTypes: ['mixtral'], maxTp: 2, forms: [] });
    const [pid] = w.pids;
    const ranks = await w.loadRanks('/some/ckpt', [req(0), req(1)]);
    expect(ranks.map((r) => new Int32Array(r.get('rank')!.bytes.buffer.slice(r.get('rank')!.bytes.byteOffset, r.get('rank')!.bytes.byteOffset + 4))[0])).toEqual([0, 1]);
    const sent = JSON.parse(Buffer.from(ranks[0]!.get('request')!.bytes).toString());
    expect(sent.checkpoint).toBe('/some/ckpt');
    expect(sent.ranks.map((r: ParallelRequest) => r.tpRank)).toEqual([0, 1]);
    await w.load('/some/ckpt', req(1));
    expect(w.pids).toEqual([pid]);
  });

  it('runs up to `workers` processes at once and closes them all', async () => {
    const w = worker('ok', { workers: 3 });
    await Promise.all([0, 1, 0, 1, 0, 1].map((r) => w.load('/c', req(r))));
    const pids = [...w.pids];
    expect(pids.length).toBeGreaterThan(1);
    expect(pids.length).toBeLessThanOrEqual(3);
    await w.close();
    expect(w.pids).toEqual([]);
    for (const pid of pids) expect(alive(pid)).toBe(false);
  });

  it('a refusal is a LoaderRefused with the reason, and the worker stays alive', async () => {
    const w = worker('refuse');
    const err = await w.load('/c', req(0, 3)).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(WorkerRefused);
    expect(err).toBeInstanceOf(LoaderRefused);
    expect((err as Error).message).toMatch(/I % T != 0 for TP 3/);
    expect(w.pids.length).toBe(1);
  });

  it('an ok without an output file names the request, the rank and the file the request named (no --out, no exit), and keeps the worker', async () => {
    const w = worker('no-output');
    const err = (await w.loadRanks('/ckpt', [req(0), req(1)]).then(() => undefined, (e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(LoaderOutputInvalid);
    const [sentence, ...log] = err.message.split('\n');
    expect(sentence).toMatch(/^worker answered "ok" to request \d+ \(2 ranks of \/ckpt\) without writing the output file of TP rank 0\/2, EP rank 0\/1 linear \(expected a safetensors file at the path the request named for that rank, found nothing\) \[file \S+\/tp0-of-2-ep0-of-1\.safetensors\]$/);
    expect(err.message).not.toMatch(/--out|exited/);
    expect(log).toEqual(['  --- worker stderr (last lines) ---', expect.stringMatching(/^    request \d+: 2 ranks of \/ckpt$/)]);
    expect(w.pids).toHaveLength(1);
  });

  it('the worker\'s stderr follows the sentence and the file on its own indented lines; the file is the checkpoint, never the command', async () => {
    const refused = (await worker('refuse').load('/c', req(0, 3)).then(() => undefined, (e: unknown) => e)) as Error;
    expect(refused.message.split('\n')).toEqual(['worker refused: I % T != 0 for TP 3 [file /c]', '  --- worker stderr (last lines) ---', '    request 1: 1 ranks of /c']);
    const crashed = await failsWith(worker('crash'), WorkerCrashed, /^worker killed by SIGSEGV while a request was pending \[file \/ckpt\]\n  --- worker stderr \(last lines\) ---\n    request \d+: 1 ranks of \/ckpt$/);
    expect(crashed.message).not.toContain(process.execPath);
    const early = await failsWith(worker('early-exit'), WorkerCrashed, /^worker exited 3 before its handshake \(started as \S+ \S+worker\.mjs --worker\)\n  --- worker stderr \(last lines\) ---\n    fake worker early-exit starting\n    cannot import torch$/);
    expect(early.message).not.toContain('[file');
  });

  it('a crash mid-request fails that request with its stderr; the next request gets a fresh worker', async () => {
    const marker = join(dir, 'crashed-once');
    const w = worker('crash-first', { env: { FAKE_MARKER: marker } });
    await w.handshake();
    const [first] = w.pids;
    const err = await failsWith(w, WorkerCrashed, /killed by SIGSEGV while a request was pending[\s\S]*request 1: 1 ranks of \/ckpt/);
    expect(err).toBeInstanceOf(LoaderCrashed);
    expect(alive(first!)).toBe(false);
    const again = await w.load('/c', req(0));
    expect(again.has('rank')).toBe(true);
    expect(w.pids).not.toContain(first);
  });

  it('a worker that always crashes fails every request, and leaves no process', async () => {
    const w = worker('crash');
    await failsWith(w, WorkerCrashed, /SIGSEGV/);
    await failsWith(w, WorkerCrashed, /SIGSEGV/);
  });

  it('a hang past the time limit is killed with its grandchildren', async () => {
    const pidFile = join(dir, 'grandchild.pid');
    const w = worker('hang', { timeoutMs: 1500, env: { GRANDCHILD_PID_FILE: pidFile } });
    await w.handshake();
    const [pid] = w.pids;
    const err = await failsWith(w, WorkerTimedOut, /no answer to request \d+ within 1500 ms/);
    expect(err).toBeInstanceOf(LoaderTimedOut);
    expect(alive(pid!)).toBe(false);
    const grandchild = Number(await readFile(pidFile, 'utf8'));
    await new Promise((r) => setTimeout(r, 200));
    expect(alive(grandchild)).toBe(false);
  });

  it('garbage, a huge line and an answer for another request are typed failures of the request', async () => {
    const garbage = await failsWith(worker('garbage'), WorkerAnswerInvalid, /answer is not JSON[\s\S]*this is not JSON/);
    expect(garbage).toBeInstanceOf(LoaderOutputInvalid);
    // Typed context, not text pasted onto the message: the checkpoint and the stderr tail are fields.
    expect(garbage).toMatchObject({ file: '/ckpt', log: { from: 'worker stderr', text: expect.stringMatching(/request \d+: 1 ranks of \/ckpt/) } });
    expect(garbage.message).toMatch(/\[file \/ckpt\]\n  --- worker stderr/);
    const huge = await failsWith(worker('huge-line', { maxLineBytes: 64 * 1024 }), WorkerLineTooLong, /longer than the protocol allows.*≤ 65536 bytes.*\[file \/ckpt\]/);
    expect(huge).toMatchObject({ file: '/ckpt', expected: '≤ 65536 bytes per line' });
    await failsWith(worker('wrong-id'), WorkerAnswerInvalid, /answered another request \(expected "id": \d+, found "id": \d+\)/);
  });

  it('exiting before the handshake and an unknown protocol version fail the request', async () => {
    await failsWith(worker('early-exit'), WorkerCrashed, /exited 3 before its handshake[\s\S]*cannot import torch/);
    const version = await failsWith(worker('unknown-version'), WorkerHandshakeError, /version this harness does not know \(expected "version": 1, found 99\)/);
    expect(version).toBeInstanceOf(LoaderOutputInvalid);
  });

  it('a refused handshake (an unknown capability) fails every request with the same error, naming the field and the allowed ones, and starts no other worker', async () => {
    const starts = join(dir, 'badcap-starts.log');
    const w = worker('ok', { env: { FAKE_CAPABILITIES: JSON.stringify({ modelTypes: ['mixtral'], dtype: ['bf16'] }), FAKE_START_LOG: starts } });
    const errors: Error[] = [];
    for (let i = 0; i < 3; i++) errors.push(await failsWith(w, WorkerHandshakeError, /^worker handshake: unknown capabilities field "dtype" \(expected modelTypes \| layouts \| dtypes \| quantization \| maxTp \| maxEp \| placements \| forms, found dtype\)\n  --- worker stderr \(last lines\) ---\n    fake worker ok starting$/));
    await expect(w.handshake()).rejects.toThrow(WorkerHandshakeError);
    expect(new Set(errors.map((e) => e.message)).size).toBe(1);
    expect(errors[0]).not.toBe(errors[1]); // each failure its own object (the case that met it is recorded on it)
    expect((await readFile(starts, 'utf8')).trim().split('\n')).toHaveLength(1);
  });

  it('a command that cannot start is a WorkerCrashed naming it', async () => {
    const w = workerLoader('/nonexistent/loader --flag', { timeoutMs: 5000, workDir: dir });
    open.push(w);
    await failsWith(w, WorkerCrashed, /could not start worker: spawn \/nonexistent\/loader ENOENT/);
  });

  it('close kills a worker that ignores the end of its input', async () => {
    const w = worker('ignore-eof', { closeGraceMs: 300 });
    await w.handshake();
    const [pid] = w.pids;
    await w.close();
    expect(alive(pid!)).toBe(false);
  });
});
