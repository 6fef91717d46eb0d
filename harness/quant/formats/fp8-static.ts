// Static FP8 (spec/layouts.md §4.2): E4M3 weights with one F32 scale per projection
// (per-tensor) or per output row (per-channel), and a static F32 `input_scale` per projection
// where activations are static. Three producers write it: `quant_method: "fp8"` without
// `weight_block_size` (AutoFP8, vLLM's Fp8Config) and ModelOpt `quant_algo: "FP8"` (scales
// stored `[]`), and compressed-tensors `float-quantized` (`[1]`, per-channel `[out, 1]`).
// The canonical scales are the FP8 block grid with blocks covering whole axes, so the
// arithmetic and the TP cut are FP8 block's.
import { WHOLE_AXIS, type QuantGeometry } from '../../layouts/ops.js';
import { QuantConfigError, ScaleMismatch, showFields } from '../errors.js';
import type { QuantFormat } from '../format.js';
import { companion, companionKey, gridOp, perProjectionOp, splitLayout } from '../stored.js';
import { dequantizeBlocked, randomBlocked } from './fp8-block.js';
import { count, f32Around, shareValues } from './random-bytes.js';
import type { Tensor } from '../../tensor.js';

export type Fp8Producer = 'fp8' | 'modelopt' | 'compressed-tensors';

export interface Fp8StaticScheme extends QuantGeometry {
  method: 'fp8-static';
  producer: Fp8Producer;
  strategy: 'tensor' | 'channel';
  /** Whether every projection carries a static `input_scale` (required then, absent otherwise). */
  staticInput: boolean;
  /** Per tensor: one `weight_scale` and `input_scale` for a whole fused tensor (`[]`), as ModelOpt exports llama4's and gpt_oss's experts; the stored shapes tell. */
  globalScale?: 'tensor';
}

