// Bit-exact comparison: each kind of difference is found, located and decoded.
import { describe, expect, it } from 'vitest';
import type { Canonical, Tensor } from '../tensor.js';
import { assertBitIdentical, BitMismatch, bytesDifference, describeDifference, differingElements, firstDifference } from './bits.js';

const f32 = (values: number[], shape = [values.length]): Tensor => ({ dtype: 'F32', shape, bytes: new Uint8Array(Float32Array.from(values).buffer) });
const i32 = (values: number[]): Tensor => ({ dtype: 'I32', shape: [values.length], bytes: new Uint8Array(Int32Array.from(values).buffer) });
const bf16 = (bits: number[]): Tensor => ({ dtype: 'BF16', shape: [bits.length], bytes: new Uint8Array(Uint16Array.from(bits).buffer) });

const base = (): Canonical => new Map<string, Tensor>([
  ['layers.0.experts.ids', i32([0, 1])],
  ['layers.0.router.weight', f32([1, 2, 3, 4], [2, 2])],
]);

describe('firstDifference', () => {
  it('finds nothing between equal maps, whatever their insertion order', () => {
    const a = base();
    const b = new Map([...base()].reverse());
    expect(firstDifference(a, b)).toBeUndefined();
    expect(() => assertBitIdentical(a, b)).not.toThrow();
  });
  it('reports a missing and an extra tensor', () => {
    const found = base();
    found.delete('layers.0.router.weight');
    expect(firstDifference(base(), found)).toEqual({ kind: 'missing', tensor: 'layers.0.router.weight' });
    const extra = base().set('layers.0.router.bias', f32([0, 0]));
    expect(firstDifference(base(), extra)).toEqual({ kind: 'extra', tensor: 'layers.0.router.bias' });
  });
  it('reports dtype and shape differences before bytes', () => {
    const found = base().set('layers.0.router.weight', { ...f32([1, 2, 3, 4], [2, 2]), dtype: 'I32' });
    expect(firstDifference(base(), found)).toMatchObject({ kind: 'dtype', expected: 'F32', found: 'I32' });
    const shaped = base().set('layers.0.router.weight', f32([1, 2, 3, 4], [4, 1]));
    expect(firstDifference(base(), shaped)).toMatchObject({ kind: 'shape', expected: [2, 2], found: [4, 1] });
  });
  it('locates the first differing element with its bytes, values and the count of differences', () => {
    const found = base().set('layers.0.router.weight', f32([1, 2, 3.5, -4], [2, 2]));
    const d = firstDifference(base(), found);
    expect(d).toMatchObject({ kind: 'bytes', tensor: 'layers.0.router.weight', index: 2, expectedValue: 3, foundValue: 3.5, differing: 2 });
    expect(d).toMatchObject({ expectedBytes: '00004040', foundBytes: '00006040' });
  });
  it('decodes integer and bf16 elements', () => {
    expect(firstDifference(base(), base().set('layers.0.experts.ids', i32([0, 7])))).toMatchObject({ index: 1, expectedValue: 1, foundValue: 7 });
    const a = new Map([['t', bf16([0x3f80, 0x4000])]]);
    const b = new Map([['t', bf16([0x3f80, 0xc000])]]);
    expect(firstDifference(a, b)).toMatchObject({ index: 1, expectedValue: 2, foundValue: -2, expectedBytes: '0040', foundBytes: '00c0' });
  });
  it('distinguishes -0 from 0 and NaN payloads (bits, not values)', () => {
    const a = new Map([['t', f32([0])]]);
    const b = new Map([['t', f32([-0])]]);
    expect(firstDifference(a, b)).toMatchObject({ kind: 'bytes', index: 0 });
  });
  it('throws a typed error naming the tensor', () => {
    const found = base().set('layers.0.router.weight', f32([1, 2, 3, 5], [2, 2]));
    expect(() => assertBitIdentical(base(), found)).toThrow(BitMismatch);
    expect(() => assertBitIdentical(base(), found)).toThrow(/layers\.0\.router\.weight differs at router row \(expert\) 1, column 1/);
  });
});

