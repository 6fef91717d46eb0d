// INT4 group quantization as compressed-tensors writes it (`format: "pack-quantized"`,
// llm-compressor W4A16), spec/layouts.md §4.3: per projection `X`, `X.weight_packed` I32
// [out, in/8] (codes q + 8, element 8j+k at bits 4k of word j), `X.weight_scale` [out,
// in/group] in the model dtype, `X.weight_zero_point` I32 [out/8, in/group] where asymmetric
// (zp + 8, packed along the output axis), and `X.weight_shape` I64 [2] = [out, in]. Fused
// (no producer known; the harness's names): `experts.gate_up_proj_packed`, `_weight_scale`,
// `_weight_zero_point`, `_weight_shape` [E, 2, 2]. A TP rank holds whole groups of w2's K.
// With `actorder: "group"`, `X.weight_g_idx` I32 [in] gives each column's group.
import type { QuantGeometry } from '../../layouts/ops.js';
import { ShapeMismatch } from '../../layouts/errors.js';
import { encodeFloats } from '../../safetensors/codecs.js';
import { QuantConfigError, ScaleMismatch, showFields } from '../errors.js';
import type { QuantFormat } from '../format.js';
import { dequantizeInt4, INT4_PER_WORD } from '../int4-math.js';
import { companion, companionKey, gIdxOp, gridOp, packable, shapeOp, splitLayout } from '../stored.js';
import { actOrderGroups, count, randomBytes } from './random-bytes.js';

export interface Int4CtScheme extends QuantGeometry {
  method: 'int4-ct';
  group: number;
  symmetric: boolean;
  /** `actorder: "group"`: `weight_g_idx` gives each column's group, and w2's groups stay whole on every TP rank. */
  actorder: boolean;
}

