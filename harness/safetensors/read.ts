// The strict safetensors reader. Validation follows the reference reader
// (huggingface/safetensors, safetensors/src/tensor.rs: `read_metadata`, `Metadata::validate`)
// rule for rule and error kind for error kind; where this reader is stricter the comment
// says so. Files are read with positional reads of just the ranges asked for, made
// synchronously (see readRangesInto for why).
import { constants as bufferConstants, isUtf8 } from 'node:buffer';
import { readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { NotARegularFile, openRegularFile } from './open-file.js';
import type { Tensor } from '../tensor.js';
import { dtypeBits, type DType } from './dtypes.js';
import { readHeaderEntries, type ExactValues, type TensorInfo } from './header.js';
import {
  HeaderTooLarge,
  HeaderTooSmall,
  InvalidHeader,
  InvalidHeaderLength,
  InvalidOffset,
  InvalidSlice,
  MetadataIncompleteBuffer,
  MisalignedSlice,
  SafetensorIoError,
  TensorInvalidInfo,
  TensorNotFound,
  TensorTooLarge,
  ValidationOverflow,
} from './errors.js';
import { U64_MAX } from './json.js';

/** Width of the little-endian u64 header length that starts every file. */
export const HEADER_LENGTH_BYTES = 8;
/** The reference's MAX_HEADER_SIZE. */
export const MAX_HEADER_SIZE = 100_000_000;

export type { TensorInfo } from './header.js';

export interface Header {
  /** N: the JSON header's length in bytes, padding included. */
  headerLength: number;
  /** Tensors in data-offset order; names are plain Map keys (`__proto__` is just a name). */
  tensors: Map<string, TensorInfo>;
  metadata: Map<string, string> | undefined;
  /** Absolute file offset of the data section: 8 + N. */
  dataStart: number;
}

/**
 * Elements times bits of one tensor, checked as the reference's `Metadata::validate` does
 * (u64 `checked_mul`, one dimension after the other: an overflow before a zero dimension is
 * still an overflow). Numbers while the product stays a safe integer, BigInt beyond (a shape
 * of millions of 1s costs no BigInt at all). `exactAt` gives the exact value of a dimension
 * stored inexactly (above 2^53).
 */
function checkedBits(dtype: DType, shape: readonly (number | bigint)[], exactAt: Map<number, bigint> | undefined, file?: string, tensor?: string): bigint {
  const overflow = (what: string): never => {
    throw new ValidationOverflow(`${what} overflows u64`, { file, tensor, found: shownShape(shape, exactAt) });
  };
  let small = 1;
  let big: bigint | undefined;
  for (let i = 0; i < shape.length; i++) {
    const d = exactAt?.get(i) ?? shape[i]!;
    if (big === undefined && typeof d === 'number') {
      const p = small * d;
      if (p <= Number.MAX_SAFE_INTEGER) {
        small = p;
        continue;
      }
    }
    big = (big ?? BigInt(small)) * BigInt(d);
    if (big > U64_MAX) overflow('element count');
  }
  const bits = (big ?? BigInt(small)) * BigInt(dtypeBits(dtype));
  if (bits > U64_MAX) overflow('bit count');
  if (bits % 8n !== 0n) {
    throw new MisalignedSlice(`${dtype} tensor does not end on a byte boundary`, { file, tensor, expected: 'a multiple of 8 bits', found: `${bits} bits` });
  }
  return bits;
}

/**
 * A shape as an error shows it: its entries (exact where stored inexactly), or past 16 their
 * count. Listed whole, a hostile shape of 10 million entries (a 20 MB header) took 500 MiB in
 * its error before the message clipped it.
 */
function shownShape(shape: readonly (number | bigint)[], exactAt: Map<number, bigint> | undefined): string | string[] {
  return shape.length > 16 ? `${shape.length} dimensions` : shape.map((d, i) => String(exactAt?.get(i) ?? d));
}

/** Byte length of a tensor, or the typed error the reference raises for its shape. */
export function tensorByteLength(dtype: DType, shape: readonly (number | bigint)[], file?: string, tensor?: string): number {
  const bytes = checkedBits(dtype, shape, undefined, file, tensor) / 8n;
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) throw new ValidationOverflow('byte length is not a safe integer', { file, tensor, found: bytes.toString() });
  return Number(bytes);
}

