import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Tensor } from '../tensor.js';
import { QuantConfigError, QuantizedWeightError, ScaleMismatch } from './errors.js';
import { blockSpan, dequantizeFp8, fp8TpSpans, parseBlockSize } from './fp8-block.js';

const seed = Number(process.env.FC_SEED ?? 42);

// Independent slow reference: E4M3 (fn) decoded from its bits by the textbook formula, and a
// whole matrix dequantized with global indices, edge blocks partial.
function e4m3(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const e = (b >> 3) & 15;
  const m = b & 7;
  if (e === 15 && m === 7) return NaN;
  return e === 0 ? sign * (m / 8) * 2 ** -6 : sign * (1 + m / 8) * 2 ** (e - 7);
}
function referenceDequant(q: Uint8Array, s: Float32Array, R: number, C: number, bm: number, bn: number): number[] {
  const sc = Math.ceil(C / bn);
  const out: number[] = [];
  for (let i = 0; i < R; i++) for (let j = 0; j < C; j++) out.push(Math.fround(e4m3(q[i * C + j]!) * s[Math.floor(i / bm) * sc + Math.floor(j / bn)]!));
  return out;
}

const f8 = (shape: number[], bytes: Uint8Array): Tensor => ({ dtype: 'F8_E4M3', shape, bytes });
const f32 = (shape: number[], values: ArrayLike<number>): Tensor => ({ dtype: 'F32', shape, bytes: new Uint8Array(Float32Array.from(values).buffer) });
const values = (t: Tensor): number[] => Array.from(new Float32Array(t.bytes.buffer, t.bytes.byteOffset, t.bytes.length / 4));
const sameValues = (a: number[], b: number[]) => expect(a.map((x) => (Number.isNaN(x) ? 'NaN' : x))).toEqual(b.map((x) => (Number.isNaN(x) ? 'NaN' : x)));

/** Rows [a, b) of a row-major [R, C] array. */
const rowsOf = <T>(a: ArrayLike<T>, C: number, from: number, to: number): T[] => Array.from(a).slice(from * C, to * C);
/** Columns [a, b) of a row-major [R, C] array. */
function colsOf<T>(a: ArrayLike<T>, R: number, C: number, from: number, to: number): T[] {
  const out: T[] = [];
  for (let i = 0; i < R; i++) for (let j = from; j < to; j++) out.push(a[i * C + j]!);
  return out;
}

const scaleValue = fc.float({ min: 2 ** -20, max: 2 ** 10, noNaN: true, noDefaultInfinity: true }).map(Math.fround);

