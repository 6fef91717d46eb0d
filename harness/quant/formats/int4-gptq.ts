// INT4 groups as GPTQ writes them (AutoGPTQ / GPTQModel, `quant_method: "gptq"`),
// spec/layouts.md §4.3: per projection module `X`, `X.qweight` I32 [in/8, out] (input row
// 8i+k at bits 4k of row i: compressed-tensors' words transposed), `X.qzeros` I32
// [in/group, out/8] (zero - 1 with `checkpoint_format: "gptq"`, as is with "gptq_v2"; packed
// along the output axis), `X.scales` F16 [in/group, out] and `X.g_idx` I32 [in]. The canonical
// weight and zero words are compressed-tensors' (transposed back), so the two share one
// canonical form but for the stored zero convention. Fused (no producer known; the harness's
// names): `experts.gate_up_proj_qweight`, `_qzeros`, `_scales`, `_g_idx`. With `desc_act`,
// `g_idx` is in activation order and w2's groups stay whole on every TP rank.
import { transposeLast, type QuantGeometry } from '../../layouts/ops.js';
import { ShapeMismatch } from '../../layouts/errors.js';
import { encodeFloats } from '../../safetensors/codecs.js';
import { QuantConfigError, ScaleMismatch } from '../errors.js';
import type { QuantFormat } from '../format.js';
import { dequantizeInt4, INT4_PER_WORD } from '../int4-math.js';
import { companion, gIdxOp, gridOp, packable, splitLayout } from '../stored.js';
import { actOrderGroups, count, randomBytes } from './random-bytes.js';

export interface Int4GptqScheme extends QuantGeometry {
  method: 'int4-gptq';
  group: number;
  symmetric: boolean;
  /** GPTQ v1 stores zero - 1 (AutoGPTQ's `zeros -= 1`); GPTQModel's v2 stores the zero. */
  zerosMinusOne: boolean;
  /** `desc_act`: `g_idx` in activation order, w2's groups whole on every TP rank (vLLM keeps them unsharded). */
  descAct: boolean;
}

export function int4GptqScheme(group: number, symmetric: boolean, zerosMinusOne = true, descAct = false): Int4GptqScheme {
  return {
    method: 'int4-gptq',
    group,
    symmetric,
    zerosMinusOne,
    descAct,
    packing: INT4_PER_WORD,
    scaleBlock: { rows: 1, cols: group },
    splitsBlocks: false,
    zeroRows: INT4_PER_WORD,
    ...(descAct ? { kScalesWhole: true } : {}),
  };
}

/** `X.weight` -> `X.<name>`; a fused `X` -> `X_<name>`. */
const gptqKey = (key: string, name: string) => (key.endsWith('.weight') ? `${key.slice(0, -'.weight'.length)}.${name}` : `${key}_${name}`);

