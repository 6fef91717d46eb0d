// The float64 reference MoE forward: router logits, routing, and for every TP/EP rank the
// partial output of its own experts over its own slice of I, summed over the ranks
// (spec §1 "Summing the ranks"): w2_bias once per selected expert per token (TP rank 0
// only), the shared expert once per TP shard (EP rank 0 only). Plain loops over
// Float64Array, so it is obviously right; every fast path is checked against it.
import { atLayer, SILU_GATED, type MoeSemantics } from '../harness/layouts/semantics.js';
import type { ForwardInputs, MoeBackend, MoeForwardResult, RankTensors } from './backend.js';
import { MoeConformanceError } from '../harness/errors.js';
import { gamma, LOOSE_RELATIVE, looseBound, outputNormBound, routingWeightRelError, sigmoidRelError, U32 } from '../harness/compare/tolerance.js';
import { dequantizeRanks } from '../harness/quant/dequantize.js';
import { addGatedMlp, decodeFloatTensor, decodeRank, type BoundAccumulator, type GatedMlp, type RankWeights, type TokenBatch } from './experts.js';
import { addZeroExperts, hashChoiceOf, productKeyBounds, route, sigmoid, type RoutingResult } from './routing.js';
import { kernelForm } from './kernel-form.js';
import { blockInputs, INPUT_REL_ERROR, routedSharedPieces, scaleByExpert, sharedRows } from './block-inputs.js';
import { mlpRouterLogits } from './mlp-router.js';
import { inverseRms, outputNormWeight } from './output-norm.js';

/** The ranks handed to a forward are not one complete TP × EP set, or the input is malformed. */
export class ForwardInputError extends MoeConformanceError {}

/** Per-element float32 error bounds of a forward (harness/compare/tolerance.ts). */
export interface ForwardBounds {
  /** `[tokens, hidden]` the strict bound of the output. */
  strict: Float64Array;
  /** `[tokens, hidden]` the loose bound of the output. */
  loose: Float64Array;
  /** `[tokens, experts]` the strict bound of the router logits. */
  logits: Float64Array;
  /** `[tokens, experts]` the loose bound of the router logits. */
  logitsLoose: Float64Array;
}

export interface ReferenceResult extends MoeForwardResult {
  output: Float64Array;
  routerLogits: Float64Array;
  selected: Int32Array;
  routing: RoutingResult;
  bounds?: ForwardBounds;
}

/** Every (tpRank, epRank) of one TP × EP grid exactly once: a partial sum must not pass for an output. */
export function checkRankSet(sem: MoeSemantics, layer: number, ranks: RankTensors[]): void {
  const first = ranks[0];
  if (first === undefined) throw new ForwardInputError('a forward needs at least one rank', { layer, expected: '≥ 1 rank', found: 0 });
  const { tpSize, epSize } = first.req;
  const seen = new Set<string>();
  for (const { req } of ranks) {
    const key = `${req.tpRank}/${req.epRank}`;
    const inRange = req.tpRank >= 0 && req.tpRank < tpSize && req.epRank >= 0 && req.epRank < epSize;
    if (req.tpSize !== tpSize || req.epSize !== epSize || !inRange || seen.has(key)) {
      throw new ForwardInputError('ranks are not one TP × EP set (mixed sizes, out of range or repeated rank)', { layer, expected: `TP ${tpSize} × EP ${epSize}`, found: key });
    }
    seen.add(key);
  }
  if (seen.size !== tpSize * epSize) {
    throw new ForwardInputError('some ranks are missing: a partial sum would pass for an output', { layer, expected: tpSize * epSize, found: seen.size });
  }
  if (sem.intermediate % tpSize !== 0 || sem.sharedIntermediate % tpSize !== 0) {
    throw new ForwardInputError('TP size does not divide the intermediate sizes', { layer, expected: `a divisor of ${sem.intermediate} and ${sem.sharedIntermediate}`, found: tpSize });
  }
}

/** A forward's input is `[tokens, hidden]` and its ranks one complete TP × EP set; every backend checks it so. */
export function checkForwardInput(sem: MoeSemantics, layer: number, ranks: RankTensors[], x: ArrayLike<number>, tokens: number): void {
  if (!Number.isSafeInteger(tokens) || tokens < 0 || x.length !== tokens * sem.hidden) {
    throw new ForwardInputError('input does not have the shape [tokens, hidden]', { layer, expected: [tokens, sem.hidden], found: x.length });
  }
  checkRankSet(sem, layer, ranks);
}

