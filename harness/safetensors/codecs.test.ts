// Codecs against independent references: spot values from the format specifications,
// strict monotonicity over all patterns, and a slow round-to-nearest-even written here by
// binary search over the sorted list of representable values (no bit arithmetic shared
// with codecs.ts).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  bf16BitsToNumber,
  decodeFloats,
  decodeFloats64,
  e2m1BitsToNumber,
  e4m3BitsToNumber,
  e5m2BitsToNumber,
  e8m0BitsToNumber,
  encodeFloats,
  f16BitsToNumber,
  numberToBf16Bits,
  numberToE4m3Bits,
  numberToE5m2Bits,
  numberToF16Bits,
} from './codecs.js';
import { UnsupportedDtype } from './errors.js';
import type { DType } from './dtypes.js';

const seed = Number(process.env.FC_SEED ?? 42);

interface Format {
  dtype: DType;
  bits: 8 | 16;
  decode(b: number): number;
  encode(x: number): number;
  /** Patterns from the specifications (IEEE 754, OCP FP8, bfloat16). */
  spots: Array<[number, number]>;
  nanCount: number;
  /** What the largest finite value plus half an ulp and beyond becomes. */
  overflow: 'inf' | 'nan';
}

const FORMATS: Format[] = [
  {
    dtype: 'F16', bits: 16, decode: f16BitsToNumber, encode: numberToF16Bits, nanCount: 2 * 1023, overflow: 'inf',
    spots: [[0x3c00, 1], [0xc000, -2], [0x7bff, 65504], [0x0400, 2 ** -14], [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24], [0x7c00, Infinity], [0xfc00, -Infinity], [0x3555, 0.333251953125], [0x8000, -0]],
  },
  {
    dtype: 'BF16', bits: 16, decode: bf16BitsToNumber, encode: numberToBf16Bits, nanCount: 2 * 127, overflow: 'inf',
    spots: [[0x3f80, 1], [0xc000, -2], [0x7f7f, 3.3895313892515355e38], [0x0080, 2 ** -126], [0x0001, 2 ** -133], [0x7f80, Infinity], [0x3e80, 0.25], [0x8000, -0]],
  },
  {
    dtype: 'F8_E4M3', bits: 8, decode: e4m3BitsToNumber, encode: numberToE4m3Bits, nanCount: 2, overflow: 'nan',
    spots: [[0x38, 1], [0x7e, 448], [0xfe, -448], [0x08, 2 ** -6], [0x01, 2 ** -9], [0x07, 7 * 2 ** -9], [0x78, 256], [0x80, -0]],
  },
  {
    dtype: 'F8_E5M2', bits: 8, decode: e5m2BitsToNumber, encode: numberToE5m2Bits, nanCount: 6, overflow: 'inf',
    spots: [[0x3c, 1], [0x7b, 57344], [0x04, 2 ** -14], [0x01, 2 ** -16], [0x7c, Infinity], [0xfc, -Infinity], [0x80, -0]],
  },
];

const patterns = (f: Format) => Array.from({ length: 2 ** f.bits }, (_, i) => i);

/** The next double above or below x (x finite). */
function nextDouble(x: number, up: boolean): number {
  const v = new DataView(new ArrayBuffer(8));
  v.setFloat64(0, x);
  if (x === 0) return up ? Number.MIN_VALUE : -Number.MIN_VALUE;
  const bits = v.getBigUint64(0);
  v.setBigUint64(0, (x > 0) === up ? bits + 1n : bits - 1n);
  return v.getFloat64(0);
}

/** Slow reference encoder: nearest of all representable values, ties to the even pattern. */
function slowEncoder(f: Format): (x: number) => number | 'nan' | 'inf' {
  const positives = patterns(f)
    .filter((b) => b < 2 ** (f.bits - 1) && Number.isFinite(f.decode(b)))
    .map((b) => ({ b, v: f.decode(b) }))
    .sort((p, q) => p.v - q.v);
  const max = positives[positives.length - 1]!;
  const prev = positives[positives.length - 2]!;
  // The value one ulp above the largest finite one: where overflow starts; its mantissa is
  // all zeros for IEEE-like formats (even) and all ones for E4M3 (odd).
  const beyond = { b: max.b + 1, v: max.v + (max.v - prev.v), overflow: true };
  const all = [...positives.map((p) => ({ ...p, overflow: false })), beyond];
  return (x: number) => {
    if (Number.isNaN(x)) return 'nan';
    const a = Math.abs(x);
    const signBit = x < 0 || Object.is(x, -0) ? 2 ** (f.bits - 1) : 0;
    if (a > beyond.v) return f.overflow;
    let lo = 0;
    let hi = all.length - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (all[mid]!.v <= a) lo = mid;
      else hi = mid;
    }
    const [p, q] = [all[lo]!, all[hi]!];
    const dp = Math.abs(a - p.v);
    const dq = Math.abs(q.v - a);
    const pick = dp < dq ? p : dq < dp ? q : p.b % 2 === 0 ? p : q;
    if (pick.overflow) return f.overflow;
    return signBit + pick.b;
  };
}

