// How a loader's canonical tensors differ from the expected ones, as a case failure: the
// diagnosis of every mismatching tensor (harness/compare/diagnose.ts: what the loader did),
// the first difference found by harness/compare/bits.ts (tensor, where, expected versus
// found bit patterns and values), plus a heat map of the error by expert and by row that
// shows the bug's shape (one expert, a half of the rows, every row past a TP boundary, ...).
import { describeDifference, firstDifference } from '../harness/compare/bits.js';
import { diagnoseCanonical, type DiagnoseContext } from '../harness/compare/diagnose.js';
import { idsFor } from '../harness/compare/locate.js';
import type { CaseFailure } from '../harness/conformance/results.js';
import { decodeFloats64 } from '../harness/safetensors/codecs.js';
import type { Canonical, Tensor } from '../harness/tensor.js';

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

/**
 * The first difference between two canonical sets and the diagnosis of every differing
 * tensor, or undefined when they are identical. `context` (the rank, the whole reference)
 * lets the diagnosis find another rank's or another expert's data.
 */
export function diffCanonical(expected: Canonical, found: Canonical, where: string, context: DiagnoseContext = {}): CaseFailure | undefined {
  const d = firstDifference(expected, found);
  if (!d) return undefined;
  const failure: CaseFailure = { message: `${where}: ${describeDifference(d)}`, tensor: d.tensor, diagnosis: diagnoseCanonical(expected, found, context) };
  switch (d.kind) {
    case 'missing':
      return { ...failure, expected: 'present', found: 'absent' };
    case 'extra':
      return { ...failure, expected: 'absent', found: 'present' };
    case 'dtype':
      return { ...failure, expected: d.expected, found: d.found };
    case 'shape':
      return { ...failure, expected: `[${d.expected.join(', ')}]`, found: `[${d.found.join(', ')}]` };
    case 'bytes': {
      const value = (bits: string | undefined, bytes: string, v: number | bigint | undefined) => `${bits !== undefined ? `0x${bits}` : `bytes ${bytes}`}${v === undefined ? '' : ` (${String(v)})`}`;
      const e = expected.get(d.tensor)!;
      const ids = idsFor(d.tensor, expected);
      return {
        ...failure,
        expected: value(d.expectedBits, d.expectedBytes, d.expectedValue),
        found: value(d.foundBits, d.foundBytes, d.foundValue),
        ...(FLOAT_DTYPES.has(e.dtype) && { heatmap: errorByExpertAndRow(e, found.get(d.tensor)!) }),
        // Rows of a stacked expert tensor are slots: label them with the experts they should hold.
        ...(FLOAT_DTYPES.has(e.dtype) && e.shape.length >= 3 && ids?.length === e.shape[0] && { heatmapRows: ids }),
      };
    }
  }
}

/**
 * Max |expected − found| per (expert, row) of a stacked `[E, rows, ...]` tensor, per row of
 * a 2-D one, one cell for a vector. NaN where exactly one side is NaN.
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
        const bothNaN = Number.isNaN(a[i]!) && Number.isNaN(b[i]!);
        m = bothNaN ? m : Math.max(m, Math.abs(a[i]! - b[i]!)); // Math.max keeps a NaN once one appears
      }
      row.push(m);
    }
    map.push(row);
  }
  return map;
}

/**
 * A failure in an expert slot that an engine form moved (eplb), with where the loader wrote
 * that slot: `note(tensor, slot)` says it for the slot of the first differing element.
 */
export function notingSlot(f: CaseFailure | undefined, expected: Canonical, found: Canonical, note: (tensor: string, slot: number) => string | undefined): CaseFailure | undefined {
  if (!f) return f;
  const d = firstDifference(expected, found);
  const t = d?.kind === 'bytes' ? expected.get(d.tensor) : undefined;
  if (d?.kind !== 'bytes' || !t || t.shape.length < 2) return f;
  const n = note(d.tensor, Math.floor(d.index / t.shape.slice(1).reduce((a, b) => a * b, 1)));
  return n ? { ...f, message: `${f.message} (${n})` } : f;
}
