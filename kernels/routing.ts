// Router logits → selected experts and their weights, one pure function per `Routing`
// variant (spec/layouts.md §2), each written like its formula and checked
// against transformers 5.17's modeling code. Every function works on one token's row of
// logits in float64; `route` applies the variant to every token. Float32 logits (from a
// GPU backend) are accepted and widened exactly.
import type { MoeSemantics, Routing } from '../harness/layouts/semantics.js';
import { MoeConformanceError } from '../harness/errors.js';
import type { ForwardInputs, RankTensors } from './backend.js';

export type Logits = Float32Array | Float64Array;

/**
 * One token's choice: expert ids in selection order (best first), their weights, and the
 * score of every expert that the final top-k ranked.
 */
export interface ScoredChoice {
  ids: number[];
  weights: number[];
  score: number[];
  /** Group-limited variants: the score of each expert group, which decided the kept groups. */
  groupScore?: number[];
  /** sigmoid_bias_shared: the weight of each shared expert. */
  sharedWeights?: number[];
}

export interface RoutingResult {
  /** `[tokens, k]` global expert ids, best first. */
  selected: Int32Array;
  /** `[tokens, k]` the weight of each selected expert. */
  weights: Float64Array;
  /**
   * `[tokens, experts]` the score each expert was ranked by in the final top-k (after
   * biases and group masking): what a tie check compares.
   */
  scores: Float64Array;
  /** llama4_text: the weight multiplies the expert's input instead of its output. */
  inputScale: boolean;
  /** Group-limited variants: `[tokens, groups]` group scores, of which the best `keptGroups` were kept. */
  groups?: { scores: Float64Array; count: number; kept: number };
  /** sigmoid_bias_shared (inkling): `[tokens, S]` the weight of each shared expert's output. */
  sharedWeights?: Float64Array;
}

export class RoutingError extends MoeConformanceError {}

export const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));

/** softmax in float64, shifted by the maximum so that large logits never overflow. */
export function softmax(l: ArrayLike<number>): number[] {
  // Plain loops: Array.from over a typed-array row was most of a 2048-token routing's time.
  let max = -Infinity;
  for (let i = 0; i < l.length; i++) max = Math.max(max, l[i]!);
  const e = new Array<number>(l.length);
  let sum = 0;
  for (let i = 0; i < l.length; i++) {
    e[i] = Math.exp(l[i]! - max);
    sum += e[i]!;
  }
  for (let i = 0; i < l.length; i++) e[i] = e[i]! / sum;
  return e;
}

/** `f` of every element, as a plain array (a loop: Array.from over typed arrays is slow). */
function mapRow(l: ArrayLike<number>, f: (v: number) => number): number[] {
  const out = new Array<number>(l.length);
  for (let i = 0; i < l.length; i++) out[i] = f(l[i]!);
  return out;
}
const same = (v: number) => v;

/**
 * Indices of the k largest scores, largest first. Equal scores keep index order (the
 * lower id first), which is what torch.topk does on CPU for the small rows used here;
 * where two scores are that close the comparison treats the token as a routing tie anyway.
 * NaN ranks above everything, like torch.topk.
 */
export function topK(scores: ArrayLike<number>, k: number): number[] {
  // One pass keeping the best k in order (a full sort of E scores per token made routing
  // the slowest part of a GPU forward at 2048 tokens × 256 experts): an index enters only
  // if strictly better than the current k-th, and goes after every kept one at least as
  // good, so equal scores stay in index order.
  const n = Math.min(k, scores.length);
  const ids: number[] = [];
  const keys: number[] = [];
  for (let i = 0; i < scores.length; i++) {
    const v = scores[i]!;
    const key = Number.isNaN(v) ? Infinity : v;
    if (ids.length === n && !(key > keys[n - 1]!)) continue;
    let at = ids.length === n ? n - 1 : ids.length;
    while (at > 0 && keys[at - 1]! < key) {
      if (at < n) {
        keys[at] = keys[at - 1]!;
        ids[at] = ids[at - 1]!;
      }
      at--;
    }
    keys[at] = key;
    ids[at] = i;
  }
  return ids;
}

const sum = (v: number[]) => v.reduce((a, b) => a + b, 0);
const pick = (v: ArrayLike<number>, idx: number[]) => idx.map((i) => v[i]!);

