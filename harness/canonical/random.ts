// Seeded random whole canonical weights for a model type: deterministic from the seed,
// values drawn from N(0, 0.1^2) (vectors N(0, 0.05^2), like the golden fixtures) and
// rounded to nearest even in the dtype, so biases, correction biases and shared gates
// are all non-zero. xoshiro128** seeded through splitmix32: small, fast and portable.
import type { MoeDims } from '../layouts/registry.js';
import { canonicalName, floatSpecs, elementCount, expertIds } from './canonical.js';
import { encodeFloats } from '../safetensors/codecs.js';
import type { DType } from '../safetensors/dtypes.js';
import { WHOLE, type Canonical } from '../tensor.js';

/** A uniform generator on [0, 1) from a 32-bit seed. */
export function xoshiro128ss(seed: number): () => number {
  let z = seed >>> 0;
  const splitmix = () => {
    z = (z + 0x9e3779b9) >>> 0;
    let x = z;
    x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
    x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
    return (x ^ (x >>> 16)) >>> 0;
  };
  const s = [splitmix(), splitmix(), splitmix(), splitmix()];
  return () => {
    const [s0, s1, s2, s3] = s as [number, number, number, number];
    const result = Math.imul(rotl(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    s[2] = (s2 ^ s0) >>> 0;
    s[3] = (s3 ^ s1) >>> 0;
    s[1] = (s1 ^ s[2]!) >>> 0;
    s[0] = (s0 ^ s[3]!) >>> 0;
    s[2] = (s[2]! ^ t) >>> 0;
    s[3] = rotl(s[3]!, 11);
    return result / 2 ** 32;
  };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Normal draws by Box-Muller from a uniform generator. */
export function normals(uniform: () => number, count: number, std: number): Float64Array {
  const out = new Float64Array(count);
  for (let i = 0; i < count; i += 2) {
    const u = 1 - uniform(); // (0, 1]: log is finite
    const v = uniform();
    const r = std * Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < count) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

/** Whole canonical weights (TP 1, EP 1) of every MoE layer of `dims`, in `dtype`. */
export function randomCanonical(dims: MoeDims, dtype: DType, seed: number): Canonical {
  const uniform = xoshiro128ss(seed);
  const out: Canonical = new Map();
  for (const layer of dims.moeLayers) {
    const ids = expertIds(dims, WHOLE);
    out.set(canonicalName(layer, 'experts.ids'), { dtype: 'I32', shape: [ids.length], bytes: new Uint8Array(new Int32Array(ids).buffer) });
    for (const spec of floatSpecs(layer, dims, WHOLE)) {
      if (spec.name.endsWith('.router.tid2eid')) {
        out.set(spec.name, { dtype: 'I64', shape: spec.shape, bytes: randomExpertTable(uniform, spec.shape[0]!, spec.shape[1]!, dims.experts) });
        continue;
      }
      const std = spec.shape.length === 1 || spec.name.endsWith('_bias') ? 0.05 : 0.1;
      // A bias the model keeps in float32 stays F32 in a 16-bit checkpoint (transformers saves it so).
      const t = dims.features.correctionBiasF32 && spec.name.endsWith('.router.correction_bias') ? 'F32' : dtype;
      out.set(spec.name, { dtype: t, shape: spec.shape, bytes: encodeFloats(t, normals(uniform, elementCount(spec.shape), std)) });
    }
  }
  return out;
}

/**
 * A hash layer's `tid2eid` `[vocab, k]` as transformers stores it (I64): each row k distinct
 * expert ids below `experts`, drawn by a partial Fisher-Yates shuffle.
 */
export function randomExpertTable(uniform: () => number, vocab: number, k: number, experts: number): Uint8Array {
  const out = new BigInt64Array(vocab * k);
  const ids = Array.from({ length: experts }, (_, e) => e);
  for (let v = 0; v < vocab; v++) {
    for (let j = 0; j < k; j++) {
      const pick = j + Math.floor(uniform() * (experts - j));
      [ids[j], ids[pick]] = [ids[pick]!, ids[j]!];
      out[v * k + j] = BigInt(ids[j]!);
    }
  }
  return new Uint8Array(out.buffer);
}
