import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Tensor } from '../tensor.js';
import { ScaleMismatch } from './errors.js';
import { dequantizeNvfp4, NVFP4_BLOCK } from './nvfp4-math.js';

const seed = Number(process.env.FC_SEED ?? 42);

// Independent slow reference: E2M1 from its bit fields (bias 1, subnormal m*0.5), 0x8 read as +0
// (ModelOpt's table), E4M3 from its bit fields, and the two roundings of ModelOpt's dequantize.
function e2m1(n: number): number {
  if (n === 8) return 0;
  const sign = n & 8 ? -1 : 1;
  const e = (n >> 1) & 3;
  const m = n & 1;
  return sign * (e === 0 ? m * 0.5 : (1 + m / 2) * 2 ** (e - 1));
}
function e4m3(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const e = (b >> 3) & 15;
  const m = b & 7;
  return e === 0 ? sign * (m / 8) * 2 ** -6 : sign * (1 + m / 8) * 2 ** (e - 7);
}
const f32 = (shape: number[], v: number[]): Tensor => ({ dtype: 'F32', shape, bytes: new Uint8Array(Float32Array.from(v).buffer) });
const values = (t: Tensor) => Array.from(new Float32Array(t.bytes.buffer, t.bytes.byteOffset, t.bytes.length / 4));

describe('NVFP4 dequantization', () => {
  it('matches the bit-field reference: low nibble first, one scale per 16, gate and up each with their scale_2', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 0, max: 2 ** 31 }),
        (E, rows, blocks, s0) => {
          let x = s0;
          const rnd = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8) / 2 ** 24;
          const R = 2 * rows;
          const C = blocks * NVFP4_BLOCK;
          const q = Uint8Array.from({ length: E * R * (C / 2) }, () => Math.floor(rnd() * 256));
          const s = Uint8Array.from({ length: E * R * blocks }, () => 1 + Math.floor(rnd() * 0x7e));
          const s2 = Array.from({ length: E * 2 }, () => Math.fround(rnd() * 0.01 + 1e-6));
          const got = values(dequantizeNvfp4({ dtype: 'U8', shape: [E, R, C / 2], bytes: q }, { dtype: 'F8_E4M3', shape: [E, R, blocks], bytes: s }, f32([E, 2], s2), { parts: 2, name: 'w13' }));
          const want: number[] = [];
          for (let e = 0; e < E; e++)
            for (let i = 0; i < R; i++)
              for (let j = 0; j < C; j++) {
                const byte = q[((e * R + i) * C + j) >> 1]!;
                const code = j % 2 === 0 ? byte & 15 : byte >> 4;
                const factor = Math.fround(e4m3(s[(e * R + i) * blocks + Math.floor(j / 16)]!) * s2[e * 2 + Math.floor(i / rows)]!);
                want.push(Math.fround(e2m1(code) * factor));
              }
          expect(got.map((v) => Object.is(v, -0) ? '-0' : v)).toEqual(want.map((v) => Object.is(v, -0) ? '-0' : v));
        },
      ),
      { seed, numRuns: 60 },
    );
  });

  it('code 0x8 is +0.0 (ModelOpt table), not -0.0', () => {
    const out = values(dequantizeNvfp4({ dtype: 'U8', shape: [1, 8], bytes: new Uint8Array(8).fill(0x88) }, { dtype: 'F8_E4M3', shape: [1, 1], bytes: Uint8Array.of(0x38) }, f32([], [1]), { parts: 1, name: 'w2' }));
    expect(out.every((v) => Object.is(v, 0))).toBe(true);
  });

  it('rounds the scale product to float32 before the element product', () => {
    // scale 1.125 (0x39) * scale_2 = 1 + 2^-23 gives 1.125 + 1.125*2^-23, rounded to float32 first.
    const s2 = Math.fround(1 + 2 ** -23);
    const out = values(dequantizeNvfp4({ dtype: 'U8', shape: [1, 8], bytes: new Uint8Array(8).fill(0x77) }, { dtype: 'F8_E4M3', shape: [1, 1], bytes: Uint8Array.of(0x39) }, f32([], [s2]), { parts: 1, name: 'w2' }));
    expect(out[0]).toBe(Math.fround(6 * Math.fround(1.125 * s2)));
  });

  it('refuses a scale grid that does not fit and a scale_2 per expert where gate and up need two', () => {
    const w: Tensor = { dtype: 'U8', shape: [1, 2, 8], bytes: new Uint8Array(16) };
    expect(() => dequantizeNvfp4(w, { dtype: 'F8_E4M3', shape: [1, 2, 2], bytes: new Uint8Array(4) }, f32([1, 2], [1, 1]), { parts: 2, name: 'w13' })).toThrow(ScaleMismatch);
    expect(() => dequantizeNvfp4(w, { dtype: 'F8_E4M3', shape: [1, 2, 1], bytes: new Uint8Array(2) }, f32([1], [1]), { parts: 2, name: 'w13' })).toThrow(ScaleMismatch);
    expect(() => dequantizeNvfp4(w, { dtype: 'F32', shape: [1, 2, 1], bytes: new Uint8Array(8) }, f32([1, 2], [1, 1]), { parts: 2, name: 'w13' })).toThrow(/F8_E4M3/);
  });
});
