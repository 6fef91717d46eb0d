// Byte-level tensor surgery: keep ranges of one axis, concatenate along an axis, pick
// slots of a stacked tensor, transpose the last two axes. Values are moved, never decoded.
// The engine forms (canonical/forms.ts) and the mutant loaders (properties/mutants/) use them.
import { dtypeBits } from './safetensors/dtypes.js';
import type { Tensor } from './tensor.js';

const elem = (t: Tensor) => dtypeBits(t.dtype) / 8;
const product = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

/** Keeps the given index ranges of axis `axis`, in order (everything before the axis is looped over). */
export function selectAxis(t: Tensor, axis: number, ranges: ReadonlyArray<readonly [number, number]>): Tensor {
  const outer = product(t.shape.slice(0, axis));
  const n = t.shape[axis]!;
  const rb = product(t.shape.slice(axis + 1)) * elem(t);
  const kept = ranges.reduce((s, [a, b]) => s + (b - a), 0);
  const out = new Uint8Array(outer * kept * rb);
  let o = 0;
  for (let s = 0; s < outer; s++) {
    for (const [a, b] of ranges) {
      out.set(t.bytes.subarray((s * n + a) * rb, (s * n + b) * rb), o);
      o += (b - a) * rb;
    }
  }
  const shape = [...t.shape];
  shape[axis] = kept;
  return { dtype: t.dtype, shape, bytes: out };
}

/** Tensors of one dtype, equal in every axis but `axis`, joined along it. */
export function concatAxis(ts: readonly Tensor[], axis: number): Tensor {
  const a = ts[0]!;
  const outer = product(a.shape.slice(0, axis));
  const rb = product(a.shape.slice(axis + 1)) * elem(a);
  const total = ts.reduce((s, t) => s + t.shape[axis]!, 0);
  const out = new Uint8Array(outer * total * rb);
  let o = 0;
  for (let s = 0; s < outer; s++) {
    for (const t of ts) {
      const n = t.shape[axis]! * rb;
      out.set(t.bytes.subarray(s * n, (s + 1) * n), o);
      o += n;
    }
  }
  const shape = [...a.shape];
  shape[axis] = total;
  return { dtype: a.dtype, shape, bytes: out };
}

/**
 * For each slot of the leading axis (or the whole tensor when `stacked` is false), keeps
 * the given row ranges of the next axis, in order.
 */
export function selectRows(t: Tensor, ranges: ReadonlyArray<readonly [number, number]>, stacked: boolean): Tensor {
  return selectAxis(t, stacked ? 1 : 0, ranges);
}

/** Row `i` of the result is row `source(i)` of the input, within every slot. */
export function permuteRows(t: Tensor, source: (i: number, rows: number) => number, stacked: boolean): Tensor {
  const rows = t.shape[stacked ? 1 : 0]!;
  return selectRows(t, Array.from({ length: rows }, (_, i) => [source(i, rows), source(i, rows) + 1] as const), stacked);
}

/** The slots `slots` of a tensor stacked on its leading axis, in that order. */
export function pickSlots(t: Tensor, slots: readonly number[]): Tensor {
  return selectAxis(t, 0, slots.map((s) => [s, s + 1] as const));
}

/** Each `[a, b]` matrix of a `[..., a, b]` tensor transposed to `[b, a]`. */
export function transposeLast2(t: Tensor): Tensor {
  const d = t.shape.length;
  const [a, b] = [t.shape[d - 2]!, t.shape[d - 1]!];
  const outer = product(t.shape.slice(0, -2));
  const e = elem(t);
  const out = new Uint8Array(t.bytes.length);
  for (let s = 0; s < outer; s++) {
    for (let i = 0; i < a; i++) {
      for (let j = 0; j < b; j++) {
        const from = ((s * a + i) * b + j) * e;
        const to = ((s * b + j) * a + i) * e;
        out.set(t.bytes.subarray(from, from + e), to);
      }
    }
  }
  return { dtype: t.dtype, shape: [...t.shape.slice(0, -2), b, a], bytes: out };
}

/** Each `[n, n]` matrix of a `[slots, n, n]` tensor transposed. */
export function transposeSquare(t: Tensor): Tensor {
  return transposeLast2(t);
}

export function int32s(t: Tensor): number[] {
  const v = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
  return Array.from({ length: t.shape[0]! }, (_, i) => v.getInt32(4 * i, true));
}

export function int32Tensor(values: readonly number[]): Tensor {
  return { dtype: 'I32', shape: [values.length], bytes: new Uint8Array(new Int32Array(values).buffer) };
}
