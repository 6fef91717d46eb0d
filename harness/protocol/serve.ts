// The TypeScript loader kit (`import { serveLoader } from 'moe-conformance/loader-kit'`): a
// Node loader gives one function, `load(checkpointDir, request) -> Canonical`, and this
// serves both ways of spec/loader-protocol.md from the same file: as a command (§2, one
// rank per process) and, when started with `--worker`, as a worker (§7: handshake, then
// one JSON line per request). It writes the safetensors output itself and turns a thrown
// error into a refusal with its message. Protocol lines go to the real stdout; anything the
// loader prints (console.log included) goes to stderr, its log, so it cannot corrupt them.
import { parseArgs } from 'node:util';
import type { Readable, Writable } from 'node:stream';
import type { Capabilities } from '../conformance/capabilities.js';
import { parseCapabilities } from '../conformance/capabilities.js';
import { writeSafetensors, type Metadata } from '../safetensors/write.js';
import type { Canonical, EpPlacement, ParallelRequest } from '../tensor.js';
import { LineSplitter, MAX_LINE_BYTES, parseRequest, WorkerRequestInvalid, WORKER_PROTOCOL, WORKER_VERSIONS, type Handshake, type WorkerAnswer } from './worker-messages.js';

/** What a loaded rank may come with: the tensors, and __metadata__ (spec §4's dequantized declaration). */
export interface LoadedRank {
  tensors: Canonical;
  metadata?: Metadata;
}

export interface LoaderKitOptions {
  name: string;
  version: string;
  capabilities?: Capabilities;
  /** One rank's canonical tensors; throw to refuse (the message is the reason). */
  load?: (checkpointDir: string, request: ParallelRequest) => Promise<Canonical | LoadedRank> | Canonical | LoadedRank;
  /** Instead of `load`: write the rank's file yourself (e.g. streamed); throw to refuse. */
  write?: (checkpointDir: string, request: ParallelRequest, out: string) => Promise<void>;
  /** Where the protocol is read and written (default the process's stdin and stdout). */
  input?: Readable;
  output?: Writable;
  /** Where refusals are logged in command mode, and the loader's prints go in worker mode (default stderr). */
  log?: Writable;
}

export function handshakeOf(o: Pick<LoaderKitOptions, 'name' | 'version' | 'capabilities'>): Handshake {
  return {
    protocol: WORKER_PROTOCOL,
    version: WORKER_VERSIONS[WORKER_VERSIONS.length - 1]!,
    loader: { name: o.name, version: o.version },
    ...(o.capabilities && { capabilities: parseCapabilities(o.capabilities, `${o.name} capabilities`) }),
  };
}

async function writeRank(o: LoaderKitOptions, dir: string, req: ParallelRequest, out: string): Promise<void> {
  if (o.write) return o.write(dir, req, out);
  if (!o.load) throw new Error('the loader kit needs load or write');
  const got = await o.load(dir, req);
  const rank = got instanceof Map ? { tensors: got } : got;
  await writeSafetensors(out, rank.tensors, rank.metadata);
}

const message = (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

/**
 * The request lines of `input`, read a chunk at a time as they are served: a line longer than
 * MAX_LINE_BYTES is refused (WorkerRequestInvalid) as soon as it passes the bound, never held
 * whole (the same LineSplitter reads the worker's answers on the harness side).
 */
async function* requestLines(input: Readable): AsyncGenerator<string> {
  const splitter = new LineSplitter(MAX_LINE_BYTES, (c) => new WorkerRequestInvalid('request line too long', c));
  for await (const chunk of input as AsyncIterable<Uint8Array | string>) {
    yield* splitter.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  }
  yield* splitter.end();
}

/** Serves worker mode until the input ends. Each request is answered in order. */
export async function serveWorker(o: LoaderKitOptions): Promise<void> {
  const input = o.input ?? process.stdin;
  const output = o.output ?? process.stdout;
  // Bound before stdout is diverted: protocol lines go to the real output...
  const write = output.write.bind(output) as (chunk: string, done: () => void) => boolean;
  const send = (v: unknown) => new Promise<void>((r) => write(JSON.stringify(v) + '\n', r));
  // ...and prints of the loader and its libraries go to the log, never between protocol lines.
  const original = Object.getOwnPropertyDescriptor(process.stdout, 'write');
  if (output === process.stdout) {
    const log = o.log ?? process.stderr;
    process.stdout.write = log.write.bind(log) as typeof process.stdout.write;
  }
  try {
    await send(handshakeOf(o));
    for await (const line of requestLines(input)) {
      if (!line.trim()) continue;
      const r = parseRequest(line); // an unreadable request ends the worker: the harness starts a fresh one
      let answer: WorkerAnswer;
      try {
        for (const job of r.ranks) await writeRank(o, r.checkpoint, job, job.out);
        answer = { id: r.id, status: 'ok' };
      } catch (e) {
        answer = { id: r.id, status: 'refused', reason: message(e) };
      }
      await send(answer);
    }
  } finally {
    if (output === process.stdout) {
      if (original) Object.defineProperty(process.stdout, 'write', original);
      else delete (process.stdout as { write?: unknown }).write;
    }
  }
}

/** Serves one rank as a command (§2): `--checkpoint DIR --out FILE --tp-size ...`. Returns the exit status. */
export async function serveCommand(o: LoaderKitOptions, argv: readonly string[]): Promise<number> {
  const log = o.log ?? process.stderr;
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        checkpoint: { type: 'string' }, out: { type: 'string' }, 'tp-size': { type: 'string' }, 'tp-rank': { type: 'string' },
        'ep-size': { type: 'string' }, 'ep-rank': { type: 'string' }, 'ep-placement': { type: 'string' },
      },
      strict: true,
    }));
  } catch (e) {
    log.write(`${o.name}: ${(e as Error).message}\n`);
    return 2;
  }
  const int = (k: string, d: number) => (values[k as keyof typeof values] === undefined ? d : Number(values[k as keyof typeof values]));
  const req: ParallelRequest = { tpSize: int('tp-size', 1), tpRank: int('tp-rank', 0), epSize: int('ep-size', 1), epRank: int('ep-rank', 0), epPlacement: (values['ep-placement'] ?? 'linear') as EpPlacement };
  if (values.checkpoint === undefined || values.out === undefined || Object.values(req).some((v) => typeof v === 'number' && !Number.isSafeInteger(v))) {
    log.write(`${o.name}: usage: --checkpoint DIR --out FILE --tp-size T --tp-rank r --ep-size P --ep-rank q --ep-placement linear|round_robin [--worker]\n`);
    return 2;
  }
  try {
    await writeRank(o, values.checkpoint, req, values.out);
    return 0;
  } catch (e) {
    log.write(`${o.name}: ${message(e)}\n`);
    return 1;
  }
}

/** Both modes from one file: `--worker` serves §7, anything else is one §2 command call. Resolves to the exit status. */
export async function serveLoader(o: LoaderKitOptions, argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  if (argv.includes('--worker')) {
    await serveWorker(o);
    return 0;
  }
  return serveCommand(o, argv);
}
