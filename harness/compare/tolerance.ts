// How far a float32 MoE forward may legitimately be from the exact (float64) one, and the
// pass / warn / fail verdict with a mismatch report.
//
// The strict tier is a rounding-error bound, not a guess: every K-term dot product computed
// in float32 (any order, FMA or not) is within γ_K · Σ|terms| of the exact one, with
// γ_K = K·u / (1 − K·u) and u = 2^-24. The reference forward (kernels/moe.ts) carries these
// bounds element by element through the router, the gate/up products, the activation, the
// down product and the combine, from the actual magnitudes; the functions below are that
// error model. The loose tier adds LOOSE_RELATIVE (bf16 level) of the magnitude Σ|terms|
// of each element: what a backend that rounds to bf16 somewhere (an accumulator, a cast of
// the activations) could reach, still far below what a wrong weight or a doubled bias does.
import type { ExpertActivation } from '../layouts/semantics.js';

/** float32 unit roundoff. */
export const U32 = 2 ** -24;
/** The loose tier: the strict bound plus this much of the magnitude Σ|terms| (bf16's 2^-8 unit). */
export const LOOSE_RELATIVE = 2 ** -8;

/** The loose bound of one element from its strict bound and the magnitude of its terms. */
export function looseBound(strict: number, magnitude: number): number {
  return strict + LOOSE_RELATIVE * magnitude;
}

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
 * Error of the activation a = act(g, u) in float32 when g and u are off by at most eg, eu:
 * |Δ(s(g)·u)| ≤ |s(g + eg) − s(g)|·(|u| + eu) + |s(g)|·eu, with s's slope bounded below.
 * |d silu(g)/dg| ≤ 1.1, and |d (g·σ(αg))/dg| = σ(αg) + αg·σ(αg)(1 − σ(αg)) ≤ 1.1 for any α
 * (both peak near 1.0998); the
 * clamps of gpt_oss only shrink errors. Plus a few roundings of the result.
 */
export function activationError(act: ExpertActivation, g: number, u: number, eg: number, eu: number): number {
  if (act.kind === 'silu_gated') {
    const silu = g / (1 + Math.exp(-g));
    return 1.1 * eg * (Math.abs(u) + eu) + Math.abs(silu) * eu + 4 * U32 * Math.abs(silu * u);
  }
  if (act.kind === 'silu_clamped') {
    // Clamping is 1-Lipschitz: SiLU-gated's bound on the clamped values.
    const gc = Math.min(g, act.limit);
    const uc = Math.min(Math.max(u, -act.limit), act.limit);
    const silu = gc / (1 + Math.exp(-gc));
    return 1.1 * eg * (Math.abs(uc) + eu) + Math.abs(silu) * eu + 4 * U32 * Math.abs(silu * uc);
  }
  if (act.kind === 'silu_clamped_after') {
    // min(silu(g), limit) is as Lipschitz as silu, the clamp of u 1-Lipschitz.
    const s = Math.min(g / (1 + Math.exp(-g)), act.limit);
    const uc = Math.min(Math.max(u, -act.limit), act.limit);
    return 1.1 * eg * (Math.abs(uc) + eu) + Math.abs(s) * eu + 4 * U32 * Math.abs(s * uc);
  }
  if (act.kind === 'gelu_tanh_gated') {
    // |d gelu_tanh(g)/dg| ≤ 1.13 (its peak near g = 1.5); tanh and the cube add a few roundings.
    const gelu = 0.5 * g * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (g + 0.044715 * g * g * g)));
    return 1.13 * eg * (Math.abs(u) + eu) + Math.abs(gelu) * eu + 10 * U32 * (Math.abs(g * u) + Math.abs(gelu * u));
  }
  if (act.kind === 'silu') {
    const silu = u / (1 + Math.exp(-u));
    return 1.1 * eu + 4 * U32 * Math.abs(silu);
  }
  if (act.kind === 'relu2') {
    // relu is 1-Lipschitz; (|u| + eu)² - u² bounds the square's error, plus its own rounding.
    const r = Math.max(u, 0);
    return eu * (2 * r + eu) + 2 * U32 * r * r;
  }
  const gc = Math.min(g, act.limit);
  const uc = Math.min(Math.max(u, -act.limit), act.limit);
  const glu = gc / (1 + Math.exp(-act.alpha * gc));
  return 1.1 * eg * (Math.abs(uc + 1) + eu) + Math.abs(glu) * eu + 6 * U32 * Math.abs(glu * (uc + 1));
}

export type Tier = 'pass' | 'warn' | 'fail';

const TIER_ORDER: Record<Tier, number> = { pass: 0, warn: 1, fail: 2 };
/** The worse of some verdicts. */
export function worstTier(...tiers: Tier[]): Tier {
  return tiers.reduce<Tier>((a, b) => (TIER_ORDER[b] > TIER_ORDER[a] ? b : a), 'pass');
}

/** Per-element bounds of a comparison: within `strict` passes, within `loose` warns. */
export interface Bounds {
  strict: ArrayLike<number>;
  loose: ArrayLike<number>;
}

