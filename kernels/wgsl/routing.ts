// Routing on the GPU: one thread per token turns its row of router logits (router bias
// already added by the router GEMM) into the selected expert ids and their weights, for every
// `Routing` kind of kernels/routing.ts except phimoe's sparsemixer (two masked softmax rounds,
// one model) and inkling's sigmoid_bias_shared (shared experts weighted by the router), which
// the backend routes on the CPU. Each kind is described here as data —
// score, selection key, groups, weight source, normalisation — and one generator writes the
// shader, with the same selection rules as the shared CPU code: a top-k that keeps the best k
// in one pass with equal keys in index order (NaN ranks first), groups kept by the same top-k
// of their scores, experts of dropped groups keyed 0.0 (transformers' masked_fill) or -inf.
//
// Arithmetic is float32 (the CPU code's is float64). Where the key is a monotone function of
// the logit alone (softmax or sigmoid without a bias, group score = max), the key is the
// logit itself, so that the choice is exactly the float64 one; the weights differ from
// float64's by a few float32 roundings, inside the forward's float32 bound (tested).
import { flatEntry } from './flat.js';
import type { Routing } from '../../harness/layouts/semantics.js';

/** One routing kind as the shader computes it. */
export interface RoutingProgram {
  /** s_i from the logit l_i. */
  score: 'softmax' | 'sigmoid' | 'identity';
  /** laguna: the logit is first replaced by tanh(l / softcap) · softcap. */
  softcap?: number;
  /** The top-k key: the logit itself (monotone kinds), s_i, or s_i + correction bias. */
  key: 'logit' | 'score' | 'score+bias';
  groups?: { count: number; kept: number; score: 'max' | 'top2'; maskNegInf: boolean };
  /** The weight of a chosen expert: s_i; s_i where its group was kept, else 0; softmax or σ of the chosen logits. */
  weight: 'score' | 'masked-score' | 'softmax-of-chosen' | 'sigmoid-of-chosen';
  /** Then: divided by (sum + eps), by the p-norm, or by max(sum, min). */
  normalize?: { kind: 'sum'; eps: number } | { kind: 'pnorm'; p: number } | { kind: 'normmin'; min: number };
  scaling: number;
  /** llama4_text: the weight scales the expert's input. */
  inputScale: boolean;
}

/** The shader's description of `r`, or undefined for a kind routed on the CPU. */
export function routingProgram(r: Routing): RoutingProgram | undefined {
  const base = { inputScale: false };
  switch (r.kind) {
    case 'softmax_topk':
      return { ...base, score: 'softmax', key: 'logit', weight: 'score', normalize: r.renormalize ? { kind: 'sum', eps: 0 } : undefined, scaling: r.scaling };
    case 'softmax_topk_pnorm':
      return { ...base, score: 'softmax', key: 'logit', weight: 'score', normalize: { kind: 'pnorm', p: r.p }, scaling: 1 };
    case 'softmax_group_limited':
      if (r.groups <= 1) return { ...base, score: 'softmax', key: 'logit', weight: 'score', scaling: r.scaling };
      // Group score = max p, a monotone function of the group's largest logit.
      return { ...base, score: 'softmax', key: 'logit', groups: { count: r.groups, kept: r.topkGroups, score: 'max', maskNegInf: false }, weight: 'masked-score', scaling: r.scaling };
    case 'sigmoid_group_limited_bias':
      return {
        ...base, score: 'sigmoid', softcap: r.softcap, key: 'score+bias', groups: { count: r.groups, kept: r.topkGroups, score: 'top2', maskNegInf: r.maskNegInf === true },
        weight: 'score', normalize: r.renormalize ? { kind: 'sum', eps: 1e-20 } : undefined, scaling: r.scaling,
      };
    case 'softmax_group_top2':
      return {
        ...base, score: 'softmax', key: 'score+bias', groups: { count: r.groups, kept: r.topkGroups, score: 'top2', maskNegInf: false },
        weight: 'score', normalize: r.renormalize ? { kind: 'sum', eps: 1e-20 } : undefined, scaling: r.scaling,
      };
    case 'softmax_bias_normmin':
      return { ...base, score: 'softmax', key: 'score+bias', weight: 'score', normalize: { kind: 'normmin', min: r.normMin }, scaling: 1 };
    case 'sigmoid_bias':
      return { ...base, score: 'sigmoid', key: 'score+bias', weight: 'score', normalize: r.renormalize ? { kind: 'sum', eps: 1e-6 } : undefined, scaling: r.scaling };
    case 'topk_softmax':
      return { ...base, score: 'identity', key: 'logit', weight: 'softmax-of-chosen', scaling: r.scaling ?? 1 };
    case 'topk_sigmoid':
      return { ...base, score: 'identity', key: 'logit', weight: 'sigmoid-of-chosen', normalize: r.renormalize ? { kind: 'sum', eps: 0 } : undefined, scaling: r.scaling ?? 1 };
    case 'topk_sigmoid_input':
      return { score: 'identity', key: 'logit', weight: 'sigmoid-of-chosen', scaling: 1, inputScale: true };
    case 'sparsemixer':
    case 'sigmoid_bias_shared':
    case 'score_bias_topk':
    case 'product_key':
      return undefined;
  }
}

