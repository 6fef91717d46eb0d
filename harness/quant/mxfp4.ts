// MXFP4 (OCP microscaling FP4, gpt_oss as published). A weight [R, C], stored [out, in]
// (unlike gpt_oss's bf16 [in, out]), is `*_blocks` U8 [R, C/32, 16] and `*_scales` U8
// [R, C/32]: each byte holds two E2M1 values, low nibble first (the even element), and
// each 32-element block shares one E8M0 scale, W[i][32k + j] = e2m1 * 2^(s[i][k] - 127).
// Scale byte 0xFF is NaN in the OCP format (transformers' ldexp reads it as 2^128).
//
// Under TP a rank must hold whole 32-element blocks of every row it holds: w13 is cut by
// rows (free), w2 by columns, so `I / T` must be a multiple of 32.
import type { Tensor } from '../tensor.js';
import { checkByteLength, decodeElements } from './elements.js';
import { QuantizedWeightError, ScaleMismatch } from './errors.js';

/** Elements per scale block. */
export const MX_BLOCK = 32;
/** Bytes of packed E2M1 per block. */
export const MX_BLOCK_BYTES = MX_BLOCK / 2;

/**
 * Values of `blocks` [..., G, 16] scaled by `scales` [..., G], as F32 [..., G*32]. Exact:
 * every E2M1 value times a power of two in [2^-127, 2^127] is a float32, or overflows to
 * infinity (6 * 2^127), which `fround` gives as well.
 */
export function dequantizeMxfp4(blocks: Tensor, scales: Tensor, name: string): Tensor {
  if (blocks.dtype !== 'U8' || blocks.shape.length < 2 || blocks.shape[blocks.shape.length - 1] !== MX_BLOCK_BYTES) {
    throw new QuantizedWeightError('MXFP4 blocks must be U8 [..., G, 16]', { tensor: name, expected: `U8 [..., G, ${MX_BLOCK_BYTES}]`, found: `${blocks.dtype} ${JSON.stringify(blocks.shape)}` });
  }
  const lead = blocks.shape.slice(0, -1);
  if (scales.dtype !== 'U8' || scales.shape.length !== lead.length || lead.some((d, i) => d !== scales.shape[i])) {
    throw new ScaleMismatch('MXFP4 scales must be U8 with the blocks shape minus its last axis', {
      tensor: `${name}_scale`,
      expected: `U8 ${JSON.stringify(lead)}`,
      found: `${scales.dtype} ${JSON.stringify(scales.shape)}`,
    });
  }
  checkByteLength(blocks, name);
  const values = decodeElements({ dtype: 'F4', shape: [blocks.bytes.length * 2], bytes: blocks.bytes }, name);
  const factors = decodeElements({ dtype: 'F8_E8M0', shape: scales.shape, bytes: scales.bytes }, `${name}_scale`);
  const out = new Float32Array(values.length);
  for (let b = 0; b < factors.length; b++) {
    const f = factors[b]!;
    for (let j = b * MX_BLOCK; j < (b + 1) * MX_BLOCK; j++) out[j] = Math.fround(values[j]! * f);
  }
  const shape = [...lead.slice(0, -1), lead[lead.length - 1]! * MX_BLOCK];
  return { dtype: 'F32', shape, bytes: new Uint8Array(out.buffer) };
}
