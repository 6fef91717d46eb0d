// INT4 group quantization arithmetic (spec/layouts.md §4.3): unsigned 4-bit codes `u`, eight
// to an I32 word (element 8j+k at bits 4k..4k+3 of word j, little-endian), one scale per
// `group` consecutive input columns of a row, and zero points `z` (eight rows to an I32 word
// along the output axis, compressed-tensors' packing; 8 where symmetric). W = (u - z) * s,
// rounded once in the scale's dtype (compressed-tensors' `_dequantize` computes in it), then
// widened exactly to F32.
import { decodeFloats, encodeFloats } from '../safetensors/codecs.js';
import type { Tensor } from '../tensor.js';
import { checkByteLength, decodeElements } from './elements.js';
import { QuantizedWeightError, ScaleMismatch } from './errors.js';

/** Codes per I32 word. */
export const INT4_PER_WORD = 8;
/** Zero point of symmetric INT4 in unsigned codes (compressed-tensors stores q + 8). */
export const INT4_SYMMETRIC_ZERO = 8;

export const INT4_SCALE_DTYPES = ['BF16', 'F16', 'F32'] as const;

const nibble = (bytes: Uint8Array, element: number) => (bytes[element >> 1]! >> ((element & 1) * 4)) & 15;

function check(ok: boolean, E: typeof QuantizedWeightError, msg: string, tensor: string, expected: unknown, found: unknown): void {
  if (!ok) throw new E(msg, { tensor, expected, found });
}

const describe = (t: Tensor) => `${t.dtype} ${JSON.stringify(t.shape)}`;
const same = (a: number[], b: number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Dequantizes `weight` I32 [..., R, C/8] with `scale` [..., R, C/group] and `zero` I32
 * [..., R/8, C/group] (undefined: symmetric) to F32 [..., R, C].
 */
export function dequantizeInt4(
  weight: Tensor,
  scale: Tensor,
  zero: Tensor | undefined,
  group: number,
  name: string,
  /**
   * `gIdx`: the group of each column. `ordered`: it must be column order (checked), groups
   * `[start/group ..)` of the scales; otherwise (activation order) any group of the scales,
   * which then hold every group of the whole projection.
   */
  opts: { zeroOffset?: number; gIdx?: { tensor: Tensor; start: number; ordered: boolean } } = {},
): Tensor {
  const rank = weight.shape.length;
  check(weight.dtype === 'I32' && rank >= 2, QuantizedWeightError, 'INT4 weight must be I32 words [..., rows, cols/8]', name, 'I32 of rank >= 2', describe(weight));
  const lead = weight.shape.slice(0, -2);
  const R = weight.shape[rank - 2]!;
  const C = weight.shape[rank - 1]! * INT4_PER_WORD;
  const actOrder = opts.gIdx !== undefined && !opts.gIdx.ordered;
  // Under activation order the scales hold every group of the projection, whatever columns this rank holds.
  const G = actOrder ? (scale.shape[scale.shape.length - 1] ?? 0) : C / group;
  const wantScale = [...lead, R, G];
  check((INT4_SCALE_DTYPES as readonly string[]).includes(scale.dtype) && Number.isInteger(G) && same(scale.shape, wantScale), ScaleMismatch, 'INT4 scale must be BF16/F16/F32, one per group of each row', `${name}_scale`, `${INT4_SCALE_DTYPES.join('|')} ${JSON.stringify(wantScale)}`, describe(scale));
  const wantZero = [...lead, R / INT4_PER_WORD, G];
  if (zero !== undefined) check(zero.dtype === 'I32' && R % INT4_PER_WORD === 0 && same(zero.shape, wantZero), ScaleMismatch, 'INT4 zero points must be I32, eight rows to a word', `${name}_zero`, `I32 ${JSON.stringify(wantZero)}`, describe(zero));
  checkByteLength(weight, name);
  if (zero !== undefined) checkByteLength(zero, `${name}_zero`);
  const s = decodeElements(scale, `${name}_scale`);
  const matrices = lead.reduce((a, b) => a * b, 1);
  const zeroOffset = opts.zeroOffset ?? 0;
  if (opts.gIdx?.ordered) checkTrivialGroups(opts.gIdx.tensor, C, group, opts.gIdx.start, `${name}_g_idx`);
  const groupOf = actOrder ? groupsOf(opts.gIdx!.tensor, C, G, `${name}_g_idx`) : undefined;
  // g_idx holds one row of C per stacked projection (w13: gate's, up's) of each matrix.
  const gParts = groupOf ? groupOf.length / (matrices * C) : 1;
  if (groupOf && (!Number.isInteger(gParts) || R % gParts !== 0)) throw new ScaleMismatch('g_idx rows do not match the stacked projections', { tensor: `${name}_g_idx`, expected: `${matrices} x parts x ${C}`, found: groupOf.length });
  const prod = new Float64Array(matrices * R * C);
  for (let m = 0; m < matrices; m++) {
    for (let i = 0; i < R; i++) {
      const row = m * R + i;
      for (let j = 0; j < C; j++) {
        const g = groupOf ? groupOf[(m * gParts + Math.floor(i / (R / gParts))) * C + j]! : Math.floor(j / group);
        const z = zero === undefined ? INT4_SYMMETRIC_ZERO : nibble(zero.bytes, ((m * (R / INT4_PER_WORD) + Math.floor(i / INT4_PER_WORD)) * G + g) * INT4_PER_WORD + (i % INT4_PER_WORD)) + zeroOffset;
        const at = row * C + j;
        prod[at] = (nibble(weight.bytes, at) - z) * s[row * G + g]!;
      }
    }
  }
  // One rounding in the scale's dtype (the product of a small integer and a scale is exact in a double).
  const rounded = scale.dtype === 'F32' ? Float32Array.from(prod) : decodeFloats(scale.dtype, encodeFloats(scale.dtype, prod));
  return { dtype: 'F32', shape: [...lead, R, C], bytes: new Uint8Array(rounded.buffer, rounded.byteOffset, rounded.byteLength) };
}

/**
 * Without activation ordering a `g_idx` must say what the layout does: column `start + j` is in
 * group `floor((start + j) / group)` (GPTQ writes it so when `desc_act` is false). Anything else
 * is refused: it would ask for act-order dequantization, not served yet.
 */
function checkTrivialGroups(gIdx: Tensor, cols: number, group: number, start: number, name: string): void {
  check(gIdx.dtype === 'I32' && gIdx.shape[gIdx.shape.length - 1] === cols, ScaleMismatch, 'g_idx must be I32, one group per input column', name, `I32 [..., ${cols}]`, describe(gIdx));
  const g = new Int32Array(gIdx.bytes.slice().buffer);
  for (let k = 0; k < g.length; k++) {
    const want = Math.floor((start + (k % cols)) / group);
    if (g[k] !== want) throw new ScaleMismatch('g_idx is not in column order: activation ordering (desc_act) is not served', { tensor: name, expected: `column ${start + (k % cols)} in group ${want}`, found: g[k] });
  }
}

/** AutoAWQ's order: nibble k of a word holds output column 8j + AWQ_ORDER[k] (packing_utils.py). */
export const AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7] as const;
/** The nibble holding output row 8j + r: the inverse of AWQ_ORDER. */
const AWQ_NIBBLE_OF = [0, 4, 1, 5, 2, 6, 3, 7] as const;