/** A float32 literal of `v` for WGSL (finite values only). */
function f32(v: number): string {
  const s = Math.fround(v).toExponential(9);
  return `f32(${s})`;
}

/**
 * The routing shader of `prog` for E experts, top-k. Bindings: 0 params (T, -inf, +inf: no
 * WGSL constant may be infinite), 1 logits `[T, E]`, 2 correction bias `[E]` (zeros where none), 3 selected `[T, k]`
 * i32, 4 weights `[T, k]` f32.
 */
export function routingShader(prog: RoutingProgram, E: number, k: number): string {
  const g = prog.groups;
  if (g && (g.count < 1 || E % g.count !== 0 || g.kept > g.count || g.kept < 1)) {
    throw new RangeError(`expert groups must divide the experts and topk_group must be within n_group: ${E} experts, ${g.count} groups, ${g.kept} kept`);
  }
  if (k < 1 || k > E) throw new RangeError(`top-k must be between 1 and ${E}: ${k}`);
  const size = g ? E / g.count : E;
  const logit = prog.softcap ? `tanh(logits[base + i] / ${f32(prog.softcap)}) * ${f32(prog.softcap)}` : 'logits[base + i]';
  const score = {
    softmax: 'exp(L(base, i) - mx) / se',
    sigmoid: '1.0 / (1.0 + exp(-L(base, i)))',
    identity: 'L(base, i)',
  }[prog.score];
  const key = { logit: 'L(base, i)', score: 'S(base, i, mx, se)', 'score+bias': 'S(base, i, mx, se) + bias[i]' }[prog.key];
  // The value an expert of a dropped group is ranked by.
  const masked = prog.key === 'logit' || g?.maskNegInf ? 'p.negInf' : '0.0';
  const weight = {
    score: 'S(base, i, mx, se)',
    'masked-score': 'select(0.0, S(base, i, mx, se), kept[i / GS] != 0u)',
    'softmax-of-chosen': 'exp(L(base, i) - L(base, ids[0]))',
    'sigmoid-of-chosen': '1.0 / (1.0 + exp(-L(base, i)))',
  }[prog.weight];
  const n = prog.normalize;
  const post = prog.weight === 'softmax-of-chosen'
    ? 'var d = 0.0; for (var j = 0u; j < K; j++) { d += w[j]; }'
    : !n ? 'let d = 1.0;'
      : n.kind === 'sum' ? `var d = ${f32(n.eps)}; for (var j = 0u; j < K; j++) { d += w[j]; }`
        : n.kind === 'normmin' ? `var d = 0.0; for (var j = 0u; j < K; j++) { d += w[j]; } d = max(d, ${f32(n.min)});`
          : `var d = 0.0; for (var j = 0u; j < K; j++) { d += pow(abs(w[j]), ${f32(n.p)}); } d = pow(d, ${f32(1 / n.p)});`;
  const groupCode = !g ? '' : `
  // Group scores (max or sum of the top two keys of each group), the best ${g.kept} kept.
  var gs: array<f32, G>;
  for (var q = 0u; q < G; q++) {
    var b1 = p.negInf;
    var b2 = p.negInf;
    for (var i = q * GS; i < (q + 1u) * GS; i++) {
      let v = rank(KEY(base, i, mx, se));
      if (v > b1) { b2 = b1; b1 = v; } else if (v > b2) { b2 = v; }
    }
    ${g.score === 'max' ? 'gs[q] = b1;' : size >= 2 ? 'gs[q] = b1 + b2;' : 'gs[q] = b1;'}
  }
  var gi: array<u32, KG>;
  var gk: array<f32, KG>;
  var gn = 0u;
  for (var q = 0u; q < G; q++) { insert_group(&gi, &gk, &gn, q, rank(gs[q])); }
  var kept: array<u32, G>;
  for (var j = 0u; j < KG; j++) { kept[gi[j]] = 1u; }`;
  const maskedKey = g ? `select(${masked}, KEY(base, i, mx, se), kept[i / GS] != 0u)` : 'KEY(base, i, mx, se)';
  return /* wgsl */ `
struct Params { T: u32, negInf: f32, posInf: f32, pad0: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> selected: array<i32>;
@group(0) @binding(4) var<storage, read_write> weights: array<f32>;

const E = ${E}u;
const K = ${k}u;
${g ? `const G = ${g.count}u;\nconst GS = ${size}u;\nconst KG = ${g.kept}u;` : ''}

fn L(base: u32, i: u32) -> f32 { return ${logit}; }
fn S(base: u32, i: u32, mx: f32, se: f32) -> f32 { return ${score}; }
fn KEY(base: u32, i: u32, mx: f32, se: f32) -> f32 { return ${key}; }
// NaN ranks above everything, like torch.topk and the CPU code.
fn rank(v: f32) -> f32 { return select(v, p.posInf, v != v); }

${g ? `fn insert_group(ids: ptr<function, array<u32, KG>>, keys: ptr<function, array<f32, KG>>, n: ptr<function, u32>, i: u32, v: f32) {
  if (*n == KG && !(v > (*keys)[KG - 1u])) { return; }
  var at = select(*n, KG - 1u, *n == KG);
  while (at > 0u && (*keys)[at - 1u] < v) { (*keys)[at] = (*keys)[at - 1u]; (*ids)[at] = (*ids)[at - 1u]; at -= 1u; }
  (*keys)[at] = v; (*ids)[at] = i;
  if (*n < KG) { *n += 1u; }
}` : ''}

${flatEntry(64, 't')}
  if (t >= p.T) { return; }
  // Bound whether or not this kind reads it, so that every kind has the same bindings.
  _ = bias[0];
  let base = t * E;
  var mx = p.negInf;
  var se = 0.0;
  ${prog.score === 'softmax' ? `for (var i = 0u; i < E; i++) { mx = max(mx, L(base, i)); }
  for (var i = 0u; i < E; i++) { se += exp(L(base, i) - mx); }` : ''}
  ${groupCode}
  // Top-k in one pass: an expert enters only if strictly better than the k-th kept, after every kept one at least as good.
  var ids: array<u32, K>;
  var keys: array<f32, K>;
  var n = 0u;
  for (var i = 0u; i < E; i++) {
    let v = rank(${maskedKey});
    if (n == K && !(v > keys[K - 1u])) { continue; }
    var at = select(n, K - 1u, n == K);
    while (at > 0u && keys[at - 1u] < v) { keys[at] = keys[at - 1u]; ids[at] = ids[at - 1u]; at -= 1u; }
    keys[at] = v;
    ids[at] = i;
    if (n < K) { n += 1u; }
  }
  var w: array<f32, K>;
  for (var j = 0u; j < K; j++) { let i = ids[j]; w[j] = ${weight}; }
  ${post}
  for (var j = 0u; j < K; j++) {
    selected[t * K + j] = i32(ids[j]);
    weights[t * K + j] = w[j] / d * ${f32(prog.scaling)};
  }
}
`;
}
