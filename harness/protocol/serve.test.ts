// The TypeScript loader kit in process: worker mode over in-memory streams, command mode with
// arguments, both writing files the strict reader accepts.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Canonical, ParallelRequest } from '../tensor.js';
import { readOutput } from './command-loader.js';
import { serveCommand, serveLoader, serveWorker, type LoaderKitOptions } from './serve.js';
import { MAX_LINE_BYTES, parseAnswer, parseHandshake, WorkerRequestInvalid } from './worker-messages.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'moe-serve-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** One I32 tensor holding the TP rank; refuses TP 3 like a loader refusing I % T != 0. */
function load(_dir: string, req: ParallelRequest): Canonical {
  if (req.tpSize === 3) throw new Error('I % T != 0 for TP 3');
  return new Map([['rank', { dtype: 'I32', shape: [1], bytes: new Uint8Array(Int32Array.of(req.tpRank).buffer) }]]);
}
const kit: LoaderKitOptions = { name: 'kit-test', version: '2.0', capabilities: { maxTp: 2, forms: [] }, load };
const rank = (tpRank: number, tpSize = 2) => ({ out: join(dir, `r${tpRank}-${tpSize}.safetensors`), tpSize, tpRank, epSize: 1, epRank: 0, epPlacement: 'linear' as const });

/** Serves `requests` through in-memory pipes and returns the lines written. */
async function exchange(o: LoaderKitOptions, requests: string[]): Promise<string[]> {
  const input = new PassThrough();
  const output = new PassThrough();
  const chunks: Buffer[] = [];
  output.on('data', (c: Buffer) => chunks.push(c));
  const served = serveWorker({ ...o, input, output });
  for (const r of requests) input.write(r + '\n');
  input.end();
  await served;
  return Buffer.concat(chunks).toString().trimEnd().split('\n');
}

describe('serveWorker', () => {
  it('refuses a request line past MAX_LINE_BYTES as soon as it passes the bound, without reading or holding the rest', async () => {
    // 32 MiB of 'a' without a newline, 64 KiB a read: the worker must stop one chunk past
    // the bound (before the fix it held the whole line, and 1.1 GB overflowed a string).
    const CHUNK = 64 * 1024;
    const TOTAL = 32 * 1024 * 1024;
    let given = 0;
    const input = new Readable({
      highWaterMark: CHUNK,
      read() {
        if (given >= TOTAL) return void this.push(null);
        given += CHUNK;
        this.push(Buffer.alloc(CHUNK, 0x61));
      },
    });
    const output = new PassThrough().resume();
    const e = await serveWorker({ ...kit, input, output }).then(() => undefined, (x: unknown) => x);
    expect(e).toBeInstanceOf(WorkerRequestInvalid);
    expect((e as Error).message).toBe(`request line too long (expected ≤ ${MAX_LINE_BYTES} bytes per line, found more than ${MAX_LINE_BYTES + CHUNK} bytes)`);
    expect(given).toBeLessThanOrEqual(MAX_LINE_BYTES + 3 * CHUNK);
  });

  it('serves a last request without its newline, and one split across reads', async () => {
    const request = Buffer.from(JSON.stringify({ id: 7, checkpoint: '/c', ranks: [rank(0)] }));
    const input = Readable.from([request.subarray(0, 5), request.subarray(5)], { objectMode: false });
    const output = new PassThrough();
    const chunks: Buffer[] = [];
    output.on('data', (c: Buffer) => chunks.push(c));
    await serveWorker({ ...kit, input, output });
    expect(parseAnswer(Buffer.concat(chunks).toString().trimEnd().split('\n')[1]!, 7)).toEqual({ id: 7, status: 'ok' });
  });

  it('handshakes, answers each request for all its ranks, and refuses with the error message', async () => {
    const lines = await exchange(kit, [
      JSON.stringify({ id: 1, checkpoint: '/c', ranks: [rank(0), rank(1)] }),
      '',
      JSON.stringify({ id: 2, checkpoint: '/c', ranks: [rank(0, 3)] }),
    ]);
    expect(parseHandshake(lines[0]!)).toEqual({ protocol: 'moe-conformance-worker', version: 1, loader: { name: 'kit-test', version: '2.0' }, capabilities: { maxTp: 2, forms: [] } });
    expect(parseAnswer(lines[1]!, 1)).toEqual({ id: 1, status: 'ok' });
    expect(parseAnswer(lines[2]!, 2)).toEqual({ id: 2, status: 'refused', reason: 'Error: I % T != 0 for TP 3' });
    for (const r of [0, 1]) {
      const t = (await readOutput(rank(r).out, 1024, { missing: 'no output', expected: 'an output' })).get('rank')!;
      expect(new Int32Array(t.bytes.slice().buffer)[0]).toBe(r);
    }
  });

  it('writes metadata a loader returns, and a writer may write its own file', async () => {
    const meta: LoaderKitOptions = { ...kit, load: (d, req) => ({ tensors: load(d, req), metadata: { 'moe_conformance.dequantized': 'false' } }) };
    await exchange(meta, [JSON.stringify({ id: 1, checkpoint: '/c', ranks: [rank(1)] })]);
    expect((await readOutput(rank(1).out, 1024, { missing: 'no output', expected: 'an output' })).size).toBe(1);
    const written: string[] = [];
    const writer: LoaderKitOptions = { name: 'w', version: '1', write: async (_d, _r, out) => void written.push(out) };
    const lines = await exchange(writer, [JSON.stringify({ id: 5, checkpoint: '/c', ranks: [rank(0)] })]);
    expect(parseAnswer(lines[1]!, 5).status).toBe('ok');
    expect(written).toEqual([rank(0).out]);
    const neither = await exchange({ name: 'n', version: '1' }, [JSON.stringify({ id: 6, checkpoint: '/c', ranks: [rank(0)] })]);
    expect(parseAnswer(neither[1]!, 6)).toMatchObject({ status: 'refused', reason: 'Error: the loader kit needs load or write' });
  });

  it('ends on a request it cannot read (the harness then starts a fresh worker)', async () => {
    await expect(exchange(kit, ['{"id": 1}'])).rejects.toThrow(WorkerRequestInvalid);
  });

  it('sends prints of the loader to the log, not between protocol lines', async () => {
    const log = new PassThrough();
    const logged: Buffer[] = [];
    log.on('data', (c: Buffer) => logged.push(c));
    const input = new PassThrough();
    const noisy: LoaderKitOptions = { ...kit, input, log, load: (d, r) => (process.stdout.write('a library talking\n'), load(d, r)) };
    const protocol: string[] = [];
    const realWrite = process.stdout.write;
    // Stand in for the real stdout: what reaches it through the kit's bound write is the protocol.
    const fakeStdout = { write: (c: string, cb?: () => void) => (protocol.push(String(c)), cb?.(), true) } as unknown as typeof process.stdout.write;
    Object.defineProperty(process.stdout, 'write', { configurable: true, writable: true, value: (fakeStdout as unknown as { write: typeof process.stdout.write }).write });
    try {
      const served = serveWorker(noisy);
      input.end(JSON.stringify({ id: 1, checkpoint: '/c', ranks: [rank(0)] }) + '\n');
      await served;
    } finally {
      process.stdout.write = realWrite;
    }
    expect(Buffer.concat(logged).toString()).toBe('a library talking\n');
    expect(protocol.map((l) => JSON.parse(l))).toEqual([expect.objectContaining({ protocol: 'moe-conformance-worker' }), { id: 1, status: 'ok' }]);
  });
});

