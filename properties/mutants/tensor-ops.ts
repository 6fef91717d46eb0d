// Byte-level tensor surgery for the mutant loaders: select rows, permute rows within each
// expert slot, pick expert slots. Values are moved, never decoded (except where a bug
// rescales them).
import { dtypeBits } from '../../harness/safetensors/dtypes.js';
import type { Tensor } from '../../harness/tensor.js';

const elem = (t: Tensor) => dtypeBits(t.dtype) / 8;

/** Bytes of one row of axis `axis` (everything after it). */
function rowBytes(t: Tensor, axis: number): number {
  return t.shape.slice(axis + 1).reduce((a, b) => a * b, 1) * elem(t);
}

/**
 * For each slot of the leading axis (or the whole tensor when `stacked` is false), keeps
 * the given row ranges of the next axis, in order.
 */
export function selectRows(t: Tensor, ranges: ReadonlyArray<readonly [number, number]>, stacked: boolean): Tensor {
  const rowAxis = stacked ? 1 : 0;
  const slots = stacked ? t.shape[0]! : 1;
  const rows = t.shape[rowAxis]!;
  const rb = rowBytes(t, rowAxis);
  const kept = ranges.reduce((s, [a, b]) => s + (b - a), 0);
  const out = new Uint8Array(slots * kept * rb);
  let o = 0;
  for (let s = 0; s < slots; s++) {
    for (const [a, b] of ranges) {
      out.set(t.bytes.subarray((s * rows + a) * rb, (s * rows + b) * rb), o);
      o += (b - a) * rb;
    }
  }
  const shape = [...t.shape];
  shape[rowAxis] = kept;
  return { dtype: t.dtype, shape, bytes: out };
}

/** Row `i` of the result is row `source(i)` of the input, within every slot. */
export function permuteRows(t: Tensor, source: (i: number, rows: number) => number, stacked: boolean): Tensor {
  const rowAxis = stacked ? 1 : 0;
  const rows = t.shape[rowAxis]!;
  return selectRows(t, Array.from({ length: rows }, (_, i) => [source(i, rows), source(i, rows) + 1] as const), stacked);
}

/** The slots `slots` of a tensor stacked on its leading axis, in that order. */
export function pickSlots(t: Tensor, slots: readonly number[]): Tensor {
  const rb = rowBytes(t, 0);
  const out = new Uint8Array(slots.length * rb);
  slots.forEach((s, i) => out.set(t.bytes.subarray(s * rb, (s + 1) * rb), i * rb));
  return { dtype: t.dtype, shape: [slots.length, ...t.shape.slice(1)], bytes: out };
}

/** Each `[n, n]` matrix of a `[slots, n, n]` tensor transposed. */
export function transposeSquare(t: Tensor): Tensor {
  const [slots, n] = [t.shape[0]!, t.shape[1]!];
  const e = elem(t);
  const out = new Uint8Array(t.bytes.length);
  for (let s = 0; s < slots; s++) {
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const from = ((s * n + i) * n + j) * e;
        const to = ((s * n + j) * n + i) * e;
        out.set(t.bytes.subarray(from, from + e), to);
      }
    }
  }
  return { dtype: t.dtype, shape: [...t.shape], bytes: out };
}

export function int32s(t: Tensor): number[] {
  const v = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
  return Array.from({ length: t.shape[0]! }, (_, i) => v.getInt32(4 * i, true));
}

export function int32Tensor(values: readonly number[]): Tensor {
  return { dtype: 'I32', shape: [values.length], bytes: new Uint8Array(new Int32Array(values).buffer) };
}
