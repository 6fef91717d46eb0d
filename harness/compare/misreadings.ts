// Known ways a loader misreads a quantized checkpoint and still serves plausible F32 weights,
// each as a function of one rank's quantized canonical (spec §4) to the dequantized form such
// a loader serves. The mutant catalogue serves them; the diagnosis recognises one by redoing
// it on the reference's quantized rank and finding the loader's bytes (./diagnose.ts).
import type { QuantGeometry } from '../layouts/ops.js';
import { dequantizeCanonical } from '../quant/dequantize.js';
import { schemeOf, type QuantScheme } from '../quant/scheme.js';
import { decodeFloats64, encodeFloats } from '../safetensors/codecs.js';
import { dtypeBits } from '../safetensors/dtypes.js';
import { rankName, type Canonical, type ParallelRequest, type Tensor } from '../tensor.js';
import { isScalePair } from './scale-pairs.js';
import { int4CtScheme } from '../quant/formats/int4-ct.js';

export interface Misreading {
  /** A stable name of the misreading (the mutant catalogue's name for the loader that makes it). */
  id: string;
  /** The diagnosis kind that names it (harness/compare/diagnose.ts). */
  kind: 'group-size-mismatch' | 'global-scale-applied-twice' | 'dequantized-differently' | 'zero-point-off-by-one' | 'group-index-misapplied' | 'gate-up-swapped' | 'gate-up-scales-merged';
  what: (s: QuantScheme) => string;
  applies: (s: QuantScheme) => boolean;
  /** The F32 rank such a loader serves, from the rank's quantized canonical. */
  serve: (c: Canonical, s: QuantScheme, req: ParallelRequest) => Canonical;
}

/** The group size a loader that ignores config.json's `group_size` assumes (llm-compressor's, AutoAWQ's and GPTQ's default). */
export const ASSUMED_GROUP = 128;

const groupOf = (s: QuantScheme): number | undefined => ('group' in s ? s.group : undefined);
const actOrder = (s: QuantScheme) => (s.method === 'int4-ct' && s.actorder) || (s.method === 'int4-gptq' && s.descAct);

/** Each group column g of the last axis replaced by column floor(g * group / assumed): every input column j then takes the scale (zero) of group floor(j / assumed). */
function regroup(t: Tensor, group: number, assumed: number): Tensor {
  const G = t.shape[t.shape.length - 1]!;
  const e = dtypeBits(t.dtype) / 8;
  const out = new Uint8Array(t.bytes.length);
  for (let row = 0; row < t.bytes.length / (G * e); row++) {
    for (let g = 0; g < G; g++) {
      const from = Math.floor((g * group) / assumed);
      out.set(t.bytes.subarray((row * G + from) * e, (row * G + from + 1) * e), (row * G + g) * e);
    }
  }
  return { ...t, bytes: out };
}

function mapSuffix(c: Canonical, suffixes: readonly string[], f: (t: Tensor, name: string) => Tensor): Canonical {
  return new Map([...c].map(([k, t]) => [k, suffixes.some((x) => k.endsWith(x)) ? f(t, k) : t]));
}

const gptqV1 = (s: QuantScheme) => s.method === 'int4-gptq' && s.zerosMinusOne;

/** Gate's and up's per-projection scales that may differ: per-tensor static FP8's `weight_scale`, NVFP4's `weight_scale_2` (per projection). */
const pairedScales = (s: QuantScheme) => (s.method === 'fp8-static' && s.strategy === 'tensor' && s.globalScale === undefined) || (s.method === 'nvfp4' && s.globalScale === undefined);
const pairSuffix = (s: QuantScheme) => (s.method === 'nvfp4' ? '.w13_scale_2' : '.w13_scale');

/** Every [gate, up] pair of the F32 `<...>.w13_scale(_2)` tensors (routed and shared) rewritten by `f`. */
export function mapPairs(c: Canonical, suffix: string, f: (gate: number, up: number) => [number, number]): Canonical {
  return mapSuffix(c, [`experts${suffix}`, `shared${suffix}`], (t) => {
    const v = new Float32Array(t.bytes.slice().buffer);
    for (let i = 0; i + 1 < v.length; i += 2) [v[i], v[i + 1]] = f(v[i]!, v[i + 1]!);
    return { ...t, bytes: new Uint8Array(v.buffer) };
  });
}

/**
 * (A mutant's and the tests' loader: the diagnosis recognises its output by a relation that
 * allows any rounding, ./scale-pairs.ts, rather than by redoing this one rounding.)
 * Per-tensor FP8 `w13` with gate and up requantized to the larger of their two scales (vLLM's
 * "Fp8 moe kernel needs single weight scale for w13 per expert. We take the max then dequant and
 * requant each expert"): each code q of a half with scale s becomes E4M3(q * s / max), and both
 * entries of `w13_scale` the maximum. Quantized form in, quantized form out.
 */
