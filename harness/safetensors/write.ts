// The safetensors writer, byte-compatible with the reference's `serialize` / `prepare`
// (huggingface/safetensors, safetensors/src/tensor.rs): tensors sorted by dtype rank
// descending then by name (Rust String order = UTF-8 byte order), compact JSON with
// `__metadata__` first and fields dtype, shape, data_offsets, padded with spaces to a
// multiple of 8. Files go to a temporary sibling and are renamed into place, so a reader
// never sees a half-written file and a failed write leaves nothing behind.
import type { FileHandle } from 'node:fs/promises';
import type { Tensor } from '../tensor.js';
import { dtypeAlignment, type DType } from './dtypes.js';
import { writeAtomically } from './atomic-write.js';
import { DuplicateKey, HeaderTooLarge, InvalidTensorName, InvalidTensorView, ValidationMismatch } from './errors.js';
import { HEADER_LENGTH_BYTES, MAX_HEADER_SIZE, tensorByteLength } from './read.js';

/** Either bytes in memory, or a lazy source streamed in chunks (bounded memory for big shards). */
export type TensorSource = Tensor | LazyTensor;

export interface LazyTensor {
  dtype: DType;
  shape: number[];
  byteLength: number;
  /** The tensor's bytes in order. The writer may still be writing a chunk while it asks for the next one, so a chunk must stay unchanged until the one after it has been yielded. */
  chunks(): AsyncIterable<Uint8Array>;
}

export type Metadata = Record<string, string> | Map<string, string>;