/** mixtral, qwen*, olmoe, jamba, hunyuan: top-k of softmax(l), renormalised if asked, × scaling. */
export function softmaxTopk(l: ArrayLike<number>, k: number, renormalize: boolean, scaling: number): ScoredChoice {
  const p = softmax(l);
  const ids = topK(p, k);
  let w = pick(p, ids);
  if (renormalize) {
    const s = sum(w);
    w = w.map((v) => v / s);
  }
  return { ids, weights: w.map((v) => v * scaling), score: p };
}

/** dbrx: top-k of softmax(l), divided by the p-norm of the selected weights. */
export function softmaxTopkPnorm(l: ArrayLike<number>, k: number, p: number): ScoredChoice {
  const probs = softmax(l);
  const ids = topK(probs, k);
  const w = pick(probs, ids);
  const norm = sum(w.map((v) => Math.abs(v) ** p)) ** (1 / p);
  return { ids, weights: w.map((v) => v / norm), score: probs };
}

/**
 * Keeps the `topkGroups` best groups (by `groupScore` of each group's scores) and sets
 * every expert outside them to 0.0: transformers uses masked_fill(..., 0.0), not -inf, so
 * a masked expert can outrank a kept one whose score is negative. Reproduced on purpose.
 */
function maskToBestGroups(
  c: number[], groups: number, topkGroups: number, groupScore: (members: number[]) => number, maskValue = 0.0,
): { masked: number[]; groupScores: number[] } {
  if (groups < 1 || c.length % groups !== 0 || topkGroups > groups) {
    throw new RoutingError('expert groups must divide the experts and topk_group must not exceed n_group', {
      expected: `n_group dividing ${c.length}, topk_group ≤ n_group`,
      found: { n_group: groups, topk_group: topkGroups },
    });
  }
  const size = c.length / groups;
  const groupScores = Array.from({ length: groups }, (_, g) => groupScore(c.slice(g * size, (g + 1) * size)));
  const kept = new Set(topK(groupScores, topkGroups));
  return { masked: c.map((v, i) => (kept.has(Math.floor(i / size)) ? v : maskValue)), groupScores };
}

/** deepseek_v2: p = softmax(l); greedy or group-limited (group score = max); weights p[idx] × scaling, never renormalised. */
export function softmaxGroupLimited(l: ArrayLike<number>, k: number, groups: number, topkGroups: number, scaling: number): ScoredChoice {
  const p = softmax(l);
  if (groups <= 1) {
    const ids = topK(p, k);
    return { ids, weights: pick(p, ids).map((v) => v * scaling), score: p };
  }
  const { masked, groupScores } = maskToBestGroups(p, groups, topkGroups, (m) => Math.max(...m));
  const ids = topK(masked, k);
  return { ids, weights: pick(masked, ids).map((v) => v * scaling), score: masked, groupScore: groupScores };
}

/**
 * deepseek_v3, glm4_moe, dots1: s = σ(l), c = s + bias; group score = sum of the top-2 c
 * of each group; top-k of c over the kept groups; weights s[idx] (no bias), divided by
 * (sum + 1e-20) if renormalised; × scaling.
 */
export function sigmoidGroupLimitedBias(
  l: ArrayLike<number>, k: number, groups: number, topkGroups: number, renormalize: boolean, scaling: number, bias: ArrayLike<number> | undefined,
  maskNegInf = false, score: (l: ArrayLike<number>) => number[] = (v) => mapRow(v, sigmoid),
): ScoredChoice {
  const s = score(l);
  const c = s.map((v, i) => v + (bias?.[i] ?? 0));
  const top2Sum = (m: number[]) => sum(pick(m, topK(m, 2)));
  const { masked, groupScores } = maskToBestGroups(c, groups, topkGroups, top2Sum, maskNegInf ? -Infinity : 0.0);
  const ids = topK(masked, k);
  let w = pick(s, ids);
  if (renormalize) {
    const d = sum(w) + 1e-20;
    w = w.map((v) => v / d);
  }
  return { ids, weights: w.map((v) => v * scaling), score: masked, groupScore: groupScores };
}

/** ernie4_5_moe: p = softmax(l); top-k of p + bias; weights p[idx] / max(sum, normMin). */
export function softmaxBiasNormmin(l: ArrayLike<number>, k: number, normMin: number, bias: ArrayLike<number> | undefined): ScoredChoice {
  const p = softmax(l);
  const c = p.map((v, i) => v + (bias?.[i] ?? 0));
  const ids = topK(c, k);
  const w = pick(p, ids);
  const d = Math.max(sum(w), normMin);
  return { ids, weights: w.map((v) => v / d), score: c };
}

