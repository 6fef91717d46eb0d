// NVFP4 (NVIDIA ModelOpt, `quant_algo: "NVFP4"`), spec/layouts.md §4.1: per projection `X`,
// `X.weight` U8 [out, in/2] (E2M1 pairs, low nibble first), `X.weight_scale` F8_E4M3
// [out, in/16], `X.weight_scale_2` F32 [] and `X.input_scale` F32 []; fused v5:
// `experts.gate_up_proj` [E, 2I, H/2] with `_weight_scale` [E, 2I, H/16], `_weight_scale_2` and
// `_input_scale` [E, 2] (gate, up); `experts.down_proj` with `[E]` per-projection values.
// A TP rank holds whole 16-element blocks. The arithmetic is ../nvfp4-math.ts.
import type { QuantGeometry } from '../../layouts/ops.js';
import { ShapeMismatch } from '../../layouts/errors.js';
import { QuantConfigError, ScaleMismatch } from '../errors.js';
import type { QuantFormat } from '../format.js';
import type { Tensor } from '../../tensor.js';
import { dequantizeNvfp4, NVFP4_BLOCK } from '../nvfp4-math.js';
import { companion, companionKey, gridOp, packable, perProjectionOp, splitLayout } from '../stored.js';
import { count, f32Around, randomBytes, shareValues } from './random-bytes.js';

export interface Nvfp4Scheme extends QuantGeometry {
  method: 'nvfp4';
  /**
   * How many `weight_scale_2` and `input_scale` values a tensor holding several projections
   * stores (spec/layouts.md §4.1): absent, one per projection (`[E, 2]` gate, up); `'expert'`,
   * one per expert that gate and up share (`[E]`, checkpoints fused before quantization);
   * `'tensor'`, one for the whole tensor (`[]`, ModelOpt's llama4 / gpt_oss export). The
   * canonical form is `[E_local, 2]` either way. The config does not say: the stored shapes do.
   */
  globalScale?: 'expert' | 'tensor';
}

export const NVFP4_SCHEME: Nvfp4Scheme = { method: 'nvfp4', packing: 2, scaleBlock: { rows: 1, cols: NVFP4_BLOCK }, splitsBlocks: false };
export const nvfp4Scheme = (globalScale?: 'expert' | 'tensor'): Nvfp4Scheme => (globalScale ? { ...NVFP4_SCHEME, globalScale } : NVFP4_SCHEME);

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** E4M3 block-scale bytes drawn: positive, 0.25 .. 15 (every mantissa; no NaN, no zero: ModelOpt maps a zero block's scale to 1.0). */
const scaleByte = (uniform: () => number) => 0x28 + Math.floor(uniform() * (0x58 - 0x28));

export const NVFP4: QuantFormat<Nvfp4Scheme> = {
  method: 'nvfp4',
  title: 'NVFP4 (ModelOpt)',
  stored: () => 'NVFP4 (U8 E2M1 pairs, F8_E4M3 block scales, F32 weight_scale_2 and input_scale)',
  companions: () => ['scale', 'scale_2', 'input_scale'],
  defaultScheme: NVFP4_SCHEME,
  variants: () => [NVFP4_SCHEME, nvfp4Scheme('expert'), nvfp4Scheme('tensor')],
  detect(q, file) {
    if (q.quant_method !== 'modelopt') return undefined;
    const algo = q.quant_algo ?? (isRecord(q.quantization) ? q.quantization.quant_algo : undefined);
    if (algo !== 'NVFP4') return undefined;
    const gs = (q.group_size ?? (isRecord(q.config_groups) && isRecord(q.config_groups.group_0) && isRecord(q.config_groups.group_0.weights) ? q.config_groups.group_0.weights.group_size : NVFP4_BLOCK)) as unknown;
    if (gs !== NVFP4_BLOCK) throw new QuantConfigError('NVFP4 scales one block of 16 elements', { file, tensor: 'quantization_config.group_size', expected: NVFP4_BLOCK, found: gs });
    return NVFP4_SCHEME;
  },
  config: () => ({
    quant_method: 'modelopt',
    quant_algo: 'NVFP4',
    producer: { name: 'modelopt' },
    config_groups: {
      group_0: {
        weights: { num_bits: 4, type: 'float', group_size: NVFP4_BLOCK, dynamic: false },
        input_activations: { num_bits: 4, type: 'float', group_size: NVFP4_BLOCK, dynamic: false },
        targets: ['Linear'],
      },
    },
    ignore: ['lm_head', '*.gate', '*.router'],
  }),
  check(_modelType, dims, _s, file) {
    for (const [what, n] of [['hidden', dims.hidden], ['intermediate', dims.intermediate]] as const) {
      if (n % NVFP4_BLOCK !== 0) throw new ShapeMismatch(`NVFP4 needs the ${what} size in whole 16-element blocks`, { file, expected: `a multiple of ${NVFP4_BLOCK}`, found: n });
    }
  },
  layout(float, s) {
    const { experts } = splitLayout(float, s);
    const extra = experts.map((x) => packable(x, 'NVFP4', 'in')).flatMap((t) => {
      return [
        companion(t, companionKey(t.spec.key, 'weight_scale', 'weight_scale'), gridOp(t.spec, s.scaleBlock)),
        companion(t, companionKey(t.spec.key, 'weight_scale_2', 'weight_scale_2'), perProjectionOp(t, 'scale_2', [], s.globalScale)),
        companion(t, companionKey(t.spec.key, 'input_scale', 'input_scale'), perProjectionOp(t, 'input_scale', [], s.globalScale)),
      ];
    });
    return { module: float.module, tensors: [...float.tensors, ...extra] };
  },
  dequantize(w, c, at) {
    for (const k of ['scale', 'scale_2'] as const) {
      if (c[k] === undefined) throw new ScaleMismatch(`NVFP4 weight without its ${k}`, { tensor: at.name, expected: `${at.name}_${k}`, found: 'absent' });
    }
    return dequantizeNvfp4(w, c.scale!, c.scale_2!, { parts: at.parts, name: at.name });
  },
  random(uniform, s, lead, parts, rows, cols) {
    const shape = [...lead, parts * rows];
    const blocks = [...shape, cols / NVFP4_BLOCK];
    const perProjection = parts === 2 ? [...lead, 2] : lead;
    // One value drawn for all the projections that share it, copied to each.
    const shared = (t: Tensor) => (s.globalScale === undefined ? t : shareValues(t, s.globalScale === 'tensor' ? count(perProjection) : parts));
    return {
      weight: { dtype: 'U8', shape: [...shape, cols / 2], bytes: randomBytes(uniform, count(shape) * (cols / 2)) },
      companions: {
        scale: { dtype: 'F8_E4M3', shape: blocks, bytes: Uint8Array.from({ length: count(blocks) }, () => scaleByte(uniform)) },
        // Weights of about N(0, 0.1) in size like the float generator's; gate and up drawn apart (they differ in real checkpoints).
        scale_2: shared(f32Around(uniform, perProjection, 0.1 / (6 * 4))),
        input_scale: shared(f32Around(uniform, perProjection, 4 / (6 * 448))),
      },
    };
  },
};

