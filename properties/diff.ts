// How a loader's canonical tensors differ from the expected ones, as a case failure: the
// first mismatching tensor, where it first differs (expected versus found, bytes and
// values), and a heat map of the error by expert and by row that shows the bug's shape.
import { decodeFloats64 } from '../harness/safetensors/codecs.js';
import { dtypeBits } from '../harness/safetensors/dtypes.js';
import type { CaseFailure } from '../harness/conformance/results.js';
import type { Canonical, Tensor } from '../harness/tensor.js';

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

/** The first difference between two canonical sets, or undefined when they are identical. */
export function diffCanonical(expected: Canonical, found: Canonical, where: string): CaseFailure | undefined {
  const missing = [...expected.keys()].filter((k) => !found.has(k)).sort();
  const extra = [...found.keys()].filter((k) => !expected.has(k)).sort();
  if (missing.length || extra.length) {
    return {
      message: `${where}: the set of tensor names differs${missing.length ? `; missing ${missing.join(', ')}` : ''}${extra.length ? `; unexpected ${extra.join(', ')}` : ''}`,
      ...(missing[0] !== undefined ? { tensor: missing[0] } : { tensor: extra[0]! }),
      expected: missing.length ? 'present' : 'absent',
      found: missing.length ? 'absent' : 'present',
    };
  }
  for (const name of [...expected.keys()].sort()) {
    const failure = diffTensor(expected.get(name)!, found.get(name)!, name, where);
    if (failure) return failure;
  }
  return undefined;
}

function diffTensor(e: Tensor, f: Tensor, name: string, where: string): CaseFailure | undefined {
  if (e.dtype !== f.dtype) return { message: `${where}: dtype differs`, tensor: name, expected: e.dtype, found: f.dtype };
  if (e.shape.join() !== f.shape.join()) return { message: `${where}: shape differs`, tensor: name, expected: `[${e.shape.join(', ')}]`, found: `[${f.shape.join(', ')}]` };
  if (e.bytes.length !== f.bytes.length) return { message: `${where}: byte length differs`, tensor: name, expected: String(e.bytes.length), found: String(f.bytes.length) };
  let firstByte = -1;
  for (let i = 0; i < e.bytes.length; i++) {
    if (e.bytes[i] !== f.bytes[i]) {
      firstByte = i;
      break;
    }
  }
  if (firstByte < 0) return undefined;
  const size = dtypeBits(e.dtype) / 8;
  const index = Math.floor(firstByte / size);
  const hex = (t: Tensor) => [...t.bytes.subarray(index * size, (index + 1) * size)].map((b) => b.toString(16).padStart(2, '0')).join('');
  const isFloat = FLOAT_DTYPES.has(e.dtype);
  const value = (t: Tensor) => (isFloat ? ` (${decodeFloats64(e.dtype, t.bytes.subarray(index * size, (index + 1) * size))[0]})` : '');
  const differing = countDiffering(e.bytes, f.bytes, size);
  return {
    message: `${where}: bytes differ at element ${index} (${unravel(index, e.shape)}); ${differing} of ${e.bytes.length / size} elements differ`,
    tensor: name,
    expected: `0x${hex(e)}${value(e)}`,
    found: `0x${hex(f)}${value(f)}`,
    ...(isFloat ? { heatmap: errorByExpertAndRow(e, f) } : {}),
  };
}

function countDiffering(a: Uint8Array, b: Uint8Array, size: number): number {
  let n = 0;
  for (let i = 0; i < a.length; i += size) {
    for (let j = 0; j < size; j++) {
      if (a[i + j] !== b[i + j]) {
        n++;
        break;
      }
    }
  }
  return n;
}

function unravel(index: number, shape: readonly number[]): string {
  const out: number[] = [];
  let rest = index;
  for (let d = shape.length - 1; d >= 0; d--) {
    out.unshift(rest % shape[d]!);
    rest = Math.floor(rest / shape[d]!);
  }
  return `[${out.join(', ')}]`;
}

/**
 * Max |expected − found| per (expert, row) for a stacked `[E, rows, cols]` tensor, per
 * (row, column block) for a 2-D one, as one row for a vector. NaN where either is NaN.
 */
export function errorByExpertAndRow(e: Tensor, f: Tensor): number[][] {
  const a = decodeFloats64(e.dtype, e.bytes);
  const b = decodeFloats64(f.dtype, f.bytes);
  const [outer, rows] = e.shape.length >= 3 ? [e.shape[0]!, e.shape[1]!] : e.shape.length === 2 ? [1, e.shape[0]!] : [1, 1];
  const cols = a.length / Math.max(1, outer * rows);
  const map: number[][] = [];
  for (let x = 0; x < outer; x++) {
    const row: number[] = [];
    for (let r = 0; r < rows; r++) {
      let m = 0;
      for (let c = 0; c < cols; c++) {
        const i = (x * rows + r) * cols + c;
        const d = Math.abs(a[i]! - b[i]!);
        m = Number.isNaN(d) && !(Number.isNaN(a[i]!) && Number.isNaN(b[i]!)) ? NaN : Math.max(m, Number.isNaN(d) ? 0 : d);
      }
      row.push(m);
    }
    map.push(row);
  }
  return map;
}