/**
 * AWQ (GEMM) INT4 in the canonical orientation: `weight` I32 [..., R/8, C] (eight output rows
 * to a word, in AWQ's nibble order), `scale` F16 [..., R, C/group], `zero` I32 [..., R/8,
 * C/group] (same order, stored as is) to F32 [..., R, C]: W = f16((u - z) * s).
 */
export function dequantizeAwq(weight: Tensor, scale: Tensor, zero: Tensor, group: number, name: string): Tensor {
  const rank = weight.shape.length;
  check(weight.dtype === 'I32' && rank >= 2, QuantizedWeightError, 'AWQ weight must be I32 words [..., rows/8, cols]', name, 'I32 of rank >= 2', describe(weight));
  const lead = weight.shape.slice(0, -2);
  const R = weight.shape[rank - 2]! * INT4_PER_WORD;
  const C = weight.shape[rank - 1]!;
  const G = C / group;
  const wantScale = [...lead, R, G];
  check((INT4_SCALE_DTYPES as readonly string[]).includes(scale.dtype) && Number.isInteger(G) && same(scale.shape, wantScale), ScaleMismatch, 'AWQ scale must be F16/BF16/F32, one per group of each output row', `${name}_scale`, `F16 ${JSON.stringify(wantScale)}`, describe(scale));
  const wantZero = [...lead, R / INT4_PER_WORD, G];
  check(zero.dtype === 'I32' && same(zero.shape, wantZero), ScaleMismatch, 'AWQ zero points must be I32, eight output rows to a word', `${name}_zero`, `I32 ${JSON.stringify(wantZero)}`, describe(zero));
  checkByteLength(weight, name);
  checkByteLength(zero, `${name}_zero`);
  const s = decodeElements(scale, `${name}_scale`);
  const matrices = lead.reduce((a, b) => a * b, 1);
  const prod = new Float64Array(matrices * R * C);
  const W = R / INT4_PER_WORD;
  for (let m = 0; m < matrices; m++) {
    for (let i = 0; i < R; i++) {
      const k = AWQ_NIBBLE_OF[i % INT4_PER_WORD]!;
      const word = m * W + Math.floor(i / INT4_PER_WORD);
      for (let j = 0; j < C; j++) {
        const g = Math.floor(j / group);
        const u = nibble(weight.bytes, (word * C + j) * INT4_PER_WORD + k);
        const z = nibble(zero.bytes, (word * G + g) * INT4_PER_WORD + k);
        prod[(m * R + i) * C + j] = (u - z) * s[(m * R + i) * G + g]!;
      }
    }
  }
  const rounded = scale.dtype === 'F32' ? Float32Array.from(prod) : decodeFloats(scale.dtype, encodeFloats(scale.dtype, prod));
  return { dtype: 'F32', shape: [...lead, R, C], bytes: new Uint8Array(rounded.buffer, rounded.byteOffset, rounded.byteLength) };
}

/** The group of each column under activation order (`g_idx`, one row of C per stacked projection), each checked to be one of the scales' G groups. */
function groupsOf(gIdx: Tensor, cols: number, groups: number, name: string): Int32Array {
  check(gIdx.dtype === 'I32' && gIdx.shape[gIdx.shape.length - 1] === cols, ScaleMismatch, 'g_idx must be I32, one group per input column', name, `I32 [..., ${cols}]`, describe(gIdx));
  const g = new Int32Array(gIdx.bytes.slice().buffer);
  const bad = g.findIndex((v) => v < 0 || v >= groups);
  if (bad >= 0) throw new ScaleMismatch('g_idx names a group the scales do not hold', { tensor: name, expected: `0 .. ${groups - 1}`, found: g[bad] });
  return g;
}