/**
 * A token whose selection is decided within rounding: its k-th and (k+1)-th selection
 * scores (`experts`), or for group-limited routing the last kept and the first dropped
 * group's scores (`groups`), are closer than their float32 error bound. Two correct
 * implementations may legitimately choose differently for it.
 */
export interface RoutingTie {
  token: number;
  kind: 'experts' | 'groups';
  /** The two experts (or groups) on either side of the cut. */
  pair: [number, number];
  gap: number;
  epsilon: number;
}

/** The two entries either side of the cut after the best `keep`, when they are within `epsilon(a, b)`. */
function cutTie(row: number[], keep: number, epsilon: (a: number, b: number) => number): { pair: [number, number]; gap: number; epsilon: number } | undefined {
  if (keep <= 0 || keep >= row.length) return undefined;
  const order = row.map((_, e) => e).sort((a, b) => row[b]! - row[a]! || a - b);
  const a = order[keep - 1]!;
  const b = order[keep]!;
  const eps = epsilon(row[a]!, row[b]!);
  const gap = row[a]! - row[b]!;
  return gap <= eps ? { pair: [a, b], gap, epsilon: eps } : undefined;
}

/**
 * Tokens whose selection is decided within rounding. `scores` is `[tokens, experts]` (what
 * the top-k ranked), `logitBound` the strict bound of each router logit: every score used by
 * the routing variants moves by at most twice a logit's error (softmax, sigmoid, raw logits),
 * plus its own rounding; both sides of the cut can move, hence twice again. A group score
 * sums at most two expert scores, so its error is twice an expert score's.
 */
export function findRoutingTies(
  scores: Float64Array, logitBound: ArrayLike<number>, tokens: number, experts: number, k: number,
  groups?: { scores: Float64Array; count: number; kept: number },
): RoutingTie[] {
  const ties: RoutingTie[] = [];
  for (let t = 0; t < tokens; t++) {
    let delta = 0;
    for (let e = 0; e < experts; e++) delta = Math.max(delta, logitBound[t * experts + e]!);
    const scoreError = (v: number) => 2 * delta + 4 * U32 * Math.abs(v);
    if (groups) {
      const row = Array.from(groups.scores.subarray(t * groups.count, (t + 1) * groups.count));
      const tie = cutTie(row, groups.kept, (a, b) => 2 * (2 * scoreError(Math.max(Math.abs(a), Math.abs(b)))));
      if (tie) ties.push({ token: t, kind: 'groups', ...tie });
    }
    const row = Array.from(scores.subarray(t * experts, (t + 1) * experts));
    const tie = cutTie(row, k, (a, b) => 2 * scoreError(Math.max(Math.abs(a), Math.abs(b))));
    if (tie) ties.push({ token: t, kind: 'experts', ...tie });
  }
  return ties;
}

export interface Located {
  value: number;
  row: number;
  col: number;
}

export interface MismatchReport {
  tier: Tier;
  elements: number;
  /** Elements beyond the strict bound (tie-ambiguous tokens excluded). */
  mismatches: number;
  /** mismatches / elements */
  share: number;
  /** Elements beyond the loose bound (tie-ambiguous tokens excluded). */
  failures: number;
  maxAbs: Located & { bound: number };
  maxRel: Located;
  nan: number;
  inf: number;
  ties: RoutingTie[];
  /**
   * Tie tokens whose values are beyond the strict bound: excluded from the verdict (the
   * other legitimate choice of experts may explain them) but shown, and they make the
   * verdict at least `warn`. If no token outside the ties was compared, the verdict is
   * `fail`: nothing was verified.
   */
  tieAmbiguous: number[];
  /** Mismatching tokens per selected expert, where the selection is known. */
  perExpert: Map<number, number>;
  /** Mismatching tokens per rank label (`tp r/ep q`) holding one of the token's experts. */
  perRank: Map<string, number>;
  notes: string[];
}

export interface CompareContext {
  /** `[rows, k]` selected experts per row (token), for the per-expert breakdown. */
  selected?: Int32Array;
  k?: number;
  /** Which ranks hold each expert, for the per-rank breakdown. */
  ranksOfExpert?: Map<number, string[]>;
  ties?: RoutingTie[];
}

/** A new maximum: larger, or the first NaN (which then stays, pointing at the first NaN). */
const exceeds = (v: number, max: number) => v > max || (Number.isNaN(v) && !Number.isNaN(max));

