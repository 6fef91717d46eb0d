// Exact float codecs for the dtypes that hold real numbers. Decoding is exact (every
// format here fits a double; decodeFloats rounds to float32 only for F64). Encoding
// rounds to nearest, ties to even, directly from the double given (no double rounding
// through float32).
//
// Overflow and special values follow ml_dtypes and torch (they agree):
//   F16, BF16, F8_E5M2: IEEE-like; overflow -> +-inf, NaN -> a quiet NaN.
//   F8_E4M3 (= float8_e4m3fn): no infinity; S.1111.111 is NaN and 448 the largest finite
//     value. Non-saturating: anything that rounds above 448 (|x| > 464) and +-inf become
//     NaN, as torch's `fp8e4m3fn_from_fp32_value` and ml_dtypes' default cast do.
// Decode-only: F8_E8M0 (a power of two 2^(e-127); 0xFF is NaN) and F4 (= E2M1, packed two
// per byte, low nibble first; no inf or NaN).
import type { DType } from './dtypes.js';
import { UnsupportedDtype } from './errors.js';

/** Whether typed arrays share the file format's (little-endian) byte order, so stored bytes can be viewed in place. */
export const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A binary floating-point format with 1 sign bit, `exp` exponent bits, `man` mantissa bits. */
interface MiniFloat {
  exp: number;
  man: number;
  bias: number;
  /** 'ieee': max exponent field is inf/NaN; 'fn': only all-ones exponent+mantissa is NaN (no inf). */
  special: 'ieee' | 'fn' | 'none';
  /** Bit pattern encoders produce for NaN. */
  nan: number;
}

const F16: MiniFloat = { exp: 5, man: 10, bias: 15, special: 'ieee', nan: 0x7e00 };
const BF16: MiniFloat = { exp: 8, man: 7, bias: 127, special: 'ieee', nan: 0x7fc0 };
const E5M2: MiniFloat = { exp: 5, man: 2, bias: 15, special: 'ieee', nan: 0x7e };
const E4M3: MiniFloat = { exp: 4, man: 3, bias: 7, special: 'fn', nan: 0x7f };
const E2M1: MiniFloat = { exp: 2, man: 1, bias: 1, special: 'none', nan: 0 };

/** Exact value of a bit pattern (sign bit at position exp+man). */
function miniToNumber(f: MiniFloat, bits: number): number {
  const manMask = (1 << f.man) - 1;
  const expMax = (1 << f.exp) - 1;
  const sign = (bits >> (f.exp + f.man)) & 1 ? -1 : 1;
  const e = (bits >> f.man) & expMax;
  const m = bits & manMask;
  if (f.special === 'ieee' && e === expMax) return m === 0 ? sign * Infinity : NaN;
  if (f.special === 'fn' && e === expMax && m === manMask) return NaN;
  if (e === 0) return sign * m * 2 ** (1 - f.bias - f.man);
  return sign * (1 + m / 2 ** f.man) * 2 ** (e - f.bias);
}

// floor(log2(a)) read from the double's exponent field (a scratch view, no allocation).
const scratch = new Float64Array(1);
const scratchHigh = new Uint32Array(scratch.buffer, LITTLE_ENDIAN_HOST ? 4 : 0, 1);
/** 2^k for every k a finite double can need, so scaling is one exact multiply. */
const POW2 = Float64Array.from({ length: 2 * 1100 + 1 }, (_, i) => 2 ** (i - 1100));
const pow2 = (k: number): number => POW2[k + 1100]!;

/** floor(log2(a)) for finite a >= 2^-1022 (smaller doubles round to zero in every format here). */
function exponentOf(a: number): number {
  scratch[0] = a;
  return ((scratchHigh[0]! >>> 20) & 0x7ff) - 1023;
}

