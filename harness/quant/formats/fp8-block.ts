// FP8 with 2-D block scales (DeepSeek-V3 style, `quant_method: "fp8"` with
// `weight_block_size`), spec/loader-protocol.md §4: the F8 weights sit where the float weights
// would, and each expert weight tensor `X` gets `X.weight_scale_inv` (fused: `X_scale_inv`)
// laid out like it over the grid of blocks, last blocks partial. TP may split a block: both
// ranks then hold its scale. The arithmetic is ../fp8-block.ts.
import { blockSpan, dequantizeFp8, parseBlockSize, type BlockSize } from '../fp8-block.js';
import { QuantConfigError } from '../errors.js';
import type { QuantFormat } from '../format.js';
import type { QuantGeometry } from '../../layouts/ops.js';
import { companion, companionKey, gridOp, splitLayout } from '../stored.js';
import { count, f32Around, isE4m3NaN, randomBytes } from './random-bytes.js';

export interface Fp8BlockScheme extends QuantGeometry {
  method: 'fp8';
  block: BlockSize;
}

export function fp8BlockScheme(block: BlockSize): Fp8BlockScheme {
  return { method: 'fp8', block, packing: 1, scaleBlock: block, splitsBlocks: true };
}

/**
 * Dequantizes one canonical FP8 weight whose scale grid is cut with it: the rank's local row 0
 * (per half) or column 0 sits `start % block` into the first block it holds. Shared with the
 * static FP8 format, whose per-tensor and per-channel scales are blocks covering whole axes.
 */
export function dequantizeBlocked(block: BlockSize) {
  return (w: Parameters<typeof dequantizeFp8>[0], scale: Parameters<typeof dequantizeFp8>[1] | undefined, at: { name: string; parts: 1 | 2; cut: 'rows' | 'cols'; start: number }) => {
    if (scale === undefined) throw new QuantConfigError('FP8 weight without its scale', { tensor: at.name, expected: `${at.name}_scale`, found: 'absent' });
    return dequantizeFp8(w, scale, {
      block,
      parts: at.parts,
      rowOrigin: at.cut === 'rows' ? at.start % block.rows : 0,
      colOrigin: at.cut === 'cols' ? at.start % block.cols : 0,
      name: at.name,
    });
  };
}

/** Random E4M3 weights (every pattern but NaN) and F32 block scales around 0.1 / 448 (weights of about N(0, 0.1)). */
export function randomBlocked(uniform: () => number, block: BlockSize, lead: number[], parts: 1 | 2, rows: number, cols: number) {
  const gr = blockSpan(0, rows, block.rows).count;
  const gc = blockSpan(0, cols, block.cols).count;
  const shape = [...lead, parts * rows, cols];
  return {
    weight: { dtype: 'F8_E4M3' as const, shape, bytes: randomBytes(uniform, count(shape), (b) => !isE4m3NaN(b)) },
    scale: f32Around(uniform, [...lead, parts * gr, gc], 0.1 / 448),
  };
}

/** transformers' FineGrainedFP8Config writes `weight_block_size` always; without it the config is static FP8 (./fp8-static.ts). */
export const FP8_BLOCK: QuantFormat<Fp8BlockScheme> = {
  method: 'fp8',
  title: 'FP8 with block scales (DeepSeek-V3 style)',
  stored: () => 'F8_E4M3 with F32 block scales',
  companions: () => ['scale'],
  defaultScheme: fp8BlockScheme({ rows: 128, cols: 128 }),
  detect(q, file) {
    if (q.quant_method !== 'fp8' || q.weight_block_size === undefined) return undefined;
    if (q.fmt !== undefined && q.fmt !== 'e4m3') {
      throw new QuantConfigError('only E4M3 FP8 weights are supported', { file, tensor: 'quantization_config.fmt', expected: 'e4m3', found: q.fmt });
    }
    return fp8BlockScheme(parseBlockSize(q.weight_block_size));
  },
  config: (s) => ({ quant_method: 'fp8', fmt: 'e4m3', activation_scheme: 'dynamic', weight_block_size: [s.block.rows, s.block.cols] }),
  check() {},
  layout(float, s) {
    const { experts } = splitLayout(float, s);
    return { module: float.module, tensors: [...float.tensors, ...experts.map((t) => companion(t, companionKey(t.spec.key, 'weight_scale_inv', 'scale_inv'), gridOp(t.spec, s.block)))] };
  },
  dequantize: (w, c, at, s) => dequantizeBlocked(s.block)(w, c.scale, at),
  random(uniform, s, lead, parts, rows, cols) {
    const { weight, scale } = randomBlocked(uniform, s.block, lead, parts, rows, cols);
    return { weight, companions: { scale } };
  },
};
