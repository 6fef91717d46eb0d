// Seeded random whole quantized canonical weights (TP 1, EP 1): the float canonical of
// canonical/random.ts in BF16 (router, biases, shared experts), with the routed expert
// projections replaced by random quantized bytes and scales. The bytes are
// drawn directly, so every bit pattern a checkpoint may hold can occur (FP8 NaN excepted).
import type { MoeDims } from '../layouts/registry.js';
import { canonicalName } from '../canonical/canonical.js';
import { randomCanonical, xoshiro128ss } from '../canonical/random.js';
import type { Canonical, Tensor } from '../tensor.js';
import { blockSpan } from './fp8-block.js';
import { MX_BLOCK, MX_BLOCK_BYTES } from './mxfp4.js';
import type { QuantScheme } from './scheme.js';
import { QuantConfigError } from './errors.js';

/** E4M3 NaN patterns (S.1111.111): never drawn. */
const isE4m3NaN = (b: number) => (b & 0x7f) === 0x7f;

function randomBytes(uniform: () => number, n: number, accept: (b: number) => boolean = () => true): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let b: number;
    do b = Math.floor(uniform() * 256);
    while (!accept(b));
    out[i] = b;
  }
  return out;
}

/** FP8 scales around 0.1 / 448, so weights are about N(0, 0.1) in size like the float generator's. */
function fp8Scales(uniform: () => number, n: number): Uint8Array {
  return new Uint8Array(Float32Array.from({ length: n }, () => (0.1 / 448) * (0.5 + uniform())).buffer);
}

/** A weight `[..., R, C]` made of `parts` stacked matrices of R/parts rows, with its scale tensor. */
function quantized(uniform: () => number, scheme: QuantScheme, lead: number[], parts: number, rows: number, cols: number, name: string): [Tensor, Tensor] {
  const count = lead.reduce((a, b) => a * b, 1);
  if (scheme.method === 'fp8') {
    const gr = blockSpan(0, rows, scheme.block.rows).count;
    const gc = blockSpan(0, cols, scheme.block.cols).count;
    return [
      { dtype: 'F8_E4M3', shape: [...lead, parts * rows, cols], bytes: randomBytes(uniform, count * parts * rows * cols, (b) => !isE4m3NaN(b)) },
      { dtype: 'F32', shape: [...lead, parts * gr, gc], bytes: fp8Scales(uniform, count * parts * gr * gc) },
    ];
  }
  if (cols % MX_BLOCK !== 0) {
    throw new QuantConfigError('MXFP4 rows must be whole 32-element blocks', { tensor: name, expected: `a multiple of ${MX_BLOCK}`, found: cols });
  }
  const g = cols / MX_BLOCK;
  const n = count * parts * rows * g;
  return [
    { dtype: 'U8', shape: [...lead, parts * rows, g, MX_BLOCK_BYTES], bytes: randomBytes(uniform, n * MX_BLOCK_BYTES) },
    // 2^-7 .. 2^-3 times E2M1 values up to 6: weights of about the float generator's size.
    { dtype: 'U8', shape: [...lead, parts * rows, g], bytes: Uint8Array.from({ length: n }, () => 120 + Math.floor(uniform() * 5)) },
  ];
}

/** Whole quantized canonical weights of every MoE layer of `dims`. */
export function randomQuantizedCanonical(dims: MoeDims, scheme: QuantScheme, seed: number): Canonical {
  const out = randomCanonical(dims, 'BF16', seed);
  const uniform = xoshiro128ss(seed ^ 0x5eed);
  const { experts: E, hidden: H, intermediate: I } = dims;
  const set = (layer: number, what: string, [w, s]: [Tensor, Tensor]) => {
    out.set(canonicalName(layer, what), w);
    out.set(canonicalName(layer, `${what}_scale`), s);
  };
  for (const layer of dims.moeLayers) {
    set(layer, 'experts.w13', quantized(uniform, scheme, [E], 2, I, H, canonicalName(layer, 'experts.w13')));
    set(layer, 'experts.w2', quantized(uniform, scheme, [E], 1, H, I, canonicalName(layer, 'experts.w2')));
  }
  return out;
}