/**
 * Parse and fully validate a header. `bytes` holds at least the first 8 + N bytes of the
 * file; `totalLength` is the whole file's length (default: `bytes.length`, i.e. `bytes` is
 * the whole file), so that coverage of the data section is checked too.
 */
export function parseHeader(bytes: Uint8Array, file?: string, totalLength: number = bytes.length): Header {
  const headerLength = declaredHeaderLength(bytes, totalLength, file);
  const dataStart = HEADER_LENGTH_BYTES + headerLength;
  if (dataStart > bytes.length) {
    throw new InvalidHeaderLength('the bytes given stop before the end of the header', { file, expected: dataStart, found: bytes.length });
  }
  const json = bytes.subarray(HEADER_LENGTH_BYTES, dataStart);
  // Checked in place (no string is made of the header): the reference's `str::from_utf8`.
  if (!isUtf8(json)) throw new InvalidHeader('header is not valid UTF-8', { file });
  const { tensors, metadata, exact } = readHeaderEntries(json, file);
  const ordered = [...tensors.values()];
  const dataLength = validateOffsets(ordered, exact, file);
  if (BigInt(dataStart) + dataLength !== BigInt(totalLength)) {
    throw new MetadataIncompleteBuffer('tensors do not cover the data section exactly', {
      file,
      expected: `${dataStart} + ${dataLength} bytes`,
      found: totalLength,
    });
  }
  let i = 0;
  let inOrder = true;
  for (const t of tensors.values()) if (t !== ordered[i++]) inOrder = false;
  const out = inOrder ? tensors : new Map(ordered.map((t) => [t.name, t]));
  return { headerLength, tensors: out, metadata, dataStart };
}

/**
 * N from the first 8 bytes, checked against the limit and the file's length (in this
 * order, as the reference does) before anything of size N is allocated.
 */
function declaredHeaderLength(first: Uint8Array, totalLength: number, file?: string): number {
  if (totalLength < HEADER_LENGTH_BYTES || first.length < HEADER_LENGTH_BYTES) {
    throw new HeaderTooSmall('file shorter than the 8-byte header length', { file, expected: '>= 8 bytes', found: totalLength });
  }
  const n = new DataView(first.buffer, first.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_SIZE)) throw new HeaderTooLarge(`header length above the 100,000,000-byte limit${textHint(first)}`, { file, found: n.toString() });
  const dataStart = HEADER_LENGTH_BYTES + Number(n);
  if (dataStart > totalLength) {
    throw new InvalidHeaderLength(`header runs past the end of the file${textHint(first)}`, { file, expected: `<= ${totalLength} bytes`, found: dataStart });
  }
  return Number(n);
}