function agrees(f: Format, slow: (x: number) => number | 'nan' | 'inf', x: number): boolean {
  const want = slow(x);
  const got = f.encode(x);
  if (want === 'nan') return Number.isNaN(f.decode(got));
  if (want === 'inf') return f.decode(got) === (x < 0 ? -Infinity : Infinity);
  return got === want;
}

describe.each(FORMATS)('$dtype', (f) => {
  const all = patterns(f);

  it('decodes the specification spot values', () => {
    expect(f.spots.filter(([b, v]) => !Object.is(f.decode(b), v))).toEqual([]);
  });

  it('decodes every pattern: sign symmetry, strictly increasing magnitudes, the right number of NaNs', () => {
    const half = 2 ** (f.bits - 1);
    expect(all.filter((b) => Number.isNaN(f.decode(b))).length).toBe(f.nanCount);
    const bad: number[] = [];
    let last = -1;
    for (let b = 0; b < half; b++) {
      const v = f.decode(b);
      if (Number.isNaN(v)) continue;
      if (!(v > last) || !Object.is(f.decode(b + half), -v)) bad.push(b);
      last = v;
    }
    expect(bad).toEqual([]);
  });

  it('decodeFloats64 and decodeFloats agree with the scalar decoder on every pattern', () => {
    const bytes = f.bits === 8 ? Uint8Array.from(all) : new Uint8Array(Uint16Array.from(all).buffer);
    const wide = decodeFloats64(f.dtype, bytes);
    const narrow = decodeFloats(f.dtype, bytes);
    // Every format here fits float32 exactly, so the narrow decode loses nothing.
    expect(all.filter((b) => !Object.is(wide[b], f.decode(b)) || !Object.is(narrow[b], f.decode(b)))).toEqual([]);
  });

  it('encode(decode(x)) == x for every non-NaN pattern', () => {
    expect(all.filter((b) => !Number.isNaN(f.decode(b)) && f.encode(f.decode(b)) !== b)).toEqual([]);
  });

  it('encodes every midpoint and its neighbours like the slow nearest-even reference', () => {
    const slow = slowEncoder(f);
    const finite = all.map(f.decode).filter(Number.isFinite).sort((a, b) => a - b);
    const bad: number[] = [];
    const check = (x: number) => {
      if (!agrees(f, slow, x)) bad.push(x);
    };
    for (let i = 0; i + 1 < finite.length; i++) {
      const mid = (finite[i]! + finite[i + 1]!) / 2;
      check(mid);
      check(nextDouble(mid, true));
      check(nextDouble(mid, false));
    }
    const max = finite[finite.length - 1]!;
    const prev = finite[finite.length - 2]!;
    for (const x of [max + (max - prev) / 2, -(max + (max - prev) / 2), nextDouble(max + (max - prev) / 2, false), max * 4, Infinity, -Infinity, NaN, 0, -0]) check(x);
    expect(bad).toEqual([]);
  });

  it('encodes random doubles like the slow reference', () => {
    const slow = slowEncoder(f);
    fc.assert(
      fc.property(fc.double(), (x) => agrees(f, slow, x)),
      { seed, numRuns: 2000 },
    );
  });

  it('encodeFloats matches the scalar encoder and round-trips through decodeFloats64', () => {
    const values = all.map(f.decode);
    const bytes = encodeFloats(f.dtype, values);
    expect(bytes.length).toBe((values.length * f.bits) / 8);
    const back = decodeFloats64(f.dtype, bytes);
    expect(all.filter((b) => !Object.is(back[b], values[b]))).toEqual([]);
  });
});

