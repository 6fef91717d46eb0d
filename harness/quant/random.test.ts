import { describe, expect, it } from 'vitest';
import { fp8Scheme, MXFP4_SCHEME } from './scheme.js';
import type { MoeDims } from '../layouts/registry.js';
import { decodeFloats } from '../safetensors/codecs.js';
import { WHOLE } from '../tensor.js';
import { dequantizeCanonical } from './dequantize.js';
import { QuantConfigError } from './errors.js';
import { randomQuantizedCanonical } from './random.js';
import type { QuantScheme } from './scheme.js';

const dims = (over: Partial<MoeDims> = {}): MoeDims => ({
  experts: 3,
  hidden: 64,
  intermediate: 96,
  sharedIntermediate: 0,
  topK: 2,
  layers: 2,
  moeLayers: [0, 1],
  features: { sharedExpert: false, sharedGate: false, routerBias: false, correctionBias: false, expertBias: false },
  ...over,
});
const FP8: QuantScheme = fp8Scheme({ rows: 32, cols: 48 });
const MX: QuantScheme = MXFP4_SCHEME;

describe('randomQuantizedCanonical', () => {
  it('FP8: F8 routed experts with scale grids of partial blocks, BF16 elsewhere (shared experts included); deterministic per seed', () => {
    const d = dims({ sharedIntermediate: 40, features: { sharedExpert: true, sharedGate: true, routerBias: false, correctionBias: false, expertBias: false } });
    const c = randomQuantizedCanonical(d, FP8, 7);
    const shapes = Object.fromEntries([...c].filter(([n]) => n.startsWith('layers.1.')).map(([n, t]) => [n, `${t.dtype} ${t.shape.join('x')}`]));
    expect(shapes).toEqual({
      'layers.1.experts.ids': 'I32 3',
      'layers.1.experts.w13': 'F8_E4M3 3x192x64',
      'layers.1.experts.w13_scale': 'F32 3x6x2', // 2 * ceil(96/32) rows, ceil(64/48) cols
      'layers.1.experts.w2': 'F8_E4M3 3x64x96',
      'layers.1.experts.w2_scale': 'F32 3x2x2', // ceil(64/32), ceil(96/48)
      'layers.1.router.weight': 'BF16 3x64',
      'layers.1.shared.w13': 'BF16 80x64',
      'layers.1.shared.w2': 'BF16 64x40',
      'layers.1.shared.gate': 'BF16 1x64',
    });
    const again = randomQuantizedCanonical(d, FP8, 7);
    for (const [n, t] of c) expect(Buffer.compare(t.bytes, again.get(n)!.bytes), n).toBe(0);
    expect(Buffer.compare(c.get('layers.0.experts.w13')!.bytes, randomQuantizedCanonical(d, FP8, 8).get('layers.0.experts.w13')!.bytes)).not.toBe(0);
    // Every non-NaN E4M3 pattern occurs, no NaN does, and the whole set dequantizes to finite values.
    const seen = new Set(c.get('layers.0.experts.w13')!.bytes);
    expect(seen.size).toBe(254);
    const w = dequantizeCanonical(c, FP8, WHOLE);
    for (const n of ['layers.0.experts.w13', 'layers.0.experts.w2']) {
      expect(decodeFloats('F32', w.get(n)!.bytes).every(Number.isFinite), n).toBe(true);
    }
  });

  it('MXFP4: U8 blocks [E, rows, G, 16] and scales [E, rows, G]; sizes that are not whole blocks are refused', () => {
    const c = randomQuantizedCanonical(dims(), MX, 3);
    expect(c.get('layers.0.experts.w13')!.shape).toEqual([3, 192, 2, 16]);
    expect(c.get('layers.0.experts.w13_scale')!.shape).toEqual([3, 192, 2]);
    expect(c.get('layers.0.experts.w2')!.shape).toEqual([3, 64, 3, 16]);
    expect(c.get('layers.0.experts.w2_scale')!.shape).toEqual([3, 64, 3]);
    const w = dequantizeCanonical(c, MX, WHOLE);
    expect(w.get('layers.0.experts.w13')!.shape).toEqual([3, 192, 64]);
    expect(() => randomQuantizedCanonical(dims({ intermediate: 40 }), MX, 3)).toThrow(QuantConfigError);
  });
});
