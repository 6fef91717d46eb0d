// How far a float32 MoE forward may legitimately be from the exact (float64) one, and the
// pass / warn / fail verdict with a mismatch report.
//
// The strict tier is a rounding-error bound, not a guess: every K-term dot product computed
// in float32 (any order, FMA or not) is within γ_K · Σ|terms| of the exact one, with
// γ_K = K·u / (1 − K·u) and u = 2^-24. The reference forward (kernels/moe.ts) carries these
// bounds element by element through the router, the gate/up products, the activation, the
// down product and the combine, from the actual magnitudes; the functions below are that
// error model. The loose tier is the same bound LOOSE_FACTOR times wider: what a backend
// that keeps 8 fewer significant bits somewhere (a bf16 accumulator, a fast-math exp) could
// reach, still far below what a wrong weight does.
import type { ExpertActivation } from '../layouts/semantics.js';

/** float32 unit roundoff. */
export const U32 = 2 ** -24;
/** The loose tier is this many times the strict bound. */
export const LOOSE_FACTOR = 256;

/** γ_K for float32: the relative error bound of a K-term sum or dot product. */
export function gamma(k: number): number {
  const ku = k * U32;
  return ku < 1 ? ku / (1 - ku) : Infinity;
}

/**
 * Relative error of a routing weight computed in float32 from logits that are each off by
 * at most `logitError`: softmax and sigmoid move by at most 2δ relatively, a
 * renormalisation (or p-norm) by as much again; the rest is a few roundings of exp,
 * division and scaling.
 */
export function routingWeightRelError(logitError: number): number {
  return 4 * logitError + 16 * U32;
}

/** Relative error of σ(z) computed in float32 when z is off by `zError`. */
export function sigmoidRelError(zError: number): number {
  return zError + 4 * U32;
}

/**
 * Error of the activation a = act(g, u) in float32 when g and u are off by at most eg, eu.
 * |d silu(g)/dg| ≤ 1.1, and |d (g·σ(αg))/dg| = σ(αg) + αg·σ(αg)(1 − σ(αg)) ≤ 1.1 for any α
 * (both peak near 1.0998); the
 * clamps of gpt_oss only shrink errors. Plus a few roundings of the result.
 */
export function activationError(act: ExpertActivation, g: number, u: number, eg: number, eu: number): number {
  if (act.kind === 'silu_gated') {
    const silu = g / (1 + Math.exp(-g));
    return 1.1 * eg * Math.abs(u) + Math.abs(silu) * eu + eg * eu + 4 * U32 * Math.abs(silu * u);
  }
  const gc = Math.min(g, act.limit);
  const uc = Math.min(Math.max(u, -act.limit), act.limit);
  const glu = gc / (1 + Math.exp(-act.alpha * gc));
  return 1.1 * eg * Math.abs(uc + 1) + Math.abs(glu) * eu + eg * eu + 6 * U32 * Math.abs(glu * (uc + 1));
}
