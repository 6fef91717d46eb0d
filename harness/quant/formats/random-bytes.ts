// Random quantized bytes and scales for the formats' generators: bytes drawn directly, so every
// bit pattern a checkpoint may hold can occur (those a format forbids excepted).
import type { Tensor } from '../../tensor.js';

/** E4M3 NaN patterns (S.1111.111): never drawn. */
export const isE4m3NaN = (b: number) => (b & 0x7f) === 0x7f;

export function randomBytes(uniform: () => number, n: number, accept: (b: number) => boolean = () => true): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let b: number;
    do b = Math.floor(uniform() * 256);
    while (!accept(b));
    out[i] = b;
  }
  return out;
}

/** F32 values `base * (0.5 + u)`, u uniform in [0, 1): positive scales of about `base`. */
export function f32Around(uniform: () => number, shape: number[], base: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'F32', shape, bytes: new Uint8Array(Float32Array.from({ length: n }, () => base * (0.5 + uniform())).buffer) };
}

export const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Activation-order groups for `rows` projections of `cols` columns: each projection's columns
 * in a random order, the i-th of them in group floor(i / group), as GPTQ's `desc_act` and
 * compressed-tensors' `actorder: "group"` assign them (every group holds `group` columns).
 */
export function actOrderGroups(uniform: () => number, rows: number, cols: number, group: number): Int32Array {
  const out = new Int32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const order = Array.from({ length: cols }, (_, i) => i);
    for (let i = cols - 1; i > 0; i--) {
      const j = Math.floor(uniform() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    order.forEach((col, i) => (out[r * cols + col] = Math.floor(i / group)));
  }
  return out;
}

/** Each run of `run` F32 values set to its first one: one value drawn for the projections that share a stored scale. */
export function shareValues(t: Tensor, run: number): Tensor {
  const v = new Float32Array(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength / 4);
  for (let i = 0; i < v.length; i++) v[i] = v[i - (i % run)]!;
  return t;
}
