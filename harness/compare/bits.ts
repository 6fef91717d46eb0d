// Bit-exact comparison of two canonical maps: same names, dtypes, shapes and bytes. The
// first difference is returned with everything needed to act on it: the tensor, where the
// element is (expert, gate or up row, column: locate.ts), the expected and found bit
// patterns of the dtype (f16 0xb057, not its little-endian bytes 57b0), and their values.
import type { Canonical, Tensor } from '../tensor.js';
import type { DType } from '../safetensors/dtypes.js';
import { dtypeBits } from '../safetensors/dtypes.js';
import { decodeFloats64 } from '../safetensors/codecs.js';
import { MoeConformanceError } from '../errors.js';
import { describePosition, idsFor, positionOf } from './locate.js';

export type BitDifference =
  | { kind: 'missing' | 'extra'; tensor: string }
  | { kind: 'dtype'; tensor: string; expected: DType; found: DType }
  | { kind: 'shape'; tensor: string; expected: number[]; found: number[] }
  | {
      kind: 'bytes';
      tensor: string;
      /** Flat element index (byte index for sub-byte dtypes). */
      index: number;
      /** Hex of the element's bytes, in file order. */
      expectedBytes: string;
      foundBytes: string;
      /** Hex of the dtype's bit pattern (the bytes read as one little-endian number): f16 bytes 57b0 are 0xb057. */
      expectedBits?: string;
      foundBits?: string;
      /** The element's multi-index, where the shape is known. */
      position?: number[];
      /** The element named for a person: "expert 5 (slot 1), up row 2, column 7". */
      where?: string;
      /** Decoded element values, where the dtype has a decoder. */
      expectedValue?: number | bigint;
      foundValue?: number | bigint;
      /** How many elements of this tensor differ in all. */
      differing: number;
    };

/** Raised where a bit-exact match is required; carries the first difference. */
export class BitMismatch extends MoeConformanceError {
  constructor(readonly difference: BitDifference) {
    super(describeDifference(difference), {
      tensor: difference.tensor,
      ...('expected' in difference ? { expected: difference.expected, found: difference.found } : {}),
      ...(difference.kind === 'bytes' ? { expected: difference.expectedBytes, found: difference.foundBytes } : {}),
    });
  }
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
/** The bit pattern of one little-endian element (sub-byte dtypes: the packed byte as stored). */
const bitsOf = (dtype: DType, b: Uint8Array) => (dtypeBits(dtype) < 8 ? hex(b) : hex(b.slice().reverse()));

/** One element's value, decoded independently of any bulk codec path where it is an integer. */
function elementValue(dtype: DType, bytes: Uint8Array): number | bigint | undefined {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'BOOL': case 'U8': return v.getUint8(0);
    case 'I8': return v.getInt8(0);
    case 'I16': return v.getInt16(0, true);
    case 'U16': return v.getUint16(0, true);
    case 'I32': return v.getInt32(0, true);
    case 'U32': return v.getUint32(0, true);
    case 'I64': return v.getBigInt64(0, true);
    case 'U64': return v.getBigUint64(0, true);
    default:
      try {
        return decodeFloats64(dtype, bytes)[0];
      } catch {
        return undefined;
      }
  }
}

/**
 * Elements of `size` bytes that differ between two byte runs compared from their starts (a
 * byte one run lacks counts as different): the first one's index, or -1, and how many.
 */
export function differingElements(e: Uint8Array, f: Uint8Array, size: number): { first: number; count: number } {
  let first = -1;
  let count = 0;
  const n = Math.max(e.length, f.length);
  for (let i = 0; i < n; i += size) {
    let same = true;
    for (let j = i; j < i + size; j++) if (e[j] !== f[j]) same = false;
    if (!same) {
      count++;
      if (first < 0) first = i / size;
    }
  }
  return { first, count };
}

/**
 * The 'bytes' difference at element `index` of a tensor, from that element's bytes on each
 * side (decoded where the dtype allows); located where the shape (and the layer's expert ids) are given.
 */
