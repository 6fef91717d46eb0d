// The messages of worker mode (spec/loader-protocol.md §7): JSON lines, each bounded in
// length and checked field by field, so a worker that writes garbage, a huge line or an
// answer to another request fails with a typed error instead of confusing the harness.
// Both sides use this module: the harness (worker-loader.ts) and the TypeScript kit (serve.ts).
import { MoeConformanceError } from '../errors.js';
import { parseCapabilities, type Capabilities } from '../conformance/capabilities.js';
import { LoaderOutputInvalid } from './command-loader.js';
import type { EpPlacement, ParallelRequest } from '../tensor.js';
import { JsonSyntaxError, parseStrictJson, toPlain } from '../safetensors/json.js';

export const WORKER_PROTOCOL = 'moe-conformance-worker';
/** The versions of §7 this harness speaks. */
export const WORKER_VERSIONS: readonly number[] = [1];
/** Longest line either side accepts, newline excluded. */
export const MAX_LINE_BYTES = 1024 * 1024;

/** The worker broke the protocol: its handshake is missing, malformed or of an unknown version. */
export class WorkerHandshakeError extends LoaderOutputInvalid {}
/** The worker's answer is not JSON, not an answer, or answers another request. */
export class WorkerAnswerInvalid extends LoaderOutputInvalid {}
/** The worker wrote a line longer than MAX_LINE_BYTES. */
export class WorkerLineTooLong extends WorkerAnswerInvalid {}
/** A request the worker side cannot read (TypeScript kit). */
export class WorkerRequestInvalid extends MoeConformanceError {}

export interface LoaderIdentity {
  name: string;
  version: string;
}

export interface Handshake {
  protocol: typeof WORKER_PROTOCOL;
  version: number;
  loader: LoaderIdentity;
  capabilities?: Capabilities;
}

export interface RankJob extends ParallelRequest {
  /** The safetensors file to write this rank's canonical tensors to. */
  out: string;
}

export interface WorkerRequest {
  id: number;
  checkpoint: string;
  ranks: RankJob[];
}

export type WorkerAnswer = { id: number; status: 'ok' } | { id: number; status: 'refused'; reason: string };

/**
 * Splits a byte stream into lines, refusing any line longer than `maxBytes` before it is
 * held whole (the pending part is bounded, not the stream). The unfinished line is copied
 * into one buffer, never kept as the stream's chunks: a pipe read while the writer writes
 * a byte at a time gives chunks of a few bytes, each a few hundred bytes of objects, and a
 * 1 MB line held as its 110,000 chunks took 27 MiB.
 */
export class LineSplitter {
  private pending = new Uint8Array(0);
  private pendingBytes = 0;

  /** `tooLong` makes the error for a line past the bound (each side its own: the worker's, the harness's request). */
  constructor(
    private readonly maxBytes: number,
    private readonly tooLong: (context: { expected: string; found: string }) => Error,
  ) {}

  /** The complete lines in `chunk` (plus what was pending). Throws `tooLong`'s error past the bound. */
  push(chunk: Uint8Array): string[] {
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl < 0 ? chunk.length : nl;
      if (this.pendingBytes + (end - start) > this.maxBytes) {
        const found = this.pendingBytes + (end - start);
        this.clear();
        throw this.tooLong({ expected: `≤ ${this.maxBytes} bytes per line`, found: `${nl < 0 ? 'more than ' : ''}${found} bytes` });
      }
      if (nl < 0) {
        this.append(chunk.subarray(start, end));
        return lines;
      }
      lines.push(text(Buffer.concat([this.pending.subarray(0, this.pendingBytes), chunk.subarray(start, nl)])));
      this.clear();
      start = nl + 1;
    }
  }

  /** Bytes of an unfinished line (at end of stream: a last line without newline). */
  get rest(): number {
    return this.pendingBytes;
  }

  /** At the end of the stream: the last line if it had no newline (within the bound: push checked it), else nothing. */
  end(): string[] {
    const last = this.pendingBytes > 0 ? [text(this.pending.subarray(0, this.pendingBytes))] : [];
    this.clear();
    return last;
  }

  /** Copy `bytes` after the pending ones (the caller checked the bound), growing by doubling up to it. */
  private append(bytes: Uint8Array): void {
    const need = this.pendingBytes + bytes.length;
    if (need > this.pending.length) {
      const grown = new Uint8Array(Math.min(this.maxBytes, Math.max(need, 2 * this.pending.length, 256)));
      grown.set(this.pending.subarray(0, this.pendingBytes));
      this.pending = grown;
    }
    this.pending.set(bytes, this.pendingBytes);
    this.pendingBytes = need;
  }

  private clear(): void {
    this.pending = new Uint8Array(0);
    this.pendingBytes = 0;
  }
}

const text = (line: Uint8Array): string => Buffer.from(line.buffer, line.byteOffset, line.length).toString('utf8').replace(/\r$/, '');

function preview(line: string): string {
  return line.length > 200 ? `${JSON.stringify(line.slice(0, 200))}… (${line.length} characters)` : JSON.stringify(line);
}