export function requantizedToMaxScale(c: Canonical): Canonical {
  const out = new Map(c);
  for (const [k, scale] of c) {
    if (!k.endsWith('.w13_scale') || !isScalePair(k, scale)) continue;
    const wName = k.slice(0, -'_scale'.length);
    const w = c.get(wName);
    const s = new Float32Array(scale.bytes.slice().buffer);
    if (w?.dtype !== 'F8_E4M3') continue;
    const q = decodeFloats64('F8_E4M3', w.bytes);
    const half = q.length / s.length;
    for (let p = 0; p < s.length; p += 2) {
      const max = Math.max(s[p]!, s[p + 1]!);
      for (const h of [p, p + 1]) {
        for (let i = h * half; i < (h + 1) * half; i++) q[i] = (q[i]! * s[h]!) / max;
        s[h] = max;
      }
    }
    out.set(wName, { ...w, bytes: encodeFloats('F8_E4M3', q) });
    out.set(k, { ...scale, bytes: new Uint8Array(s.buffer) });
  }
  return out;
}

/** A [..., 2, n] tensor (gate's, up's) with half `h` in both. */
function oneHalfForBoth(t: Tensor, h: 0 | 1): Tensor {
  const half = t.bytes.length / (t.shape.slice(0, -1).reduce((a, b) => a * b, 1) / 2) / 2;
  const out = t.bytes.slice();
  for (let at = 0; at < out.length; at += 2 * half) out.copyWithin(at + (1 - h) * half, at + h * half, at + (h + 1) * half);
  return { ...t, bytes: out };
}

/** Every `_g_idx` rewritten to column order (w2's as the rank's global columns): what a loader that drops g_idx uses. */
export function gIdxInColumnOrder(c: Canonical, group: number, req: ParallelRequest): Canonical {
  return mapSuffix(c, ['_g_idx'], (t, name) => {
    const cols = t.shape[t.shape.length - 1]!;
    // The rank's w2 columns are global columns r*cols .. (r+1)*cols; w13's columns (H) are whole.
    const start = name.endsWith('w2_g_idx') ? req.tpRank * cols : 0;
    const g = Int32Array.from({ length: t.bytes.length / 4 }, (_, k) => Math.floor((start + (k % cols)) / group));
    return { ...t, bytes: new Uint8Array(g.buffer) };
  });
}

