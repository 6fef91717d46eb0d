// Test helpers: a random whole MoE layer, its canonical tensors for any TP/EP rank (cut
// here by hand from the spec, independently of the loader), and a naive forward written
// directly from the formulas with whole matrices (no ranks, no slots), to check the
// reference against. Values are float32-representable so F32 canonical tensors are exact.
import type { ExpertActivation, MoeSemantics, Routing } from '../../harness/layouts/semantics.js';
import type { Canonical, ParallelRequest } from '../../harness/tensor.js';
import type { RankTensors } from '../backend.js';
import { encodeFloats } from '../../harness/safetensors/codecs.js';

export interface WholeLayer {
  sem: MoeSemantics;
  /** [E][2I][H], gate rows then up rows. */
  w13: number[][][];
  /** [E][H][I] */
  w2: number[][][];
  w13Bias?: number[][];
  w2Bias?: number[][];
  router: number[][];
  routerBias?: number[];
  correction?: number[];
  /** [2Is][H], [H][Is], [H] */
  sharedW13?: number[][];
  sharedW2?: number[][];
  sharedGate?: number[];
}

/** Deterministic uniform numbers in [-1, 1) (a small LCG, so tests need no seed plumbing). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

export interface LayerOptions {
  experts: number;
  topK: number;
  hidden: number;
  intermediate: number;
  sharedIntermediate?: number;
  sharedGate?: boolean;
  routing?: Routing;
  activation?: ExpertActivation;
  biases?: boolean;
  routerBias?: boolean;
  correction?: boolean;
  scale?: number;
}

export function randomLayer(seed: number, o: LayerOptions): WholeLayer {
  const r = rng(seed);
  const s = o.scale ?? 0.5;
  const v = (n: number) => Array.from({ length: n }, () => Math.fround(r() * s));
  const m = (rows: number, cols: number) => Array.from({ length: rows }, () => v(cols));
  const E = o.experts;
  const H = o.hidden;
  const I = o.intermediate;
  const Is = o.sharedIntermediate ?? 0;
  const sem: MoeSemantics = {
    modelType: 'synthetic', experts: E, topK: o.topK, hidden: H, intermediate: I, sharedIntermediate: Is,
    routing: o.routing ?? { kind: 'softmax_topk', renormalize: true, scaling: 1 },
    activation: o.activation ?? { kind: 'silu_gated' },
    sharedGate: Is > 0 && (o.sharedGate ?? false), moeLayers: [3],
  };
  const layer: WholeLayer = {
    sem,
    w13: Array.from({ length: E }, () => m(2 * I, H)),
    w2: Array.from({ length: E }, () => m(H, I)),
    router: m(E, H),
  };
  if (o.biases) {
    layer.w13Bias = m(E, 2 * I);
    layer.w2Bias = m(E, H);
  }
  if (o.routerBias) layer.routerBias = v(E);
  if (o.correction) layer.correction = v(E);
  if (Is > 0) {
    layer.sharedW13 = m(2 * Is, H);
    layer.sharedW2 = m(H, Is);
    if (sem.sharedGate) layer.sharedGate = v(H);
  }
  return layer;
}

/** Global expert ids of EP rank q (spec §1 "Expert placement"). */
export function expertsOf(E: number, req: ParallelRequest): number[] {
  const P = req.epSize;
  const q = req.epRank;
  if (req.epPlacement === 'round_robin') return Array.from({ length: E }, (_, i) => i).filter((i) => i % P === q);
  const base = Math.floor(E / P);
  const rem = E % P;
  const start = q * base + Math.min(q, rem);
  return Array.from({ length: base + (q < rem ? 1 : 0) }, (_, i) => start + i);
}

const f32 = (shape: number[], values: number[]) => ({ dtype: 'F32' as const, shape, bytes: encodeFloats('F32', values) });

/** The canonical tensors of one rank, cut from the whole layer as spec §1 says. */
export function cutLayer(layer: WholeLayer, req: ParallelRequest, L = 3): Canonical {
  const { experts: E, hidden: H, intermediate: I, sharedIntermediate: Is } = layer.sem;
  const Ir = I / req.tpSize;
  const lo = req.tpRank * Ir;
  const ids = expertsOf(E, req);
  const rowsOf = (m: number[][], total: number, from: number, n: number) => [...m.slice(from, from + n), ...m.slice(total + from, total + from + n)];
  const c: Canonical = new Map();
  c.set(`layers.${L}.experts.ids`, { dtype: 'I32', shape: [ids.length], bytes: new Uint8Array(Int32Array.from(ids).buffer) });
  c.set(`layers.${L}.experts.w13`, f32([ids.length, 2 * Ir, H], ids.flatMap((e) => rowsOf(layer.w13[e]!, I, lo, Ir).flat())));
  c.set(`layers.${L}.experts.w2`, f32([ids.length, H, Ir], ids.flatMap((e) => layer.w2[e]!.flatMap((row) => row.slice(lo, lo + Ir)))));
  if (layer.w13Bias && layer.w2Bias) {
    const pick = (b: number[]) => [...b.slice(lo, lo + Ir), ...b.slice(I + lo, I + lo + Ir)];
    c.set(`layers.${L}.experts.w13_bias`, f32([ids.length, 2 * Ir], ids.flatMap((e) => pick(layer.w13Bias![e]!))));
    c.set(`layers.${L}.experts.w2_bias`, f32([ids.length, H], ids.flatMap((e) => layer.w2Bias![e]!)));
  }
  c.set(`layers.${L}.router.weight`, f32([E, H], layer.router.flat()));
  if (layer.routerBias) c.set(`layers.${L}.router.bias`, f32([E], layer.routerBias));
  if (layer.correction) c.set(`layers.${L}.router.correction_bias`, f32([E], layer.correction));
  if (layer.sharedW13 && layer.sharedW2) {
    const Isr = Is / req.tpSize;
    const slo = req.tpRank * Isr;
    c.set(`layers.${L}.shared.w13`, f32([2 * Isr, H], rowsOf(layer.sharedW13, Is, slo, Isr).flat()));
    c.set(`layers.${L}.shared.w2`, f32([H, Isr], layer.sharedW2.flatMap((row) => row.slice(slo, slo + Isr))));
    if (layer.sharedGate) c.set(`layers.${L}.shared.gate`, f32([1, H], layer.sharedGate));
  }
  return c;
}

