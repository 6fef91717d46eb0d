// The protocol's canonical tensors (spec §1), in one place: their names, shapes, and which
// rectangles of which logical parts (ops.ts) they concatenate, for one TP/EP rank. The
// loader fills these rectangles from the checkpoint; the writer reads them back out of a
// whole (TP 1, EP 1) canonical set. Gate always precedes up, and each is cut on its own.
import type { PartName } from '../layouts/ops.js';
import type { MoeDims } from '../layouts/registry.js';
import type { ParallelRequest } from '../tensor.js';
import { expertsOf, tpSlice } from './cut.js';

/** A rectangle of one part (rows × cols of a 2-D part; a 1-D part is one row). */
export interface PartSlice {
  part: PartName;
  /** Global expert id for per-expert parts, null for layer-wide parts. */
  expert: number | null;
  rows: [number, number];
  cols: [number, number];
}

/** One canonical tensor: its bytes are its slices, each row-major, one after another. */
export interface CanonicalSpec {
  name: string;
  shape: number[];
  slices: PartSlice[];
}

export const canonicalName = (layer: number, what: string) => `layers.${layer}.${what}`;

/** The `layers.L.experts.ids` tensor: the global ids this EP rank holds, in slot order (I32). */
export function expertIds(d: MoeDims, req: ParallelRequest): number[] {
  return expertsOf(d.experts, req.epSize, req.epRank, req.epPlacement);
}

/**
 * The rows [lo, hi) of the canonical shared intermediate (`Is`, cut contiguously for TP) as
 * pieces of the stored shared experts: with S router-weighted shared experts (inkling) the
 * canonical intermediate is theirs one after another, `Is / S` each, so a rank's rows may
 * span several; `expert` is the stored shared expert (null: one stored shared expert) and
 * `rows` the piece's rows within it.
 */
export function sharedPieces(range: [number, number], Is: number, S: number): { expert: number | null; rows: [number, number] }[] {
  if (S <= 1) return [{ expert: null, rows: range }];
  const each = Is / S;
  const out: { expert: number | null; rows: [number, number] }[] = [];
  for (let s = 0; s < S; s++) {
    const lo = Math.max(range[0], s * each);
    const hi = Math.min(range[1], (s + 1) * each);
    if (lo < hi) out.push({ expert: s, rows: [lo - s * each, hi - s * each] });
  }
  return out;
}

/** Whether MoE layer `layer` is routed by a table of expert ids per token id (deepseek_v4's hash_moe). */
export const isHashLayer = (d: MoeDims, layer: number): boolean => d.features.hashLayers?.includes(layer) === true;

/**
 * The canonical tensors of layer `layer` for this rank (harness/quant's canonicalSpecs adds
 * scales), except `experts.ids`: floats, and a hash layer's integer `router.tid2eid`.
 */
