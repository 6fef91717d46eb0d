// One rank's quantized canonical tensors (spec §4) turned into the float canonical form of
// §1: the routed experts' `w13`/`w2` dequantized to F32 by their format with their companion
// tensors, the companions dropped, everything else passed through. This is what the forward
// runs on, and what a loader declaring the dequantized form must equal bit for bit.
import type { Canonical, ParallelRequest, Tensor } from '../tensor.js';
import type { QuantGeometry } from '../layouts/ops.js';
import { companionName, QUANTIZED_WEIGHTS, splitCompanion, type Companions } from './format.js';
import { formatOf } from './formats/index.js';
import { schemeOf } from './scheme.js';
import { ScaleMismatch } from './errors.js';

/** The quantized weight `name` is under this scheme: the routed experts', and the shared experts' where it quantizes them. */
const quantizedWeight = (name: string, g: QuantGeometry) => QUANTIZED_WEIGHTS.find((k) => name.endsWith(k.suffix) && (k.lead === 1 || g.sharedQuantized === true));
const holdsCompanions = (c: Canonical) => [...c.keys()].some((n) => splitCompanion(n) !== undefined);

/** The dequantized canonical of one rank; a weight without a companion its format needs, or a companion without its weight or not of its format, is refused. */
export function dequantizeCanonical(tensors: Canonical, scheme0: QuantGeometry, req: ParallelRequest): Canonical {
  // The config's scheme does not say whether the shared experts are quantized (the stored tensors do): their companions here do.
  const geometry = scheme0.sharedQuantized || ![...tensors.keys()].some((n) => splitCompanion(n)?.weight.endsWith('.shared.w13')) ? scheme0 : { ...scheme0, sharedQuantized: true };
  const scheme = schemeOf(geometry)!;
  const format = formatOf(scheme);
  const wanted = format.companions(scheme);
  const out: Canonical = new Map();
  const used = new Set<string>();
  for (const [name, w] of tensors) {
    const q = quantizedWeight(name, geometry);
    if (q === undefined) continue;
    const companions: Companions = {};
    for (const c of wanted) {
      const t = tensors.get(companionName(name, c));
      if (t === undefined) throw new ScaleMismatch(`quantized weight without its ${c} tensor`, { tensor: name, expected: companionName(name, c), found: 'absent' });
      companions[c] = t;
      used.add(companionName(name, c));
    }
    // The rank's first row (w13, per half) or column (w2) along I, in elements.
    const [rowPack, colPack] = scheme.packRows ? [scheme.packing, 1] : [1, scheme.packing];
    const local = q.cut === 'rows' ? ((w.shape[q.lead] ?? 0) / 2) * rowPack : w.shape.slice(q.lead + 1).reduce((a, b) => a * b, 1) * colPack;
    out.set(name, format.dequantize(w, companions, { name, parts: q.parts, cut: q.cut, start: req.tpRank * local }, scheme));
  }
  for (const [name, t] of tensors) {
    if (out.has(name) || used.has(name)) continue;
    const c = splitCompanion(name);
    if (c !== undefined) {
      const why = tensors.has(c.weight) ? `not a companion of ${scheme.method} weights` : 'without its weight';
      throw new ScaleMismatch(`${c.companion} tensor ${why}`, { tensor: name, expected: tensors.has(c.weight) ? wanted.map((x) => companionName(c.weight, x)).join(', ') : c.weight, found: name });
    }
    out.set(name, t);
  }
  return out;
}

/**
 * Ranks as the float forward needs them. With a scheme, a rank holding companion tensors is
 * dequantized; a rank without any is already in the dequantized form (F32 weights, as a
 * loader declaring it writes), and anything else there is refused. Without a scheme, ranks
 * pass unchanged. Applying it twice is the same as once.
 */
export function dequantizeRanks<R extends { req: ParallelRequest; tensors: Canonical }>(scheme: QuantGeometry | undefined, ranks: R[]): R[] {
  if (scheme === undefined) return ranks;
  return ranks.map((r) => {
    if (holdsCompanions(r.tensors)) return { ...r, tensors: dequantizeCanonical(r.tensors, scheme, r.req) };
    for (const [name, t] of r.tensors) {
      if (quantizedWeight(name, scheme) && t.dtype !== 'F32') {
        throw new ScaleMismatch('quantized weight without its scale tensor (a dequantized rank holds F32 weights)', { tensor: name, expected: `F32, or ${companionName(name, 'scale')}`, found: t.dtype });
      }
    }
    return r;
  });
}

/**
 * The reference's tensors in the form a loader's output is in: dequantized where the output
 * holds F32 expert weights and no companion tensor (the dequantized form, spec §4), as they
 * are otherwise. Either way the comparison stays bit for bit.
 */
export function inFormOf(reference: Canonical, found: Canonical, scheme: QuantGeometry | undefined, req: ParallelRequest): Canonical {
  if (scheme === undefined) return reference;
  const dequantized = !holdsCompanions(found) && [...found].some(([n, t]) => quantizedWeight(n, scheme) && t.dtype === 'F32');
  return dequantized ? dequantizeCanonical(reference, scheme, req) : reference;
}
