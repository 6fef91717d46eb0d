import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidParallelRequest } from '../canonical/errors.js';
import type { Tensor } from '../tensor.js';
import { QuantizedWeightError, ScaleMismatch } from './errors.js';
import { dequantizeMxfp4 } from './mxfp4.js';
import { MXFP4_SCHEME } from './scheme.js';
import { checkRequest } from '../canonical/cut.js';
import { WHOLE } from '../tensor.js';

const seed = Number(process.env.FC_SEED ?? 42);

// Independent reference: E2M1 from its bits (1 sign, 2 exponent bits with bias 1, 1 mantissa
// bit), element 2k in the low nibble of byte k, value times 2^(scale - 127).
function e2m1(n: number): number {
  const sign = n & 8 ? -1 : 1;
  const e = (n >> 1) & 3;
  const m = n & 1;
  return e === 0 ? sign * m * 0.5 : sign * (1 + m / 2) * 2 ** (e - 1);
}
function referenceRow(blocks: Uint8Array, scales: Uint8Array, cols: number, row: number): number[] {
  const out: number[] = [];
  for (let j = 0; j < cols; j++) {
    const byte = blocks[row * (cols / 2) + (j >> 1)]!;
    const nibble = j % 2 === 0 ? byte & 15 : byte >> 4;
    const s = scales[row * (cols / 32) + Math.floor(j / 32)]!;
    out.push(s === 255 ? NaN : Math.fround(e2m1(nibble) * 2 ** (s - 127)));
  }
  return out;
}
const u8 = (shape: number[], bytes: Uint8Array): Tensor => ({ dtype: 'U8', shape, bytes });
const values = (t: Tensor): number[] => Array.from(new Float32Array(t.bytes.buffer, t.bytes.byteOffset, t.bytes.length / 4));
const tagNaN = (a: number[]) => a.map((x) => (Number.isNaN(x) ? 'NaN' : x));

describe('MXFP4 dequantization', () => {
  it('every byte (both nibbles) under every scale byte matches the textbook decode', () => {
    // One row of 256 blocks, block k under scale byte k; the bytes run through every pattern in each block.
    const bytes = Uint8Array.from({ length: 256 * 16 }, (_, i) => (i * 17 + (i >> 4)) & 255);
    const scales = Uint8Array.from({ length: 256 }, (_, k) => k);
    const got = dequantizeMxfp4(u8([1, 256, 16], bytes), u8([1, 256], scales), 'w');
    expect(got.shape).toEqual([1, 256 * 32]);
    expect(tagNaN(values(got))).toEqual(tagNaN(referenceRow(bytes, scales, 256 * 32, 0)));
    // Largest scale with the largest magnitude overflows float32, as torch's float32 ldexp does.
    expect(values(dequantizeMxfp4(u8([1, 16], new Uint8Array(16).fill(0x77)), u8([1], Uint8Array.of(254)), 'w'))[0]).toBe(Infinity);
  });

  it('random [E, R, G, 16] stacks dequantize row by row to the reference', () => {
    const arb = fc
      .record({ e: fc.integer({ min: 1, max: 3 }), r: fc.integer({ min: 1, max: 5 }), g: fc.integer({ min: 1, max: 3 }) })
      .chain((d) =>
        fc.record({
          d: fc.constant(d),
          blocks: fc.uint8Array({ minLength: d.e * d.r * d.g * 16, maxLength: d.e * d.r * d.g * 16 }),
          scales: fc.uint8Array({ minLength: d.e * d.r * d.g, maxLength: d.e * d.r * d.g, min: 100, max: 150 }),
        }),
      );
    fc.assert(
      fc.property(arb, ({ d, blocks, scales }) => {
        const got = values(dequantizeMxfp4(u8([d.e, d.r, d.g, 16], blocks), u8([d.e, d.r, d.g], scales), 'w'));
        const want: number[] = [];
        for (let row = 0; row < d.e * d.r; row++) want.push(...referenceRow(blocks, scales, d.g * 32, row));
        expect(got).toEqual(want);
      }),
      { seed, numRuns: 100 },
    );
  });

  it('refuses blocks and scales that do not fit each other', () => {
    expect(() => dequantizeMxfp4(u8([2, 8], new Uint8Array(16)), u8([2], new Uint8Array(2)), 'w')).toThrow(QuantizedWeightError);
    expect(() => dequantizeMxfp4({ dtype: 'I8', shape: [1, 16], bytes: new Uint8Array(16) }, u8([1], new Uint8Array(1)), 'w')).toThrow(QuantizedWeightError);
    expect(() => dequantizeMxfp4(u8([2, 16], new Uint8Array(32)), u8([3], new Uint8Array(3)), 'w')).toThrow(ScaleMismatch);
    expect(() => dequantizeMxfp4(u8([2, 16], new Uint8Array(32)), u8([2, 1], new Uint8Array(2)), 'w')).toThrow(ScaleMismatch);
    expect(() => dequantizeMxfp4(u8([2, 16], new Uint8Array(31)), u8([2], new Uint8Array(2)), 'w')).toThrow(QuantizedWeightError);
  });

  it('TP must leave whole 32-element blocks of w2 on each rank', () => {
    expect(() => checkRequest({ ...WHOLE, tpSize: 2 }, { experts: 2, intermediate: 64, sharedIntermediate: 0, quant: MXFP4_SCHEME })).not.toThrow();
    expect(() => checkRequest({ ...WHOLE, tpSize: 3 }, { experts: 2, intermediate: 96, sharedIntermediate: 0, quant: MXFP4_SCHEME })).not.toThrow();
    expect(() => checkRequest({ ...WHOLE, tpSize: 4 }, { experts: 2, intermediate: 64, sharedIntermediate: 0, quant: MXFP4_SCHEME })).toThrow(InvalidParallelRequest);
    expect(() => checkRequest({ ...WHOLE, tpSize: 2 }, { experts: 2, intermediate: 96, sharedIntermediate: 0, quant: MXFP4_SCHEME })).toThrow(InvalidParallelRequest);
    expect(() => checkRequest({ ...WHOLE, tpSize: 3 }, { experts: 2, intermediate: 64, sharedIntermediate: 0, quant: MXFP4_SCHEME })).toThrow(InvalidParallelRequest);
  });
});