export function floatSpecs(layer: number, d: MoeDims, req: ParallelRequest): CanonicalSpec[] {
  const { experts: E, hidden: H, intermediate: I, sharedIntermediate: Is, features: f } = d;
  const ids = expertIds(d, req);
  const ir = tpSlice(I, req.tpSize, req.tpRank);
  const isr = tpSlice(Is, req.tpSize, req.tpRank);
  const Ir = ir[1] - ir[0];
  const Isr = isr[1] - isr[0];
  const whole = (n: number): [number, number] => [0, n];
  const row: [number, number] = [0, 1];
  const perExpert = (slice: (e: number) => PartSlice[]) => ids.flatMap(slice);
  // Non-gated experts (up and down only) have no gate half: w13 holds the up rows alone (spec §1).
  const halves = f.nonGated ? 1 : 2;
  // nemotron_h's latent MoE: the experts work in D = moe_latent_size, between latent.fc1 and latent.fc2.
  const D = d.expertHidden ?? H;
  // doge: single-neuron routed experts beside a gated (SwiGLU) shared MLP.
  const sharedHalves = f.nonGated && !f.gatedShared ? 1 : 2;
  const specs: CanonicalSpec[] = [
    {
      name: canonicalName(layer, 'experts.w13'),
      shape: [ids.length, halves * Ir, D],
      slices: perExpert((e) => [
        ...(f.nonGated ? [] : [{ part: 'gate' as const, expert: e, rows: ir, cols: whole(D) }]),
        { part: 'up', expert: e, rows: ir, cols: whole(D) },
      ]),
    },
    {
      name: canonicalName(layer, 'experts.w2'),
      shape: [ids.length, D, Ir],
      slices: perExpert((e) => [{ part: 'down', expert: e, rows: whole(D), cols: ir }]),
    },
  ];
  if (f.expertBias) {
    specs.push(
      {
        name: canonicalName(layer, 'experts.w13_bias'),
        shape: [ids.length, 2 * Ir],
        slices: perExpert((e) => [
          { part: 'gate_bias', expert: e, rows: row, cols: ir },
          { part: 'up_bias', expert: e, rows: row, cols: ir },
        ]),
      },
      {
        // Whole on every TP rank: the consumer adds it once, not once per rank.
        name: canonicalName(layer, 'experts.w2_bias'),
        shape: [ids.length, H],
        slices: perExpert((e) => [{ part: 'down_bias', expert: e, rows: row, cols: whole(H) }]),
      },
    );
  }
  // The router scores the zero-compute experts too (longcat_flash): Er = E + Z rows.
  const Er = E + (d.zeroExperts ?? 0);
  // ... and the shared experts it weights (inkling): S more rows, scored after those; doge's product keys have their own rows.
  const Hr = d.routerHidden ?? H;
  const Rr = d.routerRows ?? Er + (d.sharedRouted ?? 0);
  specs.push({ name: canonicalName(layer, 'router.weight'), shape: [Rr, Hr], slices: [{ part: 'router', expert: null, rows: whole(Rr), cols: whole(Hr) }] });
  if (f.routerGlobalScale) {
    specs.push({ name: canonicalName(layer, 'router.global_scale'), shape: [1], slices: [{ part: 'router_global_scale', expert: null, rows: row, cols: whole(1) }] });
  }
  if (f.mlpRouter) {
    // zaya's MLP router, whole on every rank like router.weight (its out_proj).
    const vec = (name: string, part: PartName) => ({ name: canonicalName(layer, name), shape: [Hr], slices: [{ part, expert: null, rows: row, cols: whole(Hr) }] });
    const mat = (name: string, part: PartName, cols: number) => ({ name: canonicalName(layer, name), shape: [Hr, cols], slices: [{ part, expert: null, rows: whole(Hr), cols: whole(cols) }] });
    specs.push(mat('router.down.weight', 'router_down', H), vec('router.down.bias', 'router_down_bias'));
    if (f.mlpRouter.stateLayers.includes(layer)) specs.push(vec('router.state_scale', 'router_state_scale'));
    specs.push(vec('router.norm', 'router_norm'), mat('router.fc1.weight', 'router_fc1', Hr), vec('router.fc1.bias', 'router_fc1_bias'), mat('router.fc2.weight', 'router_fc2', Hr), vec('router.fc2.bias', 'router_fc2_bias'));
  }
  if (f.routerBias) {
    specs.push({ name: canonicalName(layer, 'router.bias'), shape: [Er], slices: [{ part: 'router_bias', expert: null, rows: row, cols: whole(Er) }] });
  }
  if (isHashLayer(d, layer)) {
    // Whole on every rank (global expert ids), in the stored integer dtype.
    const [V, K] = [d.hashTable!.vocab, d.hashTable!.topK];
    specs.push({ name: canonicalName(layer, 'router.tid2eid'), shape: [V, K], slices: [{ part: 'tid2eid', expert: null, rows: whole(V), cols: whole(K) }] });
  } else if (f.correctionBias) {
    specs.push({
      name: canonicalName(layer, 'router.correction_bias'),
      shape: [Er],
      slices: [{ part: 'correction_bias', expert: null, rows: row, cols: whole(Er) }],
    });
  }
  if (f.sharedExpert) {
    const pieces = sharedPieces(isr, Is, d.sharedRouted ?? 1);
    // Down's columns: one slice where one stored shared expert holds them all, else row by row (a slice's bytes are row-major).
    const downSlices: PartSlice[] =
      pieces.length === 1 && pieces[0]!.expert === null
        ? [{ part: 'shared_down_proj', expert: null, rows: whole(H), cols: isr }]
        : Array.from({ length: H }, (_, h) => pieces.map((p) => ({ part: 'shared_down_proj' as const, expert: p.expert, rows: [h, h + 1] as [number, number], cols: p.rows }))).flat();
    specs.push(
      {
        name: canonicalName(layer, 'shared.w13'),
        shape: [sharedHalves * Isr, H],
        slices: [
          ...(sharedHalves === 1 ? [] : pieces.map((p) => ({ part: 'shared_gate_proj' as const, expert: p.expert, rows: p.rows, cols: whole(H) }))),
          ...pieces.map((p) => ({ part: 'shared_up_proj' as const, expert: p.expert, rows: p.rows, cols: whole(H) })),
        ],
      },
      {
        name: canonicalName(layer, 'shared.w2'),
        shape: [H, Isr],
        slices: downSlices,
      },
    );
  }
  if (d.expertHidden !== undefined) {
    // Whole on every rank, like the router.
    specs.push(
      { name: canonicalName(layer, 'latent.fc1'), shape: [D, H], slices: [{ part: 'latent_fc1', expert: null, rows: whole(D), cols: whole(H) }] },
      { name: canonicalName(layer, 'latent.fc2'), shape: [H, D], slices: [{ part: 'latent_fc2', expert: null, rows: whole(H), cols: whole(D) }] },
    );
  }
  if (f.outputBias) {
    // Whole on every rank, like the router: the consumer adds it once per token.
    specs.push({ name: canonicalName(layer, 'output_bias'), shape: [H], slices: [{ part: 'output_bias', expert: null, rows: row, cols: whole(H) }] });
  }
  if (f.gemmaRouter) {
    // Whole on every rank, like the router.
    const vector = (what: string, part: PartName, n: number): CanonicalSpec => ({ name: canonicalName(layer, what), shape: [n], slices: [{ part, expert: null, rows: row, cols: whole(n) }] });
    specs.push(vector('router.input_scale', 'router_input_scale', H), vector('router.expert_scale', 'expert_scale', E), vector('expert_input_norm', 'expert_input_norm', H));
  }
  if (f.outputNorm) {
    // Whole on every rank: it normalises the sum of all ranks' outputs, once.
    specs.push({ name: canonicalName(layer, 'output_norm'), shape: [H], slices: [{ part: 'output_norm', expert: null, rows: row, cols: whole(H) }] });
  }
  if (f.sharedGate) {
    specs.push({ name: canonicalName(layer, 'shared.gate'), shape: [1, H], slices: [{ part: 'shared_gate', expert: null, rows: row, cols: whole(H) }] });
  }
  return specs;
}

export function elementCount(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