describe('serveCommand and serveLoader', () => {
  const sink = () => {
    const s = new PassThrough();
    const text: Buffer[] = [];
    s.on('data', (c: Buffer) => text.push(c));
    return { s, text: () => Buffer.concat(text).toString() };
  };

  it('writes one rank, refuses with exit 1 and the reason, and exits 2 on bad usage', async () => {
    const out = join(dir, 'cmd.safetensors');
    const log = sink();
    expect(await serveCommand({ ...kit, log: log.s }, ['--checkpoint', '/c', '--out', out, '--tp-size', '2', '--tp-rank', '1', '--ep-size', '1', '--ep-rank', '0', '--ep-placement', 'linear'])).toBe(0);
    expect(new Int32Array((await readOutput(out, 1024, { missing: 'no output', expected: 'an output' })).get('rank')!.bytes.slice().buffer)[0]).toBe(1);
    expect(await serveCommand({ ...kit, log: log.s }, ['--checkpoint', '/c', '--out', out, '--tp-size', '3'])).toBe(1);
    expect(log.text()).toContain('kit-test: Error: I % T != 0 for TP 3');
    expect(await serveCommand({ ...kit, log: log.s }, ['--checkpoint', '/c'])).toBe(2);
    expect(await serveCommand({ ...kit, log: log.s }, ['--frob'])).toBe(2);
    expect(await serveCommand({ ...kit, log: log.s }, ['--checkpoint', '/c', '--out', out, '--tp-size', 'two'])).toBe(2);
    expect(log.text()).toMatch(/usage: --checkpoint DIR --out FILE/);
  });

  it('serves the worker with --worker, the command otherwise', async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    const lines: Buffer[] = [];
    output.on('data', (c: Buffer) => lines.push(c));
    input.end();
    expect(await serveLoader({ ...kit, input, output }, ['--worker'])).toBe(0);
    expect(parseHandshake(Buffer.concat(lines).toString().trim()).loader.name).toBe('kit-test');
    const log = sink();
    expect(await serveLoader({ ...kit, log: log.s }, [])).toBe(2);
  });
});