/** lfm2_moe: s = σ(l); top-k of s + bias; weights s[idx], divided by (sum + 1e-6) if renormalised; × scaling. */
export function sigmoidBias(l: ArrayLike<number>, k: number, renormalize: boolean, scaling: number, bias: ArrayLike<number> | undefined): ScoredChoice {
  const s = mapRow(l, sigmoid);
  const c = s.map((v, i) => v + (bias?.[i] ?? 0));
  const ids = topK(c, k);
  let w = pick(s, ids);
  if (renormalize) {
    const d = sum(w) + 1e-6;
    w = w.map((v) => v / d);
  }
  return { ids, weights: w.map((v) => v * scaling), score: c };
}

/** gpt_oss, granitemoe: top-k of l; softmax over the k selected logits; × scaling. */
export function topkSoftmax(l: ArrayLike<number>, k: number, scaling = 1): ScoredChoice {
  const ids = topK(l, k);
  return { ids, weights: softmax(pick(l, ids)).map((v) => v * scaling), score: mapRow(l, same) };
}

/** cohere2_moe: top-k of l; σ of the selected logits, divided by their sum if renormalised; × scaling. */
export function topkSigmoid(l: ArrayLike<number>, k: number, renormalize: boolean, scaling = 1): ScoredChoice {
  const ids = topK(l, k);
  let w = pick(l, ids).map(sigmoid);
  if (renormalize) {
    const s = sum(w);
    w = w.map((v) => v / s);
  }
  return { ids, weights: w.map((v) => v * scaling), score: mapRow(l, same) };
}

/**
 * inkling: the last `shared` logits score the shared experts. s = σ(l); top-k of the routed
 * s + bias; the k chosen and the shared experts weighted σ(l_j) / Σ σ(l) (the softmax of
 * logsigmoid over them) × scaling. The shared experts score -inf for the top-k (never chosen
 * there: they always run).
 */
export function sigmoidBiasShared(l: ArrayLike<number>, k: number, shared: number, scaling: number, bias: ArrayLike<number> | undefined): ScoredChoice {
  const routed = l.length - shared;
  const c = Array.from({ length: l.length }, (_, i) => (i < routed ? sigmoid(l[i]!) + (bias?.[i] ?? 0) : -Infinity));
  const ids = topK(c, k);
  const chosen = [...ids, ...Array.from({ length: shared }, (_, j) => routed + j)].map((i) => sigmoid(l[i]!));
  const total = sum(chosen);
  const w = chosen.map((v) => (v / total) * scaling);
  return { ids, weights: w.slice(0, k), score: c, sharedWeights: w.slice(k) };
}

/** sqrt(softplus(z)), deepseek_v4's `sqrtsoftplus`, overflow-safe (softplus(z) = max(z, 0) + log1p(e^-|z|)). */
export const sqrtSoftplus = (z: number): number => Math.sqrt(Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z))));

/**
 * deepseek_v4: s = score(l); top-k of s + bias, or the given `fixed` ids (a hash layer's
 * tid2eid row); weights s[idx] / (sum + 1e-20) × scaling.
 */
export function scoreBiasTopk(
  l: ArrayLike<number>, k: number, score: 'sigmoid' | 'sqrtsoftplus', scaling: number, bias: ArrayLike<number> | undefined, fixed?: number[],
): ScoredChoice {
  const s = mapRow(l, score === 'sigmoid' ? sigmoid : sqrtSoftplus);
  const c = s.map((v, i) => v + (bias?.[i] ?? 0));
  const ids = fixed ?? topK(c, k);
  const w = pick(s, ids);
  const d = sum(w) + 1e-20;
  // A fixed choice has no ranking to tie: its score row marks the chosen experts.
  const ranked = fixed ? c.map((_, i) => (fixed.includes(i) ? 1 : 0)) : c;
  return { ids, weights: w.map((v) => (v / d) * scaling), score: ranked };
}

/** laguna's logit soft-capping: tanh(l / cap) · cap. */
export const softcapped = (l: ArrayLike<number>, cap: number): number[] => Array.from(l, (v) => Math.tanh(v / cap) * cap);

