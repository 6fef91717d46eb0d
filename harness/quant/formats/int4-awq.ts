// INT4 groups as AutoAWQ writes them (`quant_method: "awq"`, `version: "gemm"`), spec/layouts.md
// §4.3: per projection module `X`, `X.qweight` I32 [in, out/8] (nibble k of word j holds
// output column 8j + AWQ_ORDER[k], AWQ_ORDER = 0 2 4 6 1 3 5 7), `X.qzeros` I32 [in/group,
// out/8] (same order, zero stored as is) and `X.scales` F16 [in/group, out]. Packed along the
// output axis, so the canonical weight keeps AWQ's words in the [out/8, in] orientation: w13's
// rows are cut in whole words. Fused (no producer known; the harness's names):
// `experts.gate_up_proj_qweight`, `_qzeros`, `_scales`.
import { transposeLast, type QuantGeometry } from '../../layouts/ops.js';
import { ShapeMismatch } from '../../layouts/errors.js';
import { encodeFloats } from '../../safetensors/codecs.js';
import { QuantConfigError, ScaleMismatch } from '../errors.js';
import type { QuantFormat } from '../format.js';
import { dequantizeAwq, INT4_PER_WORD } from '../int4-math.js';
import { companion, gridOp, packable, splitLayout } from '../stored.js';
import { count, randomBytes } from './random-bytes.js';
import { AWQ_ORDER } from '../int4-math.js';

export interface Int4AwqScheme extends QuantGeometry {
  method: 'int4-awq';
  group: number;
}

export function int4AwqScheme(group: number): Int4AwqScheme {
  return { method: 'int4-awq', group, packing: INT4_PER_WORD, packRows: true, rowNibbles: AWQ_ORDER, scaleBlock: { rows: 1, cols: group }, splitsBlocks: false, zeroRows: INT4_PER_WORD };
}

const awqKey = (key: string, name: string) => (key.endsWith('.weight') ? `${key.slice(0, -'.weight'.length)}.${name}` : `${key}_${name}`);

export const INT4_AWQ: QuantFormat<Int4AwqScheme> = {
  method: 'int4-awq',
  title: 'INT4 groups (AutoAWQ GEMM)',
  stored: (s) => `AWQ INT4 (I32 qweight/qzeros in AWQ order, F16 scales), groups of ${s.group}`,
  companions: () => ['scale', 'zero'],
  defaultScheme: int4AwqScheme(128),
  detect(q, file) {
    if (q.quant_method !== 'awq') return undefined;
    const bad = (what: string, tensor: string, expected: unknown, found: unknown): never => {
      throw new QuantConfigError(`AWQ: ${what}`, { file, tensor: `quantization_config.${tensor}`, expected, found });
    };
    const bits = q.bits ?? q.w_bit;
    if (bits !== 4) bad('4-bit only', 'bits', 4, bits);
    const version = String(q.version ?? 'gemm').toLowerCase();
    if (version !== 'gemm') bad('only the GEMM packing is served (GEMV and Marlin pack differently)', 'version', 'gemm', q.version);
    if (q.zero_point === false) bad('zero_point false is not served', 'zero_point', true, false);
    const gs = q.group_size ?? q.q_group_size;
    if (typeof gs !== 'number' || !Number.isSafeInteger(gs) || gs < INT4_PER_WORD || gs % INT4_PER_WORD !== 0) bad('group_size must be a positive multiple of 8', 'group_size', 'a multiple of 8', gs);
    return int4AwqScheme(gs as number);
  },
  config: (s) => ({ quant_method: 'awq', bits: 4, group_size: s.group, zero_point: true, version: 'gemm', modules_to_not_convert: ['gate'] }),
  check(_modelType, dims, s, file) {
    for (const [what, n] of [['hidden', dims.hidden], ['intermediate', dims.intermediate]] as const) {
      if (n % s.group !== 0) throw new ShapeMismatch(`AWQ groups of ${s.group} need the ${what} size in whole groups`, { file, expected: `a multiple of ${s.group}`, found: n });
    }
  },
  layout(float, s) {
    const { experts, rest } = splitLayout(float, s);
    const tensors = experts.map((x) => packable(x, 'AWQ', 'out')).flatMap((t) => [
      companion(t, awqKey(t.spec.key, 'qweight'), transposeLast(t.spec.op)),
      companion(t, awqKey(t.spec.key, 'qzeros'), transposeLast(gridOp(t.spec, { rows: INT4_PER_WORD, cols: s.group }, 'zero'))),
      companion(t, awqKey(t.spec.key, 'scales'), transposeLast(gridOp(t.spec, s.scaleBlock))),
    ]);
    return { module: float.module, tensors: [...rest, ...tensors] };
  },
  dequantize(w, c, at, s) {
    for (const k of ['scale', 'zero'] as const) {
      if (c[k] === undefined) throw new ScaleMismatch(`AWQ weight without its ${k}`, { tensor: at.name, expected: `${at.name}_${k}`, found: 'absent' });
    }
    return dequantizeAwq(w, c.scale!, c.zero!, s.group, at.name);
  },
  random(uniform, s, lead, parts, rows, cols) {
    const R = parts * rows;
    const words = [...lead, R / INT4_PER_WORD, cols];
    const grid = [...lead, R, cols / s.group];
    const zeros = [...lead, R / INT4_PER_WORD, cols / s.group];
    const scale = Float32Array.from({ length: count(grid) }, () => (0.1 / 8) * (0.5 + uniform()));
    return {
      weight: { dtype: 'I32', shape: words, bytes: randomBytes(uniform, count(words) * 4) },
      companions: {
        scale: { dtype: 'F16', shape: grid, bytes: encodeFloats('F16', scale) },
        zero: { dtype: 'I32', shape: zeros, bytes: randomBytes(uniform, count(zeros) * 4) },
      },
    };
  },
};