/** A safetensors file starts with a binary length; one that starts with text is likely another kind of file. */
function textHint(first: Uint8Array): string {
  const head = first.subarray(0, HEADER_LENGTH_BYTES);
  if (!head.every((b) => b === 0x09 || b === 0x0a || b === 0x0d || (b >= 0x20 && b < 0x7f))) return '';
  const text = String.fromCharCode(...head);
  const kind = /^\s*[{[]/.test(text) ? 'a JSON file' : 'a text file';
  return `: the file starts with the text ${JSON.stringify(text)}, so it is not a safetensors file (${kind}?)`;
}

const beginOf = (t: TensorInfo, exact: Map<TensorInfo, ExactValues>): bigint => exact.get(t)?.begin ?? BigInt(t.dataOffsets[0]);
const endOf = (t: TensorInfo, exact: Map<TensorInfo, ExactValues>): bigint => exact.get(t)?.end ?? BigInt(t.dataOffsets[1]);

/**
 * The reference's `Metadata::validate`: sorted by offsets, each tensor starts where the
 * previous ended, has end >= begin, and exactly the bytes its shape and dtype need.
 * Stricter: every shape entry must also be a safe integer (else ValidationOverflow, spec §5).
 * Sorts `tensors` in place and returns the data section's length.
 */
function validateOffsets(tensors: TensorInfo[], exact: Map<TensorInfo, ExactValues>, file?: string): bigint {
  const compare = (a: TensorInfo, b: TensorInfo): number => {
    if (exact.size === 0 || (!exact.has(a) && !exact.has(b))) return a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1];
    const [ab, bb, ae, be] = [beginOf(a, exact), beginOf(b, exact), endOf(a, exact), endOf(b, exact)];
    return ab !== bb ? (ab < bb ? -1 : 1) : ae < be ? -1 : ae > be ? 1 : 0;
  };
  tensors.sort(compare);
  let start = 0n;
  for (const t of tensors) {
    const [begin, end] = [beginOf(t, exact), endOf(t, exact)];
    if (begin !== start || end < begin) {
      throw new InvalidOffset('tensor data is not contiguous with the previous tensor', {
        file,
        tensor: t.name,
        expected: `begin ${start}, end >= begin`,
        found: [begin.toString(), end.toString()],
      });
    }
    start = end;
    const exactShape = exact.get(t)?.shape;
    const bytes = checkedBits(t.dtype, t.shape, exactShape, file, t.name) / 8n;
    if (end - begin !== bytes) {
      throw new TensorInvalidInfo('byte length disagrees with shape and dtype', { file, tensor: t.name, expected: bytes.toString(), found: (end - begin).toString() });
    }
    if (exactShape) {
      throw new ValidationOverflow('shape entry is not a safe integer', { file, tensor: t.name, found: shownShape(t.shape, exactShape) });
    }
  }
  return start;
}

function lookup(tensors: Map<string, TensorInfo>, name: string, file?: string): TensorInfo {
  const info = tensors.get(name);
  if (!info) throw new TensorNotFound('no such tensor', { file, tensor: name });
  return info;
}

function checkRange(info: TensorInfo, begin: number, end: number, file?: string): void {
  const length = info.dataOffsets[1] - info.dataOffsets[0];
  if (!Number.isSafeInteger(begin) || !Number.isSafeInteger(end) || begin < 0 || end < begin || end > length) {
    throw new InvalidSlice('byte range outside the tensor', { file, tensor: info.name, expected: `0 <= begin <= end <= ${length}`, found: [begin, end] });
  }
}

export interface ParsedSafetensors extends Header {
  /** A view (no copy) of one tensor's bytes. */
  tensor(name: string): Tensor;
}

/** Parse a whole file held in memory; tensors are views into `bytes`. */
export function parseSafetensors(bytes: Uint8Array, file?: string): ParsedSafetensors {
  const header = parseHeader(bytes, file);
  return {
    ...header,
    tensor(name: string): Tensor {
      const info = lookup(header.tensors, name, file);
      const [b, e] = info.dataOffsets;
      return { dtype: info.dtype, shape: [...info.shape], bytes: bytes.subarray(header.dataStart + b, header.dataStart + e) };
    },
  };
}

/** A safetensors file on disk, validated on open, read by byte ranges. */
export class SafetensorsFile {
  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    private readonly header: Header,
  ) {}

  get tensors(): Map<string, TensorInfo> {
    return this.header.tensors;
  }
  get metadata(): Map<string, string> | undefined {
    return this.header.metadata;
  }
  get dataStart(): number {
    return this.header.dataStart;
  }

  static async open(path: string): Promise<SafetensorsFile> {
    let handle: FileHandle;
    try {
      handle = await openRegularFile(path);
    } catch (e) {
      if (e instanceof NotARegularFile) throw e;
      throw new SafetensorIoError(`cannot open: ${(e as Error).message}`, { file: path });
    }
    try {
      const size = (await handle.stat()).size;
      const first = readExactly(handle, path, Math.min(HEADER_LENGTH_BYTES, size), 0);
      const n = declaredHeaderLength(first, size, path);
      const prefix = new Uint8Array(HEADER_LENGTH_BYTES + n);
      prefix.set(first);
      readInto(handle.fd, path, prefix.subarray(HEADER_LENGTH_BYTES), HEADER_LENGTH_BYTES);
      return new SafetensorsFile(path, handle, parseHeader(prefix, path, size));
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  info(name: string): TensorInfo {
    return lookup(this.header.tensors, name, this.path);
  }

  /** A whole tensor in one buffer; one larger than MAX_BUFFER_BYTES is a TensorTooLarge (use chunks). */
  async readTensor(name: string): Promise<Tensor> {
    const info = this.info(name);
    const [b, e] = info.dataOffsets;
    checkBufferSize(e - b, this.path, name, 'whole tensor');
    return { dtype: info.dtype, shape: [...info.shape], bytes: await this.readBytes(name, 0, e - b) };
  }

  /**
   * A tensor's bytes [begin, end) (default: all of them) in order, in fresh buffers of at
   * most `chunkBytes` each: any size the file holds, tensors above MAX_BUFFER_BYTES included.
   */
  async *chunks(name: string, o: { chunkBytes?: number; begin?: number; end?: number } = {}): AsyncGenerator<Uint8Array> {
    const info = this.info(name);
    const { begin = 0, end = info.dataOffsets[1] - info.dataOffsets[0] } = o;
    checkRange(info, begin, end, this.path);
    const step = Math.min(Math.max(1, Math.floor(o.chunkBytes ?? DEFAULT_CHUNK)), MAX_BUFFER_BYTES);
    for (let at = begin; at < end; at += step) yield this.readBytesSync(info, at, Math.min(end, at + step));
  }

  /** Bytes [begin, end) of one tensor, counted from the tensor's first byte. */
  async readBytes(name: string, begin: number, end: number): Promise<Uint8Array> {
    return this.readBytesSync(this.info(name), begin, end);
  }

  private readBytesSync(info: TensorInfo, begin: number, end: number): Uint8Array {
    checkRange(info, begin, end, this.path);
    checkBufferSize(end - begin, this.path, info.name, 'byte range');
    return readExactly(this.handle, this.path, end - begin, this.header.dataStart + info.dataOffsets[0] + begin);
  }

  /** The concatenation of several byte ranges of one tensor, in the order given (see readRangesInto). */
  async readRanges(name: string, ranges: ReadonlyArray<readonly [number, number]>): Promise<Uint8Array> {
    const info = this.info(name);
    let total = 0;
    for (const [b, e] of ranges) {
      checkRange(info, b, e, this.path);
      total += e - b;
    }
    checkBufferSize(total, this.path, name, 'ranges');
    const out = unzeroed(total);
    this.readRangesInto(name, ranges, out);
    return out;
  }

  /**
   * Fill `into` with the concatenation of byte ranges of one tensor, in the order given; `into`
   * must be exactly their total length. Ranges that move forward with gaps up to MAX_GAP are
   * served by one read of their span; every other run is read straight into place.
   *
   * Synchronous on purpose: a cut rank is tens of thousands of row runs of a few KB, and from
   * the page cache one such pread costs about 2 µs as a plain system call but about 17 µs
   * through libuv's thread pool, which made reading, not copying, the loader's bottleneck.
   */
  readRangesInto(name: string, ranges: ReadonlyArray<readonly [number, number]>, into: Uint8Array): void {
    const info = this.info(name);
    let total = 0;
    for (const [b, e] of ranges) {
      checkRange(info, b, e, this.path);
      total += e - b;
    }
    if (total !== into.length) {
      throw new InvalidSlice('ranges and destination differ in length', { file: this.path, tensor: name, expected: into.length, found: total });
    }
    const base = this.header.dataStart + info.dataOffsets[0];
    let at = 0;
    for (const run of coalesce(ranges)) {
      const [first, last] = [run[0]!, run[run.length - 1]!];
      const span = last[1] - first[0];
      const length = run.reduce((a, [b, e]) => a + e - b, 0);
      if (length === span) {
        readInto(this.handle.fd, this.path, into.subarray(at, at + length), base + first[0]);
        at += length;
        continue;
      }
      const buffer = Buffer.allocUnsafe(span);
      readInto(this.handle.fd, this.path, buffer, base + first[0]);
      for (const [b, e] of run) {
        into.set(buffer.subarray(b - first[0], e - first[0]), at);
        at += e - b;
      }
    }
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** The largest buffer Node can allocate (2^32 bytes in Node 20): no single read may exceed it. */
export const MAX_BUFFER_BYTES: number = bufferConstants.MAX_LENGTH;
/** SafetensorsFile.chunks' default piece. */
const DEFAULT_CHUNK = 16 << 20;

/**
 * One buffer of `length` bytes must be possible, else a typed refusal that says what to do
 * instead (`instead`: by default, read the tensor in pieces).
 */
export function checkBufferSize(length: number, file: string | undefined, tensor: string, what: string, instead = 'read it in pieces (chunks, readBytes, readRanges)'): void {
  if (length > MAX_BUFFER_BYTES) {
    throw new TensorTooLarge(`${what} is larger than one buffer can be: ${instead}`, { file, tensor, expected: `<= ${MAX_BUFFER_BYTES} bytes`, found: `${length} bytes` });
  }
}

/**
 * Gaps up to this many bytes are read through rather than paying for another read: a pread
 * from the page cache costs about as much as copying 8 KiB. Wider gaps (a TP rank's columns
 * of a row-major down projection: 1/T of every row) would multiply the bytes copied by T.
 */
const MAX_GAP = 8 * 1024;
/** The most a single coalesced read with gaps may span. */
const MAX_SPAN = 16 * 1024 * 1024;

/** Split ranges (in order) into runs that one read of their span can serve. */
function coalesce(ranges: ReadonlyArray<readonly [number, number]>): Array<Array<readonly [number, number]>> {
  const runs: Array<Array<readonly [number, number]>> = [];
  let run: Array<readonly [number, number]> = [];
  for (const r of ranges) {
    const prev = run[run.length - 1];
    if (prev && r[0] >= prev[1] && r[0] - prev[1] <= MAX_GAP && r[1] - run[0]![0] <= MAX_SPAN) run.push(r);
    else {
      if (run.length) runs.push(run);
      run = [r];
    }
  }
  if (run.length) runs.push(run);
  return runs;
}

/**
 * A plain Uint8Array of its own ArrayBuffer (offset 0, like `new Uint8Array`), not zero-filled:
 * every caller fills every byte or throws and drops it. Zero-filling gigabytes of chunks that
 * are overwritten at once cost time and page faults.
 */
function unzeroed(length: number): Uint8Array {
  return new Uint8Array(Buffer.allocUnsafeSlow(length).buffer, 0, length);
}

/** Node refuses a single read of 2 GiB or more. */
const MAX_READ = 1 << 30;

/** Fill `into` from `position`; a file that shrank since it was opened is an error, not a short read. */
function readInto(fd: number, file: string, into: Uint8Array, position: number): void {
  let done = 0;
  while (done < into.length) {
    let got: number;
    try {
      got = readSync(fd, into, done, Math.min(MAX_READ, into.length - done), position + done);
    } catch (e) {
      throw new SafetensorIoError(`read failed: ${(e as Error).message}`, { file });
    }
    if (got === 0) throw new SafetensorIoError('file ended early (changed since it was opened?)', { file, expected: position + into.length, found: position + done });
    done += got;
  }
}

function readExactly(handle: FileHandle, file: string, length: number, position: number): Uint8Array {
  const out = unzeroed(length);
  readInto(handle.fd, file, out, position);
  return out;
}