export function fp8StaticScheme(producer: Fp8Producer, strategy: 'tensor' | 'channel', staticInput: boolean, globalScale?: 'tensor'): Fp8StaticScheme {
  if (producer !== 'compressed-tensors' && strategy !== 'tensor') throw new Error(`${producer} FP8 has per-tensor scales only`);
  const s: Fp8StaticScheme = { method: 'fp8-static', producer, strategy, staticInput, packing: 1, scaleBlock: { rows: strategy === 'tensor' ? WHOLE_AXIS : 1, cols: WHOLE_AXIS }, splitsBlocks: true };
  return globalScale ? { ...s, globalScale } : s;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** compressed-tensors float-quantized: the one config group's weights and input activations. */
function compressedTensorsScheme(q: Record<string, unknown>, file: string): Fp8StaticScheme {
  const groups = isRecord(q.config_groups) ? Object.values(q.config_groups) : [];
  const g = groups[0];
  const bad = (what: string, expected: unknown, found: unknown): never => {
    throw new QuantConfigError(`compressed-tensors float-quantized: ${what}`, { file, tensor: 'quantization_config.config_groups', expected, found });
  };
  if (groups.length !== 1 || !isRecord(g) || !isRecord(g.weights)) return bad('one config group with weights', '1 group', groups.length);
  const w = g.weights;
  if (w.num_bits !== 8 || w.type !== 'float') bad('weights must be 8-bit float', 'num_bits 8, type float', showFields(w, ['num_bits', 'type']));
  if (w.strategy !== 'tensor' && w.strategy !== 'channel') bad('weight strategy', 'tensor|channel (block: use quant_method fp8 with weight_block_size)', w.strategy);
  const a = g.input_activations;
  const staticInput = isRecord(a) && a.dynamic === false;
  if (staticInput && a.strategy !== 'tensor') bad('static input activations must be per tensor', 'tensor', a.strategy);
  return fp8StaticScheme('compressed-tensors', w.strategy as 'tensor' | 'channel', staticInput);
}

export const FP8_STATIC: QuantFormat<Fp8StaticScheme> = {
  method: 'fp8-static',
  title: 'static FP8, per-tensor or per-channel scales',
  stored: (s) => `F8_E4M3 with F32 per-${s.strategy} scales${s.staticInput ? ' and static input_scale' : ''}`,
  companions: (s) => (s.staticInput ? ['scale', 'input_scale'] : ['scale']),
  defaultScheme: fp8StaticScheme('fp8', 'tensor', true),
  variants: (s) => (s.strategy === 'tensor' ? [s, fp8StaticScheme(s.producer, s.strategy, s.staticInput, 'tensor')] : [s]),
  detect(q, file) {
    if (q.quant_method === 'fp8' && q.weight_block_size === undefined) {
      if (q.fmt !== undefined && q.fmt !== 'e4m3') throw new QuantConfigError('only E4M3 FP8 weights are supported', { file, tensor: 'quantization_config.fmt', expected: 'e4m3', found: q.fmt });
      const act = q.activation_scheme ?? 'dynamic';
      if (act !== 'static' && act !== 'dynamic') throw new QuantConfigError('activation_scheme must be static or dynamic', { file, tensor: 'quantization_config.activation_scheme', expected: 'static|dynamic', found: act });
      return fp8StaticScheme('fp8', 'tensor', act === 'static');
    }
    const algo = q.quant_algo ?? (isRecord(q.quantization) ? q.quantization.quant_algo : undefined);
    if (q.quant_method === 'modelopt' && algo === 'FP8') return fp8StaticScheme('modelopt', 'tensor', true);
    if (q.quant_method === 'compressed-tensors' && q.format === 'float-quantized') return compressedTensorsScheme(q, file);
    return undefined;
  },
  config(s) {
    if (s.producer === 'fp8') return { quant_method: 'fp8', fmt: 'e4m3', activation_scheme: s.staticInput ? 'static' : 'dynamic', ignored_layers: ['lm_head'] };
    if (s.producer === 'modelopt') return { quant_method: 'modelopt', quant_algo: 'FP8', producer: { name: 'modelopt' }, ignore: ['lm_head', '*.gate', '*.router'] };
    return {
      quant_method: 'compressed-tensors',
      format: 'float-quantized',
      quantization_status: 'compressed',
      config_groups: {
        group_0: {
          targets: ['Linear'],
          format: 'float-quantized',
          weights: { num_bits: 8, type: 'float', symmetric: true, strategy: s.strategy, dynamic: false },
          input_activations: s.staticInput ? { num_bits: 8, type: 'float', symmetric: true, strategy: 'tensor', dynamic: false } : null,
        },
      },
      ignore: ['lm_head', 're:.*mlp.gate$', 're:.*router$'],
    };
  },
  check() {},
  layout(float, s) {
    const ct = s.producer === 'compressed-tensors';
    const { experts } = splitLayout(float, s);
    const extra = experts.flatMap((t) => {
      const scale = s.strategy === 'channel' ? gridOp(t.spec, s.scaleBlock) : perProjectionOp(t, 'scale', ct ? [1] : [], s.globalScale);
      return [
        companion(t, companionKey(t.spec.key, 'weight_scale', 'weight_scale'), scale),
        ...(s.staticInput ? [companion(t, companionKey(t.spec.key, 'input_scale', 'input_scale'), perProjectionOp(t, 'input_scale', ct ? [1] : [], s.globalScale))] : []),
      ];
    });
    return { module: float.module, tensors: [...float.tensors, ...extra] };
  },
  dequantize(w, c, at, s) {
    if (c.scale === undefined) throw new ScaleMismatch('FP8 weight without its scale', { tensor: at.name, expected: `${at.name}_scale`, found: 'absent' });
    return dequantizeBlocked(s.scaleBlock)(w, c.scale, at);
  },
  random(uniform, s, lead, parts, rows, cols) {
    const { weight, scale } = randomBlocked(uniform, s.scaleBlock, lead, parts, rows, cols);
    // One value per tensor where the stored form holds one (every expert, gate and up).
    const shared = (t: Tensor) => (s.globalScale ? shareValues(t, count(t.shape)) : t);
    return { weight, companions: { scale: shared(scale), ...(s.staticInput ? { input_scale: shared(f32Around(uniform, parts === 2 ? [...lead, 2] : lead, 4 / 448)) } : {}) } };
  },
};
