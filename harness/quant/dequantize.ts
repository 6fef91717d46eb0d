// One rank's quantized canonical tensors (spec §4) turned into the float canonical form of
// §1: the routed experts' `w13`/`w2` dequantized to F32 with their scales, the scale tensors
// dropped, everything else passed through. This is what the forward runs on, and what a
// loader declaring the dequantized form must equal bit for bit.
import type { Canonical, ParallelRequest, Tensor } from '../tensor.js';
import { dequantizeFp8 } from './fp8-block.js';
import { dequantizeMxfp4 } from './mxfp4.js';
import type { QuantGeometry } from '../layouts/ops.js';
import { schemeOf } from './scheme.js';
import { ScaleMismatch } from './errors.js';

/** Canonical weight names that carry a `_scale` sibling, and which of their axes TP cuts (routed experts only: quantized shared experts are not supported yet). */
const QUANTIZED = [
  { suffix: '.experts.w13', cut: 'rows' },
  { suffix: '.experts.w2', cut: 'cols' },
] as const;

const scaleName = (name: string) => `${name}_scale`;

function dequantizeOne(name: string, w: Tensor, s: Tensor, cut: 'rows' | 'cols', geometry: QuantGeometry, req: ParallelRequest): Tensor {
  const scheme = schemeOf(geometry)!;
  if (scheme.method === 'mxfp4') return dequantizeMxfp4(w, s, name);
  const { block } = scheme;
  // Rows of the rank's slice per half (w13: 2 * Ir rows) or its columns (w2: Ir columns).
  const local = cut === 'rows' ? (w.shape[w.shape.length - 2] ?? 0) / 2 : (w.shape[w.shape.length - 1] ?? 0);
  const start = req.tpRank * local;
  return cut === 'rows'
    ? dequantizeFp8(w, s, { block, parts: 2, rowOrigin: start % block.rows, colOrigin: 0, name })
    : dequantizeFp8(w, s, { block, parts: 1, rowOrigin: 0, colOrigin: start % block.cols, name });
}

/** The dequantized canonical of one rank; a weight without its scale, or a scale without its weight, is refused. */
export function dequantizeCanonical(tensors: Canonical, scheme: QuantGeometry, req: ParallelRequest): Canonical {
  const out: Canonical = new Map();
  const used = new Set<string>();
  for (const [name, t] of tensors) {
    const q = QUANTIZED.find((k) => name.endsWith(k.suffix));
    if (q === undefined) continue;
    const s = tensors.get(scaleName(name));
    if (s === undefined) throw new ScaleMismatch('quantized weight without its scale tensor', { tensor: name, expected: scaleName(name), found: 'absent' });
    out.set(name, dequantizeOne(name, t, s, q.cut, scheme, req));
    used.add(scaleName(name));
  }
  for (const [name, t] of tensors) {
    if (out.has(name) || used.has(name)) continue;
    if (name.endsWith('_scale')) throw new ScaleMismatch('scale tensor without its weight', { tensor: name, expected: name.slice(0, -'_scale'.length), found: 'absent' });
    out.set(name, t);
  }
  return out;
}

/**
 * Ranks as the float forward needs them. With a scheme, a rank holding scale tensors is
 * dequantized; a rank without any is already in the dequantized form (F32 weights, as a
 * loader declaring it writes), and anything else there is refused. Without a scheme, ranks
 * pass unchanged. Applying it twice is the same as once.
 */
export function dequantizeRanks<R extends { req: ParallelRequest; tensors: Canonical }>(scheme: QuantGeometry | undefined, ranks: R[]): R[] {
  if (scheme === undefined) return ranks;
  return ranks.map((r) => {
    if ([...r.tensors.keys()].some((n) => n.endsWith('_scale'))) return { ...r, tensors: dequantizeCanonical(r.tensors, scheme, r.req) };
    for (const [name, t] of r.tensors) {
      if (QUANTIZED.some((k) => name.endsWith(k.suffix)) && t.dtype !== 'F32') {
        throw new ScaleMismatch('quantized weight without its scale tensor (a dequantized rank holds F32 weights)', { tensor: name, expected: `F32, or ${scaleName(name)}`, found: t.dtype });
      }
    }
    return r;
  });
}

/**
 * The reference's tensors in the form a loader's output is in: dequantized where the output
 * holds F32 expert weights and no scale tensor (the dequantized form, spec §4), as they are
 * otherwise. Either way the comparison stays bit for bit.
 */
export function inFormOf(reference: Canonical, found: Canonical, scheme: QuantGeometry | undefined, req: ParallelRequest): Canonical {
  if (scheme === undefined) return reference;
  const names = [...found.keys()];
  const dequantized = !names.some((n) => n.endsWith('_scale')) && names.some((n) => QUANTIZED.some((k) => n.endsWith(k.suffix)) && found.get(n)!.dtype === 'F32');
  return dequantized ? dequantizeCanonical(reference, scheme, req) : reference;
}