export interface SerializedHeader {
  /** 8-byte little-endian length followed by the padded JSON. */
  header: Uint8Array;
  /** Tensor names in data order. */
  order: string[];
  /** Offsets relative to the data section. */
  offsets: Map<string, [number, number]>;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function checkText(s: string, what: string, tensor?: string): void {
  if (LONE_SURROGATE.test(s)) throw new InvalidTensorName(`${what} is not valid Unicode (lone surrogate)`, { tensor, found: JSON.stringify(s) });
}

const utf8 = new TextEncoder();

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

export function serializeHeader(
  entries: Iterable<[string, { dtype: DType; shape: number[] }]>,
  metadata?: Metadata,
): SerializedHeader {
  const items: Array<{ name: string; key: Uint8Array; dtype: DType; shape: number[]; bytes: number }> = [];
  const seen = new Set<string>();
  for (const [name, { dtype, shape }] of entries) {
    if (name === '__metadata__') throw new InvalidTensorName('a tensor cannot be named __metadata__', { tensor: name });
    checkText(name, 'tensor name', name);
    if (seen.has(name)) throw new DuplicateKey('tensor given twice', { tensor: name });
    seen.add(name);
    for (const d of shape) {
      if (!Number.isSafeInteger(d) || d < 0) throw new InvalidTensorView('shape entries must be non-negative integers', { tensor: name, found: shape });
    }
    items.push({ name, key: utf8.encode(name), dtype, shape, bytes: tensorByteLength(dtype, shape, undefined, name) });
  }
  items.sort((a, b) => dtypeAlignment(b.dtype) - dtypeAlignment(a.dtype) || compareBytes(a.key, b.key));

  const parts: string[] = [];
  if (metadata !== undefined) {
    const pairs = metadata instanceof Map ? [...metadata] : Object.entries(metadata);
    for (const [k, v] of pairs) {
      checkText(k, 'metadata key');
      checkText(v, 'metadata value');
    }
    parts.push(`"__metadata__":{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`);
  }
  const offsets = new Map<string, [number, number]>();
  let at = 0;
  for (const t of items) {
    offsets.set(t.name, [at, at + t.bytes]);
    parts.push(`${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${at},${at + t.bytes}]}`);
    at += t.bytes;
  }
  const json = utf8.encode(`{${parts.join(',')}}`);
  const n = Math.ceil(json.length / 8) * 8;
  if (n > MAX_HEADER_SIZE) throw new HeaderTooLarge('header would exceed the 100,000,000-byte limit', { found: n });
  const header = new Uint8Array(HEADER_LENGTH_BYTES + n).fill(0x20, HEADER_LENGTH_BYTES + json.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(n), true);
  header.set(json, HEADER_LENGTH_BYTES);
  return { header, order: items.map((t) => t.name), offsets };
}

function isLazy(s: TensorSource): s is LazyTensor {
  return !('bytes' in s);
}

/** Byte length of a source, checked against its shape and dtype. */
function sourceLength(name: string, s: TensorSource): number {
  const expected = tensorByteLength(s.dtype, s.shape, undefined, name);
  const found = isLazy(s) ? s.byteLength : s.bytes.length;
  if (found !== expected) {
    throw new InvalidTensorView(`${s.dtype} tensor of shape [${s.shape.join(', ')}] cannot be made from ${found} bytes`, { tensor: name, expected, found });
  }
  return expected;
}

function entriesOf<T>(tensors: Iterable<[string, T]> | Map<string, T>): Array<[string, T]> {
  return [...tensors];
}

export function serializeSafetensors(tensors: Iterable<[string, Tensor]> | Map<string, Tensor>, metadata?: Metadata): Uint8Array {
  const list = entriesOf(tensors);
  const { header, order, offsets } = serializeHeader(list, metadata);
  const byName = new Map(list);
  const last = order.length ? offsets.get(order[order.length - 1]!)![1] : 0;
  const out = new Uint8Array(header.length + last);
  out.set(header);
  for (const name of order) {
    const t = byName.get(name)!;
    sourceLength(name, t);
    out.set(t.bytes, header.length + offsets.get(name)![0]);
  }
  return out;
}

export async function writeSafetensors(
  path: string,
  tensors: Iterable<[string, TensorSource]> | Map<string, TensorSource>,
  metadata?: Metadata,
): Promise<void> {
  const list = entriesOf(tensors);
  for (const [name, s] of list) sourceLength(name, s);
  const { header, order } = serializeHeader(list, metadata);
  const byName = new Map(list);
  await writeAtomically(path, async (handle) => {
    const out = new WritePipeline(handle);
    try {
      await out.push(header);
      for (const name of order) await writeSource(out, path, name, byName.get(name)!);
    } catch (e) {
      // No write may still be in flight when the handle is closed and the file removed.
      await out.drain().catch(() => undefined);
      throw e;
    }
    await out.drain();
  });
}

/** One write call's limit: Node refuses a single write of more than 2 GiB. */
const MAX_WRITE_BYTES = 1 << 30;

/** FileHandle.write may write less than asked; loop until all of `b` is out, in pieces of at most 1 GiB. */
async function writeAll(handle: FileHandle, b: Uint8Array): Promise<void> {
  for (let done = 0; done < b.length; ) {
    done += (await handle.write(b, done, Math.min(b.length - done, MAX_WRITE_BYTES))).bytesWritten;
  }
}

/**
 * Sequential writes with one in flight: the caller produces the next chunk (a loader reading
 * it) while the previous one is being written. A chunk pushed must stay unchanged until the
 * following push returns.
 */
class WritePipeline {
  private pending: Promise<void> = Promise.resolve();

  constructor(private readonly handle: FileHandle) {}

  /** Waits for the previous write, then starts writing `b`. */
  async push(b: Uint8Array): Promise<void> {
    await this.pending;
    const write = writeAll(this.handle, b);
    // Its failure is reported by the next push or drain; never as an unhandled rejection.
    write.catch(() => undefined);
    this.pending = write;
  }

  drain(): Promise<void> {
    return this.pending;
  }
}

async function writeSource(out: WritePipeline, path: string, name: string, s: TensorSource): Promise<void> {
  if (!isLazy(s)) {
    await out.push(s.bytes);
    return;
  }
  let written = 0;
  for await (const chunk of s.chunks()) {
    written += chunk.length;
    if (written > s.byteLength) break;
    await out.push(chunk);
  }
  if (written !== s.byteLength) {
    throw new ValidationMismatch('lazy source yielded a different number of bytes than declared', {
      file: path,
      tensor: name,
      expected: s.byteLength,
      found: written > s.byteLength ? `more than ${s.byteLength}` : written,
    });
  }
}