/** llama4_text: top-k of l; σ(l[idx]) scales the expert's input. */
export function topkSigmoidInput(l: ArrayLike<number>, k: number): ScoredChoice {
  const ids = topK(l, k);
  return { ids, weights: pick(l, ids).map(sigmoid), score: mapRow(l, same) };
}

/**
 * phimoe sparsemixer, eval mode. Round r: among the experts not yet chosen, e = argmax l;
 * every expert j with (max - l_j) / max(|l_j|, max) > 2·jitterEps is masked to -inf;
 * the weight is softmax(masked)[e]. transformers does exactly two rounds (top-2).
 */
export function sparsemixer(l: ArrayLike<number>, k: number, jitterEps: number): ScoredChoice {
  const current = Array.from(l);
  const ids: number[] = [];
  const weights: number[] = [];
  for (let round = 0; round < k; round++) {
    const e = topK(current, 1)[0]!;
    const max = current[e]!;
    const masked = current.map((v, j) => ((max - l[j]!) / Math.max(Math.abs(l[j]!), max) > 2 * jitterEps ? -Infinity : v));
    ids.push(e);
    weights.push(softmax(masked)[e]!);
    current[e] = -Infinity;
  }
  return { ids, weights, score: mapRow(l, same) };
}

/**
 * The fixed choice of MoE layer `layer` where it is hash-routed (`sem.hash`): rank 0's
 * `router.tid2eid` (I64 or I32, `[vocab, k]`) and the forward's token ids; undefined for
 * other layers. A hash layer without token ids is refused.
 */
export function hashChoiceOf(sem: MoeSemantics, layer: number, rank: RankTensors, tokens: number, inputs: ForwardInputs | undefined): HashChoice | undefined {
  if (!sem.hash?.layers.includes(layer)) return undefined;
  const name = `layers.${layer}.router.tid2eid`;
  const t = rank.tensors.get(name);
  const shape = [sem.hash.vocab, sem.topK];
  if (!t || (t.dtype !== 'I64' && t.dtype !== 'I32') || t.shape.length !== 2 || t.shape[0] !== shape[0] || t.shape[1] !== shape[1] || t.bytes.length !== shape[0]! * shape[1]! * (t.dtype === 'I64' ? 8 : 4)) {
    throw new RoutingError('a hash layer needs its tid2eid table', { layer, tensor: name, expected: `I64|I32 [${shape.join(', ')}]`, found: t ? `${t.dtype} [${t.shape.join(', ')}]` : 'absent' });
  }
  if (inputs?.tokenIds === undefined) {
    throw new RoutingError('a hash-routed layer chooses experts by token id: the forward needs the token ids', { layer, expected: `tokenIds [${tokens}]`, found: 'none' });
  }
  const view = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
  const n = shape[0]! * shape[1]!;
  const table = new Float64Array(n);
  for (let i = 0; i < n; i++) table[i] = t.dtype === 'I64' ? Number(view.getBigInt64(8 * i, true)) : view.getInt32(4 * i, true);
  return { table, tokenIds: inputs.tokenIds };
}

/** The choice of tokens [from, to) of a hash layer (a backend that routes in parts). */
export function hashPart(hash: HashChoice | undefined, from: number, to: number): HashChoice | undefined {
  return hash && { table: hash.table, tokenIds: Array.from({ length: to - from }, (_, i) => hash.tokenIds[from + i]!) };
}

/** Token t's row of a hash table, checked: a token id inside the table, expert ids below E. */
function hashRow(hash: HashChoice, t: number, k: number, E: number): number[] {
  const id = hash.tokenIds[t]!;
  const vocab = hash.table.length / k;
  if (!Number.isSafeInteger(id) || id < 0 || id >= vocab) {
    throw new RoutingError('token id outside the hash table', { expected: `0..${vocab - 1}`, found: id });
  }
  const row = Array.from({ length: k }, (_, j) => hash.table[id * k + j]!);
  const bad = row.find((e) => !Number.isSafeInteger(e) || e < 0 || e >= E);
  if (bad !== undefined) throw new RoutingError('tid2eid names an expert that does not exist', { tensor: 'router.tid2eid', expected: `0..${E - 1}`, found: bad });
  return row;
}

