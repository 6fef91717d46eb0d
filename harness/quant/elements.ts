// Decoding a quantized tensor's elements after checking that its bytes hold exactly its shape,
// so a short or long buffer is refused instead of read past or partly used.
import { decodeFloats } from '../safetensors/codecs.js';
import { dtypeBits } from '../safetensors/dtypes.js';
import type { Tensor } from '../tensor.js';
import { elementCount } from '../canonical/canonical.js';
import { QuantizedWeightError } from './errors.js';

export function checkByteLength(t: Tensor, name: string): void {
  const want = (elementCount(t.shape) * dtypeBits(t.dtype)) / 8;
  if (t.bytes.length !== want) {
    throw new QuantizedWeightError('tensor bytes do not match its shape and dtype', { tensor: name, expected: `${want} bytes`, found: t.bytes.length });
  }
}

/** Exact values of `t`'s elements (float32 holds every value of the formats used here). */
export function decodeElements(t: Tensor, name: string): Float32Array {
  checkByteLength(t, name);
  return decodeFloats(t.dtype, t.bytes);
}