export const INT4_GPTQ: QuantFormat<Int4GptqScheme> = {
  method: 'int4-gptq',
  title: 'INT4 groups (GPTQ)',
  stored: (s) => `GPTQ INT4 (I32 qweight/qzeros, F16 scales, g_idx), ${s.symmetric ? 'symmetric' : 'asymmetric'}, groups of ${s.group}`,
  companions: () => ['scale', 'zero', 'g_idx'],
  defaultScheme: int4GptqScheme(128, true),
  detect(q, file) {
    if (q.quant_method !== 'gptq') return undefined;
    const bad = (what: string, tensor: string, expected: unknown, found: unknown): never => {
      throw new QuantConfigError(`GPTQ: ${what}`, { file, tensor: `quantization_config.${tensor}`, expected, found });
    };
    if (q.bits !== 4) bad('4-bit only', 'bits', 4, q.bits);
    const gs = q.group_size;
    if (typeof gs !== 'number' || !Number.isSafeInteger(gs) || gs < INT4_PER_WORD || gs % INT4_PER_WORD !== 0) bad('group_size must be a positive multiple of 8 (per-channel -1 is not served)', 'group_size', 'a multiple of 8', gs);
    const fmt = q.checkpoint_format ?? 'gptq';
    if (fmt !== 'gptq' && fmt !== 'gptq_v2') bad('checkpoint_format', 'checkpoint_format', 'gptq|gptq_v2', fmt);
    return int4GptqScheme(gs as number, q.sym !== false, fmt === 'gptq', q.desc_act === true);
  },
  config: (s) => ({ quant_method: 'gptq', bits: 4, group_size: s.group, desc_act: s.descAct, sym: s.symmetric, checkpoint_format: s.zerosMinusOne ? 'gptq' : 'gptq_v2', true_sequential: true }),
  check(_modelType, dims, s, file) {
    for (const [what, n] of [['hidden', dims.hidden], ['intermediate', dims.intermediate]] as const) {
      if (n % s.group !== 0) throw new ShapeMismatch(`GPTQ groups of ${s.group} need the ${what} size in whole groups (vLLM refuses a partial group)`, { file, expected: `a multiple of ${s.group}`, found: n });
    }
  },
  layout(float, s) {
    const { experts, rest } = splitLayout(float, s);
    const tensors = experts.map((x) => packable(x, 'GPTQ', 'in')).flatMap((t) => [
      companion(t, gptqKey(t.spec.key, 'qweight'), transposeLast(t.spec.op)),
      companion(t, gptqKey(t.spec.key, 'qzeros'), transposeLast(gridOp(t.spec, { rows: INT4_PER_WORD, cols: s.group }, 'zero'))),
      companion(t, gptqKey(t.spec.key, 'scales'), transposeLast(gridOp(t.spec, s.scaleBlock))),
      companion(t, gptqKey(t.spec.key, 'g_idx'), gIdxOp(t)),
    ]);
    return { module: float.module, tensors: [...rest, ...tensors] };
  },
  dequantize(w, c, at, s) {
    for (const k of ['scale', 'zero', 'g_idx'] as const) {
      if (c[k] === undefined) throw new ScaleMismatch(`GPTQ weight without its ${k}`, { tensor: at.name, expected: `${at.name}_${k}`, found: 'absent' });
    }
    return dequantizeInt4(w, c.scale!, c.zero, s.group, at.name, { zeroOffset: s.zerosMinusOne ? 1 : 0, gIdx: { tensor: c.g_idx!, start: at.cut === 'cols' ? at.start : 0, ordered: !s.descAct } });
  },
  random(uniform, s, lead, parts, rows, cols) {
    const R = parts * rows;
    const words = [...lead, R, cols / INT4_PER_WORD];
    const grid = [...lead, R, cols / s.group];
    const zeros = [...lead, R / INT4_PER_WORD, cols / s.group];
    const scale = Float32Array.from({ length: count(grid) }, () => (0.1 / 8) * (0.5 + uniform()));
    // Stored zeros: symmetric 8 (v1: 7 in every nibble); otherwise 0..14 stored (v1 cannot store a zero of 0: stored 15 would mean 16).
    const nib = () => (s.symmetric ? 8 - (s.zerosMinusOne ? 1 : 0) : Math.floor(uniform() * 15) + (s.zerosMinusOne ? 0 : 1));
    const zw = new Uint32Array(count(zeros));
    for (let i = 0; i < zw.length; i++) for (let k = 0; k < INT4_PER_WORD; k++) zw[i] = (zw[i]! | (nib() << (4 * k))) >>> 0;
    const gIdx = s.descAct ? actOrderGroups(uniform, count(lead) * parts, cols, s.group) : Int32Array.from({ length: count(lead) * parts * cols }, (_, i) => Math.floor((i % cols) / s.group));
    return {
      weight: { dtype: 'I32', shape: words, bytes: randomBytes(uniform, count(words) * 4) },
      companions: {
        scale: { dtype: 'F16', shape: grid, bytes: encodeFloats('F16', scale) },
        zero: { dtype: 'I32', shape: zeros, bytes: new Uint8Array(zw.buffer) },
        g_idx: { dtype: 'I32', shape: parts === 2 ? [...lead, 2, cols] : [...lead, cols], bytes: new Uint8Array(gIdx.buffer) },
      },
    };
  },
};