/** Round-to-nearest-even bit pattern for x. */
function numberToMini(f: MiniFloat, x: number): number {
  if (Number.isNaN(x)) return f.nan;
  const signBit = x < 0 || Object.is(x, -0) ? 1 << (f.exp + f.man) : 0;
  const a = Math.abs(x);
  const expMax = (1 << f.exp) - 1;
  const overflow = f.special === 'ieee' ? signBit | (expMax << f.man) : f.nan;
  if (a === Infinity) return overflow;
  // Below 2^-1022 (and zero): far under half the smallest subnormal of every format here.
  if (a < 2 ** -1022) return signBit;
  const eMin = 1 - f.bias;
  // Quantum (spacing of representable values) at a's binade; subnormals share eMin's.
  const e = Math.max(exponentOf(a), eMin);
  const scaled = a * pow2(f.man - e); // exact: a power-of-two scaling
  const floor = Math.floor(scaled);
  const rest = scaled - floor;
  const q = rest > 0.5 || (rest === 0.5 && floor % 2 === 1) ? floor + 1 : floor;
  // q in [0, 2^(man+1)]; 2^(man+1) means the next binade.
  const implicit = 1 << f.man;
  let expField: number;
  let man: number;
  if (q >= 2 * implicit) {
    expField = e + 1 + f.bias;
    man = 0;
  } else if (q >= implicit) {
    expField = e + f.bias;
    man = q - implicit;
  } else {
    expField = 0; // subnormal (only reachable when e === eMin)
    man = q;
  }
  const maxField = f.special === 'ieee' ? expMax - 1 : expMax;
  if (expField > maxField) return overflow;
  if (f.special === 'fn' && expField === expMax && man === (1 << f.man) - 1) return overflow;
  return signBit | (expField << f.man) | man;
}

export const f16BitsToNumber = (bits: number): number => miniToNumber(F16, bits);
export const numberToF16Bits = (x: number): number => numberToMini(F16, x);
export const bf16BitsToNumber = (bits: number): number => miniToNumber(BF16, bits);
export const numberToBf16Bits = (x: number): number => numberToMini(BF16, x);
export const e4m3BitsToNumber = (bits: number): number => miniToNumber(E4M3, bits);
export const numberToE4m3Bits = (x: number): number => numberToMini(E4M3, x);
export const e5m2BitsToNumber = (bits: number): number => miniToNumber(E5M2, bits);
export const numberToE5m2Bits = (x: number): number => numberToMini(E5M2, x);
export const e2m1BitsToNumber = (bits: number): number => miniToNumber(E2M1, bits);
export const e8m0BitsToNumber = (bits: number): number => (bits === 0xff ? NaN : 2 ** (bits - 127));

// Formats decoded through a table of every bit pattern, built on first use.
const TABLED: Partial<Record<DType, { width: 1 | 2; decode: (bits: number) => number }>> = {
  F16: { width: 2, decode: f16BitsToNumber },
  BF16: { width: 2, decode: bf16BitsToNumber },
  F8_E4M3: { width: 1, decode: e4m3BitsToNumber },
  F8_E5M2: { width: 1, decode: e5m2BitsToNumber },
  F8_E8M0: { width: 1, decode: e8m0BitsToNumber },
};
const tables = new Map<DType, Float64Array>();
function table(dtype: DType, width: 1 | 2, decode: (bits: number) => number): Float64Array {
  let t = tables.get(dtype);
  if (!t) {
    t = Float64Array.from({ length: 256 ** width }, (_, i) => decode(i));
    tables.set(dtype, t);
  }
  return t;
}

function aligned(bytes: Uint8Array, width: number): ArrayBuffer {
  if (!LITTLE_ENDIAN_HOST) throw new UnsupportedDtype('big-endian hosts are not supported');
  // Copy when the view is not aligned for the element width (or shares a larger buffer).
  return bytes.byteOffset % width === 0 ? (bytes.buffer as ArrayBuffer).slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) : bytes.slice().buffer;
}

function checkLength(dtype: DType, bytes: Uint8Array, width: number): number {
  if (bytes.length % width !== 0) {
    throw new UnsupportedDtype(`${dtype} data is not a whole number of elements`, { expected: `a multiple of ${width} bytes`, found: bytes.length });
  }
  return bytes.length / width;
}