/** `[tokens, router rows]` x·Wr^T + b, and its float32 error bound when asked for (`inputRelError`: of each element of x). */
function routerLogits(sem: MoeSemantics, weight: Float64Array, bias: Float64Array | undefined, x: Float64Array, tokens: number, withBound: boolean, inputRelError: number) {
  const H = sem.hidden;
  const E = sem.routerRows ?? sem.experts;
  const logits = new Float64Array(tokens * E);
  const bound = new Float64Array(withBound ? tokens * E : 0);
  const loose = new Float64Array(withBound ? tokens * E : 0);
  for (let t = 0; t < tokens; t++) {
    for (let e = 0; e < E; e++) {
      let s = 0;
      let m = 0;
      for (let c = 0; c < H; c++) {
        s += x[t * H + c]! * weight[e * H + c]!;
        if (withBound) m += Math.abs(x[t * H + c]! * weight[e * H + c]!);
      }
      const b = bias ? bias[e]! : 0;
      logits[t * E + e] = s + b;
      if (withBound) {
        bound[t * E + e] = (gamma(H + 1) + inputRelError) * m + gamma(H + 1) * Math.abs(b);
        loose[t * E + e] = looseBound(bound[t * E + e]!, m + Math.abs(b));
      }
    }
  }
  return { logits, bound, loose };
}

function maxOf(v: Float64Array, from: number, to: number): number {
  let m = 0;
  for (let i = from; i < to; i++) m = Math.max(m, v[i]!);
  return m;
}

/** Every token through the shared expert, scaled by σ(x · gate) where it has a gate. */
function sharedScales(sem: MoeSemantics, gate: Float64Array | undefined, x: Float64Array, tokens: number, inputRelError: number): TokenBatch {
  const H = sem.hidden;
  const batch: TokenBatch = { tokens: [], inputScale: [], scale: [], inputScaleRelError: [], scaleRelError: [] };
  for (let t = 0; t < tokens; t++) {
    let z = 0;
    let zAbs = 0;
    for (let c = 0; gate && c < H; c++) {
      z += x[t * H + c]! * gate[c]!;
      zAbs += Math.abs(x[t * H + c]! * gate[c]!);
    }
    batch.tokens.push(t);
    batch.inputScale.push(1);
    batch.inputScaleRelError.push(inputRelError);
    batch.scale.push((gate ? sigmoid(z) : 1) * (sem.sharedScale ?? 1));
    batch.scaleRelError.push(gate ? sigmoidRelError(gamma(H) * zAbs) : 0);
  }
  return batch;
}

/**
 * The reference forward of MoE layer `layer`; with `bound`, also the float32 error bound
 * of every output element and router logit; with `route`, that routing instead of route().
 */