function parseObject(line: string, Err: typeof WorkerAnswerInvalid, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    // The strict parser: nesting at most 127 deep (a deeper line would overflow the stack
    // of JSON.stringify in a message), no key twice.
    v = toPlain(parseStrictJson(line));
  } catch (e) {
    if (!(e instanceof JsonSyntaxError)) throw e;
    throw new Err(`worker ${what} is not JSON: ${e.message}`, { expected: `one JSON object per line (${what})`, found: preview(line) });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Err(`worker ${what} is not a JSON object`, { expected: 'a JSON object', found: preview(line) });
  return v as Record<string, unknown>;
}

/** The worker's first line. */
export function parseHandshake(line: string): Handshake {
  const o = parseObject(line, WorkerHandshakeError, 'handshake');
  if (o.protocol !== WORKER_PROTOCOL) throw new WorkerHandshakeError('worker handshake names another protocol', { expected: `"protocol": "${WORKER_PROTOCOL}"`, found: preview(line) });
  if (typeof o.version !== 'number' || !WORKER_VERSIONS.includes(o.version)) {
    throw new WorkerHandshakeError('worker speaks a protocol version this harness does not know', { expected: `"version": ${WORKER_VERSIONS.join(' | ')}`, found: JSON.stringify(o.version) });
  }
  const l = o.loader as Record<string, unknown> | undefined;
  if (typeof l !== 'object' || l === null || typeof l.name !== 'string' || !l.name || typeof l.version !== 'string') {
    throw new WorkerHandshakeError('worker handshake lacks the loader\'s name and version', { expected: '"loader": {"name": "...", "version": "..."}', found: JSON.stringify(o.loader) ?? 'nothing' });
  }
  let capabilities: Capabilities | undefined;
  if (o.capabilities !== undefined) {
    try {
      capabilities = parseCapabilities(o.capabilities, 'worker handshake');
    } catch (e) {
      // The handshake is no file: the capability's reason, expected and found, without the parser's `file`.
      if (!(e instanceof MoeConformanceError)) throw e;
      throw new WorkerHandshakeError(`worker handshake: ${e.reason}`, { expected: e.expected, found: e.found });
    }
  }
  return { protocol: WORKER_PROTOCOL, version: o.version, loader: { name: l.name, version: l.version }, ...(capabilities && { capabilities }) };
}

/** The most of a worker's refusal reason kept (as much as a command loader's stderr tail): the rest is counted, not kept. */
export const MAX_REASON_CHARS = 64 * 1024;

/** An answer line, which must answer request `id`. */
export function parseAnswer(line: string, id: number): WorkerAnswer {
  const o = parseObject(line, WorkerAnswerInvalid, 'answer');
  if (o.id !== id) throw new WorkerAnswerInvalid('worker answered another request', { expected: `"id": ${id}`, found: `"id": ${JSON.stringify(o.id) ?? 'none'}` });
  if (o.status === 'ok') return { id, status: 'ok' };
  if (o.status === 'refused') {
    if (typeof o.reason !== 'string' || !o.reason.trim()) throw new WorkerAnswerInvalid('worker refused without a reason', { expected: '"reason": "why"', found: preview(line) });
    const reason = o.reason.length > MAX_REASON_CHARS ? `${o.reason.slice(0, MAX_REASON_CHARS)}… (${o.reason.length} characters)` : o.reason;
    return { id, status: 'refused', reason };
  }
  throw new WorkerAnswerInvalid('worker answer has no valid status', { expected: '"status": "ok" | "refused"', found: preview(line) });
}

export function formatRequest(r: WorkerRequest): string {
  return JSON.stringify(r) + '\n';
}

const PLACEMENT_NAMES: readonly EpPlacement[] = ['linear', 'round_robin'];

/** A request line as the worker side reads it (the TypeScript kit). */
export function parseRequest(line: string): WorkerRequest {
  let v: unknown;
  try {
    v = toPlain(parseStrictJson(line));
  } catch (e) {
    if (!(e instanceof JsonSyntaxError)) throw e;
    throw new WorkerRequestInvalid(`request is not JSON: ${e.message}`, { found: preview(line) });
  }
  const o = v as Record<string, unknown> | null;
  if (typeof o !== 'object' || o === null || !Number.isSafeInteger(o.id) || typeof o.checkpoint !== 'string' || !Array.isArray(o.ranks) || o.ranks.length === 0) {
    throw new WorkerRequestInvalid('not a request', { expected: '{"id", "checkpoint", "ranks": [...]}', found: preview(line) });
  }
  const ranks = o.ranks.map((r: unknown, i): RankJob => {
    const j = r as Record<string, unknown> | null;
    const int = (k: string) => (j && Number.isSafeInteger(j[k]) ? (j[k] as number) : undefined);
    const fields = { tpSize: int('tpSize'), tpRank: int('tpRank'), epSize: int('epSize'), epRank: int('epRank') };
    if (!j || typeof j.out !== 'string' || Object.values(fields).some((x) => x === undefined) || !PLACEMENT_NAMES.includes(j.epPlacement as EpPlacement)) {
      throw new WorkerRequestInvalid(`request rank ${i} is not a rank job`, { expected: '{"out", "tpSize", "tpRank", "epSize", "epRank", "epPlacement"}', found: JSON.stringify(r) });
    }
    return { out: j.out, ...(fields as Omit<ParallelRequest, 'epPlacement'>), epPlacement: j.epPlacement as EpPlacement };
  });
  return { id: o.id as number, checkpoint: o.checkpoint, ranks };
}
