// MXFP4 (OCP microscaling FP4), spec/loader-protocol.md §4 and spec/layouts.md §4.6.
// gpt_oss as published: `*_blocks` U8 [E, rows, in/32, 16] stored [out, in] with gate/up rows
// interleaved, and `*_scales` U8 (E8M0) [E, rows, in/32]. Every other layout: the packed U8
// weight where the float weight is (its own tree over E2M1 pairs along `in`) and
// `X.weight_scale` U8 [out, in/32] beside it (fused: `<key>_weight_scale`, the tree on the
// grid of blocks), as Quark writes per-expert MXFP4. compressed-tensors (`format:
// "mxfp4-pack-quantized"`, llm-compressor) stores the same bytes as `X.weight_packed` (fused:
// `<key>_packed`) in every layout, gpt_oss's included. A TP rank holds whole 32-element
// blocks. The arithmetic is ../mxfp4.ts.
import { interleave, part, splitLast, stackExperts, type Op, type QuantGeometry } from '../../layouts/ops.js';
import type { ModuleLayout } from '../../layouts/registry.js';
import { fusedInterleavedWithBias } from '../../layouts/types/common.js';
import { ShapeMismatch } from '../../layouts/errors.js';
import { dequantizeMxfp4, MX_BLOCK, MX_BLOCK_BYTES } from '../mxfp4.js';
import { QuantConfigError, ScaleMismatch, showFields } from '../errors.js';
import type { QuantFormat } from '../format.js';
import { companion, companionKey, gridOp, packable, splitLayout } from '../stored.js';
import { count, randomBytes } from './random-bytes.js';

export interface Mxfp4Scheme extends QuantGeometry {
  method: 'mxfp4';
  /** compressed-tensors' `mxfp4-pack-quantized` (the weight stored as `weight_packed`); absent: `quant_method: "mxfp4"`. */
  producer?: 'compressed-tensors';
}

export const MXFP4_SCHEME: Mxfp4Scheme = { method: 'mxfp4', packing: 2, scaleBlock: { rows: 1, cols: MX_BLOCK }, splitsBlocks: false };
export const MXFP4_CT_SCHEME: Mxfp4Scheme = { ...MXFP4_SCHEME, producer: 'compressed-tensors' };
const CT_FORMAT = 'mxfp4-pack-quantized';

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** compressed-tensors MXFP4 as vLLM's `_is_mxfp4` accepts it: 4-bit float weights, symmetric groups of 32. */
function detectCt(q: Record<string, unknown>, file: string): Mxfp4Scheme | undefined {
  if (q.quant_method !== 'compressed-tensors') return undefined;
  const groups = isRecord(q.config_groups) ? Object.values(q.config_groups) : [];
  const g = groups[0];
  if ((q.format ?? (isRecord(g) ? g.format : undefined)) !== CT_FORMAT) return undefined;
  const w = isRecord(g) && isRecord(g.weights) ? g.weights : {};
  const found = showFields(w, ['num_bits', 'type', 'strategy', 'group_size', 'symmetric']);
  if (groups.length !== 1 || w.num_bits !== 4 || w.type !== 'float' || w.strategy !== 'group' || w.group_size !== MX_BLOCK || w.symmetric === false) {
    throw new QuantConfigError(`compressed-tensors ${CT_FORMAT}: one group of 4-bit float weights, symmetric groups of 32`, { file, tensor: 'quantization_config.config_groups', expected: '4 float group 32 symmetric=true', found });
  }
  return MXFP4_CT_SCHEME;
}

/** gpt_oss's published form, for a layout holding gpt_oss's fused, transposed, interleaved experts. */
function gptOssForm(float: ModuleLayout): ModuleLayout {
  const rowsOf = (a: Op, b?: Op) => stackExperts(b ? interleave(0, a, b) : a);
  return {
    module: float.module,
    tensors: [
      ...splitLayout(float).rest,
      { key: 'experts.gate_up_proj_blocks', op: stackExperts(splitLast(interleave(0, part('gate'), part('up')), MX_BLOCK_BYTES)) },
      { key: 'experts.gate_up_proj_scales', op: rowsOf(part('gate_scale'), part('up_scale')) },
      { key: 'experts.down_proj_blocks', op: stackExperts(splitLast(part('down'), MX_BLOCK_BYTES)) },
      { key: 'experts.down_proj_scales', op: rowsOf(part('down_scale')) },
    ],
  };
}

export const MXFP4: QuantFormat<Mxfp4Scheme> = {
  method: 'mxfp4',
  title: 'MXFP4 (gpt_oss published form; weight + weight_scale elsewhere)',
  stored: () => 'MXFP4 (U8 blocks, U8 E8M0 scales)',
  companions: () => ['scale'],
  blockBytes: MX_BLOCK_BYTES,
  defaultScheme: MXFP4_SCHEME,
  detect: (q, file) => (q.quant_method === 'mxfp4' ? MXFP4_SCHEME : detectCt(q, file)),
  config: (s) =>
    s.producer
      ? {
          quant_method: 'compressed-tensors',
          format: CT_FORMAT,
          quantization_status: 'compressed',
          config_groups: { group_0: { targets: ['Linear'], format: CT_FORMAT, weights: { num_bits: 4, type: 'float', symmetric: true, strategy: 'group', group_size: MX_BLOCK, dynamic: false }, input_activations: null } },
          ignore: ['lm_head', 're:.*mlp.gate$', 're:.*router$'],
        }
      : { quant_method: 'mxfp4' },
  check(_modelType, dims, _s, file) {
    for (const [what, n] of [['hidden', dims.hidden], ['intermediate', dims.intermediate]] as const) {
      if (n % MX_BLOCK !== 0) throw new ShapeMismatch(`MXFP4 needs the ${what} size in whole 32-element blocks`, { file, expected: `a multiple of ${MX_BLOCK}`, found: n });
    }
  },
  layout(float, s) {
    if (!s.producer && fusedInterleavedWithBias.every((t) => float.tensors.includes(t))) return gptOssForm(float);
    const { experts, rest } = splitLayout(float, s);
    const stored = experts.map((x) => packable(x, 'MXFP4', 'in')).flatMap((t) => [
      ...(s.producer ? [companion(t, companionKey(t.spec.key, 'weight_packed', 'packed'), t.spec.op)] : [t.spec]),
      companion(t, companionKey(t.spec.key, 'weight_scale', 'weight_scale'), gridOp(t.spec, s.scaleBlock)),
    ]);
    return { module: float.module, tensors: [...rest, ...stored] };
  },
  dequantize(w, c, at) {
    if (c.scale === undefined) throw new ScaleMismatch('MXFP4 weight without its scale', { tensor: at.name, expected: `${at.name}_scale`, found: 'absent' });
    return dequantizeMxfp4(w, c.scale, at.name);
  },
  random(uniform, _s, lead, parts, rows, cols, name) {
    if (cols % MX_BLOCK !== 0) throw new QuantConfigError('MXFP4 rows must be whole 32-element blocks', { tensor: name, expected: `a multiple of ${MX_BLOCK}`, found: cols });
    const g = cols / MX_BLOCK;
    const shape = [...lead, parts * rows, g];
    return {
      weight: { dtype: 'U8', shape: [...shape, MX_BLOCK_BYTES], bytes: randomBytes(uniform, count(shape) * MX_BLOCK_BYTES) },
      // 2^-7 .. 2^-3 times E2M1 values up to 6: weights of about the float generator's size.
      companions: { scale: { dtype: 'U8', shape, bytes: Uint8Array.from({ length: count(shape) }, () => 120 + Math.floor(uniform() * 5)) } },
    };
  },
};