export function bytesDifference(
  tensor: string, dtype: DType, index: number, expected: Uint8Array, found: Uint8Array, differing: number, at?: { shape: readonly number[]; ids?: readonly number[] },
): BitDifference {
  const bits = dtypeBits(dtype);
  const size = bits % 8 === 0 ? bits / 8 : 1;
  const diff: BitDifference = { kind: 'bytes', tensor, index, expectedBytes: hex(expected), foundBytes: hex(found), differing };
  if (expected.length === size) diff.expectedBits = bitsOf(dtype, expected);
  if (found.length === size) diff.foundBits = bitsOf(dtype, found);
  if (at && bits >= 8) {
    diff.position = positionOf(at.shape, index);
    diff.where = describePosition(tensor, at.shape, diff.position, at.ids);
  }
  if (bits % 8 === 0 && expected.length === size && found.length === size) {
    const ev = elementValue(dtype, expected);
    const fv = elementValue(dtype, found);
    if (ev !== undefined) diff.expectedValue = ev;
    if (fv !== undefined) diff.foundValue = fv;
  }
  return diff;
}

function compareBytes(name: string, e: Tensor, f: Tensor, ids?: readonly number[]): BitDifference | undefined {
  const bits = dtypeBits(e.dtype);
  const size = bits % 8 === 0 ? bits / 8 : 1;
  const { first, count } = differingElements(e.bytes, f.bytes, size);
  if (first < 0) return undefined;
  const at = first * size;
  return bytesDifference(name, e.dtype, first, e.bytes.subarray(at, at + size), f.bytes.subarray(at, at + size), count, { shape: e.shape, ...(ids && { ids }) });
}

/** How two tensors' names, dtypes and shapes disagree, before any byte is looked at. */
export function headerDifference(name: string, e: Pick<Tensor, 'dtype' | 'shape'> | undefined, f: Pick<Tensor, 'dtype' | 'shape'> | undefined): BitDifference | undefined {
  if (!f) return { kind: 'missing', tensor: name };
  if (!e) return { kind: 'extra', tensor: name };
  if (e.dtype !== f.dtype) return { kind: 'dtype', tensor: name, expected: e.dtype, found: f.dtype };
  if (e.shape.length !== f.shape.length || e.shape.some((d, i) => d !== f.shape[i])) return { kind: 'shape', tensor: name, expected: e.shape, found: f.shape };
  return undefined;
}

/** The first difference between two canonical maps (names in sorted order), or undefined. */
export function firstDifference(expected: Canonical, found: Canonical): BitDifference | undefined {
  const names = [...new Set([...expected.keys(), ...found.keys()])].sort();
  for (const name of names) {
    const e = expected.get(name);
    const f = found.get(name);
    const d = headerDifference(name, e, f) ?? compareBytes(name, e!, f!, idsFor(name, expected));
    if (d) return d;
  }
  return undefined;
}

/** Throws BitMismatch at the first difference. */
export function assertBitIdentical(expected: Canonical, found: Canonical): void {
  const d = firstDifference(expected, found);
  if (d) throw new BitMismatch(d);
}

export function describeDifference(d: BitDifference): string {
  switch (d.kind) {
    case 'missing': return `tensor ${d.tensor} is missing`;
    case 'extra': return `tensor ${d.tensor} is not expected`;
    case 'dtype': return `tensor ${d.tensor} has dtype ${d.found}, expected ${d.expected}`;
    case 'shape': return `tensor ${d.tensor} has shape [${d.found.join(', ')}], expected [${d.expected.join(', ')}]`;
    case 'bytes': {
      const side = (bits: string | undefined, bytes: string, v: number | bigint | undefined) => `${bits !== undefined ? `0x${bits}` : bytes === '' ? 'nothing' : `bytes ${bytes}`}${v !== undefined ? ` (${String(v)})` : ''}`;
      return `tensor ${d.tensor} differs at ${d.where ?? `element ${d.index}`}: found ${side(d.foundBits, d.foundBytes, d.foundValue)}, expected ${side(d.expectedBits, d.expectedBytes, d.expectedValue)}; ${d.differing} element(s) differ`;
    }
  }
}
