// NVFP4 (NVIDIA ModelOpt) arithmetic, spec/layouts.md §4.1: E2M1 codes two per byte (element
// 2k in the low nibble), one F8_E4M3 scale per 16 elements of a row, and one F32
// `weight_scale_2` per projection. W = fround(e2m1(u) * fround(f32(scale) * scale_2)): the
// scale product is rounded to float32 first, as ModelOpt's `NVFP4QTensor.dequantize` does.
// Code 0x8 is +0.0, as in ModelOpt's `e2m1_values` table (index 8 holds 0, not -0).
import type { Tensor } from '../tensor.js';
import { decodeElements } from './elements.js';
import { QuantizedWeightError, ScaleMismatch } from './errors.js';

/** Elements per F8_E4M3 block scale. */
export const NVFP4_BLOCK = 16;

/** ModelOpt's `e2m1_values`: code -> value; index 8 is +0 (spec decision). */
export const NVFP4_E2M1: readonly number[] = [0, 0.5, 1, 1.5, 2, 3, 4, 6, 0, -0.5, -1, -1.5, -2, -3, -4, -6];

function expect(cond: boolean, E: typeof QuantizedWeightError, msg: string, tensor: string, expected: unknown, found: unknown): void {
  if (!cond) throw new E(msg, { tensor, expected, found });
}

/**
 * Dequantizes `weight` U8 [..., R, C/2] with `scale` F8_E4M3 [..., R, C/16] and `scale2` F32
 * [..., parts] (or [...] where parts = 1): the R rows are `parts` stacked projections of R/parts
 * rows (w13: gate then up), each with its own `weight_scale_2`.
 */
export function dequantizeNvfp4(weight: Tensor, scale: Tensor, scale2: Tensor, opts: { parts: number; name: string }): Tensor {
  const { parts, name } = opts;
  const rank = weight.shape.length;
  expect(weight.dtype === 'U8' && rank >= 2, QuantizedWeightError, 'NVFP4 weight must be U8 [..., rows, cols/2]', name, 'U8 of rank >= 2', `${weight.dtype} ${JSON.stringify(weight.shape)}`);
  const R = weight.shape[rank - 2]!;
  const half = weight.shape[rank - 1]!;
  const lead = weight.shape.slice(0, -2);
  const wantScale = [...lead, R, (2 * half) / NVFP4_BLOCK];
  expect(
    scale.dtype === 'F8_E4M3' && (2 * half) % NVFP4_BLOCK === 0 && scale.shape.length === rank && wantScale.every((d, i) => d === scale.shape[i]),
    ScaleMismatch,
    'NVFP4 block scale must be F8_E4M3, one per 16 elements of each row',
    `${name}_scale`,
    `F8_E4M3 ${JSON.stringify(wantScale)}`,
    `${scale.dtype} ${JSON.stringify(scale.shape)}`,
  );
  const wantScale2 = parts === 1 ? lead : [...lead, parts];
  expect(
    scale2.dtype === 'F32' && scale2.shape.length === wantScale2.length && wantScale2.every((d, i) => d === scale2.shape[i]) && R % parts === 0,
    ScaleMismatch,
    'NVFP4 weight_scale_2 must be F32, one per projection',
    `${name}_scale_2`,
    `F32 ${JSON.stringify(wantScale2)}`,
    `${scale2.dtype} ${JSON.stringify(scale2.shape)}`,
  );
  const s = decodeElements(scale, `${name}_scale`);
  const s2 = decodeElements(scale2, `${name}_scale_2`);
  const cols = 2 * half;
  const blocks = cols / NVFP4_BLOCK;
  const rowsPerPart = R / parts;
  const out = new Float32Array(weight.bytes.length * 2);
  const q = weight.bytes;
  const matrices = R === 0 || half === 0 ? 0 : q.length / (R * half);
  for (let m = 0; m < matrices; m++) {
    for (let i = 0; i < R; i++) {
      const global = m * parts + Math.floor(i / rowsPerPart);
      const g2 = s2[global]!;
      const row = m * R + i;
      for (let b = 0; b < blocks; b++) {
        const factor = Math.fround(s[row * blocks + b]! * g2);
        for (let k = 0; k < NVFP4_BLOCK / 2; k++) {
          const at = row * half + b * (NVFP4_BLOCK / 2) + k;
          const byte = q[at]!;
          out[2 * at] = Math.fround(NVFP4_E2M1[byte & 15]! * factor);
          out[2 * at + 1] = Math.fround(NVFP4_E2M1[byte >> 4]! * factor);
        }
      }
    }
  }
  return { dtype: 'F32', shape: [...lead, R, cols], bytes: new Uint8Array(out.buffer) };
}