/** Table lookup straight into `out` (a Float32Array store is exact: every table value fits). */
function lookup<T extends Float32Array | Float64Array>(dtype: DType, bytes: Uint8Array, make: (n: number) => T): T | undefined {
  const spec = TABLED[dtype];
  if (!spec) return undefined;
  const t = table(dtype, spec.width, spec.decode);
  const n = checkLength(dtype, bytes, spec.width);
  const out = make(n);
  if (spec.width === 1) for (let i = 0; i < n; i++) out[i] = t[bytes[i]!]!;
  else for (let i = 0; i < n; i++) out[i] = t[bytes[2 * i]! | (bytes[2 * i + 1]! << 8)]!;
  return out;
}

/** F4 (E2M1), two per byte, low nibble first. */
function decodeF4<T extends Float32Array | Float64Array>(bytes: Uint8Array, make: (n: number) => T): T {
  const out = make(bytes.length * 2);
  for (let i = 0; i < bytes.length; i++) {
    out[2 * i] = e2m1BitsToNumber(bytes[i]! & 0xf);
    out[2 * i + 1] = e2m1BitsToNumber(bytes[i]! >> 4);
  }
  return out;
}

/** Exact values of every element, for each float dtype listed in the module comment. */
export function decodeFloats64(dtype: DType, bytes: Uint8Array): Float64Array {
  const make = (n: number) => new Float64Array(n);
  switch (dtype) {
    case 'F64':
      checkLength(dtype, bytes, 8);
      return new Float64Array(aligned(bytes, 8));
    case 'F32':
      checkLength(dtype, bytes, 4);
      return Float64Array.from(new Float32Array(aligned(bytes, 4)));
    case 'F4':
      return decodeF4(bytes, make);
    default:
      return lookup(dtype, bytes, make) ?? unsupported(dtype);
  }
}

/** Values as float32: exact for every format but F64, which is rounded to nearest even. */
export function decodeFloats(dtype: DType, bytes: Uint8Array): Float32Array {
  const make = (n: number) => new Float32Array(n);
  switch (dtype) {
    case 'F32':
      checkLength(dtype, bytes, 4);
      return new Float32Array(aligned(bytes, 4));
    case 'F64':
      return Float32Array.from(decodeFloats64(dtype, bytes));
    case 'BF16': {
      // Fast path: a bf16 is the high half of a float32. Checked against the table on every
      // pattern in the tests.
      const n = checkLength(dtype, bytes, 2);
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = ((bytes[2 * i + 1]! << 8) | bytes[2 * i]!) << 16;
      return out;
    }
    case 'F4':
      return decodeF4(bytes, make);
    default:
      return lookup(dtype, bytes, make) ?? unsupported(dtype);
  }
}

function unsupported(dtype: DType): never {
  throw new UnsupportedDtype(`no float codec for ${dtype}`, { found: dtype });
}

/**
 * Fast path for float32 input to BF16: round the float32 bit pattern to its high half by
 * adding 0x7FFF plus the kept half's lowest bit (ties to even); NaN becomes the canonical
 * quiet NaN like the generic path. Checked against the generic path in the tests.
 */
function float32ToBf16(values: Float32Array): Uint8Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const b = bits[i]!;
    out[i] = (b & 0x7fffffff) > 0x7f800000 ? BF16.nan : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return new Uint8Array(out.buffer);
}

/** Round-to-nearest-even encoding of `values` (see the module comment for overflow and NaN). */
export function encodeFloats(dtype: DType, values: ArrayLike<number>): Uint8Array {
  const n = values.length;
  switch (dtype) {
    case 'F64':
      return new Uint8Array(Float64Array.from(values).buffer);
    case 'F32':
      return new Uint8Array(Float32Array.from(values).buffer);
    case 'F16':
    case 'BF16': {
      if (dtype === 'BF16' && values instanceof Float32Array && values.byteOffset % 4 === 0) return float32ToBf16(values);
      const f = dtype === 'F16' ? F16 : BF16;
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = numberToMini(f, values[i]!);
      return new Uint8Array(out.buffer);
    }
    case 'F8_E4M3':
    case 'F8_E5M2': {
      const f = dtype === 'F8_E4M3' ? E4M3 : E5M2;
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = numberToMini(f, values[i]!);
      return out;
    }
    default:
      return unsupported(dtype);
  }
}
