// Bit-exact comparison: each kind of difference is found, located and decoded.
import { describe, expect, it } from 'vitest';
import type { Canonical, Tensor } from '../tensor.js';
import { assertBitIdentical, BitMismatch, firstDifference } from './bits.js';

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
    expect(() => assertBitIdentical(base(), found)).toThrow(/layers\.0\.router\.weight.*element 3/);
  });
});