describe('overflow and special values', () => {
  it('E4M3 (fn, non-saturating like torch and ml_dtypes): 464 rounds to 448, above it and inf become NaN', () => {
    expect(e4m3BitsToNumber(numberToE4m3Bits(464))).toBe(448);
    expect(Number.isNaN(e4m3BitsToNumber(numberToE4m3Bits(464.0001)))).toBe(true);
    expect(Number.isNaN(e4m3BitsToNumber(numberToE4m3Bits(Infinity)))).toBe(true);
    expect(Number.isNaN(e4m3BitsToNumber(numberToE4m3Bits(-1e9)))).toBe(true);
  });
  it('E5M2 and F16 overflow to infinity at the tie above the largest value', () => {
    expect(e5m2BitsToNumber(numberToE5m2Bits(61440))).toBe(Infinity);
    expect(e5m2BitsToNumber(numberToE5m2Bits(61439))).toBe(57344);
    expect(f16BitsToNumber(numberToF16Bits(65520))).toBe(Infinity);
    expect(f16BitsToNumber(numberToF16Bits(-65519.99))).toBe(-65504);
  });
  it('values below half the smallest subnormal flush to signed zero; the half-way tie goes to even (zero)', () => {
    expect(numberToF16Bits(2 ** -25)).toBe(0);
    expect(numberToF16Bits(-(2 ** -25))).toBe(0x8000);
    expect(numberToF16Bits(nextDouble(2 ** -25, true))).toBe(1);
    expect(numberToF16Bits(3 * 2 ** -25)).toBe(2);
  });
  it('BF16 rounds from the double directly, not through float32', () => {
    // 1 + 2^-8 + 2^-40: float32 would round it to 1 + 2^-8 (a tie, then even -> 1);
    // the double is above the tie, so the nearest bf16 is 1 + 2^-7.
    expect(bf16BitsToNumber(numberToBf16Bits(1 + 2 ** -8 + 2 ** -40))).toBe(1 + 2 ** -7);
  });
});

describe('other formats', () => {
  it('F8_E8M0 is 2^(b-127) with 0xFF NaN', () => {
    for (let b = 0; b < 255; b++) expect(e8m0BitsToNumber(b)).toBe(2 ** (b - 127));
    expect(Number.isNaN(e8m0BitsToNumber(255))).toBe(true);
    const d = decodeFloats64('F8_E8M0', Uint8Array.from([0, 127, 254, 255]));
    expect([...d.slice(0, 3)]).toEqual([2 ** -127, 1, 2 ** 127]);
    expect(Number.isNaN(d[3])).toBe(true);
  });
  it('F4 (E2M1) decodes the OCP value table, two per byte, low nibble first', () => {
    const table = [0, 0.5, 1, 1.5, 2, 3, 4, 6];
    for (let b = 0; b < 16; b++) expect(Object.is(e2m1BitsToNumber(b), b < 8 ? table[b] : -table[b - 8]!)).toBe(true);
    expect([...decodeFloats64('F4', Uint8Array.from([0x72, 0x9f]))]).toEqual([1, 6, -6, -0.5]);
  });
  it('decodeFloats gives the same values as decodeFloats64 for every F8_E8M0 and F4 byte (both fit float32)', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    for (const dtype of ['F8_E8M0', 'F4'] as const) {
      const wide = decodeFloats64(dtype, all);
      const narrow = decodeFloats(dtype, all);
      expect(narrow.length).toBe(wide.length);
      expect([...wide].filter((v, i) => !Object.is(v, narrow[i]))).toEqual([]);
    }
  });
  it('F32 and F64 decode exactly, from unaligned views too; F64 to float32 rounds to nearest', () => {
    const values = [1.5, -2.25, 3.4028234663852886e38, 1e-45];
    const f32 = encodeFloats('F32', values);
    const shifted = new Uint8Array(f32.length + 1);
    shifted.set(f32, 1);
    expect([...decodeFloats('F32', shifted.subarray(1))]).toEqual(values.map(Math.fround));
    const f64 = encodeFloats('F64', [0.1, 1 + 2 ** -30]);
    expect([...decodeFloats64('F64', f64)]).toEqual([0.1, 1 + 2 ** -30]);
    expect([...decodeFloats('F64', f64)]).toEqual([Math.fround(0.1), 1]);
  });
  it('refuses dtypes without a codec and lengths that are not whole elements', () => {
    expect(() => decodeFloats('I32', new Uint8Array(4))).toThrow(UnsupportedDtype);
    expect(() => decodeFloats64('F8_E4M3FNUZ', new Uint8Array(1))).toThrow(UnsupportedDtype);
    expect(() => encodeFloats('F8_E8M0', [1])).toThrow(UnsupportedDtype);
    expect(() => encodeFloats('U8', [1])).toThrow(UnsupportedDtype);
    expect(() => decodeFloats('F16', new Uint8Array(3))).toThrow(UnsupportedDtype);
    expect(() => decodeFloats('F32', new Uint8Array(6))).toThrow(UnsupportedDtype);
  });
});

describe('fast paths agree with the generic codec', () => {
  it('BF16 encode from Float32Array equals the generic encoder on random and special float32 values', () => {
    const specials = new Uint32Array([0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffffffff, 0x7f7fffff, 0x00000001, 0x3f808000, 0x3f818000, 0x3f807fff, 0x3f808001]);
    fc.assert(
      fc.property(fc.array(fc.float(), { maxLength: 64 }), (xs) => {
        const values = new Float32Array([...new Float32Array(specials.buffer), ...xs]);
        const fast = encodeFloats('BF16', values);
        const generic = encodeFloats('BF16', Array.from(values));
        expect(Buffer.from(fast).equals(Buffer.from(generic))).toBe(true);
      }),
      { seed, numRuns: 300 },
    );
  });
});