function chooseOne(r: Routing, l: ArrayLike<number>, k: number, bias: ArrayLike<number> | undefined, fixed?: number[]): ScoredChoice {
  switch (r.kind) {
    case 'softmax_topk': return softmaxTopk(l, k, r.renormalize, r.scaling);
    case 'softmax_topk_pnorm': return softmaxTopkPnorm(l, k, r.p);
    case 'softmax_group_limited': return softmaxGroupLimited(l, k, r.groups, r.topkGroups, r.scaling);
    case 'sigmoid_group_limited_bias':
      return sigmoidGroupLimitedBias(r.softcap ? softcapped(l, r.softcap) : l, k, r.groups, r.topkGroups, r.renormalize, r.scaling, bias, r.maskNegInf === true);
    case 'softmax_group_top2': return sigmoidGroupLimitedBias(l, k, r.groups, r.topkGroups, r.renormalize, r.scaling, bias, false, softmax);
    case 'topk_sigmoid': return topkSigmoid(l, k, r.renormalize, r.scaling);
    case 'softmax_bias_normmin': return softmaxBiasNormmin(l, k, r.normMin, bias);
    case 'score_bias_topk': return scoreBiasTopk(l, k, r.score, r.scaling, bias, fixed);
    case 'sigmoid_bias': return sigmoidBias(l, k, r.renormalize, r.scaling, bias);
    case 'topk_softmax': return topkSoftmax(l, k, r.scaling);
    case 'topk_sigmoid_input': return topkSigmoidInput(l, k);
    case 'sparsemixer': return sparsemixer(l, k, r.jitterEps);
    case 'sigmoid_bias_shared': return sigmoidBiasShared(l, k, r.shared, r.scaling, bias);
    // Routed over the whole [T, 2K] logits at once (route): rows mix tokens.
    case 'product_key': throw new RoutingError('product-key routing reads every token\'s logits: route them together', { expected: 'route()', found: 'one row' });
  }
}

/**
 * Adds the zero-compute (identity) experts' share, weight · x, for every choice of one
 * (ids ≥ experts - zeroExperts): added once for the whole block, not per rank, since no rank
 * holds them. A no-op for models without them.
 */
export function addZeroExperts(sem: MoeSemantics, r: RoutingResult, x: ArrayLike<number>, tokens: number, out: Float32Array | Float64Array): void {
  const Z = sem.zeroExperts ?? 0;
  // zaya's skip class adds nothing.
  if (Z === 0 || sem.zeroExpertsSkip) return;
  const { hidden: H, topK: k } = sem;
  const first = sem.experts - Z;
  for (let t = 0; t < tokens; t++) {
    for (let j = 0; j < k; j++) {
      if (r.selected[t * k + j]! < first) continue;
      const w = r.weights[t * k + j]!;
      for (let h = 0; h < H; h++) out[t * H + h] = out[t * H + h]! + w * x[t * H + h]!;
    }
  }
}

/** A hash layer's choice (deepseek_v4): the `[vocab, k]` table of expert ids, row-major, and each token's id. */
export interface HashChoice {
  table: ArrayLike<number>;
  tokenIds: ArrayLike<number>;
}

/**
 * Routes every token: `logits` is `[tokens, experts]` including the router bias;
 * `correctionBias` (`[experts]`) is the selection-only bias where the model has one; `hash`
 * the fixed choice of a hash layer.
 */