export const MISREADINGS: readonly Misreading[] = [
  {
    id: 'int4-group-size-assumed-128',
    kind: 'group-size-mismatch',
    what: (s) => `INT4 groups of ${groupOf(s)} dequantized as groups of ${ASSUMED_GROUP} (config.json's group_size ignored): column j takes the scale and zero of group floor(j / ${ASSUMED_GROUP})`,
    // Where the configured group divides the assumed one (32, 64), a wider group is read off the stored scales; act order names groups by g_idx instead.
    applies: (s) => s.method.startsWith('int4-') && !actOrder(s) && groupOf(s)! < ASSUMED_GROUP && ASSUMED_GROUP % groupOf(s)! === 0,
    serve: (c, s, req) => dequantizeCanonical(mapSuffix(c, ['experts.w13_scale', 'experts.w2_scale', 'experts.w13_zero', 'experts.w2_zero'], (t) => regroup(t, groupOf(s)!, ASSUMED_GROUP)), s, req),
  },
  {
    id: 'nvfp4-scale-2-applied-twice',
    kind: 'global-scale-applied-twice',
    what: () => 'NVFP4 weights dequantized with weight_scale_2 applied twice (once in the block-scale product, once more as the GEMM\'s alpha)',
    applies: (s) => s.method === 'nvfp4',
    serve: (c, s, req) =>
      dequantizeCanonical(mapSuffix(c, ['experts.w13_scale_2', 'experts.w2_scale_2'], (t) => ({ ...t, bytes: encodeFloats('F32', decodeFloats64('F32', t.bytes).map((v) => Math.fround(v * v))) })), s, req),
  },
  {
    id: 'int4-zero-point-ignored',
    kind: 'dequantized-differently',
    what: () => 'asymmetric INT4 dequantized as if symmetric: the zero points (weight_zero_point) ignored, zero 8 for every group',
    applies: (s) => s.method === 'int4-ct' && !s.symmetric,
    serve: (c, s, req) => dequantizeCanonical(new Map([...c].filter(([k]) => !k.endsWith('_zero'))), s.method === 'int4-ct' ? int4CtScheme(s.group, true, s.actorder) : s, req),
  },
  {
    id: 'gptq-zero-convention-confused',
    kind: 'zero-point-off-by-one',
    what: (s) =>
      gptqV1(s)
        ? 'GPTQ v1 zeros (checkpoint_format "gptq": stored z - 1) read as v2 (as stored): every weight one scale step above the format\'s, (q - z + 1) * s'
        : 'GPTQ v2 zeros (checkpoint_format "gptq_v2": stored z) read as v1 (stored + 1): every weight one scale step below the format\'s, (q - z - 1) * s',
    applies: (s) => s.method === 'int4-gptq',
    serve: (c, s, req) => dequantizeCanonical(c, { ...s, zerosMinusOne: !gptqV1(s) } as QuantScheme, req),
  },
  {
    id: 'int4-g-idx-ignored',
    kind: 'group-index-misapplied',
    what: (s) => `activation-order g_idx ignored: column j dequantized with the scale and zero of group floor(j / ${groupOf(s)}) (consecutive columns), not of group g_idx[j]`,
    applies: (s) => actOrder(s),
    serve: (c, s, req) => dequantizeCanonical(gIdxInColumnOrder(c, groupOf(s)!, req), s, req),
  },
  // vLLM's fused MoE keeps one w13_g_idx per expert: the projection loaded last (up) gives gate's columns their groups too.
  ...(['gate', 'up'] as const).map(
    (how): Misreading => ({
      id: `${how}-g-idx-for-both`,
      kind: 'group-index-misapplied',
      what: () => `${how}'s activation-order g_idx used for ${how === 'gate' ? 'up' : 'gate'} too (one w13 g_idx per expert): the ${how === 'gate' ? 'up' : 'gate'} rows' columns dequantized with ${how}'s groups`,
      applies: (s) => actOrder(s),
      serve: (c, s, req) => dequantizeCanonical(mapSuffix(c, ['.w13_g_idx'], (t) => oneHalfForBoth(t, how === 'gate' ? 0 : 1)), s, req),
    }),
  ),
  // The maximum without the codes requantized to it: where gate's (up's) is the larger in every expert, the same values as gate's (up's) for both.
  ...(['swapped', 'gate', 'up', 'max'] as const).map(
    (how): Misreading => ({
      id: how === 'swapped' ? 'gate-up-scales-swapped' : how === 'max' ? 'max-scale-for-both' : `${how}-scale-for-both`,
      kind: how === 'swapped' ? 'gate-up-swapped' : 'gate-up-scales-merged',
      what: (s) => {
        const which = s.method === 'nvfp4' ? 'weight_scale_2' : 'weight_scale';
        if (how === 'swapped') return `gate's and up's ${which} swapped: each half dequantized with the other's`;
        if (how === 'max') return `max(gate, up) of the ${which} in both entries, the codes not requantized to it: the rows of the smaller one's half dequantized with the larger scale`;
        return `${how}'s ${which} used for ${how === 'gate' ? 'up' : 'gate'} too: the ${how === 'gate' ? 'up' : 'gate'} rows dequantized with ${how}'s scale`;
      },
      applies: pairedScales,
      serve: (c, s, req) => dequantizeCanonical(mapPairs(c, pairSuffix(s), (g, u) => (how === 'swapped' ? [u, g] : how === 'gate' ? [g, g] : how === 'up' ? [u, u] : [Math.max(g, u), Math.max(g, u)])), s, req),
    }),
  ),
];

/** The F32 ranks the misreadings served from one stored rank, by misreading and request (held while the stored rank is). */
const served = new WeakMap<Canonical, Map<string, Canonical>>();

/**
 * The misreadings whose output `found` (an F32 routed-expert weight of a dequantized rank) is,
 * given the reference rank's quantized canonical: usually one; more where they give the same
 * values here (the diagnosis then names each).
 */
export function misreadingsOf(name: string, found: Tensor, stored: Canonical, geometry: QuantGeometry, req: ParallelRequest): Misreading[] {
  const scheme = schemeOf(geometry)!;
  // Each misreading dequantizes the whole rank once: every differing tensor of the rank (w13, w2, the shared expert's) reads it.
  const cache = served.get(stored) ?? new Map<string, Canonical>();
  served.set(stored, cache);
  return MISREADINGS.filter((m) => {
    if (!m.applies(scheme)) return false;
    const key = `${m.id} ${rankName(req)}`;
    const rank = cache.get(key) ?? m.serve(stored, scheme, req);
    cache.set(key, rank);
    const t = rank.get(name);
    return t !== undefined && t.dtype === found.dtype && t.bytes.length === found.bytes.length && t.bytes.every((b, i) => b === found.bytes[i]);
  });
}
