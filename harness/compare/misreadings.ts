// Known ways a loader misreads a quantized checkpoint and still serves plausible F32 weights,
// each as a function of one rank's quantized canonical (spec §4) to the dequantized form such
// a loader serves. The mutant catalogue serves them; the diagnosis recognises one by redoing
// it on the reference's quantized rank and finding the loader's bytes (./diagnose.ts).
import type { QuantGeometry } from '../layouts/ops.js';
import { dequantizeCanonical } from '../quant/dequantize.js';
import { schemeOf, type QuantScheme } from '../quant/scheme.js';
import { dtypeBits } from '../safetensors/dtypes.js';
import { encodeFloats, decodeFloats64 } from '../safetensors/codecs.js';
import type { Canonical, ParallelRequest, Tensor } from '../tensor.js';

export interface Misreading {
  /** The diagnosis kind that names it (harness/compare/diagnose.ts). */
  kind: 'group-size-mismatch' | 'global-scale-applied-twice';
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

function mapSuffix(c: Canonical, suffixes: readonly string[], f: (t: Tensor) => Tensor): Canonical {
  return new Map([...c].map(([k, t]) => [k, suffixes.some((x) => k.endsWith(x)) ? f(t) : t]));
}

export const MISREADINGS: readonly Misreading[] = [
  {
    kind: 'group-size-mismatch',
    what: (s) => `INT4 groups of ${groupOf(s)} dequantized as groups of ${ASSUMED_GROUP} (config.json's group_size ignored): column j takes the scale and zero of group floor(j / ${ASSUMED_GROUP})`,
    // Where the configured group divides the assumed one (32, 64), a wider group is read off the stored scales; act order names groups by g_idx instead.
    applies: (s) => s.method.startsWith('int4-') && !actOrder(s) && groupOf(s)! < ASSUMED_GROUP && ASSUMED_GROUP % groupOf(s)! === 0,
    serve: (c, s, req) => dequantizeCanonical(mapSuffix(c, ['experts.w13_scale', 'experts.w2_scale', 'experts.w13_zero', 'experts.w2_zero'], (t) => regroup(t, groupOf(s)!, ASSUMED_GROUP)), s, req),
  },
  {
    kind: 'global-scale-applied-twice',
    what: () => 'NVFP4 weights dequantized with weight_scale_2 applied twice (once in the block-scale product, once more as the GEMM\'s alpha)',
    applies: (s) => s.method === 'nvfp4',
    serve: (c, s, req) =>
      dequantizeCanonical(mapSuffix(c, ['experts.w13_scale_2', 'experts.w2_scale_2'], (t) => ({ ...t, bytes: encodeFloats('F32', decodeFloats64('F32', t.bytes).map((v) => Math.fround(v * v))) })), s, req),
  },
];

/** The misreading whose output `found` (an F32 routed-expert weight of a dequantized rank) is, given the reference rank's quantized canonical. */
export function misreadingOf(name: string, found: Tensor, stored: Canonical, geometry: QuantGeometry, req: ParallelRequest): Misreading | undefined {
  const scheme = schemeOf(geometry)!;
  return MISREADINGS.find((m) => {
    if (!m.applies(scheme)) return false;
    const t = m.serve(stored, scheme, req).get(name);
    return t !== undefined && t.dtype === found.dtype && t.bytes.length === found.bytes.length && t.bytes.every((b, i) => b === found.bytes[i]);
  });
}