export function route(sem: MoeSemantics, logits: Logits, tokens: number, correctionBias?: ArrayLike<number>, hash?: HashChoice): RoutingResult {
  const E = sem.experts;
  const k = sem.topK;
  const rows = sem.routerRows ?? E;
  if (!Number.isSafeInteger(tokens) || tokens < 0 || logits.length !== tokens * rows) {
    throw new RoutingError('router logits do not have the shape [tokens, router rows]', { expected: [tokens, rows], found: logits.length });
  }
  if (k < 1 || k > E) throw new RoutingError('top-k must be between 1 and the number of experts', { expected: `1..${E}`, found: k });
  // Shared experts the router scores (inkling) have no correction bias.
  const biased = E - (sem.sharedRouted ?? 0);
  if (correctionBias !== undefined && correctionBias.length !== biased) {
    throw new RoutingError('correction bias does not have one value per expert', { expected: biased, found: correctionBias.length });
  }
  const selected = new Int32Array(tokens * k);
  const weights = new Float64Array(tokens * k);
  const scores = new Float64Array(tokens * E);
  const r = sem.routing;
  if (hash && r.kind !== 'score_bias_topk') {
    throw new RoutingError('only score_bias_topk routing (deepseek_v4) has hash layers', { expected: 'score_bias_topk', found: r.kind });
  }
  if (hash && hash.tokenIds.length !== tokens) {
    throw new RoutingError('a hash layer needs one token id per token', { expected: tokens, found: hash.tokenIds.length });
  }
  if (r.kind === 'product_key') return productKeyRoute(logits, tokens, E, k, r.keys, r.renormalize);
  const grouped = (r.kind === 'softmax_group_limited' || r.kind === 'sigmoid_group_limited_bias' || r.kind === 'softmax_group_top2') && r.groups > 1;
  const groups = grouped ? { scores: new Float64Array(tokens * r.groups), count: r.groups, kept: r.topkGroups } : undefined;
  const sharedWeights = r.kind === 'sigmoid_bias_shared' ? new Float64Array(tokens * r.shared) : undefined;
  for (let t = 0; t < tokens; t++) {
    const choice = chooseOne(r, logits.subarray(t * E, (t + 1) * E), k, correctionBias, hash && hashRow(hash, t, k, E));
    selected.set(choice.ids, t * k);
    weights.set(choice.weights, t * k);
    scores.set(choice.score, t * E);
    if (groups && choice.groupScore) groups.scores.set(choice.groupScore, t * groups.count);
    if (sharedWeights && choice.sharedWeights) sharedWeights.set(choice.sharedWeights, t * choice.sharedWeights.length);
  }
  const result: RoutingResult = { selected, weights, scores, inputScale: r.kind === 'topk_sigmoid_input' };
  if (groups) result.groups = groups;
  if (sharedWeights) result.sharedWeights = sharedWeights;
  return result;
}

/**
 * doge's product-key routing over the whole `[T, 2K]` logits (MoeSemantics routing
 * `product_key`): row t's x-scores are flat[tK, tK + K) and its y-scores flat[TK + tK, ...),
 * as transformers' view(2, T, K) reads them; expert ix·K + iy scores sx[ix] + sy[iy].
 */
export function productKeyRoute(logits: Logits, tokens: number, E: number, k: number, K: number, renormalize: boolean): RoutingResult {
  if (K * K > E || k > K * K) throw new RoutingError('product keys need K² ≤ experts and top-k ≤ K²', { expected: `K² ≤ ${E}, k ≤ K²`, found: { keys: K, topK: k } });
  const selected = new Int32Array(tokens * k);
  const weights = new Float64Array(tokens * k);
  const scores = new Float64Array(tokens * E).fill(-Infinity);
  for (let t = 0; t < tokens; t++) {
    const sx = logits.subarray(t * K, (t + 1) * K);
    const sy = logits.subarray(tokens * K + t * K, tokens * K + (t + 1) * K);
    // torch.topk(K) of each half sorts it; the K² sums are ranked in that order (ties: lower position first).
    const ix = topK(sx, K);
    const iy = topK(sy, K);
    const sums = new Array<number>(K * K);
    for (let a = 0; a < K; a++) for (let b = 0; b < K; b++) sums[a * K + b] = sx[ix[a]!]! + sy[iy[b]!]!;
    const best = topK(sums, k);
    const ids = best.map((pos) => ix[Math.floor(pos / K)]! * K + iy[pos % K]!);
    let w = softmax(pick(sums, best));
    if (renormalize) {
      const s = sum(w);
      w = w.map((v) => v / s);
    }
    selected.set(ids, t * k);
    weights.set(w, t * k);
    for (let e = 0; e < K * K; e++) scores[t * E + e] = sx[Math.floor(e / K)]! + sy[e % K]!;
  }
  return { selected, weights, scores, inputScale: false };
}

/**
 * A product-key router's per-logit bounds (`[T, 2K]`, flat as the logits) as per-expert bounds
 * `[T, E]` of the sums it ranks: the x- and y-score's bounds added (0 beyond K²).
 */
export function productKeyBounds(bound: Float64Array, tokens: number, E: number, K: number): Float64Array {
  const out = new Float64Array(tokens * E);
  for (let t = 0; t < tokens; t++) for (let e = 0; e < K * K; e++) out[t * E + e] = bound[t * K + Math.floor(e / K)]! + bound[tokens * K + t * K + (e % K)]!;
  return out;
}