export function int4CtScheme(group: number, symmetric: boolean, actorder = false): Int4CtScheme {
  return {
    method: 'int4-ct',
    group,
    symmetric,
    actorder,
    packing: INT4_PER_WORD,
    scaleBlock: { rows: 1, cols: group },
    splitsBlocks: false,
    ...(symmetric ? {} : { zeroRows: INT4_PER_WORD }),
    ...(actorder ? { kScalesWhole: true } : {}),
  };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export const INT4_CT: QuantFormat<Int4CtScheme> = {
  method: 'int4-ct',
  title: 'INT4 groups (compressed-tensors pack-quantized)',
  stored: (s) => `I32-packed INT4, ${s.symmetric ? 'symmetric' : 'asymmetric'}, groups of ${s.group} with BF16 scales`,
  companions: (s) => ['scale', ...(s.symmetric ? [] : (['zero'] as const)), 'shape', ...(s.actorder ? (['g_idx'] as const) : [])],
  defaultScheme: int4CtScheme(128, true),
  detect(q, file) {
    if (q.quant_method !== 'compressed-tensors') return undefined;
    const groups = isRecord(q.config_groups) ? Object.values(q.config_groups) : [];
    const g = groups[0];
    const format = q.format ?? (isRecord(g) ? g.format : undefined);
    if (format !== 'pack-quantized') return undefined;
    const bad = (what: string, expected: unknown, found: unknown): never => {
      throw new QuantConfigError(`compressed-tensors pack-quantized: ${what}`, { file, tensor: 'quantization_config.config_groups', expected, found });
    };
    if (groups.length !== 1 || !isRecord(g) || !isRecord(g.weights)) return bad('one config group with weights', '1 group', groups.length);
    const w = g.weights;
    if (w.num_bits !== 4 || w.type !== 'int') bad('weights must be 4-bit integers', 'num_bits 4, type int', showFields(w, ['num_bits', 'type']));
    if (w.strategy !== 'group') bad('weight strategy', 'group', w.strategy);
    const gs = w.group_size;
    if (typeof gs !== 'number' || !Number.isSafeInteger(gs) || gs < INT4_PER_WORD || gs % INT4_PER_WORD !== 0) bad('group_size must be a positive multiple of 8', 'a multiple of 8', gs);
    const order = w.actorder ?? null;
    if (order !== null && order !== false && order !== 'group') bad('activation ordering other than "group" (which stores weight_g_idx) is not served', 'actorder null|"group"', order);
    if (isRecord(g.input_activations)) bad('weight-only (W4A16) only', 'input_activations null', 'configured');
    return int4CtScheme(gs as number, w.symmetric !== false, order === 'group');
  },
  config: (s) => ({
    quant_method: 'compressed-tensors',
    format: 'pack-quantized',
    quantization_status: 'compressed',
    config_groups: {
      group_0: {
        targets: ['Linear'],
        format: 'pack-quantized',
        weights: { num_bits: 4, type: 'int', symmetric: s.symmetric, strategy: 'group', group_size: s.group, actorder: s.actorder ? 'group' : null, dynamic: false },
        input_activations: null,
      },
    },
    ignore: ['lm_head', 're:.*mlp.gate$', 're:.*router$'],
  }),
  check(_modelType, dims, s, file) {
    for (const [what, n] of [['hidden', dims.hidden], ['intermediate', dims.intermediate]] as const) {
      if (n % s.group !== 0) throw new ShapeMismatch(`INT4 groups of ${s.group} need the ${what} size in whole groups (compressed-tensors refuses partial groups)`, { file, expected: `a multiple of ${s.group}`, found: n });
    }
  },
  layout(float, s) {
    const { experts, rest } = splitLayout(float, s);
    const tensors = experts.map((x) => packable(x, 'INT4 (compressed-tensors)', 'in')).flatMap((t) => [
      companion(t, companionKey(t.spec.key, 'weight_packed', 'packed'), t.spec.op),
      companion(t, companionKey(t.spec.key, 'weight_scale', 'weight_scale'), gridOp(t.spec, s.scaleBlock)),
      ...(s.symmetric ? [] : [companion(t, companionKey(t.spec.key, 'weight_zero_point', 'weight_zero_point'), gridOp(t.spec, { rows: INT4_PER_WORD, cols: s.group }, 'zero'))]),
      companion(t, companionKey(t.spec.key, 'weight_shape', 'weight_shape'), shapeOp(t)),
      ...(s.actorder ? [companion(t, companionKey(t.spec.key, 'weight_g_idx', 'weight_g_idx'), gIdxOp(t))] : []),
    ]);
    return { module: float.module, tensors: [...rest, ...tensors] };
  },
  dequantize(w, c, at, s) {
    if (c.scale === undefined) throw new ScaleMismatch('INT4 weight without its scale', { tensor: at.name, expected: `${at.name}_scale`, found: 'absent' });
    if (s.actorder && c.g_idx === undefined) throw new ScaleMismatch('INT4 weight without its g_idx (actorder "group")', { tensor: at.name, expected: `${at.name}_g_idx`, found: 'absent' });
    return dequantizeInt4(w, c.scale, c.zero, s.group, at.name, s.actorder ? { gIdx: { tensor: c.g_idx!, start: at.cut === 'cols' ? at.start : 0, ordered: false } } : {});
  },
  random(uniform, s, lead, parts, rows, cols) {
    const R = parts * rows;
    const words = [...lead, R, cols / INT4_PER_WORD];
    const grid = [...lead, R, cols / s.group];
    const zeros = [...lead, R / INT4_PER_WORD, cols / s.group];
    // Scales of about 0.1 / 8: codes -8..7 around the zero give weights of about N(0, 0.1) in size.
    const scale = Float32Array.from({ length: count(grid) }, () => (0.1 / 8) * (0.5 + uniform()));
    const shape = new BigInt64Array(count(lead) * parts * 2);
    const gIdx = s.actorder ? actOrderGroups(uniform, count(lead) * parts, cols, s.group) : undefined;
    for (let k = 0; k < shape.length; k += 2) [shape[k], shape[k + 1]] = [BigInt(rows), BigInt(cols)];
    return {
      weight: { dtype: 'I32', shape: words, bytes: randomBytes(uniform, count(words) * 4) },
      companions: {
        scale: { dtype: 'BF16', shape: grid, bytes: encodeFloats('BF16', scale) },
        ...(s.symmetric ? {} : { zero: { dtype: 'I32' as const, shape: zeros, bytes: randomBytes(uniform, count(zeros) * 4) } }),
        shape: { dtype: 'I64', shape: parts === 2 ? [...lead, 2, 2] : [...lead, 2], bytes: new Uint8Array(shape.buffer) },
        ...(gIdx ? { g_idx: { dtype: 'I32' as const, shape: parts === 2 ? [...lead, 2, cols] : [...lead, cols], bytes: new Uint8Array(gIdx.buffer) } } : {}),
      },
    };
  },
};