/** Compares `found` with `expected` (`[rows, cols]`) under per-element bounds. */
export function compareToBounds(found: ArrayLike<number>, expected: ArrayLike<number>, bounds: Bounds, cols: number, context: CompareContext = {}): MismatchReport {
  const notes: string[] = [];
  const report: MismatchReport = {
    tier: 'pass', elements: expected.length, mismatches: 0, share: 0, failures: 0,
    maxAbs: { value: 0, row: -1, col: -1, bound: 0 }, maxRel: { value: 0, row: -1, col: -1 },
    nan: 0, inf: 0, ties: context.ties ?? [], tieAmbiguous: [], perExpert: new Map(), perRank: new Map(), notes,
  };
  if (found.length !== expected.length || bounds.strict.length !== expected.length || bounds.loose.length !== expected.length || cols <= 0 || expected.length % cols !== 0) {
    notes.push(`shape mismatch: expected ${expected.length} values in rows of ${cols}, found ${found.length}`);
    report.tier = 'fail';
    return report;
  }
  const rows = expected.length / cols;
  const tieRows = new Set(report.ties.map((t) => t.token));
  const mismatchedRows = new Set<number>();
  let verified = 0;
  for (let r = 0; r < rows; r++) {
    let rowMismatch = false;
    let rowFailure = false;
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      const f = found[i]!;
      const e = expected[i]!;
      if (Number.isNaN(f) || Number.isNaN(e)) report.nan++;
      else if (!Number.isFinite(f) || !Number.isFinite(e)) report.inf++;
      const abs = Math.abs(f - e);
      const rel = abs / Math.abs(e);
      if (exceeds(abs, report.maxAbs.value)) report.maxAbs = { value: abs, row: r, col: c, bound: bounds.strict[i]! };
      if (Math.abs(e) > 0 && exceeds(rel, report.maxRel.value)) report.maxRel = { value: rel, row: r, col: c };
      if (!(abs <= bounds.strict[i]!)) rowMismatch = true;
      if (!(abs <= bounds.loose[i]!)) rowFailure = true;
      if (!(abs <= bounds.strict[i]!) && !tieRows.has(r)) report.mismatches++;
      if (!(abs <= bounds.loose[i]!) && !tieRows.has(r)) report.failures++;
    }
    if (tieRows.has(r) && rowMismatch) report.tieAmbiguous.push(r);
    else verified++;
    if (rowMismatch && !tieRows.has(r)) mismatchedRows.add(r);
    if (rowFailure && !tieRows.has(r)) mismatchedRows.add(r);
  }
  report.share = report.elements ? report.mismatches / report.elements : 0;
  const { selected, k } = context;
  for (const r of mismatchedRows) {
    if (!selected || !k) break;
    const ranks = new Set<string>();
    for (let j = 0; j < k; j++) {
      const e = selected[r * k + j]!;
      report.perExpert.set(e, (report.perExpert.get(e) ?? 0) + 1);
      for (const label of context.ranksOfExpert?.get(e) ?? []) ranks.add(label);
    }
    for (const label of ranks) report.perRank.set(label, (report.perRank.get(label) ?? 0) + 1);
  }
  for (const t of report.ties) {
    notes.push(`tie at token ${t.token}: ${t.kind} ${t.pair[0]}/${t.pair[1]} within ε=${t.epsilon.toExponential(2)} (gap ${t.gap.toExponential(2)})`);
  }
  if (report.nan + report.inf > 0) notes.push(`${report.nan} NaN and ${report.inf} infinite values`);
  if (rows > 0 && tieRows.size === rows) notes.push('every token is a routing tie');
  const nothingVerified = rows > 0 && verified === 0 && report.tieAmbiguous.length > 0;
  if (nothingVerified) notes.push('every token is tie-ambiguous: nothing was verified');
  report.tier =
    report.failures > 0 || report.nan + report.inf > 0 || nothingVerified ? 'fail'
      : report.mismatches > 0 || report.tieAmbiguous.length > 0 ? 'warn'
        : 'pass';
  return report;
}

/**
 * The bound of an RMSNorm's output n = w · y / r, r = sqrt(mean(y²) + eps), computed in float32
 * from y whose elements are off by at most `e` (semantics.outputNorm, axk1). With
 * D = Σ(2|y|e + e²) / H bounding |r̂² − r²|, |r̂ − r| ≤ D / r; r̂ ≥ max(r − Δr, √eps). Then
 * |n̂ − n| ≤ |w| (e / r̂ + |y| · Δr / (r · r̂)), plus the roundings of the mean of H squares
 * (γ_{H+2}), the reciprocal square root and the two products.
 */
export function outputNormBound(y: ArrayLike<number>, e: ArrayLike<number>, w: ArrayLike<number>, eps: number, tokens: number, hidden: number): Float64Array {
  const out = new Float64Array(tokens * hidden);
  for (let t = 0; t < tokens; t++) {
    let s = 0;
    let d = 0;
    for (let h = 0; h < hidden; h++) {
      const v = Math.abs(y[t * hidden + h]!);
      const err = e[t * hidden + h]!;
      s += v * v;
      d += 2 * v * err + err * err;
    }
    const r = Math.sqrt(s / hidden + eps);
    const rounding = gamma(hidden + 2) + 6 * U32;
    const dr = d / hidden / r + rounding * r;
    const rMin = Math.max(r - dr, Math.sqrt(eps));
    for (let h = 0; h < hidden; h++) {
      const v = Math.abs(y[t * hidden + h]!);
      const wh = Math.abs(w[h]!);
      out[t * hidden + h] = wh * (e[t * hidden + h]! / rMin + (v * dr) / (r * rMin) + (rounding * v) / rMin);
    }
  }
  return out;
}