/** Every rank of a TP × EP split. */
export function allRanks(layer: WholeLayer, tp: number, ep: number, placement: 'linear' | 'round_robin' = 'linear'): RankTensors[] {
  const out: RankTensors[] = [];
  for (let tpRank = 0; tpRank < tp; tpRank++) {
    for (let epRank = 0; epRank < ep; epRank++) {
      const req = { tpSize: tp, tpRank, epSize: ep, epRank, epPlacement: placement };
      out.push({ req, tensors: cutLayer(layer, req) });
    }
  }
  return out;
}

export function randomInput(seed: number, tokens: number, hidden: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: tokens * hidden }, () => r());
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>, round: (v: number) => number) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s = round(s + round(a[i]! * b[i]!));
  return s;
};

/**
 * The MoE block of a whole layer, for `softmax_topk` (renormalised or not) or
 * `topk_softmax` routing, with `round` applied after every operation: identity for an
 * exact float64 forward, Math.fround for a float32 one.
 */
export function naiveForward(layer: WholeLayer, x: Float32Array, tokens: number, round: (v: number) => number = (v) => v): Float64Array {
  const { hidden: H, intermediate: I, sharedIntermediate: Is, topK: k, routing, activation: act } = layer.sem;
  const sig = (z: number) => round(1 / round(1 + round(Math.exp(-z))));
  const out = new Float64Array(tokens * H);
  for (let t = 0; t < tokens; t++) {
    const xt = x.subarray(t * H, (t + 1) * H);
    const l = layer.router.map((row, e) => round(dot(row, xt, round) + (layer.routerBias?.[e] ?? 0)));
    const order = l.map((_, e) => e).sort((a, b) => l[b]! - l[a]! || a - b).slice(0, k);
    let w: number[];
    if (routing.kind === 'topk_softmax') {
      const ex = order.map((e) => round(Math.exp(l[e]! - l[order[0]!]!)));
      const s = ex.reduce((a, b) => round(a + b), 0);
      w = ex.map((v) => round(v / s));
    } else if (routing.kind === 'softmax_topk') {
      const ex = l.map((v) => round(Math.exp(v - l[order[0]!]!)));
      const s = ex.reduce((a, b) => round(a + b), 0);
      w = order.map((e) => round(ex[e]! / s));
      if (routing.renormalize) {
        const ws = w.reduce((a, b) => round(a + b), 0);
        w = w.map((v) => round(v / ws));
      }
    } else throw new Error(`naiveForward does not do ${routing.kind}`);
    const y = new Array<number>(H).fill(0);
    order.forEach((e, j) => {
      const a = Array.from({ length: I }, (_, i) => {
        let g = round(dot(layer.w13[e]![i]!, xt, round) + (layer.w13Bias?.[e]![i] ?? 0));
        let u = round(dot(layer.w13[e]![I + i]!, xt, round) + (layer.w13Bias?.[e]![I + i] ?? 0));
        if (act.kind === 'silu_gated') return round(round(g * sig(g)) * u);
        if (act.kind !== 'gpt_oss_clamped') throw new Error(`naiveForward does not do ${act.kind}`);
        g = Math.min(g, act.limit);
        u = Math.min(Math.max(u, -act.limit), act.limit);
        return round(round(u + 1) * round(g * sig(round(act.alpha * g))));
      });
      for (let h = 0; h < H; h++) {
        const d = round(dot(layer.w2[e]![h]!, a, round) + (layer.w2Bias?.[e]![h] ?? 0));
        y[h] = round(y[h]! + round(w[j]! * d));
      }
    });
    if (layer.sharedW13 && layer.sharedW2) {
      const gate = layer.sharedGate ? sig(dot(layer.sharedGate, xt, round)) : 1;
      const a = Array.from({ length: Is }, (_, i) => {
        const g = dot(layer.sharedW13![i]!, xt, round);
        return round(round(g * sig(g)) * dot(layer.sharedW13![Is + i]!, xt, round));
      });
      for (let h = 0; h < H; h++) y[h] = round(y[h]! + round(gate * dot(layer.sharedW2[h]!, a, round)));
    }
    out.set(y, t * H);
  }
  return out;
}