export function referenceForward(
  sem: MoeSemantics, layer: number, ranks: RankTensors[], x: Float32Array | Float64Array, tokens: number,
  options: { bound?: boolean; route?: typeof route; inputs?: ForwardInputs } = {},
): ReferenceResult {
  sem = atLayer(sem, layer);
  const { hidden: H, experts: E, topK: k } = sem;
  checkForwardInput(sem, layer, ranks, x, tokens);
  ranks = kernelForm(sem, dequantizeRanks(sem.quant, ranks));
  const decoded: RankWeights[] = ranks.map((r) => decodeRank(sem, layer, r));
  const tpSize = ranks[0]!.req.tpSize;
  for (const r of decoded) {
    if (r.experts.rows * tpSize !== sem.intermediate) {
      throw new ForwardInputError('w13 rows times TP size is not the intermediate size', { layer, tensor: `layers.${layer}.experts.w13`, expected: sem.intermediate, found: r.experts.rows * tpSize });
    }
  }
  // The router and the selection-only bias are whole on every rank: rank 0's are used,
  // after checking that every rank holds the same bytes.
  const r0 = ranks[0]!;
  // Every router tensor (x·Wrᵀ's, a hash table, an MLP router's, gemma4's scales) and the norms, as any rank names them.
  const routerNames = new Set(ranks.flatMap((r) => [...r.tensors.keys()].filter((n) => n.startsWith(`layers.${layer}.router.`))));
  for (const name of new Set([...['router.weight', 'router.bias', 'router.correction_bias', 'expert_input_norm', 'output_norm'].map((n) => `layers.${layer}.${n}`), ...routerNames])) {
    const first = r0.tensors.get(name);
    for (const r of ranks) {
      const t = r.tensors.get(name);
      const same = t === first || (t !== undefined && first !== undefined && t.dtype === first.dtype && Buffer.compare(t.bytes, first.bytes) === 0);
      if (!same) {
        throw new ForwardInputError('ranks disagree on a tensor that every rank holds whole', { layer, tensor: name, expected: 'the bytes of rank tp0/ep0', found: `other bytes at tp${r.req.tpRank}/ep${r.req.epRank}` });
      }
    }
  }
  const decodeWhole = (name: string, shape: number[]) => decodeFloatTensor(r0, `layers.${layer}.${name}`, shape);
  const rows = sem.routerRows ?? E;
  const bias = r0.tensors.has(`layers.${layer}.router.bias`) ? decodeWhole('router.bias', [rows]) : undefined;
  const correction = r0.tensors.has(`layers.${layer}.router.correction_bias`) ? decodeWhole('router.correction_bias', [E - (sem.sharedRouted ?? 0)]) : undefined;

  // Router and experts read their own inputs where the block normalises them (gemma4).
  const inputs = blockInputs(sem, layer, r0, x, tokens);
  const xs = inputs.experts;
  const withBound = options.bound === true;
  const inputRelError = sem.inputNorms ? INPUT_REL_ERROR : 0;
  const raw = sem.mlpRouter
    ? mlpRouterLogits(sem, layer, r0, inputs.router, tokens, options.inputs, withBound)
    : routerLogits(sem, decodeWhole('router.weight', [rows, H]), bias, inputs.router, tokens, withBound, inputRelError);
  const { logits } = raw;
  // Product keys (doge) rank sums of two logits: their bounds per expert, as every other routing's.
  const keys = sem.routing.kind === 'product_key' ? sem.routing.keys : 0;
  const logitBound = keys && withBound ? productKeyBounds(raw.bound, tokens, E, keys) : raw.bound;
  const logitLoose = keys && withBound ? productKeyBounds(raw.loose, tokens, E, keys) : raw.loose;
  // `options.route` replaces the routing (a deliberately wrong forward, or a hypothesis about one: properties/diagnose-forward.ts).
  const routing = scaleByExpert(sem, layer, r0, (options.route ?? route)(sem, logits, tokens, correction, hashChoiceOf(sem, layer, r0, tokens, options.inputs)));

  const output = new Float64Array(tokens * H);
  const acc: BoundAccumulator | undefined = withBound ? { error: new Float64Array(tokens * H), magnitude: new Float64Array(tokens * H) } : undefined;
  const weightRelError = Array.from({ length: tokens }, (_, t) => (withBound ? routingWeightRelError(maxOf(logitBound, t * E, (t + 1) * E)) : 0));
  const shared = decoded.map((r) => (r.epRank === 0 ? r.shared : undefined));
  const sharedScale = sharedScales(sem, shared.find((s) => s !== undefined)?.gate, xs, tokens, inputRelError);

  for (const [r, rank] of decoded.entries()) {
    const ex = rank.experts;
    const R = ex.rows;
    // The tokens routed to each expert this rank holds, with their weights.
    const batches = Array.from(ex.ids, (): TokenBatch => ({ tokens: [], inputScale: [], scale: [], inputScaleRelError: [], scaleRelError: [] }));
    const slotOf = new Map<number, number>(Array.from(ex.ids, (id, slot) => [id, slot]));
    for (let t = 0; t < tokens; t++) {
      for (let j = 0; j < k; j++) {
        const slot = slotOf.get(routing.selected[t * k + j]!);
        if (slot === undefined) continue;
        const w = routing.weights[t * k + j]!;
        const batch = batches[slot]!;
        batch.tokens.push(t);
        batch.inputScale.push(routing.inputScale ? w : 1);
        batch.scale.push(routing.inputScale ? 1 : w);
        batch.inputScaleRelError.push((routing.inputScale ? weightRelError[t]! : 0) + inputRelError);
        batch.scaleRelError.push(routing.inputScale ? 0 : weightRelError[t]!);
      }
    }
    batches.forEach((batch, slot) => {
      if (batch.tokens.length === 0) return;
      const mlp: GatedMlp = {
        act: sem.activation, hidden: H, rows: R,
        w13: ex.w13, w13Offset: slot * 2 * R * H,
        w2: ex.w2, w2Offset: slot * H * R,
        ...(ex.w13Bias ? { bias13: ex.w13Bias, bias13Offset: slot * 2 * R } : {}),
        // The down bias belongs to the whole output: only TP rank 0 adds it.
        ...(ex.w2Bias && rank.tpRank === 0 ? { bias2: ex.w2Bias, bias2Offset: slot * H } : {}),
      };
      addGatedMlp(mlp, xs, batch, output, acc);
    });
    // The shared expert: every EP rank holds it, so only EP rank 0's TP shards count.
    const s = shared[r];
    if (s) {
      const act = sem.sharedActivation ?? SILU_GATED;
      // inkling: each router-weighted shared expert's rows, weighted token by token by its routing weight.
      const pieces = routedSharedPieces(sem, routing, rank.tpRank, s.rows);
      for (const piece of pieces ?? [undefined]) {
        const rows = piece ? piece.rows[1] - piece.rows[0] : s.rows;
        const w = piece ? sharedRows(s.w13, s.w2, H, s.rows, piece.rows) : s;
        const batch = piece ? { ...sharedScale, scale: Array.from(piece.weights), scaleRelError: weightRelError.slice() } : sharedScale;
        addGatedMlp({ act, hidden: H, rows, w13: w.w13, w13Offset: 0, w2: w.w2, w2Offset: 0 }, xs, batch, output, acc);
      }
    }
  }

  addZeroExperts(sem, routing, xs, tokens, output);
  if (acc && sem.zeroExperts && !sem.zeroExpertsSkip) {
    // Each identity share w·x: one product, rounded, with the weight's own error.
    for (let t = 0; t < tokens; t++) {
      for (let j = 0; j < k; j++) {
        if (routing.selected[t * k + j]! < E - sem.zeroExperts) continue;
        const w = Math.abs(routing.weights[t * k + j]!);
        for (let h = 0; h < H; h++) {
          const v = w * Math.abs(xs[t * H + h]!);
          acc.error[t * H + h] = acc.error[t * H + h]! + (weightRelError[t]! + U32) * v;
          acc.magnitude[t * H + h] = acc.magnitude[t * H + h]! + v;
        }
      }
    }
  }

  const result: ReferenceResult = { output, routerLogits: logits, selected: routing.selected, routing };
  if (withBound) {
    // The final float32 sum of k experts, the shared expert and every rank's partial output.
    const terms = gamma(k + 2 + ranks.length);
    const strict = acc!.error.map((e, i) => e + terms * acc!.magnitude[i]! + U32 * Math.abs(output[i]!));
    result.bounds = { strict, loose: strict.map((s, i) => looseBound(s, acc!.magnitude[i]!)), logits: logitBound, logitsLoose: logitLoose };
  }
  const norm = outputNormWeight(sem, layer, ranks);
  if (norm) {
    // The block-output RMSNorm of the summed output (axk1): bounds carried through it first.
    const eps = sem.outputNorm!.eps;
    const inv = inverseRms(output, tokens, H, eps);
    if (result.bounds) {
      const strict = outputNormBound(output, result.bounds.strict, norm, eps, tokens, H);
      const loose = outputNormBound(output, result.bounds.loose, norm, eps, tokens, H).map((b, i) => b + LOOSE_RELATIVE * Math.abs(norm[i % H]! * output[i]!) * inv[Math.floor(i / H)]!);
      result.bounds = { ...result.bounds, strict, loose };
    }
    for (let i = 0; i < output.length; i++) output[i] = norm[i % H]! * output[i]! * inv[Math.floor(i / H)]!;
  }
  return result;
}

export const referenceBackend: MoeBackend = {
  name: 'reference-f64',
  describe: () => 'plain TypeScript loops in float64',
  forward: async (sem, layer, ranks, x, tokens, inputs) => referenceForward(sem, layer, ranks, x, tokens, inputs ? { inputs } : {}),
};