describe('FP8 block dequantization', () => {
  it('every E4M3 pattern times several scales matches the textbook decode', () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const scales = [1, 0.5, Math.fround(1 / 448), Math.fround(3.3e-3), 2 ** 20];
    // [16, 16] with 8x8 blocks: each byte sits in one of four blocks with its own scale.
    for (const sv of scales) {
      const s = Float32Array.from([sv, -sv, sv * 3, sv / 7].map(Math.fround));
      const got = values(dequantizeFp8(f8([16, 16], bytes), f32([2, 2], s), { block: { rows: 8, cols: 8 }, parts: 1, rowOrigin: 0, colOrigin: 0, name: 'w' }));
      sameValues(got, referenceDequant(bytes, s, 16, 16, 8, 8));
    }
  });

  it('partial edge blocks take the scale of their own block (I = 160, H = 192 with 128x128 blocks)', () => {
    const R = 160;
    const C = 192;
    const q = Uint8Array.from({ length: R * C }, () => 0x38); // 1.0 everywhere
    const s = Float32Array.from([2, 3, 5, 7]);
    const got = values(dequantizeFp8(f8([R, C], q), f32([2, 2], s), { block: { rows: 128, cols: 128 }, parts: 1, rowOrigin: 0, colOrigin: 0, name: 'w' }));
    expect(got[127 * C + 127]).toBe(2);
    expect(got[127 * C + 128]).toBe(3);
    expect(got[128 * C + 127]).toBe(5);
    expect(got[159 * C + 191]).toBe(7);
    // A uniform 80x96 split of the same grid (what reading block = R / scale_rows would do) differs here:
    expect(got[80 * C + 0]).toBe(2);
  });

  it('each TP rank dequantizes its w13 rows (gate then up) and w2 columns to the global values, blocks straddling ranks included', () => {
    const dims = fc
      .record({
        ir: fc.integer({ min: 1, max: 7 }),
        tp: fc.integer({ min: 1, max: 4 }),
        H: fc.integer({ min: 1, max: 9 }),
        bm: fc.integer({ min: 1, max: 8 }),
        bn: fc.integer({ min: 1, max: 8 }),
        experts: fc.integer({ min: 1, max: 2 }),
      })
      .chain((d) => {
        const I = d.ir * d.tp;
        const gridW13 = Math.ceil(I / d.bm) * Math.ceil(d.H / d.bn);
        const gridW2 = Math.ceil(d.H / d.bm) * Math.ceil(I / d.bn);
        return fc.record({
          d: fc.constant({ ...d, I }),
          gate: fc.array(fc.uint8Array({ minLength: I * d.H, maxLength: I * d.H }), { minLength: d.experts, maxLength: d.experts }),
          up: fc.array(fc.uint8Array({ minLength: I * d.H, maxLength: I * d.H }), { minLength: d.experts, maxLength: d.experts }),
          down: fc.array(fc.uint8Array({ minLength: I * d.H, maxLength: I * d.H }), { minLength: d.experts, maxLength: d.experts }),
          gs: fc.array(fc.array(scaleValue, { minLength: gridW13, maxLength: gridW13 }), { minLength: d.experts, maxLength: d.experts }),
          us: fc.array(fc.array(scaleValue, { minLength: gridW13, maxLength: gridW13 }), { minLength: d.experts, maxLength: d.experts }),
          ds: fc.array(fc.array(scaleValue, { minLength: gridW2, maxLength: gridW2 }), { minLength: d.experts, maxLength: d.experts }),
        });
      });
    fc.assert(
      fc.property(dims, ({ d, gate, up, down, gs, us, ds }) => {
        const { I, H, tp, bm, bn, experts } = d;
        const hb = Math.ceil(H / bn);
        const hbRows = Math.ceil(H / bm);
        const ib = Math.ceil(I / bn);
        for (let r = 0; r < tp; r++) {
          const lo = r * d.ir;
          const hi = lo + d.ir;
          // Scale rows/columns this rank needs: the blocks of its first and last row (column).
          const firstRow = Math.floor(lo / bm);
          const lastRow = Math.floor((hi - 1) / bm);
          const firstCol = Math.floor(lo / bn);
          const lastCol = Math.floor((hi - 1) / bn);
          const w13: number[] = [];
          const w13s: number[] = [];
          const w2: number[] = [];
          const w2s: number[] = [];
          const want13: number[] = [];
          const want2: number[] = [];
          for (let e = 0; e < experts; e++) {
            w13.push(...rowsOf(gate[e]!, H, lo, hi), ...rowsOf(up[e]!, H, lo, hi));
            w13s.push(...rowsOf(gs[e]!, hb, firstRow, lastRow + 1), ...rowsOf(us[e]!, hb, firstRow, lastRow + 1));
            w2.push(...colsOf(down[e]!, H, I, lo, hi));
            w2s.push(...colsOf(ds[e]!, hbRows, ib, firstCol, lastCol + 1));
            const g = referenceDequant(gate[e]!, Float32Array.from(gs[e]!), I, H, bm, bn);
            const u = referenceDequant(up[e]!, Float32Array.from(us[e]!), I, H, bm, bn);
            want13.push(...rowsOf(g, H, lo, hi), ...rowsOf(u, H, lo, hi));
            want2.push(...colsOf(referenceDequant(down[e]!, Float32Array.from(ds[e]!), H, I, bm, bn), H, I, lo, hi));
          }
          const spans = fp8TpSpans(I, tp, r, { rows: bm, cols: bn });
          const n13 = lastRow - firstRow + 1;
          const n2 = lastCol - firstCol + 1;
          expect(spans.w13Rows.count).toBe(n13);
          expect(spans.w2Cols.count).toBe(n2);
          const block = { rows: bm, cols: bn };
          const got13 = dequantizeFp8(f8([experts, 2 * d.ir, H], Uint8Array.from(w13)), f32([experts, 2 * n13, hb], w13s), {
            block,
            parts: 2,
            rowOrigin: spans.w13Rows.origin,
            colOrigin: 0,
            name: 'w13',
          });
          sameValues(values(got13), want13);
          const got2 = dequantizeFp8(f8([experts, H, d.ir], Uint8Array.from(w2)), f32([experts, hbRows, n2], w2s), {
            block,
            parts: 1,
            rowOrigin: 0,
            colOrigin: spans.w2Cols.origin,
            name: 'w2',
          });
          sameValues(values(got2), want2);
        }
      }),
      { seed, numRuns: 150 },
    );
  });

  it('blockSpan: the first block, count and origin of a slice', () => {
    expect(blockSpan(0, 160, 128)).toEqual({ first: 0, count: 2, origin: 0 });
    // TP 2 of I = 160: rank 1 holds rows 80..160, inside blocks 0 and 1; block 0 straddles both ranks.
    expect(blockSpan(80, 80, 128)).toEqual({ first: 0, count: 2, origin: 80 });
    expect(blockSpan(256, 128, 128)).toEqual({ first: 2, count: 1, origin: 0 });
  });

  it('refuses scale grids, dtypes and byte lengths that do not fit', () => {
    const block = { rows: 2, cols: 2 };
    const opts = { block, parts: 1, rowOrigin: 0, colOrigin: 0, name: 'w' };
    const w = f8([3, 3], new Uint8Array(9));
    expect(() => dequantizeFp8(w, f32([1, 2], [1, 1]), opts)).toThrow(ScaleMismatch);
    expect(() => dequantizeFp8(w, f32([2, 2, 1], [1, 1, 1, 1]), opts)).toThrow(ScaleMismatch);
    expect(() => dequantizeFp8({ ...w, dtype: 'BF16' }, f32([2, 2], [1, 1, 1, 1]), opts)).toThrow(QuantizedWeightError);
    expect(() => dequantizeFp8(w, { dtype: 'I32', shape: [2, 2], bytes: new Uint8Array(16) }, opts)).toThrow(ScaleMismatch);
    expect(() => dequantizeFp8(f8([3, 3], new Uint8Array(8)), f32([2, 2], [1, 1, 1, 1]), opts)).toThrow(QuantizedWeightError);
    expect(() => dequantizeFp8(w, f32([2, 2], [1, 1, 1, 1]), { ...opts, parts: 2 })).toThrow(ScaleMismatch);
    // A rank whose rows start inside a block needs one scale row more.
    expect(() => dequantizeFp8(w, f32([2, 2], [1, 1, 1, 1]), { ...opts, rowOrigin: 1 })).not.toThrow();
    expect(() => dequantizeFp8(f8([4, 3], new Uint8Array(12)), f32([2, 2], [1, 1, 1, 1]), { ...opts, rowOrigin: 1 })).toThrow(ScaleMismatch);
  });

  it('parses weight_block_size and refuses hostile or malformed ones', () => {
    expect(parseBlockSize([128, 128])).toEqual({ rows: 128, cols: 128 });
    for (const bad of [undefined, [128], [0, 128], [128, 1e9], [1.5, 2], ['128', 128], [128, 128, 1]]) {
      expect(() => parseBlockSize(bad)).toThrow(QuantConfigError);
    }
  });
});