describe('element values and messages', () => {
  const ints: Array<[Tensor['dtype'], number[], number[], number | bigint, number | bigint]> = [
    ['BOOL', [0], [1], 0, 1],
    ['U8', [200], [201], 200, 201],
    ['I8', [0xff], [0x01], -1, 1],
    ['I16', [0xff, 0xff], [0x00, 0x80], -1, -32768],
    ['U16', [0xff, 0xff], [0x01, 0x00], 65535, 1],
    ['U32', [0xff, 0xff, 0xff, 0xff], [0, 0, 0, 0], 4294967295, 0],
    ['I64', [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [1, 0, 0, 0, 0, 0, 0, 0], -2n, 1n],
    ['U64', [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [1, 0, 0, 0, 0, 0, 0, 0], 18446744073709551615n, 1n],
  ];
  it.each(ints)('decodes %s elements from their little-endian bytes', (dtype, e, f, ev, fv) => {
    const t = (bytes: number[]): Canonical => new Map([['t', { dtype, shape: [1], bytes: Uint8Array.from(bytes) }]]);
    expect(firstDifference(t(e), t(f))).toMatchObject({ kind: 'bytes', index: 0, expectedValue: ev, foundValue: fv });
  });
  it('reports sub-byte dtypes by byte, without a value', () => {
    const t = (b: number): Canonical => new Map([['t', { dtype: 'F4', shape: [2], bytes: Uint8Array.from([b]) }]]);
    const d = firstDifference(t(0x12), t(0x13));
    expect(d).toMatchObject({ kind: 'bytes', index: 0, expectedBytes: '12', foundBytes: '13' });
    expect(d && 'expectedValue' in d).toBe(false);
  });
  it('reports a tensor whose byte length differs from the expected one', () => {
    const a = new Map([['t', f32([1, 2])]]);
    const b = new Map([['t', { ...f32([1]), shape: [2] }]]);
    expect(firstDifference(a, b)).toMatchObject({ kind: 'bytes', index: 1, foundBytes: '' });
  });
  it('describes every kind in one line naming the tensor', () => {
    expect(describeDifference({ kind: 'missing', tensor: 'a' })).toBe('tensor a is missing');
    expect(describeDifference({ kind: 'extra', tensor: 'a' })).toBe('tensor a is not expected');
    expect(describeDifference({ kind: 'dtype', tensor: 'a', expected: 'F32', found: 'BF16' })).toBe('tensor a has dtype BF16, expected F32');
    expect(describeDifference({ kind: 'shape', tensor: 'a', expected: [2, 3], found: [3, 2] })).toBe('tensor a has shape [3, 2], expected [2, 3]');
    expect(describeDifference({ kind: 'bytes', tensor: 'a', index: 4, expectedBytes: '00', foundBytes: '01', differing: 1 })).toBe('tensor a differs at element 4: found bytes 01, expected bytes 00; 1 element(s) differ');
  });
  it('shows the dtype\'s bit pattern and value, and locates the element by expert, gate/up row and column', () => {
    // f16 0xb057 is -0.1356 (bytes 57 b0 in the file); a flat index and a byte string told nobody which expert.
    const f16 = (bits: number[], shape: number[]): Tensor => ({ dtype: 'F16', shape, bytes: new Uint8Array(Uint16Array.from(bits).buffer) });
    const e = new Map<string, Tensor>([['layers.0.experts.ids', i32([4, 6])], ['layers.0.experts.w13', f16(Array.from({ length: 2 * 4 * 3 }, () => 0x3c00), [2, 4, 3])]]);
    const bits = Array.from({ length: 24 }, () => 0x3c00);
    bits[12 + 2 * 3 + 1] = 0xb057;
    const f = new Map(e).set('layers.0.experts.w13', f16(bits, [2, 4, 3]));
    const d = firstDifference(e, f)!;
    expect(d).toMatchObject({ expectedBits: '3c00', foundBits: 'b057', foundBytes: '57b0', position: [1, 2, 1], where: 'expert 6 (slot 1), up row 0, column 1' });
    expect(describeDifference(d)).toBe('tensor layers.0.experts.w13 differs at expert 6 (slot 1), up row 0, column 1: found 0xb057 (-0.1356201171875), expected 0x3c00 (1); 1 element(s) differ');
  });
  it('the typed error carries the tensor and expected/found', () => {
    const found = base().set('layers.0.router.weight', { ...f32([1, 2, 3, 4], [2, 2]), dtype: 'I32' });
    try {
      assertBitIdentical(base(), found);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(BitMismatch);
      expect(e).toMatchObject({ tensor: 'layers.0.router.weight', expected: 'F32', found: 'I32' });
    }
  });
});

describe('the pieces firstDifference is made of, for chunked comparisons', () => {
  it('differingElements counts elements, not bytes, and locates the first', () => {
    const e = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(differingElements(e, e.slice(), 2)).toEqual({ first: -1, count: 0 });
    expect(differingElements(e, Uint8Array.from([1, 2, 3, 0, 0, 6, 7, 0]), 2)).toEqual({ first: 1, count: 3 });
    expect(differingElements(e, Uint8Array.from([1, 2, 3, 4, 5, 6]), 4)).toEqual({ first: 1, count: 1 });
  });
  it('bytesDifference decodes the element on each side', () => {
    const d = bytesDifference('t', 'BF16', 7, Uint8Array.from([0x80, 0x3f]), Uint8Array.from([0x80, 0xbf]), 2);
    expect(d).toEqual({ kind: 'bytes', tensor: 't', index: 7, expectedBytes: '803f', foundBytes: '80bf', expectedBits: '3f80', foundBits: 'bf80', expectedValue: 1, foundValue: -1, differing: 2 });
  });
});
