// Seeded random whole quantized canonical weights (TP 1, EP 1): the float canonical of
// canonical/random.ts in BF16 (router, biases, shared experts), with the routed expert
// projections (and the shared expert's, where the scheme quantizes it) replaced by their format's random quantized elements and companions
// (./formats/), drawn directly so that every bit pattern a checkpoint may hold can occur.
import type { MoeDims } from '../layouts/registry.js';
import { canonicalName } from '../canonical/canonical.js';
import { randomCanonical, xoshiro128ss } from '../canonical/random.js';
import type { Canonical } from '../tensor.js';
import { companionName } from './format.js';
import { formatOf, type QuantScheme } from './formats/index.js';

/** Whole quantized canonical weights of every MoE layer of `dims`. */
export function randomQuantizedCanonical(dims: MoeDims, scheme: QuantScheme, seed: number): Canonical {
  const out = randomCanonical(dims, 'BF16', seed);
  const uniform = xoshiro128ss(seed ^ 0x5eed);
  const format = formatOf(scheme);
  const { experts: E, hidden: H, intermediate: I } = dims;
  const Is = dims.features.sharedExpert && scheme.sharedQuantized ? dims.sharedIntermediate : 0;
  for (const layer of dims.moeLayers) {
    const weights = [['experts.w13', [E], 2, I, H], ['experts.w2', [E], 1, H, I], ...(Is > 0 ? ([['shared.w13', [], 2, Is, H], ['shared.w2', [], 1, H, Is]] as const) : [])] as const;
    for (const [what, lead, parts, rows, cols] of weights) {
      const name = canonicalName(layer, what);
      const { weight, companions } = format.random(uniform, scheme, [...lead], parts, rows, cols, name);
      out.set(name, weight);
      for (const c of format.companions(scheme)) out.set(companionName(name, c), companions[c]!);
    }
  }
  return out;
}
